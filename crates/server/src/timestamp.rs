//! Stored timestamps are microseconds since the Unix epoch; the API speaks
//! RFC 3339.

use crate::error::ApiError;
use ledger::TimestampMicros;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

const NANOS_PER_MICRO: i128 = 1_000;

/// Formats stored microseconds as an RFC 3339 UTC timestamp.
pub fn format(micros: TimestampMicros) -> Result<String, ApiError> {
    let nanos = i128::from(micros) * NANOS_PER_MICRO;
    OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .map_err(|error| ApiError::Internal(format!("timestamp {micros} out of range: {error}")))?
        .format(&Rfc3339)
        .map_err(|error| {
            ApiError::Internal(format!("timestamp {micros} cannot be formatted: {error}"))
        })
}

/// Formats an optional stored timestamp.
pub fn format_optional(micros: Option<TimestampMicros>) -> Result<Option<String>, ApiError> {
    micros.map(format).transpose()
}

/// Parses the RFC 3339 value of `field` to microseconds, rounding down.
pub fn parse(field: &str, text: &str) -> Result<TimestampMicros, ApiError> {
    let parsed = OffsetDateTime::parse(text, &Rfc3339).map_err(|error| {
        ApiError::Malformed(format!("{field} must be an RFC 3339 timestamp: {error}"))
    })?;
    let micros = parsed.unix_timestamp_nanos().div_euclid(NANOS_PER_MICRO);
    TimestampMicros::try_from(micros)
        .map_err(|_| ApiError::Malformed(format!("{field} is out of range")))
}

/// Parses an optional query value, with `default` when it is absent.
pub fn parse_or(
    field: &str,
    text: Option<&str>,
    default: TimestampMicros,
) -> Result<TimestampMicros, ApiError> {
    text.map_or(Ok(default), |text| parse(field, text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_microseconds() {
        let micros = 1_700_000_000_123_456;
        let text = format(micros).unwrap();
        assert_eq!(text, "2023-11-14T22:13:20.123456Z");
        assert_eq!(parse("at", &text).unwrap(), micros);
    }

    #[test]
    fn offsets_and_nanoseconds_are_understood() {
        let micros = parse("at", "2023-11-15T06:13:20.1234569+08:00").unwrap();
        assert_eq!(micros, 1_700_000_000_123_456);
        assert!(matches!(
            parse("at", "yesterday"),
            Err(ApiError::Malformed(_))
        ));
    }
}
