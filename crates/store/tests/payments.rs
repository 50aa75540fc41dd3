//! Payments end to end through the engine: orders in the store, money in
//! the ledger, card money through the simulator channel. Every test runs
//! against SQLite and PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use channels::Simulator;
use engine::{
    BankOutage, ChannelOrderStatus, Direction, FundingSource, Initiator, InstructionStatus,
    NewInstruction, NewPayment, NewTrade, NotificationEvent, NotificationStore, OrderStore,
    PayRequest, PaymentService, PaymentStatus, PaymentView, Product, RefundPartStatus,
    RefundRequest, RefundStatus, Route, TradeStatus,
};
use ledger::{AccountKind, LedgerStore, OwnerKind};
use money::Currency;
use std::sync::Arc;
use store::{Ledger, LedgerOptions, Store};

mod common;
use common::Fixture;

contract!(
    payments_top_up_then_pay_from_balance,
    payments_combined_balance_and_card,
    payments_refused_sources_move_no_money,
    payments_processing_resolved_by_query,
    payments_same_serial_concurrently_pays_once,
    payments_duplicate_success_is_recognised,
    payments_resolver_finishes_interrupted_payments,
    payments_refunds_go_back_to_their_sources,
    payments_platform_refunds_wait_for_review,
    payments_refund_through_a_slow_channel,
    payments_route_around_banks_that_are_down,
    payments_member_daily_limit,
    payments_channel_daily_limit,
    payments_withdrawals_leave_through_the_channel,
    payments_finish_after_a_crash_past_the_channel,
    payments_refund_the_payee_cannot_cover_moves_nothing,
    payments_concurrent_runs_of_one_payment_are_no_duplicate,
);

/// 2026-11-22 10:00:00 UTC+8.
const NOW: i64 = 1_795_312_800_000_000;
const SECOND: i64 = 1_000_000;

type Service = PaymentService<Store, Ledger, Simulator>;

fn service(fixture: &Fixture) -> Service {
    let ledger = Ledger::start(fixture.store.clone(), LedgerOptions::default());
    PaymentService::new(
        fixture.store.clone(),
        ledger,
        vec![Simulator::new("simbank")],
        vec![
            Product::instant_transfer(),
            Product::top_up(),
            Product::withdrawal(),
        ],
    )
}

fn request(
    out_trade_no: &str,
    serial: &str,
    product: &str,
    sources: &[(FundingSource, i64)],
) -> PayRequest {
    PayRequest {
        merchant_id: "m-coffee".to_owned(),
        out_trade_no: out_trade_no.to_owned(),
        subject: "coffee".to_owned(),
        amount_minor: sources.iter().map(|(_, amount)| amount).sum(),
        currency: Currency::CNY,
        request_serial: serial.to_owned(),
        product: product.to_owned(),
        payer_id: "alice".to_owned(),
        bank: Some("ICBC".to_owned()),
        sources: sources.to_vec(),
        campaign: None,
        agreement_no: None,
    }
}

/// The ledger balance of an account found by owner and kind (0 if it was
/// never opened).
async fn balance(store: &Store, owner_kind: OwnerKind, owner: &str, kind: AccountKind) -> i64 {
    for id in 1..200 {
        let Some(account) = store.account(id).await.unwrap() else {
            break;
        };
        if account.owner_kind == owner_kind && account.owner_id == owner && account.kind == kind {
            return account.balance().unwrap().ledger_minor;
        }
    }
    0
}

async fn available(store: &Store, owner: &str) -> i64 {
    for id in 1..200 {
        let Some(account) = store.account(id).await.unwrap() else {
            break;
        };
        if account.owner_id == owner && account.kind == AccountKind::MemberCash {
            return account.balance().unwrap().available_minor;
        }
    }
    0
}

async fn alice(store: &Store) -> i64 {
    balance(store, OwnerKind::Member, "alice", AccountKind::MemberCash).await
}

async fn merchant(store: &Store) -> i64 {
    balance(
        store,
        OwnerKind::Merchant,
        "m-coffee",
        AccountKind::MerchantPending,
    )
    .await
}

async fn assert_sound(store: &Store) {
    let report = store.check().await.unwrap();
    assert!(report.is_sound(), "{:?}", report.violations);
}

/// Tops alice up with `amount_minor` by card.
async fn top_up(service: &Service, amount_minor: i64) -> PaymentView {
    let view = service
        .pay(
            &request(
                &format!("topup-{amount_minor}"),
                &format!("topup-{amount_minor}"),
                "top_up",
                &[(FundingSource::Card, amount_minor)],
            ),
            NOW,
        )
        .await
        .unwrap();
    assert_eq!(view.payment.status, PaymentStatus::Success);
    view
}

async fn payments_top_up_then_pay_from_balance(fixture: Fixture) {
    let store = &fixture.store;
    let service = service(&fixture);
    let topped = top_up(&service, 10_000).await;
    assert_eq!(topped.trade.status, TradeStatus::Success);
    assert_eq!(alice(store).await, 10_000);
    assert_eq!(
        balance(
            store,
            OwnerKind::Channel,
            "simbank",
            AccountKind::ChannelClearing
        )
        .await,
        10_000
    );
    let paid = service
        .pay(
            &request(
                "T1",
                "S1",
                "instant_transfer",
                &[(FundingSource::Balance, 3_000)],
            ),
            NOW,
        )
        .await
        .unwrap();
    assert_eq!(paid.payment.status, PaymentStatus::Success);
    assert_eq!(paid.instructions[0].status, InstructionStatus::Success);
    assert_eq!(paid.trade.status, TradeStatus::Success);
    assert_eq!(paid.trade.paid_payment_id, Some(paid.payment.id));
    assert_eq!(paid.duplicate_of, None);
    assert_eq!(alice(store).await, 7_000);
    assert_eq!(merchant(store).await, 3_000);
    let notifications = store.payment_notifications(paid.payment.id).await.unwrap();
    assert_eq!(notifications.len(), 1);
    assert_eq!(notifications[0].event, NotificationEvent::PaymentSucceeded);
    // The trade is paid: another payment of it is refused.
    let again = service
        .pay(
            &request(
                "T1",
                "S2",
                "instant_transfer",
                &[(FundingSource::Balance, 3_000)],
            ),
            NOW,
        )
        .await
        .unwrap_err();
    assert_eq!(again.code(), "TRADE_NOT_PAYABLE");
    let wrong_product = service
        .pay(
            &request("T9", "S9", "top_up", &[(FundingSource::Balance, 1)]),
            NOW,
        )
        .await
        .unwrap_err();
    assert_eq!(wrong_product.code(), "SOURCE_NOT_ALLOWED");
    assert_sound(store).await;
}

