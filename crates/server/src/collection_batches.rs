//! Running collection batches (批量代扣, `engine::collection_batch`): an
//! upload becomes a RUNNING batch of WAITING lines; each round sends the
//! waiting lines as `debit_collection` payments, highest priority first,
//! and follows the PROCESSING ones to their payment's result; at the
//! deadline (or as soon as every line is final) the batch closes and its
//! return file is fixed. After that, the late check looks at every line
//! that was FAILED for want of an answer: if its payment succeeded after
//! all, the money was collected although the client was told it was not,
//! and a platform refund is raised; it waits in PENDING_REVIEW for an
//! operator.
//!
//! The server's resolver runs [`run_due`] every second; `paycore batch run`
//! runs it in a loop for one batch. Sending a line is idempotent (its
//! payment's request serial is fixed by batch and line), and a line is
//! claimed (WAITING → PROCESSING) before it is sent, so two processes never
//! send it twice and a crash between claim and send is repaired by sending
//! it again.

use crate::state::AppState;
use engine::{
    BatchLine, BatchStatus, CollectionBatch, CollectionBatchError, CollectionBatchId,
    CollectionBatchStore, EngineError, FundingSource, Initiator, LateOutcome, LineChange,
    LineStatus, NewCollectionBatch, OrderStore, PayRequest, PaymentStatus, RefundRequest, Status,
};
use ledger::TimestampMicros;
use money::Currency;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use tracing::{info, warn};

/// Most lines one round sends, and most PROCESSING lines it looks at, per
/// batch.
pub const ROUND_LINES_MAX: usize = 512;
/// Most RUNNING batches one round advances.
pub const ROUND_BATCHES_MAX: usize = 16;
/// Most lines one late check looks at.
pub const LATE_LINES_MAX: usize = 256;

/// An upload, as the API and the CLI take it.
#[derive(Debug, Clone)]
pub struct Upload<'a> {
    pub merchant_id: &'a str,
    pub batch_no: &'a str,
    pub currency: Currency,
    pub deadline: TimestampMicros,
    /// The CSV file (see `engine::collection_batch` for its format).
    pub file: &'a str,
}

/// Records an upload as a RUNNING batch. A repeat of the batch number with
/// the same file and deadline answers the batch as it stands; with another,
/// `REFERENCE_CONFLICT` naming what differs. A malformed file is refused
/// whole (`INVALID_BATCH_FILE`, naming line and field); nothing is stored.
pub async fn submit(
    state: &AppState,
    upload: &Upload<'_>,
    now: TimestampMicros,
) -> Result<CollectionBatch, EngineError> {
    let file_sha256 = hex::encode(Sha256::digest(upload.file.as_bytes()));
    let found = state
        .store()
        .collection_batch_by_no(upload.merchant_id, upload.batch_no)
        .await?;
    if let Some(found) = found {
        return repeat(upload, &file_sha256, found);
    }
    engine::check_batch(upload.batch_no, upload.deadline, now)?;
    let file = engine::parse_batch_file(upload.file, upload.currency)?;
    let batch = NewCollectionBatch {
        merchant_id: upload.merchant_id.to_owned(),
        batch_no: upload.batch_no.to_owned(),
        currency: upload.currency,
        deadline: upload.deadline,
        file_sha256: file_sha256.clone(),
        file,
    };
    match state.store().create_collection_batch(&batch, now).await? {
        engine::Created::New(created) => {
            info!(
                batch_id = created.id,
                merchant_id = %created.merchant_id,
                lines = created.line_count,
                total_minor = created.total_minor,
                "collection batch accepted"
            );
            Ok(created)
        }
        engine::Created::Existing(found) => repeat(upload, &file_sha256, found),
    }
}

fn repeat(
    upload: &Upload<'_>,
    file_sha256: &str,
    found: CollectionBatch,
) -> Result<CollectionBatch, EngineError> {
    match found.conflict_with_upload(file_sha256, upload.currency, upload.deadline) {
        Some(field) => Err(engine::OrderError::ReferenceConflict {
            reference: "batch_no",
            field,
        }
        .into()),
        None => Ok(found),
    }
}

/// A batch with its lines; with `merchant_id`, only that merchant's
/// (`BATCH_NOT_FOUND` otherwise).
pub async fn batch_with_lines(
    state: &AppState,
    merchant_id: Option<&str>,
    batch_id: CollectionBatchId,
) -> Result<(CollectionBatch, Vec<BatchLine>), EngineError> {
    let batch = state
        .store()
        .collection_batch(merchant_id, batch_id)
        .await?
        .ok_or(CollectionBatchError::NotFound(batch_id))?;
    let lines = state.store().batch_lines(batch_id).await?;
    Ok((batch, lines))
}

