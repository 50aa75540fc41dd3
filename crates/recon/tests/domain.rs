#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use proptest::prelude::*;
use recon::*;

fn record(status: RecordStatus, amount_minor: i64, fee_minor: Option<i64>) -> ReconRecord {
    ReconRecord {
        key: "1001".to_owned(),
        kind: RecordKind::Payment,
        channel_transaction_id: Some("T1".to_owned()),
        amount_minor,
        currency: "CNY".to_owned(),
        fee_minor,
        status,
        occurred_at: 0,
        business_day: 20_000,
    }
}

fn one(record: &ReconRecord) -> Option<ChannelSide<'_>> {
    Some(ChannelSide { count: 1, record })
}

use RecordStatus::{Failed, Processing, Success};

/// Ours, the channel's (with its record count), and the expected class.
type Case = (Option<ReconRecord>, Option<(u64, ReconRecord)>, Class);

#[test]
fn the_decision_table() {
    let ok = record(Success, 100, Some(1));
    let cases: Vec<Case> = vec![
        (Some(ok.clone()), Some((1, ok.clone())), Class::Matched),
        (None, Some((1, ok.clone())), Class::ChannelOnly),
        (Some(ok.clone()), None, Class::PlatformOnly),
        (Some(record(Processing, 100, None)), None, Class::NotDue),
        (Some(record(Failed, 100, None)), None, Class::NotDue),
        (None, Some((1, record(Failed, 100, None))), Class::NotDue),
        (
            Some(record(Processing, 100, None)),
            Some((1, ok.clone())),
            Class::StatusChannelSuccess,
        ),
        (
            Some(record(Failed, 100, None)),
            Some((1, ok.clone())),
            Class::StatusChannelSuccess,
        ),
        (
            Some(ok.clone()),
            Some((1, record(Failed, 100, None))),
            Class::StatusPlatformSuccess,
        ),
        (
            Some(record(Failed, 100, None)),
            Some((1, record(Failed, 90, None))),
            Class::NotDue,
        ),
        (
            Some(ok.clone()),
            Some((1, record(Success, 101, Some(1)))),
            Class::AmountChannelHigher,
        ),
        (
            Some(ok.clone()),
            Some((1, record(Success, 99, Some(1)))),
            Class::AmountPlatformHigher,
        ),
        (
            Some(ok.clone()),
            Some((1, record(Success, 100, Some(2)))),
            Class::Matched,
        ),
        (
            Some(ok.clone()),
            Some((1, record(Success, 100, Some(3)))),
            Class::FeeMismatch,
        ),
        (
            Some(record(Success, 100, None)),
            Some((1, record(Success, 100, Some(9)))),
            Class::Matched,
        ),
        (Some(ok.clone()), Some((2, ok.clone())), Class::Duplicate),
        (None, Some((3, ok.clone())), Class::Duplicate),
    ];
    for (index, (ours, theirs, expected)) in cases.iter().enumerate() {
        let channel = theirs.as_ref().map(|(count, record)| ChannelSide {
            count: *count,
            record,
        });
        assert_eq!(
            classify(ours.as_ref(), channel, 1),
            *expected,
            "case {index}"
        );
    }
    let mut dollars = ok.clone();
    dollars.currency = "USD".to_owned();
    assert_eq!(
        classify(Some(&ok), one(&dollars), 1),
        Class::CurrencyMismatch
    );
}

#[test]
fn codes_round_trip_and_labels_are_distinct() {
    let mut labels = std::collections::HashSet::new();
    for class in Class::ALL {
        assert_eq!(Class::from_code(class.code()), Some(*class));
        assert_eq!(Class::parse(class.as_str()), Some(*class));
        assert!(labels.insert(class.label_zh()));
    }
    assert!(!Class::Matched.is_discrepancy());
    assert!(Class::ChannelOnly.is_discrepancy());
}

fn shipped_rules() -> ReconRules {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../config/recon.toml"
    ))
    .unwrap();
    ReconRules::parse(&text).unwrap()
}

fn attributes(class: Class) -> Attributes {
    Attributes {
        class,
        kind: RecordKind::Payment,
        platform_status: Some(Success),
        near_cutoff: false,
        duplicate_of_success: false,
        age_days: 0,
    }
}