async fn payments_combined_balance_and_card(fixture: Fixture) {
    let store = &fixture.store;
    let service = service(&fixture);
    top_up(&service, 5_000).await;
    // 组合支付: 30.00 from balance and 70.00 by card.
    let paid = service
        .pay(
            &request(
                "T1",
                "S1",
                "instant_transfer",
                &[
                    (FundingSource::Balance, 3_000),
                    (FundingSource::Card, 7_000),
                ],
            ),
            NOW,
        )
        .await
        .unwrap();
    assert_eq!(paid.payment.status, PaymentStatus::Success);
    assert_eq!(paid.trade.paid_minor, 10_000);
    assert_eq!(alice(store).await, 2_000);
    assert_eq!(merchant(store).await, 10_000);
    let channel_orders = service
        .orders()
        .channel_orders(paid.instructions[1].id, None);
    assert_eq!(
        channel_orders.await.unwrap()[0]
            .channel_transaction_id
            .as_deref()
            .map(|id| id.starts_with("SIMC")),
        Some(true)
    );
    let two_cards = service
        .pay(
            &request(
                "T2",
                "S2",
                "instant_transfer",
                &[(FundingSource::Card, 100), (FundingSource::Wallet, 100)],
            ),
            NOW,
        )
        .await
        .unwrap_err();
    assert_eq!(two_cards.code(), "TOO_MANY_CHANNEL_SOURCES");
    assert_sound(store).await;
}

async fn payments_refused_sources_move_no_money(fixture: Fixture) {
    let store = &fixture.store;
    let service = service(&fixture);
    top_up(&service, 1_000).await;
    // Not enough balance: the hold is refused, nothing moves.
    let short = service
        .pay(
            &request(
                "T1",
                "S1",
                "instant_transfer",
                &[(FundingSource::Balance, 1_001)],
            ),
            NOW,
        )
        .await
        .unwrap();
    assert_eq!(short.payment.status, PaymentStatus::Failed);
    assert_eq!(short.trade.status, TradeStatus::WaitPay);
    // The same serial gets the same answer.
    let repeated = service
        .pay(
            &request(
                "T1",
                "S1",
                "instant_transfer",
                &[(FundingSource::Balance, 1_001)],
            ),
            NOW,
        )
        .await
        .unwrap();
    assert_eq!(repeated, short);
    // The card is refused (amount ending in 91): the balance part held for
    // it is released.
    let refused = service
        .pay(
            &request(
                "T1",
                "S2",
                "instant_transfer",
                &[(FundingSource::Balance, 500), (FundingSource::Card, 510)],
            ),
            NOW,
        )
        .await;
    let refused = refused.unwrap_err();
    assert_eq!(
        refused.code(),
        "REFERENCE_CONFLICT",
        "T1 is 10.01: a different amount conflicts"
    );
    let refused = service
        .pay(
            &request(
                "T2",
                "S3",
                "instant_transfer",
                &[(FundingSource::Balance, 500), (FundingSource::Card, 591)],
            ),
            NOW,
        )
        .await
        .unwrap();
    assert_eq!(refused.payment.status, PaymentStatus::Failed);
    assert!(
        refused
            .instructions
            .iter()
            .all(|instruction| instruction.status == InstructionStatus::Failed)
    );
    assert_eq!(alice(store).await, 1_000);
    assert_eq!(available(store, "alice").await, 1_000);
    assert_eq!(merchant(store).await, 0);
    // A trade may be paid again after a failed attempt.
    let paid = service
        .pay(
            &request(
                "T1",
                "S4",
                "instant_transfer",
                &[(FundingSource::Card, 1_001)],
            ),
            NOW,
        )
        .await
        .unwrap();
    assert_eq!(paid.trade.status, TradeStatus::Success);
    assert_eq!(merchant(store).await, 1_001);
    assert_sound(store).await;
}

