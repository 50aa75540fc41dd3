//! `paycore settle run`: settle every merchant's due clearing entries of a
//! date, with a progress bar and a summary table; the settlement statement
//! (`settle report`, `report settlement`) and the daily summary (`report
//! daily`).

use crate::progress::progress;
use crate::{ConfigArgs, DatabaseArgs};
use anyhow::{Context, Result};
use server::settlement::{Progress, RunReport, Stage};
use settlement::{Calendar, SettlementConfig};
use std::cell::RefCell;
use std::path::PathBuf;

/// Where settlement reads its terms and its business-day calendar.
#[derive(Debug, Clone, clap::Args)]
pub struct SettleArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Business-day calendar like config/calendar.toml (holidays and
    /// make-up working days per year); the built-in copy without it.
    #[arg(long, env = "PAYCORE_CALENDAR")]
    pub calendar: Option<PathBuf>,
    /// Merchants' settlement terms like config/settlement.toml; the
    /// built-in copy without it.
    #[arg(long, env = "PAYCORE_SETTLEMENT")]
    pub settlement: Option<PathBuf>,
}

impl SettleArgs {
    pub fn calendar(&self) -> Result<Calendar> {
        match &self.calendar {
            None => Ok(Calendar::builtin()?),
            Some(path) => Calendar::load(path).with_context(|| format!("in {}", path.display())),
        }
    }

    pub fn terms(&self) -> Result<SettlementConfig> {
        match &self.settlement {
            None => Ok(SettlementConfig::builtin()?),
            Some(path) => Ok(SettlementConfig::load(path)?),
        }
    }
}

/// Shows each stage of a run as a bar.
#[derive(Default)]
struct Bars {
    current: RefCell<Option<indicatif::ProgressBar>>,
}

impl Progress for Bars {
    fn start(&self, stage: Stage, total: u64) {
        let label = match stage {
            Stage::Netting => "netting",
            Stage::Batching => "batching",
            Stage::Posting => "posting",
            Stage::PayingOut => "paying out",
        };
        if let Some(done) = self.current.replace(Some(progress(total, label))) {
            done.finish();
        }
    }

    fn advance(&self, _: Stage, done: u64) {
        if let Some(bar) = self.current.borrow().as_ref() {
            bar.inc(done);
        }
    }
}

impl Bars {
    fn finish(&self) {
        if let Some(bar) = self.current.take() {
            bar.finish();
        }
    }
}

pub async fn run(args: &SettleArgs, date: &str) -> Result<()> {
    let settle_date = settlement::parse_date(date)
        .with_context(|| format!("{date:?} is not a date (YYYY-MM-DD)"))?;
    let calendar = args.calendar()?;
    let terms = args.terms()?;
    let config = args.config.load()?;
    let state = crate::open_state(&args.database.database, &config).await?;
    let bars = Bars::default();
    let report = server::settlement::run(
        &state,
        &calendar,
        &terms,
        settle_date,
        store::now_micros(),
        &bars,
    )
    .await;
    bars.finish();
    let report = report.with_context(|| format!("settling {date}"))?;
    print_report(date, &report);
    if report.failures.is_empty() {
        Ok(())
    } else {
        anyhow::bail!(
            "{} batch(es) could not be finished; a later run retries them",
            report.failures.len()
        )
    }
}

fn print_report(date: &str, report: &RunReport) {
    println!("settlement of {date}");
    println!("{:<42} {:>10}", "", "count");
    for (label, count) in [
        ("entries settled", report.entries_settled),
        ("batches paid", report.batches_paid),
        ("batches carried, net negative", report.batches_carried),
        ("batches below minimum", report.batches_below_minimum),
        ("batches held, refunds in flight", report.batches_held),
        (
            "batches of this date from an earlier run",
            report.batches_existing,
        ),
        ("batches posted in the ledger", report.posted),
        ("payouts sent", report.payouts_sent),
        ("payouts failed", report.payouts_failed),
    ] {
        println!("{label:<42} {count:>10}");
    }
    for (currency, net) in &report.net_minor {
        let fees = report.fees_minor.get(currency).copied().unwrap_or(0);
        println!(
            "{}: net to merchants {}, fees to platform income {}",
            currency.code(),
            money::Money::new(*net, *currency),
            money::Money::new(fees, *currency)
        );
    }
    for (batch, reason) in &report.failures {
        println!("batch {batch} NOT FINISHED: {reason}");
    }
}

