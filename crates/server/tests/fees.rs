//! `POST /v1/fees/quote` end to end: a real server on loopback over SQLite,
//! the built-in `config/fees.toml`, signed merchant requests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use fees::{BusinessDate, CounterKey, FeeCharge, FeeCounterStore, Period};
use serde_json::{Value, json};
use server::signature::signed_headers;
use std::sync::atomic::{AtomicU64, Ordering};

static NONCES: AtomicU64 = AtomicU64::new(0);

struct Api {
    base: String,
    client: reqwest::Client,
    store: store::Store,
    _directory: tempfile::TempDir,
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
        let ledger = store::Ledger::start(store.clone(), Default::default());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(server::serve(listener, ledger));
        Api {
            base,
            client: reqwest::Client::new(),
            store,
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

    /// A quote request, signed by `merchant` unless `signed` is false.
    async fn quote_with(&self, merchant: &MerchantKey, body: &Value, signed: bool) -> (u16, Value) {
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
            "/v1/fees/quote",
            store::now_micros() / 1_000_000,
            &nonce,
            &bytes,
        );
        let mut request = self
            .client
            .post(format!("{}/v1/fees/quote", self.base))
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
