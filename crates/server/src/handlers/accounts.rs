use super::{Created, submit_one};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::model::{
    AccountResponse, BalanceQuery, BalanceResponse, CreateAccountRequest, HoldRequest,
    StatementLineResponse, StatementParams, StatementResponse, TransferResponse,
};
use crate::timestamp;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use ledger::{
    Account, AccountId, LedgerError, LedgerStore, STATEMENT_LINES_MAX, StatementLine,
    StatementQuery, TimestampMicros, TransferId,
};
use store::Ledger;
use tracing::info;

/// Lines per statement page unless the caller asks otherwise.
const STATEMENT_LIMIT_DEFAULT: usize = 100;

/// Loads an account or answers 404 `ACCOUNT_NOT_FOUND`.
async fn load_account(ledger: &Ledger, account_id: AccountId) -> Result<Account, ApiError> {
    ledger
        .store()
        .account(account_id)
        .await?
        .ok_or(ApiError::Ledger(LedgerError::AccountNotFound(account_id)))
}

/// Opens an account with zero balances.
#[utoipa::path(
    post,
    path = "/v1/accounts",
    tag = "accounts",
    request_body = CreateAccountRequest,
    responses(
        (status = 201, description = "The account was opened", body = AccountResponse),
        (status = 400, description = "MALFORMED_REQUEST", body = ErrorBody),
        (status = 409, description = "ACCOUNT_EXISTS: the message names the existing id", body = ErrorBody),
        (status = 422, description = "UNKNOWN_CURRENCY, INVALID_ACCOUNT, INVALID_OVERDRAFT", body = ErrorBody),
    )
)]
pub async fn create(
    State(ledger): State<Ledger>,
    ApiJson(request): ApiJson<CreateAccountRequest>,
) -> Result<(StatusCode, Json<AccountResponse>), ApiError> {
    let new_account = request.into_new_account()?;
    let account = ledger.store().create_account(&new_account).await?;
    info!(
        account_id = account.id,
        kind = account.kind.as_str(),
        owner_id = %account.owner_id,
        currency = account.currency.code(),
        "account opened"
    );
    Ok((
        StatusCode::CREATED,
        Json(AccountResponse::try_from(account)?),
    ))
}

/// One account with its balances.
#[utoipa::path(
    get,
    path = "/v1/accounts/{id}",
    tag = "accounts",
    params(("id" = i64, Path, description = "Account id")),
    responses(
        (status = 200, description = "The account", body = AccountResponse),
        (status = 404, description = "ACCOUNT_NOT_FOUND", body = ErrorBody),
    )
)]
pub async fn get(
    State(ledger): State<Ledger>,
    ApiPath(account_id): ApiPath<AccountId>,
) -> Result<Json<AccountResponse>, ApiError> {
    let account = load_account(&ledger, account_id).await?;
    Ok(Json(AccountResponse::try_from(account)?))
}

/// The posted balance as of an instant, or the current balance view.
#[utoipa::path(
    get,
    path = "/v1/accounts/{id}/balance",
    tag = "accounts",
    params(("id" = i64, Path, description = "Account id"), BalanceQuery),
    responses(
        (status = 200, description = "The balance", body = BalanceResponse),
        (status = 400, description = "MALFORMED_REQUEST: `at` is not RFC 3339", body = ErrorBody),
        (status = 404, description = "ACCOUNT_NOT_FOUND", body = ErrorBody),
    )
)]
pub async fn balance(
    State(ledger): State<Ledger>,
    ApiPath(account_id): ApiPath<AccountId>,
    ApiQuery(query): ApiQuery<BalanceQuery>,
) -> Result<Json<BalanceResponse>, ApiError> {
    let at = query
        .at
        .as_deref()
        .map(|text| timestamp::parse("at", text))
        .transpose()?;
    let account = load_account(&ledger, account_id).await?;
    let response = match at {
        Some(at) => {
            let ledger_minor = ledger.store().balance_at(account_id, at).await?;
            BalanceResponse::at(&account, timestamp::format(at)?, ledger_minor)
        }
        None => BalanceResponse::current(&account, timestamp::format(store::now_micros())?)?,
    };
    Ok(Json(response))
}

