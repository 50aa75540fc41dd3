//! UnionPay 全渠道 merchant file ZM (商户对账文件), fixed width, GBK.
//!
//! Lines are sliced **by bytes** at the layout's offsets, then each field is
//! decoded (a Chinese name takes 2 bytes in GBK, so slicing characters
//! would drift). The layout is a versioned table; only the 40 named fields
//! are read and whatever follows field 40 (its length varies by SDK
//! version) is ignored.
//!
//! **Unverified** (no real file at hand), so each is a parameter:
//! 交易代码 `S22` = consumption and `S30` = refund; amounts as zero-padded
//! integer minor units (分); a fee may carry a leading `D` (charged) or `C`
//! (given back); the settle date in the file name as `INN` + `yymmdd`.
//! The file lists settled transactions only, so every record is a success.

use std::io::BufRead;
use std::path::Path;

use money::{Currency, Money};
use time::{Date, Month, PrimitiveDateTime, Time};

use crate::error::{ErrorKind, StatementError};
use crate::input::{LineReader, TextEncoding};
use crate::record::{RecordKind, RecordStatus, StatementRecord};
use crate::values::{AmountUnit, parse_amount, require_non_negative};

const ENCODING: TextEncoding = TextEncoding::Gbk;

/// One field of a fixed-width layout: `offset` and `length` in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixedField {
    pub number: u8,
    pub name: &'static str,
    pub offset: usize,
    pub length: usize,
}

impl FixedField {
    pub const fn end(&self) -> usize {
        self.offset + self.length
    }
}

const fn field(number: u8, name: &'static str, offset: usize, length: usize) -> FixedField {
    FixedField {
        number,
        name,
        offset,
        length,
    }
}

/// ZM as in 《全渠道平台接入接口规范 第3部分 文件接口》 §6.1: 40 named
/// fields, each followed by one separator byte.
const ZM_40_FIELDS: [FixedField; 40] = [
    field(1, "交易代码", 0, 3),
    field(2, "代理机构标识码", 4, 11),
    field(3, "发送机构标识码", 16, 11),
    field(4, "系统跟踪号", 28, 6),
    field(5, "交易传输时间", 35, 10),
    field(6, "账号", 46, 19),
    field(7, "交易金额", 66, 12),
    field(8, "商户类别", 79, 4),
    field(9, "终端类型", 84, 2),
    field(10, "查询流水号", 87, 21),
    field(11, "支付方式(旧)", 109, 2),
    field(12, "商户订单号", 112, 32),
    field(13, "支付卡类型", 145, 2),
    field(14, "原始交易系统跟踪号", 148, 6),
    field(15, "原始交易日期时间", 155, 10),
    field(16, "商户手续费", 166, 13),
    field(17, "结算金额", 180, 13),
    field(18, "支付方式", 194, 4),
    field(19, "集团商户代码", 199, 15),
    field(20, "交易类型", 215, 2),
    field(21, "交易子类", 218, 2),
    field(22, "业务类型", 221, 6),
    field(23, "账号类型", 228, 2),
    field(24, "账单类型", 231, 4),
    field(25, "账单号码", 236, 32),
    field(26, "交互方式", 269, 1),
    field(27, "原交易查询流水号", 271, 21),
    field(28, "商户代码", 293, 15),
    field(29, "分账入账方式", 309, 1),
    field(30, "二级商户代码", 311, 15),
    field(31, "二级商户简称", 327, 32),
    field(32, "二级商户分账入账金额", 360, 13),
    field(33, "清算净额", 374, 13),
    field(34, "终端号", 388, 8),
    field(35, "商户自定义域", 397, 32),
    field(36, "优惠金额", 430, 13),
    field(37, "发票金额", 444, 13),
    field(38, "分期付款附加手续费", 458, 12),
    field(39, "分期付款期数", 471, 2),
    field(40, "交易介质", 474, 1),
];

/// A versioned fixed-width layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZmLayout {
    pub version: &'static str,
    pub fields: &'static [FixedField],
}

/// Every known ZM layout, newest last.
pub const ZM_LAYOUTS: &[ZmLayout] = &[ZmLayout {
    version: "zm-40",
    fields: &ZM_40_FIELDS,
}];

