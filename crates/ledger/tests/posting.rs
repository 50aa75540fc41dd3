#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Tests of the pure batch-posting engine, [`ledger::posting::apply_batch`].

use ledger::posting::{BatchOutcome, LoadedState, SubjectDelta, apply_batch, verify_outcome};
use ledger::{
    Account, AccountId, AccountKind, BalanceView, Balances, BatchItem, Entry, LEGS_MAX,
    LedgerError, Leg, Operation, Overdraft, OwnerKind, PENDING_TIMEOUT_SECONDS_MAX, Side,
    TimestampMicros, Transfer, TransferId, TransferKind, TransferMode, TransferStatus,
    balance_view,
};
use money::Currency;
use proptest::prelude::*;
use std::collections::HashMap;

const NOW: TimestampMicros = 1_700_000_000_000_000;
const SECOND: TimestampMicros = 1_000_000;

/// Member cash (liability, credit-normal), CNY, no overdraft.
const MEMBER: AccountId = 1;
/// Merchant money (liability, credit-normal), CNY, no overdraft.
const MERCHANT: AccountId = 2;
/// Platform fee income (income, credit-normal), CNY, no overdraft.
const INCOME: AccountId = 3;
/// Channel clearing (asset, debit-normal), CNY, unlimited.
const CLEARING: AccountId = 4;
/// Member cash in USD, no overdraft.
const USD_MEMBER: AccountId = 5;
/// Merchant money in USD, no overdraft.
const USD_MERCHANT: AccountId = 6;
/// No such account.
const MISSING: AccountId = 99;

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

fn subject_code(kind: AccountKind) -> &'static str {
    match kind {
        AccountKind::MemberCash => "2241",
        AccountKind::MemberBonus => "2242",
        AccountKind::MerchantPending => "2202",
        AccountKind::MerchantAvailable => "2203",
        AccountKind::MerchantFee => "2204",
        AccountKind::MerchantEscrow => "2205",
        AccountKind::PlatformIncome => "6001",
        AccountKind::PlatformMarketing => "6601",
        AccountKind::BonusDeferred => "1801",
        AccountKind::ChannelClearing => "1002",
        AccountKind::Suspense => "2501",
        AccountKind::Equity => "4001",
    }
}

fn make_account(
    id: AccountId,
    kind: AccountKind,
    currency: Currency,
    overdraft: Overdraft,
) -> Account {
    Account {
        id,
        subject_code: subject_code(kind).to_owned(),
        subject_class: kind.default_subject_class(),
        kind,
        owner_kind: OwnerKind::Platform,
        owner_id: format!("owner-{id}"),
        currency,
        overdraft,
        balances: Balances::default(),
        created_at: NOW - 1_000 * SECOND,
    }
}

/// The loaded state plus the ids the next batch gets; `commit` writes an
/// outcome back as a store would, so that later batches see it.
struct Fixture {
    loaded: LoadedState,
    next_id: TransferId,
}

impl Fixture {
    fn empty() -> Self {
        Fixture {
            loaded: LoadedState::default(),
            next_id: 1000,
        }
    }

    /// The standard accounts, all with zero balances.
    fn standard() -> Self {
        let mut fixture = Fixture::empty();
        for account in [
            make_account(
                MEMBER,
                AccountKind::MemberCash,
                Currency::CNY,
                Overdraft::Limit(0),
            ),
            make_account(
                MERCHANT,
                AccountKind::MerchantPending,
                Currency::CNY,
                Overdraft::Limit(0),
            ),
            make_account(
                INCOME,
                AccountKind::PlatformIncome,
                Currency::CNY,
                Overdraft::Limit(0),
            ),
            make_account(
                CLEARING,
                AccountKind::ChannelClearing,
                Currency::CNY,
                Overdraft::Unlimited,
            ),
            make_account(
                USD_MEMBER,
                AccountKind::MemberCash,
                Currency::USD,
                Overdraft::Limit(0),
            ),
            make_account(
                USD_MERCHANT,
                AccountKind::MerchantPending,
                Currency::USD,
                Overdraft::Limit(0),
            ),
        ] {
            fixture.add(account);
        }
        fixture
    }

    fn add(&mut self, account: Account) {
        self.loaded.accounts.insert(account.id, account);
    }

    fn account_mut(&mut self, id: AccountId) -> &mut Account {
        self.loaded.accounts.get_mut(&id).unwrap()
    }

    /// Gives an account a posted balance of `amount` on its normal side.
    fn fund(&mut self, id: AccountId, amount: i64) -> &mut Self {
        let account = self.account_mut(id);
        match account.normal_side() {
            Side::Debit => account.balances.debits_posted_minor += amount,
            Side::Credit => account.balances.credits_posted_minor += amount,
        }
        self
    }

    fn set_overdraft(&mut self, id: AccountId, overdraft: Overdraft) -> &mut Self {
        self.account_mut(id).overdraft = overdraft;
        self
    }

    fn ids(&self, count: usize) -> Vec<TransferId> {
        (self.next_id..).take(count).collect()
    }

    fn run(&self, items: &[BatchItem]) -> BatchOutcome {
        self.run_at(items, NOW)
    }

    fn run_at(&self, items: &[BatchItem], now: TimestampMicros) -> BatchOutcome {
        let ids = self.ids(items.len());
        let outcome = apply_batch(&self.loaded, items, &ids, now);
        assert_eq!(outcome.results.len(), items.len(), "one result per item");
        verify_outcome(&outcome).unwrap();
        outcome
    }

    /// Writes an outcome as a store would.
    fn commit(&mut self, outcome: &BatchOutcome) {
        for (id, balances) in &outcome.account_updates {
            self.account_mut(*id).balances = *balances;
        }
        for (id, status) in &outcome.status_updates {
            let stored = self.loaded.transfers_by_id.get_mut(id).unwrap();
            stored.status = *status;
            let by_key = self.loaded.transfers_by_key.get_mut(&stored.key).unwrap();
            by_key.status = *status;
        }
        for transfer in &outcome.new_transfers {
            self.loaded
                .transfers_by_id
                .insert(transfer.id, transfer.clone());
            self.loaded
                .transfers_by_key
                .insert(transfer.key.clone(), transfer.clone());
            self.next_id = self.next_id.max(transfer.id + 1);
        }
    }

    /// Runs and commits.
    fn apply(&mut self, items: &[BatchItem]) -> BatchOutcome {
        let outcome = self.run(items);
        self.commit(&outcome);
        outcome
    }

    fn initial(&self, id: AccountId) -> Balances {
        self.loaded.accounts[&id].balances
    }

    /// An account's balances after `outcome`.
    fn balances_after(&self, outcome: &BatchOutcome, id: AccountId) -> Balances {
        let updates: Vec<_> = outcome
            .account_updates
            .iter()
            .filter(|(account_id, _)| *account_id == id)
            .collect();
        assert!(updates.len() <= 1, "account {id} updated more than once");
        updates
            .first()
            .map_or_else(|| self.initial(id), |(_, balances)| *balances)
    }

    fn view_after(&self, outcome: &BatchOutcome, id: AccountId) -> BalanceView {
        let account = &self.loaded.accounts[&id];
        balance_view(&self.balances_after(outcome, id), account.normal_side()).unwrap()
    }

    fn view(&self, id: AccountId) -> BalanceView {
        self.loaded.accounts[&id].balance().unwrap()
    }
}

fn leg_in(account_id: AccountId, side: Side, amount_minor: i64, currency: Currency) -> Leg {
    Leg {
        account_id,
        side,
        amount_minor,
        currency,
    }
}

fn debit(account_id: AccountId, amount_minor: i64) -> Leg {
    leg_in(account_id, Side::Debit, amount_minor, Currency::CNY)
}

fn credit(account_id: AccountId, amount_minor: i64) -> Leg {
    leg_in(account_id, Side::Credit, amount_minor, Currency::CNY)
}

fn transfer_op(key: &str, legs: Vec<Leg>) -> Operation {
    Operation::Transfer {
        key: key.to_owned(),
        legs,
        mode: TransferMode::Posted,
        description: String::new(),
    }
}

/// A posted two-leg transfer: debit `from`, credit `to`.
fn pay(key: &str, from: AccountId, to: AccountId, amount_minor: i64) -> Operation {
    transfer_op(
        key,
        vec![debit(from, amount_minor), credit(to, amount_minor)],
    )
}

fn pending_op(key: &str, legs: Vec<Leg>, timeout_seconds: Option<u64>) -> Operation {
    Operation::Transfer {
        key: key.to_owned(),
        legs,
        mode: TransferMode::Pending { timeout_seconds },
        description: String::new(),
    }
}

fn reserve(key: &str, from: AccountId, to: AccountId, amount_minor: i64) -> Operation {
    pending_op(
        key,
        vec![debit(from, amount_minor), credit(to, amount_minor)],
        None,
    )
}

fn post(key: &str, pending_id: TransferId, amount_minor: Option<i64>) -> Operation {
    Operation::PostPending {
        key: key.to_owned(),
        pending_id,
        amount_minor,
    }
}

fn void(key: &str, pending_id: TransferId) -> Operation {
    Operation::VoidPending {
        key: key.to_owned(),
        pending_id,
    }
}

fn reverse(key: &str, transfer_id: TransferId) -> Operation {
    Operation::Reverse {
        key: key.to_owned(),
        transfer_id,
        description: "refund".to_owned(),
    }
}

fn freeze(key: &str, account_id: AccountId, amount_minor: i64) -> Operation {
    Operation::Freeze {
        key: key.to_owned(),
        account_id,
        amount_minor,
        description: "hold".to_owned(),
    }
}

fn unfreeze(key: &str, account_id: AccountId, amount_minor: i64) -> Operation {
    Operation::Unfreeze {
        key: key.to_owned(),
        account_id,
        amount_minor,
        description: "release".to_owned(),
    }
}

fn single(operation: Operation) -> BatchItem {
    BatchItem::single(operation)
}

fn linked(operation: Operation) -> BatchItem {
    BatchItem {
        operation,
        linked: true,
    }
}

fn singles(operations: Vec<Operation>) -> Vec<BatchItem> {
    operations.into_iter().map(BatchItem::single).collect()
}

fn ok(outcome: &BatchOutcome, index: usize) -> &Transfer {
    match &outcome.results[index] {
        Ok(transfer) => transfer,
        Err(error) => panic!("item {index} failed: {error} ({})", error.code()),
    }
}

fn err(outcome: &BatchOutcome, index: usize) -> &LedgerError {
    match &outcome.results[index] {
        Ok(transfer) => panic!("item {index} succeeded: {transfer:?}"),
        Err(error) => error,
    }
}

fn codes(outcome: &BatchOutcome) -> Vec<&'static str> {
    outcome
        .results
        .iter()
        .map(|result| match result {
            Ok(_) => "OK",
            Err(error) => error.code(),
        })
        .collect()
}

/// The outcome writes nothing at all.
fn assert_writes_nothing(outcome: &BatchOutcome) {
    assert!(
        outcome.new_transfers.is_empty(),
        "{:?}",
        outcome.new_transfers
    );
    assert!(
        outcome.account_updates.is_empty(),
        "{:?}",
        outcome.account_updates
    );
    assert!(outcome.status_updates.is_empty());
    assert!(outcome.subject_deltas.is_empty());
}

/// Runs a single operation on a fresh standard fixture with a funded member
/// and expects it to be refused with `code`, writing nothing.
fn assert_refused(fixture: &Fixture, operation: Operation, expected: &LedgerError) {
    let outcome = fixture.run(&[single(operation)]);
    let error = err(&outcome, 0);
    assert_eq!(error, expected);
    assert_writes_nothing(&outcome);
}

fn entry(
    transfer_id: TransferId,
    leg_index: u32,
    account_id: AccountId,
    side: Side,
    amount_minor: i64,
    pending: bool,
    balance_after_minor: i64,
) -> Entry {
    Entry {
        transfer_id,
        leg_index,
        account_id,
        side,
        amount_minor,
        currency: Currency::CNY,
        pending,
        balance_after_minor,
        posted_at: NOW,
    }
}

