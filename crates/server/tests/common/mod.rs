//! What the server's end-to-end suites share: a server state over a fresh
//! SQLite file and, when `PAYCORE_TEST_POSTGRES_URL` is set (always in CI),
//! over a fresh PostgreSQL schema, and the ledger's balances by owner.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

use ledger::{AccountKind, LedgerStore, OwnerKind};
use money::Currency;
use server::AppState;
use store::{Ledger, LedgerOptions, PostgresStore, SqliteStore, Store};

pub const POSTGRES_URL_VARIABLE: &str = "PAYCORE_TEST_POSTGRES_URL";

pub struct Fixture {
    pub state: AppState,
    pub store: Store,
    _directory: Option<tempfile::TempDir>,
}

/// One fixture per store, each with the built-in configuration.
pub async fn fixtures(suite: &str, test: &str) -> Vec<Fixture> {
    fixtures_with(suite, test, &server::Config::builtin().unwrap()).await
}

/// One fixture per store, each with `config`.
pub async fn fixtures_with(suite: &str, test: &str, config: &server::Config) -> Vec<Fixture> {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("paycore.db");
    let sqlite = Store::Sqlite(SqliteStore::open(path.to_str().unwrap()).await.unwrap());
    let mut fixtures = vec![fixture(sqlite, Some(directory), config)];
    match std::env::var(POSTGRES_URL_VARIABLE) {
        Ok(url) => {
            let schema = format!("{suite}_{test}");
            let mut connection: sqlx::PgConnection = sqlx::Connection::connect(&url).await.unwrap();
            sqlx::raw_sql(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                .execute(&mut connection)
                .await
                .unwrap();
            let postgres = PostgresStore::open_in_schema(&url, Some(&schema))
                .await
                .unwrap();
            fixtures.push(fixture(Store::Postgres(postgres), None, config));
        }
        Err(_) => assert!(
            std::env::var_os("CI").is_none(),
            "{POSTGRES_URL_VARIABLE} must be set in CI: the PostgreSQL half may not be skipped"
        ),
    }
    fixtures
}

fn fixture(store: Store, directory: Option<tempfile::TempDir>, config: &server::Config) -> Fixture {
    let ledger = Ledger::start(store.clone(), LedgerOptions::default());
    Fixture {
        state: AppState::with_config(ledger, config),
        store,
        _directory: directory,
    }
}

/// An account's (ledger, available) balance in CNY, found by owner and
/// kind; (0, 0) if it was never opened.
pub async fn balance(
    store: &Store,
    owner_kind: OwnerKind,
    owner: &str,
    kind: AccountKind,
) -> (i64, i64) {
    let accounts = store
        .accounts_of(owner_kind, kind, Currency::CNY)
        .await
        .unwrap();
    accounts.get(owner).map_or((0, 0), |account| {
        let view = account.balance().unwrap();
        (view.ledger_minor, view.available_minor)
    })
}

pub async fn assert_sound(store: &Store) {
    let report = store.check().await.unwrap();
    assert!(report.is_sound(), "{:?}", report.violations);
}
