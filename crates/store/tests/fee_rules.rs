//! The fee rule table contract: versioning, the audit log, refused changes
//! and concurrent writers. Every test runs against SQLite and PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use fees::{
    FeeRequest, FeeRuleChange, FeeRuleCommit, FeeRuleDefinition, FeeRuleDiff, FeeRuleEdit,
    FeeRuleHistoryQuery, FeeRuleStore, FeeSchedule, FeeSide, FeeTable, FeeTableError, PeriodUsage,
};
use money::{Currency, Money};
use store::Store;

mod common;
use common::{Fixture, reopen};

contract!(
    fee_rules_changes_are_versioned_and_audited,
    fee_rules_a_refused_change_leaves_everything_as_it_was,
    fee_rules_a_seed_writes_only_an_empty_table,
    fee_rules_concurrent_changes_all_commit_one_after_another,
    fee_rules_a_stale_commit_writes_nothing,
    fee_rules_another_process_follows_a_change,
);

const NOW: i64 = 1_700_000_000_000_000;
const CONCURRENT_CHANGES: usize = 6;

const SEED: &str = r#"
[defaults]
currency = "CNY"

[[rules]]
id = "standard"
description = "every merchant without a contract"
product = "instant_transfer"
method = "rate"
rate = "0.6%"
minimum = "0.01"

[[rules]]
id = "tiers"
merchant = "m-books"
product = "instant_transfer"
method = "amount_tiers_rate"
policy = "graduated"
tiers = [{ up_to = "2000.00", rate = "1%" }, { rate = "0.8%" }]
"#;

fn rule(text: &str) -> FeeRuleDefinition {
    FeeRuleDefinition::from_toml(text).unwrap()
}

fn fixed(id: &str, merchant: &str, fee: &str) -> FeeRuleDefinition {
    rule(&format!(
        "id = \"{id}\"\ncurrency = \"CNY\"\nmerchant = \"{merchant}\"\nproduct = \"instant_transfer\"\nmethod = \"fixed\"\nfee = \"{fee}\""
    ))
}

fn edit(change: FeeRuleChange, reason: &str) -> FeeRuleEdit {
    FeeRuleEdit {
        change,
        operator: "alice".to_owned(),
        reason: reason.to_owned(),
    }
}

fn empty_table() -> FeeTable {
    FeeTable::new(FeeSchedule::empty(), 0)
}

async fn seeded(store: &Store, table: &FeeTable) {
    let seed = FeeRuleDefinition::parse_file(SEED).unwrap();
    let outcome = fees::change_rules(store, table, &edit(FeeRuleChange::Seed(seed), "seed"), NOW)
        .await
        .unwrap();
    assert_eq!((outcome.version, outcome.rules_changed), (1, 2));
}

/// The fee of 100.00 for `merchant` in the table in force.
fn fee_minor(table: &FeeTable, merchant: &str) -> i64 {
    let request = FeeRequest {
        side: FeeSide::Payee,
        merchant_id: merchant,
        product: "instant_transfer",
        issuing_bank: None,
        channel: None,
        business_line: None,
        amount: Money::new(10_000, Currency::CNY),
        business_date: fees::BusinessDate::parse("2026-03-02").unwrap(),
        usage: PeriodUsage::default(),
    };
    table.current().quote(&request).unwrap().fee.amount_minor()
}

fn history(rule_id: Option<&str>, before: Option<i64>, limit: u32) -> FeeRuleHistoryQuery {
    FeeRuleHistoryQuery {
        rule_id: rule_id.map(str::to_owned),
        before_change_id: before,
        limit,
    }
}

