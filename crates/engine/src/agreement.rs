//! Agreements (协议) for debit collection (代扣): a member signs, through a
//! channel, that a merchant may debit its card; the channel answers an
//! agreement number (协议号) that every debit names.
//!
//! Two ways to sign: three-element verification (三要素: name, resident ID
//! number, card number), signed at once, and quick-pay signing (the three
//! elements plus the phone the bank holds, confirmed with the SMS code sent
//! to it). The personal data is never kept: an agreement stores the masked
//! card, the bank, and keyed fingerprints of the card and ID numbers by
//! which the same card is recognised.

use crate::order::{FundingSource, PaymentOrder, REFERENCE_LENGTH_MAX, check_text};
use crate::routing::Route;
use crate::service::{EngineError, PayRequest, Payee, Product};
use crate::status::IllegalTransition;
use crate::store::{Created, OrderStore, OrderStoreError};
use channels::ChannelError;
use ledger::TimestampMicros;
use masking::Secret;
use std::borrow::Cow;
use std::future::Future;
use tracing::warn;

pub use masking::PersonalDataKey;

pub type AgreementId = i64;

/// Most SMS codes tried on one quick-pay signing; the last wrong one fails
/// it, so a code cannot be found by guessing.
pub const CONFIRM_ATTEMPTS_MAX: i64 = 5;
/// Longest holder's name, in characters.
pub const HOLDER_NAME_LENGTH_MAX: usize = 64;
/// Longest card number, ID number and phone number accepted, in bytes.
pub const CARD_NUMBER_LENGTH_MAX: usize = 19;
pub const ID_NUMBER_LENGTH_MAX: usize = 18;
pub const PHONE_LENGTH_MAX: usize = 15;
/// Most agreements one listing returns.
pub const AGREEMENTS_PAGE_MAX: usize = 500;

/// How a member signs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AgreementMethod {
    /// 三要素: name, ID number and card number, verified and signed at once.
    ThreeElement,
    /// 快捷签约: the three elements and the phone, confirmed by SMS code.
    QuickPay,
}

text_enum!(AgreementMethod {
    ThreeElement = "three_element",
    QuickPay = "quick_pay",
});

/// Where an agreement stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AgreementStatus {
    /// Recorded, the channel not yet answered (it timed out, or a crash):
    /// a repeat of the sign request asks it again.
    Created,
    /// Quick pay: the elements agree and an SMS code was sent.
    PendingConfirmation,
    /// Debits may be made under it.
    Active,
    /// Refused by the channel, or too many wrong codes.
    Failed,
    /// Ended by the merchant; no debit may follow.
    Revoked,
}

text_enum!(AgreementStatus {
    Created = "CREATED",
    PendingConfirmation = "PENDING_CONFIRMATION",
    Active = "ACTIVE",
    Failed = "FAILED",
    Revoked = "REVOKED",
});

impl AgreementStatus {
    /// The statuses an agreement signed by `method` may go to from this
    /// one: three-element signing goes straight to ACTIVE or FAILED; only
    /// quick pay waits for a code.
    pub fn successors(self, method: AgreementMethod) -> &'static [AgreementStatus] {
        use AgreementMethod::{QuickPay, ThreeElement};
        use AgreementStatus::{Active, Created, Failed, PendingConfirmation, Revoked};
        match (self, method) {
            (Created, ThreeElement) => &[Active, Failed],
            (Created, QuickPay) => &[PendingConfirmation, Failed],
            (PendingConfirmation, QuickPay) => &[Active, Failed],
            (PendingConfirmation, ThreeElement) | (Failed | Revoked, _) => &[],
            (Active, _) => &[Revoked],
        }
    }

    pub fn is_final(self) -> bool {
        matches!(self, AgreementStatus::Failed | AgreementStatus::Revoked)
    }

    /// `next` if an agreement signed by `method` may go there from here.
    pub fn transition(
        self,
        method: AgreementMethod,
        next: AgreementStatus,
    ) -> Result<AgreementStatus, IllegalTransition> {
        if self.successors(method).contains(&next) {
            Ok(next)
        } else {
            Err(IllegalTransition {
                entity: "agreement",
                from: self.as_str(),
                to: next.as_str(),
            })
        }
    }
}

