//! Daily limits (限额) per member, per card and per channel, kept race-free in the
//! store's period counters (the fee service's `FeeCounterStore`): a new
//! payment records its amount on the member's (and, for a debit under an
//! agreement, the card's) counter of the business day in one atomic step,
//! and is refused if the counter already held more than the limit leaves
//! room for. Two concurrent payments can therefore never both pass a limit
//! that only one of them fits. A refused payment's amount, and that of a
//! payment that fails, is taken back out, so failed payments do not count.
//!
//! The counters' keys derive from the merchant and the request serial: a
//! repeated request is counted once. Should the process die between the
//! count and the payment's creation, the amount stays counted for the day
//! (the safe side) until the request is repeated.

use fees::{BusinessDate, CounterKey, FeeCharge, Period};
use sha2::{Digest, Sha256};

/// The counter of what a member paid in a day.
pub const MEMBER_DAILY_COUNTER: &str = "limit:member-daily";
/// The counter of what was debited from one card (by its fingerprint) in a
/// day.
pub const CARD_DAILY_COUNTER: &str = "limit:card-daily";

/// The counter of what a channel carried in a day (its route's
/// `daily_minor_max`), counted per instruction when it is routed.
pub const CHANNEL_DAILY_COUNTER: &str = "limit:channel-daily";

/// The charge key of an instruction routed to `channel`.
pub fn channel_charge_key(channel: &str, instruction_id: i64) -> String {
    let mut digest = Sha256::new();
    digest.update(channel.as_bytes());
    let hash = hex::encode(digest.finalize());
    format!("{CHANNEL_DAILY_COUNTER}-{instruction_id}-{}", &hash[..16])
}

/// The charge that counts an instruction of `amount_minor` routed to
/// `channel` on `date`.
pub fn channel_charge(
    channel: &str,
    instruction_id: i64,
    date: BusinessDate,
    amount_minor: i64,
) -> FeeCharge {
    FeeCharge {
        charge_key: channel_charge_key(channel, instruction_id),
        counter: CounterKey {
            rule_id: CHANNEL_DAILY_COUNTER.to_owned(),
            merchant_id: channel.to_owned(),
            period_key: Period::Day.key(date),
        },
        amount_minor,
    }
}

/// The limits in force; `None` is no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DailyLimits {
    /// Most one member may pay in a business day, counting payments not
    /// failed.
    pub member_minor: Option<i64>,
    /// Most that may be debited from one card in a business day, under all
    /// its agreements with every merchant.
    pub card_minor: Option<i64>,
}

/// Which counter a payment is counted on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitScope {
    Member,
    Card,
}

impl LimitScope {
    pub fn counter(self) -> &'static str {
        match self {
            LimitScope::Member => MEMBER_DAILY_COUNTER,
            LimitScope::Card => CARD_DAILY_COUNTER,
        }
    }
}

/// The charge key of a payment request on `scope`'s counter: a digest of
/// merchant and request serial, so it is bounded whatever their length.
pub fn limit_charge_key(scope: LimitScope, merchant_id: &str, request_serial: &str) -> String {
    let mut digest = Sha256::new();
    digest.update(merchant_id.as_bytes());
    digest.update([0]);
    digest.update(request_serial.as_bytes());
    let hash = hex::encode(digest.finalize());
    format!("{}-{}", scope.counter(), &hash[..40])
}

/// The charge that counts a payment of `amount_minor` by `subject` (the
/// member, or the card's fingerprint) on `date`.
pub fn limit_charge(
    scope: LimitScope,
    subject: &str,
    merchant_id: &str,
    request_serial: &str,
    date: BusinessDate,
    amount_minor: i64,
) -> FeeCharge {
    FeeCharge {
        charge_key: limit_charge_key(scope, merchant_id, request_serial),
        counter: CounterKey {
            rule_id: scope.counter().to_owned(),
            merchant_id: subject.to_owned(),
            period_key: Period::Day.key(date),
        },
        amount_minor,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_keys_tell_channels_and_instructions_apart() {
        let key = channel_charge_key(&"c".repeat(64), i64::MAX);
        assert!(key.len() <= fees::CHARGE_KEY_LENGTH_MAX, "{key}");
        assert_ne!(
            channel_charge_key("cheap", 1),
            channel_charge_key("dear", 1)
        );
        assert_ne!(
            channel_charge_key("cheap", 1),
            channel_charge_key("cheap", 11)
        );
    }

    #[test]
    fn keys_are_bounded_and_tell_requests_and_scopes_apart() {
        let long = "x".repeat(64);
        let key = limit_charge_key(LimitScope::Member, &long, &long);
        assert!(key.len() <= fees::CHARGE_KEY_LENGTH_MAX, "{key}");
        assert_ne!(
            limit_charge_key(LimitScope::Member, "m1", "s1"),
            limit_charge_key(LimitScope::Card, "m1", "s1")
        );
        // The separator keeps ("m1", "2s") and ("m12", "s") apart.
        assert_ne!(
            limit_charge_key(LimitScope::Member, "m1", "2s"),
            limit_charge_key(LimitScope::Member, "m12", "s")
        );
        let date = BusinessDate::new(2026, 12, 1).unwrap();
        let charge = limit_charge(LimitScope::Card, "fp", "m1", "s1", date, 500);
        assert_eq!(charge.counter.period_key.to_string(), "2026-12-01");
        assert_eq!(charge.counter.rule_id, CARD_DAILY_COUNTER);
    }
}
