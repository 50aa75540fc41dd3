//! 担保交易 (escrow trade): a product whose payee is `escrow` pays the
//! buyer's money into the merchant's escrow account (担保账户) instead of
//! its settlement-pending account. It stays there until it is released:
//! the buyer confirms receipt (确认收货, told to us by the merchant), an
//! operator releases it, or the product's auto-release time passes.
//!
//! - Release moves what is left — what the payment put in escrow less the
//!   refunds it gave back — to settlement-pending in one journal transfer
//!   (`escrow-release-{trade}`), and only then writes the collection's
//!   clearing entry with its fee (priced on the released amount): the
//!   merchant is cleared, charged and settled for what it keeps.
//! - A refund before release comes out of escrow and clears nothing; a
//!   refund after release comes out of settlement-pending and is cleared
//!   as any refund. Which one a refund is, is decided with the trade row
//!   locked and kept on the refund (`from_escrow`), so a retried refund
//!   never changes side.
//! - A release waits while a refund out of escrow is in flight (its amount
//!   is not known to stay or go), and a refund waits while a release is
//!   half done (`RELEASING`): both answer a conflict and may be retried.
//! - A crash between the steps leaves the escrow `RELEASING`; the resolver
//!   finishes it, and each step is idempotent (the transfer by its key, the
//!   clearing entry with the status change in one transaction).

use crate::notification::NotificationStore;
use crate::order::{REFERENCE_LENGTH_MAX, SUBJECT_LENGTH_MAX, check_text};
use crate::service::{EngineError, PaymentService, two_legs};
use crate::store::OrderStore;
use crate::{
    AgreementStore, NewClearingEntry, NewPaymentFee, OrderError, OrderStoreError, PaymentFeeStore,
    PaymentId, TradeId,
};
use channels::Channel;
use fees::FeeCounterStore;
use ledger::{AccountKind, LedgerWriter, Operation, OwnerKind, TimestampMicros, TransferMode};
use money::Currency;

/// Where an escrow stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EscrowStatus {
    /// The buyer's money is in escrow.
    Held,
    /// Release has begun: the amount and who released it are fixed.
    Releasing,
    /// Released to the merchant's settlement-pending account and cleared.
    Released,
}

text_enum!(EscrowStatus {
    Held = "HELD",
    Releasing = "RELEASING",
    Released = "RELEASED",
});

/// Who released an escrow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReleasedBy {
    /// The merchant, as the buyer confirmed receipt (确认收货).
    Merchant,
    /// An operator, by name.
    Operator(String),
    /// The product's auto-release time passed.
    Timeout,
}

impl ReleasedBy {
    /// `merchant`, `operator:{name}` or `timeout`, as stored.
    pub fn as_text(&self) -> String {
        match self {
            ReleasedBy::Merchant => "merchant".to_owned(),
            ReleasedBy::Operator(name) => format!("operator:{name}"),
            ReleasedBy::Timeout => "timeout".to_owned(),
        }
    }
}

/// An escrow opened as its payment succeeds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEscrow {
    pub trade_id: TradeId,
    pub merchant_id: String,
    pub payment_id: PaymentId,
    pub currency: Currency,
    /// What the payment put into escrow (coupons included).
    pub held_minor: i64,
    pub release_due_at: TimestampMicros,
}

/// One trade's escrow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Escrow {
    pub trade_id: TradeId,
    pub merchant_id: String,
    pub payment_id: PaymentId,
    pub currency: Currency,
    pub held_minor: i64,
    pub status: EscrowStatus,
    /// When it releases by itself.
    pub release_due_at: TimestampMicros,
    /// What goes to the merchant: fixed when release begins.
    pub released_minor: Option<i64>,
    /// `merchant`, `operator:{name}` or `timeout`.
    pub released_by: Option<String>,
    pub reason: Option<String>,
    pub created_at: TimestampMicros,
    pub updated_at: TimestampMicros,
}

/// The journal transfer of a release.
pub fn escrow_release_key(trade_id: TradeId) -> String {
    format!("escrow-release-{trade_id}")
}

