//! Reconciliation confirms clearing entries (对账确认): matched channel
//! orders make their payments' and refunds' entries reconciled, once, in
//! bounded calls; a treatment that leaves both sides agreeing (补单 of an
//! order that only differed in status, 调账 of a fee) confirms its entry,
//! one that does not (调账 of an amount) leaves it unconfirmed. Every test
//! runs on SQLite and, when `PAYCORE_TEST_POSTGRES_URL` is set (always in
//! CI), on PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use engine::{FundingSource, PaymentStatus};
use recon::{
    CONFIRM_ORDERS_MAX, Class, Finding, ReconStore, RecordKind, RecordStatus, SideFigures,
    Treatment,
};
use settlement::SettlementStore;

mod common;
use common::{Fixture, MERCHANT, NOW, SECOND, channel_order, instruction, pay};

const DATE: &str = "2026-11-20";

/// Whether the entry of a payment (or of one of its refunds) is reconciled.
async fn reconciled(fixture: &Fixture, payment_id: i64, refund_id: Option<i64>) -> bool {
    let entries = fixture
        .store
        .clearing_entries(MERCHANT, DATE)
        .await
        .unwrap();
    entries
        .iter()
        .find(|entry| entry.entry.payment_id == payment_id && entry.entry.refund_id == refund_id)
        .unwrap_or_else(|| panic!("no entry of payment {payment_id} / refund {refund_id:?}"))
        .entry
        .reconciled
}

#[tokio::test]
async fn matched_channel_orders_confirm_their_entries_once() {
    use FundingSource::Card;
    for fixture in common::fixtures("reconciled_matched").await {
        let card = pay(&fixture, "t-card", "instant_transfer", &[(Card, 5_000)]).await;
        let refused = pay(&fixture, "t-refused", "instant_transfer", &[(Card, 1_891)]).await;
        assert_eq!(refused.payment.status, PaymentStatus::Failed);
        let refund = common::refund(&fixture, "t-card", "refund-1", 1_000, NOW + SECOND).await;
        let id = card.payment.id;
        let refund_id = refund.refund.id;
        assert!(!reconciled(&fixture, id, None).await, "channel money waits");
        assert!(!reconciled(&fixture, id, Some(refund_id)).await);
        let card_instruction = instruction(&card, Card);
        let orders = [
            channel_order(&fixture, card_instruction, None).await,
            channel_order(&fixture, card_instruction, Some(refund_id)).await,
            channel_order(&fixture, instruction(&refused, Card), None).await,
            999_999,
        ];
        let store = &fixture.store;
        assert_eq!(store.confirm_channel_orders(&orders).await.unwrap(), 2);
        assert!(reconciled(&fixture, id, None).await);
        assert!(reconciled(&fixture, id, Some(refund_id)).await);
        // Again: nothing changes.
        assert_eq!(store.confirm_channel_orders(&orders).await.unwrap(), 0);
        assert_eq!(store.confirm_channel_orders(&[]).await.unwrap(), 0);
        let too_many = vec![orders[0]; CONFIRM_ORDERS_MAX + 1];
        let refused_call = store.confirm_channel_orders(&too_many).await.unwrap_err();
        assert_eq!(refused_call.code(), "TOO_MANY_ORDERS");
        // More ids than one statement binds still go in one call.
        let many: Vec<i64> = (1..=i64::try_from(CONFIRM_ORDERS_MAX).unwrap()).collect();
        assert_eq!(store.confirm_channel_orders(&many).await.unwrap(), 0);
    }
}

fn side(amount_minor: i64, fee_minor: i64, status: RecordStatus) -> SideFigures {
    SideFigures {
        amount_minor,
        currency: "CNY".to_owned(),
        fee_minor: Some(fee_minor),
        status,
        channel_transaction_id: Some("SIM-1".to_owned()),
        occurred_at: NOW,
        business_day: 20_412,
    }
}