/// 协议: a member's consent that a merchant may debit its card through a
/// channel. Holds no personal data in clear.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agreement {
    pub id: AgreementId,
    pub merchant_id: String,
    /// The merchant's sign request serial: a repeat is the same signing.
    pub sign_serial: String,
    pub member_id: String,
    pub method: AgreementMethod,
    pub channel: String,
    /// The card's issuing bank, as the channel answered.
    pub bank: Option<String>,
    /// `6222****1234`.
    pub card_masked: String,
    /// Keyed fingerprints (HMAC-SHA256) of the card and ID numbers.
    pub card_fingerprint: String,
    pub id_number_fingerprint: String,
    /// `138****8000`, quick pay only.
    pub phone_masked: Option<String>,
    /// The channel's agreement number (协议号), once ACTIVE.
    pub agreement_no: Option<String>,
    pub status: AgreementStatus,
    /// What the channel answered when it sent the SMS code (quick pay).
    pub confirmation_token: Option<String>,
    pub confirm_attempts: i64,
    /// The channel's refusal, when FAILED.
    pub failure_code: Option<String>,
    pub failure_message: Option<String>,
    pub created_at: TimestampMicros,
    pub updated_at: TimestampMicros,
}

/// An agreement as first recorded (CREATED).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAgreement {
    pub merchant_id: String,
    pub sign_serial: String,
    pub member_id: String,
    pub method: AgreementMethod,
    pub channel: String,
    pub card_masked: String,
    pub card_fingerprint: String,
    pub id_number_fingerprint: String,
    pub phone_masked: Option<String>,
}

impl NewAgreement {
    /// The field in which a stored agreement with the same sign serial
    /// differs from this one, if any. Personal data is compared by
    /// fingerprint.
    pub fn conflict_with(&self, agreement: &Agreement) -> Option<&'static str> {
        if self.member_id != agreement.member_id {
            Some("member_id")
        } else if self.method != agreement.method {
            Some("method")
        } else if self.card_fingerprint != agreement.card_fingerprint {
            Some("card_number")
        } else if self.id_number_fingerprint != agreement.id_number_fingerprint {
            Some("id_number")
        } else if self.phone_masked != agreement.phone_masked {
            Some("phone")
        } else {
            None
        }
    }
}

/// A status change of an agreement with what the channel answered; the
/// fields given are set, the others kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgreementChange {
    pub to: AgreementStatus,
    pub agreement_no: Option<String>,
    pub bank: Option<String>,
    pub confirmation_token: Option<String>,
    pub failure_code: Option<String>,
    pub failure_message: Option<String>,
}

impl AgreementChange {
    pub fn to(status: AgreementStatus) -> AgreementChange {
        AgreementChange {
            to: status,
            agreement_no: None,
            bank: None,
            confirmation_token: None,
            failure_code: None,
            failure_message: None,
        }
    }

    pub fn failed(code: &str, message: &str) -> AgreementChange {
        AgreementChange {
            failure_code: Some(code.to_owned()),
            failure_message: Some(message.to_owned()),
            ..AgreementChange::to(AgreementStatus::Failed)
        }
    }
}

/// A merchant's request to sign a member's card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignRequest {
    pub merchant_id: String,
    pub sign_serial: String,
    pub member_id: String,
    pub method: AgreementMethod,
    pub name: Secret<String>,
    pub id_number: Secret<String>,
    pub card_number: Secret<String>,
    /// Quick pay only.
    pub phone: Option<Secret<String>>,
    /// The card's bank if the merchant knows it, for routing.
    pub bank: Option<String>,
}

fn invalid(field: &'static str, reason: &'static str) -> AgreementError {
    AgreementError::Invalid { field, reason }
}

fn check_secret(
    field: &'static str,
    value: &Secret<String>,
    length_max: usize,
    digits_only: bool,
) -> Result<(), AgreementError> {
    let value = value.expose();
    if value.is_empty() || value.len() > length_max {
        return Err(invalid(field, "is empty or too long"));
    }
    if digits_only && !value.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(invalid(field, "must be digits only"));
    }
    Ok(())
}

