//! Delivers merchant notifications: signed POSTs of the payment or refund
//! to the merchant's URL, until the merchant answers `success`.
//!
//! The body is `{"event": "payment.succeeded" | "payment.failed",
//! "payment": <the payment as GET /v1/payments/{id} shows it>}` or
//! `{"event": "refund.succeeded" | "refund.failed", "refund": <the refund
//! as GET /v1/refunds/{id} shows it>}` or `{"event": "escrow.released",
//! "payment": <the payment>, "escrow": <as GET /v1/trades/{out_trade_no}/escrow
//! shows it>}`, signed like a merchant's own requests
//! (the same `x-paycore-*` headers, under the merchant's key), so the
//! merchant verifies it with the code it signs with.

use crate::model::{PaymentResponse, RefundResponse};
use crate::signature::signed_headers;
use crate::state::AppState;
use engine::{Delivery, MerchantStore, Notification, NotificationStore};
use serde_json::json;
use std::time::Duration;
use tracing::{info, warn};

/// Most notifications one round delivers.
const DELIVERIES_PER_ROUND_MAX: usize = 64;
/// How long a merchant may take to answer.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(5);

/// Delivers every notification due at `now`; returns how many were tried.
pub async fn deliver_due(state: &AppState, now: ledger::TimestampMicros) -> usize {
    let due = match state
        .store()
        .due_notifications(now, DELIVERIES_PER_ROUND_MAX)
        .await
    {
        Ok(due) => due,
        Err(error) => {
            warn!(%error, "reading due notifications failed");
            return 0;
        }
    };
    for notification in &due {
        let delivery = deliver(state, notification).await;
        if let Delivery::Failed { error } = &delivery {
            warn!(
                notification_id = notification.id,
                merchant_id = %notification.merchant_id,
                attempt = notification.attempts + 1,
                %error,
                "notification not acknowledged"
            );
        } else {
            info!(notification_id = notification.id, merchant_id = %notification.merchant_id, "notification delivered");
        }
        let recorded = state
            .store()
            .record_notification_attempt(notification, &delivery, now)
            .await;
        if let Err(error) = recorded {
            warn!(notification_id = notification.id, %error, "recording a delivery failed");
        }
    }
    due.len()
}

/// The notification's JSON body: the payment or the refund as the API
/// shows it now.
async fn body(
    state: &AppState,
    merchant_id: &str,
    notification: &Notification,
) -> Result<String, String> {
    let event = notification.event.as_str();
    let body = match notification.refund_id {
        Some(refund_id) => {
            let view = state
                .payments()
                .refund_status(merchant_id, refund_id)
                .await
                .map_err(|error| error.to_string())?;
            let refund = RefundResponse::try_from(view).map_err(|error| error.to_string())?;
            json!({"event": event, "refund": refund})
        }
        None => {
            let view = state
                .payments()
                .status(merchant_id, notification.payment_id)
                .await
                .map_err(|error| error.to_string())?;
            let escrow = if notification.event == engine::NotificationEvent::EscrowReleased {
                let escrow = state
                    .payments()
                    .escrow_of(merchant_id, &view.trade.out_trade_no)
                    .await
                    .map_err(|error| error.to_string())?;
                Some(
                    crate::handlers::escrows::EscrowResponse::try_from(escrow)
                        .map_err(|error| error.to_string())?,
                )
            } else {
                None
            };
            let payment = PaymentResponse::try_from(view).map_err(|error| error.to_string())?;
            match escrow {
                Some(escrow) => json!({"event": event, "payment": payment, "escrow": escrow}),
                None => json!({"event": event, "payment": payment}),
            }
        }
    };
    Ok(body.to_string())
}

async fn deliver(state: &AppState, notification: &Notification) -> Delivery {
    let failed = |error: String| Delivery::Failed { error };
    let merchant = match state.store().merchant(&notification.merchant_id).await {
        Ok(Some(merchant)) => merchant,
        Ok(None) => return Delivery::NoUrl,
        Err(error) => return failed(error.to_string()),
    };
    let Some(url) = merchant.notify_url.clone() else {
        return Delivery::NoUrl;
    };
    let body = match body(state, &merchant.id, notification).await {
        Ok(body) => body,
        Err(error) => return failed(error),
    };
    let Ok(parsed) = reqwest::Url::parse(&url) else {
        return failed(format!("the notification URL {url:?} is not a URL"));
    };
    let path_and_query = match parsed.query() {
        Some(query) => format!("{}?{query}", parsed.path()),
        None => parsed.path().to_owned(),
    };
    let nonce = format!("notification-{}-{}", notification.id, notification.attempts);
    let headers = signed_headers(
        &merchant.id,
        merchant.signing_key.expose(),
        "POST",
        &path_and_query,
        store::now_micros() / 1_000_000,
        &nonce,
        body.as_bytes(),
    );
    let mut request = state
        .http()
        .post(parsed)
        .timeout(DELIVERY_TIMEOUT)
        .header("content-type", "application/json")
        .body(body);
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let response = match request.send().await {
        Ok(response) => response,
        Err(error) => return failed(error.to_string()),
    };
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    if status.is_success() && text.trim().eq_ignore_ascii_case("success") {
        Delivery::Acknowledged
    } else {
        failed(format!(
            "HTTP {status}: {}",
            text.chars().take(200).collect::<String>()
        ))
    }
}
