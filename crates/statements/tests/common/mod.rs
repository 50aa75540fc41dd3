//! Shared helpers of the integration tests: fixture paths and a writer of
//! WeChat ALL bills (for the streaming test and the round-trip property).
#![allow(dead_code)]

use std::io::Write;
use std::path::PathBuf;

use money::{Currency, Money, RoundingMode, divide_rounded};
use statements::{RecordKind, RecordStatus, StatementError, StatementRecord};
use time::PrimitiveDateTime;
use time::macros::format_description;

pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

pub fn example_mapping(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../config/statements")
        .join(name)
}

pub fn cny(amount_minor: i64) -> Money {
    Money::new(amount_minor, Currency::CNY)
}

/// All records, or the first error.
pub fn collect<I>(records: I) -> Result<Vec<StatementRecord>, StatementError>
where
    I: Iterator<Item = Result<StatementRecord, StatementError>>,
{
    records.collect()
}

/// Splits an iterator's output into its records and its final error.
pub fn records_then_error<I>(records: I) -> (Vec<StatementRecord>, Option<StatementError>)
where
    I: Iterator<Item = Result<StatementRecord, StatementError>>,
{
    let mut found = Vec::new();
    for result in records {
        match result {
            Ok(record) => found.push(record),
            Err(error) => return (found, Some(error)),
        }
    }
    (found, None)
}

pub const WECHAT_ALL_HEADER: &str = "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注";
pub const WECHAT_ALL_SUMMARY_HEADER: &str =
    "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额";

/// One row of a generated WeChat ALL bill. `fee_sub_minor` is in 10^-5
/// yuan (WeChat prints 5 decimals); `status` is the printed word.
#[derive(Debug, Clone)]
pub struct WechatRow {
    pub kind: RecordKind,
    pub merchant_order_id: String,
    pub channel_transaction_id: String,
    pub merchant_refund_id: String,
    pub channel_refund_id: String,
    pub amount_minor: i64,
    pub requested_minor: i64,
    pub fee_sub_minor: i64,
    pub status: &'static str,
    pub occurred_at: PrimitiveDateTime,
}

fn yuan(amount_minor: i64) -> String {
    cny(amount_minor).format_major()
}

/// A value in 10^-5 yuan with its 5 decimals: `-0.01200`.
pub fn five_decimals(value: i64) -> String {
    let sign = if value < 0 { "-" } else { "" };
    let magnitude = value.unsigned_abs();
    format!("{sign}{}.{:05}", magnitude / 100_000, magnitude % 100_000)
}

fn time_text(occurred_at: PrimitiveDateTime) -> String {
    let format = format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    occurred_at.format(format).unwrap()
}

pub fn write_wechat_row(out: &mut impl Write, row: &WechatRow) -> std::io::Result<()> {
    let zero = "0.00".to_owned();
    let refund = row.kind == RecordKind::Refund;
    let (settled, order_amount, refund_amount, requested_refund) = if refund {
        (
            zero.clone(),
            zero.clone(),
            yuan(row.amount_minor),
            yuan(row.requested_minor),
        )
    } else {
        (
            yuan(row.amount_minor),
            yuan(row.requested_minor),
            zero.clone(),
            zero,
        )
    };
    let (trade_state, refund_ids, refund_type, refund_status) = if refund {
        (
            "REFUND",
            [
                row.channel_refund_id.as_str(),
                row.merchant_refund_id.as_str(),
            ],
            "ORIGINAL",
            row.status,
        )
    } else {
        (row.status, ["0", "0"], "", "")
    };
    let time = time_text(row.occurred_at);
    let fee = five_decimals(row.fee_sub_minor);
    let fields = [
        time.as_str(),
        "wx2421b1c4370ec43b",
        "1900000109",
        "0",
        "",
        &row.channel_transaction_id,
        &row.merchant_order_id,
        "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o",
        "JSAPI",
        trade_state,
        "CFT",
        "CNY",
        &settled,
        "0.00",
        refund_ids[0],
        refund_ids[1],
        &refund_amount,
        "0.00",
        refund_type,
        refund_status,
        "商品",
        "",
        &fee,
        "0.60%",
        &order_amount,
        &requested_refund,
        "",
    ];
    let line: Vec<String> = fields.iter().map(|field| format!("`{field}")).collect();
    writeln!(out, "{}", line.join(","))
}

/// Running totals of a generated bill, to write its summary.
#[derive(Debug, Default, Clone, Copy)]
pub struct WechatTotals {
    pub count: u64,
    pub settled_minor: i64,
    pub refund_minor: i64,
    pub fee_sub_minor: i64,
    pub order_minor: i64,
    pub requested_refund_minor: i64,
}

impl WechatTotals {
    pub fn add(&mut self, row: &WechatRow) {
        self.count += 1;
        self.fee_sub_minor += row.fee_sub_minor;
        match row.kind {
            RecordKind::Payment => {
                self.settled_minor += row.amount_minor;
                self.order_minor += row.requested_minor;
            }
            RecordKind::Refund => {
                self.refund_minor += row.amount_minor;
                self.requested_refund_minor += row.requested_minor;
            }
        }
    }

    pub fn write_summary(&self, out: &mut impl Write) -> std::io::Result<()> {
        writeln!(out, "{WECHAT_ALL_SUMMARY_HEADER}")?;
        writeln!(
            out,
            "`{},`{},`{},`0.00,`{},`{},`{}",
            self.count,
            yuan(self.settled_minor),
            yuan(self.refund_minor),
            five_decimals(self.fee_sub_minor),
            yuan(self.order_minor),
            yuan(self.requested_refund_minor)
        )
    }
}

/// What the parser must make of a generated row at `line`.
pub fn expected_record(row: &WechatRow, line: u64) -> StatementRecord {
    let refund = row.kind == RecordKind::Refund;
    let status = match row.status {
        "SUCCESS" => RecordStatus::Success,
        "PROCESSING" | "CHANGE" => RecordStatus::Processing,
        _ => RecordStatus::Failed,
    };
    let fee_minor =
        divide_rounded(i128::from(row.fee_sub_minor), 1000, RoundingMode::HalfUp).unwrap();
    StatementRecord {
        line,
        kind: row.kind,
        merchant_order_id: row.merchant_order_id.clone(),
        channel_transaction_id: row.channel_transaction_id.clone(),
        merchant_refund_id: refund.then(|| row.merchant_refund_id.clone()),
        channel_refund_id: refund.then(|| row.channel_refund_id.clone()),
        amount: cny(row.amount_minor),
        requested_amount: cny(row.requested_minor),
        fee: cny(i64::try_from(fee_minor).unwrap()),
        status,
        channel_status: Some(row.status.to_owned()),
        occurred_at: row.occurred_at,
        business_date: row.occurred_at.date(),
    }
}