fn delta(subject_code: &str, debits_minor: i64, credits_minor: i64) -> SubjectDelta {
    SubjectDelta {
        subject_code: subject_code.to_owned(),
        currency: Currency::CNY,
        debits_minor,
        credits_minor,
    }
}

fn funded_member(amount: i64) -> Fixture {
    let mut fixture = Fixture::standard();
    fixture.fund(MEMBER, amount);
    fixture
}

// ---------------------------------------------------------------------------
// Posted transfers
// ---------------------------------------------------------------------------

#[test]
fn balanced_two_leg_transfer_posts_entries_balances_and_subject_deltas() {
    let fixture = funded_member(10_000);
    let outcome = fixture.run(&[single(pay("pay-1", MEMBER, MERCHANT, 2_500))]);

    let transfer = ok(&outcome, 0);
    assert_eq!(transfer.id, 1000);
    assert_eq!(transfer.key, "pay-1");
    assert_eq!(transfer.kind, TransferKind::Transfer);
    assert_eq!(transfer.status, TransferStatus::Posted);
    assert_eq!(transfer.target_id, None);
    assert_eq!(transfer.expires_at, None);
    assert_eq!(transfer.created_at, NOW);
    assert_eq!(
        transfer.entries,
        vec![
            entry(1000, 0, MEMBER, Side::Debit, 2_500, false, 7_500),
            entry(1000, 1, MERCHANT, Side::Credit, 2_500, false, 2_500),
        ]
    );
    assert_eq!(outcome.new_transfers, vec![transfer.clone()]);
    assert_eq!(
        outcome.account_updates,
        vec![
            (
                MEMBER,
                Balances {
                    debits_posted_minor: 2_500,
                    credits_posted_minor: 10_000,
                    ..Balances::default()
                }
            ),
            (
                MERCHANT,
                Balances {
                    credits_posted_minor: 2_500,
                    ..Balances::default()
                }
            ),
        ]
    );
    assert!(outcome.status_updates.is_empty());
    // Sorted by subject code: 2202 (merchant) before 2241 (member).
    assert_eq!(
        outcome.subject_deltas,
        vec![delta("2202", 0, 2_500), delta("2241", 2_500, 0)]
    );
    assert_eq!(fixture.view_after(&outcome, MEMBER).available_minor, 7_500);
    assert_eq!(fixture.view_after(&outcome, MERCHANT).ledger_minor, 2_500);
}

#[test]
fn multi_leg_transfer_splits_a_payment_with_a_fee() {
    let fixture = funded_member(10_000);
    let outcome = fixture.run(&[single(transfer_op(
        "split",
        vec![
            debit(MEMBER, 10_000),
            credit(MERCHANT, 9_940),
            credit(INCOME, 60),
        ],
    ))]);
    let transfer = ok(&outcome, 0);
    assert_eq!(
        transfer.entries,
        vec![
            entry(1000, 0, MEMBER, Side::Debit, 10_000, false, 0),
            entry(1000, 1, MERCHANT, Side::Credit, 9_940, false, 9_940),
            entry(1000, 2, INCOME, Side::Credit, 60, false, 60),
        ]
    );
    assert_eq!(
        outcome.account_updates,
        vec![
            (
                MEMBER,
                Balances {
                    debits_posted_minor: 10_000,
                    credits_posted_minor: 10_000,
                    ..Balances::default()
                }
            ),
            (
                MERCHANT,
                Balances {
                    credits_posted_minor: 9_940,
                    ..Balances::default()
                }
            ),
            (
                INCOME,
                Balances {
                    credits_posted_minor: 60,
                    ..Balances::default()
                }
            ),
        ]
    );
    assert_eq!(
        outcome.subject_deltas,
        vec![
            delta("2202", 0, 9_940),
            delta("2241", 10_000, 0),
            delta("6001", 0, 60),
        ]
    );
}

#[test]
fn four_leg_transfer_with_two_debits_and_an_asset_account() {
    // Money arrives from the channel (asset up) and the member's cash tops
    // it up; the merchant and the platform are credited.
    let fixture = funded_member(500);
    let outcome = fixture.run(&[single(transfer_op(
        "four",
        vec![
            debit(CLEARING, 1_000),
            debit(MEMBER, 500),
            credit(MERCHANT, 1_450),
            credit(INCOME, 50),
        ],
    ))]);
    let transfer = ok(&outcome, 0);
    let balances_after: Vec<i64> = transfer
        .entries
        .iter()
        .map(|entry| entry.balance_after_minor)
        .collect();
    // The asset's debit-normal balance grows by its debit.
    assert_eq!(balances_after, vec![1_000, 0, 1_450, 50]);
    assert_eq!(fixture.view_after(&outcome, CLEARING).ledger_minor, 1_000);
    assert_eq!(fixture.view_after(&outcome, MEMBER).ledger_minor, 0);
}

#[test]
fn the_same_account_twice_on_one_side_is_summed() {
    let fixture = funded_member(1_000);
    let outcome = fixture.run(&[single(transfer_op(
        "twice",
        vec![
            debit(MEMBER, 300),
            debit(MEMBER, 200),
            credit(MERCHANT, 500),
        ],
    ))]);
    let transfer = ok(&outcome, 0);
    assert_eq!(
        transfer.entries,
        vec![
            entry(1000, 0, MEMBER, Side::Debit, 300, false, 700),
            entry(1000, 1, MEMBER, Side::Debit, 200, false, 500),
            entry(1000, 2, MERCHANT, Side::Credit, 500, false, 500),
        ]
    );
    assert_eq!(
        fixture.balances_after(&outcome, MEMBER).debits_posted_minor,
        500
    );
    // Together the two debits exceed the balance, even though each alone
    // does not.
    let outcome = fixture.run(&[single(transfer_op(
        "too-much",
        vec![
            debit(MEMBER, 600),
            debit(MEMBER, 600),
            credit(MERCHANT, 1_200),
        ],
    ))]);
    assert_eq!(
        err(&outcome, 0),
        &LedgerError::InsufficientFunds {
            account_id: MEMBER,
            available_minor: 1_000,
            required_minor: 1_200,
        }
    );
    assert_writes_nothing(&outcome);
}

#[test]
fn a_transfer_may_balance_in_two_currencies_at_once() {
    let mut fixture = funded_member(1_000);
    fixture.fund(USD_MEMBER, 1_000);
    let outcome = fixture.run(&[single(transfer_op(
        "fx",
        vec![
            debit(MEMBER, 700),
            credit(MERCHANT, 700),
            leg_in(USD_MEMBER, Side::Debit, 100, Currency::USD),
            leg_in(USD_MERCHANT, Side::Credit, 100, Currency::USD),
        ],
    ))]);
    ok(&outcome, 0);
    assert_eq!(fixture.view_after(&outcome, USD_MERCHANT).ledger_minor, 100);
    assert_eq!(fixture.view_after(&outcome, MERCHANT).ledger_minor, 700);
    assert!(outcome.subject_deltas.contains(&SubjectDelta {
        subject_code: "2241".to_owned(),
        currency: Currency::USD,
        debits_minor: 100,
        credits_minor: 0,
    }));
    assert!(outcome.subject_deltas.contains(&delta("2241", 700, 0)));
}

// ---------------------------------------------------------------------------
// Refused transfers
// ---------------------------------------------------------------------------

#[test]
fn unbalanced_transfer_is_refused() {
    let fixture = funded_member(10_000);
    let operation = transfer_op("unbalanced", vec![debit(MEMBER, 100), credit(MERCHANT, 99)]);
    let outcome = fixture.run(&[single(operation)]);
    let error = err(&outcome, 0);
    assert_eq!(
        error,
        &LedgerError::UnbalancedTransfer {
            currency: "CNY",
            debits_minor: 100,
            credits_minor: 99,
        }
    );
    assert_eq!(error.code(), "UNBALANCED_TRANSFER");
    assert_writes_nothing(&outcome);

    // Three legs that do not add up.
    assert_refused(
        &fixture,
        transfer_op(
            "unbalanced-3",
            vec![debit(MEMBER, 100), credit(MERCHANT, 60), credit(INCOME, 39)],
        ),
        &LedgerError::UnbalancedTransfer {
            currency: "CNY",
            debits_minor: 100,
            credits_minor: 99,
        },
    );
}

#[test]
fn equal_totals_in_different_currencies_do_not_balance() {
    let mut fixture = funded_member(1_000);
    fixture.fund(USD_MEMBER, 1_000);
    let outcome = fixture.run(&[single(transfer_op(
        "cross",
        vec![
            debit(MEMBER, 100),
            leg_in(USD_MERCHANT, Side::Credit, 100, Currency::USD),
        ],
    ))]);
    let error = err(&outcome, 0);
    assert_eq!(error.code(), "UNBALANCED_TRANSFER");
    assert!(matches!(
        error,
        LedgerError::UnbalancedTransfer {
            currency: "CNY",
            debits_minor: 100,
            credits_minor: 0,
        } | LedgerError::UnbalancedTransfer {
            currency: "USD",
            debits_minor: 0,
            credits_minor: 100,
        }
    ));
    assert_writes_nothing(&outcome);
}

#[test]
fn leg_currency_must_match_the_account() {
    let mut fixture = funded_member(1_000);
    fixture.fund(USD_MEMBER, 1_000);
    // The CNY member account is named in a USD leg.
    let operation = transfer_op(
        "mismatch",
        vec![
            leg_in(MEMBER, Side::Debit, 100, Currency::USD),
            leg_in(USD_MERCHANT, Side::Credit, 100, Currency::USD),
        ],
    );
    let outcome = fixture.run(&[single(operation)]);
    let error = err(&outcome, 0);
    assert_eq!(
        error,
        &LedgerError::CurrencyMismatch {
            account_id: MEMBER,
            account_currency: "CNY",
            leg_currency: "USD",
        }
    );
    assert_eq!(error.code(), "CURRENCY_MISMATCH");
    assert_writes_nothing(&outcome);
}

#[test]
fn unknown_account_is_refused() {
    let fixture = funded_member(1_000);
    let outcome = fixture.run(&[single(pay("ghost", MEMBER, MISSING, 100))]);
    let error = err(&outcome, 0);
    assert_eq!(error, &LedgerError::AccountNotFound(MISSING));
    assert_eq!(error.code(), "ACCOUNT_NOT_FOUND");
    assert_writes_nothing(&outcome);
}

#[test]
fn zero_and_negative_amounts_are_refused() {
    let fixture = funded_member(1_000);
    for amount in [0, -1, -500, i64::MIN] {
        let outcome = fixture.run(&[single(pay("bad-amount", MEMBER, MERCHANT, amount))]);
        let error = err(&outcome, 0);
        assert_eq!(
            error,
            &LedgerError::InvalidAmount {
                amount_minor: amount
            }
        );
        assert_eq!(error.code(), "INVALID_AMOUNT");
        assert_writes_nothing(&outcome);
    }
    // A balanced transfer with one zero leg is refused too.
    assert_refused(
        &fixture,
        transfer_op(
            "zero-leg",
            vec![debit(MEMBER, 100), credit(MERCHANT, 100), credit(INCOME, 0)],
        ),
        &LedgerError::InvalidAmount { amount_minor: 0 },
    );
}

