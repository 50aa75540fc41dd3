//! The store contract: every test runs against SQLite and PostgreSQL.
//!
//! PostgreSQL runs when `PAYCORE_TEST_POSTGRES_URL` is set (CI sets it); a
//! set but unreachable URL fails the test. Without it, under `CI`, the
//! PostgreSQL half fails rather than skip.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ledger::{
    AccountKind, BatchItem, LedgerError, LedgerStore, Leg, NewAccount, Operation, Overdraft,
    OwnerKind, Side, StatementQuery, StoreError, Transfer, TransferMode, TransferStatus,
};
use money::Currency;
use std::sync::Arc;
use store::{Ledger, LedgerOptions, Store};

mod common;
use common::{Fixture, execute};

contract!(
    accounts_open_once_and_read_back,
    transfer_moves_balances_and_writes_statement,
    refused_transfer_changes_nothing,
    retried_key_returns_first_result_and_conflict_names_field,
    pending_posts_in_part_and_releases_the_rest,
    pending_void_and_expiry,
    reversal_restores_balances_once,
    freeze_holds_available_money,
    linked_chain_fails_together,
    balance_at_past_instants,
    check_finds_tampering,
    concurrent_same_key_posts_once,
    group_commit_keeps_every_result,
);

const T0: i64 = 1_700_000_000_000_000;

fn cny(amount_minor: i64) -> (i64, Currency) {
    (amount_minor, Currency::CNY)
}

fn new_account(kind: AccountKind, owner_id: &str, overdraft: Overdraft) -> NewAccount {
    NewAccount {
        subject_code: match kind {
            AccountKind::Equity => "4001",
            AccountKind::PlatformIncome => "6001",
            AccountKind::ChannelClearing => "1002",
            _ => "2241",
        }
        .to_owned(),
        subject_class: kind.default_subject_class(),
        kind,
        owner_kind: match kind {
            AccountKind::MemberCash | AccountKind::MemberBonus => OwnerKind::Member,
            AccountKind::ChannelClearing => OwnerKind::Channel,
            AccountKind::Equity | AccountKind::PlatformIncome => OwnerKind::Platform,
            _ => OwnerKind::Merchant,
        },
        owner_id: owner_id.to_owned(),
        currency: Currency::CNY,
        overdraft,
    }
}

/// An equity account that may go negative without limit, and two members.
async fn three_accounts(store: &Store) -> (i64, i64, i64) {
    let equity = store
        .create_account(&new_account(
            AccountKind::Equity,
            "platform",
            Overdraft::Unlimited,
        ))
        .await
        .unwrap();
    let alice = store
        .create_account(&new_account(
            AccountKind::MemberCash,
            "alice",
            Overdraft::default(),
        ))
        .await
        .unwrap();
    let bob = store
        .create_account(&new_account(
            AccountKind::MemberCash,
            "bob",
            Overdraft::default(),
        ))
        .await
        .unwrap();
    (equity.id, alice.id, bob.id)
}

fn transfer(key: &str, debit: i64, credit: i64, amount_minor: i64) -> Operation {
    let (amount_minor, currency) = cny(amount_minor);
    Operation::Transfer {
        key: key.to_owned(),
        legs: vec![
            Leg {
                account_id: debit,
                side: Side::Debit,
                amount_minor,
                currency,
            },
            Leg {
                account_id: credit,
                side: Side::Credit,
                amount_minor,
                currency,
            },
        ],
        mode: TransferMode::Posted,
        description: format!("test {key}"),
    }
}

fn pending(
    key: &str,
    debit: i64,
    credit: i64,
    amount_minor: i64,
    timeout_seconds: Option<u64>,
) -> Operation {
    match transfer(key, debit, credit, amount_minor) {
        Operation::Transfer {
            key,
            legs,
            description,
            ..
        } => Operation::Transfer {
            key,
            legs,
            mode: TransferMode::Pending { timeout_seconds },
            description,
        },
        other => other,
    }
}

async fn commit_one(
    store: &Store,
    operation: Operation,
    now: i64,
) -> Result<Transfer, LedgerError> {
    let mut results = store
        .commit_batch(&[BatchItem::single(operation)], now)
        .await
        .unwrap();
    assert_eq!(results.len(), 1);
    results.remove(0)
}

async fn available(store: &Store, account_id: i64) -> i64 {
    let account = store.account(account_id).await.unwrap().unwrap();
    account.balance().unwrap().available_minor
}

