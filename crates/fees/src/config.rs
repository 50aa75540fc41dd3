//! The rule file (`config/fees.toml`) and the TOML text of one rule: their
//! serde shapes (private: the public [`FeeRuleDefinition`] derives no
//! serde), and the check and conversion of a definition into a rule.
//! Amounts are decimal strings in major units of the rule's currency
//! (`"2000.00"`), never TOML floats; count bounds are integers.

use crate::date::Period;
use crate::definition::{FeeRuleDefinition, TierBound, TierDefinition};
use crate::rate::Rate;
use crate::rule::{CollectionMode, Dimensions, FeeMethod, FeeRule, FeeSide, MethodKind};
use crate::schedule::FeeSchedule;
use crate::tiers::{TierPolicy, TierPrices, Tiers};
use crate::{FeeConfigError, RULES_MAX};
use money::{Currency, Money, RoundingMode};
use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    defaults: Defaults,
    #[serde(default)]
    rules: Vec<RawRule>,
}

/// What a rule that says nothing takes.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Defaults {
    currency: Option<String>,
    side: Option<String>,
    rounding: Option<String>,
    collection: Option<String>,
}

/// One rule as TOML reads and writes it. `tiers` comes last so that it is
/// written after the plain keys.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    description: String,
    side: Option<String>,
    merchant: Option<String>,
    product: Option<String>,
    channel: Option<String>,
    issuing_bank: Option<String>,
    business_line: Option<String>,
    currency: Option<String>,
    method: String,
    fee: Option<String>,
    rate: Option<String>,
    policy: Option<String>,
    period: Option<String>,
    minimum: Option<String>,
    maximum: Option<String>,
    rounding: Option<String>,
    collection: Option<String>,
    tiers: Option<Vec<RawTier>>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RawTier {
    up_to: Option<UpTo>,
    rate: Option<String>,
    fee: Option<String>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(untagged)]
enum UpTo {
    Count(i64),
    Amount(String),
}

impl From<RawRule> for FeeRuleDefinition {
    fn from(raw: RawRule) -> Self {
        FeeRuleDefinition {
            id: raw.id,
            description: raw.description,
            side: raw.side,
            merchant: raw.merchant,
            product: raw.product,
            channel: raw.channel,
            issuing_bank: raw.issuing_bank,
            business_line: raw.business_line,
            currency: raw.currency,
            method: raw.method,
            fee: raw.fee,
            rate: raw.rate,
            policy: raw.policy,
            period: raw.period,
            tiers: raw.tiers.map(|tiers| {
                tiers
                    .into_iter()
                    .map(|tier| TierDefinition {
                        up_to: tier.up_to.map(|bound| match bound {
                            UpTo::Count(count) => TierBound::Count(count),
                            UpTo::Amount(text) => TierBound::Amount(text),
                        }),
                        rate: tier.rate,
                        fee: tier.fee,
                    })
                    .collect()
            }),
            minimum: raw.minimum,
            maximum: raw.maximum,
            rounding: raw.rounding,
            collection: raw.collection,
        }
    }
}

impl From<&FeeRuleDefinition> for RawRule {
    fn from(definition: &FeeRuleDefinition) -> Self {
        let definition = definition.clone();
        RawRule {
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
            minimum: definition.minimum,
            maximum: definition.maximum,
            rounding: definition.rounding,
            collection: definition.collection,
            tiers: definition.tiers.map(|tiers| {
                tiers
                    .into_iter()
                    .map(|tier| RawTier {
                        up_to: tier.up_to.map(|bound| match bound {
                            TierBound::Count(count) => UpTo::Count(count),
                            TierBound::Amount(text) => UpTo::Amount(text),
                        }),
                        rate: tier.rate,
                        fee: tier.fee,
                    })
                    .collect()
            }),
        }
    }
}

