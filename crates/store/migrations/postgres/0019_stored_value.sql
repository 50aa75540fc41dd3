-- 储值 with bonus (充值送): a top-up taking part in a campaign records the
-- campaign and the bonus it grants when it succeeds ("bonus-grant-ID"); a
-- refund of such a top-up records the bonus it voids with it
-- ("bonus-void-hold-ID").
ALTER TABLE payment_orders ADD COLUMN campaign TEXT;
ALTER TABLE payment_orders ADD COLUMN bonus_minor BIGINT NOT NULL DEFAULT 0;
ALTER TABLE refund_orders ADD COLUMN bonus_void_minor BIGINT NOT NULL DEFAULT 0;
