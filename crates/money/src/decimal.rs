//! Decimal text in major units ("12.34") to and from minor units.

use crate::{Currency, Money, MoneyError, RoundingMode, divide_rounded};

/// Formats minor units as a major-unit decimal with exactly `exponent`
/// fraction digits.
pub(crate) fn format_major(amount_minor: i64, exponent: u32) -> String {
    let sign = if amount_minor < 0 { "-" } else { "" };
    let magnitude = amount_minor.unsigned_abs();
    if exponent == 0 {
        return format!("{sign}{magnitude}");
    }
    let scale = 10u64.pow(exponent);
    let width = exponent as usize;
    format!("{sign}{}.{:0width$}", magnitude / scale, magnitude % scale)
}

/// Digits a decimal may carry after the point, whatever the currency.
const FRACTION_DIGITS_MAX: usize = 18;

impl Money {
    /// Parses a major-unit decimal such as `12.34`, `-0.5` or `6.00000`.
    ///
    /// Digits beyond the currency's minor unit are accepted only if they are
    /// zeros; use [`Money::parse_major_rounded`] to round them explicitly.
    pub fn parse_major(text: &str, currency: Currency) -> Result<Money, MoneyError> {
        parse(text, currency, None)
    }

    /// Parses a major-unit decimal, rounding any digits beyond the currency's
    /// minor unit by `mode` (statement files carry fees to 5 decimals).
    pub fn parse_major_rounded(
        text: &str,
        currency: Currency,
        mode: RoundingMode,
    ) -> Result<Money, MoneyError> {
        parse(text, currency, Some(mode))
    }

    /// The amount as a major-unit decimal without the currency: `12.34`.
    pub fn format_major(self) -> String {
        format_major(self.amount_minor(), self.currency().minor_unit_exponent())
    }
}

fn invalid(text: &str, reason: &'static str) -> MoneyError {
    MoneyError::InvalidDecimal {
        text: text.to_owned(),
        reason,
    }
}

fn parse(text: &str, currency: Currency, mode: Option<RoundingMode>) -> Result<Money, MoneyError> {
    let trimmed = text.trim();
    let (negative, unsigned) = match trimmed.as_bytes().first() {
        Some(b'-') => (true, &trimmed[1..]),
        Some(b'+') => (false, &trimmed[1..]),
        _ => (false, trimmed),
    };
    let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    if whole.is_empty() && fraction.is_empty() {
        return Err(invalid(text, "no digits"));
    }
    let all_digits = |part: &str| part.bytes().all(|byte| byte.is_ascii_digit());
    if !all_digits(whole) || !all_digits(fraction) {
        return Err(invalid(text, "not a decimal number"));
    }
    if fraction.len() > FRACTION_DIGITS_MAX {
        return Err(invalid(text, "too many fraction digits"));
    }
    let exponent = currency.minor_unit_exponent() as usize;
    let digits = format!("{whole}{fraction}");
    let value: i128 = if digits.is_empty() {
        0
    } else {
        digits
            .parse()
            .map_err(|_| invalid(text, "number too large"))?
    };
    let signed = if negative { -value } else { value };
    let amount_minor = if fraction.len() <= exponent {
        let scale = 10i128.pow((exponent - fraction.len()) as u32);
        signed.checked_mul(scale).ok_or(MoneyError::Overflow)?
    } else {
        let scale = 10i128.pow((fraction.len() - exponent) as u32);
        match mode {
            Some(mode) => divide_rounded(signed, scale, mode)?,
            None if signed % scale == 0 => signed / scale,
            None => return Err(invalid(text, "more fraction digits than the currency has")),
        }
    };
    let amount_minor = i64::try_from(amount_minor).map_err(|_| MoneyError::Overflow)?;
    Ok(Money::new(amount_minor, currency))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_statement_style_amounts() {
        let cny = Currency::CNY;
        assert_eq!(Money::parse_major("6.00", cny).unwrap().amount_minor(), 600);
        assert_eq!(Money::parse_major("-0.01", cny).unwrap().amount_minor(), -1);
        assert_eq!(
            Money::parse_major("0.04000", cny).unwrap().amount_minor(),
            4
        );
        assert_eq!(Money::parse_major("12", cny).unwrap().amount_minor(), 1200);
        assert_eq!(Money::parse_major(".5", cny).unwrap().amount_minor(), 50);
    }

    #[test]
    fn sub_minor_digits_need_an_explicit_rounding() {
        let cny = Currency::CNY;
        assert!(Money::parse_major("0.00600", cny).is_err());
        let rounded = Money::parse_major_rounded("0.00600", cny, RoundingMode::HalfUp).unwrap();
        assert_eq!(rounded.amount_minor(), 1);
        let truncated = Money::parse_major_rounded("0.00600", cny, RoundingMode::Down).unwrap();
        assert_eq!(truncated.amount_minor(), 0);
    }

    #[test]
    fn rejects_garbage() {
        for text in [
            "",
            "-",
            "1.2.3",
            "1e5",
            "12,34",
            "abc",
            "99999999999999999999",
        ] {
            assert!(Money::parse_major(text, Currency::CNY).is_err(), "{text:?}");
        }
    }

    proptest! {
        #[test]
        fn format_then_parse_is_identity(amount_minor in any::<i64>()) {
            for code in ["CNY", "JPY", "KWD"] {
                let currency = Currency::from_code(code).unwrap();
                let money = Money::new(amount_minor, currency);
                prop_assert_eq!(Money::parse_major(&money.format_major(), currency).unwrap(), money);
            }
        }
    }
}
