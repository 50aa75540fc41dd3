//! The demo's debit collection (代扣): a gym signs its members' cards —
//! three-element and quick-pay signing, one refused by the bank, one
//! revoked — and debits the monthly fee under the agreements, through the
//! signed HTTP API as a merchant system would.

use crate::signed::MerchantClient;
use anyhow::{Context, Result, bail};
use channels::checks::{complete_card_number, complete_resident_id};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// How long a PROCESSING debit may take to be resolved by the server.
const RESOLVE_WAIT_MAX: Duration = Duration::from_secs(20);

/// A card number of `bin` that passes the Luhn check.
fn card(bin: &str, account: &str) -> String {
    complete_card_number(&format!("{bin}{account}")).unwrap_or_default()
}

/// A resident ID number with its MOD 11-2 check character.
fn id_number(first_17: &str) -> String {
    complete_resident_id(first_17).unwrap_or_default()
}

struct Member {
    id: String,
    name: &'static str,
    id_number: String,
    card_number: String,
    phone: &'static str,
}

fn member(run: i64, index: usize, name: &'static str, id_number: String, bin: &str) -> Member {
    Member {
        id: format!("gym-member-{run}-{index}"),
        name,
        id_number,
        card_number: card(bin, &format!("{:09}", run.rem_euclid(1_000_000_000))),
        phone: "13800138000",
    }
}

/// One line of the summary: what was asked, and the answer.
struct Line {
    what: String,
    answer: String,
}

fn answer_of(status: u16, body: &Value) -> String {
    if status == 200 {
        let state = body["status"].as_str().unwrap_or("?");
        match body["failure_code"].as_str() {
            Some(code) => format!("{state} ({code})"),
            None => state.to_owned(),
        }
    } else {
        format!("{status} {}", body["code"].as_str().unwrap_or("?"))
    }
}

/// Signs a member's card; returns the HTTP status and the agreement.
async fn sign(
    gym: &MerchantClient,
    run: i64,
    member: &Member,
    method: &str,
) -> Result<(u16, Value)> {
    let mut body = json!({
        "sign_serial": format!("sign-{run}-{}", member.id), "member_id": member.id,
        "method": method, "name": member.name, "id_number": member.id_number,
        "card_number": member.card_number,
    });
    if method == "quick_pay" {
        body["phone"] = json!(member.phone);
    }
    gym.send("POST", "/v1/agreements", Some(&body)).await
}

/// A monthly fee of `amount_minor` debited from `member` under
/// `agreement_no`.
fn debit(run: i64, label: &str, member: &Member, agreement_no: Option<&str>, amount: i64) -> Value {
    json!({
        "out_trade_no": format!("fee-{run}-{label}"), "subject": "monthly membership",
        "amount_minor": amount, "currency": "CNY", "request_serial": format!("debit-{run}-{label}"),
        "product": "debit_collection", "payer_id": member.id, "agreement_no": agreement_no,
        "sources": [{"source": "card", "amount_minor": amount}],
    })
}

/// Waits for the server to resolve a PROCESSING payment by query.
async fn resolved(gym: &MerchantClient, payment: Value) -> Result<Value> {
    let started = Instant::now();
    let mut payment = payment;
    while payment["status"] == "PROCESSING" && started.elapsed() < RESOLVE_WAIT_MAX {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let path = format!("/v1/payments/{}", payment["id"]);
        payment = gym.send("GET", &path, None).await?.1;
    }
    Ok(payment)
}

