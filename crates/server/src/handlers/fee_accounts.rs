//! A merchant's prepaid fee account (手续费账户, 预充实扣) and its
//! month-end fee bills (后收). The merchant reads both and moves money from
//! its available balance into its fee account (signed calls); an operator
//! records money the merchant wired in (unsigned, like the other operator
//! calls).

use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::model::{BalanceViewResponse, parse_currency};
use crate::signature::SignedRequest;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use engine::FeeDeposit;
use ledger::{AccountKind, LedgerStore, OwnerKind};
use money::Currency;
use serde::{Deserialize, Serialize};
use settlement::{FeeBillStore, FeeMonth};
use tracing::info;
use utoipa::{IntoParams, ToSchema};

/// Which currency's fee account.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct FeeAccountQuery {
    /// ISO 4217 code, e.g. CNY.
    pub currency: String,
}

/// A merchant's prepaid fee account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FeeAccountResponse {
    pub merchant_id: String,
    pub currency: String,
    pub account_id: i64,
    /// `available_minor` is what the next fees can take; fees of payments
    /// still in flight are `pending_outgoing_minor`.
    pub balance: BalanceViewResponse,
}

/// Money into the signing merchant's fee account, from its available
/// balance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FeeDepositRequest {
    /// Unique per merchant: a repeat is the same deposit.
    pub reference: String,
    pub amount_minor: i64,
    #[schema(example = "CNY")]
    pub currency: String,
}

/// An operator records money a merchant wired in for its fee account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OperatorFeeDepositRequest {
    /// The bank transfer's reference; unique per merchant.
    pub reference: String,
    pub amount_minor: i64,
    #[schema(example = "CNY")]
    pub currency: String,
    /// The channel whose account received it (its clearing account is
    /// debited).
    #[schema(example = "simbank")]
    pub channel: String,
}

/// A deposit and the fee account after it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FeeDepositResponse {
    pub transfer_id: i64,
    pub account: FeeAccountResponse,
}

/// Which month's bills.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct FeeBillQuery {
    /// YYYY-MM.
    pub month: String,
}

/// One line of a fee bill: its fees of one business date under one rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FeeBillLineResponse {
    pub business_date: String,
    pub rule_id: String,
    pub charge_count: u64,
    /// The transactions' amounts the fees were priced on.
    pub amount_minor: i64,
    pub fees_minor: i64,
}

/// A month's bill of post-paid fees (后收) in one currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FeeBillResponse {
    pub id: i64,
    pub month: String,
    pub currency: String,
    /// ISSUED (not collected yet: the available balance did not cover it)
    /// or PAID.
    #[schema(example = "PAID")]
    pub status: String,
    pub charge_count: u64,
    pub fees_minor: i64,
    /// The last business date of the fees it holds.
    pub up_to_business_date: String,
    /// The ledger transfer that collected it.
    pub transfer_id: Option<i64>,
    pub lines: Vec<FeeBillLineResponse>,
}

/// The signing merchant's fee bills of a month.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FeeBillsResponse {
    pub merchant_id: String,
    pub month: String,
    pub bills: Vec<FeeBillResponse>,
}

async fn fee_account(
    state: &AppState,
    merchant_id: &str,
    currency: Currency,
) -> Result<FeeAccountResponse, ApiError> {
    let account_id = state
        .payments()
        .account(
            OwnerKind::Merchant,
            merchant_id,
            AccountKind::MerchantFee,
            currency,
        )
        .await?;
    let account = state
        .store()
        .account(account_id)
        .await?
        .ok_or_else(|| ApiError::Internal(format!("fee account {account_id} vanished")))?;
    let balance = account
        .balance()
        .ok_or_else(|| ApiError::Internal(format!("balances of account {account_id} overflow")))?;
    Ok(FeeAccountResponse {
        merchant_id: merchant_id.to_owned(),
        currency: currency.code().to_owned(),
        account_id,
        balance: balance.into(),
    })
}

