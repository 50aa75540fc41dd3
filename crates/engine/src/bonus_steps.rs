//! The stored-value steps of a payment's flow (see [`crate::stored_value`]):
//! campaigns' bonus grants, the draw of a stored-value payment on cash and
//! bonus, the marketing cost of spent bonus, and the bonus a top-up's
//! refund voids. Every ledger key derives from an order id.

use crate::fee::PaymentFeeStore;
use crate::notification::NotificationStore;
use crate::order::{FundingSource, PaymentInstruction, PaymentOrder, RefundOrder};
use crate::refund::RefundPart;
use crate::service::{EngineError, PayRequest, Payee, PaymentService, Product, two_legs};
use crate::store::{OrderStore, PaymentWithInstructions};
use crate::stored_value::{StoredValueError, bonus_to_void, check_campaign, split_stored_value};
use channels::Channel;
use fees::FeeCounterStore;
use ledger::{
    AccountId, AccountKind, BatchItem, LedgerError, LedgerWriter, Operation, OwnerKind, Transfer,
    TransferMode,
};
use money::Currency;

/// The platform owner of the deferred bonus account (赠送金待摊).
pub const BONUS_OWNER: &str = "marketing";

impl<
    O: OrderStore + NotificationStore + FeeCounterStore + PaymentFeeStore + crate::AgreementStore,
    L: LedgerWriter,
    C: Channel,
