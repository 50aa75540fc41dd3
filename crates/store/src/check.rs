//! The invariant check over a whole store (账账核对 / 总分核对): the same
//! SQL on both backends, re-deriving every total from the journal.

use crate::rows::database_error;
use ledger::{CheckReport, StoreError};
use sqlx::{Database, Executor, FromRow, IntoArguments};
use std::collections::BTreeMap;

/// Most examples of one kind of violation listed in a report.
const VIOLATION_EXAMPLES_MAX: usize = 100;

const COUNTS: &str = "SELECT (SELECT COUNT(*) FROM accounts), (SELECT COUNT(*) FROM transfers), \
     (SELECT COUNT(*) FROM entries), (SELECT COUNT(*) FROM subject_balances)";

const CURRENCY_TOTALS: &str = "SELECT currency, \
     CAST(COALESCE(SUM(CASE WHEN is_credit THEN 0 ELSE amount_minor END), 0) AS BIGINT), \
     CAST(COALESCE(SUM(CASE WHEN is_credit THEN amount_minor ELSE 0 END), 0) AS BIGINT) \
     FROM entries WHERE NOT pending GROUP BY currency ORDER BY currency";

const UNBALANCED_TRANSFERS: &str = "SELECT transfer_id, currency, pending, \
     CAST(SUM(CASE WHEN is_credit THEN -amount_minor ELSE amount_minor END) AS BIGINT) \
     FROM entries GROUP BY transfer_id, currency, pending \
     HAVING SUM(CASE WHEN is_credit THEN -amount_minor ELSE amount_minor END) <> 0 \
     ORDER BY transfer_id LIMIT 100";

const ACCOUNT_MISMATCHES: &str = "SELECT a.id, \
     a.debits_posted_minor, a.credits_posted_minor, a.debits_pending_minor, a.credits_pending_minor, a.frozen_minor, \
     COALESCE(p.debits, 0), COALESCE(p.credits, 0), COALESCE(r.debits, 0), COALESCE(r.credits, 0), COALESCE(f.frozen, 0) \
     FROM accounts a \
     LEFT JOIN (SELECT account_id, \
         CAST(SUM(CASE WHEN is_credit THEN 0 ELSE amount_minor END) AS BIGINT) AS debits, \
         CAST(SUM(CASE WHEN is_credit THEN amount_minor ELSE 0 END) AS BIGINT) AS credits \
         FROM entries WHERE NOT pending GROUP BY account_id) p ON p.account_id = a.id \
     LEFT JOIN (SELECT e.account_id, \
         CAST(SUM(CASE WHEN e.is_credit THEN 0 ELSE e.amount_minor END) AS BIGINT) AS debits, \
         CAST(SUM(CASE WHEN e.is_credit THEN e.amount_minor ELSE 0 END) AS BIGINT) AS credits \
         FROM entries e JOIN transfers t ON t.id = e.transfer_id \
         WHERE e.pending AND t.status = 'pending' GROUP BY e.account_id) r ON r.account_id = a.id \
     LEFT JOIN (SELECT account_id, \
         CAST(SUM(CASE WHEN kind = 'freeze' THEN amount_minor ELSE -amount_minor END) AS BIGINT) AS frozen \
         FROM transfers WHERE kind IN ('freeze', 'unfreeze') GROUP BY account_id) f ON f.account_id = a.id \
     WHERE a.debits_posted_minor <> COALESCE(p.debits, 0) OR a.credits_posted_minor <> COALESCE(p.credits, 0) \
        OR a.debits_pending_minor <> COALESCE(r.debits, 0) OR a.credits_pending_minor <> COALESCE(r.credits, 0) \
        OR a.frozen_minor <> COALESCE(f.frozen, 0) \
     ORDER BY a.id LIMIT 100";

const SUBJECT_TOTALS_FROM_ACCOUNTS: &str = "SELECT subject_code, currency, \
     CAST(SUM(debits_posted_minor) AS BIGINT), CAST(SUM(credits_posted_minor) AS BIGINT) \
     FROM accounts GROUP BY subject_code, currency";

const SUBJECT_TOTALS: &str = "SELECT subject_code, currency, debits_posted_minor, credits_posted_minor FROM subject_balances";

const TRANSFERS_WITHOUT_ENTRIES: &str = "SELECT t.id FROM transfers t \
     WHERE t.kind IN ('transfer', 'pending', 'post_pending', 'reversal') \
     AND NOT EXISTS (SELECT 1 FROM entries e WHERE e.transfer_id = t.id) ORDER BY t.id LIMIT 100";

const ENTRIES_WITHOUT_TRANSFER: &str = "SELECT DISTINCT e.transfer_id FROM entries e \
     LEFT JOIN transfers t ON t.id = e.transfer_id WHERE t.id IS NULL ORDER BY e.transfer_id LIMIT 100";

type AccountMismatch = (i64, i64, i64, i64, i64, i64, i64, i64, i64, i64, i64);
type SubjectTotal = (String, String, i64, i64);

