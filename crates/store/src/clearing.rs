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
        crate::batch::Statement::new(crate::clearing::INSERT_CLEARING)
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

/// Writes, in `$transaction`, a collection's clearing entry and the
/// merchant's fee priced with it (CHARGED), each when there is one: what a
/// payment's success and an escrow's release both write.
macro_rules! write_collection {
    ($transaction:expr, $clearing:expr, $fee:expr, $now:expr) => {{
        let clearing: Option<&engine::NewClearingEntry> = $clearing;
        let fee: Option<&engine::NewPaymentFee> = $fee;
        if let Some(entry) = clearing {
            crate::clearing::bind_clearing!(entry)
                .query()
                .execute(&mut *$transaction)
                .await
                .map_err(crate::orders::db)?;
        }
        if let Some(fee) = fee {
            crate::payment_fees::bind_fee!(fee, engine::PaymentFeeStatus::Charged, $now)
                .query()
                .execute(&mut *$transaction)
                .await
                .map_err(crate::orders::db)?;
        }
    }};
}
pub(crate) use write_collection;

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

/// Where a run starts: the highest entry id and the settlement version, in
/// one snapshot.
pub(crate) const HIGH_WATER: &str = "SELECT (SELECT MAX(id) FROM clearing_entries), version \
     FROM settlement_state WHERE id = 1";

/// The unsettled entries from the floor up to `$1`, summed. An entry is
/// unsettled when no batch marked it (`batch_id`) and no settled range of
/// its merchant, currency and business date (`settlement_days`) holds it;
/// only ranges that reach the floor can hold an entry read here, found by
/// `ranges` (the table, with SQLite's `INDEXED BY settlement_days_up_to`:
/// without statistics its planner would rather scan every range in key
/// order). The scan is in id order from the floor, the ranges are joined
/// by their date.
pub(crate) fn unsettled_totals_sql(ranges: &str) -> String {
    format!(
        "SELECT e.merchant_id, e.currency, e.business_date, \
         e.kind, e.fee_mode, e.reconciled, COUNT(*), CAST(SUM(e.amount_minor) AS BIGINT), \
         CAST(SUM(e.fee_minor) AS BIGINT), MIN(e.id) FROM clearing_entries e \
         LEFT JOIN (SELECT merchant_id, currency, business_date, MAX(up_to_entry_id) AS up_to \
           FROM {ranges} WHERE up_to_entry_id >= \
             (SELECT unsettled_from FROM settlement_state WHERE id = 1) \
           GROUP BY merchant_id, currency, business_date) d \
         ON d.merchant_id = e.merchant_id AND d.currency = e.currency \
           AND d.business_date = e.business_date \
         WHERE e.id >= (SELECT unsettled_from FROM settlement_state WHERE id = 1) AND e.id <= $1 \
         AND e.batch_id IS NULL AND (d.up_to IS NULL OR e.id > d.up_to) \
         GROUP BY e.merchant_id, e.currency, e.business_date, e.kind, e.fee_mode, e.reconciled"
    )
}

/// Every entry of one business date, in the groups of
/// [`unsettled_totals_sql`].
pub(crate) const TOTALS_OF_DATE: &str = "SELECT merchant_id, currency, business_date, kind, \
     fee_mode, reconciled, COUNT(*), CAST(SUM(amount_minor) AS BIGINT), \
     CAST(SUM(fee_minor) AS BIGINT), MIN(id) FROM clearing_entries WHERE business_date = $1 \
     GROUP BY merchant_id, currency, business_date, kind, fee_mode, reconciled";

pub(crate) type TotalsRow = (
    String,
    String,
    String,
    String,
    String,
    bool,
    i64,
    i64,
    i64,
    i64,
);

pub(crate) fn totals_from_row(row: TotalsRow) -> Result<ClearingTotals, SettlementStoreError> {
    let (merchant_id, code, business_date, kind, fee_mode, reconciled, entries, amount, fee, first) =
        row;
    Ok(ClearingTotals {
        currency: currency(&code)?,
        business_date: date(&business_date)?,
        kind: EntryKind::parse(&kind).ok_or_else(|| corrupt("clearing kind", &kind))?,
        fee_mode: FeeMode::parse(&fee_mode).ok_or_else(|| corrupt("fee mode", &fee_mode))?,
        reconciled,
        count: count(entries),
        amount_minor: amount,
        fee_minor: fee,
        first_entry_id: first,
        merchant_id,
    })
}

