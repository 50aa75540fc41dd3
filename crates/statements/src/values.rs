//! Field values: amounts, exact decimals for totals, dates and times.

use std::borrow::Cow;

use money::{Currency, Money, RoundingMode};
use time::PrimitiveDateTime;
use time::format_description::BorrowedFormatItem;
use time::macros::format_description;

use crate::error::ErrorKind;

/// `2019-07-25 08:35:41`, as WeChat and Alipay print times.
pub(crate) const DATE_TIME_DASHED: &[BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");

/// Fraction digits kept when totals are summed exactly.
const EXACT_FRACTION_DIGITS: u32 = 6;
/// Integer digits accepted in an exact decimal: keeps every sum in `i128`.
const EXACT_WHOLE_DIGITS_MAX: usize = 18;

/// How amounts are written in a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum AmountUnit {
    /// Decimal in major units: `12.34` yuan.
    #[default]
    Major,
    /// Integer count of minor units: `1234` fen (leading zeros allowed).
    Minor,
}

impl AmountUnit {
    pub fn parse(text: &str) -> Option<AmountUnit> {
        match text {
            "major" => Some(AmountUnit::Major),
            "minor" => Some(AmountUnit::Minor),
            _ => None,
        }
    }
}

/// How a file signs its fees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum FeeSign {
    /// A fee charged is printed positive, a fee given back negative (WeChat).
    #[default]
    ChargedPositive,
    /// A fee charged is printed negative (a deduction), one given back
    /// positive.
    ChargedNegative,
}

impl FeeSign {
    pub fn parse(text: &str) -> Option<FeeSign> {
        match text {
            "charged-positive" => Some(FeeSign::ChargedPositive),
            "charged-negative" => Some(FeeSign::ChargedNegative),
            _ => None,
        }
    }

    /// The fee as [`crate::StatementRecord::fee`] holds it: charged positive.
    pub(crate) fn normalize(self, printed: Money) -> Result<Money, ErrorKind> {
        match self {
            FeeSign::ChargedPositive => Ok(printed),
            FeeSign::ChargedNegative => printed.checked_neg().map_err(|_| ErrorKind::Overflow),
        }
    }
}

fn invalid_amount(text: &str, reason: impl Into<String>) -> ErrorKind {
    ErrorKind::InvalidAmount {
        text: text.to_owned(),
        reason: reason.into(),
    }
}

/// Parses an amount exactly: sub-minor digits must be zeros.
pub(crate) fn parse_amount(
    text: &str,
    currency: Currency,
    unit: AmountUnit,
) -> Result<Money, ErrorKind> {
    match unit {
        AmountUnit::Major => Money::parse_major(text, currency)
            .map_err(|error| invalid_amount(text, error.to_string())),
        AmountUnit::Minor => parse_minor(text, currency),
    }
}

/// Parses a fee, rounding sub-minor digits by `mode`.
pub(crate) fn parse_fee(
    text: &str,
    currency: Currency,
    unit: AmountUnit,
    mode: RoundingMode,
) -> Result<Money, ErrorKind> {
    match unit {
        AmountUnit::Major => Money::parse_major_rounded(text, currency, mode)
            .map_err(|error| invalid_amount(text, error.to_string())),
        AmountUnit::Minor => parse_minor(text, currency),
    }
}

/// An integer count of minor units with an optional sign: `000000001234`.
pub(crate) fn parse_minor(text: &str, currency: Currency) -> Result<Money, ErrorKind> {
    let trimmed = text.trim();
    let (negative, digits) = split_sign(trimmed);
    if digits.is_empty() || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(invalid_amount(text, "not an integer count of minor units"));
    }
    let magnitude: i64 = digits
        .parse()
        .map_err(|_| invalid_amount(text, "number too large"))?;
    let amount_minor = if negative { -magnitude } else { magnitude };
    Ok(Money::new(amount_minor, currency))
}

fn split_sign(text: &str) -> (bool, &str) {
    if let Some(rest) = text.strip_prefix('-') {
        (true, rest)
    } else if let Some(rest) = text.strip_prefix('+') {
        (false, rest)
    } else {
        (false, text)
    }
}

