use super::{Created, submit_one};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath};
use crate::model::{
    PostPendingRequest, ReverseRequest, TransferRequest, TransferResponse, VoidPendingRequest,
};
use axum::Json;
use axum::extract::State;
use ledger::{LedgerError, LedgerStore, Operation, TransferId};
use store::Ledger;

/// Makes a balanced transfer, posted at once or pending.
#[utoipa::path(
    post,
    path = "/v1/transfers",
    tag = "transfers",
    request_body = TransferRequest,
    responses(
        (status = 201, description = "The transfer (for a retried key: the first one)", body = TransferResponse),
        (status = 400, description = "MALFORMED_REQUEST: bad JSON, a missing field, an amount outside 64 bits", body = ErrorBody),
        (status = 404, description = "ACCOUNT_NOT_FOUND: a leg names an unknown account", body = ErrorBody),
        (status = 409, description = "INSUFFICIENT_FUNDS, DUPLICATE_KEY_CONFLICT", body = ErrorBody),
        (status = 422, description = "UNBALANCED_TRANSFER, CURRENCY_MISMATCH, INVALID_AMOUNT, INVALID_LEG_COUNT, INVALID_KEY, RESERVED_KEY, UNKNOWN_CURRENCY, ...", body = ErrorBody),
    )
)]
pub async fn create(
    State(ledger): State<Ledger>,
    ApiJson(request): ApiJson<TransferRequest>,
) -> Result<Created, ApiError> {
    submit_one(&ledger, request.into_operation()?).await
}

/// One transfer with its entries.
#[utoipa::path(
    get,
    path = "/v1/transfers/{id}",
    tag = "transfers",
    params(("id" = i64, Path, description = "Transfer id")),
    responses(
        (status = 200, description = "The transfer", body = TransferResponse),
        (status = 404, description = "TRANSFER_NOT_FOUND", body = ErrorBody),
    )
)]
pub async fn get(
    State(ledger): State<Ledger>,
    ApiPath(transfer_id): ApiPath<TransferId>,
) -> Result<Json<TransferResponse>, ApiError> {
    let transfer = ledger
        .store()
        .transfer(transfer_id)
        .await?
        .ok_or(ApiError::Ledger(LedgerError::TransferNotFound(transfer_id)))?;
    Ok(Json(TransferResponse::try_from(transfer)?))
}

/// Posts a pending transfer, in full or in part.
#[utoipa::path(
    post,
    path = "/v1/transfers/{id}/post",
    tag = "transfers",
    params(("id" = i64, Path, description = "Pending transfer id")),
    request_body = PostPendingRequest,
    responses(
        (status = 201, description = "The post_pending transfer", body = TransferResponse),
        (status = 404, description = "TRANSFER_NOT_FOUND", body = ErrorBody),
        (status = 409, description = "NOT_PENDING, PENDING_ALREADY_RESOLVED, PENDING_EXPIRED, INSUFFICIENT_FUNDS, DUPLICATE_KEY_CONFLICT", body = ErrorBody),
        (status = 422, description = "INVALID_AMOUNT, POST_EXCEEDS_PENDING, PARTIAL_POST_NEEDS_TWO_LEGS", body = ErrorBody),
    )
)]
pub async fn post_pending(
    State(ledger): State<Ledger>,
    ApiPath(pending_id): ApiPath<TransferId>,
    ApiJson(request): ApiJson<PostPendingRequest>,
) -> Result<Created, ApiError> {
    let operation = Operation::PostPending {
        key: request.key,
        pending_id,
        amount_minor: request.amount_minor,
    };
    submit_one(&ledger, operation).await
}

/// Voids a pending transfer, releasing its reservation.
#[utoipa::path(
    post,
    path = "/v1/transfers/{id}/void",
    tag = "transfers",
    params(("id" = i64, Path, description = "Pending transfer id")),
    request_body = VoidPendingRequest,
    responses(
        (status = 201, description = "The void_pending transfer", body = TransferResponse),
        (status = 404, description = "TRANSFER_NOT_FOUND", body = ErrorBody),
        (status = 409, description = "NOT_PENDING, PENDING_ALREADY_RESOLVED, DUPLICATE_KEY_CONFLICT", body = ErrorBody),
    )
)]
pub async fn void_pending(
    State(ledger): State<Ledger>,
    ApiPath(pending_id): ApiPath<TransferId>,
    ApiJson(request): ApiJson<VoidPendingRequest>,
) -> Result<Created, ApiError> {
    let operation = Operation::VoidPending {
        key: request.key,
        pending_id,
    };
    submit_one(&ledger, operation).await
}

/// Reverses a posted transfer with a new transfer on the other sides.
#[utoipa::path(
    post,
    path = "/v1/transfers/{id}/reverse",
    tag = "transfers",
    params(("id" = i64, Path, description = "Posted transfer id")),
    request_body = ReverseRequest,
    responses(
        (status = 201, description = "The reversal transfer", body = TransferResponse),
        (status = 404, description = "TRANSFER_NOT_FOUND", body = ErrorBody),
        (status = 409, description = "NOT_REVERSIBLE, ALREADY_REVERSED, INSUFFICIENT_FUNDS, DUPLICATE_KEY_CONFLICT", body = ErrorBody),
    )
)]
pub async fn reverse(
    State(ledger): State<Ledger>,
    ApiPath(transfer_id): ApiPath<TransferId>,
    ApiJson(request): ApiJson<ReverseRequest>,
) -> Result<Created, ApiError> {
    let operation = Operation::Reverse {
        key: request.key,
        transfer_id,
        description: request.description,
    };
    submit_one(&ledger, operation).await
}
