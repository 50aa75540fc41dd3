//! 后收 — post-paid fee bills: at the end of a month, each merchant's
//! post-paid fees (the fee service's `post_paid` collection mode) are summed
//! into one bill per currency and collected by one journal transfer from
//! the merchant's available balance to platform fee income.
//!
//! A bill for a month may be made only once the month is over (by the
//! platform's business date): until then its fees are still coming. It
//! takes every post-paid fee charged up to the month's last business date
//! that no bill holds yet, so a fee charged late for an earlier month (a
//! payout reserved on the 30th, paid on the 1st) lands in the next bill
//! rather than nowhere. Bills are unique per merchant, currency and month,
//! and a bill's fees are marked with it in the transaction that creates it:
//! a fee is billed once, and a run repeated for a month creates nothing.
//!
//! A bill is `ISSUED` when created and `PAID` once its transfer is posted.
//! A merchant whose available balance cannot cover the bill keeps it
//! ISSUED: every later run tries to collect it again (an outstanding bill),
//! nothing is lost and nothing is collected twice (the transfer's key is
//! `fee-bill-{bill}`).

use crate::SettlementError;
use crate::store::SettlementStoreError;
use ledger::TimestampMicros;
use money::Currency;
use std::fmt;
use std::future::Future;
use time::{Date, Month};

/// A calendar month, `YYYY-MM`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FeeMonth {
    year: i32,
    month: Month,
}

impl FeeMonth {
    /// `YYYY-MM` exactly.
    pub fn parse(text: &str) -> Result<FeeMonth, SettlementError> {
        let invalid = || SettlementError::MonthInvalid(text.to_owned());
        let bytes = text.as_bytes();
        let shaped = bytes.len() == 7
            && bytes.iter().enumerate().all(|(index, byte)| match index {
                4 => *byte == b'-',
                _ => byte.is_ascii_digit(),
            });
        if !shaped {
            return Err(invalid());
        }
        let year: i32 = text
            .get(0..4)
            .and_then(|year| year.parse().ok())
            .ok_or_else(invalid)?;
        let month: u8 = text
            .get(5..7)
            .and_then(|month| month.parse().ok())
            .ok_or_else(invalid)?;
        let month = Month::try_from(month).map_err(|_| invalid())?;
        if year < 1 {
            return Err(invalid());
        }
        Ok(FeeMonth { year, month })
    }

    /// The month a date is in.
    pub fn of(date: Date) -> FeeMonth {
        FeeMonth {
            year: date.year(),
            month: date.month(),
        }
    }

    /// The month's last day.
    pub fn last_day(self) -> Result<Date, SettlementError> {
        let days = self.month.length(self.year);
        Date::from_calendar_date(self.year, self.month, days)
            .map_err(|_| SettlementError::MonthInvalid(self.to_string()))
    }

    /// True once `today` is past the month: its fees are all in.
    pub fn is_over(self, today: Date) -> Result<bool, SettlementError> {
        Ok(today > self.last_day()?)
    }
}

impl fmt::Display for FeeMonth {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{:04}-{:02}", self.year, u8::from(self.month))
    }
}

/// Where a bill stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FeeBillStatus {
    /// Created with its fees; not collected yet (outstanding while the
    /// merchant's available balance cannot cover it).
    Issued,
    /// Collected: its transfer is posted (or it was zero).
    Paid,
}

impl FeeBillStatus {
    pub const ALL: [FeeBillStatus; 2] = [FeeBillStatus::Issued, FeeBillStatus::Paid];

    pub fn as_str(self) -> &'static str {
        match self {
            FeeBillStatus::Issued => "ISSUED",
            FeeBillStatus::Paid => "PAID",
        }
    }

    pub fn parse(text: &str) -> Option<FeeBillStatus> {
        FeeBillStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == text)
    }
}

/// One merchant's unbilled post-paid fees in one currency, summed by the
/// store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnbilledFees {
    pub merchant_id: String,
    pub currency: Currency,
    pub charge_count: u64,
    pub fees_minor: i64,
}

/// A bill to create, with which fees it takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewFeeBill {
    pub merchant_id: String,
    pub currency: Currency,
    pub month: FeeMonth,
    /// The fees taken: the merchant's unbilled, charged post-paid fees in
    /// `currency` with `business_date <= up_to_business_date` and
    /// `id <= up_to_fee_id`.
    pub up_to_business_date: Date,
    pub up_to_fee_id: i64,
    pub charge_count: u64,
    pub fees_minor: i64,
}

