//! Error codes (差错码): rules over a discrepancy's class and attributes,
//! read from a configuration file, each naming a treatment.
//!
//! Rules are tried in file order and the first that matches wins, so a
//! specific rule goes before the general one for its class. A class no rule
//! names falls back to [`FALLBACK_CODE`], which escalates: nothing is ever
//! left without a code.

use crate::{Class, RecordKind, RecordStatus, Treatment};
use serde::Deserialize;

/// The code of a discrepancy no configured rule matches.
pub const FALLBACK_CODE: &str = "UNCLASSIFIED";

/// Rules in one file, at most.
pub const RULES_MAX: usize = 1024;

/// What a rule may look at, beyond the class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attributes {
    pub class: Class,
    pub kind: RecordKind,
    /// Our record's status, when we have one.
    pub platform_status: Option<RecordStatus>,
    /// The transaction happened within the configured window before the
    /// channel's cutoff (日切), so the other side may have booked it on the
    /// next day.
    pub near_cutoff: bool,
    /// Our trade was already paid by another payment: a success the channel
    /// reports for this one is a duplicate payment (重复支付).
    pub duplicate_of_success: bool,
    /// Business days since the discrepancy was first found.
    pub age_days: u32,
}

/// One rule: the conditions that are given must all hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorCodeRule {
    pub code: String,
    pub description: String,
    pub class: Class,
    pub kind: Option<RecordKind>,
    pub platform_status: Option<RecordStatus>,
    pub near_cutoff: Option<bool>,
    pub duplicate_of_success: Option<bool>,
    pub age_days_min: Option<u32>,
    pub treatment: Treatment,
}

impl ErrorCodeRule {
    fn matches(&self, attributes: &Attributes) -> bool {
        self.class == attributes.class
            && self.kind.is_none_or(|kind| kind == attributes.kind)
            && self
                .platform_status
                .is_none_or(|status| Some(status) == attributes.platform_status)
            && self
                .near_cutoff
                .is_none_or(|near| near == attributes.near_cutoff)
            && self
                .duplicate_of_success
                .is_none_or(|duplicate| duplicate == attributes.duplicate_of_success)
            && self
                .age_days_min
                .is_none_or(|age| attributes.age_days >= age)
    }
}

/// The error code a discrepancy gets, and what to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict<'a> {
    pub code: &'a str,
    pub treatment: Treatment,
}

/// The reconciliation settings and the error-code rules of one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconRules {
    /// Largest fee difference, in minor units, that still agrees.
    pub fee_tolerance_minor: i64,
    /// Minutes before the channel's cutoff that count as "near the cutoff".
    pub near_cutoff_minutes: u32,
    /// Business days an unsettled discrepancy is carried before it becomes
    /// an EXCEPTION for an operator.
    pub carry_days_max: u32,
    pub rules: Vec<ErrorCodeRule>,
    /// Per channel: its day and its statement format, by channel code.
    pub channels: std::collections::BTreeMap<String, ChannelSettings>,
}

const MICROS_PER_MINUTE: i64 = 60_000_000;
const MINUTES_PER_DAY: i64 = 1_440;

/// How one channel keeps its day (渠道日切) and writes its statements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelSettings {
    /// The channel's time zone as an offset from UTC, in minutes.
    pub utc_offset_minutes: i32,
    /// Minutes after local midnight at which the channel's day cuts over:
    /// a transaction at or after it belongs to the next business day.
    pub cutoff_minute_of_day: u32,
    /// The statement format name the importer uses (`wechat`, `alipay`,
    /// `unionpay-zm`, `mapping:<path>`).
    pub statement_format: String,
}

