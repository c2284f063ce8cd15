//! Policy enforcement: violations, the escalation ladder, restrictions, disable, appeals
//! (cloud-api-facts.md §8.1, §8.2; codes 368 and 131031 in §2.3).
//!
//! **Violations** are recorded with evidence ([`Violation`]): sends to customers who opted out
//! (STOP ignored), quality RED for 7 days ([`PERSISTENT_RED`]), a template disabled for quality,
//! or a policy violation filed by the operator with a Meta `violation_type` (`ADULT`, `ALCOHOL`,
//! `SCAM`…; Meta's full list is UNCONFIRMED, so any string is accepted). The automatic kinds
//! carry greenlight's own `violation_type` names (`IGNORED_OPT_OUT`, `LOW_QUALITY`,
//! `TEMPLATE_DISABLED_FOR_QUALITY`) since Meta documents none for them. The store records at
//! most one automatic violation of a kind per 24 h ([`should_record`]).
//!
//! **Ladder** ([`escalate`]), by the number of violations on record that were not reversed on
//! appeal (the store passes the history it wants counted; Meta's lookback is UNCONFIRMED):
//!
//! | strike | action | `account_update` |
//! |---|---|---|
//! | 1 | warning | `ACCOUNT_VIOLATION` |
//! | 2 | business-initiated messaging + adding numbers restricted **1 day** | + `ACCOUNT_RESTRICTION` |
//! | 3 | the same, **3 days** | + `ACCOUNT_RESTRICTION` |
//! | 4 | all messaging (business- and customer-initiated) + adding numbers, **5 days** | + `ACCOUNT_RESTRICTION` |
//! | 5 | the same, **7 days** | + `ACCOUNT_RESTRICTION` |
//! | 6+ | **disabled** | + `DISABLED_UPDATE` (`ban_info.waba_ban_state: "DISABLE"`) |
//!
//! A violation marked `severe` (default for `CHILD_SEXUAL_EXPLOITATION`, `TERRORISM`,
//! `SCAM`, `ILLEGAL_DRUGS`, as Meta offboards "severe harm" at once) disables immediately.
//! Meta's shortcut "high-risk categories go straight to restrictions" is not modelled (the
//! operator can file the violation twice). Meta's "30-day" step is UNCONFIRMED and absent.
//!
//! **While restricted** ([`check`]) — greenlight's reading of Meta's two codes:
//! - a temporary restriction answers **368** "Temporarily blocked for policies violations"
//!   (HTTP 403): `RESTRICTED_BIZ_INITIATED_MESSAGING` refuses business-initiated messages
//!   (templates outside a window); `RESTRICTED_CUSTOMER_INITIATED_MESSAGING` refuses replies
//!   too;
//! - a **disabled** (locked) account answers **131031** "Account has been locked" (HTTP 403)
//!   for every send.
//!
//! Restrictions end by time, half-open: active while `now < expiration`. Their lifting sends
//! no webhook (Meta documents none); the audit trail records it.
//!
//! **Appeal** ([`can_appeal`], [`appeal_outcome`]): the tenant appeals one violation within
//! **90 days**; the operator decides `reversed` or `unchanged` (Meta's outcomes). Reversed: the
//! violation stops counting for the ladder; if it was the latest counted violation (the one
//! whose sanction is in force) its restrictions are lifted at once and a disabled account is
//! reinstated (`DISABLED_UPDATE` with `waba_ban_state: "REINSTATE"`). Unchanged: nothing moves.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::verdict::Verdict;
use crate::error::ErrorType;
use crate::{ApiError, Millis, DAY};

pub const RULE: &str = "enforcement";
pub const CODE_RESTRICTED: i64 = 368;
pub const CODE_LOCKED: i64 = 131_031;
/// greenlight's code for an appeal that cannot be filed or decided.
pub const CODE_APPEAL_INVALID: i64 = 1_900_400;
pub const APPEAL_WINDOW: Millis = 90 * DAY;
/// Quality RED this long is a violation.
pub const PERSISTENT_RED: Millis = 7 * DAY;
/// At most one automatic violation of a kind per this period.
pub const DEDUP_WINDOW: Millis = DAY;

