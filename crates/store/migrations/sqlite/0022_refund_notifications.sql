-- Notifications of refunds beside those of payments: `refund_id` names the
-- refund of a `refund.*` event. One notification per payment and event for
-- payments, per refund and event for refunds. SQLite cannot drop a table's
-- UNIQUE constraint, so the table is rebuilt.
CREATE TABLE notifications_new (
    id INTEGER PRIMARY KEY,
    merchant_id TEXT NOT NULL,
    payment_id BIGINT NOT NULL,
    refund_id BIGINT,
    event TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    last_error TEXT,
    created_at BIGINT NOT NULL
);
INSERT INTO notifications_new (id, merchant_id, payment_id, refund_id, event, status, attempts,
    next_attempt_at, last_error, created_at)
SELECT id, merchant_id, payment_id, NULL, event, status, attempts, next_attempt_at, last_error,
    created_at FROM notifications;
DROP TABLE notifications;
ALTER TABLE notifications_new RENAME TO notifications;
CREATE INDEX notifications_due ON notifications (next_attempt_at) WHERE status = 'PENDING';
CREATE UNIQUE INDEX notifications_of_payments ON notifications (payment_id, event)
    WHERE refund_id IS NULL;
CREATE UNIQUE INDEX notifications_of_refunds ON notifications (refund_id, event)
    WHERE refund_id IS NOT NULL;
