//! Errors of statement parsing. Each names the file, and where it can the
//! line and the field (the column's header name), with a stable code.

use std::fmt;

/// Why a statement file (or a mapping file) was refused.
///
/// The Display text is for people; [`ErrorKind::code`] is the stable code
/// for programs.
#[derive(Debug, thiserror::Error)]
pub enum ErrorKind {
    #[error("read failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("line longer than {bytes_max} bytes")]
    LineTooLong { bytes_max: usize },
    #[error("record longer than {bytes_max} bytes, {lines_max} lines or {fields_max} fields")]
    RecordTooLarge {
        bytes_max: usize,
        lines_max: usize,
        fields_max: usize,
    },
    #[error("bytes are not valid {encoding}")]
    InvalidEncoding { encoding: &'static str },
    #[error("the file has no header line")]
    MissingHeader,
    #[error("the header matches no known bill type")]
    UnknownBillType,
    #[error("required column is missing")]
    MissingColumn,
    #[error("column matches more than one header")]
    AmbiguousColumn,
    #[error("expected {expected} fields, found {found}")]
    FieldCount { expected: usize, found: usize },
    #[error("malformed field {text:?}: {reason}")]
    MalformedField { text: String, reason: &'static str },
    #[error("invalid amount {text:?}: {reason}")]
    InvalidAmount { text: String, reason: String },
    #[error("invalid date or time {text:?}")]
    InvalidDateTime { text: String },
    #[error("invalid currency {text:?}")]
    InvalidCurrency { text: String },
    #[error("unknown value {text:?}")]
    UnknownValue { text: String },
    #[error("required field is empty")]
    EmptyField,
    #[error("line has {length} bytes, the layout needs at least {needed}")]
    LineTooShort { length: usize, needed: usize },
    #[error("the file ends before its summary: it may be truncated")]
    MissingSummary,
    #[error("summary says {summary} but the detail rows add up to {detail}")]
    SummaryMismatch { summary: String, detail: String },
    #[error("footer total unreadable: {text:?}")]
    FooterUnreadable { text: String },
    #[error("unexpected line after the summary")]
    UnexpectedLine,
    #[error("business date unknown: pass it explicitly")]
    BusinessDateUnknown,
    #[error("invalid mapping: {reason}")]
    InvalidMapping { reason: String },
    #[error("unknown format {name:?}: expected wechat, alipay, unionpay-zm or mapping:<path>")]
    UnknownFormat { name: String },
    #[error("amount overflow")]
    Overflow,
}

impl ErrorKind {
    /// A stable code for programs and operators.
    pub fn code(&self) -> &'static str {
        match self {
            ErrorKind::Io(_) => "IO_ERROR",
            ErrorKind::LineTooLong { .. } => "LINE_TOO_LONG",
            ErrorKind::RecordTooLarge { .. } => "RECORD_TOO_LARGE",
            ErrorKind::InvalidEncoding { .. } => "INVALID_ENCODING",
            ErrorKind::MissingHeader => "MISSING_HEADER",
            ErrorKind::UnknownBillType => "UNKNOWN_BILL_TYPE",
            ErrorKind::MissingColumn => "MISSING_COLUMN",
            ErrorKind::AmbiguousColumn => "AMBIGUOUS_COLUMN",
            ErrorKind::FieldCount { .. } => "FIELD_COUNT",
            ErrorKind::MalformedField { .. } => "MALFORMED_FIELD",
            ErrorKind::InvalidAmount { .. } => "INVALID_AMOUNT",
            ErrorKind::InvalidDateTime { .. } => "INVALID_DATE_TIME",
            ErrorKind::InvalidCurrency { .. } => "INVALID_CURRENCY",
            ErrorKind::UnknownValue { .. } => "UNKNOWN_VALUE",
            ErrorKind::EmptyField => "EMPTY_FIELD",
            ErrorKind::LineTooShort { .. } => "LINE_TOO_SHORT",
            ErrorKind::MissingSummary => "MISSING_SUMMARY",
            ErrorKind::SummaryMismatch { .. } => "SUMMARY_MISMATCH",
            ErrorKind::FooterUnreadable { .. } => "FOOTER_UNREADABLE",
            ErrorKind::UnexpectedLine => "UNEXPECTED_LINE",
            ErrorKind::BusinessDateUnknown => "BUSINESS_DATE_UNKNOWN",
            ErrorKind::InvalidMapping { .. } => "INVALID_MAPPING",
            ErrorKind::UnknownFormat { .. } => "UNKNOWN_FORMAT",
            ErrorKind::Overflow => "AMOUNT_OVERFLOW",
        }
    }
}

/// An error with its place: the file's display name (given by the caller),
/// the 1-based physical line and the field (header name, or the layout's
/// field name for fixed-width files) when known.
///
/// Boxed so that `Result<StatementRecord, StatementError>` stays small.
#[derive(Debug)]
pub struct StatementError(Box<Located>);

#[derive(Debug)]
struct Located {
    file: String,
    line: Option<u64>,
    field: Option<String>,
    kind: ErrorKind,
}

impl StatementError {
    pub fn new(file: impl Into<String>, kind: ErrorKind) -> Self {
        StatementError(Box::new(Located {
            file: file.into(),
            line: None,
            field: None,
            kind,
        }))
    }

    pub(crate) fn at(file: &str, line: u64, field: Option<&str>, kind: ErrorKind) -> Self {
        StatementError(Box::new(Located {
            file: file.to_owned(),
            line: Some(line),
            field: field.map(str::to_owned),
            kind,
        }))
    }

    pub fn file(&self) -> &str {
        &self.0.file
    }

    pub fn line(&self) -> Option<u64> {
        self.0.line
    }

    pub fn field(&self) -> Option<&str> {
        self.0.field.as_deref()
    }

    pub fn kind(&self) -> &ErrorKind {
        &self.0.kind
    }

    pub fn code(&self) -> &'static str {
        self.0.kind.code()
    }
}

impl fmt::Display for StatementError {
    /// `bill.csv: line 12: field 手续费: invalid amount "x": ...`
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}", self.0.file)?;
        if let Some(line) = self.0.line {
            write!(formatter, ": line {line}")?;
        }
        if let Some(field) = &self.0.field {
            write!(formatter, ": field {field}")?;
        }
        write!(formatter, ": {} [{}]", self.0.kind, self.0.kind.code())
    }
}

impl std::error::Error for StatementError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0.kind)
    }
}
