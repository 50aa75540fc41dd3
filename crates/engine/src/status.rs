//! The explicit state machines of the four order levels and of refunds.
//! A transition not listed here is illegal and is refused.

use std::fmt;

/// A refused state change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{entity} cannot go from {from} to {to}")]
pub struct IllegalTransition {
    pub entity: &'static str,
    pub from: &'static str,
    pub to: &'static str,
}

/// One compare-and-set status change of an order of any level, found
/// legal when it was made: a store applies it only to an order still in
/// `from`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Move {
    pub level: Level,
    pub entity: &'static str,
    pub id: i64,
    pub from: &'static str,
    pub to: &'static str,
}

impl Move {
    pub fn new<S: Status>(id: i64, from: S, to: S) -> Result<Move, IllegalTransition> {
        from.transition(to)?;
        Ok(Move {
            level: S::LEVEL,
            entity: S::ENTITY,
            id,
            from: from.as_str(),
            to: to.as_str(),
        })
    }
}

/// The order levels, for stores that keep one table per level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Level {
    Trade,
    Payment,
    Instruction,
    ChannelOrder,
    Refund,
    RefundPart,
    PaymentFee,
}

/// A status of one order level: its names and its legal transitions.
pub trait Status: Copy + Eq + fmt::Debug + Send + Sync + 'static {
    /// What the status belongs to, for messages: `trade order`.
    const ENTITY: &'static str;
    const LEVEL: Level;
    const ALL: &'static [Self];

    fn as_str(self) -> &'static str;

    /// The statuses this one may become.
    fn successors(self) -> &'static [Self];

    fn parse(text: &str) -> Option<Self> {
        Self::ALL
            .iter()
            .copied()
            .find(|status| status.as_str() == text)
    }

    /// True when nothing may follow.
    fn is_final(self) -> bool {
        self.successors().is_empty()
    }

    /// `next` if the transition is legal.
    fn transition(self, next: Self) -> Result<Self, IllegalTransition> {
        if self.successors().contains(&next) {
            Ok(next)
        } else {
            Err(IllegalTransition {
                entity: Self::ENTITY,
                from: self.as_str(),
                to: next.as_str(),
            })
        }
    }
}

macro_rules! status_enum {
    (
        $(#[$meta:meta])*
        $name:ident, $entity:literal, $level:ident {
            $($(#[$variant_meta:meta])* $variant:ident = $text:literal => [$($next:ident),*]),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$variant_meta])* $variant),*
        }

        impl Status for $name {
            const ENTITY: &'static str = $entity;
            const LEVEL: Level = Level::$level;
            const ALL: &'static [Self] = &[$($name::$variant),*];

            fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),*
                }
            }

            fn successors(self) -> &'static [Self] {
                match self {
                    $($name::$variant => &[$($name::$next),*]),*
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str(self.as_str())
            }
        }
    };
}

status_enum! {
    /// 交易订单 status: what the buyer and the merchant see.
    TradeStatus, "trade order", Trade {
        /// Waiting for a successful payment; may be paid more than once.
        WaitPay = "WAIT_PAY" => [Success, Closed],
        /// Paid. It is never paid again: a later success is a duplicate.
        Success = "SUCCESS" => [PartiallyRefunded, Refunded],
        /// Closed unpaid (timeout or the merchant's request).
        Closed = "CLOSED" => [],
        PartiallyRefunded = "PARTIALLY_REFUNDED" => [PartiallyRefunded, Refunded],
        Refunded = "REFUNDED" => [],
    }
}

status_enum! {
    /// 支付订单 status: one attempt to pay a trade.
    PaymentStatus, "payment order", Payment {
        Created = "CREATED" => [Processing, Success, PartiallyPaid, Failed],
        /// Sent to a channel, result unknown: query, never guess.
        Processing = "PROCESSING" => [Success, PartiallyPaid, Failed],
        Success = "SUCCESS" => [],
        /// A payout split into several channel orders of which some were
        /// paid and a later one refused: what was paid left, the rest went
        /// back to the paying balance.
        PartiallyPaid = "PARTIALLY_PAID" => [],
        Failed = "FAILED" => [],
    }
}

