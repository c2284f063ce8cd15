//! The compliance rules in one call: [`evaluate`] over the facts the store loaded
//! ([`ComplianceFacts`]) and the tenant's settings ([`ComplianceSettings`]), one
//! [`RuleResult`] per rule, every rule always reported (pass, warn or refuse) so each send can
//! be explained. Sections are those of `cloud-api-facts.md`.
//!
//! | rule | Meta source | refuses | code | channel | setting |
//! |---|---|---|---|---|---|
//! | `enforcement` | §8 | every send while the account is disabled; business-initiated sends under RESTRICTED_BIZ_INITIATED_MESSAGING; every send under RESTRICTED_CUSTOMER_INITIATED_MESSAGING | 131031 when disabled, 368 when restricted (HTTP 403) | sync | none |
//! | `opt_in` | §9 | a business-initiated template without an active consent covering its category (authentication is covered by utility or all) | 1900100 (HTTP 400, GreenlightPolicyException) | sync | `opt_in_policy`: enforce, warn, off |
//! | `marketing_opt_out` | §9 | a marketing template to a customer who stopped marketing messages; utility and authentication pass | 131050 | async (failed status) | `sync_refusals` of the engine |
//! | `messaging_limit` | §5.1, §5.2 | a business-initiated send to a new customer once the portfolio reached its tier's distinct customers in the moving 24 h | 1900200 (HTTP 400, GreenlightPolicyException) | sync | `enforce_messaging_limit` |
//! | `throughput` | §5.3 | more than 80 messages/s per number (1,000 when HIGH, 20 in coexistence) | 130429 | sync | `rate_limit_http_status`: 400 or 429 |
//! | `pair_rate_limit` | §5.4 | more than one message per 6 s to one customer beyond a burst of 45 | 131056 | sync | `rate_limit_http_status`: 400 or 429 |
//! | `marketing_cap` | §5.5 | a marketing template over the per-customer cap (outside windows), or to a +1 number under the US pause | 131049 | async (failed status) | `marketing_cap`, `us_marketing_pause` |
//! | `keywords` | §9 | nothing: STOP revokes consent, START restores it | none | inbound | `keywords` |
//! | `quality_rating` | §6, §3.9 | nothing: rates numbers and templates | none | webhooks | `quality` |
//! | `template_pausing` | §3.9 | paused and disabled templates (answered by the engine) | 132015, 132016 | sync | none |
//! | `business_verification` | §7.1, §7.2 | an invalid verification transition | 1900300 (HTTP 400, GreenlightPolicyException) | sync | none |
//! | `appeal` | §8.1 | an appeal after 90 days or of a reversed violation | 1900400 (HTTP 400, GreenlightPolicyException) | sync | none |
//!
//! How the store uses it, in the serialized unit of work of a send:
//! 1. load the facts (consents of the (business, customer) pair, the marketing opt-out flag,
//!    the portfolio tier and `COUNT(DISTINCT wa_id)` of reaches in the last 24 h, whether this
//!    customer is among them, the count of counted marketing templates to the customer in the
//!    cap period, active restrictions and the disabled flag) and `check` (not take) the
//!    number's and the pair's buckets;
//! 2. [`evaluate`], then [`combine`] for the outcome (a synchronous refusal outranks an
//!    asynchronous failure, as in `engine`);
//! 3. apply [`effects`]: take the bucket tokens, record the reach, count the marketing
//!    template, record an ignored-opt-out violation (`enforcement::should_record` first).

use serde::{Deserialize, Serialize};

use super::enforcement::{self, Restriction, Violation, ViolationKind};
use super::engine::Outcome;
use super::keywords::KeywordConfig;
use super::marketing_cap::{self, MarketingCapSettings};
use super::messaging_limit::{self, Tier};
use super::opt_in::{self, Consent, OptInPolicy};
use super::pacing::{self, ThroughputLevel};
use super::quality::QualityThresholds;
use super::verdict::Verdict;
use crate::{ApiError, Millis};

