//! Ledger stores: SQLite (the embedded default) and PostgreSQL (production),
//! both behind [`ledger::LedgerStore`], plus [`Ledger`], the group-commit
//! front that turns many concurrent requests into few durable commits.
//!
//! **Architecture Invariant:** all SQL of paycore's ledger lives in this
//! crate; the posting rules live in `ledger::posting` and are the same for
//! both stores.

mod agreements;
mod batch;
mod check;
mod clearing;
mod collection_batches;
mod committer;
mod escrows;
mod fee_bills;
mod fee_rules;
mod fees;
mod internal;
mod merchants;
mod notifications;
mod orders;
mod payment_fees;
mod postgres;
mod reconciliation;
mod rows;
mod sqlite;
mod sqlite_connections;
mod wal_sync;

pub use clearing::ClearingScan;
pub use committer::{Ledger, LedgerOptions};
pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

use ledger::{
    Account, AccountId, BatchItem, CheckReport, LedgerError, LedgerStore, NewAccount,
    STATEMENT_LINES_MAX, Side, StatementLine, StatementQuery, StoreError, TimestampMicros,
    Transfer, TransferId, TransferKind,
};
use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

/// One versioned schema change, embedded in the binary and run on start.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

/// Where a batch commit spent its time, logged at debug level: the figures
/// to look at when a store's throughput disappoints.
pub(crate) struct BatchTimings {
    started: std::time::Instant,
    loaded_us: u128,
    applied_us: u128,
    written_us: u128,
}

impl BatchTimings {
    pub(crate) fn start() -> Self {
        BatchTimings {
            started: std::time::Instant::now(),
            loaded_us: 0,
            applied_us: 0,
            written_us: 0,
        }
    }

    pub(crate) fn loaded(&mut self) {
        self.loaded_us = self.started.elapsed().as_micros();
    }

    pub(crate) fn applied(&mut self) {
        self.applied_us = self.started.elapsed().as_micros();
    }

    pub(crate) fn written(&mut self) {
        self.written_us = self.started.elapsed().as_micros();
    }

    pub(crate) fn committed(self, backend: &'static str, operations: usize) {
        tracing::debug!(
            backend,
            operations,
            loaded_us = self.loaded_us,
            applied_us = self.applied_us,
            written_us = self.written_us,
            committed_us = self.started.elapsed().as_micros(),
            "batch committed"
        );
    }
}

/// Now, in microseconds since the Unix epoch.
pub fn now_micros() -> TimestampMicros {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_micros()).unwrap_or(i64::MAX)
        })
}

/// A store chosen at run time from a database URL.
#[derive(Debug, Clone)]
pub enum Store {
    Sqlite(SqliteStore),
    Postgres(PostgresStore),
}

impl Store {
    /// Opens `postgres://…` / `postgresql://…` as PostgreSQL; anything else
    /// (`sqlite://file.db` or a plain path) as a SQLite file.
    pub async fn open(database: &str) -> Result<Store, StoreError> {
        if database.starts_with("postgres://") || database.starts_with("postgresql://") {
            Ok(Store::Postgres(PostgresStore::open(database).await?))
        } else {
            let path = database.strip_prefix("sqlite://").unwrap_or(database);
            Ok(Store::Sqlite(SqliteStore::open(path).await?))
        }
    }

    /// Every account of `kind` in `currency` owned by an owner of
    /// `owner_kind`, by owner id: one query where a settlement run would
    /// otherwise look up a hundred thousand merchants one by one.
    pub async fn accounts_of(
        &self,
        owner_kind: ledger::OwnerKind,
        kind: ledger::AccountKind,
        currency: money::Currency,
    ) -> Result<HashMap<String, Account>, StoreError> {
        let sql = format!(
            "SELECT {} FROM accounts WHERE owner_kind = $1 AND kind = $2 AND currency = $3",
            rows::ACCOUNT_COLUMNS
        );
        let found: Vec<rows::AccountRow> = match self {
            Store::Sqlite(store) => {
                sqlx::query_as(&sql)
                    .bind(owner_kind.as_str())
                    .bind(kind.as_str())
                    .bind(currency.code())
                    .fetch_all(&store.readers)
                    .await
            }
            Store::Postgres(store) => {
                sqlx::query_as(&sql)
                    .bind(owner_kind.as_str())
                    .bind(kind.as_str())
                    .bind(currency.code())
                    .fetch_all(&store.pool)
                    .await
            }
        }
        .map_err(rows::database_error)?;
        found
            .into_iter()
            .map(|row| {
                let account = rows::account_from_row(row)?;
                Ok((account.owner_id.clone(), account))
            })
            .collect()
    }

