//! The pure heart of the ledger: applies a batch of operations to the
//! balances a store loaded, and says what to write.
//!
//! A store loads every account, key and target transfer the batch names
//! ([`BatchReferences`]), calls [`apply_batch`], checks the outcome with
//! [`verify_outcome`] and writes it in one durable commit. Because the
//! balance changes of a whole batch are summed here, an account that takes
//! part in every transfer (a fee income account) is written once per batch,
//! not once per transfer.

use crate::{
    Account, AccountId, Balances, BatchItem, DESCRIPTION_LENGTH_MAX, Entry, KEY_LENGTH_MAX,
    LEGS_MAX, LedgerError, Leg, Operation, Overdraft, PENDING_TIMEOUT_SECONDS_MAX, Side,
    TimestampMicros, Transfer, TransferId, TransferKind, TransferMode, TransferStatus,
    balance_view,
};
use money::Currency;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Most operations one batch may hold.
pub const BATCH_OPERATIONS_MAX: usize = 8_190;

/// What a store must load before applying a batch.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BatchReferences {
    pub keys: BTreeSet<String>,
    pub transfer_ids: BTreeSet<TransferId>,
    /// Accounts named by the operations themselves; the accounts of target
    /// transfers' entries are added once the targets are loaded.
    pub account_ids: BTreeSet<AccountId>,
}

impl BatchReferences {
    pub fn of(items: &[BatchItem]) -> Self {
        let mut references = BatchReferences::default();
        for item in items {
            references.keys.insert(item.operation.key().to_owned());
            match &item.operation {
                Operation::Transfer { legs, .. } => {
                    references
                        .account_ids
                        .extend(legs.iter().map(|leg| leg.account_id));
                }
                Operation::PostPending { pending_id, .. }
                | Operation::VoidPending { pending_id, .. } => {
                    references.transfer_ids.insert(*pending_id);
                }
                Operation::Reverse { transfer_id, .. } => {
                    references.transfer_ids.insert(*transfer_id);
                }
                Operation::Freeze { account_id, .. } | Operation::Unfreeze { account_id, .. } => {
                    references.account_ids.insert(*account_id);
                }
            }
        }
        references
    }
}

/// Everything the store loaded for a batch.
#[derive(Debug, Default, Clone)]
pub struct LoadedState {
    pub accounts: HashMap<AccountId, Account>,
    /// Stored transfers whose key a batch operation uses.
    pub transfers_by_key: HashMap<String, Transfer>,
    /// Stored transfers a batch operation targets.
    pub transfers_by_id: HashMap<TransferId, Transfer>,
}

/// The change of one subject's totals in one currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectDelta {
    pub subject_code: String,
    pub currency: Currency,
    pub debits_minor: i64,
    pub credits_minor: i64,
}

/// What applying a batch produced, for the store to write.
#[derive(Debug, Clone, Default)]
pub struct BatchOutcome {
    /// One per batch item, in order: the transfer (new, or the first result
    /// of a retried key) or why it was refused.
    pub results: Vec<Result<Transfer, LedgerError>>,
    /// Transfers to insert, in id order, with their final status.
    pub new_transfers: Vec<Transfer>,
    /// Final balances of every account the batch changed.
    pub account_updates: Vec<(AccountId, Balances)>,
    /// New statuses of transfers stored before this batch.
    pub status_updates: Vec<(TransferId, TransferStatus)>,
    pub subject_deltas: Vec<SubjectDelta>,
}

/// Applies `items` in order. `transfer_ids` gives the ids for new transfers,
/// in order; it must hold at least `items.len()` ids.
pub fn apply_batch(
    loaded: &LoadedState,
    items: &[BatchItem],
    transfer_ids: &[TransferId],
    now: TimestampMicros,
) -> BatchOutcome {
    let mut work = Working::new(loaded, transfer_ids, now);
    let mut results: Vec<Result<Transfer, LedgerError>> = Vec::with_capacity(items.len());
    let mut chain: Option<(Checkpoint, usize)> = None;
    let mut chain_failed = false;
    for (index, item) in items.iter().enumerate() {
        if chain.is_none() && item.linked {
            chain = Some((work.checkpoint(), index));
            chain_failed = false;
        }
        let result = if chain_failed {
            Err(LedgerError::LinkedOperationFailed)
        } else {
            work.apply(&item.operation)
        };
        if result.is_err()
            && let Some((checkpoint, start)) = &chain
            && !chain_failed
        {
            work.rollback(checkpoint);
            for earlier in &mut results[*start..index] {
                *earlier = Err(LedgerError::LinkedOperationFailed);
            }
            chain_failed = true;
        }
        results.push(result);
        if !item.linked {
            chain = None;
            chain_failed = false;
        }
    }
    if let Some((checkpoint, start)) = chain {
        // The batch ended inside a chain: it never closed, so none of it holds.
        if !chain_failed {
            work.rollback(&checkpoint);
        }
        for open in &mut results[start..] {
            *open = Err(LedgerError::LinkedChainOpen);
        }
    }
    work.finish(results)
}

