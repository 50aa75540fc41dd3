//! Per-merchant settlement terms (`config/settlement.toml`): cycle,
//! destination, minimum amount and whether only reconciled amounts settle.

use crate::Cycle;
use serde::Deserialize;
use std::collections::HashMap;
use std::path::Path;

/// Why a settlement configuration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("settlement configuration: {0}")]
pub struct SettlementConfigError(pub String);

impl SettlementConfigError {
    pub fn code(&self) -> &'static str {
        "SETTLEMENT_CONFIG_INVALID"
    }
}

/// Where a merchant's settled money goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// The merchant's payment account (available balance) on the platform.
    Available,
    /// The merchant's bank account, through a payout (代付) of the engine.
    Bank { bank: String, account: String },
}

impl Destination {
    /// The stored name of a bank destination.
    pub const BANK: &'static str = "bank";

    pub fn as_str(&self) -> &'static str {
        match self {
            Destination::Available => "available",
            Destination::Bank { .. } => Destination::BANK,
        }
    }
}

/// One merchant's settlement terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MerchantTerms {
    pub cycle: Cycle,
    pub destination: Destination,
    /// A net below this is not paid; its entries wait for the next run.
    pub minimum_minor: i64,
    /// Only entries reconciliation has confirmed settle (对账完成增加待结算).
    pub reconciled_only: bool,
}

/// The terms of every merchant: its own, or the defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettlementConfig {
    pub defaults: MerchantTerms,
    merchants: HashMap<String, MerchantTerms>,
}

/// The built-in copy of `config/settlement.toml`.
pub const BUILTIN_SETTLEMENT_CONFIG: &str = include_str!("../../../config/settlement.toml");

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    defaults: TermsFile,
    #[serde(default)]
    merchants: Vec<MerchantFile>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct TermsFile {
    cycle: Option<String>,
    destination: Option<String>,
    bank: Option<String>,
    bank_account: Option<String>,
    minimum_minor: Option<i64>,
    reconciled_only: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MerchantFile {
    id: String,
    #[serde(flatten)]
    terms: TermsFile,
}

impl SettlementConfig {
    /// Every merchant on `defaults`.
    pub fn uniform(defaults: MerchantTerms) -> SettlementConfig {
        SettlementConfig {
            defaults,
            merchants: HashMap::new(),
        }
    }

    pub fn builtin() -> Result<SettlementConfig, SettlementConfigError> {
        SettlementConfig::from_toml(BUILTIN_SETTLEMENT_CONFIG)
    }

    pub fn load(path: &Path) -> Result<SettlementConfig, SettlementConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|error| SettlementConfigError(format!("{}: {error}", path.display())))?;
        SettlementConfig::from_toml(&text)
            .map_err(|error| SettlementConfigError(format!("{}: {}", path.display(), error.0)))
    }

    pub fn from_toml(text: &str) -> Result<SettlementConfig, SettlementConfigError> {
        let file: File =
            toml::from_str(text).map_err(|error| SettlementConfigError(error.to_string()))?;
        let base = MerchantTerms {
            cycle: Cycle::T(1),
            destination: Destination::Available,
            minimum_minor: 0,
            reconciled_only: false,
        };
        let defaults = file.defaults.apply(&base, "defaults")?;
        let mut merchants = HashMap::new();
        for merchant in file.merchants {
            let owner = format!("merchant {:?}", merchant.id);
            if merchant.id.trim().is_empty() {
                return Err(SettlementConfigError("a merchant without an id".to_owned()));
            }
            let terms = merchant.terms.apply(&defaults, &owner)?;
            if merchants.insert(merchant.id, terms).is_some() {
                return Err(SettlementConfigError(format!("{owner} is listed twice")));
            }
        }
        Ok(SettlementConfig {
            defaults,
            merchants,
        })
    }

    /// The terms `merchant_id` settles on.
    pub fn terms(&self, merchant_id: &str) -> &MerchantTerms {
        self.merchants.get(merchant_id).unwrap_or(&self.defaults)
    }
}

impl TermsFile {
    fn apply(
        self,
        base: &MerchantTerms,
        owner: &str,
    ) -> Result<MerchantTerms, SettlementConfigError> {
        let error = |message: String| SettlementConfigError(format!("{owner}: {message}"));
        let cycle = match self.cycle {
            Some(text) => Cycle::parse(&text).map_err(|e| error(e.to_string()))?,
            None => base.cycle,
        };
        let destination = match self.destination.as_deref() {
            None if self.bank.is_none() && self.bank_account.is_none() => base.destination.clone(),
            Some("available") if self.bank.is_none() && self.bank_account.is_none() => {
                Destination::Available
            }
            Some("available") => {
                return Err(error(
                    "bank and bank_account are only for destination \"bank\"".to_owned(),
                ));
            }
            None | Some("bank") => match (self.bank, self.bank_account) {
                (Some(bank), Some(account)) if !bank.is_empty() && !account.is_empty() => {
                    Destination::Bank { bank, account }
                }
                _ => {
                    return Err(error(
                        "destination \"bank\" needs bank and bank_account".to_owned(),
                    ));
                }
            },
            Some(other) => {
                return Err(error(format!(
                    "unknown destination {other:?} (available, bank)"
                )));
            }
        };
        let minimum_minor = self.minimum_minor.unwrap_or(base.minimum_minor);
        if minimum_minor < 0 {
            return Err(error(format!(
                "minimum_minor must not be negative, got {minimum_minor}"
            )));
        }
        Ok(MerchantTerms {
            cycle,
            destination,
            minimum_minor,
            reconciled_only: self.reconciled_only.unwrap_or(base.reconciled_only),
        })
    }
}
