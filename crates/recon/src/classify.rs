//! How a key's records on both sides are classified. This is the reference
//! definition; `recon-engine` evaluates the same decision table as one
//! vectorised expression and is tested against [`classify`].

use crate::{ReconRecord, RecordStatus};

/// The outcome for one key. The stored codes state the direction; the
/// Chinese words practitioners use (in opposite senses) are display labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Class {
    /// Both sides agree on a successful transaction.
    Matched,
    /// Neither side has money moved (failed, or still in flight with nothing
    /// at the channel): nothing to reconcile today.
    NotDue,
    /// The channel succeeded; we have no record of it.
    ChannelOnly,
    /// We succeeded; the channel's file has nothing.
    PlatformOnly,
    /// The channel succeeded; our record is not a success (PROCESSING or FAILED).
    StatusChannelSuccess,
    /// We succeeded; the channel's record is not a success.
    StatusPlatformSuccess,
    /// The channel's amount is higher than ours.
    AmountChannelHigher,
    /// Our amount is higher than the channel's.
    AmountPlatformHigher,
    /// The fees differ by more than the configured tolerance.
    FeeMismatch,
    CurrencyMismatch,
    /// The channel's file carries the same key more than once.
    Duplicate,
}

text_enum!(Class {
    Matched = "MATCHED",
    NotDue = "NOT_DUE",
    ChannelOnly = "CHANNEL_ONLY",
    PlatformOnly = "PLATFORM_ONLY",
    StatusChannelSuccess = "STATUS_CHANNEL_SUCCESS",
    StatusPlatformSuccess = "STATUS_PLATFORM_SUCCESS",
    AmountChannelHigher = "AMOUNT_CHANNEL_HIGHER",
    AmountPlatformHigher = "AMOUNT_PLATFORM_HIGHER",
    FeeMismatch = "FEE_MISMATCH",
    CurrencyMismatch = "CURRENCY_MISMATCH",
    Duplicate = "DUPLICATE",
});

impl Class {
    /// The compact code the engine computes in its plans.
    pub fn code(self) -> i8 {
        match self {
            Class::Matched => 0,
            Class::NotDue => 1,
            Class::ChannelOnly => 2,
            Class::PlatformOnly => 3,
            Class::StatusChannelSuccess => 4,
            Class::StatusPlatformSuccess => 5,
            Class::AmountChannelHigher => 6,
            Class::AmountPlatformHigher => 7,
            Class::FeeMismatch => 8,
            Class::CurrencyMismatch => 9,
            Class::Duplicate => 10,
        }
    }

    pub fn from_code(code: i8) -> Option<Class> {
        Class::ALL
            .iter()
            .copied()
            .find(|class| class.code() == code)
    }

    /// True for the classes that are discrepancies (差错).
    pub fn is_discrepancy(self) -> bool {
        !matches!(self, Class::Matched | Class::NotDue)
    }

    /// The label operators see.
    pub fn label_zh(self) -> &'static str {
        match self {
            Class::Matched => "对平",
            Class::NotDue => "无资金变动",
            Class::ChannelOnly => "长款（渠道有、平台无）",
            Class::PlatformOnly => "短款（平台有、渠道无）",
            Class::StatusChannelSuccess => "状态不符（渠道成功、平台未成功）",
            Class::StatusPlatformSuccess => "状态不符（平台成功、渠道未成功）",
            Class::AmountChannelHigher => "金额不符（渠道金额大）",
            Class::AmountPlatformHigher => "金额不符（平台金额大）",
            Class::FeeMismatch => "手续费不符",
            Class::CurrencyMismatch => "币种不符",
            Class::Duplicate => "重复记录",
        }
    }
}

/// The channel's side of one key: how many records the file has for it,
/// and one of them (the only one, unless it is a duplicate).
#[derive(Debug, Clone, Copy)]
pub struct ChannelSide<'a> {
    pub count: u64,
    pub record: &'a ReconRecord,
}

/// Classifies one key. `fee_tolerance_minor` is the largest fee difference
/// that still counts as agreement.
pub fn classify(
    platform: Option<&ReconRecord>,
    channel: Option<ChannelSide<'_>>,
    fee_tolerance_minor: i64,
) -> Class {
    let succeeded = |record: &ReconRecord| record.status == RecordStatus::Success;
    match (platform, channel) {
        (_, Some(side)) if side.count > 1 => Class::Duplicate,
        (None, None) => Class::NotDue,
        (None, Some(side)) if succeeded(side.record) => Class::ChannelOnly,
        (Some(ours), None) if succeeded(ours) => Class::PlatformOnly,
        (None, Some(_)) | (Some(_), None) => Class::NotDue,
        (Some(ours), Some(side)) => compare(ours, side.record, fee_tolerance_minor),
    }
}

fn compare(ours: &ReconRecord, theirs: &ReconRecord, fee_tolerance_minor: i64) -> Class {
    let ours_succeeded = ours.status == RecordStatus::Success;
    let theirs_succeeded = theirs.status == RecordStatus::Success;
    if ours.currency != theirs.currency {
        return Class::CurrencyMismatch;
    }
    match (ours_succeeded, theirs_succeeded) {
        (false, true) => return Class::StatusChannelSuccess,
        (true, false) => return Class::StatusPlatformSuccess,
        (false, false) => return Class::NotDue,
        (true, true) => {}
    }
    if theirs.amount_minor > ours.amount_minor {
        return Class::AmountChannelHigher;
    }
    if ours.amount_minor > theirs.amount_minor {
        return Class::AmountPlatformHigher;
    }
    if let (Some(our_fee), Some(their_fee)) = (ours.fee_minor, theirs.fee_minor)
        && our_fee.abs_diff(their_fee) > fee_tolerance_minor.unsigned_abs()
    {
        return Class::FeeMismatch;
    }
    Class::Matched
}
