//! Several writes that commit together, sent to the database at once.
//!
//! On SQLite every statement is a trip to the driver's worker thread and
//! back, with the one write connection held all the while: a payment that
//! wrote in twenty statements held it for twenty trips. A [`Batch`] goes in
//! one trip: its statements, joined into one script between `BEGIN
//! IMMEDIATE` and `COMMIT`, their parameters renumbered to follow each
//! other. A statement that must change exactly one row (a compare-and-set
//! on a status, an insert that must not meet a conflict) is followed by a
//! guard that aborts the script when it did not; the transaction is then
//! rolled back, and the caller learns which statement it was. Batches that
//! wait for the connection at the same time go together, in one script
//! and one commit, each in a savepoint of its own
//! (`SqliteConnections::run_batch`).
//!
//! This relies on sqlx's SQLite driver running every statement of a query
//! text, binding `$N` as the N-th value of the whole query (sqlx 0.8).
//!
//! On PostgreSQL a batch is the same statements, one after another, in one
//! transaction, with the same checks.

use sqlx::encode::Encode;
use sqlx::query::Query;
use sqlx::{Database, Type};
use std::borrow::Cow;
use std::fmt::Write as _;

/// Created on the SQLite write connection: inserting into the view a
/// number other than 1 aborts the statement, so `INSERT INTO
/// temp.expect_one_change VALUES (changes())` after a write fails unless
/// that write changed exactly one row.
pub(crate) const SQLITE_GUARD_SETUP: &str = "\
    CREATE TEMP VIEW IF NOT EXISTS expect_one_change (changed) AS SELECT 0; \
    CREATE TEMP TRIGGER IF NOT EXISTS expect_one_change INSTEAD OF INSERT ON expect_one_change \
    WHEN NEW.changed <> 1 BEGIN SELECT RAISE(ABORT, 'paycore batch: expected one row changed'); END";

const SQLITE_GUARD: &str = "INSERT INTO temp.expect_one_change (changed) VALUES (changes())";

/// A parameter of a batched statement.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value<'q> {
    Int(Option<i64>),
    Text(Option<Cow<'q, str>>),
    Bool(bool),
}

impl From<i64> for Value<'_> {
    fn from(value: i64) -> Self {
        Value::Int(Some(value))
    }
}

impl From<Option<i64>> for Value<'_> {
    fn from(value: Option<i64>) -> Self {
        Value::Int(value)
    }
}

impl<'q> From<&'q str> for Value<'q> {
    fn from(value: &'q str) -> Self {
        Value::Text(Some(Cow::Borrowed(value)))
    }
}

impl<'q> From<&'q String> for Value<'q> {
    fn from(value: &'q String) -> Self {
        Value::Text(Some(Cow::Borrowed(value)))
    }
}

impl From<String> for Value<'_> {
    fn from(value: String) -> Self {
        Value::Text(Some(Cow::Owned(value)))
    }
}

impl<'q> From<Option<&'q str>> for Value<'q> {
    fn from(value: Option<&'q str>) -> Self {
        Value::Text(value.map(Cow::Borrowed))
    }
}

impl From<bool> for Value<'_> {
    fn from(value: bool) -> Self {
        Value::Bool(value)
    }
}

/// What a statement of a batch must do for the batch to commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expect {
    /// Anything, including nothing.
    Any,
    /// Change exactly one row.
    OneChange,
}

/// One statement with its parameters (`$1`, `$2`, … of its own).
#[derive(Debug, Clone)]
pub(crate) struct Statement<'q> {
    sql: Cow<'q, str>,
    values: Vec<Value<'q>>,
}

