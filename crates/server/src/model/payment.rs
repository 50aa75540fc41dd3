//! Merchant and payment shapes of the API.

use super::parse_currency;
use crate::error::ApiError;
use crate::timestamp;
use engine::{FundingSource, PayRequest, PaymentView, Status};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// An operator registers a merchant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateMerchantRequest {
    /// Letters, digits, `-` and `_`.
    #[schema(example = "m-coffee")]
    pub id: String,
    pub name: String,
    /// Where the merchant's asynchronous notifications go.
    pub notify_url: Option<String>,
}

/// A merchant. The signing key is shown once, when it is created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MerchantResponse {
    pub id: String,
    pub name: String,
    pub notify_url: Option<String>,
    pub created_at: String,
    /// The HMAC-SHA256 key of its request signatures (creation only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signing_key: Option<String>,
}

impl MerchantResponse {
    pub fn new(merchant: &engine::Merchant, show_key: bool) -> Result<Self, ApiError> {
        Ok(MerchantResponse {
            id: merchant.id.clone(),
            name: merchant.name.clone(),
            notify_url: merchant.notify_url.clone(),
            created_at: timestamp::format(merchant.created_at)?,
            signing_key: show_key.then(|| merchant.signing_key.expose().clone()),
        })
    }
}

/// Where the money of one part of a payment comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FundingSourceName {
    Balance,
    Bonus,
    /// The member's one balance (储值): split into balance and bonus by
    /// the merchant's draw rule.
    StoredValue,
    Coupon,
    /// A discount card's share of the trade (折扣卡).
    Discount,
    Card,
    BankAccount,
    Wallet,
}

impl From<FundingSourceName> for FundingSource {
    fn from(value: FundingSourceName) -> Self {
        match value {
            FundingSourceName::Balance => FundingSource::Balance,
            FundingSourceName::Bonus => FundingSource::Bonus,
            FundingSourceName::StoredValue => FundingSource::StoredValue,
            FundingSourceName::Coupon => FundingSource::Coupon,
            FundingSourceName::Discount => FundingSource::Discount,
            FundingSourceName::Card => FundingSource::Card,
            FundingSourceName::BankAccount => FundingSource::BankAccount,
            FundingSourceName::Wallet => FundingSource::Wallet,
        }
    }
}

/// One funding source of a payment and how much it pays.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SourceRequest {
    pub source: FundingSourceName,
    pub amount_minor: i64,
}

/// A merchant's request to pay a trade; the merchant is the signer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PayRequestBody {
    /// The merchant's own order number; one trade per number.
    #[schema(example = "ORDER-20261122-0001")]
    pub out_trade_no: String,
    pub subject: String,
    pub amount_minor: i64,
    #[schema(example = "CNY")]
    pub currency: String,
    /// 请求流水号: a repeated serial is the same request and gets the same
    /// answer.
    pub request_serial: String,
    /// `instant_transfer` (pay the merchant) or `top_up` (the payer's own
    /// balance).
    #[schema(example = "instant_transfer")]
    pub product: String,
    /// The member who pays.
    pub payer_id: String,
    /// The payer's bank, for a card or bank source.
    pub bank: Option<String>,
    /// The parts; they must sum to the amount. At most one card, bank
    /// account or wallet part.
    pub sources: Vec<SourceRequest>,
    /// A top-up campaign (充值送) the top-up takes part in: its bonus is
    /// granted when the top-up succeeds.
    #[serde(default)]
    #[schema(example = "topup-100-get-180")]
    pub campaign: Option<String>,
    /// 代扣 (`debit_collection`): the ACTIVE agreement of this merchant and
    /// payer the card is debited under (its `agreement_no`). Other products
    /// take none.
    pub agreement_no: Option<String>,
}

impl PayRequestBody {
    pub fn into_request(self, merchant_id: &str) -> Result<PayRequest, ApiError> {
        Ok(PayRequest {
            merchant_id: merchant_id.to_owned(),
            out_trade_no: self.out_trade_no,
            subject: self.subject,
            amount_minor: self.amount_minor,
            currency: parse_currency(&self.currency)?,
            request_serial: self.request_serial,
            product: self.product,
            payer_id: self.payer_id,
            bank: self.bank,
            sources: self
                .sources
                .into_iter()
                .map(|part| (part.source.into(), part.amount_minor))
                .collect(),
            campaign: self.campaign,
            agreement_no: self.agreement_no,
        })
    }
}

