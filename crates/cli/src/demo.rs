//! A short scripted business day, driven through the HTTP API exactly as a
//! merchant system or an operator would.

use crate::signed::MerchantClient;
use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use std::net::SocketAddr;

struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<(u16, Value)> {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("calling {path}"))?;
        let status = response.status().as_u16();
        let body = response
            .json()
            .await
            .with_context(|| format!("reading {path}"))?;
        Ok((status, body))
    }

    async fn post(&self, path: &str, body: Value) -> Result<(u16, Value)> {
        self.send(reqwest::Method::POST, path, Some(body)).await
    }

    async fn get(&self, path: &str) -> Result<Value> {
        let (status, body) = self.send(reqwest::Method::GET, path, None).await?;
        if status >= 400 {
            bail!("GET {path} answered {status}: {body}");
        }
        Ok(body)
    }

    /// POSTs and insists on success; returns the body.
    async fn create(&self, path: &str, body: Value) -> Result<Value> {
        let (status, answer) = self.post(path, body).await?;
        if status >= 400 {
            bail!("POST {path} answered {status}: {answer}");
        }
        Ok(answer)
    }
}

fn id_of(body: &Value) -> Result<i64> {
    body["id"]
        .as_i64()
        .with_context(|| format!("no id in {body}"))
}

fn yuan(amount_minor: i64) -> String {
    money::Money::new(amount_minor, money::Currency::CNY).to_string()
}

/// Each element of the JSON array `list` (none if it is not one), described.
fn described(list: &Value, describe: impl Fn(&Value) -> String) -> Vec<String> {
    list.as_array()
        .into_iter()
        .flatten()
        .map(describe)
        .collect()
}

/// A payment's or refund's part: its funding source and amount.
fn source_and_amount(part: &Value) -> String {
    format!(
        "{} {}",
        part["source"].as_str().unwrap_or("?"),
        yuan(part["amount_minor"].as_i64().unwrap_or(0))
    )
}

/// Runs the example against a server on `listen`, then serves on if asked.
/// The day settles by `terms`, or D+1 for everyone without them.
pub async fn run(
    state: server::AppState,
    listen: SocketAddr,
    keep_serving: bool,
    terms: Option<settlement::SettlementConfig>,
) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    let address = listener.local_addr()?;
    let settling = state.clone();
    let server = tokio::spawn(server::serve_state(listener, state));
    let client = Client {
        http: reqwest::Client::new(),
        base: format!("http://{address}"),
    };
    println!("paycore API on http://{address} (OpenAPI at /openapi.json)");
    script(&client).await?;
    let shop = payments(&client).await?;
    stored_value(&shop).await?;
    crate::debits::run(&client.http, &client.base).await?;
    crate::business_day::run(&client.http, &client.base).await?;
    settle_the_day(&settling, terms).await?;
    fees(&client, &shop).await?;
    split_payouts(&client, &shop, &settling).await?;
    if keep_serving {
        println!("serving on http://{address}; press Ctrl-C to stop");
        server
            .await
            .context("server task")?
            .context("serving HTTP")?;
    } else {
        server.abort();
    }
    Ok(())
}

