//! Malformed files: every error names the file, the line and the field.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{example_mapping, fixture, records_then_error};
use statements::{Format, Options, StatementError, open, read};

fn assert_place(error: &StatementError, code: &str, file: &str, line: u64, field: &str) {
    assert_eq!(error.code(), code, "{error}");
    assert!(error.file().ends_with(file), "{error}");
    assert_eq!(error.line(), Some(line), "{error}");
    assert_eq!(error.field(), Some(field), "{error}");
    let text = error.to_string();
    for part in [file, &format!("line {line}"), field, code] {
        assert!(text.contains(part), "{text:?} lacks {part:?}");
    }
}

fn last_error(name: &str, format: &Format) -> StatementError {
    let (_, error) = records_then_error(open(&fixture(name), format).unwrap());
    error.expect("the file must fail")
}

#[test]
fn wechat_bad_amount() {
    let error = last_error("wechat_bad_amount.csv", &Format::Wechat);
    assert_place(
        &error,
        "INVALID_AMOUNT",
        "wechat_bad_amount.csv",
        3,
        "应结订单金额",
    );
}

#[test]
fn wechat_bad_date() {
    let error = last_error("wechat_bad_date.csv", &Format::Wechat);
    assert_place(
        &error,
        "INVALID_DATE_TIME",
        "wechat_bad_date.csv",
        4,
        "交易时间",
    );
}

#[test]
fn wechat_missing_column_fails_at_open() {
    let error = open(&fixture("wechat_missing_column.csv"), &Format::Wechat)
        .err()
        .unwrap();
    assert_place(
        &error,
        "MISSING_COLUMN",
        "wechat_missing_column.csv",
        1,
        "商户订单号",
    );
}

#[test]
fn alipay_invalid_gbk() {
    let error = last_error("alipay_invalid_gbk.csv", &Format::Alipay);
    assert_place(
        &error,
        "INVALID_ENCODING",
        "alipay_invalid_gbk.csv",
        7,
        "商品名称",
    );
}

#[test]
fn unionpay_short_line() {
    let format = Format::UnionPayZm;
    let options = Options {
        business_date: Some(time::macros::date!(2019 - 06 - 17)),
        ..Options::default()
    };
    let path = fixture("unionpay_short_line.zm");
    let (records, error) =
        records_then_error(statements::open_with(&path, &format, options).unwrap());
    assert_eq!(records.len(), 1);
    let error = error.unwrap();
    // 300 bytes end inside field 28, 商户代码 (293+15).
    assert_place(
        &error,
        "LINE_TOO_SHORT",
        "unionpay_short_line.zm",
        2,
        "商户代码",
    );
}

#[test]
fn mapped_bad_amount_and_bad_date() {
    let format = Format::Mapping(example_mapping("example-bank-tsv.toml"));
    let text = "20240302\t083000\tCO1\tT1\t10O00\t60\t\nTOTAL\n";
    let (_, error) =
        records_then_error(read("bank.tsv", text.as_bytes(), &format, Options::default()).unwrap());
    assert_place(&error.unwrap(), "INVALID_AMOUNT", "bank.tsv", 1, "column 5");
    let text = "# head\n20240230\t083000\tCO1\tT1\t10000\t60\t\nTOTAL\n";
    let (_, error) =
        records_then_error(read("bank.tsv", text.as_bytes(), &format, Options::default()).unwrap());
    assert_place(
        &error.unwrap(),
        "INVALID_DATE_TIME",
        "bank.tsv",
        2,
        "column 1",
    );
}

#[test]
fn an_overlong_line_names_its_line() {
    let mut text = std::fs::read_to_string(fixture("wechat_success.csv")).unwrap();
    text = text.replacen(
        "`年卡",
        &format!("`{}", "长".repeat(statements::LINE_BYTES_MAX)),
        1,
    );
    let (records, error) = records_then_error(
        read(
            "long.csv",
            text.as_bytes(),
            &Format::Wechat,
            Options::default(),
        )
        .unwrap(),
    );
    assert_eq!(records.len(), 1);
    let error = error.unwrap();
    assert_eq!(error.code(), "LINE_TOO_LONG");
    assert_eq!((error.file(), error.line()), ("long.csv", Some(3)));
}
