//! The asynchronous review of a submitted template (cloud-api-facts.md §3.4, §3.9, §3.10):
//! format problems Meta catches at review, content rules, and the category judgement.
//! Deterministic: the outcome depends on the template alone.
//!
//! Order of decision:
//! 1. The create-time rules again (a template built in code, or stored before a rule existed,
//!    may break them): the first error rejects as `INVALID_FORMAT`.
//! 2. Content rules in table order ([`super::content::content_rules`]): the first match
//!    rejects with the rule's reason (`SCAM`, `ABUSIVE_CONTENT`, `INVALID_FORMAT`,
//!    `TAG_CONTENT_MISMATCH`).
//! 3. Category rules: `INCORRECT_CATEGORY` for codes outside AUTHENTICATION and non-codes in
//!    it; a UTILITY template that reads as marketing is approved as MARKETING.
//!
//! `rejection_info` is set for `INVALID_FORMAT` rejections only, as Meta does (§3.9); the
//! signals explain every decision (on a rejection, warnings such as a re-categorisation that
//! will not happen are left out).

use super::category::{self, Signal};
use super::content::{self, INVALID_FORMAT};
use super::create;
use super::finding::{Severity, Stage};
use super::model::{Category, TemplateDef};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Decision {
    Approved,
    Rejected,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Approved => "APPROVED",
            Decision::Rejected => "REJECTED",
        }
    }
}

/// The review's verdict, as the `message_template_status_update` webhook reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewOutcome {
    pub decision: Decision,
    /// Meta's `rejected_reason`: `"NONE"` when approved.
    pub reason: &'static str,
    /// `(reason, recommendation)` for `rejection_info` (INVALID_FORMAT rejections).
    pub rejection_info: Option<(String, String)>,
    /// The category the template ends up in (the submitted one unless re-categorised).
    pub final_category: Category,
    pub category_changed: bool,
    /// Why: the category signals, then every review rule that fired.
    pub signals: Vec<Signal>,
}

pub fn review(def: &TemplateDef) -> ReviewOutcome {
    let recheck = create::analyze(&def.to_create_json());
    if let Some(err) = recheck.findings.iter().find(|f| f.is_create_error()) {
        return ReviewOutcome {
            decision: Decision::Rejected,
            reason: INVALID_FORMAT,
            rejection_info: Some((
                format!(
                    "Your template does not meet the format rules: {}",
                    err.message
                ),
                err.fix.clone(),
            )),
            final_category: def.category,
            category_changed: false,
            signals: vec![Signal {
                rule: err.rule,
                description: err.details(),
            }],
        };
    }
    let judgement = category::judge(def);
    let mut findings = content::findings(def);
    findings.extend(category::findings(def, &judgement));
    let rejection = findings.iter().find(|f| f.is_review_error());
    let mut signals = judgement.signals.clone();
    signals.extend(
        findings
            .iter()
            .filter(|f| rejection.is_none() || f.severity == Severity::Error)
            .map(|f| Signal {
                rule: f.rule,
                description: format!("{}: {}", f.field, f.message),
            }),
    );

    if let Some(first) = rejection {
        let reason = match first.stage {
            Stage::Review { reason } => reason,
            Stage::Create { .. } => INVALID_FORMAT,
        };
        let rejection_info = (reason == INVALID_FORMAT)
            .then(|| content::rule(first.rule))
            .flatten()
            .map(|r| (r.explanation.to_string(), r.recommendation.to_string()));
        return ReviewOutcome {
            decision: Decision::Rejected,
            reason,
            rejection_info,
            final_category: def.category,
            category_changed: false,
            signals,
        };
    }
    let final_category = match def.category {
        Category::Utility if judgement.category == Category::Marketing => Category::Marketing,
        submitted => submitted,
    };
    ReviewOutcome {
        decision: Decision::Approved,
        reason: "NONE",
        rejection_info: None,
        final_category,
        category_changed: final_category != def.category,
        signals,
    }
}
