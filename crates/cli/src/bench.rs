//! `paycore bench ledger`: durable transfers per second, paycore against a
//! naive baseline measured in the same run.

use anyhow::{Context, Result, bail};
use ledger::{
    AccountKind, BatchItem, LedgerStore, Leg, NewAccount, Operation, Overdraft, OwnerKind, Side,
    TransferMode,
};
use money::Currency;
use sqlx::Connection;
use std::sync::Arc;
use std::time::Instant;
use store::{Ledger, LedgerOptions, PostgresStore, SqliteStore, Store};

/// Opening balance of every benchmark account: no transfer ever fails.
const OPENING_BALANCE_MINOR: i64 = 1_000_000_000_000;
/// The largest batch the ledger takes, less a margin for linked chains.
const BATCH_SIZE_MAX: usize = 8_189;
const SCHEMA: &str = "paycore_bench";
const NAIVE_SCHEMA: &str = "paycore_bench_naive";

#[derive(Debug, Clone, clap::Args)]
pub struct LedgerBenchArgs {
    /// Transfers posted per batched case.
    #[arg(long, default_value_t = 100_000)]
    transfers: usize,
    /// Accounts the transfers move money between.
    #[arg(long, default_value_t = 10_000)]
    accounts: usize,
    /// Batch sizes for the batched cases (at most 8189).
    #[arg(long, value_delimiter = ',', default_value = "8189,100")]
    batch_sizes: Vec<usize>,
    /// Concurrent HTTP clients posting one transfer per request.
    #[arg(long, default_value_t = 64)]
    clients: usize,
    /// Transfers posted through the HTTP API.
    #[arg(long, default_value_t = 20_000)]
    http_transfers: usize,
    /// Transfers posted by the naive baseline (enough for a steady rate).
    #[arg(long, default_value_t = 20_000)]
    baseline_transfers: usize,
    /// Concurrent connections of the naive baseline.
    #[arg(long, default_value_t = 8)]
    baseline_connections: usize,
    /// PostgreSQL for cases (b) and (c); without it they are not run.
    #[arg(long, env = "PAYCORE_BENCH_POSTGRES_URL")]
    postgres: Option<String>,
}

/// One measured case.
struct Measurement {
    case: String,
    transfers: usize,
    seconds: f64,
}

impl Measurement {
    fn rate(&self) -> f64 {
        self.transfers as f64 / self.seconds.max(1e-9)
    }
}

/// A deterministic pseudo-random sequence (SplitMix64), so every run posts
/// the same transfers.
struct Sequence(u64);