impl FeeRuleDefinition {
    /// Reads a rule file's rules, each with the file's `[defaults]` filled
    /// in where it says nothing, so that every definition stands alone.
    /// Nothing is checked beyond the TOML shape: see
    /// [`FeeSchedule::from_definitions`].
    pub fn parse_file(text: &str) -> Result<Vec<FeeRuleDefinition>, FeeConfigError> {
        let file: File =
            toml::from_str(text).map_err(|error| FeeConfigError::Syntax(error.to_string()))?;
        if file.rules.len() > RULES_MAX {
            return Err(FeeConfigError::TooManyRules {
                count: file.rules.len(),
                max: RULES_MAX,
            });
        }
        let defaults = file.defaults;
        Ok(file
            .rules
            .into_iter()
            .map(|raw| {
                let mut definition = FeeRuleDefinition::from(raw);
                let fill = |field: &mut Option<String>, default: &Option<String>| {
                    if field.is_none() {
                        field.clone_from(default);
                    }
                };
                fill(&mut definition.currency, &defaults.currency);
                fill(&mut definition.side, &defaults.side);
                fill(&mut definition.rounding, &defaults.rounding);
                fill(&mut definition.collection, &defaults.collection);
                definition
            })
            .collect())
    }

    /// Reads one rule: the keys of one `[[rules]]` entry at the top level
    /// of a TOML document (what [`FeeRuleDefinition::to_toml`] writes).
    pub fn from_toml(text: &str) -> Result<FeeRuleDefinition, FeeConfigError> {
        toml::from_str::<RawRule>(text)
            .map(FeeRuleDefinition::from)
            .map_err(|error| FeeConfigError::Syntax(error.to_string()))
    }

    /// The rule as a TOML document of its own, omitted fields left out.
    pub fn to_toml(&self) -> Result<String, FeeConfigError> {
        toml::to_string(&RawRule::from(self))
            .map_err(|error| FeeConfigError::Syntax(error.to_string()))
    }

    /// Checks the definition and converts it. Errors name the rule (or,
    /// without an id, its 1-based `position` in the table) and the field.
    pub fn to_rule(&self, position: usize) -> Result<FeeRule, FeeConfigError> {
        convert(self, position)
    }
}

impl FeeSchedule {
    /// Reads and checks a rule file. Errors name the rule and the field.
    pub fn from_toml(text: &str) -> Result<FeeSchedule, FeeConfigError> {
        FeeSchedule::from_definitions(&FeeRuleDefinition::parse_file(text)?)
    }

    /// Checks and indexes rules as written: each on its own, then the
    /// table (ids and dimensions unique). Errors name the rule and field.
    pub fn from_definitions(
        definitions: &[FeeRuleDefinition],
    ) -> Result<FeeSchedule, FeeConfigError> {
        if definitions.len() > RULES_MAX {
            return Err(FeeConfigError::TooManyRules {
                count: definitions.len(),
                max: RULES_MAX,
            });
        }
        let rules = definitions
            .iter()
            .enumerate()
            .map(|(position, definition)| definition.to_rule(position))
            .collect::<Result<Vec<_>, _>>()?;
        FeeSchedule::new(rules)
    }
}

/// Names a rule and field in every error of one rule's conversion.
struct Context<'a> {
    rule: &'a str,
    currency: Currency,
}

impl Context<'_> {
    fn invalid(&self, field: impl Into<String>, reason: impl Into<String>) -> FeeConfigError {
        FeeConfigError::Invalid {
            rule: self.rule.to_owned(),
            field: field.into(),
            reason: reason.into(),
        }
    }

    fn amount(&self, field: &str, text: &str) -> Result<i64, FeeConfigError> {
        Money::parse_major(text, self.currency)
            .map(Money::amount_minor)
            .map_err(|error| self.invalid(field, error.to_string()))
    }

    fn optional_amount(
        &self,
        field: &str,
        text: Option<&str>,
    ) -> Result<Option<i64>, FeeConfigError> {
        text.map(|text| self.amount(field, text)).transpose()
    }

    fn rate(&self, field: &str, text: &str) -> Result<Rate, FeeConfigError> {
        Rate::parse(text).map_err(|error| self.invalid(field, error.to_string()))
    }

    fn required<'t>(
        &self,
        field: &str,
        value: Option<&'t str>,
        method: MethodKind,
    ) -> Result<&'t str, FeeConfigError> {
        value.ok_or_else(|| {
            self.invalid(field, format!("is required by method {}", method.as_str()))
        })
    }

    fn absent<T>(
        &self,
        field: &str,
        value: &Option<T>,
        method: MethodKind,
    ) -> Result<(), FeeConfigError> {
        match value {
            Some(_) => Err(self.invalid(
                field,
                format!("does not apply to method {}", method.as_str()),
            )),
            None => Ok(()),
        }
    }
}

fn parse_rounding(text: &str) -> Option<RoundingMode> {
    let names = ["half_up", "half_even", "down", "up", "floor", "ceiling"];
    names
        .iter()
        .position(|name| *name == text)
        .and_then(|position| RoundingMode::ALL.get(position).copied())
}

