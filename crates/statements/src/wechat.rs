//! WeChat Pay trade bill (交易账单, v2 `downloadbill` and v3 `tradebill`):
//! bill types ALL, SUCCESS, REFUND and the legacy ALL (before 免充值券).
//!
//! Layout: a header, detail rows whose every field starts with a back-tick,
//! a summary header (`总交易单数,...`) and one summary row. The summary is
//! required and checked against the rows: the count and every total whose
//! detail column is present, exactly (fees carry 5 decimals). A file without
//! its summary is refused as possibly truncated.

use std::io::BufRead;

use money::{Currency, RoundingMode};
use time::Date;

use crate::error::{ErrorKind, StatementError};
use crate::header::Header;
use crate::input::{DelimitedReader, Dialect, Item, Row, TextEncoding};
use crate::record::{RecordKind, RecordStatus, StatementRecord};
use crate::values::{
    AmountUnit, DATE_TIME_DASHED, format_exact, parse_amount, parse_currency, parse_date_time,
    parse_exact, parse_fee, require_non_negative,
};

/// The bill type, told by the header's columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WechatBillType {
    All,
    Success,
    Refund,
    /// ALL before 免充值券 (`总金额`, `子商户号`...).
    LegacyAll,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WechatOptions {
    /// The bill date asked for; when `None`, each record's own date
    /// (交易时间, or 退款申请时间 in a REFUND bill: the day WeChat files it by).
    pub business_date: Option<Date>,
    /// How a 5-decimal 手续费 becomes minor units. Default half-up (四舍五入),
    /// as WeChat rounds a transaction's fee to the fen when it settles.
    pub fee_rounding: RoundingMode,
}

impl Default for WechatOptions {
    fn default() -> Self {
        WechatOptions {
            business_date: None,
            fee_rounding: RoundingMode::HalfUp,
        }
    }
}

const SUMMARY_COUNT: &str = "总交易单数";

/// Summary total ↔ the detail column it adds up (current and legacy names).
const SUMMARY_SUMS: &[(&str, &str)] = &[
    ("应结订单总金额", "应结订单金额"),
    ("退款总金额", "退款金额"),
    ("充值券退款总金额", "充值券退款金额"),
    ("手续费总金额", "手续费"),
    ("订单总金额", "订单金额"),
    ("申请退款总金额", "申请退款金额"),
    ("总交易额", "总金额"),
    ("总退款金额", "退款金额"),
    ("总代金券或立减优惠退款金额", "代金券或立减优惠退款金额"),
];

const BACKTICK: u8 = b'`';

struct Columns {
    trade_time: usize,
    transaction_id: usize,
    merchant_order_id: usize,
    trade_state: usize,
    currency: usize,
    amount: usize,
    requested_amount: usize,
    fee: usize,
    refund: Option<RefundColumns>,
}

struct RefundColumns {
    channel_refund_id: usize,
    merchant_refund_id: usize,
    amount: usize,
    requested_amount: usize,
    status: usize,
    /// 退款申请时间, in REFUND bills only.
    requested_at: Option<usize>,
}

/// What the detail rows add up to, for the summary check.
struct Totals {
    count: u64,
    sums: Vec<SummedColumn>,
}

struct SummedColumn {
    summary_name: &'static str,
    column: usize,
    total: i128,
}

/// The parts that do not change while rows are read.
struct Schema {
    file: String,
    header: Header,
    bill_type: WechatBillType,
    columns: Columns,
    options: WechatOptions,
}

/// A streaming parser of one WeChat trade bill (UTF-8).
pub struct WechatBill<R> {
    schema: Schema,
    reader: DelimitedReader<R>,
    totals: Totals,
    finished: bool,
}

impl<R: BufRead> WechatBill<R> {
    /// Reads and checks the header; an unknown layout or a missing column
    /// is an error here, before any row.
    pub fn new(
        file: impl Into<String>,
        input: R,
        options: WechatOptions,
    ) -> Result<Self, StatementError> {
        let file = file.into();
        let dialect = Dialect {
            delimiter: b',',
            comment_prefixes: Vec::new(),
        };
        let mut reader = DelimitedReader::new(input, dialect);
        let header = read_header(&file, &mut reader)?;
        let bill_type = detect_bill_type(&header).ok_or_else(|| {
            StatementError::at(&file, header.line(), None, ErrorKind::UnknownBillType)
        })?;
        let columns = find_columns(&file, &header, bill_type)?;
        let totals = Totals {
            count: 0,
            sums: summed_columns(&file, &header)?,
        };
        let schema = Schema {
            file,
            header,
            bill_type,
            columns,
            options,
        };
        Ok(WechatBill {
            schema,
            reader,
            totals,
            finished: false,
        })
    }