impl Sequence {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut value = self.0;
        value = (value ^ (value >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        value = (value ^ (value >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        value ^ (value >> 31)
    }

    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound as u64) as usize
    }
}

pub async fn run(arguments: LedgerBenchArgs) -> Result<()> {
    if arguments.accounts < 2 || arguments.transfers == 0 {
        bail!("need at least 2 accounts and 1 transfer");
    }
    if let Some(size) = arguments
        .batch_sizes
        .iter()
        .find(|size| **size == 0 || **size > BATCH_SIZE_MAX)
    {
        bail!("batch size {size} is outside 1..={BATCH_SIZE_MAX}");
    }
    let directory = std::env::temp_dir().join(format!("paycore-bench-{}", std::process::id()));
    std::fs::create_dir_all(&directory).context("creating the benchmark directory")?;
    let outcome = run_cases(&arguments, &directory).await;
    let _ = std::fs::remove_dir_all(&directory);
    let measurements = outcome?;
    report(&measurements);
    Ok(())
}

async fn run_cases(
    arguments: &LedgerBenchArgs,
    directory: &std::path::Path,
) -> Result<Vec<Measurement>> {
    let mut measurements = Vec::new();
    println!(
        "paycore bench ledger: {} transfers between {} accounts per batched case, durable commits",
        arguments.transfers, arguments.accounts
    );
    let path = directory.join("ledger.db");
    let sqlite = Store::Sqlite(SqliteStore::open(&path.to_string_lossy()).await?);
    println!("  durability: {}", sqlite.durability().await?);
    let sqlite_accounts = open_accounts(&sqlite, arguments.accounts).await?;
    batched_cases(
        &sqlite,
        &sqlite_accounts,
        "a",
        "SQLite",
        arguments,
        &mut measurements,
    )
    .await?;
    if let Some(url) = &arguments.postgres {
        let postgres = Store::Postgres(fresh_postgres(url).await?);
        println!("  durability: {}", postgres.durability().await?);
        let accounts = open_accounts(&postgres, arguments.accounts).await?;
        batched_cases(
            &postgres,
            &accounts,
            "b",
            "PostgreSQL",
            arguments,
            &mut measurements,
        )
        .await?;
    }
    measurements.push(http(sqlite, &sqlite_accounts.members, arguments).await?);
    match &arguments.postgres {
        Some(url) => measurements.push(naive_baseline(url, arguments).await?),
        None => println!("  no --postgres URL: PostgreSQL cases (b) and baseline (c) not run"),
    }
    Ok(measurements)
}

async fn fresh_postgres(url: &str) -> Result<PostgresStore> {
    let mut connection = sqlx::PgConnection::connect(url)
        .await
        .context("connecting to PostgreSQL")?;
    sqlx::raw_sql(&format!("DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
        .execute(&mut connection)
        .await?;
    Ok(PostgresStore::open_in_schema(url, Some(SCHEMA)).await?)
}

fn new_account(
    kind: AccountKind,
    owner_kind: OwnerKind,
    owner_id: String,
    overdraft: Overdraft,
) -> NewAccount {
    NewAccount {
        subject_code: match kind {
            AccountKind::Equity => "4001",
            AccountKind::PlatformIncome => "6001",
            _ => "2241",
        }
        .to_owned(),
        subject_class: kind.default_subject_class(),
        kind,
        owner_kind,
        owner_id,
        currency: Currency::CNY,
        overdraft,
    }
}

/// Opens the accounts and funds every member one from equity.
/// The accounts the transfers of one store move money between.
struct BenchAccounts {
    members: Vec<i64>,
    /// The platform fee income account of the hot-account cases.
    income: i64,
}

async fn open_accounts(store: &Store, count: usize) -> Result<BenchAccounts> {
    let equity = store
        .create_account(&new_account(
            AccountKind::Equity,
            OwnerKind::Platform,
            "bench".into(),
            Overdraft::Unlimited,
        ))
        .await?;
    let income = store
        .create_account(&new_account(
            AccountKind::PlatformIncome,
            OwnerKind::Platform,
            "bench-fees".into(),
            Overdraft::default(),
        ))
        .await?;
    let mut accounts = Vec::with_capacity(count);
    for index in 0..count {
        let account = store
            .create_account(&new_account(
                AccountKind::MemberCash,
                OwnerKind::Member,
                format!("m{index}"),
                Overdraft::default(),
            ))
            .await?;
        accounts.push(account.id);
    }
    for chunk in accounts.chunks(BATCH_SIZE_MAX) {
        let items: Vec<BatchItem> = chunk
            .iter()
            .map(|account_id| {
                BatchItem::single(transfer(
                    format!("open-{account_id}"),
                    equity.id,
                    *account_id,
                    OPENING_BALANCE_MINOR,
                    None,
                ))
            })
            .collect();
        store.commit_batch(&items, store::now_micros()).await?;
    }
    Ok(BenchAccounts {
        members: accounts,
        income: income.id,
    })
}

/// A two-leg transfer, or three legs with a fee to `fee_account`.
fn transfer(
    key: String,
    debit: i64,
    credit: i64,
    amount_minor: i64,
    fee_account: Option<i64>,
) -> Operation {
    let leg = |account_id, side, amount_minor| Leg {
        account_id,
        side,
        amount_minor,
        currency: Currency::CNY,
    };
    let legs = match fee_account {
        None => vec![
            leg(debit, Side::Debit, amount_minor),
            leg(credit, Side::Credit, amount_minor),
        ],
        Some(fee) => vec![
            leg(debit, Side::Debit, amount_minor),
            leg(credit, Side::Credit, amount_minor - 1),
            leg(fee, Side::Credit, 1),
        ],
    };
    Operation::Transfer {
        key,
        legs,
        mode: TransferMode::Posted,
        description: String::new(),
    }
}

fn random_transfer(
    sequence: &mut Sequence,
    accounts: &[i64],
    key: &str,
    fee: Option<i64>,
) -> BatchItem {
    let debit = sequence.below(accounts.len());
    let credit = (debit + 1 + sequence.below(accounts.len() - 1)) % accounts.len();
    let amount_minor = 2 + sequence.below(10_000) as i64;
    BatchItem::single(transfer(
        key.to_owned(),
        accounts[debit],
        accounts[credit],
        amount_minor,
        fee,
    ))
}

/// Every batch size, without and with the hot fee account, on one store
/// and one set of accounts.
async fn batched_cases(
    store: &Store,
    accounts: &BenchAccounts,
    label: &str,
    store_name: &str,
    arguments: &LedgerBenchArgs,
    measurements: &mut Vec<Measurement>,
) -> Result<()> {
    for hot in [false, true] {
        for batch_size in &arguments.batch_sizes {
            let case = Case {
                label,
                store_name,
                batch_size: *batch_size,
                hot,
            };
            measurements.push(batched(store, accounts, &case, arguments).await?);
        }
    }
    Ok(())
}

/// One batched case.
struct Case<'a> {
    label: &'a str,
    store_name: &'a str,
    batch_size: usize,
    hot: bool,
}

async fn batched(
    store: &Store,
    accounts: &BenchAccounts,
    case: &Case<'_>,
    arguments: &LedgerBenchArgs,
) -> Result<Measurement> {
    let Case {
        label,
        store_name,
        batch_size,
        hot,
    } = *case;
    let fee = hot.then_some(accounts.income);
    let mut sequence = Sequence(42);
    let prefix = format!("{batch_size}-{hot}");
    let items: Vec<BatchItem> = (0..arguments.transfers)
        .map(|index| {
            random_transfer(
                &mut sequence,
                &accounts.members,
                &format!("{prefix}-{index}"),
                fee,
            )
        })
        .collect();
    let started = Instant::now();
    let mut failed = 0;
    for chunk in items.chunks(batch_size) {
        let results = store.commit_batch(chunk, store::now_micros()).await?;
        failed += results.iter().filter(|result| result.is_err()).count();
    }
    let seconds = started.elapsed().as_secs_f64();
    if failed > 0 {
        bail!("{failed} benchmark transfers failed");
    }
    let hot_label = if hot { ", hot fee account" } else { "" };
    let measurement = Measurement {
        case: format!("({label}) paycore batched on {store_name}, batch {batch_size}{hot_label}"),
        transfers: arguments.transfers,
        seconds,
    };
    println!(
        "  {:<62} {:>10.0} transfers/s",
        measurement.case,
        measurement.rate()
    );
    Ok(measurement)
}

/// One transfer per HTTP request from many concurrent clients: group
/// commit across requests is what carries this case.
async fn http(store: Store, members: &[i64], arguments: &LedgerBenchArgs) -> Result<Measurement> {
    let accounts = members.to_vec();
    let ledger = Ledger::start(store, LedgerOptions::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let server = tokio::spawn(server::serve(listener, ledger));
    let client = reqwest::Client::new();
    let accounts = Arc::new(accounts);
    let clients = arguments.clients.max(1);
    let per_client = arguments.http_transfers.div_ceil(clients);
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(clients);
    for client_index in 0..clients {
        let (client, accounts) = (client.clone(), Arc::clone(&accounts));
        let url = format!("http://{address}/v1/transfers");
        tasks.push(tokio::spawn(async move {
            let mut sequence = Sequence(client_index as u64);
            for offset in 0..per_client {
                let index = client_index * per_client + offset;
                let debit_index = sequence.below(accounts.len());
                let credit_index = (debit_index + 1 + sequence.below(accounts.len() - 1)) % accounts.len();
                let (debit, credit) = (accounts[debit_index], accounts[credit_index]);
                let body = serde_json::json!({
                    "key": format!("h{index}"),
                    "legs": [
                        {"account_id": debit, "side": "debit", "amount_minor": 100, "currency": "CNY"},
                        {"account_id": credit, "side": "credit", "amount_minor": 100, "currency": "CNY"},
                    ],
                });
                let response = client.post(&url).json(&body).send().await?;
                if !response.status().is_success() {
                    bail!("HTTP {}: {}", response.status(), response.text().await.unwrap_or_default());
                }
            }
            Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    let seconds = started.elapsed().as_secs_f64();
    server.abort();
    let measurement = Measurement {
        case: format!("(d) paycore HTTP API on SQLite, batch 1, {clients} clients"),
        transfers: per_client * clients,
        seconds,
    };
    println!(
        "  {:<62} {:>10.0} transfers/s",
        measurement.case,
        measurement.rate()
    );
    Ok(measurement)
}

/// The hand-rolled way: one database transaction per transfer that locks
/// both accounts with `SELECT … FOR UPDATE`, checks the balance, updates
/// both balances and inserts the transfer.
async fn naive_baseline(url: &str, arguments: &LedgerBenchArgs) -> Result<Measurement> {
    let mut connection = sqlx::PgConnection::connect(url).await?;
    sqlx::raw_sql(&format!(
        "DROP SCHEMA IF EXISTS {NAIVE_SCHEMA} CASCADE; CREATE SCHEMA {NAIVE_SCHEMA}; \
         CREATE TABLE {NAIVE_SCHEMA}.accounts (id BIGINT PRIMARY KEY, balance_minor BIGINT NOT NULL); \
         CREATE TABLE {NAIVE_SCHEMA}.transfers (id BIGSERIAL PRIMARY KEY, key TEXT UNIQUE NOT NULL, \
           debit_id BIGINT NOT NULL, credit_id BIGINT NOT NULL, amount_minor BIGINT NOT NULL); \
         INSERT INTO {NAIVE_SCHEMA}.accounts SELECT g, {OPENING_BALANCE_MINOR} FROM generate_series(1, {}) g",
        arguments.accounts
    ))
    .execute(&mut connection)
    .await?;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(u32::try_from(arguments.baseline_connections.max(1)).unwrap_or(8))
        .connect_with(
            url.parse::<sqlx::postgres::PgConnectOptions>()?
                .options([("synchronous_commit", "on")]),
        )
        .await?;
    let workers = arguments.baseline_connections.max(1);
    let per_worker = arguments.baseline_transfers.div_ceil(workers);
    let accounts = i64::try_from(arguments.accounts)?;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..workers {
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            let mut sequence = Sequence(1000 + worker as u64);
            for offset in 0..per_worker {
                let debit = 1 + (sequence.next() % accounts as u64) as i64;
                let credit = 1 + (debit % accounts);
                naive_transfer(
                    &pool,
                    format!("n{}", worker * per_worker + offset),
                    debit,
                    credit,
                    100,
                )
                .await?;
            }
            Ok::<(), anyhow::Error>(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    let seconds = started.elapsed().as_secs_f64();
    let measurement = Measurement {
        case: format!(
            "(c) naive baseline on PostgreSQL, 1 transaction per transfer, {workers} connections"
        ),
        transfers: per_worker * workers,
        seconds,
    };
    println!(
        "  {:<62} {:>10.0} transfers/s",
        measurement.case,
        measurement.rate()
    );
    Ok(measurement)
}

async fn naive_transfer(
    pool: &sqlx::PgPool,
    key: String,
    debit: i64,
    credit: i64,
    amount_minor: i64,
) -> Result<()> {
    let mut transaction = pool.begin().await?;
    let rows: Vec<(i64, i64)> = sqlx::query_as(&format!(
        "SELECT id, balance_minor FROM {NAIVE_SCHEMA}.accounts WHERE id IN ($1, $2) ORDER BY id FOR UPDATE"
    ))
    .bind(debit)
    .bind(credit)
    .fetch_all(&mut *transaction)
    .await?;
    let balance = rows
        .iter()
        .find(|(id, _)| *id == debit)
        .map(|(_, balance)| *balance);
    if balance.unwrap_or(0) < amount_minor {
        bail!("baseline account {debit} ran dry");
    }
    for (account, delta) in [(debit, -amount_minor), (credit, amount_minor)] {
        sqlx::query(&format!(
            "UPDATE {NAIVE_SCHEMA}.accounts SET balance_minor = balance_minor + $1 WHERE id = $2"
        ))
        .bind(delta)
        .bind(account)
        .execute(&mut *transaction)
        .await?;
    }
    sqlx::query(&format!(
        "INSERT INTO {NAIVE_SCHEMA}.transfers (key, debit_id, credit_id, amount_minor) VALUES ($1, $2, $3, $4)"
    ))
    .bind(key)
    .bind(debit)
    .bind(credit)
    .bind(amount_minor)
    .execute(&mut *transaction)
    .await?;
    transaction.commit().await?;
    Ok(())
}

fn report(measurements: &[Measurement]) {
    let baseline = measurements
        .iter()
        .find(|measurement| measurement.case.starts_with("(c)"));
    println!();
    println!("{:<66} {:>12} {:>10}", "case", "transfers/s", "vs (c)");
    for measurement in measurements {
        let ratio = baseline.map_or("-".to_owned(), |baseline| {
            format!("{:.1}x", measurement.rate() / baseline.rate())
        });
        println!(
            "{:<66} {:>12.0} {:>10}",
            measurement.case,
            measurement.rate(),
            ratio
        );
    }
}
