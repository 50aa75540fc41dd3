//! The matching plan, in two passes. The first classifies every key with
//! only the columns classification reads: it aggregates the channel's side
//! by key (to see duplicates), full-outer-joins it to ours and evaluates one
//! CASE expression that follows `recon::classify`. The second fetches every
//! figure of both sides for the discrepant keys alone (about 1% of them), by
//! joining those keys back to both sides' files.
//!
//! When every file says its keys are decimal numbers (our channel order ids
//! are), the first pass joins and groups on them as `i64`, not as text.
//!
//! Both passes hash-partition their inputs by key, so each partition is
//! matched on its own (see ARCHITECTURE.md, "Scaling out").

use crate::schema::*;
use crate::{EngineError, record_schema};
use datafusion::arrow::array::{Array, AsArray, Int8Builder, RecordBatch, StringBuilder};
use datafusion::arrow::datatypes::{DataType, Field, Int8Type, Int32Type, Int64Type, Schema};
use datafusion::arrow::util::pretty::pretty_format_batches;
use datafusion::common::JoinType;
use datafusion::dataframe::DataFrame;
use datafusion::functions_aggregate::expr_fn::{count, max};
use datafusion::logical_expr::{Expr, cast, col, lit, when};
use datafusion::parquet::file::metadata::ParquetMetaDataReader;
use datafusion::prelude::{ParquetReadOptions, SessionContext, coalesce};
use futures::StreamExt;
use recon::{Class, Finding, RecordKind, RecordStatus, SideFigures};
use std::collections::BTreeMap;
use std::fs::File;
use std::ops::Not;
use std::path::PathBuf;
use std::sync::Arc;

/// What one run saw: keys per class and their amounts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MatchSummary {
    pub keys: BTreeMap<Class, u64>,
    /// Per class, the sum of amounts (ours where we have the record, else
    /// the channel's).
    pub amounts_minor: BTreeMap<Class, i128>,
}

impl MatchSummary {
    pub fn total_keys(&self) -> u64 {
        self.keys.values().sum()
    }

    pub fn discrepancies(&self) -> u64 {
        self.keys
            .iter()
            .filter(|(class, _)| class.is_discrepancy())
            .map(|(_, keys)| keys)
            .sum()
    }
}

const PLATFORM: &str = "p_";
const CHANNEL: &str = "c_";
const COUNT: &str = "c_count";
const CLASS: &str = "class";
/// The amount a key adds to its class: ours where we have the record, else
/// the channel's.
const CLASS_AMOUNT: &str = "class_amount_minor";
/// A discrepancy's key; null for the classes that are not discrepancies, so
/// only about 1% of the first pass's rows carry text out of the plan.
const DISCREPANT_KEY: &str = "discrepant_key";
/// The discrepant keys' column when the second pass joins them to the
/// channel's records.
const WANTED_KEY: &str = "wanted_key";
/// Every column of a record file; findings carry all of them.
const COLUMNS: [&str; 9] = [
    KEY,
    KIND,
    CHANNEL_TRANSACTION_ID,
    AMOUNT_MINOR,
    CURRENCY,
    FEE_MINOR,
    STATUS,
    OCCURRED_AT,
    BUSINESS_DAY,
];
/// What the first pass reads: the key and the columns `class_expression`
/// compares. The channel's side takes `max` of each over a key's records,
/// as it did when it took every column, so a key's class and amount do not
/// depend on which columns were read.
const CLASSIFIED: [&str; 5] = [KEY, STATUS, AMOUNT_MINOR, CURRENCY, FEE_MINOR];
/// Class codes are `i8`; the first pass tallies by code in a flat table.
const CODE_SLOTS: usize = 256;

async fn read(ctx: &SessionContext, files: &[PathBuf]) -> Result<DataFrame, EngineError> {
    if files.is_empty() {
        return Ok(ctx.read_batch(RecordBatch::new_empty(record_schema()))?);
    }
    let paths: Vec<String> = files
        .iter()
        .map(|path| path.to_string_lossy().into_owned())
        .collect();
    Ok(ctx
        .read_parquet(paths, ParquetReadOptions::default())
        .await?)
}

