//! 储值 with bonus (充值送 / 虚拟币): a member's stored value is two
//! sub-accounts, cash (`MemberCash`) and bonus (`MemberBonus`), that it sees
//! as one balance.
//!
//! - A top-up campaign ([`Campaign`], "pay 100, receive 180") grants its
//!   bonus when the top-up succeeds (`bonus-grant-{payment}`: platform
//!   deferred bonus → the member's bonus). The bonus is a promise, not yet a
//!   cost: the deferred bonus account (赠送金待摊, an asset) holds what
//!   members have not spent.
//! - A payment from the stored value (source `stored_value`) is split, when
//!   it is created, into a cash part and a bonus part by the merchant's
//!   [`DrawRule`] ([`split_stored_value`]); the parts are its instructions,
//!   so the draw is recorded. When it succeeds, its bonus part is booked as
//!   marketing expense (`bonus-cost-{instruction}`: marketing expense →
//!   deferred bonus); a refund that gives bonus back books it back.
//! - Refunding a top-up takes its cash back and voids bonus in proportion to
//!   what is left of both ([`bonus_to_void`]).
//!
//! Every split is exact: the parts always sum to the whole.

use crate::order::OrderError;
use money::{RoundingMode, divide_rounded};

/// Longest campaign code.
pub const CAMPAIGN_CODE_LENGTH_MAX: usize = 64;
/// Most campaigns one configuration may hold.
pub const CAMPAIGNS_MAX: usize = 1_000;

/// How a payment from the stored value draws on cash and bonus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DrawRule {
    /// Cash until it runs out, then bonus.
    CashFirst,
    /// Bonus until it runs out, then cash.
    BonusFirst,
    /// In proportion to what each holds now.
    BalanceRatio,
    /// In a fixed proportion (100:180 for "pay 100, receive 180"); when one
    /// side cannot give its share, the other gives the rest.
    FixedRatio { cash_weight: u32, bonus_weight: u32 },
}

impl DrawRule {
    pub fn name(self) -> &'static str {
        match self {
            DrawRule::CashFirst => "cash_first",
            DrawRule::BonusFirst => "bonus_first",
            DrawRule::BalanceRatio => "balance_ratio",
            DrawRule::FixedRatio { .. } => "fixed_ratio",
        }
    }
}

/// The draw rules of a platform: one default and one per merchant that
/// asked for its own (the merchant is the tenant whose members pay).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredValueRules {
    pub default: DrawRule,
    pub merchants: Vec<(String, DrawRule)>,
}

impl Default for StoredValueRules {
    fn default() -> Self {
        StoredValueRules {
            default: DrawRule::BalanceRatio,
            merchants: Vec::new(),
        }
    }
}

impl StoredValueRules {
    /// The rule for payments to `merchant_id`.
    pub fn rule_for(&self, merchant_id: &str) -> DrawRule {
        self.merchants
            .iter()
            .find(|(merchant, _)| merchant == merchant_id)
            .map_or(self.default, |(_, rule)| *rule)
    }
}

/// A top-up campaign (充值送): a top-up of exactly `pay_minor` receives
/// `bonus_minor` of bonus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Campaign {
    pub code: String,
    pub description: String,
    pub currency: money::Currency,
    pub pay_minor: i64,
    pub bonus_minor: i64,
}

/// Why a stored-value payment or a campaign was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoredValueError {
    #[error(
        "the stored value holds {available_minor} (cash and bonus), the payment needs {amount_minor}"
    )]
    Insufficient {
        amount_minor: i64,
        available_minor: i128,
    },
    #[error("unknown campaign {0:?}")]
    UnknownCampaign(String),
    #[error(
        "campaign {code} takes a top-up of {pay_minor} {currency}, not {amount_minor} {requested}"
    )]
    CampaignMismatch {
        code: String,
        pay_minor: i64,
        currency: &'static str,
        amount_minor: i64,
        requested: &'static str,
    },
    #[error("a campaign applies to a top-up, not to product {0}")]
    CampaignNotTopUp(String),
}

