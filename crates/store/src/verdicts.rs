//! How a message row keeps its verdicts: each one a short array instead of an object.
//!
//! Every message keeps the verdicts that let it through, so they are written with every send
//! and again with the row's `delivered` update (on both backends). As objects they were two
//! thirds of an outbound row (808 of ~1,250 bytes for an in-window text); stored this way, 102
//! (docs/BENCHMARKS.md, eighteenth round). A verdict is `[rule, outcome, details]`, with a
//! fourth element, the code, when it has one:
//!
//! - `rule`: an index into [`RULES`], or the rule's name when it is not listed;
//! - `outcome`: 0 pass, 1 refuse, 2 warn;
//! - `details`: an index into [`TEXTS`], or the text itself when it is not listed.
//!
//! Both lists only grow: an index, once written, keeps its meaning in every database that holds
//! it (a test pins them). A rule name or text that changes is simply stored in full until it is
//! listed. [`from_stored`] reads this form and the objects written before it. An index past the
//! lists (written by a newer build) reads as a placeholder; an outcome other than the three is
//! an error, as a new outcome would be a new meaning an older build cannot show. The audit
//! trail keeps verdicts as objects, the form its API hands out.

use greenlight_domain::policy::{RuleOutcome, Verdict};
use serde::de::Error as _;
use serde::ser::{SerializeSeq, SerializeTuple};
use serde::{Deserialize, Serialize, Serializer};
use std::borrow::Cow;

/// Rule names, by index. Append only.
pub const RULES: &[&str] = &[
    "customer_service_window",
    "recipient_on_whatsapp",
    "enforcement",
    "opt_in",
    "marketing_opt_out",
    "messaging_limit",
    "throughput",
    "pair_rate_limit",
    "marketing_cap",
    "template_status",
    "template_parameters",
    "recipient",
    "blocked_user",
    "quality_rating",
    "business_verification",
];

/// Details that do not depend on the message, by index. Append only.
pub const TEXTS: &[&str] = &[
    "the recipient is a WhatsApp user",
    "no restriction in force",
    "not a template: no opt-in needed",
    "not a template",
    "not business-initiated: does not count toward the messaging limit",
    "under 80 messages per second",
    "under the pair rate limit (1 message per 6 s, bursts up to 45)",
    "the parameters match the template",
    "window open; templates are always allowed",
    "window closed; templates are allowed outside it",
    "service message inside a customer-opened window: no opt-in needed",
    "the opt-in policy is off",
    "utility and authentication templates are delivered despite a marketing opt-out",
    "the customer has not stopped marketing messages",
    "marketing inside a customer-opened window does not count toward the cap",
    "the marketing cap is off",
    "utility messages are not capped",
    "authentication messages are not capped",
    "under 1000 messages per second",
    "under 20 messages per second",
];

/// A listed string's index, or the string itself.
#[derive(Deserialize)]
#[serde(untagged)]
enum Ref<'a> {
    Index(u64),
    #[serde(borrow)]
    Text(Cow<'a, str>),
}

impl<'a> Ref<'a> {
    /// `s` as stored: its index when `list` holds it (the lists are short: a scan is cheaper
    /// than hashing the text).
    fn of(s: &'a str, list: &[&str]) -> Self {
        match list.iter().position(|l| *l == s) {
            Some(i) => Ref::Index(i as u64),
            None => Ref::Text(Cow::Borrowed(s)),
        }
    }

    fn resolve(self, list: &'static [&'static str], what: &str) -> Cow<'static, str> {
        match self {
            Ref::Text(t) => Cow::Owned(t.into_owned()),
            Ref::Index(i) => match list.get(i as usize) {
                Some(s) => Cow::Borrowed(s),
                None => Cow::Owned(format!("({what} #{i} of a newer greenlight)")),
            },
        }
    }
}

impl Serialize for Ref<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Ref::Index(i) => s.serialize_u64(*i),
            Ref::Text(t) => s.serialize_str(t),
        }
    }
}

fn outcome_code(o: RuleOutcome) -> u8 {
    match o {
        RuleOutcome::Pass => 0,
        RuleOutcome::Refuse => 1,
        RuleOutcome::Warn => 2,
    }
}

fn outcome_of(code: u8) -> Option<RuleOutcome> {
    [RuleOutcome::Pass, RuleOutcome::Refuse, RuleOutcome::Warn]
        .into_iter()
        .find(|o| outcome_code(*o) == code)
}

struct One<'a>(&'a Verdict);

impl Serialize for One<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let v = self.0;
        let mut t = s.serialize_tuple(if v.code.is_some() { 4 } else { 3 })?;
        t.serialize_element(&Ref::of(&v.rule, RULES))?;
        t.serialize_element(&outcome_code(v.outcome))?;
        t.serialize_element(&Ref::of(&v.details, TEXTS))?;
        if let Some(code) = v.code {
            t.serialize_element(&code)?;
        }
        t.end()
    }
}