/// A choice from a list of names; `fallback` when the rule says nothing.
fn choose<T>(
    context: &Context<'_>,
    field: &str,
    value: Option<&str>,
    parse: impl Fn(&str) -> Option<T>,
    fallback: T,
    names: &str,
) -> Result<T, FeeConfigError> {
    match value {
        None => Ok(fallback),
        Some(text) => parse(text).ok_or_else(|| {
            context.invalid(field, format!("unknown value {text:?} (expected {names})"))
        }),
    }
}

fn dimension(
    context: &Context<'_>,
    field: &str,
    value: &Option<String>,
) -> Result<Option<String>, FeeConfigError> {
    match value.as_deref() {
        Some("*" | "any") => Err(context.invalid(field, "omit the field to match any value")),
        _ => Ok(value.clone()),
    }
}

fn convert(definition: &FeeRuleDefinition, position: usize) -> Result<FeeRule, FeeConfigError> {
    let name = if definition.id.is_empty() {
        format!("#{}", position + 1)
    } else {
        definition.id.clone()
    };
    let mut context = Context {
        rule: &name,
        currency: Currency::CNY,
    };
    let currency_code = definition
        .currency
        .as_deref()
        .ok_or_else(|| context.invalid("currency", "is required (here or in [defaults])"))?;
    context.currency = Currency::from_code(currency_code)
        .map_err(|error| context.invalid("currency", error.to_string()))?;
    let method_kind = MethodKind::parse(&definition.method).ok_or_else(|| {
        context.invalid(
            "method",
            format!(
                "unknown method {:?} (expected one of {})",
                definition.method,
                MethodKind::ALL.map(MethodKind::as_str).join(", ")
            ),
        )
    })?;
    let method = method(&context, definition, method_kind)?;
    let side = choose(
        &context,
        "side",
        definition.side.as_deref(),
        FeeSide::parse,
        FeeSide::Payee,
        "payer, payee",
    )?;
    let rounding = choose(
        &context,
        "rounding",
        definition.rounding.as_deref(),
        parse_rounding,
        RoundingMode::HalfUp,
        "half_up, half_even, down, up, floor, ceiling",
    )?;
    let collection = choose(
        &context,
        "collection",
        definition.collection.as_deref(),
        CollectionMode::parse,
        CollectionMode::RealTime,
        "real_time, post_paid, prepaid",
    )?;
    Ok(FeeRule {
        id: definition.id.clone(),
        side,
        dimensions: Dimensions {
            merchant: dimension(&context, "merchant", &definition.merchant)?,
            product: dimension(&context, "product", &definition.product)?,
            channel: dimension(&context, "channel", &definition.channel)?,
            issuing_bank: dimension(&context, "issuing_bank", &definition.issuing_bank)?,
            business_line: dimension(&context, "business_line", &definition.business_line)?,
        },
        currency: context.currency,
        method,
        minimum_minor: context.optional_amount("minimum", definition.minimum.as_deref())?,
        maximum_minor: context.optional_amount("maximum", definition.maximum.as_deref())?,
        rounding,
        collection,
    })
}

fn method(
    context: &Context<'_>,
    definition: &FeeRuleDefinition,
    kind: MethodKind,
) -> Result<FeeMethod, FeeConfigError> {
    match kind {
        MethodKind::Fixed => {
            for (field, value) in [
                ("rate", &definition.rate),
                ("policy", &definition.policy),
                ("period", &definition.period),
            ] {
                context.absent(field, value, kind)?;
            }
            context.absent("tiers", &definition.tiers, kind)?;
            let fee = context.required("fee", definition.fee.as_deref(), kind)?;
            Ok(FeeMethod::Fixed {
                fee_minor: context.amount("fee", fee)?,
            })
        }
        MethodKind::Rate => {
            for (field, value) in [
                ("fee", &definition.fee),
                ("policy", &definition.policy),
                ("period", &definition.period),
            ] {
                context.absent(field, value, kind)?;
            }
            context.absent("tiers", &definition.tiers, kind)?;
            let rate = context.required("rate", definition.rate.as_deref(), kind)?;
            Ok(FeeMethod::Rate {
                rate: context.rate("rate", rate)?,
            })
        }
        _ => tiered(context, definition, kind),
    }
}

