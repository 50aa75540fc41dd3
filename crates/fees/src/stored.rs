//! The stored rule table: the [`FeeRuleStore`] trait (the `store` crate
//! implements it for SQLite and PostgreSQL), and the one way the table
//! changes, [`change_rules`].
//!
//! The store keeps every rule's definition as TOML text
//! ([`FeeRuleDefinition::to_toml`]), a table version that every change
//! raises by one, and an audit row per rule changed (who, when, why, the
//! definition before and after). A change reads the table, applies itself,
//! checks the whole new table by building its [`FeeSchedule`] (so a refused
//! change leaves everything as it was), and commits only if the table is
//! still at the version it read (compare-and-set; otherwise it starts
//! again, at most [`CHANGE_ATTEMPTS_MAX`] times). Several processes may
//! share one database: each puts newer versions in force with
//! [`refresh`].

use crate::FeeConfigError;
use crate::definition::FeeRuleDefinition;
use crate::schedule::FeeSchedule;
use crate::table::FeeTable;
use ledger::{StoreError, TimestampMicros};
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

/// Times a change reads, checks and tries to commit before it gives up
/// because other changes keep committing first.
pub const CHANGE_ATTEMPTS_MAX: usize = 8;
/// Longest operator name and reason of a change, in bytes.
pub const OPERATOR_LENGTH_MAX: usize = 64;
pub const REASON_LENGTH_MAX: usize = 1_000;
/// Most audit rows one history page holds.
pub const HISTORY_PAGE_MAX: u32 = 1_000;

/// A stored rule: its id and its definition's TOML text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredFeeRule {
    pub rule_id: String,
    pub definition: String,
}

/// The stored table as one consistent read: its version (0 when it was
/// never written) and its rules.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StoredFeeRules {
    pub version: i64,
    pub rules: Vec<StoredFeeRule>,
}

/// One rule's part of a change; `None` where the rule is absent (before a
/// creation, after a deletion).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeeRuleDiff {
    pub rule_id: String,
    pub before: Option<String>,
    pub after: Option<String>,
}

/// A checked change, to be written as table version `version` if the
/// stored table is still at `version - 1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeeRuleCommit {
    pub version: i64,
    pub operator: String,
    pub reason: String,
    pub changed_at: TimestampMicros,
    pub changes: Vec<FeeRuleDiff>,
}

/// One audit row: a rule changed by a table version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeeRuleHistoryEntry {
    /// Increasing in commit order; the paging cursor.
    pub change_id: i64,
    pub version: i64,
    pub operator: String,
    pub reason: String,
    pub changed_at: TimestampMicros,
    pub rule_id: String,
    pub before: Option<String>,
    pub after: Option<String>,
}

/// A page of the audit log, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeeRuleHistoryQuery {
    /// Only this rule's changes.
    pub rule_id: Option<String>,
    /// Only changes older than this one (paging).
    pub before_change_id: Option<i64>,
    /// At most [`HISTORY_PAGE_MAX`].
    pub limit: u32,
}

/// Where the rule table is kept. Implementations must make
/// `commit_fee_rules` atomic: the version row, the rules and the audit rows
/// are written together, and only if the table is at `version - 1`.
pub trait FeeRuleStore: Send + Sync {
    /// The stored table's version; 0 when it was never written.
    fn fee_rule_version(&self) -> impl Future<Output = Result<i64, StoreError>> + Send;

    /// The version and every rule, read together.
    fn fee_rules(&self) -> impl Future<Output = Result<StoredFeeRules, StoreError>> + Send;

    /// Writes `commit` and answers true, or, when the table is no longer
    /// at `commit.version - 1`, writes nothing and answers false.
    fn commit_fee_rules(
        &self,
        commit: &FeeRuleCommit,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    fn fee_rule_history(
        &self,
        query: &FeeRuleHistoryQuery,
    ) -> impl Future<Output = Result<Vec<FeeRuleHistoryEntry>, StoreError>> + Send;
}

/// What a change does to the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeeRuleChange {
    /// Creates the rule, or replaces the rule with its id.
    Put(Box<FeeRuleDefinition>),
    /// Removes the rule with this id.
    Delete(String),
    /// The table becomes exactly these rules (a rule file).
    ReplaceAll(Vec<FeeRuleDefinition>),
    /// [`FeeRuleChange::ReplaceAll`] if the table was never written, else
    /// nothing: the first start of a store.
    Seed(Vec<FeeRuleDefinition>),
}