async fn ledger_balance(store: &Store, account_id: i64) -> i64 {
    let account = store.account(account_id).await.unwrap().unwrap();
    account.balance().unwrap().ledger_minor
}

async fn assert_sound(store: &Store) {
    let report = store.check().await.unwrap();
    assert!(report.is_sound(), "{:?}", report.violations);
}

async fn accounts_open_once_and_read_back(fixture: Fixture) {
    let store = &fixture.store;
    let request = new_account(AccountKind::MerchantPending, "m-1", Overdraft::Limit(500));
    let account = store.create_account(&request).await.unwrap();
    let read = store.account(account.id).await.unwrap().unwrap();
    assert_eq!(read, account);
    assert_eq!(read.overdraft, Overdraft::Limit(500));
    assert_eq!(read.kind, AccountKind::MerchantPending);
    let again = store.create_account(&request).await.unwrap_err();
    assert!(
        matches!(again, StoreError::Account(ledger::AccountError::AlreadyExists(id)) if id == account.id),
        "{again:?}"
    );
    let mut invalid = request.clone();
    invalid.owner_id = String::new();
    assert!(matches!(
        store.create_account(&invalid).await,
        Err(StoreError::Account(_))
    ));
    assert!(store.account(account.id + 1000).await.unwrap().is_none());
}

async fn transfer_moves_balances_and_writes_statement(fixture: Fixture) {
    let store = &fixture.store;
    let (equity, alice, bob) = three_accounts(store).await;
    let funded = commit_one(store, transfer("fund", equity, alice, 10_000), T0)
        .await
        .unwrap();
    assert_eq!(funded.status, TransferStatus::Posted);
    assert_eq!(funded.entries.len(), 2);
    commit_one(store, transfer("pay", alice, bob, 2_500), T0 + 1)
        .await
        .unwrap();
    assert_eq!(ledger_balance(store, alice).await, 7_500);
    assert_eq!(ledger_balance(store, bob).await, 2_500);
    // Equity is credit-normal: debited 100.00, it stands at minus 100.00.
    assert_eq!(ledger_balance(store, equity).await, -10_000);
    let statement = store
        .statement(StatementQuery {
            account_id: alice,
            from: T0,
            to: T0 + 10,
            after_transfer_id: 0,
            limit: 100,
        })
        .await
        .unwrap();
    assert_eq!(statement.len(), 2);
    assert_eq!(statement[0].side, Side::Credit);
    assert_eq!(statement[0].balance_after_minor, 10_000);
    assert_eq!(statement[0].counterparty_account_ids, vec![equity]);
    assert_eq!(statement[1].side, Side::Debit);
    assert_eq!(statement[1].amount_minor, 2_500);
    assert_eq!(statement[1].balance_after_minor, 7_500);
    assert_eq!(statement[1].counterparty_account_ids, vec![bob]);
    assert_eq!(statement[1].description, "test pay");
    let stored = store.transfer(funded.id).await.unwrap().unwrap();
    assert_eq!(stored, funded);
    assert_sound(store).await;
}

async fn refused_transfer_changes_nothing(fixture: Fixture) {
    let store = &fixture.store;
    let (equity, alice, bob) = three_accounts(store).await;
    commit_one(store, transfer("fund", equity, alice, 1_000), T0)
        .await
        .unwrap();
    let error = commit_one(store, transfer("too-much", alice, bob, 1_001), T0 + 1)
        .await
        .unwrap_err();
    assert_eq!(error.code(), "INSUFFICIENT_FUNDS");
    let mut unbalanced = transfer("unbalanced", alice, bob, 10);
    if let Operation::Transfer { legs, .. } = &mut unbalanced {
        legs[1].amount_minor = 11;
    }
    let error = commit_one(store, unbalanced, T0 + 2).await.unwrap_err();
    assert_eq!(error.code(), "UNBALANCED_TRANSFER");
    let missing = commit_one(store, transfer("missing", alice, 999_999, 1), T0 + 3)
        .await
        .unwrap_err();
    assert_eq!(missing.code(), "ACCOUNT_NOT_FOUND");
    assert_eq!(ledger_balance(store, alice).await, 1_000);
    assert_eq!(ledger_balance(store, bob).await, 0);
    // A refused key was not used: the same key may now succeed.
    commit_one(store, transfer("too-much", alice, bob, 1_000), T0 + 4)
        .await
        .unwrap();
    assert_sound(store).await;
}