impl SignRequest {
    /// Checks the request's shape. Whether the elements are right is the
    /// channel's to say (a FAILED agreement records its refusal).
    pub fn validate(&self) -> Result<(), EngineError> {
        check_text("merchant_id", &self.merchant_id, REFERENCE_LENGTH_MAX)?;
        check_text("sign_serial", &self.sign_serial, REFERENCE_LENGTH_MAX)?;
        check_text("member_id", &self.member_id, REFERENCE_LENGTH_MAX)?;
        if let Some(bank) = &self.bank {
            check_text("bank", bank, REFERENCE_LENGTH_MAX)?;
        }
        if self.name.expose().chars().count() > HOLDER_NAME_LENGTH_MAX {
            return Err(invalid("name", "is too long").into());
        }
        check_secret("id_number", &self.id_number, ID_NUMBER_LENGTH_MAX, false)?;
        check_secret(
            "card_number",
            &self.card_number,
            CARD_NUMBER_LENGTH_MAX,
            true,
        )?;
        match (&self.phone, self.method) {
            (Some(phone), AgreementMethod::QuickPay) => {
                check_secret("phone", phone, PHONE_LENGTH_MAX, true)?;
            }
            (None, AgreementMethod::QuickPay) => {
                return Err(invalid("phone", "is needed for quick-pay signing").into());
            }
            (Some(_), AgreementMethod::ThreeElement) => {
                return Err(invalid("phone", "is for quick-pay signing only").into());
            }
            (None, AgreementMethod::ThreeElement) => {}
        }
        Ok(())
    }

    /// The agreement to record: masks and fingerprints, never the numbers.
    pub fn new_agreement(&self, channel: &str, key: &PersonalDataKey) -> NewAgreement {
        NewAgreement {
            merchant_id: self.merchant_id.clone(),
            sign_serial: self.sign_serial.clone(),
            member_id: self.member_id.clone(),
            method: self.method,
            channel: channel.to_owned(),
            card_masked: masking::mask_card_number(self.card_number.expose()),
            card_fingerprint: key.fingerprint("card", self.card_number.expose()),
            id_number_fingerprint: key
                .fingerprint("id_number", &self.id_number.expose().to_ascii_uppercase()),
            phone_masked: self
                .phone
                .as_ref()
                .map(|phone| masking::mask_phone(phone.expose())),
        }
    }
}

/// Why an agreement, or a debit under one, was refused.
#[derive(Debug, thiserror::Error)]
pub enum AgreementError {
    #[error("{field} {reason}")]
    Invalid {
        field: &'static str,
        reason: &'static str,
    },
    #[error("product {0} debits only under an agreement: name its agreement_no")]
    Required(String),
    #[error("product {0} takes no agreement")]
    NotAccepted(String),
    /// No such agreement of this merchant (another merchant's is not
    /// found either).
    #[error("agreement {0} not found")]
    NotFound(String),
    #[error("agreement {agreement} is {status}, not ACTIVE")]
    NotActive {
        agreement: String,
        status: &'static str,
    },
    #[error("agreement {agreement} is not member {payer_id}'s")]
    MemberMismatch { agreement: String, payer_id: String },
    #[error("agreement {agreement} is for a card of {agreement_bank}, not of {bank}")]
    BankMismatch {
        agreement: String,
        agreement_bank: String,
        bank: String,
    },
    #[error("agreement {id} is {status}: only a PENDING_CONFIRMATION agreement takes an SMS code")]
    NotPending {
        id: AgreementId,
        status: &'static str,
    },
    #[error("the SMS code is wrong; {attempts_left} attempts left")]
    SmsCodeWrong { attempts_left: i64 },
    #[error("too many wrong SMS codes: agreement {0} failed")]
    AttemptsExceeded(AgreementId),
    /// The member signed this card with the merchant before.
    #[error("member {member_id} already has agreement {agreement_id} for this card")]
    AlreadySigned {
        member_id: String,
        agreement_id: AgreementId,
    },
    #[error("channel {channel} refused to revoke the agreement: {code} {message}")]
    RevokeRefused {
        channel: String,
        code: String,
        message: String,
    },
    /// The channel did not answer: nothing changed; ask again.
    #[error(transparent)]
    Channel(ChannelError),
}

