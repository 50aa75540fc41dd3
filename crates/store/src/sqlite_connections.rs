//! SQLite's connections, handed from caller to caller by first-in,
//! first-out locks instead of a connection pool: the one write connection,
//! and the readers' few.
//!
//! A pool returns a connection by spawning a task that pings it before the
//! next caller may have it: two more trips between the runtime and the
//! driver's worker thread, and a wait for the spawned task's turn on a busy
//! runtime, for every statement. Here the next caller gets the connection
//! the moment the last one lets it go.
//!
//! A transaction dropped before it commits is rolled back: the rollback is
//! queued on the connection before the lock is released, and the driver
//! runs its commands in order, so the next holder starts on a clean
//! connection. A [`Batch`] cut off before it finished is rolled back by
//! the next holder, before anything else runs.

use crate::batch::{Batch, BatchError, Part};
use futures::future::BoxFuture;
use futures::stream::{self, BoxStream, StreamExt, TryStreamExt};
use sqlx::sqlite::{Sqlite, SqliteConnection, SqliteQueryResult, SqliteRow, SqliteStatement};
use sqlx::{Database, Describe, Either, Execute, Executor, TransactionManager};
use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use tokio::sync::{Mutex, OwnedMutexGuard, OwnedSemaphorePermit, Semaphore};

type Manager = <Sqlite as Database>::TransactionManager;

/// A fixed set of connections. `&SqliteConnections` runs a statement on
/// any free one (an `Executor`); `acquire` holds one for several
/// statements, and `begin` opens a transaction that holds one until it
/// commits, rolls back or is dropped.
#[derive(Debug, Clone)]
pub(crate) struct SqliteConnections {
    connections: Arc<[Arc<Mutex<Slot>>]>,
    /// One permit per connection, queued in order: a caller that has a
    /// permit finds a free connection.
    free: Arc<Semaphore>,
}

impl SqliteConnections {
    pub(crate) fn new(connections: Vec<SqliteConnection>) -> SqliteConnections {
        SqliteConnections {
            free: Arc::new(Semaphore::new(connections.len())),
            connections: connections
                .into_iter()
                .map(|connection| {
                    Arc::new(Mutex::new(Slot {
                        connection,
                        batch_unfinished: false,
                    }))
                })
                .collect(),
        }
    }

    /// Waits for a free connection and holds it until the guard is dropped.
    pub(crate) async fn acquire(&self) -> Result<HeldConnection, sqlx::Error> {
        let permit = Arc::clone(&self.free)
            .acquire_owned()
            .await
            .map_err(|_| sqlx::Error::PoolClosed)?;
        // Every holder of a connection holds a permit too, so with this
        // permit at least one connection is free.
        let mut slot = self
            .connections
            .iter()
            .find_map(|connection| Arc::clone(connection).try_lock_owned().ok())
            .ok_or(sqlx::Error::PoolTimedOut)?;
        if slot.batch_unfinished {
            // The last holder was cut off inside a batch: its transaction
            // may still be open.
            roll_back_batch(&mut slot.connection).await?;
            slot.batch_unfinished = false;
        }
        Ok(HeldConnection {
            connection: slot,
            _permit: permit,
        })
    }

    /// Runs `batch` in one transaction and one trip to the driver; returns
    /// the rows each of its statements returned, in the order pushed.
    pub(crate) async fn run_batch(
        &self,
        batch: &Batch<'_>,
    ) -> Result<Vec<Vec<SqliteRow>>, BatchError> {
        let (script, parts) = batch.sqlite_script()?;
        let mut query = sqlx::query(&script);
        for value in batch.values() {
            query = crate::batch::bind(query, value);
        }
        let mut held = self.acquire().await?;
        held.connection.batch_unfinished = true;
        let mut rows: Vec<Vec<SqliteRow>> = (0..batch.len()).map(|_| Vec::new()).collect();
        // The script's statement whose results are arriving.
        let mut at = 0;
        let failure = {
            let mut results = held.connection.connection.fetch_many(query);
            loop {
                match results.next().await {
                    None => break None,
                    Some(Ok(Either::Left(_))) => at += 1,
                    Some(Ok(Either::Right(row))) => {
                        if let Some(Part::Statement(index)) = parts.get(at)
                            && let Some(rows) = rows.get_mut(*index)
                        {
                            rows.push(row);
                        }
                    }
                    Some(Err(error)) => break Some(error),
                }
            }
        };
        let error = match failure {
            // Every statement through COMMIT reported done.
            None if at == parts.len() => {
                held.connection.batch_unfinished = false;
                return Ok(rows);
            }
            None => sqlx::Error::Protocol(format!(
                "a batch stopped after {at} of its {} statements",
                parts.len()
            )),
            Some(error) => error,
        };
        roll_back_batch(&mut held.connection.connection).await?;
        held.connection.batch_unfinished = false;
        Err(match parts.get(at) {
            Some(Part::Guard(statement)) => BatchError::Expectation {
                statement: *statement,
            },
            Some(Part::Statement(statement)) => BatchError::Statement {
                statement: *statement,
                source: error,
            },
            Some(Part::Control) | None => BatchError::Database(error),
        })
    }

