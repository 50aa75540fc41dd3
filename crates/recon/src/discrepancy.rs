//! A discrepancy (差错) and what is done about it.

use crate::{Class, RecordKind, RecordStatus, TimestampMicros};

/// What an error code's treatment does. Each is applied through the payment
/// engine or the ledger, once per discrepancy, and recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Treatment {
    /// 补单 — finish our order from the channel's answer (we had it
    /// PROCESSING; the channel says success). The engine queries first.
    CompleteOrder,
    /// 退款 — money we cannot keep goes back, as a platform refund that waits
    /// for an operator's review.
    Refund,
    /// 挂账 — park the unexplained money in the suspense account.
    Suspense,
    /// 调账 — post the difference (amount or fee) between the channel's
    /// clearing account and the suspense account.
    Adjust,
    /// Leave it open: a later file or a later state of ours may clear it
    /// (rolling reconciliation), until it is too old.
    Wait,
    /// 转人工 — hand it to an operator at once.
    Escalate,
}

text_enum!(Treatment {
    CompleteOrder = "complete_order",
    Refund = "refund",
    Suspense = "suspense",
    Adjust = "adjust",
    Wait = "wait",
    Escalate = "escalate",
});

impl Treatment {
    pub fn label_zh(self) -> &'static str {
        match self {
            Treatment::CompleteOrder => "补单",
            Treatment::Refund => "退款",
            Treatment::Suspense => "挂账",
            Treatment::Adjust => "调账",
            Treatment::Wait => "待下期对账",
            Treatment::Escalate => "转人工",
        }
    }
}

/// Where a discrepancy stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DiscrepancyStatus {
    /// Found and not yet settled: carried into the next runs.
    Open,
    /// Its treatment was applied; nothing is left to do.
    Treated,
    /// A later run found both sides in agreement (rolling reconciliation).
    Resolved,
    /// Too old, or a treatment failed, or its code says so: an operator's.
    Exception,
}

text_enum!(DiscrepancyStatus {
    Open = "OPEN",
    Treated = "TREATED",
    Resolved = "RESOLVED",
    Exception = "EXCEPTION",
});

impl DiscrepancyStatus {
    /// Open and exceptional discrepancies take part in the next runs.
    pub fn is_unsettled(self) -> bool {
        matches!(self, DiscrepancyStatus::Open | DiscrepancyStatus::Exception)
    }
}

/// One side's figures as the discrepancy records them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SideFigures {
    pub amount_minor: i64,
    pub currency: String,
    pub fee_minor: Option<i64>,
    pub status: RecordStatus,
    pub channel_transaction_id: Option<String>,
    pub occurred_at: TimestampMicros,
    pub business_day: i32,
}

/// What a run found for one key, before it is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub key: String,
    pub kind: RecordKind,
    pub class: Class,
    pub platform: Option<SideFigures>,
    pub channel: Option<SideFigures>,
    /// How many records the channel's files carry for the key.
    pub channel_count: u64,
}

impl Finding {
    /// The signed difference channel − platform in amount (both present).
    pub fn amount_difference_minor(&self) -> Option<i64> {
        match (&self.platform, &self.channel) {
            (Some(ours), Some(theirs)) => theirs.amount_minor.checked_sub(ours.amount_minor),
            _ => None,
        }
    }

    /// The signed difference channel − platform in fee (both known).
    pub fn fee_difference_minor(&self) -> Option<i64> {
        match (&self.platform, &self.channel) {
            (Some(ours), Some(theirs)) => theirs.fee_minor?.checked_sub(ours.fee_minor?),
            _ => None,
        }
    }
}

impl crate::Discrepancy {
    /// True when applying `treatment` leaves both sides agreeing on what
    /// the merchant is owed, so reconciliation has confirmed the order's
    /// clearing entry (对账确认): a 补单 (or the refund of a duplicate
    /// payment, which completes it first) of an order whose only
    /// difference was its status, or a 调账 of a fee that differed while
    /// amount and status agreed. An amount adjustment confirms nothing: our
    /// figure is not the channel's.
    pub fn confirmed_by(&self, treatment: Treatment) -> bool {
        let (Some(ours), Some(theirs)) = (&self.platform, &self.channel_side) else {
            return false;
        };
        let same_money =
            ours.amount_minor == theirs.amount_minor && ours.currency == theirs.currency;
        match (treatment, self.class) {
            (Treatment::CompleteOrder | Treatment::Refund, Class::StatusChannelSuccess) => {
                same_money && theirs.status == RecordStatus::Success
            }
            (Treatment::Adjust, Class::FeeMismatch) => same_money,
            _ => false,
        }
    }
}
