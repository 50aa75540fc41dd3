//! 储值 with bonus and discount cards end to end: a top-up campaign grants
//! its bonus; stored-value payments draw on cash and bonus by the merchant's
//! rule and book spent bonus as marketing expense; refunds of purchases go
//! back to what paid, a discount card's share first; a top-up's refund
//! voids bonus in proportion to what is left. Every test runs on SQLite
//! and, when `PAYCORE_TEST_POSTGRES_URL` is set (always in CI), PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use engine::{
    EngineError, FundingSource, Initiator, PayRequest, PaymentStatus, PaymentView, RefundRequest,
    RefundStatus, RefundView, StoredValueError,
};
use ledger::{AccountKind, OwnerKind};
use money::Currency;

mod common;
use common::{Fixture, assert_sound, balance};

/// Friday 2026-11-20 10:00:00 UTC+8.
const FRIDAY: i64 = 1_795_140_000_000_000;

async fn fixtures(test: &str) -> Vec<Fixture> {
    // m-fixed draws 100 cash to 180 bonus, as its campaign granted them.
    let text = format!(
        "{}\n[[stored_value.merchants]]\nid = \"m-fixed\"\ndraw = \"fixed_ratio\"\ncash_weight = 100\nbonus_weight = 180\n",
        server::config::BUILTIN
    );
    let config = server::Config::parse(&text).unwrap();
    common::fixtures_with(&format!("stored_value_{test}"), &config).await
}

fn request(
    merchant: &str,
    trade: &str,
    product: &str,
    sources: &[(FundingSource, i64)],
) -> PayRequest {
    PayRequest {
        merchant_id: merchant.to_owned(),
        out_trade_no: trade.to_owned(),
        subject: "goods".to_owned(),
        amount_minor: sources.iter().map(|(_, amount)| amount).sum(),
        currency: Currency::CNY,
        request_serial: format!("serial-{trade}"),
        product: product.to_owned(),
        payer_id: "carol".to_owned(),
        bank: Some("CMB".to_owned()),
        sources: sources.to_vec(),
        campaign: None,
        agreement_no: None,
    }
}

async fn pay(fixture: &Fixture, request: &PayRequest) -> PaymentView {
    fixture.state.payments().pay(request, FRIDAY).await.unwrap()
}

/// Carol tops up 100.00 by card in the "pay 100, receive 180" campaign.
async fn top_up(fixture: &Fixture) -> PaymentView {
    let mut request = request(
        "m-wallet",
        "top-up",
        "top_up",
        &[(FundingSource::Card, 10_000)],
    );
    request.campaign = Some("topup-100-get-180".to_owned());
    let view = pay(fixture, &request).await;
    assert_eq!(view.payment.status, PaymentStatus::Success);
    view
}

async fn refund(
    fixture: &Fixture,
    merchant: &str,
    trade: &str,
    serial: &str,
    amount_minor: i64,
) -> RefundView {
    let request = RefundRequest {
        merchant_id: merchant.to_owned(),
        out_trade_no: trade.to_owned(),
        refund_serial: serial.to_owned(),
        amount_minor,
        reason: "returned".to_owned(),
        initiator: Initiator::Merchant,
    };
    fixture
        .state
        .payments()
        .refund(&request, FRIDAY)
        .await
        .unwrap()
}

/// Carol's (cash, bonus) ledger balances.
async fn carol(fixture: &Fixture) -> (i64, i64) {
    let store = &fixture.store;
    let cash = balance(store, OwnerKind::Member, "carol", AccountKind::MemberCash).await;
    let bonus = balance(store, OwnerKind::Member, "carol", AccountKind::MemberBonus).await;
    (cash.0, bonus.0)
}

/// The platform's (deferred bonus, marketing expense).
async fn platform(fixture: &Fixture) -> (i64, i64) {
    let store = &fixture.store;
    let deferred = balance(
        store,
        OwnerKind::Platform,
        "marketing",
        AccountKind::BonusDeferred,
    )
    .await;
    let marketing = balance(
        store,
        OwnerKind::Platform,
        "marketing",
        AccountKind::PlatformMarketing,
    )
    .await;
    (deferred.0, marketing.0)
}