/// A trade order (交易订单).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TradeResponse {
    pub id: i64,
    pub out_trade_no: String,
    pub subject: String,
    pub amount_minor: i64,
    pub currency: String,
    /// WAIT_PAY, SUCCESS, CLOSED, PARTIALLY_REFUNDED or REFUNDED.
    #[schema(example = "SUCCESS")]
    pub status: String,
    pub paid_payment_id: Option<i64>,
    pub paid_minor: i64,
    pub refunded_minor: i64,
    pub created_at: String,
    pub updated_at: String,
}

impl TryFrom<engine::TradeOrder> for TradeResponse {
    type Error = ApiError;

    fn try_from(trade: engine::TradeOrder) -> Result<Self, ApiError> {
        Ok(TradeResponse {
            id: trade.id,
            out_trade_no: trade.out_trade_no,
            subject: trade.subject,
            amount_minor: trade.amount_minor,
            currency: trade.currency.code().to_owned(),
            status: trade.status.as_str().to_owned(),
            paid_payment_id: trade.paid_payment_id,
            paid_minor: trade.paid_minor,
            refunded_minor: trade.refunded_minor,
            created_at: timestamp::format(trade.created_at)?,
            updated_at: timestamp::format(trade.updated_at)?,
        })
    }
}

/// One part of a payment (支付指令).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct InstructionResponse {
    pub id: i64,
    /// `collect` or `payout`.
    pub direction: String,
    pub source: String,
    pub amount_minor: i64,
    /// CREATED, PROCESSING, SUCCESS or FAILED.
    pub status: String,
    /// A payout's channel orders (机构订单), part 0 first: more than one
    /// when no channel takes the payout in one transaction (拆单). They are
    /// sent one after another; a refused part stops the ones after it.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub parts: Vec<PayoutPartResponse>,
}

/// One channel order of a payout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PayoutPartResponse {
    pub part_no: u32,
    pub channel: String,
    pub amount_minor: i64,
    /// CREATED (not sent yet), PROCESSING, SUCCESS or FAILED.
    pub status: String,
    /// The channel's own id, once it answered.
    pub channel_transaction_id: Option<String>,
}

/// A payment (支付订单) with its parts and its trade.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PaymentResponse {
    pub id: i64,
    pub request_serial: String,
    pub product: String,
    pub payer_id: String,
    pub amount_minor: i64,
    pub currency: String,
    /// CREATED, PROCESSING, SUCCESS, PARTIALLY_PAID or FAILED. PROCESSING
    /// means a channel has not answered yet: query again or wait for the
    /// notification. PARTIALLY_PAID (payouts split into parts only): some
    /// parts were paid and a later one refused; `paid_out_minor` left, the
    /// rest went back to the paying balance.
    #[schema(example = "SUCCESS")]
    pub status: String,
    /// A payout's amount paid out so far (its successful parts).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub paid_out_minor: Option<i64>,
    pub created_at: String,
    pub updated_at: String,
    pub instructions: Vec<InstructionResponse>,
    pub trade: TradeResponse,
    /// Set when this payment succeeded after another had paid the trade
    /// (重复支付): its money is to be refunded.
    pub duplicate_of: Option<i64>,
    /// Why it failed (FAILED, or why the rest of a PARTIALLY_PAID payout
    /// was not paid): `BALANCE_INSUFFICIENT`,
    /// `CHANNEL_REFUSED`, `NO_ROUTE`, `PAYOUT_REFUSED`,
    /// `FEE_ACCOUNT_INSUFFICIENT` (the merchant's prepaid fee account holds
    /// less than the fee), `FEE_BALANCE_INSUFFICIENT` (the balance its fee is
    /// paid from holds less) or `FEE_NOT_PRICED`.
    #[schema(example = "FEE_ACCOUNT_INSUFFICIENT")]
    pub failure_code: Option<String>,
    /// The fees charged on it (计费), one per side.
    pub fees: Vec<PaymentFeeResponse>,
    /// The top-up campaign it takes part in, and the bonus it grants.
    pub campaign: Option<String>,
    pub bonus_minor: i64,
    /// The agreement a debit (代扣) was made under.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub agreement_no: Option<String>,
}