async fn retried_key_returns_first_result_and_conflict_names_field(fixture: Fixture) {
    let store = &fixture.store;
    let (equity, alice, _) = three_accounts(store).await;
    let first = commit_one(store, transfer("once", equity, alice, 700), T0)
        .await
        .unwrap();
    let retried = commit_one(store, transfer("once", equity, alice, 700), T0 + 5)
        .await
        .unwrap();
    assert_eq!(retried, first);
    assert_eq!(ledger_balance(store, alice).await, 700);
    let conflict = commit_one(store, transfer("once", equity, alice, 701), T0 + 6)
        .await
        .unwrap_err();
    assert_eq!(
        conflict,
        LedgerError::DuplicateKeyConflict {
            field: "legs[0].amount_minor".to_owned()
        }
    );
    let other_kind = commit_one(
        store,
        Operation::Freeze {
            key: "once".to_owned(),
            account_id: alice,
            amount_minor: 1,
            description: String::new(),
        },
        T0 + 7,
    )
    .await
    .unwrap_err();
    assert_eq!(
        other_kind,
        LedgerError::DuplicateKeyConflict {
            field: "kind".to_owned()
        }
    );
    assert_sound(store).await;
}

async fn pending_posts_in_part_and_releases_the_rest(fixture: Fixture) {
    let store = &fixture.store;
    let (equity, alice, bob) = three_accounts(store).await;
    commit_one(store, transfer("fund", equity, alice, 1_000), T0)
        .await
        .unwrap();
    let reserved = commit_one(store, pending("hold", alice, bob, 600, None), T0 + 1)
        .await
        .unwrap();
    assert_eq!(reserved.status, TransferStatus::Pending);
    assert_eq!(available(store, alice).await, 400);
    assert_eq!(ledger_balance(store, alice).await, 1_000);
    let overspend = commit_one(store, transfer("over", alice, bob, 401), T0 + 2)
        .await
        .unwrap_err();
    assert_eq!(overspend.code(), "INSUFFICIENT_FUNDS");
    let posted = commit_one(
        store,
        Operation::PostPending {
            key: "post".to_owned(),
            pending_id: reserved.id,
            amount_minor: Some(450),
        },
        T0 + 3,
    )
    .await
    .unwrap();
    assert_eq!(posted.target_id, Some(reserved.id));
    assert_eq!(ledger_balance(store, alice).await, 550);
    assert_eq!(available(store, alice).await, 550);
    assert_eq!(ledger_balance(store, bob).await, 450);
    let stored = store.transfer(reserved.id).await.unwrap().unwrap();
    assert_eq!(stored.status, TransferStatus::PendingPosted);
    let again = commit_one(
        store,
        Operation::VoidPending {
            key: "void-late".to_owned(),
            pending_id: reserved.id,
        },
        T0 + 4,
    )
    .await
    .unwrap_err();
    assert_eq!(again.code(), "PENDING_ALREADY_RESOLVED");
    assert_sound(store).await;
}

async fn pending_void_and_expiry(fixture: Fixture) {
    let store = &fixture.store;
    let (equity, alice, bob) = three_accounts(store).await;
    commit_one(store, transfer("fund", equity, alice, 1_000), T0)
        .await
        .unwrap();
    let voided = commit_one(store, pending("a", alice, bob, 300, None), T0 + 1)
        .await
        .unwrap();
    commit_one(
        store,
        Operation::VoidPending {
            key: "void-a".to_owned(),
            pending_id: voided.id,
        },
        T0 + 2,
    )
    .await
    .unwrap();
    assert_eq!(available(store, alice).await, 1_000);
    let now = store::now_micros();
    let expiring = commit_one(store, pending("b", alice, bob, 200, Some(1)), now)
        .await
        .unwrap();
    assert_eq!(available(store, alice).await, 800);
    let expired_at = now + 2_000_000;
    assert_eq!(
        store.expired_pending(expired_at, 10).await.unwrap(),
        vec![expiring.id]
    );
    let late_post = commit_one(
        store,
        Operation::PostPending {
            key: "post-b".to_owned(),
            pending_id: expiring.id,
            amount_minor: None,
        },
        expired_at,
    )
    .await
    .unwrap_err();
    assert_eq!(late_post.code(), "PENDING_EXPIRED");
    // The committer voids it by itself once its second has passed.
    let ledger = Ledger::start(
        store.clone(),
        LedgerOptions {
            expiry_interval: std::time::Duration::from_millis(50),
        },
    );
    let mut status = TransferStatus::Pending;
    for _ in 0..100 {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        status = ledger
            .store()
            .transfer(expiring.id)
            .await
            .unwrap()
            .unwrap()
            .status;
        if status != TransferStatus::Pending {
            break;
        }
    }
    assert_eq!(status, TransferStatus::Voided);
    assert_eq!(available(store, alice).await, 1_000);
    assert_sound(store).await;
}

