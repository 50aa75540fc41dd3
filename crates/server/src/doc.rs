//! The OpenAPI document, derived from the handlers' annotations.

use crate::error::ErrorBody;
use crate::handlers::{accounts, batches, payments, system, transfers};
use crate::model::*;
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "paycore",
        description = "The paycore API: ledger and payments. Money is integer minor units (`amount_minor`) \
            plus an ISO 4217 `currency`; timestamps are RFC 3339. Every error body is \
            `{code, message}`.",
    ),
    paths(
        system::health,
        system::openapi_document,
        system::check,
        accounts::create,
        accounts::get,
        accounts::balance,
        accounts::statement,
        accounts::freeze,
        accounts::unfreeze,
        transfers::create,
        transfers::get,
        transfers::post_pending,
        transfers::void_pending,
        transfers::reverse,
        batches::submit,
        payments::create_merchant,
        payments::pay,
        payments::get_payment,
        payments::get_trade,
        payments::refund,
        payments::get_refund,
        payments::review_refund,
        payments::channels,
        payments::set_outage,
        payments::review_queue,
    ),
    components(schemas(
        ErrorBody,
        HealthResponse,
        CheckResponse,
        Side,
        SubjectClass,
        OwnerKind,
        AccountKind,
        TransferKind,
        TransferStatus,
        CreateAccountRequest,
        AccountResponse,
        BalanceViewResponse,
        TotalsResponse,
        BalanceResponse,
        StatementLineResponse,
        StatementResponse,
        LegRequest,
        TransferRequest,
        PostPendingRequest,
        VoidPendingRequest,
        ReverseRequest,
        HoldRequest,
        EntryResponse,
        TransferResponse,
        BatchRequest,
        BatchOperation,
        BatchTransfer,
        BatchPostPending,
        BatchVoidPending,
        BatchReverse,
        BatchHold,
        BatchResult,
        BatchResponse,
        CreateMerchantRequest,
        MerchantResponse,
        FundingSourceName,
        SourceRequest,
        PayRequestBody,
        TradeResponse,
        InstructionResponse,
        PaymentResponse,
        RefundRequestBody,
        ReviewRequest,
        RefundPartResponse,
        RefundResponse,
        RouteResponse,
        OutageRequest,
        ChannelsResponse,
        ReviewQueueEntry,
    )),
    tags(
        (name = "system", description = "Health and the API document"),
        (name = "accounts", description = "Accounts, balances, statements, holds"),
        (name = "transfers", description = "Transfers, two-phase transfers, reversals, batches"),
        (name = "ledger", description = "Whole-ledger checks"),
        (name = "merchants", description = "Merchants and their signing keys (operator)"),
        (name = "payments", description = "Signed merchant calls: pay a trade, read payments and trades. \
            Each request carries x-paycore-merchant, x-paycore-timestamp (Unix seconds), x-paycore-nonce \
            and x-paycore-signature: the hex HMAC-SHA256, under the merchant's signing key, of \
            METHOD\\nPATH_AND_QUERY\\nTIMESTAMP\\nNONCE\\nhex(SHA-256(body))."),
    )
)]
pub struct ApiDoc;