impl<'q> Statement<'q> {
    pub(crate) fn new(sql: impl Into<Cow<'q, str>>) -> Statement<'q> {
        Statement {
            sql: sql.into(),
            values: Vec::new(),
        }
    }

    pub(crate) fn bind(mut self, value: impl Into<Value<'q>>) -> Statement<'q> {
        self.values.push(value.into());
        self
    }

    /// The statement as a sqlx query, to run on its own.
    pub(crate) fn query<DB>(&self) -> Query<'_, DB, <DB as Database>::Arguments<'_>>
    where
        DB: Database,
        for<'a> Option<i64>: Encode<'a, DB> + Type<DB>,
        for<'a> Option<&'a str>: Encode<'a, DB> + Type<DB>,
        for<'a> bool: Encode<'a, DB> + Type<DB>,
    {
        self.values
            .iter()
            .fold(sqlx::query(&self.sql), |query, value| bind(query, value))
    }
}

/// `query` with `value` bound as its next parameter.
pub(crate) fn bind<'q, DB>(
    query: Query<'q, DB, <DB as Database>::Arguments<'q>>,
    value: &'q Value<'_>,
) -> Query<'q, DB, <DB as Database>::Arguments<'q>>
where
    DB: Database,
    for<'a> Option<i64>: Encode<'a, DB> + Type<DB>,
    for<'a> Option<&'a str>: Encode<'a, DB> + Type<DB>,
    for<'a> bool: Encode<'a, DB> + Type<DB>,
{
    match value {
        Value::Int(value) => query.bind(*value),
        Value::Text(value) => query.bind(value.as_deref()),
        Value::Bool(value) => query.bind(*value),
    }
}

/// What a statement of a SQLite script of batches is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Part {
    /// `BEGIN`, `COMMIT`, or what undoes a failed batch before the rest.
    Control,
    /// The savepoint or its release around the script's batch at this
    /// index.
    Savepoint { batch: usize },
    /// A statement of a batch, by the index of each in the script.
    Statement { batch: usize, statement: usize },
    /// The guard after that statement.
    Guard { batch: usize, statement: usize },
}

/// Most parameters in one script: SQLite refuses more than 32,766.
pub(crate) const SCRIPT_PARAMETERS_MAX: usize = 30_000;

/// What the script undoes of a failed batch, at its start, before it runs
/// the batches after it in the same transaction.
pub(crate) const UNDO_FAILED_BATCH: &str = "ROLLBACK TO paycore_batch;\nRELEASE paycore_batch;\n";

/// A SQLite script that runs `batches` in one transaction, each inside a
/// savepoint of its own: `opening` (`BEGIN IMMEDIATE`, or
/// [`UNDO_FAILED_BATCH`] inside a transaction already open), each batch
/// with its statements' `$N` renumbered to follow each other, then
/// `COMMIT`. The parts name batches by their index in `batches` plus
/// `first`. Each batch has passed [`Batch::check_parameters`].
pub(crate) fn sqlite_script(
    opening: &str,
    batches: &[&Batch<'_>],
    first: usize,
) -> (String, Vec<Part>) {
    let mut script = String::from(opening);
    let mut parts: Vec<Part> = opening
        .split_terminator(';')
        .filter(|statement| !statement.trim().is_empty())
        .map(|_| Part::Control)
        .collect();
    let mut offset = 0;
    for (at, batch) in batches.iter().enumerate() {
        let index = first + at;
        script.push_str("SAVEPOINT paycore_batch;\n");
        parts.push(Part::Savepoint { batch: index });
        for (statement_index, statement, expect) in batch.statements() {
            renumber(&statement.sql, offset, &mut script);
            script.push_str(";\n");
            parts.push(Part::Statement {
                batch: index,
                statement: statement_index,
            });
            if expect == Expect::OneChange {
                script.push_str(SQLITE_GUARD);
                script.push_str(";\n");
                parts.push(Part::Guard {
                    batch: index,
                    statement: statement_index,
                });
            }
            offset += statement.values.len();
        }
        script.push_str("RELEASE paycore_batch;\n");
        parts.push(Part::Savepoint { batch: index });
    }
    script.push_str("COMMIT");
    parts.push(Part::Control);
    (script, parts)
}

/// Why a batch did not commit; nothing of it did.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BatchError {
    /// The statement at this index (in the order pushed) did not change
    /// exactly one row.
    #[error("statement {statement} of the batch did not change exactly one row")]
    Expectation { statement: usize },
    #[error("statement {statement} of the batch: {source}")]
    Statement {
        statement: usize,
        source: sqlx::Error,
    },
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    /// The run that took the batch ended without an answer for it.
    #[error("the batch was not run to the end")]
    Abandoned,
    /// A statement's text names other parameters than it was given: a
    /// mistake in paycore, reported rather than bound as NULLs.
    #[error("statement {statement} of the batch names {named} parameters but has {given}")]
    Arity {
        statement: usize,
        named: usize,
        given: usize,
    },
}

