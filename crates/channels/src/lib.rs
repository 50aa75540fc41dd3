//! Channels (支付渠道): the external institutions money moves through —
//! banks, card networks, wallets — behind one adapter trait, and a built-in
//! simulator that behaves like a real one.
//!
//! **Architecture Invariant:** a channel adapter knows nothing of orders,
//! the ledger or storage. It is told what to ask the institution and says
//! what the institution answered; an answer it could not get is
//! [`ChannelError::Timeout`], which callers treat as unknown and resolve by
//! query, never by guessing.

mod simulator;

pub use simulator::{SimulatedBehaviour, Simulator};

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
}
