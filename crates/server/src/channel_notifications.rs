//! Channel notifications (回调): a channel tells us, in its own format, that
//! one of its orders has a result. The order's payment, or the refund it
//! carries back, is advanced at once, which asks the order's channel where
//! the order stands: the notification names the order, and its result is
//! never taken on trust (query first, then act). A forged or stale
//! notification therefore only brings the query forward.

use crate::state::AppState;
use channels::{Channel, ChannelError};
use engine::{EngineError, PaymentView, RefundView};
use ledger::TimestampMicros;
use recon::{ReconStore, ReconStoreError};

/// What a notification advanced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Advanced {
    Payment(PaymentView),
    Refund(RefundView),
}

/// Parses `body` as channel `channel_code`'s notification and advances the
/// order it names. `NO_CHANNEL` for a channel that is not configured,
/// `MALFORMED_NOTIFICATION`, `CHANNEL_UNKNOWN_ORDER`.
pub async fn receive(
    state: &AppState,
    channel_code: &str,
    body: &str,
    now: TimestampMicros,
) -> Result<Advanced, EngineError> {
    let channel = state
        .payments()
        .channels()
        .iter()
        .find(|channel| channel.code() == channel_code)
        .ok_or(EngineError::NoChannel)?;
    let notification = channel
        .parse_notification(body)
        .map_err(EngineError::ChannelNotification)?;
    let owner = state
        .store()
        .channel_order_owner(notification.channel_order_id)
        .await
        .map_err(|error| match error {
            ReconStoreError::Store(store) => EngineError::Store(store),
            other => EngineError::Store(ledger::StoreError::Database(other.to_string())),
        })?
        .ok_or_else(|| {
            EngineError::ChannelNotification(ChannelError::UnknownOrder {
                channel: channel_code.to_owned(),
                channel_order_id: notification.channel_order_id,
            })
        })?;
    let payments = state.payments();
    match owner.refund_id {
        Some(refund_id) => Ok(Advanced::Refund(
            payments
                .resume_refund(&owner.merchant_id, refund_id, now)
                .await?,
        )),
        None => Ok(Advanced::Payment(
            payments
                .resume(&owner.merchant_id, owner.payment_id, now)
                .await?,
        )),
    }
}
