//! The consent (opt-in) registry: who agreed to receive what from which business, with proof.
//! Revocation never deletes: it stamps the record, so the history answers a complaint.

use crate::{Scope, StoreResult};
use async_trait::async_trait;
use greenlight_domain::Millis;
use serde::Serialize;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct OptIn {
    pub id: String,
    pub waba_id: String,
    pub wa_id: String,
    /// `marketing`, `utility` or `all`.
    pub scope: String,
    pub source: String,
    pub proof: String,
    /// Unix seconds.
    pub captured_at: i64,
    pub recorded_by: String,
    /// `active` or `revoked`.
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revocation_proof: Option<String>,
    #[serde(skip)]
    pub seq: i64,
}

#[derive(Debug, Clone)]
pub struct NewOptIn {
    pub wa_id: String,
    pub scope: String,
    pub source: String,
    pub proof: String,
    pub captured_at: Millis,
    pub recorded_by: String,
}

#[derive(Debug, Clone, Default)]
pub struct OptInFilter {
    pub wa_id: Option<String>,
    pub scope: Option<String>,
    /// Include revoked records (history).
    pub include_revoked: bool,
}

#[derive(Debug, Clone)]
pub struct Revocation {
    pub wa_id: String,
    /// `None`: every scope.
    pub scope: Option<String>,
    pub by: String,
    pub proof: Option<String>,
    pub now: Millis,
}

#[async_trait]
pub trait ConsentStore: Send + Sync {
    /// Records opt-ins atomically: all of them or none.
    async fn record_opt_ins(
        &self,
        scope: &Scope,
        waba_id: &str,
        items: Vec<NewOptIn>,
        now: Millis,
    ) -> StoreResult<Vec<OptIn>>;
    async fn list_opt_ins(
        &self,
        scope: &Scope,
        waba_id: &str,
        filter: OptInFilter,
        limit: usize,
        after: Option<i64>,
    ) -> StoreResult<(Vec<OptIn>, bool)>;
    /// Revokes the active records of a customer; returns how many.
    async fn revoke_opt_ins(
        &self,
        scope: &Scope,
        waba_id: &str,
        r: Revocation,
    ) -> StoreResult<usize>;
}
