//! Collection batches (批量代扣) on both stores, one SQL text for both
//! (`migrations/*/*_collection_batches.sql`).

use crate::agreements::corrupt;
use crate::orders::db;
use crate::rows::currency;
use engine::{
    BatchLine, BatchStatus, CollectionBatch, LateOutcome, LineStatus, NewBatchLine, OrderStoreError,
};

pub(crate) const BATCH_COLUMNS: &str = "id, merchant_id, batch_no, currency, deadline, status, \
     header, line_count, total_minor, file_sha256, created_at, closed_at";

pub(crate) const LINE_COLUMNS: &str = "batch_id, line_no, reference, agreement_no, member_id, \
     amount_minor, priority, raw, status, payment_id, failure_code, failure_message, late, \
     late_refund_id, updated_at";

/// Lines per multi-row INSERT: 9 bound values each, well under SQLite's
/// 32,766.
pub(crate) const LINE_INSERT_ROWS_MAX: usize = 1_000;

/// Reads a row of [`BATCH_COLUMNS`] on either store.
pub(crate) fn batch_from_row<R>(row: &R) -> Result<CollectionBatch, OrderStoreError>
where
    R: sqlx::Row,
    usize: sqlx::ColumnIndex<R>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let int = |index: usize| row.try_get::<i64, _>(index).map_err(db);
    let text = |index: usize| row.try_get::<String, _>(index).map_err(db);
    let status = text(5)?;
    Ok(CollectionBatch {
        id: int(0)?,
        merchant_id: text(1)?,
        batch_no: text(2)?,
        currency: currency(&text(3)?)?,
        deadline: int(4)?,
        status: BatchStatus::parse(&status).ok_or_else(|| corrupt("batch status", &status))?,
        header: text(6)?,
        line_count: int(7)?,
        total_minor: int(8)?,
        file_sha256: text(9)?,
        created_at: int(10)?,
        closed_at: row.try_get::<Option<i64>, _>(11).map_err(db)?,
    })
}

/// Reads a row of [`LINE_COLUMNS`] on either store.
pub(crate) fn line_from_row<R>(row: &R) -> Result<BatchLine, OrderStoreError>
where
    R: sqlx::Row,
    usize: sqlx::ColumnIndex<R>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let int = |index: usize| row.try_get::<i64, _>(index).map_err(db);
    let text = |index: usize| row.try_get::<String, _>(index).map_err(db);
    let optional_int = |index: usize| row.try_get::<Option<i64>, _>(index).map_err(db);
    let optional = |index: usize| row.try_get::<Option<String>, _>(index).map_err(db);
    let status = text(8)?;
    let late = match optional(12)? {
        None => None,
        Some(late) => {
            Some(LateOutcome::parse(&late).ok_or_else(|| corrupt("late outcome", &late))?)
        }
    };
    Ok(BatchLine {
        batch_id: int(0)?,
        line_no: int(1)?,
        reference: text(2)?,
        agreement_no: text(3)?,
        member_id: text(4)?,
        amount_minor: int(5)?,
        priority: int(6)?,
        raw: text(7)?,
        status: LineStatus::parse(&status).ok_or_else(|| corrupt("line status", &status))?,
        payment_id: optional_int(9)?,
        failure_code: optional(10)?,
        failure_message: optional(11)?,
        late,
        late_refund_id: optional_int(13)?,
        updated_at: int(14)?,
    })
}

/// The lines of one multi-row INSERT.
pub(crate) fn line_chunks(lines: &[NewBatchLine]) -> std::slice::Chunks<'_, NewBatchLine> {
    lines.chunks(LINE_INSERT_ROWS_MAX)
}

