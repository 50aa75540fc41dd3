//! Batch collection with a deadline (批量代扣) on both stores: lines run by
//! priority under their agreements; at the deadline the lines still
//! PROCESSING are FAILED and the return file (回盘) repeats the client's
//! lines with their results; a line that succeeds after the deadline is
//! found by the late check and raises a refund in PENDING_REVIEW, once.
//! Every test runs on SQLite and, when `PAYCORE_TEST_POSTGRES_URL` is set
//! (always in CI), on PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use channels::checks::{complete_card_number, complete_resident_id};
use engine::{
    AgreementMethod, AgreementStatus, CollectionBatchStore, LateOutcome, LineStatus, OrderStore,
    PaymentStatus, RefundStatus, Secret, SignRequest,
};
use money::Currency;
use recon::ReconStore;
use server::collection_batches::{self, Upload};

mod common;
use common::{Fixture, MERCHANT, NOW, SECOND, assert_sound};

/// Signs `member`'s card with the merchant; its agreement number.
async fn sign(fixture: &Fixture, member: &str, account: &str) -> String {
    let request = SignRequest {
        merchant_id: MERCHANT.to_owned(),
        sign_serial: format!("sign-{member}"),
        member_id: member.to_owned(),
        method: AgreementMethod::ThreeElement,
        name: Secret::new("张三".to_owned()),
        id_number: Secret::new(complete_resident_id("11010519491231002").unwrap()),
        card_number: Secret::new(complete_card_number(&format!("622202{account}")).unwrap()),
        phone: None,
        bank: None,
    };
    let agreement = fixture
        .state
        .agreements()
        .sign(&request, NOW)
        .await
        .unwrap();
    assert_eq!(agreement.status, AgreementStatus::Active, "{agreement:?}");
    agreement.agreement_no.unwrap()
}

/// The simulator answers by the last two digits of the amount: `.92` is
/// PROCESSING, then success after two seconds; `.93` PROCESSING, then
/// failure; `.91` refused at once.
fn batch_file(agreements: &[String]) -> String {
    let [alice, bob, carol, dave] = agreements else {
        panic!("four agreements")
    };
    format!(
        "reference,card_account,agreement_no,member_id,amount,priority\n\
         R-low,\"4392, main\",{alice},alice,10.00,1\n\
         R-high,4392-02,{bob},bob,20.00,9\n\
         R-refused,4392-03,{carol},carol,30.91,\n\
         R-slow,4392-04,{dave},dave,40.92,5\n\
         R-nobody,4392-05,AG-NONE,erin,12.00,\n\
         R-slow-fail,4392-06,{alice},alice,50.93,\n"
    )
}

fn upload<'a>(batch_no: &'a str, file: &'a str, deadline: i64) -> Upload<'a> {
    Upload {
        merchant_id: MERCHANT,
        batch_no,
        currency: Currency::CNY,
        deadline,
        file,
    }
}