/// The number of each undo log at a chain's start.
#[derive(Debug, Clone, Copy)]
struct Checkpoint {
    balances: usize,
    statuses: usize,
    transfers: usize,
}

/// Where an effect lands in an account's totals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bucket {
    Posted,
    Pending,
    /// Takes a reservation back.
    ReleasePending,
    Freeze,
    Unfreeze,
}

#[derive(Debug, Clone, Copy)]
struct Effect {
    account_id: AccountId,
    side: Side,
    amount_minor: i64,
    currency: Currency,
    bucket: Bucket,
}

struct Working<'a> {
    loaded: &'a LoadedState,
    transfer_ids: &'a [TransferId],
    now: TimestampMicros,
    balances: HashMap<AccountId, Balances>,
    balances_undo: Vec<(AccountId, Option<Balances>)>,
    statuses: HashMap<TransferId, TransferStatus>,
    statuses_undo: Vec<(TransferId, Option<TransferStatus>)>,
    new_transfers: Vec<Transfer>,
    new_by_key: HashMap<String, usize>,
    new_by_id: HashMap<TransferId, usize>,
}

impl<'a> Working<'a> {
    fn new(loaded: &'a LoadedState, transfer_ids: &'a [TransferId], now: TimestampMicros) -> Self {
        Working {
            loaded,
            transfer_ids,
            now,
            balances: HashMap::new(),
            balances_undo: Vec::new(),
            statuses: HashMap::new(),
            statuses_undo: Vec::new(),
            new_transfers: Vec::new(),
            new_by_key: HashMap::new(),
            new_by_id: HashMap::new(),
        }
    }

    fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            balances: self.balances_undo.len(),
            statuses: self.statuses_undo.len(),
            transfers: self.new_transfers.len(),
        }
    }

    fn rollback(&mut self, checkpoint: &Checkpoint) {
        while self.balances_undo.len() > checkpoint.balances {
            if let Some((account_id, previous)) = self.balances_undo.pop() {
                match previous {
                    Some(balances) => self.balances.insert(account_id, balances),
                    None => self.balances.remove(&account_id),
                };
            }
        }
        while self.statuses_undo.len() > checkpoint.statuses {
            if let Some((transfer_id, previous)) = self.statuses_undo.pop() {
                match previous {
                    Some(status) => self.statuses.insert(transfer_id, status),
                    None => self.statuses.remove(&transfer_id),
                };
            }
        }
        for transfer in self.new_transfers.drain(checkpoint.transfers..) {
            self.new_by_key.remove(&transfer.key);
            self.new_by_id.remove(&transfer.id);
        }
    }

    fn account(&self, account_id: AccountId) -> Result<&'a Account, LedgerError> {
        self.loaded
            .accounts
            .get(&account_id)
            .ok_or(LedgerError::AccountNotFound(account_id))
    }

    fn current_balances(&self, account: &Account) -> Balances {
        self.balances
            .get(&account.id)
            .copied()
            .unwrap_or(account.balances)
    }

    fn transfer(
        &self,
        transfer_id: TransferId,
    ) -> Result<(&Transfer, TransferStatus), LedgerError> {
        let transfer = match self.new_by_id.get(&transfer_id) {
            Some(index) => &self.new_transfers[*index],
            None => self
                .loaded
                .transfers_by_id
                .get(&transfer_id)
                .ok_or(LedgerError::TransferNotFound(transfer_id))?,
        };
        let status = self
            .statuses
            .get(&transfer_id)
            .copied()
            .unwrap_or(transfer.status);
        Ok((transfer, status))
    }

    fn set_status(&mut self, transfer_id: TransferId, status: TransferStatus) {
        let previous = self.statuses.insert(transfer_id, status);
        self.statuses_undo.push((transfer_id, previous));
    }

    fn apply(&mut self, operation: &Operation) -> Result<Transfer, LedgerError> {
        let key = operation.key();
        if key.is_empty() || key.chars().count() > KEY_LENGTH_MAX {
            return Err(LedgerError::InvalidKey {
                max: KEY_LENGTH_MAX,
            });
        }
        let existing = match self.new_by_key.get(key) {
            Some(index) => Some(&self.new_transfers[*index]),
            None => self.loaded.transfers_by_key.get(key),
        };
        if let Some(existing) = existing {
            return match conflicting_field(operation, existing) {
                None => Ok(existing.clone()),
                Some(field) => Err(LedgerError::DuplicateKeyConflict { field }),
            };
        }
        let transfer = match operation {
            Operation::Transfer {
                legs,
                mode,
                description,
                ..
            } => self.transfer_new(key, legs, *mode, description)?,
            Operation::PostPending {
                pending_id,
                amount_minor,
                ..
            } => self.post_pending(key, *pending_id, *amount_minor)?,
            Operation::VoidPending { pending_id, .. } => self.void_pending(key, *pending_id)?,
            Operation::Reverse {
                transfer_id,
                description,
                ..
            } => self.reverse(key, *transfer_id, description)?,
            Operation::Freeze {
                account_id,
                amount_minor,
                description,
                ..
            } => self.freeze(key, *account_id, *amount_minor, description, Bucket::Freeze)?,
            Operation::Unfreeze {
                account_id,
                amount_minor,
                description,
                ..
            } => self.freeze(
                key,
                *account_id,
                *amount_minor,
                description,
                Bucket::Unfreeze,
            )?,
        };
        let index = self.new_transfers.len();
        self.new_by_key.insert(transfer.key.clone(), index);
        self.new_by_id.insert(transfer.id, index);
        self.new_transfers.push(transfer.clone());
        Ok(transfer)
    }

    fn next_id(&self) -> Result<TransferId, LedgerError> {
        // Every operation consumes at most one id, and the caller gives one
        // per operation, so this only fails if the caller broke that promise.
        self.transfer_ids
            .get(self.new_transfers.len())
            .copied()
            .ok_or(LedgerError::Overflow)
    }

    fn blank(
        &self,
        key: &str,
        kind: TransferKind,
        description: &str,
    ) -> Result<Transfer, LedgerError> {
        Ok(Transfer {
            id: self.next_id()?,
            key: key.to_owned(),
            kind,
            status: TransferStatus::Posted,
            target_id: None,
            account_id: None,
            amount_minor: None,
            timeout_seconds: None,
            expires_at: None,
            description: description.to_owned(),
            created_at: self.now,
            entries: Vec::new(),
        })
    }

    fn transfer_new(
        &mut self,
        key: &str,
        legs: &[Leg],
        mode: TransferMode,
        description: &str,
    ) -> Result<Transfer, LedgerError> {
        validate_legs(legs)?;
        validate_description(description)?;
        let (kind, bucket, timeout_seconds) = match mode {
            TransferMode::Posted => (TransferKind::Transfer, Bucket::Posted, None),
            TransferMode::Pending { timeout_seconds } => {
                if let Some(timeout) = timeout_seconds
                    && !(1..=PENDING_TIMEOUT_SECONDS_MAX).contains(&timeout)
                {
                    return Err(LedgerError::InvalidTimeout {
                        max: PENDING_TIMEOUT_SECONDS_MAX,
                    });
                }
                (TransferKind::Pending, Bucket::Pending, timeout_seconds)
            }
        };
        let effects: Vec<Effect> = legs
            .iter()
            .map(|leg| Effect {
                account_id: leg.account_id,
                side: leg.side,
                amount_minor: leg.amount_minor,
                currency: leg.currency,
                bucket,
            })
            .collect();
        let mut transfer = self.blank(key, kind, description)?;
        if let Some(timeout) = timeout_seconds {
            transfer.status = TransferStatus::Pending;
            transfer.timeout_seconds = Some(timeout);
            let timeout_micros = i64::try_from(timeout)
                .ok()
                .and_then(|seconds| seconds.checked_mul(1_000_000))
                .ok_or(LedgerError::Overflow)?;
            transfer.expires_at = Some(
                self.now
                    .checked_add(timeout_micros)
                    .ok_or(LedgerError::Overflow)?,
            );
        } else if kind == TransferKind::Pending {
            transfer.status = TransferStatus::Pending;
        }
        transfer.entries = self.apply_effects(transfer.id, &effects)?;
        Ok(transfer)
    }

    /// The pending transfer to post or void. An expired one may be voided
    /// (that is what its timeout does) but not posted.
    fn pending_target(
        &self,
        pending_id: TransferId,
        allow_expired: bool,
    ) -> Result<&Transfer, LedgerError> {
        let (pending, status) = self.transfer(pending_id)?;
        if pending.kind != TransferKind::Pending {
            return Err(LedgerError::NotPending(pending_id));
        }
        if status != TransferStatus::Pending {
            return Err(LedgerError::PendingAlreadyResolved {
                id: pending_id,
                status: status.as_str(),
            });
        }
        if !allow_expired
            && pending
                .expires_at
                .is_some_and(|expires_at| expires_at <= self.now)
        {
            return Err(LedgerError::PendingExpired(pending_id));
        }
        Ok(pending)
    }

    fn post_pending(
        &mut self,
        key: &str,
        pending_id: TransferId,
        amount_minor: Option<i64>,
    ) -> Result<Transfer, LedgerError> {
        let pending = self.pending_target(pending_id, false)?;
        let mut effects = release_effects(pending);
        match amount_minor {
            None => effects.extend(pending.entries.iter().map(|entry| Effect {
                bucket: Bucket::Posted,
                ..entry_effect(entry)
            })),
            Some(amount) => {
                let [first, second] = pending.entries.as_slice() else {
                    return Err(LedgerError::PartialPostNeedsTwoLegs);
                };
                if amount <= 0 {
                    return Err(LedgerError::InvalidAmount {
                        amount_minor: amount,
                    });
                }
                if amount > first.amount_minor {
                    return Err(LedgerError::PostExceedsPending {
                        amount_minor: amount,
                        pending_minor: first.amount_minor,
                    });
                }
                for entry in [first, second] {
                    effects.push(Effect {
                        amount_minor: amount,
                        bucket: Bucket::Posted,
                        ..entry_effect(entry)
                    });
                }
            }
        }
        let mut transfer = self.blank(key, TransferKind::PostPending, "")?;
        transfer.target_id = Some(pending_id);
        transfer.amount_minor = amount_minor;
        transfer.entries = self.apply_effects(transfer.id, &effects)?;
        self.set_status(pending_id, TransferStatus::PendingPosted);
        Ok(transfer)
    }

    fn void_pending(&mut self, key: &str, pending_id: TransferId) -> Result<Transfer, LedgerError> {
        let pending = self.pending_target(pending_id, true)?;
        let effects = release_effects(pending);
        let mut transfer = self.blank(key, TransferKind::VoidPending, "")?;
        transfer.target_id = Some(pending_id);
        transfer.entries = self.apply_effects(transfer.id, &effects)?;
        self.set_status(pending_id, TransferStatus::Voided);
        Ok(transfer)
    }

    fn reverse(
        &mut self,
        key: &str,
        transfer_id: TransferId,
        description: &str,
    ) -> Result<Transfer, LedgerError> {
        validate_description(description)?;
        let (original, status) = self.transfer(transfer_id)?;
        if !matches!(
            original.kind,
            TransferKind::Transfer | TransferKind::PostPending
        ) {
            return Err(LedgerError::NotReversible(transfer_id));
        }
        if status == TransferStatus::Reversed {
            return Err(LedgerError::AlreadyReversed(transfer_id));
        }
        let effects: Vec<Effect> = original
            .entries
            .iter()
            .filter(|entry| !entry.pending)
            .map(|entry| Effect {
                side: entry.side.opposite(),
                ..entry_effect(entry)
            })
            .collect();
        let mut transfer = self.blank(key, TransferKind::Reversal, description)?;
        transfer.target_id = Some(transfer_id);
        transfer.entries = self.apply_effects(transfer.id, &effects)?;
        self.set_status(transfer_id, TransferStatus::Reversed);
        Ok(transfer)
    }

    fn freeze(
        &mut self,
        key: &str,
        account_id: AccountId,
        amount_minor: i64,
        description: &str,
        bucket: Bucket,
    ) -> Result<Transfer, LedgerError> {
        validate_description(description)?;
        if amount_minor <= 0 {
            return Err(LedgerError::InvalidAmount { amount_minor });
        }
        let account = self.account(account_id)?;
        let effect = Effect {
            account_id,
            side: account.normal_side(),
            amount_minor,
            currency: account.currency,
            bucket,
        };
        let kind = if bucket == Bucket::Freeze {
            TransferKind::Freeze
        } else {
            TransferKind::Unfreeze
        };
        let mut transfer = self.blank(key, kind, description)?;
        transfer.account_id = Some(account_id);
        transfer.amount_minor = Some(amount_minor);
        self.apply_effects(transfer.id, &[effect])?;
        Ok(transfer)
    }

    /// Applies effects to the working balances if every account stays within
    /// its limits; returns the journal entries they write.
    fn apply_effects(
        &mut self,
        transfer_id: TransferId,
        effects: &[Effect],
    ) -> Result<Vec<Entry>, LedgerError> {
        let mut changed: Vec<(AccountId, Balances)> = Vec::with_capacity(effects.len());
        let mut entries = Vec::with_capacity(effects.len());
        for effect in effects {
            let account = self.account(effect.account_id)?;
            if account.currency != effect.currency {
                return Err(LedgerError::CurrencyMismatch {
                    account_id: account.id,
                    account_currency: account.currency.code(),
                    leg_currency: effect.currency.code(),
                });
            }
            let slot = match changed.iter().position(|(id, _)| *id == account.id) {
                Some(position) => position,
                None => {
                    changed.push((account.id, self.current_balances(account)));
                    changed.len() - 1
                }
            };
            let balances = &mut changed[slot].1;
            add_effect(balances, effect, &account.id)?;
            if matches!(effect.bucket, Bucket::Posted | Bucket::Pending) {
                let view =
                    balance_view(balances, account.normal_side()).ok_or(LedgerError::Overflow)?;
                entries.push(Entry {
                    transfer_id,
                    leg_index: u32::try_from(entries.len()).map_err(|_| LedgerError::Overflow)?,
                    account_id: account.id,
                    side: effect.side,
                    amount_minor: effect.amount_minor,
                    currency: effect.currency,
                    pending: effect.bucket == Bucket::Pending,
                    balance_after_minor: view.ledger_minor,
                    posted_at: self.now,
                });
            }
        }
        for (account_id, after) in &changed {
            let account = self.account(*account_id)?;
            check_limits(account, &self.current_balances(account), after)?;
        }
        for (account_id, after) in changed {
            let previous = self.balances.insert(account_id, after);
            self.balances_undo.push((account_id, previous));
        }
        Ok(entries)
    }

    fn finish(self, results: Vec<Result<Transfer, LedgerError>>) -> BatchOutcome {
        let mut new_transfers = self.new_transfers;
        let mut status_updates = Vec::new();
        for (transfer_id, status) in &self.statuses {
            match self.new_by_id.get(transfer_id) {
                Some(index) => new_transfers[*index].status = *status,
                None => status_updates.push((*transfer_id, *status)),
            }
        }
        status_updates.sort_unstable_by_key(|(transfer_id, _)| *transfer_id);
        let mut account_updates: Vec<(AccountId, Balances)> = self
            .balances
            .into_iter()
            .filter(|(account_id, balances)| {
                self.loaded
                    .accounts
                    .get(account_id)
                    .is_some_and(|account| account.balances != *balances)
            })
            .collect();
        account_updates.sort_unstable_by_key(|(account_id, _)| *account_id);
        let subject_deltas = subject_deltas(&self.loaded.accounts, &new_transfers);
        BatchOutcome {
            results,
            new_transfers,
            account_updates,
            status_updates,
            subject_deltas,
        }
    }
}