/// The ledger alone, as an operator uses it: free transfers, whose keys are
/// under `manual-` so internal reconciliation knows them for operators' own.
async fn script(client: &Client) -> Result<()> {
    let run = store::now_micros();
    let account = |subject: &str, kind: &str, owner_kind: &str, owner: &str, unlimited: bool| {
        json!({
            "subject_code": subject, "kind": kind, "owner_kind": owner_kind,
            "owner_id": format!("{owner}-{run}"), "currency": "CNY", "unlimited_overdraft": unlimited,
        })
    };
    let clearing = id_of(
        &client
            .create(
                "/v1/accounts",
                account("1002", "channel_clearing", "channel", "simbank", true),
            )
            .await?,
    )?;
    let alice = id_of(
        &client
            .create(
                "/v1/accounts",
                account("2241", "member_cash", "member", "alice", false),
            )
            .await?,
    )?;
    let merchant = id_of(
        &client
            .create(
                "/v1/accounts",
                account("2202", "merchant_pending", "merchant", "m-coffee", false),
            )
            .await?,
    )?;
    let income = id_of(
        &client
            .create(
                "/v1/accounts",
                account("6001", "platform_income", "platform", "fees", false),
            )
            .await?,
    )?;
    println!(
        "opened accounts: channel clearing {clearing}, alice {alice}, merchant {merchant}, fee income {income}"
    );

    let leg = |account_id: i64, side: &str, amount_minor: i64| json!({"account_id": account_id, "side": side, "amount_minor": amount_minor, "currency": "CNY"});
    let top_up = json!({"key": format!("manual-topup-{run}"), "description": "top-up via simbank",
        "legs": [leg(clearing, "debit", 10_000), leg(alice, "credit", 10_000)]});
    let first = client.create("/v1/transfers", top_up.clone()).await?;
    let retry = client.create("/v1/transfers", top_up).await?;
    println!(
        "top-up {} posted; retried with the same key -> transfer {} again",
        yuan(10_000),
        id_of(&retry)?
    );
    if id_of(&first)? != id_of(&retry)? {
        bail!("a retried key posted twice");
    }

    let payment = client
        .create("/v1/transfers", json!({"key": format!("manual-pay-{run}"), "description": "coffee, fee 0.6%",
            "legs": [leg(alice, "debit", 3_000), leg(merchant, "credit", 2_982), leg(income, "credit", 18)]}))
        .await?;
    println!(
        "alice paid the merchant {} (merchant {} + fee {})",
        yuan(3_000),
        yuan(2_982),
        yuan(18)
    );

    let hold = client
        .create("/v1/transfers", json!({"key": format!("manual-auth-{run}"), "pending": true, "timeout_seconds": 600,
            "description": "pre-authorisation", "legs": [leg(alice, "debit", 2_000), leg(merchant, "credit", 2_000)]}))
        .await?;
    let hold_id = id_of(&hold)?;
    client
        .create(
            &format!("/v1/transfers/{hold_id}/post"),
            json!({"key": format!("manual-capture-{run}"), "amount_minor": 1_500}),
        )
        .await?;
    println!(
        "reserved {} then captured {}; the rest went back to alice",
        yuan(2_000),
        yuan(1_500)
    );

    let payment_id = id_of(&payment)?;
    client
        .create(
            &format!("/v1/transfers/{payment_id}/reverse"),
            json!({"key": format!("manual-refund-{run}"), "description": "refund"}),
        )
        .await?;
    println!("refunded the coffee by reversing transfer {payment_id}");

    let (status, refused) = client
        .post(
            "/v1/transfers",
            json!({"key": format!("manual-overspend-{run}"),
            "legs": [leg(alice, "debit", 1_000_000), leg(merchant, "credit", 1_000_000)]}),
        )
        .await?;
    println!(
        "an overspend was refused: HTTP {status} {}",
        refused["code"].as_str().unwrap_or("?")
    );

    for (name, account_id) in [
        ("channel clearing", clearing),
        ("alice", alice),
        ("merchant", merchant),
        ("fee income", income),
    ] {
        let body = client.get(&format!("/v1/accounts/{account_id}")).await?;
        let balance = &body["balance"];
        println!(
            "  {name:<17} ledger {:>14}  available {:>14}",
            yuan(balance["ledger_minor"].as_i64().unwrap_or_default()),
            yuan(balance["available_minor"].as_i64().unwrap_or_default())
        );
    }
    let statement = client
        .get(&format!("/v1/accounts/{alice}/statement"))
        .await?;
    println!("alice's statement:");
    for line in statement["lines"].as_array().into_iter().flatten() {
        println!(
            "  transfer {:>6} {:<12} {:<6} {:>12}  balance {:>12}  {}",
            line["transfer_id"],
            line["kind"].as_str().unwrap_or(""),
            line["side"].as_str().unwrap_or(""),
            yuan(line["amount_minor"].as_i64().unwrap_or_default()),
            yuan(line["balance_after_minor"].as_i64().unwrap_or_default()),
            line["description"].as_str().unwrap_or("")
        );
    }
    let check = client.get("/v1/ledger/check").await?;
    println!("ledger check: sound = {}", check["sound"]);
    if check["sound"] != Value::Bool(true) {
        bail!("the ledger check found violations: {check}");
    }
    Ok(())
}