    pub fn bill_type(&self) -> WechatBillType {
        self.schema.bill_type
    }

    fn next_record(&mut self) -> Result<Option<StatementRecord>, StatementError> {
        let item = self
            .reader
            .next_item()
            .map_err(|kind| self.schema.error(self.reader.line_number(), None, kind))?;
        let line = self.reader.item_line();
        if item != Some(Item::Row) {
            return Err(self.schema.error(
                self.reader.line_number() + 1,
                None,
                ErrorKind::MissingSummary,
            ));
        }
        let row = self.reader.row();
        if row
            .get(0)
            .is_some_and(|first| first.starts_with(&[BACKTICK]))
        {
            let record = self.schema.parse_detail(row, line, &mut self.totals)?;
            return Ok(Some(record));
        }
        let names = self.schema.summary_names(row, line)?;
        self.read_summary(&names)?;
        Ok(None)
    }

    /// Reads the summary row after its header, checks it, and makes sure
    /// nothing follows.
    fn read_summary(&mut self, names: &[String]) -> Result<(), StatementError> {
        let item = self
            .reader
            .next_item()
            .map_err(|kind| self.schema.error(self.reader.line_number(), None, kind))?;
        let line = self.reader.item_line();
        if item != Some(Item::Row) {
            return Err(self.schema.error(
                self.reader.line_number() + 1,
                None,
                ErrorKind::MissingSummary,
            ));
        }
        self.schema
            .check_summary(names, self.reader.row(), line, &self.totals)?;
        let after = self
            .reader
            .next_item()
            .map_err(|kind| self.schema.error(self.reader.line_number(), None, kind))?;
        if after.is_some() {
            let line = self.reader.item_line();
            return Err(self.schema.error(line, None, ErrorKind::UnexpectedLine));
        }
        Ok(())
    }
}

impl<R: BufRead> Iterator for WechatBill<R> {
    type Item = Result<StatementRecord, StatementError>;

    /// Rows in file order; the summary check's error, if any, comes last.
    /// After an error the iterator ends.
    fn next(&mut self) -> Option<Self::Item> {
        if self.finished {
            return None;
        }
        let result = self.next_record();
        if !matches!(result, Ok(Some(_))) {
            self.finished = true;
        }
        result.transpose()
    }
}

fn read_header<R: BufRead>(
    file: &str,
    reader: &mut DelimitedReader<R>,
) -> Result<Header, StatementError> {
    let item = reader
        .next_item()
        .map_err(|kind| StatementError::at(file, reader.line_number(), None, kind))?;
    let line = reader.item_line();
    let row = reader.row();
    let is_header = item == Some(Item::Row)
        && row
            .get(0)
            .is_some_and(|first| !first.starts_with(&[BACKTICK]));
    if !is_header {
        return Err(StatementError::at(
            file,
            line.max(1),
            None,
            ErrorKind::MissingHeader,
        ));
    }
    Header::decode(file, row, TextEncoding::Utf8, line)
}

fn detect_bill_type(header: &Header) -> Option<WechatBillType> {
    let has = |name: &str| header.contains(name);
    if has("退款申请时间") {
        Some(WechatBillType::Refund)
    } else if has("应结订单金额") && has("微信退款单号") {
        Some(WechatBillType::All)
    } else if has("应结订单金额") {
        Some(WechatBillType::Success)
    } else if has("总金额") && has("微信退款单号") {
        Some(WechatBillType::LegacyAll)
    } else {
        None
    }
}

fn find_columns(
    file: &str,
    header: &Header,
    bill_type: WechatBillType,
) -> Result<Columns, StatementError> {
    let require = |name: &str| header.require(file, header.exact(file, name)?, name);
    let legacy = bill_type == WechatBillType::LegacyAll;
    let (amount_name, requested_name) = if legacy {
        ("总金额", "总金额")
    } else {
        ("应结订单金额", "订单金额")
    };
    let refund = match bill_type {
        WechatBillType::Success => None,
        _ => Some(RefundColumns {
            channel_refund_id: require("微信退款单号")?,
            merchant_refund_id: require("商户退款单号")?,
            amount: require("退款金额")?,
            requested_amount: require(if legacy {
                "退款金额"
            } else {
                "申请退款金额"
            })?,
            status: require("退款状态")?,
            requested_at: match bill_type {
                WechatBillType::Refund => Some(require("退款申请时间")?),
                _ => None,
            },
        }),
    };
    Ok(Columns {
        trade_time: require("交易时间")?,
        transaction_id: require("微信订单号")?,
        merchant_order_id: require("商户订单号")?,
        trade_state: require("交易状态")?,
        currency: require("货币种类")?,
        amount: require(amount_name)?,
        requested_amount: require(requested_name)?,
        fee: require("手续费")?,
        refund,
    })
}

