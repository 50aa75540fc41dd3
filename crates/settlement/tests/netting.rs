//! Netting by example: real-time against deferred fees, refunds larger
//! than collections, ordering, overflow and refused input; decisions and
//! postings.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use money::Currency;
use settlement::{
    ClearingTotals, Decision, EntryKind, FeeMode, SettlementError, SettlementLine,
    SettlementPosting, decide, net,
};
use time::Date;
use time::macros::date;

fn totals(
    merchant_id: &str,
    business_date: Date,
    kind: EntryKind,
    fee_mode: FeeMode,
    count: u64,
    amount_minor: i64,
    fee_minor: i64,
) -> ClearingTotals {
    ClearingTotals {
        merchant_id: merchant_id.to_owned(),
        currency: Currency::CNY,
        business_date,
        kind,
        fee_mode,
        count,
        amount_minor,
        fee_minor,
        reconciled: true,
        first_entry_id: 0,
    }
}

use EntryKind::{Collection, Refund};
use FeeMode::{PostPaid, Prepaid, RealTime};

#[test]
fn names_round_trip() {
    for kind in EntryKind::ALL {
        assert_eq!(EntryKind::parse(kind.as_str()), Some(kind));
    }
    for mode in FeeMode::ALL {
        assert_eq!(FeeMode::parse(mode.as_str()), Some(mode));
    }
    assert_eq!(EntryKind::parse("COLLECTION"), Some(Collection));
    assert_eq!(EntryKind::parse("collection"), None);
    assert_eq!(FeeMode::parse("real_time"), Some(RealTime));
    assert_eq!(FeeMode::parse("post_paid"), Some(PostPaid));
    assert_eq!(FeeMode::parse("prepaid"), Some(Prepaid));
    assert_eq!(FeeMode::parse("RealTime"), None);
}

#[test]
fn nets_collections_refunds_and_real_time_fees() {
    let lines = net([
        totals(
            "m1",
            date!(2026 - 03 - 02),
            Collection,
            RealTime,
            3,
            30_000,
            180,
        ),
        totals(
            "m1",
            date!(2026 - 03 - 03),
            Collection,
            RealTime,
            1,
            10_000,
            60,
        ),
        totals("m1", date!(2026 - 03 - 03), Refund, RealTime, 1, 5_000, 30),
        totals(
            "m1",
            date!(2026 - 03 - 01),
            Collection,
            PostPaid,
            2,
            20_000,
            120,
        ),
        totals("m1", date!(2026 - 03 - 02), Refund, Prepaid, 1, 1_000, 6),
    ])
    .unwrap();
    assert_eq!(
        lines,
        vec![SettlementLine {
            merchant_id: "m1".to_owned(),
            currency: Currency::CNY,
            collection_count: 6,
            collections_minor: 60_000,
            refund_count: 2,
            refunds_minor: 6_000,
            fees_minor: 180 + 60 - 30,
            fees_not_deducted_minor: 120 - 6,
            net_minor: 60_000 - 6_000 - 210,
            first_business_date: date!(2026 - 03 - 01),
            last_business_date: date!(2026 - 03 - 03),
        }]
    );
    let line = &lines[0];
    assert_eq!(decide(line, 0), Decision::Pay);
    assert_eq!(
        line.posting(),
        Ok(SettlementPosting {
            pending_debit_minor: 54_000,
            income_minor: 210,
            available_credit_minor: 53_790,
        })
    );
}

#[test]
fn a_refund_larger_than_collections_is_carried() {
    let lines = net([
        totals(
            "m1",
            date!(2026 - 03 - 02),
            Collection,
            RealTime,
            1,
            1_000,
            6,
        ),
        totals(
            "m1",
            date!(2026 - 03 - 02),
            Refund,
            RealTime,
            1,
            50_000,
            300,
        ),
    ])
    .unwrap();
    let line = &lines[0];
    // Fees returned exceed fees charged: negative income.
    assert_eq!(line.fees_minor, -294);
    assert_eq!(line.net_minor, 1_000 - 50_000 + 294);
    assert_eq!(decide(line, 0), Decision::CarryNegative);
    let posting = line.posting().unwrap();
    assert_eq!(posting.pending_debit_minor, -49_000);
    assert_eq!(posting.income_minor, -294);
    assert_eq!(
        posting.pending_debit_minor,
        posting.income_minor + posting.available_credit_minor
    );
}

#[test]
fn decides_by_sign_and_minimum() {
    let line = |net_minor: i64| SettlementLine {
        merchant_id: "m1".to_owned(),
        currency: Currency::CNY,
        collection_count: 1,
        collections_minor: net_minor.max(0),
        refund_count: 0,
        refunds_minor: 0,
        fees_minor: 0,
        fees_not_deducted_minor: 0,
        net_minor,
        first_business_date: date!(2026 - 03 - 02),
        last_business_date: date!(2026 - 03 - 02),
    };
    assert_eq!(decide(&line(-1), 100), Decision::CarryNegative);
    assert_eq!(decide(&line(0), 100), Decision::Nothing);
    assert_eq!(decide(&line(0), 0), Decision::Nothing);
    assert_eq!(decide(&line(1), 100), Decision::BelowMinimum);
    assert_eq!(decide(&line(99), 100), Decision::BelowMinimum);
    assert_eq!(decide(&line(100), 100), Decision::Pay);
    assert_eq!(decide(&line(1), 0), Decision::Pay);
    assert_eq!(decide(&line(1), -5), Decision::Pay);
}