impl From<BatchError> for ledger::StoreError {
    fn from(error: BatchError) -> Self {
        match error {
            BatchError::Statement { source, .. } | BatchError::Database(source) => {
                crate::rows::database_error(source)
            }
            other => ledger::StoreError::Database(other.to_string()),
        }
    }
}

/// Statements that commit together or not at all.
#[derive(Debug, Clone, Default)]
pub(crate) struct Batch<'q> {
    statements: Vec<(Statement<'q>, Expect)>,
}

impl<'q> Batch<'q> {
    pub(crate) fn new() -> Batch<'q> {
        Batch::default()
    }

    /// Appends `statement`; returns its index among the batch's results.
    pub(crate) fn push(&mut self, statement: Statement<'q>, expect: Expect) -> usize {
        self.statements.push((statement, expect));
        self.statements.len() - 1
    }

    pub(crate) fn len(&self) -> usize {
        self.statements.len()
    }

    pub(crate) fn statements(&self) -> impl Iterator<Item = (usize, &Statement<'q>, Expect)> {
        self.statements
            .iter()
            .enumerate()
            .map(|(index, (statement, expect))| (index, statement, *expect))
    }

    /// Every parameter of the batch, in order.
    pub(crate) fn values(&self) -> impl Iterator<Item = &Value<'q>> {
        self.statements
            .iter()
            .flat_map(|(statement, _)| statement.values.iter())
    }

    /// The batch's statements and what each must do, without their
    /// values: batches of one shape run as one script text.
    pub(crate) fn shape(&self) -> String {
        let mut shape = String::new();
        for (statement, expect) in &self.statements {
            shape.push_str(&statement.sql);
            shape.push_str(match expect {
                Expect::Any => ";\n",
                Expect::OneChange => ";!\n",
            });
        }
        shape
    }

    /// Refuses a batch whose statement names other parameters than it was
    /// given, or that binds more than one script may.
    pub(crate) fn check_parameters(&self) -> Result<(), BatchError> {
        for (index, statement, _) in self.statements() {
            let named = highest_parameter(&statement.sql);
            if named != statement.values.len() {
                return Err(BatchError::Arity {
                    statement: index,
                    named,
                    given: statement.values.len(),
                });
            }
        }
        if self.parameters() > SCRIPT_PARAMETERS_MAX {
            return Err(BatchError::Database(sqlx::Error::Protocol(format!(
                "a batch binds {} parameters, over the {SCRIPT_PARAMETERS_MAX} of one script",
                self.parameters()
            ))));
        }
        Ok(())
    }

    /// How many parameters the batch binds.
    pub(crate) fn parameters(&self) -> usize {
        self.statements
            .iter()
            .map(|(statement, _)| statement.values.len())
            .sum()
    }

    /// A copy of the batch that borrows nothing, to hand to another task.
    pub(crate) fn to_static(&self) -> Batch<'static> {
        Batch {
            statements: self
                .statements
                .iter()
                .map(|(statement, expect)| {
                    let values = statement
                        .values
                        .iter()
                        .map(|value| match value {
                            Value::Int(value) => Value::Int(*value),
                            Value::Bool(value) => Value::Bool(*value),
                            Value::Text(value) => Value::Text(
                                value.as_deref().map(|text| Cow::Owned(text.to_owned())),
                            ),
                        })
                        .collect();
                    let statement = Statement {
                        sql: Cow::Owned(statement.sql.as_ref().to_owned()),
                        values,
                    };
                    (statement, *expect)
                })
                .collect(),
        }
    }
}

