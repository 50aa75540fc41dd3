//! `paycore recon run`: snapshot our side, match it against the channel's
//! files, confirm the clearing entries of what matched, store what
//! differs, settle what agrees again, and treat.

use super::{ReconArgs, channel_settings, parse_date, progress};
use anyhow::{Context, Result, bail};
use recon::{
    Attributes, CONFIRM_ORDERS_MAX, ChannelOrderRecord, ChannelSettings, Class, Discrepancy,
    DiscrepancyAction, DiscrepancyQuery, DiscrepancyStatus, DiscrepancyUpdate, Finding,
    ReconRecord, ReconRules, ReconRun, ReconStore, RecordStatus, SNAPSHOT_PAGE_ROWS_MAX, Treatment,
};
use recon_engine::{MatchSummary, RecordFileWriter, SessionSettings, match_files, session};
use server::AppState;
use server::reconciliation::{Actor, TreatmentOutcome, treat};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

/// Unsettled discrepancies read per page when carrying them.
const CARRY_PAGE_MAX: u32 = 1_000;

/// Options of one run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub channel: String,
    pub date: String,
    /// Apply the automatic treatments of the error codes.
    pub treat: bool,
}

fn platform_status(text: &str) -> RecordStatus {
    match text {
        "SUCCESS" => RecordStatus::Success,
        "FAILED" => RecordStatus::Failed,
        _ => RecordStatus::Processing,
    }
}

/// Our channel order as a reconciliation record, dated by the channel's
/// own business date where it gave one, else by its cutoff.
fn to_record(order: &ChannelOrderRecord, settings: &ChannelSettings) -> ReconRecord {
    let business_day = order
        .channel_business_date
        .as_deref()
        .and_then(recon::parse_day)
        .unwrap_or_else(|| settings.business_day(order.updated_at));
    ReconRecord {
        key: order.id.to_string(),
        kind: order.kind,
        channel_transaction_id: order.channel_transaction_id.clone(),
        amount_minor: order.amount_minor,
        currency: order.currency.clone(),
        fee_minor: order.channel_fee_minor,
        status: platform_status(&order.status),
        occurred_at: order.updated_at,
        business_day,
    }
}

/// The unsettled discrepancies of a channel found before `day`.
async fn carried(store: &store::Store, channel: &str, day: i32) -> Result<Vec<Discrepancy>> {
    let mut found = Vec::new();
    for status in [DiscrepancyStatus::Open, DiscrepancyStatus::Exception] {
        let mut after_id = 0;
        loop {
            let page = store
                .discrepancies(&DiscrepancyQuery {
                    channel: Some(channel.to_owned()),
                    status: Some(status),
                    after_id,
                    limit: CARRY_PAGE_MAX,
                })
                .await?;
            let Some(last) = page.last() else { break };
            after_id = last.id;
            found.extend(
                page.into_iter()
                    .filter(|discrepancy| discrepancy.first_day <= day),
            );
        }
    }
    Ok(found)
}

/// Our side as a run wrote it.
struct Snapshot {
    records: u64,
    /// The ids of our successful orders in it: each one is MATCHED unless
    /// a finding names it.
    succeeded: Vec<i64>,
}