fn prefixed(prefix: &str, column: &str) -> String {
    format!("{prefix}{column}")
}

/// What the first pass joins and groups the keys as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyType {
    Text,
    /// Every input file's metadata says its keys are decimal numbers
    /// (`schema::KEY_NUMBERS`): hashing, comparing and grouping an `i64`
    /// costs a fraction of doing so to its text, and the text comes back
    /// unchanged from the number.
    Number,
}

impl KeyType {
    /// `Number` when every file says its keys are numbers; a file written
    /// before files said so, or with one key that is not, makes it `Text`.
    fn of_files(files: &[&[PathBuf]]) -> Result<KeyType, EngineError> {
        for path in files.iter().flat_map(|files| files.iter()) {
            let file = File::open(path).map_err(|source| EngineError::Read {
                path: path.clone(),
                source,
            })?;
            let metadata = ParquetMetaDataReader::new().parse_and_finish(&file)?;
            let numbers = metadata
                .file_metadata()
                .key_value_metadata()
                .is_some_and(|entries| {
                    entries.iter().any(|entry| {
                        entry.key == KEY_NUMBERS && entry.value.as_deref() == Some("true")
                    })
                });
            if !numbers {
                return Ok(KeyType::Text);
            }
        }
        Ok(KeyType::Number)
    }

    /// A record's key as the plan joins it. The cast fails the query,
    /// rather than dropping the key, should a file's metadata be wrong.
    fn key(self) -> Expr {
        match self {
            KeyType::Text => col(KEY),
            KeyType::Number => cast(col(KEY), DataType::Int64),
        }
    }

    /// A joined key back as its text.
    fn text(self, key: Expr) -> Expr {
        match self {
            KeyType::Text => key,
            KeyType::Number => cast(key, DataType::Utf8),
        }
    }
}

/// Ours: one record per key (the snapshot guarantees it), `columns`
/// renamed, the key as `key`.
fn platform_side(frame: DataFrame, columns: &[&str], key: Expr) -> Result<DataFrame, EngineError> {
    let selected: Vec<Expr> = columns
        .iter()
        .map(|name| match *name {
            KEY => key.clone().alias(prefixed(PLATFORM, KEY)),
            name => col(name).alias(prefixed(PLATFORM, name)),
        })
        .collect();
    Ok(frame.select(selected)?)
}

/// The channel's: grouped by `key`, with the number of records per key and
/// the `max` of each of `columns` besides the key.
fn channel_side(frame: DataFrame, columns: &[&str], key: Expr) -> Result<DataFrame, EngineError> {
    let figures: Vec<&str> = columns
        .iter()
        .copied()
        .filter(|name| *name != KEY)
        .collect();
    let mut aggregates = vec![count(lit(1i64)).alias(COUNT)];
    aggregates.extend(
        figures
            .iter()
            .map(|name| max(col(*name)).alias(prefixed(CHANNEL, name))),
    );
    let grouped = frame.aggregate(vec![key.alias(KEY)], aggregates)?;
    let mut selected = vec![col(KEY).alias(prefixed(CHANNEL, KEY)), col(COUNT)];
    selected.extend(figures.iter().map(|name| col(prefixed(CHANNEL, name))));
    Ok(grouped.select(selected)?)
}

fn p(name: &str) -> Expr {
    col(prefixed(PLATFORM, name))
}

fn c(name: &str) -> Expr {
    col(prefixed(CHANNEL, name))
}