pub const MARKETING_OPT_OUT_RULE: &str = "marketing_opt_out";
pub const CODE_MARKETING_OPT_OUT: i64 = 131_050;
/// Meta's text for 131050 (title UNCONFIRMED; the code and its meaning are confirmed).
pub const MARKETING_OPT_OUT_TITLE: &str = "Unable to deliver the message. This recipient has chosen to stop receiving marketing messages on WhatsApp from your business.";

/// Everything the compliance rules need about one send, loaded by the store.
#[derive(Debug, Clone)]
pub struct ComplianceFacts<'a> {
    pub now: Millis,
    /// Template category, lowercase (`marketing` | `utility` | `authentication`); `None` for a
    /// non-template message.
    pub category: Option<&'a str>,
    /// A customer-opened service window is open for this (number, customer).
    pub in_customer_window: bool,
    /// `to` as sent: digits of the number, or a BSUID.
    pub recipient: &'a str,
    /// Consent records of this (business, customer), revoked ones included.
    pub consents: &'a [Consent],
    /// The customer stopped marketing messages (`user_preferences` / sandbox `stop_marketing`).
    pub marketing_opted_out: bool,
    /// The business portfolio's tier.
    pub tier: Tier,
    /// Distinct customers reached by business-initiated sends in the last 24 h (before this).
    pub distinct_reached_in_24h: u64,
    /// This customer is one of them.
    pub already_reached_this_customer: bool,
    pub throughput_level: ThroughputLevel,
    /// `Bucket::check` of the number's throughput bucket.
    pub throughput: Result<(), Millis>,
    /// `Bucket::check` of the (number, customer) pair bucket.
    pub pair: Result<(), Millis>,
    /// Marketing templates counted for this customer in the cap period (before this one).
    pub marketing_counted_in_period: u32,
    /// Restrictions of the WABA (expired ones are ignored).
    pub restrictions: &'a [Restriction],
    /// The WABA is disabled (locked).
    pub disabled: bool,
}

impl Default for ComplianceFacts<'_> {
    fn default() -> Self {
        ComplianceFacts {
            now: 0,
            category: None,
            in_customer_window: false,
            recipient: "",
            consents: &[],
            marketing_opted_out: false,
            tier: Tier::Tier250,
            distinct_reached_in_24h: 0,
            already_reached_this_customer: false,
            throughput_level: ThroughputLevel::Standard,
            throughput: Ok(()),
            pair: Ok(()),
            marketing_counted_in_period: 0,
            restrictions: &[],
            disabled: false,
        }
    }
}

impl ComplianceFacts<'_> {
    /// A template sent while no customer-opened window is open.
    pub fn business_initiated(&self) -> bool {
        self.category.is_some() && !self.in_customer_window
    }
    fn is_marketing(&self) -> bool {
        self.category
            .is_some_and(|c| c.eq_ignore_ascii_case("marketing"))
    }
}

/// The tenant's compliance settings (stored as JSON; every field optional).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ComplianceSettings {
    /// Default `enforce`.
    pub opt_in_policy: OptInPolicy,
    /// STOP/START keyword lists; default: the multilingual lists of `keywords`.
    pub keywords: KeywordConfig,
    /// Quality model; default yellow 2 %, red 5 %, minimum sample 100, 7 days linear decay.
    pub quality: QualityThresholds,
    /// Default: enabled, 2 marketing templates per customer per 24 h.
    pub marketing_cap: MarketingCapSettings,
    /// Meta's 2025-04-01 pause of marketing templates to +1 numbers; default false.
    pub us_marketing_pause: bool,
    /// Refuse new customers over the tier; default true.
    pub enforce_messaging_limit: bool,
    /// HTTP status of 130429 and 131056; default 400 (429 accepted).
    pub rate_limit_http_status: u16,
    /// Pacing (throughput per number, pair rate per customer); default true. Turn it off only
    /// for load tests of your own system (the benchmark does).
    pub pacing: bool,
}

