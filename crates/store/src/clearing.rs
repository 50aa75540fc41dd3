//! Clearing entries (清算) and settlement batches (结算) on both stores, one
//! SQL text for both.

/// Columns of `clearing_entries` in the order [`bind_clearing`] binds them.
pub(crate) const INSERT_CLEARING: &str = "INSERT INTO clearing_entries (source_key, merchant_id, \
     kind, trade_id, out_trade_no, payment_id, refund_id, refund_serial, product, channel, \
     currency, amount_minor, fee_minor, fee_mode, fee_rule_id, business_date, occurred_at, \
     reconciled) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, \
     $17, $18)";

/// Binds an `engine::NewClearingEntry` to [`INSERT_CLEARING`].
macro_rules! bind_clearing {
    ($entry:expr) => {{
        let entry: &engine::NewClearingEntry = $entry;
        sqlx::query(crate::clearing::INSERT_CLEARING)
            .bind(entry.source_key())
            .bind(&entry.merchant_id)
            .bind(entry.kind.as_str())
            .bind(entry.trade_id)
            .bind(&entry.out_trade_no)
            .bind(entry.payment_id)
            .bind(entry.refund_id)
            .bind(entry.refund_serial.as_deref())
            .bind(&entry.product)
            .bind(entry.channel.as_deref())
            .bind(entry.currency.code())
            .bind(entry.amount_minor)
            .bind(entry.fee_minor)
            .bind(entry.fee_mode.as_str())
            .bind(entry.fee_rule_id.as_deref())
            .bind(&entry.business_date)
            .bind(entry.occurred_at)
            .bind(entry.reconciled)
    }};
}
pub(crate) use bind_clearing;

use crate::rows::{currency, database_error};
use ledger::StoreError;
use settlement::{
    Batch, BatchStatus, ClearingEntry, ClearingTotals, EntryKind, FeeMode, NewClearingEntry,
    SettlementStoreError,
};

pub(crate) fn db(error: sqlx::Error) -> SettlementStoreError {
    SettlementStoreError::Store(database_error(error))
}

fn corrupt(what: &str, value: &str) -> SettlementStoreError {
    SettlementStoreError::Store(StoreError::Corrupt(format!("{what}: {value:?}")))
}

fn date(text: &str) -> Result<settlement::Date, SettlementStoreError> {
    settlement::parse_date(text).map_err(|_| corrupt("business date", text))
}

