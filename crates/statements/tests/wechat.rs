//! WeChat Pay trade bills: ALL, SUCCESS, REFUND, legacy ALL; the summary check.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::fs::File;
use std::io::BufReader;

use common::{cny, collect, fixture, records_then_error};
use money::RoundingMode;
use statements::{
    Format, Options, RecordKind, RecordStatus, WechatBill, WechatBillType, WechatOptions, open,
    open_with, read,
};
use time::macros::{date, datetime};

fn bill_type(name: &str) -> WechatBillType {
    let file = BufReader::new(File::open(fixture(name)).unwrap());
    WechatBill::new(name, file, WechatOptions::default())
        .unwrap()
        .bill_type()
}

#[test]
fn bill_type_is_told_by_the_header() {
    assert_eq!(bill_type("wechat_all.csv"), WechatBillType::All);
    assert_eq!(bill_type("wechat_success.csv"), WechatBillType::Success);
    assert_eq!(bill_type("wechat_refund.csv"), WechatBillType::Refund);
    assert_eq!(
        bill_type("wechat_legacy_all.csv"),
        WechatBillType::LegacyAll
    );
}

#[test]
fn all_bill_gives_payments_and_refunds_to_the_cent() {
    let records = collect(open(&fixture("wechat_all.csv"), &Format::Wechat).unwrap()).unwrap();
    assert_eq!(records.len(), 6);

    let first = &records[0];
    assert_eq!(first.line, 2);
    assert_eq!(first.kind, RecordKind::Payment);
    assert_eq!(first.merchant_order_id, "CO20190725000001");
    assert_eq!(first.channel_transaction_id, "4200000356201907251234567890");
    assert_eq!(first.merchant_refund_id, None);
    assert_eq!(first.channel_refund_id, None);
    assert_eq!(first.amount, cny(600));
    assert_eq!(first.requested_amount, cny(600));
    assert_eq!(first.fee, cny(4));
    assert_eq!(first.status, RecordStatus::Success);
    assert_eq!(first.channel_status.as_deref(), Some("SUCCESS"));
    assert_eq!(first.occurred_at, datetime!(2019-07-25 08:35:41));
    assert_eq!(first.business_date, date!(2019 - 07 - 25));

    // A merchant-funded coupon: 应结订单金额 9.00 of 订单金额 10.00.
    assert_eq!(records[1].amount, cny(900));
    assert_eq!(records[1].requested_amount, cny(1000));
    assert_eq!(records[1].fee, cny(5), "0.05400 rounds to 0.05");
    assert_eq!(records[2].fee, cny(3), "0.02500 rounds half-up to 0.03");

    // Paid and refunded the same day: two records for one order.
    let refund = &records[3];
    assert_eq!(refund.line, 5);
    assert_eq!(refund.kind, RecordKind::Refund);
    assert_eq!(refund.merchant_order_id, first.merchant_order_id);
    assert_eq!(refund.channel_transaction_id, first.channel_transaction_id);
    assert_eq!(
        refund.merchant_refund_id.as_deref(),
        Some("RF20190725000001")
    );
    assert_eq!(
        refund.channel_refund_id.as_deref(),
        Some("50000301222019072511111111111")
    );
    assert_eq!(refund.amount, cny(200));
    assert_eq!(refund.requested_amount, cny(200));
    assert_eq!(
        refund.fee,
        cny(-1),
        "a refund gives back -0.01200, rounded to -0.01"
    );
    assert_eq!(refund.status, RecordStatus::Success);

    assert_eq!(records[4].status, RecordStatus::Processing);
    assert_eq!(records[4].channel_status.as_deref(), Some("PROCESSING"));
    assert_eq!(records[4].amount, cny(100));
    assert_eq!(records[5].kind, RecordKind::Payment);
    assert_eq!(records[5].status, RecordStatus::Failed);
    assert_eq!(records[5].channel_status.as_deref(), Some("REVOKED"));
}

