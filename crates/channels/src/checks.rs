//! The checks an institution runs on the elements of a signing (签约)
//! before it asks its records: the card number's Luhn check digit and the
//! PRC resident ID number's ISO 7064 MOD 11-2 check character.

/// Shortest and longest card number (PAN) accepted.
pub const CARD_NUMBER_DIGITS_MIN: usize = 12;
pub const CARD_NUMBER_DIGITS_MAX: usize = 19;
/// Length of a PRC resident ID number (居民身份证号码).
pub const RESIDENT_ID_LENGTH: usize = 18;

/// The Luhn check digit that completes `payload` (the number without its
/// last digit); `None` if `payload` is empty or not all digits.
pub fn luhn_check_digit(payload: &str) -> Option<char> {
    if payload.is_empty() || !payload.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    // Counting from the right of the payload, every first digit is doubled
    // (it is the second from the right once the check digit is added).
    let sum: u32 = payload
        .bytes()
        .rev()
        .enumerate()
        .map(|(position, byte)| {
            let digit = u32::from(byte - b'0');
            if position % 2 == 0 {
                let doubled = digit * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                digit
            }
        })
        .sum();
    char::from_digit((10 - sum % 10) % 10, 10)
}

/// `payload` followed by its Luhn check digit: a card number that passes
/// the check (`None` if `payload` is empty or not all digits).
pub fn complete_card_number(payload: &str) -> Option<String> {
    luhn_check_digit(payload).map(|check| format!("{payload}{check}"))
}

/// True for a card number of 12 to 19 digits whose last digit is its Luhn
/// check digit.
pub fn card_number_valid(card_number: &str) -> bool {
    let length = card_number.len();
    if !(CARD_NUMBER_DIGITS_MIN..=CARD_NUMBER_DIGITS_MAX).contains(&length) {
        return false;
    }
    let (payload, check) = card_number.split_at(length - 1);
    luhn_check_digit(payload).is_some_and(|digit| check.starts_with(digit))
}

/// ISO 7064 MOD 11-2 weights of the first 17 characters: 2^(17 - i) mod 11.
const RESIDENT_ID_WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
/// The check character for each remainder of the weighted sum mod 11.
const RESIDENT_ID_CHECK_CHARACTERS: [char; 11] =
    ['1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'];

/// The check character (`0`–`9` or `X`) that completes the first 17
/// digits of a resident ID number; `None` unless `first_17` is 17 digits.
pub fn resident_id_check_character(first_17: &str) -> Option<char> {
    if first_17.len() != RESIDENT_ID_LENGTH - 1
        || !first_17.bytes().all(|byte| byte.is_ascii_digit())
    {
        return None;
    }
    let sum: u32 = first_17
        .bytes()
        .zip(RESIDENT_ID_WEIGHTS)
        .map(|(byte, weight)| u32::from(byte - b'0') * weight)
        .sum();
    RESIDENT_ID_CHECK_CHARACTERS
        .get(usize::try_from(sum % 11).ok()?)
        .copied()
}

/// The first 17 digits of a resident ID number followed by their check
/// character (`None` unless `first_17` is 17 digits).
pub fn complete_resident_id(first_17: &str) -> Option<String> {
    resident_id_check_character(first_17).map(|check| format!("{first_17}{check}"))
}

/// True for an 18-character resident ID number whose last character
/// (`X` in either case) is its check character.
pub fn resident_id_valid(id_number: &str) -> bool {
    if id_number.len() != RESIDENT_ID_LENGTH || !id_number.is_ascii() {
        return false;
    }
    let (first_17, check) = id_number.split_at(RESIDENT_ID_LENGTH - 1);
    resident_id_check_character(first_17)
        .is_some_and(|expected| check.eq_ignore_ascii_case(&expected.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn published_examples() {
        // The Luhn example of ISO/IEC 7812 and a common test card.
        assert_eq!(luhn_check_digit("7992739871"), Some('3'));
        assert!(!card_number_valid("79927398713"), "11 digits are too few");
        assert!(card_number_valid("4111111111111111"));
        assert!(!card_number_valid("4111111111111112"));
        assert!(!card_number_valid("41111111111"));
        assert!(!card_number_valid("41111111111111a1"));
        // The sample number of GB 11643-1999.
        assert_eq!(resident_id_check_character("11010519491231002"), Some('X'));
        assert!(resident_id_valid("11010519491231002X"));
        assert!(resident_id_valid("11010519491231002x"));
        assert!(!resident_id_valid("110105194912310021"));
        assert!(!resident_id_valid("11010519491231002"));
        assert_eq!(resident_id_check_character("1101051949123100"), None);
    }

    proptest! {
        #[test]
        fn a_completed_card_number_passes_and_any_other_last_digit_fails(
            payload in "[0-9]{11,18}",
            wrong in 1u32..10,
        ) {
            let check = luhn_check_digit(&payload).unwrap();
            let completed = format!("{payload}{check}");
            prop_assert!(card_number_valid(&completed));
            let other = char::from_digit((check.to_digit(10).unwrap() + wrong) % 10, 10).unwrap();
            let wrong_number = format!("{payload}{other}");
            prop_assert!(!card_number_valid(&wrong_number));
        }

        #[test]
        fn luhn_catches_every_single_digit_error(
            payload in "[0-9]{15}",
            position in 0usize..16,
            change in 1u8..10,
        ) {
            let check = luhn_check_digit(&payload).unwrap();
            let mut digits = format!("{payload}{check}").into_bytes();
            digits[position] = b'0' + (digits[position] - b'0' + change) % 10;
            prop_assert!(!card_number_valid(std::str::from_utf8(&digits).unwrap()));
        }

        #[test]
        fn a_completed_id_number_passes_and_any_other_check_fails(
            first_17 in "[0-9]{17}",
            other in prop::sample::select(RESIDENT_ID_CHECK_CHARACTERS.to_vec()),
        ) {
            let check = resident_id_check_character(&first_17).unwrap();
            let completed = format!("{first_17}{check}");
            prop_assert!(resident_id_valid(&completed));
            let with_other = format!("{first_17}{other}");
            prop_assert_eq!(resident_id_valid(&with_other), other == check);
        }

        #[test]
        fn mod_11_2_catches_every_single_digit_error(
            first_17 in "[0-9]{17}",
            position in 0usize..17,
            change in 1u8..10,
        ) {
            let check = resident_id_check_character(&first_17).unwrap();
            let mut characters = first_17.into_bytes();
            characters[position] = b'0' + (characters[position] - b'0' + change) % 10;
            let changed = String::from_utf8(characters).unwrap();
            let changed = format!("{changed}{check}");
            prop_assert!(!resident_id_valid(&changed));
        }
    }
}
