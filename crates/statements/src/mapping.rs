//! Mapping files: a bank's CSV or TSV layout described in TOML, so that a
//! user adds a bank without code. `config/statements/*.toml` are examples;
//! every key is documented there.
//!
//! The TOML is read into dedicated config structs (serde) and validated
//! into a [`Mapping`] once, before any statement line is read: an unknown
//! key, encoding, value name or time format is an error naming the mapping
//! file.

use std::collections::BTreeMap;
use std::path::Path;

use money::{Currency, RoundingMode};
use serde::Deserialize;
use time::format_description::OwnedFormatItem;

use crate::error::{ErrorKind, StatementError};
use crate::input::TextEncoding;
use crate::record::{RecordKind, RecordStatus};
use crate::values::{AmountUnit, FeeSign};

/// Largest mapping file read.
pub const MAPPING_BYTES_MAX: u64 = 64 * 1024;
/// Most preamble lines a mapping may skip.
pub const SKIP_LINES_MAX: usize = 1_000;
/// Most trailing records a mapping may drop (they are held back while
/// reading, so this bounds the look-ahead).
pub const TRAILER_LINES_MAX: usize = 16;
/// Most entries in any list or value map of a mapping.
pub const MAPPING_ENTRIES_MAX: usize = 64;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MappingConfig {
    name: String,
    #[serde(default = "default_encoding")]
    encoding: String,
    #[serde(default = "default_delimiter")]
    delimiter: String,
    #[serde(default = "default_true")]
    header: bool,
    #[serde(default)]
    skip_lines: usize,
    #[serde(default)]
    comment_prefixes: Vec<String>,
    #[serde(default)]
    trailer_prefixes: Vec<String>,
    #[serde(default)]
    trailer_lines: usize,
    #[serde(default)]
    strip_characters: String,
    currency: String,
    date_time_format: String,
    business_date_format: Option<String>,
    #[serde(default = "default_amount_unit")]
    amount_unit: String,
    #[serde(default = "default_refund_sign")]
    refund_sign: String,
    #[serde(default = "default_fee_sign")]
    fee_sign: String,
    #[serde(default = "default_fee_rounding")]
    fee_rounding: String,
    default_status: Option<String>,
    columns: ColumnsConfig,
    #[serde(default)]
    kinds: BTreeMap<String, String>,
    #[serde(default)]
    statuses: BTreeMap<String, String>,
}

fn default_encoding() -> String {
    "utf-8".into()
}
fn default_delimiter() -> String {
    ",".into()
}
fn default_true() -> bool {
    true
}
fn default_amount_unit() -> String {
    "major".into()
}
fn default_refund_sign() -> String {
    "positive".into()
}
fn default_fee_sign() -> String {
    "charged-positive".into()
}
fn default_fee_rounding() -> String {
    "half-up".into()
}

/// A column by header name (with `header = true`) or by 1-based position.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub(crate) enum ColumnRef {
    Name(String),
    Position(usize),
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum ColumnList {
    One(ColumnRef),
    Many(Vec<ColumnRef>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ColumnsConfig {
    merchant_order_id: ColumnRef,
    channel_transaction_id: ColumnRef,
    merchant_refund_id: Option<ColumnRef>,
    channel_refund_id: Option<ColumnRef>,
    kind: Option<ColumnRef>,
    status: Option<ColumnRef>,
    amount: ColumnRef,
    requested_amount: Option<ColumnRef>,
    fee: Option<ColumnRef>,
    currency: Option<ColumnRef>,
    occurred_at: ColumnList,
    business_date: Option<ColumnRef>,
}

/// How refunds are signed in the amount column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RefundSign {
    Positive,
    /// Negative; without a kind column, the sign is what tells a refund.
    Negative,
}

/// Where each record field is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MappingColumns {
    pub(crate) merchant_order_id: ColumnRef,
    pub(crate) channel_transaction_id: ColumnRef,
    pub(crate) merchant_refund_id: Option<ColumnRef>,
    pub(crate) channel_refund_id: Option<ColumnRef>,
    pub(crate) kind: Option<ColumnRef>,
    pub(crate) status: Option<ColumnRef>,
    pub(crate) amount: ColumnRef,
    pub(crate) requested_amount: Option<ColumnRef>,
    pub(crate) fee: Option<ColumnRef>,
    pub(crate) currency: Option<ColumnRef>,
    /// Joined with one space before parsing (a date column and a time
    /// column).
    pub(crate) occurred_at: Vec<ColumnRef>,
    pub(crate) business_date: Option<ColumnRef>,
}

/// A validated mapping file.
#[derive(Debug, Clone)]
pub struct Mapping {
    pub(crate) name: String,
    pub(crate) encoding: TextEncoding,
    pub(crate) delimiter: u8,
    pub(crate) header: bool,
    pub(crate) skip_lines: usize,
    pub(crate) comment_prefixes: Vec<String>,
    pub(crate) trailer_prefixes: Vec<String>,
    pub(crate) trailer_lines: usize,
    pub(crate) strip_characters: Vec<char>,
    pub(crate) currency: Currency,
    pub(crate) date_time_format: OwnedFormatItem,
    pub(crate) business_date_format: Option<OwnedFormatItem>,
    pub(crate) amount_unit: AmountUnit,
    pub(crate) refund_sign: RefundSign,
    pub(crate) fee_sign: FeeSign,
    pub(crate) fee_rounding: RoundingMode,
    pub(crate) default_status: Option<RecordStatus>,
    pub(crate) columns: MappingColumns,
    pub(crate) kinds: BTreeMap<String, RecordKind>,
    pub(crate) statuses: BTreeMap<String, RecordStatus>,
}

