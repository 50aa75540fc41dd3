use crate::MoneyError;
use std::fmt;

/// An ISO 4217 currency that has a minor unit (CNY, USD, JPY...).
///
/// Funds and metals without a minor unit (XAU, XDR) are rejected when parsed,
/// so every `Currency` can hold money.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency(iso_currency::Currency);

impl Currency {
    /// Renminbi, the default currency of the examples.
    pub const CNY: Currency = Currency(iso_currency::Currency::CNY);
    pub const USD: Currency = Currency(iso_currency::Currency::USD);

    /// Parses an upper-case ISO 4217 alphabetic code.
    pub fn from_code(code: &str) -> Result<Self, MoneyError> {
        let currency = iso_currency::Currency::from_code(code)
            .ok_or_else(|| MoneyError::UnknownCurrency(code.to_owned()))?;
        match currency.exponent() {
            Some(_) => Ok(Currency(currency)),
            None => Err(MoneyError::CurrencyWithoutMinorUnit(currency.code())),
        }
    }

    pub fn code(self) -> &'static str {
        self.0.code()
    }

    /// Digits after the decimal point in major units: 2 for CNY, 0 for JPY,
    /// 3 for KWD.
    pub fn minor_unit_exponent(self) -> u32 {
        // Construction guarantees an exponent; 2 is never reached.
        self.0.exponent().map_or(2, u32::from)
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.code())
    }
}

impl std::str::FromStr for Currency {
    type Err = MoneyError;

    fn from_str(code: &str) -> Result<Self, Self::Err> {
        Currency::from_code(code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_known_codes_with_their_exponent() {
        assert_eq!(Currency::from_code("CNY").unwrap().minor_unit_exponent(), 2);
        assert_eq!(Currency::from_code("JPY").unwrap().minor_unit_exponent(), 0);
        assert_eq!(Currency::from_code("KWD").unwrap().minor_unit_exponent(), 3);
    }

    #[test]
    fn rejects_unknown_and_unitless_codes() {
        assert!(matches!(
            Currency::from_code("XYZ"),
            Err(MoneyError::UnknownCurrency(_))
        ));
        assert!(matches!(
            Currency::from_code("cny"),
            Err(MoneyError::UnknownCurrency(_))
        ));
        assert_eq!(
            Currency::from_code("XAU"),
            Err(MoneyError::CurrencyWithoutMinorUnit("XAU"))
        );
    }
}
