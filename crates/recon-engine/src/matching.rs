//! The matching plan: aggregate the channel's side by key (to see
//! duplicates), full-outer-join it to ours, and classify every key with one
//! CASE expression that follows `recon::classify`.

use crate::schema::*;
use crate::{EngineError, record_schema};
use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{Int8Type, Int32Type, Int64Type};
use datafusion::common::JoinType;
use datafusion::dataframe::DataFrame;
use datafusion::functions_aggregate::expr_fn::{count, max};
use datafusion::logical_expr::{Expr, col, lit, when};
use datafusion::prelude::{ParquetReadOptions, SessionContext, coalesce};
use futures::StreamExt;
use recon::{Class, Finding, RecordKind, RecordStatus, SideFigures};
use std::collections::BTreeMap;
use std::ops::Not;
use std::path::PathBuf;

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

/// Ours: one record per key (the snapshot guarantees it), columns renamed.
fn platform_side(frame: DataFrame) -> Result<DataFrame, EngineError> {
    let columns: Vec<Expr> = COLUMNS
        .iter()
        .map(|name| col(*name).alias(prefixed(PLATFORM, name)))
        .collect();
    Ok(frame.select(columns)?)
}

/// The channel's: grouped by key, with the number of records per key.
fn channel_side(frame: DataFrame) -> Result<DataFrame, EngineError> {
    let mut aggregates = vec![count(lit(1i64)).alias(COUNT)];
    aggregates.extend(
        COLUMNS[1..]
            .iter()
            .map(|name| max(col(*name)).alias(prefixed(CHANNEL, name))),
    );
    let grouped = frame.aggregate(vec![col(KEY)], aggregates)?;
    let mut columns = vec![col(KEY).alias(prefixed(CHANNEL, KEY)), col(COUNT)];
    columns.extend(COLUMNS[1..].iter().map(|name| col(prefixed(CHANNEL, name))));
    Ok(grouped.select(columns)?)
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

/// The logical plan of a run, for inspection (`EXPLAIN`) and execution.
pub async fn matching_plan(
    ctx: &SessionContext,
    platform_files: &[PathBuf],
    channel_files: &[PathBuf],
    fee_tolerance_minor: i64,
) -> Result<DataFrame, EngineError> {
    let platform = platform_side(read(ctx, platform_files).await?)?;
    let channel = channel_side(read(ctx, channel_files).await?)?;
    let platform_key = prefixed(PLATFORM, KEY);
    let channel_key = prefixed(CHANNEL, KEY);
    let joined = platform.join(
        channel,
        JoinType::Full,
        &[platform_key.as_str()],
        &[channel_key.as_str()],
        None,
    )?;
    let mut columns = vec![
        coalesce(vec![p(KEY), c(KEY)]).alias(KEY),
        class_expression(fee_tolerance_minor)?.alias(CLASS),
        col(COUNT),
    ];
    for name in &COLUMNS {
        columns.push(p(name));
        columns.push(c(name));
    }
    Ok(joined.select(columns)?)
}

/// Matches the record files of both sides and classifies every key. Each
/// discrepancy is handed to `on_finding` as it streams out of the plan, so
/// memory does not grow with the number of records.
pub async fn match_files(
    ctx: &SessionContext,
    platform_files: &[PathBuf],
    channel_files: &[PathBuf],
    fee_tolerance_minor: i64,
    mut on_finding: impl FnMut(Finding),
) -> Result<MatchSummary, EngineError> {
    let plan = matching_plan(ctx, platform_files, channel_files, fee_tolerance_minor).await?;
    let mut stream = plan.execute_stream().await?;
    let mut summary = MatchSummary::default();
    while let Some(batch) = stream.next().await {
        read_batch(&batch?, &mut summary, &mut on_finding)?;
    }
    Ok(summary)
}

fn read_batch(
    batch: &RecordBatch,
    summary: &mut MatchSummary,
    on_finding: &mut impl FnMut(Finding),
) -> Result<(), EngineError> {
    let view = BatchView::new(batch)?;
    for row in 0..batch.num_rows() {
        let code = view.class.value(row);
        let class = Class::from_code(code).ok_or(EngineError::Value {
            column: CLASS,
            value: code.to_string(),
        })?;
        let amount = if view.platform.present(row) {
            view.platform.amount.value(row)
        } else {
            view.channel.amount.value(row)
        };
        *summary.keys.entry(class).or_default() += 1;
        *summary.amounts_minor.entry(class).or_default() += i128::from(amount);
        if class.is_discrepancy() {
            on_finding(view.finding(row, class)?);
        }
    }
    Ok(())
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
