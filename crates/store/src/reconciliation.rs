//! Reconciliation's tables on both stores, one SQL text for both.

use crate::rows::database_error;
use recon::{
    ChannelOrderRecord, Class, Discrepancy, DiscrepancyAction, DiscrepancyStatus, ReconRun,
    ReconStoreError, RecordKind, RecordStatus, SideFigures, StatementFile, Treatment,
};
use serde_json::{Value, json};

pub(crate) fn db(error: sqlx::Error) -> ReconStoreError {
    ReconStoreError::Store(database_error(error))
}

fn corrupt(what: &str, value: &str) -> ReconStoreError {
    ReconStoreError::Store(ledger::StoreError::Corrupt(format!("{what}: {value:?}")))
}

pub(crate) type StatementFileRow = (i64, String, i32, String, String, String, i64, String, i64);
pub(crate) const STATEMENT_FILE_COLUMNS: &str =
    "id, channel, business_day, file_name, sha256, format, records, record_path, imported_at";

pub(crate) fn statement_file_from_row(row: StatementFileRow) -> StatementFile {
    let (id, channel, business_day, file_name, sha256, format, records, record_path, imported_at) =
        row;
    StatementFile {
        id,
        file: recon::NewStatementFile {
            channel,
            business_day,
            file_name,
            sha256,
            format,
            records: u64::try_from(records).unwrap_or(0),
            record_path,
        },
        imported_at,
    }
}

pub(crate) type ChannelOrderRecordRow = (
    i64,
    Option<i64>,
    i64,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<i64>,
    i64,
);
pub(crate) const CHANNEL_ORDER_RECORD_COLUMNS: &str = "id, refund_id, amount_minor, currency, status, \
     channel_transaction_id, channel_business_date, channel_fee_minor, updated_at";

pub(crate) fn channel_order_record_from_row(row: ChannelOrderRecordRow) -> ChannelOrderRecord {
    let (id, refund_id, amount_minor, currency, status, transaction, date, fee, updated_at) = row;
    ChannelOrderRecord {
        id,
        kind: if refund_id.is_some() {
            RecordKind::Refund
        } else {
            RecordKind::Payment
        },
        amount_minor,
        currency,
        status,
        channel_transaction_id: transaction,
        channel_business_date: date,
        channel_fee_minor: fee,
        updated_at,
    }
}

pub(crate) type RunRow = (String, i32, i64, i64, i64, i64, String, i64);
pub(crate) const RUN_COLUMNS: &str = "channel, business_day, platform_records, channel_records, \
     matched, discrepancies, summary, finished_at";

pub(crate) fn run_from_row(row: RunRow) -> ReconRun {
    let (channel, business_day, platform, channel_records, matched, discrepancies, summary, at) =
        row;
    let count = |value: i64| u64::try_from(value).unwrap_or(0);
    ReconRun {
        channel,
        business_day,
        platform_records: count(platform),
        channel_records: count(channel_records),
        matched: count(matched),
        discrepancies: count(discrepancies),
        summary,
        finished_at: at,
    }
}

pub(crate) fn figures_to_text(figures: Option<&SideFigures>) -> Option<String> {
    figures.map(|figures| {
        json!({
            "amount_minor": figures.amount_minor,
            "currency": figures.currency,
            "fee_minor": figures.fee_minor,
            "status": figures.status.as_str(),
            "channel_transaction_id": figures.channel_transaction_id,
            "occurred_at": figures.occurred_at,
            "business_day": figures.business_day,
        })
        .to_string()
    })
}