impl ComplianceSettings {
    /// Checks every value is in a sensible range; the error names the key and the range.
    pub fn validate(&self) -> Result<(), String> {
        let q = &self.quality;
        let rate = |k: &str, v: f64| {
            if v.is_finite() && (0.0..=1.0).contains(&v) {
                Ok(())
            } else {
                Err(format!("quality.{k} must be a rate from 0 to 1"))
            }
        };
        rate("yellow_rate", q.yellow_rate)?;
        rate("red_rate", q.red_rate)?;
        if q.yellow_rate > q.red_rate {
            return Err("quality.yellow_rate must not exceed quality.red_rate".into());
        }
        if !(q.min_delivered.is_finite() && (1.0..=1e9).contains(&q.min_delivered)) {
            return Err("quality.min_delivered must be from 1 to 1e9".into());
        }
        if !(crate::HOUR..=90 * crate::DAY).contains(&q.window_ms) {
            return Err(
                "quality.window_ms must be from one hour to 90 days (in milliseconds)".into(),
            );
        }
        for (k, v) in [
            ("block_weight", q.block_weight),
            ("report_weight", q.report_weight),
        ]
        .into_iter()
        .chain(q.reason_multipliers.iter().map(|(k, v)| (k.as_str(), *v)))
        {
            if !(v.is_finite() && (0.0..=100.0).contains(&v)) {
                return Err(format!("quality weight {k} must be from 0 to 100"));
            }
        }
        let m = &self.marketing_cap;
        if !(3600..=90 * 86_400).contains(&m.period_secs) {
            return Err(
                "marketing_cap.period_secs must be from 3600 (an hour) to 7776000 (90 days)".into(),
            );
        }
        if m.max_per_period > 10_000 {
            return Err("marketing_cap.max_per_period must be at most 10000".into());
        }
        for (k, list) in [
            ("keywords.stop", &self.keywords.stop),
            ("keywords.start", &self.keywords.start),
        ] {
            if list.len() > 500
                || list
                    .iter()
                    .any(|w| w.trim().is_empty() || w.chars().count() > 64)
            {
                return Err(format!(
                    "{k} must hold at most 500 non-empty keywords of at most 64 characters"
                ));
            }
        }
        if !matches!(self.rate_limit_http_status, 400 | 429) {
            return Err("rate_limit_http_status must be 400 or 429".into());
        }
        Ok(())
    }
}

impl Default for ComplianceSettings {
    fn default() -> Self {
        ComplianceSettings {
            opt_in_policy: OptInPolicy::Enforce,
            keywords: KeywordConfig::default(),
            quality: QualityThresholds::default(),
            marketing_cap: MarketingCapSettings::default(),
            us_marketing_pause: false,
            enforce_messaging_limit: true,
            rate_limit_http_status: 400,
            pacing: true,
        }
    }
}

/// One rule's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleResult {
    pub verdict: Verdict,
    /// The error when the rule refuses.
    pub refusal: Option<ApiError>,
    /// Meta reports this refusal asynchronously (a `failed` status), e.g. 131049, 131050.
    pub asynchronous: bool,
}

impl RuleResult {
    fn sync((verdict, refusal): (Verdict, Option<ApiError>)) -> Self {
        RuleResult {
            verdict,
            refusal,
            asynchronous: false,
        }
    }
    fn asynchronous((verdict, refusal): (Verdict, Option<ApiError>)) -> Self {
        RuleResult {
            verdict,
            refusal,
            asynchronous: true,
        }
    }
}