/// Writes our side: the day's channel orders, then the current state of
/// the orders behind carried discrepancies not already among them.
async fn snapshot(
    store: &store::Store,
    options: &RunOptions,
    settings: &ChannelSettings,
    day: i32,
    carried: &[Discrepancy],
    path: &Path,
) -> Result<Snapshot> {
    let mut writer = RecordFileWriter::create(path)?;
    let from = settings.business_day_start(day);
    let to = settings.business_day_start(day + 1);
    let date = recon::format_day_compact(day);
    let bar = progress(0, "snapshot");
    let mut seen = HashSet::new();
    let mut succeeded = Vec::new();
    let mut after_id = 0;
    loop {
        let page = store
            .snapshot_page(
                &options.channel,
                &date,
                from,
                to,
                after_id,
                SNAPSHOT_PAGE_ROWS_MAX,
            )
            .await?;
        let Some(last) = page.last() else { break };
        after_id = last.id;
        for order in &page {
            seen.insert(order.id);
            if order.status == RecordStatus::Success.as_str() {
                succeeded.push(order.id);
            }
            writer.push(to_record(order, settings))?;
        }
        bar.inc(page.len() as u64);
    }
    let carried_ids: Vec<i64> = carried
        .iter()
        .filter_map(|discrepancy| discrepancy.key.parse().ok())
        .filter(|id| !seen.contains(id))
        .collect();
    for order in store.channel_orders_by_id(&carried_ids).await? {
        if order.status == RecordStatus::Success.as_str() {
            succeeded.push(order.id);
        }
        writer.push(to_record(&order, settings))?;
    }
    bar.finish_and_clear();
    Ok(Snapshot {
        records: writer.finish()?,
        succeeded,
    })
}

