//! 计费 on payments: which fees a payment is charged, on which side, and
//! from which account they are paid.
//!
//! Each side of a payment has its own fee, priced by the fee service
//! ([`fees::FeeSchedule`]) on its own rules:
//! - the **payee side** is the merchant's fee: on a collection (即时到账)
//!   the merchant is paid and pays a fee; on a payout (代付) the merchant
//!   pays the money out and pays a fee for it;
//! - the **payer side** is the member's fee (a withdrawal fee, say). A
//!   member pays its fee from its cash balance, in real time; it keeps no
//!   fee account and gets no bill (the fee service refuses payer rules
//!   collected otherwise).
//!
//! How a fee is paid ([`FeeFunding`]) follows from the side, the product
//! and the rule's collection mode:
//!
//! | side | product | real-time (实收) | post-paid (后收) | prepaid (预充实扣) |
//! | --- | --- | --- | --- | --- |
//! | payee | collection | deducted at settlement | billed at month end | merchant fee account |
//! | payee | payout (代付) | merchant available balance | billed at month end | merchant fee account |
//! | payer | any but a merchant payout | member cash | — | — |
//!
//! A fee paid from a balance when the payment is accepted
//! ([`FeeFunding::reserved_at_acceptance`]) is priced then and held by a
//! pending ledger transfer `fee-hold-{fee}` from the paying account to
//! platform fee income; if the account cannot cover it, the payment fails
//! with [`FailureReason::FeeAccountInsufficient`] or
//! [`FailureReason::FeeBalanceInsufficient`] and nothing is posted. The hold
//! is posted (`fee-post-{fee}`) when the payment succeeds and voided
//! (`fee-void-{fee}`) when it fails. So "a payout of 100 with fee 1" debits
//! 101 from the merchant in real time, or 100 from its payment account and 1
//! from its fee account when prepaid. A collection's real-time or post-paid
//! fee is priced when the payment succeeds, as before, and recorded with
//! its clearing entry.

use crate::order::{PaymentId, REFERENCE_LENGTH_MAX, check_text};
use crate::status::PaymentFeeStatus;
use crate::store::{Created, OrderStoreError};
use fees::{CollectionMode, FeeSide};
use ledger::TimestampMicros;
use money::Currency;
use std::future::Future;

/// How a fee is paid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FeeFunding {
    /// 实收 on a collection: deducted from the merchant's settlement.
    Settlement,
    /// 后收: summed and billed to the merchant at the end of the month.
    Bill,
    /// 预充实扣: from the merchant's prepaid fee account (手续费账户).
    FeeAccount,
    /// 实收 on a payout: from the merchant's available balance, beside the
    /// money paid out.
    MerchantAvailable,
    /// The member's own fee, from its cash balance.
    MemberCash,
}

text_enum!(FeeFunding {
    Settlement = "settlement",
    Bill = "bill",
    FeeAccount = "fee_account",
    MerchantAvailable = "merchant_available",
    MemberCash = "member_cash",
});

impl FeeFunding {
    /// How a fee of `side` and `collection` is paid on a payment that
    /// collects for a merchant (`payout` false) or pays money out of the
    /// merchant's balance (`payout` true).
    pub fn of(side: FeeSide, collection: CollectionMode, payout: bool) -> FeeFunding {
        match (side, collection, payout) {
            (FeeSide::Payer, _, _) => FeeFunding::MemberCash,
            (FeeSide::Payee, CollectionMode::Prepaid, _) => FeeFunding::FeeAccount,
            (FeeSide::Payee, CollectionMode::PostPaid, _) => FeeFunding::Bill,
            (FeeSide::Payee, CollectionMode::RealTime, false) => FeeFunding::Settlement,
            (FeeSide::Payee, CollectionMode::RealTime, true) => FeeFunding::MerchantAvailable,
        }
    }

    /// True when the fee is taken from a balance by a pending transfer made
    /// when the payment is accepted.
    pub fn reserved_at_acceptance(self) -> bool {
        matches!(
            self,
            FeeFunding::FeeAccount | FeeFunding::MerchantAvailable | FeeFunding::MemberCash
        )
    }
}

