//! Why a calendar, a cycle or a netting was refused.

use money::Currency;
use time::Date;

/// Everything that can go wrong in settlement. Each variant has a stable
/// code ([`SettlementError::code`]) for logs and API answers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettlementError {
    /// The calendar file could not be read.
    #[error("cannot read the calendar {path:?}: {reason}")]
    CalendarRead { path: String, reason: String },
    /// The calendar is not TOML of the expected shape (unknown keys, a
    /// list where a table belongs...).
    #[error("the calendar is not valid TOML of the expected shape: {0}")]
    CalendarSyntax(String),
    /// The calendar is well-formed TOML, but one of its entries is wrong.
    #[error("calendar year {year:?}, entry {entry:?}: {problem}")]
    CalendarInvalid {
        /// The year table the entry is listed under.
        year: String,
        /// The entry as written (a date, a range or the year key itself).
        entry: String,
        problem: CalendarProblem,
    },
    /// The date's year is not in the calendar: whether it is a business
    /// day is unknown, and settlement never guesses.
    #[error("{date} is outside the business-day calendar")]
    OutsideCalendar { date: Date },
    #[error("invalid date {0:?} (expected YYYY-MM-DD)")]
    DateInvalid(String),
    #[error("invalid month {0:?} (expected YYYY-MM)")]
    MonthInvalid(String),
    #[error("the bill could not be written: {0}")]
    BillWrite(String),
    #[error("invalid settlement cycle {text:?}: {reason}")]
    CycleInvalid { text: String, reason: &'static str },
    /// A due date past the last date `time` can represent.
    #[error("{date} plus {days} days is past the last representable date")]
    DateOutOfRange { date: Date, days: u32 },
    /// A sum or count of one settlement line does not fit in 64 bits.
    #[error("the settlement of merchant {merchant_id:?} in {currency} does not fit in 64 bits")]
    Overflow {
        merchant_id: String,
        currency: Currency,
    },
    /// Clearing totals that cannot be right (a negative amount or fee).
    #[error("clearing totals of merchant {merchant_id:?}: {reason}")]
    ClearingInvalid {
        merchant_id: String,
        reason: &'static str,
    },
    /// Clearing totals or batches given to [`crate::daily_summary`] that are
    /// not of its date, or two batches of one merchant and currency.
    #[error("the daily summary cannot be made: {0}")]
    DailySummaryInvalid(String),
    /// A settlement line whose fields contradict each other (its net is
    /// not collections − refunds − fees). Lines built by [`crate::net`]
    /// never are; one changed by hand may be.
    #[error(
        "the settlement line of merchant {merchant_id:?} in {currency} is inconsistent: {reason}"
    )]
    LineInconsistent {
        merchant_id: String,
        currency: Currency,
        reason: &'static str,
    },
}

impl SettlementError {
    /// The stable code of the error.
    pub fn code(&self) -> &'static str {
        match self {
            SettlementError::CalendarRead { .. } => "CALENDAR_READ",
            SettlementError::CalendarSyntax(_) => "CALENDAR_SYNTAX",
            SettlementError::CalendarInvalid { .. } => "CALENDAR_INVALID",
            SettlementError::OutsideCalendar { .. } => "OUTSIDE_CALENDAR",
            SettlementError::DateInvalid(_) => "DATE_INVALID",
            SettlementError::MonthInvalid(_) => "MONTH_INVALID",
            SettlementError::BillWrite(_) => "BILL_WRITE_FAILED",
            SettlementError::CycleInvalid { .. } => "CYCLE_INVALID",
            SettlementError::DateOutOfRange { .. } => "SETTLEMENT_DATE_OUT_OF_RANGE",
            SettlementError::Overflow { .. } => "SETTLEMENT_OVERFLOW",
            SettlementError::ClearingInvalid { .. } => "CLEARING_INVALID",
            SettlementError::LineInconsistent { .. } => "SETTLEMENT_LINE_INCONSISTENT",
            SettlementError::DailySummaryInvalid(_) => "DAILY_SUMMARY_INVALID",
        }
    }
}

/// What is wrong with one calendar entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CalendarProblem {
    #[error("the calendar covers no year")]
    NoYears,
    #[error("at most {max} years", max = crate::calendar::YEARS_MAX)]
    TooManyYears,
    #[error("a year key is four digits, 0001 to 9999")]
    MalformedYear,
    #[error("at most {max} entries per list", max = crate::calendar::ENTRIES_PER_YEAR_MAX)]
    TooManyEntries,
    #[error("not a valid date (expected YYYY-MM-DD)")]
    MalformedDate,
    #[error("not a valid range (expected YYYY-MM-DD..YYYY-MM-DD)")]
    MalformedRange,
    #[error("the range ends before it starts")]
    InvertedRange,
    #[error("the date is not in the year it is listed under")]
    WrongYear,
    #[error("the date is listed both as a holiday and as a make-up workday")]
    HolidayAndWorkday,
    #[error("a make-up workday (调休上班) must be a Saturday or Sunday")]
    WorkdayNotWeekend,
}
