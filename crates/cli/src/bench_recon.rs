//! `paycore bench recon`: the reconciliation engine (`recon-engine`, Apache
//! DataFusion) against DuckDB, on the same record files, in the same run.
//!
//! Three stages, each in its own process so that the peak resident memory
//! each reports is its own:
//! 1. this process writes N platform records and about N channel records
//!    (seeded; about 1% discrepancies spread over every class) as Parquet
//!    record files with `RecordFileWriter`;
//! 2. a child `paycore bench recon-run` classifies them with `match_files`
//!    and reports its time, its peak RSS (VmHWM) and its keys per class;
//! 3. `scripts/bench_recon_duckdb.py` runs the same classification in
//!    DuckDB, with the same threads and memory limit.
//!
//! Both engines must agree with each other and with what the generator
//! intended, key for key and amount for amount per class, or the run fails:
//! a benchmark whose engines disagree proves nothing.

use anyhow::{Context, Result, bail, ensure};
use money::{RoundingMode, divide_rounded};
use recon::{Class, ReconRecord, RecordKind, RecordStatus};
use recon_engine::{RecordFileWriter, SessionSettings, explain_matching, match_files, session};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// The most platform records one run generates; keys have ten digits for
/// the record's index.
const RECORDS_MAX: u64 = 1_000_000_000;
/// Of every 100,000 keys, this many are discrepancies (1%), spread evenly
/// over [`DISCREPANCY_CLASSES`] ...
const DISCREPANCIES_PER_HUNDRED_THOUSAND: u64 = 1_000;
/// ... and this many failed on both sides (NOT_DUE).
const NOT_DUE_PER_HUNDRED_THOUSAND: u64 = 500;
/// One matched key in this many has fees exactly the tolerance apart, so the
/// tolerance's boundary is exercised too.
const FEE_AT_TOLERANCE_ONE_IN: u64 = 20;
const DISCREPANCY_CLASSES: [Class; 9] = [
    Class::ChannelOnly,
    Class::PlatformOnly,
    Class::StatusChannelSuccess,
    Class::StatusPlatformSuccess,
    Class::AmountChannelHigher,
    Class::AmountPlatformHigher,
    Class::FeeMismatch,
    Class::CurrencyMismatch,
    Class::Duplicate,
];
/// Our channel order ids: the business date, then a ten-digit sequence.
const KEY_PREFIX: &str = "20261122";
/// 2026-11-22 as days since 1970-01-01.
const BUSINESS_DAY: i32 = 20_779;
const MICROS_PER_DAY: i64 = 86_400_000_000;
/// The channel's day starts at midnight in UTC+8.
const DAY_OFFSET_MICROS: i64 = 8 * 3_600_000_000;
const AMOUNT_MINOR_MIN: u64 = 100;
const AMOUNT_MINOR_MAX: u64 = 500_000;
/// The largest difference a discrepancy's amount or fee is off by.
const DELTA_MINOR_MAX: u64 = 100;
/// The channel's fee: 0.6% of the amount, half up.
const FEE_RATE_NUMERATOR: i128 = 6;
const FEE_RATE_DENOMINATOR: i128 = 1_000;
/// How much later than ours the channel stamps a transaction, at most.
const CHANNEL_LAG_MICROS_MAX: u64 = 2_000_000;
const VENV_PYTHON: &str = "bin/python";
const DUCKDB_SCRIPT: &str = include_str!("../../../scripts/bench_recon_duckdb.py");
const SPEC_FILE: &str = "bench-recon.spec";
/// Bumped whenever the generator's output changes, so `--reuse` never
/// matches files an older generator wrote.
const GENERATOR_VERSION: u32 = 1;

#[derive(Debug, Clone, clap::Args)]
pub struct ReconBenchArgs {
    /// Platform records to generate; the channel's file gets about as many.
    #[arg(long, default_value_t = 1_000_000)]
    records: u64,
    /// Directory of the record files and of both engines' spill files; a
    /// new directory under the system's temporary directory by default.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Keep the record files after the run.
    #[arg(long)]
    keep: bool,
    /// Use the record files a kept run left in --dir if they were made with
    /// the same records, seed and fee tolerance, instead of writing them.
    #[arg(long, requires = "dir")]
    reuse: bool,
    /// Seed of the generator: the same seed writes the same files.
    #[arg(long, default_value_t = 20_261_122)]
    seed: u64,
    /// Skip DuckDB (then nothing is compared but the generator's intent).
    #[arg(long)]
    no_duckdb: bool,
    #[command(flatten)]
    engine: EngineArgs,
}

