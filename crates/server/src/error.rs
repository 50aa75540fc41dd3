//! [`ApiError`]: every error the API returns, as one `{code, message}` body
//! with the HTTP status its code maps to.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use engine::{AgreementError, EngineError, OrderError, OrderStoreError};
use ledger::{AccountError, LedgerError, StoreError};
use money::MoneyError;
use serde::{Deserialize, Serialize};
use tracing::{debug, error};
use utoipa::ToSchema;

/// The body of every error response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// A stable, machine-readable code such as `INSUFFICIENT_FUNDS`.
    #[schema(example = "INSUFFICIENT_FUNDS")]
    pub code: String,
    /// A sentence for people; its wording may change.
    #[schema(example = "account 2 has 0 available, needs 100")]
    pub message: String,
}

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The ledger refused the operation.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// The account could not be opened.
    #[error(transparent)]
    Account(#[from] AccountError),
    /// The store failed.
    #[error(transparent)]
    Store(StoreError),
    /// The request could not be read: bad JSON, a missing field, a wrong
    /// type, an amount that does not fit in 64 bits, a bad path or query.
    #[error("{0}")]
    Malformed(String),
    /// Well formed but not acceptable (422), with its own code.
    #[error("{message}")]
    Invalid { code: &'static str, message: String },
    /// The body was refused before it was read (too large, wrong type).
    #[error("{message}")]
    BodyRefused {
        status: StatusCode,
        code: &'static str,
        message: String,
    },
    /// No such resource (404), with its own code.
    #[error("{message}")]
    NotFound { code: &'static str, message: String },
    /// Refused for the state it found (409), with its own code.
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    #[error("no route for {0}")]
    RouteNotFound(String),
    #[error("method not allowed on this route")]
    MethodNotAllowed,
    /// The payment engine refused or failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// A signed request whose signature, timestamp, nonce or merchant is
    /// not accepted (401).
    #[error("{message}")]
    Unauthorized { code: &'static str, message: String },
    /// A bug or an impossible state on the server side.
    #[error("{0}")]
    Internal(String),
}

impl From<OrderStoreError> for ApiError {
    fn from(error: OrderStoreError) -> Self {
        ApiError::Engine(EngineError::from(error))
    }
}

fn order_status(error: &OrderError) -> StatusCode {
    match error {
        OrderError::NotFound { .. } => StatusCode::NOT_FOUND,
        OrderError::IllegalTransition(_)
        | OrderError::RefundExceedsRefundable { .. }
        | OrderError::ReferenceConflict { .. }
        | OrderError::ConcurrentChange { .. }
        | OrderError::EscrowRefundInFlight { .. }
        | OrderError::EscrowReleasing { .. } => StatusCode::CONFLICT,
        OrderError::InvalidText { .. }
        | OrderError::InvalidSource(_)
        | OrderError::InvalidAmount(_)
        | OrderError::InvalidPartCount { .. }
        | OrderError::InstructionsDoNotCoverPayment { .. } => StatusCode::UNPROCESSABLE_ENTITY,
    }
}

fn agreement_status(error: &AgreementError) -> StatusCode {
    match error {
        AgreementError::NotFound(_) => StatusCode::NOT_FOUND,
        AgreementError::NotActive { .. }
        | AgreementError::NotPending { .. }
        | AgreementError::AlreadySigned { .. } => StatusCode::CONFLICT,
        AgreementError::Invalid { .. }
        | AgreementError::Required(_)
        | AgreementError::NotAccepted(_)
        | AgreementError::MemberMismatch { .. }
        | AgreementError::BankMismatch { .. }
        | AgreementError::SmsCodeWrong { .. }
        | AgreementError::AttemptsExceeded(_)
        | AgreementError::RevokeRefused { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        // Not answered: nothing changed, and the same call may be repeated.
        AgreementError::Channel(
            channels::ChannelError::Timeout { .. } | channels::ChannelError::BankDown { .. },
        ) => StatusCode::SERVICE_UNAVAILABLE,
        AgreementError::Channel(_) => StatusCode::BAD_GATEWAY,
    }
}

fn engine_parts(error: &EngineError) -> (StatusCode, &'static str, String) {
    match error {
        EngineError::Agreement(agreement) => (
            agreement_status(agreement),
            agreement.code(),
            agreement.to_string(),
        ),
        EngineError::CollectionBatch(batch) => {
            let status = match batch {
                engine::CollectionBatchError::NotFound(_) => StatusCode::NOT_FOUND,
                engine::CollectionBatchError::NotClosed(_) => StatusCode::CONFLICT,
                engine::CollectionBatchError::InvalidFile { .. }
                | engine::CollectionBatchError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            };
            (status, batch.code(), batch.to_string())
        }
        EngineError::ChannelNotification(channel) => {
            let status = match channel {
                channels::ChannelError::UnknownOrder { .. } => StatusCode::NOT_FOUND,
                _ => StatusCode::BAD_REQUEST,
            };
            (status, channel.code(), error.to_string())
        }
        EngineError::Store(store) => store_parts(store),
        EngineError::Ledger(ledger) => (ledger_status(ledger), ledger.code(), ledger.to_string()),
        EngineError::Order(order) => (order_status(order), order.code(), order.to_string()),
        EngineError::TradeNotPayable { .. } | EngineError::NotRefundable(_) => {
            (StatusCode::CONFLICT, error.code(), error.to_string())
        }
        EngineError::FeeCounter(fees::FeeCounterError::Store(store)) => store_parts(store),
        EngineError::FeeCounter(_) | EngineError::Invariant(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            error.code(),
            error.to_string(),
        ),
        EngineError::NoChannel => (
            StatusCode::SERVICE_UNAVAILABLE,
            error.code(),
            error.to_string(),
        ),
        EngineError::UnknownProduct(_)
        | EngineError::StoredValue(_)
        | EngineError::SourceNotAllowed { .. }
        | EngineError::TooManyChannelSources
        | EngineError::NoRoute(_)
        | EngineError::LimitExceeded { .. }
        | EngineError::CardLimitExceeded { .. } => (
            StatusCode::UNPROCESSABLE_ENTITY,
            error.code(),
            error.to_string(),
        ),
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Account(account) => ApiError::Account(account),
            other => ApiError::Store(other),
        }
    }
}

impl From<MoneyError> for ApiError {
    fn from(error: MoneyError) -> Self {
        let code = match error {
            MoneyError::UnknownCurrency(_) => "UNKNOWN_CURRENCY",
            MoneyError::CurrencyWithoutMinorUnit(_) => "UNSUPPORTED_CURRENCY",
            _ => "INVALID_MONEY",
        };
        ApiError::Invalid {
            code,
            message: error.to_string(),
        }
    }
}

/// The HTTP status of a refused ledger operation.
pub fn ledger_status(error: &LedgerError) -> StatusCode {
    match error {
        LedgerError::AccountNotFound(_) | LedgerError::TransferNotFound(_) => StatusCode::NOT_FOUND,
        LedgerError::InsufficientFunds { .. }
        | LedgerError::InsufficientFrozen { .. }
        | LedgerError::DuplicateKeyConflict { .. }
        | LedgerError::NotPending(_)
        | LedgerError::PendingAlreadyResolved { .. }
        | LedgerError::PendingExpired(_)
        | LedgerError::NotReversible(_)
        | LedgerError::AlreadyReversed(_) => StatusCode::CONFLICT,
        LedgerError::InvalidKey { .. }
        | LedgerError::LegCount { .. }
        | LedgerError::InvalidAmount { .. }
        | LedgerError::DescriptionTooLong { .. }
        | LedgerError::AccountOnBothSides(_)
        | LedgerError::UnbalancedTransfer { .. }
        | LedgerError::CurrencyMismatch { .. }
        | LedgerError::PostExceedsPending { .. }
        | LedgerError::PartialPostNeedsTwoLegs
        | LedgerError::InvalidTimeout { .. }
        | LedgerError::LinkedOperationFailed
        | LedgerError::LinkedChainOpen
        | LedgerError::Overflow => StatusCode::UNPROCESSABLE_ENTITY,
    }
}

fn account_status(error: &AccountError) -> StatusCode {
    match error {
        AccountError::AlreadyExists(_) => StatusCode::CONFLICT,
        AccountError::InvalidText { .. } | AccountError::NegativeOverdraft => {
            StatusCode::UNPROCESSABLE_ENTITY
        }
    }
}

fn store_parts(error: &StoreError) -> (StatusCode, &'static str, String) {
    match error {
        StoreError::Account(account) => {
            (account_status(account), account.code(), account.to_string())
        }
        StoreError::BatchTooLarge { .. } => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "BATCH_TOO_LARGE",
            error.to_string(),
        ),
        StoreError::Closed => (
            StatusCode::SERVICE_UNAVAILABLE,
            "UNAVAILABLE",
            error.to_string(),
        ),
        StoreError::Database(_) | StoreError::Corrupt(_) | StoreError::Invariant(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "STORE_ERROR",
            "the ledger store failed; the server log has the details".to_owned(),
        ),
    }
}

impl ApiError {
    /// The status, code and message this error is answered with.
    pub fn parts(&self) -> (StatusCode, &'static str, String) {
        match self {
            ApiError::Ledger(error) => (ledger_status(error), error.code(), error.to_string()),
            ApiError::Account(error) => (account_status(error), error.code(), error.to_string()),
            ApiError::Store(error) => store_parts(error),
            ApiError::Malformed(message) => (
                StatusCode::BAD_REQUEST,
                "MALFORMED_REQUEST",
                message.clone(),
            ),
            ApiError::Invalid { code, message } => {
                (StatusCode::UNPROCESSABLE_ENTITY, code, message.clone())
            }
            ApiError::BodyRefused {
                status,
                code,
                message,
            } => (*status, code, message.clone()),
            ApiError::NotFound { code, message } => (StatusCode::NOT_FOUND, code, message.clone()),
            ApiError::Conflict { code, message } => (StatusCode::CONFLICT, code, message.clone()),
            ApiError::RouteNotFound(_) => (StatusCode::NOT_FOUND, "NOT_FOUND", self.to_string()),
            ApiError::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "METHOD_NOT_ALLOWED",
                self.to_string(),
            ),
            ApiError::Engine(error) => engine_parts(error),
            ApiError::Unauthorized { code, message } => {
                (StatusCode::UNAUTHORIZED, code, message.clone())
            }
            ApiError::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL_ERROR",
                "internal error; the server log has the details".to_owned(),
            ),
        }
    }

    /// The `{code, message}` body of this error.
    pub fn body(&self) -> ErrorBody {
        let (_, code, message) = self.parts();
        ErrorBody {
            code: code.to_owned(),
            message,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, message) = self.parts();
        if status.is_server_error() {
            error!(status = status.as_u16(), code, error = %self, "request failed");
        } else {
            debug!(status = status.as_u16(), code, %message, "request refused");
        }
        let body = ErrorBody {
            code: code.to_owned(),
            message,
        };
        (status, Json(body)).into_response()
    }
}
