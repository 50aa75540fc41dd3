//! The order contract of the payment engine: every test runs against SQLite
//! and PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use engine::{
    ChannelOrderStatus, Created, Delivery, Direction, FundingSource, Initiator, MerchantStore,
    NewInstruction, NewMerchant, NewPayment, NewRefund, NewTrade, NotificationEvent,
    NotificationStatus, NotificationStore, OrderStore, OrderStoreError, PaymentStatus,
    PaymentSuccess, PaymentWithInstructions, RefundStatus, Secret, TradeStatus,
};
use money::Currency;
use std::sync::Arc;
use store::Store;

mod common;
use common::Fixture;

contract!(
    orders_trade_unique_per_merchant,
    orders_payment_with_instructions,
    orders_transitions_compare_and_set,
    orders_trade_paid_once,
    orders_refunds_never_exceed_what_was_paid,
    orders_channel_orders,
    orders_payout_parts_created_together,
    orders_merchants_and_nonces,
    orders_notifications_until_acknowledged,
);

const NOW: i64 = 1_700_000_000_000_000;

fn code(error: OrderStoreError) -> &'static str {
    match error {
        OrderStoreError::Order(error) => error.code(),
        OrderStoreError::Store(error) => panic!("store failed: {error}"),
    }
}

fn new_trade(merchant: &str, out_trade_no: &str, amount_minor: i64) -> NewTrade {
    NewTrade {
        merchant_id: merchant.to_owned(),
        out_trade_no: out_trade_no.to_owned(),
        subject: "coffee".to_owned(),
        amount_minor,
        currency: Currency::CNY,
    }
}

fn new_payment(trade_id: i64, merchant: &str, serial: &str, amount_minor: i64) -> NewPayment {
    NewPayment {
        trade_id,
        merchant_id: merchant.to_owned(),
        request_serial: serial.to_owned(),
        product: "instant_transfer".to_owned(),
        payer_id: "alice".to_owned(),
        bank: Some("ICBC".to_owned()),
        agreement_no: None,
        amount_minor,
        currency: Currency::CNY,
        campaign: None,
        bonus_minor: 0,
    }
}

fn collect(source: FundingSource, amount_minor: i64) -> NewInstruction {
    NewInstruction {
        direction: Direction::Collect,
        source,
        amount_minor,
    }
}

/// A trade of 100.00 with one payment of it, on merchant `m1`.
async fn paid_setup(store: &Store) -> (i64, i64) {
    let trade = store
        .create_trade(&new_trade("m1", "T1", 10_000), NOW)
        .await
        .unwrap()
        .into_inner();
    let payment = store
        .create_payment(
            &new_payment(trade.id, "m1", "S1", 10_000),
            &[collect(FundingSource::Card, 10_000)],
            NOW,
        )
        .await
        .unwrap()
        .into_inner();
    (trade.id, payment.payment.id)
}

/// A trade of `amount_minor` with one payout payment of it, on merchant
/// `m1`; its payment and instructions.
async fn payout_setup(store: &Store, amount_minor: i64) -> PaymentWithInstructions {
    let trade = store
        .create_trade(&new_trade("m1", "T1", amount_minor), NOW)
        .await
        .unwrap()
        .into_inner();
    let payout = NewInstruction {
        direction: Direction::Payout,
        source: FundingSource::BankAccount,
        amount_minor,
    };
    store
        .create_payment(
            &new_payment(trade.id, "m1", "S1", amount_minor),
            &[payout],
            NOW,
        )
        .await
        .unwrap()
        .into_inner()
}

