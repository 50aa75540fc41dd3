#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The DataFusion plan against the reference classification, record by record.

use proptest::prelude::*;
use recon::{ChannelSide, Class, Finding, ReconRecord, RecordKind, RecordStatus, classify};
use recon_engine::{RecordFileWriter, SessionSettings, explain_matching, match_files, session};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

fn record(
    key: u32,
    status: RecordStatus,
    amount_minor: i64,
    fee_minor: Option<i64>,
) -> ReconRecord {
    ReconRecord {
        key: key.to_string(),
        kind: if key.is_multiple_of(5) {
            RecordKind::Refund
        } else {
            RecordKind::Payment
        },
        channel_transaction_id: Some(format!("T{key}")),
        amount_minor,
        currency: "CNY".to_owned(),
        fee_minor,
        status,
        occurred_at: 1_800_000_000_000_000 + i64::from(key),
        business_day: 20_779,
    }
}

fn write(path: &Path, records: &[ReconRecord]) -> PathBuf {
    let mut writer = RecordFileWriter::create(path).unwrap();
    for record in records {
        writer.push(record.clone()).unwrap();
    }
    writer.finish().unwrap();
    path.to_owned()
}

/// How a test writes its keys: as the engine's channel order ids (decimal
/// numbers, which the plan joins as `i64`), or as text.
#[derive(Debug, Clone, Copy)]
enum KeyStyle {
    Numbers,
    /// Digits with leading zeros: numbers to the eye, text to the plan.
    ZeroPadded,
    /// Numbers and text keys in the same files.
    Mixed,
}

