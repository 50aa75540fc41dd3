#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The API at its boundary: a real server on a SQLite store in a temporary
//! directory, driven over HTTP.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::Duration;
use tempfile::TempDir;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

struct Api {
    base: String,
    client: reqwest::Client,
    _dir: TempDir,
}

/// What a request sends as its body.
enum Body {
    None,
    Json(Value),
    /// Sent as-is with `content-type: application/json`.
    Raw(&'static str),
    /// Valid JSON without a JSON content type.
    Text(&'static str),
}

impl Api {
    async fn start() -> Api {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.db");
        let store = store::Store::open(path.to_str().unwrap()).await.unwrap();
        let ledger = store::Ledger::start(store, Default::default());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(server::serve(listener, ledger));
        Api {
            base: format!("http://{address}"),
            client: reqwest::Client::new(),
            _dir: dir,
        }
    }

    async fn call(&self, method: Method, path: &str, body: Body) -> (StatusCode, Value) {
        let request = self.client.request(method, format!("{}{path}", self.base));
        let request = match body {
            Body::None => request,
            Body::Json(value) => request.json(&value),
            Body::Raw(text) => request
                .header("content-type", "application/json")
                .body(text),
            Body::Text(text) => request.header("content-type", "text/plain").body(text),
        };
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        let value = serde_json::from_str(&text)
            .unwrap_or_else(|error| panic!("{path}: body is not JSON ({error}): {text:?}"));
        (status, value)
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, Body::None).await
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Body::Json(body)).await
    }

    /// Posts and expects `status`; returns the body.
    async fn post_ok(&self, path: &str, body: Value, status: StatusCode) -> Value {
        let (got, value) = self.post(path, body).await;
        assert_eq!(got, status, "POST {path}: {value}");
        value
    }

    async fn get_ok(&self, path: &str) -> Value {
        let (status, value) = self.get(path).await;
        assert_eq!(status, StatusCode::OK, "GET {path}: {value}");
        value
    }

    async fn open_account(
        &self,
        owner_kind: &str,
        owner_id: &str,
        kind: &str,
        extra: Value,
    ) -> i64 {
        let mut body = json!({
            "subject_code": "2241",
            "kind": kind,
            "owner_kind": owner_kind,
            "owner_id": owner_id,
            "currency": "CNY",
        });
        for (field, value) in extra.as_object().unwrap() {
            body[field] = value.clone();
        }
        let account = self
            .post_ok("/v1/accounts", body, StatusCode::CREATED)
            .await;
        account["id"].as_i64().unwrap()
    }

    /// (ledger, available) of an account.
    async fn balance(&self, account_id: i64) -> (i64, i64) {
        let balance = self
            .get_ok(&format!("/v1/accounts/{account_id}/balance"))
            .await;
        (
            balance["ledger_minor"].as_i64().unwrap(),
            balance["available_minor"].as_i64().unwrap(),
        )
    }

    async fn assert_sound(&self) {
        let report = self.get_ok("/v1/ledger/check").await;
        assert_eq!(report["sound"], json!(true), "{report}");
        assert_eq!(report["violations"], json!([]));
    }
}

/// An equity account with unlimited overdraft, two CNY members funded with
/// `funding` each from equity, and one USD member.
struct World {
    equity: i64,
    alice: i64,
    bob: i64,
    usd: i64,
}

async fn world(api: &Api, funding: i64) -> World {
    let equity = api
        .open_account(
            "platform",
            "p",
            "equity",
            json!({"subject_code": "4001", "unlimited_overdraft": true}),
        )
        .await;
    let alice = api
        .open_account("member", "alice", "member_cash", json!({}))
        .await;
    let bob = api
        .open_account("member", "bob", "member_cash", json!({}))
        .await;
    let usd = api
        .open_account("member", "alice", "member_cash", json!({"currency": "USD"}))
        .await;
    for (index, member) in [alice, bob].into_iter().enumerate() {
        api.post_ok(
            "/v1/transfers",
            transfer_body(&format!("fund-{index}"), equity, member, funding),
            StatusCode::CREATED,
        )
        .await;
    }
    World {
        equity,
        alice,
        bob,
        usd,
    }
}

fn transfer_body(key: &str, from: i64, to: i64, amount_minor: i64) -> Value {
    json!({
        "key": key,
        "legs": [
            {"account_id": from, "side": "debit", "amount_minor": amount_minor, "currency": "CNY"},
            {"account_id": to, "side": "credit", "amount_minor": amount_minor, "currency": "CNY"},
        ],
        "description": format!("{key} description"),
    })
}

