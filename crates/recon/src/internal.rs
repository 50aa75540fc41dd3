//! 内部对账 / 账证核对 — internal reconciliation: our orders against our own
//! journal. Every successful payment, refund and posted settlement batch
//! has the transfers its flow requires, in the state and for the amount the
//! flow says; a failed one moved no money; every transfer whose key follows
//! one of the patterns below names a record whose state allows it; and no
//! other transfer is without a record, except the operators' own.
//!
//! How a transfer is told to belong to a record: by its key alone. The
//! engine, settlement and reconciliation derive every key from a record
//! id, `{pattern}-{id}` (the id in decimal, no leading zero), or from a
//! discrepancy, `{pattern}-{channel}-{key}`. Operators posting free
//! transfers through the ledger API use keys under [`MANUAL_KEY_PREFIX`];
//! they are counted, not reported. Any other key is a transfer without a
//! business record ([`InternalCode::TransferWithoutRecord`]).
//!
//! The check is a handful of set-based queries over the whole store
//! (`ReconStore::internal_check`); this module says what they find.

use std::collections::BTreeMap;

/// Key patterns `{pattern}-{id}` and the record each id names.
pub const KEY_PATTERNS_BY_ID: [(&str, Subject); 22] = [
    // A payment instruction's reservation (internal source or payout), its
    // post and its void.
    ("hold", Subject::Instruction),
    ("post", Subject::Instruction),
    ("void", Subject::Instruction),
    // A channel order's collection.
    ("collect", Subject::ChannelOrder),
    // A refund part: internal sources back in one transfer; channel
    // sources reserved, then posted or voided.
    ("refund-part", Subject::RefundPart),
    ("refund-hold", Subject::RefundPart),
    ("refund-post", Subject::RefundPart),
    ("refund-void", Subject::RefundPart),
    // A settlement batch's posting.
    ("settle", Subject::SettlementBatch),
    // The ledger's own void of a pending transfer past its timeout.
    ("expire", Subject::Transfer),
    // A fee taken from a balance: reserved when its payment is accepted,
    // posted or voided with it.
    ("fee-hold", Subject::PaymentFee),
    ("fee-post", Subject::PaymentFee),
    ("fee-void", Subject::PaymentFee),
    // A month's post-paid fee bill, collected.
    ("fee-bill", Subject::FeeBill),
    // Money into a merchant's prepaid fee account.
    ("fee-deposit", Subject::FeeDeposit),
    // A top-up campaign's bonus, granted with the top-up.
    ("bonus-grant", Subject::Payment),
    // Bonus spent by a payment's bonus instruction, booked as marketing
    // expense, and given back by a refund part.
    ("bonus-cost", Subject::Instruction),
    ("bonus-return", Subject::RefundPart),
    // The bonus a top-up's refund voids: held, then posted or released.
    ("bonus-void-hold", Subject::Refund),
    ("bonus-void-post", Subject::Refund),
    ("bonus-void-release", Subject::Refund),
    // 担保交易: an escrow trade's money released to the merchant.
    ("escrow-release", Subject::Escrow),
];

/// Key patterns `{pattern}-{channel}-{key}` of reconciliation's treatments
/// (挂账, 调账), named after the treatment that posts them.
pub const KEY_PATTERNS_BY_DISCREPANCY: [&str; 2] = ["recon-suspense", "recon-adjust"];

/// The prefix of operators' own transfers through the ledger API.
pub const MANUAL_KEY_PREFIX: &str = "manual-";

/// Longest record id in a key, in digits: 18 digits always fit an `i64`.
pub const KEY_ID_DIGITS_MAX: usize = 18;

/// The pattern `key` follows, as the internal check reads it: one of
/// [`KEY_PATTERNS_BY_ID`] with a canonical decimal id (no sign, no leading
/// zero, at most [`KEY_ID_DIGITS_MAX`] digits), or one of
/// [`KEY_PATTERNS_BY_DISCREPANCY`]. `None` for anything else, operators'
/// `manual-` keys included.
pub fn key_pattern(key: &str) -> Option<&'static str> {
    let after = |pattern: &str| key.strip_prefix(pattern)?.strip_prefix('-');
    for (pattern, _) in KEY_PATTERNS_BY_ID {
        if let Some(id) = after(pattern) {
            let canonical = !id.is_empty()
                && id.len() <= KEY_ID_DIGITS_MAX
                && id.bytes().all(|byte| byte.is_ascii_digit())
                && !id.starts_with('0');
            return canonical.then_some(pattern);
        }
    }
    KEY_PATTERNS_BY_DISCREPANCY
        .into_iter()
        .find(|pattern| after(pattern).is_some())
}

/// Keys only the engine, settlement, reconciliation and the ledger's own
/// expiry make: the ledger API refuses them to everyone else, so that no
/// free transfer can take the key of a step still to come, and every key
/// the internal check traces to a record was made by that record's flow.
pub fn is_reserved_key(key: &str) -> bool {
    key_pattern(key).is_some()
}

/// Findings of one code listed in a report, at most; the report counts
/// all of them.
pub const FINDINGS_LISTED_PER_CODE_MAX: u32 = 1_000;

