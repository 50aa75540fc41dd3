//! `paycore agreements list`: an operator's view of a merchant's
//! agreements (签约), masked exactly as the API shows them, as CSV or Excel.

use crate::tables::write_report;
use anyhow::{Context, Result};
use engine::{AGREEMENTS_PAGE_MAX, AgreementStore, PersonalDataKey};
use server::model::AgreementResponse;
use std::path::Path;
use store::Store;

/// Most agreements one listing writes; `--after` pages past them.
const LIST_ROWS_MAX: usize = 100_000;

const HEADER: [&str; 12] = [
    "id",
    "agreement_no",
    "member_id",
    "method",
    "channel",
    "bank",
    "card_masked",
    "phone_masked",
    "status",
    "failure_code",
    "created_at",
    "updated_at",
];

fn row(agreement: AgreementResponse) -> Vec<String> {
    vec![
        agreement.id.to_string(),
        agreement.agreement_no.unwrap_or_default(),
        agreement.member_id,
        agreement.method,
        agreement.channel,
        agreement.bank.unwrap_or_default(),
        agreement.card_masked,
        agreement.phone_masked.unwrap_or_default(),
        agreement.status,
        agreement.failure_code.unwrap_or_default(),
        agreement.created_at,
        agreement.updated_at,
    ]
}

/// Writes the agreements of `merchant_id` with ids above `after_id`.
pub async fn list(
    database: &str,
    merchant_id: &str,
    after_id: i64,
    csv: Option<&Path>,
    xlsx: Option<&Path>,
) -> Result<()> {
    let store = Store::open(database)
        .await
        .with_context(|| format!("opening the database {database}"))?;
    let mut rows = Vec::new();
    let mut after = after_id;
    while rows.len() < LIST_ROWS_MAX {
        let page = store
            .agreements(merchant_id, after, AGREEMENTS_PAGE_MAX)
            .await
            .context("reading agreements")?;
        let Some(last) = page.last() else {
            break;
        };
        after = last.id;
        for agreement in page {
            rows.push(row(AgreementResponse::try_from(agreement)?));
        }
    }
    if rows.len() >= LIST_ROWS_MAX {
        eprintln!("listed the first {LIST_ROWS_MAX}; continue with --after {after}");
    }
    write_report(csv, xlsx, "agreements", &HEADER, &rows)
}

/// The key of personal-data fingerprints: the given hex key, or the public
/// development key with a warning.
pub fn personal_data_key(hex_key: Option<&str>) -> Result<PersonalDataKey> {
    match hex_key {
        Some(text) => PersonalDataKey::from_hex(text).context("reading the personal-data key"),
        None => {
            tracing::warn!(
                "no PAYCORE_PERSONAL_DATA_KEY: card and ID fingerprints use the public development key"
            );
            Ok(PersonalDataKey::development())
        }
    }
}
