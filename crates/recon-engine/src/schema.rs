//! The columns of a record file, the same for both sides.

use datafusion::arrow::array::{ArrayRef, Int32Builder, Int64Builder, RecordBatch, StringBuilder};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use recon::ReconRecord;
use std::sync::Arc;

pub(crate) const KEY: &str = "key";
pub(crate) const KIND: &str = "kind";
pub(crate) const CHANNEL_TRANSACTION_ID: &str = "channel_transaction_id";
pub(crate) const AMOUNT_MINOR: &str = "amount_minor";
pub(crate) const CURRENCY: &str = "currency";
pub(crate) const FEE_MINOR: &str = "fee_minor";
pub(crate) const STATUS: &str = "status";
pub(crate) const OCCURRED_AT: &str = "occurred_at";
pub(crate) const BUSINESS_DAY: &str = "business_day";

/// key, kind, channel_transaction_id, amount_minor, currency, fee_minor,
/// status, occurred_at (µs since the epoch), business_day (days since the
/// epoch). Text columns hold the codes of `recon::RecordKind` and
/// `recon::RecordStatus`.
pub fn record_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new(KEY, DataType::Utf8, false),
        Field::new(KIND, DataType::Utf8, false),
        Field::new(CHANNEL_TRANSACTION_ID, DataType::Utf8, true),
        Field::new(AMOUNT_MINOR, DataType::Int64, false),
        Field::new(CURRENCY, DataType::Utf8, false),
        Field::new(FEE_MINOR, DataType::Int64, true),
        Field::new(STATUS, DataType::Utf8, false),
        Field::new(OCCURRED_AT, DataType::Int64, false),
        Field::new(BUSINESS_DAY, DataType::Int32, false),
    ]))
}

/// Records as one Arrow batch of [`record_schema`].
pub fn records_to_batch(records: &[ReconRecord]) -> Result<RecordBatch, crate::EngineError> {
    let rows = records.len();
    let mut key = StringBuilder::with_capacity(rows, rows * 16);
    let mut kind = StringBuilder::with_capacity(rows, rows * 7);
    let mut transaction = StringBuilder::with_capacity(rows, rows * 24);
    let mut amount = Int64Builder::with_capacity(rows);
    let mut currency = StringBuilder::with_capacity(rows, rows * 3);
    let mut fee = Int64Builder::with_capacity(rows);
    let mut status = StringBuilder::with_capacity(rows, rows * 7);
    let mut occurred = Int64Builder::with_capacity(rows);
    let mut day = Int32Builder::with_capacity(rows);
    for record in records {
        key.append_value(&record.key);
        kind.append_value(record.kind.as_str());
        transaction.append_option(record.channel_transaction_id.as_deref());
        amount.append_value(record.amount_minor);
        currency.append_value(&record.currency);
        fee.append_option(record.fee_minor);
        status.append_value(record.status.as_str());
        occurred.append_value(record.occurred_at);
        day.append_value(record.business_day);
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(key.finish()),
        Arc::new(kind.finish()),
        Arc::new(transaction.finish()),
        Arc::new(amount.finish()),
        Arc::new(currency.finish()),
        Arc::new(fee.finish()),
        Arc::new(status.finish()),
        Arc::new(occurred.finish()),
        Arc::new(day.finish()),
    ];
    Ok(RecordBatch::try_new(record_schema(), columns)?)
}
