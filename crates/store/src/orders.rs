//! The payment engine's orders on both stores. The SQL is the same text for
//! SQLite and PostgreSQL (sqlx binds `$N` on both); one macro writes the
//! implementation for each store's connections, and only row locking
//! differs.

use crate::rows::{currency, database_error};
use engine::{
    ChannelOrder, ChannelOrderStatus, Created, Direction, FundingSource, Initiator,
    InstructionStatus, Level, NewPayment, NewTrade, OrderError, OrderStoreError,
    PaymentInstruction, PaymentOrder, PaymentStatus, PaymentWithInstructions, RefundOrder,
    RefundStatus, Status, TradeOrder, TradeStatus,
};
use ledger::StoreError;

pub(crate) type TradeRow = (
    i64,
    String,
    String,
    String,
    i64,
    String,
    String,
    Option<i64>,
    i64,
    i64,
    i64,
    i64,
);
pub(crate) const TRADE_COLUMNS: &str = "id, merchant_id, out_trade_no, subject, amount_minor, currency, \
     status, paid_payment_id, paid_minor, refunded_minor, created_at, updated_at";

pub(crate) type PaymentRow = (
    i64,
    i64,
    String,
    String,
    String,
    String,
    Option<String>,
    i64,
    String,
    String,
    Option<String>,
    Option<String>,
    i64,
    i64,
    i64,
    Option<String>,
);
pub(crate) const PAYMENT_COLUMNS: &str = "id, trade_id, merchant_id, request_serial, product, \
     payer_id, bank, amount_minor, currency, status, failure_code, campaign, bonus_minor, \
     created_at, updated_at, agreement_no";

pub(crate) type InstructionRow = (i64, i64, String, String, i64, String, String, i64, i64);
pub(crate) const INSTRUCTION_COLUMNS: &str =
    "id, payment_id, direction, source, amount_minor, currency, status, created_at, updated_at";

pub(crate) type ChannelOrderRow = (
    i64,
    i64,
    i64,
    String,
    i64,
    String,
    String,
    Option<String>,
    i64,
    i64,
);
pub(crate) const CHANNEL_ORDER_COLUMNS: &str = "id, instruction_id, part_no, channel, amount_minor, currency, \
     status, channel_transaction_id, created_at, updated_at";

pub(crate) type RefundRow = (
    i64,
    i64,
    Option<i64>,
    String,
    String,
    i64,
    String,
    String,
    String,
    String,
    i64,
    i64,
    i64,
    bool,
);
pub(crate) const REFUND_COLUMNS: &str = "id, trade_id, payment_id, merchant_id, refund_serial, \
     amount_minor, currency, status, initiator, reason, bonus_void_minor, created_at, updated_at, \
     from_escrow";

fn corrupt(what: &str, value: &str) -> OrderStoreError {
    OrderStoreError::Store(StoreError::Corrupt(format!("unknown {what} {value:?}")))
}

pub(crate) fn status<S: Status>(text: &str) -> Result<S, OrderStoreError> {
    S::parse(text).ok_or_else(|| corrupt(S::ENTITY, text))
}

pub(crate) fn table(level: Level) -> &'static str {
    match level {
        Level::Trade => "trade_orders",
        Level::Payment => "payment_orders",
        Level::Instruction => "payment_instructions",
        Level::ChannelOrder => "channel_orders",
        Level::Refund => "refund_orders",
        Level::RefundPart => "refund_parts",
        Level::PaymentFee => "payment_fees",
    }
}

pub(crate) fn trade_from_row(row: TradeRow) -> Result<TradeOrder, OrderStoreError> {
    let (
        id,
        merchant_id,
        out_trade_no,
        subject,
        amount_minor,
        currency_code,
        status_text,
        paid_payment_id,
        paid_minor,
        refunded_minor,
        created_at,
        updated_at,
    ) = row;
    Ok(TradeOrder {
        id,
        merchant_id,
        out_trade_no,
        subject,
        amount_minor,
        currency: currency(&currency_code)?,
        status: status::<TradeStatus>(&status_text)?,
        paid_payment_id,
        paid_minor,
        refunded_minor,
        created_at,
        updated_at,
    })
}

pub(crate) fn payment_from_row(row: PaymentRow) -> Result<PaymentOrder, OrderStoreError> {
    let (
        id,
        trade_id,
        merchant_id,
        request_serial,
        product,
        payer_id,
        bank,
        amount_minor,
        currency_code,
        status_text,
        failure_code,
        campaign,
        bonus_minor,
        created_at,
        updated_at,
        agreement_no,
    ) = row;
    let failure = match failure_code {
        None => None,
        Some(code) => Some(
            engine::FailureReason::parse(&code).ok_or_else(|| corrupt("failure code", &code))?,
        ),
    };
    Ok(PaymentOrder {
        id,
        trade_id,
        merchant_id,
        request_serial,
        product,
        payer_id,
        bank,
        agreement_no,
        amount_minor,
        currency: currency(&currency_code)?,
        status: status::<PaymentStatus>(&status_text)?,
        failure,
        campaign,
        bonus_minor,
        created_at,
        updated_at,
    })
}

pub(crate) fn instruction_from_row(
    row: InstructionRow,
) -> Result<PaymentInstruction, OrderStoreError> {
    let (
        id,
        payment_id,
        direction,
        source,
        amount_minor,
        currency_code,
        status_text,
        created_at,
        updated_at,
    ) = row;
    Ok(PaymentInstruction {
        id,
        payment_id,
        direction: Direction::parse(&direction).ok_or_else(|| corrupt("direction", &direction))?,
        source: FundingSource::parse(&source).ok_or_else(|| corrupt("funding source", &source))?,
        amount_minor,
        currency: currency(&currency_code)?,
        status: status::<InstructionStatus>(&status_text)?,
        created_at,
        updated_at,
    })
}

pub(crate) fn channel_order_from_row(
    row: ChannelOrderRow,
) -> Result<ChannelOrder, OrderStoreError> {
    let (
        id,
        instruction_id,
        part_no,
        channel,
        amount_minor,
        currency_code,
        status_text,
        channel_transaction_id,
        created_at,
        updated_at,
    ) = row;
    Ok(ChannelOrder {
        id,
        instruction_id,
        part_no: u32::try_from(part_no)
            .map_err(|_| corrupt("channel order part", &part_no.to_string()))?,
        channel,
        amount_minor,
        currency: currency(&currency_code)?,
        status: status::<ChannelOrderStatus>(&status_text)?,
        channel_transaction_id,
        created_at,
        updated_at,
    })
}

