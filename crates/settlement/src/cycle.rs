//! 结算周期 — settlement cycles: when the entries of a business date become
//! due for settlement.

use crate::calendar::Calendar;
use crate::error::SettlementError;
use serde::Deserialize;
use std::fmt;
use time::{Date, Duration};

/// The largest `n` of a cycle: a year of days.
pub const CYCLE_DAYS_MAX: u16 = 365;

/// A merchant's settlement cycle, written `T+1`, `D+3`, `W+1`, `M+2`.
///
/// [`Cycle::due_date`] gives the day on which the entries of a business
/// date become due:
///
/// - **T+n** (n business days): [`Calendar::add_business_days`] of the
///   business date. T+0 is the business date itself when it is a business
///   day, else the next business day; for n ≥ 1 business days are counted
///   strictly after the date, so the T+1 of a Saturday, a business day or
///   not, is the first business day after it.
/// - **D+n** (n calendar days): the business date plus n days, holidays or
///   not; the calendar is not consulted, so D+n works outside it.
/// - **W+n** (weekly): the period ends on the Sunday of the ISO week
///   (Monday to Sunday) holding the business date; due is the n-th
///   business day after that Sunday (W+0: the Sunday if it is a business
///   day, else the next one).
/// - **M+n** (monthly): the period ends on the last day of the month; due
///   is the n-th business day after it (M+0 likewise).
///
/// Every entry of one week (month) thus shares one due date, and every
/// calendar lookup past the calendar's last year is `OutsideCalendar`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(try_from = "String")]
pub enum Cycle {
    /// T+n: n business days.
    T(u16),
    /// D+n: n calendar days.
    D(u16),
    /// W+n: n business days after the end of the ISO week.
    W(u16),
    /// M+n: n business days after the end of the month.
    M(u16),
}

impl Cycle {
    /// Parses `T+n`, `D+n`, `W+n` or `M+n`: an upper-case letter, `+`, and
    /// `n` in decimal without leading zeros, at most [`CYCLE_DAYS_MAX`].
    pub fn parse(text: &str) -> Result<Cycle, SettlementError> {
        let refuse = |reason| SettlementError::CycleInvalid {
            text: text.to_owned(),
            reason,
        };
        let (letter, digits) = text
            .split_once('+')
            .ok_or_else(|| refuse("expected T+n, D+n, W+n or M+n"))?;
        let shaped = !digits.is_empty()
            && digits.len() <= 3
            && digits.bytes().all(|byte| byte.is_ascii_digit())
            && (digits == "0" || !digits.starts_with('0'));
        if !shaped {
            return Err(refuse(
                "n must be a whole number of days without leading zeros",
            ));
        }
        let n: u16 = digits
            .parse()
            .map_err(|_| refuse("n must be a whole number of days"))?;
        if n > CYCLE_DAYS_MAX {
            return Err(refuse("n must be at most 365"));
        }
        match letter {
            "T" => Ok(Cycle::T(n)),
            "D" => Ok(Cycle::D(n)),
            "W" => Ok(Cycle::W(n)),
            "M" => Ok(Cycle::M(n)),
            _ => Err(refuse("the cycle must be T, D, W or M (upper case)")),
        }
    }

    /// The day on which entries of `business_date` become due (rules in the
    /// type's doc).
    pub fn due_date(
        &self,
        calendar: &Calendar,
        business_date: Date,
    ) -> Result<Date, SettlementError> {
        match *self {
            Cycle::T(n) => calendar.add_business_days(business_date, u32::from(n)),
            Cycle::D(n) => add_days(business_date, u32::from(n)),
            Cycle::W(n) => {
                let to_sunday = 6 - business_date.weekday().number_days_from_monday();
                let week_end = add_days(business_date, u32::from(to_sunday))?;
                calendar.add_business_days(week_end, u32::from(n))
            }
            Cycle::M(n) => {
                let days_in_month = business_date.month().length(business_date.year());
                let month_end = business_date.replace_day(days_in_month).map_err(|_| {
                    SettlementError::DateOutOfRange {
                        date: business_date,
                        days: 0,
                    }
                })?;
                calendar.add_business_days(month_end, u32::from(n))
            }
        }
    }
}

fn add_days(date: Date, days: u32) -> Result<Date, SettlementError> {
    date.checked_add(Duration::days(i64::from(days)))
        .ok_or(SettlementError::DateOutOfRange { date, days })
}

impl fmt::Display for Cycle {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (letter, n) = match *self {
            Cycle::T(n) => ('T', n),
            Cycle::D(n) => ('D', n),
            Cycle::W(n) => ('W', n),
            Cycle::M(n) => ('M', n),
        };
        write!(formatter, "{letter}+{n}")
    }
}

impl std::str::FromStr for Cycle {
    type Err = SettlementError;

    fn from_str(text: &str) -> Result<Cycle, SettlementError> {
        Cycle::parse(text)
    }
}

impl TryFrom<String> for Cycle {
    type Error = SettlementError;

    fn try_from(text: String) -> Result<Cycle, SettlementError> {
        Cycle::parse(&text)
    }
}