impl ChannelSettings {
    /// The channel's business day (days since 1970-01-01) of an instant.
    ///
    /// A business day runs from one cutoff to the next. A cutoff in the
    /// afternoon or evening (23:00) opens the *next* calendar day's business
    /// day; one in the morning (00:00, 03:00) opens the same calendar day's.
    pub fn business_day(&self, at: crate::TimestampMicros) -> i32 {
        let local_minutes = at.div_euclid(MICROS_PER_MINUTE) + i64::from(self.utc_offset_minutes);
        let cutoff = i64::from(self.cutoff_minute_of_day);
        let opens_next_day = i64::from(cutoff >= MINUTES_PER_DAY / 2);
        let day = (local_minutes - cutoff).div_euclid(MINUTES_PER_DAY) + opens_next_day;
        i32::try_from(day).unwrap_or(i32::MAX)
    }

    /// The first instant of a business day.
    pub fn business_day_start(&self, day: i32) -> crate::TimestampMicros {
        let cutoff = i64::from(self.cutoff_minute_of_day);
        let opens_next_day = i64::from(cutoff >= MINUTES_PER_DAY / 2);
        let local_minutes = (i64::from(day) - opens_next_day) * MINUTES_PER_DAY + cutoff;
        (local_minutes - i64::from(self.utc_offset_minutes)) * MICROS_PER_MINUTE
    }

    /// Minutes from `at` to the end of its business day.
    pub fn minutes_before_cutoff(&self, at: crate::TimestampMicros) -> i64 {
        let local_minutes = at.div_euclid(MICROS_PER_MINUTE) + i64::from(self.utc_offset_minutes);
        let into_day =
            (local_minutes - i64::from(self.cutoff_minute_of_day)).rem_euclid(MINUTES_PER_DAY);
        MINUTES_PER_DAY - into_day
    }
}

