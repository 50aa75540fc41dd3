//! Merchants and payments. Registering a merchant is an operator call;
//! every payment call is signed by the merchant (see `signature.rs`).

use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath};
use crate::model::{
    ChannelsResponse, CreateMerchantRequest, MerchantResponse, OutageRequest, PayRequestBody,
    PaymentResponse, RefundRequestBody, RefundResponse, ReviewQueueEntry, ReviewRequest,
    RouteResponse, TradeResponse,
};
use crate::signature::SignedRequest;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use engine::{
    BankOutage, Initiator, MerchantStore, NewMerchant, OrderError, OrderStore, RefundRequest,
    Secret,
};
use rand::RngCore;
use tracing::info;

/// Bytes of a new signing key (shown as hex).
const SIGNING_KEY_BYTES: usize = 32;

fn new_signing_key() -> Secret<String> {
    let mut bytes = [0u8; SIGNING_KEY_BYTES];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    Secret::new(hex::encode(bytes))
}

/// Registers a merchant and returns its signing key, once.
#[utoipa::path(
    post,
    path = "/v1/merchants",
    tag = "merchants",
    request_body = CreateMerchantRequest,
    responses(
        (status = 201, description = "The merchant, with its signing key", body = MerchantResponse),
        (status = 409, description = "REFERENCE_CONFLICT: the id is taken", body = ErrorBody),
        (status = 422, description = "INVALID_ORDER", body = ErrorBody),
    )
)]
pub async fn create_merchant(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<CreateMerchantRequest>,
) -> Result<(StatusCode, Json<MerchantResponse>), ApiError> {
    let merchant = NewMerchant {
        id: request.id,
        name: request.name,
        notify_url: request.notify_url,
    };
    let created = state
        .store()
        .create_merchant(&merchant, &new_signing_key(), store::now_micros())
        .await?;
    info!(merchant_id = %created.id, "merchant registered");
    Ok((
        StatusCode::CREATED,
        Json(MerchantResponse::new(&created, true)?),
    ))
}

/// Opens the trade if it is new, and pays it. Signed by the merchant.
///
/// The answer is the payment as it stands: SUCCESS, FAILED, or PROCESSING
/// while a channel has not answered (paycore queries it and finishes the
/// payment; ask again with `GET /v1/payments/{id}`).
#[utoipa::path(
    post,
    path = "/v1/payments",
    tag = "payments",
    request_body = PayRequestBody,
    params(
        ("x-paycore-merchant" = String, Header, description = "Merchant id"),
        ("x-paycore-timestamp" = i64, Header, description = "Unix seconds"),
        ("x-paycore-nonce" = String, Header, description = "Unique per request, up to 64 bytes"),
        ("x-paycore-signature" = String, Header, description = "Hex HMAC-SHA256 of the canonical string"),
    ),
    responses(
        (status = 200, description = "The payment", body = PaymentResponse),
        (status = 400, description = "MALFORMED_REQUEST", body = ErrorBody),
        (status = 401, description = "MISSING_SIGNATURE, BAD_SIGNATURE, STALE_TIMESTAMP, REPLAYED_NONCE, UNKNOWN_MERCHANT", body = ErrorBody),
        (status = 409, description = "TRADE_NOT_PAYABLE, REFERENCE_CONFLICT", body = ErrorBody),
        (status = 422, description = "UNKNOWN_PRODUCT, SOURCE_NOT_ALLOWED, TOO_MANY_CHANNEL_SOURCES, INSTRUCTIONS_DO_NOT_COVER_PAYMENT, INVALID_AMOUNT, INVALID_ORDER, UNKNOWN_CURRENCY", body = ErrorBody),
    )
)]
pub async fn pay(
    State(state): State<AppState>,
    signed: SignedRequest,
) -> Result<Json<PaymentResponse>, ApiError> {
    let body: PayRequestBody = signed.json()?;
    let request = body.into_request(&signed.merchant.id)?;
    // Repeats of a serial wait for the first to finish, then answer as it
    // did (within this process; across processes the store still makes one
    // payment).
    let key = format!("{}\n{}", request.merchant_id, request.request_serial);
    let _serial = state.serials().lock(key).await;
    let view = state.payments().pay(&request, store::now_micros()).await?;
    info!(
        merchant_id = %signed.merchant.id,
        payment_id = view.payment.id,
        status = %view.payment.status,
        "payment"
    );
    Ok(Json(PaymentResponse::try_from(view)?))
}

/// A payment of the signing merchant, as it stands.
#[utoipa::path(
    get,
    path = "/v1/payments/{id}",
    tag = "payments",
    params(("id" = i64, Path, description = "Payment id")),
    responses(
        (status = 200, description = "The payment", body = PaymentResponse),
        (status = 401, description = "Signature refused", body = ErrorBody),
        (status = 404, description = "ORDER_NOT_FOUND (also for another merchant's payment)", body = ErrorBody),
    )
)]
pub async fn get_payment(
    State(state): State<AppState>,
    ApiPath(payment_id): ApiPath<i64>,
    signed: SignedRequest,
) -> Result<Json<PaymentResponse>, ApiError> {
    let view = state
        .payments()
        .status(&signed.merchant.id, payment_id)
        .await?;
    Ok(Json(PaymentResponse::try_from(view)?))
}