/// A merchant's day in miniature: signed payments of every kind through the
/// simulator channel. The merchant is returned for the fee step.
async fn payments(client: &Client) -> Result<MerchantClient> {
    let run = store::now_micros();
    let merchant_id = format!("m-coffee-{run}");
    let shop =
        MerchantClient::register(&client.http, &client.base, &merchant_id, "Coffee Corner").await?;
    println!("registered merchant {merchant_id}; its requests are signed with HMAC-SHA256");
    let payer = format!("bob-{run}");
    let pay = |out_trade_no: &str, product: &str, sources: Value| {
        let amount: i64 = sources
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|part| part["amount_minor"].as_i64())
            .sum();
        json!({
            "out_trade_no": out_trade_no, "subject": "flat white", "amount_minor": amount,
            "currency": "CNY", "request_serial": format!("serial-{out_trade_no}"), "product": product,
            "payer_id": payer, "bank": "ICBC", "sources": sources,
        })
    };
    let cases = [
        (
            "top-up by card",
            pay(
                "D1",
                "top_up",
                json!([{"source": "card", "amount_minor": 20_000}]),
            ),
        ),
        (
            "pay from balance",
            pay(
                "D2",
                "instant_transfer",
                json!([{"source": "balance", "amount_minor": 3_200}]),
            ),
        ),
        (
            "balance + card (组合支付)",
            pay(
                "D3",
                "instant_transfer",
                json!([{"source": "balance", "amount_minor": 1_000}, {"source": "card", "amount_minor": 2_500}]),
            ),
        ),
        (
            "card refused by the bank",
            pay(
                "D4",
                "instant_transfer",
                json!([{"source": "card", "amount_minor": 1_891}]),
            ),
        ),
        (
            "card still processing",
            pay(
                "D5",
                "instant_transfer",
                json!([{"source": "card", "amount_minor": 2_892}]),
            ),
        ),
        (
            "balance too low",
            pay(
                "D6",
                "instant_transfer",
                json!([{"source": "balance", "amount_minor": 3_000_000}]),
            ),
        ),
    ];
    for (what, body) in cases {
        let (status, answer) = shop.send("POST", "/v1/payments", Some(&body)).await?;
        if status != 200 {
            bail!("POST /v1/payments answered {status}: {answer}");
        }
        let (_, again) = shop.send("POST", "/v1/payments", Some(&body)).await?;
        if again != answer {
            bail!("a repeated request serial got a different answer");
        }
        println!(
            "  {what:<26} payment {:>3} {:<10} trade {}",
            answer["id"],
            answer["status"].as_str().unwrap_or("?"),
            answer["trade"]["status"].as_str().unwrap_or("?")
        );
    }
    println!("  (a PROCESSING payment is queried and finished by the server within seconds)");
    Ok(shop)
}

/// Stored value with bonus (充值送) and a discount card (折扣卡): a
/// campaign top-up, a payment from the one balance the member sees, split
/// into cash and bonus, and a refund of a discount-card trade, its share
/// back to the discount first.
async fn stored_value(shop: &MerchantClient) -> Result<()> {
    println!();
    let payer = format!("carol-{}", store::now_micros());
    let send = |body: Value| async move {
        let (status, answer) = shop.send("POST", "/v1/payments", Some(&body)).await?;
        if status != 200 {
            bail!("POST /v1/payments answered {status}: {answer}");
        }
        Ok::<Value, anyhow::Error>(answer)
    };
    let body = |trade: &str, product: &str, sources: Value, campaign: Option<&str>| {
        let amount: i64 = sources
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|part| part["amount_minor"].as_i64())
            .sum();
        json!({
            "out_trade_no": trade, "subject": "stored value", "amount_minor": amount,
            "currency": "CNY", "request_serial": format!("serial-{trade}"), "product": product,
            "payer_id": payer, "bank": "ICBC", "sources": sources, "campaign": campaign,
        })
    };
    let topped = send(body(
        "S1",
        "top_up",
        json!([{"source": "card", "amount_minor": 10_000}]),
        Some("topup-100-get-180"),
    ))
    .await?;
    println!(
        "stored value: top-up of {} in campaign {}: {}, bonus {}",
        yuan(10_000),
        topped["campaign"].as_str().unwrap_or("?"),
        topped["status"].as_str().unwrap_or("?"),
        yuan(topped["bonus_minor"].as_i64().unwrap_or(0))
    );
    let spent = send(body(
        "S2",
        "instant_transfer",
        json!([{"source": "stored_value", "amount_minor": 14_000}]),
        None,
    ))
    .await?;
    let parts = described(&spent["instructions"], source_and_amount);
    println!(
        "  {} from the one balance: {} ({})",
        yuan(14_000),
        spent["status"].as_str().unwrap_or("?"),
        parts.join(" + ")
    );
    send(body(
        "S3",
        "instant_transfer",
        json!([{"source": "discount", "amount_minor": 300}, {"source": "balance", "amount_minor": 1_700},
               {"source": "wallet", "amount_minor": 1_000}]),
        None,
    ))
    .await?;
    let refund = json!({"out_trade_no": "S3", "refund_serial": "S3-R1", "amount_minor": 1_500, "reason": "returned"});
    let (status, refunded) = shop.send("POST", "/v1/refunds", Some(&refund)).await?;
    if status != 200 {
        bail!("POST /v1/refunds answered {status}: {refunded}");
    }
    let parts = described(&refunded["parts"], source_and_amount);
    println!(
        "  discount-card trade of {} (10% discount), {} refunded: {} ({})",
        yuan(3_000),
        yuan(1_500),
        refunded["status"].as_str().unwrap_or("?"),
        parts.join(" + ")
    );
    Ok(())
}