fn now_rfc3339() -> String {
    OffsetDateTime::now_utc().format(&Rfc3339).unwrap()
}

fn query_escape(text: &str) -> String {
    text.replace('+', "%2B").replace(':', "%3A")
}

#[tokio::test(flavor = "multi_thread")]
async fn health_answers_ok() {
    let api = Api::start().await;
    assert_eq!(api.get_ok("/health").await, json!({"status": "ok"}));
}

#[tokio::test(flavor = "multi_thread")]
async fn accounts_are_created_with_defaults_and_once() {
    let api = Api::start().await;
    let body = json!({
        "subject_code": "2241",
        "kind": "member_cash",
        "owner_kind": "member",
        "owner_id": "m-1",
        "currency": "CNY",
    });
    let account = api
        .post_ok("/v1/accounts", body.clone(), StatusCode::CREATED)
        .await;
    let id = account["id"].as_i64().unwrap();
    assert_eq!(account["subject_class"], "liability");
    assert_eq!(account["normal_side"], "credit");
    assert_eq!(account["overdraft_limit_minor"], 0);
    assert_eq!(account["unlimited_overdraft"], false);
    assert_eq!(account["balance"]["ledger_minor"], 0);
    assert_eq!(account["totals"]["credits_posted_minor"], 0);
    assert!(OffsetDateTime::parse(account["created_at"].as_str().unwrap(), &Rfc3339).is_ok());
    assert_eq!(api.get_ok(&format!("/v1/accounts/{id}")).await, account);

    let (status, error) = api.post("/v1/accounts", body).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(error["code"], "ACCOUNT_EXISTS");
    assert!(
        error["message"].as_str().unwrap().contains(&id.to_string()),
        "{error}"
    );

    let asset = json!({
        "subject_code": "1001", "subject_class": "asset", "kind": "channel_clearing",
        "owner_kind": "channel", "owner_id": "bank", "currency": "USD", "overdraft_limit_minor": 500,
    });
    let asset = api
        .post_ok("/v1/accounts", asset, StatusCode::CREATED)
        .await;
    assert_eq!(asset["normal_side"], "debit");
    assert_eq!(asset["overdraft_limit_minor"], 500);
    assert_eq!(asset["currency"], "USD");
}

