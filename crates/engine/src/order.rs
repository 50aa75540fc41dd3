//! The four order levels (DOMAIN §2) and refunds, with the rules that do not
//! need storage: what a payment success does to its trade, how much of a
//! trade can still be refunded.

use crate::status::{
    ChannelOrderStatus, IllegalTransition, InstructionStatus, PaymentStatus, RefundStatus, Status,
    TradeStatus,
};
use ledger::TimestampMicros;
use money::Currency;

pub type TradeId = i64;
pub type PaymentId = i64;
pub type InstructionId = i64;
pub type ChannelOrderId = i64;
pub type RefundId = i64;

/// Longest merchant id, `out_trade_no`, request serial or refund serial.
pub const REFERENCE_LENGTH_MAX: usize = 64;
/// Longest trade subject (what the buyer sees).
pub const SUBJECT_LENGTH_MAX: usize = 256;
/// Most channel orders one payout may be split into.
pub const PAYOUT_PARTS_MAX: usize = 100;

/// Why an order request or change was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrderError {
    #[error("{field} must be 1 to {max} characters")]
    InvalidText { field: &'static str, max: usize },
    #[error("{0} cannot be the source of a stored instruction")]
    InvalidSource(&'static str),
    #[error("amount must be positive, got {0}")]
    InvalidAmount(i64),
    #[error("a payout is split into 1 to {max} channel orders, not {parts}")]
    InvalidPartCount { parts: usize, max: usize },
    #[error(transparent)]
    IllegalTransition(#[from] IllegalTransition),
    #[error("refund of {requested_minor} exceeds the refundable {refundable_minor}")]
    RefundExceedsRefundable {
        requested_minor: i64,
        refundable_minor: i64,
    },
    #[error("{reference} was already used with a different {field}")]
    ReferenceConflict {
        reference: &'static str,
        field: &'static str,
    },
    #[error("the order changed meanwhile: {entity} {id} is no longer {expected}")]
    ConcurrentChange {
        entity: &'static str,
        id: i64,
        expected: &'static str,
    },
    #[error("{entity} {id} not found")]
    NotFound { entity: &'static str, id: i64 },
    #[error("instructions sum to {instructions_minor}, the payment is {payment_minor}")]
    InstructionsDoNotCoverPayment {
        payment_minor: i64,
        instructions_minor: i128,
    },
    #[error(
        "trade {trade_id} has a refund out of escrow in flight: release it when the refund is final"
    )]
    EscrowRefundInFlight { trade_id: TradeId },
    #[error("trade {trade_id} is being released from escrow: refund it when the release is done")]
    EscrowReleasing { trade_id: TradeId },
}

impl OrderError {
    /// The stable, machine-readable code of this error.
    pub fn code(&self) -> &'static str {
        match self {
            OrderError::InvalidText { .. } | OrderError::InvalidSource(_) => "INVALID_ORDER",
            OrderError::InvalidAmount(_) => "INVALID_AMOUNT",
            OrderError::InvalidPartCount { .. } => "INVALID_ORDER",
            OrderError::IllegalTransition(_) => "ILLEGAL_TRANSITION",
            OrderError::RefundExceedsRefundable { .. } => "REFUND_EXCEEDS_REFUNDABLE",
            OrderError::ReferenceConflict { .. } => "REFERENCE_CONFLICT",
            OrderError::ConcurrentChange { .. } => "CONCURRENT_CHANGE",
            OrderError::NotFound { .. } => "ORDER_NOT_FOUND",
            OrderError::InstructionsDoNotCoverPayment { .. } => "INSTRUCTIONS_DO_NOT_COVER_PAYMENT",
            OrderError::EscrowRefundInFlight { .. } => "ESCROW_REFUND_IN_FLIGHT",
            OrderError::EscrowReleasing { .. } => "ESCROW_RELEASING",
        }
    }
}

pub(crate) fn check_text(field: &'static str, text: &str, max: usize) -> Result<(), OrderError> {
    if text.is_empty() || text.chars().count() > max {
        return Err(OrderError::InvalidText { field, max });
    }
    Ok(())
}

fn check_amount(amount_minor: i64) -> Result<(), OrderError> {
    if amount_minor <= 0 {
        return Err(OrderError::InvalidAmount(amount_minor));
    }
    Ok(())
}

/// 交易订单: the merchant's business order, unique per merchant by
/// `out_trade_no`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TradeOrder {
    pub id: TradeId,
    pub merchant_id: String,
    pub out_trade_no: String,
    pub subject: String,
    pub amount_minor: i64,
    pub currency: Currency,
    pub status: TradeStatus,
    /// The payment that paid it; a later success of another payment is a
    /// duplicate payment (重复支付).
    pub paid_payment_id: Option<PaymentId>,
    /// What was actually paid (the amount less any coupon).
    pub paid_minor: i64,
    pub refunded_minor: i64,
    pub created_at: TimestampMicros,
    pub updated_at: TimestampMicros,
}