fn count(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

pub(crate) const UNSETTLED_TOTALS: &str = "SELECT merchant_id, currency, business_date, kind, \
     fee_mode, reconciled, COUNT(*), CAST(SUM(amount_minor) AS BIGINT), \
     CAST(SUM(fee_minor) AS BIGINT) FROM clearing_entries WHERE batch_id IS NULL AND id <= $1 \
     GROUP BY merchant_id, currency, business_date, kind, fee_mode, reconciled";

/// Every entry of one business date, in the groups of [`UNSETTLED_TOTALS`].
pub(crate) const TOTALS_OF_DATE: &str = "SELECT merchant_id, currency, business_date, kind, \
     fee_mode, reconciled, COUNT(*), CAST(SUM(amount_minor) AS BIGINT), \
     CAST(SUM(fee_minor) AS BIGINT) FROM clearing_entries WHERE business_date = $1 \
     GROUP BY merchant_id, currency, business_date, kind, fee_mode, reconciled";

pub(crate) type TotalsRow = (String, String, String, String, String, bool, i64, i64, i64);

pub(crate) fn totals_from_row(row: TotalsRow) -> Result<ClearingTotals, SettlementStoreError> {
    let (merchant_id, code, business_date, kind, fee_mode, reconciled, entries, amount, fee) = row;
    Ok(ClearingTotals {
        currency: currency(&code)?,
        business_date: date(&business_date)?,
        kind: EntryKind::parse(&kind).ok_or_else(|| corrupt("clearing kind", &kind))?,
        fee_mode: FeeMode::parse(&fee_mode).ok_or_else(|| corrupt("fee mode", &fee_mode))?,
        reconciled,
        count: count(entries),
        amount_minor: amount,
        fee_minor: fee,
        merchant_id,
    })
}

pub(crate) const BATCH_COLUMNS: &str = "id, merchant_id, currency, settle_date, cycle, \
     destination, status, collection_count, collections_minor, refund_count, refunds_minor, \
     fees_minor, fees_not_deducted_minor, net_minor, first_business_date, last_business_date, \
     transfer_id, payout_payment_id, created_at, updated_at";

pub(crate) const INSERT_BATCH: &str = "INSERT INTO settlement_batches (merchant_id, currency, \
     settle_date, cycle, destination, status, collection_count, collections_minor, refund_count, \
     refunds_minor, fees_minor, fees_not_deducted_minor, net_minor, first_business_date, \
     last_business_date, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, \
     $10, $11, $12, $13, $14, $15, $16, $16) \
     ON CONFLICT (merchant_id, currency, settle_date) DO NOTHING RETURNING id";

/// The bounds of each paying batch [`crate::SqliteStore`]'s and
/// [`crate::PostgresStore`]'s `create_batches` is creating, so that one
/// statement marks every batch's entries. Temporary: each connection has its
/// own, emptied before use. One batch per merchant and currency (the key):
/// the entries a batch takes are the merchant's in that currency.
pub(crate) const CREATE_MARKS: &str = "CREATE TEMP TABLE IF NOT EXISTS settle_marks (\
     merchant_id TEXT NOT NULL, currency TEXT NOT NULL, batch_id BIGINT NOT NULL, \
     up_to_business_date TEXT NOT NULL, up_to_entry_id BIGINT NOT NULL, \
     reconciled_only BOOLEAN NOT NULL, PRIMARY KEY (merchant_id, currency))";
pub(crate) const CLEAR_MARKS: &str = "DELETE FROM settle_marks";
pub(crate) const INSERT_MARK: &str = "INSERT INTO settle_marks (merchant_id, currency, \
     batch_id, up_to_business_date, up_to_entry_id, reconciled_only) \
     VALUES ($1, $2, $3, $4, $5, $6)";

/// Marks the entries of every batch in `settle_marks` in one statement: the
/// merchant's unsettled ones in the batch's currency with `id <=` its
/// `up_to_entry_id` (`$1` is the highest of those) and `business_date <=`
/// its `up_to_business_date`, reconciled ones only if it says so. On SQLite
/// the plan scans the unsettled entries in id order (the partial index
/// `clearing_entries_unsettled`) and looks each merchant up in
/// `settle_marks`, so each page of the table is written once, however many
/// batches there are; marking merchant by merchant rewrote pages all over
/// the file (BENCHMARKS.md, Settlement).
pub(crate) const MARK_ENTRIES: &str = "UPDATE clearing_entries SET batch_id = settle_marks.batch_id \
     FROM settle_marks WHERE clearing_entries.batch_id IS NULL \
     AND clearing_entries.id <= $1 \
     AND clearing_entries.merchant_id = settle_marks.merchant_id \
     AND clearing_entries.currency = settle_marks.currency \
     AND clearing_entries.id <= settle_marks.up_to_entry_id \
     AND clearing_entries.business_date <= settle_marks.up_to_business_date \
     AND (settle_marks.reconciled_only = FALSE OR clearing_entries.reconciled = TRUE)";

/// How many entries each batch in `settle_marks` marked: what
/// `create_batches` compares with the batches' counts before it commits.
pub(crate) const MARKED_COUNTS: &str = "SELECT batch_id, COUNT(*) FROM clearing_entries \
     WHERE id <= $1 AND batch_id IN (SELECT batch_id FROM settle_marks) GROUP BY batch_id";

/// Reads a row of [`BATCH_COLUMNS`] on either store.
pub(crate) fn batch_from_row<R>(row: &R) -> Result<Batch, SettlementStoreError>
where
    R: sqlx::Row,
    usize: sqlx::ColumnIndex<R>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let int = |index: usize| row.try_get::<i64, _>(index).map_err(db);
    let text = |index: usize| row.try_get::<String, _>(index).map_err(db);
    let optional = |index: usize| row.try_get::<Option<i64>, _>(index).map_err(db);
    let status = text(6)?;
    Ok(Batch {
        id: int(0)?,
        merchant_id: text(1)?,
        currency: currency(&text(2)?)?,
        settle_date: text(3)?,
        cycle: text(4)?,
        destination: text(5)?,
        status: BatchStatus::parse(&status).ok_or_else(|| corrupt("batch status", &status))?,
        collection_count: count(int(7)?),
        collections_minor: int(8)?,
        refund_count: count(int(9)?),
        refunds_minor: int(10)?,
        fees_minor: int(11)?,
        fees_not_deducted_minor: int(12)?,
        net_minor: int(13)?,
        first_business_date: text(14)?,
        last_business_date: text(15)?,
        transfer_id: optional(16)?,
        payout_payment_id: optional(17)?,
        created_at: int(18)?,
        updated_at: int(19)?,
    })
}