fn entry_effect(entry: &Entry) -> Effect {
    Effect {
        account_id: entry.account_id,
        side: entry.side,
        amount_minor: entry.amount_minor,
        currency: entry.currency,
        bucket: Bucket::Posted,
    }
}

fn release_effects(pending: &Transfer) -> Vec<Effect> {
    pending
        .entries
        .iter()
        .map(|entry| Effect {
            bucket: Bucket::ReleasePending,
            ..entry_effect(entry)
        })
        .collect()
}

fn add_effect(
    balances: &mut Balances,
    effect: &Effect,
    account_id: &AccountId,
) -> Result<(), LedgerError> {
    let amount = effect.amount_minor;
    let (total, negative) = match (effect.bucket, effect.side) {
        (Bucket::Posted, Side::Debit) => (&mut balances.debits_posted_minor, false),
        (Bucket::Posted, Side::Credit) => (&mut balances.credits_posted_minor, false),
        (Bucket::Pending, Side::Debit) => (&mut balances.debits_pending_minor, false),
        (Bucket::Pending, Side::Credit) => (&mut balances.credits_pending_minor, false),
        (Bucket::ReleasePending, Side::Debit) => (&mut balances.debits_pending_minor, true),
        (Bucket::ReleasePending, Side::Credit) => (&mut balances.credits_pending_minor, true),
        (Bucket::Freeze, _) => (&mut balances.frozen_minor, false),
        (Bucket::Unfreeze, _) => {
            if balances.frozen_minor < amount {
                return Err(LedgerError::InsufficientFrozen {
                    account_id: *account_id,
                    frozen_minor: balances.frozen_minor,
                    amount_minor: amount,
                });
            }
            (&mut balances.frozen_minor, true)
        }
    };
    *total = if negative {
        total.checked_sub(amount)
    } else {
        total.checked_add(amount)
    }
    .ok_or(LedgerError::Overflow)?;
    Ok(())
}

