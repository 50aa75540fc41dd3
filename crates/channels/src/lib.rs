//! Channels (支付渠道): the external institutions money moves through —
//! banks, card networks, wallets — behind one adapter trait, and a built-in
//! simulator that behaves like a real one.
//!
//! **Architecture Invariant:** a channel adapter knows nothing of orders,
//! the ledger or storage. It is told what to ask the institution and says
//! what the institution answered; an answer it could not get is
//! [`ChannelError::Timeout`], which callers treat as unknown and resolve by
//! query, never by guessing.

pub mod checks;
mod signing;
mod simulator;

pub use signing::{SIMULATED_CARD_BINS, SMS_CODE_DIGITS, SimulatedSigning, sms_code};
pub use simulator::{SimulatedBehaviour, Simulator};

use masking::Secret;
use money::Currency;
use std::future::Future;

/// Microseconds since the Unix epoch, UTC.
pub type TimestampMicros = i64;

/// What one channel order asks of an institution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelRequest {
    /// Our channel order id, sent as the institution's merchant order number.
    pub channel_order_id: i64,
    pub direction: ChannelDirection,
    pub amount_minor: i64,
    pub currency: Currency,
    /// The payer's (collect) or payee's (payout) bank, when known.
    pub bank: Option<String>,
    /// When the request was first sent; a query repeats it.
    pub submitted_at: TimestampMicros,
    /// 代扣: the institution's agreement number (协议号) a debit is made
    /// under; `None` for payments the payer makes itself.
    pub agreement_no: Option<String>,
}

/// Money in from, or out to, the institution's customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChannelDirection {
    Collect,
    Payout,
    Refund,
}

/// What the institution said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChannelOutcome {
    Success {
        channel_transaction_id: String,
        /// The institution's business date of the transaction, as
        /// `YYYYMMDD`: its day cuts over at its own cutoff (渠道日切).
        business_date: String,
        fee_minor: i64,
    },
    Failed {
        code: String,
        message: String,
    },
    /// Accepted, result not yet known: query later or wait for the
    /// notification.
    Processing {
        channel_transaction_id: Option<String>,
    },
}

/// Why no answer was had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChannelError {
    /// No answer in time: the request may or may not have been executed.
    #[error("channel {channel} did not answer in time")]
    Timeout { channel: String },
    /// The institution refuses this bank for now (an outage).
    #[error("bank {bank} is down at channel {channel}")]
    BankDown { channel: String, bank: String },
    #[error("channel {channel} does not know order {channel_order_id}")]
    UnknownOrder {
        channel: String,
        channel_order_id: i64,
    },
    #[error("malformed notification: {0}")]
    MalformedNotification(String),
}

impl ChannelError {
    pub fn code(&self) -> &'static str {
        match self {
            ChannelError::Timeout { .. } => "CHANNEL_TIMEOUT",
            ChannelError::BankDown { .. } => "BANK_DOWN",
            ChannelError::UnknownOrder { .. } => "CHANNEL_UNKNOWN_ORDER",
            ChannelError::MalformedNotification(_) => "MALFORMED_NOTIFICATION",
        }
    }

    /// True when the request may have been executed: the order's state is
    /// unknown and must be queried.
    pub fn outcome_unknown(&self) -> bool {
        matches!(self, ChannelError::Timeout { .. })
    }
}

/// An institution's asynchronous notification, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelNotification {
    pub channel_order_id: i64,
    pub outcome: ChannelOutcome,
}

/// 签约: what an institution is asked to verify when a member signs an
/// agreement for debits from a card. The elements are personal data: they
/// travel as [`Secret`]s and the institution's answer never repeats them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgreementRequest {
    /// Our agreement id, sent as the institution's sign request number.
    pub agreement_id: i64,
    /// The three elements (三要素): the holder's name, resident ID number
    /// and card number.
    pub name: Secret<String>,
    pub id_number: Secret<String>,
    pub card_number: Secret<String>,
    /// The phone the bank holds for the card: quick-pay signing only.
    pub phone: Option<Secret<String>>,
}

/// The SMS code a member received, sent back to confirm a quick-pay
/// signing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgreementConfirmation {
    pub agreement_id: i64,
    /// What the institution answered when it sent the code.
    pub confirmation_token: String,
    pub sms_code: Secret<String>,
}

/// An institution's refusal, in its own words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: String,
    pub message: String,
}

/// The refusal code of a wrong SMS code: the member may try again.
pub const SMS_CODE_WRONG: &str = "SMS_CODE_WRONG";

/// What an institution answered to a signing step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignOutcome {
    /// Signed: the institution's agreement number (协议号) and the card's
    /// issuing bank.
    Signed {
        agreement_no: String,
        bank: String,
    },
    /// The elements agree and an SMS code went to the phone; the signing
    /// is confirmed with the code and this token.
    CodeSent {
        confirmation_token: String,
        bank: String,
    },
    Refused(Refusal),
}

/// What an institution answered to a revocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevokeOutcome {
    Revoked,
    Refused(Refusal),
}

/// One external institution.
pub trait Channel: Send + Sync {
    /// The channel's code in routing tables and statements: `simbank`.
    fn code(&self) -> &str;

    /// Sends a collect, payout or refund request.
    fn submit(
        &self,
        request: &ChannelRequest,
        now: TimestampMicros,
    ) -> impl Future<Output = Result<ChannelOutcome, ChannelError>> + Send;

    /// Asks where an earlier request stands.
    fn query(
        &self,
        request: &ChannelRequest,
        now: TimestampMicros,
    ) -> impl Future<Output = Result<ChannelOutcome, ChannelError>> + Send;

    /// Reads a notification the institution sent to us.
    fn parse_notification(&self, body: &str) -> Result<ChannelNotification, ChannelError>;

    /// Three-element signing (三要素): verifies name, ID number and card
    /// number together and signs at once (`Signed` or `Refused`).
    fn verify_agreement(
        &self,
        request: &AgreementRequest,
    ) -> impl Future<Output = Result<SignOutcome, ChannelError>> + Send;

    /// Quick-pay signing, first step: verifies the elements and the phone
    /// and sends an SMS code to it (`CodeSent` or `Refused`).
    fn request_sms_code(
        &self,
        request: &AgreementRequest,
    ) -> impl Future<Output = Result<SignOutcome, ChannelError>> + Send;

    /// Quick-pay signing, second step: the code the member received
    /// (`Signed`, or `Refused` with `SMS_CODE_WRONG`).
    fn confirm_agreement(
        &self,
        confirmation: &AgreementConfirmation,
    ) -> impl Future<Output = Result<SignOutcome, ChannelError>> + Send;

    /// Ends an agreement: no debit may be made under it afterwards.
    fn revoke_agreement(
        &self,
        agreement_no: &str,
    ) -> impl Future<Output = Result<RevokeOutcome, ChannelError>> + Send;
}

/// The simulator never waits, so one poll completes its futures.
#[cfg(test)]
#[allow(clippy::panic)]
pub(crate) fn ready<F: Future>(future: F) -> F::Output {
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};
    let mut context = Context::from_waker(Waker::noop());
    match pin!(future).poll(&mut context) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("the simulator never waits"),
    }
}