#[test]
fn the_shipped_rules_give_each_case_its_code() {
    let rules = shipped_rules();
    let processing = Attributes {
        platform_status: Some(Processing),
        ..attributes(Class::StatusChannelSuccess)
    };
    assert_eq!(rules.verdict(&processing).code, "R101");
    assert_eq!(
        rules.verdict(&processing).treatment,
        Treatment::CompleteOrder
    );
    let duplicate = Attributes {
        platform_status: Some(Failed),
        duplicate_of_success: true,
        ..attributes(Class::StatusChannelSuccess)
    };
    assert_eq!(
        rules.verdict(&duplicate).code,
        "R102",
        "the specific rule comes first"
    );
    let failed = Attributes {
        platform_status: Some(Failed),
        ..attributes(Class::StatusChannelSuccess)
    };
    assert_eq!(rules.verdict(&failed).code, "R103");
    let near = Attributes {
        near_cutoff: true,
        ..attributes(Class::PlatformOnly)
    };
    assert_eq!(rules.verdict(&near).code, "R201");
    assert_eq!(rules.verdict(&attributes(Class::PlatformOnly)).code, "R202");
    assert_eq!(
        rules.verdict(&attributes(Class::ChannelOnly)).treatment,
        Treatment::Suspense
    );
    for class in Class::ALL.iter().filter(|class| class.is_discrepancy()) {
        assert_ne!(
            rules.verdict(&attributes(*class)).code,
            FALLBACK_CODE,
            "{class:?} has a rule"
        );
    }
    let channel = &rules.channels["simbank"];
    assert_eq!(channel.utc_offset_minutes, 480);
    assert_eq!(channel.cutoff_minute_of_day, 23 * 60);
}

#[test]
fn a_class_without_a_rule_escalates() {
    let rules = ReconRules::parse("[settings]\n").unwrap();
    let verdict = rules.verdict(&attributes(Class::FeeMismatch));
    assert_eq!(verdict.code, FALLBACK_CODE);
    assert_eq!(verdict.treatment, Treatment::Escalate);
}

#[test]
fn a_bad_rule_is_named() {
    let text = "[settings]\n[[codes]]\ncode = \"X1\"\nclass = \"MATCHED\"\ntreatment = \"wait\"\n";
    let error = ReconRules::parse(text).unwrap_err();
    assert_eq!(
        error,
        RulesError::Invalid {
            rule: "X1".to_owned(),
            field: "class",
            value: "MATCHED".to_owned()
        }
    );
    let text =
        "[settings]\n[[codes]]\ncode = \"X1\"\nclass = \"DUPLICATE\"\ntreatment = \"shrug\"\n";
    assert!(
        ReconRules::parse(text)
            .unwrap_err()
            .to_string()
            .contains("treatment")
    );
    let twice = "[settings]\n[[codes]]\ncode = \"X1\"\nclass = \"DUPLICATE\"\ntreatment = \"wait\"\n\
                 [[codes]]\ncode = \"X1\"\nclass = \"FEE_MISMATCH\"\ntreatment = \"wait\"\n";
    assert_eq!(
        ReconRules::parse(twice).unwrap_err(),
        RulesError::DuplicateCode("X1".to_owned())
    );
    let offset = "[settings]\n[channels.x]\nutc_offset = \"08:00\"\ncutoff = \"23:00\"\nstatement_format = \"wechat\"\n";
    assert!(
        ReconRules::parse(offset)
            .unwrap_err()
            .to_string()
            .contains("utc_offset")
    );
}

const MINUTE: i64 = 60_000_000;
/// 2026-11-22 00:00 UTC+8, in microseconds.
const MIDNIGHT_LOCAL: i64 = (20_779 * 1_440 - 8 * 60) * MINUTE;

