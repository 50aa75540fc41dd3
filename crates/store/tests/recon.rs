//! The reconciliation contract: every test runs against SQLite and PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use engine::{
    ChannelBooking, ChannelOrderStatus, Direction, FundingSource, NewInstruction, NewPayment,
    NewTrade, OrderStore,
};
use money::Currency;
use recon::{
    Class, DiscrepancyAction, DiscrepancyQuery, DiscrepancyStatus, DiscrepancyUpdate, Finding,
    NewStatementFile, ReconRun, ReconStore, ReconStoreError, RecordKind, RecordStatus, SideFigures,
    Treatment,
};

mod common;
use common::Fixture;

contract!(
    recon_statement_files_refuse_the_same_bytes_twice,
    recon_discrepancies_carry_until_settled,
    recon_snapshot_reads_the_channels_day,
    recon_runs_replace_the_days_run,
);

const NOW: i64 = 1_700_000_000_000_000;

fn file(name: &str, sha256: &str) -> NewStatementFile {
    NewStatementFile {
        channel: "simbank".to_owned(),
        business_day: 20_779,
        file_name: name.to_owned(),
        sha256: sha256.to_owned(),
        format: "wechat".to_owned(),
        records: 12,
        record_path: format!("statements/{sha256}.parquet"),
    }
}

async fn recon_statement_files_refuse_the_same_bytes_twice(fixture: Fixture) {
    let store = &fixture.store;
    let first = store
        .record_statement_file(&file("a.csv", "aa"), NOW)
        .await
        .unwrap();
    assert_eq!(first.file.records, 12);
    let again = store
        .record_statement_file(&file("b.csv", "aa"), NOW)
        .await
        .unwrap_err();
    match again {
        ReconStoreError::AlreadyImported {
            id,
            file_name,
            business_day,
        } => {
            assert_eq!(
                (id, file_name.as_str(), business_day),
                (first.id, "a.csv", 20_779)
            );
        }
        other => panic!("expected AlreadyImported, got {other}"),
    }
    store
        .record_statement_file(&file("c.csv", "cc"), NOW)
        .await
        .unwrap();
    let files = store.statement_files("simbank", 20_779).await.unwrap();
    assert_eq!(
        files
            .iter()
            .map(|f| f.file.sha256.as_str())
            .collect::<Vec<_>>(),
        ["aa", "cc"]
    );
    assert!(
        store
            .statement_files("simbank", 20_780)
            .await
            .unwrap()
            .is_empty()
    );
}

fn figures(amount_minor: i64, status: RecordStatus) -> SideFigures {
    SideFigures {
        amount_minor,
        currency: "CNY".to_owned(),
        fee_minor: Some(6),
        status,
        channel_transaction_id: Some("SIM-1".to_owned()),
        occurred_at: NOW,
        business_day: 20_779,
    }
}

fn finding(key: &str, class: Class, channel_amount_minor: i64) -> Finding {
    Finding {
        key: key.to_owned(),
        kind: RecordKind::Payment,
        class,
        platform: Some(figures(1_000, RecordStatus::Processing)),
        channel: Some(figures(channel_amount_minor, RecordStatus::Success)),
        channel_count: 1,
    }
}

fn action(id: i64, key: &str, from: DiscrepancyStatus, to: DiscrepancyStatus) -> DiscrepancyAction {
    DiscrepancyAction {
        discrepancy_id: id,
        action_key: key.to_owned(),
        action: "complete_order".to_owned(),
        from_status: from,
        to_status: to,
        actor: "rule:R101".to_owned(),
        reason: "channel success, we had PROCESSING".to_owned(),
        at: NOW + 1,
    }
}