/// A change with who makes it and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeeRuleEdit {
    pub change: FeeRuleChange,
    pub operator: String,
    pub reason: String,
}

/// What [`change_rules`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChangeOutcome {
    /// The table version in force after the change.
    pub version: i64,
    /// Rules created, replaced or removed; 0 when the table already was as
    /// asked (no version is written then).
    pub rules_changed: usize,
}

/// The stored table as definitions, by rule id.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FeeRuleSet {
    pub version: i64,
    pub definitions: Vec<FeeRuleDefinition>,
}

/// Why the rule table could not be read or changed.
#[derive(Debug, thiserror::Error)]
pub enum FeeTableError {
    /// The new table is not valid; it names the rule and field.
    #[error(transparent)]
    Config(#[from] FeeConfigError),
    #[error("fee rule {0:?} does not exist")]
    UnknownRule(String),
    #[error(
        "a change of the fee rules needs an operator (1 to {OPERATOR_LENGTH_MAX} bytes) and a reason (1 to {REASON_LENGTH_MAX} bytes)"
    )]
    Actor,
    #[error("other changes of the fee rules committed first {0} times; try again")]
    Contended(usize),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl FeeTableError {
    /// The stable code of the error.
    pub fn code(&self) -> &'static str {
        match self {
            FeeTableError::Config(error) => error.code(),
            FeeTableError::UnknownRule(_) => "UNKNOWN_FEE_RULE",
            FeeTableError::Actor => "OPERATOR_AND_REASON_REQUIRED",
            FeeTableError::Contended(_) => "FEE_RULES_CONTENDED",
            FeeTableError::Store(_) => "STORE_ERROR",
        }
    }
}

impl FeeRuleEdit {
    fn check_actor(&self) -> Result<(), FeeTableError> {
        let fits = |text: &str, max: usize| !text.trim().is_empty() && text.len() <= max;
        if fits(&self.operator, OPERATOR_LENGTH_MAX) && fits(&self.reason, REASON_LENGTH_MAX) {
            Ok(())
        } else {
            Err(FeeTableError::Actor)
        }
    }
}

impl FeeRuleChange {
    /// The table after the change; `None` when there is nothing to do.
    fn apply(&self, current: &FeeRuleSet) -> Result<Option<Vec<FeeRuleDefinition>>, FeeTableError> {
        let definitions = &current.definitions;
        match self {
            FeeRuleChange::Put(rule) => {
                let mut next = definitions.clone();
                match next.iter_mut().find(|existing| existing.id == rule.id) {
                    Some(existing) => existing.clone_from(rule),
                    None => next.push((**rule).clone()),
                }
                Ok(Some(next))
            }
            FeeRuleChange::Delete(rule_id) => {
                if !definitions.iter().any(|existing| existing.id == *rule_id) {
                    return Err(FeeTableError::UnknownRule(rule_id.clone()));
                }
                Ok(Some(
                    definitions
                        .iter()
                        .filter(|existing| existing.id != *rule_id)
                        .cloned()
                        .collect(),
                ))
            }
            FeeRuleChange::ReplaceAll(rules) => Ok(Some(rules.clone())),
            FeeRuleChange::Seed(rules) if current.version == 0 => Ok(Some(rules.clone())),
            FeeRuleChange::Seed(_) => Ok(None),
        }
    }
}

