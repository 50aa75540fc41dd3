//! The built-in simulator channel. It behaves like a real institution —
//! synchronous success and failure, PROCESSING with a later result,
//! timeouts, banks that are down, transactions that settle on the next
//! business day across its cutoff — and it is stateless: every answer is a
//! function of the request and the time, so a restarted paycore gets the
//! same answers to its queries.

use crate::signing::{Names, SimulatedSigning, refusal, sms_code};
use crate::{
    AgreementConfirmation, AgreementRequest, Channel, ChannelDirection, ChannelError,
    ChannelNotification, ChannelOutcome, ChannelRequest, RevokeOutcome, SignOutcome,
    TimestampMicros,
};
use money::{Money, RoundingMode};
use std::collections::BTreeSet;
use std::sync::{Mutex, PoisonError};
use time::{OffsetDateTime, UtcOffset};

/// How the simulator treats one request, chosen by the last two digits of
/// its amount in minor units, so tests and demos can ask for any case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimulatedBehaviour {
    /// `..00` to `..90` and `..97` to `..99`: success at once.
    Success,
    /// `..91`: refused at once (insufficient balance at the bank).
    Fail,
    /// `..92`: PROCESSING, then success once the delay has passed.
    ProcessingThenSuccess,
    /// `..93`: PROCESSING, then failure once the delay has passed.
    ProcessingThenFail,
    /// `..94`: the submit times out, but the institution executed it: a
    /// query finds it succeeded.
    TimeoutButExecuted,
    /// `..95`: the submit times out and never arrived: a query finds no
    /// such order, then, past the delay, reports it failed.
    TimeoutNotExecuted,
    /// `..96`: success, booked on the next business day (after the cutoff).
    LateSettlement,
}

impl SimulatedBehaviour {
    pub fn of(amount_minor: i64) -> SimulatedBehaviour {
        match amount_minor.rem_euclid(100) {
            91 => SimulatedBehaviour::Fail,
            92 => SimulatedBehaviour::ProcessingThenSuccess,
            93 => SimulatedBehaviour::ProcessingThenFail,
            94 => SimulatedBehaviour::TimeoutButExecuted,
            95 => SimulatedBehaviour::TimeoutNotExecuted,
            96 => SimulatedBehaviour::LateSettlement,
            _ => SimulatedBehaviour::Success,
        }
    }
}

/// The simulated institution.
#[derive(Debug)]
pub struct Simulator {
    code: String,
    /// How long PROCESSING lasts before the final result.
    processing_delay_micros: i64,
    /// Fee the institution charges, in parts per `FEE_RATE_SCALE`.
    fee_rate: i64,
    /// The institution's time zone and its daily cutoff (日切), in hours.
    utc_offset_hours: i8,
    cutoff_hour: u8,
    banks_down: Mutex<BTreeSet<String>>,
}

const FEE_RATE_SCALE: i64 = 10_000;
const MICROS_PER_SECOND: i64 = 1_000_000;

impl Simulator {
    /// A simulator named `code`: results of PROCESSING orders arrive after
    /// two seconds, the fee is 0.60%, the day cuts over at 23:00 UTC+8.
    pub fn new(code: &str) -> Simulator {
        Simulator {
            code: code.to_owned(),
            processing_delay_micros: 2 * MICROS_PER_SECOND,
            fee_rate: 60,
            utc_offset_hours: 8,
            cutoff_hour: 23,
            banks_down: Mutex::new(BTreeSet::new()),
        }
    }

    pub fn with_processing_delay_micros(mut self, delay: i64) -> Simulator {
        self.processing_delay_micros = delay.max(0);
        self
    }

    /// Makes the institution refuse `bank` (an outage on its side), or
    /// accept it again.
    pub fn set_bank_down(&self, bank: &str, down: bool) {
        let mut banks = self
            .banks_down
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if down {
            banks.insert(bank.to_owned());
        } else {
            banks.remove(bank);
        }
    }

    fn bank_is_down(&self, bank: Option<&str>) -> Option<String> {
        let bank = bank?;
        let banks = self
            .banks_down
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        banks.contains(bank).then(|| bank.to_owned())
    }

    fn transaction_id(&self, request: &ChannelRequest) -> String {
        let prefix = match request.direction {
            ChannelDirection::Collect => "C",
            ChannelDirection::Payout => "P",
            ChannelDirection::Refund => "R",
        };
        format!("SIM{prefix}{:012}", request.channel_order_id)
    }