/// The statement query a request asks for.
fn statement_query(
    account_id: AccountId,
    params: &StatementParams,
) -> Result<StatementQuery, ApiError> {
    let limit = params.limit.unwrap_or(STATEMENT_LIMIT_DEFAULT);
    if !(1..=STATEMENT_LINES_MAX).contains(&limit) {
        return Err(ApiError::Invalid {
            code: "INVALID_LIMIT",
            message: format!("limit must be 1 to {STATEMENT_LINES_MAX}, got {limit}"),
        });
    }
    Ok(StatementQuery {
        account_id,
        from: timestamp::parse_or("from", params.from.as_deref(), TimestampMicros::MIN)?,
        to: timestamp::parse_or("to", params.to.as_deref(), TimestampMicros::MAX)?,
        after_transfer_id: params.after.unwrap_or(0),
        limit,
    })
}

/// Lines to ask the store for: one more than the page where allowed, to
/// see whether more follow and whether the page's last transfer goes on.
fn fetch_size(limit: usize) -> usize {
    limit.saturating_add(1).min(STATEMENT_LINES_MAX)
}

/// Makes a page of at most `limit` of the `fetch_size(limit)` lines read,
/// with the cursor of the next page if there may be one. The cursor is a
/// transfer id, so a page never ends inside a transfer's lines, unless one
/// transfer alone has more lines than the page holds.
fn paginate(
    mut lines: Vec<StatementLine>,
    limit: usize,
) -> (Vec<StatementLine>, Option<TransferId>) {
    let fetched = fetch_size(limit);
    if lines.len() < fetched {
        return (lines, None);
    }
    let next = if fetched > limit { lines.pop() } else { None };
    let last = lines.last().map(|line| line.transfer_id);
    let cut = match next {
        Some(next) => last.filter(|last| *last == next.transfer_id),
        None => last,
    };
    let first_of_cut = cut.and_then(|cut| lines.iter().position(|line| line.transfer_id == cut));
    if let Some(position) = first_of_cut.filter(|position| *position > 0) {
        lines.truncate(position);
    }
    let cursor = lines.last().map(|line| line.transfer_id);
    (lines, cursor)
}

/// The account's statement (账单): its entries in order, with counterparties.
#[utoipa::path(
    get,
    path = "/v1/accounts/{id}/statement",
    tag = "accounts",
    params(("id" = i64, Path, description = "Account id"), StatementParams),
    responses(
        (status = 200, description = "One page of the statement", body = StatementResponse),
        (status = 400, description = "MALFORMED_REQUEST", body = ErrorBody),
        (status = 404, description = "ACCOUNT_NOT_FOUND", body = ErrorBody),
        (status = 422, description = "INVALID_LIMIT", body = ErrorBody),
    )
)]
pub async fn statement(
    State(ledger): State<Ledger>,
    ApiPath(account_id): ApiPath<AccountId>,
    ApiQuery(params): ApiQuery<StatementParams>,
) -> Result<Json<StatementResponse>, ApiError> {
    let query = statement_query(account_id, &params)?;
    load_account(&ledger, account_id).await?;
    let fetch = StatementQuery {
        limit: fetch_size(query.limit),
        ..query
    };
    let lines = ledger.store().statement(fetch).await?;
    let (lines, next_cursor) = paginate(lines, query.limit);
    let lines = lines
        .into_iter()
        .map(StatementLineResponse::try_from)
        .collect::<Result<_, _>>()?;
    Ok(Json(StatementResponse {
        account_id,
        lines,
        next_cursor,
    }))
}

