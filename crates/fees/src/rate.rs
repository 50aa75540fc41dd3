//! Exact rates: an integer fraction whose denominator is a power of ten,
//! parsed from the text people write and applied in 128-bit integers.

use crate::FeeError;
use money::{RoundingMode, divide_rounded};
use std::fmt;

/// Digits a rate may carry after its decimal point (`0.00385%` has 5).
pub const RATE_FRACTION_DIGITS_MAX: u32 = 8;

/// The largest denominator a rate can have: a fraction with the most digits
/// after the point, in basis points (10⁴ × 10⁸). Every rate's denominator
/// divides it, so tiers' rates can be summed exactly over it.
pub const RATE_DENOMINATOR_MAX: i64 = 1_000_000_000_000;

/// A fee rate `numerator / denominator`, 0 ≤ rate ≤ 1, with a denominator
/// that is a power of ten no larger than [`RATE_DENOMINATOR_MAX`].
///
/// Accepted text forms (surrounding spaces ignored):
///
/// | text | meaning |
/// | --- | --- |
/// | `0.6%` | percent: 6/1000 |
/// | `6‰` | per mille (千分之六): 6/1000 |
/// | `38bp` | basis points: 38/10000 |
/// | `0.0038` | a plain fraction: 38/10000 |
///
/// At most [`RATE_FRACTION_DIGITS_MAX`] digits after the point; no sign, no
/// exponent. Rates above 100% are refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rate {
    numerator: i64,
    denominator: i64,
}

impl Rate {
    /// Parses one of the forms above.
    pub fn parse(text: &str) -> Result<Rate, FeeError> {
        let invalid = |reason: &'static str| FeeError::InvalidRate {
            text: text.to_owned(),
            reason,
        };
        let trimmed = text.trim();
        let (number, unit_denominator) = if let Some(number) = trimmed.strip_suffix('%') {
            (number, 100)
        } else if let Some(number) = trimmed.strip_suffix('‰') {
            (number, 1_000)
        } else if let Some(number) = trimmed.strip_suffix("bp") {
            (number, 10_000)
        } else {
            (trimmed, 1)
        };
        let number = number.trim_end();
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        if whole.is_empty() && fraction.is_empty() {
            return Err(invalid("no digits"));
        }
        let all_digits = |part: &str| part.bytes().all(|byte| byte.is_ascii_digit());
        if !all_digits(whole) || !all_digits(fraction) {
            return Err(invalid(
                "expected a decimal with %, ‰ or bp, or a plain fraction",
            ));
        }
        let fraction_digits =
            u32::try_from(fraction.len()).map_err(|_| invalid("too many fraction digits"))?;
        if fraction_digits > RATE_FRACTION_DIGITS_MAX {
            return Err(invalid("too many fraction digits (at most 8)"));
        }
        // A rate is at most 1, so a whole part longer than 5 digits (99999bp)
        // is too large whatever it says; this also keeps the parse in range.
        if whole.trim_start_matches('0').len() > 5 {
            return Err(invalid("rate above 100%"));
        }
        let digits = format!("{whole}{fraction}");
        let numerator: i64 = if digits.is_empty() {
            0
        } else {
            digits.parse().map_err(|_| invalid("number too large"))?
        };
        let denominator = unit_denominator * 10_i64.pow(fraction_digits);
        if numerator > denominator {
            return Err(invalid("rate above 100%"));
        }
        Ok(Rate {
            numerator,
            denominator,
        })
    }

    /// `numerator / denominator`; the denominator must be a power of ten up
    /// to [`RATE_DENOMINATOR_MAX`] and the rate between 0 and 1.
    pub fn from_fraction(numerator: i64, denominator: i64) -> Result<Rate, FeeError> {
        let text = format!("{numerator}/{denominator}");
        if !is_power_of_ten(denominator) || denominator > RATE_DENOMINATOR_MAX {
            return Err(FeeError::InvalidRate {
                text,
                reason: "the denominator must be a power of ten up to 10^12",
            });
        }
        if numerator < 0 || numerator > denominator {
            return Err(FeeError::InvalidRate {
                text,
                reason: "a rate is between 0 and 100%",
            });
        }
        Ok(Rate {
            numerator,
            denominator,
        })
    }

    pub const fn numerator(self) -> i64 {
        self.numerator
    }

    pub const fn denominator(self) -> i64 {
        self.denominator
    }

    /// The numerator over `denominator`, a multiple of this rate's own
    /// denominator (every rate's denominator divides [`RATE_DENOMINATOR_MAX`]).
    pub(crate) fn numerator_over(self, denominator: i64) -> i128 {
        i128::from(self.numerator) * i128::from(denominator / self.denominator)
    }

    /// `amount_minor × rate`, rounded once by `mode`.
    pub fn apply(self, amount_minor: i64, mode: RoundingMode) -> Result<i64, FeeError> {
        let product = i128::from(amount_minor) * i128::from(self.numerator);
        let rounded = divide_rounded(product, i128::from(self.denominator), mode)
            .map_err(|_| FeeError::Overflow)?;
        i64::try_from(rounded).map_err(|_| FeeError::Overflow)
    }
}

