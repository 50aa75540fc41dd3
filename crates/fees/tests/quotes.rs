//! Data-driven quotes: every method and policy, the tier edges, minimum and
//! maximum, matching, and the rule file's errors.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use fees::{
    BusinessDate, CollectionMode, FeeError, FeeQuote, FeeRequest, FeeSchedule, FeeSide, MethodKind,
    PeriodUsage, TierPolicy,
};
use money::{Currency, Money};

const BUILTIN: &str = include_str!("../../../config/fees.toml");

fn date() -> BusinessDate {
    BusinessDate::parse("2025-03-15").unwrap()
}

fn request<'a>(merchant_id: &'a str, product: &'a str, amount_minor: i64) -> FeeRequest<'a> {
    FeeRequest {
        side: FeeSide::Payee,
        merchant_id,
        product,
        issuing_bank: None,
        channel: None,
        business_line: None,
        amount: Money::new(amount_minor, Currency::CNY),
        business_date: date(),
        usage: PeriodUsage::default(),
    }
}

/// A schedule of one rule for merchant `m`, product `p`, from TOML lines.
fn one_rule(body: &str) -> FeeSchedule {
    let text = format!(
        "[[rules]]\nid = \"r\"\ncurrency = \"CNY\"\nmerchant = \"m\"\nproduct = \"p\"\n{body}"
    );
    FeeSchedule::from_toml(&text).unwrap_or_else(|error| panic!("{error}\n{text}"))
}

fn fee(schedule: &FeeSchedule, amount_minor: i64, count: i64, volume_minor: i64) -> i64 {
    let mut request = request("m", "p", amount_minor);
    request.usage = PeriodUsage {
        count,
        volume_minor,
    };
    schedule.quote(&request).unwrap().fee.amount_minor()
}

/// One case: amount, period count before, period volume before, fee (all
/// minor units).
type Case = (i64, i64, i64, i64);

fn check(name: &str, body: &str, cases: &[Case]) {
    let schedule = one_rule(body);
    for (amount, count, volume, expected) in cases {
        assert_eq!(
            fee(&schedule, *amount, *count, *volume),
            *expected,
            "{name}: amount {amount}, count before {count}, volume before {volume}"
        );
    }
}

#[test]
fn fixed_per_transaction() {
    check(
        "fixed",
        "method = \"fixed\"\nfee = \"5.00\"",
        &[(1, 0, 0, 500), (12_345, 0, 0, 500), (i64::MAX, 7, 7, 500)],
    );
}

#[test]
fn rate_per_transaction_rounds_once_as_configured() {
    // 2% of 123.45 is 2.469.
    check(
        "rate",
        "method = \"rate\"\nrate = \"2%\"",
        &[(12_345, 0, 0, 247), (25, 0, 0, 1), (24, 0, 0, 0)],
    );
    check(
        "rate down",
        "method = \"rate\"\nrate = \"2%\"\nrounding = \"down\"",
        &[(12_345, 0, 0, 246), (49, 0, 0, 0)],
    );
    check(
        "rate half even",
        "method = \"rate\"\nrate = \"0.6%\"\nrounding = \"half_even\"",
        &[(250, 0, 0, 2), (750, 0, 0, 4), (600, 0, 0, 4)],
    );
}

const AMOUNT_RATE_TIERS: &str = "method = \"amount_tiers_rate\"\ntiers = [{ up_to = \"2000.00\", rate = \"1%\" }, { rate = \"0.8%\" }]";

#[test]
fn amount_rate_tiers_whole_volume_at_the_edges() {
    check(
        "amount rate tiers, whole volume",
        &format!("{AMOUNT_RATE_TIERS}\npolicy = \"whole_volume\""),
        &[
            // 1999.99 at 1% = 19.9999, 2000.00 at 1% = 20.00 (the boundary is
            // in the lower tier), 2000.01 at 0.8% = 16.00008.
            (199_999, 0, 0, 2_000),
            (200_000, 0, 0, 2_000),
            (200_001, 0, 0, 1_600),
            (300_000, 0, 0, 2_400),
        ],
    );
}

