//! Merchants and request nonces on both stores, one SQL text for both.

use crate::orders::db;
use engine::{Merchant, Secret};

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
                sqlx::query("DELETE FROM request_nonces WHERE seen_at < $1")
                    .bind(forget_before)
                    .execute(&self.$writer)
                    .await
                    .map_err(db)?;
                let inserted = sqlx::query(
                    "INSERT INTO request_nonces (merchant_id, nonce, seen_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (merchant_id, nonce) DO NOTHING",
                )
                .bind(merchant_id)
                .bind(nonce)
                .bind(now)
                .execute(&self.$writer)
                .await
                .map_err(db)?;
                self.durable().await?;
                Ok(inserted.rows_affected() == 1)
            }
        }
    };
}

merchant_store!(crate::SqliteStore, writer, readers);
merchant_store!(crate::PostgresStore, pool, pool);
