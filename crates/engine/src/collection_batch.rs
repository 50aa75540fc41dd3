//! Batch collection with a deadline (批量代扣): a client such as a card
//! centre uploads a file of debit lines, each against one of its signed
//! agreements; the lines run as `debit_collection` payments, highest
//! priority first; at the batch's deadline every line still waiting or
//! PROCESSING is FAILED and the return file (回盘) can be fetched. A line
//! whose payment succeeds after the deadline was reported FAILED to the
//! client, so its money must go back: the late check raises a platform
//! refund that waits in PENDING_REVIEW.
//!
//! This module holds what needs no storage: the upload format and its
//! parser, the return file, the line and batch states and the
//! [`CollectionBatchStore`] trait. The server runs the batches.
//!
//! # Upload format (CSV, UTF-8, comma-separated, a header row)
//!
//! | column | required | meaning |
//! | --- | --- | --- |
//! | `reference` | yes | the client's id of the line, unique in the batch, 1 to 64 characters |
//! | `agreement_no` | yes | the ACTIVE agreement (签约) the debit is made under |
//! | `member_id` | yes | the member who signed it |
//! | `amount` | yes | decimal in major units of the batch's currency, above zero (`125.50`) |
//! | `priority` | no | an integer, higher runs first; `0` when absent or empty |
//!
//! Columns may come in any order, and the client may add columns of its
//! own (its card account, a branch code): they are kept and come back in
//! the return file unchanged. Anything else wrong — a missing column, an
//! empty or too long field, a bad amount or priority, a repeated reference,
//! a line with the wrong number of fields — refuses the whole file with the
//! line and field named; nothing of it is stored.
//!
//! # Return file (回盘)
//!
//! The upload's header and lines, in the upload's order, each with four
//! columns appended: `result` (`SUCCESS` or `FAILED`), `result_code` (empty
//! on success; the channel's or the engine's code, `DEADLINE_PASSED` for a
//! line still PROCESSING at the deadline, `NOT_SENT_BY_DEADLINE` for one
//! never sent), `result_message` and `payment_id` (empty if no payment was
//! made). The client matches it to its upload line by line.

use crate::order::{REFERENCE_LENGTH_MAX, check_text};
use crate::{OrderError, OrderStoreError};
use ledger::TimestampMicros;
use money::{Currency, Money};
use std::collections::HashSet;
use std::future::Future;

pub type CollectionBatchId = i64;

/// Most lines one batch may carry.
pub const BATCH_LINES_MAX: usize = 100_000;
/// The code of a line that was still PROCESSING at its batch's deadline.
pub const DEADLINE_PASSED: &str = "DEADLINE_PASSED";
/// The code of a line never sent before its batch's deadline.
pub const NOT_SENT_BY_DEADLINE: &str = "NOT_SENT_BY_DEADLINE";
/// The product every line runs as.
pub const BATCH_PRODUCT: &str = "debit_collection";
/// The columns the return file appends to the client's.
pub const RESULT_COLUMNS: [&str; 4] = ["result", "result_code", "result_message", "payment_id"];

const REQUIRED_COLUMNS: [&str; 4] = ["reference", "agreement_no", "member_id", "amount"];

/// A batch: RUNNING until its deadline or until every line is final,
/// then CLOSED with its return file fixed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchStatus {
    Running,
    Closed,
}

text_enum!(BatchStatus {
    Running = "RUNNING",
    Closed = "CLOSED",
});

/// A line: WAITING to be sent, PROCESSING (sent, no final answer), then
/// SUCCESS or FAILED. Only WAITING → PROCESSING, PROCESSING → SUCCESS |
/// FAILED and, at the deadline, WAITING → FAILED happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineStatus {
    Waiting,
    Processing,
    Success,
    Failed,
}

text_enum!(LineStatus {
    Waiting = "WAITING",
    Processing = "PROCESSING",
    Success = "SUCCESS",
    Failed = "FAILED",
});

impl LineStatus {
    pub fn is_final(self) -> bool {
        matches!(self, LineStatus::Success | LineStatus::Failed)
    }
}

/// What the late check found of a line FAILED at the deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LateOutcome {
    /// Its payment failed too, or none was ever made: nothing to do.
    NotCollected,
    /// Its payment succeeded after the deadline: a refund was raised.
    Refunded,
}

