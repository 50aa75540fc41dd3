//! Merchants: who may call the payment API, with the key their requests
//! are signed with.

use crate::order::{OrderError, REFERENCE_LENGTH_MAX, SUBJECT_LENGTH_MAX, check_text};
use crate::store::OrderStoreError;
use ledger::TimestampMicros;
use std::future::Future;

pub use masking::Secret;

/// A merchant of the platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Merchant {
    pub id: String,
    pub name: String,
    /// The shared key of its HMAC-SHA256 request signatures.
    pub signing_key: Secret<String>,
    /// Where its asynchronous notifications go.
    pub notify_url: Option<String>,
    pub created_at: TimestampMicros,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMerchant {
    pub id: String,
    pub name: String,
    pub notify_url: Option<String>,
}

impl NewMerchant {
    pub fn validate(&self) -> Result<(), OrderError> {
        check_text("merchant id", &self.id, REFERENCE_LENGTH_MAX)?;
        if !self
            .id
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_')
        {
            return Err(OrderError::InvalidText {
                field: "merchant id (letters, digits, - and _)",
                max: REFERENCE_LENGTH_MAX,
            });
        }
        check_text("name", &self.name, SUBJECT_LENGTH_MAX)?;
        if let Some(url) = &self.notify_url {
            check_text("notify_url", url, SUBJECT_LENGTH_MAX)?;
        }
        Ok(())
    }
}

/// Where merchants and the nonces of their signed requests are kept.
pub trait MerchantStore: Send + Sync {
    /// Registers a merchant with `signing_key`; an existing id is
    /// `REFERENCE_CONFLICT`.
    fn create_merchant(
        &self,
        merchant: &NewMerchant,
        signing_key: &Secret<String>,
        now: TimestampMicros,
    ) -> impl Future<Output = Result<Merchant, OrderStoreError>> + Send;

    fn merchant(
        &self,
        merchant_id: &str,
    ) -> impl Future<Output = Result<Option<Merchant>, OrderStoreError>> + Send;

    /// Records a request nonce; false when the merchant used it before
    /// (a replay). Nonces seen before `forget_before` are dropped first.
    fn remember_nonce(
        &self,
        merchant_id: &str,
        nonce: &str,
        now: TimestampMicros,
        forget_before: TimestampMicros,
    ) -> impl Future<Output = Result<bool, OrderStoreError>> + Send;
}