/// The signing merchant's prepaid fee account.
#[utoipa::path(
    get,
    path = "/v1/fee-account",
    tag = "fee accounts",
    params(
        FeeAccountQuery,
        ("x-paycore-merchant" = String, Header, description = "Merchant id"),
        ("x-paycore-timestamp" = i64, Header, description = "Unix seconds"),
        ("x-paycore-nonce" = String, Header, description = "Unique per request, up to 64 bytes"),
        ("x-paycore-signature" = String, Header, description = "Hex HMAC-SHA256 of the canonical string"),
    ),
    responses(
        (status = 200, description = "The fee account", body = FeeAccountResponse),
        (status = 400, description = "MALFORMED_REQUEST", body = ErrorBody),
        (status = 401, description = "Signature refused", body = ErrorBody),
        (status = 422, description = "UNKNOWN_CURRENCY, UNSUPPORTED_CURRENCY", body = ErrorBody),
    )
)]
pub async fn get_account(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<FeeAccountQuery>,
    signed: SignedRequest,
) -> Result<Json<FeeAccountResponse>, ApiError> {
    let currency = parse_currency(&query.currency)?;
    Ok(Json(
        fee_account(&state, &signed.merchant.id, currency).await?,
    ))
}

/// Moves money from the signing merchant's available balance into its fee
/// account, once per reference.
#[utoipa::path(
    post,
    path = "/v1/fee-account/deposits",
    tag = "fee accounts",
    request_body = FeeDepositRequest,
    params(
        ("x-paycore-merchant" = String, Header, description = "Merchant id"),
        ("x-paycore-timestamp" = i64, Header, description = "Unix seconds"),
        ("x-paycore-nonce" = String, Header, description = "Unique per request, up to 64 bytes"),
        ("x-paycore-signature" = String, Header, description = "Hex HMAC-SHA256 of the canonical string"),
    ),
    responses(
        (status = 200, description = "The deposit and the fee account", body = FeeDepositResponse),
        (status = 400, description = "MALFORMED_REQUEST", body = ErrorBody),
        (status = 401, description = "Signature refused", body = ErrorBody),
        (status = 409, description = "INSUFFICIENT_FUNDS (the available balance), DUPLICATE_KEY_CONFLICT (the reference was used with another amount)", body = ErrorBody),
        (status = 422, description = "INVALID_AMOUNT, INVALID_ORDER, UNKNOWN_CURRENCY", body = ErrorBody),
    )
)]
pub async fn deposit(
    State(state): State<AppState>,
    signed: SignedRequest,
) -> Result<Json<FeeDepositResponse>, ApiError> {
    let body: FeeDepositRequest = signed.json()?;
    let currency = parse_currency(&body.currency)?;
    let merchant_id = &signed.merchant.id;
    deposited(
        &state,
        merchant_id,
        &body.reference,
        body.amount_minor,
        currency,
        &FeeDeposit::Available,
    )
    .await
}

/// Records money a merchant wired in for its fee account, received through
/// a channel (operator).
#[utoipa::path(
    post,
    path = "/v1/merchants/{id}/fee-account/deposits",
    tag = "fee accounts",
    request_body = OperatorFeeDepositRequest,
    params(("id" = String, Path, description = "Merchant id")),
    responses(
        (status = 200, description = "The deposit and the fee account", body = FeeDepositResponse),
        (status = 400, description = "MALFORMED_REQUEST", body = ErrorBody),
        (status = 404, description = "ORDER_NOT_FOUND: no such merchant", body = ErrorBody),
        (status = 409, description = "DUPLICATE_KEY_CONFLICT", body = ErrorBody),
        (status = 422, description = "INVALID_AMOUNT, INVALID_ORDER, UNKNOWN_CURRENCY", body = ErrorBody),
        (status = 503, description = "NO_CHANNEL: the channel is not configured", body = ErrorBody),
    )
)]
pub async fn operator_deposit(
    State(state): State<AppState>,
    ApiPath(merchant_id): ApiPath<String>,
    ApiJson(body): ApiJson<OperatorFeeDepositRequest>,
) -> Result<Json<FeeDepositResponse>, ApiError> {
    use engine::MerchantStore;
    if state.store().merchant(&merchant_id).await?.is_none() {
        return Err(engine::EngineError::from(engine::OrderError::NotFound {
            entity: "merchant",
            id: 0,
        })
        .into());
    }
    let currency = parse_currency(&body.currency)?;
    deposited(
        &state,
        &merchant_id,
        &body.reference,
        body.amount_minor,
        currency,
        &FeeDeposit::Channel(body.channel),
    )
    .await
}

