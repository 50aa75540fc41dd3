//! 计费 — the fee service: rules matched on dimensions, eight pricing
//! methods, tiers.
//!
//! Given a transaction — its side, merchant, product, issuing bank, channel,
//! business line, amount and business date — [`FeeSchedule::quote`] finds
//! the most specific [`FeeRule`] and prices the transaction with it. The
//! crate is pure: no I/O, no clock, no async runtime. Period counters of the
//! cumulative methods live behind the [`FeeCounterStore`] trait, which the
//! `store` crate implements; [`FeeSchedule::charge`] records and prices in
//! one step.
//!
//! # Matching
//!
//! A rule names a [`FeeSide`] (payer or payee; each side has its own rules
//! and is quoted on its own, so a payment charged on both sides is two
//! quotes) and, for each of five dimensions, a value or "any" (the field
//! omitted). A rule matches when every dimension it names equals the
//! request's; a request without an issuing bank (channel, business line)
//! matches only rules that do not name one. Among the matches the most
//! specific wins: the one naming more dimensions, and between rules naming
//! as many, the one naming the first dimension in the precedence
//! merchant > product > channel > issuing bank > business line that the
//! other does not. So the winner is always unique: two rules of one side
//! with the same dimensions are refused when the table is built
//! (`FEE_RULE_DUPLICATE`). No match is `FEE_RULE_NOT_FOUND`.
//!
//! The index groups rules by the set of dimensions they name, orders the
//! groups by that specificity and probes one hash map per group: a quote
//! costs at most 32 probes whatever the number of rules.
//!
//! # Methods
//!
//! | method | price |
//! | --- | --- |
//! | `fixed` | a fixed fee per transaction |
//! | `rate` | a rate of the amount |
//! | `amount_tiers_rate`, `amount_tiers_fixed` | tiers over the transaction's own amount |
//! | `cumulative_amount_tiers_rate`, `cumulative_amount_tiers_fixed` | tiers over the period's volume |
//! | `cumulative_count_tiers_rate`, `cumulative_count_tiers_fixed` | tiers over the period's count of transactions |
//!
//! Periods are the business day, the calendar month to date and the
//! calendar year to date; the period is taken from the request's business
//! date. Counters are kept per rule, merchant and period.
//!
//! # Tiers
//!
//! Tiers are given by inclusive upper bounds (`up_to`), the last tier
//! unbounded: tier `i` holds the values `lower_i < v ≤ up_to_i` with
//! `lower_0 = 0` and `lower_i = up_to_{i-1}`. **A value exactly on a
//! boundary is in the lower tier**: with "0–2000: 1%; above: 0.8%", 2000.00
//! is priced at 1% and 2000.01 (under whole-volume) at 0.8%. Amount bounds
//! count minor units, so "the value" of an amount volume is its last minor
//! unit.
//!
//! A transaction occupies the slice `(before, before + amount]` of its
//! volume: `before` is 0 for the per-transaction tiers and the period's
//! volume before it for the cumulative amount tiers. Each tiered rule
//! declares a [`TierPolicy`]:
//!
//! - **graduated** (超额累进): the slice is cut at the tier boundaries and
//!   each part pays its own tier's price: a rate tier charges its rate on
//!   the part's amount; a fixed tier charges its fee once for the part (so
//!   a transaction that spans two fixed tiers pays both fees, and the
//!   per-transaction fixed tiers charge the fee of every tier the amount
//!   reaches, as billing systems' graduated flat fees do). Rate parts are
//!   summed exactly and rounded once per transaction.
//! - **whole_volume** (全额累进): the whole transaction pays the price of
//!   the tier that the volume including it reaches (`before + amount`).
//!
//! Count tiers count transactions: the transaction is number
//! `count_before + 1` of its period and is priced, rate or fixed, at the
//! tier holding that number. A transaction is a single unit of a count, so
//! it never spans tiers and both policies price it the same way; they
//! would differ only in re-pricing earlier transactions, which a
//! per-transaction quote never does.
//!
//! What is promised, and tested by property tests:
//!
//! - graduated fees (rate or fixed tiers) never fall as the amount grows;
//!   whole-volume fees do not fall either when the tiers' prices do not
//!   fall from tier to tier, but with falling prices (volume discounts) a
//!   larger amount can cost less — that is what whole-volume means;
//! - the graduated rate fee is additive before rounding: pricing
//!   `(a, b]` and `(b, c]` gives exactly the unrounded value of `(a, c]`
//!   ([`Tiers::graduated_exact_fee`]); as each transaction is rounded once,
//!   the rounded fees of `k` parts differ from the fee of the whole by at
//!   most `k − 1` minor units (one, for a split in two);
//! - the fee is within the rule's minimum and maximum;
//! - adding a rule less specific than the winner never changes the winner.
//!
//! # Rates and rounding
//!
//! Rates are exact integer fractions ([`Rate`]; `0.6%`, `6‰`, `38bp`,
//! `0.0038`). A fee is `amount × rate` computed in `i128` and rounded once
//! by the rule's [`money::RoundingMode`] (half-up unless the rule says
//! otherwise). The minimum and maximum apply after the method. Fees are in
//! the rule's currency; a transaction in another currency is refused
//! (`FEE_CURRENCY_MISMATCH`).
//!
//! # Collection
//!
//! Each rule carries a [`CollectionMode`] (实收 real-time, 后收 post-paid,
//! 预充实扣 prepaid), returned in the quote for settlement to act on.
//!
//! # The table in force, stored and changed
//!
//! A running process prices with a [`FeeTable`]: a handle on the current
//! [`FeeSchedule`] and its version, replaced whole, so that each quote or
//! charge uses one table from start to end. The table is stored
//! ([`FeeRuleStore`]: each rule's [`FeeRuleDefinition`] as TOML text, a
//! version, an audit row per rule changed) and changes only through
//! [`change_rules`], which checks the whole new table before anything is
//! written and commits by compare-and-set on the version. [`refresh`] puts
//! a newer stored version in force, for processes sharing one database.

