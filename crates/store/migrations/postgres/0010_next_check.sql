-- When the resolver may look at an unfinished payment or refund again:
-- one still waiting for its channel (or failing to advance) moves to the
-- back of the queue instead of blocking newer ones.
ALTER TABLE payment_orders ADD COLUMN next_check_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE refund_orders ADD COLUMN next_check_at BIGINT NOT NULL DEFAULT 0;
