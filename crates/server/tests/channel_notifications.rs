//! Channel notifications (回调): a notification names a channel order and
//! brings its payment's query forward; its own result is never taken on
//! trust. Every test runs on SQLite and, when `PAYCORE_TEST_POSTGRES_URL`
//! is set (always in CI), on PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use engine::{FundingSource, PaymentStatus};
use server::channel_notifications::{Advanced, receive};

mod common;
use common::{NOW, SECOND, channel_order, instruction, pay};

fn status_of(notified: Advanced) -> PaymentStatus {
    match notified {
        Advanced::Payment(view) => view.payment.status,
        Advanced::Refund(view) => panic!("a refund: {view:?}"),
    }
}

#[tokio::test]
async fn a_notification_brings_the_query_forward_and_is_not_trusted() {
    for fixture in common::fixtures("channel_notify").await {
        let state = &fixture.state;
        // `.92`: PROCESSING, then success two seconds after it was sent.
        let paid = pay(
            &fixture,
            "T1",
            "instant_transfer",
            &[(FundingSource::Card, 1_292)],
        )
        .await;
        assert_eq!(paid.payment.status, PaymentStatus::Processing);
        let order = channel_order(&fixture, instruction(&paid, FundingSource::Card), None).await;
        let claims_success = format!(
            "channel_order_id={order}&status=SUCCESS&transaction_id=SIM-X&business_date=20261120&fee_minor=0"
        );
        // A second on, the notification says SUCCESS but the channel, asked,
        // says PROCESSING: the payment stays PROCESSING.
        let early = receive(state, "simbank", &claims_success, NOW + SECOND)
            .await
            .unwrap();
        assert_eq!(status_of(early), PaymentStatus::Processing);
        // Past the delay, the same notification finishes it at once.
        let done = receive(state, "simbank", &claims_success, NOW + 3 * SECOND)
            .await
            .unwrap();
        assert_eq!(status_of(done), PaymentStatus::Success);
        // Repeated, it changes nothing.
        let again = receive(state, "simbank", &claims_success, NOW + 4 * SECOND)
            .await
            .unwrap();
        assert_eq!(status_of(again), PaymentStatus::Success);

        let code = |result: Result<Advanced, engine::EngineError>| result.unwrap_err().code();
        assert_eq!(
            code(receive(state, "simbank", "status=SUCCESS", NOW).await),
            "MALFORMED_NOTIFICATION"
        );
        let unknown = claims_success.replace(&format!("={order}&"), "=999999&");
        assert_eq!(
            code(receive(state, "simbank", &unknown, NOW).await),
            "CHANNEL_UNKNOWN_ORDER"
        );
        assert_eq!(
            code(receive(state, "nochannel", &claims_success, NOW).await),
            "NO_CHANNEL"
        );
        common::assert_sound(&fixture.store).await;
    }
}