> PaymentService<O, L, C>
{
    /// The bonus a top-up's campaign grants; 0 without a campaign.
    pub(crate) fn campaign_bonus(
        &self,
        product: &Product,
        request: &PayRequest,
    ) -> Result<i64, EngineError> {
        let Some(code) = &request.campaign else {
            return Ok(0);
        };
        if product.payee != Payee::PayerCash {
            return Err(StoredValueError::CampaignNotTopUp(product.code.clone()).into());
        }
        let campaign = self
            .campaigns
            .iter()
            .find(|campaign| &campaign.code == code)
            .ok_or_else(|| StoredValueError::UnknownCampaign(code.clone()))?;
        check_campaign(campaign, request.amount_minor, request.currency)?;
        Ok(campaign.bonus_minor)
    }

    /// The request's sources with a stored-value part split into its cash
    /// and bonus parts by the merchant's draw rule, on the member's
    /// balances now.
    pub(crate) async fn split_sources(
        &self,
        request: &PayRequest,
    ) -> Result<Vec<(FundingSource, i64)>, EngineError> {
        let is_stored = |source: &FundingSource| *source == FundingSource::StoredValue;
        let stored: Vec<i64> = request
            .sources
            .iter()
            .filter(|(source, _)| is_stored(source))
            .map(|(_, amount)| *amount)
            .collect();
        let [amount_minor] = stored.as_slice() else {
            if stored.is_empty() {
                return Ok(request.sources.clone());
            }
            return Err(too_many_stored_value(request));
        };
        let explicit = request
            .sources
            .iter()
            .any(|(source, _)| matches!(source, FundingSource::Balance | FundingSource::Bonus));
        if explicit {
            return Err(too_many_stored_value(request));
        }
        let (cash, bonus) = self
            .member_balances(&request.payer_id, request.currency)
            .await?;
        let rule = self.stored_value.rule_for(&request.merchant_id);
        let (cash_part, bonus_part) = split_stored_value(*amount_minor, cash, bonus, rule)?;
        let mut sources = Vec::with_capacity(request.sources.len() + 1);
        for (source, amount) in &request.sources {
            if !is_stored(source) {
                sources.push((*source, *amount));
                continue;
            }
            for (part, part_minor) in [
                (FundingSource::Balance, cash_part),
                (FundingSource::Bonus, bonus_part),
            ] {
                if part_minor > 0 {
                    sources.push((part, part_minor));
                }
            }
        }
        Ok(sources)
    }

    /// What the member's cash and bonus sub-accounts hold available now.
    async fn member_balances(
        &self,
        member_id: &str,
        currency: Currency,
    ) -> Result<(i64, i64), EngineError> {
        let mut available = [0_i64; 2];
        for (slot, kind) in [AccountKind::MemberCash, AccountKind::MemberBonus]
            .into_iter()
            .enumerate()
        {
            let account = self
                .account(OwnerKind::Member, member_id, kind, currency)
                .await?;
            available[slot] = self
                .ledger()
                .balance(account)
                .await?
                .map_or(0, |balance| balance.available_minor);
        }
        Ok((available[0], available[1]))
    }

    async fn bonus_deferred_account(&self, currency: Currency) -> Result<AccountId, EngineError> {
        self.account(
            OwnerKind::Platform,
            BONUS_OWNER,
            AccountKind::BonusDeferred,
            currency,
        )
        .await
    }

    async fn marketing_account(&self, currency: Currency) -> Result<AccountId, EngineError> {
        self.account(
            OwnerKind::Platform,
            BONUS_OWNER,
            AccountKind::PlatformMarketing,
            currency,
        )
        .await
    }

    async fn member_bonus_account(
        &self,
        member_id: &str,
        currency: Currency,
    ) -> Result<AccountId, EngineError> {
        self.account(
            OwnerKind::Member,
            member_id,
            AccountKind::MemberBonus,
            currency,
        )
        .await
    }

    /// With a payment's success: grants its campaign's bonus (a top-up that
    /// paid its trade; a duplicate top-up is refunded and grants nothing)
    /// and books the bonus it spent as marketing expense. Idempotent.
    pub(crate) async fn book_bonus(
        &self,
        product: &Product,
        paid: &PaymentWithInstructions,
        paid_the_trade: bool,
    ) -> Result<(), EngineError> {
        let payment = &paid.payment;
        let currency = payment.currency;
        let mut operations = Vec::new();
        if product.payee == Payee::PayerCash && payment.bonus_minor > 0 && paid_the_trade {
            let deferred = self.bonus_deferred_account(currency).await?;
            let bonus = self
                .member_bonus_account(&payment.payer_id, currency)
                .await?;
            operations.push(Operation::Transfer {
                key: format!("bonus-grant-{}", payment.id),
                legs: two_legs(deferred, bonus, payment.bonus_minor, currency),
                mode: TransferMode::Posted,
                description: format!(
                    "bonus of campaign {} for top-up {}",
                    payment.campaign.as_deref().unwrap_or("-"),
                    payment.id
                ),
            });
        }
        for instruction in &paid.instructions {
            if instruction.source == FundingSource::Bonus {
                operations.push(self.bonus_cost(payment, instruction).await?);
            }
        }
        for operation in operations {
            self.post(operation).await?.map_err(EngineError::Ledger)?;
        }
        Ok(())
    }

    /// `bonus-cost-{instruction}`: spent bonus becomes marketing expense.
    async fn bonus_cost(
        &self,
        payment: &PaymentOrder,
        instruction: &PaymentInstruction,
    ) -> Result<Operation, EngineError> {
        let marketing = self.marketing_account(payment.currency).await?;
        let deferred = self.bonus_deferred_account(payment.currency).await?;
        Ok(Operation::Transfer {
            key: format!("bonus-cost-{}", instruction.id),
            legs: two_legs(
                marketing,
                deferred,
                instruction.amount_minor,
                payment.currency,
            ),
            mode: TransferMode::Posted,
            description: format!("bonus spent by payment {}", payment.id),
        })
    }

    /// `bonus-return-{part}`: bonus given back by a refund is no longer
    /// spent; linked with the part's own transfer.
    pub(crate) async fn bonus_cost_back(
        &self,
        payment: &PaymentOrder,
        part: &RefundPart,
    ) -> Result<BatchItem, EngineError> {
        let marketing = self.marketing_account(payment.currency).await?;
        let deferred = self.bonus_deferred_account(payment.currency).await?;
        Ok(BatchItem {
            operation: Operation::Transfer {
                key: format!("bonus-return-{}", part.id),
                legs: two_legs(deferred, marketing, part.amount_minor, payment.currency),
                mode: TransferMode::Posted,
                description: format!("bonus given back by refund {}", part.refund_id),
            },
            linked: true,
        })
    }

    /// The bonus a refund of `amount_minor` of `payment` voids: only a
    /// top-up that granted a bonus voids any, in proportion to what is left
    /// of the member's cash and bonus.
    pub(crate) async fn bonus_void_for_refund(
        &self,
        payment: &PaymentOrder,
        amount_minor: i64,
    ) -> Result<i64, EngineError> {
        if payment.bonus_minor == 0 {
            return Ok(0);
        }
        let (cash, bonus) = self
            .member_balances(&payment.payer_id, payment.currency)
            .await?;
        Ok(bonus_to_void(amount_minor, cash, bonus))
    }

    /// The pending transfer that takes a refund's voided bonus back from
    /// the member before any money of the refund moves
    /// (`bonus-void-hold-{refund}`); replayed after the first call.
    pub(crate) async fn hold_bonus_void(
        &self,
        payment: &PaymentOrder,
        refund: &RefundOrder,
    ) -> Result<Result<Transfer, LedgerError>, EngineError> {
        let bonus = self
            .member_bonus_account(&payment.payer_id, refund.currency)
            .await?;
        let deferred = self.bonus_deferred_account(refund.currency).await?;
        self.post(Operation::Transfer {
            key: format!("bonus-void-hold-{}", refund.id),
            legs: two_legs(bonus, deferred, refund.bonus_void_minor, refund.currency),
            mode: TransferMode::Pending {
                timeout_seconds: None,
            },
            description: format!("bonus voided by refund {}", refund.id),
        })
        .await
    }

    /// Ends a refund's bonus void with the refund: posted when it
    /// succeeded, voided when it failed.
    pub(crate) async fn settle_bonus_void(
        &self,
        payment: &PaymentOrder,
        refund: &RefundOrder,
        succeeded: bool,
    ) -> Result<(), EngineError> {
        if refund.bonus_void_minor == 0 {
            return Ok(());
        }
        let Ok(hold) = self.hold_bonus_void(payment, refund).await? else {
            // Never held: the refund failed before it could be.
            return Ok(());
        };
        let operation = if succeeded {
            Operation::PostPending {
                key: format!("bonus-void-post-{}", refund.id),
                pending_id: hold.id,
                amount_minor: None,
            }
        } else {
            Operation::VoidPending {
                key: format!("bonus-void-release-{}", refund.id),
                pending_id: hold.id,
            }
        };
        self.post(operation).await?.map_err(EngineError::Ledger)?;
        Ok(())
    }
}

fn too_many_stored_value(request: &PayRequest) -> EngineError {
    EngineError::SourceNotAllowed {
        product: request.product.clone(),
        funding_source: "stored_value more than once, or with balance or bonus",
    }
}
