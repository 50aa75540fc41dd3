//! Alipay trade bill, 业务明细 (`bill_type=trade`): GBK, `#` comment lines
//! above and below, one header, then one row per payment (业务类型 `交易`)
//! or refund (`退款`, amounts negative).
//!
//! Columns are found by a fragment of their name, with full- and half-width
//! parentheses alike (`订单金额（元）` = `订单金额(元)`). ID-like values end
//! with a TAB (against spreadsheets); every field is trimmed. The footers
//! `#交易合计：N笔，商家实收共X元` and `#退款合计：N笔，商家实收退款共-X元`,
//! when present, are checked against the rows at the end of the file.

use std::io::BufRead;

use money::{Currency, Money, RoundingMode};
use time::Date;

use crate::error::{ErrorKind, StatementError};
use crate::header::Header;
use crate::input::{DelimitedReader, Dialect, Item, Row, TextEncoding};
use crate::record::{RecordKind, RecordStatus, StatementRecord};
use crate::values::{
    AmountUnit, DATE_TIME_DASHED, FeeSign, format_exact, magnitude, parse_amount, parse_date_time,
    parse_exact, parse_fee,
};

const ENCODING: TextEncoding = TextEncoding::Gbk;
const PAYMENT_TYPE: &str = "交易";
const REFUND_TYPE: &str = "退款";
const PAYMENT_FOOTER: &str = "#交易合计";
const REFUND_FOOTER: &str = "#退款合计";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlipayOptions {
    /// The file carries no currency: CNY unless told otherwise.
    pub currency: Currency,
    /// The bill date asked for; when `None`, each record's 完成时间 date.
    pub business_date: Option<Date>,
    /// How 服务费（元） is signed. Default: a fee charged is printed
    /// negative (the 汇总 file adds 服务费 to 商家实收 to get 实收净额).
    /// **Unverified** against a real file with a non-zero fee.
    pub fee_sign: FeeSign,
    /// Rounding of sub-minor fee digits, if any. Default half-up.
    pub fee_rounding: RoundingMode,
}

impl Default for AlipayOptions {
    fn default() -> Self {
        AlipayOptions {
            currency: Currency::CNY,
            business_date: None,
            fee_sign: FeeSign::ChargedNegative,
            fee_rounding: RoundingMode::HalfUp,
        }
    }
}

struct Columns {
    transaction_id: usize,
    merchant_order_id: usize,
    business_type: usize,
    completed_at: usize,
    order_amount: usize,
    received_amount: usize,
    refund_request_id: usize,
    service_fee: usize,
}

/// Count and exact sum of 商家实收 for one 业务类型, and what its footer says.
#[derive(Debug, Default)]
struct FooterCheck {
    count: u64,
    received_total: i128,
    footer: Option<Footer>,
}

#[derive(Debug, Clone, Copy)]
struct Footer {
    line: u64,
    count: u64,
    received_total: i128,
}

struct Schema {
    file: String,
    header: Header,
    columns: Columns,
    options: AlipayOptions,
}

/// A streaming parser of one Alipay 业务明细 file (GBK).
pub struct AlipayBill<R> {
    schema: Schema,
    reader: DelimitedReader<R>,
    payments: FooterCheck,
    refunds: FooterCheck,
    finished: bool,
}

impl<R: BufRead> AlipayBill<R> {
    /// Skips the `#` preamble and reads the header; a missing column is an
    /// error here, before any row.
    pub fn new(
        file: impl Into<String>,
        input: R,
        options: AlipayOptions,
    ) -> Result<Self, StatementError> {
        let file = file.into();
        let dialect = Dialect {
            delimiter: b',',
            comment_prefixes: vec![b"#".to_vec()],
        };
        let mut reader = DelimitedReader::new(input, dialect);
        let header = read_header(&file, &mut reader)?;
        let columns = find_columns(&file, &header)?;
        Ok(AlipayBill {
            schema: Schema {
                file,
                header,
                columns,
                options,
            },
            reader,
            payments: FooterCheck::default(),
            refunds: FooterCheck::default(),
            finished: false,
        })
    }