/// Fees as money, once the shop is settled: a 代付 payout takes its fee
/// beside it from the available balance, and the merchant's prepaid fee
/// account is filled by a wired deposit and from its available balance.
async fn fees(client: &Client, shop: &MerchantClient) -> Result<()> {
    println!();
    let merchant = &shop.merchant_id;
    let fee_account =
        |answer: &Value| yuan(answer["balance"]["available_minor"].as_i64().unwrap_or(0));
    let body = json!({
        "out_trade_no": "P1", "subject": "supplier invoice", "amount_minor": 1_000,
        "currency": "CNY", "request_serial": "serial-P1", "product": "merchant_payout",
        "payer_id": merchant, "bank": "ICBC",
        "sources": [{"source": "bank_account", "amount_minor": 1_000}],
    });
    let (status, payout) = shop.send("POST", "/v1/payments", Some(&body)).await?;
    if status != 200 {
        bail!("POST /v1/payments answered {status}: {payout}");
    }
    let fee = payout["fees"][0]["fee_minor"].as_i64().unwrap_or(0);
    println!(
        "fees: 代付 of {} to a bank account: {} with its fee {} taken from the available balance ({})",
        yuan(1_000),
        payout["status"].as_str().unwrap_or("?"),
        yuan(fee),
        payout["fees"][0]["funding"].as_str().unwrap_or("?"),
    );
    let wired = client
        .create(
            &format!("/v1/merchants/{merchant}/fee-account/deposits"),
            json!({"reference": "WIRE-1", "amount_minor": 5_000, "currency": "CNY", "channel": "simbank"}),
        )
        .await?;
    let body = json!({"reference": "TOPUP-1", "amount_minor": 1_000, "currency": "CNY"});
    let (status, moved) = shop
        .send("POST", "/v1/fee-account/deposits", Some(&body))
        .await?;
    if status != 200 {
        bail!("POST /v1/fee-account/deposits answered {status}: {moved}");
    }
    println!(
        "  prepaid fee account (预充实扣): {} wired in (operator), then {} from the available balance: {} available",
        fee_account(&wired["account"]),
        yuan(1_000),
        fee_account(&moved["account"]),
    );
    Ok(())
}

