//! Agreements (签约) and debit collection (代扣) through the engine: the
//! agreement service and the payment service on the store, the simulator as
//! the institution. Every test runs against SQLite and PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use channels::Simulator;
use channels::checks::{complete_card_number, complete_resident_id};
use engine::{
    Agreement, AgreementMethod, AgreementService, AgreementStatus, AgreementStore,
    CONFIRM_ATTEMPTS_MAX, ChannelOrderStatus, EngineError, FundingSource, OrderStore, PayRequest,
    PaymentService, PaymentStatus, PersonalDataKey, Product, Route, Secret, SignRequest,
};
use ledger::LedgerStore;
use money::Currency;
use store::{Ledger, LedgerOptions, Store};

mod common;
use common::{Fixture, Raw};

contract!(
    agreements_three_element_signing_is_idempotent,
    agreements_quick_pay_confirms_with_a_bounded_number_of_codes,
    agreements_refused_elements_fail_the_agreement,
    agreements_revoke_ends_an_active_agreement,
    agreements_merchants_never_see_each_others,
    agreements_store_no_personal_data_in_clear,
    debits_need_an_active_agreement_of_the_merchant_and_payer,
    debits_go_through_the_agreements_channel_and_resolve_by_query,
);

/// 2026-11-22 10:00:00 UTC+8.
const NOW: i64 = 1_795_312_800_000_000;
const SECOND: i64 = 1_000_000;
const NAME: &str = "张三";
const PHONE: &str = "13800138000";

fn card_number(bin: &str, account: &str) -> String {
    complete_card_number(&format!("{bin}{account}")).unwrap()
}

fn id_number(first_17: &str) -> String {
    complete_resident_id(first_17).unwrap()
}

fn card() -> String {
    card_number("622202", "020011223")
}

type Agreements = AgreementService<Store, Simulator>;

/// Agreements signed at `channels` (the first route that carries cards).
fn agreements_at(fixture: &Fixture, channels: &[&str]) -> Agreements {
    AgreementService::new(
        fixture.store.clone(),
        channels.iter().map(|code| Simulator::new(code)).collect(),
        channels.iter().map(|code| Route::any(code)).collect(),
        PersonalDataKey::development(),
    )
}

fn agreements(fixture: &Fixture) -> Agreements {
    agreements_at(fixture, &["simbank"])
}

fn sign_request(
    merchant: &str,
    serial: &str,
    member: &str,
    method: AgreementMethod,
    card_number: &str,
) -> SignRequest {
    SignRequest {
        merchant_id: merchant.to_owned(),
        sign_serial: serial.to_owned(),
        member_id: member.to_owned(),
        method,
        name: Secret::new(NAME.to_owned()),
        id_number: Secret::new("11010519491231002X".to_owned()),
        card_number: Secret::new(card_number.to_owned()),
        phone: (method == AgreementMethod::QuickPay).then(|| Secret::new(PHONE.to_owned())),
        bank: None,
    }
}

fn three_element(merchant: &str, serial: &str, member: &str) -> SignRequest {
    sign_request(
        merchant,
        serial,
        member,
        AgreementMethod::ThreeElement,
        &card(),
    )
}

fn code(error: EngineError) -> &'static str {
    error.code()
}

/// An ACTIVE agreement of `member` at `merchant`, on a card of its own.
async fn signed(service: &Agreements, merchant: &str, member: &str, account: &str) -> Agreement {
    let request = sign_request(
        merchant,
        &format!("sign-{member}-{account}"),
        member,
        AgreementMethod::ThreeElement,
        &card_number("622202", account),
    );
    let agreement = service.sign(&request, NOW).await.unwrap();
    assert_eq!(agreement.status, AgreementStatus::Active, "{agreement:?}");
    agreement
}

async fn agreements_three_element_signing_is_idempotent(fixture: Fixture) {
    let service = agreements(&fixture);
    let request = three_element("m1", "sign-1", "alice");
    let agreement = service.sign(&request, NOW).await.unwrap();
    assert_eq!(agreement.status, AgreementStatus::Active);
    assert_eq!(agreement.channel, "simbank");
    assert_eq!(agreement.bank.as_deref(), Some("ICBC"));
    assert_eq!(agreement.card_masked, format!("6222****{}", &card()[12..]));
    assert_eq!(
        agreement.agreement_no,
        Some(format!("SIMBANKAG{:012}", agreement.id))
    );
    // The same serial is the same signing, answered as it stands.
    assert_eq!(
        service.sign(&request, NOW + SECOND).await.unwrap(),
        agreement
    );
    // The same serial with another card is a conflict, found by fingerprint.
    let other_card = sign_request(
        "m1",
        "sign-1",
        "alice",
        AgreementMethod::ThreeElement,
        &card_number("622202", "020099999"),
    );
    assert_eq!(
        code(service.sign(&other_card, NOW).await.unwrap_err()),
        "REFERENCE_CONFLICT"
    );
    // The same card under a new serial is recognised as signed already.
    let again = three_element("m1", "sign-2", "alice");
    assert_eq!(
        code(service.sign(&again, NOW).await.unwrap_err()),
        "AGREEMENT_EXISTS"
    );
    assert_eq!(
        fixture.store.agreements("m1", 0, 10).await.unwrap().len(),
        1
    );
}