/// An account may not fall below its overdraft limit through a change that
/// lowers its available balance.
fn check_limits(account: &Account, before: &Balances, after: &Balances) -> Result<(), LedgerError> {
    let side = account.normal_side();
    let before_view = balance_view(before, side).ok_or(LedgerError::Overflow)?;
    let after_view = balance_view(after, side).ok_or(LedgerError::Overflow)?;
    let floor = match account.overdraft {
        Overdraft::Unlimited => return Ok(()),
        Overdraft::Limit(limit) => -limit,
    };
    if after_view.available_minor < before_view.available_minor
        && after_view.available_minor < floor
    {
        return Err(LedgerError::InsufficientFunds {
            account_id: account.id,
            available_minor: before_view.available_minor,
            required_minor: before_view
                .available_minor
                .saturating_sub(after_view.available_minor),
        });
    }
    Ok(())
}

fn validate_description(description: &str) -> Result<(), LedgerError> {
    if description.chars().count() > DESCRIPTION_LENGTH_MAX {
        return Err(LedgerError::DescriptionTooLong {
            max: DESCRIPTION_LENGTH_MAX,
        });
    }
    Ok(())
}

/// Checks a requested transfer's own shape: leg count, positive amounts, no
/// account on both sides, and debits equal to credits in every currency.
pub fn validate_legs(legs: &[Leg]) -> Result<(), LedgerError> {
    if !(2..=LEGS_MAX).contains(&legs.len()) {
        return Err(LedgerError::LegCount {
            count: legs.len(),
            max: LEGS_MAX,
        });
    }
    for leg in legs {
        if leg.amount_minor <= 0 {
            return Err(LedgerError::InvalidAmount {
                amount_minor: leg.amount_minor,
            });
        }
    }
    for debit in legs.iter().filter(|leg| leg.side == Side::Debit) {
        if legs
            .iter()
            .any(|credit| credit.side == Side::Credit && credit.account_id == debit.account_id)
        {
            return Err(LedgerError::AccountOnBothSides(debit.account_id));
        }
    }
    let sums = side_sums(
        legs.iter()
            .map(|leg| (leg.currency, leg.side, leg.amount_minor)),
    );
    for (currency, (debits_minor, credits_minor)) in sums {
        if debits_minor != credits_minor {
            return Err(LedgerError::UnbalancedTransfer {
                currency: currency.code(),
                debits_minor,
                credits_minor,
            });
        }
    }
    Ok(())
}

