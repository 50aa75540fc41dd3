//! How the simulator answers a signing (签约), as a function of the
//! request alone, so that it answers the same after a restart and tests and
//! demos can ask for any case.

use crate::checks::{RESIDENT_ID_LENGTH, card_number_valid, resident_id_valid};
use crate::{AgreementConfirmation, AgreementRequest, Refusal, SMS_CODE_WRONG, SignOutcome};
use sha2::{Digest, Sha256};

/// The card BINs (first six digits) the simulated institution issues
/// agreements for, with the issuing bank it answers. Any other card is
/// `CARD_NOT_SUPPORTED`.
pub const SIMULATED_CARD_BINS: &[(&str, &str)] = &[
    ("622202", "ICBC"),
    ("621700", "CCB"),
    ("622848", "ABC"),
    ("621661", "BOC"),
    ("622588", "CMB"),
];

/// Digits of the SMS code.
pub const SMS_CODE_DIGITS: usize = 6;

/// How the simulator treats a signing request, checked in this order:
///
/// | input | answer |
/// | --- | --- |
/// | a blank name | `NAME_INVALID` |
/// | an ID number that is not 18 characters with its MOD 11-2 check character | `ID_NUMBER_INVALID` |
/// | a card number that is not 12–19 digits with its Luhn check digit | `CARD_NUMBER_INVALID` |
/// | a card whose BIN is not in [`SIMULATED_CARD_BINS`] | `CARD_NOT_SUPPORTED` |
/// | an ID number whose order code (digits 15–17) is `999`: the bank holds another name for it | `ELEMENTS_MISMATCH` |
/// | quick pay: a phone that is not 11 digits starting with `1` | `PHONE_INVALID` |
/// | quick pay: a phone ending in `0000`: the bank holds another phone for the card | `PHONE_MISMATCH` |
/// | anything else | accepted, with the BIN's bank |
///
/// The SMS code of a quick-pay signing is the last six digits of the phone
/// number, reversed ([`sms_code`]): `13800138000` receives `000831`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimulatedSigning {
    Accepted { bank: &'static str },
    Refused { code: &'static str },
}

impl SimulatedSigning {
    pub fn of(request: &AgreementRequest) -> SimulatedSigning {
        let refused = |code| SimulatedSigning::Refused { code };
        let id_number = request.id_number.expose();
        let card_number = request.card_number.expose();
        if request.name.expose().trim().is_empty() {
            return refused("NAME_INVALID");
        }
        if !resident_id_valid(id_number) {
            return refused("ID_NUMBER_INVALID");
        }
        if !card_number_valid(card_number) {
            return refused("CARD_NUMBER_INVALID");
        }
        let Some(bank) = SIMULATED_CARD_BINS
            .iter()
            .find(|(bin, _)| card_number.starts_with(bin))
            .map(|(_, bank)| *bank)
        else {
            return refused("CARD_NOT_SUPPORTED");
        };
        if id_number.get(14..RESIDENT_ID_LENGTH - 1) == Some("999") {
            return refused("ELEMENTS_MISMATCH");
        }
        if let Some(phone) = &request.phone {
            let phone = phone.expose();
            if phone.len() != 11
                || !phone.starts_with('1')
                || !phone.bytes().all(|byte| byte.is_ascii_digit())
            {
                return refused("PHONE_INVALID");
            }
            if phone.ends_with("0000") {
                return refused("PHONE_MISMATCH");
            }
        }
        SimulatedSigning::Accepted { bank }
    }

    fn message(code: &str) -> &'static str {
        match code {
            "NAME_INVALID" => "the holder's name is blank",
            "ID_NUMBER_INVALID" => "the ID number is not a valid resident ID number",
            "CARD_NUMBER_INVALID" => "the card number fails its check digit",
            "CARD_NOT_SUPPORTED" => "the institution does not sign agreements for this card",
            "ELEMENTS_MISMATCH" => "the name, ID number and card do not belong together",
            "PHONE_INVALID" => "the phone number is not a mobile number",
            "PHONE_MISMATCH" => "the phone is not the one the bank holds for this card",
            "SMS_CODE_WRONG" => "the SMS code is wrong",
            "AGREEMENT_UNKNOWN" => "the institution knows no such agreement",
            _ => "refused",
        }
    }
}

