//! Merchant notifications on both stores, one SQL text for both.

use crate::orders::db;
use engine::{Notification, NotificationEvent, NotificationStatus, OrderStoreError};
use ledger::StoreError;

pub(crate) type NotificationRow = (
    i64,
    String,
    i64,
    Option<i64>,
    String,
    String,
    i32,
    i64,
    Option<String>,
    i64,
);
pub(crate) const NOTIFICATION_COLUMNS: &str = "id, merchant_id, payment_id, refund_id, event, status, attempts, next_attempt_at, last_error, \
     created_at";

/// Records a refund's notification, in the transaction that makes the
/// refund final; binds merchant, payment, refund, event and time.
pub(crate) const INSERT_REFUND_NOTIFICATION: &str = "INSERT INTO notifications \
     (merchant_id, payment_id, refund_id, event, status, attempts, next_attempt_at, created_at) \
     VALUES ($1, $2, $3, $4, 'PENDING', 0, $5, $5) \
     ON CONFLICT (refund_id, event) WHERE refund_id IS NOT NULL DO NOTHING";

/// [`INSERT_REFUND_NOTIFICATION`] bound for a refund that ended in `event`.
macro_rules! bind_refund_notification {
    ($refund:expr, $event:expr, $now:expr) => {{
        let refund: &engine::RefundOrder = $refund;
        let event: engine::NotificationEvent = $event;
        sqlx::query(crate::notifications::INSERT_REFUND_NOTIFICATION)
            .bind(&refund.merchant_id)
            .bind(refund.payment_id)
            .bind(refund.id)
            .bind(event.as_str())
            .bind($now)
    }};
}
pub(crate) use bind_refund_notification;

/// A payment's notification of `event`, once per payment and event.
pub(crate) const INSERT_PAYMENT_NOTIFICATION: &str = "INSERT INTO notifications (merchant_id, \
     payment_id, event, status, attempts, next_attempt_at, created_at) \
     VALUES ($1, $2, $3, 'PENDING', 0, $4, $4) \
     ON CONFLICT (payment_id, event) WHERE refund_id IS NULL DO NOTHING";

/// [`INSERT_PAYMENT_NOTIFICATION`] bound for `payment_id` of `merchant_id`.
macro_rules! bind_payment_notification {
    ($merchant_id:expr, $payment_id:expr, $event:expr, $now:expr) => {{
        let event: engine::NotificationEvent = $event;
        crate::batch::Statement::new(crate::notifications::INSERT_PAYMENT_NOTIFICATION)
            .bind($merchant_id)
            .bind($payment_id)
            .bind(event.as_str())
            .bind($now)
    }};
}
pub(crate) use bind_payment_notification;

fn corrupt(what: &str, value: &str) -> OrderStoreError {
    OrderStoreError::Store(StoreError::Corrupt(format!("unknown {what} {value:?}")))
}

pub(crate) fn notification_from_row(row: NotificationRow) -> Result<Notification, OrderStoreError> {
    let (
        id,
        merchant_id,
        payment_id,
        refund_id,
        event,
        status,
        attempts,
        next_attempt_at,
        last_error,
        created_at,
    ) = row;
    Ok(Notification {
        id,
        merchant_id,
        payment_id,
        refund_id,
        event: NotificationEvent::parse(&event).ok_or_else(|| corrupt("event", &event))?,
        status: NotificationStatus::parse(&status)
            .ok_or_else(|| corrupt("notification status", &status))?,
        attempts: u32::try_from(attempts)
            .map_err(|_| corrupt("attempts", &attempts.to_string()))?,
        next_attempt_at,
        last_error,
        created_at,
    })
}

pub(crate) fn rows(rows: Vec<NotificationRow>) -> Result<Vec<Notification>, OrderStoreError> {
    rows.into_iter().map(notification_from_row).collect()
}

pub(crate) fn error(error: sqlx::Error) -> OrderStoreError {
    db(error)
}

macro_rules! notification_store {
    ($store:ty, $writer:ident, $reader:ident) => {
        impl engine::NotificationStore for $store {
            async fn enqueue_notification(
                &self,
                merchant_id: &str,
                payment_id: engine::PaymentId,
                event: engine::NotificationEvent,
                now: ledger::TimestampMicros,
            ) -> Result<(), engine::OrderStoreError> {
                crate::notifications::bind_payment_notification!(merchant_id, payment_id, event, now)
                .query()
                .execute(&self.$writer)
                .await
                .map_err(crate::notifications::error)?;
                self.durable().await?;
                Ok(())
            }

            async fn due_notifications(
                &self,
                now: ledger::TimestampMicros,
                limit: usize,
            ) -> Result<Vec<engine::Notification>, engine::OrderStoreError> {
                use crate::notifications::*;
                let found: Vec<NotificationRow> = sqlx::query_as(&format!(
                    "SELECT {NOTIFICATION_COLUMNS} FROM notifications \
                     WHERE status = 'PENDING' AND next_attempt_at <= $1 ORDER BY next_attempt_at LIMIT $2"
                ))
                .bind(now)
                .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                .fetch_all(&self.$reader)
                .await
                .map_err(error)?;
                rows(found)
            }

            async fn record_notification_attempt(
                &self,
                notification: &engine::Notification,
                delivery: &engine::Delivery,
                now: ledger::TimestampMicros,
            ) -> Result<bool, engine::OrderStoreError> {
                let (status, next_attempt_at) = notification.after(delivery, now);
                let last_error = match delivery {
                    engine::Delivery::Failed { error } => Some(error.as_str()),
                    engine::Delivery::Acknowledged | engine::Delivery::NoUrl => None,
                };
                let attempts = i64::from(notification.attempts);
                let done = sqlx::query(
                    "UPDATE notifications SET status = $1, attempts = attempts + 1, next_attempt_at = $2, \
                     last_error = $3 WHERE id = $4 AND status = 'PENDING' AND attempts = $5",
                )
                .bind(status.as_str())
                .bind(next_attempt_at)
                .bind(last_error)
                .bind(notification.id)
                .bind(attempts)
                .execute(&self.$writer)
                .await
                .map_err(crate::notifications::error)?;
                self.durable().await?;
                Ok(done.rows_affected() == 1)
            }

            async fn payment_notifications(
                &self,
                payment_id: engine::PaymentId,
            ) -> Result<Vec<engine::Notification>, engine::OrderStoreError> {
                use crate::notifications::*;
                let found: Vec<NotificationRow> = sqlx::query_as(&format!(
                    "SELECT {NOTIFICATION_COLUMNS} FROM notifications WHERE payment_id = $1 ORDER BY id"
                ))
                .bind(payment_id)
                .fetch_all(&self.$reader)
                .await
                .map_err(error)?;
                rows(found)
            }
        }
    };
}

notification_store!(crate::SqliteStore, writer, readers);
notification_store!(crate::PostgresStore, pool, pool);