/// Where money paid into a merchant's prepaid fee account comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeeDeposit {
    /// The merchant's own available (settled) balance.
    Available,
    /// Money received from outside through this channel's clearing
    /// account: a bank transfer to the platform's account at it.
    Channel(String),
}

impl FeeDeposit {
    /// `available`, or `channel:{code}`: how a deposit record names it.
    pub fn name(&self) -> String {
        match self {
            FeeDeposit::Available => "available".to_owned(),
            FeeDeposit::Channel(channel) => format!("channel:{channel}"),
        }
    }

    pub fn parse(text: &str) -> Option<FeeDeposit> {
        match text.strip_prefix("channel:") {
            Some(channel) if !channel.is_empty() => Some(FeeDeposit::Channel(channel.to_owned())),
            Some(_) => None,
            None => (text == "available").then_some(FeeDeposit::Available),
        }
    }
}

/// A deposit into a merchant's fee account, before it is stored; unique
/// per merchant and reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewFeeDeposit {
    pub merchant_id: String,
    pub reference: String,
    pub currency: Currency,
    pub amount_minor: i64,
    pub source: FeeDeposit,
}

/// A stored deposit: PENDING until its transfer `fee-deposit-{id}` is
/// posted (a deposit the ledger refused stays PENDING and may be tried
/// again), then POSTED.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeeDepositRecord {
    pub id: i64,
    pub deposit: NewFeeDeposit,
    pub posted: bool,
    pub transfer_id: Option<i64>,
    pub created_at: TimestampMicros,
    pub updated_at: TimestampMicros,
}

/// Why a payment failed, as the merchant is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureReason {
    /// A balance, bonus or coupon source could not be reserved.
    BalanceInsufficient,
    /// The channel refused the payment, or the payer's bank was down.
    ChannelRefused,
    /// No channel carries the source within its limits.
    NoRoute,
    /// The paying balance of a payout could not cover it.
    PayoutRefused,
    /// 预充实扣: the merchant's fee account holds less than the fee.
    FeeAccountInsufficient,
    /// The balance a fee is paid from (the member's cash, the merchant's
    /// available balance on a payout) holds less than the fee.
    FeeBalanceInsufficient,
    /// The fee rule could not price the payment (its currency differs).
    FeeNotPriced,
}

text_enum!(FailureReason {
    BalanceInsufficient = "BALANCE_INSUFFICIENT",
    ChannelRefused = "CHANNEL_REFUSED",
    NoRoute = "NO_ROUTE",
    PayoutRefused = "PAYOUT_REFUSED",
    FeeAccountInsufficient = "FEE_ACCOUNT_INSUFFICIENT",
    FeeBalanceInsufficient = "FEE_BALANCE_INSUFFICIENT",
    FeeNotPriced = "FEE_NOT_PRICED",
});

/// A fee charged on a payment, on one side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentFee {
    pub id: i64,
    pub fee: NewPaymentFee,
    pub status: PaymentFeeStatus,
    /// The post-paid bill that holds it, once billed.
    pub bill_id: Option<i64>,
    pub created_at: TimestampMicros,
    pub updated_at: TimestampMicros,
}

/// A fee as it is priced, before it is stored. One per payment and side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPaymentFee {
    pub payment_id: PaymentId,
    pub side: FeeSide,
    pub merchant_id: String,
    /// Who pays it: the merchant (payee side) or the member (payer side).
    pub party_id: String,
    pub rule_id: String,
    pub collection: CollectionMode,
    pub funding: FeeFunding,
    pub currency: Currency,
    /// The transaction amount the fee was priced on.
    pub amount_minor: i64,
    pub fee_minor: i64,
    /// The business date (`YYYY-MM-DD`, UTC+8) it was priced on; a
    /// post-paid fee is billed with its month, or the next bill if it was
    /// charged after that bill.
    pub business_date: String,
}

impl NewPaymentFee {
    /// Checks what a store relies on.
    pub fn validate(&self) -> Result<(), crate::OrderError> {
        check_text("merchant_id", &self.merchant_id, REFERENCE_LENGTH_MAX)?;
        check_text("party_id", &self.party_id, REFERENCE_LENGTH_MAX)?;
        check_text("rule_id", &self.rule_id, fees::NAME_LENGTH_MAX)?;
        if self.amount_minor <= 0 {
            return Err(crate::OrderError::InvalidAmount(self.amount_minor));
        }
        if self.fee_minor < 0 {
            return Err(crate::OrderError::InvalidAmount(self.fee_minor));
        }
        Ok(())
    }

