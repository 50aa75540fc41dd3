//! 清算 — clearing entries, defined by the `settlement` crate: the engine
//! writes one for every successful merchant collection and refund, in the
//! transaction that makes the order final.

pub use settlement::{ClearingEntry, EntryKind as ClearingKind, NewClearingEntry};