pub const SEVERE_VIOLATION_TYPES: &[&str] = &[
    "CHILD_SEXUAL_EXPLOITATION",
    "CHILD_EXPLOITATION",
    "TERRORISM",
    "SCAM",
    "ILLEGAL_DRUGS",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ViolationKind {
    IgnoredOptOut,
    PersistentRedQuality,
    TemplateDisabledForQuality,
    PolicyViolation,
}

impl ViolationKind {
    /// The `violation_type` used for the automatic kinds (greenlight's names).
    pub fn default_violation_type(self) -> &'static str {
        match self {
            ViolationKind::IgnoredOptOut => "IGNORED_OPT_OUT",
            ViolationKind::PersistentRedQuality => "LOW_QUALITY",
            ViolationKind::TemplateDisabledForQuality => "TEMPLATE_DISABLED_FOR_QUALITY",
            ViolationKind::PolicyViolation => "POLICY_VIOLATION",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    pub kind: ViolationKind,
    /// `violation_info.violation_type` of the webhook.
    pub violation_type: String,
    pub at: Millis,
    /// What happened, with references (message ids, template id, ratings, operator's note).
    pub evidence: String,
    /// Disables at once.
    #[serde(default)]
    pub severe: bool,
    /// Set when an appeal reversed it.
    #[serde(default)]
    pub reversed_at: Option<Millis>,
}

impl Violation {
    /// An automatic violation (opt-out ignored, persistent RED, template disabled).
    pub fn new(kind: ViolationKind, at: Millis, evidence: impl Into<String>) -> Self {
        Violation {
            kind,
            violation_type: kind.default_violation_type().to_string(),
            at,
            evidence: evidence.into(),
            severe: false,
            reversed_at: None,
        }
    }

    /// An operator-filed violation with Meta's `violation_type`; severe if the type is.
    pub fn policy(violation_type: &str, at: Millis, evidence: impl Into<String>) -> Self {
        let t = violation_type.trim().to_ascii_uppercase();
        Violation {
            kind: ViolationKind::PolicyViolation,
            severe: is_severe_type(&t),
            violation_type: t,
            at,
            evidence: evidence.into(),
            reversed_at: None,
        }
    }

    pub fn counts(&self) -> bool {
        self.reversed_at.is_none()
    }
}

pub fn is_severe_type(violation_type: &str) -> bool {
    SEVERE_VIOLATION_TYPES
        .iter()
        .any(|s| s.eq_ignore_ascii_case(violation_type.trim()))
}

/// Should an automatic violation of `kind` be recorded at `now` (none of that kind counted in
/// the last 24 h)? Operator-filed violations are always recorded.
pub fn should_record(history: &[Violation], kind: ViolationKind, now: Millis) -> bool {
    kind == ViolationKind::PolicyViolation
        || !history
            .iter()
            .any(|v| v.kind == kind && v.counts() && v.at > now - DEDUP_WINDOW && v.at <= now)
}

/// Has the number been RED long enough to be a violation?
pub fn is_persistent_red(red_since: Option<Millis>, now: Millis) -> bool {
    matches!(red_since, Some(s) if now - s >= PERSISTENT_RED)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RestrictionType {
    #[serde(rename = "RESTRICTED_BIZ_INITIATED_MESSAGING")]
    BizInitiatedMessaging,
    #[serde(rename = "RESTRICTED_CUSTOMER_INITIATED_MESSAGING")]
    CustomerInitiatedMessaging,
    #[serde(rename = "RESTRICTED_ADD_PHONE_NUMBER_ACTION")]
    AddPhoneNumber,
}

impl RestrictionType {
    pub fn as_str(self) -> &'static str {
        match self {
            RestrictionType::BizInitiatedMessaging => "RESTRICTED_BIZ_INITIATED_MESSAGING",
            RestrictionType::CustomerInitiatedMessaging => {
                "RESTRICTED_CUSTOMER_INITIATED_MESSAGING"
            }
            RestrictionType::AddPhoneNumber => "RESTRICTED_ADD_PHONE_NUMBER_ACTION",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "RESTRICTED_BIZ_INITIATED_MESSAGING" => Some(RestrictionType::BizInitiatedMessaging),
            "RESTRICTED_CUSTOMER_INITIATED_MESSAGING" => {
                Some(RestrictionType::CustomerInitiatedMessaging)
            }
            "RESTRICTED_ADD_PHONE_NUMBER_ACTION" | "RESTRICTION_ON_ADD_PHONE_NUMBER_ACTION" => {
                Some(RestrictionType::AddPhoneNumber)
            }
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Restriction {
    pub restriction_type: RestrictionType,
    pub expires_at: Millis,
}

impl Restriction {
    pub fn is_active(&self, now: Millis) -> bool {
        now < self.expires_at
    }
}

/// The restrictions still in force at `now`.
pub fn active(restrictions: &[Restriction], now: Millis) -> Vec<Restriction> {
    restrictions
        .iter()
        .copied()
        .filter(|r| r.is_active(now))
        .collect()
}

/// When the next restriction ends (for the scheduler).
pub fn next_expiry(restrictions: &[Restriction], now: Millis) -> Option<Millis> {
    restrictions
        .iter()
        .filter(|r| r.is_active(now))
        .map(|r| r.expires_at)
        .min()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "step")]
pub enum EnforcementStep {
    Warning,
    RestrictBusinessInitiated { days: u32 },
    RestrictAllMessaging { days: u32 },
    Disable,
}

/// What to do after a violation was recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct EnforcementAction {
    /// Violations counted, the new one included.
    pub strike: usize,
    pub step: EnforcementStep,
    /// Restrictions to impose now (they replace the current ones).
    pub restrictions: Vec<Restriction>,
    pub disable: bool,
    /// `account_update` values to send, in order.
    pub webhooks: Vec<Value>,
}

/// The ladder step for the `strike`-th counted violation.
pub fn step_for(strike: usize) -> EnforcementStep {
    match strike {
        0 | 1 => EnforcementStep::Warning,
        2 => EnforcementStep::RestrictBusinessInitiated { days: 1 },
        3 => EnforcementStep::RestrictBusinessInitiated { days: 3 },
        4 => EnforcementStep::RestrictAllMessaging { days: 5 },
        5 => EnforcementStep::RestrictAllMessaging { days: 7 },
        _ => EnforcementStep::Disable,
    }
}

/// The action for the latest violation of `history` (which includes it), at `now`.
pub fn escalate(history: &[Violation], now: Millis) -> EnforcementAction {
    let counted: Vec<&Violation> = history.iter().filter(|v| v.counts()).collect();
    let strike = counted.len();
    let latest = counted.iter().max_by_key(|v| v.at);
    let step = if counted.iter().any(|v| v.severe) {
        EnforcementStep::Disable
    } else {
        step_for(strike)
    };
    let mut webhooks = Vec::new();
    if let Some(v) = latest {
        webhooks.push(account_violation_value(&v.violation_type));
    }
    let mut restrictions = Vec::new();
    let mut disable = false;
    let restrict = |days: u32, all: bool| {
        let until = now + i64::from(days) * DAY;
        let mut r = vec![
            Restriction {
                restriction_type: RestrictionType::BizInitiatedMessaging,
                expires_at: until,
            },
            Restriction {
                restriction_type: RestrictionType::AddPhoneNumber,
                expires_at: until,
            },
        ];
        if all {
            r.insert(
                1,
                Restriction {
                    restriction_type: RestrictionType::CustomerInitiatedMessaging,
                    expires_at: until,
                },
            );
        }
        r
    };
    match step {
        EnforcementStep::Warning => {}
        EnforcementStep::RestrictBusinessInitiated { days } => restrictions = restrict(days, false),
        EnforcementStep::RestrictAllMessaging { days } => restrictions = restrict(days, true),
        EnforcementStep::Disable => disable = true,
    }
    if !restrictions.is_empty() {
        webhooks.push(account_restriction_value(&restrictions));
    }
    if disable {
        webhooks.push(disabled_update_value(BanState::Disable, now));
    }
    EnforcementAction {
        strike,
        step,
        restrictions,
        disable,
        webhooks,
    }
}

fn restricted(details: String) -> ApiError {
    ApiError::new(
        403,
        CODE_RESTRICTED,
        "Temporarily blocked for policies violations",
        details,
    )
}

/// The enforcement verdict for one send.
pub fn check(
    restrictions: &[Restriction],
    disabled: bool,
    business_initiated: bool,
    now: Millis,
) -> (Verdict, Option<ApiError>) {
    if disabled {
        let e = ApiError::new(
            403,
            CODE_LOCKED,
            "Account has been locked",
            "The WhatsApp Business Account was disabled for repeated or severe policy violations; no message can be sent. Appeal the violation within 90 days for an operator review; a reversed appeal reinstates the account.",
        );
        return (Verdict::refuse(RULE, e.code, e.details.clone()), Some(e));
    }
    let find = |t: RestrictionType| {
        restrictions
            .iter()
            .filter(|r| r.restriction_type == t && r.is_active(now))
            .map(|r| r.expires_at)
            .max()
    };
    if let Some(until) = find(RestrictionType::CustomerInitiatedMessaging) {
        let e = restricted(format!(
            "The account is restricted from all messaging (business- and customer-initiated) for policy violations until {}; no message, replies included, can be sent before then.",
            until / 1000
        ));
        return (Verdict::refuse(RULE, e.code, e.details.clone()), Some(e));
    }
    if let Some(until) = find(RestrictionType::BizInitiatedMessaging) {
        if business_initiated {
            let e = restricted(format!(
                "The account is restricted from business-initiated messaging for policy violations until {}; only replies inside a customer-service window can be sent before then.",
                until / 1000
            ));
            return (Verdict::refuse(RULE, e.code, e.details.clone()), Some(e));
        }
        return (
            Verdict::pass(
                RULE,
                format!(
                    "business-initiated messaging is restricted until {}; replies inside a window are allowed",
                    until / 1000
                ),
            ),
            None,
        );
    }
    (Verdict::pass(RULE, "no restriction in force"), None)
}

/// May a number be added now (`RESTRICTED_ADD_PHONE_NUMBER_ACTION`, disable)?
pub fn check_add_phone_number(
    restrictions: &[Restriction],
    disabled: bool,
    now: Millis,
) -> Result<(), ApiError> {
    if disabled {
        return Err(ApiError::new(
            403,
            CODE_LOCKED,
            "Account has been locked",
            "The WhatsApp Business Account was disabled for policy violations; numbers cannot be added.",
        ));
    }
    match restrictions
        .iter()
        .filter(|r| r.restriction_type == RestrictionType::AddPhoneNumber && r.is_active(now))
        .map(|r| r.expires_at)
        .max()
    {
        Some(until) => Err(restricted(format!(
            "Adding phone numbers is restricted for policy violations until {}.",
            until / 1000
        ))),
        None => Ok(()),
    }
}

// ---- appeals ---------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AppealDecision {
    Reversed,
    Unchanged,
}

fn appeal_error(details: impl Into<String>) -> ApiError {
    ApiError::new(400, CODE_APPEAL_INVALID, "Appeal not allowed", details)
        .with_type(ErrorType::GreenlightPolicy)
}

/// May the tenant appeal this violation now? Within 90 days, and not already reversed.
pub fn can_appeal(v: &Violation, now: Millis) -> Result<(), ApiError> {
    if v.reversed_at.is_some() {
        return Err(appeal_error(
            "Rule enforcement: this violation was already reversed on appeal.",
        ));
    }
    if now - v.at > APPEAL_WINDOW {
        return Err(appeal_error(format!(
            "Rule enforcement: appeals must be filed within 90 days of the violation ({}); this one can no longer be appealed.",
            v.at / 1000
        )));
    }
    Ok(())
}

#[derive(Debug, Clone, PartialEq)]
pub struct AppealOutcome {
    /// The appealed violation after the decision.
    pub violation: Violation,
    /// The restrictions in force after the decision (replace the stored ones).
    pub restrictions: Vec<Restriction>,
    /// Whether the account is disabled after the decision.
    pub disabled: bool,
    /// `account_update` values to send.
    pub webhooks: Vec<Value>,
}

/// The operator's decision on the appeal of `history[appealed]`.
pub fn appeal_outcome(
    history: &[Violation],
    appealed: usize,
    decision: AppealDecision,
    restrictions: &[Restriction],
    disabled: bool,
    now: Millis,
) -> Result<AppealOutcome, ApiError> {
    let v = history
        .get(appealed)
        .ok_or_else(|| appeal_error("Rule enforcement: no such violation."))?;
    if v.reversed_at.is_some() {
        return Err(appeal_error(
            "Rule enforcement: this violation was already reversed on appeal.",
        ));
    }
    let mut out = AppealOutcome {
        violation: v.clone(),
        restrictions: active(restrictions, now),
        disabled,
        webhooks: Vec::new(),
    };
    if decision == AppealDecision::Unchanged {
        return Ok(out);
    }
    out.violation.reversed_at = Some(now);
    // is it the violation whose sanction is in force (the latest counted one, or a severe one)?
    let latest = history
        .iter()
        .enumerate()
        .filter(|(_, x)| x.counts())
        .max_by_key(|(i, x)| (x.at, *i))
        .map(|(i, _)| i);
    let others_severe = history
        .iter()
        .enumerate()
        .any(|(i, x)| i != appealed && x.counts() && x.severe);
    let remaining = history
        .iter()
        .enumerate()
        .filter(|(i, x)| *i != appealed && x.counts())
        .count();
    // what still counts may itself call for a disable
    let still_disabled = others_severe || step_for(remaining) == EnforcementStep::Disable;
    if latest == Some(appealed) || v.severe {
        out.restrictions.clear();
        if disabled && !still_disabled {
            out.disabled = false;
            out.webhooks
                .push(disabled_update_value(BanState::Reinstate, now));
        }
    }
    Ok(out)
}

// ---- account_update values (§8.2; fixture account-restriction.json) ---------------------------

/// `ban_info.waba_ban_state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum BanState {
    Disable,
    Reinstate,
    ScheduleForDisable,
}

impl BanState {
    pub fn as_str(self) -> &'static str {
        match self {
            BanState::Disable => "DISABLE",
            BanState::Reinstate => "REINSTATE",
            BanState::ScheduleForDisable => "SCHEDULE_FOR_DISABLE",
        }
    }
}