#[test]
fn leg_count_must_be_two_to_legs_max() {
    let fixture = funded_member(1_000);
    for legs in [vec![], vec![debit(MEMBER, 100)]] {
        let count = legs.len();
        let outcome = fixture.run(&[single(transfer_op("few", legs))]);
        let error = err(&outcome, 0);
        assert_eq!(
            error,
            &LedgerError::LegCount {
                count,
                max: LEGS_MAX
            }
        );
        assert_eq!(error.code(), "INVALID_LEG_COUNT");
        assert_writes_nothing(&outcome);
    }

    // LEGS_MAX legs: one debit, LEGS_MAX - 1 credits of 10.
    let credits = i64::try_from(LEGS_MAX - 1).unwrap();
    let mut legs = vec![debit(CLEARING, credits * 10)];
    legs.extend(
        (0..LEGS_MAX - 1).map(|index| credit(if index % 2 == 0 { MERCHANT } else { INCOME }, 10)),
    );
    assert_eq!(legs.len(), LEGS_MAX);
    let outcome = fixture.run(&[single(transfer_op("max", legs.clone()))]);
    assert_eq!(ok(&outcome, 0).entries.len(), LEGS_MAX);
    assert_eq!(
        fixture.view_after(&outcome, CLEARING).ledger_minor,
        credits * 10
    );

    // One more leg is too many.
    legs[0].amount_minor += 10;
    legs.push(credit(INCOME, 10));
    assert_eq!(legs.len(), LEGS_MAX + 1);
    assert_refused(
        &fixture,
        transfer_op("too-many", legs),
        &LedgerError::LegCount {
            count: LEGS_MAX + 1,
            max: LEGS_MAX,
        },
    );
}

#[test]
fn an_account_on_both_sides_is_refused() {
    let fixture = funded_member(1_000);
    let outcome = fixture.run(&[single(transfer_op(
        "both",
        vec![debit(MEMBER, 100), credit(MERCHANT, 50), credit(MEMBER, 50)],
    ))]);
    let error = err(&outcome, 0);
    assert_eq!(error, &LedgerError::AccountOnBothSides(MEMBER));
    assert_eq!(error.code(), "ACCOUNT_ON_BOTH_SIDES");
    assert_writes_nothing(&outcome);
    assert_refused(
        &fixture,
        pay("self", MEMBER, MEMBER, 100),
        &LedgerError::AccountOnBothSides(MEMBER),
    );
}

#[test]
fn keys_and_descriptions_are_checked() {
    let fixture = funded_member(1_000);
    assert_refused(
        &fixture,
        pay("", MEMBER, MERCHANT, 1),
        &LedgerError::InvalidKey { max: 128 },
    );
    let long_key = "k".repeat(129);
    assert_refused(
        &fixture,
        pay(&long_key, MEMBER, MERCHANT, 1),
        &LedgerError::InvalidKey { max: 128 },
    );
    // 128 characters, multi-byte, is fine.
    let outcome = fixture.run(&[single(pay(&"键".repeat(128), MEMBER, MERCHANT, 1))]);
    ok(&outcome, 0);

    assert_refused(
        &fixture,
        Operation::Transfer {
            key: "long-description".to_owned(),
            legs: vec![debit(MEMBER, 1), credit(MERCHANT, 1)],
            mode: TransferMode::Posted,
            description: "x".repeat(257),
        },
        &LedgerError::DescriptionTooLong { max: 256 },
    );
}

// ---------------------------------------------------------------------------
// Limits
// ---------------------------------------------------------------------------

#[test]
fn a_liability_without_overdraft_cannot_go_negative() {
    let fixture = funded_member(1_000);
    let outcome = fixture.run(&[single(pay("over", MEMBER, MERCHANT, 1_001))]);
    let error = err(&outcome, 0);
    assert_eq!(
        error,
        &LedgerError::InsufficientFunds {
            account_id: MEMBER,
            available_minor: 1_000,
            required_minor: 1_001,
        }
    );
    assert_eq!(error.code(), "INSUFFICIENT_FUNDS");
    assert_writes_nothing(&outcome);

    // Exactly the balance is fine and leaves zero.
    let outcome = fixture.run(&[single(pay("exact", MEMBER, MERCHANT, 1_000))]);
    ok(&outcome, 0);
    assert_eq!(fixture.view_after(&outcome, MEMBER).available_minor, 0);
}

#[test]
fn an_asset_without_overdraft_cannot_be_credited_below_zero() {
    let mut fixture = Fixture::standard();
    fixture.set_overdraft(CLEARING, Overdraft::Limit(0));
    fixture.fund(CLEARING, 300);
    let outcome = fixture.run(&[single(pay("asset", MERCHANT, CLEARING, 301))]);
    // The merchant liability has nothing either; the asset side is the one
    // to look at, so give the merchant an unlimited overdraft.
    assert_eq!(err(&outcome, 0).code(), "INSUFFICIENT_FUNDS");
    fixture.set_overdraft(MERCHANT, Overdraft::Unlimited);
    let outcome = fixture.run(&[single(pay("asset", MERCHANT, CLEARING, 301))]);
    assert_eq!(
        err(&outcome, 0),
        &LedgerError::InsufficientFunds {
            account_id: CLEARING,
            available_minor: 300,
            required_minor: 301,
        }
    );
    let outcome = fixture.run(&[single(pay("asset", MERCHANT, CLEARING, 300))]);
    ok(&outcome, 0);
    assert_eq!(fixture.view_after(&outcome, CLEARING).ledger_minor, 0);
}

#[test]
fn an_overdraft_limit_allows_exactly_down_to_minus_the_limit() {
    let mut fixture = funded_member(1_000);
    fixture.set_overdraft(MEMBER, Overdraft::Limit(500));
    let outcome = fixture.run(&singles(vec![
        pay("one-too-many", MEMBER, MERCHANT, 1_501),
        pay("to-the-limit", MEMBER, MERCHANT, 1_500),
        pay("one-more", MEMBER, MERCHANT, 1),
    ]));
    assert_eq!(
        err(&outcome, 0),
        &LedgerError::InsufficientFunds {
            account_id: MEMBER,
            available_minor: 1_000,
            required_minor: 1_501,
        }
    );
    assert_eq!(ok(&outcome, 1).entries[0].balance_after_minor, -500);
    assert_eq!(
        err(&outcome, 2),
        &LedgerError::InsufficientFunds {
            account_id: MEMBER,
            available_minor: -500,
            required_minor: 1,
        }
    );
    let view = fixture.view_after(&outcome, MEMBER);
    assert_eq!(view.ledger_minor, -500);
    assert_eq!(view.available_minor, -500);
    assert_eq!(outcome.new_transfers.len(), 1);
    assert_eq!(outcome.new_transfers[0].key, "to-the-limit");
    // The failed first item consumed no id.
    assert_eq!(outcome.new_transfers[0].id, 1000);
}

#[test]
fn an_account_below_its_floor_may_still_receive_money() {
    let mut fixture = Fixture::standard();
    // Posted -800 with no overdraft (e.g. the limit was lowered).
    fixture.account_mut(MEMBER).balances.debits_posted_minor = 800;
    let outcome = fixture.run(&singles(vec![
        pay("in", CLEARING, MEMBER, 100),
        pay("out", MEMBER, MERCHANT, 1),
    ]));
    assert_eq!(ok(&outcome, 0).entries[1].balance_after_minor, -700);
    assert_eq!(err(&outcome, 1).code(), "INSUFFICIENT_FUNDS");
    assert_eq!(fixture.view_after(&outcome, MEMBER).ledger_minor, -700);
}

#[test]
fn an_unlimited_account_never_refuses() {
    let mut fixture = Fixture::standard();
    fixture.set_overdraft(MEMBER, Overdraft::Unlimited);
    let huge = 4_000_000_000_000_000_000;
    let outcome = fixture.run(&singles(vec![
        // Credit-normal liability debited far below zero.
        pay("liability", MEMBER, MERCHANT, huge),
        // Debit-normal asset credited far below zero.
        pay("asset", INCOME, CLEARING, 1),
        pay("asset-2", MERCHANT, CLEARING, huge),
    ]));
    ok(&outcome, 0);
    // The income account has no overdraft.
    assert_eq!(err(&outcome, 1).code(), "INSUFFICIENT_FUNDS");
    ok(&outcome, 2);
    assert_eq!(fixture.view_after(&outcome, MEMBER).ledger_minor, -huge);
    assert_eq!(fixture.view_after(&outcome, CLEARING).ledger_minor, -huge);
    assert_eq!(fixture.view_after(&outcome, MERCHANT).ledger_minor, 0);
}

#[test]
fn a_failed_operation_changes_nothing() {
    let mut fixture = funded_member(1_000);
    fixture.fund(MERCHANT, 50);
    // The member's debit fits, the merchant's does not: neither is applied.
    let outcome = fixture.run(&[single(transfer_op(
        "half",
        vec![debit(MEMBER, 500), debit(MERCHANT, 60), credit(INCOME, 560)],
    ))]);
    assert_eq!(
        err(&outcome, 0),
        &LedgerError::InsufficientFunds {
            account_id: MERCHANT,
            available_minor: 50,
            required_minor: 60,
        }
    );
    assert_writes_nothing(&outcome);

    // Same as an item in a batch whose other items succeed.
    let outcome = fixture.run(&singles(vec![
        pay("ok-1", MEMBER, INCOME, 100),
        transfer_op(
            "half",
            vec![debit(MEMBER, 500), debit(MERCHANT, 60), credit(INCOME, 560)],
        ),
        pay("ok-2", MEMBER, INCOME, 100),
    ]));
    assert_eq!(codes(&outcome), vec!["OK", "INSUFFICIENT_FUNDS", "OK"]);
    assert_eq!(
        outcome.account_updates,
        vec![
            (
                MEMBER,
                Balances {
                    debits_posted_minor: 200,
                    credits_posted_minor: 1_000,
                    ..Balances::default()
                }
            ),
            (
                INCOME,
                Balances {
                    credits_posted_minor: 200,
                    ..Balances::default()
                }
            ),
        ]
    );
    assert_eq!(
        outcome
            .new_transfers
            .iter()
            .map(|transfer| (transfer.id, transfer.key.as_str()))
            .collect::<Vec<_>>(),
        vec![(1000, "ok-1"), (1001, "ok-2")]
    );
}

// ---------------------------------------------------------------------------
// Idempotency
// ---------------------------------------------------------------------------

#[test]
fn the_same_key_twice_in_a_batch_posts_once() {
    let fixture = funded_member(1_000);
    let outcome = fixture.run(&singles(vec![
        pay("once", MEMBER, MERCHANT, 100),
        pay("once", MEMBER, MERCHANT, 100),
    ]));
    let first = ok(&outcome, 0);
    let second = ok(&outcome, 1);
    assert_eq!(first.id, 1000);
    assert_eq!(second, first);
    assert_eq!(outcome.new_transfers.len(), 1);
    assert_eq!(
        fixture.balances_after(&outcome, MEMBER).debits_posted_minor,
        100
    );
    assert_eq!(fixture.view_after(&outcome, MERCHANT).ledger_minor, 100);
    assert_eq!(
        outcome.subject_deltas,
        vec![delta("2202", 0, 100), delta("2241", 100, 0)]
    );
}

#[test]
fn the_same_key_with_other_fields_conflicts() {
    let fixture = funded_member(1_000);
    let described = Operation::Transfer {
        key: "once".to_owned(),
        legs: vec![debit(MEMBER, 100), credit(MERCHANT, 100)],
        mode: TransferMode::Posted,
        description: "another description".to_owned(),
    };
    let cases: Vec<(Operation, &str)> = vec![
        (pay("once", MEMBER, MERCHANT, 200), "legs[0].amount_minor"),
        (described, "description"),
        (pay("once", MEMBER, INCOME, 100), "legs[1].account_id"),
        (
            transfer_op(
                "once",
                vec![debit(MEMBER, 100), credit(MERCHANT, 60), credit(INCOME, 40)],
            ),
            "legs",
        ),
        (reserve("once", MEMBER, MERCHANT, 100), "kind"),
        (freeze("once", MEMBER, 100), "kind"),
    ];
    for (retry, field) in cases {
        let outcome = fixture.run(&singles(vec![pay("once", MEMBER, MERCHANT, 100), retry]));
        ok(&outcome, 0);
        let error = err(&outcome, 1);
        assert_eq!(
            error,
            &LedgerError::DuplicateKeyConflict {
                field: field.to_owned()
            }
        );
        assert_eq!(error.code(), "DUPLICATE_KEY_CONFLICT");
        assert_eq!(outcome.new_transfers.len(), 1);
        assert_eq!(
            fixture.balances_after(&outcome, MEMBER).debits_posted_minor,
            100
        );
    }
}

