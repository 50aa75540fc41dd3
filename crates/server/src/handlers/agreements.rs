//! Agreements (签约) for debit collection (代扣): signed merchant calls to
//! sign a member's card, confirm a quick-pay signing with its SMS code,
//! read an agreement and revoke it. A merchant only ever sees its own.
//! Nothing here logs the personal data the sign request carries.

use crate::error::{ApiError, ErrorBody};
use crate::extract::ApiPath;
use crate::model::{
    AgreementMethodName, AgreementResponse, ConfirmAgreementRequest, SignAgreementRequest,
};
use crate::signature::SignedRequest;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use engine::Secret;
use tracing::info;

/// Signs a member's card for the signing merchant's debits.
///
/// `three_element` verifies name, ID number and card number and answers
/// ACTIVE (with the `agreement_no` debits name) or FAILED. `quick_pay`
/// also checks the phone, sends it an SMS code and answers
/// PENDING_CONFIRMATION: confirm with `POST /v1/agreements/{id}/confirm`.
/// CREATED means the channel did not answer: repeat the same request.
#[utoipa::path(
    post,
    path = "/v1/agreements",
    tag = "agreements",
    request_body = SignAgreementRequest,
    params(
        ("x-paycore-merchant" = String, Header, description = "Merchant id"),
        ("x-paycore-timestamp" = i64, Header, description = "Unix seconds"),
        ("x-paycore-nonce" = String, Header, description = "Unique per request, up to 64 bytes"),
        ("x-paycore-signature" = String, Header, description = "Hex HMAC-SHA256 of the canonical string"),
    ),
    responses(
        (status = 200, description = "The agreement: ACTIVE, PENDING_CONFIRMATION, FAILED (with the channel's failure_code), or CREATED", body = AgreementResponse),
        (status = 400, description = "MALFORMED_REQUEST", body = ErrorBody),
        (status = 401, description = "MISSING_SIGNATURE, BAD_SIGNATURE, STALE_TIMESTAMP, REPLAYED_NONCE, UNKNOWN_MERCHANT", body = ErrorBody),
        (status = 409, description = "AGREEMENT_EXISTS (the member signed this card before), REFERENCE_CONFLICT (the sign serial was used for another signing)", body = ErrorBody),
        (status = 422, description = "INVALID_AGREEMENT, INVALID_ORDER, NO_ROUTE", body = ErrorBody),
    )
)]
pub async fn sign(
    State(state): State<AppState>,
    signed: SignedRequest,
) -> Result<Json<AgreementResponse>, ApiError> {
    let body: SignAgreementRequest = signed.json()?;
    let quick_pay = body.method == AgreementMethodName::QuickPay;
    let request = body.into_request(&signed.merchant.id);
    // Repeats of a serial wait for the first, then answer as it did.
    let key = format!(
        "agreement\n{}\n{}",
        request.merchant_id, request.sign_serial
    );
    let _serial = state.serials().lock(key).await;
    let agreement = state
        .agreements()
        .sign(&request, store::now_micros())
        .await?;
    info!(
        merchant_id = %signed.merchant.id,
        agreement_id = agreement.id,
        quick_pay,
        status = agreement.status.as_str(),
        "agreement signing"
    );
    Ok(Json(AgreementResponse::try_from(agreement)?))
}

