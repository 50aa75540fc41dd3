//! The production store: PostgreSQL with `synchronous_commit=on`.
//!
//! A batch locks the accounts and target transfers it touches (`FOR UPDATE`,
//! in id order), so several paycore processes may share one database; rows
//! are written with one `UNNEST` statement per table.

use crate::batch::{Batch, BatchError, Expect};
use crate::rows::{
    ACCOUNT_COLUMNS, AccountRow, ENTRY_COLUMNS, EntryRow, TRANSFER_COLUMNS, TransferRow,
    account_from_row, assemble_transfers, database_error, overdraft_column, transfer_columns,
};
use crate::{BatchTimings, Migration, check};
use futures::StreamExt;
use ledger::posting::{BatchOutcome, BatchReferences, LoadedState, apply_batch, verify_outcome};
use ledger::{
    Account, AccountError, AccountId, BATCH_OPERATIONS_MAX, BatchItem, CheckReport, LedgerError,
    LedgerStore, NewAccount, Side, StatementLine, StatementQuery, StoreError, TimestampMicros,
    Transfer, TransferId,
};
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::{ConnectOptions, Connection};
use std::str::FromStr;

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "ledger",
        sql: include_str!("../migrations/postgres/0001_ledger.sql"),
    },
    Migration {
        version: 2,
        name: "accounts_fillfactor",
        sql: include_str!("../migrations/postgres/0002_accounts_fillfactor.sql"),
    },
    Migration {
        version: 3,
        name: "orders",
        sql: include_str!("../migrations/postgres/0003_orders.sql"),
    },
    Migration {
        version: 4,
        name: "merchants",
        sql: include_str!("../migrations/postgres/0004_merchants.sql"),
    },
    Migration {
        version: 5,
        name: "notifications",
        sql: include_str!("../migrations/postgres/0005_notifications.sql"),
    },
    Migration {
        version: 6,
        name: "refund_parts",
        sql: include_str!("../migrations/postgres/0006_refund_parts.sql"),
    },
    Migration {
        version: 7,
        name: "refund_payment",
        sql: include_str!("../migrations/postgres/0007_refund_payment.sql"),
    },
    Migration {
        version: 8,
        name: "bank_outages",
        sql: include_str!("../migrations/postgres/0008_bank_outages.sql"),
    },
    Migration {
        version: 9,
        name: "one_channel_order",
        sql: include_str!("../migrations/postgres/0009_one_channel_order.sql"),
    },
    Migration {
        version: 10,
        name: "next_check",
        sql: include_str!("../migrations/postgres/0010_next_check.sql"),
    },
    Migration {
        version: 11,
        name: "fee_counters",
        sql: include_str!("../migrations/postgres/0011_fee_counters.sql"),
    },
    Migration {
        version: 12,
        name: "reconciliation",
        sql: include_str!("../migrations/postgres/0012_reconciliation.sql"),
    },
    Migration {
        version: 13,
        name: "clearing",
        sql: include_str!("../migrations/postgres/0013_clearing.sql"),
    },
    Migration {
        version: 16,
        name: "agreements",
        sql: include_str!("../migrations/postgres/0016_agreements.sql"),
    },
    Migration {
        version: 17,
        name: "fee_rules",
        sql: include_str!("../migrations/postgres/0017_fee_rules.sql"),
    },
    Migration {
        version: 18,
        name: "payment_fees",
        sql: include_str!("../migrations/postgres/0018_payment_fees.sql"),
    },
    Migration {
        version: 19,
        name: "stored_value",
        sql: include_str!("../migrations/postgres/0019_stored_value.sql"),
    },
    Migration {
        version: 20,
        name: "fee_deposits",
        sql: include_str!("../migrations/postgres/0020_fee_deposits.sql"),
    },
    Migration {
        version: 21,
        name: "refund_reviews",
        sql: include_str!("../migrations/postgres/0021_refund_reviews.sql"),
    },
    Migration {
        version: 22,
        name: "collection_batches",
        sql: include_str!("../migrations/postgres/0022_collection_batches.sql"),
    },
    Migration {
        version: 23,
        name: "refund_notifications",
        sql: include_str!("../migrations/postgres/0023_refund_notifications.sql"),
    },
    Migration {
        version: 24,
        name: "settlement_days",
        sql: include_str!("../migrations/postgres/0024_settlement_days.sql"),
    },
    Migration {
        version: 25,
        name: "escrows",
        sql: include_str!("../migrations/postgres/0025_escrows.sql"),
    },
    Migration {
        version: 26,
        name: "payout_parts",
        sql: include_str!("../migrations/postgres/0026_payout_parts.sql"),
    },
];

