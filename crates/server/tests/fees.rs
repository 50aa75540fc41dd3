//! The fee service end to end: a real server on loopback over SQLite (and
//! PostgreSQL where two servers share a database), seeded with the built-in
//! `config/fees.toml`; signed merchant quotes and payments, and the
//! operator's rule table (`/v1/fees/rules`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use fees::{BusinessDate, CounterKey, FeeCharge, FeeCounterStore, Period};
use serde_json::{Value, json};
use server::signature::signed_headers;
use settlement::SettlementStore;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

static NONCES: AtomicU64 = AtomicU64::new(0);

const POSTGRES_URL_VARIABLE: &str = "PAYCORE_TEST_POSTGRES_URL";
/// How long a second server may take to follow a change, at most: its
/// once-a-second look, on a loaded machine.
const FOLLOW_WAIT_MAX: Duration = Duration::from_secs(30);

struct Api {
    base: String,
    client: reqwest::Client,
    store: store::Store,
    _directory: Option<tempfile::TempDir>,
}

struct MerchantKey {
    id: String,
    key: String,
}

impl Api {
    async fn start() -> Api {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("paycore.db");
        let store = store::Store::open(path.to_str().unwrap()).await.unwrap();
        Api::on(store, Some(directory)).await
    }

    /// A server over `store`; it answers once it has started (its fee
    /// rules are then in force).
    async fn on(store: store::Store, directory: Option<tempfile::TempDir>) -> Api {
        let ledger = store::Ledger::start(store.clone(), Default::default());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(server::serve(listener, ledger));
        let api = Api {
            base,
            client: reqwest::Client::new(),
            store,
            _directory: directory,
        };
        let started = Instant::now();
        while api
            .client
            .get(format!("{}/health", api.base))
            .send()
            .await
            .is_err()
        {
            assert!(
                started.elapsed() < FOLLOW_WAIT_MAX,
                "the server did not start"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        api
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

    /// A quote request, signed by `merchant` unless `signed` is false.
    async fn quote_with(&self, merchant: &MerchantKey, body: &Value, signed: bool) -> (u16, Value) {
        self.signed_post(merchant, "/v1/fees/quote", body, signed)
            .await
    }

    async fn signed_post(
        &self,
        merchant: &MerchantKey,
        path: &str,
        body: &Value,
        signed: bool,
    ) -> (u16, Value) {
        let bytes = serde_json::to_vec(body).unwrap();
        let nonce = format!(
            "n-{}-{}",
            std::process::id(),
            NONCES.fetch_add(1, Ordering::Relaxed)
        );
        let headers = signed_headers(
            &merchant.id,
            &merchant.key,
            "POST",
            path,
            store::now_micros() / 1_000_000,
            &nonce,
            &bytes,
        );
        let mut request = self
            .client
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(bytes);
        if signed {
            for (name, value) in headers {
                request = request.header(name, value);
            }
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap())
    }

    async fn quote(&self, merchant: &MerchantKey, body: &Value) -> (u16, Value) {
        self.quote_with(merchant, body, true).await
    }

    /// The rule and fee of an instant transfer of 200.00 by an ABC card
    /// through simbank: no bank or channel rule applies to it.
    async fn card_quote(&self, merchant: &MerchantKey) -> (String, i64) {
        let (status, body) = self
            .quote(
                merchant,
                &json!({"product": "instant_transfer", "amount_minor": 20_000, "currency": "CNY",
                        "channel": "simbank", "issuing_bank": "ABC"}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        (
            body["rule_id"].as_str().unwrap().to_owned(),
            body["fee_minor"].as_i64().unwrap(),
        )
    }

    /// Pays 200.00 by an ABC card (it succeeds at once) and answers the
    /// rule and fee of the payment's clearing entry.
    async fn card_payment(&self, merchant: &MerchantKey, trade: &str) -> (Option<String>, i64) {
        let body = json!({
            "out_trade_no": trade, "subject": "tea", "amount_minor": 20_000, "currency": "CNY",
            "request_serial": format!("serial-{trade}"), "product": "instant_transfer",
            "payer_id": "alice", "bank": "ABC", "sources": [{"source": "card", "amount_minor": 20_000}],
        });
        let today = engine::business_date(store::now_micros())
            .unwrap()
            .to_string();
        let (status, paid) = self
            .signed_post(merchant, "/v1/payments", &body, true)
            .await;
        assert_eq!(
            (status, paid["status"].as_str()),
            (200, Some("SUCCESS")),
            "{paid}"
        );
        let entries = self
            .store
            .clearing_entries(&merchant.id, &today)
            .await
            .unwrap();
        let entry = entries
            .iter()
            .find(|entry| entry.entry.out_trade_no == trade)
            .unwrap_or_else(|| panic!("no clearing entry for {trade} on {today}"));
        (entry.entry.fee_rule_id.clone(), entry.entry.fee_minor)
    }

    /// An operator call (unsigned).
    async fn operator(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap())
    }

    async fn put_rule(&self, id: &str, rule: Value) -> (u16, Value) {
        let body = json!({"operator": "alice", "reason": "contract signed", "rule": rule});
        self.operator(
            reqwest::Method::PUT,
            &format!("/v1/fees/rules/{id}"),
            Some(body),
        )
        .await
    }

    async fn delete_rule(&self, id: &str) -> (u16, Value) {
        let body = json!({"operator": "bob", "reason": "contract ended"});
        self.operator(
            reqwest::Method::DELETE,
            &format!("/v1/fees/rules/{id}"),
            Some(body),
        )
        .await
    }

    /// Quotes until the quote's rule is `rule_id`, at most
    /// [`FOLLOW_WAIT_MAX`]; answers the fee.
    async fn wait_for_rule(&self, merchant: &MerchantKey, rule_id: &str) -> i64 {
        let started = Instant::now();
        loop {
            let (rule, fee_minor) = self.card_quote(merchant).await;
            if rule == rule_id {
                return fee_minor;
            }
            assert!(
                started.elapsed() < FOLLOW_WAIT_MAX,
                "still priced by {rule}, not {rule_id}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A merchant contract: 1.23 per instant transfer.
fn tea_contract() -> Value {
    json!({"description": "Tea House: 1.23 a transfer", "merchant": "m-tea",
           "product": "instant_transfer", "currency": "CNY", "method": "fixed", "fee": "1.23"})
}

#[tokio::test]
async fn a_signed_merchant_gets_its_fee_and_rule() {
    let api = Api::start().await;
    let coffee = api.merchant("m-coffee").await;
    let (status, body) = api
        .quote(
            &coffee,
            &json!({"product": "instant_transfer", "amount_minor": 250_000, "currency": "CNY",
                    "channel": "simbank", "business_date": "2025-03-15"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"rule_id": "m-coffee-instant", "method": "amount_tiers_rate", "policy": "whole_volume",
               "side": "payee", "fee_minor": 2_000, "currency": "CNY", "collection": "real_time",
               "business_date": "2025-03-15", "counter": null})
    );
    // The boundary amount is in the lower tier: 2000.00 at 1%.
    let (_, body) = api
        .quote(
            &coffee,
            &json!({"product": "instant_transfer", "amount_minor": 200_000, "currency": "CNY"}),
        )
        .await;
    assert_eq!(body["fee_minor"], 2_000);
    let today = body["business_date"].as_str().unwrap();
    assert!(BusinessDate::parse(today).is_ok(), "{today}");
}

#[tokio::test]
async fn a_cumulative_rule_is_priced_on_the_stored_counter() {
    let api = Api::start().await;
    let books = api.merchant("m-books").await;
    let counter = CounterKey {
        rule_id: "m-books-volume".to_owned(),
        merchant_id: "m-books".to_owned(),
        period_key: Period::Month.key(BusinessDate::parse("2025-03-01").unwrap()),
    };
    let charge = FeeCharge {
        charge_key: "payment-1-payee".to_owned(),
        counter,
        amount_minor: 99_995_000,
    };
    api.store
        .record_fee_charge(&charge, store::now_micros())
        .await
        .unwrap();
    let (status, body) = api
        .quote(
            &books,
            &json!({"product": "instant_transfer", "amount_minor": 10_000, "currency": "CNY",
                    "business_date": "2025-03-15"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    // 50.00 of the slice at 1%, 50.00 at 0.8% (graduated).
    assert_eq!(body["fee_minor"], 90);
    assert_eq!(body["collection"], "post_paid");
    assert_eq!(
        body["counter"],
        json!({"period_key": "2025-03", "count_before": 1, "volume_before_minor": 99_995_000})
    );
    // Another month starts from zero; a quote counted nothing.
    let (_, april) = api
        .quote(
            &books,
            &json!({"product": "instant_transfer", "amount_minor": 10_000, "currency": "CNY",
                    "business_date": "2025-04-01"}),
        )
        .await;
    assert_eq!(april["fee_minor"], 100);
    assert_eq!(april["counter"]["count_before"], 0);
}

#[tokio::test]
async fn bad_quotes_get_stable_codes() {
    let api = Api::start().await;
    let coffee = api.merchant("m-coffee").await;
    let base = json!({"product": "instant_transfer", "amount_minor": 100, "currency": "CNY"});
    let with = |field: &str, value: Value| {
        let mut body = base.clone();
        body[field] = value;
        body
    };
    let cases = [
        (
            with("product", json!("gift_card")),
            422,
            "FEE_RULE_NOT_FOUND",
        ),
        (with("side", json!("payer")), 422, "FEE_RULE_NOT_FOUND"),
        (with("amount_minor", json!(0)), 422, "FEE_INVALID_AMOUNT"),
        (with("currency", json!("USD")), 422, "FEE_CURRENCY_MISMATCH"),
        (with("currency", json!("XYZ")), 422, "UNKNOWN_CURRENCY"),
        (
            with("business_date", json!("2025-02-30")),
            422,
            "FEE_INVALID_DATE",
        ),
        (with("merchant", json!("m-other")), 400, "MALFORMED_REQUEST"),
        (with("side", json!("both")), 400, "MALFORMED_REQUEST"),
    ];
    for (body, status, code) in cases {
        let (answered, answer) = api.quote(&coffee, &body).await;
        assert_eq!(
            (answered, answer["code"].as_str().unwrap()),
            (status, code),
            "{body}"
        );
    }
    let (status, answer) = api.quote_with(&coffee, &base, false).await;
    assert_eq!(
        (status, answer["code"].as_str().unwrap()),
        (401, "MISSING_SIGNATURE")
    );
}

#[tokio::test]
async fn the_quote_is_in_the_openapi_document() {
    let document = serde_json::to_value(server::openapi()).unwrap();
    let operation = &document["paths"]["/v1/fees/quote"]["post"];
    assert_eq!(operation["tags"], json!(["fees"]));
    for schema in [
        "FeeQuoteRequest",
        "FeeQuoteResponse",
        "FeeMethodName",
        "CollectionModeName",
    ] {
        assert!(
            document["components"]["schemas"][schema].is_object(),
            "{schema}"
        );
    }
    assert!(
        document["tags"]
            .as_array()
            .unwrap()
            .iter()
            .any(|tag| tag["name"] == "fees")
    );
    // The ledger's paths are still there.
    assert!(document["paths"]["/v1/payments"].is_object());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_merchant_rule_prices_the_next_quote_and_payment_until_it_is_deleted() {
    let api = Api::start().await;
    let tea = api.merchant("m-tea").await;
    // The seeded fallback: 0.6% of 200.00.
    let standard = ("instant-transfer-standard".to_owned(), 120);
    assert_eq!(api.card_quote(&tea).await, standard);
    let (status, put) = api.put_rule("m-tea-contract", tea_contract()).await;
    assert_eq!(status, 200, "{put}");
    assert_eq!(put, json!({"version": 2, "changed": true}));
    assert_eq!(
        api.card_quote(&tea).await,
        ("m-tea-contract".to_owned(), 123)
    );
    assert_eq!(
        api.card_payment(&tea, "tea-1").await,
        (Some("m-tea-contract".to_owned()), 123)
    );
    let (status, stored) = api
        .operator(reqwest::Method::GET, "/v1/fees/rules/m-tea-contract", None)
        .await;
    assert_eq!(status, 200, "{stored}");
    let mut expected = tea_contract();
    expected["id"] = json!("m-tea-contract");
    assert_eq!(stored, json!({"version": 2, "rule": expected}));
    let (status, deleted) = api.delete_rule("m-tea-contract").await;
    assert_eq!(
        (status, deleted),
        (200, json!({"version": 3, "changed": true}))
    );
    assert_eq!(api.card_quote(&tea).await, standard);
    assert_eq!(
        api.card_payment(&tea, "tea-2").await,
        (Some(standard.0.clone()), standard.1)
    );
    // The history, newest first, names who, why and what.
    let (status, history) = api
        .operator(
            reqwest::Method::GET,
            "/v1/fees/rules/history?rule_id=m-tea-contract",
            None,
        )
        .await;
    assert_eq!(status, 200, "{history}");
    let rows: Vec<_> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            (
                row["version"].as_i64().unwrap(),
                row["operator"].as_str().unwrap(),
                row["reason"].as_str().unwrap(),
                row["before"].is_object(),
                row["after"].is_object(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            (3, "bob", "contract ended", true, false),
            (2, "alice", "contract signed", false, true)
        ]
    );
    assert_eq!(history[1]["after"], expected);
    assert!(BusinessDate::parse(&history[0]["changed_at"].as_str().unwrap()[..10]).is_ok());
}

#[tokio::test]
async fn bad_rule_changes_are_refused_and_change_nothing() {
    let api = Api::start().await;
    let (status, table) = api
        .operator(reqwest::Method::GET, "/v1/fees/rules", None)
        .await;
    assert_eq!(status, 200, "{table}");
    assert_eq!(table["version"], 1, "seeded from the built-in file");
    let seeded = table["rules"].as_array().unwrap().len();
    assert!(seeded >= 16);
    let with = |field: &str, value: Value| {
        let mut rule = tea_contract();
        rule[field] = value;
        rule
    };
    let cases = [
        (
            with("fee", json!("-1.00")),
            "FEE_CONFIG_INVALID",
            "field fee",
        ),
        (
            with("method", json!("percent")),
            "FEE_CONFIG_INVALID",
            "field method",
        ),
        (
            with(
                "tiers",
                json!([{"up_to": "10.00", "fee": "1.00"}, {"fee": "2.00"}]),
            ),
            "FEE_CONFIG_INVALID",
            "field tiers",
        ),
        (
            with("currency", json!("XYZ")),
            "FEE_CONFIG_INVALID",
            "field currency",
        ),
        (
            with("id", json!("another")),
            "FEE_CONFIG_INVALID",
            "field id",
        ),
        // The same side and dimensions as the built-in m-coffee-instant.
        (
            with("merchant", json!("m-coffee")),
            "FEE_RULE_DUPLICATE",
            "m-coffee-instant",
        ),
    ];
    for (rule, code, named) in cases {
        let (status, error) = api.put_rule("m-tea-contract", rule.clone()).await;
        assert_eq!(
            (status, error["code"].as_str()),
            (422, Some(code)),
            "{rule}: {error}"
        );
        let message = error["message"].as_str().unwrap();
        assert!(message.contains(named), "{message}");
        assert!(
            message.contains("m-tea-contract") || code == "FEE_RULE_DUPLICATE",
            "{message}"
        );
    }
    let bodies = [
        (
            json!({"operator": "", "reason": "x", "rule": tea_contract()}),
            422,
            "OPERATOR_AND_REASON_REQUIRED",
        ),
        (
            json!({"operator": "a", "reason": "x", "rule": with("rat", json!("1%"))}),
            400,
            "MALFORMED_REQUEST",
        ),
    ];
    for (body, status, code) in bodies {
        let path = "/v1/fees/rules/m-tea-contract";
        let (answered, error) = api.operator(reqwest::Method::PUT, path, Some(body)).await;
        assert_eq!((answered, error["code"].as_str()), (status, Some(code)));
    }
    for (method, body) in [
        (reqwest::Method::GET, None),
        (
            reqwest::Method::DELETE,
            Some(json!({"operator": "a", "reason": "x"})),
        ),
    ] {
        let (status, error) = api.operator(method, "/v1/fees/rules/nothing", body).await;
        assert_eq!(
            (status, error["code"].as_str()),
            (404, Some("UNKNOWN_FEE_RULE"))
        );
    }
    let (_, after) = api
        .operator(reqwest::Method::GET, "/v1/fees/rules", None)
        .await;
    assert_eq!(after, table);
    let (status, page) = api
        .operator(reqwest::Method::GET, "/v1/fees/rules/history?limit=0", None)
        .await;
    assert_eq!(
        (status, page["code"].as_str()),
        (422, Some("INVALID_LIMIT"))
    );
    let (_, history) = api
        .operator(
            reqwest::Method::GET,
            "/v1/fees/rules/history?limit=1000",
            None,
        )
        .await;
    assert_eq!(history.as_array().unwrap().len(), seeded, "only the seed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_server_on_the_same_postgres_database_follows_a_change() {
    let Ok(url) = std::env::var(POSTGRES_URL_VARIABLE) else {
        assert!(
            std::env::var_os("CI").is_none(),
            "{POSTGRES_URL_VARIABLE} must be set in CI: the PostgreSQL test may not be skipped"
        );
        eprintln!("{POSTGRES_URL_VARIABLE} not set: the two-server test not run");
        return;
    };
    let schema = "fees_two_servers";
    let mut connection: sqlx::PgConnection = sqlx::Connection::connect(&url)
        .await
        .unwrap_or_else(|error| panic!("{POSTGRES_URL_VARIABLE} is set but unreachable: {error}"));
    sqlx::raw_sql(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
        .execute(&mut connection)
        .await
        .unwrap();
    let open = || async {
        store::Store::Postgres(
            store::PostgresStore::open_in_schema(&url, Some(schema))
                .await
                .unwrap(),
        )
    };
    let first = Api::on(open().await, None).await;
    let second = Api::on(open().await, None).await;
    let tea = first.merchant("m-tea").await;
    assert_eq!(second.card_quote(&tea).await.0, "instant-transfer-standard");
    let (status, put) = first.put_rule("m-tea-contract", tea_contract()).await;
    assert_eq!(status, 200, "{put}");
    assert_eq!(
        first.card_quote(&tea).await.1,
        123,
        "at once where it was made"
    );
    assert_eq!(second.wait_for_rule(&tea, "m-tea-contract").await, 123);
    assert_eq!(
        second.card_payment(&tea, "tea-second").await,
        (Some("m-tea-contract".to_owned()), 123)
    );
    let (status, _) = second.delete_rule("m-tea-contract").await;
    assert_eq!(status, 200);
    assert_eq!(
        first.wait_for_rule(&tea, "instant-transfer-standard").await,
        120
    );
}
