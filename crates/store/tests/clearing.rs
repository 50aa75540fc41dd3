//! The clearing and settlement store contract, on SQLite and PostgreSQL:
//! what the daily summary reads (a date's clearing totals, settled or not,
//! and the date's batches), and how creating batches marks their entries
//! (all batches of a call in one statement, each entry once, or nothing).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use money::Currency;
use settlement::{
    BatchDay, BatchStatus, ClearingEntry, ClearingTotals, EntryKind, FeeMode, NewBatch,
    SettlementStore, daily_summary, net, parse_date,
};
use std::collections::{BTreeMap, HashMap, HashSet};
use store::Store;

mod common;
use common::{Fixture, execute};

contract!(
    clearing_daily_summary_agrees,
    clearing_batches_mark_their_entries_once_or_nothing,
    clearing_batches_of_two_runs_never_share_entries,
    clearing_floor_only_skips_settled_entries,
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
    let (batches, version) = new_batches(store, MONDAY, FRIDAY, "none", "m-2").await;
    let created = store.create_batches(&batches, version, 1).await.unwrap();
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
/// (PENDING) except `carried`, as a run nets them; and the settlement
/// version they were netted at.
async fn new_batches(
    store: &Store,
    settle_date: &str,
    up_to: &str,
    reconciled_only: &str,
    carried: &str,
) -> (Vec<NewBatch>, i64) {
    let start = store.clearing_high_water().await.unwrap();
    let up_to_date = parse_date(up_to).unwrap();
    let totals: Vec<ClearingTotals> = store
        .unsettled_totals(start.entry_id)
        .await
        .unwrap()
        .into_iter()
        .filter(|group| group.business_date <= up_to_date)
        .collect();
    // Dates of which some entries stay behind, not yet reconciled.
    let partial: HashSet<(String, String)> = totals
        .iter()
        .filter(|group| group.merchant_id == reconciled_only && !group.reconciled)
        .map(|group| (group.merchant_id.clone(), group.business_date.to_string()))
        .collect();
    let due: Vec<ClearingTotals> = totals
        .into_iter()
        .filter(|group| group.merchant_id != reconciled_only || group.reconciled)
        .collect();
    let mut days: HashMap<String, BTreeMap<String, u64>> = HashMap::new();
    for group in &due {
        *days
            .entry(group.merchant_id.clone())
            .or_default()
            .entry(group.business_date.to_string())
            .or_default() += group.count;
    }
    let batches = net(due)
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
            days: days[&line.merchant_id]
                .iter()
                .map(|(date, count)| BatchDay {
                    business_date: date.clone(),
                    entry_count: *count,
                    whole: !partial.contains(&(line.merchant_id.clone(), date.clone())),
                })
                .collect(),
            line,
            up_to_entry_id: start.entry_id,
        })
        .collect();
    (batches, start.settlement_version)
}

/// Every entry of the merchants and dates, by the batch that lists it.
async fn entries_by_batch(
    store: &Store,
    merchants: i64,
    dates: &[&str],
) -> (HashMap<Option<i64>, Vec<ClearingEntry>>, usize) {
    let mut by_batch: HashMap<Option<i64>, Vec<ClearingEntry>> = HashMap::new();
    let mut listed = 0;
    for merchant in 0..merchants {
        for date in dates {
            for entry in entries(store, &format!("m-{merchant}"), date).await {
                listed += 1;
                by_batch.entry(entry.batch_id).or_default().push(entry);
            }
        }
    }
    (by_batch, listed)
}

