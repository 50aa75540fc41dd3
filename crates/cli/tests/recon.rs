//! Reconciliation end to end through the command line: the demo's business
//! day, the simulated bank's statement with differences injected, import
//! (once), run, report, and the ledger still balanced — then the same run
//! again, which changes nothing. And reconciled-only settlement: what a run
//! matched settles, what it did not match waits.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::{Command, Output};

fn paycore(arguments: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_paycore"))
        .args(arguments)
        .env_remove("PAYCORE_DATABASE")
        .env_remove("PAYCORE_RECON_DIR")
        .output()
        .unwrap()
}

fn ok(arguments: &[&str]) -> String {
    let output = paycore(arguments);
    assert!(
        output.status.success(),
        "paycore {arguments:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// Rows of `recon report` by class: (status, error code).
fn report(database: &str, date: &str) -> Vec<(String, String, String)> {
    let text = ok(&[
        "recon",
        "report",
        "--database",
        database,
        "--channel",
        "simbank",
        "--date",
        date,
    ]);
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    reader
        .records()
        .map(|record| {
            let record = record.unwrap();
            (
                record[4].to_owned(),
                record[8].to_owned(),
                record[6].to_owned(),
            )
        })
        .collect()
}

/// `paycore recon run` of simbank's `date`; its summary.
fn recon_run(database: &str, date: &str) -> String {
    ok(&[
        "recon",
        "run",
        "--database",
        database,
        "--channel",
        "simbank",
        "--date",
        date,
    ])
}

/// The simulated bank's business day of now (its cutoff is 23:00 UTC+8).
fn simbank_date() -> String {
    let rules = recon::ReconRules::parse(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../config/recon.toml"
        ))
        .unwrap(),
    )
    .unwrap();
    recon::format_day(rules.channels["simbank"].business_day(store::now_micros()))
}

#[test]
fn a_business_day_is_reconciled_and_its_differences_treated() {
    let directory = tempfile::tempdir().unwrap();
    let database = directory.path().join("paycore.db");
    let database = database.to_str().unwrap();
    ok(&["demo", "--database", database, "--listen", "127.0.0.1:0"]);
    let date = simbank_date();
    let bill = directory.path().join("simbank.csv");
    let bill_path = bill.to_str().unwrap();
    ok(&[
        "recon",
        "simulate-statement",
        "--database",
        database,
        "--date",
        &date,
        "--out",
        bill_path,
        "--inject",
    ]);
    let imported = ok(&[
        "recon",
        "import",
        "--database",
        database,
        "--channel",
        "simbank",
        "--date",
        &date,
        "--file",
        bill_path,
    ]);
    assert!(imported.contains("imported"), "{imported}");
    let again = paycore(&[
        "recon",
        "import",
        "--database",
        database,
        "--channel",
        "simbank",
        "--date",
        &date,
        "--file",
        bill_path,
    ]);
    assert!(!again.status.success(), "the same file twice is refused");
    assert!(String::from_utf8_lossy(&again.stderr).contains("already imported"));
    let summary = recon_run(database, &date);
    assert!(summary.contains("MATCHED"), "{summary}");
    let rows = report(database, &date);
    let find = |class: &str| {
        rows.iter()
            .find(|(found, _, _)| found == class)
            .unwrap_or_else(|| panic!("no {class} in {rows:?}\n{summary}"))
            .clone()
    };
    // The unknown booking is parked in suspense, the changed fee adjusted,
    // the missing one of ours waits for the next file.
    assert_eq!(
        find("CHANNEL_ONLY"),
        ("CHANNEL_ONLY".into(), "TREATED".into(), "R301".into())
    );
    assert_eq!(
        find("FEE_MISMATCH"),
        ("FEE_MISMATCH".into(), "TREATED".into(), "R501".into())
    );
    let (_, status, code) = find("PLATFORM_ONLY");
    assert_eq!(status, "OPEN");
    assert!(code == "R201" || code == "R202", "{code}");
    assert_eq!(rows.len(), 3, "only the injected differences: {rows:?}");
    ok(&["ledger", "check", "--database", database]);
    // Running the day again treats nothing twice.
    recon_run(database, &date);
    assert_eq!(report(database, &date), rows);
    ok(&["ledger", "check", "--database", database]);
    // The treatments' postings have their discrepancies: the day is
    // internally reconciled too.
    let internal = ok(&["recon", "internal", "--database", database]);
    assert!(internal.contains("clean"), "{internal}");
    let excel = directory.path().join("report.xlsx");
    ok(&[
        "recon",
        "report",
        "--database",
        database,
        "--channel",
        "simbank",
        "--date",
        &date,
        "--xlsx",
        excel.to_str().unwrap(),
    ]);
    let bytes = std::fs::read(&excel).unwrap();
    assert!(bytes.starts_with(b"PK"), "an .xlsx is a zip file");
    assert!(
        Path::new(&format!("{database}.recon"))
            .join("snapshots/simbank")
            .exists()
    );
}

/// A clearing entry of money that came through simbank.
#[derive(Debug)]
struct ChannelEntry {
    channel_order_id: i64,
    /// The bank's business date of the order (`YYYYMMDD`): the day whose
    /// statement books it.
    booked_on: Option<String>,
    reconciled: bool,
    batch_id: Option<i64>,
}

