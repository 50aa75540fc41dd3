//! The daily summary (日汇总) by example: fees split by collection mode,
//! refunds that return fees, batches of merchants with and without entries
//! that day, totals per currency, the text rows, and refused input.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use money::Currency;
use settlement::{
    Batch, BatchStatus, ClearingTotals, DAILY_SUMMARY_HEADER, DailyFigures, EntryKind, FeeMode,
    SettlementError, TOTAL_ROW, daily_summary,
};
use time::Date;
use time::macros::date;

use EntryKind::{Collection, Refund};
use FeeMode::{PostPaid, Prepaid, RealTime};

const DAY: Date = date!(2026 - 11 - 23);

fn totals(
    merchant_id: &str,
    currency: Currency,
    kind: EntryKind,
    fee_mode: FeeMode,
    count: u64,
    amount_minor: i64,
    fee_minor: i64,
) -> ClearingTotals {
    ClearingTotals {
        merchant_id: merchant_id.to_owned(),
        currency,
        business_date: DAY,
        kind,
        fee_mode,
        count,
        amount_minor,
        fee_minor,
        reconciled: true,
        first_entry_id: 0,
    }
}

fn batch(id: i64, merchant_id: &str, status: BatchStatus, net_minor: i64) -> Batch {
    Batch {
        id,
        merchant_id: merchant_id.to_owned(),
        currency: Currency::CNY,
        settle_date: DAY.to_string(),
        cycle: "T+1".to_owned(),
        destination: "available".to_owned(),
        status,
        collection_count: 4,
        collections_minor: net_minor + 1_000 + 30,
        refund_count: 1,
        refunds_minor: 1_000,
        fees_minor: 30,
        fees_not_deducted_minor: 0,
        net_minor,
        first_business_date: "2026-11-20".to_owned(),
        last_business_date: "2026-11-20".to_owned(),
        transfer_id: None,
        payout_payment_id: None,
        created_at: 0,
        updated_at: 0,
    }
}

fn day_totals() -> Vec<ClearingTotals> {
    vec![
        totals("m-b", Currency::CNY, Collection, RealTime, 3, 30_000, 180),
        totals("m-b", Currency::CNY, Refund, RealTime, 1, 5_000, 30),
        totals("m-b", Currency::CNY, Collection, PostPaid, 2, 4_000, 40),
        totals("m-b", Currency::CNY, Collection, Prepaid, 1, 1_000, 10),
        totals("m-b", Currency::CNY, Refund, Prepaid, 1, 500, 5),
        totals("m-a", Currency::CNY, Collection, RealTime, 1, 1_000, 6),
        totals("m-a", Currency::CNY, Refund, RealTime, 1, 1_000, 0),
        totals("m-a", Currency::USD, Collection, RealTime, 1, 2_500, 25),
    ]
}

#[test]
fn lines_split_fees_by_mode_and_carry_the_day_s_batches() {
    let batches = [
        batch(7, "m-b", BatchStatus::Posted, 9_000),
        batch(8, "m-a", BatchStatus::Carried, -6),
        batch(9, "m-c", BatchStatus::Paid, 12_000),
    ];
    let summary = daily_summary(DAY, day_totals(), &batches).unwrap();
    let keys: Vec<(&str, Currency)> = summary
        .lines
        .iter()
        .map(|line| (line.merchant_id.as_str(), line.currency))
        .collect();
    assert_eq!(
        keys,
        [
            ("m-a", Currency::CNY),
            ("m-a", Currency::USD),
            ("m-b", Currency::CNY),
            ("m-c", Currency::CNY),
        ]
    );
    let b = &summary.lines[2];
    assert_eq!(b.batch, Some((7, BatchStatus::Posted)));
    assert_eq!(
        b.figures,
        DailyFigures {
            collection_count: 6,
            collections_minor: 35_000,
            refund_count: 2,
            refunds_minor: 5_500,
            real_time_fees_minor: 150,
            post_paid_fees_minor: 40,
            prepaid_fees_minor: 5,
            net_minor: 35_000 - 5_500 - 150,
            batches: 1,
            batches_posted: 1,
            settled_entries: 5,
            settled_fees_minor: 30,
            settled_net_minor: 9_000,
        }
    );
    // A carried batch is counted, but moved nothing.
    let a = &summary.lines[0].figures;
    assert_eq!((a.net_minor, a.batches, a.batches_posted), (-6, 1, 0));
    assert_eq!((a.settled_entries, a.settled_net_minor), (0, 0));
    // A merchant with a batch of the day and no entries of it.
    let c = &summary.lines[3];
    assert_eq!(c.batch, Some((9, BatchStatus::Paid)));
    assert_eq!(c.figures.collection_count, 0);
    assert_eq!(c.figures.settled_net_minor, 12_000);

    let cny = summary.totals[&Currency::CNY];
    assert_eq!(cny.collections_minor, 36_000);
    assert_eq!(cny.refunds_minor, 6_500);
    assert_eq!(cny.real_time_fees_minor, 156);
    assert_eq!(cny.net_minor, 36_000 - 6_500 - 156);
    assert_eq!((cny.batches, cny.batches_posted), (3, 2));
    assert_eq!(cny.settled_net_minor, 21_000);
    assert_eq!(cny.settled_entries, 10);
    let usd = summary.totals[&Currency::USD];
    assert_eq!((usd.collections_minor, usd.net_minor), (2_500, 2_475));
    assert_eq!(usd.batches, 0);
}