impl StoredValueError {
    pub fn code(&self) -> &'static str {
        match self {
            StoredValueError::Insufficient { .. } => "STORED_VALUE_INSUFFICIENT",
            StoredValueError::UnknownCampaign(_) => "UNKNOWN_CAMPAIGN",
            StoredValueError::CampaignMismatch { .. } => "CAMPAIGN_MISMATCH",
            StoredValueError::CampaignNotTopUp(_) => "CAMPAIGN_NOT_TOP_UP",
        }
    }
}

/// What a stored-value payment of `amount_minor` draws from cash and from
/// bonus, given what each holds now. The two always sum to the amount and
/// neither exceeds what its sub-account holds.
pub fn split_stored_value(
    amount_minor: i64,
    cash_available_minor: i64,
    bonus_available_minor: i64,
    rule: DrawRule,
) -> Result<(i64, i64), StoredValueError> {
    let cash = cash_available_minor.max(0);
    let bonus = bonus_available_minor.max(0);
    let available = i128::from(cash) + i128::from(bonus);
    if amount_minor <= 0 || i128::from(amount_minor) > available {
        return Err(StoredValueError::Insufficient {
            amount_minor,
            available_minor: available,
        });
    }
    let cash_share = match rule {
        DrawRule::CashFirst => amount_minor.min(cash),
        DrawRule::BonusFirst => amount_minor - amount_minor.min(bonus),
        DrawRule::BalanceRatio => share(amount_minor, i128::from(cash), available),
        DrawRule::FixedRatio {
            cash_weight,
            bonus_weight,
        } => {
            let total = i128::from(cash_weight) + i128::from(bonus_weight);
            if total == 0 {
                amount_minor.min(cash)
            } else {
                share(amount_minor, i128::from(cash_weight), total)
            }
        }
    };
    // A side that cannot give its share gives what it holds; the other
    // gives the rest (it can: the two together hold enough).
    let cash_least = amount_minor - amount_minor.min(bonus);
    let cash_part = cash_share.max(cash_least).min(cash.min(amount_minor));
    Ok((cash_part, amount_minor - cash_part))
}

/// `amount × weight / total`, rounded half up; `0 ≤ weight ≤ total`.
fn share(amount_minor: i64, weight: i128, total: i128) -> i64 {
    let exact = divide_rounded(
        i128::from(amount_minor) * weight,
        total,
        RoundingMode::HalfUp,
    );
    exact
        .ok()
        .and_then(|value| i64::try_from(value).ok())
        .unwrap_or(0)
        .clamp(0, amount_minor)
}

/// The bonus a refund of `refund_minor` of a top-up voids: bonus in
/// proportion to what is left, `bonus_left × refund / cash_left` rounded
/// half up, never more than the bonus left. With nothing left in cash the
/// refund cannot be paid and voids nothing.
pub fn bonus_to_void(refund_minor: i64, cash_left_minor: i64, bonus_left_minor: i64) -> i64 {
    if refund_minor <= 0 || cash_left_minor <= 0 || bonus_left_minor <= 0 {
        return 0;
    }
    let refund = refund_minor.min(cash_left_minor);
    share(
        bonus_left_minor,
        i128::from(refund),
        i128::from(cash_left_minor),
    )
    .min(bonus_left_minor)
}

/// Checks a campaign against the top-up that names it.
pub fn check_campaign(
    campaign: &Campaign,
    amount_minor: i64,
    currency: money::Currency,
) -> Result<(), StoredValueError> {
    if campaign.pay_minor != amount_minor || campaign.currency != currency {
        return Err(StoredValueError::CampaignMismatch {
            code: campaign.code.clone(),
            pay_minor: campaign.pay_minor,
            currency: campaign.currency.code(),
            amount_minor,
            requested: currency.code(),
        });
    }
    Ok(())
}

