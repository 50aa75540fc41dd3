-- 担保交易: one escrow per escrow trade, opened as its payment succeeds
-- (in the transaction that makes it SUCCESS), released once. `released_minor`
-- and `released_by` are fixed when release begins (RELEASING); the clearing
-- entry is written with RELEASED.
CREATE TABLE escrows (
    trade_id BIGINT PRIMARY KEY REFERENCES trade_orders (id),
    merchant_id TEXT NOT NULL,
    payment_id BIGINT NOT NULL REFERENCES payment_orders (id),
    currency TEXT NOT NULL,
    held_minor BIGINT NOT NULL CHECK (held_minor > 0),
    status TEXT NOT NULL CHECK (status IN ('HELD', 'RELEASING', 'RELEASED')),
    release_due_at BIGINT NOT NULL,
    released_minor BIGINT CHECK (released_minor >= 0 AND released_minor <= held_minor),
    released_by TEXT,
    reason TEXT,
    -- Reconciliation matched the payment's channel collection before the
    -- release wrote its clearing entry: the entry is written reconciled.
    channel_confirmed BOOLEAN NOT NULL DEFAULT FALSE,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
-- The resolver's due scan: escrows not yet released, by due time.
CREATE INDEX escrows_due ON escrows (release_due_at) WHERE status <> 'RELEASED';

-- A refund of an escrow trade's payment takes its money out of escrow
-- (before release, or a duplicate payment's) or out of settlement-pending.
ALTER TABLE refund_orders ADD COLUMN from_escrow BOOLEAN NOT NULL DEFAULT FALSE;
