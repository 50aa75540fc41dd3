//! Settlement cycles: parsing, and due dates at the edges of the 2026
//! calendar (holidays, 调休 Saturdays, week, month and year ends).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use settlement::{Calendar, Cycle, SettlementError};
use std::path::Path;
use time::Date;
use time::macros::date;

fn calendar_2026() -> Calendar {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/calendar.toml");
    Calendar::load(&path).unwrap()
}

fn due(cycle: &str, business_date: Date) -> Result<Date, SettlementError> {
    Cycle::parse(cycle)
        .unwrap()
        .due_date(&calendar_2026(), business_date)
}

#[test]
fn parses_and_displays_the_same_text() {
    for (text, cycle) in [
        ("T+0", Cycle::T(0)),
        ("T+1", Cycle::T(1)),
        ("D+3", Cycle::D(3)),
        ("W+1", Cycle::W(1)),
        ("M+2", Cycle::M(2)),
        ("T+365", Cycle::T(365)),
    ] {
        assert_eq!(Cycle::parse(text), Ok(cycle));
        assert_eq!(text.parse::<Cycle>(), Ok(cycle));
        assert_eq!(cycle.to_string(), text);
    }
}

#[test]
fn refuses_anything_else() {
    for text in [
        "", "T", "T+", "T1", "t+1", "T-1", "T+-1", "T++1", "T+01", "T+366", "T+1000", "T+1 ",
        " T+1", "X+1", "TD+1", "T+1.5", "T+one", "+1",
    ] {
        let error = Cycle::parse(text).unwrap_err();
        assert!(
            matches!(&error, SettlementError::CycleInvalid { text: named, .. } if named == text),
            "{text:?}: {error:?}"
        );
        assert_eq!(error.code(), "CYCLE_INVALID");
    }
}

#[test]
fn deserializes_from_a_string() {
    #[derive(serde::Deserialize)]
    struct Merchant {
        cycle: Cycle,
    }
    let merchant: Merchant = toml::from_str("cycle = \"W+2\"").unwrap();
    assert_eq!(merchant.cycle, Cycle::W(2));
    let error = toml::from_str::<Merchant>("cycle = \"T+366\"")
        .err()
        .unwrap()
        .to_string();
    assert!(error.contains("T+366"), "{error}");
    assert!(toml::from_str::<Merchant>("cycle = 1").is_err());
}

#[test]
fn t_counts_business_days() {
    // T+0: the date itself when a business day, else the next one.
    assert_eq!(due("T+0", date!(2026 - 09 - 30)), Ok(date!(2026 - 09 - 30)));
    assert_eq!(due("T+0", date!(2026 - 10 - 03)), Ok(date!(2026 - 10 - 08)));
    assert_eq!(due("T+0", date!(2026 - 02 - 14)), Ok(date!(2026 - 02 - 14)));
    // T+1 over 国庆 and 春节.
    assert_eq!(due("T+1", date!(2026 - 09 - 30)), Ok(date!(2026 - 10 - 08)));
    assert_eq!(due("T+1", date!(2026 - 02 - 13)), Ok(date!(2026 - 02 - 14)));
    assert_eq!(due("T+1", date!(2026 - 02 - 14)), Ok(date!(2026 - 02 - 24)));
    // A plain Saturday's T+1 is Monday, as is Friday's; the make-up
    // Saturday 28 February makes Friday 27's T+1 that Saturday.
    assert_eq!(due("T+1", date!(2026 - 03 - 07)), Ok(date!(2026 - 03 - 09)));
    assert_eq!(due("T+1", date!(2026 - 03 - 06)), Ok(date!(2026 - 03 - 09)));
    assert_eq!(due("T+1", date!(2026 - 02 - 27)), Ok(date!(2026 - 02 - 28)));
    assert_eq!(due("T+2", date!(2026 - 02 - 27)), Ok(date!(2026 - 03 - 02)));
    // 劳动节 1–5 May; Saturday 9 May is a working day.
    assert_eq!(due("T+1", date!(2026 - 04 - 30)), Ok(date!(2026 - 05 - 06)));
    assert_eq!(due("T+4", date!(2026 - 04 - 30)), Ok(date!(2026 - 05 - 09)));
}

#[test]
fn t_at_year_end_needs_next_years_calendar() {
    assert_eq!(due("T+0", date!(2026 - 12 - 31)), Ok(date!(2026 - 12 - 31)));
    assert_eq!(
        due("T+1", date!(2026 - 12 - 31)),
        Err(SettlementError::OutsideCalendar {
            date: date!(2027 - 01 - 01)
        })
    );
    assert_eq!(
        due("T+1", date!(2027 - 01 - 04)),
        Err(SettlementError::OutsideCalendar {
            date: date!(2027 - 01 - 04)
        })
    );
}

