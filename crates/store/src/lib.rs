//! The store: one trait, [`Store`], and its SQL backend over SQLite or PostgreSQL.
//!
//! Rules are not implemented here. A write that depends on state (a send, an inbound message)
//! runs as one unit of work inside the backend: load the facts, call the pure engine in
//! `greenlight_domain::policy`, write the effects and the webhook events it implies. The
//! backend guarantees that units of work do not interleave where they could change each other's
//! outcome (one writer thread that group-commits; on PostgreSQL one per business shard and one
//! for instance-wide work, each batch holding advisory locks across nodes) and that an `Ok`
//! means committed.
//!
//! Every method that reads or writes tenant data takes the tenant's [`Scope`]: there is no
//! unscoped lookup to forget a filter on.
#![forbid(unsafe_code)]

pub mod compliance;
pub mod consent;
pub mod db;
mod events;
pub mod gateway;
pub mod ids;
mod keys;
pub mod postgres;
pub mod sqlite;
pub mod templates;
#[cfg(test)]
mod testkit;
pub mod transfer;
mod types;
pub mod verdicts;
mod webhooks;

pub use compliance::{
    ComplianceStore, EnforcementView, LimitView, NewViolation, RestrictionRecord, VerificationView,
    ViolationRecord,
};
pub use consent::{ConsentStore, NewOptIn, OptIn, OptInFilter, Revocation};
pub use gateway::{
    GatewayStore, IngestChange, MirroredTemplate, NewGatewayTenant, Reservation, Reserved,
    Upstream, UpstreamAnswer, UpstreamSecrets,
};
pub use templates::{
    Cursor, NewTemplate, TemplateDeletion, TemplateEdit, TemplateFilter, TemplatePage,
    TemplateRecord, TemplateStore,
};
pub use types::*;
pub use webhooks::*;

use async_trait::async_trait;
use greenlight_domain::{ApiError, Millis};
use serde_json::Value;

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// A refusal for the client, in Meta's terms.
    #[error("{0}")]
    Api(ApiError),
    /// The database cannot be reached or is overloaded: transient, nothing was committed.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// A bug or corrupted data. Logged; the client sees an opaque 500.
    #[error("store internal error: {0}")]
    Internal(String),
}

