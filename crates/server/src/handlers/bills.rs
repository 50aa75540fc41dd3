//! `GET /v1/bills`: the signing merchant's daily trade bill (商户对账单).

use crate::error::{ApiError, ErrorBody};
use crate::extract::ApiQuery;
use crate::signature::SignedRequest;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use settlement::{BillType, SettlementStore, SettlementStoreError};
use sha2::{Digest, Sha256};
use utoipa::{IntoParams, ToSchema};

impl From<SettlementStoreError> for ApiError {
    fn from(error: SettlementStoreError) -> Self {
        match error {
            SettlementStoreError::Store(store) => store.into(),
            other => ApiError::Invalid {
                code: other.code(),
                message: other.to_string(),
            },
        }
    }
}

impl From<settlement::SettlementError> for ApiError {
    fn from(error: settlement::SettlementError) -> Self {
        ApiError::Invalid {
            code: error.code(),
            message: error.to_string(),
        }
    }
}

/// Which bill to download.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct BillQuery {
    /// The business date, YYYY-MM-DD (UTC+8).
    pub date: String,
    /// ALL (default), SUCCESS (collections only) or REFUND (refunds only).
    #[serde(rename = "type")]
    pub bill_type: Option<String>,
}

/// A merchant's bill: the CSV file and its SHA-256, to verify the download.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct BillResponse {
    pub merchant_id: String,
    pub date: String,
    #[serde(rename = "type")]
    pub bill_type: String,
    /// Rows listed, before the summary block.
    pub rows: u64,
    /// Lower-case hex SHA-256 of `csv`'s UTF-8 bytes.
    pub sha256: String,
    /// The bill; its format is in the README (merchant bills).
    pub csv: String,
}

/// The signing merchant's trade bill of one business date: every
/// collection and refund cleared that day with its fee, then a summary per
/// currency. Signed by the merchant; a merchant only ever sees its own.
#[utoipa::path(
    get,
    path = "/v1/bills",
    tag = "bills",
    params(
        BillQuery,
        ("x-paycore-merchant" = String, Header, description = "Merchant id"),
        ("x-paycore-timestamp" = i64, Header, description = "Unix seconds"),
        ("x-paycore-nonce" = String, Header, description = "Unique per request, up to 64 bytes"),
        ("x-paycore-signature" = String, Header, description = "Hex HMAC-SHA256 of the canonical string"),
    ),
    responses(
        (status = 200, description = "The bill and its hash", body = BillResponse),
        (status = 400, description = "MALFORMED_REQUEST", body = ErrorBody),
        (status = 401, description = "MISSING_SIGNATURE, BAD_SIGNATURE, STALE_TIMESTAMP, REPLAYED_NONCE, UNKNOWN_MERCHANT", body = ErrorBody),
        (status = 422, description = "DATE_INVALID, BILL_TYPE_INVALID", body = ErrorBody),
    )
)]
pub async fn get(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<BillQuery>,
    signed: SignedRequest,
) -> Result<Json<BillResponse>, ApiError> {
    let date = settlement::parse_date(&query.date)?.to_string();
    let text = query.bill_type.as_deref().unwrap_or("ALL");
    let bill_type = BillType::parse(text).ok_or_else(|| ApiError::Invalid {
        code: "BILL_TYPE_INVALID",
        message: format!("unknown bill type {text:?} (ALL, SUCCESS, REFUND)"),
    })?;
    let entries = state
        .store()
        .clearing_entries(&signed.merchant.id, &date)
        .await?;
    let bill = settlement::write_bill(&entries, bill_type)?;
    Ok(Json(BillResponse {
        merchant_id: signed.merchant.id,
        date,
        bill_type: bill_type.as_str().to_owned(),
        rows: bill.rows,
        sha256: hex::encode(Sha256::digest(bill.csv.as_bytes())),
        csv: bill.csv,
    }))
}

/// The bills' part of the OpenAPI document, merged into it by `openapi()`.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(get),
    components(schemas(BillResponse)),
    tags((name = "bills", description = "Merchant bills (商户对账单): the platform's daily trade bill \
        of a merchant, signed by the merchant"))
)]
pub struct BillsDoc;
