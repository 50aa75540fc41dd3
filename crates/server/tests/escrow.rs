//! 担保交易 (escrow trades) end to end on both stores: the buyer's money
//! waits in the merchant's escrow account, refunds before release come out
//! of escrow and clear nothing, release moves what is left to
//! settlement-pending and clears it with its fee, refunds after release are
//! cleared as any refund, a refund in flight holds release back, and an
//! escrow nobody releases releases by itself after its product's days.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{
    HOUR, MERCHANT, NOW, assert_sound, balance, channel_order, fixtures, instruction, pay, refund,
};
use engine::{
    EscrowStatus, FundingSource, Initiator, NewRefundReview, NotificationEvent, PaymentStatus,
    RefundRequest, RefundStatus, ReleasedBy,
};
use ledger::{AccountKind, OwnerKind};
use recon::ReconStore;
use settlement::{EntryKind, SettlementStore};
use store::Store;

const DAY: i64 = 24 * HOUR;
const PRODUCT: &str = "escrow_trade";

async fn escrow_balance(store: &Store) -> i64 {
    balance(
        store,
        OwnerKind::Merchant,
        MERCHANT,
        AccountKind::MerchantEscrow,
    )
    .await
    .0
}

async fn pending_balance(store: &Store) -> i64 {
    balance(
        store,
        OwnerKind::Merchant,
        MERCHANT,
        AccountKind::MerchantPending,
    )
    .await
    .0
}

/// (kind, amount, fee) of every clearing entry of the merchant on the
/// business date of [`NOW`].
async fn clearing(store: &Store) -> Vec<(EntryKind, i64, i64)> {
    store
        .clearing_entries(MERCHANT, "2026-11-20")
        .await
        .unwrap()
        .into_iter()
        .map(|entry| {
            (
                entry.entry.kind,
                entry.entry.amount_minor,
                entry.entry.fee_minor,
            )
        })
        .collect()
}

async fn assert_internal_clean(store: &Store) {
    let report = store.internal_check().await.unwrap();
    assert!(report.is_clean(), "{:?}", report.findings);
}

#[tokio::test]
async fn escrow_is_released_once_and_cleared_on_what_is_left() {
    for fixture in fixtures("escrow_released").await {
        let store = &fixture.store;
        let payments = fixture.state.payments();
        let paid = pay(&fixture, "E1", PRODUCT, &[(FundingSource::Card, 10_000)]).await;
        assert_eq!(paid.payment.status, PaymentStatus::Success);
        // The money waits in escrow; the merchant is not cleared yet.
        assert_eq!(escrow_balance(store).await, 10_000);
        assert_eq!(pending_balance(store).await, 0);
        assert!(clearing(store).await.is_empty());
        let held = payments.escrow_of(MERCHANT, "E1").await.unwrap();
        assert_eq!(held.escrow.status, EscrowStatus::Held);
        assert_eq!(held.escrow.held_minor, 10_000);
        assert_eq!(held.escrow.release_due_at, NOW + 10 * DAY);

        // A refund before release comes out of escrow and clears nothing.
        let before = refund(&fixture, "E1", "R1", 3_000, NOW + HOUR).await;
        assert_eq!(before.refund.status, RefundStatus::Success);
        assert!(before.refund.from_escrow);
        assert_eq!(escrow_balance(store).await, 7_000);
        assert!(clearing(store).await.is_empty());

        // The buyer confirms receipt: what is left goes to the merchant,
        // cleared with the product's fee on it (0.6% of 70.00).
        let released = payments
            .release_escrow(
                MERCHANT,
                "E1",
                &ReleasedBy::Merchant,
                Some("received"),
                NOW + 2 * HOUR,
            )
            .await
            .unwrap();
        assert_eq!(released.escrow.status, EscrowStatus::Released);
        assert_eq!(released.escrow.released_minor, Some(7_000));
        assert_eq!(released.escrow.released_by.as_deref(), Some("merchant"));
        assert_eq!(escrow_balance(store).await, 0);
        assert_eq!(pending_balance(store).await, 7_000);
        assert_eq!(
            clearing(store).await,
            vec![(EntryKind::Collection, 7_000, 42)]
        );
        // The merchant is told, once, after the payment's and the refund's.
        let events: Vec<_> =
            engine::NotificationStore::payment_notifications(store, paid.payment.id)
                .await
                .unwrap()
                .into_iter()
                .map(|notification| notification.event)
                .collect();
        assert_eq!(
            events,
            vec![
                NotificationEvent::PaymentSucceeded,
                NotificationEvent::RefundSucceeded,
                NotificationEvent::EscrowReleased
            ]
        );

        // Again, by anyone: the first release stands, nothing moves twice.
        let again = payments
            .release_escrow(
                MERCHANT,
                "E1",
                &ReleasedBy::Operator("ops-li".to_owned()),
                Some("again"),
                NOW + 3 * HOUR,
            )
            .await
            .unwrap();
        assert_eq!(again.escrow.released_by.as_deref(), Some("merchant"));
        assert_eq!(pending_balance(store).await, 7_000);
        assert_eq!(clearing(store).await.len(), 1);
        assert_eq!(
            engine::NotificationStore::payment_notifications(store, paid.payment.id)
                .await
                .unwrap()
                .len(),
            3
        );

        // A refund after release comes out of settlement-pending and is
        // cleared; it can never exceed what was paid less what went back.
        let after = refund(&fixture, "E1", "R2", 2_000, NOW + 4 * HOUR).await;
        assert_eq!(after.refund.status, RefundStatus::Success);
        assert!(!after.refund.from_escrow);
        assert_eq!(pending_balance(store).await, 5_000);
        assert_eq!(
            clearing(store).await,
            vec![
                (EntryKind::Collection, 7_000, 42),
                (EntryKind::Refund, 2_000, 0)
            ]
        );
        let too_much = payments
            .refund(
                &RefundRequest {
                    merchant_id: MERCHANT.to_owned(),
                    out_trade_no: "E1".to_owned(),
                    refund_serial: "R3".to_owned(),
                    amount_minor: 5_001,
                    reason: "returned".to_owned(),
                    initiator: Initiator::Merchant,
                },
                NOW + 5 * HOUR,
            )
            .await
            .unwrap_err();
        assert_eq!(too_much.code(), "REFUND_EXCEEDS_REFUNDABLE");

        // Another merchant's trade and a trade that is not in escrow are
        // not found; a released escrow is not due again.
        let other = payments
            .release_escrow("m-other", "E1", &ReleasedBy::Merchant, None, NOW)
            .await
            .unwrap_err();
        assert_eq!(other.code(), "ORDER_NOT_FOUND");
        pay(
            &fixture,
            "N1",
            "instant_transfer",
            &[(FundingSource::Card, 500)],
        )
        .await;
        let plain = payments
            .release_escrow(MERCHANT, "N1", &ReleasedBy::Merchant, None, NOW)
            .await
            .unwrap_err();
        assert_eq!(plain.code(), "ORDER_NOT_FOUND");
        assert!(
            payments
                .release_due_escrows(NOW + 30 * DAY, 10)
                .await
                .unwrap()
                .is_empty()
        );
        assert_sound(store).await;
        assert_internal_clean(store).await;
    }
}