impl ZmLayout {
    pub fn by_version(version: &str) -> Option<ZmLayout> {
        ZM_LAYOUTS
            .iter()
            .copied()
            .find(|layout| layout.version == version)
    }

    /// The 40-field layout (the tail after field 40 is ignored).
    pub fn zm_40() -> ZmLayout {
        ZM_LAYOUTS[0]
    }

    pub fn field(&self, name: &str) -> Option<FixedField> {
        self.fields.iter().copied().find(|field| field.name == name)
    }

    /// Bytes a line needs to hold every field.
    pub fn length_min(&self) -> usize {
        self.fields.iter().map(FixedField::end).max().unwrap_or(0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnionPayOptions {
    pub layout: ZmLayout,
    /// The settle date (清算日期, `settleDate`); when `None`, read from the
    /// file name (`INN` + `yymmdd`), else the file is refused.
    pub business_date: Option<Date>,
    /// 交易代码 values of payments. Default `S22` (消费), unverified.
    pub payment_codes: Vec<String>,
    /// 交易代码 values of refunds. Default `S30` (退款), unverified.
    pub refund_codes: Vec<String>,
    /// 交易代码 values to skip. Any code in no list is an error.
    pub ignored_codes: Vec<String>,
    /// Default minor units (zero-padded 分), unverified.
    pub amount_unit: AmountUnit,
    pub currency: Currency,
}

impl Default for UnionPayOptions {
    fn default() -> Self {
        UnionPayOptions {
            layout: ZmLayout::zm_40(),
            business_date: None,
            payment_codes: vec!["S22".into()],
            refund_codes: vec!["S30".into()],
            ignored_codes: Vec::new(),
            amount_unit: AmountUnit::Minor,
            currency: Currency::CNY,
        }
    }
}

/// The layout fields this parser reads.
struct Fields {
    code: FixedField,
    transmitted_at: FixedField,
    amount: FixedField,
    query_id: FixedField,
    merchant_order_id: FixedField,
    fee: FixedField,
    original_query_id: FixedField,
}

/// A streaming parser of one UnionPay ZM file.
pub struct UnionPayZm<R> {
    file: String,
    lines: LineReader<R>,
    fields: Fields,
    options: UnionPayOptions,
    business_date: Date,
    finished: bool,
}

/// The settle date in a ZM file name: `INN` + `yymmdd` (e.g.
/// `INN19061788ZM_777290058110048` → 2019-06-17). Unverified convention.
pub fn business_date_from_file_name(name: &str) -> Option<Date> {
    let start = name.find("INN")? + "INN".len();
    let digits = name.get(start..start + 6)?;
    if !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    let number = |range: std::ops::Range<usize>| digits.get(range)?.parse::<u8>().ok();
    let year = 2000 + i32::from(number(0..2)?);
    let month = Month::try_from(number(2..4)?).ok()?;
    Date::from_calendar_date(year, month, number(4..6)?).ok()
}

impl<R: BufRead> UnionPayZm<R> {
    /// Checks the layout and finds the business date before any line.
    pub fn new(
        file: impl Into<String>,
        input: R,
        options: UnionPayOptions,
    ) -> Result<Self, StatementError> {
        let file = file.into();
        let layout_field = |name: &'static str| {
            options.layout.field(name).ok_or_else(|| {
                let reason = format!("layout {} has no field {name}", options.layout.version);
                StatementError::new(&file, ErrorKind::InvalidMapping { reason })
            })
        };
        let fields = Fields {
            code: layout_field("交易代码")?,
            transmitted_at: layout_field("交易传输时间")?,
            amount: layout_field("交易金额")?,
            query_id: layout_field("查询流水号")?,
            merchant_order_id: layout_field("商户订单号")?,
            fee: layout_field("商户手续费")?,
            original_query_id: layout_field("原交易查询流水号")?,
        };
        let file_name = Path::new(&file).file_name().and_then(|name| name.to_str());
        let business_date = options
            .business_date
            .or_else(|| file_name.and_then(business_date_from_file_name))
            .ok_or_else(|| StatementError::new(&file, ErrorKind::BusinessDateUnknown))?;
        Ok(UnionPayZm {
            file,
            lines: LineReader::new(input),
            fields,
            options,
            business_date,
            finished: false,
        })
    }

    pub fn business_date(&self) -> Date {
        self.business_date
    }

    fn next_record(&mut self) -> Result<Option<StatementRecord>, StatementError> {
        loop {
            let more = self.lines.advance().map_err(|kind| {
                StatementError::at(&self.file, self.lines.line_number(), None, kind)
            })?;
            if !more {
                return Ok(None);
            }
            let line = self.lines.content();
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            if let Some(record) = self.parse_line(line, self.lines.line_number())? {
                return Ok(Some(record));
            }
        }
    }

    /// One line; `None` for a line whose code is to be ignored.
    fn parse_line(
        &self,
        bytes: &[u8],
        number: u64,
    ) -> Result<Option<StatementRecord>, StatementError> {
        let line = FixedLine {
            file: &self.file,
            bytes,
            number,
        };
        line.check_length(&self.options.layout)?;
        let (fields, options) = (&self.fields, &self.options);
        let code = line.text(fields.code)?;
        let Some(kind) = self.kind_of(&code).map_err(line.at(fields.code))? else {
            return Ok(None);
        };
        let amount_text = line.text(fields.amount)?;
        let amount = parse_amount(&amount_text, options.currency, options.amount_unit)
            .and_then(|amount| require_non_negative(amount, &amount_text))
            .map_err(line.at(fields.amount))?;
        let fee = parse_fee(
            &line.text(fields.fee)?,
            options.currency,
            options.amount_unit,
        )
        .map_err(line.at(fields.fee))?;
        let occurred_at = transmission_time(&line.text(fields.transmitted_at)?, self.business_date)
            .map_err(line.at(fields.transmitted_at))?;
        let merchant_order_id = line.required(fields.merchant_order_id)?;
        let query_id = line.required(fields.query_id)?;
        // A refund's 商户订单号 is the refund request's own order id; the
        // payment it refunds is named by 原交易查询流水号 only.
        let (channel_transaction_id, merchant_refund_id, channel_refund_id) = match kind {
            RecordKind::Payment => (query_id, None, None),
            RecordKind::Refund => (
                line.required(fields.original_query_id)?,
                Some(merchant_order_id.clone()),
                Some(query_id),
            ),
        };
        Ok(Some(StatementRecord {
            line: number,
            kind,
            merchant_order_id,
            channel_transaction_id,
            merchant_refund_id,
            channel_refund_id,
            amount,
            requested_amount: amount,
            fee,
            status: RecordStatus::Success,
            channel_status: None,
            occurred_at,
            business_date: self.business_date,
        }))
    }

    fn kind_of(&self, code: &str) -> Result<Option<RecordKind>, ErrorKind> {
        let listed = |codes: &[String]| codes.iter().any(|listed| listed == code);
        if listed(&self.options.payment_codes) {
            Ok(Some(RecordKind::Payment))
        } else if listed(&self.options.refund_codes) {
            Ok(Some(RecordKind::Refund))
        } else if listed(&self.options.ignored_codes) {
            Ok(None)
        } else {
            Err(ErrorKind::UnknownValue {
                text: code.to_owned(),
            })
        }
    }
}

impl<R: BufRead> Iterator for UnionPayZm<R> {
    type Item = Result<StatementRecord, StatementError>;

    /// Records in file order. After an error the iterator ends.
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

/// One physical line of a fixed-width file, sliced by bytes.
struct FixedLine<'a> {
    file: &'a str,
    bytes: &'a [u8],
    number: u64,
}

impl FixedLine<'_> {
    fn at(&self, field: FixedField) -> impl Fn(ErrorKind) -> StatementError + '_ {
        move |kind| StatementError::at(self.file, self.number, Some(field.name), kind)
    }

