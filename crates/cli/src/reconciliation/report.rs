//! `paycore recon report`: the discrepancies of a day, for the finance and
//! operations staff, as CSV and Excel.

use super::{ReconArgs, parse_date};
use anyhow::{Context, Result};
use recon::{Discrepancy, DiscrepancyQuery, ReconStore, SideFigures};
use std::path::Path;

/// Discrepancies read per page.
const PAGE_MAX: u32 = 1_000;

const HEADER: [&str; 16] = [
    "id",
    "channel",
    "key",
    "kind",
    "class",
    "label",
    "error_code",
    "treatment",
    "status",
    "first_date",
    "last_date",
    "platform_amount",
    "channel_amount",
    "platform_status",
    "channel_status",
    "channel_fee",
];

fn amount(side: Option<&SideFigures>) -> String {
    side.and_then(|side| {
        let currency = money::Currency::from_code(&side.currency).ok()?;
        Some(money::Money::new(side.amount_minor, currency).format_major())
    })
    .unwrap_or_default()
}

fn row(discrepancy: &Discrepancy) -> [String; 16] {
    let platform = discrepancy.platform.as_ref();
    let channel = discrepancy.channel_side.as_ref();
    [
        discrepancy.id.to_string(),
        discrepancy.channel.clone(),
        discrepancy.key.clone(),
        discrepancy.kind.as_str().to_owned(),
        discrepancy.class.as_str().to_owned(),
        discrepancy.class.label_zh().to_owned(),
        discrepancy.error_code.clone(),
        discrepancy.treatment.as_str().to_owned(),
        discrepancy.status.as_str().to_owned(),
        recon::format_day(discrepancy.first_day),
        recon::format_day(discrepancy.last_day),
        amount(platform),
        amount(channel),
        platform
            .map(|side| side.status.as_str().to_owned())
            .unwrap_or_default(),
        channel
            .map(|side| side.status.as_str().to_owned())
            .unwrap_or_default(),
        channel
            .and_then(|side| side.fee_minor)
            .map(|fee| fee.to_string())
            .unwrap_or_default(),
    ]
}

/// The discrepancies a day's run touched: found then, or carried into it.
async fn rows(arguments: &ReconArgs, channel: &str, day: i32) -> Result<Vec<Discrepancy>> {
    let store = store::Store::open(&arguments.database.database)
        .await
        .with_context(|| format!("opening the database {}", arguments.database.database))?;
    let mut found = Vec::new();
    let mut after_id = 0;
    loop {
        let page = store
            .discrepancies(&DiscrepancyQuery {
                channel: Some(channel.to_owned()),
                status: None,
                after_id,
                limit: PAGE_MAX,
            })
            .await?;
        let Some(last) = page.last() else { break };
        after_id = last.id;
        found.extend(
            page.into_iter()
                .filter(|discrepancy| discrepancy.first_day <= day && discrepancy.last_day >= day),
        );
    }
    Ok(found)
}

pub async fn report(
    arguments: &ReconArgs,
    channel: &str,
    date: &str,
    csv_path: Option<&Path>,
    xlsx_path: Option<&Path>,
) -> Result<()> {
    let day = parse_date(date)?;
    let discrepancies = rows(arguments, channel, day).await?;
    let table: Vec<Vec<String>> = discrepancies
        .iter()
        .map(|discrepancy| row(discrepancy).to_vec())
        .collect();
    crate::tables::write_report(csv_path, xlsx_path, "discrepancies", &HEADER, &table)
}
