//! Payouts split into several channel orders (拆单) end to end on both
//! stores: a withdrawal larger than the only bank-account channel takes in
//! one transaction goes out in parts of its limit, one after another; a
//! refused part stops the ones after it and the payout ends PARTIALLY_PAID
//! with what was paid posted and the rest back in the member's balance; a
//! part left PROCESSING holds the next until a query tells; a payout that
//! would need more parts than allowed finds no route.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Fixture, HOUR, NOW, assert_sound, balance, fixtures, fixtures_with, pay};
use engine::{
    ChannelOrderStatus, FailureReason, FundingSource, InstructionStatus, NotificationEvent,
    PaymentStatus, PaymentView,
};
use ledger::{AccountKind, OwnerKind};
use recon::ReconStore;
use server::model::PaymentResponse;

/// simbank, the one channel that takes bank accounts, takes at most
/// 50,000.00 in one transaction (config/paycore.toml).
const PART_MAX: i64 = 5_000_000;

/// The built-in configuration without the member's daily limit, so one
/// member can move a few hundred thousand in a test.
fn config(parts_max: usize) -> server::Config {
    let mut config = server::Config::builtin().unwrap();
    config.member_daily_limit_minor = None;
    config.payout_parts_max = parts_max;
    config
}

async fn cash(fixture: &Fixture) -> i64 {
    balance(
        &fixture.store,
        OwnerKind::Member,
        "alice",
        AccountKind::MemberCash,
    )
    .await
    .0
}

/// Alice tops up 300,000.00 by card, in payments simbank takes: the
/// money a payout sends through simbank must first be at simbank.
async fn top_up(fixture: &Fixture) {
    for part in 0..6 {
        let trade = format!("top-{part}");
        let view = pay(
            fixture,
            &trade,
            "top_up",
            &[(FundingSource::Card, PART_MAX)],
        )
        .await;
        assert_eq!(view.payment.status, PaymentStatus::Success, "{trade}");
    }
    assert_eq!(cash(fixture).await, 30_000_000);
}

fn withdraw_fee(view: &PaymentView) -> i64 {
    view.fees.iter().map(|fee| fee.fee.fee_minor).sum()
}

/// (part, amount, status) of every channel order of the payout.
fn parts(view: &PaymentView) -> Vec<(u32, i64, ChannelOrderStatus)> {
    view.payout_parts
        .iter()
        .map(|part| (part.part_no, part.amount_minor, part.status))
        .collect()
}

async fn events(fixture: &Fixture, payment_id: i64) -> Vec<NotificationEvent> {
    engine::NotificationStore::payment_notifications(&fixture.store, payment_id)
        .await
        .unwrap()
        .into_iter()
        .map(|notification| notification.event)
        .collect()
}

async fn assert_internal_clean(fixture: &Fixture) {
    let report = fixture.store.internal_check().await.unwrap();
    assert!(report.is_clean(), "{:?}", report.findings);
}

#[tokio::test]
async fn a_payout_over_the_channel_limit_goes_out_in_parts() {
    for fixture in fixtures_with("payouts_split", &config(10)).await {
        top_up(&fixture).await;
        let view = pay(
            &fixture,
            "w-1",
            "withdrawal",
            &[(FundingSource::BankAccount, 12_000_000)],
        )
        .await;
        assert_eq!(view.payment.status, PaymentStatus::Success, "{view:?}");
        assert_eq!(view.instructions[0].status, InstructionStatus::Success);
        assert_eq!(
            parts(&view),
            [
                (0, PART_MAX, ChannelOrderStatus::Success),
                (1, PART_MAX, ChannelOrderStatus::Success),
                (2, 2_000_000, ChannelOrderStatus::Success),
            ]
        );
        // Each part is a transaction of its own at the channel.
        let mut ids: Vec<_> = view
            .payout_parts
            .iter()
            .map(|part| part.channel_transaction_id.clone().unwrap())
            .collect();
        ids.dedup();
        assert_eq!(ids.len(), 3);
        assert_eq!(view.paid_out_minor(), Some(12_000_000));
        let fee = withdraw_fee(&view);
        assert_eq!(cash(&fixture).await, 30_000_000 - 12_000_000 - fee);
        // The merchant sees the parts, and is told once.
        let response = PaymentResponse::try_from(view.clone()).unwrap();
        assert_eq!(response.paid_out_minor, Some(12_000_000));
        assert_eq!(response.instructions[0].parts.len(), 3);
        assert_eq!(response.instructions[0].parts[2].amount_minor, 2_000_000);
        assert_eq!(
            events(&fixture, view.payment.id).await,
            [NotificationEvent::PaymentSucceeded]
        );
        // Run again (a resolver beside the request): nothing moves twice.
        let again = fixture
            .state
            .payments()
            .resume(common::MERCHANT, view.payment.id, NOW + HOUR)
            .await
            .unwrap();
        assert_eq!(parts(&again), parts(&view));
        assert_eq!(cash(&fixture).await, 30_000_000 - 12_000_000 - fee);
        assert_sound(&fixture.store).await;
        assert_internal_clean(&fixture).await;
    }
}

