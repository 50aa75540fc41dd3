use money::Currency;
use std::fmt;

/// A ledger account's identifier, assigned by the store.
pub type AccountId = i64;

/// Microseconds since the Unix epoch, UTC.
pub type TimestampMicros = i64;

/// Which side of an entry: a debit or a credit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    Debit,
    Credit,
}

impl Side {
    pub fn opposite(self) -> Side {
        match self {
            Side::Debit => Side::Credit,
            Side::Credit => Side::Debit,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Side::Debit => "debit",
            Side::Credit => "credit",
        }
    }

    pub fn parse(text: &str) -> Option<Side> {
        match text {
            "debit" => Some(Side::Debit),
            "credit" => Some(Side::Credit),
            _ => None,
        }
    }
}

/// The class of an accounting subject (科目类别). It fixes the normal side:
/// assets and expenses grow with debits, the others with credits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SubjectClass {
    Asset,
    Liability,
    Equity,
    Income,
    Expense,
}

impl SubjectClass {
    pub const ALL: [SubjectClass; 5] = [
        SubjectClass::Asset,
        SubjectClass::Liability,
        SubjectClass::Equity,
        SubjectClass::Income,
        SubjectClass::Expense,
    ];

    pub fn normal_side(self) -> Side {
        match self {
            SubjectClass::Asset | SubjectClass::Expense => Side::Debit,
            SubjectClass::Liability | SubjectClass::Equity | SubjectClass::Income => Side::Credit,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SubjectClass::Asset => "asset",
            SubjectClass::Liability => "liability",
            SubjectClass::Equity => "equity",
            SubjectClass::Income => "income",
            SubjectClass::Expense => "expense",
        }
    }

    pub fn parse(text: &str) -> Option<SubjectClass> {
        SubjectClass::ALL
            .into_iter()
            .find(|class| class.as_str() == text)
    }
}

/// Who owns an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OwnerKind {
    Member,
    Merchant,
    Platform,
    Channel,
}

impl OwnerKind {
    pub const ALL: [OwnerKind; 4] = [
        OwnerKind::Member,
        OwnerKind::Merchant,
        OwnerKind::Platform,
        OwnerKind::Channel,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OwnerKind::Member => "member",
            OwnerKind::Merchant => "merchant",
            OwnerKind::Platform => "platform",
            OwnerKind::Channel => "channel",
        }
    }

    pub fn parse(text: &str) -> Option<OwnerKind> {
        OwnerKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == text)
    }
}

/// What an account is for. Each kind has a default subject class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AccountKind {
    /// Member cash balance (会员现金余额).
    MemberCash,
    /// Member bonus or cashback balance (返现账户 / 赠送余额).
    MemberBonus,
    /// Merchant money waiting for settlement (待结算).
    MerchantPending,
    /// Merchant settled, available money.
    MerchantAvailable,
    /// Merchant prepaid fee account (手续费账户).
    MerchantFee,
    /// 担保账户 — an escrow trade's money, paid by the buyer and not yet
    /// released to the merchant (担保交易).
    MerchantEscrow,
    /// Platform fee revenue.
    PlatformIncome,
    /// Platform marketing expense (coupons, bonuses).
    PlatformMarketing,
    /// 赠送金待摊 — bonus granted to members and not spent yet: a deferred
    /// marketing expense, booked as marketing expense as members spend it.
    BonusDeferred,
    /// Money held at or in flight from a channel (备付金 / 渠道在途).
    ChannelClearing,
    /// 挂账 — suspense for money not yet explained.
    Suspense,
    /// Capital and the outside world's side of opening balances.
    Equity,
}

impl AccountKind {
    pub const ALL: [AccountKind; 12] = [
        AccountKind::MemberCash,
        AccountKind::MemberBonus,
        AccountKind::MerchantPending,
        AccountKind::MerchantAvailable,
        AccountKind::MerchantFee,
        AccountKind::MerchantEscrow,
        AccountKind::PlatformIncome,
        AccountKind::PlatformMarketing,
        AccountKind::BonusDeferred,
        AccountKind::ChannelClearing,
        AccountKind::Suspense,
        AccountKind::Equity,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AccountKind::MemberCash => "member_cash",
            AccountKind::MemberBonus => "member_bonus",
            AccountKind::MerchantPending => "merchant_pending",
            AccountKind::MerchantAvailable => "merchant_available",
            AccountKind::MerchantFee => "merchant_fee",
            AccountKind::MerchantEscrow => "merchant_escrow",
            AccountKind::PlatformIncome => "platform_income",
            AccountKind::PlatformMarketing => "platform_marketing",
            AccountKind::BonusDeferred => "bonus_deferred",
            AccountKind::ChannelClearing => "channel_clearing",
            AccountKind::Suspense => "suspense",
            AccountKind::Equity => "equity",
        }
    }

    pub fn parse(text: &str) -> Option<AccountKind> {
        AccountKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == text)
    }

    /// The subject class an account of this kind takes unless told otherwise.
    pub fn default_subject_class(self) -> SubjectClass {
        match self {
            AccountKind::MemberCash
            | AccountKind::MemberBonus
            | AccountKind::MerchantPending
            | AccountKind::MerchantAvailable
            | AccountKind::MerchantFee
            | AccountKind::MerchantEscrow
            | AccountKind::Suspense => SubjectClass::Liability,
            AccountKind::PlatformIncome => SubjectClass::Income,
            AccountKind::PlatformMarketing => SubjectClass::Expense,
            AccountKind::ChannelClearing | AccountKind::BonusDeferred => SubjectClass::Asset,
            AccountKind::Equity => SubjectClass::Equity,
        }
    }
}

