//! The operator's queue of discrepancies (差错) found by reconciliation.

use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::model::*;
use crate::reconciliation::{Actor, TreatmentError, TreatmentOutcome, close, treat};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use recon::{DiscrepancyQuery, DiscrepancyStatus, ReconStore, ReconStoreError, Treatment};

const LIST_LIMIT_DEFAULT: u32 = 100;

impl From<ReconStoreError> for ApiError {
    fn from(error: ReconStoreError) -> Self {
        match error {
            ReconStoreError::Store(store) => ApiError::from(store),
            other => ApiError::Invalid {
                code: other.code(),
                message: other.to_string(),
            },
        }
    }
}

impl From<TreatmentError> for ApiError {
    fn from(error: TreatmentError) -> Self {
        match error {
            TreatmentError::Recon(recon) => ApiError::from(recon),
            TreatmentError::Engine(engine) => ApiError::from(engine),
            other => ApiError::Invalid {
                code: other.code(),
                message: other.to_string(),
            },
        }
    }
}

fn invalid(code: &'static str, message: String) -> ApiError {
    ApiError::Invalid { code, message }
}

/// Discrepancies, oldest first, by status and channel.
#[utoipa::path(
    get,
    path = "/v1/recon/discrepancies",
    tag = "reconciliation",
    params(DiscrepancyListQuery),
    responses(
        (status = 200, description = "One page of discrepancies", body = Vec<DiscrepancyResponse>),
        (status = 422, description = "Unknown status", body = ErrorBody),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<DiscrepancyListQuery>,
) -> Result<Json<Vec<DiscrepancyResponse>>, ApiError> {
    let status = match query.status.as_deref() {
        Some(text) => Some(DiscrepancyStatus::parse(text).ok_or_else(|| {
            invalid(
                "INVALID_STATUS",
                format!("unknown discrepancy status {text:?}"),
            )
        })?),
        None => None,
    };
    let found = state
        .store()
        .discrepancies(&DiscrepancyQuery {
            channel: query.channel,
            status,
            after_id: query.after_id.unwrap_or(0),
            limit: query.limit.unwrap_or(LIST_LIMIT_DEFAULT),
        })
        .await?;
    Ok(Json(found.iter().map(DiscrepancyResponse::from).collect()))
}

async fn load(state: &AppState, id: i64) -> Result<recon::Discrepancy, ApiError> {
    state.store().discrepancy(id).await?.ok_or_else(|| {
        ApiError::from(engine::EngineError::Order(engine::OrderError::NotFound {
            entity: "discrepancy",
            id,
        }))
    })
}

/// One discrepancy with the log of what was done about it.
#[utoipa::path(
    get,
    path = "/v1/recon/discrepancies/{id}",
    tag = "reconciliation",
    params(("id" = i64, Path, description = "Discrepancy id")),
    responses(
        (status = 200, description = "The discrepancy", body = DiscrepancyDetailResponse),
        (status = 404, description = "No such discrepancy", body = ErrorBody),
    )
)]
pub async fn get(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<DiscrepancyDetailResponse>, ApiError> {
    let discrepancy = load(&state, id).await?;
    let actions = state.store().actions(id).await?;
    Ok(Json(DiscrepancyDetailResponse {
        discrepancy: DiscrepancyResponse::from(&discrepancy),
        actions: actions
            .iter()
            .map(DiscrepancyActionResponse::from)
            .collect(),
    }))
}

/// An operator treats, escalates or closes a discrepancy; the action is
/// logged with the operator's name and reason, and applied once.
#[utoipa::path(
    post,
    path = "/v1/recon/discrepancies/{id}/actions",
    tag = "reconciliation",
    params(("id" = i64, Path, description = "Discrepancy id")),
    request_body = DiscrepancyActionRequest,
    responses(
        (status = 200, description = "What the action did", body = DiscrepancyActionResult),
        (status = 404, description = "No such discrepancy", body = ErrorBody),
        (status = 422, description = "Already settled, or the treatment does not apply", body = ErrorBody),
    )
)]
pub async fn act(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
    ApiJson(request): ApiJson<DiscrepancyActionRequest>,
) -> Result<Json<DiscrepancyActionResult>, ApiError> {
    if request.operator.trim().is_empty() || request.reason.trim().is_empty() {
        return Err(invalid(
            "OPERATOR_AND_REASON_REQUIRED",
            "an operator action needs the operator's name and a reason".to_owned(),
        ));
    }
    let discrepancy = load(&state, id).await?;
    let name = format!("operator:{}", request.operator.trim());
    let actor = Actor {
        name: &name,
        reason: request.reason.trim(),
    };
    let now = store::now_micros();
    let outcome = match request.action {
        OperatorAction::Close => close(&state, &discrepancy, &actor, now).await?,
        OperatorAction::Escalate => {
            treat(&state, &discrepancy, Treatment::Escalate, &actor, now).await?
        }
        OperatorAction::Treat => {
            let treatment = match request.treatment.as_deref() {
                Some(text) => Treatment::parse(text).ok_or_else(|| {
                    invalid("INVALID_TREATMENT", format!("unknown treatment {text:?}"))
                })?,
                None => discrepancy.treatment,
            };
            treat(&state, &discrepancy, treatment, &actor, now).await?
        }
    };
    let (applied, note) = match outcome {
        TreatmentOutcome::Applied { note, .. } => (true, note),
        TreatmentOutcome::Unchanged { note } => (false, note),
    };
    let discrepancy = load(&state, id).await?;
    Ok(Json(DiscrepancyActionResult {
        applied,
        note,
        discrepancy: DiscrepancyResponse::from(&discrepancy),
    }))
}