fn marketing_opt_out(f: &ComplianceFacts) -> (Verdict, Option<ApiError>) {
    let rule = MARKETING_OPT_OUT_RULE;
    match f.category {
        None => (Verdict::pass(rule, "not a template"), None),
        Some(_) if !f.is_marketing() => (
            Verdict::pass(
                rule,
                "utility and authentication templates are delivered despite a marketing opt-out",
            ),
            None,
        ),
        Some(_) if !f.marketing_opted_out => (
            Verdict::pass(rule, "the customer has not stopped marketing messages"),
            None,
        ),
        Some(_) => {
            let e = ApiError::new(
                400,
                CODE_MARKETING_OPT_OUT,
                MARKETING_OPT_OUT_TITLE,
                "The customer stopped marketing messages from this business in WhatsApp; do not retry. Utility and authentication templates can still be sent, and marketing again once the customer resumes them.",
            );
            (Verdict::refuse(rule, e.code, e.details.clone()), Some(e))
        }
    }
}

/// Every compliance rule for one send, in order: enforcement, opt_in, marketing_opt_out,
/// messaging_limit, throughput, pair_rate_limit, marketing_cap.
pub fn evaluate(f: &ComplianceFacts, settings: &ComplianceSettings) -> Vec<RuleResult> {
    let bi = f.business_initiated();
    let mut out = Vec::with_capacity(7);

    out.push(RuleResult::sync(enforcement::check(
        f.restrictions,
        f.disabled,
        bi,
        f.now,
    )));

    out.push(RuleResult::sync(match f.category {
        Some(c) => opt_in::check(f.consents, c, bi, settings.opt_in_policy, f.now),
        None => (
            Verdict::pass(opt_in::RULE, "not a template: no opt-in needed"),
            None,
        ),
    }));

    out.push(RuleResult::asynchronous(marketing_opt_out(f)));

    out.push(RuleResult::sync(if !bi {
        (
            Verdict::pass(
                messaging_limit::RULE,
                "not business-initiated: does not count toward the messaging limit",
            ),
            None,
        )
    } else if !settings.enforce_messaging_limit {
        (
            Verdict::pass(
                messaging_limit::RULE,
                format!(
                    "the messaging limit is not enforced ({} customers in 24 h, tier {})",
                    f.distinct_reached_in_24h,
                    f.tier.as_str()
                ),
            ),
            None,
        )
    } else {
        messaging_limit::check(
            f.tier,
            f.distinct_reached_in_24h,
            f.already_reached_this_customer,
        )
    }));

    out.push(RuleResult::sync(pacing::throughput_verdict(
        f.throughput,
        f.throughput_level,
        settings.rate_limit_http_status,
    )));
    out.push(RuleResult::sync(pacing::pair_verdict(
        f.pair,
        settings.rate_limit_http_status,
    )));

    out.push(RuleResult::asynchronous(match f.category {
        Some(c) => marketing_cap::check(
            c,
            f.in_customer_window,
            f.recipient,
            f.marketing_counted_in_period,
            &settings.marketing_cap,
            settings.us_marketing_pause,
        ),
        None => (Verdict::pass(marketing_cap::RULE, "not a template"), None),
    }));
    out
}

/// The outcome of the results: the first synchronous refusal; else the first asynchronous one
/// (refused on the call when `sync_refusals`); else accepted.
pub fn combine(results: &[RuleResult], sync_refusals: bool) -> Outcome {
    if let Some(e) = results
        .iter()
        .filter(|r| !r.asynchronous)
        .find_map(|r| r.refusal.clone())
    {
        return Outcome::Refuse(e);
    }
    match results
        .iter()
        .filter(|r| r.asynchronous)
        .find_map(|r| r.refusal.clone())
    {
        Some(e) if sync_refusals => Outcome::Refuse(e),
        Some(e) => Outcome::FailAsync(e),
        None => Outcome::Accept,
    }
}

/// What the store writes after the decision.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Effects {
    /// Take a token from the number's and the pair's buckets (the API call was accepted, even
    /// if it fails asynchronously later).
    pub take_tokens: bool,
    /// Record this customer as reached now (messaging limit).
    pub record_reach: bool,
    /// Count this marketing template toward the customer's cap.
    pub count_marketing: bool,
    /// A business-initiated template went to a customer who had opted out (possible with
    /// `opt_in_policy` warn/off): record it if `enforcement::should_record` agrees.
    pub violation: Option<Violation>,
}

