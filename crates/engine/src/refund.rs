//! How a refund is split over the funding sources of the payment it
//! returns ([`allocate_refund`]): a discount card's share first, then
//! channel sources (card, bank, wallet), each up to what it paid less what
//! was refunded to it, and the member's balance and bonus in proportion
//! ([`RefundOrdering`] may put the stored value first). Coupons are never
//! refunded (核销后作废): a used coupon is spent.

use crate::order::{FundingSource, InstructionId, OrderError, PaymentInstruction, RefundId};
use crate::status::RefundPartStatus;
use ledger::TimestampMicros;
use money::{Currency, Money, RoundingMode, divide_rounded};
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

/// The order in which the rest of a refund, after the discount's share,
/// goes back: to third parties (card, bank, wallet) first, up to what each
/// paid, then to the member's stored value (balance and bonus, in
/// proportion to what each paid) — DOMAIN §2's rule — or the other way
/// round. Configured per platform (`[refunds] order`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RefundOrdering {
    #[default]
    ThirdPartyFirst,
    StoredValueFirst,
}

impl RefundOrdering {
    pub fn name(self) -> &'static str {
        match self {
            RefundOrdering::ThirdPartyFirst => "third_party_first",
            RefundOrdering::StoredValueFirst => "stored_value_first",
        }
    }

    pub fn parse(text: &str) -> Option<RefundOrdering> {
        [
            RefundOrdering::ThirdPartyFirst,
            RefundOrdering::StoredValueFirst,
        ]
        .into_iter()
        .find(|ordering| ordering.name() == text)
    }
}

/// What a source can still give back: what it paid less what went back to
/// it already. A coupon gives nothing back.
fn room(instruction: &PaymentInstruction, refunded: &HashMap<InstructionId, i64>) -> i64 {
    if instruction.source == FundingSource::Coupon {
        return 0;
    }
    let back = refunded.get(&instruction.id).copied().unwrap_or(0);
    (instruction.amount_minor - back).max(0)
}

/// What a payment can still give back: the sum over its refundable
/// sources of what each paid less what went back to it already.
pub fn refundable_by_sources(
    instructions: &[PaymentInstruction],
    refunded: &HashMap<InstructionId, i64>,
) -> i64 {
    instructions
        .iter()
        .map(|instruction| room(instruction, refunded))
        .sum()
}

/// Splits `amount_minor` over the payment's sources. `refunded` holds what
/// each instruction already got back (or has on its way back). The parts
/// always sum to `amount_minor`, and none exceeds what its source can give
/// back:
/// 1. a discount card's discount (source `discount`) takes its share first,
///    `amount × discount / payment` rounded half up (折扣卡: the discount
///    goes back to the discount, not to the member);
/// 2. the rest goes by `ordering`: third-party sources, each up to what it
///    paid, and the stored value, balance and bonus in proportion to what
///    each can give back (largest remainder);
/// 3. anything still left (a discount already given back in part) goes to
///    the discount.
///
/// Coupons are never refunded (核销后作废).
pub fn allocate_refund(
    instructions: &[PaymentInstruction],
    refunded: &HashMap<InstructionId, i64>,
    amount_minor: i64,
    ordering: RefundOrdering,
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
    let mut ordered: Vec<&PaymentInstruction> = instructions.iter().collect();
    ordered.sort_by_key(|instruction| instruction.id);
    let payment_minor: i128 = ordered
        .iter()
        .map(|instruction| i128::from(instruction.amount_minor))
        .sum();
    let mut parts = Parts::new(refunded, amount_minor);
    let discounts: Vec<&PaymentInstruction> = ordered
        .iter()
        .copied()
        .filter(|instruction| instruction.source == FundingSource::Discount)
        .collect();
    for discount in &discounts {
        let share = divide_rounded(
            i128::from(amount_minor) * i128::from(discount.amount_minor),
            payment_minor,
            RoundingMode::HalfUp,
        )
        .ok()
        .and_then(|share| i64::try_from(share).ok())
        .unwrap_or(0);
        parts.take(discount, share);
    }
    let third_party: Vec<&PaymentInstruction> = ordered
        .iter()
        .copied()
        .filter(|instruction| instruction.source.through_channel())
        .collect();
    let stored_value: Vec<&PaymentInstruction> = ordered
        .iter()
        .copied()
        .filter(|instruction| {
            matches!(
                instruction.source,
                FundingSource::Balance | FundingSource::Bonus
            )
        })
        .collect();
    match ordering {
        RefundOrdering::ThirdPartyFirst => {
            parts.each(&third_party);
            parts.in_proportion(&stored_value)?;
        }
        RefundOrdering::StoredValueFirst => {
            parts.in_proportion(&stored_value)?;
            parts.each(&third_party);
        }
    }
    parts.each(&discounts);
    parts.finish()
}