/// `{"event":"ACCOUNT_RESTRICTION","restriction_info":[{"restriction_type","expiration"}]}`,
/// `expiration` as a string of unix seconds, as in the fixture.
pub fn account_restriction_value(restrictions: &[Restriction]) -> Value {
    json!({
        "event": "ACCOUNT_RESTRICTION",
        "restriction_info": restrictions.iter().map(|r| json!({
            "restriction_type": r.restriction_type.as_str(),
            "expiration": (r.expires_at.div_euclid(1000)).to_string(),
        })).collect::<Vec<_>>(),
    })
}

/// `{"event":"ACCOUNT_VIOLATION","violation_info":{"violation_type"}}`.
pub fn account_violation_value(violation_type: &str) -> Value {
    json!({
        "event": "ACCOUNT_VIOLATION",
        "violation_info": { "violation_type": violation_type },
    })
}

/// `{"event":"DISABLED_UPDATE","ban_info":{"waba_ban_state","waba_ban_date"}}`, the date
/// written as Meta does ("April 17, 2025", UTC).
pub fn disabled_update_value(state: BanState, at: Millis) -> Value {
    json!({
        "event": "DISABLED_UPDATE",
        "ban_info": { "waba_ban_state": state.as_str(), "waba_ban_date": ban_date(at) },
    })
}

