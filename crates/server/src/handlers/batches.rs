use crate::error::{ApiError, ErrorBody};
use crate::extract::ApiJson;
use crate::model::{BatchRequest, BatchResponse, BatchResult, TransferResponse};
use axum::Json;
use axum::extract::State;
use ledger::{BATCH_OPERATIONS_MAX, LedgerError, StoreError, Transfer};
use store::Ledger;
use tracing::info;

fn batch_result(result: Result<Transfer, LedgerError>) -> Result<BatchResult, ApiError> {
    Ok(match result {
        Ok(transfer) => BatchResult::Ok(TransferResponse::try_from(transfer)?),
        Err(error) => BatchResult::Error(ApiError::Ledger(error).body()),
    })
}

/// Applies many operations in order, in one commit; linked runs succeed or
/// fail together.
#[utoipa::path(
    post,
    path = "/v1/batches",
    tag = "transfers",
    request_body = BatchRequest,
    responses(
        (status = 200, description = "One result per operation, in order", body = BatchResponse),
        (status = 400, description = "MALFORMED_REQUEST", body = ErrorBody),
        (status = 422, description = "BATCH_TOO_LARGE, UNKNOWN_CURRENCY (naming the operation), RESERVED_KEY", body = ErrorBody),
    )
)]
pub async fn submit(
    State(ledger): State<Ledger>,
    ApiJson(request): ApiJson<BatchRequest>,
) -> Result<Json<BatchResponse>, ApiError> {
    let count = request.operations.len();
    if count > BATCH_OPERATIONS_MAX {
        return Err(ApiError::Store(StoreError::BatchTooLarge {
            count,
            max: BATCH_OPERATIONS_MAX,
        }));
    }
    let items = request.into_items()?;
    for item in &items {
        super::refuse_reserved_key(&item.operation)?;
    }
    let results = ledger.submit(items).await?;
    let refused = results.iter().filter(|result| result.is_err()).count();
    info!(operations = count, refused, "batch committed");
    let results = results
        .into_iter()
        .map(batch_result)
        .collect::<Result<_, _>>()?;
    Ok(Json(BatchResponse { results }))
}
