//! Opt-in: consent on record before business-initiated messages (cloud-api-facts.md §9).
//!
//! Meta: a business may contact a person only if the person gave their number **and** opted in
//! to messages from **that** business; the method is the business's choice, and scoping consent
//! per category is good practice. Meta does not check any of this at send time — greenlight's
//! own rule does, so it answers with greenlight's code [`CODE_NO_OPT_IN`] = **1900100**
//! (HTTP 400, `type: "GreenlightPolicyException"`), synchronously.
//!
//! - Consent is per (business, customer), with a scope `marketing` | `utility` | `all`, a
//!   source, proof, capture time and an optional revocation time; revocation keeps the record.
//!   A consent is active in `[captured_at, revoked_at)` (half-open, like the window).
//! - Needed only for **business-initiated** messages (templates sent outside a
//!   customer-opened window). In-window service messages always pass.
//! - Coverage by category: `marketing` ← `marketing` | `all`; `utility` ← `utility` | `all`;
//!   **`authentication` ← `utility` | `all`** (greenlight's decision: a one-time code is a
//!   transactional message the customer asked for, the same kind of consent as utility; a
//!   marketing-only consent does not cover it). Any other category needs `all`.
//! - Policy ([`OptInPolicy`], tenant setting `ComplianceSettings.opt_in_policy`): `enforce`
//!   (default) refuses, `warn` lets the send through with a `warn` verdict, `off` passes.
//! - STOP-style keywords revoke every active consent at once, with the customer's message as
//!   proof; START-style keywords restore what the last STOP revoked (new records, source
//!   `keyword`), and nothing when no STOP ever revoked anything: a bare "START" or "YES" is not
//!   taken as a fresh opt-in ([`after_keyword`]).

use serde::{Deserialize, Serialize};

use super::keywords::KeywordAction;
use super::verdict::{reason, Part::*, Verdict};
use crate::error::ErrorType;
use crate::{ApiError, Millis};

pub const RULE: &str = "opt_in";
pub const CODE_NO_OPT_IN: i64 = 1_900_100;
pub const TITLE: &str = "No opt-in on record for this message category";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    Marketing,
    Utility,
    All,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Marketing => "marketing",
            Scope::Utility => "utility",
            Scope::All => "all",
        }
    }

    pub fn parse(s: &str) -> Option<Scope> {
        match s.to_ascii_lowercase().as_str() {
            "marketing" => Some(Scope::Marketing),
            "utility" => Some(Scope::Utility),
            "all" => Some(Scope::All),
            _ => None,
        }
    }

    /// Does this scope cover a template `category` (`marketing` | `utility` | `authentication`)?
    pub fn covers(self, category: &str) -> bool {
        let c = category.to_ascii_lowercase();
        match self {
            Scope::All => true,
            Scope::Marketing => c == "marketing",
            Scope::Utility => c == "utility" || c == "authentication",
        }
    }

    /// The narrowest scope that covers `category` (for the fix in `details`).
    pub fn needed_for(category: &str) -> Scope {
        match category.to_ascii_lowercase().as_str() {
            "marketing" => Scope::Marketing,
            "utility" | "authentication" => Scope::Utility,
            _ => Scope::All,
        }
    }
}

/// One consent record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Consent {
    pub scope: Scope,
    /// e.g. `web_form`, `keyword`, `import`.
    pub source: String,
    /// Free text or a URL; for keywords, the customer's message and its id.
    pub proof: String,
    pub captured_at: Millis,
    #[serde(default)]
    pub revoked_at: Option<Millis>,
    /// Who recorded it (token owner, `keyword`, `import:<file>`), when known.
    #[serde(default)]
    pub recorded_by: Option<String>,
    /// Why it was revoked (`keyword:STOP`, `api`), when it was.
    #[serde(default)]
    pub revoked_reason: Option<String>,
}

