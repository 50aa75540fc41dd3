//! `paycore fee quote` (the fee service from the command line) and
//! `paycore bench fees` (indexed rule lookup against a linear scan).

use anyhow::{Context, Result, bail};
use fees::{
    BusinessDate, CollectionMode, Dimensions, FeeMethod, FeeQuote, FeeRequest, FeeRule,
    FeeSchedule, FeeSide, Period, PeriodUsage, Rate, TierPolicy, TierPrices, Tiers,
};
use money::{Currency, Money, RoundingMode};
use std::collections::HashSet;
use std::hint::black_box;
use std::time::Instant;

/// The fee rules paycore ships with (`config/fees.toml`).
const BUILTIN_RULES: &str = include_str!("../../../config/fees.toml");

/// Business days begin at midnight UTC+8.
const BUSINESS_DAY_OFFSET_SECONDS: i64 = 8 * 3_600;
const DAY_SECONDS: i64 = 86_400;

/// Where the rules come from.
#[derive(Debug, Clone, clap::Args)]
pub struct RulesArgs {
    /// A rule file like config/fees.toml; without it the built-in copy of
    /// that file is used.
    #[arg(long, env = "PAYCORE_FEE_RULES")]
    rules: Option<std::path::PathBuf>,
}

impl RulesArgs {
    fn load(&self) -> Result<FeeSchedule> {
        match &self.rules {
            None => Ok(FeeSchedule::from_toml(BUILTIN_RULES)?),
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                FeeSchedule::from_toml(&text).with_context(|| format!("in {}", path.display()))
            }
        }
    }
}

/// One transaction to quote.
#[derive(Debug, Clone, clap::Args)]
pub struct QuoteArgs {
    #[arg(long)]
    merchant: String,
    #[arg(long)]
    product: String,
    /// The amount in major units, e.g. 123.45.
    #[arg(long)]
    amount: String,
    #[arg(long, default_value = "CNY")]
    currency: String,
    /// Whose fee: payee or payer.
    #[arg(long, default_value = "payee")]
    side: String,
    #[arg(long)]
    issuing_bank: Option<String>,
    /// The acquiring channel.
    #[arg(long)]
    channel: Option<String>,
    #[arg(long)]
    business_line: Option<String>,
    /// The business date, YYYY-MM-DD; today (UTC+8) without it.
    #[arg(long)]
    date: Option<String>,
    /// For a cumulative rule: transactions already counted in the period.
    #[arg(long, default_value_t = 0)]
    period_count: i64,
    /// For a cumulative rule: their volume, in major units.
    #[arg(long, default_value = "0")]
    period_volume: String,
    #[command(flatten)]
    rules: RulesArgs,
}

fn today() -> Result<BusinessDate> {
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .context("reading the clock")?
        .as_secs();
    let seconds = i64::try_from(seconds).context("the clock is past 2262")?;
    let days = (seconds + BUSINESS_DAY_OFFSET_SECONDS).div_euclid(DAY_SECONDS);
    Ok(BusinessDate::from_days_since_epoch(days)?)
}

/// Prints the rule, method and fee of one transaction.
pub fn quote(arguments: &QuoteArgs) -> Result<()> {
    let schedule = arguments.rules.load()?;
    let currency = Currency::from_code(&arguments.currency)?;
    let side = FeeSide::parse(&arguments.side)
        .with_context(|| format!("--side {:?}: expected payee or payer", arguments.side))?;
    let business_date = match &arguments.date {
        Some(text) => BusinessDate::parse(text)?,
        None => today()?,
    };
    let request = FeeRequest {
        side,
        merchant_id: &arguments.merchant,
        product: &arguments.product,
        issuing_bank: arguments.issuing_bank.as_deref(),
        channel: arguments.channel.as_deref(),
        business_line: arguments.business_line.as_deref(),
        amount: Money::parse_major(&arguments.amount, currency).context("--amount")?,
        business_date,
        usage: PeriodUsage {
            count: arguments.period_count,
            volume_minor: Money::parse_major(&arguments.period_volume, currency)
                .context("--period-volume")?
                .amount_minor(),
        },
    };
    let quote = schedule
        .quote(&request)
        .map_err(|error| anyhow::anyhow!("{}: {error}", error.code()))?;
    print_quote(&quote, request.amount, business_date);
    Ok(())
}

