//! Clearing and settlement end to end: card payments and refunds through
//! the engine leave clearing entries with their fees; a settlement run nets
//! them per merchant, posts the batches in the ledger, pays bank
//! destinations out, carries negative nets, and does nothing when run
//! again. Every test runs on SQLite and, when `PAYCORE_TEST_POSTGRES_URL` is
//! set (always in CI), on PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use engine::{FundingSource, Initiator, PayRequest, PaymentStatus, RefundRequest, RefundStatus};
use ledger::{AccountKind, LedgerStore, OwnerKind};
use money::Currency;
use server::AppState;
use server::settlement::{Quiet, RunReport};
use settlement::{
    BatchStatus, Calendar, Cycle, Destination, EntryKind, MerchantTerms, SettlementConfig,
    SettlementStore,
};
use store::{Ledger, LedgerOptions, PostgresStore, SqliteStore, Store};

const POSTGRES_URL_VARIABLE: &str = "PAYCORE_TEST_POSTGRES_URL";
/// Friday 2026-11-20 10:00:00 UTC+8: business date 2026-11-20, whose T+1 is
/// Monday 2026-11-23.
const FRIDAY: i64 = 1_795_140_000_000_000;
const HOUR: i64 = 3_600_000_000;

struct Fixture {
    state: AppState,
    store: Store,
    _directory: Option<tempfile::TempDir>,
}

