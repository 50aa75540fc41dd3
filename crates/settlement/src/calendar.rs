//! 工作日历 — the business-day calendar, as data.
//!
//! Which days are business days is decided each year by the State Council
//! (国务院办公厅关于部分节假日安排的通知), so it is configuration, not code.
//! The file (`config/calendar.toml`) has one table per year it covers:
//!
//! ```toml
//! [years.2026]
//! # public holidays (法定节假日): quoted dates, or inclusive ranges
//! holidays = ["2026-01-01..2026-01-03", "2026-04-04..2026-04-06"]
//! # make-up working days (调休上班): weekend days that are business days
//! workdays = ["2026-01-04"]
//! ```
//!
//! Both lists are optional (a year with neither is plain Monday–Friday).
//! A day is a business day when it is a Monday to Friday not listed as a
//! holiday, or a Saturday or Sunday listed as a workday. Holidays that fall
//! on a weekend are allowed (a range usually spans one) and change nothing.
//!
//! A file is refused, with an error naming the year and the entry, when: a
//! key is unknown; a date is not `YYYY-MM-DD`; a range is not
//! `YYYY-MM-DD..YYYY-MM-DD` or ends before it starts; a date is listed
//! under another year; a date is both a holiday and a workday; a workday is
//! not a Saturday or Sunday; the file covers no year or more than
//! [`YEARS_MAX`]; a list holds more than [`ENTRIES_PER_YEAR_MAX`] entries.
//! Overlapping holiday ranges are accepted.
//!
//! A date whose year the calendar does not cover is
//! [`SettlementError::OutsideCalendar`], whether asked about directly or
//! reached by walking forward: a settlement that would need next year's
//! calendar waits for it rather than guessing that a weekday is a business
//! day.

use crate::error::{CalendarProblem, SettlementError};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use time::{Date, Month, Weekday};

/// Most years one calendar may cover.
pub const YEARS_MAX: usize = 100;

/// Most entries in one year's `holidays` (or `workdays`) list.
pub const ENTRIES_PER_YEAR_MAX: usize = 366;

/// Most days a walk forward takes: past this many, it has left every year a
/// calendar can cover, so it has already ended with `OutsideCalendar`.
const WALK_DAYS_MAX: usize = YEARS_MAX * 366 + 1;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    years: BTreeMap<String, RawYear>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawYear {
    #[serde(default)]
    holidays: Vec<String>,
    #[serde(default)]
    workdays: Vec<String>,
}

/// Which days of the covered years are business days.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Calendar {
    years: BTreeSet<i32>,
    holidays: BTreeSet<Date>,
    workdays: BTreeSet<Date>,
}

/// The calendar paycore ships with (`config/calendar.toml`).
pub const BUILTIN_CALENDAR: &str = include_str!("../../../config/calendar.toml");

impl Calendar {
    /// The built-in calendar.
    pub fn builtin() -> Result<Calendar, SettlementError> {
        Calendar::from_toml(BUILTIN_CALENDAR)
    }

    /// Parses and checks a calendar file's text (format in the module doc).
    pub fn from_toml(text: &str) -> Result<Calendar, SettlementError> {
        let file: File = toml::from_str(text)
            .map_err(|error| SettlementError::CalendarSyntax(error.to_string()))?;
        if file.years.is_empty() {
            return Err(invalid("", "", CalendarProblem::NoYears));
        }
        if file.years.len() > YEARS_MAX {
            return Err(invalid("", "", CalendarProblem::TooManyYears));
        }
        let mut calendar = Calendar {
            years: BTreeSet::new(),
            holidays: BTreeSet::new(),
            workdays: BTreeSet::new(),
        };
        for (key, raw) in &file.years {
            calendar.add_year(key, raw)?;
        }
        Ok(calendar)
    }

