-- The shares of each refund per funding source, and the channel orders
-- that send a share back through its channel.
CREATE TABLE refund_parts (
    id INTEGER PRIMARY KEY,
    refund_id BIGINT NOT NULL REFERENCES refund_orders (id),
    instruction_id BIGINT NOT NULL REFERENCES payment_instructions (id),
    amount_minor BIGINT NOT NULL,
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (refund_id, instruction_id)
);
CREATE INDEX refund_parts_instruction ON refund_parts (instruction_id);
CREATE INDEX refund_orders_unfinished ON refund_orders (updated_at) WHERE status = 'PROCESSING';

ALTER TABLE channel_orders ADD COLUMN refund_id BIGINT;
