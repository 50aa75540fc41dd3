//! Property tests of what the methods promise (see the crate docs): graduated
//! fees never fall with the amount, whole-volume fees only as far as the
//! tier prices fall, graduated rate pricing is additive before rounding and
//! within one minor unit after it, every fee is within the rule's minimum
//! and maximum, and the index always picks what a scan of every rule picks,
//! so that a less specific rule never changes the winner.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use fees::{
    BusinessDate, CollectionMode, Dimensions, FeeMethod, FeeRequest, FeeRule, FeeSchedule, FeeSide,
    Period, PeriodUsage, Rate, TierPolicy, TierPrices, Tiers,
};
use money::{Currency, Money, RoundingMode};
use proptest::prelude::*;

const AMOUNT_MAX: i64 = 1_000_000_000_000;

fn rate() -> impl Strategy<Value = Rate> {
    (
        0i64..=10_000,
        prop::sample::select(vec![100i64, 10_000, 1_000_000]),
    )
        .prop_filter_map("at most 100%", |(numerator, denominator)| {
            Rate::from_fraction(numerator, denominator).ok()
        })
}

fn rounding() -> impl Strategy<Value = RoundingMode> {
    prop::sample::select(RoundingMode::ALL.to_vec())
}

fn policy() -> impl Strategy<Value = TierPolicy> {
    prop::sample::select(vec![TierPolicy::Graduated, TierPolicy::WholeVolume])
}

/// Strictly increasing positive bounds for `count` tiers.
fn bounds(count: usize) -> impl Strategy<Value = Vec<i64>> {
    prop::collection::vec(1i64..1_000_000, count.saturating_sub(1)).prop_map(|steps| {
        steps
            .iter()
            .scan(0i64, |total, step| {
                *total += step;
                Some(*total)
            })
            .collect()
    })
}

fn tiers() -> impl Strategy<Value = Tiers> {
    (1usize..=6).prop_flat_map(|count| {
        let prices = prop_oneof![
            prop::collection::vec(rate(), count).prop_map(TierPrices::Rates),
            prop::collection::vec(0i64..100_000, count).prop_map(TierPrices::Fixed),
        ];
        (bounds(count), prices).prop_map(|(up_to, prices)| Tiers { up_to, prices })
    })
}

fn sorted_prices(tiers: &Tiers, descending: bool) -> Tiers {
    let mut sorted = tiers.clone();
    match &mut sorted.prices {
        TierPrices::Rates(rates) => {
            rates.sort_by_key(|rate| rate.numerator() * (1_000_000 / rate.denominator()));
            if descending {
                rates.reverse();
            }
        }
        TierPrices::Fixed(fees) => {
            fees.sort_unstable();
            if descending {
                fees.reverse();
            }
        }
    }
    sorted
}

fn method() -> impl Strategy<Value = FeeMethod> {
    let period = prop::sample::select(Period::ALL.to_vec());
    prop_oneof![
        (0i64..100_000).prop_map(|fee_minor| FeeMethod::Fixed { fee_minor }),
        rate().prop_map(|rate| FeeMethod::Rate { rate }),
        (policy(), tiers()).prop_map(|(policy, tiers)| FeeMethod::AmountTiers { policy, tiers }),
        (period.clone(), policy(), tiers()).prop_map(|(period, policy, tiers)| {
            FeeMethod::CumulativeAmountTiers {
                period,
                policy,
                tiers,
            }
        }),
        (period, policy(), tiers()).prop_map(|(period, policy, tiers)| {
            FeeMethod::CumulativeCountTiers {
                period,
                policy,
                tiers,
            }
        }),
    ]
}

fn rule(
    method: FeeMethod,
    rounding: RoundingMode,
    minimum: Option<i64>,
    maximum: Option<i64>,
) -> FeeRule {
    FeeRule {
        id: "r".to_owned(),
        side: FeeSide::Payee,
        dimensions: Dimensions::default(),
        currency: Currency::CNY,
        method,
        minimum_minor: minimum,
        maximum_minor: maximum,
        rounding,
        collection: CollectionMode::RealTime,
    }
}

fn bounded() -> impl Strategy<Value = (Option<i64>, Option<i64>)> {
    (
        prop::option::of(0i64..10_000),
        prop::option::of(0i64..1_000_000),
    )
        .prop_map(|(minimum, maximum)| match (minimum, maximum) {
            (Some(minimum), Some(maximum)) if maximum < minimum => (Some(maximum), Some(minimum)),
            other => other,
        })
}

