//! What every handler shares: the ledger and the payment service.

use crate::config::{Config, ConfigError};
use axum::extract::FromRef;
use channels::Simulator;
use engine::{AgreementService, PaymentService, PersonalDataKey};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use store::{Ledger, Store};

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
        .with_routes(config.routes.clone());
        if let Some(schedule) = crate::FeeRules::builtin().shared() {
            payments = payments.with_fees(schedule);
        }
        if let Some(limit_minor) = config.member_daily_limit_minor {
            payments = payments.with_member_daily_limit(limit_minor);
        }
        AppState {
            ledger,
            payments: Arc::new(payments),
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