impl Consent {
    pub fn is_active(&self, now: Millis) -> bool {
        self.captured_at <= now && !matches!(self.revoked_at, Some(r) if now >= r)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptInPolicy {
    #[default]
    Enforce,
    Warn,
    Off,
}

/// The active consent covering `category`, if any.
pub fn covering<'a>(consents: &'a [Consent], category: &str, now: Millis) -> Option<&'a Consent> {
    consents
        .iter()
        .filter(|c| c.is_active(now) && c.scope.covers(category))
        .max_by_key(|c| c.captured_at)
}

/// When the customer opted out of `category`: no active covering consent, and the latest
/// covering one was revoked (at the returned time). `None` if covered or never opted in.
pub fn opted_out(consents: &[Consent], category: &str, now: Millis) -> Option<Millis> {
    if covering(consents, category, now).is_some() {
        return None;
    }
    consents
        .iter()
        .filter(|c| c.scope.covers(category) && c.captured_at <= now)
        .filter_map(|c| c.revoked_at.filter(|&r| r <= now))
        .max()
}

/// The opt-in verdict for one send.
pub fn check(
    consents: &[Consent],
    category: &str,
    business_initiated: bool,
    policy: OptInPolicy,
    now: Millis,
) -> (Verdict, Option<ApiError>) {
    if !business_initiated {
        return (
            Verdict::pass(
                RULE,
                "service message inside a customer-opened window: no opt-in needed",
            ),
            None,
        );
    }
    if policy == OptInPolicy::Off {
        return (Verdict::pass(RULE, "the opt-in policy is off"), None);
    }
    if let Some(c) = covering(consents, category, now) {
        return (
            Verdict::pass(
                RULE,
                reason(&[
                    Text("opt-in on record: scope "),
                    Text(c.scope.as_str()),
                    Text(" from "),
                    Text(&c.source),
                    Text(" captured at "),
                    Int(c.captured_at / 1000),
                ]),
            ),
            None,
        );
    }
    let need = Scope::needed_for(category);
    let why = match opted_out(consents, category, now) {
        Some(r) => format!(
            "the customer revoked their opt-in covering '{category}' messages at {}",
            r / 1000
        ),
        None => format!("no opt-in covering '{category}' messages is on record for this customer"),
    };
    let fix = if need == Scope::All {
        "record an opt-in with scope \"all\"".to_string()
    } else {
        format!(
            "record an opt-in with scope \"{}\" or \"all\"",
            need.as_str()
        )
    };
    let details = format!(
        "Rule {RULE}: a business-initiated {category} template needs the customer's consent on record, and {why}. To comply, {fix} via POST /greenlight/v1/{{waba_id}}/opt_ins {{\"wa_id\": \"<customer>\", \"scope\": \"{}\", \"source\": \"…\", \"proof\": \"…\"}}, or message the customer inside a window they open.",
        need.as_str()
    );
    match policy {
        OptInPolicy::Warn => (Verdict::warn(RULE, Some(CODE_NO_OPT_IN), details), None),
        _ => {
            let e = ApiError::new(400, CODE_NO_OPT_IN, TITLE, details)
                .with_type(ErrorType::GreenlightPolicy);
            (Verdict::refuse(RULE, e.code, e.details.clone()), Some(e))
        }
    }
}

/// What a keyword does to the consent records.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KeywordEffect {
    /// Indexes into the given `consents` to revoke now (`revoked_at = now`).
    pub revoke: Vec<usize>,
    /// New records to insert.
    pub grant: Vec<Consent>,
}

