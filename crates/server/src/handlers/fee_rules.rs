//! The operator's fee rule table: list, read, put and delete rules, and
//! their history. Unsigned, like the other operator calls. Every change is
//! checked as a whole new table, stored as a new version with an audit row
//! naming the operator and reason, and put in force in this process at
//! once; other processes on the same database follow within a second.

use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::model::*;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use fees::{
    FeeConfigError, FeeRuleChange, FeeRuleDefinition, FeeRuleEdit, FeeRuleHistoryQuery,
    FeeRuleStore, FeeTableError, HISTORY_PAGE_MAX,
};
use tracing::info;

const HISTORY_LIMIT_DEFAULT: u32 = 100;

impl From<FeeTableError> for ApiError {
    fn from(error: FeeTableError) -> Self {
        let code = error.code();
        match error {
            FeeTableError::Store(store) => ApiError::from(store),
            FeeTableError::UnknownRule(_) => ApiError::NotFound {
                code,
                message: error.to_string(),
            },
            FeeTableError::Contended(_) => ApiError::Conflict {
                code,
                message: error.to_string(),
            },
            FeeTableError::Config(_) | FeeTableError::Actor => ApiError::Invalid {
                code,
                message: error.to_string(),
            },
        }
    }
}

/// Every stored rule, by id, with the table's version.
#[utoipa::path(
    get,
    path = "/v1/fees/rules",
    tag = "fee rules",
    responses(
        (status = 200, description = "The stored rule table", body = FeeRuleTableResponse),
        (status = 422, description = "FEE_CONFIG_INVALID: a stored rule does not read (field `definition`)", body = ErrorBody),
        (status = 500, description = "STORE_ERROR", body = ErrorBody),
    )
)]
pub async fn list(State(state): State<AppState>) -> Result<Json<FeeRuleTableResponse>, ApiError> {
    let table = fees::read_rules(state.store()).await?;
    Ok(Json(FeeRuleTableResponse {
        version: table.version,
        rules: table
            .definitions
            .into_iter()
            .map(FeeRuleBody::from)
            .collect(),
    }))
}

/// One stored rule.
#[utoipa::path(
    get,
    path = "/v1/fees/rules/{id}",
    tag = "fee rules",
    params(("id" = String, Path, description = "Rule id")),
    responses(
        (status = 200, description = "The rule", body = FeeRuleResponse),
        (status = 404, description = "UNKNOWN_FEE_RULE", body = ErrorBody),
    )
)]
pub async fn get(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<FeeRuleResponse>, ApiError> {
    let stored = state.store().fee_rules().await?;
    let rule = stored
        .rules
        .iter()
        .find(|rule| rule.rule_id == id)
        .ok_or(FeeTableError::UnknownRule(id))?;
    let definition = FeeRuleDefinition::from_toml(&rule.definition).map_err(|error| {
        ApiError::Internal(format!("stored fee rule {:?}: {error}", rule.rule_id))
    })?;
    Ok(Json(FeeRuleResponse {
        version: stored.version,
        rule: definition.into(),
    }))
}

/// Creates the rule, or replaces the rule with this id. The whole new table
/// is checked first: a bad field, a duplicate of another rule's side and
/// dimensions, is refused and nothing changes. Putting a rule exactly as
/// stored changes nothing.
#[utoipa::path(
    put,
    path = "/v1/fees/rules/{id}",
    tag = "fee rules",
    params(("id" = String, Path, description = "Rule id")),
    request_body = PutFeeRuleRequest,
    responses(
        (status = 200, description = "The table version in force", body = FeeRuleChangeResponse),
        (status = 400, description = "MALFORMED_REQUEST", body = ErrorBody),
        (status = 409, description = "FEE_RULES_CONTENDED", body = ErrorBody),
        (status = 422, description = "FEE_CONFIG_INVALID, FEE_RULE_DUPLICATE, FEE_TOO_MANY_RULES (naming the rule and field), OPERATOR_AND_REASON_REQUIRED", body = ErrorBody),
    )
)]
pub async fn put(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(request): ApiJson<PutFeeRuleRequest>,
) -> Result<Json<FeeRuleChangeResponse>, ApiError> {
    let mut definition = FeeRuleDefinition::from(request.rule);
    if definition.id.is_empty() {
        definition.id.clone_from(&id);
    } else if definition.id != id {
        return Err(FeeTableError::Config(FeeConfigError::Invalid {
            rule: id,
            field: "id".to_owned(),
            reason: format!("is {:?} in the body, not the path's", definition.id),
        })
        .into());
    }
    let edit = FeeRuleEdit {
        change: FeeRuleChange::Put(Box::new(definition)),
        operator: request.operator,
        reason: request.reason,
    };
    change(&state, &edit, &id).await
}

