//! What reconciliation keeps in the database: imported statement files,
//! runs, discrepancies and the log of what was done about each.

use crate::{Class, DiscrepancyStatus, RecordKind, SideFigures, TimestampMicros, Treatment};
use ledger::StoreError;
use std::future::Future;

/// A statement file to record as imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewStatementFile {
    pub channel: String,
    pub business_day: i32,
    pub file_name: String,
    /// Hex SHA-256 of the file's bytes: the same content twice is one file.
    pub sha256: String,
    pub format: String,
    pub records: u64,
    /// Where its records were written in reconciliation storage.
    pub record_path: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementFile {
    pub id: i64,
    pub file: NewStatementFile,
    pub imported_at: TimestampMicros,
}

/// One of our channel orders as a snapshot copies it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelOrderRecord {
    pub id: i64,
    pub kind: RecordKind,
    pub amount_minor: i64,
    pub currency: String,
    /// `CREATED`, `PROCESSING`, `SUCCESS` or `FAILED`.
    pub status: String,
    pub channel_transaction_id: Option<String>,
    /// What the channel said on success: its business date (`YYYYMMDD`) and fee.
    pub channel_business_date: Option<String>,
    pub channel_fee_minor: Option<i64>,
    pub updated_at: TimestampMicros,
}

/// Whose a channel order is: the payment (and refund) it belongs to, and
/// what the trade says about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelOrderOwner {
    pub channel_order_id: i64,
    pub merchant_id: String,
    pub payment_id: i64,
    pub refund_id: Option<i64>,
    /// The payment that paid the trade, if one did.
    pub trade_paid_by: Option<i64>,
}

impl ChannelOrderOwner {
    /// A collection whose trade another payment already paid: a success of
    /// it is a duplicate payment (重复支付).
    pub fn is_duplicate_payment(&self) -> bool {
        self.refund_id.is_none()
            && self
                .trade_paid_by
                .is_some_and(|paid| paid != self.payment_id)
    }
}

/// Rows a snapshot reads per page.
pub const SNAPSHOT_PAGE_ROWS_MAX: u32 = 10_000;

/// The outcome of one run, in numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconRun {
    pub channel: String,
    pub business_day: i32,
    pub platform_records: u64,
    pub channel_records: u64,
    pub matched: u64,
    pub discrepancies: u64,
    /// Keys per class, as `CLASS=count` pairs separated by spaces.
    pub summary: String,
    pub finished_at: TimestampMicros,
}

/// A discrepancy as stored: found once, carried until settled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discrepancy {
    pub id: i64,
    pub channel: String,
    pub key: String,
    pub kind: RecordKind,
    pub class: Class,
    pub error_code: String,
    pub treatment: Treatment,
    pub status: DiscrepancyStatus,
    /// The business day of the run that first found it, and of the latest.
    pub first_day: i32,
    pub last_day: i32,
    pub channel_count: u64,
    pub platform: Option<SideFigures>,
    pub channel_side: Option<SideFigures>,
    pub created_at: TimestampMicros,
    pub updated_at: TimestampMicros,
}

/// What a run found for a key, with its code, to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscrepancyUpdate<'a> {
    pub channel: &'a str,
    pub finding: &'a crate::Finding,
    pub error_code: &'a str,
    pub treatment: Treatment,
    pub business_day: i32,
}

/// A change of a discrepancy's status, logged with who did it and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscrepancyAction {
    pub discrepancy_id: i64,
    /// Unique per action: repeating an action with the same key does nothing.
    pub action_key: String,
    pub action: String,
    pub from_status: DiscrepancyStatus,
    pub to_status: DiscrepancyStatus,
    /// `rule:R101`, `run:simbank:2026-11-22` or an operator's name.
    pub actor: String,
    pub reason: String,
    pub at: TimestampMicros,
}

/// Which discrepancies to list.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DiscrepancyQuery {
    pub channel: Option<String>,
    pub status: Option<DiscrepancyStatus>,
    /// Only ids above this one (paging).
    pub after_id: i64,
    pub limit: u32,
}

/// Discrepancies listed per page, at most.
pub const DISCREPANCY_PAGE_MAX: u32 = 1_000;

/// Channel orders confirmed per call of `ReconStore::confirm_channel_orders`,
/// at most: one transaction each.
pub const CONFIRM_ORDERS_MAX: usize = 10_000;