/// The parts of one refund as they are taken.
struct Parts<'a> {
    refunded: &'a HashMap<InstructionId, i64>,
    left: i64,
    parts: Vec<NewRefundPart>,
}

impl<'a> Parts<'a> {
    fn new(refunded: &'a HashMap<InstructionId, i64>, amount_minor: i64) -> Self {
        Parts {
            refunded,
            left: amount_minor,
            parts: Vec::new(),
        }
    }

    /// What `instruction` can still give, counting parts taken here.
    fn room(&self, instruction: &PaymentInstruction) -> i64 {
        let here: i64 = self
            .parts
            .iter()
            .filter(|part| part.instruction_id == instruction.id)
            .map(|part| part.amount_minor)
            .sum();
        (room(instruction, self.refunded) - here).max(0)
    }

    /// Takes up to `wanted` from `instruction`.
    fn take(&mut self, instruction: &PaymentInstruction, wanted: i64) {
        let share = wanted.min(self.room(instruction)).min(self.left);
        if share <= 0 {
            return;
        }
        self.left -= share;
        match self
            .parts
            .iter_mut()
            .find(|part| part.instruction_id == instruction.id)
        {
            Some(part) => part.amount_minor += share,
            None => self.parts.push(NewRefundPart {
                instruction_id: instruction.id,
                amount_minor: share,
            }),
        }
    }

    /// Takes from each source in turn, up to what each can give.
    fn each(&mut self, instructions: &[&PaymentInstruction]) {
        for instruction in instructions {
            self.take(instruction, self.left);
        }
    }

    /// Takes from the sources together, in proportion to what each can give.
    fn in_proportion(&mut self, instructions: &[&PaymentInstruction]) -> Result<(), OrderError> {
        let rooms: Vec<u64> = instructions
            .iter()
            .map(|instruction| u64::try_from(self.room(instruction)).unwrap_or(0))
            .collect();
        let total: u64 = rooms.iter().sum();
        if total == 0 || self.left == 0 {
            return Ok(());
        }
        let taken = self.left.min(i64::try_from(total).unwrap_or(i64::MAX));
        let shares = Money::new(taken, Currency::CNY)
            .allocate(&rooms)
            .map_err(|_| OrderError::InvalidAmount(taken))?;
        for (instruction, share) in instructions.iter().zip(shares) {
            self.take(instruction, share.amount_minor());
        }
        Ok(())
    }