/// Verdicts in their stored form, for `serde_json::to_string` or [`Stored::to_json`].
pub struct Stored<'a>(pub &'a [Verdict]);

impl Stored<'_> {
    /// The stored form's text, as `serde_json::to_string` writes it (a test holds the two
    /// equal), written directly: every send writes it, and `serde_json` escapes a string a
    /// byte at a time (~1,000 instructions for each of a template's three texts that are not
    /// listed, docs/BENCHMARKS.md, thirty-eighth round), where a text with nothing to escape
    /// is copied whole here.
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(2 + 48 * self.0.len());
        let mut num = itoa::Buffer::new();
        out.push('[');
        for (i, v) in self.0.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push('[');
            push_ref(&mut out, &mut num, &v.rule, RULES);
            out.push(',');
            out.push_str(num.format(outcome_code(v.outcome)));
            out.push(',');
            push_ref(&mut out, &mut num, &v.details, TEXTS);
            if let Some(code) = v.code {
                out.push(',');
                out.push_str(num.format(code));
            }
            out.push(']');
        }
        out.push(']');
        out
    }
}

/// `s` as [`Ref::of`] stores it: its index in `list`, or the text as a JSON string.
fn push_ref(out: &mut String, num: &mut itoa::Buffer, s: &str, list: &[&str]) {
    match Ref::of(s, list) {
        Ref::Index(i) => out.push_str(num.format(i)),
        Ref::Text(t) => crate::events::push_json_str(out, &t),
    }
}

