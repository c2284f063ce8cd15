//! Gateway mode (docs/GATEWAY.md): greenlight in front of Meta's Graph API.
//!
//! The store keeps, per tenant, the upstream credentials (sealed by the server: the store never
//! sees a Meta token or app secret in clear), runs a send's decision in two steps around the
//! upstream call (reserve, then commit or release), and learns from Meta's webhooks.
//!
//! The ids of a gateway tenant's WABA and phone numbers are Meta's own: the business keeps every
//! path and only changes the base URL and the token.

use crate::{CreatedTenant, NewTenant, Scope, SendCommand, StoreResult};
use async_trait::async_trait;
use greenlight_domain::policy::window::WindowState;
use greenlight_domain::policy::Verdict;
use greenlight_domain::Millis;
use serde_json::Value;

/// The upstream credentials of a tenant, as stored: sealed values and a hash.
#[derive(Clone, PartialEq, Eq)]
pub struct UpstreamSecrets {
    /// The business's Meta access token, sealed (encrypted) by the server.
    pub access_token_sealed: String,
    /// The Meta app's secret (verifies `X-Hub-Signature-256` of Meta's webhooks), sealed.
    pub app_secret_sealed: String,
    /// Hex SHA-256 of the verify token Meta presents in its webhook handshake.
    pub verify_token_hash: String,
}

impl std::fmt::Debug for UpstreamSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UpstreamSecrets(<redacted>)")
    }
}

/// One tenant of a gateway: greenlight's tenant with Meta's ids and credentials.
#[derive(Debug, Clone)]
pub struct NewGatewayTenant {
    /// greenlight's id of the business (chosen by the caller, which seals the secrets for it).
    pub business_id: String,
    /// Name, verification, numbers (display number, verified name) and the business's own
    /// callback for relayed webhooks (already verified by the caller).
    pub tenant: NewTenant,
    /// Meta's WABA id.
    pub waba_id: String,
    /// Meta's phone number ids, one per `tenant.phone_numbers`, in order.
    pub phone_ids: Vec<String>,
    pub secrets: UpstreamSecrets,
    /// The portfolio's messaging limit as Meta reports it (`TIER_250` …), if known.
    pub messaging_limit_tier: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Upstream {
    pub scope: Scope,
    pub waba_id: String,
    pub secrets: UpstreamSecrets,
}

/// A decided, allowed send whose effects are held while the upstream is asked.
#[derive(Debug, Clone)]
pub struct Reservation {
    pub business_id: String,
    /// The `Idempotency-Key`, held as pending.
    pub key: Option<String>,
    pub phone_id: String,
    pub waba_id: String,
    pub wa_id: String,
    pub msg_type: String,
    pub content: Value,
    pub text: Option<String>,
    pub category: Option<String>,
    /// JSON of the pricing, as stored with the message.
    pub pricing: String,
    pub verdicts: Vec<Verdict>,
    /// The window the decision read, and the window after this message when it changes it
    /// (applied at commit only if no inbound message moved the window in between).
    pub window_before: WindowState,
    pub window_after: Option<WindowState>,
    pub biz_opaque: Option<String>,
    /// The reach-log and marketing-log rows taken (undone on release).
    pub reach_at: Option<Millis>,
    pub marketing_at: Option<Millis>,
    pub now: Millis,
}

/// What a reservation found.
#[derive(Debug, Clone)]
pub enum Reserved {
    /// The same `Idempotency-Key` and body were answered before: the stored answer.
    Replay { status: u16, body: Value },
    /// Allowed: forward, then commit or release.
    Go(Box<Reservation>),
}

/// Meta's answer to a forwarded send.
#[derive(Debug, Clone)]
pub struct UpstreamAnswer {
    pub status: u16,
    pub body: Value,
}

/// One change of a verified webhook from Meta.
#[derive(Debug, Clone)]
pub struct IngestChange {
    pub field: String,
    pub value: Value,
}

/// A template as Meta answered or reported it, mirrored locally.
#[derive(Debug, Clone)]
pub struct MirroredTemplate {
    pub waba_id: String,
    pub id: String,
    pub name: String,
    pub language: String,
    pub category: String,
    pub status: String,
    /// The create body as sent (the send path renders and checks parameters against it).
    pub definition: Value,
}

#[async_trait]
pub trait GatewayStore: Send + Sync {
    /// Creates a tenant whose WABA and number ids are Meta's, with its sealed credentials.
    /// Ids already registered are refused (100).
    async fn gateway_create_tenant(
        &self,
        t: NewGatewayTenant,
        now: Millis,
    ) -> StoreResult<CreatedTenant>;
    /// Replaces a tenant's upstream credentials (rotation).
    async fn set_upstream(
        &self,
        scope: &Scope,
        secrets: UpstreamSecrets,
        now: Millis,
    ) -> StoreResult<()>;
    async fn upstream(&self, scope: &Scope) -> StoreResult<Option<Upstream>>;
    /// Operator-only (webhook ingest): the gateway tenant owning a WABA or phone number id.
    async fn upstream_by_object(&self, id: &str) -> StoreResult<Option<Upstream>>;
    /// Does any tenant's verify token have this hash? (Meta's GET handshake.)
    async fn verify_token_known(&self, hash: &str) -> StoreResult<bool>;

    /// Idempotency check, decision and reservation of one send, in one unit of work. A refusal
    /// (audited) is `StoreError::Api`; asynchronous failures (131047…) are refused too, since
    /// the gateway's purpose is that Meta never sees them. A key whose first request is still
    /// in flight (younger than `in_flight_ms`) answers a transient error.
    async fn gateway_reserve(
        &self,
        scope: &Scope,
        cmd: SendCommand,
        in_flight_ms: Millis,
    ) -> StoreResult<Reserved>;
    /// Meta answered: a 2xx records the message under Meta's wamid with its verdicts, the
    /// window change and the idempotency answer; any other answer releases the reservation and
    /// audits Meta's refusal.
    async fn gateway_commit(
        &self,
        scope: &Scope,
        r: Reservation,
        answer: UpstreamAnswer,
        now: Millis,
    ) -> StoreResult<()>;
    /// No answer from Meta (timeout, connection error) or a 5xx: undo the reservation and free
    /// the key, so that the caller's retry sends once.
    async fn gateway_release(&self, scope: &Scope, r: Reservation) -> StoreResult<()>;

    /// Applies the changes of one verified webhook to the tenant's state and queues each for
    /// relay to the business's callback, in one transaction. Returns how many changed state.
    async fn gateway_ingest(
        &self,
        scope: &Scope,
        waba_id: &str,
        changes: Vec<IngestChange>,
        now: Millis,
    ) -> StoreResult<usize>;
    /// Inserts or updates a template as Meta answered it (create, edit, list).
    async fn gateway_mirror_template(
        &self,
        scope: &Scope,
        t: MirroredTemplate,
        now: Millis,
    ) -> StoreResult<()>;
    /// Remembers that an object of Meta's (a media id) belongs to the tenant, so that
    /// forwarded calls on it are allowed.
    async fn gateway_note_object(
        &self,
        scope: &Scope,
        id: &str,
        kind: &str,
        now: Millis,
    ) -> StoreResult<()>;
    /// Is `id` a Meta object of the tenant (noted media, mirrored template)?
    async fn gateway_owns_object(&self, scope: &Scope, id: &str) -> StoreResult<bool>;
}
