//! `paycore fee bill` (the month-end bills of post-paid fees, 后收) and
//! `paycore fee deposit | account` (a merchant's prepaid fee account,
//! 预充实扣), for operators.

use crate::tables::write_report;
use crate::{ConfigArgs, DatabaseArgs, open_state};
use anyhow::{Context, Result};
use engine::FeeDeposit;
use ledger::{AccountKind, LedgerStore, OwnerKind};
use money::{Currency, Money};
use server::fee_billing::FeeBillReport;
use settlement::{FeeBill, FeeBillStore, FeeMonth};
use std::path::PathBuf;

/// `paycore fee bill`.
#[derive(Debug, Clone, clap::Args)]
pub struct BillArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    #[command(flatten)]
    pub config: ConfigArgs,
    /// The month to bill, YYYY-MM; it must be over.
    #[arg(long)]
    pub month: String,
    /// Write the month's bills (with their lines) as CSV here.
    #[arg(long)]
    pub csv: Option<PathBuf>,
    /// Write them as an Excel workbook here.
    #[arg(long)]
    pub xlsx: Option<PathBuf>,
}

/// `paycore fee deposit`: record money a merchant wired in for its fee
/// account.
#[derive(Debug, Clone, clap::Args)]
pub struct DepositArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    #[command(flatten)]
    pub config: ConfigArgs,
    #[arg(long)]
    pub merchant: String,
    /// The bank transfer's reference; a repeat is the same deposit.
    #[arg(long)]
    pub reference: String,
    /// In major units, e.g. 500.00.
    #[arg(long)]
    pub amount: String,
    #[arg(long, default_value = "CNY")]
    pub currency: String,
    /// The channel whose account received the money.
    #[arg(long, default_value = "simbank")]
    pub channel: String,
}

const BILL_HEADER: [&str; 11] = [
    "bill",
    "merchant_id",
    "currency",
    "month",
    "status",
    "bill_charge_count",
    "bill_fees",
    "line_business_date",
    "line_rule_id",
    "line_charge_count",
    "line_fees",
];

/// Bills the month and writes what it holds.
pub async fn bill(args: &BillArgs) -> Result<()> {
    let month = FeeMonth::parse(&args.month)?;
    let config = args.config.load()?;
    let state = open_state(&args.database.database, &config).await?;
    let report = server::fee_billing::run(&state, month, store::now_micros())
        .await
        .with_context(|| format!("billing {month}"))?;
    print_report(month, &report);
    let bills = state.store().fee_bills(month).await?;
    let mut rows = Vec::new();
    for bill in &bills {
        rows.extend(bill_rows(&state, bill).await?);
    }
    if args.csv.is_some() || args.xlsx.is_some() {
        write_report(
            args.csv.as_deref(),
            args.xlsx.as_deref(),
            "fee bills",
            &BILL_HEADER,
            &rows,
        )?;
    }
    if report.outstanding.is_empty() {
        Ok(())
    } else {
        anyhow::bail!(
            "{} bill(s) could not be collected; a later run retries them",
            report.outstanding.len()
        )
    }
}

/// A bill as report rows: one per line, each with the bill's figures.
async fn bill_rows(state: &server::AppState, bill: &FeeBill) -> Result<Vec<Vec<String>>> {
    let amount = |minor: i64| Money::new(minor, bill.currency).to_string();
    let lines = state.store().fee_bill_lines(bill.id).await?;
    Ok(lines
        .into_iter()
        .map(|line| {
            vec![
                bill.id.to_string(),
                bill.merchant_id.clone(),
                bill.currency.code().to_owned(),
                bill.month.to_string(),
                bill.status.as_str().to_owned(),
                bill.charge_count.to_string(),
                amount(bill.fees_minor),
                line.business_date.to_string(),
                line.rule_id,
                line.charge_count.to_string(),
                amount(line.fees_minor),
            ]
        })
        .collect())
}

fn print_report(month: FeeMonth, report: &FeeBillReport) {
    println!("post-paid fee bills of {month}");
    for (label, count) in [
        ("bills created", report.bills_created),
        (
            "bills of this month from an earlier run",
            report.bills_existing,
        ),
        ("bills collected", report.bills_paid),
        ("bills outstanding", report.outstanding.len() as u64),
    ] {
        println!("{label:<42} {count:>10}");
    }
    for (currency, billed) in &report.billed_minor {
        println!(
            "{}: billed {}",
            currency.code(),
            Money::new(*billed, *currency)
        );
    }
    for (currency, collected) in &report.collected_minor {
        println!(
            "{}: collected into platform fee income {}",
            currency.code(),
            Money::new(*collected, *currency)
        );
    }
    for (bill, reason) in &report.outstanding {
        println!("bill {bill} OUTSTANDING: {reason}");
    }
}

/// Records a deposit and prints the fee account after it.
pub async fn deposit(args: &DepositArgs) -> Result<()> {
    let currency = Currency::from_code(&args.currency)
        .with_context(|| format!("unknown currency {:?}", args.currency))?;
    let amount = Money::parse_major(&args.amount, currency).context("--amount")?;
    let config = args.config.load()?;
    let state = open_state(&args.database.database, &config).await?;
    let transfer = state
        .payments()
        .deposit_to_fee_account(
            &args.merchant,
            &args.reference,
            amount.amount_minor(),
            currency,
            &FeeDeposit::Channel(args.channel.clone()),
            store::now_micros(),
        )
        .await
        .with_context(|| format!("depositing into the fee account of {}", args.merchant))?;
    let account_id = state
        .payments()
        .account(
            OwnerKind::Merchant,
            &args.merchant,
            AccountKind::MerchantFee,
            currency,
        )
        .await?;
    let available = state
        .store()
        .account(account_id)
        .await?
        .and_then(|account| account.balance())
        .map_or(0, |balance| balance.available_minor);
    println!(
        "deposit {} of {} into the fee account of {} (transfer {}); available {}",
        args.reference,
        amount,
        args.merchant,
        transfer.id,
        Money::new(available, currency)
    );
    Ok(())
}
