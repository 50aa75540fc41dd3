//! The configuration file: products (flows), channels with their routes,
//! and limits. It is a boundary like JSON: this module owns its shapes and
//! converts them to the engine's types, refusing anything it does not know.

use channels::Simulator;
use engine::{
    CAMPAIGNS_MAX, Campaign, DrawRule, FundingSource, Payee, PayoutFrom, Product, RefundOrdering,
    Route, StoredValueRules,
};
use serde::Deserialize;
use std::collections::BTreeSet;

/// The configuration paycore ships with (`config/paycore.toml`).
pub const BUILTIN: &str = include_str!("../../../config/paycore.toml");
/// The longest an escrow product may hold a buyer's money before it is
/// released by itself.
const ESCROW_DAYS_MAX: i64 = 365;

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("the configuration is not valid TOML of the expected shape: {0}")]
    Syntax(#[from] toml::de::Error),
    #[error("{0}")]
    Invalid(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    limits: Limits,
    products: Vec<ProductEntry>,
    channels: Vec<ChannelEntry>,
    #[serde(default)]
    stored_value: Option<StoredValueEntry>,
    #[serde(default)]
    campaigns: Vec<CampaignEntry>,
    #[serde(default)]
    refunds: Option<RefundsEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredValueEntry {
    draw: String,
    cash_weight: Option<u32>,
    bonus_weight: Option<u32>,
    #[serde(default)]
    merchants: Vec<MerchantDrawEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MerchantDrawEntry {
    id: String,
    draw: String,
    cash_weight: Option<u32>,
    bonus_weight: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CampaignEntry {
    code: String,
    #[serde(default)]
    description: String,
    currency: String,
    pay_minor: i64,
    bonus_minor: i64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RefundsEntry {
    order: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Limits {
    member_daily_minor: Option<i64>,
    card_daily_minor: Option<i64>,
    /// Most channel orders a payout is split into when no channel takes
    /// it in one transaction.
    payout_parts_max: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProductEntry {
    code: String,
    #[serde(default)]
    #[allow(dead_code)]
    description: String,
    payee: String,
    sources: Vec<String>,
    /// 代扣: every payment names an ACTIVE agreement (`agreement_no`).
    #[serde(default)]
    requires_agreement: bool,
    /// 担保交易 (payee = "escrow"): days after the payment until the money
    /// is released to the merchant if the buyer has not confirmed receipt.
    #[serde(default)]
    auto_release_days: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChannelEntry {
    code: String,
    kind: String,
    sources: Vec<String>,
    amount_minor_max: i64,
    cost_per_ten_thousand: i64,
    /// Most the channel carries in a day; none: no daily limit.
    daily_minor_max: Option<i64>,
}

/// A configuration, checked and in the engine's terms.
#[derive(Debug, Clone)]
pub struct Config {
    pub products: Vec<Product>,
    pub routes: Vec<Route>,
    /// The simulated channels to run, by code.
    pub simulators: Vec<String>,
    pub member_daily_limit_minor: Option<i64>,
    /// Most one card may be debited in a day, under all its agreements.
    pub card_daily_limit_minor: Option<i64>,
    /// Most channel orders one payout is split into.
    pub payout_parts_max: usize,
    /// How stored-value payments draw on cash and bonus.
    pub stored_value: StoredValueRules,
    /// Top-up campaigns (充值送).
    pub campaigns: Vec<Campaign>,
    /// How refunds are split over the paying sources.
    pub refund_ordering: RefundOrdering,
}

fn draw_rule(
    owner: &str,
    draw: &str,
    weights: (Option<u32>, Option<u32>),
) -> Result<DrawRule, ConfigError> {
    let weights_given = weights.0.is_some() || weights.1.is_some();
    let rule = match draw {
        "cash_first" => DrawRule::CashFirst,
        "bonus_first" => DrawRule::BonusFirst,
        "balance_ratio" => DrawRule::BalanceRatio,
        "fixed_ratio" => {
            let (Some(cash_weight), Some(bonus_weight)) = weights else {
                return Err(invalid(format!(
                    "{owner}: fixed_ratio needs cash_weight and bonus_weight"
                )));
            };
            if cash_weight == 0 && bonus_weight == 0 {
                return Err(invalid(format!("{owner}: the weights are both zero")));
            }
            return Ok(DrawRule::FixedRatio {
                cash_weight,
                bonus_weight,
            });
        }
        other => {
            return Err(invalid(format!(
                "{owner}: unknown draw {other:?} (cash_first, bonus_first, balance_ratio, fixed_ratio)"
            )));
        }
    };
    if weights_given {
        return Err(invalid(format!(
            "{owner}: cash_weight and bonus_weight belong to fixed_ratio only"
        )));
    }
    Ok(rule)
}

fn stored_value_rules(entry: Option<&StoredValueEntry>) -> Result<StoredValueRules, ConfigError> {
    let Some(entry) = entry else {
        return Ok(StoredValueRules::default());
    };
    unique(
        "stored_value merchant",
        entry.merchants.iter().map(|merchant| merchant.id.as_str()),
    )?;
    let mut merchants = Vec::with_capacity(entry.merchants.len());
    for merchant in &entry.merchants {
        let owner = format!("stored_value merchant {}", merchant.id);
        let weights = (merchant.cash_weight, merchant.bonus_weight);
        merchants.push((
            merchant.id.clone(),
            draw_rule(&owner, &merchant.draw, weights)?,
        ));
    }
    let weights = (entry.cash_weight, entry.bonus_weight);
    Ok(StoredValueRules {
        default: draw_rule("stored_value", &entry.draw, weights)?,
        merchants,
    })
}

fn campaigns(entries: &[CampaignEntry]) -> Result<Vec<Campaign>, ConfigError> {
    if entries.len() > CAMPAIGNS_MAX {
        return Err(invalid(format!("at most {CAMPAIGNS_MAX} campaigns")));
    }
    unique("campaign", entries.iter().map(|entry| entry.code.as_str()))?;
    entries
        .iter()
        .map(|entry| {
            let owner = format!("campaign {}", entry.code);
            let currency = money::Currency::from_code(&entry.currency)
                .map_err(|_| invalid(format!("{owner}: unknown currency {:?}", entry.currency)))?;
            let campaign = Campaign {
                code: entry.code.clone(),
                description: entry.description.clone(),
                currency,
                pay_minor: entry.pay_minor,
                bonus_minor: entry.bonus_minor,
            };
            engine::validate_campaign(&campaign)
                .map_err(|error| invalid(format!("{owner}: {error}")))?;
            Ok(campaign)
        })
        .collect()
}

fn invalid(message: String) -> ConfigError {
    ConfigError::Invalid(message)
}

fn sources(owner: &str, names: &[String]) -> Result<Vec<FundingSource>, ConfigError> {
    if names.is_empty() {
        return Err(invalid(format!("{owner} lists no sources")));
    }
    names
        .iter()
        .map(|name| {
            FundingSource::parse(name).ok_or_else(|| {
                invalid(format!(
                    "{owner}: unknown source {name:?} (balance, bonus, stored_value, coupon, discount, card, bank_account, wallet)"
                ))
            })
        })
        .collect()
}

fn unique<'a>(what: &str, codes: impl Iterator<Item = &'a str>) -> Result<(), ConfigError> {
    let mut seen = BTreeSet::new();
    for code in codes {
        if code.is_empty() {
            return Err(invalid(format!("a {what} has an empty code")));
        }
        if !seen.insert(code) {
            return Err(invalid(format!("{what} {code:?} is defined twice")));
        }
    }
    Ok(())
}

impl Config {
    /// Reads and checks a configuration.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let file: File = toml::from_str(text)?;
        unique(
            "product",
            file.products.iter().map(|product| product.code.as_str()),
        )?;
        unique(
            "channel",
            file.channels.iter().map(|channel| channel.code.as_str()),
        )?;
        let mut products = Vec::with_capacity(file.products.len());
        for entry in &file.products {
            let owner = format!("product {}", entry.code);
            let payee = match entry.payee.as_str() {
                "merchant" => Payee::Merchant,
                "escrow" => {
                    let days = entry.auto_release_days.ok_or_else(|| {
                        invalid(format!(
                            "{owner}: an escrow product names auto_release_days (1 to {ESCROW_DAYS_MAX})"
                        ))
                    })?;
                    if !(1..=ESCROW_DAYS_MAX).contains(&days) {
                        return Err(invalid(format!(
                            "{owner}: auto_release_days must be 1 to {ESCROW_DAYS_MAX}, got {days}"
                        )));
                    }
                    Payee::Escrow {
                        auto_release_seconds: days * 86_400,
                    }
                }
                "payer_cash" => Payee::PayerCash,
                "bank_from_member_cash" => Payee::Bank {
                    from: PayoutFrom::MemberCash,
                },
                "bank_from_merchant_available" => Payee::Bank {
                    from: PayoutFrom::MerchantAvailable,
                },
                other => {
                    return Err(invalid(format!(
                        "{owner}: unknown payee {other:?} (merchant, escrow, payer_cash, \
                         bank_from_member_cash, bank_from_merchant_available)"
                    )));
                }
            };
            if entry.auto_release_days.is_some() && !matches!(payee, Payee::Escrow { .. }) {
                return Err(invalid(format!(
                    "{owner}: auto_release_days is for payee = \"escrow\" only"
                )));
            }
            let sources = sources(&owner, &entry.sources)?;
            // A debit under an agreement pays the merchant from the signed
            // card and nothing else.
            if entry.requires_agreement
                && (payee != Payee::Merchant || sources != [FundingSource::Card])
            {
                return Err(invalid(format!(
                    "{owner}: a product that requires an agreement pays the merchant (payee = \"merchant\") from sources = [\"card\"] only"
                )));
            }
            products.push(Product {
                code: entry.code.clone(),
                payee,
                sources,
                requires_agreement: entry.requires_agreement,
            });
        }
        let mut routes = Vec::with_capacity(file.channels.len());
        for entry in &file.channels {
            let owner = format!("channel {}", entry.code);
            if entry.kind != "simulator" {
                return Err(invalid(format!(
                    "{owner}: unknown kind {:?} (only \"simulator\" is built in)",
                    entry.kind
                )));
            }
            if entry.amount_minor_max <= 0
                || entry.cost_per_ten_thousand < 0
                || entry.daily_minor_max.is_some_and(|limit| limit <= 0)
            {
                return Err(invalid(format!(
                    "{owner}: amount_minor_max and daily_minor_max must be positive and \
                     cost_per_ten_thousand not negative"
                )));
            }
            let sources = sources(&owner, &entry.sources)?;
            if let Some(internal) = sources.iter().find(|source| !source.through_channel()) {
                return Err(invalid(format!(
                    "{owner}: {} does not go through a channel",
                    internal.as_str()
                )));
            }
            routes.push(Route {
                channel: entry.code.clone(),
                sources,
                amount_minor_max: entry.amount_minor_max,
                cost_per_ten_thousand: entry.cost_per_ten_thousand,
                daily_minor_max: entry.daily_minor_max,
            });
        }
        for (name, limit) in [
            ("member_daily_minor", file.limits.member_daily_minor),
            ("card_daily_minor", file.limits.card_daily_minor),
        ] {
            if limit.is_some_and(|limit| limit <= 0) {
                return Err(invalid(format!("limits.{name} must be positive")));
            }
        }
        let payout_parts_max = file
            .limits
            .payout_parts_max
            .unwrap_or(engine::PAYOUT_PARTS_DEFAULT);
        if !(1..=engine::PAYOUT_PARTS_MAX).contains(&payout_parts_max) {
            return Err(invalid(format!(
                "limits.payout_parts_max must be 1 to {}",
                engine::PAYOUT_PARTS_MAX
            )));
        }
        let refund_ordering = match &file.refunds {
            None => RefundOrdering::default(),
            Some(refunds) => RefundOrdering::parse(&refunds.order).ok_or_else(|| {
                invalid(format!(
                    "refunds: unknown order {:?} (third_party_first, stored_value_first)",
                    refunds.order
                ))
            })?,
        };
        Ok(Config {
            products,
            simulators: routes.iter().map(|route| route.channel.clone()).collect(),
            routes,
            member_daily_limit_minor: file.limits.member_daily_minor,
            card_daily_limit_minor: file.limits.card_daily_minor,
            payout_parts_max,
            stored_value: stored_value_rules(file.stored_value.as_ref())?,
            campaigns: campaigns(&file.campaigns)?,
            refund_ordering,
        })
    }

    /// The configuration paycore ships with.
    pub fn builtin() -> Result<Config, ConfigError> {
        Config::parse(BUILTIN)
    }

    pub(crate) fn channels(&self) -> Vec<Simulator> {
        self.simulators
            .iter()
            .map(|code| Simulator::new(code))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_configuration_is_valid() {
        let config = Config::builtin().unwrap();
        assert_eq!(config.products.len(), 7);
        assert_eq!(config.products[5], Product::debit_collection());
        // 担保交易: ten days until the money releases by itself.
        assert_eq!(
            config.products[6].payee,
            Payee::Escrow {
                auto_release_seconds: 10 * 86_400
            }
        );
        assert_eq!(
            config.products[2].payee,
            Payee::Bank {
                from: PayoutFrom::MemberCash
            }
        );
        for payout in &config.products[3..5] {
            assert_eq!(
                payout.payee,
                Payee::Bank {
                    from: PayoutFrom::MerchantAvailable
                }
            );
        }
        assert_eq!(config.products[1].payee, Payee::PayerCash);
        assert_eq!(config.routes[0].channel, "simbank");
        assert_eq!(config.routes[1].amount_minor_max, 20_000_000);
        assert_eq!(config.member_daily_limit_minor, Some(5_000_000));
        assert_eq!(config.card_daily_limit_minor, Some(2_000_000));
    }

    #[test]
    fn mistakes_are_named() {
        let broken = |from: &str, to: &str| {
            let text = BUILTIN.replacen(from, to, 1);
            assert_ne!(text, BUILTIN, "{from:?} not found");
            Config::parse(&text).unwrap_err().to_string()
        };
        assert!(broken("payee = \"merchant\"", "payee = \"anyone\"").contains("unknown payee"));
        assert!(broken("\"coupon\", ", "\"voucher\", ").contains("unknown source \"voucher\""));
        assert!(broken("code = \"simpay\"", "code = \"simbank\"").contains("defined twice"));
        assert!(broken("kind = \"simulator\"", "kind = \"bank\"").contains("unknown kind"));
        assert!(
            broken(
                "sources = [\"card\"]\namount",
                "sources = [\"balance\"]\namount"
            )
            .contains("does not go through")
        );
        assert!(
            broken("member_daily_minor = 5000000", "member_daily_minor = 0").contains("positive")
        );
        assert!(
            broken("payout_parts_max = 10", "payout_parts_max = 0").contains("payout_parts_max")
        );
        assert!(broken("payout_parts_max = 10", "payout_parts_max = 101").contains("1 to 100"));
        assert!(broken("[limits]", "[limit]").contains("TOML"));
        assert!(
            broken(
                "sources = [\"card\"]\nrequires_agreement",
                "sources = [\"card\", \"balance\"]\nrequires_agreement"
            )
            .contains("requires an agreement")
        );
        assert!(
            broken("amount_minor_max = 20000000", "amount_minor_max = \"lots\"").contains("TOML")
        );
        assert!(
            broken("auto_release_days = 10", "auto_release_days = 0")
                .contains("auto_release_days must be 1 to 365")
        );
        assert!(broken("auto_release_days = 10\n", "\n").contains("names auto_release_days"));
        assert!(
            broken(
                "payee = \"merchant\"\n",
                "payee = \"merchant\"\nauto_release_days = 3\n"
            )
            .contains("for payee = \"escrow\" only")
        );
    }
}