#[test]
fn amount_rate_tiers_graduated_at_the_edges() {
    check(
        "amount rate tiers, graduated",
        &format!("{AMOUNT_RATE_TIERS}\npolicy = \"graduated\""),
        &[
            (199_999, 0, 0, 2_000),
            (200_000, 0, 0, 2_000),
            // 20.00 + 0.01 at 0.8%.
            (200_001, 0, 0, 2_000),
            // 20.00 + 1000.00 at 0.8% = 28.00.
            (300_000, 0, 0, 2_800),
        ],
    );
}

const AMOUNT_FIXED_TIERS: &str = "method = \"amount_tiers_fixed\"\ntiers = [{ up_to = \"2000.00\", fee = \"0.10\" }, { up_to = \"5000.00\", fee = \"0.20\" }, { fee = \"0.50\" }]";

#[test]
fn amount_fixed_tiers_at_the_edges() {
    check(
        "amount fixed tiers, whole volume",
        &format!("{AMOUNT_FIXED_TIERS}\npolicy = \"whole_volume\""),
        &[
            (199_999, 0, 0, 10),
            (200_000, 0, 0, 10),
            (200_001, 0, 0, 20),
            (499_999, 0, 0, 20),
            (500_000, 0, 0, 20),
            (500_001, 0, 0, 50),
        ],
    );
    // Graduated: the fee of every tier the amount reaches.
    check(
        "amount fixed tiers, graduated",
        &format!("{AMOUNT_FIXED_TIERS}\npolicy = \"graduated\""),
        &[
            (199_999, 0, 0, 10),
            (200_000, 0, 0, 10),
            (200_001, 0, 0, 30),
            (500_000, 0, 0, 30),
            (500_001, 0, 0, 80),
        ],
    );
}

const CUMULATIVE_RATE_TIERS: &str = "method = \"cumulative_amount_tiers_rate\"\nperiod = \"month\"\ntiers = [{ up_to = \"10000.00\", rate = \"1%\" }, { rate = \"0.8%\" }]";

#[test]
fn cumulative_amount_rate_tiers_at_the_edges() {
    // A transaction of 100.00; the boundary is 10000.00 (1,000,000 fen).
    check(
        "cumulative amount rate tiers, whole volume",
        &format!("{CUMULATIVE_RATE_TIERS}\npolicy = \"whole_volume\""),
        &[
            (10_000, 3, 989_999, 100),
            (10_000, 3, 990_000, 100),
            (10_000, 3, 990_001, 80),
            (10_000, 3, 995_000, 80),
            (10_000, 3, 1_000_000, 80),
        ],
    );
    check(
        "cumulative amount rate tiers, graduated",
        &format!("{CUMULATIVE_RATE_TIERS}\npolicy = \"graduated\""),
        &[
            (10_000, 3, 989_999, 100),
            (10_000, 3, 990_000, 100),
            // 99.99 at 1% + 0.01 at 0.8% = 0.99998.
            (10_000, 3, 990_001, 100),
            // 50.00 at 1% + 50.00 at 0.8%.
            (10_000, 3, 995_000, 90),
            (10_000, 3, 1_000_000, 80),
        ],
    );
}

const CUMULATIVE_FIXED_TIERS: &str = "method = \"cumulative_amount_tiers_fixed\"\nperiod = \"month\"\ntiers = [{ up_to = \"10000.00\", fee = \"1.00\" }, { fee = \"0.50\" }]";

#[test]
fn cumulative_amount_fixed_tiers_at_the_edges() {
    check(
        "cumulative amount fixed tiers, whole volume",
        &format!("{CUMULATIVE_FIXED_TIERS}\npolicy = \"whole_volume\""),
        &[
            (10_000, 3, 989_999, 100),
            (10_000, 3, 990_000, 100),
            (10_000, 3, 990_001, 50),
            (10_000, 3, 1_000_000, 50),
        ],
    );
    // Graduated: a transaction spanning the boundary pays both tiers' fees.
    check(
        "cumulative amount fixed tiers, graduated",
        &format!("{CUMULATIVE_FIXED_TIERS}\npolicy = \"graduated\""),
        &[
            (10_000, 3, 989_999, 100),
            (10_000, 3, 990_000, 100),
            (10_000, 3, 990_001, 150),
            (10_000, 3, 1_000_000, 50),
        ],
    );
}