    fn next_record(&mut self) -> Result<Option<StatementRecord>, StatementError> {
        loop {
            let item = self
                .reader
                .next_item()
                .map_err(|kind| self.schema.error(self.reader.line_number(), None, kind))?;
            let line = self.reader.item_line();
            match item {
                None => {
                    check_footer(&self.schema.file, PAYMENT_FOOTER, &self.payments)?;
                    check_footer(&self.schema.file, REFUND_FOOTER, &self.refunds)?;
                    return Ok(None);
                }
                Some(Item::Comment) => self.read_comment(line)?,
                Some(Item::Row) => {
                    let (record, received_exact) =
                        self.schema.parse_row(self.reader.row(), line)?;
                    let check = match record.kind {
                        RecordKind::Payment => &mut self.payments,
                        RecordKind::Refund => &mut self.refunds,
                    };
                    check.count += 1;
                    check.received_total += received_exact;
                    return Ok(Some(record));
                }
            }
        }
    }

    /// Remembers the totals footers; other comment lines are prose.
    fn read_comment(&mut self, line: u64) -> Result<(), StatementError> {
        let text = ENCODING
            .decode(self.reader.comment())
            .map_err(|kind| self.schema.error(line, None, kind))?;
        let (check, label) = if text.starts_with(PAYMENT_FOOTER) {
            (&mut self.payments, PAYMENT_FOOTER)
        } else if text.starts_with(REFUND_FOOTER) {
            (&mut self.refunds, REFUND_FOOTER)
        } else {
            return Ok(());
        };
        let footer = parse_footer(&text[label.len()..], line).ok_or_else(|| {
            let kind = ErrorKind::FooterUnreadable {
                text: text.clone().into_owned(),
            };
            StatementError::at(&self.schema.file, line, Some(&label[1..]), kind)
        })?;
        check.footer = Some(footer);
        Ok(())
    }
}

impl<R: BufRead> Iterator for AlipayBill<R> {
    type Item = Result<StatementRecord, StatementError>;

    /// Rows in file order; a footer mismatch comes last. After an error the
    /// iterator ends.
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
    // Comment lines before the header are prose: skip them.
    loop {
        let item = reader
            .next_item()
            .map_err(|kind| StatementError::at(file, reader.line_number(), None, kind))?;
        match item {
            Some(Item::Comment) => continue,
            Some(Item::Row) => {
                return Header::decode(file, reader.row(), ENCODING, reader.item_line());
            }
            None => {
                let line = reader.item_line().max(1);
                return Err(StatementError::at(
                    file,
                    line,
                    None,
                    ErrorKind::MissingHeader,
                ));
            }
        }
    }
}

fn find_columns(file: &str, header: &Header) -> Result<Columns, StatementError> {
    let require =
        |fragment: &str| header.require(file, header.containing(file, fragment)?, fragment);
    Ok(Columns {
        transaction_id: require("支付宝交易号")?,
        merchant_order_id: require("商户订单号")?,
        business_type: require("业务类型")?,
        completed_at: require("完成时间")?,
        order_amount: require("订单金额")?,
        received_amount: require("商家实收")?,
        refund_request_id: require("退款批次号")?,
        service_fee: require("服务费")?,
    })
}

/// `6笔，商家实收共0.06元，商家优惠共0.00元` (after `#交易合计：`).
fn parse_footer(text: &str, line: u64) -> Option<Footer> {
    let text = text.trim_start_matches(['：', ':']).trim();
    let (count_text, rest) = text.split_once('笔')?;
    let count = count_text.trim().parse().ok()?;
    let received = &rest[rest.find("商家实收")?..];
    let amount_start = received.find('共')? + '共'.len_utf8();
    let amount_text = received[amount_start..].split_once('元')?.0;
    let received_total = parse_exact(amount_text).ok()?;
    Some(Footer {
        line,
        count,
        received_total,
    })
}

fn check_footer(file: &str, label: &str, check: &FooterCheck) -> Result<(), StatementError> {
    let Some(footer) = check.footer else {
        return Ok(());
    };
    let field = &label[1..];
    let mismatch = |summary: String, detail: String| {
        let kind = ErrorKind::SummaryMismatch { summary, detail };
        StatementError::at(file, footer.line, Some(field), kind)
    };
    if footer.count != check.count {
        return Err(mismatch(
            format!("{} rows", footer.count),
            format!("{} rows", check.count),
        ));
    }
    if footer.received_total != check.received_total {
        return Err(mismatch(
            format_exact(footer.received_total),
            format_exact(check.received_total),
        ));
    }
    Ok(())
}

impl Schema {
    fn error(&self, line: u64, column: Option<usize>, kind: ErrorKind) -> StatementError {
        let field = column.map(|index| self.header.name(index));
        StatementError::at(&self.file, line, field.as_deref(), kind)
    }

