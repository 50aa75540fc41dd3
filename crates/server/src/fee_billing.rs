//! 后收 — the month-end run of post-paid fees: once a month is over, sum
//! every merchant's post-paid fees into one bill per currency
//! (`settlement::FeeBillStore::create_fee_bills` marks the fees with it),
//! then collect each issued bill by one journal transfer `fee-bill-{bill}`
//! from the merchant's available balance to platform fee income.
//!
//! Every step is keyed so the run can stop anywhere and run again: bills
//! are unique per merchant, currency and month; a fee is marked by the
//! transaction that creates its bill; a bill's transfer has its key. A
//! bill the merchant's available balance cannot cover stays ISSUED and is
//! collected by a later run.

use crate::AppState;
use engine::EngineError;
use ledger::{
    AccountKind, BatchItem, LedgerError, Operation, OwnerKind, StoreError, TimestampMicros,
    TransferMode,
};
use money::Currency;
use settlement::{
    CreatedFeeBill, FeeBill, FeeBillStatus, FeeBillStore, FeeMonth, NewFeeBill, SettlementError,
    SettlementStoreError,
};
use std::collections::BTreeMap;

/// Bills created or collected per store transaction or ledger batch.
const CHUNK: usize = 2_000;

/// Why a fee bill run stopped.
#[derive(Debug, thiserror::Error)]
pub enum FeeBillRunError {
    #[error("{month} is not over yet (today is {today}): its fees are still coming")]
    MonthNotOver { month: FeeMonth, today: String },
    #[error(transparent)]
    Settlement(#[from] SettlementError),
    #[error(transparent)]
    Store(#[from] SettlementStoreError),
    #[error(transparent)]
    Ledger(#[from] StoreError),
    #[error(transparent)]
    Engine(#[from] EngineError),
}

impl FeeBillRunError {
    pub fn code(&self) -> &'static str {
        match self {
            FeeBillRunError::MonthNotOver { .. } => "FEE_MONTH_NOT_OVER",
            FeeBillRunError::Settlement(error) => error.code(),
            FeeBillRunError::Store(error) => error.code(),
            FeeBillRunError::Ledger(_) => "STORE_ERROR",
            FeeBillRunError::Engine(error) => error.code(),
        }
    }
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FeeBillReport {
    pub bills_created: u64,
    /// Bills of this month an earlier run had already created for fees
    /// found again (a run interrupted between summing and billing).
    pub bills_existing: u64,
    /// Bills collected by this run (this month's or outstanding ones).
    pub bills_paid: u64,
    /// Fees billed by the bills this run created, per currency.
    pub billed_minor: BTreeMap<Currency, i64>,
    /// Collected by this run, per currency.
    pub collected_minor: BTreeMap<Currency, i64>,
    /// Bills left ISSUED, with the reason; a later run collects them.
    pub outstanding: Vec<(i64, String)>,
}

/// Bills the post-paid fees of `month` and collects every issued bill.
pub async fn run(
    state: &AppState,
    month: FeeMonth,
    now: TimestampMicros,
) -> Result<FeeBillReport, FeeBillRunError> {
    let today = settlement::parse_date(&engine::business_date(now)?.to_string())?;
    if !month.is_over(today)? {
        return Err(FeeBillRunError::MonthNotOver {
            month,
            today: today.to_string(),
        });
    }
    let store = state.store();
    let mut report = FeeBillReport::default();
    let high_water = store.payment_fee_high_water().await?;
    let up_to = month.last_day()?;
    let unbilled = store.unbilled_fees(up_to, high_water).await?;
    let bills: Vec<NewFeeBill> = unbilled
        .into_iter()
        .map(|fees| NewFeeBill {
            merchant_id: fees.merchant_id,
            currency: fees.currency,
            month,
            up_to_business_date: up_to,
            up_to_fee_id: high_water,
            charge_count: fees.charge_count,
            fees_minor: fees.fees_minor,
        })
        .collect();
    for chunk in bills.chunks(CHUNK) {
        for CreatedFeeBill { bill, created } in store.create_fee_bills(chunk, now).await? {
            if created {
                report.bills_created += 1;
                *report.billed_minor.entry(bill.currency).or_default() += bill.fees_minor;
            } else {
                report.bills_existing += 1;
            }
        }
    }
    let issued = store
        .fee_bills_in(FeeBillStatus::Issued, usize::MAX)
        .await?;
    for chunk in issued.chunks(CHUNK) {
        collect(state, chunk, now, &mut report).await?;
    }
    Ok(report)
}

/// Collects issued bills in one ledger batch.
async fn collect(
    state: &AppState,
    bills: &[FeeBill],
    now: TimestampMicros,
    report: &mut FeeBillReport,
) -> Result<(), FeeBillRunError> {
    let mut items = Vec::with_capacity(bills.len());
    let mut posted = Vec::with_capacity(bills.len());
    for bill in bills {
        if bill.fees_minor == 0 {
            state.store().mark_fee_bill_paid(bill.id, None, now).await?;
            report.bills_paid += 1;
            continue;
        }
        let available = state
            .payments()
            .account(
                OwnerKind::Merchant,
                &bill.merchant_id,
                AccountKind::MerchantAvailable,
                bill.currency,
            )
            .await?;
        let income = state.payments().fee_income_account(bill.currency).await?;
        items.push(BatchItem::single(Operation::Transfer {
            key: format!("fee-bill-{}", bill.id),
            legs: engine::two_legs(available, income, bill.fees_minor, bill.currency),
            mode: TransferMode::Posted,
            description: format!(
                "post-paid fees of merchant {} for {}",
                bill.merchant_id, bill.month
            ),
        }));
        posted.push(bill);
    }
    let results = state.ledger().submit(items).await?;
    for (bill, result) in posted.into_iter().zip(results) {
        match result {
            Ok(transfer) => {
                state
                    .store()
                    .mark_fee_bill_paid(bill.id, Some(transfer.id), now)
                    .await?;
                report.bills_paid += 1;
                *report.collected_minor.entry(bill.currency).or_default() += bill.fees_minor;
            }
            Err(refused) => report.outstanding.push((bill.id, refusal(&refused))),
        }
    }
    Ok(())
}

fn refusal(error: &LedgerError) -> String {
    format!("{}: {error}", error.code())
}