/// What a payment's success means for its trade.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentSuccess {
    /// The first success: the trade is now paid by it.
    Paid,
    /// The same payment reported again: nothing to do.
    AlreadyPaidByIt,
    /// Another payment succeeded first: this one must be refunded.
    Duplicate { paid_by: PaymentId },
    /// The trade was closed before the money arrived: refund it too.
    TradeClosed,
}

impl TradeOrder {
    /// Classifies the success of `payment_id` for this trade.
    pub fn payment_success(&self, payment_id: PaymentId) -> PaymentSuccess {
        match (self.status, self.paid_payment_id) {
            (TradeStatus::WaitPay, _) => PaymentSuccess::Paid,
            (TradeStatus::Closed, _) => PaymentSuccess::TradeClosed,
            (_, Some(paid_by)) if paid_by == payment_id => PaymentSuccess::AlreadyPaidByIt,
            (_, Some(paid_by)) => PaymentSuccess::Duplicate { paid_by },
            // A paid status always records its payment; treat a missing one
            // as a duplicate of nothing rather than paying twice.
            (_, None) => PaymentSuccess::Duplicate { paid_by: 0 },
        }
    }

    /// What may still be refunded: what was actually paid, less refunds.
    pub fn refundable_minor(&self) -> i64 {
        match self.status {
            TradeStatus::Success | TradeStatus::PartiallyRefunded => {
                self.paid_minor.saturating_sub(self.refunded_minor)
            }
            TradeStatus::WaitPay | TradeStatus::Closed | TradeStatus::Refunded => 0,
        }
    }

    /// The trade's status after a successful refund of `amount_minor`, and
    /// the new refunded total.
    pub fn after_refund(&self, amount_minor: i64) -> Result<(TradeStatus, i64), OrderError> {
        check_amount(amount_minor)?;
        let refundable_minor = self.refundable_minor();
        if amount_minor > refundable_minor {
            return Err(OrderError::RefundExceedsRefundable {
                requested_minor: amount_minor,
                refundable_minor,
            });
        }
        let refunded_minor = self.refunded_minor + amount_minor;
        let next = if refunded_minor == self.paid_minor {
            TradeStatus::Refunded
        } else {
            TradeStatus::PartiallyRefunded
        };
        Ok((self.status.transition(next)?, refunded_minor))
    }
}

/// What a merchant asks for to open a trade.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTrade {
    pub merchant_id: String,
    pub out_trade_no: String,
    pub subject: String,
    pub amount_minor: i64,
    pub currency: Currency,
}

impl NewTrade {
    pub fn validate(&self) -> Result<(), OrderError> {
        check_text("merchant_id", &self.merchant_id, REFERENCE_LENGTH_MAX)?;
        check_text("out_trade_no", &self.out_trade_no, REFERENCE_LENGTH_MAX)?;
        check_text("subject", &self.subject, SUBJECT_LENGTH_MAX)?;
        check_amount(self.amount_minor)
    }

    /// The field in which a stored trade with the same `out_trade_no`
    /// differs from this request, if any.
    pub fn conflict_with(&self, trade: &TradeOrder) -> Option<&'static str> {
        if self.amount_minor != trade.amount_minor {
            Some("amount_minor")
        } else if self.currency != trade.currency {
            Some("currency")
        } else if self.subject != trade.subject {
            Some("subject")
        } else {
            None
        }
    }
}

/// 支付订单: one attempt to pay a trade, identified per merchant by its
/// request serial (请求流水号).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentOrder {
    pub id: PaymentId,
    pub trade_id: TradeId,
    pub merchant_id: String,
    pub request_serial: String,
    /// The configured product (flow) it runs: `instant_transfer`, `top_up`...
    pub product: String,
    /// The member who pays.
    pub payer_id: String,
    /// The payer's bank, for routing a card or bank instruction.
    pub bank: Option<String>,
    /// 代扣: the agreement number a debit is made under.
    pub agreement_no: Option<String>,
    pub amount_minor: i64,
    pub currency: Currency,
    pub status: PaymentStatus,
    /// Why it failed, once FAILED.
    pub failure: Option<crate::FailureReason>,
    /// The top-up campaign (充值送) it takes part in, and the bonus it
    /// grants the payer when it succeeds.
    pub campaign: Option<String>,
    pub bonus_minor: i64,
    pub created_at: TimestampMicros,
    pub updated_at: TimestampMicros,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPayment {
    pub trade_id: TradeId,
    pub merchant_id: String,
    pub request_serial: String,
    pub product: String,
    pub payer_id: String,
    pub bank: Option<String>,
    pub agreement_no: Option<String>,
    pub amount_minor: i64,
    pub currency: Currency,
    pub campaign: Option<String>,
    /// The campaign's bonus (0 without one).
    pub bonus_minor: i64,
}

