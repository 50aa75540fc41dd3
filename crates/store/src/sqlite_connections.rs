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

use crate::batch::{
    Batch, BatchError, Part, SCRIPT_PARAMETERS_MAX, UNDO_FAILED_BATCH, sqlite_script,
};
use futures::future::BoxFuture;
use futures::stream::{self, BoxStream, StreamExt, TryStreamExt};
use sqlx::sqlite::{Sqlite, SqliteConnection, SqliteQueryResult, SqliteRow, SqliteStatement};
use sqlx::{Database, Describe, Either, Execute, Executor, TransactionManager};
use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use tokio::sync::{Mutex, OwnedMutexGuard, OwnedSemaphorePermit, Semaphore, oneshot};

type Manager = <Sqlite as Database>::TransactionManager;

/// A fixed set of connections. `&SqliteConnections` runs a statement on
/// any free one (an `Executor`); `acquire` holds one for several
/// statements, and `begin` opens a transaction that holds one until it
/// commits, rolls back or is dropped.
#[derive(Debug, Clone)]
pub(crate) struct SqliteConnections {
    connections: Arc<[Arc<Mutex<Slot>>]>,
    /// Batches waiting for a connection (see `run_batch`).
    waiting: Arc<Waiting>,
    /// One permit per connection, queued in order: a caller that has a
    /// permit finds a free connection.
    free: Arc<Semaphore>,
}

impl SqliteConnections {
    pub(crate) fn new(connections: Vec<SqliteConnection>) -> SqliteConnections {
        SqliteConnections {
            waiting: Arc::default(),
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

    /// Runs `batch` in one transaction; returns the rows each of its
    /// statements returned, in the order pushed.
    ///
    /// Batches are committed in groups: the caller that gets the
    /// connection takes the oldest waiting batch and those of the same
    /// statements behind it (`Waiting::take`), and runs them in one script
    /// and one commit, each inside a savepoint of its own, so one batch's
    /// failure undoes only that batch. It goes on taking groups until its
    /// own batch has been run. Every batch of a group is answered once the
    /// group has committed.
    pub(crate) async fn run_batch(&self, batch: &Batch<'_>) -> BatchResult {
        // Refused here, so that a faulty batch never fails a group.
        batch.check_parameters()?;
        let (reply, mut answer) = oneshot::channel();
        // Taken back out of the queue if this caller goes away before a
        // group takes it.
        let queued = self.waiting.push(batch.to_static(), reply);
        loop {
            tokio::select! {
                biased;
                answered = &mut answer => return answered.unwrap_or(Err(BatchError::Abandoned)),
                held = self.acquire() => {
                    let held = match held {
                        Ok(held) => held,
                        // Still queued: nothing ran. Otherwise a group
                        // took it, and its answer comes.
                        Err(error) if queued.withdraw() => return Err(error.into()),
                        Err(_) => continue,
                    };
                    let group = self.waiting.take();
                    if let [only] = &group[..]
                        && only.id == queued.id
                    {
                        // Alone: run here; going away cuts off only this
                        // batch, which the next holder rolls back.
                        let mut held = held;
                        let batches = [&only.batch];
                        return run_batches(&mut held, &batches)
                            .await
                            .pop()
                            .unwrap_or(Err(BatchError::Abandoned));
                    }
                    if !group.is_empty() {
                        // The group runs to its end even if this caller
                        // goes away: other callers wait for its answers.
                        tokio::spawn(run_group(held, group));
                    }
                    // Otherwise another group took this batch: its answer
                    // was sent before the connection was let go.
                }
            }
        }
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

type BatchResult = Result<Vec<Vec<SqliteRow>>, BatchError>;

/// Most batches in one group.
const GROUP_BATCHES_MAX: usize = 32;

/// A batch waiting for the write connection, and where its answer goes.
struct Queued {
    id: u64,
    /// Its statements' text: batches of one shape are grouped.
    shape: String,
    batch: Batch<'static>,
    reply: oneshot::Sender<BatchResult>,
}

/// The batches waiting for a connection, in the order they came.
#[derive(Default)]
struct Waiting {
    queue: std::sync::Mutex<std::collections::VecDeque<Queued>>,
    next_id: std::sync::atomic::AtomicU64,
}

/// A caller's place in the queue; dropped, it takes its batch back out if
/// no group took it yet.
struct Place<'w> {
    waiting: &'w Waiting,
    id: u64,
}

impl Place<'_> {
    /// Takes the batch back out; false if a group has it.
    fn withdraw(&self) -> bool {
        let mut queue = self.waiting.lock();
        let before = queue.len();
        queue.retain(|queued| queued.id != self.id);
        queue.len() != before
    }
}

impl Drop for Place<'_> {
    fn drop(&mut self) {
        self.withdraw();
    }
}

impl std::fmt::Debug for Waiting {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("Waiting").finish_non_exhaustive()
    }
}

