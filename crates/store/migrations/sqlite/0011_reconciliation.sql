-- What the channel said when it answered success: its business date (渠道日切)
-- and its fee, so reconciliation snapshots by the channel's day.
ALTER TABLE channel_orders ADD COLUMN channel_business_date TEXT;
ALTER TABLE channel_orders ADD COLUMN channel_fee_minor BIGINT;
CREATE INDEX channel_orders_recon_day ON channel_orders (channel, channel_business_date);
CREATE INDEX channel_orders_recon_updated ON channel_orders (channel, updated_at);

-- Imported statement files: one row per file content, so a second import of
-- the same bytes is refused.
CREATE TABLE recon_statement_files (
    id INTEGER PRIMARY KEY,
    channel TEXT NOT NULL,
    business_day INTEGER NOT NULL,
    file_name TEXT NOT NULL,
    sha256 TEXT NOT NULL UNIQUE,
    format TEXT NOT NULL,
    records BIGINT NOT NULL,
    record_path TEXT NOT NULL,
    imported_at BIGINT NOT NULL
);
CREATE INDEX recon_statement_files_day ON recon_statement_files (channel, business_day);

-- One row per channel and run day: what a run found, in numbers.
CREATE TABLE recon_runs (
    id INTEGER PRIMARY KEY,
    channel TEXT NOT NULL,
    business_day INTEGER NOT NULL,
    platform_records BIGINT NOT NULL,
    channel_records BIGINT NOT NULL,
    matched BIGINT NOT NULL,
    discrepancies BIGINT NOT NULL,
    summary TEXT NOT NULL,
    finished_at BIGINT NOT NULL,
    UNIQUE (channel, business_day)
);

-- Discrepancies (差错), one per channel and key, carried from run to run
-- until settled (rolling reconciliation).
CREATE TABLE recon_discrepancies (
    id INTEGER PRIMARY KEY,
    channel TEXT NOT NULL,
    record_key TEXT NOT NULL,
    kind TEXT NOT NULL,
    class TEXT NOT NULL,
    error_code TEXT NOT NULL,
    treatment TEXT NOT NULL,
    status TEXT NOT NULL,
    first_day INTEGER NOT NULL,
    last_day INTEGER NOT NULL,
    channel_count BIGINT NOT NULL,
    platform_figures TEXT,
    channel_figures TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (channel, record_key)
);
CREATE INDEX recon_discrepancies_status ON recon_discrepancies (status, channel);

-- Every treatment and every change of a discrepancy, with who and why.
-- Append-only; the key makes a repeated treatment a no-op.
CREATE TABLE recon_actions (
    id INTEGER PRIMARY KEY,
    discrepancy_id BIGINT NOT NULL REFERENCES recon_discrepancies (id),
    action_key TEXT NOT NULL UNIQUE,
    action TEXT NOT NULL,
    from_status TEXT NOT NULL,
    to_status TEXT NOT NULL,
    actor TEXT NOT NULL,
    reason TEXT NOT NULL,
    at BIGINT NOT NULL
);
CREATE INDEX recon_actions_discrepancy ON recon_actions (discrepancy_id);
