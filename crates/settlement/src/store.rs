//! Where clearing entries and settlement batches live: the
//! [`SettlementStore`] trait, implemented by the `store` crate for SQLite
//! and PostgreSQL.

use crate::{ClearingEntry, ClearingTotals, SettlementLine};
use ledger::{StoreError, TimestampMicros};
use money::Currency;
use std::future::Future;

/// Why a settlement store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum SettlementStoreError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("settlement batch {id} is not {expected}")]
    ConcurrentChange { id: i64, expected: &'static str },
    #[error(
        "settlement batch of merchant {merchant_id} on {settle_date}: expected {expected} \
         entries, marked {marked}; nothing was changed"
    )]
    EntriesChanged {
        merchant_id: String,
        settle_date: String,
        expected: u64,
        marked: u64,
    },
    #[error(
        "another settlement run created batches since version {expected_version} was read; \
         nothing was changed"
    )]
    SettledMeanwhile { expected_version: i64 },
    #[error("settlement batch {0} not found")]
    NotFound(i64),
    #[error(
        "fee bill of merchant {merchant_id} for {month}: expected {expected} fees, marked \
         {marked}; nothing was changed"
    )]
    FeesChanged {
        merchant_id: String,
        month: String,
        expected: u64,
        marked: u64,
    },
    #[error("fee bill {id} is not {expected}")]
    FeeBillConcurrentChange { id: i64, expected: &'static str },
}

impl SettlementStoreError {
    pub fn code(&self) -> &'static str {
        match self {
            SettlementStoreError::Store(_) => "STORE_ERROR",
            SettlementStoreError::ConcurrentChange { .. } => "CONCURRENT_CHANGE",
            SettlementStoreError::EntriesChanged { .. } => "SETTLEMENT_ENTRIES_CHANGED",
            SettlementStoreError::SettledMeanwhile { .. } => "SETTLEMENT_CONCURRENT_RUN",
            SettlementStoreError::NotFound(_) => "SETTLEMENT_BATCH_NOT_FOUND",
            SettlementStoreError::FeesChanged { .. } => "FEE_BILL_FEES_CHANGED",
            SettlementStoreError::FeeBillConcurrentChange { .. } => "CONCURRENT_CHANGE",
        }
    }
}

/// Where a batch stands.
///
/// `CARRIED` (net negative), `BELOW_MINIMUM` and `HELD` (part of the
/// merchant's settlement-pending money is reserved for refunds still in
/// flight, such as those waiting for review) batches hold no entries and
/// post nothing: their entries stay unsettled and are netted again by the
/// next run. A paying batch goes `PENDING` (entries marked) → `POSTED`
/// (settlement-pending → available, fees → income, in the ledger) and, for a
/// bank destination, → `PAYING` → `PAID` or `PAYOUT_FAILED`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BatchStatus {
    Carried,
    BelowMinimum,
    Held,
    Pending,
    Posted,
    Paying,
    Paid,
    PayoutFailed,
}

impl BatchStatus {
    pub const ALL: [BatchStatus; 8] = [
        BatchStatus::Carried,
        BatchStatus::BelowMinimum,
        BatchStatus::Held,
        BatchStatus::Pending,
        BatchStatus::Posted,
        BatchStatus::Paying,
        BatchStatus::Paid,
        BatchStatus::PayoutFailed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            BatchStatus::Carried => "CARRIED",
            BatchStatus::BelowMinimum => "BELOW_MINIMUM",
            BatchStatus::Held => "HELD",
            BatchStatus::Pending => "PENDING",
            BatchStatus::Posted => "POSTED",
            BatchStatus::Paying => "PAYING",
            BatchStatus::Paid => "PAID",
            BatchStatus::PayoutFailed => "PAYOUT_FAILED",
        }
    }

    pub fn parse(text: &str) -> Option<BatchStatus> {
        BatchStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == text)
    }

    /// Whether the batch holds entries (and so its money moved or will).
    pub fn holds_entries(self) -> bool {
        !matches!(
            self,
            BatchStatus::Carried | BatchStatus::BelowMinimum | BatchStatus::Held
        )
    }
}

/// A batch to create, with which unsettled entries it takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewBatch {
    pub settle_date: String,
    pub cycle: String,
    pub destination: String,
    pub status: BatchStatus,
    pub line: SettlementLine,
    /// The business dates whose entries a paying batch takes: the
    /// merchant's unsettled ones in `line.currency` of these dates with
    /// `id <= up_to_entry_id` (and reconciled, if `reconciled_only`).
    /// Their counts add up to the line's.
    pub days: Vec<BatchDay>,
    pub up_to_entry_id: i64,
    pub reconciled_only: bool,
}

/// One business date of a paying batch.
///
/// A date the batch takes whole (no unsettled entry of it up to the batch's
/// high-water id is left out) is recorded as one settled range of entry
/// ids, whatever the number of entries; a date of which some entries stay
/// behind (not yet reconciled, on reconciled-only terms) has the entries it
/// takes marked one by one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchDay {
    pub business_date: String,
    /// How many unsettled entries of the date the batch takes.
    pub entry_count: u64,
    pub whole: bool,
}