/// Removes the rule. Refused, like any change, if the table without it does
/// not check.
#[utoipa::path(
    delete,
    path = "/v1/fees/rules/{id}",
    tag = "fee rules",
    params(("id" = String, Path, description = "Rule id")),
    request_body = FeeRuleChangeRequest,
    responses(
        (status = 200, description = "The table version in force", body = FeeRuleChangeResponse),
        (status = 404, description = "UNKNOWN_FEE_RULE", body = ErrorBody),
        (status = 409, description = "FEE_RULES_CONTENDED", body = ErrorBody),
        (status = 422, description = "OPERATOR_AND_REASON_REQUIRED", body = ErrorBody),
    )
)]
pub async fn delete(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(request): ApiJson<FeeRuleChangeRequest>,
) -> Result<Json<FeeRuleChangeResponse>, ApiError> {
    let edit = FeeRuleEdit {
        change: FeeRuleChange::Delete(id.clone()),
        operator: request.operator,
        reason: request.reason,
    };
    change(&state, &edit, &id).await
}

async fn change(
    state: &AppState,
    edit: &FeeRuleEdit,
    rule_id: &str,
) -> Result<Json<FeeRuleChangeResponse>, ApiError> {
    let outcome =
        fees::change_rules(state.store(), state.fee_table(), edit, store::now_micros()).await?;
    info!(
        rule_id,
        operator = %edit.operator,
        version = outcome.version,
        rules_changed = outcome.rules_changed,
        "fee rules changed"
    );
    Ok(Json(FeeRuleChangeResponse {
        version: outcome.version,
        changed: outcome.rules_changed > 0,
    }))
}

/// The audit log of the table, newest first: each rule created, replaced or
/// removed, with the version, operator, reason and time of its change.
#[utoipa::path(
    get,
    path = "/v1/fees/rules/history",
    tag = "fee rules",
    params(FeeRuleHistoryQueryParams),
    responses(
        (status = 200, description = "One page of changes", body = Vec<FeeRuleHistoryResponse>),
        (status = 400, description = "MALFORMED_REQUEST", body = ErrorBody),
        (status = 422, description = "INVALID_LIMIT", body = ErrorBody),
    )
)]
pub async fn history(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<FeeRuleHistoryQueryParams>,
) -> Result<Json<Vec<FeeRuleHistoryResponse>>, ApiError> {
    let limit = query.limit.unwrap_or(HISTORY_LIMIT_DEFAULT);
    if !(1..=HISTORY_PAGE_MAX).contains(&limit) {
        return Err(ApiError::Invalid {
            code: "INVALID_LIMIT",
            message: format!("limit must be 1 to {HISTORY_PAGE_MAX}, got {limit}"),
        });
    }
    let entries = state
        .store()
        .fee_rule_history(&FeeRuleHistoryQuery {
            rule_id: query.rule_id,
            before_change_id: query.before_id,
            limit,
        })
        .await?;
    let page = entries
        .into_iter()
        .map(FeeRuleHistoryResponse::try_from)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Json(page))
}

/// The fee rule table's part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(list, get, put, delete, history),
    components(schemas(
        FeeRuleBody,
        FeeTierBody,
        FeeTierBound,
        FeeRuleTableResponse,
        FeeRuleResponse,
        FeeRuleChangeRequest,
        PutFeeRuleRequest,
        FeeRuleChangeResponse,
        FeeRuleHistoryResponse,
    )),
    tags((name = "fee rules", description = "The fee rule table (计费规则), for operators (unsigned): \
        rules in the shape of config/fees.toml's [[rules]] entries, each change checked as a whole \
        table, versioned and audited, and priced with from the next quote or payment."))
)]
pub struct FeeRulesDoc;