/// Moves the settlement version on by one if it is still `$1`: the first
/// write of `create_batches`, so of two runs that netted the same version
/// only the first creates anything.
pub(crate) const BUMP_VERSION: &str =
    "UPDATE settlement_state SET version = version + 1 WHERE id = 1 AND version = $1";

pub(crate) const RAISE_FLOOR: &str =
    "UPDATE settlement_state SET unsettled_from = $1 WHERE id = 1 AND unsettled_from < $1";

pub(crate) const BATCH_COLUMNS: &str = "id, merchant_id, currency, settle_date, cycle, \
     destination, status, collection_count, collections_minor, refund_count, refunds_minor, \
     fees_minor, fees_not_deducted_minor, net_minor, first_business_date, last_business_date, \
     transfer_id, payout_payment_id, created_at, updated_at";

/// The head of a multi-row insert of batches; a batch whose merchant,
/// currency and date exist already is not inserted (a re-run).
pub(crate) const INSERT_BATCHES: &str = "INSERT INTO settlement_batches (merchant_id, currency, \
     settle_date, cycle, destination, status, collection_count, collections_minor, refund_count, \
     refunds_minor, fees_minor, fees_not_deducted_minor, net_minor, first_business_date, \
     last_business_date, created_at, updated_at) ";
pub(crate) const INSERT_BATCHES_TAIL: &str = " ON CONFLICT (merchant_id, currency, settle_date) \
     DO NOTHING RETURNING id, merchant_id, currency";

/// Rows per multi-row INSERT of batches or days: 17 values a row, within
/// SQLite's 32,766 bound values and PostgreSQL's 65,535.
pub(crate) const BATCH_INSERT_ROWS_MAX: usize = 1_000;

/// The days a call of `create_batches` takes whole, before they get their
/// `after_entry_id`. Temporary: each connection has its own, emptied before
/// use.
pub(crate) const CREATE_NEW_DAYS: &str = "CREATE TEMP TABLE IF NOT EXISTS settle_new_days (\
     merchant_id TEXT NOT NULL, currency TEXT NOT NULL, business_date TEXT NOT NULL, \
     up_to_entry_id BIGINT NOT NULL, batch_id BIGINT NOT NULL, entry_count BIGINT NOT NULL, \
     PRIMARY KEY (merchant_id, currency, business_date))";
pub(crate) const CLEAR_NEW_DAYS: &str = "DELETE FROM settle_new_days";
pub(crate) const INSERT_NEW_DAYS: &str = "INSERT INTO settle_new_days (merchant_id, currency, \
     business_date, up_to_entry_id, batch_id, entry_count) ";

/// Records every new day as a settled range from where its date's last
/// range ended: one row per merchant, currency and business date, however
/// many entries (BENCHMARKS.md, Settlement).
pub(crate) const SETTLE_DAYS: &str = "INSERT INTO settlement_days (merchant_id, currency, \
     business_date, up_to_entry_id, after_entry_id, batch_id, entry_count) \
     SELECT n.merchant_id, n.currency, n.business_date, n.up_to_entry_id, \
       COALESCE((SELECT MAX(d.up_to_entry_id) FROM settlement_days d \
         WHERE d.merchant_id = n.merchant_id AND d.currency = n.currency \
         AND d.business_date = n.business_date), 0), \
       n.batch_id, n.entry_count FROM settle_new_days n";

/// A range must hold entries: one that starts at or past its end means the
/// date was settled by someone else since it was netted.
pub(crate) const EMPTY_RANGES: &str = "SELECT d.batch_id FROM settle_new_days n \
     JOIN settlement_days d ON d.merchant_id = n.merchant_id AND d.currency = n.currency \
     AND d.business_date = n.business_date AND d.up_to_entry_id = n.up_to_entry_id \
     WHERE d.after_entry_id >= d.up_to_entry_id LIMIT 1";

