use crate::NotificationEvent;
use crate::clearing::NewClearingEntry;
use crate::order::{
    ChannelOrder, ChannelOrderId, InstructionId, NewInstruction, NewPayment, NewTrade, OrderError,
    PaymentId, PaymentInstruction, PaymentOrder, RefundOrder, TradeId, TradeOrder,
};
use crate::order::{REFERENCE_LENGTH_MAX, SUBJECT_LENGTH_MAX, check_text};
use crate::status::{PaymentStatus, RefundStatus, Status};
use crate::{BankOutage, FailureReason, Initiator, NewPaymentFee, RefundId, RefundPart};
use ledger::{StoreError, TimestampMicros};
use std::future::Future;

/// A failure to store or change an order: refused by the rules, or the
/// store itself failed.
#[derive(Debug, thiserror::Error)]
pub enum OrderStoreError {
    #[error(transparent)]
    Order(#[from] OrderError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a channel said when it booked a success: its business date
/// (`YYYYMMDD`, by its own cutoff) and its fee. Reconciliation snapshots by
/// that date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelBooking<'a> {
    pub business_date: &'a str,
    pub fee_minor: i64,
}

/// A create that is idempotent by a merchant's reference: the first request
/// creates, a repeat with the same fields finds what it created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Created<T> {
    New(T),
    Existing(T),
}

impl<T> Created<T> {
    pub fn into_inner(self) -> T {
        match self {
            Created::New(value) | Created::Existing(value) => value,
        }
    }

    pub fn is_new(&self) -> bool {
        matches!(self, Created::New(_))
    }
}

/// An operator's decision on a refund waiting for review.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRefundReview {
    pub operator: String,
    pub approved: bool,
    pub reason: String,
}

/// A recorded decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundReview {
    pub refund_id: RefundId,
    pub review: NewRefundReview,
    pub reviewed_at: TimestampMicros,
}

impl NewRefundReview {
    pub fn validate(&self) -> Result<(), OrderError> {
        check_text("operator", &self.operator, REFERENCE_LENGTH_MAX)?;
        check_text("reason", &self.reason, SUBJECT_LENGTH_MAX)
    }
}

/// What is written with a payment's final status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PaymentFinish<'a> {
    pub to: PaymentStatus,
    pub event: NotificationEvent,
    /// Why it failed (FAILED only).
    pub failure: Option<FailureReason>,
    /// A merchant collection's clearing entry (SUCCESS only).
    pub clearing: Option<&'a NewClearingEntry>,
    /// The merchant's fee priced with the success, written CHARGED.
    pub fee: Option<&'a NewPaymentFee>,
    /// 担保交易: the escrow the success opens (SUCCESS only).
    pub escrow: Option<&'a crate::NewEscrow>,
}

/// A payment with its instructions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentWithInstructions {
    pub payment: PaymentOrder,
    pub instructions: Vec<PaymentInstruction>,
}

/// A refund request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRefund {
    pub trade_id: TradeId,
    /// The payment to refund; `None` for the one that paid the trade.
    pub payment_id: Option<PaymentId>,
    pub merchant_id: String,
    pub refund_serial: String,
    pub amount_minor: i64,
    pub initiator: Initiator,
    pub reason: String,
    /// How the refund is split over the payment's sources.
    pub ordering: crate::RefundOrdering,
    /// Bonus to void with it (a top-up's refund); never negative.
    pub bonus_void_minor: i64,
    /// The payment is an escrow trade's (担保交易): the store decides, with
    /// the trade locked, whether the money comes out of escrow (not yet
    /// released, or a duplicate payment's) and records it on the refund.
    pub payee_escrow: bool,
}

/// Where orders live. Every read is scoped by merchant: a merchant never
/// sees another merchant's orders. Every status change is a compare-and-set
/// from the status the caller read, so a step of a flow is never applied
/// twice, even by two processes at once.
pub trait OrderStore: Send + Sync {
    /// Opens a trade, or finds the one with the same `out_trade_no`
    /// (`REFERENCE_CONFLICT` if its fields differ).
    fn create_trade(
        &self,
        trade: &NewTrade,
        now: TimestampMicros,
    ) -> impl Future<Output = Result<Created<TradeOrder>, OrderStoreError>> + Send;

    fn trade(
        &self,
        merchant_id: &str,
        trade_id: TradeId,
    ) -> impl Future<Output = Result<Option<TradeOrder>, OrderStoreError>> + Send;

    fn trade_by_out_trade_no(
        &self,
        merchant_id: &str,
        out_trade_no: &str,
    ) -> impl Future<Output = Result<Option<TradeOrder>, OrderStoreError>> + Send;

    /// Creates a payment and its instructions in one transaction, or finds
    /// the payment with the same request serial.
    fn create_payment(
        &self,
        payment: &NewPayment,
        instructions: &[NewInstruction],
        now: TimestampMicros,
    ) -> impl Future<Output = Result<Created<PaymentWithInstructions>, OrderStoreError>> + Send;

