//! The payment service: runs a product's flow for one payment, step by
//! step, each step idempotent, so that a payment interrupted anywhere (a
//! crash, a channel that did not answer) is finished by running
//! [`PaymentService::advance`] again.
//!
//! The steps of a payment, in order:
//! 1. Each internal source (balance, bonus, coupon) is reserved with a
//!    pending ledger transfer to the payee (`hold-{instruction}`).
//! 2. The channel source, if any, gets a channel order and is submitted to
//!    the channel. A success posts `collect-{channel order}` from the
//!    channel's clearing account to the payee. PROCESSING or no answer
//!    leaves the payment PROCESSING until a query or a notification tells.
//! 3. When every instruction has succeeded, the holds are posted
//!    (`post-{instruction}`) and the payment succeeds; its trade is paid,
//!    or the success is recognised as a duplicate payment. When any fails,
//!    the holds are voided (`void-{instruction}`) and the payment fails.
//!
//! Every ledger key is derived from an order id, so a repeated step replays
//! its first result and never moves money twice.

use crate::NewEscrow;
use crate::agreement::AgreementStore;
use crate::clearing::{ClearingKind, NewClearingEntry};
use crate::fee_steps::Reservation;
use crate::limits::{
    LimitScope, channel_charge, channel_charge_key, limit_charge, limit_charge_key,
};
use crate::notification::{NotificationEvent, NotificationStore};
use crate::order::{
    ChannelOrder, Direction, FundingSource, Initiator, NewInstruction, NewPayment, NewTrade,
    OrderError, PaymentInstruction, PaymentOrder, PaymentSuccess, RefundId, RefundOrder, TradeId,
    TradeOrder,
};
use crate::refund::RefundPart;
use crate::routing::{NoRoute, Route, payout_parts, routes_up, usable_routes};
use crate::status::{
    ChannelOrderStatus, InstructionStatus, Level, Move, PaymentStatus, RefundPartStatus,
    RefundStatus, Status, TradeStatus,
};
use crate::store::{
    ChannelBooking, Created, OrderStore, OrderStoreError, PaymentFinish, PaymentWithInstructions,
};
use crate::store::{NewRefund, NewRefundReview, RefundReview};
use crate::{Campaign, RefundOrdering, StoredValueError, StoredValueRules};
use crate::{FailureReason, NewPaymentFee, PaymentFee, PaymentFeeStore};
use channels::{Channel, ChannelDirection, ChannelError, ChannelOutcome, ChannelRequest};
use fees::{BusinessDate, CollectionMode, FeeCharge, FeeCounterStore, FeeTable};
use ledger::{
    AccountId, AccountKind, BatchItem, LedgerError, LedgerWriter, Leg, NewAccount, Operation,
    Overdraft, OwnerKind, Side, StoreError, TimestampMicros, Transfer, TransferMode,
};
use money::Currency;
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use tracing::warn;

/// Who receives the money of a product.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Payee {
    /// The trade's merchant, into its settlement-pending account.
    Merchant,
    /// 担保交易: the trade's merchant, into its escrow account until the
    /// buyer confirms receipt or `auto_release_seconds` pass (`escrow.rs`).
    Escrow { auto_release_seconds: i64 },
    /// The payer's own cash balance (a top-up).
    PayerCash,
    /// 出款: a bank account outside, through a channel, paid from a
    /// balance here (a withdrawal or a merchant's payout).
    Bank { from: PayoutFrom },
}

/// Whose balance a payout is paid from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayoutFrom {
    /// 提现: the paying member's cash balance.
    MemberCash,
    /// 代付: the merchant's available (settled) balance.
    MerchantAvailable,
}

/// A product (产品) as a flow: who is paid and which sources may pay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Product {
    pub code: String,
    pub payee: Payee,
    pub sources: Vec<FundingSource>,
    /// 代扣: every payment names an ACTIVE agreement of its merchant and
    /// payer (`agreement.rs`).
    pub requires_agreement: bool,
}

impl Product {
    /// 即时到账: a member pays a merchant from balance, bonus, coupon and
    /// at most one channel source.
    pub fn instant_transfer() -> Product {
        Product {
            code: "instant_transfer".to_owned(),
            payee: Payee::Merchant,
            sources: vec![
                FundingSource::Balance,
                FundingSource::Bonus,
                FundingSource::Coupon,
                FundingSource::Card,
                FundingSource::Wallet,
                FundingSource::BankAccount,
            ],
            requires_agreement: false,
        }
    }

    /// 提现: a member withdraws from its balance to its bank account.
    pub fn withdrawal() -> Product {
        Product {
            code: "withdrawal".to_owned(),
            payee: Payee::Bank {
                from: PayoutFrom::MemberCash,
            },
            sources: vec![FundingSource::BankAccount],
            requires_agreement: false,
        }
    }

    /// 充值: a member moves money from a card or bank into its balance.
    pub fn top_up() -> Product {
        Product {
            code: "top_up".to_owned(),
            payee: Payee::PayerCash,
            sources: vec![
                FundingSource::Card,
                FundingSource::BankAccount,
                FundingSource::Wallet,
            ],
            requires_agreement: false,
        }
    }
}

/// A merchant's request to pay (part of) a trade.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayRequest {
    pub merchant_id: String,
    pub out_trade_no: String,
    pub subject: String,
    /// The trade's amount; the payment pays all of it.
    pub amount_minor: i64,
    pub currency: Currency,
    pub request_serial: String,
    pub product: String,
    pub payer_id: String,
    /// The payer's bank, for a card or bank source.
    pub bank: Option<String>,
    /// How much each source pays; they must sum to the amount.
    pub sources: Vec<(FundingSource, i64)>,
    /// A top-up campaign (充值送) the top-up takes part in.
    pub campaign: Option<String>,
    /// 代扣: the agreement a debit is made under, for products that
    /// require one.
    pub agreement_no: Option<String>,
}

/// Why a payment could not be started or advanced.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Order(#[from] OrderError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("unknown product {0:?}")]
    UnknownProduct(String),
    #[error("product {product} does not take {funding_source}")]
    SourceNotAllowed {
        product: String,
        funding_source: &'static str,
    },
    #[error("a payment may have at most one card, bank or wallet source")]
    TooManyChannelSources,
    #[error("trade {out_trade_no} is already {status}")]
    TradeNotPayable {
        out_trade_no: String,
        status: &'static str,
    },
    #[error("no channel is configured")]
    NoChannel,
    #[error(transparent)]
    NoRoute(#[from] NoRoute),
    /// Money that left to a bank account does not come back by refund.
    #[error("payments of product {0} cannot be refunded")]
    NotRefundable(String),
    #[error("member {payer_id} may pay {limit_minor} a day and paid {paid_today_minor} today")]
    LimitExceeded {
        payer_id: String,
        limit_minor: i64,
        paid_today_minor: i64,
    },
    #[error(
        "the card of agreement {agreement_no} may be debited {limit_minor} a day and was debited {debited_today_minor} today"
    )]
    CardLimitExceeded {
        agreement_no: String,
        limit_minor: i64,
        debited_today_minor: i64,
    },
    #[error("the ledger refused a step of the flow: {0}")]
    Ledger(LedgerError),
    #[error("the fee's period counter failed: {0}")]
    FeeCounter(#[from] fees::FeeCounterError),
    #[error(transparent)]
    StoredValue(#[from] StoredValueError),
    #[error(transparent)]
    Agreement(crate::AgreementError),
    #[error(transparent)]
    CollectionBatch(crate::CollectionBatchError),
    /// A channel's notification that does not parse, or names an order
    /// there is none of.
    #[error("channel notification refused: {0}")]
    ChannelNotification(ChannelError),
    /// A bug: a state the engine's own checks should have made impossible.
    #[error("engine invariant broken: {0}")]
    Invariant(&'static str),
}

impl EngineError {
    pub fn code(&self) -> &'static str {
        match self {
            EngineError::Order(error) => error.code(),
            EngineError::Store(_) => "STORE_ERROR",
            EngineError::FeeCounter(error) => error.code(),
            EngineError::UnknownProduct(_) => "UNKNOWN_PRODUCT",
            EngineError::SourceNotAllowed { .. } => "SOURCE_NOT_ALLOWED",
            EngineError::TooManyChannelSources => "TOO_MANY_CHANNEL_SOURCES",
            EngineError::TradeNotPayable { .. } => "TRADE_NOT_PAYABLE",
            EngineError::NoChannel => "NO_CHANNEL",
            EngineError::NoRoute(_) => "NO_ROUTE",
            EngineError::NotRefundable(_) => "NOT_REFUNDABLE",
            EngineError::LimitExceeded { .. } | EngineError::CardLimitExceeded { .. } => {
                "LIMIT_EXCEEDED"
            }
            EngineError::Ledger(error) => error.code(),
            EngineError::Invariant(_) => "ENGINE_INVARIANT",
            EngineError::StoredValue(error) => error.code(),
            EngineError::Agreement(error) => error.code(),
            EngineError::CollectionBatch(error) => error.code(),
            EngineError::ChannelNotification(error) => error.code(),
        }
    }
}

impl From<OrderStoreError> for EngineError {
    fn from(error: OrderStoreError) -> Self {
        match error {
            OrderStoreError::Order(error) => EngineError::Order(error),
            OrderStoreError::Store(error) => EngineError::Store(error),
        }
    }
}

/// A merchant's (or the platform's) request to refund a trade.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundRequest {
    pub merchant_id: String,
    pub out_trade_no: String,
    /// Unique per merchant: a repeat is the same refund.
    pub refund_serial: String,
    pub amount_minor: i64,
    pub reason: String,
    pub initiator: Initiator,
}

/// A refund with its parts and its trade.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundView {
    pub refund: RefundOrder,
    /// The operator's decision, for a refund that waited for review.
    pub review: Option<RefundReview>,
    pub parts: Vec<RefundPart>,
    /// The funding source each part goes back to, in the order of `parts`.
    pub part_sources: Vec<FundingSource>,
    pub trade: TradeOrder,
}

/// Where a payment stands after a call, with what its trade made of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentView {
    pub trade: TradeOrder,
    pub payment: PaymentOrder,
    pub instructions: Vec<PaymentInstruction>,
    /// Set when the payment succeeded after another had paid the trade
    /// (重复支付): its money must go back.
    pub duplicate_of: Option<i64>,
    /// The fees charged on it, per side (计费).
    pub fees: Vec<PaymentFee>,
    /// A payout's channel orders, part 0 first: more than one when no
    /// channel took it in one transaction. Empty for collections.
    pub payout_parts: Vec<ChannelOrder>,
}

impl PaymentView {
    /// What a payout's channel orders paid out so far; `None` for a
    /// collection.
    pub fn paid_out_minor(&self) -> Option<i64> {
        let payout = self
            .instructions
            .iter()
            .any(|instruction| instruction.direction == Direction::Payout);
        payout.then(|| paid_out_minor(&self.payout_parts))
    }
}

/// What the successful parts of a payout paid out.
pub fn paid_out_minor(parts: &[ChannelOrder]) -> i64 {
    parts
        .iter()
        .filter(|part| part.status == ChannelOrderStatus::Success)
        .map(|part| part.amount_minor)
        .sum()
}