const CONNECTIONS_MAX: u32 = 8;
/// Times a batch is retried after losing a race with another process.
const BATCH_ATTEMPTS_MAX: usize = 3;
/// Any number; it only has to be the same for every paycore process.
const MIGRATION_LOCK_ID: i64 = 0x0070_6179_636f_7265;

/// The PostgreSQL ledger store.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pub(crate) pool: PgPool,
    pub(crate) nonce_purge: crate::merchants::NoncePurge,
}

impl PostgresStore {
    /// Connects to `url` and runs pending migrations.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        Self::open_in_schema(url, None).await
    }

    /// Connects with every table in `schema` (created if missing): how the
    /// contract tests keep out of each other's way in one database.
    pub async fn open_in_schema(url: &str, schema: Option<&str>) -> Result<Self, StoreError> {
        let mut options = PgConnectOptions::from_str(url)
            .map_err(database_error)?
            .options([("synchronous_commit", "on")]);
        if let Some(schema) = schema {
            if !schema
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_')
            {
                return Err(StoreError::Database(format!(
                    "invalid schema name {schema:?}"
                )));
            }
            let mut connection = options.connect().await.map_err(database_error)?;
            sqlx::raw_sql(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
                .execute(&mut connection)
                .await
                .map_err(database_error)?;
            connection.close().await.map_err(database_error)?;
            options = options.options([("search_path", schema)]);
        }
        let pool = PgPoolOptions::new()
            .max_connections(CONNECTIONS_MAX)
            .connect_with(options)
            .await
            .map_err(database_error)?;
        migrate(&pool).await?;
        Ok(PostgresStore {
            pool,
            nonce_purge: Default::default(),
        })
    }

    /// PostgreSQL commits are durable when they return
    /// (`synchronous_commit=on`): nothing to wait for.
    pub(crate) async fn durable(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// Runs one write as a batch of its own; returns the first row it
    /// returned, decoded.
    pub(crate) async fn write_returning<T>(
        &self,
        statement: crate::batch::Statement<'_>,
    ) -> Result<Option<T>, BatchError>
    where
        T: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>,
    {
        let mut batch = Batch::new();
        batch.push(statement, Expect::Any);
        let row = crate::batch::first_row(self.run_batch(&batch).await?);
        Ok(row.map(|row| T::from_row(&row)).transpose()?)
    }

    /// Runs `batch`'s statements one after another in one transaction;
    /// returns the rows each returned, in the order pushed.
    pub(crate) async fn run_batch(
        &self,
        batch: &Batch<'_>,
    ) -> Result<Vec<Vec<sqlx::postgres::PgRow>>, BatchError> {
        if let [(index, statement, expect)] = batch.statements().collect::<Vec<_>>()[..] {
            // One statement is atomic on its own.
            let mut connection = self.pool.acquire().await?;
            return Ok(vec![
                run_statement(&mut connection, index, statement, expect).await?,
            ]);
        }
        let mut transaction = self.pool.begin().await?;
        let mut rows = Vec::with_capacity(batch.len());
        for (index, statement, expect) in batch.statements() {
            rows.push(run_statement(&mut transaction, index, statement, expect).await?);
        }
        transaction.commit().await?;
        Ok(rows)
    }

    pub async fn durability(&self) -> Result<String, StoreError> {
        let (synchronous_commit,): (String,) = sqlx::query_as("SHOW synchronous_commit")
            .fetch_one(&self.pool)
            .await
            .map_err(database_error)?;
        let (fsync,): (String,) = sqlx::query_as("SHOW fsync")
            .fetch_one(&self.pool)
            .await
            .map_err(database_error)?;
        Ok(format!(
            "PostgreSQL synchronous_commit={synchronous_commit} fsync={fsync}"
        ))
    }

    async fn commit_once(
        &self,
        items: &[BatchItem],
        now: TimestampMicros,
    ) -> Result<Vec<Result<Transfer, LedgerError>>, sqlx::Error> {
        let mut timings = BatchTimings::start();
        let mut transaction = self.pool.begin().await?;
        let loaded = load(&mut transaction, items).await?;
        let ids: Vec<(i64,)> =
            sqlx::query_as("SELECT nextval('transfer_ids') FROM generate_series(1, $1)")
                .bind(i64::try_from(items.len()).unwrap_or(i64::MAX))
                .fetch_all(&mut *transaction)
                .await?;
        let mut ids: Vec<TransferId> = ids.into_iter().map(|(id,)| id).collect();
        ids.sort_unstable();
        timings.loaded();
        let outcome = apply_batch(&loaded, items, &ids, now);
        verify_outcome(&outcome)
            .map_err(|violation| sqlx::Error::Protocol(violation.to_string()))?;
        timings.applied();
        write_outcome(&mut transaction, &outcome).await?;
        timings.written();
        transaction.commit().await?;
        timings.committed("postgres", items.len());
        Ok(outcome.results)
    }
}

/// Runs the batch's statement at `index`; returns its rows.
async fn run_statement(
    connection: &mut PgConnection,
    index: usize,
    statement: &crate::batch::Statement<'_>,
    expect: Expect,
) -> Result<Vec<sqlx::postgres::PgRow>, BatchError> {
    let mut changed = 0;
    let mut returned = Vec::new();
    let mut results =
        sqlx::Executor::fetch_many(&mut *connection, statement.query::<sqlx::Postgres>());
    while let Some(result) = results.next().await {
        match result {
            Ok(sqlx::Either::Left(done)) => changed += done.rows_affected(),
            Ok(sqlx::Either::Right(row)) => returned.push(row),
            Err(source) => {
                return Err(BatchError::Statement {
                    statement: index,
                    source,
                });
            }
        }
    }
    if expect == Expect::OneChange && changed != 1 {
        return Err(BatchError::Expectation { statement: index });
    }
    Ok(returned)
}

async fn migrate(pool: &PgPool) -> Result<(), StoreError> {
    let mut transaction = pool.begin().await.map_err(database_error)?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(MIGRATION_LOCK_ID)
        .execute(&mut *transaction)
        .await
        .map_err(database_error)?;
    sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS schema_migrations \
         (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)",
    )
    .execute(&mut *transaction)
    .await
    .map_err(database_error)?;
    for migration in MIGRATIONS {
        let applied: Option<(i64,)> =
            sqlx::query_as("SELECT version FROM schema_migrations WHERE version = $1")
                .bind(migration.version)
                .fetch_optional(&mut *transaction)
                .await
                .map_err(database_error)?;
        if applied.is_some() {
            continue;
        }
        sqlx::raw_sql(migration.sql)
            .execute(&mut *transaction)
            .await
            .map_err(database_error)?;
        sqlx::query(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
        )
        .bind(migration.version)
        .bind(migration.name)
        .bind(crate::now_micros())
        .execute(&mut *transaction)
        .await
        .map_err(database_error)?;
    }
    transaction.commit().await.map_err(database_error)
}

