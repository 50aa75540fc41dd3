//! Routing (支付路由): which channel carries a channel source, by funding
//! source, the payer's bank, the amount and cost, avoiding banks an
//! operator marked down on a channel. A channel's daily limit is kept by
//! the payment service (`limits.rs`): a full channel is passed over for
//! the next usable route.

use crate::order::FundingSource;

/// One channel's offer: what it carries, up to which amount, at what cost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub channel: String,
    pub sources: Vec<FundingSource>,
    /// Largest single transaction it takes (a per-transaction limit).
    pub amount_minor_max: i64,
    /// What it charges, in parts per ten thousand; the cheapest usable
    /// route wins, then the earlier one.
    pub cost_per_ten_thousand: i64,
    /// Most it carries in a business day (UTC+8), counting channel orders
    /// not failed; `None`: no daily limit.
    pub daily_minor_max: Option<i64>,
}

impl Route {
    /// A route for every channel source, without limit or cost.
    pub fn any(channel: &str) -> Route {
        Route {
            channel: channel.to_owned(),
            sources: vec![
                FundingSource::Card,
                FundingSource::BankAccount,
                FundingSource::Wallet,
            ],
            amount_minor_max: i64::MAX,
            cost_per_ten_thousand: 0,
            daily_minor_max: None,
        }
    }
}

/// A bank an operator marked down on a channel (an outage by payer bank).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct BankOutage {
    pub channel: String,
    pub bank: String,
}

/// Why no route was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no channel takes {funding_source} of {amount_minor} for bank {bank}")]
pub struct NoRoute {
    pub funding_source: &'static str,
    pub amount_minor: i64,
    pub bank: String,
}

impl NoRoute {
    pub fn new(source: FundingSource, amount_minor: i64, bank: Option<&str>) -> NoRoute {
        NoRoute {
            funding_source: source.as_str(),
            amount_minor,
            bank: bank.unwrap_or("-").to_owned(),
        }
    }
}

/// The cheapest route that carries `source` for `amount_minor` and has not
/// got `bank` down (the first of [`usable_routes`]).
pub fn choose_route<'r>(
    routes: &'r [Route],
    outages: &[BankOutage],
    source: FundingSource,
    bank: Option<&str>,
    amount_minor: i64,
) -> Result<&'r Route, NoRoute> {
    usable_routes(routes, outages, source, bank, amount_minor)
        .into_iter()
        .next()
        .ok_or_else(|| NoRoute::new(source, amount_minor, bank))
}

/// Every route that carries `source` for `amount_minor` and has not got
/// `bank` down, cheapest first, equal costs in the configured order.
pub fn usable_routes<'r>(
    routes: &'r [Route],
    outages: &[BankOutage],
    source: FundingSource,
    bank: Option<&str>,
    amount_minor: i64,
) -> Vec<&'r Route> {
    let mut usable = routes_up(routes, outages, source, bank);
    usable.retain(|route| amount_minor <= route.amount_minor_max);
    usable
}

/// Every route that carries `source` and has not got `bank` down, whatever
/// its per-transaction limit, cheapest first: what a payout too large for
/// one transaction may be split over (see [`payout_parts`]).
pub fn routes_up<'r>(
    routes: &'r [Route],
    outages: &[BankOutage],
    source: FundingSource,
    bank: Option<&str>,
) -> Vec<&'r Route> {
    let mut usable: Vec<&Route> = routes
        .iter()
        .filter(|route| route.sources.contains(&source))
        .filter(|route| {
            bank.is_none_or(|bank| {
                !outages
                    .iter()
                    .any(|outage| outage.channel == route.channel && outage.bank == bank)
            })
        })
        .collect();
    usable.sort_by_key(|route| route.cost_per_ten_thousand);
    usable
}