async fn orders_trade_unique_per_merchant(fixture: Fixture) {
    let store = &fixture.store;
    let created = store
        .create_trade(&new_trade("m1", "T1", 500), NOW)
        .await
        .unwrap();
    assert!(created.is_new());
    let trade = created.into_inner();
    assert_eq!(trade.status, TradeStatus::WaitPay);
    assert_eq!(trade.amount_minor, 500);
    let again = store
        .create_trade(&new_trade("m1", "T1", 500), NOW + 1)
        .await
        .unwrap();
    assert_eq!(again, Created::Existing(trade.clone()));
    let conflict = store
        .create_trade(&new_trade("m1", "T1", 501), NOW)
        .await
        .unwrap_err();
    assert_eq!(code(conflict), "REFERENCE_CONFLICT");
    let other = store
        .create_trade(&new_trade("m2", "T1", 500), NOW)
        .await
        .unwrap()
        .into_inner();
    assert_ne!(other.id, trade.id);
    // A merchant never sees another merchant's trade.
    assert_eq!(store.trade("m2", trade.id).await.unwrap(), None);
    assert_eq!(
        store.trade("m1", trade.id).await.unwrap(),
        Some(trade.clone())
    );
    assert_eq!(
        store.trade_by_out_trade_no("m1", "T1").await.unwrap(),
        Some(trade)
    );
    let invalid = store
        .create_trade(&new_trade("m1", "", 5), NOW)
        .await
        .unwrap_err();
    assert_eq!(code(invalid), "INVALID_ORDER");
    let negative = store
        .create_trade(&new_trade("m1", "T9", -5), NOW)
        .await
        .unwrap_err();
    assert_eq!(code(negative), "INVALID_AMOUNT");
}

async fn orders_payment_with_instructions(fixture: Fixture) {
    let store = &fixture.store;
    let trade = store
        .create_trade(&new_trade("m1", "T1", 10_000), NOW)
        .await
        .unwrap()
        .into_inner();
    // 组合支付: 30.00 from balance and 70.00 by card.
    let instructions = [
        collect(FundingSource::Balance, 3_000),
        collect(FundingSource::Card, 7_000),
    ];
    let request = new_payment(trade.id, "m1", "S1", 10_000);
    let created = store
        .create_payment(&request, &instructions, NOW)
        .await
        .unwrap();
    assert!(created.is_new());
    let created = created.into_inner();
    assert_eq!(created.payment.status, PaymentStatus::Created);
    assert_eq!(created.instructions.len(), 2);
    assert_eq!(created.instructions[0].source, FundingSource::Balance);
    assert_eq!(created.instructions[1].amount_minor, 7_000);
    let repeated = store
        .create_payment(&request, &instructions, NOW + 5)
        .await
        .unwrap();
    assert_eq!(repeated, Created::Existing(created.clone()));
    let different = new_payment(trade.id, "m1", "S1", 9_000);
    let conflict = store
        .create_payment(&different, &[collect(FundingSource::Card, 9_000)], NOW)
        .await
        .unwrap_err();
    assert_eq!(code(conflict), "REFERENCE_CONFLICT");
    let short = store
        .create_payment(
            &new_payment(trade.id, "m1", "S2", 10_000),
            &[collect(FundingSource::Card, 9_999)],
            NOW,
        )
        .await
        .unwrap_err();
    assert_eq!(code(short), "INSTRUCTIONS_DO_NOT_COVER_PAYMENT");
    let foreign = store
        .create_payment(
            &new_payment(trade.id, "m2", "S3", 10_000),
            &[collect(FundingSource::Card, 10_000)],
            NOW,
        )
        .await
        .unwrap_err();
    assert_eq!(code(foreign), "ORDER_NOT_FOUND");
    let mut usd = new_payment(trade.id, "m1", "S4", 10_000);
    usd.currency = Currency::USD;
    let mismatch = store
        .create_payment(&usd, &[collect(FundingSource::Card, 10_000)], NOW)
        .await
        .unwrap_err();
    assert_eq!(code(mismatch), "REFERENCE_CONFLICT");
    assert_eq!(
        store.payment("m1", created.payment.id).await.unwrap(),
        Some(created.clone())
    );
    assert_eq!(store.payment("m2", created.payment.id).await.unwrap(), None);
    // Refused requests left nothing behind.
    assert_eq!(
        store.payment("m1", created.payment.id + 1).await.unwrap(),
        None
    );
}