fn usage() -> impl Strategy<Value = PeriodUsage> {
    (0i64..10_000_000, 0i64..AMOUNT_MAX).prop_map(|(count, volume_minor)| PeriodUsage {
        count,
        volume_minor,
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Graduated fees never fall as the amount grows, for every tiered
    /// method, rate or fixed, with any minimum and maximum.
    #[test]
    fn graduated_fees_never_fall(
        tiers in tiers(),
        rounding in rounding(),
        (minimum, maximum) in bounded(),
        usage in usage(),
        small in 1i64..AMOUNT_MAX,
        extra in 0i64..AMOUNT_MAX,
    ) {
        let large = small + extra;
        for method in [
            FeeMethod::AmountTiers { policy: TierPolicy::Graduated, tiers: tiers.clone() },
            FeeMethod::CumulativeAmountTiers { period: Period::Month, policy: TierPolicy::Graduated, tiers: tiers.clone() },
            FeeMethod::CumulativeCountTiers { period: Period::Month, policy: TierPolicy::Graduated, tiers: tiers.clone() },
        ] {
            let rule = rule(method, rounding, minimum, maximum);
            let low = rule.price(small, usage).unwrap();
            let high = rule.price(large, usage).unwrap();
            prop_assert!(low <= high, "{low} > {high} for {small} ≤ {large}");
        }
    }

    /// Whole-volume fees never fall within a tier, nor at all when the tier
    /// prices do not fall; with falling prices (volume discounts) they stay
    /// at or below the graduated fee, and with rising prices at or above it.
    #[test]
    fn whole_volume_fees_fall_only_with_the_prices(
        tiers in tiers(),
        rounding in rounding(),
        small in 1i64..AMOUNT_MAX,
        extra in 0i64..AMOUNT_MAX,
    ) {
        let large = small + extra;
        let price = |tiers: &Tiers, policy, amount| {
            tiers.price_amount_slice(policy, 0, amount, rounding).unwrap()
        };
        if tiers.tier_of(i128::from(small)) == tiers.tier_of(i128::from(large)) {
            prop_assert!(price(&tiers, TierPolicy::WholeVolume, small) <= price(&tiers, TierPolicy::WholeVolume, large));
        }
        let rising = sorted_prices(&tiers, false);
        prop_assert!(price(&rising, TierPolicy::WholeVolume, small) <= price(&rising, TierPolicy::WholeVolume, large));
        if let TierPrices::Rates(_) = tiers.prices {
            let falling = sorted_prices(&tiers, true);
            prop_assert!(price(&falling, TierPolicy::WholeVolume, large) <= price(&falling, TierPolicy::Graduated, large));
            prop_assert!(price(&rising, TierPolicy::WholeVolume, large) >= price(&rising, TierPolicy::Graduated, large));
        }
    }

    /// Graduated rate pricing is additive: the exact (unrounded) fees of
    /// (a, b] and (b, c] sum to that of (a, c]; rounded once per
    /// transaction, the two parts' fees differ from the whole's by at most
    /// one minor unit.
    #[test]
    fn graduated_rate_pricing_is_additive(
        tiers in tiers(),
        rounding in rounding(),
        before in 0i64..AMOUNT_MAX,
        first in 1i64..AMOUNT_MAX,
        second in 1i64..AMOUNT_MAX,
    ) {
        prop_assume!(matches!(tiers.prices, TierPrices::Rates(_)));
        let exact = |start, amount| tiers.graduated_exact_fee(start, amount).unwrap();
        prop_assert_eq!(exact(before, first) + exact(before + first, second), exact(before, first + second));
        let rounded = |start, amount| {
            tiers.price_amount_slice(TierPolicy::Graduated, start, amount, rounding).unwrap()
        };
        let parts = rounded(before, first) + rounded(before + first, second);
        let whole = rounded(before, first + second);
        prop_assert!((parts - whole).abs() <= 1, "parts {parts}, whole {whole}");
    }

    /// Every method's fee is within the rule's minimum and maximum.
    #[test]
    fn fees_are_within_minimum_and_maximum(
        method in method(),
        rounding in rounding(),
        (minimum, maximum) in bounded(),
        usage in usage(),
        amount in 1i64..AMOUNT_MAX,
    ) {
        let rule = rule(method, rounding, minimum, maximum);
        let fee = rule.price(amount, usage).unwrap();
        prop_assert!(fee >= minimum.unwrap_or(0));
        if let Some(maximum) = maximum {
            prop_assert!(fee <= maximum);
        }
    }
}

/// Small value pools, so that random rules and requests often meet.
static MERCHANTS: [&str; 3] = ["m1", "m2", "m3"];
static PRODUCTS: [&str; 2] = ["p1", "p2"];
static CHANNELS: [&str; 2] = ["c1", "c2"];
static BANKS: [&str; 2] = ["b1", "b2"];
static LINES: [&str; 2] = ["l1", "l2"];

fn value(pool: &'static [&'static str]) -> impl Strategy<Value = Option<String>> {
    prop::option::of(prop::sample::select(pool).prop_map(str::to_owned))
}

fn dimensions() -> impl Strategy<Value = (FeeSide, Dimensions)> {
    (
        prop::sample::select(FeeSide::ALL.to_vec()),
        value(&MERCHANTS),
        value(&PRODUCTS),
        value(&CHANNELS),
        value(&BANKS),
        value(&LINES),
    )
        .prop_map(
            |(side, merchant, product, channel, issuing_bank, business_line)| {
                (
                    side,
                    Dimensions {
                        merchant,
                        product,
                        channel,
                        issuing_bank,
                        business_line,
                    },
                )
            },
        )
}

fn table() -> impl Strategy<Value = Vec<FeeRule>> {
    prop::collection::vec(dimensions(), 0..40).prop_map(|entries| {
        let mut seen = std::collections::HashSet::new();
        entries
            .into_iter()
            .filter(|entry| seen.insert(entry.clone()))
            .enumerate()
            .map(|(number, (side, dimensions))| FeeRule {
                id: format!("rule-{number}"),
                side,
                dimensions,
                ..rule(
                    FeeMethod::Fixed { fee_minor: 1 },
                    RoundingMode::HalfUp,
                    None,
                    None,
                )
            })
            .collect()
    })
}

type Request = (
    FeeSide,
    &'static str,
    &'static str,
    Option<&'static str>,
    Option<&'static str>,
    Option<&'static str>,
);

fn request_values() -> impl Strategy<Value = Request> {
    let optional = |pool: &'static [&'static str]| prop::option::of(prop::sample::select(pool));
    (
        prop::sample::select(FeeSide::ALL.to_vec()),
        prop::sample::select(&MERCHANTS[..]),
        prop::sample::select(&PRODUCTS[..]),
        optional(&CHANNELS),
        optional(&BANKS),
        optional(&LINES),
    )
}

