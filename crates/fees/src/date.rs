//! Business dates and the periods cumulative tiers count over. The crate
//! never reads the clock: the caller says which business day a transaction
//! belongs to.

use crate::FeeError;
use std::fmt;

/// A calendar date (proleptic Gregorian), years 1 to 9999.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BusinessDate {
    year: u16,
    month: u8,
    day: u8,
}

impl BusinessDate {
    pub fn new(year: u16, month: u8, day: u8) -> Result<BusinessDate, FeeError> {
        let valid = (1..=9999).contains(&year)
            && (1..=12).contains(&month)
            && day >= 1
            && day <= days_in_month(year, month);
        if valid {
            Ok(BusinessDate { year, month, day })
        } else {
            Err(FeeError::InvalidDate(format!(
                "{year:04}-{month:02}-{day:02}"
            )))
        }
    }

    /// Parses `YYYY-MM-DD` exactly.
    pub fn parse(text: &str) -> Result<BusinessDate, FeeError> {
        let invalid = || FeeError::InvalidDate(text.to_owned());
        let bytes = text.as_bytes();
        let shaped = bytes.len() == 10
            && bytes[4] == b'-'
            && bytes[7] == b'-'
            && bytes
                .iter()
                .enumerate()
                .all(|(index, byte)| index == 4 || index == 7 || byte.is_ascii_digit());
        if !shaped {
            return Err(invalid());
        }
        let year = text[0..4].parse().map_err(|_| invalid())?;
        let month = text[5..7].parse().map_err(|_| invalid())?;
        let day = text[8..10].parse().map_err(|_| invalid())?;
        BusinessDate::new(year, month, day).map_err(|_| invalid())
    }

    /// The date `days` after 1970-01-01 (negative: before it). Callers that
    /// hold a timestamp shift it to their business time zone first.
    pub fn from_days_since_epoch(days: i64) -> Result<BusinessDate, FeeError> {
        // Howard Hinnant's civil_from_days, on 400-year eras.
        let shifted = days
            .checked_add(719_468)
            .ok_or_else(|| FeeError::InvalidDate(format!("day {days}")))?;
        let era = shifted.div_euclid(146_097);
        let day_of_era = shifted.rem_euclid(146_097);
        let year_of_era =
            (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
        let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
        let month_index = (5 * day_of_year + 2) / 153;
        let day = day_of_year - (153 * month_index + 2) / 5 + 1;
        let month = if month_index < 10 {
            month_index + 3
        } else {
            month_index - 9
        };
        let year = year_of_era + era * 400 + i64::from(month <= 2);
        let invalid = || FeeError::InvalidDate(format!("day {days}"));
        BusinessDate::new(
            u16::try_from(year).map_err(|_| invalid())?,
            u8::try_from(month).map_err(|_| invalid())?,
            u8::try_from(day).map_err(|_| invalid())?,
        )
        .map_err(|_| invalid())
    }

    pub const fn year(self) -> u16 {
        self.year
    }

    pub const fn month(self) -> u8 {
        self.month
    }

    pub const fn day(self) -> u8 {
        self.day
    }
}

fn days_in_month(year: u16, month: u8) -> u8 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => {
            29
        }
        2 => 28,
        _ => 0,
    }
}

impl fmt::Display for BusinessDate {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "{:04}-{:02}-{:02}",
            self.year, self.month, self.day
        )
    }
}

/// The period a cumulative tier counts over; a new period starts from zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Period {
    /// One business day.
    Day,
    /// The calendar month, to date (月累计).
    Month,
    /// The calendar year, to date.
    Year,
}

impl Period {
    pub const ALL: [Period; 3] = [Period::Day, Period::Month, Period::Year];

    pub fn as_str(self) -> &'static str {
        match self {
            Period::Day => "day",
            Period::Month => "month",
            Period::Year => "year",
        }
    }

    pub fn parse(text: &str) -> Option<Period> {
        Period::ALL
            .into_iter()
            .find(|period| period.as_str() == text)
    }

    /// The period `date` falls in.
    pub fn key(self, date: BusinessDate) -> PeriodKey {
        let (month, day) = match self {
            Period::Day => (date.month, date.day),
            Period::Month => (date.month, 0),
            Period::Year => (0, 0),
        };
        PeriodKey {
            period: self,
            year: date.year,
            month,
            day,
        }
    }
}

/// One period: its text is `2025-03-15` (day), `2025-03` (month) or `2025`
/// (year), which is how counters are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PeriodKey {
    period: Period,
    year: u16,
    month: u8,
    day: u8,
}

impl PeriodKey {
    pub const fn period(self) -> Period {
        self.period
    }
}

impl fmt::Display for PeriodKey {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.period {
            Period::Day => write!(
                formatter,
                "{:04}-{:02}-{:02}",
                self.year, self.month, self.day
            ),
            Period::Month => write!(formatter, "{:04}-{:02}", self.year, self.month),
            Period::Year => write!(formatter, "{:04}", self.year),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_parse_strictly() {
        let date = BusinessDate::parse("2024-02-29").unwrap();
        assert_eq!((date.year(), date.month(), date.day()), (2024, 2, 29));
        assert_eq!(date.to_string(), "2024-02-29");
        for text in [
            "2023-02-29",
            "2024-13-01",
            "2024-00-10",
            "2024-04-31",
            "0000-01-01",
            "2024-1-01",
            "2024/01/01",
            "2024-01-01 ",
            "+024-01-01",
        ] {
            assert!(BusinessDate::parse(text).is_err(), "{text}");
        }
        assert!(BusinessDate::parse("2000-02-29").is_ok());
        assert!(BusinessDate::parse("1900-02-29").is_err());
    }

    #[test]
    fn days_since_epoch_are_civil_dates() {
        let cases = [
            (0, "1970-01-01"),
            (-1, "1969-12-31"),
            (19_782, "2024-02-29"),
            (20_089, "2025-01-01"),
            (11_016, "2000-02-29"),
        ];
        for (days, text) in cases {
            assert_eq!(
                BusinessDate::from_days_since_epoch(days)
                    .unwrap()
                    .to_string(),
                text
            );
        }
        assert!(BusinessDate::from_days_since_epoch(i64::MAX).is_err());
        assert!(BusinessDate::from_days_since_epoch(3_000_000).is_err());
    }

    #[test]
    fn period_keys_name_the_period() {
        let date = BusinessDate::parse("2025-03-15").unwrap();
        assert_eq!(Period::Day.key(date).to_string(), "2025-03-15");
        assert_eq!(Period::Month.key(date).to_string(), "2025-03");
        assert_eq!(Period::Year.key(date).to_string(), "2025");
        let later = BusinessDate::parse("2025-03-31").unwrap();
        assert_eq!(Period::Month.key(date), Period::Month.key(later));
        assert_ne!(Period::Day.key(date), Period::Day.key(later));
        let next_month = BusinessDate::parse("2025-04-01").unwrap();
        assert_ne!(Period::Month.key(date), Period::Month.key(next_month));
        assert_eq!(Period::Year.key(date), Period::Year.key(next_month));
    }
}