async fn payments_processing_resolved_by_query(fixture: Fixture) {
    let store = &fixture.store;
    let service = service(&fixture);
    top_up(&service, 1_000).await;
    // The card part ends in 92: PROCESSING, then success after 2 seconds.
    let started = service
        .pay(
            &request(
                "T1",
                "S1",
                "instant_transfer",
                &[(FundingSource::Balance, 400), (FundingSource::Card, 692)],
            ),
            NOW,
        )
        .await
        .unwrap();
    assert_eq!(started.payment.status, PaymentStatus::Processing);
    assert_eq!(started.trade.status, TradeStatus::WaitPay);
    // The balance part is reserved, not yet paid.
    assert_eq!(alice(store).await, 1_000);
    assert_eq!(available(store, "alice").await, 600);
    assert_eq!(merchant(store).await, 0);
    let early = service
        .resume("m-coffee", started.payment.id, NOW + SECOND)
        .await
        .unwrap();
    assert_eq!(early.payment.status, PaymentStatus::Processing);
    let done = service
        .resume("m-coffee", started.payment.id, NOW + 3 * SECOND)
        .await
        .unwrap();
    assert_eq!(done.payment.status, PaymentStatus::Success);
    assert_eq!(done.trade.status, TradeStatus::Success);
    assert_eq!(alice(store).await, 600);
    assert_eq!(merchant(store).await, 1_092);
    // Resolving again changes nothing.
    let again = service
        .resume("m-coffee", started.payment.id, NOW + 9 * SECOND)
        .await
        .unwrap();
    assert_eq!(again.payment, done.payment);
    assert_eq!(merchant(store).await, 1_092);
    // A submit that timed out (94) but was executed is found by query.
    let timed_out = service
        .pay(
            &request(
                "T2",
                "S2",
                "instant_transfer",
                &[(FundingSource::Card, 294)],
            ),
            NOW,
        )
        .await
        .unwrap();
    assert_eq!(timed_out.payment.status, PaymentStatus::Processing);
    let found = service
        .resume("m-coffee", timed_out.payment.id, NOW + SECOND)
        .await
        .unwrap();
    assert_eq!(found.payment.status, PaymentStatus::Success);
    // One that never arrived (95) fails once the channel says so.
    let lost = service
        .pay(
            &request(
                "T3",
                "S3",
                "instant_transfer",
                &[(FundingSource::Balance, 100), (FundingSource::Card, 295)],
            ),
            NOW,
        )
        .await
        .unwrap();
    let still = service
        .resume("m-coffee", lost.payment.id, NOW + SECOND)
        .await
        .unwrap();
    assert_eq!(still.payment.status, PaymentStatus::Processing);
    let failed = service
        .resume("m-coffee", lost.payment.id, NOW + 3 * SECOND)
        .await
        .unwrap();
    assert_eq!(failed.payment.status, PaymentStatus::Failed);
    assert_eq!(available(store, "alice").await, 600);
    assert_sound(store).await;
}

async fn payments_same_serial_concurrently_pays_once(fixture: Fixture) {
    let store = &fixture.store;
    let service = Arc::new(service(&fixture));
    top_up(&service, 10_000).await;
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let service = Arc::clone(&service);
        tasks.push(tokio::spawn(async move {
            service
                .pay(
                    &request(
                        "T1",
                        "S1",
                        "instant_transfer",
                        &[
                            (FundingSource::Balance, 2_500),
                            (FundingSource::Card, 2_500),
                        ],
                    ),
                    NOW,
                )
                .await
                .unwrap()
        }));
    }
    let mut payment_ids = Vec::new();
    for task in tasks {
        let view = task.await.unwrap();
        payment_ids.push(view.payment.id);
    }
    payment_ids.dedup();
    assert_eq!(payment_ids.len(), 1, "one payment for 50 requests");
    let final_view = service
        .resume("m-coffee", payment_ids[0], NOW)
        .await
        .unwrap();
    assert_eq!(final_view.payment.status, PaymentStatus::Success);
    assert_eq!(alice(store).await, 7_500);
    assert_eq!(merchant(store).await, 5_000);
    assert_sound(store).await;
}

async fn payments_duplicate_success_is_recognised(fixture: Fixture) {
    let store = &fixture.store;
    let service = service(&fixture);
    top_up(&service, 100).await;
    // The first attempt's card part is PROCESSING (ends in 92); the buyer
    // pays again by card, which succeeds at once; then the first one
    // succeeds too.
    let slow = service
        .pay(
            &request(
                "T1",
                "S1",
                "instant_transfer",
                &[(FundingSource::Balance, 8), (FundingSource::Card, 992)],
            ),
            NOW,
        )
        .await
        .unwrap();
    assert_eq!(slow.payment.status, PaymentStatus::Processing);
    let fast = service
        .pay(
            &request(
                "T1",
                "S2",
                "instant_transfer",
                &[(FundingSource::Card, 1_000)],
            ),
            NOW,
        )
        .await
        .unwrap();
    assert_eq!(fast.payment.status, PaymentStatus::Success);
    assert_eq!(fast.trade.paid_payment_id, Some(fast.payment.id));
    let late = service
        .resume("m-coffee", slow.payment.id, NOW + 3 * SECOND)
        .await
        .unwrap();
    assert_eq!(late.payment.status, PaymentStatus::Success);
    assert_eq!(late.duplicate_of, Some(fast.payment.id));
    assert_eq!(late.trade.paid_payment_id, Some(fast.payment.id));
    assert_eq!(late.trade.paid_minor, 1_000);
    // Both payments' money arrived; the duplicate's is raised for refund,
    // waiting for an operator.
    assert_eq!(merchant(store).await, 2_000);
    assert_eq!(alice(store).await, 92);
    let raised = service
        .refund(
            &RefundRequest {
                merchant_id: "m-coffee".to_owned(),
                out_trade_no: "T1".to_owned(),
                refund_serial: engine::duplicate_refund_serial(slow.payment.id),
                amount_minor: 1_000,
                reason: String::new(),
                initiator: Initiator::Platform,
            },
            NOW + 3 * SECOND,
        )
        .await
        .unwrap();
    assert_eq!(raised.refund.status, RefundStatus::PendingReview);
    assert_eq!(raised.refund.payment_id, slow.payment.id);
    let approved = service
        .review_refund(
            "m-coffee",
            raised.refund.id,
            &engine::NewRefundReview {
                operator: "ops".to_owned(),
                approved: true,
                reason: "checked".to_owned(),
            },
            NOW + 3 * SECOND,
        )
        .await
        .unwrap();
    // Its card part ends in 92 too: the channel takes two seconds.
    assert_eq!(approved.refund.status, RefundStatus::Processing);
    let done = service
        .resume_refund("m-coffee", raised.refund.id, NOW + 6 * SECOND)
        .await
        .unwrap();
    assert_eq!(done.refund.status, RefundStatus::Success);
    assert_eq!(merchant(store).await, 1_000);
    assert_eq!(alice(store).await, 100);
    // The trade stays paid by the first success, untouched.
    assert_eq!(done.trade.status, TradeStatus::Success);
    assert_eq!(done.trade.refunded_minor, 0);
    assert_sound(store).await;
}

