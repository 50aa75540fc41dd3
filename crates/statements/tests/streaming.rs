//! A large WeChat bill parsed through the iterator without collecting it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

use common::{WECHAT_ALL_HEADER, WechatRow, WechatTotals, write_wechat_row};
use statements::{Format, RecordKind, open};
use time::Duration;
use time::macros::datetime;

const ROWS: u64 = 200_000;

/// Removes the temporary file even when the test fails.
struct TemporaryFile(PathBuf);

impl Drop for TemporaryFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn row(index: u64) -> WechatRow {
    let kind = if index % 10 == 9 {
        RecordKind::Refund
    } else {
        RecordKind::Payment
    };
    let amount_minor = 100 + (index % 9_900) as i64;
    WechatRow {
        kind,
        merchant_order_id: format!("CO{index:012}"),
        channel_transaction_id: format!("42{index:026}"),
        merchant_refund_id: format!("RF{index:012}"),
        channel_refund_id: format!("50{index:027}"),
        amount_minor,
        requested_minor: amount_minor,
        fee_sub_minor: amount_minor * 6 / 10 * if kind == RecordKind::Refund { -1 } else { 1 },
        status: "SUCCESS",
        occurred_at: datetime!(2024-03-01 00:00:00) + Duration::seconds((index % 86_400) as i64),
    }
}

#[test]
fn a_large_bill_streams() {
    let file = TemporaryFile(
        std::env::temp_dir().join(format!("paycore-statements-{}.csv", std::process::id())),
    );
    let mut out = BufWriter::new(File::create(&file.0).unwrap());
    writeln!(out, "{WECHAT_ALL_HEADER}").unwrap();
    let mut totals = WechatTotals::default();
    let mut net_minor = 0i64;
    for index in 0..ROWS {
        let row = row(index);
        write_wechat_row(&mut out, &row).unwrap();
        totals.add(&row);
        net_minor += match row.kind {
            RecordKind::Payment => row.amount_minor,
            RecordKind::Refund => -row.amount_minor,
        };
    }
    totals.write_summary(&mut out).unwrap();
    out.flush().unwrap();
    drop(out);

    let mut count = 0u64;
    let mut parsed_net_minor = 0i64;
    let mut last_line = 0;
    for result in open(&file.0, &Format::Wechat).unwrap() {
        let record = result.unwrap();
        count += 1;
        last_line = record.line;
        parsed_net_minor += match record.kind {
            RecordKind::Payment => record.amount.amount_minor(),
            RecordKind::Refund => -record.amount.amount_minor(),
        };
    }
    assert_eq!(count, ROWS);
    assert_eq!(last_line, ROWS + 1);
    assert_eq!(parsed_net_minor, net_minor);
}
