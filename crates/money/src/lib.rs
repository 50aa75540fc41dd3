//! Money as an integer count of minor units plus an ISO 4217 currency.
//!
//! Every operation is checked: an overflow is an error, never a wrap. Every
//! rounding names its [`RoundingMode`]. Every split of an amount
//! ([`Money::allocate`]) returns parts that sum exactly to the whole.
//!
//! **Architecture Invariant:** this crate has no floating point anywhere, and
//! knows nothing of accounts, storage or HTTP.

mod allocate;
mod currency;
mod decimal;
mod rounding;

pub use allocate::ALLOCATION_PARTS_MAX;
pub use currency::Currency;
pub use rounding::{RoundingMode, divide_rounded};

use std::fmt;

/// Errors of money arithmetic and parsing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("unknown currency code {0:?}")]
    UnknownCurrency(String),
    #[error("currency {0} has no minor unit and cannot hold money")]
    CurrencyWithoutMinorUnit(&'static str),
    #[error("currency mismatch: {left} and {right}")]
    CurrencyMismatch {
        left: &'static str,
        right: &'static str,
    },
    #[error("amount overflow")]
    Overflow,
    #[error("division by zero")]
    DivisionByZero,
    #[error("allocation needs between 1 and {max} weights, got {count}")]
    AllocationPartCount { count: usize, max: usize },
    #[error("allocation weights sum to zero")]
    AllocationWeightsZero,
    #[error("invalid decimal amount {text:?}: {reason}")]
    InvalidDecimal { text: String, reason: &'static str },
}

/// An amount of money: integer minor units (fen, cents) of one currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Money {
    amount_minor: i64,
    currency: Currency,
}

impl Money {
    pub const fn new(amount_minor: i64, currency: Currency) -> Self {
        Self {
            amount_minor,
            currency,
        }
    }

    pub const fn zero(currency: Currency) -> Self {
        Self::new(0, currency)
    }

    pub const fn amount_minor(self) -> i64 {
        self.amount_minor
    }

    pub const fn currency(self) -> Currency {
        self.currency
    }

    pub const fn is_zero(self) -> bool {
        self.amount_minor == 0
    }

    pub const fn is_negative(self) -> bool {
        self.amount_minor < 0
    }

    fn same_currency(self, other: Money) -> Result<(), MoneyError> {
        if self.currency == other.currency {
            Ok(())
        } else {
            Err(MoneyError::CurrencyMismatch {
                left: self.currency.code(),
                right: other.currency.code(),
            })
        }
    }

    pub fn checked_add(self, other: Money) -> Result<Money, MoneyError> {
        self.same_currency(other)?;
        let amount_minor = self
            .amount_minor
            .checked_add(other.amount_minor)
            .ok_or(MoneyError::Overflow)?;
        Ok(Money::new(amount_minor, self.currency))
    }

    pub fn checked_sub(self, other: Money) -> Result<Money, MoneyError> {
        self.same_currency(other)?;
        let amount_minor = self
            .amount_minor
            .checked_sub(other.amount_minor)
            .ok_or(MoneyError::Overflow)?;
        Ok(Money::new(amount_minor, self.currency))
    }

    pub fn checked_neg(self) -> Result<Money, MoneyError> {
        let amount_minor = self
            .amount_minor
            .checked_neg()
            .ok_or(MoneyError::Overflow)?;
        Ok(Money::new(amount_minor, self.currency))
    }

    pub fn checked_mul(self, factor: i64) -> Result<Money, MoneyError> {
        let amount_minor = self
            .amount_minor
            .checked_mul(factor)
            .ok_or(MoneyError::Overflow)?;
        Ok(Money::new(amount_minor, self.currency))
    }

    /// `self × numerator ÷ denominator`, rounded by `mode`. This is how a rate
    /// (2% = 2/100, 0.6% = 6/1000) is applied to an amount; the intermediate
    /// product is exact in 128 bits.
    pub fn multiply_ratio(
        self,
        numerator: i64,
        denominator: i64,
        mode: RoundingMode,
    ) -> Result<Money, MoneyError> {
        let product = i128::from(self.amount_minor) * i128::from(numerator);
        let quotient = divide_rounded(product, i128::from(denominator), mode)?;
        let amount_minor = i64::try_from(quotient).map_err(|_| MoneyError::Overflow)?;
        Ok(Money::new(amount_minor, self.currency))
    }

    /// Sums amounts of one currency; an empty input is zero of `currency`.
    pub fn checked_sum<I>(currency: Currency, amounts: I) -> Result<Money, MoneyError>
    where
        I: IntoIterator<Item = Money>,
    {
        amounts
            .into_iter()
            .try_fold(Money::zero(currency), Money::checked_add)
    }
}

impl fmt::Display for Money {
    /// Formats as a decimal in major units with the currency code:
    /// `12.34 CNY`, `-0.05 USD`, `100 JPY`.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "{} {}",
            decimal::format_major(self.amount_minor, self.currency.minor_unit_exponent()),
            self.currency.code()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cny() -> Currency {
        Currency::CNY
    }

    #[test]
    fn addition_overflow_is_an_error() {
        let max = Money::new(i64::MAX, cny());
        assert_eq!(
            max.checked_add(Money::new(1, cny())),
            Err(MoneyError::Overflow)
        );
        let min = Money::new(i64::MIN, cny());
        assert_eq!(
            min.checked_sub(Money::new(1, cny())),
            Err(MoneyError::Overflow)
        );
        assert_eq!(min.checked_neg(), Err(MoneyError::Overflow));
        assert_eq!(max.checked_mul(2), Err(MoneyError::Overflow));
    }

    #[test]
    fn currencies_do_not_mix() {
        let usd = Currency::from_code("USD").unwrap();
        let error = Money::new(1, cny()).checked_add(Money::new(1, usd));
        assert_eq!(
            error,
            Err(MoneyError::CurrencyMismatch {
                left: "CNY",
                right: "USD"
            })
        );
    }

    #[test]
    fn ratio_rounds_as_told() {
        // 2% of 0.55 CNY is 1.1 fen.
        let amount = Money::new(55, cny());
        let half_up = amount.multiply_ratio(2, 100, RoundingMode::HalfUp).unwrap();
        assert_eq!(half_up.amount_minor(), 1);
        let up = amount.multiply_ratio(2, 100, RoundingMode::Up).unwrap();
        assert_eq!(up.amount_minor(), 2);
        // 0.6% of 6.00 CNY is 3.6 fen.
        let fee = Money::new(600, cny())
            .multiply_ratio(6, 1000, RoundingMode::HalfUp)
            .unwrap();
        assert_eq!(fee.amount_minor(), 4);
    }

    #[test]
    fn display_uses_major_units() {
        assert_eq!(Money::new(1234, cny()).to_string(), "12.34 CNY");
        assert_eq!(Money::new(-5, cny()).to_string(), "-0.05 CNY");
        let jpy = Currency::from_code("JPY").unwrap();
        assert_eq!(Money::new(100, jpy).to_string(), "100 JPY");
    }

    #[test]
    fn sum_of_nothing_is_zero() {
        assert_eq!(Money::checked_sum(cny(), []).unwrap(), Money::zero(cny()));
    }
}
