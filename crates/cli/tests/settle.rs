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

    // `report settlement` is `settle report`.
    let statement = ok(&[
        "report",
        "settlement",
        "--database",
        database,
        "--date",
        &tomorrow,
    ]);
    assert_eq!(statement, csv);

    // The daily summary of tomorrow: its settled net is what the posted
    // batches paid, to the cent.
    let daily_path = directory.path().join("daily.csv");
    let daily_xlsx = directory.path().join("daily.xlsx");
    ok(&[
        "report",
        "daily",
        "--database",
        database,
        "--date",
        &tomorrow,
        "--csv",
        daily_path.to_str().unwrap(),
        "--xlsx",
        daily_xlsx.to_str().unwrap(),
    ]);
    assert_eq!(&std::fs::read(&daily_xlsx).unwrap()[..2], b"PK");
    let daily = std::fs::read_to_string(&daily_path).unwrap();
    assert_eq!(
        daily.lines().next().unwrap(),
        settlement::DAILY_SUMMARY_HEADER.join(",")
    );
    let total = |summary: &str| -> Vec<String> {
        summary
            .lines()
            .map(|line| line.split(',').map(str::to_owned).collect::<Vec<_>>())
            .find(|row| row[1] == settlement::TOTAL_ROW && row[2] == "CNY")
            .unwrap()
    };
    let posted_net: i64 = rows
        .iter()
        .filter(|row| settlement::BatchStatus::parse(row[6]).unwrap().is_posted())
        .map(|row| minor(row[14]))
        .sum();
    let tomorrow_total = total(&daily);
    assert_eq!(minor(&tomorrow_total[17]), posted_net, "{daily}");
    assert_eq!(tomorrow_total[13], rows.len().to_string());

    // Today's summary on standard output: a merchant's line nets as its
    // bill does, and the total is the sum of the lines.
    let today_summary = ok(&["report", "daily", "--database", database, "--date", &today]);
    let lines: Vec<Vec<&str>> = today_summary
        .lines()
        .skip(1)
        .map(|line| line.split(',').collect())
        .filter(|row: &Vec<&str>| row[1] != settlement::TOTAL_ROW && row[2] == "CNY")
        .collect();
    let line = lines.iter().find(|row| row[1] == merchant).unwrap();
    assert_eq!(line[10], summary[8], "{today_summary}");
    let today_total = total(&today_summary);
    for column in [4, 6, 7, 8, 9, 10] {
        let sum: i64 = lines.iter().map(|row| minor(row[column])).sum();
        assert_eq!(minor(&today_total[column]), sum, "column {column}");
    }

    // The same date again: nothing new.
    let again = ok(&["settle", "run", "--database", database, "--date", &tomorrow]);
    let paid = again
        .lines()
        .find(|line| line.starts_with("batches paid"))
        .unwrap();
    assert!(paid.trim_end().ends_with(" 0"), "{again}");
    ok(&["ledger", "check", "--database", database]);

    // 担保交易: the day released most escrow trades; an operator asking for
    // a trade that is not one is told so, and nothing changes.
    assert!(demo.contains("escrow trades: "), "{demo}");
    let output = Command::new(env!("CARGO_BIN_EXE_paycore"))
        .args([
            "escrow",
            "release",
            "--database",
            database,
            "--merchant",
            merchant,
            "--out-trade-no",
            "no-such-trade",
            "--operator",
            "ops-li",
            "--reason",
            "dispute closed",
        ])
        .env_remove("PAYCORE_DATABASE")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let error = String::from_utf8_lossy(&output.stderr);
    assert!(error.contains("escrow of trade no-such-trade"), "{error}");
    assert!(error.contains("not found"), "{error}");
    ok(&["ledger", "check", "--database", database]);
}

/// A CNY amount as the reports write it (`-12.34`), in minor units.
fn minor(text: &str) -> i64 {
    text.replace('.', "").parse().unwrap()
}