/// Freezes (冻结) part of the available balance.
#[utoipa::path(
    post,
    path = "/v1/accounts/{id}/freeze",
    tag = "accounts",
    params(("id" = i64, Path, description = "Account id")),
    request_body = HoldRequest,
    responses(
        (status = 201, description = "The freeze transfer", body = TransferResponse),
        (status = 404, description = "ACCOUNT_NOT_FOUND", body = ErrorBody),
        (status = 409, description = "INSUFFICIENT_FUNDS, DUPLICATE_KEY_CONFLICT", body = ErrorBody),
        (status = 422, description = "INVALID_AMOUNT, INVALID_KEY, DESCRIPTION_TOO_LONG", body = ErrorBody),
    )
)]
pub async fn freeze(
    State(ledger): State<Ledger>,
    ApiPath(account_id): ApiPath<AccountId>,
    ApiJson(request): ApiJson<HoldRequest>,
) -> Result<Created, ApiError> {
    submit_one(&ledger, request.into_freeze(account_id)).await
}

/// Releases frozen money back to the available balance.
#[utoipa::path(
    post,
    path = "/v1/accounts/{id}/unfreeze",
    tag = "accounts",
    params(("id" = i64, Path, description = "Account id")),
    request_body = HoldRequest,
    responses(
        (status = 201, description = "The unfreeze transfer", body = TransferResponse),
        (status = 404, description = "ACCOUNT_NOT_FOUND", body = ErrorBody),
        (status = 409, description = "INSUFFICIENT_FROZEN, DUPLICATE_KEY_CONFLICT", body = ErrorBody),
        (status = 422, description = "INVALID_AMOUNT, INVALID_KEY, DESCRIPTION_TOO_LONG", body = ErrorBody),
    )
)]
pub async fn unfreeze(
    State(ledger): State<Ledger>,
    ApiPath(account_id): ApiPath<AccountId>,
    ApiJson(request): ApiJson<HoldRequest>,
) -> Result<Created, ApiError> {
    submit_one(&ledger, request.into_unfreeze(account_id)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(transfer_id: TransferId) -> StatementLine {
        StatementLine {
            transfer_id,
            leg_index: 0,
            kind: ledger::TransferKind::Transfer,
            side: ledger::Side::Credit,
            amount_minor: 1,
            currency: money::Currency::CNY,
            pending: false,
            balance_after_minor: 1,
            posted_at: 0,
            description: String::new(),
            counterparty_account_ids: Vec::new(),
        }
    }

    fn ids(lines: &[StatementLine]) -> Vec<TransferId> {
        lines.iter().map(|line| line.transfer_id).collect()
    }

    #[test]
    fn a_page_without_more_lines_is_the_last() {
        let (lines, cursor) = paginate(vec![line(1), line(2)], 3);
        assert_eq!((ids(&lines), cursor), (vec![1, 2], None));
        let (lines, cursor) = paginate(vec![line(1), line(2), line(3)], 3);
        assert_eq!((ids(&lines), cursor), (vec![1, 2, 3], None));
    }

    #[test]
    fn a_full_page_gives_a_cursor() {
        let (lines, cursor) = paginate(vec![line(1), line(2), line(3), line(4)], 3);
        assert_eq!((ids(&lines), cursor), (vec![1, 2, 3], Some(3)));
    }

    #[test]
    fn a_page_ends_before_a_transfer_it_would_cut() {
        let (lines, cursor) = paginate(vec![line(1), line(2), line(2), line(2)], 3);
        assert_eq!((ids(&lines), cursor), (vec![1], Some(1)));
        let max = STATEMENT_LINES_MAX;
        let mut full: Vec<StatementLine> = (1..max).map(|id| line(id as TransferId)).collect();
        full.push(line(max as TransferId));
        let (lines, cursor) = paginate(full, max);
        assert_eq!(
            (lines.len(), cursor),
            (max - 1, Some(max as TransferId - 1))
        );
    }

    #[test]
    fn a_page_of_one_transfer_is_kept_whole() {
        let (lines, cursor) = paginate(vec![line(4), line(4), line(4)], 2);
        assert_eq!((ids(&lines), cursor), (vec![4, 4], Some(4)));
    }
}