async fn agreements_quick_pay_confirms_with_a_bounded_number_of_codes(fixture: Fixture) {
    let service = agreements(&fixture);
    let request = sign_request("m1", "q-1", "alice", AgreementMethod::QuickPay, &card());
    let pending = service.sign(&request, NOW).await.unwrap();
    assert_eq!(pending.status, AgreementStatus::PendingConfirmation);
    assert_eq!(pending.phone_masked.as_deref(), Some("138****8000"));
    assert_eq!(pending.agreement_no, None);
    let wrong = Secret::new("999999".to_owned());
    for attempt in 1..CONFIRM_ATTEMPTS_MAX {
        let error = service
            .confirm("m1", pending.id, &wrong, NOW)
            .await
            .unwrap_err();
        assert_eq!(error.code(), "SMS_CODE_WRONG");
        assert!(
            error
                .to_string()
                .contains(&format!("{} attempts left", CONFIRM_ATTEMPTS_MAX - attempt)),
            "{error}"
        );
    }
    let last = service
        .confirm("m1", pending.id, &wrong, NOW)
        .await
        .unwrap_err();
    assert_eq!(last.code(), "SMS_ATTEMPTS_EXCEEDED");
    let failed = service.agreement("m1", pending.id).await.unwrap();
    assert_eq!(failed.status, AgreementStatus::Failed);
    assert_eq!(failed.confirm_attempts, CONFIRM_ATTEMPTS_MAX);
    assert_eq!(
        failed.failure_code.as_deref(),
        Some("SMS_ATTEMPTS_EXCEEDED")
    );
    // Even the right code is too late now, and no attempt is counted.
    let right = Secret::new(channels::sms_code(PHONE));
    assert_eq!(
        code(
            service
                .confirm("m1", pending.id, &right, NOW)
                .await
                .unwrap_err()
        ),
        "AGREEMENT_NOT_PENDING"
    );
    assert_eq!(
        fixture
            .store
            .count_confirm_attempt(pending.id, CONFIRM_ATTEMPTS_MAX, NOW)
            .await
            .unwrap(),
        None
    );
    // A new signing of the card confirms with the code sent to the phone.
    let request = sign_request("m1", "q-2", "alice", AgreementMethod::QuickPay, &card());
    let pending = service.sign(&request, NOW).await.unwrap();
    let active = service
        .confirm("m1", pending.id, &right, NOW)
        .await
        .unwrap();
    assert_eq!(active.status, AgreementStatus::Active);
    assert_eq!(active.confirm_attempts, 1);
    assert!(active.agreement_no.is_some());
    assert_eq!(
        code(
            service
                .confirm("m1", pending.id, &right, NOW)
                .await
                .unwrap_err()
        ),
        "AGREEMENT_NOT_PENDING"
    );
}

async fn agreements_refused_elements_fail_the_agreement(fixture: Fixture) {
    let service = agreements(&fixture);
    let mismatch = SignRequest {
        id_number: Secret::new(id_number("44030419900101999")),
        ..three_element("m1", "sign-mismatch", "carol")
    };
    let failed = service.sign(&mismatch, NOW).await.unwrap();
    assert_eq!(failed.status, AgreementStatus::Failed);
    assert_eq!(failed.failure_code.as_deref(), Some("ELEMENTS_MISMATCH"));
    assert_eq!(failed.agreement_no, None);
    let unsupported = sign_request(
        "m1",
        "sign-visa",
        "carol",
        AgreementMethod::ThreeElement,
        &card_number("411111", "111111111"),
    );
    let failed = service.sign(&unsupported, NOW).await.unwrap();
    assert_eq!(failed.failure_code.as_deref(), Some("CARD_NOT_SUPPORTED"));
    // A failed signing is final: its repeat answers it again.
    assert_eq!(service.sign(&unsupported, NOW).await.unwrap(), failed);
    let phone_mismatch = SignRequest {
        phone: Some(Secret::new("13800130000".to_owned())),
        ..sign_request("m1", "q-phone", "carol", AgreementMethod::QuickPay, &card())
    };
    let failed = service.sign(&phone_mismatch, NOW).await.unwrap();
    assert_eq!(failed.failure_code.as_deref(), Some("PHONE_MISMATCH"));
}