#[test]
fn cumulative_count_tiers_at_the_edges_under_both_policies() {
    for policy in ["graduated", "whole_volume"] {
        check(
            &format!("cumulative count rate tiers, {policy}"),
            &format!(
                "method = \"cumulative_count_tiers_rate\"\nperiod = \"day\"\npolicy = \"{policy}\"\ntiers = [{{ up_to = 1000, rate = \"1%\" }}, {{ rate = \"0.8%\" }}]"
            ),
            // Transactions number 999, 1000 and 1001 of the day.
            &[
                (10_000, 998, 0, 100),
                (10_000, 999, 0, 100),
                (10_000, 1_000, 0, 80),
            ],
        );
        check(
            &format!("cumulative count fixed tiers, {policy}"),
            &format!(
                "method = \"cumulative_count_tiers_fixed\"\nperiod = \"year\"\npolicy = \"{policy}\"\ntiers = [{{ up_to = 1000, fee = \"1.00\" }}, {{ fee = \"0.50\" }}]"
            ),
            &[
                (10_000, 998, 0, 100),
                (10_000, 999, 0, 100),
                (10_000, 1_000, 0, 50),
                (10_000, 0, 0, 100),
            ],
        );
    }
}

#[test]
fn minimum_and_maximum_apply_after_the_method() {
    check(
        "rate with bounds",
        "method = \"rate\"\nrate = \"1%\"\nminimum = \"1.00\"\nmaximum = \"5.00\"",
        &[
            (5_000, 0, 0, 100),
            (10_000, 0, 0, 100),
            (30_000, 0, 0, 300),
            (50_000, 0, 0, 500),
            (1_000_000, 0, 0, 500),
        ],
    );
    check(
        "graduated with a maximum",
        &format!("{AMOUNT_RATE_TIERS}\npolicy = \"graduated\"\nmaximum = \"25.00\""),
        &[(200_000, 0, 0, 2_000), (300_000, 0, 0, 2_500)],
    );
}

#[test]
fn a_quote_names_rule_method_collection_and_counter() {
    let schedule = one_rule(&format!(
        "{CUMULATIVE_RATE_TIERS}\npolicy = \"graduated\"\ncollection = \"post_paid\""
    ));
    let mut request = request("m", "p", 10_000);
    request.usage = PeriodUsage {
        count: 3,
        volume_minor: 995_000,
    };
    let quote: FeeQuote = schedule.quote(&request).unwrap();
    assert_eq!(&*quote.rule_id, "r");
    assert_eq!(quote.method, MethodKind::CumulativeAmountTiersRate);
    assert_eq!(quote.policy, Some(TierPolicy::Graduated));
    assert_eq!(quote.collection, CollectionMode::PostPaid);
    assert_eq!(quote.fee, Money::new(90, Currency::CNY));
    let counter = quote.counter.unwrap();
    assert_eq!(counter.period_key.to_string(), "2025-03");
    assert_eq!(counter.before, request.usage);
    let key = schedule.counter_key(&request).unwrap().unwrap();
    assert_eq!((key.rule_id.as_str(), key.merchant_id.as_str()), ("r", "m"));
    let fixed = one_rule("method = \"fixed\"\nfee = \"1.00\"");
    assert_eq!(fixed.quote(&request).unwrap().counter, None);
    assert_eq!(fixed.counter_key(&request).unwrap(), None);
}

#[test]
fn refusals_have_stable_codes() {
    let schedule = one_rule("method = \"rate\"\nrate = \"1%\"");
    let code = |request: &FeeRequest<'_>| schedule.quote(request).unwrap_err().code();
    assert_eq!(code(&request("other", "p", 100)), "FEE_RULE_NOT_FOUND");
    let mut payer = request("m", "p", 100);
    payer.side = FeeSide::Payer;
    assert_eq!(code(&payer), "FEE_RULE_NOT_FOUND");
    assert_eq!(code(&request("m", "p", 0)), "FEE_INVALID_AMOUNT");
    assert_eq!(code(&request("m", "p", -5)), "FEE_INVALID_AMOUNT");
    let mut dollars = request("m", "p", 100);
    dollars.amount = Money::new(100, Currency::USD);
    assert!(matches!(
        schedule.quote(&dollars),
        Err(FeeError::CurrencyMismatch {
            rule_currency: "CNY",
            transaction_currency: "USD",
            ..
        })
    ));
    let mut negative = request("m", "p", 100);
    negative.usage.count = -1;
    assert_eq!(code(&negative), "FEE_INVALID_USAGE");
}

