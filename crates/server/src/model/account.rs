use super::{AccountKind, OwnerKind, Side, SubjectClass, TransferKind, parse_currency};
use crate::error::ApiError;
use crate::timestamp;
use ledger::{NewAccount, Overdraft};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// Opens an account. One account per (owner, kind, currency).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAccountRequest {
    /// The accounting subject code (科目), e.g. `2241`.
    #[schema(example = "2241")]
    pub subject_code: String,
    /// Defaults to the kind's usual class.
    pub subject_class: Option<SubjectClass>,
    pub kind: AccountKind,
    pub owner_kind: OwnerKind,
    #[schema(example = "m-1001")]
    pub owner_id: String,
    /// ISO 4217 code.
    #[schema(example = "CNY")]
    pub currency: String,
    /// How far below zero the available balance may go; default 0.
    pub overdraft_limit_minor: Option<i64>,
    /// No lower bound at all (accounts that mirror the outside world);
    /// excludes `overdraft_limit_minor`.
    #[serde(default)]
    pub unlimited_overdraft: bool,
}

impl CreateAccountRequest {
    pub fn into_new_account(self) -> Result<NewAccount, ApiError> {
        let overdraft = match (self.unlimited_overdraft, self.overdraft_limit_minor) {
            (true, Some(_)) => {
                return Err(ApiError::Invalid {
                    code: "INVALID_OVERDRAFT",
                    message: "unlimited_overdraft excludes overdraft_limit_minor".to_owned(),
                });
            }
            (true, None) => Overdraft::Unlimited,
            (false, limit) => Overdraft::Limit(limit.unwrap_or(0)),
        };
        let kind = ledger::AccountKind::from(self.kind);
        Ok(NewAccount {
            subject_code: self.subject_code,
            subject_class: self
                .subject_class
                .map_or_else(|| kind.default_subject_class(), Into::into),
            kind,
            owner_kind: self.owner_kind.into(),
            owner_id: self.owner_id,
            currency: parse_currency(&self.currency)?,
            overdraft,
        })
    }
}

/// Balances in the sign of the account's normal side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BalanceViewResponse {
    /// Posted balance (账面余额).
    pub ledger_minor: i64,
    /// Ledger less frozen and outgoing pending: what can be spent.
    pub available_minor: i64,
    pub frozen_minor: i64,
    pub pending_outgoing_minor: i64,
    pub pending_incoming_minor: i64,
}

impl From<ledger::BalanceView> for BalanceViewResponse {
    fn from(view: ledger::BalanceView) -> Self {
        BalanceViewResponse {
            ledger_minor: view.ledger_minor,
            available_minor: view.available_minor,
            frozen_minor: view.frozen_minor,
            pending_outgoing_minor: view.pending_outgoing_minor,
            pending_incoming_minor: view.pending_incoming_minor,
        }
    }
}

/// The raw running totals every balance derives from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TotalsResponse {
    pub debits_posted_minor: i64,
    pub credits_posted_minor: i64,
    pub debits_pending_minor: i64,
    pub credits_pending_minor: i64,
    pub frozen_minor: i64,
}

impl From<ledger::Balances> for TotalsResponse {
    fn from(totals: ledger::Balances) -> Self {
        TotalsResponse {
            debits_posted_minor: totals.debits_posted_minor,
            credits_posted_minor: totals.credits_posted_minor,
            debits_pending_minor: totals.debits_pending_minor,
            credits_pending_minor: totals.credits_pending_minor,
            frozen_minor: totals.frozen_minor,
        }
    }
}

/// A ledger account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AccountResponse {
    pub id: i64,
    pub subject_code: String,
    pub subject_class: SubjectClass,
    pub normal_side: Side,
    pub kind: AccountKind,
    pub owner_kind: OwnerKind,
    pub owner_id: String,
    #[schema(example = "CNY")]
    pub currency: String,
    /// 0 when the overdraft is unlimited.
    pub overdraft_limit_minor: i64,
    pub unlimited_overdraft: bool,
    pub balance: BalanceViewResponse,
    pub totals: TotalsResponse,
    /// RFC 3339.
    pub created_at: String,
}

fn balance_view(account: &ledger::Account) -> Result<BalanceViewResponse, ApiError> {
    account
        .balance()
        .map(Into::into)
        .ok_or_else(|| ApiError::Internal(format!("balances of account {} overflow", account.id)))
}

impl TryFrom<ledger::Account> for AccountResponse {
    type Error = ApiError;

