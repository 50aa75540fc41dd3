//! Treating discrepancies (差错处理): each error code's treatment applied
//! through the payment engine and the ledger, once, and logged with who did
//! it and why. Used by `paycore recon run` for the automatic treatments and
//! by the operator API for manual ones.

use crate::AppState;
use engine::{EngineError, OrderStoreError};
use recon::{
    Class, Discrepancy, DiscrepancyAction, DiscrepancyStatus, ReconStore, ReconStoreError,
    RecordStatus, Treatment,
};
use tracing::{info, warn};

/// Why a treatment could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum TreatmentError {
    #[error(transparent)]
    Recon(#[from] ReconStoreError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("discrepancy {id} is {status}: only OPEN and EXCEPTION ones are treated")]
    Settled { id: i64, status: &'static str },
    #[error("discrepancy {id}: {reason}")]
    NotApplicable { id: i64, reason: String },
}

impl TreatmentError {
    pub fn code(&self) -> &'static str {
        match self {
            TreatmentError::Recon(error) => error.code(),
            TreatmentError::Engine(error) => error.code(),
            TreatmentError::Settled { .. } => "DISCREPANCY_SETTLED",
            TreatmentError::NotApplicable { .. } => "TREATMENT_NOT_APPLICABLE",
        }
    }
}

impl From<OrderStoreError> for TreatmentError {
    fn from(error: OrderStoreError) -> Self {
        TreatmentError::Engine(EngineError::from(error))
    }
}

/// What a treatment did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TreatmentOutcome {
    /// Applied; the discrepancy moved to `status`.
    Applied {
        status: DiscrepancyStatus,
        note: String,
    },
    /// Nothing to do yet (WAIT, or an order the channel still has to
    /// answer): it stays as it was.
    Unchanged { note: String },
}

/// Who acts, and why: `rule:R101`, or an operator's name and reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor<'a> {
    pub name: &'a str,
    pub reason: &'a str,
}

/// Applies `treatment` to a discrepancy and logs it.
pub async fn treat(
    state: &AppState,
    discrepancy: &Discrepancy,
    treatment: Treatment,
    actor: &Actor<'_>,
    now: i64,
) -> Result<TreatmentOutcome, TreatmentError> {
    if !discrepancy.status.is_unsettled() {
        return Err(TreatmentError::Settled {
            id: discrepancy.id,
            status: discrepancy.status.as_str(),
        });
    }
    let applied = match treatment {
        Treatment::Wait => {
            return Ok(TreatmentOutcome::Unchanged {
                note: "carried to the next run".to_owned(),
            });
        }
        Treatment::Escalate => "handed to an operator".to_owned(),
        Treatment::CompleteOrder | Treatment::Refund => {
            match complete_order(state, discrepancy, now).await? {
                Some(note) => note,
                None => {
                    return Ok(TreatmentOutcome::Unchanged {
                        note: "the channel order is not final yet".to_owned(),
                    });
                }
            }
        }
        Treatment::Suspense => suspense(state, discrepancy).await?,
        Treatment::Adjust => adjust(state, discrepancy).await?,
    };
    let applied = if discrepancy.confirmed_by(treatment) {
        confirm(state, discrepancy, applied).await?
    } else {
        applied
    };
    let to_status = if treatment == Treatment::Escalate {
        DiscrepancyStatus::Exception
    } else {
        DiscrepancyStatus::Treated
    };
    record(
        state,
        discrepancy,
        treatment.as_str(),
        to_status,
        actor,
        &applied,
        now,
    )
    .await?;
    Ok(TreatmentOutcome::Applied {
        status: to_status,
        note: applied,
    })
}

/// Closes a discrepancy without moving money (以平台为准: our record
/// stands), or resolves it when both sides agree again.
pub async fn close(
    state: &AppState,
    discrepancy: &Discrepancy,
    actor: &Actor<'_>,
    now: i64,
) -> Result<TreatmentOutcome, TreatmentError> {
    if !discrepancy.status.is_unsettled() {
        return Err(TreatmentError::Settled {
            id: discrepancy.id,
            status: discrepancy.status.as_str(),
        });
    }
    let note = "closed without a posting".to_owned();
    record(
        state,
        discrepancy,
        "close",
        DiscrepancyStatus::Resolved,
        actor,
        &note,
        now,
    )
    .await?;
    Ok(TreatmentOutcome::Applied {
        status: DiscrepancyStatus::Resolved,
        note,
    })
}

async fn record(
    state: &AppState,
    discrepancy: &Discrepancy,
    action: &str,
    to_status: DiscrepancyStatus,
    actor: &Actor<'_>,
    note: &str,
    now: i64,
) -> Result<(), TreatmentError> {
    let logged = DiscrepancyAction {
        discrepancy_id: discrepancy.id,
        action_key: format!("{}-{}-{}", discrepancy.id, action, discrepancy.updated_at),
        action: action.to_owned(),
        from_status: discrepancy.status,
        to_status,
        actor: actor.name.to_owned(),
        reason: format!("{} ({note})", actor.reason),
        at: now,
    };
    if state.store().change_discrepancy(&logged).await? {
        info!(
            discrepancy_id = discrepancy.id,
            action,
            actor = actor.name,
            "discrepancy treated"
        );
    } else {
        warn!(
            discrepancy_id = discrepancy.id,
            action, "discrepancy changed concurrently; left as it is"
        );
    }
    Ok(())
}

/// After a treatment that leaves both sides agreeing, the order's clearing
/// entry is confirmed (对账确认), as a match would have confirmed it.
async fn confirm(
    state: &AppState,
    discrepancy: &Discrepancy,
    note: String,
) -> Result<String, TreatmentError> {
    let channel_order_id = channel_order_id(discrepancy)?;
    let changed = state
        .store()
        .confirm_channel_orders(&[channel_order_id])
        .await?;
    Ok(if changed > 0 {
        format!("{note}; its clearing entry is reconciled")
    } else {
        note
    })
}

