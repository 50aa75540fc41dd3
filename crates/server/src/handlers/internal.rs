//! `GET /v1/recon/internal`: internal reconciliation (内部对账 / 账证核对),
//! our orders against our own journal, for operators.

use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use recon::{InternalFinding, InternalReport, ReconStore};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// How many findings of one code there are.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct InternalCountResponse {
    /// PAYMENT_WITHOUT_TRANSFER, TRANSFER_WITHOUT_ORDER, AMOUNT_DIFFERS...
    pub code: String,
    pub description: String,
    pub count: u64,
}

/// One finding: an order and the transfer it expects, or a transfer and
/// the record its key names.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct InternalFindingResponse {
    pub code: String,
    /// payment, instruction, channel_order, refund, refund_part,
    /// settlement_batch, discrepancy or transfer.
    pub subject: String,
    pub record_id: Option<i64>,
    /// The governing order's status, when it exists.
    pub record_status: Option<String>,
    pub transfer_id: Option<i64>,
    /// The transfer's key, or the key the order expects.
    pub key: String,
    pub expected_minor: Option<i64>,
    pub actual_minor: Option<i64>,
    pub currency: Option<String>,
}

/// What the check looked at and what it found.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct InternalReportResponse {
    /// True when nothing was found.
    pub clean: bool,
    /// Final (SUCCESS or FAILED) payments and refunds, all batches.
    pub payments_checked: u64,
    pub refunds_checked: u64,
    pub batches_checked: u64,
    pub transfers_checked: u64,
    /// Operators' own transfers (keys under `manual-`): counted, not findings.
    pub manual_transfers: u64,
    /// Every code found, with how many.
    pub counts: Vec<InternalCountResponse>,
    /// The first 1,000 findings of each code.
    pub findings: Vec<InternalFindingResponse>,
}

impl From<&InternalFinding> for InternalFindingResponse {
    fn from(finding: &InternalFinding) -> Self {
        InternalFindingResponse {
            code: finding.code.as_str().to_owned(),
            subject: finding.subject.as_str().to_owned(),
            record_id: finding.record_id,
            record_status: finding.record_status.clone(),
            transfer_id: finding.transfer_id,
            key: finding.key.clone(),
            expected_minor: finding.expected_minor,
            actual_minor: finding.actual_minor,
            currency: finding.currency.clone(),
        }
    }
}

impl From<&InternalReport> for InternalReportResponse {
    fn from(report: &InternalReport) -> Self {
        InternalReportResponse {
            clean: report.is_clean(),
            payments_checked: report.payments_checked,
            refunds_checked: report.refunds_checked,
            batches_checked: report.batches_checked,
            transfers_checked: report.transfers_checked,
            manual_transfers: report.manual_transfers,
            counts: report
                .counts
                .iter()
                .map(|(code, count)| InternalCountResponse {
                    code: code.as_str().to_owned(),
                    description: code.description().to_owned(),
                    count: *count,
                })
                .collect(),
            findings: report.findings.iter().map(Into::into).collect(),
        }
    }
}

/// Every successful payment, refund and posted settlement batch against
/// its journal transfers, and every transfer against its business record.
#[utoipa::path(
    get,
    path = "/v1/recon/internal",
    tag = "reconciliation",
    responses(
        (status = 200, description = "The report; `clean` is false when anything was found", body = InternalReportResponse),
        (status = 500, description = "STORE_ERROR", body = ErrorBody),
    )
)]
pub async fn check(
    State(state): State<AppState>,
) -> Result<Json<InternalReportResponse>, ApiError> {
    let report = state.store().internal_check().await?;
    Ok(Json(InternalReportResponse::from(&report)))
}

/// The internal check's part of the OpenAPI document, merged into it by
/// `openapi()`.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(check),
    components(schemas(InternalReportResponse, InternalCountResponse, InternalFindingResponse))
)]
pub struct InternalDoc;