async fn payments_resolver_finishes_interrupted_payments(fixture: Fixture) {
    let store = &fixture.store;
    let service = service(&fixture);
    // A payment whose process died right after creating its orders: nothing
    // was held, asked or posted.
    let trade = service
        .orders()
        .create_trade(
            &NewTrade {
                merchant_id: "m-coffee".to_owned(),
                out_trade_no: "T1".to_owned(),
                subject: "coffee".to_owned(),
                amount_minor: 700,
                currency: Currency::CNY,
            },
            NOW,
        )
        .await
        .unwrap()
        .into_inner();
    let interrupted = service
        .orders()
        .create_payment(
            &NewPayment {
                trade_id: trade.id,
                merchant_id: "m-coffee".to_owned(),
                request_serial: "S1".to_owned(),
                product: "instant_transfer".to_owned(),
                payer_id: "alice".to_owned(),
                bank: None,
                agreement_no: None,
                amount_minor: 700,
                currency: Currency::CNY,
                campaign: None,
                bonus_minor: 0,
            },
            &[NewInstruction {
                direction: Direction::Collect,
                source: FundingSource::Card,
                amount_minor: 700,
            }],
            NOW,
        )
        .await
        .unwrap()
        .into_inner();
    // And one waiting for its channel (ends in 92).
    let waiting = service
        .pay(
            &request(
                "T2",
                "S2",
                "instant_transfer",
                &[(FundingSource::Card, 892)],
            ),
            NOW,
        )
        .await
        .unwrap();
    assert_eq!(waiting.payment.status, PaymentStatus::Processing);
    // Too fresh to touch yet.
    let fresh = service.resolve_unfinished(NOW, SECOND, 100).await.unwrap();
    assert!(fresh.is_empty());
    let resolved = service
        .resolve_unfinished(NOW + 3 * SECOND, SECOND, 100)
        .await
        .unwrap();
    assert_eq!(resolved.len(), 2);
    for result in resolved {
        assert_eq!(result.unwrap().payment.status, PaymentStatus::Success);
    }
    let finished = service
        .status("m-coffee", interrupted.payment.id)
        .await
        .unwrap();
    assert_eq!(finished.trade.status, TradeStatus::Success);
    assert_eq!(merchant(store).await, 700 + 892);
    assert!(
        service
            .resolve_unfinished(NOW + 9 * SECOND, SECOND, 100)
            .await
            .unwrap()
            .is_empty()
    );
    assert_sound(store).await;
}

fn refund(
    out_trade_no: &str,
    serial: &str,
    amount_minor: i64,
    initiator: Initiator,
) -> RefundRequest {
    RefundRequest {
        merchant_id: "m-coffee".to_owned(),
        out_trade_no: out_trade_no.to_owned(),
        refund_serial: serial.to_owned(),
        amount_minor,
        reason: "returned".to_owned(),
        initiator,
    }
}

async fn payments_refunds_go_back_to_their_sources(fixture: Fixture) {
    let store = &fixture.store;
    let service = service(&fixture);
    top_up(&service, 10_000).await;
    service
        .pay(
            &request(
                "T1",
                "S1",
                "instant_transfer",
                &[
                    (FundingSource::Balance, 3_000),
                    (FundingSource::Card, 7_000),
                ],
            ),
            NOW,
        )
        .await
        .unwrap();
    assert_eq!(alice(store).await, 7_000);
    let clearing = || {
        balance(
            store,
            OwnerKind::Channel,
            "simbank",
            AccountKind::ChannelClearing,
        )
    };
    assert_eq!(clearing().await, 17_000);
    // 80.00 back: the card's 70.00 first, then 10.00 to the balance.
    let first = service
        .refund(&refund("T1", "R1", 8_000, Initiator::Merchant), NOW)
        .await
        .unwrap();
    assert_eq!(first.refund.status, RefundStatus::Success);
    assert_eq!(first.parts.len(), 2);
    assert!(
        first
            .parts
            .iter()
            .all(|part| part.status == RefundPartStatus::Success)
    );
    assert_eq!(first.trade.status, TradeStatus::PartiallyRefunded);
    assert_eq!(first.trade.refunded_minor, 8_000);
    assert_eq!(merchant(store).await, 2_000);
    assert_eq!(alice(store).await, 8_000);
    assert_eq!(clearing().await, 10_000);
    // The same refund serial is the same refund.
    let repeated = service
        .refund(&refund("T1", "R1", 8_000, Initiator::Merchant), NOW)
        .await
        .unwrap();
    assert_eq!(repeated.refund, first.refund);
    assert_eq!(merchant(store).await, 2_000);
    let too_much = service
        .refund(&refund("T1", "R2", 2_001, Initiator::Merchant), NOW)
        .await
        .unwrap_err();
    assert_eq!(too_much.code(), "REFUND_EXCEEDS_REFUNDABLE");
    let rest = service
        .refund(&refund("T1", "R3", 2_000, Initiator::Merchant), NOW)
        .await
        .unwrap();
    assert_eq!(rest.trade.status, TradeStatus::Refunded);
    assert_eq!(merchant(store).await, 0);
    assert_eq!(alice(store).await, 10_000);
    // A coupon is spent, not refunded.
    service
        .pay(
            &request(
                "T2",
                "S2",
                "instant_transfer",
                &[
                    (FundingSource::Coupon, 1_000),
                    (FundingSource::Balance, 4_000),
                ],
            ),
            NOW,
        )
        .await
        .unwrap();
    let beyond_paid = service
        .refund(&refund("T2", "R4", 4_001, Initiator::Merchant), NOW)
        .await
        .unwrap_err();
    assert_eq!(beyond_paid.code(), "REFUND_EXCEEDS_REFUNDABLE");
    let all_paid = service
        .refund(&refund("T2", "R5", 4_000, Initiator::Merchant), NOW)
        .await
        .unwrap();
    assert_eq!(all_paid.trade.status, TradeStatus::Refunded);
    assert_sound(store).await;
}