    /// Reads and parses a calendar file. The only I/O of the crate.
    pub fn load(path: &Path) -> Result<Calendar, SettlementError> {
        let text =
            std::fs::read_to_string(path).map_err(|error| SettlementError::CalendarRead {
                path: path.display().to_string(),
                reason: error.to_string(),
            })?;
        Calendar::from_toml(&text)
    }

    /// The years covered, in order.
    pub fn years(&self) -> impl Iterator<Item = i32> + '_ {
        self.years.iter().copied()
    }

    /// Whether `date` is a business day; `OutsideCalendar` when its year is
    /// not covered.
    pub fn is_business_day(&self, date: Date) -> Result<bool, SettlementError> {
        if !self.years.contains(&date.year()) {
            return Err(SettlementError::OutsideCalendar { date });
        }
        let weekend = matches!(date.weekday(), Weekday::Saturday | Weekday::Sunday);
        Ok(if weekend {
            self.workdays.contains(&date)
        } else {
            !self.holidays.contains(&date)
        })
    }

    /// `date` itself when it is a business day, else the first business day
    /// after it.
    pub fn business_day_on_or_after(&self, date: Date) -> Result<Date, SettlementError> {
        let mut current = date;
        for _ in 0..WALK_DAYS_MAX {
            if self.is_business_day(current)? {
                return Ok(current);
            }
            current = next_day(current)?;
        }
        Err(SettlementError::OutsideCalendar { date: current })
    }

    /// The `n`-th business day strictly after `date` (so exactly `n − 1`
    /// business days lie between the two); `n = 0` is
    /// [`Calendar::business_day_on_or_after`]. `date` itself must be in a
    /// covered year, business day or not.
    pub fn add_business_days(&self, date: Date, n: u32) -> Result<Date, SettlementError> {
        if n == 0 {
            return self.business_day_on_or_after(date);
        }
        // The start is checked too: a business date in an uncovered year
        // means the calendar is out of date, even if the walk would only
        // meet covered days.
        self.is_business_day(date)?;
        let mut remaining = n;
        let mut current = date;
        for _ in 0..WALK_DAYS_MAX {
            current = next_day(current)?;
            if self.is_business_day(current)? {
                remaining -= 1;
                if remaining == 0 {
                    return Ok(current);
                }
            }
        }
        Err(SettlementError::OutsideCalendar { date: current })
    }

    fn add_year(&mut self, key: &str, raw: &RawYear) -> Result<(), SettlementError> {
        let year =
            parse_year(key).ok_or_else(|| invalid(key, key, CalendarProblem::MalformedYear))?;
        for list in [&raw.holidays, &raw.workdays] {
            if list.len() > ENTRIES_PER_YEAR_MAX {
                return Err(invalid(key, "", CalendarProblem::TooManyEntries));
            }
        }
        // All of the year's holidays first, so that a workday can be
        // checked against every one of them.
        for entry in &raw.holidays {
            let (start, end) =
                parse_range(entry).map_err(|problem| invalid(key, entry, problem))?;
            if start.year() != year || end.year() != year {
                return Err(invalid(key, entry, CalendarProblem::WrongYear));
            }
            self.insert_holidays(start, end);
        }
        for entry in &raw.workdays {
            let date = parse_date_exactly(entry)
                .ok_or_else(|| invalid(key, entry, CalendarProblem::MalformedDate))?;
            if date.year() != year {
                return Err(invalid(key, entry, CalendarProblem::WrongYear));
            }
            if !matches!(date.weekday(), Weekday::Saturday | Weekday::Sunday) {
                return Err(invalid(key, entry, CalendarProblem::WorkdayNotWeekend));
            }
            if self.holidays.contains(&date) {
                return Err(invalid(key, entry, CalendarProblem::HolidayAndWorkday));
            }
            self.workdays.insert(date);
        }
        self.years.insert(year);
        Ok(())
    }

    /// Inserts `start..=end`, both in one year (so at most 366 days).
    fn insert_holidays(&mut self, start: Date, end: Date) {
        let mut day = start;
        for _ in 0..366 {
            self.holidays.insert(day);
            if day >= end {
                break;
            }
            match day.next_day() {
                Some(next) => day = next,
                None => break,
            }
        }
    }
}

