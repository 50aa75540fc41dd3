//! The fee steps of a payment's flow (see [`crate::fee`] for who pays
//! which fee from where): fees taken from a balance are priced and
//! reserved when the payment is accepted, and posted or voided with it;
//! a collection's other fees are priced when it succeeds.

use crate::fee::{
    FailureReason, FeeFunding, NewFeeDeposit, NewPaymentFee, PaymentFee, fee_charge_key,
};
use crate::notification::NotificationStore;
use crate::order::PaymentOrder;
use crate::service::{
    EngineError, FEE_INCOME_OWNER, Payee, PaymentService, PayoutFrom, Product, business_date,
};
use crate::status::PaymentFeeStatus;
use crate::store::{OrderStore, PaymentWithInstructions};
use crate::{FeeDeposit, PaymentFeeStore};
use channels::Channel;
use fees::{
    BusinessDate, ChargeError, CollectionMode, FeeCounterStore, FeeError, FeeRequest, FeeSchedule,
    FeeSide, PeriodUsage,
};
use ledger::{
    AccountKind, LedgerError, LedgerWriter, Operation, OwnerKind, TimestampMicros, Transfer,
    TransferMode,
};
use money::{Currency, Money};
use tracing::warn;

/// Which of the merchant's fees is priced when a payment is accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PayeeAtAcceptance {
    /// None: the product pays no merchant fee.
    Never,
    /// A collection's, when its rule is prepaid; other modes are priced
    /// when it succeeds.
    WhenPrepaid,
    /// A payout's, whatever its mode: it is paid out of a balance.
    Always,
}

/// Whether a payment's fees are reserved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reservation {
    Held,
    /// A fee could not be reserved: the payment fails, for this reason
    /// when it is known (a run that voided the fee before a crash knew it).
    Failed(Option<FailureReason>),
}

/// What pricing one side at acceptance gave.
enum Priced {
    Nothing,
    Fee(NewPaymentFee),
    Refused(FailureReason),
}

/// The fee sides a product prices at acceptance: the merchant's, and
/// whether the member's.
fn sides_at_acceptance(payee: Payee) -> (PayeeAtAcceptance, bool) {
    match payee {
        Payee::Merchant => (PayeeAtAcceptance::WhenPrepaid, true),
        // 担保交易: the merchant's fee is priced when the money is
        // released, on what is released.
        Payee::Escrow { .. } => (PayeeAtAcceptance::Never, true),
        Payee::PayerCash
        | Payee::Bank {
            from: PayoutFrom::MemberCash,
        } => (PayeeAtAcceptance::Never, true),
        // A merchant paying out is its own payer: one fee, the merchant's.
        Payee::Bank {
            from: PayoutFrom::MerchantAvailable,
        } => (PayeeAtAcceptance::Always, false),
    }
}

impl<
    O: OrderStore + NotificationStore + FeeCounterStore + PaymentFeeStore + crate::AgreementStore,
    L: LedgerWriter,
    C: Channel,