    /// The durability settings in force, as a sentence.
    pub async fn durability(&self) -> Result<String, StoreError> {
        match self {
            Store::Sqlite(store) => store.durability().await,
            Store::Postgres(store) => store.durability().await,
        }
    }
}

macro_rules! delegate {
    ($self:ident, $store:ident => $call:expr) => {
        match $self {
            Store::Sqlite($store) => $call.await,
            Store::Postgres($store) => $call.await,
        }
    };
}

impl LedgerStore for Store {
    async fn create_account(&self, account: &NewAccount) -> Result<Account, StoreError> {
        delegate!(self, store => store.create_account(account))
    }

    async fn account(&self, account_id: AccountId) -> Result<Option<Account>, StoreError> {
        delegate!(self, store => store.account(account_id))
    }

    async fn commit_batch(
        &self,
        items: &[BatchItem],
        now: TimestampMicros,
    ) -> Result<Vec<Result<Transfer, LedgerError>>, StoreError> {
        delegate!(self, store => store.commit_batch(items, now))
    }

    async fn transfer(&self, transfer_id: TransferId) -> Result<Option<Transfer>, StoreError> {
        delegate!(self, store => store.transfer(transfer_id))
    }

    async fn expired_pending(
        &self,
        now: TimestampMicros,
        limit: usize,
    ) -> Result<Vec<TransferId>, StoreError> {
        delegate!(self, store => store.expired_pending(now, limit))
    }

    async fn balance_at(
        &self,
        account_id: AccountId,
        at: TimestampMicros,
    ) -> Result<i64, StoreError> {
        delegate!(self, store => store.balance_at(account_id, at))
    }

    async fn statement(&self, query: StatementQuery) -> Result<Vec<StatementLine>, StoreError> {
        delegate!(self, store => store.statement(query))
    }

    async fn check(&self) -> Result<CheckReport, StoreError> {
        delegate!(self, store => store.check())
    }
}

/// A statement row: transfer id, leg, kind, is credit, amount, currency,
/// pending, balance after, posted at, description.
pub(crate) type StatementRow = (i64, i32, String, bool, i64, String, bool, i64, i64, String);

pub(crate) fn statement_limit(limit: usize) -> i64 {
    i64::try_from(limit.clamp(1, STATEMENT_LINES_MAX)).unwrap_or(1)
}

/// Builds statement lines; `legs` holds (transfer id, account id, is credit)
/// of every leg of the transfers the lines belong to.
pub(crate) fn statement_lines(
    account_id: AccountId,
    rows: Vec<StatementRow>,
    legs: &[(i64, i64, bool)],
) -> Result<Vec<StatementLine>, StoreError> {
    let mut legs_by_transfer: HashMap<i64, Vec<(i64, bool)>> = HashMap::new();
    for (transfer_id, leg_account_id, is_credit) in legs {
        legs_by_transfer
            .entry(*transfer_id)
            .or_default()
            .push((*leg_account_id, *is_credit));
    }
    rows.into_iter()
        .map(|row| {
            let (
                transfer_id,
                leg_index,
                kind,
                is_credit,
                amount_minor,
                currency,
                pending,
                balance,
                posted_at,
                description,
            ) = row;
            let mut counterparty_account_ids: Vec<AccountId> = legs_by_transfer
                .get(&transfer_id)
                .map(|legs| {
                    legs.iter()
                        .filter(|(other, other_is_credit)| {
                            *other != account_id && *other_is_credit != is_credit
                        })
                        .map(|(other, _)| *other)
                        .collect()
                })
                .unwrap_or_default();
            counterparty_account_ids.sort_unstable();
            counterparty_account_ids.dedup();
            Ok(StatementLine {
                transfer_id,
                leg_index: u32::try_from(leg_index)
                    .map_err(|_| StoreError::Corrupt(format!("leg index {leg_index}")))?,
                kind: TransferKind::parse(&kind)
                    .ok_or_else(|| StoreError::Corrupt(format!("transfer kind {kind:?}")))?,
                side: if is_credit { Side::Credit } else { Side::Debit },
                amount_minor,
                currency: rows::currency(&currency)?,
                pending,
                balance_after_minor: balance,
                posted_at,
                description,
                counterparty_account_ids,
            })
        })
        .collect()
}

impl engine::OrderStore for Store {
    async fn create_trade(
        &self,
        trade: &engine::NewTrade,
        now: TimestampMicros,
    ) -> Result<engine::Created<engine::TradeOrder>, engine::OrderStoreError> {
        delegate!(self, store => store.create_trade(trade, now))
    }