/// A trade of the signing merchant, by its `out_trade_no`.
#[utoipa::path(
    get,
    path = "/v1/trades/{out_trade_no}",
    tag = "payments",
    params(("out_trade_no" = String, Path, description = "The merchant's order number")),
    responses(
        (status = 200, description = "The trade", body = TradeResponse),
        (status = 401, description = "Signature refused", body = ErrorBody),
        (status = 404, description = "ORDER_NOT_FOUND", body = ErrorBody),
    )
)]
pub async fn get_trade(
    State(state): State<AppState>,
    ApiPath(out_trade_no): ApiPath<String>,
    signed: SignedRequest,
) -> Result<Json<TradeResponse>, ApiError> {
    let trade = state
        .store()
        .trade_by_out_trade_no(&signed.merchant.id, &out_trade_no)
        .await?
        .ok_or(OrderError::NotFound {
            entity: "trade order",
            id: 0,
        })
        .map_err(engine::EngineError::from)?;
    Ok(Json(TradeResponse::try_from(trade)?))
}

/// Refunds (part of) a paid trade of the signing merchant. The money goes
/// back to the sources that paid, card, bank and wallet first; coupons are
/// not refunded.
#[utoipa::path(
    post,
    path = "/v1/refunds",
    tag = "payments",
    request_body = RefundRequestBody,
    responses(
        (status = 200, description = "The refund: SUCCESS, FAILED, or PROCESSING while a channel has not answered", body = RefundResponse),
        (status = 401, description = "Signature refused", body = ErrorBody),
        (status = 404, description = "ORDER_NOT_FOUND", body = ErrorBody),
        (status = 409, description = "REFUND_EXCEEDS_REFUNDABLE, REFERENCE_CONFLICT", body = ErrorBody),
    )
)]
pub async fn refund(
    State(state): State<AppState>,
    signed: SignedRequest,
) -> Result<Json<RefundResponse>, ApiError> {
    let body: RefundRequestBody = signed.json()?;
    let request = RefundRequest {
        merchant_id: signed.merchant.id.clone(),
        out_trade_no: body.out_trade_no,
        refund_serial: body.refund_serial,
        amount_minor: body.amount_minor,
        reason: body.reason,
        initiator: Initiator::Merchant,
    };
    let key = format!("refund\n{}\n{}", request.merchant_id, request.refund_serial);
    let _serial = state.serials().lock(key).await;
    let view = state
        .payments()
        .refund(&request, store::now_micros())
        .await?;
    info!(merchant_id = %signed.merchant.id, refund_id = view.refund.id, status = %view.refund.status, "refund");
    Ok(Json(RefundResponse::try_from(view)?))
}

/// A refund of the signing merchant, as it stands.
#[utoipa::path(
    get,
    path = "/v1/refunds/{id}",
    tag = "payments",
    params(("id" = i64, Path, description = "Refund id")),
    responses(
        (status = 200, description = "The refund", body = RefundResponse),
        (status = 401, description = "Signature refused", body = ErrorBody),
        (status = 404, description = "ORDER_NOT_FOUND", body = ErrorBody),
    )
)]
pub async fn get_refund(
    State(state): State<AppState>,
    ApiPath(refund_id): ApiPath<i64>,
    signed: SignedRequest,
) -> Result<Json<RefundResponse>, ApiError> {
    let view = state
        .payments()
        .resume_refund(&signed.merchant.id, refund_id, store::now_micros())
        .await?;
    Ok(Json(RefundResponse::try_from(view)?))
}

/// An operator approves or rejects a refund waiting for review (one the
/// platform started).
#[utoipa::path(
    post,
    path = "/v1/refunds/{id}/review",
    tag = "merchants",
    params(("id" = i64, Path, description = "Refund id")),
    request_body = ReviewRequest,
    responses(
        (status = 200, description = "The refund after the decision", body = RefundResponse),
        (status = 404, description = "ORDER_NOT_FOUND", body = ErrorBody),
        (status = 409, description = "ILLEGAL_TRANSITION, CONCURRENT_CHANGE: not waiting for review", body = ErrorBody),
        (status = 422, description = "INVALID_ORDER: no operator or reason", body = ErrorBody),
    )
)]
pub async fn review_refund(
    State(state): State<AppState>,
    ApiPath(refund_id): ApiPath<i64>,
    ApiJson(request): ApiJson<ReviewRequest>,
) -> Result<Json<RefundResponse>, ApiError> {
    let view = state
        .payments()
        .review_refund(
            &request.merchant_id,
            refund_id,
            &request.review(),
            store::now_micros(),
        )
        .await?;
    info!(
        refund_id,
        approve = request.approve,
        operator = %request.operator,
        status = %view.refund.status,
        "refund reviewed"
    );
    Ok(Json(RefundResponse::try_from(view)?))
}

