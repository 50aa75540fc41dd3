//! `paycore bench settle`: N clearing entries across M merchants netted into
//! settlement batches and posted in the ledger, on a fresh SQLite file (or
//! the PostgreSQL database given), against a baseline in the same run: one
//! aggregate scan of the same entries, the least any netting must read.
//!
//! Setting up (writing the entries, funding each merchant's
//! settlement-pending account with what its entries owe it, opening the
//! accounts) is timed apart and not counted.

use crate::progress::progress;
use anyhow::{Context, Result, bail};
use ledger::{
    AccountKind, BatchItem, LedgerWriter, Leg, NewAccount, Operation, Overdraft, OwnerKind, Side,
    TransferMode,
};
use money::Currency;
use server::settlement::{Progress, Stage};
use settlement::{Calendar, Cycle, Destination, MerchantTerms, SettlementConfig};
use std::sync::Mutex;
use std::time::Instant;
use store::{Ledger, LedgerOptions, Store};

#[derive(Debug, Clone, clap::Args)]
pub struct SettleBenchArgs {
    /// Clearing entries to settle.
    #[arg(long, default_value_t = 10_000_000)]
    entries: i64,
    /// Merchants they belong to.
    #[arg(long, default_value_t = 100_000)]
    merchants: i64,
    /// A PostgreSQL URL to run on instead of a fresh SQLite file. Its
    /// clearing entries and settlement batches must be empty.
    #[arg(long)]
    database: Option<String>,
}

/// The business dates of the entries, and the date that settles them all
/// on T+1 by the built-in calendar.
const DATES: [&str; 3] = ["2026-11-16", "2026-11-17", "2026-11-18"];
const SETTLE_DATE: &str = "2026-11-20";
/// Accounts opened at once while setting up.
const OPEN_AT_ONCE: usize = 256;

pub async fn run(arguments: SettleBenchArgs) -> Result<()> {
    if arguments.entries < 1 || arguments.merchants < 1 {
        bail!("--entries and --merchants must be at least 1");
    }
    let directory =
        std::env::temp_dir().join(format!("paycore-bench-settle-{}", std::process::id()));
    let database = match &arguments.database {
        Some(url) => url.clone(),
        None => {
            std::fs::create_dir_all(&directory).context("creating the benchmark directory")?;
            directory.join("settle.db").display().to_string()
        }
    };
    let outcome = measure(&arguments, &database).await;
    if arguments.database.is_none() {
        let _ = std::fs::remove_dir_all(&directory);
    }
    outcome
}

async fn measure(arguments: &SettleBenchArgs, database: &str) -> Result<()> {
    let store = Store::open(database)
        .await
        .with_context(|| format!("opening {database}"))?;
    let ledger = Ledger::start(store.clone(), LedgerOptions::default());
    let state = server::AppState::new(ledger.clone())?;
    let currency = Currency::from_code("CNY")?;

    let setup = Instant::now();
    println!(
        "setting up: {} entries over {} merchants",
        arguments.entries, arguments.merchants
    );
    store
        .bench_fill_clearing(arguments.entries, arguments.merchants, &DATES)
        .await
        .context("writing the clearing entries")?;
    fund_merchants(&state, &store, &ledger, currency).await?;
    println!("set up in {:.1} s", setup.elapsed().as_secs_f64());

    let baseline_started = Instant::now();
    let before = store.clearing_scan().await?;
    let baseline = baseline_started.elapsed().as_secs_f64();
    if store.clearing_settled().await? != 0 {
        bail!("the database already holds settled entries; give an empty one");
    }

    let calendar = Calendar::builtin()?;
    let terms = SettlementConfig::uniform(MerchantTerms {
        cycle: Cycle::T(1),
        destination: Destination::Available,
        minimum_minor: 0,
        reconciled_only: false,
    });
    let settle_date = settlement::parse_date(SETTLE_DATE)?;
    let clock = StageClock::default();
    let started = Instant::now();
    let report = server::settlement::run(
        &state,
        &calendar,
        &terms,
        settle_date,
        store::now_micros(),
        &clock,
    )
    .await
    .context("settling")?;
    let ended = Instant::now();
    let seconds = ended.duration_since(started).as_secs_f64();

    let settled = store.clearing_settled().await?;
    if !report.failures.is_empty() || settled != before.entries {
        bail!(
            "the run left {} of {} entries unsettled, failures: {:?}",
            before.entries.saturating_sub(settled),
            before.entries,
            report.failures.iter().take(5).collect::<Vec<_>>()
        );
    }
    let net: i64 = report.net_minor.values().sum();
    let fees: i64 = report.fees_minor.values().sum();
    println!();
    println!(
        "{:<52} {:>12} {:>10} {:>14}",
        "case", "entries", "seconds", "entries/s"
    );
    println!(
        "{:<52} {:>12} {:>10.2} {:>14.0}",
        "settle: net, batch, mark and post (paycore)",
        report.entries_settled,
        seconds,
        report.entries_settled as f64 / seconds.max(1e-9)
    );
    println!(
        "{:<52} {:>12} {:>10.2} {:>14.0}",
        "baseline: one aggregate scan of the entries",
        before.entries,
        baseline,
        before.entries as f64 / baseline.max(1e-9)
    );
    println!(
        "ratio settle / baseline time: {:.2}",
        seconds / baseline.max(1e-9)
    );
    println!("stages: {}", clock.split(started, ended));
    println!(
        "batches: {} paid, {} carried (net negative), {} posted; net to merchants {}, fees {}",
        report.batches_paid,
        report.batches_carried,
        report.posted,
        money::Money::new(net, currency),
        money::Money::new(fees, currency)
    );
    Ok(())
}