/// Rules at many specificities for merchant m1, product p.
const MATCHING: &str = r#"
[defaults]
currency = "CNY"

[[rules]]
id = "product"
product = "p"
method = "fixed"
fee = "1.00"

[[rules]]
id = "merchant"
merchant = "m1"
method = "fixed"
fee = "2.00"

[[rules]]
id = "product-business-line"
product = "p"
business_line = "retail"
method = "fixed"
fee = "3.00"

[[rules]]
id = "product-bank"
product = "p"
issuing_bank = "ICBC"
method = "fixed"
fee = "4.00"

[[rules]]
id = "product-channel"
product = "p"
channel = "simbank"
method = "fixed"
fee = "5.00"

[[rules]]
id = "merchant-product"
merchant = "m1"
product = "p"
method = "fixed"
fee = "6.00"

[[rules]]
id = "product-channel-bank"
product = "p"
channel = "simbank"
issuing_bank = "ICBC"
method = "fixed"
fee = "7.00"

[[rules]]
id = "payer-product"
side = "payer"
product = "p"
method = "fixed"
fee = "0.50"
"#;

#[test]
fn the_most_specific_rule_wins_with_a_fixed_precedence() {
    let schedule = FeeSchedule::from_toml(MATCHING).unwrap();
    let winner = |merchant: &str, channel: Option<&str>, bank: Option<&str>, line: Option<&str>| {
        let mut request = request(merchant, "p", 100);
        request.channel = channel;
        request.issuing_bank = bank;
        request.business_line = line;
        let by_index = schedule.select(&request).unwrap().id.clone();
        let by_scan = schedule.select_by_scan(&request).unwrap().id.clone();
        assert_eq!(by_index, by_scan);
        by_index
    };
    let cases = [
        // Three dimensions beat two.
        (
            "m1",
            Some("simbank"),
            Some("ICBC"),
            Some("retail"),
            "product-channel-bank",
        ),
        // Two each: merchant beats channel, issuing bank and business line.
        (
            "m1",
            Some("simbank"),
            Some("CCB"),
            Some("retail"),
            "merchant-product",
        ),
        // Two each, no merchant rule: channel beats issuing bank.
        ("m2", Some("simbank"), Some("CCB"), None, "product-channel"),
        (
            "m2",
            Some("simpay"),
            Some("ICBC"),
            Some("retail"),
            "product-bank",
        ),
        // Issuing bank beats business line.
        ("m2", None, Some("ICBC"), Some("retail"), "product-bank"),
        ("m2", None, None, Some("retail"), "product-business-line"),
        // One each: merchant beats product.
        ("m1x", None, None, None, "product"),
        // A request without a bank does not match a rule naming one.
        ("m2", Some("simbank"), None, None, "product-channel"),
    ];
    for (merchant, channel, bank, line, expected) in cases {
        assert_eq!(
            winner(merchant, channel, bank, line),
            expected,
            "{merchant} {channel:?} {bank:?} {line:?}"
        );
    }
    let merchant_only = request("m1", "q", 100);
    assert_eq!(schedule.select(&merchant_only).unwrap().id, "merchant");
    let mut payer = request("m1", "p", 100);
    payer.side = FeeSide::Payer;
    assert_eq!(schedule.quote(&payer).unwrap().fee.amount_minor(), 50);
}

/// The error of loading `body` as the only rule.
fn load_error(body: &str) -> fees::FeeConfigError {
    let text = format!("[[rules]]\nid = \"bad\"\ncurrency = \"CNY\"\n{body}");
    match FeeSchedule::from_toml(&text) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(error) => error,
    }
}