    /// The institution's business date of an instant: its local date, or
    /// the next one after the cutoff hour.
    pub fn business_date(&self, at: TimestampMicros) -> String {
        let offset = UtcOffset::from_hms(self.utc_offset_hours, 0, 0).unwrap_or(UtcOffset::UTC);
        let instant = OffsetDateTime::from_unix_timestamp(at.div_euclid(MICROS_PER_SECOND))
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
            .to_offset(offset);
        let mut date = instant.date();
        if instant.hour() >= self.cutoff_hour {
            date = date.next_day().unwrap_or(date);
        }
        format!(
            "{:04}{:02}{:02}",
            date.year(),
            u8::from(date.month()),
            date.day()
        )
    }

    fn success(&self, request: &ChannelRequest, booked_at: TimestampMicros) -> ChannelOutcome {
        let fee_minor = match request.direction {
            ChannelDirection::Collect => Money::new(request.amount_minor, request.currency)
                .multiply_ratio(self.fee_rate, FEE_RATE_SCALE, RoundingMode::HalfUp)
                .map_or(0, Money::amount_minor),
            ChannelDirection::Payout | ChannelDirection::Refund => 0,
        };
        ChannelOutcome::Success {
            channel_transaction_id: self.transaction_id(request),
            business_date: self.business_date(booked_at),
            fee_minor,
        }
    }

    fn failed(code: &str, message: &str) -> ChannelOutcome {
        ChannelOutcome::Failed {
            code: code.to_owned(),
            message: message.to_owned(),
        }
    }

    /// The answer to a query at `now`: the request's final result once the
    /// delay has passed, PROCESSING before.
    fn answer(
        &self,
        request: &ChannelRequest,
        now: TimestampMicros,
    ) -> Result<ChannelOutcome, ChannelError> {
        let settled = now.saturating_sub(request.submitted_at) >= self.processing_delay_micros;
        let processing = ChannelOutcome::Processing {
            channel_transaction_id: Some(self.transaction_id(request)),
        };
        // A debit under an agreement this institution did not issue is
        // refused before anything moves.
        if let Some(agreement_no) = &request.agreement_no
            && !Names::new(&self.code).owns_agreement(agreement_no)
        {
            return Ok(Self::failed(
                "AGREEMENT_UNKNOWN",
                "the institution knows no such agreement",
            ));
        }
        let outcome = match SimulatedBehaviour::of(request.amount_minor) {
            SimulatedBehaviour::Success | SimulatedBehaviour::TimeoutButExecuted => {
                self.success(request, request.submitted_at)
            }
            SimulatedBehaviour::LateSettlement => {
                // Booked a day later than it was asked for.
                self.success(
                    request,
                    request.submitted_at + 24 * 3600 * MICROS_PER_SECOND,
                )
            }
            SimulatedBehaviour::Fail => {
                Self::failed("INSUFFICIENT_BALANCE", "the payer's bank refused")
            }
            SimulatedBehaviour::ProcessingThenSuccess if settled => self.success(request, now),
            SimulatedBehaviour::ProcessingThenFail if settled => {
                Self::failed("BANK_REJECTED", "the bank rejected the transaction")
            }
            SimulatedBehaviour::ProcessingThenSuccess | SimulatedBehaviour::ProcessingThenFail => {
                processing
            }
            SimulatedBehaviour::TimeoutNotExecuted if settled => Self::failed(
                "ORDER_NOT_FOUND",
                "the institution never received the order",
            ),
            SimulatedBehaviour::TimeoutNotExecuted => {
                return Err(ChannelError::UnknownOrder {
                    channel: self.code.clone(),
                    channel_order_id: request.channel_order_id,
                });
            }
        };
        Ok(outcome)
    }

    /// The notification the institution would send for `request` at `now`,
    /// once it has a final result.
    pub fn notification(&self, request: &ChannelRequest, now: TimestampMicros) -> Option<String> {
        match self.answer(request, now).ok()? {
            ChannelOutcome::Success {
                channel_transaction_id,
                business_date,
                fee_minor,
            } => Some(format!(
                "channel_order_id={}&status=SUCCESS&transaction_id={channel_transaction_id}\
                 &business_date={business_date}&fee_minor={fee_minor}",
                request.channel_order_id
            )),
            ChannelOutcome::Failed { code, .. } => Some(format!(
                "channel_order_id={}&status=FAILED&code={code}",
                request.channel_order_id
            )),
            ChannelOutcome::Processing { .. } => None,
        }
    }
}

impl Channel for Simulator {
    fn code(&self) -> &str {
        &self.code
    }

