//! Fee rules from the command line: `serve --fee-rules FILE` replaces the
//! stored table (once: the same file again changes nothing), and `paycore
//! fee rules set | list | show | delete` change it in the database while a
//! server runs, which follows within its once-a-second look.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use serde_json::{Value, json};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const FOLLOW_WAIT_MAX: Duration = Duration::from_secs(30);

const FILE: &str = r#"
[defaults]
currency = "CNY"

[[rules]]
id = "everyone"
product = "instant_transfer"
method = "rate"
rate = "1%"

[[rules]]
id = "top-up-free"
product = "top_up"
method = "fixed"
fee = "0.00"
"#;

const CONTRACT: &str = r#"
id = "m-tea-contract"
description = "Tea House"
merchant = "m-tea"
product = "instant_transfer"
currency = "CNY"
method = "fixed"
fee = "1.23"
"#;

fn paycore(arguments: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_paycore"))
        .args(arguments)
        .env_remove("PAYCORE_DATABASE")
        .output()
        .unwrap()
}

fn succeeds(arguments: &[&str]) -> String {
    let output = paycore(arguments);
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        output.status.success(),
        "paycore {arguments:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

async fn rule_ids(base: &str) -> (i64, Vec<String>) {
    let table: Value = reqwest::get(format!("{base}/v1/fees/rules"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids = table["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|rule| rule["id"].as_str().unwrap().to_owned())
        .collect();
    (table["version"].as_i64().unwrap(), ids)
}

/// The rule a signed quote of 100.00 for `merchant` is priced by, once it
/// is `rule_id` (waiting at most [`FOLLOW_WAIT_MAX`]).
async fn wait_for_rule(base: &str, merchant: &str, key: &str, rule_id: &str) {
    let client = reqwest::Client::new();
    let body = serde_json::to_vec(
        &json!({"product": "instant_transfer", "amount_minor": 10_000, "currency": "CNY"}),
    )
    .unwrap();
    let started = Instant::now();
    for attempt in 0.. {
        let headers = server::signature::signed_headers(
            merchant,
            key,
            "POST",
            "/v1/fees/quote",
            store::now_micros() / 1_000_000,
            &format!("quote-{}-{attempt}", store::now_micros()),
            &body,
        );
        let mut request = client
            .post(format!("{base}/v1/fees/quote"))
            .header("content-type", "application/json")
            .body(body.clone());
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let quote: Value = request.send().await.unwrap().json().await.unwrap();
        if quote["rule_id"] == rule_id {
            return;
        }
        assert!(started.elapsed() < FOLLOW_WAIT_MAX, "still {quote}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_takes_a_rule_file_and_operators_change_rules_from_the_command_line() {
    let directory = tempfile::tempdir().unwrap();
    let database = directory.path().join("paycore.db");
    let database = database.to_str().unwrap();
    let file = directory.path().join("fees.toml");
    std::fs::write(&file, FILE).unwrap();
    let file = file.to_str().unwrap();
    let contract = directory.path().join("contract.toml");
    std::fs::write(&contract, CONTRACT).unwrap();

    let (mut child, base) = common::start_with(database, &["--fee-rules", file]).await;
    assert_eq!(
        rule_ids(&base).await,
        (1, vec!["everyone".to_owned(), "top-up-free".to_owned()])
    );
    let merchant: Value = reqwest::Client::new()
        .post(format!("{base}/v1/merchants"))
        .json(&json!({"id": "m-tea", "name": "Tea House"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = merchant["signing_key"].as_str().unwrap();
    wait_for_rule(&base, "m-tea", key, "everyone").await;

    let change = ["--operator", "alice", "--reason", "contract 114"];
    let set = succeeds(
        &[
            &["fee", "rules", "set", "--file", contract.to_str().unwrap()][..],
            &change,
            &["--database", database],
        ]
        .concat(),
    );
    assert!(set.contains("version 2"), "{set}");
    wait_for_rule(&base, "m-tea", key, "m-tea-contract").await;
    let list = succeeds(&["fee", "rules", "list", "--database", database]);
    assert!(list.contains("version 2, 3 rules"), "{list}");
    assert!(
        list.contains("merchant=m-tea product=instant_transfer"),
        "{list}"
    );
    let shown = succeeds(&[
        "fee",
        "rules",
        "show",
        "m-tea-contract",
        "--database",
        database,
    ]);
    assert_eq!(
        fees::FeeRuleDefinition::from_toml(&shown).unwrap(),
        fees::FeeRuleDefinition::from_toml(CONTRACT).unwrap()
    );
    let refused = paycore(&[
        "fee",
        "rules",
        "delete",
        "nothing",
        "--operator",
        "a",
        "--reason",
        "b",
        "--database",
        database,
    ]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("UNKNOWN_FEE_RULE"));
    let deleted = succeeds(
        &[
            &["fee", "rules", "delete", "m-tea-contract"][..],
            &change,
            &["--database", database],
        ]
        .concat(),
    );
    assert!(deleted.contains("version 3"), "{deleted}");
    wait_for_rule(&base, "m-tea", key, "everyone").await;
    child.kill().unwrap();
    child.wait().unwrap();

    // The same file again: the table already says so, no new version.
    let (mut child, base) = common::start_with(database, &["--fee-rules", file]).await;
    assert_eq!(rule_ids(&base).await.0, 3);
    child.kill().unwrap();
    child.wait().unwrap();

    // A bad file stops the start, naming the file, rule and field.
    std::fs::write(file, FILE.replace("rate = \"1%\"", "rate = \"1 percent\"")).unwrap();
    let refused = paycore(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--database",
        database,
        "--fee-rules",
        file,
    ]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("FEE_CONFIG_INVALID") && stderr.contains("everyone"),
        "{stderr}"
    );
    assert!(stderr.contains("fees.toml"), "{stderr}");
}