/// How both engines run: the same for each.
#[derive(Debug, Clone, clap::Args)]
pub struct EngineArgs {
    /// Partitions of our plan and threads of DuckDB; all cores by default.
    #[arg(long)]
    partitions: Option<usize>,
    /// Memory limit of each engine, in GiB.
    #[arg(long, default_value_t = 3)]
    memory_limit: u64,
    /// Join by sorting both sides (spills; bounded memory) instead of hashing.
    #[arg(long)]
    sort_merge_join: bool,
    /// Rows per Arrow batch in our plan.
    #[arg(long, default_value_t = 8_192)]
    batch_rows: usize,
    /// The largest fee difference that still counts as agreement.
    #[arg(long, default_value_t = 1)]
    fee_tolerance_minor: i64,
}

impl EngineArgs {
    fn partitions(&self) -> usize {
        self.partitions
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, usize::from))
            .max(1)
    }

    fn settings(&self, spill_directory: Option<PathBuf>) -> Result<SessionSettings> {
        Ok(SessionSettings {
            partitions: self.partitions(),
            memory_limit_bytes: usize::try_from(self.memory_limit << 30)?,
            spill_directory,
            sort_merge_join: self.sort_merge_join,
            batch_rows: self.batch_rows,
        })
    }

    fn command_line(&self) -> Vec<String> {
        let mut arguments = vec![
            format!("--partitions={}", self.partitions()),
            format!("--memory-limit={}", self.memory_limit),
            format!("--batch-rows={}", self.batch_rows),
            format!("--fee-tolerance-minor={}", self.fee_tolerance_minor),
        ];
        if self.sort_merge_join {
            arguments.push("--sort-merge-join".to_owned());
        }
        arguments
    }
}

/// The hidden `bench recon-run`: one classification by our engine.
#[derive(Debug, Clone, clap::Args)]
pub struct ReconRunArgs {
    #[arg(long)]
    platform: PathBuf,
    #[arg(long)]
    channel: PathBuf,
    /// Where the plan spills; the system's temporary directory by default.
    #[arg(long)]
    spill_dir: Option<PathBuf>,
    /// After the timed run, run the first pass once more under `EXPLAIN
    /// ANALYZE` and print each operator's rows, time and spills to standard
    /// error.
    #[arg(long)]
    explain_analyze: bool,
    #[command(flatten)]
    engine: EngineArgs,
}

/// Keys and the sum of their amounts in one class.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct ClassFigures {
    keys: u64,
    amount_minor: i128,
}

type Figures = BTreeMap<Class, ClassFigures>;

/// What one engine reported.
#[derive(Debug, Clone)]
struct EngineRun {
    engine: String,
    seconds: f64,
    peak_rss_kib: u64,
    classes: Figures,
}

/// What the generator writes: how many, from which seed, with which fee
/// tolerance (it decides which fees are "apart").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct GeneratorSpec {
    records: u64,
    seed: u64,
    fee_tolerance_minor: i64,
}

impl GeneratorSpec {
    fn describe(&self) -> String {
        format!(
            "generator={GENERATOR_VERSION} records={} seed={} fee_tolerance_minor={}\n",
            self.records, self.seed, self.fee_tolerance_minor
        )
    }
}

/// A deterministic pseudo-random sequence (SplitMix64).
struct Sequence(u64);