impl ReconRules {
    /// The first rule that matches, or the fallback that escalates.
    pub fn verdict(&self, attributes: &Attributes) -> Verdict<'_> {
        self.rules
            .iter()
            .find(|rule| rule.matches(attributes))
            .map_or(
                Verdict {
                    code: FALLBACK_CODE,
                    treatment: Treatment::Escalate,
                },
                |rule| Verdict {
                    code: &rule.code,
                    treatment: rule.treatment,
                },
            )
    }

    /// Parses a rules file (TOML); errors name the rule and the field.
    pub fn parse(text: &str) -> Result<ReconRules, RulesError> {
        let file: RulesFile =
            toml::from_str(text).map_err(|error| RulesError::Syntax(error.to_string()))?;
        if file.codes.len() > RULES_MAX {
            return Err(RulesError::TooMany {
                count: file.codes.len(),
            });
        }
        let rules = file
            .codes
            .into_iter()
            .enumerate()
            .map(|(index, rule)| rule.into_rule(index))
            .collect::<Result<Vec<_>, _>>()?;
        let mut seen = std::collections::HashSet::new();
        for rule in &rules {
            if rule.code == FALLBACK_CODE || !seen.insert(rule.code.as_str()) {
                return Err(RulesError::DuplicateCode(rule.code.clone()));
            }
        }
        if file.settings.fee_tolerance_minor < 0 {
            return Err(RulesError::Invalid {
                rule: "settings".to_owned(),
                field: "fee_tolerance_minor",
                value: file.settings.fee_tolerance_minor.to_string(),
            });
        }
        Ok(ReconRules {
            fee_tolerance_minor: file.settings.fee_tolerance_minor,
            near_cutoff_minutes: file.settings.near_cutoff_minutes,
            carry_days_max: file.settings.carry_days_max,
            rules,
            channels: file
                .channels
                .into_iter()
                .map(|(code, channel)| {
                    let settings = channel.into_settings(&code)?;
                    Ok((code, settings))
                })
                .collect::<Result<_, RulesError>>()?,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RulesError {
    #[error("reconciliation rules: {0}")]
    Syntax(String),
    #[error("reconciliation rules: {count} rules, at most {RULES_MAX}")]
    TooMany { count: usize },
    #[error("reconciliation rule {rule}: {field} = {value:?} is not valid")]
    Invalid {
        rule: String,
        field: &'static str,
        value: String,
    },
    #[error("reconciliation rules: code {0} is used twice or reserved")]
    DuplicateCode(String),
}

impl RulesError {
    pub fn code(&self) -> &'static str {
        "RECON_RULES_INVALID"
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesFile {
    settings: SettingsFile,
    #[serde(default)]
    codes: Vec<RuleFile>,
    #[serde(default)]
    channels: std::collections::BTreeMap<String, ChannelFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChannelFile {
    /// `+08:00`
    utc_offset: String,
    /// `23:00`
    cutoff: String,
    statement_format: String,
}

impl ChannelFile {
    fn into_settings(self, code: &str) -> Result<ChannelSettings, RulesError> {
        let invalid = |field: &'static str, value: &str| RulesError::Invalid {
            rule: format!("channels.{code}"),
            field,
            value: value.to_owned(),
        };
        let offset = self.utc_offset.as_str();
        let (sign, rest) = match offset.as_bytes().first() {
            Some(b'+') => (1, &offset[1..]),
            Some(b'-') => (-1, &offset[1..]),
            _ => return Err(invalid("utc_offset", offset)),
        };
        let offset_minutes = clock_minutes(rest)
            .filter(|minutes| *minutes <= 14 * 60)
            .ok_or_else(|| invalid("utc_offset", offset))?;
        let cutoff = clock_minutes(&self.cutoff)
            .filter(|minutes| *minutes < 24 * 60)
            .ok_or_else(|| invalid("cutoff", &self.cutoff))?;
        Ok(ChannelSettings {
            utc_offset_minutes: sign * offset_minutes as i32,
            cutoff_minute_of_day: cutoff,
            statement_format: self.statement_format,
        })
    }
}

/// `HH:MM` as minutes.
fn clock_minutes(text: &str) -> Option<u32> {
    let (hours, minutes) = text.split_once(':')?;
    if hours.len() != 2 || minutes.len() != 2 {
        return None;
    }
    let hours: u32 = hours.parse().ok()?;
    let minutes: u32 = minutes.parse().ok()?;
    (minutes < 60).then_some(hours * 60 + minutes)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SettingsFile {
    #[serde(default)]
    fee_tolerance_minor: i64,
    #[serde(default = "near_cutoff_minutes_default")]
    near_cutoff_minutes: u32,
    #[serde(default = "carry_days_max_default")]
    carry_days_max: u32,
}

fn near_cutoff_minutes_default() -> u32 {
    30
}

fn carry_days_max_default() -> u32 {
    3
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    code: String,
    #[serde(default)]
    description: String,
    class: String,
    kind: Option<String>,
    platform_status: Option<String>,
    near_cutoff: Option<bool>,
    duplicate_of_success: Option<bool>,
    age_days_min: Option<u32>,
    treatment: String,
}

impl RuleFile {
    fn into_rule(self, index: usize) -> Result<ErrorCodeRule, RulesError> {
        let name = if self.code.is_empty() {
            format!("#{}", index + 1)
        } else {
            self.code.clone()
        };
        let invalid = |field: &'static str, value: &str| RulesError::Invalid {
            rule: name.clone(),
            field,
            value: value.to_owned(),
        };
        if self.code.is_empty() {
            return Err(invalid("code", ""));
        }
        let class = Class::parse(&self.class)
            .filter(|class| class.is_discrepancy())
            .ok_or_else(|| invalid("class", &self.class))?;
        let kind = match &self.kind {
            Some(text) => Some(RecordKind::parse(text).ok_or_else(|| invalid("kind", text))?),
            None => None,
        };
        let platform_status = match &self.platform_status {
            Some(text) => {
                Some(RecordStatus::parse(text).ok_or_else(|| invalid("platform_status", text))?)
            }
            None => None,
        };
        let treatment = Treatment::parse(&self.treatment)
            .ok_or_else(|| invalid("treatment", &self.treatment))?;
        Ok(ErrorCodeRule {
            code: self.code,
            description: self.description,
            class,
            kind,
            platform_status,
            near_cutoff: self.near_cutoff,
            duplicate_of_success: self.duplicate_of_success,
            age_days_min: self.age_days_min,
            treatment,
        })
    }
}