pub(crate) fn refund_from_row(row: RefundRow) -> Result<RefundOrder, OrderStoreError> {
    let (
        id,
        trade_id,
        payment_id,
        merchant_id,
        refund_serial,
        amount_minor,
        currency_code,
        status_text,
        initiator,
        reason,
        bonus_void_minor,
        created_at,
        updated_at,
        from_escrow,
    ) = row;
    Ok(RefundOrder {
        id,
        trade_id,
        payment_id: payment_id.ok_or_else(|| corrupt("refund payment", "NULL"))?,
        merchant_id,
        refund_serial,
        amount_minor,
        currency: currency(&currency_code)?,
        status: status::<RefundStatus>(&status_text)?,
        initiator: Initiator::parse(&initiator).ok_or_else(|| corrupt("initiator", &initiator))?,
        reason,
        bonus_void_minor,
        from_escrow,
        created_at,
        updated_at,
    })
}

pub(crate) fn payment_conflict(
    request: &NewPayment,
    existing: PaymentWithInstructions,
) -> Result<Created<PaymentWithInstructions>, OrderStoreError> {
    match request.conflict_with(&existing.payment) {
        None => Ok(Created::Existing(existing)),
        Some(field) => Err(OrderError::ReferenceConflict {
            reference: "request_serial",
            field,
        }
        .into()),
    }
}

pub(crate) fn trade_conflict(
    request: &NewTrade,
    existing: TradeOrder,
) -> Result<Created<TradeOrder>, OrderStoreError> {
    match request.conflict_with(&existing) {
        None => Ok(Created::Existing(existing)),
        Some(field) => Err(OrderError::ReferenceConflict {
            reference: "out_trade_no",
            field,
        }
        .into()),
    }
}

pub(crate) type RefundPartRow = (i64, i64, i64, i64, String, i64, i64);
pub(crate) const REFUND_PART_COLUMNS: &str =
    "id, refund_id, instruction_id, amount_minor, status, created_at, updated_at";

pub(crate) fn refund_part_from_row(
    row: RefundPartRow,
) -> Result<engine::RefundPart, OrderStoreError> {
    let (id, refund_id, instruction_id, amount_minor, status_text, created_at, updated_at) = row;
    Ok(engine::RefundPart {
        id,
        refund_id,
        instruction_id,
        amount_minor,
        status: status::<engine::RefundPartStatus>(&status_text)?,
        created_at,
        updated_at,
    })
}

/// Splits a new refund over the sources of payment `payment_id` of a trade,
/// counting what earlier refund parts took from each source, unless the
/// part itself failed: a failed refund may still have returned some parts.
macro_rules! refund_allocation_fn {
    ($connection:ty) => {
        pub(crate) async fn refund_allocation(
            connection: &mut $connection,
            trade_id: i64,
            payment_id: i64,
            amount_minor: i64,
            ordering: engine::RefundOrdering,
        ) -> Result<Vec<engine::NewRefundPart>, OrderStoreError> {
            let rows: Vec<InstructionRow> = sqlx::query_as(&format!(
                "SELECT {INSTRUCTION_COLUMNS} FROM payment_instructions WHERE payment_id = $1 ORDER BY id"
            ))
            .bind(payment_id)
            .fetch_all(&mut *connection)
            .await
            .map_err(db)?;
            let instructions = rows
                .into_iter()
                .map(instruction_from_row)
                .collect::<Result<Vec<_>, _>>()?;
            let taken: Vec<(i64, i64)> = sqlx::query_as(
                "SELECT p.instruction_id, CAST(SUM(p.amount_minor) AS BIGINT) FROM refund_parts p \
                 JOIN refund_orders r ON r.id = p.refund_id \
                 WHERE r.trade_id = $1 AND p.status <> 'FAILED' GROUP BY p.instruction_id",
            )
            .bind(trade_id)
            .fetch_all(&mut *connection)
            .await
            .map_err(db)?;
            let refunded = taken.into_iter().collect();
            Ok(engine::allocate_refund(&instructions, &refunded, amount_minor, ordering)?)
        }
    };
}

pub(crate) mod sqlite_allocation {
    use super::*;
    refund_allocation_fn!(sqlx::SqliteConnection);
}

pub(crate) mod postgres_allocation {
    use super::*;
    refund_allocation_fn!(sqlx::PgConnection);
}

/// A channel order names its channel and moves a positive amount.
pub(crate) fn check_channel_order(channel: &str, amount_minor: i64) -> Result<(), OrderStoreError> {
    if channel.is_empty() || channel.len() > engine::REFERENCE_LENGTH_MAX {
        return Err(engine::OrderError::InvalidText {
            field: "channel",
            max: engine::REFERENCE_LENGTH_MAX,
        }
        .into());
    }
    if amount_minor <= 0 {
        return Err(engine::OrderError::InvalidAmount(amount_minor).into());
    }
    Ok(())
}

pub(crate) fn db(error: sqlx::Error) -> OrderStoreError {
    OrderStoreError::Store(database_error(error))
}

/// Appends the compare-and-set of each of `moves` to `batch`; returns the
/// index of each in the batch.
pub(crate) fn push_moves(
    batch: &mut crate::batch::Batch<'_>,
    moves: &[engine::Move],
    now: ledger::TimestampMicros,
) -> Vec<usize> {
    moves
        .iter()
        .map(|step| {
            batch.push(
                crate::batch::Statement::new(format!(
                    "UPDATE {} SET status = $1, updated_at = $2 WHERE id = $3 AND status = $4",
                    table(step.level)
                ))
                .bind(step.to)
                .bind(now)
                .bind(step.id)
                .bind(step.from),
                crate::batch::Expect::OneChange,
            )
        })
        .collect()
}

/// A batch that failed where its caller expected no failure.
pub(crate) fn batch_failed(error: crate::batch::BatchError) -> OrderStoreError {
    OrderStoreError::Store(error.into())
}

