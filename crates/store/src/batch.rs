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
//! rolled back, and the caller learns which statement it was.
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
    sql: &'q str,
    values: Vec<Value<'q>>,
}

impl<'q> Statement<'q> {
    pub(crate) fn new(sql: &'q str) -> Statement<'q> {
        Statement {
            sql,
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
            .fold(sqlx::query(self.sql), |query, value| bind(query, value))
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

/// What a statement of a batch's SQLite script is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Part {
    /// `BEGIN` or `COMMIT`.
    Control,
    /// The batch's statement at this index.
    Statement(usize),
    /// The guard after the batch's statement at this index.
    Guard(usize),
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
    /// A statement's text names other parameters than it was given: a
    /// mistake in paycore, reported rather than bound as NULLs.
    #[error("statement {statement} of the batch names {named} parameters but has {given}")]
    Arity {
        statement: usize,
        named: usize,
        given: usize,
    },
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

    /// The whole batch as one SQLite script, and what each of the
    /// script's statements is.
    pub(crate) fn sqlite_script(&self) -> Result<(String, Vec<Part>), BatchError> {
        let mut script = String::from("BEGIN IMMEDIATE;\n");
        let mut owners = vec![Part::Control];
        let mut offset = 0;
        for (index, statement, expect) in self.statements() {
            let named = highest_parameter(statement.sql);
            if named != statement.values.len() {
                return Err(BatchError::Arity {
                    statement: index,
                    named,
                    given: statement.values.len(),
                });
            }
            renumber(statement.sql, offset, &mut script);
            script.push_str(";\n");
            owners.push(Part::Statement(index));
            if expect == Expect::OneChange {
                script.push_str(SQLITE_GUARD);
                script.push_str(";\n");
                owners.push(Part::Guard(index));
            }
            offset += statement.values.len();
        }
        script.push_str("COMMIT");
        owners.push(Part::Control);
        Ok((script, owners))
    }

    /// Every parameter of the batch in the order of the script's numbers.
    pub(crate) fn values(&self) -> impl Iterator<Item = &Value<'q>> {
        self.statements
            .iter()
            .flat_map(|(statement, _)| statement.values.iter())
    }
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
    fn parameters_are_renumbered_to_follow_each_other() {
        let mut batch = Batch::new();
        batch.push(
            Statement::new("UPDATE t SET a = $1, b = $2 WHERE id = $3 AND c = $1")
                .bind(1)
                .bind("x")
                .bind(3),
            Expect::OneChange,
        );
        batch.push(
            Statement::new("INSERT INTO u VALUES ($1, $2)")
                .bind(4)
                .bind(None::<i64>),
            Expect::Any,
        );
        let (script, owners) = batch.sqlite_script().expect("script");
        assert_eq!(
            script,
            "BEGIN IMMEDIATE;\n\
             UPDATE t SET a = $1, b = $2 WHERE id = $3 AND c = $1;\n\
             INSERT INTO temp.expect_one_change (changed) VALUES (changes());\n\
             INSERT INTO u VALUES ($4, $5);\n\
             COMMIT"
        );
        assert_eq!(
            owners,
            vec![
                Part::Control,
                Part::Statement(0),
                Part::Guard(0),
                Part::Statement(1),
                Part::Control
            ]
        );
        assert_eq!(batch.values().count(), 5);
    }

    #[test]
    fn a_statement_with_too_few_values_is_refused() {
        let mut batch = Batch::new();
        batch.push(Statement::new("SELECT $1, $2").bind(1), Expect::Any);
        assert!(matches!(
            batch.sqlite_script(),
            Err(BatchError::Arity {
                statement: 0,
                named: 2,
                given: 1
            })
        ));
    }
}
