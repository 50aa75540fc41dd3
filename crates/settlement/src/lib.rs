//! 清结算 — settlement: the business-day calendar, settlement cycles, and
//! netting cleared entries into one payable line per merchant.
//!
//! Clearing (清算) writes an entry for every successful collection and
//! refund, with its fee, as it happens. Settlement (结算) later decides
//! which of those entries are due, nets them per merchant and currency, and
//! tells the caller what to post and pay. This crate is the pure part of
//! that: no I/O (except [`Calendar::load`] reading one file), no clock, no
//! async runtime, no storage. The store sums entries and the caller posts
//! to the ledger; the crate computes between the two.
//!
//! # Calendar
//!
//! [`Calendar`] is data, not code: a TOML file (`config/calendar.toml`)
//! lists per year the public holidays (法定节假日) and the make-up working
//! weekends (调休上班). A business day is a Monday to Friday not listed as
//! a holiday, or a listed make-up weekend day. A date in a year the file
//! does not cover is `OUTSIDE_CALENDAR`, an error rather than a guess: a
//! settlement that needs next year's calendar waits until it is loaded.
//!
//! # Cycles
//!
//! A merchant settles on a [`Cycle`] — `T+n` (n business days), `D+n` (n
//! calendar days), `W+n` (n business days after the ISO week's Sunday),
//! `M+n` (n business days after the month's last day).
//! [`Cycle::due_date`] maps a business date to the day its entries become
//! due; a settlement run on day `d` takes the unsettled entries whose due
//! date is on or before `d`.
//!
//! # Netting
//!
//! [`net`] takes those entries already summed by the store
//! ([`ClearingTotals`], one row per merchant, currency, business date,
//! kind and fee mode) and gives one [`SettlementLine`] per merchant and
//! currency: collections − refunds − real-time fees (实收). Post-paid (后收)
//! and prepaid (预充实扣) fees are reported beside it but not deducted: the
//! first are billed at month end, the second were already taken from the
//! merchant's fee account. All sums are checked; nothing wraps.
//!
//! [`decide`] says what to do with a line: pay it, or carry it when its net
//! is negative (the merchant owes more than it is owed) or below the
//! merchant's minimum payout. **A carried line posts nothing and leaves its
//! entries unsettled**, so the next run nets them again together with the
//! new ones; no separate "negative balance" is kept, and a refund larger
//! than a day's collections is recovered from later collections.
//! [`SettlementLine::posting`] gives what paying a line moves in the
//! ledger: the merchant's settlement-pending (待结算) is debited collections
//! − refunds, platform fee income receives the real-time fees, and the
//! merchant's available balance receives the net.
//!
//! [`SettlementConfig`] holds each merchant's terms (`config/settlement.toml`:
//! cycle, destination, minimum, reconciled-only) and [`SettlementStore`] is
//! where entries and batches live; the `store` crate implements it, and
//! `server::settlement` runs a settlement with both.
//!
//! [`daily_summary`] is the daily summary (日汇总) of a date: what was
//! cleared that business date per merchant and currency, fees by collection
//! mode, and what that date's settlement batches moved, with a total per
//! currency.
//!
//! [`FeeBillStore`] and [`FeeMonth`] are the month-end bills of post-paid
//! fees (后收); `server::fee_billing` makes and collects them.
//!
//! **Architecture Invariant:** `settlement` does no I/O beyond reading its
//! configuration files, knows nothing of HTTP, and posts nothing itself.
//! [`FeeMode`] is the fee service's `fees::CollectionMode`.

mod bill;
mod calendar;
mod clearing;
mod config;
mod cycle;
mod error;
mod fee_bill;
mod netting;
mod store;
mod summary;

pub use bill::{BILL_HEADER, Bill, BillTotals, BillType, SUMMARY_HEADER, write_bill};
pub use calendar::{BUILTIN_CALENDAR, Calendar, ENTRIES_PER_YEAR_MAX, YEARS_MAX, parse_date};
pub use clearing::{ClearingEntry, NewClearingEntry};
pub use config::{
    BUILTIN_SETTLEMENT_CONFIG, Destination, MerchantTerms, SettlementConfig, SettlementConfigError,
};
pub use cycle::{CYCLE_DAYS_MAX, Cycle};
pub use error::{CalendarProblem, SettlementError};
pub use fee_bill::{
    CreatedFeeBill, FeeBill, FeeBillLine, FeeBillStatus, FeeBillStore, FeeMonth, NewFeeBill,
    UnbilledFees,
};
pub use netting::{
    ClearingTotals, Decision, EntryKind, FeeMode, SettlementLine, SettlementPosting, decide, net,
};
pub use store::{
    Batch, BatchDay, BatchMove, BatchStatus, ClearingHighWater, CreatedBatch, NewBatch,
    SettlementStore, SettlementStoreError,
};
pub use summary::{
    DAILY_SUMMARY_HEADER, DailyFigures, DailySummary, DailySummaryLine, TOTAL_ROW, daily_summary,
};
pub use time::Date;
