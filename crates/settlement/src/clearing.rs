//! 清算 — clearing: every successful merchant collection and refund leaves
//! one clearing entry with its fee, the basis of settlement and of the
//! merchant's daily bill.
//!
//! The payment engine writes the entry in the same store transaction that
//! makes its order final (`engine::OrderStore::finish_payment` /
//! `finish_refund`). The order's journal transfers were posted by the steps
//! before, under keys derived from the order, and a step that crashed is
//! replayed from the ledger; so an order is SUCCESS if and only if its
//! clearing entry exists, and only after its postings are in the ledger.

use crate::EntryKind;
use fees::CollectionMode;
use ledger::TimestampMicros;
use money::Currency;

/// One clearing entry as the engine writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewClearingEntry {
    pub merchant_id: String,
    pub kind: EntryKind,
    pub trade_id: i64,
    pub out_trade_no: String,
    pub payment_id: i64,
    pub refund_id: Option<i64>,
    pub refund_serial: Option<String>,
    pub product: String,
    /// The channel that carried the money; `None` for internal sources only.
    pub channel: Option<String>,
    pub currency: Currency,
    /// Always positive: a refund's amount is what went back.
    pub amount_minor: i64,
    /// The merchant's fee for this entry (a refund's fee is what it gives
    /// back), never negative.
    pub fee_minor: i64,
    pub fee_mode: CollectionMode,
    /// The fee rule that priced it; `None` when no fee applies.
    pub fee_rule_id: Option<String>,
    /// The platform's business date (`YYYY-MM-DD`, UTC+8) of the success.
    pub business_date: String,
    pub occurred_at: TimestampMicros,
    /// True when nothing outside the platform must confirm it (internal
    /// sources only); reconciliation confirms the others.
    pub reconciled: bool,
}

impl NewClearingEntry {
    /// The key that makes an entry once per order.
    pub fn source_key(&self) -> String {
        match self.refund_id {
            Some(refund_id) => format!("refund-{refund_id}"),
            None => format!("payment-{}", self.payment_id),
        }
    }
}

/// A stored clearing entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClearingEntry {
    pub id: i64,
    pub entry: NewClearingEntry,
    /// The settlement batch that paid it out, once one has.
    pub batch_id: Option<i64>,
}