/// Implements `engine::OrderStore` for a store type. `$writer` and
/// `$reader` name its connections; `$lock` is appended to a SELECT that
/// must lock the trade row for the rest of the transaction.
macro_rules! order_store {
    ($store:ty, $writer:ident, $reader:ident, $lock:literal, $allocation:ident) => {
        impl engine::OrderStore for $store {
            async fn create_trade(
                &self,
                trade: &engine::NewTrade,
                now: ledger::TimestampMicros,
            ) -> Result<engine::Created<engine::TradeOrder>, engine::OrderStoreError> {
                use crate::orders::*;
                trade.validate()?;
                let inserted: Option<TradeRow> = self
                    .write_returning(
                        crate::batch::Statement::new(format!(
                            "INSERT INTO trade_orders (merchant_id, out_trade_no, subject, amount_minor, currency, \
                             status, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, 'WAIT_PAY', $6, $6) \
                             ON CONFLICT (merchant_id, out_trade_no) DO NOTHING RETURNING {TRADE_COLUMNS}"
                        ))
                        .bind(&trade.merchant_id)
                        .bind(&trade.out_trade_no)
                        .bind(&trade.subject)
                        .bind(trade.amount_minor)
                        .bind(trade.currency.code())
                        .bind(now),
                    )
                    .await
                    .map_err(batch_failed)?;
                if let Some(row) = inserted {
                    self.durable().await?;
                    return Ok(engine::Created::New(trade_from_row(row)?));
                }
                let existing = self
                    .trade_by_out_trade_no(&trade.merchant_id, &trade.out_trade_no)
                    .await?
                    .ok_or_else(|| engine::OrderError::NotFound { entity: "trade order", id: 0 })?;
                trade_conflict(trade, existing)
            }

            async fn trade(
                &self,
                merchant_id: &str,
                trade_id: engine::TradeId,
            ) -> Result<Option<engine::TradeOrder>, engine::OrderStoreError> {
                use crate::orders::*;
                let row: Option<TradeRow> = sqlx::query_as(&format!(
                    "SELECT {TRADE_COLUMNS} FROM trade_orders WHERE id = $1 AND merchant_id = $2"
                ))
                .bind(trade_id)
                .bind(merchant_id)
                .fetch_optional(&self.$reader)
                .await
                .map_err(db)?;
                row.map(trade_from_row).transpose()
            }

            async fn trade_by_out_trade_no(
                &self,
                merchant_id: &str,
                out_trade_no: &str,
            ) -> Result<Option<engine::TradeOrder>, engine::OrderStoreError> {
                use crate::orders::*;
                let row: Option<TradeRow> = sqlx::query_as(&format!(
                    "SELECT {TRADE_COLUMNS} FROM trade_orders WHERE merchant_id = $1 AND out_trade_no = $2"
                ))
                .bind(merchant_id)
                .bind(out_trade_no)
                .fetch_optional(&self.$reader)
                .await
                .map_err(db)?;
                row.map(trade_from_row).transpose()
            }

            async fn create_payment(
                &self,
                payment: &engine::NewPayment,
                instructions: &[engine::NewInstruction],
                now: ledger::TimestampMicros,
            ) -> Result<engine::Created<engine::PaymentWithInstructions>, engine::OrderStoreError> {
                use crate::orders::*;
                payment.validate()?;
                engine::check_instructions(payment.amount_minor, instructions)?;
                // One batch: the payment (only on its trade, in the trade's
                // currency, and only if its serial is new) and its
                // instructions.
                let insert_payment = format!(
                    "INSERT INTO payment_orders (trade_id, merchant_id, request_serial, product, payer_id, bank, \
                     amount_minor, currency, status, campaign, bonus_minor, created_at, updated_at, \
                     agreement_no) \
                     SELECT id, merchant_id, $3, $4, $5, $6, $7, currency, 'CREATED', $10, $11, $9, $9, $12 \
                     FROM trade_orders WHERE id = $1 AND merchant_id = $2 AND currency = $8{} \
                     ON CONFLICT (merchant_id, request_serial) DO NOTHING RETURNING {PAYMENT_COLUMNS}",
                    $lock
                );
                let insert_instruction = format!(
                    "INSERT INTO payment_instructions (payment_id, direction, source, amount_minor, currency, \
                     status, created_at, updated_at) \
                     SELECT id, $3, $4, $5, currency, 'CREATED', $6, $6 FROM payment_orders \
                     WHERE merchant_id = $1 AND request_serial = $2 RETURNING {INSTRUCTION_COLUMNS}"
                );
                let mut batch = crate::batch::Batch::new();
                batch.push(
                    crate::batch::Statement::new(&insert_payment)
                        .bind(payment.trade_id)
                        .bind(&payment.merchant_id)
                        .bind(&payment.request_serial)
                        .bind(&payment.product)
                        .bind(&payment.payer_id)
                        .bind(payment.bank.as_deref())
                        .bind(payment.amount_minor)
                        .bind(payment.currency.code())
                        .bind(now)
                        .bind(payment.campaign.as_deref())
                        .bind(payment.bonus_minor)
                        .bind(payment.agreement_no.as_deref()),
                    crate::batch::Expect::OneChange,
                );
                for instruction in instructions {
                    batch.push(
                        crate::batch::Statement::new(&insert_instruction)
                            .bind(&payment.merchant_id)
                            .bind(&payment.request_serial)
                            .bind(instruction.direction.as_str())
                            .bind(instruction.source.as_str())
                            .bind(instruction.amount_minor)
                            .bind(now),
                        crate::batch::Expect::OneChange,
                    );
                }
                let mut rows = match self.run_batch(&batch).await {
                    Ok(rows) => rows.into_iter(),
                    Err(crate::batch::BatchError::Expectation { statement: 0 }) => {
                        // No payment: its serial was taken (by this request
                        // before, or by one that raced it), or its trade is
                        // not there in its currency.
                        if let Some(found) = self
                            .payment_by_request_serial(&payment.merchant_id, &payment.request_serial)
                            .await?
                        {
                            return payment_conflict(payment, found);
                        }
                        return Err(match self.trade(&payment.merchant_id, payment.trade_id).await? {
                            None => engine::OrderError::NotFound { entity: "trade order", id: payment.trade_id },
                            Some(_) => engine::OrderError::ReferenceConflict { reference: "trade", field: "currency" },
                        }
                        .into());
                    }
                    Err(error) => return Err(batch_failed(error)),
                };
                let returned = |rows: Option<Vec<_>>| {
                    rows.and_then(|rows| rows.into_iter().next())
                        .ok_or_else(|| engine::OrderStoreError::Store(ledger::StoreError::Corrupt(
                            "an insert returned no row".to_owned(),
                        )))
                };
                let created = payment_from_row(
                    sqlx::FromRow::from_row(&returned(rows.next())?).map_err(db)?,
                )?;
                let mut stored = Vec::with_capacity(instructions.len());
                for row in rows {
                    stored.push(instruction_from_row(
                        sqlx::FromRow::from_row(&returned(Some(row))?).map_err(db)?,
                    )?);
                }
                self.durable().await?;
                Ok(engine::Created::New(engine::PaymentWithInstructions {
                    payment: created,
                    instructions: stored,
                }))
            }

            async fn payment(
                &self,
                merchant_id: &str,
                payment_id: engine::PaymentId,
            ) -> Result<Option<engine::PaymentWithInstructions>, engine::OrderStoreError> {
                use crate::orders::*;
                let row: Option<PaymentRow> = sqlx::query_as(&format!(
                    "SELECT {PAYMENT_COLUMNS} FROM payment_orders WHERE id = $1 AND merchant_id = $2"
                ))
                .bind(payment_id)
                .bind(merchant_id)
                .fetch_optional(&self.$reader)
                .await
                .map_err(db)?;
                let Some(row) = row else {
                    return Ok(None);
                };
                let rows: Vec<InstructionRow> = sqlx::query_as(&format!(
                    "SELECT {INSTRUCTION_COLUMNS} FROM payment_instructions WHERE payment_id = $1 ORDER BY id"
                ))
                .bind(payment_id)
                .fetch_all(&self.$reader)
                .await
                .map_err(db)?;
                Ok(Some(engine::PaymentWithInstructions {
                    payment: payment_from_row(row)?,
                    instructions: rows
                        .into_iter()
                        .map(instruction_from_row)
                        .collect::<Result<_, _>>()?,
                }))
            }

            async fn payment_by_request_serial(
                &self,
                merchant_id: &str,
                request_serial: &str,
            ) -> Result<Option<engine::PaymentWithInstructions>, engine::OrderStoreError> {
                let found: Option<(i64,)> = sqlx::query_as(
                    "SELECT id FROM payment_orders WHERE merchant_id = $1 AND request_serial = $2",
                )
                .bind(merchant_id)
                .bind(request_serial)
                .fetch_optional(&self.$reader)
                .await
                .map_err(crate::orders::db)?;
                match found {
                    Some((payment_id,)) => self.payment(merchant_id, payment_id).await,
                    None => Ok(None),
                }
            }

            async fn unfinished_payments(
                &self,
                changed_before: ledger::TimestampMicros,
                now: ledger::TimestampMicros,
                limit: usize,
            ) -> Result<Vec<engine::PaymentOrder>, engine::OrderStoreError> {
                use crate::orders::*;
                let rows: Vec<PaymentRow> = sqlx::query_as(&format!(
                    "SELECT {PAYMENT_COLUMNS} FROM payment_orders \
                     WHERE status IN ('CREATED', 'PROCESSING') AND updated_at < $1 AND next_check_at <= $3 \
                     ORDER BY next_check_at, updated_at LIMIT $2"
                ))
                .bind(changed_before)
                .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                .bind(now)
                .fetch_all(&self.$reader)
                .await
                .map_err(db)?;
                rows.into_iter().map(payment_from_row).collect()
            }

            async fn create_channel_order(
                &self,
                instruction_id: engine::InstructionId,
                refund_id: Option<engine::RefundId>,
                channel: &str,
                amount_minor: i64,
                now: ledger::TimestampMicros,
            ) -> Result<engine::Created<engine::ChannelOrder>, engine::OrderStoreError> {
                use crate::orders::*;
                check_channel_order(channel, amount_minor)?;
                let row: Option<ChannelOrderRow> = self
                    .write_returning(
                        crate::batch::Statement::new(format!(
                            "INSERT INTO channel_orders (instruction_id, refund_id, channel, amount_minor, currency, \
                             status, created_at, updated_at) SELECT id, $1, $2, $3, currency, 'CREATED', $4, $4 \
                             FROM payment_instructions WHERE id = $5 ON CONFLICT DO NOTHING \
                             RETURNING {CHANNEL_ORDER_COLUMNS}"
                        ))
                        .bind(refund_id)
                        .bind(channel)
                        .bind(amount_minor)
                        .bind(now)
                        .bind(instruction_id),
                    )
                    .await
                    .map_err(batch_failed)?;
                if let Some(row) = row {
                    self.durable().await?;
                    return Ok(engine::Created::New(channel_order_from_row(row)?));
                }
                // Either the instruction does not exist, or its order does.
                let existing = self.channel_orders(instruction_id, refund_id).await?;
                existing
                    .into_iter()
                    .next()
                    .map(engine::Created::Existing)
                    .ok_or_else(|| {
                        engine::OrderError::NotFound {
                            entity: "payment instruction",
                            id: instruction_id,
                        }
                        .into()
                    })
            }

            async fn create_payout_orders(
                &self,
                instruction_id: engine::InstructionId,
                channel: &str,
                amounts_minor: &[i64],
                now: ledger::TimestampMicros,
            ) -> Result<engine::Created<Vec<engine::ChannelOrder>>, engine::OrderStoreError> {
                use crate::orders::*;
                if amounts_minor.is_empty() || amounts_minor.len() > engine::PAYOUT_PARTS_MAX {
                    return Err(engine::OrderError::InvalidPartCount {
                        parts: amounts_minor.len(),
                        max: engine::PAYOUT_PARTS_MAX,
                    }
                    .into());
                }
                for amount_minor in amounts_minor {
                    check_channel_order(channel, *amount_minor)?;
                }
                // All parts in one statement, and only while the instruction
                // has none: the parts of one payout come from one routing.
                let parts = (0..amounts_minor.len())
                    .map(|part| {
                        let first = 4 + 2 * part;
                        format!(
                            "SELECT CAST(${first} AS BIGINT) AS part_no, CAST(${} AS BIGINT) AS amount_minor",
                            first + 1
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(" UNION ALL ");
                let sql = format!(
                    "INSERT INTO channel_orders (instruction_id, refund_id, part_no, channel, amount_minor, \
                     currency, status, created_at, updated_at) \
                     SELECT i.id, NULL, p.part_no, $1, p.amount_minor, i.currency, 'CREATED', $2, $2 \
                     FROM payment_instructions i CROSS JOIN ({parts}) p WHERE i.id = $3 \
                     AND NOT EXISTS (SELECT 1 FROM channel_orders c \
                       WHERE c.instruction_id = $3 AND c.refund_id IS NULL) \
                     RETURNING {CHANNEL_ORDER_COLUMNS}"
                );
                let mut query = sqlx::query_as::<_, ChannelOrderRow>(&sql)
                    .bind(channel)
                    .bind(now)
                    .bind(instruction_id);
                for (part_no, amount_minor) in amounts_minor.iter().enumerate() {
                    query = query
                        .bind(i64::try_from(part_no).unwrap_or(i64::MAX))
                        .bind(*amount_minor);
                }
                let rows = match query.fetch_all(&self.$writer).await {
                    Ok(rows) => rows,
                    // Another run created them at the same moment.
                    Err(sqlx::Error::Database(error)) if error.is_unique_violation() => Vec::new(),
                    Err(error) => return Err(db(error)),
                };
                if !rows.is_empty() {
                    self.durable().await?;
                    let mut orders = rows
                        .into_iter()
                        .map(channel_order_from_row)
                        .collect::<Result<Vec<_>, _>>()?;
                    orders.sort_by_key(|order| order.part_no);
                    return Ok(engine::Created::New(orders));
                }
                // Either the instruction does not exist, or its orders do.
                let existing = self.channel_orders(instruction_id, None).await?;
                if existing.is_empty() {
                    return Err(engine::OrderError::NotFound {
                        entity: "payment instruction",
                        id: instruction_id,
                    }
                    .into());
                }
                Ok(engine::Created::Existing(existing))
            }

            async fn channel_orders(
                &self,
                instruction_id: engine::InstructionId,
                refund_id: Option<engine::RefundId>,
            ) -> Result<Vec<engine::ChannelOrder>, engine::OrderStoreError> {
                use crate::orders::*;
                let rows: Vec<ChannelOrderRow> = sqlx::query_as(&format!(
                    "SELECT {CHANNEL_ORDER_COLUMNS} FROM channel_orders \
                     WHERE instruction_id = $1 AND refund_id IS NOT DISTINCT FROM $2 ORDER BY part_no, id"
                ))
                .bind(instruction_id)
                .bind(refund_id)
                .fetch_all(&self.$reader)
                .await
                .map_err(db)?;
                rows.into_iter().map(channel_order_from_row).collect()
            }

            async fn set_channel_transaction_id(
                &self,
                channel_order_id: engine::ChannelOrderId,
                channel_transaction_id: &str,
                booking: Option<engine::ChannelBooking<'_>>,
                now: ledger::TimestampMicros,
            ) -> Result<(), engine::OrderStoreError> {
                self.record_channel_answer(channel_order_id, channel_transaction_id, booking, &[], now)
                    .await
            }

            async fn record_channel_answer(
                &self,
                channel_order_id: engine::ChannelOrderId,
                channel_transaction_id: &str,
                booking: Option<engine::ChannelBooking<'_>>,
                moves: &[engine::Move],
                now: ledger::TimestampMicros,
            ) -> Result<(), engine::OrderStoreError> {
                use crate::orders::*;
                let mut batch = crate::batch::Batch::new();
                let recorded = batch.push(
                    crate::batch::Statement::new(
                        "UPDATE channel_orders SET channel_transaction_id = $1, updated_at = $2, \
                         channel_business_date = COALESCE($4, channel_business_date), \
                         channel_fee_minor = COALESCE($5, channel_fee_minor) WHERE id = $3 \
                         AND (channel_transaction_id IS NULL OR channel_transaction_id = $1)",
                    )
                    .bind(channel_transaction_id)
                    .bind(now)
                    .bind(channel_order_id)
                    .bind(booking.map(|booking| booking.business_date))
                    .bind(booking.map(|booking| booking.fee_minor)),
                    crate::batch::Expect::OneChange,
                );
                let statements = push_moves(&mut batch, moves, now);
                let failed = match self.run_batch(&batch).await {
                    Ok(_) => {
                        self.durable().await?;
                        return Ok(());
                    }
                    Err(crate::batch::BatchError::Expectation { statement }) if statement == recorded => {
                        return Err(engine::OrderError::ReferenceConflict {
                            reference: "channel order",
                            field: "channel_transaction_id",
                        }
                        .into());
                    }
                    Err(error) => error,
                };
                Err(self.failed_move(failed, moves, statements).await)
            }

            async fn create_refund(
                &self,
                refund: &engine::NewRefund,
                now: ledger::TimestampMicros,
            ) -> Result<engine::Created<engine::RefundOrder>, engine::OrderStoreError> {
                use crate::orders::*;
                engine::check_refund_request(refund)?;
                let mut transaction = self.$writer.begin().await.map_err(db)?;
                let trade: Option<TradeRow> = sqlx::query_as(&format!(
                    "SELECT {TRADE_COLUMNS} FROM trade_orders WHERE id = $1 AND merchant_id = $2{}",
                    $lock
                ))
                .bind(refund.trade_id)
                .bind(&refund.merchant_id)
                .fetch_optional(&mut *transaction)
                .await
                .map_err(db)?;
                let trade = trade
                    .map(trade_from_row)
                    .transpose()?
                    .ok_or(engine::OrderError::NotFound { entity: "trade order", id: refund.trade_id })?;
                let existing: Option<RefundRow> = sqlx::query_as(&format!(
                    "SELECT {REFUND_COLUMNS} FROM refund_orders WHERE merchant_id = $1 AND refund_serial = $2"
                ))
                .bind(&refund.merchant_id)
                .bind(&refund.refund_serial)
                .fetch_optional(&mut *transaction)
                .await
                .map_err(db)?;
                if let Some(row) = existing {
                    let found = refund_from_row(row)?;
                    return engine::refund_conflict(refund, found);
                }
                let payment_id =
                    refund.payment_id.or(trade.paid_payment_id).ok_or(engine::OrderError::RefundExceedsRefundable {
                        requested_minor: refund.amount_minor,
                        refundable_minor: 0,
                    })?;
                if Some(payment_id) == trade.paid_payment_id {
                    let (in_flight_minor,): (i64,) = sqlx::query_as(
                        "SELECT CAST(COALESCE(SUM(amount_minor), 0) AS BIGINT) FROM refund_orders \
                         WHERE trade_id = $1 AND payment_id = $2 AND status IN ('PENDING_REVIEW', 'PROCESSING')",
                    )
                    .bind(refund.trade_id)
                    .bind(payment_id)
                    .fetch_one(&mut *transaction)
                    .await
                    .map_err(db)?;
                    engine::check_refundable(&trade, in_flight_minor, refund.amount_minor)?;
                } else {
                    // Another payment of the trade: a duplicate. The engine
                    // raises its refund as the payment succeeds (before or
                    // after the status is written, so a crash between the two
                    // cannot lose it); a failed payment has nothing to return.
                    let succeeded: Option<(i64,)> = sqlx::query_as(
                        "SELECT id FROM payment_orders WHERE id = $1 AND trade_id = $2 \
                         AND status IN ('PROCESSING', 'SUCCESS')",
                    )
                    .bind(payment_id)
                    .bind(trade.id)
                    .fetch_optional(&mut *transaction)
                    .await
                    .map_err(db)?;
                    if succeeded.is_none() {
                        return Err(engine::OrderError::NotFound { entity: "succeeded payment", id: payment_id }.into());
                    }
                }
                // 担保交易: out of escrow until the trade is released (a
                // duplicate payment's money is never released); a release
                // half done decides nothing until it is done.
                let from_escrow = if !refund.payee_escrow {
                    false
                } else if Some(payment_id) != trade.paid_payment_id {
                    true
                } else {
                    let escrow: Option<(String,)> =
                        sqlx::query_as("SELECT status FROM escrows WHERE trade_id = $1")
                            .bind(trade.id)
                            .fetch_optional(&mut *transaction)
                            .await
                            .map_err(db)?;
                    match escrow.map(|(text,)| crate::escrows::escrow_status(&text)).transpose()? {
                        None | Some(engine::EscrowStatus::Held) => true,
                        Some(engine::EscrowStatus::Released) => false,
                        Some(engine::EscrowStatus::Releasing) => {
                            return Err(engine::OrderError::EscrowReleasing { trade_id: trade.id }.into());
                        }
                    }
                };
                let parts =
                    $allocation::refund_allocation(&mut transaction, trade.id, payment_id, refund.amount_minor, refund.ordering).await?;
                let row: RefundRow = sqlx::query_as(&format!(
                    "INSERT INTO refund_orders (trade_id, payment_id, merchant_id, refund_serial, amount_minor, \
                     currency, status, initiator, reason, bonus_void_minor, created_at, updated_at, from_escrow) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $11, $10, $10, $12) RETURNING {REFUND_COLUMNS}"
                ))
                .bind(refund.trade_id)
                .bind(payment_id)
                .bind(&refund.merchant_id)
                .bind(&refund.refund_serial)
                .bind(refund.amount_minor)
                .bind(trade.currency.code())
                .bind(refund.initiator.first_refund_status().as_str())
                .bind(refund.initiator.as_str())
                .bind(&refund.reason)
                .bind(now)
                .bind(refund.bonus_void_minor)
                .bind(from_escrow)
                .fetch_one(&mut *transaction)
                .await
                .map_err(db)?;
                for part in parts {
                    sqlx::query(
                        "INSERT INTO refund_parts (refund_id, instruction_id, amount_minor, status, created_at, \
                         updated_at) VALUES ($1, $2, $3, 'CREATED', $4, $4)",
                    )
                    .bind(row.0)
                    .bind(part.instruction_id)
                    .bind(part.amount_minor)
                    .bind(now)
                    .execute(&mut *transaction)
                    .await
                    .map_err(db)?;
                }
                transaction.commit().await.map_err(db)?;
                self.durable().await?;
                Ok(engine::Created::New(refund_from_row(row)?))
            }

            async fn refund(
                &self,
                merchant_id: &str,
                refund_id: engine::RefundId,
            ) -> Result<Option<engine::RefundOrder>, engine::OrderStoreError> {
                use crate::orders::*;
                let row: Option<RefundRow> = sqlx::query_as(&format!(
                    "SELECT {REFUND_COLUMNS} FROM refund_orders WHERE id = $1 AND merchant_id = $2"
                ))
                .bind(refund_id)
                .bind(merchant_id)
                .fetch_optional(&self.$reader)
                .await
                .map_err(db)?;
                row.map(refund_from_row).transpose()
            }

            async fn refund_parts(
                &self,
                refund_id: engine::RefundId,
            ) -> Result<Vec<engine::RefundPart>, engine::OrderStoreError> {
                use crate::orders::*;
                let rows: Vec<RefundPartRow> = sqlx::query_as(&format!(
                    "SELECT {REFUND_PART_COLUMNS} FROM refund_parts WHERE refund_id = $1 ORDER BY id"
                ))
                .bind(refund_id)
                .fetch_all(&self.$reader)
                .await
                .map_err(db)?;
                rows.into_iter().map(refund_part_from_row).collect()
            }

            async fn unfinished_refunds(
                &self,
                changed_before: ledger::TimestampMicros,
                now: ledger::TimestampMicros,
                limit: usize,
            ) -> Result<Vec<engine::RefundOrder>, engine::OrderStoreError> {
                use crate::orders::*;
                let rows: Vec<RefundRow> = sqlx::query_as(&format!(
                    "SELECT {REFUND_COLUMNS} FROM refund_orders WHERE status = 'PROCESSING' \
                     AND updated_at < $1 AND next_check_at <= $3 ORDER BY next_check_at, updated_at LIMIT $2"
                ))
                .bind(changed_before)
                .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                .bind(now)
                .fetch_all(&self.$reader)
                .await
                .map_err(db)?;
                rows.into_iter().map(refund_from_row).collect()
            }

            async fn review_refund(
                &self,
                refund: &engine::RefundOrder,
                to: engine::RefundStatus,
                review: &engine::NewRefundReview,
                now: ledger::TimestampMicros,
            ) -> Result<(), engine::OrderStoreError> {
                use crate::orders::*;
                review.validate()?;
                if refund.status != engine::RefundStatus::PendingReview {
                    // Only a refund waiting for review is reviewed.
                    return Err(engine::OrderError::from(engine::IllegalTransition {
                        entity: <engine::RefundStatus as engine::Status>::ENTITY,
                        from: engine::Status::as_str(refund.status),
                        to: engine::Status::as_str(to),
                    })
                    .into());
                }
                refund.status.transition(to).map_err(engine::OrderError::from)?;
                let mut transaction = self.$writer.begin().await.map_err(db)?;
                let done = sqlx::query(
                    "UPDATE refund_orders SET status = $1, updated_at = $2 \
                     WHERE id = $3 AND status = 'PENDING_REVIEW'",
                )
                .bind(engine::Status::as_str(to))
                .bind(now)
                .bind(refund.id)
                .execute(&mut *transaction)
                .await
                .map_err(db)?;
                if done.rows_affected() != 1 {
                    return Err(engine::OrderError::ConcurrentChange {
                        entity: "refund",
                        id: refund.id,
                        expected: "PENDING_REVIEW",
                    }
                    .into());
                }
                // A rejected refund is final now; an approved one is told
                // of when it finishes.
                if let Some(event) = engine::NotificationEvent::of_refund(to) {
                    crate::notifications::bind_refund_notification!(refund, event, now)
                        .execute(&mut *transaction)
                        .await
                        .map_err(db)?;
                }
                sqlx::query(
                    "INSERT INTO refund_reviews (refund_id, operator, approved, reason, reviewed_at) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(refund.id)
                .bind(&review.operator)
                .bind(review.approved)
                .bind(&review.reason)
                .bind(now)
                .execute(&mut *transaction)
                .await
                .map_err(db)?;
                transaction.commit().await.map_err(db)?;
                self.durable().await?;
                Ok(())
            }

            async fn refund_review(
                &self,
                refund_id: engine::RefundId,
            ) -> Result<Option<engine::RefundReview>, engine::OrderStoreError> {
                use crate::orders::*;
                let row: Option<(String, bool, String, i64)> = sqlx::query_as(
                    "SELECT operator, approved, reason, reviewed_at FROM refund_reviews \
                     WHERE refund_id = $1",
                )
                .bind(refund_id)
                .fetch_optional(&self.$reader)
                .await
                .map_err(db)?;
                Ok(row.map(|(operator, approved, reason, reviewed_at)| engine::RefundReview {
                    refund_id,
                    review: engine::NewRefundReview {
                        operator,
                        approved,
                        reason,
                    },
                    reviewed_at,
                }))
            }

            async fn refunds_waiting_review(
                &self,
                limit: usize,
            ) -> Result<Vec<engine::RefundOrder>, engine::OrderStoreError> {
                use crate::orders::*;
                let rows: Vec<RefundRow> = sqlx::query_as(&format!(
                    "SELECT {REFUND_COLUMNS} FROM refund_orders WHERE status = 'PENDING_REVIEW' \
                     ORDER BY created_at, id LIMIT $1"
                ))
                .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                .fetch_all(&self.$reader)
                .await
                .map_err(db)?;
                rows.into_iter().map(refund_from_row).collect()
            }

            async fn bank_outages(&self) -> Result<Vec<engine::BankOutage>, engine::OrderStoreError> {
                use crate::orders::*;
                let rows: Vec<(String, String)> =
                    sqlx::query_as("SELECT channel, bank FROM bank_outages ORDER BY channel, bank")
                        .fetch_all(&self.$reader)
                        .await
                        .map_err(db)?;
                Ok(rows
                    .into_iter()
                    .map(|(channel, bank)| engine::BankOutage { channel, bank })
                    .collect())
            }

            async fn set_bank_down(
                &self,
                outage: &engine::BankOutage,
                down: bool,
                now: ledger::TimestampMicros,
            ) -> Result<(), engine::OrderStoreError> {
                use crate::orders::*;
                for (field, text) in [("channel", &outage.channel), ("bank", &outage.bank)] {
                    if text.is_empty() || text.len() > engine::REFERENCE_LENGTH_MAX {
                        return Err(engine::OrderError::InvalidText {
                            field,
                            max: engine::REFERENCE_LENGTH_MAX,
                        }
                        .into());
                    }
                }
                let query = if down {
                    sqlx::query(
                        "INSERT INTO bank_outages (channel, bank, since) VALUES ($1, $2, $3) \
                         ON CONFLICT (channel, bank) DO NOTHING",
                    )
                    .bind(&outage.channel)
                    .bind(&outage.bank)
                    .bind(now)
                } else {
                    sqlx::query("DELETE FROM bank_outages WHERE channel = $1 AND bank = $2")
                        .bind(&outage.channel)
                        .bind(&outage.bank)
                };
                query.execute(&self.$writer).await.map_err(db)?;
                self.durable().await?;
                Ok(())
            }

            async fn defer_check(
                &self,
                level: engine::Level,
                id: i64,
                until: ledger::TimestampMicros,
            ) -> Result<(), engine::OrderStoreError> {
                use crate::orders::*;
                let table = match level {
                    engine::Level::Payment | engine::Level::Refund => table(level),
                    _ => return Ok(()),
                };
                sqlx::query(&format!("UPDATE {table} SET next_check_at = $1 WHERE id = $2"))
                    .bind(until)
                    .bind(id)
                    .execute(&self.$writer)
                    .await
                    .map_err(db)?;
                Ok(())
            }

            async fn transition<S: engine::Status>(
                &self,
                id: i64,
                from: S,
                to: S,
                now: ledger::TimestampMicros,
            ) -> Result<(), engine::OrderStoreError> {
                let step = engine::Move::new(id, from, to).map_err(engine::OrderError::from)?;
                self.transitions(&[step], now).await
            }

            async fn transitions(
                &self,
                moves: &[engine::Move],
                now: ledger::TimestampMicros,
            ) -> Result<(), engine::OrderStoreError> {
                let mut batch = crate::batch::Batch::new();
                let statements = crate::orders::push_moves(&mut batch, moves, now);
                match self.run_batch(&batch).await {
                    Ok(_) => {
                        self.durable().await?;
                        Ok(())
                    }
                    Err(error) => Err(self.failed_move(error, moves, statements).await),
                }
            }

            async fn finish_payment(
                &self,
                payment: &engine::PaymentOrder,
                finish: &engine::PaymentFinish<'_>,
                now: ledger::TimestampMicros,
            ) -> Result<(), engine::OrderStoreError> {
                use crate::orders::*;
                let to = finish.to;
                let event = finish.event;
                payment.status.transition(to).map_err(engine::OrderError::from)?;
                if let Some(fee) = finish.fee {
                    fee.validate()?;
                }
                // One batch: the status, the notification, the clearing
                // entry and fee, and the escrow commit together.
                let mut batch = crate::batch::Batch::new();
                let moved = batch.push(
                    crate::batch::Statement::new(
                        "UPDATE payment_orders SET status = $1, updated_at = $2, failure_code = $5 \
                         WHERE id = $3 AND status = $4",
                    )
                    .bind(to.as_str())
                    .bind(now)
                    .bind(payment.id)
                    .bind(payment.status.as_str())
                    .bind(finish.failure.map(engine::FailureReason::as_str)),
                    crate::batch::Expect::OneChange,
                );
                batch.push(
                    crate::notifications::bind_payment_notification!(&payment.merchant_id, payment.id, event, now),
                    crate::batch::Expect::Any,
                );
                if let Some(entry) = finish.clearing {
                    batch.push(crate::clearing::bind_clearing!(entry), crate::batch::Expect::Any);
                }
                if let Some(fee) = finish.fee {
                    batch.push(
                        crate::payment_fees::bind_fee!(fee, engine::PaymentFeeStatus::Charged, now),
                        crate::batch::Expect::Any,
                    );
                }
                if let Some(escrow) = finish.escrow {
                    batch.push(crate::escrows::bind_new_escrow!(escrow, now), crate::batch::Expect::Any);
                }
                match self.run_batch(&batch).await {
                    Ok(_) => {}
                    Err(crate::batch::BatchError::Expectation { statement }) if statement == moved => {
                        return Err(engine::OrderError::ConcurrentChange {
                            entity: "payment order",
                            id: payment.id,
                            expected: payment.status.as_str(),
                        }
                        .into());
                    }
                    Err(error) => return Err(batch_failed(error)),
                }
                self.durable().await?;
                Ok(())
            }

            async fn mark_trade_paid(
                &self,
                trade_id: engine::TradeId,
                payment_id: engine::PaymentId,
                paid_minor: i64,
                now: ledger::TimestampMicros,
            ) -> Result<engine::TradeOrder, engine::OrderStoreError> {
                use crate::orders::*;
                let row: Option<TradeRow> = self
                    .write_returning(
                        crate::batch::Statement::new(format!(
                            "UPDATE trade_orders SET status = 'SUCCESS', paid_payment_id = $1, paid_minor = $2, \
                             updated_at = $3 WHERE id = $4 AND status = 'WAIT_PAY' RETURNING {TRADE_COLUMNS}"
                        ))
                        .bind(payment_id)
                        .bind(paid_minor)
                        .bind(now)
                        .bind(trade_id),
                    )
                    .await
                    .map_err(batch_failed)?;
                match row {
                    Some(row) => {
                        self.durable().await?;
                        trade_from_row(row)
                    }
                    None => Err(self.trade_state_error(trade_id, engine::TradeStatus::Success).await),
                }
            }

            async fn finish_refund(
                &self,
                refund: &engine::RefundOrder,
                to: engine::RefundStatus,
                clearing: Option<&engine::NewClearingEntry>,
                now: ledger::TimestampMicros,
            ) -> Result<(), engine::OrderStoreError> {
                use crate::orders::*;
                refund.status.transition(to).map_err(engine::OrderError::from)?;
                let mut transaction = self.$writer.begin().await.map_err(db)?;
                let trade: Option<TradeRow> = sqlx::query_as(&format!(
                    "SELECT {TRADE_COLUMNS} FROM trade_orders WHERE id = $1{}",
                    $lock
                ))
                .bind(refund.trade_id)
                .fetch_optional(&mut *transaction)
                .await
                .map_err(db)?;
                let trade = trade
                    .map(trade_from_row)
                    .transpose()?
                    .ok_or(engine::OrderError::NotFound { entity: "trade order", id: refund.trade_id })?;
                let done = sqlx::query(
                    "UPDATE refund_orders SET status = $1, updated_at = $2 WHERE id = $3 AND status = $4",
                )
                .bind(to.as_str())
                .bind(now)
                .bind(refund.id)
                .bind(refund.status.as_str())
                .execute(&mut *transaction)
                .await
                .map_err(db)?;
                if done.rows_affected() != 1 {
                    return Err(engine::OrderError::ConcurrentChange {
                        entity: "refund",
                        id: refund.id,
                        expected: refund.status.as_str(),
                    }
                    .into());
                }
                if let Some(event) = engine::NotificationEvent::of_refund(to) {
                    crate::notifications::bind_refund_notification!(refund, event, now)
                        .execute(&mut *transaction)
                        .await
                        .map_err(db)?;
                }
                // A duplicate payment's money was never the trade's.
                if to == engine::RefundStatus::Success && trade.paid_payment_id == Some(refund.payment_id) {
                    let (next, refunded_minor) = trade.after_refund(refund.amount_minor)?;
                    sqlx::query(
                        "UPDATE trade_orders SET status = $1, refunded_minor = $2, updated_at = $3 WHERE id = $4",
                    )
                    .bind(next.as_str())
                    .bind(refunded_minor)
                    .bind(now)
                    .bind(trade.id)
                    .execute(&mut *transaction)
                    .await
                    .map_err(db)?;
                }
                if let Some(entry) = clearing {
                    crate::clearing::bind_clearing!(entry)
                        .query()
                        .execute(&mut *transaction)
                        .await
                        .map_err(db)?;
                }
                transaction.commit().await.map_err(db)?;
                self.durable().await?;
                Ok(())
            }

            async fn record_trade_refund(
                &self,
                trade_id: engine::TradeId,
                amount_minor: i64,
                now: ledger::TimestampMicros,
            ) -> Result<engine::TradeOrder, engine::OrderStoreError> {
                use crate::orders::*;
                let mut transaction = self.$writer.begin().await.map_err(db)?;
                let row: Option<TradeRow> = sqlx::query_as(&format!(
                    "SELECT {TRADE_COLUMNS} FROM trade_orders WHERE id = $1{}",
                    $lock
                ))
                .bind(trade_id)
                .fetch_optional(&mut *transaction)
                .await
                .map_err(db)?;
                let trade = row
                    .map(trade_from_row)
                    .transpose()?
                    .ok_or(engine::OrderError::NotFound { entity: "trade order", id: trade_id })?;
                let (next, refunded_minor) = trade.after_refund(amount_minor)?;
                let row: TradeRow = sqlx::query_as(&format!(
                    "UPDATE trade_orders SET status = $1, refunded_minor = $2, updated_at = $3 \
                     WHERE id = $4 RETURNING {TRADE_COLUMNS}"
                ))
                .bind(next.as_str())
                .bind(refunded_minor)
                .bind(now)
                .bind(trade_id)
                .fetch_one(&mut *transaction)
                .await
                .map_err(db)?;
                transaction.commit().await.map_err(db)?;
                self.durable().await?;
                trade_from_row(row)
            }
        }

        impl $store {
            /// Why a batch holding `moves` (at the batch's `statements`)
            /// failed: a move whose order is missing or elsewhere is named.
            async fn failed_move(
                &self,
                error: crate::batch::BatchError,
                moves: &[engine::Move],
                statements: Vec<usize>,
            ) -> engine::OrderStoreError {
                use crate::orders::*;
                let step = match &error {
                    crate::batch::BatchError::Expectation { statement } => statements
                        .iter()
                        .position(|at| at == statement)
                        .and_then(|index| moves.get(index)),
                    _ => None,
                };
                let Some(step) = step else {
                    return batch_failed(error);
                };
                let exists: Result<Option<(i64,)>, _> =
                    sqlx::query_as(&format!("SELECT id FROM {} WHERE id = $1", table(step.level)))
                        .bind(step.id)
                        .fetch_optional(&self.$writer)
                        .await;
                match exists {
                    Err(error) => db(error),
                    Ok(None) => engine::OrderError::NotFound { entity: step.entity, id: step.id }.into(),
                    Ok(Some(_)) => engine::OrderError::ConcurrentChange {
                        entity: step.entity,
                        id: step.id,
                        expected: step.from,
                    }
                    .into(),
                }
            }

            /// Why a compare-and-set on a trade found nothing to change.
            async fn trade_state_error(
                &self,
                trade_id: engine::TradeId,
                wanted: engine::TradeStatus,
            ) -> engine::OrderStoreError {
                use crate::orders::*;
                let found: Result<Option<(String,)>, _> =
                    sqlx::query_as("SELECT status FROM trade_orders WHERE id = $1")
                        .bind(trade_id)
                        .fetch_optional(&self.$writer)
                        .await;
                match found {
                    Err(error) => db(error),
                    Ok(None) => engine::OrderError::NotFound { entity: "trade order", id: trade_id }.into(),
                    Ok(Some((text,))) => match status::<engine::TradeStatus>(&text) {
                        Err(error) => error,
                        Ok(current) => match current.transition(wanted) {
                            Err(illegal) => engine::OrderError::from(illegal).into(),
                            Ok(_) => engine::OrderError::ConcurrentChange {
                                entity: "trade order",
                                id: trade_id,
                                expected: current.as_str(),
                            }
                            .into(),
                        },
                    },
                }
            }
        }
    };
}

order_store!(crate::SqliteStore, writer, readers, "", sqlite_allocation);
order_store!(
    crate::PostgresStore,
    pool,
    pool,
    " FOR UPDATE",
    postgres_allocation
);
