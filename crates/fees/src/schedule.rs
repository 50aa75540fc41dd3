//! The rule table and the quote API.

use crate::counter::{CounterKey, FeeCharge, FeeCounterError, FeeCounterStore, PeriodUsage};
use crate::date::{BusinessDate, PeriodKey};
use crate::index::{Index, RequestValues, find_by_scan};
use crate::rule::{CollectionMode, FeeRule, FeeSide, MethodKind};
use crate::tiers::TierPolicy;
use crate::{FeeConfigError, FeeError, RULES_MAX};
use ledger::TimestampMicros;
use money::Money;
use std::sync::Arc;

/// One transaction to price, on one side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeeRequest<'a> {
    pub side: FeeSide,
    pub merchant_id: &'a str,
    pub product: &'a str,
    /// `None` when unknown: only rules with any issuing bank match.
    pub issuing_bank: Option<&'a str>,
    pub channel: Option<&'a str>,
    pub business_line: Option<&'a str>,
    /// The transaction's amount; must be positive.
    pub amount: Money,
    /// The business day the transaction belongs to; it picks the period of
    /// a cumulative rule.
    pub business_date: BusinessDate,
    /// For a cumulative rule: the period's count and volume before this
    /// transaction (read them with [`FeeSchedule::counter_key`] and a
    /// [`FeeCounterStore`], or let [`FeeSchedule::charge`] do both).
    /// Ignored by the other methods.
    pub usage: PeriodUsage,
}

impl FeeRequest<'_> {
    fn values(&self) -> RequestValues<'_> {
        [
            Some(self.merchant_id),
            Some(self.product),
            self.channel,
            self.issuing_bank,
            self.business_line,
        ]
    }
}

/// The counter a cumulative rule priced a transaction on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CounterUsed {
    pub period_key: PeriodKey,
    /// The period's usage before the transaction.
    pub before: PeriodUsage,
}

/// A priced transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeeQuote {
    /// The rule that matched.
    pub rule_id: Arc<str>,
    pub method: MethodKind,
    /// For the tiered methods.
    pub policy: Option<TierPolicy>,
    pub side: FeeSide,
    /// The fee, after minimum and maximum, in the transaction's currency.
    pub fee: Money,
    pub collection: CollectionMode,
    /// For the cumulative methods.
    pub counter: Option<CounterUsed>,
}

/// Why [`FeeSchedule::charge`] failed.
#[derive(Debug, thiserror::Error)]
pub enum ChargeError {
    #[error(transparent)]
    Fee(#[from] FeeError),
    #[error(transparent)]
    Counter(#[from] FeeCounterError),
}

impl ChargeError {
    pub fn code(&self) -> &'static str {
        match self {
            ChargeError::Fee(error) => error.code(),
            ChargeError::Counter(error) => error.code(),
        }
    }
}

/// A checked rule table with its index. Immutable; share it behind an
/// `Arc` and replace it whole to change rules.
#[derive(Debug, Clone)]
pub struct FeeSchedule {
    rules: Vec<FeeRule>,
    rule_ids: Vec<Arc<str>>,
    index: Index,
}

impl FeeSchedule {
    /// Checks every rule and indexes them. Errors name the rule and field.
    pub fn new(rules: Vec<FeeRule>) -> Result<FeeSchedule, FeeConfigError> {
        if rules.len() > RULES_MAX {
            return Err(FeeConfigError::TooManyRules {
                count: rules.len(),
                max: RULES_MAX,
            });
        }
        let mut ids = std::collections::HashSet::with_capacity(rules.len());
        for rule in &rules {
            rule.validate()?;
            if !ids.insert(rule.id.as_str()) {
                return Err(FeeConfigError::Invalid {
                    rule: rule.id.clone(),
                    field: "id".to_owned(),
                    reason: "is used by another rule".to_owned(),
                });
            }
        }
        let index = Index::build(&rules)?;
        let rule_ids = rules
            .iter()
            .map(|rule| Arc::from(rule.id.as_str()))
            .collect();
        Ok(FeeSchedule {
            rules,
            rule_ids,
            index,
        })
    }

    /// A table without rules: every quote is `FEE_RULE_NOT_FOUND`.
    pub fn empty() -> FeeSchedule {
        FeeSchedule {
            rules: Vec::new(),
            rule_ids: Vec::new(),
            index: Index::default(),
        }
    }

    pub fn rules(&self) -> &[FeeRule] {
        &self.rules
    }

    pub fn rule(&self, rule_id: &str) -> Option<&FeeRule> {
        self.rules.iter().find(|rule| rule.id == rule_id)
    }

    /// The most specific rule for the request's side and dimensions.
    pub fn select(&self, request: &FeeRequest<'_>) -> Result<&FeeRule, FeeError> {
        self.select_position(request)
            .and_then(|position| self.rules.get(position))
            .ok_or_else(|| not_found(request))
    }

    fn select_position(&self, request: &FeeRequest<'_>) -> Option<usize> {
        self.index.find(request.side, &request.values())
    }

