//! The reconciliation engine (对账引擎): the day's records of both sides as
//! Parquet files in reconciliation storage, matched by one Apache DataFusion
//! plan that classifies every key.
//!
//! **Architecture Invariant:** this is the only crate that depends on
//! DataFusion. It reads and writes files; it never reads the live order
//! tables (the caller snapshots them into files first) and never moves money
//! (the caller treats what it finds).
//!
//! The plan hash-partitions both inputs by key before it aggregates the
//! channel's side and joins, so each partition is matched independently;
//! that is what lets the same logical plan run on a Ballista cluster, where
//! the partitions become tasks on many executors (see ARCHITECTURE.md).

mod error;
mod matching;
mod schema;
mod session;
mod writer;

pub use error::EngineError;
pub use matching::{MatchSummary, explain_matching, match_files};
pub use schema::{record_schema, records_to_batch};
pub use session::{SessionSettings, session};
pub use writer::RecordFileWriter;