#[tokio::test(flavor = "multi_thread")]
async fn transfers_move_balances_and_show_on_statements() {
    let api = Api::start().await;
    let w = world(&api, 10_000).await;
    assert_eq!(api.balance(w.alice).await, (10_000, 10_000));
    assert_eq!(api.balance(w.equity).await, (-20_000, -20_000));

    tokio::time::sleep(Duration::from_millis(5)).await;
    let before = now_rfc3339();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let body = transfer_body("pay-1", w.alice, w.bob, 2_500);
    let transfer = api
        .post_ok("/v1/transfers", body.clone(), StatusCode::CREATED)
        .await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    let after = now_rfc3339();
    assert_eq!(transfer["kind"], "transfer");
    assert_eq!(transfer["status"], "posted");
    assert_eq!(transfer["key"], "pay-1");
    assert_eq!(transfer["description"], "pay-1 description");
    assert_eq!(transfer["entries"].as_array().unwrap().len(), 2);
    assert_eq!(transfer["entries"][0]["balance_after_minor"], 7_500);
    assert_eq!(transfer["entries"][1]["balance_after_minor"], 12_500);
    let id = transfer["id"].as_i64().unwrap();
    assert_eq!(api.get_ok(&format!("/v1/transfers/{id}")).await, transfer);

    // An idempotent retry answers the first transfer and moves nothing.
    let retry = api
        .post_ok("/v1/transfers", body, StatusCode::CREATED)
        .await;
    assert_eq!(retry["id"], transfer["id"]);
    assert_eq!(api.balance(w.alice).await, (7_500, 7_500));
    assert_eq!(api.balance(w.bob).await, (12_500, 12_500));

    for (at, alice, bob) in [(&before, 10_000, 10_000), (&after, 7_500, 12_500)] {
        let balance = api
            .get_ok(&format!(
                "/v1/accounts/{}/balance?at={}",
                w.alice,
                query_escape(at)
            ))
            .await;
        assert_eq!(balance["ledger_minor"], alice, "alice at {at}");
        assert_eq!(balance["currency"], "CNY");
        assert!(balance.get("available_minor").is_none());
        let balance = api
            .get_ok(&format!(
                "/v1/accounts/{}/balance?at={}",
                w.bob,
                query_escape(at)
            ))
            .await;
        assert_eq!(balance["ledger_minor"], bob, "bob at {at}");
    }

    let statement = api
        .get_ok(&format!("/v1/accounts/{}/statement", w.bob))
        .await;
    let lines = statement["lines"].as_array().unwrap();
    assert_eq!(lines.len(), 2, "{statement}");
    assert_eq!(lines[1]["transfer_id"], id);
    assert_eq!(lines[1]["side"], "credit");
    assert_eq!(lines[1]["amount_minor"], 2_500);
    assert_eq!(lines[1]["currency"], "CNY");
    assert_eq!(lines[1]["balance_after_minor"], 12_500);
    assert_eq!(lines[1]["counterparty_account_ids"], json!([w.alice]));
    assert_eq!(lines[1]["description"], "pay-1 description");
    assert_eq!(lines[0]["counterparty_account_ids"], json!([w.equity]));
    assert_eq!(statement["next_cursor"], Value::Null);
    api.assert_sound().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn statements_page_by_cursor_and_window() {
    let api = Api::start().await;
    let w = world(&api, 10_000).await;
    for index in 0..3 {
        api.post_ok(
            "/v1/transfers",
            transfer_body(&format!("pay-{index}"), w.alice, w.bob, 100),
            StatusCode::CREATED,
        )
        .await;
    }
    let mut seen = Vec::new();
    let mut cursor = 0;
    loop {
        let page = api
            .get_ok(&format!(
                "/v1/accounts/{}/statement?limit=2&after={cursor}",
                w.alice
            ))
            .await;
        let lines = page["lines"].as_array().unwrap();
        seen.extend(
            lines
                .iter()
                .map(|line| line["balance_after_minor"].as_i64().unwrap()),
        );
        match page["next_cursor"].as_i64() {
            Some(next) => cursor = next,
            None => break,
        }
    }
    assert_eq!(seen, [10_000, 9_900, 9_800, 9_700]);
    let future = query_escape("2999-01-01T00:00:00Z");
    let empty = api
        .get_ok(&format!("/v1/accounts/{}/statement?from={future}", w.alice))
        .await;
    assert_eq!(empty["lines"], json!([]));
}

/// One refused request: what is sent and what must come back.
struct Refusal {
    name: &'static str,
    method: Method,
    path: String,
    body: Body,
    status: StatusCode,
    code: &'static str,
    message_contains: &'static str,
}

fn refusal(
    name: &'static str,
    path: String,
    body: Body,
    status: u16,
    code: &'static str,
) -> Refusal {
    Refusal {
        name,
        method: if matches!(body, Body::None) {
            Method::GET
        } else {
            Method::POST
        },
        path,
        body,
        status: StatusCode::from_u16(status).unwrap(),
        code,
        message_contains: "",
    }
}

fn leg(account_id: i64, side: &str, amount: Value, currency: &str) -> Value {
    json!({"account_id": account_id, "side": side, "amount_minor": amount, "currency": currency})
}

fn legs_body(key: &str, legs: Vec<Value>) -> Body {
    Body::Json(json!({"key": key, "legs": legs}))
}

fn refusals(w: &World) -> Vec<Refusal> {
    let (a, b) = (w.alice, w.bob);
    let transfers = || "/v1/transfers".to_owned();
    let mut conflict = transfer_body("pay-1", a, b, 999);
    conflict["description"] = json!("pay-1 description");
    vec![
        Refusal {
            message_contains: "legs[0].amount_minor",
            ..refusal(
                "conflicting retry",
                transfers(),
                Body::Json(conflict),
                409,
                "DUPLICATE_KEY_CONFLICT",
            )
        },
        refusal(
            "insufficient funds",
            transfers(),
            Body::Json(transfer_body("too-much", a, b, 1_000_000)),
            409,
            "INSUFFICIENT_FUNDS",
        ),
        refusal(
            "unbalanced",
            transfers(),
            legs_body(
                "unbalanced",
                vec![
                    leg(a, "debit", json!(100), "CNY"),
                    leg(b, "credit", json!(99), "CNY"),
                ],
            ),
            422,
            "UNBALANCED_TRANSFER",
        ),
        refusal(
            "currency mismatch",
            transfers(),
            legs_body(
                "mismatch",
                vec![
                    leg(a, "debit", json!(100), "USD"),
                    leg(w.usd, "credit", json!(100), "USD"),
                ],
            ),
            422,
            "CURRENCY_MISMATCH",
        ),
        refusal(
            "unknown currency",
            transfers(),
            legs_body(
                "xyz",
                vec![
                    leg(a, "debit", json!(100), "XYZ"),
                    leg(b, "credit", json!(100), "XYZ"),
                ],
            ),
            422,
            "UNKNOWN_CURRENCY",
        ),
        refusal(
            "negative amount",
            transfers(),
            legs_body(
                "negative",
                vec![
                    leg(a, "debit", json!(-100), "CNY"),
                    leg(b, "credit", json!(-100), "CNY"),
                ],
            ),
            422,
            "INVALID_AMOUNT",
        ),
        refusal(
            "one leg",
            transfers(),
            legs_body("one-leg", vec![leg(a, "debit", json!(100), "CNY")]),
            422,
            "INVALID_LEG_COUNT",
        ),
        refusal(
            "empty key",
            transfers(),
            Body::Json(transfer_body("", a, b, 1)),
            422,
            "INVALID_KEY",
        ),
        refusal(
            "amount 1e30",
            transfers(),
            legs_body(
                "huge",
                vec![
                    leg(a, "debit", json!(1e30), "CNY"),
                    leg(b, "credit", json!(1e30), "CNY"),
                ],
            ),
            400,
            "MALFORMED_REQUEST",
        ),
        refusal(
            "amount past i64",
            transfers(),
            Body::Raw(
                r#"{"key":"big","legs":[{"account_id":1,"side":"debit","amount_minor":99999999999999999999,"currency":"CNY"},{"account_id":2,"side":"credit","amount_minor":99999999999999999999,"currency":"CNY"}]}"#,
            ),
            400,
            "MALFORMED_REQUEST",
        ),
        refusal(
            "malformed JSON",
            transfers(),
            Body::Raw(r#"{"key": "x", "legs": ["#),
            400,
            "MALFORMED_REQUEST",
        ),
        Refusal {
            message_contains: "legs",
            ..refusal(
                "missing field",
                transfers(),
                Body::Json(json!({"key": "x"})),
                400,
                "MALFORMED_REQUEST",
            )
        },
        refusal(
            "unknown field",
            transfers(),
            Body::Json(json!({"key": "x", "legs": [], "amount": 5})),
            400,
            "MALFORMED_REQUEST",
        ),
        refusal(
            "bad side",
            transfers(),
            legs_body(
                "side",
                vec![
                    leg(a, "sideways", json!(1), "CNY"),
                    leg(b, "credit", json!(1), "CNY"),
                ],
            ),
            400,
            "MALFORMED_REQUEST",
        ),
        refusal(
            "not JSON content",
            transfers(),
            Body::Text("{}"),
            415,
            "UNSUPPORTED_MEDIA_TYPE",
        ),
        refusal(
            "unknown account in a leg",
            transfers(),
            Body::Json(transfer_body("ghost", a, 999_999, 100)),
            404,
            "ACCOUNT_NOT_FOUND",
        ),
        refusal(
            "timeout without pending",
            transfers(),
            Body::Json(
                json!({"key": "t", "legs": [leg(a, "debit", json!(1), "CNY"), leg(b, "credit", json!(1), "CNY")], "timeout_seconds": 5}),
            ),
            422,
            "INVALID_TIMEOUT",
        ),
        refusal(
            "unknown account",
            "/v1/accounts/999999".to_owned(),
            Body::None,
            404,
            "ACCOUNT_NOT_FOUND",
        ),
        refusal(
            "unknown transfer",
            "/v1/transfers/999999".to_owned(),
            Body::None,
            404,
            "TRANSFER_NOT_FOUND",
        ),
        refusal(
            "non-numeric id",
            "/v1/accounts/abc".to_owned(),
            Body::None,
            400,
            "MALFORMED_REQUEST",
        ),
        refusal(
            "bad timestamp",
            format!("/v1/accounts/{a}/balance?at=yesterday"),
            Body::None,
            400,
            "MALFORMED_REQUEST",
        ),
        refusal(
            "bad limit",
            format!("/v1/accounts/{a}/statement?limit=0"),
            Body::None,
            422,
            "INVALID_LIMIT",
        ),
        refusal(
            "no such route",
            "/v1/nothing".to_owned(),
            Body::None,
            404,
            "NOT_FOUND",
        ),
        Refusal {
            method: Method::DELETE,
            ..refusal(
                "wrong method",
                transfers(),
                Body::None,
                405,
                "METHOD_NOT_ALLOWED",
            )
        },
        refusal(
            "unfreeze more than frozen",
            format!("/v1/accounts/{a}/unfreeze"),
            Body::Json(json!({"key": "uf", "amount_minor": 1})),
            409,
            "INSUFFICIENT_FROZEN",
        ),
        refusal(
            "freeze unknown account",
            "/v1/accounts/999999/freeze".to_owned(),
            Body::Json(json!({"key": "fz", "amount_minor": 1})),
            404,
            "ACCOUNT_NOT_FOUND",
        ),
        refusal(
            "post unknown transfer",
            "/v1/transfers/999999/post".to_owned(),
            Body::Json(json!({"key": "p"})),
            404,
            "TRANSFER_NOT_FOUND",
        ),
        refusal(
            "account with unknown currency",
            "/v1/accounts".to_owned(),
            Body::Json(
                json!({"subject_code": "1", "kind": "member_cash", "owner_kind": "member", "owner_id": "z", "currency": "ABC"}),
            ),
            422,
            "UNKNOWN_CURRENCY",
        ),
        refusal(
            "account with empty owner",
            "/v1/accounts".to_owned(),
            Body::Json(
                json!({"subject_code": "1", "kind": "member_cash", "owner_kind": "member", "owner_id": "", "currency": "CNY"}),
            ),
            422,
            "INVALID_ACCOUNT",
        ),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn refused_requests_answer_a_code_and_change_nothing() {
    let api = Api::start().await;
    let w = world(&api, 10_000).await;
    api.post_ok(
        "/v1/transfers",
        transfer_body("pay-1", w.alice, w.bob, 100),
        StatusCode::CREATED,
    )
    .await;
    let balances_before = [api.balance(w.alice).await, api.balance(w.bob).await];
    let statement_before = api
        .get_ok(&format!("/v1/accounts/{}/statement", w.alice))
        .await;
    for case in refusals(&w) {
        let (status, body) = api.call(case.method, &case.path, case.body).await;
        assert_eq!(status, case.status, "{}: {body}", case.name);
        assert_eq!(body["code"], case.code, "{}: {body}", case.name);
        let message = body["message"]
            .as_str()
            .unwrap_or_else(|| panic!("{}: {body}", case.name));
        assert!(
            message.contains(case.message_contains),
            "{}: {message}",
            case.name
        );
    }
    assert_eq!(
        [api.balance(w.alice).await, api.balance(w.bob).await],
        balances_before
    );
    let statement_after = api
        .get_ok(&format!("/v1/accounts/{}/statement", w.alice))
        .await;
    assert_eq!(statement_after, statement_before);
    api.assert_sound().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn pending_transfers_post_and_void() {
    let api = Api::start().await;
    let w = world(&api, 10_000).await;
    let mut body = transfer_body("auth-1", w.alice, w.bob, 3_000);
    body["pending"] = json!(true);
    body["timeout_seconds"] = json!(3_600);
    let pending = api
        .post_ok("/v1/transfers", body, StatusCode::CREATED)
        .await;
    assert_eq!(pending["status"], "pending");
    assert!(pending["expires_at"].is_string());
    let pending_id = pending["id"].as_i64().unwrap();
    assert_eq!(api.balance(w.alice).await, (10_000, 7_000));
    let bob = api.get_ok(&format!("/v1/accounts/{}/balance", w.bob)).await;
    assert_eq!(bob["pending_incoming_minor"], 3_000);

    let post = json!({"key": "auth-1-post", "amount_minor": 2_000});
    let posted = api
        .post_ok(
            &format!("/v1/transfers/{pending_id}/post"),
            post,
            StatusCode::CREATED,
        )
        .await;
    assert_eq!(posted["kind"], "post_pending");
    assert_eq!(posted["target_id"], pending_id);
    assert_eq!(api.balance(w.alice).await, (8_000, 8_000));
    assert_eq!(api.balance(w.bob).await, (12_000, 12_000));
    let original = api.get_ok(&format!("/v1/transfers/{pending_id}")).await;
    assert_eq!(original["status"], "pending_posted");

    let (status, error) = api
        .post(
            &format!("/v1/transfers/{pending_id}/void"),
            json!({"key": "late-void"}),
        )
        .await;
    assert_eq!(
        (status, error["code"].as_str()),
        (StatusCode::CONFLICT, Some("PENDING_ALREADY_RESOLVED"))
    );

    let mut body = transfer_body("auth-2", w.alice, w.bob, 1_000);
    body["pending"] = json!(true);
    let second = api
        .post_ok("/v1/transfers", body, StatusCode::CREATED)
        .await;
    let second_id = second["id"].as_i64().unwrap();
    assert_eq!(api.balance(w.alice).await, (8_000, 7_000));
    let voided = api
        .post_ok(
            &format!("/v1/transfers/{second_id}/void"),
            json!({"key": "auth-2-void"}),
            StatusCode::CREATED,
        )
        .await;
    assert_eq!(voided["kind"], "void_pending");
    assert_eq!(api.balance(w.alice).await, (8_000, 8_000));
    let (status, error) = api
        .post(
            &format!("/v1/transfers/{second_id}/post"),
            json!({"key": "late-post"}),
        )
        .await;
    assert_eq!(
        (status, error["code"].as_str()),
        (StatusCode::CONFLICT, Some("PENDING_ALREADY_RESOLVED"))
    );
    api.assert_sound().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn holds_and_reversals() {
    let api = Api::start().await;
    let w = world(&api, 10_000).await;
    let hold = json!({"key": "freeze-1", "amount_minor": 4_000, "description": "dispute"});
    let frozen = api
        .post_ok(
            &format!("/v1/accounts/{}/freeze", w.alice),
            hold,
            StatusCode::CREATED,
        )
        .await;
    assert_eq!(frozen["kind"], "freeze");
    assert_eq!(frozen["account_id"], w.alice);
    assert_eq!(api.balance(w.alice).await, (10_000, 6_000));
    let (status, error) = api
        .post(
            "/v1/transfers",
            transfer_body("spend-frozen", w.alice, w.bob, 7_000),
        )
        .await;
    assert_eq!(
        (status, error["code"].as_str()),
        (StatusCode::CONFLICT, Some("INSUFFICIENT_FUNDS"))
    );
    let release = json!({"key": "unfreeze-1", "amount_minor": 4_000});
    api.post_ok(
        &format!("/v1/accounts/{}/unfreeze", w.alice),
        release,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(api.balance(w.alice).await, (10_000, 10_000));

    let paid = api
        .post_ok(
            "/v1/transfers",
            transfer_body("pay", w.alice, w.bob, 1_500),
            StatusCode::CREATED,
        )
        .await;
    let paid_id = paid["id"].as_i64().unwrap();
    let reversal = api
        .post_ok(
            &format!("/v1/transfers/{paid_id}/reverse"),
            json!({"key": "pay-reverse", "description": "refund"}),
            StatusCode::CREATED,
        )
        .await;
    assert_eq!(reversal["kind"], "reversal");
    assert_eq!(reversal["target_id"], paid_id);
    assert_eq!(api.balance(w.alice).await, (10_000, 10_000));
    assert_eq!(
        api.get_ok(&format!("/v1/transfers/{paid_id}")).await["status"],
        "reversed"
    );
    let (status, error) = api
        .post(
            &format!("/v1/transfers/{paid_id}/reverse"),
            json!({"key": "again"}),
        )
        .await;
    assert_eq!(
        (status, error["code"].as_str()),
        (StatusCode::CONFLICT, Some("ALREADY_REVERSED"))
    );
    api.assert_sound().await;
}

fn batch_transfer(key: &str, from: i64, to: i64, amount_minor: i64, linked: bool) -> Value {
    let mut operation = transfer_body(key, from, to, amount_minor);
    operation["type"] = json!("transfer");
    operation["linked"] = json!(linked);
    operation
}

#[tokio::test(flavor = "multi_thread")]
async fn batches_answer_per_operation_and_linked_chains_fail_together() {
    let api = Api::start().await;
    let w = world(&api, 10_000).await;
    let operations = json!([
        batch_transfer("chain-1", w.alice, w.bob, 1_000, true),
        batch_transfer("chain-2", w.bob, w.alice, 50_000, false),
        batch_transfer("alone", w.bob, w.alice, 500, false),
        {"type": "freeze", "key": "batch-freeze", "account_id": w.bob, "amount_minor": 100},
    ]);
    let response = api
        .post_ok(
            "/v1/batches",
            json!({"operations": operations}),
            StatusCode::OK,
        )
        .await;
    let results = response["results"].as_array().unwrap();
    assert_eq!(results.len(), 4, "{response}");
    assert_eq!(results[0]["error"]["code"], "LINKED_OPERATION_FAILED");
    assert_eq!(results[1]["error"]["code"], "INSUFFICIENT_FUNDS");
    assert_eq!(results[2]["ok"]["key"], "alone");
    assert_eq!(results[3]["ok"]["kind"], "freeze");
    assert_eq!(api.balance(w.alice).await, (10_500, 10_500));
    assert_eq!(api.balance(w.bob).await, (9_500, 9_400));

    let chain_ok = json!([
        batch_transfer("ok-1", w.alice, w.bob, 100, true),
        batch_transfer("ok-2", w.bob, w.alice, 100, false),
    ]);
    let response = api
        .post_ok(
            "/v1/batches",
            json!({"operations": chain_ok}),
            StatusCode::OK,
        )
        .await;
    assert!(
        response["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|result| result["ok"].is_object())
    );
    api.assert_sound().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_batches_are_refused_whole() {
    let api = Api::start().await;
    let w = world(&api, 10_000).await;
    let mut unknown_currency = batch_transfer("bad-currency", w.alice, w.bob, 1, false);
    unknown_currency["legs"][0]["currency"] = json!("XYZ");
    let cases = [
        (
            json!({"operations": [batch_transfer("fine", w.alice, w.bob, 1, false), unknown_currency]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "UNKNOWN_CURRENCY",
        ),
        (
            json!({"operations": [{"type": "teleport", "key": "t"}]}),
            StatusCode::BAD_REQUEST,
            "MALFORMED_REQUEST",
        ),
        (
            json!({"operations": [{"type": "void_pending", "key": "v"}]}),
            StatusCode::BAD_REQUEST,
            "MALFORMED_REQUEST",
        ),
    ];
    for (body, status, code) in cases {
        let (got, error) = api.post("/v1/batches", body).await;
        assert_eq!(
            (got, error["code"].as_str()),
            (status, Some(code)),
            "{error}"
        );
    }
    let too_many: Vec<Value> = (0..=ledger::BATCH_OPERATIONS_MAX)
        .map(|index| json!({"type": "void_pending", "key": format!("v{index}"), "pending_id": 1}))
        .collect();
    let (status, error) = api
        .post("/v1/batches", json!({"operations": too_many}))
        .await;
    assert_eq!(
        (status, error["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("BATCH_TOO_LARGE"))
    );
    assert_eq!(api.balance(w.alice).await, (10_000, 10_000));
    let statement = api
        .get_ok(&format!("/v1/accounts/{}/statement", w.bob))
        .await;
    assert_eq!(statement["lines"].as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn internal_reconciliation_tells_operators_transfers_from_unexplained_ones() {
    let api = Api::start().await;
    // The world's fundings (`fund-0`, `fund-1`) follow no pattern and are
    // not under `manual-`: nothing explains them. Nor does anything
    // explain keys that only look like the engine's.
    let w = world(&api, 1_000).await;
    for key in ["manual-correction-1", "hold-007", "hold-1-post"] {
        api.post_ok(
            "/v1/transfers",
            transfer_body(key, w.alice, w.bob, 10),
            StatusCode::CREATED,
        )
        .await;
    }
    let report = api.get_ok("/v1/recon/internal").await;
    assert_eq!(report["clean"], json!(false), "{report}");
    assert_eq!(report["manual_transfers"], json!(1));
    assert_eq!(report["transfers_checked"], json!(5));
    assert_eq!(
        report["counts"],
        json!([{"code": "TRANSFER_WITHOUT_RECORD", "description": "transfer without any business record", "count": 4}])
    );
    let findings: Vec<(&str, &str, &str)> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|finding| {
            (
                finding["code"].as_str().unwrap(),
                finding["subject"].as_str().unwrap(),
                finding["key"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        findings,
        [
            ("TRANSFER_WITHOUT_RECORD", "transfer", "fund-0"),
            ("TRANSFER_WITHOUT_RECORD", "transfer", "fund-1"),
            ("TRANSFER_WITHOUT_RECORD", "transfer", "hold-007"),
            ("TRANSFER_WITHOUT_RECORD", "transfer", "hold-1-post"),
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_of_the_engines_patterns_are_refused_to_free_transfers() {
    let api = Api::start().await;
    let w = world(&api, 1_000).await;
    for key in [
        "hold-5",
        "collect-12",
        "settle-3",
        "expire-9",
        "recon-suspense-simbank-7",
    ] {
        let (status, body) = api
            .post("/v1/transfers", transfer_body(key, w.alice, w.bob, 10))
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{key}: {body}");
        assert_eq!(body["code"], json!("RESERVED_KEY"), "{key}");
    }
    let (status, body) = api
        .post(
            "/v1/batches",
            json!({"operations": [
                {"type": "freeze", "key": "manual-freeze-1", "account_id": w.bob, "amount_minor": 1},
                {"type": "freeze", "key": "refund-part-4", "account_id": w.bob, "amount_minor": 1},
            ]}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["code"], json!("RESERVED_KEY"));
    // Refused whole: nothing was frozen.
    let report = api.get_ok("/v1/recon/internal").await;
    assert_eq!(report["manual_transfers"], json!(0), "{report}");
}

#[tokio::test(flavor = "multi_thread")]
async fn internal_reconciliation_of_an_empty_store_is_clean() {
    let api = Api::start().await;
    let report = api.get_ok("/v1/recon/internal").await;
    assert_eq!(report["clean"], json!(true), "{report}");
    assert_eq!(report["findings"], json!([]));
}

#[tokio::test(flavor = "multi_thread")]
async fn openapi_document_lists_every_endpoint() {
    let api = Api::start().await;
    let document = api.get_ok("/openapi.json").await;
    assert!(
        document["openapi"].as_str().unwrap().starts_with("3."),
        "{}",
        document["openapi"]
    );
    assert_eq!(document, serde_json::to_value(server::openapi()).unwrap());
    let endpoints = [
        ("/health", "get"),
        ("/openapi.json", "get"),
        ("/v1/ledger/check", "get"),
        ("/v1/accounts", "post"),
        ("/v1/accounts/{id}", "get"),
        ("/v1/accounts/{id}/balance", "get"),
        ("/v1/accounts/{id}/statement", "get"),
        ("/v1/accounts/{id}/freeze", "post"),
        ("/v1/accounts/{id}/unfreeze", "post"),
        ("/v1/transfers", "post"),
        ("/v1/transfers/{id}", "get"),
        ("/v1/transfers/{id}/post", "post"),
        ("/v1/transfers/{id}/void", "post"),
        ("/v1/transfers/{id}/reverse", "post"),
        ("/v1/batches", "post"),
        ("/v1/merchants", "post"),
        ("/v1/payments", "post"),
        ("/v1/payments/{id}", "get"),
        ("/v1/trades/{out_trade_no}", "get"),
        ("/v1/trades/{out_trade_no}/release", "post"),
        ("/v1/trades/{out_trade_no}/escrow", "get"),
        ("/v1/escrows/release", "post"),
        ("/v1/refunds", "post"),
        ("/v1/refunds/{id}", "get"),
        ("/v1/refunds/{id}/review", "post"),
        ("/v1/channels", "get"),
        ("/v1/channels/outages", "post"),
        ("/v1/review/refunds", "get"),
        ("/v1/fees/quote", "post"),
        ("/v1/fees/rules", "get"),
        ("/v1/fees/rules/history", "get"),
        ("/v1/fees/rules/{id}", "get"),
        ("/v1/fees/rules/{id}", "put"),
        ("/v1/fees/rules/{id}", "delete"),
        ("/v1/bills", "get"),
        ("/v1/fee-account", "get"),
        ("/v1/fee-account/deposits", "post"),
        ("/v1/merchants/{id}/fee-account/deposits", "post"),
        ("/v1/fee-bills", "get"),
        ("/v1/recon/discrepancies", "get"),
        ("/v1/recon/discrepancies/{id}", "get"),
        ("/v1/recon/discrepancies/{id}/actions", "post"),
        ("/v1/recon/internal", "get"),
        ("/v1/agreements", "post"),
        ("/v1/agreements/{id}", "get"),
        ("/v1/agreements/{id}/confirm", "post"),
        ("/v1/agreements/{id}/revoke", "post"),
        ("/v1/channels/{code}/notifications", "post"),
        ("/v1/collection-batches", "post"),
        ("/v1/collection-batches/{id}", "get"),
        ("/v1/collection-batches/{id}/return-file", "get"),
    ];
    let paths = document["paths"].as_object().unwrap();
    let distinct_paths: std::collections::HashSet<_> =
        endpoints.iter().map(|(path, _)| *path).collect();
    assert_eq!(
        paths.len(),
        distinct_paths.len(),
        "{:?}",
        paths.keys().collect::<Vec<_>>()
    );
    for (path, method) in endpoints {
        assert!(
            paths[path][method].is_object(),
            "{method} {path} is missing"
        );
    }
    let schemas = document["components"]["schemas"].as_object().unwrap();
    for schema in [
        "ErrorBody",
        "TransferRequest",
        "TransferResponse",
        "AccountResponse",
        "BatchOperation",
    ] {
        assert!(schemas.contains_key(schema), "schema {schema} is missing");
    }
    let mut references = Vec::new();
    collect_references(&document, &mut references);
    assert!(!references.is_empty());
    for reference in references {
        let name = reference
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("unexpected reference {reference}"));
        assert!(schemas.contains_key(name), "dangling reference {reference}");
    }
}

/// Every `$ref` in a JSON document.
fn collect_references(value: &Value, references: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("$ref", Value::String(reference)) => references.push(reference.clone()),
                    _ => collect_references(value, references),
                }
            }
        }
        Value::Array(values) => values
            .iter()
            .for_each(|value| collect_references(value, references)),
        _ => {}
    }
}
