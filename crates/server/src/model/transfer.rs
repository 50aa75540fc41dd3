use super::{Side, TransferKind, TransferStatus, parse_currency};
use crate::error::ApiError;
use crate::timestamp;
use ledger::{Leg, Operation, TimestampMicros, TransferMode};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One leg of a requested transfer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LegRequest {
    pub account_id: i64,
    pub side: Side,
    /// Positive, in minor units of `currency`.
    #[schema(example = 1000)]
    pub amount_minor: i64,
    #[schema(example = "CNY")]
    pub currency: String,
}

impl LegRequest {
    fn into_leg(self) -> Result<Leg, ApiError> {
        Ok(Leg {
            account_id: self.account_id,
            side: self.side.into(),
            amount_minor: self.amount_minor,
            currency: parse_currency(&self.currency)?,
        })
    }
}

/// A balanced transfer between accounts, posted at once or reserved as
/// pending (two-phase).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferRequest {
    /// Idempotency key: a retry with the same key and fields returns the
    /// first result.
    #[schema(example = "order-1001-pay")]
    pub key: String,
    pub legs: Vec<LegRequest>,
    /// Reserve instead of posting; post or void later.
    #[serde(default)]
    pub pending: bool,
    /// Pending only: void automatically after this many seconds.
    pub timeout_seconds: Option<u64>,
    #[serde(default)]
    pub description: String,
}

/// Builds a transfer operation from its request fields.
pub fn transfer_operation(
    key: String,
    legs: Vec<LegRequest>,
    pending: bool,
    timeout_seconds: Option<u64>,
    description: String,
) -> Result<Operation, ApiError> {
    let mode = match (pending, timeout_seconds) {
        (true, timeout_seconds) => TransferMode::Pending { timeout_seconds },
        (false, None) => TransferMode::Posted,
        (false, Some(_)) => {
            return Err(ApiError::Invalid {
                code: "INVALID_TIMEOUT",
                message: "timeout_seconds applies only to a pending transfer".to_owned(),
            });
        }
    };
    let legs = legs
        .into_iter()
        .map(LegRequest::into_leg)
        .collect::<Result<Vec<Leg>, ApiError>>()?;
    Ok(Operation::Transfer {
        key,
        legs,
        mode,
        description,
    })
}

impl TransferRequest {
    pub fn into_operation(self) -> Result<Operation, ApiError> {
        transfer_operation(
            self.key,
            self.legs,
            self.pending,
            self.timeout_seconds,
            self.description,
        )
    }
}

/// Posts a pending transfer, in full or (two legs only) in part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PostPendingRequest {
    pub key: String,
    /// Absent: post all of it. What is not posted is released.
    pub amount_minor: Option<i64>,
}

/// Voids a pending transfer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VoidPendingRequest {
    pub key: String,
}

/// Reverses a posted transfer with a new one on the other sides.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReverseRequest {
    pub key: String,
    #[serde(default)]
    pub description: String,
}

/// Freezes (冻结) or unfreezes part of an account's balance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HoldRequest {
    pub key: String,
    /// Positive, in the account's minor units.
    pub amount_minor: i64,
    #[serde(default)]
    pub description: String,
}

impl HoldRequest {
    pub fn into_freeze(self, account_id: i64) -> Operation {
        Operation::Freeze {
            key: self.key,
            account_id,
            amount_minor: self.amount_minor,
            description: self.description,
        }
    }

    pub fn into_unfreeze(self, account_id: i64) -> Operation {
        Operation::Unfreeze {
            key: self.key,
            account_id,
            amount_minor: self.amount_minor,
            description: self.description,
        }
    }
}

/// One journal entry a transfer wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EntryResponse {
    pub leg_index: u32,
    pub account_id: i64,
    pub side: Side,
    pub amount_minor: i64,
    #[schema(example = "CNY")]
    pub currency: String,
    /// A reservation of a pending transfer.
    pub pending: bool,
    /// The account's posted balance right after this entry.
    pub balance_after_minor: i64,
    /// RFC 3339.
    pub posted_at: String,
}

impl TryFrom<ledger::Entry> for EntryResponse {
    type Error = ApiError;

    fn try_from(entry: ledger::Entry) -> Result<Self, ApiError> {
        Ok(EntryResponse {
            leg_index: entry.leg_index,
            account_id: entry.account_id,
            side: entry.side.into(),
            amount_minor: entry.amount_minor,
            currency: entry.currency.code().to_owned(),
            pending: entry.pending,
            balance_after_minor: entry.balance_after_minor,
            posted_at: timestamp::format(entry.posted_at)?,
        })
    }
}

/// A stored transfer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TransferResponse {
    pub id: i64,
    pub key: String,
    pub kind: TransferKind,
    pub status: TransferStatus,
    /// The pending transfer posted or voided, or the transfer reversed.
    pub target_id: Option<i64>,
    /// The account frozen or unfrozen.
    pub account_id: Option<i64>,
    /// The amount frozen or unfrozen, or asked to be posted (null: all).
    pub amount_minor: Option<i64>,
    pub timeout_seconds: Option<u64>,
    /// RFC 3339.
    pub expires_at: Option<String>,
    pub description: String,
    /// RFC 3339.
    pub created_at: String,
    pub entries: Vec<EntryResponse>,
}

impl TryFrom<ledger::Transfer> for TransferResponse {
    type Error = ApiError;

    fn try_from(transfer: ledger::Transfer) -> Result<Self, ApiError> {
        let expires_at: Option<TimestampMicros> = transfer.expires_at;
        Ok(TransferResponse {
            id: transfer.id,
            key: transfer.key,
            kind: transfer.kind.into(),
            status: transfer.status.into(),
            target_id: transfer.target_id,
            account_id: transfer.account_id,
            amount_minor: transfer.amount_minor,
            timeout_seconds: transfer.timeout_seconds,
            expires_at: timestamp::format_optional(expires_at)?,
            description: transfer.description,
            created_at: timestamp::format(transfer.created_at)?,
            entries: transfer
                .entries
                .into_iter()
                .map(EntryResponse::try_from)
                .collect::<Result<_, _>>()?,
        })
    }
}