    /// A line too short for the layout names the first field it cuts.
    fn check_length(&self, layout: &ZmLayout) -> Result<(), StatementError> {
        let needed = layout.length_min();
        if self.bytes.len() >= needed {
            return Ok(());
        }
        let cut = layout
            .fields
            .iter()
            .find(|field| field.end() > self.bytes.len());
        let kind = ErrorKind::LineTooShort {
            length: self.bytes.len(),
            needed,
        };
        Err(StatementError::at(
            self.file,
            self.number,
            cut.map(|field| field.name),
            kind,
        ))
    }

    /// The field's bytes decoded from GBK, padding trimmed.
    fn text(&self, field: FixedField) -> Result<String, StatementError> {
        let bytes = self
            .bytes
            .get(field.offset..field.end())
            .unwrap_or_default();
        let text = ENCODING.decode(bytes).map_err(self.at(field))?;
        Ok(text.trim().to_owned())
    }

    fn required(&self, field: FixedField) -> Result<String, StatementError> {
        let text = self.text(field)?;
        if text.is_empty() {
            return Err(self.at(field)(ErrorKind::EmptyField));
        }
        Ok(text)
    }
}

/// 商户手续费: digits with an optional leading `D` (debit: charged to the
/// merchant, positive) or `C` (credit: given back, negative), or a sign.
fn parse_fee(text: &str, currency: Currency, unit: AmountUnit) -> Result<Money, ErrorKind> {
    let (negative, digits) = match text.as_bytes().first() {
        Some(b'D') => (false, &text[1..]),
        Some(b'C') => (true, &text[1..]),
        _ => (false, text),
    };
    let fee = parse_amount(digits, currency, unit)?;
    if negative {
        fee.checked_neg().map_err(|_| ErrorKind::Overflow)
    } else {
        Ok(fee)
    }
}

