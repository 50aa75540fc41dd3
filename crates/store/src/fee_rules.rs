//! The fee rule table on both stores, one SQL text for both.
//!
//! A commit is one transaction: the new version row is inserted only if the
//! table's highest version is the one before it (`INSERT … SELECT … WHERE`
//! with `ON CONFLICT DO NOTHING`), so of two changes made from the same
//! version one commits and the other inserts nothing and rolls back. On
//! PostgreSQL the second waits on the first's primary-key entry and then
//! finds the conflict; SQLite has one writer. Then each rule is upserted or
//! deleted and its audit row added.

use fees::{FeeRuleCommit, FeeRuleHistoryEntry, HISTORY_PAGE_MAX, RULES_MAX};
use ledger::StoreError;

/// The version and every rule in one statement, so that both come from one
/// snapshot; the join keeps the version row when there is no rule.
pub(crate) const TABLE_SQL: &str = "SELECT v.version, r.rule_id, r.definition \
     FROM (SELECT COALESCE(MAX(version), 0) AS version FROM fee_rule_versions) v \
     LEFT JOIN fee_rules r ON 1 = 1 ORDER BY r.rule_id LIMIT $1";

pub(crate) const VERSION_SQL: &str = "SELECT COALESCE(MAX(version), 0) FROM fee_rule_versions";

pub(crate) const INSERT_VERSION_SQL: &str = "INSERT INTO fee_rule_versions (version, operator, reason, changed_at) \
     SELECT $1, $2, $3, $4 \
     WHERE (SELECT COALESCE(MAX(version), 0) FROM fee_rule_versions) = $1 - 1 \
     ON CONFLICT (version) DO NOTHING";

pub(crate) const UPSERT_RULE_SQL: &str = "INSERT INTO fee_rules (rule_id, definition, version) \
     VALUES ($1, $2, $3) ON CONFLICT (rule_id) DO UPDATE SET \
     definition = excluded.definition, version = excluded.version";

pub(crate) const DELETE_RULE_SQL: &str = "DELETE FROM fee_rules WHERE rule_id = $1";

pub(crate) const INSERT_CHANGE_SQL: &str = "INSERT INTO fee_rule_changes \
     (version, rule_id, before_definition, after_definition) VALUES ($1, $2, $3, $4)";

/// Newest first; `$2 = ''` lists every rule's changes.
pub(crate) const HISTORY_SQL: &str = "SELECT c.id, c.version, v.operator, v.reason, \
     v.changed_at, c.rule_id, c.before_definition, c.after_definition \
     FROM fee_rule_changes c JOIN fee_rule_versions v ON v.version = c.version \
     WHERE c.id < $1 AND ($2 = '' OR c.rule_id = $2) ORDER BY c.id DESC LIMIT $3";

/// version, rule id, definition (both absent when the table is empty).
pub(crate) type TableRow = (i64, Option<String>, Option<String>);
/// change id, version, operator, reason, changed at, rule id, before, after.
pub(crate) type HistoryRow = (
    i64,
    i64,
    String,
    String,
    i64,
    String,
    Option<String>,
    Option<String>,
);

/// Rows the table read asks for: one more than a table may hold, so that a
/// table too large is seen (and refused when it is checked).
pub(crate) fn table_rows_max() -> i64 {
    i64::try_from(RULES_MAX).map_or(i64::MAX, |max| max.saturating_add(1))
}

pub(crate) fn stored_rules(rows: Vec<TableRow>) -> fees::StoredFeeRules {
    let version = rows.first().map_or(0, |(version, _, _)| *version);
    let rules = rows
        .into_iter()
        .filter_map(|(_, rule_id, definition)| {
            Some(fees::StoredFeeRule {
                rule_id: rule_id?,
                definition: definition?,
            })
        })
        .collect();
    fees::StoredFeeRules { version, rules }
}

/// Refuses what the tables' checks would: a commit with no change, or with
/// more changes than two full tables (every rule removed, as many added).
pub(crate) fn check_commit(commit: &FeeRuleCommit) -> Result<(), StoreError> {
    if commit.changes.is_empty() || commit.changes.len() > RULES_MAX.saturating_mul(2) {
        return Err(StoreError::Corrupt(format!(
            "a fee rule commit changes 1 to {} rules, got {}",
            RULES_MAX.saturating_mul(2),
            commit.changes.len()
        )));
    }
    Ok(())
}

