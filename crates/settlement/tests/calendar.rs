//! The business-day calendar: the shipped 2026 file against the State
//! Council's notice, walking forward, and every way a file is refused.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use settlement::{Calendar, CalendarProblem, SettlementError};
use std::path::Path;
use time::macros::date;
use time::{Date, Duration};

fn calendar_2026() -> Calendar {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/calendar.toml");
    Calendar::load(&path).unwrap()
}

fn business(calendar: &Calendar, date: Date) -> bool {
    calendar.is_business_day(date).unwrap()
}

#[test]
fn the_2026_file_loads_and_covers_2026_only() {
    let calendar = calendar_2026();
    assert_eq!(calendar.years().collect::<Vec<_>>(), vec![2026]);
}

#[test]
fn the_2026_file_follows_the_notice() {
    let calendar = calendar_2026();
    // 调休上班 weekend days are business days.
    for workday in [
        date!(2026 - 01 - 04),
        date!(2026 - 02 - 14),
        date!(2026 - 02 - 28),
        date!(2026 - 05 - 09),
        date!(2026 - 09 - 20),
        date!(2026 - 10 - 10),
    ] {
        assert!(business(&calendar, workday), "{workday}");
    }
    // Weekdays inside the holidays are not.
    for holiday in [
        date!(2026 - 01 - 01),
        date!(2026 - 01 - 02),
        date!(2026 - 02 - 16),
        date!(2026 - 02 - 23),
        date!(2026 - 04 - 06),
        date!(2026 - 05 - 05),
        date!(2026 - 06 - 19),
        date!(2026 - 09 - 25),
        date!(2026 - 10 - 01),
        date!(2026 - 10 - 07),
    ] {
        assert!(!business(&calendar, holiday), "{holiday}");
    }
    // The day after each holiday, and plain days, are business days; an
    // ordinary weekend is not.
    assert!(business(&calendar, date!(2026 - 02 - 24)));
    assert!(business(&calendar, date!(2026 - 10 - 08)));
    assert!(business(&calendar, date!(2026 - 10 - 09)));
    assert!(business(&calendar, date!(2026 - 03 - 10)));
    assert!(!business(&calendar, date!(2026 - 03 - 07)));
    assert!(!business(&calendar, date!(2026 - 03 - 08)));
}

#[test]
fn the_2026_file_has_248_business_days() {
    // 261 weekdays − 19 weekday holidays + 6 make-up weekend days; the same
    // as 365 − 104 weekend days − 13 statutory holiday days.
    let calendar = calendar_2026();
    let mut day = date!(2026 - 01 - 01);
    let mut count = 0;
    while day.year() == 2026 {
        count += usize::from(business(&calendar, day));
        day = day.next_day().unwrap();
    }
    assert_eq!(count, 248);
}

#[test]
fn dates_outside_the_covered_years_are_errors() {
    let calendar = calendar_2026();
    for date in [date!(2027 - 01 - 04), date!(2025 - 12 - 31)] {
        let error = calendar.is_business_day(date).unwrap_err();
        assert_eq!(error, SettlementError::OutsideCalendar { date });
        assert_eq!(error.code(), "OUTSIDE_CALENDAR");
    }
}

#[test]
fn adds_business_days_across_holidays() {
    let calendar = calendar_2026();
    // 国庆: Thursday 1 to Wednesday 7 October off.
    assert_eq!(
        calendar.add_business_days(date!(2026 - 09 - 30), 1),
        Ok(date!(2026 - 10 - 08))
    );
    assert_eq!(
        calendar.add_business_days(date!(2026 - 09 - 30), 3),
        Ok(date!(2026 - 10 - 10))
    );
    // 春节: Friday 13 February's next business day is the make-up
    // Saturday 14; then the holiday to the 23rd.
    assert_eq!(
        calendar.add_business_days(date!(2026 - 02 - 13), 1),
        Ok(date!(2026 - 02 - 14))
    );
    assert_eq!(
        calendar.add_business_days(date!(2026 - 02 - 13), 2),
        Ok(date!(2026 - 02 - 24))
    );
    assert_eq!(
        calendar.add_business_days(date!(2026 - 02 - 14), 1),
        Ok(date!(2026 - 02 - 24))
    );
}

#[test]
fn on_or_after_keeps_business_days_and_skips_the_rest() {
    let calendar = calendar_2026();
    assert_eq!(
        calendar.business_day_on_or_after(date!(2026 - 10 - 10)),
        Ok(date!(2026 - 10 - 10))
    );
    assert_eq!(
        calendar.business_day_on_or_after(date!(2026 - 10 - 01)),
        Ok(date!(2026 - 10 - 08))
    );
    assert_eq!(
        calendar.add_business_days(date!(2026 - 10 - 03), 0),
        Ok(date!(2026 - 10 - 08))
    );
}

