//! Agreements (协议) for debit collection on both stores, one SQL text for
//! both. The table holds masks and keyed fingerprints, never a card, ID or
//! phone number or a name (`migrations/*/0015_agreements.sql`).

use crate::orders::db;
use engine::{Agreement, AgreementMethod, AgreementStatus, OrderStoreError};
use ledger::StoreError;

pub(crate) const AGREEMENT_COLUMNS: &str = "id, merchant_id, sign_serial, member_id, method, \
     channel, bank, card_masked, card_fingerprint, id_number_fingerprint, phone_masked, \
     agreement_no, status, confirmation_token, confirm_attempts, failure_code, failure_message, \
     created_at, updated_at";

/// A value a selection of agreements binds, in order.
pub(crate) enum Bind<'q> {
    Text(&'q str),
    Int(i64),
}

pub(crate) fn corrupt(what: &str, value: &str) -> OrderStoreError {
    OrderStoreError::Store(StoreError::Corrupt(format!("unknown {what} {value:?}")))
}

/// Reads a row of [`AGREEMENT_COLUMNS`] on either store.
pub(crate) fn agreement_from_row<R>(row: &R) -> Result<Agreement, OrderStoreError>
where
    R: sqlx::Row,
    usize: sqlx::ColumnIndex<R>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let int = |index: usize| row.try_get::<i64, _>(index).map_err(db);
    let text = |index: usize| row.try_get::<String, _>(index).map_err(db);
    let optional = |index: usize| row.try_get::<Option<String>, _>(index).map_err(db);
    let method = text(4)?;
    let status = text(12)?;
    Ok(Agreement {
        id: int(0)?,
        merchant_id: text(1)?,
        sign_serial: text(2)?,
        member_id: text(3)?,
        method: AgreementMethod::parse(&method)
            .ok_or_else(|| corrupt("agreement method", &method))?,
        channel: text(5)?,
        bank: optional(6)?,
        card_masked: text(7)?,
        card_fingerprint: text(8)?,
        id_number_fingerprint: text(9)?,
        phone_masked: optional(10)?,
        agreement_no: optional(11)?,
        status: AgreementStatus::parse(&status)
            .ok_or_else(|| corrupt("agreement status", &status))?,
        confirmation_token: optional(13)?,
        confirm_attempts: int(14)?,
        failure_code: optional(15)?,
        failure_message: optional(16)?,
        created_at: int(17)?,
        updated_at: int(18)?,
    })
}