/// `recon::classify` as one expression over a joined row.
fn class_expression(fee_tolerance_minor: i64) -> Result<Expr, EngineError> {
    let code = |class: Class| lit(class.code());
    let success = || lit(RecordStatus::Success.as_str());
    let platform_succeeded = || p(STATUS).eq(success());
    let channel_succeeded = || c(STATUS).eq(success());
    let fee_apart = (c(FEE_MINOR) - p(FEE_MINOR))
        .gt(lit(fee_tolerance_minor))
        .or((p(FEE_MINOR) - c(FEE_MINOR)).gt(lit(fee_tolerance_minor)));
    Ok(when(col(COUNT).gt(lit(1i64)), code(Class::Duplicate))
        .when(
            p(KEY).is_null().and(channel_succeeded()),
            code(Class::ChannelOnly),
        )
        .when(p(KEY).is_null(), code(Class::NotDue))
        .when(
            c(KEY).is_null().and(platform_succeeded()),
            code(Class::PlatformOnly),
        )
        .when(c(KEY).is_null(), code(Class::NotDue))
        .when(
            p(CURRENCY).not_eq(c(CURRENCY)),
            code(Class::CurrencyMismatch),
        )
        .when(
            platform_succeeded().not().and(channel_succeeded()),
            code(Class::StatusChannelSuccess),
        )
        .when(
            platform_succeeded().and(channel_succeeded().not()),
            code(Class::StatusPlatformSuccess),
        )
        .when(platform_succeeded().not(), code(Class::NotDue))
        .when(
            c(AMOUNT_MINOR).gt(p(AMOUNT_MINOR)),
            code(Class::AmountChannelHigher),
        )
        .when(
            p(AMOUNT_MINOR).gt(c(AMOUNT_MINOR)),
            code(Class::AmountPlatformHigher),
        )
        .when(fee_apart, code(Class::FeeMismatch))
        .otherwise(code(Class::Matched))?)
}

/// True where `class` (a code) is a discrepancy.
fn is_discrepancy(class: Expr) -> Expr {
    let codes: Vec<Expr> = Class::ALL
        .iter()
        .filter(|class| class.is_discrepancy())
        .map(|class| lit(class.code()))
        .collect();
    class.in_list(codes, false)
}

/// The first pass's logical plan, for inspection (`EXPLAIN`) and execution:
/// every key's class and amount, and the key itself for discrepancies.
pub async fn matching_plan(
    ctx: &SessionContext,
    platform_files: &[PathBuf],
    channel_files: &[PathBuf],
    fee_tolerance_minor: i64,
) -> Result<DataFrame, EngineError> {
    let key_type = KeyType::of_files(&[platform_files, channel_files])?;
    let platform = platform_side(
        read(ctx, platform_files).await?,
        &CLASSIFIED,
        key_type.key(),
    )?;
    let channel = channel_side(read(ctx, channel_files).await?, &CLASSIFIED, key_type.key())?;
    let platform_key = prefixed(PLATFORM, KEY);
    let channel_key = prefixed(CHANNEL, KEY);
    let joined = platform.join(
        channel,
        JoinType::Full,
        &[platform_key.as_str()],
        &[channel_key.as_str()],
        None,
    )?;
    let classified = joined.select(vec![
        p(KEY),
        c(KEY),
        class_expression(fee_tolerance_minor)?.alias(CLASS),
        when(p(KEY).is_not_null(), p(AMOUNT_MINOR))
            .otherwise(c(AMOUNT_MINOR))?
            .alias(CLASS_AMOUNT),
    ])?;
    Ok(classified.select(vec![
        col(CLASS),
        col(CLASS_AMOUNT),
        when(
            is_discrepancy(col(CLASS)),
            key_type.text(coalesce(vec![p(KEY), c(KEY)])),
        )
        .end()?
        .alias(DISCREPANT_KEY),
    ])?)
}

/// `EXPLAIN ANALYZE` of the first pass: the physical plan as it ran, with
/// each operator's rows, time and spills. It runs the pass once more.
pub async fn explain_matching(
    ctx: &SessionContext,
    platform_files: &[PathBuf],
    channel_files: &[PathBuf],
    fee_tolerance_minor: i64,
) -> Result<String, EngineError> {
    let plan = matching_plan(ctx, platform_files, channel_files, fee_tolerance_minor).await?;
    let batches = plan.explain(false, true)?.collect().await?;
    Ok(pretty_format_batches(&batches)?.to_string())
}

