//! Signed merchant requests: HMAC-SHA256 over a canonical string with a
//! timestamp and a nonce, as payment APIs do.
//!
//! The canonical string is five lines joined by `\n`: the method, the path
//! with its query, the timestamp (Unix seconds), the nonce, and the hex
//! SHA-256 of the body. The signature is its lowercase hex HMAC-SHA256
//! under the merchant's signing key, sent with the merchant id, timestamp
//! and nonce in the `X-Paycore-*` headers. A request older or newer than
//! [`FRESHNESS_SECONDS_MAX`] is refused, and so is a nonce the merchant
//! used within that window.

use crate::error::ApiError;
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::HeaderMap;
use engine::{Merchant, MerchantStore};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

pub const HEADER_MERCHANT: &str = "x-paycore-merchant";
pub const HEADER_TIMESTAMP: &str = "x-paycore-timestamp";
pub const HEADER_NONCE: &str = "x-paycore-nonce";
pub const HEADER_SIGNATURE: &str = "x-paycore-signature";
/// How far a request's timestamp may be from the server's clock.
pub const FRESHNESS_SECONDS_MAX: i64 = 300;
/// Largest signed body read.
const SIGNED_BODY_BYTES_MAX: usize = 1024 * 1024;
const NONCE_LENGTH_MAX: usize = 64;

type HmacSha256 = Hmac<Sha256>;

/// The string a request's signature covers.
pub fn canonical_string(
    method: &str,
    path_and_query: &str,
    timestamp: i64,
    nonce: &str,
    body: &[u8],
) -> String {
    let body_hash = hex::encode(Sha256::digest(body));
    format!("{method}\n{path_and_query}\n{timestamp}\n{nonce}\n{body_hash}")
}

/// The hex HMAC-SHA256 of `message` under `key`.
pub fn sign(key: &str, message: &str) -> String {
    // HMAC takes a key of any length, so this cannot fail.
    match HmacSha256::new_from_slice(key.as_bytes()) {
        Ok(mut mac) => {
            mac.update(message.as_bytes());
            hex::encode(mac.finalize().into_bytes())
        }
        Err(_) => String::new(),
    }
}

/// Compares in constant time.
fn verify(key: &str, message: &str, signature_hex: &str) -> bool {
    let Ok(signature) = hex::decode(signature_hex) else {
        return false;
    };
    let Ok(mut mac) = HmacSha256::new_from_slice(key.as_bytes()) else {
        return false;
    };
    mac.update(message.as_bytes());
    mac.verify_slice(&signature).is_ok()
}

/// The headers a client sends with a signed request.
pub fn signed_headers(
    merchant_id: &str,
    key: &str,
    method: &str,
    path_and_query: &str,
    timestamp: i64,
    nonce: &str,
    body: &[u8],
) -> [(&'static str, String); 4] {
    let signature = sign(
        key,
        &canonical_string(method, path_and_query, timestamp, nonce, body),
    );
    [
        (HEADER_MERCHANT, merchant_id.to_owned()),
        (HEADER_TIMESTAMP, timestamp.to_string()),
        (HEADER_NONCE, nonce.to_owned()),
        (HEADER_SIGNATURE, signature),
    ]
}

fn unauthorized(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::Unauthorized {
        code,
        message: message.into(),
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &'static str) -> Result<&'a str, ApiError> {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .filter(|value| !value.is_empty())
        .ok_or_else(|| unauthorized("MISSING_SIGNATURE", format!("header {name} is missing")))
}

/// A request whose signature was verified: its merchant and raw body.
#[derive(Debug)]
pub struct SignedRequest {
    pub merchant: Merchant,
    pub body: Bytes,
}

impl SignedRequest {
    /// The body as JSON of type `T`.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, ApiError> {
        serde_json::from_slice(&self.body).map_err(|error| ApiError::Malformed(error.to_string()))
    }
}

impl FromRequest<AppState> for SignedRequest {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (parts, body) = request.into_parts();
        let merchant_id = header(&parts.headers, HEADER_MERCHANT)?;
        let timestamp: i64 = header(&parts.headers, HEADER_TIMESTAMP)?
            .parse()
            .map_err(|_| {
                unauthorized(
                    "STALE_TIMESTAMP",
                    "the timestamp is not a number of seconds",
                )
            })?;
        let nonce = header(&parts.headers, HEADER_NONCE)?;
        let signature = header(&parts.headers, HEADER_SIGNATURE)?;
        if nonce.len() > NONCE_LENGTH_MAX {
            return Err(unauthorized(
                "MISSING_SIGNATURE",
                "the nonce is longer than 64 bytes",
            ));
        }
        let now = store::now_micros();
        let now_seconds = now / 1_000_000;
        if (now_seconds - timestamp).abs() > FRESHNESS_SECONDS_MAX {
            return Err(unauthorized(
                "STALE_TIMESTAMP",
                format!(
                    "the timestamp is more than {FRESHNESS_SECONDS_MAX} s from the server's clock"
                ),
            ));
        }
        let body = axum::body::to_bytes(body, SIGNED_BODY_BYTES_MAX)
            .await
            .map_err(|error| ApiError::Malformed(error.to_string()))?;
        let merchant = state.store().merchant(merchant_id).await?.ok_or_else(|| {
            unauthorized("UNKNOWN_MERCHANT", format!("no merchant {merchant_id}"))
        })?;
        let path_and_query = parts.uri.path_and_query().map_or("/", |path| path.as_str());
        let message = canonical_string(
            parts.method.as_str(),
            path_and_query,
            timestamp,
            nonce,
            &body,
        );
        if !verify(merchant.signing_key.expose(), &message, signature) {
            return Err(unauthorized(
                "BAD_SIGNATURE",
                "the signature does not match the request",
            ));
        }
        let window_start = now - 2 * FRESHNESS_SECONDS_MAX * 1_000_000;
        if !state
            .store()
            .remember_nonce(merchant_id, nonce, now, window_start)
            .await?
        {
            return Err(unauthorized(
                "REPLAYED_NONCE",
                "this nonce was used already",
            ));
        }
        Ok(SignedRequest { merchant, body })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_covers_every_part_of_the_request() {
        let message = canonical_string("POST", "/v1/payments", 1_700_000_000, "n1", b"{}");
        let signature = sign("key", &message);
        assert_eq!(signature.len(), 64);
        assert!(verify("key", &message, &signature));
        assert!(!verify("other key", &message, &signature));
        for altered in [
            canonical_string("GET", "/v1/payments", 1_700_000_000, "n1", b"{}"),
            canonical_string("POST", "/v1/payments?x=1", 1_700_000_000, "n1", b"{}"),
            canonical_string("POST", "/v1/payments", 1_700_000_001, "n1", b"{}"),
            canonical_string("POST", "/v1/payments", 1_700_000_000, "n2", b"{}"),
            canonical_string("POST", "/v1/payments", 1_700_000_000, "n1", b"{ }"),
        ] {
            assert!(!verify("key", &altered, &signature), "{altered}");
        }
        assert!(!verify("key", &message, "not hex"));
    }

    #[test]
    fn known_vector() {
        // RFC 4231 test case 2.
        assert_eq!(
            sign("Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
