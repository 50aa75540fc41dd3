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

/// The file-metadata entry a record file carries when every key in it is a
/// decimal number: `"0"`, or up to 18 digits without a leading zero. Such a
/// key converts to an `i64` and back to the same text, so the matching plan
/// may join and group on the number instead of the text.
pub(crate) const KEY_NUMBERS: &str = "paycore.keys_are_numbers";

/// True for a key that [`KEY_NUMBERS`] describes.
pub(crate) fn is_key_number(key: &str) -> bool {
    let digits = key.as_bytes();
    match digits {
        [b'0'] => true,
        [b'1'..=b'9', rest @ ..] => rest.len() < 18 && rest.iter().all(u8::is_ascii_digit),
        _ => false,
    }
}

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

#[cfg(test)]
mod tests {
    use super::is_key_number;

    #[test]
    fn only_keys_that_survive_the_round_trip_through_i64_are_numbers() {
        for key in ["0", "7", "2026120300000001", "999999999999999999"] {
            assert!(is_key_number(key), "{key}");
            let number: i64 = key.parse().unwrap_or(-1);
            assert_eq!(number.to_string(), key);
        }
        // A leading zero, a sign, a 19th digit, a letter or nothing at all.
        for key in [
            "",
            "00",
            "012",
            "+1",
            "-1",
            "1000000000000000000",
            "12a",
            "1 ",
            "１",
        ] {
            assert!(!is_key_number(key), "{key}");
        }
    }
}
