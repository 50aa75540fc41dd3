//! `paycore`: the command line of the payment-platform core.

mod agreements;
mod batches;
mod bench;
mod bench_pay;
mod bench_recon;
mod bench_settle;
mod business_day;
mod debits;
mod demo;
mod fee_bills;
mod fee_rules;
mod fees;
mod progress;
mod reconciliation;
mod settle;
mod signed;
mod tables;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use ledger::LedgerStore;
use std::net::SocketAddr;
use store::{Ledger, LedgerOptions, Store};
use tracing_subscriber::EnvFilter;

#[derive(Debug, Parser)]
#[command(
    name = "paycore",
    version,
    about = "paycore: ledger, payments, fees, settlement and reconciliation"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Products, channels, routes and limits.
#[derive(Debug, Clone, clap::Args)]
struct ConfigArgs {
    /// A configuration file like config/paycore.toml; without it the
    /// built-in copy of that file is used.
    #[arg(long, env = "PAYCORE_CONFIG")]
    config: Option<std::path::PathBuf>,
}

impl ConfigArgs {
    fn load(&self) -> Result<server::Config> {
        match &self.config {
            None => Ok(server::Config::builtin()?),
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                server::Config::parse(&text).with_context(|| format!("in {}", path.display()))
            }
        }
    }
}

/// The key of the keyed fingerprints of card and ID numbers in agreements.
#[derive(Debug, Clone, clap::Args)]
struct PersonalDataArgs {
    /// Hex, at least 32 bytes; keep it for the life of the database, or the
    /// same card is no longer recognised. Without it the public
    /// development key is used.
    #[arg(long, env = "PAYCORE_PERSONAL_DATA_KEY", hide_env_values = true)]
    personal_data_key: Option<String>,
}

/// Where the data lives: a SQLite file (the default) or a PostgreSQL URL.
#[derive(Debug, Clone, clap::Args)]
struct DatabaseArgs {
    /// A SQLite file path, or postgres://user@host/database.
    #[arg(long, env = "PAYCORE_DATABASE", default_value = "paycore.db")]
    database: String,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP JSON API.
    Serve {
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        #[command(flatten)]
        database: DatabaseArgs,
        #[command(flatten)]
        config: ConfigArgs,
        #[command(flatten)]
        fee_rules: fee_rules::FeeRulesFileArgs,
        #[command(flatten)]
        personal_data: PersonalDataArgs,
    },
    /// Ledger operations.
    Ledger {
        #[command(subcommand)]
        command: LedgerCommand,
    },
    /// Run a short scripted business example through the HTTP API, then
    /// optionally keep serving.
    Demo {
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        #[command(flatten)]
        database: DatabaseArgs,
        #[command(flatten)]
        config: ConfigArgs,
        #[command(flatten)]
        fee_rules: fee_rules::FeeRulesFileArgs,
        #[command(flatten)]
        personal_data: PersonalDataArgs,
        /// Keep the server running after the example.
        #[arg(long)]
        serve: bool,
        /// Merchants' settlement terms like config/settlement.toml for the
        /// day's settlement; without it everyone settles D+1 to its payment
        /// account, reconciled or not.
        #[arg(long)]
        settlement: Option<std::path::PathBuf>,
    },
    /// Channels and routing: mark a payer bank down on a channel, list
    /// outages.
    Channel {
        #[command(subcommand)]
        command: ChannelCommand,
    },
    /// Agreements (签约) for debit collection (代扣), masked as the API
    /// shows them.
    Agreements {
        #[command(subcommand)]
        command: AgreementsCommand,
    },
    /// Collection batches (批量代扣) with a deadline: upload, run, lines,
    /// return file (回盘).
    Batch {
        #[command(subcommand)]
        command: batches::BatchCommand,
    },
    /// Escrow trades (担保交易): show a trade's escrow, or release it to
    /// its merchant as an operator.
    Escrow {
        #[command(subcommand)]
        command: EscrowCommand,
    },
    /// The operator's refund review queue.
    Refunds {
        #[command(subcommand)]
        command: RefundsCommand,
    },
    /// Reconciliation (对账): import channel statements, run, report; and
    /// internal reconciliation of orders against the journal.
    Recon {
        #[command(subcommand)]
        command: ReconCommand,
    },
    /// The fee service (计费): quote a transaction's fee; the stored rule
    /// table.
    Fee {
        #[command(subcommand)]
        command: FeeCommand,
    },
    /// Settlement (结算): net merchants' cleared collections, refunds and
    /// fees into batches, post them and pay them out.
    Settle {
        #[command(subcommand)]
        command: SettleCommand,
    },
    /// Reports of a date, as CSV or Excel: the daily summary (日汇总) and
    /// the settlement statement.
    Report {
        #[command(subcommand)]
        command: ReportCommand,
    },
    /// A merchant's daily trade bill (商户对账单), as `GET /v1/bills`
    /// serves it.
    Bill {
        #[command(flatten)]
        database: DatabaseArgs,
        #[arg(long)]
        merchant: String,
        /// The business date, YYYY-MM-DD.
        #[arg(long)]
        date: String,
        /// ALL, SUCCESS (collections) or REFUND.
        #[arg(long = "type", default_value = "ALL")]
        bill_type: String,
        /// Write the CSV here instead of standard output.
        #[arg(long)]
        out: Option<std::path::PathBuf>,
    },
    /// Benchmarks, each against a baseline measured in the same run.
    Bench {
        #[command(subcommand)]
        command: BenchCommand,
    },
}

