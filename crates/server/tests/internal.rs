//! Internal reconciliation (内部对账) on both stores: a day of every flow —
//! top-up, balance, balance plus card, refused card, refused balance, a
//! balance hold voided by a refused card, a withdrawal, refunds back to
//! internal and channel sources, a settlement batch, a suspense treatment
//! and an operator's own transfer — comes out clean; then each kind of
//! finding is made on purpose, by altering or deleting rows with SQL, and
//! the check names exactly those. Every test runs on SQLite and, when
//! `PAYCORE_TEST_POSTGRES_URL` is set (always in CI), on PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use engine::{FundingSource, PaymentStatus, PaymentView, RefundStatus, RefundView};
use ledger::{AccountKind, BatchItem, LedgerStore, Leg, Operation, OwnerKind, Side, TransferMode};
use money::Currency;
use recon::{
    Class, Finding, InternalReport, ReconStore, RecordKind, RecordStatus, SideFigures, Treatment,
};
use server::settlement::Quiet;
use settlement::{
    BatchStatus, Calendar, Cycle, Destination, MerchantTerms, SettlementConfig, SettlementStore,
};
use std::collections::BTreeSet;

mod common;
use common::{Fixture, HOUR, NOW, channel_order, execute, instruction, pay};

async fn refund(fixture: &Fixture, trade: &str, amount_minor: i64) -> RefundView {
    let serial = format!("refund-{trade}");
    let view = common::refund(fixture, trade, &serial, amount_minor, NOW + HOUR).await;
    assert_eq!(view.refund.status, RefundStatus::Success);
    view
}

/// An operator's own transfer, keyed under `manual-`.
async fn manual_transfer(fixture: &Fixture, key: &str) {
    let payments = fixture.state.payments();
    let clearing = payments
        .account(
            OwnerKind::Channel,
            "simbank",
            AccountKind::ChannelClearing,
            Currency::CNY,
        )
        .await
        .unwrap();
    let suspense = payments
        .account(
            OwnerKind::Platform,
            engine::SUSPENSE_OWNER,
            AccountKind::Suspense,
            Currency::CNY,
        )
        .await
        .unwrap();
    let leg = |account_id, side| Leg {
        account_id,
        side,
        amount_minor: 700,
        currency: Currency::CNY,
    };
    let results = fixture
        .state
        .ledger()
        .submit(vec![BatchItem::single(Operation::Transfer {
            key: key.to_owned(),
            legs: vec![leg(clearing, Side::Debit), leg(suspense, Side::Credit)],
            mode: TransferMode::Posted,
            description: "operator correction".to_owned(),
        })])
        .await
        .unwrap();
    assert!(results[0].is_ok(), "{results:?}");
}

/// 挂账 of a booking the channel has and we do not.
async fn suspense_treatment(fixture: &Fixture) -> i64 {
    let channel_side = SideFigures {
        amount_minor: 8_800,
        currency: "CNY".to_owned(),
        fee_minor: Some(53),
        status: RecordStatus::Success,
        channel_transaction_id: Some("SIM-UNKNOWN-1".to_owned()),
        occurred_at: NOW,
        business_day: 20_412,
    };
    let finding = Finding {
        key: "EXT-1".to_owned(),
        kind: RecordKind::Payment,
        class: Class::ChannelOnly,
        platform: None,
        channel: Some(channel_side),
        channel_count: 1,
    };
    common::treat_finding(fixture, &finding, "R301", Treatment::Suspense, NOW)
        .await
        .id
}

/// What the day left, to name in the findings.
struct Day {
    top_up: PaymentView,
    balance: PaymentView,
    combined: PaymentView,
    card: PaymentView,
    withdrawal: PaymentView,
    full_refund: RefundView,
    partial_refund: RefundView,
    batch_id: i64,
    discrepancy_id: i64,
}