/// Implements `engine::CollectionBatchStore` for a store type whose connections
/// are `$writer` and `$reader` and whose database is `$db`.
macro_rules! collection_batch_store {
    ($store:ty, $db:ty, $writer:ident, $reader:ident) => {
        impl engine::CollectionBatchStore for $store {
            async fn create_collection_batch(
                &self,
                batch: &engine::NewCollectionBatch,
                now: ledger::TimestampMicros,
            ) -> Result<engine::Created<engine::CollectionBatch>, engine::OrderStoreError> {
                use crate::collection_batches::*;
                use crate::orders::db;
                let line_count = i64::try_from(batch.file.lines.len()).unwrap_or(i64::MAX);
                let mut transaction = self.$writer.begin().await.map_err(db)?;
                // Two uploads of one batch number may race: the unique key
                // decides, and the loser finds the winner's.
                let row = sqlx::query(&format!(
                    "INSERT INTO collection_batches (merchant_id, batch_no, currency, deadline, status, \
                     header, line_count, total_minor, file_sha256, created_at) \
                     VALUES ($1, $2, $3, $4, 'RUNNING', $5, $6, $7, $8, $9) \
                     ON CONFLICT (merchant_id, batch_no) DO NOTHING RETURNING {BATCH_COLUMNS}"
                ))
                .bind(&batch.merchant_id)
                .bind(&batch.batch_no)
                .bind(batch.currency.code())
                .bind(batch.deadline)
                .bind(&batch.file.header)
                .bind(line_count)
                .bind(batch.file.total_minor)
                .bind(&batch.file_sha256)
                .bind(now)
                .fetch_optional(&mut *transaction)
                .await
                .map_err(db)?;
                let Some(row) = row else {
                    drop(transaction);
                    let found = engine::CollectionBatchStore::collection_batch_by_no(
                        self,
                        &batch.merchant_id,
                        &batch.batch_no,
                    )
                    .await?
                    .ok_or(engine::OrderError::NotFound {
                        entity: "collection batch",
                        id: 0,
                    })?;
                    return Ok(engine::Created::Existing(found));
                };
                let created = batch_from_row(&row)?;
                for chunk in line_chunks(&batch.file.lines) {
                    let mut insert = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO collection_batch_lines (batch_id, line_no, reference, agreement_no, \
                         member_id, amount_minor, priority, raw, status, updated_at) ",
                    );
                    insert.push_values(chunk, |mut values, line| {
                        values
                            .push_bind(created.id)
                            .push_bind(line.line_no)
                            .push_bind(line.reference.clone())
                            .push_bind(line.agreement_no.clone())
                            .push_bind(line.member_id.clone())
                            .push_bind(line.amount_minor)
                            .push_bind(line.priority)
                            .push_bind(line.raw.clone())
                            .push("'WAITING'")
                            .push_bind(now);
                    });
                    insert.build().execute(&mut *transaction).await.map_err(db)?;
                }
                transaction.commit().await.map_err(db)?;
                self.durable().await?;
                Ok(engine::Created::New(created))
            }

            async fn collection_batch_by_no(
                &self,
                merchant_id: &str,
                batch_no: &str,
            ) -> Result<Option<engine::CollectionBatch>, engine::OrderStoreError> {
                use crate::collection_batches::*;
                use crate::orders::db;
                let row = sqlx::query(&format!(
                    "SELECT {BATCH_COLUMNS} FROM collection_batches WHERE merchant_id = $1 AND batch_no = $2"
                ))
                .bind(merchant_id)
                .bind(batch_no)
                .fetch_optional(&self.$writer)
                .await
                .map_err(db)?;
                row.as_ref().map(batch_from_row).transpose()
            }

            async fn collection_batch(
                &self,
                merchant_id: Option<&str>,
                batch_id: engine::CollectionBatchId,
            ) -> Result<Option<engine::CollectionBatch>, engine::OrderStoreError> {
                use crate::collection_batches::*;
                use crate::orders::db;
                let row = sqlx::query(&format!(
                    "SELECT {BATCH_COLUMNS} FROM collection_batches \
                     WHERE id = $1 AND (CAST($2 AS TEXT) IS NULL OR merchant_id = $2)"
                ))
                .bind(batch_id)
                .bind(merchant_id)
                .fetch_optional(&self.$reader)
                .await
                .map_err(db)?;
                row.as_ref().map(batch_from_row).transpose()
            }

            async fn batch_lines(
                &self,
                batch_id: engine::CollectionBatchId,
            ) -> Result<Vec<engine::BatchLine>, engine::OrderStoreError> {
                use crate::collection_batches::*;
                use crate::orders::db;
                let rows = sqlx::query(&format!(
                    "SELECT {LINE_COLUMNS} FROM collection_batch_lines WHERE batch_id = $1 ORDER BY line_no"
                ))
                .bind(batch_id)
                .fetch_all(&self.$reader)
                .await
                .map_err(db)?;
                rows.iter().map(line_from_row).collect()
            }

            async fn batch_lines_in(
                &self,
                batch_id: engine::CollectionBatchId,
                status: engine::LineStatus,
                limit: usize,
            ) -> Result<Vec<engine::BatchLine>, engine::OrderStoreError> {
                use crate::collection_batches::*;
                use crate::orders::db;
                // The writer: what the caller just changed must be seen.
                let rows = sqlx::query(&format!(
                    "SELECT {LINE_COLUMNS} FROM collection_batch_lines \
                     WHERE batch_id = $1 AND status = $2 ORDER BY priority DESC, line_no LIMIT $3"
                ))
                .bind(batch_id)
                .bind(status.as_str())
                .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                .fetch_all(&self.$writer)
                .await
                .map_err(db)?;
                rows.iter().map(line_from_row).collect()
            }

            async fn change_batch_line(
                &self,
                batch_id: engine::CollectionBatchId,
                line_no: i64,
                change: &engine::LineChange,
                now: ledger::TimestampMicros,
            ) -> Result<bool, engine::OrderStoreError> {
                use crate::orders::db;
                let changed = sqlx::query(
                    "UPDATE collection_batch_lines SET status = $1, \
                     payment_id = COALESCE($2, payment_id), failure_code = $3, failure_message = $4, \
                     updated_at = $5 WHERE batch_id = $6 AND line_no = $7 AND status = $8",
                )
                .bind(change.to.as_str())
                .bind(change.payment_id)
                .bind(change.failure_code.as_deref())
                .bind(change.failure_message.as_deref())
                .bind(now)
                .bind(batch_id)
                .bind(line_no)
                .bind(change.from.as_str())
                .execute(&self.$writer)
                .await
                .map_err(db)?
                .rows_affected()
                    == 1;
                if changed {
                    self.durable().await?;
                }
                Ok(changed)
            }

            async fn running_collection_batches(
                &self,
                limit: usize,
            ) -> Result<Vec<engine::CollectionBatch>, engine::OrderStoreError> {
                use crate::collection_batches::*;
                use crate::orders::db;
                let rows = sqlx::query(&format!(
                    "SELECT {BATCH_COLUMNS} FROM collection_batches WHERE status = 'RUNNING' \
                     ORDER BY id LIMIT $1"
                ))
                .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                .fetch_all(&self.$writer)
                .await
                .map_err(db)?;
                rows.iter().map(batch_from_row).collect()
            }

            async fn close_collection_batch(
                &self,
                batch_id: engine::CollectionBatchId,
                now: ledger::TimestampMicros,
            ) -> Result<engine::CollectionBatch, engine::OrderStoreError> {
                use crate::collection_batches::*;
                use crate::orders::db;
                let mut transaction = self.$writer.begin().await.map_err(db)?;
                let closed = sqlx::query(
                    "UPDATE collection_batches SET status = 'CLOSED', closed_at = $1 \
                     WHERE id = $2 AND status = 'RUNNING'",
                )
                .bind(now)
                .bind(batch_id)
                .execute(&mut *transaction)
                .await
                .map_err(db)?
                .rows_affected()
                    == 1;
                if closed {
                    for (from, code, message) in [
                        (
                            "WAITING",
                            engine::NOT_SENT_BY_DEADLINE,
                            "not sent before the batch's deadline",
                        ),
                        (
                            "PROCESSING",
                            engine::DEADLINE_PASSED,
                            "no final answer from the channel by the batch's deadline",
                        ),
                    ] {
                        sqlx::query(
                            "UPDATE collection_batch_lines SET status = 'FAILED', failure_code = $1, \
                             failure_message = $2, updated_at = $3 WHERE batch_id = $4 AND status = $5",
                        )
                        .bind(code)
                        .bind(message)
                        .bind(now)
                        .bind(batch_id)
                        .bind(from)
                        .execute(&mut *transaction)
                        .await
                        .map_err(db)?;
                    }
                }
                let row = sqlx::query(&format!(
                    "SELECT {BATCH_COLUMNS} FROM collection_batches WHERE id = $1"
                ))
                .bind(batch_id)
                .fetch_optional(&mut *transaction)
                .await
                .map_err(db)?;
                transaction.commit().await.map_err(db)?;
                if closed {
                    self.durable().await?;
                }
                let row = row.ok_or(engine::OrderError::NotFound {
                    entity: "collection batch",
                    id: batch_id,
                })?;
                batch_from_row(&row)
            }

            async fn late_batch_lines(
                &self,
                limit: usize,
            ) -> Result<Vec<engine::BatchLine>, engine::OrderStoreError> {
                use crate::collection_batches::*;
                use crate::orders::db;
                // Only lines whose payment is final, or was never made: those
                // still waiting for their channel do not hold up the rest. The
                // serial is `engine::line_out_trade_no`.
                let columns = LINE_COLUMNS
                    .split(", ")
                    .map(|column| format!("l.{column}"))
                    .collect::<Vec<_>>()
                    .join(", ");
                let rows = sqlx::query(&format!(
                    "SELECT {columns} FROM collection_batch_lines l \
                     JOIN collection_batches b ON b.id = l.batch_id \
                     LEFT JOIN payment_orders p ON p.merchant_id = b.merchant_id \
                       AND p.request_serial = 'batch-' || CAST(l.batch_id AS TEXT) || '-' || CAST(l.line_no AS TEXT) \
                     WHERE l.status = 'FAILED' AND l.failure_code = $1 AND l.late IS NULL \
                       AND (p.id IS NULL OR p.status IN ('SUCCESS', 'FAILED')) \
                     ORDER BY l.batch_id, l.line_no LIMIT $2"
                ))
                .bind(engine::DEADLINE_PASSED)
                .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                .fetch_all(&self.$writer)
                .await
                .map_err(db)?;
                rows.iter().map(line_from_row).collect()
            }

            async fn settle_late_batch_line(
                &self,
                batch_id: engine::CollectionBatchId,
                line_no: i64,
                outcome: engine::LateOutcome,
                refund_id: Option<i64>,
                now: ledger::TimestampMicros,
            ) -> Result<bool, engine::OrderStoreError> {
                use crate::orders::db;
                let settled = sqlx::query(
                    "UPDATE collection_batch_lines SET late = $1, late_refund_id = $2, updated_at = $3 \
                     WHERE batch_id = $4 AND line_no = $5 AND late IS NULL",
                )
                .bind(outcome.as_str())
                .bind(refund_id)
                .bind(now)
                .bind(batch_id)
                .bind(line_no)
                .execute(&self.$writer)
                .await
                .map_err(db)?
                .rows_affected()
                    == 1;
                if settled {
                    self.durable().await?;
                }
                Ok(settled)
            }
        }
    };
}

collection_batch_store!(crate::SqliteStore, sqlx::Sqlite, writer, readers);
collection_batch_store!(crate::PostgresStore, sqlx::Postgres, pool, pool);
