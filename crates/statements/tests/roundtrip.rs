//! Property tests: records written in a format and parsed back are the same.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{WECHAT_ALL_HEADER, WechatRow, WechatTotals, cny, expected_record, write_wechat_row};
use money::Money;
use proptest::prelude::*;
use statements::{
    Format, MappedStatement, Mapping, Options, RecordKind, RecordStatus, StatementRecord, read,
};
use time::macros::datetime;
use time::{Duration, PrimitiveDateTime};

fn occurred_at() -> impl Strategy<Value = PrimitiveDateTime> {
    (0i64..86_400).prop_map(|seconds| datetime!(2024-02-29 00:00:00) + Duration::seconds(seconds))
}

fn wechat_row() -> impl Strategy<Value = WechatRow> {
    let kind = prop_oneof![Just(RecordKind::Payment), Just(RecordKind::Refund)];
    (
        kind,
        "[A-Za-z0-9_]{1,32}",
        "[0-9]{28}",
        "[A-Za-z0-9_]{1,32}",
        "[0-9]{29}",
        0i64..100_000_000,
        0i64..1_000_000,
        -50_000i64..5_000_000,
        occurred_at(),
        0usize..4,
    )
        .prop_map(
            |(
                kind,
                order,
                transaction,
                refund,
                channel_refund,
                amount,
                coupon,
                fee,
                at,
                status,
            )| {
                let status = match kind {
                    RecordKind::Payment => ["SUCCESS", "REVOKED", "SUCCESS", "SUCCESS"][status],
                    RecordKind::Refund => {
                        ["SUCCESS", "PROCESSING", "CHANGE", "REFUNDCLOSE"][status]
                    }
                };
                WechatRow {
                    kind,
                    merchant_order_id: order,
                    channel_transaction_id: transaction,
                    merchant_refund_id: refund,
                    channel_refund_id: channel_refund,
                    amount_minor: amount,
                    requested_minor: amount + coupon,
                    fee_sub_minor: fee,
                    status,
                    occurred_at: at,
                }
            },
        )
}

proptest! {
    #[test]
    fn wechat_all_bill_round_trips(rows in prop::collection::vec(wechat_row(), 0..40)) {
        let mut text = Vec::new();
        std::io::Write::write_all(&mut text, WECHAT_ALL_HEADER.as_bytes()).unwrap();
        text.push(b'\n');
        let mut totals = WechatTotals::default();
        for row in &rows {
            write_wechat_row(&mut text, row).unwrap();
            totals.add(row);
        }
        totals.write_summary(&mut text).unwrap();

        let parsed: Vec<StatementRecord> = read("generated.csv", &text[..], &Format::Wechat, Options::default())
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let expected: Vec<StatementRecord> = rows
            .iter()
            .enumerate()
            .map(|(index, row)| expected_record(row, index as u64 + 2))
            .collect();
        prop_assert_eq!(parsed, expected);
    }

    #[test]
    fn a_changed_total_is_always_caught(
        rows in prop::collection::vec(wechat_row(), 1..20),
        delta in prop_oneof![-1_000i64..0, 1i64..1_000],
    ) {
        let mut text = Vec::new();
        std::io::Write::write_all(&mut text, WECHAT_ALL_HEADER.as_bytes()).unwrap();
        text.push(b'\n');
        let mut totals = WechatTotals::default();
        for row in &rows {
            write_wechat_row(&mut text, row).unwrap();
            totals.add(row);
        }
        totals.fee_sub_minor += delta;
        totals.write_summary(&mut text).unwrap();
        let results: Vec<_> = read("generated.csv", &text[..], &Format::Wechat, Options::default()).unwrap().collect();
        prop_assert_eq!(results.len(), rows.len() + 1);
        let last = results.last().unwrap().as_ref().err().unwrap();
        prop_assert_eq!(last.code(), "SUMMARY_MISMATCH");
    }
}

const ROUND_TRIP_MAPPING: &str = r#"
name = "round trip"
encoding = "gbk"
delimiter = ","
currency = "CNY"
date_time_format = "[year]/[month]/[day] [hour]:[minute]:[second]"
amount_unit = "major"
refund_sign = "negative"
fee_sign = "charged-negative"
[columns]
merchant_order_id = "订单号"
channel_transaction_id = "流水号"
merchant_refund_id = "退款号"
kind = "类型"
status = "状态"
amount = "金额"
fee = "手续费"
occurred_at = "时间"
[kinds]
"支付" = "payment"
"退款" = "refund"
[statuses]
"成功" = "success"
"处理中" = "processing"
"失败" = "failed"
"#;

