//! The API's own request and response types. The domain types do not
//! derive serde; these do, and convert.

mod account;
mod agreement;
mod batch;
mod fee;
mod fee_rule;
mod payment;
mod reconciliation;
mod transfer;

pub use account::*;
pub use agreement::*;
pub use batch::*;
pub use fee::*;
pub use fee_rule::*;
pub use payment::*;
pub use reconciliation::*;
pub use transfer::*;

use crate::error::ApiError;
use money::Currency;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Declares an API enum that mirrors a domain enum variant for variant, with
/// conversions both ways; serde names are the domain's `as_str` names.
macro_rules! mirror_enum {
    ($(#[$meta:meta])* $name:ident <=> $domain:ident { $($variant:ident),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($variant),+
        }

        impl From<$name> for ledger::$domain {
            fn from(value: $name) -> Self {
                match value {
                    $($name::$variant => ledger::$domain::$variant),+
                }
            }
        }

        impl From<ledger::$domain> for $name {
            fn from(value: ledger::$domain) -> Self {
                match value {
                    $(ledger::$domain::$variant => $name::$variant),+
                }
            }
        }
    };
}

mirror_enum! {
    /// The side of a leg or entry.
    Side <=> Side { Debit, Credit }
}

mirror_enum! {
    /// The class of an accounting subject; it fixes the normal side.
    SubjectClass <=> SubjectClass { Asset, Liability, Equity, Income, Expense }
}

mirror_enum! {
    /// Who owns an account.
    OwnerKind <=> OwnerKind { Member, Merchant, Platform, Channel }
}

mirror_enum! {
    /// What an account is for.
    AccountKind <=> AccountKind {
        MemberCash,
        MemberBonus,
        MerchantPending,
        MerchantAvailable,
        MerchantFee,
        MerchantEscrow,
        PlatformIncome,
        PlatformMarketing,
        BonusDeferred,
        ChannelClearing,
        Suspense,
        Equity,
    }
}

mirror_enum! {
    /// The kind of a stored transfer.
    TransferKind <=> TransferKind {
        Transfer,
        Pending,
        PostPending,
        VoidPending,
        Reversal,
        Freeze,
        Unfreeze,
    }
}

mirror_enum! {
    /// Where a stored transfer stands.
    TransferStatus <=> TransferStatus { Posted, Pending, PendingPosted, Voided, Reversed }
}

/// Parses an ISO 4217 code: 422 `UNKNOWN_CURRENCY` when there is no such
/// currency, 422 `UNSUPPORTED_CURRENCY` when it has no minor unit.
pub fn parse_currency(code: &str) -> Result<Currency, ApiError> {
    Ok(Currency::from_code(code)?)
}

/// The `{status: "ok"}` of the health check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct HealthResponse {
    #[schema(example = "ok")]
    pub status: String,
}

/// The outcome of the ledger's invariant check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CheckResponse {
    /// True when no invariant is broken.
    pub sound: bool,
    pub accounts_checked: u64,
    pub transfers_checked: u64,
    pub entries_checked: u64,
    pub subjects_checked: u64,
    /// One sentence per broken invariant.
    pub violations: Vec<String>,
}

impl From<ledger::CheckReport> for CheckResponse {
    fn from(report: ledger::CheckReport) -> Self {
        CheckResponse {
            sound: report.is_sound(),
            accounts_checked: report.accounts_checked,
            transfers_checked: report.transfers_checked,
            entries_checked: report.entries_checked,
            subjects_checked: report.subjects_checked,
            violations: report.violations,
        }
    }
}
