//! Fees as money movements, on the built-in rules (`config/fees.toml`):
//! prepaid fees (预充实扣) taken from the merchant's fee account when a
//! payment is accepted, or the payment refused with nothing moved; a
//! payout's fee beside it (real-time: 101 debited for 100 out; prepaid:
//! 100 + 1 from the fee account); a member's own fee on a withdrawal; and
//! post-paid fees (后收) billed as one transfer once the month is over.
//! Every test runs on SQLite and, when `PAYCORE_TEST_POSTGRES_URL` is set
//! (always in CI), on PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use engine::{
    FailureReason, FeeDeposit, FeeFunding, FundingSource, OrderStore, PayRequest, PaymentFeeStatus,
    PaymentStatus, PaymentView,
};
use fees::{BusinessDate, CounterKey, FeeCounterStore, FeeSide, Period};
use ledger::{AccountKind, LedgerStore, OwnerKind, StatementQuery};
use money::Currency;
use server::fee_billing::FeeBillRunError;
use server::settlement::Quiet;
use settlement::{
    Calendar, Cycle, Destination, EntryKind, FeeBillStatus, FeeBillStore, FeeMode, FeeMonth,
    MerchantTerms, SettlementConfig, SettlementStore,
};
use store::Store;

/// Friday 2026-11-20 10:00:00 UTC+8; its T+1 is Monday 2026-11-23.
const FRIDAY: i64 = 1_795_140_000_000_000;
const HOUR: i64 = 3_600_000_000;
/// Tuesday 2026-12-01 10:00:00 UTC+8: November is over.
const DECEMBER_FIRST: i64 = FRIDAY + 11 * 24 * HOUR;

mod common;
use common::{Fixture, assert_sound, balance};

async fn fixtures(test: &str) -> Vec<Fixture> {
    common::fixtures(&format!("fee_collection_{test}")).await
}

fn request(
    merchant: &str,
    trade: &str,
    product: &str,
    payer: &str,
    source: FundingSource,
    amount_minor: i64,
) -> PayRequest {
    PayRequest {
        merchant_id: merchant.to_owned(),
        out_trade_no: trade.to_owned(),
        subject: "goods".to_owned(),
        amount_minor,
        currency: Currency::CNY,
        request_serial: format!("serial-{trade}"),
        product: product.to_owned(),
        payer_id: payer.to_owned(),
        bank: Some("ICBC".to_owned()),
        sources: vec![(source, amount_minor)],
        campaign: None,
        agreement_no: None,
    }
}

/// A member pays `merchant` by a card of `bank`. (ICBC cards on simbank
/// have a rule of their own, more specific than a merchant's contract on
/// the product alone: the merchants' own rules are seen with CMB cards.)
async fn collect(
    fixture: &Fixture,
    merchant: &str,
    trade: &str,
    bank: &str,
    amount_minor: i64,
    now: i64,
) -> PaymentView {
    let mut request = request(
        merchant,
        trade,
        "instant_transfer",
        "alice",
        FundingSource::Card,
        amount_minor,
    );
    request.bank = Some(bank.to_owned());
    fixture.state.payments().pay(&request, now).await.unwrap()
}

/// `merchant` pays `amount_minor` out to a bank account (代付).
async fn payout(
    fixture: &Fixture,
    merchant: &str,
    trade: &str,
    amount_minor: i64,
    now: i64,
) -> PaymentView {
    let request = request(
        merchant,
        trade,
        "merchant_payout",
        merchant,
        FundingSource::BankAccount,
        amount_minor,
    );
    fixture.state.payments().pay(&request, now).await.unwrap()
}

async fn fee_account(fixture: &Fixture, merchant: &str) -> (i64, i64) {
    balance(
        &fixture.store,
        OwnerKind::Merchant,
        merchant,
        AccountKind::MerchantFee,
    )
    .await
}