/// An exact decimal scaled by 10^6, for checking printed totals against
/// sums of rows without any rounding (WeChat fees carry 5 decimals).
pub(crate) fn parse_exact(text: &str) -> Result<i128, ErrorKind> {
    let trimmed = text.trim();
    let (negative, unsigned) = split_sign(trimmed);
    let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let all_digits = |part: &str| part.bytes().all(|byte| byte.is_ascii_digit());
    if (whole.is_empty() && fraction.is_empty()) || !all_digits(whole) || !all_digits(fraction) {
        return Err(invalid_amount(text, "not a decimal number"));
    }
    if whole.len() > EXACT_WHOLE_DIGITS_MAX || fraction.len() > EXACT_FRACTION_DIGITS as usize {
        return Err(invalid_amount(text, "too many digits"));
    }
    let whole_value: i128 = if whole.is_empty() {
        0
    } else {
        parse_digits(whole, text)?
    };
    let fraction_value: i128 = if fraction.is_empty() {
        0
    } else {
        parse_digits(fraction, text)?
    };
    let fraction_scale = 10i128.pow(EXACT_FRACTION_DIGITS - fraction.len() as u32);
    let value = whole_value * 10i128.pow(EXACT_FRACTION_DIGITS) + fraction_value * fraction_scale;
    Ok(if negative { -value } else { value })
}

fn parse_digits(digits: &str, text: &str) -> Result<i128, ErrorKind> {
    digits
        .parse()
        .map_err(|_| invalid_amount(text, "not a decimal number"))
}

/// Formats a value of [`parse_exact`] back to a plain decimal.
pub(crate) fn format_exact(value: i128) -> String {
    let scale = 10i128.pow(EXACT_FRACTION_DIGITS);
    let sign = if value < 0 { "-" } else { "" };
    let magnitude = value.unsigned_abs();
    let fraction = format!(
        "{:0width$}",
        magnitude % scale.unsigned_abs(),
        width = EXACT_FRACTION_DIGITS as usize
    );
    let fraction = fraction.trim_end_matches('0');
    let whole = magnitude / scale.unsigned_abs();
    if fraction.is_empty() {
        format!("{sign}{whole}")
    } else {
        format!("{sign}{whole}.{fraction}")
    }
}

/// Full-width colons (`16：33：45`, in WeChat's legacy sample) as ASCII.
pub(crate) fn normalize_colons(text: &str) -> Cow<'_, str> {
    if text.contains('：') {
        Cow::Owned(text.replace('：', ":"))
    } else {
        Cow::Borrowed(text)
    }
}

pub(crate) fn parse_date_time(
    text: &str,
    format: &[BorrowedFormatItem<'_>],
) -> Result<PrimitiveDateTime, ErrorKind> {
    PrimitiveDateTime::parse(normalize_colons(text.trim()).as_ref(), format).map_err(|_| {
        ErrorKind::InvalidDateTime {
            text: text.to_owned(),
        }
    })
}

pub(crate) fn parse_currency(text: &str) -> Result<Currency, ErrorKind> {
    Currency::from_code(text.trim()).map_err(|_| ErrorKind::InvalidCurrency {
        text: text.to_owned(),
    })
}

/// The absolute value of an amount.
pub(crate) fn magnitude(amount: Money) -> Result<Money, ErrorKind> {
    if amount.is_negative() {
        amount.checked_neg().map_err(|_| ErrorKind::Overflow)
    } else {
        Ok(amount)
    }
}

/// Money as a positive amount: a negative one is refused.
pub(crate) fn require_non_negative(amount: Money, text: &str) -> Result<Money, ErrorKind> {
    if amount.is_negative() {
        Err(invalid_amount(
            text,
            "negative where a positive amount is expected",
        ))
    } else {
        Ok(amount)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_decimals_keep_sub_minor_digits() {
        assert_eq!(parse_exact("0.04000").unwrap(), 40_000);
        assert_eq!(parse_exact("-0.02000").unwrap(), -20_000);
        assert_eq!(parse_exact("48").unwrap(), 48_000_000);
        assert_eq!(parse_exact("0.0").unwrap(), 0);
        assert!(parse_exact("1.0000001").is_err());
        assert!(parse_exact("abc").is_err());
        assert_eq!(format_exact(-20_000), "-0.02");
        assert_eq!(format_exact(5_760_000), "5.76");
        assert_eq!(format_exact(48_000_000), "48");
    }

    #[test]
    fn minor_units_parse_with_leading_zeros() {
        let amount = parse_minor("000000001234", Currency::CNY).unwrap();
        assert_eq!(amount.amount_minor(), 1234);
        assert!(parse_minor("12.34", Currency::CNY).is_err());
        assert!(parse_minor("", Currency::CNY).is_err());
    }

    #[test]
    fn full_width_colons_are_tolerated() {
        let parsed = parse_date_time("2014-11-10 16：33：45", DATE_TIME_DASHED).unwrap();
        assert_eq!(parsed.to_string(), "2014-11-10 16:33:45.0");
    }
}