    async fn trade(
        &self,
        merchant_id: &str,
        trade_id: engine::TradeId,
    ) -> Result<Option<engine::TradeOrder>, engine::OrderStoreError> {
        delegate!(self, store => store.trade(merchant_id, trade_id))
    }

    async fn trade_by_out_trade_no(
        &self,
        merchant_id: &str,
        out_trade_no: &str,
    ) -> Result<Option<engine::TradeOrder>, engine::OrderStoreError> {
        delegate!(self, store => store.trade_by_out_trade_no(merchant_id, out_trade_no))
    }

    async fn create_payment(
        &self,
        payment: &engine::NewPayment,
        instructions: &[engine::NewInstruction],
        now: TimestampMicros,
    ) -> Result<engine::Created<engine::PaymentWithInstructions>, engine::OrderStoreError> {
        delegate!(self, store => store.create_payment(payment, instructions, now))
    }

    async fn payment(
        &self,
        merchant_id: &str,
        payment_id: engine::PaymentId,
    ) -> Result<Option<engine::PaymentWithInstructions>, engine::OrderStoreError> {
        delegate!(self, store => store.payment(merchant_id, payment_id))
    }

    async fn payment_by_request_serial(
        &self,
        merchant_id: &str,
        request_serial: &str,
    ) -> Result<Option<engine::PaymentWithInstructions>, engine::OrderStoreError> {
        delegate!(self, store => store.payment_by_request_serial(merchant_id, request_serial))
    }

    async fn unfinished_payments(
        &self,
        changed_before: TimestampMicros,
        now: TimestampMicros,
        limit: usize,
    ) -> Result<Vec<engine::PaymentOrder>, engine::OrderStoreError> {
        delegate!(self, store => store.unfinished_payments(changed_before, now, limit))
    }

    async fn create_channel_order(
        &self,
        instruction_id: engine::InstructionId,
        refund_id: Option<engine::RefundId>,
        channel: &str,
        amount_minor: i64,
        now: TimestampMicros,
    ) -> Result<engine::Created<engine::ChannelOrder>, engine::OrderStoreError> {
        delegate!(self, store => store.create_channel_order(instruction_id, refund_id, channel, amount_minor, now))
    }

    async fn create_payout_orders(
        &self,
        instruction_id: engine::InstructionId,
        channel: &str,
        amounts_minor: &[i64],
        now: TimestampMicros,
    ) -> Result<engine::Created<Vec<engine::ChannelOrder>>, engine::OrderStoreError> {
        delegate!(self, store => store.create_payout_orders(instruction_id, channel, amounts_minor, now))
    }

    async fn channel_orders(
        &self,
        instruction_id: engine::InstructionId,
        refund_id: Option<engine::RefundId>,
    ) -> Result<Vec<engine::ChannelOrder>, engine::OrderStoreError> {
        delegate!(self, store => store.channel_orders(instruction_id, refund_id))
    }

    async fn refund_parts(
        &self,
        refund_id: engine::RefundId,
    ) -> Result<Vec<engine::RefundPart>, engine::OrderStoreError> {
        delegate!(self, store => store.refund_parts(refund_id))
    }

    async fn unfinished_refunds(
        &self,
        changed_before: TimestampMicros,
        now: TimestampMicros,
        limit: usize,
    ) -> Result<Vec<engine::RefundOrder>, engine::OrderStoreError> {
        delegate!(self, store => store.unfinished_refunds(changed_before, now, limit))
    }

    async fn defer_check(
        &self,
        level: engine::Level,
        id: i64,
        until: TimestampMicros,
    ) -> Result<(), engine::OrderStoreError> {
        delegate!(self, store => store.defer_check(level, id, until))
    }

    async fn set_channel_transaction_id(
        &self,
        channel_order_id: engine::ChannelOrderId,
        channel_transaction_id: &str,
        booking: Option<engine::ChannelBooking<'_>>,
        now: TimestampMicros,
    ) -> Result<(), engine::OrderStoreError> {
        delegate!(self, store => store.set_channel_transaction_id(channel_order_id, channel_transaction_id, booking, now))
    }

    async fn record_channel_answer(
        &self,
        channel_order_id: engine::ChannelOrderId,
        channel_transaction_id: &str,
        booking: Option<engine::ChannelBooking<'_>>,
        moves: &[engine::Move],
        now: TimestampMicros,
    ) -> Result<(), engine::OrderStoreError> {
        delegate!(self, store => store.record_channel_answer(channel_order_id, channel_transaction_id, booking, moves, now))
    }