/// A card payment, a discrepancy of it between `platform` and `channel`,
/// `treatment` applied at `at`, and whether its entry is confirmed.
struct Case {
    amount_minor: i64,
    class: Class,
    platform: SideFigures,
    channel: SideFigures,
    treatment: Treatment,
    at: i64,
    confirms: bool,
}

async fn treated_case(fixture: &Fixture, index: usize, case: Case) {
    let trade = format!("t-{index}");
    let view = pay(
        fixture,
        &trade,
        "instant_transfer",
        &[(FundingSource::Card, case.amount_minor)],
    )
    .await;
    let order = channel_order(fixture, instruction(&view, FundingSource::Card), None).await;
    let finding = Finding {
        key: order.to_string(),
        kind: RecordKind::Payment,
        class: case.class,
        platform: Some(case.platform),
        channel: Some(case.channel),
        channel_count: 1,
    };
    common::treat_finding(fixture, &finding, "TEST", case.treatment, case.at).await;
    assert_eq!(
        reconciled(fixture, view.payment.id, None).await,
        case.confirms,
        "{} by {}",
        case.class.as_str(),
        case.treatment.as_str()
    );
}

#[tokio::test]
async fn treatments_that_leave_both_sides_agreeing_confirm_the_entry() {
    use RecordStatus::{Processing, Success};
    for fixture in common::fixtures("reconciled_treatments").await {
        let cases = [
            // 补单: PROCESSING here (a card amount ending in 92 answers
            // after two seconds), SUCCESS at the channel, same amount.
            Case {
                amount_minor: 2_892,
                class: Class::StatusChannelSuccess,
                platform: side(2_892, 17, Processing),
                channel: side(2_892, 17, Success),
                treatment: Treatment::CompleteOrder,
                at: NOW + 10 * SECOND,
                confirms: true,
            },
            // 调账 of a fee: amounts agree.
            Case {
                amount_minor: 4_000,
                class: Class::FeeMismatch,
                platform: side(4_000, 24, Success),
                channel: side(4_000, 29, Success),
                treatment: Treatment::Adjust,
                at: NOW,
                confirms: true,
            },
            // 调账 of an amount: the channel's figure is not ours.
            Case {
                amount_minor: 3_000,
                class: Class::AmountChannelHigher,
                platform: side(3_000, 18, Success),
                channel: side(3_100, 18, Success),
                treatment: Treatment::Adjust,
                at: NOW,
                confirms: false,
            },
        ];
        for (index, case) in cases.into_iter().enumerate() {
            treated_case(&fixture, index, case).await;
        }
        let report = fixture.store.internal_check().await.unwrap();
        assert!(report.is_clean(), "{:#?}", report.findings);
    }
}

/// A refund whose parts all go back to internal sources (the card part
/// was refunded before) has nothing for a channel to confirm.
#[tokio::test]
async fn a_refund_back_to_internal_sources_is_reconciled_as_written() {
    use FundingSource::{Balance, Card};
    for fixture in common::fixtures("reconciled_internal_refund").await {
        pay(&fixture, "t-top-up", "top_up", &[(Card, 10_000)]).await;
        let combined = pay(
            &fixture,
            "t-combined",
            "instant_transfer",
            &[(Balance, 1_000), (Card, 2_500)],
        )
        .await;
        assert_eq!(combined.payment.status, PaymentStatus::Success);
        let mut refunds = Vec::new();
        for (serial, amount_minor) in [("refund-card", 2_500), ("refund-balance", 1_000)] {
            let view =
                common::refund(&fixture, "t-combined", serial, amount_minor, NOW + SECOND).await;
            refunds.push(view.refund.id);
        }
        let id = combined.payment.id;
        assert!(!reconciled(&fixture, id, None).await);
        assert!(
            !reconciled(&fixture, id, Some(refunds[0])).await,
            "went back by card"
        );
        assert!(
            reconciled(&fixture, id, Some(refunds[1])).await,
            "went back to the balance"
        );
    }
}
