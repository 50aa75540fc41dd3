use super::{LegRequest, TransferResponse, transfer_operation};
use crate::error::{ApiError, ErrorBody};
use ledger::{BatchItem, Operation};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Many operations in one request. A run of operations with `linked: true`,
/// closed by the next operation without it, succeeds or fails as one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    /// At most 8190.
    pub operations: Vec<BatchOperation>,
}

/// One operation of a batch, tagged by `type`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum BatchOperation {
    Transfer(BatchTransfer),
    PostPending(BatchPostPending),
    VoidPending(BatchVoidPending),
    Reverse(BatchReverse),
    Freeze(BatchHold),
    Unfreeze(BatchHold),
}

/// A transfer, as in `POST /v1/transfers`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchTransfer {
    pub key: String,
    pub legs: Vec<LegRequest>,
    #[serde(default)]
    pub pending: bool,
    pub timeout_seconds: Option<u64>,
    #[serde(default)]
    pub description: String,
    /// Links this operation with the next one.
    #[serde(default)]
    pub linked: bool,
}

/// Posts a pending transfer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchPostPending {
    pub key: String,
    pub pending_id: i64,
    pub amount_minor: Option<i64>,
    #[serde(default)]
    pub linked: bool,
}

/// Voids a pending transfer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchVoidPending {
    pub key: String,
    pub pending_id: i64,
    #[serde(default)]
    pub linked: bool,
}

/// Reverses a posted transfer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchReverse {
    pub key: String,
    pub transfer_id: i64,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub linked: bool,
}

/// Freezes or unfreezes part of an account's balance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchHold {
    pub key: String,
    pub account_id: i64,
    pub amount_minor: i64,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub linked: bool,
}

impl BatchOperation {
    /// Whether this operation is linked with the next one.
    pub fn linked(&self) -> bool {
        match self {
            BatchOperation::Transfer(op) => op.linked,
            BatchOperation::PostPending(op) => op.linked,
            BatchOperation::VoidPending(op) => op.linked,
            BatchOperation::Reverse(op) => op.linked,
            BatchOperation::Freeze(op) | BatchOperation::Unfreeze(op) => op.linked,
        }
    }

    /// The ledger's batch item for this operation.
    pub fn into_item(self) -> Result<BatchItem, ApiError> {
        let linked = self.linked();
        Ok(BatchItem {
            operation: self.into_operation()?,
            linked,
        })
    }

    fn into_operation(self) -> Result<Operation, ApiError> {
        Ok(match self {
            BatchOperation::Transfer(op) => transfer_operation(
                op.key,
                op.legs,
                op.pending,
                op.timeout_seconds,
                op.description,
            )?,
            BatchOperation::PostPending(op) => Operation::PostPending {
                key: op.key,
                pending_id: op.pending_id,
                amount_minor: op.amount_minor,
            },
            BatchOperation::VoidPending(op) => Operation::VoidPending {
                key: op.key,
                pending_id: op.pending_id,
            },
            BatchOperation::Reverse(op) => Operation::Reverse {
                key: op.key,
                transfer_id: op.transfer_id,
                description: op.description,
            },
            BatchOperation::Freeze(op) => Operation::Freeze {
                key: op.key,
                account_id: op.account_id,
                amount_minor: op.amount_minor,
                description: op.description,
            },
            BatchOperation::Unfreeze(op) => Operation::Unfreeze {
                key: op.key,
                account_id: op.account_id,
                amount_minor: op.amount_minor,
                description: op.description,
            },
        })
    }
}

impl BatchRequest {
    /// The ledger's batch items, in order. An operation that cannot be
    /// converted fails the whole request, naming its index, before anything
    /// is submitted.
    pub fn into_items(self) -> Result<Vec<BatchItem>, ApiError> {
        self.operations
            .into_iter()
            .enumerate()
            .map(|(index, operation)| {
                operation
                    .into_item()
                    .map_err(|error| at_index(index, error))
            })
            .collect()
    }
}

fn at_index(index: usize, error: ApiError) -> ApiError {
    match error {
        ApiError::Invalid { code, message } => ApiError::Invalid {
            code,
            message: format!("operations[{index}]: {message}"),
        },
        other => other,
    }
}

/// The outcome of one batch operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BatchResult {
    /// The transfer the operation made (or, for a retried key, made before).
    Ok(TransferResponse),
    /// Why the operation was refused; it changed nothing.
    Error(ErrorBody),
}

/// One result per operation, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BatchResponse {
    pub results: Vec<BatchResult>,
}
