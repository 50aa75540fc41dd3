-- 清算 (clearing): one entry per successful merchant collection or refund,
-- written in the transaction that makes the order final. `source_key`
-- ("payment-ID" / "refund-ID") makes it once per order. `batch_id` is set
-- once, by the settlement batch that pays the entry out.
CREATE TABLE clearing_entries (
    id INTEGER PRIMARY KEY,
    source_key TEXT NOT NULL UNIQUE,
    merchant_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    trade_id BIGINT NOT NULL,
    out_trade_no TEXT NOT NULL,
    payment_id BIGINT NOT NULL,
    refund_id BIGINT,
    refund_serial TEXT,
    product TEXT NOT NULL,
    channel TEXT,
    currency TEXT NOT NULL,
    amount_minor BIGINT NOT NULL,
    fee_minor BIGINT NOT NULL,
    fee_mode TEXT NOT NULL,
    fee_rule_id TEXT,
    business_date TEXT NOT NULL,
    occurred_at BIGINT NOT NULL,
    reconciled BOOLEAN NOT NULL,
    batch_id BIGINT
);
-- Netting reads what no batch has paid yet through a narrow partial index
-- (settling an entry removes one id from it); marking a batch's entries
-- and bills find a merchant's days through merchant_day, which settling
-- does not touch.
CREATE INDEX clearing_entries_unsettled ON clearing_entries (id) WHERE batch_id IS NULL;
CREATE INDEX clearing_entries_merchant_day ON clearing_entries (merchant_id, business_date);

-- 结算批次: one per merchant, currency and settlement date. A batch is
-- created with its entries marked (one transaction), then posted in the
-- ledger under the key "settle-ID", then, for a bank destination, paid out.
CREATE TABLE settlement_batches (
    id INTEGER PRIMARY KEY,
    merchant_id TEXT NOT NULL,
    currency TEXT NOT NULL,
    settle_date TEXT NOT NULL,
    cycle TEXT NOT NULL,
    destination TEXT NOT NULL,
    status TEXT NOT NULL,
    collection_count BIGINT NOT NULL,
    collections_minor BIGINT NOT NULL,
    refund_count BIGINT NOT NULL,
    refunds_minor BIGINT NOT NULL,
    fees_minor BIGINT NOT NULL,
    fees_not_deducted_minor BIGINT NOT NULL,
    net_minor BIGINT NOT NULL,
    first_business_date TEXT NOT NULL,
    last_business_date TEXT NOT NULL,
    transfer_id BIGINT,
    payout_payment_id BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (merchant_id, currency, settle_date)
);
CREATE INDEX settlement_batches_date ON settlement_batches (settle_date, status);
-- What a run must finish: unposted batches and bank payouts in flight.
CREATE INDEX settlement_batches_status ON settlement_batches (status, destination);