fn request(values: &Request) -> FeeRequest<'static> {
    let (side, merchant_id, product, channel, issuing_bank, business_line) = *values;
    FeeRequest {
        side,
        merchant_id,
        product,
        issuing_bank,
        channel,
        business_line,
        amount: Money::new(100, Currency::CNY),
        business_date: BusinessDate::parse("2025-01-31").unwrap(),
        usage: PeriodUsage::default(),
    }
}

/// (number of dimensions named, precedence mask): what specificity compares.
fn specificity(dimensions: &Dimensions) -> (u32, u8) {
    let mask = dimensions.mask();
    (mask.count_ones(), mask)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    /// The index finds exactly the rule a scan of every rule finds.
    #[test]
    fn the_index_agrees_with_a_scan(rules in table(), values in prop::collection::vec(request_values(), 1..20)) {
        let schedule = FeeSchedule::new(rules).unwrap();
        for values in &values {
            let request = request(values);
            let by_index = schedule.select(&request).map(|rule| rule.id.clone());
            let by_scan = schedule.select_by_scan(&request).map(|rule| rule.id.clone());
            prop_assert_eq!(by_index, by_scan);
        }
    }

    /// A rule less specific than the winner, added to the table, never
    /// changes the winner.
    #[test]
    fn a_less_specific_rule_never_changes_the_winner(
        rules in table(),
        values in request_values(),
        (side, extra) in dimensions(),
    ) {
        let schedule = FeeSchedule::new(rules.clone()).unwrap();
        let request = request(&values);
        let Ok(winner) = schedule.select(&request) else {
            return Ok(());
        };
        prop_assume!(specificity(&extra) < specificity(&winner.dimensions));
        prop_assume!(!rules.iter().any(|rule| rule.side == side && rule.dimensions == extra));
        let mut more = rules.clone();
        more.push(FeeRule {
            id: "extra".to_owned(),
            side,
            dimensions: extra,
            ..rule(FeeMethod::Fixed { fee_minor: 2 }, RoundingMode::HalfUp, None, None)
        });
        let larger = FeeSchedule::new(more).unwrap();
        prop_assert_eq!(&larger.select(&request).unwrap().id, &winner.id);
    }
}
