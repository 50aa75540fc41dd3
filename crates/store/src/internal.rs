//! 内部对账 (账证核对) over a whole store: orders against the journal and
//! the journal against the orders, as set-based SQL whose text is the same
//! on both backends (see `recon::internal` for what is checked and why).
//!
//! Orders are joined to their transfers by the key their flow derives
//! (`'hold-' || instruction id`, on the transfers' unique key index);
//! transfers are joined back to their records by the id parsed from their
//! key (on the records' primary keys). Each query returns findings only,
//! at most [`recon::FINDINGS_LISTED_PER_CODE_MAX`] per code with the count
//! of all of them beside each, so a store with millions of orders sends
//! back what is wrong and nothing else.

use crate::rows::database_error;
use engine::FundingSource;
use ledger::StoreError;
use recon::{
    FINDINGS_LISTED_PER_CODE_MAX, InternalCode, InternalFinding, InternalReport, KEY_ID_DIGITS_MAX,
    KEY_PATTERNS_BY_DISCREPANCY, KEY_PATTERNS_BY_ID, MANUAL_KEY_PREFIX, Subject,
};
use settlement::BatchStatus;
use sqlx::{Database, Executor, FromRow, IntoArguments};

/// Batches whose money has been posted (or is being paid out).
const POSTED_BATCHES: [BatchStatus; 4] = [
    BatchStatus::Posted,
    BatchStatus::Paying,
    BatchStatus::Paid,
    BatchStatus::PayoutFailed,
];
/// Batches that post nothing: their entries wait for a later run.
const UNPOSTED_BATCHES: [BatchStatus; 3] = [
    BatchStatus::Carried,
    BatchStatus::BelowMinimum,
    BatchStatus::Held,
];

/// A finding as the queries return it: code, subject, record id, record
/// status, transfer id, key, expected, actual, currency, and how many
/// findings of the code there are in all.
type FindingRow = (
    String,
    String,
    Option<i64>,
    Option<String>,
    Option<i64>,
    String,
    Option<i64>,
    Option<i64>,
    Option<String>,
    i64,
);

