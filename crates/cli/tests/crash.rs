//! Reliability: the server is killed with SIGKILL in the middle of a
//! sustained batch load and restarted. Every acknowledged transfer must be
//! there exactly once, and the ledger's invariants must hold. Runs on SQLite
//! and, when `PAYCORE_TEST_POSTGRES_URL` is set, on PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;

mod common;
use common::start;

const CLIENTS: usize = 8;
const TRANSFERS_PER_REQUEST: usize = 50;
const LOAD_BEFORE_KILL: Duration = Duration::from_millis(1_500);

async fn post(
    client: &reqwest::Client,
    url: String,
    body: &Value,
) -> Result<(u16, Value), reqwest::Error> {
    let response = client.post(url).json(body).send().await?;
    let status = response.status().as_u16();
    Ok((status, response.json().await?))
}

async fn open_account(
    client: &reqwest::Client,
    base: &str,
    run: u128,
    owner: &str,
    unlimited: bool,
) -> i64 {
    let body = json!({
        "subject_code": if unlimited { "4001" } else { "2241" },
        "kind": if unlimited { "equity" } else { "member_cash" },
        "owner_kind": if unlimited { "platform" } else { "member" },
        "owner_id": format!("{owner}-{run}"), "currency": "CNY", "unlimited_overdraft": unlimited,
    });
    let (status, account) = post(client, format!("{base}/v1/accounts"), &body)
        .await
        .unwrap();
    assert_eq!(status, 201, "{account}");
    account["id"].as_i64().unwrap()
}

fn transfer_operation(key: &str, debit: i64, credit: i64, amount_minor: i64) -> Value {
    json!({"type": "transfer", "key": key, "legs": [
        {"account_id": debit, "side": "debit", "amount_minor": amount_minor, "currency": "CNY"},
        {"account_id": credit, "side": "credit", "amount_minor": amount_minor, "currency": "CNY"},
    ]})
}

/// Keeps posting batches until the server stops answering; returns every
/// (operation, transfer id) the server acknowledged.
async fn load(
    base: String,
    client_index: usize,
    run: u128,
    equity: i64,
    members: Arc<Vec<i64>>,
) -> Vec<(Value, i64)> {
    let client = reqwest::Client::new();
    let mut acknowledged = Vec::new();
    for request in 0.. {
        let operations: Vec<Value> = (0..TRANSFERS_PER_REQUEST)
            .map(|offset| {
                let member = members[(request + offset + client_index) % members.len()];
                let key = format!("crash-{run}-{client_index}-{request}-{offset}");
                transfer_operation(&key, equity, member, 1 + offset as i64)
            })
            .collect();
        let body = json!({ "operations": operations });
        let Ok((status, answer)) = post(&client, format!("{base}/v1/batches"), &body).await else {
            break;
        };
        assert_eq!(status, 200, "{answer}");
        for (operation, result) in operations
            .into_iter()
            .zip(answer["results"].as_array().unwrap())
        {
            let id = result["ok"]["id"]
                .as_i64()
                .unwrap_or_else(|| panic!("refused: {result}"));
            acknowledged.push((operation, id));
        }
    }
    acknowledged
}

async fn kill_in_the_middle_of_load(database: &str) {
    let run = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros();
    let (mut child, base) = start(database).await;
    let client = reqwest::Client::new();
    let equity = open_account(&client, &base, run, "equity", true).await;
    let mut members = Vec::new();
    for index in 0..10 {
        members.push(open_account(&client, &base, run, &format!("member{index}"), false).await);
    }
    let members = Arc::new(members);
    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for client_index in 0..CLIENTS {
        let (base, members, acknowledged) = (
            base.clone(),
            Arc::clone(&members),
            Arc::clone(&acknowledged),
        );
        tasks.push(tokio::spawn(async move {
            let mine = load(base, client_index, run, equity, members).await;
            acknowledged.lock().unwrap().extend(mine);
        }));
    }
    tokio::time::sleep(LOAD_BEFORE_KILL).await;
    child.kill().unwrap(); // SIGKILL on Unix: no shutdown, no flush.
    child.wait().unwrap();
    for task in tasks {
        task.await.unwrap();
    }
    let acknowledged = std::mem::take(&mut *acknowledged.lock().unwrap());
    assert!(
        acknowledged.len() >= TRANSFERS_PER_REQUEST,
        "the load never got going"
    );

    let (mut child, base) = start(database).await;
    // Each acknowledged operation, sent again, must come back as the very
    // transfer acknowledged before the kill: present, and never posted twice.
    for chunk in acknowledged.chunks(1_000) {
        let operations: Vec<&Value> = chunk.iter().map(|(operation, _)| operation).collect();
        let (status, answer) = post(
            &client,
            format!("{base}/v1/batches"),
            &json!({ "operations": operations }),
        )
        .await
        .unwrap();
        assert_eq!(status, 200, "{answer}");
        for ((_, id), result) in chunk.iter().zip(answer["results"].as_array().unwrap()) {
            assert_eq!(result["ok"]["id"].as_i64(), Some(*id), "{result}");
        }
    }
    let check: Value = reqwest::get(format!("{base}/v1/ledger/check"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(check["sound"], Value::Bool(true), "{check}");
    // The equity account paid for every transfer that committed, acknowledged
    // or not; the members hold exactly that much between them.
    let mut members_total = 0;
    for member in members.iter() {
        let account: Value = reqwest::get(format!("{base}/v1/accounts/{member}"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        members_total += account["balance"]["ledger_minor"].as_i64().unwrap();
    }
    let equity_account: Value = reqwest::get(format!("{base}/v1/accounts/{equity}"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        equity_account["balance"]["ledger_minor"].as_i64().unwrap(),
        -members_total
    );
    let acknowledged_total: i64 = acknowledged
        .iter()
        .map(|(operation, _)| operation["legs"][0]["amount_minor"].as_i64().unwrap())
        .sum();
    assert!(members_total >= acknowledged_total);
    child.kill().unwrap();
    child.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_survives_sigkill_under_load() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("crash.db");
    kill_in_the_middle_of_load(path.to_str().unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_survives_sigkill_under_load() {
    let Ok(url) = std::env::var("PAYCORE_TEST_POSTGRES_URL") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "PAYCORE_TEST_POSTGRES_URL must be set in CI"
        );
        eprintln!("PAYCORE_TEST_POSTGRES_URL not set: PostgreSQL crash test not run");
        return;
    };
    kill_in_the_middle_of_load(&url).await;
}
