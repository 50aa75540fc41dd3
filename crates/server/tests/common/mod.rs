//! The fixture of the server's end-to-end suites: an `AppState` on a fresh
//! SQLite file and, when `PAYCORE_TEST_POSTGRES_URL` is set (always in
//! CI), on a fresh PostgreSQL schema; with the database's address, to break
//! it on purpose behind the store's back; and the ledger's balances by
//! owner.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use engine::{FundingSource, OrderStore, PayRequest, PaymentView};
use ledger::{AccountKind, LedgerStore, OwnerKind};
use money::Currency;
use server::AppState;
use store::{Ledger, LedgerOptions, PostgresStore, SqliteStore, Store};

pub const POSTGRES_URL_VARIABLE: &str = "PAYCORE_TEST_POSTGRES_URL";
/// 2026-11-20 10:00:00 UTC+8.
pub const NOW: i64 = 1_795_140_000_000_000;
pub const SECOND: i64 = 1_000_000;
pub const HOUR: i64 = 3_600 * SECOND;
pub const MERCHANT: &str = "m-shop";

/// Where the store's database is.
pub enum Raw {
    Sqlite(std::path::PathBuf),
    Postgres { url: String, schema: String },
}

pub struct Fixture {
    pub state: AppState,
    pub store: Store,
    pub raw: Raw,
    _directory: Option<tempfile::TempDir>,
}

/// One fixture per store, with the built-in configuration; PostgreSQL
/// schemas are named `{suite}_{test}`.
pub async fn fixtures(schema: &str) -> Vec<Fixture> {
    fixtures_with(schema, &server::Config::builtin().unwrap()).await
}

/// One fixture per store, with `config`.
pub async fn fixtures_with(schema: &str, config: &server::Config) -> Vec<Fixture> {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("paycore.db");
    let sqlite = Store::Sqlite(SqliteStore::open(path.to_str().unwrap()).await.unwrap());
    let mut fixtures = vec![fixture(sqlite, Raw::Sqlite(path), Some(directory), config)];
    match std::env::var(POSTGRES_URL_VARIABLE) {
        Ok(url) => {
            let mut connection: sqlx::PgConnection = sqlx::Connection::connect(&url)
                .await
                .unwrap_or_else(|error| panic!("{POSTGRES_URL_VARIABLE} is unreachable: {error}"));
            sqlx::raw_sql(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                .execute(&mut connection)
                .await
                .unwrap();
            let postgres = PostgresStore::open_in_schema(&url, Some(schema))
                .await
                .unwrap();
            let raw = Raw::Postgres {
                url,
                schema: schema.to_owned(),
            };
            fixtures.push(fixture(Store::Postgres(postgres), raw, None, config));
        }
        Err(_) => assert!(
            std::env::var_os("CI").is_none(),
            "{POSTGRES_URL_VARIABLE} must be set in CI: the PostgreSQL half may not be skipped"
        ),
    }
    fixtures
}

fn fixture(
    store: Store,
    raw: Raw,
    directory: Option<tempfile::TempDir>,
    config: &server::Config,
) -> Fixture {
    let ledger = Ledger::start(store.clone(), LedgerOptions::default());
    Fixture {
        state: AppState::with_config(ledger, config),
        store,
        raw,
        _directory: directory,
    }
}

/// Runs `sql` on the fixture's database behind the store's back.
pub async fn execute(raw: &Raw, sql: &str) {
    use sqlx::Connection;
    match raw {
        Raw::Sqlite(path) => {
            let url = format!("sqlite://{}", path.display());
            let mut connection = sqlx::SqliteConnection::connect(&url).await.unwrap();
            sqlx::raw_sql(sql).execute(&mut connection).await.unwrap();
        }
        Raw::Postgres { url, schema } => {
            let mut connection = sqlx::PgConnection::connect(url).await.unwrap();
            sqlx::raw_sql(&format!("SET search_path TO {schema}; {sql}"))
                .execute(&mut connection)
                .await
                .unwrap();
        }
    }
}

/// Alice pays trade `trade` of the merchant at [`NOW`].
pub async fn pay(
    fixture: &Fixture,
    trade: &str,
    product: &str,
    sources: &[(FundingSource, i64)],
) -> PaymentView {
    fixture
        .state
        .payments()
        .pay(
            &PayRequest {
                merchant_id: MERCHANT.to_owned(),
                out_trade_no: trade.to_owned(),
                subject: "goods".to_owned(),
                amount_minor: sources.iter().map(|(_, amount)| amount).sum(),
                currency: Currency::CNY,
                request_serial: format!("serial-{trade}"),
                product: product.to_owned(),
                payer_id: "alice".to_owned(),
                bank: Some("ICBC".to_owned()),
                sources: sources.to_vec(),
                campaign: None,
                agreement_no: None,
            },
            NOW,
        )
        .await
        .unwrap()
}

/// The payment's instruction of `source`.
pub fn instruction(view: &PaymentView, source: FundingSource) -> i64 {
    view.instructions
        .iter()
        .find(|instruction| instruction.source == source)
        .unwrap()
        .id
}

/// The channel order of an instruction, or of its refund.
pub async fn channel_order(fixture: &Fixture, instruction_id: i64, refund_id: Option<i64>) -> i64 {
    fixture
        .store
        .channel_orders(instruction_id, refund_id)
        .await
        .unwrap()
        .first()
        .unwrap()
        .id
}

/// Stores `finding` of simbank as a discrepancy with `code` and applies
/// `treatment` to it at `at`, as a rule would.
pub async fn treat_finding(
    fixture: &Fixture,
    finding: &recon::Finding,
    code: &str,
    treatment: recon::Treatment,
    at: i64,
) -> recon::Discrepancy {
    use recon::ReconStore;
    let discrepancy = fixture
        .store
        .upsert_discrepancy(
            &recon::DiscrepancyUpdate {
                channel: "simbank",
                finding,
                error_code: code,
                treatment,
                business_day: 20_412,
            },
            at,
        )
        .await
        .unwrap();
    let name = format!("rule:{code}");
    let actor = server::reconciliation::Actor {
        name: &name,
        reason: "test",
    };
    server::reconciliation::treat(&fixture.state, &discrepancy, treatment, &actor, at)
        .await
        .unwrap();
    discrepancy
}

/// The merchant refunds `amount_minor` of trade `trade` at `at`.
pub async fn refund(
    fixture: &Fixture,
    trade: &str,
    serial: &str,
    amount_minor: i64,
    at: i64,
) -> engine::RefundView {
    fixture
        .state
        .payments()
        .refund(
            &engine::RefundRequest {
                merchant_id: MERCHANT.to_owned(),
                out_trade_no: trade.to_owned(),
                refund_serial: serial.to_owned(),
                amount_minor,
                reason: "returned".to_owned(),
                initiator: engine::Initiator::Merchant,
            },
            at,
        )
        .await
        .unwrap()
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
