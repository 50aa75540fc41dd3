//! A fee rule: where it applies (side and dimensions), how it prices
//! (method, rounding, minimum and maximum) and how the fee is collected.

use crate::counter::PeriodUsage;
use crate::date::Period;
use crate::rate::Rate;
use crate::tiers::{TierPolicy, TierPrices, Tiers};
use crate::{FeeConfigError, FeeError};
use money::{Currency, RoundingMode};

/// Longest rule id and dimension value, in bytes.
pub const NAME_LENGTH_MAX: usize = 64;

/// Who pays a fee. A payment can be charged on both sides: each side has
/// its own rules and is quoted separately.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FeeSide {
    /// The paying party (付款方), e.g. a member paying for a withdrawal.
    Payer,
    /// The receiving party (收款方), usually the merchant. The default.
    Payee,
}

impl FeeSide {
    pub const ALL: [FeeSide; 2] = [FeeSide::Payer, FeeSide::Payee];

    pub fn as_str(self) -> &'static str {
        match self {
            FeeSide::Payer => "payer",
            FeeSide::Payee => "payee",
        }
    }

    pub fn parse(text: &str) -> Option<FeeSide> {
        FeeSide::ALL.into_iter().find(|side| side.as_str() == text)
    }

    pub(crate) fn index(self) -> usize {
        match self {
            FeeSide::Payer => 0,
            FeeSide::Payee => 1,
        }
    }
}

/// How a fee is collected; settlement acts on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum CollectionMode {
    /// 实收: taken from the transaction (collect 100, fee 1, settle 99).
    #[default]
    RealTime,
    /// 后收: the transaction settles in full; fees are summed and billed at
    /// the end of the month.
    PostPaid,
    /// 预充实扣: debited in real time from the merchant's prepaid fee
    /// account; too little in it rejects the transaction.
    Prepaid,
}

impl CollectionMode {
    pub const ALL: [CollectionMode; 3] = [
        CollectionMode::RealTime,
        CollectionMode::PostPaid,
        CollectionMode::Prepaid,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CollectionMode::RealTime => "real_time",
            CollectionMode::PostPaid => "post_paid",
            CollectionMode::Prepaid => "prepaid",
        }
    }

    pub fn parse(text: &str) -> Option<CollectionMode> {
        CollectionMode::ALL
            .into_iter()
            .find(|mode| mode.as_str() == text)
    }
}

/// A dimension rules match on, in precedence order: when two rules specify
/// as many dimensions, the one that specifies the earlier dimension wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dimension {
    Merchant,
    Product,
    /// The acquiring bank or channel (收单机构 / 渠道).
    Channel,
    /// The payer's issuing bank (发卡行).
    IssuingBank,
    BusinessLine,
}

impl Dimension {
    /// Highest precedence first.
    pub const ALL: [Dimension; 5] = [
        Dimension::Merchant,
        Dimension::Product,
        Dimension::Channel,
        Dimension::IssuingBank,
        Dimension::BusinessLine,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Dimension::Merchant => "merchant",
            Dimension::Product => "product",
            Dimension::Channel => "channel",
            Dimension::IssuingBank => "issuing_bank",
            Dimension::BusinessLine => "business_line",
        }
    }

    /// The dimension's bit in a specificity mask: higher precedence, higher
    /// bit, so among masks with as many bits the larger one wins.
    pub(crate) fn bit(self) -> u8 {
        match self {
            Dimension::Merchant => 1 << 4,
            Dimension::Product => 1 << 3,
            Dimension::Channel => 1 << 2,
            Dimension::IssuingBank => 1 << 1,
            Dimension::BusinessLine => 1,
        }
    }
}

/// What a rule matches: each dimension a value, or `None` for any.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Dimensions {
    pub merchant: Option<String>,
    pub product: Option<String>,
    pub channel: Option<String>,
    pub issuing_bank: Option<String>,
    pub business_line: Option<String>,
}

impl Dimensions {
    pub fn get(&self, dimension: Dimension) -> Option<&str> {
        match dimension {
            Dimension::Merchant => self.merchant.as_deref(),
            Dimension::Product => self.product.as_deref(),
            Dimension::Channel => self.channel.as_deref(),
            Dimension::IssuingBank => self.issuing_bank.as_deref(),
            Dimension::BusinessLine => self.business_line.as_deref(),
        }
    }

    /// Which dimensions are specified, as [`Dimension`] bits.
    pub fn mask(&self) -> u8 {
        Dimension::ALL
            .into_iter()
            .filter(|dimension| self.get(*dimension).is_some())
            .fold(0, |mask, dimension| mask | dimension.bit())
    }
}

/// The specificity rank of a mask: more dimensions first, then precedence.
/// A larger rank wins.
pub(crate) fn rank(mask: u8) -> (u32, u8) {
    (mask.count_ones(), mask)
}

