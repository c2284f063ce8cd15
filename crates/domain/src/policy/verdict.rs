//! A rule's verdict: the same shape everywhere it appears (PRODUCT.md, "Dry run").

use serde::{Deserialize, Serialize};
use std::borrow::Cow;

/// A piece of a [`reason`]: text as is, or a whole number in decimal.
#[derive(Clone, Copy)]
pub(crate) enum Part<'a> {
    Text(&'a str),
    Int(i64),
    Count(u64),
}

/// A reason made of `parts`, in one allocation (room for the longest numbers): the pass
/// reasons a send writes every time, where `format!` took ~700 instructions each on the
/// store's writer (docs/BENCHMARKS.md, thirty-fourth round). The text is what `format!` would
/// write.
pub(crate) fn reason(parts: &[Part<'_>]) -> String {
    let room = parts
        .iter()
        .map(|p| match p {
            Part::Text(t) => t.len(),
            Part::Int(_) | Part::Count(_) => 20,
        })
        .sum();
    let mut out = String::with_capacity(room);
    let mut digits = itoa::Buffer::new();
    for part in parts {
        match *part {
            Part::Text(t) => out.push_str(t),
            Part::Int(n) => out.push_str(digits.format(n)),
            Part::Count(n) => out.push_str(digits.format(n)),
        }
    }
    out
}

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

#[cfg(test)]
mod tests {
    use super::*;

    /// A reason is the text `format!` writes for the same pieces, numbers at their extremes too.
    #[test]
    fn a_reason_is_what_format_writes() {
        for (n, c) in [
            (0, 0),
            (-1, 1),
            (i64::MIN, u64::MAX),
            (i64::MAX, 1_000_000),
            (1764979200, 42),
        ] {
            let got = reason(&[
                Part::Text("a "),
                Part::Int(n),
                Part::Text(""),
                Part::Count(c),
                Part::Text(" café"),
            ]);
            assert_eq!(got, format!("a {n}{c} café"));
        }
        assert_eq!(reason(&[]), "");
    }
}