async fn agreements_revoke_ends_an_active_agreement(fixture: Fixture) {
    let service = agreements(&fixture);
    let agreement = signed(&service, "m1", "alice", "000000001").await;
    let revoked = service.revoke("m1", agreement.id, NOW).await.unwrap();
    assert_eq!(revoked.status, AgreementStatus::Revoked);
    assert_eq!(revoked.agreement_no, agreement.agreement_no);
    assert_eq!(
        service
            .revoke("m1", agreement.id, NOW + SECOND)
            .await
            .unwrap(),
        revoked
    );
    // Revoked, the card may be signed again, under a new serial.
    let request = SignRequest {
        sign_serial: "sign-again".to_owned(),
        ..three_element("m1", "unused", "alice")
    };
    let request = SignRequest {
        card_number: Secret::new(card_number("622202", "000000001")),
        ..request
    };
    let again = service.sign(&request, NOW).await.unwrap();
    assert_eq!(again.status, AgreementStatus::Active);
    assert_ne!(again.id, agreement.id);
    let pending = service
        .sign(
            &sign_request("m1", "q-1", "bob", AgreementMethod::QuickPay, &card()),
            NOW,
        )
        .await
        .unwrap();
    assert_eq!(
        code(service.revoke("m1", pending.id, NOW).await.unwrap_err()),
        "AGREEMENT_NOT_ACTIVE"
    );
}

async fn agreements_merchants_never_see_each_others(fixture: Fixture) {
    let service = agreements(&fixture);
    let agreement = signed(&service, "m1", "alice", "000000001").await;
    let number = agreement.agreement_no.clone().unwrap();
    let store = &fixture.store;
    assert_eq!(store.agreement("m2", agreement.id).await.unwrap(), None);
    assert_eq!(store.agreement_by_no("m2", &number).await.unwrap(), None);
    assert!(store.agreements("m2", 0, 10).await.unwrap().is_empty());
    assert_eq!(
        store.agreement_by_no("m1", &number).await.unwrap(),
        Some(agreement.clone())
    );
    for error in [
        service.agreement("m2", agreement.id).await.unwrap_err(),
        service.revoke("m2", agreement.id, NOW).await.unwrap_err(),
        service
            .confirm("m2", agreement.id, &Secret::new("000831".to_owned()), NOW)
            .await
            .unwrap_err(),
    ] {
        assert_eq!(error.code(), "AGREEMENT_NOT_FOUND");
    }
    // Another merchant may sign the same member's same card for itself.
    let own = signed(&service, "m2", "alice", "000000001").await;
    assert_ne!(own.agreement_no, agreement.agreement_no);
    assert_eq!(
        store
            .agreement("m1", agreement.id)
            .await
            .unwrap()
            .unwrap()
            .status,
        AgreementStatus::Active
    );
}

/// Every text column of every agreement, joined.
async fn stored_text(fixture: &Fixture) -> String {
    let sql = "SELECT COALESCE(merchant_id, '') || '|' || sign_serial || '|' || member_id || '|' \
        || method || '|' || channel || '|' || COALESCE(bank, '') || '|' || card_masked || '|' \
        || card_fingerprint || '|' || id_number_fingerprint || '|' || COALESCE(phone_masked, '') \
        || '|' || COALESCE(agreement_no, '') || '|' || status || '|' \
        || COALESCE(confirmation_token, '') || '|' || COALESCE(failure_code, '') || '|' \
        || COALESCE(failure_message, '') FROM agreements";
    let rows: Vec<(String,)> = match &fixture.raw {
        Raw::Sqlite(path) => {
            use sqlx::Connection;
            let mut connection =
                sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
                    .await
                    .unwrap();
            sqlx::query_as(sql)
                .fetch_all(&mut connection)
                .await
                .unwrap()
        }
        Raw::Postgres { url, schema } => {
            use common::ConnectWithUrl;
            let mut connection = sqlx::PgConnection::connect_with_url(url).await;
            sqlx::raw_sql(&format!("SET search_path TO {schema}"))
                .execute(&mut connection)
                .await
                .unwrap();
            sqlx::query_as(sql)
                .fetch_all(&mut connection)
                .await
                .unwrap()
        }
    };
    rows.into_iter()
        .map(|(row,)| row)
        .collect::<Vec<_>>()
        .join("\n")
}

