//! Fees charged on payments (计费流水) on both stores, one SQL text for
//! both: `engine::PaymentFeeStore`. Their status changes go through the
//! orders' compare-and-set `transition` (table `payment_fees`).

use crate::orders::status;
use crate::rows::{currency, database_error};
use engine::{FeeFunding, NewPaymentFee, OrderStoreError, PaymentFee};
use fees::{CollectionMode, FeeSide};
use ledger::StoreError;

/// Columns of `payment_fees` in the order [`bind_fee`] binds them.
pub(crate) const INSERT_FEE: &str = "INSERT INTO payment_fees (payment_id, side, merchant_id, \
     party_id, rule_id, collection, funding, currency, amount_minor, fee_minor, \
     business_date, status, created_at, updated_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13) \
     ON CONFLICT (payment_id, side) DO NOTHING";

/// Binds an `engine::NewPaymentFee`, its status and the time to [`INSERT_FEE`].
macro_rules! bind_fee {
    ($fee:expr, $status:expr, $now:expr) => {{
        let fee: &engine::NewPaymentFee = $fee;
        let status: engine::PaymentFeeStatus = $status;
        crate::batch::Statement::new(crate::payment_fees::INSERT_FEE)
            .bind(fee.payment_id)
            .bind(fee.side.as_str())
            .bind(&fee.merchant_id)
            .bind(&fee.party_id)
            .bind(&fee.rule_id)
            .bind(fee.collection.as_str())
            .bind(fee.funding.as_str())
            .bind(fee.currency.code())
            .bind(fee.amount_minor)
            .bind(fee.fee_minor)
            .bind(&fee.business_date)
            .bind(engine::Status::as_str(status))
            .bind($now)
    }};
}
pub(crate) use bind_fee;

pub(crate) const FEE_COLUMNS: &str = "id, payment_id, side, merchant_id, party_id, \
     rule_id, collection, funding, currency, amount_minor, fee_minor, business_date, status, \
     bill_id, created_at, updated_at";

pub(crate) type FeeRow = (
    i64,
    i64,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    i64,
    i64,
    String,
    String,
    Option<i64>,
    i64,
    i64,
);

pub(crate) fn db(error: sqlx::Error) -> OrderStoreError {
    OrderStoreError::Store(database_error(error))
}

fn corrupt(what: &str, value: &str) -> OrderStoreError {
    OrderStoreError::Store(StoreError::Corrupt(format!("unknown {what} {value:?}")))
}

pub(crate) fn fee_from_row(row: FeeRow) -> Result<PaymentFee, OrderStoreError> {
    let (
        id,
        payment_id,
        side,
        merchant_id,
        party_id,
        rule_id,
        collection,
        funding,
        currency_code,
        amount_minor,
        fee_minor,
        business_date,
        status_text,
        bill_id,
        created_at,
        updated_at,
    ) = row;
    Ok(PaymentFee {
        id,
        fee: NewPaymentFee {
            payment_id,
            side: FeeSide::parse(&side).ok_or_else(|| corrupt("fee side", &side))?,
            merchant_id,
            party_id,
            rule_id,
            collection: CollectionMode::parse(&collection)
                .ok_or_else(|| corrupt("collection mode", &collection))?,
            funding: FeeFunding::parse(&funding).ok_or_else(|| corrupt("fee funding", &funding))?,
            currency: currency(&currency_code)?,
            amount_minor,
            fee_minor,
            business_date,
        },
        status: status(&status_text)?,
        bill_id,
        created_at,
        updated_at,
    })
}