#[test]
fn a_key_already_stored_returns_the_stored_transfer_and_writes_nothing() {
    let mut fixture = funded_member(1_000);
    let first = fixture.apply(&[single(pay("stored", MEMBER, MERCHANT, 100))]);
    let stored = ok(&first, 0).clone();
    assert_eq!(stored.id, 1000);
    assert_eq!(fixture.loaded.transfers_by_key["stored"], stored);

    let outcome = fixture.run(&[single(pay("stored", MEMBER, MERCHANT, 100))]);
    assert_eq!(ok(&outcome, 0), &stored);
    assert_writes_nothing(&outcome);

    let outcome = fixture.run(&[single(pay("stored", MEMBER, MERCHANT, 101))]);
    assert_eq!(
        err(&outcome, 0),
        &LedgerError::DuplicateKeyConflict {
            field: "legs[0].amount_minor".to_owned()
        }
    );
    assert_writes_nothing(&outcome);
}

#[test]
fn a_retry_of_a_failed_key_is_applied_afresh() {
    let fixture = funded_member(100);
    let outcome = fixture.run(&singles(vec![
        pay("retry", MEMBER, MERCHANT, 150),
        pay("retry", MEMBER, MERCHANT, 100),
    ]));
    assert_eq!(codes(&outcome), vec!["INSUFFICIENT_FUNDS", "OK"]);
    assert_eq!(ok(&outcome, 1).id, 1000);
}

#[test]
fn retries_of_other_operations_are_idempotent_too() {
    let mut fixture = funded_member(1_000);
    fixture.apply(&[single(reserve("p", MEMBER, MERCHANT, 300))]);
    let outcome = fixture.run(&singles(vec![
        post("post", 1000, Some(100)),
        post("post", 1000, Some(100)),
        post("post", 1000, None),
        freeze("f", MEMBER, 50),
        freeze("f", MEMBER, 50),
        freeze("f", MEMBER, 51),
        unfreeze("u", MEMBER, 50),
        unfreeze("u", MEMBER, 50),
    ]));
    assert_eq!(
        codes(&outcome),
        vec![
            "OK",
            "OK",
            "DUPLICATE_KEY_CONFLICT",
            "OK",
            "OK",
            "DUPLICATE_KEY_CONFLICT",
            "OK",
            "OK"
        ]
    );
    assert_eq!(ok(&outcome, 1).id, ok(&outcome, 0).id);
    assert_eq!(
        err(&outcome, 2),
        &LedgerError::DuplicateKeyConflict {
            field: "amount_minor".to_owned()
        }
    );
    assert_eq!(outcome.new_transfers.len(), 3);
    let member = fixture.balances_after(&outcome, MEMBER);
    assert_eq!(member.debits_posted_minor, 100);
    assert_eq!(member.debits_pending_minor, 0);
    assert_eq!(member.frozen_minor, 0);
}

// ---------------------------------------------------------------------------
// Pending transfers
// ---------------------------------------------------------------------------

#[test]
fn a_pending_transfer_reserves_without_moving_the_ledger_balance() {
    let fixture = funded_member(10_000);
    let outcome = fixture.run(&[single(reserve("hold", MEMBER, MERCHANT, 3_000))]);
    let pending = ok(&outcome, 0);
    assert_eq!(pending.kind, TransferKind::Pending);
    assert_eq!(pending.status, TransferStatus::Pending);
    assert_eq!(pending.timeout_seconds, None);
    assert_eq!(pending.expires_at, None);
    assert_eq!(
        pending.entries,
        vec![
            entry(1000, 0, MEMBER, Side::Debit, 3_000, true, 10_000),
            entry(1000, 1, MERCHANT, Side::Credit, 3_000, true, 0),
        ]
    );
    assert_eq!(
        outcome.account_updates,
        vec![
            (
                MEMBER,
                Balances {
                    credits_posted_minor: 10_000,
                    debits_pending_minor: 3_000,
                    ..Balances::default()
                }
            ),
            (
                MERCHANT,
                Balances {
                    credits_pending_minor: 3_000,
                    ..Balances::default()
                }
            ),
        ]
    );
    let member = fixture.view_after(&outcome, MEMBER);
    assert_eq!(member.ledger_minor, 10_000);
    assert_eq!(member.available_minor, 7_000);
    assert_eq!(member.pending_outgoing_minor, 3_000);
    let merchant = fixture.view_after(&outcome, MERCHANT);
    assert_eq!(merchant.ledger_minor, 0);
    assert_eq!(merchant.available_minor, 0);
    assert_eq!(merchant.pending_incoming_minor, 3_000);
    // Reservations are not subject totals.
    assert!(outcome.subject_deltas.is_empty());
}

#[test]
fn a_pending_transfer_needs_available_funds_and_lowers_them() {
    let fixture = funded_member(10_000);
    let outcome = fixture.run(&singles(vec![
        reserve("hold-1", MEMBER, MERCHANT, 7_000),
        reserve("hold-2", MEMBER, MERCHANT, 3_001),
        pay("spend", MEMBER, MERCHANT, 3_001),
        pay("spend-ok", MEMBER, MERCHANT, 3_000),
    ]));
    assert_eq!(
        codes(&outcome),
        vec!["OK", "INSUFFICIENT_FUNDS", "INSUFFICIENT_FUNDS", "OK"]
    );
    assert_eq!(
        err(&outcome, 1),
        &LedgerError::InsufficientFunds {
            account_id: MEMBER,
            available_minor: 3_000,
            required_minor: 3_001,
        }
    );
    assert_eq!(fixture.view_after(&outcome, MEMBER).available_minor, 0);
    assert_eq!(fixture.view_after(&outcome, MEMBER).ledger_minor, 7_000);
}

#[test]
fn pending_timeouts_set_the_expiry_and_are_checked() {
    let fixture = funded_member(10_000);
    let legs = || vec![debit(MEMBER, 100), credit(MERCHANT, 100)];
    let outcome = fixture.run(&singles(vec![
        pending_op("t-60", legs(), Some(60)),
        pending_op("t-max", legs(), Some(PENDING_TIMEOUT_SECONDS_MAX)),
        pending_op("t-0", legs(), Some(0)),
        pending_op("t-too-long", legs(), Some(PENDING_TIMEOUT_SECONDS_MAX + 1)),
    ]));
    let first = ok(&outcome, 0);
    assert_eq!(first.status, TransferStatus::Pending);
    assert_eq!(first.timeout_seconds, Some(60));
    assert_eq!(first.expires_at, Some(NOW + 60 * SECOND));
    let max = i64::try_from(PENDING_TIMEOUT_SECONDS_MAX).unwrap();
    assert_eq!(ok(&outcome, 1).expires_at, Some(NOW + max * SECOND));
    for index in [2, 3] {
        assert_eq!(
            err(&outcome, index),
            &LedgerError::InvalidTimeout {
                max: PENDING_TIMEOUT_SECONDS_MAX
            }
        );
    }
}

/// A fixture with a committed pending transfer 1000 of `amount` from the
/// member (funded 10,000) to the merchant.
fn with_pending(amount: i64, timeout_seconds: Option<u64>) -> Fixture {
    let mut fixture = funded_member(10_000);
    let outcome = fixture.apply(&[single(pending_op(
        "hold",
        vec![debit(MEMBER, amount), credit(MERCHANT, amount)],
        timeout_seconds,
    ))]);
    assert_eq!(ok(&outcome, 0).id, 1000);
    assert_eq!(fixture.view(MEMBER).available_minor, 10_000 - amount);
    fixture
}

#[test]
fn posting_a_pending_transfer_in_full() {
    let fixture = with_pending(3_000, None);
    let outcome = fixture.run(&[single(post("post", 1000, None))]);
    let posted = ok(&outcome, 0);
    assert_eq!(posted.id, 1001);
    assert_eq!(posted.kind, TransferKind::PostPending);
    assert_eq!(posted.status, TransferStatus::Posted);
    assert_eq!(posted.target_id, Some(1000));
    assert_eq!(posted.amount_minor, None);
    assert_eq!(
        posted.entries,
        vec![
            entry(1001, 0, MEMBER, Side::Debit, 3_000, false, 7_000),
            entry(1001, 1, MERCHANT, Side::Credit, 3_000, false, 3_000),
        ]
    );
    assert_eq!(
        outcome.account_updates,
        vec![
            (
                MEMBER,
                Balances {
                    debits_posted_minor: 3_000,
                    credits_posted_minor: 10_000,
                    ..Balances::default()
                }
            ),
            (
                MERCHANT,
                Balances {
                    credits_posted_minor: 3_000,
                    ..Balances::default()
                }
            ),
        ]
    );
    assert_eq!(
        outcome.status_updates,
        vec![(1000, TransferStatus::PendingPosted)]
    );
    assert_eq!(
        outcome.subject_deltas,
        vec![delta("2202", 0, 3_000), delta("2241", 3_000, 0)]
    );
    assert_eq!(fixture.view_after(&outcome, MEMBER).available_minor, 7_000);
}

#[test]
fn a_partial_post_posts_the_amount_and_releases_the_rest() {
    let fixture = with_pending(3_000, None);
    let outcome = fixture.run(&[single(post("post", 1000, Some(1_200)))]);
    let posted = ok(&outcome, 0);
    assert_eq!(posted.amount_minor, Some(1_200));
    assert_eq!(
        posted.entries,
        vec![
            entry(1001, 0, MEMBER, Side::Debit, 1_200, false, 8_800),
            entry(1001, 1, MERCHANT, Side::Credit, 1_200, false, 1_200),
        ]
    );
    assert_eq!(
        outcome.account_updates,
        vec![
            (
                MEMBER,
                Balances {
                    debits_posted_minor: 1_200,
                    credits_posted_minor: 10_000,
                    ..Balances::default()
                }
            ),
            (
                MERCHANT,
                Balances {
                    credits_posted_minor: 1_200,
                    ..Balances::default()
                }
            ),
        ]
    );
    assert_eq!(fixture.view_after(&outcome, MEMBER).available_minor, 8_800);
    assert_eq!(
        outcome.status_updates,
        vec![(1000, TransferStatus::PendingPosted)]
    );
    assert_eq!(
        outcome.subject_deltas,
        vec![delta("2202", 0, 1_200), delta("2241", 1_200, 0)]
    );

    // The whole amount, given explicitly, is fine too.
    let outcome = fixture.run(&[single(post("post", 1000, Some(3_000)))]);
    assert_eq!(fixture.view_after(&outcome, MERCHANT).ledger_minor, 3_000);
}

#[test]
fn a_partial_post_is_checked() {
    let fixture = with_pending(3_000, None);
    assert_refused(
        &fixture,
        post("post", 1000, Some(3_001)),
        &LedgerError::PostExceedsPending {
            amount_minor: 3_001,
            pending_minor: 3_000,
        },
    );
    assert_eq!(
        LedgerError::PostExceedsPending {
            amount_minor: 1,
            pending_minor: 0
        }
        .code(),
        "POST_EXCEEDS_PENDING"
    );
    for amount in [0, -1] {
        assert_refused(
            &fixture,
            post("post", 1000, Some(amount)),
            &LedgerError::InvalidAmount {
                amount_minor: amount,
            },
        );
    }

    // Three legs cannot be posted in part, only in full.
    let mut fixture = funded_member(10_000);
    fixture.apply(&[single(pending_op(
        "three",
        vec![debit(MEMBER, 100), credit(MERCHANT, 90), credit(INCOME, 10)],
        None,
    ))]);
    assert_refused(
        &fixture,
        post("post", 1000, Some(50)),
        &LedgerError::PartialPostNeedsTwoLegs,
    );
    let outcome = fixture.run(&[single(post("post", 1000, None))]);
    assert_eq!(ok(&outcome, 0).entries.len(), 3);
    assert_eq!(fixture.view_after(&outcome, INCOME).ledger_minor, 10);
}

