//! Tier tables and how a transaction's slice of a volume is priced by them.
//!
//! Tier `i` covers the values `(lower_i, up_to_i]`: `lower_0` is 0 and
//! `lower_i` is the previous tier's `up_to`; the last tier has no `up_to`.
//! A value exactly on a boundary is in the lower tier.

use crate::FeeError;
use crate::rate::{RATE_DENOMINATOR_MAX, Rate};
use money::{RoundingMode, divide_rounded};

/// Most tiers one rule may have.
pub const TIERS_MAX: usize = 32;

/// How a tiered method prices a transaction whose slice of the volume
/// crosses tier boundaries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TierPolicy {
    /// Each part of the slice at its own tier's price (超额累进).
    Graduated,
    /// The whole transaction at the price of the tier the volume reaches
    /// (全额累进).
    WholeVolume,
}

impl TierPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            TierPolicy::Graduated => "graduated",
            TierPolicy::WholeVolume => "whole_volume",
        }
    }

    pub fn parse(text: &str) -> Option<TierPolicy> {
        [TierPolicy::Graduated, TierPolicy::WholeVolume]
            .into_iter()
            .find(|policy| policy.as_str() == text)
    }
}

/// The prices of a tier table: all rates or all fixed amounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TierPrices {
    Rates(Vec<Rate>),
    /// Fixed fees in minor units of the rule's currency.
    Fixed(Vec<i64>),
}