/// A stored bill.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeeBill {
    pub id: i64,
    pub merchant_id: String,
    pub currency: Currency,
    pub month: FeeMonth,
    pub status: FeeBillStatus,
    pub charge_count: u64,
    pub fees_minor: i64,
    pub up_to_business_date: Date,
    pub transfer_id: Option<i64>,
    pub created_at: TimestampMicros,
    pub updated_at: TimestampMicros,
}

/// A bill as [`FeeBillStore::create_fee_bills`] left it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedFeeBill {
    pub bill: FeeBill,
    pub created: bool,
}

/// One line of a bill: its fees of one business date under one rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeeBillLine {
    pub business_date: Date,
    pub rule_id: String,
    pub charge_count: u64,
    /// The transactions' amounts the fees were priced on.
    pub amount_minor: i64,
    pub fees_minor: i64,
}

/// Post-paid fees and their bills; the `store` crate implements it.
pub trait FeeBillStore: Send + Sync {
    /// The highest payment fee id so far (0 for none): a run bills the fees
    /// up to it, so fees charged while it runs wait for the next bill.
    fn payment_fee_high_water(
        &self,
    ) -> impl Future<Output = Result<i64, SettlementStoreError>> + Send;

    /// Charged post-paid fees no bill holds, with `business_date <=
    /// up_to_business_date` and `id <= up_to_fee_id`, summed by merchant
    /// and currency.
    fn unbilled_fees(
        &self,
        up_to_business_date: Date,
        up_to_fee_id: i64,
    ) -> impl Future<Output = Result<Vec<UnbilledFees>, SettlementStoreError>> + Send;

    /// Creates the bills in one transaction, marking each bill's fees with
    /// its id. A bill whose merchant, currency and month exist is left as
    /// it is and returned. A bill whose fees no longer match its count and
    /// sum is refused and nothing is written.
    fn create_fee_bills(
        &self,
        bills: &[NewFeeBill],
        now: TimestampMicros,
    ) -> impl Future<Output = Result<Vec<CreatedFeeBill>, SettlementStoreError>> + Send;

    /// The bills of one month, by merchant and currency.
    fn fee_bills(
        &self,
        month: FeeMonth,
    ) -> impl Future<Output = Result<Vec<FeeBill>, SettlementStoreError>> + Send;

    /// Bills in `status`, oldest first.
    fn fee_bills_in(
        &self,
        status: FeeBillStatus,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<FeeBill>, SettlementStoreError>> + Send;

    /// A bill's lines, by business date and rule.
    fn fee_bill_lines(
        &self,
        bill_id: i64,
    ) -> impl Future<Output = Result<Vec<FeeBillLine>, SettlementStoreError>> + Send;

    /// ISSUED → PAID, recording its transfer (none for a zero bill);
    /// compare-and-set.
    fn mark_fee_bill_paid(
        &self,
        bill_id: i64,
        transfer_id: Option<i64>,
        now: TimestampMicros,
    ) -> impl Future<Output = Result<(), SettlementStoreError>> + Send;
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn months_parse_exactly_and_end_on_their_last_day() {
        let november = FeeMonth::parse("2026-11").unwrap();
        assert_eq!(november.to_string(), "2026-11");
        assert_eq!(november.last_day().unwrap(), date!(2026 - 11 - 30));
        assert_eq!(
            FeeMonth::parse("2028-02").unwrap().last_day().unwrap(),
            date!(2028 - 02 - 29)
        );
        assert!(!november.is_over(date!(2026 - 11 - 30)).unwrap());
        assert!(november.is_over(date!(2026 - 12 - 01)).unwrap());
        assert_eq!(FeeMonth::of(date!(2026 - 11 - 05)), november);
        for bad in [
            "2026-13",
            "2026-00",
            "2026-1",
            "26-11",
            "2026/11",
            "2026-11-01",
            "0000-01",
            " 2026-11",
        ] {
            assert_eq!(
                FeeMonth::parse(bad),
                Err(SettlementError::MonthInvalid(bad.to_owned())),
                "{bad}"
            );
        }
        assert!(FeeMonth::parse("2026-12").unwrap() > november);
    }

    #[test]
    fn statuses_parse() {
        for status in FeeBillStatus::ALL {
            assert_eq!(FeeBillStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(FeeBillStatus::parse("OPEN"), None);
    }
}
