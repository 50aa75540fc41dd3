-- Banks an operator marked down on a channel; routing avoids them.
CREATE TABLE bank_outages (
    channel TEXT NOT NULL,
    bank TEXT NOT NULL,
    since BIGINT NOT NULL,
    PRIMARY KEY (channel, bank)
);
CREATE INDEX payment_orders_payer ON payment_orders (payer_id, created_at);