#[tokio::test]
async fn a_refused_part_stops_the_rest_and_the_payout_is_partly_paid() {
    for fixture in fixtures_with("payouts_partly", &config(10)).await {
        top_up(&fixture).await;
        // Parts of 50,000.00, 50,000.00 and 50,000.00, then 20,000.91: the
        // bank refuses amounts ending in 91 (the simulator's rule).
        let view = pay(
            &fixture,
            "w-2",
            "withdrawal",
            &[(FundingSource::BankAccount, 17_000_091)],
        )
        .await;
        assert_eq!(view.payment.status, PaymentStatus::PartiallyPaid);
        assert_eq!(view.payment.failure, Some(FailureReason::ChannelRefused));
        assert_eq!(view.instructions[0].status, InstructionStatus::Success);
        assert_eq!(
            parts(&view),
            [
                (0, PART_MAX, ChannelOrderStatus::Success),
                (1, PART_MAX, ChannelOrderStatus::Success),
                (2, PART_MAX, ChannelOrderStatus::Success),
                (3, 2_000_091, ChannelOrderStatus::Failed),
            ]
        );
        assert_eq!(view.paid_out_minor(), Some(15_000_000));
        // What left is posted; the refused part is back in her balance.
        let fee = withdraw_fee(&view);
        assert_eq!(cash(&fixture).await, 30_000_000 - 15_000_000 - fee);
        let clearing = balance(
            &fixture.store,
            OwnerKind::Channel,
            "simbank",
            AccountKind::ChannelClearing,
        )
        .await;
        // simbank held the 300,000.00 of the top-ups; 150,000.00 left it.
        assert_eq!(clearing.0, 30_000_000 - 15_000_000);
        assert_eq!(
            events(&fixture, view.payment.id).await,
            [NotificationEvent::PaymentPartiallyPaid]
        );
        let response = PaymentResponse::try_from(view.clone()).unwrap();
        assert_eq!(response.status, "PARTIALLY_PAID");
        assert_eq!(response.failure_code.as_deref(), Some("CHANNEL_REFUSED"));
        assert_sound(&fixture.store).await;
        assert_internal_clean(&fixture).await;

        // Internal reconciliation holds the posting to what the parts paid:
        // a part that turns out refused leaves the posting 50,000.00 over.
        common::execute(
            &fixture.raw,
            &format!(
                "UPDATE channel_orders SET status = 'FAILED' WHERE id = {}",
                view.payout_parts[1].id
            ),
        )
        .await;
        let report = fixture.store.internal_check().await.unwrap();
        let found: Vec<_> = report
            .findings
            .iter()
            .map(|finding| {
                (
                    finding.code,
                    finding.key.as_str(),
                    finding.expected_minor,
                    finding.actual_minor,
                )
            })
            .collect();
        let post_key = format!("post-{}", view.instructions[0].id);
        assert_eq!(
            found,
            [(
                recon::InternalCode::AmountDiffers,
                post_key.as_str(),
                Some(10_000_000),
                Some(15_000_000)
            )]
        );
    }
}

#[tokio::test]
async fn a_part_in_processing_holds_the_next_until_a_query_tells() {
    for fixture in fixtures_with("payouts_processing", &config(10)).await {
        top_up(&fixture).await;
        // Parts of 50,000.00 and 0.93, then nothing: the second is
        // PROCESSING, then refused (amounts ending in 93).
        let view = pay(
            &fixture,
            "w-3",
            "withdrawal",
            &[(FundingSource::BankAccount, PART_MAX + 93)],
        )
        .await;
        assert_eq!(view.payment.status, PaymentStatus::Processing);
        assert_eq!(
            parts(&view),
            [
                (0, PART_MAX, ChannelOrderStatus::Success),
                (1, 93, ChannelOrderStatus::Processing),
            ]
        );
        // The whole amount stays reserved while a part is unknown.
        let (ledger_cash, available_cash) = balance(
            &fixture.store,
            OwnerKind::Member,
            "alice",
            AccountKind::MemberCash,
        )
        .await;
        assert_eq!(
            ledger_cash - available_cash,
            PART_MAX + 93 + withdraw_fee(&view)
        );
        assert_internal_clean(&fixture).await;

        let later = fixture
            .state
            .payments()
            .resume(common::MERCHANT, view.payment.id, NOW + HOUR)
            .await
            .unwrap();
        assert_eq!(later.payment.status, PaymentStatus::PartiallyPaid);
        assert_eq!(
            parts(&later),
            [
                (0, PART_MAX, ChannelOrderStatus::Success),
                (1, 93, ChannelOrderStatus::Failed),
            ]
        );
        assert_eq!(
            cash(&fixture).await,
            30_000_000 - PART_MAX - withdraw_fee(&later)
        );
        assert_sound(&fixture.store).await;
        assert_internal_clean(&fixture).await;
    }
}