/// How far below zero an account's available balance may go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Overdraft {
    /// Down to minus this many minor units (0: never negative).
    Limit(i64),
    /// Without limit: for accounts that mirror the outside world.
    Unlimited,
}

impl Default for Overdraft {
    fn default() -> Self {
        Overdraft::Limit(0)
    }
}

/// The running totals of an account. Every balance is derived from these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Balances {
    pub debits_posted_minor: i64,
    pub credits_posted_minor: i64,
    pub debits_pending_minor: i64,
    pub credits_pending_minor: i64,
    /// 冻结 — frozen by holds; not available.
    pub frozen_minor: i64,
}

/// A balance view of one account, in its normal side's sign.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BalanceView {
    /// Posted balance (账面余额).
    pub ledger_minor: i64,
    /// Ledger less frozen and outgoing pending: what can be spent.
    pub available_minor: i64,
    pub frozen_minor: i64,
    /// Reserved by pending transfers, outgoing.
    pub pending_outgoing_minor: i64,
    /// Expected from pending transfers, incoming.
    pub pending_incoming_minor: i64,
}

/// A ledger account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: AccountId,
    /// 科目 — the accounting subject code, e.g. `2241`.
    pub subject_code: String,
    pub subject_class: SubjectClass,
    pub kind: AccountKind,
    pub owner_kind: OwnerKind,
    pub owner_id: String,
    pub currency: Currency,
    pub overdraft: Overdraft,
    pub balances: Balances,
    pub created_at: TimestampMicros,
}

impl Account {
    pub fn normal_side(&self) -> Side {
        self.subject_class.normal_side()
    }

    /// The balance view; `None` only if the totals overflow, which the
    /// ledger's checked arithmetic never lets happen.
    pub fn balance(&self) -> Option<BalanceView> {
        balance_view(&self.balances, self.normal_side())
    }
}

/// Balances in the sign of the normal side.
pub fn balance_view(balances: &Balances, normal_side: Side) -> Option<BalanceView> {
    let (posted_normal, posted_other, pending_out, pending_in) = match normal_side {
        Side::Debit => (
            balances.debits_posted_minor,
            balances.credits_posted_minor,
            balances.credits_pending_minor,
            balances.debits_pending_minor,
        ),
        Side::Credit => (
            balances.credits_posted_minor,
            balances.debits_posted_minor,
            balances.debits_pending_minor,
            balances.credits_pending_minor,
        ),
    };
    let ledger_minor = posted_normal.checked_sub(posted_other)?;
    let available_minor = ledger_minor
        .checked_sub(pending_out)?
        .checked_sub(balances.frozen_minor)?;
    Some(BalanceView {
        ledger_minor,
        available_minor,
        frozen_minor: balances.frozen_minor,
        pending_outgoing_minor: pending_out,
        pending_incoming_minor: pending_in,
    })
}

/// What a caller gives to open an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAccount {
    pub subject_code: String,
    pub subject_class: SubjectClass,
    pub kind: AccountKind,
    pub owner_kind: OwnerKind,
    pub owner_id: String,
    pub currency: Currency,
    pub overdraft: Overdraft,
}

/// Longest subject code or owner id accepted.
pub const ACCOUNT_TEXT_LENGTH_MAX: usize = 64;

/// Why an account could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountError {
    #[error("{field} must be 1 to {max} characters")]
    InvalidText { field: &'static str, max: usize },
    #[error("overdraft limit must not be negative")]
    NegativeOverdraft,
    #[error("account already exists with id {0}")]
    AlreadyExists(AccountId),
}

impl AccountError {
    pub fn code(&self) -> &'static str {
        match self {
            AccountError::InvalidText { .. } => "INVALID_ACCOUNT",
            AccountError::NegativeOverdraft => "INVALID_OVERDRAFT",
            AccountError::AlreadyExists(_) => "ACCOUNT_EXISTS",
        }
    }
}

impl NewAccount {
    pub fn validate(&self) -> Result<(), AccountError> {
        let text_ok =
            |text: &str| !text.is_empty() && text.chars().count() <= ACCOUNT_TEXT_LENGTH_MAX;
        if !text_ok(&self.subject_code) {
            return Err(AccountError::InvalidText {
                field: "subject_code",
                max: ACCOUNT_TEXT_LENGTH_MAX,
            });
        }
        if !text_ok(&self.owner_id) {
            return Err(AccountError::InvalidText {
                field: "owner_id",
                max: ACCOUNT_TEXT_LENGTH_MAX,
            });
        }
        if let Overdraft::Limit(limit) = self.overdraft
            && limit < 0
        {
            return Err(AccountError::NegativeOverdraft);
        }
        Ok(())
    }
}

impl fmt::Display for Side {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}