fn print_quote(quote: &FeeQuote, amount: Money, business_date: BusinessDate) {
    let policy = quote
        .policy
        .map(|policy| format!(" ({})", policy.as_str()))
        .unwrap_or_default();
    println!("rule        {}", quote.rule_id);
    println!("method      {}{policy}", quote.method.as_str());
    println!("side        {}", quote.side.as_str());
    println!("amount      {amount}");
    println!("fee         {}", quote.fee);
    println!("collection  {}", quote.collection.as_str());
    println!("date        {business_date}");
    if let Some(counter) = quote.counter {
        let volume = Money::new(counter.before.volume_minor, amount.currency());
        println!(
            "period      {} (before this transaction: {} transactions, {volume})",
            counter.period_key, counter.before.count
        );
    }
}

/// Quotes a benchmark run may ask for.
const BENCH_QUOTES_MAX: usize = 1_000_000_000;
/// Distinct requests the runs cycle through (a power of two).
const REQUEST_POOL: usize = 1 << 16;
/// Requests whose index quote is compared with the scan's before timing.
const VERIFIED_REQUESTS: usize = REQUEST_POOL;
/// Value pools of the generated table and requests.
const MERCHANTS: usize = 500;
const MERCHANTS_WITH_RULES: usize = 400;
const PRODUCTS: usize = 8;
const CHANNELS: usize = 6;
const BANKS: usize = 20;
const BUSINESS_LINES: usize = 4;

#[derive(Debug, Clone, clap::Args)]
pub struct FeeBenchArgs {
    /// Quotes through the index, on one thread.
    #[arg(long, default_value_t = 5_000_000)]
    quotes: usize,
    /// Quotes through the linear-scan baseline (slower, so fewer by default;
    /// the rates are per second either way).
    #[arg(long, default_value_t = 200_000)]
    baseline_quotes: usize,
    /// Rules in the generated table.
    #[arg(long, default_value_t = 1_000)]
    rules: usize,
}

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

    fn below(&mut self, bound: usize) -> usize {
        usize::try_from(self.next() % u64::try_from(bound.max(1)).unwrap_or(1)).unwrap_or(0)
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

fn name(prefix: &str, number: usize) -> String {
    format!("{prefix}{number:04}")
}

/// Which dimensions a generated rule names, with its share of the table in
/// percent: mostly merchant contracts, some channel and bank adjustments.
const SHAPES: [(&str, usize); 9] = [
    ("merchant,product", 35),
    ("merchant,product,channel", 15),
    ("product,channel", 10),
    ("product,issuing_bank", 10),
    ("product,channel,issuing_bank", 10),
    ("product,business_line", 5),
    ("merchant", 5),
    ("merchant,product,channel,issuing_bank,business_line", 5),
    ("product", 5),
];

fn shape(sequence: &mut Sequence) -> &'static str {
    let mut pick = sequence.below(100);
    for (shape, share) in SHAPES {
        if pick < share {
            return shape;
        }
        pick -= share;
    }
    "product"
}

fn dimensions(sequence: &mut Sequence, shape: &str) -> Dimensions {
    let mut pick = |wanted: &str, prefix: &str, count: usize| {
        shape
            .split(',')
            .any(|part| part == wanted)
            .then(|| name(prefix, sequence.below(count)))
    };
    Dimensions {
        merchant: pick("merchant", "m", MERCHANTS_WITH_RULES),
        product: pick("product", "p", PRODUCTS),
        channel: pick("channel", "c", CHANNELS),
        issuing_bank: pick("issuing_bank", "b", BANKS),
        business_line: pick("business_line", "l", BUSINESS_LINES),
    }
}

fn rate(text: &str) -> Result<Rate> {
    Ok(Rate::parse(text)?)
}

fn rate_tiers() -> Result<Tiers> {
    Ok(Tiers {
        up_to: vec![200_000, 5_000_000],
        prices: TierPrices::Rates(vec![rate("1%")?, rate("0.8%")?, rate("0.6%")?]),
    })
}

fn fixed_tiers(up_to: Vec<i64>) -> Tiers {
    let prices = TierPrices::Fixed(
        (0..=up_to.len())
            .map(|tier| 100 - 20 * tier as i64)
            .collect(),
    );
    Tiers { up_to, prices }
}