    /// [`FeeSchedule::select`] by scanning every rule: the reference the
    /// index is tested against and the benchmark's baseline. O(rules).
    pub fn select_by_scan(&self, request: &FeeRequest<'_>) -> Result<&FeeRule, FeeError> {
        find_by_scan(&self.rules, request.side, &request.values())
            .and_then(|position| self.rules.get(position))
            .ok_or_else(|| not_found(request))
    }

    /// The counter the request would be priced on, when its rule is
    /// cumulative; `None` for the other methods.
    pub fn counter_key(&self, request: &FeeRequest<'_>) -> Result<Option<CounterKey>, FeeError> {
        let rule = self.select(request)?;
        Ok(rule.method.period().map(|period| CounterKey {
            rule_id: rule.id.clone(),
            merchant_id: request.merchant_id.to_owned(),
            period_key: period.key(request.business_date),
        }))
    }

    /// Prices the request with its most specific rule, on `request.usage`
    /// for a cumulative rule. Reads no counter and writes none.
    pub fn quote(&self, request: &FeeRequest<'_>) -> Result<FeeQuote, FeeError> {
        check_request(request)?;
        let position = self
            .select_position(request)
            .ok_or_else(|| not_found(request))?;
        self.price_with(position, request, request.usage)
    }

    /// [`FeeSchedule::quote`] with the rule found by a scan of every rule:
    /// the benchmark's baseline.
    pub fn quote_by_scan(&self, request: &FeeRequest<'_>) -> Result<FeeQuote, FeeError> {
        check_request(request)?;
        let position = find_by_scan(&self.rules, request.side, &request.values())
            .ok_or_else(|| not_found(request))?;
        self.price_with(position, request, request.usage)
    }

    /// Prices and counts a transaction as it is charged: for a cumulative
    /// rule, records it in its period counter exactly once per
    /// `charge_key` and prices it on the counter's values just before it
    /// (so concurrent charges of one merchant each see their own place in
    /// the period, and a retried key is priced as the first time).
    /// `request.usage` is ignored. Other rules record nothing.
    pub async fn charge<S: FeeCounterStore>(
        &self,
        store: &S,
        charge_key: &str,
        request: &FeeRequest<'_>,
        now: TimestampMicros,
    ) -> Result<FeeQuote, ChargeError> {
        check_request(request)?;
        let position = self
            .select_position(request)
            .ok_or_else(|| not_found(request))?;
        let rule = self.rule_at(position)?;
        check_currency(rule, request)?;
        let usage = match rule.method.period() {
            None => PeriodUsage::default(),
            Some(period) => {
                let charge = FeeCharge {
                    charge_key: charge_key.to_owned(),
                    counter: CounterKey {
                        rule_id: rule.id.clone(),
                        merchant_id: request.merchant_id.to_owned(),
                        period_key: period.key(request.business_date),
                    },
                    amount_minor: request.amount.amount_minor(),
                };
                store.record_fee_charge(&charge, now).await?.before
            }
        };
        Ok(self.price_with(position, request, usage)?)
    }

    fn rule_at(&self, position: usize) -> Result<&FeeRule, FeeError> {
        self.rules
            .get(position)
            .ok_or(FeeError::Invariant("a rule position past the table"))
    }

    fn price_with(
        &self,
        position: usize,
        request: &FeeRequest<'_>,
        usage: PeriodUsage,
    ) -> Result<FeeQuote, FeeError> {
        let rule = self.rule_at(position)?;
        check_currency(rule, request)?;
        if usage.count < 0 || usage.volume_minor < 0 {
            return Err(FeeError::InvalidUsage {
                count: usage.count,
                volume_minor: usage.volume_minor,
            });
        }
        let fee_minor = rule.price(request.amount.amount_minor(), usage)?;
        let counter = rule.method.period().map(|period| CounterUsed {
            period_key: period.key(request.business_date),
            before: usage,
        });
        Ok(FeeQuote {
            rule_id: self
                .rule_ids
                .get(position)
                .cloned()
                .ok_or(FeeError::Invariant("a rule position past the table"))?,
            method: rule.method.kind(),
            policy: rule.method.policy(),
            side: request.side,
            fee: Money::new(fee_minor, request.amount.currency()),
            collection: rule.collection,
            counter,
        })
    }
}

fn check_request(request: &FeeRequest<'_>) -> Result<(), FeeError> {
    if request.amount.amount_minor() <= 0 {
        return Err(FeeError::InvalidAmount(request.amount.amount_minor()));
    }
    Ok(())
}

fn check_currency(rule: &FeeRule, request: &FeeRequest<'_>) -> Result<(), FeeError> {
    if rule.currency == request.amount.currency() {
        Ok(())
    } else {
        Err(FeeError::CurrencyMismatch {
            rule: rule.id.clone(),
            rule_currency: rule.currency.code(),
            transaction_currency: request.amount.currency().code(),
        })
    }
}

fn not_found(request: &FeeRequest<'_>) -> FeeError {
    FeeError::RuleNotFound {
        side: request.side.as_str(),
        merchant_id: request.merchant_id.to_owned(),
        product: request.product.to_owned(),
    }
}
