//! Message templates: the pure template engine (cloud-api-facts.md §1.9, §2.3, §3).
//!
//! - [`parse_create`]: the synchronous answer of `POST /{waba-id}/message_templates` — a
//!   [`TemplateDef`] or Meta's refusal (code 100, subcodes 2388040 characters exceeded,
//!   2388047 header format, 2388072 body format, 2388073 footer format, 2388293 too many
//!   variables, 2388299 leading/trailing variable; §2.3, §3.1–§3.5).
//! - [`lint`]: every finding at once — the same create-time rules, plus what the review would
//!   say ([`Stage::Review`]).
//! - [`review()`]: the asynchronous review — format problems Meta catches at review, content
//!   rules ([`content_rules`]), and the category judgement with its signals (§3.4, §3.9, §3.10).
//! - [`render()`]: send time — checks a send's `template.components` against the template and
//!   renders what the customer reads (§1.9).
//! - [`is_duplicate_content`]: Meta's duplicate rule (same body and footer wording, §3.4).
//!
//! `parse_create` and `lint` run one walk over the request (`create::analyze`); the review
//! and `lint` run the same content and category rules. No I/O, no clock: same input, same
//! answer.
//!
//! Decisions where Meta's behaviour is UNCONFIRMED (§15), all greenlight's:
//! - Variable ratio: more variables than words of fixed text is refused at create (2388293);
//!   fewer than two words per variable is rejected at review (INVALID_FORMAT, `TPL-VAR-DENSITY`).
//! - Header text: at most one variable; no newline or emoji.
//! - Malformed or non-sequential variables and missing/mismatched examples are refused at
//!   create with the component's format subcode (2388047 header / 2388072 body).
//! - Button-rule refusals carry code 100 without subcode, except label length (2388040).
//! - Custom body text in an AUTHENTICATION template is accepted at create and judged at review
//!   (INCORRECT_CATEGORY unless it is a bare one-time code).
//! - `to_json` writes OTP and COPY_CODE buttons in their create shape, and authentication
//!   presets as text plus their flags.
//! - Hydrated body limit at send: 1024 with other components, 32768 when the body is alone.

mod auth;
mod buttons;
mod category;
pub mod content;
mod create;
mod finding;
pub mod language;
mod model;
mod parts;
mod placeholder;
mod render;
mod review;
mod text;

pub use category::Signal;
pub use content::{content_rules, ContentRule, Matcher};
pub use finding::{format_rules, rules, subcode, Finding, RuleDoc, Severity, Stage};
pub use model::{
    Body, Button, Category, Components, Examples, FlowRef, Footer, Header, MediaFormat,
    NamedExample, OtpButton, OtpType, ParameterFormat, SupportedApp, TemplateDef,
};
pub use placeholder::VarKey;
pub use render::{render, Prepared, Rendered};
pub use review::{review, Decision, ReviewOutcome};

use crate::ApiError;
use serde_json::Value;

/// Validates a create request (`POST /{waba-id}/message_templates` body) as Meta does
/// synchronously: the first create-stage error of [`lint`] as an [`ApiError`], or the template.
pub fn parse_create(body: &Value) -> Result<TemplateDef, ApiError> {
    let analysis = create::analyze(body);
    match analysis.findings.iter().find(|f| f.is_create_error()) {
        Some(first) => Err(first.to_api_error()),
        None => Ok(analysis.def),
    }
}

/// Every finding on a create request: create-stage refusals in request order, then what the
/// review would report (content rules, then category rules). Review findings are computed on
/// the best reading of the request, so they appear even when the request would be refused.
pub fn lint(body: &Value) -> Vec<Finding> {
    let analysis = create::analyze(body);
    let mut findings = analysis.findings;
    if body.is_object() {
        findings.extend(content::findings(&analysis.def));
        if analysis.category_known && !analysis.def.body_text().trim().is_empty() {
            let judgement = category::judge(&analysis.def);
            findings.extend(category::findings(&analysis.def, &judgement));
        }
    }
    findings
}

/// Meta's duplicate rule (§3.4): same body and footer wording (whitespace, letter case and
/// variable names aside). Never true for AUTHENTICATION templates, whose text is a preset.
pub fn is_duplicate_content(a: &TemplateDef, b: &TemplateDef) -> bool {
    if a.category == Category::Authentication || b.category == Category::Authentication {
        return false;
    }
    let wording = |d: &TemplateDef| {
        (
            normalize(&d.body_text()),
            d.footer_text().map(|f| normalize(&f)),
        )
    };
    wording(a) == wording(b)
}

fn normalize(s: &str) -> String {
    let scanned = placeholder::scan(s);
    text::squash_ws(&scanned.hydrate(|_| "{{}}")).to_lowercase()
}

#[cfg(test)]
mod tests;