impl Sequence {
    /// The sequence of one key: a pure function of the seed and the index,
    /// so each side's writer can draw the same keys on its own thread.
    fn for_key(seed: u64, index: u64) -> Sequence {
        Sequence(seed ^ index.wrapping_mul(0xD1B5_4A32_D192_ED03))
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut value = self.0;
        value = (value ^ (value >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        value = (value ^ (value >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        value ^ (value >> 31)
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound.max(1)
    }

    fn between(&mut self, low: u64, high: u64) -> i64 {
        let value = low + self.below(high - low + 1);
        i64::try_from(value).unwrap_or(i64::MAX)
    }
}

/// One key: the class the generator means it to get, and the figures both
/// sides' records are built from.
#[derive(Debug, Clone, Copy)]
struct KeyPlan {
    index: u64,
    class: Class,
    kind: RecordKind,
    amount_minor: i64,
    fee_minor: i64,
    /// How far a discrepancy's amount or fee is off.
    delta_minor: i64,
    /// For FEE_MISMATCH: whose fee is the higher; for MATCHED: whether the
    /// channel's fee is the tolerance above ours.
    variant: bool,
    occurred_at: i64,
    channel_lag_micros: i64,
    transaction: u64,
    fee_tolerance_minor: i64,
}

impl KeyPlan {
    fn draw(spec: &GeneratorSpec, index: u64) -> Result<KeyPlan> {
        let mut sequence = Sequence::for_key(spec.seed, index);
        let roll = sequence.below(100_000);
        let class = if roll < DISCREPANCIES_PER_HUNDRED_THOUSAND {
            DISCREPANCY_CLASSES[(roll % DISCREPANCY_CLASSES.len() as u64) as usize]
        } else if roll < DISCREPANCIES_PER_HUNDRED_THOUSAND + NOT_DUE_PER_HUNDRED_THOUSAND {
            Class::NotDue
        } else {
            Class::Matched
        };
        let kind = if sequence.below(10) == 0 {
            RecordKind::Refund
        } else {
            RecordKind::Payment
        };
        let amount_minor = sequence.between(AMOUNT_MINOR_MIN, AMOUNT_MINOR_MAX);
        let fee_minor = divide_rounded(
            i128::from(amount_minor) * FEE_RATE_NUMERATOR,
            FEE_RATE_DENOMINATOR,
            RoundingMode::HalfUp,
        )?;
        let variant_one_in = if class == Class::Matched {
            FEE_AT_TOLERANCE_ONE_IN
        } else {
            2
        };
        let offset_micros =
            i128::from(index) * i128::from(MICROS_PER_DAY) / i128::from(spec.records.max(1));
        Ok(KeyPlan {
            index,
            class,
            kind,
            amount_minor,
            fee_minor: i64::try_from(fee_minor)?,
            delta_minor: sequence.between(1, DELTA_MINOR_MAX),
            variant: sequence.below(variant_one_in) == 0,
            occurred_at: i64::from(BUSINESS_DAY) * MICROS_PER_DAY - DAY_OFFSET_MICROS
                + i64::try_from(offset_micros)?,
            channel_lag_micros: sequence.between(0, CHANNEL_LAG_MICROS_MAX),
            transaction: sequence.next(),
            fee_tolerance_minor: spec.fee_tolerance_minor,
        })
    }

    fn key(&self) -> String {
        format!("{KEY_PREFIX}{:010}", self.index)
    }

    /// A WeChat-Pay-like 28-character transaction id.
    fn transaction_id(&self, copy: u64) -> String {
        format!("4200{:024}", self.transaction.wrapping_add(copy))
    }

    /// Ours, or nothing when the channel alone has the key.
    fn platform_record(&self) -> Option<ReconRecord> {
        let status = match self.class {
            Class::ChannelOnly => return None,
            Class::NotDue => RecordStatus::Failed,
            Class::StatusChannelSuccess => RecordStatus::Processing,
            _ => RecordStatus::Success,
        };
        let succeeded = status == RecordStatus::Success;
        let amount_minor = match self.class {
            Class::AmountPlatformHigher => self.amount_minor + self.delta_minor,
            _ => self.amount_minor,
        };
        let fee_minor = match self.class {
            Class::FeeMismatch if self.variant => {
                self.fee_minor + self.fee_tolerance_minor + self.delta_minor
            }
            _ => self.fee_minor,
        };
        Some(ReconRecord {
            key: self.key(),
            kind: self.kind,
            channel_transaction_id: succeeded.then(|| self.transaction_id(0)),
            amount_minor,
            currency: "CNY".to_owned(),
            fee_minor: succeeded.then_some(fee_minor),
            status,
            occurred_at: self.occurred_at,
            business_day: BUSINESS_DAY,
        })
    }

    /// The channel's records of the key: none, one, or two for a duplicate.
    fn channel_records(&self) -> [Option<ReconRecord>; 2] {
        let status = match self.class {
            Class::PlatformOnly => return [None, None],
            Class::NotDue | Class::StatusPlatformSuccess => RecordStatus::Failed,
            _ => RecordStatus::Success,
        };
        let amount_minor = match self.class {
            Class::AmountChannelHigher => self.amount_minor + self.delta_minor,
            _ => self.amount_minor,
        };
        let fee_minor = match self.class {
            _ if status != RecordStatus::Success => 0,
            Class::FeeMismatch if !self.variant => {
                self.fee_minor + self.fee_tolerance_minor + self.delta_minor
            }
            Class::Matched if self.variant => self.fee_minor + self.fee_tolerance_minor,
            _ => self.fee_minor,
        };
        let currency = match self.class {
            Class::CurrencyMismatch => "USD",
            _ => "CNY",
        };
        let record = |copy: u64| ReconRecord {
            key: self.key(),
            kind: self.kind,
            channel_transaction_id: Some(self.transaction_id(copy)),
            amount_minor,
            currency: currency.to_owned(),
            fee_minor: Some(fee_minor),
            status,
            occurred_at: self.occurred_at + self.channel_lag_micros,
            business_day: BUSINESS_DAY,
        };
        let duplicate = (self.class == Class::Duplicate).then(|| record(1));
        [Some(record(0)), duplicate]
    }

    /// The amount the engine counts for the key: ours where we have the
    /// record, else the channel's.
    fn counted_amount_minor(&self) -> i64 {
        match self.class {
            Class::AmountPlatformHigher => self.amount_minor + self.delta_minor,
            _ => self.amount_minor,
        }
    }
}

/// What the generator means every key to be classified as.
fn intended(spec: &GeneratorSpec) -> Result<Figures> {
    let mut figures = Figures::new();
    for index in 0..spec.records.min(RECORDS_MAX) {
        let plan = KeyPlan::draw(spec, index)?;
        let entry = figures.entry(plan.class).or_default();
        entry.keys += 1;
        entry.amount_minor += i128::from(plan.counted_amount_minor());
    }
    Ok(figures)
}

/// Record files of both sides.
#[derive(Debug, Clone)]
struct RecordFiles {
    platform: PathBuf,
    channel: PathBuf,
}

impl RecordFiles {
    fn in_directory(directory: &Path) -> RecordFiles {
        RecordFiles {
            platform: directory.join("platform.parquet"),
            channel: directory.join("channel.parquet"),
        }
    }
}

/// Writes both sides' files, each on its own thread. Returns the number of
/// records in each.
fn generate(spec: &GeneratorSpec, files: &RecordFiles) -> Result<(u64, u64)> {
    ensure!(
        spec.records <= RECORDS_MAX,
        "at most {RECORDS_MAX} records per run"
    );
    std::thread::scope(|scope| {
        let platform = scope.spawn(|| write_platform(spec, &files.platform));
        let channel = write_channel(spec, &files.channel);
        let platform = platform
            .join()
            .map_err(|_| anyhow::anyhow!("the platform writer panicked"))?;
        Ok((platform?, channel?))
    })
}

fn write_platform(spec: &GeneratorSpec, path: &Path) -> Result<u64> {
    let mut writer = RecordFileWriter::create(path)?;
    for index in 0..spec.records.min(RECORDS_MAX) {
        if let Some(record) = KeyPlan::draw(spec, index)?.platform_record() {
            writer.push(record)?;
        }
    }
    Ok(writer.finish()?)
}

fn write_channel(spec: &GeneratorSpec, path: &Path) -> Result<u64> {
    let mut writer = RecordFileWriter::create(path)?;
    for index in 0..spec.records.min(RECORDS_MAX) {
        for record in KeyPlan::draw(spec, index)?
            .channel_records()
            .into_iter()
            .flatten()
        {
            writer.push(record)?;
        }
    }
    Ok(writer.finish()?)
}

/// Our engine's classification of the files, timed from the session's
/// creation to the last batch. Findings are counted, not kept, so memory
/// does not grow with the number of discrepancies.
async fn classify_files(
    files: &RecordFiles,
    engine: &EngineArgs,
    spill_directory: Option<PathBuf>,
) -> Result<(f64, Figures)> {
    let settings = engine.settings(spill_directory)?;
    let started = Instant::now();
    let context = session(&settings)?;
    let mut findings: BTreeMap<Class, u64> = BTreeMap::new();
    let summary = match_files(
        &context,
        std::slice::from_ref(&files.platform),
        std::slice::from_ref(&files.channel),
        engine.fee_tolerance_minor,
        |finding| *findings.entry(finding.class).or_default() += 1,
    )
    .await?;
    let seconds = started.elapsed().as_secs_f64();
    let mut figures = Figures::new();
    for (class, keys) in &summary.keys {
        let amount_minor = summary.amounts_minor.get(class).copied().unwrap_or(0);
        figures.insert(
            *class,
            ClassFigures {
                keys: *keys,
                amount_minor,
            },
        );
        if class.is_discrepancy() {
            ensure!(
                findings.get(class).copied().unwrap_or(0) == *keys,
                "the engine counted {keys} {class:?} keys but handed out a different number of findings"
            );
        }
    }
    Ok((seconds, figures))
}

/// `bench recon-run`: prints one JSON line for the parent to read.
pub async fn run_classification(arguments: ReconRunArgs) -> Result<()> {
    let files = RecordFiles {
        platform: arguments.platform,
        channel: arguments.channel,
    };
    let (seconds, figures) =
        classify_files(&files, &arguments.engine, arguments.spill_dir.clone()).await?;
    let mut classes = serde_json::Map::new();
    for (class, figures) in &figures {
        let amount_minor = i64::try_from(figures.amount_minor)
            .with_context(|| format!("the {class:?} amount does not fit a report"))?;
        classes.insert(
            class.as_str().to_owned(),
            json!({"keys": figures.keys, "amount_minor": amount_minor}),
        );
    }
    let report = json!({
        "engine": "paycore recon-engine (DataFusion 55)",
        "seconds": seconds,
        "peak_rss_kib": peak_rss_kib()?,
        "classes": classes,
    });
    println!("{report}");
    if arguments.explain_analyze {
        let context = session(&arguments.engine.settings(arguments.spill_dir)?)?;
        let analysis = explain_matching(
            &context,
            std::slice::from_ref(&files.platform),
            std::slice::from_ref(&files.channel),
            arguments.engine.fee_tolerance_minor,
        )
        .await?;
        eprintln!("{analysis}");
    }
    Ok(())
}

/// This process's peak resident set (VmHWM), in KiB.
fn peak_rss_kib() -> Result<u64> {
    let status =
        std::fs::read_to_string("/proc/self/status").context("reading /proc/self/status")?;
    let line = status
        .lines()
        .find(|line| line.starts_with("VmHWM:"))
        .context("no VmHWM in /proc/self/status")?;
    let kib = line
        .trim_start_matches("VmHWM:")
        .trim()
        .trim_end_matches("kB")
        .trim();
    Ok(kib.parse()?)
}

/// An engine's JSON report: the last line of its standard output.
fn parse_engine_run(stdout: &str) -> Result<EngineRun> {
    let line = stdout
        .lines()
        .rev()
        .find(|line| line.starts_with('{'))
        .context("the engine printed no report")?;
    let report: Value = serde_json::from_str(line).context("reading the engine's report")?;
    let mut classes = Figures::new();
    for (name, figures) in report["classes"].as_object().context("no classes")? {
        let class = Class::parse(name).with_context(|| format!("unknown class {name}"))?;
        let keys = figures["keys"].as_u64().context("no key count")?;
        let amount_minor = figures["amount_minor"].as_i64().context("no amount")?;
        classes.insert(
            class,
            ClassFigures {
                keys,
                amount_minor: i128::from(amount_minor),
            },
        );
    }
    Ok(EngineRun {
        engine: report["engine"].as_str().unwrap_or("?").to_owned(),
        seconds: report["seconds"].as_f64().context("no seconds")?,
        peak_rss_kib: report["peak_rss_kib"].as_u64().context("no peak RSS")?,
        classes,
    })
}

/// Runs a child process to its end; its standard error passes through.
fn run_child(mut command: Command, what: &str) -> Result<String> {
    let output = command
        .stderr(std::process::Stdio::inherit())
        .output()
        .with_context(|| format!("starting {what}"))?;
    if !output.status.success() {
        bail!("{what} failed ({})", output.status);
    }
    Ok(String::from_utf8(output.stdout)?)
}

fn run_ours(files: &RecordFiles, engine: &EngineArgs, spill: &Path) -> Result<EngineRun> {
    let mut command = Command::new(std::env::current_exe()?);
    command
        .args(["bench", "recon-run", "--platform"])
        .arg(&files.platform)
        .arg("--channel")
        .arg(&files.channel)
        .arg("--spill-dir")
        .arg(spill)
        .args(engine.command_line());
    parse_engine_run(&run_child(command, "paycore bench recon-run")?)
}

/// The benchmark's own Python with DuckDB, installed from PyPI on first use.
fn duckdb_python() -> Result<PathBuf> {
    let home = std::env::var_os("HOME").context("HOME is not set")?;
    let venv = PathBuf::from(home).join(".cache/paycore/bench-venv");
    let python = venv.join(VENV_PYTHON);
    let has_duckdb = |python: &Path| {
        Command::new(python)
            .args(["-c", "import duckdb"])
            .output()
            .is_ok_and(|output| output.status.success())
    };
    if python.exists() && has_duckdb(&python) {
        return Ok(python);
    }
    println!(
        "  installing DuckDB into {} (python3 -m venv, pip install duckdb)",
        venv.display()
    );
    if !python.exists() {
        let mut command = Command::new("python3");
        command.args(["-m", "venv"]).arg(&venv);
        run_child(command, "python3 -m venv")?;
    }
    let mut command = Command::new(&python);
    command.args(["-m", "pip", "install", "--quiet", "duckdb"]);
    run_child(command, "pip install duckdb")?;
    ensure!(
        has_duckdb(&python),
        "duckdb does not import after installing it"
    );
    Ok(python)
}

fn run_duckdb(
    files: &RecordFiles,
    engine: &EngineArgs,
    directory: &Path,
    spill: &Path,
) -> Result<EngineRun> {
    let python = duckdb_python()?;
    // The script is compiled in, so the binary runs it wherever it is.
    let script = directory.join("bench_recon_duckdb.py");
    std::fs::write(&script, DUCKDB_SCRIPT).context("writing the DuckDB script")?;
    let mut command = Command::new(python);
    command
        .arg(&script)
        .arg(&files.platform)
        .arg(&files.channel)
        .arg(engine.fee_tolerance_minor.to_string())
        .arg(format!("--threads={}", engine.partitions()))
        .arg(format!("--memory-limit-gib={}", engine.memory_limit))
        .arg("--temp-directory")
        .arg(spill);
    let outcome = run_child(command, "the DuckDB script");
    let _ = std::fs::remove_file(&script);
    parse_engine_run(&outcome?)
}

/// `bench recon`.
pub async fn run(arguments: ReconBenchArgs) -> Result<()> {
    ensure!(
        (1..=RECORDS_MAX).contains(&arguments.records),
        "--records must be between 1 and {RECORDS_MAX}"
    );
    let (directory, created) = match &arguments.dir {
        Some(directory) => (directory.clone(), false),
        None => (
            std::env::temp_dir().join(format!("paycore-bench-recon-{}", std::process::id())),
            true,
        ),
    };
    std::fs::create_dir_all(&directory)
        .with_context(|| format!("creating {}", directory.display()))?;
    let files = RecordFiles::in_directory(&directory);
    let outcome = measure(&arguments, &directory, &files).await;
    if !arguments.keep {
        for path in [&files.platform, &files.channel, &directory.join(SPEC_FILE)] {
            let _ = std::fs::remove_file(path);
        }
        if created {
            let _ = std::fs::remove_dir_all(&directory);
        }
    }
    outcome
}

async fn measure(arguments: &ReconBenchArgs, directory: &Path, files: &RecordFiles) -> Result<()> {
    let spec = GeneratorSpec {
        records: arguments.records,
        seed: arguments.seed,
        fee_tolerance_minor: arguments.engine.fee_tolerance_minor,
    };
    println!(
        "paycore bench recon: {} platform records, seed {}, fee tolerance {} minor units",
        grouped(spec.records),
        spec.seed,
        spec.fee_tolerance_minor
    );
    prepare_files(arguments, spec, directory, files).await?;
    let intended = tokio::task::spawn_blocking(move || intended(&spec)).await??;
    let engine = &arguments.engine;
    println!(
        "  {} partitions, memory limit {} GiB per engine, {} join, batches of {} rows",
        engine.partitions(),
        engine.memory_limit,
        if engine.sort_merge_join {
            "sort-merge"
        } else {
            "hash"
        },
        engine.batch_rows
    );
    let ours = {
        let (files, engine) = (files.clone(), engine.clone());
        let spill = spill_directory(directory, "datafusion-spill")?;
        tokio::task::spawn_blocking(move || run_ours(&files, &engine, &spill)).await??
    };
    let duckdb = if arguments.no_duckdb {
        None
    } else {
        let (files, engine, directory) = (files.clone(), engine.clone(), directory.to_owned());
        let spill = spill_directory(&directory, "duckdb-spill")?;
        Some(
            tokio::task::spawn_blocking(move || run_duckdb(&files, &engine, &directory, &spill))
                .await??,
        )
    };
    report(&intended, &ours, duckdb.as_ref());
    check_agreement(&intended, &ours, duckdb.as_ref())
}

/// A fresh spill directory inside the run's directory.
fn spill_directory(directory: &Path, name: &str) -> Result<PathBuf> {
    let path = directory.join(name);
    let _ = std::fs::remove_dir_all(&path);
    std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
    Ok(path)
}

/// Writes the record files, or, with `--reuse`, keeps those a run with the
/// same spec left. Generation is timed on its own, outside the comparison.
async fn prepare_files(
    arguments: &ReconBenchArgs,
    spec: GeneratorSpec,
    directory: &Path,
    files: &RecordFiles,
) -> Result<()> {
    let spec_path = directory.join(SPEC_FILE);
    let written = std::fs::read_to_string(&spec_path).unwrap_or_default();
    let reusable = written == spec.describe() && files.platform.exists() && files.channel.exists();
    if arguments.reuse && reusable {
        println!("  reusing the record files in {}", directory.display());
    } else {
        let _ = std::fs::remove_file(&spec_path);
        let started = Instant::now();
        let generated_files = files.clone();
        let (platform, channel) =
            tokio::task::spawn_blocking(move || generate(&spec, &generated_files)).await??;
        std::fs::write(&spec_path, spec.describe()).context("writing the spec file")?;
        println!(
            "  generated {} platform and {} channel records in {:.1} s (not part of the comparison)",
            grouped(platform),
            grouped(channel),
            started.elapsed().as_secs_f64()
        );
    }
    println!(
        "  files in {}: platform {} MiB, channel {} MiB (Parquet, zstd)",
        directory.display(),
        file_mebibytes(&files.platform),
        file_mebibytes(&files.channel)
    );
    Ok(())
}

fn file_mebibytes(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |metadata| metadata.len() >> 20)
}

fn report(intended: &Figures, ours: &EngineRun, duckdb: Option<&EngineRun>) {
    let keys =
        |figures: &Figures, class: &Class| figures.get(class).map_or(0, |figures| figures.keys);
    println!();
    println!(
        "{:<26} {:>14} {:>14} {:>14}",
        "class", "intended", "paycore", "DuckDB"
    );
    for class in Class::ALL {
        let theirs = duckdb.map_or("-".to_owned(), |run| grouped(keys(&run.classes, class)));
        println!(
            "{:<26} {:>14} {:>14} {:>14}",
            class.as_str(),
            grouped(keys(intended, class)),
            grouped(keys(&ours.classes, class)),
            theirs
        );
    }
    println!();
    println!("{:<44} {:>10} {:>14}", "engine", "seconds", "peak RSS MiB");
    for run in std::iter::once(ours).chain(duckdb) {
        println!(
            "{:<44} {:>10.2} {:>14}",
            run.engine,
            run.seconds,
            run.peak_rss_kib >> 10
        );
    }
    if let Some(duckdb) = duckdb {
        println!(
            "ratio paycore / DuckDB (time): {:.2}",
            ours.seconds / duckdb.seconds.max(1e-9)
        );
    }
}

/// Fails unless both engines found exactly what the generator intended.
fn check_agreement(intended: &Figures, ours: &EngineRun, duckdb: Option<&EngineRun>) -> Result<()> {
    if &ours.classes != intended {
        bail!(
            "paycore's classification differs from what the generator intended: {:?} against {:?}",
            ours.classes,
            intended
        );
    }
    if let Some(duckdb) = duckdb
        && duckdb.classes != ours.classes
    {
        bail!(
            "DuckDB's classification differs from paycore's, so the timing compares nothing: {:?} against {:?}",
            duckdb.classes,
            ours.classes
        );
    }
    Ok(())
}

/// 12345678 as "12,345,678".
fn grouped(value: u64) -> String {
    let digits = value.to_string();
    let mut text = String::with_capacity(digits.len() + digits.len() / 3);
    for (position, digit) in digits.chars().enumerate() {
        if position > 0 && (digits.len() - position).is_multiple_of(3) {
            text.push(',');
        }
        text.push(digit);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use recon::ChannelSide;

    const SPEC: GeneratorSpec = GeneratorSpec {
        records: 10_000,
        seed: 7,
        fee_tolerance_minor: 1,
    };

    #[test]
    fn every_key_plan_is_classified_as_intended_by_the_reference() {
        for index in 0..SPEC.records {
            let plan = KeyPlan::draw(&SPEC, index).unwrap();
            let platform = plan.platform_record();
            let channel = plan.channel_records();
            let copies = channel.iter().flatten().count() as u64;
            let side = channel[0].as_ref().map(|record| ChannelSide {
                count: copies,
                record,
            });
            let class = recon::classify(platform.as_ref(), side, SPEC.fee_tolerance_minor);
            assert_eq!(class, plan.class, "key {index}: {plan:?}");
        }
    }

    #[test]
    fn the_generator_yields_every_class_and_the_engine_finds_exactly_them() {
        let intended = intended(&SPEC).unwrap();
        for class in Class::ALL {
            assert!(
                intended.get(class).is_some_and(|figures| figures.keys > 0),
                "no {class:?} among {intended:?}"
            );
        }
        let discrepancies: u64 = intended
            .iter()
            .filter(|(class, _)| class.is_discrepancy())
            .map(|(_, figures)| figures.keys)
            .sum();
        // About 1%: 100 of 10,000 expected.
        assert!(
            (60..=140).contains(&discrepancies),
            "{discrepancies} discrepancies"
        );

        let directory = tempfile::tempdir().unwrap();
        let files = RecordFiles::in_directory(directory.path());
        let (platform, channel) = generate(&SPEC, &files).unwrap();
        let duplicates = intended[&Class::Duplicate].keys;
        let channel_only = intended[&Class::ChannelOnly].keys;
        let platform_only = intended[&Class::PlatformOnly].keys;
        assert_eq!(platform, SPEC.records - channel_only);
        assert_eq!(channel, SPEC.records - platform_only + duplicates);

        let engine = EngineArgs {
            partitions: Some(2),
            memory_limit: 1,
            sort_merge_join: false,
            batch_rows: 1_000,
            fee_tolerance_minor: SPEC.fee_tolerance_minor,
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let (_, found) = runtime
            .block_on(classify_files(&files, &engine, None))
            .unwrap();
        assert_eq!(found, intended);
    }

    #[test]
    fn engines_that_disagree_fail_the_run() {
        let mut intended = Figures::new();
        intended.insert(
            Class::Matched,
            ClassFigures {
                keys: 3,
                amount_minor: 300,
            },
        );
        let run = |keys: u64| EngineRun {
            engine: "test".to_owned(),
            seconds: 1.0,
            peak_rss_kib: 1,
            classes: [(
                Class::Matched,
                ClassFigures {
                    keys,
                    amount_minor: 300,
                },
            )]
            .into(),
        };
        assert!(check_agreement(&intended, &run(3), Some(&run(3))).is_ok());
        assert!(check_agreement(&intended, &run(3), Some(&run(2))).is_err());
        assert!(check_agreement(&intended, &run(2), None).is_err());
    }

    #[test]
    fn an_engine_report_is_read_back() {
        let run = parse_engine_run(
            "noise\n{\"engine\":\"DuckDB 2.0.0\",\"seconds\":1.5,\"peak_rss_kib\":2048,\
             \"classes\":{\"MATCHED\":{\"keys\":9,\"amount_minor\":900},\"DUPLICATE\":{\"keys\":1,\"amount_minor\":7}}}\n",
        )
        .unwrap();
        assert_eq!(run.seconds, 1.5);
        assert_eq!(run.peak_rss_kib, 2048);
        assert_eq!(run.classes[&Class::Matched].keys, 9);
        assert_eq!(run.classes[&Class::Duplicate].amount_minor, 7);
        assert!(parse_engine_run("{\"classes\":{\"NOPE\":{}}}").is_err());
    }

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1_000), "1,000");
        assert_eq!(grouped(10_000_000), "10,000,000");
    }
}
