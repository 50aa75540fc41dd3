//! Personal data and keys: values that must never be printed, logged or
//! stored in clear (card numbers, ID numbers, phone numbers, names, signing
//! keys), the masks shown in their place, and the keyed fingerprints by
//! which the same card is recognised without keeping its number.
//!
//! **Architecture Invariant:** a [`Secret`] is read only through
//! [`Secret::expose`]; its `Debug` prints `Secret(***)`, so a secret inside
//! a logged or debug-printed value shows nothing.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::fmt;

/// A value that must not be logged or printed by accident (a signing key,
/// a card number): `Debug` shows `Secret(***)`, and reading it takes an
/// explicit [`Secret::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    pub fn new(value: T) -> Self {
        Secret(value)
    }

    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("Secret(***)")
    }
}

/// Fewest bytes a personal-data key may have: the HMAC-SHA256 block of
/// security it is meant to give.
pub const PERSONAL_DATA_KEY_BYTES_MIN: usize = 32;

/// Why a personal-data key was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyError {
    NotHex,
    TooShort { bytes: usize },
}

impl fmt::Display for KeyError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::NotHex => formatter.write_str("the personal-data key is not hexadecimal"),
            KeyError::TooShort { bytes } => write!(
                formatter,
                "the personal-data key has {bytes} bytes, at least {PERSONAL_DATA_KEY_BYTES_MIN} are needed"
            ),
        }
    }
}

impl std::error::Error for KeyError {}

/// The key of the keyed fingerprints (HMAC-SHA256) of card and ID numbers.
/// Without the key a fingerprint cannot be checked against guesses, so a
/// copy of the database does not give the numbers away (a card number has
/// few enough possibilities that a plain hash would).
#[derive(Clone, Debug)]
pub struct PersonalDataKey(Secret<Vec<u8>>);

/// The key of development and demo runs: public, so it protects nothing.
const DEVELOPMENT_KEY: &[u8; 32] = b"paycore-development-key-PUBLIC!!";

impl PersonalDataKey {
    /// A key from its hex form (at least 32 bytes).
    pub fn from_hex(text: &str) -> Result<Self, KeyError> {
        let bytes = hex::decode(text.trim()).map_err(|_| KeyError::NotHex)?;
        if bytes.len() < PERSONAL_DATA_KEY_BYTES_MIN {
            return Err(KeyError::TooShort { bytes: bytes.len() });
        }
        Ok(PersonalDataKey(Secret::new(bytes)))
    }

    /// The built-in development key. It is public: production runs must
    /// set their own.
    pub fn development() -> Self {
        PersonalDataKey(Secret::new(DEVELOPMENT_KEY.to_vec()))
    }

    pub fn is_development(&self) -> bool {
        self.0.expose().as_slice() == DEVELOPMENT_KEY
    }

    /// The hex HMAC-SHA256 of `value` under this key, with `kind` (`card`,
    /// `id_number`) mixed in so that equal digits of two kinds do not
    /// share a fingerprint.
    pub fn fingerprint(&self, kind: &str, value: &str) -> String {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(self.0.expose()) else {
            // HMAC takes keys of any length; this branch cannot be taken.
            return String::new();
        };
        mac.update(kind.as_bytes());
        mac.update(b"\n");
        mac.update(value.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }
}

/// A card number as it may be shown and stored: its first four and last
/// four digits, `6222****1234`. Anything of eight characters or fewer is
/// masked whole.
pub fn mask_card_number(card_number: &str) -> String {
    mask(card_number, 4, 4)
}

/// A phone number as it may be shown and stored: `138****8000`.
pub fn mask_phone(phone: &str) -> String {
    mask(phone, 3, 4)
}

fn mask(text: &str, head: usize, tail: usize) -> String {
    let characters: Vec<char> = text.chars().collect();
    if characters.len() <= head + tail {
        return "****".to_owned();
    }
    let start: String = characters[..head].iter().collect();
    let end: String = characters[characters.len() - tail..].iter().collect();
    format!("{start}****{end}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn secrets_do_not_print() {
        let secret = Secret::new("6222020200112233445".to_owned());
        assert_eq!(format!("{secret:?}"), "Secret(***)");
        assert_eq!(format!("{:?}", Some(&secret)), "Some(Secret(***))");
        assert_eq!(secret.expose(), "6222020200112233445");
        let key = PersonalDataKey::development();
        assert!(!format!("{key:?}").contains("paycore"));
    }

    #[test]
    fn masks_keep_only_the_ends() {
        assert_eq!(mask_card_number("6222020200111234"), "6222****1234");
        assert_eq!(mask_card_number("12345678"), "****");
        assert_eq!(mask_phone("13800138000"), "138****8000");
    }

    #[test]
    fn keys_are_checked() {
        assert_eq!(
            PersonalDataKey::from_hex("zz").unwrap_err(),
            KeyError::NotHex
        );
        assert_eq!(
            PersonalDataKey::from_hex("00ff").unwrap_err(),
            KeyError::TooShort { bytes: 2 }
        );
        let key = PersonalDataKey::from_hex(&"ab".repeat(32)).unwrap();
        assert!(!key.is_development());
        assert!(PersonalDataKey::development().is_development());
    }

    proptest! {
        #[test]
        fn fingerprints_recognise_equal_values_only(
            card in "[0-9]{16}",
            other in "[0-9]{16}",
        ) {
            let key = PersonalDataKey::development();
            let fingerprint = key.fingerprint("card", &card);
            prop_assert_eq!(fingerprint.len(), 64);
            prop_assert!(!fingerprint.contains(&card));
            prop_assert_eq!(&fingerprint, &key.fingerprint("card", &card));
            prop_assert_ne!(&fingerprint, &key.fingerprint("id_number", &card));
            prop_assert_eq!(card == other, fingerprint == key.fingerprint("card", &other));
            let another_key = PersonalDataKey::from_hex(&"01".repeat(32)).unwrap();
            prop_assert_ne!(fingerprint, another_key.fingerprint("card", &card));
        }

        #[test]
        fn a_masked_card_shows_eight_digits_at_most(card in "[0-9]{12,19}") {
            let masked = mask_card_number(&card);
            prop_assert_eq!(masked.chars().filter(char::is_ascii_digit).count(), 8);
            prop_assert!(masked.starts_with(&card[..4]));
            prop_assert!(masked.ends_with(&card[card.len() - 4..]));
        }
    }
}