impl NewPayment {
    pub fn validate(&self) -> Result<(), OrderError> {
        check_text("merchant_id", &self.merchant_id, REFERENCE_LENGTH_MAX)?;
        check_text("request_serial", &self.request_serial, REFERENCE_LENGTH_MAX)?;
        check_text("product", &self.product, REFERENCE_LENGTH_MAX)?;
        check_text("payer_id", &self.payer_id, REFERENCE_LENGTH_MAX)?;
        if let Some(bank) = &self.bank {
            check_text("bank", bank, REFERENCE_LENGTH_MAX)?;
        }
        if let Some(campaign) = &self.campaign {
            check_text("campaign", campaign, REFERENCE_LENGTH_MAX)?;
        }
        if self.bonus_minor < 0 {
            return Err(OrderError::InvalidAmount(self.bonus_minor));
        }
        if let Some(agreement_no) = &self.agreement_no {
            check_text("agreement_no", agreement_no, REFERENCE_LENGTH_MAX)?;
        }
        check_amount(self.amount_minor)
    }

    pub fn conflict_with(&self, payment: &PaymentOrder) -> Option<&'static str> {
        if self.trade_id != payment.trade_id {
            Some("trade_id")
        } else if self.product != payment.product {
            Some("product")
        } else if self.payer_id != payment.payer_id {
            Some("payer_id")
        } else if self.bank != payment.bank {
            Some("bank")
        } else if self.agreement_no != payment.agreement_no {
            Some("agreement_no")
        } else if self.amount_minor != payment.amount_minor {
            Some("amount_minor")
        } else if self.currency != payment.currency {
            Some("currency")
        } else if self.campaign != payment.campaign {
            Some("campaign")
        } else {
            None
        }
    }
}

/// Money in (入款) or out (出款).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    Collect,
    Payout,
}

/// Where the money of one instruction comes from or goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FundingSource {
    /// The member's cash balance.
    Balance,
    /// The member's bonus balance (赠送余额).
    Bonus,
    /// The member's stored value as it sees it, one balance (储值): split
    /// into a `balance` and a `bonus` part by the merchant's draw rule when
    /// the payment is created. Never the source of a stored instruction.
    StoredValue,
    Coupon,
    /// A discount card's discount (折扣卡): a share of the trade the
    /// platform's marketing pays. A refund gives its share back to it first.
    Discount,
    /// A bank card through a channel (quick pay, debit).
    Card,
    /// A bank account through a channel (transfer, payout).
    BankAccount,
    /// A third-party wallet through a channel.
    Wallet,
}

text_enum!(Direction { Collect = "collect", Payout = "payout" });
text_enum!(FundingSource {
    Balance = "balance",
    Bonus = "bonus",
    StoredValue = "stored_value",
    Coupon = "coupon",
    Discount = "discount",
    Card = "card",
    BankAccount = "bank_account",
    Wallet = "wallet",
});
text_enum!(Initiator { Merchant = "merchant", Platform = "platform" });

impl FundingSource {
    /// True when the money moves through an external institution, so the
    /// instruction needs channel orders.
    pub fn through_channel(self) -> bool {
        matches!(
            self,
            FundingSource::Card | FundingSource::BankAccount | FundingSource::Wallet
        )
    }
}

/// 支付指令: one funding source or direction of a payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentInstruction {
    pub id: InstructionId,
    pub payment_id: PaymentId,
    pub direction: Direction,
    pub source: FundingSource,
    pub amount_minor: i64,
    pub currency: Currency,
    pub status: InstructionStatus,
    pub created_at: TimestampMicros,
    pub updated_at: TimestampMicros,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewInstruction {
    pub direction: Direction,
    pub source: FundingSource,
    pub amount_minor: i64,
}

/// 机构订单: one request to one external institution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelOrder {
    pub id: ChannelOrderId,
    pub instruction_id: InstructionId,
    /// Which part of its instruction it carries, from 0: a payout larger
    /// than its channel takes at once is split into several orders.
    pub part_no: u32,
    pub channel: String,
    pub amount_minor: i64,
    pub currency: Currency,
    pub status: ChannelOrderStatus,
    /// The institution's own id, once it has answered.
    pub channel_transaction_id: Option<String>,
    pub created_at: TimestampMicros,
    pub updated_at: TimestampMicros,
}