#[derive(Debug, thiserror::Error)]
pub enum ReconStoreError {
    /// The same bytes were imported before.
    #[error(
        "statement file already imported as {file_name} (id {id}) on business day {business_day}"
    )]
    AlreadyImported {
        id: i64,
        file_name: String,
        business_day: i32,
    },
    #[error("discrepancy {0} does not exist")]
    NoSuchDiscrepancy(i64),
    #[error("{given} channel orders to confirm at once; at most {max}")]
    TooManyOrders { given: usize, max: usize },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ReconStoreError {
    pub fn code(&self) -> &'static str {
        match self {
            ReconStoreError::AlreadyImported { .. } => "STATEMENT_ALREADY_IMPORTED",
            ReconStoreError::NoSuchDiscrepancy(_) => "DISCREPANCY_NOT_FOUND",
            ReconStoreError::TooManyOrders { .. } => "TOO_MANY_ORDERS",
            ReconStoreError::Store(_) => "STORE_FAILED",
        }
    }
}

/// Storage of reconciliation, implemented by both stores.
pub trait ReconStore: Send + Sync {
    /// Records an imported file; refuses content imported before.
    fn record_statement_file(
        &self,
        file: &NewStatementFile,
        now: TimestampMicros,
    ) -> impl Future<Output = Result<StatementFile, ReconStoreError>> + Send;

    fn statement_files(
        &self,
        channel: &str,
        business_day: i32,
    ) -> impl Future<Output = Result<Vec<StatementFile>, ReconStoreError>> + Send;

    /// One page of a channel's orders of a business day, by id: those the
    /// channel's answer dated `business_date` (`YYYYMMDD`), and those without
    /// such a date whose last change falls in `[from, to)`.
    fn snapshot_page(
        &self,
        channel: &str,
        business_date: &str,
        from: TimestampMicros,
        to: TimestampMicros,
        after_id: i64,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<ChannelOrderRecord>, ReconStoreError>> + Send;

    /// The current state of the named channel orders (carried keys).
    fn channel_orders_by_id(
        &self,
        ids: &[i64],
    ) -> impl Future<Output = Result<Vec<ChannelOrderRecord>, ReconStoreError>> + Send;

    /// The payment and refund a channel order belongs to.
    fn channel_order_owner(
        &self,
        channel_order_id: i64,
    ) -> impl Future<Output = Result<Option<ChannelOrderOwner>, ReconStoreError>> + Send;

    /// Stores a run's numbers, replacing an earlier run of the same day.
    fn save_run(&self, run: &ReconRun) -> impl Future<Output = Result<(), ReconStoreError>> + Send;

    fn runs(
        &self,
        channel: &str,
    ) -> impl Future<Output = Result<Vec<ReconRun>, ReconStoreError>> + Send;

    /// Inserts a finding as an OPEN discrepancy, or updates the unsettled
    /// one of the same key with the latest figures and code. A settled
    /// discrepancy (TREATED or RESOLVED) is left as it is: it is returned,
    /// and the caller decides.
    fn upsert_discrepancy(
        &self,
        update: &DiscrepancyUpdate<'_>,
        now: TimestampMicros,
    ) -> impl Future<Output = Result<Discrepancy, ReconStoreError>> + Send;

    fn discrepancy(
        &self,
        id: i64,
    ) -> impl Future<Output = Result<Option<Discrepancy>, ReconStoreError>> + Send;

    fn discrepancies(
        &self,
        query: &DiscrepancyQuery,
    ) -> impl Future<Output = Result<Vec<Discrepancy>, ReconStoreError>> + Send;

    /// Moves a discrepancy from `action.from_status` to `action.to_status`
    /// and logs the action, in one transaction. Returns false, changing
    /// nothing, if the status was no longer `from_status` or the action key
    /// was used before.
    fn change_discrepancy(
        &self,
        action: &DiscrepancyAction,
    ) -> impl Future<Output = Result<bool, ReconStoreError>> + Send;

    fn actions(
        &self,
        discrepancy_id: i64,
    ) -> impl Future<Output = Result<Vec<DiscrepancyAction>, ReconStoreError>> + Send;

    /// 对账确认: reconciliation agrees with the channel on these orders, so
    /// the clearing entries of their payments or refunds become
    /// reconciled (settleable under reconciled-only terms). Only SUCCESS
    /// orders count; an entry already reconciled is left alone. At most
    /// [`CONFIRM_ORDERS_MAX`] ids, in one transaction. Returns how many
    /// entries changed.
    fn confirm_channel_orders(
        &self,
        channel_order_ids: &[i64],
    ) -> impl Future<Output = Result<u64, ReconStoreError>> + Send;

    /// 内部对账: every order against the journal and every transfer against
    /// the orders, over the whole store (see [`crate::InternalReport`]).
    fn internal_check(
        &self,
    ) -> impl Future<Output = Result<crate::InternalReport, ReconStoreError>> + Send;
}
