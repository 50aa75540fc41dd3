use crate::error::{ApiError, ErrorBody};
use crate::model::{CheckResponse, HealthResponse};
use axum::Json;
use axum::extract::State;
use ledger::LedgerStore;
use store::Ledger;
use tracing::{info, warn};

/// Liveness.
#[utoipa::path(
    get,
    path = "/health",
    tag = "system",
    responses((status = 200, description = "The server is up", body = HealthResponse))
)]
pub async fn health() -> Json<HealthResponse> {
    Json(HealthResponse {
        status: "ok".to_owned(),
    })
}

/// Re-derives every total from the journal and reports broken invariants.
#[utoipa::path(
    get,
    path = "/v1/ledger/check",
    tag = "ledger",
    responses(
        (status = 200, description = "The check ran; `sound` says whether it passed", body = CheckResponse),
        (status = 500, description = "The store failed", body = ErrorBody),
    )
)]
pub async fn check(State(ledger): State<Ledger>) -> Result<Json<CheckResponse>, ApiError> {
    let report = ledger.store().check().await?;
    if report.is_sound() {
        info!(
            accounts = report.accounts_checked,
            transfers = report.transfers_checked,
            "ledger check passed"
        );
    } else {
        warn!(
            violations = report.violations.len(),
            "ledger check found violations"
        );
    }
    Ok(Json(report.into()))
}

/// This document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "system",
    responses((status = 200, description = "The OpenAPI 3 document", content_type = "application/json"))
)]
pub async fn openapi_document() -> Json<utoipa::openapi::OpenApi> {
    Json(crate::openapi())
}