    /// The record and its 商家实收 exactly as printed (for the footer).
    fn parse_row(
        &self,
        row: Row<'_>,
        line: u64,
    ) -> Result<(StatementRecord, i128), StatementError> {
        if row.len() != self.header.len() {
            let kind = ErrorKind::FieldCount {
                expected: self.header.len(),
                found: row.len(),
            };
            return Err(self.error(line, None, kind));
        }
        row.check_encoding(ENCODING)
            .map_err(|(index, kind)| self.error(line, Some(index), kind))?;
        let columns = &self.columns;
        let at = |index: usize| move |kind| self.error(line, Some(index), kind);
        let field = |index: usize| self.field(row, line, index);
        let kind = self.kind(row, line)?;
        let received_text = field(columns.received_amount)?;
        let received_exact = parse_exact(&received_text).map_err(at(columns.received_amount))?;
        let amount = self
            .signed_amount(&received_text, kind)
            .map_err(at(columns.received_amount))?;
        let order_text = field(columns.order_amount)?;
        let requested_amount = self
            .signed_amount(&order_text, kind)
            .map_err(at(columns.order_amount))?;
        let occurred_at = parse_date_time(&field(columns.completed_at)?, DATE_TIME_DASHED)
            .map_err(at(columns.completed_at))?;
        let merchant_refund_id = match kind {
            RecordKind::Payment => None,
            RecordKind::Refund => Some(self.required(row, line, columns.refund_request_id)?),
        };
        let record = StatementRecord {
            line,
            kind,
            merchant_order_id: self.required(row, line, columns.merchant_order_id)?,
            channel_transaction_id: self.required(row, line, columns.transaction_id)?,
            merchant_refund_id,
            channel_refund_id: None,
            amount,
            requested_amount,
            fee: self.fee(row, line)?,
            status: RecordStatus::Success,
            channel_status: None,
            occurred_at,
            business_date: self.options.business_date.unwrap_or(occurred_at.date()),
        };
        Ok((record, received_exact))
    }

    /// A field decoded and trimmed (IDs end with a TAB).
    fn field(&self, row: Row<'_>, line: u64, index: usize) -> Result<String, StatementError> {
        let bytes = row.get(index).unwrap_or_default();
        let text = ENCODING
            .decode(bytes)
            .map_err(|kind| self.error(line, Some(index), kind))?;
        Ok(text.trim().to_owned())
    }

    fn required(&self, row: Row<'_>, line: u64, index: usize) -> Result<String, StatementError> {
        let text = self.field(row, line, index)?;
        if text.is_empty() {
            return Err(self.error(line, Some(index), ErrorKind::EmptyField));
        }
        Ok(text)
    }

    /// 业务类型: `交易` is a payment, `退款` a refund; anything else is refused.
    fn kind(&self, row: Row<'_>, line: u64) -> Result<RecordKind, StatementError> {
        let column = self.columns.business_type;
        let text = self.field(row, line, column)?;
        match text.as_str() {
            PAYMENT_TYPE => Ok(RecordKind::Payment),
            REFUND_TYPE => Ok(RecordKind::Refund),
            _ => Err(self.error(line, Some(column), ErrorKind::UnknownValue { text })),
        }
    }

    fn fee(&self, row: Row<'_>, line: u64) -> Result<Money, StatementError> {
        let column = self.columns.service_fee;
        let text = self.field(row, line, column)?;
        let options = &self.options;
        parse_fee(
            &text,
            options.currency,
            AmountUnit::Major,
            options.fee_rounding,
        )
        .and_then(|printed| options.fee_sign.normalize(printed))
        .map_err(|kind| self.error(line, Some(column), kind))
    }

    /// Payments are printed positive and refunds negative; the record holds
    /// the magnitude. A sign against the row's type is refused.
    fn signed_amount(&self, text: &str, kind: RecordKind) -> Result<Money, ErrorKind> {
        let printed = parse_amount(text, self.options.currency, AmountUnit::Major)?;
        let wrong_sign = match kind {
            RecordKind::Payment => printed.is_negative(),
            RecordKind::Refund => printed.amount_minor() > 0,
        };
        if wrong_sign {
            return Err(ErrorKind::InvalidAmount {
                text: text.to_owned(),
                reason: "sign does not match 业务类型 (payments positive, refunds negative)".into(),
            });
        }
        magnitude(printed)
    }
}