impl AgreementError {
    pub fn code(&self) -> &'static str {
        match self {
            AgreementError::Invalid { .. } => "INVALID_AGREEMENT",
            AgreementError::Required(_) => "AGREEMENT_REQUIRED",
            AgreementError::NotAccepted(_) => "AGREEMENT_NOT_ACCEPTED",
            AgreementError::NotFound(_) => "AGREEMENT_NOT_FOUND",
            AgreementError::NotActive { .. } => "AGREEMENT_NOT_ACTIVE",
            AgreementError::MemberMismatch { .. } => "AGREEMENT_MEMBER_MISMATCH",
            AgreementError::BankMismatch { .. } => "AGREEMENT_BANK_MISMATCH",
            AgreementError::NotPending { .. } => "AGREEMENT_NOT_PENDING",
            AgreementError::SmsCodeWrong { .. } => "SMS_CODE_WRONG",
            AgreementError::AttemptsExceeded(_) => "SMS_ATTEMPTS_EXCEEDED",
            AgreementError::AlreadySigned { .. } => "AGREEMENT_EXISTS",
            AgreementError::RevokeRefused { .. } => "AGREEMENT_REVOKE_REFUSED",
            AgreementError::Channel(error) => error.code(),
        }
    }
}

/// Where agreements live. Every read is scoped by merchant: a merchant
/// never sees another merchant's agreements.
pub trait AgreementStore: Send + Sync {
    /// Records a CREATED agreement, or finds the one with the same sign
    /// serial (`Created::Existing`, whatever its fields).
    fn create_agreement(
        &self,
        agreement: &NewAgreement,
        now: TimestampMicros,
    ) -> impl Future<Output = Result<Created<Agreement>, OrderStoreError>> + Send;

    fn agreement(
        &self,
        merchant_id: &str,
        agreement_id: AgreementId,
    ) -> impl Future<Output = Result<Option<Agreement>, OrderStoreError>> + Send;

    fn agreement_by_sign_serial(
        &self,
        merchant_id: &str,
        sign_serial: &str,
    ) -> impl Future<Output = Result<Option<Agreement>, OrderStoreError>> + Send;

    fn agreement_by_no(
        &self,
        merchant_id: &str,
        agreement_no: &str,
    ) -> impl Future<Output = Result<Option<Agreement>, OrderStoreError>> + Send;

    /// The member's ACTIVE agreements with the merchant for the card of
    /// this fingerprint.
    fn active_agreements_of_card(
        &self,
        merchant_id: &str,
        member_id: &str,
        card_fingerprint: &str,
    ) -> impl Future<Output = Result<Vec<Agreement>, OrderStoreError>> + Send;

