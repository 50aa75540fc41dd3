//! 后收 fee bills on both stores, one SQL text for both:
//! `settlement::FeeBillStore`. A bill's fees are the `payment_fees` rows it
//! marks with its id, in the transaction that creates it.

use crate::clearing::db;
use crate::rows::currency;
use ledger::StoreError;
use settlement::{FeeBill, FeeBillLine, FeeBillStatus, FeeMonth, SettlementStoreError};

fn corrupt(what: &str, value: &str) -> SettlementStoreError {
    SettlementStoreError::Store(StoreError::Corrupt(format!("{what}: {value:?}")))
}

fn date(text: &str) -> Result<settlement::Date, SettlementStoreError> {
    settlement::parse_date(text).map_err(|_| corrupt("business date", text))
}

fn count(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

/// What a bill takes: its merchant's unbilled charged post-paid fees in its
/// currency up to a business date and a fee id.
pub(crate) const UNBILLED: &str = "bill_id IS NULL AND collection = 'post_paid' \
     AND status = 'CHARGED' AND business_date <= $1 AND id <= $2";

pub(crate) const INSERT_BILL: &str = "INSERT INTO fee_bills (merchant_id, currency, month, \
     status, charge_count, fees_minor, up_to_business_date, created_at, updated_at) \
     VALUES ($1, $2, $3, 'ISSUED', $4, $5, $6, $7, $7) \
     ON CONFLICT (merchant_id, currency, month) DO NOTHING RETURNING id";

pub(crate) const BILL_COLUMNS: &str = "id, merchant_id, currency, month, status, charge_count, \
     fees_minor, up_to_business_date, transfer_id, created_at, updated_at";

/// Reads a row of [`BILL_COLUMNS`] on either store.
pub(crate) fn bill_from_row<R>(row: &R) -> Result<FeeBill, SettlementStoreError>
where
    R: sqlx::Row,
    usize: sqlx::ColumnIndex<R>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let int = |index: usize| row.try_get::<i64, _>(index).map_err(db);
    let text = |index: usize| row.try_get::<String, _>(index).map_err(db);
    let month = text(3)?;
    let status = text(4)?;
    Ok(FeeBill {
        id: int(0)?,
        merchant_id: text(1)?,
        currency: currency(&text(2)?)?,
        month: FeeMonth::parse(&month).map_err(|_| corrupt("fee bill month", &month))?,
        status: FeeBillStatus::parse(&status).ok_or_else(|| corrupt("fee bill status", &status))?,
        charge_count: count(int(5)?),
        fees_minor: int(6)?,
        up_to_business_date: date(&text(7)?)?,
        transfer_id: row.try_get::<Option<i64>, _>(8).map_err(db)?,
        created_at: int(9)?,
        updated_at: int(10)?,
    })
}

pub(crate) type LineRow = (String, String, i64, i64, i64);

pub(crate) fn line_from_row(row: LineRow) -> Result<FeeBillLine, SettlementStoreError> {
    let (business_date, rule_id, charges, amount_minor, fees_minor) = row;
    Ok(FeeBillLine {
        business_date: date(&business_date)?,
        rule_id,
        charge_count: count(charges),
        amount_minor,
        fees_minor,
    })
}