fn is_power_of_ten(mut value: i64) -> bool {
    if value < 1 {
        return false;
    }
    while value % 10 == 0 {
        value /= 10;
    }
    value == 1
}

impl fmt::Display for Rate {
    /// As a percentage with as many digits as it needs: `0.6%`, `0.0038%`.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        // numerator / denominator × 100, with denominator = 10^k, k ≥ 0.
        let exponent = self.denominator.ilog10();
        let percent_exponent = exponent.saturating_sub(2);
        let scaled = if exponent >= 2 {
            self.numerator
        } else {
            self.numerator * 10_i64.pow(2 - exponent)
        };
        if percent_exponent == 0 {
            return write!(formatter, "{scaled}%");
        }
        let scale = 10_i64.pow(percent_exponent);
        let width = percent_exponent as usize;
        let fraction = format!("{:0width$}", scaled % scale);
        let fraction = fraction.trim_end_matches('0');
        if fraction.is_empty() {
            write!(formatter, "{}%", scaled / scale)
        } else {
            write!(formatter, "{}.{fraction}%", scaled / scale)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_parses_to_the_same_fraction() {
        for text in ["0.38%", "3.8‰", "38bp", "0.0038", " 0.380% ", "38.0bp"] {
            let rate = Rate::parse(text).unwrap();
            assert_eq!(
                i128::from(rate.numerator()) * 10_000,
                i128::from(rate.denominator()) * 38,
                "{text}"
            );
        }
        assert_eq!(
            Rate::parse("2%").unwrap(),
            Rate::from_fraction(2, 100).unwrap()
        );
        assert_eq!(Rate::parse("100%").unwrap().to_string(), "100%");
        assert_eq!(Rate::parse("0").unwrap().numerator(), 0);
        assert_eq!(Rate::parse(".5%").unwrap().to_string(), "0.5%");
    }

    #[test]
    fn bad_rates_are_refused() {
        for text in [
            "",
            "%",
            "abc",
            "-1%",
            "1e-3",
            "100.01%",
            "1.5",
            "0.000000001",
            "1,5%",
            "12 %x",
            "10001bp",
            "123456789012345678901234%",
        ] {
            assert!(
                matches!(Rate::parse(text), Err(FeeError::InvalidRate { .. })),
                "{text:?} was accepted"
            );
        }
        assert!(Rate::from_fraction(3, 30).is_err());
        assert!(Rate::from_fraction(11, 10).is_err());
        assert!(Rate::from_fraction(-1, 10).is_err());
    }

    #[test]
    fn rates_apply_exactly_and_round_as_told() {
        let rate = Rate::parse("0.6%").unwrap();
        // 0.6% of 6.00 is 3.6 fen.
        assert_eq!(rate.apply(600, RoundingMode::HalfUp).unwrap(), 4);
        assert_eq!(rate.apply(600, RoundingMode::Down).unwrap(), 3);
        // 0.6% of 2.50 is exactly 1.5 fen: half-up and half-even differ.
        assert_eq!(rate.apply(250, RoundingMode::HalfUp).unwrap(), 2);
        assert_eq!(rate.apply(250, RoundingMode::HalfEven).unwrap(), 2);
        assert_eq!(rate.apply(750, RoundingMode::HalfEven).unwrap(), 4);
        assert_eq!(
            Rate::parse("100%")
                .unwrap()
                .apply(i64::MAX, RoundingMode::HalfUp)
                .unwrap(),
            i64::MAX
        );
    }

    #[test]
    fn display_is_a_percentage() {
        assert_eq!(Rate::parse("0.0038").unwrap().to_string(), "0.38%");
        assert_eq!(Rate::parse("38bp").unwrap().to_string(), "0.38%");
        assert_eq!(Rate::parse("6‰").unwrap().to_string(), "0.6%");
        assert_eq!(Rate::parse("0.00385%").unwrap().to_string(), "0.00385%");
        assert_eq!(Rate::parse("0.5").unwrap().to_string(), "50%");
    }
}