/// The `number`th method of a rotation through all eight.
fn method(number: usize) -> Result<FeeMethod> {
    let policy = if number.is_multiple_of(2) {
        TierPolicy::Graduated
    } else {
        TierPolicy::WholeVolume
    };
    let volume_bounds = vec![100_000_000, 500_000_000];
    let count_bounds = vec![1_000, 10_000];
    Ok(match number % 8 {
        0 => FeeMethod::Fixed { fee_minor: 200 },
        1 => FeeMethod::Rate {
            rate: rate("0.6%")?,
        },
        2 => FeeMethod::AmountTiers {
            policy,
            tiers: rate_tiers()?,
        },
        3 => FeeMethod::AmountTiers {
            policy,
            tiers: fixed_tiers(vec![200_000, 5_000_000]),
        },
        4 => FeeMethod::CumulativeAmountTiers {
            period: Period::Month,
            policy,
            tiers: Tiers {
                up_to: volume_bounds,
                ..rate_tiers()?
            },
        },
        5 => FeeMethod::CumulativeAmountTiers {
            period: Period::Day,
            policy,
            tiers: fixed_tiers(volume_bounds),
        },
        6 => FeeMethod::CumulativeCountTiers {
            period: Period::Month,
            policy,
            tiers: Tiers {
                up_to: count_bounds,
                ..rate_tiers()?
            },
        },
        _ => FeeMethod::CumulativeCountTiers {
            period: Period::Year,
            policy,
            tiers: fixed_tiers(count_bounds),
        },
    })
}

fn bench_rule(id: String, side: FeeSide, dimensions: Dimensions, method: FeeMethod) -> FeeRule {
    FeeRule {
        id,
        side,
        dimensions,
        currency: Currency::CNY,
        method,
        minimum_minor: Some(1),
        maximum_minor: Some(1_000_000),
        rounding: RoundingMode::HalfUp,
        collection: CollectionMode::RealTime,
    }
}

/// A table of `count` rules: a product-wide rule per product and side (so
/// every request finds a rule), then generated rules of the shapes above.
fn table(count: usize) -> Result<Vec<FeeRule>> {
    let mut sequence = Sequence(0x5EED_FEE5);
    let mut rules = Vec::with_capacity(count);
    let mut seen = HashSet::with_capacity(count);
    for product in 0..PRODUCTS {
        for side in FeeSide::ALL {
            let dimensions = Dimensions {
                product: Some(name("p", product)),
                ..Dimensions::default()
            };
            seen.insert((side, dimensions.clone()));
            let id = format!("default-{}-{}", name("p", product), side.as_str());
            rules.push(bench_rule(id, side, dimensions, method(rules.len())?));
        }
    }
    // Each attempt adds a rule unless its dimensions are taken; the bound
    // keeps a table larger than the value pools allow from looping forever.
    let attempts_max = count.saturating_mul(100);
    for _ in 0..attempts_max {
        if rules.len() >= count {
            break;
        }
        let side = if sequence.chance(90) {
            FeeSide::Payee
        } else {
            FeeSide::Payer
        };
        let shape = shape(&mut sequence);
        let dimensions = dimensions(&mut sequence, shape);
        if seen.insert((side, dimensions.clone())) {
            let id = format!("rule-{:05}", rules.len());
            rules.push(bench_rule(id, side, dimensions, method(rules.len())?));
        }
    }
    rules.truncate(count);
    Ok(rules)
}

/// The owned values of one benchmark request.
struct RequestValues {
    side: FeeSide,
    merchant: String,
    product: String,
    channel: Option<String>,
    issuing_bank: Option<String>,
    business_line: Option<String>,
    amount_minor: i64,
    usage: PeriodUsage,
}

fn request_values(sequence: &mut Sequence) -> RequestValues {
    let mut optional = |percent: usize, prefix: &str, count: usize| {
        sequence
            .chance(percent)
            .then(|| name(prefix, sequence.below(count)))
    };
    let channel = optional(90, "c", CHANNELS);
    let issuing_bank = optional(80, "b", BANKS);
    let business_line = optional(50, "l", BUSINESS_LINES);
    // Amounts from 0.01 to 100,000.00, spread over the orders of magnitude.
    let digits = u32::try_from(sequence.below(7)).unwrap_or(0) + 1;
    let amount_minor = 1 + i64::try_from(sequence.below(10_usize.pow(digits))).unwrap_or(0);
    RequestValues {
        side: if sequence.chance(90) {
            FeeSide::Payee
        } else {
            FeeSide::Payer
        },
        merchant: name("m", sequence.below(MERCHANTS)),
        product: name("p", sequence.below(PRODUCTS)),
        channel,
        issuing_bank,
        business_line,
        amount_minor,
        usage: PeriodUsage {
            count: i64::try_from(sequence.below(20_000)).unwrap_or(0),
            volume_minor: i64::try_from(sequence.below(1_000_000_000)).unwrap_or(0),
        },
    }
}