    fn try_from(account: ledger::Account) -> Result<Self, ApiError> {
        let balance = balance_view(&account)?;
        let (overdraft_limit_minor, unlimited_overdraft) = match account.overdraft {
            Overdraft::Limit(limit) => (limit, false),
            Overdraft::Unlimited => (0, true),
        };
        Ok(AccountResponse {
            id: account.id,
            normal_side: account.normal_side().into(),
            subject_code: account.subject_code,
            subject_class: account.subject_class.into(),
            kind: account.kind.into(),
            owner_kind: account.owner_kind.into(),
            owner_id: account.owner_id,
            currency: account.currency.code().to_owned(),
            overdraft_limit_minor,
            unlimited_overdraft,
            balance,
            totals: account.balances.into(),
            created_at: timestamp::format(account.created_at)?,
        })
    }
}

/// `GET /v1/accounts/{id}/balance` query.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BalanceQuery {
    /// RFC 3339; the posted balance as of this instant, inclusive. Absent:
    /// the current balance view.
    pub at: Option<String>,
}

/// A balance. With `at`, only the posted (ledger) balance as of that
/// instant; without, the whole current view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BalanceResponse {
    pub account_id: i64,
    #[schema(example = "CNY")]
    pub currency: String,
    /// RFC 3339: the instant the balance is for.
    pub at: String,
    pub ledger_minor: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub available_minor: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frozen_minor: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_outgoing_minor: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_incoming_minor: Option<i64>,
}

impl BalanceResponse {
    /// The posted balance as of `at` alone.
    pub fn at(account: &ledger::Account, at: String, ledger_minor: i64) -> Self {
        BalanceResponse {
            account_id: account.id,
            currency: account.currency.code().to_owned(),
            at,
            ledger_minor,
            available_minor: None,
            frozen_minor: None,
            pending_outgoing_minor: None,
            pending_incoming_minor: None,
        }
    }

    /// The current balance view.
    pub fn current(account: &ledger::Account, at: String) -> Result<Self, ApiError> {
        let view = balance_view(account)?;
        Ok(BalanceResponse {
            available_minor: Some(view.available_minor),
            frozen_minor: Some(view.frozen_minor),
            pending_outgoing_minor: Some(view.pending_outgoing_minor),
            pending_incoming_minor: Some(view.pending_incoming_minor),
            ..BalanceResponse::at(account, at, view.ledger_minor)
        })
    }
}

/// `GET /v1/accounts/{id}/statement` query.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatementParams {
    /// RFC 3339, inclusive; default: the beginning.
    pub from: Option<String>,
    /// RFC 3339, exclusive; default: no end.
    pub to: Option<String>,
    /// Page cursor: the `next_cursor` of the previous page.
    pub after: Option<i64>,
    /// Lines per page, 1 to 1000; default 100. A page never ends inside a
    /// transfer's lines unless that transfer alone has more lines than this.
    pub limit: Option<usize>,
}

/// One statement line (账单行).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StatementLineResponse {
    pub transfer_id: i64,
    pub leg_index: u32,
    pub kind: TransferKind,
    pub side: Side,
    pub amount_minor: i64,
    #[schema(example = "CNY")]
    pub currency: String,
    /// A reservation of a pending transfer, not a posted movement.
    pub pending: bool,
    /// The account's posted balance right after this line.
    pub balance_after_minor: i64,
    /// RFC 3339.
    pub posted_at: String,
    pub description: String,
    /// The accounts on the other side of the same transfer.
    pub counterparty_account_ids: Vec<i64>,
}

impl TryFrom<ledger::StatementLine> for StatementLineResponse {
    type Error = ApiError;

    fn try_from(line: ledger::StatementLine) -> Result<Self, ApiError> {
        Ok(StatementLineResponse {
            transfer_id: line.transfer_id,
            leg_index: line.leg_index,
            kind: line.kind.into(),
            side: line.side.into(),
            amount_minor: line.amount_minor,
            currency: line.currency.code().to_owned(),
            pending: line.pending,
            balance_after_minor: line.balance_after_minor,
            posted_at: timestamp::format(line.posted_at)?,
            description: line.description,
            counterparty_account_ids: line.counterparty_account_ids,
        })
    }
}

/// One page of a statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StatementResponse {
    pub account_id: i64,
    pub lines: Vec<StatementLineResponse>,
    /// Pass as `after` for the next page; null on the last page.
    pub next_cursor: Option<i64>,
}