async fn payments_platform_refunds_wait_for_review(fixture: Fixture) {
    let store = &fixture.store;
    let service = service(&fixture);
    service
        .pay(
            &request(
                "T1",
                "S1",
                "instant_transfer",
                &[(FundingSource::Card, 5_000)],
            ),
            NOW,
        )
        .await
        .unwrap();
    let waiting = service
        .refund(&refund("T1", "R1", 1_000, Initiator::Platform), NOW)
        .await
        .unwrap();
    assert_eq!(waiting.refund.status, RefundStatus::PendingReview);
    assert_eq!(merchant(store).await, 5_000);
    let rejected = service
        .review_refund(
            "m-coffee",
            waiting.refund.id,
            &engine::NewRefundReview {
                operator: "ops".to_owned(),
                approved: false,
                reason: "checked".to_owned(),
            },
            NOW,
        )
        .await
        .unwrap();
    assert_eq!(rejected.refund.status, RefundStatus::Failed);
    // The decision is kept with who made it and why.
    let decision = rejected.review.unwrap();
    assert_eq!(
        (
            decision.review.operator.as_str(),
            decision.review.approved,
            decision.reviewed_at
        ),
        ("ops", false, NOW)
    );
    assert_eq!(
        store
            .refund_review(waiting.refund.id)
            .await
            .unwrap()
            .unwrap(),
        decision
    );
    assert_eq!(merchant(store).await, 5_000);
    let again = service
        .refund(&refund("T1", "R2", 5_000, Initiator::Platform), NOW)
        .await
        .unwrap();
    let approved = service
        .review_refund(
            "m-coffee",
            again.refund.id,
            &engine::NewRefundReview {
                operator: "ops".to_owned(),
                approved: true,
                reason: "checked".to_owned(),
            },
            NOW,
        )
        .await
        .unwrap();
    assert_eq!(approved.refund.status, RefundStatus::Success);
    assert_eq!(approved.trade.status, TradeStatus::Refunded);
    assert_eq!(merchant(store).await, 0);
    let twice = service
        .review_refund(
            "m-coffee",
            again.refund.id,
            &engine::NewRefundReview {
                operator: "ops".to_owned(),
                approved: true,
                reason: "checked".to_owned(),
            },
            NOW,
        )
        .await
        .unwrap_err();
    assert_eq!(
        twice.code(),
        "ILLEGAL_TRANSITION",
        "a reviewed refund is not reviewed again"
    );
    // The merchant is told of each refund once it is final: the rejected
    // one as failed, the approved one as succeeded.
    use engine::NotificationStore;
    let told: Vec<(&str, Option<i64>)> = store
        .payment_notifications(approved.refund.payment_id)
        .await
        .unwrap()
        .iter()
        .filter(|notification| notification.refund_id.is_some())
        .map(|notification| (notification.event.as_str(), notification.refund_id))
        .collect();
    assert_eq!(
        told,
        vec![
            ("refund.failed", Some(waiting.refund.id)),
            ("refund.succeeded", Some(again.refund.id)),
        ]
    );
    assert_sound(store).await;
}

async fn payments_refund_through_a_slow_channel(fixture: Fixture) {
    let store = &fixture.store;
    let service = service(&fixture);
    service
        .pay(
            &request(
                "T1",
                "S1",
                "instant_transfer",
                &[(FundingSource::Card, 5_000)],
            ),
            NOW,
        )
        .await
        .unwrap();
    // The refund's card part ends in 92: the channel takes two seconds.
    let slow = service
        .refund(&refund("T1", "R1", 1_092, Initiator::Merchant), NOW)
        .await
        .unwrap();
    assert_eq!(slow.refund.status, RefundStatus::Processing);
    assert_eq!(merchant(store).await, 5_000);
    let early = service
        .resolve_unfinished_refunds(NOW + SECOND, 0, 10)
        .await
        .unwrap();
    assert_eq!(
        early[0].as_ref().unwrap().refund.status,
        RefundStatus::Processing
    );
    let done = service
        .resume_refund("m-coffee", slow.refund.id, NOW + 3 * SECOND)
        .await
        .unwrap();
    assert_eq!(done.refund.status, RefundStatus::Success);
    assert_eq!(merchant(store).await, 5_000 - 1_092);
    assert_eq!(done.trade.refunded_minor, 1_092);
    // Nothing is left to resolve.
    assert!(
        service
            .resolve_unfinished_refunds(NOW + 9 * SECOND, 0, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_sound(store).await;
}

fn routed_service(fixture: &Fixture) -> Service {
    let ledger = Ledger::start(fixture.store.clone(), LedgerOptions::default());
    PaymentService::new(
        fixture.store.clone(),
        ledger,
        vec![Simulator::new("cheap"), Simulator::new("dear")],
        vec![Product::instant_transfer(), Product::top_up()],
    )
    .with_routes(vec![
        Route {
            channel: "cheap".to_owned(),
            sources: vec![FundingSource::Card],
            amount_minor_max: 50_000,
            cost_per_ten_thousand: 38,
            daily_minor_max: None,
        },
        Route {
            channel: "dear".to_owned(),
            sources: vec![FundingSource::Card, FundingSource::Wallet],
            amount_minor_max: 1_000_000,
            cost_per_ten_thousand: 80,
            daily_minor_max: None,
        },
    ])
}

/// An instant transfer of `amount` paid by card, trade and serial `trade`.
fn card(trade: &str, amount: i64) -> PayRequest {
    request(
        trade,
        trade,
        "instant_transfer",
        &[(FundingSource::Card, amount)],
    )
}

/// Ten card payments of 3,000 (trades `C0`..`C9`) sent at once at `at`.
async fn ten_at_once(
    service: &Arc<Service>,
    at: i64,
) -> Vec<Result<PaymentView, engine::EngineError>> {
    let mut tasks = Vec::new();
    for index in 0..10 {
        let service = Arc::clone(service);
        tasks.push(tokio::spawn(async move {
            service.pay(&card(&format!("C{index}"), 3_000), at).await
        }));
    }
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap());
    }
    results
}