pub(crate) fn history_limit(limit: u32) -> i64 {
    i64::from(limit.clamp(1, HISTORY_PAGE_MAX))
}

pub(crate) fn history_entry(row: HistoryRow) -> FeeRuleHistoryEntry {
    let (change_id, version, operator, reason, changed_at, rule_id, before, after) = row;
    FeeRuleHistoryEntry {
        change_id,
        version,
        operator,
        reason,
        changed_at,
        rule_id,
        before,
        after,
    }
}

macro_rules! fee_rule_store {
    ($store:ty, $writer:ident, $reader:ident) => {
        impl fees::FeeRuleStore for $store {
            async fn fee_rule_version(&self) -> Result<i64, ledger::StoreError> {
                let (version,): (i64,) = sqlx::query_as(crate::fee_rules::VERSION_SQL)
                    .fetch_one(&self.$reader)
                    .await
                    .map_err(crate::rows::database_error)?;
                Ok(version)
            }

            async fn fee_rules(&self) -> Result<fees::StoredFeeRules, ledger::StoreError> {
                let rows: Vec<crate::fee_rules::TableRow> =
                    sqlx::query_as(crate::fee_rules::TABLE_SQL)
                        .bind(crate::fee_rules::table_rows_max())
                        .fetch_all(&self.$reader)
                        .await
                        .map_err(crate::rows::database_error)?;
                Ok(crate::fee_rules::stored_rules(rows))
            }

            async fn commit_fee_rules(
                &self,
                commit: &fees::FeeRuleCommit,
            ) -> Result<bool, ledger::StoreError> {
                use crate::fee_rules::*;
                use crate::rows::database_error;
                check_commit(commit)?;
                let mut transaction = self.$writer.begin().await.map_err(database_error)?;
                let inserted = sqlx::query(INSERT_VERSION_SQL)
                    .bind(commit.version)
                    .bind(&commit.operator)
                    .bind(&commit.reason)
                    .bind(commit.changed_at)
                    .execute(&mut *transaction)
                    .await
                    .map_err(database_error)?;
                if inserted.rows_affected() == 0 {
                    transaction.rollback().await.map_err(database_error)?;
                    return Ok(false);
                }
                for change in &commit.changes {
                    let written = match &change.after {
                        Some(definition) => sqlx::query(UPSERT_RULE_SQL)
                            .bind(&change.rule_id)
                            .bind(definition)
                            .bind(commit.version),
                        None => sqlx::query(DELETE_RULE_SQL).bind(&change.rule_id),
                    };
                    written
                        .execute(&mut *transaction)
                        .await
                        .map_err(database_error)?;
                    sqlx::query(INSERT_CHANGE_SQL)
                        .bind(commit.version)
                        .bind(&change.rule_id)
                        .bind(&change.before)
                        .bind(&change.after)
                        .execute(&mut *transaction)
                        .await
                        .map_err(database_error)?;
                }
                transaction.commit().await.map_err(database_error)?;
                self.durable().await?;
                Ok(true)
            }

            async fn fee_rule_history(
                &self,
                query: &fees::FeeRuleHistoryQuery,
            ) -> Result<Vec<fees::FeeRuleHistoryEntry>, ledger::StoreError> {
                use crate::fee_rules::*;
                let rows: Vec<HistoryRow> = sqlx::query_as(HISTORY_SQL)
                    .bind(query.before_change_id.unwrap_or(i64::MAX))
                    .bind(query.rule_id.as_deref().unwrap_or(""))
                    .bind(history_limit(query.limit))
                    .fetch_all(&self.$reader)
                    .await
                    .map_err(crate::rows::database_error)?;
                Ok(rows.into_iter().map(history_entry).collect())
            }
        }
    };
}

fee_rule_store!(crate::SqliteStore, writer, readers);
fee_rule_store!(crate::PostgresStore, pool, pool);
