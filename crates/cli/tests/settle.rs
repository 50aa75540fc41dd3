//! Settlement through the command line: the demo's business day (which
//! settles itself as of tomorrow on D+1 terms), then the settlement
//! statement as CSV and Excel, a merchant's bill, and a second run of the
//! same date that changes nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

fn ok(arguments: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_paycore"))
        .args(arguments)
        .env_remove("PAYCORE_DATABASE")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "paycore {arguments:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn the_demo_day_settles_and_reports() {
    let directory = tempfile::tempdir().unwrap();
    let database = directory.path().join("paycore.db");
    let database = database.to_str().unwrap();
    let demo = ok(&["demo", "--database", database, "--listen", "127.0.0.1:0"]);
    assert!(demo.contains("settlement as of"), "{demo}");
    let today = engine::business_date(store::now_micros())
        .unwrap()
        .to_string();
    let tomorrow = settlement::parse_date(&today)
        .unwrap()
        .next_day()
        .unwrap()
        .to_string();

    let csv_path = directory.path().join("batches.csv");
    let xlsx_path = directory.path().join("batches.xlsx");
    ok(&[
        "settle",
        "report",
        "--database",
        database,
        "--date",
        &tomorrow,
        "--csv",
        csv_path.to_str().unwrap(),
        "--xlsx",
        xlsx_path.to_str().unwrap(),
    ]);
    let csv = std::fs::read_to_string(&csv_path).unwrap();
    let mut lines = csv.lines();
    assert!(
        lines
            .next()
            .unwrap()
            .starts_with("batch,merchant_id,currency,settle_date")
    );
    let rows: Vec<Vec<&str>> = lines.map(|line| line.split(',').collect()).collect();
    assert!(!rows.is_empty());
    assert!(rows.iter().all(|row| row[3] == tomorrow));
    let posted: Vec<&Vec<&str>> = rows.iter().filter(|row| row[6] == "POSTED").collect();
    assert!(!posted.is_empty(), "{csv}");
    assert_eq!(&std::fs::read(&xlsx_path).unwrap()[..2], b"PK");

    // A posted merchant's bill of today nets to its batch.
    let merchant = posted[0][1];
    let bill = ok(&[
        "bill",
        "--database",
        database,
        "--merchant",
        merchant,
        "--date",
        &today,
    ]);
    let summary: Vec<&str> = bill.lines().last().unwrap().split(',').collect();
    assert_eq!(summary[0], "CNY");
    assert_eq!(
        summary[8], posted[0][14],
        "bill {bill}\nbatch {:?}",
        posted[0]
    );

    // The same date again: nothing new.
    let again = ok(&["settle", "run", "--database", database, "--date", &tomorrow]);
    let paid = again
        .lines()
        .find(|line| line.starts_with("batches paid"))
        .unwrap();
    assert!(paid.trim_end().ends_with(" 0"), "{again}");
    ok(&["ledger", "check", "--database", database]);
}
