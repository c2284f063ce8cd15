//! The compliance back office: enforcement (violations, restrictions, disable, appeals),
//! business verification and the messaging-limit tier, as the HTTP layer reads and drives them.
//! The per-send rules live in the send path; the pure rules in `greenlight_domain::policy`.

use crate::{Scope, StoreResult};
use async_trait::async_trait;
use greenlight_domain::policy::enforcement::AppealDecision;
use greenlight_domain::Millis;
use serde::Serialize;

/// A violation on record (times in unix seconds).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ViolationRecord {
    pub id: String,
    /// `ignored_opt_out` | `persistent_red_quality` | `template_disabled_for_quality` |
    /// `policy_violation`.
    pub kind: String,
    pub violation_type: String,
    pub evidence: String,
    pub severe: bool,
    pub timestamp: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reversed_at: Option<i64>,
    /// `pending` | `reversed` | `unchanged` once appealed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub appeal_status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub appeal_reason: Option<String>,
}

/// A restriction (in force or past); `expiration` in unix seconds.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RestrictionRecord {
    pub restriction_type: String,
    pub expiration: i64,
    pub active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub violation_id: Option<String>,
    pub created_at: i64,
}

/// What enforcement holds against a business.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct EnforcementView {
    pub business_id: String,
    pub disabled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disabled_at: Option<i64>,
    /// Restrictions in force now.
    pub restrictions: Vec<RestrictionRecord>,
    /// Every restriction ever imposed, newest first.
    pub restriction_history: Vec<RestrictionRecord>,
    /// Newest first.
    pub violations: Vec<ViolationRecord>,
    /// Violations that count for the escalation ladder (not reversed).
    pub strikes: usize,
}

/// An operator-filed policy violation.
#[derive(Debug, Clone)]
pub struct NewViolation {
    pub violation_type: String,
    pub evidence: String,
    /// `None`: severe when the type is one of Meta's "severe harm" types.
    pub severe: Option<bool>,
}

/// Business verification and the messaging limit of a business portfolio.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct VerificationView {
    pub business_id: String,
    /// `not_verified` | `pending` | `verified` | `rejected`.
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub submitted_at: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decided_at: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub messaging_limit_tier: String,
    pub max_templates: u32,
    pub max_phone_numbers: u32,
}

/// The messaging limit as it stands: tier, usage, next evaluation.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LimitView {
    pub business_id: String,
    pub tier: String,
    /// `null` when unlimited.
    pub limit: Option<u64>,
    /// Distinct customers reached by business-initiated messages in the moving 24 h.
    pub used_24h: u64,
    /// Unix seconds of the next 6-hourly evaluation.
    pub next_evaluation_at: i64,
    /// The worst quality rating of the business's numbers.
    pub quality_rating: String,
}

#[async_trait]
pub trait ComplianceStore: Send + Sync {
    /// Operator: records a policy violation and applies the escalation ladder.
    /// `Ok(None)` when the business does not exist.
    async fn file_violation(
        &self,
        business_id: &str,
        v: NewViolation,
        now: Millis,
    ) -> StoreResult<Option<ViolationRecord>>;
    /// Violations, restrictions and the disabled flag. `Ok(None)` when no such business.
    async fn enforcement(&self, scope: &Scope, now: Millis)
        -> StoreResult<Option<EnforcementView>>;
    /// Operator: ends restrictions in force now (one type, or all). Returns how many.
    async fn lift_restrictions(
        &self,
        scope: &Scope,
        restriction_type: Option<String>,
        now: Millis,
    ) -> StoreResult<usize>;
    /// Tenant: appeals one of its violations (90 days).
    async fn appeal_violation(
        &self,
        scope: &Scope,
        violation_id: &str,
        reason: String,
        now: Millis,
    ) -> StoreResult<Option<ViolationRecord>>;
    /// Operator: decides an appeal. `Ok(None)` when no such violation.
    async fn decide_appeal(
        &self,
        violation_id: &str,
        decision: AppealDecision,
        now: Millis,
    ) -> StoreResult<Option<ViolationRecord>>;

    /// Business verification status. `Ok(None)` when no such business.
    async fn verification(&self, scope: &Scope) -> StoreResult<Option<VerificationView>>;
    /// Tenant: submits the business for verification (→ `pending`).
    async fn submit_verification(
        &self,
        scope: &Scope,
        note: Option<String>,
        now: Millis,
    ) -> StoreResult<VerificationView>;
    /// Operator: decides a pending verification. `Ok(None)` when no such business.
    async fn decide_verification(
        &self,
        scope: &Scope,
        approve: bool,
        reason: Option<String>,
        now: Millis,
    ) -> StoreResult<Option<VerificationView>>;
    /// The messaging limit: tier, usage, next evaluation.
    async fn messaging_limit(&self, scope: &Scope, now: Millis) -> StoreResult<LimitView>;
}