/// Debit and credit totals per currency, exact in 128 bits.
pub fn side_sums(
    lines: impl Iterator<Item = (Currency, Side, i64)>,
) -> BTreeMap<Currency, (i128, i128)> {
    let mut sums: BTreeMap<Currency, (i128, i128)> = BTreeMap::new();
    for (currency, side, amount_minor) in lines {
        let sum = sums.entry(currency).or_default();
        match side {
            Side::Debit => sum.0 += i128::from(amount_minor),
            Side::Credit => sum.1 += i128::from(amount_minor),
        }
    }
    sums
}

fn subject_deltas(
    accounts: &HashMap<AccountId, Account>,
    transfers: &[Transfer],
) -> Vec<SubjectDelta> {
    let mut deltas: BTreeMap<(&str, Currency), (i64, i64)> = BTreeMap::new();
    for entry in transfers
        .iter()
        .flat_map(|transfer| &transfer.entries)
        .filter(|entry| !entry.pending)
    {
        let Some(account) = accounts.get(&entry.account_id) else {
            continue;
        };
        let delta = deltas
            .entry((account.subject_code.as_str(), entry.currency))
            .or_default();
        // Each account total fitted in i64 after the batch, so the subject's
        // share of one batch does too; saturate rather than panic regardless.
        match entry.side {
            Side::Debit => delta.0 = delta.0.saturating_add(entry.amount_minor),
            Side::Credit => delta.1 = delta.1.saturating_add(entry.amount_minor),
        }
    }
    deltas
        .into_iter()
        .map(
            |((subject_code, currency), (debits_minor, credits_minor))| SubjectDelta {
                subject_code: subject_code.to_owned(),
                currency,
                debits_minor,
                credits_minor,
            },
        )
        .collect()
}