    /// The merchant's agreements with ids above `after_id`, by id, at most
    /// `limit` (capped at [`AGREEMENTS_PAGE_MAX`]).
    fn agreements(
        &self,
        merchant_id: &str,
        after_id: AgreementId,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Agreement>, OrderStoreError>> + Send;

    /// Applies `change` if the agreement is still in `from`
    /// (`CONCURRENT_CHANGE` otherwise); the caller checked the transition.
    fn change_agreement(
        &self,
        agreement_id: AgreementId,
        from: AgreementStatus,
        change: &AgreementChange,
        now: TimestampMicros,
    ) -> impl Future<Output = Result<Agreement, OrderStoreError>> + Send;

    /// Counts one SMS code attempt of a PENDING_CONFIRMATION agreement that
    /// has had fewer than `attempts_max`, in one statement so concurrent
    /// attempts cannot pass the bound; the new count, or `None` if none was
    /// left or it is no longer pending.
    fn count_confirm_attempt(
        &self,
        agreement_id: AgreementId,
        attempts_max: i64,
        now: TimestampMicros,
    ) -> impl Future<Output = Result<Option<i64>, OrderStoreError>> + Send;
}

impl From<AgreementError> for EngineError {
    fn from(error: AgreementError) -> Self {
        EngineError::Agreement(error)
    }
}

impl Product {
    /// 代扣: a merchant debits a member's card under the member's ACTIVE
    /// agreement with it.
    pub fn debit_collection() -> Product {
        Product {
            code: "debit_collection".to_owned(),
            payee: Payee::Merchant,
            sources: vec![FundingSource::Card],
            requires_agreement: true,
        }
    }
}

/// Why an agreement cannot carry a debit by `request`, if it cannot.
fn debit_refusal(agreement: &Agreement, request: &PayRequest) -> Option<AgreementError> {
    let name = agreement.agreement_no.clone().unwrap_or_default();
    if agreement.status != AgreementStatus::Active {
        return Some(AgreementError::NotActive {
            agreement: name,
            status: agreement.status.as_str(),
        });
    }
    if agreement.member_id != request.payer_id {
        return Some(AgreementError::MemberMismatch {
            agreement: name,
            payer_id: request.payer_id.clone(),
        });
    }
    match (&request.bank, &agreement.bank) {
        (Some(bank), Some(agreement_bank)) if bank != agreement_bank => {
            Some(AgreementError::BankMismatch {
                agreement: name,
                agreement_bank: agreement_bank.clone(),
                bank: bank.clone(),
            })
        }
        _ => None,
    }
}

/// The pay request as the product's flow takes it: a product that
/// requires an agreement needs an ACTIVE one of the same merchant and
/// member, whose bank fills in the payer's bank; any other product takes
/// none. A refusal is answered before anything is created, except to the
/// repeat of a request serial that was accepted (while the agreement was
/// still active): the repeat gets the first answer.
pub(crate) async fn debit_request<'r, S: AgreementStore + OrderStore>(
    store: &S,
    product: &Product,
    request: &'r PayRequest,
) -> Result<Cow<'r, PayRequest>, EngineError> {
    let agreement_no = match (&request.agreement_no, product.requires_agreement) {
        (None, false) => return Ok(Cow::Borrowed(request)),
        (Some(_), false) => return Err(AgreementError::NotAccepted(product.code.clone()).into()),
        (None, true) => return Err(AgreementError::Required(product.code.clone()).into()),
        (Some(agreement_no), true) => agreement_no,
    };
    let agreement = store
        .agreement_by_no(&request.merchant_id, agreement_no)
        .await?;
    let refusal = match &agreement {
        None => Some(AgreementError::NotFound(agreement_no.clone())),
        Some(agreement) => debit_refusal(agreement, request),
    };
    if let Some(refusal) = refusal {
        let accepted_before = store
            .payment_by_request_serial(&request.merchant_id, &request.request_serial)
            .await?
            .is_some();
        if !accepted_before {
            return Err(refusal.into());
        }
    }
    match agreement.and_then(|agreement| agreement.bank) {
        Some(bank) if request.bank.is_none() => Ok(Cow::Owned(PayRequest {
            bank: Some(bank),
            ..request.clone()
        })),
        _ => Ok(Cow::Borrowed(request)),
    }
}