/// Confirms a quick-pay signing with the SMS code the member received.
#[utoipa::path(
    post,
    path = "/v1/agreements/{id}/confirm",
    tag = "agreements",
    params(("id" = i64, Path, description = "Agreement id")),
    request_body = ConfirmAgreementRequest,
    responses(
        (status = 200, description = "The agreement, ACTIVE (or FAILED if the channel refused)", body = AgreementResponse),
        (status = 401, description = "Signature refused", body = ErrorBody),
        (status = 404, description = "AGREEMENT_NOT_FOUND (also for another merchant's)", body = ErrorBody),
        (status = 409, description = "AGREEMENT_NOT_PENDING", body = ErrorBody),
        (status = 422, description = "SMS_CODE_WRONG (with the attempts left), SMS_ATTEMPTS_EXCEEDED (the agreement is FAILED)", body = ErrorBody),
        (status = 503, description = "CHANNEL_TIMEOUT: try again", body = ErrorBody),
    )
)]
pub async fn confirm(
    State(state): State<AppState>,
    ApiPath(agreement_id): ApiPath<i64>,
    signed: SignedRequest,
) -> Result<Json<AgreementResponse>, ApiError> {
    let body: ConfirmAgreementRequest = signed.json()?;
    let agreement = state
        .agreements()
        .confirm(
            &signed.merchant.id,
            agreement_id,
            &Secret::new(body.sms_code),
            store::now_micros(),
        )
        .await?;
    info!(merchant_id = %signed.merchant.id, agreement_id, status = agreement.status.as_str(), "agreement confirmed");
    Ok(Json(AgreementResponse::try_from(agreement)?))
}

/// An agreement of the signing merchant.
#[utoipa::path(
    get,
    path = "/v1/agreements/{id}",
    tag = "agreements",
    params(("id" = i64, Path, description = "Agreement id")),
    responses(
        (status = 200, description = "The agreement", body = AgreementResponse),
        (status = 401, description = "Signature refused", body = ErrorBody),
        (status = 404, description = "AGREEMENT_NOT_FOUND (also for another merchant's)", body = ErrorBody),
    )
)]
pub async fn get(
    State(state): State<AppState>,
    ApiPath(agreement_id): ApiPath<i64>,
    signed: SignedRequest,
) -> Result<Json<AgreementResponse>, ApiError> {
    let agreement = state
        .agreements()
        .agreement(&signed.merchant.id, agreement_id)
        .await?;
    Ok(Json(AgreementResponse::try_from(agreement)?))
}

/// Revokes an ACTIVE agreement at its channel: no debit may name it
/// afterwards. Revoking a revoked agreement answers it as it is. The body,
/// if any, is not read.
#[utoipa::path(
    post,
    path = "/v1/agreements/{id}/revoke",
    tag = "agreements",
    params(("id" = i64, Path, description = "Agreement id")),
    responses(
        (status = 200, description = "The agreement, REVOKED", body = AgreementResponse),
        (status = 401, description = "Signature refused", body = ErrorBody),
        (status = 404, description = "AGREEMENT_NOT_FOUND (also for another merchant's)", body = ErrorBody),
        (status = 409, description = "AGREEMENT_NOT_ACTIVE", body = ErrorBody),
        (status = 422, description = "AGREEMENT_REVOKE_REFUSED by the channel", body = ErrorBody),
        (status = 503, description = "CHANNEL_TIMEOUT: nothing changed; try again", body = ErrorBody),
    )
)]
pub async fn revoke(
    State(state): State<AppState>,
    ApiPath(agreement_id): ApiPath<i64>,
    signed: SignedRequest,
) -> Result<Json<AgreementResponse>, ApiError> {
    let agreement = state
        .agreements()
        .revoke(&signed.merchant.id, agreement_id, store::now_micros())
        .await?;
    info!(merchant_id = %signed.merchant.id, agreement_id, "agreement revoked");
    Ok(Json(AgreementResponse::try_from(agreement)?))
}

/// The agreements' part of the OpenAPI document, merged into it by
/// `openapi()`.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(sign, confirm, get, revoke),
    components(schemas(
        AgreementMethodName,
        SignAgreementRequest,
        ConfirmAgreementRequest,
        AgreementResponse
    )),
    tags((name = "agreements", description = "Agreements (签约) for debit collection (代扣), signed \
        by the merchant: three-element or quick-pay signing, SMS confirmation, revocation. Card, ID \
        and phone numbers and names are verified by the channel and never stored in clear."))
)]
pub struct AgreementsDoc;