fn figures_from_text(text: Option<String>) -> Result<Option<SideFigures>, ReconStoreError> {
    let Some(text) = text else {
        return Ok(None);
    };
    let bad = || corrupt("discrepancy figures", &text);
    let value: Value = serde_json::from_str(&text).map_err(|_| bad())?;
    let integer = |name: &str| value.get(name).and_then(Value::as_i64);
    let string = |name: &str| value.get(name).and_then(Value::as_str).map(str::to_owned);
    Ok(Some(SideFigures {
        amount_minor: integer("amount_minor").ok_or_else(bad)?,
        currency: string("currency").ok_or_else(bad)?,
        fee_minor: integer("fee_minor"),
        status: string("status")
            .as_deref()
            .and_then(RecordStatus::parse)
            .ok_or_else(bad)?,
        channel_transaction_id: string("channel_transaction_id"),
        occurred_at: integer("occurred_at").ok_or_else(bad)?,
        business_day: integer("business_day")
            .and_then(|day| i32::try_from(day).ok())
            .ok_or_else(bad)?,
    }))
}

pub(crate) type DiscrepancyRow = (
    i64,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    i32,
    i32,
    i64,
    Option<String>,
    Option<String>,
    i64,
    i64,
);
pub(crate) const DISCREPANCY_COLUMNS: &str = "id, channel, record_key, kind, class, error_code, \
     treatment, status, first_day, last_day, channel_count, platform_figures, channel_figures, \
     created_at, updated_at";

pub(crate) fn discrepancy_from_row(row: DiscrepancyRow) -> Result<Discrepancy, ReconStoreError> {
    let (
        id,
        channel,
        key,
        kind,
        class,
        error_code,
        treatment,
        status,
        first_day,
        last_day,
        channel_count,
        platform,
        channel_side,
        created_at,
        updated_at,
    ) = row;
    Ok(Discrepancy {
        id,
        channel,
        key,
        kind: RecordKind::parse(&kind).ok_or_else(|| corrupt("kind", &kind))?,
        class: Class::parse(&class).ok_or_else(|| corrupt("class", &class))?,
        error_code,
        treatment: Treatment::parse(&treatment).ok_or_else(|| corrupt("treatment", &treatment))?,
        status: DiscrepancyStatus::parse(&status).ok_or_else(|| corrupt("status", &status))?,
        first_day,
        last_day,
        channel_count: u64::try_from(channel_count).unwrap_or(0),
        platform: figures_from_text(platform)?,
        channel_side: figures_from_text(channel_side)?,
        created_at,
        updated_at,
    })
}

pub(crate) type ActionRow = (i64, String, String, String, String, String, String, i64);
pub(crate) const ACTION_COLUMNS: &str =
    "discrepancy_id, action_key, action, from_status, to_status, actor, reason, at";

pub(crate) fn action_from_row(row: ActionRow) -> Result<DiscrepancyAction, ReconStoreError> {
    let (discrepancy_id, action_key, action, from, to, actor, reason, at) = row;
    Ok(DiscrepancyAction {
        discrepancy_id,
        action_key,
        action,
        from_status: DiscrepancyStatus::parse(&from).ok_or_else(|| corrupt("status", &from))?,
        to_status: DiscrepancyStatus::parse(&to).ok_or_else(|| corrupt("status", &to))?,
        actor,
        reason,
        at,
    })
}

/// Channel order ids bound to one statement of
/// [`confirm_channel_orders_sql`]: within every SQLite's variable limit.
pub(crate) const CONFIRM_STATEMENT_IDS_MAX: usize = 500;

/// `$1, $2, …` for `count` values.
fn placeholders(count: usize) -> String {
    let placeholders: Vec<String> = (1..=count).map(|index| format!("${index}")).collect();
    placeholders.join(", ")
}

/// Notes on the escrows of `count` channel orders' payments (`$1`…) that
/// reconciliation matched their collection, for the clearing entry their
/// release writes later (担保交易). It runs before
/// [`confirm_channel_orders_sql`] in the same transaction, so that a
/// release finishing meanwhile either sees the note or wrote its entry
/// before the entries are marked.
pub(crate) fn confirm_escrows_sql(count: usize) -> String {
    format!(
        "UPDATE escrows SET channel_confirmed = TRUE WHERE NOT channel_confirmed AND payment_id IN ( \
         SELECT i.payment_id FROM channel_orders c JOIN payment_instructions i ON i.id = c.instruction_id \
         WHERE c.status = 'SUCCESS' AND c.refund_id IS NULL AND c.id IN ({}))",
        placeholders(count)
    )
}