#[tokio::test]
async fn a_batch_runs_by_priority_fails_what_is_left_at_its_deadline_and_refunds_late_successes() {
    for fixture in common::fixtures("batch_deadline").await {
        let state = &fixture.state;
        let mut agreements = Vec::new();
        for (member, account) in [
            ("alice", "0011223"),
            ("bob", "0022334"),
            ("carol", "0033445"),
            ("dave", "0044556"),
        ] {
            agreements.push(sign(&fixture, member, account).await);
        }
        let file = batch_file(&agreements);
        let deadline = NOW + SECOND;
        let batch = collection_batches::submit(state, &upload("B-1201", &file, deadline), NOW)
            .await
            .unwrap();
        assert_eq!((batch.line_count, batch.total_minor), (6, 16_476));
        // A repeat is the same batch; the same number with another file is
        // a conflict.
        let again = collection_batches::submit(state, &upload("B-1201", &file, deadline), NOW)
            .await
            .unwrap();
        assert_eq!(again.id, batch.id);
        let other = file.replace("10.00", "11.00");
        let conflict = collection_batches::submit(state, &upload("B-1201", &other, deadline), NOW)
            .await
            .unwrap_err();
        assert_eq!(conflict.code(), "REFERENCE_CONFLICT");
        assert!(conflict.to_string().contains("file"), "{conflict}");

        // One round sends every line, highest priority first.
        let running = collection_batches::advance(state, &batch, NOW)
            .await
            .unwrap();
        assert_eq!(running.status.as_str(), "RUNNING");
        let lines = fixture.store.batch_lines(batch.id).await.unwrap();
        let by_reference = |reference: &str| {
            lines
                .iter()
                .find(|line| line.reference == reference)
                .unwrap()
                .clone()
        };
        let sent_order: Vec<i64> = ["R-high", "R-slow", "R-low", "R-refused", "R-slow-fail"]
            .iter()
            .map(|reference| by_reference(reference).payment_id.unwrap())
            .collect();
        let mut sorted = sent_order.clone();
        sorted.sort_unstable();
        assert_eq!(sent_order, sorted, "payments are made in priority order");
        let status = |reference: &str| {
            let line = by_reference(reference);
            (line.status, line.failure_code)
        };
        assert_eq!(status("R-high"), (LineStatus::Success, None));
        assert_eq!(status("R-low"), (LineStatus::Success, None));
        assert_eq!(status("R-slow"), (LineStatus::Processing, None));
        assert_eq!(status("R-slow-fail"), (LineStatus::Processing, None));
        assert_eq!(
            status("R-refused"),
            (LineStatus::Failed, Some("CHANNEL_REFUSED".to_owned()))
        );
        assert_eq!(
            status("R-nobody"),
            (LineStatus::Failed, Some("AGREEMENT_NOT_FOUND".to_owned()))
        );
        assert!(by_reference("R-nobody").payment_id.is_none());
        let early = collection_batches::return_file(state, Some(MERCHANT), batch.id)
            .await
            .unwrap_err();
        assert_eq!(early.code(), "BATCH_NOT_CLOSED");
        let stranger = collection_batches::return_file(state, Some("m-other"), batch.id)
            .await
            .unwrap_err();
        assert_eq!(stranger.code(), "BATCH_NOT_FOUND");

        // Half a second on, nothing has answered; at the deadline the batch
        // closes with the PROCESSING lines FAILED.
        let waiting = collection_batches::advance(state, &running, NOW + SECOND / 2)
            .await
            .unwrap();
        assert_eq!(waiting.status.as_str(), "RUNNING");
        let closed = collection_batches::advance(state, &waiting, deadline)
            .await
            .unwrap();
        assert_eq!(closed.status.as_str(), "CLOSED");
        assert_eq!(closed.closed_at, Some(deadline));
        let (_, returned, sha256) =
            collection_batches::return_file(state, Some(MERCHANT), batch.id)
                .await
                .unwrap();
        let payment = |reference: &str| by_reference(reference).payment_id.unwrap();
        let expected = format!(
            "reference,card_account,agreement_no,member_id,amount,priority,result,result_code,result_message,payment_id\n\
             R-low,\"4392, main\",{a},alice,10.00,1,SUCCESS,,,{low}\n\
             R-high,4392-02,{b},bob,20.00,9,SUCCESS,,,{high}\n\
             R-refused,4392-03,{c},carol,30.91,,FAILED,CHANNEL_REFUSED,payment {refused} failed,{refused}\n\
             R-slow,4392-04,{d},dave,40.92,5,FAILED,DEADLINE_PASSED,no final answer from the channel by the batch's deadline,{slow}\n\
             R-nobody,4392-05,AG-NONE,erin,12.00,,FAILED,AGREEMENT_NOT_FOUND,agreement AG-NONE not found,\n\
             R-slow-fail,4392-06,{a},alice,50.93,,FAILED,DEADLINE_PASSED,no final answer from the channel by the batch's deadline,{slow_fail}\n",
            a = agreements[0],
            b = agreements[1],
            c = agreements[2],
            d = agreements[3],
            low = payment("R-low"),
            high = payment("R-high"),
            refused = payment("R-refused"),
            slow = payment("R-slow"),
            slow_fail = payment("R-slow-fail"),
        );
        assert_eq!(returned, expected);
        assert_eq!(sha256.len(), 64);

        // Before the channel answers, the late check waits.
        assert!(
            collection_batches::check_late(state, deadline)
                .await
                .unwrap()
                .is_empty()
        );
        // Past the simulator's delay, the resolver finds R-slow succeeded
        // and R-slow-fail failed.
        let later = NOW + 3 * SECOND;
        for result in state
            .payments()
            .resolve_unfinished(later, 0, 100)
            .await
            .unwrap()
        {
            result.unwrap();
        }
        let slow = fixture
            .store
            .payment(MERCHANT, payment("R-slow"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(slow.payment.status, PaymentStatus::Success);
        let raised = collection_batches::check_late(state, later).await.unwrap();
        assert_eq!(raised.len(), 1, "{raised:?}");
        assert_eq!(raised[0].payment_id, payment("R-slow"));
        let refund = state
            .payments()
            .review_queue(10)
            .await
            .unwrap()
            .into_iter()
            .find(|view| view.refund.id == raised[0].refund_id)
            .expect("the late success's refund waits for review");
        assert_eq!(refund.refund.status, RefundStatus::PendingReview);
        assert_eq!(refund.refund.amount_minor, 4_092);
        assert_eq!(
            refund.trade.out_trade_no,
            by_reference("R-slow").out_trade_no()
        );
        // Checked once: a second check raises nothing more.
        assert!(
            collection_batches::check_late(state, later + SECOND)
                .await
                .unwrap()
                .is_empty()
        );
        let lines = fixture.store.batch_lines(batch.id).await.unwrap();
        let late: Vec<_> = lines
            .iter()
            .filter_map(|line| {
                line.late
                    .map(|late| (line.reference.as_str(), late, line.late_refund_id))
            })
            .collect();
        assert_eq!(
            late,
            vec![
                ("R-slow", LateOutcome::Refunded, Some(raised[0].refund_id)),
                ("R-slow-fail", LateOutcome::NotCollected, None),
            ]
        );
        // The return file stays what the client was told.
        let (_, unchanged, _) = collection_batches::return_file(state, None, batch.id)
            .await
            .unwrap();
        assert_eq!(unchanged, expected);
        assert_sound(&fixture.store).await;
        let internal = fixture.store.internal_check().await.unwrap();
        assert!(internal.is_clean(), "{:#?}", internal.findings);
    }
}

#[tokio::test]
async fn a_batch_whose_lines_all_finish_closes_before_its_deadline() {
    for fixture in common::fixtures("batch_early").await {
        let state = &fixture.state;
        let alice = sign(&fixture, "alice", "0011223").await;
        let file = format!(
            "agreement_no,amount,reference,member_id\n{alice},1.00,A,alice\n{alice},2.00,B,alice\n"
        );
        let batch =
            collection_batches::submit(state, &upload("B-early", &file, NOW + 3_600 * SECOND), NOW)
                .await
                .unwrap();
        let closed = collection_batches::advance(state, &batch, NOW)
            .await
            .unwrap();
        assert_eq!(closed.status.as_str(), "CLOSED");
        let (_, returned, _) = collection_batches::return_file(state, Some(MERCHANT), batch.id)
            .await
            .unwrap();
        let lines: Vec<&str> = returned.lines().collect();
        assert_eq!(
            lines[0],
            "agreement_no,amount,reference,member_id,result,result_code,result_message,payment_id"
        );
        assert!(
            lines[1].starts_with(&format!("{alice},1.00,A,alice,SUCCESS,,,")),
            "{returned}"
        );
        assert!(
            lines[2].starts_with(&format!("{alice},2.00,B,alice,SUCCESS,,,")),
            "{returned}"
        );
        // run_due leaves a closed batch alone.
        collection_batches::run_due(state, NOW + SECOND).await;
        let again = fixture
            .store
            .collection_batch(Some(MERCHANT), batch.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(again, closed);
    }
}

#[tokio::test]
async fn a_bad_upload_is_refused_whole_and_nothing_is_stored() {
    for fixture in common::fixtures("batch_refused").await {
        let state = &fixture.state;
        let file = "reference,agreement_no,member_id,amount\nR1,AG1,alice,1.00\nR2,AG2,bob,1.2.3\n";
        let refused = collection_batches::submit(state, &upload("B-bad", file, NOW + SECOND), NOW)
            .await
            .unwrap_err();
        assert_eq!(refused.code(), "INVALID_BATCH_FILE");
        assert!(
            refused
                .to_string()
                .starts_with("batch file line 2, field amount"),
            "{refused}"
        );
        let stored = fixture
            .store
            .collection_batch_by_no(MERCHANT, "B-bad")
            .await
            .unwrap();
        assert!(stored.is_none());
        let good = "reference,agreement_no,member_id,amount\nR1,AG1,alice,1.00\n";
        let past = collection_batches::submit(state, &upload("B-past", good, NOW), NOW)
            .await
            .unwrap_err();
        assert_eq!(past.code(), "INVALID_BATCH");
        assert!(
            fixture
                .store
                .running_collection_batches(10)
                .await
                .unwrap()
                .is_empty()
        );
    }
}

#[tokio::test]
async fn a_card_is_debited_at_most_its_daily_limit_under_all_its_agreements() {
    for fixture in common::fixtures("batch_card_limit").await {
        let state = &fixture.state;
        // The built-in configuration lets one card be debited 20,000.00 a
        // day; the member may pay 50,000.00.
        let alice = sign(&fixture, "alice", "0011223").await;
        let file = format!(
            "reference,agreement_no,member_id,amount\n\
             big,{alice},alice,15000.00\nover,{alice},alice,6000.00\nfits,{alice},alice,5000.00\n"
        );
        let batch =
            collection_batches::submit(state, &upload("B-limit", &file, NOW + 60 * SECOND), NOW)
                .await
                .unwrap();
        let closed = collection_batches::advance(state, &batch, NOW)
            .await
            .unwrap();
        assert_eq!(closed.status.as_str(), "CLOSED");
        let lines = fixture.store.batch_lines(batch.id).await.unwrap();
        let results: Vec<(&str, LineStatus, Option<&str>)> = lines
            .iter()
            .map(|line| {
                (
                    line.reference.as_str(),
                    line.status,
                    line.failure_code.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            results,
            vec![
                ("big", LineStatus::Success, None),
                ("over", LineStatus::Failed, Some("LIMIT_EXCEEDED")),
                ("fits", LineStatus::Success, None),
            ]
        );
        assert!(
            lines[1]
                .failure_message
                .as_deref()
                .unwrap()
                .contains("card of agreement"),
            "{:?}",
            lines[1].failure_message
        );
        // The next day starts afresh.
        let tomorrow = collection_batches::submit(
            state,
            &upload(
                "B-limit-2",
                "reference,agreement_no,member_id,amount\nagain,AG,alice,6000.00\n"
                    .replace("AG", &alice)
                    .as_str(),
                NOW + 86_400 * SECOND + 60 * SECOND,
            ),
            NOW + 86_400 * SECOND,
        )
        .await
        .unwrap();
        collection_batches::advance(state, &tomorrow, NOW + 86_400 * SECOND)
            .await
            .unwrap();
        let next = fixture.store.batch_lines(tomorrow.id).await.unwrap();
        assert_eq!(next[0].status, LineStatus::Success, "{:?}", next[0]);
    }
}