async fn fee_rules_changes_are_versioned_and_audited(fixture: Fixture) {
    let store = &fixture.store;
    assert_eq!(store.fee_rule_version().await.unwrap(), 0);
    assert_eq!(store.fee_rules().await.unwrap(), Default::default());
    let table = empty_table();
    seeded(store, &table).await;
    assert_eq!(table.version(), 1);
    // The file's defaults are written into each stored rule.
    let stored = fees::read_rules(store).await.unwrap();
    assert_eq!(stored.version, 1);
    let ids: Vec<_> = stored
        .definitions
        .iter()
        .map(|rule| rule.id.as_str())
        .collect();
    assert_eq!(ids, ["standard", "tiers"]);
    assert_eq!(stored.definitions[0].currency.as_deref(), Some("CNY"));
    assert_eq!(
        stored.definitions[0].description,
        "every merchant without a contract"
    );
    assert_eq!(fee_minor(&table, "m-tea"), 60);

    let contract = fixed("m-tea-contract", "m-tea", "1.23");
    let put = |definition: &FeeRuleDefinition, reason: &str| {
        edit(FeeRuleChange::Put(Box::new(definition.clone())), reason)
    };
    let created = fees::change_rules(store, &table, &put(&contract, "contract signed"), NOW + 1)
        .await
        .unwrap();
    assert_eq!((created.version, created.rules_changed), (2, 1));
    assert_eq!(fee_minor(&table, "m-tea"), 123);
    // The same rule again changes nothing and writes no version.
    let again = fees::change_rules(store, &table, &put(&contract, "again"), NOW + 2)
        .await
        .unwrap();
    assert_eq!((again.version, again.rules_changed), (2, 0));
    let raised = fixed("m-tea-contract", "m-tea", "2.00");
    let replaced = fees::change_rules(store, &table, &put(&raised, "repriced"), NOW + 3)
        .await
        .unwrap();
    assert_eq!(replaced.version, 3);
    assert_eq!(fee_minor(&table, "m-tea"), 200);
    let removed = fees::change_rules(
        store,
        &table,
        &edit(
            FeeRuleChange::Delete("m-tea-contract".to_owned()),
            "contract ended",
        ),
        NOW + 4,
    )
    .await
    .unwrap();
    assert_eq!(removed.version, 4);
    assert_eq!(fee_minor(&table, "m-tea"), 60);

    // The history, newest first: who, when, why, before and after.
    let reopened = reopen(&fixture.raw).await;
    let log = reopened
        .fee_rule_history(&history(Some("m-tea-contract"), None, 10))
        .await
        .unwrap();
    let summary: Vec<_> = log
        .iter()
        .map(|entry| (entry.version, entry.reason.as_str(), entry.changed_at))
        .collect();
    assert_eq!(
        summary,
        [
            (4, "contract ended", NOW + 4),
            (3, "repriced", NOW + 3),
            (2, "contract signed", NOW + 1)
        ]
    );
    assert!(log.iter().all(|entry| entry.operator == "alice"));
    let text = |definition: &FeeRuleDefinition| Some(definition.to_toml().unwrap());
    assert_eq!((&log[0].before, &log[0].after), (&text(&raised), &None));
    assert_eq!(
        (&log[1].before, &log[1].after),
        (&text(&contract), &text(&raised))
    );
    assert_eq!((&log[2].before, &log[2].after), (&None, &text(&contract)));
    // Pages: every rule's changes, two at a time, by the cursor.
    let first_page = reopened
        .fee_rule_history(&history(None, None, 2))
        .await
        .unwrap();
    assert_eq!(first_page.len(), 2);
    let rest = reopened
        .fee_rule_history(&history(None, Some(first_page[1].change_id), 100))
        .await
        .unwrap();
    let versions: Vec<_> = first_page
        .iter()
        .chain(&rest)
        .map(|entry| entry.version)
        .collect();
    assert_eq!(versions, [4, 3, 2, 1, 1]);
    assert_eq!(reopened.fee_rule_version().await.unwrap(), 4);
}

async fn fee_rules_a_refused_change_leaves_everything_as_it_was(fixture: Fixture) {
    let store = &fixture.store;
    let table = empty_table();
    seeded(store, &table).await;
    let before = store.fee_rules().await.unwrap();
    let history_before = store
        .fee_rule_history(&history(None, None, 100))
        .await
        .unwrap();
    // Same side and dimensions as "standard".
    let duplicate = rule(
        "id = \"copy\"\ncurrency = \"CNY\"\nproduct = \"instant_transfer\"\nmethod = \"fixed\"\nfee = \"1.00\"",
    );
    let bad_rate = rule(
        "id = \"bad\"\ncurrency = \"CNY\"\nmerchant = \"m\"\nmethod = \"rate\"\nrate = \"120%\"",
    );
    let bad_tiers = rule(
        "id = \"steps\"\ncurrency = \"CNY\"\nmerchant = \"m\"\nmethod = \"amount_tiers_fixed\"\npolicy = \"graduated\"\ntiers = [{ up_to = \"5.00\", fee = \"1.00\" }, { up_to = \"2.00\", fee = \"2.00\" }, { fee = \"3.00\" }]",
    );
    let cases = [
        (
            FeeRuleChange::Put(Box::new(duplicate)),
            "FEE_RULE_DUPLICATE",
            "copy",
        ),
        (
            FeeRuleChange::Put(Box::new(bad_rate)),
            "FEE_CONFIG_INVALID",
            "field rate",
        ),
        (
            FeeRuleChange::Put(Box::new(bad_tiers)),
            "FEE_CONFIG_INVALID",
            "field tiers",
        ),
        (
            FeeRuleChange::Delete("nothing".to_owned()),
            "UNKNOWN_FEE_RULE",
            "nothing",
        ),
    ];
    for (change, code, named) in cases {
        let error = fees::change_rules(store, &table, &edit(change, "try"), NOW)
            .await
            .unwrap_err();
        assert_eq!(error.code(), code, "{error}");
        assert!(error.to_string().contains(named), "{error}");
    }
    let no_reason = FeeRuleEdit {
        reason: " ".to_owned(),
        ..edit(FeeRuleChange::Put(Box::new(fixed("ok", "m", "1.00"))), "")
    };
    let refused = fees::change_rules(store, &table, &no_reason, NOW).await;
    assert!(matches!(refused, Err(FeeTableError::Actor)), "{refused:?}");
    assert_eq!(store.fee_rules().await.unwrap(), before);
    assert_eq!(
        store
            .fee_rule_history(&history(None, None, 100))
            .await
            .unwrap(),
        history_before
    );
    assert_eq!(table.version(), 1);
    assert_eq!(fee_minor(&table, "m"), 60);
}