/// Marks reconciled the clearing entries of `count` channel orders (`$1`…):
/// a payment's collection, or a refund's, by the entry's `source_key`.
pub(crate) fn confirm_channel_orders_sql(count: usize) -> String {
    format!(
        "UPDATE clearing_entries SET reconciled = TRUE WHERE NOT reconciled AND source_key IN ( \
         SELECT CASE WHEN c.refund_id IS NULL THEN 'payment-' || CAST(i.payment_id AS TEXT) \
         ELSE 'refund-' || CAST(c.refund_id AS TEXT) END \
         FROM channel_orders c JOIN payment_instructions i ON i.id = c.instruction_id \
         WHERE c.status = 'SUCCESS' AND c.id IN ({}))",
        placeholders(count)
    )
}

pub(crate) fn as_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// Implements `recon::ReconStore` for a store type whose connections are
/// `$writer` and `$reader` and whose database is `$db`.
macro_rules! recon_store {
    ($store:ty, $db:ty, $writer:ident, $reader:ident) => {
        impl recon::ReconStore for $store {
            async fn record_statement_file(
                &self,
                file: &recon::NewStatementFile,
                now: ledger::TimestampMicros,
            ) -> Result<recon::StatementFile, recon::ReconStoreError> {
                use crate::reconciliation::*;
                let inserted: Option<StatementFileRow> = sqlx::query_as(&format!(
                    "INSERT INTO recon_statement_files (channel, business_day, file_name, sha256, \
                     format, records, record_path, imported_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                     ON CONFLICT (sha256) DO NOTHING RETURNING {STATEMENT_FILE_COLUMNS}"
                ))
                .bind(&file.channel)
                .bind(file.business_day)
                .bind(&file.file_name)
                .bind(&file.sha256)
                .bind(&file.format)
                .bind(as_i64(file.records))
                .bind(&file.record_path)
                .bind(now)
                .fetch_optional(&self.$writer)
                .await
                .map_err(db)?;
                if let Some(row) = inserted {
                    self.durable().await?;
                    return Ok(statement_file_from_row(row));
                }
                let first: StatementFileRow = sqlx::query_as(&format!(
                    "SELECT {STATEMENT_FILE_COLUMNS} FROM recon_statement_files WHERE sha256 = $1"
                ))
                .bind(&file.sha256)
                .fetch_one(&self.$writer)
                .await
                .map_err(db)?;
                let first = statement_file_from_row(first);
                Err(recon::ReconStoreError::AlreadyImported {
                    id: first.id,
                    file_name: first.file.file_name,
                    business_day: first.file.business_day,
                })
            }

            async fn statement_files(
                &self,
                channel: &str,
                business_day: i32,
            ) -> Result<Vec<recon::StatementFile>, recon::ReconStoreError> {
                use crate::reconciliation::*;
                let rows: Vec<StatementFileRow> = sqlx::query_as(&format!(
                    "SELECT {STATEMENT_FILE_COLUMNS} FROM recon_statement_files \
                     WHERE channel = $1 AND business_day = $2 ORDER BY id"
                ))
                .bind(channel)
                .bind(business_day)
                .fetch_all(&self.$reader)
                .await
                .map_err(db)?;
                Ok(rows.into_iter().map(statement_file_from_row).collect())
            }

            async fn snapshot_page(
                &self,
                channel: &str,
                business_date: &str,
                from: ledger::TimestampMicros,
                to: ledger::TimestampMicros,
                after_id: i64,
                limit: u32,
            ) -> Result<Vec<recon::ChannelOrderRecord>, recon::ReconStoreError> {
                use crate::reconciliation::*;
                let limit = limit.min(recon::SNAPSHOT_PAGE_ROWS_MAX);
                let rows: Vec<ChannelOrderRecordRow> = sqlx::query_as(&format!(
                    "SELECT {CHANNEL_ORDER_RECORD_COLUMNS} FROM channel_orders \
                     WHERE channel = $1 AND id > $5 AND (channel_business_date = $2 \
                     OR (channel_business_date IS NULL AND updated_at >= $3 AND updated_at < $4)) \
                     ORDER BY id LIMIT $6"
                ))
                .bind(channel)
                .bind(business_date)
                .bind(from)
                .bind(to)
                .bind(after_id)
                .bind(i64::from(limit))
                .fetch_all(&self.$reader)
                .await
                .map_err(db)?;
                Ok(rows.into_iter().map(channel_order_record_from_row).collect())
            }

            async fn channel_orders_by_id(
                &self,
                ids: &[i64],
            ) -> Result<Vec<recon::ChannelOrderRecord>, recon::ReconStoreError> {
                use crate::reconciliation::*;
                let mut records = Vec::with_capacity(ids.len());
                for id in ids {
                    let row: Option<ChannelOrderRecordRow> = sqlx::query_as(&format!(
                        "SELECT {CHANNEL_ORDER_RECORD_COLUMNS} FROM channel_orders WHERE id = $1"
                    ))
                    .bind(id)
                    .fetch_optional(&self.$reader)
                    .await
                    .map_err(db)?;
                    records.extend(row.map(channel_order_record_from_row));
                }
                Ok(records)
            }

            async fn channel_order_owner(
                &self,
                channel_order_id: i64,
            ) -> Result<Option<recon::ChannelOrderOwner>, recon::ReconStoreError> {
                use crate::reconciliation::*;
                let row: Option<(String, i64, Option<i64>, Option<i64>)> = sqlx::query_as(
                    "SELECT p.merchant_id, p.id, c.refund_id, t.paid_payment_id FROM channel_orders c \
                     JOIN payment_instructions i ON i.id = c.instruction_id \
                     JOIN payment_orders p ON p.id = i.payment_id \
                     JOIN trade_orders t ON t.id = p.trade_id WHERE c.id = $1",
                )
                .bind(channel_order_id)
                .fetch_optional(&self.$reader)
                .await
                .map_err(db)?;
                Ok(row.map(|(merchant_id, payment_id, refund_id, trade_paid_by)| {
                    recon::ChannelOrderOwner {
                        channel_order_id,
                        merchant_id,
                        payment_id,
                        refund_id,
                        trade_paid_by,
                    }
                }))
            }

            async fn save_run(&self, run: &recon::ReconRun) -> Result<(), recon::ReconStoreError> {
                use crate::reconciliation::*;
                sqlx::query(
                    "INSERT INTO recon_runs (channel, business_day, platform_records, channel_records, \
                     matched, discrepancies, summary, finished_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                     ON CONFLICT (channel, business_day) DO UPDATE SET \
                     platform_records = excluded.platform_records, channel_records = excluded.channel_records, \
                     matched = excluded.matched, discrepancies = excluded.discrepancies, \
                     summary = excluded.summary, finished_at = excluded.finished_at",
                )
                .bind(&run.channel)
                .bind(run.business_day)
                .bind(as_i64(run.platform_records))
                .bind(as_i64(run.channel_records))
                .bind(as_i64(run.matched))
                .bind(as_i64(run.discrepancies))
                .bind(&run.summary)
                .bind(run.finished_at)
                .execute(&self.$writer)
                .await
                .map_err(db)?;
                self.durable().await?;
                Ok(())
            }

            async fn runs(&self, channel: &str) -> Result<Vec<recon::ReconRun>, recon::ReconStoreError> {
                use crate::reconciliation::*;
                let rows: Vec<RunRow> = sqlx::query_as(&format!(
                    "SELECT {RUN_COLUMNS} FROM recon_runs WHERE channel = $1 ORDER BY business_day"
                ))
                .bind(channel)
                .fetch_all(&self.$reader)
                .await
                .map_err(db)?;
                Ok(rows.into_iter().map(run_from_row).collect())
            }

            async fn upsert_discrepancy(
                &self,
                update: &recon::DiscrepancyUpdate<'_>,
                now: ledger::TimestampMicros,
            ) -> Result<recon::Discrepancy, recon::ReconStoreError> {
                use crate::reconciliation::*;
                let finding = update.finding;
                sqlx::query(
                    "INSERT INTO recon_discrepancies (channel, record_key, kind, class, error_code, \
                     treatment, status, first_day, last_day, channel_count, platform_figures, \
                     channel_figures, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, 'OPEN', $7, $7, $8, $9, $10, $11, $11) \
                     ON CONFLICT (channel, record_key) DO UPDATE SET \
                     class = excluded.class, error_code = excluded.error_code, \
                     treatment = excluded.treatment, last_day = excluded.last_day, \
                     channel_count = excluded.channel_count, \
                     platform_figures = excluded.platform_figures, \
                     channel_figures = excluded.channel_figures, updated_at = excluded.updated_at \
                     WHERE recon_discrepancies.status IN ('OPEN', 'EXCEPTION')",
                )
                .bind(update.channel)
                .bind(&finding.key)
                .bind(finding.kind.as_str())
                .bind(finding.class.as_str())
                .bind(update.error_code)
                .bind(update.treatment.as_str())
                .bind(update.business_day)
                .bind(as_i64(finding.channel_count))
                .bind(figures_to_text(finding.platform.as_ref()))
                .bind(figures_to_text(finding.channel.as_ref()))
                .bind(now)
                .execute(&self.$writer)
                .await
                .map_err(db)?;
                self.durable().await?;
                let row: DiscrepancyRow = sqlx::query_as(&format!(
                    "SELECT {DISCREPANCY_COLUMNS} FROM recon_discrepancies \
                     WHERE channel = $1 AND record_key = $2"
                ))
                .bind(update.channel)
                .bind(&finding.key)
                .fetch_one(&self.$writer)
                .await
                .map_err(db)?;
                discrepancy_from_row(row)
            }

            async fn discrepancy(
                &self,
                id: i64,
            ) -> Result<Option<recon::Discrepancy>, recon::ReconStoreError> {
                use crate::reconciliation::*;
                let row: Option<DiscrepancyRow> = sqlx::query_as(&format!(
                    "SELECT {DISCREPANCY_COLUMNS} FROM recon_discrepancies WHERE id = $1"
                ))
                .bind(id)
                .fetch_optional(&self.$reader)
                .await
                .map_err(db)?;
                row.map(discrepancy_from_row).transpose()
            }

            async fn discrepancies(
                &self,
                query: &recon::DiscrepancyQuery,
            ) -> Result<Vec<recon::Discrepancy>, recon::ReconStoreError> {
                use crate::reconciliation::*;
                let limit = query.limit.clamp(1, recon::DISCREPANCY_PAGE_MAX);
                let rows: Vec<DiscrepancyRow> = sqlx::query_as(&format!(
                    "SELECT {DISCREPANCY_COLUMNS} FROM recon_discrepancies WHERE id > $1 \
                     AND ($2 IS NULL OR channel = $2) AND ($3 IS NULL OR status = $3) \
                     ORDER BY id LIMIT $4"
                ))
                .bind(query.after_id)
                .bind(query.channel.as_deref())
                .bind(query.status.map(|status| status.as_str()))
                .bind(i64::from(limit))
                .fetch_all(&self.$reader)
                .await
                .map_err(db)?;
                rows.into_iter().map(discrepancy_from_row).collect()
            }

            async fn change_discrepancy(
                &self,
                action: &recon::DiscrepancyAction,
            ) -> Result<bool, recon::ReconStoreError> {
                use crate::reconciliation::*;
                let mut transaction = self.$writer.begin().await.map_err(db)?;
                let changed = sqlx::query(
                    "UPDATE recon_discrepancies SET status = $1, updated_at = $2 \
                     WHERE id = $3 AND status = $4",
                )
                .bind(action.to_status.as_str())
                .bind(action.at)
                .bind(action.discrepancy_id)
                .bind(action.from_status.as_str())
                .execute(&mut *transaction)
                .await
                .map_err(db)?;
                if changed.rows_affected() == 0 {
                    return Ok(false);
                }
                let logged = sqlx::query(
                    "INSERT INTO recon_actions (discrepancy_id, action_key, action, from_status, \
                     to_status, actor, reason, at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                     ON CONFLICT (action_key) DO NOTHING",
                )
                .bind(action.discrepancy_id)
                .bind(&action.action_key)
                .bind(&action.action)
                .bind(action.from_status.as_str())
                .bind(action.to_status.as_str())
                .bind(&action.actor)
                .bind(&action.reason)
                .bind(action.at)
                .execute(&mut *transaction)
                .await
                .map_err(db)?;
                if logged.rows_affected() == 0 {
                    // The same action ran before: leave everything as it was.
                    return Ok(false);
                }
                transaction.commit().await.map_err(db)?;
                self.durable().await?;
                Ok(true)
            }

            async fn actions(
                &self,
                discrepancy_id: i64,
            ) -> Result<Vec<recon::DiscrepancyAction>, recon::ReconStoreError> {
                use crate::reconciliation::*;
                let rows: Vec<ActionRow> = sqlx::query_as(&format!(
                    "SELECT {ACTION_COLUMNS} FROM recon_actions WHERE discrepancy_id = $1 ORDER BY id"
                ))
                .bind(discrepancy_id)
                .fetch_all(&self.$reader)
                .await
                .map_err(db)?;
                rows.into_iter().map(action_from_row).collect()
            }

            async fn confirm_channel_orders(
                &self,
                channel_order_ids: &[i64],
            ) -> Result<u64, recon::ReconStoreError> {
                use crate::reconciliation::*;
                if channel_order_ids.len() > recon::CONFIRM_ORDERS_MAX {
                    return Err(recon::ReconStoreError::TooManyOrders {
                        given: channel_order_ids.len(),
                        max: recon::CONFIRM_ORDERS_MAX,
                    });
                }
                if channel_order_ids.is_empty() {
                    return Ok(0);
                }
                let mut transaction = self.$writer.begin().await.map_err(db)?;
                let mut changed = 0;
                for chunk in channel_order_ids.chunks(CONFIRM_STATEMENT_IDS_MAX) {
                    let escrows = confirm_escrows_sql(chunk.len());
                    let mut query = sqlx::query(&escrows);
                    for id in chunk {
                        query = query.bind(*id);
                    }
                    query.execute(&mut *transaction).await.map_err(db)?;
                    let sql = confirm_channel_orders_sql(chunk.len());
                    let mut query = sqlx::query(&sql);
                    for id in chunk {
                        query = query.bind(*id);
                    }
                    changed += query.execute(&mut *transaction).await.map_err(db)?.rows_affected();
                }
                transaction.commit().await.map_err(db)?;
                self.durable().await?;
                Ok(changed)
            }

            async fn internal_check(
                &self,
            ) -> Result<recon::InternalReport, recon::ReconStoreError> {
                let mut connection = self
                    .$reader
                    .acquire()
                    .await
                    .map_err(|error| recon::ReconStoreError::Store(crate::rows::database_error(error)))?;
                crate::internal::run::<$db>(&mut *connection)
                    .await
                    .map_err(recon::ReconStoreError::Store)
            }
        }
    };
}

recon_store!(crate::SqliteStore, sqlx::Sqlite, writer, readers);
recon_store!(crate::PostgresStore, sqlx::Postgres, pool, pool);
