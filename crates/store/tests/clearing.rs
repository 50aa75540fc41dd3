//! The clearing and settlement store contract, on SQLite and PostgreSQL:
//! what the daily summary reads (a date's clearing totals, settled or not,
//! and the date's batches), and how creating batches marks their entries
//! (all batches of a call in one statement, each entry once, or nothing).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use money::Currency;
use settlement::{
    BatchStatus, ClearingEntry, EntryKind, FeeMode, NewBatch, SettlementStore, daily_summary, net,
    parse_date,
};
use store::Store;

mod common;
use common::{Fixture, execute};

contract!(
    clearing_daily_summary_agrees,
    clearing_batches_mark_their_entries_once_or_nothing,
);

const MERCHANTS: i64 = 3;
const FRIDAY: &str = "2026-11-20";
const MONDAY: &str = "2026-11-23";

async fn entries(store: &Store, merchant: &str, date: &str) -> Vec<ClearingEntry> {
    store.clearing_entries(merchant, date).await.unwrap()
}

/// Sums of entries as the daily summary counts them: collections,
/// refunds, and fees per mode charged minus returned.
#[derive(Debug, Default, PartialEq, Eq)]
struct Sums {
    collections: (u64, i64),
    refunds: (u64, i64),
    fees: [i64; 3],
}

fn sum(entries: &[ClearingEntry]) -> Sums {
    let mut sums = Sums::default();
    for stored in entries {
        let entry = &stored.entry;
        let (counted, sign) = match entry.kind {
            EntryKind::Collection => (&mut sums.collections, 1),
            EntryKind::Refund => (&mut sums.refunds, -1),
        };
        counted.0 += 1;
        counted.1 += entry.amount_minor;
        let mode = FeeMode::ALL
            .iter()
            .position(|mode| *mode == entry.fee_mode)
            .unwrap();
        sums.fees[mode] += sign * entry.fee_minor;
    }
    sums
}

