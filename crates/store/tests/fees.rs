//! The fee counter contract: every test runs against SQLite and PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use fees::{
    BusinessDate, CounterKey, FeeCharge, FeeCounterStore, FeeRequest, FeeSchedule, FeeSide, Period,
    PeriodUsage,
};
use money::{Currency, Money};

mod common;
use common::{Fixture, reopen};

contract!(
    fees_counters_survive_reopening,
    fees_concurrent_records_are_exact,
    fees_a_repeated_charge_key_adds_nothing,
    fees_charges_are_priced_on_their_place_in_the_period,
    fees_a_released_charge_gives_its_place_back_once,
);

const NOW: i64 = 1_700_000_000_000_000;
const CONCURRENT_CHARGES: i64 = 50;

fn counter(rule_id: &str, merchant_id: &str, date: &str) -> CounterKey {
    CounterKey {
        rule_id: rule_id.to_owned(),
        merchant_id: merchant_id.to_owned(),
        period_key: Period::Month.key(BusinessDate::parse(date).unwrap()),
    }
}

fn charge(key: &str, counter: &CounterKey, amount_minor: i64) -> FeeCharge {
    FeeCharge {
        charge_key: key.to_owned(),
        counter: counter.clone(),
        amount_minor,
    }
}

async fn fees_counters_survive_reopening(fixture: Fixture) {
    let march = counter("r1", "m1", "2025-03-15");
    for (number, amount) in [(1, 100), (2, 250), (3, 1_000)] {
        fixture
            .store
            .record_fee_charge(&charge(&format!("c{number}"), &march, amount), NOW)
            .await
            .unwrap();
    }
    let reopened = reopen(&fixture.raw).await;
    let expected = PeriodUsage {
        count: 3,
        volume_minor: 1_350,
    };
    assert_eq!(reopened.fee_counter(&march).await.unwrap(), expected);
    let fourth = reopened
        .record_fee_charge(&charge("c4", &march, 50), NOW)
        .await
        .unwrap();
    assert_eq!(fourth.before, expected);
    assert!(fourth.first_time);
    // A repeat after reopening still finds its first recording.
    let repeat = reopened
        .record_fee_charge(&charge("c2", &march, 250), NOW)
        .await
        .unwrap();
    assert_eq!(
        repeat.before,
        PeriodUsage {
            count: 1,
            volume_minor: 100
        }
    );
    assert!(!repeat.first_time);
    // Other periods, merchants and rules are other counters.
    for other in [
        counter("r1", "m1", "2025-04-01"),
        counter("r1", "m2", "2025-03-15"),
        counter("r2", "m1", "2025-03-15"),
    ] {
        assert_eq!(
            reopened.fee_counter(&other).await.unwrap(),
            PeriodUsage::default()
        );
    }
    assert_eq!(
        reopened
            .fee_counter(&counter("r1", "m1", "2025-03-31"))
            .await
            .unwrap()
            .count,
        4
    );
}

async fn fees_concurrent_records_are_exact(fixture: Fixture) {
    let key = counter("r1", "m1", "2025-03-15");
    let tasks: Vec<_> = (1..=CONCURRENT_CHARGES)
        .map(|amount| {
            let store = fixture.store.clone();
            let charge = charge(&format!("c{amount}"), &key, amount);
            tokio::spawn(async move {
                let recorded = store.record_fee_charge(&charge, NOW).await.unwrap();
                (amount, recorded)
            })
        })
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap());
    }
    let total: i64 = (1..=CONCURRENT_CHARGES).sum();
    assert_eq!(
        fixture.store.fee_counter(&key).await.unwrap(),
        PeriodUsage {
            count: CONCURRENT_CHARGES,
            volume_minor: total
        }
    );
    // Each charge saw its own place: counts 0..50 once each, and each
    // volume before is the previous one plus the previous charge's amount.
    results.sort_by_key(|(_, recorded)| recorded.before.count);
    let mut volume_minor = 0;
    for (place, (amount, recorded)) in results.iter().enumerate() {
        assert!(recorded.first_time);
        assert_eq!(recorded.before.count, i64::try_from(place).unwrap());
        assert_eq!(recorded.before.volume_minor, volume_minor);
        volume_minor += amount;
    }
}

