//! `POST /v1/fees/quote`: the fee service over HTTP.
//!
//! The quote is signed by the merchant like the other merchant calls, and
//! the merchant dimension is the signer: a merchant's negotiated rates are
//! between it and the platform, so one merchant may not read another's by
//! naming it. Operators quote any merchant with `paycore fee quote`.

use crate::error::{ApiError, ErrorBody};
use crate::model::{FeeQuoteRequest, FeeQuoteResponse, parse_currency};
use crate::signature::SignedRequest;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use fees::{BusinessDate, FeeCounterError, FeeCounterStore, FeeError, FeeRequest};
use money::Money;
use tracing::info;

/// The fee rules paycore ships with (`config/fees.toml`).
pub const BUILTIN_FEE_RULES: &str = include_str!("../../../../config/fees.toml");

fn fee_error(error: FeeError) -> ApiError {
    ApiError::Invalid {
        code: error.code(),
        message: error.to_string(),
    }
}

fn counter_error(error: FeeCounterError) -> ApiError {
    match error {
        FeeCounterError::Store(store) => store.into(),
        other => ApiError::Invalid {
            code: other.code(),
            message: other.to_string(),
        },
    }
}

/// Today in business time (UTC+8).
fn today() -> Result<BusinessDate, ApiError> {
    engine::business_date(store::now_micros())
        .map_err(|_| ApiError::Internal("the clock is outside the calendar's range".to_owned()))
}

/// What a transaction would cost: the fee of the most specific rule of the
/// table in force for the signing merchant and the given dimensions.
/// Signed by the merchant.
///
/// For a cumulative rule the quote is priced on the period's counter as it
/// stands (the transaction would be the next one counted); a quote counts
/// nothing.
#[utoipa::path(
    post,
    path = "/v1/fees/quote",
    tag = "fees",
    request_body = FeeQuoteRequest,
    params(
        ("x-paycore-merchant" = String, Header, description = "Merchant id"),
        ("x-paycore-timestamp" = i64, Header, description = "Unix seconds"),
        ("x-paycore-nonce" = String, Header, description = "Unique per request, up to 64 bytes"),
        ("x-paycore-signature" = String, Header, description = "Hex HMAC-SHA256 of the canonical string"),
    ),
    responses(
        (status = 200, description = "The fee and the rule that priced it", body = FeeQuoteResponse),
        (status = 400, description = "MALFORMED_REQUEST", body = ErrorBody),
        (status = 401, description = "MISSING_SIGNATURE, BAD_SIGNATURE, STALE_TIMESTAMP, REPLAYED_NONCE, UNKNOWN_MERCHANT", body = ErrorBody),
        (status = 422, description = "FEE_RULE_NOT_FOUND, FEE_CURRENCY_MISMATCH, FEE_INVALID_AMOUNT, FEE_INVALID_DATE, UNKNOWN_CURRENCY, UNSUPPORTED_CURRENCY", body = ErrorBody),
        (status = 500, description = "STORE_ERROR, INTERNAL_ERROR", body = ErrorBody),
    )
)]
pub async fn quote(
    State(state): State<AppState>,
    signed: SignedRequest,
) -> Result<Json<FeeQuoteResponse>, ApiError> {
    let body: FeeQuoteRequest = signed.json()?;
    // One table from the counter's key to the price, whatever replaces it
    // meanwhile.
    let schedule = state.fee_table().current();
    let currency = parse_currency(&body.currency)?;
    let business_date = match &body.business_date {
        Some(text) => BusinessDate::parse(text).map_err(fee_error)?,
        None => today()?,
    };
    let mut request = FeeRequest {
        side: body.side.into(),
        merchant_id: &signed.merchant.id,
        product: &body.product,
        issuing_bank: body.issuing_bank.as_deref(),
        channel: body.channel.as_deref(),
        business_line: body.business_line.as_deref(),
        amount: Money::new(body.amount_minor, currency),
        business_date,
        usage: fees::PeriodUsage::default(),
    };
    if let Some(key) = schedule.counter_key(&request).map_err(fee_error)? {
        request.usage = state
            .store()
            .fee_counter(&key)
            .await
            .map_err(counter_error)?;
    }
    let quote = schedule.quote(&request).map_err(fee_error)?;
    info!(
        merchant_id = %signed.merchant.id,
        rule_id = %quote.rule_id,
        fee_minor = quote.fee.amount_minor(),
        "fee quoted"
    );
    Ok(Json(FeeQuoteResponse::new(quote, business_date)))
}

/// The fee service's part of the OpenAPI document, merged into it by
/// `openapi()`.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(quote),
    components(schemas(
        FeeQuoteRequest,
        FeeQuoteResponse,
        crate::model::FeeCounterResponse,
        crate::model::FeeSideName,
        crate::model::FeeMethodName,
        crate::model::TierPolicyName,
        crate::model::CollectionModeName,
    )),
    tags((name = "fees", description = "The fee service (计费): quote a transaction's fee. Signed by the \
        merchant like the payments calls; the merchant dimension is the signer."))
)]
pub struct FeesDoc;