#[test]
fn walking_past_the_last_year_is_an_error() {
    let calendar = calendar_2026();
    assert_eq!(
        calendar.add_business_days(date!(2026 - 12 - 31), 1),
        Err(SettlementError::OutsideCalendar {
            date: date!(2027 - 01 - 01)
        })
    );
    assert_eq!(
        calendar.business_day_on_or_after(date!(2026 - 12 - 31)),
        Ok(date!(2026 - 12 - 31))
    );
    assert_eq!(
        calendar.add_business_days(date!(2026 - 12 - 30), 1),
        Ok(date!(2026 - 12 - 31))
    );
    // Past the end of the year whatever the count, and the count is not
    // looped over blindly.
    assert!(matches!(
        calendar.add_business_days(date!(2026 - 06 - 01), u32::MAX),
        Err(SettlementError::OutsideCalendar { .. })
    ));
    // A start in an uncovered year is refused even though the next day is
    // covered.
    assert_eq!(
        calendar.add_business_days(date!(2025 - 12 - 31), 1),
        Err(SettlementError::OutsideCalendar {
            date: date!(2025 - 12 - 31)
        })
    );
}

#[test]
fn a_gap_between_years_is_outside_the_calendar() {
    let calendar = Calendar::from_toml("[years.2026]\n[years.2028]\n").unwrap();
    assert_eq!(calendar.years().collect::<Vec<_>>(), vec![2026, 2028]);
    assert_eq!(
        calendar.add_business_days(date!(2026 - 12 - 31), 1),
        Err(SettlementError::OutsideCalendar {
            date: date!(2027 - 01 - 01)
        })
    );
    // A year with neither list is plain Monday to Friday.
    assert_eq!(
        calendar.add_business_days(date!(2028 - 01 - 01), 1),
        Ok(date!(2028 - 01 - 03))
    );
}

#[test]
fn holidays_on_weekends_and_overlapping_ranges_are_accepted() {
    let calendar = Calendar::from_toml(
        r#"
        [years.2026]
        holidays = ["2026-03-07", "2026-03-09..2026-03-11", "2026-03-10..2026-03-12"]
        "#,
    )
    .unwrap();
    assert!(!business(&calendar, date!(2026 - 03 - 07)));
    assert!(business(&calendar, date!(2026 - 03 - 06)));
    for day in 9..=12 {
        let date = Date::from_calendar_date(2026, time::Month::March, day).unwrap();
        assert!(!business(&calendar, date), "{date}");
    }
    assert!(business(&calendar, date!(2026 - 03 - 13)));
    assert_eq!(
        calendar.add_business_days(date!(2026 - 03 - 06), 1),
        Ok(date!(2026 - 03 - 13))
    );
}

/// Refuses `text` with `problem`, naming `entry` in the error and its text.
fn refused(text: &str, entry: &str, problem: CalendarProblem) {
    let error = Calendar::from_toml(text).unwrap_err();
    match &error {
        SettlementError::CalendarInvalid {
            entry: named,
            problem: found,
            ..
        } => {
            assert_eq!(found, &problem, "{text}");
            assert_eq!(named, entry, "{text}");
        }
        other => panic!("{text}: expected {problem:?}, got {other:?}"),
    }
    assert_eq!(error.code(), "CALENDAR_INVALID");
    assert!(error.to_string().contains(entry), "{error}");
}