async fn fees_a_repeated_charge_key_adds_nothing(fixture: Fixture) {
    let key = counter("r1", "m1", "2025-03-15");
    let first = fixture
        .store
        .record_fee_charge(&charge("payment-1-payee", &key, 500), NOW)
        .await
        .unwrap();
    assert!(first.first_time);
    assert_eq!(first.before, PeriodUsage::default());
    let second = fixture
        .store
        .record_fee_charge(&charge("payment-2-payee", &key, 700), NOW)
        .await
        .unwrap();
    let again = fixture
        .store
        .record_fee_charge(&charge("payment-1-payee", &key, 500), NOW)
        .await
        .unwrap();
    assert_eq!(again.before, first.before);
    assert!(!again.first_time);
    // Concurrent repeats of one new key add it once.
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let store = fixture.store.clone();
            let charge = charge("payment-3-payee", &key, 900);
            tokio::spawn(async move { store.record_fee_charge(&charge, NOW).await.unwrap() })
        })
        .collect();
    let mut firsts = 0;
    for task in tasks {
        let recorded = task.await.unwrap();
        firsts += usize::from(recorded.first_time);
        assert_eq!(
            recorded.before,
            PeriodUsage {
                count: 2,
                volume_minor: 1_200
            }
        );
    }
    assert_eq!(firsts, 1);
    assert_eq!(
        fixture.store.fee_counter(&key).await.unwrap(),
        PeriodUsage {
            count: 3,
            volume_minor: 2_100
        }
    );
    assert!(second.first_time);
    // A key repeated with other fields is refused and adds nothing.
    let conflicts = [
        (charge("payment-1-payee", &key, 501), "amount"),
        (
            charge("payment-1-payee", &counter("r2", "m1", "2025-03-15"), 500),
            "rule",
        ),
        (
            charge("payment-1-payee", &counter("r1", "m9", "2025-03-15"), 500),
            "merchant",
        ),
        (
            charge("payment-1-payee", &counter("r1", "m1", "2025-04-15"), 500),
            "period",
        ),
    ];
    for (conflicting, field) in conflicts {
        match fixture.store.record_fee_charge(&conflicting, NOW).await {
            Err(fees::FeeCounterError::ChargeKeyConflict { field: named, .. }) => {
                assert_eq!(named, field)
            }
            other => panic!("{field}: {other:?}"),
        }
    }
    let invalid = fixture
        .store
        .record_fee_charge(&charge("payment-4-payee", &key, 0), NOW)
        .await
        .unwrap_err();
    assert_eq!(invalid.code(), "FEE_INVALID_CHARGE");
    assert_eq!(fixture.store.fee_counter(&key).await.unwrap().count, 3);
}

const COUNT_TIERS: &str = r#"
[[rules]]
id = "rides"
currency = "CNY"
merchant = "m-rides"
method = "cumulative_count_tiers_fixed"
period = "day"
policy = "graduated"
tiers = [{ up_to = 2, fee = "1.00" }, { fee = "0.50" }]
"#;

async fn fees_charges_are_priced_on_their_place_in_the_period(fixture: Fixture) {
    let schedule = FeeSchedule::from_toml(COUNT_TIERS).unwrap();
    let request = |date: &'static str| FeeRequest {
        side: FeeSide::Payee,
        merchant_id: "m-rides",
        product: "instant_transfer",
        issuing_bank: None,
        channel: None,
        business_line: None,
        amount: Money::new(2_000, Currency::CNY),
        business_date: BusinessDate::parse(date).unwrap(),
        usage: PeriodUsage::default(),
    };
    let mut fees = Vec::new();
    for number in 1..=3 {
        let quote = schedule
            .charge(
                &fixture.store,
                &format!("ride-{number}"),
                &request("2025-03-15"),
                NOW,
            )
            .await
            .unwrap();
        fees.push(quote.fee.amount_minor());
    }
    assert_eq!(fees, [100, 100, 50]);
    // A retried charge is priced as the first time and counted once.
    let retried = schedule
        .charge(&fixture.store, "ride-3", &request("2025-03-15"), NOW)
        .await
        .unwrap();
    assert_eq!(retried.fee.amount_minor(), 50);
    assert_eq!(retried.counter.unwrap().before.count, 2);
    // The next day starts from zero.
    let next_day = schedule
        .charge(&fixture.store, "ride-4", &request("2025-03-16"), NOW)
        .await
        .unwrap();
    assert_eq!(next_day.fee.amount_minor(), 100);
    let key = schedule
        .counter_key(&request("2025-03-15"))
        .unwrap()
        .unwrap();
    assert_eq!(fixture.store.fee_counter(&key).await.unwrap().count, 3);
}

async fn fees_a_released_charge_gives_its_place_back_once(fixture: Fixture) {
    let store = &fixture.store;
    let march = counter("r1", "m1", "2025-03-15");
    for (key, amount) in [("a", 100), ("b", 250), ("c", 1_000)] {
        store
            .record_fee_charge(&charge(key, &march, amount), NOW)
            .await
            .unwrap();
    }
    assert!(store.release_fee_charge("b", NOW).await.unwrap());
    let after = PeriodUsage {
        count: 2,
        volume_minor: 1_100,
    };
    assert_eq!(store.fee_counter(&march).await.unwrap(), after);
    // Once only, and a key never recorded releases nothing.
    assert!(!store.release_fee_charge("b", NOW).await.unwrap());
    assert!(!store.release_fee_charge("never", NOW).await.unwrap());
    assert_eq!(store.fee_counter(&march).await.unwrap(), after);
    // The key stays used: recording it again adds nothing.
    let again = store
        .record_fee_charge(&charge("b", &march, 250), NOW)
        .await
        .unwrap();
    assert!(!again.first_time);
    assert_eq!(store.fee_counter(&march).await.unwrap(), after);
    // The next charge is priced without the released one.
    let next = store
        .record_fee_charge(&charge("d", &march, 10), NOW)
        .await
        .unwrap();
    assert_eq!(next.before, after);
}