async fn clearing_daily_summary_agrees(fixture: Fixture) {
    let store = &fixture.store;
    // 90 entries of three merchants over two business dates, some refunds;
    // then some fees post-paid or prepaid, and one refund returning a fee.
    store
        .bench_fill_clearing(90, MERCHANTS, &[FRIDAY, MONDAY])
        .await
        .unwrap();
    execute(
        &fixture.raw,
        "UPDATE clearing_entries SET fee_mode = 'post_paid' WHERE id % 5 = 1; \
         UPDATE clearing_entries SET fee_mode = 'prepaid' WHERE id % 7 = 3; \
         UPDATE clearing_entries SET fee_minor = 4 WHERE kind = 'REFUND' AND id = 2",
    )
    .await;

    // Monday settles m-0's and m-1's Friday entries; m-2's is carried.
    let high_water = store.clearing_high_water().await.unwrap();
    let due: Vec<_> = store
        .unsettled_totals(high_water)
        .await
        .unwrap()
        .into_iter()
        .filter(|group| group.business_date.to_string() == FRIDAY)
        .collect();
    let batches: Vec<NewBatch> = net(due)
        .unwrap()
        .into_iter()
        .map(|line| NewBatch {
            settle_date: MONDAY.to_owned(),
            cycle: "T+1".to_owned(),
            destination: "available".to_owned(),
            status: if line.merchant_id == "m-2" {
                BatchStatus::Carried
            } else {
                BatchStatus::Pending
            },
            line,
            up_to_business_date: FRIDAY.to_owned(),
            up_to_entry_id: high_water,
            reconciled_only: false,
        })
        .collect();
    let created = store.create_batches(&batches, 1).await.unwrap();
    assert_eq!(created.len(), 3);
    let posted = created
        .iter()
        .find(|created| created.batch.merchant_id == "m-0")
        .unwrap();
    store
        .move_batches(
            &[settlement::BatchMove {
                id: posted.batch.id,
                from: BatchStatus::Pending,
                to: BatchStatus::Posted,
                transfer_id: None,
                payout_payment_id: None,
            }],
            2,
        )
        .await
        .unwrap();

    // Friday: every entry of the date is in the totals, settled or not.
    let friday = parse_date(FRIDAY).unwrap();
    let totals = store.clearing_totals_of_date(FRIDAY).await.unwrap();
    assert!(totals.iter().all(|group| group.business_date == friday));
    let summary = daily_summary(friday, totals, &store.batches(FRIDAY).await.unwrap()).unwrap();
    assert_eq!(summary.lines.len(), MERCHANTS as usize);
    let mut all_friday = Vec::new();
    for line in &summary.lines {
        let listed = entries(store, &line.merchant_id, FRIDAY).await;
        let sums = sum(&listed);
        let figures = &line.figures;
        assert_eq!(
            Sums {
                collections: (figures.collection_count, figures.collections_minor),
                refunds: (figures.refund_count, figures.refunds_minor),
                fees: [
                    figures.real_time_fees_minor,
                    figures.post_paid_fees_minor,
                    figures.prepaid_fees_minor
                ],
            },
            sums,
            "{}",
            line.merchant_id
        );
        assert_eq!(
            figures.net_minor,
            sums.collections.1 - sums.refunds.1 - sums.fees[0]
        );
        assert_eq!((line.batch, figures.batches), (None, 0));
        all_friday.extend(listed);
    }
    assert_eq!(all_friday.len(), 45);
    let cny = summary.totals[&Currency::CNY];
    let friday_sums = sum(&all_friday);
    assert_eq!(
        (cny.collections_minor, cny.refunds_minor),
        (friday_sums.collections.1, friday_sums.refunds.1)
    );
    assert_eq!(
        [
            cny.real_time_fees_minor,
            cny.post_paid_fees_minor,
            cny.prepaid_fees_minor
        ],
        friday_sums.fees
    );
    assert!(friday_sums.refunds.0 > 0 && friday_sums.fees[1] > 0 && friday_sums.fees[2] > 0);

    // Monday: its own entries, and the batches of its settlement date.
    let monday = parse_date(MONDAY).unwrap();
    let batches = store.batches(MONDAY).await.unwrap();
    let summary = daily_summary(
        monday,
        store.clearing_totals_of_date(MONDAY).await.unwrap(),
        &batches,
    )
    .unwrap();
    let cny = summary.totals[&Currency::CNY];
    let mut all_monday = Vec::new();
    for merchant in 0..MERCHANTS {
        all_monday.extend(entries(store, &format!("m-{merchant}"), MONDAY).await);
    }
    assert_eq!(all_monday.len(), 45);
    assert_eq!(cny.collections_minor, sum(&all_monday).collections.1);
    assert_eq!((cny.batches, cny.batches_posted), (3, 1));
    // What the posted batch settled is exactly m-0's Friday entries.
    let settled: Vec<_> = entries(store, "m-0", FRIDAY).await;
    assert!(
        settled
            .iter()
            .all(|entry| entry.batch_id == Some(posted.batch.id))
    );
    let settled_sums = sum(&settled);
    assert_eq!(cny.settled_entries, settled.len() as u64);
    assert_eq!(cny.settled_fees_minor, settled_sums.fees[0]);
    assert_eq!(
        cny.settled_net_minor,
        settled_sums.collections.1 - settled_sums.refunds.1 - settled_sums.fees[0]
    );
    let lines: Vec<_> = summary
        .lines
        .iter()
        .map(|line| {
            (
                line.merchant_id.as_str(),
                line.batch.map(|(_, status)| status),
            )
        })
        .collect();
    assert_eq!(
        lines,
        [
            ("m-0", Some(BatchStatus::Posted)),
            ("m-1", Some(BatchStatus::Pending)),
            ("m-2", Some(BatchStatus::Carried)),
        ]
    );

    // A date without business.
    let empty = store.clearing_totals_of_date("2026-11-21").await.unwrap();
    assert!(empty.is_empty());
}