#[test]
fn refuses_wrong_entries_naming_them() {
    use CalendarProblem::*;
    refused(
        "[years.2026]\nholidays = [\"2027-01-01\"]",
        "2027-01-01",
        WrongYear,
    );
    refused(
        "[years.2026]\nholidays = [\"2025-12-31..2026-01-02\"]",
        "2025-12-31..2026-01-02",
        WrongYear,
    );
    refused(
        "[years.2027]\nworkdays = [\"2026-01-04\"]",
        "2026-01-04",
        WrongYear,
    );
    refused(
        "[years.2026]\nholidays = [\"2026-01-01..2026-01-04\"]\nworkdays = [\"2026-01-04\"]",
        "2026-01-04",
        HolidayAndWorkday,
    );
    refused(
        "[years.2026]\nworkdays = [\"2026-01-05\"]",
        "2026-01-05",
        WorkdayNotWeekend,
    );
    refused(
        "[years.2026]\nholidays = [\"2026-02-30\"]",
        "2026-02-30",
        MalformedDate,
    );
    refused(
        "[years.2026]\nholidays = [\"2026-2-3\"]",
        "2026-2-3",
        MalformedDate,
    );
    refused(
        "[years.2026]\nworkdays = [\"2026-01-03..2026-01-04\"]",
        "2026-01-03..2026-01-04",
        MalformedDate,
    );
    refused(
        "[years.2026]\nholidays = [\"2026-02-15..2026-02-31\"]",
        "2026-02-15..2026-02-31",
        MalformedRange,
    );
    refused(
        "[years.2026]\nholidays = [\"2026-02-15 .. 2026-02-23\"]",
        "2026-02-15 .. 2026-02-23",
        MalformedRange,
    );
    refused(
        "[years.2026]\nholidays = [\"2026-02-23..2026-02-15\"]",
        "2026-02-23..2026-02-15",
        InvertedRange,
    );
    refused("[years.26]", "26", MalformedYear);
    refused("[years.0000]", "0000", MalformedYear);
    refused("years = {}", "", NoYears);
}

#[test]
fn refuses_too_many_years_and_entries() {
    let years: String = (1900..=2000)
        .map(|year| format!("[years.{year}]\n"))
        .collect();
    assert!(matches!(
        Calendar::from_toml(&years),
        Err(SettlementError::CalendarInvalid {
            problem: CalendarProblem::TooManyYears,
            ..
        })
    ));
    let entries: Vec<String> = (0..367).map(|_| "\"2026-01-01\"".to_owned()).collect();
    let text = format!("[years.2026]\nholidays = [{}]", entries.join(", "));
    assert!(matches!(
        Calendar::from_toml(&text),
        Err(SettlementError::CalendarInvalid {
            problem: CalendarProblem::TooManyEntries,
            ..
        })
    ));
}

#[test]
fn refuses_unknown_keys_and_other_shapes() {
    for text in [
        "[years.2026]\nholiday = [\"2026-01-01\"]",
        "[years.2026]\nholidays = []\nnote = \"x\"",
        "country = \"CN\"\n[years.2026]",
        "[years.2026]\nholidays = [2026-01-01]",
        "[years.2026]\nholidays = \"2026-01-01\"",
        "",
        "[years.2026",
    ] {
        let error = Calendar::from_toml(text).unwrap_err();
        assert!(
            matches!(error, SettlementError::CalendarSyntax(_)),
            "{text:?}: {error:?}"
        );
        assert_eq!(error.code(), "CALENDAR_SYNTAX");
    }
}

#[test]
fn a_missing_file_is_a_read_error() {
    let error = Calendar::load(Path::new("/nonexistent/calendar.toml")).unwrap_err();
    assert!(matches!(error, SettlementError::CalendarRead { .. }));
    assert_eq!(error.code(), "CALENDAR_READ");
    assert!(error.to_string().contains("/nonexistent/calendar.toml"));
}

#[test]
fn every_day_of_2026_agrees_with_the_rule() {
    // A second reading of the file: weekends are business days exactly
    // when listed as workdays, weekdays exactly when not in a holiday.
    let calendar = calendar_2026();
    let workdays = [
        date!(2026 - 01 - 04),
        date!(2026 - 02 - 14),
        date!(2026 - 02 - 28),
        date!(2026 - 05 - 09),
        date!(2026 - 09 - 20),
        date!(2026 - 10 - 10),
    ];
    let holidays = [
        (date!(2026 - 01 - 01), date!(2026 - 01 - 03)),
        (date!(2026 - 02 - 15), date!(2026 - 02 - 23)),
        (date!(2026 - 04 - 04), date!(2026 - 04 - 06)),
        (date!(2026 - 05 - 01), date!(2026 - 05 - 05)),
        (date!(2026 - 06 - 19), date!(2026 - 06 - 21)),
        (date!(2026 - 09 - 25), date!(2026 - 09 - 27)),
        (date!(2026 - 10 - 01), date!(2026 - 10 - 07)),
    ];
    let mut day = date!(2026 - 01 - 01);
    while day.year() == 2026 {
        let weekend = day.weekday().number_days_from_monday() >= 5;
        let holiday = holidays
            .iter()
            .any(|(start, end)| (*start..=*end).contains(&day));
        let expected = if weekend {
            workdays.contains(&day)
        } else {
            !holiday
        };
        assert_eq!(business(&calendar, day), expected, "{day}");
        day += Duration::days(1);
    }
}