async fn fee_rules_a_seed_writes_only_an_empty_table(fixture: Fixture) {
    let store = &fixture.store;
    let table = empty_table();
    seeded(store, &table).await;
    let other_seed = vec![fixed("other", "m", "9.00")];
    let outcome = fees::change_rules(
        store,
        &table,
        &edit(FeeRuleChange::Seed(other_seed.clone()), "second start"),
        NOW,
    )
    .await
    .unwrap();
    assert_eq!((outcome.version, outcome.rules_changed), (1, 0));
    // Replacing the whole table is one version with a row per rule.
    let replaced = fees::change_rules(
        store,
        &table,
        &edit(FeeRuleChange::ReplaceAll(other_seed), "a new file"),
        NOW,
    )
    .await
    .unwrap();
    assert_eq!((replaced.version, replaced.rules_changed), (2, 3));
    let stored = fees::read_rules(store).await.unwrap();
    assert_eq!(stored.definitions, [fixed("other", "m", "9.00")]);
    assert_eq!(fee_minor(&table, "m"), 900);
}

async fn fee_rules_concurrent_changes_all_commit_one_after_another(fixture: Fixture) {
    let table = empty_table();
    seeded(&fixture.store, &table).await;
    let tasks: Vec<_> = (0..CONCURRENT_CHANGES)
        .map(|number| {
            let store = fixture.store.clone();
            let table = table.clone();
            tokio::spawn(async move {
                let definition = fixed(
                    &format!("m{number}-contract"),
                    &format!("m{number}"),
                    "1.00",
                );
                let change = edit(FeeRuleChange::Put(Box::new(definition)), "contract");
                fees::change_rules(&store, &table, &change, NOW)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut versions = Vec::new();
    for task in tasks {
        versions.push(task.await.unwrap().version);
    }
    versions.sort_unstable();
    let expected: Vec<i64> = (2..=i64::try_from(CONCURRENT_CHANGES).unwrap() + 1).collect();
    assert_eq!(versions, expected);
    let stored = fees::read_rules(&fixture.store).await.unwrap();
    assert_eq!(stored.definitions.len(), 2 + CONCURRENT_CHANGES);
    assert_eq!(table.version(), stored.version);
    for number in 0..CONCURRENT_CHANGES {
        assert_eq!(fee_minor(&table, &format!("m{number}")), 100);
    }
}

async fn fee_rules_a_stale_commit_writes_nothing(fixture: Fixture) {
    let store = &fixture.store;
    seeded(store, &empty_table()).await;
    let before = store.fee_rules().await.unwrap();
    let commit = |version: i64| FeeRuleCommit {
        version,
        operator: "bob".to_owned(),
        reason: "stale".to_owned(),
        changed_at: NOW,
        changes: vec![FeeRuleDiff {
            rule_id: "x".to_owned(),
            before: None,
            after: Some(fixed("x", "m", "1.00").to_toml().unwrap()),
        }],
    };
    // Version 1 exists; version 3 would skip one.
    for version in [1, 3] {
        assert!(!store.commit_fee_rules(&commit(version)).await.unwrap());
    }
    assert_eq!(store.fee_rules().await.unwrap(), before);
    assert!(store.commit_fee_rules(&commit(2)).await.unwrap());
    assert_eq!(store.fee_rule_version().await.unwrap(), 2);
}

async fn fee_rules_another_process_follows_a_change(fixture: Fixture) {
    let here = empty_table();
    seeded(&fixture.store, &here).await;
    let elsewhere_store = reopen(&fixture.raw).await;
    let elsewhere = empty_table();
    assert_eq!(
        fees::refresh(&elsewhere_store, &elsewhere).await.unwrap(),
        1
    );
    assert_eq!(fee_minor(&elsewhere, "m-tea"), 60);
    let change = edit(
        FeeRuleChange::Put(Box::new(fixed("m-tea-contract", "m-tea", "1.23"))),
        "signed",
    );
    fees::change_rules(&fixture.store, &here, &change, NOW)
        .await
        .unwrap();
    assert_eq!(fee_minor(&elsewhere, "m-tea"), 60, "not before it looks");
    assert_eq!(
        fees::refresh(&elsewhere_store, &elsewhere).await.unwrap(),
        2
    );
    assert_eq!(fee_minor(&elsewhere, "m-tea"), 123);
    // Nothing newer: the table in force stays the same object.
    let in_force = elsewhere.current();
    assert_eq!(
        fees::refresh(&elsewhere_store, &elsewhere).await.unwrap(),
        2
    );
    assert!(std::sync::Arc::ptr_eq(&in_force, &elsewhere.current()));
}