async fn orders_transitions_compare_and_set(fixture: Fixture) {
    let store = &fixture.store;
    let (_, payment_id) = paid_setup(store).await;
    store
        .transition(
            payment_id,
            PaymentStatus::Created,
            PaymentStatus::Processing,
            NOW,
        )
        .await
        .unwrap();
    let stale = store
        .transition(
            payment_id,
            PaymentStatus::Created,
            PaymentStatus::Processing,
            NOW,
        )
        .await
        .unwrap_err();
    assert_eq!(code(stale), "CONCURRENT_CHANGE");
    let illegal = store
        .transition(
            payment_id,
            PaymentStatus::Processing,
            PaymentStatus::Created,
            NOW,
        )
        .await
        .unwrap_err();
    assert_eq!(code(illegal), "ILLEGAL_TRANSITION");
    let missing = store
        .transition(
            payment_id + 100,
            PaymentStatus::Created,
            PaymentStatus::Failed,
            NOW,
        )
        .await
        .unwrap_err();
    assert_eq!(code(missing), "ORDER_NOT_FOUND");
    // Twenty workers learn the result at once: one of them records it.
    let store = Arc::new(fixture.store.clone());
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            store
                .transition(
                    payment_id,
                    PaymentStatus::Processing,
                    PaymentStatus::Success,
                    NOW + 1,
                )
                .await
        }));
    }
    let mut succeeded = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(()) => succeeded += 1,
            Err(error) => assert_eq!(code(error), "CONCURRENT_CHANGE"),
        }
    }
    assert_eq!(succeeded, 1);
    let payment = store
        .payment("m1", payment_id)
        .await
        .unwrap()
        .unwrap()
        .payment;
    assert_eq!(payment.status, PaymentStatus::Success);
    assert_eq!(payment.updated_at, NOW + 1);
}

async fn orders_trade_paid_once(fixture: Fixture) {
    let store = &fixture.store;
    let (trade_id, first) = paid_setup(store).await;
    let second = store
        .create_payment(
            &new_payment(trade_id, "m1", "S2", 10_000),
            &[collect(FundingSource::Wallet, 10_000)],
            NOW,
        )
        .await
        .unwrap()
        .into_inner()
        .payment
        .id;
    let waiting = store.trade("m1", trade_id).await.unwrap().unwrap();
    assert_eq!(waiting.payment_success(first), PaymentSuccess::Paid);
    let paid = store
        .mark_trade_paid(trade_id, first, 10_000, NOW + 1)
        .await
        .unwrap();
    assert_eq!(paid.status, TradeStatus::Success);
    assert_eq!(paid.paid_payment_id, Some(first));
    assert_eq!(paid.refundable_minor(), 10_000);
    // The second payment's late success is a duplicate payment (重复支付).
    assert_eq!(
        paid.payment_success(second),
        PaymentSuccess::Duplicate { paid_by: first }
    );
    assert_eq!(paid.payment_success(first), PaymentSuccess::AlreadyPaidByIt);
    let twice = store
        .mark_trade_paid(trade_id, second, 10_000, NOW + 2)
        .await
        .unwrap_err();
    assert_eq!(code(twice), "ILLEGAL_TRANSITION");
    let unchanged = store.trade("m1", trade_id).await.unwrap().unwrap();
    assert_eq!(unchanged.paid_payment_id, Some(first));
    let closed = store
        .create_trade(&new_trade("m1", "T2", 100), NOW)
        .await
        .unwrap()
        .into_inner();
    store
        .transition(closed.id, TradeStatus::WaitPay, TradeStatus::Closed, NOW)
        .await
        .unwrap();
    let closed = store.trade("m1", closed.id).await.unwrap().unwrap();
    assert_eq!(closed.payment_success(first), PaymentSuccess::TradeClosed);
}

