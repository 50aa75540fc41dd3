use crate::{AccountId, Side, TimestampMicros};
use money::Currency;

/// A transfer's identifier, assigned by the store in commit order.
pub type TransferId = i64;

/// Most legs one transfer may have.
pub const LEGS_MAX: usize = 64;
/// Longest idempotency key, in characters.
pub const KEY_LENGTH_MAX: usize = 128;
/// Longest description, in characters.
pub const DESCRIPTION_LENGTH_MAX: usize = 256;
/// Longest a pending transfer may wait before it is voided: 30 days.
pub const PENDING_TIMEOUT_SECONDS_MAX: u64 = 30 * 24 * 3600;

/// One leg of a transfer as requested: an amount debited or credited to an
/// account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leg {
    pub account_id: AccountId,
    pub side: Side,
    pub amount_minor: i64,
    pub currency: Currency,
}

/// What a transfer does to the balances.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferMode {
    /// Posted at once.
    Posted,
    /// Reserved, to be posted or voided later; voided automatically after
    /// the timeout, if there is one.
    Pending { timeout_seconds: Option<u64> },
}

/// One operation of a batch. Every operation carries an idempotency key: a
/// retried operation with the same key and the same fields returns the first
/// result and changes nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operation {
    Transfer {
        key: String,
        legs: Vec<Leg>,
        mode: TransferMode,
        description: String,
    },
    /// Post a pending transfer, in full or (two legs only) in part; what is
    /// not posted is released.
    PostPending {
        key: String,
        pending_id: TransferId,
        amount_minor: Option<i64>,
    },
    VoidPending {
        key: String,
        pending_id: TransferId,
    },
    /// A new transfer with every leg of a posted transfer on the other side.
    Reverse {
        key: String,
        transfer_id: TransferId,
        description: String,
    },
    /// 冻结 — make part of the available balance unavailable.
    Freeze {
        key: String,
        account_id: AccountId,
        amount_minor: i64,
        description: String,
    },
    Unfreeze {
        key: String,
        account_id: AccountId,
        amount_minor: i64,
        description: String,
    },
}

impl Operation {
    pub fn key(&self) -> &str {
        match self {
            Operation::Transfer { key, .. }
            | Operation::PostPending { key, .. }
            | Operation::VoidPending { key, .. }
            | Operation::Reverse { key, .. }
            | Operation::Freeze { key, .. }
            | Operation::Unfreeze { key, .. } => key,
        }
    }

    pub fn kind(&self) -> TransferKind {
        match self {
            Operation::Transfer {
                mode: TransferMode::Posted,
                ..
            } => TransferKind::Transfer,
            Operation::Transfer {
                mode: TransferMode::Pending { .. },
                ..
            } => TransferKind::Pending,
            Operation::PostPending { .. } => TransferKind::PostPending,
            Operation::VoidPending { .. } => TransferKind::VoidPending,
            Operation::Reverse { .. } => TransferKind::Reversal,
            Operation::Freeze { .. } => TransferKind::Freeze,
            Operation::Unfreeze { .. } => TransferKind::Unfreeze,
        }
    }
}

/// One item of a batch. A run of items whose `linked` is true, closed by the
/// next item whose `linked` is false, succeeds or fails as one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchItem {
    pub operation: Operation,
    pub linked: bool,
}

impl BatchItem {
    pub fn single(operation: Operation) -> Self {
        BatchItem {
            operation,
            linked: false,
        }
    }
}

/// The kind of a stored transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransferKind {
    Transfer,
    Pending,
    PostPending,
    VoidPending,
    Reversal,
    Freeze,
    Unfreeze,
}

impl TransferKind {
    pub const ALL: [TransferKind; 7] = [
        TransferKind::Transfer,
        TransferKind::Pending,
        TransferKind::PostPending,
        TransferKind::VoidPending,
        TransferKind::Reversal,
        TransferKind::Freeze,
        TransferKind::Unfreeze,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TransferKind::Transfer => "transfer",
            TransferKind::Pending => "pending",
            TransferKind::PostPending => "post_pending",
            TransferKind::VoidPending => "void_pending",
            TransferKind::Reversal => "reversal",
            TransferKind::Freeze => "freeze",
            TransferKind::Unfreeze => "unfreeze",
        }
    }

    pub fn parse(text: &str) -> Option<TransferKind> {
        TransferKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == text)
    }
}

/// Where a stored transfer stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransferStatus {
    /// In the balances for good.
    Posted,
    /// Reserved, waiting for a post or a void.
    Pending,
    /// A pending transfer that was posted (by a `post_pending` transfer).
    PendingPosted,
    /// A pending transfer that was voided, by request or by its timeout.
    Voided,
    /// A posted transfer undone by a reversal transfer.
    Reversed,
}

impl TransferStatus {
    pub const ALL: [TransferStatus; 5] = [
        TransferStatus::Posted,
        TransferStatus::Pending,
        TransferStatus::PendingPosted,
        TransferStatus::Voided,
        TransferStatus::Reversed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TransferStatus::Posted => "posted",
            TransferStatus::Pending => "pending",
            TransferStatus::PendingPosted => "pending_posted",
            TransferStatus::Voided => "voided",
            TransferStatus::Reversed => "reversed",
        }
    }

    pub fn parse(text: &str) -> Option<TransferStatus> {
        TransferStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == text)
    }
}

/// One append-only line of the journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub transfer_id: TransferId,
    pub leg_index: u32,
    pub account_id: AccountId,
    pub side: Side,
    pub amount_minor: i64,
    pub currency: Currency,
    /// A reservation of a pending transfer: it moves the pending totals, not
    /// the posted ones.
    pub pending: bool,
    /// The account's posted (ledger) balance right after this entry.
    pub balance_after_minor: i64,
    pub posted_at: TimestampMicros,
}

/// A transfer as stored: the request fields that identify it (compared on an
/// idempotent retry) and the entries it wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transfer {
    pub id: TransferId,
    pub key: String,
    pub kind: TransferKind,
    pub status: TransferStatus,
    /// The pending transfer posted or voided, or the transfer reversed.
    pub target_id: Option<TransferId>,
    /// The account frozen or unfrozen.
    pub account_id: Option<AccountId>,
    /// The amount frozen or unfrozen, or asked to be posted (`None`: all).
    pub amount_minor: Option<i64>,
    pub timeout_seconds: Option<u64>,
    pub expires_at: Option<TimestampMicros>,
    pub description: String,
    pub created_at: TimestampMicros,
    pub entries: Vec<Entry>,
}
