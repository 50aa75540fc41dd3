//! Fee quote shapes of the API.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Who pays the fee.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FeeSideName {
    Payer,
    #[default]
    Payee,
}

impl From<FeeSideName> for fees::FeeSide {
    fn from(value: FeeSideName) -> Self {
        match value {
            FeeSideName::Payer => fees::FeeSide::Payer,
            FeeSideName::Payee => fees::FeeSide::Payee,
        }
    }
}

impl From<fees::FeeSide> for FeeSideName {
    fn from(value: fees::FeeSide) -> Self {
        match value {
            fees::FeeSide::Payer => FeeSideName::Payer,
            fees::FeeSide::Payee => FeeSideName::Payee,
        }
    }
}

/// The pricing method of the rule that matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FeeMethodName {
    Fixed,
    Rate,
    AmountTiersRate,
    AmountTiersFixed,
    CumulativeAmountTiersRate,
    CumulativeAmountTiersFixed,
    CumulativeCountTiersRate,
    CumulativeCountTiersFixed,
}

impl From<fees::MethodKind> for FeeMethodName {
    fn from(value: fees::MethodKind) -> Self {
        use fees::MethodKind;
        match value {
            MethodKind::Fixed => FeeMethodName::Fixed,
            MethodKind::Rate => FeeMethodName::Rate,
            MethodKind::AmountTiersRate => FeeMethodName::AmountTiersRate,
            MethodKind::AmountTiersFixed => FeeMethodName::AmountTiersFixed,
            MethodKind::CumulativeAmountTiersRate => FeeMethodName::CumulativeAmountTiersRate,
            MethodKind::CumulativeAmountTiersFixed => FeeMethodName::CumulativeAmountTiersFixed,
            MethodKind::CumulativeCountTiersRate => FeeMethodName::CumulativeCountTiersRate,
            MethodKind::CumulativeCountTiersFixed => FeeMethodName::CumulativeCountTiersFixed,
        }
    }
}

/// How a tiered rule prices a slice that crosses tiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TierPolicyName {
    Graduated,
    WholeVolume,
}

impl From<fees::TierPolicy> for TierPolicyName {
    fn from(value: fees::TierPolicy) -> Self {
        match value {
            fees::TierPolicy::Graduated => TierPolicyName::Graduated,
            fees::TierPolicy::WholeVolume => TierPolicyName::WholeVolume,
        }
    }
}

/// How the fee is collected: real_time (实收, taken from the transaction),
/// post_paid (后收, billed at month end), prepaid (预充实扣, from the
/// merchant's prepaid fee account).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CollectionModeName {
    RealTime,
    PostPaid,
    Prepaid,
}

impl From<fees::CollectionMode> for CollectionModeName {
    fn from(value: fees::CollectionMode) -> Self {
        match value {
            fees::CollectionMode::RealTime => CollectionModeName::RealTime,
            fees::CollectionMode::PostPaid => CollectionModeName::PostPaid,
            fees::CollectionMode::Prepaid => CollectionModeName::Prepaid,
        }
    }
}

/// A merchant asks what a transaction would cost it (or its payer); the
/// merchant is the signer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FeeQuoteRequest {
    #[schema(example = "instant_transfer")]
    pub product: String,
    /// The transaction's amount in minor units; positive.
    #[schema(example = 12345)]
    pub amount_minor: i64,
    #[schema(example = "CNY")]
    pub currency: String,
    /// Whose fee: `payee` (the default) or `payer`.
    #[serde(default)]
    pub side: FeeSideName,
    /// The payer's issuing bank, when known.
    #[schema(example = "ICBC")]
    pub issuing_bank: Option<String>,
    /// The acquiring channel, when known.
    #[schema(example = "simbank")]
    pub channel: Option<String>,
    pub business_line: Option<String>,
    /// `YYYY-MM-DD`; today in UTC+8 when absent. Picks the period of a
    /// cumulative rule.
    #[schema(example = "2025-03-15")]
    pub business_date: Option<String>,
}

/// The period counter a cumulative rule priced the quote on, as stored now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FeeCounterResponse {
    /// `2025-03-15` (day), `2025-03` (month) or `2025` (year).
    pub period_key: String,
    /// Transactions already counted in the period.
    pub count_before: i64,
    /// Their amounts, in minor units.
    pub volume_before_minor: i64,
}

/// A quote: the fee and the rule behind it. Nothing is charged or counted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FeeQuoteResponse {
    #[schema(example = "m-coffee-instant")]
    pub rule_id: String,
    pub method: FeeMethodName,
    /// For tiered methods.
    pub policy: Option<TierPolicyName>,
    pub side: FeeSideName,
    #[schema(example = 123)]
    pub fee_minor: i64,
    pub currency: String,
    pub collection: CollectionModeName,
    pub business_date: String,
    /// For cumulative methods.
    pub counter: Option<FeeCounterResponse>,
}

impl FeeQuoteResponse {
    pub fn new(quote: fees::FeeQuote, business_date: fees::BusinessDate) -> Self {
        FeeQuoteResponse {
            rule_id: quote.rule_id.to_string(),
            method: quote.method.into(),
            policy: quote.policy.map(Into::into),
            side: quote.side.into(),
            fee_minor: quote.fee.amount_minor(),
            currency: quote.fee.currency().code().to_owned(),
            collection: quote.collection.into(),
            business_date: business_date.to_string(),
            counter: quote.counter.map(|counter| FeeCounterResponse {
                period_key: counter.period_key.to_string(),
                count_before: counter.before.count,
                volume_before_minor: counter.before.volume_minor,
            }),
        }
    }
}