/// A payout of `amount_minor` cut into channel orders a channel taking at
/// most `part_max` per transaction accepts: as many parts of `part_max` as
/// fit, then what is left. The parts sum to the amount. `None` when it
/// would take more than `parts_max` parts, or the amounts are not positive.
pub fn payout_parts(amount_minor: i64, part_max: i64, parts_max: usize) -> Option<Vec<i64>> {
    if amount_minor <= 0 || part_max <= 0 {
        return None;
    }
    let full = amount_minor / part_max;
    let rest = amount_minor % part_max;
    let count = usize::try_from(full)
        .ok()?
        .checked_add(usize::from(rest > 0))?;
    if count > parts_max {
        return None;
    }
    let mut parts = vec![part_max; count];
    if rest > 0 {
        parts[count - 1] = rest;
    }
    Some(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routes() -> Vec<Route> {
        vec![
            Route {
                channel: "expensive".to_owned(),
                sources: vec![FundingSource::Card, FundingSource::Wallet],
                amount_minor_max: 1_000_000,
                cost_per_ten_thousand: 80,
                daily_minor_max: None,
            },
            Route {
                channel: "cheap".to_owned(),
                sources: vec![FundingSource::Card],
                amount_minor_max: 50_000,
                cost_per_ten_thousand: 38,
                daily_minor_max: None,
            },
        ]
    }

    fn outage(channel: &str, bank: &str) -> BankOutage {
        BankOutage {
            channel: channel.to_owned(),
            bank: bank.to_owned(),
        }
    }

    #[test]
    fn cheapest_usable_route_wins() {
        let routes = routes();
        let pick = |outages: &[BankOutage], source, amount| {
            choose_route(&routes, outages, source, Some("ICBC"), amount)
                .map(|route| route.channel.as_str())
        };
        assert_eq!(pick(&[], FundingSource::Card, 10_000), Ok("cheap"));
        // Over the cheap channel's per-transaction limit.
        assert_eq!(pick(&[], FundingSource::Card, 50_001), Ok("expensive"));
        // Only the expensive one takes wallets.
        assert_eq!(pick(&[], FundingSource::Wallet, 10), Ok("expensive"));
        // The payer's bank is down at the cheap channel: routing avoids it.
        assert_eq!(
            pick(&[outage("cheap", "ICBC")], FundingSource::Card, 10_000),
            Ok("expensive")
        );
        // Another bank's outage does not matter.
        assert_eq!(
            pick(&[outage("cheap", "CMB")], FundingSource::Card, 10_000),
            Ok("cheap")
        );
        let nowhere = pick(
            &[outage("cheap", "ICBC"), outage("expensive", "ICBC")],
            FundingSource::Card,
            10_000,
        );
        assert!(nowhere.is_err());
        assert!(pick(&[], FundingSource::BankAccount, 10).is_err());
        assert!(pick(&[], FundingSource::Card, 1_000_001).is_err());
    }

    #[test]
    fn a_payout_too_large_for_one_transaction_is_cut_at_the_limit() {
        assert_eq!(
            payout_parts(12_000_091, 5_000_000, 10),
            Some(vec![5_000_000, 5_000_000, 2_000_091])
        );
        assert_eq!(
            payout_parts(10_000_000, 5_000_000, 10),
            Some(vec![5_000_000; 2])
        );
        assert_eq!(payout_parts(7, 10, 10), Some(vec![7]));
        // Three parts where at most two are allowed.
        assert_eq!(payout_parts(10_000_001, 5_000_000, 2), None);
        assert_eq!(payout_parts(0, 5_000_000, 2), None);
        assert_eq!(payout_parts(10, 0, 2), None);
    }

    #[test]
    fn routes_up_ignore_the_per_transaction_limit_but_not_outages() {
        let routes = routes();
        let names = |outages: &[BankOutage]| {
            routes_up(&routes, outages, FundingSource::Card, Some("ICBC"))
                .into_iter()
                .map(|route| route.channel.as_str())
                .collect::<Vec<_>>()
        };
        assert_eq!(names(&[]), ["cheap", "expensive"]);
        assert_eq!(names(&[outage("cheap", "ICBC")]), ["expensive"]);
    }

    proptest::proptest! {
        #[test]
        fn payout_parts_sum_to_the_payout_and_respect_the_limit(
            amount_minor in 1i64..i64::MAX,
            part_max in 1i64..i64::MAX,
            parts_max in 1usize..200,
        ) {
            match payout_parts(amount_minor, part_max, parts_max) {
                Some(parts) => {
                    proptest::prop_assert!(!parts.is_empty() && parts.len() <= parts_max);
                    proptest::prop_assert!(parts.iter().all(|part| *part > 0 && *part <= part_max));
                    let sum: i128 = parts.iter().map(|part| i128::from(*part)).sum();
                    proptest::prop_assert_eq!(sum, i128::from(amount_minor));
                    // As few parts as the limit allows.
                    let fewest = (i128::from(amount_minor) + i128::from(part_max) - 1)
                        / i128::from(part_max);
                    proptest::prop_assert_eq!(parts.len() as i128, fewest);
                }
                None => {
                    let needed = (i128::from(amount_minor) + i128::from(part_max) - 1)
                        / i128::from(part_max);
                    proptest::prop_assert!(needed > parts_max as i128);
                }
            }
        }
    }
}
