//! Fee rule table shapes of the API: a rule is the JSON twin of a
//! `[[rules]]` entry of `config/fees.toml`, field for field.

use crate::error::ApiError;
use crate::timestamp;
use fees::{FeeRuleDefinition, FeeRuleHistoryEntry, TierBound, TierDefinition};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// A fee rule, with the fields of a `[[rules]]` entry of `config/fees.toml`
/// and the same texts: amounts are decimal strings in major units of the
/// rule's currency (`"2000.00"`), rates `"0.6%"`, `"6‰"`, `"38bp"` or
/// `"0.0038"`. Omitted dimensions match any value. Values are checked when
/// the rule is put; a bad one is refused with `FEE_CONFIG_INVALID` naming
/// the rule and field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FeeRuleBody {
    /// Unique. In a PUT it may be left out (the path names the rule);
    /// given, it must equal the path's.
    #[serde(default)]
    #[schema(example = "m-coffee-instant")]
    pub id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// `payee` (the default) or `payer`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub side: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "m-coffee")]
    pub merchant: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "instant_transfer")]
    pub product: Option<String>,
    /// The acquiring channel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuing_bank: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub business_line: Option<String>,
    /// ISO 4217; required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "CNY")]
    pub currency: Option<String>,
    /// fixed, rate, amount_tiers_rate, amount_tiers_fixed,
    /// cumulative_amount_tiers_rate, cumulative_amount_tiers_fixed,
    /// cumulative_count_tiers_rate or cumulative_count_tiers_fixed.
    #[schema(example = "rate")]
    pub method: String,
    /// For `fixed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fee: Option<String>,
    /// For `rate`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "0.6%")]
    pub rate: Option<String>,
    /// For tiered methods: `graduated` or `whole_volume`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// For cumulative methods: `day`, `month` or `year`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<String>,
    /// For tiered methods; every tier but the last has `up_to`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tiers: Option<Vec<FeeTierBody>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maximum: Option<String>,
    /// half_up (the default), half_even, down, up, floor or ceiling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rounding: Option<String>,
    /// real_time (the default), post_paid or prepaid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collection: Option<String>,
}

/// One tier: an inclusive upper bound (absent on the last tier) and a rate
/// or a fee.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FeeTierBody {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub up_to: Option<FeeTierBound>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fee: Option<String>,
}

/// A count (an integer, for count tiers) or an amount in major units (a
/// decimal string).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum FeeTierBound {
    Count(i64),
    Amount(String),
}

impl From<FeeRuleBody> for FeeRuleDefinition {
    fn from(body: FeeRuleBody) -> Self {
        FeeRuleDefinition {
            id: body.id,
            description: body.description,
            side: body.side,
            merchant: body.merchant,
            product: body.product,
            channel: body.channel,
            issuing_bank: body.issuing_bank,
            business_line: body.business_line,
            currency: body.currency,
            method: body.method,
            fee: body.fee,
            rate: body.rate,
            policy: body.policy,
            period: body.period,
            tiers: body
                .tiers
                .map(|tiers| tiers.into_iter().map(TierDefinition::from).collect()),
            minimum: body.minimum,
            maximum: body.maximum,
            rounding: body.rounding,
            collection: body.collection,
        }
    }
}

impl From<FeeTierBody> for TierDefinition {
    fn from(tier: FeeTierBody) -> Self {
        TierDefinition {
            up_to: tier.up_to.map(|bound| match bound {
                FeeTierBound::Count(count) => TierBound::Count(count),
                FeeTierBound::Amount(text) => TierBound::Amount(text),
            }),
            rate: tier.rate,
            fee: tier.fee,
        }
    }
}

impl From<FeeRuleDefinition> for FeeRuleBody {
    fn from(definition: FeeRuleDefinition) -> Self {
        FeeRuleBody {
            id: definition.id,
            description: definition.description,
            side: definition.side,
            merchant: definition.merchant,
            product: definition.product,
            channel: definition.channel,
            issuing_bank: definition.issuing_bank,
            business_line: definition.business_line,
            currency: definition.currency,
            method: definition.method,
            fee: definition.fee,
            rate: definition.rate,
            policy: definition.policy,
            period: definition.period,
            tiers: definition
                .tiers
                .map(|tiers| tiers.into_iter().map(FeeTierBody::from).collect()),
            minimum: definition.minimum,
            maximum: definition.maximum,
            rounding: definition.rounding,
            collection: definition.collection,
        }
    }
}

impl From<TierDefinition> for FeeTierBody {
    fn from(tier: TierDefinition) -> Self {
        FeeTierBody {
            up_to: tier.up_to.map(|bound| match bound {
                TierBound::Count(count) => FeeTierBound::Count(count),
                TierBound::Amount(text) => FeeTierBound::Amount(text),
            }),
            rate: tier.rate,
            fee: tier.fee,
        }
    }
}

/// The stored rule table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FeeRuleTableResponse {
    /// Raised by one with every change; 0 before the table was first written.
    pub version: i64,
    /// By id.
    pub rules: Vec<FeeRuleBody>,
}

/// One stored rule and the table version it was read at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FeeRuleResponse {
    pub version: i64,
    pub rule: FeeRuleBody,
}

/// Who changes the table and why; both are kept in its history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FeeRuleChangeRequest {
    #[schema(example = "alice")]
    pub operator: String,
    #[schema(example = "contract 2026-114 signed")]
    pub reason: String,
}

/// `PUT /v1/fees/rules/{id}`: the rule, created or replacing the one with
/// that id, with who and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutFeeRuleRequest {
    pub operator: String,
    pub reason: String,
    pub rule: FeeRuleBody,
}

/// What a change did. Quotes and payments price with the new table from
/// the next request on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FeeRuleChangeResponse {
    /// The table version in force after the change.
    pub version: i64,
    /// False when the table already said so (no version was written).
    pub changed: bool,
}

/// `GET /v1/fees/rules/history` query.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct FeeRuleHistoryQueryParams {
    /// Only this rule's changes.
    pub rule_id: Option<String>,
    /// Changes older than this id (the last id of the previous page).
    pub before_id: Option<i64>,
    /// 1 to 1000; 100 when absent.
    pub limit: Option<u32>,
}

/// One audit row: a rule created, replaced or removed by a table version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FeeRuleHistoryResponse {
    /// Newest first; the paging cursor.
    pub id: i64,
    pub version: i64,
    pub operator: String,
    pub reason: String,
    /// RFC 3339.
    pub changed_at: String,
    pub rule_id: String,
    /// Absent for a creation.
    pub before: Option<FeeRuleBody>,
    /// Absent for a removal.
    pub after: Option<FeeRuleBody>,
}

fn stored_body(text: Option<&str>) -> Result<Option<FeeRuleBody>, ApiError> {
    text.map(|text| {
        FeeRuleDefinition::from_toml(text)
            .map(FeeRuleBody::from)
            .map_err(|error| {
                ApiError::Internal(format!("a stored fee rule does not read: {error}"))
            })
    })
    .transpose()
}

impl TryFrom<FeeRuleHistoryEntry> for FeeRuleHistoryResponse {
    type Error = ApiError;

    fn try_from(entry: FeeRuleHistoryEntry) -> Result<Self, ApiError> {
        Ok(FeeRuleHistoryResponse {
            id: entry.change_id,
            version: entry.version,
            changed_at: timestamp::format(entry.changed_at)?,
            before: stored_body(entry.before.as_deref())?,
            after: stored_body(entry.after.as_deref())?,
            operator: entry.operator,
            reason: entry.reason,
            rule_id: entry.rule_id,
        })
    }
}