fn sources_of(view: &PaymentView) -> Vec<(FundingSource, i64)> {
    view.instructions
        .iter()
        .map(|instruction| (instruction.source, instruction.amount_minor))
        .collect()
}

fn parts_of(view: &RefundView) -> Vec<(FundingSource, i64)> {
    view.parts
        .iter()
        .zip(&view.part_sources)
        .map(|(part, source)| (*source, part.amount_minor))
        .collect()
}

#[tokio::test]
async fn a_campaign_grants_its_bonus_and_stored_value_draws_both() {
    for fixture in fixtures("draw").await {
        let topped = top_up(&fixture).await;
        assert_eq!(
            (
                topped.payment.campaign.as_deref(),
                topped.payment.bonus_minor
            ),
            (Some("topup-100-get-180"), 18_000)
        );
        // One balance of 280.00: 100.00 cash and 180.00 bonus, the bonus a
        // deferred marketing cost until it is spent.
        assert_eq!(carol(&fixture).await, (10_000, 18_000));
        assert_eq!(platform(&fixture).await, (18_000, 0));

        // 140.00 from the stored value, in proportion to what each holds.
        let paid = pay(
            &fixture,
            &request(
                "m-shop",
                "t1",
                "instant_transfer",
                &[(FundingSource::StoredValue, 14_000)],
            ),
        )
        .await;
        assert_eq!(paid.payment.status, PaymentStatus::Success);
        assert_eq!(
            sources_of(&paid),
            [
                (FundingSource::Balance, 5_000),
                (FundingSource::Bonus, 9_000)
            ]
        );
        assert_eq!(carol(&fixture).await, (5_000, 9_000));
        // The bonus spent is now marketing expense.
        assert_eq!(platform(&fixture).await, (9_000, 9_000));
        let pending = balance(
            &fixture.store,
            OwnerKind::Merchant,
            "m-shop",
            AccountKind::MerchantPending,
        )
        .await;
        assert_eq!(pending.0, 14_000);

        // m-fixed draws 100:180.
        let fixed = pay(
            &fixture,
            &request(
                "m-fixed",
                "f1",
                "instant_transfer",
                &[(FundingSource::StoredValue, 2_800)],
            ),
        )
        .await;
        assert_eq!(
            sources_of(&fixed),
            [
                (FundingSource::Balance, 1_000),
                (FundingSource::Bonus, 1_800)
            ]
        );
        assert_eq!(carol(&fixture).await, (4_000, 7_200));

        // More than both hold together is refused and creates no payment.
        let too_much = request(
            "m-shop",
            "t2",
            "instant_transfer",
            &[(FundingSource::StoredValue, 11_201)],
        );
        let refused = fixture
            .state
            .payments()
            .pay(&too_much, FRIDAY)
            .await
            .unwrap_err();
        assert!(
            matches!(
                refused,
                EngineError::StoredValue(StoredValueError::Insufficient { .. })
            ),
            "{refused}"
        );
        assert_eq!(refused.code(), "STORED_VALUE_INSUFFICIENT");
        assert_eq!(carol(&fixture).await, (4_000, 7_200));
        assert_sound(&fixture.store).await;
    }
}

#[tokio::test]
async fn refunds_go_back_to_what_paid_and_a_top_up_refund_voids_its_share_of_bonus() {
    for fixture in fixtures("refunds").await {
        top_up(&fixture).await;
        pay(
            &fixture,
            &request(
                "m-shop",
                "t1",
                "instant_transfer",
                &[(FundingSource::StoredValue, 14_000)],
            ),
        )
        .await;

        // Half the purchase back: to cash and bonus in proportion to what
        // each paid, and the bonus given back is no longer an expense.
        let back = refund(&fixture, "m-shop", "t1", "r1", 7_000).await;
        assert_eq!(back.refund.status, RefundStatus::Success);
        assert_eq!(
            parts_of(&back),
            [
                (FundingSource::Balance, 2_500),
                (FundingSource::Bonus, 4_500)
            ]
        );
        assert_eq!(carol(&fixture).await, (7_500, 13_500));
        assert_eq!(platform(&fixture).await, (13_500, 4_500));

        // A refund of 50.00 of the top-up: cash back by card, and bonus
        // voided in proportion to what is left (135.00 × 50 / 75).
        let voided = refund(&fixture, "m-wallet", "top-up", "r2", 5_000).await;
        assert_eq!(voided.refund.status, RefundStatus::Success);
        assert_eq!(voided.refund.bonus_void_minor, 9_000);
        assert_eq!(parts_of(&voided), [(FundingSource::Card, 5_000)]);
        assert_eq!(carol(&fixture).await, (2_500, 4_500));
        // What members have not spent is what stays deferred.
        assert_eq!(platform(&fixture).await, (4_500, 4_500));
        assert_sound(&fixture.store).await;
    }
}