/// 代付 beyond what the bank-account channel takes in one transaction
/// (simbank: 50,000.00): the merchant wires 250,000.00 in for payouts (an
/// operator books it), then pays out 120,000.00, sent as three channel
/// orders, and 100,000.91, whose last part the bank refuses: the payout is
/// PARTIALLY_PAID and the refused part is back in the available balance.
async fn split_payouts(
    client: &Client,
    shop: &MerchantClient,
    state: &server::AppState,
) -> Result<()> {
    use ledger::{AccountKind, OwnerKind};
    let run = store::now_micros();
    let merchant = &shop.merchant_id;
    let payments = state.payments();
    let clearing = payments
        .account(
            OwnerKind::Channel,
            "simbank",
            AccountKind::ChannelClearing,
            money::Currency::CNY,
        )
        .await?;
    let available = payments
        .account(
            OwnerKind::Merchant,
            merchant,
            AccountKind::MerchantAvailable,
            money::Currency::CNY,
        )
        .await?;
    let wire_minor = 25_000_000;
    let leg = |account_id: i64, side: &str| json!({"account_id": account_id, "side": side, "amount_minor": wire_minor, "currency": "CNY"});
    client
        .create(
            "/v1/transfers",
            json!({"key": format!("manual-wire-{run}"), "description": "merchant's wire for payouts",
                   "legs": [leg(clearing, "debit"), leg(available, "credit")]}),
        )
        .await?;
    println!();
    println!(
        "split payouts: {} wired in for 代付 (booked by an operator)",
        yuan(wire_minor)
    );
    for (trade, amount_minor) in [("P-SPLIT-1", 12_000_000), ("P-SPLIT-2", 10_000_091)] {
        let body = json!({
            "out_trade_no": format!("{trade}-{run}"), "subject": "supplier invoice",
            "amount_minor": amount_minor, "currency": "CNY",
            "request_serial": format!("serial-{trade}-{run}"), "product": "merchant_payout",
            "payer_id": merchant, "bank": "ICBC",
            "sources": [{"source": "bank_account", "amount_minor": amount_minor}],
        });
        let (status, payout) = shop.send("POST", "/v1/payments", Some(&body)).await?;
        if status != 200 {
            bail!("POST /v1/payments answered {status}: {payout}");
        }
        let parts = described(&payout["instructions"][0]["parts"], |part| {
            format!(
                "{} {}",
                yuan(part["amount_minor"].as_i64().unwrap_or(0)),
                part["status"].as_str().unwrap_or("?")
            )
        });
        println!(
            "  代付 of {}: {}, {} paid out in {} channel orders ({})",
            yuan(amount_minor),
            payout["status"].as_str().unwrap_or("?"),
            yuan(payout["paid_out_minor"].as_i64().unwrap_or(0)),
            parts.len(),
            parts.join(", "),
        );
    }
    Ok(())
}

/// Settles the day's clearing entries as tomorrow's run would, on D+1 terms
/// (calendar days, so the demo runs on any date) unless `terms` say
/// otherwise, and shows one merchant's bill summary beside its batch.
async fn settle_the_day(
    state: &server::AppState,
    terms: Option<settlement::SettlementConfig>,
) -> Result<()> {
    use settlement::SettlementStore;
    println!();
    let now = store::now_micros();
    let today = settlement::parse_date(&engine::business_date(now)?.to_string())?;
    let tomorrow = today
        .next_day()
        .context("the day after today is past the calendar's range")?;
    let terms = terms.unwrap_or_else(|| {
        settlement::SettlementConfig::uniform(settlement::MerchantTerms {
            cycle: settlement::Cycle::D(1),
            destination: settlement::Destination::Available,
            minimum_minor: 0,
            reconciled_only: false,
        })
    });
    let report = server::settlement::run(
        state,
        &settlement::Calendar::builtin()?,
        &terms,
        tomorrow,
        now,
        &server::settlement::Quiet,
    )
    .await
    .context("settling the day")?;
    println!(
        "settlement as of {tomorrow} (D+1): {} entries into {} batches; {} carried (net negative), \
         {} held (refunds still in flight at the channel reserve part of the money), {} already settled",
        report.entries_settled,
        report.batches_paid,
        report.batches_carried,
        report.batches_held,
        report.batches_existing
    );
    for (currency, net) in &report.net_minor {
        let fees = report.fees_minor.get(currency).copied().unwrap_or(0);
        println!(
            "  net to merchants' available balances {}, fees to platform income {}",
            money::Money::new(*net, *currency),
            money::Money::new(fees, *currency)
        );
    }
    if !report.failures.is_empty() {
        bail!("settlement left batches unfinished: {:?}", report.failures);
    }
    let batches = state.store().batches(&tomorrow.to_string()).await?;
    if let Some(batch) = batches.iter().find(|batch| batch.collection_count > 0) {
        let entries = state
            .store()
            .clearing_entries(&batch.merchant_id, &today.to_string())
            .await?;
        let bill = settlement::write_bill(&entries, settlement::BillType::All)?;
        if let Some(totals) = bill.totals.get(&batch.currency) {
            println!(
                "  bill of {} on {today}: {} rows, net {}; its batch {}: net {}",
                batch.merchant_id,
                bill.rows,
                money::Money::new(totals.net_minor, batch.currency),
                batch.id,
                money::Money::new(batch.net_minor, batch.currency)
            );
        }
    }
    Ok(())
}