/// `paycore bill`: a merchant's daily trade bill, as `GET /v1/bills` serves
/// it, to a file or standard output, with its SHA-256 on standard error.
pub async fn bill(
    database: &DatabaseArgs,
    merchant: &str,
    date: &str,
    bill_type: &str,
    out: Option<&std::path::Path>,
) -> Result<()> {
    use settlement::SettlementStore;
    use sha2::Digest;
    let date = settlement::parse_date(date)
        .with_context(|| format!("{date:?} is not a date (YYYY-MM-DD)"))?
        .to_string();
    let kind = settlement::BillType::parse(bill_type)
        .with_context(|| format!("unknown bill type {bill_type:?} (ALL, SUCCESS, REFUND)"))?;
    let store = store::Store::open(&database.database)
        .await
        .with_context(|| format!("opening the database {}", database.database))?;
    let entries = store
        .clearing_entries(merchant, &date)
        .await
        .context("reading clearing entries")?;
    let bill = settlement::write_bill(&entries, kind)?;
    let digest = hex::encode(sha2::Sha256::digest(bill.csv.as_bytes()));
    match out {
        Some(path) => {
            std::fs::write(path, &bill.csv)
                .with_context(|| format!("writing {}", path.display()))?;
            println!(
                "bill of {merchant} on {date} ({}): {} rows to {}, sha256 {digest}",
                kind.as_str(),
                bill.rows,
                path.display()
            );
        }
        None => {
            print!("{}", bill.csv);
            eprintln!("sha256 {digest}");
        }
    }
    Ok(())
}

const REPORT_HEADER: [&str; 16] = [
    "batch",
    "merchant_id",
    "currency",
    "settle_date",
    "cycle",
    "destination",
    "status",
    "first_business_date",
    "last_business_date",
    "collection_count",
    "collections",
    "refund_count",
    "refunds",
    "fees",
    "net",
    "payout_payment",
];

/// `paycore settle report`: the settlement statement of a date, one row per
/// merchant batch, as CSV or Excel.
pub async fn report(
    database: &DatabaseArgs,
    date: &str,
    csv_path: Option<&std::path::Path>,
    xlsx_path: Option<&std::path::Path>,
) -> Result<()> {
    use settlement::SettlementStore;
    let date = settlement::parse_date(date)
        .with_context(|| format!("{date:?} is not a date (YYYY-MM-DD)"))?
        .to_string();
    let store = store::Store::open(&database.database)
        .await
        .with_context(|| format!("opening the database {}", database.database))?;
    let batches = store.batches(&date).await.context("reading batches")?;
    let rows: Vec<Vec<String>> = batches
        .iter()
        .map(|batch| {
            let major = |minor: i64| money::Money::new(minor, batch.currency).format_major();
            vec![
                batch.id.to_string(),
                batch.merchant_id.clone(),
                batch.currency.code().to_owned(),
                batch.settle_date.clone(),
                batch.cycle.clone(),
                batch.destination.clone(),
                batch.status.as_str().to_owned(),
                batch.first_business_date.clone(),
                batch.last_business_date.clone(),
                batch.collection_count.to_string(),
                major(batch.collections_minor),
                batch.refund_count.to_string(),
                major(batch.refunds_minor),
                major(batch.fees_minor),
                major(batch.net_minor),
                batch
                    .payout_payment_id
                    .map(|id| id.to_string())
                    .unwrap_or_default(),
            ]
        })
        .collect();
    crate::tables::write_report(csv_path, xlsx_path, "batches", &REPORT_HEADER, &rows)
}

/// `paycore report daily`: the daily summary (日汇总) of a date, one row per
/// merchant and currency and a total row per currency, as CSV or Excel.
pub async fn daily(
    database: &DatabaseArgs,
    date: &str,
    csv_path: Option<&std::path::Path>,
    xlsx_path: Option<&std::path::Path>,
) -> Result<()> {
    use settlement::SettlementStore;
    let day = settlement::parse_date(date)
        .with_context(|| format!("{date:?} is not a date (YYYY-MM-DD)"))?;
    let date = day.to_string();
    let store = store::Store::open(&database.database)
        .await
        .with_context(|| format!("opening the database {}", database.database))?;
    let totals = store
        .clearing_totals_of_date(&date)
        .await
        .context("reading clearing entries")?;
    let batches = store.batches(&date).await.context("reading batches")?;
    let summary = settlement::daily_summary(day, totals, &batches)
        .with_context(|| format!("summarising {date}"))?;
    crate::tables::write_report(
        csv_path,
        xlsx_path,
        "daily summary",
        &settlement::DAILY_SUMMARY_HEADER,
        &summary.rows(),
    )
}