async fn deposited(
    state: &AppState,
    merchant_id: &str,
    reference: &str,
    amount_minor: i64,
    currency: Currency,
    from: &FeeDeposit,
) -> Result<Json<FeeDepositResponse>, ApiError> {
    let transfer = state
        .payments()
        .deposit_to_fee_account(
            merchant_id,
            reference,
            amount_minor,
            currency,
            from,
            store::now_micros(),
        )
        .await?;
    info!(%merchant_id, reference, amount_minor, "fee account deposit");
    Ok(Json(FeeDepositResponse {
        transfer_id: transfer.id,
        account: fee_account(state, merchant_id, currency).await?,
    }))
}

/// The signing merchant's post-paid fee bills (后收) of a month, with their
/// lines. Bills are made once the month is over (`paycore fee bill`).
#[utoipa::path(
    get,
    path = "/v1/fee-bills",
    tag = "fee accounts",
    params(
        FeeBillQuery,
        ("x-paycore-merchant" = String, Header, description = "Merchant id"),
        ("x-paycore-timestamp" = i64, Header, description = "Unix seconds"),
        ("x-paycore-nonce" = String, Header, description = "Unique per request, up to 64 bytes"),
        ("x-paycore-signature" = String, Header, description = "Hex HMAC-SHA256 of the canonical string"),
    ),
    responses(
        (status = 200, description = "The month's bills", body = FeeBillsResponse),
        (status = 400, description = "MALFORMED_REQUEST", body = ErrorBody),
        (status = 401, description = "Signature refused", body = ErrorBody),
        (status = 422, description = "MONTH_INVALID", body = ErrorBody),
    )
)]
pub async fn bills(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<FeeBillQuery>,
    signed: SignedRequest,
) -> Result<Json<FeeBillsResponse>, ApiError> {
    let month = FeeMonth::parse(&query.month)?;
    let mut bills = Vec::new();
    for bill in state.store().fee_bills(month).await? {
        if bill.merchant_id != signed.merchant.id {
            continue;
        }
        let lines = state.store().fee_bill_lines(bill.id).await?;
        bills.push(FeeBillResponse {
            id: bill.id,
            month: bill.month.to_string(),
            currency: bill.currency.code().to_owned(),
            status: bill.status.as_str().to_owned(),
            charge_count: bill.charge_count,
            fees_minor: bill.fees_minor,
            up_to_business_date: bill.up_to_business_date.to_string(),
            transfer_id: bill.transfer_id,
            lines: lines
                .into_iter()
                .map(|line| FeeBillLineResponse {
                    business_date: line.business_date.to_string(),
                    rule_id: line.rule_id,
                    charge_count: line.charge_count,
                    amount_minor: line.amount_minor,
                    fees_minor: line.fees_minor,
                })
                .collect(),
        });
    }
    Ok(Json(FeeBillsResponse {
        merchant_id: signed.merchant.id,
        month: month.to_string(),
        bills,
    }))
}

/// The fee accounts' part of the OpenAPI document, merged into it by
/// `openapi()`.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(get_account, deposit, operator_deposit, bills),
    components(schemas(
        FeeAccountResponse,
        FeeDepositRequest,
        OperatorFeeDepositRequest,
        FeeDepositResponse,
        FeeBillLineResponse,
        FeeBillResponse,
        FeeBillsResponse,
    )),
    tags((name = "fee accounts", description = "A merchant's prepaid fee account (手续费账户, \
        预充实扣) and its month-end bills of post-paid fees (后收). Signed by the merchant, but for \
        the operator's record of a deposit wired in."))
)]
pub struct FeeAccountsDoc;
