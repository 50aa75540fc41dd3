-- Asynchronous notifications to merchants, one per payment and event,
-- retried on a back-off schedule until acknowledged.
CREATE TABLE notifications (
    id INTEGER PRIMARY KEY,
    merchant_id TEXT NOT NULL,
    payment_id BIGINT NOT NULL,
    event TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    UNIQUE (payment_id, event)
);
CREATE INDEX notifications_due ON notifications (next_attempt_at) WHERE status = 'PENDING';