    async fn create_refund(
        &self,
        refund: &engine::NewRefund,
        now: TimestampMicros,
    ) -> Result<engine::Created<engine::RefundOrder>, engine::OrderStoreError> {
        delegate!(self, store => store.create_refund(refund, now))
    }

    async fn refund(
        &self,
        merchant_id: &str,
        refund_id: engine::RefundId,
    ) -> Result<Option<engine::RefundOrder>, engine::OrderStoreError> {
        delegate!(self, store => store.refund(merchant_id, refund_id))
    }

    async fn refunds_waiting_review(
        &self,
        limit: usize,
    ) -> Result<Vec<engine::RefundOrder>, engine::OrderStoreError> {
        delegate!(self, store => store.refunds_waiting_review(limit))
    }

    async fn review_refund(
        &self,
        refund: &engine::RefundOrder,
        to: engine::RefundStatus,
        review: &engine::NewRefundReview,
        now: TimestampMicros,
    ) -> Result<(), engine::OrderStoreError> {
        delegate!(self, store => store.review_refund(refund, to, review, now))
    }

    async fn refund_review(
        &self,
        refund_id: engine::RefundId,
    ) -> Result<Option<engine::RefundReview>, engine::OrderStoreError> {
        delegate!(self, store => store.refund_review(refund_id))
    }

    async fn bank_outages(&self) -> Result<Vec<engine::BankOutage>, engine::OrderStoreError> {
        delegate!(self, store => store.bank_outages())
    }

    async fn set_bank_down(
        &self,
        outage: &engine::BankOutage,
        down: bool,
        now: TimestampMicros,
    ) -> Result<(), engine::OrderStoreError> {
        delegate!(self, store => store.set_bank_down(outage, down, now))
    }

    async fn transition<S: engine::Status>(
        &self,
        id: i64,
        from: S,
        to: S,
        now: TimestampMicros,
    ) -> Result<(), engine::OrderStoreError> {
        delegate!(self, store => store.transition(id, from, to, now))
    }

    async fn transitions(
        &self,
        moves: &[engine::Move],
        now: TimestampMicros,
    ) -> Result<(), engine::OrderStoreError> {
        delegate!(self, store => store.transitions(moves, now))
    }

    async fn finish_payment(
        &self,
        payment: &engine::PaymentOrder,
        finish: &engine::PaymentFinish<'_>,
        now: TimestampMicros,
    ) -> Result<(), engine::OrderStoreError> {
        delegate!(self, store => store.finish_payment(payment, finish, now))
    }

    async fn finish_refund(
        &self,
        refund: &engine::RefundOrder,
        to: engine::RefundStatus,
        clearing: Option<&engine::NewClearingEntry>,
        now: TimestampMicros,
    ) -> Result<(), engine::OrderStoreError> {
        delegate!(self, store => store.finish_refund(refund, to, clearing, now))
    }

    async fn mark_trade_paid(
        &self,
        trade_id: engine::TradeId,
        payment_id: engine::PaymentId,
        paid_minor: i64,
        now: TimestampMicros,
    ) -> Result<engine::TradeOrder, engine::OrderStoreError> {
        delegate!(self, store => store.mark_trade_paid(trade_id, payment_id, paid_minor, now))
    }

    async fn record_trade_refund(
        &self,
        trade_id: engine::TradeId,
        amount_minor: i64,
        now: TimestampMicros,
    ) -> Result<engine::TradeOrder, engine::OrderStoreError> {
        delegate!(self, store => store.record_trade_refund(trade_id, amount_minor, now))
    }
}

impl engine::EscrowStore for Store {
    async fn escrow(
        &self,
        merchant_id: &str,
        trade_id: engine::TradeId,
    ) -> Result<Option<engine::Escrow>, engine::OrderStoreError> {
        delegate!(self, store => store.escrow(merchant_id, trade_id))
    }

    async fn begin_release(
        &self,
        merchant_id: &str,
        trade_id: engine::TradeId,
        released_by: &str,
        reason: Option<&str>,
        now: TimestampMicros,
    ) -> Result<engine::Escrow, engine::OrderStoreError> {
        delegate!(self, store => store.begin_release(merchant_id, trade_id, released_by, reason, now))
    }

    async fn finish_release(
        &self,
        escrow: &engine::Escrow,
        clearing: Option<&engine::NewClearingEntry>,
        fee: Option<&engine::NewPaymentFee>,
        now: TimestampMicros,
    ) -> Result<(), engine::OrderStoreError> {
        delegate!(self, store => store.finish_release(escrow, clearing, fee, now))
    }

