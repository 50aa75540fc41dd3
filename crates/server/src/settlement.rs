//! 结算 — a settlement run for one date: net every merchant's due, unsettled
//! clearing entries into one batch, post it in the ledger
//! (settlement-pending → available, fees → platform income) and, for a bank
//! destination, pay it out through a 代付 payout of the engine.
//!
//! Every step is keyed so a run can stop anywhere and be run again:
//! batches are unique per merchant, currency and date (a second run of the
//! same date finds them and creates nothing), a batch's entries are settled
//! in the transaction that creates it (no entry settles twice), its ledger
//! transfer has the key `settle-{batch}`, and its payout the request serial
//! `settle-{batch}`.

use crate::AppState;
use engine::{EngineError, FundingSource, PayRequest, PaymentStatus};
use ledger::{
    AccountId, AccountKind, BatchItem, LedgerError, Leg, Operation, OwnerKind, Side, StoreError,
    TimestampMicros, TransferMode,
};
use money::Currency;
use settlement::{
    Batch, BatchDay, BatchMove, BatchStatus, Calendar, ClearingTotals, CreatedBatch, Date,
    Decision, Destination, NewBatch, SettlementConfig, SettlementError, SettlementLine,
    SettlementStore, SettlementStoreError,
};
use std::collections::{BTreeMap, HashMap};

/// The platform owner of the fee income account settlement posts to.
pub use engine::FEE_INCOME_OWNER;
/// The product a bank destination is paid out with.
pub const PAYOUT_PRODUCT: &str = "settlement_payout";
/// Batches posted or moved per store transaction.
const CHUNK: usize = 2_000;
/// Batches created per store transaction. A batch writes one row per
/// business date it takes whole, not one per entry, so a transaction of
/// this many is small; each call moves the settlement version on, so a run
/// makes as few as it can.
const CREATE_CHUNK: usize = 200_000;

