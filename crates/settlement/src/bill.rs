//! 商户对账单 — the merchant's daily trade bill. The platform is a channel to
//! its merchants, so it issues each one a bill of its business date the way
//! channels do: every collection and refund cleared that day, with its fee,
//! then a summary block. A merchant reconciles its own books against it.
//!
//! # Format (CSV, UTF-8, comma-separated, `\n` line ends)
//!
//! 1. A header row, then one row per clearing entry in the order cleared:
//!
//! | column | meaning |
//! | --- | --- |
//! | `business_date` | the platform's business date, `YYYY-MM-DD` (UTC+8) |
//! | `occurred_at` | when it succeeded, `YYYY-MM-DD HH:MM:SS` UTC+8 |
//! | `merchant_id` | the merchant |
//! | `out_trade_no` | the merchant's order number |
//! | `payment_id` | the platform's payment id |
//! | `refund_id` | the platform's refund id (refunds only) |
//! | `refund_serial` | the merchant's refund number (refunds only) |
//! | `kind` | `COLLECTION` or `REFUND` |
//! | `product` | the product (`instant_transfer`, ...) |
//! | `channel` | the channel that carried it; empty for balance payments |
//! | `currency` | ISO 4217 code |
//! | `amount` | decimal in major units, always positive |
//! | `fee` | the merchant's fee, decimal in major units |
//! | `fee_mode` | `real_time` (deducted at settlement), `post_paid`, `prepaid` |
//! | `settlement_batch` | the settlement batch that paid it; empty until then |
//!
//! 2. A summary header row, then one row per currency of the listed rows:
//!    `currency,total_count,collection_count,collections,refund_count,
//!    refunds,fees,real_time_fees,net`, where `fees` are the fees charged
//!    on collections less those refunds give back (a refund row's `fee` is
//!    what it gives back), and `net` = collections − refunds − real-time
//!    fees: what settlement pays for these entries.
//!
//! Bill types: `ALL` lists every entry, `SUCCESS` the collections only,
//! `REFUND` the refunds only (as channels' bills do).

use crate::{ClearingEntry, EntryKind, FeeMode, SettlementError};
use money::{Currency, Money};
use std::collections::BTreeMap;
use time::OffsetDateTime;
use time::macros::{format_description, offset};

/// Which entries a bill lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BillType {
    All,
    Success,
    Refund,
}

impl BillType {
    pub const ALL: [BillType; 3] = [BillType::All, BillType::Success, BillType::Refund];

    pub fn as_str(self) -> &'static str {
        match self {
            BillType::All => "ALL",
            BillType::Success => "SUCCESS",
            BillType::Refund => "REFUND",
        }
    }

    pub fn parse(text: &str) -> Option<BillType> {
        BillType::ALL.into_iter().find(|kind| kind.as_str() == text)
    }

    fn lists(self, kind: EntryKind) -> bool {
        match self {
            BillType::All => true,
            BillType::Success => kind == EntryKind::Collection,
            BillType::Refund => kind == EntryKind::Refund,
        }
    }
}

/// The summary of one currency of a bill, in minor units.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BillTotals {
    pub total_count: u64,
    pub collection_count: u64,
    pub collections_minor: i64,
    pub refund_count: u64,
    pub refunds_minor: i64,
    pub fees_minor: i64,
    pub real_time_fees_minor: i64,
    pub net_minor: i64,
}

/// A written bill.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bill {
    pub csv: String,
    pub rows: u64,
    pub totals: BTreeMap<Currency, BillTotals>,
}

pub const BILL_HEADER: [&str; 15] = [
    "business_date",
    "occurred_at",
    "merchant_id",
    "out_trade_no",
    "payment_id",
    "refund_id",
    "refund_serial",
    "kind",
    "product",
    "channel",
    "currency",
    "amount",
    "fee",
    "fee_mode",
    "settlement_batch",
];

pub const SUMMARY_HEADER: [&str; 9] = [
    "currency",
    "total_count",
    "collection_count",
    "collections",
    "refund_count",
    "refunds",
    "fees",
    "real_time_fees",
    "net",
];