/// Batches for every merchant's unsettled entries up to `up_to`, paying
/// (PENDING) except `carried`.
async fn new_batches(
    store: &Store,
    settle_date: &str,
    up_to: &str,
    reconciled_only: &str,
    carried: &str,
) -> Vec<NewBatch> {
    let high_water = store.clearing_high_water().await.unwrap();
    let up_to_date = parse_date(up_to).unwrap();
    let due: Vec<_> = store
        .unsettled_totals(high_water)
        .await
        .unwrap()
        .into_iter()
        .filter(|group| group.business_date <= up_to_date)
        .filter(|group| group.merchant_id != reconciled_only || group.reconciled)
        .collect();
    net(due)
        .unwrap()
        .into_iter()
        .map(|line| NewBatch {
            settle_date: settle_date.to_owned(),
            cycle: "T+1".to_owned(),
            destination: "available".to_owned(),
            status: if line.merchant_id == carried {
                BatchStatus::Carried
            } else {
                BatchStatus::Pending
            },
            reconciled_only: line.merchant_id == reconciled_only,
            line,
            up_to_business_date: up_to.to_owned(),
            up_to_entry_id: high_water,
        })
        .collect()
}

async fn clearing_batches_mark_their_entries_once_or_nothing(fixture: Fixture) {
    let store = &fixture.store;
    store
        .bench_fill_clearing(120, 4, &[FRIDAY, MONDAY, FRIDAY])
        .await
        .unwrap();
    // m-1 settles reconciled entries only: a third of its entries are not.
    execute(
        &fixture.raw,
        "UPDATE clearing_entries SET reconciled = FALSE \
         WHERE merchant_id = 'm-1' AND id % 3 = 0",
    )
    .await;

    // A batch whose counts no longer match its entries refuses the whole
    // call: no batch, no entry marked.
    let mut stale = new_batches(store, MONDAY, FRIDAY, "m-1", "m-3").await;
    assert_eq!(stale.len(), 4);
    stale[2].line.collection_count += 1;
    let refused = store.create_batches(&stale, 1).await.unwrap_err();
    assert_eq!(refused.code(), "SETTLEMENT_ENTRIES_CHANGED", "{refused}");
    assert!(store.batches(MONDAY).await.unwrap().is_empty());
    for merchant in 0..4 {
        let listed = entries(store, &format!("m-{merchant}"), FRIDAY).await;
        assert!(listed.iter().all(|entry| entry.batch_id.is_none()));
    }

    // The same batches as they are: each paying batch marks exactly the
    // entries its line counted, in one call.
    let batches = new_batches(store, MONDAY, FRIDAY, "m-1", "m-3").await;
    let created = store.create_batches(&batches, 1).await.unwrap();
    assert!(created.iter().all(|created| created.created));
    for created in &created {
        let batch = &created.batch;
        let listed = entries(store, &batch.merchant_id, FRIDAY).await;
        let marked = listed
            .iter()
            .filter(|entry| entry.batch_id == Some(batch.id))
            .count() as u64;
        if batch.status == BatchStatus::Carried {
            assert_eq!(marked, 0);
        } else {
            assert_eq!(marked, batch.collection_count + batch.refund_count);
        }
        for entry in &listed {
            let expected = batch.status != BatchStatus::Carried
                && (batch.merchant_id != "m-1" || entry.entry.reconciled);
            assert_eq!(entry.batch_id.is_some(), expected, "{entry:?}");
        }
        // Monday's entries were past the bound.
        let later = entries(store, &batch.merchant_id, MONDAY).await;
        assert!(later.iter().all(|entry| entry.batch_id.is_none()));
    }

    // Again: the batches exist, nothing is marked twice. The next date
    // takes what is left, never an entry already taken.
    let again = store.create_batches(&batches, 2).await.unwrap();
    assert!(again.iter().all(|created| !created.created));
    let tuesday = new_batches(store, "2026-11-24", MONDAY, "none", "none").await;
    let next = store.create_batches(&tuesday, 3).await.unwrap();
    let mut seen = std::collections::HashSet::new();
    for merchant in 0..4 {
        for date in [FRIDAY, MONDAY] {
            for entry in entries(store, &format!("m-{merchant}"), date).await {
                let batch = entry.batch_id.unwrap();
                assert!(seen.insert(entry.id));
                let owner = created
                    .iter()
                    .chain(&next)
                    .find(|created| created.batch.id == batch)
                    .unwrap();
                assert_eq!(owner.batch.merchant_id, entry.entry.merchant_id);
            }
        }
    }
    assert_eq!(seen.len(), 120);
}