    /// The field in which a stored fee of the same payment and side
    /// differs, if any: a retried step must price as the first did.
    pub fn conflict_with(&self, stored: &NewPaymentFee) -> Option<&'static str> {
        if self.rule_id != stored.rule_id {
            Some("rule_id")
        } else if self.fee_minor != stored.fee_minor {
            Some("fee_minor")
        } else if self.funding != stored.funding {
            Some("funding")
        } else {
            None
        }
    }
}

/// The period counter key a payment's fee of `side` is charged under:
/// `payment-{id}` for the merchant's side (as the fee service has always
/// counted collections), `payment-{id}-payer` for the member's.
pub fn fee_charge_key(payment_id: PaymentId, side: FeeSide) -> String {
    match side {
        FeeSide::Payee => format!("payment-{payment_id}"),
        FeeSide::Payer => format!("payment-{payment_id}-payer"),
    }
}

/// Where payments' fees live; the `store` crate implements it for both
/// stores. Status changes go through [`crate::OrderStore::transition`]
/// (compare-and-set, like every order level).
pub trait PaymentFeeStore: Send + Sync {
    /// Stores a fee as RESERVED, or finds the one of the same payment and
    /// side (which the caller then uses, whatever it priced now).
    fn reserve_payment_fee(
        &self,
        fee: &NewPaymentFee,
        now: TimestampMicros,
    ) -> impl Future<Output = Result<Created<PaymentFee>, OrderStoreError>> + Send;

    /// The fees of a payment, payee side first.
    fn payment_fees(
        &self,
        payment_id: PaymentId,
    ) -> impl Future<Output = Result<Vec<PaymentFee>, OrderStoreError>> + Send;

    /// Records a deposit, or finds the one of the same merchant and
    /// reference (`REFERENCE_CONFLICT` if its fields differ).
    fn record_fee_deposit(
        &self,
        deposit: &NewFeeDeposit,
        now: TimestampMicros,
    ) -> impl Future<Output = Result<FeeDepositRecord, OrderStoreError>> + Send;

    /// Marks a deposit POSTED by its transfer; a deposit posted already is
    /// left as it is.
    fn mark_fee_deposit_posted(
        &self,
        deposit_id: i64,
        transfer_id: i64,
        now: TimestampMicros,
    ) -> impl Future<Output = Result<(), OrderStoreError>> + Send;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn funding_follows_side_mode_and_direction() {
        use CollectionMode::{PostPaid, Prepaid, RealTime};
        assert_eq!(
            FeeFunding::of(FeeSide::Payee, RealTime, false),
            FeeFunding::Settlement
        );
        assert_eq!(
            FeeFunding::of(FeeSide::Payee, RealTime, true),
            FeeFunding::MerchantAvailable
        );
        for payout in [false, true] {
            assert_eq!(
                FeeFunding::of(FeeSide::Payee, Prepaid, payout),
                FeeFunding::FeeAccount
            );
            assert_eq!(
                FeeFunding::of(FeeSide::Payee, PostPaid, payout),
                FeeFunding::Bill
            );
            assert_eq!(
                FeeFunding::of(FeeSide::Payer, RealTime, payout),
                FeeFunding::MemberCash
            );
        }
        assert!(!FeeFunding::Settlement.reserved_at_acceptance());
        assert!(!FeeFunding::Bill.reserved_at_acceptance());
        assert!(FeeFunding::FeeAccount.reserved_at_acceptance());
        for funding in FeeFunding::ALL {
            assert_eq!(FeeFunding::parse(funding.as_str()), Some(*funding));
        }
        for reason in FailureReason::ALL {
            assert_eq!(FailureReason::parse(reason.as_str()), Some(*reason));
        }
    }

    #[test]
    fn charge_keys_differ_by_side() {
        assert_eq!(fee_charge_key(7, FeeSide::Payee), "payment-7");
        assert_eq!(fee_charge_key(7, FeeSide::Payer), "payment-7-payer");
    }
}
