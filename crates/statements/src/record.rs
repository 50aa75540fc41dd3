//! The normalized record: one per statement line, whatever the channel.

use money::Money;
use time::{Date, PrimitiveDateTime};

/// A collection (payment) or a refund.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecordKind {
    Payment,
    Refund,
}

impl RecordKind {
    /// The names mapping files use: `payment`, `refund`.
    pub fn parse(text: &str) -> Option<RecordKind> {
        match text {
            "payment" => Some(RecordKind::Payment),
            "refund" => Some(RecordKind::Refund),
            _ => None,
        }
    }
}

/// Where the channel says the record stands, normalized.
///
/// Channels have more words than three (WeChat's `REVOKED`, `REFUNDCLOSE`,
/// `CHANGE`...); each parser maps them here and keeps the channel's own
/// word in [`StatementRecord::channel_status`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecordStatus {
    /// Money moved as the record says.
    Success,
    /// Not final yet at the time of the file (a refund still being paid
    /// out, or one that needs handling on the channel's side).
    Processing,
    /// Final, and no money moved (failed, closed, or a payment revoked).
    Failed,
}

impl RecordStatus {
    /// The names mapping files use: `success`, `processing`, `failed`.
    pub fn parse(text: &str) -> Option<RecordStatus> {
        match text {
            "success" => Some(RecordStatus::Success),
            "processing" => Some(RecordStatus::Processing),
            "failed" => Some(RecordStatus::Failed),
            _ => None,
        }
    }
}

/// One statement line, normalized.
///
/// Identity: a payment is ours by `merchant_order_id` (the 商户订单号 we
/// sent for the channel order); a refund by `merchant_refund_id` (the 商户退款
/// 单号 / 退款请求号 we sent). `merchant_order_id` of a refund names the
/// payment it refunds where the channel prints it (WeChat, Alipay); UnionPay
/// prints only the refund's own order id, which then fills both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementRecord {
    /// 1-based physical line of the file where the record starts.
    pub line: u64,
    pub kind: RecordKind,
    /// 商户订单号: our channel-order id as we sent it.
    pub merchant_order_id: String,
    /// 微信订单号 / 支付宝交易号 / 查询流水号: the channel's id of the
    /// payment (on a refund record: of the payment refunded, where printed).
    pub channel_transaction_id: String,
    /// 商户退款单号 / 退款批次号/请求号; `Some` on refunds only.
    pub merchant_refund_id: Option<String>,
    /// 微信退款单号 / UnionPay 查询流水号 of the refund; `Some` on refunds
    /// where the channel prints it.
    pub channel_refund_id: Option<String>,
    /// The amount that moved, always positive; `kind` says the direction.
    /// WeChat: 应结订单金额 (payment) / 退款金额 (refund), i.e. net of
    /// merchant-funded coupons; Alipay: 商家实收.
    pub amount: Money,
    /// The amount that was asked for, always positive: WeChat 订单金额 /
    /// 申请退款金额, Alipay 订单金额. Equal to `amount` where the channel
    /// prints only one amount.
    pub requested_amount: Money,
    /// Fee in minor units, positive when the channel charged it, negative
    /// when it gave it back (refund rows). Sub-minor digits (WeChat prints 5
    /// decimals) are rounded by the parser's configured rounding mode.
    pub fee: Money,
    pub status: RecordStatus,
    /// The channel's own status word (`SUCCESS`, `REVOKED`, `CHANGE`...), or
    /// `None` when the file has no status (it lists settled records only).
    pub channel_status: Option<String>,
    /// Channel local time as printed.
    pub occurred_at: PrimitiveDateTime,
    /// The channel's day this record belongs to (渠道日切).
    pub business_date: Date,
}
