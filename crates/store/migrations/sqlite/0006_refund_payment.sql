-- The payment whose sources a refund returns money to: the one that paid
-- the trade, or a duplicate payment of it.
ALTER TABLE refund_orders ADD COLUMN payment_id BIGINT;
