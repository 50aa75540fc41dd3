//! Fee period counters on both stores, one SQL text for both.
//!
//! A charge is recorded in one batch (see batch.rs): its row is inserted
//! first (`ON CONFLICT (charge_key) DO NOTHING`, and the batch stops when
//! that inserts nothing), then it adds to the counter, by an upsert that
//! returns the new totals. A concurrent repeat
//! of the key waits on the first one's unique index entry (PostgreSQL) or
//! on the single writer (SQLite), then finds its row and answers the values
//! stored with it. The counter row's upsert locks it until commit, so
//! concurrent charges of one counter are counted one after another.

use fees::{FeeCharge, FeeCounterError, PeriodUsage, Recorded};
use ledger::StoreError;

/// rule id, merchant id, period key, amount, count before, volume before.
pub(crate) type ChargeRow = (String, String, String, i64, i64, i64);

pub(crate) fn db(error: sqlx::Error) -> FeeCounterError {
    FeeCounterError::Store(crate::rows::database_error(error))
}

/// The answer to a repeated charge key: the first recording's values, if
/// the repeat names the same counter and amount.
pub(crate) fn repeated(charge: &FeeCharge, row: ChargeRow) -> Result<Recorded, FeeCounterError> {
    let (rule_id, merchant_id, period_key, amount_minor, count, volume_minor) = row;
    let conflict = |field: &'static str| {
        Err(FeeCounterError::ChargeKeyConflict {
            charge_key: charge.charge_key.clone(),
            field,
        })
    };
    if rule_id != charge.counter.rule_id {
        return conflict("rule");
    }
    if merchant_id != charge.counter.merchant_id {
        return conflict("merchant");
    }
    if period_key != charge.counter.period_key.to_string() {
        return conflict("period");
    }
    if amount_minor != charge.amount_minor {
        return conflict("amount");
    }
    Ok(Recorded {
        before: PeriodUsage {
            count,
            volume_minor,
        },
        first_time: false,
    })
}

/// The counter before a charge, from the totals that include it.
pub(crate) fn before(
    charge: &FeeCharge,
    after_count: i64,
    after_volume_minor: i64,
) -> Result<PeriodUsage, FeeCounterError> {
    let count = after_count - 1;
    let volume_minor = after_volume_minor
        .checked_sub(charge.amount_minor)
        .ok_or_else(|| StoreError::Corrupt("fee counter volume".to_owned()))?;
    if count < 0 || volume_minor < 0 {
        return Err(StoreError::Corrupt(format!(
            "fee counter {}/{}/{} below its last charge",
            charge.counter.rule_id, charge.counter.merchant_id, charge.counter.period_key
        ))
        .into());
    }
    Ok(PeriodUsage {
        count,
        volume_minor,
    })
}