text_enum!(LateOutcome {
    NotCollected = "NOT_COLLECTED",
    Refunded = "REFUNDED",
});

/// One debit line of an upload, as parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewBatchLine {
    /// 1 for the first line after the header.
    pub line_no: i64,
    pub reference: String,
    pub agreement_no: String,
    pub member_id: String,
    pub amount_minor: i64,
    pub priority: i64,
    /// The client's fields of the line as a CSV record, for the return file.
    pub raw: String,
}

/// An accepted upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedBatchFile {
    /// The client's header as a CSV record.
    pub header: String,
    pub lines: Vec<NewBatchLine>,
    pub total_minor: i64,
}

/// A batch to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCollectionBatch {
    pub merchant_id: String,
    /// The client's batch number, unique per merchant: a repeat with the
    /// same file is the same batch.
    pub batch_no: String,
    pub currency: Currency,
    pub deadline: TimestampMicros,
    /// Hex SHA-256 of the uploaded file.
    pub file_sha256: String,
    pub file: ParsedBatchFile,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectionBatch {
    pub id: CollectionBatchId,
    pub merchant_id: String,
    pub batch_no: String,
    pub currency: Currency,
    pub deadline: TimestampMicros,
    pub status: BatchStatus,
    pub header: String,
    pub line_count: i64,
    pub total_minor: i64,
    pub file_sha256: String,
    pub created_at: TimestampMicros,
    pub closed_at: Option<TimestampMicros>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchLine {
    pub batch_id: CollectionBatchId,
    pub line_no: i64,
    pub reference: String,
    pub agreement_no: String,
    pub member_id: String,
    pub amount_minor: i64,
    pub priority: i64,
    pub raw: String,
    pub status: LineStatus,
    pub payment_id: Option<i64>,
    pub failure_code: Option<String>,
    pub failure_message: Option<String>,
    pub late: Option<LateOutcome>,
    pub late_refund_id: Option<i64>,
    pub updated_at: TimestampMicros,
}

impl CollectionBatch {
    /// The field in which an upload repeating this batch's number differs
    /// from the upload that made it, if any.
    pub fn conflict_with_upload(
        &self,
        file_sha256: &str,
        currency: Currency,
        deadline: TimestampMicros,
    ) -> Option<&'static str> {
        if self.file_sha256 != file_sha256 {
            return Some("file");
        }
        if self.currency != currency {
            return Some("currency");
        }
        if self.deadline != deadline {
            return Some("deadline");
        }
        None
    }
}

impl BatchLine {
    /// The trade number (and request serial) of the line's payment: the
    /// batch's id and the line's number, so a repeated send is the same
    /// payment.
    pub fn out_trade_no(&self) -> String {
        line_out_trade_no(self.batch_id, self.line_no)
    }
}

/// See [`BatchLine::out_trade_no`].
pub fn line_out_trade_no(batch_id: CollectionBatchId, line_no: i64) -> String {
    // The store's late check builds the same text in SQL.
    format!("batch-{batch_id}-{line_no}")
}

/// The serial of the refund the late check raises for a line.
pub fn late_refund_serial(batch_id: CollectionBatchId, line_no: i64) -> String {
    format!("batch-late-{batch_id}-{line_no}")
}

/// How many lines of a batch stand where.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LineCounts {
    pub waiting: i64,
    pub processing: i64,
    pub success: i64,
    pub success_minor: i64,
    pub failed: i64,
    pub failed_minor: i64,
    /// Lines FAILED at the deadline whose payment succeeded later.
    pub late_refunded: i64,
}

impl LineCounts {
    pub fn of(lines: &[BatchLine]) -> LineCounts {
        let mut counts = LineCounts::default();
        for line in lines {
            match line.status {
                LineStatus::Waiting => counts.waiting += 1,
                LineStatus::Processing => counts.processing += 1,
                LineStatus::Success => {
                    counts.success += 1;
                    counts.success_minor = counts.success_minor.saturating_add(line.amount_minor);
                }
                LineStatus::Failed => {
                    counts.failed += 1;
                    counts.failed_minor = counts.failed_minor.saturating_add(line.amount_minor);
                }
            }
            if line.late == Some(LateOutcome::Refunded) {
                counts.late_refunded += 1;
            }
        }
        counts
    }
}

