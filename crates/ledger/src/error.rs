use crate::{AccountId, TransferId};

/// Why one operation of a batch was refused. Each has a stable code
/// ([`LedgerError::code`]) that the API returns to callers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    #[error("idempotency key must be 1 to {max} characters")]
    InvalidKey { max: usize },
    #[error("a transfer needs between 2 and {max} legs, got {count}")]
    LegCount { count: usize, max: usize },
    #[error("amounts must be positive, got {amount_minor}")]
    InvalidAmount { amount_minor: i64 },
    #[error("description longer than {max} characters")]
    DescriptionTooLong { max: usize },
    #[error("account {0} appears on both sides of the transfer")]
    AccountOnBothSides(AccountId),
    #[error(
        "debits and credits differ in {currency}: debits {debits_minor}, credits {credits_minor}"
    )]
    UnbalancedTransfer {
        currency: &'static str,
        debits_minor: i128,
        credits_minor: i128,
    },
    #[error("account {account_id} holds {account_currency}, the leg says {leg_currency}")]
    CurrencyMismatch {
        account_id: AccountId,
        account_currency: &'static str,
        leg_currency: &'static str,
    },
    #[error("account {0} not found")]
    AccountNotFound(AccountId),
    #[error("account {account_id} has {available_minor} available, needs {required_minor}")]
    InsufficientFunds {
        account_id: AccountId,
        available_minor: i64,
        required_minor: i64,
    },
    #[error("account {account_id} has {frozen_minor} frozen, cannot unfreeze {amount_minor}")]
    InsufficientFrozen {
        account_id: AccountId,
        frozen_minor: i64,
        amount_minor: i64,
    },
    #[error("idempotency key already used with a different {field}")]
    DuplicateKeyConflict { field: String },
    #[error("transfer {0} not found")]
    TransferNotFound(TransferId),
    #[error("transfer {0} is not a pending transfer")]
    NotPending(TransferId),
    #[error("pending transfer {id} is already {status}")]
    PendingAlreadyResolved {
        id: TransferId,
        status: &'static str,
    },
    #[error("pending transfer {0} has expired")]
    PendingExpired(TransferId),
    #[error("cannot post {amount_minor}: pending transfer reserved {pending_minor}")]
    PostExceedsPending {
        amount_minor: i64,
        pending_minor: i64,
    },
    #[error("a partial post needs a pending transfer of one debit and one credit leg")]
    PartialPostNeedsTwoLegs,
    #[error("transfer {0} cannot be reversed: only posted transfers can")]
    NotReversible(TransferId),
    #[error("transfer {0} is already reversed")]
    AlreadyReversed(TransferId),
    #[error("a pending timeout must be 1 to {max} seconds")]
    InvalidTimeout { max: u64 },
    #[error("another operation linked with this one failed")]
    LinkedOperationFailed,
    #[error("the last operation of the batch opens a linked chain that is never closed")]
    LinkedChainOpen,
    #[error("amount overflow")]
    Overflow,
}

impl LedgerError {
    /// The stable, machine-readable code of this error.
    pub fn code(&self) -> &'static str {
        match self {
            LedgerError::InvalidKey { .. } => "INVALID_KEY",
            LedgerError::LegCount { .. } => "INVALID_LEG_COUNT",
            LedgerError::InvalidAmount { .. } => "INVALID_AMOUNT",
            LedgerError::DescriptionTooLong { .. } => "DESCRIPTION_TOO_LONG",
            LedgerError::AccountOnBothSides(_) => "ACCOUNT_ON_BOTH_SIDES",
            LedgerError::UnbalancedTransfer { .. } => "UNBALANCED_TRANSFER",
            LedgerError::CurrencyMismatch { .. } => "CURRENCY_MISMATCH",
            LedgerError::AccountNotFound(_) => "ACCOUNT_NOT_FOUND",
            LedgerError::InsufficientFunds { .. } => "INSUFFICIENT_FUNDS",
            LedgerError::InsufficientFrozen { .. } => "INSUFFICIENT_FROZEN",
            LedgerError::DuplicateKeyConflict { .. } => "DUPLICATE_KEY_CONFLICT",
            LedgerError::TransferNotFound(_) => "TRANSFER_NOT_FOUND",
            LedgerError::NotPending(_) => "NOT_PENDING",
            LedgerError::PendingAlreadyResolved { .. } => "PENDING_ALREADY_RESOLVED",
            LedgerError::PendingExpired(_) => "PENDING_EXPIRED",
            LedgerError::PostExceedsPending { .. } => "POST_EXCEEDS_PENDING",
            LedgerError::PartialPostNeedsTwoLegs => "PARTIAL_POST_NEEDS_TWO_LEGS",
            LedgerError::NotReversible(_) => "NOT_REVERSIBLE",
            LedgerError::AlreadyReversed(_) => "ALREADY_REVERSED",
            LedgerError::InvalidTimeout { .. } => "INVALID_TIMEOUT",
            LedgerError::LinkedOperationFailed => "LINKED_OPERATION_FAILED",
            LedgerError::LinkedChainOpen => "LINKED_CHAIN_OPEN",
            LedgerError::Overflow => "AMOUNT_OVERFLOW",
        }
    }
}
