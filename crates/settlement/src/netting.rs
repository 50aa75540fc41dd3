//! 轧差 — netting clearing totals into one settlement line per merchant
//! and currency, deciding what to do with it, and what paying it posts.

use crate::error::SettlementError;
use money::Currency;
use std::collections::BTreeMap;
use time::Date;

/// What a clearing entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EntryKind {
    /// A successful collection (收款): money owed to the merchant.
    Collection,
    /// A successful refund (退款): money taken back from the merchant.
    Refund,
}

impl EntryKind {
    pub const ALL: [EntryKind; 2] = [EntryKind::Collection, EntryKind::Refund];

    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::Collection => "COLLECTION",
            EntryKind::Refund => "REFUND",
        }
    }

    pub fn parse(text: &str) -> Option<EntryKind> {
        EntryKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == text)
    }
}

/// How an entry's fee is collected: the fee service's collection mode.
pub use fees::CollectionMode as FeeMode;

/// The clearing entries of one merchant, currency, business date, kind and
/// fee mode, summed by the store (one `GROUP BY` row). A merchant's entries
/// may arrive in any number of such groups, in any order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClearingTotals {
    pub merchant_id: String,
    pub currency: Currency,
    pub business_date: Date,
    pub kind: EntryKind,
    pub fee_mode: FeeMode,
    pub count: u64,
    /// Sum of the entries' amounts, never negative: refunds are positive
    /// amounts too, the kind says which way they go.
    pub amount_minor: i64,
    /// Sum of the fees charged to the merchant for these entries; for
    /// refunds, the fee returned to the merchant. Never negative.
    pub fee_minor: i64,
    /// Whether reconciliation has confirmed these entries (or nothing
    /// outside the platform had to). Netting ignores it; a merchant on
    /// reconciled-only terms settles only confirmed groups.
    pub reconciled: bool,
    /// The lowest entry id in the group. A run that leaves the group
    /// unsettled keeps the store's unsettled floor at or below it.
    pub first_entry_id: i64,
}

/// One merchant's settlement in one currency (结算单).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettlementLine {
    pub merchant_id: String,
    pub currency: Currency,
    pub collection_count: u64,
    pub collections_minor: i64,
    pub refund_count: u64,
    pub refunds_minor: i64,
    /// Real-time fees deducted: fees of collections minus fees returned on
    /// refunds (RealTime mode only). Negative when more was returned than
    /// charged.
    pub fees_minor: i64,
    /// Post-paid and prepaid fees (charged minus returned), reported but not
    /// deducted here.
    pub fees_not_deducted_minor: i64,
    /// collections − refunds − fees_minor.
    pub net_minor: i64,
    pub first_business_date: Date,
    pub last_business_date: Date,
}

/// What a settlement run does with a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Post and pay the line.
    Pay,
    /// The merchant owes more than it is owed: nothing is paid and the
    /// line's entries stay unsettled, so they are netted again, with new
    /// collections, in the next run (负数结算顺延).
    CarryNegative,
    /// Positive but under the merchant's minimum payout: carried like a
    /// negative line (起结金额).
    BelowMinimum,
    /// Exactly zero: nothing to move. The caller may mark the entries
    /// settled without a posting.
    Nothing,
}

/// What paying a line moves in the ledger, signed: the merchant's
/// settlement-pending account (待结算) is debited `pending_debit_minor`,
/// platform fee income credited `income_minor`, the merchant's available
/// balance (可用) credited `available_credit_minor`; and
/// `pending_debit_minor = income_minor + available_credit_minor` always.
/// A negative income (more real-time fee returned than charged) is a debit
/// of income; the caller turns signs into legs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SettlementPosting {
    pub pending_debit_minor: i64,
    pub income_minor: i64,
    pub available_credit_minor: i64,
}

/// Nets clearing totals into one line per (merchant, currency), sorted by
/// merchant id then currency code.
///
/// Sums are kept in `i128` and each line's totals must fit in `i64`
/// (`SETTLEMENT_OVERFLOW` names the merchant otherwise), so the result does
/// not depend on how the entries were grouped or ordered. A negative amount
/// or fee, or an empty merchant id, is `CLEARING_INVALID`.
pub fn net(
    totals: impl IntoIterator<Item = ClearingTotals>,
) -> Result<Vec<SettlementLine>, SettlementError> {
    let mut lines: BTreeMap<(String, Currency), Sums> = BTreeMap::new();
    for group in totals {
        check_totals(&group)?;
        let sums = lines
            .entry((group.merchant_id.clone(), group.currency))
            .or_insert_with(|| Sums::new(group.business_date));
        sums.add(&group).ok_or_else(|| SettlementError::Overflow {
            merchant_id: group.merchant_id.clone(),
            currency: group.currency,
        })?;
    }
    lines
        .into_iter()
        .map(|((merchant_id, currency), sums)| sums.into_line(merchant_id, currency))
        .collect()
}

