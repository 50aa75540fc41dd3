//! The double-entry ledger: accounts, balanced transfers, pending (two-phase)
//! transfers, holds, reversals and idempotency keys, as pure domain logic
//! behind the [`LedgerStore`] trait.
//!
//! **Architecture Invariant:** this crate knows nothing of SQL, HTTP or an
//! async runtime. Stores load what a batch names, call
//! [`posting::apply_batch`], and write its outcome in one commit.

mod account;
mod error;
pub mod posting;
mod store;
mod transfer;

pub use account::*;
pub use error::LedgerError;
pub use posting::{BATCH_OPERATIONS_MAX, InvariantViolation};
pub use store::*;
pub use transfer::*;