/// The reinstatement value: `DISABLED_UPDATE` with `waba_ban_state: "REINSTATE"`.
pub fn reinstate_value(at: Millis) -> Value {
    disabled_update_value(BanState::Reinstate, at)
}

/// "April 17, 2025" (UTC) for a unix-ms instant.
pub fn ban_date(at: Millis) -> String {
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    let (y, m, d) = civil_from_days(at.div_euclid(DAY));
    format!("{} {d}, {y}", MONTHS[(m - 1) as usize])
}

/// Days since 1970-01-01 → (year, month 1–12, day 1–31) (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::verdict::RuleOutcome;
    use crate::HOUR;

    const T0: Millis = 1_700_000_000_000;

    fn history(n: usize) -> Vec<Violation> {
        (0..n)
            .map(|i| {
                Violation::new(
                    ViolationKind::IgnoredOptOut,
                    T0 + i as i64 * HOUR,
                    format!("sent to opted-out customer (wamid.{i})"),
                )
            })
            .collect()
    }

    #[test]
    fn ladder() {
        let expect = [
            (1, EnforcementStep::Warning, 0, false),
            (
                2,
                EnforcementStep::RestrictBusinessInitiated { days: 1 },
                2,
                false,
            ),
            (
                3,
                EnforcementStep::RestrictBusinessInitiated { days: 3 },
                2,
                false,
            ),
            (
                4,
                EnforcementStep::RestrictAllMessaging { days: 5 },
                3,
                false,
            ),
            (
                5,
                EnforcementStep::RestrictAllMessaging { days: 7 },
                3,
                false,
            ),
            (6, EnforcementStep::Disable, 0, true),
            (7, EnforcementStep::Disable, 0, true),
        ];
        for (n, step, nr, dis) in expect {
            let a = escalate(&history(n), T0);
            assert_eq!(a.strike, n);
            assert_eq!(a.step, step, "strike {n}");
            assert_eq!(a.restrictions.len(), nr, "strike {n}");
            assert_eq!(a.disable, dis);
            assert_eq!(a.webhooks[0]["event"], "ACCOUNT_VIOLATION");
            assert_eq!(
                a.webhooks[0]["violation_info"]["violation_type"],
                "IGNORED_OPT_OUT"
            );
            match step {
                EnforcementStep::Warning => assert_eq!(a.webhooks.len(), 1),
                EnforcementStep::Disable => {
                    assert_eq!(a.webhooks[1]["event"], "DISABLED_UPDATE");
                    assert_eq!(a.webhooks[1]["ban_info"]["waba_ban_state"], "DISABLE");
                }
                EnforcementStep::RestrictBusinessInitiated { days }
                | EnforcementStep::RestrictAllMessaging { days } => {
                    assert_eq!(a.webhooks[1]["event"], "ACCOUNT_RESTRICTION");
                    for r in &a.restrictions {
                        assert_eq!(r.expires_at, T0 + i64::from(days) * DAY);
                    }
                }
            }
        }
        let a = escalate(&history(4), T0);
        let types: Vec<_> = a.restrictions.iter().map(|r| r.restriction_type).collect();
        assert_eq!(
            types,
            vec![
                RestrictionType::BizInitiatedMessaging,
                RestrictionType::CustomerInitiatedMessaging,
                RestrictionType::AddPhoneNumber
            ]
        );
    }

    #[test]
    fn reversed_violations_do_not_count_severe_disables_at_once() {
        let mut h = history(2);
        h[0].reversed_at = Some(T0 + DAY);
        assert_eq!(escalate(&h, T0 + DAY).step, EnforcementStep::Warning);
        let h = vec![Violation::policy("scam", T0, "operator: fake giveaway")];
        assert!(h[0].severe);
        assert_eq!(h[0].violation_type, "SCAM");
        assert_eq!(escalate(&h, T0).step, EnforcementStep::Disable);
        assert!(!Violation::policy("ADULT", T0, "").severe);
    }

    #[test]
    fn biz_restriction_blocks_templates_outside_window_not_replies() {
        let r = escalate(&history(2), T0).restrictions;
        let (v, e) = check(&r, false, true, T0 + HOUR);
        assert_eq!(v.outcome, RuleOutcome::Refuse);
        let e = e.unwrap();
        assert_eq!((e.code, e.status), (368, 403));
        assert_eq!(
            e.message(),
            "(#368) Temporarily blocked for policies violations"
        );
        assert!(check(&r, false, false, T0 + HOUR).1.is_none());
    }

    #[test]
    fn restriction_expires_half_open() {
        let r = escalate(&history(2), T0).restrictions;
        assert!(check(&r, false, true, T0 + DAY - 1).1.is_some());
        assert!(check(&r, false, true, T0 + DAY).1.is_none());
        assert_eq!(next_expiry(&r, T0), Some(T0 + DAY));
        assert_eq!(next_expiry(&r, T0 + DAY), None);
        assert!(active(&r, T0 + DAY).is_empty());
    }

    #[test]
    fn all_messaging_restriction_blocks_replies_too() {
        let r = escalate(&history(4), T0).restrictions;
        let (_, e) = check(&r, false, false, T0 + 4 * DAY);
        assert_eq!(e.unwrap().code, 368);
        assert!(check(&r, false, false, T0 + 5 * DAY).1.is_none());
    }

    #[test]
    fn disabled_answers_131031() {
        let (v, e) = check(&[], true, false, T0);
        assert_eq!(v.code, Some(131031));
        let e = e.unwrap();
        assert_eq!(e.status, 403);
        assert_eq!(e.message(), "(#131031) Account has been locked");
    }

    #[test]
    fn add_phone_number_restricted() {
        let r = escalate(&history(3), T0).restrictions;
        assert_eq!(check_add_phone_number(&r, false, T0).unwrap_err().code, 368);
        assert!(check_add_phone_number(&r, false, T0 + 3 * DAY).is_ok());
        assert_eq!(
            check_add_phone_number(&[], true, T0).unwrap_err().code,
            131031
        );
    }

    #[test]
    fn dedup_and_persistent_red() {
        let h = history(1);
        assert!(!should_record(&h, ViolationKind::IgnoredOptOut, T0 + HOUR));
        assert!(should_record(&h, ViolationKind::IgnoredOptOut, T0 + DAY));
        assert!(should_record(
            &h,
            ViolationKind::PersistentRedQuality,
            T0 + HOUR
        ));
        assert!(should_record(&h, ViolationKind::PolicyViolation, T0));
        assert!(!is_persistent_red(None, T0));
        assert!(!is_persistent_red(Some(T0), T0 + 7 * DAY - 1));
        assert!(is_persistent_red(Some(T0), T0 + 7 * DAY));
    }

    #[test]
    fn appeal_window_and_reversal_lifts_current_sanction() {
        let h = history(2);
        let a = escalate(&h, T0 + HOUR);
        assert!(can_appeal(&h[1], T0 + 90 * DAY).is_ok());
        let e = can_appeal(&h[0], T0 + 90 * DAY + 1).unwrap_err();
        assert_eq!(e.code, 1_900_400);
        assert_eq!(e.kind, ErrorType::GreenlightPolicy);

        // unchanged: nothing moves
        let o = appeal_outcome(
            &h,
            1,
            AppealDecision::Unchanged,
            &a.restrictions,
            false,
            T0 + 2 * HOUR,
        )
        .unwrap();
        assert_eq!(o.restrictions.len(), 2);
        assert_eq!(o.violation.reversed_at, None);

        // reversing an older violation keeps the current sanction
        let o = appeal_outcome(
            &h,
            0,
            AppealDecision::Reversed,
            &a.restrictions,
            false,
            T0 + 2 * HOUR,
        )
        .unwrap();
        assert_eq!(o.restrictions.len(), 2);
        assert_eq!(o.violation.reversed_at, Some(T0 + 2 * HOUR));

        // reversing the latest lifts it
        let o = appeal_outcome(
            &h,
            1,
            AppealDecision::Reversed,
            &a.restrictions,
            false,
            T0 + 2 * HOUR,
        )
        .unwrap();
        assert!(o.restrictions.is_empty());
        assert!(o.webhooks.is_empty());
    }

    #[test]
    fn reversal_reinstates_a_disabled_account() {
        let h = history(6);
        let o = appeal_outcome(&h, 5, AppealDecision::Reversed, &[], true, T0 + DAY).unwrap();
        assert!(!o.disabled);
        assert_eq!(o.webhooks, vec![reinstate_value(T0 + DAY)]);
        assert_eq!(o.webhooks[0]["ban_info"]["waba_ban_state"], "REINSTATE");
        // a reversed violation cannot be decided again
        let mut h2 = h.clone();
        h2[5] = o.violation;
        assert_eq!(
            appeal_outcome(&h2, 5, AppealDecision::Reversed, &[], false, T0 + DAY)
                .unwrap_err()
                .code,
            1_900_400
        );
        assert!(appeal_outcome(&h2, 99, AppealDecision::Reversed, &[], false, T0).is_err());
    }

    #[test]
    fn reversal_keeps_the_disable_when_the_rest_still_calls_for_it() {
        // seven strikes: without the latest, six still count → stays disabled
        let h = history(7);
        let o = appeal_outcome(&h, 6, AppealDecision::Reversed, &[], true, T0 + DAY).unwrap();
        assert!(o.disabled);
        assert!(o.webhooks.is_empty());
        // a severe violation reversed while another severe one stands: stays disabled
        let h = vec![
            Violation::policy("TERRORISM", T0, "a"),
            Violation::policy("SCAM", T0 + HOUR, "b"),
        ];
        let o = appeal_outcome(&h, 0, AppealDecision::Reversed, &[], true, T0 + DAY).unwrap();
        assert!(o.disabled);
        let o = appeal_outcome(&h[..1], 0, AppealDecision::Reversed, &[], true, T0 + DAY).unwrap();
        assert!(!o.disabled);
    }

    #[test]
    fn restriction_value_matches_fixture() {
        // /shared/reference/webhook-fixtures/account-restriction.json, changes[0].value
        let fixture = json!({
            "event": "ACCOUNT_RESTRICTION",
            "restriction_info": [
                { "restriction_type": "RESTRICTED_BIZ_INITIATED_MESSAGING", "expiration": "1748540794" }
            ]
        });
        let v = account_restriction_value(&[Restriction {
            restriction_type: RestrictionType::BizInitiatedMessaging,
            expires_at: 1_748_540_794_000,
        }]);
        assert_eq!(v, fixture);
    }

    #[test]
    fn violation_and_ban_values() {
        assert_eq!(
            account_violation_value("ADULT"),
            json!({"event": "ACCOUNT_VIOLATION", "violation_info": {"violation_type": "ADULT"}})
        );
        // 2025-04-17T12:00:00Z
        assert_eq!(
            disabled_update_value(BanState::Disable, 1_744_891_200_000),
            json!({"event": "DISABLED_UPDATE", "ban_info": {"waba_ban_state": "DISABLE", "waba_ban_date": "April 17, 2025"}})
        );
        assert_eq!(ban_date(0), "January 1, 1970");
        assert_eq!(ban_date(951_782_400_000), "February 29, 2000");
        assert_eq!(ban_date(1_767_225_599_000), "December 31, 2025");
        assert_eq!(
            RestrictionType::parse("RESTRICTION_ON_ADD_PHONE_NUMBER_ACTION"),
            Some(RestrictionType::AddPhoneNumber)
        );
    }
}
