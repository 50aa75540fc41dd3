//! `paycore recon`: import channel statements, run reconciliation, report.
//!
//! Reconciliation storage is a directory of Parquet files beside the
//! database (`<database>.recon/` for a SQLite file): statements under
//! `statements/<channel>/<date>/`, snapshots of our records under
//! `snapshots/<channel>/<date>.parquet`. The database keeps which files were
//! imported, the runs, the discrepancies and every action on them.
//!
//! `paycore recon internal` is the other reconciliation: our orders against
//! our own journal (内部对账), over the database alone.

mod import;
mod internal;
mod report;
mod run;
mod simulate;

pub(crate) use crate::progress::progress;
use anyhow::{Context, Result, anyhow};
use std::path::PathBuf;

pub use import::import;
pub use internal::internal;
pub use report::report;
pub use run::{RunOptions, run};
pub use simulate::{Differences, simulate_statement};

/// The rules paycore ships with (`config/recon.toml`).
pub const BUILTIN_RULES: &str = include_str!("../../../../config/recon.toml");

/// Where reconciliation keeps its files and which rules it follows.
#[derive(Debug, Clone, clap::Args)]
pub struct ReconArgs {
    #[command(flatten)]
    pub database: crate::DatabaseArgs,
    /// Reconciliation storage; `<database>.recon` beside a SQLite file,
    /// `paycore-recon` for PostgreSQL.
    #[arg(long, env = "PAYCORE_RECON_DIR")]
    pub recon_dir: Option<PathBuf>,
    /// Error-code rules and channel settings like config/recon.toml; the
    /// built-in copy of that file without it.
    #[arg(long, env = "PAYCORE_RECON_RULES")]
    pub rules: Option<PathBuf>,
}

impl ReconArgs {
    pub fn directory(&self) -> PathBuf {
        self.recon_dir.clone().unwrap_or_else(|| {
            let database = &self.database.database;
            if database.starts_with("postgres") {
                PathBuf::from("paycore-recon")
            } else {
                PathBuf::from(format!("{database}.recon"))
            }
        })
    }

    pub fn rules(&self) -> Result<recon::ReconRules> {
        match &self.rules {
            None => Ok(recon::ReconRules::parse(BUILTIN_RULES)?),
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                recon::ReconRules::parse(&text).with_context(|| format!("in {}", path.display()))
            }
        }
    }
}

/// A channel's settings from the rules, or a clear error.
pub fn channel_settings<'a>(
    rules: &'a recon::ReconRules,
    channel: &str,
) -> Result<&'a recon::ChannelSettings> {
    rules.channels.get(channel).ok_or_else(|| {
        anyhow!(
            "channel {channel} has no [channels.{channel}] section in the reconciliation rules \
             (known: {})",
            rules
                .channels
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        )
    })
}

/// A `YYYY-MM-DD` argument as a business day.
pub fn parse_date(text: &str) -> Result<i32> {
    recon::parse_day(text).ok_or_else(|| anyhow!("{text:?} is not a date (YYYY-MM-DD)"))
}
