//! 日汇总 — the daily summary of one date: per merchant and currency, what
//! was cleared that business date (collections, refunds, fees by collection
//! mode, net) and what settlement did that date (the batches of that
//! settlement date, and what the posted ones moved), with a total per
//! currency.
//!
//! The two halves are of the same calendar date but need not be of the same
//! money: on T+1 terms the batches settled on Monday pay Friday's entries.
//! A merchant with entries and no batch that day, or a batch and no
//! entries, has a line all the same.
//!
//! The figures of the cleared half are those of [`crate::net`] (one
//! netting, so the summary's net is what a settlement of exactly these
//! entries would pay), with the deferred fees split by mode.
//!
//! # Rows ([`DailySummary::rows`], under [`DAILY_SUMMARY_HEADER`])
//!
//! One row per merchant and currency, by merchant id, then one row per
//! currency whose `merchant_id` is `TOTAL` and whose other columns are the
//! sums of that currency's rows. Amounts are decimals in major units.
//!
//! | column | meaning |
//! | --- | --- |
//! | `date` | the summary's date, `YYYY-MM-DD` |
//! | `merchant_id`, `currency` | the line (`TOTAL` for a currency's total) |
//! | `collection_count`, `collections` | the date's cleared collections |
//! | `refund_count`, `refunds` | the date's cleared refunds (positive) |
//! | `real_time_fees`, `post_paid_fees`, `prepaid_fees` | fees by collection mode, charged minus returned |
//! | `net` | collections − refunds − real-time fees |
//! | `batch`, `batch_status` | the merchant's batch of this settlement date, if any |
//! | `batches`, `batches_posted` | batches of the date, and those posted in the ledger |
//! | `settled_entries`, `settled_fees`, `settled_net` | what the posted batches settled: entries (of any business date), real-time fees to platform income, net to the merchant |

use crate::{Batch, BatchStatus, ClearingTotals, FeeMode, SettlementError, SettlementLine, net};
use money::{Currency, Money};
use std::collections::BTreeMap;
use time::Date;

/// The figures of one summary line, or of a currency's total, in minor
/// units.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DailyFigures {
    pub collection_count: u64,
    pub collections_minor: i64,
    pub refund_count: u64,
    pub refunds_minor: i64,
    /// Real-time fees (实收): charged on collections minus returned on
    /// refunds; deducted by settlement.
    pub real_time_fees_minor: i64,
    /// Post-paid fees (后收), charged minus returned; billed at month end.
    pub post_paid_fees_minor: i64,
    /// Prepaid fees (预充实扣), charged minus returned; taken from the fee
    /// account when the payment was made.
    pub prepaid_fees_minor: i64,
    /// collections − refunds − real-time fees of the date's entries.
    pub net_minor: i64,
    /// Batches of this settlement date, whatever their status.
    pub batches: u64,
    /// Of those, the ones posted in the ledger (`POSTED`, `PAYING`, `PAID`,
    /// `PAYOUT_FAILED`).
    pub batches_posted: u64,
    /// Entries the posted batches settled.
    pub settled_entries: u64,
    /// Real-time fees the posted batches moved to platform income.
    pub settled_fees_minor: i64,
    /// What the posted batches moved to the merchants.
    pub settled_net_minor: i64,
}

/// One merchant's line in one currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DailySummaryLine {
    pub merchant_id: String,
    pub currency: Currency,
    /// The merchant's batch of this settlement date, if it has one (at most
    /// one per merchant, currency and date).
    pub batch: Option<(i64, BatchStatus)>,
    pub figures: DailyFigures,
}

/// The daily summary of one date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DailySummary {
    pub date: Date,
    /// By merchant id, then currency code.
    pub lines: Vec<DailySummaryLine>,
    /// The sum of the lines per currency.
    pub totals: BTreeMap<Currency, DailyFigures>,
}

/// The columns of [`DailySummary::rows`].
pub const DAILY_SUMMARY_HEADER: [&str; 18] = [
    "date",
    "merchant_id",
    "currency",
    "collection_count",
    "collections",
    "refund_count",
    "refunds",
    "real_time_fees",
    "post_paid_fees",
    "prepaid_fees",
    "net",
    "batch",
    "batch_status",
    "batches",
    "batches_posted",
    "settled_entries",
    "settled_fees",
    "settled_net",
];

/// The `merchant_id` of a currency's total row.
pub const TOTAL_ROW: &str = "TOTAL";

impl BatchStatus {
    /// Whether the batch has been posted in the ledger (settlement-pending →
    /// available): its money moved, whatever became of a payout after.
    pub fn is_posted(self) -> bool {
        matches!(
            self,
            BatchStatus::Posted
                | BatchStatus::Paying
                | BatchStatus::Paid
                | BatchStatus::PayoutFailed
        )
    }
}

