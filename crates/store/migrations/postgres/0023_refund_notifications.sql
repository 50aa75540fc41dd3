-- Notifications of refunds beside those of payments: `refund_id` names the
-- refund of a `refund.*` event. One notification per payment and event for
-- payments, per refund and event for refunds.
ALTER TABLE notifications ADD COLUMN refund_id BIGINT;
ALTER TABLE notifications DROP CONSTRAINT notifications_payment_id_event_key;
CREATE UNIQUE INDEX notifications_of_payments ON notifications (payment_id, event)
    WHERE refund_id IS NULL;
CREATE UNIQUE INDEX notifications_of_refunds ON notifications (refund_id, event)
    WHERE refund_id IS NOT NULL;