/// Runs the gym's signings and debits and prints what each answered.
pub async fn run(http: &reqwest::Client, base: &str) -> Result<()> {
    let run = store::now_micros();
    let merchant_id = format!("m-gym-{run}");
    let gym = MerchantClient::register(http, base, &merchant_id, "Gym").await?;
    println!();
    println!(
        "debit collection (代扣) at merchant {merchant_id}: sign members' cards, then debit them"
    );
    let alice = member(run, 1, "张三", id_number("11010519491231002"), "622202");
    let bob = member(run, 2, "李四", id_number("31010419820715003"), "622588");
    // An ID number whose order code is 999: the bank holds another name.
    let carol = member(run, 3, "王五", id_number("44030419900101999"), "621700");
    let dave = member(run, 4, "赵六", id_number("51010719751120004"), "622848");
    let mut lines = Vec::new();
    let mut agreements = Vec::new();
    for (member, method) in [
        (&alice, "three_element"),
        (&bob, "quick_pay"),
        (&carol, "three_element"),
        (&dave, "three_element"),
    ] {
        let (status, agreement) = sign(&gym, run, member, method).await?;
        lines.push(Line {
            what: format!("sign {} by {method}", member.name),
            answer: answer_of(status, &agreement),
        });
        agreements.push(agreement);
    }
    let bob_id = agreements[1]["id"].as_i64().context("no agreement id")?;
    let confirm = format!("/v1/agreements/{bob_id}/confirm");
    let (status, wrong) = gym
        .send("POST", &confirm, Some(&json!({"sms_code": "123456"})))
        .await?;
    lines.push(Line {
        what: format!("confirm {} with a wrong SMS code", bob.name),
        answer: answer_of(status, &wrong),
    });
    let code = channels::sms_code(bob.phone);
    let (status, confirmed) = gym
        .send("POST", &confirm, Some(&json!({"sms_code": code})))
        .await?;
    lines.push(Line {
        what: format!("confirm {} with the code sent ({code})", bob.name),
        answer: answer_of(status, &confirmed),
    });
    agreements[1] = confirmed;
    let dave_id = agreements[3]["id"].as_i64().context("no agreement id")?;
    let (status, revoked) = gym
        .send("POST", &format!("/v1/agreements/{dave_id}/revoke"), None)
        .await?;
    lines.push(Line {
        what: format!("revoke {}'s agreement", dave.name),
        answer: answer_of(status, &revoked),
    });
    let dave_no = agreements[3]["agreement_no"].as_str().map(str::to_owned);
    agreements[3] = revoked;
    let number = |index: usize| {
        agreements[index]["agreement_no"]
            .as_str()
            .map(str::to_owned)
    };
    let (alice_no, bob_no) = (number(0), number(1));
    if alice_no.is_none() || bob_no.is_none() || dave_no.is_none() {
        bail!("the demo's agreements were not signed: {agreements:?}");
    }
    let debits = [
        (
            "debit 张三 99.00",
            debit(run, "alice-1", &alice, alice_no.as_deref(), 9_900),
        ),
        (
            "debit 张三 128.92 (the bank answers later)",
            debit(run, "alice-2", &alice, alice_no.as_deref(), 12_892),
        ),
        (
            "debit 张三 50.91 (the bank refuses)",
            debit(run, "alice-3", &alice, alice_no.as_deref(), 5_091),
        ),
        (
            "debit 李四 66.00",
            debit(run, "bob-1", &bob, bob_no.as_deref(), 6_600),
        ),
        (
            "debit 李四 without an agreement",
            debit(run, "bob-2", &bob, None, 6_600),
        ),
        (
            "debit 李四 under 张三's agreement",
            debit(run, "bob-3", &bob, alice_no.as_deref(), 6_600),
        ),
        (
            "debit 赵六 under the revoked agreement",
            debit(run, "dave-1", &dave, dave_no.as_deref(), 6_600),
        ),
    ];
    for (what, body) in debits {
        let (status, mut payment) = gym.send("POST", "/v1/payments", Some(&body)).await?;
        if status == 200 {
            payment = resolved(&gym, payment).await?;
        }
        lines.push(Line {
            what: what.to_owned(),
            answer: answer_of(status, &payment),
        });
    }
    for agreement in &agreements {
        println!(
            "  agreement {:>4} {:<13} {:<14} {:<4} {:<22} {}",
            agreement["id"],
            agreement["method"].as_str().unwrap_or("?"),
            agreement["card_masked"].as_str().unwrap_or("?"),
            agreement["bank"].as_str().unwrap_or("-"),
            agreement["agreement_no"].as_str().unwrap_or("-"),
            agreement["status"].as_str().unwrap_or("?"),
        );
    }
    for line in lines {
        println!("  {:<44} {}", line.what, line.answer);
    }
    let numbers = BatchAgreements {
        alice: alice_no.unwrap_or_default(),
        bob: bob_no.unwrap_or_default(),
        dave: dave_no.unwrap_or_default(),
    };
    batch(&gym, run, [&alice, &bob, &dave], &numbers).await
}