/// `'a', 'b'` for an SQL `IN` list.
fn quoted<'a>(texts: impl IntoIterator<Item = &'a str>) -> String {
    texts
        .into_iter()
        .map(|text| format!("'{text}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn channel_sources() -> String {
    quoted(
        FundingSource::ALL
            .iter()
            .filter(|source| source.through_channel())
            .map(|source| source.as_str()),
    )
}

/// The sum of a transfer's debit legs (pending or posted): its amount.
fn debits(transfer: &str) -> String {
    format!(
        "(SELECT CAST(SUM(e.amount_minor) AS BIGINT) FROM entries e \
         WHERE e.transfer_id = {transfer}.id AND NOT e.is_credit)"
    )
}

/// Every transfer with the pattern its key follows (NULL for none) and
/// the record id it names. `{pattern}-{id}` counts only with a canonical
/// decimal id, so `hold-007` or `hold-1-post` follow no pattern (as
/// `recon::key_pattern` reads them). Each
/// pattern is one `WHEN` on the key itself, so that no expression refers
/// to another: a planner that inlines them repeats one parse, not a
/// cascade of them.
fn keyed_transfers() -> String {
    let key = "t.idempotency_key";
    let prefix = |pattern: &str| format!("SUBSTR({key}, 1, {}) = '{pattern}-'", pattern.len() + 1);
    let by_id = |pattern: &str| {
        let start = pattern.len() + 2;
        let id = format!("SUBSTR({key}, {start})");
        let when = format!(
            "{} AND {id} <> '' AND LENGTH({key}) < {} AND LTRIM({id}, '0123456789') = '' \
             AND SUBSTR({key}, {start}, 1) <> '0'",
            prefix(pattern),
            start + KEY_ID_DIGITS_MAX,
        );
        (
            format!("WHEN {when} THEN '{pattern}'"),
            format!("WHEN {when} THEN CAST({id} AS BIGINT)"),
        )
    };
    let (patterns, ids): (Vec<String>, Vec<String>) = KEY_PATTERNS_BY_ID
        .iter()
        .map(|(pattern, _)| by_id(pattern))
        .unzip();
    let manual = MANUAL_KEY_PREFIX.trim_end_matches('-');
    let whole: Vec<String> = KEY_PATTERNS_BY_DISCREPANCY
        .into_iter()
        .chain([manual])
        .map(|pattern| format!("WHEN {} THEN '{pattern}'", prefix(pattern)))
        .collect();
    format!(
        "SELECT t.id, t.idempotency_key, t.kind, t.status, t.target_id, \
         CASE {} {} END AS pattern, CASE {} END AS record_id FROM transfers t",
        patterns.join(" "),
        whole.join(" "),
        ids.join(" ")
    )
}

/// Keeps at most `$1` findings per code, with the count of all beside each.
fn ranked(with: &str) -> String {
    format!(
        "WITH {with} \
         SELECT code, subject, record_id, record_status, transfer_id, transfer_key, \
         expected_minor, actual_minor, currency, total FROM ( \
           SELECT f.*, ROW_NUMBER() OVER (PARTITION BY f.code \
             ORDER BY f.record_id, f.transfer_id, f.transfer_key) AS rank_in_code, \
           COUNT(*) OVER (PARTITION BY f.code) AS total FROM findings f) ranked \
         WHERE rank_in_code <= $1 ORDER BY code, rank_in_code"
    )
}

const NO_ID: &str = "CAST(NULL AS BIGINT)";
const NO_TEXT: &str = "CAST(NULL AS TEXT)";

/// Holds (internal sources and payouts) of final payments: reserved by
/// `hold-{instruction}`, posted by `post-{instruction}` on success, voided
/// (or never made: the ledger refused it) on failure. A payout posts what
/// its successful channel orders paid: all of it on SUCCESS, part of it
/// on PARTIALLY_PAID (the rest released).
fn payment_holds() -> String {
    let channel = channel_sources();
    ranked(&format!(
        "holds AS (SELECT p.id AS record_id, p.status AS record_status, p.currency, i.amount_minor, \
           'hold-' || CAST(i.id AS TEXT) AS hold_key, 'post-' || CAST(i.id AS TEXT) AS post_key, \
           h.id AS hold_id, h.kind AS hold_kind, h.status AS hold_status, \
           COALESCE({hold_minor}, 0) AS hold_minor, s.id AS post_id, COALESCE({post_minor}, 0) AS post_minor, \
           CASE WHEN i.direction = 'payout' THEN (SELECT CAST(COALESCE(SUM(c.amount_minor), 0) AS BIGINT) \
             FROM channel_orders c WHERE c.instruction_id = i.id AND c.refund_id IS NULL \
             AND c.status = 'SUCCESS') ELSE i.amount_minor END AS post_expected \
         FROM payment_orders p JOIN payment_instructions i ON i.payment_id = p.id \
         LEFT JOIN transfers h ON h.idempotency_key = 'hold-' || CAST(i.id AS TEXT) \
         LEFT JOIN transfers s ON s.idempotency_key = 'post-' || CAST(i.id AS TEXT) \
         WHERE p.status IN ('SUCCESS', 'PARTIALLY_PAID', 'FAILED') \
           AND (i.direction = 'payout' OR i.source NOT IN ({channel}))), \
         findings AS ( \
         SELECT 'PAYMENT_WITHOUT_TRANSFER' AS code, 'payment' AS subject, record_id, record_status, \
           {NO_ID} AS transfer_id, CASE WHEN hold_id IS NULL THEN hold_key ELSE post_key END AS transfer_key, \
           amount_minor AS expected_minor, {NO_ID} AS actual_minor, currency \
           FROM holds WHERE record_status IN ('SUCCESS', 'PARTIALLY_PAID') AND (hold_id IS NULL OR post_id IS NULL) \
         UNION ALL SELECT 'TRANSFER_STATE_DIFFERS', 'payment', record_id, record_status, hold_id, \
           hold_key, {NO_ID}, {NO_ID}, currency FROM holds WHERE record_status IN ('SUCCESS', 'PARTIALLY_PAID') \
           AND hold_id IS NOT NULL AND (hold_kind <> 'pending' OR hold_status <> 'pending_posted') \
         UNION ALL SELECT 'AMOUNT_DIFFERS', 'payment', record_id, record_status, hold_id, hold_key, \
           amount_minor, hold_minor, currency FROM holds WHERE record_status IN ('SUCCESS', 'PARTIALLY_PAID') \
           AND hold_id IS NOT NULL AND hold_minor <> amount_minor \
         UNION ALL SELECT 'AMOUNT_DIFFERS', 'payment', record_id, record_status, post_id, post_key, \
           post_expected, post_minor, currency FROM holds WHERE record_status IN ('SUCCESS', 'PARTIALLY_PAID') \
           AND post_id IS NOT NULL AND post_minor <> post_expected \
         UNION ALL SELECT 'FAILED_ORDER_MOVED_MONEY', 'payment', record_id, record_status, \
           COALESCE(post_id, hold_id), CASE WHEN post_id IS NULL THEN hold_key ELSE post_key END, \
           CAST(0 AS BIGINT), CASE WHEN post_id IS NULL THEN hold_minor ELSE post_minor END, currency \
           FROM holds WHERE record_status = 'FAILED' \
           AND (post_id IS NOT NULL OR hold_status IN ('pending', 'pending_posted')))",
        hold_minor = debits("h"),
        post_minor = debits("s"),
    ))
}

/// Channel sources of final collections: `collect-{channel order}`, posted
/// when the channel said success, never made when it refused.
fn payment_collections() -> String {
    let channel = channel_sources();
    ranked(&format!(
        "collects AS (SELECT p.id AS record_id, p.status AS record_status, p.currency, i.amount_minor, \
           'collect-' || COALESCE(CAST(c.id AS TEXT), '') AS collect_key, \
           t.id AS collect_id, t.kind AS collect_kind, t.status AS collect_status, \
           COALESCE({collect_minor}, 0) AS collect_minor \
         FROM payment_orders p JOIN payment_instructions i ON i.payment_id = p.id \
         LEFT JOIN channel_orders c ON c.instruction_id = i.id AND c.refund_id IS NULL \
         LEFT JOIN transfers t ON t.idempotency_key = 'collect-' || CAST(c.id AS TEXT) \
         WHERE p.status IN ('SUCCESS', 'FAILED') AND i.direction = 'collect' \
           AND i.source IN ({channel})), \
         findings AS ( \
         SELECT 'PAYMENT_WITHOUT_TRANSFER' AS code, 'payment' AS subject, record_id, record_status, \
           {NO_ID} AS transfer_id, collect_key AS transfer_key, amount_minor AS expected_minor, \
           {NO_ID} AS actual_minor, currency \
           FROM collects WHERE record_status = 'SUCCESS' AND collect_id IS NULL \
         UNION ALL SELECT 'TRANSFER_STATE_DIFFERS', 'payment', record_id, record_status, collect_id, \
           collect_key, {NO_ID}, {NO_ID}, currency FROM collects WHERE record_status = 'SUCCESS' \
           AND collect_id IS NOT NULL AND (collect_kind <> 'transfer' OR collect_status <> 'posted') \
         UNION ALL SELECT 'AMOUNT_DIFFERS', 'payment', record_id, record_status, collect_id, \
           collect_key, amount_minor, collect_minor, currency FROM collects \
           WHERE record_status = 'SUCCESS' AND collect_id IS NOT NULL AND collect_minor <> amount_minor \
         UNION ALL SELECT 'FAILED_ORDER_MOVED_MONEY', 'payment', record_id, record_status, collect_id, \
           collect_key, CAST(0 AS BIGINT), collect_minor, currency FROM collects \
           WHERE record_status = 'FAILED' AND collect_status = 'posted')",
        collect_minor = debits("t"),
    ))
}

/// Parts of final refunds: an internal part goes back by
/// `refund-part-{part}`; a channel part is reserved by `refund-hold-{part}`
/// and posted by `refund-post-{part}` (or voided). A part that succeeded
/// moved its money even when another part of its refund failed.
fn refund_parts() -> String {
    let channel = channel_sources();
    ranked(&format!(
        "parts AS (SELECT b.*, m.id AS moved_id, m.kind AS moved_kind, m.status AS moved_status, \
           COALESCE({moved_minor}, 0) AS moved_minor, s.id AS post_id, \
           COALESCE({post_minor}, 0) AS post_minor \
         FROM (SELECT r.id AS record_id, r.status AS record_status, r.currency, rp.amount_minor, \
             CASE WHEN i.source IN ({channel}) THEN 1 ELSE 0 END AS through_channel, \
             CASE WHEN rp.status = 'SUCCESS' OR r.status = 'SUCCESS' THEN 1 ELSE 0 END AS done, \
             CASE WHEN i.source IN ({channel}) THEN 'refund-hold-' ELSE 'refund-part-' END \
               || CAST(rp.id AS TEXT) AS moved_key, \
             'refund-post-' || CAST(rp.id AS TEXT) AS post_key \
           FROM refund_parts rp JOIN refund_orders r ON r.id = rp.refund_id \
           JOIN payment_instructions i ON i.id = rp.instruction_id \
           WHERE rp.status IN ('SUCCESS', 'FAILED') OR r.status = 'SUCCESS') b \
         LEFT JOIN transfers m ON m.idempotency_key = b.moved_key \
         LEFT JOIN transfers s ON b.through_channel = 1 AND s.idempotency_key = b.post_key), \
         findings AS ( \
         SELECT 'REFUND_WITHOUT_TRANSFER' AS code, 'refund' AS subject, record_id, record_status, \
           {NO_ID} AS transfer_id, CASE WHEN moved_id IS NULL THEN moved_key ELSE post_key END \
           AS transfer_key, amount_minor AS expected_minor, {NO_ID} AS actual_minor, currency \
           FROM parts WHERE done = 1 \
           AND (moved_id IS NULL OR (through_channel = 1 AND post_id IS NULL)) \
         UNION ALL SELECT 'TRANSFER_STATE_DIFFERS', 'refund', record_id, record_status, moved_id, \
           moved_key, {NO_ID}, {NO_ID}, currency FROM parts WHERE done = 1 AND moved_id IS NOT NULL \
           AND ((through_channel = 1 AND (moved_kind <> 'pending' OR moved_status <> 'pending_posted')) \
             OR (through_channel = 0 AND (moved_kind <> 'transfer' OR moved_status <> 'posted'))) \
         UNION ALL SELECT 'AMOUNT_DIFFERS', 'refund', record_id, record_status, moved_id, moved_key, \
           amount_minor, moved_minor, currency FROM parts \
           WHERE done = 1 AND moved_id IS NOT NULL AND moved_minor <> amount_minor \
         UNION ALL SELECT 'AMOUNT_DIFFERS', 'refund', record_id, record_status, post_id, post_key, \
           amount_minor, post_minor, currency FROM parts \
           WHERE done = 1 AND post_id IS NOT NULL AND post_minor <> amount_minor \
         UNION ALL SELECT 'FAILED_ORDER_MOVED_MONEY', 'refund', record_id, record_status, \
           COALESCE(post_id, moved_id), CASE WHEN post_id IS NULL THEN moved_key ELSE post_key END, \
           CAST(0 AS BIGINT), CASE WHEN post_id IS NULL THEN moved_minor ELSE post_minor END, currency \
           FROM parts WHERE done = 0 AND (post_id IS NOT NULL \
             OR (through_channel = 1 AND moved_status IN ('pending', 'pending_posted')) \
             OR (through_channel = 0 AND moved_status = 'posted')))",
        moved_minor = debits("m"),
        post_minor = debits("s"),
    ))
}

/// Posted settlement batches with money to move: `settle-{batch}` debits
/// collections − refunds from settlement-pending and credits the net to
/// the merchant's available balance (the fees to platform income).
fn settlement_batches() -> String {
    let posted = quoted(POSTED_BATCHES.iter().map(|status| status.as_str()));
    let available = ledger::AccountKind::MerchantAvailable.as_str();
    ranked(&format!(
        "batches AS (SELECT b.id AS record_id, b.status AS record_status, b.currency, b.net_minor, \
           b.collections_minor - b.refunds_minor AS gross_minor, \
           'settle-' || CAST(b.id AS TEXT) AS settle_key, \
           t.id AS settle_id, t.kind AS settle_kind, t.status AS settle_status, \
           COALESCE({debits_minor}, 0) AS debits_minor, \
           COALESCE((SELECT CAST(SUM(e.amount_minor) AS BIGINT) FROM entries e \
             JOIN accounts a ON a.id = e.account_id WHERE e.transfer_id = t.id AND e.is_credit \
             AND a.kind = '{available}'), 0) AS available_minor \
         FROM settlement_batches b \
         LEFT JOIN transfers t ON t.idempotency_key = 'settle-' || CAST(b.id AS TEXT) \
         WHERE b.status IN ({posted}) \
           AND (b.collections_minor <> b.refunds_minor OR b.fees_minor <> 0)), \
         findings AS ( \
         SELECT 'BATCH_WITHOUT_TRANSFER' AS code, 'settlement_batch' AS subject, record_id, \
           record_status, {NO_ID} AS transfer_id, settle_key AS transfer_key, \
           net_minor AS expected_minor, {NO_ID} AS actual_minor, currency \
           FROM batches WHERE settle_id IS NULL \
         UNION ALL SELECT 'TRANSFER_STATE_DIFFERS', 'settlement_batch', record_id, record_status, \
           settle_id, settle_key, {NO_ID}, {NO_ID}, currency FROM batches \
           WHERE settle_id IS NOT NULL AND (settle_kind <> 'transfer' OR settle_status <> 'posted') \
         UNION ALL SELECT 'AMOUNT_DIFFERS', 'settlement_batch', record_id, record_status, settle_id, \
           settle_key, net_minor, available_minor, currency FROM batches \
           WHERE settle_id IS NOT NULL AND available_minor <> net_minor \
         UNION ALL SELECT 'AMOUNT_DIFFERS', 'settlement_batch', record_id, record_status, settle_id, \
           settle_key, gross_minor, debits_minor, currency FROM batches \
           WHERE settle_id IS NOT NULL AND debits_minor <> gross_minor)",
        debits_minor = debits("t"),
    ))
}

/// `'recon-' || action || '-' || channel || '-' || key` of a treatment that
/// posts (the action is the treatment's name), for `recon_actions a` and
/// `recon_discrepancies d`.
const TREATMENT_KEY: &str = "'recon-' || a.action || '-' || d.channel || '-' || d.record_key";

/// The actions whose treatment posts a transfer: `suspense`, `adjust`.
fn posting_actions() -> String {
    quoted(
        KEY_PATTERNS_BY_DISCREPANCY
            .iter()
            .map(|pattern| pattern.trim_start_matches("recon-")),
    )
}

/// Discrepancies treated by 挂账 or 调账 have their transfer.
fn treated_discrepancies() -> String {
    ranked(&format!(
        "treated AS (SELECT d.id AS record_id, d.status AS record_status, \
           {TREATMENT_KEY} AS treatment_key \
         FROM recon_actions a JOIN recon_discrepancies d ON d.id = a.discrepancy_id \
         WHERE a.to_status = 'TREATED' AND a.action IN ({actions})), \
         findings AS ( \
         SELECT 'DISCREPANCY_WITHOUT_TRANSFER' AS code, 'discrepancy' AS subject, record_id, \
           record_status, {NO_ID} AS transfer_id, treatment_key AS transfer_key, \
           {NO_ID} AS expected_minor, {NO_ID} AS actual_minor, {NO_TEXT} AS currency FROM treated \
           WHERE NOT EXISTS (SELECT 1 FROM transfers t WHERE t.idempotency_key = treated.treatment_key))",
        actions = posting_actions(),
    ))
}

/// The transfers' side: `checked` (a CTE over `keyed k` with
/// `transfer_id, transfer_key, subject, record_id, record_status, code`)
/// looks at the transfers whose pattern `patterns` (a condition on
/// `k.pattern`) selects; those it gives a code are the findings. `keyed` is
/// materialized, so each key is parsed once however often `checked` reads
/// its pattern, and holds only the transfers of this family.
fn transfers_side(patterns: &str, checked: &str) -> String {
    ranked(&format!(
        "keyed AS MATERIALIZED (SELECT * FROM ({keyed}) k WHERE {patterns}), \
         checked AS ({checked}), \
         findings AS (SELECT code, subject, record_id, record_status, transfer_id, transfer_key, \
           {NO_ID} AS expected_minor, {NO_ID} AS actual_minor, {NO_TEXT} AS currency \
           FROM checked WHERE code IS NOT NULL)",
        keyed = keyed_transfers(),
    ))
}

/// Holds, posts, voids and collections name an instruction or a channel
/// order of their kind, of a payment that has started.
fn payment_transfers() -> String {
    let channel = channel_sources();
    transfers_side(
        "k.pattern IN ('hold', 'post', 'void', 'collect')",
        &format!(
            "SELECT k.id AS transfer_id, k.idempotency_key AS transfer_key, k.record_id, \
           p.status AS record_status, \
           CASE WHEN k.pattern = 'collect' THEN 'channel_order' ELSE 'instruction' END AS subject, \
           CASE WHEN (k.pattern = 'collect' AND c.id IS NULL) \
                  OR (k.pattern <> 'collect' AND i.id IS NULL) THEN 'TRANSFER_WITHOUT_ORDER' \
             WHEN k.pattern = 'collect' AND NOT (k.kind = 'transfer' AND c.refund_id IS NULL \
                  AND ci.direction = 'collect' AND ci.source IN ({channel})) THEN 'TRANSFER_NOT_IN_FLOW' \
             WHEN k.pattern <> 'collect' AND NOT (i.direction = 'payout' \
                  OR i.source NOT IN ({channel})) THEN 'TRANSFER_NOT_IN_FLOW' \
             WHEN k.pattern <> 'collect' AND k.kind <> CASE k.pattern WHEN 'hold' THEN 'pending' \
                  WHEN 'post' THEN 'post_pending' ELSE 'void_pending' END THEN 'TRANSFER_NOT_IN_FLOW' \
             WHEN p.status = 'CREATED' THEN 'ORDER_STATE_FORBIDS_TRANSFER' END AS code \
         FROM keyed k \
         LEFT JOIN payment_instructions i ON k.pattern IN ('hold', 'post', 'void') AND i.id = k.record_id \
         LEFT JOIN channel_orders c ON k.pattern = 'collect' AND c.id = k.record_id \
         LEFT JOIN payment_instructions ci ON ci.id = c.instruction_id \
         LEFT JOIN payment_orders p ON p.id = COALESCE(i.payment_id, ci.payment_id)"
        ),
    )
}

/// Refund transfers name a part of their kind (internal or channel), of a
/// refund that was approved.
fn refund_transfers() -> String {
    let channel = channel_sources();
    transfers_side(
        "k.pattern IN ('refund-part', 'refund-hold', 'refund-post', 'refund-void')",
        &format!(
            "SELECT k.id AS transfer_id, k.idempotency_key AS transfer_key, k.record_id, \
           r.status AS record_status, 'refund_part' AS subject, \
           CASE WHEN rp.id IS NULL THEN 'TRANSFER_WITHOUT_ORDER' \
             WHEN (k.pattern = 'refund-part' AND ri.source IN ({channel})) \
               OR (k.pattern <> 'refund-part' AND ri.source NOT IN ({channel})) THEN 'TRANSFER_NOT_IN_FLOW' \
             WHEN k.kind <> CASE k.pattern WHEN 'refund-part' THEN 'transfer' \
                  WHEN 'refund-hold' THEN 'pending' WHEN 'refund-post' THEN 'post_pending' \
                  ELSE 'void_pending' END THEN 'TRANSFER_NOT_IN_FLOW' \
             WHEN r.status = 'PENDING_REVIEW' THEN 'ORDER_STATE_FORBIDS_TRANSFER' END AS code \
         FROM keyed k \
         LEFT JOIN refund_parts rp ON rp.id = k.record_id \
         LEFT JOIN payment_instructions ri ON ri.id = rp.instruction_id \
         LEFT JOIN refund_orders r ON r.id = rp.refund_id"
        ),
    )
}

/// Settlement postings name a batch that posts; the ledger's expiries void
/// the pending transfer they name.
fn batch_and_expiry_transfers() -> String {
    let unposted = quoted(UNPOSTED_BATCHES.iter().map(|status| status.as_str()));
    transfers_side(
        "k.pattern IN ('settle', 'expire')",
        &format!(
            "SELECT k.id AS transfer_id, k.idempotency_key AS transfer_key, k.record_id, \
           COALESCE(b.status, x.status) AS record_status, \
           CASE WHEN k.pattern = 'settle' THEN 'settlement_batch' ELSE 'transfer' END AS subject, \
           CASE WHEN (k.pattern = 'settle' AND b.id IS NULL) \
                  OR (k.pattern = 'expire' AND x.id IS NULL) THEN 'TRANSFER_WITHOUT_ORDER' \
             WHEN k.pattern = 'settle' AND k.kind <> 'transfer' THEN 'TRANSFER_NOT_IN_FLOW' \
             WHEN k.pattern = 'expire' AND NOT (k.kind = 'void_pending' AND x.kind = 'pending' \
                  AND COALESCE(k.target_id, 0) = x.id) THEN 'TRANSFER_NOT_IN_FLOW' \
             WHEN k.pattern = 'settle' AND b.status IN ({unposted}) \
               THEN 'ORDER_STATE_FORBIDS_TRANSFER' END AS code \
         FROM keyed k \
         LEFT JOIN settlement_batches b ON k.pattern = 'settle' AND b.id = k.record_id \
         LEFT JOIN transfers x ON k.pattern = 'expire' AND x.id = k.record_id"
        ),
    )
}

/// Treatment transfers name a discrepancy treated so (the treated keys are
/// read once, as a set: `NOT IN` builds it once on both stores); a
/// transfer whose key follows no pattern, and is not an operator's, has no
/// record at all.
fn other_transfers() -> String {
    let discrepancy_patterns = quoted(KEY_PATTERNS_BY_DISCREPANCY);
    transfers_side(
        // One mention of the pattern: it is parsed once per transfer.
        &format!("COALESCE(k.pattern, '') IN ('', {discrepancy_patterns})"),
        &format!(
            "SELECT k.id AS transfer_id, k.idempotency_key AS transfer_key, {NO_ID} AS record_id, \
           {NO_TEXT} AS record_status, \
           CASE WHEN k.pattern IS NULL THEN 'transfer' ELSE 'discrepancy' END AS subject, \
           CASE WHEN k.pattern IS NULL THEN 'TRANSFER_WITHOUT_RECORD' \
             WHEN k.idempotency_key NOT IN (SELECT {TREATMENT_KEY} FROM recon_actions a \
                  JOIN recon_discrepancies d ON d.id = a.discrepancy_id \
                  WHERE a.to_status = 'TREATED') THEN 'TRANSFER_WITHOUT_ORDER' \
             WHEN k.kind <> 'transfer' THEN 'TRANSFER_NOT_IN_FLOW' END AS code \
         FROM keyed k"
        ),
    )
}

/// Fees taken from a balance (`fee_account`, `merchant_available`,
/// `member_cash`) of final payments: held by `fee-hold-{fee}`, posted by
/// `fee-post-{fee}` when CHARGED, voided (or never held) when VOIDED.
fn payment_fee_holds() -> String {
    ranked(&format!(
        "fees AS (SELECT f.id AS record_id, f.status AS record_status, f.currency, f.fee_minor, \
           'fee-hold-' || CAST(f.id AS TEXT) AS hold_key, 'fee-post-' || CAST(f.id AS TEXT) AS post_key, \
           h.id AS hold_id, h.kind AS hold_kind, h.status AS hold_status, \
           COALESCE({hold_minor}, 0) AS hold_minor, s.id AS post_id, COALESCE({post_minor}, 0) AS post_minor \
         FROM payment_fees f \
         LEFT JOIN transfers h ON h.idempotency_key = 'fee-hold-' || CAST(f.id AS TEXT) \
         LEFT JOIN transfers s ON s.idempotency_key = 'fee-post-' || CAST(f.id AS TEXT) \
         WHERE f.status IN ('CHARGED', 'VOIDED') AND f.fee_minor > 0 \
           AND f.funding IN ('fee_account', 'merchant_available', 'member_cash')), \
         findings AS ( \
         SELECT 'PAYMENT_WITHOUT_TRANSFER' AS code, 'payment_fee' AS subject, record_id, record_status, \
           {NO_ID} AS transfer_id, CASE WHEN hold_id IS NULL THEN hold_key ELSE post_key END AS transfer_key, \
           fee_minor AS expected_minor, {NO_ID} AS actual_minor, currency \
           FROM fees WHERE record_status = 'CHARGED' AND (hold_id IS NULL OR post_id IS NULL) \
         UNION ALL SELECT 'TRANSFER_STATE_DIFFERS', 'payment_fee', record_id, record_status, hold_id, \
           hold_key, {NO_ID}, {NO_ID}, currency FROM fees WHERE record_status = 'CHARGED' \
           AND hold_id IS NOT NULL AND (hold_kind <> 'pending' OR hold_status <> 'pending_posted') \
         UNION ALL SELECT 'AMOUNT_DIFFERS', 'payment_fee', record_id, record_status, hold_id, hold_key, \
           fee_minor, hold_minor, currency FROM fees WHERE record_status = 'CHARGED' \
           AND hold_id IS NOT NULL AND hold_minor <> fee_minor \
         UNION ALL SELECT 'AMOUNT_DIFFERS', 'payment_fee', record_id, record_status, post_id, post_key, \
           fee_minor, post_minor, currency FROM fees WHERE record_status = 'CHARGED' \
           AND post_id IS NOT NULL AND post_minor <> fee_minor \
         UNION ALL SELECT 'FAILED_ORDER_MOVED_MONEY', 'payment_fee', record_id, record_status, \
           COALESCE(post_id, hold_id), CASE WHEN post_id IS NULL THEN hold_key ELSE post_key END, \
           CAST(0 AS BIGINT), CASE WHEN post_id IS NULL THEN hold_minor ELSE post_minor END, currency \
           FROM fees WHERE record_status = 'VOIDED' \
           AND (post_id IS NOT NULL OR hold_status IN ('pending', 'pending_posted')))",
        hold_minor = debits("h"),
        post_minor = debits("s"),
    ))
}

/// Records posted by one transfer each, of an expected amount: paid fee
/// bills (`fee-bill-{bill}`), posted fee account deposits
/// (`fee-deposit-{deposit}`), campaigns' bonus grants of top-ups that paid
/// their trade (`bonus-grant-{payment}`), the cost of bonus spent by a
/// successful payment (`bonus-cost-{instruction}`) and given back by a
/// refund part (`bonus-return-{part}`), the bonus a successful top-up
/// refund voided (`bonus-void-post-{refund}`), and what a released escrow
/// paid the merchant (`escrow-release-{trade}`).
fn single_transfers() -> String {
    ranked(&format!(
        "expected AS ( \
           SELECT 'BATCH_WITHOUT_TRANSFER' AS missing, 'fee_bill' AS subject, b.id AS record_id, \
             b.status AS record_status, b.currency, b.fees_minor AS amount_minor, \
             'fee-bill-' || CAST(b.id AS TEXT) AS expected_key, 'transfer' AS expected_kind \
           FROM fee_bills b WHERE b.status = 'PAID' AND b.fees_minor > 0 \
           UNION ALL SELECT 'PAYMENT_WITHOUT_TRANSFER', 'fee_deposit', d.id, d.status, d.currency, \
             d.amount_minor, 'fee-deposit-' || CAST(d.id AS TEXT), 'transfer' \
           FROM fee_deposits d WHERE d.status = 'POSTED' \
           UNION ALL SELECT 'PAYMENT_WITHOUT_TRANSFER', 'payment', p.id, p.status, p.currency, \
             p.bonus_minor, 'bonus-grant-' || CAST(p.id AS TEXT), 'transfer' \
           FROM payment_orders p JOIN trade_orders t ON t.id = p.trade_id AND t.paid_payment_id = p.id \
           WHERE p.status = 'SUCCESS' AND p.bonus_minor > 0 \
           UNION ALL SELECT 'PAYMENT_WITHOUT_TRANSFER', 'payment', p.id, p.status, p.currency, \
             i.amount_minor, 'bonus-cost-' || CAST(i.id AS TEXT), 'transfer' \
           FROM payment_orders p JOIN payment_instructions i ON i.payment_id = p.id \
           WHERE p.status = 'SUCCESS' AND i.source = 'bonus' \
           UNION ALL SELECT 'REFUND_WITHOUT_TRANSFER', 'refund', r.id, r.status, r.currency, \
             rp.amount_minor, 'bonus-return-' || CAST(rp.id AS TEXT), 'transfer' \
           FROM refund_parts rp JOIN refund_orders r ON r.id = rp.refund_id \
           JOIN payment_instructions i ON i.id = rp.instruction_id \
           WHERE rp.status = 'SUCCESS' AND i.source = 'bonus' \
           UNION ALL SELECT 'REFUND_WITHOUT_TRANSFER', 'refund', r.id, r.status, r.currency, \
             r.bonus_void_minor, 'bonus-void-post-' || CAST(r.id AS TEXT), 'post_pending' \
           FROM refund_orders r WHERE r.status = 'SUCCESS' AND r.bonus_void_minor > 0 \
           UNION ALL SELECT 'PAYMENT_WITHOUT_TRANSFER', 'escrow', e.trade_id, e.status, e.currency, \
             e.released_minor, 'escrow-release-' || CAST(e.trade_id AS TEXT), 'transfer' \
           FROM escrows e WHERE e.status = 'RELEASED' AND e.released_minor > 0), \
         matched AS (SELECT e.*, t.id AS transfer_id, t.kind AS transfer_kind, t.status AS transfer_status, \
           COALESCE({moved_minor}, 0) AS moved_minor FROM expected e \
           LEFT JOIN transfers t ON t.idempotency_key = e.expected_key), \
         findings AS ( \
         SELECT missing AS code, subject, record_id, record_status, {NO_ID} AS transfer_id, \
           expected_key AS transfer_key, amount_minor AS expected_minor, {NO_ID} AS actual_minor, currency \
           FROM matched WHERE transfer_id IS NULL \
         UNION ALL SELECT 'TRANSFER_STATE_DIFFERS', subject, record_id, record_status, transfer_id, \
           expected_key, {NO_ID}, {NO_ID}, currency FROM matched WHERE transfer_id IS NOT NULL \
           AND (transfer_kind <> expected_kind \
             OR (expected_kind = 'transfer' AND transfer_status <> 'posted')) \
         UNION ALL SELECT 'AMOUNT_DIFFERS', subject, record_id, record_status, transfer_id, expected_key, \
           amount_minor, moved_minor, currency FROM matched \
           WHERE transfer_id IS NOT NULL AND moved_minor <> amount_minor)",
        moved_minor = debits("t"),
    ))
}

/// Fee and bonus transfers name a record of their kind whose flow makes
/// them.
fn fee_and_bonus_transfers() -> String {
    transfers_side(
        "k.pattern IN ('fee-hold', 'fee-post', 'fee-void', 'fee-bill', 'fee-deposit', \
         'bonus-grant', 'bonus-cost', 'bonus-return', 'bonus-void-hold', 'bonus-void-post', \
         'bonus-void-release')",
        "SELECT k.id AS transfer_id, k.idempotency_key AS transfer_key, k.record_id, \
           COALESCE(f.status, b.status, d.status, p.status, ip.status, r.status, vr.status) AS record_status, \
           CASE WHEN k.pattern LIKE 'fee-bill' THEN 'fee_bill' WHEN k.pattern = 'fee-deposit' THEN 'fee_deposit' \
             WHEN k.pattern LIKE 'fee-%' THEN 'payment_fee' WHEN k.pattern = 'bonus-grant' THEN 'payment' \
             WHEN k.pattern = 'bonus-cost' THEN 'instruction' WHEN k.pattern = 'bonus-return' THEN 'refund_part' \
             ELSE 'refund' END AS subject, \
           CASE WHEN COALESCE(f.id, b.id, d.id, p.id, i.id, rp.id, vr.id) IS NULL THEN 'TRANSFER_WITHOUT_ORDER' \
             WHEN k.pattern IN ('fee-hold', 'fee-post', 'fee-void') AND (f.fee_minor = 0 \
                  OR f.funding NOT IN ('fee_account', 'merchant_available', 'member_cash')) THEN 'TRANSFER_NOT_IN_FLOW' \
             WHEN k.pattern = 'bonus-grant' AND p.bonus_minor = 0 THEN 'TRANSFER_NOT_IN_FLOW' \
             WHEN k.pattern = 'bonus-cost' AND i.source <> 'bonus' THEN 'TRANSFER_NOT_IN_FLOW' \
             WHEN k.pattern = 'bonus-return' AND ri.source <> 'bonus' THEN 'TRANSFER_NOT_IN_FLOW' \
             WHEN k.pattern LIKE 'bonus-void-%' AND vr.bonus_void_minor = 0 THEN 'TRANSFER_NOT_IN_FLOW' \
             WHEN k.kind <> CASE WHEN k.pattern IN ('fee-hold', 'bonus-void-hold') THEN 'pending' \
                  WHEN k.pattern IN ('fee-post', 'bonus-void-post') THEN 'post_pending' \
                  WHEN k.pattern IN ('fee-void', 'bonus-void-release') THEN 'void_pending' \
                  ELSE 'transfer' END THEN 'TRANSFER_NOT_IN_FLOW' \
             WHEN k.pattern = 'bonus-grant' AND p.status = 'CREATED' THEN 'ORDER_STATE_FORBIDS_TRANSFER' \
             WHEN k.pattern = 'bonus-cost' AND ip.status = 'CREATED' THEN 'ORDER_STATE_FORBIDS_TRANSFER' END AS code \
         FROM keyed k \
         LEFT JOIN payment_fees f ON k.pattern IN ('fee-hold', 'fee-post', 'fee-void') AND f.id = k.record_id \
         LEFT JOIN fee_bills b ON k.pattern = 'fee-bill' AND b.id = k.record_id \
         LEFT JOIN fee_deposits d ON k.pattern = 'fee-deposit' AND d.id = k.record_id \
         LEFT JOIN payment_orders p ON k.pattern = 'bonus-grant' AND p.id = k.record_id \
         LEFT JOIN payment_instructions i ON k.pattern = 'bonus-cost' AND i.id = k.record_id \
         LEFT JOIN payment_orders ip ON ip.id = i.payment_id \
         LEFT JOIN refund_parts rp ON k.pattern = 'bonus-return' AND rp.id = k.record_id \
         LEFT JOIN payment_instructions ri ON ri.id = rp.instruction_id \
         LEFT JOIN refund_orders r ON r.id = rp.refund_id \
         LEFT JOIN refund_orders vr ON k.pattern LIKE 'bonus-void-%' AND vr.id = k.record_id",
    )
}

/// Escrow releases name an escrow that released money.
fn escrow_transfers() -> String {
    transfers_side(
        "k.pattern = 'escrow-release'",
        "SELECT k.id AS transfer_id, k.idempotency_key AS transfer_key, k.record_id, \
           e.status AS record_status, 'escrow' AS subject, \
           CASE WHEN e.trade_id IS NULL THEN 'TRANSFER_WITHOUT_ORDER' \
             WHEN k.kind <> 'transfer' OR COALESCE(e.released_minor, 0) = 0 THEN 'TRANSFER_NOT_IN_FLOW' \
             WHEN e.status = 'HELD' THEN 'ORDER_STATE_FORBIDS_TRANSFER' END AS code \
         FROM keyed k LEFT JOIN escrows e ON e.trade_id = k.record_id",
    )
}

/// Every query of the check, each returning findings only.
fn queries() -> [String; 13] {
    [
        payment_holds(),
        payment_collections(),
        refund_parts(),
        settlement_batches(),
        treated_discrepancies(),
        payment_transfers(),
        refund_transfers(),
        batch_and_expiry_transfers(),
        other_transfers(),
        payment_fee_holds(),
        single_transfers(),
        fee_and_bonus_transfers(),
        escrow_transfers(),
    ]
}

fn counts_sql() -> String {
    format!(
        "SELECT (SELECT COUNT(*) FROM payment_orders WHERE status IN ('SUCCESS', 'PARTIALLY_PAID', 'FAILED')), \
         (SELECT COUNT(*) FROM refund_orders WHERE status IN ('SUCCESS', 'FAILED')), \
         (SELECT COUNT(*) FROM settlement_batches), (SELECT COUNT(*) FROM transfers), \
         (SELECT COUNT(*) FROM transfers WHERE SUBSTR(idempotency_key, 1, {}) = '{MANUAL_KEY_PREFIX}')",
        MANUAL_KEY_PREFIX.len()
    )
}

fn count(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

fn finding_from_row(row: FindingRow) -> Result<(InternalFinding, u64), StoreError> {
    let (
        code,
        subject,
        record_id,
        record_status,
        transfer_id,
        key,
        expected,
        actual,
        currency,
        total,
    ) = row;
    let corrupt = |what: &str, text: &str| StoreError::Corrupt(format!("{what} {text:?}"));
    let finding = InternalFinding {
        code: InternalCode::parse(&code).ok_or_else(|| corrupt("internal check code", &code))?,
        subject: Subject::parse(&subject)
            .ok_or_else(|| corrupt("internal check subject", &subject))?,
        record_id,
        record_status,
        transfer_id,
        key,
        expected_minor: expected,
        actual_minor: actual,
        currency,
    };
    Ok((finding, count(total)))
}

/// Runs the whole check on `connection`.
pub(crate) async fn run<DB>(connection: &mut DB::Connection) -> Result<InternalReport, StoreError>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    (i64, i64, i64, i64, i64): for<'r> FromRow<'r, DB::Row>,
    FindingRow: for<'r> FromRow<'r, DB::Row>,
{
    let counts_text = counts_sql();
    let (payments, refunds, batches, transfers, manual): (i64, i64, i64, i64, i64) =
        sqlx::query_as::<DB, (i64, i64, i64, i64, i64)>(&counts_text)
            .fetch_one(&mut *connection)
            .await
            .map_err(database_error)?;
    let mut report = InternalReport {
        payments_checked: count(payments),
        refunds_checked: count(refunds),
        batches_checked: count(batches),
        transfers_checked: count(transfers),
        manual_transfers: count(manual),
        ..InternalReport::default()
    };
    for sql in queries() {
        let rows: Vec<FindingRow> = sqlx::query_as::<DB, FindingRow>(&sql)
            .bind(i64::from(FINDINGS_LISTED_PER_CODE_MAX))
            .fetch_all(&mut *connection)
            .await
            .map_err(database_error)?;
        let mut counted = std::collections::BTreeSet::new();
        for row in rows {
            let (finding, total) = finding_from_row(row)?;
            // Every row of a code carries the count of all; add it once.
            if counted.insert(finding.code) {
                *report.counts.entry(finding.code).or_default() += total;
            }
            report.findings.push(finding);
        }
    }
    keep_listed(&mut report.findings);
    Ok(report)
}

/// Several queries may find one code: list at most the first
/// [`FINDINGS_LISTED_PER_CODE_MAX`] of each in all.
fn keep_listed(findings: &mut Vec<InternalFinding>) {
    let mut listed: std::collections::BTreeMap<InternalCode, u32> = Default::default();
    findings.sort_by_key(|finding| finding.code);
    findings.retain(|finding| {
        let seen = listed.entry(finding.code).or_default();
        *seen += 1;
        *seen <= FINDINGS_LISTED_PER_CODE_MAX
    });
}
