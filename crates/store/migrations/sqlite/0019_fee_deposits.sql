-- Money paid into merchants' prepaid fee accounts (手续费账户): one record
-- per merchant and reference, posted by the transfer "fee-deposit-ID" (from
-- the merchant's available balance, or from a channel's clearing account
-- for a deposit wired in). A deposit the ledger refused stays PENDING and
-- may be tried again under its reference.
CREATE TABLE fee_deposits (
    id INTEGER PRIMARY KEY,
    merchant_id TEXT NOT NULL,
    reference TEXT NOT NULL,
    currency TEXT NOT NULL,
    amount_minor BIGINT NOT NULL CHECK (amount_minor > 0),
    source TEXT NOT NULL,
    status TEXT NOT NULL,
    transfer_id BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (merchant_id, reference)
);