/// Why a settlement run stopped.
#[derive(Debug, thiserror::Error)]
pub enum SettlementRunError {
    #[error(transparent)]
    Settlement(#[from] SettlementError),
    #[error(transparent)]
    Store(#[from] SettlementStoreError),
    #[error(transparent)]
    Ledger(#[from] StoreError),
    #[error(transparent)]
    Engine(#[from] EngineError),
}

impl SettlementRunError {
    pub fn code(&self) -> &'static str {
        match self {
            SettlementRunError::Settlement(error) => error.code(),
            SettlementRunError::Store(error) => error.code(),
            SettlementRunError::Ledger(_) => "STORE_ERROR",
            SettlementRunError::Engine(error) => error.code(),
        }
    }
}

/// The stages of a run, for a progress display.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Summing the unsettled entries (one query).
    Netting,
    /// Creating batches and marking their entries.
    Batching,
    /// Posting batches in the ledger.
    Posting,
    /// Paying out batches with a bank destination.
    PayingOut,
}

/// Reports a run's progress: a stage starts with its total, then advances.
pub trait Progress {
    fn start(&self, stage: Stage, total: u64);
    fn advance(&self, stage: Stage, done: u64);
}

/// A progress display that shows nothing.
pub struct Quiet;

impl Progress for Quiet {
    fn start(&self, _: Stage, _: u64) {}
    fn advance(&self, _: Stage, _: u64) {}
}

/// What a run did, in numbers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunReport {
    /// Clearing entries netted into new paying batches.
    pub entries_settled: u64,
    /// Batches of this date found from an earlier run (a re-run).
    pub batches_existing: u64,
    pub batches_paid: u64,
    pub batches_carried: u64,
    pub batches_below_minimum: u64,
    /// Batches whose merchant's settlement-pending money is partly reserved
    /// for refunds in flight: nothing is settled until they finish.
    pub batches_held: u64,
    pub posted: u64,
    pub payouts_sent: u64,
    pub payouts_failed: u64,
    /// Per currency: net paid to merchants, and fees to platform income.
    pub net_minor: BTreeMap<Currency, i64>,
    pub fees_minor: BTreeMap<Currency, i64>,
    /// Batches a step refused, with the reason; they stay where they were
    /// and a later run retries them.
    pub failures: Vec<(i64, String)>,
}

/// Settles every merchant's entries due on `settle_date`.
pub async fn run(
    state: &AppState,
    calendar: &Calendar,
    config: &SettlementConfig,
    settle_date: Date,
    now: TimestampMicros,
    progress: &dyn Progress,
) -> Result<RunReport, SettlementRunError> {
    let store = state.store();
    let mut report = RunReport::default();
    let settle_text = settle_date.to_string();

    progress.start(Stage::Netting, 1);
    let start = store.clearing_high_water().await?;
    let high_water = start.entry_id;
    let totals = store.unsettled_totals(high_water).await?;
    let due = due_totals(totals, calendar, config, settle_date)?;
    let lines = settlement::net(due.totals.iter().cloned())?;
    progress.advance(Stage::Netting, 1);

    // What each merchant's settlement-pending account can give: money
    // reserved for refunds in flight is not settled.
    let mut free: HashMap<(String, Currency), i64> = HashMap::new();
    let currencies: std::collections::BTreeSet<Currency> =
        lines.iter().map(|line| line.currency).collect();
    for currency in currencies {
        let pending = store
            .accounts_of(OwnerKind::Merchant, AccountKind::MerchantPending, currency)
            .await?;
        for (owner, account) in pending {
            let available = account.balance().map_or(0, |view| view.available_minor);
            free.insert((owner, currency), available);
        }
    }

    let mut new_batches = Vec::with_capacity(lines.len());
    for line in lines {
        let terms = config.terms(&line.merchant_id);
        let mut status = match settlement::decide(&line, terms.minimum_minor) {
            Decision::Pay | Decision::Nothing => BatchStatus::Pending,
            Decision::CarryNegative => BatchStatus::Carried,
            Decision::BelowMinimum => BatchStatus::BelowMinimum,
        };
        if status == BatchStatus::Pending {
            let needed = line.posting()?.pending_debit_minor;
            let available = free
                .get(&(line.merchant_id.clone(), line.currency))
                .copied()
                .unwrap_or(0);
            if needed > available {
                status = BatchStatus::Held;
            }
        }
        let Some(days) = due.days.get(&(line.merchant_id.clone(), line.currency)) else {
            continue;
        };
        let days = days
            .iter()
            .map(|(date, day)| BatchDay {
                business_date: date.to_string(),
                entry_count: day.entry_count,
                whole: day.whole,
            })
            .collect();
        new_batches.push(NewBatch {
            settle_date: settle_text.clone(),
            cycle: terms.cycle.to_string(),
            destination: terms.destination.as_str().to_owned(),
            status,
            days,
            up_to_entry_id: high_water,
            reconciled_only: terms.reconciled_only,
            line,
        });
    }

    progress.start(Stage::Batching, new_batches.len() as u64);
    let mut pending = Vec::new();
    let mut version = start.settlement_version;
    // The lowest entry id this run leaves unsettled, so far.
    let mut floor = due.floor.min(high_water.saturating_add(1));
    for chunk in new_batches.chunks(CREATE_CHUNK) {
        let stored = store.create_batches(chunk, version, now).await?;
        version = version.saturating_add(1);
        for CreatedBatch { batch, created } in stored {
            // Entries of a batch found from an earlier run, or of one that
            // holds none, stay unsettled.
            let taken = created && batch.status.holds_entries();
            if !taken
                && let Some(first) = due
                    .first_due
                    .get(&(batch.merchant_id.clone(), batch.currency))
            {
                floor = floor.min(*first);
            }
            if !created {
                report.batches_existing += 1;
            } else {
                match batch.status {
                    BatchStatus::Carried => report.batches_carried += 1,
                    BatchStatus::BelowMinimum => report.batches_below_minimum += 1,
                    BatchStatus::Held => report.batches_held += 1,
                    _ => {
                        report.batches_paid += 1;
                        report.entries_settled += batch.collection_count + batch.refund_count;
                    }
                }
            }
            if batch.status == BatchStatus::Pending {
                pending.push(batch);
            }
        }
        progress.advance(Stage::Batching, chunk.len() as u64);
    }
    // Every entry below the floor is settled now: the next run reads from
    // there.
    store.raise_unsettled_floor(floor).await?;
    // Batches an earlier run created but did not post.
    for batch in store
        .batches_in(BatchStatus::Pending, None, usize::MAX)
        .await?
    {
        if !pending.iter().any(|known| known.id == batch.id) {
            pending.push(batch);
        }
    }

    post_batches(state, &pending, now, progress, &mut report).await?;
    pay_out(state, config, now, progress, &mut report).await?;
    Ok(report)
}

/// The unsettled totals due by the settlement date, with what a batch
/// needs to take them and what the floor needs to leave the rest.
struct Due {
    totals: Vec<ClearingTotals>,
    /// Per merchant and currency, the business dates due and what of each.
    days: HashMap<(String, Currency), BTreeMap<Date, DueDay>>,
    /// Per merchant and currency, the lowest entry id of the due totals:
    /// left unsettled unless a paying batch is created for them.
    first_due: HashMap<(String, Currency), i64>,
    /// The lowest entry id of the totals that are not due (`i64::MAX` for
    /// none): this run leaves them unsettled whatever it creates.
    floor: i64,
}

/// One business date of a merchant's due totals.
#[derive(Debug, Clone, Copy)]
struct DueDay {
    entry_count: u64,
    /// No total of the date was left out (as not yet reconciled).
    whole: bool,
}

fn due_totals(
    totals: Vec<ClearingTotals>,
    calendar: &Calendar,
    config: &SettlementConfig,
    settle_date: Date,
) -> Result<Due, SettlementError> {
    let mut due_dates: HashMap<(settlement::Cycle, Date), Date> = HashMap::new();
    let mut due = Due {
        totals: Vec::with_capacity(totals.len()),
        days: HashMap::new(),
        first_due: HashMap::new(),
        floor: i64::MAX,
    };
    // Dates of which a total was left out as not yet reconciled.
    let mut partial: std::collections::HashSet<(String, Currency, Date)> =
        std::collections::HashSet::new();
    for total in totals {
        let terms = config.terms(&total.merchant_id);
        if terms.reconciled_only && !total.reconciled {
            due.floor = due.floor.min(total.first_entry_id);
            partial.insert((
                total.merchant_id.clone(),
                total.currency,
                total.business_date,
            ));
            continue;
        }
        let key = (terms.cycle, total.business_date);
        let due_date = match due_dates.get(&key) {
            Some(date) => *date,
            None => {
                let date = terms.cycle.due_date(calendar, total.business_date)?;
                due_dates.insert(key, date);
                date
            }
        };
        if due_date > settle_date {
            due.floor = due.floor.min(total.first_entry_id);
            continue;
        }
        let merchant = (total.merchant_id.clone(), total.currency);
        let first = due.first_due.entry(merchant.clone()).or_insert(i64::MAX);
        *first = (*first).min(total.first_entry_id);
        let day = due
            .days
            .entry(merchant)
            .or_default()
            .entry(total.business_date)
            .or_insert(DueDay {
                entry_count: 0,
                whole: true,
            });
        day.entry_count = day.entry_count.saturating_add(total.count);
        due.totals.push(total);
    }
    for ((merchant_id, currency), days) in due.days.iter_mut() {
        for (date, day) in days.iter_mut() {
            if partial.contains(&(merchant_id.clone(), *currency, *date)) {
                day.whole = false;
            }
        }
    }
    // Due dates never fall as business dates rise, so what is due is every
    // unsettled entry up to a merchant's last due business date (and, on
    // reconciled-only terms, reconciled); `create_batches` refuses a batch
    // whose days do not add up to its counts.
    Ok(due)
}

/// The accounts a batch posts to, found in bulk.
struct Accounts {
    pending: HashMap<String, AccountId>,
    available: HashMap<String, AccountId>,
    income: AccountId,
}

async fn accounts(
    state: &AppState,
    currency: Currency,
    merchants: &[&str],
) -> Result<Accounts, SettlementRunError> {
    let store = state.store();
    let ids = |accounts: HashMap<String, ledger::Account>| -> HashMap<String, AccountId> {
        accounts
            .into_iter()
            .map(|(owner, account)| (owner, account.id))
            .collect()
    };
    let mut pending = ids(store
        .accounts_of(OwnerKind::Merchant, AccountKind::MerchantPending, currency)
        .await?);
    let mut available = ids(store
        .accounts_of(
            OwnerKind::Merchant,
            AccountKind::MerchantAvailable,
            currency,
        )
        .await?);
    for merchant in merchants {
        for (kind, known) in [
            (AccountKind::MerchantPending, &mut pending),
            (AccountKind::MerchantAvailable, &mut available),
        ] {
            if !known.contains_key(*merchant) {
                let id = state
                    .payments()
                    .account(OwnerKind::Merchant, merchant, kind, currency)
                    .await?;
                known.insert((*merchant).to_owned(), id);
            }
        }
    }
    let income = state
        .payments()
        .account(
            OwnerKind::Platform,
            FEE_INCOME_OWNER,
            AccountKind::PlatformIncome,
            currency,
        )
        .await?;
    Ok(Accounts {
        pending,
        available,
        income,
    })
}

/// The legs of a batch's transfer; empty when it moves nothing.
fn legs(batch: &Batch, accounts: &Accounts) -> Result<Vec<Leg>, SettlementRunError> {
    let line = line_of(batch)?;
    let posting = line.posting()?;
    let missing = || {
        SettlementRunError::Ledger(StoreError::Corrupt(format!(
            "no account for merchant {}",
            batch.merchant_id
        )))
    };
    let pending = *accounts
        .pending
        .get(&batch.merchant_id)
        .ok_or_else(missing)?;
    let available = *accounts
        .available
        .get(&batch.merchant_id)
        .ok_or_else(missing)?;
    let mut legs = Vec::with_capacity(3);
    let mut leg = |account_id: AccountId, signed_debit: i64| {
        if signed_debit != 0 {
            legs.push(Leg {
                account_id,
                side: if signed_debit > 0 {
                    Side::Debit
                } else {
                    Side::Credit
                },
                amount_minor: signed_debit.unsigned_abs().try_into().unwrap_or(i64::MAX),
                currency: batch.currency,
            });
        }
    };
    leg(pending, posting.pending_debit_minor);
    leg(accounts.income, -posting.income_minor);
    leg(available, -posting.available_credit_minor);
    Ok(legs)
}

/// A stored batch's figures as the netting line they came from.
fn line_of(batch: &Batch) -> Result<SettlementLine, SettlementRunError> {
    let date = |text: &str| {
        settlement::parse_date(text).map_err(|_| {
            SettlementRunError::Ledger(StoreError::Corrupt(format!(
                "batch {}: business date {text:?}",
                batch.id
            )))
        })
    };
    Ok(SettlementLine {
        merchant_id: batch.merchant_id.clone(),
        currency: batch.currency,
        collection_count: batch.collection_count,
        collections_minor: batch.collections_minor,
        refund_count: batch.refund_count,
        refunds_minor: batch.refunds_minor,
        fees_minor: batch.fees_minor,
        fees_not_deducted_minor: batch.fees_not_deducted_minor,
        net_minor: batch.net_minor,
        first_business_date: date(&batch.first_business_date)?,
        last_business_date: date(&batch.last_business_date)?,
    })
}

async fn post_batches(
    state: &AppState,
    pending: &[Batch],
    now: TimestampMicros,
    progress: &dyn Progress,
    report: &mut RunReport,
) -> Result<(), SettlementRunError> {
    progress.start(Stage::Posting, pending.len() as u64);
    let mut by_currency: BTreeMap<&'static str, Vec<&Batch>> = BTreeMap::new();
    for batch in pending {
        by_currency
            .entry(batch.currency.code())
            .or_default()
            .push(batch);
    }
    for batches in by_currency.into_values() {
        let Some(first) = batches.first() else {
            continue;
        };
        let merchants: Vec<&str> = batches
            .iter()
            .map(|batch| batch.merchant_id.as_str())
            .collect();
        let accounts = accounts(state, first.currency, &merchants).await?;
        for chunk in batches.chunks(CHUNK) {
            let mut items = Vec::with_capacity(chunk.len());
            let mut posted = Vec::with_capacity(chunk.len());
            let mut moves = Vec::with_capacity(chunk.len());
            for batch in chunk {
                let legs = legs(batch, &accounts)?;
                if legs.is_empty() {
                    moves.push(BatchMove {
                        id: batch.id,
                        from: BatchStatus::Pending,
                        to: BatchStatus::Posted,
                        transfer_id: None,
                        payout_payment_id: None,
                    });
                    continue;
                }
                items.push(BatchItem::single(Operation::Transfer {
                    key: format!("settle-{}", batch.id),
                    legs,
                    mode: TransferMode::Posted,
                    description: format!(
                        "settlement of merchant {} on {}",
                        batch.merchant_id, batch.settle_date
                    ),
                }));
                posted.push(*batch);
            }
            let results = state.ledger().submit(items).await?;
            for (batch, result) in posted.into_iter().zip(results) {
                match result {
                    Ok(transfer) => moves.push(BatchMove {
                        id: batch.id,
                        from: BatchStatus::Pending,
                        to: BatchStatus::Posted,
                        transfer_id: Some(transfer.id),
                        payout_payment_id: None,
                    }),
                    Err(refused) => report.failures.push((batch.id, refusal(&refused))),
                }
            }
            state.store().move_batches(&moves, now).await?;
            for change in &moves {
                if let Some(batch) = chunk.iter().find(|batch| batch.id == change.id) {
                    report.posted += 1;
                    *report.net_minor.entry(batch.currency).or_default() += batch.net_minor;
                    *report.fees_minor.entry(batch.currency).or_default() += batch.fees_minor;
                }
            }
            progress.advance(Stage::Posting, chunk.len() as u64);
        }
    }
    Ok(())
}

fn refusal(error: &LedgerError) -> String {
    format!("{}: {error}", error.code())
}

/// Pays out posted batches with a bank destination, and finishes payouts
/// an earlier run left PROCESSING.
async fn pay_out(
    state: &AppState,
    config: &SettlementConfig,
    now: TimestampMicros,
    progress: &dyn Progress,
    report: &mut RunReport,
) -> Result<(), SettlementRunError> {
    // Only bank destinations wait after POSTED: payment-account batches
    // are final there and are not read again.
    let bank = Some(Destination::BANK);
    let posted = state
        .store()
        .batches_in(BatchStatus::Posted, bank, usize::MAX)
        .await?;
    let paying = state
        .store()
        .batches_in(BatchStatus::Paying, bank, usize::MAX)
        .await?;
    let to_pay: Vec<Batch> = posted
        .into_iter()
        .filter(|batch| batch.net_minor > 0)
        .chain(paying)
        .collect();
    progress.start(Stage::PayingOut, to_pay.len() as u64);
    for batch in to_pay {
        let Destination::Bank { bank, .. } = &config.terms(&batch.merchant_id).destination else {
            report.failures.push((
                batch.id,
                "the merchant's destination is no longer a bank account".to_owned(),
            ));
            continue;
        };
        // A payout already sent is finished (queried), never sent again.
        let answer = match batch.payout_payment_id {
            Some(payment_id) => {
                state
                    .payments()
                    .resume(&batch.merchant_id, payment_id, now)
                    .await
            }
            None => {
                let request = PayRequest {
                    merchant_id: batch.merchant_id.clone(),
                    out_trade_no: format!("settle-{}", batch.id),
                    subject: format!("settlement of {}", batch.settle_date),
                    amount_minor: batch.net_minor,
                    currency: batch.currency,
                    request_serial: format!("settle-{}", batch.id),
                    product: PAYOUT_PRODUCT.to_owned(),
                    payer_id: batch.merchant_id.clone(),
                    bank: Some(bank.clone()),
                    sources: vec![(FundingSource::BankAccount, batch.net_minor)],
                    campaign: None,
                    agreement_no: None,
                };
                state.payments().pay(&request, now).await
            }
        };
        let view = match answer {
            Ok(view) => view,
            Err(error) => {
                report
                    .failures
                    .push((batch.id, format!("{}: {error}", error.code())));
                continue;
            }
        };
        let payment = &view.payment;
        let to = match payment.status {
            PaymentStatus::Success => BatchStatus::Paid,
            // A payout split into parts of which some were refused: the
            // rest is back in the merchant's available balance, and the
            // operator sees the batch among the failed payouts.
            PaymentStatus::Failed | PaymentStatus::PartiallyPaid => BatchStatus::PayoutFailed,
            PaymentStatus::Created | PaymentStatus::Processing => BatchStatus::Paying,
        };
        if to != batch.status {
            state
                .store()
                .move_batches(
                    &[BatchMove {
                        id: batch.id,
                        from: batch.status,
                        to,
                        transfer_id: None,
                        payout_payment_id: Some(payment.id),
                    }],
                    now,
                )
                .await?;
        }
        match to {
            BatchStatus::Paid | BatchStatus::Paying => report.payouts_sent += 1,
            _ => report.payouts_failed += 1,
        }
        progress.advance(Stage::PayingOut, 1);
    }
    Ok(())
}
