//! [`FeeTable`]: the rule table in force, replaced whole and atomically.

use crate::schedule::FeeSchedule;
use std::sync::{Arc, PoisonError, RwLock};

/// One version of the rule table: its number and its checked schedule,
/// always read together.
#[derive(Debug, Clone)]
pub struct VersionedSchedule {
    /// The stored table's version (0: not read from a store).
    pub version: i64,
    pub schedule: Arc<FeeSchedule>,
}

/// A cheap-to-clone handle on the rule table in force. Quotes and charges
/// take [`FeeTable::current`] once and price with that schedule from start
/// to end, so a replacement in the middle never mixes two tables; the next
/// caller gets the new one.
#[derive(Debug, Clone)]
pub struct FeeTable {
    current: Arc<RwLock<VersionedSchedule>>,
}

impl FeeTable {
    pub fn new(schedule: FeeSchedule, version: i64) -> FeeTable {
        FeeTable {
            current: Arc::new(RwLock::new(VersionedSchedule {
                version,
                schedule: Arc::new(schedule),
            })),
        }
    }

    /// The schedule in force.
    pub fn current(&self) -> Arc<FeeSchedule> {
        self.snapshot().schedule
    }

    /// The schedule in force with its version.
    pub fn snapshot(&self) -> VersionedSchedule {
        // The lock guards a pair that is replaced in one assignment, so a
        // panic elsewhere cannot leave it half written: a poisoned lock's
        // value is still whole.
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub fn version(&self) -> i64 {
        self.snapshot().version
    }

    /// Puts `schedule` in force as `version`, unless the table in force is
    /// that version or newer (a slow reader of an older version never rolls
    /// a newer table back). True if it was put in force.
    pub fn replace(&self, version: i64, schedule: Arc<FeeSchedule>) -> bool {
        let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
        if version <= current.version {
            return false;
        }
        *current = VersionedSchedule { version, schedule };
        true
    }
}