fn channel_order_id(discrepancy: &Discrepancy) -> Result<i64, TreatmentError> {
    discrepancy
        .key
        .parse()
        .map_err(|_| TreatmentError::NotApplicable {
            id: discrepancy.id,
            reason: format!("key {:?} is not one of our channel orders", discrepancy.key),
        })
}

/// 补单: the engine asks the channel again (query first, then act) and
/// finishes the payment or refund from its answer. A success for a trade
/// another payment already paid makes the engine raise a platform refund
/// that waits for review. Returns `None` while the order is not final.
async fn complete_order(
    state: &AppState,
    discrepancy: &Discrepancy,
    now: i64,
) -> Result<Option<String>, TreatmentError> {
    let channel_order_id = channel_order_id(discrepancy)?;
    let owner = state
        .store()
        .channel_order_owner(channel_order_id)
        .await?
        .ok_or_else(|| TreatmentError::NotApplicable {
            id: discrepancy.id,
            reason: format!("no channel order {channel_order_id}"),
        })?;
    let payments = state.payments();
    let outcome = match owner.refund_id {
        Some(refund_id) => {
            let view = payments
                .resume_refund(&owner.merchant_id, refund_id, now)
                .await?;
            format!("refund {refund_id} is {}", view.refund.status)
        }
        None => {
            let view = payments
                .resume(&owner.merchant_id, owner.payment_id, now)
                .await?;
            format!("payment {} is {}", owner.payment_id, view.payment.status)
        }
    };
    let current = state
        .store()
        .channel_orders_by_id(&[channel_order_id])
        .await?;
    let final_status = current.first().map(|order| order.status.as_str());
    match final_status {
        Some("SUCCESS") => {
            let duplicate = owner.is_duplicate_payment();
            Ok(Some(if duplicate {
                format!(
                    "{outcome}; the trade was paid by payment {:?}: a refund waits for review",
                    owner.trade_paid_by
                )
            } else {
                outcome
            }))
        }
        Some("FAILED") => Err(TreatmentError::NotApplicable {
            id: discrepancy.id,
            reason: format!(
                "{outcome}: our order failed while the channel reports success; an operator must refund the payer"
            ),
        }),
        _ => Ok(None),
    }
}

fn currency(discrepancy: &Discrepancy) -> Result<money::Currency, TreatmentError> {
    let code = discrepancy
        .channel_side
        .as_ref()
        .or(discrepancy.platform.as_ref())
        .map(|side| side.currency.as_str())
        .unwrap_or_default();
    money::Currency::from_code(code).map_err(|_| TreatmentError::NotApplicable {
        id: discrepancy.id,
        reason: format!("unknown currency {code:?}"),
    })
}

/// 挂账: money the channel holds and we cannot link goes to suspense.
async fn suspense(state: &AppState, discrepancy: &Discrepancy) -> Result<String, TreatmentError> {
    let channel = discrepancy
        .channel_side
        .as_ref()
        .filter(|side| side.status == RecordStatus::Success)
        .ok_or_else(|| TreatmentError::NotApplicable {
            id: discrepancy.id,
            reason: "suspense needs a successful channel record".to_owned(),
        })?;
    let transfer = state
        .payments()
        .post_to_suspense(
            format!("recon-suspense-{}-{}", discrepancy.channel, discrepancy.key),
            &discrepancy.channel,
            channel.amount_minor,
            currency(discrepancy)?,
            format!(
                "挂账 {} {} ({})",
                discrepancy.channel,
                discrepancy.key,
                discrepancy.class.as_str()
            ),
        )
        .await?;
    Ok(format!(
        "{} parked in suspense by transfer {}",
        channel.amount_minor, transfer.id
    ))
}

/// 调账: the difference between the channel's figures and ours is booked
/// between the channel's clearing account and suspense.
async fn adjust(state: &AppState, discrepancy: &Discrepancy) -> Result<String, TreatmentError> {
    let (ours, theirs) = match (&discrepancy.platform, &discrepancy.channel_side) {
        (Some(ours), Some(theirs)) => (ours, theirs),
        _ => {
            return Err(TreatmentError::NotApplicable {
                id: discrepancy.id,
                reason: "an adjustment needs both sides".to_owned(),
            });
        }
    };
    let difference = match discrepancy.class {
        Class::AmountChannelHigher | Class::AmountPlatformHigher => {
            theirs.amount_minor.checked_sub(ours.amount_minor)
        }
        // A higher channel fee leaves less money at the channel.
        Class::FeeMismatch => ours
            .fee_minor
            .unwrap_or(0)
            .checked_sub(theirs.fee_minor.unwrap_or(0)),
        other => {
            return Err(TreatmentError::NotApplicable {
                id: discrepancy.id,
                reason: format!("no adjustment for {}", other.as_str()),
            });
        }
    };
    let difference = difference.ok_or_else(|| TreatmentError::NotApplicable {
        id: discrepancy.id,
        reason: "difference overflows".to_owned(),
    })?;
    let transfer = state
        .payments()
        .post_to_suspense(
            format!("recon-adjust-{}-{}", discrepancy.channel, discrepancy.key),
            &discrepancy.channel,
            difference,
            currency(discrepancy)?,
            format!(
                "调账 {} {} ({})",
                discrepancy.channel,
                discrepancy.key,
                discrepancy.class.as_str()
            ),
        )
        .await?;
    Ok(format!(
        "difference {difference} booked by transfer {}",
        transfer.id
    ))
}