/// The return file (回盘) of a CLOSED batch, with its hex SHA-256.
pub async fn return_file(
    state: &AppState,
    merchant_id: Option<&str>,
    batch_id: CollectionBatchId,
) -> Result<(CollectionBatch, String, String), EngineError> {
    let (batch, lines) = batch_with_lines(state, merchant_id, batch_id).await?;
    let text = engine::write_return_file(&batch, &lines)?;
    let sha256 = hex::encode(Sha256::digest(text.as_bytes()));
    Ok((batch, text, sha256))
}

/// One round over every RUNNING batch, then the late check. Errors are
/// logged per batch; the next round tries again.
pub async fn run_due(state: &AppState, now: TimestampMicros) {
    match state
        .store()
        .running_collection_batches(ROUND_BATCHES_MAX)
        .await
    {
        Ok(batches) => {
            for batch in batches {
                if let Err(error) = advance(state, &batch, now).await {
                    warn!(batch_id = batch.id, %error, code = error.code(), "a collection batch could not be advanced");
                }
            }
        }
        Err(error) => warn!(%error, "looking for running collection batches failed"),
    }
    if let Err(error) = check_late(state, now).await {
        warn!(%error, code = error.code(), "the late check of collection batches failed");
    }
}

/// One round of a batch: past its deadline it closes; before, its
/// PROCESSING lines take their payments' results, then waiting lines are
/// sent by priority; a batch with every line final closes at once.
pub async fn advance(
    state: &AppState,
    batch: &CollectionBatch,
    now: TimestampMicros,
) -> Result<CollectionBatch, EngineError> {
    if batch.status == BatchStatus::Closed {
        return Ok(batch.clone());
    }
    if now >= batch.deadline {
        return close(state, batch, now).await;
    }
    let store = state.store();
    for line in store
        .batch_lines_in(batch.id, LineStatus::Processing, ROUND_LINES_MAX)
        .await?
    {
        follow(state, batch, &line, now).await?;
    }
    for line in store
        .batch_lines_in(batch.id, LineStatus::Waiting, ROUND_LINES_MAX)
        .await?
    {
        let claim = LineChange {
            from: LineStatus::Waiting,
            to: LineStatus::Processing,
            payment_id: None,
            failure_code: None,
            failure_message: None,
        };
        if store
            .change_batch_line(batch.id, line.line_no, &claim, now)
            .await?
        {
            send(state, batch, &line, now).await?;
        }
    }
    let open = store
        .batch_lines_in(batch.id, LineStatus::Waiting, 1)
        .await?
        .len()
        + store
            .batch_lines_in(batch.id, LineStatus::Processing, 1)
            .await?
            .len();
    if open == 0 {
        return close(state, batch, now).await;
    }
    Ok(batch.clone())
}

async fn close(
    state: &AppState,
    batch: &CollectionBatch,
    now: TimestampMicros,
) -> Result<CollectionBatch, EngineError> {
    let closed = state.store().close_collection_batch(batch.id, now).await?;
    info!(
        batch_id = batch.id,
        deadline_passed = now >= batch.deadline,
        "collection batch closed"
    );
    Ok(closed)
}

/// The debit of a line, as a payment request.
fn debit(batch: &CollectionBatch, line: &BatchLine) -> PayRequest {
    let serial = line.out_trade_no();
    PayRequest {
        merchant_id: batch.merchant_id.clone(),
        out_trade_no: serial.clone(),
        subject: format!("collection batch {}", batch.batch_no),
        amount_minor: line.amount_minor,
        currency: batch.currency,
        request_serial: serial,
        product: engine::BATCH_PRODUCT.to_owned(),
        payer_id: line.member_id.clone(),
        bank: None,
        sources: vec![(FundingSource::Card, line.amount_minor)],
        campaign: None,
        agreement_no: Some(line.agreement_no.clone()),
    }
}

/// Sends a claimed (PROCESSING) line and records what its payment says.
async fn send(
    state: &AppState,
    batch: &CollectionBatch,
    line: &BatchLine,
    now: TimestampMicros,
) -> Result<(), EngineError> {
    match state.payments().pay(&debit(batch, line), now).await {
        Ok(view) => record(state, line, &view.payment, now).await,
        Err(error) if engine::is_retryable(&error) => {
            // Still PROCESSING without a payment: the next round sends it
            // again, with the same serial.
            warn!(batch_id = line.batch_id, line_no = line.line_no, %error, "a batch line could not be sent; it is sent again");
            Ok(())
        }
        Err(refused) => {
            let change = LineChange {
                from: LineStatus::Processing,
                to: LineStatus::Failed,
                payment_id: None,
                failure_code: Some(refused.code().to_owned()),
                failure_message: Some(refused.to_string()),
            };
            state
                .store()
                .change_batch_line(line.batch_id, line.line_no, &change, now)
                .await?;
            Ok(())
        }
    }
}