/// Reads the stored table as definitions, in rule id order.
pub async fn read_rules<S: FeeRuleStore>(store: &S) -> Result<FeeRuleSet, FeeTableError> {
    let stored = store.fee_rules().await?;
    let mut definitions = stored
        .rules
        .iter()
        .map(|rule| {
            FeeRuleDefinition::from_toml(&rule.definition).map_err(|error| {
                FeeConfigError::Invalid {
                    rule: rule.rule_id.clone(),
                    field: "definition".to_owned(),
                    reason: format!("the stored text does not read: {error}"),
                }
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    definitions.sort_by(|left, right| left.id.cmp(&right.id));
    Ok(FeeRuleSet {
        version: stored.version,
        definitions,
    })
}

/// Puts the stored table in force in `table` when it is newer than the one
/// there; answers the version in force. A stored table that does not check
/// (written by an older paycore, say) is an error and the table in force
/// stays.
pub async fn refresh<S: FeeRuleStore>(store: &S, table: &FeeTable) -> Result<i64, FeeTableError> {
    if store.fee_rule_version().await? > table.version() {
        let current = read_rules(store).await?;
        put_in_force(table, &current, None)?;
    }
    Ok(table.version())
}

/// Puts `set` in force unless the table is that new already; `checked` is
/// its schedule when the caller built it.
fn put_in_force(
    table: &FeeTable,
    set: &FeeRuleSet,
    checked: Option<FeeSchedule>,
) -> Result<(), FeeTableError> {
    if set.version > table.version() {
        let schedule = match checked {
            Some(schedule) => schedule,
            None => FeeSchedule::from_definitions(&set.definitions)?,
        };
        table.replace(set.version, Arc::new(schedule));
    }
    Ok(())
}

/// Applies `edit` to the stored table and puts the result in force in
/// `table`: read, apply, check the whole new table, commit as the next
/// version if nobody committed meanwhile (else start again). A change that
/// leaves the table as it is writes nothing.
pub async fn change_rules<S: FeeRuleStore>(
    store: &S,
    table: &FeeTable,
    edit: &FeeRuleEdit,
    now: TimestampMicros,
) -> Result<ChangeOutcome, FeeTableError> {
    edit.check_actor()?;
    for _attempt in 0..CHANGE_ATTEMPTS_MAX {
        let current = read_rules(store).await?;
        let Some(next) = edit.change.apply(&current)? else {
            put_in_force(table, &current, None)?;
            return Ok(unchanged(&current));
        };
        let schedule = FeeSchedule::from_definitions(&next)?;
        let changes = diff(&current.definitions, &next)?;
        if changes.is_empty() {
            put_in_force(table, &current, None)?;
            return Ok(unchanged(&current));
        }
        let commit = FeeRuleCommit {
            version: current
                .version
                .checked_add(1)
                .ok_or_else(|| StoreError::Corrupt("the fee rule version overflowed".to_owned()))?,
            operator: edit.operator.trim().to_owned(),
            reason: edit.reason.trim().to_owned(),
            changed_at: now,
            changes,
        };
        if store.commit_fee_rules(&commit).await? {
            let committed = FeeRuleSet {
                version: commit.version,
                definitions: next,
            };
            put_in_force(table, &committed, Some(schedule))?;
            return Ok(ChangeOutcome {
                version: commit.version,
                rules_changed: commit.changes.len(),
            });
        }
    }
    Err(FeeTableError::Contended(CHANGE_ATTEMPTS_MAX))
}

fn unchanged(current: &FeeRuleSet) -> ChangeOutcome {
    ChangeOutcome {
        version: current.version,
        rules_changed: 0,
    }
}

/// The rules whose text differs between two tables, by id. Both are
/// checked tables, so ids are unique in each.
fn diff(
    before: &[FeeRuleDefinition],
    after: &[FeeRuleDefinition],
) -> Result<Vec<FeeRuleDiff>, FeeConfigError> {
    let texts = |rules: &[FeeRuleDefinition]| {
        rules
            .iter()
            .map(|rule| Ok((rule.id.clone(), rule.to_toml()?)))
            .collect::<Result<BTreeMap<_, _>, FeeConfigError>>()
    };
    let mut before = texts(before)?;
    let after = texts(after)?;
    let mut changes = Vec::new();
    for (rule_id, text) in after {
        let previous = before.remove(&rule_id);
        if previous.as_deref() != Some(text.as_str()) {
            changes.push(FeeRuleDiff {
                rule_id,
                before: previous,
                after: Some(text),
            });
        }
    }
    changes.extend(before.into_iter().map(|(rule_id, text)| FeeRuleDiff {
        rule_id,
        before: Some(text),
        after: None,
    }));
    changes.sort_by(|left, right| left.rule_id.cmp(&right.rule_id));
    Ok(changes)
}