#[test]
fn voiding_a_pending_transfer_releases_it() {
    let fixture = with_pending(3_000, None);
    let outcome = fixture.run(&[single(void("void", 1000))]);
    let voided = ok(&outcome, 0);
    assert_eq!(voided.kind, TransferKind::VoidPending);
    assert_eq!(voided.target_id, Some(1000));
    assert!(voided.entries.is_empty());
    assert_eq!(
        outcome.account_updates,
        vec![
            (
                MEMBER,
                Balances {
                    credits_posted_minor: 10_000,
                    ..Balances::default()
                }
            ),
            (MERCHANT, Balances::default()),
        ]
    );
    assert_eq!(outcome.status_updates, vec![(1000, TransferStatus::Voided)]);
    assert!(outcome.subject_deltas.is_empty());
    let member = fixture.view_after(&outcome, MEMBER);
    assert_eq!(member.available_minor, 10_000);
    assert_eq!(member.pending_outgoing_minor, 0);
}

#[test]
fn a_pending_transfer_resolves_only_once() {
    let fixture = with_pending(3_000, None);
    let outcome = fixture.run(&singles(vec![
        post("post-1", 1000, None),
        post("post-2", 1000, None),
        void("void", 1000),
    ]));
    ok(&outcome, 0);
    let already = LedgerError::PendingAlreadyResolved {
        id: 1000,
        status: "pending_posted",
    };
    assert_eq!(err(&outcome, 1), &already);
    assert_eq!(err(&outcome, 1).code(), "PENDING_ALREADY_RESOLVED");
    assert_eq!(err(&outcome, 2), &already);
    // Posted once.
    assert_eq!(
        fixture.balances_after(&outcome, MEMBER).debits_posted_minor,
        3_000
    );

    let outcome = fixture.run(&singles(vec![void("void", 1000), post("post", 1000, None)]));
    ok(&outcome, 0);
    assert_eq!(
        err(&outcome, 1),
        &LedgerError::PendingAlreadyResolved {
            id: 1000,
            status: "voided",
        }
    );
    assert_eq!(
        fixture.balances_after(&outcome, MEMBER).debits_posted_minor,
        0
    );

    // And across batches.
    let mut fixture = with_pending(3_000, None);
    fixture.apply(&[single(post("post-1", 1000, None))]);
    assert_eq!(
        fixture.loaded.transfers_by_id[&1000].status,
        TransferStatus::PendingPosted
    );
    assert_refused(&fixture, post("post-2", 1000, None), &already);
}

#[test]
fn an_expired_pending_transfer_can_be_voided_but_not_posted() {
    let fixture = with_pending(3_000, Some(60));
    let expires = NOW + 60 * SECOND;

    // One microsecond before the expiry it can still be posted.
    let outcome = fixture.run_at(&[single(post("post", 1000, None))], expires - 1);
    ok(&outcome, 0);

    let outcome = fixture.run_at(&[single(post("post", 1000, None))], expires);
    let error = err(&outcome, 0);
    assert_eq!(error, &LedgerError::PendingExpired(1000));
    assert_eq!(error.code(), "PENDING_EXPIRED");
    assert_writes_nothing(&outcome);

    let outcome = fixture.run_at(&[single(void("void", 1000))], expires + SECOND);
    ok(&outcome, 0);
    assert_eq!(outcome.status_updates, vec![(1000, TransferStatus::Voided)]);
    assert_eq!(fixture.view_after(&outcome, MEMBER).available_minor, 10_000);
}

#[test]
fn a_pending_transfer_created_and_posted_in_one_batch() {
    let fixture = funded_member(10_000);
    let outcome = fixture.run(&singles(vec![
        reserve("hold", MEMBER, MERCHANT, 3_000),
        post("post", 1000, Some(2_000)),
    ]));
    assert_eq!(codes(&outcome), vec!["OK", "OK"]);
    assert_eq!(outcome.new_transfers.len(), 2);
    assert_eq!(outcome.new_transfers[0].id, 1000);
    assert_eq!(
        outcome.new_transfers[0].status,
        TransferStatus::PendingPosted
    );
    assert_eq!(outcome.new_transfers[1].status, TransferStatus::Posted);
    assert_eq!(outcome.new_transfers[1].target_id, Some(1000));
    // The pending transfer is new: it is not a status update of a stored one.
    assert!(outcome.status_updates.is_empty());
    assert_eq!(
        outcome.account_updates,
        vec![
            (
                MEMBER,
                Balances {
                    debits_posted_minor: 2_000,
                    credits_posted_minor: 10_000,
                    ..Balances::default()
                }
            ),
            (
                MERCHANT,
                Balances {
                    credits_posted_minor: 2_000,
                    ..Balances::default()
                }
            ),
        ]
    );
    // Only the posted entries count for the subjects.
    assert_eq!(
        outcome.subject_deltas,
        vec![delta("2202", 0, 2_000), delta("2241", 2_000, 0)]
    );
}

#[test]
fn posting_something_that_is_not_a_pending_transfer() {
    let mut fixture = funded_member(1_000);
    fixture.apply(&[single(pay("plain", MEMBER, MERCHANT, 100))]);
    let outcome = fixture.run(&singles(vec![
        post("post", 1000, None),
        void("void", 1000),
        post("post-missing", 4242, None),
    ]));
    assert_eq!(err(&outcome, 0), &LedgerError::NotPending(1000));
    assert_eq!(err(&outcome, 1), &LedgerError::NotPending(1000));
    assert_eq!(err(&outcome, 2), &LedgerError::TransferNotFound(4242));
    assert_eq!(err(&outcome, 2).code(), "TRANSFER_NOT_FOUND");
    assert_writes_nothing(&outcome);
}

// ---------------------------------------------------------------------------
// Reversals
// ---------------------------------------------------------------------------

#[test]
fn a_reversal_swaps_every_leg_and_marks_the_original() {
    let mut fixture = funded_member(10_000);
    fixture.apply(&[single(transfer_op(
        "sale",
        vec![
            debit(MEMBER, 2_500),
            credit(MERCHANT, 2_400),
            credit(INCOME, 100),
        ],
    ))]);
    let outcome = fixture.run(&[single(reverse("refund", 1000))]);
    let reversal = ok(&outcome, 0);
    assert_eq!(reversal.id, 1001);
    assert_eq!(reversal.kind, TransferKind::Reversal);
    assert_eq!(reversal.status, TransferStatus::Posted);
    assert_eq!(reversal.target_id, Some(1000));
    assert_eq!(reversal.description, "refund");
    assert_eq!(
        reversal.entries,
        vec![
            entry(1001, 0, MEMBER, Side::Credit, 2_500, false, 10_000),
            entry(1001, 1, MERCHANT, Side::Debit, 2_400, false, 0),
            entry(1001, 2, INCOME, Side::Debit, 100, false, 0),
        ]
    );
    assert_eq!(
        outcome.status_updates,
        vec![(1000, TransferStatus::Reversed)]
    );
    assert_eq!(
        outcome.account_updates,
        vec![
            (
                MEMBER,
                Balances {
                    debits_posted_minor: 2_500,
                    credits_posted_minor: 12_500,
                    ..Balances::default()
                }
            ),
            (
                MERCHANT,
                Balances {
                    debits_posted_minor: 2_400,
                    credits_posted_minor: 2_400,
                    ..Balances::default()
                }
            ),
            (
                INCOME,
                Balances {
                    debits_posted_minor: 100,
                    credits_posted_minor: 100,
                    ..Balances::default()
                }
            ),
        ]
    );
    assert_eq!(
        outcome.subject_deltas,
        vec![
            delta("2202", 2_400, 0),
            delta("2241", 0, 2_500),
            delta("6001", 100, 0),
        ]
    );
}

#[test]
fn a_transfer_is_reversed_at_most_once() {
    let mut fixture = funded_member(10_000);
    fixture.apply(&[single(pay("sale", MEMBER, MERCHANT, 2_500))]);
    let outcome = fixture.run(&singles(vec![
        reverse("refund-1", 1000),
        reverse("refund-2", 1000),
    ]));
    ok(&outcome, 0);
    let error = err(&outcome, 1);
    assert_eq!(error, &LedgerError::AlreadyReversed(1000));
    assert_eq!(error.code(), "ALREADY_REVERSED");
    assert_eq!(fixture.view_after(&outcome, MEMBER).ledger_minor, 10_000);

    fixture.apply(&[single(reverse("refund-1", 1000))]);
    assert_eq!(
        fixture.loaded.transfers_by_id[&1000].status,
        TransferStatus::Reversed
    );
    assert_refused(
        &fixture,
        reverse("refund-2", 1000),
        &LedgerError::AlreadyReversed(1000),
    );
    // Retrying the first reversal is idempotent.
    let outcome = fixture.run(&[single(reverse("refund-1", 1000))]);
    assert_eq!(ok(&outcome, 0).id, 1001);
    assert_writes_nothing(&outcome);
}

#[test]
fn only_posted_transfers_can_be_reversed() {
    let mut fixture = with_pending(3_000, None);
    let setup = fixture.apply(&singles(vec![
        pay("sale", MEMBER, MERCHANT, 100),
        freeze("freeze-1", MEMBER, 10),
    ]));
    assert_eq!(codes(&setup), vec!["OK", "OK"]);
    let refund = fixture.apply(&[single(reverse("refund", 1001))]);
    assert_eq!(ok(&refund, 0).id, 1003);
    let outcome = fixture.run(&singles(vec![
        // The pending transfer.
        reverse("r-pending", 1000),
        // The freeze.
        reverse("r-freeze", 1002),
        // The reversal itself.
        reverse("r-reversal", 1003),
        reverse("r-missing", 5555),
    ]));
    let error = err(&outcome, 0);
    assert_eq!(error, &LedgerError::NotReversible(1000));
    assert_eq!(error.code(), "NOT_REVERSIBLE");
    assert_eq!(err(&outcome, 1), &LedgerError::NotReversible(1002));
    assert_eq!(err(&outcome, 2), &LedgerError::NotReversible(1003));
    assert_eq!(err(&outcome, 3), &LedgerError::TransferNotFound(5555));
    assert_writes_nothing(&outcome);
}

#[test]
fn a_posted_pending_transfer_is_reversed_through_its_post() {
    let mut fixture = with_pending(3_000, None);
    fixture.apply(&[single(post("post", 1000, Some(1_000)))]);
    let outcome = fixture.run(&[single(reverse("refund", 1001))]);
    let reversal = ok(&outcome, 0);
    assert_eq!(
        reversal.entries,
        vec![
            entry(1002, 0, MEMBER, Side::Credit, 1_000, false, 10_000),
            entry(1002, 1, MERCHANT, Side::Debit, 1_000, false, 0),
        ]
    );
    assert_eq!(
        outcome.status_updates,
        vec![(1001, TransferStatus::Reversed)]
    );
}

#[test]
fn a_reversal_needs_the_funds_back() {
    let mut fixture = funded_member(10_000);
    fixture.apply(&singles(vec![
        pay("sale", MEMBER, MERCHANT, 2_500),
        pay("payout", MERCHANT, CLEARING, 2_000),
    ]));
    let outcome = fixture.run(&[single(reverse("refund", 1000))]);
    assert_eq!(
        err(&outcome, 0),
        &LedgerError::InsufficientFunds {
            account_id: MERCHANT,
            available_minor: 500,
            required_minor: 2_500,
        }
    );
    assert_writes_nothing(&outcome);
}

// ---------------------------------------------------------------------------
// Freeze and unfreeze
// ---------------------------------------------------------------------------

