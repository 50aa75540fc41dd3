//! The route handlers: read the request, call the ledger, convert.

pub mod accounts;
pub mod agreements;
pub mod batches;
pub mod bills;
pub mod collection_batches;
pub mod escrows;
pub mod fee_accounts;
pub mod fee_rules;
pub mod fees;
pub mod internal;
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

/// Refuses a key of the engine's, settlement's or reconciliation's own
/// (`recon::is_reserved_key`): free transfers take other keys, operators'
/// under `manual-`.
pub fn refuse_reserved_key(operation: &Operation) -> Result<(), ApiError> {
    let key = operation.key();
    if recon::is_reserved_key(key) {
        return Err(ApiError::Invalid {
            code: "RESERVED_KEY",
            message: format!(
                "key {key:?} follows a pattern the payment engine, settlement or reconciliation \
                 derives from its records; free transfers take other keys (operators': {}...)",
                recon::MANUAL_KEY_PREFIX
            ),
        });
    }
    Ok(())
}

/// Submits one operation through the group committer and answers with the
/// transfer it made (or, for a retried key, made before).
pub async fn submit_one(ledger: &Ledger, operation: Operation) -> Result<Created, ApiError> {
    refuse_reserved_key(&operation)?;
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
