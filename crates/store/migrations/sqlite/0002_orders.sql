-- The payment engine's four order levels and refunds. Money itself lives in
-- the ledger tables; these hold orders and their states.
CREATE TABLE trade_orders (
    id INTEGER PRIMARY KEY,
    merchant_id TEXT NOT NULL,
    out_trade_no TEXT NOT NULL,
    subject TEXT NOT NULL,
    amount_minor BIGINT NOT NULL,
    currency TEXT NOT NULL,
    status TEXT NOT NULL,
    paid_payment_id BIGINT,
    paid_minor BIGINT NOT NULL DEFAULT 0,
    refunded_minor BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (merchant_id, out_trade_no)
);

CREATE TABLE payment_orders (
    id INTEGER PRIMARY KEY,
    trade_id BIGINT NOT NULL REFERENCES trade_orders (id),
    merchant_id TEXT NOT NULL,
    request_serial TEXT NOT NULL,
    product TEXT NOT NULL,
    payer_id TEXT NOT NULL,
    bank TEXT,
    amount_minor BIGINT NOT NULL,
    currency TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (merchant_id, request_serial)
);
CREATE INDEX payment_orders_trade ON payment_orders (trade_id);
CREATE INDEX payment_orders_unfinished ON payment_orders (updated_at)
    WHERE status IN ('CREATED', 'PROCESSING');

CREATE TABLE payment_instructions (
    id INTEGER PRIMARY KEY,
    payment_id BIGINT NOT NULL REFERENCES payment_orders (id),
    direction TEXT NOT NULL,
    source TEXT NOT NULL,
    amount_minor BIGINT NOT NULL,
    currency TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX payment_instructions_payment ON payment_instructions (payment_id);

CREATE TABLE channel_orders (
    id INTEGER PRIMARY KEY,
    instruction_id BIGINT NOT NULL REFERENCES payment_instructions (id),
    channel TEXT NOT NULL,
    amount_minor BIGINT NOT NULL,
    currency TEXT NOT NULL,
    status TEXT NOT NULL,
    channel_transaction_id TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX channel_orders_instruction ON channel_orders (instruction_id);
CREATE INDEX channel_orders_channel_transaction ON channel_orders (channel, channel_transaction_id);

CREATE TABLE refund_orders (
    id INTEGER PRIMARY KEY,
    trade_id BIGINT NOT NULL REFERENCES trade_orders (id),
    merchant_id TEXT NOT NULL,
    refund_serial TEXT NOT NULL,
    amount_minor BIGINT NOT NULL,
    currency TEXT NOT NULL,
    status TEXT NOT NULL,
    initiator TEXT NOT NULL,
    reason TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (merchant_id, refund_serial)
);
CREATE INDEX refund_orders_trade ON refund_orders (trade_id);