/// Most channel orders a payout is split into unless the service is told
/// otherwise ([`PaymentService::with_payout_parts_max`]).
pub const PAYOUT_PARTS_DEFAULT: usize = 10;

/// The refund serial of the automatic refund of a duplicate payment.
pub fn duplicate_refund_serial(payment_id: i64) -> String {
    format!("duplicate-of-payment-{payment_id}")
}

/// The subject code (科目) an account of each kind is opened under.
pub fn default_subject_code(kind: AccountKind) -> &'static str {
    match kind {
        AccountKind::ChannelClearing => "1002",
        AccountKind::MerchantPending => "2202",
        AccountKind::MerchantAvailable => "2203",
        AccountKind::MerchantFee => "2204",
        AccountKind::MerchantEscrow => "2205",
        AccountKind::MemberCash => "2241",
        AccountKind::MemberBonus => "2242",
        AccountKind::Suspense => "2299",
        AccountKind::Equity => "4001",
        AccountKind::PlatformIncome => "6001",
        AccountKind::PlatformMarketing => "6601",
        AccountKind::BonusDeferred => "1801",
    }
}

type AccountKey = (OwnerKind, String, AccountKind, Currency);

/// The platform owner of the suspense account (挂账) reconciliation posts to.
pub const SUSPENSE_OWNER: &str = "reconciliation";
/// The platform owner of the fee income account fees are paid to.
pub const FEE_INCOME_OWNER: &str = "fees";

/// A debit of `debit` and a credit of `credit` of one amount.
pub fn two_legs(
    debit: AccountId,
    credit: AccountId,
    amount_minor: i64,
    currency: Currency,
) -> Vec<Leg> {
    vec![
        Leg {
            account_id: debit,
            side: Side::Debit,
            amount_minor,
            currency,
        },
        Leg {
            account_id: credit,
            side: Side::Credit,
            amount_minor,
            currency,
        },
    ]
}

/// What a channel answered of a collection that succeeded, to record on
/// its channel order.
#[derive(Debug, Clone, Copy)]
struct ChannelAnswer<'a> {
    transaction_id: &'a str,
    business_date: &'a str,
    fee_minor: i64,
}

impl<'a> ChannelAnswer<'a> {
    /// The institution's id and booking to record on `order`: none when
    /// the order has its id already or the answer carries none.
    fn for_order(self, order: &ChannelOrder) -> Option<(&'a str, Option<ChannelBooking<'a>>)> {
        (order.channel_transaction_id.is_none() && !self.transaction_id.is_empty()).then(|| {
            let booking = (!self.business_date.is_empty()).then_some(ChannelBooking {
                business_date: self.business_date,
                fee_minor: self.fee_minor,
            });
            (self.transaction_id, booking)
        })
    }
}

/// Runs payments: orders in `orders`, money through `ledger`, external
/// sources through `channels` (the first one, until routing comes).
#[derive(Debug)]
pub struct PaymentService<O, L, C> {
    pub(crate) orders: O,
    ledger: L,
    channels: Vec<C>,
    products: Vec<Product>,
    routes: Vec<Route>,
    /// Most a member, and a card, may pay per day (UTC+8), all payments
    /// not failed.
    limits: crate::DailyLimits,
    /// Prices each merchant collection for its clearing entry; without it
    /// fees are zero. Replaced rule tables apply from the next charge.
    pub(crate) fees: Option<FeeTable>,
    /// How stored-value payments draw on cash and bonus, per merchant.
    pub(crate) stored_value: StoredValueRules,
    /// Top-up campaigns (充值送).
    pub(crate) campaigns: Vec<Campaign>,
    /// How refunds are split over the paying sources.
    pub(crate) refund_ordering: RefundOrdering,
    /// Most channel orders a payout is split into when no channel takes it
    /// in one transaction.
    payout_parts_max: usize,
    accounts: Mutex<HashMap<AccountKey, AccountId>>,
}

/// Microseconds in a day, and the offset of the business day's time zone
/// (UTC+8) of business dates and daily limits.
const DAY_MICROS: i64 = 86_400_000_000;
const LIMIT_DAY_OFFSET_MICROS: i64 = 8 * 3_600_000_000;

/// The platform's business date of `now`: its calendar day in UTC+8.
pub fn business_date(now: TimestampMicros) -> Result<BusinessDate, EngineError> {
    BusinessDate::from_days_since_epoch((now + LIMIT_DAY_OFFSET_MICROS).div_euclid(DAY_MICROS))
        .map_err(|_| EngineError::Ledger(LedgerError::Overflow))
}

impl<
    O: OrderStore + NotificationStore + FeeCounterStore + PaymentFeeStore + AgreementStore,
    L: LedgerWriter,
    C: Channel,
