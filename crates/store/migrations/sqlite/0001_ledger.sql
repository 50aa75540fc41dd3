-- The ledger: accounts with running totals, transfers, append-only entries,
-- and subject totals for the 总分核对 check.
CREATE TABLE accounts (
    id INTEGER PRIMARY KEY,
    subject_code TEXT NOT NULL,
    subject_class TEXT NOT NULL,
    kind TEXT NOT NULL,
    owner_kind TEXT NOT NULL,
    owner_id TEXT NOT NULL,
    currency TEXT NOT NULL,
    -- NULL: unlimited overdraft.
    overdraft_limit_minor BIGINT,
    debits_posted_minor BIGINT NOT NULL DEFAULT 0,
    credits_posted_minor BIGINT NOT NULL DEFAULT 0,
    debits_pending_minor BIGINT NOT NULL DEFAULT 0,
    credits_pending_minor BIGINT NOT NULL DEFAULT 0,
    frozen_minor BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    UNIQUE (owner_kind, owner_id, kind, currency)
);

CREATE TABLE transfers (
    id INTEGER PRIMARY KEY,
    idempotency_key TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    target_id BIGINT,
    account_id BIGINT,
    amount_minor BIGINT,
    timeout_seconds BIGINT,
    expires_at BIGINT,
    description TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX transfers_pending_expiry ON transfers (expires_at) WHERE status = 'pending';

CREATE TABLE entries (
    transfer_id BIGINT NOT NULL,
    leg_index INTEGER NOT NULL,
    account_id BIGINT NOT NULL,
    is_credit BOOLEAN NOT NULL,
    amount_minor BIGINT NOT NULL,
    currency TEXT NOT NULL,
    pending BOOLEAN NOT NULL,
    balance_after_minor BIGINT NOT NULL,
    posted_at BIGINT NOT NULL,
    PRIMARY KEY (transfer_id, leg_index)
) WITHOUT ROWID;
CREATE INDEX entries_account_time ON entries (account_id, posted_at, transfer_id);

CREATE TABLE subject_balances (
    subject_code TEXT NOT NULL,
    currency TEXT NOT NULL,
    debits_posted_minor BIGINT NOT NULL,
    credits_posted_minor BIGINT NOT NULL,
    PRIMARY KEY (subject_code, currency)
);