/// The effects of `outcome` (from [`combine`]) for the send described by `f`.
pub fn effects(f: &ComplianceFacts, outcome: &Outcome) -> Effects {
    let accepted = matches!(outcome, Outcome::Accept);
    let taken = !matches!(outcome, Outcome::Refuse(_));
    let bi = f.business_initiated();
    let violation = match f.category {
        Some(c) if accepted && bi => opt_in::opted_out(f.consents, c, f.now).map(|at| {
            Violation::new(
                ViolationKind::IgnoredOptOut,
                f.now,
                format!(
                    "a {c} template was sent to {} at {} although the customer opted out at {}",
                    f.recipient,
                    f.now / 1000,
                    at / 1000
                ),
            )
        }),
        _ => None,
    };
    Effects {
        take_tokens: taken,
        record_reach: accepted && bi,
        count_marketing: accepted
            && f.category
                .is_some_and(|c| marketing_cap::counts(c, f.in_customer_window)),
        violation,
    }
}

/// One row of the rules table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RuleDoc {
    pub rule: &'static str,
    pub meta_source: &'static str,
    pub refuses: &'static str,
    pub code: &'static str,
    pub channel: &'static str,
    pub setting: &'static str,
}

const RULES: &[RuleDoc] = &[
    RuleDoc {
        rule: "enforcement",
        meta_source: "§8",
        refuses: "every send while the account is disabled; business-initiated sends under RESTRICTED_BIZ_INITIATED_MESSAGING; every send under RESTRICTED_CUSTOMER_INITIATED_MESSAGING",
        code: "131031 when disabled, 368 when restricted (HTTP 403)",
        channel: "sync",
        setting: "none",
    },
    RuleDoc {
        rule: "opt_in",
        meta_source: "§9",
        refuses: "a business-initiated template without an active consent covering its category (authentication is covered by utility or all)",
        code: "1900100 (HTTP 400, GreenlightPolicyException)",
        channel: "sync",
        setting: "`opt_in_policy`: enforce, warn, off",
    },
    RuleDoc {
        rule: "marketing_opt_out",
        meta_source: "§9",
        refuses: "a marketing template to a customer who stopped marketing messages; utility and authentication pass",
        code: "131050",
        channel: "async (failed status)",
        setting: "`sync_refusals` of the engine",
    },
    RuleDoc {
        rule: "messaging_limit",
        meta_source: "§5.1, §5.2",
        refuses: "a business-initiated send to a new customer once the portfolio reached its tier's distinct customers in the moving 24 h",
        code: "1900200 (HTTP 400, GreenlightPolicyException)",
        channel: "sync",
        setting: "`enforce_messaging_limit`",
    },
    RuleDoc {
        rule: "throughput",
        meta_source: "§5.3",
        refuses: "more than 80 messages/s per number (1,000 when HIGH, 20 in coexistence)",
        code: "130429",
        channel: "sync",
        setting: "`rate_limit_http_status`: 400 or 429",
    },
    RuleDoc {
        rule: "pair_rate_limit",
        meta_source: "§5.4",
        refuses: "more than one message per 6 s to one customer beyond a burst of 45",
        code: "131056",
        channel: "sync",
        setting: "`rate_limit_http_status`: 400 or 429",
    },
    RuleDoc {
        rule: "marketing_cap",
        meta_source: "§5.5",
        refuses: "a marketing template over the per-customer cap (outside windows), or to a +1 number under the US pause",
        code: "131049",
        channel: "async (failed status)",
        setting: "`marketing_cap`, `us_marketing_pause`",
    },
    RuleDoc {
        rule: "keywords",
        meta_source: "§9",
        refuses: "nothing: STOP revokes consent, START restores it",
        code: "none",
        channel: "inbound",
        setting: "`keywords`",
    },
    RuleDoc {
        rule: "quality_rating",
        meta_source: "§6, §3.9",
        refuses: "nothing: rates numbers and templates",
        code: "none",
        channel: "webhooks",
        setting: "`quality`",
    },
    RuleDoc {
        rule: "template_pausing",
        meta_source: "§3.9",
        refuses: "paused and disabled templates (answered by the engine)",
        code: "132015, 132016",
        channel: "sync",
        setting: "none",
    },
    RuleDoc {
        rule: "business_verification",
        meta_source: "§7.1, §7.2",
        refuses: "an invalid verification transition",
        code: "1900300 (HTTP 400, GreenlightPolicyException)",
        channel: "sync",
        setting: "none",
    },
    RuleDoc {
        rule: "appeal",
        meta_source: "§8.1",
        refuses: "an appeal after 90 days or of a reversed violation",
        code: "1900400 (HTTP 400, GreenlightPolicyException)",
        channel: "sync",
        setting: "none",
    },
];