#[test]
fn fee_rounding_is_configurable() {
    let fees = |mode| {
        let options = Options {
            fee_rounding: Some(mode),
            ..Options::default()
        };
        let records =
            collect(open_with(&fixture("wechat_all.csv"), &Format::Wechat, options).unwrap())
                .unwrap();
        records
            .iter()
            .map(|record| record.fee.amount_minor())
            .collect::<Vec<_>>()
    };
    assert_eq!(fees(RoundingMode::HalfUp), [4, 5, 3, -1, -1, 0]);
    assert_eq!(fees(RoundingMode::HalfEven), [4, 5, 2, -1, -1, 0]);
    assert_eq!(fees(RoundingMode::Down), [4, 5, 2, -1, 0, 0]);
}

#[test]
fn a_given_bill_date_is_every_record_business_date() {
    let options = Options {
        business_date: Some(date!(2019 - 07 - 26)),
        ..Options::default()
    };
    let records =
        collect(open_with(&fixture("wechat_all.csv"), &Format::Wechat, options).unwrap()).unwrap();
    assert!(
        records
            .iter()
            .all(|record| record.business_date == date!(2019 - 07 - 26))
    );
    assert_eq!(records[0].occurred_at.date(), date!(2019 - 07 - 25));
}

#[test]
fn success_bill_with_its_four_column_summary() {
    let records = collect(open(&fixture("wechat_success.csv"), &Format::Wechat).unwrap()).unwrap();
    assert_eq!(records.len(), 2);
    assert!(
        records
            .iter()
            .all(|record| record.kind == RecordKind::Payment)
    );
    assert_eq!(records[1].amount, cny(12_800));
    assert_eq!(records[1].fee, cny(77), "0.76800 rounds to 0.77");
    assert_eq!(records[1].occurred_at, datetime!(2019-07-25 23:59:59));
}

#[test]
fn refund_bill_files_refunds_by_their_request_time() {
    let records = collect(open(&fixture("wechat_refund.csv"), &Format::Wechat).unwrap()).unwrap();
    assert_eq!(records.len(), 2);
    let first = &records[0];
    assert_eq!(first.kind, RecordKind::Refund);
    assert_eq!(first.amount, cny(1));
    assert_eq!(first.merchant_order_id, "CO20190720000011");
    assert_eq!(
        first.merchant_refund_id.as_deref(),
        Some("RF20190723000001")
    );
    assert_eq!(first.occurred_at, datetime!(2019-07-23 20:53:36));
    assert_eq!(first.business_date, date!(2019 - 07 - 23));
    let second = &records[1];
    assert_eq!(second.amount, cny(201));
    assert_eq!(second.fee, cny(-1));
    assert_eq!(
        second.status,
        RecordStatus::Processing,
        "CHANGE (退款异常) is not final"
    );
    assert_eq!(second.channel_status.as_deref(), Some("CHANGE"));
}

#[test]
fn legacy_bill_with_full_width_colons() {
    let records =
        collect(open(&fixture("wechat_legacy_all.csv"), &Format::Wechat).unwrap()).unwrap();
    assert_eq!(records.len(), 2);
    assert_eq!(records[0].occurred_at, datetime!(2014-11-10 16:33:45));
    assert_eq!(records[0].amount, cny(1));
    assert_eq!(records[0].requested_amount, cny(1));
    assert_eq!(records[0].fee, cny(0));
    assert_eq!(records[1].merchant_order_id, "1415635270");
}

#[test]
fn a_summary_that_does_not_match_fails_after_the_rows() {
    let reader = open(&fixture("wechat_summary_mismatch.csv"), &Format::Wechat).unwrap();
    let (records, error) = records_then_error(reader);
    assert_eq!(records.len(), 6);
    let error = error.expect("the summary check must fail");
    assert_eq!(error.code(), "SUMMARY_MISMATCH");
    assert!(error.file().ends_with("wechat_summary_mismatch.csv"));
    assert_eq!(error.line(), Some(9));
    assert_eq!(error.field(), Some("手续费总金额"));
    assert!(error.to_string().contains("0.102"), "{error}");
    assert!(error.to_string().contains("0.101"), "{error}");
}