    async fn submit(
        &self,
        request: &ChannelRequest,
        now: TimestampMicros,
    ) -> Result<ChannelOutcome, ChannelError> {
        if let Some(bank) = self.bank_is_down(request.bank.as_deref()) {
            return Err(ChannelError::BankDown {
                channel: self.code.clone(),
                bank,
            });
        }
        match SimulatedBehaviour::of(request.amount_minor) {
            SimulatedBehaviour::TimeoutButExecuted | SimulatedBehaviour::TimeoutNotExecuted => {
                Err(ChannelError::Timeout {
                    channel: self.code.clone(),
                })
            }
            _ => self.answer(request, now),
        }
    }

    async fn query(
        &self,
        request: &ChannelRequest,
        now: TimestampMicros,
    ) -> Result<ChannelOutcome, ChannelError> {
        self.answer(request, now)
    }

    fn parse_notification(&self, body: &str) -> Result<ChannelNotification, ChannelError> {
        let malformed =
            |what: &str| ChannelError::MalformedNotification(format!("{what} in {body:?}"));
        let field = |name: &str| {
            body.split('&')
                .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
        };
        let channel_order_id = field("channel_order_id")
            .and_then(|id| id.parse().ok())
            .ok_or_else(|| malformed("no channel_order_id"))?;
        let outcome = match field("status") {
            Some("SUCCESS") => ChannelOutcome::Success {
                channel_transaction_id: field("transaction_id")
                    .ok_or_else(|| malformed("no transaction_id"))?
                    .to_owned(),
                business_date: field("business_date")
                    .ok_or_else(|| malformed("no business_date"))?
                    .to_owned(),
                fee_minor: field("fee_minor")
                    .and_then(|fee| fee.parse().ok())
                    .ok_or_else(|| malformed("no fee_minor"))?,
            },
            Some("FAILED") => ChannelOutcome::Failed {
                code: field("code").unwrap_or("FAILED").to_owned(),
                message: String::new(),
            },
            _ => return Err(malformed("no final status")),
        };
        Ok(ChannelNotification {
            channel_order_id,
            outcome,
        })
    }

    async fn verify_agreement(
        &self,
        request: &AgreementRequest,
    ) -> Result<SignOutcome, ChannelError> {
        Ok(match SimulatedSigning::of(request) {
            SimulatedSigning::Accepted { bank } => SignOutcome::Signed {
                agreement_no: Names::new(&self.code).agreement_no(request.agreement_id),
                bank: bank.to_owned(),
            },
            SimulatedSigning::Refused { code } => SignOutcome::Refused(refusal(code)),
        })
    }

    async fn request_sms_code(
        &self,
        request: &AgreementRequest,
    ) -> Result<SignOutcome, ChannelError> {
        let Some(phone) = &request.phone else {
            return Ok(SignOutcome::Refused(refusal("PHONE_INVALID")));
        };
        Ok(match SimulatedSigning::of(request) {
            SimulatedSigning::Accepted { bank } => SignOutcome::CodeSent {
                confirmation_token: Names::new(&self.code).confirmation_token(
                    request.agreement_id,
                    bank,
                    &sms_code(phone.expose()),
                ),
                bank: bank.to_owned(),
            },
            SimulatedSigning::Refused { code } => SignOutcome::Refused(refusal(code)),
        })
    }

    async fn confirm_agreement(
        &self,
        confirmation: &AgreementConfirmation,
    ) -> Result<SignOutcome, ChannelError> {
        Ok(Names::new(&self.code).confirm(confirmation))
    }