fn invalid(source: &str, reason: impl Into<String>) -> StatementError {
    StatementError::new(
        source,
        ErrorKind::InvalidMapping {
            reason: reason.into(),
        },
    )
}

/// `half-up`, `half-even`, `down`, `up`, `floor`, `ceiling`.
pub fn parse_rounding_mode(text: &str) -> Option<RoundingMode> {
    match text {
        "half-up" => Some(RoundingMode::HalfUp),
        "half-even" => Some(RoundingMode::HalfEven),
        "down" => Some(RoundingMode::Down),
        "up" => Some(RoundingMode::Up),
        "floor" => Some(RoundingMode::Floor),
        "ceiling" => Some(RoundingMode::Ceiling),
        _ => None,
    }
}

impl Mapping {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn encoding(&self) -> TextEncoding {
        self.encoding
    }

    /// Reads and validates a mapping file.
    pub fn load(path: &Path) -> Result<Mapping, StatementError> {
        let source = path.display().to_string();
        let io_error = |error| StatementError::new(&source, ErrorKind::Io(error));
        let size = std::fs::metadata(path).map_err(io_error)?.len();
        if size > MAPPING_BYTES_MAX {
            return Err(invalid(
                &source,
                format!("larger than {MAPPING_BYTES_MAX} bytes"),
            ));
        }
        let text = std::fs::read_to_string(path).map_err(io_error)?;
        Mapping::from_toml(&text, &source)
    }

    /// Parses and validates mapping TOML; `source` names it in errors.
    pub fn from_toml(text: &str, source: &str) -> Result<Mapping, StatementError> {
        let config: MappingConfig =
            toml::from_str(text).map_err(|error| invalid(source, error.to_string()))?;
        config.validate(source)
    }
}

impl MappingConfig {
    fn validate(self, source: &str) -> Result<Mapping, StatementError> {
        let fail = |reason: String| invalid(source, reason);
        let encoding = TextEncoding::parse(&self.encoding)
            .ok_or_else(|| fail(format!("unknown encoding {:?}", self.encoding)))?;
        let delimiter = match self.delimiter.as_bytes() {
            [byte] if byte.is_ascii() && !matches!(byte, b'"' | b'\n' | b'\r') => *byte,
            _ => {
                return Err(fail(format!(
                    "delimiter {:?} is not one ASCII character",
                    self.delimiter
                )));
            }
        };
        self.check_bounds(source)?;
        let columns = self.columns_checked(source)?;
        let kinds = parse_values(source, "kinds", &self.kinds, RecordKind::parse)?;
        let statuses = parse_values(source, "statuses", &self.statuses, RecordStatus::parse)?;
        let default_status = match &self.default_status {
            Some(text) => Some(
                RecordStatus::parse(text)
                    .ok_or_else(|| fail(format!("unknown default_status {text:?}")))?,
            ),
            None => None,
        };
        let refund_sign = match self.refund_sign.as_str() {
            "positive" => RefundSign::Positive,
            "negative" => RefundSign::Negative,
            other => return Err(fail(format!("unknown refund_sign {other:?}"))),
        };
        check_value_sources(
            source,
            &columns,
            &kinds,
            &statuses,
            default_status,
            refund_sign,
        )?;
        Ok(Mapping {
            name: self.name,
            encoding,
            delimiter,
            header: self.header,
            skip_lines: self.skip_lines,
            comment_prefixes: self.comment_prefixes,
            trailer_prefixes: self.trailer_prefixes,
            trailer_lines: self.trailer_lines,
            strip_characters: self.strip_characters.chars().collect(),
            currency: Currency::from_code(&self.currency)
                .map_err(|error| fail(format!("currency: {error}")))?,
            date_time_format: parse_format(source, "date_time_format", &self.date_time_format)?,
            business_date_format: match &self.business_date_format {
                Some(text) => Some(parse_format(source, "business_date_format", text)?),
                None => None,
            },
            amount_unit: AmountUnit::parse(&self.amount_unit)
                .ok_or_else(|| fail(format!("unknown amount_unit {:?}", self.amount_unit)))?,
            refund_sign,
            fee_sign: FeeSign::parse(&self.fee_sign)
                .ok_or_else(|| fail(format!("unknown fee_sign {:?}", self.fee_sign)))?,
            fee_rounding: parse_rounding_mode(&self.fee_rounding)
                .ok_or_else(|| fail(format!("unknown fee_rounding {:?}", self.fee_rounding)))?,
            default_status,
            columns,
            kinds,
            statuses,
        })
    }