    async fn escrows_due(
        &self,
        now: TimestampMicros,
        limit: usize,
    ) -> Result<Vec<engine::Escrow>, engine::OrderStoreError> {
        delegate!(self, store => store.escrows_due(now, limit))
    }
}

impl engine::AgreementStore for Store {
    async fn create_agreement(
        &self,
        agreement: &engine::NewAgreement,
        now: TimestampMicros,
    ) -> Result<engine::Created<engine::Agreement>, engine::OrderStoreError> {
        delegate!(self, store => store.create_agreement(agreement, now))
    }

    async fn agreement(
        &self,
        merchant_id: &str,
        agreement_id: engine::AgreementId,
    ) -> Result<Option<engine::Agreement>, engine::OrderStoreError> {
        delegate!(self, store => store.agreement(merchant_id, agreement_id))
    }

    async fn agreement_by_sign_serial(
        &self,
        merchant_id: &str,
        sign_serial: &str,
    ) -> Result<Option<engine::Agreement>, engine::OrderStoreError> {
        delegate!(self, store => store.agreement_by_sign_serial(merchant_id, sign_serial))
    }

    async fn agreement_by_no(
        &self,
        merchant_id: &str,
        agreement_no: &str,
    ) -> Result<Option<engine::Agreement>, engine::OrderStoreError> {
        delegate!(self, store => store.agreement_by_no(merchant_id, agreement_no))
    }

    async fn active_agreements_of_card(
        &self,
        merchant_id: &str,
        member_id: &str,
        card_fingerprint: &str,
    ) -> Result<Vec<engine::Agreement>, engine::OrderStoreError> {
        delegate!(self, store => store.active_agreements_of_card(merchant_id, member_id, card_fingerprint))
    }

    async fn agreements(
        &self,
        merchant_id: &str,
        after_id: engine::AgreementId,
        limit: usize,
    ) -> Result<Vec<engine::Agreement>, engine::OrderStoreError> {
        delegate!(self, store => store.agreements(merchant_id, after_id, limit))
    }

    async fn change_agreement(
        &self,
        agreement_id: engine::AgreementId,
        from: engine::AgreementStatus,
        change: &engine::AgreementChange,
        now: TimestampMicros,
    ) -> Result<engine::Agreement, engine::OrderStoreError> {
        delegate!(self, store => store.change_agreement(agreement_id, from, change, now))
    }

    async fn count_confirm_attempt(
        &self,
        agreement_id: engine::AgreementId,
        attempts_max: i64,
        now: TimestampMicros,
    ) -> Result<Option<i64>, engine::OrderStoreError> {
        delegate!(self, store => store.count_confirm_attempt(agreement_id, attempts_max, now))
    }
}

impl engine::CollectionBatchStore for Store {
    async fn create_collection_batch(
        &self,
        batch: &engine::NewCollectionBatch,
        now: TimestampMicros,
    ) -> Result<engine::Created<engine::CollectionBatch>, engine::OrderStoreError> {
        delegate!(self, store => store.create_collection_batch(batch, now))
    }

    async fn collection_batch_by_no(
        &self,
        merchant_id: &str,
        batch_no: &str,
    ) -> Result<Option<engine::CollectionBatch>, engine::OrderStoreError> {
        delegate!(self, store => store.collection_batch_by_no(merchant_id, batch_no))
    }

    async fn collection_batch(
        &self,
        merchant_id: Option<&str>,
        batch_id: engine::CollectionBatchId,
    ) -> Result<Option<engine::CollectionBatch>, engine::OrderStoreError> {
        delegate!(self, store => store.collection_batch(merchant_id, batch_id))
    }

    async fn batch_lines(
        &self,
        batch_id: engine::CollectionBatchId,
    ) -> Result<Vec<engine::BatchLine>, engine::OrderStoreError> {
        delegate!(self, store => store.batch_lines(batch_id))
    }

    async fn batch_lines_in(
        &self,
        batch_id: engine::CollectionBatchId,
        status: engine::LineStatus,
        limit: usize,
    ) -> Result<Vec<engine::BatchLine>, engine::OrderStoreError> {
        delegate!(self, store => store.batch_lines_in(batch_id, status, limit))
    }

    async fn change_batch_line(
        &self,
        batch_id: engine::CollectionBatchId,
        line_no: i64,
        change: &engine::LineChange,
        now: TimestampMicros,
    ) -> Result<bool, engine::OrderStoreError> {
        delegate!(self, store => store.change_batch_line(batch_id, line_no, change, now))
    }