/// A fee charged on a payment, on one side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PaymentFeeResponse {
    /// `payee` (the merchant's fee) or `payer` (the member's).
    #[schema(example = "payee")]
    pub side: String,
    /// Who pays it: the merchant or the member.
    pub party_id: String,
    pub rule_id: String,
    /// `real_time`, `post_paid` or `prepaid`.
    pub collection: String,
    /// How it is paid: `settlement` (deducted when the merchant is settled),
    /// `bill` (billed at month end), `fee_account` (the merchant's prepaid
    /// fee account), `merchant_available` or `member_cash`.
    pub funding: String,
    pub fee_minor: i64,
    /// RESERVED (held until the payment is final), CHARGED or VOIDED.
    pub status: String,
}

impl From<engine::PaymentFee> for PaymentFeeResponse {
    fn from(fee: engine::PaymentFee) -> Self {
        PaymentFeeResponse {
            side: fee.fee.side.as_str().to_owned(),
            party_id: fee.fee.party_id,
            rule_id: fee.fee.rule_id,
            collection: fee.fee.collection.as_str().to_owned(),
            funding: fee.fee.funding.as_str().to_owned(),
            fee_minor: fee.fee.fee_minor,
            status: fee.status.as_str().to_owned(),
        }
    }
}

impl TryFrom<PaymentView> for PaymentResponse {
    type Error = ApiError;

    fn try_from(view: PaymentView) -> Result<Self, ApiError> {
        let paid_out_minor = view.paid_out_minor();
        let payment = view.payment;
        let parts = view.payout_parts;
        Ok(PaymentResponse {
            id: payment.id,
            request_serial: payment.request_serial,
            product: payment.product,
            payer_id: payment.payer_id,
            amount_minor: payment.amount_minor,
            currency: payment.currency.code().to_owned(),
            status: payment.status.as_str().to_owned(),
            paid_out_minor,
            created_at: timestamp::format(payment.created_at)?,
            updated_at: timestamp::format(payment.updated_at)?,
            instructions: view
                .instructions
                .into_iter()
                .map(|instruction| InstructionResponse {
                    id: instruction.id,
                    direction: instruction.direction.as_str().to_owned(),
                    source: instruction.source.as_str().to_owned(),
                    amount_minor: instruction.amount_minor,
                    status: instruction.status.as_str().to_owned(),
                    parts: parts
                        .iter()
                        .filter(|part| part.instruction_id == instruction.id)
                        .map(|part| PayoutPartResponse {
                            part_no: part.part_no,
                            channel: part.channel.clone(),
                            amount_minor: part.amount_minor,
                            status: part.status.as_str().to_owned(),
                            channel_transaction_id: part.channel_transaction_id.clone(),
                        })
                        .collect(),
                })
                .collect(),
            trade: TradeResponse::try_from(view.trade)?,
            duplicate_of: view.duplicate_of,
            failure_code: payment.failure.map(|reason| reason.as_str().to_owned()),
            campaign: payment.campaign,
            bonus_minor: payment.bonus_minor,
            fees: view
                .fees
                .into_iter()
                .map(PaymentFeeResponse::from)
                .collect(),
            agreement_no: payment.agreement_no,
        })
    }
}

/// A merchant's refund request; the merchant is the signer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundRequestBody {
    pub out_trade_no: String,
    /// Unique per merchant: a repeat is the same refund.
    pub refund_serial: String,
    pub amount_minor: i64,
    #[serde(default)]
    pub reason: String,
}

/// An operator's decision on a refund waiting for review.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewRequest {
    pub merchant_id: String,
    /// True to pay the refund out, false to reject it.
    pub approve: bool,
    /// Who decides: recorded with the decision.
    #[schema(example = "ops-li")]
    pub operator: String,
    /// Why: recorded with the decision.
    #[schema(example = "duplicate payment confirmed with the channel")]
    pub reason: String,
}

