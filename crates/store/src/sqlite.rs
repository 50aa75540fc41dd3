//! The embedded default store: one SQLite file in WAL mode with
//! `synchronous=FULL`, so a commit is on disk before it is acknowledged.
//!
//! All writes go through one connection (SQLite has one writer anyway);
//! reads use a small pool beside it.

use crate::rows::{
    ACCOUNT_COLUMNS, AccountRow, ENTRY_COLUMNS, EntryRow, TRANSFER_COLUMNS, TransferRow,
    account_from_row, assemble_transfers, database_error, overdraft_column, transfer_columns,
};
use crate::sqlite_connections::SqliteConnections;
use crate::wal_sync::WalSync;
use crate::{BatchTimings, Migration, check};
use ledger::posting::{BatchReferences, LoadedState, apply_batch, verify_outcome};
use ledger::{
    Account, AccountError, AccountId, BATCH_OPERATIONS_MAX, BatchItem, CheckReport, LedgerError,
    LedgerStore, NewAccount, StatementLine, StatementQuery, StoreError, TimestampMicros, Transfer,
    TransferId,
};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{ConnectOptions, QueryBuilder, Sqlite, SqliteConnection};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "ledger",
        sql: include_str!("../migrations/sqlite/0001_ledger.sql"),
    },
    Migration {
        version: 2,
        name: "orders",
        sql: include_str!("../migrations/sqlite/0002_orders.sql"),
    },
    Migration {
        version: 3,
        name: "merchants",
        sql: include_str!("../migrations/sqlite/0003_merchants.sql"),
    },
    Migration {
        version: 4,
        name: "notifications",
        sql: include_str!("../migrations/sqlite/0004_notifications.sql"),
    },
    Migration {
        version: 5,
        name: "refund_parts",
        sql: include_str!("../migrations/sqlite/0005_refund_parts.sql"),
    },
    Migration {
        version: 6,
        name: "refund_payment",
        sql: include_str!("../migrations/sqlite/0006_refund_payment.sql"),
    },
    Migration {
        version: 7,
        name: "bank_outages",
        sql: include_str!("../migrations/sqlite/0007_bank_outages.sql"),
    },
    Migration {
        version: 8,
        name: "one_channel_order",
        sql: include_str!("../migrations/sqlite/0008_one_channel_order.sql"),
    },
    Migration {
        version: 9,
        name: "next_check",
        sql: include_str!("../migrations/sqlite/0009_next_check.sql"),
    },
    Migration {
        version: 10,
        name: "fee_counters",
        sql: include_str!("../migrations/sqlite/0010_fee_counters.sql"),
    },
    Migration {
        version: 11,
        name: "reconciliation",
        sql: include_str!("../migrations/sqlite/0011_reconciliation.sql"),
    },
    Migration {
        version: 12,
        name: "clearing",
        sql: include_str!("../migrations/sqlite/0012_clearing.sql"),
    },
    Migration {
        version: 15,
        name: "agreements",
        sql: include_str!("../migrations/sqlite/0015_agreements.sql"),
    },
    Migration {
        version: 16,
        name: "fee_rules",
        sql: include_str!("../migrations/sqlite/0016_fee_rules.sql"),
    },
    Migration {
        version: 17,
        name: "payment_fees",
        sql: include_str!("../migrations/sqlite/0017_payment_fees.sql"),
    },
    Migration {
        version: 18,
        name: "stored_value",
        sql: include_str!("../migrations/sqlite/0018_stored_value.sql"),
    },
    Migration {
        version: 19,
        name: "fee_deposits",
        sql: include_str!("../migrations/sqlite/0019_fee_deposits.sql"),
    },
    Migration {
        version: 20,
        name: "refund_reviews",
        sql: include_str!("../migrations/sqlite/0020_refund_reviews.sql"),
    },
    Migration {
        version: 21,
        name: "collection_batches",
        sql: include_str!("../migrations/sqlite/0021_collection_batches.sql"),
    },
    Migration {
        version: 22,
        name: "refund_notifications",
        sql: include_str!("../migrations/sqlite/0022_refund_notifications.sql"),
    },
    Migration {
        version: 23,
        name: "settlement_days",
        sql: include_str!("../migrations/sqlite/0023_settlement_days.sql"),
    },
    Migration {
        version: 24,
        name: "escrows",
        sql: include_str!("../migrations/sqlite/0024_escrows.sql"),
    },
    Migration {
        version: 25,
        name: "payout_parts",
        sql: include_str!("../migrations/sqlite/0025_payout_parts.sql"),
    },
];