async fn available(fixture: &Fixture, merchant: &str) -> i64 {
    balance(
        &fixture.store,
        OwnerKind::Merchant,
        merchant,
        AccountKind::MerchantAvailable,
    )
    .await
    .0
}

async fn income(fixture: &Fixture) -> i64 {
    balance(
        &fixture.store,
        OwnerKind::Platform,
        "fees",
        AccountKind::PlatformIncome,
    )
    .await
    .0
}

async fn deposit(fixture: &Fixture, merchant: &str, reference: &str, amount_minor: i64) {
    fixture
        .state
        .payments()
        .deposit_to_fee_account(
            merchant,
            reference,
            amount_minor,
            Currency::CNY,
            &FeeDeposit::Channel("simbank".to_owned()),
            FRIDAY,
        )
        .await
        .unwrap();
}

/// Settles 2026-11-20 (T+1, to the merchants' payment accounts).
async fn settle(fixture: &Fixture) {
    let config = SettlementConfig::uniform(MerchantTerms {
        cycle: Cycle::T(1),
        destination: Destination::Available,
        minimum_minor: 0,
        reconciled_only: false,
    });
    let report = server::settlement::run(
        &fixture.state,
        &Calendar::builtin().unwrap(),
        &config,
        settlement::parse_date("2026-11-23").unwrap(),
        FRIDAY + 72 * HOUR,
        &Quiet,
    )
    .await
    .unwrap();
    assert!(report.failures.is_empty(), "{:?}", report.failures);
}

/// The month-to-date count of RideNow's prepaid rule.
async fn rides_count(store: &Store) -> i64 {
    let key = CounterKey {
        rule_id: "m-rides-count".to_owned(),
        merchant_id: "m-rides".to_owned(),
        period_key: Period::Month.key(BusinessDate::parse("2026-11-20").unwrap()),
    };
    store.fee_counter(&key).await.unwrap().count
}

