//! Escrows (担保交易) on both stores, one SQL text for both
//! (`migrations/*/00*_escrows.sql`). An escrow is opened in the transaction
//! that makes its payment SUCCESS (`finish_payment`), and a refund decides
//! whether it comes out of escrow in the transaction that creates it
//! (`create_refund`); both lock the trade as [`EscrowStore::begin_release`]
//! does, so a refund and a release of one trade never interleave.
//!
//! [`EscrowStore::begin_release`]: engine::EscrowStore::begin_release

use crate::orders::db;
use engine::{Escrow, EscrowStatus, OrderStoreError};

pub(crate) const ESCROW_COLUMNS: &str = "trade_id, merchant_id, payment_id, currency, held_minor, \
     status, release_due_at, released_minor, released_by, reason, created_at, updated_at";

pub(crate) type EscrowRow = (
    i64,
    String,
    i64,
    String,
    i64,
    String,
    i64,
    Option<i64>,
    Option<String>,
    Option<String>,
    i64,
    i64,
);

/// Binds an `engine::NewEscrow` to an insert that keeps the first escrow
/// of a trade.
macro_rules! bind_new_escrow {
    ($escrow:expr, $now:expr) => {{
        let escrow: &engine::NewEscrow = $escrow;
        crate::batch::Statement::new(
            "INSERT INTO escrows (trade_id, merchant_id, payment_id, currency, held_minor, status, \
             release_due_at, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, 'HELD', $6, $7, $7) \
             ON CONFLICT (trade_id) DO NOTHING",
        )
        .bind(escrow.trade_id)
        .bind(&escrow.merchant_id)
        .bind(escrow.payment_id)
        .bind(escrow.currency.code())
        .bind(escrow.held_minor)
        .bind(escrow.release_due_at)
        .bind($now)
    }};
}
pub(crate) use bind_new_escrow;

pub(crate) fn escrow_status(text: &str) -> Result<EscrowStatus, OrderStoreError> {
    EscrowStatus::parse(text).ok_or_else(|| crate::agreements::corrupt("escrow status", text))
}

pub(crate) fn escrow_from_row(row: EscrowRow) -> Result<Escrow, OrderStoreError> {
    let (
        trade_id,
        merchant_id,
        payment_id,
        currency,
        held_minor,
        status,
        release_due_at,
        released_minor,
        released_by,
        reason,
        created_at,
        updated_at,
    ) = row;
    Ok(Escrow {
        trade_id,
        merchant_id,
        payment_id,
        currency: crate::rows::currency(&currency)?,
        held_minor,
        status: escrow_status(&status)?,
        release_due_at,
        released_minor,
        released_by,
        reason,
        created_at,
        updated_at,
    })
}