impl ReviewRequest {
    pub fn review(&self) -> engine::NewRefundReview {
        engine::NewRefundReview {
            operator: self.operator.clone(),
            approved: self.approve,
            reason: self.reason.clone(),
        }
    }
}

/// An operator's recorded decision on a refund.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RefundReviewResponse {
    pub operator: String,
    pub approved: bool,
    pub reason: String,
    pub reviewed_at: String,
}

/// The share of a refund that goes back to one funding source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RefundPartResponse {
    pub instruction_id: i64,
    /// The funding source it goes back to: `card`, `wallet`, `balance`,
    /// `bonus`, `discount` (back to the discount card's discount)...
    #[schema(example = "card")]
    pub source: String,
    pub amount_minor: i64,
    /// CREATED, PROCESSING, SUCCESS or FAILED.
    pub status: String,
}

/// A refund with its parts and its trade.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RefundResponse {
    pub id: i64,
    pub refund_serial: String,
    pub amount_minor: i64,
    pub currency: String,
    /// PENDING_REVIEW, PROCESSING, SUCCESS or FAILED.
    #[schema(example = "SUCCESS")]
    pub status: String,
    /// `merchant` or `platform`.
    pub initiator: String,
    pub reason: String,
    pub created_at: String,
    pub updated_at: String,
    /// Bonus it voids (a refund of a top-up that granted a bonus).
    pub bonus_void_minor: i64,
    /// The operator's decision, for a refund that waited for review.
    pub review: Option<RefundReviewResponse>,
    /// Its allocation, one part per funding source.
    pub parts: Vec<RefundPartResponse>,
    pub trade: TradeResponse,
}

impl TryFrom<engine::RefundView> for RefundResponse {
    type Error = ApiError;

    fn try_from(view: engine::RefundView) -> Result<Self, ApiError> {
        let refund = view.refund;
        Ok(RefundResponse {
            id: refund.id,
            refund_serial: refund.refund_serial,
            amount_minor: refund.amount_minor,
            currency: refund.currency.code().to_owned(),
            status: refund.status.as_str().to_owned(),
            initiator: refund.initiator.as_str().to_owned(),
            reason: refund.reason,
            created_at: timestamp::format(refund.created_at)?,
            updated_at: timestamp::format(refund.updated_at)?,
            bonus_void_minor: refund.bonus_void_minor,
            review: view
                .review
                .map(|review| -> Result<RefundReviewResponse, ApiError> {
                    Ok(RefundReviewResponse {
                        operator: review.review.operator,
                        approved: review.review.approved,
                        reason: review.review.reason,
                        reviewed_at: timestamp::format(review.reviewed_at)?,
                    })
                })
                .transpose()?,
            parts: view
                .parts
                .into_iter()
                .zip(view.part_sources)
                .map(|(part, source)| RefundPartResponse {
                    instruction_id: part.instruction_id,
                    source: source.as_str().to_owned(),
                    amount_minor: part.amount_minor,
                    status: part.status.as_str().to_owned(),
                })
                .collect(),
            trade: TradeResponse::try_from(view.trade)?,
        })
    }
}

/// A channel's route: what it carries, up to which amount, at what cost.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RouteResponse {
    pub channel: String,
    pub sources: Vec<String>,
    pub amount_minor_max: i64,
    pub cost_per_ten_thousand: i64,
    /// Most it carries in a day; absent: no daily limit.
    pub daily_minor_max: Option<i64>,
}

/// A bank marked down on a channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OutageRequest {
    pub channel: String,
    pub bank: String,
    /// True to mark the bank down on the channel, false to bring it back.
    pub down: bool,
}

/// The routing table and the banks marked down.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ChannelsResponse {
    pub routes: Vec<RouteResponse>,
    /// `channel/bank` pairs routing avoids.
    pub outages: Vec<OutageRequest>,
}

/// A refund waiting for an operator, with its merchant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReviewQueueEntry {
    pub merchant_id: String,
    pub refund: RefundResponse,
}
