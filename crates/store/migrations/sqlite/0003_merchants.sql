-- Merchants of the payment API and the nonces of their signed requests,
-- kept for the signature's freshness window to refuse replays.
CREATE TABLE merchants (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    signing_key TEXT NOT NULL,
    notify_url TEXT,
    created_at BIGINT NOT NULL
);

CREATE TABLE request_nonces (
    merchant_id TEXT NOT NULL,
    nonce TEXT NOT NULL,
    seen_at BIGINT NOT NULL,
    PRIMARY KEY (merchant_id, nonce)
);
CREATE INDEX request_nonces_seen ON request_nonces (seen_at);
