//! The merchant bill's summary nets like settlement: a refund that gives a
//! fee back lowers the bill's fees, so the bill's net is what netting the
//! same entries pays.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use money::Currency;
use settlement::{
    BillType, ClearingEntry, ClearingTotals, EntryKind, FeeMode, NewClearingEntry, net, write_bill,
};
use time::{Date, Month};

fn entry(id: i64, kind: EntryKind, amount_minor: i64, fee_minor: i64) -> ClearingEntry {
    ClearingEntry {
        id,
        entry: NewClearingEntry {
            merchant_id: "m-coffee".to_owned(),
            kind,
            trade_id: 1,
            out_trade_no: "T1".to_owned(),
            payment_id: 1,
            refund_id: (kind == EntryKind::Refund).then_some(id),
            refund_serial: (kind == EntryKind::Refund).then(|| format!("R{id}")),
            product: "instant_transfer".to_owned(),
            channel: Some("simbank".to_owned()),
            currency: Currency::CNY,
            amount_minor,
            fee_minor,
            fee_mode: FeeMode::RealTime,
            fee_rule_id: Some("instant-transfer-standard".to_owned()),
            business_date: "2026-11-23".to_owned(),
            occurred_at: 1_795_400_000_000_000,
            reconciled: true,
        },
        batch_id: None,
    }
}

#[test]
fn a_refund_that_gives_a_fee_back_nets_as_settlement_does() {
    let entries = [
        entry(1, EntryKind::Collection, 10_000, 60),
        entry(2, EntryKind::Refund, 4_000, 24),
    ];
    let bill = write_bill(&entries, BillType::All).unwrap();
    let totals = &bill.totals[&Currency::CNY];
    assert_eq!(
        (
            totals.fees_minor,
            totals.real_time_fees_minor,
            totals.net_minor
        ),
        (36, 36, 5_964)
    );
    let date = Date::from_calendar_date(2026, Month::November, 23).unwrap();
    let groups = entries.iter().map(|stored| ClearingTotals {
        merchant_id: stored.entry.merchant_id.clone(),
        currency: stored.entry.currency,
        business_date: date,
        kind: stored.entry.kind,
        fee_mode: stored.entry.fee_mode,
        count: 1,
        amount_minor: stored.entry.amount_minor,
        fee_minor: stored.entry.fee_minor,
        reconciled: true,
        first_entry_id: stored.id,
    });
    let lines = net(groups).unwrap();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0].net_minor, totals.net_minor);
    assert_eq!(lines[0].fees_minor, totals.fees_minor);
    assert!(
        bill.csv
            .contains("\nCNY,2,1,100.00,1,40.00,0.36,0.36,59.64\n"),
        "{}",
        bill.csv
    );
}
