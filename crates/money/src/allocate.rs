use crate::{Money, MoneyError};

/// The most parts one allocation may produce.
pub const ALLOCATION_PARTS_MAX: usize = 10_000;

impl Money {
    /// Splits `self` in proportion to `weights` so that the parts sum exactly
    /// to `self`.
    ///
    /// Each part first gets its proportional share rounded toward zero; the
    /// few minor units left over go one each to the parts with the largest
    /// remainders, earlier parts first on a tie (the largest-remainder
    /// method). A zero weight always gets zero. Negative amounts split like
    /// their magnitude, with every part negated.
    pub fn allocate(self, weights: &[u64]) -> Result<Vec<Money>, MoneyError> {
        if weights.is_empty() || weights.len() > ALLOCATION_PARTS_MAX {
            return Err(MoneyError::AllocationPartCount {
                count: weights.len(),
                max: ALLOCATION_PARTS_MAX,
            });
        }
        let weight_total: u128 = weights.iter().map(|weight| u128::from(*weight)).sum();
        if weight_total == 0 {
            return Err(MoneyError::AllocationWeightsZero);
        }
        let magnitude = u128::from(self.amount_minor().unsigned_abs());
        let mut shares: Vec<u128> = Vec::with_capacity(weights.len());
        let mut remainders: Vec<(u128, usize)> = Vec::with_capacity(weights.len());
        for (index, weight) in weights.iter().enumerate() {
            // magnitude < 2^64 and weight < 2^64, so the product fits in u128.
            let product = magnitude * u128::from(*weight);
            shares.push(product / weight_total);
            remainders.push((product % weight_total, index));
        }
        let allocated: u128 = shares.iter().sum();
        let leftover = magnitude - allocated;
        // Fewer than `weights.len()` units are left over; sort largest first.
        remainders.sort_by(|left, right| right.0.cmp(&left.0).then(left.1.cmp(&right.1)));
        for (_, index) in remainders.iter().take(leftover as usize) {
            shares[*index] += 1;
        }
        let negative = self.is_negative();
        shares
            .into_iter()
            .map(|share| {
                let share = i128::try_from(share).map_err(|_| MoneyError::Overflow)?;
                let signed = if negative { -share } else { share };
                let amount_minor = i64::try_from(signed).map_err(|_| MoneyError::Overflow)?;
                Ok(Money::new(amount_minor, self.currency()))
            })
            .collect()
    }

    /// Splits `self` into `parts` nearly equal parts that sum to `self`.
    pub fn split_evenly(self, parts: usize) -> Result<Vec<Money>, MoneyError> {
        if parts == 0 || parts > ALLOCATION_PARTS_MAX {
            return Err(MoneyError::AllocationPartCount {
                count: parts,
                max: ALLOCATION_PARTS_MAX,
            });
        }
        self.allocate(&vec![1; parts])
    }
}

#[cfg(test)]
mod tests {
    use crate::{Currency, Money, MoneyError};
    use proptest::prelude::*;

    fn cny(amount_minor: i64) -> Money {
        Money::new(amount_minor, Currency::CNY)
    }

    fn minor(parts: &[Money]) -> Vec<i64> {
        parts.iter().map(|part| part.amount_minor()).collect()
    }

    #[test]
    fn thirds_give_the_extra_cent_to_the_first() {
        assert_eq!(minor(&cny(100).split_evenly(3).unwrap()), [34, 33, 33]);
        assert_eq!(minor(&cny(-100).split_evenly(3).unwrap()), [-34, -33, -33]);
    }

    #[test]
    fn ratio_split_of_top_up_with_bonus() {
        // Spending 50 from 100 cash + 180 bonus by balance ratio.
        assert_eq!(minor(&cny(50).allocate(&[100, 180]).unwrap()), [18, 32]);
    }

    #[test]
    fn zero_weight_gets_nothing() {
        assert_eq!(minor(&cny(7).allocate(&[0, 1, 1]).unwrap()), [0, 4, 3]);
    }

    #[test]
    fn bad_weights_are_errors() {
        assert_eq!(
            cny(1).allocate(&[0, 0]),
            Err(MoneyError::AllocationWeightsZero)
        );
        assert!(matches!(
            cny(1).allocate(&[]),
            Err(MoneyError::AllocationPartCount { count: 0, .. })
        ));
        assert!(cny(1).split_evenly(0).is_err());
    }

    proptest! {
        #[test]
        fn parts_always_sum_to_the_whole(
            amount_minor in any::<i64>(),
            weights in prop::collection::vec(any::<u64>(), 1..50),
        ) {
            prop_assume!(weights.iter().any(|weight| *weight > 0));
            let whole = cny(amount_minor);
            let parts = whole.allocate(&weights).unwrap();
            prop_assert_eq!(parts.len(), weights.len());
            let sum: i128 = parts.iter().map(|part| i128::from(part.amount_minor())).sum();
            prop_assert_eq!(sum, i128::from(amount_minor));
            for (part, weight) in parts.iter().zip(&weights) {
                // Same sign as the whole, and zero weight means zero.
                prop_assert!(part.amount_minor() == 0 || (part.amount_minor() < 0) == (amount_minor < 0));
                if *weight == 0 {
                    prop_assert_eq!(part.amount_minor(), 0);
                }
            }
        }

        #[test]
        fn each_part_is_within_one_unit_of_its_exact_share(
            amount_minor in -1_000_000_000_000i64..1_000_000_000_000,
            weights in prop::collection::vec(0u64..1_000_000, 1..20),
        ) {
            prop_assume!(weights.iter().any(|weight| *weight > 0));
            let parts = cny(amount_minor).allocate(&weights).unwrap();
            let total: i128 = weights.iter().map(|weight| i128::from(*weight)).sum();
            for (part, weight) in parts.iter().zip(&weights) {
                // |part × total − amount × weight| < total
                let exact = i128::from(amount_minor) * i128::from(*weight);
                let error = (i128::from(part.amount_minor()) * total - exact).abs();
                prop_assert!(error < total);
            }
        }

        #[test]
        fn even_split_parts_differ_by_at_most_one(amount_minor in any::<i64>(), parts in 1usize..100) {
            let split = cny(amount_minor).split_evenly(parts).unwrap();
            let largest = split.iter().map(|part| part.amount_minor()).max().unwrap();
            let smallest = split.iter().map(|part| part.amount_minor()).min().unwrap();
            prop_assert!(largest - smallest <= 1);
            let sum: i128 = split.iter().map(|part| i128::from(part.amount_minor())).sum();
            prop_assert_eq!(sum, i128::from(amount_minor));
        }
    }
}
