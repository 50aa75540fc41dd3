//! The signed merchant API end to end: a real server on loopback, the
//! SQLite store, the simulator channel.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::{Value, json};
use server::signature::{HEADER_NONCE, HEADER_SIGNATURE, HEADER_TIMESTAMP, signed_headers};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

struct Api {
    base: String,
    client: reqwest::Client,
    _directory: tempfile::TempDir,
}

struct MerchantKey {
    id: String,
    key: String,
}

/// Changes the signed headers after signing.
type Tamper = Box<dyn FnOnce(&mut Vec<(&'static str, String)>) + Send>;

static NONCES: AtomicU64 = AtomicU64::new(0);

fn nonce() -> String {
    format!(
        "n-{}-{}",
        std::process::id(),
        NONCES.fetch_add(1, Ordering::Relaxed)
    )
}

fn now_seconds() -> i64 {
    store::now_micros() / 1_000_000
}

impl Api {
    async fn start() -> Api {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("paycore.db");
        let store = store::Store::open(path.to_str().unwrap()).await.unwrap();
        let ledger = store::Ledger::start(store, Default::default());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(server::serve(listener, ledger));
        Api {
            base,
            client: reqwest::Client::new(),
            _directory: directory,
        }
    }

    async fn merchant(&self, id: &str) -> MerchantKey {
        let response = self
            .client
            .post(format!("{}/v1/merchants", self.base))
            .json(&json!({"id": id, "name": format!("{id} shop")}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        let body: Value = response.json().await.unwrap();
        MerchantKey {
            id: id.to_owned(),
            key: body["signing_key"].as_str().unwrap().to_owned(),
        }
    }

    /// Sends a request signed by `merchant`; `tamper` may change the
    /// headers after signing.
    async fn signed(
        &self,
        merchant: &MerchantKey,
        method: &str,
        path: &str,
        body: Option<&Value>,
        tamper: impl FnOnce(&mut Vec<(&'static str, String)>),
    ) -> (u16, Value) {
        let bytes = body
            .map(|body| serde_json::to_vec(body).unwrap())
            .unwrap_or_default();
        let mut headers = signed_headers(
            &merchant.id,
            &merchant.key,
            method,
            path,
            now_seconds(),
            &nonce(),
            &bytes,
        )
        .to_vec();
        tamper(&mut headers);
        let url = format!("{}{path}", self.base);
        let mut request = match method {
            "GET" => self.client.get(url),
            _ => self
                .client
                .post(url)
                .header("content-type", "application/json")
                .body(bytes),
        };
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap())
    }

    async fn pay(&self, merchant: &MerchantKey, body: &Value) -> (u16, Value) {
        self.signed(merchant, "POST", "/v1/payments", Some(body), |_| {})
            .await
    }
}

fn payment(out_trade_no: &str, serial: &str, product: &str, sources: Value) -> Value {
    let amount: i64 = sources
        .as_array()
        .unwrap()
        .iter()
        .map(|part| part["amount_minor"].as_i64().unwrap())
        .sum();
    json!({
        "out_trade_no": out_trade_no, "subject": "coffee", "amount_minor": amount, "currency": "CNY",
        "request_serial": serial, "product": product, "payer_id": "alice", "bank": "ICBC",
        "sources": sources,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_merchant_pays_with_signed_requests() {
    let api = Api::start().await;
    let shop = api.merchant("m-coffee").await;
    let (status, topped) = api
        .pay(
            &shop,
            &payment(
                "topup-1",
                "s-topup-1",
                "top_up",
                json!([{"source": "card", "amount_minor": 10_000}]),
            ),
        )
        .await;
    assert_eq!(status, 200, "{topped}");
    assert_eq!(topped["status"], "SUCCESS");
    let request = payment(
        "T1",
        "S1",
        "instant_transfer",
        json!([{"source": "balance", "amount_minor": 3_000}]),
    );
    let (status, paid) = api.pay(&shop, &request).await;
    assert_eq!(status, 200, "{paid}");
    assert_eq!(paid["status"], "SUCCESS");
    assert_eq!(paid["trade"]["status"], "SUCCESS");
    assert_eq!(paid["instructions"][0]["source"], "balance");
    // The same request serial gets the same answer.
    let (_, again) = api.pay(&shop, &request).await;
    assert_eq!(again, paid);
    let (status, refused) = api
        .pay(
            &shop,
            &payment(
                "T1",
                "S2",
                "instant_transfer",
                json!([{"source": "balance", "amount_minor": 3_000}]),
            ),
        )
        .await;
    assert_eq!(
        (status, refused["code"].as_str()),
        (409, Some("TRADE_NOT_PAYABLE"))
    );
    let id = paid["id"].as_i64().unwrap();
    let (status, read) = api
        .signed(&shop, "GET", &format!("/v1/payments/{id}"), None, |_| {})
        .await;
    assert_eq!(status, 200);
    assert_eq!(read, paid);
    let (status, trade) = api
        .signed(&shop, "GET", "/v1/trades/T1", None, |_| {})
        .await;
    assert_eq!(status, 200);
    assert_eq!(trade["paid_payment_id"], paid["id"]);
    // Another merchant cannot see it.
    let other = api.merchant("m-tea").await;
    let (status, hidden) = api
        .signed(&other, "GET", &format!("/v1/payments/{id}"), None, |_| {})
        .await;
    assert_eq!(
        (status, hidden["code"].as_str()),
        (404, Some("ORDER_NOT_FOUND"))
    );
    let (status, invalid) = api
        .pay(
            &shop,
            &payment(
                "T2",
                "S3",
                "instant_transfer",
                json!([{"source": "card", "amount_minor": -5}]),
            ),
        )
        .await;
    assert_eq!(status, 422, "{invalid}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_signatures_are_refused_and_change_nothing() {
    let api = Api::start().await;
    let shop = api.merchant("m-coffee").await;
    let request = payment(
        "T1",
        "S1",
        "top_up",
        json!([{"source": "card", "amount_minor": 500}]),
    );
    let cases: Vec<(&str, Tamper)> = vec![
        (
            "BAD_SIGNATURE",
            Box::new(|headers| headers[3].1 = "00".repeat(32)),
        ),
        (
            "STALE_TIMESTAMP",
            Box::new(|headers| headers[1].1 = (now_seconds() - 3_600).to_string()),
        ),
        (
            "MISSING_SIGNATURE",
            Box::new(|headers| headers.retain(|(name, _)| *name != HEADER_SIGNATURE)),
        ),
        (
            "MISSING_SIGNATURE",
            Box::new(|headers| headers.retain(|(name, _)| *name != HEADER_NONCE)),
        ),
        (
            "UNKNOWN_MERCHANT",
            Box::new(|headers| headers[0].1 = "m-nobody".to_owned()),
        ),
        (
            "BAD_SIGNATURE",
            Box::new(|headers| headers[2].1 = "another-nonce".to_owned()),
        ),
        (
            "STALE_TIMESTAMP",
            Box::new(|headers| {
                headers
                    .iter_mut()
                    .filter(|(name, _)| *name == HEADER_TIMESTAMP)
                    .for_each(|(_, value)| *value = "soon".to_owned())
            }),
        ),
    ];
    for (code, tamper) in cases {
        let (status, body) = api
            .signed(&shop, "POST", "/v1/payments", Some(&request), tamper)
            .await;
        assert_eq!((status, body["code"].as_str()), (401, Some(code)), "{body}");
    }
    // A replayed request: same nonce, valid signature.
    let bytes = serde_json::to_vec(&request).unwrap();
    let headers = signed_headers(
        &shop.id,
        &shop.key,
        "POST",
        "/v1/payments",
        now_seconds(),
        "once",
        &bytes,
    );
    let mut answers = Vec::new();
    for _ in 0..2 {
        let mut call = api
            .client
            .post(format!("{}/v1/payments", api.base))
            .header("content-type", "application/json")
            .body(bytes.clone());
        for (name, value) in &headers {
            call = call.header(*name, value);
        }
        let response = call.send().await.unwrap();
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap();
        answers.push((status, body["code"].clone()));
    }
    assert_eq!(answers[0].0, 200);
    assert_eq!(answers[1], (401, json!("REPLAYED_NONCE")));
    // Only the one accepted request paid.
    let (_, trade) = api
        .signed(&shop, "GET", "/v1/trades/T1", None, |_| {})
        .await;
    assert_eq!(trade["status"], "SUCCESS");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processing_payments_are_finished_by_the_server() {
    let api = Api::start().await;
    let shop = api.merchant("m-coffee").await;
    // The card part ends in 92: PROCESSING for two seconds.
    let (status, started) = api
        .pay(
            &shop,
            &payment(
                "T1",
                "S1",
                "instant_transfer",
                json!([{"source": "card", "amount_minor": 1_092}]),
            ),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(started["status"], "PROCESSING");
    let id = started["id"].as_i64().unwrap();
    let mut finished = Value::Null;
    for _ in 0..300 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let (_, read) = api
            .signed(&shop, "GET", &format!("/v1/payments/{id}"), None, |_| {})
            .await;
        if read["status"] != "PROCESSING" {
            finished = read;
            break;
        }
    }
    assert_eq!(finished["status"], "SUCCESS", "{finished}");
    assert_eq!(finished["trade"]["status"], "SUCCESS");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_serial_sent_200_times_at_once_pays_once() {
    let api = std::sync::Arc::new(Api::start().await);
    let shop = std::sync::Arc::new(api.merchant("m-coffee").await);
    let request = payment(
        "T1",
        "S1",
        "instant_transfer",
        json!([{"source": "card", "amount_minor": 4_200}]),
    );
    let mut tasks = Vec::new();
    for _ in 0..200 {
        let (api, shop, request) = (api.clone(), shop.clone(), request.clone());
        tasks.push(tokio::spawn(async move { api.pay(&shop, &request).await }));
    }
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.unwrap());
    }
    let first = answers[0].clone();
    assert_eq!(first.0, 200, "{}", first.1);
    assert_eq!(first.1["status"], "SUCCESS");
    for answer in &answers {
        assert_eq!(answer, &first);
    }
    let check: Value = reqwest::get(format!("{}/v1/ledger/check", api.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(check["sound"], true);
    // One collect transfer: the channel clearing debit and the merchant credit.
    assert_eq!(check["transfers_checked"], 1);
}

/// What the merchant's notification endpoint received.
#[derive(Debug, Clone)]
struct Received {
    body: Value,
    signature_valid: bool,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_are_signed_and_retried_until_acknowledged() {
    use axum::body::Bytes;
    use axum::http::{HeaderMap, StatusCode};
    use std::sync::{Arc, Mutex};

    // The merchant's endpoint: refuses the first delivery, acknowledges
    // the next, and checks every signature with the merchant's key.
    let received: Arc<Mutex<Vec<Received>>> = Arc::default();
    let key: Arc<Mutex<String>> = Arc::default();
    let receiver = {
        let (received, key) = (received.clone(), key.clone());
        axum::Router::new().route(
            "/notify",
            axum::routing::post(move |headers: HeaderMap, body: Bytes| {
                let (received, key) = (received.clone(), key.clone());
                async move {
                    let header = |name: &str| {
                        headers
                            .get(name)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("")
                            .to_owned()
                    };
                    let timestamp: i64 = header("x-paycore-timestamp").parse().unwrap_or(0);
                    let message = server::signature::canonical_string(
                        "POST",
                        "/notify",
                        timestamp,
                        &header("x-paycore-nonce"),
                        &body,
                    );
                    let expected = server::signature::sign(&key.lock().unwrap(), &message);
                    let mut received = received.lock().unwrap();
                    received.push(Received {
                        body: serde_json::from_slice(&body).unwrap(),
                        signature_valid: expected == header("x-paycore-signature"),
                    });
                    if received.len() == 1 {
                        (StatusCode::SERVICE_UNAVAILABLE, "busy")
                    } else {
                        (StatusCode::OK, "success")
                    }
                }
            }),
        )
    };
    let receiver_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let notify_url = format!("http://{}/notify", receiver_listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(receiver_listener, receiver).await });

    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("paycore.db");
    let store = store::Store::open(path.to_str().unwrap()).await.unwrap();
    let state =
        server::AppState::new(store::Ledger::start(store.clone(), Default::default())).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = Api {
        base: format!("http://{}", listener.local_addr().unwrap()),
        client: reqwest::Client::new(),
        _directory: directory,
    };
    tokio::spawn(server::serve_state(listener, state.clone()));
    let response: Value = api
        .client
        .post(format!("{}/v1/merchants", api.base))
        .json(&json!({"id": "m-coffee", "name": "Coffee", "notify_url": notify_url}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let shop = MerchantKey {
        id: "m-coffee".to_owned(),
        key: response["signing_key"].as_str().unwrap().to_owned(),
    };
    *key.lock().unwrap() = shop.key.clone();
    let (status, paid) = api
        .pay(
            &shop,
            &payment(
                "T1",
                "S1",
                "top_up",
                json!([{"source": "card", "amount_minor": 1_200}]),
            ),
        )
        .await;
    assert_eq!(status, 200);
    // The background sender makes the first attempt within a second or two.
    for _ in 0..50 {
        if !received.lock().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(received.lock().unwrap().len(), 1);
    // The next attempt is due 15 seconds later; deliver as if it were then.
    let later = store::now_micros() + 16_000_000;
    assert_eq!(server::deliver_due(&state, later).await, 1);
    let first = received.lock().unwrap().clone();
    assert_eq!(first.len(), 2);
    for delivery in &first {
        assert!(delivery.signature_valid);
        assert_eq!(delivery.body["event"], "payment.succeeded");
        assert_eq!(delivery.body["payment"]["id"], paid["id"]);
        assert_eq!(delivery.body["payment"]["status"], "SUCCESS");
    }
    use engine::NotificationStore;
    let stored = store
        .payment_notifications(paid["id"].as_i64().unwrap())
        .await
        .unwrap();
    assert_eq!(stored[0].status, engine::NotificationStatus::Delivered);
    assert_eq!(stored[0].attempts, 2);
    // Nothing is left to send.
    assert_eq!(server::deliver_due(&state, later + 3_600_000_000).await, 0);

    // Each refund that ends is told of too, with the refund as the API
    // shows it; the endpoint now acknowledges at once.
    let mut refund_ids = Vec::new();
    for (serial, amount) in [("RF1", 500), ("RF2", 300)] {
        let body = json!({"out_trade_no": "T1", "refund_serial": serial, "amount_minor": amount, "reason": "unused balance"});
        let (status, refunded) = api
            .signed(&shop, "POST", "/v1/refunds", Some(&body), |_| {})
            .await;
        assert_eq!(
            (status, refunded["status"].as_str()),
            (200, Some("SUCCESS")),
            "{refunded}"
        );
        refund_ids.push(refunded["id"].clone());
    }
    let refund_deliveries = |received: &[Received]| -> Vec<Received> {
        received
            .iter()
            .filter(|delivery| delivery.body["event"] == "refund.succeeded")
            .cloned()
            .collect()
    };
    for _ in 0..50 {
        if refund_deliveries(&received.lock().unwrap()).len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let refunds = refund_deliveries(&received.lock().unwrap());
    assert_eq!(
        refunds.len(),
        2,
        "{:?}",
        received
            .lock()
            .unwrap()
            .iter()
            .map(|d| d.body.clone())
            .collect::<Vec<_>>()
    );
    let mut told: Vec<Value> = refunds
        .iter()
        .map(|delivery| delivery.body["refund"]["id"].clone())
        .collect();
    told.sort_by_key(|id| id.as_i64());
    assert_eq!(told, refund_ids);
    for delivery in &refunds {
        assert!(delivery.signature_valid);
        assert_eq!(delivery.body["refund"]["status"], "SUCCESS");
        assert_eq!(delivery.body["refund"]["trade"]["out_trade_no"], "T1");
    }
    let stored = store
        .payment_notifications(paid["id"].as_i64().unwrap())
        .await
        .unwrap();
    let events: Vec<(&str, Option<i64>)> = stored
        .iter()
        .map(|notification| (notification.event.as_str(), notification.refund_id))
        .collect();
    assert_eq!(
        events,
        vec![
            ("payment.succeeded", None),
            ("refund.succeeded", refund_ids[0].as_i64()),
            ("refund.succeeded", refund_ids[1].as_i64()),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_merchant_refunds_with_signed_requests() {
    let api = Api::start().await;
    let shop = api.merchant("m-coffee").await;
    api.pay(
        &shop,
        &payment(
            "topup-1",
            "s-topup-1",
            "top_up",
            json!([{"source": "card", "amount_minor": 5_000}]),
        ),
    )
    .await;
    let (status, paid) = api
        .pay(
            &shop,
            &payment(
                "T1",
                "S1",
                "instant_transfer",
                json!([{"source": "balance", "amount_minor": 1_000}, {"source": "card", "amount_minor": 2_000}]),
            ),
        )
        .await;
    assert_eq!((status, paid["status"].as_str()), (200, Some("SUCCESS")));
    let body = json!({"out_trade_no": "T1", "refund_serial": "RF1", "amount_minor": 2_500, "reason": "cold coffee"});
    let (status, refunded) = api
        .signed(&shop, "POST", "/v1/refunds", Some(&body), |_| {})
        .await;
    assert_eq!(status, 200, "{refunded}");
    assert_eq!(refunded["status"], "SUCCESS");
    assert_eq!(refunded["trade"]["status"], "PARTIALLY_REFUNDED");
    // The card's 20.00 first, then 5.00 to the balance.
    let parts: Vec<i64> = refunded["parts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|part| part["amount_minor"].as_i64().unwrap())
        .collect();
    assert_eq!(parts, [2_000, 500]);
    let (_, again) = api
        .signed(&shop, "POST", "/v1/refunds", Some(&body), |_| {})
        .await;
    assert_eq!(again["id"], refunded["id"]);
    let excess = json!({"out_trade_no": "T1", "refund_serial": "RF2", "amount_minor": 501});
    let (status, refused) = api
        .signed(&shop, "POST", "/v1/refunds", Some(&excess), |_| {})
        .await;
    assert_eq!(
        (status, refused["code"].as_str()),
        (409, Some("REFUND_EXCEEDS_REFUNDABLE"))
    );
    let id = refunded["id"].as_i64().unwrap();
    let (status, read) = api
        .signed(&shop, "GET", &format!("/v1/refunds/{id}"), None, |_| {})
        .await;
    assert_eq!((status, read["status"].as_str()), (200, Some("SUCCESS")));
    let other = api.merchant("m-tea").await;
    let (status, _) = api
        .signed(&other, "GET", &format!("/v1/refunds/{id}"), None, |_| {})
        .await;
    assert_eq!(status, 404);

    // The merchant's bill of today lists the collection (the top-up paid
    // the member, not the merchant) and the refund, with a verifiable hash.
    let today = engine::business_date(store::now_micros()).unwrap();
    let path = format!("/v1/bills?date={today}&type=ALL");
    let (status, bill) = api.signed(&shop, "GET", &path, None, |_| {}).await;
    assert_eq!(status, 200, "{bill}");
    assert_eq!(bill["rows"], 2);
    let csv = bill["csv"].as_str().unwrap();
    use sha2::Digest;
    assert_eq!(
        bill["sha256"].as_str().unwrap(),
        hex::encode(sha2::Sha256::digest(csv.as_bytes()))
    );
    let lines: Vec<&str> = csv.lines().collect();
    assert!(lines[1].contains(",T1,") && lines[1].contains(",COLLECTION,"));
    assert!(lines[2].contains(",RF1,") && lines[2].contains(",REFUND,"));
    assert_eq!(lines[3], settlement::SUMMARY_HEADER.join(","));
    assert!(
        lines[4].starts_with("CNY,2,1,30.00,1,25.00,"),
        "{}",
        lines[4]
    );
    let path = format!("/v1/bills?date={today}&type=REFUND");
    let (_, refunds) = api.signed(&shop, "GET", &path, None, |_| {}).await;
    assert_eq!(refunds["rows"], 1);
    // Another merchant's bill of the same day is its own: empty.
    let path = format!("/v1/bills?date={today}");
    let (status, empty) = api.signed(&other, "GET", &path, None, |_| {}).await;
    assert_eq!((status, empty["rows"].as_u64()), (200, Some(0)));
    let path = format!("/v1/bills?date={today}&type=DAILY");
    let (status, refused) = api.signed(&shop, "GET", &path, None, |_| {}).await;
    assert_eq!(
        (status, refused["code"].as_str()),
        (422, Some("BILL_TYPE_INVALID"))
    );
    let (status, refused) = api
        .signed(&shop, "GET", "/v1/bills?date=2026-13-01", None, |_| {})
        .await;
    assert_eq!(
        (status, refused["code"].as_str()),
        (422, Some("DATE_INVALID"))
    );

    let check: Value = reqwest::get(format!("{}/v1/ledger/check", api.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(check["sound"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_mark_banks_down_and_payments_still_go_through() {
    let api = Api::start().await;
    let shop = api.merchant("m-coffee").await;
    let (status, table) = {
        let response = api
            .client
            .get(format!("{}/v1/channels", api.base))
            .send()
            .await
            .unwrap();
        (
            response.status().as_u16(),
            response.json::<Value>().await.unwrap(),
        )
    };
    assert_eq!(status, 200);
    assert_eq!(table["routes"][0]["channel"], "simbank");
    assert_eq!(table["outages"], json!([]));
    let down = json!({"channel": "simbank", "bank": "ICBC", "down": true});
    let response = api
        .client
        .post(format!("{}/v1/channels/outages", api.base))
        .json(&down)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let table: Value = response.json().await.unwrap();
    assert_eq!(
        table["outages"],
        json!([{"channel": "simbank", "bank": "ICBC", "down": true}])
    );
    // simpay carries the card instead.
    let (status, paid) = api
        .pay(
            &shop,
            &payment(
                "T1",
                "S1",
                "instant_transfer",
                json!([{"source": "card", "amount_minor": 1_000}]),
            ),
        )
        .await;
    assert_eq!(
        (status, paid["status"].as_str()),
        (200, Some("SUCCESS")),
        "{paid}"
    );
    // A wallet only simbank carries: no route, the payment fails.
    let (status, stranded) = api
        .pay(
            &shop,
            &payment(
                "T2",
                "S2",
                "instant_transfer",
                json!([{"source": "wallet", "amount_minor": 1_000}]),
            ),
        )
        .await;
    assert_eq!(
        (status, stranded["status"].as_str()),
        (200, Some("FAILED")),
        "{stranded}"
    );
    // Over the member's daily limit: refused before any order is made.
    let (status, refused) = api
        .pay(
            &shop,
            &payment(
                "T3",
                "S3",
                "instant_transfer",
                json!([{"source": "card", "amount_minor": 5_000_000}]),
            ),
        )
        .await;
    assert_eq!(
        (status, refused["code"].as_str()),
        (422, Some("LIMIT_EXCEEDED"))
    );
    let bad = json!({"channel": "", "bank": "ICBC", "down": true});
    let response = api
        .client
        .post(format!("{}/v1/channels/outages", api.base))
        .json(&bad)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 422);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_payments_wait_in_the_review_queue() {
    let api = Api::start().await;
    let shop = api.merchant("m-coffee").await;
    // Two attempts at one trade, both PROCESSING (ends in 92), both succeed.
    let card = json!([{"source": "card", "amount_minor": 1_092}]);
    let (_, first) = api
        .pay(
            &shop,
            &payment("T1", "S1", "instant_transfer", card.clone()),
        )
        .await;
    let (_, second) = api
        .pay(&shop, &payment("T1", "S2", "instant_transfer", card))
        .await;
    assert_eq!(first["status"], "PROCESSING");
    assert_eq!(second["status"], "PROCESSING");
    let mut queue = Value::Null;
    for _ in 0..300 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        queue = reqwest::get(format!("{}/v1/review/refunds", api.base))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if queue.as_array().is_some_and(|entries| !entries.is_empty()) {
            break;
        }
    }
    let entries = queue.as_array().unwrap();
    assert_eq!(entries.len(), 1, "{queue}");
    assert_eq!(entries[0]["merchant_id"], "m-coffee");
    assert_eq!(entries[0]["refund"]["status"], "PENDING_REVIEW");
    assert_eq!(entries[0]["refund"]["initiator"], "platform");
    assert_eq!(entries[0]["refund"]["amount_minor"], 1_092);
    let id = entries[0]["refund"]["id"].as_i64().unwrap();
    let reviewed: Value = api
        .client
        .post(format!("{}/v1/refunds/{id}/review", api.base))
        .json(
            &json!({"merchant_id": "m-coffee", "approve": true, "operator": "ops-li",
                      "reason": "a duplicate: the money goes back"}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_ne!(reviewed["status"], "PENDING_REVIEW", "{reviewed}");
    // The decision is recorded with who made it and why.
    assert_eq!(reviewed["review"]["operator"], "ops-li", "{reviewed}");
    assert_eq!(reviewed["review"]["approved"], true);
    assert_eq!(
        reviewed["review"]["reason"],
        "a duplicate: the money goes back"
    );
    // A decision without an operator is refused.
    let unsigned = api
        .client
        .post(format!("{}/v1/refunds/{id}/review", api.base))
        .json(&json!({"merchant_id": "m-coffee", "approve": false, "operator": "", "reason": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), 422);
    let after: Value = reqwest::get(format!("{}/v1/review/refunds", api.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(after, json!([]));
    // The trade keeps its one payment.
    let (_, trade) = api
        .signed(&shop, "GET", "/v1/trades/T1", None, |_| {})
        .await;
    assert_eq!(trade["status"], "SUCCESS");
    assert_eq!(trade["refunded_minor"], 0);
}

/// A card of `bin` with its Luhn check digit, and a resident ID number with
/// its check character, as the simulated bank accepts them.
fn signing(serial: &str, member: &str, method: &str, bin: &str) -> Value {
    use channels::checks::{complete_card_number, complete_resident_id};
    let card = complete_card_number(&format!("{bin}020011223")).unwrap();
    let id = complete_resident_id("11010519491231002").unwrap();
    let mut body = json!({
        "sign_serial": serial, "member_id": member, "method": method,
        "name": "张三", "id_number": id, "card_number": card,
    });
    if method == "quick_pay" {
        body["phone"] = json!("13800138000");
    }
    body
}

async fn sign(api: &Api, merchant: &MerchantKey, body: &Value) -> (u16, Value) {
    api.signed(merchant, "POST", "/v1/agreements", Some(body), |_| {})
        .await
}

fn debit(trade: &str, payer: &str, agreement_no: Option<&str>, amount_minor: i64) -> Value {
    json!({
        "out_trade_no": trade, "subject": "monthly fee", "amount_minor": amount_minor,
        "currency": "CNY", "request_serial": format!("serial-{trade}"),
        "product": "debit_collection", "payer_id": payer, "agreement_no": agreement_no,
        "sources": [{"source": "card", "amount_minor": amount_minor}],
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_merchant_signs_agreements_and_debits_under_them() {
    let api = Api::start().await;
    let gym = api.merchant("m-gym").await;
    let body = signing("sign-1", "alice", "three_element", "622202");
    let (status, agreement) = sign(&api, &gym, &body).await;
    assert_eq!(status, 200, "{agreement}");
    assert_eq!(agreement["status"], "ACTIVE");
    assert_eq!(agreement["bank"], "ICBC");
    let shown = agreement.to_string();
    for secret in [
        "张三",
        "110105194912",
        body["card_number"].as_str().unwrap(),
    ] {
        assert!(!shown.contains(secret), "{secret} in {shown}");
    }
    assert!(agreement["card_masked"].as_str().unwrap().contains("****"));
    let number = agreement["agreement_no"].as_str().unwrap().to_owned();
    let (_, again) = sign(&api, &gym, &body).await;
    assert_eq!(again, agreement);

    let (status, refused) = api.pay(&gym, &debit("F0", "alice", None, 9_900)).await;
    assert_eq!(
        (status, refused["code"].as_str()),
        (422, Some("AGREEMENT_REQUIRED"))
    );
    let (status, _) = api.signed(&gym, "GET", "/v1/trades/F0", None, |_| {}).await;
    assert_eq!(status, 404, "a refused debit creates no trade");
    let (status, paid) = api
        .pay(&gym, &debit("F1", "alice", Some(&number), 9_900))
        .await;
    assert_eq!(status, 200, "{paid}");
    assert_eq!(paid["status"], "SUCCESS");
    assert_eq!(paid["agreement_no"], number.as_str());

    // Another merchant sees none of it.
    let other = api.merchant("m-pool").await;
    let id = agreement["id"].as_i64().unwrap();
    let (status, hidden) = api
        .signed(&other, "GET", &format!("/v1/agreements/{id}"), None, |_| {})
        .await;
    assert_eq!(
        (status, hidden["code"].as_str()),
        (404, Some("AGREEMENT_NOT_FOUND"))
    );
    let (status, foreign) = api
        .pay(&other, &debit("F2", "alice", Some(&number), 9_900))
        .await;
    assert_eq!(
        (status, foreign["code"].as_str()),
        (404, Some("AGREEMENT_NOT_FOUND"))
    );
    let (status, _) = api
        .signed(
            &other,
            "POST",
            &format!("/v1/agreements/{id}/revoke"),
            None,
            |_| {},
        )
        .await;
    assert_eq!(status, 404);

    let revoke = format!("/v1/agreements/{id}/revoke");
    let (status, revoked) = api.signed(&gym, "POST", &revoke, None, |_| {}).await;
    assert_eq!((status, revoked["status"].as_str()), (200, Some("REVOKED")));
    let (status, read) = api
        .signed(&gym, "GET", &format!("/v1/agreements/{id}"), None, |_| {})
        .await;
    assert_eq!((status, read), (200, revoked));
    let (status, refused) = api
        .pay(&gym, &debit("F3", "alice", Some(&number), 9_900))
        .await;
    assert_eq!(
        (status, refused["code"].as_str()),
        (409, Some("AGREEMENT_NOT_ACTIVE"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quick_pay_signing_is_confirmed_by_the_sms_code() {
    let api = Api::start().await;
    let gym = api.merchant("m-gym").await;
    let body = signing("sign-q", "bob", "quick_pay", "622588");
    let (status, pending) = sign(&api, &gym, &body).await;
    assert_eq!(status, 200, "{pending}");
    assert_eq!(pending["status"], "PENDING_CONFIRMATION");
    assert_eq!(pending["phone_masked"], "138****8000");
    assert_eq!(pending["confirm_attempts_left"], 5);
    assert!(pending["agreement_no"].is_null());
    let confirm = format!("/v1/agreements/{}/confirm", pending["id"]);
    let (status, wrong) = api
        .signed(
            &gym,
            "POST",
            &confirm,
            Some(&json!({"sms_code": "123456"})),
            |_| {},
        )
        .await;
    assert_eq!(
        (status, wrong["code"].as_str()),
        (422, Some("SMS_CODE_WRONG"))
    );
    let code = channels::sms_code("13800138000");
    let (status, active) = api
        .signed(
            &gym,
            "POST",
            &confirm,
            Some(&json!({"sms_code": code})),
            |_| {},
        )
        .await;
    assert_eq!(status, 200, "{active}");
    assert_eq!(active["status"], "ACTIVE");
    assert_eq!(active["bank"], "CMB");
    let (status, late) = api
        .signed(
            &gym,
            "POST",
            &confirm,
            Some(&json!({"sms_code": code})),
            |_| {},
        )
        .await;
    assert_eq!(
        (status, late["code"].as_str()),
        (409, Some("AGREEMENT_NOT_PENDING"))
    );

    // The bank's refusal is a FAILED agreement with its reason.
    let visa = signing("sign-visa", "bob", "three_element", "411111");
    let (status, failed) = sign(&api, &gym, &visa).await;
    assert_eq!(status, 200);
    assert_eq!(failed["status"], "FAILED");
    assert_eq!(failed["failure_code"], "CARD_NOT_SUPPORTED");
    let mut no_phone = signing("sign-x", "bob", "quick_pay", "622202");
    no_phone.as_object_mut().unwrap().remove("phone");
    let (status, invalid) = sign(&api, &gym, &no_phone).await;
    assert_eq!(
        (status, invalid["code"].as_str()),
        (422, Some("INVALID_AGREEMENT"))
    );
    // Unsigned, nothing is signed.
    let (status, _) = api
        .signed(
            &gym,
            "POST",
            "/v1/agreements",
            Some(&signing("sign-y", "bob", "three_element", "622202")),
            |headers| headers.retain(|(name, _)| *name != HEADER_SIGNATURE),
        )
        .await;
    assert_eq!(status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_card_centre_uploads_a_batch_and_fetches_its_return_file() {
    let api = Api::start().await;
    let centre = api.merchant("m-card-centre").await;
    let other = api.merchant("m-other").await;
    let (status, agreement) = sign(
        &api,
        &centre,
        &signing("sign-b1", "alice", "three_element", "622202"),
    )
    .await;
    assert_eq!(status, 200, "{agreement}");
    let number = agreement["agreement_no"].as_str().unwrap();
    let deadline = time::OffsetDateTime::now_utc() + time::Duration::hours(1);
    let deadline = deadline
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let file = format!(
        "reference,agreement_no,member_id,amount,priority\n\
         card-1,{number},alice,1200.00,2\ncard-2,{number},alice,35.91,1\n"
    );
    let body =
        json!({"batch_no": "RP-1201", "currency": "CNY", "deadline": deadline, "file": file});
    let (status, batch) = api
        .signed(
            &centre,
            "POST",
            "/v1/collection-batches",
            Some(&body),
            |_| {},
        )
        .await;
    assert_eq!(status, 200, "{batch}");
    assert_eq!(batch["line_count"], 2);
    assert_eq!(batch["total_minor"], 123_591);
    let path = format!("/v1/collection-batches/{}", batch["id"]);

    // A malformed file names its line and field; the same number with
    // another file is a conflict.
    let bad = json!({"batch_no": "RP-bad", "currency": "CNY", "deadline": deadline,
        "file": "reference,agreement_no,member_id,amount\ncard-1,AG,alice,-1\n"});
    let (status, refused) = api
        .signed(
            &centre,
            "POST",
            "/v1/collection-batches",
            Some(&bad),
            |_| {},
        )
        .await;
    assert_eq!(
        (status, refused["code"].as_str()),
        (422, Some("INVALID_BATCH_FILE"))
    );
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("line 1, field amount"),
        "{refused}"
    );
    let changed = json!({"batch_no": "RP-1201", "currency": "CNY", "deadline": deadline,
        "file": file.replace("1200.00", "1300.00")});
    let (status, conflict) = api
        .signed(
            &centre,
            "POST",
            "/v1/collection-batches",
            Some(&changed),
            |_| {},
        )
        .await;
    assert_eq!(
        (status, conflict["code"].as_str()),
        (409, Some("REFERENCE_CONFLICT"))
    );

    // The server's resolver runs the lines; both answer at once, so the
    // batch closes before its deadline.
    let mut closed = Value::Null;
    for _ in 0..100 {
        let (status, found) = api.signed(&centre, "GET", &path, None, |_| {}).await;
        assert_eq!(status, 200, "{found}");
        if found["status"] == "CLOSED" {
            closed = found;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(closed["status"], "CLOSED", "the batch never closed");
    assert_eq!(
        (closed["success"].as_i64(), closed["failed"].as_i64()),
        (Some(1), Some(1))
    );
    assert_eq!(closed["lines"][1]["failure_code"], "CHANNEL_REFUSED");

    let (status, returned) = api
        .signed(&centre, "GET", &format!("{path}/return-file"), None, |_| {})
        .await;
    assert_eq!(status, 200, "{returned}");
    let csv = returned["csv"].as_str().unwrap();
    use sha2::Digest;
    assert_eq!(
        returned["sha256"].as_str().unwrap(),
        hex::encode(sha2::Sha256::digest(csv.as_bytes()))
    );
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows.len(), 3, "{csv}");
    assert!(
        rows[1].starts_with(&format!("card-1,{number},alice,1200.00,2,SUCCESS,,,")),
        "{csv}"
    );
    assert!(
        rows[2].starts_with(&format!(
            "card-2,{number},alice,35.91,1,FAILED,CHANNEL_REFUSED,"
        )),
        "{csv}"
    );

    // Another merchant sees none of it.
    let (status, hidden) = api.signed(&other, "GET", &path, None, |_| {}).await;
    assert_eq!(
        (status, hidden["code"].as_str()),
        (404, Some("BATCH_NOT_FOUND"))
    );
    let (status, _) = api
        .signed(&other, "GET", &format!("{path}/return-file"), None, |_| {})
        .await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channels_post_their_notifications_to_the_api() {
    let api = Api::start().await;
    let shop = api.merchant("m-coffee").await;
    let (status, paid) = api
        .pay(
            &shop,
            &payment(
                "T1",
                "S1",
                "instant_transfer",
                json!([{"source": "card", "amount_minor": 1_000}]),
            ),
        )
        .await;
    assert_eq!(
        (status, paid["status"].as_str()),
        (200, Some("SUCCESS")),
        "{paid}"
    );
    let notify = |channel: &str, body: &str| {
        api.client
            .post(format!("{}/v1/channels/{channel}/notifications", api.base))
            .header("content-type", "text/plain")
            .body(body.to_owned())
            .send()
    };
    let response = notify("nochannel", "channel_order_id=1&status=FAILED")
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], "UNKNOWN_CHANNEL");
    let response = notify("simbank", "garbage").await.unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], "MALFORMED_NOTIFICATION");
    let response = notify("simbank", "channel_order_id=424242&status=FAILED")
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    // The payment's own order (the first of a fresh store: id 1):
    // acknowledged, and the payment stays as the channel says (SUCCESS),
    // whatever the notification claims.
    let response = notify("simbank", "channel_order_id=1&status=FAILED&code=X")
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "success");
    let path = format!("/v1/payments/{}", paid["id"]);
    let (_, after) = api.signed(&shop, "GET", &path, None, |_| {}).await;
    assert_eq!(after["status"], "SUCCESS");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_merchant_releases_an_escrow_trade_when_the_buyer_confirms() {
    let api = Api::start().await;
    let shop = api.merchant("m-market").await;
    let (status, paid) = api
        .pay(
            &shop,
            &payment(
                "E1",
                "S1",
                "escrow_trade",
                json!([{"source": "card", "amount_minor": 6_000}]),
            ),
        )
        .await;
    assert_eq!((status, paid["status"].as_str()), (200, Some("SUCCESS")));
    let (status, held) = api
        .signed(&shop, "GET", "/v1/trades/E1/escrow", None, |_| {})
        .await;
    assert_eq!(status, 200, "{held}");
    assert_eq!(held["status"], "HELD");
    assert_eq!(held["held_minor"], 6_000);
    assert!(held["released_minor"].is_null());
    // Another merchant can neither see nor release it.
    let other = api.merchant("m-other").await;
    let (status, hidden) = api
        .signed(&other, "POST", "/v1/trades/E1/release", None, |_| {})
        .await;
    assert_eq!(
        (status, hidden["code"].as_str()),
        (404, Some("ORDER_NOT_FOUND"))
    );
    let body = json!({"reason": "buyer confirmed receipt"});
    let (status, released) = api
        .signed(&shop, "POST", "/v1/trades/E1/release", Some(&body), |_| {})
        .await;
    assert_eq!(status, 200, "{released}");
    assert_eq!(released["status"], "RELEASED");
    assert_eq!(released["released_minor"], 6_000);
    assert_eq!(released["released_by"], "merchant");
    assert_eq!(released["reason"], "buyer confirmed receipt");
    // A repeat, with no body, answers the same release.
    let (status, again) = api
        .signed(&shop, "POST", "/v1/trades/E1/release", None, |_| {})
        .await;
    assert_eq!(
        (status, &again["updated_at"]),
        (200, &released["updated_at"])
    );
    // A malformed body changes nothing and says why.
    let (status, malformed) = api
        .signed(
            &shop,
            "POST",
            "/v1/trades/E1/release",
            Some(&json!({"reason": 7})),
            |_| {},
        )
        .await;
    assert_eq!(
        (status, malformed["code"].as_str()),
        (400, Some("MALFORMED_REQUEST"))
    );
    // An operator's release needs who and why.
    let response = api
        .client
        .post(format!("{}/v1/escrows/release", api.base))
        .json(&json!({"merchant_id": "m-market", "out_trade_no": "E1", "operator": "", "reason": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 422);
}
