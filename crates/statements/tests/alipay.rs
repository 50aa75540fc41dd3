//! Alipay 业务明细 (GBK): rows, refunds, footers, header tolerance.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{cny, collect, fixture, records_then_error};
use statements::{
    AlipayBill, AlipayOptions, FeeSign, Format, Options, RecordKind, RecordStatus, open, read,
};
use time::macros::{date, datetime};

fn gbk(text: &str) -> Vec<u8> {
    encoding_rs::GBK.encode(text).0.into_owned()
}

#[test]
fn trade_file_gives_payments_and_refunds() {
    let records = collect(open(&fixture("alipay_trade.csv"), &Format::Alipay).unwrap()).unwrap();
    assert_eq!(records.len(), 5);
    let first = &records[0];
    assert_eq!(first.line, 6);
    assert_eq!(first.kind, RecordKind::Payment);
    assert_eq!(
        first.channel_transaction_id, "2019091622001458860515315453",
        "trailing TAB stripped"
    );
    assert_eq!(first.merchant_order_id, "service_1568601259302");
    assert_eq!(first.amount, cny(1));
    assert_eq!(first.fee, cny(0));
    assert_eq!(first.status, RecordStatus::Success);
    assert_eq!(first.channel_status, None);
    assert_eq!(
        first.occurred_at,
        datetime!(2019-09-16 10:55:23),
        "完成时间"
    );
    assert_eq!(first.business_date, date!(2019 - 09 - 16));

    assert_eq!(records[1].amount, cny(1000));
    assert_eq!(
        records[1].fee,
        cny(6),
        "服务费 printed -0.06 is a fee charged"
    );
    // The note "门店, 二楼" is quoted: the row keeps its 25 fields.
    assert_eq!(records[2].amount, cny(2550));
    assert_eq!(records[2].line, 8);

    let refund = &records[3];
    assert_eq!(refund.kind, RecordKind::Refund);
    assert_eq!(refund.amount, cny(1), "refund amounts are positive");
    assert_eq!(refund.requested_amount, cny(1));
    assert_eq!(refund.channel_transaction_id, first.channel_transaction_id);
    assert_eq!(refund.merchant_order_id, first.merchant_order_id);
    assert_eq!(
        refund.merchant_refund_id.as_deref(),
        Some("re_test_1568602607356")
    );
    assert_eq!(refund.channel_refund_id, None);
    assert_eq!(refund.occurred_at, datetime!(2019-09-16 10:56:48));
    assert_eq!(records[4].amount, cny(500));
    assert_eq!(records[4].fee, cny(-3), "a fee given back on a refund");
}

#[test]
fn fee_sign_is_an_option() {
    let file = std::fs::read(fixture("alipay_trade.csv")).unwrap();
    let options = AlipayOptions {
        fee_sign: FeeSign::ChargedPositive,
        ..AlipayOptions::default()
    };
    let records = collect(AlipayBill::new("alipay.csv", &file[..], options).unwrap()).unwrap();
    assert_eq!(records[1].fee, cny(-6));
}

#[test]
fn footer_totals_are_checked() {
    let (records, error) =
        records_then_error(open(&fixture("alipay_footer_mismatch.csv"), &Format::Alipay).unwrap());
    assert_eq!(records.len(), 5);
    let error = error.unwrap();
    assert_eq!(error.code(), "SUMMARY_MISMATCH");
    assert_eq!(error.line(), Some(12));
    assert_eq!(error.field(), Some("交易合计"));
    assert!(error.file().ends_with("alipay_footer_mismatch.csv"));
}

fn minimal(header: &str, rows: &[&str], footer: &str) -> Vec<u8> {
    let mut text = format!("#支付宝业务明细查询\n{header}\n");
    for row in rows {
        text.push_str(row);
        text.push('\n');
    }
    text.push_str(footer);
    gbk(&text)
}

const HALF_WIDTH_HEADER: &str = "支付宝交易号,商户订单号,业务类型,完成时间,订单金额(元),商家实收(元),退款批次号/请求号,服务费(元)";

#[test]
fn headers_match_with_half_width_parentheses_and_in_any_order() {
    let header = "商户订单号,支付宝交易号,业务类型,完成时间,订单金额(元),商家实收(元),退款批次号/请求号,服务费(元)";
    let bytes = minimal(
        header,
        &["CO1\t,2019\t,交易\t,2019-09-16 10:00:00,1.00,1.00,\t,0.00"],
        "#交易合计：1笔，商家实收共1.00元\n",
    );
    let records =
        collect(read("half.csv", &bytes[..], &Format::Alipay, Options::default()).unwrap())
            .unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].merchant_order_id, "CO1");
    assert_eq!(records[0].channel_transaction_id, "2019");
}

#[test]
fn a_refund_printed_positive_is_refused() {
    let bytes = minimal(
        HALF_WIDTH_HEADER,
        &["2019\t,CO1\t,退款\t,2019-09-16 10:00:00,1.00,1.00,RF1\t,0.00"],
        "",
    );
    let (_, error) = records_then_error(
        read("sign.csv", &bytes[..], &Format::Alipay, Options::default()).unwrap(),
    );
    let error = error.unwrap();
    assert_eq!(error.code(), "INVALID_AMOUNT");
    assert_eq!(
        (error.line(), error.field()),
        (Some(3), Some("商家实收(元)"))
    );
}

#[test]
fn an_unknown_business_type_is_refused() {
    let bytes = minimal(
        HALF_WIDTH_HEADER,
        &["2019\t,CO1\t,分账\t,2019-09-16 10:00:00,1.00,1.00,\t,0.00"],
        "",
    );
    let (_, error) = records_then_error(
        read("type.csv", &bytes[..], &Format::Alipay, Options::default()).unwrap(),
    );
    let error = error.unwrap();
    assert_eq!(error.code(), "UNKNOWN_VALUE");
    assert_eq!(error.field(), Some("业务类型"));
}

#[test]
fn an_unreadable_footer_is_an_error() {
    let bytes = minimal(HALF_WIDTH_HEADER, &[], "#交易合计：若干笔\n");
    let (_, error) = records_then_error(
        read(
            "footer.csv",
            &bytes[..],
            &Format::Alipay,
            Options::default(),
        )
        .unwrap(),
    );
    assert_eq!(error.unwrap().code(), "FOOTER_UNREADABLE");
}

#[test]
fn a_missing_column_is_refused_at_open() {
    let header =
        "支付宝交易号,商户订单号,业务类型,完成时间,订单金额(元),退款批次号/请求号,服务费(元)";
    let bytes = minimal(header, &[], "");
    let error = read(
        "missing.csv",
        &bytes[..],
        &Format::Alipay,
        Options::default(),
    )
    .err()
    .unwrap();
    assert_eq!(error.code(), "MISSING_COLUMN");
    assert_eq!((error.line(), error.field()), (Some(2), Some("商家实收")));
}
