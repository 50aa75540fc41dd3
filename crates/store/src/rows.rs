//! Database rows as tuples, shared by both backends, and their conversion to
//! domain types. Serialization is a boundary: the domain types derive
//! nothing of sqlx.

use ledger::{
    Account, AccountKind, Balances, Entry, Overdraft, OwnerKind, Side, StoreError, SubjectClass,
    Transfer, TransferKind, TransferStatus,
};
use money::Currency;
use std::collections::HashMap;

pub(crate) type AccountRow = (
    i64,
    String,
    String,
    String,
    String,
    String,
    String,
    Option<i64>,
    i64,
    i64,
    i64,
    i64,
    i64,
    i64,
);

pub(crate) const ACCOUNT_COLUMNS: &str = "id, subject_code, subject_class, kind, owner_kind, owner_id, currency, \
     overdraft_limit_minor, debits_posted_minor, credits_posted_minor, debits_pending_minor, \
     credits_pending_minor, frozen_minor, created_at";

pub(crate) type TransferRow = (
    i64,
    String,
    String,
    String,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    String,
    i64,
);

pub(crate) const TRANSFER_COLUMNS: &str = "id, idempotency_key, kind, status, target_id, account_id, \
     amount_minor, timeout_seconds, expires_at, description, created_at";

pub(crate) type EntryRow = (i64, i32, i64, bool, i64, String, bool, i64, i64);

pub(crate) const ENTRY_COLUMNS: &str = "transfer_id, leg_index, account_id, is_credit, amount_minor, \
     currency, pending, balance_after_minor, posted_at";

fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::Corrupt(format!("unknown {what} {value:?}"))
}

pub(crate) fn currency(code: &str) -> Result<Currency, StoreError> {
    Currency::from_code(code).map_err(|_| corrupt("currency", code))
}

pub(crate) fn account_from_row(row: AccountRow) -> Result<Account, StoreError> {
    let (
        id,
        subject_code,
        subject_class,
        kind,
        owner_kind,
        owner_id,
        currency_code,
        overdraft_limit_minor,
        debits_posted_minor,
        credits_posted_minor,
        debits_pending_minor,
        credits_pending_minor,
        frozen_minor,
        created_at,
    ) = row;
    Ok(Account {
        id,
        subject_class: SubjectClass::parse(&subject_class)
            .ok_or_else(|| corrupt("subject class", &subject_class))?,
        subject_code,
        kind: AccountKind::parse(&kind).ok_or_else(|| corrupt("account kind", &kind))?,
        owner_kind: OwnerKind::parse(&owner_kind)
            .ok_or_else(|| corrupt("owner kind", &owner_kind))?,
        owner_id,
        currency: currency(&currency_code)?,
        overdraft: overdraft_limit_minor.map_or(Overdraft::Unlimited, Overdraft::Limit),
        balances: Balances {
            debits_posted_minor,
            credits_posted_minor,
            debits_pending_minor,
            credits_pending_minor,
            frozen_minor,
        },
        created_at,
    })
}

pub(crate) fn overdraft_column(overdraft: Overdraft) -> Option<i64> {
    match overdraft {
        Overdraft::Limit(limit) => Some(limit),
        Overdraft::Unlimited => None,
    }
}

pub(crate) fn entry_from_row(row: EntryRow) -> Result<Entry, StoreError> {
    let (
        transfer_id,
        leg_index,
        account_id,
        is_credit,
        amount_minor,
        currency_code,
        pending,
        balance_after_minor,
        posted_at,
    ) = row;
    Ok(Entry {
        transfer_id,
        leg_index: u32::try_from(leg_index)
            .map_err(|_| corrupt("leg index", &leg_index.to_string()))?,
        account_id,
        side: if is_credit { Side::Credit } else { Side::Debit },
        amount_minor,
        currency: currency(&currency_code)?,
        pending,
        balance_after_minor,
        posted_at,
    })
}

pub(crate) fn transfer_from_row(
    row: TransferRow,
    entries: Vec<Entry>,
) -> Result<Transfer, StoreError> {
    let (
        id,
        key,
        kind,
        status,
        target_id,
        account_id,
        amount_minor,
        timeout_seconds,
        expires_at,
        description,
        created_at,
    ) = row;
    Ok(Transfer {
        id,
        key,
        kind: TransferKind::parse(&kind).ok_or_else(|| corrupt("transfer kind", &kind))?,
        status: TransferStatus::parse(&status)
            .ok_or_else(|| corrupt("transfer status", &status))?,
        target_id,
        account_id,
        amount_minor,
        timeout_seconds: timeout_seconds
            .map(|seconds| {
                u64::try_from(seconds).map_err(|_| corrupt("timeout", &seconds.to_string()))
            })
            .transpose()?,
        expires_at,
        description,
        created_at,
        entries,
    })
}

/// Joins transfer rows with their entry rows (any order).
pub(crate) fn assemble_transfers(
    transfer_rows: Vec<TransferRow>,
    entry_rows: Vec<EntryRow>,
) -> Result<Vec<Transfer>, StoreError> {
    let mut entries_by_transfer: HashMap<i64, Vec<Entry>> = HashMap::new();
    for row in entry_rows {
        let entry = entry_from_row(row)?;
        entries_by_transfer
            .entry(entry.transfer_id)
            .or_default()
            .push(entry);
    }
    transfer_rows
        .into_iter()
        .map(|row| {
            let mut entries = entries_by_transfer.remove(&row.0).unwrap_or_default();
            entries.sort_by_key(|entry| entry.leg_index);
            transfer_from_row(row, entries)
        })
        .collect()
}

/// The columns of one transfer, ready to bind.
pub(crate) fn transfer_columns(transfer: &Transfer) -> Result<TransferRow, StoreError> {
    Ok((
        transfer.id,
        transfer.key.clone(),
        transfer.kind.as_str().to_owned(),
        transfer.status.as_str().to_owned(),
        transfer.target_id,
        transfer.account_id,
        transfer.amount_minor,
        transfer
            .timeout_seconds
            .map(i64::try_from)
            .transpose()
            .map_err(|_| StoreError::Corrupt("timeout out of range".to_owned()))?,
        transfer.expires_at,
        transfer.description.clone(),
        transfer.created_at,
    ))
}

pub(crate) fn database_error(error: sqlx::Error) -> StoreError {
    StoreError::Database(error.to_string())
}
