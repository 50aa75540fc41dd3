//! The HTTP JSON API over the ledger (axum).
//!
//! **Architecture Invariant:** the domain types do not derive serde; this
//! crate owns its request and response types ([`model`]) and converts. Every
//! error is an [`ApiError`] answered as `{code, message}`.
//!
//! Error codes and their HTTP statuses:
//!
//! | status | codes |
//! | --- | --- |
//! | 400 | `MALFORMED_REQUEST` (bad JSON, a missing or unknown field, a wrong type, an amount outside 64 bits, a bad path id, query or timestamp) |
//! | 404 | `ACCOUNT_NOT_FOUND` (also for a transfer leg naming an unknown account), `TRANSFER_NOT_FOUND`, `UNKNOWN_FEE_RULE`, `NOT_FOUND` (no such route) |
//! | 405 | `METHOD_NOT_ALLOWED` |
//! | 409 | `FEE_RULES_CONTENDED`, `ACCOUNT_EXISTS`, `INSUFFICIENT_FUNDS`, `INSUFFICIENT_FROZEN`, `DUPLICATE_KEY_CONFLICT`, `NOT_PENDING`, `PENDING_ALREADY_RESOLVED`, `PENDING_EXPIRED`, `NOT_REVERSIBLE`, `ALREADY_REVERSED` |
//! | 413 | `PAYLOAD_TOO_LARGE` |
//! | 415 | `UNSUPPORTED_MEDIA_TYPE` |
//! | 422 | `FEE_RULE_NOT_FOUND`, `FEE_CURRENCY_MISMATCH`, `FEE_INVALID_AMOUNT`, `FEE_INVALID_DATE` (`POST /v1/fees/quote`) |
//! | 422 | `FEE_CONFIG_INVALID`, `FEE_RULE_DUPLICATE`, `FEE_TOO_MANY_RULES`, `OPERATOR_AND_REASON_REQUIRED` (`PUT`/`DELETE /v1/fees/rules/{id}`) |
//! | 422 | every other ledger code (`UNBALANCED_TRANSFER`, `CURRENCY_MISMATCH`, `INVALID_AMOUNT`, `INVALID_LEG_COUNT`, `INVALID_KEY`, ...), `RESERVED_KEY` (a key of the engine's own patterns), `UNKNOWN_CURRENCY`, `UNSUPPORTED_CURRENCY`, `INVALID_ACCOUNT`, `INVALID_OVERDRAFT`, `INVALID_TIMEOUT`, `INVALID_LIMIT`, `BATCH_TOO_LARGE` |
//! | 404, 409, 422 | agreements (`/v1/agreements`, and payments naming one): `AGREEMENT_NOT_FOUND` (also another merchant's); `AGREEMENT_NOT_ACTIVE`, `AGREEMENT_NOT_PENDING`, `AGREEMENT_EXISTS`; `INVALID_AGREEMENT`, `AGREEMENT_REQUIRED`, `AGREEMENT_NOT_ACCEPTED`, `AGREEMENT_MEMBER_MISMATCH`, `AGREEMENT_BANK_MISMATCH`, `SMS_CODE_WRONG`, `SMS_ATTEMPTS_EXCEEDED`, `AGREEMENT_REVOKE_REFUSED` |
//! | 404, 409, 422 | collection batches (`/v1/collection-batches`): `BATCH_NOT_FOUND` (also another merchant's); `BATCH_NOT_CLOSED`, `REFERENCE_CONFLICT`; `INVALID_BATCH_FILE` (naming line and field), `INVALID_BATCH` |
//! | 500 | `STORE_ERROR`, `INTERNAL_ERROR` |
//! | 503 | `UNAVAILABLE` (the ledger is shutting down), `CHANNEL_TIMEOUT` / `BANK_DOWN` (a signing step the channel did not answer: repeat it) |

pub mod channel_notifications;
pub mod collection_batches;
pub mod config;
mod doc;
mod error;
mod extract;
pub mod fee_billing;
mod handlers;
pub mod model;
mod notify;
pub mod reconciliation;
pub mod settlement;
pub mod signature;
mod state;
pub mod timestamp;

pub use config::{Config, ConfigError};
pub use error::{ApiError, ErrorBody};
pub use handlers::fees::BUILTIN_FEE_RULES;
pub use notify::deliver_due;
pub use state::{Agreements, AppState, FeeRuleFile, Payments, start_fee_rules};

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::Uri;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use handlers::{accounts, agreements, batches, fee_rules, fees, payments, system, transfers};
use std::time::{Duration, Instant};
use store::Ledger;
use tracing::{info, warn};
use utoipa::OpenApi;

/// The largest batch body accepted: room for the largest batch of
/// multi-leg transfers.
const BATCH_BODY_BYTES_MAX: usize = 64 * 1024 * 1024;

/// How often the resolver looks for unfinished payments, and how long a
/// payment must have been quiet before it is looked at.
const RESOLVER_INTERVAL: Duration = Duration::from_secs(1);
const RESOLVER_QUIET_MICROS: i64 = 1_000_000;
/// Most payments one resolver round advances.
const RESOLVER_BATCH_MAX: usize = 256;
/// How often a server looks for a newer stored fee rule table: a change
/// made by any process on the same database is in force in every serving
/// process at most this long (plus one read of the table) after it
/// commits.
const FEE_RULES_REFRESH_INTERVAL: Duration = Duration::from_secs(1);