#[test]
fn business_days_cut_over_at_the_cutoff() {
    let evening = ChannelSettings {
        utc_offset_minutes: 480,
        cutoff_minute_of_day: 23 * 60,
        statement_format: "wechat".to_owned(),
    };
    let day = 20_779;
    assert_eq!(evening.business_day(MIDNIGHT_LOCAL), day);
    assert_eq!(
        evening.business_day(MIDNIGHT_LOCAL + (23 * 60 - 1) * MINUTE),
        day
    );
    assert_eq!(
        evening.business_day(MIDNIGHT_LOCAL + 23 * 60 * MINUTE),
        day + 1
    );
    assert_eq!(
        evening.business_day(MIDNIGHT_LOCAL - 60 * MINUTE),
        day,
        "23:00 the evening before"
    );
    assert_eq!(
        evening.business_day(MIDNIGHT_LOCAL - 60 * MINUTE - 1),
        day - 1
    );
    assert_eq!(
        evening.minutes_before_cutoff(MIDNIGHT_LOCAL + (22 * 60 + 40) * MINUTE),
        20
    );
    let midnight = ChannelSettings {
        cutoff_minute_of_day: 0,
        ..evening
    };
    assert_eq!(midnight.business_day(MIDNIGHT_LOCAL), day);
    assert_eq!(midnight.business_day(MIDNIGHT_LOCAL - 1), day - 1);
    assert_eq!(midnight.business_day(MIDNIGHT_LOCAL + 1_439 * MINUTE), day);
}

proptest! {
    /// Swapping which side is "higher" swaps the direction of the code, and a
    /// discrepancy is never reported for identical successful records.
    #[test]
    fn directions_are_symmetric(ours in 1i64..10_000, theirs in 1i64..10_000) {
        let platform = record(Success, ours, None);
        let channel = record(Success, theirs, None);
        let forward = classify(Some(&platform), one(&channel), 0);
        let backward = classify(Some(&channel), one(&platform), 0);
        let expected = match ours.cmp(&theirs) {
            std::cmp::Ordering::Less => (Class::AmountChannelHigher, Class::AmountPlatformHigher),
            std::cmp::Ordering::Greater => (Class::AmountPlatformHigher, Class::AmountChannelHigher),
            std::cmp::Ordering::Equal => (Class::Matched, Class::Matched),
        };
        prop_assert_eq!((forward, backward), expected);
    }
}

#[test]
fn a_business_day_starts_where_the_previous_one_ends() {
    for cutoff in [0, 3 * 60, 23 * 60] {
        let channel = ChannelSettings {
            utc_offset_minutes: 480,
            cutoff_minute_of_day: cutoff,
            statement_format: "wechat".to_owned(),
        };
        let start = channel.business_day_start(20_779);
        assert_eq!(channel.business_day(start), 20_779, "cutoff {cutoff}");
        assert_eq!(channel.business_day(start - 1), 20_778, "cutoff {cutoff}");
        assert_eq!(channel.business_day_start(20_780) - start, 1_440 * MINUTE);
    }
}

#[test]
fn days_are_written_and_read_back() {
    assert_eq!(parse_day("2026-11-22"), Some(20_779));
    assert_eq!(parse_day("20261122"), Some(20_779));
    assert_eq!(format_day(20_779), "2026-11-22");
    assert_eq!(format_day_compact(20_779), "20261122");
    assert_eq!(parse_day("2026-02-30"), None);
    assert_eq!(parse_day("yesterday"), None);
}

fn figures(status: RecordStatus, amount_minor: i64, fee_minor: i64) -> SideFigures {
    SideFigures {
        amount_minor,
        currency: "CNY".to_owned(),
        fee_minor: Some(fee_minor),
        status,
        channel_transaction_id: Some("T1".to_owned()),
        occurred_at: 0,
        business_day: 20_000,
    }
}

fn discrepancy(class: Class, ours: SideFigures, theirs: Option<SideFigures>) -> Discrepancy {
    Discrepancy {
        id: 1,
        channel: "simbank".to_owned(),
        key: "1001".to_owned(),
        kind: RecordKind::Payment,
        class,
        error_code: "R1".to_owned(),
        treatment: Treatment::Wait,
        status: DiscrepancyStatus::Open,
        first_day: 20_000,
        last_day: 20_000,
        channel_count: 1,
        platform: Some(ours),
        channel_side: theirs,
        created_at: 0,
        updated_at: 0,
    }
}

