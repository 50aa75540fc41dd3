//! What every handler shares: the ledger, the payment service and the fee
//! rule table in force.

use crate::config::{Config, ConfigError};
use crate::handlers::fees::BUILTIN_FEE_RULES;
use axum::extract::FromRef;
use channels::Simulator;
use engine::{AgreementService, PaymentService, PersonalDataKey};
use fees::{
    ChangeOutcome, FeeRuleChange, FeeRuleDefinition, FeeRuleEdit, FeeSchedule, FeeTable,
    FeeTableError,
};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use store::{Ledger, Store};
use tracing::error;

/// Who the changes a process makes to the fee rules at start are logged as.
const START_OPERATOR: &str = "paycore";

/// A rule file given at start (`serve --fee-rules FILE`): its name, for
/// the audit log, and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeeRuleFile {
    pub name: String,
    pub text: String,
}

/// The payment service of a running server: orders and merchants in the
/// store, money through the ledger, the simulator as its channel.
pub type Payments = PaymentService<Store, Ledger, Simulator>;

/// The agreement service (签约) of a running server, on the same store and
/// channels.
pub type Agreements = AgreementService<Store, Simulator>;

/// The state of the API's router.
#[derive(Debug, Clone)]
pub struct AppState {
    ledger: Ledger,
    payments: Arc<Payments>,
    fee_table: FeeTable,
    agreements: Arc<Agreements>,
    serials: Arc<KeyedLocks>,
    http: reqwest::Client,
}

impl AppState {
    /// The state over `ledger`'s store with the built-in configuration
    /// (`config/paycore.toml`).
    pub fn new(ledger: Ledger) -> Result<AppState, ConfigError> {
        Ok(AppState::with_config(ledger, &Config::builtin()?))
    }

    /// The state over `ledger`'s store with `config`'s products, channels,
    /// routes and limits, and the public development key for personal-data
    /// fingerprints.
    pub fn with_config(ledger: Ledger, config: &Config) -> AppState {
        AppState::with_personal_data_key(ledger, config, PersonalDataKey::development())
    }

    /// [`AppState::with_config`] with the key of the fingerprints by which
    /// agreements recognise card and ID numbers.
    pub fn with_personal_data_key(
        ledger: Ledger,
        config: &Config,
        key: PersonalDataKey,
    ) -> AppState {
        let agreements = AgreementService::new(
            ledger.store().clone(),
            config.channels(),
            config.routes.clone(),
            key,
        );
        let mut payments = PaymentService::new(
            ledger.store().clone(),
            ledger.clone(),
            config.channels(),
            config.products.clone(),
        )
        .with_routes(config.routes.clone())
        .with_stored_value(config.stored_value.clone())
        .with_campaigns(config.campaigns.clone())
        .with_refund_ordering(config.refund_ordering)
        .with_payout_parts_max(config.payout_parts_max);
        let fee_table = builtin_fee_table();
        payments = payments.with_fees(fee_table.clone());
        if let Some(limit_minor) = config.member_daily_limit_minor {
            payments = payments.with_member_daily_limit(limit_minor);
        }
        if let Some(limit_minor) = config.card_daily_limit_minor {
            payments = payments.with_card_daily_limit(limit_minor);
        }
        AppState {
            ledger,
            payments: Arc::new(payments),
            fee_table,
            agreements: Arc::new(agreements),
            serials: Arc::new(KeyedLocks::default()),
            http: reqwest::Client::new(),
        }
    }

    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    pub fn store(&self) -> &Store {
        self.ledger.store()
    }

    pub fn payments(&self) -> &Payments {
        &self.payments
    }

    /// The fee rules quotes and payments are priced with. Until
    /// [`AppState::start_fee_rules`] or [`AppState::load_fee_rules`], the
    /// built-in `config/fees.toml` as version 0.
    pub fn fee_table(&self) -> &FeeTable {
        &self.fee_table
    }

