use crate::{
    Account, AccountError, AccountId, BatchItem, InvariantViolation, LedgerError, NewAccount, Side,
    TimestampMicros, Transfer, TransferId, TransferKind,
};
use money::Currency;
use std::future::Future;

/// Most lines one statement page may hold.
pub const STATEMENT_LINES_MAX: usize = 1_000;

/// A failure of the store itself, as opposed to a refused operation.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(String),
    #[error(transparent)]
    Account(#[from] AccountError),
    #[error(transparent)]
    Invariant(#[from] InvariantViolation),
    #[error("a batch holds at most {max} operations, got {count}")]
    BatchTooLarge { count: usize, max: usize },
    #[error("stored data cannot be read: {0}")]
    Corrupt(String),
    #[error("the ledger is shutting down")]
    Closed,
}

/// One line of an account statement (账单): an entry with what the account
/// needs to read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementLine {
    pub transfer_id: TransferId,
    pub leg_index: u32,
    pub kind: TransferKind,
    pub side: Side,
    pub amount_minor: i64,
    pub currency: Currency,
    pub pending: bool,
    pub balance_after_minor: i64,
    pub posted_at: TimestampMicros,
    pub description: String,
    /// The accounts on the other side of the same transfer.
    pub counterparty_account_ids: Vec<AccountId>,
}

/// Which lines of a statement to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatementQuery {
    pub account_id: AccountId,
    pub from: TimestampMicros,
    /// Exclusive.
    pub to: TimestampMicros,
    /// Lines after this transfer id (a page cursor); 0 for the first page.
    pub after_transfer_id: TransferId,
    pub limit: usize,
}

/// The outcome of the invariant check over a whole store.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckReport {
    pub accounts_checked: u64,
    pub transfers_checked: u64,
    pub entries_checked: u64,
    pub subjects_checked: u64,
    /// One sentence per broken invariant; empty when the ledger is sound.
    pub violations: Vec<String>,
}

impl CheckReport {
    pub fn is_sound(&self) -> bool {
        self.violations.is_empty()
    }
}

/// A ledger store. SQLite and PostgreSQL implement it and pass one contract
/// suite.
pub trait LedgerStore: Send + Sync {
    /// Opens an account with zero balances.
    fn create_account(
        &self,
        account: &NewAccount,
    ) -> impl Future<Output = Result<Account, StoreError>> + Send;

    fn account(
        &self,
        account_id: AccountId,
    ) -> impl Future<Output = Result<Option<Account>, StoreError>> + Send;

    /// Applies a batch in one durable commit: every result is final once
    /// this returns. Refused operations change nothing.
    fn commit_batch(
        &self,
        items: &[BatchItem],
        now: TimestampMicros,
    ) -> impl Future<Output = Result<Vec<Result<Transfer, LedgerError>>, StoreError>> + Send;

    fn transfer(
        &self,
        transfer_id: TransferId,
    ) -> impl Future<Output = Result<Option<Transfer>, StoreError>> + Send;

    /// Pending transfers whose timeout has passed by `now`, oldest first.
    fn expired_pending(
        &self,
        now: TimestampMicros,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<TransferId>, StoreError>> + Send;

    /// The posted (ledger) balance of an account as of `at`, inclusive.
    fn balance_at(
        &self,
        account_id: AccountId,
        at: TimestampMicros,
    ) -> impl Future<Output = Result<i64, StoreError>> + Send;

    fn statement(
        &self,
        query: StatementQuery,
    ) -> impl Future<Output = Result<Vec<StatementLine>, StoreError>> + Send;

    /// Re-derives every total from the journal and compares.
    fn check(&self) -> impl Future<Output = Result<CheckReport, StoreError>> + Send;
}

/// What the rest of paycore needs to move money: open (or find) accounts
/// and submit operations. `store::Ledger` implements it over the group
/// committer; domain crates depend on this trait, not on a store.
pub trait LedgerWriter: Send + Sync {
    /// The id of the account with this owner, kind and currency, opened
    /// now if it does not exist yet.
    fn open_account(
        &self,
        account: &NewAccount,
    ) -> impl Future<Output = Result<AccountId, StoreError>> + Send;

    /// Commits `items` durably; see [`LedgerStore::commit_batch`].
    fn submit(
        &self,
        items: Vec<BatchItem>,
    ) -> impl Future<Output = Result<Vec<Result<Transfer, LedgerError>>, StoreError>> + Send;

    /// An account's balances as committed now; `None` when there is no
    /// such account. What a flow reads to decide a split (a stored-value
    /// draw); the ledger still checks every posting.
    fn balance(
        &self,
        account_id: AccountId,
    ) -> impl Future<Output = Result<Option<crate::BalanceView>, StoreError>> + Send;
}