/// The summary of `date` from the clearing totals of its business date and
/// the batches of its settlement date.
///
/// A group of another business date, or a batch of another settlement
/// date, or two batches of one merchant and currency, is
/// `DAILY_SUMMARY_INVALID`; amounts the netting refuses are refused here
/// too (`CLEARING_INVALID`), and a sum that does not fit in 64 bits is
/// `SETTLEMENT_OVERFLOW`.
pub fn daily_summary(
    date: Date,
    totals: impl IntoIterator<Item = ClearingTotals>,
    batches: &[Batch],
) -> Result<DailySummary, SettlementError> {
    let totals: Vec<ClearingTotals> = totals.into_iter().collect();
    if let Some(group) = totals.iter().find(|group| group.business_date != date) {
        return Err(invalid(format!(
            "clearing totals of merchant {:?} are of business date {}, not {date}",
            group.merchant_id, group.business_date
        )));
    }
    let deferred = deferred_fees(&totals)?;
    let mut lines: BTreeMap<(String, Currency), DailySummaryLine> = BTreeMap::new();
    for line in net(totals)? {
        let key = (line.merchant_id.clone(), line.currency);
        let (post_paid, prepaid) = deferred.get(&key).copied().unwrap_or((0, 0));
        lines.insert(key, cleared_line(line, post_paid, prepaid)?);
    }
    let settle_date = date.to_string();
    for batch in batches {
        if batch.settle_date != settle_date {
            return Err(invalid(format!(
                "batch {} is of settlement date {}, not {settle_date}",
                batch.id, batch.settle_date
            )));
        }
        let line = lines
            .entry((batch.merchant_id.clone(), batch.currency))
            .or_insert_with(|| DailySummaryLine {
                merchant_id: batch.merchant_id.clone(),
                currency: batch.currency,
                batch: None,
                figures: DailyFigures::default(),
            });
        if line.batch.is_some() {
            return Err(invalid(format!(
                "two batches of merchant {:?} in {} on {settle_date}",
                batch.merchant_id, batch.currency
            )));
        }
        line.batch = Some((batch.id, batch.status));
        add_batch(&mut line.figures, batch).ok_or_else(|| SettlementError::Overflow {
            merchant_id: batch.merchant_id.clone(),
            currency: batch.currency,
        })?;
    }
    let lines: Vec<DailySummaryLine> = lines.into_values().collect();
    let mut sums: BTreeMap<Currency, DailyFigures> = BTreeMap::new();
    for line in &lines {
        let total = sums.entry(line.currency).or_default();
        add_figures(total, &line.figures).ok_or(SettlementError::Overflow {
            merchant_id: TOTAL_ROW.to_owned(),
            currency: line.currency,
        })?;
    }
    Ok(DailySummary {
        date,
        lines,
        totals: sums,
    })
}

impl DailySummary {
    /// The summary as text rows under [`DAILY_SUMMARY_HEADER`]: the lines,
    /// then one [`TOTAL_ROW`] per currency. Amounts are decimals in major
    /// units.
    pub fn rows(&self) -> Vec<Vec<String>> {
        let date = self.date.to_string();
        let lines = self.lines.iter().map(|line| {
            let (batch, status) = match line.batch {
                Some((id, status)) => (id.to_string(), status.as_str().to_owned()),
                None => (String::new(), String::new()),
            };
            figures_row(
                &date,
                &line.merchant_id,
                line.currency,
                batch,
                status,
                &line.figures,
            )
        });
        let totals = self.totals.iter().map(|(currency, figures)| {
            figures_row(
                &date,
                TOTAL_ROW,
                *currency,
                String::new(),
                String::new(),
                figures,
            )
        });
        lines.chain(totals).collect()
    }
}

fn figures_row(
    date: &str,
    merchant_id: &str,
    currency: Currency,
    batch: String,
    batch_status: String,
    figures: &DailyFigures,
) -> Vec<String> {
    let major = |minor: i64| Money::new(minor, currency).format_major();
    vec![
        date.to_owned(),
        merchant_id.to_owned(),
        currency.code().to_owned(),
        figures.collection_count.to_string(),
        major(figures.collections_minor),
        figures.refund_count.to_string(),
        major(figures.refunds_minor),
        major(figures.real_time_fees_minor),
        major(figures.post_paid_fees_minor),
        major(figures.prepaid_fees_minor),
        major(figures.net_minor),
        batch,
        batch_status,
        figures.batches.to_string(),
        figures.batches_posted.to_string(),
        figures.settled_entries.to_string(),
        major(figures.settled_fees_minor),
        major(figures.settled_net_minor),
    ]
}

fn invalid(reason: String) -> SettlementError {
    SettlementError::DailySummaryInvalid(reason)
}