/// Marks one by one the entries a batch takes of a date it does not take
/// whole: `$1` batch, `$2` merchant, `$3` currency, `$4` business date,
/// `$5` high-water id, `$6` reconciled only. Entries in a settled range of
/// the date are someone else's already.
pub(crate) const MARK_DAY: &str = "UPDATE clearing_entries SET batch_id = $1 \
     WHERE merchant_id = $2 AND business_date = $4 AND currency = $3 AND id <= $5 \
     AND batch_id IS NULL AND ($6 = FALSE OR reconciled = TRUE) \
     AND id > COALESCE((SELECT MAX(d.up_to_entry_id) FROM settlement_days d \
       WHERE d.merchant_id = $2 AND d.currency = $3 AND d.business_date = $4), 0)";

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

pub(crate) const ENTRY_COLUMNS: &str = "e.id, e.merchant_id, e.kind, e.trade_id, e.out_trade_no, \
     e.payment_id, e.refund_id, e.refund_serial, e.product, e.channel, e.currency, \
     e.amount_minor, e.fee_minor, e.fee_mode, e.fee_rule_id, e.business_date, e.occurred_at, \
     e.reconciled, COALESCE(e.batch_id, (SELECT d.batch_id FROM settlement_days d \
       WHERE d.merchant_id = e.merchant_id AND d.currency = e.currency \
       AND d.business_date = e.business_date AND d.up_to_entry_id >= e.id \
       AND d.after_entry_id < e.id ORDER BY d.up_to_entry_id LIMIT 1))";

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

/// A batch's entries are refused: `marked` of them were found where its
/// counts say `expected`.
pub(crate) fn entries_changed(batch: &settlement::NewBatch, marked: u64) -> SettlementStoreError {
    let line = &batch.line;
    SettlementStoreError::EntriesChanged {
        merchant_id: line.merchant_id.clone(),
        settle_date: batch.settle_date.clone(),
        expected: line.collection_count.saturating_add(line.refund_count),
        marked,
    }
}

/// Refuses a paying batch whose days do not add up to its line's counts,
/// before anything is written.
pub(crate) fn check_days(batch: &settlement::NewBatch) -> Result<(), SettlementStoreError> {
    let line = &batch.line;
    let expected = line.collection_count.saturating_add(line.refund_count);
    let days = batch
        .days
        .iter()
        .fold(0u64, |sum, day| sum.saturating_add(day.entry_count));
    if days != expected {
        return Err(entries_changed(batch, days));
    }
    Ok(())
}