fn refund(trade_id: i64, serial: &str, amount_minor: i64, initiator: Initiator) -> NewRefund {
    NewRefund {
        trade_id,
        payment_id: None,
        merchant_id: "m1".to_owned(),
        refund_serial: serial.to_owned(),
        amount_minor,
        initiator,
        reason: "customer returned it".to_owned(),
        ordering: engine::RefundOrdering::ThirdPartyFirst,
        bonus_void_minor: 0,
        payee_escrow: false,
    }
}

async fn orders_refunds_never_exceed_what_was_paid(fixture: Fixture) {
    let store = &fixture.store;
    let (trade_id, payment_id) = paid_setup(store).await;
    let unpaid = store
        .create_refund(&refund(trade_id, "R0", 1, Initiator::Merchant), NOW)
        .await
        .unwrap_err();
    assert_eq!(code(unpaid), "REFUND_EXCEEDS_REFUNDABLE");
    store
        .mark_trade_paid(trade_id, payment_id, 10_000, NOW)
        .await
        .unwrap();
    let first = store
        .create_refund(&refund(trade_id, "R1", 6_000, Initiator::Merchant), NOW)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.status, RefundStatus::Processing);
    // 60.00 is under way, so only 40.00 may still be asked for.
    let too_much = store
        .create_refund(&refund(trade_id, "R2", 4_001, Initiator::Merchant), NOW)
        .await
        .unwrap_err();
    assert_eq!(code(too_much), "REFUND_EXCEEDS_REFUNDABLE");
    let by_platform = store
        .create_refund(&refund(trade_id, "R3", 4_000, Initiator::Platform), NOW)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(by_platform.status, RefundStatus::PendingReview);
    let repeated = store
        .create_refund(&refund(trade_id, "R1", 6_000, Initiator::Merchant), NOW)
        .await
        .unwrap();
    assert_eq!(repeated, Created::Existing(first.clone()));
    let conflict = store
        .create_refund(&refund(trade_id, "R1", 5_000, Initiator::Merchant), NOW)
        .await
        .unwrap_err();
    assert_eq!(code(conflict), "REFERENCE_CONFLICT");

    store
        .transition(
            first.id,
            RefundStatus::Processing,
            RefundStatus::Success,
            NOW,
        )
        .await
        .unwrap();
    let partly = store
        .record_trade_refund(trade_id, 6_000, NOW)
        .await
        .unwrap();
    assert_eq!(partly.status, TradeStatus::PartiallyRefunded);
    assert_eq!(partly.refunded_minor, 6_000);
    store
        .transition(
            by_platform.id,
            RefundStatus::PendingReview,
            RefundStatus::Processing,
            NOW,
        )
        .await
        .unwrap();
    let whole = store
        .record_trade_refund(trade_id, 4_000, NOW)
        .await
        .unwrap();
    assert_eq!(whole.status, TradeStatus::Refunded);
    assert_eq!(whole.refundable_minor(), 0);
    let beyond = store
        .record_trade_refund(trade_id, 1, NOW)
        .await
        .unwrap_err();
    assert_eq!(code(beyond), "REFUND_EXCEEDS_REFUNDABLE");
    assert_eq!(
        store.refund("m1", first.id).await.unwrap().unwrap().status,
        RefundStatus::Success
    );
    assert_eq!(store.refund("m2", first.id).await.unwrap(), None);
}