pub(crate) const ENTRY_COLUMNS: &str = "id, merchant_id, kind, trade_id, out_trade_no, \
     payment_id, refund_id, refund_serial, product, channel, currency, amount_minor, fee_minor, \
     fee_mode, fee_rule_id, business_date, occurred_at, reconciled, batch_id";

/// Reads a row of [`ENTRY_COLUMNS`] on either store.
pub(crate) fn entry_from_row<R>(row: &R) -> Result<ClearingEntry, SettlementStoreError>
where
    R: sqlx::Row,
    usize: sqlx::ColumnIndex<R>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> bool: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let int = |index: usize| row.try_get::<i64, _>(index).map_err(db);
    let text = |index: usize| row.try_get::<String, _>(index).map_err(db);
    let optional_int = |index: usize| row.try_get::<Option<i64>, _>(index).map_err(db);
    let optional_text = |index: usize| row.try_get::<Option<String>, _>(index).map_err(db);
    let kind = text(2)?;
    let fee_mode = text(13)?;
    Ok(ClearingEntry {
        id: int(0)?,
        entry: NewClearingEntry {
            merchant_id: text(1)?,
            kind: EntryKind::parse(&kind).ok_or_else(|| corrupt("clearing kind", &kind))?,
            trade_id: int(3)?,
            out_trade_no: text(4)?,
            payment_id: int(5)?,
            refund_id: optional_int(6)?,
            refund_serial: optional_text(7)?,
            product: text(8)?,
            channel: optional_text(9)?,
            currency: currency(&text(10)?)?,
            amount_minor: int(11)?,
            fee_minor: int(12)?,
            fee_mode: FeeMode::parse(&fee_mode).ok_or_else(|| corrupt("fee mode", &fee_mode))?,
            fee_rule_id: optional_text(14)?,
            business_date: text(15)?,
            occurred_at: int(16)?,
            reconciled: row.try_get::<bool, _>(17).map_err(db)?,
        },
        batch_id: optional_int(18)?,
    })
}

/// Refuses the batches if any marked other than its counts say: the
/// entries changed since they were summed (or another run took them).
pub(crate) fn check_marked(
    marking: &[(i64, &settlement::NewBatch)],
    counts: &[(i64, i64)],
) -> Result<(), SettlementStoreError> {
    let counts: std::collections::HashMap<i64, u64> = counts
        .iter()
        .map(|(batch_id, marked)| (*batch_id, count(*marked)))
        .collect();
    for (id, batch) in marking {
        let line = &batch.line;
        let expected = line.collection_count.saturating_add(line.refund_count);
        let marked = counts.get(id).copied().unwrap_or(0);
        if marked != expected {
            return Err(SettlementStoreError::EntriesChanged {
                merchant_id: line.merchant_id.clone(),
                settle_date: batch.settle_date.clone(),
                expected,
                marked,
            });
        }
    }
    Ok(())
}