/// Checks a campaign's own fields.
pub fn validate_campaign(campaign: &Campaign) -> Result<(), OrderError> {
    crate::order::check_text("campaign", &campaign.code, CAMPAIGN_CODE_LENGTH_MAX)?;
    if campaign.pay_minor <= 0 {
        return Err(OrderError::InvalidAmount(campaign.pay_minor));
    }
    if campaign.bonus_minor <= 0 {
        return Err(OrderError::InvalidAmount(campaign.bonus_minor));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn each_rule_draws_as_documented() {
        // 100 cash and 180 bonus, as after "pay 100, receive 180".
        let split = |amount, rule| split_stored_value(amount, 10_000, 18_000, rule).unwrap();
        assert_eq!(split(14_000, DrawRule::CashFirst), (10_000, 4_000));
        assert_eq!(split(14_000, DrawRule::BonusFirst), (0, 14_000));
        assert_eq!(split(20_000, DrawRule::BonusFirst), (2_000, 18_000));
        assert_eq!(split(14_000, DrawRule::BalanceRatio), (5_000, 9_000));
        let fixed = DrawRule::FixedRatio {
            cash_weight: 100,
            bonus_weight: 180,
        };
        assert_eq!(split(2_800, fixed), (1_000, 1_800));
        // 1/3 of a cent rounds half up: 1 cent of cash, 2 of bonus.
        assert_eq!(split(3, DrawRule::BalanceRatio), (1, 2));
        // A fixed ratio that one side cannot meet: the other gives the rest.
        assert_eq!(
            split_stored_value(2_800, 5_000, 500, fixed).unwrap(),
            (2_300, 500)
        );
        assert_eq!(
            split_stored_value(28_001, 10_000, 18_000, DrawRule::CashFirst),
            Err(StoredValueError::Insufficient {
                amount_minor: 28_001,
                available_minor: 28_000
            })
        );
    }

    #[test]
    fn voids_bonus_in_proportion_to_what_is_left() {
        // 50 cash and 90 bonus left; refunding all the cash voids all the
        // bonus, half of it half.
        assert_eq!(bonus_to_void(5_000, 5_000, 9_000), 9_000);
        assert_eq!(bonus_to_void(2_500, 5_000, 9_000), 4_500);
        assert_eq!(bonus_to_void(1, 3, 1), 0);
        assert_eq!(bonus_to_void(2, 3, 1), 1);
        assert_eq!(bonus_to_void(5_000, 5_000, 0), 0);
        assert_eq!(bonus_to_void(5_000, 0, 9_000), 0);
    }

    fn rule() -> impl Strategy<Value = DrawRule> {
        prop_oneof![
            Just(DrawRule::CashFirst),
            Just(DrawRule::BonusFirst),
            Just(DrawRule::BalanceRatio),
            (0u32..1_000, 0u32..1_000).prop_map(|(cash_weight, bonus_weight)| {
                DrawRule::FixedRatio {
                    cash_weight,
                    bonus_weight,
                }
            }),
        ]
    }

    proptest! {
        #[test]
        fn a_draw_sums_to_the_payment_and_fits_the_balances(
            cash in 0i64..10_000_000,
            bonus in 0i64..10_000_000,
            wanted in 1i64..20_000_000,
            rule in rule(),
        ) {
            match split_stored_value(wanted, cash, bonus, rule) {
                Ok((cash_part, bonus_part)) => {
                    prop_assert_eq!(cash_part + bonus_part, wanted);
                    prop_assert!((0..=cash).contains(&cash_part));
                    prop_assert!((0..=bonus).contains(&bonus_part));
                    if rule == DrawRule::CashFirst {
                        prop_assert!(bonus_part == 0 || cash_part == cash);
                    }
                    if rule == DrawRule::BonusFirst {
                        prop_assert!(cash_part == 0 || bonus_part == bonus);
                    }
                }
                Err(_) => prop_assert!(i128::from(wanted) > i128::from(cash) + i128::from(bonus)),
            }
        }

        #[test]
        fn a_void_never_exceeds_the_bonus_left(
            refund in 1i64..10_000_000,
            cash in 1i64..10_000_000,
            bonus in 0i64..10_000_000,
        ) {
            let void = bonus_to_void(refund, cash, bonus);
            prop_assert!((0..=bonus).contains(&void));
            if refund >= cash {
                prop_assert_eq!(void, bonus);
            }
        }
    }
}