    async fn running_collection_batches(
        &self,
        limit: usize,
    ) -> Result<Vec<engine::CollectionBatch>, engine::OrderStoreError> {
        delegate!(self, store => store.running_collection_batches(limit))
    }

    async fn close_collection_batch(
        &self,
        batch_id: engine::CollectionBatchId,
        now: TimestampMicros,
    ) -> Result<engine::CollectionBatch, engine::OrderStoreError> {
        delegate!(self, store => store.close_collection_batch(batch_id, now))
    }

    async fn late_batch_lines(
        &self,
        limit: usize,
    ) -> Result<Vec<engine::BatchLine>, engine::OrderStoreError> {
        delegate!(self, store => store.late_batch_lines(limit))
    }

    async fn settle_late_batch_line(
        &self,
        batch_id: engine::CollectionBatchId,
        line_no: i64,
        outcome: engine::LateOutcome,
        refund_id: Option<i64>,
        now: TimestampMicros,
    ) -> Result<bool, engine::OrderStoreError> {
        delegate!(self, store => store.settle_late_batch_line(batch_id, line_no, outcome, refund_id, now))
    }
}

impl engine::MerchantStore for Store {
    async fn create_merchant(
        &self,
        merchant: &engine::NewMerchant,
        signing_key: &engine::Secret<String>,
        now: TimestampMicros,
    ) -> Result<engine::Merchant, engine::OrderStoreError> {
        delegate!(self, store => store.create_merchant(merchant, signing_key, now))
    }

    async fn merchant(
        &self,
        merchant_id: &str,
    ) -> Result<Option<engine::Merchant>, engine::OrderStoreError> {
        delegate!(self, store => store.merchant(merchant_id))
    }

    async fn remember_nonce(
        &self,
        merchant_id: &str,
        nonce: &str,
        now: TimestampMicros,
        forget_before: TimestampMicros,
    ) -> Result<bool, engine::OrderStoreError> {
        delegate!(self, store => store.remember_nonce(merchant_id, nonce, now, forget_before))
    }
}

impl engine::NotificationStore for Store {
    async fn enqueue_notification(
        &self,
        merchant_id: &str,
        payment_id: engine::PaymentId,
        event: engine::NotificationEvent,
        now: TimestampMicros,
    ) -> Result<(), engine::OrderStoreError> {
        delegate!(self, store => store.enqueue_notification(merchant_id, payment_id, event, now))
    }

    async fn due_notifications(
        &self,
        now: TimestampMicros,
        limit: usize,
    ) -> Result<Vec<engine::Notification>, engine::OrderStoreError> {
        delegate!(self, store => store.due_notifications(now, limit))
    }

    async fn record_notification_attempt(
        &self,
        notification: &engine::Notification,
        delivery: &engine::Delivery,
        now: TimestampMicros,
    ) -> Result<bool, engine::OrderStoreError> {
        delegate!(self, store => store.record_notification_attempt(notification, delivery, now))
    }

    async fn payment_notifications(
        &self,
        payment_id: engine::PaymentId,
    ) -> Result<Vec<engine::Notification>, engine::OrderStoreError> {
        delegate!(self, store => store.payment_notifications(payment_id))
    }
}

impl recon::ReconStore for Store {
    async fn record_statement_file(
        &self,
        file: &recon::NewStatementFile,
        now: TimestampMicros,
    ) -> Result<recon::StatementFile, recon::ReconStoreError> {
        delegate!(self, store => store.record_statement_file(file, now))
    }

    async fn statement_files(
        &self,
        channel: &str,
        business_day: i32,
    ) -> Result<Vec<recon::StatementFile>, recon::ReconStoreError> {
        delegate!(self, store => store.statement_files(channel, business_day))
    }

    async fn snapshot_page(
        &self,
        channel: &str,
        business_date: &str,
        from: TimestampMicros,
        to: TimestampMicros,
        after_id: i64,
        limit: u32,
    ) -> Result<Vec<recon::ChannelOrderRecord>, recon::ReconStoreError> {
        delegate!(self, store => store.snapshot_page(channel, business_date, from, to, after_id, limit))
    }

    async fn channel_orders_by_id(
        &self,
        ids: &[i64],
    ) -> Result<Vec<recon::ChannelOrderRecord>, recon::ReconStoreError> {
        delegate!(self, store => store.channel_orders_by_id(ids))
    }

