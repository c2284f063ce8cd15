//! A rule's verdict: the same shape everywhere it appears (PRODUCT.md, "Dry run").

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleOutcome {
    Pass,
    Refuse,
    Warn,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    pub rule: String,
    pub outcome: RuleOutcome,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub code: Option<i64>,
    pub details: String,
}

impl Verdict {
    pub fn pass(rule: &str, details: impl Into<String>) -> Self {
        Verdict {
            rule: rule.to_string(),
            outcome: RuleOutcome::Pass,
            code: None,
            details: details.into(),
        }
    }
    pub fn refuse(rule: &str, code: i64, details: impl Into<String>) -> Self {
        Verdict {
            rule: rule.to_string(),
            outcome: RuleOutcome::Refuse,
            code: Some(code),
            details: details.into(),
        }
    }
    pub fn warn(rule: &str, code: Option<i64>, details: impl Into<String>) -> Self {
        Verdict {
            rule: rule.to_string(),
            outcome: RuleOutcome::Warn,
            code,
            details: details.into(),
        }
    }
}

/// How a message's verdicts are stored: each verdict a short array instead of an object.
///
/// Every message keeps the verdicts that let it through, so they are written with every send
/// and, in SQLite, again with the row's status update. As objects they were two thirds of an
/// outbound row (808 of ~1,250 bytes for an in-window text); stored this way, 102
/// (docs/BENCHMARKS.md, eighteenth round). A verdict is `[rule, outcome, details]`, with a fourth
/// element, the code, when it has one:
///
/// - `rule`: an index into [`RULES`], or the rule's name when it is not listed;
/// - `outcome`: 0 pass, 1 refuse, 2 warn;
/// - `details`: an index into [`TEXTS`], or the text itself when it is not listed.
///
/// Both lists only grow: an index, once written, keeps its meaning in every database that holds
/// it (a test pins them). A text or rule name that changes is simply stored in full until it is
/// listed. [`from_stored`] reads this form and the objects written before it.
pub mod stored {
    use super::{RuleOutcome, Verdict};
    use serde::de::Error as _;
    use serde::ser::{SerializeSeq, SerializeTuple};
    use serde::{Deserialize, Serialize, Serializer};
    use std::collections::HashMap;
    use std::sync::OnceLock;

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

    fn position(
        list: &'static [&'static str],
        index: &OnceLock<HashMap<&'static str, u16>>,
        s: &str,
    ) -> Option<u16> {
        index
            .get_or_init(|| {
                list.iter()
                    .enumerate()
                    .map(|(i, s)| (*s, i as u16))
                    .collect()
            })
            .get(s)
            .copied()
    }

    fn rule_index(rule: &str) -> Option<u16> {
        static INDEX: OnceLock<HashMap<&'static str, u16>> = OnceLock::new();
        position(RULES, &INDEX, rule)
    }

    fn text_index(text: &str) -> Option<u16> {
        static INDEX: OnceLock<HashMap<&'static str, u16>> = OnceLock::new();
        position(TEXTS, &INDEX, text)
    }

    /// A listed string's index, or the string.
    enum Entry<'a> {
        Index(u16),
        Text(&'a str),
    }

    impl Entry<'_> {
        fn of(s: &str, index: fn(&str) -> Option<u16>) -> Entry<'_> {
            index(s).map_or(Entry::Text(s), Entry::Index)
        }
    }

    impl Serialize for Entry<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            match self {
                Entry::Index(i) => s.serialize_u16(*i),
                Entry::Text(t) => s.serialize_str(t),
            }
        }
    }

    struct One<'a>(&'a Verdict);

    impl Serialize for One<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let v = self.0;
            let mut t = s.serialize_tuple(if v.code.is_some() { 4 } else { 3 })?;
            t.serialize_element(&Entry::of(&v.rule, rule_index))?;
            t.serialize_element(&match v.outcome {
                RuleOutcome::Pass => 0u8,
                RuleOutcome::Refuse => 1,
                RuleOutcome::Warn => 2,
            })?;
            t.serialize_element(&Entry::of(&v.details, text_index))?;
            if let Some(code) = v.code {
                t.serialize_element(&code)?;
            }
            t.end()
        }
    }

    /// Verdicts in their stored form, for `serde_json::to_string`.
    pub struct Stored<'a>(pub &'a [Verdict]);

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
    enum Read {
        Index(u64),
        Text(String),
    }

    impl Read {
        fn resolve(self, list: &[&str], what: &str) -> String {
            match self {
                Read::Text(t) => t,
                // an index this build does not know: written by a newer greenlight
                Read::Index(i) => match list.get(i as usize) {
                    Some(s) => s.to_string(),
                    None => format!("({what} #{i} of a newer greenlight)"),
                },
            }
        }
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Item {
        Short(Read, u8, Read),
        Coded(Read, u8, Read, i64),
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
                let outcome = match outcome {
                    0 => RuleOutcome::Pass,
                    1 => RuleOutcome::Refuse,
                    2 => RuleOutcome::Warn,
                    n => return Err(serde_json::Error::custom(format!("verdict outcome {n}"))),
                };
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
        use crate::policy::{
            compliance, enforcement, marketing_cap, messaging_limit, opt_in, pacing, quality,
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
                assert!(rule_index(rule).is_some(), "{rule}");
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
                    rule,
                    outcome,
                    code,
                    details,
                })
        }

        proptest! {
            /// Whatever the verdicts, they read back as they were.
            #[test]
            fn verdicts_read_back_as_stored(v in proptest::collection::vec(verdict(), 0..12)) {
                prop_assert_eq!(from_stored(&store(&v)).unwrap(), v);
            }
        }
    }
}