fn invalid(year: &str, entry: &str, problem: CalendarProblem) -> SettlementError {
    SettlementError::CalendarInvalid {
        year: year.to_owned(),
        entry: entry.to_owned(),
        problem,
    }
}

/// The day after `date`; past the last representable date nothing is
/// covered, so that is `OutsideCalendar` too.
fn next_day(date: Date) -> Result<Date, SettlementError> {
    date.next_day()
        .ok_or(SettlementError::OutsideCalendar { date })
}

fn parse_year(text: &str) -> Option<i32> {
    if text.len() != 4 || !text.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    let year: i32 = text.parse().ok()?;
    (year >= 1).then_some(year)
}

/// `YYYY-MM-DD` exactly, or `DATE_INVALID`.
pub fn parse_date(text: &str) -> Result<Date, SettlementError> {
    parse_date_exactly(text).ok_or_else(|| SettlementError::DateInvalid(text.to_owned()))
}

/// `YYYY-MM-DD` exactly: no sign, no spaces, no time.
pub(crate) fn parse_date_exactly(text: &str) -> Option<Date> {
    let bytes = text.as_bytes();
    let shaped = bytes.len() == 10
        && bytes.iter().enumerate().all(|(index, byte)| match index {
            4 | 7 => *byte == b'-',
            _ => byte.is_ascii_digit(),
        });
    if !shaped {
        return None;
    }
    let year: i32 = text.get(0..4)?.parse().ok()?;
    let month: u8 = text.get(5..7)?.parse().ok()?;
    let day: u8 = text.get(8..10)?.parse().ok()?;
    let month = Month::try_from(month).ok()?;
    Date::from_calendar_date(year, month, day).ok()
}

/// A date, or an inclusive range `start..end`, as `(start, end)`.
fn parse_range(text: &str) -> Result<(Date, Date), CalendarProblem> {
    match text.split_once("..") {
        None => {
            let date = parse_date_exactly(text).ok_or(CalendarProblem::MalformedDate)?;
            Ok((date, date))
        }
        Some((start, end)) => {
            let start = parse_date_exactly(start).ok_or(CalendarProblem::MalformedRange)?;
            let end = parse_date_exactly(end).ok_or(CalendarProblem::MalformedRange)?;
            if end < start {
                return Err(CalendarProblem::InvertedRange);
            }
            Ok((start, end))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn parses_dates_strictly() {
        assert_eq!(
            parse_date_exactly("2026-02-28"),
            Some(date!(2026 - 02 - 28))
        );
        for text in [
            "2026-02-29",
            "2026-2-28",
            "2026/02/28",
            "+026-02-28",
            "2026-02-28 ",
            "2026-13-01",
            "2026-00-10",
            "",
        ] {
            assert_eq!(parse_date_exactly(text), None, "{text:?}");
        }
    }

    #[test]
    fn parses_ranges() {
        assert_eq!(
            parse_range("2026-02-15..2026-02-23"),
            Ok((date!(2026 - 02 - 15), date!(2026 - 02 - 23)))
        );
        assert_eq!(
            parse_range("2026-02-15..2026-02-15"),
            Ok((date!(2026 - 02 - 15), date!(2026 - 02 - 15)))
        );
        assert_eq!(
            parse_range("2026-02-23..2026-02-15"),
            Err(CalendarProblem::InvertedRange)
        );
        assert_eq!(
            parse_range("2026-02-15...2026-02-23"),
            Err(CalendarProblem::MalformedRange)
        );
        assert_eq!(
            parse_range("2026-02-15.."),
            Err(CalendarProblem::MalformedRange)
        );
    }
}