/// Opens every merchant's pending and available accounts and credits each
/// pending account with what its entries owe it, from an equity account,
/// as the collections would have.
async fn fund_merchants(
    state: &server::AppState,
    store: &Store,
    ledger: &Ledger,
    currency: Currency,
) -> Result<()> {
    let owed = store.unsettled_by_merchant(currency).await?;
    let equity = ledger
        .open_account(&NewAccount {
            subject_code: engine::default_subject_code(AccountKind::Equity).to_owned(),
            subject_class: AccountKind::Equity.default_subject_class(),
            kind: AccountKind::Equity,
            owner_kind: OwnerKind::Platform,
            owner_id: "bench-settle".to_owned(),
            currency,
            overdraft: Overdraft::Unlimited,
        })
        .await?;
    let bar = progress(owed.len() as u64, "accounts");
    let mut funding = Vec::with_capacity(owed.len());
    for chunk in owed.chunks(OPEN_AT_ONCE) {
        let mut opening = tokio::task::JoinSet::new();
        for (merchant, amount) in chunk.iter().cloned() {
            let state = state.clone();
            opening.spawn(async move {
                let pending = state
                    .payments()
                    .account(
                        OwnerKind::Merchant,
                        &merchant,
                        AccountKind::MerchantPending,
                        currency,
                    )
                    .await?;
                state
                    .payments()
                    .account(
                        OwnerKind::Merchant,
                        &merchant,
                        AccountKind::MerchantAvailable,
                        currency,
                    )
                    .await?;
                Ok::<_, engine::EngineError>((merchant, pending, amount))
            });
        }
        while let Some(opened) = opening.join_next().await {
            funding.push(opened??);
            bar.inc(1);
        }
    }
    bar.finish();
    for chunk in funding.chunks(2_000) {
        let items = chunk
            .iter()
            .filter(|(_, _, amount)| *amount > 0)
            .map(|(merchant, pending, amount)| {
                BatchItem::single(Operation::Transfer {
                    key: format!("bench-fund-{merchant}"),
                    legs: vec![
                        Leg {
                            account_id: equity,
                            side: Side::Debit,
                            amount_minor: *amount,
                            currency,
                        },
                        Leg {
                            account_id: *pending,
                            side: Side::Credit,
                            amount_minor: *amount,
                            currency,
                        },
                    ],
                    mode: TransferMode::Posted,
                    description: "benchmark: collections of the entries".to_owned(),
                })
            })
            .collect();
        for result in ledger.submit(items).await? {
            result.context("funding a merchant")?;
        }
    }
    Ok(())
}

/// When each stage of the run began, to split its time.
#[derive(Default)]
struct StageClock {
    starts: Mutex<Vec<(Stage, Instant)>>,
}

impl Progress for StageClock {
    fn start(&self, stage: Stage, _: u64) {
        if let Ok(mut starts) = self.starts.lock() {
            starts.push((stage, Instant::now()));
        }
    }

    fn advance(&self, _: Stage, _: u64) {}
}

impl StageClock {
    /// Seconds from each stage's start to the next's (the first from the
    /// run's start, the last to its end).
    fn split(&self, run_started: Instant, run_ended: Instant) -> String {
        let Ok(starts) = self.starts.lock() else {
            return String::new();
        };
        let mut parts = Vec::with_capacity(starts.len());
        let mut previous = run_started;
        let mut names = vec!["before netting".to_owned()];
        for (stage, at) in starts.iter() {
            parts.push(at.duration_since(previous).as_secs_f64());
            names.push(format!("{stage:?}"));
            previous = *at;
        }
        parts.push(run_ended.duration_since(previous).as_secs_f64());
        names
            .iter()
            .zip(parts)
            .map(|(name, seconds)| format!("{name} {seconds:.1} s"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}
