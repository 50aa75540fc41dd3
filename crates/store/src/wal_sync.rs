//! Group fsync for SQLite: commits are written to the WAL without an fsync
//! each (`synchronous=NORMAL`), and every writer waits, before it answers,
//! for one fsync of the WAL that began after its commit. Many concurrent
//! commits then share one fsync, yet no commit is acknowledged before it
//! is on disk.
//!
//! Why this is as durable as `synchronous=FULL`: FULL does exactly one
//! fsync of the WAL per commit, at commit. Here the same fsync happens a
//! little later but before the caller is told, and because the WAL is
//! written in commit order, what survives a power loss is always a prefix
//! of the commits: never a later commit without an earlier one.

use ledger::StoreError;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use tokio::sync::Mutex;

#[derive(Debug)]
pub(crate) struct WalSync {
    wal_path: PathBuf,
    /// Commits announced so far; each announces after its commit returned.
    committed: AtomicU64,
    /// The highest announced commit known to be on disk.
    synced: AtomicU64,
    /// Held while an fsync runs; writers queue on it in order.
    syncing: Mutex<()>,
    /// Set when an fsync failed: what was written may be lost, and the
    /// kernel may not say so again, so no later commit is acknowledged.
    poisoned: AtomicBool,
    /// Fsyncs run so far, for tests and benchmarks.
    fsyncs: AtomicU64,
}

impl WalSync {
    pub(crate) fn new(database_path: &str) -> WalSync {
        WalSync {
            wal_path: PathBuf::from(format!("{database_path}-wal")),
            committed: AtomicU64::new(0),
            synced: AtomicU64::new(0),
            syncing: Mutex::new(()),
            poisoned: AtomicBool::new(false),
            fsyncs: AtomicU64::new(0),
        }
    }

    /// Returns once every commit made before this call is on disk.
    ///
    /// Writers queue on one lock (tokio's is first in, first out). The
    /// holder fsyncs for every commit announced so far; the writers queued
    /// behind it find their commits covered and return without an fsync of
    /// their own. No writer waits for a wake-up that may not come.
    pub(crate) async fn durable(&self) -> Result<(), StoreError> {
        let ticket = self.committed.fetch_add(1, Ordering::SeqCst) + 1;
        let _syncing = self.syncing.lock().await;
        if self.poisoned.load(Ordering::SeqCst) {
            return Err(StoreError::Database(
                "an earlier fsync of the WAL failed; restart to recover".to_owned(),
            ));
        }
        if self.synced.load(Ordering::SeqCst) >= ticket {
            return Ok(());
        }
        // Every ticket up to `target` was taken after its commit had been
        // written, so this fsync covers them all.
        let target = self.committed.load(Ordering::SeqCst);
        match self.fsync().await {
            Ok(()) => {
                self.synced.fetch_max(target, Ordering::SeqCst);
                Ok(())
            }
            Err(error) => {
                self.poisoned.store(true, Ordering::SeqCst);
                Err(error)
            }
        }
    }

    #[cfg(test)]
    fn fsyncs(&self) -> u64 {
        self.fsyncs.load(Ordering::SeqCst)
    }

    async fn fsync(&self) -> Result<(), StoreError> {
        self.fsyncs.fetch_add(1, Ordering::SeqCst);
        let path = self.wal_path.clone();
        let outcome = tokio::task::spawn_blocking(move || match std::fs::File::open(&path) {
            Ok(file) => file.sync_data(),
            // No WAL: SQLite checkpointed everything into the database file,
            // which it syncs itself after a checkpoint.
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(error) => Err(error),
        })
        .await
        .map_err(|error| StoreError::Database(format!("fsync task failed: {error}")))?;
        outcome.map_err(|error| StoreError::Database(format!("fsync of the WAL failed: {error}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_commits_share_fsyncs() {
        let directory = tempfile::tempdir().unwrap();
        let database = directory.path().join("group.db");
        std::fs::write(directory.path().join("group.db-wal"), b"frames").unwrap();
        let sync = Arc::new(WalSync::new(database.to_str().unwrap()));
        let mut tasks = Vec::new();
        for _ in 0..200 {
            let sync = Arc::clone(&sync);
            tasks.push(tokio::spawn(async move { sync.durable().await }));
        }
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        let fsyncs = sync.fsyncs();
        assert!(fsyncs >= 1);
        assert!(fsyncs < 200, "{fsyncs} fsyncs for 200 commits");
        // A commit after all of them still gets its own fsync.
        sync.durable().await.unwrap();
        assert_eq!(sync.fsyncs(), fsyncs + 1);
    }

    #[tokio::test]
    async fn no_wal_means_nothing_to_sync() {
        let directory = tempfile::tempdir().unwrap();
        let sync = WalSync::new(directory.path().join("absent.db").to_str().unwrap());
        sync.durable().await.unwrap();
    }
}