#[test]
fn lines_are_sorted_by_merchant_then_currency() {
    let mut usd = totals("a", date!(2026 - 03 - 02), Collection, RealTime, 1, 100, 0);
    usd.currency = Currency::USD;
    let lines = net([
        totals("b", date!(2026 - 03 - 02), Collection, RealTime, 1, 100, 0),
        usd,
        totals("a", date!(2026 - 03 - 02), Collection, RealTime, 1, 100, 0),
        totals("B", date!(2026 - 03 - 02), Collection, RealTime, 1, 100, 0),
    ])
    .unwrap();
    let keys: Vec<(&str, &str)> = lines
        .iter()
        .map(|line| (line.merchant_id.as_str(), line.currency.code()))
        .collect();
    assert_eq!(
        keys,
        vec![("B", "CNY"), ("a", "CNY"), ("a", "USD"), ("b", "CNY")]
    );
    assert_eq!(net([]).unwrap(), vec![]);
}

#[test]
fn overflow_is_an_error_not_a_wrap() {
    let big = totals(
        "m1",
        date!(2026 - 03 - 02),
        Collection,
        RealTime,
        1,
        i64::MAX,
        0,
    );
    let error = net([big.clone(), big.clone()]).unwrap_err();
    assert_eq!(
        error,
        SettlementError::Overflow {
            merchant_id: "m1".to_owned(),
            currency: Currency::CNY
        }
    );
    assert_eq!(error.code(), "SETTLEMENT_OVERFLOW");
    // A running sum that leaves i64 on the way but not at the end is fine:
    // real-time fees of +MAX, +5 and −MAX (returned on a refund).
    let lines = net([
        totals(
            "m1",
            date!(2026 - 03 - 02),
            Collection,
            RealTime,
            1,
            0,
            i64::MAX,
        ),
        totals("m1", date!(2026 - 03 - 03), Collection, RealTime, 1, 0, 5),
        totals(
            "m1",
            date!(2026 - 03 - 04),
            Refund,
            RealTime,
            1,
            0,
            i64::MAX,
        ),
    ])
    .unwrap();
    assert_eq!(lines[0].fees_minor, 5);
    assert_eq!(lines[0].net_minor, -5);
    // Counts too.
    let many = totals(
        "m1",
        date!(2026 - 03 - 02),
        Collection,
        RealTime,
        u64::MAX,
        1,
        0,
    );
    assert!(matches!(
        net([many.clone(), many]),
        Err(SettlementError::Overflow { .. })
    ));
    // A net below i64::MIN: refunds of i64::MAX plus a real-time fee.
    let refund = totals(
        "m1",
        date!(2026 - 03 - 02),
        Refund,
        RealTime,
        1,
        i64::MAX,
        0,
    );
    let fee = totals("m1", date!(2026 - 03 - 02), Collection, RealTime, 1, 0, 2);
    assert!(matches!(
        net([refund, fee]),
        Err(SettlementError::Overflow { .. })
    ));
}

#[test]
fn refuses_negative_input_naming_the_merchant() {
    for group in [
        totals("m9", date!(2026 - 03 - 02), Collection, RealTime, 1, -1, 0),
        totals("m9", date!(2026 - 03 - 02), Refund, RealTime, 1, 100, -1),
    ] {
        let error = net([group]).unwrap_err();
        assert!(
            matches!(&error, SettlementError::ClearingInvalid { merchant_id, .. } if merchant_id == "m9"),
            "{error:?}"
        );
        assert_eq!(error.code(), "CLEARING_INVALID");
        assert!(error.to_string().contains("m9"));
    }
    let nameless = totals("", date!(2026 - 03 - 02), Collection, RealTime, 1, 1, 0);
    assert!(matches!(
        net([nameless]),
        Err(SettlementError::ClearingInvalid { .. })
    ));
}

#[test]
fn a_changed_line_is_refused_rather_than_posted_unbalanced() {
    let mut line = net([totals(
        "m1",
        date!(2026 - 03 - 02),
        Collection,
        RealTime,
        1,
        10_000,
        60,
    )])
    .unwrap()
    .remove(0);
    line.posting().unwrap();
    line.net_minor += 1;
    let error = line.posting().unwrap_err();
    assert_eq!(error.code(), "SETTLEMENT_LINE_INCONSISTENT");
    line.net_minor -= 1;
    line.refunds_minor = -1;
    assert!(line.posting().is_err());
}