#[test]
fn d_counts_calendar_days_without_the_calendar() {
    assert_eq!(due("D+0", date!(2026 - 10 - 03)), Ok(date!(2026 - 10 - 03)));
    assert_eq!(due("D+3", date!(2026 - 01 - 30)), Ok(date!(2026 - 02 - 02)));
    assert_eq!(due("D+1", date!(2026 - 02 - 28)), Ok(date!(2026 - 03 - 01)));
    assert_eq!(due("D+2", date!(2026 - 09 - 30)), Ok(date!(2026 - 10 - 02)));
    // Across the year end and outside the calendar alike.
    assert_eq!(due("D+1", date!(2026 - 12 - 31)), Ok(date!(2027 - 01 - 01)));
    assert_eq!(
        due("D+365", date!(2030 - 06 - 01)),
        Ok(date!(2031 - 06 - 01))
    );
    assert_eq!(
        due("D+1", Date::MAX),
        Err(SettlementError::DateOutOfRange {
            date: Date::MAX,
            days: 1
        })
    );
}

#[test]
fn w_counts_from_the_weeks_sunday() {
    // Week of Monday 21 September: Sunday 27 is 中秋, so W+0 and W+1 are
    // both Monday 28.
    for day in 21..=27 {
        let date = Date::from_calendar_date(2026, time::Month::September, day).unwrap();
        assert_eq!(due("W+0", date), Ok(date!(2026 - 09 - 28)), "{date}");
        assert_eq!(due("W+1", date), Ok(date!(2026 - 09 - 28)), "{date}");
        assert_eq!(due("W+2", date), Ok(date!(2026 - 09 - 29)), "{date}");
    }
    // Week ending on the make-up Sunday 20 September: W+0 is that Sunday.
    assert_eq!(due("W+0", date!(2026 - 09 - 14)), Ok(date!(2026 - 09 - 20)));
    assert_eq!(due("W+0", date!(2026 - 09 - 20)), Ok(date!(2026 - 09 - 20)));
    assert_eq!(due("W+1", date!(2026 - 09 - 20)), Ok(date!(2026 - 09 - 21)));
    // Week ending Sunday 4 October: 5–7 October are holidays.
    assert_eq!(due("W+1", date!(2026 - 09 - 28)), Ok(date!(2026 - 10 - 08)));
    // 1 January 2026 is in the ISO week ending Sunday 4 January, a make-up
    // working day.
    assert_eq!(due("W+0", date!(2026 - 01 - 01)), Ok(date!(2026 - 01 - 04)));
    assert_eq!(due("W+1", date!(2026 - 01 - 01)), Ok(date!(2026 - 01 - 05)));
    // The last week of 2026 ends on Sunday 3 January 2027.
    assert_eq!(
        due("W+1", date!(2026 - 12 - 28)),
        Err(SettlementError::OutsideCalendar {
            date: date!(2027 - 01 - 03)
        })
    );
}

#[test]
fn m_counts_from_the_months_last_day() {
    // 31 January is a Saturday.
    assert_eq!(due("M+0", date!(2026 - 01 - 01)), Ok(date!(2026 - 02 - 02)));
    assert_eq!(due("M+1", date!(2026 - 01 - 15)), Ok(date!(2026 - 02 - 02)));
    assert_eq!(due("M+1", date!(2026 - 01 - 31)), Ok(date!(2026 - 02 - 02)));
    // 28 February is a make-up Saturday.
    assert_eq!(due("M+0", date!(2026 - 02 - 10)), Ok(date!(2026 - 02 - 28)));
    assert_eq!(due("M+1", date!(2026 - 02 - 10)), Ok(date!(2026 - 03 - 02)));
    // 30 April, Thursday, then 劳动节.
    assert_eq!(due("M+1", date!(2026 - 04 - 01)), Ok(date!(2026 - 05 - 06)));
    // 30 September, Wednesday, then 国庆.
    assert_eq!(due("M+0", date!(2026 - 09 - 30)), Ok(date!(2026 - 09 - 30)));
    assert_eq!(due("M+1", date!(2026 - 09 - 01)), Ok(date!(2026 - 10 - 08)));
    assert_eq!(due("M+2", date!(2026 - 09 - 01)), Ok(date!(2026 - 10 - 09)));
    // December's are in 2027.
    assert_eq!(due("M+0", date!(2026 - 12 - 01)), Ok(date!(2026 - 12 - 31)));
    assert_eq!(
        due("M+1", date!(2026 - 12 - 01)),
        Err(SettlementError::OutsideCalendar {
            date: date!(2027 - 01 - 01)
        })
    );
}