async fn orders_channel_orders(fixture: Fixture) {
    let store = &fixture.store;
    let payment = payout_setup(store, 50_000).await;
    let instruction = &payment.instructions[0];
    assert_eq!(instruction.direction, Direction::Payout);
    // One channel order per instruction: a second create (a crashed or
    // concurrent run of the same step) finds the first, and only the first
    // caller may send it.
    let first = store
        .create_channel_order(instruction.id, None, "simbank", 50_000, NOW)
        .await
        .unwrap();
    assert!(first.is_new());
    let first = first.into_inner();
    let again = store
        .create_channel_order(instruction.id, None, "simbank", 50_000, NOW)
        .await
        .unwrap();
    assert_eq!(again, Created::Existing(first.clone()));
    assert_eq!(first.status, ChannelOrderStatus::Created);
    assert_eq!(first.currency, Currency::CNY);
    // Its refund is an order of its own.
    let refund_order = store
        .create_channel_order(instruction.id, Some(77), "simbank", 1_000, NOW)
        .await
        .unwrap();
    assert!(refund_order.is_new());
    store
        .set_channel_transaction_id(first.id, "BANK-001", None, NOW)
        .await
        .unwrap();
    store
        .set_channel_transaction_id(first.id, "BANK-001", None, NOW)
        .await
        .unwrap();
    let overwrite = store
        .set_channel_transaction_id(first.id, "BANK-002", None, NOW)
        .await
        .unwrap_err();
    assert_eq!(code(overwrite), "REFERENCE_CONFLICT");
    store
        .transition(
            first.id,
            ChannelOrderStatus::Created,
            ChannelOrderStatus::Processing,
            NOW,
        )
        .await
        .unwrap();
    let listed = store.channel_orders(instruction.id, None).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        listed[0].channel_transaction_id.as_deref(),
        Some("BANK-001")
    );
    assert_eq!(listed[0].status, ChannelOrderStatus::Processing);
    assert_eq!(
        store
            .channel_orders(instruction.id, Some(77))
            .await
            .unwrap()
            .len(),
        1
    );
    let missing = store
        .create_channel_order(instruction.id + 100, None, "simbank", 1, NOW)
        .await
        .unwrap_err();
    assert_eq!(code(missing), "ORDER_NOT_FOUND");
}

async fn orders_payout_parts_created_together(fixture: Fixture) {
    let store = &fixture.store;
    let payment = payout_setup(store, 12_000).await;
    let instruction = payment.instructions[0].id;
    let parts = store
        .create_payout_orders(instruction, "simbank", &[5_000, 5_000, 2_000], NOW)
        .await
        .unwrap();
    assert!(parts.is_new());
    let parts = parts.into_inner();
    let numbered: Vec<(u32, i64, &str)> = parts
        .iter()
        .map(|part| (part.part_no, part.amount_minor, part.channel.as_str()))
        .collect();
    assert_eq!(
        numbered,
        [
            (0, 5_000, "simbank"),
            (1, 5_000, "simbank"),
            (2, 2_000, "simbank")
        ]
    );
    assert!(
        parts
            .iter()
            .all(|part| part.status == ChannelOrderStatus::Created)
    );
    // A second run, routed elsewhere meanwhile, finds the first run's parts
    // and adds none: one payout's parts come from one routing.
    let again = store
        .create_payout_orders(instruction, "simpay", &[3_000, 3_000, 3_000, 3_000], NOW)
        .await
        .unwrap();
    assert_eq!(again, Created::Existing(parts.clone()));
    assert_eq!(
        store.channel_orders(instruction, None).await.unwrap(),
        parts
    );
    // The one-order creation finds them too, and sends nothing new.
    let single = store
        .create_channel_order(instruction, None, "simbank", 12_000, NOW)
        .await
        .unwrap();
    assert_eq!(single, Created::Existing(parts[0].clone()));
    // Bad requests change nothing.
    for (amounts, expected) in [
        (vec![], "INVALID_ORDER"),
        (vec![1; engine::PAYOUT_PARTS_MAX + 1], "INVALID_ORDER"),
        (vec![5_000, 0], "INVALID_AMOUNT"),
    ] {
        let refused = store
            .create_payout_orders(instruction, "simbank", &amounts, NOW)
            .await
            .unwrap_err();
        assert_eq!(code(refused), expected, "{amounts:?}");
    }
    let missing = store
        .create_payout_orders(instruction + 100, "simbank", &[1, 2], NOW)
        .await
        .unwrap_err();
    assert_eq!(code(missing), "ORDER_NOT_FOUND");
    assert_eq!(
        store.channel_orders(instruction, None).await.unwrap(),
        parts
    );
}