impl Waiting {
    fn lock(&self) -> std::sync::MutexGuard<'_, std::collections::VecDeque<Queued>> {
        self.queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn push(&self, batch: Batch<'static>, reply: oneshot::Sender<BatchResult>) -> Place<'_> {
        let id = self
            .next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let shape = batch.shape();
        self.lock().push_back(Queued {
            id,
            shape,
            batch,
            reply,
        });
        Place { waiting: self, id }
    }

    /// The oldest waiting batch and those of the same statements behind
    /// it, as many as fit in one script and rounded down to a power of
    /// two: so few scripts recur that each is prepared once and kept in
    /// the connection's statement cache.
    fn take(&self) -> Vec<Queued> {
        let mut queue = self.lock();
        let Some(first) = queue.front() else {
            return Vec::new();
        };
        let shape = first.shape.clone();
        let mut parameters = 0;
        let mut chosen = Vec::new();
        for (index, queued) in queue.iter().enumerate() {
            if chosen.len() == GROUP_BATCHES_MAX {
                break;
            }
            if queued.shape != shape {
                continue;
            }
            parameters += queued.batch.parameters();
            if !chosen.is_empty() && parameters > SCRIPT_PARAMETERS_MAX {
                break;
            }
            chosen.push(index);
        }
        let size = 1 << chosen.len().max(1).ilog2();
        chosen.truncate(size);
        // Out of the queue from the back, so the indexes stay true.
        let mut group: Vec<Queued> = chosen
            .iter()
            .rev()
            .filter_map(|index| queue.remove(*index))
            .collect();
        group.reverse();
        group
    }
}

/// Runs `group` on `held` and answers each of its batches.
async fn run_group(mut held: HeldConnection, group: Vec<Queued>) {
    let batches: Vec<&Batch<'static>> = group.iter().map(|queued| &queued.batch).collect();
    let results = run_batches(&mut held, &batches).await;
    drop(batches);
    for (queued, result) in group.into_iter().zip(results) {
        // A caller that went away no longer wants its answer.
        let _ = queued.reply.send(result);
    }
}

/// Runs `batches` in one transaction, each in a savepoint; a failed batch
/// is undone and the ones after it run on. Returns each batch's result.
async fn run_batches(held: &mut HeldConnection, batches: &[&Batch<'_>]) -> Vec<BatchResult> {
    let mut rows: Vec<Vec<Vec<SqliteRow>>> = batches
        .iter()
        .map(|batch| (0..batch.len()).map(|_| Vec::new()).collect())
        .collect();
    let mut failed: Vec<Option<BatchError>> = batches.iter().map(|_| None).collect();
    let mut opening = "BEGIN IMMEDIATE;\n";
    let mut next = 0;
    held.connection.batch_unfinished = true;
    let outcome: Result<(), sqlx::Error> = loop {
        let (script, parts) = sqlite_script(opening, &batches[next..], next);
        let mut query = sqlx::query(&script);
        for batch in &batches[next..] {
            for value in batch.values() {
                query = crate::batch::bind(query, value);
            }
        }
        // The script's statement whose results are arriving.
        let mut at = 0;
        let failure = {
            let mut results = held
                .connection
                .connection
                // The scripts that start a group recur; one that goes on
                // after a failed batch is seldom seen again.
                .fetch_many(query.persistent(opening != UNDO_FAILED_BATCH));
            loop {
                match results.next().await {
                    None => break None,
                    Some(Ok(Either::Left(_))) => at += 1,
                    Some(Ok(Either::Right(row))) => {
                        if let Some(Part::Statement { batch, statement }) = parts.get(at)
                            && let Some(rows) = rows
                                .get_mut(*batch)
                                .and_then(|rows| rows.get_mut(*statement))
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
            None if at == parts.len() => break Ok(()),
            None => sqlx::Error::Protocol(format!(
                "a script stopped after {at} of its {} statements",
                parts.len()
            )),
            Some(error) => error,
        };
        let (batch, error) = match parts.get(at) {
            Some(Part::Guard { batch, statement }) => (
                *batch,
                BatchError::Expectation {
                    statement: *statement,
                },
            ),
            Some(Part::Statement { batch, statement }) => (
                *batch,
                BatchError::Statement {
                    statement: *statement,
                    source: error,
                },
            ),
            // BEGIN, COMMIT or a savepoint itself: nothing commits.
            Some(Part::Control | Part::Savepoint { .. }) | None => break Err(error),
        };
        // Undo that batch only, and run the rest after it.
        if let Some(slot) = failed.get_mut(batch) {
            *slot = Some(error);
        }
        next = batch + 1;
        opening = UNDO_FAILED_BATCH;
    };
    if let Err(error) = outcome {
        let message = error.to_string();
        let rolled_back = roll_back_batch(&mut held.connection.connection).await;
        held.connection.batch_unfinished = rolled_back.is_err();
        let mut first = Some(error);
        return failed
            .into_iter()
            .map(|failure| {
                Err(failure.unwrap_or_else(|| {
                    BatchError::Database(
                        first
                            .take()
                            .unwrap_or_else(|| sqlx::Error::Protocol(message.clone())),
                    )
                }))
            })
            .collect();
    }
    held.connection.batch_unfinished = false;
    failed
        .into_iter()
        .zip(rows)
        .map(|(failure, rows)| match failure {
            Some(error) => Err(error),
            None => Ok(rows),
        })
        .collect()
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

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_batches_commit_together_and_a_failed_one_alone_is_undone() {
        let writer = writer().await;
        let mut tasks = Vec::new();
        for task in 0..60_i64 {
            let writer = writer.clone();
            tasks.push(tokio::spawn(async move {
                let mut batch = Batch::new();
                batch.push(add(1), Expect::OneChange);
                if task % 7 == 0 {
                    // Changes nothing, so this batch, and only this one,
                    // is undone.
                    batch.push(
                        Statement::new("UPDATE counter SET n = 0 WHERE n < $1").bind(0),
                        Expect::OneChange,
                    );
                }
                batch.push(add(1), Expect::OneChange);
                (task, writer.run_batch(&batch).await)
            }));
        }
        let mut committed = 0;
        for task in tasks {
            let (task, result) = task.await.expect("task");
            if task % 7 == 0 {
                assert!(
                    matches!(result, Err(BatchError::Expectation { statement: 1 })),
                    "batch {task}: {:?}",
                    result.err()
                );
            } else {
                let rows = result.expect("batch");
                assert_eq!(rows.len(), 2);
                committed += 1;
            }
        }
        assert_eq!(count(&writer).await, 2 * committed);
        assert_eq!(
            Manager::get_transaction_depth(&*writer.acquire().await.expect("acquire")),
            0
        );
    }

    #[test]
    fn a_group_is_of_one_shape_and_a_power_of_two() {
        let waiting = Waiting::default();
        let mut places = Vec::new();
        let mut answers = Vec::new();
        // Five batches of one shape, with two of another among them.
        for shape in ["a", "a", "b", "a", "b", "a", "a"] {
            let mut batch = Batch::new();
            batch.push(Statement::new(format!("SELECT '{shape}'")), Expect::Any);
            let (reply, answer) = oneshot::channel();
            answers.push(answer);
            // Kept: a place dropped takes its batch back out.
            places.push(waiting.push(batch, reply));
        }
        let ids = |group: Vec<Queued>| group.iter().map(|queued| queued.id).collect::<Vec<_>>();
        let id = |index: usize| places[index].id;
        assert_eq!(ids(waiting.take()), [id(0), id(1), id(3), id(5)]);
        assert_eq!(ids(waiting.take()), [id(2), id(4)]);
        assert_eq!(ids(waiting.take()), [id(6)]);
        assert!(waiting.take().is_empty());
    }
}