/// 交易传输时间 is `MMDDhhmmss`, without a year: the year is the business
/// date's, or the one before when that would put the time after the
/// business date (a December transaction settled in January).
fn transmission_time(text: &str, business_date: Date) -> Result<PrimitiveDateTime, ErrorKind> {
    let invalid = || ErrorKind::InvalidDateTime {
        text: text.to_owned(),
    };
    if text.len() != 10 || !text.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(invalid());
    }
    let number = |start: usize| {
        text.get(start..start + 2)
            .and_then(|digits| digits.parse::<u8>().ok())
    };
    let (Some(month), Some(day), Some(hour), Some(minute), Some(second)) =
        (number(0), number(2), number(4), number(6), number(8))
    else {
        return Err(invalid());
    };
    let month = Month::try_from(month).map_err(|_| invalid())?;
    let time = Time::from_hms(hour, minute, second).map_err(|_| invalid())?;
    let latest = business_date.next_day().unwrap_or(business_date);
    let year = business_date.year();
    let date = match Date::from_calendar_date(year, month, day) {
        Ok(date) if date <= latest => date,
        _ => Date::from_calendar_date(year - 1, month, day).map_err(|_| invalid())?,
    };
    Ok(PrimitiveDateTime::new(date, time))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::{date, datetime};

    #[test]
    fn layout_offsets_leave_one_separator_byte() {
        let layout = ZmLayout::zm_40();
        for pair in layout.fields.windows(2) {
            assert_eq!(pair[0].end() + 1, pair[1].offset, "{}", pair[1].name);
        }
        assert_eq!(layout.length_min(), 475);
    }

    #[test]
    fn settle_date_comes_from_the_file_name() {
        assert_eq!(
            business_date_from_file_name("INN19061788ZM_777290058110048"),
            Some(date!(2019 - 06 - 17))
        );
        assert_eq!(business_date_from_file_name("ZM_777290058110048"), None);
        assert_eq!(business_date_from_file_name("INN19133188ZM_1"), None);
    }

    #[test]
    fn the_year_of_a_transmission_time_is_inferred() {
        let settled = date!(2020 - 01 - 02);
        assert_eq!(
            transmission_time("1231235959", settled).unwrap(),
            datetime!(2019-12-31 23:59:59)
        );
        assert_eq!(
            transmission_time("0101000001", settled).unwrap(),
            datetime!(2020-01-01 00:00:01)
        );
        assert!(transmission_time("1332000000", settled).is_err());
        assert!(transmission_time("01010000", settled).is_err());
    }

    #[test]
    fn fees_carry_debit_or_credit_letters() {
        let fee = |text| {
            parse_fee(text, Currency::CNY, AmountUnit::Minor)
                .unwrap()
                .amount_minor()
        };
        assert_eq!(fee("D000000000012"), 12);
        assert_eq!(fee("C000000000012"), -12);
        assert_eq!(fee("0000000000012"), 12);
        assert!(parse_fee("", Currency::CNY, AmountUnit::Minor).is_err());
    }
}