#[test]
fn freezing_lowers_the_available_balance_only() {
    let fixture = funded_member(10_000);
    let outcome = fixture.run(&singles(vec![
        freeze("freeze", MEMBER, 4_000),
        pay("too-much", MEMBER, MERCHANT, 6_001),
        pay("all-the-rest", MEMBER, MERCHANT, 6_000),
    ]));
    let frozen = ok(&outcome, 0);
    assert_eq!(frozen.kind, TransferKind::Freeze);
    assert_eq!(frozen.account_id, Some(MEMBER));
    assert_eq!(frozen.amount_minor, Some(4_000));
    assert_eq!(frozen.description, "hold");
    assert!(frozen.entries.is_empty());
    assert_eq!(
        err(&outcome, 1),
        &LedgerError::InsufficientFunds {
            account_id: MEMBER,
            available_minor: 6_000,
            required_minor: 6_001,
        }
    );
    ok(&outcome, 2);
    let member = fixture.view_after(&outcome, MEMBER);
    assert_eq!(member.ledger_minor, 4_000);
    assert_eq!(member.frozen_minor, 4_000);
    assert_eq!(member.available_minor, 0);
    // Freezing writes no journal lines and no subject totals of its own.
    assert_eq!(
        outcome.subject_deltas,
        vec![delta("2202", 0, 6_000), delta("2241", 6_000, 0)]
    );

    let outcome = fixture.run(&[single(freeze("f", MEMBER, 4_000))]);
    assert_eq!(
        outcome.account_updates,
        vec![(
            MEMBER,
            Balances {
                credits_posted_minor: 10_000,
                frozen_minor: 4_000,
                ..Balances::default()
            }
        )]
    );
    assert!(outcome.subject_deltas.is_empty());
    assert_eq!(fixture.view_after(&outcome, MEMBER).ledger_minor, 10_000);
}

#[test]
fn freezing_more_than_available_is_refused() {
    let fixture = funded_member(10_000);
    let outcome = fixture.run(&singles(vec![
        freeze("f-1", MEMBER, 10_001),
        freeze("f-2", MEMBER, 7_000),
        freeze("f-3", MEMBER, 3_001),
        freeze("f-4", MEMBER, 3_000),
    ]));
    assert_eq!(
        err(&outcome, 0),
        &LedgerError::InsufficientFunds {
            account_id: MEMBER,
            available_minor: 10_000,
            required_minor: 10_001,
        }
    );
    assert_eq!(err(&outcome, 0).code(), "INSUFFICIENT_FUNDS");
    assert_eq!(
        codes(&outcome),
        vec!["INSUFFICIENT_FUNDS", "OK", "INSUFFICIENT_FUNDS", "OK"]
    );
    assert_eq!(
        fixture.balances_after(&outcome, MEMBER).frozen_minor,
        10_000
    );

    assert_refused(
        &fixture,
        freeze("zero", MEMBER, 0),
        &LedgerError::InvalidAmount { amount_minor: 0 },
    );
    assert_refused(
        &fixture,
        freeze("ghost", MISSING, 10),
        &LedgerError::AccountNotFound(MISSING),
    );
}

#[test]
fn unfreezing_more_than_frozen_is_refused() {
    let mut fixture = funded_member(10_000);
    fixture.apply(&[single(freeze("f", MEMBER, 4_000))]);
    assert_eq!(fixture.view(MEMBER).available_minor, 6_000);
    let outcome = fixture.run(&singles(vec![
        unfreeze("u-1", MEMBER, 4_001),
        unfreeze("u-2", MEMBER, 1_500),
        unfreeze("u-3", MEMBER, 2_501),
        unfreeze("u-4", MEMBER, 2_500),
    ]));
    let error = err(&outcome, 0);
    assert_eq!(
        error,
        &LedgerError::InsufficientFrozen {
            account_id: MEMBER,
            frozen_minor: 4_000,
            amount_minor: 4_001,
        }
    );
    assert_eq!(error.code(), "INSUFFICIENT_FROZEN");
    let unfrozen = ok(&outcome, 1);
    assert_eq!(unfrozen.kind, TransferKind::Unfreeze);
    assert_eq!(unfrozen.amount_minor, Some(1_500));
    assert_eq!(
        err(&outcome, 2),
        &LedgerError::InsufficientFrozen {
            account_id: MEMBER,
            frozen_minor: 2_500,
            amount_minor: 2_501,
        }
    );
    ok(&outcome, 3);
    let member = fixture.view_after(&outcome, MEMBER);
    assert_eq!(member.frozen_minor, 0);
    assert_eq!(member.available_minor, 10_000);

    // Nothing frozen on the merchant.
    assert_refused(
        &Fixture::standard(),
        unfreeze("u", MERCHANT, 1),
        &LedgerError::InsufficientFrozen {
            account_id: MERCHANT,
            frozen_minor: 0,
            amount_minor: 1,
        },
    );
}

// ---------------------------------------------------------------------------
// Linked chains
// ---------------------------------------------------------------------------

#[test]
fn a_linked_chain_succeeds_as_one() {
    let fixture = funded_member(1_000);
    let outcome = fixture.run(&[
        linked(pay("a", MEMBER, MERCHANT, 600)),
        linked(pay("b", MEMBER, INCOME, 300)),
        single(pay("c", MEMBER, MERCHANT, 100)),
    ]);
    assert_eq!(codes(&outcome), vec!["OK", "OK", "OK"]);
    assert_eq!(fixture.view_after(&outcome, MEMBER).ledger_minor, 0);
    assert_eq!(
        outcome
            .new_transfers
            .iter()
            .map(|transfer| transfer.id)
            .collect::<Vec<_>>(),
        vec![1000, 1001, 1002]
    );
}

#[test]
fn a_linked_chain_fails_as_one() {
    let fixture = funded_member(1_000);
    let outcome = fixture.run(&[
        linked(pay("a", MEMBER, MERCHANT, 600)),
        linked(pay("b", MEMBER, INCOME, 300)),
        // Closes the chain, and fails: only 100 left.
        single(pay("c", MEMBER, MERCHANT, 200)),
        // After the chain: applied normally.
        single(pay("d", MEMBER, INCOME, 150)),
    ]);
    assert_eq!(err(&outcome, 0), &LedgerError::LinkedOperationFailed);
    assert_eq!(err(&outcome, 0).code(), "LINKED_OPERATION_FAILED");
    assert_eq!(err(&outcome, 1), &LedgerError::LinkedOperationFailed);
    assert_eq!(
        err(&outcome, 2),
        &LedgerError::InsufficientFunds {
            account_id: MEMBER,
            available_minor: 100,
            required_minor: 200,
        }
    );
    let after = ok(&outcome, 3);
    assert_eq!(after.key, "d");
    // Balances as if the chain never ran.
    assert_eq!(
        after.entries,
        vec![
            entry(1000, 0, MEMBER, Side::Debit, 150, false, 850),
            entry(1000, 1, INCOME, Side::Credit, 150, false, 150),
        ]
    );
    assert_eq!(outcome.new_transfers, vec![after.clone()]);
    assert_eq!(
        outcome.account_updates,
        vec![
            (
                MEMBER,
                Balances {
                    debits_posted_minor: 150,
                    credits_posted_minor: 1_000,
                    ..Balances::default()
                }
            ),
            (
                INCOME,
                Balances {
                    credits_posted_minor: 150,
                    ..Balances::default()
                }
            ),
        ]
    );
    assert_eq!(
        outcome.subject_deltas,
        vec![delta("2241", 150, 0), delta("6001", 0, 150)]
    );
}

#[test]
fn a_chain_failing_at_its_first_member_skips_the_rest() {
    let fixture = funded_member(1_000);
    let outcome = fixture.run(&[
        linked(pay("a", MEMBER, MERCHANT, 5_000)),
        linked(pay("b", MEMBER, INCOME, 300)),
        single(pay("c", MEMBER, MERCHANT, 100)),
    ]);
    assert_eq!(
        codes(&outcome),
        vec![
            "INSUFFICIENT_FUNDS",
            "LINKED_OPERATION_FAILED",
            "LINKED_OPERATION_FAILED"
        ]
    );
    assert_writes_nothing(&outcome);
}

#[test]
fn a_chain_failing_in_the_middle() {
    let fixture = funded_member(1_000);
    let outcome = fixture.run(&[
        single(pay("before", MEMBER, INCOME, 10)),
        linked(pay("a", MEMBER, MERCHANT, 100)),
        linked(pay("b", MEMBER, MISSING, 100)),
        single(pay("c", MEMBER, MERCHANT, 100)),
        linked(pay("next-chain-1", MEMBER, MERCHANT, 20)),
        single(pay("next-chain-2", MEMBER, MERCHANT, 30)),
    ]);
    assert_eq!(
        codes(&outcome),
        vec![
            "OK",
            "LINKED_OPERATION_FAILED",
            "ACCOUNT_NOT_FOUND",
            "LINKED_OPERATION_FAILED",
            "OK",
            "OK"
        ]
    );
    assert_eq!(
        fixture.view_after(&outcome, MEMBER).ledger_minor,
        1_000 - 60
    );
    assert_eq!(fixture.view_after(&outcome, MERCHANT).ledger_minor, 50);
    assert_eq!(
        outcome
            .new_transfers
            .iter()
            .map(|transfer| (transfer.id, transfer.key.as_str()))
            .collect::<Vec<_>>(),
        vec![
            (1000, "before"),
            (1001, "next-chain-1"),
            (1002, "next-chain-2")
        ]
    );
}

#[test]
fn a_failed_chain_undoes_statuses_keys_and_reservations() {
    let mut fixture = with_pending(3_000, None);
    fixture.apply(&[single(pay("sale", MEMBER, MERCHANT, 1_000))]);
    // Pending 1000 (3,000 reserved), sale 1001 (1,000 posted).
    let before_member = fixture.initial(MEMBER);
    let outcome = fixture.run(&[
        linked(post("post", 1000, Some(500))),
        linked(reverse("refund", 1001)),
        linked(freeze("freeze", MEMBER, 100)),
        linked(reserve("hold-2", MEMBER, INCOME, 50)),
        linked(pay("key", MEMBER, INCOME, 10)),
        single(pay("fails", MERCHANT, INCOME, 1_000_000)),
        // Retried after the failed chain: none of them was recorded.
        single(post("post", 1000, Some(500))),
        single(pay("key", MEMBER, INCOME, 10)),
    ]);
    assert_eq!(
        codes(&outcome),
        vec![
            "LINKED_OPERATION_FAILED",
            "LINKED_OPERATION_FAILED",
            "LINKED_OPERATION_FAILED",
            "LINKED_OPERATION_FAILED",
            "LINKED_OPERATION_FAILED",
            "INSUFFICIENT_FUNDS",
            "OK",
            "OK"
        ]
    );
    assert_eq!(ok(&outcome, 6).id, 1002);
    assert_eq!(ok(&outcome, 7).id, 1003);
    // The reversal was undone: 1001 keeps its status.
    assert_eq!(
        outcome.status_updates,
        vec![(1000, TransferStatus::PendingPosted)]
    );
    let member = fixture.balances_after(&outcome, MEMBER);
    assert_eq!(
        member,
        Balances {
            debits_posted_minor: before_member.debits_posted_minor + 500 + 10,
            debits_pending_minor: 0,
            frozen_minor: 0,
            ..before_member
        }
    );
    assert_eq!(outcome.new_transfers.len(), 2);
}