/// The API's routes over `state`.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/health", get(system::health))
        .route("/openapi.json", get(system::openapi_document))
        .route("/v1/ledger/check", get(system::check))
        .route("/v1/accounts", post(accounts::create))
        .route("/v1/accounts/{id}", get(accounts::get))
        .route("/v1/accounts/{id}/balance", get(accounts::balance))
        .route("/v1/accounts/{id}/statement", get(accounts::statement))
        .route("/v1/accounts/{id}/freeze", post(accounts::freeze))
        .route("/v1/accounts/{id}/unfreeze", post(accounts::unfreeze))
        .route("/v1/transfers", post(transfers::create))
        .route("/v1/transfers/{id}", get(transfers::get))
        .route("/v1/transfers/{id}/post", post(transfers::post_pending))
        .route("/v1/transfers/{id}/void", post(transfers::void_pending))
        .route("/v1/transfers/{id}/reverse", post(transfers::reverse))
        .route("/v1/merchants", post(payments::create_merchant))
        .route("/v1/payments", post(payments::pay))
        .route("/v1/payments/{id}", get(payments::get_payment))
        .route("/v1/trades/{out_trade_no}", get(payments::get_trade))
        .route(
            "/v1/trades/{out_trade_no}/release",
            post(handlers::escrows::release),
        )
        .route(
            "/v1/trades/{out_trade_no}/escrow",
            get(handlers::escrows::get),
        )
        .route(
            "/v1/escrows/release",
            post(handlers::escrows::operator_release),
        )
        .route("/v1/refunds", post(payments::refund))
        .route("/v1/refunds/{id}", get(payments::get_refund))
        .route("/v1/refunds/{id}/review", post(payments::review_refund))
        .route("/v1/agreements", post(agreements::sign))
        .route("/v1/agreements/{id}", get(agreements::get))
        .route("/v1/agreements/{id}/confirm", post(agreements::confirm))
        .route("/v1/agreements/{id}/revoke", post(agreements::revoke))
        .route("/v1/channels", get(payments::channels))
        .route("/v1/channels/outages", post(payments::set_outage))
        .route(
            "/v1/channels/{code}/notifications",
            post(payments::channel_notification),
        )
        .route("/v1/review/refunds", get(payments::review_queue))
        .route(
            "/v1/recon/discrepancies",
            get(handlers::reconciliation::list),
        )
        .route(
            "/v1/recon/discrepancies/{id}",
            get(handlers::reconciliation::get),
        )
        .route(
            "/v1/recon/discrepancies/{id}/actions",
            post(handlers::reconciliation::act),
        )
        .route("/v1/recon/internal", get(handlers::internal::check))
        .route("/v1/bills", get(handlers::bills::get))
        .route("/v1/fees/quote", post(fees::quote))
        .route("/v1/fees/rules", get(fee_rules::list))
        .route("/v1/fees/rules/history", get(fee_rules::history))
        .route("/v1/fee-account", get(handlers::fee_accounts::get_account))
        .route(
            "/v1/fee-account/deposits",
            post(handlers::fee_accounts::deposit),
        )
        .route(
            "/v1/merchants/{id}/fee-account/deposits",
            post(handlers::fee_accounts::operator_deposit),
        )
        .route("/v1/fee-bills", get(handlers::fee_accounts::bills))
        .route(
            "/v1/fees/rules/{id}",
            get(fee_rules::get)
                .put(fee_rules::put)
                .delete(fee_rules::delete),
        )
        .route(
            "/v1/collection-batches",
            post(handlers::collection_batches::submit)
                .layer(DefaultBodyLimit::max(BATCH_BODY_BYTES_MAX)),
        )
        .route(
            "/v1/collection-batches/{id}",
            get(handlers::collection_batches::get),
        )
        .route(
            "/v1/collection-batches/{id}/return-file",
            get(handlers::collection_batches::return_file),
        )
        .route(
            "/v1/batches",
            post(batches::submit).layer(DefaultBodyLimit::max(BATCH_BODY_BYTES_MAX)),
        )
        .fallback(route_not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn(log_request))
        .with_state(state)
}

/// Serves the API on `listener` until ctrl-c or SIGTERM, then finishes the
/// requests in flight. Beside it, the resolver finishes payments that are
/// PROCESSING or were interrupted by a restart, and the stored fee rules
/// are followed (seeded from the built-in file on a store's first start).
pub async fn serve(listener: tokio::net::TcpListener, ledger: Ledger) -> std::io::Result<()> {
    let state = AppState::new(ledger).map_err(std::io::Error::other)?;
    serve_state(listener, state).await
}

