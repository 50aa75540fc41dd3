//! The table in force and rules as written: a replaced table is seen whole
//! or not at all, and definitions read and write back unchanged.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use fees::{
    BusinessDate, FeeRequest, FeeRuleDefinition, FeeSchedule, FeeSide, FeeTable, PeriodUsage,
    TierBound,
};
use money::{Currency, Money};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

const BUILTIN: &str = include_str!("../../../config/fees.toml");
const VERSIONS: i64 = 300;
const READERS: usize = 4;
const READS_PER_READER_MAX: usize = 100_000_000;
/// Yields the writer waits at most for the readers to read between two
/// replacements.
const WAIT_YIELDS_MAX: usize = 100_000_000;

fn request(merchant_id: &str) -> FeeRequest<'_> {
    FeeRequest {
        side: FeeSide::Payee,
        merchant_id,
        product: "p",
        issuing_bank: None,
        channel: None,
        business_line: None,
        amount: Money::new(10_000, Currency::CNY),
        business_date: BusinessDate::parse("2026-03-02").unwrap(),
        usage: PeriodUsage::default(),
    }
}

/// Version `version` of a two-rule table: both rules cost `version` minor
/// units, so a reader that mixed two versions would see two prices.
fn table_version(version: i64) -> Arc<FeeSchedule> {
    let text = format!(
        "[defaults]\ncurrency = \"CNY\"\n\
         [[rules]]\nid = \"a-{version}\"\nmerchant = \"a\"\nmethod = \"fixed\"\nfee = \"{major}.{minor:02}\"\n\
         [[rules]]\nid = \"b-{version}\"\nmerchant = \"b\"\nmethod = \"fixed\"\nfee = \"{major}.{minor:02}\"",
        major = version / 100,
        minor = version % 100
    );
    Arc::new(FeeSchedule::from_toml(&text).unwrap())
}

fn price(schedule: &FeeSchedule, merchant: &str) -> (String, i64) {
    let quote = schedule.quote(&request(merchant)).unwrap();
    (quote.rule_id.to_string(), quote.fee.amount_minor())
}

#[test]
fn a_concurrent_reader_sees_the_old_table_or_the_new_never_a_mix() {
    let table = FeeTable::new((*table_version(0)).clone(), 0);
    let done = Arc::new(AtomicBool::new(false));
    let reads_total = Arc::new(AtomicUsize::new(0));
    let readers: Vec<_> = (0..READERS)
        .map(|_| {
            let table = table.clone();
            let done = Arc::clone(&done);
            let reads_total = Arc::clone(&reads_total);
            std::thread::spawn(move || {
                let mut last_version = 0;
                let mut reads = 0;
                while !done.load(Ordering::Acquire) && reads < READS_PER_READER_MAX {
                    let snapshot = table.snapshot();
                    assert!(snapshot.version >= last_version, "a table went back");
                    last_version = snapshot.version;
                    let version = snapshot.version;
                    let first = price(&snapshot.schedule, "a");
                    let second = price(&snapshot.schedule, "b");
                    assert_eq!(first, (format!("a-{version}"), version));
                    assert_eq!(second, (format!("b-{version}"), version));
                    reads += 1;
                    reads_total.fetch_add(1, Ordering::Release);
                }
                last_version
            })
        })
        .collect();
    for version in 1..=VERSIONS {
        // Let the readers read between replacements, so that reads and
        // replacements interleave.
        let seen = reads_total.load(Ordering::Acquire);
        let mut yields = 0;
        while reads_total.load(Ordering::Acquire) < seen + READERS {
            yields += 1;
            assert!(yields < WAIT_YIELDS_MAX, "the readers stopped reading");
            std::thread::yield_now();
        }
        assert!(table.replace(version, table_version(version)));
    }
    done.store(true, Ordering::Release);
    for reader in readers {
        assert!(reader.join().unwrap() <= VERSIONS);
    }
    assert_eq!(table.version(), VERSIONS);
    assert_eq!(price(&table.current(), "a").1, VERSIONS);
}

#[test]
fn a_table_taken_keeps_pricing_alike_after_a_replacement() {
    let table = FeeTable::new((*table_version(1)).clone(), 1);
    let taken = table.current();
    assert!(table.replace(2, table_version(2)));
    assert_eq!(price(&taken, "a").1, 1);
    assert_eq!(price(&table.current(), "a").1, 2);
}

#[test]
fn an_older_version_never_replaces_a_newer_one() {
    let table = FeeTable::new((*table_version(5)).clone(), 5);
    assert!(!table.replace(4, table_version(4)));
    assert!(!table.replace(5, table_version(50)));
    assert_eq!((table.version(), price(&table.current(), "a").1), (5, 5));
    assert!(table.replace(6, table_version(6)));
    assert_eq!(table.version(), 6);
}

#[test]
fn definitions_write_back_as_they_read() {
    let definitions = FeeRuleDefinition::parse_file(BUILTIN).unwrap();
    assert!(definitions.len() >= 16);
    for definition in &definitions {
        let text = definition.to_toml().unwrap();
        assert_eq!(
            &FeeRuleDefinition::from_toml(&text).unwrap(),
            definition,
            "{text}"
        );
        // Each stands alone: the file's defaults are in it.
        assert_eq!(definition.currency.as_deref(), Some("CNY"), "{text}");
        assert!(definition.rounding.is_some(), "{text}");
    }
    let tiered = definitions
        .iter()
        .find(|definition| definition.id == "m-rides-count")
        .unwrap();
    let bounds: Vec<_> = tiered
        .tiers
        .as_ref()
        .unwrap()
        .iter()
        .map(|tier| tier.up_to.clone())
        .collect();
    assert_eq!(
        bounds,
        [
            Some(TierBound::Count(1000)),
            Some(TierBound::Count(10000)),
            None
        ]
    );
    let coffee = definitions
        .iter()
        .find(|definition| definition.id == "m-coffee-instant")
        .unwrap();
    assert!(coffee.description.starts_with("Coffee Corner"));
    // The same table either way.
    let from_file = FeeSchedule::from_toml(BUILTIN).unwrap();
    let from_definitions = FeeSchedule::from_definitions(&definitions).unwrap();
    assert_eq!(from_file.rules(), from_definitions.rules());
}

#[test]
fn a_rule_given_its_own_defaults_overrides_the_files() {
    let text = "[defaults]\ncurrency = \"CNY\"\nside = \"payer\"\n\
                [[rules]]\nid = \"x\"\nside = \"payee\"\ncurrency = \"USD\"\nmethod = \"fixed\"\nfee = \"1.00\"\n\
                [[rules]]\nid = \"y\"\nmethod = \"fixed\"\nfee = \"1.00\"";
    let definitions = FeeRuleDefinition::parse_file(text).unwrap();
    let fields: Vec<_> = definitions
        .iter()
        .map(|rule| {
            (
                rule.side.as_deref(),
                rule.currency.as_deref(),
                rule.rounding.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        fields,
        [
            (Some("payee"), Some("USD"), None),
            (Some("payer"), Some("CNY"), None)
        ]
    );
    let unknown =
        FeeRuleDefinition::from_toml("id = \"z\"\nmethod = \"fixed\"\nfees = \"1\"").unwrap_err();
    assert_eq!(unknown.code(), "FEE_CONFIG_SYNTAX");
}
