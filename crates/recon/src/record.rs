//! One side's view of one transaction, as reconciliation compares it.

/// Microseconds since the Unix epoch, UTC.
pub type TimestampMicros = i64;

/// A collection (payment) or a refund: each is keyed by its own channel order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecordKind {
    Payment,
    Refund,
}

text_enum!(RecordKind {
    Payment = "PAYMENT",
    Refund = "REFUND",
});

/// Where a transaction stands, normalised from either side's own words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecordStatus {
    Success,
    Processing,
    Failed,
}

text_enum!(RecordStatus {
    Success = "SUCCESS",
    Processing = "PROCESSING",
    Failed = "FAILED",
});

/// A transaction as one side recorded it. The key is our channel order id
/// (the 商户订单号 we sent, or the 商户退款单号 of a refund): both sides
/// name it, so it is what the sides are joined by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconRecord {
    pub key: String,
    pub kind: RecordKind,
    pub channel_transaction_id: Option<String>,
    pub amount_minor: i64,
    pub currency: String,
    /// The channel's fee; on our side the fee we expect, when we know it.
    pub fee_minor: Option<i64>,
    pub status: RecordStatus,
    pub occurred_at: TimestampMicros,
    /// The channel's business day (渠道日切) as days since 1970-01-01.
    pub business_day: i32,
}
