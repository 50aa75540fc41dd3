-- 批量代扣: collection batches with a deadline and their debit lines.
-- `header` and each line's `raw` keep the client's CSV fields as uploaded,
-- for the return file (回盘). A line's payment has the trade number and
-- request serial `batch-{batch_id}-{line_no}`. `late` is what the late
-- check found of a line FAILED at the deadline (NOT_COLLECTED, REFUNDED).
CREATE TABLE collection_batches (
    id INTEGER PRIMARY KEY,
    merchant_id TEXT NOT NULL,
    batch_no TEXT NOT NULL,
    currency TEXT NOT NULL,
    deadline BIGINT NOT NULL,
    status TEXT NOT NULL,
    header TEXT NOT NULL,
    line_count BIGINT NOT NULL,
    total_minor BIGINT NOT NULL,
    file_sha256 TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    closed_at BIGINT,
    UNIQUE (merchant_id, batch_no)
);
CREATE INDEX collection_batches_running ON collection_batches (id) WHERE status = 'RUNNING';

CREATE TABLE collection_batch_lines (
    batch_id BIGINT NOT NULL REFERENCES collection_batches (id),
    line_no BIGINT NOT NULL,
    reference TEXT NOT NULL,
    agreement_no TEXT NOT NULL,
    member_id TEXT NOT NULL,
    amount_minor BIGINT NOT NULL,
    priority BIGINT NOT NULL,
    raw TEXT NOT NULL,
    status TEXT NOT NULL,
    payment_id BIGINT,
    failure_code TEXT,
    failure_message TEXT,
    late TEXT,
    late_refund_id BIGINT,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (batch_id, line_no)
);
CREATE INDEX collection_batch_lines_queue ON collection_batch_lines (batch_id, status, priority DESC, line_no);
CREATE INDEX collection_batch_lines_late ON collection_batch_lines (batch_id, line_no)
    WHERE status = 'FAILED' AND failure_code = 'DEADLINE_PASSED' AND late IS NULL;