pub(crate) fn signed(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// Writes the days of the new paying batches inside `create_batches`:
/// the days taken whole as settled ranges (through the temporary
/// `settle_new_days`, a thousand rows a statement), the others entry by
/// entry, each refused unless it marks what its day counted.
macro_rules! settle_days {
    ($transaction:ident, $db:ty, $paying:expr) => {{
        let paying: &[(i64, &settlement::NewBatch)] = $paying;
        sqlx::query(CREATE_NEW_DAYS)
            .execute(&mut *$transaction)
            .await
            .map_err(db)?;
        sqlx::query(CLEAR_NEW_DAYS)
            .execute(&mut *$transaction)
            .await
            .map_err(db)?;
        let whole: Vec<(i64, &settlement::NewBatch, &settlement::BatchDay)> = paying
            .iter()
            .flat_map(|(id, batch)| {
                batch
                    .days
                    .iter()
                    .filter(|day| day.whole && day.entry_count > 0)
                    .map(move |day| (*id, *batch, day))
            })
            .collect();
        for chunk in whole.chunks(BATCH_INSERT_ROWS_MAX) {
            let mut insert = sqlx::QueryBuilder::<$db>::new(INSERT_NEW_DAYS);
            insert.push_values(chunk, |mut values, (id, batch, day)| {
                values
                    .push_bind(batch.line.merchant_id.clone())
                    .push_bind(batch.line.currency.code())
                    .push_bind(day.business_date.clone())
                    .push_bind(batch.up_to_entry_id)
                    .push_bind(*id)
                    .push_bind(signed(day.entry_count));
            });
            insert
                .build()
                .execute(&mut *$transaction)
                .await
                .map_err(db)?;
        }
        if !whole.is_empty() {
            sqlx::query(SETTLE_DAYS)
                .execute(&mut *$transaction)
                .await
                .map_err(db)?;
            let empty: Option<(i64,)> = sqlx::query_as(EMPTY_RANGES)
                .fetch_optional(&mut *$transaction)
                .await
                .map_err(db)?;
            if let Some((batch_id,)) = empty {
                let batch = paying
                    .iter()
                    .find(|(id, _)| *id == batch_id)
                    .map(|(_, batch)| *batch);
                if let Some(batch) = batch {
                    return Err(entries_changed(batch, 0));
                }
                return Err(SettlementStoreError::NotFound(batch_id));
            }
        }
        for (id, batch) in paying {
            for day in batch.days.iter().filter(|day| !day.whole) {
                let marked = sqlx::query(MARK_DAY)
                    .bind(*id)
                    .bind(&batch.line.merchant_id)
                    .bind(batch.line.currency.code())
                    .bind(&day.business_date)
                    .bind(batch.up_to_entry_id)
                    .bind(batch.reconciled_only)
                    .execute(&mut *$transaction)
                    .await
                    .map_err(db)?
                    .rows_affected();
                if marked != day.entry_count {
                    // Dropping the transaction on a refusal rolls it back.
                    return Err(SettlementStoreError::EntriesChanged {
                        merchant_id: batch.line.merchant_id.clone(),
                        settle_date: batch.settle_date.clone(),
                        expected: day.entry_count,
                        marked,
                    });
                }
            }
        }
    }};
}

/// Every batch of a `create_batches` call as stored, read back in one
/// query per settlement date; `created` for those inserted now.
macro_rules! read_created {
    ($transaction:ident, $batches:expr, $inserted:expr) => {{
        let batches: &[settlement::NewBatch] = $batches;
        let inserted: &HashMap<(String, String), i64> = $inserted;
        let mut dates: Vec<&str> = batches
            .iter()
            .map(|batch| batch.settle_date.as_str())
            .collect();
        dates.sort_unstable();
        dates.dedup();
        let mut stored: HashMap<(String, String, String), Batch> = HashMap::new();
        for date in dates {
            let rows = sqlx::query(&format!(
                "SELECT {BATCH_COLUMNS} FROM settlement_batches WHERE settle_date = $1"
            ))
            .bind(date)
            .fetch_all(&mut *$transaction)
            .await
            .map_err(db)?;
            for row in &rows {
                let batch = batch_from_row(row)?;
                let key = (
                    batch.merchant_id.clone(),
                    batch.currency.code().to_owned(),
                    batch.settle_date.clone(),
                );
                stored.insert(key, batch);
            }
        }
        batches
            .iter()
            .map(|batch| {
                let merchant = batch.line.merchant_id.clone();
                let code = batch.line.currency.code().to_owned();
                let key = (merchant, code, batch.settle_date.clone());
                let found = stored
                    .get(&key)
                    .cloned()
                    .ok_or_else(|| corrupt("settlement batch not read back", &key.0))?;
                let created = inserted.get(&(key.0, key.1)) == Some(&found.id);
                Ok(settlement::CreatedBatch {
                    batch: found,
                    created,
                })
            })
            .collect::<Result<Vec<_>, SettlementStoreError>>()
    }};
}

/// Implements `settlement::SettlementStore` for a store type whose connections
/// are `$writer` and `$reader` and whose database is `$db`; `$ranges` names
/// the settled ranges for [`unsettled_totals_sql`]. `$lock`, if
/// any, is run before the high water is read: on PostgreSQL it waits for
/// every transaction still writing clearing entries, so that no entry with
/// a lower id commits after the high water was read (ids are taken when a
/// row is inserted, not when it commits). SQLite has one writer, and ids
/// are taken in commit order.
macro_rules! settlement_store {
    ($store:ty, $db:ty, $writer:ident, $reader:ident, $ranges:expr, $lock:expr) => {
        impl settlement::SettlementStore for $store {
            async fn clearing_high_water(
                &self,
            ) -> Result<settlement::ClearingHighWater, settlement::SettlementStoreError> {
                use crate::clearing::*;
                let lock: Option<&str> = $lock;
                let mut transaction = self.$reader.begin().await.map_err(db)?;
                if let Some(lock) = lock {
                    sqlx::query(lock)
                        .execute(&mut *transaction)
                        .await
                        .map_err(db)?;
                }
                let (high, version): (Option<i64>, i64) = sqlx::query_as(HIGH_WATER)
                    .fetch_one(&mut *transaction)
                    .await
                    .map_err(db)?;
                transaction.commit().await.map_err(db)?;
                Ok(settlement::ClearingHighWater {
                    entry_id: high.unwrap_or(0),
                    settlement_version: version,
                })
            }

            async fn unsettled_totals(
                &self,
                up_to_entry_id: i64,
            ) -> Result<Vec<settlement::ClearingTotals>, settlement::SettlementStoreError> {
                use crate::clearing::*;
                let rows: Vec<TotalsRow> = sqlx::query_as(&unsettled_totals_sql($ranges))
                    .bind(up_to_entry_id)
                    .fetch_all(&self.$reader)
                    .await
                    .map_err(db)?;
                rows.into_iter().map(totals_from_row).collect()
            }

            async fn create_batches(
                &self,
                batches: &[settlement::NewBatch],
                settlement_version: i64,
                now: ledger::TimestampMicros,
            ) -> Result<Vec<settlement::CreatedBatch>, settlement::SettlementStoreError> {
                use crate::clearing::*;
                use std::collections::HashMap;
                for batch in batches {
                    if batch.status.holds_entries() {
                        check_days(batch)?;
                    }
                }
                let mut transaction = self.$writer.begin().await.map_err(db)?;
                let bumped = sqlx::query(BUMP_VERSION)
                    .bind(settlement_version)
                    .execute(&mut *transaction)
                    .await
                    .map_err(db)?;
                if bumped.rows_affected() != 1 {
                    return Err(settlement::SettlementStoreError::SettledMeanwhile {
                        expected_version: settlement_version,
                    });
                }
                // The batches inserted now, by merchant and currency.
                let mut inserted: HashMap<(String, String), i64> = HashMap::new();
                for chunk in batches.chunks(BATCH_INSERT_ROWS_MAX) {
                    let mut insert = sqlx::QueryBuilder::<$db>::new(INSERT_BATCHES);
                    insert.push_values(chunk, |mut values, batch| {
                        let line = &batch.line;
                        values
                            .push_bind(line.merchant_id.clone())
                            .push_bind(line.currency.code())
                            .push_bind(batch.settle_date.clone())
                            .push_bind(batch.cycle.clone())
                            .push_bind(batch.destination.clone())
                            .push_bind(batch.status.as_str())
                            .push_bind(signed(line.collection_count))
                            .push_bind(line.collections_minor)
                            .push_bind(signed(line.refund_count))
                            .push_bind(line.refunds_minor)
                            .push_bind(line.fees_minor)
                            .push_bind(line.fees_not_deducted_minor)
                            .push_bind(line.net_minor)
                            .push_bind(line.first_business_date.to_string())
                            .push_bind(line.last_business_date.to_string())
                            .push_bind(now)
                            .push_bind(now);
                    });
                    insert.push(INSERT_BATCHES_TAIL);
                    let rows: Vec<(i64, String, String)> = insert
                        .build_query_as()
                        .fetch_all(&mut *transaction)
                        .await
                        .map_err(db)?;
                    for (id, merchant_id, code) in rows {
                        inserted.insert((merchant_id, code), id);
                    }
                }
                // The new paying batches and their ids.
                let paying: Vec<(i64, &settlement::NewBatch)> = batches
                    .iter()
                    .filter(|batch| batch.status.holds_entries())
                    .filter_map(|batch| {
                        let key = (
                            batch.line.merchant_id.clone(),
                            batch.line.currency.code().to_owned(),
                        );
                        inserted.get(&key).map(|id| (*id, batch))
                    })
                    .collect();
                settle_days!(transaction, $db, &paying);
                let created = read_created!(transaction, batches, &inserted);
                transaction.commit().await.map_err(db)?;
                self.durable().await?;
                created
            }

            async fn raise_unsettled_floor(
                &self,
                entry_id: i64,
            ) -> Result<(), settlement::SettlementStoreError> {
                use crate::clearing::*;
                sqlx::query(RAISE_FLOOR)
                    .bind(entry_id)
                    .execute(&self.$writer)
                    .await
                    .map_err(db)?;
                self.durable().await?;
                Ok(())
            }

            async fn clearing_entries(
                &self,
                merchant_id: &str,
                business_date: &str,
            ) -> Result<Vec<settlement::ClearingEntry>, settlement::SettlementStoreError> {
                use crate::clearing::*;
                let rows = sqlx::query(&format!(
                    "SELECT {ENTRY_COLUMNS} FROM clearing_entries e \
                     WHERE e.merchant_id = $1 AND e.business_date = $2 ORDER BY e.id"
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

settlement_store!(
    crate::SqliteStore,
    sqlx::Sqlite,
    writer,
    readers,
    "settlement_days INDEXED BY settlement_days_up_to",
    None
);
settlement_store!(
    crate::PostgresStore,
    sqlx::Postgres,
    pool,
    pool,
    "settlement_days",
    Some("LOCK TABLE clearing_entries IN SHARE MODE")
);

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

/// Whether entry `e` is settled: marked by a batch, or in a settled range
/// of its date.
const IS_SETTLED: &str = "(e.batch_id IS NOT NULL OR e.id <= COALESCE((SELECT \
     MAX(d.up_to_entry_id) FROM settlement_days d WHERE d.merchant_id = e.merchant_id \
     AND d.currency = e.currency AND d.business_date = e.business_date), 0))";

/// What each merchant's unsettled entries owe its settlement-pending
/// account: collections minus refunds.
pub(crate) fn unsettled_by_merchant_sql() -> String {
    format!(
        "SELECT e.merchant_id, \
         CAST(SUM(CASE WHEN e.kind = 'REFUND' THEN -e.amount_minor ELSE e.amount_minor END) \
         AS BIGINT) FROM clearing_entries e WHERE e.currency = $1 AND NOT {IS_SETTLED} \
         GROUP BY e.merchant_id"
    )
}

/// One scan of every entry: count and sums, the least any netting reads.
pub(crate) const SCAN_TOTALS: &str = "SELECT COUNT(*), \
     CAST(COALESCE(SUM(amount_minor), 0) AS BIGINT), CAST(COALESCE(SUM(fee_minor), 0) AS BIGINT) \
     FROM clearing_entries";

/// How many entries are settled, either way.
pub(crate) fn settled_count_sql() -> String {
    format!("SELECT COUNT(*) FROM clearing_entries e WHERE {IS_SETTLED}")
}

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
                sqlx::query_as(&unsettled_by_merchant_sql())
                    .bind(currency.code())
                    .fetch_all(&store.readers)
                    .await
            }
            crate::Store::Postgres(store) => {
                sqlx::query_as(&unsettled_by_merchant_sql())
                    .bind(currency.code())
                    .fetch_all(&store.pool)
                    .await
            }
        };
        result.map_err(database_error)
    }

    /// Entries and their amount and fee sums, in one scan.
    pub async fn clearing_scan(&self) -> Result<ClearingScan, StoreError> {
        let result: Result<(i64, i64, i64), sqlx::Error> = match self {
            crate::Store::Sqlite(store) => {
                sqlx::query_as(SCAN_TOTALS).fetch_one(&store.readers).await
            }
            crate::Store::Postgres(store) => {
                sqlx::query_as(SCAN_TOTALS).fetch_one(&store.pool).await
            }
        };
        let (entries, amount_minor, fee_minor) = result.map_err(database_error)?;
        Ok(ClearingScan {
            entries: count(entries),
            amount_minor,
            fee_minor,
        })
    }

    /// How many entries a batch settled, by its own mark or its date's
    /// settled range.
    pub async fn clearing_settled(&self) -> Result<u64, StoreError> {
        let sql = settled_count_sql();
        let result: Result<(i64,), sqlx::Error> = match self {
            crate::Store::Sqlite(store) => sqlx::query_as(&sql).fetch_one(&store.readers).await,
            crate::Store::Postgres(store) => sqlx::query_as(&sql).fetch_one(&store.pool).await,
        };
        let (settled,) = result.map_err(database_error)?;
        Ok(count(settled))
    }
}

/// What [`crate::Store::clearing_scan`] read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClearingScan {
    pub entries: u64,
    pub amount_minor: i64,
    pub fee_minor: i64,
}