#[test]
fn a_batch_ending_in_an_open_chain_applies_none_of_it() {
    let fixture = funded_member(1_000);
    let outcome = fixture.run(&[
        single(pay("closed", MEMBER, MERCHANT, 100)),
        linked(pay("open-1", MEMBER, MERCHANT, 200)),
        linked(pay("open-2", MEMBER, INCOME, 300)),
    ]);
    ok(&outcome, 0);
    for index in [1, 2] {
        assert_eq!(err(&outcome, index), &LedgerError::LinkedChainOpen);
        assert_eq!(err(&outcome, index).code(), "LINKED_CHAIN_OPEN");
    }
    assert_eq!(outcome.new_transfers.len(), 1);
    assert_eq!(outcome.new_transfers[0].key, "closed");
    assert_eq!(fixture.view_after(&outcome, MEMBER).ledger_minor, 900);
    assert_eq!(fixture.view_after(&outcome, MERCHANT).ledger_minor, 100);
    assert_eq!(fixture.view_after(&outcome, INCOME).ledger_minor, 0);

    // An open chain with a failing member: all of it is still "open".
    let outcome = fixture.run(&[
        linked(pay("open-1", MEMBER, MERCHANT, 200)),
        linked(pay("open-2", MEMBER, MISSING, 300)),
        linked(pay("open-3", MEMBER, INCOME, 300)),
    ]);
    assert_eq!(
        codes(&outcome),
        vec![
            "LINKED_CHAIN_OPEN",
            "LINKED_CHAIN_OPEN",
            "LINKED_CHAIN_OPEN"
        ]
    );
    assert_writes_nothing(&outcome);

    // A single linked item at the end.
    let outcome = fixture.run(&[linked(pay("open", MEMBER, MERCHANT, 1))]);
    assert_eq!(codes(&outcome), vec!["LINKED_CHAIN_OPEN"]);
    assert_writes_nothing(&outcome);
}

// ---------------------------------------------------------------------------
// Hot accounts
// ---------------------------------------------------------------------------

#[test]
fn a_hot_account_is_written_once_per_batch() {
    let fixture = funded_member(10_000_000);
    let count: i64 = 1_000;
    let items: Vec<BatchItem> = (0..count)
        .map(|index| {
            let fee = index % 7 + 1;
            single(transfer_op(
                &format!("order-{index}"),
                vec![
                    debit(MEMBER, 1_000),
                    credit(MERCHANT, 1_000 - fee),
                    credit(INCOME, fee),
                ],
            ))
        })
        .collect();
    let fees: i64 = (0..count).map(|index| index % 7 + 1).sum();
    let outcome = fixture.run(&items);
    assert!(outcome.results.iter().all(Result::is_ok));
    assert_eq!(outcome.new_transfers.len(), 1_000);
    assert_eq!(outcome.new_transfers[0].id, 1000);
    assert_eq!(outcome.new_transfers[999].id, 1999);

    let income_updates: Vec<_> = outcome
        .account_updates
        .iter()
        .filter(|(id, _)| *id == INCOME)
        .collect();
    assert_eq!(
        income_updates,
        vec![&(
            INCOME,
            Balances {
                credits_posted_minor: fees,
                ..Balances::default()
            }
        )]
    );
    assert_eq!(outcome.account_updates.len(), 3);
    assert_eq!(
        fixture.balances_after(&outcome, MEMBER).debits_posted_minor,
        count * 1_000
    );
    assert_eq!(
        fixture.view_after(&outcome, MERCHANT).ledger_minor,
        count * 1_000 - fees
    );
    // The running balance of the last income entry is the total.
    assert_eq!(
        outcome.new_transfers[999].entries[2].balance_after_minor,
        fees
    );
    assert_eq!(
        outcome.subject_deltas,
        vec![
            delta("2202", 0, count * 1_000 - fees),
            delta("2241", count * 1_000, 0),
            delta("6001", 0, fees),
        ]
    );
}

// ---------------------------------------------------------------------------
// Property tests
// ---------------------------------------------------------------------------

/// How the random accounts are set up: (debits posted, credits posted,
/// frozen, overdraft limit); the last account is unlimited.
type AccountSeed = (i64, i64, i64, i64);

/// One random two-leg transfer: (from index, to index, amount, key index,
/// linked). Indexes past the accounts name a missing account.
type OpSeed = (usize, usize, i64, usize, bool);

const RANDOM_ACCOUNTS: usize = 6;

fn random_fixture(seeds: &[AccountSeed]) -> Fixture {
    let kinds = [
        AccountKind::MemberCash,
        AccountKind::MerchantAvailable,
        AccountKind::PlatformIncome,
        AccountKind::ChannelClearing,
        AccountKind::PlatformMarketing,
        AccountKind::Equity,
    ];
    let mut fixture = Fixture::empty();
    for (index, ((debits, credits, frozen, limit), kind)) in seeds.iter().zip(kinds).enumerate() {
        let id = AccountId::try_from(index).unwrap() + 1;
        let overdraft = if index == RANDOM_ACCOUNTS - 1 {
            Overdraft::Unlimited
        } else {
            Overdraft::Limit(*limit)
        };
        let mut account = make_account(id, kind, Currency::CNY, overdraft);
        account.balances = Balances {
            debits_posted_minor: *debits,
            credits_posted_minor: *credits,
            frozen_minor: *frozen,
            ..Balances::default()
        };
        fixture.add(account);
    }
    // One USD account, so that some transfers fail on the currency.
    let mut usd = make_account(
        100,
        AccountKind::MemberCash,
        Currency::USD,
        Overdraft::Unlimited,
    );
    usd.balances.credits_posted_minor = 1_000;
    fixture.add(usd);
    fixture
}

fn account_id_of(index: usize) -> AccountId {
    match index {
        index if index < RANDOM_ACCOUNTS => AccountId::try_from(index).unwrap() + 1,
        index if index == RANDOM_ACCOUNTS => 100,
        _ => MISSING,
    }
}

fn random_items(ops: &[OpSeed]) -> Vec<BatchItem> {
    ops.iter()
        .map(|(from, to, amount, key, linked)| BatchItem {
            operation: pay(
                &format!("k{key}"),
                account_id_of(*from),
                account_id_of(*to),
                *amount,
            ),
            linked: *linked,
        })
        .collect()
}

/// What the model expects of one item: the transfer id, or the error code.
type ModelResult = Result<TransferId, &'static str>;

/// An independent model of two-leg posted transfers: what each item should
/// return (the transfer id or the error code) and the final posted totals.
fn model(fixture: &Fixture, ops: &[OpSeed]) -> (Vec<ModelResult>, HashMap<AccountId, (i64, i64)>) {
    #[derive(Clone)]
    struct State {
        posted: HashMap<AccountId, (i64, i64)>,
        keys: HashMap<String, (AccountId, AccountId, i64, TransferId)>,
        next_id: TransferId,
    }

    fn apply_one(
        fixture: &Fixture,
        state: &mut State,
        key: &str,
        from: AccountId,
        to: AccountId,
        amount: i64,
    ) -> ModelResult {
        if let Some((stored_from, stored_to, stored_amount, id)) = state.keys.get(key) {
            return if (*stored_from, *stored_to, *stored_amount) == (from, to, amount) {
                Ok(*id)
            } else {
                Err("DUPLICATE_KEY_CONFLICT")
            };
        }
        if amount <= 0 {
            return Err("INVALID_AMOUNT");
        }
        if from == to {
            return Err("ACCOUNT_ON_BOTH_SIDES");
        }
        for id in [from, to] {
            let Some(account) = fixture.loaded.accounts.get(&id) else {
                return Err("ACCOUNT_NOT_FOUND");
            };
            if account.currency != Currency::CNY {
                return Err("CURRENCY_MISMATCH");
            }
        }
        for (id, side) in [(from, Side::Debit), (to, Side::Credit)] {
            let account = &fixture.loaded.accounts[&id];
            let (debits, credits) = state.posted[&id];
            let normal = account.normal_side();
            let ledger = if normal == Side::Debit {
                debits - credits
            } else {
                credits - debits
            };
            let available = ledger - account.balances.frozen_minor;
            let lowers = side != normal;
            if let Overdraft::Limit(limit) = account.overdraft
                && lowers
                && available - amount < -limit
            {
                return Err("INSUFFICIENT_FUNDS");
            }
        }
        state.posted.get_mut(&from).unwrap().0 += amount;
        state.posted.get_mut(&to).unwrap().1 += amount;
        let id = state.next_id;
        state.next_id += 1;
        state.keys.insert(key.to_owned(), (from, to, amount, id));
        Ok(id)
    }

    let mut state = State {
        posted: fixture
            .loaded
            .accounts
            .values()
            .map(|account| {
                (
                    account.id,
                    (
                        account.balances.debits_posted_minor,
                        account.balances.credits_posted_minor,
                    ),
                )
            })
            .collect(),
        keys: HashMap::new(),
        next_id: fixture.next_id,
    };
    let mut results = Vec::new();
    let mut start = 0;
    while start < ops.len() {
        // A group: linked items up to and including the first unlinked one.
        let end = (start..ops.len())
            .find(|index| !ops[*index].4)
            .map_or(ops.len(), |index| index + 1);
        let closed = !ops[end - 1].4;
        let snapshot = state.clone();
        let mut group: Vec<ModelResult> = Vec::new();
        let mut failed = false;
        for (from, to, amount, key, _) in &ops[start..end] {
            if failed {
                group.push(Err("LINKED_OPERATION_FAILED"));
                continue;
            }
            let result = apply_one(
                fixture,
                &mut state,
                &format!("k{key}"),
                account_id_of(*from),
                account_id_of(*to),
                *amount,
            );
            if result.is_err() {
                failed = true;
                group.fill(Err("LINKED_OPERATION_FAILED"));
            }
            group.push(result);
        }
        if !closed {
            group = vec![Err("LINKED_CHAIN_OPEN"); group.len()];
        }
        if failed || !closed {
            state = snapshot;
        }
        results.extend(group);
        start = end;
    }
    (results, state.posted)
}

fn account_seed() -> impl Strategy<Value = AccountSeed> {
    (
        0i64..3_000,
        0i64..3_000,
        0i64..300,
        prop_oneof![Just(0i64), 0i64..1_000],
    )
}

