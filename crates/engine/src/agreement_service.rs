//! The agreement service: signing through a channel (three-element or quick
//! pay), confirming a quick-pay signing with its SMS code, and revoking.
//! Each step records the agreement first and the channel's answer after,
//! so a step the channel did not answer is asked again by repeating it.

use crate::agreement::{
    Agreement, AgreementChange, AgreementError, AgreementId, AgreementMethod, AgreementStatus,
    AgreementStore, CONFIRM_ATTEMPTS_MAX, SignRequest,
};
use crate::order::{FundingSource, OrderError};
use crate::routing::{Route, choose_route};
use crate::service::EngineError;
use crate::store::{Created, OrderStore};
use channels::{
    AgreementConfirmation, AgreementRequest, Channel, RevokeOutcome, SMS_CODE_WRONG, SignOutcome,
};
use ledger::TimestampMicros;
use masking::{PersonalDataKey, Secret};
use tracing::warn;

/// Signs, confirms and revokes agreements: records in `store`, institutions
/// in `channels`, chosen by `routes` as card payments are.
#[derive(Debug)]
pub struct AgreementService<S, C> {
    store: S,
    channels: Vec<C>,
    routes: Vec<Route>,
    key: PersonalDataKey,
}

impl<S: AgreementStore + OrderStore, C: Channel> AgreementService<S, C> {
    /// A service whose fingerprints of card and ID numbers are keyed by
    /// `key`: the same key must be used for the life of the store, or the
    /// same card is no longer recognised.
    pub fn new(store: S, channels: Vec<C>, routes: Vec<Route>, key: PersonalDataKey) -> Self {
        AgreementService {
            store,
            channels,
            routes,
            key,
        }
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    /// Signs a member's card. A repeated sign serial is the same signing:
    /// it answers the agreement as it stands, and asks the channel again
    /// only if it never answered. A card the member already signed with the
    /// merchant is refused (`AGREEMENT_EXISTS`).
    pub async fn sign(
        &self,
        request: &SignRequest,
        now: TimestampMicros,
    ) -> Result<Agreement, EngineError> {
        request.validate()?;
        let existing = self
            .store
            .agreement_by_sign_serial(&request.merchant_id, &request.sign_serial)
            .await?;
        let agreement = match existing {
            Some(existing) => self.same_request(request, existing)?,
            None => {
                let channel = self.channel_for(request.bank.as_deref()).await?;
                let new = request.new_agreement(channel.code(), &self.key);
                let signed = self
                    .store
                    .active_agreements_of_card(
                        &new.merchant_id,
                        &new.member_id,
                        &new.card_fingerprint,
                    )
                    .await?;
                if let Some(signed) = signed.first() {
                    return Err(AgreementError::AlreadySigned {
                        member_id: signed.member_id.clone(),
                        agreement_id: signed.id,
                    }
                    .into());
                }
                match self.store.create_agreement(&new, now).await? {
                    Created::New(agreement) => agreement,
                    Created::Existing(agreement) => self.same_request(request, agreement)?,
                }
            }
        };
        self.ask_channel(agreement, request, now).await
    }

    /// Confirms a quick-pay signing with the SMS code the member received.
    /// A wrong code is `SMS_CODE_WRONG` with the attempts left; the last
    /// allowed wrong one fails the agreement (`SMS_ATTEMPTS_EXCEEDED`).
    pub async fn confirm(
        &self,
        merchant_id: &str,
        agreement_id: AgreementId,
        sms_code: &Secret<String>,
        now: TimestampMicros,
    ) -> Result<Agreement, EngineError> {
        let agreement = self.agreement(merchant_id, agreement_id).await?;
        if agreement.status != AgreementStatus::PendingConfirmation {
            return Err(not_pending(&agreement));
        }
        // Counted before the channel is asked, so the bound holds even for
        // attempts made at the same moment.
        let counted = self
            .store
            .count_confirm_attempt(agreement_id, CONFIRM_ATTEMPTS_MAX, now)
            .await?;
        let Some(attempt) = counted else {
            return self.attempts_used_up(merchant_id, agreement_id, now).await;
        };
        let confirmation = AgreementConfirmation {
            agreement_id,
            confirmation_token: agreement.confirmation_token.clone().unwrap_or_default(),
            sms_code: sms_code.clone(),
        };
        let answer = self
            .channel_by_code(&agreement.channel)?
            .confirm_agreement(&confirmation)
            .await
            .map_err(AgreementError::Channel)?;
        match answer {
            SignOutcome::Refused(refusal) if refusal.code == SMS_CODE_WRONG => {
                let attempts_left = CONFIRM_ATTEMPTS_MAX - attempt;
                if attempts_left > 0 {
                    return Err(AgreementError::SmsCodeWrong { attempts_left }.into());
                }
                self.change(agreement, &attempts_exceeded(), now).await?;
                Err(AgreementError::AttemptsExceeded(agreement_id).into())
            }
            outcome => self.apply(agreement, outcome, now).await,
        }
    }

    /// Ends an ACTIVE agreement at its channel, then here; revoking a
    /// revoked agreement answers it as it is.
    pub async fn revoke(
        &self,
        merchant_id: &str,
        agreement_id: AgreementId,
        now: TimestampMicros,
    ) -> Result<Agreement, EngineError> {
        let agreement = self.agreement(merchant_id, agreement_id).await?;
        match agreement.status {
            AgreementStatus::Revoked => return Ok(agreement),
            AgreementStatus::Active => {}
            _ => return Err(not_active(&agreement)),
        }
        let agreement_no = agreement.agreement_no.clone().unwrap_or_default();
        let answer = self
            .channel_by_code(&agreement.channel)?
            .revoke_agreement(&agreement_no)
            .await
            .map_err(AgreementError::Channel)?;
        if let RevokeOutcome::Refused(refusal) = answer {
            return Err(AgreementError::RevokeRefused {
                channel: agreement.channel,
                code: refusal.code,
                message: refusal.message,
            }
            .into());
        }
        let revoked = AgreementChange::to(AgreementStatus::Revoked);
        match self.change(agreement, &revoked, now).await {
            // Revoked at the same moment by another request.
            Err(EngineError::Order(OrderError::ConcurrentChange { .. })) => {
                let current = self.agreement(merchant_id, agreement_id).await?;
                if current.status == AgreementStatus::Revoked {
                    Ok(current)
                } else {
                    Err(not_active(&current))
                }
            }
            other => other,
        }
    }

    /// An agreement of `merchant_id`; another merchant's is not found.
    pub async fn agreement(
        &self,
        merchant_id: &str,
        agreement_id: AgreementId,
    ) -> Result<Agreement, EngineError> {
        self.store
            .agreement(merchant_id, agreement_id)
            .await?
            .ok_or_else(|| AgreementError::NotFound(agreement_id.to_string()).into())
    }

    /// A repeated sign serial: the same signing if it asks the same.
    fn same_request(
        &self,
        request: &SignRequest,
        existing: Agreement,
    ) -> Result<Agreement, EngineError> {
        let asked = request.new_agreement(&existing.channel, &self.key);
        match asked.conflict_with(&existing) {
            None => Ok(existing),
            Some(field) => Err(OrderError::ReferenceConflict {
                reference: "sign_serial",
                field,
            }
            .into()),
        }
    }

    /// The channel a new agreement is signed with: the one card payments
    /// of the card's bank would take.
    async fn channel_for(&self, bank: Option<&str>) -> Result<&C, EngineError> {
        let outages = self.store.bank_outages().await?;
        let route = choose_route(&self.routes, &outages, FundingSource::Card, bank, 1)?;
        self.channel_by_code(&route.channel)
    }

    fn channel_by_code(&self, code: &str) -> Result<&C, EngineError> {
        self.channels
            .iter()
            .find(|channel| channel.code() == code)
            .ok_or(EngineError::NoChannel)
    }

    /// Sends a CREATED agreement's elements to its channel and records the
    /// answer; no answer leaves it CREATED for a repeat to ask again.
    async fn ask_channel(
        &self,
        agreement: Agreement,
        request: &SignRequest,
        now: TimestampMicros,
    ) -> Result<Agreement, EngineError> {
        if agreement.status != AgreementStatus::Created {
            return Ok(agreement);
        }
        let channel = self.channel_by_code(&agreement.channel)?;
        let elements = AgreementRequest {
            agreement_id: agreement.id,
            name: request.name.clone(),
            id_number: request.id_number.clone(),
            card_number: request.card_number.clone(),
            phone: request.phone.clone(),
        };
        let answer = match agreement.method {
            AgreementMethod::ThreeElement => channel.verify_agreement(&elements).await,
            AgreementMethod::QuickPay => channel.request_sms_code(&elements).await,
        };
        match answer {
            Ok(outcome) => self.apply(agreement, outcome, now).await,
            Err(error) => {
                warn!(agreement_id = agreement.id, code = error.code(), %error, "signing not answered; a repeat asks again");
                Ok(agreement)
            }
        }
    }

    /// Records what the channel answered to a signing step.
    async fn apply(
        &self,
        agreement: Agreement,
        outcome: SignOutcome,
        now: TimestampMicros,
    ) -> Result<Agreement, EngineError> {
        let change = match outcome {
            SignOutcome::Signed { agreement_no, bank } => AgreementChange {
                agreement_no: Some(agreement_no),
                bank: Some(bank),
                ..AgreementChange::to(AgreementStatus::Active)
            },
            SignOutcome::CodeSent {
                confirmation_token,
                bank,
            } => AgreementChange {
                confirmation_token: Some(confirmation_token),
                bank: Some(bank),
                ..AgreementChange::to(AgreementStatus::PendingConfirmation)
            },
            SignOutcome::Refused(refusal) => {
                AgreementChange::failed(&refusal.code, &refusal.message)
            }
        };
        self.change(agreement, &change, now).await
    }

    /// A checked transition, stored if the agreement has not moved since
    /// it was read.
    async fn change(
        &self,
        agreement: Agreement,
        change: &AgreementChange,
        now: TimestampMicros,
    ) -> Result<Agreement, EngineError> {
        agreement
            .status
            .transition(agreement.method, change.to)
            .map_err(OrderError::from)?;
        Ok(self
            .store
            .change_agreement(agreement.id, agreement.status, change, now)
            .await?)
    }

    /// No attempt was left to count: fail the agreement if a crash left it
    /// pending after its last wrong code, and say why.
    async fn attempts_used_up(
        &self,
        merchant_id: &str,
        agreement_id: AgreementId,
        now: TimestampMicros,
    ) -> Result<Agreement, EngineError> {
        let current = self.agreement(merchant_id, agreement_id).await?;
        if current.status != AgreementStatus::PendingConfirmation {
            return Err(not_pending(&current));
        }
        self.change(current, &attempts_exceeded(), now).await?;
        Err(AgreementError::AttemptsExceeded(agreement_id).into())
    }
}

fn not_pending(agreement: &Agreement) -> EngineError {
    AgreementError::NotPending {
        id: agreement.id,
        status: agreement.status.as_str(),
    }
    .into()
}

fn not_active(agreement: &Agreement) -> EngineError {
    AgreementError::NotActive {
        agreement: agreement.id.to_string(),
        status: agreement.status.as_str(),
    }
    .into()
}

fn attempts_exceeded() -> AgreementChange {
    AgreementChange::failed(
        "SMS_ATTEMPTS_EXCEEDED",
        "too many wrong SMS codes were tried",
    )
}