/// A PROCESSING line: its payment's result if it has one; sent again if it
/// was claimed but never sent.
async fn follow(
    state: &AppState,
    batch: &CollectionBatch,
    line: &BatchLine,
    now: TimestampMicros,
) -> Result<(), EngineError> {
    let payment = state
        .store()
        .payment_by_request_serial(&batch.merchant_id, &line.out_trade_no())
        .await?;
    match payment {
        None => send(state, batch, line, now).await,
        Some(payment) => record(state, line, &payment.payment, now).await,
    }
}

/// Moves a PROCESSING line to its payment's final result, or notes the
/// payment while it is still unfinished.
async fn record(
    state: &AppState,
    line: &BatchLine,
    payment: &engine::PaymentOrder,
    now: TimestampMicros,
) -> Result<(), EngineError> {
    let change = match payment.status {
        PaymentStatus::Success => LineChange {
            from: LineStatus::Processing,
            to: LineStatus::Success,
            payment_id: Some(payment.id),
            failure_code: None,
            failure_message: None,
        },
        PaymentStatus::Failed => {
            let code = payment
                .failure
                .map_or("PAYMENT_FAILED", |reason| reason.as_str());
            LineChange {
                from: LineStatus::Processing,
                to: LineStatus::Failed,
                payment_id: Some(payment.id),
                failure_code: Some(code.to_owned()),
                failure_message: Some(format!("payment {} failed", payment.id)),
            }
        }
        _ if line.payment_id == Some(payment.id) => return Ok(()),
        _ => LineChange {
            from: LineStatus::Processing,
            to: LineStatus::Processing,
            payment_id: Some(payment.id),
            failure_code: None,
            failure_message: None,
        },
    };
    state
        .store()
        .change_batch_line(line.batch_id, line.line_no, &change, now)
        .await?;
    Ok(())
}

/// A late success the check found and the refund it raised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LateRefund {
    pub batch_id: CollectionBatchId,
    pub line_no: i64,
    pub payment_id: i64,
    pub refund_id: i64,
}

/// The late check: each line FAILED at the deadline whose payment has
/// since finished. A success raises a platform refund of the line's amount
/// (PENDING_REVIEW); a failure, or no payment at all, settles the line as
/// NOT_COLLECTED. Lines whose payment is still unfinished wait for a later
/// check. Idempotent: the refund's serial is fixed by batch and line.
pub async fn check_late(
    state: &AppState,
    now: TimestampMicros,
) -> Result<Vec<LateRefund>, EngineError> {
    let store = state.store();
    let mut batches: HashMap<CollectionBatchId, CollectionBatch> = HashMap::new();
    let mut raised = Vec::new();
    for line in store.late_batch_lines(LATE_LINES_MAX).await? {
        let batch = match batches.get(&line.batch_id) {
            Some(batch) => batch.clone(),
            None => {
                let batch = store
                    .collection_batch(None, line.batch_id)
                    .await?
                    .ok_or(CollectionBatchError::NotFound(line.batch_id))?;
                batches.insert(line.batch_id, batch.clone());
                batch
            }
        };
        let payment = store
            .payment_by_request_serial(&batch.merchant_id, &line.out_trade_no())
            .await?;
        let payment = match payment.map(|found| found.payment) {
            Some(payment) if payment.status == PaymentStatus::Success => payment,
            // Still unfinished: a later check looks again.
            Some(payment) if !payment.status.is_final() => continue,
            // Never made, or failed too: the client was told right.
            _ => {
                store
                    .settle_late_batch_line(
                        line.batch_id,
                        line.line_no,
                        LateOutcome::NotCollected,
                        None,
                        now,
                    )
                    .await?;
                continue;
            }
        };
        let refund = state
            .payments()
            .refund(
                &RefundRequest {
                    merchant_id: batch.merchant_id.clone(),
                    out_trade_no: line.out_trade_no(),
                    refund_serial: engine::late_refund_serial(line.batch_id, line.line_no),
                    amount_minor: line.amount_minor,
                    reason: format!(
                        "collection batch {} line {} ({}) succeeded after its deadline and was returned FAILED",
                        batch.batch_no, line.line_no, line.reference
                    ),
                    initiator: Initiator::Platform,
                },
                now,
            )
            .await?;
        store
            .settle_late_batch_line(
                line.batch_id,
                line.line_no,
                LateOutcome::Refunded,
                Some(refund.refund.id),
                now,
            )
            .await?;
        warn!(
            batch_id = line.batch_id,
            line_no = line.line_no,
            payment_id = payment.id,
            refund_id = refund.refund.id,
            "a batch line succeeded after its deadline: refund raised for review"
        );
        raised.push(LateRefund {
            batch_id: line.batch_id,
            line_no: line.line_no,
            payment_id: payment.id,
            refund_id: refund.refund.id,
        });
    }
    Ok(raised)
}