#[tokio::test]
async fn a_refund_in_flight_holds_release_back_and_time_releases_the_rest() {
    for fixture in fixtures("escrow_timeout").await {
        let store = &fixture.store;
        let payments = fixture.state.payments();
        pay(
            &fixture,
            "E2",
            PRODUCT,
            &[(FundingSource::Card, 8_000), (FundingSource::Coupon, 1_000)],
        )
        .await;
        assert_eq!(escrow_balance(store).await, 9_000);
        // Not due before its ten days.
        assert!(
            payments
                .release_due_escrows(NOW + 9 * DAY, 10)
                .await
                .unwrap()
                .is_empty()
        );
        // A refund the platform starts waits for review, out of escrow.
        let waiting = payments
            .refund(
                &RefundRequest {
                    merchant_id: MERCHANT.to_owned(),
                    out_trade_no: "E2".to_owned(),
                    refund_serial: "P1".to_owned(),
                    amount_minor: 8_000,
                    reason: "dispute".to_owned(),
                    initiator: Initiator::Platform,
                },
                NOW + HOUR,
            )
            .await
            .unwrap();
        assert_eq!(waiting.refund.status, RefundStatus::PendingReview);
        assert!(waiting.refund.from_escrow);
        // Release waits for it: asked for, it is refused; when due, it is
        // passed over.
        let refused = payments
            .release_escrow(MERCHANT, "E2", &ReleasedBy::Merchant, None, NOW + 2 * HOUR)
            .await
            .unwrap_err();
        assert_eq!(refused.code(), "ESCROW_REFUND_IN_FLIGHT");
        assert!(
            payments
                .release_due_escrows(NOW + 11 * DAY, 10)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(escrow_balance(store).await, 9_000);

        // Rejected, the refund is final: time releases everything, the
        // coupon's share included (a coupon is never refunded).
        let rejected = payments
            .review_refund(
                MERCHANT,
                waiting.refund.id,
                &NewRefundReview {
                    operator: "ops-li".to_owned(),
                    approved: false,
                    reason: "the buyer received the goods".to_owned(),
                },
                NOW + 3 * HOUR,
            )
            .await
            .unwrap();
        assert_eq!(rejected.refund.status, RefundStatus::Failed);
        let released = payments
            .release_due_escrows(NOW + 11 * DAY, 10)
            .await
            .unwrap();
        assert_eq!(released.len(), 1);
        let escrow = released.into_iter().next().unwrap().unwrap();
        assert_eq!(escrow.status, EscrowStatus::Released);
        assert_eq!(escrow.released_minor, Some(9_000));
        assert_eq!(escrow.released_by.as_deref(), Some("timeout"));
        assert_eq!(escrow_balance(store).await, 0);
        assert_eq!(pending_balance(store).await, 9_000);
        let entries = store
            .clearing_entries(MERCHANT, "2026-12-01")
            .await
            .unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].entry.amount_minor, 9_000);
        assert_eq!(entries[0].entry.fee_minor, 54);
        assert_sound(store).await;
        assert_internal_clean(store).await;
    }
}

