//! The OpenAPI document, derived from the handlers' annotations.

use crate::error::ErrorBody;
use crate::handlers::{accounts, batches, system, transfers};
use crate::model::*;
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "paycore",
        description = "The paycore ledger API. Money is integer minor units (`amount_minor`) \
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
    )),
    tags(
        (name = "system", description = "Health and the API document"),
        (name = "accounts", description = "Accounts, balances, statements, holds"),
        (name = "transfers", description = "Transfers, two-phase transfers, reversals, batches"),
        (name = "ledger", description = "Whole-ledger checks"),
    )
)]
pub struct ApiDoc;
