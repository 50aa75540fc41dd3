//! Generic CSV/TSV by mapping file: the two examples and mapping validation.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{cny, collect, example_mapping, fixture, records_then_error};
use statements::{Format, Mapping, Options, RecordKind, RecordStatus, open, open_with, read};
use time::macros::{date, datetime};

fn format(name: &str) -> Format {
    Format::Mapping(example_mapping(name))
}

#[test]
fn format_names_parse() {
    assert_eq!("wechat".parse::<Format>().unwrap(), Format::Wechat);
    assert_eq!("alipay".parse::<Format>().unwrap(), Format::Alipay);
    assert_eq!("unionpay-zm".parse::<Format>().unwrap(), Format::UnionPayZm);
    assert_eq!(
        "mapping:config/statements/example-bank-gbk.toml"
            .parse::<Format>()
            .unwrap(),
        Format::Mapping("config/statements/example-bank-gbk.toml".into())
    );
    assert_eq!(
        "csv".parse::<Format>().err().unwrap().code(),
        "UNKNOWN_FORMAT"
    );
    assert_eq!(
        "mapping:".parse::<Format>().err().unwrap().code(),
        "UNKNOWN_FORMAT"
    );
}

#[test]
fn gbk_bank_csv_with_preamble_kinds_statuses_and_trailer() {
    let records =
        collect(open(&fixture("bank_gbk.csv"), &format("example-bank-gbk.toml")).unwrap()).unwrap();
    assert_eq!(records.len(), 3, "the 合计 trailer is not a record");
    let first = &records[0];
    assert_eq!(first.line, 4);
    assert_eq!(first.kind, RecordKind::Payment);
    assert_eq!(first.merchant_order_id, "CO20240301000001");
    assert_eq!(first.channel_transaction_id, "B202403010000001");
    assert_eq!(first.amount, cny(10_000));
    assert_eq!(first.fee, cny(60));
    assert_eq!(first.status, RecordStatus::Success);
    assert_eq!(first.channel_status.as_deref(), Some("成功"));
    assert_eq!(first.occurred_at, datetime!(2024-03-01 09:15:02));
    assert_eq!(first.business_date, date!(2024 - 03 - 01));
    assert_eq!(records[1].status, RecordStatus::Failed);
    let refund = &records[2];
    assert_eq!(refund.kind, RecordKind::Refund);
    assert_eq!(refund.amount, cny(2000));
    assert_eq!(refund.fee, cny(-12));
    assert_eq!(
        refund.merchant_refund_id.as_deref(),
        Some("RF20240301000001")
    );
    assert_eq!(
        refund.business_date,
        date!(2024 - 03 - 02),
        "the bank's settle date, after its cutoff"
    );
}

#[test]
fn utf8_tsv_by_position_with_refunds_by_sign() {
    let records =
        collect(open(&fixture("bank_tsv.tsv"), &format("example-bank-tsv.toml")).unwrap()).unwrap();
    assert_eq!(
        records.len(),
        2,
        "the totals line is dropped by trailer_lines"
    );
    assert_eq!(records[0].line, 2);
    assert_eq!(records[0].kind, RecordKind::Payment);
    assert_eq!(records[0].amount, cny(10_000));
    assert_eq!(records[0].fee, cny(60));
    assert_eq!(records[0].merchant_refund_id, None);
    assert_eq!(records[0].occurred_at, datetime!(2024-03-02 08:30:00));
    let refund = &records[1];
    assert_eq!(refund.kind, RecordKind::Refund);
    assert_eq!(refund.amount, cny(2500));
    assert_eq!(refund.fee, cny(-15));
    assert_eq!(
        refund.merchant_refund_id.as_deref(),
        Some("RF20240302000001")
    );
    assert_eq!(refund.status, RecordStatus::Success);
    assert_eq!(refund.channel_status, None);

    let options = Options {
        business_date: Some(date!(2024 - 03 - 03)),
        ..Options::default()
    };
    let records = collect(
        open_with(
            &fixture("bank_tsv.tsv"),
            &format("example-bank-tsv.toml"),
            options,
        )
        .unwrap(),
    )
    .unwrap();
    assert!(
        records
            .iter()
            .all(|record| record.business_date == date!(2024 - 03 - 03))
    );
}

