//! `paycore recon import`: a statement file into reconciliation storage,
//! whole or not at all, once.

use super::{ReconArgs, channel_settings, parse_date, progress};
use anyhow::{Context, Result, bail};
use recon::{NewStatementFile, ReconRecord, ReconStore, ReconStoreError, RecordKind, RecordStatus};
use recon_engine::RecordFileWriter;
use sha2::{Digest, Sha256};
use statements::StatementRecord;
use std::io::Read;
use std::path::Path;
use store::Store;

/// Hex SHA-256 of a file, read in pieces.
fn sha256_of(path: &Path) -> Result<(String, u64)> {
    let mut file =
        std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    let mut bytes = 0u64;
    loop {
        let read = file
            .read(&mut buffer)
            .with_context(|| format!("reading {}", path.display()))?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
        bytes += read as u64;
    }
    Ok((hex::encode(hasher.finalize()), bytes))
}

/// A statement line as a reconciliation record: keyed by our channel order
/// id (the refund's own for a refund).
pub fn to_record(record: StatementRecord, utc_offset_minutes: i32) -> ReconRecord {
    let (kind, key, transaction) = match record.kind {
        statements::RecordKind::Payment => (
            RecordKind::Payment,
            record.merchant_order_id,
            record.channel_transaction_id,
        ),
        statements::RecordKind::Refund => (
            RecordKind::Refund,
            record
                .merchant_refund_id
                .unwrap_or(record.merchant_order_id),
            record
                .channel_refund_id
                .unwrap_or(record.channel_transaction_id),
        ),
    };
    let status = match record.status {
        statements::RecordStatus::Success => RecordStatus::Success,
        statements::RecordStatus::Processing => RecordStatus::Processing,
        statements::RecordStatus::Failed => RecordStatus::Failed,
    };
    // The file prints the channel's local time.
    let offset = time::UtcOffset::from_whole_seconds(utc_offset_minutes * 60)
        .unwrap_or(time::UtcOffset::UTC);
    let occurred = record.occurred_at.assume_offset(offset).unix_timestamp() * 1_000_000;
    let business_day = recon::day_of(record.business_date);
    ReconRecord {
        key,
        kind,
        channel_transaction_id: (!transaction.is_empty()).then_some(transaction),
        amount_minor: record.requested_amount.amount_minor(),
        currency: record.requested_amount.currency().code().to_owned(),
        fee_minor: Some(record.fee.amount_minor()),
        status,
        occurred_at: occurred,
        business_day,
    }
}

pub async fn import(
    arguments: &ReconArgs,
    channel: &str,
    date: &str,
    file: &Path,
    format: Option<&str>,
) -> Result<()> {
    let rules = arguments.rules()?;
    let settings = channel_settings(&rules, channel)?;
    let business_day = parse_date(date)?;
    let format_name = format.unwrap_or(&settings.statement_format).to_owned();
    let format: statements::Format = format_name.parse()?;
    let (sha256, bytes) = sha256_of(file)?;
    let store = Store::open(&arguments.database.database)
        .await
        .with_context(|| format!("opening the database {}", arguments.database.database))?;
    let directory = arguments
        .directory()
        .join("statements")
        .join(channel)
        .join(date);
    let stamp = store::now_micros();
    let record_path = directory.join(format!("{sha256}-{stamp}.parquet"));
    let options = statements::Options {
        business_date: None,
        fee_rounding: None,
    };
    let reader = statements::open_with(file, &format, options)?;
    let mut writer = RecordFileWriter::create(&record_path)?;
    let bar = progress(0, "importing");
    for record in reader {
        // The first bad line stops the import; the writer's drop removes
        // the partial file, so nothing of this file is kept.
        let record = record?;
        writer.push(to_record(record, settings.utc_offset_minutes))?;
        bar.inc(1);
    }
    let records = writer.finish()?;
    bar.finish_and_clear();
    let file_name = file
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let registered = store
        .record_statement_file(
            &NewStatementFile {
                channel: channel.to_owned(),
                business_day,
                file_name,
                sha256,
                format: format_name,
                records,
                record_path: record_path.to_string_lossy().into_owned(),
            },
            store::now_micros(),
        )
        .await;
    match registered {
        Ok(imported) => {
            println!(
                "imported {} ({} bytes): {records} records for {channel} on {date}, file id {}",
                file.display(),
                bytes,
                imported.id
            );
            Ok(())
        }
        Err(error) => {
            let _ = std::fs::remove_file(&record_path);
            if let ReconStoreError::AlreadyImported { .. } = error {
                bail!("{} was not imported: {error}", file.display());
            }
            Err(error.into())
        }
    }
}
