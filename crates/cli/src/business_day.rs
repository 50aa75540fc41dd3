//! A business day in small: merchants and members, two thousand signed
//! payments of every kind through the simulated channels (top-ups, balance,
//! balance plus card, refused cards, PROCESSING ones, duplicate payments,
//! escrow trades), then refunds and escrow releases (确认收货), then a
//! summary and the ledger check.

use crate::signed::MerchantClient;
use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

const MERCHANTS: usize = 5;
const MEMBERS: u64 = 200;
const PAYMENTS: usize = 2_000;
const CLIENTS: usize = 16;
/// Refund half of one successful merchant payment in this many.
const REFUND_ONE_IN: u64 = 20;
/// Of the escrow trades paid, one in this many is left in escrow (it
/// releases by itself after the product's days), and one in this many is
/// refunded in part before its buyer confirms receipt.
const ESCROW_LEFT_HELD_ONE_IN: u64 = 4;
const ESCROW_REFUNDED_FIRST_ONE_IN: u64 = 5;
/// How long PROCESSING payments may take to be resolved by the server.
const RESOLVE_WAIT_MAX: Duration = Duration::from_secs(20);

/// A deterministic pseudo-random sequence (SplitMix64).
struct Sequence(u64);

impl Sequence {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut value = self.0;
        value = (value ^ (value >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        value = (value ^ (value >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        value ^ (value >> 31)
    }

    fn between(&mut self, low: u64, high: u64) -> i64 {
        i64::try_from(low + self.next() % (high - low)).unwrap_or(0)
    }
}

/// One payment to make: what kind, the body, and whether it is the second
/// payment of a trade (a duplicate in the making).
struct Planned {
    kind: &'static str,
    bodies: Vec<Value>,
}

fn body(run: i64, trade: &str, serial: &str, product: &str, payer: &str, sources: Value) -> Value {
    let amount: i64 = sources
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|part| part["amount_minor"].as_i64())
        .sum();
    json!({
        "out_trade_no": format!("{run}-{trade}"), "subject": "goods", "amount_minor": amount,
        "currency": "CNY", "request_serial": format!("{run}-{serial}"), "product": product,
        "payer_id": payer, "bank": "ICBC", "sources": sources,
    })
}

fn plan(run: i64, index: usize, sequence: &mut Sequence) -> Planned {
    let payer = format!("member-{run}-{}", sequence.next() % MEMBERS);
    let trade = format!("T{index}");
    let card = |amount: i64| json!([{"source": "card", "amount_minor": amount}]);
    let roll = sequence.next() % 100;
    let (kind, product, sources) = match roll {
        0..15 => ("top-up", "top_up", card(sequence.between(100, 500) * 100)),
        15..20 => (
            "withdrawal",
            "withdrawal",
            json!([{"source": "bank_account", "amount_minor": sequence.between(5, 80) * 100}]),
        ),
        20..50 => (
            "balance",
            "instant_transfer",
            json!([{"source": "balance", "amount_minor": sequence.between(5, 80) * 100}]),
        ),
        50..70 => (
            "balance + card",
            "instant_transfer",
            json!([{"source": "balance", "amount_minor": 1_000},
                   {"source": "card", "amount_minor": sequence.between(20, 100) * 100}]),
        ),
        70..85 => (
            "card",
            "instant_transfer",
            card(sequence.between(20, 300) * 100),
        ),
        85..90 => (
            "escrow trade",
            "escrow_trade",
            card(sequence.between(20, 300) * 100),
        ),
        90..95 => (
            "card refused",
            "instant_transfer",
            card(sequence.between(20, 300) * 100 + 91),
        ),
        95..98 => (
            "card processing",
            "instant_transfer",
            card(sequence.between(20, 300) * 100 + 92),
        ),
        _ => {
            // Paid twice while the first attempt is still PROCESSING.
            let sources = card(sequence.between(20, 300) * 100 + 92);
            let first = body(
                run,
                &trade,
                &format!("S{index}a"),
                "instant_transfer",
                &payer,
                sources.clone(),
            );
            let second = body(
                run,
                &trade,
                &format!("S{index}b"),
                "instant_transfer",
                &payer,
                sources,
            );
            return Planned {
                kind: "paid twice",
                bodies: vec![first, second],
            };
        }
    };
    Planned {
        kind,
        bodies: vec![body(
            run,
            &trade,
            &format!("S{index}"),
            product,
            &payer,
            sources,
        )],
    }
}

/// What one payment ended as.
struct Outcome {
    kind: &'static str,
    merchant: usize,
    id: i64,
    out_trade_no: String,
    amount_minor: i64,
    product: String,
    status: String,
}

pub async fn run(http: &reqwest::Client, base: &str) -> Result<()> {
    let run = store::now_micros();
    println!();
    println!(
        "a business day: {MERCHANTS} merchants, {MEMBERS} members, {PAYMENTS} payments from {CLIENTS} clients"
    );
    let mut merchants = Vec::with_capacity(MERCHANTS);
    for index in 0..MERCHANTS {
        let id = format!("shop-{run}-{index}");
        merchants.push(MerchantClient::register(http, base, &id, &format!("Shop {index}")).await?);
    }
    let merchants = Arc::new(merchants);
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(CLIENTS);
    for client in 0..CLIENTS {
        let merchants = Arc::clone(&merchants);
        tasks.push(tokio::spawn(async move {
            let mut sequence = Sequence(client as u64);
            let mut outcomes = Vec::new();
            for index in (client..PAYMENTS).step_by(CLIENTS) {
                let merchant = index % MERCHANTS;
                let planned = plan(run, index, &mut sequence);
                for body in planned.bodies {
                    let (status, answer) = merchants[merchant]
                        .send("POST", "/v1/payments", Some(&body))
                        .await?;
                    if status != 200 {
                        // A refusal before any order (a member over its
                        // daily limit) is an outcome of the day too.
                        outcomes.push(Outcome {
                            kind: planned.kind,
                            merchant,
                            id: 0,
                            out_trade_no: String::new(),
                            amount_minor: 0,
                            product: String::new(),
                            status: answer["code"].as_str().unwrap_or("REFUSED").to_owned(),
                        });
                        continue;
                    }
                    outcomes.push(Outcome {
                        kind: planned.kind,
                        merchant,
                        id: answer["id"].as_i64().context("no payment id")?,
                        out_trade_no: answer["trade"]["out_trade_no"]
                            .as_str()
                            .unwrap_or("")
                            .to_owned(),
                        amount_minor: answer["amount_minor"].as_i64().unwrap_or(0),
                        product: answer["product"].as_str().unwrap_or("").to_owned(),
                        status: answer["status"].as_str().unwrap_or("?").to_owned(),
                    });
                }
            }
            Ok::<_, anyhow::Error>(outcomes)
        }));
    }
    let mut outcomes = Vec::with_capacity(PAYMENTS);
    for task in tasks {
        outcomes.extend(task.await??);
    }
    let seconds = started.elapsed().as_secs_f64();
    println!("  {} payment requests in {seconds:.1} s", outcomes.len());
    let duplicates = settle_processing(&merchants, &mut outcomes).await?;
    let refunds = refund_some(&merchants, &outcomes).await?;
    let escrows = release_escrows(&merchants, &outcomes).await?;
    let reviewed = review_duplicates(http, base).await?;
    summarise(&outcomes, duplicates, &refunds);
    println!(
        "  escrow trades: {} released as their buyers confirmed receipt ({} of them refunded in part first), {} still held until they release by themselves",
        escrows.released, escrows.refunded_first, escrows.held
    );
    println!(
        "  an operator approved {reviewed} refunds from the review queue (duplicate payments and late batch lines)"
    );
    let check: Value = http
        .get(format!("{base}/v1/ledger/check"))
        .send()
        .await?
        .json()
        .await?;
    println!(
        "  ledger check: sound = {} ({} accounts, {} transfers, {} entries)",
        check["sound"],
        check["accounts_checked"],
        check["transfers_checked"],
        check["entries_checked"]
    );
    if check["sound"] != Value::Bool(true) {
        bail!("the ledger check found violations: {check}");
    }
    Ok(())
}

/// Waits for the server to resolve every PROCESSING payment; returns how
/// many successes were duplicates of an earlier one.
async fn settle_processing(
    merchants: &[MerchantClient],
    outcomes: &mut [Outcome],
) -> Result<usize> {
    let started = Instant::now();
    loop {
        let mut waiting = 0;
        let mut duplicates = 0;
        for outcome in outcomes.iter_mut().filter(|outcome| outcome.id > 0) {
            if outcome.status == "PROCESSING" {
                let path = format!("/v1/payments/{}", outcome.id);
                let (_, answer) = merchants[outcome.merchant].send("GET", &path, None).await?;
                outcome.status = answer["status"].as_str().unwrap_or("?").to_owned();
                if answer["duplicate_of"].is_i64() {
                    outcome.kind = "paid twice (duplicate)";
                }
            }
            waiting += usize::from(outcome.status == "PROCESSING");
            duplicates += usize::from(outcome.kind == "paid twice (duplicate)");
        }
        if waiting == 0 {
            return Ok(duplicates);
        }
        if started.elapsed() > RESOLVE_WAIT_MAX {
            println!("  {waiting} payments still PROCESSING after {RESOLVE_WAIT_MAX:?}");
            return Ok(duplicates);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Refunds half of some successful merchant payments; returns the refund
/// statuses by count.
async fn refund_some(
    merchants: &[MerchantClient],
    outcomes: &[Outcome],
) -> Result<BTreeMap<String, usize>> {
    let mut statuses = BTreeMap::new();
    let candidates = outcomes.iter().filter(|outcome| {
        outcome.status == "SUCCESS"
            && outcome.product == "instant_transfer"
            && outcome.kind != "paid twice (duplicate)"
            && outcome.id.unsigned_abs() % REFUND_ONE_IN == 0
    });
    for outcome in candidates {
        let body = json!({
            "out_trade_no": outcome.out_trade_no, "refund_serial": format!("refund-{}", outcome.id),
            "amount_minor": outcome.amount_minor / 2, "reason": "returned",
        });
        let (_, answer) = merchants[outcome.merchant]
            .send("POST", "/v1/refunds", Some(&body))
            .await?;
        let status = answer["status"]
            .as_str()
            .or(answer["code"].as_str())
            .unwrap_or("?")
            .to_owned();
        *statuses.entry(status).or_insert(0) += 1;
    }
    Ok(statuses)
}

/// What became of the day's escrow trades.
struct Escrows {
    released: usize,
    refunded_first: usize,
    held: usize,
}

/// The buyers of most successful escrow trades confirm receipt and their
/// merchants release them; some are refunded in part before; some stay
/// held.
async fn release_escrows(merchants: &[MerchantClient], outcomes: &[Outcome]) -> Result<Escrows> {
    let mut escrows = Escrows {
        released: 0,
        refunded_first: 0,
        held: 0,
    };
    let paid = outcomes
        .iter()
        .filter(|outcome| outcome.status == "SUCCESS" && outcome.product == "escrow_trade");
    for outcome in paid {
        let merchant = &merchants[outcome.merchant];
        let id = outcome.id.unsigned_abs();
        if id % ESCROW_LEFT_HELD_ONE_IN == 0 {
            escrows.held += 1;
            continue;
        }
        if id % ESCROW_REFUNDED_FIRST_ONE_IN == 0 {
            let body = json!({
                "out_trade_no": outcome.out_trade_no, "refund_serial": format!("escrow-refund-{id}"),
                "amount_minor": outcome.amount_minor / 2, "reason": "half the goods returned",
            });
            let (status, answer) = merchant.send("POST", "/v1/refunds", Some(&body)).await?;
            if status != 200 || answer["status"] != "SUCCESS" {
                bail!(
                    "refunding escrow trade {} answered {status}: {answer}",
                    outcome.out_trade_no
                );
            }
            escrows.refunded_first += 1;
        }
        let path = format!("/v1/trades/{}/release", outcome.out_trade_no);
        let body = json!({"reason": "buyer confirmed receipt"});
        let (status, answer) = merchant.send("POST", &path, Some(&body)).await?;
        if status != 200 || answer["status"] != "RELEASED" {
            bail!(
                "releasing escrow trade {} answered {status}: {answer}",
                outcome.out_trade_no
            );
        }
        escrows.released += 1;
    }
    Ok(escrows)
}

/// An operator approves every refund waiting for review: here, those the
/// duplicate payments raised.
async fn review_duplicates(http: &reqwest::Client, base: &str) -> Result<usize> {
    let queue: Vec<Value> = http
        .get(format!("{base}/v1/review/refunds"))
        .send()
        .await?
        .json()
        .await?;
    for entry in &queue {
        let id = entry["refund"]["id"].as_i64().context("no refund id")?;
        let response = http
            .post(format!("{base}/v1/refunds/{id}/review"))
            .json(&json!({
                "merchant_id": entry["merchant_id"], "approve": true, "operator": "ops-demo",
                "reason": "duplicate payment: the money goes back",
            }))
            .send()
            .await?;
        if !response.status().is_success() {
            bail!(
                "approving refund {id} failed: {}",
                response.text().await.unwrap_or_default()
            );
        }
    }
    Ok(queue.len())
}

fn summarise(outcomes: &[Outcome], duplicates: usize, refunds: &BTreeMap<String, usize>) {
    let mut table: BTreeMap<(&str, &str), (usize, i64)> = BTreeMap::new();
    for outcome in outcomes {
        let cell = table
            .entry((outcome.kind, outcome.status.as_str()))
            .or_default();
        cell.0 += 1;
        cell.1 += outcome.amount_minor;
    }
    println!(
        "  {:<26} {:<20} {:>6} {:>16}",
        "kind", "status", "count", "amount"
    );
    for ((kind, status), (count, amount)) in table {
        let amount = money::Money::new(amount, money::Currency::CNY).to_string();
        println!("  {kind:<26} {status:<20} {count:>6} {amount:>16}");
    }
    println!(
        "  duplicate payments detected: {duplicates}, each raising a refund that waits for review"
    );
    let refunds: Vec<String> = refunds
        .iter()
        .map(|(status, count)| format!("{count} {status}"))
        .collect();
    println!(
        "  merchant refunds of half a payment: {}",
        refunds.join(", ")
    );
}
