//! Per-customer marketing template cap and the US marketing pause
//! (cloud-api-facts.md §5.5; error 131049 in §2.3).
//!
//! Meta caps how many marketing templates one WhatsApp user receives **from all businesses**
//! over a period; the cap varies with the user's engagement and is not published (UNCONFIRMED).
//! Failures are **asynchronous**: the send is accepted, then a `failed` status carries
//! **131049** "This message was not delivered to maintain healthy ecosystem engagement."
//! Meta advises waiting at least 24 h before retrying. Marketing templates sent inside a
//! **customer-opened window do not count** and are never capped.
//!
//! greenlight models it per business (it cannot see other businesses): at most
//! `max_per_period` marketing templates per customer per rolling `period_secs`, counting only
//! marketing templates that were accepted outside a customer-opened window ([`counts`]).
//! Defaults: **2 per 24 h**, enabled ([`MarketingCapSettings`]; a tenant setting). The store
//! counts `WHERE category = 'marketing' AND counted AND sent_at > now - period`.
//!
//! **US marketing pause**: since **2025-04-01** Meta does not deliver marketing templates to
//! users with a US (+1) number (131049). Behind the tenant setting
//! `ComplianceSettings.us_marketing_pause` (default **false**, so the
//! sandbox does not surprise tests that use +1 numbers). When on, it applies to every marketing
//! template to a recipient whose number starts with country code `1` (Meta keys on the calling
//! code, so Canada and the other NANP countries are included — UNCONFIRMED) or whose BSUID is
//! `US.…`, inside a window or not (UNCONFIRMED whether Meta exempts in-window marketing).

use serde::{Deserialize, Serialize};
use std::borrow::Cow;

use super::verdict::Verdict;
use crate::{ApiError, Millis, DAY};

pub const RULE: &str = "marketing_cap";
pub const CODE: i64 = 131_049;
pub const TITLE: &str = "This message was not delivered to maintain healthy ecosystem engagement.";
/// The date of Meta's US marketing pause (2025-04-01T00:00:00Z), unix ms.
pub const US_PAUSE_SINCE: Millis = 1_743_465_600_000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MarketingCapSettings {
    pub enabled: bool,
    /// Marketing templates per customer per period (counted outside windows only).
    pub max_per_period: u32,
    /// The rolling period, seconds (default 86,400).
    pub period_secs: i64,
}

impl Default for MarketingCapSettings {
    fn default() -> Self {
        MarketingCapSettings {
            enabled: true,
            max_per_period: 2,
            period_secs: DAY / 1000,
        }
    }
}

impl MarketingCapSettings {
    pub fn period(&self) -> Millis {
        self.period_secs.saturating_mul(1000)
    }
}

fn is_marketing(category: &str) -> bool {
    category.eq_ignore_ascii_case("marketing")
}

/// Does an accepted message count toward the cap? Marketing templates outside a
/// customer-opened window only.
pub fn counts(category: &str, in_customer_window: bool) -> bool {
    is_marketing(category) && !in_customer_window
}

/// Is `recipient` (digits of a phone number, optionally with `+`, or a BSUID) a US/+1 user?
pub fn is_us_recipient(recipient: &str) -> bool {
    let r = recipient.trim();
    if r.starts_with("US.") {
        return true;
    }
    let digits = r.strip_prefix('+').unwrap_or(r);
    digits.starts_with('1') && digits.len() == 11 && digits.bytes().all(|b| b.is_ascii_digit())
}

fn fail(details: String) -> (Verdict, Option<ApiError>) {
    let e = ApiError::new(400, CODE, TITLE, details);
    (Verdict::refuse(RULE, e.code, e.details.clone()), Some(e))
}