fn styled(records: &mut [ReconRecord], style: KeyStyle) {
    for record in records {
        let number: u32 = record.key.parse().unwrap();
        record.key = match style {
            KeyStyle::Numbers => number.to_string(),
            KeyStyle::ZeroPadded => format!("{number:06}"),
            KeyStyle::Mixed if number.is_multiple_of(3) => format!("K-{number}"),
            KeyStyle::Mixed => number.to_string(),
        };
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn test_session() -> datafusion::prelude::SessionContext {
    let settings = SessionSettings {
        partitions: 3,
        batch_rows: 7,
        ..SessionSettings::default()
    };
    session(&settings).unwrap()
}

fn run(
    platform: &[ReconRecord],
    channel: &[ReconRecord],
    tolerance: i64,
) -> (recon_engine::MatchSummary, Vec<Finding>) {
    let directory = tempfile::tempdir().unwrap();
    let platform_file = write(&directory.path().join("platform.parquet"), platform);
    let channel_file = write(&directory.path().join("channel.parquet"), channel);
    let runtime = runtime();
    let ctx = test_session();
    let mut findings = Vec::new();
    let summary = runtime
        .block_on(match_files(
            &ctx,
            &[platform_file],
            &[channel_file],
            tolerance,
            |finding| findings.push(finding),
        ))
        .unwrap();
    (summary, findings)
}

/// The reference answer: classify each key with `recon::classify`.
fn expected(
    platform: &[ReconRecord],
    channel: &[ReconRecord],
    tolerance: i64,
) -> BTreeMap<String, Class> {
    let ours: HashMap<&str, &ReconRecord> = platform
        .iter()
        .map(|record| (record.key.as_str(), record))
        .collect();
    let mut theirs: HashMap<&str, Vec<&ReconRecord>> = HashMap::new();
    for record in channel {
        theirs.entry(record.key.as_str()).or_default().push(record);
    }
    let mut keys: Vec<&str> = ours.keys().chain(theirs.keys()).copied().collect();
    keys.sort_unstable();
    keys.dedup();
    keys.into_iter()
        .map(|key| {
            let side = theirs.get(key).map(|records| ChannelSide {
                count: records.len() as u64,
                record: records[0],
            });
            (
                key.to_owned(),
                classify(ours.get(key).copied(), side, tolerance),
            )
        })
        .collect()
}

fn status() -> impl Strategy<Value = RecordStatus> {
    prop_oneof![
        6 => Just(RecordStatus::Success),
        1 => Just(RecordStatus::Processing),
        1 => Just(RecordStatus::Failed),
    ]
}

prop_compose! {
    fn side()(present in prop::bool::weighted(0.8), status in status(), amount in 1i64..5, fee in prop::option::of(0i64..4), copies in prop_oneof![8 => Just(1usize), 1 => Just(2usize)])
        -> Option<(RecordStatus, i64, Option<i64>, usize)> {
        present.then_some((status, amount, fee, copies))
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn the_plan_classifies_every_key_as_the_reference_does(
        sides in prop::collection::vec((side(), side()), 1..60),
        tolerance in 0i64..2,
        style in prop_oneof![Just(KeyStyle::Numbers), Just(KeyStyle::ZeroPadded), Just(KeyStyle::Mixed)],
    ) {
        let mut platform = Vec::new();
        let mut channel = Vec::new();
        for (index, (ours, theirs)) in sides.iter().enumerate() {
            let key = index as u32 + 1;
            if let Some((status, amount, fee, _)) = ours {
                platform.push(record(key, *status, *amount, *fee));
            }
            if let Some((status, amount, fee, copies)) = theirs {
                for _ in 0..*copies {
                    channel.push(record(key, *status, *amount, *fee));
                }
            }
        }
        styled(&mut platform, style);
        styled(&mut channel, style);
        let expected = expected(&platform, &channel, tolerance);
        let (summary, findings) = run(&platform, &channel, tolerance);
        let mut counts: BTreeMap<Class, u64> = BTreeMap::new();
        for class in expected.values() {
            *counts.entry(*class).or_default() += 1;
        }
        prop_assert_eq!(&summary.keys, &counts);
        let found = classes_by_key(&findings);
        let discrepancies: BTreeMap<String, Class> = expected.into_iter().filter(|(_, class)| class.is_discrepancy()).collect();
        prop_assert_eq!(found, discrepancies);
    }
}

#[test]
fn a_finding_carries_both_sides_figures() {
    let platform = vec![
        record(1, RecordStatus::Success, 100, Some(1)),
        record(2, RecordStatus::Processing, 250, None),
        record(3, RecordStatus::Success, 300, Some(2)),
    ];
    let channel = vec![
        record(1, RecordStatus::Success, 100, Some(1)),
        record(2, RecordStatus::Success, 250, Some(2)),
        record(4, RecordStatus::Success, 400, Some(2)),
        record(4, RecordStatus::Success, 400, Some(2)),
    ];
    let (summary, findings) = run(&platform, &channel, 0);
    assert_eq!(summary.keys[&Class::Matched], 1);
    assert_eq!(summary.amounts_minor[&Class::Matched], 100);
    assert_eq!(summary.discrepancies(), 3);
    let by_key: HashMap<&str, &Finding> = findings
        .iter()
        .map(|finding| (finding.key.as_str(), finding))
        .collect();
    let completed = by_key["2"];
    assert_eq!(completed.class, Class::StatusChannelSuccess);
    assert_eq!(
        completed.platform.as_ref().unwrap().status,
        RecordStatus::Processing
    );
    assert_eq!(completed.channel.as_ref().unwrap().fee_minor, Some(2));
    assert_eq!(
        completed
            .channel
            .as_ref()
            .unwrap()
            .channel_transaction_id
            .as_deref(),
        Some("T2")
    );
    let short = by_key["3"];
    assert_eq!(short.class, Class::PlatformOnly);
    assert!(short.channel.is_none());
    assert_eq!(short.channel_count, 0);
    let twice = by_key["4"];
    assert_eq!(twice.class, Class::Duplicate);
    assert_eq!(twice.channel_count, 2);
    assert!(twice.platform.is_none());
}

#[test]
fn an_unfinished_file_leaves_nothing_behind() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("statement.parquet");
    {
        let mut writer = RecordFileWriter::create(&path).unwrap();
        writer
            .push(record(1, RecordStatus::Success, 1, None))
            .unwrap();
        // Dropped without `finish`: an import that failed half way.
    }
    assert_eq!(std::fs::read_dir(directory.path()).unwrap().count(), 0);
}

fn classes_by_key(findings: &[Finding]) -> BTreeMap<String, Class> {
    findings
        .iter()
        .map(|finding| (finding.key.clone(), finding.class))
        .collect()
}

/// The plan's text, from `EXPLAIN ANALYZE` of the first pass.
fn first_pass_plan(platform: &[ReconRecord], channel: &[ReconRecord]) -> String {
    let directory = tempfile::tempdir().unwrap();
    let platform_file = write(&directory.path().join("platform.parquet"), platform);
    let channel_file = write(&directory.path().join("channel.parquet"), channel);
    runtime()
        .block_on(explain_matching(
            &test_session(),
            &[platform_file],
            &[channel_file],
            0,
        ))
        .unwrap()
}

#[test]
fn numeric_keys_are_joined_as_numbers_and_come_back_as_the_same_text() {
    let largest = 999_999_999_999_999_999i64;
    let mut platform = vec![record(1, RecordStatus::Success, 100, Some(1))];
    let mut channel = vec![record(2, RecordStatus::Success, 200, Some(1))];
    platform[0].key = largest.to_string();
    channel[0].key = "0".to_owned();
    let plan = first_pass_plan(&platform, &channel);
    assert!(plan.contains("CAST(key@0 AS Int64)"), "{plan}");
    let (summary, findings) = run(&platform, &channel, 0);
    assert_eq!(summary.keys[&Class::PlatformOnly], 1);
    assert_eq!(summary.keys[&Class::ChannelOnly], 1);
    assert_eq!(
        classes_by_key(&findings),
        BTreeMap::from([
            ("0".to_owned(), Class::ChannelOnly),
            (largest.to_string(), Class::PlatformOnly),
        ])
    );
}

#[test]
fn one_key_that_is_not_a_number_makes_the_plan_join_text() {
    let platform = vec![
        record(1, RecordStatus::Success, 100, Some(1)),
        record(2, RecordStatus::Success, 200, Some(1)),
    ];
    let mut channel = platform.clone();
    // Nineteen digits: the writer takes at most eighteen as a number.
    channel[1].key = "1000000000000000000".to_owned();
    let plan = first_pass_plan(&platform, &channel);
    assert!(!plan.contains("AS Int64)"), "{plan}");
    let (summary, findings) = run(&platform, &channel, 0);
    assert_eq!(summary.keys[&Class::Matched], 1);
    assert_eq!(
        classes_by_key(&findings),
        BTreeMap::from([
            ("1000000000000000000".to_owned(), Class::ChannelOnly),
            ("2".to_owned(), Class::PlatformOnly),
        ])
    );
}