#[tokio::test]
async fn a_release_a_crash_left_half_done_is_finished_once() {
    for fixture in fixtures("escrow_crash").await {
        let store = &fixture.store;
        let payments = fixture.state.payments();
        pay(&fixture, "E3", PRODUCT, &[(FundingSource::Card, 5_000)]).await;
        // The first step ran, then the process died: RELEASING, nothing
        // moved yet. A refund meanwhile waits for the release.
        let escrow = payments.escrow_of(MERCHANT, "E3").await.unwrap().escrow;
        let begun = engine::EscrowStore::begin_release(
            store,
            MERCHANT,
            escrow.trade_id,
            "merchant",
            None,
            NOW + HOUR,
        )
        .await
        .unwrap();
        assert_eq!(begun.status, EscrowStatus::Releasing);
        assert_eq!(begun.released_minor, Some(5_000));
        let refused = payments
            .refund(
                &RefundRequest {
                    merchant_id: MERCHANT.to_owned(),
                    out_trade_no: "E3".to_owned(),
                    refund_serial: "R1".to_owned(),
                    amount_minor: 1_000,
                    reason: "returned".to_owned(),
                    initiator: Initiator::Merchant,
                },
                NOW + HOUR,
            )
            .await
            .unwrap_err();
        assert_eq!(refused.code(), "ESCROW_RELEASING");
        assert_eq!(escrow_balance(store).await, 5_000);
        // The resolver finishes it however early it looks, once.
        let finished = payments.release_due_escrows(NOW + HOUR, 10).await.unwrap();
        assert_eq!(finished.len(), 1);
        let done = finished.into_iter().next().unwrap().unwrap();
        assert_eq!(done.status, EscrowStatus::Released);
        assert_eq!(done.released_by.as_deref(), Some("merchant"));
        assert!(
            payments
                .release_due_escrows(NOW + 20 * DAY, 10)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(pending_balance(store).await, 5_000);
        assert_eq!(
            clearing(store).await,
            vec![(EntryKind::Collection, 5_000, 30)]
        );
        // Now the refund goes, from settlement-pending.
        let after = refund(&fixture, "E3", "R1", 1_000, NOW + 2 * HOUR).await;
        assert!(!after.refund.from_escrow);
        assert_eq!(pending_balance(store).await, 4_000);
        assert_sound(store).await;
        assert_internal_clean(store).await;
    }
}

#[tokio::test]
async fn a_collection_reconciled_before_release_is_cleared_reconciled() {
    for fixture in fixtures("escrow_reconciled").await {
        let store = &fixture.store;
        let payments = fixture.state.payments();
        let reconciled = |trade: &'static str| async move {
            let entries = store
                .clearing_entries(MERCHANT, "2026-11-20")
                .await
                .unwrap();
            entries
                .iter()
                .find(|entry| entry.entry.out_trade_no == trade)
                .map(|entry| entry.entry.reconciled)
        };
        // E4's channel collection is matched by reconciliation while the
        // money is still in escrow; E5's only after its release.
        let early = pay(&fixture, "E4", PRODUCT, &[(FundingSource::Card, 2_000)]).await;
        let late = pay(&fixture, "E5", PRODUCT, &[(FundingSource::Card, 3_000)]).await;
        let early_order =
            channel_order(&fixture, instruction(&early, FundingSource::Card), None).await;
        let late_order =
            channel_order(&fixture, instruction(&late, FundingSource::Card), None).await;
        assert_eq!(
            store.confirm_channel_orders(&[early_order]).await.unwrap(),
            0
        );
        for trade in ["E4", "E5"] {
            payments
                .release_escrow(MERCHANT, trade, &ReleasedBy::Merchant, None, NOW + HOUR)
                .await
                .unwrap();
        }
        assert_eq!(reconciled("E4").await, Some(true));
        assert_eq!(reconciled("E5").await, Some(false));
        assert_eq!(
            store.confirm_channel_orders(&[late_order]).await.unwrap(),
            1
        );
        assert_eq!(reconciled("E5").await, Some(true));
        assert_internal_clean(store).await;
    }
}