> PaymentService<O, L, C>
{
    /// A service whose routes are every channel, for every channel source,
    /// in the order given; see [`PaymentService::with_routes`].
    pub fn new(orders: O, ledger: L, channels: Vec<C>, products: Vec<Product>) -> Self {
        let routes = channels
            .iter()
            .map(|channel| Route::any(channel.code()))
            .collect();
        PaymentService {
            orders,
            ledger,
            channels,
            products,
            routes,
            limits: crate::DailyLimits::default(),
            fees: None,
            stored_value: StoredValueRules::default(),
            campaigns: Vec::new(),
            refund_ordering: RefundOrdering::default(),
            payout_parts_max: PAYOUT_PARTS_DEFAULT,
            accounts: Mutex::new(HashMap::new()),
        }
    }

    /// Routes channel sources by these offers instead; each names one of
    /// the service's channels.
    pub fn with_routes(mut self, routes: Vec<Route>) -> Self {
        self.routes = routes;
        self
    }

    /// Prices merchant collections with the table in force in `table`
    /// (payee side) for their clearing entries.
    pub fn with_fees(mut self, table: FeeTable) -> Self {
        self.fees = Some(table);
        self
    }

    /// Draws stored-value payments by `rules`.
    pub fn with_stored_value(mut self, rules: StoredValueRules) -> Self {
        self.stored_value = rules;
        self
    }

    /// Offers these top-up campaigns.
    pub fn with_campaigns(mut self, campaigns: Vec<Campaign>) -> Self {
        self.campaigns = campaigns;
        self
    }

    /// Splits refunds in this order.
    pub fn with_refund_ordering(mut self, ordering: RefundOrdering) -> Self {
        self.refund_ordering = ordering;
        self
    }

    /// Splits a payout no channel takes in one transaction into at most
    /// `parts_max` channel orders (at most [`crate::PAYOUT_PARTS_MAX`]).
    pub fn with_payout_parts_max(mut self, parts_max: usize) -> Self {
        self.payout_parts_max = parts_max.clamp(1, crate::PAYOUT_PARTS_MAX);
        self
    }

    /// Refuses a payment that would take a member's payments of the day
    /// (UTC+8) over `limit_minor`.
    pub fn with_member_daily_limit(mut self, limit_minor: i64) -> Self {
        self.limits.member_minor = Some(limit_minor);
        self
    }

    /// Most that may be debited from one card (under its agreements) in a
    /// day (UTC+8).
    pub fn with_card_daily_limit(mut self, limit_minor: i64) -> Self {
        self.limits.card_minor = Some(limit_minor);
        self
    }

    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    pub fn orders(&self) -> &O {
        &self.orders
    }

    pub(crate) fn ledger(&self) -> &L {
        &self.ledger
    }

    pub fn channels(&self) -> &[C] {
        &self.channels
    }

    fn product(&self, code: &str) -> Result<&Product, EngineError> {
        self.products
            .iter()
            .find(|product| product.code == code)
            .ok_or_else(|| EngineError::UnknownProduct(code.to_owned()))
    }

    fn check_sources(
        product: &Product,
        sources: &[(FundingSource, i64)],
    ) -> Result<(), EngineError> {
        for (source, _) in sources {
            if !product.sources.contains(source) {
                return Err(EngineError::SourceNotAllowed {
                    product: product.code.clone(),
                    funding_source: source.as_str(),
                });
            }
        }
        if sources
            .iter()
            .filter(|(source, _)| source.through_channel())
            .count()
            > 1
        {
            return Err(EngineError::TooManyChannelSources);
        }
        // A payout is one transfer out through one channel.
        if matches!(product.payee, Payee::Bank { .. })
            && !matches!(sources, [(source, _)] if source.through_channel())
        {
            return Err(EngineError::SourceNotAllowed {
                product: product.code.clone(),
                funding_source: "anything but one channel source",
            });
        }
        Ok(())
    }

    /// Opens the trade if needed, creates the payment and runs it as far as
    /// it goes now. A repeated request serial answers with the same
    /// payment, as it stands.
    pub async fn pay(
        &self,
        request: &PayRequest,
        now: TimestampMicros,
    ) -> Result<PaymentView, EngineError> {
        let product = self.product(&request.product)?;
        Self::check_sources(product, &request.sources)?;
        let checked = crate::agreement::debit_request(&self.orders, product, request).await?;
        let request = &*checked;
        let bonus_minor = self.campaign_bonus(product, request)?;
        let trade = self
            .orders
            .create_trade(
                &NewTrade {
                    merchant_id: request.merchant_id.clone(),
                    out_trade_no: request.out_trade_no.clone(),
                    subject: request.subject.clone(),
                    amount_minor: request.amount_minor,
                    currency: request.currency,
                },
                now,
            )
            .await?
            .into_inner();
        let new_payment = NewPayment {
            trade_id: trade.id,
            merchant_id: request.merchant_id.clone(),
            request_serial: request.request_serial.clone(),
            product: request.product.clone(),
            payer_id: request.payer_id.clone(),
            bank: request.bank.clone(),
            agreement_no: request.agreement_no.clone(),
            amount_minor: request.amount_minor,
            currency: request.currency,
            campaign: request.campaign.clone(),
            bonus_minor,
        };
        // A repeated request serial is the same request: it gets the same
        // payment, as it stands now, and starts nothing.
        let existing = self
            .orders
            .payment_by_request_serial(&new_payment.merchant_id, &new_payment.request_serial)
            .await?;
        if let Some(existing) = existing {
            if let Some(field) = new_payment.conflict_with(&existing.payment) {
                return Err(OrderError::ReferenceConflict {
                    reference: "request_serial",
                    field,
                }
                .into());
            }
            return self.view(existing).await;
        }
        if trade.status != TradeStatus::WaitPay {
            return Err(EngineError::TradeNotPayable {
                out_trade_no: trade.out_trade_no,
                status: trade.status.as_str(),
            });
        }
        let counted = self.count_limits(request, now).await?;
        let sources = match self.split_sources(request).await {
            Ok(sources) => sources,
            Err(error) => {
                self.release_limits(&counted, now).await?;
                return Err(error);
            }
        };
        let instructions: Vec<NewInstruction> = sources
            .iter()
            .map(|(source, amount_minor)| NewInstruction {
                direction: match product.payee {
                    Payee::Bank { .. } => Direction::Payout,
                    Payee::Merchant | Payee::Escrow { .. } | Payee::PayerCash => Direction::Collect,
                },
                source: *source,
                amount_minor: *amount_minor,
            })
            .collect();
        match self
            .orders
            .create_payment(&new_payment, &instructions, now)
            .await?
        {
            Created::New(payment) => self.advance(payment, now).await,
            // Lost a race with the same serial: the winner runs it.
            Created::Existing(payment) => self.view(payment).await,
        }
    }

    /// Re-reads a payment of `merchant_id` and runs it as far as it goes.
    pub async fn resume(
        &self,
        merchant_id: &str,
        payment_id: i64,
        now: TimestampMicros,
    ) -> Result<PaymentView, EngineError> {
        let payment =
            self.orders
                .payment(merchant_id, payment_id)
                .await?
                .ok_or(OrderError::NotFound {
                    entity: "payment order",
                    id: payment_id,
                })?;
        self.advance(payment, now).await
    }

    /// Where a payment of `merchant_id` stands, without running anything.
    pub async fn status(
        &self,
        merchant_id: &str,
        payment_id: i64,
    ) -> Result<PaymentView, EngineError> {
        let payment =
            self.orders
                .payment(merchant_id, payment_id)
                .await?
                .ok_or(OrderError::NotFound {
                    entity: "payment order",
                    id: payment_id,
                })?;
        self.view(payment).await
    }

    /// Advances up to `limit` unfinished payments that have not changed for
    /// `quiet_micros`: PROCESSING ones are queried at their channel, and
    /// ones interrupted by a crash are finished. Returns how many it looked
    /// at; a payment that fails to advance is logged by the caller's retry.
    pub async fn resolve_unfinished(
        &self,
        now: TimestampMicros,
        quiet_micros: i64,
        limit: usize,
    ) -> Result<Vec<Result<PaymentView, EngineError>>, EngineError> {
        let payments = self
            .orders
            .unfinished_payments(now.saturating_sub(quiet_micros), now, limit)
            .await?;
        let mut results = Vec::with_capacity(payments.len());
        for payment in payments {
            let result = self.resume(&payment.merchant_id, payment.id, now).await;
            let unfinished = result
                .as_ref()
                .map_or(true, |view| !view.payment.status.is_final());
            if unfinished {
                // Still waiting: back of the queue, so newer ones are seen.
                self.orders
                    .defer_check(Level::Payment, payment.id, now.saturating_add(quiet_micros))
                    .await?;
            }
            results.push(result);
        }
        Ok(results)
    }

    /// Runs every step that can run now; idempotent.
    pub async fn advance(
        &self,
        mut payment: PaymentWithInstructions,
        now: TimestampMicros,
    ) -> Result<PaymentView, EngineError> {
        if payment.payment.status == PaymentStatus::Created {
            self.move_payment(&mut payment.payment, PaymentStatus::Processing, now, None)
                .await?;
        }
        if payment.payment.status == PaymentStatus::Processing {
            let product = self.product(&payment.payment.product)?.clone();
            self.run_steps(&product, &mut payment, now).await?;
        }
        self.view(payment).await
    }

    async fn run_steps(
        &self,
        product: &Product,
        payment: &mut PaymentWithInstructions,
        now: TimestampMicros,
    ) -> Result<(), EngineError> {
        // The fees paid from a balance are reserved before any money moves:
        // a fee account that cannot cover its fee stops the payment here.
        if let Reservation::Failed(reason) = self.reserve_fees(product, payment, now).await? {
            return self.fail(product, payment, reason, now).await;
        }
        if let Payee::Bank { from } = product.payee {
            return self.payout_steps(from, payment, now).await;
        }
        for index in 0..payment.instructions.len() {
            if payment.instructions[index].source.through_channel() {
                continue;
            }
            if !self.hold(product, payment, index, now).await? {
                let reason = Some(FailureReason::BalanceInsufficient);
                return self.fail(product, payment, reason, now).await;
            }
        }
        for index in 0..payment.instructions.len() {
            if !payment.instructions[index].source.through_channel() {
                continue;
            }
            if let Some(reason) = self.collect(product, payment, index, now).await? {
                return self.fail(product, payment, Some(reason), now).await;
            }
        }
        let all_done = payment.instructions.iter().all(|instruction| {
            instruction.status == InstructionStatus::Success
                || (!instruction.source.through_channel()
                    && instruction.status == InstructionStatus::Processing)
        });
        let channel_pending = payment.instructions.iter().any(|instruction| {
            instruction.source.through_channel() && instruction.status != InstructionStatus::Success
        });
        if all_done && !channel_pending {
            self.succeed(product, payment, now).await?;
        }
        Ok(())
    }

    /// A payout (出款): route it (split into several channel orders when no
    /// channel takes it in one transaction), reserve the amount from the
    /// paying balance to the channel's clearing account
    /// (`hold-{instruction}`), send the parts one after another, then post
    /// what the channel paid (`post-{instruction}`, the rest released) or
    /// void the reservation when it paid nothing (`void-{instruction}`).
    ///
    /// A part is sent only once the part before it is paid. A refused part
    /// stops the payout: the parts after it are never sent, and a payout of
    /// which some parts were paid ends PARTIALLY_PAID.
    async fn payout_steps(
        &self,
        from: PayoutFrom,
        payment: &mut PaymentWithInstructions,
        now: TimestampMicros,
    ) -> Result<(), EngineError> {
        let [instruction] = payment.instructions.as_mut_slice() else {
            return Err(EngineError::TooManyChannelSources);
        };
        let mut parts = self.orders.channel_orders(instruction.id, None).await?;
        if instruction.status.is_final() {
            // An earlier run got this far and stopped before the payment;
            // why a payout that paid nothing failed was not kept.
            let paid_minor = paid_out_minor(&parts);
            if paid_minor == 0 {
                return self.payout_failed(payment, None, now).await;
            }
            return self.payout_finished(payment, paid_minor, now).await;
        }
        if parts.is_empty() {
            let parts_max = self.payout_parts_max;
            match self
                .route_parts(&payment.payment, instruction, parts_max, now)
                .await?
            {
                // Created or found: the CREATED -> PROCESSING step of each
                // part below lets only one run send it.
                Ok((channel, amounts)) => {
                    parts = self
                        .orders
                        .create_payout_orders(instruction.id, channel.code(), &amounts, now)
                        .await?
                        .into_inner();
                }
                Err(no_route) => {
                    warn!(payment_id = payment.payment.id, %no_route, "no route for a payout");
                    self.move_instruction(instruction, InstructionStatus::Failed, now)
                        .await?;
                    let reason = Some(FailureReason::NoRoute);
                    return self.payout_failed(payment, reason, now).await;
                }
            }
        }
        let channel_code = parts
            .first()
            .map(|part| part.channel.clone())
            .ok_or(EngineError::NoChannel)?;
        let (payer_kind, payer_owner, payer_account) = match from {
            PayoutFrom::MemberCash => (
                OwnerKind::Member,
                payment.payment.payer_id.clone(),
                AccountKind::MemberCash,
            ),
            PayoutFrom::MerchantAvailable => (
                OwnerKind::Merchant,
                payment.payment.merchant_id.clone(),
                AccountKind::MerchantAvailable,
            ),
        };
        let debit = self
            .account(
                payer_kind,
                &payer_owner,
                payer_account,
                payment.payment.currency,
            )
            .await?;
        let clearing = self
            .account(
                OwnerKind::Channel,
                &channel_code,
                AccountKind::ChannelClearing,
                payment.payment.currency,
            )
            .await?;
        let hold = self
            .post(Operation::Transfer {
                key: format!("hold-{}", instruction.id),
                legs: two_legs(
                    debit,
                    clearing,
                    instruction.amount_minor,
                    payment.payment.currency,
                ),
                mode: TransferMode::Pending {
                    timeout_seconds: None,
                },
                description: format!("payout {} via {}", payment.payment.id, channel_code),
            })
            .await?;
        let hold = match hold {
            Ok(hold) => hold,
            Err(refused) => {
                warn!(
                    payment_id = payment.payment.id,
                    code = refused.code(),
                    error = %refused,
                    "payout refused by the ledger"
                );
                // Nothing was sent: a part is sent only after the hold.
                for part in &mut parts {
                    self.close_channel_order(part, ChannelOrderStatus::Failed, now)
                        .await?;
                }
                self.move_instruction(instruction, InstructionStatus::Failed, now)
                    .await?;
                let reason = Some(FailureReason::PayoutRefused);
                return self.payout_failed(payment, reason, now).await;
            }
        };
        let channel = self.channel_by_code(&channel_code)?;
        let mut refused = false;
        for part in &mut parts {
            if refused {
                // After a refused part: never sent.
                self.close_channel_order(part, ChannelOrderStatus::Failed, now)
                    .await?;
                continue;
            }
            let request = ChannelRequest {
                direction: ChannelDirection::Payout,
                ..Self::channel_request(&payment.payment, part)
            };
            let answer = if let Some(stored) = Self::stored_answer(part) {
                stored
            } else if part.status == ChannelOrderStatus::Created {
                self.mark_sent(part, now).await?;
                if instruction.status == InstructionStatus::Created {
                    self.move_instruction(instruction, InstructionStatus::Processing, now)
                        .await?;
                }
                channel.submit(&request, now).await
            } else {
                channel.query(&request, now).await
            };
            match answer {
                Ok(ChannelOutcome::Success {
                    channel_transaction_id,
                    business_date,
                    fee_minor,
                }) => {
                    self.record_transaction_id(
                        part,
                        &channel_transaction_id,
                        &business_date,
                        fee_minor,
                        now,
                    )
                    .await?;
                    self.close_channel_order(part, ChannelOrderStatus::Success, now)
                        .await?;
                }
                Ok(ChannelOutcome::Failed { .. }) | Err(ChannelError::BankDown { .. }) => {
                    self.close_channel_order(part, ChannelOrderStatus::Failed, now)
                        .await?;
                    refused = true;
                }
                // No final answer: the reservation stays, and the parts
                // after this one wait, until a query tells.
                Ok(ChannelOutcome::Processing { .. }) | Err(_) => return Ok(()),
            }
        }
        let paid_minor = paid_out_minor(&parts);
        let operation = if paid_minor == 0 {
            Operation::VoidPending {
                key: format!("void-{}", instruction.id),
                pending_id: hold.id,
            }
        } else {
            Operation::PostPending {
                key: format!("post-{}", instruction.id),
                pending_id: hold.id,
                // A partly paid payout posts what left; the rest goes back.
                amount_minor: (paid_minor < instruction.amount_minor).then_some(paid_minor),
            }
        };
        self.post(operation).await?.map_err(EngineError::Ledger)?;
        let instruction_status = if paid_minor == 0 {
            InstructionStatus::Failed
        } else {
            InstructionStatus::Success
        };
        self.move_instruction(instruction, instruction_status, now)
            .await?;
        self.payout_finished(payment, paid_minor, now).await
    }

    /// Ends a payout whose parts are final by what they paid: SUCCESS when
    /// all of it, FAILED when nothing, else PARTIALLY_PAID.
    async fn payout_finished(
        &self,
        payment: &mut PaymentWithInstructions,
        paid_minor: i64,
        now: TimestampMicros,
    ) -> Result<(), EngineError> {
        if paid_minor == 0 {
            let reason = Some(FailureReason::ChannelRefused);
            return self.payout_failed(payment, reason, now).await;
        }
        // The fees are those of the payout: taken once it paid anything.
        self.settle_fees(&payment.payment, true, now).await?;
        let unpaid_minor = payment.payment.amount_minor - paid_minor;
        self.settle_trade(payment, unpaid_minor, now).await?;
        let (status, reason) = if unpaid_minor == 0 {
            (PaymentStatus::Success, None)
        } else {
            (
                PaymentStatus::PartiallyPaid,
                Some(FailureReason::ChannelRefused),
            )
        };
        self.move_payment(&mut payment.payment, status, now, reason)
            .await
    }

    /// A payout that did not leave: its fees go back, then it fails.
    async fn payout_failed(
        &self,
        payment: &mut PaymentWithInstructions,
        reason: Option<FailureReason>,
        now: TimestampMicros,
    ) -> Result<(), EngineError> {
        self.settle_fees(&payment.payment, false, now).await?;
        // What it counted on the daily limits did not happen.
        self.release_payment_limits(payment, now).await?;
        self.move_payment(&mut payment.payment, PaymentStatus::Failed, now, reason)
            .await
    }

    /// The account of `owner_id`'s `kind` in `currency`, opened on first
    /// use (with the kind's default subject) and remembered.
    pub async fn account(
        &self,
        owner_kind: OwnerKind,
        owner_id: &str,
        kind: AccountKind,
        currency: Currency,
    ) -> Result<AccountId, EngineError> {
        let key = (owner_kind, owner_id.to_owned(), kind, currency);
        if let Some(id) = self
            .accounts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key)
        {
            return Ok(*id);
        }
        let id = self
            .ledger
            .open_account(&NewAccount {
                subject_code: default_subject_code(kind).to_owned(),
                subject_class: kind.default_subject_class(),
                kind,
                owner_kind,
                owner_id: owner_id.to_owned(),
                currency,
                // Suspense (挂账) holds differences either way round until
                // they are explained, so it may go negative; so may the
                // deferred bonus, should bonus reach members otherwise
                // than by a campaign.
                overdraft: if matches!(kind, AccountKind::Suspense | AccountKind::BonusDeferred) {
                    Overdraft::Unlimited
                } else {
                    Overdraft::default()
                },
            })
            .await?;
        self.accounts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key, id);
        Ok(id)
    }

    async fn payee_account(
        &self,
        product: &Product,
        payment: &PaymentOrder,
    ) -> Result<AccountId, EngineError> {
        match product.payee {
            Payee::Bank { .. } => Err(EngineError::NotRefundable(product.code.clone())),
            Payee::Merchant => {
                self.account(
                    OwnerKind::Merchant,
                    &payment.merchant_id,
                    AccountKind::MerchantPending,
                    payment.currency,
                )
                .await
            }
            Payee::Escrow { .. } => {
                self.account(
                    OwnerKind::Merchant,
                    &payment.merchant_id,
                    AccountKind::MerchantEscrow,
                    payment.currency,
                )
                .await
            }
            Payee::PayerCash => {
                self.account(
                    OwnerKind::Member,
                    &payment.payer_id,
                    AccountKind::MemberCash,
                    payment.currency,
                )
                .await
            }
        }
    }

    /// Where a refund takes its money from: the payee's account, except for
    /// an escrow trade's refund after release, which takes it from the
    /// merchant's settlement-pending account the release paid.
    async fn refund_payee_account(
        &self,
        product: &Product,
        payment: &PaymentOrder,
        refund: &RefundOrder,
    ) -> Result<AccountId, EngineError> {
        if matches!(product.payee, Payee::Escrow { .. }) && !refund.from_escrow {
            return self
                .account(
                    OwnerKind::Merchant,
                    &payment.merchant_id,
                    AccountKind::MerchantPending,
                    payment.currency,
                )
                .await;
        }
        self.payee_account(product, payment).await
    }

    async fn source_account(
        &self,
        payment: &PaymentOrder,
        source: FundingSource,
        channel: &str,
    ) -> Result<AccountId, EngineError> {
        let (owner_kind, owner_id, kind) = match source {
            FundingSource::Balance => (
                OwnerKind::Member,
                payment.payer_id.as_str(),
                AccountKind::MemberCash,
            ),
            FundingSource::Bonus => (
                OwnerKind::Member,
                payment.payer_id.as_str(),
                AccountKind::MemberBonus,
            ),
            FundingSource::Coupon | FundingSource::Discount => (
                OwnerKind::Platform,
                crate::BONUS_OWNER,
                AccountKind::PlatformMarketing,
            ),
            FundingSource::StoredValue => {
                return Err(EngineError::Invariant(
                    "a stored-value part is split before it is stored",
                ));
            }
            FundingSource::Card | FundingSource::BankAccount | FundingSource::Wallet => {
                (OwnerKind::Channel, channel, AccountKind::ChannelClearing)
            }
        };
        self.account(owner_kind, owner_id, kind, payment.currency)
            .await
    }

    /// Submits one ledger operation and returns its transfer, or the
    /// ledger's refusal.
    pub(crate) async fn post(
        &self,
        operation: Operation,
    ) -> Result<Result<Transfer, LedgerError>, EngineError> {
        let mut results = self
            .ledger
            .submit(vec![BatchItem::single(operation)])
            .await?;
        if results.is_empty() {
            return Err(EngineError::Store(StoreError::Closed));
        }
        Ok(results.remove(0))
    }

    /// 挂账 / 调账 — moves `amount_minor` between a channel's clearing
    /// account and the platform's suspense account, once per `key`.
    /// Positive: the channel holds more than we booked (debit clearing,
    /// credit suspense); negative: the other way round. Reconciliation uses
    /// it for money it cannot yet explain.
    pub async fn post_to_suspense(
        &self,
        key: String,
        channel: &str,
        amount_minor: i64,
        currency: Currency,
        description: String,
    ) -> Result<Transfer, EngineError> {
        let clearing = self
            .account(
                OwnerKind::Channel,
                channel,
                AccountKind::ChannelClearing,
                currency,
            )
            .await?;
        let suspense = self
            .account(
                OwnerKind::Platform,
                SUSPENSE_OWNER,
                AccountKind::Suspense,
                currency,
            )
            .await?;
        let (debit, credit) = if amount_minor >= 0 {
            (clearing, suspense)
        } else {
            (suspense, clearing)
        };
        let magnitude = amount_minor
            .checked_abs()
            .ok_or(EngineError::Ledger(LedgerError::Overflow))?;
        self.post(Operation::Transfer {
            key,
            legs: two_legs(debit, credit, magnitude, currency),
            mode: TransferMode::Posted,
            description,
        })
        .await?
        .map_err(EngineError::Ledger)
    }

    /// The pending transfer that reserves an internal source for the payee;
    /// replayed from the ledger on every call after the first.
    async fn hold_transfer(
        &self,
        product: &Product,
        payment: &PaymentOrder,
        instruction: &PaymentInstruction,
    ) -> Result<Result<Transfer, LedgerError>, EngineError> {
        let debit = self.source_account(payment, instruction.source, "").await?;
        let credit = self.payee_account(product, payment).await?;
        self.post(Operation::Transfer {
            key: format!("hold-{}", instruction.id),
            legs: two_legs(debit, credit, instruction.amount_minor, payment.currency),
            mode: TransferMode::Pending {
                timeout_seconds: None,
            },
            description: format!("payment {} {}", payment.id, instruction.source.as_str()),
        })
        .await
    }

    /// Step 1 for one internal source. False when the source cannot pay.
    async fn hold(
        &self,
        product: &Product,
        payment: &mut PaymentWithInstructions,
        index: usize,
        now: TimestampMicros,
    ) -> Result<bool, EngineError> {
        let instruction = &payment.instructions[index];
        if instruction.status != InstructionStatus::Created {
            return Ok(instruction.status != InstructionStatus::Failed);
        }
        let held = self
            .hold_transfer(product, &payment.payment, instruction)
            .await?;
        let next = if held.is_ok() {
            InstructionStatus::Processing
        } else {
            InstructionStatus::Failed
        };
        self.move_instruction(&mut payment.instructions[index], next, now)
            .await?;
        Ok(held.is_ok())
    }

    pub(crate) fn channel_by_code(&self, code: &str) -> Result<&C, EngineError> {
        self.channels
            .iter()
            .find(|channel| channel.code() == code)
            .ok_or(EngineError::NoChannel)
    }

    /// The cheapest usable route's channel for an instruction, by the
    /// routes and the banks marked down, counting nothing.
    pub(crate) async fn preview_route(
        &self,
        payment: &PaymentOrder,
        instruction: &PaymentInstruction,
    ) -> Result<Option<String>, EngineError> {
        let outages = self.orders.bank_outages().await?;
        let routes = crate::agreement::routes_for(&self.orders, &self.routes, payment).await?;
        let first = usable_routes(
            &routes,
            &outages,
            instruction.source,
            payment.bank.as_deref(),
            instruction.amount_minor,
        )
        .first()
        .map(|route| route.channel.clone());
        Ok(first)
    }

    /// The channel of an instruction's first channel order: the cheapest
    /// usable route whose channel still has room for it today. The amount
    /// is counted on that channel's daily counter (once per channel and
    /// instruction) in the same step that checks the room.
    pub(crate) async fn route(
        &self,
        payment: &PaymentOrder,
        instruction: &PaymentInstruction,
        now: TimestampMicros,
    ) -> Result<Result<&C, NoRoute>, EngineError> {
        let routed = self.route_parts(payment, instruction, 1, now).await?;
        Ok(routed.map(|(channel, _)| channel))
    }

    /// [`PaymentService::route`] for an instruction that may be split into
    /// at most `parts_max` channel orders (a payout, 拆单): the routes that
    /// take it in one transaction come first, cheapest first; then those
    /// that take it in parts of their per-transaction limit, cheapest
    /// first. The channel with the amounts of its parts ([`payout_parts`]).
    pub(crate) async fn route_parts(
        &self,
        payment: &PaymentOrder,
        instruction: &PaymentInstruction,
        parts_max: usize,
        now: TimestampMicros,
    ) -> Result<Result<(&C, Vec<i64>), NoRoute>, EngineError> {
        let outages = self.orders.bank_outages().await?;
        let routes = crate::agreement::routes_for(&self.orders, &self.routes, payment).await?;
        let amount_minor = instruction.amount_minor;
        let up = routes_up(
            &routes,
            &outages,
            instruction.source,
            payment.bank.as_deref(),
        );
        let (whole, split): (Vec<&Route>, Vec<&Route>) = up
            .into_iter()
            .partition(|route| amount_minor <= route.amount_minor_max);
        for route in whole.into_iter().chain(split) {
            let Some(parts) = payout_parts(amount_minor, route.amount_minor_max, parts_max) else {
                continue;
            };
            if let Some(limit_minor) = route.daily_minor_max {
                let date = business_date(now)?;
                let charge = channel_charge(&route.channel, instruction.id, date, amount_minor);
                if self
                    .count_within(&charge, limit_minor, now)
                    .await?
                    .is_some()
                {
                    warn!(
                        payment_id = payment.id,
                        channel = %route.channel,
                        limit_minor,
                        "the channel's daily limit is reached: the next route is tried"
                    );
                    continue;
                }
            }
            return Ok(Ok((self.channel_by_code(&route.channel)?, parts)));
        }
        Ok(Err(NoRoute::new(
            instruction.source,
            amount_minor,
            payment.bank.as_deref(),
        )))
    }

    fn channel_request(payment: &PaymentOrder, order: &ChannelOrder) -> ChannelRequest {
        ChannelRequest {
            channel_order_id: order.id,
            direction: ChannelDirection::Collect,
            amount_minor: order.amount_minor,
            currency: order.currency,
            bank: payment.bank.clone(),
            submitted_at: order.created_at,
            agreement_no: payment.agreement_no.clone(),
        }
    }

    /// Step 2 for the channel source. Why it failed, when it failed for
    /// good.
    async fn collect(
        &self,
        product: &Product,
        payment: &mut PaymentWithInstructions,
        index: usize,
        now: TimestampMicros,
    ) -> Result<Option<FailureReason>, EngineError> {
        let status = payment.instructions[index].status;
        if status.is_final() {
            // Failed before: the reason was recorded by the run that saw it.
            return Ok(
                (status == InstructionStatus::Failed).then_some(FailureReason::ChannelRefused)
            );
        }
        let instruction_id = payment.instructions[index].id;
        let existing = self.orders.channel_orders(instruction_id, None).await?;
        let (mut order, answer) = match existing.into_iter().next() {
            Some(order) => {
                let answer = match Self::stored_answer(&order) {
                    Some(stored) => stored,
                    None => {
                        let channel = self.channel_by_code(&order.channel)?;
                        let request = Self::channel_request(&payment.payment, &order);
                        channel.query(&request, now).await
                    }
                };
                (order, answer)
            }
            None => {
                let channel = match self
                    .route(&payment.payment, &payment.instructions[index], now)
                    .await?
                {
                    Ok(channel) => channel,
                    Err(no_route) => {
                        warn!(payment_id = payment.payment.id, %no_route, "no route for a channel source");
                        self.move_instruction(
                            &mut payment.instructions[index],
                            InstructionStatus::Failed,
                            now,
                        )
                        .await?;
                        return Ok(Some(FailureReason::NoRoute));
                    }
                };
                let amount_minor = payment.instructions[index].amount_minor;
                let created = self
                    .orders
                    .create_channel_order(instruction_id, None, channel.code(), amount_minor, now)
                    .await?;
                // Only the run that created the order sends it; another run
                // that raced it asks where it stands.
                let (order, answer) = match created {
                    Created::New(order) => {
                        let request = Self::channel_request(&payment.payment, &order);
                        let answer = channel.submit(&request, now).await;
                        (order, answer)
                    }
                    Created::Existing(order) => {
                        let request = Self::channel_request(&payment.payment, &order);
                        let answer = match Self::stored_answer(&order) {
                            Some(stored) => stored,
                            None => {
                                self.channel_by_code(&order.channel)?
                                    .query(&request, now)
                                    .await
                            }
                        };
                        (order, answer)
                    }
                };
                (order, answer)
            }
        };
        // Under way, each unless it got further before (a stored answer).
        let instruction_to = match status {
            InstructionStatus::Created => InstructionStatus::Processing,
            other => other,
        };
        let order_to = match order.status {
            ChannelOrderStatus::Created => ChannelOrderStatus::Processing,
            other => other,
        };
        self.move_with_order(
            &mut payment.instructions[index],
            instruction_to,
            &mut order,
            order_to,
            None,
            now,
        )
        .await?;
        self.channel_answer(product, payment, index, order, answer, now)
            .await
    }

    /// Moves an instruction and its channel order, each unless it is
    /// there already, and records the channel's answer on the order unless
    /// it has its institution's id already, in one write.
    async fn move_with_order(
        &self,
        instruction: &mut PaymentInstruction,
        instruction_to: InstructionStatus,
        order: &mut ChannelOrder,
        order_to: ChannelOrderStatus,
        answer: Option<ChannelAnswer<'_>>,
        now: TimestampMicros,
    ) -> Result<(), EngineError> {
        let mut moves = Vec::with_capacity(2);
        if instruction.status != instruction_to {
            moves.push(
                Move::new(instruction.id, instruction.status, instruction_to)
                    .map_err(OrderError::from)?,
            );
        }
        if order.status != order_to {
            moves.push(Move::new(order.id, order.status, order_to).map_err(OrderError::from)?);
        }
        match answer.and_then(|answer| answer.for_order(order)) {
            Some((transaction_id, booking)) => {
                self.orders
                    .record_channel_answer(order.id, transaction_id, booking, &moves, now)
                    .await?;
                order.channel_transaction_id = Some(transaction_id.to_owned());
            }
            None if moves.is_empty() => return Ok(()),
            None => self.orders.transitions(&moves, now).await?,
        }
        if instruction.status != instruction_to {
            instruction.status = instruction_to;
            instruction.updated_at = now;
        }
        order.status = order_to;
        Ok(())
    }

    /// Acts on what the channel said about `order`.
    async fn channel_answer(
        &self,
        product: &Product,
        payment: &mut PaymentWithInstructions,
        index: usize,
        mut order: ChannelOrder,
        answer: Result<ChannelOutcome, ChannelError>,
        now: TimestampMicros,
    ) -> Result<Option<FailureReason>, EngineError> {
        match answer {
            Ok(ChannelOutcome::Success {
                channel_transaction_id,
                business_date,
                fee_minor,
            }) => {
                let debit = self
                    .source_account(
                        &payment.payment,
                        payment.instructions[index].source,
                        &order.channel,
                    )
                    .await?;
                let credit = self.payee_account(product, &payment.payment).await?;
                let collected = self
                    .post(Operation::Transfer {
                        key: format!("collect-{}", order.id),
                        legs: two_legs(debit, credit, order.amount_minor, order.currency),
                        mode: TransferMode::Posted,
                        description: format!(
                            "payment {} via {}",
                            payment.payment.id, order.channel
                        ),
                    })
                    .await?;
                collected.map_err(EngineError::Ledger)?;
                // The institution's id with the statuses: a crash before
                // this write leaves the order PROCESSING, and the resolver
                // asks the channel again (the transfer is idempotent).
                let answer = ChannelAnswer {
                    transaction_id: &channel_transaction_id,
                    business_date: &business_date,
                    fee_minor,
                };
                self.move_with_order(
                    &mut payment.instructions[index],
                    InstructionStatus::Success,
                    &mut order,
                    ChannelOrderStatus::Success,
                    Some(answer),
                    now,
                )
                .await?;
                Ok(None)
            }
            Ok(ChannelOutcome::Failed { .. }) | Err(ChannelError::BankDown { .. }) => {
                self.move_with_order(
                    &mut payment.instructions[index],
                    InstructionStatus::Failed,
                    &mut order,
                    ChannelOrderStatus::Failed,
                    None,
                    now,
                )
                .await?;
                Ok(Some(FailureReason::ChannelRefused))
            }
            // No final answer yet: query first, then act; never guess.
            Ok(ChannelOutcome::Processing { .. }) | Err(_) => Ok(None),
        }
    }

    /// Step 3, success: post the holds, then the payment, then the trade.
    async fn succeed(
        &self,
        product: &Product,
        payment: &mut PaymentWithInstructions,
        now: TimestampMicros,
    ) -> Result<(), EngineError> {
        for index in 0..payment.instructions.len() {
            let instruction = &payment.instructions[index];
            if instruction.source.through_channel()
                || instruction.status != InstructionStatus::Processing
            {
                continue;
            }
            let hold = self
                .hold_transfer(product, &payment.payment, instruction)
                .await?
                .map_err(EngineError::Ledger)?;
            self.post(Operation::PostPending {
                key: format!("post-{}", instruction.id),
                pending_id: hold.id,
                amount_minor: None,
            })
            .await?
            .map_err(EngineError::Ledger)?;
            self.move_instruction(
                &mut payment.instructions[index],
                InstructionStatus::Success,
                now,
            )
            .await?;
        }
        // The trade first: a crash before the payment is final leaves it
        // PROCESSING, and the resolver finishes it; settling is idempotent.
        let trade = self.settle_trade(payment, 0, now).await?;
        // A duplicate payment's fees go back with its money.
        let duplicate = trade.paid_payment_id != Some(payment.payment.id);
        self.settle_fees(&payment.payment, !duplicate, now).await?;
        self.book_bonus(product, payment, !duplicate).await?;
        let (clearing, fee) = self.payment_clearing(product, payment, &trade, now).await?;
        // 担保交易: the money waits in escrow; it is cleared at release.
        let escrow = match product.payee {
            Payee::Escrow {
                auto_release_seconds,
            } if !duplicate => Some(NewEscrow {
                trade_id: trade.id,
                merchant_id: trade.merchant_id.clone(),
                payment_id: payment.payment.id,
                currency: payment.payment.currency,
                held_minor: payment.payment.amount_minor,
                release_due_at: now.saturating_add(auto_release_seconds.saturating_mul(1_000_000)),
            }),
            _ => None,
        };
        let finish = PaymentFinish {
            to: PaymentStatus::Success,
            event: NotificationEvent::PaymentSucceeded,
            failure: None,
            clearing: clearing.as_ref(),
            fee: fee.as_ref(),
            escrow: escrow.as_ref(),
        };
        self.orders
            .finish_payment(&payment.payment, &finish, now)
            .await?;
        payment.payment.status = PaymentStatus::Success;
        payment.payment.updated_at = now;
        Ok(())
    }

    /// The clearing entry of a merchant collection that succeeds now, with
    /// its fee, and the fee to record with it if it was priced now; `None`
    /// for products that do not pay a merchant now (an escrow trade is
    /// cleared at release). A duplicate payment (the trade was paid by
    /// another) is cleared without a fee: its refund follows.
    async fn payment_clearing(
        &self,
        product: &Product,
        paid: &PaymentWithInstructions,
        trade: &TradeOrder,
        now: TimestampMicros,
    ) -> Result<(Option<NewClearingEntry>, Option<NewPaymentFee>), EngineError> {
        if product.payee != Payee::Merchant {
            return Ok((None, None));
        }
        let priced = trade.paid_payment_id == Some(paid.payment.id);
        let (entry, fee) = self
            .collection_clearing(paid, trade, paid.payment.amount_minor, priced, now)
            .await?;
        Ok((Some(entry), fee))
    }

    /// The clearing entry of `amount_minor` collected for a merchant by a
    /// payment, priced (when `priced`) on that amount, and the fee to record
    /// with it if it was priced now.
    pub(crate) async fn collection_clearing(
        &self,
        paid: &PaymentWithInstructions,
        trade: &TradeOrder,
        amount_minor: i64,
        priced: bool,
        now: TimestampMicros,
    ) -> Result<(NewClearingEntry, Option<NewPaymentFee>), EngineError> {
        let payment = &paid.payment;
        let channel = self.channel_of(paid).await?;
        let date = business_date(now)?;
        let (charged, new_fee) = if priced {
            self.collection_fee(payment, amount_minor, channel.as_deref(), date, now)
                .await?
        } else {
            (None, None)
        };
        let (fee_minor, fee_mode, fee_rule_id) = match charged {
            Some(fee) => (fee.fee_minor, fee.collection, Some(fee.rule_id)),
            None => (0, CollectionMode::RealTime, None),
        };
        let entry = NewClearingEntry {
            merchant_id: payment.merchant_id.clone(),
            kind: ClearingKind::Collection,
            trade_id: trade.id,
            out_trade_no: trade.out_trade_no.clone(),
            payment_id: payment.id,
            refund_id: None,
            refund_serial: None,
            product: payment.product.clone(),
            reconciled: channel.is_none(),
            channel,
            currency: payment.currency,
            amount_minor,
            fee_minor,
            fee_mode,
            fee_rule_id,
            business_date: date.to_string(),
            occurred_at: now,
        };
        Ok((entry, new_fee))
    }

    /// The trade `trade_id` of `merchant_id`; NOT_FOUND if there is none.
    pub(crate) async fn trade_of(
        &self,
        merchant_id: &str,
        trade_id: TradeId,
    ) -> Result<TradeOrder, EngineError> {
        Ok(self
            .orders
            .trade(merchant_id, trade_id)
            .await?
            .ok_or(OrderError::NotFound {
                entity: "trade order",
                id: trade_id,
            })?)
    }

    /// The channel that carried a payment's channel source, if it had one.
    async fn channel_of(
        &self,
        paid: &PaymentWithInstructions,
    ) -> Result<Option<String>, EngineError> {
        for instruction in &paid.instructions {
            if instruction.source.through_channel() {
                let orders = self.orders.channel_orders(instruction.id, None).await?;
                if let Some(order) = orders.into_iter().next() {
                    return Ok(Some(order.channel));
                }
            }
        }
        Ok(None)
    }

    /// Marks the trade paid by `paid` (less `unpaid_minor`, what a partly
    /// paid payout did not pay), or raises the refund of a duplicate.
    /// Returns the trade as it stands then.
    async fn settle_trade(
        &self,
        paid: &PaymentWithInstructions,
        unpaid_minor: i64,
        now: TimestampMicros,
    ) -> Result<TradeOrder, EngineError> {
        let payment = &paid.payment;
        // What was actually paid excludes coupons: a used coupon is spent
        // and never refunded.
        let coupons_minor: i64 = paid
            .instructions
            .iter()
            .filter(|instruction| instruction.source == FundingSource::Coupon)
            .map(|instruction| instruction.amount_minor)
            .sum();
        let trade = self
            .trade_of(&payment.merchant_id, payment.trade_id)
            .await?;
        match trade.payment_success(payment.id) {
            PaymentSuccess::Paid => {
                let marked = self
                    .orders
                    .mark_trade_paid(
                        trade.id,
                        payment.id,
                        payment.amount_minor - coupons_minor - unpaid_minor,
                        now,
                    )
                    .await;
                match marked {
                    Ok(marked) => return Ok(marked),
                    // The trade changed since it was read: another payment
                    // succeeded at the same moment and paid it first (this
                    // one is the duplicate), or another run of this very
                    // payment (the resolver beside a slow request) did.
                    Err(OrderStoreError::Order(
                        OrderError::IllegalTransition(_) | OrderError::ConcurrentChange { .. },
                    )) => {
                        let now_paid = self
                            .trade_of(&payment.merchant_id, payment.trade_id)
                            .await?;
                        if now_paid.paid_payment_id == Some(payment.id) {
                            return Ok(now_paid);
                        }
                        let reason =
                            "duplicate payment: another payment paid the trade at the same time"
                                .to_owned();
                        self.raise_duplicate_refund(paid, coupons_minor, reason, now)
                            .await?;
                    }
                    Err(error) => return Err(error.into()),
                }
            }
            PaymentSuccess::AlreadyPaidByIt => return Ok(trade),
            // 重复支付: the money of a second success (or of a success after
            // the trade closed) goes back, through an operator's review.
            PaymentSuccess::Duplicate { paid_by } => {
                let reason = format!("duplicate payment: the trade was paid by payment {paid_by}");
                self.raise_duplicate_refund(paid, coupons_minor, reason, now)
                    .await?;
            }
            PaymentSuccess::TradeClosed => {
                let reason = "payment succeeded after the trade was closed".to_owned();
                self.raise_duplicate_refund(paid, coupons_minor, reason, now)
                    .await?;
            }
        }
        // A duplicate's refund was raised on the trade: read it again.
        self.trade_of(&payment.merchant_id, payment.trade_id).await
    }

    /// The refund, waiting for review, of a payment that must not keep its
    /// money; idempotent by its serial.
    async fn raise_duplicate_refund(
        &self,
        paid: &PaymentWithInstructions,
        coupons_minor: i64,
        reason: String,
        now: TimestampMicros,
    ) -> Result<(), EngineError> {
        let amount_minor = paid.payment.amount_minor - coupons_minor;
        if amount_minor <= 0 {
            return Ok(());
        }
        self.orders
            .create_refund(
                &NewRefund {
                    trade_id: paid.payment.trade_id,
                    payment_id: Some(paid.payment.id),
                    merchant_id: paid.payment.merchant_id.clone(),
                    refund_serial: duplicate_refund_serial(paid.payment.id),
                    amount_minor,
                    initiator: Initiator::Platform,
                    reason,
                    ordering: self.refund_ordering,
                    // A duplicate top-up granted no bonus.
                    bonus_void_minor: 0,
                    payee_escrow: matches!(
                        self.product(&paid.payment.product)?.payee,
                        Payee::Escrow { .. }
                    ),
                },
                now,
            )
            .await?;
        Ok(())
    }

    /// Step 3, failure: release every hold and fee and fail what is not
    /// final.
    async fn fail(
        &self,
        product: &Product,
        payment: &mut PaymentWithInstructions,
        reason: Option<FailureReason>,
        now: TimestampMicros,
    ) -> Result<(), EngineError> {
        for index in 0..payment.instructions.len() {
            let instruction = &payment.instructions[index];
            if instruction.status.is_final() {
                continue;
            }
            if instruction.source.through_channel() {
                // Failing is only reached before the channel was asked, or
                // after it refused: nothing is in flight there.
                if instruction.status == InstructionStatus::Created {
                    self.move_instruction(
                        &mut payment.instructions[index],
                        InstructionStatus::Failed,
                        now,
                    )
                    .await?;
                }
            } else {
                if let Ok(hold) = self
                    .hold_transfer(product, &payment.payment, instruction)
                    .await?
                {
                    let voided = self
                        .post(Operation::VoidPending {
                            key: format!("void-{}", instruction.id),
                            pending_id: hold.id,
                        })
                        .await?;
                    voided.map_err(EngineError::Ledger)?;
                }
                self.move_instruction(
                    &mut payment.instructions[index],
                    InstructionStatus::Failed,
                    now,
                )
                .await?;
            }
        }
        self.settle_fees(&payment.payment, false, now).await?;
        // What it counted on the daily limits did not happen.
        self.release_payment_limits(payment, now).await?;
        self.move_payment(&mut payment.payment, PaymentStatus::Failed, now, reason)
            .await
    }

    /// Counts a new payment request on the member's and, for a debit under
    /// an agreement, the card's daily counter, atomically; refuses it (and
    /// takes back what it counted) if either held more than its limit
    /// leaves room for. The keys of what it counted.
    async fn count_limits(
        &self,
        request: &PayRequest,
        now: TimestampMicros,
    ) -> Result<Vec<String>, EngineError> {
        let date = business_date(now)?;
        let mut counted = Vec::new();
        let mut wanted = Vec::new();
        // A member's daily limit is a member's: a merchant paying out of its
        // own available balance (代付, settlement payouts) is not one.
        let merchant_pays = matches!(
            self.product(&request.product)?.payee,
            Payee::Bank {
                from: PayoutFrom::MerchantAvailable
            }
        );
        if let Some(limit_minor) = self.limits.member_minor
            && !merchant_pays
        {
            wanted.push((LimitScope::Member, request.payer_id.clone(), limit_minor));
        }
        if let (Some(limit_minor), Some(agreement_no)) =
            (self.limits.card_minor, &request.agreement_no)
            && let Some(agreement) = self
                .orders
                .agreement_by_no(&request.merchant_id, agreement_no)
                .await?
        {
            wanted.push((LimitScope::Card, agreement.card_fingerprint, limit_minor));
        }
        for (scope, subject, limit_minor) in wanted {
            let charge = limit_charge(
                scope,
                &subject,
                &request.merchant_id,
                &request.request_serial,
                date,
                request.amount_minor,
            );
            let used_minor = match self.count_within(&charge, limit_minor, now).await {
                Ok(None) => {
                    counted.push(charge.charge_key);
                    continue;
                }
                Ok(Some(used_minor)) => used_minor,
                Err(error) => {
                    self.release_limits(&counted, now).await?;
                    return Err(error);
                }
            };
            self.release_limits(&counted, now).await?;
            return Err(match scope {
                LimitScope::Member => EngineError::LimitExceeded {
                    payer_id: request.payer_id.clone(),
                    limit_minor,
                    paid_today_minor: used_minor,
                },
                LimitScope::Card => EngineError::CardLimitExceeded {
                    agreement_no: request.agreement_no.clone().unwrap_or_default(),
                    limit_minor,
                    debited_today_minor: used_minor,
                },
            });
        }
        Ok(counted)
    }

    /// Counts `charge` on its daily counter unless it does not fit under
    /// `limit_minor`, in one atomic step of the store: `None` when it fits
    /// (and stays counted), or what the counter held before it when it does
    /// not (and nothing of it stays counted).
    async fn count_within(
        &self,
        charge: &FeeCharge,
        limit_minor: i64,
        now: TimestampMicros,
    ) -> Result<Option<i64>, EngineError> {
        let recorded = self.orders.record_fee_charge(charge, now).await?;
        let used_minor = recorded.before.volume_minor;
        if used_minor.saturating_add(charge.amount_minor) <= limit_minor {
            return Ok(None);
        }
        self.orders
            .release_fee_charge(&charge.charge_key, now)
            .await?;
        Ok(Some(used_minor))
    }

    /// Takes counted amounts back out of the daily counters (each once).
    async fn release_limits(
        &self,
        keys: &[String],
        now: TimestampMicros,
    ) -> Result<(), EngineError> {
        for key in keys {
            self.orders.release_fee_charge(key, now).await?;
        }
        Ok(())
    }

    /// Takes a failed payment's amount back out of the daily counters: the
    /// member's, the card's and those of the channels its instructions
    /// were routed to.
    async fn release_payment_limits(
        &self,
        payment: &PaymentWithInstructions,
        now: TimestampMicros,
    ) -> Result<(), EngineError> {
        let order = &payment.payment;
        let mut keys: Vec<String> = [LimitScope::Member, LimitScope::Card]
            .iter()
            .map(|scope| limit_charge_key(*scope, &order.merchant_id, &order.request_serial))
            .collect();
        let routed = payment
            .instructions
            .iter()
            .filter(|instruction| instruction.source.through_channel());
        for instruction in routed {
            for route in &self.routes {
                if route.daily_minor_max.is_some() {
                    keys.push(channel_charge_key(&route.channel, instruction.id));
                }
            }
        }
        self.release_limits(&keys, now).await
    }

    pub(crate) async fn move_payment(
        &self,
        payment: &mut PaymentOrder,
        next: PaymentStatus,
        now: TimestampMicros,
        failure: Option<FailureReason>,
    ) -> Result<(), EngineError> {
        let event = match next {
            PaymentStatus::Success => Some(NotificationEvent::PaymentSucceeded),
            PaymentStatus::PartiallyPaid => Some(NotificationEvent::PaymentPartiallyPaid),
            PaymentStatus::Failed => Some(NotificationEvent::PaymentFailed),
            PaymentStatus::Created | PaymentStatus::Processing => None,
        };
        match event {
            // The merchant is told of every final result, in the same
            // transaction that makes it final.
            Some(event) => {
                let finish = PaymentFinish {
                    to: next,
                    event,
                    failure,
                    clearing: None,
                    fee: None,
                    escrow: None,
                };
                self.orders.finish_payment(payment, &finish, now).await?
            }
            None => {
                self.orders
                    .transition(payment.id, payment.status, next, now)
                    .await?
            }
        }
        payment.status = next;
        payment.failure = failure;
        payment.updated_at = now;
        Ok(())
    }

    async fn move_instruction(
        &self,
        instruction: &mut PaymentInstruction,
        next: InstructionStatus,
        now: TimestampMicros,
    ) -> Result<(), EngineError> {
        self.orders
            .transition(instruction.id, instruction.status, next, now)
            .await?;
        instruction.status = next;
        instruction.updated_at = now;
        Ok(())
    }

    /// Refunds (part of) a paid trade: the amount goes back to the sources
    /// that paid it, channel sources first (`allocate_refund`). A refund the
    /// platform starts waits in PENDING_REVIEW for an operator.
    pub async fn refund(
        &self,
        request: &RefundRequest,
        now: TimestampMicros,
    ) -> Result<RefundView, EngineError> {
        let trade = self
            .orders
            .trade_by_out_trade_no(&request.merchant_id, &request.out_trade_no)
            .await?
            .ok_or(OrderError::NotFound {
                entity: "trade order",
                id: 0,
            })?;
        let mut bonus_void_minor = 0;
        let mut payee_escrow = false;
        if let Some(paid_by) = trade.paid_payment_id {
            let paid = self
                .orders
                .payment(&request.merchant_id, paid_by)
                .await?
                .ok_or(OrderError::NotFound {
                    entity: "payment order",
                    id: paid_by,
                })?;
            match self.product(&paid.payment.product)?.payee {
                Payee::Bank { .. } => {
                    return Err(EngineError::NotRefundable(paid.payment.product));
                }
                Payee::Escrow { .. } => payee_escrow = true,
                Payee::Merchant | Payee::PayerCash => {}
            }
            // A repeated serial keeps the void of its first request.
            bonus_void_minor = self
                .bonus_void_for_refund(&paid.payment, request.amount_minor)
                .await?;
        }
        let created = self
            .orders
            .create_refund(
                &NewRefund {
                    trade_id: trade.id,
                    payment_id: None,
                    merchant_id: request.merchant_id.clone(),
                    refund_serial: request.refund_serial.clone(),
                    amount_minor: request.amount_minor,
                    initiator: request.initiator,
                    reason: request.reason.clone(),
                    ordering: self.refund_ordering,
                    bonus_void_minor,
                    payee_escrow,
                },
                now,
            )
            .await?;
        match created {
            Created::New(refund) => self.advance_refund(refund, now).await,
            Created::Existing(refund) => self.refund_view(refund).await,
        }
    }

    /// An operator's decision on a refund in PENDING_REVIEW, recorded with
    /// who made it and why.
    pub async fn review_refund(
        &self,
        merchant_id: &str,
        refund_id: RefundId,
        review: &NewRefundReview,
        now: TimestampMicros,
    ) -> Result<RefundView, EngineError> {
        let refund = self.refund_order(merchant_id, refund_id).await?;
        let next = if review.approved {
            RefundStatus::Processing
        } else {
            RefundStatus::Failed
        };
        self.orders
            .review_refund(&refund, next, review, now)
            .await?;
        if !review.approved {
            // Its parts never move money: release their share of the
            // sources for later refunds.
            for mut part in self.orders.refund_parts(refund.id).await? {
                if part.status == RefundPartStatus::Created {
                    self.move_part(&mut part, RefundPartStatus::Failed, now)
                        .await?;
                }
            }
        }
        let refund = self.refund_order(merchant_id, refund_id).await?;
        self.advance_refund(refund, now).await
    }

    /// Where a refund of `merchant_id` stands, without running anything.
    pub async fn refund_status(
        &self,
        merchant_id: &str,
        refund_id: RefundId,
    ) -> Result<RefundView, EngineError> {
        let refund = self.refund_order(merchant_id, refund_id).await?;
        self.refund_view(refund).await
    }

    /// The operator's queue: refunds waiting for review, with their parts
    /// and trades.
    pub async fn review_queue(&self, limit: usize) -> Result<Vec<RefundView>, EngineError> {
        let waiting = self.orders.refunds_waiting_review(limit).await?;
        let mut views = Vec::with_capacity(waiting.len());
        for refund in waiting {
            views.push(self.refund_view(refund).await?);
        }
        Ok(views)
    }

    /// Where a refund stands, advancing it if it can move.
    pub async fn resume_refund(
        &self,
        merchant_id: &str,
        refund_id: RefundId,
        now: TimestampMicros,
    ) -> Result<RefundView, EngineError> {
        let refund = self.refund_order(merchant_id, refund_id).await?;
        self.advance_refund(refund, now).await
    }

    /// Advances refunds left PROCESSING (a channel still to answer, or a
    /// crash), as `resolve_unfinished` does for payments.
    pub async fn resolve_unfinished_refunds(
        &self,
        now: TimestampMicros,
        quiet_micros: i64,
        limit: usize,
    ) -> Result<Vec<Result<RefundView, EngineError>>, EngineError> {
        let refunds = self
            .orders
            .unfinished_refunds(now.saturating_sub(quiet_micros), now, limit)
            .await?;
        let mut results = Vec::with_capacity(refunds.len());
        for refund in refunds {
            let id = refund.id;
            let result = self.advance_refund(refund, now).await;
            let unfinished = result
                .as_ref()
                .map_or(true, |view| !view.refund.status.is_final());
            if unfinished {
                self.orders
                    .defer_check(Level::Refund, id, now.saturating_add(quiet_micros))
                    .await?;
            }
            results.push(result);
        }
        Ok(results)
    }

    async fn refund_order(
        &self,
        merchant_id: &str,
        refund_id: RefundId,
    ) -> Result<RefundOrder, EngineError> {
        Ok(self
            .orders
            .refund(merchant_id, refund_id)
            .await?
            .ok_or(OrderError::NotFound {
                entity: "refund",
                id: refund_id,
            })?)
    }

    async fn refund_view(&self, refund: RefundOrder) -> Result<RefundView, EngineError> {
        let parts = self.orders.refund_parts(refund.id).await?;
        let trade = self.trade_of(&refund.merchant_id, refund.trade_id).await?;
        let paid = self
            .orders
            .payment(&refund.merchant_id, refund.payment_id)
            .await?
            .ok_or(OrderError::NotFound {
                entity: "payment order",
                id: refund.payment_id,
            })?;
        let part_sources = parts
            .iter()
            .map(|part| Self::instruction_of(&paid, part).map(|instruction| instruction.source))
            .collect::<Result<Vec<_>, _>>()?;
        let review = self.orders.refund_review(refund.id).await?;
        Ok(RefundView {
            refund,
            review,
            parts,
            part_sources,
            trade,
        })
    }

    /// Runs what can run of a PROCESSING refund: internal parts go back in
    /// one linked ledger batch (all or none), channel parts through the
    /// channel; when every part is final, the refund is.
    async fn advance_refund(
        &self,
        mut refund: RefundOrder,
        now: TimestampMicros,
    ) -> Result<RefundView, EngineError> {
        if refund.status != RefundStatus::Processing {
            return self.refund_view(refund).await;
        }
        let payment = self
            .orders
            .payment(&refund.merchant_id, refund.payment_id)
            .await?
            .ok_or(OrderError::NotFound {
                entity: "payment order",
                id: refund.payment_id,
            })?;
        let product = self.product(&payment.payment.product)?.clone();
        if matches!(product.payee, Payee::Bank { .. }) {
            return Err(EngineError::NotRefundable(product.code));
        }
        let mut parts = self.orders.refund_parts(refund.id).await?;
        // The bonus a top-up's refund voids is taken back before any money
        // goes: a member who spent it meanwhile stops the refund here.
        if refund.bonus_void_minor > 0
            && let Err(refused) = self.hold_bonus_void(&payment.payment, &refund).await?
        {
            warn!(
                refund_id = refund.id,
                code = refused.code(),
                "the bonus to void is spent; the refund fails"
            );
            for part in &mut parts {
                if part.status == RefundPartStatus::Created {
                    self.move_part(part, RefundPartStatus::Failed, now).await?;
                }
            }
        }
        self.refund_internal_parts(&product, &payment, &refund, &mut parts, now)
            .await?;
        for part in &mut parts {
            self.refund_channel_part(&product, &payment, &refund, part, now)
                .await?;
        }
        let all_final = parts.iter().all(|part| part.status.is_final());
        if all_final {
            let succeeded = parts
                .iter()
                .all(|part| part.status == RefundPartStatus::Success);
            let next = if succeeded {
                RefundStatus::Success
            } else {
                RefundStatus::Failed
            };
            self.settle_bonus_void(&payment.payment, &refund, succeeded)
                .await?;
            let cleared = match product.payee {
                Payee::Merchant => true,
                // Money out of escrow was never cleared.
                Payee::Escrow { .. } => !refund.from_escrow,
                Payee::PayerCash | Payee::Bank { .. } => false,
            };
            let clearing = if succeeded && cleared {
                Some(self.refund_clearing(&payment, &refund, &parts, now).await?)
            } else {
                None
            };
            // The refund's final status, the trade's refunded total and the
            // refund's clearing entry go in one transaction.
            self.orders
                .finish_refund(&refund, next, clearing.as_ref(), now)
                .await?;
            refund.status = next;
            refund.updated_at = now;
        }
        self.refund_view(refund).await
    }

    /// The clearing entry of a merchant refund that succeeds now. Fees are
    /// not given back on refunds: the entry's fee is zero. A refund whose
    /// parts all went back to internal sources (its payment's channel part
    /// was refunded before) has nothing outside to confirm: it is
    /// reconciled as it is written.
    async fn refund_clearing(
        &self,
        paid: &PaymentWithInstructions,
        refund: &RefundOrder,
        parts: &[RefundPart],
        now: TimestampMicros,
    ) -> Result<NewClearingEntry, EngineError> {
        let trade = self.trade_of(&refund.merchant_id, refund.trade_id).await?;
        let channel = self.channel_of(paid).await?;
        let mut through_channel = false;
        for part in parts {
            through_channel |= Self::instruction_of(paid, part)?.source.through_channel();
        }
        Ok(NewClearingEntry {
            merchant_id: refund.merchant_id.clone(),
            kind: ClearingKind::Refund,
            trade_id: trade.id,
            out_trade_no: trade.out_trade_no,
            payment_id: refund.payment_id,
            refund_id: Some(refund.id),
            refund_serial: Some(refund.refund_serial.clone()),
            product: paid.payment.product.clone(),
            reconciled: !through_channel,
            channel,
            currency: refund.currency,
            amount_minor: refund.amount_minor,
            fee_minor: 0,
            fee_mode: CollectionMode::RealTime,
            fee_rule_id: None,
            business_date: business_date(now)?.to_string(),
            occurred_at: now,
        })
    }

    fn instruction_of<'p>(
        payment: &'p PaymentWithInstructions,
        part: &RefundPart,
    ) -> Result<&'p PaymentInstruction, EngineError> {
        payment
            .instructions
            .iter()
            .find(|instruction| instruction.id == part.instruction_id)
            .ok_or(EngineError::Order(OrderError::NotFound {
                entity: "payment instruction",
                id: part.instruction_id,
            }))
    }

    async fn refund_internal_parts(
        &self,
        product: &Product,
        payment: &PaymentWithInstructions,
        refund: &RefundOrder,
        parts: &mut [RefundPart],
        now: TimestampMicros,
    ) -> Result<(), EngineError> {
        let payee = self
            .refund_payee_account(product, &payment.payment, refund)
            .await?;
        let mut items = Vec::new();
        let mut indexes = Vec::new();
        for (index, part) in parts.iter().enumerate() {
            let instruction = Self::instruction_of(payment, part)?;
            if instruction.source.through_channel() || part.status != RefundPartStatus::Created {
                continue;
            }
            let source = self
                .source_account(&payment.payment, instruction.source, "")
                .await?;
            items.push(BatchItem {
                operation: Operation::Transfer {
                    key: format!("refund-part-{}", part.id),
                    legs: two_legs(payee, source, part.amount_minor, payment.payment.currency),
                    mode: TransferMode::Posted,
                    description: format!("refund {} of payment {}", refund.id, payment.payment.id),
                },
                linked: true,
            });
            if instruction.source == FundingSource::Bonus {
                items.push(self.bonus_cost_back(&payment.payment, part).await?);
            }
            indexes.push(index);
        }
        let Some(last) = items.last_mut() else {
            return Ok(());
        };
        last.linked = false;
        let results = self.ledger.submit(items).await?;
        let next = if results.iter().all(Result::is_ok) {
            RefundPartStatus::Success
        } else {
            RefundPartStatus::Failed
        };
        for index in indexes {
            self.move_part(&mut parts[index], next, now).await?;
        }
        Ok(())
    }

    async fn refund_channel_part(
        &self,
        product: &Product,
        payment: &PaymentWithInstructions,
        refund: &RefundOrder,
        part: &mut RefundPart,
        now: TimestampMicros,
    ) -> Result<(), EngineError> {
        let instruction = Self::instruction_of(payment, part)?;
        if !instruction.source.through_channel() || part.status.is_final() {
            return Ok(());
        }
        // Money goes back through the channel it came in by.
        let collected = self.orders.channel_orders(instruction.id, None).await?;
        let collected_by = collected.first().ok_or(OrderError::NotFound {
            entity: "collect channel order",
            id: instruction.id,
        })?;
        let channel = self.channel_by_code(&collected_by.channel)?;
        // The refund is reserved from the payee before the channel is asked:
        // a payee that cannot cover it stops the refund before money leaves.
        let payee = self
            .refund_payee_account(product, &payment.payment, refund)
            .await?;
        let clearing = self
            .source_account(&payment.payment, instruction.source, channel.code())
            .await?;
        let hold = Operation::Transfer {
            key: format!("refund-hold-{}", part.id),
            legs: two_legs(payee, clearing, part.amount_minor, payment.payment.currency),
            mode: TransferMode::Pending {
                timeout_seconds: None,
            },
            description: format!("refund {} via {}", refund.id, channel.code()),
        };
        let existing = self
            .orders
            .channel_orders(instruction.id, Some(refund.id))
            .await?;
        let (mut order, answer) = match existing.into_iter().next() {
            Some(order) => {
                let request = Self::refund_request(&payment.payment, &order);
                let answer = match Self::stored_answer(&order) {
                    Some(stored) => stored,
                    None => channel.query(&request, now).await,
                };
                (order, answer)
            }
            None => {
                let created = self
                    .orders
                    .create_channel_order(
                        instruction.id,
                        Some(refund.id),
                        channel.code(),
                        part.amount_minor,
                        now,
                    )
                    .await?;
                match created {
                    Created::New(mut order) => {
                        if let Err(refused) = self.post(hold.clone()).await? {
                            warn!(
                                refund_id = refund.id,
                                code = refused.code(),
                                "refund refused by the ledger"
                            );
                            self.close_channel_order(&mut order, ChannelOrderStatus::Failed, now)
                                .await?;
                            return self.move_part(part, RefundPartStatus::Failed, now).await;
                        }
                        let request = Self::refund_request(&payment.payment, &order);
                        let answer = channel.submit(&request, now).await;
                        (order, answer)
                    }
                    Created::Existing(order) => {
                        let request = Self::refund_request(&payment.payment, &order);
                        let answer = match Self::stored_answer(&order) {
                            Some(stored) => stored,
                            None => channel.query(&request, now).await,
                        };
                        (order, answer)
                    }
                }
            }
        };
        if part.status == RefundPartStatus::Created {
            self.move_part(part, RefundPartStatus::Processing, now)
                .await?;
        }
        self.mark_sent(&mut order, now).await?;
        match answer {
            Ok(ChannelOutcome::Success {
                channel_transaction_id,
                business_date,
                fee_minor,
            }) => {
                self.record_transaction_id(
                    &mut order,
                    &channel_transaction_id,
                    &business_date,
                    fee_minor,
                    now,
                )
                .await?;
                let held = self.post(hold).await?.map_err(EngineError::Ledger)?;
                self.post(Operation::PostPending {
                    key: format!("refund-post-{}", part.id),
                    pending_id: held.id,
                    amount_minor: None,
                })
                .await?
                .map_err(EngineError::Ledger)?;
                self.close_channel_order(&mut order, ChannelOrderStatus::Success, now)
                    .await?;
                self.move_part(part, RefundPartStatus::Success, now).await
            }
            Ok(ChannelOutcome::Failed { .. }) | Err(ChannelError::BankDown { .. }) => {
                if let Ok(held) = self.post(hold).await? {
                    self.post(Operation::VoidPending {
                        key: format!("refund-void-{}", part.id),
                        pending_id: held.id,
                    })
                    .await?
                    .map_err(EngineError::Ledger)?;
                }
                self.close_channel_order(&mut order, ChannelOrderStatus::Failed, now)
                    .await?;
                self.move_part(part, RefundPartStatus::Failed, now).await
            }
            Ok(ChannelOutcome::Processing { .. }) | Err(_) => Ok(()),
        }
    }

    /// Moves a channel order to its final status, unless an earlier run
    /// already did (a crash between two steps, or a concurrent run).
    async fn close_channel_order(
        &self,
        order: &mut ChannelOrder,
        target: ChannelOrderStatus,
        now: TimestampMicros,
    ) -> Result<(), EngineError> {
        if order.status != target {
            self.orders
                .transition(order.id, order.status, target, now)
                .await?;
            order.status = target;
        }
        Ok(())
    }

    /// A channel order that is already final answers from what was stored:
    /// its channel is not asked again.
    fn stored_answer(order: &ChannelOrder) -> Option<Result<ChannelOutcome, ChannelError>> {
        match order.status {
            ChannelOrderStatus::Success => Some(Ok(ChannelOutcome::Success {
                channel_transaction_id: order.channel_transaction_id.clone().unwrap_or_default(),
                business_date: String::new(),
                fee_minor: 0,
            })),
            ChannelOrderStatus::Failed => Some(Ok(ChannelOutcome::Failed {
                code: "FAILED".to_owned(),
                message: "recorded earlier".to_owned(),
            })),
            ChannelOrderStatus::Created | ChannelOrderStatus::Processing => None,
        }
    }

    /// Records the institution's id once, with its business date and fee.
    async fn record_transaction_id(
        &self,
        order: &mut ChannelOrder,
        transaction_id: &str,
        business_date: &str,
        fee_minor: i64,
        now: TimestampMicros,
    ) -> Result<(), EngineError> {
        let answer = ChannelAnswer {
            transaction_id,
            business_date,
            fee_minor,
        };
        if let Some((transaction_id, booking)) = answer.for_order(order) {
            self.orders
                .set_channel_transaction_id(order.id, transaction_id, booking, now)
                .await?;
            order.channel_transaction_id = Some(transaction_id.to_owned());
        }
        Ok(())
    }

    /// CREATED → PROCESSING: the order is being sent to its channel.
    async fn mark_sent(
        &self,
        order: &mut ChannelOrder,
        now: TimestampMicros,
    ) -> Result<(), EngineError> {
        if order.status == ChannelOrderStatus::Created {
            self.orders
                .transition(
                    order.id,
                    ChannelOrderStatus::Created,
                    ChannelOrderStatus::Processing,
                    now,
                )
                .await?;
            order.status = ChannelOrderStatus::Processing;
        }
        Ok(())
    }

    fn refund_request(payment: &PaymentOrder, order: &ChannelOrder) -> ChannelRequest {
        ChannelRequest {
            direction: ChannelDirection::Refund,
            ..Self::channel_request(payment, order)
        }
    }

    async fn move_part(
        &self,
        part: &mut RefundPart,
        next: RefundPartStatus,
        now: TimestampMicros,
    ) -> Result<(), EngineError> {
        self.orders
            .transition(part.id, part.status, next, now)
            .await?;
        part.status = next;
        part.updated_at = now;
        Ok(())
    }

    async fn view(&self, payment: PaymentWithInstructions) -> Result<PaymentView, EngineError> {
        let trade = self
            .trade_of(&payment.payment.merchant_id, payment.payment.trade_id)
            .await?;
        let duplicate_of = match (
            payment.payment.status,
            trade.payment_success(payment.payment.id),
        ) {
            (PaymentStatus::Success, PaymentSuccess::Duplicate { paid_by }) => Some(paid_by),
            _ => None,
        };
        let fees = self.orders.payment_fees(payment.payment.id).await?;
        let mut payout_parts = Vec::new();
        for instruction in &payment.instructions {
            if instruction.direction == Direction::Payout {
                payout_parts.extend(self.orders.channel_orders(instruction.id, None).await?);
            }
        }
        Ok(PaymentView {
            trade,
            payment: payment.payment,
            instructions: payment.instructions,
            duplicate_of,
            fees,
            payout_parts,
        })
    }
}