/// Implements `engine::EscrowStore` for a store whose connections are
/// `$writer` and `$reader`; `$lock` is appended to the SELECT that locks
/// the trade.
macro_rules! escrow_store {
    ($store:ty, $writer:ident, $reader:ident, $lock:literal) => {
        impl engine::EscrowStore for $store {
            async fn escrow(
                &self,
                merchant_id: &str,
                trade_id: engine::TradeId,
            ) -> Result<Option<engine::Escrow>, engine::OrderStoreError> {
                use crate::escrows::*;
                let row: Option<EscrowRow> = sqlx::query_as(&format!(
                    "SELECT {ESCROW_COLUMNS} FROM escrows WHERE trade_id = $1 AND merchant_id = $2"
                ))
                .bind(trade_id)
                .bind(merchant_id)
                .fetch_optional(&self.$reader)
                .await
                .map_err(db)?;
                row.map(escrow_from_row).transpose()
            }

            async fn begin_release(
                &self,
                merchant_id: &str,
                trade_id: engine::TradeId,
                released_by: &str,
                reason: Option<&str>,
                now: ledger::TimestampMicros,
            ) -> Result<engine::Escrow, engine::OrderStoreError> {
                use crate::escrows::*;
                let mut transaction = self.$writer.begin().await.map_err(db)?;
                let trade: Option<(i64,)> = sqlx::query_as(&format!(
                    "SELECT refunded_minor FROM trade_orders WHERE id = $1 AND merchant_id = $2{}",
                    $lock
                ))
                .bind(trade_id)
                .bind(merchant_id)
                .fetch_optional(&mut *transaction)
                .await
                .map_err(db)?;
                let (refunded_minor,) = trade.ok_or(engine::OrderError::NotFound {
                    entity: "trade order",
                    id: trade_id,
                })?;
                let row: Option<EscrowRow> = sqlx::query_as(&format!(
                    "SELECT {ESCROW_COLUMNS} FROM escrows WHERE trade_id = $1"
                ))
                .bind(trade_id)
                .fetch_optional(&mut *transaction)
                .await
                .map_err(db)?;
                let escrow = row
                    .map(escrow_from_row)
                    .transpose()?
                    .ok_or(engine::OrderError::NotFound { entity: "escrow of trade", id: trade_id })?;
                if escrow.status != engine::EscrowStatus::Held {
                    return Ok(escrow);
                }
                let (in_flight,): (i64,) = sqlx::query_as(
                    "SELECT COUNT(*) FROM refund_orders WHERE trade_id = $1 AND payment_id = $2 \
                     AND from_escrow AND status IN ('PENDING_REVIEW', 'PROCESSING')",
                )
                .bind(trade_id)
                .bind(escrow.payment_id)
                .fetch_one(&mut *transaction)
                .await
                .map_err(db)?;
                if in_flight > 0 {
                    return Err(engine::OrderError::EscrowRefundInFlight { trade_id }.into());
                }
                // Before release every refund of the trade came out of
                // escrow: what is left is what went in less what went back.
                let released_minor = escrow.held_minor - refunded_minor;
                if released_minor < 0 {
                    return Err(engine::OrderStoreError::Store(ledger::StoreError::Corrupt(format!(
                        "trade {trade_id} refunded {refunded_minor}, more than its escrow held"
                    ))));
                }
                let row: EscrowRow = sqlx::query_as(&format!(
                    "UPDATE escrows SET status = 'RELEASING', released_minor = $1, released_by = $2, \
                     reason = $3, updated_at = $4 WHERE trade_id = $5 AND status = 'HELD' \
                     RETURNING {ESCROW_COLUMNS}"
                ))
                .bind(released_minor)
                .bind(released_by)
                .bind(reason)
                .bind(now)
                .bind(trade_id)
                .fetch_one(&mut *transaction)
                .await
                .map_err(db)?;
                transaction.commit().await.map_err(db)?;
                self.durable().await?;
                escrow_from_row(row)
            }

            async fn finish_release(
                &self,
                escrow: &engine::Escrow,
                clearing: Option<&engine::NewClearingEntry>,
                fee: Option<&engine::NewPaymentFee>,
                now: ledger::TimestampMicros,
            ) -> Result<(), engine::OrderStoreError> {
                if let Some(fee) = fee {
                    fee.validate()?;
                }
                let mut transaction = self.$writer.begin().await.map_err(db)?;
                // The row lock this takes orders the release after (or
                // before) a reconciliation confirming its collection.
                let done: Option<(bool,)> = sqlx::query_as(
                    "UPDATE escrows SET status = 'RELEASED', updated_at = $1 \
                     WHERE trade_id = $2 AND status = 'RELEASING' RETURNING channel_confirmed",
                )
                .bind(now)
                .bind(escrow.trade_id)
                .fetch_optional(&mut *transaction)
                .await
                .map_err(db)?;
                let Some((channel_confirmed,)) = done else {
                    return Err(engine::OrderError::ConcurrentChange {
                        entity: "escrow",
                        id: escrow.trade_id,
                        expected: engine::EscrowStatus::Releasing.as_str(),
                    }
                    .into());
                };
                let confirmed = clearing
                    .filter(|entry| channel_confirmed && !entry.reconciled)
                    .map(|entry| engine::NewClearingEntry {
                        reconciled: true,
                        ..entry.clone()
                    });
                crate::clearing::write_collection!(
                    transaction,
                    confirmed.as_ref().or(clearing),
                    fee,
                    now
                );
                crate::notifications::bind_payment_notification!(
                    &escrow.merchant_id,
                    escrow.payment_id,
                    engine::NotificationEvent::EscrowReleased,
                    now
                )
                .query()
                .execute(&mut *transaction)
                .await
                .map_err(db)?;
                transaction.commit().await.map_err(db)?;
                self.durable().await?;
                Ok(())
            }

            async fn escrows_due(
                &self,
                now: ledger::TimestampMicros,
                limit: usize,
            ) -> Result<Vec<engine::Escrow>, engine::OrderStoreError> {
                use crate::escrows::*;
                let rows: Vec<EscrowRow> = sqlx::query_as(&format!(
                    "SELECT {ESCROW_COLUMNS} FROM escrows e WHERE status <> 'RELEASED' \
                     AND (status = 'RELEASING' OR (release_due_at <= $1 AND NOT EXISTS ( \
                       SELECT 1 FROM refund_orders r WHERE r.trade_id = e.trade_id \
                       AND r.payment_id = e.payment_id AND r.from_escrow \
                       AND r.status IN ('PENDING_REVIEW', 'PROCESSING')))) \
                     ORDER BY release_due_at, trade_id LIMIT $2"
                ))
                .bind(now)
                .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                .fetch_all(&self.$reader)
                .await
                .map_err(db)?;
                rows.into_iter().map(escrow_from_row).collect()
            }
        }
    };
}

escrow_store!(crate::SqliteStore, writer, readers, "");
escrow_store!(crate::PostgresStore, pool, pool, " FOR UPDATE");