fn summed_columns(file: &str, header: &Header) -> Result<Vec<SummedColumn>, StatementError> {
    let mut sums = Vec::new();
    for (summary_name, detail_name) in SUMMARY_SUMS {
        if let Some(column) = header.exact(file, detail_name)? {
            sums.push(SummedColumn {
                summary_name,
                column,
                total: 0,
            });
        }
    }
    Ok(sums)
}

/// A field's text without its leading back-tick; trimmed.
fn detail_text(row: Row<'_>, index: usize) -> Result<&str, ErrorKind> {
    let bytes = row.get(index).unwrap_or_default();
    let text = TextEncoding::Utf8.decode(bytes)?;
    let std::borrow::Cow::Borrowed(text) = text else {
        return Err(ErrorKind::InvalidEncoding { encoding: "UTF-8" });
    };
    match text.strip_prefix('`') {
        Some(value) => Ok(value.trim()),
        None => Err(ErrorKind::MalformedField {
            text: text.to_owned(),
            reason: "WeChat detail fields start with a back-tick",
        }),
    }
}

fn required(text: &str) -> Result<String, ErrorKind> {
    if text.is_empty() {
        Err(ErrorKind::EmptyField)
    } else {
        Ok(text.to_owned())
    }
}

/// 交易状态 of a payment row.
fn trade_status(text: &str) -> Result<RecordStatus, ErrorKind> {
    match text {
        "SUCCESS" => Ok(RecordStatus::Success),
        "USERPAYING" | "NOTPAY" => Ok(RecordStatus::Processing),
        "REVOKED" | "CLOSED" | "PAYERROR" => Ok(RecordStatus::Failed),
        _ => Err(ErrorKind::UnknownValue {
            text: text.to_owned(),
        }),
    }
}

/// 退款状态 of a refund row. `CHANGE` (退款异常) waits for handling on
/// WeChat's side, so it is not final.
fn refund_status(text: &str) -> Result<RecordStatus, ErrorKind> {
    match text {
        "SUCCESS" => Ok(RecordStatus::Success),
        "PROCESSING" | "NOTSURE" | "CHANGE" => Ok(RecordStatus::Processing),
        "FAIL" | "FAILED" | "REFUNDCLOSE" | "CLOSED" => Ok(RecordStatus::Failed),
        _ => Err(ErrorKind::UnknownValue {
            text: text.to_owned(),
        }),
    }
}

impl Schema {
    fn error(&self, line: u64, column: Option<usize>, kind: ErrorKind) -> StatementError {
        let field = column.map(|index| self.header.name(index));
        StatementError::at(&self.file, line, field.as_deref(), kind)
    }

    fn parse_detail(
        &self,
        row: Row<'_>,
        line: u64,
        totals: &mut Totals,
    ) -> Result<StatementRecord, StatementError> {
        if row.len() != self.header.len() {
            let kind = ErrorKind::FieldCount {
                expected: self.header.len(),
                found: row.len(),
            };
            return Err(self.error(line, None, kind));
        }
        let field = |index: usize| {
            detail_text(row, index).map_err(|kind| self.error(line, Some(index), kind))
        };
        // Every field must carry its back-tick: a comma inside a value would
        // shift the columns, and this is where that shows.
        for index in 0..row.len() {
            field(index)?;
        }
        for summed in &mut totals.sums {
            let text = field(summed.column)?;
            if !text.is_empty() {
                let value = parse_exact(text)
                    .map_err(|kind| self.error(line, Some(summed.column), kind))?;
                summed.total += value;
            }
        }
        totals.count += 1;
        let state = field(self.columns.trade_state)?;
        match (&self.columns.refund, state) {
            (Some(refund), "REFUND") => self.refund_record(row, line, refund),
            _ => self.payment_record(row, line),
        }
    }

    fn payment_record(&self, row: Row<'_>, line: u64) -> Result<StatementRecord, StatementError> {
        let columns = &self.columns;
        let at = |index: usize| move |kind| self.error(line, Some(index), kind);
        let field = |index: usize| detail_text(row, index).map_err(at(index));
        let currency = parse_currency(field(columns.currency)?).map_err(at(columns.currency))?;
        let state = field(columns.trade_state)?;
        let occurred_at = parse_date_time(field(columns.trade_time)?, DATE_TIME_DASHED)
            .map_err(at(columns.trade_time))?;
        Ok(StatementRecord {
            line,
            kind: RecordKind::Payment,
            merchant_order_id: required(field(columns.merchant_order_id)?)
                .map_err(at(columns.merchant_order_id))?,
            channel_transaction_id: required(field(columns.transaction_id)?)
                .map_err(at(columns.transaction_id))?,
            merchant_refund_id: None,
            channel_refund_id: None,
            amount: self.amount(row, line, columns.amount, currency)?,
            requested_amount: self.amount(row, line, columns.requested_amount, currency)?,
            fee: self.fee(row, line, currency)?,
            status: trade_status(state).map_err(at(columns.trade_state))?,
            channel_status: Some(state.to_owned()),
            occurred_at,
            business_date: self.options.business_date.unwrap_or(occurred_at.date()),
        })
    }