/// Implements `settlement::SettlementStore` for a store type whose pools
/// are `$writer` and `$reader`.
macro_rules! settlement_store {
    ($store:ty, $writer:ident, $reader:ident) => {
        impl settlement::SettlementStore for $store {
            async fn clearing_high_water(&self) -> Result<i64, settlement::SettlementStoreError> {
                use crate::clearing::*;
                let (high,): (Option<i64>,) = sqlx::query_as("SELECT MAX(id) FROM clearing_entries")
                    .fetch_one(&self.$reader)
                    .await
                    .map_err(db)?;
                Ok(high.unwrap_or(0))
            }

            async fn unsettled_totals(
                &self,
                up_to_entry_id: i64,
            ) -> Result<Vec<settlement::ClearingTotals>, settlement::SettlementStoreError> {
                use crate::clearing::*;
                let rows: Vec<TotalsRow> = sqlx::query_as(UNSETTLED_TOTALS)
                    .bind(up_to_entry_id)
                    .fetch_all(&self.$reader)
                    .await
                    .map_err(db)?;
                rows.into_iter().map(totals_from_row).collect()
            }

            async fn create_batches(
                &self,
                batches: &[settlement::NewBatch],
                now: ledger::TimestampMicros,
            ) -> Result<Vec<settlement::CreatedBatch>, settlement::SettlementStoreError> {
                use crate::clearing::*;
                let mut transaction = self.$writer.begin().await.map_err(db)?;
                sqlx::query(CREATE_MARKS)
                    .execute(&mut *transaction)
                    .await
                    .map_err(db)?;
                sqlx::query(CLEAR_MARKS)
                    .execute(&mut *transaction)
                    .await
                    .map_err(db)?;
                let mut created = Vec::with_capacity(batches.len());
                // The new paying batches: id and what they must mark.
                let mut marking: Vec<(i64, &settlement::NewBatch)> = Vec::new();
                for batch in batches {
                    let line = &batch.line;
                    let signed = |value: u64| i64::try_from(value).unwrap_or(i64::MAX);
                    let inserted: Option<(i64,)> = sqlx::query_as(INSERT_BATCH)
                        .bind(&line.merchant_id)
                        .bind(line.currency.code())
                        .bind(&batch.settle_date)
                        .bind(&batch.cycle)
                        .bind(&batch.destination)
                        .bind(batch.status.as_str())
                        .bind(signed(line.collection_count))
                        .bind(line.collections_minor)
                        .bind(signed(line.refund_count))
                        .bind(line.refunds_minor)
                        .bind(line.fees_minor)
                        .bind(line.fees_not_deducted_minor)
                        .bind(line.net_minor)
                        .bind(line.first_business_date.to_string())
                        .bind(line.last_business_date.to_string())
                        .bind(now)
                        .fetch_optional(&mut *transaction)
                        .await
                        .map_err(db)?;
                    let is_new = inserted.is_some();
                    if let Some((id,)) = inserted
                        && batch.status.holds_entries()
                    {
                        sqlx::query(INSERT_MARK)
                            .bind(&line.merchant_id)
                            .bind(line.currency.code())
                            .bind(id)
                            .bind(&batch.up_to_business_date)
                            .bind(batch.up_to_entry_id)
                            .bind(batch.reconciled_only)
                            .execute(&mut *transaction)
                            .await
                            .map_err(db)?;
                        marking.push((id, batch));
                    }
                    let row = sqlx::query(&format!(
                        "SELECT {BATCH_COLUMNS} FROM settlement_batches \
                         WHERE merchant_id = $1 AND currency = $2 AND settle_date = $3"
                    ))
                    .bind(&line.merchant_id)
                    .bind(line.currency.code())
                    .bind(&batch.settle_date)
                    .fetch_one(&mut *transaction)
                    .await
                    .map_err(db)?;
                    created.push(settlement::CreatedBatch {
                        batch: batch_from_row(&row)?,
                        created: is_new,
                    });
                }
                if let Some(up_to_entry_id) =
                    marking.iter().map(|(_, batch)| batch.up_to_entry_id).max()
                {
                    sqlx::query(MARK_ENTRIES)
                        .bind(up_to_entry_id)
                        .execute(&mut *transaction)
                        .await
                        .map_err(db)?;
                    let counts: Vec<(i64, i64)> = sqlx::query_as(MARKED_COUNTS)
                        .bind(up_to_entry_id)
                        .fetch_all(&mut *transaction)
                        .await
                        .map_err(db)?;
                    // Dropping the transaction on a refusal rolls it back.
                    check_marked(&marking, &counts)?;
                }
                transaction.commit().await.map_err(db)?;
                self.durable().await?;
                Ok(created)
            }

            async fn clearing_entries(
                &self,
                merchant_id: &str,
                business_date: &str,
            ) -> Result<Vec<settlement::ClearingEntry>, settlement::SettlementStoreError> {
                use crate::clearing::*;
                let rows = sqlx::query(&format!(
                    "SELECT {ENTRY_COLUMNS} FROM clearing_entries \
                     WHERE merchant_id = $1 AND business_date = $2 ORDER BY id"
                ))
                .bind(merchant_id)
                .bind(business_date)
                .fetch_all(&self.$reader)
                .await
                .map_err(db)?;
                rows.iter().map(entry_from_row).collect()
            }

            async fn clearing_totals_of_date(
                &self,
                business_date: &str,
            ) -> Result<Vec<settlement::ClearingTotals>, settlement::SettlementStoreError> {
                use crate::clearing::*;
                let rows: Vec<TotalsRow> = sqlx::query_as(TOTALS_OF_DATE)
                    .bind(business_date)
                    .fetch_all(&self.$reader)
                    .await
                    .map_err(db)?;
                rows.into_iter().map(totals_from_row).collect()
            }

            async fn batches(
                &self,
                settle_date: &str,
            ) -> Result<Vec<settlement::Batch>, settlement::SettlementStoreError> {
                use crate::clearing::*;
                let rows = sqlx::query(&format!(
                    "SELECT {BATCH_COLUMNS} FROM settlement_batches WHERE settle_date = $1 \
                     ORDER BY merchant_id, currency"
                ))
                .bind(settle_date)
                .fetch_all(&self.$reader)
                .await
                .map_err(db)?;
                rows.iter().map(batch_from_row).collect()
            }

            async fn batches_in(
                &self,
                status: settlement::BatchStatus,
                destination: Option<&str>,
                limit: usize,
            ) -> Result<Vec<settlement::Batch>, settlement::SettlementStoreError> {
                use crate::clearing::*;
                let limit = i64::try_from(limit).unwrap_or(i64::MAX);
                let rows = match destination {
                    None => {
                        sqlx::query(&format!(
                            "SELECT {BATCH_COLUMNS} FROM settlement_batches WHERE status = $1 \
                             ORDER BY id LIMIT $2"
                        ))
                        .bind(status.as_str())
                        .bind(limit)
                        .fetch_all(&self.$reader)
                        .await
                    }
                    Some(destination) => {
                        sqlx::query(&format!(
                            "SELECT {BATCH_COLUMNS} FROM settlement_batches \
                             WHERE status = $1 AND destination = $2 ORDER BY id LIMIT $3"
                        ))
                        .bind(status.as_str())
                        .bind(destination)
                        .bind(limit)
                        .fetch_all(&self.$reader)
                        .await
                    }
                }
                .map_err(db)?;
                rows.iter().map(batch_from_row).collect()
            }

            async fn move_batches(
                &self,
                moves: &[settlement::BatchMove],
                now: ledger::TimestampMicros,
            ) -> Result<(), settlement::SettlementStoreError> {
                use crate::clearing::*;
                let mut transaction = self.$writer.begin().await.map_err(db)?;
                for change in moves {
                    let done = sqlx::query(
                        "UPDATE settlement_batches SET status = $1, \
                         transfer_id = COALESCE($2, transfer_id), \
                         payout_payment_id = COALESCE($3, payout_payment_id), updated_at = $4 \
                         WHERE id = $5 AND status = $6",
                    )
                    .bind(change.to.as_str())
                    .bind(change.transfer_id)
                    .bind(change.payout_payment_id)
                    .bind(now)
                    .bind(change.id)
                    .bind(change.from.as_str())
                    .execute(&mut *transaction)
                    .await
                    .map_err(db)?;
                    if done.rows_affected() != 1 {
                        return Err(settlement::SettlementStoreError::ConcurrentChange {
                            id: change.id,
                            expected: change.from.as_str(),
                        });
                    }
                }
                transaction.commit().await.map_err(db)?;
                self.durable().await?;
                Ok(())
            }
        }
    };
}