mod config;
mod counter;
mod date;
mod definition;
mod index;
mod rate;
mod rule;
mod schedule;
mod stored;
mod table;
mod tiers;

pub use counter::{
    CHARGE_KEY_LENGTH_MAX, CounterKey, FeeCharge, FeeCounterError, FeeCounterStore, PeriodUsage,
    Recorded,
};
pub use date::{BusinessDate, Period, PeriodKey};
pub use definition::{FeeRuleDefinition, TierBound, TierDefinition};
pub use index::DIMENSION_VALUES_MAX;
pub use rate::{RATE_DENOMINATOR_MAX, RATE_FRACTION_DIGITS_MAX, Rate};
pub use rule::{
    CollectionMode, Dimension, Dimensions, FeeMethod, FeeRule, FeeSide, MethodKind, NAME_LENGTH_MAX,
};
pub use schedule::{ChargeError, CounterUsed, FeeQuote, FeeRequest, FeeSchedule};
pub use stored::{
    CHANGE_ATTEMPTS_MAX, ChangeOutcome, FeeRuleChange, FeeRuleCommit, FeeRuleDiff, FeeRuleEdit,
    FeeRuleHistoryEntry, FeeRuleHistoryQuery, FeeRuleSet, FeeRuleStore, FeeTableError,
    HISTORY_PAGE_MAX, OPERATOR_LENGTH_MAX, REASON_LENGTH_MAX, StoredFeeRule, StoredFeeRules,
    change_rules, read_rules, refresh,
};
pub use table::{FeeTable, VersionedSchedule};
pub use tiers::{TIERS_MAX, TierPolicy, TierPrices, Tiers};

/// Most rules one schedule may hold.
pub const RULES_MAX: usize = 100_000;

/// Why a transaction could not be priced.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeeError {
    #[error("no {side} fee rule matches merchant {merchant_id:?}, product {product:?}")]
    RuleNotFound {
        side: &'static str,
        merchant_id: String,
        product: String,
    },
    #[error("rule {rule:?} is in {rule_currency}, the transaction in {transaction_currency}")]
    CurrencyMismatch {
        rule: String,
        rule_currency: &'static str,
        transaction_currency: &'static str,
    },
    #[error("the amount must be positive, got {0} minor units")]
    InvalidAmount(i64),
    #[error("the period usage must not be negative (count {count}, volume {volume_minor})")]
    InvalidUsage { count: i64, volume_minor: i64 },
    #[error("invalid rate {text:?}: {reason}")]
    InvalidRate { text: String, reason: &'static str },
    #[error("invalid business date {0:?} (expected YYYY-MM-DD)")]
    InvalidDate(String),
    #[error("the fee does not fit in 64 bits")]
    Overflow,
    /// A bug: an index the table's checks should have made impossible.
    #[error("fee invariant broken: {0}")]
    Invariant(&'static str),
}

impl FeeError {
    /// The stable code of the error.
    pub fn code(&self) -> &'static str {
        match self {
            FeeError::RuleNotFound { .. } => "FEE_RULE_NOT_FOUND",
            FeeError::CurrencyMismatch { .. } => "FEE_CURRENCY_MISMATCH",
            FeeError::InvalidAmount(_) => "FEE_INVALID_AMOUNT",
            FeeError::InvalidUsage { .. } => "FEE_INVALID_USAGE",
            FeeError::InvalidRate { .. } => "FEE_INVALID_RATE",
            FeeError::InvalidDate(_) => "FEE_INVALID_DATE",
            FeeError::Overflow => "FEE_OVERFLOW",
            FeeError::Invariant(_) => "FEE_INVARIANT",
        }
    }
}

/// Why a rule table was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeeConfigError {
    #[error("the fee rules are not valid TOML of the expected shape: {0}")]
    Syntax(String),
    #[error("rule {rule:?}, field {field}: {reason}")]
    Invalid {
        rule: String,
        field: String,
        reason: String,
    },
    #[error("rules {first:?} and {second:?} have the same side and dimensions")]
    Duplicate { first: String, second: String },
    #[error("at most {max} rules, got {count}")]
    TooManyRules { count: usize, max: usize },
}

impl FeeConfigError {
    /// The stable code of the error.
    pub fn code(&self) -> &'static str {
        match self {
            FeeConfigError::Syntax(_) => "FEE_CONFIG_SYNTAX",
            FeeConfigError::Invalid { .. } => "FEE_CONFIG_INVALID",
            FeeConfigError::Duplicate { .. } => "FEE_RULE_DUPLICATE",
            FeeConfigError::TooManyRules { .. } => "FEE_TOO_MANY_RULES",
        }
    }
}