/// Rows per multi-row INSERT; SQLite allows 32,766 bound values.
const INSERT_ROWS_MAX: usize = 1_000;
const READ_CONNECTIONS_MAX: usize = 4;

/// The SQLite ledger store.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pub(crate) writer: SqliteConnections,
    pub(crate) readers: SqliteConnections,
    wal: Arc<WalSync>,
    pub(crate) nonce_purge: crate::merchants::NoncePurge,
}

impl SqliteStore {
    /// Opens (creating if missing) the database file at `path` and runs any
    /// pending migrations.
    pub async fn open(path: &str) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{path}"))
            .map_err(database_error)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // Commits are made durable by the group fsync of `WalSync`
            // before any caller is answered; see wal_sync.rs.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .pragma("cache_size", "-65536");
        // One connection takes every write (SQLite has one writer anyway);
        // reads share a few beside it. Neither is a pool: see
        // sqlite_connections.rs.
        let mut writer = options.connect().await.map_err(database_error)?;
        sqlx::raw_sql(crate::batch::SQLITE_GUARD_SETUP)
            .execute(&mut writer)
            .await
            .map_err(database_error)?;
        let writer = SqliteConnections::new(vec![writer]);
        migrate(&writer).await?;
        let read_only = options.read_only(true);
        let mut readers = Vec::with_capacity(READ_CONNECTIONS_MAX);
        for _ in 0..READ_CONNECTIONS_MAX {
            readers.push(read_only.connect().await.map_err(database_error)?);
        }
        let readers = SqliteConnections::new(readers);
        Ok(SqliteStore {
            writer,
            readers,
            wal: Arc::new(WalSync::new(path)),
            nonce_purge: Default::default(),
        })
    }

    /// The durability settings in force, for benchmarks to print.
    pub async fn durability(&self) -> Result<String, StoreError> {
        let (mode,): (String,) = sqlx::query_as("PRAGMA journal_mode")
            .fetch_one(&self.writer)
            .await
            .map_err(database_error)?;
        let (synchronous,): (i64,) = sqlx::query_as("PRAGMA synchronous")
            .fetch_one(&self.writer)
            .await
            .map_err(database_error)?;
        let synchronous = match synchronous {
            0 => "OFF",
            1 => "NORMAL",
            2 => "FULL",
            3 => "EXTRA",
            _ => "?",
        };
        Ok(format!(
            "SQLite journal_mode={mode} synchronous={synchronous}, the WAL fsync'd before every answer (group fsync)"
        ))
    }

    /// Waits until every commit made so far is on disk; writes call it after
    /// they commit and before they answer.
    pub(crate) async fn durable(&self) -> Result<(), StoreError> {
        self.wal.durable().await
    }

    /// Runs `batch` on the write connection, committed with whatever
    /// other batches are waiting; see batch.rs.
    pub(crate) async fn run_batch(
        &self,
        batch: &crate::batch::Batch<'_>,
    ) -> Result<Vec<Vec<sqlx::sqlite::SqliteRow>>, crate::batch::BatchError> {
        self.writer.run_batch(batch).await
    }

    /// Runs one write as a batch of its own; returns the first row it
    /// returned, decoded.
    pub(crate) async fn write_returning<T>(
        &self,
        statement: crate::batch::Statement<'_>,
    ) -> Result<Option<T>, crate::batch::BatchError>
    where
        T: for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>,
    {
        let mut batch = crate::batch::Batch::new();
        batch.push(statement, crate::batch::Expect::Any);
        let row = crate::batch::first_row(self.run_batch(&batch).await?);
        Ok(row.map(|row| T::from_row(&row)).transpose()?)
    }
}

async fn migrate(writer: &SqliteConnections) -> Result<(), StoreError> {
    sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS schema_migrations \
         (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)",
    )
    .execute(writer)
    .await
    .map_err(database_error)?;
    for migration in MIGRATIONS {
        let mut transaction = writer.begin().await.map_err(database_error)?;
        let applied: Option<(i64,)> =
            sqlx::query_as("SELECT version FROM schema_migrations WHERE version = ?")
                .bind(migration.version)
                .fetch_optional(&mut *transaction)
                .await
                .map_err(database_error)?;
        if applied.is_none() {
            sqlx::raw_sql(migration.sql)
                .execute(&mut *transaction)
                .await
                .map_err(database_error)?;
            sqlx::query(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
            )
            .bind(migration.version)
            .bind(migration.name)
            .bind(crate::now_micros())
            .execute(&mut *transaction)
            .await
            .map_err(database_error)?;
        }
        transaction.commit().await.map_err(database_error)?;
    }
    Ok(())
}