/// Where clearing and settlement stood when a run began: it nets the
/// entries up to `entry_id`, and its batches are refused if another run
/// created batches after `settlement_version` was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClearingHighWater {
    /// The highest clearing entry id (0 for none); every entry up to it is
    /// committed and visible to reads that start afterwards.
    pub entry_id: i64,
    /// Counts the calls of [`SettlementStore::create_batches`] that
    /// committed.
    pub settlement_version: i64,
}

/// A stored batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    pub id: i64,
    pub merchant_id: String,
    pub currency: Currency,
    pub settle_date: String,
    pub cycle: String,
    pub destination: String,
    pub status: BatchStatus,
    pub collection_count: u64,
    pub collections_minor: i64,
    pub refund_count: u64,
    pub refunds_minor: i64,
    pub fees_minor: i64,
    pub fees_not_deducted_minor: i64,
    pub net_minor: i64,
    pub first_business_date: String,
    pub last_business_date: String,
    pub transfer_id: Option<i64>,
    pub payout_payment_id: Option<i64>,
    pub created_at: TimestampMicros,
    pub updated_at: TimestampMicros,
}

/// A batch as [`SettlementStore::create_batches`] left it: created now, or
/// found from an earlier run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedBatch {
    pub batch: Batch,
    pub created: bool,
}

/// Clearing entries and settlement batches.
pub trait SettlementStore: Send + Sync {
    /// The highest clearing entry id so far and the settlement version: a
    /// run nets the entries up to that id, so entries cleared while it
    /// runs wait for the next.
    fn clearing_high_water(
        &self,
    ) -> impl Future<Output = Result<ClearingHighWater, SettlementStoreError>> + Send;

    /// The unsettled entries up to `up_to_entry_id`, summed by merchant,
    /// currency, business date, kind, fee mode and whether reconciled.
    /// Only entries from the unsettled floor up are read.
    fn unsettled_totals(
        &self,
        up_to_entry_id: i64,
    ) -> impl Future<Output = Result<Vec<ClearingTotals>, SettlementStoreError>> + Send;

    /// Creates the batches in one transaction, and settles each paying
    /// batch's entries by its days (at most one paying batch per merchant
    /// and currency in a call; the run has one date). A batch whose
    /// merchant, currency and date exist already is left as it is and
    /// returned (a re-run is a no-op). Nothing is written, and the call is
    /// refused, if a paying batch's entries no longer match its counts
    /// (`EntriesChanged`) or if another call committed since
    /// `settlement_version` was read (`SettledMeanwhile`); a call that
    /// commits moves the version to `settlement_version + 1`.
    fn create_batches(
        &self,
        batches: &[NewBatch],
        settlement_version: i64,
        now: TimestampMicros,
    ) -> impl Future<Output = Result<Vec<CreatedBatch>, SettlementStoreError>> + Send;

    /// Raises the unsettled floor to `entry_id` (never lowers it): the
    /// caller has seen every entry below it settled, so netting need not
    /// read them again.
    fn raise_unsettled_floor(
        &self,
        entry_id: i64,
    ) -> impl Future<Output = Result<(), SettlementStoreError>> + Send;

    /// A merchant's clearing entries of one business date (`YYYY-MM-DD`),
    /// in the order they were cleared, each with the batch that settled it
    /// (by its own mark or by the settled range of its date): what its
    /// daily bill lists.
    fn clearing_entries(
        &self,
        merchant_id: &str,
        business_date: &str,
    ) -> impl Future<Output = Result<Vec<ClearingEntry>, SettlementStoreError>> + Send;

    /// All clearing entries of one business date (`YYYY-MM-DD`), settled or
    /// not, summed by merchant, currency, kind, fee mode and whether
    /// reconciled: what the daily summary (日汇总) reports of the date.
    fn clearing_totals_of_date(
        &self,
        business_date: &str,
    ) -> impl Future<Output = Result<Vec<ClearingTotals>, SettlementStoreError>> + Send;

    /// The batches of one settlement date, by merchant.
    fn batches(
        &self,
        settle_date: &str,
    ) -> impl Future<Output = Result<Vec<Batch>, SettlementStoreError>> + Send;

    /// Batches in `status` (and with `destination`, if given), oldest
    /// first: what a run must finish.
    fn batches_in(
        &self,
        status: BatchStatus,
        destination: Option<&str>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Batch>, SettlementStoreError>> + Send;

    /// Compare-and-set of batches' statuses, all in one transaction: each
    /// must still be in its `from`, or nothing changes.
    fn move_batches(
        &self,
        moves: &[BatchMove],
        now: TimestampMicros,
    ) -> impl Future<Output = Result<(), SettlementStoreError>> + Send;
}

/// One status change of a batch, recording its transfer or payout when
/// given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchMove {
    pub id: i64,
    pub from: BatchStatus,
    pub to: BatchStatus,
    pub transfer_id: Option<i64>,
    pub payout_payment_id: Option<i64>,
}