#[test]
fn load_errors_name_the_rule_and_the_field() {
    let tiers = "tiers = [{ up_to = \"10.00\", rate = \"1%\" }, { rate = \"2%\" }]";
    let cases = [
        ("method = \"percent\"\nrate = \"1%\"", "method"),
        ("method = \"fixed\"\nfee = \"1.00\"\nrate = \"1%\"", "rate"),
        ("method = \"fixed\"", "fee"),
        ("method = \"fixed\"\nfee = \"-1.00\"", "fee"),
        ("method = \"fixed\"\nfee = \"0.001\"", "fee"),
        ("method = \"rate\"\nrate = \"120%\"", "rate"),
        ("method = \"rate\"\nrate = \"one percent\"", "rate"),
        (
            "method = \"rate\"\nrate = \"1%\"\nminimum = \"2.00\"\nmaximum = \"1.00\"",
            "maximum",
        ),
        (
            "method = \"rate\"\nrate = \"1%\"\nminimum = \"-1.00\"",
            "minimum",
        ),
        (
            "method = \"rate\"\nrate = \"1%\"\nrounding = \"nearest\"",
            "rounding",
        ),
        (
            "method = \"rate\"\nrate = \"1%\"\ncollection = \"later\"",
            "collection",
        ),
        ("method = \"rate\"\nrate = \"1%\"\nside = \"both\"", "side"),
        (
            "method = \"rate\"\nrate = \"1%\"\nmerchant = \"*\"",
            "merchant",
        ),
        (
            "method = \"rate\"\nrate = \"1%\"\nperiod = \"month\"",
            "period",
        ),
        (
            &format!("method = \"amount_tiers_rate\"\n{tiers}"),
            "policy",
        ),
        (
            &format!("method = \"amount_tiers_rate\"\npolicy = \"steps\"\n{tiers}"),
            "policy",
        ),
        (
            &format!("method = \"cumulative_amount_tiers_rate\"\npolicy = \"graduated\"\n{tiers}"),
            "period",
        ),
        (
            &format!(
                "method = \"cumulative_amount_tiers_rate\"\npolicy = \"graduated\"\nperiod = \"week\"\n{tiers}"
            ),
            "period",
        ),
        (
            "method = \"amount_tiers_rate\"\npolicy = \"graduated\"",
            "tiers",
        ),
        (
            "method = \"amount_tiers_rate\"\npolicy = \"graduated\"\ntiers = []",
            "tiers",
        ),
        (
            "method = \"amount_tiers_rate\"\npolicy = \"graduated\"\ntiers = [{ up_to = \"10.00\", rate = \"1%\" }]",
            "tiers[0].up_to",
        ),
        (
            "method = \"amount_tiers_rate\"\npolicy = \"graduated\"\ntiers = [{ rate = \"1%\" }, { rate = \"2%\" }]",
            "tiers[0].up_to",
        ),
        (
            "method = \"amount_tiers_rate\"\npolicy = \"graduated\"\ntiers = [{ up_to = 1000, rate = \"1%\" }, { rate = \"2%\" }]",
            "tiers[0].up_to",
        ),
        (
            "method = \"amount_tiers_rate\"\npolicy = \"graduated\"\ntiers = [{ up_to = \"10.00\", fee = \"1.00\" }, { rate = \"2%\" }]",
            "tiers[0].fee",
        ),
        (
            "method = \"amount_tiers_fixed\"\npolicy = \"graduated\"\ntiers = [{ up_to = \"10.00\", fee = \"1.00\" }, { rate = \"2%\" }]",
            "tiers[1].rate",
        ),
        (
            "method = \"amount_tiers_rate\"\npolicy = \"graduated\"\ntiers = [{ up_to = \"10.00\", rate = \"1%\" }, { up_to = \"10.00\", rate = \"1%\" }, { rate = \"2%\" }]",
            "tiers",
        ),
        (
            "method = \"cumulative_count_tiers_fixed\"\npolicy = \"graduated\"\nperiod = \"day\"\ntiers = [{ up_to = \"10\", fee = \"1.00\" }, { fee = \"2.00\" }]",
            "tiers[0].up_to",
        ),
        (
            "method = \"cumulative_count_tiers_fixed\"\npolicy = \"graduated\"\nperiod = \"day\"\ntiers = [{ up_to = 0, fee = \"1.00\" }, { fee = \"2.00\" }]",
            "tiers",
        ),
    ];
    for (body, field) in cases {
        match load_error(body) {
            fees::FeeConfigError::Invalid {
                rule, field: named, ..
            } => {
                assert_eq!(rule, "bad", "{body}");
                assert_eq!(named, field, "{body}");
            }
            other => panic!("{body}: {other}"),
        }
    }
}