/// The second pass's logical plan: `keys` (key and class of each
/// discrepancy) with every figure of both sides, the channel's taken as the
/// first pass takes them (`max` over a key's records).
async fn figures_plan(
    ctx: &SessionContext,
    keys: RecordBatch,
    platform_files: &[PathBuf],
    channel_files: &[PathBuf],
) -> Result<DataFrame, EngineError> {
    let keys = ctx.read_batch(keys)?;
    let wanted = keys.clone().select(vec![col(KEY).alias(WANTED_KEY)])?;
    let channel_records = read(ctx, channel_files).await?.join(
        wanted,
        JoinType::LeftSemi,
        &[KEY],
        &[WANTED_KEY],
        None,
    )?;
    let channel = channel_side(channel_records, &COLUMNS, col(KEY))?;
    let platform = platform_side(read(ctx, platform_files).await?, &COLUMNS, col(KEY))?;
    let platform_key = prefixed(PLATFORM, KEY);
    let channel_key = prefixed(CHANNEL, KEY);
    let joined = keys
        .join(
            platform,
            JoinType::Left,
            &[KEY],
            &[platform_key.as_str()],
            None,
        )?
        .join(
            channel,
            JoinType::Left,
            &[KEY],
            &[channel_key.as_str()],
            None,
        )?;
    let mut columns = vec![col(KEY), col(CLASS), col(COUNT)];
    for name in &COLUMNS {
        columns.push(p(name));
        columns.push(c(name));
    }
    Ok(joined.select(columns)?)
}

/// Matches the record files of both sides and classifies every key. The
/// first pass counts every class and keeps only the discrepant keys; the
/// second hands each discrepancy, with both sides' figures, to `on_finding`
/// as it streams out of the plan. Memory grows with the number of
/// discrepancies, not of records.
pub async fn match_files(
    ctx: &SessionContext,
    platform_files: &[PathBuf],
    channel_files: &[PathBuf],
    fee_tolerance_minor: i64,
    mut on_finding: impl FnMut(Finding),
) -> Result<MatchSummary, EngineError> {
    let plan = matching_plan(ctx, platform_files, channel_files, fee_tolerance_minor).await?;
    let mut stream = plan.execute_stream().await?;
    let mut tally = Tally::new();
    while let Some(batch) = stream.next().await {
        tally.read_batch(&batch?)?;
    }
    drop(stream);
    let (summary, keys) = tally.finish()?;
    let expected = summary.discrepancies();
    if expected == 0 {
        return Ok(summary);
    }
    let plan = figures_plan(ctx, keys, platform_files, channel_files).await?;
    let mut stream = plan.execute_stream().await?;
    let mut found: u64 = 0;
    while let Some(batch) = stream.next().await {
        found += read_findings(&batch?, &mut on_finding)?;
    }
    // Each discrepant key has one row in the second pass, as in the first.
    if found != expected {
        return Err(EngineError::FiguresMismatch { expected, found });
    }
    Ok(summary)
}

/// The first pass's output, tallied: keys and amounts per class code, and
/// the discrepant keys with their class codes.
struct Tally {
    keys: [u64; CODE_SLOTS],
    amounts_minor: [i128; CODE_SLOTS],
    discrepant_keys: StringBuilder,
    discrepant_classes: Int8Builder,
}

fn slot(code: i8) -> usize {
    usize::from(code.cast_unsigned())
}

impl Tally {
    fn new() -> Tally {
        Tally {
            keys: [0; CODE_SLOTS],
            amounts_minor: [0; CODE_SLOTS],
            discrepant_keys: StringBuilder::new(),
            discrepant_classes: Int8Builder::new(),
        }
    }

    fn read_batch(&mut self, batch: &RecordBatch) -> Result<(), EngineError> {
        let class = column(batch, CLASS)?
            .as_primitive_opt::<Int8Type>()
            .ok_or_else(|| type_error(CLASS))?;
        let amount = int64s(batch, CLASS_AMOUNT)?;
        let key = strings(batch, DISCREPANT_KEY)?;
        for row in 0..batch.num_rows() {
            let code = class.value(row);
            self.keys[slot(code)] += 1;
            self.amounts_minor[slot(code)] += i128::from(amount.value(row));
            if key.is_valid(row) {
                self.discrepant_keys.append_value(key.value(row));
                self.discrepant_classes.append_value(code);
            }
        }
        Ok(())
    }

