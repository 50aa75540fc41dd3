//! Property tests: netting equals the sums taken directly over the entries,
//! in `i128`, however the store grouped them; postings balance; decisions
//! follow the sign of the net; and adding business days lands on a
//! business day with exactly the right number of business days between.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use money::Currency;
use proptest::prelude::*;
use settlement::{
    Calendar, ClearingTotals, Decision, EntryKind, FeeMode, SettlementError, decide, net,
};
use std::collections::BTreeMap;
use std::path::Path;
use time::{Date, Duration};

const MERCHANTS: [&str; 4] = ["m-a", "m-b", "m-c", "m-d"];
const CURRENCIES: [Currency; 2] = [Currency::CNY, Currency::USD];

/// One clearing entry, before the store groups it.
#[derive(Debug, Clone)]
struct Entry {
    merchant: usize,
    currency: usize,
    day: i64,
    kind: EntryKind,
    fee_mode: FeeMode,
    amount_minor: i64,
    fee_minor: i64,
    /// Which of several partial groups the store puts this entry in: the
    /// same (merchant, currency, date, kind, mode) may arrive split.
    group: u8,
}

fn entry(amount_max: i64) -> impl Strategy<Value = Entry> {
    (
        0..MERCHANTS.len(),
        0..CURRENCIES.len(),
        0i64..40,
        prop::sample::select(EntryKind::ALL.to_vec()),
        prop::sample::select(FeeMode::ALL.to_vec()),
        0..=amount_max,
        0..=amount_max / 100,
        0u8..4,
    )
        .prop_map(
            |(merchant, currency, day, kind, fee_mode, amount_minor, fee_minor, group)| Entry {
                merchant,
                currency,
                day,
                kind,
                fee_mode,
                amount_minor,
                fee_minor,
                group,
            },
        )
}

fn base_date() -> Date {
    Date::from_calendar_date(2026, time::Month::January, 20).unwrap()
}

/// Groups entries the way a `GROUP BY` would, each entry in its random
/// partial group, and returns the groups in an order set by `reverse`.
fn aggregate(entries: &[Entry], reverse: bool) -> Vec<ClearingTotals> {
    type Key = (u8, usize, usize, i64, EntryKind, FeeMode);
    let mut groups: BTreeMap<Key, (u64, i64, i64)> = BTreeMap::new();
    for entry in entries {
        let key = (
            entry.group,
            entry.merchant,
            entry.currency,
            entry.day,
            entry.kind,
            entry.fee_mode,
        );
        let sums = groups.entry(key).or_default();
        sums.0 += 1;
        // Test amounts are small enough that a group's sums fit.
        sums.1 += entry.amount_minor;
        sums.2 += entry.fee_minor;
    }
    let mut totals: Vec<ClearingTotals> = groups
        .into_iter()
        .map(
            |((_, merchant, currency, day, kind, fee_mode), (count, amount_minor, fee_minor))| {
                ClearingTotals {
                    merchant_id: MERCHANTS[merchant].to_owned(),
                    currency: CURRENCIES[currency],
                    business_date: base_date() + Duration::days(day),
                    kind,
                    fee_mode,
                    count,
                    amount_minor,
                    fee_minor,
                    reconciled: true,
                    first_entry_id: 0,
                }
            },
        )
        .collect();
    if reverse {
        totals.reverse();
    }
    totals
}

/// What one line must hold, computed on the entries themselves.
#[derive(Debug, Default, PartialEq)]
struct Expected {
    collection_count: u64,
    refund_count: u64,
    collections: i128,
    refunds: i128,
    fees: i128,
    fees_not_deducted: i128,
    first_day: i64,
    last_day: i64,
}

fn expected(entries: &[Entry]) -> BTreeMap<(String, Currency), Expected> {
    let mut lines: BTreeMap<(String, Currency), Expected> = BTreeMap::new();
    for entry in entries {
        let key = (
            MERCHANTS[entry.merchant].to_owned(),
            CURRENCIES[entry.currency],
        );
        let line = lines.entry(key).or_insert(Expected {
            first_day: entry.day,
            last_day: entry.day,
            ..Expected::default()
        });
        line.first_day = line.first_day.min(entry.day);
        line.last_day = line.last_day.max(entry.day);
        let signed_fee = match entry.kind {
            EntryKind::Collection => {
                line.collection_count += 1;
                line.collections += i128::from(entry.amount_minor);
                i128::from(entry.fee_minor)
            }
            EntryKind::Refund => {
                line.refund_count += 1;
                line.refunds += i128::from(entry.amount_minor);
                -i128::from(entry.fee_minor)
            }
        };
        if entry.fee_mode == FeeMode::RealTime {
            line.fees += signed_fee;
        } else {
            line.fees_not_deducted += signed_fee;
        }
    }
    lines
}