/// The effect of a STOP/START keyword received at `now`. `proof` is the customer's message
/// (text and id) recorded as the evidence.
pub fn after_keyword(
    consents: &[Consent],
    action: KeywordAction,
    now: Millis,
    proof: &str,
) -> KeywordEffect {
    match action {
        KeywordAction::Stop => KeywordEffect {
            revoke: consents
                .iter()
                .enumerate()
                .filter(|(_, c)| c.is_active(now))
                .map(|(i, _)| i)
                .collect(),
            grant: Vec::new(),
        },
        KeywordAction::Start => {
            // the scopes the latest STOP revoked, unless already covered again
            let last_stop = consents
                .iter()
                .filter(|c| {
                    c.revoked_reason
                        .as_deref()
                        .is_some_and(|r| r.starts_with("keyword"))
                })
                .filter_map(|c| c.revoked_at)
                .filter(|&r| r <= now)
                .max();
            let Some(at) = last_stop else {
                return KeywordEffect::default();
            };
            let mut grant: Vec<Consent> = Vec::new();
            for c in consents.iter().filter(|c| {
                c.revoked_at == Some(at)
                    && c.revoked_reason
                        .as_deref()
                        .is_some_and(|r| r.starts_with("keyword"))
            }) {
                let already = consents
                    .iter()
                    .any(|a| a.is_active(now) && (a.scope == c.scope || a.scope == Scope::All));
                if already || grant.iter().any(|g| g.scope == c.scope) {
                    continue;
                }
                grant.push(Consent {
                    scope: c.scope,
                    source: "keyword".to_string(),
                    proof: proof.to_string(),
                    captured_at: now,
                    revoked_at: None,
                    recorded_by: Some("keyword".to_string()),
                    revoked_reason: None,
                });
            }
            KeywordEffect {
                revoke: Vec::new(),
                grant,
            }
        }
    }
}