/// A line's move, applied only if it is still in `from`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineChange {
    pub from: LineStatus,
    pub to: LineStatus,
    pub payment_id: Option<i64>,
    pub failure_code: Option<String>,
    pub failure_message: Option<String>,
}

/// Why a batch was refused or cannot be read as asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CollectionBatchError {
    #[error("batch file line {line}, field {field}: {message}")]
    InvalidFile {
        /// 0 for the header, 1 for the first line after it.
        line: u64,
        field: String,
        message: String,
    },
    #[error("{0}")]
    Invalid(String),
    #[error("no collection batch {0}")]
    NotFound(CollectionBatchId),
    #[error("collection batch {0} is still RUNNING: its return file is written at its deadline")]
    NotClosed(CollectionBatchId),
}

impl CollectionBatchError {
    pub fn code(&self) -> &'static str {
        match self {
            CollectionBatchError::InvalidFile { .. } => "INVALID_BATCH_FILE",
            CollectionBatchError::Invalid(_) => "INVALID_BATCH",
            CollectionBatchError::NotFound(_) => "BATCH_NOT_FOUND",
            CollectionBatchError::NotClosed(_) => "BATCH_NOT_CLOSED",
        }
    }
}

fn file_error(line: u64, field: &str, message: impl Into<String>) -> CollectionBatchError {
    CollectionBatchError::InvalidFile {
        line,
        field: field.to_owned(),
        message: message.into(),
    }
}

/// Checks a batch's number and deadline against `now`.
pub fn check_batch(
    batch_no: &str,
    deadline: TimestampMicros,
    now: TimestampMicros,
) -> Result<(), CollectionBatchError> {
    check_text("batch_no", batch_no, REFERENCE_LENGTH_MAX)
        .map_err(|error| CollectionBatchError::Invalid(error.to_string()))?;
    if deadline <= now {
        return Err(CollectionBatchError::Invalid(
            "the deadline must be in the future".to_owned(),
        ));
    }
    Ok(())
}

/// One record as CSV text, without its line end.
fn record_text(record: &csv::StringRecord) -> Result<String, CollectionBatchError> {
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::new());
    let written = writer
        .write_record(record)
        .map_err(|error| CollectionBatchError::Invalid(error.to_string()))
        .and_then(|()| {
            writer
                .into_inner()
                .map_err(|error| CollectionBatchError::Invalid(error.to_string()))
        })?;
    let mut text = String::from_utf8(written)
        .map_err(|error| CollectionBatchError::Invalid(error.to_string()))?;
    if text.ends_with('\n') {
        text.pop();
    }
    Ok(text)
}