    /// The summary, and the discrepant keys as a batch of key and class.
    fn finish(mut self) -> Result<(MatchSummary, RecordBatch), EngineError> {
        let mut summary = MatchSummary::default();
        for class in Class::ALL {
            let keys = self.keys[slot(class.code())];
            if keys > 0 {
                summary.keys.insert(*class, keys);
                summary
                    .amounts_minor
                    .insert(*class, self.amounts_minor[slot(class.code())]);
            }
        }
        let known = summary.total_keys();
        let counted: u64 = self.keys.iter().sum();
        if known != counted {
            let unknown = (i8::MIN..=i8::MAX)
                .find(|code| self.keys[slot(*code)] > 0 && Class::from_code(*code).is_none())
                .unwrap_or_default();
            return Err(EngineError::Value {
                column: CLASS,
                value: unknown.to_string(),
            });
        }
        let schema = Schema::new(vec![
            Field::new(KEY, DataType::Utf8, false),
            Field::new(CLASS, DataType::Int8, false),
        ]);
        let keys = RecordBatch::try_new(
            Arc::new(schema),
            vec![
                Arc::new(self.discrepant_keys.finish()),
                Arc::new(self.discrepant_classes.finish()),
            ],
        )?;
        Ok((summary, keys))
    }
}

/// Hands each row of a second-pass batch to `on_finding`; returns how many.
fn read_findings(
    batch: &RecordBatch,
    on_finding: &mut impl FnMut(Finding),
) -> Result<u64, EngineError> {
    let view = BatchView::new(batch)?;
    let mut found: u64 = 0;
    for row in 0..batch.num_rows() {
        let code = view.class.value(row);
        let class = Class::from_code(code).ok_or(EngineError::Value {
            column: CLASS,
            value: code.to_string(),
        })?;
        on_finding(view.finding(row, class)?);
        found += 1;
    }
    Ok(found)
}

/// Typed access to the columns of one output batch.
struct BatchView<'a> {
    key: Strings<'a>,
    class: &'a datafusion::arrow::array::Int8Array,
    count: &'a datafusion::arrow::array::Int64Array,
    platform: SideView<'a>,
    channel: SideView<'a>,
}

struct SideView<'a> {
    key: Strings<'a>,
    kind: Strings<'a>,
    transaction: Strings<'a>,
    amount: &'a datafusion::arrow::array::Int64Array,
    currency: Strings<'a>,
    fee: &'a datafusion::arrow::array::Int64Array,
    status: Strings<'a>,
    occurred: &'a datafusion::arrow::array::Int64Array,
    day: &'a datafusion::arrow::array::Int32Array,
}

fn column<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a dyn Array, EngineError> {
    batch
        .column_by_name(name)
        .map(|array| array.as_ref())
        .ok_or_else(|| EngineError::Schema {
            path: PathBuf::from("<plan output>"),
            column: name.to_owned(),
        })
}

/// A text column, as the plan hands it out: Parquet reads text as views.
#[derive(Clone, Copy)]
enum Strings<'a> {
    Plain(&'a datafusion::arrow::array::StringArray),
    View(&'a datafusion::arrow::array::StringViewArray),
}

impl Strings<'_> {
    fn is_valid(&self, row: usize) -> bool {
        match self {
            Strings::Plain(array) => array.is_valid(row),
            Strings::View(array) => array.is_valid(row),
        }
    }

    fn value(&self, row: usize) -> &str {
        match self {
            Strings::Plain(array) => array.value(row),
            Strings::View(array) => array.value(row),
        }
    }
}