fn simbank_entries(database: &str) -> Vec<ChannelEntry> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let rows: Vec<(i64, Option<String>, bool, Option<i64>)> = runtime.block_on(async {
        use sqlx::Connection;
        let mut connection = sqlx::SqliteConnection::connect(&format!("sqlite://{database}"))
            .await
            .unwrap();
        sqlx::query_as(
            // The batch that holds an entry: its own mark, or the settled
            // range of its date (as `SettlementStore::clearing_entries`).
            "SELECT c.id, c.channel_business_date, e.reconciled, \
             COALESCE(e.batch_id, (SELECT d.batch_id FROM settlement_days d \
               WHERE d.merchant_id = e.merchant_id AND d.currency = e.currency \
               AND d.business_date = e.business_date AND d.after_entry_id < e.id \
               AND d.up_to_entry_id >= e.id)) \
             FROM clearing_entries e \
             JOIN payment_instructions i ON i.payment_id = e.payment_id \
             JOIN channel_orders c ON c.instruction_id = i.id \
               AND COALESCE(c.refund_id, 0) = COALESCE(e.refund_id, 0) \
             WHERE e.channel = 'simbank' ORDER BY e.id",
        )
        .fetch_all(&mut connection)
        .await
        .unwrap()
    });
    rows.into_iter()
        .map(
            |(channel_order_id, booked_on, reconciled, batch_id)| ChannelEntry {
                channel_order_id,
                booked_on,
                reconciled,
                batch_id,
            },
        )
        .collect()
}

#[test]
fn reconciled_only_merchants_settle_what_reconciliation_matched() {
    let directory = tempfile::tempdir().unwrap();
    let database = directory.path().join("paycore.db");
    let database = database.to_str().unwrap();
    let terms = directory.path().join("settlement.toml");
    std::fs::write(
        &terms,
        "[defaults]\ncycle = \"D+1\"\ndestination = \"available\"\nminimum_minor = 0\n\
         reconciled_only = true\n",
    )
    .unwrap();
    let terms = terms.to_str().unwrap();
    ok(&[
        "demo",
        "--database",
        database,
        "--listen",
        "127.0.0.1:0",
        "--settlement",
        terms,
    ]);
    // Nothing outside confirmed the card money yet: the demo's own
    // settlement left all of it unsettled.
    let before = simbank_entries(database);
    assert!(before.len() > 10, "{before:?}");
    assert!(
        before
            .iter()
            .all(|entry| !entry.reconciled && entry.batch_id.is_none()),
        "{before:?}"
    );
    let date = simbank_date();
    let booked_today = date.replace('-', "");
    // The bank's file of the day books the orders it dated that day
    // (some amounts book after its cutoff, on the next day's file), but
    // lacks one of ours (短款).
    let in_file: Vec<&ChannelEntry> = before
        .iter()
        .filter(|entry| entry.booked_on.as_deref() == Some(booked_today.as_str()))
        .collect();
    let dropped = in_file[in_file.len() / 2].channel_order_id;
    let matched = |entry: &ChannelEntry| {
        entry.booked_on.as_deref() == Some(booked_today.as_str())
            && entry.channel_order_id != dropped
    };
    let bill = directory.path().join("simbank.csv");
    let bill = bill.to_str().unwrap();
    let dropped_text = dropped.to_string();
    for mut arguments in [
        vec![
            "recon",
            "simulate-statement",
            "--date",
            &date,
            "--out",
            bill,
        ],
        vec![
            "recon",
            "import",
            "--channel",
            "simbank",
            "--date",
            &date,
            "--file",
            bill,
        ],
    ] {
        arguments.extend(["--database", database]);
        if arguments[1] == "simulate-statement" {
            arguments.extend(["--drop-order", &dropped_text]);
        }
        ok(&arguments);
    }
    let summary = recon_run(database, &date);
    let confirmed = in_file.len() - 1;
    assert!(
        summary.contains(&format!(": {confirmed} newly reconciled")),
        "{summary}"
    );
    for entry in simbank_entries(database) {
        assert_eq!(entry.reconciled, matched(&entry), "{entry:?}");
    }
    // Settle the day after tomorrow: the matched entries are due (D+1) and
    // now confirmed; the others are not.
    let today = engine::business_date(store::now_micros())
        .unwrap()
        .to_string();
    let day_after = settlement::parse_date(&today)
        .unwrap()
        .next_day()
        .and_then(|day| day.next_day())
        .unwrap()
        .to_string();
    ok(&[
        "settle",
        "run",
        "--database",
        database,
        "--date",
        &day_after,
        "--settlement",
        terms,
    ]);
    let settled = simbank_entries(database);
    assert!(
        settled.iter().any(|entry| entry.batch_id.is_some()),
        "{settled:?}"
    );
    for entry in &settled {
        assert!(
            entry.batch_id.is_none() || entry.reconciled,
            "only reconciled entries settle: {entry:?}"
        );
        if entry.channel_order_id == dropped {
            assert_eq!(entry.batch_id, None, "the unmatched entry waits");
        }
    }
    ok(&["ledger", "check", "--database", database]);
    let internal = ok(&["recon", "internal", "--database", database]);
    assert!(internal.contains("clean"), "{internal}");
}
