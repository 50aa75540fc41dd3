//! Collection batches (批量代扣) through the signed merchant API: upload a
//! batch file of debit lines with a deadline, follow it, and fetch its
//! return file (回盘) once it is CLOSED. A merchant only ever sees its own.

use crate::collection_batches::{self, Upload};
use crate::error::{ApiError, ErrorBody};
use crate::extract::ApiPath;
use crate::model::parse_currency;
use crate::signature::SignedRequest;
use crate::state::AppState;
use crate::timestamp;
use axum::Json;
use axum::extract::State;
use engine::{BatchLine, CollectionBatch, LineCounts};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// An upload.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitBatchRequest {
    /// The client's batch number, unique per merchant: a repeat with the
    /// same file and deadline answers the same batch.
    pub batch_no: String,
    /// ISO 4217 code of every line's amount.
    pub currency: String,
    /// RFC 3339: when the return file is due. Lines still PROCESSING then
    /// are FAILED (`DEADLINE_PASSED`).
    pub deadline: String,
    /// The batch file, CSV with a header row: `reference`, `agreement_no`,
    /// `member_id`, `amount` (major units), optional `priority` (higher
    /// first), and any columns of the client's own, which the return file
    /// repeats.
    pub file: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct BatchLineResponse {
    pub line_no: i64,
    pub reference: String,
    pub agreement_no: String,
    pub member_id: String,
    pub amount_minor: i64,
    pub priority: i64,
    /// WAITING, PROCESSING, SUCCESS or FAILED.
    pub status: String,
    pub payment_id: Option<i64>,
    pub failure_code: Option<String>,
    pub failure_message: Option<String>,
    /// For a line FAILED at the deadline: NOT_COLLECTED, or REFUNDED when
    /// its payment succeeded after all and a refund was raised.
    pub late: Option<String>,
    /// The refund raised for a late success; it waits in PENDING_REVIEW.
    pub late_refund_id: Option<i64>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct BatchResponse {
    pub id: i64,
    pub batch_no: String,
    pub currency: String,
    pub deadline: String,
    /// RUNNING or CLOSED.
    pub status: String,
    pub line_count: i64,
    pub total_minor: i64,
    pub file_sha256: String,
    pub created_at: String,
    pub closed_at: Option<String>,
    pub waiting: i64,
    pub processing: i64,
    pub success: i64,
    pub success_minor: i64,
    pub failed: i64,
    pub failed_minor: i64,
    pub late_refunded: i64,
    /// The lines, by line number (not in the answer to an upload).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lines: Vec<BatchLineResponse>,
}

impl BatchResponse {
    fn of(
        batch: &CollectionBatch,
        lines: &[BatchLine],
        with_lines: bool,
    ) -> Result<BatchResponse, ApiError> {
        let counts = LineCounts::of(lines);
        Ok(BatchResponse {
            id: batch.id,
            batch_no: batch.batch_no.clone(),
            currency: batch.currency.code().to_owned(),
            deadline: timestamp::format(batch.deadline)?,
            status: batch.status.as_str().to_owned(),
            line_count: batch.line_count,
            total_minor: batch.total_minor,
            file_sha256: batch.file_sha256.clone(),
            created_at: timestamp::format(batch.created_at)?,
            closed_at: timestamp::format_optional(batch.closed_at)?,
            waiting: counts.waiting,
            processing: counts.processing,
            success: counts.success,
            success_minor: counts.success_minor,
            failed: counts.failed,
            failed_minor: counts.failed_minor,
            late_refunded: counts.late_refunded,
            lines: if with_lines {
                lines
                    .iter()
                    .map(|line| BatchLineResponse {
                        line_no: line.line_no,
                        reference: line.reference.clone(),
                        agreement_no: line.agreement_no.clone(),
                        member_id: line.member_id.clone(),
                        amount_minor: line.amount_minor,
                        priority: line.priority,
                        status: line.status.as_str().to_owned(),
                        payment_id: line.payment_id,
                        failure_code: line.failure_code.clone(),
                        failure_message: line.failure_message.clone(),
                        late: line.late.map(|late| late.as_str().to_owned()),
                        late_refund_id: line.late_refund_id,
                    })
                    .collect()
            } else {
                Vec::new()
            },
        })
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ReturnFileResponse {
    pub batch_id: i64,
    pub batch_no: String,
    /// Hex SHA-256 of `csv`, to verify the file.
    pub sha256: String,
    /// The return file: the upload's header and lines, each with `result`,
    /// `result_code`, `result_message` and `payment_id` appended.
    pub csv: String,
}

/// Uploads a batch of debits (批量代扣) to run before its deadline.
///
/// The file is checked whole: a malformed line refuses it
/// (`INVALID_BATCH_FILE`, naming line and field) and nothing is stored.
/// Lines then run as `debit_collection` payments under their agreements,
/// highest priority first, in the background; a line whose agreement
/// cannot carry it FAILS with the agreement's code.
#[utoipa::path(
    post,
    path = "/v1/collection-batches",
    tag = "collection batches",
    request_body = SubmitBatchRequest,
    params(
        ("x-paycore-merchant" = String, Header, description = "Merchant id"),
        ("x-paycore-timestamp" = i64, Header, description = "Unix seconds"),
        ("x-paycore-nonce" = String, Header, description = "Unique per request, up to 64 bytes"),
        ("x-paycore-signature" = String, Header, description = "Hex HMAC-SHA256 of the canonical string"),
    ),
    responses(
        (status = 200, description = "The batch, RUNNING (or as it stands, for a repeat)", body = BatchResponse),
        (status = 400, description = "MALFORMED_REQUEST (also a deadline that is not RFC 3339)", body = ErrorBody),
        (status = 401, description = "Signature refused", body = ErrorBody),
        (status = 409, description = "REFERENCE_CONFLICT: the batch number was used with another file, currency or deadline", body = ErrorBody),
        (status = 422, description = "INVALID_BATCH_FILE, INVALID_BATCH (a deadline not ahead, a bad batch number), UNKNOWN_CURRENCY", body = ErrorBody),
    )
)]
pub async fn submit(
    State(state): State<AppState>,
    signed: SignedRequest,
) -> Result<Json<BatchResponse>, ApiError> {
    let body: SubmitBatchRequest = signed.json()?;
    let upload = Upload {
        merchant_id: &signed.merchant.id,
        batch_no: &body.batch_no,
        currency: parse_currency(&body.currency)?,
        deadline: timestamp::parse("deadline", &body.deadline)?,
        file: &body.file,
    };
    let batch = collection_batches::submit(&state, &upload, store::now_micros()).await?;
    let (batch, lines) =
        collection_batches::batch_with_lines(&state, Some(&signed.merchant.id), batch.id).await?;
    Ok(Json(BatchResponse::of(&batch, &lines, false)?))
}

/// A batch of the signing merchant, with its lines.
#[utoipa::path(
    get,
    path = "/v1/collection-batches/{id}",
    tag = "collection batches",
    params(("id" = i64, Path, description = "Batch id")),
    responses(
        (status = 200, description = "The batch and its lines", body = BatchResponse),
        (status = 401, description = "Signature refused", body = ErrorBody),
        (status = 404, description = "BATCH_NOT_FOUND (also for another merchant's)", body = ErrorBody),
    )
)]
pub async fn get(
    State(state): State<AppState>,
    ApiPath(batch_id): ApiPath<i64>,
    signed: SignedRequest,
) -> Result<Json<BatchResponse>, ApiError> {
    let (batch, lines) =
        collection_batches::batch_with_lines(&state, Some(&signed.merchant.id), batch_id).await?;
    Ok(Json(BatchResponse::of(&batch, &lines, true)?))
}

