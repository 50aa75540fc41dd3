//! Writing a record file: whole or not at all.

use crate::schema::{KEY_NUMBERS, is_key_number};
use crate::{EngineError, record_schema, records_to_batch};
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::basic::{Compression, ZstdLevel};
use datafusion::parquet::file::metadata::KeyValue;
use datafusion::parquet::file::properties::WriterProperties;
use recon::ReconRecord;
use std::fs::File;
use std::path::{Path, PathBuf};

/// Records buffered before they are written as one row group slice.
pub const BATCH_ROWS_MAX: usize = 65_536;

/// Streams records into a Parquet file. Rows go to `<path>.partial`; only
/// [`RecordFileWriter::finish`] renames it to `path`, so a reader never sees
/// half a file and a failed import leaves nothing behind. The file's
/// metadata says whether every key in it is a decimal number (see
/// `schema::KEY_NUMBERS`).
pub struct RecordFileWriter {
    path: PathBuf,
    partial: PathBuf,
    writer: Option<ArrowWriter<File>>,
    buffer: Vec<ReconRecord>,
    rows: u64,
    keys_are_numbers: bool,
}

impl RecordFileWriter {
    pub fn create(path: &Path) -> Result<RecordFileWriter, EngineError> {
        let io = |source| EngineError::Write {
            path: path.to_owned(),
            source,
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        let mut partial = path.as_os_str().to_owned();
        partial.push(".partial");
        let partial = PathBuf::from(partial);
        let file = File::create(&partial).map_err(io)?;
        let properties = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::default()))
            .build();
        let writer = ArrowWriter::try_new(file, record_schema(), Some(properties))?;
        Ok(RecordFileWriter {
            path: path.to_owned(),
            partial,
            writer: Some(writer),
            buffer: Vec::with_capacity(BATCH_ROWS_MAX),
            rows: 0,
            keys_are_numbers: true,
        })
    }

    pub fn push(&mut self, record: ReconRecord) -> Result<(), EngineError> {
        self.keys_are_numbers &= is_key_number(&record.key);
        self.buffer.push(record);
        if self.buffer.len() >= BATCH_ROWS_MAX {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), EngineError> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let batch = records_to_batch(&self.buffer)?;
        if let Some(writer) = self.writer.as_mut() {
            writer.write(&batch)?;
        }
        self.rows += self.buffer.len() as u64;
        self.buffer.clear();
        Ok(())
    }

    /// Writes what is buffered, syncs the file and moves it into place.
    /// Returns the number of records written.
    pub fn finish(mut self) -> Result<u64, EngineError> {
        self.flush()?;
        let io = |source| EngineError::Write {
            path: self.path.clone(),
            source,
        };
        if let Some(mut writer) = self.writer.take() {
            writer.append_key_value_metadata(KeyValue::new(
                KEY_NUMBERS.to_owned(),
                self.keys_are_numbers.to_string(),
            ));
            let file = writer.into_inner()?;
            file.sync_all().map_err(io)?;
        }
        std::fs::rename(&self.partial, &self.path).map_err(io)?;
        Ok(self.rows)
    }
}

impl Drop for RecordFileWriter {
    /// An unfinished file is removed, not left half-written.
    fn drop(&mut self) {
        if self.writer.is_some() {
            let _ = std::fs::remove_file(&self.partial);
        }
    }
}