/// The field of a retried operation that differs from the stored transfer
/// with the same key, if any.
fn conflicting_field(operation: &Operation, existing: &Transfer) -> Option<String> {
    if operation.kind() != existing.kind {
        return Some("kind".to_owned());
    }
    let differs = |field: &str, same: bool| (!same).then(|| field.to_owned());
    match operation {
        Operation::Transfer {
            legs,
            mode,
            description,
            ..
        } => {
            if legs.len() != existing.entries.len() {
                return Some("legs".to_owned());
            }
            for (index, (leg, entry)) in legs.iter().zip(&existing.entries).enumerate() {
                let field = if leg.account_id != entry.account_id {
                    "account_id"
                } else if leg.side != entry.side {
                    "side"
                } else if leg.amount_minor != entry.amount_minor {
                    "amount_minor"
                } else if leg.currency != entry.currency {
                    "currency"
                } else {
                    continue;
                };
                return Some(format!("legs[{index}].{field}"));
            }
            let timeout = match mode {
                TransferMode::Posted => None,
                TransferMode::Pending { timeout_seconds } => *timeout_seconds,
            };
            differs("timeout_seconds", timeout == existing.timeout_seconds)
                .or_else(|| differs("description", *description == existing.description))
        }
        Operation::PostPending {
            pending_id,
            amount_minor,
            ..
        } => differs("pending_id", Some(*pending_id) == existing.target_id)
            .or_else(|| differs("amount_minor", *amount_minor == existing.amount_minor)),
        Operation::VoidPending { pending_id, .. } => {
            differs("pending_id", Some(*pending_id) == existing.target_id)
        }
        Operation::Reverse {
            transfer_id,
            description,
            ..
        } => differs("transfer_id", Some(*transfer_id) == existing.target_id)
            .or_else(|| differs("description", *description == existing.description)),
        Operation::Freeze {
            account_id,
            amount_minor,
            description,
            ..
        }
        | Operation::Unfreeze {
            account_id,
            amount_minor,
            description,
            ..
        } => differs("account_id", Some(*account_id) == existing.account_id)
            .or_else(|| differs("amount_minor", Some(*amount_minor) == existing.amount_minor))
            .or_else(|| differs("description", *description == existing.description)),
    }
}

/// A broken invariant found in an outcome before it is committed: a bug,
/// never a user error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("ledger invariant broken: {0}")]
pub struct InvariantViolation(pub String);

/// The second look at a batch before commit: every new transfer balances
/// per currency, posted and pending entries each on their own.
pub fn verify_outcome(outcome: &BatchOutcome) -> Result<(), InvariantViolation> {
    for transfer in &outcome.new_transfers {
        for pending in [false, true] {
            let sums = side_sums(
                transfer
                    .entries
                    .iter()
                    .filter(|entry| entry.pending == pending)
                    .map(|entry| (entry.currency, entry.side, entry.amount_minor)),
            );
            for (currency, (debits, credits)) in sums {
                if debits != credits {
                    return Err(InvariantViolation(format!(
                        "transfer {} is unbalanced in {currency}: debits {debits}, credits {credits}",
                        transfer.id
                    )));
                }
            }
        }
    }
    Ok(())
}