/// Each paying batch lists exactly the entries its figures sum, to the
/// cent; the others list none.
fn assert_batches_agree(
    created: &[settlement::CreatedBatch],
    by_batch: &HashMap<Option<i64>, Vec<ClearingEntry>>,
) {
    for created in created {
        let batch = &created.batch;
        let listed = by_batch.get(&Some(batch.id)).map_or(&[][..], Vec::as_slice);
        if !batch.status.holds_entries() {
            assert!(listed.is_empty(), "{batch:?}");
            continue;
        }
        let sums = sum(listed);
        assert_eq!(
            (sums.collections, sums.refunds, sums.fees[0]),
            (
                (batch.collection_count, batch.collections_minor),
                (batch.refund_count, batch.refunds_minor),
                batch.fees_minor
            ),
            "{batch:?}"
        );
        assert!(
            listed
                .iter()
                .all(|entry| entry.entry.merchant_id == batch.merchant_id)
        );
    }
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
    let all_unsettled =
        |by_batch: &HashMap<Option<i64>, Vec<ClearingEntry>>| by_batch.keys().all(Option::is_none);

    // A batch whose counts do not add up to its days refuses the whole
    // call: no batch, no entry marked.
    let (mut stale, version) = new_batches(store, MONDAY, FRIDAY, "m-1", "m-3").await;
    assert_eq!(stale.len(), 4);
    stale[2].line.collection_count += 1;
    let refused = store.create_batches(&stale, version, 1).await.unwrap_err();
    assert_eq!(refused.code(), "SETTLEMENT_ENTRIES_CHANGED", "{refused}");
    assert!(store.batches(MONDAY).await.unwrap().is_empty());
    assert!(all_unsettled(
        &entries_by_batch(store, 4, &[FRIDAY]).await.0
    ));

    // An entry of a date marked one by one (m-1's Friday) is reconciled
    // after the netting: the marking finds one more than was summed, and
    // the whole call is refused.
    let (stale, version) = new_batches(store, MONDAY, FRIDAY, "m-1", "m-3").await;
    assert!(stale[1].days.iter().all(|day| !day.whole));
    assert!(stale[0].days.iter().all(|day| day.whole));
    execute(
        &fixture.raw,
        "UPDATE clearing_entries SET reconciled = TRUE WHERE id = (SELECT MIN(id) \
         FROM clearing_entries WHERE merchant_id = 'm-1' AND NOT reconciled)",
    )
    .await;
    let refused = store.create_batches(&stale, version, 1).await.unwrap_err();
    assert_eq!(refused.code(), "SETTLEMENT_ENTRIES_CHANGED", "{refused}");
    assert!(store.batches(MONDAY).await.unwrap().is_empty());
    assert!(all_unsettled(
        &entries_by_batch(store, 4, &[FRIDAY]).await.0
    ));

    // The same batches as they are: each paying batch holds exactly the
    // entries its line counted, in one call.
    let (batches, version) = new_batches(store, MONDAY, FRIDAY, "m-1", "m-3").await;
    let created = store.create_batches(&batches, version, 1).await.unwrap();
    assert!(created.iter().all(|created| created.created));
    let (by_batch, _) = entries_by_batch(store, 4, &[FRIDAY, MONDAY]).await;
    assert_batches_agree(&created, &by_batch);
    for created in &created {
        let batch = &created.batch;
        for entry in entries(store, &batch.merchant_id, FRIDAY).await {
            let expected = batch.status != BatchStatus::Carried
                && (batch.merchant_id != "m-1" || entry.entry.reconciled);
            assert_eq!(entry.batch_id.is_some(), expected, "{entry:?}");
        }
        // Monday's entries were past the bound.
        let later = entries(store, &batch.merchant_id, MONDAY).await;
        assert!(later.iter().all(|entry| entry.batch_id.is_none()));
    }

    // Again for the same date: the batches exist, nothing is taken twice.
    let (again, version) = new_batches(store, MONDAY, FRIDAY, "m-1", "m-3").await;
    let again = store.create_batches(&again, version, 2).await.unwrap();
    assert!(again.iter().all(|created| !created.created));
    assert_eq!(
        entries_by_batch(store, 4, &[FRIDAY, MONDAY]).await.0,
        by_batch
    );

    // m-1's entries left behind are reconciled later: the next date takes
    // them (and only them, of Friday), and Monday's.
    execute(
        &fixture.raw,
        "UPDATE clearing_entries SET reconciled = TRUE WHERE merchant_id = 'm-1'",
    )
    .await;
    let (tuesday, version) = new_batches(store, "2026-11-24", MONDAY, "m-1", "none").await;
    let next = store.create_batches(&tuesday, version, 3).await.unwrap();
    let (by_batch, listed) = entries_by_batch(store, 4, &[FRIDAY, MONDAY]).await;
    assert_eq!(listed, 120);
    assert_eq!(by_batch.get(&None), None, "every entry is settled");
    let all: Vec<_> = created.iter().chain(&next).cloned().collect();
    assert_batches_agree(&all, &by_batch);
    let listed_in_batches: usize = by_batch.values().map(Vec::len).sum();
    let counted: u64 = all
        .iter()
        .filter(|created| created.batch.status.holds_entries())
        .map(|created| created.batch.collection_count + created.batch.refund_count)
        .sum();
    assert_eq!(counted, listed_in_batches as u64, "no entry in two batches");
    let late = next
        .iter()
        .find(|created| created.batch.merchant_id == "m-1")
        .unwrap();
    assert!(
        by_batch[&Some(late.batch.id)]
            .iter()
            .any(|entry| entry.entry.business_date == FRIDAY)
    );
    assert_eq!(store.clearing_settled().await.unwrap(), 120);
}

