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
