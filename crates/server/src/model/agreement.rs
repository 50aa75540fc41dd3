//! Agreement (签约) shapes of the API. The sign and confirm requests carry
//! personal data: their `Debug` shows none of it, and it goes into the
//! engine as `Secret`s at once.

use crate::error::ApiError;
use crate::timestamp;
use engine::{
    Agreement, AgreementMethod, AgreementStatus, CONFIRM_ATTEMPTS_MAX, Secret, SignRequest,
};
use serde::{Deserialize, Serialize};
use std::fmt;
use utoipa::ToSchema;

/// How a member signs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AgreementMethodName {
    /// 三要素: name, ID number and card number, signed at once.
    ThreeElement,
    /// 快捷签约: the three elements and the phone, confirmed by SMS code.
    QuickPay,
}

impl From<AgreementMethodName> for AgreementMethod {
    fn from(value: AgreementMethodName) -> Self {
        match value {
            AgreementMethodName::ThreeElement => AgreementMethod::ThreeElement,
            AgreementMethodName::QuickPay => AgreementMethod::QuickPay,
        }
    }
}

/// A merchant's request to sign a member's card for debits; the merchant
/// is the signer. The name and the numbers are verified by the channel and
/// never stored: the agreement keeps the masked card and the bank.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignAgreementRequest {
    /// Unique per merchant: a repeat is the same signing and gets the same
    /// agreement.
    #[schema(example = "sign-20261122-0001")]
    pub sign_serial: String,
    /// The member whose card it is; debits name the same payer.
    pub member_id: String,
    pub method: AgreementMethodName,
    /// The card holder's name.
    #[schema(example = "张三")]
    pub name: String,
    /// The holder's 18-character resident ID number.
    #[schema(example = "11010519491231002X")]
    pub id_number: String,
    #[schema(example = "6222020200112233445")]
    pub card_number: String,
    /// The phone the bank holds for the card: `quick_pay` only, where the
    /// SMS code goes.
    #[schema(example = "13800138000")]
    pub phone: Option<String>,
    /// The card's bank, if known, for routing.
    pub bank: Option<String>,
}

impl fmt::Debug for SignAgreementRequest {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("SignAgreementRequest")
            .field("sign_serial", &self.sign_serial)
            .field("member_id", &self.member_id)
            .field("method", &self.method)
            .field("bank", &self.bank)
            .finish_non_exhaustive()
    }
}

impl SignAgreementRequest {
    pub fn into_request(self, merchant_id: &str) -> SignRequest {
        SignRequest {
            merchant_id: merchant_id.to_owned(),
            sign_serial: self.sign_serial,
            member_id: self.member_id,
            method: self.method.into(),
            name: Secret::new(self.name),
            id_number: Secret::new(self.id_number),
            card_number: Secret::new(self.card_number),
            phone: self.phone.map(Secret::new),
            bank: self.bank,
        }
    }
}

/// The SMS code the member received, to confirm a quick-pay signing.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmAgreementRequest {
    #[schema(example = "000831")]
    pub sms_code: String,
}

impl fmt::Debug for ConfirmAgreementRequest {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("ConfirmAgreementRequest { sms_code: *** }")
    }
}

/// An agreement (协议). It shows the card masked, never its number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AgreementResponse {
    pub id: i64,
    pub sign_serial: String,
    pub member_id: String,
    /// `three_element` or `quick_pay`.
    pub method: String,
    pub channel: String,
    /// The card's issuing bank, as the channel answered.
    pub bank: Option<String>,
    #[schema(example = "6222****3445")]
    pub card_masked: String,
    /// Where the SMS code went (quick pay).
    #[schema(example = "138****8000")]
    pub phone_masked: Option<String>,
    /// 协议号: what debits name (`agreement_no` of `POST /v1/payments`),
    /// once ACTIVE.
    pub agreement_no: Option<String>,
    /// CREATED (the channel has not answered: repeat the request),
    /// PENDING_CONFIRMATION (send the SMS code), ACTIVE, FAILED or REVOKED.
    #[schema(example = "ACTIVE")]
    pub status: String,
    /// SMS codes that may still be tried, while PENDING_CONFIRMATION.
    pub confirm_attempts_left: Option<i64>,
    /// The channel's refusal, when FAILED.
    pub failure_code: Option<String>,
    pub failure_message: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl TryFrom<Agreement> for AgreementResponse {
    type Error = ApiError;

    fn try_from(agreement: Agreement) -> Result<Self, ApiError> {
        let pending = agreement.status == AgreementStatus::PendingConfirmation;
        Ok(AgreementResponse {
            id: agreement.id,
            sign_serial: agreement.sign_serial,
            member_id: agreement.member_id,
            method: agreement.method.as_str().to_owned(),
            channel: agreement.channel,
            bank: agreement.bank,
            card_masked: agreement.card_masked,
            phone_masked: agreement.phone_masked,
            agreement_no: agreement.agreement_no,
            status: agreement.status.as_str().to_owned(),
            confirm_attempts_left: pending
                .then(|| (CONFIRM_ATTEMPTS_MAX - agreement.confirm_attempts).max(0)),
            failure_code: agreement.failure_code,
            failure_message: agreement.failure_message,
            created_at: timestamp::format(agreement.created_at)?,
            updated_at: timestamp::format(agreement.updated_at)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_do_not_print_personal_data() {
        let request: SignAgreementRequest = serde_json::from_value(serde_json::json!({
            "sign_serial": "s1", "member_id": "alice", "method": "quick_pay", "name": "张三",
            "id_number": "11010519491231002X", "card_number": "6222020200112233445",
            "phone": "13800138000",
        }))
        .unwrap();
        let confirm = ConfirmAgreementRequest {
            sms_code: "000831".to_owned(),
        };
        let printed = format!(
            "{request:?} {confirm:?} {:?}",
            request.clone().into_request("m1")
        );
        for secret in [
            "张三",
            "11010519491231002X",
            "6222020200112233445",
            "13800138000",
            "000831",
        ] {
            assert!(!printed.contains(secret), "{secret} in {printed}");
        }
        assert!(printed.contains("alice"));
    }
}
