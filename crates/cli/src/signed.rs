//! A merchant's HTTP client: every request signed with its key.

use anyhow::{Context, Result};
use serde_json::Value;
use std::sync::atomic::{AtomicU64, Ordering};

pub struct MerchantClient {
    http: reqwest::Client,
    base: String,
    pub merchant_id: String,
    key: String,
    nonce: AtomicU64,
}

impl MerchantClient {
    /// Registers `merchant_id` (an operator call) and keeps its key.
    pub async fn register(
        http: &reqwest::Client,
        base: &str,
        merchant_id: &str,
        name: &str,
    ) -> Result<Self> {
        let answer: Value = http
            .post(format!("{base}/v1/merchants"))
            .json(&serde_json::json!({"id": merchant_id, "name": name}))
            .send()
            .await
            .context("registering a merchant")?
            .json()
            .await?;
        let key = answer["signing_key"]
            .as_str()
            .with_context(|| format!("no signing key in {answer}"))?
            .to_owned();
        Ok(MerchantClient {
            http: http.clone(),
            base: base.to_owned(),
            merchant_id: merchant_id.to_owned(),
            key,
            nonce: AtomicU64::new(0),
        })
    }

    /// Sends a signed request; returns the HTTP status and the JSON body.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(u16, Value)> {
        let bytes = match body {
            Some(body) => serde_json::to_vec(body)?,
            None => Vec::new(),
        };
        let nonce = self.nonce.fetch_add(1, Ordering::Relaxed);
        let headers = server::signature::signed_headers(
            &self.merchant_id,
            &self.key,
            method,
            path,
            store::now_micros() / 1_000_000,
            &format!("{}-{nonce}", store::now_micros()),
            &bytes,
        );
        let url = format!("{}{path}", self.base);
        let mut request = match method {
            "GET" => self.http.get(url),
            _ => self
                .http
                .post(url)
                .header("content-type", "application/json")
                .body(bytes),
        };
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("calling {path}"))?;
        let status = response.status().as_u16();
        let answer = response
            .json()
            .await
            .with_context(|| format!("reading {path}"))?;
        Ok((status, answer))
    }
}
