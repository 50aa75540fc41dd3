//! UnionPay ZM fixed width (GBK), sliced by bytes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;

use common::{cny, collect, fixture, records_then_error};
use statements::{
    AmountUnit, Format, Options, RecordKind, RecordStatus, UnionPayOptions, UnionPayZm, open,
    open_with, read,
};
use time::macros::{date, datetime};

const ZM_FILE: &str = "INN19061788ZM_777290058110048";

#[test]
fn zm_file_gives_payments_and_refunds() {
    let records = collect(open(&fixture(ZM_FILE), &Format::UnionPayZm).unwrap()).unwrap();
    assert_eq!(records.len(), 3);
    let payment = &records[0];
    assert_eq!(payment.line, 1);
    assert_eq!(payment.kind, RecordKind::Payment);
    assert_eq!(payment.merchant_order_id, "CO20190616000001");
    assert_eq!(payment.channel_transaction_id, "201906162359590123456");
    assert_eq!(payment.amount, cny(1000));
    assert_eq!(payment.fee, cny(6));
    assert_eq!(payment.status, RecordStatus::Success);
    assert_eq!(payment.occurred_at, datetime!(2019-06-16 23:59:59));
    assert_eq!(
        payment.business_date,
        date!(2019 - 06 - 17),
        "the settle date of the file name"
    );

    // The refund line carries GBK text (账单号码) before 原交易查询流水号:
    // read correctly only when sliced by bytes.
    let refund = &records[1];
    assert_eq!(refund.kind, RecordKind::Refund);
    assert_eq!(
        refund.channel_transaction_id,
        payment.channel_transaction_id
    );
    assert_eq!(refund.merchant_order_id, "RF20190617000001");
    assert_eq!(
        refund.merchant_refund_id.as_deref(),
        Some("RF20190617000001")
    );
    assert_eq!(
        refund.channel_refund_id.as_deref(),
        Some("201906170930000654321")
    );
    assert_eq!(refund.amount, cny(500));
    assert_eq!(refund.fee, cny(-3));
    assert_eq!(records[2].amount, cny(12_345));
    assert_eq!(records[2].fee, cny(74));
}

#[test]
fn an_explicit_settle_date_wins() {
    let options = Options {
        business_date: Some(date!(2019 - 06 - 18)),
        ..Options::default()
    };
    let records =
        collect(open_with(&fixture(ZM_FILE), &Format::UnionPayZm, options).unwrap()).unwrap();
    assert!(
        records
            .iter()
            .all(|record| record.business_date == date!(2019 - 06 - 18))
    );
}

#[test]
fn without_a_settle_date_the_file_is_refused() {
    let bytes = std::fs::read(fixture(ZM_FILE)).unwrap();
    let error = read(
        "zm.txt",
        &bytes[..],
        &Format::UnionPayZm,
        Options::default(),
    )
    .err()
    .unwrap();
    assert_eq!(error.code(), "BUSINESS_DATE_UNKNOWN");
    assert_eq!(error.file(), "zm.txt");
}

#[test]
fn unknown_codes_are_refused_unless_ignored() {
    let path = fixture("unionpay_unknown_code.zm");
    let options = Options {
        business_date: Some(date!(2019 - 06 - 17)),
        ..Options::default()
    };
    let (records, error) =
        records_then_error(open_with(&path, &Format::UnionPayZm, options).unwrap());
    assert_eq!(records.len(), 1);
    let error = error.unwrap();
    assert_eq!(error.code(), "UNKNOWN_VALUE");
    assert_eq!((error.line(), error.field()), (Some(2), Some("交易代码")));

    let bytes = std::fs::read(&path).unwrap();
    let options = UnionPayOptions {
        business_date: Some(date!(2019 - 06 - 17)),
        ignored_codes: vec!["S31".into()],
        ..UnionPayOptions::default()
    };
    let records = collect(UnionPayZm::new("zm", &bytes[..], options).unwrap()).unwrap();
    assert_eq!(records.len(), 1);
}

#[test]
fn codes_and_amount_unit_are_parameters() {
    let bytes = std::fs::read(fixture(ZM_FILE)).unwrap();
    let options = UnionPayOptions {
        payment_codes: vec!["S22".into(), "S30".into()],
        refund_codes: Vec::new(),
        amount_unit: AmountUnit::Major,
        ..UnionPayOptions::default()
    };
    let name = Path::new("/incoming").join(ZM_FILE).display().to_string();
    let records = collect(UnionPayZm::new(name, &bytes[..], options).unwrap()).unwrap();
    assert!(
        records
            .iter()
            .all(|record| record.kind == RecordKind::Payment)
    );
    assert_eq!(
        records[0].amount,
        cny(100_000),
        "000000001000 read as 1000 yuan"
    );
}

#[test]
fn invalid_gbk_in_a_field_names_the_field() {
    let mut bytes = std::fs::read(fixture(ZM_FILE)).unwrap();
    // 商户订单号 starts at byte 112 of line 1.
    bytes[112] = 0x81;
    bytes[113] = 0x20;
    let options = Options {
        business_date: Some(date!(2019 - 06 - 17)),
        ..Options::default()
    };
    let (_, error) =
        records_then_error(read("zm", &bytes[..], &Format::UnionPayZm, options).unwrap());
    let error = error.unwrap();
    assert_eq!(error.code(), "INVALID_ENCODING");
    assert_eq!((error.line(), error.field()), (Some(1), Some("商户订单号")));
}