#[test]
fn a_summary_count_that_does_not_match_fails() {
    let text = std::fs::read_to_string(fixture("wechat_success.csv"))
        .unwrap()
        .replace("`2,`134.00", "`3,`134.00");
    let (records, error) = records_then_error(
        read(
            "count.csv",
            text.as_bytes(),
            &Format::Wechat,
            Options::default(),
        )
        .unwrap(),
    );
    assert_eq!(records.len(), 2);
    let error = error.unwrap();
    assert_eq!(error.code(), "SUMMARY_MISMATCH");
    assert_eq!(error.field(), Some("总交易单数"));
}

#[test]
fn a_file_without_its_summary_is_refused_as_truncated() {
    let reader = open(&fixture("wechat_truncated.csv"), &Format::Wechat).unwrap();
    let (records, error) = records_then_error(reader);
    assert_eq!(records.len(), 4);
    let error = error.unwrap();
    assert_eq!(error.code(), "MISSING_SUMMARY");
    assert_eq!(error.line(), Some(6));
}

#[test]
fn nothing_may_follow_the_summary() {
    let text = std::fs::read_to_string(fixture("wechat_success.csv")).unwrap() + "`extra\n";
    let (_, error) = records_then_error(
        read(
            "extra.csv",
            text.as_bytes(),
            &Format::Wechat,
            Options::default(),
        )
        .unwrap(),
    );
    let error = error.unwrap();
    assert_eq!(error.code(), "UNEXPECTED_LINE");
    assert_eq!(error.line(), Some(6));
}

#[test]
fn a_comma_inside_a_value_shows_as_a_field_count_error() {
    let text = std::fs::read_to_string(fixture("wechat_success.csv"))
        .unwrap()
        .replace("`年卡", "`年卡,加赠");
    let (records, error) = records_then_error(
        read(
            "comma.csv",
            text.as_bytes(),
            &Format::Wechat,
            Options::default(),
        )
        .unwrap(),
    );
    assert_eq!(records.len(), 1);
    let error = error.unwrap();
    assert_eq!(error.code(), "FIELD_COUNT");
    assert_eq!(error.line(), Some(3));
}

#[test]
fn a_field_without_its_back_tick_is_malformed() {
    let text = std::fs::read_to_string(fixture("wechat_success.csv"))
        .unwrap()
        .replace(",`CFT", ",CFT");
    let (_, error) = records_then_error(
        read(
            "tick.csv",
            text.as_bytes(),
            &Format::Wechat,
            Options::default(),
        )
        .unwrap(),
    );
    let error = error.unwrap();
    assert_eq!(error.code(), "MALFORMED_FIELD");
    assert_eq!(error.line(), Some(3));
    assert_eq!(error.field(), Some("付款银行"));
}

#[test]
fn an_unknown_state_is_an_error_naming_its_field() {
    let text = std::fs::read_to_string(fixture("wechat_success.csv"))
        .unwrap()
        .replacen("`SUCCESS", "`WHATEVER", 1);
    let (_, error) = records_then_error(
        read(
            "state.csv",
            text.as_bytes(),
            &Format::Wechat,
            Options::default(),
        )
        .unwrap(),
    );
    let error = error.unwrap();
    assert_eq!(error.code(), "UNKNOWN_VALUE");
    assert_eq!((error.line(), error.field()), (Some(2), Some("交易状态")));
}

#[test]
fn an_unknown_header_is_refused_before_any_row() {
    let text = "a,b,c\n`1,`2,`3\n";
    let error = read(
        "unknown.csv",
        text.as_bytes(),
        &Format::Wechat,
        Options::default(),
    )
    .err()
    .unwrap();
    assert_eq!(error.code(), "UNKNOWN_BILL_TYPE");
    assert_eq!(error.line(), Some(1));
    let error = read("empty.csv", &b""[..], &Format::Wechat, Options::default())
        .err()
        .unwrap();
    assert_eq!(error.code(), "MISSING_HEADER");
}