/// True for errors another attempt may not meet: a concurrent insert of the
/// same key, a deadlock, a serialization failure.
fn is_race(error: &sqlx::Error) -> bool {
    let code = match error {
        sqlx::Error::Database(database) => database.code(),
        _ => None,
    };
    matches!(code.as_deref(), Some("23505" | "40P01" | "40001"))
}

async fn transfers_where(
    connection: &mut PgConnection,
    condition: &str,
    ids: Option<&[i64]>,
    keys: Option<&[&str]>,
) -> Result<Vec<Transfer>, sqlx::Error> {
    let sql = format!("SELECT {TRANSFER_COLUMNS} FROM transfers WHERE {condition}");
    let query = sqlx::query_as::<_, TransferRow>(&sql);
    let rows = match (ids, keys) {
        (Some(ids), _) => query.bind(ids).fetch_all(&mut *connection).await?,
        (None, Some(keys)) => query.bind(keys).fetch_all(&mut *connection).await?,
        (None, None) => Vec::new(),
    };
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let transfer_ids: Vec<i64> = rows.iter().map(|row| row.0).collect();
    let entries: Vec<EntryRow> = sqlx::query_as(&format!(
        "SELECT {ENTRY_COLUMNS} FROM entries WHERE transfer_id = ANY($1)"
    ))
    .bind(&transfer_ids)
    .fetch_all(&mut *connection)
    .await?;
    assemble_transfers(rows, entries).map_err(|error| sqlx::Error::Protocol(error.to_string()))
}