/// Writes the bill of `entries` (one merchant's business date) of `kind`.
pub fn write_bill(entries: &[ClearingEntry], kind: BillType) -> Result<Bill, SettlementError> {
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .flexible(true)
        .from_writer(Vec::new());
    let io = |error: csv::Error| SettlementError::BillWrite(error.to_string());
    writer.write_record(BILL_HEADER).map_err(io)?;
    let mut totals: BTreeMap<Currency, BillTotals> = BTreeMap::new();
    let mut rows = 0u64;
    for stored in entries {
        let entry = &stored.entry;
        if !kind.lists(entry.kind) {
            continue;
        }
        rows += 1;
        let overflow = || SettlementError::Overflow {
            merchant_id: entry.merchant_id.clone(),
            currency: entry.currency,
        };
        let sums = totals.entry(entry.currency).or_default();
        sums.total_count += 1;
        // A refund's fee is what it gives back, as netting counts it.
        let fee_minor = match entry.kind {
            EntryKind::Collection => entry.fee_minor,
            EntryKind::Refund => entry.fee_minor.checked_neg().ok_or_else(overflow)?,
        };
        sums.fees_minor = sums
            .fees_minor
            .checked_add(fee_minor)
            .ok_or_else(overflow)?;
        if entry.fee_mode == FeeMode::RealTime {
            sums.real_time_fees_minor = sums
                .real_time_fees_minor
                .checked_add(fee_minor)
                .ok_or_else(overflow)?;
        }
        match entry.kind {
            EntryKind::Collection => {
                sums.collection_count += 1;
                sums.collections_minor = sums
                    .collections_minor
                    .checked_add(entry.amount_minor)
                    .ok_or_else(overflow)?;
            }
            EntryKind::Refund => {
                sums.refund_count += 1;
                sums.refunds_minor = sums
                    .refunds_minor
                    .checked_add(entry.amount_minor)
                    .ok_or_else(overflow)?;
            }
        }
        let major = |minor: i64| Money::new(minor, entry.currency).format_major();
        writer
            .write_record([
                entry.business_date.clone(),
                local_time(entry.occurred_at)?,
                entry.merchant_id.clone(),
                entry.out_trade_no.clone(),
                entry.payment_id.to_string(),
                entry.refund_id.map(|id| id.to_string()).unwrap_or_default(),
                entry.refund_serial.clone().unwrap_or_default(),
                entry.kind.as_str().to_owned(),
                entry.product.clone(),
                entry.channel.clone().unwrap_or_default(),
                entry.currency.code().to_owned(),
                major(entry.amount_minor),
                major(entry.fee_minor),
                entry.fee_mode.as_str().to_owned(),
                stored.batch_id.map(|id| id.to_string()).unwrap_or_default(),
            ])
            .map_err(io)?;
    }
    writer.write_record(SUMMARY_HEADER).map_err(io)?;
    for (currency, sums) in &mut totals {
        sums.net_minor = sums
            .collections_minor
            .checked_sub(sums.refunds_minor)
            .and_then(|value| value.checked_sub(sums.real_time_fees_minor))
            .ok_or_else(|| SettlementError::Overflow {
                merchant_id: String::new(),
                currency: *currency,
            })?;
        let major = |minor: i64| Money::new(minor, *currency).format_major();
        writer
            .write_record([
                currency.code().to_owned(),
                sums.total_count.to_string(),
                sums.collection_count.to_string(),
                major(sums.collections_minor),
                sums.refund_count.to_string(),
                major(sums.refunds_minor),
                major(sums.fees_minor),
                major(sums.real_time_fees_minor),
                major(sums.net_minor),
            ])
            .map_err(io)?;
    }
    let bytes = writer
        .into_inner()
        .map_err(|error| SettlementError::BillWrite(error.to_string()))?;
    let csv =
        String::from_utf8(bytes).map_err(|error| SettlementError::BillWrite(error.to_string()))?;
    Ok(Bill { csv, rows, totals })
}

/// Microseconds since the epoch as `YYYY-MM-DD HH:MM:SS` in UTC+8.
fn local_time(micros: i64) -> Result<String, SettlementError> {
    let invalid = || SettlementError::BillWrite(format!("time {micros} out of range"));
    let at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1_000)
        .map_err(|_| invalid())?
        .to_offset(offset!(+8));
    at.format(format_description!(
        "[year]-[month]-[day] [hour]:[minute]:[second]"
    ))
    .map_err(|_| invalid())
}