/// Post-paid and prepaid fees (in that order) per merchant and currency.
type DeferredFees = BTreeMap<(String, Currency), (i64, i64)>;

/// Post-paid and prepaid fees per merchant and currency, charged minus
/// returned, as the netting counts them (a returned fee is subtracted).
/// Summed in `i128` and narrowed at the end, as the netting does.
fn deferred_fees(totals: &[ClearingTotals]) -> Result<DeferredFees, SettlementError> {
    let mut wide: BTreeMap<(String, Currency), (i128, i128)> = BTreeMap::new();
    for group in totals {
        let fee = match group.kind {
            crate::EntryKind::Collection => i128::from(group.fee_minor),
            crate::EntryKind::Refund => -i128::from(group.fee_minor),
        };
        let sums = wide
            .entry((group.merchant_id.clone(), group.currency))
            .or_default();
        let sum = match group.fee_mode {
            FeeMode::RealTime => continue,
            FeeMode::PostPaid => &mut sums.0,
            FeeMode::Prepaid => &mut sums.1,
        };
        *sum = sum
            .checked_add(fee)
            .ok_or_else(|| SettlementError::Overflow {
                merchant_id: group.merchant_id.clone(),
                currency: group.currency,
            })?;
    }
    wide.into_iter()
        .map(|((merchant_id, currency), (post_paid, prepaid))| {
            let narrow = |value: i128| {
                i64::try_from(value).map_err(|_| SettlementError::Overflow {
                    merchant_id: merchant_id.clone(),
                    currency,
                })
            };
            let fees = (narrow(post_paid)?, narrow(prepaid)?);
            Ok(((merchant_id, currency), fees))
        })
        .collect()
}

fn cleared_line(
    line: SettlementLine,
    post_paid_fees_minor: i64,
    prepaid_fees_minor: i64,
) -> Result<DailySummaryLine, SettlementError> {
    // The split must add up to what the netting reported as not deducted.
    if i128::from(post_paid_fees_minor) + i128::from(prepaid_fees_minor)
        != i128::from(line.fees_not_deducted_minor)
    {
        return Err(invalid(format!(
            "the deferred fees of merchant {:?} in {} do not add up",
            line.merchant_id, line.currency
        )));
    }
    Ok(DailySummaryLine {
        figures: DailyFigures {
            collection_count: line.collection_count,
            collections_minor: line.collections_minor,
            refund_count: line.refund_count,
            refunds_minor: line.refunds_minor,
            real_time_fees_minor: line.fees_minor,
            post_paid_fees_minor,
            prepaid_fees_minor,
            net_minor: line.net_minor,
            ..DailyFigures::default()
        },
        merchant_id: line.merchant_id,
        currency: line.currency,
        batch: None,
    })
}

/// Adds one batch to a line; `None` on overflow.
fn add_batch(figures: &mut DailyFigures, batch: &Batch) -> Option<()> {
    figures.batches = figures.batches.checked_add(1)?;
    if batch.status.is_posted() {
        figures.batches_posted = figures.batches_posted.checked_add(1)?;
        let entries = batch.collection_count.checked_add(batch.refund_count)?;
        figures.settled_entries = figures.settled_entries.checked_add(entries)?;
        figures.settled_fees_minor = figures.settled_fees_minor.checked_add(batch.fees_minor)?;
        figures.settled_net_minor = figures.settled_net_minor.checked_add(batch.net_minor)?;
    }
    Some(())
}

/// Adds a line's figures to a total; `None` on overflow.
fn add_figures(total: &mut DailyFigures, line: &DailyFigures) -> Option<()> {
    *total = DailyFigures {
        collection_count: total.collection_count.checked_add(line.collection_count)?,
        collections_minor: total
            .collections_minor
            .checked_add(line.collections_minor)?,
        refund_count: total.refund_count.checked_add(line.refund_count)?,
        refunds_minor: total.refunds_minor.checked_add(line.refunds_minor)?,
        real_time_fees_minor: total
            .real_time_fees_minor
            .checked_add(line.real_time_fees_minor)?,
        post_paid_fees_minor: total
            .post_paid_fees_minor
            .checked_add(line.post_paid_fees_minor)?,
        prepaid_fees_minor: total
            .prepaid_fees_minor
            .checked_add(line.prepaid_fees_minor)?,
        net_minor: total.net_minor.checked_add(line.net_minor)?,
        batches: total.batches.checked_add(line.batches)?,
        batches_posted: total.batches_posted.checked_add(line.batches_posted)?,
        settled_entries: total.settled_entries.checked_add(line.settled_entries)?,
        settled_fees_minor: total
            .settled_fees_minor
            .checked_add(line.settled_fees_minor)?,
        settled_net_minor: total
            .settled_net_minor
            .checked_add(line.settled_net_minor)?,
    };
    Some(())
}
