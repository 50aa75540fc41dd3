//! Period counters of the cumulative methods and the storage trait that
//! keeps them. The store is infrastructure (`store` implements the trait
//! for SQLite and PostgreSQL); this crate only says what it must do.

use crate::date::PeriodKey;
use ledger::{StoreError, TimestampMicros};
use std::future::Future;

/// Longest charge key, in bytes.
pub const CHARGE_KEY_LENGTH_MAX: usize = 128;

/// A period's transactions so far under one rule and merchant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct PeriodUsage {
    /// Transactions counted.
    pub count: i64,
    /// Their amounts, summed, in minor units of the rule's currency.
    pub volume_minor: i64,
}

/// Which counter: one per rule, merchant and period. A cumulative rule that
/// matches any merchant still counts each merchant on its own.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CounterKey {
    pub rule_id: String,
    pub merchant_id: String,
    pub period_key: PeriodKey,
}

/// One transaction to add to a counter, exactly once per `charge_key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeeCharge {
    /// Unique per charged transaction and side (e.g. `payment-42-payee`);
    /// a retry with the same key adds nothing.
    pub charge_key: String,
    pub counter: CounterKey,
    pub amount_minor: i64,
}

/// What [`FeeCounterStore::record`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recorded {
    /// The counter just before this charge was added: what the charge is
    /// priced on. A retry gets the values of the first recording.
    pub before: PeriodUsage,
    /// False when the key had been recorded already (nothing was added).
    pub first_time: bool,
}

/// Why a counter could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum FeeCounterError {
    /// The charge key was recorded before with other fields.
    #[error("charge key {charge_key:?} was recorded with another {field}")]
    ChargeKeyConflict {
        charge_key: String,
        field: &'static str,
    },
    #[error("invalid charge: {0}")]
    InvalidCharge(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl FeeCounterError {
    /// The stable code of the error.
    pub fn code(&self) -> &'static str {
        match self {
            FeeCounterError::ChargeKeyConflict { .. } => "FEE_CHARGE_KEY_CONFLICT",
            FeeCounterError::InvalidCharge(_) => "FEE_INVALID_CHARGE",
            FeeCounterError::Store(_) => "STORE_ERROR",
        }
    }
}

impl FeeCharge {
    /// Checks what a store relies on: bounded, non-empty keys and a
    /// positive amount.
    pub fn validate(&self) -> Result<(), FeeCounterError> {
        let key = &self.charge_key;
        if key.is_empty() || key.len() > CHARGE_KEY_LENGTH_MAX {
            return Err(FeeCounterError::InvalidCharge(format!(
                "the charge key must be 1 to {CHARGE_KEY_LENGTH_MAX} bytes"
            )));
        }
        if self.counter.rule_id.is_empty() || self.counter.merchant_id.is_empty() {
            return Err(FeeCounterError::InvalidCharge(
                "the rule and merchant must be named".to_owned(),
            ));
        }
        if self.amount_minor <= 0 {
            return Err(FeeCounterError::InvalidCharge(format!(
                "the amount must be positive, got {}",
                self.amount_minor
            )));
        }
        Ok(())
    }
}

/// Where period counters live. Implementations must make `record` atomic
/// and idempotent: under any concurrency, each charge key adds one
/// transaction and its amount exactly once, and every caller of a key gets
/// the counter values from just before that one addition.
pub trait FeeCounterStore: Send + Sync {
    /// The counter's values; zero for a counter never written.
    fn fee_counter(
        &self,
        key: &CounterKey,
    ) -> impl Future<Output = Result<PeriodUsage, FeeCounterError>> + Send;

    /// Adds `charge` to its counter unless its key was recorded already,
    /// and answers the counter's values just before it. A repeat of a key
    /// with other fields is `FEE_CHARGE_KEY_CONFLICT`.
    fn record_fee_charge(
        &self,
        charge: &FeeCharge,
        now: TimestampMicros,
    ) -> impl Future<Output = Result<Recorded, FeeCounterError>> + Send;

    /// Takes a recorded charge back out of its counter, once: the
    /// transaction it counted did not happen (a payment priced when it was
    /// accepted, then failed). Later charges are priced without it; those
    /// priced meanwhile keep their price. True when this call released it;
    /// false when it was released before or never recorded. The key stays
    /// used: recording it again adds nothing.
    fn release_fee_charge(
        &self,
        charge_key: &str,
        now: TimestampMicros,
    ) -> impl Future<Output = Result<bool, FeeCounterError>> + Send;
}