/// The agreement numbers the gym's batch debits under.
struct BatchAgreements {
    alice: String,
    bob: String,
    dave: String,
}

/// The gym's month-end batch (批量代扣) with a deadline two seconds ahead:
/// one line answers only after the deadline, so the batch returns it
/// FAILED and, once the bank reports it succeeded, its money goes back by
/// a refund waiting for review.
async fn batch(
    gym: &MerchantClient,
    run: i64,
    [alice, bob, dave]: [&Member; 3],
    numbers: &BatchAgreements,
) -> Result<()> {
    let deadline = time::OffsetDateTime::now_utc() + time::Duration::seconds(2);
    let deadline = deadline
        .format(&time::format_description::well_known::Rfc3339)
        .context("formatting the deadline")?;
    let BatchAgreements {
        alice: alice_no,
        bob: bob_no,
        dave: dave_no,
    } = numbers;
    let (alice_id, bob_id, dave_id) = (&alice.id, &bob.id, &dave.id);
    let file = format!(
        "reference,member_name,agreement_no,member_id,amount,priority\n\
         M-01,张三,{alice_no},{alice_id},99.00,2\n\
         M-02,李四,{bob_no},{bob_id},66.00,1\n\
         M-03,张三,{alice_no},{alice_id},77.92,\n\
         M-04,李四,{bob_no},{bob_id},12.91,\n\
         M-05,赵六,{dave_no},{dave_id},66.00,\n"
    );
    let body = json!({
        "batch_no": format!("gym-{run}"), "currency": "CNY", "deadline": deadline, "file": file,
    });
    let (status, submitted) = gym
        .send("POST", "/v1/collection-batches", Some(&body))
        .await?;
    if status != 200 {
        bail!("the demo's collection batch was refused: {status} {submitted}");
    }
    println!();
    println!(
        "batch collection (批量代扣) {}: {} lines, deadline {deadline}",
        submitted["batch_no"].as_str().unwrap_or("?"),
        submitted["line_count"]
    );
    let path = format!("/v1/collection-batches/{}", submitted["id"]);
    let started = Instant::now();
    let mut batch = submitted;
    while (batch["status"] != "CLOSED" || batch["late_refunded"] != 1)
        && started.elapsed() < RESOLVE_WAIT_MAX
    {
        tokio::time::sleep(Duration::from_millis(500)).await;
        batch = gym.send("GET", &path, None).await?.1;
    }
    if batch["status"] != "CLOSED" {
        bail!("the demo's collection batch did not close: {batch}");
    }
    let (_, returned) = gym
        .send("GET", &format!("{path}/return-file"), None)
        .await?;
    println!(
        "  return file (回盘), sha256 {}:",
        returned["sha256"].as_str().unwrap_or("?")
    );
    for row in returned["csv"].as_str().unwrap_or("").lines() {
        println!("    {row}");
    }
    for line in batch["lines"].as_array().into_iter().flatten() {
        if let Some(refund) = line["late_refund_id"].as_i64() {
            println!(
                "  {} succeeded after the deadline: refund {refund} waits for review",
                line["reference"].as_str().unwrap_or("?")
            );
        }
    }
    Ok(())
}