/// A JSON array of `values`, for `IN (SELECT value FROM json_each(?))`: one
/// cached statement whatever the list's length.
fn json_list<T: serde::Serialize>(values: &[T]) -> Result<String, StoreError> {
    serde_json::to_string(values).map_err(|error| StoreError::Database(error.to_string()))
}

async fn transfers_where(
    connection: &mut SqliteConnection,
    column: &str,
    list: String,
) -> Result<Vec<Transfer>, StoreError> {
    let sql = format!(
        "SELECT {TRANSFER_COLUMNS} FROM transfers WHERE {column} IN (SELECT value FROM json_each(?))"
    );
    let rows: Vec<TransferRow> = sqlx::query_as(&sql)
        .bind(list)
        .fetch_all(&mut *connection)
        .await
        .map_err(database_error)?;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<i64> = rows.iter().map(|row| row.0).collect();
    let entries: Vec<EntryRow> = sqlx::query_as(&format!(
        "SELECT {ENTRY_COLUMNS} FROM entries WHERE transfer_id IN (SELECT value FROM json_each(?))"
    ))
    .bind(json_list(&ids)?)
    .fetch_all(&mut *connection)
    .await
    .map_err(database_error)?;
    assemble_transfers(rows, entries)
}

async fn load(
    connection: &mut SqliteConnection,
    items: &[BatchItem],
) -> Result<LoadedState, StoreError> {
    let mut references = BatchReferences::of(items);
    let keys: Vec<&String> = references.keys.iter().collect();
    let by_key = transfers_where(connection, "idempotency_key", json_list(&keys)?).await?;
    let ids: Vec<i64> = references.transfer_ids.iter().copied().collect();
    let by_id = if ids.is_empty() {
        Vec::new()
    } else {
        transfers_where(connection, "id", json_list(&ids)?).await?
    };
    for transfer in &by_id {
        references
            .account_ids
            .extend(transfer.entries.iter().map(|entry| entry.account_id));
    }
    let account_ids: Vec<i64> = references.account_ids.iter().copied().collect();
    // One row holding a JSON array of all the accounts: sqlx's SQLite driver
    // hands every result row across threads one at a time, which for the
    // thousands of accounts of a large batch cost more than the query.
    let (accounts_json,): (String,) = sqlx::query_as(&format!(
        "SELECT json_group_array(json_array({ACCOUNT_COLUMNS})) FROM accounts \
         WHERE id IN (SELECT value FROM json_each(?))"
    ))
    .bind(json_list(&account_ids)?)
    .fetch_one(&mut *connection)
    .await
    .map_err(database_error)?;
    let rows: Vec<AccountRow> = serde_json::from_str(&accounts_json)
        .map_err(|error| StoreError::Corrupt(format!("account rows: {error}")))?;
    let mut loaded = LoadedState::default();
    for row in rows {
        let account = account_from_row(row)?;
        loaded.accounts.insert(account.id, account);
    }
    loaded.transfers_by_key = by_key
        .into_iter()
        .map(|transfer| (transfer.key.clone(), transfer))
        .collect();
    loaded.transfers_by_id = by_id
        .into_iter()
        .map(|transfer| (transfer.id, transfer))
        .collect();
    Ok(loaded)
}

