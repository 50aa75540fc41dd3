//! Group commit: the one writer of a process. Requests queue here; the
//! committer takes as many as fit in one batch and commits them together, so
//! 64 clients posting one transfer each cost one durable commit, not 64.

use crate::{Store, now_micros};
use ledger::{
    AccountError, AccountId, BATCH_OPERATIONS_MAX, BalanceView, BatchItem, LedgerError,
    LedgerStore, LedgerWriter, NewAccount, Operation, StoreError, TimestampMicros, Transfer,
};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tracing::{info, warn};

/// Most submissions waiting for the committer before senders wait.
const SUBMISSIONS_QUEUED_MAX: usize = 4_096;

type BatchResults = Result<Vec<Result<Transfer, LedgerError>>, StoreError>;

struct Submission {
    items: Vec<BatchItem>,
    reply: oneshot::Sender<BatchResults>,
}

/// How the committer runs.
#[derive(Debug, Clone, Copy)]
pub struct LedgerOptions {
    /// How often expired pending transfers are looked for and voided.
    pub expiry_interval: Duration,
}

impl Default for LedgerOptions {
    fn default() -> Self {
        LedgerOptions {
            expiry_interval: Duration::from_secs(1),
        }
    }
}

/// The ledger of a running process: reads go straight to the store, writes
/// through the group committer.
#[derive(Debug, Clone)]
pub struct Ledger {
    store: Store,
    sender: mpsc::Sender<Submission>,
}

impl std::fmt::Debug for Submission {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Submission")
            .field("items", &self.items.len())
            .finish()
    }
}

impl Ledger {
    /// Starts the committer on the current tokio runtime.
    pub fn start(store: Store, options: LedgerOptions) -> Ledger {
        let (sender, receiver) = mpsc::channel(SUBMISSIONS_QUEUED_MAX);
        tokio::spawn(run(store.clone(), receiver, options));
        Ledger { store, sender }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Commits `items` durably, grouped with whatever else is waiting. The
    /// results are final: an acknowledged transfer is on disk.
    pub async fn submit(&self, mut items: Vec<BatchItem>) -> BatchResults {
        if items.len() > BATCH_OPERATIONS_MAX {
            return Err(StoreError::BatchTooLarge {
                count: items.len(),
                max: BATCH_OPERATIONS_MAX,
            });
        }
        // A chain still open at the end of a request must not run on into
        // the next request of the same group: it fails here, on its own.
        let open_from = items
            .iter()
            .rposition(|item| !item.linked)
            .map_or(0, |last_closed| last_closed + 1);
        let open_count = items.len() - open_from;
        items.truncate(open_from);
        let mut results = if items.is_empty() {
            Vec::new()
        } else {
            let (reply, answer) = oneshot::channel();
            self.sender
                .send(Submission { items, reply })
                .await
                .map_err(|_| StoreError::Closed)?;
            answer.await.map_err(|_| StoreError::Closed)??
        };
        results.extend((0..open_count).map(|_| Err(LedgerError::LinkedChainOpen)));
        Ok(results)
    }
}

impl LedgerWriter for Ledger {
    async fn open_account(&self, account: &NewAccount) -> Result<AccountId, StoreError> {
        match self.store.create_account(account).await {
            Ok(created) => Ok(created.id),
            Err(StoreError::Account(AccountError::AlreadyExists(id))) => Ok(id),
            Err(error) => Err(error),
        }
    }

    async fn submit(&self, items: Vec<BatchItem>) -> BatchResults {
        Ledger::submit(self, items).await
    }

    async fn balance(&self, account_id: AccountId) -> Result<Option<BalanceView>, StoreError> {
        Ok(self
            .store
            .account(account_id)
            .await?
            .and_then(|account| account.balance()))
    }
}

async fn run(store: Store, mut receiver: mpsc::Receiver<Submission>, options: LedgerOptions) {
    let mut expiry = tokio::time::interval(options.expiry_interval);
    expiry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_now: TimestampMicros = 0;
    let mut carried: Option<Submission> = None;
    loop {
        let first = match carried.take() {
            Some(submission) => submission,
            None => tokio::select! {
                received = receiver.recv() => match received {
                    Some(submission) => submission,
                    None => break,
                },
                _ = expiry.tick() => {
                    last_now = last_now.max(now_micros());
                    void_expired(&store, last_now).await;
                    continue;
                }
            },
        };
        let mut group = vec![first];
        let mut count = group[0].items.len();
        while count < BATCH_OPERATIONS_MAX {
            match receiver.try_recv() {
                Ok(next) if count + next.items.len() <= BATCH_OPERATIONS_MAX => {
                    count += next.items.len();
                    group.push(next);
                }
                Ok(next) => {
                    carried = Some(next);
                    break;
                }
                Err(_) => break,
            }
        }
        last_now = last_now.max(now_micros());
        commit_group(&store, group, count, last_now).await;
    }
    info!("ledger committer stopped");
}

async fn commit_group(store: &Store, group: Vec<Submission>, count: usize, now: TimestampMicros) {
    let mut items = Vec::with_capacity(count);
    let mut replies = Vec::with_capacity(group.len());
    for submission in group {
        replies.push((submission.items.len(), submission.reply));
        items.extend(submission.items);
    }
    match store.commit_batch(&items, now).await {
        Ok(results) => {
            let mut results = results.into_iter();
            for (length, reply) in replies {
                // A caller that gave up has nothing to be told.
                let _ = reply.send(Ok(results.by_ref().take(length).collect()));
            }
        }
        Err(error) => {
            warn!(%error, operations = count, "batch commit failed");
            let message = error.to_string();
            for (_, reply) in replies {
                let _ = reply.send(Err(StoreError::Database(message.clone())));
            }
        }
    }
}

/// Voids pending transfers whose timeout has passed.
async fn void_expired(store: &Store, now: TimestampMicros) {
    let expired = match store.expired_pending(now, BATCH_OPERATIONS_MAX).await {
        Ok(expired) => expired,
        Err(error) => {
            warn!(%error, "looking for expired pending transfers failed");
            return;
        }
    };
    if expired.is_empty() {
        return;
    }
    let items: Vec<BatchItem> = expired
        .iter()
        .map(|pending_id| {
            BatchItem::single(Operation::VoidPending {
                key: format!("expire-{pending_id}"),
                pending_id: *pending_id,
            })
        })
        .collect();
    match store.commit_batch(&items, now).await {
        Ok(results) => {
            let voided = results.iter().filter(|result| result.is_ok()).count();
            info!(voided, "voided expired pending transfers");
        }
        Err(error) => warn!(%error, "voiding expired pending transfers failed"),
    }
}
