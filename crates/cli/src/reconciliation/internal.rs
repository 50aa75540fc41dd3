//! `paycore recon internal`: internal reconciliation (内部对账 / 账证核对),
//! every order against the journal and every transfer against its record,
//! as a summary table, with the findings as CSV or Excel.

use crate::DatabaseArgs;
use anyhow::{Context, Result, bail};
use recon::{InternalCode, InternalFinding, InternalReport, ReconStore};
use std::path::Path;

/// Findings printed under the summary; the files hold all that were listed.
const FINDINGS_PRINTED_MAX: usize = 20;

const HEADER: [&str; 10] = [
    "code",
    "subject",
    "record_id",
    "record_status",
    "transfer_id",
    "key",
    "expected_minor",
    "actual_minor",
    "currency",
    "description",
];

fn optional<T: ToString>(value: Option<T>) -> String {
    value.map(|value| value.to_string()).unwrap_or_default()
}

fn row(finding: &InternalFinding) -> Vec<String> {
    vec![
        finding.code.as_str().to_owned(),
        finding.subject.as_str().to_owned(),
        optional(finding.record_id),
        optional(finding.record_status.as_deref()),
        optional(finding.transfer_id),
        finding.key.clone(),
        optional(finding.expected_minor),
        optional(finding.actual_minor),
        optional(finding.currency.as_deref()),
        finding.code.description().to_owned(),
    ]
}

fn print_summary(report: &InternalReport) {
    println!(
        "internal reconciliation: {} final payments, {} final refunds, {} settlement batches, \
         {} transfers ({} operators' own, keyed {})",
        report.payments_checked,
        report.refunds_checked,
        report.batches_checked,
        report.transfers_checked,
        report.manual_transfers,
        recon::MANUAL_KEY_PREFIX
    );
    println!("{:<30} {:>10}  what", "code", "findings");
    for code in InternalCode::ALL {
        let count = report.counts.get(code).copied().unwrap_or(0);
        println!("{:<30} {count:>10}  {}", code.as_str(), code.description());
    }
    for finding in report.findings.iter().take(FINDINGS_PRINTED_MAX) {
        println!("FINDING {}", row(finding)[..9].join(" "));
    }
    if report.findings.len() > FINDINGS_PRINTED_MAX {
        println!(
            "... {} more listed in --csv / --xlsx",
            report.findings.len() - FINDINGS_PRINTED_MAX
        );
    }
}

pub async fn internal(
    database: &DatabaseArgs,
    csv_path: Option<&Path>,
    xlsx_path: Option<&Path>,
) -> Result<()> {
    let store = store::Store::open(&database.database)
        .await
        .with_context(|| format!("opening the database {}", database.database))?;
    let report = store
        .internal_check()
        .await
        .context("checking orders against the journal")?;
    print_summary(&report);
    if csv_path.is_some() || xlsx_path.is_some() {
        let rows: Vec<Vec<String>> = report.findings.iter().map(row).collect();
        crate::tables::write_report(csv_path, xlsx_path, "findings", &HEADER, &rows)?;
    }
    if report.is_clean() {
        println!(
            "clean: every final order has its transfers, and every transfer its business record"
        );
        return Ok(());
    }
    bail!(
        "{} internal reconciliation findings",
        report.findings_total()
    )
}
