//! `paycore batch submit|run|show|return-file`: an operator's hand on
//! collection batches (批量代扣) — upload a client's batch file, run it to
//! its close with a progress bar (as the server's resolver does every
//! second), list its lines, and write its return file (回盘).

use crate::progress::progress;
use crate::tables::write_report;
use crate::{ConfigArgs, DatabaseArgs, open_state};
use anyhow::{Context, Result, anyhow, bail};
use clap::Subcommand;
use engine::{BatchStatus, CollectionBatchStore, EngineError, LineCounts};
use server::collection_batches::{self, Upload};
use std::path::PathBuf;
use std::time::Duration;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// How often `batch run` runs a round.
const ROUND_INTERVAL: Duration = Duration::from_millis(200);
/// Most unfinished payments one round of `batch run` queries.
const RESOLVE_MAX: usize = 512;

#[derive(Debug, Subcommand)]
pub enum BatchCommand {
    /// Upload a batch file (CSV: reference, agreement_no, member_id,
    /// amount, optional priority, and any columns of the client's own) for
    /// a merchant, to run before its deadline.
    Submit {
        #[command(flatten)]
        database: DatabaseArgs,
        #[command(flatten)]
        config: ConfigArgs,
        #[arg(long)]
        merchant: String,
        /// The client's batch number, unique per merchant.
        #[arg(long)]
        batch_no: String,
        #[arg(long)]
        file: PathBuf,
        /// When the return file is due, RFC 3339 (2026-12-01T18:00:00+08:00).
        #[arg(long)]
        deadline: String,
        #[arg(long, default_value = "CNY")]
        currency: String,
    },
    /// Run a batch round by round until it closes (every line final, or its
    /// deadline), then run the late check once.
    Run {
        #[command(flatten)]
        database: DatabaseArgs,
        #[command(flatten)]
        config: ConfigArgs,
        /// The batch's id.
        #[arg(long)]
        id: i64,
    },
    /// A batch's lines as CSV (standard output without --csv/--xlsx) or
    /// Excel.
    Show {
        #[command(flatten)]
        database: DatabaseArgs,
        #[command(flatten)]
        config: ConfigArgs,
        #[arg(long)]
        id: i64,
        #[arg(long)]
        csv: Option<PathBuf>,
        #[arg(long)]
        xlsx: Option<PathBuf>,
    },
    /// Write the return file (回盘) of a CLOSED batch, with its SHA-256.
    ReturnFile {
        #[command(flatten)]
        database: DatabaseArgs,
        #[command(flatten)]
        config: ConfigArgs,
        #[arg(long)]
        id: i64,
        /// Write it here instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

fn engine_error(error: EngineError) -> anyhow::Error {
    anyhow!("{}: {error}", error.code())
}

fn micros(at: OffsetDateTime) -> Result<i64> {
    i64::try_from(at.unix_timestamp_nanos() / 1_000).map_err(|_| anyhow!("{at} is out of range"))
}

pub async fn run(command: BatchCommand) -> Result<()> {
    match command {
        BatchCommand::Submit {
            database,
            config,
            merchant,
            batch_no,
            file,
            deadline,
            currency,
        } => {
            let state = open_state(&database.database, &config.load()?).await?;
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let deadline = OffsetDateTime::parse(&deadline, &Rfc3339)
                .with_context(|| format!("--deadline {deadline:?} is not RFC 3339"))?;
            let upload = Upload {
                merchant_id: &merchant,
                batch_no: &batch_no,
                currency: money::Currency::from_code(&currency)?,
                deadline: micros(deadline)?,
                file: &text,
            };
            let batch = collection_batches::submit(&state, &upload, store::now_micros())
                .await
                .map_err(engine_error)
                .with_context(|| format!("submitting {}", file.display()))?;
            println!(
                "batch {} ({} of {}): {} lines, {} {} in all, {}",
                batch.id,
                batch.batch_no,
                batch.merchant_id,
                batch.line_count,
                money::Money::new(batch.total_minor, batch.currency).format_major(),
                batch.currency.code(),
                batch.status.as_str()
            );
            Ok(())
        }
        BatchCommand::Run {
            database,
            config,
            id,
        } => run_to_close(&open_state(&database.database, &config.load()?).await?, id).await,
        BatchCommand::Show {
            database,
            config,
            id,
            csv,
            xlsx,
        } => {
            let state = open_state(&database.database, &config.load()?).await?;
            let (batch, lines) = collection_batches::batch_with_lines(&state, None, id)
                .await
                .map_err(engine_error)?;
            let header = [
                "line_no",
                "reference",
                "agreement_no",
                "member_id",
                "amount",
                "priority",
                "status",
                "payment_id",
                "failure_code",
                "late",
                "late_refund_id",
            ];
            let rows: Vec<Vec<String>> = lines
                .iter()
                .map(|line| {
                    vec![
                        line.line_no.to_string(),
                        line.reference.clone(),
                        line.agreement_no.clone(),
                        line.member_id.clone(),
                        money::Money::new(line.amount_minor, batch.currency).format_major(),
                        line.priority.to_string(),
                        line.status.as_str().to_owned(),
                        line.payment_id.map(|id| id.to_string()).unwrap_or_default(),
                        line.failure_code.clone().unwrap_or_default(),
                        line.late
                            .map(|late| late.as_str().to_owned())
                            .unwrap_or_default(),
                        line.late_refund_id
                            .map(|id| id.to_string())
                            .unwrap_or_default(),
                    ]
                })
                .collect();
            write_report(csv.as_deref(), xlsx.as_deref(), "lines", &header, &rows)
        }
        BatchCommand::ReturnFile {
            database,
            config,
            id,
            out,
        } => {
            let state = open_state(&database.database, &config.load()?).await?;
            let (batch, text, sha256) = collection_batches::return_file(&state, None, id)
                .await
                .map_err(engine_error)?;
            match out {
                Some(path) => {
                    std::fs::write(&path, &text)
                        .with_context(|| format!("writing {}", path.display()))?;
                    println!(
                        "wrote {} (return file of batch {}, sha256 {sha256})",
                        path.display(),
                        batch.batch_no
                    );
                }
                None => print!("{text}"),
            }
            Ok(())
        }
    }
}

/// Rounds until the batch closes: each one advances the batch and queries
/// its unfinished payments, as the server's resolver does.
async fn run_to_close(state: &server::AppState, id: i64) -> Result<()> {
    let store = state.store();
    let Some(mut batch) = store
        .collection_batch(None, id)
        .await
        .map_err(|error| engine_error(error.into()))?
    else {
        bail!("BATCH_NOT_FOUND: no collection batch {id}");
    };
    let bar = progress(u64::try_from(batch.line_count).unwrap_or(0), "lines");
    while batch.status == BatchStatus::Running {
        let now = store::now_micros();
        for result in state
            .payments()
            .resolve_unfinished(now, 0, RESOLVE_MAX)
            .await
            .map_err(engine_error)?
        {
            if let Err(error) = result {
                tracing::warn!(%error, "a payment could not be advanced");
            }
        }
        batch = collection_batches::advance(state, &batch, now)
            .await
            .map_err(engine_error)?;
        let lines = store
            .batch_lines(id)
            .await
            .map_err(|error| engine_error(error.into()))?;
        let counts = LineCounts::of(&lines);
        bar.set_position(u64::try_from(counts.success + counts.failed).unwrap_or(0));
        if batch.status == BatchStatus::Running {
            tokio::time::sleep(ROUND_INTERVAL).await;
        }
    }
    bar.finish();
    let late = collection_batches::check_late(state, store::now_micros())
        .await
        .map_err(engine_error)?;
    let (batch, lines) = collection_batches::batch_with_lines(state, None, id)
        .await
        .map_err(engine_error)?;
    let counts = LineCounts::of(&lines);
    let amount = |minor: i64| money::Money::new(minor, batch.currency).format_major();
    println!(
        "batch {} {}: {} succeeded ({}), {} failed ({}); {} late successes refunded for review{}",
        batch.batch_no,
        batch.status.as_str(),
        counts.success,
        amount(counts.success_minor),
        counts.failed,
        amount(counts.failed_minor),
        counts.late_refunded,
        if late.is_empty() {
            String::new()
        } else {
            format!(" ({} just now)", late.len())
        }
    );
    Ok(())
}