    /// [`start_fee_rules`] on this state's store and table.
    pub async fn start_fee_rules(
        &self,
        file: Option<&FeeRuleFile>,
    ) -> Result<ChangeOutcome, FeeTableError> {
        start_fee_rules(self.store(), &self.fee_table, file).await
    }

    /// Puts the stored rule table in force if it is newer than the one in
    /// force, and answers the version in force. The server calls it every
    /// second; commands that run payments without serving call it once.
    pub async fn load_fee_rules(&self) -> Result<i64, FeeTableError> {
        fees::refresh(self.store(), &self.fee_table).await
    }

    pub fn agreements(&self) -> &Agreements {
        &self.agreements
    }

    /// The client notifications are sent with.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Serialises requests with the same merchant and request serial.
    pub fn serials(&self) -> &KeyedLocks {
        &self.serials
    }
}

/// Makes the stored rule table and the one in force agree when a server
/// starts (and before an operator's first change). With `file`, the file's
/// rules replace the stored table as one audited change (none if it says
/// what is stored). Without, a store whose table was never written is
/// seeded from the built-in `config/fees.toml`; from then on the store is
/// the truth. Either way the stored table is then in force in `table`.
pub async fn start_fee_rules(
    database: &Store,
    table: &FeeTable,
    file: Option<&FeeRuleFile>,
) -> Result<ChangeOutcome, FeeTableError> {
    let edit = match file {
        Some(file) => FeeRuleEdit {
            change: FeeRuleChange::ReplaceAll(FeeRuleDefinition::parse_file(&file.text)?),
            operator: START_OPERATOR.to_owned(),
            reason: format!("started with --fee-rules {}", file.name),
        },
        None => FeeRuleEdit {
            change: FeeRuleChange::Seed(FeeRuleDefinition::parse_file(BUILTIN_FEE_RULES)?),
            operator: START_OPERATOR.to_owned(),
            reason: "first start: the built-in config/fees.toml".to_owned(),
        },
    };
    fees::change_rules(database, table, &edit, store::now_micros()).await
}

/// The built-in rules as version 0. Should they not load (a broken build),
/// the table is empty: every quote is `FEE_RULE_NOT_FOUND`, and the log
/// says why.
fn builtin_fee_table() -> FeeTable {
    match FeeSchedule::from_toml(BUILTIN_FEE_RULES) {
        Ok(schedule) => FeeTable::new(schedule, 0),
        Err(load_error) => {
            error!(%load_error, code = load_error.code(), "the built-in fee rules did not load");
            FeeTable::new(FeeSchedule::empty(), 0)
        }
    }
}

impl FromRef<AppState> for Ledger {
    fn from_ref(state: &AppState) -> Ledger {
        state.ledger.clone()
    }
}

/// One async lock per key, held while a request with that key runs, so
/// that concurrent repeats of one request serial wait for the first and
/// then answer exactly as it did. Entries go when their last user does.
#[derive(Debug, Default)]
pub struct KeyedLocks {
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// Holds a key's lock; dropping it releases the lock and, if nobody else
/// waits, the key's entry.
pub struct KeyGuard<'a> {
    owner: &'a KeyedLocks,
    key: String,
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl KeyedLocks {
    pub async fn lock(&self, key: String) -> KeyGuard<'_> {
        let lock = {
            let mut locks = self.locks.lock().unwrap_or_else(PoisonError::into_inner);
            Arc::clone(locks.entry(key.clone()).or_default())
        };
        let guard = lock.lock_owned().await;
        KeyGuard {
            owner: self,
            key,
            guard: Some(guard),
        }
    }
}

impl Drop for KeyGuard<'_> {
    fn drop(&mut self) {
        self.guard.take();
        let mut locks = self
            .owner
            .locks
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if locks
            .get(&self.key)
            .is_some_and(|lock| Arc::strong_count(lock) == 1)
        {
            locks.remove(&self.key);
        }
    }
}