/// What a finding says is wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum InternalCode {
    /// A successful payment lacks a hold, a post or a collection (or its
    /// fee, bonus grant or bonus cost); a posted fee account deposit lacks
    /// its transfer.
    PaymentWithoutTransfer,
    /// A successful refund part lacks its transfer, or its channel part
    /// its reservation or post.
    RefundWithoutTransfer,
    /// A posted settlement batch has no `settle-{batch}` transfer, or a
    /// paid fee bill no `fee-bill-{bill}`.
    BatchWithoutTransfer,
    /// A discrepancy treated by suspense or adjustment has no transfer.
    DiscrepancyWithoutTransfer,
    /// The transfer exists but is not in the state the order's final state
    /// requires (a hold not posted, a collection reversed...).
    TransferStateDiffers,
    /// The transfer moved another amount than its instruction, refund part
    /// or batch says.
    AmountDiffers,
    /// A failed payment or refund part has posted money, or a reservation
    /// that was neither voided nor released.
    FailedOrderMovedMoney,
    /// The key follows a pattern, but the record it names does not exist.
    TransferWithoutOrder,
    /// The record exists, but its flow has no such transfer (a hold of a
    /// channel source, a collection of a refund, the wrong kind...).
    TransferNotInFlow,
    /// The record's state allows no money movement yet (a payment still
    /// CREATED, a refund waiting for review, a carried batch).
    OrderStateForbidsTransfer,
    /// The key follows no pattern and is not an operator's: nothing
    /// explains the transfer.
    TransferWithoutRecord,
}

text_enum!(InternalCode {
    PaymentWithoutTransfer = "PAYMENT_WITHOUT_TRANSFER",
    RefundWithoutTransfer = "REFUND_WITHOUT_TRANSFER",
    BatchWithoutTransfer = "BATCH_WITHOUT_TRANSFER",
    DiscrepancyWithoutTransfer = "DISCREPANCY_WITHOUT_TRANSFER",
    TransferStateDiffers = "TRANSFER_STATE_DIFFERS",
    AmountDiffers = "AMOUNT_DIFFERS",
    FailedOrderMovedMoney = "FAILED_ORDER_MOVED_MONEY",
    TransferWithoutOrder = "TRANSFER_WITHOUT_ORDER",
    TransferNotInFlow = "TRANSFER_NOT_IN_FLOW",
    OrderStateForbidsTransfer = "ORDER_STATE_FORBIDS_TRANSFER",
    TransferWithoutRecord = "TRANSFER_WITHOUT_RECORD",
});

impl InternalCode {
    /// The finding in a few words, for summaries.
    pub fn description(self) -> &'static str {
        match self {
            InternalCode::PaymentWithoutTransfer => "successful payment without its transfer",
            InternalCode::RefundWithoutTransfer => "successful refund without its transfer",
            InternalCode::BatchWithoutTransfer => "posted settlement batch without its transfer",
            InternalCode::DiscrepancyWithoutTransfer => "treated discrepancy without its transfer",
            InternalCode::TransferStateDiffers => "transfer not in the state its order requires",
            InternalCode::AmountDiffers => "transfer amount differs from its order",
            InternalCode::FailedOrderMovedMoney => "failed order with money moved",
            InternalCode::TransferWithoutOrder => "transfer naming a record that does not exist",
            InternalCode::TransferNotInFlow => "transfer its record's flow does not make",
            InternalCode::OrderStateForbidsTransfer => {
                "transfer of a record not yet allowed to move money"
            }
            InternalCode::TransferWithoutRecord => "transfer without any business record",
        }
    }
}

/// The kind of record a finding is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Subject {
    Payment,
    Instruction,
    ChannelOrder,
    Refund,
    RefundPart,
    SettlementBatch,
    Discrepancy,
    Transfer,
    PaymentFee,
    FeeBill,
    FeeDeposit,
    /// An escrow trade's escrow, by its trade id.
    Escrow,
}

text_enum!(Subject {
    Payment = "payment",
    Instruction = "instruction",
    ChannelOrder = "channel_order",
    Refund = "refund",
    RefundPart = "refund_part",
    SettlementBatch = "settlement_batch",
    Discrepancy = "discrepancy",
    Transfer = "transfer",
    PaymentFee = "payment_fee",
    FeeBill = "fee_bill",
    FeeDeposit = "fee_deposit",
    Escrow = "escrow",
});

/// One finding. Orders checked against the journal name the order and
/// the key of the transfer they expect; transfers checked against the
/// orders name the record their key names and the transfer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InternalFinding {
    pub code: InternalCode,
    pub subject: Subject,
    /// `None` when the key names no record id.
    pub record_id: Option<i64>,
    /// The governing order's status (the payment's for an instruction or a
    /// channel order, the refund's for a part), when it exists.
    pub record_status: Option<String>,
    pub transfer_id: Option<i64>,
    /// The transfer's key, or the key the order expects.
    pub key: String,
    pub expected_minor: Option<i64>,
    pub actual_minor: Option<i64>,
    pub currency: Option<String>,
}

/// What one internal check saw and found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InternalReport {
    /// Final (SUCCESS, PARTIALLY_PAID or FAILED) payments, final refunds,
    /// and all batches.
    pub payments_checked: u64,
    pub refunds_checked: u64,
    pub batches_checked: u64,
    pub transfers_checked: u64,
    /// Transfers under [`MANUAL_KEY_PREFIX`]: operators' own, not findings.
    pub manual_transfers: u64,
    /// Findings per code, all of them.
    pub counts: BTreeMap<InternalCode, u64>,
    /// The first [`FINDINGS_LISTED_PER_CODE_MAX`] findings of each code.
    pub findings: Vec<InternalFinding>,
}

impl InternalReport {
    pub fn is_clean(&self) -> bool {
        self.findings_total() == 0
    }

    pub fn findings_total(&self) -> u64 {
        self.counts.values().sum()
    }
}
