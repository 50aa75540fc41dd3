//! A rule as written: the fields of one `[[rules]]` entry of
//! `config/fees.toml`, as text, before it is checked and converted into a
//! [`crate::FeeRule`]. The rule table is stored and exchanged in this form
//! (the store keeps each rule's TOML text, the API a JSON mirror of it), so
//! that an operator reads back exactly what was written: `"0.6%"` stays
//! `"0.6%"`, and a rule's description is kept.

/// One `[[rules]]` entry; `None` is an omitted field. Reading and checking
/// are in `config.rs` ([`FeeRuleDefinition::to_rule`],
/// [`FeeRuleDefinition::from_toml`], [`FeeRuleDefinition::to_toml`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FeeRuleDefinition {
    pub id: String,
    /// For people; not used in pricing.
    pub description: String,
    /// `payer` or `payee` (the default).
    pub side: Option<String>,
    pub merchant: Option<String>,
    pub product: Option<String>,
    pub channel: Option<String>,
    pub issuing_bank: Option<String>,
    pub business_line: Option<String>,
    /// Required (a rule file may give it in `[defaults]`).
    pub currency: Option<String>,
    pub method: String,
    pub fee: Option<String>,
    pub rate: Option<String>,
    pub policy: Option<String>,
    pub period: Option<String>,
    pub tiers: Option<Vec<TierDefinition>>,
    pub minimum: Option<String>,
    pub maximum: Option<String>,
    pub rounding: Option<String>,
    pub collection: Option<String>,
}

/// One tier of a tiered rule, as written.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TierDefinition {
    /// Inclusive; omitted on the last tier.
    pub up_to: Option<TierBound>,
    pub rate: Option<String>,
    pub fee: Option<String>,
}

/// A tier's upper bound: a transaction count (an integer) for the count
/// tiers, an amount in major units (a decimal string) for the others.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TierBound {
    Count(i64),
    Amount(String),
}