async fn agreements_store_no_personal_data_in_clear(fixture: Fixture) {
    let service = agreements(&fixture);
    let three = service
        .sign(&three_element("m1", "sign-1", "alice"), NOW)
        .await
        .unwrap();
    let quick = sign_request(
        "m1",
        "q-1",
        "bob",
        AgreementMethod::QuickPay,
        &card_number("622588", "123456789"),
    );
    let pending = service.sign(&quick, NOW).await.unwrap();
    service
        .confirm(
            "m1",
            pending.id,
            &Secret::new(channels::sms_code(PHONE)),
            NOW,
        )
        .await
        .unwrap();
    let stored = stored_text(&fixture).await;
    assert_eq!(stored.lines().count(), 2, "{stored}");
    assert!(stored.contains(&three.card_masked), "{stored}");
    for secret in [
        card(),
        card_number("622588", "123456789"),
        "11010519491231002X".to_owned(),
        "110105194912".to_owned(),
        PHONE.to_owned(),
        "13800138".to_owned(),
        NAME.to_owned(),
        channels::sms_code(PHONE),
    ] {
        assert!(
            !stored.contains(&secret),
            "{secret} is stored in clear: {stored}"
        );
    }
    let debug = format!("{three:?} {quick:?}");
    for secret in [
        card(),
        "11010519491231002X".to_owned(),
        PHONE.to_owned(),
        NAME.to_owned(),
    ] {
        assert!(!debug.contains(&secret), "{secret} in {debug}");
    }
}

type Payments = PaymentService<Store, Ledger, Simulator>;

/// Payments through `channels`, routed in that order of cost.
fn payments_through(fixture: &Fixture, channels: &[&str]) -> Payments {
    let ledger = Ledger::start(fixture.store.clone(), LedgerOptions::default());
    let routes = channels
        .iter()
        .enumerate()
        .map(|(cost, code)| Route {
            cost_per_ten_thousand: i64::try_from(cost).unwrap(),
            ..Route::any(code)
        })
        .collect();
    PaymentService::new(
        fixture.store.clone(),
        ledger,
        channels.iter().map(|code| Simulator::new(code)).collect(),
        vec![Product::instant_transfer(), Product::debit_collection()],
    )
    .with_routes(routes)
}

fn debit(
    merchant: &str,
    trade: &str,
    payer: &str,
    agreement_no: Option<&str>,
    amount: i64,
) -> PayRequest {
    PayRequest {
        merchant_id: merchant.to_owned(),
        out_trade_no: trade.to_owned(),
        subject: "monthly membership".to_owned(),
        amount_minor: amount,
        currency: Currency::CNY,
        request_serial: format!("serial-{trade}"),
        product: "debit_collection".to_owned(),
        payer_id: payer.to_owned(),
        bank: None,
        sources: vec![(FundingSource::Card, amount)],
        agreement_no: agreement_no.map(str::to_owned),
        campaign: None,
    }
}

async fn debits_need_an_active_agreement_of_the_merchant_and_payer(fixture: Fixture) {
    let service = agreements(&fixture);
    let payments = payments_through(&fixture, &["simbank"]);
    let alice = signed(&service, "m1", "alice", "000000001").await;
    let alice_no = alice.agreement_no.clone().unwrap();
    let other_merchant = signed(&service, "m2", "bob", "000000002").await;
    let revoked = signed(&service, "m1", "dave", "000000004").await;
    service.revoke("m1", revoked.id, NOW).await.unwrap();
    let refusals = [
        (
            debit("m1", "T1", "alice", None, 9_900),
            "AGREEMENT_REQUIRED",
        ),
        (
            debit("m1", "T2", "dave", revoked.agreement_no.as_deref(), 9_900),
            "AGREEMENT_NOT_ACTIVE",
        ),
        (
            debit(
                "m1",
                "T3",
                "bob",
                other_merchant.agreement_no.as_deref(),
                9_900,
            ),
            "AGREEMENT_NOT_FOUND",
        ),
        (
            debit("m1", "T4", "bob", Some(&alice_no), 9_900),
            "AGREEMENT_MEMBER_MISMATCH",
        ),
        (
            PayRequest {
                bank: Some("CCB".to_owned()),
                ..debit("m1", "T5", "alice", Some(&alice_no), 9_900)
            },
            "AGREEMENT_BANK_MISMATCH",
        ),
        (
            PayRequest {
                product: "instant_transfer".to_owned(),
                ..debit("m1", "T6", "alice", Some(&alice_no), 9_900)
            },
            "AGREEMENT_NOT_ACCEPTED",
        ),
    ];
    for (request, expected) in refusals {
        let error = payments.pay(&request, NOW).await.unwrap_err();
        assert_eq!(error.code(), expected, "{error}");
        // Refused before anything was created.
        let trade = fixture
            .store
            .trade_by_out_trade_no("m1", &request.out_trade_no)
            .await
            .unwrap();
        assert_eq!(trade, None, "{expected}");
    }
    let request = debit("m1", "T7", "alice", Some(&alice_no), 9_900);
    let paid = payments.pay(&request, NOW).await.unwrap();
    assert_eq!(paid.payment.status, PaymentStatus::Success);
    assert_eq!(
        paid.payment.agreement_no.as_deref(),
        Some(alice_no.as_str())
    );
    // The bank comes from the agreement.
    assert_eq!(paid.payment.bank.as_deref(), Some("ICBC"));
    // Revoked afterwards, a repeat of the same serial still gets the same
    // answer, and a new debit is refused.
    service.revoke("m1", alice.id, NOW).await.unwrap();
    let again = payments.pay(&request, NOW + SECOND).await.unwrap();
    assert_eq!(again.payment, paid.payment);
    let after = payments
        .pay(&debit("m1", "T8", "alice", Some(&alice_no), 9_900), NOW)
        .await
        .unwrap_err();
    assert_eq!(after.code(), "AGREEMENT_NOT_ACTIVE");
    assert!(fixture.store.check().await.unwrap().is_sound());
}