status_enum! {
    /// 支付指令 status: one funding source or direction of a payment.
    InstructionStatus, "payment instruction", Instruction {
        Created = "CREATED" => [Processing, Success, Failed],
        Processing = "PROCESSING" => [Success, Failed],
        Success = "SUCCESS" => [],
        Failed = "FAILED" => [],
    }
}

status_enum! {
    /// 机构订单 status: one request to one external institution.
    ChannelOrderStatus, "channel order", ChannelOrder {
        Created = "CREATED" => [Processing, Success, Failed],
        Processing = "PROCESSING" => [Success, Failed],
        Success = "SUCCESS" => [],
        Failed = "FAILED" => [],
    }
}

status_enum! {
    /// 退款 status.
    RefundStatus, "refund", Refund {
        /// Started by the platform (after reconciliation, say): waits for
        /// an operator's approval.
        PendingReview = "PENDING_REVIEW" => [Processing, Failed],
        Processing = "PROCESSING" => [Success, Failed],
        Success = "SUCCESS" => [],
        Failed = "FAILED" => [],
    }
}

status_enum! {
    /// The share of a refund that goes back to one funding source.
    RefundPartStatus, "refund part", RefundPart {
        Created = "CREATED" => [Processing, Success, Failed],
        Processing = "PROCESSING" => [Success, Failed],
        Success = "SUCCESS" => [],
        Failed = "FAILED" => [],
    }
}

status_enum! {
    /// A fee charged on a payment (计费): reserved when the payment is
    /// accepted, then charged or voided with it.
    PaymentFeeStatus, "payment fee", PaymentFee {
        /// Held from the paying account by a pending transfer (or, for a
        /// post-paid payout fee, only priced) until the payment is final.
        Reserved = "RESERVED" => [Charged, Voided],
        /// Taken: the payment succeeded.
        Charged = "CHARGED" => [],
        /// Given back: the payment failed, or was a duplicate.
        Voided = "VOIDED" => [],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_table<S: Status>() {
        for status in S::ALL {
            assert_eq!(S::parse(status.as_str()), Some(*status));
            for next in S::ALL {
                let legal = status.successors().contains(next);
                assert_eq!(
                    status.transition(*next).is_ok(),
                    legal,
                    "{status:?} -> {next:?}"
                );
            }
        }
        assert_eq!(S::parse("NOPE"), None);
    }

    #[test]
    fn every_table_parses_and_agrees_with_transition() {
        check_table::<TradeStatus>();
        check_table::<PaymentStatus>();
        check_table::<InstructionStatus>();
        check_table::<ChannelOrderStatus>();
        check_table::<RefundStatus>();
        check_table::<RefundPartStatus>();
        check_table::<PaymentFeeStatus>();
    }

    #[test]
    fn a_paid_trade_is_never_paid_again() {
        assert!(
            TradeStatus::Success
                .transition(TradeStatus::Success)
                .is_err()
        );
        assert!(
            TradeStatus::Closed
                .transition(TradeStatus::Success)
                .is_err()
        );
        let error = TradeStatus::Refunded
            .transition(TradeStatus::WaitPay)
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "trade order cannot go from REFUNDED to WAIT_PAY"
        );
    }

    #[test]
    fn unknown_results_are_resolved_not_reverted() {
        assert!(
            PaymentStatus::Processing
                .transition(PaymentStatus::Created)
                .is_err()
        );
        assert!(PaymentStatus::Success.is_final());
        assert!(
            PaymentStatus::Failed
                .transition(PaymentStatus::Success)
                .is_err()
        );
        assert!(
            RefundStatus::PendingReview
                .transition(RefundStatus::Success)
                .is_err()
        );
    }
}