fn request(values: &RequestValues, business_date: BusinessDate) -> FeeRequest<'_> {
    FeeRequest {
        side: values.side,
        merchant_id: &values.merchant,
        product: &values.product,
        issuing_bank: values.issuing_bank.as_deref(),
        channel: values.channel.as_deref(),
        business_line: values.business_line.as_deref(),
        amount: Money::new(values.amount_minor, Currency::CNY),
        business_date,
        usage: values.usage,
    }
}

/// Runs `quotes` quotes through `price`, cycling through `requests`;
/// answers quotes per second and the sum of the fees (which keeps the
/// work from being optimised away and must agree between the two runs).
fn time_quotes<'a>(
    requests: &[FeeRequest<'a>],
    quotes: usize,
    price: impl Fn(&FeeRequest<'a>) -> Result<FeeQuote, fees::FeeError>,
) -> Result<(f64, i64)> {
    let mask = requests.len() - 1;
    let mut total_minor: i64 = 0;
    let started = Instant::now();
    for number in 0..quotes {
        let quote = price(black_box(&requests[number & mask]))?;
        total_minor = total_minor.wrapping_add(black_box(quote.fee.amount_minor()));
    }
    let seconds = started.elapsed().as_secs_f64();
    Ok((quotes as f64 / seconds.max(1e-9), total_minor))
}

fn describe(rules: &[FeeRule]) {
    let mut by_dimensions = [0usize; 6];
    let mut by_method = std::collections::BTreeMap::new();
    for rule in rules {
        by_dimensions[rule.dimensions.mask().count_ones() as usize] += 1;
        *by_method
            .entry(rule.method.kind().as_str())
            .or_insert(0usize) += 1;
    }
    let dimensions: Vec<String> = by_dimensions
        .iter()
        .enumerate()
        .filter(|(_, count)| **count > 0)
        .map(|(named, count)| format!("{count} naming {named}"))
        .collect();
    println!("rules by dimensions named: {}", dimensions.join(", "));
    let methods: Vec<String> = by_method
        .iter()
        .map(|(method, count)| format!("{method} {count}"))
        .collect();
    println!("rules by method: {}", methods.join(", "));
}

pub fn bench(arguments: &FeeBenchArgs) -> Result<()> {
    if arguments.quotes > BENCH_QUOTES_MAX || arguments.baseline_quotes > BENCH_QUOTES_MAX {
        bail!("at most {BENCH_QUOTES_MAX} quotes per run");
    }
    if arguments.rules < 2 * PRODUCTS || arguments.rules > fees::RULES_MAX {
        bail!(
            "--rules must be between {} and {}",
            2 * PRODUCTS,
            fees::RULES_MAX
        );
    }
    let rules = table(arguments.rules)?;
    let schedule = FeeSchedule::new(rules).context("building the benchmark table")?;
    println!("fee table: {} rules", schedule.rules().len());
    describe(schedule.rules());
    let business_date = BusinessDate::parse("2025-03-15")?;
    let mut sequence = Sequence(0x0BAD_5EED);
    let values: Vec<RequestValues> = (0..REQUEST_POOL)
        .map(|_| request_values(&mut sequence))
        .collect();
    let requests: Vec<FeeRequest<'_>> = values
        .iter()
        .map(|values| request(values, business_date))
        .collect();
    for request in requests.iter().take(VERIFIED_REQUESTS) {
        let indexed = schedule.quote(request)?;
        if indexed != schedule.quote_by_scan(request)? {
            bail!("the index and the scan disagree on {request:?}");
        }
    }
    println!("index and scan agree on all {VERIFIED_REQUESTS} distinct requests");
    let (indexed_rate, indexed_total) = time_quotes(&requests, arguments.quotes, |request| {
        schedule.quote(request)
    })?;
    let (scan_rate, scan_total) = time_quotes(&requests, arguments.baseline_quotes, |request| {
        schedule.quote_by_scan(request)
    })?;
    if arguments.quotes == arguments.baseline_quotes && indexed_total != scan_total {
        bail!("the two runs priced differently: {indexed_total} and {scan_total}");
    }
    println!();
    println!(
        "{:<52} {:>12} {:>14}",
        "case (one thread)", "quotes", "quotes/s"
    );
    println!(
        "{:<52} {:>12} {:>14.0}",
        "paycore: specificity groups, one hash probe each", arguments.quotes, indexed_rate
    );
    println!(
        "{:<52} {:>12} {:>14.0}",
        "baseline: linear scan of every rule", arguments.baseline_quotes, scan_rate
    );
    println!(
        "ratio index / scan: {:.1}",
        indexed_rate / scan_rate.max(1e-9)
    );
    println!("fee checksum (index run): {indexed_total}");
    Ok(())
}