fn tiered(
    context: &Context<'_>,
    definition: &FeeRuleDefinition,
    kind: MethodKind,
) -> Result<FeeMethod, FeeConfigError> {
    context.absent("fee", &definition.fee, kind)?;
    context.absent("rate", &definition.rate, kind)?;
    let policy_text = context.required("policy", definition.policy.as_deref(), kind)?;
    let policy = TierPolicy::parse(policy_text).ok_or_else(|| {
        context.invalid(
            "policy",
            format!("unknown policy {policy_text:?} (expected graduated, whole_volume)"),
        )
    })?;
    let by_count = matches!(
        kind,
        MethodKind::CumulativeCountTiersRate | MethodKind::CumulativeCountTiersFixed
    );
    let rated = matches!(
        kind,
        MethodKind::AmountTiersRate
            | MethodKind::CumulativeAmountTiersRate
            | MethodKind::CumulativeCountTiersRate
    );
    let raw_tiers = definition.tiers.as_deref().ok_or_else(|| {
        context.invalid("tiers", format!("is required by method {}", kind.as_str()))
    })?;
    let tiers = tiers(context, raw_tiers, by_count, rated)?;
    tiers
        .validate()
        .map_err(|reason| context.invalid("tiers", reason))?;
    if kind.is_cumulative() {
        let period_text = context.required("period", definition.period.as_deref(), kind)?;
        let period = Period::parse(period_text).ok_or_else(|| {
            context.invalid(
                "period",
                format!("unknown period {period_text:?} (expected day, month, year)"),
            )
        })?;
        if by_count {
            Ok(FeeMethod::CumulativeCountTiers {
                period,
                policy,
                tiers,
            })
        } else {
            Ok(FeeMethod::CumulativeAmountTiers {
                period,
                policy,
                tiers,
            })
        }
    } else {
        context.absent("period", &definition.period, kind)?;
        Ok(FeeMethod::AmountTiers { policy, tiers })
    }
}

fn tiers(
    context: &Context<'_>,
    raw: &[TierDefinition],
    by_count: bool,
    rated: bool,
) -> Result<Tiers, FeeConfigError> {
    if raw.is_empty() || raw.len() > crate::TIERS_MAX {
        return Err(context.invalid(
            "tiers",
            format!(
                "between 1 and {} tiers, got {}",
                crate::TIERS_MAX,
                raw.len()
            ),
        ));
    }
    let last = raw.len() - 1;
    let mut up_to = Vec::with_capacity(last);
    let mut rates = Vec::new();
    let mut fees = Vec::new();
    for (position, tier) in raw.iter().enumerate() {
        let field = |name: &str| format!("tiers[{position}].{name}");
        match (&tier.up_to, position == last) {
            (Some(_), true) => {
                return Err(
                    context.invalid(field("up_to"), "the last tier is unbounded: omit up_to")
                );
            }
            (None, false) => {
                return Err(
                    context.invalid(field("up_to"), "is required on every tier but the last")
                );
            }
            (None, true) => {}
            (Some(TierBound::Count(count)), false) if by_count => up_to.push(*count),
            (Some(TierBound::Amount(text)), false) if !by_count => {
                up_to.push(context.amount(&field("up_to"), text)?)
            }
            (Some(_), false) if by_count => {
                return Err(
                    context.invalid(field("up_to"), "count bounds are integers (up_to = 1000)")
                );
            }
            (Some(_), false) => {
                return Err(context.invalid(
                    field("up_to"),
                    "amount bounds are decimal strings in major units (up_to = \"2000.00\")",
                ));
            }
        }
        if rated {
            if tier.fee.is_some() {
                return Err(context.invalid(field("fee"), "rate tiers take rate, not fee"));
            }
            let text = tier
                .rate
                .as_deref()
                .ok_or_else(|| context.invalid(field("rate"), "is required"))?;
            rates.push(context.rate(&field("rate"), text)?);
        } else {
            if tier.rate.is_some() {
                return Err(context.invalid(field("rate"), "fixed tiers take fee, not rate"));
            }
            let text = tier
                .fee
                .as_deref()
                .ok_or_else(|| context.invalid(field("fee"), "is required"))?;
            fees.push(context.amount(&field("fee"), text)?);
        }
    }
    let prices = if rated {
        TierPrices::Rates(rates)
    } else {
        TierPrices::Fixed(fees)
    };
    Ok(Tiers { up_to, prices })
}
