//! How a refund is split over the funding sources of the payment it
//! returns: channel sources (card, bank, wallet) first, each up to what it
//! paid less what was refunded to it, then balance and bonus. Coupons are
//! never refunded (核销后作废): a used coupon is spent.

use crate::order::{FundingSource, InstructionId, OrderError, PaymentInstruction, RefundId};
use crate::status::RefundPartStatus;
use ledger::TimestampMicros;
use std::collections::HashMap;

/// The share of one refund that goes back to one source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundPart {
    pub id: i64,
    pub refund_id: RefundId,
    pub instruction_id: InstructionId,
    pub amount_minor: i64,
    pub status: RefundPartStatus,
    pub created_at: TimestampMicros,
    pub updated_at: TimestampMicros,
}

/// A share before it is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewRefundPart {
    pub instruction_id: InstructionId,
    pub amount_minor: i64,
}

/// The order in which sources get money back: outside money first.
fn refund_rank(source: FundingSource) -> Option<u8> {
    match source {
        FundingSource::Card | FundingSource::BankAccount | FundingSource::Wallet => Some(0),
        FundingSource::Balance => Some(1),
        FundingSource::Bonus => Some(2),
        FundingSource::Coupon => None,
    }
}

/// What a payment can still give back: the sum over its refundable
/// sources of what each paid less what went back to it already.
pub fn refundable_by_sources(
    instructions: &[PaymentInstruction],
    refunded: &HashMap<InstructionId, i64>,
) -> i64 {
    instructions
        .iter()
        .filter(|instruction| refund_rank(instruction.source).is_some())
        .map(|instruction| {
            let back = refunded.get(&instruction.id).copied().unwrap_or(0);
            (instruction.amount_minor - back).max(0)
        })
        .sum()
}

/// Splits `amount_minor` over the payment's sources. `refunded` holds what
/// each instruction already got back (or has on its way back). The parts
/// always sum to `amount_minor`.
pub fn allocate_refund(
    instructions: &[PaymentInstruction],
    refunded: &HashMap<InstructionId, i64>,
    amount_minor: i64,
) -> Result<Vec<NewRefundPart>, OrderError> {
    if amount_minor <= 0 {
        return Err(OrderError::InvalidAmount(amount_minor));
    }
    let refundable_minor = refundable_by_sources(instructions, refunded);
    if amount_minor > refundable_minor {
        return Err(OrderError::RefundExceedsRefundable {
            requested_minor: amount_minor,
            refundable_minor,
        });
    }
    let mut ordered: Vec<(u8, &PaymentInstruction)> = instructions
        .iter()
        .filter_map(|instruction| refund_rank(instruction.source).map(|rank| (rank, instruction)))
        .collect();
    ordered.sort_by_key(|(rank, instruction)| (*rank, instruction.id));
    let mut left = amount_minor;
    let mut parts = Vec::new();
    for (_, instruction) in ordered {
        if left == 0 {
            break;
        }
        let back = refunded.get(&instruction.id).copied().unwrap_or(0);
        let room = (instruction.amount_minor - back).max(0);
        let share = room.min(left);
        if share > 0 {
            parts.push(NewRefundPart {
                instruction_id: instruction.id,
                amount_minor: share,
            });
            left -= share;
        }
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::order::Direction;
    use crate::status::InstructionStatus;
    use money::Currency;
    use proptest::prelude::*;

    fn instruction(id: i64, source: FundingSource, amount_minor: i64) -> PaymentInstruction {
        PaymentInstruction {
            id,
            payment_id: 1,
            direction: Direction::Collect,
            source,
            amount_minor,
            currency: Currency::CNY,
            status: InstructionStatus::Success,
            created_at: 0,
            updated_at: 0,
        }
    }

    fn split(parts: &[NewRefundPart]) -> Vec<(i64, i64)> {
        parts
            .iter()
            .map(|part| (part.instruction_id, part.amount_minor))
            .collect()
    }

    #[test]
    fn card_first_then_balance_and_never_the_coupon() {
        let paid = [
            instruction(1, FundingSource::Balance, 3_000),
            instruction(2, FundingSource::Coupon, 500),
            instruction(3, FundingSource::Card, 6_500),
        ];
        let none = HashMap::new();
        assert_eq!(
            split(&allocate_refund(&paid, &none, 2_000).unwrap()),
            [(3, 2_000)]
        );
        assert_eq!(
            split(&allocate_refund(&paid, &none, 8_000).unwrap()),
            [(3, 6_500), (1, 1_500)]
        );
        assert_eq!(refundable_by_sources(&paid, &none), 9_500);
        assert!(allocate_refund(&paid, &none, 9_501).is_err());
        let some_back = HashMap::from([(3, 6_000)]);
        assert_eq!(
            split(&allocate_refund(&paid, &some_back, 1_000).unwrap()),
            [(3, 500), (1, 500)]
        );
    }

    proptest! {
        #[test]
        fn parts_sum_to_the_refund_and_never_exceed_a_source(
            amounts in prop::collection::vec((0usize..4, 1i64..100_000), 1..6),
            already in prop::collection::vec(0i64..100_000, 6),
            wanted in 1i64..400_000,
        ) {
            let sources = [FundingSource::Balance, FundingSource::Bonus, FundingSource::Coupon, FundingSource::Card];
            let paid: Vec<PaymentInstruction> = amounts
                .iter()
                .enumerate()
                .map(|(index, (source, amount))| instruction(index as i64, sources[*source], *amount))
                .collect();
            let refunded: HashMap<i64, i64> = paid
                .iter()
                .zip(&already)
                .map(|(instruction, back)| (instruction.id, (*back).min(instruction.amount_minor)))
                .collect();
            let refundable = refundable_by_sources(&paid, &refunded);
            match allocate_refund(&paid, &refunded, wanted) {
                Ok(parts) => {
                    prop_assert!(wanted <= refundable);
                    prop_assert_eq!(parts.iter().map(|part| part.amount_minor).sum::<i64>(), wanted);
                    for part in &parts {
                        let source = paid.iter().find(|i| i.id == part.instruction_id).unwrap();
                        prop_assert!(source.source != FundingSource::Coupon);
                        prop_assert!(part.amount_minor > 0);
                        prop_assert!(part.amount_minor + refunded[&source.id] <= source.amount_minor);
                    }
                }
                Err(_) => prop_assert!(wanted > refundable),
            }
        }
    }
}
