//! Merchants and request nonces on both stores, one SQL text for both.

use crate::orders::db;
use engine::{Merchant, Secret};
use ledger::TimestampMicros;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// How often nonces past their window are deleted. A nonce past its window
/// is accepted again whether or not it was deleted yet; the purge only
/// keeps the table small.
const NONCE_PURGE_INTERVAL_MICROS: i64 = 60_000_000;

/// When a store last purged old nonces, shared by its clones.
#[derive(Debug, Clone, Default)]
pub(crate) struct NoncePurge {
    last: Arc<AtomicI64>,
}

impl NoncePurge {
    /// Whether this caller should purge at `now`: at most one caller per
    /// interval is told so.
    pub(crate) fn due(&self, now: TimestampMicros) -> bool {
        let last = self.last.load(Ordering::Relaxed);
        now.saturating_sub(last) >= NONCE_PURGE_INTERVAL_MICROS
            && self
                .last
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }
}

pub(crate) type MerchantRow = (String, String, String, Option<String>, i64);
pub(crate) const MERCHANT_COLUMNS: &str = "id, name, signing_key, notify_url, created_at";

pub(crate) fn merchant_from_row(row: MerchantRow) -> Merchant {
    let (id, name, signing_key, notify_url, created_at) = row;
    Merchant {
        id,
        name,
        signing_key: Secret::new(signing_key),
        notify_url,
        created_at,
    }
}

macro_rules! merchant_store {
    ($store:ty, $writer:ident, $reader:ident) => {
        impl engine::MerchantStore for $store {
            async fn create_merchant(
                &self,
                merchant: &engine::NewMerchant,
                signing_key: &engine::Secret<String>,
                now: ledger::TimestampMicros,
            ) -> Result<engine::Merchant, engine::OrderStoreError> {
                use crate::merchants::*;
                merchant.validate()?;
                let row: Option<MerchantRow> = sqlx::query_as(&format!(
                    "INSERT INTO merchants (id, name, signing_key, notify_url, created_at) \
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING RETURNING {MERCHANT_COLUMNS}"
                ))
                .bind(&merchant.id)
                .bind(&merchant.name)
                .bind(signing_key.expose())
                .bind(merchant.notify_url.as_deref())
                .bind(now)
                .fetch_optional(&self.$writer)
                .await
                .map_err(db)?;
                self.durable().await?;
                row.map(merchant_from_row).ok_or_else(|| {
                    engine::OrderError::ReferenceConflict {
                        reference: "merchant",
                        field: "id",
                    }
                    .into()
                })
            }

            async fn merchant(
                &self,
                merchant_id: &str,
            ) -> Result<Option<engine::Merchant>, engine::OrderStoreError> {
                use crate::merchants::*;
                let row: Option<MerchantRow> = sqlx::query_as(&format!(
                    "SELECT {MERCHANT_COLUMNS} FROM merchants WHERE id = $1"
                ))
                .bind(merchant_id)
                .fetch_optional(&self.$reader)
                .await
                .map_err(db)?;
                Ok(row.map(merchant_from_row))
            }

            async fn remember_nonce(
                &self,
                merchant_id: &str,
                nonce: &str,
                now: ledger::TimestampMicros,
                forget_before: ledger::TimestampMicros,
            ) -> Result<bool, engine::OrderStoreError> {
                use crate::merchants::*;
                if self.nonce_purge.due(now) {
                    sqlx::query("DELETE FROM request_nonces WHERE seen_at < $1")
                        .bind(forget_before)
                        .execute(&self.$writer)
                        .await
                        .map_err(db)?;
                }
                // New, or seen only before the window: remembered now and
                // accepted. Seen within the window: refused.
                let remembered: Option<(i64,)> = self
                    .write_returning(
                        crate::batch::Statement::new(
                            "INSERT INTO request_nonces (merchant_id, nonce, seen_at) VALUES ($1, $2, $3) \
                             ON CONFLICT (merchant_id, nonce) DO UPDATE SET seen_at = excluded.seen_at \
                             WHERE request_nonces.seen_at < $4 RETURNING seen_at",
                        )
                        .bind(merchant_id)
                        .bind(nonce)
                        .bind(now)
                        .bind(forget_before),
                    )
                    .await
                    .map_err(crate::orders::batch_failed)?;
                self.durable().await?;
                Ok(remembered.is_some())
            }
        }
    };
}

merchant_store!(crate::SqliteStore, writer, readers);
merchant_store!(crate::PostgresStore, pool, pool);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_nonces_are_purged_once_an_interval() {
        let purge = NoncePurge::default();
        let start = 1_800_000_000_000_000;
        assert!(purge.due(start));
        assert!(!purge.due(start));
        assert!(!purge.due(start + NONCE_PURGE_INTERVAL_MICROS - 1));
        assert!(purge.due(start + NONCE_PURGE_INTERVAL_MICROS));
        assert!(!purge.due(start + NONCE_PURGE_INTERVAL_MICROS + 1));
    }
}