/// The `revoked_reason` the store records for a keyword revocation.
pub fn keyword_revocation_reason(keyword_text: &str) -> String {
    format!("keyword:{}", super::keywords::normalize(keyword_text))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::verdict::RuleOutcome;
    use crate::HOUR;

    const T0: Millis = 1_700_000_000_000;

    fn consent(scope: Scope, at: Millis) -> Consent {
        Consent {
            scope,
            source: "web_form".into(),
            proof: "https://example.test/form/1".into(),
            captured_at: at,
            revoked_at: None,
            recorded_by: None,
            revoked_reason: None,
        }
    }

    #[test]
    fn in_window_service_messages_pass_without_consent() {
        let (v, e) = check(&[], "marketing", false, OptInPolicy::Enforce, T0);
        assert_eq!(v.outcome, RuleOutcome::Pass);
        assert!(e.is_none());
    }

    #[test]
    fn business_initiated_without_consent_refused_1900100() {
        let (v, e) = check(&[], "marketing", true, OptInPolicy::Enforce, T0);
        assert_eq!(v.outcome, RuleOutcome::Refuse);
        assert_eq!(v.code, Some(1_900_100));
        let e = e.unwrap();
        assert_eq!(e.status, 400);
        assert_eq!(e.kind, ErrorType::GreenlightPolicy);
        assert_eq!(
            e.envelope("x")["error"]["type"],
            "GreenlightPolicyException"
        );
        assert!(e.details.contains("opt_in"));
        assert!(e.details.contains("POST /greenlight/v1/{waba_id}/opt_ins"));
        assert!(e.details.contains("\"scope\": \"marketing\""));
    }

    /// A pass names the opt-in it found: its scope, its source and when it was captured.
    #[test]
    fn a_pass_names_the_opt_in_on_record() {
        let (v, e) = check(
            &[consent(Scope::Utility, T0 + 999)],
            "utility",
            true,
            OptInPolicy::Enforce,
            T0 + HOUR,
        );
        assert!(e.is_none());
        assert_eq!(
            v.details,
            "opt-in on record: scope utility from web_form captured at 1700000000"
        );
    }

    #[test]
    fn scope_coverage() {
        let m = [consent(Scope::Marketing, T0)];
        let u = [consent(Scope::Utility, T0)];
        let a = [consent(Scope::All, T0)];
        let ok =
            |c: &[Consent], cat: &str| check(c, cat, true, OptInPolicy::Enforce, T0).1.is_none();
        assert!(ok(&m, "marketing"));
        assert!(!ok(&m, "utility"));
        assert!(!ok(&m, "authentication"));
        assert!(ok(&u, "utility"));
        assert!(ok(&u, "AUTHENTICATION"));
        assert!(!ok(&u, "marketing"));
        for cat in ["marketing", "utility", "authentication", "service"] {
            assert!(ok(&a, cat));
        }
        assert!(!ok(&u, "service"));
    }

    #[test]
    fn consent_active_half_open() {
        let mut c = consent(Scope::All, T0);
        assert!(!c.is_active(T0 - 1), "not before capture");
        assert!(c.is_active(T0));
        c.revoked_at = Some(T0 + HOUR);
        assert!(c.is_active(T0 + HOUR - 1));
        assert!(!c.is_active(T0 + HOUR), "revoked at the instant");
    }

    #[test]
    fn revoked_consent_is_refused_and_says_so() {
        let mut c = consent(Scope::Marketing, T0);
        c.revoked_at = Some(T0 + HOUR);
        let cs = [c];
        assert_eq!(opted_out(&cs, "marketing", T0 + 2 * HOUR), Some(T0 + HOUR));
        assert_eq!(opted_out(&cs, "marketing", T0 + 30), None);
        assert_eq!(opted_out(&cs, "utility", T0 + 2 * HOUR), None);
        let (_, e) = check(&cs, "marketing", true, OptInPolicy::Enforce, T0 + 2 * HOUR);
        assert!(e.unwrap().details.contains("revoked"));
    }

    #[test]
    fn warn_and_off_policies() {
        let (v, e) = check(&[], "utility", true, OptInPolicy::Warn, T0);
        assert_eq!(v.outcome, RuleOutcome::Warn);
        assert_eq!(v.code, Some(CODE_NO_OPT_IN));
        assert!(e.is_none());
        let (v, e) = check(&[], "utility", true, OptInPolicy::Off, T0);
        assert_eq!(v.outcome, RuleOutcome::Pass);
        assert!(e.is_none());
        assert_eq!(
            serde_json::from_str::<OptInPolicy>("\"warn\"").unwrap(),
            OptInPolicy::Warn
        );
    }

    #[test]
    fn stop_revokes_everything_active_start_restores_it() {
        let mut old = consent(Scope::Utility, T0 - 10 * HOUR);
        old.revoked_at = Some(T0 - 5 * HOUR);
        old.revoked_reason = Some("api".into());
        let mut cs = vec![
            consent(Scope::Marketing, T0 - HOUR),
            old,
            consent(Scope::Utility, T0 - HOUR),
        ];
        let stop = after_keyword(&cs, KeywordAction::Stop, T0, "STOP (wamid.1)");
        assert_eq!(stop.revoke, vec![0, 2]);
        for i in stop.revoke {
            cs[i].revoked_at = Some(T0);
            cs[i].revoked_reason = Some(keyword_revocation_reason("stop!"));
        }
        assert_eq!(cs[0].revoked_reason.as_deref(), Some("keyword:STOP"));
        assert!(check(&cs, "marketing", true, OptInPolicy::Enforce, T0)
            .1
            .is_some());
        assert!(check(&cs, "utility", true, OptInPolicy::Enforce, T0)
            .1
            .is_some());

        let start = after_keyword(&cs, KeywordAction::Start, T0 + HOUR, "START (wamid.2)");
        assert!(start.revoke.is_empty());
        let scopes: Vec<Scope> = start.grant.iter().map(|c| c.scope).collect();
        assert_eq!(scopes, vec![Scope::Marketing, Scope::Utility]);
        assert_eq!(start.grant[0].proof, "START (wamid.2)");
        assert_eq!(start.grant[0].captured_at, T0 + HOUR);
        cs.extend(start.grant);
        assert!(
            check(&cs, "marketing", true, OptInPolicy::Enforce, T0 + HOUR)
                .1
                .is_none()
        );
        // history is kept: the revoked records are still there
        assert_eq!(cs.len(), 5);
    }

    #[test]
    fn start_without_a_previous_stop_grants_nothing() {
        assert_eq!(
            after_keyword(&[], KeywordAction::Start, T0, "YES"),
            KeywordEffect::default()
        );
        // an API revocation is not undone by a keyword
        let mut c = consent(Scope::All, T0 - HOUR);
        c.revoked_at = Some(T0 - 1);
        c.revoked_reason = Some("api".into());
        assert!(after_keyword(&[c], KeywordAction::Start, T0, "START")
            .grant
            .is_empty());
    }
}