async fn load(
    connection: &mut PgConnection,
    items: &[BatchItem],
) -> Result<LoadedState, sqlx::Error> {
    let mut references = BatchReferences::of(items);
    let keys: Vec<&str> = references.keys.iter().map(String::as_str).collect();
    let by_key =
        transfers_where(connection, "idempotency_key = ANY($1)", None, Some(&keys)).await?;
    let target_ids: Vec<i64> = references.transfer_ids.iter().copied().collect();
    let by_id = if target_ids.is_empty() {
        Vec::new()
    } else {
        transfers_where(
            connection,
            "id = ANY($1) ORDER BY id FOR UPDATE",
            Some(&target_ids),
            None,
        )
        .await?
    };
    for transfer in &by_id {
        references
            .account_ids
            .extend(transfer.entries.iter().map(|entry| entry.account_id));
    }
    let account_ids: Vec<i64> = references.account_ids.iter().copied().collect();
    let rows: Vec<AccountRow> = sqlx::query_as(&format!(
        "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = ANY($1) ORDER BY id FOR UPDATE"
    ))
    .bind(&account_ids)
    .fetch_all(&mut *connection)
    .await?;
    let mut loaded = LoadedState::default();
    for row in rows {
        let account =
            account_from_row(row).map_err(|error| sqlx::Error::Protocol(error.to_string()))?;
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

/// Column-wise arrays of new transfers, for `UNNEST`.
#[derive(Default)]
struct TransferColumns {
    ids: Vec<i64>,
    keys: Vec<String>,
    kinds: Vec<String>,
    statuses: Vec<String>,
    target_ids: Vec<Option<i64>>,
    account_ids: Vec<Option<i64>>,
    amounts: Vec<Option<i64>>,
    timeouts: Vec<Option<i64>>,
    expires: Vec<Option<i64>>,
    descriptions: Vec<String>,
    created: Vec<i64>,
}

async fn write_outcome(
    connection: &mut PgConnection,
    outcome: &BatchOutcome,
) -> Result<(), sqlx::Error> {
    let mut columns = TransferColumns::default();
    for transfer in &outcome.new_transfers {
        let row =
            transfer_columns(transfer).map_err(|error| sqlx::Error::Protocol(error.to_string()))?;
        columns.ids.push(row.0);
        columns.keys.push(row.1);
        columns.kinds.push(row.2);
        columns.statuses.push(row.3);
        columns.target_ids.push(row.4);
        columns.account_ids.push(row.5);
        columns.amounts.push(row.6);
        columns.timeouts.push(row.7);
        columns.expires.push(row.8);
        columns.descriptions.push(row.9);
        columns.created.push(row.10);
    }
    sqlx::query(&format!(
        "INSERT INTO transfers ({TRANSFER_COLUMNS}) SELECT * FROM UNNEST($1::bigint[], $2::text[], \
         $3::text[], $4::text[], $5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[], $9::bigint[], \
         $10::text[], $11::bigint[])"
    ))
    .bind(&columns.ids)
    .bind(&columns.keys)
    .bind(&columns.kinds)
    .bind(&columns.statuses)
    .bind(&columns.target_ids)
    .bind(&columns.account_ids)
    .bind(&columns.amounts)
    .bind(&columns.timeouts)
    .bind(&columns.expires)
    .bind(&columns.descriptions)
    .bind(&columns.created)
    .execute(&mut *connection)
    .await?;
    write_entries(connection, outcome).await?;
    write_balances(connection, outcome).await
}

async fn write_entries(
    connection: &mut PgConnection,
    outcome: &BatchOutcome,
) -> Result<(), sqlx::Error> {
    let entries: Vec<&ledger::Entry> = outcome
        .new_transfers
        .iter()
        .flat_map(|transfer| &transfer.entries)
        .collect();
    if entries.is_empty() {
        return Ok(());
    }
    let leg_indexes: Vec<i32> = entries
        .iter()
        .map(|entry| i32::try_from(entry.leg_index).unwrap_or(i32::MAX))
        .collect();
    sqlx::query(&format!(
        "INSERT INTO entries ({ENTRY_COLUMNS}) SELECT * FROM UNNEST($1::bigint[], $2::int[], \
         $3::bigint[], $4::bool[], $5::bigint[], $6::text[], $7::bool[], $8::bigint[], $9::bigint[])"
    ))
    .bind(entries.iter().map(|entry| entry.transfer_id).collect::<Vec<_>>())
    .bind(leg_indexes)
    .bind(entries.iter().map(|entry| entry.account_id).collect::<Vec<_>>())
    .bind(entries.iter().map(|entry| entry.side == Side::Credit).collect::<Vec<_>>())
    .bind(entries.iter().map(|entry| entry.amount_minor).collect::<Vec<_>>())
    .bind(entries.iter().map(|entry| entry.currency.code()).collect::<Vec<_>>())
    .bind(entries.iter().map(|entry| entry.pending).collect::<Vec<_>>())
    .bind(entries.iter().map(|entry| entry.balance_after_minor).collect::<Vec<_>>())
    .bind(entries.iter().map(|entry| entry.posted_at).collect::<Vec<_>>())
    .execute(&mut *connection)
    .await?;
    Ok(())
}

async fn write_balances(
    connection: &mut PgConnection,
    outcome: &BatchOutcome,
) -> Result<(), sqlx::Error> {
    let updates = &outcome.account_updates;
    if !updates.is_empty() {
        sqlx::query(
            "UPDATE accounts a SET debits_posted_minor = v.dp, credits_posted_minor = v.cp, \
             debits_pending_minor = v.dq, credits_pending_minor = v.cq, frozen_minor = v.fr \
             FROM UNNEST($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[]) \
             AS v(id, dp, cp, dq, cq, fr) WHERE a.id = v.id",
        )
        .bind(updates.iter().map(|(id, _)| *id).collect::<Vec<_>>())
        .bind(updates.iter().map(|(_, b)| b.debits_posted_minor).collect::<Vec<_>>())
        .bind(updates.iter().map(|(_, b)| b.credits_posted_minor).collect::<Vec<_>>())
        .bind(updates.iter().map(|(_, b)| b.debits_pending_minor).collect::<Vec<_>>())
        .bind(updates.iter().map(|(_, b)| b.credits_pending_minor).collect::<Vec<_>>())
        .bind(updates.iter().map(|(_, b)| b.frozen_minor).collect::<Vec<_>>())
        .execute(&mut *connection)
        .await?;
    }
    if !outcome.status_updates.is_empty() {
        sqlx::query(
            "UPDATE transfers t SET status = v.status FROM UNNEST($1::bigint[], $2::text[]) \
             AS v(id, status) WHERE t.id = v.id",
        )
        .bind(
            outcome
                .status_updates
                .iter()
                .map(|(id, _)| *id)
                .collect::<Vec<_>>(),
        )
        .bind(
            outcome
                .status_updates
                .iter()
                .map(|(_, status)| status.as_str())
                .collect::<Vec<_>>(),
        )
        .execute(&mut *connection)
        .await?;
    }
    let deltas = &outcome.subject_deltas;
    if !deltas.is_empty() {
        sqlx::query(
            "INSERT INTO subject_balances (subject_code, currency, debits_posted_minor, credits_posted_minor) \
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::bigint[]) \
             ON CONFLICT (subject_code, currency) DO UPDATE SET \
             debits_posted_minor = subject_balances.debits_posted_minor + EXCLUDED.debits_posted_minor, \
             credits_posted_minor = subject_balances.credits_posted_minor + EXCLUDED.credits_posted_minor",
        )
        .bind(deltas.iter().map(|delta| delta.subject_code.as_str()).collect::<Vec<_>>())
        .bind(deltas.iter().map(|delta| delta.currency.code()).collect::<Vec<_>>())
        .bind(deltas.iter().map(|delta| delta.debits_minor).collect::<Vec<_>>())
        .bind(deltas.iter().map(|delta| delta.credits_minor).collect::<Vec<_>>())
        .execute(&mut *connection)
        .await?;
    }
    Ok(())
}

impl LedgerStore for PostgresStore {
    async fn create_account(&self, account: &NewAccount) -> Result<Account, StoreError> {
        account.validate()?;
        let row: Option<AccountRow> = sqlx::query_as(&format!(
            "INSERT INTO accounts (subject_code, subject_class, kind, owner_kind, owner_id, currency, \
             overdraft_limit_minor, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (owner_kind, owner_id, kind, currency) DO NOTHING RETURNING {ACCOUNT_COLUMNS}"
        ))
        .bind(&account.subject_code)
        .bind(account.subject_class.as_str())
        .bind(account.kind.as_str())
        .bind(account.owner_kind.as_str())
        .bind(&account.owner_id)
        .bind(account.currency.code())
        .bind(overdraft_column(account.overdraft))
        .bind(crate::now_micros())
        .fetch_optional(&self.pool)
        .await
        .map_err(database_error)?;
        if let Some(row) = row {
            return account_from_row(row);
        }
        let (id,): (i64,) = sqlx::query_as(
            "SELECT id FROM accounts WHERE owner_kind = $1 AND owner_id = $2 AND kind = $3 AND currency = $4",
        )
        .bind(account.owner_kind.as_str())
        .bind(&account.owner_id)
        .bind(account.kind.as_str())
        .bind(account.currency.code())
        .fetch_one(&self.pool)
        .await
        .map_err(database_error)?;
        Err(AccountError::AlreadyExists(id).into())
    }

    async fn account(&self, account_id: AccountId) -> Result<Option<Account>, StoreError> {
        let row: Option<AccountRow> = sqlx::query_as(&format!(
            "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = $1"
        ))
        .bind(account_id)
        .fetch_optional(&self.pool)
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
        let mut attempt = 1;
        loop {
            match self.commit_once(items, now).await {
                Ok(results) => return Ok(results),
                Err(error) if attempt < BATCH_ATTEMPTS_MAX && is_race(&error) => attempt += 1,
                Err(error) => return Err(database_error(error)),
            }
        }
    }

    async fn transfer(&self, transfer_id: TransferId) -> Result<Option<Transfer>, StoreError> {
        let mut connection = self.pool.acquire().await.map_err(database_error)?;
        let transfers =
            transfers_where(&mut connection, "id = ANY($1)", Some(&[transfer_id]), None)
                .await
                .map_err(database_error)?;
        Ok(transfers.into_iter().next())
    }

    async fn expired_pending(
        &self,
        now: TimestampMicros,
        limit: usize,
    ) -> Result<Vec<TransferId>, StoreError> {
        let rows: Vec<(i64,)> = sqlx::query_as(
            "SELECT id FROM transfers WHERE status = 'pending' AND expires_at <= $1 ORDER BY expires_at LIMIT $2",
        )
        .bind(now)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
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
            "SELECT balance_after_minor FROM entries WHERE account_id = $1 AND NOT pending AND posted_at <= $2 \
             ORDER BY posted_at DESC, transfer_id DESC, leg_index DESC LIMIT 1",
        )
        .bind(account_id)
        .bind(at)
        .fetch_optional(&self.pool)
        .await
        .map_err(database_error)?;
        Ok(row.map_or(0, |(balance,)| balance))
    }

    async fn statement(&self, query: StatementQuery) -> Result<Vec<StatementLine>, StoreError> {
        let lines: Vec<crate::StatementRow> = sqlx::query_as(
            "SELECT e.transfer_id, e.leg_index, t.kind, e.is_credit, e.amount_minor, e.currency, e.pending, \
             e.balance_after_minor, e.posted_at, t.description \
             FROM entries e JOIN transfers t ON t.id = e.transfer_id \
             WHERE e.account_id = $1 AND e.posted_at >= $2 AND e.posted_at < $3 AND e.transfer_id > $4 \
             ORDER BY e.transfer_id, e.leg_index LIMIT $5",
        )
        .bind(query.account_id)
        .bind(query.from)
        .bind(query.to)
        .bind(query.after_transfer_id)
        .bind(crate::statement_limit(query.limit))
        .fetch_all(&self.pool)
        .await
        .map_err(database_error)?;
        let ids: Vec<i64> = lines.iter().map(|line| line.0).collect();
        let legs: Vec<(i64, i64, bool)> = sqlx::query_as(
            "SELECT transfer_id, account_id, is_credit FROM entries WHERE transfer_id = ANY($1)",
        )
        .bind(&ids)
        .fetch_all(&self.pool)
        .await
        .map_err(database_error)?;
        crate::statement_lines(query.account_id, lines, &legs)
    }

    async fn check(&self) -> Result<CheckReport, StoreError> {
        check::run::<sqlx::Postgres>(&mut *self.pool.acquire().await.map_err(database_error)?).await
    }
}