/// A channel's asynchronous notification (回调) of one of its orders, in
/// the channel's own format (the simulator's:
/// `channel_order_id=…&status=SUCCESS|FAILED&…`). The order's payment or
/// refund is advanced at once by asking the channel where the order
/// stands; the notification's own result is never taken on trust. The
/// answer is `success`, which channels take as the acknowledgement.
#[utoipa::path(
    post,
    path = "/v1/channels/{code}/notifications",
    tag = "merchants",
    params(("code" = String, Path, description = "The channel's code")),
    request_body(content = String, content_type = "text/plain"),
    responses(
        (status = 200, description = "`success`: the order was advanced (it may still be PROCESSING if the channel says so)", body = String),
        (status = 400, description = "MALFORMED_NOTIFICATION", body = ErrorBody),
        (status = 404, description = "UNKNOWN_CHANNEL, CHANNEL_UNKNOWN_ORDER", body = ErrorBody),
    )
)]
pub async fn channel_notification(
    State(state): State<AppState>,
    ApiPath(code): ApiPath<String>,
    body: String,
) -> Result<&'static str, ApiError> {
    let advanced =
        crate::channel_notifications::receive(&state, &code, &body, store::now_micros()).await;
    let advanced = match advanced {
        Err(engine::EngineError::NoChannel) => {
            return Err(ApiError::NotFound {
                code: "UNKNOWN_CHANNEL",
                message: format!("no channel {code:?}"),
            });
        }
        other => other?,
    };
    match advanced {
        crate::channel_notifications::Advanced::Payment(view) => info!(
            channel = %code,
            payment_id = view.payment.id,
            status = %view.payment.status,
            "channel notification"
        ),
        crate::channel_notifications::Advanced::Refund(view) => info!(
            channel = %code,
            refund_id = view.refund.id,
            status = %view.refund.status,
            "channel notification"
        ),
    }
    Ok("success")
}

/// The routing table and the banks marked down on channels.
#[utoipa::path(
    get,
    path = "/v1/channels",
    tag = "merchants",
    responses((status = 200, description = "Routes and outages", body = ChannelsResponse))
)]
pub async fn channels(State(state): State<AppState>) -> Result<Json<ChannelsResponse>, ApiError> {
    let outages = state.store().bank_outages().await?;
    Ok(Json(ChannelsResponse {
        routes: state
            .payments()
            .routes()
            .iter()
            .map(|route| RouteResponse {
                channel: route.channel.clone(),
                sources: route
                    .sources
                    .iter()
                    .map(|source| source.as_str().to_owned())
                    .collect(),
                amount_minor_max: route.amount_minor_max,
                cost_per_ten_thousand: route.cost_per_ten_thousand,
                daily_minor_max: route.daily_minor_max,
            })
            .collect(),
        outages: outages
            .into_iter()
            .map(|outage| OutageRequest {
                channel: outage.channel,
                bank: outage.bank,
                down: true,
            })
            .collect(),
    }))
}

/// An operator marks a bank down on a channel (an outage there), or up
/// again; routing avoids a channel where the payer's bank is down.
#[utoipa::path(
    post,
    path = "/v1/channels/outages",
    tag = "merchants",
    request_body = OutageRequest,
    responses(
        (status = 200, description = "The routing table and outages after the change", body = ChannelsResponse),
        (status = 422, description = "INVALID_ORDER: empty or too long names", body = ErrorBody),
    )
)]
pub async fn set_outage(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<OutageRequest>,
) -> Result<Json<ChannelsResponse>, ApiError> {
    let outage = BankOutage {
        channel: request.channel,
        bank: request.bank,
    };
    state
        .store()
        .set_bank_down(&outage, request.down, store::now_micros())
        .await?;
    info!(channel = %outage.channel, bank = %outage.bank, down = request.down, "bank outage changed");
    channels(State(state)).await
}

/// Most refunds the review queue lists at once.
const REVIEW_QUEUE_MAX: usize = 500;

/// The operator's queue: refunds waiting for review (the platform's own,
/// such as those of duplicate payments), oldest first.
#[utoipa::path(
    get,
    path = "/v1/review/refunds",
    tag = "merchants",
    responses((status = 200, description = "Refunds waiting for review", body = [ReviewQueueEntry]))
)]
pub async fn review_queue(
    State(state): State<AppState>,
) -> Result<Json<Vec<ReviewQueueEntry>>, ApiError> {
    let views = state.payments().review_queue(REVIEW_QUEUE_MAX).await?;
    let mut entries = Vec::with_capacity(views.len());
    for view in views {
        let merchant_id = view.refund.merchant_id.clone();
        entries.push(ReviewQueueEntry {
            merchant_id,
            refund: RefundResponse::try_from(view)?,
        });
    }
    Ok(Json(entries))
}