/// What a run does with `line` given the merchant's minimum payout
/// (`minimum_minor`; zero or less means no minimum).
pub fn decide(line: &SettlementLine, minimum_minor: i64) -> Decision {
    if line.net_minor < 0 {
        Decision::CarryNegative
    } else if line.net_minor == 0 {
        Decision::Nothing
    } else if line.net_minor < minimum_minor {
        Decision::BelowMinimum
    } else {
        Decision::Pay
    }
}

impl SettlementLine {
    /// What paying this line posts (see [`SettlementPosting`]).
    ///
    /// The line is checked again before it is turned into money movements:
    /// counts and sums not negative and `net = collections − refunds −
    /// fees`. A line from [`net`] always passes; one whose public fields
    /// were changed may not, and is `SETTLEMENT_LINE_INCONSISTENT` rather
    /// than an unbalanced posting.
    pub fn posting(&self) -> Result<SettlementPosting, SettlementError> {
        let inconsistent = |reason| SettlementError::LineInconsistent {
            merchant_id: self.merchant_id.clone(),
            currency: self.currency,
            reason,
        };
        if self.collections_minor < 0 || self.refunds_minor < 0 {
            return Err(inconsistent("collections and refunds must not be negative"));
        }
        let gross = i128::from(self.collections_minor) - i128::from(self.refunds_minor);
        if gross - i128::from(self.fees_minor) != i128::from(self.net_minor) {
            return Err(inconsistent("net is not collections − refunds − fees"));
        }
        // Both are non-negative, so their difference fits.
        let pending_debit_minor = i64::try_from(gross)
            .map_err(|_| inconsistent("collections − refunds does not fit in 64 bits"))?;
        let posting = SettlementPosting {
            pending_debit_minor,
            income_minor: self.fees_minor,
            available_credit_minor: self.net_minor,
        };
        debug_assert_eq!(
            i128::from(posting.pending_debit_minor),
            i128::from(posting.income_minor) + i128::from(posting.available_credit_minor)
        );
        Ok(posting)
    }
}

fn check_totals(group: &ClearingTotals) -> Result<(), SettlementError> {
    let refuse = |reason| SettlementError::ClearingInvalid {
        merchant_id: group.merchant_id.clone(),
        reason,
    };
    if group.merchant_id.is_empty() {
        return Err(refuse("the merchant id is empty"));
    }
    if group.amount_minor < 0 {
        return Err(refuse(
            "a negative amount (refunds are positive amounts too)",
        ));
    }
    if group.fee_minor < 0 {
        return Err(refuse(
            "a negative fee (returned fees are positive amounts too)",
        ));
    }
    Ok(())
}

/// One line's running sums, wide enough that adding any number of `i64`
/// groups a line can hold never wraps.
struct Sums {
    collection_count: u64,
    collections: i128,
    refund_count: u64,
    refunds: i128,
    fees: i128,
    fees_not_deducted: i128,
    first: Date,
    last: Date,
}

impl Sums {
    fn new(business_date: Date) -> Sums {
        Sums {
            collection_count: 0,
            collections: 0,
            refund_count: 0,
            refunds: 0,
            fees: 0,
            fees_not_deducted: 0,
            first: business_date,
            last: business_date,
        }
    }

    /// Adds one group; `None` on overflow.
    fn add(&mut self, group: &ClearingTotals) -> Option<()> {
        self.first = self.first.min(group.business_date);
        self.last = self.last.max(group.business_date);
        let amount = i128::from(group.amount_minor);
        let fee = match group.kind {
            EntryKind::Collection => {
                self.collection_count = self.collection_count.checked_add(group.count)?;
                self.collections = self.collections.checked_add(amount)?;
                i128::from(group.fee_minor)
            }
            EntryKind::Refund => {
                self.refund_count = self.refund_count.checked_add(group.count)?;
                self.refunds = self.refunds.checked_add(amount)?;
                -i128::from(group.fee_minor)
            }
        };
        match group.fee_mode {
            FeeMode::RealTime => self.fees = self.fees.checked_add(fee)?,
            FeeMode::PostPaid | FeeMode::Prepaid => {
                self.fees_not_deducted = self.fees_not_deducted.checked_add(fee)?;
            }
        }
        Some(())
    }

    fn into_line(
        self,
        merchant_id: String,
        currency: Currency,
    ) -> Result<SettlementLine, SettlementError> {
        let overflow = || SettlementError::Overflow {
            merchant_id: merchant_id.clone(),
            currency,
        };
        let narrow = |value: i128| i64::try_from(value).map_err(|_| overflow());
        let net = self
            .collections
            .checked_sub(self.refunds)
            .and_then(|gross| gross.checked_sub(self.fees))
            .ok_or_else(overflow)?;
        let collections_minor = narrow(self.collections)?;
        let refunds_minor = narrow(self.refunds)?;
        let fees_minor = narrow(self.fees)?;
        let fees_not_deducted_minor = narrow(self.fees_not_deducted)?;
        let net_minor = narrow(net)?;
        Ok(SettlementLine {
            merchant_id,
            currency,
            collection_count: self.collection_count,
            collections_minor,
            refund_count: self.refund_count,
            refunds_minor,
            fees_minor,
            fees_not_deducted_minor,
            net_minor,
            first_business_date: self.first,
            last_business_date: self.last,
        })
    }
}
