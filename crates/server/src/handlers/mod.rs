//! The route handlers: read the request, call the ledger, convert.

pub mod accounts;
pub mod agreements;
pub mod batches;
pub mod bills;
pub mod fees;
pub mod payments;
pub mod reconciliation;
pub mod system;
pub mod transfers;

use crate::error::ApiError;
use crate::model::TransferResponse;
use axum::Json;
use axum::http::StatusCode;
use ledger::{BatchItem, Operation};
use store::Ledger;
use tracing::info;

/// A created transfer, answered with 201.
pub type Created = (StatusCode, Json<TransferResponse>);

/// Submits one operation through the group committer and answers with the
/// transfer it made (or, for a retried key, made before).
pub async fn submit_one(ledger: &Ledger, operation: Operation) -> Result<Created, ApiError> {
    let kind = operation.kind().as_str();
    let results = ledger.submit(vec![BatchItem::single(operation)]).await?;
    let transfer = results
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::Internal("the ledger returned no result".to_owned()))??;
    info!(
        transfer_id = transfer.id,
        key = %transfer.key,
        kind,
        status = transfer.status.as_str(),
        "operation committed"
    );
    Ok((
        StatusCode::CREATED,
        Json(TransferResponse::try_from(transfer)?),
    ))
}