macro_rules! payment_fee_store {
    ($store:ty, $writer:ident, $reader:ident) => {
        impl engine::PaymentFeeStore for $store {
            async fn reserve_payment_fee(
                &self,
                fee: &engine::NewPaymentFee,
                now: ledger::TimestampMicros,
            ) -> Result<engine::Created<engine::PaymentFee>, engine::OrderStoreError> {
                use crate::payment_fees::*;
                fee.validate()?;
                let inserted = bind_fee!(fee, engine::PaymentFeeStatus::Reserved, now)
                    .query()
                    .execute(&self.$writer)
                    .await
                    .map_err(db)?;
                let row: FeeRow = sqlx::query_as(&format!(
                    "SELECT {FEE_COLUMNS} FROM payment_fees WHERE payment_id = $1 AND side = $2"
                ))
                .bind(fee.payment_id)
                .bind(fee.side.as_str())
                .fetch_one(&self.$writer)
                .await
                .map_err(db)?;
                let stored = fee_from_row(row)?;
                if inserted.rows_affected() == 1 {
                    self.durable().await?;
                    Ok(engine::Created::New(stored))
                } else {
                    Ok(engine::Created::Existing(stored))
                }
            }

            async fn payment_fees(
                &self,
                payment_id: i64,
            ) -> Result<Vec<engine::PaymentFee>, engine::OrderStoreError> {
                use crate::payment_fees::*;
                let rows: Vec<FeeRow> = sqlx::query_as(&format!(
                    "SELECT {FEE_COLUMNS} FROM payment_fees WHERE payment_id = $1 \
                     ORDER BY side"
                ))
                .bind(payment_id)
                .fetch_all(&self.$reader)
                .await
                .map_err(db)?;
                rows.into_iter().map(fee_from_row).collect()
            }

            async fn record_fee_deposit(
                &self,
                deposit: &engine::NewFeeDeposit,
                now: ledger::TimestampMicros,
            ) -> Result<engine::FeeDepositRecord, engine::OrderStoreError> {
                use crate::payment_fees::*;
                let inserted = sqlx::query(
                    "INSERT INTO fee_deposits (merchant_id, reference, currency, amount_minor, source, \
                     status, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, 'PENDING', $6, $6) \
                     ON CONFLICT (merchant_id, reference) DO NOTHING",
                )
                .bind(&deposit.merchant_id)
                .bind(&deposit.reference)
                .bind(deposit.currency.code())
                .bind(deposit.amount_minor)
                .bind(deposit.source.name())
                .bind(now)
                .execute(&self.$writer)
                .await
                .map_err(db)?;
                let row: DepositRow = sqlx::query_as(&format!(
                    "SELECT {DEPOSIT_COLUMNS} FROM fee_deposits WHERE merchant_id = $1 AND reference = $2"
                ))
                .bind(&deposit.merchant_id)
                .bind(&deposit.reference)
                .fetch_one(&self.$writer)
                .await
                .map_err(db)?;
                if inserted.rows_affected() == 1 {
                    self.durable().await?;
                }
                deposit_conflict(deposit, deposit_from_row(row)?)
            }

            async fn mark_fee_deposit_posted(
                &self,
                deposit_id: i64,
                transfer_id: i64,
                now: ledger::TimestampMicros,
            ) -> Result<(), engine::OrderStoreError> {
                use crate::payment_fees::*;
                sqlx::query(
                    "UPDATE fee_deposits SET status = 'POSTED', transfer_id = $2, updated_at = $3 \
                     WHERE id = $1 AND status = 'PENDING'",
                )
                .bind(deposit_id)
                .bind(transfer_id)
                .bind(now)
                .execute(&self.$writer)
                .await
                .map_err(db)?;
                self.durable().await?;
                Ok(())
            }
        }
    };
}

pub(crate) const DEPOSIT_COLUMNS: &str = "id, merchant_id, reference, currency, amount_minor, \
     source, status, transfer_id, created_at, updated_at";

pub(crate) type DepositRow = (
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
);

pub(crate) fn deposit_from_row(
    row: DepositRow,
) -> Result<engine::FeeDepositRecord, OrderStoreError> {
    let (
        id,
        merchant_id,
        reference,
        code,
        amount_minor,
        source,
        status,
        transfer_id,
        created_at,
        updated_at,
    ) = row;
    Ok(engine::FeeDepositRecord {
        id,
        deposit: engine::NewFeeDeposit {
            merchant_id,
            reference,
            currency: currency(&code)?,
            amount_minor,
            source: engine::FeeDeposit::parse(&source)
                .ok_or_else(|| corrupt("fee deposit source", &source))?,
        },
        posted: status == "POSTED",
        transfer_id,
        created_at,
        updated_at,
    })
}

/// A repeated reference: the same deposit if the fields agree.
pub(crate) fn deposit_conflict(
    request: &engine::NewFeeDeposit,
    stored: engine::FeeDepositRecord,
) -> Result<engine::FeeDepositRecord, OrderStoreError> {
    let field = if request.amount_minor != stored.deposit.amount_minor {
        Some("amount_minor")
    } else if request.currency != stored.deposit.currency {
        Some("currency")
    } else if request.source != stored.deposit.source {
        Some("source")
    } else {
        None
    };
    match field {
        None => Ok(stored),
        Some(field) => Err(engine::OrderError::ReferenceConflict {
            reference: "reference",
            field,
        }
        .into()),
    }
}

payment_fee_store!(crate::SqliteStore, writer, readers);
payment_fee_store!(crate::PostgresStore, pool, pool);