/// [`serve`] with a state the caller built (and may keep a clone of).
pub async fn serve_state(
    listener: tokio::net::TcpListener,
    state: AppState,
) -> std::io::Result<()> {
    let address = listener.local_addr()?;
    let fee_rules = state
        .start_fee_rules(None)
        .await
        .map_err(std::io::Error::other)?;
    info!(version = fee_rules.version, "fee rules in force");
    let resolver = tokio::spawn(resolve_forever(state.clone()));
    let notifier = tokio::spawn(notify_forever(state.clone()));
    let follower = tokio::spawn(follow_fee_rules_forever(state.clone()));
    info!(%address, "serving the paycore API");
    let served = axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown_signal())
        .await;
    resolver.abort();
    notifier.abort();
    follower.abort();
    served?;
    info!(%address, "server stopped");
    Ok(())
}

/// Delivers due notifications, once a second.
async fn notify_forever(state: AppState) {
    let mut interval = tokio::time::interval(RESOLVER_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        deliver_due(&state, store::now_micros()).await;
    }
}

/// Puts a newer stored fee rule table in force, once a second, so that
/// processes sharing a database price alike.
async fn follow_fee_rules_forever(state: AppState) {
    let mut interval = tokio::time::interval(FEE_RULES_REFRESH_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut in_force = state.fee_table().version();
    let mut failing = false;
    loop {
        interval.tick().await;
        match state.load_fee_rules().await {
            Ok(version) => {
                if version != in_force {
                    info!(version, "newer fee rules in force");
                    in_force = version;
                }
                failing = false;
            }
            // Logged once per failing spell, not every second.
            Err(error) if !failing => {
                failing = true;
                warn!(%error, code = error.code(), "the stored fee rules could not be put in force");
            }
            Err(_) => {}
        }
    }
}

/// Queries channels for PROCESSING payments and finishes interrupted ones,
/// runs the collection batches (批量代扣) a round, and releases escrows
/// (担保交易) whose auto-release time has passed, once a second.
async fn resolve_forever(state: AppState) {
    let mut interval = tokio::time::interval(RESOLVER_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let resolved = state
            .payments()
            .resolve_unfinished(
                store::now_micros(),
                RESOLVER_QUIET_MICROS,
                RESOLVER_BATCH_MAX,
            )
            .await;
        match resolved {
            Ok(results) => {
                for result in results {
                    if let Err(error) = result {
                        warn!(%error, code = error.code(), "a payment could not be advanced");
                    }
                }
            }
            Err(error) => warn!(%error, "looking for unfinished payments failed"),
        }
        let refunds = state
            .payments()
            .resolve_unfinished_refunds(
                store::now_micros(),
                RESOLVER_QUIET_MICROS,
                RESOLVER_BATCH_MAX,
            )
            .await;
        match refunds {
            Ok(results) => {
                for result in results {
                    if let Err(error) = result {
                        warn!(%error, code = error.code(), "a refund could not be advanced");
                    }
                }
            }
            Err(error) => warn!(%error, "looking for unfinished refunds failed"),
        }
        collection_batches::run_due(&state, store::now_micros()).await;
        match state
            .payments()
            .release_due_escrows(store::now_micros(), RESOLVER_BATCH_MAX)
            .await
        {
            Ok(results) => {
                for result in results {
                    if let Err(error) = result {
                        warn!(%error, code = error.code(), "an escrow could not be released");
                    }
                }
            }
            Err(error) => warn!(%error, "looking for escrows to release failed"),
        }
    }
}

/// The OpenAPI 3 document served at `GET /openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    doc::ApiDoc::openapi()
        .merge_from(fees::FeesDoc::openapi())
        .merge_from(fee_rules::FeeRulesDoc::openapi())
        .merge_from(handlers::bills::BillsDoc::openapi())
        .merge_from(handlers::fee_accounts::FeeAccountsDoc::openapi())
        .merge_from(handlers::internal::InternalDoc::openapi())
        .merge_from(agreements::AgreementsDoc::openapi())
        .merge_from(handlers::collection_batches::CollectionBatchesDoc::openapi())
        .merge_from(handlers::escrows::EscrowsDoc::openapi())
}

async fn route_not_found(uri: Uri) -> ApiError {
    ApiError::RouteNotFound(uri.path().to_owned())
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

async fn log_request(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let route = request.extensions().get::<MatchedPath>().map_or_else(
        || request.uri().path().to_owned(),
        |path| path.as_str().to_owned(),
    );
    let started = Instant::now();
    let response = next.run(request).await;
    let elapsed_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    info!(%method, route, status = response.status().as_u16(), elapsed_us, "request");
    response
}

/// Resolves on ctrl-c or SIGTERM. A signal that cannot be listened for is
/// logged and never fires.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            warn!(%error, "cannot listen for ctrl-c");
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        () = ctrl_c => info!(signal = "ctrl-c", "shutting down"),
        () = terminate() => info!(signal = "SIGTERM", "shutting down"),
    }
}

#[cfg(unix)]
async fn terminate() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut stream) => {
            stream.recv().await;
        }
        Err(error) => {
            warn!(%error, "cannot listen for SIGTERM");
            std::future::pending::<()>().await;
        }
    }
}

#[cfg(not(unix))]
async fn terminate() {
    std::future::pending::<()>().await;
}