impl From<ApiError> for StoreError {
    fn from(e: ApiError) -> Self {
        StoreError::Api(e)
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

#[async_trait]
pub trait Store:
    TemplateStore + ConsentStore + WebhookStore + ComplianceStore + GatewayStore + Send + Sync + 'static
{
    /// Is the database reachable? (`/readyz`)
    async fn ping(&self) -> StoreResult<()>;

    // ---- the instance ------------------------------------------------------------------
    /// The virtual clock's offset from wall time (sandbox), persisted across restarts.
    async fn clock_offset(&self) -> StoreResult<Millis>;
    async fn set_clock_offset(&self, offset: Millis) -> StoreResult<()>;
    async fn tenant_count(&self) -> StoreResult<u64>;
    /// Operator-only: the tenant that owns a phone number (for admin-token sandbox calls).
    async fn scope_of_phone(&self, phone_id: &str) -> StoreResult<Option<Scope>>;
    /// Operator-only: the tenant that owns a media object (for capability URLs).
    async fn scope_of_media(&self, media_id: &str) -> StoreResult<Option<Scope>>;
    /// A random secret of this installation, created on first use and kept (e.g. the key of
    /// media URL signatures, so URLs survive a restart).
    async fn instance_secret(&self, name: &str) -> StoreResult<String>;
    /// Operator-only: the tenant that owns a WABA (for command-line tools).
    async fn scope_of_waba(&self, waba_id: &str) -> StoreResult<Option<Scope>>;

    // ---- tenants and auth --------------------------------------------------------------
    async fn create_tenant(&self, t: NewTenant, now: Millis) -> StoreResult<CreatedTenant>;
    /// The tenant a token (by its hash) belongs to, with its WABAs and numbers.
    async fn principal_by_token_hash(&self, hash: &str) -> StoreResult<Option<Principal>>;
    async fn phone_number(&self, scope: &Scope, id: &str) -> StoreResult<Option<PhoneNumber>>;
    async fn waba(&self, scope: &Scope, id: &str) -> StoreResult<Option<Waba>>;
    async fn phone_numbers_of_waba(
        &self,
        scope: &Scope,
        waba_id: &str,
    ) -> StoreResult<Vec<PhoneNumber>>;
    async fn business_profile(&self, scope: &Scope, phone_id: &str) -> StoreResult<Value>;
    async fn set_business_profile(
        &self,
        scope: &Scope,
        phone_id: &str,
        patch: Value,
    ) -> StoreResult<()>;
    async fn tenant_settings(&self, scope: &Scope) -> StoreResult<TenantSettings>;
    async fn set_tenant_settings(&self, scope: &Scope, s: TenantSettings) -> StoreResult<()>;

    // ---- messaging ---------------------------------------------------------------------
    /// Decide and, if accepted, commit one outbound message with its statuses and events.
    async fn send(&self, scope: &Scope, cmd: SendCommand) -> StoreResult<SendResult>;
    /// Evaluate a send without sending anything.
    async fn check(&self, scope: &Scope, cmd: SendCommand) -> StoreResult<CheckResult>;
    /// The business marks a customer's message as read. `false` when no such message exists.
    async fn mark_read(
        &self,
        scope: &Scope,
        phone_id: &str,
        message_id: &str,
        now: Millis,
    ) -> StoreResult<bool>;
    /// A simulated customer writes to a business number.
    async fn inbound(&self, scope: &Scope, cmd: InboundCommand) -> StoreResult<String>;
    /// A simulated customer acts (read, block, report, stop_marketing…).
    async fn customer_action(&self, scope: &Scope, cmd: CustomerAction) -> StoreResult<Value>;
    /// Instance-wide simulated user settings (e.g. `on_whatsapp`).
    async fn set_user(&self, wa_id: &str, on_whatsapp: bool, now: Millis) -> StoreResult<Value>;
    /// A message as it stands at `now` (a delivery decided at the send shows from its time on).
    async fn message(
        &self,
        scope: &Scope,
        wamid: &str,
        now: Millis,
    ) -> StoreResult<Option<MessageRecord>>;
    /// A thread's messages as they stand at `now`, in time order.
    async fn thread(
        &self,
        scope: &Scope,
        phone_id: &str,
        wa_id: &str,
        now: Millis,
    ) -> StoreResult<Vec<MessageRecord>>;
    /// Run whatever has fallen due by `now` (delivered statuses, …), about `limit` of it.
    /// Returns how much ran: fewer than `limit` when nothing more is due. On SQLite, where one
    /// writer runs every job, a delivery task counts its messages (a job takes tasks whole until
    /// they hold `limit` messages); on PostgreSQL each task counts one.
    async fn run_due(&self, now: Millis, limit: usize) -> StoreResult<usize>;
    /// The audit trail of a tenant, oldest first, in pages.
    async fn audit(&self, scope: &Scope, q: AuditQuery) -> StoreResult<Vec<AuditEvent>>;

    /// Block Users API: block (`true`) or unblock customers of a number; returns, per wa_id,
    /// whether it changed. Blocking more than 64k users answers 139101.
    async fn set_blocked(
        &self,
        scope: &Scope,
        phone_id: &str,
        wa_ids: Vec<String>,
        block: bool,
        now: Millis,
    ) -> StoreResult<Vec<String>>;
    async fn blocked(
        &self,
        scope: &Scope,
        phone_id: &str,
        limit: usize,
        after: Option<String>,
    ) -> StoreResult<Vec<String>>;

    /// The tenant asks for a new display name (`POST /{phone-number-id}` `new_display_name`):
    /// it goes to review (`new_name_status` `PENDING_REVIEW`).
    async fn request_display_name(
        &self,
        scope: &Scope,
        phone_id: &str,
        name: &str,
        now: Millis,
    ) -> StoreResult<()>;
    /// The operator decides a display-name review, with the `phone_number_name_update` webhook.
    async fn decide_display_name(
        &self,
        scope: &Scope,
        phone_id: &str,
        approve: bool,
        reason: Option<String>,
        now: Millis,
    ) -> StoreResult<PhoneNumber>;

    // ---- media -------------------------------------------------------------------------
    async fn insert_media(&self, scope: &Scope, m: MediaRecord) -> StoreResult<()>;
    async fn media(&self, scope: &Scope, id: &str) -> StoreResult<Option<MediaRecord>>;
    async fn delete_media(&self, scope: &Scope, id: &str) -> StoreResult<bool>;
}