async fn write_outcome(
    connection: &mut SqliteConnection,
    outcome: &ledger::posting::BatchOutcome,
) -> Result<(), StoreError> {
    for chunk in outcome.new_transfers.chunks(INSERT_ROWS_MAX) {
        let columns = chunk
            .iter()
            .map(transfer_columns)
            .collect::<Result<Vec<_>, _>>()?;
        let mut insert: QueryBuilder<Sqlite> =
            QueryBuilder::new(format!("INSERT INTO transfers ({TRANSFER_COLUMNS}) "));
        insert.push_values(columns, |mut row, column| {
            row.push_bind(column.0)
                .push_bind(column.1)
                .push_bind(column.2)
                .push_bind(column.3)
                .push_bind(column.4)
                .push_bind(column.5)
                .push_bind(column.6)
                .push_bind(column.7)
                .push_bind(column.8)
                .push_bind(column.9)
                .push_bind(column.10);
        });
        insert
            .build()
            .execute(&mut *connection)
            .await
            .map_err(database_error)?;
    }
    let entries: Vec<&ledger::Entry> = outcome
        .new_transfers
        .iter()
        .flat_map(|transfer| &transfer.entries)
        .collect();
    for chunk in entries.chunks(INSERT_ROWS_MAX) {
        let mut insert: QueryBuilder<Sqlite> =
            QueryBuilder::new(format!("INSERT INTO entries ({ENTRY_COLUMNS}) "));
        insert.push_values(chunk, |mut row, entry| {
            row.push_bind(entry.transfer_id)
                .push_bind(i64::from(entry.leg_index))
                .push_bind(entry.account_id)
                .push_bind(entry.side == ledger::Side::Credit)
                .push_bind(entry.amount_minor)
                .push_bind(entry.currency.code())
                .push_bind(entry.pending)
                .push_bind(entry.balance_after_minor)
                .push_bind(entry.posted_at);
        });
        insert
            .build()
            .execute(&mut *connection)
            .await
            .map_err(database_error)?;
    }
    for chunk in outcome.account_updates.chunks(INSERT_ROWS_MAX) {
        let mut update: QueryBuilder<Sqlite> =
            QueryBuilder::new("WITH v(id, dp, cp, dq, cq, fr) AS (");
        update.push_values(chunk, |mut row, (account_id, balances)| {
            row.push_bind(*account_id)
                .push_bind(balances.debits_posted_minor)
                .push_bind(balances.credits_posted_minor)
                .push_bind(balances.debits_pending_minor)
                .push_bind(balances.credits_pending_minor)
                .push_bind(balances.frozen_minor);
        });
        update.push(
            ") UPDATE accounts SET debits_posted_minor = v.dp, credits_posted_minor = v.cp, \
             debits_pending_minor = v.dq, credits_pending_minor = v.cq, frozen_minor = v.fr \
             FROM v WHERE accounts.id = v.id",
        );
        update
            .build()
            .execute(&mut *connection)
            .await
            .map_err(database_error)?;
    }
    for (transfer_id, status) in &outcome.status_updates {
        sqlx::query("UPDATE transfers SET status = ? WHERE id = ?")
            .bind(status.as_str())
            .bind(transfer_id)
            .execute(&mut *connection)
            .await
            .map_err(database_error)?;
    }
    for delta in &outcome.subject_deltas {
        sqlx::query(
            "INSERT INTO subject_balances (subject_code, currency, debits_posted_minor, credits_posted_minor) \
             VALUES (?, ?, ?, ?) ON CONFLICT (subject_code, currency) DO UPDATE SET \
             debits_posted_minor = debits_posted_minor + excluded.debits_posted_minor, \
             credits_posted_minor = credits_posted_minor + excluded.credits_posted_minor",
        )
        .bind(&delta.subject_code)
        .bind(delta.currency.code())
        .bind(delta.debits_minor)
        .bind(delta.credits_minor)
        .execute(&mut *connection)
        .await
        .map_err(database_error)?;
    }
    Ok(())
}

impl LedgerStore for SqliteStore {
    async fn create_account(&self, account: &NewAccount) -> Result<Account, StoreError> {
        account.validate()?;
        let mut transaction = self.writer.begin().await.map_err(database_error)?;
        let existing: Option<(i64,)> = sqlx::query_as(
            "SELECT id FROM accounts WHERE owner_kind = ? AND owner_id = ? AND kind = ? AND currency = ?",
        )
        .bind(account.owner_kind.as_str())
        .bind(&account.owner_id)
        .bind(account.kind.as_str())
        .bind(account.currency.code())
        .fetch_optional(&mut *transaction)
        .await
        .map_err(database_error)?;
        if let Some((id,)) = existing {
            return Err(AccountError::AlreadyExists(id).into());
        }
        let row: AccountRow = sqlx::query_as(&format!(
            "INSERT INTO accounts (subject_code, subject_class, kind, owner_kind, owner_id, currency, \
             overdraft_limit_minor, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING {ACCOUNT_COLUMNS}"
        ))
        .bind(&account.subject_code)
        .bind(account.subject_class.as_str())
        .bind(account.kind.as_str())
        .bind(account.owner_kind.as_str())
        .bind(&account.owner_id)
        .bind(account.currency.code())
        .bind(overdraft_column(account.overdraft))
        .bind(crate::now_micros())
        .fetch_one(&mut *transaction)
        .await
        .map_err(database_error)?;
        transaction.commit().await.map_err(database_error)?;
        self.durable().await?;
        account_from_row(row)
    }