/// 对账确认: marks reconciled the clearing entries of every order the run
/// MATCHED (those of the day and carried ones that agree now), in bounded
/// chunks; returns how many entries changed. A success of ours is either
/// matched or a discrepancy, so the matched keys are our successes that no
/// finding names; their number must be the plan's, or nothing is marked.
async fn confirm_matched(
    store: &store::Store,
    succeeded: &[i64],
    findings: &[Finding],
    matched_keys: u64,
) -> Result<u64> {
    let found: HashSet<i64> = findings
        .iter()
        .filter_map(|finding| finding.key.parse().ok())
        .collect();
    let matched: Vec<i64> = succeeded
        .iter()
        .copied()
        .filter(|id| !found.contains(id))
        .collect();
    if matched.len() as u64 != matched_keys {
        bail!(
            "{} of our successes have no finding, but the matching counted {matched_keys} MATCHED keys: \
             no clearing entry was confirmed",
            matched.len()
        );
    }
    let bar = progress(matched.len() as u64, "confirming");
    let mut changed = 0;
    for chunk in matched.chunks(CONFIRM_ORDERS_MAX) {
        changed += store.confirm_channel_orders(chunk).await?;
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    Ok(changed)
}

/// The channel's side carried from earlier days: the records behind
/// unsettled discrepancies, so that a later state of ours can match them.
fn carried_channel_records(carried: &[Discrepancy], path: &Path) -> Result<u64> {
    let mut writer = RecordFileWriter::create(path)?;
    for discrepancy in carried {
        if let Some(side) = &discrepancy.channel_side {
            for _ in 0..discrepancy.channel_count.max(1) {
                writer.push(ReconRecord {
                    key: discrepancy.key.clone(),
                    kind: discrepancy.kind,
                    channel_transaction_id: side.channel_transaction_id.clone(),
                    amount_minor: side.amount_minor,
                    currency: side.currency.clone(),
                    fee_minor: side.fee_minor,
                    status: side.status,
                    occurred_at: side.occurred_at,
                    business_day: side.business_day,
                })?;
            }
        }
    }
    Ok(writer.finish()?)
}

fn attributes(
    finding: &Finding,
    settings: &ChannelSettings,
    rules: &ReconRules,
    day: i32,
    first_day: i32,
    duplicate_of_success: bool,
) -> Attributes {
    let near_cutoff = [&finding.platform, &finding.channel]
        .into_iter()
        .flatten()
        .any(|side| {
            settings.minutes_before_cutoff(side.occurred_at) <= i64::from(rules.near_cutoff_minutes)
        });
    Attributes {
        class: finding.class,
        kind: finding.kind,
        platform_status: finding.platform.as_ref().map(|side| side.status),
        near_cutoff,
        duplicate_of_success,
        age_days: u32::try_from(day - first_day).unwrap_or(0),
    }
}

/// For a channel success on an order we did not finish: was the trade
/// already paid by another payment (重复支付)?
async fn duplicate_of_success(store: &store::Store, finding: &Finding) -> Result<bool> {
    if finding.class != Class::StatusChannelSuccess {
        return Ok(false);
    }
    let Ok(id) = finding.key.parse::<i64>() else {
        return Ok(false);
    };
    Ok(store
        .channel_order_owner(id)
        .await?
        .is_some_and(|owner| owner.is_duplicate_payment()))
}

/// What a run did, for its summary.
#[derive(Debug, Default)]
struct Tally {
    resolved: u64,
    treated: u64,
    escalated: u64,
    waiting: u64,
    /// Clearing entries the matched keys confirmed.
    confirmed: u64,
}

pub async fn run(arguments: &ReconArgs, options: &RunOptions) -> Result<()> {
    let rules = arguments.rules()?;
    let settings = channel_settings(&rules, &options.channel)?.clone();
    let day = parse_date(&options.date)?;
    let state =
        crate::open_state(&arguments.database.database, &server::Config::builtin()?).await?;
    let store = state.store().clone();
    let directory = arguments.directory();
    let carried = carried(&store, &options.channel, day).await?;
    let snapshot_path = directory
        .join("snapshots")
        .join(&options.channel)
        .join(format!("{}.parquet", options.date));
    let ours = snapshot(&store, options, &settings, day, &carried, &snapshot_path).await?;
    let carried_path = directory
        .join("carried")
        .join(&options.channel)
        .join(format!("{}.parquet", options.date));
    let carried_records = carried_channel_records(&carried, &carried_path)?;
    let files = store.statement_files(&options.channel, day).await?;
    let mut channel_files: Vec<PathBuf> = files
        .iter()
        .map(|file| PathBuf::from(&file.file.record_path))
        .collect();
    let channel_records: u64 =
        files.iter().map(|file| file.file.records).sum::<u64>() + carried_records;
    channel_files.push(carried_path);
    let ctx = session(&SessionSettings::default())?;
    let mut findings = Vec::new();
    let summary = match_files(
        &ctx,
        &[snapshot_path],
        &channel_files,
        rules.fee_tolerance_minor,
        |finding| findings.push(finding),
    )
    .await
    .context("matching")?;
    let matched = summary.keys.get(&Class::Matched).copied().unwrap_or(0);
    let confirmed = confirm_matched(&store, &ours.succeeded, &findings, matched).await?;
    let mut tally = settle(&state, &rules, &settings, options, day, &carried, &findings).await?;
    tally.confirmed = confirmed;
    let run = ReconRun {
        channel: options.channel.clone(),
        business_day: day,
        platform_records: ours.records,
        channel_records,
        matched,
        discrepancies: summary.discrepancies(),
        summary: summary_text(&summary),
        finished_at: store::now_micros(),
    };
    store.save_run(&run).await?;
    print_summary(&run, &summary, &tally, files.len());
    Ok(())
}

/// Stores the findings, resolves carried discrepancies that agree now, and
/// treats or escalates by the error codes.
async fn settle(
    state: &AppState,
    rules: &ReconRules,
    settings: &ChannelSettings,
    options: &RunOptions,
    day: i32,
    carried: &[Discrepancy],
    findings: &[Finding],
) -> Result<Tally> {
    let store = state.store();
    let mut tally = Tally::default();
    let earlier: HashMap<&str, &Discrepancy> = carried
        .iter()
        .map(|discrepancy| (discrepancy.key.as_str(), discrepancy))
        .collect();
    let found: HashSet<&str> = findings
        .iter()
        .map(|finding| finding.key.as_str())
        .collect();
    let actor_name = format!("run:{}:{}", options.channel, options.date);
    for discrepancy in carried
        .iter()
        .filter(|discrepancy| !found.contains(discrepancy.key.as_str()))
    {
        let action = DiscrepancyAction {
            discrepancy_id: discrepancy.id,
            action_key: format!("{}-resolve-{}", discrepancy.id, options.date),
            action: "resolve".to_owned(),
            from_status: discrepancy.status,
            to_status: DiscrepancyStatus::Resolved,
            actor: actor_name.clone(),
            reason: format!("both sides agree in the run of {}", options.date),
            at: store::now_micros(),
        };
        if store.change_discrepancy(&action).await? {
            tally.resolved += 1;
        }
    }
    let bar = progress(findings.len() as u64, "treating");
    for finding in findings {
        let first_day = earlier
            .get(finding.key.as_str())
            .map_or(day, |earlier| earlier.first_day);
        let duplicate = duplicate_of_success(store, finding).await?;
        let attributes = attributes(finding, settings, rules, day, first_day, duplicate);
        let verdict = rules.verdict(&attributes);
        let description = rules
            .rules
            .iter()
            .find(|rule| rule.code == verdict.code)
            .map_or("no rule matched", |rule| rule.description.as_str());
        let stored = store
            .upsert_discrepancy(
                &DiscrepancyUpdate {
                    channel: &options.channel,
                    finding,
                    error_code: verdict.code,
                    treatment: verdict.treatment,
                    business_day: day,
                },
                store::now_micros(),
            )
            .await?;
        if stored.status == DiscrepancyStatus::Open && options.treat {
            let too_old = attributes.age_days > rules.carry_days_max;
            let treatment = if too_old && verdict.treatment == Treatment::Wait {
                Treatment::Escalate
            } else {
                verdict.treatment
            };
            let name = format!("rule:{}", verdict.code);
            let reason = if too_old {
                format!("{description}; open for {} days", attributes.age_days)
            } else {
                description.to_owned()
            };
            let actor = Actor {
                name: &name,
                reason: &reason,
            };
            apply(state, &stored, treatment, &actor, &mut tally).await?;
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(tally)
}

/// Applies one treatment; one that cannot apply goes to an operator.
async fn apply(
    state: &AppState,
    discrepancy: &Discrepancy,
    treatment: Treatment,
    actor: &Actor<'_>,
    tally: &mut Tally,
) -> Result<()> {
    let now = store::now_micros();
    match treat(state, discrepancy, treatment, actor, now).await {
        Ok(TreatmentOutcome::Applied { status, .. }) => {
            if status == DiscrepancyStatus::Exception {
                tally.escalated += 1;
            } else {
                tally.treated += 1;
            }
        }
        Ok(TreatmentOutcome::Unchanged { .. }) => tally.waiting += 1,
        Err(error) => {
            tracing::warn!(discrepancy_id = discrepancy.id, %error, "treatment failed; escalated");
            let reason = format!(
                "{}; treatment {} failed: {error}",
                actor.reason,
                treatment.as_str()
            );
            let escalate = Actor {
                name: actor.name,
                reason: &reason,
            };
            treat(state, discrepancy, Treatment::Escalate, &escalate, now).await?;
            tally.escalated += 1;
        }
    }
    Ok(())
}

fn summary_text(summary: &MatchSummary) -> String {
    summary
        .keys
        .iter()
        .map(|(class, keys)| format!("{}={keys}", class.as_str()))
        .collect::<Vec<_>>()
        .join(" ")
}

fn print_summary(run: &ReconRun, summary: &MatchSummary, tally: &Tally, files: usize) {
    println!(
        "reconciliation of {} on {}: {} of our records, {} channel records from {files} file(s)",
        run.channel,
        recon::format_day(run.business_day),
        run.platform_records,
        run.channel_records
    );
    println!(
        "{:<26} {:<34} {:>10} {:>16}",
        "class", "label", "keys", "amount_minor"
    );
    for (class, keys) in &summary.keys {
        let amount = summary.amounts_minor.get(class).copied().unwrap_or(0);
        println!(
            "{:<26} {:<30} {keys:>10} {amount:>16}",
            class.as_str(),
            class.label_zh()
        );
    }
    println!(
        "discrepancies: {} found; {} treated, {} escalated to operators, {} waiting; {} earlier ones resolved",
        run.discrepancies, tally.treated, tally.escalated, tally.waiting, tally.resolved
    );
    println!(
        "clearing entries confirmed by the {} matched keys: {} newly reconciled (settleable under reconciled-only terms)",
        run.matched, tally.confirmed
    );
}