/// The rules table (the same as this module's documentation), for generated docs.
pub fn rules_table() -> &'static [RuleDoc] {
    RULES
}

/// The rules table as Markdown (header, separator, one line per rule).
pub fn rules_markdown() -> String {
    let mut s = String::from(
        "| rule | Meta source | refuses | code | channel | setting |\n|---|---|---|---|---|---|\n",
    );
    for r in RULES {
        s.push_str(&format!(
            "| `{}` | {} | {} | {} | {} | {} |\n",
            r.rule, r.meta_source, r.refuses, r.code, r.channel, r.setting
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::enforcement::RestrictionType;
    use crate::policy::opt_in::Scope;
    use crate::policy::verdict::RuleOutcome;
    use crate::{DAY, HOUR};

    const T0: Millis = 1_700_000_000_000;

    fn consent(scope: Scope) -> Consent {
        Consent {
            scope,
            source: "web_form".into(),
            proof: "form".into(),
            captured_at: T0 - DAY,
            revoked_at: None,
            recorded_by: None,
            revoked_reason: None,
        }
    }

    fn rule<'r>(rs: &'r [RuleResult], name: &str) -> &'r RuleResult {
        rs.iter().find(|r| r.verdict.rule == name).unwrap()
    }

    #[test]
    fn doc_table_matches_rules_table() {
        let src = include_str!("compliance.rs");
        for line in rules_markdown().lines() {
            assert!(
                src.contains(&format!("//! {line}\n")),
                "module doc lacks: {line}"
            );
        }
    }

    #[test]
    fn every_rule_reported_and_all_pass_when_compliant() {
        let cs = [consent(Scope::All)];
        let f = ComplianceFacts {
            now: T0,
            category: Some("marketing"),
            recipient: "447700900123",
            consents: &cs,
            ..Default::default()
        };
        let rs = evaluate(&f, &ComplianceSettings::default());
        let names: Vec<&str> = rs.iter().map(|r| &*r.verdict.rule).collect();
        assert_eq!(
            names,
            [
                "enforcement",
                "opt_in",
                "marketing_opt_out",
                "messaging_limit",
                "throughput",
                "pair_rate_limit",
                "marketing_cap"
            ]
        );
        assert!(rs.iter().all(|r| r.verdict.outcome == RuleOutcome::Pass));
        let out = combine(&rs, false);
        assert_eq!(out, Outcome::Accept);
        let fx = effects(&f, &out);
        assert!(fx.take_tokens && fx.record_reach && fx.count_marketing);
        assert!(fx.violation.is_none());
    }

    #[test]
    fn no_opt_in_refused_sync_1900100() {
        let f = ComplianceFacts {
            now: T0,
            category: Some("utility"),
            ..Default::default()
        };
        let rs = evaluate(&f, &ComplianceSettings::default());
        assert_eq!(rule(&rs, "opt_in").verdict.outcome, RuleOutcome::Refuse);
        match combine(&rs, false) {
            Outcome::Refuse(e) => assert_eq!(e.code, 1_900_100),
            o => panic!("{o:?}"),
        }
    }

    #[test]
    fn in_window_reply_needs_no_opt_in_and_does_not_count() {
        let f = ComplianceFacts {
            now: T0,
            in_customer_window: true,
            distinct_reached_in_24h: 250,
            ..Default::default()
        };
        let rs = evaluate(&f, &ComplianceSettings::default());
        assert_eq!(combine(&rs, false), Outcome::Accept);
        let fx = effects(&f, &Outcome::Accept);
        assert!(!fx.record_reach && !fx.count_marketing && fx.take_tokens);
    }

    #[test]
    fn marketing_opt_out_is_async_131050_marketing_only() {
        let cs = [consent(Scope::All)];
        let mut f = ComplianceFacts {
            now: T0,
            category: Some("marketing"),
            consents: &cs,
            marketing_opted_out: true,
            ..Default::default()
        };
        let rs = evaluate(&f, &ComplianceSettings::default());
        let r = rule(&rs, "marketing_opt_out");
        assert!(r.asynchronous);
        match combine(&rs, false) {
            Outcome::FailAsync(e) => assert_eq!(e.code, 131_050),
            o => panic!("{o:?}"),
        }
        match combine(&rs, true) {
            Outcome::Refuse(e) => assert_eq!(e.code, 131_050),
            o => panic!("{o:?}"),
        }
        let fx = effects(&f, &combine(&rs, false));
        assert!(fx.take_tokens && !fx.record_reach && !fx.count_marketing);
        for c in ["utility", "authentication"] {
            f.category = Some(c);
            let rs = evaluate(&f, &ComplianceSettings::default());
            assert_eq!(combine(&rs, false), Outcome::Accept, "{c}");
        }
    }

    #[test]
    fn limit_refuses_new_customers_only() {
        let cs = [consent(Scope::All)];
        let mut f = ComplianceFacts {
            now: T0,
            category: Some("utility"),
            consents: &cs,
            distinct_reached_in_24h: 250,
            ..Default::default()
        };
        let s = ComplianceSettings::default();
        match combine(&evaluate(&f, &s), false) {
            Outcome::Refuse(e) => assert_eq!(e.code, 1_900_200),
            o => panic!("{o:?}"),
        }
        f.already_reached_this_customer = true;
        assert_eq!(combine(&evaluate(&f, &s), false), Outcome::Accept);
        f.already_reached_this_customer = false;
        f.tier = Tier::Tier2K;
        assert_eq!(combine(&evaluate(&f, &s), false), Outcome::Accept);
        f.tier = Tier::Tier250;
        let off = ComplianceSettings {
            enforce_messaging_limit: false,
            ..Default::default()
        };
        assert_eq!(combine(&evaluate(&f, &off), false), Outcome::Accept);
    }

    #[test]
    fn pacing_results_from_the_store() {
        let f = ComplianceFacts {
            now: T0,
            throughput: Err(13),
            in_customer_window: true,
            ..Default::default()
        };
        match combine(&evaluate(&f, &ComplianceSettings::default()), false) {
            Outcome::Refuse(e) => assert_eq!((e.code, e.status), (130_429, 400)),
            o => panic!("{o:?}"),
        }
        let f = ComplianceFacts {
            pair: Err(6000),
            in_customer_window: true,
            ..Default::default()
        };
        let s: ComplianceSettings =
            serde_json::from_str(r#"{"rate_limit_http_status": 429}"#).unwrap();
        match combine(&evaluate(&f, &s), false) {
            Outcome::Refuse(e) => assert_eq!((e.code, e.status), (131_056, 429)),
            o => panic!("{o:?}"),
        }
    }

    #[test]
    fn marketing_cap_and_us_pause_fail_async() {
        let cs = [consent(Scope::All)];
        let f = ComplianceFacts {
            now: T0,
            category: Some("marketing"),
            consents: &cs,
            recipient: "15551234567",
            marketing_counted_in_period: 2,
            ..Default::default()
        };
        match combine(&evaluate(&f, &ComplianceSettings::default()), false) {
            Outcome::FailAsync(e) => assert_eq!(e.code, 131_049),
            o => panic!("{o:?}"),
        }
        let f = ComplianceFacts {
            marketing_counted_in_period: 0,
            ..f
        };
        assert_eq!(
            combine(&evaluate(&f, &ComplianceSettings::default()), false),
            Outcome::Accept
        );
        let us: ComplianceSettings =
            serde_json::from_str(r#"{"us_marketing_pause": true}"#).unwrap();
        assert!(matches!(
            combine(&evaluate(&f, &us), false),
            Outcome::FailAsync(_)
        ));
    }

    #[test]
    fn sync_refusal_outranks_async_failure() {
        let r = [Restriction {
            restriction_type: RestrictionType::BizInitiatedMessaging,
            expires_at: T0 + DAY,
        }];
        let cs = [consent(Scope::All)];
        let f = ComplianceFacts {
            now: T0,
            category: Some("marketing"),
            consents: &cs,
            marketing_opted_out: true,
            restrictions: &r,
            ..Default::default()
        };
        match combine(&evaluate(&f, &ComplianceSettings::default()), false) {
            Outcome::Refuse(e) => assert_eq!(e.code, 368),
            o => panic!("{o:?}"),
        }
        // a day later the restriction is over: the async 131050 remains
        let f = ComplianceFacts { now: T0 + DAY, ..f };
        assert!(matches!(
            combine(&evaluate(&f, &ComplianceSettings::default()), false),
            Outcome::FailAsync(_)
        ));
    }

    #[test]
    fn ignoring_stop_under_warn_policy_yields_a_violation() {
        let mut c = consent(Scope::Marketing);
        c.revoked_at = Some(T0 - HOUR);
        c.revoked_reason = Some("keyword:STOP".into());
        let cs = [c];
        let f = ComplianceFacts {
            now: T0,
            category: Some("marketing"),
            consents: &cs,
            recipient: "447700900123",
            ..Default::default()
        };
        let warn = ComplianceSettings {
            opt_in_policy: OptInPolicy::Warn,
            ..Default::default()
        };
        let rs = evaluate(&f, &warn);
        assert_eq!(rule(&rs, "opt_in").verdict.outcome, RuleOutcome::Warn);
        let out = combine(&rs, false);
        assert_eq!(out, Outcome::Accept);
        let v = effects(&f, &out).violation.unwrap();
        assert_eq!(v.kind, ViolationKind::IgnoredOptOut);
        assert!(v.evidence.contains("447700900123"));
        // enforce: refused, so no violation
        let rs = evaluate(&f, &ComplianceSettings::default());
        let out = combine(&rs, false);
        assert!(effects(&f, &out).violation.is_none());
    }

    #[test]
    fn settings_from_json() {
        let s: ComplianceSettings = serde_json::from_str("{}").unwrap();
        assert_eq!(s, ComplianceSettings::default());
        let s: ComplianceSettings = serde_json::from_str(
            r#"{"opt_in_policy":"off","marketing_cap":{"max_per_period":5},"quality":{"red_rate":0.1},"keywords":{"stop":["BASTA"]}}"#,
        )
        .unwrap();
        assert_eq!(s.opt_in_policy, OptInPolicy::Off);
        assert_eq!(s.marketing_cap.max_per_period, 5);
        assert!(s.marketing_cap.enabled);
        assert_eq!(s.quality.red_rate, 0.1);
        assert_eq!(s.keywords.stop, vec!["BASTA".to_string()]);
        assert!(!s.keywords.start.is_empty());
        assert_eq!(s.rate_limit_http_status, 400);
        // and back
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["opt_in_policy"], "off");
    }

    #[test]
    fn rules_table_rows() {
        let t = rules_table();
        assert_eq!(t.len(), 12);
        assert!(t
            .iter()
            .any(|r| r.rule == "opt_in" && r.code.starts_with("1900100")));
        assert!(rules_markdown().starts_with("| rule |"));
    }
}