#[derive(Debug, Subcommand)]
enum SettleCommand {
    /// Settle every merchant whose entries are due on a date, by its cycle
    /// and the business-day calendar. Running a date again is a no-op.
    Run {
        #[command(flatten)]
        settle: settle::SettleArgs,
        /// The settlement date, YYYY-MM-DD.
        #[arg(long)]
        date: String,
    },
    /// The settlement statement of a date: one row per merchant batch
    /// (paid, carried, held, below minimum), as CSV or Excel; the same as
    /// `report settlement`.
    Report(ReportArgs),
}

#[derive(Debug, Subcommand)]
enum ReportCommand {
    /// The daily summary (日汇总) of a date: per merchant and currency the
    /// collections, refunds, fees by collection mode and net of the
    /// clearing entries of that business date, and the settlement batches
    /// of that settlement date; a TOTAL row per currency. CSV on standard
    /// output unless --csv or --xlsx is given.
    Daily(ReportArgs),
    /// The settlement statement of a date, as `settle report` writes it.
    Settlement(ReportArgs),
}

#[derive(Debug, clap::Args)]
struct ReportArgs {
    #[command(flatten)]
    database: DatabaseArgs,
    /// The date, YYYY-MM-DD.
    #[arg(long)]
    date: String,
    /// Write CSV here.
    #[arg(long)]
    csv: Option<std::path::PathBuf>,
    /// Write an Excel workbook here.
    #[arg(long)]
    xlsx: Option<std::path::PathBuf>,
}