    async fn account(&self, account_id: AccountId) -> Result<Option<Account>, StoreError> {
        let row: Option<AccountRow> = sqlx::query_as(&format!(
            "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = ?"
        ))
        .bind(account_id)
        .fetch_optional(&self.readers)
        .await
        .map_err(database_error)?;
        row.map(account_from_row).transpose()
    }

    async fn commit_batch(
        &self,
        items: &[BatchItem],
        now: TimestampMicros,
    ) -> Result<Vec<Result<Transfer, LedgerError>>, StoreError> {
        if items.len() > BATCH_OPERATIONS_MAX {
            return Err(StoreError::BatchTooLarge {
                count: items.len(),
                max: BATCH_OPERATIONS_MAX,
            });
        }
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let mut timings = BatchTimings::start();
        let mut transaction = self.writer.begin().await.map_err(database_error)?;
        let loaded = load(&mut transaction, items).await?;
        let (last_id,): (i64,) = sqlx::query_as("SELECT COALESCE(MAX(id), 0) FROM transfers")
            .fetch_one(&mut *transaction)
            .await
            .map_err(database_error)?;
        let ids: Vec<TransferId> = (1..=items.len() as i64)
            .map(|offset| last_id + offset)
            .collect();
        timings.loaded();
        let outcome = apply_batch(&loaded, items, &ids, now);
        verify_outcome(&outcome)?;
        timings.applied();
        write_outcome(&mut transaction, &outcome).await?;
        timings.written();
        transaction.commit().await.map_err(database_error)?;
        self.durable().await?;
        timings.committed("sqlite", items.len());
        Ok(outcome.results)
    }

    async fn transfer(&self, transfer_id: TransferId) -> Result<Option<Transfer>, StoreError> {
        let mut connection = self.readers.acquire().await.map_err(database_error)?;
        let transfers = transfers_where(&mut connection, "id", json_list(&[transfer_id])?).await?;
        Ok(transfers.into_iter().next())
    }

    async fn expired_pending(
        &self,
        now: TimestampMicros,
        limit: usize,
    ) -> Result<Vec<TransferId>, StoreError> {
        let rows: Vec<(i64,)> = sqlx::query_as(
            "SELECT id FROM transfers WHERE status = 'pending' AND expires_at <= ? ORDER BY expires_at LIMIT ?",
        )
        .bind(now)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.readers)
        .await
        .map_err(database_error)?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    async fn balance_at(
        &self,
        account_id: AccountId,
        at: TimestampMicros,
    ) -> Result<i64, StoreError> {
        let row: Option<(i64,)> = sqlx::query_as(
            "SELECT balance_after_minor FROM entries WHERE account_id = ? AND NOT pending AND posted_at <= ? \
             ORDER BY posted_at DESC, transfer_id DESC, leg_index DESC LIMIT 1",
        )
        .bind(account_id)
        .bind(at)
        .fetch_optional(&self.readers)
        .await
        .map_err(database_error)?;
        Ok(row.map_or(0, |(balance,)| balance))
    }

    async fn statement(&self, query: StatementQuery) -> Result<Vec<StatementLine>, StoreError> {
        let lines: Vec<crate::StatementRow> = sqlx::query_as(
            "SELECT e.transfer_id, e.leg_index, t.kind, e.is_credit, e.amount_minor, e.currency, e.pending, \
             e.balance_after_minor, e.posted_at, t.description \
             FROM entries e JOIN transfers t ON t.id = e.transfer_id \
             WHERE e.account_id = ? AND e.posted_at >= ? AND e.posted_at < ? AND e.transfer_id > ? \
             ORDER BY e.transfer_id, e.leg_index LIMIT ?",
        )
        .bind(query.account_id)
        .bind(query.from)
        .bind(query.to)
        .bind(query.after_transfer_id)
        .bind(crate::statement_limit(query.limit))
        .fetch_all(&self.readers)
        .await
        .map_err(database_error)?;
        let ids: Vec<i64> = lines.iter().map(|line| line.0).collect();
        let legs: Vec<(i64, i64, bool)> = sqlx::query_as(
            "SELECT transfer_id, account_id, is_credit FROM entries \
             WHERE transfer_id IN (SELECT value FROM json_each(?))",
        )
        .bind(json_list(&ids)?)
        .fetch_all(&self.readers)
        .await
        .map_err(database_error)?;
        crate::statement_lines(query.account_id, lines, &legs)
    }

    async fn check(&self) -> Result<CheckReport, StoreError> {
        check::run::<sqlx::Sqlite>(&mut *self.readers.acquire().await.map_err(database_error)?)
            .await
    }
}
