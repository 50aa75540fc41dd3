//! The DataFusion session a reconciliation runs in.

use crate::EngineError;
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::memory_pool::FairSpillPool;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};
use std::path::PathBuf;
use std::sync::Arc;

/// How much of the machine a run may use.
#[derive(Debug, Clone)]
pub struct SessionSettings {
    /// Partitions the plan hashes the keys into, and runs at once.
    pub partitions: usize,
    /// Memory the plan's operators may hold; past it they spill to disk
    /// (sorts, aggregations, sort-merge joins) or fail clearly.
    pub memory_limit_bytes: usize,
    /// Where spill files go; the system's temporary directory if `None`.
    pub spill_directory: Option<PathBuf>,
    /// Join by sorting both sides (spills, bounded memory) instead of by
    /// hashing (faster, holds the channel's side in memory).
    pub sort_merge_join: bool,
    /// Rows per Arrow batch.
    pub batch_rows: usize,
}

impl Default for SessionSettings {
    fn default() -> Self {
        SessionSettings {
            // More partitions than cores: smaller hash tables per partition
            // ran faster in `bench recon` (2 → 8 partitions on 2 cores: 19.5 s → 12.7 s at 10M).
            partitions: std::thread::available_parallelism().map_or(2, usize::from) * 4,
            memory_limit_bytes: 3 << 30,
            spill_directory: None,
            sort_merge_join: false,
            batch_rows: 8_192,
        }
    }
}

/// A session configured by `settings`.
pub fn session(settings: &SessionSettings) -> Result<SessionContext, EngineError> {
    let mut config = SessionConfig::new()
        .with_target_partitions(settings.partitions.max(1))
        .with_batch_size(settings.batch_rows.max(1))
        .with_repartition_joins(true)
        .with_repartition_aggregations(true);
    config.options_mut().optimizer.prefer_hash_join = !settings.sort_merge_join;
    // Text read from Parquet as string views is counted several times by the
    // memory pool; plain strings let a 10M-record day fit in 3 GiB.
    config
        .options_mut()
        .execution
        .parquet
        .schema_force_view_types = false;
    // Always hash-partition the join's inputs by key, never collect one side
    // into a single partition: the plan then has the shape a cluster runs.
    config
        .options_mut()
        .optimizer
        .hash_join_single_partition_threshold = 0;
    config
        .options_mut()
        .optimizer
        .hash_join_single_partition_threshold_rows = 0;
    // The second pass semi-joins about 1% of the keys to every record; with
    // filters evaluated while the Parquet pages are decoded, the join's
    // filter on the keys skips decoding the other columns of the rest
    // (10 M: 2.7–3.0 s → 1.9–2.1 s for that pass).
    config.options_mut().execution.parquet.pushdown_filters = true;
    let disk = match &settings.spill_directory {
        Some(directory) => DiskManagerBuilder::default()
            .with_mode(DiskManagerMode::Directories(vec![directory.clone()])),
        None => DiskManagerBuilder::default().with_mode(DiskManagerMode::OsTmpDirectory),
    };
    let runtime = RuntimeEnvBuilder::new()
        // A fair pool shares the limit among the spilling operators, so a
        // sort-merge join of a day larger than memory spills instead of failing.
        .with_memory_pool(Arc::new(FairSpillPool::new(settings.memory_limit_bytes)))
        .with_disk_manager_builder(disk)
        .build_arc()?;
    Ok(SessionContext::new_with_config_rt(config, runtime))
}