async fn channel_of(service: &Service, view: &PaymentView) -> String {
    let orders = service
        .orders()
        .channel_orders(view.instructions[0].id, None)
        .await
        .unwrap();
    orders[0].channel.clone()
}

async fn payments_route_around_banks_that_are_down(fixture: Fixture) {
    let store = &fixture.store;
    let service = routed_service(&fixture);
    let cheap = service.pay(&card("T1", 10_000), NOW).await.unwrap();
    assert_eq!(channel_of(&service, &cheap).await, "cheap");
    // Over the cheap channel's per-transaction limit.
    let big = service.pay(&card("T2", 60_000), NOW).await.unwrap();
    assert_eq!(channel_of(&service, &big).await, "dear");
    let outage = BankOutage {
        channel: "cheap".to_owned(),
        bank: "ICBC".to_owned(),
    };
    store.set_bank_down(&outage, true, NOW).await.unwrap();
    store.set_bank_down(&outage, true, NOW).await.unwrap();
    assert_eq!(store.bank_outages().await.unwrap(), vec![outage.clone()]);
    let avoided = service.pay(&card("T3", 10_000), NOW).await.unwrap();
    assert_eq!(avoided.payment.status, PaymentStatus::Success);
    assert_eq!(channel_of(&service, &avoided).await, "dear");
    // Down everywhere: the card part has no route and the payment fails,
    // releasing what it held.
    let everywhere = BankOutage {
        channel: "dear".to_owned(),
        bank: "ICBC".to_owned(),
    };
    store.set_bank_down(&everywhere, true, NOW).await.unwrap();
    top_up_by(&service, "alice-balance", 500).await;
    let stranded = service
        .pay(
            &request(
                "T4",
                "T4",
                "instant_transfer",
                &[(FundingSource::Balance, 500), (FundingSource::Card, 10_000)],
            ),
            NOW,
        )
        .await
        .unwrap();
    assert_eq!(stranded.payment.status, PaymentStatus::Failed);
    assert_eq!(available(store, "alice").await, 500);
    store.set_bank_down(&outage, false, NOW).await.unwrap();
    let back = service.pay(&card("T5", 10_000), NOW).await.unwrap();
    assert_eq!(channel_of(&service, &back).await, "cheap");
    assert_sound(store).await;
}

/// Tops alice up through a card on a bank that is not down.
async fn top_up_by(service: &Service, serial: &str, amount_minor: i64) {
    let mut top_up = request(
        serial,
        serial,
        "top_up",
        &[(FundingSource::Card, amount_minor)],
    );
    top_up.bank = Some("CMB".to_owned());
    let view = service.pay(&top_up, NOW).await.unwrap();
    assert_eq!(view.payment.status, PaymentStatus::Success);
}

async fn payments_member_daily_limit(fixture: Fixture) {
    let store = &fixture.store;
    let service = routed_service(&fixture).with_member_daily_limit(10_000);
    service.pay(&card("T1", 6_000), NOW).await.unwrap();
    let over = service.pay(&card("T2", 4_001), NOW).await.unwrap_err();
    assert_eq!(over.code(), "LIMIT_EXCEEDED");
    // Asked again, the same request is refused the same way.
    let again = service.pay(&card("T2", 4_001), NOW).await.unwrap_err();
    assert_eq!(again.to_string(), over.to_string());
    // A payment the bank refuses does not count either.
    let refused = service.pay(&card("T5", 3_991), NOW).await.unwrap();
    assert_eq!(refused.payment.status, PaymentStatus::Failed);
    // The refused ones took nothing: the rest of the day may still be paid.
    service.pay(&card("T3", 4_000), NOW).await.unwrap();
    let full = service.pay(&card("T6", 1), NOW).await.unwrap_err();
    assert_eq!(full.code(), "LIMIT_EXCEEDED");
    // The next day (UTC+8) starts afresh.
    let tomorrow = service
        .pay(&card("T4", 6_000), NOW + 86_400 * SECOND)
        .await
        .unwrap();
    assert_eq!(tomorrow.payment.status, PaymentStatus::Success);
    assert_eq!(merchant(store).await, 16_000);
    // Concurrent payments cannot pass a limit that only some of them fit:
    // of ten at once, three of 3,000 fit in 10,000.
    let service = std::sync::Arc::new(service);
    let day = NOW + 2 * 86_400 * SECOND;
    let mut paid = 0;
    for result in ten_at_once(&service, day).await {
        match result {
            Ok(view) => {
                assert_eq!(view.payment.status, PaymentStatus::Success);
                paid += 1;
            }
            Err(error) => assert_eq!(error.code(), "LIMIT_EXCEEDED"),
        }
    }
    assert_eq!(paid, 3);
    assert_eq!(merchant(store).await, 25_000);
}

