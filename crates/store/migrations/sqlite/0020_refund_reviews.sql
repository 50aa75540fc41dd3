-- An operator's decision on a refund that waited for review: who, which
-- way and why, written in the transaction that moves the refund on.
CREATE TABLE refund_reviews (
    refund_id BIGINT PRIMARY KEY REFERENCES refund_orders (id),
    operator TEXT NOT NULL,
    approved BOOLEAN NOT NULL,
    reason TEXT NOT NULL,
    reviewed_at BIGINT NOT NULL
);