async fn fixtures(test: &str) -> Vec<Fixture> {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("paycore.db");
    let sqlite = Store::Sqlite(SqliteStore::open(path.to_str().unwrap()).await.unwrap());
    let mut fixtures = vec![fixture(sqlite, Some(directory))];
    match std::env::var(POSTGRES_URL_VARIABLE) {
        Ok(url) => {
            let schema = format!("settlement_{test}");
            let mut connection: sqlx::PgConnection = sqlx::Connection::connect(&url).await.unwrap();
            sqlx::raw_sql(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                .execute(&mut connection)
                .await
                .unwrap();
            let postgres = PostgresStore::open_in_schema(&url, Some(&schema))
                .await
                .unwrap();
            fixtures.push(fixture(Store::Postgres(postgres), None));
        }
        Err(_) => assert!(
            std::env::var_os("CI").is_none(),
            "{POSTGRES_URL_VARIABLE} must be set in CI: the PostgreSQL half may not be skipped"
        ),
    }
    fixtures
}

fn fixture(store: Store, directory: Option<tempfile::TempDir>) -> Fixture {
    let ledger = Ledger::start(store.clone(), LedgerOptions::default());
    let config = server::Config::builtin().unwrap();
    Fixture {
        state: AppState::with_config(ledger, &config),
        store,
        _directory: directory,
    }
}

fn terms(destination: Destination, minimum_minor: i64) -> MerchantTerms {
    MerchantTerms {
        cycle: Cycle::T(1),
        destination,
        minimum_minor,
        reconciled_only: false,
    }
}

async fn pay(fixture: &Fixture, merchant: &str, trade: &str, amount_minor: i64) {
    let view = fixture
        .state
        .payments()
        .pay(
            &PayRequest {
                merchant_id: merchant.to_owned(),
                out_trade_no: trade.to_owned(),
                subject: "goods".to_owned(),
                amount_minor,
                currency: Currency::CNY,
                request_serial: format!("serial-{trade}"),
                product: "instant_transfer".to_owned(),
                payer_id: "alice".to_owned(),
                bank: Some("ICBC".to_owned()),
                sources: vec![(FundingSource::Card, amount_minor)],
                campaign: None,
                agreement_no: None,
            },
            FRIDAY,
        )
        .await
        .unwrap();
    assert_eq!(view.payment.status, PaymentStatus::Success);
}

async fn refund(fixture: &Fixture, merchant: &str, trade: &str, amount_minor: i64) {
    let view = fixture
        .state
        .payments()
        .refund(
            &RefundRequest {
                merchant_id: merchant.to_owned(),
                out_trade_no: trade.to_owned(),
                refund_serial: format!("refund-{trade}-{amount_minor}"),
                amount_minor,
                reason: "returned".to_owned(),
                initiator: Initiator::Merchant,
            },
            FRIDAY + HOUR,
        )
        .await
        .unwrap();
    assert_eq!(view.refund.status, RefundStatus::Success);
}

async fn balance(store: &Store, owner_kind: OwnerKind, owner: &str, kind: AccountKind) -> i64 {
    let accounts = store
        .accounts_of(owner_kind, kind, Currency::CNY)
        .await
        .unwrap();
    accounts
        .get(owner)
        .map_or(0, |account| account.balance().unwrap().ledger_minor)
}

async fn settle(fixture: &Fixture, config: &SettlementConfig, date: &str) -> RunReport {
    server::settlement::run(
        &fixture.state,
        &Calendar::builtin().unwrap(),
        config,
        settlement::parse_date(date).unwrap(),
        FRIDAY + 72 * HOUR,
        &Quiet,
    )
    .await
    .unwrap()
}

async fn assert_sound(store: &Store) {
    let report = store.check().await.unwrap();
    assert!(report.is_sound(), "{:?}", report.violations);
}

#[tokio::test]
async fn settlement_nets_posts_carries_and_reruns_as_a_no_op() {
    for fixture in fixtures("nets").await {
        let store = &fixture.store;
        // m-shop: 100.00 + 250.00 collected, 50.00 of the first refunded.
        pay(&fixture, "m-shop", "t1", 10_000).await;
        pay(&fixture, "m-shop", "t2", 25_000).await;
        refund(&fixture, "m-shop", "t1", 5_000).await;
        // m-kiosk: 10.00 collected and refunded whole: net is minus its fee.
        pay(&fixture, "m-kiosk", "k1", 1_000).await;
        refund(&fixture, "m-kiosk", "k1", 1_000).await;

        // Clearing: one entry per success, with the fee of the most
        // specific built-in rule (ICBC cards on simbank: 0.55%, half up) on
        // collections and none on refunds.
        let entries = store
            .clearing_entries("m-shop", "2026-11-20")
            .await
            .unwrap();
        let summary: Vec<_> = entries
            .iter()
            .map(|entry| {
                (
                    entry.entry.kind,
                    entry.entry.amount_minor,
                    entry.entry.fee_minor,
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                (EntryKind::Collection, 10_000, 55),
                (EntryKind::Collection, 25_000, 138),
                (EntryKind::Refund, 5_000, 0),
            ]
        );
        assert!(entries.iter().all(|entry| entry.batch_id.is_none()));
        assert!(
            entries
                .iter()
                .all(|entry| entry.entry.channel.as_deref() == Some("simbank"))
        );

        let config = SettlementConfig::uniform(terms(Destination::Available, 0));
        // Nothing is due before T+1 (Monday).
        let early = settle(&fixture, &config, "2026-11-22").await;
        assert_eq!(early.batches_paid + early.batches_carried, 0);
        assert!(store.batches("2026-11-22").await.unwrap().is_empty());

        let report = settle(&fixture, &config, "2026-11-23").await;
        assert_eq!(report.batches_paid, 1);
        assert_eq!(report.batches_carried, 1);
        assert_eq!(report.entries_settled, 3);
        assert!(report.failures.is_empty(), "{:?}", report.failures);
        let batches = store.batches("2026-11-23").await.unwrap();
        let shop = batches.iter().find(|b| b.merchant_id == "m-shop").unwrap();
        assert_eq!(shop.status, BatchStatus::Posted);
        assert_eq!(shop.net_minor, 35_000 - 5_000 - 193);
        assert_eq!(shop.fees_minor, 193);
        let kiosk = batches.iter().find(|b| b.merchant_id == "m-kiosk").unwrap();
        assert_eq!(kiosk.status, BatchStatus::Carried);
        assert_eq!(kiosk.net_minor, -6);

        // Settlement-pending → available, fees → platform income.
        let pending = |owner| {
            balance(
                store,
                OwnerKind::Merchant,
                owner,
                AccountKind::MerchantPending,
            )
        };
        let available = |owner| {
            balance(
                store,
                OwnerKind::Merchant,
                owner,
                AccountKind::MerchantAvailable,
            )
        };
        assert_eq!(pending("m-shop").await, 0);
        assert_eq!(available("m-shop").await, 29_807);
        assert_eq!(
            balance(
                store,
                OwnerKind::Platform,
                "fees",
                AccountKind::PlatformIncome
            )
            .await,
            193
        );
        // A carried batch moves nothing and leaves its entries unsettled.
        assert_eq!(available("m-kiosk").await, 0);
        let kiosk_entries = store
            .clearing_entries("m-kiosk", "2026-11-20")
            .await
            .unwrap();
        assert!(kiosk_entries.iter().all(|entry| entry.batch_id.is_none()));
        let shop_entries = store
            .clearing_entries("m-shop", "2026-11-20")
            .await
            .unwrap();
        assert!(
            shop_entries
                .iter()
                .all(|entry| entry.batch_id == Some(shop.id))
        );

        // The shop's bill of its business date agrees with its clearing
        // entries and with its settlement batch, to the cent.
        let bill = settlement::write_bill(&shop_entries, settlement::BillType::All).unwrap();
        let totals = bill.totals[&Currency::CNY];
        assert_eq!(bill.rows, 3);
        assert_eq!(
            (
                totals.collections_minor,
                totals.refunds_minor,
                totals.fees_minor
            ),
            (shop.collections_minor, shop.refunds_minor, shop.fees_minor)
        );
        assert_eq!(totals.net_minor, shop.net_minor);
        let entry_fees: i64 = shop_entries.iter().map(|e| e.entry.fee_minor).sum();
        assert_eq!(totals.fees_minor, entry_fees);
        let summary = bill.csv.lines().last().unwrap();
        assert_eq!(summary, "CNY,3,2,350.00,1,50.00,1.93,1.93,298.07");
        assert!(
            bill.csv
                .lines()
                .nth(1)
                .unwrap()
                .ends_with(&format!(",{}", shop.id))
        );

        // The same date again: nothing new, nothing moved. The shop has
        // nothing left to net; the kiosk's carried line finds its batch.
        let again = settle(&fixture, &config, "2026-11-23").await;
        assert_eq!(again.batches_existing, 1);
        assert_eq!(again.batches_paid + again.posted, 0);
        assert_eq!(available("m-shop").await, 29_807);

        // The next day nets the carried entries again with new business.
        pay(&fixture, "m-kiosk", "k2", 2_000).await;
        let tuesday = settle(&fixture, &config, "2026-11-24").await;
        assert_eq!(tuesday.batches_paid, 1, "{tuesday:?}");
        assert_eq!(available("m-kiosk").await, 1_000 - 1_000 - 6 + 2_000 - 11);
        assert_eq!(available("m-shop").await, 29_807);
        assert_sound(store).await;
    }
}

#[tokio::test]
async fn settlement_pays_bank_destinations_and_respects_minimums() {
    for fixture in fixtures("bank").await {
        let store = &fixture.store;
        pay(&fixture, "m-bank", "b1", 50_000).await;
        pay(&fixture, "m-small", "s1", 2_000).await;
        let config = SettlementConfig::from_toml(
            r#"
            [defaults]
            cycle = "T+1"
            [[merchants]]
            id = "m-bank"
            destination = "bank"
            bank = "ICBC"
            bank_account = "6222020000000001"
            [[merchants]]
            id = "m-small"
            minimum_minor = 10000
            "#,
        )
        .unwrap();
        let report = settle(&fixture, &config, "2026-11-23").await;
        assert!(report.failures.is_empty(), "{:?}", report.failures);
        assert_eq!(report.payouts_sent, 1);
        assert_eq!(report.batches_below_minimum, 1);
        let batches = store.batches("2026-11-23").await.unwrap();
        let bank = batches.iter().find(|b| b.merchant_id == "m-bank").unwrap();
        assert_eq!(bank.status, BatchStatus::Paid);
        assert!(bank.payout_payment_id.is_some());
        // Paid out: nothing left waiting or available here; the money went
        // to the channel's clearing account for the bank transfer.
        for kind in [AccountKind::MerchantPending, AccountKind::MerchantAvailable] {
            assert_eq!(balance(store, OwnerKind::Merchant, "m-bank", kind).await, 0);
        }
        let small = batches.iter().find(|b| b.merchant_id == "m-small").unwrap();
        assert_eq!(small.status, BatchStatus::BelowMinimum);
        assert_eq!(
            balance(
                store,
                OwnerKind::Merchant,
                "m-small",
                AccountKind::MerchantPending
            )
            .await,
            2_000
        );
        // Run again: the payout is not sent twice.
        let again = settle(&fixture, &config, "2026-11-23").await;
        assert_eq!(again.payouts_sent, 0);
        assert_sound(store).await;
    }
}

#[tokio::test]
async fn settlement_outside_the_calendar_is_an_error() {
    for fixture in fixtures("outside").await {
        pay(&fixture, "m-shop", "t1", 10_000).await;
        let config = SettlementConfig::uniform(terms(Destination::Available, 0));
        let calendar = Calendar::from_toml("[years.2025]\nholidays = []\nworkdays = []\n").unwrap();
        let error = server::settlement::run(
            &fixture.state,
            &calendar,
            &config,
            settlement::parse_date("2026-11-23").unwrap(),
            FRIDAY,
            &Quiet,
        )
        .await
        .unwrap_err();
        assert_eq!(error.code(), "OUTSIDE_CALENDAR");
        assert!(
            fixture
                .store
                .batches("2026-11-23")
                .await
                .unwrap()
                .is_empty()
        );
    }
}

#[tokio::test]
async fn money_reserved_for_a_refund_in_flight_is_not_settled() {
    for fixture in fixtures("held").await {
        let store = &fixture.store;
        pay(&fixture, "m-shop", "t1", 10_000).await;
        pay(&fixture, "m-shop", "t2", 20_000).await;
        // A refund the channel answers PROCESSING (amounts ending in 92):
        // its money is reserved in the merchant's settlement-pending account
        // until the channel says how it ended.
        let view = fixture
            .state
            .payments()
            .refund(
                &RefundRequest {
                    merchant_id: "m-shop".to_owned(),
                    out_trade_no: "t2".to_owned(),
                    refund_serial: "slow-1".to_owned(),
                    amount_minor: 5_092,
                    reason: "returned".to_owned(),
                    initiator: Initiator::Merchant,
                },
                FRIDAY + HOUR,
            )
            .await
            .unwrap();
        assert_eq!(view.refund.status, RefundStatus::Processing);
        let config = SettlementConfig::uniform(terms(Destination::Available, 0));
        let report = settle(&fixture, &config, "2026-11-23").await;
        assert_eq!((report.batches_held, report.batches_paid), (1, 0));
        assert!(report.failures.is_empty(), "{:?}", report.failures);
        let batches = store.batches("2026-11-23").await.unwrap();
        assert_eq!(batches[0].status, BatchStatus::Held);
        let entries = store
            .clearing_entries("m-shop", "2026-11-20")
            .await
            .unwrap();
        assert!(entries.iter().all(|entry| entry.batch_id.is_none()));
        let pending = balance(
            store,
            OwnerKind::Merchant,
            "m-shop",
            AccountKind::MerchantPending,
        )
        .await;
        assert_eq!(pending, 30_000);
        assert_sound(store).await;
    }
}

/// The daily summary (日汇总) of a day whose entries settle that same day
/// (T+0): each merchant's line is the sum of its clearing entries and its
/// batch, and the totals agree to the cent with the entries, the batches
/// and what the ledger moved.
#[tokio::test]
async fn the_daily_summary_agrees_with_entries_batches_and_ledger() {
    for fixture in fixtures("daily").await {
        let store = &fixture.store;
        pay(&fixture, "m-shop", "t1", 10_000).await;
        pay(&fixture, "m-shop", "t2", 25_000).await;
        refund(&fixture, "m-shop", "t1", 5_000).await;
        pay(&fixture, "m-kiosk", "k1", 1_000).await;
        refund(&fixture, "m-kiosk", "k1", 1_000).await;
        pay(&fixture, "m-bank", "b1", 50_000).await;
        pay(&fixture, "m-small", "s1", 2_000).await;
        let config = SettlementConfig::from_toml(
            r#"
            [defaults]
            cycle = "T+0"
            [[merchants]]
            id = "m-bank"
            destination = "bank"
            bank = "ICBC"
            bank_account = "6222020000000001"
            [[merchants]]
            id = "m-small"
            minimum_minor = 10000
            "#,
        )
        .unwrap();
        let report = settle(&fixture, &config, "2026-11-20").await;
        assert!(report.failures.is_empty(), "{:?}", report.failures);
        assert_eq!(report.batches_paid, 2);

        let day = settlement::parse_date("2026-11-20").unwrap();
        let batches = store.batches("2026-11-20").await.unwrap();
        let totals = store.clearing_totals_of_date("2026-11-20").await.unwrap();
        let summary = settlement::daily_summary(day, totals, &batches).unwrap();
        assert_eq!(summary.lines.len(), 4);
        let (mut collections, mut refunds, mut fees, mut net) = (0, 0, 0, 0);
        let mut entry_count = 0;
        for line in &summary.lines {
            let entries = store
                .clearing_entries(&line.merchant_id, "2026-11-20")
                .await
                .unwrap();
            let amount = |kind| -> i64 {
                entries
                    .iter()
                    .filter(|entry| entry.entry.kind == kind)
                    .map(|entry| entry.entry.amount_minor)
                    .sum()
            };
            let fee: i64 = entries.iter().map(|entry| entry.entry.fee_minor).sum();
            let figures = &line.figures;
            assert_eq!(figures.collections_minor, amount(EntryKind::Collection));
            assert_eq!(figures.refunds_minor, amount(EntryKind::Refund));
            assert_eq!(figures.real_time_fees_minor, fee, "{}", line.merchant_id);
            assert_eq!(
                figures.collection_count + figures.refund_count,
                entries.len() as u64
            );
            let batch = batches
                .iter()
                .find(|batch| batch.merchant_id == line.merchant_id)
                .unwrap();
            assert_eq!(line.batch, Some((batch.id, batch.status)));
            if batch.status.is_posted() {
                // Everything of the day settled the same day.
                assert_eq!(figures.settled_net_minor, figures.net_minor);
                assert_eq!(figures.settled_fees_minor, figures.real_time_fees_minor);
                assert_eq!(figures.settled_entries, entries.len() as u64);
                assert!(entries.iter().all(|entry| entry.batch_id == Some(batch.id)));
            } else {
                assert_eq!(figures.settled_net_minor, 0);
                assert!(entries.iter().all(|entry| entry.batch_id.is_none()));
            }
            collections += figures.collections_minor;
            refunds += figures.refunds_minor;
            fees += fee;
            net += figures.collections_minor - figures.refunds_minor - fee;
            entry_count += entries.len() as u64;
        }
        let cny = summary.totals[&Currency::CNY];
        assert_eq!(
            (cny.collections_minor, cny.refunds_minor),
            (collections, refunds)
        );
        assert_eq!(
            (cny.collections_minor, cny.refunds_minor),
            (10_000 + 25_000 + 1_000 + 50_000 + 2_000, 5_000 + 1_000)
        );
        assert_eq!((cny.real_time_fees_minor, cny.net_minor), (fees, net));
        assert_eq!(cny.collection_count + cny.refund_count, entry_count);
        assert_eq!((cny.batches, cny.batches_posted), (4, 2));
        let posted: Vec<_> = batches.iter().filter(|b| b.status.is_posted()).collect();
        assert_eq!(
            cny.settled_net_minor,
            posted.iter().map(|batch| batch.net_minor).sum::<i64>()
        );
        // The ledger moved what the summary says settled: the shop's net
        // to its available balance, the bank merchant's out through its
        // payout, the fees of both to platform income.
        let shop = posted.iter().find(|b| b.merchant_id == "m-shop").unwrap();
        let bank = posted.iter().find(|b| b.merchant_id == "m-bank").unwrap();
        assert_eq!(bank.status, BatchStatus::Paid);
        assert_eq!(
            balance(
                store,
                OwnerKind::Merchant,
                "m-shop",
                AccountKind::MerchantAvailable
            )
            .await,
            shop.net_minor
        );
        assert_eq!(
            balance(
                store,
                OwnerKind::Platform,
                "fees",
                AccountKind::PlatformIncome
            )
            .await,
            cny.settled_fees_minor
        );
        assert_eq!(cny.settled_net_minor, shop.net_minor + bank.net_minor);
        let rows = summary.rows();
        let total = rows.last().unwrap();
        assert_eq!(total[1], settlement::TOTAL_ROW);
        assert_eq!(
            total[17],
            money::Money::new(cny.settled_net_minor, Currency::CNY).format_major()
        );
        assert_sound(store).await;
    }
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    /// One payment: merchant, day after Friday (0-2), amount in yuan, and
    /// whether half of it is refunded on the same day.
    type Plan = (usize, i64, i64, bool);

    fn plans() -> impl Strategy<Value = Vec<Plan>> {
        proptest::collection::vec((0usize..3, 0i64..3, 1i64..500, any::<bool>()), 1..12)
    }

    fn settle_dates() -> impl Strategy<Value = Vec<&'static str>> {
        proptest::collection::vec(
            proptest::sample::select(vec!["2026-11-20", "2026-11-23", "2026-11-24", "2026-11-25"]),
            1..5,
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

        /// Whatever the payments, refunds and order of runs: every entry
        /// settles at most once, each batch holds exactly the entries that
        /// name it, and what the merchants received is collections − refunds
        /// − fees of their settled entries, to the cent.
        #[test]
        fn entries_settle_once_and_nets_add_up(plans in plans(), dates in settle_dates()) {
            let runtime = tokio::runtime::Runtime::new().unwrap();
            runtime.block_on(check(plans, dates));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

        /// Runs between payments, so that a business date already settled
        /// gets more entries later, and a merchant on reconciled-only terms
        /// whose entries are reconciled a few at a time: every entry still
        /// settles once, late ones in a later batch, to the cent; and once
        /// everything is reconciled and due, a merchant whose last batch
        /// pays has nothing left unsettled.
        #[test]
        fn late_entries_and_late_reconciliation_settle_once(
            early in plans(),
            late in plans(),
            first in settle_dates(),
            then in settle_dates(),
        ) {
            let runtime = tokio::runtime::Runtime::new().unwrap();
            runtime.block_on(check_late(early, late, first, then));
        }
    }

    const MERCHANTS: [&str; 3] = ["m-a", "m-b", "m-c"];
    const BUSINESS_DAYS: [&str; 6] = [
        "2026-11-20",
        "2026-11-21",
        "2026-11-22",
        "2026-11-23",
        "2026-11-24",
        "2026-11-25",
    ];

    async fn check(plans: Vec<Plan>, dates: Vec<&'static str>) {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("paycore.db");
        let store = Store::Sqlite(SqliteStore::open(path.to_str().unwrap()).await.unwrap());
        let fixture = fixture(store, Some(directory));
        make_payments(&fixture, &plans, "p").await;
        let config = SettlementConfig::uniform(terms(Destination::Available, 0));
        for date in dates {
            settle(&fixture, &config, date).await;
        }
        check_batches(&fixture).await;
    }

    async fn check_late(
        early: Vec<Plan>,
        late: Vec<Plan>,
        first: Vec<&'static str>,
        then: Vec<&'static str>,
    ) {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("paycore.db");
        let url = format!("sqlite://{}", path.display());
        let store = Store::Sqlite(SqliteStore::open(path.to_str().unwrap()).await.unwrap());
        let fixture = fixture(store, Some(directory));
        let config = SettlementConfig::from_toml(
            "[defaults]\ncycle = \"T+1\"\ndestination = \"available\"\nminimum_minor = 0\n\
             reconciled_only = false\n\n[[merchants]]\nid = \"m-c\"\nreconciled_only = true\n",
        )
        .unwrap();
        // What reconciliation does to the entries it confirms.
        let reconcile = |condition: &'static str| {
            let url = url.clone();
            async move {
                use sqlx::Connection;
                let mut connection = sqlx::SqliteConnection::connect(&url).await.unwrap();
                sqlx::query(&format!(
                    "UPDATE clearing_entries SET reconciled = TRUE \
                     WHERE NOT reconciled AND merchant_id = 'm-c' AND {condition}"
                ))
                .execute(&mut connection)
                .await
                .unwrap();
            }
        };
        make_payments(&fixture, &early, "early").await;
        for date in first {
            settle(&fixture, &config, date).await;
        }
        reconcile("id % 2 = 0").await;
        make_payments(&fixture, &late, "late").await;
        for date in then {
            settle(&fixture, &config, date).await;
        }
        check_batches(&fixture).await;
        reconcile("TRUE").await;
        let last = "2026-11-27";
        settle(&fixture, &config, last).await;
        check_batches(&fixture).await;
        let store = &fixture.store;
        let final_batches = store.batches(last).await.unwrap();
        for merchant in MERCHANTS {
            let entries = entries_of(store, merchant).await;
            let left = entries.iter().filter(|e| e.batch_id.is_none()).count();
            let paid = final_batches
                .iter()
                .find(|batch| batch.merchant_id == merchant)
                .is_none_or(|batch| batch.status.holds_entries());
            if paid {
                assert_eq!(left, 0, "merchant {merchant}: {entries:?}");
            }
        }
    }

    async fn entries_of(store: &Store, merchant: &str) -> Vec<settlement::ClearingEntry> {
        let mut entries = Vec::new();
        for day in BUSINESS_DAYS {
            entries.extend(store.clearing_entries(merchant, day).await.unwrap());
        }
        entries
    }

    async fn make_payments(fixture: &Fixture, plans: &[Plan], prefix: &str) {
        let merchants = MERCHANTS;
        for (index, (merchant, day, yuan, refund_half)) in plans.iter().enumerate() {
            let index = format!("{prefix}{index}");
            let at = FRIDAY + day * 24 * HOUR;
            let trade = format!("p{index}");
            let amount = yuan * 100;
            let request = PayRequest {
                merchant_id: merchants[*merchant].to_owned(),
                out_trade_no: trade.clone(),
                subject: "goods".to_owned(),
                amount_minor: amount,
                currency: Currency::CNY,
                request_serial: format!("serial-{trade}"),
                product: "instant_transfer".to_owned(),
                payer_id: "alice".to_owned(),
                bank: Some("ICBC".to_owned()),
                sources: vec![(FundingSource::Card, amount)],
                campaign: None,
                agreement_no: None,
            };
            fixture.state.payments().pay(&request, at).await.unwrap();
            if *refund_half && amount >= 200 {
                let refund = RefundRequest {
                    merchant_id: merchants[*merchant].to_owned(),
                    out_trade_no: trade.clone(),
                    refund_serial: format!("r{index}"),
                    amount_minor: amount / 200 * 100,
                    reason: "returned".to_owned(),
                    initiator: Initiator::Merchant,
                };
                fixture
                    .state
                    .payments()
                    .refund(&refund, at + HOUR)
                    .await
                    .unwrap();
            }
        }
    }

    /// Every batch holds exactly the entries that name it, to the cent, and
    /// each merchant received what its paying batches net.
    async fn check_batches(fixture: &Fixture) {
        let store = &fixture.store;
        let mut batches = Vec::new();
        for date in [
            "2026-11-20",
            "2026-11-23",
            "2026-11-24",
            "2026-11-25",
            "2026-11-27",
        ] {
            batches.extend(store.batches(date).await.unwrap());
        }
        for merchant in MERCHANTS {
            let entries = entries_of(store, merchant).await;
            let mut received = 0;
            for batch in batches.iter().filter(|b| b.merchant_id == merchant) {
                let mine: Vec<_> = entries
                    .iter()
                    .filter(|e| e.batch_id == Some(batch.id))
                    .collect();
                let count = (batch.collection_count + batch.refund_count) as usize;
                if batch.status.holds_entries() {
                    assert_eq!(mine.len(), count, "batch {batch:?}");
                    let net: i64 = mine
                        .iter()
                        .map(|e| match e.entry.kind {
                            EntryKind::Collection => e.entry.amount_minor - e.entry.fee_minor,
                            EntryKind::Refund => -e.entry.amount_minor + e.entry.fee_minor,
                        })
                        .sum();
                    assert_eq!(net, batch.net_minor, "batch {batch:?}");
                    received += batch.net_minor;
                } else {
                    assert!(mine.is_empty(), "a {:?} batch holds entries", batch.status);
                }
            }
            let available = balance(
                store,
                OwnerKind::Merchant,
                merchant,
                AccountKind::MerchantAvailable,
            )
            .await;
            assert_eq!(available, received, "merchant {merchant}");
        }
        assert_sound(store).await;
    }
}