    fn check_bounds(&self, source: &str) -> Result<(), StatementError> {
        if self.skip_lines > SKIP_LINES_MAX {
            return Err(invalid(
                source,
                format!("skip_lines above {SKIP_LINES_MAX}"),
            ));
        }
        if self.trailer_lines > TRAILER_LINES_MAX {
            return Err(invalid(
                source,
                format!("trailer_lines above {TRAILER_LINES_MAX}"),
            ));
        }
        let lengths = [
            self.comment_prefixes.len(),
            self.trailer_prefixes.len(),
            self.kinds.len(),
            self.statuses.len(),
        ];
        if lengths.iter().any(|length| *length > MAPPING_ENTRIES_MAX) {
            return Err(invalid(
                source,
                format!("a list or map has more than {MAPPING_ENTRIES_MAX} entries"),
            ));
        }
        if self
            .comment_prefixes
            .iter()
            .chain(&self.trailer_prefixes)
            .any(String::is_empty)
        {
            return Err(invalid(source, "an empty prefix would match every line"));
        }
        Ok(())
    }

    /// Names with a header, 1-based positions without one.
    fn columns_checked(&self, source: &str) -> Result<MappingColumns, StatementError> {
        let config = &self.columns;
        let occurred_at = match &config.occurred_at {
            ColumnList::One(column) => vec![column.clone()],
            ColumnList::Many(columns) => columns.clone(),
        };
        if occurred_at.is_empty() || occurred_at.len() > MAPPING_ENTRIES_MAX {
            return Err(invalid(
                source,
                "occurred_at needs between 1 and 64 columns",
            ));
        }
        let columns = MappingColumns {
            merchant_order_id: config.merchant_order_id.clone(),
            channel_transaction_id: config.channel_transaction_id.clone(),
            merchant_refund_id: config.merchant_refund_id.clone(),
            channel_refund_id: config.channel_refund_id.clone(),
            kind: config.kind.clone(),
            status: config.status.clone(),
            amount: config.amount.clone(),
            requested_amount: config.requested_amount.clone(),
            fee: config.fee.clone(),
            currency: config.currency.clone(),
            occurred_at,
            business_date: config.business_date.clone(),
        };
        for column in columns.all() {
            let valid = match column {
                ColumnRef::Name(name) => self.header && !name.trim().is_empty(),
                ColumnRef::Position(position) => !self.header && *position >= 1,
            };
            if !valid {
                let expected = if self.header {
                    "a header name"
                } else {
                    "a 1-based position"
                };
                return Err(invalid(
                    source,
                    format!("column {column:?} must be {expected}"),
                ));
            }
        }
        if columns.business_date.is_some() && self.business_date_format.is_none() {
            return Err(invalid(
                source,
                "a business_date column needs business_date_format",
            ));
        }
        Ok(columns)
    }
}

impl MappingColumns {
    pub(crate) fn all(&self) -> impl Iterator<Item = &ColumnRef> {
        let single = [
            Some(&self.merchant_order_id),
            Some(&self.channel_transaction_id),
            self.merchant_refund_id.as_ref(),
            self.channel_refund_id.as_ref(),
            self.kind.as_ref(),
            self.status.as_ref(),
            Some(&self.amount),
            self.requested_amount.as_ref(),
            self.fee.as_ref(),
            self.currency.as_ref(),
            self.business_date.as_ref(),
        ];
        single.into_iter().flatten().chain(&self.occurred_at)
    }
}

fn parse_values<T>(
    source: &str,
    table: &str,
    values: &BTreeMap<String, String>,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<BTreeMap<String, T>, StatementError> {
    values
        .iter()
        .map(|(printed, name)| {
            let value = parse(name).ok_or_else(|| {
                invalid(
                    source,
                    format!("{table}: unknown value {name:?} for {printed:?}"),
                )
            })?;
            Ok((printed.trim().to_owned(), value))
        })
        .collect()
}

/// Each record's kind and status must come from somewhere, explicitly.
fn check_value_sources(
    source: &str,
    columns: &MappingColumns,
    kinds: &BTreeMap<String, RecordKind>,
    statuses: &BTreeMap<String, RecordStatus>,
    default_status: Option<RecordStatus>,
    refund_sign: RefundSign,
) -> Result<(), StatementError> {
    match (&columns.kind, kinds.is_empty(), refund_sign) {
        (Some(_), true, _) => return Err(invalid(source, "a kind column needs a [kinds] table")),
        (None, _, RefundSign::Positive) => {
            return Err(invalid(
                source,
                "without a kind column refunds are told by sign: set refund_sign = \"negative\"",
            ));
        }
        _ => {}
    }
    match (&columns.status, statuses.is_empty(), default_status) {
        (Some(_), true, _) => Err(invalid(source, "a status column needs a [statuses] table")),
        (None, _, None) => Err(invalid(
            source,
            "without a status column set default_status",
        )),
        _ => Ok(()),
    }
}

fn parse_format(source: &str, key: &str, text: &str) -> Result<OwnedFormatItem, StatementError> {
    time::format_description::parse_owned::<1>(text)
        .map_err(|error| invalid(source, format!("{key}: {error}")))
}