/// Implements `engine::AgreementStore` for a store type whose connections are
/// `$writer` and `$reader`.
macro_rules! agreement_store {
    ($store:ty, $writer:ident, $reader:ident) => {
        impl $store {
            /// The agreements matching `condition` (on `$1`, `$2`, ...).
            async fn select_agreements<'q>(
                &self,
                condition: &str,
                binds: &[crate::agreements::Bind<'q>],
            ) -> Result<Vec<engine::Agreement>, engine::OrderStoreError> {
                use crate::agreements::*;
                let sql = format!("SELECT {AGREEMENT_COLUMNS} FROM agreements WHERE {condition}");
                let mut query = sqlx::query(&sql);
                for value in binds {
                    query = match value {
                        Bind::Text(text) => query.bind(*text),
                        Bind::Int(int) => query.bind(*int),
                    };
                }
                let rows = query.fetch_all(&self.$reader).await.map_err(crate::orders::db)?;
                rows.iter().map(agreement_from_row).collect()
            }
        }

        impl engine::AgreementStore for $store {
            async fn create_agreement(
                &self,
                agreement: &engine::NewAgreement,
                now: ledger::TimestampMicros,
            ) -> Result<engine::Created<engine::Agreement>, engine::OrderStoreError> {
                use crate::agreements::*;
                // Two requests with one serial may race: the unique key
                // decides, and the loser finds the winner's.
                let row = sqlx::query(&format!(
                    "INSERT INTO agreements (merchant_id, sign_serial, member_id, method, channel, \
                     card_masked, card_fingerprint, id_number_fingerprint, phone_masked, status, \
                     confirm_attempts, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'CREATED', 0, $10, $10) \
                     ON CONFLICT (merchant_id, sign_serial) DO NOTHING RETURNING {AGREEMENT_COLUMNS}"
                ))
                .bind(&agreement.merchant_id)
                .bind(&agreement.sign_serial)
                .bind(&agreement.member_id)
                .bind(agreement.method.as_str())
                .bind(&agreement.channel)
                .bind(&agreement.card_masked)
                .bind(&agreement.card_fingerprint)
                .bind(&agreement.id_number_fingerprint)
                .bind(agreement.phone_masked.as_deref())
                .bind(now)
                .fetch_optional(&self.$writer)
                .await
                .map_err(crate::orders::db)?;
                if let Some(row) = row {
                    self.durable().await?;
                    return Ok(engine::Created::New(agreement_from_row(&row)?));
                }
                let found = engine::AgreementStore::agreement_by_sign_serial(
                    self,
                    &agreement.merchant_id,
                    &agreement.sign_serial,
                )
                .await?
                .ok_or(engine::OrderError::NotFound { entity: "agreement", id: 0 })?;
                Ok(engine::Created::Existing(found))
            }

            async fn agreement(
                &self,
                merchant_id: &str,
                agreement_id: engine::AgreementId,
            ) -> Result<Option<engine::Agreement>, engine::OrderStoreError> {
                use crate::agreements::Bind::{Int, Text};
                let found = self
                    .select_agreements("id = $1 AND merchant_id = $2", &[Int(agreement_id), Text(merchant_id)])
                    .await?;
                Ok(found.into_iter().next())
            }

            async fn agreement_by_sign_serial(
                &self,
                merchant_id: &str,
                sign_serial: &str,
            ) -> Result<Option<engine::Agreement>, engine::OrderStoreError> {
                use crate::agreements::Bind::Text;
                let found = self
                    .select_agreements(
                        "merchant_id = $1 AND sign_serial = $2",
                        &[Text(merchant_id), Text(sign_serial)],
                    )
                    .await?;
                Ok(found.into_iter().next())
            }

            async fn agreement_by_no(
                &self,
                merchant_id: &str,
                agreement_no: &str,
            ) -> Result<Option<engine::Agreement>, engine::OrderStoreError> {
                use crate::agreements::Bind::Text;
                let found = self
                    .select_agreements(
                        "agreement_no = $1 AND merchant_id = $2",
                        &[Text(agreement_no), Text(merchant_id)],
                    )
                    .await?;
                Ok(found.into_iter().next())
            }

            async fn active_agreements_of_card(
                &self,
                merchant_id: &str,
                member_id: &str,
                card_fingerprint: &str,
            ) -> Result<Vec<engine::Agreement>, engine::OrderStoreError> {
                use crate::agreements::Bind::{Int, Text};
                let limit = i64::try_from(engine::AGREEMENTS_PAGE_MAX).unwrap_or(i64::MAX);
                self.select_agreements(
                    "merchant_id = $1 AND member_id = $2 AND card_fingerprint = $3 \
                     AND status = 'ACTIVE' ORDER BY id LIMIT $4",
                    &[Text(merchant_id), Text(member_id), Text(card_fingerprint), Int(limit)],
                )
                .await
            }

            async fn agreements(
                &self,
                merchant_id: &str,
                after_id: engine::AgreementId,
                limit: usize,
            ) -> Result<Vec<engine::Agreement>, engine::OrderStoreError> {
                use crate::agreements::Bind::{Int, Text};
                let limit = i64::try_from(limit.min(engine::AGREEMENTS_PAGE_MAX)).unwrap_or(0);
                self.select_agreements(
                    "merchant_id = $1 AND id > $2 ORDER BY id LIMIT $3",
                    &[Text(merchant_id), Int(after_id), Int(limit)],
                )
                .await
            }

            async fn change_agreement(
                &self,
                agreement_id: engine::AgreementId,
                from: engine::AgreementStatus,
                change: &engine::AgreementChange,
                now: ledger::TimestampMicros,
            ) -> Result<engine::Agreement, engine::OrderStoreError> {
                use crate::agreements::*;
                let row = sqlx::query(&format!(
                    "UPDATE agreements SET status = $1, agreement_no = COALESCE($2, agreement_no), \
                     bank = COALESCE($3, bank), confirmation_token = COALESCE($4, confirmation_token), \
                     failure_code = COALESCE($5, failure_code), \
                     failure_message = COALESCE($6, failure_message), updated_at = $7 \
                     WHERE id = $8 AND status = $9 RETURNING {AGREEMENT_COLUMNS}"
                ))
                .bind(change.to.as_str())
                .bind(change.agreement_no.as_deref())
                .bind(change.bank.as_deref())
                .bind(change.confirmation_token.as_deref())
                .bind(change.failure_code.as_deref())
                .bind(change.failure_message.as_deref())
                .bind(now)
                .bind(agreement_id)
                .bind(from.as_str())
                .fetch_optional(&self.$writer)
                .await
                .map_err(crate::orders::db)?;
                match row {
                    Some(row) => {
                        self.durable().await?;
                        agreement_from_row(&row)
                    }
                    None => Err(engine::OrderError::ConcurrentChange {
                        entity: "agreement",
                        id: agreement_id,
                        expected: from.as_str(),
                    }
                    .into()),
                }
            }

            async fn count_confirm_attempt(
                &self,
                agreement_id: engine::AgreementId,
                attempts_max: i64,
                now: ledger::TimestampMicros,
            ) -> Result<Option<i64>, engine::OrderStoreError> {
                let counted: Option<(i64,)> = sqlx::query_as(
                    "UPDATE agreements SET confirm_attempts = confirm_attempts + 1, updated_at = $1 \
                     WHERE id = $2 AND status = 'PENDING_CONFIRMATION' AND confirm_attempts < $3 \
                     RETURNING confirm_attempts",
                )
                .bind(now)
                .bind(agreement_id)
                .bind(attempts_max)
                .fetch_optional(&self.$writer)
                .await
                .map_err(crate::orders::db)?;
                if counted.is_some() {
                    self.durable().await?;
                }
                Ok(counted.map(|(attempts,)| attempts))
            }
        }
    };
}

agreement_store!(crate::SqliteStore, writer, readers);
agreement_store!(crate::PostgresStore, pool, pool);
