//! 100 concurrent HTTP requests with the same idempotency key produce
//! exactly one transfer and 100 identical answers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::{Value, json};

const REQUESTS: usize = 100;

async fn post(client: &reqwest::Client, url: String, body: &Value) -> (u16, Value) {
    let response = client.post(url).json(body).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_key_from_100_concurrent_requests_posts_once() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("ledger.db");
    let store = store::Store::open(path.to_str().unwrap()).await.unwrap();
    let ledger = store::Ledger::start(store, Default::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(server::serve(listener, ledger));
    let client = reqwest::Client::new();
    let mut ids = Vec::new();
    for (owner, kind, unlimited) in [("world", "equity", true), ("alice", "member_cash", false)] {
        let body = json!({"subject_code": "2241", "kind": kind, "owner_kind": "platform", "owner_id": owner,
            "currency": "CNY", "unlimited_overdraft": unlimited});
        let (status, account) = post(&client, format!("{base}/v1/accounts"), &body).await;
        assert_eq!(status, 201, "{account}");
        ids.push(account["id"].as_i64().unwrap());
    }
    let transfer = json!({"key": "same-key", "legs": [
        {"account_id": ids[0], "side": "debit", "amount_minor": 1234, "currency": "CNY"},
        {"account_id": ids[1], "side": "credit", "amount_minor": 1234, "currency": "CNY"},
    ]});
    let mut tasks = Vec::new();
    for _ in 0..REQUESTS {
        let (client, url, body) = (
            client.clone(),
            format!("{base}/v1/transfers"),
            transfer.clone(),
        );
        tasks.push(tokio::spawn(async move { post(&client, url, &body).await }));
    }
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.unwrap());
    }
    let (first_status, first) = answers[0].clone();
    assert_eq!(first_status, 201, "{first}");
    for answer in &answers {
        assert_eq!(
            answer,
            &(first_status, first.clone()),
            "every answer is the first answer"
        );
    }
    let account: Value = reqwest::get(format!("{base}/v1/accounts/{}", ids[1]))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        account["balance"]["ledger_minor"],
        json!(1234),
        "posted once"
    );
    let check: Value = reqwest::get(format!("{base}/v1/ledger/check"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(check["transfers_checked"], json!(1));
    assert_eq!(check["sound"], json!(true));
    server.abort();
}