    fn finish(self) -> Result<Vec<NewRefundPart>, OrderError> {
        if self.left != 0 {
            // The sources' rooms sum to at least the amount, checked above.
            return Err(OrderError::RefundExceedsRefundable {
                requested_minor: self.left,
                refundable_minor: 0,
            });
        }
        Ok(self.parts)
    }
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
            split(&allocate_refund(&paid, &none, 2_000, RefundOrdering::ThirdPartyFirst).unwrap()),
            [(3, 2_000)]
        );
        assert_eq!(
            split(&allocate_refund(&paid, &none, 8_000, RefundOrdering::ThirdPartyFirst).unwrap()),
            [(3, 6_500), (1, 1_500)]
        );
        assert_eq!(refundable_by_sources(&paid, &none), 9_500);
        assert!(allocate_refund(&paid, &none, 9_501, RefundOrdering::ThirdPartyFirst).is_err());
        let some_back = HashMap::from([(3, 6_000)]);
        assert_eq!(
            split(
                &allocate_refund(&paid, &some_back, 1_000, RefundOrdering::ThirdPartyFirst)
                    .unwrap()
            ),
            [(3, 500), (1, 500)]
        );
    }

    #[test]
    fn a_discount_card_gives_its_share_back_first() {
        // 100.00: the card's 10% discount, 50.00 from the card's balance,
        // 40.00 by wallet. A refund of 50.00: 5.00 to the discount, then the
        // wallet up to what it paid, then the balance.
        let paid = [
            instruction(1, FundingSource::Discount, 1_000),
            instruction(2, FundingSource::Balance, 5_000),
            instruction(3, FundingSource::Wallet, 4_000),
        ];
        let none = HashMap::new();
        let third_party = RefundOrdering::ThirdPartyFirst;
        assert_eq!(
            split(&allocate_refund(&paid, &none, 5_000, third_party).unwrap()),
            [(1, 500), (3, 4_000), (2, 500)]
        );
        assert_eq!(
            split(&allocate_refund(&paid, &none, 5_000, RefundOrdering::StoredValueFirst).unwrap()),
            [(1, 500), (2, 4_500)]
        );
        // The whole trade: every source gets back what it paid.
        assert_eq!(
            split(&allocate_refund(&paid, &none, 10_000, third_party).unwrap()),
            [(1, 1_000), (3, 4_000), (2, 5_000)]
        );
        // With the discount given back already, what is left goes to it last.
        let back = HashMap::from([(1, 1_000), (3, 4_000)]);
        assert_eq!(
            split(&allocate_refund(&paid, &back, 5_000, third_party).unwrap()),
            [(2, 5_000)]
        );
    }

    #[test]
    fn balance_and_bonus_go_back_in_proportion() {
        let paid = [
            instruction(1, FundingSource::Balance, 5_000),
            instruction(2, FundingSource::Bonus, 9_000),
        ];
        let none = HashMap::new();
        assert_eq!(
            split(&allocate_refund(&paid, &none, 7_000, RefundOrdering::ThirdPartyFirst).unwrap()),
            [(1, 2_500), (2, 4_500)]
        );
        assert_eq!(
            split(&allocate_refund(&paid, &none, 1, RefundOrdering::ThirdPartyFirst).unwrap()),
            [(2, 1)]
        );
    }

    fn ordering() -> impl Strategy<Value = RefundOrdering> {
        prop_oneof![
            Just(RefundOrdering::ThirdPartyFirst),
            Just(RefundOrdering::StoredValueFirst)
        ]
    }

    proptest! {
        #[test]
        fn parts_sum_to_the_refund_and_never_exceed_a_source(
            amounts in prop::collection::vec((0usize..6, 1i64..100_000), 1..7),
            already in prop::collection::vec(0i64..100_000, 7),
            wanted in 1i64..400_000,
            ordering in ordering(),
        ) {
            let sources = [
                FundingSource::Balance,
                FundingSource::Bonus,
                FundingSource::Coupon,
                FundingSource::Card,
                FundingSource::Wallet,
                FundingSource::Discount,
            ];
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
            match allocate_refund(&paid, &refunded, wanted, ordering) {
                Ok(parts) => {
                    prop_assert!(wanted <= refundable);
                    prop_assert_eq!(parts.iter().map(|part| part.amount_minor).sum::<i64>(), wanted);
                    for part in &parts {
                        let source = paid.iter().find(|i| i.id == part.instruction_id).unwrap();
                        prop_assert!(source.source != FundingSource::Coupon);
                        prop_assert!(part.amount_minor > 0);
                        prop_assert!(part.amount_minor + refunded[&source.id] <= source.amount_minor);
                    }
                    let mut ids: Vec<i64> = parts.iter().map(|part| part.instruction_id).collect();
                    ids.sort_unstable();
                    ids.dedup();
                    prop_assert_eq!(ids.len(), parts.len(), "one part per source");
                }
                Err(_) => prop_assert!(wanted > refundable),
            }
        }
    }
}