async fn payments_channel_daily_limit(fixture: Fixture) {
    let service = routed_service(&fixture);
    let mut routes = service.routes().to_vec();
    routes[0].daily_minor_max = Some(10_000);
    let service = service.with_routes(routes);
    let first = service.pay(&card("T1", 6_000), NOW).await.unwrap();
    assert_eq!(channel_of(&service, &first).await, "cheap");
    // 6,000 + 5,000 would pass cheap's 10,000 a day: dear takes it.
    let second = service.pay(&card("T2", 5_000), NOW).await.unwrap();
    assert_eq!(second.payment.status, PaymentStatus::Success);
    assert_eq!(channel_of(&service, &second).await, "dear");
    // Refused by the bank: what it counted on cheap is taken back.
    let refused = service.pay(&card("T3", 2_991), NOW).await.unwrap();
    assert_eq!(refused.payment.status, PaymentStatus::Failed);
    assert_eq!(channel_of(&service, &refused).await, "cheap");
    let fits = service.pay(&card("T4", 4_000), NOW).await.unwrap();
    assert_eq!(channel_of(&service, &fits).await, "cheap");
    let full = service.pay(&card("T5", 1), NOW).await.unwrap();
    assert_eq!(channel_of(&service, &full).await, "dear");
    // Concurrent payments never take cheap past its limit: of ten of 3,000
    // the next day, three go through it.
    let service = Arc::new(service);
    let day = NOW + 86_400 * SECOND;
    let mut through_cheap = 0;
    for result in ten_at_once(&service, day).await {
        let view = result.unwrap();
        assert_eq!(view.payment.status, PaymentStatus::Success);
        if channel_of(&service, &view).await == "cheap" {
            through_cheap += 1;
        }
    }
    assert_eq!(through_cheap, 3);
}

async fn payments_withdrawals_leave_through_the_channel(fixture: Fixture) {
    let store = &fixture.store;
    let service = service(&fixture);
    top_up(&service, 10_000).await;
    let clearing = || {
        balance(
            store,
            OwnerKind::Channel,
            "simbank",
            AccountKind::ChannelClearing,
        )
    };
    let withdraw = |trade: &str, amount: i64| {
        request(
            trade,
            trade,
            "withdrawal",
            &[(FundingSource::BankAccount, amount)],
        )
    };
    let done = service.pay(&withdraw("W1", 3_000), NOW).await.unwrap();
    assert_eq!(done.payment.status, PaymentStatus::Success);
    assert_eq!(done.instructions[0].direction, Direction::Payout);
    assert_eq!(done.trade.status, TradeStatus::Success);
    assert_eq!(alice(store).await, 7_000);
    assert_eq!(clearing().await, 7_000);
    // More than the balance: the reservation is refused, nothing leaves.
    let too_much = service.pay(&withdraw("W2", 7_001), NOW).await.unwrap();
    assert_eq!(too_much.payment.status, PaymentStatus::Failed);
    assert_eq!(alice(store).await, 7_000);
    // The bank refuses (91): the reservation is released.
    let refused = service.pay(&withdraw("W3", 1_091), NOW).await.unwrap();
    assert_eq!(refused.payment.status, PaymentStatus::Failed);
    assert_eq!(available(store, "alice").await, 7_000);
    // PROCESSING (92): reserved until the channel answers.
    let slow = service.pay(&withdraw("W4", 1_092), NOW).await.unwrap();
    assert_eq!(slow.payment.status, PaymentStatus::Processing);
    assert_eq!(alice(store).await, 7_000);
    assert_eq!(available(store, "alice").await, 7_000 - 1_092);
    let finished = service
        .resume("m-coffee", slow.payment.id, NOW + 3 * SECOND)
        .await
        .unwrap();
    assert_eq!(finished.payment.status, PaymentStatus::Success);
    assert_eq!(alice(store).await, 7_000 - 1_092);
    assert_eq!(clearing().await, 7_000 - 1_092);
    let no_refund = service
        .refund(&refund("W1", "RW1", 100, Initiator::Merchant), NOW)
        .await
        .unwrap_err();
    assert_eq!(no_refund.code(), "NOT_REFUNDABLE");
    let two_parts = service
        .pay(
            &request(
                "W5",
                "W5",
                "withdrawal",
                &[
                    (FundingSource::BankAccount, 100),
                    (FundingSource::Balance, 100),
                ],
            ),
            NOW,
        )
        .await
        .unwrap_err();
    assert_eq!(two_parts.code(), "SOURCE_NOT_ALLOWED");
    assert_sound(store).await;
}