async fn orders_merchants_and_nonces(fixture: Fixture) {
    let store = &fixture.store;
    let request = NewMerchant {
        id: "m-coffee".to_owned(),
        name: "Coffee Corner".to_owned(),
        notify_url: Some("http://127.0.0.1:9/notify".to_owned()),
    };
    let key = Secret::new("k3y".to_owned());
    let merchant = store.create_merchant(&request, &key, NOW).await.unwrap();
    assert_eq!(merchant.signing_key.expose(), "k3y");
    assert_eq!(format!("{:?}", merchant.signing_key), "Secret(***)");
    assert_eq!(store.merchant("m-coffee").await.unwrap(), Some(merchant));
    assert_eq!(store.merchant("m-tea").await.unwrap(), None);
    let again = store
        .create_merchant(&request, &key, NOW)
        .await
        .unwrap_err();
    assert_eq!(code(again), "REFERENCE_CONFLICT");
    let mut bad = request.clone();
    bad.id = "has space".to_owned();
    assert_eq!(
        code(store.create_merchant(&bad, &key, NOW).await.unwrap_err()),
        "INVALID_ORDER"
    );
    assert!(
        store
            .remember_nonce("m-coffee", "n1", NOW, NOW - 300)
            .await
            .unwrap()
    );
    assert!(
        !store
            .remember_nonce("m-coffee", "n1", NOW + 1, NOW - 300)
            .await
            .unwrap()
    );
    // Another merchant may use the same nonce.
    assert!(
        store
            .remember_nonce("m-tea", "n1", NOW + 1, NOW - 300)
            .await
            .unwrap()
    );
    // Past the window the nonce is forgotten (the timestamp check refuses
    // such an old request anyway).
    assert!(
        store
            .remember_nonce("m-coffee", "n1", NOW + 10, NOW + 5)
            .await
            .unwrap()
    );
}

async fn orders_notifications_until_acknowledged(fixture: Fixture) {
    let store = &fixture.store;
    let (_, payment_id) = paid_setup(store).await;
    let succeeded = NotificationEvent::PaymentSucceeded;
    store
        .enqueue_notification("m1", payment_id, succeeded, NOW)
        .await
        .unwrap();
    store
        .enqueue_notification("m1", payment_id, succeeded, NOW + 1)
        .await
        .unwrap();
    let all = store.payment_notifications(payment_id).await.unwrap();
    assert_eq!(all.len(), 1, "one notification per payment and event");
    assert!(
        store
            .due_notifications(NOW - 1, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let due = store.due_notifications(NOW, 10).await.unwrap();
    assert_eq!(due.len(), 1);
    let failed = Delivery::Failed {
        error: "HTTP 503".to_owned(),
    };
    assert!(
        store
            .record_notification_attempt(&due[0], &failed, NOW)
            .await
            .unwrap()
    );
    // A second sender with the same stale copy records nothing.
    assert!(
        !store
            .record_notification_attempt(&due[0], &failed, NOW)
            .await
            .unwrap()
    );
    let after = &store.payment_notifications(payment_id).await.unwrap()[0];
    assert_eq!(after.attempts, 1);
    assert_eq!(after.next_attempt_at, NOW + 15_000_000);
    assert_eq!(after.last_error.as_deref(), Some("HTTP 503"));
    assert!(
        store
            .due_notifications(NOW + 14_999_999, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let again = store.due_notifications(NOW + 15_000_000, 10).await.unwrap();
    assert!(
        store
            .record_notification_attempt(&again[0], &Delivery::Acknowledged, NOW + 15_000_000)
            .await
            .unwrap()
    );
    let delivered = &store.payment_notifications(payment_id).await.unwrap()[0];
    assert_eq!(delivered.status, NotificationStatus::Delivered);
    assert!(
        store
            .due_notifications(NOW + 999_000_000, 10)
            .await
            .unwrap()
            .is_empty()
    );
}