/// An institution's refusal with the simulator's wording.
pub(crate) fn refusal(code: &str) -> Refusal {
    Refusal {
        code: code.to_owned(),
        message: SimulatedSigning::message(code).to_owned(),
    }
}

/// The SMS code the simulated institution sends to `phone`: its last six
/// digits, reversed.
pub fn sms_code(phone: &str) -> String {
    let digits: Vec<char> = phone.chars().filter(char::is_ascii_digit).collect();
    let start = digits.len().saturating_sub(SMS_CODE_DIGITS);
    digits[start..].iter().rev().collect()
}

/// The institution's names for one channel: agreement numbers and
/// confirmation tokens start with the channel's code in capitals, so each
/// simulator knows its own and refuses another's.
pub(crate) struct Names {
    prefix: String,
}

impl Names {
    pub(crate) fn new(channel_code: &str) -> Names {
        Names {
            prefix: channel_code.to_ascii_uppercase(),
        }
    }

    /// The agreement number (协议号) of our agreement `agreement_id`.
    pub(crate) fn agreement_no(&self, agreement_id: i64) -> String {
        format!("{}AG{agreement_id:012}", self.prefix)
    }

    pub(crate) fn owns_agreement(&self, agreement_no: &str) -> bool {
        agreement_no
            .strip_prefix(self.prefix.as_str())
            .and_then(|rest| rest.strip_prefix("AG"))
            .is_some_and(|digits| {
                digits.len() == 12 && digits.bytes().all(|byte| byte.is_ascii_digit())
            })
    }

    /// The token of a code sent for `agreement_id` on a card of `bank`: it
    /// names the bank and commits to the code without showing it, so the
    /// confirmation can be checked later from the token alone (the
    /// simulator keeps no state). It is a simulator's device, not a safe
    /// one: a million tries find the code from the token, so a real
    /// institution keeps the code on its side instead.
    pub(crate) fn confirmation_token(
        &self,
        agreement_id: i64,
        bank: &str,
        sms_code: &str,
    ) -> String {
        let digest = hex::encode(Sha256::digest(format!(
            "{}|{agreement_id}|{bank}|{sms_code}",
            self.prefix
        )));
        format!(
            "{}SMS{agreement_id:012}-{bank}-{}",
            self.prefix,
            digest.get(..16).unwrap_or(&digest)
        )
    }