settlement_store!(crate::SqliteStore, writer, readers);
settlement_store!(crate::PostgresStore, pool, pool);

/// Synthetic clearing entries for `paycore bench settle`, written by the
/// database itself (a recursive count on SQLite, `generate_series` on
/// PostgreSQL) so ten million rows take seconds, not an hour of binds.
/// Entry `i` belongs to merchant `i % merchants`, one in twenty of each
/// merchant's entries is a refund of half a collection's size, collections pay a 0.6% fee, and the
/// business dates cycle through `dates`.
pub(crate) fn bench_entries_sql(postgres: bool, dates: &[&str]) -> String {
    let count = dates.len().max(1);
    let date_case = dates
        .iter()
        .enumerate()
        .map(|(index, date)| format!("WHEN {index} THEN '{date}'"))
        .collect::<Vec<_>>()
        .join(" ");
    let select = format!(
        "SELECT 'bench-' || i, 'm-' || (i % $2), \
         CASE WHEN (i / $2) % 20 = 0 THEN 'REFUND' ELSE 'COLLECTION' END, \
         i, 'T' || i, i, CASE WHEN (i / $2) % 20 = 0 THEN i ELSE NULL END, \
         CASE WHEN (i / $2) % 20 = 0 THEN 'R' || i ELSE NULL END, 'instant_transfer', 'simbank', 'CNY', \
         CASE WHEN (i / $2) % 20 = 0 THEN (100 + (i * 7919) % 99900) / 2 ELSE 100 + (i * 7919) % 99900 END, \
         CASE WHEN (i / $2) % 20 = 0 THEN 0 ELSE ((100 + (i * 7919) % 99900) * 6 + 500) / 1000 END, \
         'real_time', 'bench', CASE i % {count} {date_case} END, i, TRUE"
    );
    let columns = "source_key, merchant_id, kind, trade_id, out_trade_no, payment_id, refund_id, \
         refund_serial, product, channel, currency, amount_minor, fee_minor, fee_mode, \
         fee_rule_id, business_date, occurred_at, reconciled";
    if postgres {
        format!(
            "INSERT INTO clearing_entries ({columns}) {select} \
             FROM generate_series(1::BIGINT, $1::BIGINT) AS series(i)"
        )
    } else {
        format!(
            "WITH RECURSIVE series(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM series WHERE i < $1) \
             INSERT INTO clearing_entries ({columns}) {select} FROM series"
        )
    }
}