async fn fetch<DB, T>(
    connection: &mut DB::Connection,
    sql: &'static str,
) -> Result<Vec<T>, StoreError>
where
    DB: Database,
    T: for<'r> FromRow<'r, DB::Row> + Send + Unpin,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
{
    sqlx::query_as::<DB, T>(sql)
        .fetch_all(connection)
        .await
        .map_err(database_error)
}

/// Runs every check on `connection`.
pub(crate) async fn run<DB>(connection: &mut DB::Connection) -> Result<CheckReport, StoreError>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    (i64, i64, i64, i64): for<'r> FromRow<'r, DB::Row>,
    (String, i64, i64): for<'r> FromRow<'r, DB::Row>,
    (i64, String, bool, i64): for<'r> FromRow<'r, DB::Row>,
    AccountMismatch: for<'r> FromRow<'r, DB::Row>,
    SubjectTotal: for<'r> FromRow<'r, DB::Row>,
    (i64,): for<'r> FromRow<'r, DB::Row>,
{
    let counts: Vec<(i64, i64, i64, i64)> = fetch(&mut *connection, COUNTS).await?;
    let (accounts, transfers, entries, subjects) = counts.first().copied().unwrap_or_default();
    let mut report = CheckReport {
        accounts_checked: u64::try_from(accounts).unwrap_or_default(),
        transfers_checked: u64::try_from(transfers).unwrap_or_default(),
        entries_checked: u64::try_from(entries).unwrap_or_default(),
        subjects_checked: u64::try_from(subjects).unwrap_or_default(),
        violations: Vec::new(),
    };
    let violations = &mut report.violations;
    let totals: Vec<(String, i64, i64)> = fetch(&mut *connection, CURRENCY_TOTALS).await?;
    for (currency, debits, credits) in totals {
        if debits != credits {
            violations.push(format!(
                "{currency}: posted debits {debits} differ from posted credits {credits}"
            ));
        }
    }
    let unbalanced: Vec<(i64, String, bool, i64)> =
        fetch(&mut *connection, UNBALANCED_TRANSFERS).await?;
    for (transfer_id, currency, pending, difference) in unbalanced {
        let what = if pending { "pending" } else { "posted" };
        violations.push(format!(
            "transfer {transfer_id}: {what} entries in {currency} are off by {difference} (debits - credits)"
        ));
    }
    let mismatches: Vec<AccountMismatch> = fetch(&mut *connection, ACCOUNT_MISMATCHES).await?;
    for row in mismatches {
        violations.push(format!(
            "account {}: stored totals (debits {}, credits {}, pending debits {}, pending credits {}, frozen {}) \
             differ from the journal's ({}, {}, {}, {}, {})",
            row.0, row.1, row.2, row.3, row.4, row.5, row.6, row.7, row.8, row.9, row.10
        ));
    }
    let from_accounts: Vec<SubjectTotal> =
        fetch(&mut *connection, SUBJECT_TOTALS_FROM_ACCOUNTS).await?;
    let stored: Vec<SubjectTotal> = fetch(&mut *connection, SUBJECT_TOTALS).await?;
    compare_subjects(&from_accounts, &stored, violations);
    let without_entries: Vec<(i64,)> = fetch(&mut *connection, TRANSFERS_WITHOUT_ENTRIES).await?;
    for (transfer_id,) in without_entries {
        violations.push(format!("transfer {transfer_id} has no journal entries"));
    }
    let orphans: Vec<(i64,)> = fetch(&mut *connection, ENTRIES_WITHOUT_TRANSFER).await?;
    for (transfer_id,) in orphans {
        violations.push(format!(
            "entries name transfer {transfer_id}, which does not exist"
        ));
    }
    violations.truncate(VIOLATION_EXAMPLES_MAX * 4);
    Ok(report)
}

/// The sum of the accounts under each subject must equal the subject's
/// total, kept separately by every batch.
fn compare_subjects(
    from_accounts: &[SubjectTotal],
    stored: &[SubjectTotal],
    violations: &mut Vec<String>,
) {
    // (subject, currency) → ((debits, credits) of its accounts, of the subject).
    type Sides = (i64, i64);
    let mut totals: BTreeMap<(&str, &str), (Sides, Sides)> = BTreeMap::new();
    for (subject, currency, debits, credits) in from_accounts {
        totals.entry((subject, currency)).or_default().0 = (*debits, *credits);
    }
    for (subject, currency, debits, credits) in stored {
        totals.entry((subject, currency)).or_default().1 = (*debits, *credits);
    }
    for ((subject, currency), (accounts, subject_total)) in totals {
        if accounts != subject_total {
            violations.push(format!(
                "subject {subject} {currency}: accounts sum to debits {} credits {}, the subject holds debits {} credits {}",
                accounts.0, accounts.1, subject_total.0, subject_total.1
            ));
        }
    }
}
