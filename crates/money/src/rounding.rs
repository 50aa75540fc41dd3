use crate::MoneyError;

/// How a quotient that falls between two minor units is rounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum RoundingMode {
    /// Half away from zero (四舍五入): 1.5 → 2, -1.5 → -2. The default.
    #[default]
    HalfUp,
    /// Half to even (banker's rounding): 1.5 → 2, 2.5 → 2.
    HalfEven,
    /// Toward zero (truncate): 1.9 → 1, -1.9 → -1.
    Down,
    /// Away from zero: 1.1 → 2, -1.1 → -2.
    Up,
    /// Toward negative infinity.
    Floor,
    /// Toward positive infinity.
    Ceiling,
}

impl RoundingMode {
    pub const ALL: [RoundingMode; 6] = [
        RoundingMode::HalfUp,
        RoundingMode::HalfEven,
        RoundingMode::Down,
        RoundingMode::Up,
        RoundingMode::Floor,
        RoundingMode::Ceiling,
    ];
}

/// `numerator ÷ denominator` rounded to an integer by `mode`, exactly.
pub fn divide_rounded(
    numerator: i128,
    denominator: i128,
    mode: RoundingMode,
) -> Result<i128, MoneyError> {
    if denominator == 0 {
        return Err(MoneyError::DivisionByZero);
    }
    let quotient = numerator
        .checked_div(denominator)
        .ok_or(MoneyError::Overflow)?;
    let remainder = numerator % denominator;
    if remainder == 0 {
        return Ok(quotient);
    }
    // The exact result lies strictly between `quotient` and `quotient + sign`.
    let sign: i128 = if (numerator < 0) == (denominator < 0) {
        1
    } else {
        -1
    };
    let away = quotient + sign;
    let remainder_twice = remainder.unsigned_abs().saturating_mul(2);
    let denominator_abs = denominator.unsigned_abs();
    let rounded = match mode {
        RoundingMode::Down => quotient,
        RoundingMode::Up => away,
        RoundingMode::Floor => {
            if sign < 0 {
                away
            } else {
                quotient
            }
        }
        RoundingMode::Ceiling => {
            if sign > 0 {
                away
            } else {
                quotient
            }
        }
        RoundingMode::HalfUp => {
            if remainder_twice >= denominator_abs {
                away
            } else {
                quotient
            }
        }
        RoundingMode::HalfEven => {
            if remainder_twice > denominator_abs
                || (remainder_twice == denominator_abs && quotient % 2 != 0)
            {
                away
            } else {
                quotient
            }
        }
    };
    Ok(rounded)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn table_of_modes() {
        // (numerator, denominator, [HalfUp, HalfEven, Down, Up, Floor, Ceiling])
        let cases: [(i128, i128, [i128; 6]); 6] = [
            (15, 10, [2, 2, 1, 2, 1, 2]),
            (25, 10, [3, 2, 2, 3, 2, 3]),
            (-15, 10, [-2, -2, -1, -2, -2, -1]),
            (-25, 10, [-3, -2, -2, -3, -3, -2]),
            (11, 10, [1, 1, 1, 2, 1, 2]),
            (19, -10, [-2, -2, -1, -2, -2, -1]),
        ];
        for (numerator, denominator, expected) in cases {
            for (mode, want) in RoundingMode::ALL.iter().zip(expected) {
                assert_eq!(
                    divide_rounded(numerator, denominator, *mode).unwrap(),
                    want,
                    "{numerator}/{denominator} {mode:?}"
                );
            }
        }
    }

    #[test]
    fn division_by_zero_is_an_error() {
        assert_eq!(
            divide_rounded(1, 0, RoundingMode::HalfUp),
            Err(MoneyError::DivisionByZero)
        );
    }

    proptest! {
        #[test]
        fn rounded_result_is_within_one_unit(
            numerator in -1_000_000_000_000i128..1_000_000_000_000,
            denominator in prop_oneof![-10_000i128..-1, 1i128..10_000],
        ) {
            for mode in RoundingMode::ALL {
                let rounded = divide_rounded(numerator, denominator, mode).unwrap();
                // |rounded × d − n| < |d|: never more than one unit off.
                let error = (rounded * denominator - numerator).abs();
                prop_assert!(error < denominator.abs(), "{mode:?}");
                if matches!(mode, RoundingMode::HalfUp | RoundingMode::HalfEven) {
                    prop_assert!(error * 2 <= denominator.abs(), "{mode:?}");
                }
            }
        }
    }
}