#[derive(Debug, Subcommand)]
enum LedgerCommand {
    /// Re-derive every balance from the journal and report broken invariants
    /// (exit status 1 if any).
    Check {
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

#[derive(Debug, Subcommand)]
enum ChannelCommand {
    /// Mark a bank down on a channel (routing avoids it), or up again.
    Outage {
        #[arg(long)]
        channel: String,
        #[arg(long)]
        bank: String,
        /// Bring the bank back instead.
        #[arg(long)]
        up: bool,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// List the banks marked down.
    Outages {
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

#[derive(Debug, Subcommand)]
enum AgreementsCommand {
    /// A merchant's agreements by id, as CSV (standard output without
    /// --csv/--xlsx) or Excel.
    List {
        #[command(flatten)]
        database: DatabaseArgs,
        #[arg(long)]
        merchant: String,
        /// Start after this agreement id.
        #[arg(long, default_value_t = 0)]
        after: i64,
        #[arg(long)]
        csv: Option<std::path::PathBuf>,
        #[arg(long)]
        xlsx: Option<std::path::PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum RefundsCommand {
    /// List refunds waiting for review.
    Queue {
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Approve (pay out) or reject a refund waiting for review.
    Review {
        /// The refund's id.
        #[arg(long)]
        id: i64,
        /// The refund's merchant.
        #[arg(long)]
        merchant: String,
        /// Reject instead of approving.
        #[arg(long)]
        reject: bool,
        /// Who decides; recorded with the decision.
        #[arg(long, env = "USER")]
        operator: String,
        /// Why; recorded with the decision.
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        database: DatabaseArgs,
        #[command(flatten)]
        config: ConfigArgs,
    },
}

#[derive(Debug, Subcommand)]
enum EscrowCommand {
    /// Where a trade's escrow stands.
    Show {
        #[arg(long)]
        merchant: String,
        #[arg(long)]
        out_trade_no: String,
        #[command(flatten)]
        database: DatabaseArgs,
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Release a trade's escrow to its merchant (what is left after
    /// refunds goes to settlement-pending and is cleared with its fee).
    Release {
        #[arg(long)]
        merchant: String,
        #[arg(long)]
        out_trade_no: String,
        /// Who releases; recorded as `operator:{name}`.
        #[arg(long, env = "USER")]
        operator: String,
        /// Why; recorded with the release.
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        database: DatabaseArgs,
        #[command(flatten)]
        config: ConfigArgs,
    },
}

#[derive(Debug, Subcommand)]
enum ReconCommand {
    /// Import a channel's statement file for a business date: parsed,
    /// written to reconciliation storage whole or not at all, and refused
    /// if the same file was imported before.
    Import {
        #[command(flatten)]
        recon: reconciliation::ReconArgs,
        #[arg(long)]
        channel: String,
        /// The channel's business date, YYYY-MM-DD.
        #[arg(long)]
        date: String,
        #[arg(long)]
        file: std::path::PathBuf,
        /// wechat, alipay, unionpay-zm or mapping:<file>; the channel's
        /// configured format without it.
        #[arg(long)]
        format: Option<String>,
    },
    /// Reconcile a channel's business date: snapshot our records, match them
    /// with the imported statements, store discrepancies, resolve carried
    /// ones that agree now, and apply the error codes' treatments.
    Run {
        #[command(flatten)]
        recon: reconciliation::ReconArgs,
        #[arg(long)]
        channel: String,
        #[arg(long)]
        date: String,
        /// Find and store discrepancies but treat none.
        #[arg(long)]
        no_treat: bool,
    },
    /// The discrepancies of a day as CSV (standard output without --csv)
    /// and Excel.
    Report {
        #[command(flatten)]
        recon: reconciliation::ReconArgs,
        #[arg(long)]
        channel: String,
        #[arg(long)]
        date: String,
        #[arg(long)]
        csv: Option<std::path::PathBuf>,
        #[arg(long)]
        xlsx: Option<std::path::PathBuf>,
    },
    /// Internal reconciliation (内部对账): every successful payment, refund
    /// and posted settlement batch against its journal transfers, and every
    /// transfer against its business record. Exit status 1 on findings.
    Internal {
        #[command(flatten)]
        database: DatabaseArgs,
        /// Write the findings as CSV here.
        #[arg(long)]
        csv: Option<std::path::PathBuf>,
        /// Write the findings as an Excel workbook here.
        #[arg(long)]
        xlsx: Option<std::path::PathBuf>,
    },
    /// Write the simulated bank's statement of a day (WeChat Pay bill
    /// layout) from what it booked.
    SimulateStatement {
        #[command(flatten)]
        recon: reconciliation::ReconArgs,
        #[arg(long, default_value = "simbank")]
        channel: String,
        #[arg(long)]
        date: String,
        #[arg(long)]
        out: std::path::PathBuf,
        /// Add one unknown booking, drop one of ours and change one fee.
        #[arg(long)]
        inject: bool,
        /// Leave this channel order of ours out (repeatable).
        #[arg(long = "drop-order")]
        drop_orders: Vec<i64>,
    },
}

#[derive(Debug, Subcommand)]
enum FeeCommand {
    /// Print the rule that matches one transaction, its method and the fee.
    Quote(fees::QuoteArgs),
    /// Bill a month's post-paid fees (后收), once it is over: one bill per
    /// merchant and currency, collected from its available balance. A bill
    /// it cannot collect stays outstanding for the next run; running a
    /// month again creates nothing.
    Bill(fee_bills::BillArgs),
    /// Record money a merchant wired in for its prepaid fee account
    /// (预充实扣); a repeated reference is the same deposit.
    Deposit(fee_bills::DepositArgs),
    /// The stored fee rule table servers price with: list, show, set,
    /// delete (each change versioned and audited).
    Rules {
        #[command(subcommand)]
        command: fee_rules::RulesCommand,
    },
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// Durable transfer throughput: batched on SQLite and PostgreSQL, one
    /// transfer per request through the HTTP API, and a naive baseline.
    Ledger(bench::LedgerBenchArgs),
    /// Signed create-and-pay requests through the HTTP API on SQLite, with
    /// latency percentiles, against plain ledger transfers in the same run.
    Pay(bench_pay::PayBenchArgs),
    /// Fee quotes per second on one thread against 1,000 rules: the
    /// specificity index against a linear scan of every rule.
    Fees(fees::FeeBenchArgs),
    /// Reconciliation: classify N platform and N channel records with the
    /// DataFusion engine, against DuckDB on the same files in the same run.
    Recon(bench_recon::ReconBenchArgs),
    /// Settlement: N clearing entries across M merchants netted into
    /// batches and posted, against one aggregate scan of the entries.
    Settle(bench_settle::SettleBenchArgs),
    /// One classification of `bench recon`, in a process of its own so that
    /// the peak memory it reports is the classification's alone.
    #[command(hide = true)]
    ReconRun(bench_recon::ReconRunArgs),
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    // The server logs every request; the demo and benchmarks print their own
    // story, so only warnings show there unless RUST_LOG says otherwise.
    let default_filter = match cli.command {
        Command::Serve { .. } => "info",
        _ => "warn",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter)),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(run(cli.command))
}

async fn run(command: Command) -> Result<()> {
    match command {
        Command::Serve {
            listen,
            database,
            config,
            fee_rules,
            personal_data,
        } => {
            let config = config.load()?;
            let key = agreements::personal_data_key(personal_data.personal_data_key.as_deref())?;
            let ledger = open_ledger(&database.database).await?;
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("binding {listen}"))?;
            tracing::info!(address = %listener.local_addr()?, database = %database.database, "serving");
            let state = server::AppState::with_personal_data_key(ledger, &config, key);
            fee_rules.apply(&state).await?;
            server::serve_state(listener, state)
                .await
                .context("serving HTTP")
        }
        Command::Ledger {
            command: LedgerCommand::Check { database },
        } => ledger_check(&database.database).await,
        Command::Demo {
            listen,
            database,
            config,
            fee_rules,
            personal_data,
            serve,
            settlement,
        } => {
            let config = config.load()?;
            let key = agreements::personal_data_key(personal_data.personal_data_key.as_deref())?;
            let terms = settlement
                .map(|path| settlement::SettlementConfig::load(&path))
                .transpose()?;
            let ledger = open_ledger(&database.database).await?;
            let state = server::AppState::with_personal_data_key(ledger, &config, key);
            fee_rules.apply(&state).await?;
            demo::run(state, listen, serve, terms).await
        }
        Command::Channel { command } => channel(command).await,
        Command::Recon { command } => recon_command(command).await,
        Command::Settle {
            command: SettleCommand::Run { settle, date },
        } => settle::run(&settle, &date).await,
        Command::Settle {
            command: SettleCommand::Report(arguments),
        }
        | Command::Report {
            command: ReportCommand::Settlement(arguments),
        } => {
            settle::report(
                &arguments.database,
                &arguments.date,
                arguments.csv.as_deref(),
                arguments.xlsx.as_deref(),
            )
            .await
        }
        Command::Report {
            command: ReportCommand::Daily(arguments),
        } => {
            settle::daily(
                &arguments.database,
                &arguments.date,
                arguments.csv.as_deref(),
                arguments.xlsx.as_deref(),
            )
            .await
        }
        Command::Bill {
            database,
            merchant,
            date,
            bill_type,
            out,
        } => settle::bill(&database, &merchant, &date, &bill_type, out.as_deref()).await,
        Command::Escrow { command } => escrow(command).await,
        Command::Refunds { command } => refunds(command).await,
        Command::Batch { command } => batches::run(command).await,
        Command::Agreements {
            command:
                AgreementsCommand::List {
                    database,
                    merchant,
                    after,
                    csv,
                    xlsx,
                },
        } => {
            agreements::list(
                &database.database,
                &merchant,
                after,
                csv.as_deref(),
                xlsx.as_deref(),
            )
            .await
        }
        Command::Bench {
            command: BenchCommand::Ledger(arguments),
        } => bench::run(arguments).await,
        Command::Bench {
            command: BenchCommand::Pay(arguments),
        } => bench_pay::run(arguments).await,
        Command::Fee {
            command: FeeCommand::Quote(arguments),
        } => fees::quote(&arguments),
        Command::Fee {
            command: FeeCommand::Bill(arguments),
        } => fee_bills::bill(&arguments).await,
        Command::Fee {
            command: FeeCommand::Deposit(arguments),
        } => fee_bills::deposit(&arguments).await,
        Command::Fee {
            command: FeeCommand::Rules { command },
        } => fee_rules::run(command).await,
        Command::Bench {
            command: BenchCommand::Fees(arguments),
        } => fees::bench(&arguments),
        Command::Bench {
            command: BenchCommand::Settle(arguments),
        } => bench_settle::run(arguments).await,
        Command::Bench {
            command: BenchCommand::Recon(arguments),
        } => bench_recon::run(arguments).await,
        Command::Bench {
            command: BenchCommand::ReconRun(arguments),
        } => bench_recon::run_classification(arguments).await,
    }
}

async fn recon_command(command: ReconCommand) -> Result<()> {
    match command {
        ReconCommand::Import {
            recon,
            channel,
            date,
            file,
            format,
        } => reconciliation::import(&recon, &channel, &date, &file, format.as_deref()).await,
        ReconCommand::Run {
            recon,
            channel,
            date,
            no_treat,
        } => {
            let options = reconciliation::RunOptions {
                channel,
                date,
                treat: !no_treat,
            };
            reconciliation::run(&recon, &options).await
        }
        ReconCommand::Report {
            recon,
            channel,
            date,
            csv,
            xlsx,
        } => reconciliation::report(&recon, &channel, &date, csv.as_deref(), xlsx.as_deref()).await,
        ReconCommand::Internal {
            database,
            csv,
            xlsx,
        } => reconciliation::internal(&database, csv.as_deref(), xlsx.as_deref()).await,
        ReconCommand::SimulateStatement {
            recon,
            channel,
            date,
            out,
            inject,
            drop_orders,
        } => {
            let differences = reconciliation::Differences {
                inject,
                drop_orders,
            };
            reconciliation::simulate_statement(&recon, &channel, &date, &out, &differences).await
        }
    }
}

async fn open_ledger(database: &str) -> Result<Ledger> {
    let store = Store::open(database)
        .await
        .with_context(|| format!("opening the database {database}"))?;
    Ok(Ledger::start(store, LedgerOptions::default()))
}

/// The server's state over `database` for a command that runs payments
/// without serving, pricing with the stored fee rules.
async fn open_state(database: &str, config: &server::Config) -> Result<server::AppState> {
    let state = server::AppState::with_config(open_ledger(database).await?, config);
    state
        .load_fee_rules()
        .await
        .map_err(|error| anyhow::anyhow!("{}: {error}", error.code()))
        .context("reading the stored fee rules")?;
    Ok(state)
}

async fn ledger_check(database: &str) -> Result<()> {
    let store = Store::open(database)
        .await
        .with_context(|| format!("opening the database {database}"))?;
    let report = store.check().await.context("checking the ledger")?;
    println!(
        "checked {} accounts, {} transfers, {} entries, {} subject totals",
        report.accounts_checked,
        report.transfers_checked,
        report.entries_checked,
        report.subjects_checked
    );
    if report.is_sound() {
        println!(
            "ledger is sound: debits equal credits, every balance equals its entries, subjects equal their accounts"
        );
        return Ok(());
    }
    for violation in &report.violations {
        println!("VIOLATION {violation}");
    }
    bail!("{} invariant violations", report.violations.len())
}

async fn channel(command: ChannelCommand) -> Result<()> {
    use engine::{BankOutage, OrderStore};
    match command {
        ChannelCommand::Outage {
            channel,
            bank,
            up,
            database,
        } => {
            let store = Store::open(&database.database)
                .await
                .with_context(|| format!("opening the database {}", database.database))?;
            let outage = BankOutage { channel, bank };
            store
                .set_bank_down(&outage, !up, store::now_micros())
                .await
                .context("changing the outage")?;
            let state = if up { "up" } else { "down" };
            println!(
                "bank {} is {state} on channel {}",
                outage.bank, outage.channel
            );
            Ok(())
        }
        ChannelCommand::Outages { database } => {
            let store = Store::open(&database.database)
                .await
                .with_context(|| format!("opening the database {}", database.database))?;
            let outages = store.bank_outages().await.context("reading outages")?;
            if outages.is_empty() {
                println!("no bank is marked down");
            }
            for outage in outages {
                println!("{} is down on {}", outage.bank, outage.channel);
            }
            Ok(())
        }
    }
}

async fn escrow(command: EscrowCommand) -> Result<()> {
    let (database, config, merchant, out_trade_no, release) = match command {
        EscrowCommand::Show {
            merchant,
            out_trade_no,
            database,
            config,
        } => (database, config, merchant, out_trade_no, None),
        EscrowCommand::Release {
            merchant,
            out_trade_no,
            operator,
            reason,
            database,
            config,
        } => (
            database,
            config,
            merchant,
            out_trade_no,
            Some((operator, reason)),
        ),
    };
    let config = config.load()?;
    let state = open_state(&database.database, &config).await?;
    let view = match release {
        None => state.payments().escrow_of(&merchant, &out_trade_no).await,
        Some((operator, reason)) => {
            state
                .payments()
                .release_escrow(
                    &merchant,
                    &out_trade_no,
                    &engine::ReleasedBy::Operator(operator),
                    Some(&reason),
                    store::now_micros(),
                )
                .await
        }
    }
    .with_context(|| format!("escrow of trade {out_trade_no} of merchant {merchant}"))?;
    let escrow = &view.escrow;
    let held = money::Money::new(escrow.held_minor, escrow.currency);
    print!(
        "trade {} of merchant {}: {held} {}",
        view.out_trade_no,
        escrow.merchant_id,
        escrow.status.as_str()
    );
    match (escrow.released_minor, escrow.released_by.as_deref()) {
        (Some(released), Some(by)) => println!(
            ", {} released by {by}",
            money::Money::new(released, escrow.currency)
        ),
        _ => println!(
            ", releases by itself at {}",
            server::timestamp::format(escrow.release_due_at)?
        ),
    }
    Ok(())
}

async fn refunds(command: RefundsCommand) -> Result<()> {
    match command {
        RefundsCommand::Queue { database } => {
            let ledger = open_ledger(&database.database).await?;
            let state = server::AppState::new(ledger)?;
            let queue = state
                .payments()
                .review_queue(500)
                .await
                .context("reading the queue")?;
            if queue.is_empty() {
                println!("no refund is waiting for review");
            }
            for view in queue {
                let amount = money::Money::new(view.refund.amount_minor, view.refund.currency);
                println!(
                    "refund {} of merchant {} trade {}: {amount}, {}",
                    view.refund.id,
                    view.refund.merchant_id,
                    view.trade.out_trade_no,
                    view.refund.reason
                );
            }
            Ok(())
        }
        RefundsCommand::Review {
            id,
            merchant,
            reject,
            operator,
            reason,
            database,
            config,
        } => {
            let config = config.load()?;
            let state = open_state(&database.database, &config).await?;
            let view = state
                .payments()
                .review_refund(
                    &merchant,
                    id,
                    &engine::NewRefundReview {
                        operator,
                        approved: !reject,
                        reason,
                    },
                    store::now_micros(),
                )
                .await
                .with_context(|| format!("reviewing refund {id}"))?;
            println!("refund {} is now {}", view.refund.id, view.refund.status);
            Ok(())
        }
    }
}