async fn clearing_batches_of_two_runs_never_share_entries(fixture: Fixture) {
    let store = &fixture.store;
    store
        .bench_fill_clearing(60, 3, &[FRIDAY, MONDAY])
        .await
        .unwrap();
    // Two runs net the same entries before either creates its batches.
    let (first, version) = new_batches(store, MONDAY, FRIDAY, "none", "none").await;
    let (second, same) = new_batches(store, "2026-11-24", FRIDAY, "none", "none").await;
    assert_eq!(version, same);
    let created = store.create_batches(&first, version, 1).await.unwrap();
    assert!(created.iter().all(|created| created.created));
    let refused = store.create_batches(&second, same, 2).await.unwrap_err();
    assert_eq!(refused.code(), "SETTLEMENT_CONCURRENT_RUN", "{refused}");
    assert!(store.batches("2026-11-24").await.unwrap().is_empty());
    let (by_batch, _) = entries_by_batch(store, 3, &[FRIDAY, MONDAY]).await;
    assert_batches_agree(&created, &by_batch);
    assert_eq!(store.clearing_settled().await.unwrap(), 30);

    // Netted again, the second run finds only Monday's entries.
    let (second, version) = new_batches(store, "2026-11-24", MONDAY, "none", "none").await;
    assert_eq!(version, same + 1);
    let next = store.create_batches(&second, version, 2).await.unwrap();
    assert!(
        next.iter()
            .all(|created| created.batch.first_business_date == MONDAY)
    );
    let (by_batch, _) = entries_by_batch(store, 3, &[FRIDAY, MONDAY]).await;
    let all: Vec<_> = created.iter().chain(&next).cloned().collect();
    assert_batches_agree(&all, &by_batch);
    assert_eq!(store.clearing_settled().await.unwrap(), 60);
}

async fn clearing_floor_only_skips_settled_entries(fixture: Fixture) {
    let store = &fixture.store;
    store.bench_fill_clearing(60, 3, &[FRIDAY]).await.unwrap();
    // m-2 is carried: its entries stay unsettled among settled ones.
    let (batches, version) = new_batches(store, MONDAY, FRIDAY, "none", "m-2").await;
    store.create_batches(&batches, version, 1).await.unwrap();
    let high_water = store.clearing_high_water().await.unwrap().entry_id;
    let before = store.unsettled_totals(high_water).await.unwrap();
    let lowest = before
        .iter()
        .map(|group| group.first_entry_id)
        .min()
        .unwrap();
    assert_eq!(lowest, 2, "entry 1 is m-1's, settled; entry 2 is m-2's");
    store.raise_unsettled_floor(lowest).await.unwrap();
    assert_eq!(store.unsettled_totals(high_water).await.unwrap(), before);
    // The floor never falls, and past the lowest unsettled entry it hides
    // that entry (so a run raises it no further than that).
    store.raise_unsettled_floor(0).await.unwrap();
    assert_eq!(store.unsettled_totals(high_water).await.unwrap(), before);
    store.raise_unsettled_floor(lowest + 1).await.unwrap();
    let after = store.unsettled_totals(high_water).await.unwrap();
    let count = |totals: &[ClearingTotals]| totals.iter().map(|group| group.count).sum::<u64>();
    assert_eq!(count(&after) + 1, count(&before));
}