#[tokio::test]
async fn a_payout_needing_more_parts_than_allowed_finds_no_route() {
    for fixture in fixtures_with("payouts_too_many", &config(2)).await {
        top_up(&fixture).await;
        let view = pay(
            &fixture,
            "w-4",
            "withdrawal",
            &[(FundingSource::BankAccount, 2 * PART_MAX + 1)],
        )
        .await;
        assert_eq!(view.payment.status, PaymentStatus::Failed);
        assert_eq!(view.payment.failure, Some(FailureReason::NoRoute));
        assert!(view.payout_parts.is_empty());
        assert_eq!(cash(&fixture).await, 30_000_000);
        // Within the parts allowed, it goes.
        let view = pay(
            &fixture,
            "w-5",
            "withdrawal",
            &[(FundingSource::BankAccount, 2 * PART_MAX)],
        )
        .await;
        assert_eq!(view.payment.status, PaymentStatus::Success);
        assert_eq!(view.payout_parts.len(), 2);
        assert_sound(&fixture.store).await;
        assert_internal_clean(&fixture).await;
    }
}

/// An operator books a wire of `amount_minor` the merchant sent to its
/// account at simbank (`manual-` keys are operators' own).
async fn wire_to_merchant(fixture: &Fixture, amount_minor: i64) {
    use ledger::{BatchItem, Leg, Operation, Side, TransferMode};
    let payments = fixture.state.payments();
    let account = |owner_kind, owner: &'static str, kind| {
        payments.account(owner_kind, owner, kind, money::Currency::CNY)
    };
    let clearing = account(OwnerKind::Channel, "simbank", AccountKind::ChannelClearing)
        .await
        .unwrap();
    let available = account(
        OwnerKind::Merchant,
        common::MERCHANT,
        AccountKind::MerchantAvailable,
    )
    .await
    .unwrap();
    let leg = |account_id, side| Leg {
        account_id,
        side,
        amount_minor,
        currency: money::Currency::CNY,
    };
    let results = fixture
        .state
        .ledger()
        .submit(vec![BatchItem::single(Operation::Transfer {
            key: "manual-wire-1".to_owned(),
            legs: vec![leg(clearing, Side::Debit), leg(available, Side::Credit)],
            mode: TransferMode::Posted,
            description: "merchant's wire for payouts".to_owned(),
        })])
        .await
        .unwrap();
    assert!(results[0].is_ok(), "{results:?}");
}

#[tokio::test]
async fn a_merchant_payout_is_split_and_not_held_to_a_members_daily_limit() {
    // The built-in configuration: a member may pay 50,000.00 a day.
    for fixture in fixtures("payouts_merchant").await {
        wire_to_merchant(&fixture, 30_000_000).await;
        let view = pay(
            &fixture,
            "p-1",
            "merchant_payout",
            &[(FundingSource::BankAccount, 12_000_000)],
        )
        .await;
        assert_eq!(view.payment.status, PaymentStatus::Success, "{view:?}");
        assert_eq!(view.payout_parts.len(), 3);
        let available = balance(
            &fixture.store,
            OwnerKind::Merchant,
            common::MERCHANT,
            AccountKind::MerchantAvailable,
        )
        .await
        .0;
        assert_eq!(available, 30_000_000 - 12_000_000 - withdraw_fee(&view));
        // A member is still held to the limit, split or not.
        let refused = fixture
            .state
            .payments()
            .pay(
                &engine::PayRequest {
                    merchant_id: common::MERCHANT.to_owned(),
                    out_trade_no: "w-big".to_owned(),
                    subject: "goods".to_owned(),
                    amount_minor: 12_000_000,
                    currency: money::Currency::CNY,
                    request_serial: "serial-w-big".to_owned(),
                    product: "withdrawal".to_owned(),
                    payer_id: "alice".to_owned(),
                    bank: Some("ICBC".to_owned()),
                    sources: vec![(FundingSource::BankAccount, 12_000_000)],
                    campaign: None,
                    agreement_no: None,
                },
                NOW,
            )
            .await
            .unwrap_err();
        assert_eq!(refused.code(), "LIMIT_EXCEEDED");
        assert_sound(&fixture.store).await;
        assert_internal_clean(&fixture).await;
    }
}