> PaymentService<O, L, C>
{
    /// Prices and reserves the fees a payment pays from a balance when it is
    /// accepted; idempotent.
    pub(crate) async fn reserve_fees(
        &self,
        product: &Product,
        payment: &PaymentWithInstructions,
        now: TimestampMicros,
    ) -> Result<Reservation, EngineError> {
        let Some(table) = &self.fees else {
            return Ok(Reservation::Held);
        };
        // One table for the whole reservation, whatever is swapped meanwhile.
        let schedule = table.current();
        let (payee, payer) = sides_at_acceptance(product.payee);
        let mut sides = Vec::with_capacity(2);
        if payee != PayeeAtAcceptance::Never {
            sides.push(FeeSide::Payee);
        }
        if payer {
            sides.push(FeeSide::Payer);
        }
        let stored = self.orders.payment_fees(payment.payment.id).await?;
        for side in sides {
            let fee = match stored.iter().find(|fee| fee.fee.side == side) {
                Some(fee) => fee.clone(),
                None => {
                    let priced = self
                        .price_at_acceptance(&schedule, product, payment, side, now)
                        .await?;
                    match priced {
                        Priced::Nothing => continue,
                        Priced::Refused(reason) => return Ok(Reservation::Failed(Some(reason))),
                        Priced::Fee(new) => self
                            .orders
                            .reserve_payment_fee(&new, now)
                            .await?
                            .into_inner(),
                    }
                }
            };
            let held = self.hold_reserved_fee(&payment.payment, &fee, now).await?;
            if held != Reservation::Held {
                return Ok(held);
            }
        }
        Ok(Reservation::Held)
    }

    /// Makes sure a reserved fee is held; when it cannot be, the fee is
    /// voided and gives its place in its period back.
    async fn hold_reserved_fee(
        &self,
        payment: &PaymentOrder,
        fee: &PaymentFee,
        now: TimestampMicros,
    ) -> Result<Reservation, EngineError> {
        match fee.status {
            PaymentFeeStatus::Charged => return Ok(Reservation::Held),
            // Voided before this run, which stopped before failing the
            // payment: it fails now, its reason lost with that run.
            PaymentFeeStatus::Voided => return Ok(Reservation::Failed(None)),
            PaymentFeeStatus::Reserved => {}
        }
        if !fee.fee.funding.reserved_at_acceptance() || fee.fee.fee_minor == 0 {
            return Ok(Reservation::Held);
        }
        let Err(refused) = self.hold_fee(payment, fee).await? else {
            return Ok(Reservation::Held);
        };
        warn!(
            payment_id = payment.id,
            side = fee.fee.side.as_str(),
            code = refused.code(),
            "a fee could not be reserved; the payment fails"
        );
        let reason = if fee.fee.funding == FeeFunding::FeeAccount {
            FailureReason::FeeAccountInsufficient
        } else {
            FailureReason::FeeBalanceInsufficient
        };
        self.orders
            .release_fee_charge(&fee_charge_key(payment.id, fee.fee.side), now)
            .await?;
        self.orders
            .transition(
                fee.id,
                PaymentFeeStatus::Reserved,
                PaymentFeeStatus::Voided,
                now,
            )
            .await?;
        Ok(Reservation::Failed(Some(reason)))
    }

    /// Prices one side of a payment being accepted, recording it in its
    /// period counter.
    async fn price_at_acceptance(
        &self,
        schedule: &FeeSchedule,
        product: &Product,
        paid: &PaymentWithInstructions,
        side: FeeSide,
        now: TimestampMicros,
    ) -> Result<Priced, EngineError> {
        let payment = &paid.payment;
        let channel = self.acceptance_channel(paid).await?;
        let date = business_date(now)?;
        let request = fee_request(payment, side, channel.as_deref(), date);
        let prepaid_only = sides_at_acceptance(product.payee).0 == PayeeAtAcceptance::WhenPrepaid;
        match schedule.select(&request) {
            Ok(rule) if side == FeeSide::Payee && prepaid_only => {
                if rule.collection != CollectionMode::Prepaid {
                    return Ok(Priced::Nothing);
                }
            }
            Ok(_) => {}
            Err(FeeError::RuleNotFound { .. }) => return Ok(Priced::Nothing),
            Err(error) => return Ok(not_priced(payment, &error)),
        }
        let key = fee_charge_key(payment.id, side);
        let quote = match schedule.charge(&self.orders, &key, &request, now).await {
            Ok(quote) => quote,
            Err(ChargeError::Counter(error)) => return Err(error.into()),
            Err(ChargeError::Fee(error)) => return Ok(not_priced(payment, &error)),
        };
        // The table may have changed between the two looks: a collection
        // whose rule is no longer prepaid is priced when it succeeds.
        if side == FeeSide::Payee && prepaid_only && quote.collection != CollectionMode::Prepaid {
            return Ok(Priced::Nothing);
        }
        let payout = matches!(product.payee, Payee::Bank { .. });
        Ok(Priced::Fee(NewPaymentFee {
            payment_id: payment.id,
            side,
            merchant_id: payment.merchant_id.clone(),
            party_id: match side {
                FeeSide::Payee => payment.merchant_id.clone(),
                FeeSide::Payer => payment.payer_id.clone(),
            },
            rule_id: quote.rule_id.to_string(),
            collection: quote.collection,
            funding: FeeFunding::of(side, quote.collection, payout),
            currency: payment.currency,
            amount_minor: payment.amount_minor,
            fee_minor: quote.fee.amount_minor(),
            business_date: date.to_string(),
        }))
    }

    /// The channel a payment's channel source would be routed to now, for
    /// fee rules that name a channel (by cost and availability; a channel
    /// whose daily limit turns out full when the order is routed is passed
    /// over then, and the fee stays priced as here).
    async fn acceptance_channel(
        &self,
        paid: &PaymentWithInstructions,
    ) -> Result<Option<String>, EngineError> {
        let Some(instruction) = paid
            .instructions
            .iter()
            .find(|instruction| instruction.source.through_channel())
        else {
            return Ok(None);
        };
        self.preview_route(&paid.payment, instruction).await
    }

    /// The pending transfer that holds a fee from the account paying it to
    /// platform fee income; replayed from the ledger after the first call.
    async fn hold_fee(
        &self,
        payment: &PaymentOrder,
        fee: &PaymentFee,
    ) -> Result<Result<Transfer, LedgerError>, EngineError> {
        let (owner_kind, owner_id, kind) = match fee.fee.funding {
            FeeFunding::FeeAccount => (
                OwnerKind::Merchant,
                &fee.fee.merchant_id,
                AccountKind::MerchantFee,
            ),
            FeeFunding::MerchantAvailable => (
                OwnerKind::Merchant,
                &fee.fee.merchant_id,
                AccountKind::MerchantAvailable,
            ),
            FeeFunding::MemberCash => (
                OwnerKind::Member,
                &fee.fee.party_id,
                AccountKind::MemberCash,
            ),
            FeeFunding::Settlement | FeeFunding::Bill => {
                return Err(EngineError::Invariant("a fee collected later has no hold"));
            }
        };
        let currency = fee.fee.currency;
        let debit = self.account(owner_kind, owner_id, kind, currency).await?;
        let income = self.fee_income_account(currency).await?;
        self.post(Operation::Transfer {
            key: format!("fee-hold-{}", fee.id),
            legs: crate::two_legs(debit, income, fee.fee.fee_minor, currency),
            mode: TransferMode::Pending {
                timeout_seconds: None,
            },
            description: format!(
                "{} fee of payment {} ({})",
                fee.fee.side.as_str(),
                payment.id,
                fee.fee.rule_id
            ),
        })
        .await
    }

    /// Platform fee income in `currency`.
    pub async fn fee_income_account(
        &self,
        currency: Currency,
    ) -> Result<ledger::AccountId, EngineError> {
        self.account(
            OwnerKind::Platform,
            FEE_INCOME_OWNER,
            AccountKind::PlatformIncome,
            currency,
        )
        .await
    }

    /// Ends a payment's reserved fees with it: posts their holds when it
    /// succeeds (`charge`), voids them and gives their places in their
    /// periods back when it fails or was a duplicate. Idempotent.
    pub(crate) async fn settle_fees(
        &self,
        payment: &PaymentOrder,
        charge: bool,
        now: TimestampMicros,
    ) -> Result<(), EngineError> {
        if self.fees.is_none() {
            return Ok(());
        }
        for fee in self.orders.payment_fees(payment.id).await? {
            if fee.status != PaymentFeeStatus::Reserved {
                continue;
            }
            if fee.fee.funding.reserved_at_acceptance() && fee.fee.fee_minor > 0 {
                match self.hold_fee(payment, &fee).await? {
                    Ok(hold) => {
                        let operation = if charge {
                            Operation::PostPending {
                                key: format!("fee-post-{}", fee.id),
                                pending_id: hold.id,
                                amount_minor: None,
                            }
                        } else {
                            Operation::VoidPending {
                                key: format!("fee-void-{}", fee.id),
                                pending_id: hold.id,
                            }
                        };
                        self.post(operation).await?.map_err(EngineError::Ledger)?;
                    }
                    // The hold was made when the payment was accepted, or
                    // the payment failed there: nothing to void.
                    Err(refused) if charge => return Err(EngineError::Ledger(refused)),
                    Err(_) => {}
                }
            }
            let next = if charge {
                PaymentFeeStatus::Charged
            } else {
                self.orders
                    .release_fee_charge(&fee_charge_key(payment.id, fee.fee.side), now)
                    .await?;
                PaymentFeeStatus::Voided
            };
            self.orders
                .transition(fee.id, PaymentFeeStatus::Reserved, next, now)
                .await?;
        }
        Ok(())
    }

    /// The merchant's fee of a collection that succeeds now: the one
    /// reserved when it was accepted (prepaid), or priced now. The second
    /// value is the fee to record with the success, when priced now.
    pub(crate) async fn collection_fee(
        &self,
        payment: &PaymentOrder,
        amount_minor: i64,
        channel: Option<&str>,
        date: BusinessDate,
        now: TimestampMicros,
    ) -> Result<(Option<NewPaymentFee>, Option<NewPaymentFee>), EngineError> {
        let stored = self.orders.payment_fees(payment.id).await?;
        if let Some(fee) = stored
            .into_iter()
            .find(|fee| fee.fee.side == FeeSide::Payee)
        {
            let charged = fee.status == PaymentFeeStatus::Charged;
            return Ok((charged.then_some(fee.fee), None));
        }
        let Some(table) = &self.fees else {
            return Ok((None, None));
        };
        let schedule = table.current();
        let mut request = fee_request(payment, FeeSide::Payee, channel, date);
        request.amount = Money::new(amount_minor, payment.currency);
        let key = fee_charge_key(payment.id, FeeSide::Payee);
        let quote = match schedule.charge(&self.orders, &key, &request, now).await {
            Ok(quote) => quote,
            Err(ChargeError::Counter(error)) => return Err(error.into()),
            // A success is a fact; a fee that cannot be priced is cleared
            // as zero, loudly, rather than losing the payment.
            Err(ChargeError::Fee(error)) => {
                warn!(payment_id = payment.id, code = error.code(), %error, "payment cleared without a fee");
                return Ok((None, None));
            }
        };
        // Nothing was reserved for it when the payment was accepted (the
        // rule is newer than the payment, or an escrow trade's fee is
        // priced at release): it is deducted at settlement.
        let collection = match quote.collection {
            CollectionMode::Prepaid => {
                warn!(
                    payment_id = payment.id,
                    rule_id = %quote.rule_id,
                    "a prepaid rule with nothing reserved: its fee is deducted at settlement"
                );
                CollectionMode::RealTime
            }
            other => other,
        };
        let fee = NewPaymentFee {
            payment_id: payment.id,
            side: FeeSide::Payee,
            merchant_id: payment.merchant_id.clone(),
            party_id: payment.merchant_id.clone(),
            rule_id: quote.rule_id.to_string(),
            collection,
            funding: FeeFunding::of(FeeSide::Payee, collection, false),
            currency: payment.currency,
            amount_minor,
            fee_minor: quote.fee.amount_minor(),
            business_date: date.to_string(),
        };
        Ok((Some(fee.clone()), Some(fee)))
    }

    /// Pays money into a merchant's prepaid fee account (手续费账户), once
    /// per `reference`: from its available balance, or received from
    /// outside through a channel's clearing account (a bank transfer to
    /// the platform). The deposit is recorded first, then posted as
    /// `fee-deposit-{deposit}`; a refused one may be tried again.
    pub async fn deposit_to_fee_account(
        &self,
        merchant_id: &str,
        reference: &str,
        amount_minor: i64,
        currency: Currency,
        from: &FeeDeposit,
        now: TimestampMicros,
    ) -> Result<Transfer, EngineError> {
        crate::order::check_text("merchant_id", merchant_id, crate::REFERENCE_LENGTH_MAX)?;
        crate::order::check_text("reference", reference, crate::REFERENCE_LENGTH_MAX)?;
        if amount_minor <= 0 {
            return Err(crate::OrderError::InvalidAmount(amount_minor).into());
        }
        if let FeeDeposit::Channel(channel) = from {
            self.channel_by_code(channel)?;
        }
        let record = self
            .orders
            .record_fee_deposit(
                &NewFeeDeposit {
                    merchant_id: merchant_id.to_owned(),
                    reference: reference.to_owned(),
                    currency,
                    amount_minor,
                    source: from.clone(),
                },
                now,
            )
            .await?;
        let debit = match from {
            FeeDeposit::Available => {
                self.account(
                    OwnerKind::Merchant,
                    merchant_id,
                    AccountKind::MerchantAvailable,
                    currency,
                )
                .await?
            }
            FeeDeposit::Channel(channel) => {
                self.account(
                    OwnerKind::Channel,
                    channel,
                    AccountKind::ChannelClearing,
                    currency,
                )
                .await?
            }
        };
        let fee_account = self
            .account(
                OwnerKind::Merchant,
                merchant_id,
                AccountKind::MerchantFee,
                currency,
            )
            .await?;
        let transfer = self
            .post(Operation::Transfer {
                key: format!("fee-deposit-{}", record.id),
                legs: crate::two_legs(debit, fee_account, amount_minor, currency),
                mode: TransferMode::Posted,
                description: format!("fee account deposit {reference} of merchant {merchant_id}"),
            })
            .await?
            .map_err(EngineError::Ledger)?;
        if !record.posted {
            self.orders
                .mark_fee_deposit_posted(record.id, transfer.id, now)
                .await?;
        }
        Ok(transfer)
    }
}

/// The fee request of one side of a payment.
fn fee_request<'a>(
    payment: &'a PaymentOrder,
    side: FeeSide,
    channel: Option<&'a str>,
    date: BusinessDate,
) -> FeeRequest<'a> {
    FeeRequest {
        side,
        merchant_id: &payment.merchant_id,
        product: &payment.product,
        issuing_bank: payment.bank.as_deref(),
        channel,
        business_line: None,
        amount: Money::new(payment.amount_minor, payment.currency),
        business_date: date,
        usage: PeriodUsage::default(),
    }
}

fn not_priced(payment: &PaymentOrder, error: &FeeError) -> Priced {
    warn!(payment_id = payment.id, code = error.code(), %error, "the fee cannot be priced; the payment fails");
    Priced::Refused(FailureReason::FeeNotPriced)
}
