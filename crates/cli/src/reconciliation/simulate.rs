//! `paycore recon simulate-statement`: the simulated bank's statement of a
//! day, in the WeChat Pay trade-bill layout (FORMATS.md §1.1), written from
//! what the simulator booked. `--inject` adds the kinds of difference real
//! files bring, so the whole reconciliation path can be seen end to end.

use super::{ReconArgs, channel_settings, parse_date};
use anyhow::{Context, Result};
use recon::{ChannelOrderRecord, ReconStore, RecordKind, SNAPSHOT_PAGE_ROWS_MAX};
use std::io::Write;
use std::path::Path;

const HEADER: &str = "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,\
交易类型,交易状态,付款银行,货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,\
充值券退款金额,退款类型,退款状态,商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注";
const SUMMARY_HEADER: &str =
    "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额";

/// A bill row: the record as the bank booked it.
struct Line {
    order_id: String,
    transaction_id: String,
    kind: RecordKind,
    amount_minor: i64,
    fee_minor: i64,
    at: i64,
}

fn yuan(minor: i64) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    format!(
        "{sign}{}.{:02}",
        minor.unsigned_abs() / 100,
        minor.unsigned_abs() % 100
    )
}

fn local_time(at: i64, offset_minutes: i32) -> Result<String> {
    let offset = time::UtcOffset::from_whole_seconds(offset_minutes * 60)?;
    let instant =
        time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(at) * 1_000)?.to_offset(offset);
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    Ok(instant.format(&format)?)
}

fn row(line: &Line, offset_minutes: i32) -> Result<String> {
    let time = local_time(line.at, offset_minutes)?;
    let fee = format!("{}000", yuan(line.fee_minor));
    let amount = yuan(line.amount_minor);
    let fields: Vec<String> = match line.kind {
        RecordKind::Payment => vec![
            time,
            "wxsimbank".into(),
            "1900000109".into(),
            "0".into(),
            String::new(),
            line.transaction_id.clone(),
            line.order_id.clone(),
            "user".into(),
            "NATIVE".into(),
            "SUCCESS".into(),
            "CMB_DEBIT".into(),
            "CNY".into(),
            amount.clone(),
            "0.00".into(),
            "0".into(),
            "0".into(),
            "0.00".into(),
            "0.00".into(),
            String::new(),
            String::new(),
            "paycore".into(),
            String::new(),
            fee,
            "0.60%".into(),
            amount,
            "0.00".into(),
            String::new(),
        ],
        RecordKind::Refund => vec![
            time,
            "wxsimbank".into(),
            "1900000109".into(),
            "0".into(),
            String::new(),
            line.transaction_id.clone(),
            line.order_id.clone(),
            "user".into(),
            "NATIVE".into(),
            "REFUND".into(),
            "CMB_DEBIT".into(),
            "CNY".into(),
            "0.00".into(),
            "0.00".into(),
            line.transaction_id.clone(),
            line.order_id.clone(),
            amount.clone(),
            "0.00".into(),
            "ORIGINAL".into(),
            "SUCCESS".into(),
            "paycore".into(),
            String::new(),
            fee,
            "0.60%".into(),
            "0.00".into(),
            amount,
            String::new(),
        ],
    };
    Ok(fields
        .iter()
        .map(|field| format!("`{field}"))
        .collect::<Vec<_>>()
        .join(","))
}

fn booked(order: &ChannelOrderRecord) -> Option<Line> {
    (order.status == "SUCCESS").then(|| Line {
        order_id: order.id.to_string(),
        transaction_id: order.channel_transaction_id.clone().unwrap_or_default(),
        kind: order.kind,
        amount_minor: order.amount_minor,
        fee_minor: order.channel_fee_minor.unwrap_or(0),
        at: order.updated_at,
    })
}

/// Differences a real file brings: one booking we do not have (长款), one
/// of ours missing (短款), one fee that differs.
fn inject(lines: &mut Vec<Line>, day_start: i64) {
    if !lines.is_empty() {
        lines.remove(0);
    }
    if let Some(line) = lines
        .iter_mut()
        .find(|line| line.kind == RecordKind::Payment)
    {
        line.fee_minor += 5;
    }
    lines.push(Line {
        order_id: "EXT-20991231-0001".to_owned(),
        transaction_id: "SIM-UNKNOWN-0001".to_owned(),
        kind: RecordKind::Payment,
        amount_minor: 8_800,
        fee_minor: 53,
        at: day_start + 3_600_000_000,
    });
}

/// What to change in the simulated statement.
#[derive(Debug, Clone, Default)]
pub struct Differences {
    /// One booking we do not have, one of ours missing, one fee changed.
    pub inject: bool,
    /// Channel orders of ours left out (短款), so that their records stay
    /// unmatched.
    pub drop_orders: Vec<i64>,
}

pub async fn simulate_statement(
    arguments: &ReconArgs,
    channel: &str,
    date: &str,
    out: &Path,
    differences: &Differences,
) -> Result<()> {
    let rules = arguments.rules()?;
    let settings = channel_settings(&rules, channel)?;
    let day = parse_date(date)?;
    let store = store::Store::open(&arguments.database.database)
        .await
        .with_context(|| format!("opening the database {}", arguments.database.database))?;
    let (from, to) = (
        settings.business_day_start(day),
        settings.business_day_start(day + 1),
    );
    let compact = recon::format_day_compact(day);
    let mut lines = Vec::new();
    let mut after_id = 0;
    loop {
        let page = store
            .snapshot_page(
                channel,
                &compact,
                from,
                to,
                after_id,
                SNAPSHOT_PAGE_ROWS_MAX,
            )
            .await?;
        let Some(last) = page.last() else { break };
        after_id = last.id;
        lines.extend(
            page.iter()
                .filter(|order| !differences.drop_orders.contains(&order.id))
                .filter_map(booked),
        );
    }
    if differences.inject {
        inject(&mut lines, from);
    }
    let mut file = std::io::BufWriter::new(
        std::fs::File::create(out).with_context(|| format!("creating {}", out.display()))?,
    );
    writeln!(file, "{HEADER}")?;
    for line in &lines {
        writeln!(file, "{}", row(line, settings.utc_offset_minutes)?)?;
    }
    let sum = |kind: RecordKind| -> i64 {
        lines
            .iter()
            .filter(|line| line.kind == kind)
            .map(|line| line.amount_minor)
            .sum()
    };
    let fees: i64 = lines.iter().map(|line| line.fee_minor).sum();
    let (paid, refunded) = (sum(RecordKind::Payment), sum(RecordKind::Refund));
    writeln!(file, "{SUMMARY_HEADER}")?;
    writeln!(
        file,
        "`{},`{},`{},`0.00,`{}000,`{},`{}",
        lines.len(),
        yuan(paid),
        yuan(refunded),
        yuan(fees),
        yuan(paid),
        yuan(refunded)
    )?;
    file.flush()?;
    println!(
        "wrote {} with {} records of {channel} on {date}",
        out.display(),
        lines.len()
    );
    Ok(())
}
