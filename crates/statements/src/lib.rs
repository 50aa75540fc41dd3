//! Channel statement files (对账单): streaming parsers for the channels'
//! published layouts, each yielding one normalized [`StatementRecord`] per
//! statement line.
//!
//! - [`WechatBill`]: WeChat Pay trade bill (ALL / SUCCESS / REFUND / legacy
//!   ALL), summary checked against the rows.
//! - [`AlipayBill`]: Alipay 业务明细, GBK, footers checked when present.
//! - [`UnionPayZm`]: UnionPay ZM fixed width, GBK, sliced by bytes.
//! - [`MappedStatement`]: any bank CSV/TSV described by a TOML [`Mapping`].
//!
//! Every parser reads any `BufRead` line by line with bounded buffers
//! ([`LINE_BYTES_MAX`], [`RECORD_BYTES_MAX`]): memory does not grow with the
//! file. Header problems are errors from the constructor, before any row.
//! A record's error names the file, the line and the field
//! ([`StatementError`]). The iterators end after the first error, and a
//! check of totals (WeChat summary, Alipay footer) can only fail at the end,
//! after the rows it covers were yielded: **a file is good only if its
//! iterator ends without an error**, so importers must stage the records
//! and discard them all on any error.
//!
//! Nothing is detected silently: the caller names the [`Format`].
//!
//! **Architecture Invariant:** this crate knows nothing of reconciliation,
//! storage or DataFusion; it depends on `money` and small parsing crates
//! (`csv-core`, `encoding_rs`, `time`, `toml`).

mod alipay;
mod error;
mod header;
mod input;
mod mapped;
mod mapping;
mod record;
mod unionpay;
mod values;
mod wechat;

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use money::RoundingMode;
use time::Date;

pub use alipay::{AlipayBill, AlipayOptions};
pub use error::{ErrorKind, StatementError};
pub use input::{
    LINE_BYTES_MAX, RECORD_BYTES_MAX, RECORD_FIELDS_MAX, RECORD_LINES_MAX, TextEncoding,
};
pub use mapped::MappedStatement;
pub use mapping::{
    MAPPING_BYTES_MAX, MAPPING_ENTRIES_MAX, Mapping, SKIP_LINES_MAX, TRAILER_LINES_MAX,
    parse_rounding_mode,
};
pub use record::{RecordKind, RecordStatus, StatementRecord};
pub use unionpay::{
    FixedField, UnionPayOptions, UnionPayZm, ZM_LAYOUTS, ZmLayout, business_date_from_file_name,
};
pub use values::{AmountUnit, FeeSign};
pub use wechat::{WechatBill, WechatBillType, WechatOptions};

/// A statement format, as the caller names it: `wechat`, `alipay`,
/// `unionpay-zm` or `mapping:<path to a TOML mapping>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Format {
    Wechat,
    Alipay,
    UnionPayZm,
    Mapping(PathBuf),
}

impl FromStr for Format {
    type Err = StatementError;

    fn from_str(name: &str) -> Result<Format, StatementError> {
        match name {
            "wechat" => Ok(Format::Wechat),
            "alipay" => Ok(Format::Alipay),
            "unionpay-zm" => Ok(Format::UnionPayZm),
            _ => match name.strip_prefix("mapping:") {
                Some(path) if !path.is_empty() => Ok(Format::Mapping(PathBuf::from(path))),
                _ => Err(StatementError::new(
                    name,
                    ErrorKind::UnknownFormat {
                        name: name.to_owned(),
                    },
                )),
            },
        }
    }
}

/// Options every format understands. Format-specific options are on each
/// parser's own options type ([`WechatOptions`], [`UnionPayOptions`]...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Options {
    /// The channel's day the file covers (bill date, settle date). WeChat
    /// and Alipay default to each record's own date; UnionPay to the date
    /// in the file name; a mapping to its business-date column, else this,
    /// else each record's date.
    pub business_date: Option<Date>,
    /// Rounding of sub-minor fee digits; `None` keeps the format's default
    /// (half-up; a mapping's own `fee_rounding`).
    pub fee_rounding: Option<RoundingMode>,
}

/// The records of one statement file, whatever its format.
pub enum StatementReader<R> {
    Wechat(WechatBill<R>),
    Alipay(AlipayBill<R>),
    UnionPayZm(UnionPayZm<R>),
    Mapped(Box<MappedStatement<R>>),
}

impl<R: BufRead> Iterator for StatementReader<R> {
    type Item = Result<StatementRecord, StatementError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            StatementReader::Wechat(bill) => bill.next(),
            StatementReader::Alipay(bill) => bill.next(),
            StatementReader::UnionPayZm(file) => file.next(),
            StatementReader::Mapped(statement) => statement.next(),
        }
    }
}

/// Opens a statement file with default options. The path's display form
/// names the file in errors.
pub fn open(
    path: &Path,
    format: &Format,
) -> Result<StatementReader<BufReader<File>>, StatementError> {
    open_with(path, format, Options::default())
}

pub fn open_with(
    path: &Path,
    format: &Format,
    options: Options,
) -> Result<StatementReader<BufReader<File>>, StatementError> {
    let name = path.display().to_string();
    let file =
        File::open(path).map_err(|error| StatementError::new(&name, ErrorKind::Io(error)))?;
    read(&name, BufReader::new(file), format, options)
}

/// Parses a statement from any reader; `file_name` names it in errors (and
/// gives UnionPay its settle date when `options` does not).
pub fn read<R: BufRead>(
    file_name: &str,
    input: R,
    format: &Format,
    options: Options,
) -> Result<StatementReader<R>, StatementError> {
    match format {
        Format::Wechat => {
            let mut wechat = WechatOptions {
                business_date: options.business_date,
                ..WechatOptions::default()
            };
            if let Some(mode) = options.fee_rounding {
                wechat.fee_rounding = mode;
            }
            WechatBill::new(file_name, input, wechat).map(StatementReader::Wechat)
        }
        Format::Alipay => {
            let mut alipay = AlipayOptions {
                business_date: options.business_date,
                ..AlipayOptions::default()
            };
            if let Some(mode) = options.fee_rounding {
                alipay.fee_rounding = mode;
            }
            AlipayBill::new(file_name, input, alipay).map(StatementReader::Alipay)
        }
        Format::UnionPayZm => {
            let unionpay = UnionPayOptions {
                business_date: options.business_date,
                ..UnionPayOptions::default()
            };
            UnionPayZm::new(file_name, input, unionpay).map(StatementReader::UnionPayZm)
        }
        Format::Mapping(path) => {
            let mut mapping = Mapping::load(path)?;
            if let Some(mode) = options.fee_rounding {
                mapping.fee_rounding = mode;
            }
            MappedStatement::new(file_name, input, mapping, options.business_date)
                .map(|statement| StatementReader::Mapped(Box::new(statement)))
        }
    }
}