#[derive(Debug, Clone)]
struct BankRow {
    kind: RecordKind,
    order: String,
    transaction: String,
    refund: String,
    amount_minor: i64,
    fee_minor: i64,
    status: RecordStatus,
    occurred_at: PrimitiveDateTime,
}

fn bank_row() -> impl Strategy<Value = BankRow> {
    let kind = prop_oneof![Just(RecordKind::Payment), Just(RecordKind::Refund)];
    let status = prop_oneof![
        Just(RecordStatus::Success),
        Just(RecordStatus::Processing),
        Just(RecordStatus::Failed)
    ];
    (
        kind,
        "[A-Za-z0-9]{1,20}",
        "[0-9]{1,24}",
        "[A-Za-z0-9]{1,20}",
        0i64..10_000_000_000,
        -10_000i64..10_000,
        status,
        occurred_at(),
    )
        .prop_map(
            |(kind, order, transaction, refund, amount_minor, fee_minor, status, occurred_at)| {
                BankRow {
                    kind,
                    order,
                    transaction,
                    refund,
                    amount_minor,
                    fee_minor,
                    status,
                    occurred_at,
                }
            },
        )
}

/// Writes one row as the mapping reads it: refunds negative, fees charged
/// printed negative, an optional quoted note with a comma.
fn bank_line(row: &BankRow) -> String {
    let (kind, sign) = match row.kind {
        RecordKind::Payment => ("支付", ""),
        RecordKind::Refund => ("退款", "-"),
    };
    let status = match row.status {
        RecordStatus::Success => "成功",
        RecordStatus::Processing => "处理中",
        RecordStatus::Failed => "失败",
    };
    let refund = if row.kind == RecordKind::Refund {
        row.refund.as_str()
    } else {
        ""
    };
    let amount = format!("{sign}{}", cny(row.amount_minor).format_major());
    let fee = cny(-row.fee_minor).format_major();
    let time = format!(
        "{}/{:02}/{:02} {:02}:{:02}:{:02}",
        row.occurred_at.year(),
        u8::from(row.occurred_at.month()),
        row.occurred_at.day(),
        row.occurred_at.hour(),
        row.occurred_at.minute(),
        row.occurred_at.second()
    );
    format!(
        "{time},{},{},{refund},{kind},{status},{amount},{fee},\"备注, 含逗号\"",
        row.order, row.transaction
    )
}

proptest! {
    #[test]
    fn mapped_gbk_csv_round_trips(rows in prop::collection::vec(bank_row(), 0..40)) {
        let mut text = String::from("时间,订单号,流水号,退款号,类型,状态,金额,手续费,备注\r\n");
        for row in &rows {
            text.push_str(&bank_line(row));
            text.push_str("\r\n");
        }
        let bytes = encoding_rs::GBK.encode(&text).0.into_owned();
        let mapping = Mapping::from_toml(ROUND_TRIP_MAPPING, "round-trip.toml").unwrap();
        let parsed: Vec<StatementRecord> = MappedStatement::new("bank.csv", &bytes[..], mapping, None)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        prop_assert_eq!(parsed.len(), rows.len());
        for (index, (record, row)) in parsed.iter().zip(&rows).enumerate() {
            prop_assert_eq!(record.line, index as u64 + 2);
            prop_assert_eq!(record.kind, row.kind);
            prop_assert_eq!(&record.merchant_order_id, &row.order);
            prop_assert_eq!(&record.channel_transaction_id, &row.transaction);
            let refund = (row.kind == RecordKind::Refund).then(|| row.refund.clone());
            prop_assert_eq!(&record.merchant_refund_id, &refund);
            prop_assert_eq!(record.amount, cny(row.amount_minor));
            prop_assert_eq!(record.requested_amount, cny(row.amount_minor));
            prop_assert_eq!(record.fee, Money::new(row.fee_minor, money::Currency::CNY));
            prop_assert_eq!(record.status, row.status);
            prop_assert_eq!(record.occurred_at, row.occurred_at);
            prop_assert_eq!(record.business_date, row.occurred_at.date());
        }
    }
}
