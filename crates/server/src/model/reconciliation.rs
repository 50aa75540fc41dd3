//! Discrepancies (差错) and the operator's actions on them.

use recon::{Discrepancy, DiscrepancyAction, SideFigures};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// One side's figures of a discrepancy.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SideFiguresResponse {
    pub amount_minor: i64,
    pub currency: String,
    pub fee_minor: Option<i64>,
    /// SUCCESS, PROCESSING or FAILED.
    pub status: String,
    pub channel_transaction_id: Option<String>,
    /// RFC 3339.
    pub occurred_at: String,
    /// The channel's business day, `YYYY-MM-DD`.
    pub business_date: String,
}

impl From<&SideFigures> for SideFiguresResponse {
    fn from(figures: &SideFigures) -> Self {
        SideFiguresResponse {
            amount_minor: figures.amount_minor,
            currency: figures.currency.clone(),
            fee_minor: figures.fee_minor,
            status: figures.status.as_str().to_owned(),
            channel_transaction_id: figures.channel_transaction_id.clone(),
            occurred_at: crate::timestamp::format(figures.occurred_at)
                .unwrap_or_else(|_| figures.occurred_at.to_string()),
            business_date: recon::format_day(figures.business_day),
        }
    }
}

/// A discrepancy found by reconciliation and carried until settled.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DiscrepancyResponse {
    pub id: i64,
    pub channel: String,
    /// Our channel order id (the 商户订单号 / 商户退款单号 we sent).
    pub key: String,
    /// PAYMENT or REFUND.
    pub kind: String,
    /// The stored class, stating the direction: CHANNEL_ONLY, PLATFORM_ONLY,
    /// STATUS_CHANNEL_SUCCESS, AMOUNT_CHANNEL_HIGHER, FEE_MISMATCH...
    pub class: String,
    /// The class for display (长款, 短款...).
    pub label: String,
    /// The error code (差错码) its rule gave it.
    pub error_code: String,
    pub treatment: String,
    /// OPEN, TREATED, RESOLVED or EXCEPTION.
    pub status: String,
    pub first_date: String,
    pub last_date: String,
    pub channel_count: u64,
    pub platform: Option<SideFiguresResponse>,
    pub channel_side: Option<SideFiguresResponse>,
}

impl From<&Discrepancy> for DiscrepancyResponse {
    fn from(discrepancy: &Discrepancy) -> Self {
        DiscrepancyResponse {
            id: discrepancy.id,
            channel: discrepancy.channel.clone(),
            key: discrepancy.key.clone(),
            kind: discrepancy.kind.as_str().to_owned(),
            class: discrepancy.class.as_str().to_owned(),
            label: discrepancy.class.label_zh().to_owned(),
            error_code: discrepancy.error_code.clone(),
            treatment: discrepancy.treatment.as_str().to_owned(),
            status: discrepancy.status.as_str().to_owned(),
            first_date: recon::format_day(discrepancy.first_day),
            last_date: recon::format_day(discrepancy.last_day),
            channel_count: discrepancy.channel_count,
            platform: discrepancy.platform.as_ref().map(SideFiguresResponse::from),
            channel_side: discrepancy
                .channel_side
                .as_ref()
                .map(SideFiguresResponse::from),
        }
    }
}

/// One logged action on a discrepancy.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DiscrepancyActionResponse {
    pub action: String,
    pub from_status: String,
    pub to_status: String,
    pub actor: String,
    pub reason: String,
    pub at: String,
}

impl From<&DiscrepancyAction> for DiscrepancyActionResponse {
    fn from(action: &DiscrepancyAction) -> Self {
        DiscrepancyActionResponse {
            action: action.action.clone(),
            from_status: action.from_status.as_str().to_owned(),
            to_status: action.to_status.as_str().to_owned(),
            actor: action.actor.clone(),
            reason: action.reason.clone(),
            at: crate::timestamp::format(action.at).unwrap_or_else(|_| action.at.to_string()),
        }
    }
}

/// A discrepancy with the log of what was done about it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DiscrepancyDetailResponse {
    pub discrepancy: DiscrepancyResponse,
    pub actions: Vec<DiscrepancyActionResponse>,
}

/// Which discrepancies to list.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DiscrepancyListQuery {
    /// OPEN, TREATED, RESOLVED or EXCEPTION; all when absent.
    pub status: Option<String>,
    pub channel: Option<String>,
    /// Ids above this one (the last id of the previous page).
    pub after_id: Option<i64>,
    /// At most 1000; 100 when absent.
    pub limit: Option<u32>,
}

/// What an operator does to a discrepancy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OperatorAction {
    /// Apply a treatment: its error code's, or the one named.
    Treat,
    /// Hand it to the exception queue.
    Escalate,
    /// Settle it without a posting (以平台为准).
    Close,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DiscrepancyActionRequest {
    pub action: OperatorAction,
    /// For `treat`: complete_order, refund, suspense, adjust; the error
    /// code's treatment when absent.
    pub treatment: Option<String>,
    /// Who acts.
    pub operator: String,
    /// Why; kept in the log.
    pub reason: String,
}

/// What the action did.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DiscrepancyActionResult {
    pub applied: bool,
    pub note: String,
    pub discrepancy: DiscrepancyResponse,
}