    async fn channel_order_owner(
        &self,
        channel_order_id: i64,
    ) -> Result<Option<recon::ChannelOrderOwner>, recon::ReconStoreError> {
        delegate!(self, store => store.channel_order_owner(channel_order_id))
    }

    async fn save_run(&self, run: &recon::ReconRun) -> Result<(), recon::ReconStoreError> {
        delegate!(self, store => store.save_run(run))
    }

    async fn runs(&self, channel: &str) -> Result<Vec<recon::ReconRun>, recon::ReconStoreError> {
        delegate!(self, store => store.runs(channel))
    }

    async fn upsert_discrepancy(
        &self,
        update: &recon::DiscrepancyUpdate<'_>,
        now: TimestampMicros,
    ) -> Result<recon::Discrepancy, recon::ReconStoreError> {
        delegate!(self, store => store.upsert_discrepancy(update, now))
    }

    async fn discrepancy(
        &self,
        id: i64,
    ) -> Result<Option<recon::Discrepancy>, recon::ReconStoreError> {
        delegate!(self, store => store.discrepancy(id))
    }

    async fn discrepancies(
        &self,
        query: &recon::DiscrepancyQuery,
    ) -> Result<Vec<recon::Discrepancy>, recon::ReconStoreError> {
        delegate!(self, store => store.discrepancies(query))
    }

    async fn change_discrepancy(
        &self,
        action: &recon::DiscrepancyAction,
    ) -> Result<bool, recon::ReconStoreError> {
        delegate!(self, store => store.change_discrepancy(action))
    }

    async fn actions(
        &self,
        discrepancy_id: i64,
    ) -> Result<Vec<recon::DiscrepancyAction>, recon::ReconStoreError> {
        delegate!(self, store => store.actions(discrepancy_id))
    }

    async fn confirm_channel_orders(
        &self,
        channel_order_ids: &[i64],
    ) -> Result<u64, recon::ReconStoreError> {
        delegate!(self, store => store.confirm_channel_orders(channel_order_ids))
    }

    async fn internal_check(&self) -> Result<recon::InternalReport, recon::ReconStoreError> {
        delegate!(self, store => store.internal_check())
    }
}

impl engine::PaymentFeeStore for Store {
    async fn reserve_payment_fee(
        &self,
        fee: &engine::NewPaymentFee,
        now: TimestampMicros,
    ) -> Result<engine::Created<engine::PaymentFee>, engine::OrderStoreError> {
        delegate!(self, store => store.reserve_payment_fee(fee, now))
    }

    async fn payment_fees(
        &self,
        payment_id: i64,
    ) -> Result<Vec<engine::PaymentFee>, engine::OrderStoreError> {
        delegate!(self, store => store.payment_fees(payment_id))
    }

    async fn record_fee_deposit(
        &self,
        deposit: &engine::NewFeeDeposit,
        now: TimestampMicros,
    ) -> Result<engine::FeeDepositRecord, engine::OrderStoreError> {
        delegate!(self, store => store.record_fee_deposit(deposit, now))
    }

    async fn mark_fee_deposit_posted(
        &self,
        deposit_id: i64,
        transfer_id: i64,
        now: TimestampMicros,
    ) -> Result<(), engine::OrderStoreError> {
        delegate!(self, store => store.mark_fee_deposit_posted(deposit_id, transfer_id, now))
    }
}

impl ::fees::FeeCounterStore for Store {
    async fn fee_counter(
        &self,
        key: &::fees::CounterKey,
    ) -> Result<::fees::PeriodUsage, ::fees::FeeCounterError> {
        delegate!(self, store => store.fee_counter(key))
    }

    async fn record_fee_charge(
        &self,
        charge: &::fees::FeeCharge,
        now: TimestampMicros,
    ) -> Result<::fees::Recorded, ::fees::FeeCounterError> {
        delegate!(self, store => store.record_fee_charge(charge, now))
    }

    async fn release_fee_charge(
        &self,
        charge_key: &str,
        now: TimestampMicros,
    ) -> Result<bool, ::fees::FeeCounterError> {
        delegate!(self, store => store.release_fee_charge(charge_key, now))
    }
}

impl ::fees::FeeRuleStore for Store {
    async fn fee_rule_version(&self) -> Result<i64, StoreError> {
        delegate!(self, store => store.fee_rule_version())
    }

    async fn fee_rules(&self) -> Result<::fees::StoredFeeRules, StoreError> {
        delegate!(self, store => store.fee_rules())
    }

    async fn commit_fee_rules(&self, commit: &::fees::FeeRuleCommit) -> Result<bool, StoreError> {
        delegate!(self, store => store.commit_fee_rules(commit))
    }

