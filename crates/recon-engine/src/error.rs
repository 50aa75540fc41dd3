use std::path::PathBuf;

/// What can go wrong while writing or matching record files.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("reconciliation query failed: {0}")]
    Query(#[from] datafusion::error::DataFusionError),
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("parquet: {0}")]
    Parquet(#[from] datafusion::parquet::errors::ParquetError),
    #[error("arrow: {0}")]
    Arrow(#[from] datafusion::arrow::error::ArrowError),
    #[error("record file {path} has an unexpected column {column}")]
    Schema { path: PathBuf, column: String },
    #[error("unknown value {value:?} in column {column}")]
    Value { column: &'static str, value: String },
    /// The second pass, which fetches the figures of the discrepant keys,
    /// returned a different number of rows than the first pass found keys
    /// (a platform file holding a key twice does this).
    #[error("the figures pass returned {found} rows for {expected} discrepant keys")]
    FiguresMismatch { expected: u64, found: u64 },
}

impl EngineError {
    pub fn code(&self) -> &'static str {
        match self {
            EngineError::Query(_) => "RECON_QUERY_FAILED",
            EngineError::Write { .. }
            | EngineError::Read { .. }
            | EngineError::Parquet(_)
            | EngineError::Arrow(_) => "RECON_STORAGE_FAILED",
            EngineError::Schema { .. }
            | EngineError::Value { .. }
            | EngineError::FiguresMismatch { .. } => "RECON_FILE_INVALID",
        }
    }
}