/// The return file (回盘) of a CLOSED batch.
#[utoipa::path(
    get,
    path = "/v1/collection-batches/{id}/return-file",
    tag = "collection batches",
    params(("id" = i64, Path, description = "Batch id")),
    responses(
        (status = 200, description = "The return file and its hash", body = ReturnFileResponse),
        (status = 401, description = "Signature refused", body = ErrorBody),
        (status = 404, description = "BATCH_NOT_FOUND (also for another merchant's)", body = ErrorBody),
        (status = 409, description = "BATCH_NOT_CLOSED: the batch is still RUNNING", body = ErrorBody),
    )
)]
pub async fn return_file(
    State(state): State<AppState>,
    ApiPath(batch_id): ApiPath<i64>,
    signed: SignedRequest,
) -> Result<Json<ReturnFileResponse>, ApiError> {
    let (batch, csv, sha256) =
        collection_batches::return_file(&state, Some(&signed.merchant.id), batch_id).await?;
    Ok(Json(ReturnFileResponse {
        batch_id: batch.id,
        batch_no: batch.batch_no,
        sha256,
        csv,
    }))
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(submit, get, return_file),
    components(schemas(SubmitBatchRequest, BatchResponse, BatchLineResponse, ReturnFileResponse)),
    tags((name = "collection batches", description = "Batch collection with a deadline (批量代扣): \
        debit lines under signed agreements, a return file (回盘) at the deadline, and refunds \
        for review of lines that succeeded after it"))
)]
pub struct CollectionBatchesDoc;