/// Who asked for a refund. Refunds the platform starts wait for review.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Initiator {
    Merchant,
    Platform,
}

/// A refund of (part of) a trade, unique per merchant by refund serial.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundOrder {
    pub id: RefundId,
    pub trade_id: TradeId,
    /// The payment whose sources get the money back: the one that paid the
    /// trade, or a duplicate payment of it.
    pub payment_id: PaymentId,
    pub merchant_id: String,
    pub refund_serial: String,
    pub amount_minor: i64,
    pub currency: Currency,
    pub status: RefundStatus,
    pub initiator: Initiator,
    pub reason: String,
    /// Bonus voided with it: a refund of a top-up that granted a bonus
    /// takes bonus back in proportion to what is left.
    pub bonus_void_minor: i64,
    /// 担保交易: the money comes out of escrow (the trade was not released
    /// when the refund was made, or the payment was a duplicate).
    pub from_escrow: bool,
    pub created_at: TimestampMicros,
    pub updated_at: TimestampMicros,
}

impl Initiator {
    /// The status a new refund starts in.
    pub fn first_refund_status(self) -> RefundStatus {
        match self {
            Initiator::Merchant => RefundStatus::Processing,
            Initiator::Platform => RefundStatus::PendingReview,
        }
    }
}

/// Splits a payment into instructions whose amounts sum to the payment's:
/// the combination (组合支付) must cover the payment exactly.
pub fn check_instructions(
    amount_minor: i64,
    instructions: &[NewInstruction],
) -> Result<(), OrderError> {
    let mut total: i128 = 0;
    for instruction in instructions {
        check_amount(instruction.amount_minor)?;
        if instruction.source == FundingSource::StoredValue {
            // Split into balance and bonus before it is stored.
            return Err(OrderError::InvalidSource(instruction.source.as_str()));
        }
        total += i128::from(instruction.amount_minor);
    }
    if instructions.is_empty() || total != i128::from(amount_minor) {
        return Err(OrderError::InstructionsDoNotCoverPayment {
            payment_minor: amount_minor,
            instructions_minor: total,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn paid_trade(paid_minor: i64) -> TradeOrder {
        TradeOrder {
            id: 1,
            merchant_id: "m1".to_owned(),
            out_trade_no: "T1".to_owned(),
            subject: "coffee".to_owned(),
            amount_minor: paid_minor,
            currency: Currency::CNY,
            status: TradeStatus::Success,
            paid_payment_id: Some(7),
            paid_minor,
            refunded_minor: 0,
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn refund_boundaries() {
        let trade = paid_trade(1_000);
        assert_eq!(
            trade.after_refund(1_000).unwrap(),
            (TradeStatus::Refunded, 1_000)
        );
        assert_eq!(
            trade.after_refund(999).unwrap(),
            (TradeStatus::PartiallyRefunded, 999)
        );
        assert_eq!(
            trade.after_refund(1_001),
            Err(OrderError::RefundExceedsRefundable {
                requested_minor: 1_001,
                refundable_minor: 1_000
            })
        );
        assert_eq!(trade.after_refund(0), Err(OrderError::InvalidAmount(0)));
    }

    #[test]
    fn instructions_must_cover_the_payment_exactly() {
        let card = |amount_minor| NewInstruction {
            direction: Direction::Collect,
            source: FundingSource::Card,
            amount_minor,
        };
        assert!(check_instructions(100, &[card(60), card(40)]).is_ok());
        assert!(check_instructions(100, &[card(60), card(39)]).is_err());
        assert!(check_instructions(100, &[]).is_err());
        assert!(check_instructions(100, &[card(101), card(-1)]).is_err());
    }

    proptest! {
        #[test]
        fn refunds_never_exceed_what_was_paid(
            paid_minor in 1i64..1_000_000,
            requests in prop::collection::vec(1i64..400_000, 1..20),
        ) {
            let mut trade = paid_trade(paid_minor);
            for amount in requests {
                let before = trade.refundable_minor();
                match trade.after_refund(amount) {
                    Ok((status, refunded_minor)) => {
                        prop_assert!(amount <= before);
                        trade.status = status;
                        trade.refunded_minor = refunded_minor;
                    }
                    Err(_) => prop_assert!(amount > before || trade.status == TradeStatus::Refunded),
                }
                prop_assert!(trade.refunded_minor <= trade.paid_minor);
                prop_assert_eq!(
                    trade.status == TradeStatus::Refunded,
                    trade.refunded_minor == trade.paid_minor
                );
                prop_assert_eq!(trade.refundable_minor(), trade.paid_minor - trade.refunded_minor);
            }
        }
    }
}