/// Where escrows live: in the order store, beside their trades.
pub trait EscrowStore: Send + Sync {
    /// The escrow of a trade of `merchant_id`, if it has one.
    fn escrow(
        &self,
        merchant_id: &str,
        trade_id: TradeId,
    ) -> impl Future<Output = Result<Option<Escrow>, OrderStoreError>> + Send;

    /// With the trade locked: a HELD escrow becomes RELEASING with what is
    /// left in it (`held_minor` less the trade's refunds) and who released
    /// it and why. An escrow already RELEASING or RELEASED is returned as
    /// it is (the first release's figures stand). Refused with
    /// [`crate::OrderError::EscrowRefundInFlight`] while a refund out of
    /// escrow is not final.
    fn begin_release(
        &self,
        merchant_id: &str,
        trade_id: TradeId,
        released_by: &str,
        reason: Option<&str>,
        now: TimestampMicros,
    ) -> impl Future<Output = Result<Escrow, OrderStoreError>> + Send;

    /// RELEASING → RELEASED with the collection's clearing entry, the
    /// merchant's fee and its `escrow.released` notification, in one
    /// transaction.
    fn finish_release(
        &self,
        escrow: &Escrow,
        clearing: Option<&NewClearingEntry>,
        fee: Option<&NewPaymentFee>,
        now: TimestampMicros,
    ) -> impl Future<Output = Result<(), OrderStoreError>> + Send;

    /// Escrows to release now: HELD ones due by `now` with no refund out of
    /// escrow in flight (those wait for it), and RELEASING ones a crash
    /// left half done, oldest due first.
    fn escrows_due(
        &self,
        now: TimestampMicros,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Escrow>, OrderStoreError>> + Send;
}

/// An escrow with its trade's reference, as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EscrowView {
    pub escrow: Escrow,
    pub out_trade_no: String,
}

/// Why an escrow released by itself.
const AUTO_RELEASE_REASON: &str = "receipt not confirmed before the auto-release time";

impl<
    O: OrderStore
        + NotificationStore
        + FeeCounterStore
        + PaymentFeeStore
        + AgreementStore
        + EscrowStore,
    L: LedgerWriter,
    C: Channel,