fn op_seed() -> impl Strategy<Value = OpSeed> {
    (
        prop_oneof![10 => 0..RANDOM_ACCOUNTS, 1 => RANDOM_ACCOUNTS..RANDOM_ACCOUNTS + 2],
        prop_oneof![10 => 0..RANDOM_ACCOUNTS, 1 => RANDOM_ACCOUNTS..RANDOM_ACCOUNTS + 2],
        prop_oneof![1 => -10i64..=0, 12 => 1i64..2_500],
        0usize..40,
        prop::bool::weighted(0.25),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_batches_keep_the_books_straight(
        seeds in prop::collection::vec(account_seed(), RANDOM_ACCOUNTS),
        ops in prop::collection::vec(op_seed(), 0..48),
    ) {
        let fixture = random_fixture(&seeds);
        let items = random_items(&ops);
        let ids = fixture.ids(items.len());
        let outcome = apply_batch(&fixture.loaded, &items, &ids, NOW);
        prop_assert_eq!(outcome.results.len(), items.len());

        // (1) Every new transfer balances.
        prop_assert!(verify_outcome(&outcome).is_ok());

        // (2) Final totals are the initial ones plus the new entries.
        let mut expected: HashMap<AccountId, Balances> = fixture
            .loaded
            .accounts
            .values()
            .map(|account| (account.id, account.balances))
            .collect();
        for entry in outcome.new_transfers.iter().flat_map(|transfer| &transfer.entries) {
            let balances = expected.get_mut(&entry.account_id).unwrap();
            match (entry.pending, entry.side) {
                (false, Side::Debit) => balances.debits_posted_minor += entry.amount_minor,
                (false, Side::Credit) => balances.credits_posted_minor += entry.amount_minor,
                (true, Side::Debit) => balances.debits_pending_minor += entry.amount_minor,
                (true, Side::Credit) => balances.credits_pending_minor += entry.amount_minor,
            }
        }
        let mut seen = std::collections::HashSet::new();
        for (id, _) in &outcome.account_updates {
            prop_assert!(seen.insert(*id), "account {} updated twice", id);
        }
        for (id, expected_balances) in &expected {
            prop_assert_eq!(&fixture.balances_after(&outcome, *id), expected_balances);
        }
        // Only changed accounts are written.
        for (id, balances) in &outcome.account_updates {
            prop_assert_ne!(balances, &fixture.initial(*id));
        }

        // (3) No limited account ends below its floor unless it began there.
        for account in fixture.loaded.accounts.values() {
            if let Overdraft::Limit(limit) = account.overdraft {
                let before = account.balance().unwrap().available_minor;
                let after = fixture.view_after(&outcome, account.id).available_minor;
                prop_assert!(
                    after >= -limit || after >= before,
                    "account {} went from {} to {} with limit {}",
                    account.id, before, after, limit
                );
            }
        }

        // (4) The batch moved as much to debits as to credits.
        let mut debits_delta = 0i64;
        let mut credits_delta = 0i64;
        for account in fixture.loaded.accounts.values() {
            let after = fixture.balances_after(&outcome, account.id);
            debits_delta += after.debits_posted_minor - account.balances.debits_posted_minor;
            credits_delta += after.credits_posted_minor - account.balances.credits_posted_minor;
        }
        prop_assert_eq!(debits_delta, credits_delta);

        // Subject deltas agree with the account deltas.
        let subject_debits: i64 = outcome.subject_deltas.iter().map(|d| d.debits_minor).sum();
        let subject_credits: i64 = outcome.subject_deltas.iter().map(|d| d.credits_minor).sum();
        prop_assert_eq!(subject_debits, debits_delta);
        prop_assert_eq!(subject_credits, credits_delta);

        // New transfers take the given ids in order, and their keys are unique.
        let new_ids: Vec<TransferId> = outcome.new_transfers.iter().map(|t| t.id).collect();
        prop_assert_eq!(&new_ids[..], &ids[..new_ids.len()]);
        let keys: std::collections::HashSet<&str> =
            outcome.new_transfers.iter().map(|t| t.key.as_str()).collect();
        prop_assert_eq!(keys.len(), outcome.new_transfers.len());

        // Every item's result is what the independent model says.
        let (expected_results, expected_posted) = model(&fixture, &ops);
        let actual: Vec<ModelResult> = outcome
            .results
            .iter()
            .map(|result| result.as_ref().map(|t| t.id).map_err(LedgerError::code))
            .collect();
        prop_assert_eq!(actual, expected_results);
        for (id, (debits, credits)) in expected_posted {
            let after = fixture.balances_after(&outcome, id);
            prop_assert_eq!((after.debits_posted_minor, after.credits_posted_minor), (debits, credits));
        }
    }
}

// ---------------------------------------------------------------------------
// Overflow
// ---------------------------------------------------------------------------

#[test]
fn an_overflowing_total_is_refused() {
    let mut fixture = Fixture::standard();
    fixture.fund(MERCHANT, i64::MAX - 5);
    fixture.set_overdraft(MEMBER, Overdraft::Unlimited);
    let outcome = fixture.run(&singles(vec![
        pay("overflow", MEMBER, MERCHANT, 6),
        pay("fits", MEMBER, MERCHANT, 5),
    ]));
    let error = err(&outcome, 0);
    assert_eq!(error, &LedgerError::Overflow);
    assert_eq!(error.code(), "AMOUNT_OVERFLOW");
    ok(&outcome, 1);
    assert_eq!(
        fixture
            .balances_after(&outcome, MERCHANT)
            .credits_posted_minor,
        i64::MAX
    );
}

// ---------------------------------------------------------------------------
// Mixed random batches, checked against the journal
// ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum OpSpec {
    Pay(usize, usize, i64),
    Reserve(usize, usize, i64, Option<u64>),
    Post(i64, Option<i64>),
    Void(i64),
    Reverse(i64),
    Freeze(usize, i64),
    Unfreeze(usize, i64),
}

fn op_spec() -> impl Strategy<Value = OpSpec> {
    let account = || prop_oneof![12 => 0..RANDOM_ACCOUNTS, 1 => Just(RANDOM_ACCOUNTS)];
    let amount = || prop_oneof![1 => -1i64..=0, 20 => 1i64..1_500];
    // Most targets name a transfer of an earlier batch or of this one.
    let target = || prop_oneof![6 => 0i64..12, 1 => 12i64..40];
    prop_oneof![
        4 => (account(), account(), amount()).prop_map(|(f, t, a)| OpSpec::Pay(f, t, a)),
        3 => (account(), account(), amount(), prop_oneof![Just(None), Just(Some(60u64))])
            .prop_map(|(f, t, a, timeout)| OpSpec::Reserve(f, t, a, timeout)),
        3 => (target(), prop_oneof![Just(None), (0i64..1_600).prop_map(Some)])
            .prop_map(|(target, amount)| OpSpec::Post(target, amount)),
        2 => target().prop_map(OpSpec::Void),
        2 => target().prop_map(OpSpec::Reverse),
        1 => (account(), amount()).prop_map(|(a, m)| OpSpec::Freeze(a, m)),
        1 => (account(), amount()).prop_map(|(a, m)| OpSpec::Unfreeze(a, m)),
    ]
}

fn spec_operation(spec: &OpSpec, key: &str) -> Operation {
    match spec {
        OpSpec::Pay(from, to, amount) => {
            pay(key, account_id_of(*from), account_id_of(*to), *amount)
        }
        OpSpec::Reserve(from, to, amount, timeout) => pending_op(
            key,
            vec![
                debit(account_id_of(*from), *amount),
                credit(account_id_of(*to), *amount),
            ],
            *timeout,
        ),
        OpSpec::Post(target, amount) => post(key, 1000 + target, *amount),
        OpSpec::Void(target) => void(key, 1000 + target),
        OpSpec::Reverse(target) => reverse(key, 1000 + target),
        OpSpec::Freeze(account, amount) => freeze(key, account_id_of(*account), *amount),
        OpSpec::Unfreeze(account, amount) => unfreeze(key, account_id_of(*account), *amount),
    }
}

/// Re-derives every account's totals from the stored journal and checks
/// the links between transfers, as a store's `check` would.
fn check_against_journal(
    fixture: &Fixture,
    initial: &HashMap<AccountId, Balances>,
) -> Result<(), TestCaseError> {
    let mut derived = initial.clone();
    let transfers = &fixture.loaded.transfers_by_id;
    for transfer in transfers.values() {
        for entry in &transfer.entries {
            let balances = derived.get_mut(&entry.account_id).unwrap();
            match (entry.pending, entry.side) {
                (false, Side::Debit) => balances.debits_posted_minor += entry.amount_minor,
                (false, Side::Credit) => balances.credits_posted_minor += entry.amount_minor,
                (true, Side::Debit) if transfer.status == TransferStatus::Pending => {
                    balances.debits_pending_minor += entry.amount_minor;
                }
                (true, Side::Credit) if transfer.status == TransferStatus::Pending => {
                    balances.credits_pending_minor += entry.amount_minor;
                }
                (true, _) => {}
            }
        }
        match transfer.kind {
            TransferKind::Freeze => {
                let account = transfer.account_id.unwrap();
                derived.get_mut(&account).unwrap().frozen_minor += transfer.amount_minor.unwrap();
            }
            TransferKind::Unfreeze => {
                let account = transfer.account_id.unwrap();
                derived.get_mut(&account).unwrap().frozen_minor -= transfer.amount_minor.unwrap();
            }
            _ => {}
        }
        // Status and links.
        let resolved_by = |kind: TransferKind| {
            transfers
                .values()
                .filter(|other| other.kind == kind && other.target_id == Some(transfer.id))
                .count()
        };
        let expected_status = match transfer.kind {
            TransferKind::Pending => match (
                resolved_by(TransferKind::PostPending),
                resolved_by(TransferKind::VoidPending),
            ) {
                (0, 0) => TransferStatus::Pending,
                (1, 0) => TransferStatus::PendingPosted,
                (0, 1) => TransferStatus::Voided,
                counts => return Err(TestCaseError::fail(format!("{}: {counts:?}", transfer.id))),
            },
            TransferKind::Transfer | TransferKind::PostPending => {
                match resolved_by(TransferKind::Reversal) {
                    0 => TransferStatus::Posted,
                    1 => TransferStatus::Reversed,
                    count => {
                        return Err(TestCaseError::fail(format!(
                            "{} reversed {count} times",
                            transfer.id
                        )));
                    }
                }
            }
            _ => TransferStatus::Posted,
        };
        prop_assert_eq!(transfer.status, expected_status, "transfer {}", transfer.id);
        if let Some(target_id) = transfer.target_id {
            let target = &transfers[&target_id];
            prop_assert!(target.id < transfer.id);
            if transfer.kind == TransferKind::PostPending {
                prop_assert_eq!(target.kind, TransferKind::Pending);
                prop_assert!(
                    target
                        .expires_at
                        .is_none_or(|expires| expires > transfer.created_at)
                );
            }
        }
        prop_assert_eq!(&fixture.loaded.transfers_by_key[&transfer.key], transfer);
    }
    for (id, balances) in &derived {
        prop_assert_eq!(
            &fixture.loaded.accounts[id].balances,
            balances,
            "account {}",
            id
        );
        prop_assert!(balances.debits_pending_minor >= 0 && balances.credits_pending_minor >= 0);
        prop_assert!(balances.frozen_minor >= 0);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_mixed_batches_match_the_journal(
        seeds in prop::collection::vec(account_seed(), RANDOM_ACCOUNTS),
        batches in prop::collection::vec(
            (
                prop::collection::vec((op_spec(), 0usize..60, prop::bool::weighted(0.15)), 0..24),
                prop_oneof![Just(0i64), Just(30), Just(120)],
            ),
            1..4,
        ),
    ) {
        let mut fixture = random_fixture(&seeds);
        let initial: HashMap<AccountId, Balances> = fixture
            .loaded
            .accounts
            .values()
            .map(|account| (account.id, account.balances))
            .collect();
        // Give the targets something to name: 1000..=1004 posted, 1005..=1009
        // pending (every other one with a timeout), all from the unlimited
        // equity account towards each account's normal side.
        let equity = account_id_of(RANDOM_ACCOUNTS - 1);
        let mut setup = Vec::new();
        for pending in [false, true] {
            for index in 0..RANDOM_ACCOUNTS - 1 {
                let id = account_id_of(index);
                let (from, to) = match fixture.loaded.accounts[&id].normal_side() {
                    Side::Credit => (equity, id),
                    Side::Debit => (id, equity),
                };
                let key = format!("setup-{pending}-{index}");
                setup.push(single(if pending {
                    let timeout = (index % 2 == 0).then_some(60);
                    pending_op(&key, vec![debit(from, 200), credit(to, 200)], timeout)
                } else {
                    pay(&key, from, to, 1_000)
                }));
            }
        }
        let outcome = fixture.apply(&setup);
        prop_assert!(outcome.results.iter().all(Result::is_ok));
        check_against_journal(&fixture, &initial)?;

        let mut now = NOW;
        for (ops, step_seconds) in &batches {
            now += step_seconds * SECOND;
            let items: Vec<BatchItem> = ops
                .iter()
                .map(|(spec, key, linked)| BatchItem {
                    operation: spec_operation(spec, &format!("k{key}")),
                    linked: *linked,
                })
                .collect();
            let before: HashMap<AccountId, BalanceView> = fixture
                .loaded
                .accounts
                .values()
                .map(|account| (account.id, account.balance().unwrap()))
                .collect();
            let outcome = fixture.run_at(&items, now);

            // Posted totals move equally on both sides.
            let mut debits_delta = 0i64;
            let mut credits_delta = 0i64;
            for account in fixture.loaded.accounts.values() {
                let after = fixture.balances_after(&outcome, account.id);
                debits_delta += after.debits_posted_minor - account.balances.debits_posted_minor;
                credits_delta += after.credits_posted_minor - account.balances.credits_posted_minor;
            }
            prop_assert_eq!(debits_delta, credits_delta);

            // No limited account is pushed below its floor.
            for account in fixture.loaded.accounts.values() {
                if let Overdraft::Limit(limit) = account.overdraft {
                    let before = before[&account.id].available_minor;
                    let after = fixture.view_after(&outcome, account.id).available_minor;
                    prop_assert!(after >= -limit || after >= before);
                }
            }

            fixture.commit(&outcome);
            check_against_journal(&fixture, &initial)?;
        }
    }
}