fn fits(value: i128) -> bool {
    i64::try_from(value).is_ok()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn netting_equals_the_direct_sums(
        entries in prop::collection::vec(entry(1_000_000_000_000), 0..80),
        reverse in any::<bool>(),
        minimum_minor in -10i64..10_000_000,
    ) {
        let lines = net(aggregate(&entries, reverse)).unwrap();
        let expected = expected(&entries);
        let keys: Vec<(String, Currency)> = lines
            .iter()
            .map(|line| (line.merchant_id.clone(), line.currency))
            .collect();
        // One line per (merchant, currency) present, sorted.
        prop_assert_eq!(&keys, &expected.keys().cloned().collect::<Vec<_>>());
        for line in &lines {
            let want = &expected[&(line.merchant_id.clone(), line.currency)];
            prop_assert_eq!(line.collection_count, want.collection_count);
            prop_assert_eq!(line.refund_count, want.refund_count);
            prop_assert_eq!(i128::from(line.collections_minor), want.collections);
            prop_assert_eq!(i128::from(line.refunds_minor), want.refunds);
            prop_assert_eq!(i128::from(line.fees_minor), want.fees);
            prop_assert_eq!(i128::from(line.fees_not_deducted_minor), want.fees_not_deducted);
            prop_assert_eq!(
                i128::from(line.net_minor),
                want.collections - want.refunds - want.fees
            );
            prop_assert_eq!(line.first_business_date, base_date() + Duration::days(want.first_day));
            prop_assert_eq!(line.last_business_date, base_date() + Duration::days(want.last_day));

            let posting = line.posting().unwrap();
            prop_assert_eq!(
                i128::from(posting.pending_debit_minor),
                i128::from(posting.income_minor) + i128::from(posting.available_credit_minor)
            );
            prop_assert_eq!(i128::from(posting.pending_debit_minor), want.collections - want.refunds);
            prop_assert_eq!(posting.income_minor, line.fees_minor);
            prop_assert_eq!(posting.available_credit_minor, line.net_minor);

            let decision = decide(line, minimum_minor);
            let consistent = match decision {
                Decision::CarryNegative => line.net_minor < 0,
                Decision::Nothing => line.net_minor == 0,
                Decision::BelowMinimum => 0 < line.net_minor && line.net_minor < minimum_minor,
                Decision::Pay => line.net_minor > 0 && line.net_minor >= minimum_minor,
            };
            prop_assert!(consistent, "{:?} for net {}", decision, line.net_minor);
        }
    }

    #[test]
    fn huge_sums_are_exact_or_overflow_never_wrap(
        entries in prop::collection::vec(entry(i64::MAX / 3), 0..12),
    ) {
        // Each entry alone in its group, so that the test's own grouping
        // cannot overflow.
        let entries: Vec<Entry> = entries
            .into_iter()
            .enumerate()
            .map(|(index, mut entry)| {
                entry.day = i64::try_from(index).unwrap();
                entry
            })
            .collect();
        let expected = expected(&entries);
        let all_fit = expected.values().all(|want| {
            [
                want.collections,
                want.refunds,
                want.fees,
                want.fees_not_deducted,
                want.collections - want.refunds - want.fees,
            ]
            .into_iter()
            .all(fits)
        });
        match net(aggregate(&entries, false)) {
            Ok(lines) => {
                prop_assert!(all_fit);
                for line in &lines {
                    let want = &expected[&(line.merchant_id.clone(), line.currency)];
                    prop_assert_eq!(
                        i128::from(line.net_minor),
                        want.collections - want.refunds - want.fees
                    );
                    prop_assert!(line.posting().is_ok());
                }
            }
            Err(error) => {
                prop_assert!(!all_fit, "{:?}", error);
                prop_assert!(matches!(error, SettlementError::Overflow { .. }), "{:?}", error);
            }
        }
    }
}

fn calendar_2026() -> Calendar {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/calendar.toml");
    Calendar::load(&path).unwrap()
}

/// Business days strictly between `start` and `end`, by a plain scan.
fn business_days_between(calendar: &Calendar, start: Date, end: Date) -> u32 {
    let mut count = 0;
    let mut day = start + Duration::days(1);
    while day < end {
        count += u32::from(calendar.is_business_day(day).unwrap());
        day += Duration::days(1);
    }
    count
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn adding_business_days_counts_them_exactly(ordinal in 1u16..=365, n in 0u32..60) {
        let calendar = calendar_2026();
        let start = Date::from_ordinal_date(2026, ordinal).unwrap();
        let last = Date::from_calendar_date(2026, time::Month::December, 31).unwrap();
        match calendar.add_business_days(start, n) {
            Ok(due) => {
                prop_assert!(calendar.is_business_day(due).unwrap());
                if n == 0 {
                    prop_assert!(due >= start);
                    prop_assert!(calendar.is_business_day(start).unwrap() == (due == start));
                    if due > start {
                        prop_assert_eq!(business_days_between(&calendar, start, due), 0);
                    }
                } else {
                    prop_assert!(due > start);
                    prop_assert_eq!(business_days_between(&calendar, start, due), n - 1);
                }
            }
            Err(error) => {
                // Only when 2026 runs out of business days first.
                prop_assert!(
                    matches!(error, SettlementError::OutsideCalendar { date } if date.year() == 2027),
                    "{:?}", error
                );
                let left = business_days_between(&calendar, start, last)
                    + u32::from(last > start && calendar.is_business_day(last).unwrap());
                let needed = n.max(1);
                let available = if n == 0 {
                    left + u32::from(calendar.is_business_day(start).unwrap())
                } else {
                    left
                };
                prop_assert!(available < needed, "{} available, {} needed", available, needed);
            }
        }
    }
}