    /// Waits for a free connection, then begins a transaction on it.
    pub(crate) async fn begin(&self) -> Result<WriteTransaction, sqlx::Error> {
        let mut connection = self.acquire().await?;
        Manager::begin(&mut connection, None).await?;
        Ok(WriteTransaction {
            connection,
            open: true,
        })
    }
}

/// A connection, and whether a batch on it may have been left open.
#[derive(Debug)]
struct Slot {
    connection: SqliteConnection,
    batch_unfinished: bool,
}

/// Rolls back what a batch left open, if anything: a batch that failed
/// at `BEGIN` left nothing to roll back.
async fn roll_back_batch(connection: &mut SqliteConnection) -> Result<(), sqlx::Error> {
    match sqlx::query("ROLLBACK").execute(&mut *connection).await {
        Ok(_) => Ok(()),
        Err(sqlx::Error::Database(error))
            if error.message().contains("no transaction is active") =>
        {
            Ok(())
        }
        Err(error) => Err(error),
    }
}

/// A connection held by one caller.
#[derive(Debug)]
pub(crate) struct HeldConnection {
    connection: OwnedMutexGuard<Slot>,
    // Released after the connection (fields drop in order).
    _permit: OwnedSemaphorePermit,
}

impl Deref for HeldConnection {
    type Target = SqliteConnection;

    fn deref(&self) -> &SqliteConnection {
        &self.connection.connection
    }
}

impl DerefMut for HeldConnection {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        &mut self.connection.connection
    }
}

/// A transaction on a held connection; derefs to the connection, so
/// `&mut *transaction` runs statements inside it.
#[derive(Debug)]
pub(crate) struct WriteTransaction {
    connection: HeldConnection,
    open: bool,
}

impl WriteTransaction {
    pub(crate) async fn commit(mut self) -> Result<(), sqlx::Error> {
        Manager::commit(&mut self.connection).await?;
        self.open = false;
        Ok(())
    }

    pub(crate) async fn rollback(mut self) -> Result<(), sqlx::Error> {
        Manager::rollback(&mut self.connection).await?;
        self.open = false;
        Ok(())
    }
}

impl Deref for WriteTransaction {
    type Target = SqliteConnection;

    fn deref(&self) -> &SqliteConnection {
        &self.connection
    }
}

impl DerefMut for WriteTransaction {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        &mut self.connection
    }
}

impl Drop for WriteTransaction {
    fn drop(&mut self) {
        if self.open {
            // Queued before the connection (a field) is released after this.
            Manager::start_rollback(&mut self.connection);
        }
    }
}