/// The first row the first statement of a batch returned.
pub(crate) fn first_row<R>(rows: Vec<Vec<R>>) -> Option<R> {
    rows.into_iter().next()?.into_iter().next()
}

/// The highest `$N` in `sql`.
fn highest_parameter(sql: &str) -> usize {
    let mut highest = 0;
    let mut rest = sql;
    while let Some(at) = rest.find('$') {
        let digits: &str = &rest[at + 1..];
        let end = digits
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(digits.len());
        if let Ok(number) = digits[..end].parse::<usize>() {
            highest = highest.max(number);
        }
        rest = &digits[end..];
    }
    highest
}

/// Appends `sql` to `script` with every `$N` raised by `offset`.
fn renumber(sql: &str, offset: usize, script: &mut String) {
    let mut rest = sql;
    while let Some(at) = rest.find('$') {
        script.push_str(&rest[..at]);
        let digits = &rest[at + 1..];
        let end = digits
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(digits.len());
        match digits[..end].parse::<usize>() {
            Ok(number) => {
                let _ = write!(script, "${}", number + offset);
            }
            Err(_) => script.push('$'),
        }
        rest = &digits[end..];
    }
    script.push_str(rest);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_renumbered_to_follow_each_other_across_batches() {
        let mut first = Batch::new();
        first.push(
            Statement::new("UPDATE t SET a = $1, b = $2 WHERE id = $3 AND c = $1")
                .bind(1)
                .bind("x")
                .bind(3),
            Expect::OneChange,
        );
        let mut second = Batch::new();
        second.push(
            Statement::new("INSERT INTO u VALUES ($1, $2)")
                .bind(4)
                .bind(None::<i64>),
            Expect::Any,
        );
        let (script, parts) = sqlite_script("BEGIN IMMEDIATE;\n", &[&first, &second], 5);
        assert_eq!(
            script,
            "BEGIN IMMEDIATE;\n\
             SAVEPOINT paycore_batch;\n\
             UPDATE t SET a = $1, b = $2 WHERE id = $3 AND c = $1;\n\
             INSERT INTO temp.expect_one_change (changed) VALUES (changes());\n\
             RELEASE paycore_batch;\n\
             SAVEPOINT paycore_batch;\n\
             INSERT INTO u VALUES ($4, $5);\n\
             RELEASE paycore_batch;\n\
             COMMIT"
        );
        assert_eq!(
            parts,
            vec![
                Part::Control,
                Part::Savepoint { batch: 5 },
                Part::Statement {
                    batch: 5,
                    statement: 0
                },
                Part::Guard {
                    batch: 5,
                    statement: 0
                },
                Part::Savepoint { batch: 5 },
                Part::Savepoint { batch: 6 },
                Part::Statement {
                    batch: 6,
                    statement: 0
                },
                Part::Savepoint { batch: 6 },
                Part::Control
            ]
        );
        let (_, parts) = sqlite_script(UNDO_FAILED_BATCH, &[&second], 6);
        assert_eq!(parts[..2], [Part::Control, Part::Control]);
        assert_eq!(first.parameters() + second.parameters(), 5);
    }

    #[test]
    fn a_statement_with_too_few_values_is_refused() {
        let mut batch = Batch::new();
        batch.push(Statement::new("SELECT $1, $2").bind(1), Expect::Any);
        assert!(matches!(
            batch.check_parameters(),
            Err(BatchError::Arity {
                statement: 0,
                named: 2,
                given: 1
            })
        ));
    }
}