/// What each merchant's unsettled entries owe its settlement-pending
/// account: collections minus refunds.
pub(crate) const UNSETTLED_BY_MERCHANT: &str = "SELECT merchant_id, \
     CAST(SUM(CASE WHEN kind = 'REFUND' THEN -amount_minor ELSE amount_minor END) AS BIGINT) \
     FROM clearing_entries WHERE batch_id IS NULL AND currency = $1 GROUP BY merchant_id";

/// One scan of every entry: count and sums, the least any netting reads.
pub(crate) const SCAN_TOTALS: &str = "SELECT COUNT(*), \
     CAST(COALESCE(SUM(amount_minor), 0) AS BIGINT), CAST(COALESCE(SUM(fee_minor), 0) AS BIGINT), \
     COUNT(batch_id) FROM clearing_entries";

impl crate::Store {
    /// Writes `count` synthetic clearing entries over `merchants` merchants
    /// and `dates`; see [`bench_entries_sql`]. For benchmarks only.
    pub async fn bench_fill_clearing(
        &self,
        count: i64,
        merchants: i64,
        dates: &[&str],
    ) -> Result<(), StoreError> {
        let result = match self {
            crate::Store::Sqlite(store) => sqlx::query(&bench_entries_sql(false, dates))
                .bind(count)
                .bind(merchants)
                .execute(&store.writer)
                .await
                .map(|_| ()),
            crate::Store::Postgres(store) => sqlx::query(&bench_entries_sql(true, dates))
                .bind(count)
                .bind(merchants)
                .execute(&store.pool)
                .await
                .map(|_| ()),
        };
        result.map_err(database_error)
    }

    /// Collections minus refunds of each merchant's unsettled entries in
    /// `currency`.
    pub async fn unsettled_by_merchant(
        &self,
        currency: money::Currency,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        let result = match self {
            crate::Store::Sqlite(store) => {
                sqlx::query_as(UNSETTLED_BY_MERCHANT)
                    .bind(currency.code())
                    .fetch_all(&store.readers)
                    .await
            }
            crate::Store::Postgres(store) => {
                sqlx::query_as(UNSETTLED_BY_MERCHANT)
                    .bind(currency.code())
                    .fetch_all(&store.pool)
                    .await
            }
        };
        result.map_err(database_error)
    }

    /// Entries, their amount and fee sums, and how many a batch settled, in
    /// one scan.
    pub async fn clearing_scan(&self) -> Result<ClearingScan, StoreError> {
        let result: Result<(i64, i64, i64, i64), sqlx::Error> = match self {
            crate::Store::Sqlite(store) => {
                sqlx::query_as(SCAN_TOTALS).fetch_one(&store.readers).await
            }
            crate::Store::Postgres(store) => {
                sqlx::query_as(SCAN_TOTALS).fetch_one(&store.pool).await
            }
        };
        let (entries, amount_minor, fee_minor, settled) = result.map_err(database_error)?;
        Ok(ClearingScan {
            entries: count(entries),
            amount_minor,
            fee_minor,
            settled: count(settled),
        })
    }
}

/// What [`crate::Store::clearing_scan`] read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClearingScan {
    pub entries: u64,
    pub amount_minor: i64,
    pub fee_minor: i64,
    pub settled: u64,
}