#[test]
fn a_missing_header_column_is_refused_at_open() {
    let text =
        "\n\n交易日期,交易时间,商户订单号,交易类型,交易金额,手续费,交易状态,退款单号,清算日期\n";
    let bytes = encoding_rs::GBK.encode(text).0.into_owned();
    let error = read(
        "bank.csv",
        &bytes[..],
        &format("example-bank-gbk.toml"),
        Options::default(),
    )
    .err()
    .unwrap();
    assert_eq!(error.code(), "MISSING_COLUMN");
    assert_eq!((error.line(), error.field()), (Some(3), Some("银行流水号")));
}

#[test]
fn an_unmapped_status_is_refused() {
    let text = "x\ny\n交易日期,交易时间,商户订单号,银行流水号,交易类型,交易金额,手续费,交易状态,退款单号,清算日期,备注\n2024-03-01,09:15:02,CO1,B1,消费,1.00,0.00,撤销,,20240301,\n";
    let bytes = encoding_rs::GBK.encode(text).0.into_owned();
    let reader = read(
        "bank.csv",
        &bytes[..],
        &format("example-bank-gbk.toml"),
        Options::default(),
    )
    .unwrap();
    let (_, error) = records_then_error(reader);
    let error = error.unwrap();
    assert_eq!(error.code(), "UNKNOWN_VALUE");
    assert_eq!((error.line(), error.field()), (Some(4), Some("交易状态")));
}

const VALID: &str = r#"
name = "t"
currency = "CNY"
date_time_format = "[year]-[month]-[day] [hour]:[minute]:[second]"
default_status = "success"
refund_sign = "negative"
[columns]
merchant_order_id = "order"
channel_transaction_id = "id"
amount = "amount"
occurred_at = "time"
"#;

#[test]
fn mappings_are_validated_before_any_statement_line() {
    assert!(Mapping::from_toml(VALID, "valid.toml").is_ok());
    let cases = [
        VALID.replace("name = \"t\"", "name = \"t\"\nsurprise = 1"),
        VALID.replace("currency = \"CNY\"", "currency = \"XYZ\""),
        VALID.replace("[hour]", "[hour"),
        VALID.replace("default_status = \"success\"", ""),
        VALID.replace("refund_sign = \"negative\"", "refund_sign = \"positive\""),
        VALID.replace("name = \"t\"", "name = \"t\"\nheader = false"),
        VALID.replace("name = \"t\"", "name = \"t\"\ndelimiter = \";;\""),
        VALID.replace("name = \"t\"", "name = \"t\"\nencoding = \"latin-9\""),
        VALID.replace("name = \"t\"", "name = \"t\"\ntrailer_lines = 99"),
        VALID.replace(
            "amount = \"amount\"",
            "amount = \"amount\"\nkind = \"kind\"",
        ),
        VALID.replace(
            "amount = \"amount\"",
            "amount = \"amount\"\nbusiness_date = \"day\"",
        ),
    ];
    for (index, text) in cases.iter().enumerate() {
        let error = Mapping::from_toml(text, "case.toml")
            .err()
            .unwrap_or_else(|| panic!("case {index} must fail"));
        assert_eq!(error.code(), "INVALID_MAPPING", "case {index}: {error}");
        assert_eq!(error.file(), "case.toml");
    }
}

#[test]
fn the_example_mappings_load() {
    let gbk = Mapping::load(&example_mapping("example-bank-gbk.toml")).unwrap();
    assert_eq!(gbk.name(), "Example Bank (GBK CSV)");
    assert_eq!(gbk.encoding(), statements::TextEncoding::Gbk);
    let tsv = Mapping::load(&example_mapping("example-bank-tsv.toml")).unwrap();
    assert_eq!(tsv.encoding(), statements::TextEncoding::Utf8);
}
