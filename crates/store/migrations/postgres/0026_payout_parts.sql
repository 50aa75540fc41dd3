-- A payout larger than its channel takes in one transaction is split into
-- several channel orders, sent one after another. `part_no` numbers them
-- from 0; every other channel order is part 0. The parts of a payout are
-- created together, in one statement, so a run that starts again after a
-- crash finds all of them or none.
ALTER TABLE channel_orders ADD COLUMN part_no BIGINT NOT NULL DEFAULT 0;
DROP INDEX channel_orders_one_per_part;
CREATE UNIQUE INDEX channel_orders_one_per_part ON channel_orders (instruction_id, COALESCE(refund_id, 0), part_no);