/// Implements `settlement::FeeBillStore` for a store type whose connections are
/// `$writer` and `$reader`.
macro_rules! fee_bill_store {
    ($store:ty, $writer:ident, $reader:ident) => {
        impl settlement::FeeBillStore for $store {
            async fn payment_fee_high_water(
                &self,
            ) -> Result<i64, settlement::SettlementStoreError> {
                use crate::clearing::db;
                let (high,): (Option<i64>,) = sqlx::query_as("SELECT MAX(id) FROM payment_fees")
                    .fetch_one(&self.$reader)
                    .await
                    .map_err(db)?;
                Ok(high.unwrap_or(0))
            }

            async fn unbilled_fees(
                &self,
                up_to_business_date: settlement::Date,
                up_to_fee_id: i64,
            ) -> Result<Vec<settlement::UnbilledFees>, settlement::SettlementStoreError> {
                use crate::fee_bills::*;
                let rows: Vec<(String, String, i64, i64)> = sqlx::query_as(&format!(
                    "SELECT merchant_id, currency, COUNT(*), CAST(SUM(fee_minor) AS BIGINT) \
                     FROM payment_fees WHERE {UNBILLED} \
                     GROUP BY merchant_id, currency ORDER BY merchant_id, currency"
                ))
                .bind(up_to_business_date.to_string())
                .bind(up_to_fee_id)
                .fetch_all(&self.$reader)
                .await
                .map_err(crate::clearing::db)?;
                rows.into_iter()
                    .map(|(merchant_id, code, charges, fees_minor)| {
                        Ok(settlement::UnbilledFees {
                            merchant_id,
                            currency: crate::rows::currency(&code)?,
                            charge_count: u64::try_from(charges).unwrap_or(0),
                            fees_minor,
                        })
                    })
                    .collect()
            }

            async fn create_fee_bills(
                &self,
                bills: &[settlement::NewFeeBill],
                now: ledger::TimestampMicros,
            ) -> Result<Vec<settlement::CreatedFeeBill>, settlement::SettlementStoreError> {
                use crate::clearing::db;
                use crate::fee_bills::*;
                let mut transaction = self.$writer.begin().await.map_err(db)?;
                let mut created = Vec::with_capacity(bills.len());
                for bill in bills {
                    let month = bill.month.to_string();
                    let up_to = bill.up_to_business_date.to_string();
                    let inserted: Option<(i64,)> = sqlx::query_as(INSERT_BILL)
                        .bind(&bill.merchant_id)
                        .bind(bill.currency.code())
                        .bind(&month)
                        .bind(i64::try_from(bill.charge_count).unwrap_or(i64::MAX))
                        .bind(bill.fees_minor)
                        .bind(&up_to)
                        .bind(now)
                        .fetch_optional(&mut *transaction)
                        .await
                        .map_err(db)?;
                    if let Some((id,)) = inserted {
                        let marked = sqlx::query(&format!(
                            "UPDATE payment_fees SET bill_id = $3 WHERE {UNBILLED} \
                             AND merchant_id = $4 AND currency = $5"
                        ))
                        .bind(&up_to)
                        .bind(bill.up_to_fee_id)
                        .bind(id)
                        .bind(&bill.merchant_id)
                        .bind(bill.currency.code())
                        .execute(&mut *transaction)
                        .await
                        .map_err(db)?
                        .rows_affected();
                        let (fees_minor,): (Option<i64>,) = sqlx::query_as(
                            "SELECT CAST(SUM(fee_minor) AS BIGINT) FROM payment_fees \
                             WHERE bill_id = $1",
                        )
                        .bind(id)
                        .fetch_one(&mut *transaction)
                        .await
                        .map_err(db)?;
                        if marked != bill.charge_count || fees_minor.unwrap_or(0) != bill.fees_minor
                        {
                            // Dropping the transaction rolls it back.
                            return Err(settlement::SettlementStoreError::FeesChanged {
                                merchant_id: bill.merchant_id.clone(),
                                month,
                                expected: bill.charge_count,
                                marked,
                            });
                        }
                    }
                    let row = sqlx::query(&format!(
                        "SELECT {BILL_COLUMNS} FROM fee_bills \
                         WHERE merchant_id = $1 AND currency = $2 AND month = $3"
                    ))
                    .bind(&bill.merchant_id)
                    .bind(bill.currency.code())
                    .bind(&month)
                    .fetch_one(&mut *transaction)
                    .await
                    .map_err(db)?;
                    created.push(settlement::CreatedFeeBill {
                        bill: bill_from_row(&row)?,
                        created: inserted.is_some(),
                    });
                }
                transaction.commit().await.map_err(db)?;
                self.durable().await?;
                Ok(created)
            }

            async fn fee_bills(
                &self,
                month: settlement::FeeMonth,
            ) -> Result<Vec<settlement::FeeBill>, settlement::SettlementStoreError> {
                use crate::fee_bills::*;
                let rows = sqlx::query(&format!(
                    "SELECT {BILL_COLUMNS} FROM fee_bills WHERE month = $1 \
                     ORDER BY merchant_id, currency"
                ))
                .bind(month.to_string())
                .fetch_all(&self.$reader)
                .await
                .map_err(crate::clearing::db)?;
                rows.iter().map(bill_from_row).collect()
            }

            async fn fee_bills_in(
                &self,
                status: settlement::FeeBillStatus,
                limit: usize,
            ) -> Result<Vec<settlement::FeeBill>, settlement::SettlementStoreError> {
                use crate::fee_bills::*;
                let rows = sqlx::query(&format!(
                    "SELECT {BILL_COLUMNS} FROM fee_bills WHERE status = $1 ORDER BY id LIMIT $2"
                ))
                .bind(status.as_str())
                .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                .fetch_all(&self.$reader)
                .await
                .map_err(crate::clearing::db)?;
                rows.iter().map(bill_from_row).collect()
            }

            async fn fee_bill_lines(
                &self,
                bill_id: i64,
            ) -> Result<Vec<settlement::FeeBillLine>, settlement::SettlementStoreError> {
                use crate::fee_bills::*;
                let rows: Vec<LineRow> = sqlx::query_as(
                    "SELECT business_date, rule_id, COUNT(*), CAST(SUM(amount_minor) AS BIGINT), \
                     CAST(SUM(fee_minor) AS BIGINT) FROM payment_fees WHERE bill_id = $1 \
                     GROUP BY business_date, rule_id ORDER BY business_date, rule_id",
                )
                .bind(bill_id)
                .fetch_all(&self.$reader)
                .await
                .map_err(crate::clearing::db)?;
                rows.into_iter().map(line_from_row).collect()
            }

            async fn mark_fee_bill_paid(
                &self,
                bill_id: i64,
                transfer_id: Option<i64>,
                now: ledger::TimestampMicros,
            ) -> Result<(), settlement::SettlementStoreError> {
                let done = sqlx::query(
                    "UPDATE fee_bills SET status = 'PAID', transfer_id = $2, updated_at = $3 \
                     WHERE id = $1 AND status = 'ISSUED'",
                )
                .bind(bill_id)
                .bind(transfer_id)
                .bind(now)
                .execute(&self.$writer)
                .await
                .map_err(crate::clearing::db)?;
                if done.rows_affected() != 1 {
                    return Err(settlement::SettlementStoreError::FeeBillConcurrentChange {
                        id: bill_id,
                        expected: "ISSUED",
                    });
                }
                self.durable().await?;
                Ok(())
            }
        }
    };
}

fee_bill_store!(crate::SqliteStore, writer, readers);
fee_bill_store!(crate::PostgresStore, pool, pool);