async fn reversal_restores_balances_once(fixture: Fixture) {
    let store = &fixture.store;
    let (equity, alice, bob) = three_accounts(store).await;
    commit_one(store, transfer("fund", equity, alice, 1_000), T0)
        .await
        .unwrap();
    let paid = commit_one(store, transfer("pay", alice, bob, 400), T0 + 1)
        .await
        .unwrap();
    let reverse = |key: &str| Operation::Reverse {
        key: key.to_owned(),
        transfer_id: paid.id,
        description: "refund".to_owned(),
    };
    let reversal = commit_one(store, reverse("undo"), T0 + 2).await.unwrap();
    assert_eq!(reversal.entries[0].side, Side::Credit);
    assert_eq!(reversal.entries[0].account_id, alice);
    assert_eq!(ledger_balance(store, alice).await, 1_000);
    assert_eq!(ledger_balance(store, bob).await, 0);
    assert_eq!(
        store.transfer(paid.id).await.unwrap().unwrap().status,
        TransferStatus::Reversed
    );
    let twice = commit_one(store, reverse("undo-again"), T0 + 3)
        .await
        .unwrap_err();
    assert_eq!(twice.code(), "ALREADY_REVERSED");
    assert_sound(store).await;
}

async fn freeze_holds_available_money(fixture: Fixture) {
    let store = &fixture.store;
    let (equity, alice, bob) = three_accounts(store).await;
    commit_one(store, transfer("fund", equity, alice, 1_000), T0)
        .await
        .unwrap();
    let hold = |key: &str, amount_minor: i64, freeze: bool| {
        let (key, description) = (key.to_owned(), String::new());
        if freeze {
            Operation::Freeze {
                key,
                account_id: alice,
                amount_minor,
                description,
            }
        } else {
            Operation::Unfreeze {
                key,
                account_id: alice,
                amount_minor,
                description,
            }
        }
    };
    commit_one(store, hold("f1", 700, true), T0 + 1)
        .await
        .unwrap();
    assert_eq!(available(store, alice).await, 300);
    let spend = commit_one(store, transfer("spend", alice, bob, 301), T0 + 2)
        .await
        .unwrap_err();
    assert_eq!(spend.code(), "INSUFFICIENT_FUNDS");
    let too_much = commit_one(store, hold("f2", 301, true), T0 + 3)
        .await
        .unwrap_err();
    assert_eq!(too_much.code(), "INSUFFICIENT_FUNDS");
    let unfreeze_too_much = commit_one(store, hold("u1", 701, false), T0 + 4)
        .await
        .unwrap_err();
    assert_eq!(unfreeze_too_much.code(), "INSUFFICIENT_FROZEN");
    commit_one(store, hold("u2", 200, false), T0 + 5)
        .await
        .unwrap();
    assert_eq!(available(store, alice).await, 500);
    assert_sound(store).await;
}

async fn linked_chain_fails_together(fixture: Fixture) {
    let store = &fixture.store;
    let (equity, alice, bob) = three_accounts(store).await;
    let items = vec![
        BatchItem {
            operation: transfer("c1", equity, alice, 500),
            linked: true,
        },
        BatchItem {
            operation: transfer("c2", alice, bob, 600),
            linked: false,
        },
        BatchItem::single(transfer("after", equity, bob, 5)),
    ];
    let results = store.commit_batch(&items, T0).await.unwrap();
    assert_eq!(
        results[0].clone().unwrap_err(),
        LedgerError::LinkedOperationFailed
    );
    assert_eq!(results[1].clone().unwrap_err().code(), "INSUFFICIENT_FUNDS");
    assert!(results[2].is_ok());
    assert_eq!(ledger_balance(store, alice).await, 0);
    assert_eq!(ledger_balance(store, bob).await, 5);
    // The failed chain's keys are free again.
    commit_one(store, transfer("c1", equity, alice, 500), T0 + 1)
        .await
        .unwrap();
    assert_sound(store).await;
}