/// A day of every flow, then its settlement as of the next day (D+1).
async fn day(fixture: &Fixture) -> Day {
    use FundingSource::{Balance, BankAccount, Card};
    let top_up = pay(fixture, "t-top-up", "top_up", &[(Card, 20_000)]).await;
    let balance = pay(
        fixture,
        "t-balance",
        "instant_transfer",
        &[(Balance, 3_000)],
    )
    .await;
    let combined = pay(
        fixture,
        "t-combined",
        "instant_transfer",
        &[(Balance, 1_000), (Card, 2_500)],
    )
    .await;
    let card = pay(fixture, "t-card", "instant_transfer", &[(Card, 5_000)]).await;
    let refused_card = pay(fixture, "t-refused", "instant_transfer", &[(Card, 1_891)]).await;
    let too_much = pay(
        fixture,
        "t-too-much",
        "instant_transfer",
        &[(Balance, 4_000_000)],
    )
    .await;
    let voided = pay(
        fixture,
        "t-voided",
        "instant_transfer",
        &[(Balance, 500), (Card, 2_391)],
    )
    .await;
    let withdrawal = pay(
        fixture,
        "t-withdrawal",
        "withdrawal",
        &[(BankAccount, 1_000)],
    )
    .await;
    for view in [&top_up, &balance, &combined, &card, &withdrawal] {
        assert_eq!(view.payment.status, PaymentStatus::Success, "{view:?}");
    }
    for view in [&refused_card, &too_much, &voided] {
        assert_eq!(view.payment.status, PaymentStatus::Failed, "{view:?}");
    }
    let full_refund = refund(fixture, "t-combined", 3_500).await;
    assert_eq!(full_refund.parts.len(), 2, "a balance part and a card part");
    let partial_refund = refund(fixture, "t-balance", 1_200).await;
    let terms = SettlementConfig::uniform(MerchantTerms {
        cycle: Cycle::D(1),
        destination: Destination::Available,
        minimum_minor: 0,
        reconciled_only: false,
    });
    let report = server::settlement::run(
        &fixture.state,
        &Calendar::builtin().unwrap(),
        &terms,
        settlement::parse_date("2026-11-21").unwrap(),
        NOW + 24 * HOUR,
        &Quiet,
    )
    .await
    .unwrap();
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    let batches = fixture.store.batches("2026-11-21").await.unwrap();
    let [batch] = batches.as_slice() else {
        panic!("one batch for the merchant: {batches:?}");
    };
    assert_eq!(batch.status, BatchStatus::Posted);
    let discrepancy_id = suspense_treatment(fixture).await;
    manual_transfer(fixture, "manual-correction-1").await;
    Day {
        top_up,
        balance,
        combined,
        card,
        withdrawal,
        full_refund,
        partial_refund,
        batch_id: batch.id,
        discrepancy_id,
    }
}

