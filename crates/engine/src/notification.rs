//! Asynchronous notifications (异步通知) to merchants: one per payment and
//! one per refund that reaches a final state, delivered until acknowledged
//! on a back-off schedule, and kept in the store so that a restart loses
//! none.

use crate::order::{PaymentId, RefundId};
use crate::store::OrderStoreError;
use ledger::TimestampMicros;
use std::future::Future;

/// Seconds to wait after each failed delivery before the next attempt; after
/// the last, the notification is given up (the merchant can still query).
pub const RETRY_SCHEDULE_SECONDS: [i64; 15] = [
    15, 15, 30, 180, 600, 1_200, 1_800, 1_800, 1_800, 3_600, 10_800, 10_800, 10_800, 21_600, 21_600,
];

/// What happened to a payment or refund that the merchant is told about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NotificationEvent {
    PaymentSucceeded,
    /// A payout split into parts paid some of them (PARTIALLY_PAID).
    PaymentPartiallyPaid,
    PaymentFailed,
    RefundSucceeded,
    RefundFailed,
    /// 担保交易: the trade's money was released to the merchant (by the
    /// merchant, an operator or the auto-release time).
    EscrowReleased,
}

impl NotificationEvent {
    /// The event of a refund that ended in `status`, if it is final.
    pub fn of_refund(status: crate::RefundStatus) -> Option<NotificationEvent> {
        match status {
            crate::RefundStatus::Success => Some(NotificationEvent::RefundSucceeded),
            crate::RefundStatus::Failed => Some(NotificationEvent::RefundFailed),
            _ => None,
        }
    }
}

/// Where a notification stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NotificationStatus {
    /// Waiting for its next attempt.
    Pending,
    /// The merchant acknowledged it.
    Delivered,
    /// Every attempt of the schedule failed.
    GaveUp,
    /// The merchant has no notification URL.
    NoUrl,
}

text_enum!(NotificationEvent {
    PaymentSucceeded = "payment.succeeded",
    PaymentPartiallyPaid = "payment.partially_paid",
    PaymentFailed = "payment.failed",
    RefundSucceeded = "refund.succeeded",
    RefundFailed = "refund.failed",
    EscrowReleased = "escrow.released",
});
text_enum!(NotificationStatus {
    Pending = "PENDING",
    Delivered = "DELIVERED",
    GaveUp = "GAVE_UP",
    NoUrl = "NO_URL",
});

/// A notification to deliver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub id: i64,
    pub merchant_id: String,
    pub payment_id: PaymentId,
    /// The refund a `refund.*` event is about.
    pub refund_id: Option<RefundId>,
    pub event: NotificationEvent,
    pub status: NotificationStatus,
    /// Attempts made so far.
    pub attempts: u32,
    pub next_attempt_at: TimestampMicros,
    pub last_error: Option<String>,
    pub created_at: TimestampMicros,
}

/// The result of one delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    Acknowledged,
    Failed { error: String },
    NoUrl,
}

impl Notification {
    /// The status and next attempt time after an attempt at `now`.
    pub fn after(
        &self,
        delivery: &Delivery,
        now: TimestampMicros,
    ) -> (NotificationStatus, TimestampMicros) {
        match delivery {
            Delivery::Acknowledged => (NotificationStatus::Delivered, now),
            Delivery::NoUrl => (NotificationStatus::NoUrl, now),
            Delivery::Failed { .. } => match RETRY_SCHEDULE_SECONDS.get(self.attempts as usize) {
                Some(seconds) => (NotificationStatus::Pending, now + seconds * 1_000_000),
                None => (NotificationStatus::GaveUp, now),
            },
        }
    }
}

/// Where notifications are kept.
pub trait NotificationStore: Send + Sync {
    /// Records that `event` happened to a payment; a second call for the
    /// same payment and event changes nothing.
    fn enqueue_notification(
        &self,
        merchant_id: &str,
        payment_id: PaymentId,
        event: NotificationEvent,
        now: TimestampMicros,
    ) -> impl Future<Output = Result<(), OrderStoreError>> + Send;

    /// Pending notifications whose next attempt is due, oldest first.
    fn due_notifications(
        &self,
        now: TimestampMicros,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Notification>, OrderStoreError>> + Send;

    /// Records an attempt: the new status, attempt count, next time and
    /// error. Only a still pending notification with `attempts` attempts is
    /// changed, so two senders never record the same attempt twice.
    fn record_notification_attempt(
        &self,
        notification: &Notification,
        delivery: &Delivery,
        now: TimestampMicros,
    ) -> impl Future<Output = Result<bool, OrderStoreError>> + Send;

    /// The notifications of one payment, for the merchant and for tests.
    fn payment_notifications(
        &self,
        payment_id: PaymentId,
    ) -> impl Future<Output = Result<Vec<Notification>, OrderStoreError>> + Send;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn back_off_follows_the_schedule_then_gives_up() {
        let mut notification = Notification {
            id: 1,
            merchant_id: "m".to_owned(),
            payment_id: 1,
            refund_id: None,
            event: NotificationEvent::PaymentSucceeded,
            status: NotificationStatus::Pending,
            attempts: 0,
            next_attempt_at: 0,
            last_error: None,
            created_at: 0,
        };
        let failed = Delivery::Failed {
            error: "503".to_owned(),
        };
        let mut now = 0;
        for seconds in RETRY_SCHEDULE_SECONDS {
            let (status, next) = notification.after(&failed, now);
            assert_eq!(status, NotificationStatus::Pending);
            assert_eq!(next, now + seconds * 1_000_000);
            now = next;
            notification.attempts += 1;
        }
        assert_eq!(
            notification.after(&failed, now).0,
            NotificationStatus::GaveUp
        );
        assert_eq!(
            notification.after(&Delivery::Acknowledged, now).0,
            NotificationStatus::Delivered
        );
    }
}