async fn balance_at_past_instants(fixture: Fixture) {
    let store = &fixture.store;
    let (equity, alice, bob) = three_accounts(store).await;
    commit_one(store, transfer("t1", equity, alice, 1_000), T0 + 10)
        .await
        .unwrap();
    commit_one(store, transfer("t2", alice, bob, 300), T0 + 20)
        .await
        .unwrap();
    commit_one(store, transfer("t3", equity, alice, 50), T0 + 30)
        .await
        .unwrap();
    for (at, expected) in [
        (T0, 0),
        (T0 + 10, 1_000),
        (T0 + 19, 1_000),
        (T0 + 20, 700),
        (T0 + 31, 750),
    ] {
        assert_eq!(
            store.balance_at(alice, at).await.unwrap(),
            expected,
            "at {at}"
        );
    }
    assert_eq!(store.balance_at(bob, T0 + 25).await.unwrap(), 300);
}

async fn check_finds_tampering(fixture: Fixture) {
    let store = &fixture.store;
    let (equity, alice, bob) = three_accounts(store).await;
    commit_one(store, transfer("fund", equity, alice, 1_000), T0)
        .await
        .unwrap();
    commit_one(store, transfer("pay", alice, bob, 100), T0 + 1)
        .await
        .unwrap();
    let report = store.check().await.unwrap();
    assert!(report.is_sound(), "{:?}", report.violations);
    assert_eq!(report.accounts_checked, 3);
    assert_eq!(report.transfers_checked, 2);
    assert_eq!(report.entries_checked, 4);
    let tamper = format!(
        "UPDATE accounts SET credits_posted_minor = credits_posted_minor + 1 WHERE id = {bob}"
    );
    let tamper_entry = "UPDATE entries SET amount_minor = amount_minor + 7 WHERE leg_index = 0 AND transfer_id = \
                        (SELECT MIN(transfer_id) FROM entries)";
    execute(&fixture.raw, &tamper).await;
    execute(&fixture.raw, tamper_entry).await;
    let report = store.check().await.unwrap();
    let text = report.violations.join("\n");
    assert!(text.contains(&format!("account {bob}")), "{text}");
    assert!(
        text.contains("posted entries in CNY are off by 7"),
        "{text}"
    );
    assert!(text.contains("posted debits"), "{text}");
    assert!(text.contains("subject 2241"), "{text}");
}

async fn concurrent_same_key_posts_once(fixture: Fixture) {
    let store = &fixture.store;
    let (equity, alice, _) = three_accounts(store).await;
    let ledger = Arc::new(Ledger::start(store.clone(), LedgerOptions::default()));
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let ledger = Arc::clone(&ledger);
        tasks.push(tokio::spawn(async move {
            ledger
                .submit(vec![BatchItem::single(transfer(
                    "same", equity, alice, 250,
                ))])
                .await
                .unwrap()
                .remove(0)
                .unwrap()
        }));
    }
    let mut ids = Vec::new();
    for task in tasks {
        ids.push(task.await.unwrap().id);
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "one transfer for 100 requests");
    assert_eq!(ledger_balance(store, alice).await, 250);
    assert_eq!(store.check().await.unwrap().transfers_checked, 1);
}

async fn group_commit_keeps_every_result(fixture: Fixture) {
    let store = &fixture.store;
    let (equity, alice, bob) = three_accounts(store).await;
    let ledger = Arc::new(Ledger::start(store.clone(), LedgerOptions::default()));
    let mut tasks = Vec::new();
    for index in 0..200 {
        let ledger = Arc::clone(&ledger);
        tasks.push(tokio::spawn(async move {
            let (debit, credit) = if index % 2 == 0 {
                (equity, alice)
            } else {
                (equity, bob)
            };
            let results = ledger
                .submit(vec![BatchItem::single(transfer(
                    &format!("g{index}"),
                    debit,
                    credit,
                    1 + index,
                ))])
                .await
                .unwrap();
            (index, results)
        }));
    }
    for task in tasks {
        let (index, results) = task.await.unwrap();
        let transfer = results.into_iter().next().unwrap().unwrap();
        assert_eq!(transfer.key, format!("g{index}"));
        assert_eq!(transfer.entries[0].amount_minor, 1 + index);
    }
    let alice_total: i64 = (0..200)
        .filter(|index| index % 2 == 0)
        .map(|index| 1 + index)
        .sum();
    let bob_total: i64 = (0..200)
        .filter(|index| index % 2 == 1)
        .map(|index| 1 + index)
        .sum();
    assert_eq!(ledger_balance(store, alice).await, alice_total);
    assert_eq!(ledger_balance(store, bob).await, bob_total);
    assert_sound(store).await;
}