impl TierPrices {
    pub fn len(&self) -> usize {
        match self {
            TierPrices::Rates(rates) => rates.len(),
            TierPrices::Fixed(fees) => fees.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A tier table: inclusive upper bounds (one fewer than prices: the last
/// tier is unbounded) and the tiers' prices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tiers {
    /// `up_to` of every tier but the last, strictly increasing, positive:
    /// minor units for amount tiers, a transaction count for count tiers.
    pub up_to: Vec<i64>,
    pub prices: TierPrices,
}

/// A volume range `(start, end]` and the tiers' view of it.
#[derive(Debug, Clone, Copy)]
struct Slice {
    start: i128,
    end: i128,
}

impl Tiers {
    /// Checks the shape; the reason names the offending part.
    pub fn validate(&self) -> Result<(), String> {
        let count = self.prices.len();
        if count == 0 || count > TIERS_MAX {
            return Err(format!("between 1 and {TIERS_MAX} tiers, got {count}"));
        }
        if self.up_to.len() + 1 != count {
            return Err("every tier but the last needs up_to, and the last none".to_owned());
        }
        let mut previous = 0;
        for (index, bound) in self.up_to.iter().enumerate() {
            if *bound <= previous {
                return Err(format!(
                    "tiers[{index}].up_to must be above {previous} (bounds strictly increase from 0)"
                ));
            }
            previous = *bound;
        }
        if let TierPrices::Fixed(fees) = &self.prices
            && let Some(index) = fees.iter().position(|fee| *fee < 0)
        {
            return Err(format!("tiers[{index}].fee is negative"));
        }
        Ok(())
    }

    /// The tier `value` is in: the first whose `up_to` is at or above it.
    pub fn tier_of(&self, value: i128) -> usize {
        self.up_to
            .partition_point(|bound| i128::from(*bound) < value)
    }

    fn bounds(&self, index: usize) -> (i128, Option<i128>) {
        let lower = match index {
            0 => 0,
            _ => self
                .up_to
                .get(index - 1)
                .map_or(0, |bound| i128::from(*bound)),
        };
        (lower, self.up_to.get(index).map(|bound| i128::from(*bound)))
    }

    /// How much of `slice` lies in tier `index`.
    fn overlap(&self, index: usize, slice: Slice) -> i128 {
        let (lower, upper) = self.bounds(index);
        let top = upper.map_or(slice.end, |upper| upper.min(slice.end));
        (top - lower.max(slice.start)).max(0)
    }

    /// The fee of the transaction occupying `(before, before + amount]` of
    /// an amount volume. See the crate documentation for the definitions.
    pub fn price_amount_slice(
        &self,
        policy: TierPolicy,
        before: i64,
        amount_minor: i64,
        rounding: RoundingMode,
    ) -> Result<i64, FeeError> {
        let slice = Slice {
            start: i128::from(before),
            end: i128::from(before) + i128::from(amount_minor),
        };
        match policy {
            TierPolicy::WholeVolume => {
                self.price_one_tier(self.tier_of(slice.end), amount_minor, rounding)
            }
            TierPolicy::Graduated => self.price_graduated(slice, rounding),
        }
    }

    /// The price of one transaction of `amount_minor` wholly in tier `index`.
    pub fn price_one_tier(
        &self,
        index: usize,
        amount_minor: i64,
        rounding: RoundingMode,
    ) -> Result<i64, FeeError> {
        match &self.prices {
            TierPrices::Rates(rates) => rates
                .get(index)
                .ok_or(FeeError::Invariant("a tier index past the table"))?
                .apply(amount_minor, rounding),
            TierPrices::Fixed(fees) => fees
                .get(index)
                .copied()
                .ok_or(FeeError::Invariant("a tier index past the table")),
        }
    }

    fn price_graduated(&self, slice: Slice, rounding: RoundingMode) -> Result<i64, FeeError> {
        let total = match &self.prices {
            TierPrices::Rates(_) => {
                let exact = self.graduated_exact(slice)?;
                divide_rounded(exact, i128::from(RATE_DENOMINATOR_MAX), rounding)
                    .map_err(|_| FeeError::Overflow)?
            }
            // A fixed price is charged once for every tier the slice
            // touches: the tier's price for "a part in this tier".
            TierPrices::Fixed(fees) => fees
                .iter()
                .enumerate()
                .filter(|(index, _)| self.overlap(*index, slice) > 0)
                .map(|(_, fee)| i128::from(*fee))
                .sum(),
        };
        i64::try_from(total).map_err(|_| FeeError::Overflow)
    }

    /// The unrounded graduated fee of `slice` for rate tiers, in units of
    /// 1 / [`RATE_DENOMINATOR_MAX`] minor units. It is exact, so it is
    /// additive: the parts of a slice sum to the slice's value.
    fn graduated_exact(&self, slice: Slice) -> Result<i128, FeeError> {
        let TierPrices::Rates(rates) = &self.prices else {
            return Ok(0);
        };
        let mut total: i128 = 0;
        for (index, rate) in rates.iter().enumerate() {
            let part = self.overlap(index, slice);
            let value = part
                .checked_mul(rate.numerator_over(RATE_DENOMINATOR_MAX))
                .ok_or(FeeError::Overflow)?;
            total = total.checked_add(value).ok_or(FeeError::Overflow)?;
        }
        Ok(total)
    }

    /// The exact graduated rate fee of `(before, before + amount]` in
    /// 1 / [`RATE_DENOMINATOR_MAX`] minor units, before any rounding: what
    /// additivity is stated over. Zero for fixed-price tiers.
    pub fn graduated_exact_fee(&self, before: i64, amount_minor: i64) -> Result<i128, FeeError> {
        self.graduated_exact(Slice {
            start: i128::from(before),
            end: i128::from(before) + i128::from(amount_minor),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rates(up_to: &[i64], rates: &[&str]) -> Tiers {
        Tiers {
            up_to: up_to.to_vec(),
            prices: TierPrices::Rates(
                rates
                    .iter()
                    .map(|text| Rate::parse(text).unwrap())
                    .collect(),
            ),
        }
    }

    #[test]
    fn a_boundary_value_is_in_the_lower_tier() {
        let tiers = rates(&[2000, 5000], &["1%", "0.8%", "0.5%"]);
        assert_eq!(tiers.tier_of(1), 0);
        assert_eq!(tiers.tier_of(2000), 0);
        assert_eq!(tiers.tier_of(2001), 1);
        assert_eq!(tiers.tier_of(5000), 1);
        assert_eq!(tiers.tier_of(5001), 2);
        assert_eq!(tiers.tier_of(i128::from(i64::MAX) * 2), 2);
    }

    #[test]
    fn shapes_are_checked() {
        assert!(rates(&[2000], &["1%", "0.8%"]).validate().is_ok());
        assert!(rates(&[], &["1%"]).validate().is_ok());
        assert!(rates(&[2000], &["1%"]).validate().is_err());
        assert!(
            rates(&[2000, 2000], &["1%", "1%", "1%"])
                .validate()
                .is_err()
        );
        assert!(rates(&[0], &["1%", "1%"]).validate().is_err());
        let fixed = Tiers {
            up_to: vec![10],
            prices: TierPrices::Fixed(vec![5, -1]),
        };
        assert_eq!(fixed.validate().unwrap_err(), "tiers[1].fee is negative");
    }
}
