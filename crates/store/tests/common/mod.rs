//! The fixture of the store contract suites: a fresh SQLite file, or a
//! fresh PostgreSQL schema, per test.
#![allow(dead_code)]

use store::{PostgresStore, SqliteStore, Store};

pub const POSTGRES_URL_VARIABLE: &str = "PAYCORE_TEST_POSTGRES_URL";

pub struct Fixture {
    pub store: Store,
    pub raw: Raw,
    _directory: Option<tempfile::TempDir>,
}

/// Where the store's database is, for tests that corrupt it on purpose.
pub enum Raw {
    Sqlite(std::path::PathBuf),
    Postgres { url: String, schema: String },
}

pub async fn sqlite() -> Fixture {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("ledger.db");
    let store = SqliteStore::open(path.to_str().unwrap()).await.unwrap();
    Fixture {
        store: Store::Sqlite(store),
        raw: Raw::Sqlite(path),
        _directory: Some(directory),
    }
}

pub async fn postgres(test: &str) -> Option<Fixture> {
    let Ok(url) = std::env::var(POSTGRES_URL_VARIABLE) else {
        assert!(
            std::env::var_os("CI").is_none(),
            "{POSTGRES_URL_VARIABLE} must be set in CI: the PostgreSQL contract may not be skipped"
        );
        eprintln!("{POSTGRES_URL_VARIABLE} not set: PostgreSQL half of {test} not run");
        return None;
    };
    let schema = format!("contract_{test}");
    let mut connection = sqlx::PgConnection::connect_with_url(&url).await;
    sqlx::raw_sql(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
        .execute(&mut connection)
        .await
        .unwrap();
    let store = PostgresStore::open_in_schema(&url, Some(&schema))
        .await
        .unwrap();
    Some(Fixture {
        store: Store::Postgres(store),
        raw: Raw::Postgres { url, schema },
        _directory: None,
    })
}

/// The same database opened again, as another process would.
pub async fn reopen(raw: &Raw) -> Store {
    match raw {
        Raw::Sqlite(path) => {
            Store::Sqlite(SqliteStore::open(path.to_str().unwrap()).await.unwrap())
        }
        Raw::Postgres { url, schema } => Store::Postgres(
            PostgresStore::open_in_schema(url, Some(schema))
                .await
                .unwrap(),
        ),
    }
}

/// Runs raw SQL on the store's own database, to simulate corruption or to
/// shape test data the store's API does not write.
pub async fn execute(raw: &Raw, sql: &str) {
    use sqlx::Connection;
    match raw {
        Raw::Sqlite(path) => {
            let url = format!("sqlite://{}", path.display());
            let mut connection = sqlx::SqliteConnection::connect(&url).await.unwrap();
            sqlx::raw_sql(sql).execute(&mut connection).await.unwrap();
        }
        Raw::Postgres { url, schema } => {
            let mut connection = sqlx::PgConnection::connect_with_url(url).await;
            sqlx::raw_sql(&format!("SET search_path TO {schema}; {sql}"))
                .execute(&mut connection)
                .await
                .unwrap();
        }
    }
}

pub trait ConnectWithUrl {
    async fn connect_with_url(url: &str) -> Self;
}

impl ConnectWithUrl for sqlx::PgConnection {
    async fn connect_with_url(url: &str) -> Self {
        use sqlx::Connection;
        sqlx::PgConnection::connect(url)
            .await
            .unwrap_or_else(|error| {
                panic!("{POSTGRES_URL_VARIABLE} is set but unreachable: {error}")
            })
    }
}

#[macro_export]
macro_rules! contract {
    ($($test:ident),* $(,)?) => {
        mod sqlite_store {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test($crate::common::sqlite().await).await;
                }
            )*
        }
        mod postgres_store {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    if let Some(fixture) = $crate::common::postgres(stringify!($test)).await {
                        super::$test(fixture).await;
                    }
                }
            )*
        }
    };
}
