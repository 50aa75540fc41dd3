//! Reliability of payments: the server is killed with SIGKILL while
//! merchants are paying (some payments still PROCESSING at their channel)
//! and restarted. No acknowledged payment is lost; every one ends SUCCESS
//! once the restarted server has queried the channel; the ledger holds;
//! and the merchant is notified of every acknowledged payment.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use axum::body::Bytes;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

mod common;
use common::start;

const CLIENTS: usize = 8;
const LOAD_BEFORE_KILL: Duration = Duration::from_millis(1_500);
const SETTLE_WAIT_MAX: Duration = Duration::from_secs(30);

struct Merchant {
    id: String,
    key: String,
}

async fn register(base: &str, id: &str, notify_url: &str) -> Merchant {
    let body: Value = reqwest::Client::new()
        .post(format!("{base}/v1/merchants"))
        .json(&json!({"id": id, "name": "crash test", "notify_url": notify_url}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    Merchant {
        id: id.to_owned(),
        key: body["signing_key"].as_str().unwrap().to_owned(),
    }
}

async fn signed(
    client: &reqwest::Client,
    base: &str,
    merchant: &Merchant,
    method: &str,
    path: &str,
    body: Option<&Value>,
    nonce: &str,
) -> Result<Value, reqwest::Error> {
    let bytes = body
        .map(|body| serde_json::to_vec(body).unwrap())
        .unwrap_or_default();
    let headers = server::signature::signed_headers(
        &merchant.id,
        &merchant.key,
        method,
        path,
        store::now_micros() / 1_000_000,
        nonce,
        &bytes,
    );
    let url = format!("{base}{path}");
    let mut request = match method {
        "GET" => client.get(url),
        _ => client
            .post(url)
            .header("content-type", "application/json")
            .body(bytes),
    };
    for (name, value) in headers {
        request = request.header(name, value);
    }
    request.send().await?.json().await
}

/// Pays until the server stops answering; returns the acknowledged payment
/// ids. Every third payment's card part ends in 92: PROCESSING for two
/// seconds at the simulator.
async fn load(base: String, merchant: Arc<Merchant>, client_index: usize, run: u128) -> Vec<i64> {
    let client = reqwest::Client::new();
    let mut acknowledged = Vec::new();
    for index in 0.. {
        let amount = if index % 3 == 0 { 1_092 } else { 1_000 };
        let body = json!({
            "out_trade_no": format!("C-{run}-{client_index}-{index}"), "subject": "crash",
            "amount_minor": amount, "currency": "CNY",
            "request_serial": format!("R-{run}-{client_index}-{index}"), "product": "instant_transfer",
            "payer_id": "crash-payer", "bank": "ICBC",
            "sources": [{"source": "card", "amount_minor": amount}],
        });
        let nonce = format!("{run}-{client_index}-{index}");
        match signed(
            &client,
            &base,
            &merchant,
            "POST",
            "/v1/payments",
            Some(&body),
            &nonce,
        )
        .await
        {
            Ok(answer) => match answer["id"].as_i64() {
                Some(id) => acknowledged.push(id),
                None => panic!("payment refused: {answer}"),
            },
            Err(_) => break,
        }
    }
    acknowledged
}

/// A merchant endpoint that acknowledges every notification and records
/// which payments it heard of.
async fn receiver(heard: Arc<Mutex<BTreeSet<i64>>>) -> String {
    let app = axum::Router::new().route(
        "/notify",
        axum::routing::post(move |body: Bytes| {
            let heard = heard.clone();
            async move {
                let notification: Value = serde_json::from_slice(&body).unwrap_or_default();
                if let Some(id) = notification["payment"]["id"].as_i64() {
                    heard.lock().unwrap().insert(id);
                }
                "success"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/notify", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

async fn kill_while_paying(database: &str) {
    let run = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros();
    let heard = Arc::new(Mutex::new(BTreeSet::new()));
    let notify_url = receiver(heard.clone()).await;
    let (mut child, base) = start(database).await;
    let merchant = Arc::new(register(&base, &format!("crash-{run}"), &notify_url).await);
    let mut tasks = Vec::new();
    for client_index in 0..CLIENTS {
        let (base, merchant) = (base.clone(), merchant.clone());
        tasks.push(tokio::spawn(load(base, merchant, client_index, run)));
    }
    tokio::time::sleep(LOAD_BEFORE_KILL).await;
    child.kill().unwrap(); // SIGKILL: no shutdown, no flush.
    child.wait().unwrap();
    let mut acknowledged = Vec::new();
    for task in tasks {
        acknowledged.extend(task.await.unwrap());
    }
    assert!(acknowledged.len() >= CLIENTS, "the load never got going");

    let (mut child, base) = start(database).await;
    let client = reqwest::Client::new();
    let settled = Arc::new(AtomicBool::new(false));
    let started = std::time::Instant::now();
    let mut nonce = 0;
    while !settled.load(Ordering::SeqCst) {
        assert!(
            started.elapsed() < SETTLE_WAIT_MAX,
            "acknowledged payments did not all finish"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mut all_done = true;
        for id in &acknowledged {
            nonce += 1;
            let path = format!("/v1/payments/{id}");
            let answer = signed(
                &client,
                &base,
                &merchant,
                "GET",
                &path,
                None,
                &format!("check-{run}-{nonce}"),
            )
            .await
            .unwrap();
            assert_ne!(answer["status"], "FAILED", "{answer}");
            assert!(answer["id"].is_i64(), "payment {id} is lost: {answer}");
            all_done &= answer["status"] == "SUCCESS" && answer["trade"]["status"] == "SUCCESS";
        }
        settled.store(all_done, Ordering::SeqCst);
    }
    let check: Value = reqwest::get(format!("{base}/v1/ledger/check"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(check["sound"], true, "{check}");
    // Every acknowledged payment is notified, some by the server that was
    // killed, the rest by the one that replaced it.
    let started = std::time::Instant::now();
    loop {
        let missing: Vec<i64> = {
            let heard = heard.lock().unwrap();
            acknowledged
                .iter()
                .copied()
                .filter(|id| !heard.contains(id))
                .collect()
        };
        if missing.is_empty() {
            break;
        }
        assert!(
            started.elapsed() < SETTLE_WAIT_MAX,
            "never notified of {missing:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_payments_survive_sigkill() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("crash.db");
    kill_while_paying(path.to_str().unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_payments_survive_sigkill() {
    let Ok(url) = std::env::var("PAYCORE_TEST_POSTGRES_URL") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "PAYCORE_TEST_POSTGRES_URL must be set in CI"
        );
        eprintln!("PAYCORE_TEST_POSTGRES_URL not set: PostgreSQL crash test not run");
        return;
    };
    kill_while_paying(&url).await;
}
