//! 担保交易 (escrow trades): the merchant tells paycore the buyer
//! confirmed receipt (确认收货) and the trade's money is released to it; an
//! operator may release one too. A trade nobody releases is released by
//! itself when its product's `auto_release_days` pass (the resolver).

use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath};
use crate::signature::SignedRequest;
use crate::state::AppState;
use crate::timestamp;
use axum::Json;
use axum::extract::State;
use engine::{EscrowView, ReleasedBy};
use serde::{Deserialize, Serialize};
use tracing::info;
use utoipa::ToSchema;

/// The merchant's release: the buyer confirmed receipt.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReleaseRequestBody {
    /// Why, recorded with the release.
    #[schema(example = "buyer confirmed receipt")]
    pub reason: Option<String>,
}

/// An operator's release of a merchant's trade.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OperatorReleaseRequest {
    pub merchant_id: String,
    pub out_trade_no: String,
    /// Who releases: recorded as `operator:{name}`.
    #[schema(example = "ops-li")]
    pub operator: String,
    /// Why: recorded with the release.
    pub reason: String,
}

/// A trade's escrow.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EscrowResponse {
    pub trade_id: i64,
    pub out_trade_no: String,
    pub payment_id: i64,
    pub currency: String,
    /// What the payment put into escrow.
    pub held_minor: i64,
    /// HELD, RELEASING (a release under way) or RELEASED.
    #[schema(example = "RELEASED")]
    pub status: String,
    /// When it releases by itself (RFC 3339).
    pub release_due_at: String,
    /// What went (or goes) to the merchant: held less the refunds made
    /// before release.
    pub released_minor: Option<i64>,
    /// `merchant`, `operator:{name}` or `timeout`.
    pub released_by: Option<String>,
    pub reason: Option<String>,
    pub updated_at: String,
}

impl TryFrom<EscrowView> for EscrowResponse {
    type Error = ApiError;

    fn try_from(view: EscrowView) -> Result<Self, ApiError> {
        let escrow = view.escrow;
        Ok(EscrowResponse {
            trade_id: escrow.trade_id,
            out_trade_no: view.out_trade_no,
            payment_id: escrow.payment_id,
            currency: escrow.currency.code().to_owned(),
            held_minor: escrow.held_minor,
            status: escrow.status.as_str().to_owned(),
            release_due_at: timestamp::format(escrow.release_due_at)?,
            released_minor: escrow.released_minor,
            released_by: escrow.released_by,
            reason: escrow.reason,
            updated_at: timestamp::format(escrow.updated_at)?,
        })
    }
}

/// Releases an escrow trade of the signing merchant: the buyer confirmed
/// receipt. What is left in escrow (paid less refunds) goes to the
/// merchant's settlement-pending account and is cleared with its fee. A
/// repeat answers the first release.
#[utoipa::path(
    post,
    path = "/v1/trades/{out_trade_no}/release",
    tag = "payments",
    params(("out_trade_no" = String, Path, description = "The merchant's order number")),
    request_body = ReleaseRequestBody,
    responses(
        (status = 200, description = "The escrow, RELEASED", body = EscrowResponse),
        (status = 401, description = "Signature refused", body = ErrorBody),
        (status = 404, description = "ORDER_NOT_FOUND: no such trade, or it is not an escrow trade that was paid", body = ErrorBody),
        (status = 409, description = "ESCROW_REFUND_IN_FLIGHT: a refund out of escrow is not final yet", body = ErrorBody),
    )
)]
pub async fn release(
    State(state): State<AppState>,
    ApiPath(out_trade_no): ApiPath<String>,
    signed: SignedRequest,
) -> Result<Json<EscrowResponse>, ApiError> {
    let body: ReleaseRequestBody = if signed.body.is_empty() {
        ReleaseRequestBody::default()
    } else {
        signed.json()?
    };
    let view = state
        .payments()
        .release_escrow(
            &signed.merchant.id,
            &out_trade_no,
            &ReleasedBy::Merchant,
            body.reason.as_deref(),
            store::now_micros(),
        )
        .await?;
    info!(merchant_id = %signed.merchant.id, out_trade_no, status = %view.escrow.status.as_str(), "escrow released");
    Ok(Json(EscrowResponse::try_from(view)?))
}

/// The escrow of an escrow trade of the signing merchant.
#[utoipa::path(
    get,
    path = "/v1/trades/{out_trade_no}/escrow",
    tag = "payments",
    params(("out_trade_no" = String, Path, description = "The merchant's order number")),
    responses(
        (status = 200, description = "The escrow", body = EscrowResponse),
        (status = 401, description = "Signature refused", body = ErrorBody),
        (status = 404, description = "ORDER_NOT_FOUND", body = ErrorBody),
    )
)]
pub async fn get(
    State(state): State<AppState>,
    ApiPath(out_trade_no): ApiPath<String>,
    signed: SignedRequest,
) -> Result<Json<EscrowResponse>, ApiError> {
    let view = state
        .payments()
        .escrow_of(&signed.merchant.id, &out_trade_no)
        .await?;
    Ok(Json(EscrowResponse::try_from(view)?))
}

/// An operator releases a merchant's escrow trade (a dispute settled for
/// the merchant, say), recorded with who and why.
#[utoipa::path(
    post,
    path = "/v1/escrows/release",
    tag = "merchants",
    request_body = OperatorReleaseRequest,
    responses(
        (status = 200, description = "The escrow, RELEASED", body = EscrowResponse),
        (status = 404, description = "ORDER_NOT_FOUND", body = ErrorBody),
        (status = 409, description = "ESCROW_REFUND_IN_FLIGHT", body = ErrorBody),
        (status = 422, description = "INVALID_ORDER: no operator or reason", body = ErrorBody),
    )
)]
pub async fn operator_release(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<OperatorReleaseRequest>,
) -> Result<Json<EscrowResponse>, ApiError> {
    let view = state
        .payments()
        .release_escrow(
            &request.merchant_id,
            &request.out_trade_no,
            &ReleasedBy::Operator(request.operator.clone()),
            Some(&request.reason),
            store::now_micros(),
        )
        .await?;
    info!(merchant_id = %request.merchant_id, out_trade_no = %request.out_trade_no, operator = %request.operator, "escrow released by an operator");
    Ok(Json(EscrowResponse::try_from(view)?))
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(release, get, operator_release),
    components(schemas(ReleaseRequestBody, OperatorReleaseRequest, EscrowResponse))
)]
pub struct EscrowsDoc;