/// The routes a payment's channel order may take: a debit goes only
/// through the channel its agreement was signed with, and through none once
/// the agreement is no longer ACTIVE (revoked between the payment and its
/// channel order); other payments take every route.
pub(crate) async fn routes_for<'r, S: AgreementStore>(
    store: &S,
    routes: &'r [Route],
    payment: &PaymentOrder,
) -> Result<Cow<'r, [Route]>, EngineError> {
    let Some(agreement_no) = &payment.agreement_no else {
        return Ok(Cow::Borrowed(routes));
    };
    let agreement = store
        .agreement_by_no(&payment.merchant_id, agreement_no)
        .await?;
    let channel = match agreement {
        Some(agreement) if agreement.status == AgreementStatus::Active => agreement.channel,
        other => {
            warn!(
                payment_id = payment.id,
                status = other.map_or("missing", |agreement| agreement.status.as_str()),
                "the debit's agreement is no longer active: no route"
            );
            return Ok(Cow::Owned(Vec::new()));
        }
    };
    Ok(Cow::Owned(
        routes
            .iter()
            .filter(|route| route.channel == channel)
            .cloned()
            .collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use AgreementMethod::{QuickPay, ThreeElement};
    use AgreementStatus::{Active, Created, Failed, PendingConfirmation, Revoked};

    #[test]
    fn every_legal_transition_is_listed_and_no_other() {
        let legal = [
            (ThreeElement, Created, Active),
            (ThreeElement, Created, Failed),
            (ThreeElement, Active, Revoked),
            (QuickPay, Created, PendingConfirmation),
            (QuickPay, Created, Failed),
            (QuickPay, PendingConfirmation, Active),
            (QuickPay, PendingConfirmation, Failed),
            (QuickPay, Active, Revoked),
        ];
        for method in AgreementMethod::ALL {
            for from in AgreementStatus::ALL {
                for to in AgreementStatus::ALL {
                    let listed = legal.contains(&(*method, *from, *to));
                    assert_eq!(
                        from.transition(*method, *to).is_ok(),
                        listed,
                        "{method:?}: {from:?} -> {to:?}"
                    );
                }
            }
        }
        for status in AgreementStatus::ALL {
            // Final means nothing follows by either method (PENDING_CONFIRMATION
            // is a dead end only for three-element signing, which never
            // enters it).
            let followed = AgreementMethod::ALL
                .iter()
                .any(|method| !status.successors(*method).is_empty());
            assert_eq!(status.is_final(), !followed, "{status:?}");
            assert_eq!(AgreementStatus::parse(status.as_str()), Some(*status));
        }
        let error = Revoked.transition(QuickPay, Active).unwrap_err();
        assert_eq!(
            error.to_string(),
            "agreement cannot go from REVOKED to ACTIVE"
        );
    }

    fn sign_request(method: AgreementMethod, phone: Option<&str>) -> SignRequest {
        SignRequest {
            merchant_id: "m1".to_owned(),
            sign_serial: "sign-1".to_owned(),
            member_id: "alice".to_owned(),
            method,
            name: Secret::new("张三".to_owned()),
            id_number: Secret::new("11010519491231002x".to_owned()),
            card_number: Secret::new("6222020200112233445".to_owned()),
            phone: phone.map(|phone| Secret::new(phone.to_owned())),
            bank: None,
        }
    }

    #[test]
    fn a_request_keeps_no_personal_data() {
        let request = sign_request(QuickPay, Some("13800138000"));
        request.validate().unwrap();
        let debug = format!("{request:?}");
        for secret in ["张三", "110105", "622202", "13800138000"] {
            assert!(!debug.contains(secret), "{secret} in {debug}");
        }
        let new = request.new_agreement("simbank", &PersonalDataKey::development());
        assert_eq!(new.card_masked, "6222****3445");
        assert_eq!(new.phone_masked.as_deref(), Some("138****8000"));
        let stored = format!("{new:?}");
        for secret in ["张三", "110105194912", "62220202001122", "13800138000"] {
            assert!(!stored.contains(secret), "{secret} in {stored}");
        }
        // The ID number's check character is compared in either case.
        let upper = SignRequest {
            id_number: Secret::new("11010519491231002X".to_owned()),
            ..request.clone()
        };
        let key = PersonalDataKey::development();
        assert_eq!(
            upper.new_agreement("simbank", &key).id_number_fingerprint,
            new.id_number_fingerprint
        );
    }

    #[test]
    fn requests_of_the_wrong_shape_are_refused() {
        let code = |request: SignRequest| request.validate().unwrap_err().code();
        assert_eq!(code(sign_request(QuickPay, None)), "INVALID_AGREEMENT");
        assert_eq!(
            code(sign_request(ThreeElement, Some("13800138000"))),
            "INVALID_AGREEMENT"
        );
        let letters = SignRequest {
            card_number: Secret::new("6222-0202".to_owned()),
            ..sign_request(ThreeElement, None)
        };
        assert_eq!(code(letters), "INVALID_AGREEMENT");
        let no_serial = SignRequest {
            sign_serial: String::new(),
            ..sign_request(ThreeElement, None)
        };
        assert_eq!(code(no_serial), "INVALID_ORDER");
    }
}