#[tokio::test]
async fn a_discount_card_gives_its_share_back_first() {
    for fixture in fixtures("discount").await {
        top_up(&fixture).await;
        // 100.00: the card's 10% discount, 50.00 from its balance, 40.00 by
        // wallet.
        let sources = [
            (FundingSource::Discount, 1_000),
            (FundingSource::Balance, 5_000),
            (FundingSource::Wallet, 4_000),
        ];
        let paid = pay(
            &fixture,
            &request("m-shop", "d1", "instant_transfer", &sources),
        )
        .await;
        assert_eq!(paid.payment.status, PaymentStatus::Success);
        assert_eq!(paid.trade.paid_minor, 10_000);
        assert_eq!(platform(&fixture).await.1, 1_000);

        // 50.00 back: 5.00 to the discount, 40.00 to the wallet, 5.00 to
        // the card's balance. Together they are the refund.
        let back = refund(&fixture, "m-shop", "d1", "r1", 5_000).await;
        assert_eq!(back.refund.status, RefundStatus::Success);
        assert_eq!(
            parts_of(&back),
            [
                (FundingSource::Discount, 500),
                (FundingSource::Wallet, 4_000),
                (FundingSource::Balance, 500),
            ]
        );
        assert_eq!(platform(&fixture).await.1, 500);
        assert_eq!(carol(&fixture).await.0, 10_000 - 5_000 + 500);
        // The rest of the trade, and not a cent more.
        let rest = refund(&fixture, "m-shop", "d1", "r2", 5_000).await;
        assert_eq!(
            parts_of(&rest),
            [
                (FundingSource::Discount, 500),
                (FundingSource::Balance, 4_500)
            ]
        );
        let over = RefundRequest {
            merchant_id: "m-shop".to_owned(),
            out_trade_no: "d1".to_owned(),
            refund_serial: "r3".to_owned(),
            amount_minor: 1,
            reason: String::new(),
            initiator: Initiator::Merchant,
        };
        let refused = fixture
            .state
            .payments()
            .refund(&over, FRIDAY)
            .await
            .unwrap_err();
        assert_eq!(refused.code(), "REFUND_EXCEEDS_REFUNDABLE");
        assert_sound(&fixture.store).await;
    }
}

#[tokio::test]
async fn campaigns_are_checked() {
    for fixture in fixtures("campaigns").await {
        let payments = fixture.state.payments();
        let mut wrong_amount = request("m-wallet", "c1", "top_up", &[(FundingSource::Card, 9_900)]);
        wrong_amount.campaign = Some("topup-100-get-180".to_owned());
        let error = payments.pay(&wrong_amount, FRIDAY).await.unwrap_err();
        assert_eq!(error.code(), "CAMPAIGN_MISMATCH");
        let mut unknown = request("m-wallet", "c2", "top_up", &[(FundingSource::Card, 10_000)]);
        unknown.campaign = Some("no-such-campaign".to_owned());
        assert_eq!(
            payments.pay(&unknown, FRIDAY).await.unwrap_err().code(),
            "UNKNOWN_CAMPAIGN"
        );
        let mut not_top_up = request(
            "m-shop",
            "c3",
            "instant_transfer",
            &[(FundingSource::Card, 10_000)],
        );
        not_top_up.campaign = Some("topup-100-get-180".to_owned());
        assert_eq!(
            payments.pay(&not_top_up, FRIDAY).await.unwrap_err().code(),
            "CAMPAIGN_NOT_TOP_UP"
        );
        // Nothing was paid, nothing granted.
        assert_eq!(carol(&fixture).await, (0, 0));
    }
}
