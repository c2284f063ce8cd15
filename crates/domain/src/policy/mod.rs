//! The policy engine: one module per rule, each pure over (state, now), each named for the rule
//! it models. [`engine::decide_send`] runs them in order and returns every verdict, so a refusal
//! can always be explained (`GET /greenlight/v1/messages/{wamid}`, `…/messages/check`).

pub mod compliance;
pub mod enforcement;
pub mod engine;
pub mod keywords;
pub mod marketing_cap;
pub mod messaging_limit;
pub mod opt_in;
pub mod pacing;
pub mod quality;
pub mod template_pausing;
pub mod verdict;
pub mod verification;
pub mod window;

pub use engine::{decide_send, Decision, Outcome, SendFacts, TemplateFacts, TemplateStatus};
pub use verdict::{RuleOutcome, Verdict};
