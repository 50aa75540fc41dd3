//! Reconciliation end to end through the command line: the demo's business
//! day, the simulated bank's statement with differences injected, import
//! (once), run, report, and the ledger still balanced — then the same run
//! again, which changes nothing.
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

#[test]
fn a_business_day_is_reconciled_and_its_differences_treated() {
    let directory = tempfile::tempdir().unwrap();
    let database = directory.path().join("paycore.db");
    let database = database.to_str().unwrap();
    ok(&["demo", "--database", database, "--listen", "127.0.0.1:0"]);
    // The simulated bank's day of now (its cutoff is 23:00 UTC+8).
    let rules = recon::ReconRules::parse(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../config/recon.toml"
        ))
        .unwrap(),
    )
    .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64;
    let date = recon::format_day(rules.channels["simbank"].business_day(now));
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
    let summary = ok(&[
        "recon",
        "run",
        "--database",
        database,
        "--channel",
        "simbank",
        "--date",
        &date,
    ]);
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
    ok(&[
        "recon",
        "run",
        "--database",
        database,
        "--channel",
        "simbank",
        "--date",
        &date,
    ]);
    assert_eq!(report(database, &date), rows);
    ok(&["ledger", "check", "--database", database]);
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
