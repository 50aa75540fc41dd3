//! The rule file (`config/fees.toml`): its own shapes, converted to rules
//! and checked. Amounts are decimal strings in major units of the rule's
//! currency (`"2000.00"`), never TOML floats; count bounds are integers.

use crate::date::Period;
use crate::rate::Rate;
use crate::rule::{CollectionMode, Dimensions, FeeMethod, FeeRule, FeeSide, MethodKind};
use crate::schedule::FeeSchedule;
use crate::tiers::{TierPolicy, TierPrices, Tiers};
use crate::{FeeConfigError, RULES_MAX};
use money::{Currency, Money, RoundingMode};
use serde::Deserialize;

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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    id: String,
    #[serde(default)]
    #[allow(dead_code)]
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
    tiers: Option<Vec<RawTier>>,
    minimum: Option<String>,
    maximum: Option<String>,
    rounding: Option<String>,
    collection: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTier {
    up_to: Option<UpTo>,
    rate: Option<String>,
    fee: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum UpTo {
    Count(i64),
    Amount(String),
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

/// A choice from a list of names, from the rule or else the defaults.
fn choose<T>(
    context: &Context<'_>,
    field: &str,
    value: Option<&str>,
    default: Option<&str>,
    parse: impl Fn(&str) -> Option<T>,
    fallback: T,
    names: &str,
) -> Result<T, FeeConfigError> {
    match value.or(default) {
        None => Ok(fallback),
        Some(text) => parse(text).ok_or_else(|| {
            context.invalid(field, format!("unknown value {text:?} (expected {names})"))
        }),
    }
}

fn dimension(
    context: &Context<'_>,
    field: &str,
    value: Option<String>,
) -> Result<Option<String>, FeeConfigError> {
    match value.as_deref() {
        Some("*" | "any") => Err(context.invalid(field, "omit the field to match any value")),
        _ => Ok(value),
    }
}

impl FeeSchedule {
    /// Reads and checks a rule file. Errors name the rule and the field.
    pub fn from_toml(text: &str) -> Result<FeeSchedule, FeeConfigError> {
        let file: File =
            toml::from_str(text).map_err(|error| FeeConfigError::Syntax(error.to_string()))?;
        if file.rules.len() > RULES_MAX {
            return Err(FeeConfigError::TooManyRules {
                count: file.rules.len(),
                max: RULES_MAX,
            });
        }
        let rules = file
            .rules
            .into_iter()
            .enumerate()
            .map(|(position, raw)| convert(raw, position, &file.defaults))
            .collect::<Result<Vec<_>, _>>()?;
        FeeSchedule::new(rules)
    }
}

fn convert(raw: RawRule, position: usize, defaults: &Defaults) -> Result<FeeRule, FeeConfigError> {
    let name = if raw.id.is_empty() {
        format!("#{}", position + 1)
    } else {
        raw.id.clone()
    };
    let mut context = Context {
        rule: &name,
        currency: Currency::CNY,
    };
    let currency_code = raw
        .currency
        .as_deref()
        .or(defaults.currency.as_deref())
        .ok_or_else(|| context.invalid("currency", "is required (here or in [defaults])"))?;
    context.currency = Currency::from_code(currency_code)
        .map_err(|error| context.invalid("currency", error.to_string()))?;
    let method_kind = MethodKind::parse(&raw.method).ok_or_else(|| {
        context.invalid(
            "method",
            format!(
                "unknown method {:?} (expected one of {})",
                raw.method,
                MethodKind::ALL.map(MethodKind::as_str).join(", ")
            ),
        )
    })?;
    let method = method(&context, &raw, method_kind)?;
    let side = choose(
        &context,
        "side",
        raw.side.as_deref(),
        defaults.side.as_deref(),
        FeeSide::parse,
        FeeSide::Payee,
        "payer, payee",
    )?;
    let rounding = choose(
        &context,
        "rounding",
        raw.rounding.as_deref(),
        defaults.rounding.as_deref(),
        parse_rounding,
        RoundingMode::HalfUp,
        "half_up, half_even, down, up, floor, ceiling",
    )?;
    let collection = choose(
        &context,
        "collection",
        raw.collection.as_deref(),
        defaults.collection.as_deref(),
        CollectionMode::parse,
        CollectionMode::RealTime,
        "real_time, post_paid, prepaid",
    )?;
    Ok(FeeRule {
        id: raw.id.clone(),
        side,
        dimensions: Dimensions {
            merchant: dimension(&context, "merchant", raw.merchant)?,
            product: dimension(&context, "product", raw.product)?,
            channel: dimension(&context, "channel", raw.channel)?,
            issuing_bank: dimension(&context, "issuing_bank", raw.issuing_bank)?,
            business_line: dimension(&context, "business_line", raw.business_line)?,
        },
        currency: context.currency,
        method,
        minimum_minor: context.optional_amount("minimum", raw.minimum.as_deref())?,
        maximum_minor: context.optional_amount("maximum", raw.maximum.as_deref())?,
        rounding,
        collection,
    })
}

fn method(
    context: &Context<'_>,
    raw: &RawRule,
    kind: MethodKind,
) -> Result<FeeMethod, FeeConfigError> {
    match kind {
        MethodKind::Fixed => {
            for (field, value) in [
                ("rate", &raw.rate),
                ("policy", &raw.policy),
                ("period", &raw.period),
            ] {
                context.absent(field, value, kind)?;
            }
            context.absent("tiers", &raw.tiers, kind)?;
            let fee = context.required("fee", raw.fee.as_deref(), kind)?;
            Ok(FeeMethod::Fixed {
                fee_minor: context.amount("fee", fee)?,
            })
        }
        MethodKind::Rate => {
            for (field, value) in [
                ("fee", &raw.fee),
                ("policy", &raw.policy),
                ("period", &raw.period),
            ] {
                context.absent(field, value, kind)?;
            }
            context.absent("tiers", &raw.tiers, kind)?;
            let rate = context.required("rate", raw.rate.as_deref(), kind)?;
            Ok(FeeMethod::Rate {
                rate: context.rate("rate", rate)?,
            })
        }
        _ => tiered(context, raw, kind),
    }
}

fn tiered(
    context: &Context<'_>,
    raw: &RawRule,
    kind: MethodKind,
) -> Result<FeeMethod, FeeConfigError> {
    context.absent("fee", &raw.fee, kind)?;
    context.absent("rate", &raw.rate, kind)?;
    let policy_text = context.required("policy", raw.policy.as_deref(), kind)?;
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
    let raw_tiers = raw.tiers.as_deref().ok_or_else(|| {
        context.invalid("tiers", format!("is required by method {}", kind.as_str()))
    })?;
    let tiers = tiers(context, raw_tiers, by_count, rated)?;
    tiers
        .validate()
        .map_err(|reason| context.invalid("tiers", reason))?;
    if kind.is_cumulative() {
        let period_text = context.required("period", raw.period.as_deref(), kind)?;
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
        context.absent("period", &raw.period, kind)?;
        Ok(FeeMethod::AmountTiers { policy, tiers })
    }
}

fn tiers(
    context: &Context<'_>,
    raw: &[RawTier],
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
            (Some(UpTo::Count(count)), false) if by_count => up_to.push(*count),
            (Some(UpTo::Amount(text)), false) if !by_count => {
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
