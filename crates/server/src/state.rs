//! What every handler shares: the ledger and the payment service.

use axum::extract::FromRef;
use channels::Simulator;
use engine::{FundingSource, PaymentService, Product, Route};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use store::{Ledger, Store};

/// The payment service of a running server: orders and merchants in the
/// store, money through the ledger, the simulator as its channel.
pub type Payments = PaymentService<Store, Ledger, Simulator>;

/// Most a member may pay in a day (UTC+8): 50,000.00 CNY.
pub const MEMBER_DAILY_LIMIT_MINOR: i64 = 5_000_000;

/// `simbank` takes cards, bank accounts and wallets up to 50,000.00 at
/// 0.60%; `simpay` takes cards up to 200,000.00 at 0.80%. The cheaper one
/// is used unless the payer's bank is down there or the amount is over its
/// limit.
pub fn default_routes() -> Vec<Route> {
    vec![
        Route {
            channel: "simbank".to_owned(),
            sources: vec![
                FundingSource::Card,
                FundingSource::BankAccount,
                FundingSource::Wallet,
            ],
            amount_minor_max: 5_000_000,
            cost_per_ten_thousand: 60,
        },
        Route {
            channel: "simpay".to_owned(),
            sources: vec![FundingSource::Card],
            amount_minor_max: 20_000_000,
            cost_per_ten_thousand: 80,
        },
    ]
}

/// The state of the API's router.
#[derive(Debug, Clone)]
pub struct AppState {
    ledger: Ledger,
    payments: Arc<Payments>,
    serials: Arc<KeyedLocks>,
    http: reqwest::Client,
}

impl AppState {
    /// The state over `ledger`'s store with the built-in products, two
    /// simulated channels and their routes, and the member daily limit.
    pub fn new(ledger: Ledger) -> AppState {
        let payments = PaymentService::new(
            ledger.store().clone(),
            ledger.clone(),
            vec![Simulator::new("simbank"), Simulator::new("simpay")],
            vec![Product::instant_transfer(), Product::top_up()],
        )
        .with_routes(default_routes())
        .with_member_daily_limit(MEMBER_DAILY_LIMIT_MINOR);
        AppState {
            ledger,
            payments: Arc::new(payments),
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