/// The cap for one send. `counted_in_period` = marketing templates already counted for this
/// customer in the rolling period (before this one). The error is reported asynchronously.
pub fn check(
    category: &str,
    in_customer_window: bool,
    recipient: &str,
    counted_in_period: u32,
    settings: &MarketingCapSettings,
    us_marketing_pause: bool,
) -> (Verdict, Option<ApiError>) {
    if !is_marketing(category) {
        return (
            Verdict::pass(
                RULE,
                match category {
                    "utility" => Cow::Borrowed("utility messages are not capped"),
                    "authentication" => Cow::Borrowed("authentication messages are not capped"),
                    other => Cow::Owned(format!("{other} messages are not capped")),
                },
            ),
            None,
        );
    }
    if us_marketing_pause && is_us_recipient(recipient) {
        return fail(
            "Marketing templates to US (+1) numbers are paused (Meta, since 2025-04-01); send a utility or authentication template, or reply inside a customer-service window with a non-marketing message.".to_string(),
        );
    }
    if in_customer_window {
        return (
            Verdict::pass(
                RULE,
                "marketing inside a customer-opened window does not count toward the cap",
            ),
            None,
        );
    }
    if !settings.enabled {
        return (Verdict::pass(RULE, "the marketing cap is off"), None);
    }
    let hours = settings.period_secs as f64 / 3600.0;
    if counted_in_period < settings.max_per_period {
        return (
            Verdict::pass(
                RULE,
                format!(
                    "{counted_in_period}/{} marketing templates to this customer in the last {hours} h",
                    settings.max_per_period
                ),
            ),
            None,
        );
    }
    fail(format!(
        "In order to maintain a healthy ecosystem engagement, the message failed to be delivered: this customer already received {counted_in_period} marketing templates in the last {hours} h (cap {}). Wait at least 24 hours before retrying, or message the customer inside a window they open.",
        settings.max_per_period
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::verdict::RuleOutcome;

    fn s() -> MarketingCapSettings {
        MarketingCapSettings::default()
    }

    #[test]
    fn categories_not_capped_say_so() {
        for category in ["utility", "authentication", "service"] {
            let (v, e) = check(category, false, "15550001111", 5, &s(), false);
            assert!(e.is_none());
            assert_eq!(v.outcome, RuleOutcome::Pass);
            assert_eq!(v.details, format!("{category} messages are not capped"));
        }
    }

    #[test]
    fn defaults() {
        let d = s();
        assert!(d.enabled);
        assert_eq!(d.max_per_period, 2);
        assert_eq!(d.period(), DAY);
    }

    #[test]
    fn under_cap_passes_at_cap_fails_131049() {
        assert!(check("marketing", false, "447700900123", 1, &s(), false)
            .1
            .is_none());
        let (v, e) = check("marketing", false, "447700900123", 2, &s(), false);
        assert_eq!(v.outcome, RuleOutcome::Refuse);
        let e = e.unwrap();
        assert_eq!(e.code, 131049);
        assert_eq!(e.title, TITLE);
    }

    #[test]
    fn utility_and_authentication_are_not_capped() {
        for c in ["utility", "authentication"] {
            assert!(check(c, false, "447700900123", 99, &s(), false).1.is_none());
        }
    }

    #[test]
    fn in_window_marketing_does_not_count_and_is_not_capped() {
        assert!(!counts("marketing", true));
        assert!(counts("MARKETING", false));
        assert!(!counts("utility", false));
        assert!(check("marketing", true, "447700900123", 99, &s(), false)
            .1
            .is_none());
    }

    #[test]
    fn disabled_cap_passes() {
        let mut st = s();
        st.enabled = false;
        assert!(check("marketing", false, "447700900123", 99, &st, false)
            .1
            .is_none());
    }

    #[test]
    fn us_pause_behind_setting() {
        assert!(check("marketing", false, "15551234567", 0, &s(), false)
            .1
            .is_none());
        let st = s();
        assert_eq!(
            check("marketing", false, "15551234567", 0, &st, true)
                .1
                .unwrap()
                .code,
            131049
        );
        assert!(check("marketing", true, "+15551234567", 0, &st, true)
            .1
            .is_some());
        assert!(
            check("marketing", false, "US.13491208655302741918", 0, &st, true)
                .1
                .is_some()
        );
        assert!(check("utility", false, "15551234567", 0, &st, true)
            .1
            .is_none());
        assert!(check("marketing", false, "447700900123", 0, &st, true)
            .1
            .is_none());
        // "1" followed by the wrong length is not a NANP number
        assert!(!is_us_recipient("1234"));
    }

    #[test]
    fn settings_deserialize_partially() {
        let st: MarketingCapSettings = serde_json::from_str(r#"{"max_per_period": 5}"#).unwrap();
        assert_eq!(st.max_per_period, 5);
        assert!(st.enabled);
    }
}