> PaymentService<O, L, C>
{
    /// Releases the escrow of a merchant's trade to the merchant: the buyer
    /// confirmed receipt (`ReleasedBy::Merchant`) or an operator decided.
    /// Releasing a released trade answers the first release.
    pub async fn release_escrow(
        &self,
        merchant_id: &str,
        out_trade_no: &str,
        by: &ReleasedBy,
        reason: Option<&str>,
        now: TimestampMicros,
    ) -> Result<EscrowView, EngineError> {
        if let ReleasedBy::Operator(name) = by {
            check_text("operator", name, REFERENCE_LENGTH_MAX)?;
        }
        if let Some(reason) = reason {
            check_text("reason", reason, SUBJECT_LENGTH_MAX)?;
        }
        let found = self.escrow_of(merchant_id, out_trade_no).await?;
        let escrow = self
            .release(found.escrow, &by.as_text(), reason, now)
            .await?;
        Ok(EscrowView {
            escrow,
            out_trade_no: found.out_trade_no,
        })
    }

    /// The escrow of a merchant's trade, without changing anything.
    pub async fn escrow_of(
        &self,
        merchant_id: &str,
        out_trade_no: &str,
    ) -> Result<EscrowView, EngineError> {
        let trade = self
            .orders()
            .trade_by_out_trade_no(merchant_id, out_trade_no)
            .await?
            .ok_or(OrderError::NotFound {
                entity: "trade order",
                id: 0,
            })?;
        let escrow =
            self.orders()
                .escrow(merchant_id, trade.id)
                .await?
                .ok_or(OrderError::NotFound {
                    entity: "escrow of trade",
                    id: trade.id,
                })?;
        Ok(EscrowView {
            escrow,
            out_trade_no: trade.out_trade_no,
        })
    }

    /// Releases the escrows whose auto-release time has passed, and
    /// finishes releases a crash left half done. One escrow's refusal (a
    /// refund in flight) is its own result and stops none of the others.
    pub async fn release_due_escrows(
        &self,
        now: TimestampMicros,
        limit: usize,
    ) -> Result<Vec<Result<Escrow, EngineError>>, EngineError> {
        let due = self.orders().escrows_due(now, limit).await?;
        let mut results = Vec::with_capacity(due.len());
        for escrow in due {
            let by = escrow
                .released_by
                .clone()
                .unwrap_or_else(|| ReleasedBy::Timeout.as_text());
            results.push(
                self.release(escrow, &by, Some(AUTO_RELEASE_REASON), now)
                    .await,
            );
        }
        Ok(results)
    }

    /// HELD → RELEASING (amount fixed) → transfer → RELEASED with the
    /// clearing entry; each step idempotent, so a half-done release is
    /// finished by running it again.
    async fn release(
        &self,
        escrow: Escrow,
        by: &str,
        reason: Option<&str>,
        now: TimestampMicros,
    ) -> Result<Escrow, EngineError> {
        let mut escrow = if escrow.status == EscrowStatus::Held {
            self.orders()
                .begin_release(&escrow.merchant_id, escrow.trade_id, by, reason, now)
                .await?
        } else {
            escrow
        };
        if escrow.status != EscrowStatus::Releasing {
            return Ok(escrow);
        }
        let released_minor = escrow
            .released_minor
            .ok_or(EngineError::Invariant("a releasing escrow has its amount"))?;
        let mut clearing = None;
        let mut fee = None;
        if released_minor > 0 {
            let from = self
                .account(
                    OwnerKind::Merchant,
                    &escrow.merchant_id,
                    AccountKind::MerchantEscrow,
                    escrow.currency,
                )
                .await?;
            let to = self
                .account(
                    OwnerKind::Merchant,
                    &escrow.merchant_id,
                    AccountKind::MerchantPending,
                    escrow.currency,
                )
                .await?;
            self.post(Operation::Transfer {
                key: escrow_release_key(escrow.trade_id),
                legs: two_legs(from, to, released_minor, escrow.currency),
                mode: TransferMode::Posted,
                description: format!("escrow of trade {} released ({by})", escrow.trade_id),
            })
            .await?
            .map_err(EngineError::Ledger)?;
            let paid = self
                .orders()
                .payment(&escrow.merchant_id, escrow.payment_id)
                .await?
                .ok_or(OrderError::NotFound {
                    entity: "payment order",
                    id: escrow.payment_id,
                })?;
            let trade = self.trade_of(&escrow.merchant_id, escrow.trade_id).await?;
            let (entry, priced) = self
                .collection_clearing(&paid, &trade, released_minor, true, now)
                .await?;
            clearing = Some(entry);
            fee = priced;
        }
        match self
            .orders()
            .finish_release(&escrow, clearing.as_ref(), fee.as_ref(), now)
            .await
        {
            Ok(()) => {}
            // Another run finished it meanwhile: its figures stand.
            Err(OrderStoreError::Order(OrderError::ConcurrentChange { .. })) => {
                return self
                    .orders()
                    .escrow(&escrow.merchant_id, escrow.trade_id)
                    .await?
                    .ok_or(EngineError::Invariant("a released escrow is kept"));
            }
            Err(error) => return Err(error.into()),
        }
        escrow.status = EscrowStatus::Released;
        escrow.updated_at = now;
        Ok(escrow)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_releasers_have_stable_names() {
        for status in EscrowStatus::ALL {
            assert_eq!(EscrowStatus::parse(status.as_str()), Some(*status));
        }
        assert_eq!(ReleasedBy::Merchant.as_text(), "merchant");
        assert_eq!(
            ReleasedBy::Operator("ops-li".into()).as_text(),
            "operator:ops-li"
        );
        assert_eq!(ReleasedBy::Timeout.as_text(), "timeout");
        assert_eq!(escrow_release_key(42), "escrow-release-42");
    }
}