    async fn fee_rule_history(
        &self,
        query: &::fees::FeeRuleHistoryQuery,
    ) -> Result<Vec<::fees::FeeRuleHistoryEntry>, StoreError> {
        delegate!(self, store => store.fee_rule_history(query))
    }
}

impl settlement::SettlementStore for Store {
    async fn clearing_high_water(
        &self,
    ) -> Result<settlement::ClearingHighWater, settlement::SettlementStoreError> {
        delegate!(self, store => store.clearing_high_water())
    }

    async fn unsettled_totals(
        &self,
        up_to_entry_id: i64,
    ) -> Result<Vec<settlement::ClearingTotals>, settlement::SettlementStoreError> {
        delegate!(self, store => store.unsettled_totals(up_to_entry_id))
    }

    async fn create_batches(
        &self,
        batches: &[settlement::NewBatch],
        settlement_version: i64,
        now: TimestampMicros,
    ) -> Result<Vec<settlement::CreatedBatch>, settlement::SettlementStoreError> {
        delegate!(self, store => store.create_batches(batches, settlement_version, now))
    }

    async fn raise_unsettled_floor(
        &self,
        entry_id: i64,
    ) -> Result<(), settlement::SettlementStoreError> {
        delegate!(self, store => store.raise_unsettled_floor(entry_id))
    }

    async fn clearing_entries(
        &self,
        merchant_id: &str,
        business_date: &str,
    ) -> Result<Vec<settlement::ClearingEntry>, settlement::SettlementStoreError> {
        delegate!(self, store => store.clearing_entries(merchant_id, business_date))
    }

    async fn clearing_totals_of_date(
        &self,
        business_date: &str,
    ) -> Result<Vec<settlement::ClearingTotals>, settlement::SettlementStoreError> {
        delegate!(self, store => store.clearing_totals_of_date(business_date))
    }

    async fn batches(
        &self,
        settle_date: &str,
    ) -> Result<Vec<settlement::Batch>, settlement::SettlementStoreError> {
        delegate!(self, store => store.batches(settle_date))
    }

    async fn batches_in(
        &self,
        status: settlement::BatchStatus,
        destination: Option<&str>,
        limit: usize,
    ) -> Result<Vec<settlement::Batch>, settlement::SettlementStoreError> {
        delegate!(self, store => store.batches_in(status, destination, limit))
    }

    async fn move_batches(
        &self,
        moves: &[settlement::BatchMove],
        now: TimestampMicros,
    ) -> Result<(), settlement::SettlementStoreError> {
        delegate!(self, store => store.move_batches(moves, now))
    }
}

impl settlement::FeeBillStore for Store {
    async fn payment_fee_high_water(&self) -> Result<i64, settlement::SettlementStoreError> {
        delegate!(self, store => store.payment_fee_high_water())
    }

    async fn unbilled_fees(
        &self,
        up_to_business_date: settlement::Date,
        up_to_fee_id: i64,
    ) -> Result<Vec<settlement::UnbilledFees>, settlement::SettlementStoreError> {
        delegate!(self, store => store.unbilled_fees(up_to_business_date, up_to_fee_id))
    }

    async fn create_fee_bills(
        &self,
        bills: &[settlement::NewFeeBill],
        now: TimestampMicros,
    ) -> Result<Vec<settlement::CreatedFeeBill>, settlement::SettlementStoreError> {
        delegate!(self, store => store.create_fee_bills(bills, now))
    }

    async fn fee_bills(
        &self,
        month: settlement::FeeMonth,
    ) -> Result<Vec<settlement::FeeBill>, settlement::SettlementStoreError> {
        delegate!(self, store => store.fee_bills(month))
    }

    async fn fee_bills_in(
        &self,
        status: settlement::FeeBillStatus,
        limit: usize,
    ) -> Result<Vec<settlement::FeeBill>, settlement::SettlementStoreError> {
        delegate!(self, store => store.fee_bills_in(status, limit))
    }

    async fn fee_bill_lines(
        &self,
        bill_id: i64,
    ) -> Result<Vec<settlement::FeeBillLine>, settlement::SettlementStoreError> {
        delegate!(self, store => store.fee_bill_lines(bill_id))
    }

    async fn mark_fee_bill_paid(
        &self,
        bill_id: i64,
        transfer_id: Option<i64>,
        now: TimestampMicros,
    ) -> Result<(), settlement::SettlementStoreError> {
        delegate!(self, store => store.mark_fee_bill_paid(bill_id, transfer_id, now))
    }
}
