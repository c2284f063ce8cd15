//! A rule's verdict: the same shape everywhere it appears (PRODUCT.md, "Dry run").

use serde::{Deserialize, Serialize};
use std::borrow::Cow;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleOutcome {
    Pass,
    Refuse,
    Warn,
}

/// A rule's name and most details are fixed texts, borrowed rather than copied: every send
/// makes one verdict per rule and keeps them with its message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    pub rule: Cow<'static, str>,
    pub outcome: RuleOutcome,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub code: Option<i64>,
    pub details: Cow<'static, str>,
}

impl Verdict {
    pub fn pass(rule: &'static str, details: impl Into<Cow<'static, str>>) -> Self {
        Verdict {
            rule: Cow::Borrowed(rule),
            outcome: RuleOutcome::Pass,
            code: None,
            details: details.into(),
        }
    }
    pub fn refuse(rule: &'static str, code: i64, details: impl Into<Cow<'static, str>>) -> Self {
        Verdict {
            rule: Cow::Borrowed(rule),
            outcome: RuleOutcome::Refuse,
            code: Some(code),
            details: details.into(),
        }
    }
    pub fn warn(
        rule: &'static str,
        code: Option<i64>,
        details: impl Into<Cow<'static, str>>,
    ) -> Self {
        Verdict {
            rule: Cow::Borrowed(rule),
            outcome: RuleOutcome::Warn,
            code,
            details: details.into(),
        }
    }
}