#[tokio::test]
async fn prepaid_fee_account_too_low_refuses_the_payment_and_moves_nothing() {
    for fixture in fixtures("refused").await {
        let store = &fixture.store;
        // RideNow's rule is prepaid, 1% of the amount: 1.00 on 100.00.
        let view = collect(&fixture, "m-rides", "r1", "CMB", 10_000, FRIDAY).await;
        assert_eq!(view.payment.status, PaymentStatus::Failed);
        assert_eq!(
            view.payment.failure,
            Some(FailureReason::FeeAccountInsufficient)
        );
        // The card was never asked: no channel order, no money anywhere.
        let card = &view.instructions[0];
        assert!(
            store
                .channel_orders(card.id, None)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(fee_account(&fixture, "m-rides").await, (0, 0));
        assert_eq!(income(&fixture).await, 0);
        assert_eq!(
            balance(
                store,
                OwnerKind::Merchant,
                "m-rides",
                AccountKind::MerchantPending
            )
            .await,
            (0, 0)
        );
        // The fee was priced, then voided, and gave its place in the
        // month's count back.
        assert_eq!(view.fees.len(), 1);
        assert_eq!(view.fees[0].status, PaymentFeeStatus::Voided);
        assert_eq!(view.fees[0].fee.fee_minor, 100);
        assert_eq!(rides_count(store).await, 0);
        assert!(
            store
                .clearing_entries("m-rides", "2026-11-20")
                .await
                .unwrap()
                .is_empty()
        );
        // The same request serial answers the same.
        let again = collect(&fixture, "m-rides", "r1", "CMB", 10_000, FRIDAY + HOUR).await;
        assert_eq!(again.payment.id, view.payment.id);
        assert_eq!(
            again.payment.failure,
            Some(FailureReason::FeeAccountInsufficient)
        );
        assert_sound(store).await;
    }
}

#[tokio::test]
async fn prepaid_fee_is_taken_from_the_fee_account_and_given_back_on_failure() {
    for fixture in fixtures("prepaid").await {
        let store = &fixture.store;
        deposit(&fixture, "m-rides", "wire-1", 500).await;
        deposit(&fixture, "m-rides", "wire-1", 500).await;
        assert_eq!(fee_account(&fixture, "m-rides").await, (500, 500));

        let paid = collect(&fixture, "m-rides", "r1", "CMB", 10_000, FRIDAY).await;
        assert_eq!(paid.payment.status, PaymentStatus::Success);
        let fee = &paid.fees[0];
        assert_eq!(
            (fee.fee.side, fee.fee.funding, fee.status, fee.fee.fee_minor),
            (
                FeeSide::Payee,
                FeeFunding::FeeAccount,
                PaymentFeeStatus::Charged,
                100
            )
        );
        assert_eq!(fee_account(&fixture, "m-rides").await, (400, 400));
        assert_eq!(income(&fixture).await, 100);
        // The clearing entry carries the fee as prepaid: settlement reports
        // it and does not deduct it again.
        let entries = store
            .clearing_entries("m-rides", "2026-11-20")
            .await
            .unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(
            (entries[0].entry.fee_minor, entries[0].entry.fee_mode),
            (100, FeeMode::Prepaid)
        );

        // Refused by the bank (an amount ending in 91): the fee's hold is
        // voided and the count stays at the one success.
        let refused = collect(&fixture, "m-rides", "r2", "CMB", 20_091, FRIDAY).await;
        assert_eq!(refused.payment.status, PaymentStatus::Failed);
        assert_eq!(refused.payment.failure, Some(FailureReason::ChannelRefused));
        assert_eq!(refused.fees[0].status, PaymentFeeStatus::Voided);
        assert_eq!(fee_account(&fixture, "m-rides").await, (400, 400));
        assert_eq!(rides_count(store).await, 1);

        settle(&fixture).await;
        assert_eq!(available(&fixture, "m-rides").await, 10_000);
        let batches = store.batches("2026-11-23").await.unwrap();
        assert_eq!(
            (batches[0].fees_minor, batches[0].fees_not_deducted_minor),
            (0, 100)
        );
        assert_sound(store).await;
    }
}

#[tokio::test]
async fn a_payout_and_its_real_time_fee_leave_the_available_balance_together() {
    for fixture in fixtures("payout_real_time").await {
        // m-shop collects 1000.00 (0.55% for ICBC cards on simbank: 5.50)
        // and is settled to its payment account.
        collect(&fixture, "m-shop", "s1", "ICBC", 100_000, FRIDAY).await;
        settle(&fixture).await;
        assert_eq!(available(&fixture, "m-shop").await, 99_450);
        assert_eq!(income(&fixture).await, 550);

        // 代付 of 100.00: the standard payout fee is 1.00, taken in real
        // time from the same balance: 101.00 debited.
        let later = FRIDAY + 73 * HOUR;
        let paid = payout(&fixture, "m-shop", "p1", 10_000, later).await;
        assert_eq!(paid.payment.status, PaymentStatus::Success);
        assert_eq!(
            (
                paid.fees[0].fee.funding,
                paid.fees[0].status,
                paid.fees[0].fee.fee_minor
            ),
            (
                FeeFunding::MerchantAvailable,
                PaymentFeeStatus::Charged,
                100
            )
        );
        assert_eq!(available(&fixture, "m-shop").await, 99_450 - 10_100);
        assert_eq!(income(&fixture).await, 650);

        // Refused by the bank: the payout and its fee both come back.
        let refused = payout(&fixture, "m-shop", "p2", 20_091, later).await;
        assert_eq!(refused.payment.failure, Some(FailureReason::ChannelRefused));
        assert_eq!(refused.fees[0].status, PaymentFeeStatus::Voided);
        assert_eq!(available(&fixture, "m-shop").await, 99_450 - 10_100);

        // Too much: the payout cannot be covered once its fee is reserved.
        let too_much = payout(&fixture, "m-shop", "p3", 89_350, later).await;
        assert_eq!(too_much.payment.failure, Some(FailureReason::PayoutRefused));
        assert_eq!(too_much.fees[0].status, PaymentFeeStatus::Voided);
        assert_eq!(available(&fixture, "m-shop").await, 89_350);
        assert_eq!(income(&fixture).await, 650);
        assert_sound(&fixture.store).await;
    }
}

#[tokio::test]
async fn a_prepaid_payout_fee_comes_from_the_fee_account() {
    for fixture in fixtures("payout_prepaid").await {
        deposit(&fixture, "m-rides", "wire-1", 2_000).await;
        collect(&fixture, "m-rides", "r1", "CMB", 100_000, FRIDAY).await;
        settle(&fixture).await;
        assert_eq!(available(&fixture, "m-rides").await, 100_000);
        assert_eq!(fee_account(&fixture, "m-rides").await.0, 1_000);

        // RideNow's payouts cost 1.00 each (daily count tiers), prepaid:
        // 100.00 from its payment account and 1.00 from its fee account.
        let paid = payout(&fixture, "m-rides", "p1", 10_000, FRIDAY + 73 * HOUR).await;
        assert_eq!(paid.payment.status, PaymentStatus::Success);
        assert_eq!(paid.fees[0].fee.funding, FeeFunding::FeeAccount);
        assert_eq!(available(&fixture, "m-rides").await, 90_000);
        assert_eq!(fee_account(&fixture, "m-rides").await.0, 900);
        assert_sound(&fixture.store).await;
    }
}

#[tokio::test]
async fn a_member_pays_its_own_withdrawal_fee_from_its_balance() {
    for fixture in fixtures("member_fee").await {
        let store = &fixture.store;
        let top_up = request(
            "m-wallet",
            "t1",
            "top_up",
            "bob",
            FundingSource::Card,
            10_000,
        );
        let view = fixture.state.payments().pay(&top_up, FRIDAY).await.unwrap();
        assert_eq!(view.payment.status, PaymentStatus::Success);
        assert!(view.fees.is_empty());

        // 提现 of 50.00: the member's fee is 1.00, from its cash.
        let withdraw = request(
            "m-wallet",
            "w1",
            "withdrawal",
            "bob",
            FundingSource::BankAccount,
            5_000,
        );
        let view = fixture
            .state
            .payments()
            .pay(&withdraw, FRIDAY)
            .await
            .unwrap();
        assert_eq!(view.payment.status, PaymentStatus::Success);
        let fee = &view.fees[0];
        assert_eq!(
            (
                fee.fee.side,
                fee.fee.party_id.as_str(),
                fee.fee.funding,
                fee.fee.fee_minor
            ),
            (FeeSide::Payer, "bob", FeeFunding::MemberCash, 100)
        );
        let cash = balance(store, OwnerKind::Member, "bob", AccountKind::MemberCash).await;
        assert_eq!(cash, (4_900, 4_900));
        assert_eq!(income(&fixture).await, 100);

        // Bob's statement shows the withdrawal and its fee as lines of
        // their own.
        let account = store
            .accounts_of(OwnerKind::Member, AccountKind::MemberCash, Currency::CNY)
            .await
            .unwrap()["bob"]
            .id;
        let lines = store
            .statement(StatementQuery {
                account_id: account,
                from: 0,
                to: i64::MAX,
                after_transfer_id: 0,
                limit: 100,
            })
            .await
            .unwrap();
        let debits: Vec<(i64, bool)> = lines
            .iter()
            .filter(|line| line.side == ledger::Side::Debit)
            .map(|line| (line.amount_minor, line.description.contains("payer fee")))
            .collect();
        assert!(debits.contains(&(5_000, false)), "{debits:?}");
        assert!(debits.contains(&(100, true)), "{debits:?}");

        // All of what is left cannot go out: with its fee it is 1.00 short.
        let all = request(
            "m-wallet",
            "w2",
            "withdrawal",
            "bob",
            FundingSource::BankAccount,
            4_900,
        );
        let view = fixture.state.payments().pay(&all, FRIDAY).await.unwrap();
        assert_eq!(view.payment.failure, Some(FailureReason::PayoutRefused));
        assert_eq!(view.fees[0].status, PaymentFeeStatus::Voided);
        let cash = balance(store, OwnerKind::Member, "bob", AccountKind::MemberCash).await;
        assert_eq!(cash, (4_900, 4_900));
        assert_sound(store).await;
    }
}

#[tokio::test]
async fn post_paid_fees_are_billed_once_the_month_is_over() {
    for fixture in fixtures("post_paid").await {
        let store = &fixture.store;
        // Bookworm's card payments through simbank cost 1.00 each, billed
        // monthly.
        collect(&fixture, "m-books", "b1", "CMB", 10_000, FRIDAY).await;
        collect(&fixture, "m-books", "b2", "CMB", 10_000, FRIDAY).await;
        let entries = store
            .clearing_entries("m-books", "2026-11-20")
            .await
            .unwrap();
        assert!(entries.iter().all(|entry| {
            entry.entry.kind == EntryKind::Collection
                && entry.entry.fee_mode == FeeMode::PostPaid
                && entry.entry.fee_minor == 100
        }));
        let november = FeeMonth::parse("2026-11").unwrap();

        // Not before the month is over.
        let early = server::fee_billing::run(&fixture.state, november, FRIDAY).await;
        assert!(
            matches!(early, Err(FeeBillRunError::MonthNotOver { .. })),
            "{early:?}"
        );
        assert!(store.fee_bills(november).await.unwrap().is_empty());

        // Billed before the merchant was settled: nothing available to
        // collect it from, so the bill stays outstanding.
        let report = server::fee_billing::run(&fixture.state, november, DECEMBER_FIRST)
            .await
            .unwrap();
        assert_eq!((report.bills_created, report.bills_paid), (1, 0));
        assert_eq!(report.outstanding.len(), 1);
        let bills = store.fee_bills(november).await.unwrap();
        assert_eq!(bills.len(), 1);
        let bill = &bills[0];
        assert_eq!(
            (bill.status, bill.charge_count, bill.fees_minor),
            (FeeBillStatus::Issued, 2, 200)
        );
        let lines = store.fee_bill_lines(bill.id).await.unwrap();
        assert_eq!(lines.len(), 1);
        assert_eq!(
            (
                lines[0].rule_id.as_str(),
                lines[0].charge_count,
                lines[0].amount_minor,
                lines[0].fees_minor
            ),
            ("m-books-volume-fixed", 2, 20_000, 200)
        );

        // Settled in full (post-paid fees are not deducted); the next run
        // bills nothing new and collects the outstanding bill with one
        // transfer.
        settle(&fixture).await;
        assert_eq!(available(&fixture, "m-books").await, 20_000);
        let report = server::fee_billing::run(&fixture.state, november, DECEMBER_FIRST)
            .await
            .unwrap();
        assert_eq!((report.bills_created, report.bills_paid), (0, 1));
        assert!(report.outstanding.is_empty());
        assert_eq!(available(&fixture, "m-books").await, 19_800);
        assert_eq!(income(&fixture).await, 200);
        let bill = &store.fee_bills(november).await.unwrap()[0];
        assert_eq!(bill.status, FeeBillStatus::Paid);
        assert!(bill.transfer_id.is_some());

        // Again: nothing is billed or collected twice.
        let again = server::fee_billing::run(&fixture.state, november, DECEMBER_FIRST)
            .await
            .unwrap();
        assert_eq!((again.bills_created, again.bills_paid), (0, 0));
        assert_eq!(available(&fixture, "m-books").await, 19_800);
        assert_sound(store).await;
    }
}