/// (code, subject, record id, key) of every finding listed.
fn findings(report: &InternalReport) -> BTreeSet<(String, String, Option<i64>, String)> {
    report
        .findings
        .iter()
        .map(|finding| {
            (
                finding.code.as_str().to_owned(),
                finding.subject.as_str().to_owned(),
                finding.record_id,
                finding.key.clone(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_day_of_every_flow_is_clean() {
    for fixture in common::fixtures("internal_clean").await {
        day(&fixture).await;
        let report = fixture.store.internal_check().await.unwrap();
        assert!(report.is_clean(), "{:#?}", report.findings);
        assert_eq!(report.payments_checked, 8);
        assert_eq!(report.refunds_checked, 2);
        assert_eq!(report.batches_checked, 1);
        assert_eq!(report.manual_transfers, 1);
        assert!(report.transfers_checked > 15, "{report:?}");
        assert!(fixture.store.check().await.unwrap().is_sound());
    }
}

#[tokio::test]
async fn every_kind_of_finding_is_found_where_the_data_was_broken() {
    for fixture in common::fixtures("internal_broken").await {
        let day = day(&fixture).await;
        let top_up_collect = channel_order(
            &fixture,
            instruction(&day.top_up, FundingSource::Card),
            None,
        )
        .await;
        let balance_instruction = instruction(&day.balance, FundingSource::Balance);
        let combined_balance = instruction(&day.combined, FundingSource::Balance);
        let card_instruction = instruction(&day.card, FundingSource::Card);
        let card_collect = channel_order(&fixture, card_instruction, None).await;
        let withdrawal_instruction = instruction(&day.withdrawal, FundingSource::BankAccount);
        let card_part = day
            .full_refund
            .parts
            .iter()
            .find(|part| part.instruction_id == instruction(&day.combined, FundingSource::Card))
            .unwrap()
            .id;
        let partial_part = day.partial_refund.parts[0].id;
        let breaks = [
            // A successful top-up loses its collection.
            format!("DELETE FROM transfers WHERE idempotency_key = 'collect-{top_up_collect}'"),
            // An instruction says another amount than its hold and post.
            format!(
                "UPDATE payment_instructions SET amount_minor = 3001 WHERE id = {balance_instruction}"
            ),
            // A successful payment's balance hold is voided instead of posted.
            format!(
                "UPDATE transfers SET status = 'voided' WHERE idempotency_key = 'hold-{combined_balance}'"
            ),
            // A paid-out withdrawal is marked failed.
            format!(
                "UPDATE payment_orders SET status = 'FAILED' WHERE id = {}",
                day.withdrawal.payment.id
            ),
            // A card refund loses its post.
            format!("DELETE FROM transfers WHERE idempotency_key = 'refund-post-{card_part}'"),
            // The settlement posting names a batch that does not exist.
            format!(
                "UPDATE transfers SET idempotency_key = 'settle-999999' WHERE idempotency_key = 'settle-{}'",
                day.batch_id
            ),
            // The suspense posting is gone.
            "DELETE FROM transfers WHERE idempotency_key = 'recon-suspense-simbank-EXT-1'"
                .to_owned(),
            // A card collection is booked as a hold, which cards never take.
            format!(
                "UPDATE transfers SET idempotency_key = 'hold-{card_instruction}' \
                 WHERE idempotency_key = 'collect-{card_collect}'"
            ),
            // A refund that moved money is back waiting for review.
            format!(
                "UPDATE refund_orders SET status = 'PENDING_REVIEW' WHERE id = {}",
                day.partial_refund.refund.id
            ),
            // The operator's transfer loses its prefix.
            "UPDATE transfers SET idempotency_key = 'correction-1' \
             WHERE idempotency_key = 'manual-correction-1'"
                .to_owned(),
        ];
        for sql in &breaks {
            execute(&fixture.raw, sql).await;
        }
        let report = fixture.store.internal_check().await.unwrap();
        let payment = |view: &PaymentView| Some(view.payment.id);
        let expected: BTreeSet<(String, String, Option<i64>, String)> = [
            (
                "PAYMENT_WITHOUT_TRANSFER",
                "payment",
                payment(&day.top_up),
                format!("collect-{top_up_collect}"),
            ),
            (
                "AMOUNT_DIFFERS",
                "payment",
                payment(&day.balance),
                format!("hold-{balance_instruction}"),
            ),
            (
                "AMOUNT_DIFFERS",
                "payment",
                payment(&day.balance),
                format!("post-{balance_instruction}"),
            ),
            (
                "TRANSFER_STATE_DIFFERS",
                "payment",
                payment(&day.combined),
                format!("hold-{combined_balance}"),
            ),
            (
                "FAILED_ORDER_MOVED_MONEY",
                "payment",
                payment(&day.withdrawal),
                format!("post-{withdrawal_instruction}"),
            ),
            (
                "REFUND_WITHOUT_TRANSFER",
                "refund",
                Some(day.full_refund.refund.id),
                format!("refund-post-{card_part}"),
            ),
            (
                "BATCH_WITHOUT_TRANSFER",
                "settlement_batch",
                Some(day.batch_id),
                format!("settle-{}", day.batch_id),
            ),
            (
                "TRANSFER_WITHOUT_ORDER",
                "settlement_batch",
                Some(999_999),
                "settle-999999".to_owned(),
            ),
            (
                "DISCREPANCY_WITHOUT_TRANSFER",
                "discrepancy",
                Some(day.discrepancy_id),
                "recon-suspense-simbank-EXT-1".to_owned(),
            ),
            (
                "TRANSFER_NOT_IN_FLOW",
                "instruction",
                Some(card_instruction),
                format!("hold-{card_instruction}"),
            ),
            (
                "PAYMENT_WITHOUT_TRANSFER",
                "payment",
                payment(&day.card),
                format!("collect-{card_collect}"),
            ),
            (
                "ORDER_STATE_FORBIDS_TRANSFER",
                "refund_part",
                Some(partial_part),
                format!("refund-part-{partial_part}"),
            ),
            (
                "TRANSFER_WITHOUT_RECORD",
                "transfer",
                None,
                "correction-1".to_owned(),
            ),
        ]
        .into_iter()
        .map(|(code, subject, id, key)| (code.to_owned(), subject.to_owned(), id, key))
        .collect();
        assert_eq!(findings(&report), expected);
        assert_eq!(report.findings_total(), 13);
        assert_eq!(report.counts[&recon::InternalCode::AmountDiffers], 2);
        let amounts = report
            .findings
            .iter()
            .find(|finding| finding.key == format!("hold-{balance_instruction}"))
            .unwrap();
        assert_eq!(
            (amounts.expected_minor, amounts.actual_minor),
            (Some(3_001), Some(3_000))
        );
        assert_eq!(amounts.currency.as_deref(), Some("CNY"));
        assert_eq!(amounts.record_status.as_deref(), Some("SUCCESS"));
        // Every code the check has is among them.
        assert_eq!(report.counts.len(), recon::InternalCode::ALL.len());
    }
}

/// Far more findings of one code than a report lists: all counted, the
/// first ones listed.
#[tokio::test]
async fn a_report_lists_a_bounded_number_of_each_code() {
    for fixture in common::fixtures("internal_bounded").await {
        day(&fixture).await;
        let listed = recon::FINDINGS_LISTED_PER_CODE_MAX as usize;
        let mut values = Vec::new();
        for index in 0..listed + 5 {
            values.push(format!(
                "({}, 'stray-{index}', 'freeze', 'posted', 'x', {NOW})",
                1_000_000 + index
            ));
        }
        execute(
            &fixture.raw,
            &format!(
                "INSERT INTO transfers (id, idempotency_key, kind, status, description, created_at) \
                 VALUES {}",
                values.join(", ")
            ),
        )
        .await;
        let report = fixture.store.internal_check().await.unwrap();
        assert_eq!(
            report.counts[&recon::InternalCode::TransferWithoutRecord],
            listed as u64 + 5
        );
        assert_eq!(report.findings.len(), listed);
    }
}

/// The SQL reads keys as `recon::key_pattern` does: the keys it finds
/// without a record are exactly those that follow no pattern and are not
/// an operator's.
#[tokio::test]
async fn the_check_reads_keys_as_key_pattern_does() {
    let keys = [
        "hold-12",
        "hold-007",
        "hold-1-post",
        "hold-",
        "collect-999999999999999999",
        "collect-9999999999999999999",
        "refund-part-3",
        "refund-3",
        "settle-07",
        "expire-1x",
        "recon-suspense-simbank-EXT-9",
        "recon-other-1",
        "manual-hold-1",
        "holdx-1",
    ];
    for fixture in common::fixtures("internal_keys").await {
        let values: Vec<String> = keys
            .iter()
            .enumerate()
            .map(|(index, key)| format!("({}, '{key}', 'freeze', 'posted', 'x', {NOW})", index + 1))
            .collect();
        execute(
            &fixture.raw,
            &format!(
                "INSERT INTO transfers (id, idempotency_key, kind, status, description, created_at) \
                 VALUES {}",
                values.join(", ")
            ),
        )
        .await;
        let report = fixture.store.internal_check().await.unwrap();
        let without_record: BTreeSet<&str> = report
            .findings
            .iter()
            .filter(|finding| finding.code == recon::InternalCode::TransferWithoutRecord)
            .map(|finding| finding.key.as_str())
            .collect();
        let expected: BTreeSet<&str> = keys
            .into_iter()
            .filter(|key| recon::key_pattern(key).is_none() && !key.starts_with("manual-"))
            .collect();
        assert_eq!(without_record, expected);
        // Every patterned key was looked up, and found no record.
        let patterned = keys
            .iter()
            .filter(|key| recon::key_pattern(key).is_some())
            .count();
        assert_eq!(
            report.findings.len(),
            expected.len() + patterned,
            "{:#?}",
            report.findings
        );
    }
}

/// Fees taken from balances, fee account deposits and stored value with
/// bonus are traced like the rest: a clean day of them is clean, and a
/// broken fee post, bonus grant, bonus cost or deposit key is found.
#[tokio::test]
async fn fees_and_bonus_are_checked_against_their_records() {
    use FundingSource::{Card, StoredValue};
    for fixture in common::fixtures("internal_fees").await {
        let payments = fixture.state.payments();
        // A campaign top-up (its bonus granted), then 140.00 from the
        // stored value (balance and bonus parts) and part of it refunded.
        let mut top_up = engine::PayRequest {
            merchant_id: "m-wallet".to_owned(),
            out_trade_no: "t-campaign".to_owned(),
            subject: "top-up".to_owned(),
            amount_minor: 10_000,
            currency: Currency::CNY,
            request_serial: "serial-t-campaign".to_owned(),
            product: "top_up".to_owned(),
            payer_id: "alice".to_owned(),
            bank: Some("ICBC".to_owned()),
            sources: vec![(Card, 10_000)],
            campaign: Some("topup-100-get-180".to_owned()),
            agreement_no: None,
        };
        let topped = payments.pay(&top_up, NOW).await.unwrap();
        assert_eq!(topped.payment.status, PaymentStatus::Success);
        let spent = pay(
            &fixture,
            "t-stored",
            "instant_transfer",
            &[(StoredValue, 14_000)],
        )
        .await;
        let bonus_instruction = instruction(&spent, FundingSource::Bonus);
        refund(&fixture, "t-stored", 7_000).await;
        // RideNow's prepaid fee, from a wired deposit.
        payments
            .deposit_to_fee_account(
                "m-rides",
                "WIRE-1",
                5_000,
                Currency::CNY,
                &engine::FeeDeposit::Channel("simbank".to_owned()),
                NOW,
            )
            .await
            .unwrap();
        top_up.merchant_id = "m-rides".to_owned();
        top_up.out_trade_no = "t-ride".to_owned();
        top_up.request_serial = "serial-t-ride".to_owned();
        top_up.product = "instant_transfer".to_owned();
        top_up.bank = Some("CMB".to_owned());
        top_up.campaign = None;
        let ride = payments.pay(&top_up, NOW).await.unwrap();
        assert_eq!(ride.payment.status, PaymentStatus::Success);
        let fee = ride.fees[0].id;
        let clean = fixture.store.internal_check().await.unwrap();
        assert!(clean.is_clean(), "{:?}", clean.findings);

        let breaks = [
            format!("DELETE FROM transfers WHERE idempotency_key = 'fee-post-{fee}'"),
            format!(
                "UPDATE payment_orders SET bonus_minor = 17999 WHERE id = {}",
                topped.payment.id
            ),
            format!(
                "DELETE FROM transfers WHERE idempotency_key = 'bonus-cost-{bonus_instruction}'"
            ),
            "UPDATE transfers SET idempotency_key = 'fee-deposit-999999' \
             WHERE idempotency_key LIKE 'fee-deposit-%'"
                .to_owned(),
        ];
        for sql in &breaks {
            execute(&fixture.raw, sql).await;
        }
        let report = fixture.store.internal_check().await.unwrap();
        let found = findings(&report);
        let deposit = found
            .iter()
            .find(|(code, subject, _, _)| {
                code == "PAYMENT_WITHOUT_TRANSFER" && subject == "fee_deposit"
            })
            .and_then(|(_, _, id, _)| *id)
            .unwrap();
        let expected: BTreeSet<(String, String, Option<i64>, String)> = [
            (
                "PAYMENT_WITHOUT_TRANSFER",
                "payment_fee",
                Some(fee),
                format!("fee-post-{fee}"),
            ),
            (
                "AMOUNT_DIFFERS",
                "payment",
                Some(topped.payment.id),
                format!("bonus-grant-{}", topped.payment.id),
            ),
            (
                "PAYMENT_WITHOUT_TRANSFER",
                "payment",
                Some(spent.payment.id),
                format!("bonus-cost-{bonus_instruction}"),
            ),
            (
                "PAYMENT_WITHOUT_TRANSFER",
                "fee_deposit",
                Some(deposit),
                format!("fee-deposit-{deposit}"),
            ),
            (
                "TRANSFER_WITHOUT_ORDER",
                "fee_deposit",
                Some(999_999),
                "fee-deposit-999999".to_owned(),
            ),
        ]
        .into_iter()
        .map(|(code, subject, id, key)| (code.to_owned(), subject.to_owned(), id, key))
        .collect();
        assert_eq!(found, expected);
    }
}