async fn recon_discrepancies_carry_until_settled(fixture: Fixture) {
    let store = &fixture.store;
    let found = finding("41", Class::StatusChannelSuccess, 1_000);
    let update = DiscrepancyUpdate {
        channel: "simbank",
        finding: &found,
        error_code: "R101",
        treatment: Treatment::CompleteOrder,
        business_day: 20_779,
    };
    let first = store.upsert_discrepancy(&update, NOW).await.unwrap();
    assert_eq!(first.status, DiscrepancyStatus::Open);
    assert_eq!(first.platform, found.platform);
    assert_eq!(first.channel_side, found.channel);
    // The next day's run finds it again, with new figures: one row, carried.
    let later = finding("41", Class::AmountChannelHigher, 1_200);
    let carried = store
        .upsert_discrepancy(
            &DiscrepancyUpdate {
                finding: &later,
                error_code: "R401",
                treatment: Treatment::Adjust,
                business_day: 20_780,
                ..update
            },
            NOW + 10,
        )
        .await
        .unwrap();
    assert_eq!(carried.id, first.id);
    assert_eq!((carried.first_day, carried.last_day), (20_779, 20_780));
    assert_eq!(carried.class, Class::AmountChannelHigher);
    assert_eq!(carried.channel_side.as_ref().unwrap().amount_minor, 1_200);
    // Treated once; the same action again changes nothing.
    let treat = action(
        first.id,
        "treat-41",
        DiscrepancyStatus::Open,
        DiscrepancyStatus::Treated,
    );
    assert!(store.change_discrepancy(&treat).await.unwrap());
    assert!(!store.change_discrepancy(&treat).await.unwrap());
    let stale = action(
        first.id,
        "other",
        DiscrepancyStatus::Open,
        DiscrepancyStatus::Exception,
    );
    assert!(
        !store.change_discrepancy(&stale).await.unwrap(),
        "compare-and-set on the status"
    );
    // A settled discrepancy is not reopened by a later finding.
    let settled = store.upsert_discrepancy(&update, NOW + 20).await.unwrap();
    assert_eq!(settled.status, DiscrepancyStatus::Treated);
    assert_eq!(settled.class, Class::AmountChannelHigher);
    let actions = store.actions(first.id).await.unwrap();
    assert_eq!(actions, vec![treat]);
    let other = finding("42", Class::ChannelOnly, 500);
    store
        .upsert_discrepancy(
            &DiscrepancyUpdate {
                finding: &other,
                ..update
            },
            NOW,
        )
        .await
        .unwrap();
    let open = store
        .discrepancies(&DiscrepancyQuery {
            status: Some(DiscrepancyStatus::Open),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        open.iter().map(|d| d.key.as_str()).collect::<Vec<_>>(),
        ["42"]
    );
    let all = store
        .discrepancies(&DiscrepancyQuery {
            channel: Some("simbank".to_owned()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(all.len(), 2);
    let page = store
        .discrepancies(&DiscrepancyQuery {
            after_id: all[0].id,
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(page, all[1..].to_vec());
    assert_eq!(
        store.discrepancy(all[1].id).await.unwrap().as_ref(),
        Some(&all[1])
    );
    assert!(store.discrepancy(999_999).await.unwrap().is_none());
}

async fn recon_snapshot_reads_the_channels_day(fixture: Fixture) {
    let store = &fixture.store;
    let trade = store
        .create_trade(
            &NewTrade {
                merchant_id: "m1".to_owned(),
                out_trade_no: "T1".to_owned(),
                subject: "coffee".to_owned(),
                amount_minor: 3_000,
                currency: Currency::CNY,
            },
            NOW,
        )
        .await
        .unwrap()
        .into_inner();
    let instructions: Vec<NewInstruction> = (0..3)
        .map(|_| NewInstruction {
            direction: Direction::Collect,
            source: FundingSource::Card,
            amount_minor: 1_000,
        })
        .collect();
    let payment = store
        .create_payment(
            &NewPayment {
                trade_id: trade.id,
                merchant_id: "m1".to_owned(),
                request_serial: "S1".to_owned(),
                product: "instant_transfer".to_owned(),
                payer_id: "alice".to_owned(),
                bank: None,
                agreement_no: None,
                amount_minor: 3_000,
                currency: Currency::CNY,
                campaign: None,
                bonus_minor: 0,
            },
            &instructions,
            NOW,
        )
        .await
        .unwrap()
        .into_inner();
    let day_start = NOW;
    let day_end = NOW + 86_400_000_000;
    let mut orders = Vec::new();
    for (index, instruction) in payment.instructions.iter().enumerate() {
        let at = NOW + index as i64 * 1_000;
        orders.push(
            store
                .create_channel_order(instruction.id, None, "simbank", 1_000, at)
                .await
                .unwrap()
                .into_inner(),
        );
    }
    // Booked by the channel on our day, booked on the next day, and not
    // booked at all (still in flight, changed inside the window).
    store
        .set_channel_transaction_id(
            orders[0].id,
            "SIM-A",
            Some(ChannelBooking {
                business_date: "20261122",
                fee_minor: 6,
            }),
            NOW,
        )
        .await
        .unwrap();
    store
        .set_channel_transaction_id(
            orders[1].id,
            "SIM-B",
            Some(ChannelBooking {
                business_date: "20261123",
                fee_minor: 6,
            }),
            NOW,
        )
        .await
        .unwrap();
    store
        .transition(
            orders[2].id,
            ChannelOrderStatus::Created,
            ChannelOrderStatus::Processing,
            NOW + 5,
        )
        .await
        .unwrap();
    let page = store
        .snapshot_page("simbank", "20261122", day_start, day_end, 0, 100)
        .await
        .unwrap();
    let ids: Vec<i64> = page.iter().map(|record| record.id).collect();
    assert_eq!(ids, [orders[0].id, orders[2].id]);
    assert_eq!(page[0].channel_fee_minor, Some(6));
    assert_eq!(page[0].channel_transaction_id.as_deref(), Some("SIM-A"));
    assert_eq!(page[1].status, "PROCESSING");
    assert_eq!(page[1].kind, RecordKind::Payment);
    let next_page = store
        .snapshot_page("simbank", "20261122", day_start, day_end, orders[0].id, 1)
        .await
        .unwrap();
    assert_eq!(
        next_page.iter().map(|record| record.id).collect::<Vec<_>>(),
        [orders[2].id]
    );
    let next_day = store
        .snapshot_page("simbank", "20261123", day_end, day_end * 2, 0, 100)
        .await
        .unwrap();
    assert_eq!(
        next_day.iter().map(|record| record.id).collect::<Vec<_>>(),
        [orders[1].id]
    );
    let other_channel = store
        .snapshot_page("otherbank", "20261122", day_start, day_end, 0, 100)
        .await
        .unwrap();
    assert!(other_channel.is_empty());
    let current = store
        .channel_orders_by_id(&[orders[1].id, 987_654])
        .await
        .unwrap();
    assert_eq!(current.len(), 1);
    assert_eq!(
        current[0].channel_business_date.as_deref(),
        Some("20261123")
    );
    let owner = store
        .channel_order_owner(orders[2].id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            owner.merchant_id.as_str(),
            owner.payment_id,
            owner.refund_id
        ),
        ("m1", payment.payment.id, None)
    );
    assert_eq!(owner.trade_paid_by, None);
    assert!(store.channel_order_owner(987_654).await.unwrap().is_none());
}

async fn recon_runs_replace_the_days_run(fixture: Fixture) {
    let store = &fixture.store;
    let mut run = ReconRun {
        channel: "simbank".to_owned(),
        business_day: 20_779,
        platform_records: 10,
        channel_records: 11,
        matched: 9,
        discrepancies: 2,
        summary: "MATCHED=9 CHANNEL_ONLY=2".to_owned(),
        finished_at: NOW,
    };
    store.save_run(&run).await.unwrap();
    run.matched = 11;
    run.discrepancies = 0;
    store.save_run(&run).await.unwrap();
    assert_eq!(store.runs("simbank").await.unwrap(), vec![run]);
}