/// Parses an upload in the batch's `currency` (see the module's format).
pub fn parse_batch_file(
    text: &str,
    currency: Currency,
) -> Result<ParsedBatchFile, CollectionBatchError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_reader(text.as_bytes());
    let header = reader
        .headers()
        .map_err(|error| file_error(0, "header", error.to_string()))?
        .clone();
    let column = |name: &str| header.iter().position(|field| field.trim() == name);
    let mut required = [0usize; 4];
    for (slot, name) in required.iter_mut().zip(REQUIRED_COLUMNS) {
        *slot = column(name).ok_or_else(|| file_error(0, name, "column missing"))?;
    }
    let [reference_at, agreement_at, member_at, amount_at] = required;
    let priority_at = column("priority");
    for name in RESULT_COLUMNS {
        if column(name).is_some() {
            return Err(file_error(
                0,
                name,
                "is a column the return file adds; rename it",
            ));
        }
    }
    let mut seen = HashSet::new();
    let mut lines = Vec::new();
    let mut total_minor: i64 = 0;
    for (index, record) in reader.records().enumerate() {
        let line = u64::try_from(index).unwrap_or(u64::MAX).saturating_add(1);
        let record = record.map_err(|error| file_error(line, "record", error.to_string()))?;
        if lines.len() == BATCH_LINES_MAX {
            return Err(file_error(
                line,
                "record",
                format!("a batch carries at most {BATCH_LINES_MAX} lines"),
            ));
        }
        let field = |at: usize, name: &'static str| -> Result<String, CollectionBatchError> {
            let value = record.get(at).unwrap_or("").trim();
            check_text(name, value, REFERENCE_LENGTH_MAX)
                .map_err(|error| file_error(line, name, error.to_string()))?;
            Ok(value.to_owned())
        };
        let reference = field(reference_at, "reference")?;
        let agreement_no = field(agreement_at, "agreement_no")?;
        let member_id = field(member_at, "member_id")?;
        let amount_text = record.get(amount_at).unwrap_or("");
        let amount = Money::parse_major(amount_text, currency)
            .map_err(|error| file_error(line, "amount", error.to_string()))?;
        if amount.amount_minor() <= 0 {
            return Err(file_error(line, "amount", "must be above zero"));
        }
        let priority = match priority_at.map(|at| record.get(at).unwrap_or("").trim()) {
            None | Some("") => 0,
            Some(text) => text
                .parse::<i64>()
                .map_err(|_| file_error(line, "priority", format!("{text:?} is not an integer")))?,
        };
        if !seen.insert(reference.clone()) {
            return Err(file_error(
                line,
                "reference",
                format!("{reference:?} appears twice"),
            ));
        }
        total_minor = total_minor
            .checked_add(amount.amount_minor())
            .ok_or_else(|| file_error(line, "amount", "the batch's total overflows"))?;
        lines.push(NewBatchLine {
            line_no: i64::try_from(line).unwrap_or(i64::MAX),
            reference,
            agreement_no,
            member_id,
            amount_minor: amount.amount_minor(),
            priority,
            raw: record_text(&record)?,
        });
    }
    if lines.is_empty() {
        return Err(file_error(1, "record", "the file has no lines"));
    }
    Ok(ParsedBatchFile {
        header: record_text(&header)?,
        lines,
        total_minor,
    })
}

/// Parses one stored CSV record (a header or a line's raw fields).
fn stored_record(text: &str) -> Result<csv::StringRecord, CollectionBatchError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(text.as_bytes());
    match reader.records().next() {
        Some(Ok(record)) => Ok(record),
        Some(Err(error)) => Err(CollectionBatchError::Invalid(error.to_string())),
        None => Ok(csv::StringRecord::new()),
    }
}

/// The return file (回盘) of a CLOSED batch: the client's header and lines
/// with the four result columns, in the upload's order.
pub fn write_return_file(
    batch: &CollectionBatch,
    lines: &[BatchLine],
) -> Result<String, CollectionBatchError> {
    if batch.status != BatchStatus::Closed {
        return Err(CollectionBatchError::NotClosed(batch.id));
    }
    let invalid = |error: csv::Error| CollectionBatchError::Invalid(error.to_string());
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::new());
    let mut header = stored_record(&batch.header)?;
    for column in RESULT_COLUMNS {
        header.push_field(column);
    }
    writer.write_record(&header).map_err(invalid)?;
    let mut ordered: Vec<&BatchLine> = lines.iter().collect();
    ordered.sort_by_key(|line| line.line_no);
    for line in ordered {
        let mut record = stored_record(&line.raw)?;
        let (result, code, message) = match line.status {
            LineStatus::Success => ("SUCCESS", "", ""),
            // A CLOSED batch has none left in WAITING or PROCESSING; should
            // one be, the client must not count it as collected.
            _ => (
                "FAILED",
                line.failure_code.as_deref().unwrap_or(DEADLINE_PASSED),
                line.failure_message.as_deref().unwrap_or(""),
            ),
        };
        record.push_field(result);
        record.push_field(code);
        record.push_field(message);
        record.push_field(&line.payment_id.map(|id| id.to_string()).unwrap_or_default());
        writer.write_record(&record).map_err(invalid)?;
    }
    let bytes = writer
        .into_inner()
        .map_err(|error| CollectionBatchError::Invalid(error.to_string()))?;
    String::from_utf8(bytes).map_err(|error| CollectionBatchError::Invalid(error.to_string()))
}

/// Where collection batches live. Reads by merchant are scoped: a merchant
/// never sees another merchant's batches.
pub trait CollectionBatchStore: Send + Sync {
    /// Records a RUNNING batch with its lines WAITING in one commit, or
    /// finds the merchant's batch with the same number
    /// (`Created::Existing`, whatever its fields).
    fn create_collection_batch(
        &self,
        batch: &NewCollectionBatch,
        now: TimestampMicros,
    ) -> impl Future<Output = Result<crate::Created<CollectionBatch>, OrderStoreError>> + Send;