fn strings<'a>(batch: &'a RecordBatch, name: &str) -> Result<Strings<'a>, EngineError> {
    let array = column(batch, name)?;
    if let Some(plain) = array.as_string_opt::<i32>() {
        return Ok(Strings::Plain(plain));
    }
    array
        .as_string_view_opt()
        .map(Strings::View)
        .ok_or_else(|| type_error(name))
}

fn int64s<'a>(
    batch: &'a RecordBatch,
    name: &str,
) -> Result<&'a datafusion::arrow::array::Int64Array, EngineError> {
    column(batch, name)?
        .as_primitive_opt::<Int64Type>()
        .ok_or_else(|| type_error(name))
}

fn type_error(name: &str) -> EngineError {
    EngineError::Schema {
        path: PathBuf::from("<plan output>"),
        column: format!("{name} (unexpected type)"),
    }
}

impl<'a> SideView<'a> {
    fn new(batch: &'a RecordBatch, prefix: &str) -> Result<SideView<'a>, EngineError> {
        let name = |column: &str| prefixed(prefix, column);
        Ok(SideView {
            key: strings(batch, &name(KEY))?,
            kind: strings(batch, &name(KIND))?,
            transaction: strings(batch, &name(CHANNEL_TRANSACTION_ID))?,
            amount: int64s(batch, &name(AMOUNT_MINOR))?,
            currency: strings(batch, &name(CURRENCY))?,
            fee: int64s(batch, &name(FEE_MINOR))?,
            status: strings(batch, &name(STATUS))?,
            occurred: int64s(batch, &name(OCCURRED_AT))?,
            day: column(batch, &name(BUSINESS_DAY))?
                .as_primitive_opt::<Int32Type>()
                .ok_or_else(|| type_error(&name(BUSINESS_DAY)))?,
        })
    }

    fn present(&self, row: usize) -> bool {
        self.key.is_valid(row)
    }

    fn figures(&self, row: usize) -> Result<Option<SideFigures>, EngineError> {
        if !self.present(row) {
            return Ok(None);
        }
        let status_text = self.status.value(row);
        let status = RecordStatus::parse(status_text).ok_or_else(|| EngineError::Value {
            column: STATUS,
            value: status_text.to_owned(),
        })?;
        Ok(Some(SideFigures {
            amount_minor: self.amount.value(row),
            currency: self.currency.value(row).to_owned(),
            fee_minor: self.fee.is_valid(row).then(|| self.fee.value(row)),
            status,
            channel_transaction_id: self
                .transaction
                .is_valid(row)
                .then(|| self.transaction.value(row).to_owned()),
            occurred_at: self.occurred.value(row),
            business_day: self.day.value(row),
        }))
    }

    fn kind(&self, row: usize) -> Result<Option<RecordKind>, EngineError> {
        if !self.present(row) {
            return Ok(None);
        }
        let text = self.kind.value(row);
        RecordKind::parse(text)
            .map(Some)
            .ok_or_else(|| EngineError::Value {
                column: KIND,
                value: text.to_owned(),
            })
    }
}

impl<'a> BatchView<'a> {
    fn new(batch: &'a RecordBatch) -> Result<BatchView<'a>, EngineError> {
        Ok(BatchView {
            key: strings(batch, KEY)?,
            class: column(batch, CLASS)?
                .as_primitive_opt::<Int8Type>()
                .ok_or_else(|| type_error(CLASS))?,
            count: int64s(batch, COUNT)?,
            platform: SideView::new(batch, PLATFORM)?,
            channel: SideView::new(batch, CHANNEL)?,
        })
    }

    fn finding(&self, row: usize, class: Class) -> Result<Finding, EngineError> {
        let kind = match self.platform.kind(row)? {
            Some(kind) => kind,
            None => self.channel.kind(row)?.unwrap_or(RecordKind::Payment),
        };
        Ok(Finding {
            key: self.key.value(row).to_owned(),
            kind,
            class,
            platform: self.platform.figures(row)?,
            channel: self.channel.figures(row)?,
            channel_count: if self.count.is_valid(row) {
                u64::try_from(self.count.value(row)).unwrap_or(0)
            } else {
                0
            },
        })
    }
}