/// How a rule prices one transaction (DOMAIN §3's eight methods).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeeMethod {
    /// A fixed fee per transaction, in minor units.
    Fixed { fee_minor: i64 },
    /// A rate of the transaction's amount.
    Rate { rate: Rate },
    /// Tiers over the transaction's own amount (rate or fixed prices).
    AmountTiers { policy: TierPolicy, tiers: Tiers },
    /// Tiers over the period's cumulative amount (rate or fixed prices).
    CumulativeAmountTiers {
        period: Period,
        policy: TierPolicy,
        tiers: Tiers,
    },
    /// Tiers over the period's count of transactions (rate or fixed).
    CumulativeCountTiers {
        period: Period,
        policy: TierPolicy,
        tiers: Tiers,
    },
}

/// The eight methods by name, as configured and as quoted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MethodKind {
    Fixed,
    Rate,
    AmountTiersRate,
    AmountTiersFixed,
    CumulativeAmountTiersRate,
    CumulativeAmountTiersFixed,
    CumulativeCountTiersRate,
    CumulativeCountTiersFixed,
}

impl MethodKind {
    pub const ALL: [MethodKind; 8] = [
        MethodKind::Fixed,
        MethodKind::Rate,
        MethodKind::AmountTiersRate,
        MethodKind::AmountTiersFixed,
        MethodKind::CumulativeAmountTiersRate,
        MethodKind::CumulativeAmountTiersFixed,
        MethodKind::CumulativeCountTiersRate,
        MethodKind::CumulativeCountTiersFixed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MethodKind::Fixed => "fixed",
            MethodKind::Rate => "rate",
            MethodKind::AmountTiersRate => "amount_tiers_rate",
            MethodKind::AmountTiersFixed => "amount_tiers_fixed",
            MethodKind::CumulativeAmountTiersRate => "cumulative_amount_tiers_rate",
            MethodKind::CumulativeAmountTiersFixed => "cumulative_amount_tiers_fixed",
            MethodKind::CumulativeCountTiersRate => "cumulative_count_tiers_rate",
            MethodKind::CumulativeCountTiersFixed => "cumulative_count_tiers_fixed",
        }
    }

    pub fn parse(text: &str) -> Option<MethodKind> {
        MethodKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == text)
    }

    /// True for the four methods counted over a period.
    pub fn is_cumulative(self) -> bool {
        matches!(
            self,
            MethodKind::CumulativeAmountTiersRate
                | MethodKind::CumulativeAmountTiersFixed
                | MethodKind::CumulativeCountTiersRate
                | MethodKind::CumulativeCountTiersFixed
        )
    }
}

impl FeeMethod {
    pub fn kind(&self) -> MethodKind {
        let rated = |tiers: &Tiers| matches!(tiers.prices, TierPrices::Rates(_));
        match self {
            FeeMethod::Fixed { .. } => MethodKind::Fixed,
            FeeMethod::Rate { .. } => MethodKind::Rate,
            FeeMethod::AmountTiers { tiers, .. } if rated(tiers) => MethodKind::AmountTiersRate,
            FeeMethod::AmountTiers { .. } => MethodKind::AmountTiersFixed,
            FeeMethod::CumulativeAmountTiers { tiers, .. } if rated(tiers) => {
                MethodKind::CumulativeAmountTiersRate
            }
            FeeMethod::CumulativeAmountTiers { .. } => MethodKind::CumulativeAmountTiersFixed,
            FeeMethod::CumulativeCountTiers { tiers, .. } if rated(tiers) => {
                MethodKind::CumulativeCountTiersRate
            }
            FeeMethod::CumulativeCountTiers { .. } => MethodKind::CumulativeCountTiersFixed,
        }
    }

    /// The period counted over, for the cumulative methods.
    pub fn period(&self) -> Option<Period> {
        match self {
            FeeMethod::CumulativeAmountTiers { period, .. }
            | FeeMethod::CumulativeCountTiers { period, .. } => Some(*period),
            _ => None,
        }
    }

    pub fn policy(&self) -> Option<TierPolicy> {
        match self {
            FeeMethod::Fixed { .. } | FeeMethod::Rate { .. } => None,
            FeeMethod::AmountTiers { policy, .. }
            | FeeMethod::CumulativeAmountTiers { policy, .. }
            | FeeMethod::CumulativeCountTiers { policy, .. } => Some(*policy),
        }
    }

    pub fn tiers(&self) -> Option<&Tiers> {
        match self {
            FeeMethod::Fixed { .. } | FeeMethod::Rate { .. } => None,
            FeeMethod::AmountTiers { tiers, .. }
            | FeeMethod::CumulativeAmountTiers { tiers, .. }
            | FeeMethod::CumulativeCountTiers { tiers, .. } => Some(tiers),
        }
    }