/// The process died after the channel said success and the channel order
/// was closed, before the instruction and the payment moved: running the
/// payment again finishes it from what was stored, without asking the
/// channel again or collecting twice.
async fn payments_finish_after_a_crash_past_the_channel(fixture: Fixture) {
    let store = &fixture.store;
    let service = service(&fixture);
    let orders = service.orders();
    let trade = orders
        .create_trade(
            &NewTrade {
                merchant_id: "m-coffee".to_owned(),
                out_trade_no: "T1".to_owned(),
                subject: "coffee".to_owned(),
                amount_minor: 2_093,
                currency: Currency::CNY,
            },
            NOW,
        )
        .await
        .unwrap()
        .into_inner();
    let payment = orders
        .create_payment(
            &NewPayment {
                trade_id: trade.id,
                merchant_id: "m-coffee".to_owned(),
                request_serial: "S1".to_owned(),
                product: "instant_transfer".to_owned(),
                payer_id: "alice".to_owned(),
                bank: None,
                agreement_no: None,
                amount_minor: 2_093,
                currency: Currency::CNY,
                campaign: None,
                bonus_minor: 0,
            },
            &[NewInstruction {
                direction: Direction::Collect,
                source: FundingSource::Card,
                amount_minor: 2_093,
            }],
            NOW,
        )
        .await
        .unwrap()
        .into_inner();
    // Ends in 93: asked now, the simulator would say PROCESSING, then FAILED.
    // What was stored says SUCCESS, and that is what must count.
    let order = orders
        .create_channel_order(payment.instructions[0].id, None, "simbank", 2_093, NOW)
        .await
        .unwrap()
        .into_inner();
    orders
        .transition(
            order.id,
            ChannelOrderStatus::Created,
            ChannelOrderStatus::Processing,
            NOW,
        )
        .await
        .unwrap();
    orders
        .set_channel_transaction_id(order.id, "SIMC-STORED", None, NOW)
        .await
        .unwrap();
    orders
        .transition(
            order.id,
            ChannelOrderStatus::Processing,
            ChannelOrderStatus::Success,
            NOW,
        )
        .await
        .unwrap();
    let finished = service
        .resume("m-coffee", payment.payment.id, NOW + SECOND)
        .await
        .unwrap();
    assert_eq!(finished.payment.status, PaymentStatus::Success);
    assert_eq!(finished.trade.status, TradeStatus::Success);
    assert_eq!(merchant(store).await, 2_093);
    let again = service
        .resume("m-coffee", payment.payment.id, NOW + 2 * SECOND)
        .await
        .unwrap();
    assert_eq!(again.payment, finished.payment);
    assert_eq!(merchant(store).await, 2_093);
    assert_eq!(
        store
            .payment_notifications(payment.payment.id)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_sound(store).await;
}

async fn account_id(store: &Store, owner: &str, kind: AccountKind) -> i64 {
    for id in 1..200 {
        let account = store.account(id).await.unwrap().unwrap();
        if account.owner_id == owner && account.kind == kind {
            return id;
        }
    }
    panic!("no {kind:?} account of {owner}");
}

async fn payments_refund_the_payee_cannot_cover_moves_nothing(fixture: Fixture) {
    let store = &fixture.store;
    let service = service(&fixture);
    service
        .pay(
            &request(
                "T1",
                "S1",
                "instant_transfer",
                &[(FundingSource::Card, 5_000)],
            ),
            NOW,
        )
        .await
        .unwrap();
    // The merchant's money has moved on (settled out, say): 5.00 is left.
    let merchant_account = account_id(store, "m-coffee", AccountKind::MerchantPending).await;
    let outside = store
        .create_account(&ledger::NewAccount {
            subject_code: "4001".to_owned(),
            subject_class: ledger::SubjectClass::Equity,
            kind: AccountKind::Equity,
            owner_kind: OwnerKind::Platform,
            owner_id: "outside".to_owned(),
            currency: Currency::CNY,
            overdraft: ledger::Overdraft::Unlimited,
        })
        .await
        .unwrap();
    let leg = |account_id, side, amount_minor| ledger::Leg {
        account_id,
        side,
        amount_minor,
        currency: Currency::CNY,
    };
    store
        .commit_batch(
            &[ledger::BatchItem::single(ledger::Operation::Transfer {
                key: "settle-out".to_owned(),
                legs: vec![
                    leg(merchant_account, ledger::Side::Debit, 4_500),
                    leg(outside.id, ledger::Side::Credit, 4_500),
                ],
                mode: ledger::TransferMode::Posted,
                description: String::new(),
            })],
            NOW,
        )
        .await
        .unwrap()
        .remove(0)
        .unwrap();
    let clearing = balance(
        store,
        OwnerKind::Channel,
        "simbank",
        AccountKind::ChannelClearing,
    )
    .await;
    let refused = service
        .refund(&refund("T1", "R1", 1_000, Initiator::Merchant), NOW)
        .await
        .unwrap();
    assert_eq!(refused.refund.status, RefundStatus::Failed);
    assert_eq!(refused.parts[0].status, RefundPartStatus::Failed);
    assert_eq!(merchant(store).await, 500);
    assert_eq!(
        balance(
            store,
            OwnerKind::Channel,
            "simbank",
            AccountKind::ChannelClearing
        )
        .await,
        clearing
    );
    assert_eq!(refused.trade.refunded_minor, 0);
    // The failed part gave its share back: 5.00 can still be refunded.
    let small = service
        .refund(&refund("T1", "R2", 500, Initiator::Merchant), NOW)
        .await
        .unwrap();
    assert_eq!(small.refund.status, RefundStatus::Success);
    assert_eq!(merchant(store).await, 0);
    assert_sound(store).await;
}

/// The resolver may advance a payment while its own request still runs it
/// (a slow machine): runs of one payment racing to its success pay its
/// trade once and never take it for a duplicate of itself.
async fn payments_concurrent_runs_of_one_payment_are_no_duplicate(fixture: Fixture) {
    let store = &fixture.store;
    let service = Arc::new(service(&fixture));
    for round in 0..4 {
        let trade = format!("T{round}");
        let started = service
            .pay(
                &request(
                    &trade,
                    &format!("S{round}"),
                    "top_up",
                    &[(FundingSource::Card, 1_092)],
                ),
                NOW,
            )
            .await
            .unwrap();
        assert_eq!(started.payment.status, PaymentStatus::Processing);
        let runs: Vec<_> = (0..8)
            .map(|_| {
                let service = Arc::clone(&service);
                let id = started.payment.id;
                tokio::spawn(async move { service.resume("m-coffee", id, NOW + 3 * SECOND).await })
            })
            .collect();
        for run in runs {
            // A run that lost a compare-and-set to another stops there; the
            // winner carries the payment on.
            match run.await.unwrap() {
                Ok(view) => assert_eq!(view.duplicate_of, None),
                Err(error) => assert!(
                    matches!(error.code(), "CONCURRENT_CHANGE" | "ILLEGAL_TRANSITION"),
                    "{error}"
                ),
            }
        }
        let done = service
            .resume("m-coffee", started.payment.id, NOW + 4 * SECOND)
            .await
            .unwrap();
        assert_eq!(done.payment.status, PaymentStatus::Success);
        assert_eq!(done.trade.paid_payment_id, Some(started.payment.id));
        assert_eq!(done.duplicate_of, None);
    }
    assert!(store.refunds_waiting_review(100).await.unwrap().is_empty());
    // Concurrent first uses of an account leave gaps in PostgreSQL's ids:
    // find it by owner.
    let cash = store
        .accounts_of(OwnerKind::Member, AccountKind::MemberCash, Currency::CNY)
        .await
        .unwrap();
    assert_eq!(cash["alice"].balance().unwrap().ledger_minor, 4 * 1_092);
    assert_sound(store).await;
}
