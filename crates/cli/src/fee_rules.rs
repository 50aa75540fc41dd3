//! `paycore fee rules list | show | set | delete`: the stored fee rule
//! table, as `/v1/fees/rules` serves it, for operators at the database; and
//! `--fee-rules FILE` of `serve` and `demo`. Running servers put a change
//! made here in force within a second.

use crate::DatabaseArgs;
use anyhow::{Context, Result, bail};
use clap::Subcommand;
use fees::{FeeRuleChange, FeeRuleDefinition, FeeRuleEdit, FeeRuleStore, FeeSchedule, FeeTable};
use server::FeeRuleFile;
use store::Store;

/// A rule file for a server to start with.
#[derive(Debug, Clone, clap::Args)]
pub struct FeeRulesFileArgs {
    /// A rule file like config/fees.toml. Its rules replace the stored
    /// fee rule table at start, as one audited change (none when the table
    /// already says the same). Without it the stored table is used, seeded
    /// from the built-in config/fees.toml on a database's first start.
    #[arg(long = "fee-rules")]
    fee_rules: Option<std::path::PathBuf>,
}

impl FeeRulesFileArgs {
    /// Puts the file's rules in the store and in force in `state`, if a
    /// file was given.
    pub async fn apply(&self, state: &server::AppState) -> Result<()> {
        let Some(path) = &self.fee_rules else {
            return Ok(());
        };
        let file = FeeRuleFile {
            name: path.display().to_string(),
            text: std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?,
        };
        let outcome = state
            .start_fee_rules(Some(&file))
            .await
            .map_err(|error| anyhow::anyhow!("{}: {error}", error.code()))
            .with_context(|| format!("in {}", path.display()))?;
        tracing::info!(
            file = %path.display(),
            version = outcome.version,
            rules_changed = outcome.rules_changed,
            "fee rules from the file in force"
        );
        Ok(())
    }
}

/// Who makes a change and why, for the table's history.
#[derive(Debug, Clone, clap::Args)]
pub struct ChangeArgs {
    #[arg(long)]
    operator: String,
    #[arg(long)]
    reason: String,
}

#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// Every stored rule: id, side, method, dimensions.
    List {
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// One stored rule as TOML, the form `set --file` reads.
    Show {
        id: String,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Create a rule, or replace the one with its id, from a TOML file
    /// holding the keys of one [[rules]] entry (without the header).
    Set {
        #[arg(long)]
        file: std::path::PathBuf,
        #[command(flatten)]
        change: ChangeArgs,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Remove a rule.
    Delete {
        id: String,
        #[command(flatten)]
        change: ChangeArgs,
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

async fn open(database: &DatabaseArgs) -> Result<Store> {
    Store::open(&database.database)
        .await
        .with_context(|| format!("opening the database {}", database.database))
}

pub async fn run(command: RulesCommand) -> Result<()> {
    match command {
        RulesCommand::List { database } => list(&open(&database).await?).await,
        RulesCommand::Show { id, database } => show(&open(&database).await?, &id).await,
        RulesCommand::Set {
            file,
            change,
            database,
        } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let definition = FeeRuleDefinition::from_toml(&text)
                .with_context(|| format!("in {}", file.display()))?;
            let id = definition.id.clone();
            let store = open(&database).await?;
            apply(
                &store,
                FeeRuleChange::Put(Box::new(definition)),
                &change,
                &id,
            )
            .await
        }
        RulesCommand::Delete {
            id,
            change,
            database,
        } => {
            let store = open(&database).await?;
            apply(&store, FeeRuleChange::Delete(id.clone()), &change, &id).await
        }
    }
}

async fn list(store: &Store) -> Result<()> {
    let table = fees::read_rules(store).await?;
    if table.version == 0 {
        println!(
            "no fee rule table stored yet: a server's first start seeds it from config/fees.toml"
        );
        return Ok(());
    }
    println!(
        "fee rule table version {}, {} rules",
        table.version,
        table.definitions.len()
    );
    for rule in &table.definitions {
        let dimensions = [
            ("merchant", &rule.merchant),
            ("product", &rule.product),
            ("channel", &rule.channel),
            ("issuing_bank", &rule.issuing_bank),
            ("business_line", &rule.business_line),
        ]
        .iter()
        .filter_map(|(name, value)| value.as_ref().map(|value| format!("{name}={value}")))
        .collect::<Vec<_>>()
        .join(" ");
        println!(
            "{:<32} {:<5} {:<30} {dimensions}",
            rule.id,
            rule.side.as_deref().unwrap_or("payee"),
            rule.method
        );
    }
    Ok(())
}

async fn show(store: &Store, id: &str) -> Result<()> {
    let stored = store.fee_rules().await?;
    let Some(rule) = stored.rules.iter().find(|rule| rule.rule_id == id) else {
        bail!("UNKNOWN_FEE_RULE: fee rule {id:?} does not exist");
    };
    println!("# fee rule table version {}", stored.version);
    print!("{}", rule.definition);
    Ok(())
}

async fn apply(store: &Store, change: FeeRuleChange, actor: &ChangeArgs, id: &str) -> Result<()> {
    let refuse = |error: fees::FeeTableError| anyhow::anyhow!("{}: {error}", error.code());
    // Nothing in this process prices; the table only carries the change.
    let table = FeeTable::new(FeeSchedule::empty(), 0);
    // A first change on a database no server has started on applies to
    // the table a server would have seeded.
    server::start_fee_rules(store, &table, None)
        .await
        .map_err(refuse)?;
    let edit = FeeRuleEdit {
        change,
        operator: actor.operator.clone(),
        reason: actor.reason.clone(),
    };
    let outcome = fees::change_rules(store, &table, &edit, store::now_micros())
        .await
        .map_err(refuse)?;
    if outcome.rules_changed == 0 {
        println!(
            "rule {id}: unchanged, fee rule table version {}",
            outcome.version
        );
    } else {
        println!(
            "rule {id}: fee rule table version {} (running servers follow within a second)",
            outcome.version
        );
    }
    Ok(())
}
