//! `paycore bench pay`: signed create-and-pay requests through the HTTP API
//! on SQLite, the simulator answering at once, against a baseline in the
//! same run: the same number of plain two-leg ledger transfers through the
//! same API, one per request.

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};
use store::{Ledger, LedgerOptions, SqliteStore, Store};

#[derive(Debug, Clone, clap::Args)]
pub struct PayBenchArgs {
    /// Payments to make.
    #[arg(long, default_value_t = 5_000)]
    payments: usize,
    /// Concurrent merchant clients.
    #[arg(long, default_value_t = 64)]
    clients: usize,
}

struct Run {
    requests: usize,
    seconds: f64,
    latencies: Vec<Duration>,
}

impl Run {
    fn rate(&self) -> f64 {
        self.requests as f64 / self.seconds.max(1e-9)
    }

    fn percentile(&self, fraction: f64) -> Duration {
        let mut sorted = self.latencies.clone();
        sorted.sort_unstable();
        let index = ((sorted.len() as f64 * fraction) as usize).min(sorted.len().saturating_sub(1));
        sorted.get(index).copied().unwrap_or_default()
    }
}

pub async fn run(arguments: PayBenchArgs) -> Result<()> {
    let clients = arguments.clients.max(1);
    let per_client = arguments.payments.div_ceil(clients);
    let directory = std::env::temp_dir().join(format!("paycore-bench-pay-{}", std::process::id()));
    std::fs::create_dir_all(&directory).context("creating the benchmark directory")?;
    let outcome = measure(&directory, clients, per_client).await;
    let _ = std::fs::remove_dir_all(&directory);
    let (payments, transfers) = outcome?;
    println!();
    println!(
        "{:<58} {:>10} {:>9} {:>9}",
        "case", "per second", "p50 ms", "p99 ms"
    );
    for (name, run) in [
        (
            "paycore pay (signed, trade + payment + card via simulator)",
            &payments,
        ),
        ("baseline: one ledger transfer per request", &transfers),
    ] {
        println!(
            "{name:<58} {:>10.0} {:>9.2} {:>9.2}",
            run.rate(),
            run.percentile(0.5).as_secs_f64() * 1e3,
            run.percentile(0.99).as_secs_f64() * 1e3
        );
    }
    println!(
        "ratio pay / baseline: {:.2}",
        payments.rate() / transfers.rate().max(1e-9)
    );
    Ok(())
}

async fn measure(
    directory: &std::path::Path,
    clients: usize,
    per_client: usize,
) -> Result<(Run, Run)> {
    let store =
        Store::Sqlite(SqliteStore::open(&directory.join("pay.db").to_string_lossy()).await?);
    println!(
        "paycore bench pay: {} payments from {clients} clients; {}",
        clients * per_client,
        store.durability().await?
    );
    let ledger = Ledger::start(store, LedgerOptions::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let server = tokio::spawn(server::serve(listener, ledger));
    let http = reqwest::Client::new();
    let merchant: Value = http
        .post(format!("{base}/v1/merchants"))
        .json(&json!({"id": "m-bench", "name": "bench"}))
        .send()
        .await?
        .json()
        .await?;
    let key = Arc::new(
        merchant["signing_key"]
            .as_str()
            .context("no signing key")?
            .to_owned(),
    );
    let payments = drive(clients, per_client, {
        let (http, base, key) = (http.clone(), base.clone(), key.clone());
        move |client, index| {
            let (http, base, key) = (http.clone(), base.clone(), key.clone());
            async move { pay_once(&http, &base, &key, client, index).await }
        }
    })
    .await?;
    let accounts = open_transfer_accounts(&http, &base).await?;
    let transfers = drive(clients, per_client, {
        let (http, base) = (http.clone(), base.clone());
        move |client, index| {
            let (http, base) = (http.clone(), base.clone());
            async move { transfer_once(&http, &base, accounts, client, index).await }
        }
    })
    .await?;
    server.abort();
    Ok((payments, transfers))
}

/// Runs `call` `per_client` times on each of `clients` concurrent tasks.
async fn drive<F, Fut>(clients: usize, per_client: usize, call: F) -> Result<Run>
where
    F: Fn(usize, usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<()>> + Send,
{
    let call = Arc::new(call);
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(clients);
    for client in 0..clients {
        let call = Arc::clone(&call);
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(per_client);
            for index in 0..per_client {
                let sent = Instant::now();
                call(client, index).await?;
                latencies.push(sent.elapsed());
            }
            Ok::<_, anyhow::Error>(latencies)
        }));
    }
    let mut latencies = Vec::with_capacity(clients * per_client);
    for task in tasks {
        latencies.extend(task.await??);
    }
    Ok(Run {
        requests: latencies.len(),
        seconds: started.elapsed().as_secs_f64(),
        latencies,
    })
}

async fn pay_once(
    http: &reqwest::Client,
    base: &str,
    key: &str,
    client: usize,
    index: usize,
) -> Result<()> {
    let body = serde_json::to_vec(&json!({
        "out_trade_no": format!("B-{client}-{index}"), "subject": "bench", "amount_minor": 1_000,
        "currency": "CNY", "request_serial": format!("R-{client}-{index}"), "product": "instant_transfer",
        "payer_id": format!("payer-{client}"), "bank": "ICBC",
        "sources": [{"source": "card", "amount_minor": 1_000}],
    }))?;
    let headers = server::signature::signed_headers(
        "m-bench",
        key,
        "POST",
        "/v1/payments",
        store::now_micros() / 1_000_000,
        &format!("{client}-{index}"),
        &body,
    );
    let mut request = http
        .post(format!("{base}/v1/payments"))
        .header("content-type", "application/json")
        .body(body);
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let answer: Value = request.send().await?.json().await?;
    if answer["status"] != "SUCCESS" {
        bail!("payment did not succeed: {answer}");
    }
    Ok(())
}

async fn open_transfer_accounts(http: &reqwest::Client, base: &str) -> Result<(i64, i64)> {
    let mut ids = Vec::new();
    for (owner, unlimited) in [("bench-source", true), ("bench-sink", false)] {
        let account: Value = http
            .post(format!("{base}/v1/accounts"))
            .json(
                &json!({"subject_code": "2241", "kind": "member_cash", "owner_kind": "member",
                "owner_id": owner, "currency": "CNY", "unlimited_overdraft": unlimited}),
            )
            .send()
            .await?
            .json()
            .await?;
        ids.push(account["id"].as_i64().context("no account id")?);
    }
    Ok((ids[0], ids[1]))
}

async fn transfer_once(
    http: &reqwest::Client,
    base: &str,
    (debit, credit): (i64, i64),
    client: usize,
    index: usize,
) -> Result<()> {
    let response = http
        .post(format!("{base}/v1/transfers"))
        .json(&json!({"key": format!("T-{client}-{index}"), "legs": [
            {"account_id": debit, "side": "debit", "amount_minor": 1_000, "currency": "CNY"},
            {"account_id": credit, "side": "credit", "amount_minor": 1_000, "currency": "CNY"},
        ]}))
        .send()
        .await?;
    if !response.status().is_success() {
        bail!(
            "transfer failed: {}",
            response.text().await.unwrap_or_default()
        );
    }
    Ok(())
}
