//! Business days as whole days since 1970-01-01, and their written forms.

/// The Julian day number of 1970-01-01.
const UNIX_EPOCH_JULIAN_DAY: i32 = 2_440_588;

/// Parses `YYYY-MM-DD` or `YYYYMMDD`.
pub fn parse_day(text: &str) -> Option<i32> {
    let digits: String = text.chars().filter(|character| *character != '-').collect();
    if digits.len() != 8 || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    let year: i32 = digits[0..4].parse().ok()?;
    let month: u8 = digits[4..6].parse().ok()?;
    let day: u8 = digits[6..8].parse().ok()?;
    let month = time::Month::try_from(month).ok()?;
    let date = time::Date::from_calendar_date(year, month, day).ok()?;
    Some(day_of(date))
}

/// A date as days since 1970-01-01.
pub fn day_of(date: time::Date) -> i32 {
    date.to_julian_day() - UNIX_EPOCH_JULIAN_DAY
}

fn date(day: i32) -> Option<time::Date> {
    time::Date::from_julian_day(day.checked_add(UNIX_EPOCH_JULIAN_DAY)?).ok()
}

/// `YYYY-MM-DD`.
pub fn format_day(day: i32) -> String {
    date(day).map_or_else(
        || format!("day {day}"),
        |date| {
            format!(
                "{:04}-{:02}-{:02}",
                date.year(),
                u8::from(date.month()),
                date.day()
            )
        },
    )
}

/// `YYYYMMDD`, as channels write it.
pub fn format_day_compact(day: i32) -> String {
    format_day(day).replace('-', "")
}