async fn debits_go_through_the_agreements_channel_and_resolve_by_query(fixture: Fixture) {
    // Agreements are signed at simpay; card payments prefer simbank.
    let service = agreements_at(&fixture, &["simpay"]);
    let payments = payments_through(&fixture, &["simbank", "simpay"]);
    let agreement = signed(&service, "m1", "alice", "000000001").await;
    assert_eq!(agreement.channel, "simpay");
    let number = agreement.agreement_no.clone().unwrap();
    // Ends in 92: the bank answers later, and only a query tells.
    let request = debit("m1", "T1", "alice", Some(&number), 12_892);
    let started = payments.pay(&request, NOW).await.unwrap();
    assert_eq!(started.payment.status, PaymentStatus::Processing);
    let instruction = &started.instructions[0];
    let orders = fixture
        .store
        .channel_orders(instruction.id, None)
        .await
        .unwrap();
    assert_eq!(orders.len(), 1);
    assert_eq!(orders[0].channel, "simpay");
    assert_eq!(orders[0].status, ChannelOrderStatus::Processing);
    let early = payments
        .resume("m1", started.payment.id, NOW + SECOND)
        .await
        .unwrap();
    assert_eq!(early.payment.status, PaymentStatus::Processing);
    let done = payments
        .resume("m1", started.payment.id, NOW + 3 * SECOND)
        .await
        .unwrap();
    assert_eq!(done.payment.status, PaymentStatus::Success);
    // Revoked between a payment and its channel order, a debit finds no
    // route and fails without asking the channel.
    let interrupted = fixture
        .store
        .create_trade(
            &engine::NewTrade {
                merchant_id: "m1".to_owned(),
                out_trade_no: "T2".to_owned(),
                subject: "monthly membership".to_owned(),
                amount_minor: 9_900,
                currency: Currency::CNY,
            },
            NOW,
        )
        .await
        .unwrap()
        .into_inner();
    let created = fixture
        .store
        .create_payment(
            &engine::NewPayment {
                trade_id: interrupted.id,
                merchant_id: "m1".to_owned(),
                request_serial: "serial-T2".to_owned(),
                product: "debit_collection".to_owned(),
                payer_id: "alice".to_owned(),
                bank: Some("ICBC".to_owned()),
                agreement_no: Some(number.clone()),
                amount_minor: 9_900,
                currency: Currency::CNY,
                campaign: None,
                bonus_minor: 0,
            },
            &[engine::NewInstruction {
                direction: engine::Direction::Collect,
                source: FundingSource::Card,
                amount_minor: 9_900,
            }],
            NOW,
        )
        .await
        .unwrap()
        .into_inner();
    service.revoke("m1", agreement.id, NOW).await.unwrap();
    let failed = payments
        .resume("m1", created.payment.id, NOW)
        .await
        .unwrap();
    assert_eq!(failed.payment.status, PaymentStatus::Failed);
    assert!(
        fixture
            .store
            .channel_orders(failed.instructions[0].id, None)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(fixture.store.check().await.unwrap().is_sound());
}