    /// The merchant's batch with this number.
    fn collection_batch_by_no(
        &self,
        merchant_id: &str,
        batch_no: &str,
    ) -> impl Future<Output = Result<Option<CollectionBatch>, OrderStoreError>> + Send;

    /// A batch by id; with `merchant_id`, only if it is that merchant's.
    fn collection_batch(
        &self,
        merchant_id: Option<&str>,
        batch_id: CollectionBatchId,
    ) -> impl Future<Output = Result<Option<CollectionBatch>, OrderStoreError>> + Send;

    /// Every line of a batch, by line number.
    fn batch_lines(
        &self,
        batch_id: CollectionBatchId,
    ) -> impl Future<Output = Result<Vec<BatchLine>, OrderStoreError>> + Send;

    /// Lines of a batch in `status`, highest priority first, then by line
    /// number; at most `limit`.
    fn batch_lines_in(
        &self,
        batch_id: CollectionBatchId,
        status: LineStatus,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<BatchLine>, OrderStoreError>> + Send;

    /// Applies `change` if the line is still in `change.from`; whether it
    /// was.
    fn change_batch_line(
        &self,
        batch_id: CollectionBatchId,
        line_no: i64,
        change: &LineChange,
        now: TimestampMicros,
    ) -> impl Future<Output = Result<bool, OrderStoreError>> + Send;

    /// RUNNING batches, oldest first, at most `limit`.
    fn running_collection_batches(
        &self,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<CollectionBatch>, OrderStoreError>> + Send;

    /// Closes a RUNNING batch in one commit: WAITING lines FAILED with
    /// [`NOT_SENT_BY_DEADLINE`], PROCESSING ones with [`DEADLINE_PASSED`],
    /// the batch CLOSED. Closing a CLOSED batch changes nothing.
    fn close_collection_batch(
        &self,
        batch_id: CollectionBatchId,
        now: TimestampMicros,
    ) -> impl Future<Output = Result<CollectionBatch, OrderStoreError>> + Send;

    /// Lines FAILED with [`DEADLINE_PASSED`] that the late check has not
    /// settled and whose payment is final or was never made, of every
    /// batch, at most `limit`.
    fn late_batch_lines(
        &self,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<BatchLine>, OrderStoreError>> + Send;

    /// Records what the late check found of a line (once: a line already
    /// settled keeps its first outcome); whether this call recorded it.
    fn settle_late_batch_line(
        &self,
        batch_id: CollectionBatchId,
        line_no: i64,
        outcome: LateOutcome,
        refund_id: Option<i64>,
        now: TimestampMicros,
    ) -> impl Future<Output = Result<bool, OrderStoreError>> + Send;
}

impl From<CollectionBatchError> for crate::EngineError {
    fn from(error: CollectionBatchError) -> Self {
        crate::EngineError::CollectionBatch(error)
    }
}

/// Whether sending a line failed for a reason that may pass on a retry
/// (the store, a race), rather than with an answer about the line itself.
pub fn is_retryable(error: &crate::EngineError) -> bool {
    matches!(
        error,
        crate::EngineError::Store(_) | crate::EngineError::Invariant(_)
    ) || matches!(
        error,
        crate::EngineError::Order(OrderError::ConcurrentChange { .. })
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "reference,card_account,agreement_no,member_id,amount,priority\n\
        R1,4392-01,AG1,alice,125.50,1\n\
        R2,4392-02,AG2,bob,\"1,000.00\",\n";

    #[test]
    fn an_upload_keeps_the_clients_columns() {
        let error = parse_batch_file(FILE, Currency::CNY).unwrap_err();
        // "1,000.00" is one field, but not a decimal.
        assert_eq!(
            (
                error.code(),
                error.to_string().contains("line 2, field amount")
            ),
            ("INVALID_BATCH_FILE", true),
            "{error}"
        );
        let file = FILE.replace("\"1,000.00\"", "1000");
        let parsed = parse_batch_file(&file, Currency::CNY).unwrap();
        assert_eq!(parsed.total_minor, 12_550 + 100_000);
        assert_eq!(parsed.lines[0].priority, 1);
        assert_eq!(parsed.lines[1].priority, 0);
        assert_eq!(parsed.lines[1].raw, "R2,4392-02,AG2,bob,1000,");
        assert_eq!(
            parsed.header,
            "reference,card_account,agreement_no,member_id,amount,priority"
        );
    }

    #[test]
    fn a_bad_file_names_line_and_field() {
        let cases = [
            ("reference,agreement_no,amount\nR1,AG1,1\n", 0, "member_id"),
            (
                "reference,agreement_no,member_id,amount\nR1,AG1,alice,1\nR1,AG2,bob,2\n",
                2,
                "reference",
            ),
            (
                "reference,agreement_no,member_id,amount\nR1,AG1,alice,0\n",
                1,
                "amount",
            ),
            (
                "reference,agreement_no,member_id,amount\nR1,AG1,alice,1.005\n",
                1,
                "amount",
            ),
            (
                "reference,agreement_no,member_id,amount,priority\nR1,AG1,alice,1,high\n",
                1,
                "priority",
            ),
            (
                "reference,agreement_no,member_id,amount\nR1,,alice,1\n",
                1,
                "agreement_no",
            ),
            (
                "reference,agreement_no,member_id,amount\nR1,AG1,alice\n",
                1,
                "record",
            ),
            ("reference,agreement_no,member_id,amount\n", 1, "record"),
            (
                "reference,agreement_no,member_id,amount,result\nR1,AG1,alice,1,x\n",
                0,
                "result",
            ),
        ];
        for (text, line, field) in cases {
            match parse_batch_file(text, Currency::CNY) {
                Err(CollectionBatchError::InvalidFile {
                    line: found_line,
                    field: found_field,
                    ..
                }) => assert_eq!((found_line, found_field.as_str()), (line, field), "{text}"),
                other => panic!("{text}: {other:?}"),
            }
        }
    }

    fn line(line_no: i64, status: LineStatus, code: Option<&str>) -> BatchLine {
        BatchLine {
            batch_id: 7,
            line_no,
            reference: format!("R{line_no}"),
            agreement_no: "AG".to_owned(),
            member_id: "alice".to_owned(),
            amount_minor: 100,
            priority: 0,
            raw: format!("R{line_no},\"a, b\",AG,alice,1.00"),
            status,
            payment_id: Some(line_no * 10),
            failure_code: code.map(str::to_owned),
            failure_message: code.map(|_| "no answer by the deadline".to_owned()),
            late: None,
            late_refund_id: None,
            updated_at: 0,
        }
    }

    #[test]
    fn the_return_file_echoes_every_line_in_upload_order() {
        let mut batch = CollectionBatch {
            id: 7,
            merchant_id: "m".to_owned(),
            batch_no: "B1".to_owned(),
            currency: Currency::CNY,
            deadline: 1,
            status: BatchStatus::Running,
            header: "reference,note,agreement_no,member_id,amount".to_owned(),
            line_count: 2,
            total_minor: 200,
            file_sha256: String::new(),
            created_at: 0,
            closed_at: None,
        };
        let lines = [
            line(2, LineStatus::Failed, Some(DEADLINE_PASSED)),
            line(1, LineStatus::Success, None),
        ];
        assert_eq!(
            write_return_file(&batch, &lines).unwrap_err().code(),
            "BATCH_NOT_CLOSED"
        );
        batch.status = BatchStatus::Closed;
        let text = write_return_file(&batch, &lines).unwrap();
        assert_eq!(
            text,
            "reference,note,agreement_no,member_id,amount,result,result_code,result_message,payment_id\n\
             R1,\"a, b\",AG,alice,1.00,SUCCESS,,,10\n\
             R2,\"a, b\",AG,alice,1.00,FAILED,DEADLINE_PASSED,no answer by the deadline,20\n"
        );
        let counts = LineCounts::of(&lines);
        assert_eq!(
            (counts.success, counts.failed, counts.failed_minor),
            (1, 1, 100)
        );
    }

    #[test]
    fn a_deadline_must_be_ahead() {
        assert_eq!(
            check_batch("B1", 10, 10).unwrap_err().code(),
            "INVALID_BATCH"
        );
        assert_eq!(check_batch("", 11, 10).unwrap_err().code(), "INVALID_BATCH");
        assert!(check_batch("B1", 11, 10).is_ok());
    }
}
