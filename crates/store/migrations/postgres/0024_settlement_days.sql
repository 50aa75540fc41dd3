-- Settlement is recorded per merchant, currency and business date, not per
-- entry: a paying batch that takes a date whole writes one row here, and
-- holds that date's entries with after_entry_id < id <= up_to_entry_id
-- whose own batch_id is empty. A date's rows are written one after the
-- other, each from where the last ended (after_entry_id = the highest
-- up_to_entry_id before it), so they never overlap. batch_id on an entry
-- is still set for the entries a batch takes one by one (a date of which
-- some entries are left behind, not yet reconciled, on reconciled-only
-- terms), and for entries settled before this migration.
CREATE TABLE settlement_days (
    merchant_id TEXT NOT NULL,
    currency TEXT NOT NULL,
    business_date TEXT NOT NULL,
    up_to_entry_id BIGINT NOT NULL,
    after_entry_id BIGINT NOT NULL,
    batch_id BIGINT NOT NULL,
    entry_count BIGINT NOT NULL,
    PRIMARY KEY (merchant_id, currency, business_date, up_to_entry_id)
);
-- Netting joins only the ranges that reach above the unsettled floor.
CREATE INDEX settlement_days_up_to ON settlement_days (up_to_entry_id);
CREATE INDEX settlement_days_batch ON settlement_days (batch_id);

-- One row. `version` counts committed batch creations: a run reads it
-- before netting and its batches are refused if it moved (two runs never
-- take the same entries). Every entry with id < `unsettled_from` is
-- settled, so netting reads from there.
CREATE TABLE settlement_state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    version BIGINT NOT NULL,
    unsettled_from BIGINT NOT NULL
);
INSERT INTO settlement_state (id, version, unsettled_from) VALUES (1, 0, 0);

-- Settled entries no longer leave this index (their batch_id stays empty),
-- so it would only cost every insert; the floor bounds the netting scan.
DROP INDEX clearing_entries_unsettled;
