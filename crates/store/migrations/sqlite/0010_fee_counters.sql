-- Period counters of the cumulative fee methods (计费累计): one row per
-- rule, merchant and period (`2025-03-15`, `2025-03` or `2025`), and one
-- row per charged transaction, so that a retried charge key adds nothing
-- and is answered with the counter values it was first priced on.
CREATE TABLE fee_counters (
    rule_id TEXT NOT NULL,
    merchant_id TEXT NOT NULL,
    period_key TEXT NOT NULL,
    transaction_count BIGINT NOT NULL CHECK (transaction_count >= 0),
    volume_minor BIGINT NOT NULL CHECK (volume_minor >= 0),
    PRIMARY KEY (rule_id, merchant_id, period_key)
);

CREATE TABLE fee_charges (
    charge_key TEXT PRIMARY KEY,
    rule_id TEXT NOT NULL,
    merchant_id TEXT NOT NULL,
    period_key TEXT NOT NULL,
    amount_minor BIGINT NOT NULL CHECK (amount_minor > 0),
    count_before BIGINT NOT NULL,
    volume_before_minor BIGINT NOT NULL,
    recorded_at BIGINT NOT NULL
);