    fn refund_record(
        &self,
        row: Row<'_>,
        line: u64,
        refund: &RefundColumns,
    ) -> Result<StatementRecord, StatementError> {
        let columns = &self.columns;
        let at = |index: usize| move |kind| self.error(line, Some(index), kind);
        let field = |index: usize| detail_text(row, index).map_err(at(index));
        let currency = parse_currency(field(columns.currency)?).map_err(at(columns.currency))?;
        let status_text = field(refund.status)?;
        let time_column = refund.requested_at.unwrap_or(columns.trade_time);
        let occurred_at =
            parse_date_time(field(time_column)?, DATE_TIME_DASHED).map_err(at(time_column))?;
        Ok(StatementRecord {
            line,
            kind: RecordKind::Refund,
            merchant_order_id: required(field(columns.merchant_order_id)?)
                .map_err(at(columns.merchant_order_id))?,
            channel_transaction_id: required(field(columns.transaction_id)?)
                .map_err(at(columns.transaction_id))?,
            merchant_refund_id: Some(
                required(field(refund.merchant_refund_id)?)
                    .map_err(at(refund.merchant_refund_id))?,
            ),
            channel_refund_id: Some(
                required(field(refund.channel_refund_id)?).map_err(at(refund.channel_refund_id))?,
            ),
            amount: self.amount(row, line, refund.amount, currency)?,
            requested_amount: self.amount(row, line, refund.requested_amount, currency)?,
            fee: self.fee(row, line, currency)?,
            status: refund_status(status_text).map_err(at(refund.status))?,
            channel_status: Some(status_text.to_owned()),
            occurred_at,
            business_date: self.options.business_date.unwrap_or(occurred_at.date()),
        })
    }

    fn amount(
        &self,
        row: Row<'_>,
        line: u64,
        column: usize,
        currency: Currency,
    ) -> Result<money::Money, StatementError> {
        let at = |kind| self.error(line, Some(column), kind);
        let text = detail_text(row, column).map_err(at)?;
        let amount = parse_amount(text, currency, AmountUnit::Major).map_err(at)?;
        require_non_negative(amount, text).map_err(at)
    }

    fn fee(
        &self,
        row: Row<'_>,
        line: u64,
        currency: Currency,
    ) -> Result<money::Money, StatementError> {
        let column = self.columns.fee;
        let at = |kind| self.error(line, Some(column), kind);
        let text = detail_text(row, column).map_err(at)?;
        parse_fee(text, currency, AmountUnit::Major, self.options.fee_rounding).map_err(at)
    }

    /// The summary header's names; a row that is neither a detail row nor
    /// the summary header is a detail row missing its back-tick.
    fn summary_names(&self, row: Row<'_>, line: u64) -> Result<Vec<String>, StatementError> {
        let header = Header::decode(&self.file, row, TextEncoding::Utf8, line)?;
        if header.name(0) != SUMMARY_COUNT {
            let kind = ErrorKind::MalformedField {
                text: header.name(0),
                reason: "WeChat detail fields start with a back-tick",
            };
            return Err(self.error(line, Some(0), kind));
        }
        Ok((0..header.len()).map(|index| header.name(index)).collect())
    }

    fn check_summary(
        &self,
        names: &[String],
        row: Row<'_>,
        line: u64,
        totals: &Totals,
    ) -> Result<(), StatementError> {
        if row.len() != names.len() {
            let kind = ErrorKind::FieldCount {
                expected: names.len(),
                found: row.len(),
            };
            return Err(self.error(line, None, kind));
        }
        for (name, bytes) in names.iter().zip(row.fields()) {
            let at = |kind| StatementError::at(&self.file, line, Some(name), kind);
            let text = TextEncoding::Utf8.decode(bytes).map_err(at)?;
            let text = text.trim().trim_start_matches('`');
            let summary = parse_exact(text).map_err(at)?;
            let detail = if name == SUMMARY_COUNT {
                Some(i128::from(totals.count) * 1_000_000)
            } else {
                totals
                    .sums
                    .iter()
                    .find(|summed| summed.summary_name == name)
                    .map(|summed| summed.total)
            };
            if let Some(detail) = detail
                && detail != summary
            {
                let kind = ErrorKind::SummaryMismatch {
                    summary: format_exact(summary),
                    detail: format_exact(detail),
                };
                return Err(at(kind));
            }
        }
        Ok(())
    }
}