impl Serialize for Stored<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for v in self.0 {
            seq.serialize_element(&One(v))?;
        }
        seq.end()
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Item<'a> {
    Short(#[serde(borrow)] Ref<'a>, u8, #[serde(borrow)] Ref<'a>),
    Coded(#[serde(borrow)] Ref<'a>, u8, #[serde(borrow)] Ref<'a>, i64),
    Object(Verdict),
}

/// The verdicts stored in a message row, in either form.
pub fn from_stored(s: &str) -> Result<Vec<Verdict>, serde_json::Error> {
    let items: Vec<Item> = serde_json::from_str(s)?;
    items
        .into_iter()
        .map(|item| {
            let (rule, outcome, details, code) = match item {
                Item::Object(v) => return Ok(v),
                Item::Short(r, o, d) => (r, o, d, None),
                Item::Coded(r, o, d, c) => (r, o, d, Some(c)),
            };
            let outcome = outcome_of(outcome)
                .ok_or_else(|| serde_json::Error::custom(format!("verdict outcome {outcome}")))?;
            Ok(Verdict {
                rule: rule.resolve(RULES, "rule"),
                outcome,
                code,
                details: details.resolve(TEXTS, "text"),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use greenlight_domain::policy::{
        compliance, enforcement, engine, marketing_cap, messaging_limit, opt_in, pacing, quality,
        verification, window,
    };
    use proptest::prelude::*;

    fn store(v: &[Verdict]) -> String {
        serde_json::to_string(&Stored(v)).unwrap()
    }

    /// What databases already hold: these indexes keep their meaning. New entries go at the
    /// ends of the lists (and may be added here); nothing here changes.
    #[test]
    fn the_lists_only_grow() {
        assert!(RULES.starts_with(&[
            "customer_service_window",
            "recipient_on_whatsapp",
            "enforcement",
            "opt_in",
            "marketing_opt_out",
            "messaging_limit",
            "throughput",
            "pair_rate_limit",
            "marketing_cap",
            "template_status",
            "template_parameters",
            "recipient",
            "blocked_user",
            "quality_rating",
            "business_verification",
        ]));
        assert!(TEXTS.starts_with(&[
            "the recipient is a WhatsApp user",
            "no restriction in force",
            "not a template: no opt-in needed",
            "not a template",
            "not business-initiated: does not count toward the messaging limit",
            "under 80 messages per second",
            "under the pair rate limit (1 message per 6 s, bursts up to 45)",
            "the parameters match the template",
            "window open; templates are always allowed",
            "window closed; templates are allowed outside it",
            "service message inside a customer-opened window: no opt-in needed",
            "the opt-in policy is off",
            "utility and authentication templates are delivered despite a marketing opt-out",
            "the customer has not stopped marketing messages",
            "marketing inside a customer-opened window does not count toward the cap",
            "the marketing cap is off",
            "utility messages are not capped",
            "authentication messages are not capped",
            "under 1000 messages per second",
            "under 20 messages per second",
        ]));
        for list in [RULES, TEXTS] {
            let distinct: std::collections::HashSet<_> = list.iter().collect();
            assert_eq!(distinct.len(), list.len(), "{list:?}");
        }
    }

    /// The rules as the policy names them are listed (a renamed rule would be stored in
    /// full: still right, but no longer small).
    #[test]
    fn every_rule_is_listed() {
        for rule in [
            engine::RECIPIENT_RULE,
            engine::BLOCKED_USER_RULE,
            engine::TEMPLATE_STATUS_RULE,
            engine::TEMPLATE_PARAMETERS_RULE,
            engine::RECIPIENT_ON_WHATSAPP_RULE,
            window::RULE,
            enforcement::RULE,
            opt_in::RULE,
            compliance::MARKETING_OPT_OUT_RULE,
            messaging_limit::RULE,
            pacing::THROUGHPUT_RULE,
            pacing::PAIR_RULE,
            marketing_cap::RULE,
            quality::RULE,
            verification::RULE,
        ] {
            assert!(RULES.contains(&rule), "{rule}");
        }
    }

    /// The fixed details a send makes on every pass of pacing and the marketing cap are listed,
    /// so that they are stored by index.
    #[test]
    fn every_fixed_pass_detail_is_listed() {
        use greenlight_domain::policy::pacing::ThroughputLevel;
        for level in [
            ThroughputLevel::Standard,
            ThroughputLevel::High,
            ThroughputLevel::Coexistence,
        ] {
            assert!(TEXTS.contains(&level.under_text()), "{level:?}");
        }
        for category in ["utility", "authentication"] {
            let settings = marketing_cap::MarketingCapSettings::default();
            let (v, _) = marketing_cap::check(category, false, "15550001111", 0, &settings, false);
            assert!(TEXTS.contains(&&*v.details), "{}", v.details);
        }
    }

    /// The stored form, written out: listed names and texts by index, the rest in full, the
    /// code last when there is one.
    #[test]
    fn the_stored_form() {
        let v = [
            Verdict::pass(window::RULE, "window open until 1796498453"),
            Verdict::pass("recipient_on_whatsapp", "the recipient is a WhatsApp user"),
            Verdict::warn(opt_in::RULE, Some(131_055), "no opt-in on record"),
            Verdict::refuse("a_new_rule", 131_026, "not a template"),
            Verdict::warn(opt_in::RULE, None, "7"),
        ];
        let s = store(&v);
        assert_eq!(
            s,
            r#"[[0,0,"window open until 1796498453"],[1,0,0],[3,2,"no opt-in on record",131055],["a_new_rule",1,3,131026],[3,2,"7"]]"#
        );
        assert_eq!(from_stored(&s).unwrap(), v);
        assert_eq!(from_stored("[]").unwrap(), vec![]);
    }

    /// A row written before this form (objects) reads as it did.
    #[test]
    fn verdicts_stored_as_objects_still_read() {
        let old = r#"[{"rule":"customer_service_window","outcome":"pass","details":"window open until 1796498453"},{"rule":"opt_in","outcome":"refuse","code":131055,"details":"no opt-in"}]"#;
        assert_eq!(
            from_stored(old).unwrap(),
            vec![
                Verdict::pass(window::RULE, "window open until 1796498453"),
                Verdict::refuse(opt_in::RULE, 131_055, "no opt-in"),
            ]
        );
    }

    /// An index past the lists (a newer build wrote it) reads as a placeholder, not an
    /// error; an outcome that is none of the three, or a malformed entry, is an error.
    #[test]
    fn unknown_entries() {
        assert_eq!(
            from_stored(r#"[[999,0,999]]"#).unwrap(),
            vec![Verdict::pass(
                "(rule #999 of a newer greenlight)",
                "(text #999 of a newer greenlight)"
            )]
        );
        for bad in [
            r#"[[0,3,0]]"#,
            r#"[[0,0]]"#,
            r#"[[0,0,0,1,2]]"#,
            r#"[[0,"pass",0]]"#,
            r#"{}"#,
        ] {
            assert!(from_stored(bad).is_err(), "{bad}");
        }
    }

    fn entry(list: &'static [&'static str]) -> impl Strategy<Value = String> {
        prop_oneof![
            proptest::sample::select(list).prop_map(str::to_string),
            any::<String>(),
            "[0-9]{1,3}",
        ]
    }

    fn verdict() -> impl Strategy<Value = Verdict> {
        (
            entry(RULES),
            prop_oneof![
                Just(RuleOutcome::Pass),
                Just(RuleOutcome::Refuse),
                Just(RuleOutcome::Warn)
            ],
            entry(TEXTS),
            proptest::option::of(any::<i64>()),
        )
            .prop_map(|(rule, outcome, details, code)| Verdict {
                rule: rule.into(),
                outcome,
                code,
                details: details.into(),
            })
    }

    proptest! {
        /// Whatever the verdicts, they read back as they were.
        #[test]
        fn verdicts_read_back_as_stored(v in proptest::collection::vec(verdict(), 0..12)) {
            prop_assert_eq!(from_stored(&store(&v)).unwrap(), v);
        }

        /// The text written directly is `serde_json`'s, byte for byte: listed and free texts,
        /// escapes, codes of any size.
        #[test]
        fn the_direct_text_is_serde_jsons(v in proptest::collection::vec(verdict(), 0..12)) {
            prop_assert_eq!(Stored(&v).to_json(), store(&v));
        }
    }
}