#[test]
fn table_errors_are_refused_whole() {
    let unknown_field = load_error("method = \"rate\"\nrate = \"1%\"\nrat = \"2%\"");
    assert_eq!(unknown_field.code(), "FEE_CONFIG_SYNTAX");
    assert!(unknown_field.to_string().contains("rat"), "{unknown_field}");
    let two = |second: &str| {
        format!(
            "[defaults]\ncurrency = \"CNY\"\n[[rules]]\nid = \"first\"\nproduct = \"p\"\nchannel = \"c\"\nmethod = \"rate\"\nrate = \"1%\"\n[[rules]]\n{second}\nmethod = \"fixed\"\nfee = \"1.00\""
        )
    };
    let duplicate =
        FeeSchedule::from_toml(&two("id = \"second\"\nchannel = \"c\"\nproduct = \"p\""))
            .unwrap_err();
    assert_eq!(
        duplicate,
        fees::FeeConfigError::Duplicate {
            first: "first".to_owned(),
            second: "second".to_owned()
        }
    );
    assert_eq!(duplicate.code(), "FEE_RULE_DUPLICATE");
    // The same dimensions on the other side are another rule.
    assert!(
        FeeSchedule::from_toml(&two(
            "id = \"second\"\nside = \"payer\"\nchannel = \"c\"\nproduct = \"p\""
        ))
        .is_ok()
    );
    let same_id = FeeSchedule::from_toml(&two("id = \"first\"\nproduct = \"q\"")).unwrap_err();
    assert!(
        matches!(same_id, fees::FeeConfigError::Invalid { ref field, .. } if field == "id"),
        "{same_id}"
    );
    // A member pays its own fee with the payment: never prepaid or billed.
    let payer_billed = FeeSchedule::from_toml(&two(
        "id = \"second\"\nside = \"payer\"\nproduct = \"q\"\ncollection = \"post_paid\"",
    ))
    .unwrap_err();
    assert!(
        matches!(payer_billed, fees::FeeConfigError::Invalid { ref rule, ref field, .. } if rule == "second" && field == "collection"),
        "{payer_billed}"
    );
    let no_currency =
        FeeSchedule::from_toml("[[rules]]\nid = \"x\"\nmethod = \"fixed\"\nfee = \"1.00\"")
            .unwrap_err();
    assert!(
        matches!(no_currency, fees::FeeConfigError::Invalid { ref field, .. } if field == "currency")
    );
}

#[test]
fn the_builtin_rules_load_and_price_as_documented() {
    let schedule = FeeSchedule::from_toml(BUILTIN).unwrap();
    assert!(schedule.rules().len() >= 16);
    let methods: std::collections::HashSet<_> = schedule
        .rules()
        .iter()
        .map(|rule| rule.method.kind())
        .collect();
    assert_eq!(methods.len(), 8, "the example uses every method");
    // Coffee Corner, 2500.00 by card through simbank: whole-volume 0.8%.
    let mut coffee = request("m-coffee", "instant_transfer", 250_000);
    coffee.channel = Some("simbank");
    let quote = schedule.quote(&coffee).unwrap();
    assert_eq!(
        (&*quote.rule_id, quote.fee.amount_minor()),
        ("m-coffee-instant", 2_000)
    );
    // A merchant without a contract pays 0.6%; an ICBC card on simbank 0.55%
    // capped at 20.00.
    let mut walk_in = request("m-walk-in", "instant_transfer", 10_000);
    assert_eq!(schedule.quote(&walk_in).unwrap().fee.amount_minor(), 60);
    walk_in.channel = Some("simbank");
    walk_in.issuing_bank = Some("ICBC");
    walk_in.amount = Money::new(10_000_000, Currency::CNY);
    let capped = schedule.quote(&walk_in).unwrap();
    assert_eq!(
        (&*capped.rule_id, capped.fee.amount_minor()),
        ("instant-transfer-credit-icbc", 2_000)
    );
    // A withdrawal charges the member 1.00 and the payee side nothing.
    let mut withdrawal = request("m-walk-in", "withdrawal", 50_000);
    assert_eq!(schedule.quote(&withdrawal).unwrap().fee.amount_minor(), 0);
    withdrawal.side = FeeSide::Payer;
    assert_eq!(schedule.quote(&withdrawal).unwrap().fee.amount_minor(), 100);
    // RideNow: transaction 1001 of the month at 0.8%, prepaid.
    let mut ride = request("m-rides", "instant_transfer", 5_000);
    ride.usage.count = 1_000;
    let quote = schedule.quote(&ride).unwrap();
    assert_eq!(
        (quote.fee.amount_minor(), quote.collection),
        (40, CollectionMode::Prepaid)
    );
}