    async fn revoke_agreement(&self, agreement_no: &str) -> Result<RevokeOutcome, ChannelError> {
        Ok(if Names::new(&self.code).owns_agreement(agreement_no) {
            RevokeOutcome::Revoked
        } else {
            RevokeOutcome::Refused(refusal("AGREEMENT_UNKNOWN"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ready;
    use money::Currency;

    /// 2026-11-22 10:00:00 UTC+8.
    const MORNING: TimestampMicros = 1_795_312_800_000_000;
    const SECOND: TimestampMicros = 1_000_000;

    fn request(amount_minor: i64) -> ChannelRequest {
        ChannelRequest {
            channel_order_id: 42,
            direction: ChannelDirection::Collect,
            amount_minor,
            currency: Currency::CNY,
            bank: Some("ICBC".to_owned()),
            submitted_at: MORNING,
            agreement_no: None,
        }
    }

    #[test]
    fn each_behaviour_answers_as_documented() {
        let simulator = Simulator::new("simbank");
        let success = ready(simulator.submit(&request(10_000), MORNING)).unwrap();
        assert_eq!(
            success,
            ChannelOutcome::Success {
                channel_transaction_id: "SIMC000000000042".to_owned(),
                business_date: "20261122".to_owned(),
                fee_minor: 60,
            }
        );
        let failed = ready(simulator.submit(&request(10_091), MORNING)).unwrap();
        assert!(
            matches!(failed, ChannelOutcome::Failed { ref code, .. } if code == "INSUFFICIENT_BALANCE")
        );
        let processing = ready(simulator.submit(&request(10_092), MORNING)).unwrap();
        assert!(matches!(processing, ChannelOutcome::Processing { .. }));
        let early = ready(simulator.query(&request(10_092), MORNING + SECOND)).unwrap();
        assert!(matches!(early, ChannelOutcome::Processing { .. }));
        let later = ready(simulator.query(&request(10_092), MORNING + 3 * SECOND)).unwrap();
        assert!(matches!(later, ChannelOutcome::Success { .. }));
        let rejected = ready(simulator.query(&request(10_093), MORNING + 3 * SECOND)).unwrap();
        assert!(matches!(rejected, ChannelOutcome::Failed { .. }));
    }

    #[test]
    fn a_timeout_is_resolved_by_query() {
        let simulator = Simulator::new("simbank");
        let timeout = ready(simulator.submit(&request(10_094), MORNING)).unwrap_err();
        assert!(timeout.outcome_unknown());
        let executed = ready(simulator.query(&request(10_094), MORNING + SECOND)).unwrap();
        assert!(matches!(executed, ChannelOutcome::Success { .. }));
        let lost = ready(simulator.submit(&request(10_095), MORNING)).unwrap_err();
        assert!(lost.outcome_unknown());
        let unknown = ready(simulator.query(&request(10_095), MORNING + SECOND)).unwrap_err();
        assert_eq!(unknown.code(), "CHANNEL_UNKNOWN_ORDER");
        let failed = ready(simulator.query(&request(10_095), MORNING + 3 * SECOND)).unwrap();
        assert!(
            matches!(failed, ChannelOutcome::Failed { ref code, .. } if code == "ORDER_NOT_FOUND")
        );
    }

    #[test]
    fn answers_survive_a_restart() {
        let before = Simulator::new("simbank");
        let after = Simulator::new("simbank");
        for amount in [10_000, 10_092, 10_093, 10_094, 10_096] {
            let now = MORNING + 5 * SECOND;
            assert_eq!(
                ready(before.query(&request(amount), now)),
                ready(after.query(&request(amount), now))
            );
        }
    }

    #[test]
    fn a_bank_that_is_down_is_refused_until_it_is_up() {
        let simulator = Simulator::new("simbank");
        simulator.set_bank_down("ICBC", true);
        let error = ready(simulator.submit(&request(10_000), MORNING)).unwrap_err();
        assert_eq!(error.code(), "BANK_DOWN");
        assert!(!error.outcome_unknown());
        simulator.set_bank_down("ICBC", false);
        assert!(ready(simulator.submit(&request(10_000), MORNING)).is_ok());
    }

    #[test]
    fn business_date_cuts_over_at_the_cutoff() {
        let simulator = Simulator::new("simbank");
        // 22:59:59 and 23:00:00 UTC+8.
        let before_cutoff = MORNING + (12 * 3600 + 59 * 60 + 59) * SECOND;
        assert_eq!(simulator.business_date(before_cutoff), "20261122");
        assert_eq!(simulator.business_date(before_cutoff + SECOND), "20261123");
        let late = ready(simulator.submit(&request(10_096), MORNING)).unwrap();
        assert!(
            matches!(late, ChannelOutcome::Success { ref business_date, .. } if business_date == "20261123")
        );
    }

    #[test]
    fn notifications_parse_back() {
        let simulator = Simulator::new("simbank");
        let body = simulator.notification(&request(10_000), MORNING).unwrap();
        let parsed = simulator.parse_notification(&body).unwrap();
        assert_eq!(parsed.channel_order_id, 42);
        assert_eq!(
            parsed.outcome,
            ready(simulator.query(&request(10_000), MORNING)).unwrap()
        );
        assert!(simulator.notification(&request(10_092), MORNING).is_none());
        assert!(simulator.parse_notification("status=SUCCESS").is_err());
        assert!(
            simulator
                .parse_notification("channel_order_id=1&status=MAYBE")
                .is_err()
        );
    }
}