    fn payment(
        &self,
        merchant_id: &str,
        payment_id: PaymentId,
    ) -> impl Future<Output = Result<Option<PaymentWithInstructions>, OrderStoreError>> + Send;

    fn payment_by_request_serial(
        &self,
        merchant_id: &str,
        request_serial: &str,
    ) -> impl Future<Output = Result<Option<PaymentWithInstructions>, OrderStoreError>> + Send;

    /// Payments still CREATED or PROCESSING whose last change is older than
    /// `changed_before` and whose next check is due at `now`, least
    /// recently deferred first: the work of the resolver that
    /// queries channels and finishes payments after a restart.
    fn unfinished_payments(
        &self,
        changed_before: TimestampMicros,
        now: TimestampMicros,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<PaymentOrder>, OrderStoreError>> + Send;

    /// Creates the channel order of an instruction: its collect (or
    /// payout), or with `refund_id` the refund of it. There is one of each:
    /// a second call finds the first (`Created::Existing`), and only the
    /// caller that created it may send it.
    fn create_channel_order(
        &self,
        instruction_id: InstructionId,
        refund_id: Option<RefundId>,
        channel: &str,
        amount_minor: i64,
        now: TimestampMicros,
    ) -> impl Future<Output = Result<Created<ChannelOrder>, OrderStoreError>> + Send;

    /// Creates the channel orders of a payout split into parts, part 0
    /// first, all at once: while the instruction has no channel order.
    /// A second call finds the first call's orders (`Created::Existing`),
    /// whatever amounts it was given, so the parts of one payout always
    /// come from one routing.
    fn create_payout_orders(
        &self,
        instruction_id: InstructionId,
        channel: &str,
        amounts_minor: &[i64],
        now: TimestampMicros,
    ) -> impl Future<Output = Result<Created<Vec<ChannelOrder>>, OrderStoreError>> + Send;

    /// The channel orders of an instruction: its collects (or a payout's
    /// parts, in order), or with `refund_id` those of that refund.
    fn channel_orders(
        &self,
        instruction_id: InstructionId,
        refund_id: Option<RefundId>,
    ) -> impl Future<Output = Result<Vec<ChannelOrder>, OrderStoreError>> + Send;

    /// Records the institution's id for a channel order.
    fn set_channel_transaction_id(
        &self,
        channel_order_id: ChannelOrderId,
        channel_transaction_id: &str,
        booking: Option<ChannelBooking<'_>>,
        now: TimestampMicros,
    ) -> impl Future<Output = Result<(), OrderStoreError>> + Send;

    /// Records the institution's id for a channel order, as
    /// `set_channel_transaction_id` does, and makes `moves`, in one
    /// transaction: all of it or nothing.
    fn record_channel_answer(
        &self,
        channel_order_id: ChannelOrderId,
        channel_transaction_id: &str,
        booking: Option<ChannelBooking<'_>>,
        moves: &[crate::Move],
        now: TimestampMicros,
    ) -> impl Future<Output = Result<(), OrderStoreError>> + Send;

    /// Creates a refund with its parts, or finds the one with the same
    /// refund serial. The amount is checked against the trade's refundable
    /// total less refunds under way, and split over the paying payment's
    /// sources by [`crate::allocate_refund`], in one transaction.
    fn create_refund(
        &self,
        refund: &NewRefund,
        now: TimestampMicros,
    ) -> impl Future<Output = Result<Created<RefundOrder>, OrderStoreError>> + Send;

    fn refund(
        &self,
        merchant_id: &str,
        refund_id: RefundId,
    ) -> impl Future<Output = Result<Option<RefundOrder>, OrderStoreError>> + Send;

    fn refund_parts(
        &self,
        refund_id: RefundId,
    ) -> impl Future<Output = Result<Vec<RefundPart>, OrderStoreError>> + Send;

    /// Refunds still PROCESSING whose last change is older than
    /// `changed_before`, oldest first.
    fn unfinished_refunds(
        &self,
        changed_before: TimestampMicros,
        now: TimestampMicros,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<RefundOrder>, OrderStoreError>> + Send;

    /// Moves a refund waiting for review to `to` (PROCESSING when approved,
    /// FAILED when rejected) and records the decision, in one transaction;
    /// compare-and-set from PENDING_REVIEW.
    fn review_refund(
        &self,
        refund: &RefundOrder,
        to: RefundStatus,
        review: &NewRefundReview,
        now: TimestampMicros,
    ) -> impl Future<Output = Result<(), OrderStoreError>> + Send;

    /// The decision on a refund, if it was reviewed.
    fn refund_review(
        &self,
        refund_id: RefundId,
    ) -> impl Future<Output = Result<Option<RefundReview>, OrderStoreError>> + Send;

    /// Refunds of every merchant waiting for an operator's review, oldest
    /// first: the operator's queue.
    fn refunds_waiting_review(
        &self,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<RefundOrder>, OrderStoreError>> + Send;

    /// Banks operators marked down on channels.
    fn bank_outages(&self)
    -> impl Future<Output = Result<Vec<BankOutage>, OrderStoreError>> + Send;

    /// Marks `bank` down on `channel` (or up again); idempotent.
    fn set_bank_down(
        &self,
        outage: &BankOutage,
        down: bool,
        now: TimestampMicros,
    ) -> impl Future<Output = Result<(), OrderStoreError>> + Send;

    /// Keeps the resolver off a payment or refund until `until`: it is
    /// still waiting, and newer ones get their turn first. Not a state
    /// change, so not durable-critical.
    fn defer_check(
        &self,
        level: crate::Level,
        id: i64,
        until: TimestampMicros,
    ) -> impl Future<Output = Result<(), OrderStoreError>> + Send;

    /// Moves an order of any level from `from` to `to`, if the transition
    /// is legal and the order is still in `from`.
    fn transition<S: Status>(
        &self,
        id: i64,
        from: S,
        to: S,
        now: TimestampMicros,
    ) -> impl Future<Output = Result<(), OrderStoreError>> + Send;

    /// Makes every move of `moves` in one transaction, or none of them:
    /// each order must still be in its move's `from`.
    fn transitions(
        &self,
        moves: &[crate::Move],
        now: TimestampMicros,
    ) -> impl Future<Output = Result<(), OrderStoreError>> + Send;

    /// Moves a payment to its final status and records the merchant's
    /// notification of it, its failure reason, its clearing entry and the
    /// fee priced with its success (if given), in one transaction: a final
    /// payment is never left unannounced or uncleared.
    fn finish_payment(
        &self,
        payment: &PaymentOrder,
        finish: &PaymentFinish<'_>,
        now: TimestampMicros,
    ) -> impl Future<Output = Result<(), OrderStoreError>> + Send;

    /// Moves a PROCESSING refund to its final status; a success of a refund
    /// of the payment that paid the trade adds to the trade's refunded total
    /// in the same transaction, so the trade is never left behind; so does
    /// its clearing entry, if given.
    fn finish_refund(
        &self,
        refund: &RefundOrder,
        to: RefundStatus,
        clearing: Option<&NewClearingEntry>,
        now: TimestampMicros,
    ) -> impl Future<Output = Result<(), OrderStoreError>> + Send;

    /// WAIT_PAY → SUCCESS, recording the payment and what it paid.
    fn mark_trade_paid(
        &self,
        trade_id: TradeId,
        payment_id: PaymentId,
        paid_minor: i64,
        now: TimestampMicros,
    ) -> impl Future<Output = Result<TradeOrder, OrderStoreError>> + Send;

    /// Adds a successful refund to the trade's refunded total, moving it to
    /// PARTIALLY_REFUNDED or REFUNDED.
    fn record_trade_refund(
        &self,
        trade_id: TradeId,
        amount_minor: i64,
        now: TimestampMicros,
    ) -> impl Future<Output = Result<TradeOrder, OrderStoreError>> + Send;
}

/// Checks a refund request's own fields.
pub fn check_refund_request(refund: &NewRefund) -> Result<(), OrderError> {
    check_text("merchant_id", &refund.merchant_id, REFERENCE_LENGTH_MAX)?;
    check_text("refund_serial", &refund.refund_serial, REFERENCE_LENGTH_MAX)?;
    if refund.reason.chars().count() > SUBJECT_LENGTH_MAX {
        return Err(OrderError::InvalidText {
            field: "reason",
            max: SUBJECT_LENGTH_MAX,
        });
    }
    if refund.amount_minor <= 0 {
        return Err(OrderError::InvalidAmount(refund.amount_minor));
    }
    if refund.bonus_void_minor < 0 {
        return Err(OrderError::InvalidAmount(refund.bonus_void_minor));
    }
    Ok(())
}

/// A repeated refund serial: the same refund if the fields agree.
pub fn refund_conflict(
    request: &NewRefund,
    existing: RefundOrder,
) -> Result<Created<RefundOrder>, OrderStoreError> {
    let field = if request.trade_id != existing.trade_id {
        Some("trade_id")
    } else if request.amount_minor != existing.amount_minor {
        Some("amount_minor")
    } else if request.initiator != existing.initiator {
        Some("initiator")
    } else {
        None
    };
    match field {
        None => Ok(Created::Existing(existing)),
        Some(field) => Err(OrderError::ReferenceConflict {
            reference: "refund_serial",
            field,
        }
        .into()),
    }
}

/// A new refund may take what the trade can still refund, less refunds
/// already under way (waiting for review or at the channel).
pub fn check_refundable(
    trade: &TradeOrder,
    in_flight_minor: i64,
    amount_minor: i64,
) -> Result<(), OrderError> {
    let refundable_minor = trade
        .refundable_minor()
        .saturating_sub(in_flight_minor)
        .max(0);
    if amount_minor > refundable_minor {
        return Err(OrderError::RefundExceedsRefundable {
            requested_minor: amount_minor,
            refundable_minor,
        });
    }
    Ok(())
}