#[test]
fn rows_are_the_lines_then_a_total_per_currency() {
    let batches = [batch(7, "m-b", BatchStatus::Posted, 9_000)];
    let summary = daily_summary(DAY, day_totals(), &batches).unwrap();
    let rows = summary.rows();
    assert_eq!(rows.len(), summary.lines.len() + 2);
    assert!(
        rows.iter()
            .all(|row| row.len() == DAILY_SUMMARY_HEADER.len())
    );
    let b = rows.iter().find(|row| row[1] == "m-b").unwrap();
    assert_eq!(
        b.join(","),
        "2026-11-23,m-b,CNY,6,350.00,2,55.00,1.50,0.40,0.05,293.50,7,POSTED,1,1,5,0.30,90.00"
    );
    let totals: Vec<String> = rows[rows.len() - 2..]
        .iter()
        .map(|row| format!("{} {} {}", row[1], row[2], row[10]))
        .collect();
    assert_eq!(
        totals,
        [
            format!("{TOTAL_ROW} CNY 293.44"),
            format!("{TOTAL_ROW} USD 24.75")
        ]
    );
}

#[test]
fn a_day_without_business_is_empty() {
    let summary = daily_summary(DAY, [], &[]).unwrap();
    assert!(summary.lines.is_empty());
    assert!(summary.totals.is_empty());
    assert!(summary.rows().is_empty());
}

#[test]
fn input_of_another_date_or_twice_is_refused() {
    let mut other_day = day_totals();
    other_day[3].business_date = date!(2026 - 11 - 22);
    let refused = daily_summary(DAY, other_day, &[]).unwrap_err();
    assert_eq!(refused.code(), "DAILY_SUMMARY_INVALID");

    let mut late = batch(7, "m-b", BatchStatus::Posted, 9_000);
    late.settle_date = "2026-11-24".to_owned();
    let refused = daily_summary(DAY, day_totals(), &[late]).unwrap_err();
    assert_eq!(refused.code(), "DAILY_SUMMARY_INVALID");

    let twice = [
        batch(7, "m-b", BatchStatus::Posted, 9_000),
        batch(8, "m-b", BatchStatus::Posted, 9_000),
    ];
    let refused = daily_summary(DAY, day_totals(), &twice).unwrap_err();
    assert_eq!(refused.code(), "DAILY_SUMMARY_INVALID");
}

#[test]
fn bad_amounts_and_overflow_are_errors() {
    let negative = [totals(
        "m-a",
        Currency::CNY,
        Collection,
        Prepaid,
        1,
        100,
        -1,
    )];
    let refused = daily_summary(DAY, negative, &[]).unwrap_err();
    assert_eq!(refused.code(), "CLEARING_INVALID");

    let huge = [
        totals("m-a", Currency::CNY, Collection, PostPaid, 1, 1, i64::MAX),
        totals("m-a", Currency::CNY, Collection, PostPaid, 1, 1, i64::MAX),
    ];
    let refused = daily_summary(DAY, huge, &[]).unwrap_err();
    assert!(
        matches!(refused, SettlementError::Overflow { .. }),
        "{refused}"
    );

    // Each line fits; their total does not.
    let lines = [
        totals("m-a", Currency::CNY, Collection, RealTime, 1, i64::MAX, 0),
        totals("m-b", Currency::CNY, Collection, RealTime, 1, i64::MAX, 0),
    ];
    let refused = daily_summary(DAY, lines, &[]).unwrap_err();
    assert!(
        matches!(&refused, SettlementError::Overflow { merchant_id, .. } if merchant_id == TOTAL_ROW),
        "{refused}"
    );
}