macro_rules! fee_counter_store {
    ($store:ty, $writer:ident, $reader:ident) => {
        impl fees::FeeCounterStore for $store {
            async fn fee_counter(
                &self,
                key: &fees::CounterKey,
            ) -> Result<fees::PeriodUsage, fees::FeeCounterError> {
                use crate::fees::db;
                let row: Option<(i64, i64)> = sqlx::query_as(
                    "SELECT transaction_count, volume_minor FROM fee_counters \
                     WHERE rule_id = $1 AND merchant_id = $2 AND period_key = $3",
                )
                .bind(&key.rule_id)
                .bind(&key.merchant_id)
                .bind(key.period_key.to_string())
                .fetch_optional(&self.$reader)
                .await
                .map_err(db)?;
                Ok(row.map_or_else(fees::PeriodUsage::default, |(count, volume_minor)| {
                    fees::PeriodUsage {
                        count,
                        volume_minor,
                    }
                }))
            }

            async fn record_fee_charge(
                &self,
                charge: &fees::FeeCharge,
                now: ledger::TimestampMicros,
            ) -> Result<fees::Recorded, fees::FeeCounterError> {
                use crate::fees::{ChargeRow, before, db, repeated};
                charge.validate()?;
                let period_key = charge.counter.period_key.to_string();
                // One batch: the charge, the counter with it, and on the
                // charge the counter as it stood before.
                let mut batch = crate::batch::Batch::new();
                let inserted = batch.push(
                    crate::batch::Statement::new(
                        "INSERT INTO fee_charges (charge_key, rule_id, merchant_id, period_key, \
                         amount_minor, count_before, volume_before_minor, recorded_at) \
                         VALUES ($1, $2, $3, $4, $5, 0, 0, $6) ON CONFLICT (charge_key) DO NOTHING",
                    )
                    .bind(&charge.charge_key)
                    .bind(&charge.counter.rule_id)
                    .bind(&charge.counter.merchant_id)
                    .bind(period_key.as_str())
                    .bind(charge.amount_minor)
                    .bind(now),
                    crate::batch::Expect::OneChange,
                );
                let counted = batch.push(
                    crate::batch::Statement::new(
                        "INSERT INTO fee_counters (rule_id, merchant_id, period_key, \
                         transaction_count, volume_minor) VALUES ($1, $2, $3, 1, $4) \
                         ON CONFLICT (rule_id, merchant_id, period_key) DO UPDATE SET \
                         transaction_count = fee_counters.transaction_count + 1, \
                         volume_minor = fee_counters.volume_minor + excluded.volume_minor \
                         RETURNING transaction_count, volume_minor",
                    )
                    .bind(&charge.counter.rule_id)
                    .bind(&charge.counter.merchant_id)
                    .bind(period_key.as_str())
                    .bind(charge.amount_minor),
                    crate::batch::Expect::OneChange,
                );
                let stamped = batch.push(
                    crate::batch::Statement::new(
                        "UPDATE fee_charges SET count_before = c.transaction_count - 1, \
                         volume_before_minor = c.volume_minor - fee_charges.amount_minor \
                         FROM fee_counters c WHERE fee_charges.charge_key = $1 \
                         AND c.rule_id = fee_charges.rule_id AND c.merchant_id = fee_charges.merchant_id \
                         AND c.period_key = fee_charges.period_key \
                         AND c.transaction_count >= 1 AND c.volume_minor >= fee_charges.amount_minor",
                    )
                    .bind(&charge.charge_key),
                    crate::batch::Expect::OneChange,
                );
                let rows = match self.run_batch(&batch).await {
                    Ok(rows) => rows,
                    Err(crate::batch::BatchError::Expectation { statement }) if statement == inserted => {
                        // A repeated key: the first recording answers.
                        let row: ChargeRow = sqlx::query_as(
                            "SELECT rule_id, merchant_id, period_key, amount_minor, count_before, \
                             volume_before_minor FROM fee_charges WHERE charge_key = $1",
                        )
                        .bind(&charge.charge_key)
                        .fetch_one(&self.$writer)
                        .await
                        .map_err(db)?;
                        // The first recording may still be on its way to disk.
                        self.durable().await?;
                        return repeated(charge, row);
                    }
                    Err(crate::batch::BatchError::Expectation { statement }) if statement == stamped => {
                        return Err(ledger::StoreError::Corrupt(format!(
                            "fee counter {}/{}/{} below its charges",
                            charge.counter.rule_id, charge.counter.merchant_id, charge.counter.period_key
                        ))
                        .into());
                    }
                    Err(error) => return Err(ledger::StoreError::from(error).into()),
                };
                let (after_count, after_volume_minor): (i64, i64) = rows
                    .get(counted)
                    .and_then(|rows| rows.first())
                    .map(sqlx::FromRow::from_row)
                    .transpose()
                    .map_err(db)?
                    .ok_or_else(|| ledger::StoreError::Corrupt("the fee counter returned no row".to_owned()))?;
                let usage = before(charge, after_count, after_volume_minor)?;
                self.durable().await?;
                Ok(fees::Recorded {
                    before: usage,
                    first_time: true,
                })
            }

            async fn release_fee_charge(
                &self,
                charge_key: &str,
                now: ledger::TimestampMicros,
            ) -> Result<bool, fees::FeeCounterError> {
                use crate::fees::db;
                let mut transaction = self.$writer.begin().await.map_err(db)?;
                // Only the call that marks the charge released takes it out
                // of its counter, so a repeat releases nothing.
                let released: Option<(String, String, String, i64)> = sqlx::query_as(
                    "UPDATE fee_charges SET released_at = $2 \
                     WHERE charge_key = $1 AND released_at IS NULL \
                     RETURNING rule_id, merchant_id, period_key, amount_minor",
                )
                .bind(charge_key)
                .bind(now)
                .fetch_optional(&mut *transaction)
                .await
                .map_err(db)?;
                let Some((rule_id, merchant_id, period_key, amount_minor)) = released else {
                    transaction.commit().await.map_err(db)?;
                    return Ok(false);
                };
                sqlx::query(
                    "UPDATE fee_counters SET transaction_count = transaction_count - 1, \
                     volume_minor = volume_minor - $4 \
                     WHERE rule_id = $1 AND merchant_id = $2 AND period_key = $3",
                )
                .bind(&rule_id)
                .bind(&merchant_id)
                .bind(&period_key)
                .bind(amount_minor)
                .execute(&mut *transaction)
                .await
                .map_err(db)?;
                transaction.commit().await.map_err(db)?;
                self.durable().await?;
                Ok(true)
            }
        }
    };
}

fee_counter_store!(crate::SqliteStore, writer, readers);
fee_counter_store!(crate::PostgresStore, pool, pool);
