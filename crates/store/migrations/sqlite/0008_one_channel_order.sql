-- One channel order per instruction (and per refund of it): two runs of
-- the same step, after a crash or at the same time, must not both send
-- money through a channel. The loser finds the winner's order and queries
-- it. Splitting a payout into several orders will need a sequence column
-- in this key.
CREATE UNIQUE INDEX channel_orders_one_per_part ON channel_orders (instruction_id, COALESCE(refund_id, 0));