    /// The answer to a confirmation: signed if the code is the one the
    /// token committed to.
    pub(crate) fn confirm(&self, confirmation: &AgreementConfirmation) -> SignOutcome {
        let ours = format!("{}SMS{:012}-", self.prefix, confirmation.agreement_id);
        let bank = confirmation
            .confirmation_token
            .strip_prefix(&ours)
            .and_then(|rest| rest.split_once('-'))
            .map(|(bank, _)| bank);
        let Some(bank) = bank else {
            return SignOutcome::Refused(refusal("AGREEMENT_UNKNOWN"));
        };
        let expected = self.confirmation_token(
            confirmation.agreement_id,
            bank,
            confirmation.sms_code.expose(),
        );
        if expected != confirmation.confirmation_token {
            return SignOutcome::Refused(refusal(SMS_CODE_WRONG));
        }
        SignOutcome::Signed {
            agreement_no: self.agreement_no(confirmation.agreement_id),
            bank: bank.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::{complete_card_number, complete_resident_id};
    use crate::{
        Channel, ChannelDirection, ChannelOutcome, ChannelRequest, RevokeOutcome, Simulator, ready,
    };
    use masking::Secret;
    use proptest::prelude::*;

    fn card(bin: &str, account: &str) -> String {
        complete_card_number(&format!("{bin}{account}")).unwrap()
    }

    fn id_number(first_17: &str) -> String {
        complete_resident_id(first_17).unwrap()
    }

    fn request(name: &str, id: &str, card_number: &str, phone: Option<&str>) -> AgreementRequest {
        AgreementRequest {
            agreement_id: 7,
            name: Secret::new(name.to_owned()),
            id_number: Secret::new(id.to_owned()),
            card_number: Secret::new(card_number.to_owned()),
            phone: phone.map(|phone| Secret::new(phone.to_owned())),
        }
    }

    fn good(phone: Option<&str>) -> AgreementRequest {
        request(
            "张三",
            "11010519491231002X",
            &card("622202", "020011223"),
            phone,
        )
    }

    fn refused(code: &str) -> SignOutcome {
        SignOutcome::Refused(refusal(code))
    }

    #[test]
    fn three_elements_sign_at_once() {
        let simulator = Simulator::new("simbank");
        assert_eq!(
            ready(simulator.verify_agreement(&good(None))).unwrap(),
            SignOutcome::Signed {
                agreement_no: "SIMBANKAG000000000007".to_owned(),
                bank: "ICBC".to_owned(),
            }
        );
    }

    #[test]
    fn documented_inputs_are_refused() {
        let simulator = Simulator::new("simbank");
        let valid_card = card("621700", "000011112");
        let valid_id = id_number("11010519900307001");
        // One more on the last digit: the check fails.
        let wrong_last = |text: &str| {
            let (head, last) = text.split_at(text.len() - 1);
            let digit = last.parse::<u8>().unwrap_or(9);
            format!("{head}{}", (digit + 1) % 10)
        };
        let cases = [
            (request(" ", &valid_id, &valid_card, None), "NAME_INVALID"),
            (
                request("李四", &wrong_last(&valid_id), &valid_card, None),
                "ID_NUMBER_INVALID",
            ),
            (
                request("李四", &valid_id, &wrong_last(&valid_card), None),
                "CARD_NUMBER_INVALID",
            ),
            (
                request("李四", &valid_id, &card("411111", "111111111"), None),
                "CARD_NOT_SUPPORTED",
            ),
            (
                request("李四", &id_number("11010519900307999"), &valid_card, None),
                "ELEMENTS_MISMATCH",
            ),
        ];
        for (request, code) in cases {
            assert_eq!(
                ready(simulator.verify_agreement(&request)).unwrap(),
                refused(code),
                "{code}"
            );
        }
        let phones = [
            ("1380013800", "PHONE_INVALID"),
            ("23800138000", "PHONE_INVALID"),
            ("13800130000", "PHONE_MISMATCH"),
        ];
        for (phone, code) in phones {
            let request = request("李四", &valid_id, &valid_card, Some(phone));
            assert_eq!(
                ready(simulator.request_sms_code(&request)).unwrap(),
                refused(code),
                "{phone}"
            );
        }
        assert_eq!(
            ready(simulator.request_sms_code(&good(None))).unwrap(),
            refused("PHONE_INVALID")
        );
    }

    fn sent_token(simulator: &Simulator, request: &AgreementRequest) -> String {
        match ready(simulator.request_sms_code(request)).unwrap() {
            SignOutcome::CodeSent {
                confirmation_token,
                bank,
            } => {
                assert_eq!(bank, "ICBC");
                confirmation_token
            }
            other => panic!("no code sent: {other:?}"),
        }
    }

    fn confirmation(token: &str, code: &str) -> AgreementConfirmation {
        AgreementConfirmation {
            agreement_id: 7,
            confirmation_token: token.to_owned(),
            sms_code: Secret::new(code.to_owned()),
        }
    }

    #[test]
    fn quick_pay_signs_with_the_code_sent_to_the_phone() {
        let simulator = Simulator::new("simbank");
        assert_eq!(sms_code("13800138000"), "000831");
        let token = sent_token(&simulator, &good(Some("13800138000")));
        assert!(
            !token.contains("000831"),
            "the token shows the code: {token}"
        );
        assert_eq!(
            ready(simulator.confirm_agreement(&confirmation(&token, "000832"))).unwrap(),
            refused("SMS_CODE_WRONG")
        );
        // Stateless: a restarted institution confirms the same code.
        let restarted = Simulator::new("simbank");
        assert_eq!(
            ready(restarted.confirm_agreement(&confirmation(&token, "000831"))).unwrap(),
            SignOutcome::Signed {
                agreement_no: "SIMBANKAG000000000007".to_owned(),
                bank: "ICBC".to_owned(),
            }
        );
        // Another institution's token, or a token whose bank was changed.
        let other = Simulator::new("simpay");
        assert_eq!(
            ready(other.confirm_agreement(&confirmation(&token, "000831"))).unwrap(),
            refused("AGREEMENT_UNKNOWN")
        );
        let forged = token.replace("-ICBC-", "-CCB-");
        assert_eq!(
            ready(simulator.confirm_agreement(&confirmation(&forged, "000831"))).unwrap(),
            refused("SMS_CODE_WRONG")
        );
    }

    #[test]
    fn debits_and_revocations_name_the_institutions_own_agreements() {
        let simulator = Simulator::new("simbank");
        assert_eq!(
            ready(simulator.revoke_agreement("SIMBANKAG000000000007")).unwrap(),
            RevokeOutcome::Revoked
        );
        assert_eq!(
            ready(simulator.revoke_agreement("SIMPAYAG000000000007")).unwrap(),
            RevokeOutcome::Refused(refusal("AGREEMENT_UNKNOWN"))
        );
        let debit = |agreement_no: &str| ChannelRequest {
            channel_order_id: 1,
            direction: ChannelDirection::Collect,
            amount_minor: 10_000,
            currency: money::Currency::CNY,
            bank: Some("ICBC".to_owned()),
            submitted_at: 0,
            agreement_no: Some(agreement_no.to_owned()),
        };
        assert!(matches!(
            ready(simulator.submit(&debit("SIMBANKAG000000000007"), 0)).unwrap(),
            ChannelOutcome::Success { .. }
        ));
        assert!(matches!(
            ready(simulator.submit(&debit("SIMPAYAG000000000007"), 0)).unwrap(),
            ChannelOutcome::Failed { ref code, .. } if code == "AGREEMENT_UNKNOWN"
        ));
    }

    proptest! {
        #[test]
        fn only_the_code_sent_confirms(
            account in "[0-9]{10}",
            first_17 in "[1-6][0-9]{13}[0-8][0-9]{2}",
            phone in "1[3-9][0-9]{5}[1-9][0-9]{3}",
            guess in "[0-9]{6}",
        ) {
            let simulator = Simulator::new("simbank");
            let request = request("王五", &id_number(&first_17), &card("622588", &account), Some(&phone));
            let debug = format!("{request:?}");
            prop_assert!(!debug.contains(&phone) && !debug.contains(&account) && !debug.contains(&first_17));
            let token = match ready(simulator.request_sms_code(&request)).unwrap() {
                SignOutcome::CodeSent { confirmation_token, .. } => confirmation_token,
                other => return Err(TestCaseError::fail(format!("{other:?}"))),
            };
            let code = sms_code(&phone);
            let signed = ready(simulator.confirm_agreement(&confirmation(&token, &code))).unwrap();
            prop_assert!(matches!(signed, SignOutcome::Signed { ref bank, .. } if bank == "CMB"), "{:?}", signed);
            let guessed = ready(simulator.confirm_agreement(&confirmation(&token, &guess))).unwrap();
            prop_assert_eq!(guess == code, matches!(guessed, SignOutcome::Signed { .. }));
        }
    }
}