    /// The method's fee before minimum and maximum.
    fn price(
        &self,
        amount_minor: i64,
        usage: PeriodUsage,
        rounding: RoundingMode,
    ) -> Result<i64, FeeError> {
        match self {
            FeeMethod::Fixed { fee_minor } => Ok(*fee_minor),
            FeeMethod::Rate { rate } => rate.apply(amount_minor, rounding),
            FeeMethod::AmountTiers { policy, tiers } => {
                tiers.price_amount_slice(*policy, 0, amount_minor, rounding)
            }
            FeeMethod::CumulativeAmountTiers { policy, tiers, .. } => {
                tiers.price_amount_slice(*policy, usage.volume_minor, amount_minor, rounding)
            }
            // A transaction is one unit of a count: number `count + 1` of
            // the period, wholly in one tier, so both policies agree.
            FeeMethod::CumulativeCountTiers { tiers, .. } => {
                let number = i128::from(usage.count) + 1;
                tiers.price_one_tier(tiers.tier_of(number), amount_minor, rounding)
            }
        }
    }
}

/// One row of the rule table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeeRule {
    /// Unique, stable: counters and quotes name it.
    pub id: String,
    pub side: FeeSide,
    pub dimensions: Dimensions,
    /// The currency of the rule's amounts; a transaction in another
    /// currency is refused (`FEE_CURRENCY_MISMATCH`).
    pub currency: Currency,
    pub method: FeeMethod,
    /// Applied after the method.
    pub minimum_minor: Option<i64>,
    pub maximum_minor: Option<i64>,
    /// How rate results are rounded to a minor unit (half-up by default).
    pub rounding: RoundingMode,
    pub collection: CollectionMode,
}

fn check_name(value: &str) -> Result<(), String> {
    if value.is_empty() || value.len() > NAME_LENGTH_MAX {
        return Err(format!("must be 1 to {NAME_LENGTH_MAX} bytes"));
    }
    if value.chars().any(char::is_control) {
        return Err("must not hold control characters".to_owned());
    }
    Ok(())
}

impl FeeRule {
    /// The fee of one transaction of `amount_minor` given the period's
    /// usage before it: the method's price, then clamped to the rule's
    /// minimum and maximum.
    pub fn price(&self, amount_minor: i64, usage: PeriodUsage) -> Result<i64, FeeError> {
        let mut fee = self.method.price(amount_minor, usage, self.rounding)?;
        if let Some(minimum) = self.minimum_minor {
            fee = fee.max(minimum);
        }
        if let Some(maximum) = self.maximum_minor {
            fee = fee.min(maximum);
        }
        Ok(fee)
    }

    /// Checks everything about the rule on its own; the error names the
    /// rule and the field.
    pub fn validate(&self) -> Result<(), FeeConfigError> {
        let invalid = |field: &str, reason: String| FeeConfigError::Invalid {
            rule: self.id.clone(),
            field: field.to_owned(),
            reason,
        };
        check_name(&self.id).map_err(|reason| invalid("id", reason))?;
        for dimension in Dimension::ALL {
            if let Some(value) = self.dimensions.get(dimension) {
                check_name(value).map_err(|reason| invalid(dimension.as_str(), reason))?;
            }
        }
        self.validate_method()?;
        // A member pays its own fee with the payment, from its balance:
        // members keep no fee account and receive no monthly bill.
        if self.side == FeeSide::Payer && self.collection != CollectionMode::RealTime {
            return Err(invalid(
                "collection",
                format!(
                    "a payer-side rule is collected real_time, not {}",
                    self.collection.as_str()
                ),
            ));
        }
        let check_bound = |field: &str, bound: Option<i64>| match bound {
            Some(value) if value < 0 => Err(invalid(field, "is negative".to_owned())),
            _ => Ok(()),
        };
        check_bound("minimum", self.minimum_minor)?;
        check_bound("maximum", self.maximum_minor)?;
        if let (Some(minimum), Some(maximum)) = (self.minimum_minor, self.maximum_minor)
            && maximum < minimum
        {
            return Err(invalid(
                "maximum",
                format!("is below the minimum ({maximum} < {minimum} minor units)"),
            ));
        }
        Ok(())
    }

    fn validate_method(&self) -> Result<(), FeeConfigError> {
        let invalid = |field: &str, reason: String| FeeConfigError::Invalid {
            rule: self.id.clone(),
            field: field.to_owned(),
            reason,
        };
        match &self.method {
            FeeMethod::Fixed { fee_minor } if *fee_minor < 0 => {
                Err(invalid("fee", "is negative".to_owned()))
            }
            FeeMethod::Fixed { .. } | FeeMethod::Rate { .. } => Ok(()),
            FeeMethod::AmountTiers { tiers, .. }
            | FeeMethod::CumulativeAmountTiers { tiers, .. }
            | FeeMethod::CumulativeCountTiers { tiers, .. } => {
                tiers.validate().map_err(|reason| invalid("tiers", reason))
            }
        }
    }
}