impl<'w> Executor<'w> for &'w SqliteConnections {
    type Database = Sqlite;

    fn fetch_many<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxStream<'e, Result<Either<SqliteQueryResult, SqliteRow>, sqlx::Error>>
    where
        'w: 'e,
        E: 'q + Execute<'q, Sqlite>,
    {
        // The results are collected while the connection is held, so no
        // caller keeps it for as long as it takes to read a stream.
        stream::once(async move {
            let mut connection = self.acquire().await?;
            connection.fetch_many(query).try_collect::<Vec<_>>().await
        })
        .map_ok(|results| stream::iter(results.into_iter().map(Ok)))
        .try_flatten()
        .boxed()
    }

    fn fetch_optional<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxFuture<'e, Result<Option<SqliteRow>, sqlx::Error>>
    where
        'w: 'e,
        E: 'q + Execute<'q, Sqlite>,
    {
        Box::pin(async move { self.acquire().await?.fetch_optional(query).await })
    }

    fn prepare_with<'e, 'q: 'e>(
        self,
        sql: &'q str,
        parameters: &'e [<Sqlite as Database>::TypeInfo],
    ) -> BoxFuture<'e, Result<SqliteStatement<'q>, sqlx::Error>>
    where
        'w: 'e,
    {
        Box::pin(async move { self.acquire().await?.prepare_with(sql, parameters).await })
    }

    fn describe<'e, 'q: 'e>(
        self,
        sql: &'q str,
    ) -> BoxFuture<'e, Result<Describe<Sqlite>, sqlx::Error>>
    where
        'w: 'e,
    {
        Box::pin(async move { self.acquire().await?.describe(sql).await })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::{Expect, Statement};
    use sqlx::sqlite::SqliteConnectOptions;
    use sqlx::{ConnectOptions, Row};
    use std::str::FromStr;

    async fn writer() -> SqliteConnections {
        let mut connection = SqliteConnectOptions::from_str("sqlite::memory:")
            .expect("options")
            .connect()
            .await
            .expect("connect");
        sqlx::raw_sql(crate::batch::SQLITE_GUARD_SETUP)
            .execute(&mut connection)
            .await
            .expect("guard");
        let writer = SqliteConnections::new(vec![connection]);
        sqlx::query("CREATE TABLE counter (n INTEGER NOT NULL)")
            .execute(&writer)
            .await
            .expect("create");
        sqlx::query("INSERT INTO counter (n) VALUES (0)")
            .execute(&writer)
            .await
            .expect("insert");
        writer
    }

    async fn count(writer: &SqliteConnections) -> i64 {
        let (n,): (i64,) = sqlx::query_as("SELECT n FROM counter")
            .fetch_one(writer)
            .await
            .expect("read");
        n
    }

    #[tokio::test]
    async fn transactions_on_one_connection_do_not_interleave() {
        let writer = writer().await;
        let mut tasks = Vec::new();
        for _ in 0..50 {
            let writer = writer.clone();
            tasks.push(tokio::spawn(async move {
                let mut transaction = writer.begin().await?;
                let (n,): (i64,) = sqlx::query_as("SELECT n FROM counter")
                    .fetch_one(&mut *transaction)
                    .await?;
                // Another task would read the same n here if it could
                // reach the connection while this transaction holds it.
                tokio::task::yield_now().await;
                sqlx::query("UPDATE counter SET n = ?")
                    .bind(n + 1)
                    .execute(&mut *transaction)
                    .await?;
                transaction.commit().await
            }));
        }
        for task in tasks {
            task.await.expect("task").expect("transaction");
        }
        assert_eq!(count(&writer).await, 50);
    }

    #[tokio::test]
    async fn a_dropped_transaction_is_rolled_back_before_the_next_writer() {
        let writer = writer().await;
        let mut transaction = writer.begin().await.expect("begin");
        sqlx::query("UPDATE counter SET n = 7")
            .execute(&mut *transaction)
            .await
            .expect("update");
        drop(transaction);
        assert_eq!(count(&writer).await, 0);

        // A task cancelled while it holds a transaction.
        let (started, wait) = tokio::sync::oneshot::channel();
        let task = tokio::spawn({
            let writer = writer.clone();
            async move {
                let mut transaction = writer.begin().await?;
                sqlx::query("UPDATE counter SET n = 9")
                    .execute(&mut *transaction)
                    .await?;
                let _ = started.send(());
                std::future::pending::<()>().await;
                transaction.commit().await
            }
        });
        wait.await.expect("started");
        task.abort();
        assert!(task.await.is_err_and(|error| error.is_cancelled()));

        let mut transaction = writer.begin().await.expect("begin after cancel");
        sqlx::query("UPDATE counter SET n = n + 1")
            .execute(&mut *transaction)
            .await
            .expect("update");
        transaction.commit().await.expect("commit");
        assert_eq!(count(&writer).await, 1);
        // Nothing is left open on the connection for the next holder.
        assert_eq!(
            Manager::get_transaction_depth(&*writer.acquire().await.expect("acquire")),
            0
        );
    }

    #[tokio::test]
    async fn each_caller_holds_a_connection_of_its_own_and_the_next_waits() {
        let mut connections = Vec::new();
        for _ in 0..3 {
            connections.push(
                SqliteConnectOptions::from_str("sqlite::memory:")
                    .expect("options")
                    .connect()
                    .await
                    .expect("connect"),
            );
        }
        let readers = SqliteConnections::new(connections);
        let mut held = Vec::new();
        for _ in 0..3 {
            let mut connection = readers.acquire().await.expect("acquire");
            // A connection of its own: the temporary table is seen on it only.
            sqlx::query("CREATE TEMP TABLE mine (n INTEGER)")
                .execute(&mut *connection)
                .await
                .expect("each holder has a fresh connection");
            held.push(connection);
        }
        let waiting = tokio::spawn({
            let readers = readers.clone();
            async move { readers.acquire().await.map(drop) }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "a fourth caller got a connection");
        held.pop();
        waiting
            .await
            .expect("task")
            .expect("acquired once one was let go");
        // A statement on its own takes the free connection, the one let go.
        sqlx::query("SELECT n FROM mine")
            .fetch_all(&readers)
            .await
            .expect("the free connection is the one that was let go");
    }

    fn add(n: i64) -> Statement<'static> {
        Statement::new("UPDATE counter SET n = n + $1 RETURNING n").bind(n)
    }

    #[tokio::test]
    async fn a_batch_commits_every_statement_and_returns_their_rows() {
        let writer = writer().await;
        let mut batch = Batch::new();
        batch.push(add(2), Expect::OneChange);
        batch.push(
            Statement::new("INSERT INTO counter (n) SELECT $1 WHERE $2")
                .bind(5)
                .bind(false),
            Expect::Any,
        );
        batch.push(add(3), Expect::OneChange);
        let rows = writer.run_batch(&batch).await.expect("batch");
        let returned: Vec<Vec<i64>> = rows
            .iter()
            .map(|rows| rows.iter().map(|row| row.get::<i64, _>(0)).collect())
            .collect();
        assert_eq!(returned, vec![vec![2], vec![], vec![5]]);
        assert_eq!(count(&writer).await, 5);
    }

    #[tokio::test]
    async fn a_statement_that_changes_no_row_rolls_the_whole_batch_back() {
        let writer = writer().await;
        let mut batch = Batch::new();
        batch.push(add(2), Expect::OneChange);
        batch.push(
            Statement::new("UPDATE counter SET n = 0 WHERE n = $1").bind(99),
            Expect::OneChange,
        );
        batch.push(add(3), Expect::OneChange);
        let failed = writer.run_batch(&batch).await.err();
        assert!(
            matches!(failed, Some(BatchError::Expectation { statement: 1 })),
            "{failed:?}"
        );
        assert_eq!(count(&writer).await, 0);
        // Nothing is left open: the next batch commits on its own.
        let mut batch = Batch::new();
        batch.push(add(1), Expect::OneChange);
        writer.run_batch(&batch).await.expect("next batch");
        assert_eq!(count(&writer).await, 1);
    }

    #[tokio::test]
    async fn a_failing_statement_is_named_and_nothing_commits() {
        let writer = writer().await;
        let mut batch = Batch::new();
        batch.push(add(2), Expect::OneChange);
        batch.push(
            Statement::new("INSERT INTO counter (n) VALUES ($1)").bind(None::<i64>),
            Expect::Any,
        );
        let failed = writer.run_batch(&batch).await.err();
        assert!(
            matches!(failed, Some(BatchError::Statement { statement: 1, .. })),
            "{failed:?}"
        );
        assert_eq!(count(&writer).await, 0);
    }

    #[tokio::test]
    async fn a_batch_cut_off_midway_is_rolled_back_by_the_next_holder() {
        let writer = writer().await;
        {
            // What a batch whose caller was dropped between its statements
            // leaves: an open transaction, marked unfinished.
            let mut held = writer.acquire().await.expect("acquire");
            held.connection.batch_unfinished = true;
            sqlx::raw_sql("BEGIN IMMEDIATE; UPDATE counter SET n = 7")
                .execute(&mut *held)
                .await
                .expect("open");
        }
        assert_eq!(count(&writer).await, 0);
        let mut batch = Batch::new();
        batch.push(add(1), Expect::OneChange);
        writer.run_batch(&batch).await.expect("batch after cut-off");
        assert_eq!(count(&writer).await, 1);
    }
}