#[test]
fn only_treatments_that_leave_both_sides_agreeing_confirm_an_entry() {
    let status_only = discrepancy(
        Class::StatusChannelSuccess,
        figures(Processing, 100, 1),
        Some(figures(Success, 100, 1)),
    );
    let status_and_amount = discrepancy(
        Class::StatusChannelSuccess,
        figures(Processing, 100, 1),
        Some(figures(Success, 120, 1)),
    );
    let fee = discrepancy(
        Class::FeeMismatch,
        figures(Success, 100, 1),
        Some(figures(Success, 100, 9)),
    );
    let amount = discrepancy(
        Class::AmountChannelHigher,
        figures(Success, 100, 1),
        Some(figures(Success, 120, 1)),
    );
    let platform_only = discrepancy(Class::PlatformOnly, figures(Success, 100, 1), None);
    let cases = [
        (&status_only, Treatment::CompleteOrder, true),
        (&status_only, Treatment::Refund, true),
        (&status_only, Treatment::Escalate, false),
        (&status_only, Treatment::Wait, false),
        (&status_and_amount, Treatment::CompleteOrder, false),
        (&fee, Treatment::Adjust, true),
        (&fee, Treatment::Suspense, false),
        (&amount, Treatment::Adjust, false),
        (&platform_only, Treatment::CompleteOrder, false),
        (&platform_only, Treatment::Adjust, false),
    ];
    for (discrepancy, treatment, confirms) in cases {
        assert_eq!(
            discrepancy.confirmed_by(treatment),
            confirms,
            "{} by {}",
            discrepancy.class.as_str(),
            treatment.as_str()
        );
    }
}

#[test]
fn internal_codes_and_key_patterns_are_distinct() {
    for code in InternalCode::ALL {
        assert_eq!(InternalCode::parse(code.as_str()), Some(*code));
        assert!(!code.description().is_empty());
    }
    for subject in Subject::ALL {
        assert_eq!(Subject::parse(subject.as_str()), Some(*subject));
    }
    // No pattern is the start of another's key: `{pattern}-` decides.
    let patterns: Vec<String> = KEY_PATTERNS_BY_ID
        .iter()
        .map(|(pattern, _)| *pattern)
        .chain(KEY_PATTERNS_BY_DISCREPANCY)
        .map(|pattern| format!("{pattern}-"))
        .chain([MANUAL_KEY_PREFIX.to_owned()])
        .collect();
    for (index, pattern) in patterns.iter().enumerate() {
        for (other_index, other) in patterns.iter().enumerate() {
            assert!(
                index == other_index || !other.starts_with(pattern.as_str()),
                "{pattern} is a prefix of {other}"
            );
        }
    }
    // Reconciliation's treatment keys are named after the treatments.
    assert_eq!(
        KEY_PATTERNS_BY_DISCREPANCY,
        [
            format!("recon-{}", Treatment::Suspense.as_str()).as_str(),
            format!("recon-{}", Treatment::Adjust.as_str()).as_str()
        ]
    );
}

#[test]
fn keys_are_read_as_the_internal_check_reads_them() {
    let cases: [(&str, Option<&str>); 14] = [
        ("hold-12", Some("hold")),
        ("post-1", Some("post")),
        ("collect-999999999999999999", Some("collect")),
        ("collect-9999999999999999999", None),
        ("refund-part-3", Some("refund-part")),
        ("refund-void-3", Some("refund-void")),
        ("settle-7", Some("settle")),
        ("expire-7", Some("expire")),
        ("recon-suspense-simbank-EXT-1", Some("recon-suspense")),
        ("recon-adjust-simbank-42", Some("recon-adjust")),
        ("hold-007", None),
        ("hold-1-post", None),
        ("hold-", None),
        ("manual-hold-1", None),
    ];
    for (key, pattern) in cases {
        assert_eq!(key_pattern(key), pattern, "{key}");
        assert_eq!(is_reserved_key(key), pattern.is_some(), "{key}");
    }
    for key in ["refund-12", "topup-1", "fund-0", "recon-other-1", "holdx-1"] {
        assert!(!is_reserved_key(key), "{key}");
    }
}
