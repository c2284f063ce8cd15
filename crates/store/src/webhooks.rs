//! Webhook subscriptions and the delivery outbox, as a store trait of their own.
//!
//! **Subscriptions** model Meta's two levels (cloud-api-facts.md §10.6): the *app* subscription
//! (`/{app-id}/subscriptions`: callback URL, verify token, subscribed fields; empty fields mean
//! every field) and the *WABA ↔ app* link (`/{waba-id}/subscribed_apps`, with an optional
//! `override_callback_uri`). A tenant's own WABA is subscribed to its own app unless the tenant
//! unsubscribed it: greenlight creates both together, as Embedded Signup does. A phone number
//! may have its own callback too (`webhook_configuration`), first in precedence.
//!
//! **The outbox** holds one row per event, written in the same transaction as the state change
//! (`sqlite::ops::enqueue`). Delivery workers claim due rows with a *lease* (wall-clock ms, so a
//! sandbox clock advance cannot break a lease), run the HTTP attempt, and finish the row only
//! after the attempt is recorded. A claim increments `attempts`; finishing a failed attempt is
//! fenced on that number, so a worker whose lease expired cannot overwrite a newer claim.
//! Retry times (`next_attempt_at`) are virtual-clock ms, so retries fall due when the sandbox
//! clock is advanced.

use crate::{Scope, StoreResult};
use async_trait::async_trait;
use greenlight_domain::Millis;
use serde::Serialize;
use serde_json::Value;
use std::collections::HashMap;

/// An app: the signing secret of its webhooks and the tenant it belongs to.
#[derive(Debug, Clone)]
pub struct AppRecord {
    pub id: String,
    pub business_id: String,
    pub secret: String,
}

/// The app-level subscription for the `whatsapp_business_account` object.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AppSubscription {
    pub app_id: String,
    pub callback_url: String,
    #[serde(skip)]
    pub verify_token: String,
    /// Subscribed fields; empty = every field.
    pub fields: Vec<String>,
    pub created_at: Millis,
}

/// One app subscribed to a WABA (`/{waba-id}/subscribed_apps`).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct WabaSubscription {
    pub waba_id: String,
    pub app_id: String,
    pub override_callback_uri: Option<String>,
}

/// What a delivery worker asks for.
#[derive(Debug, Clone)]
pub struct ClaimRequest {
    /// Virtual now: rows with `next_attempt_at <= now` are due.
    pub now: Millis,
    /// Wall-clock now: rows whose lease ended before it are claimable.
    pub wall_now: Millis,
    /// Length of the lease given to claimed rows (wall ms).
    pub lease_ms: Millis,
    /// At most this many rows in total.
    pub limit: usize,
    /// At most this many rows in flight per callback URL…
    pub per_endpoint: usize,
    /// …given these already in flight (by URL).
    pub in_flight: HashMap<String, usize>,
}

/// A claimed event with everything needed to deliver it.
#[derive(Debug, Clone)]
pub struct ClaimedEvent {
    pub id: i64,
    pub business_id: String,
    pub waba_id: String,
    pub field: String,
    /// The change's `value`, as JSON text.
    pub payload: String,
    /// Event time: the envelope's `time`, identical on every attempt.
    pub created_at: Millis,
    /// Start of the retry window: creation, or the last replay.
    pub window_start: Millis,
    /// This attempt's number (1 for the first); fences the finishing write.
    pub attempt: i64,
    pub url: String,
    pub app_secret: String,
}

/// What became of an attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum AttemptOutcome {
    /// A 2xx: the event is done.
    Delivered,
    /// A failure; try again at this virtual time.
    Retry { next_attempt_at: Millis },
    /// A failure after the retry window: held for replay.
    Dead,
}

impl AttemptOutcome {
    pub fn as_str(&self) -> &'static str {
        match self {
            AttemptOutcome::Delivered => "delivered",
            AttemptOutcome::Retry { .. } => "retry",
            AttemptOutcome::Dead => "dead",
        }
    }
}

/// One HTTP attempt, as recorded.
#[derive(Debug, Clone)]
pub struct AttemptResult {
    pub outbox_id: i64,
    pub attempt: i64,
    pub url: String,
    /// Virtual time the attempt started.
    pub at: Millis,
    pub status_code: Option<u16>,
    pub latency_ms: i64,
    pub error: Option<String>,
    pub outcome: AttemptOutcome,
}

/// A delivery as the operator and the tenant see it.
#[derive(Debug, Clone, Serialize)]
pub struct DeliveryRecord {
    pub id: String,
    pub waba_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone_number_id: Option<String>,
    pub field: String,
    /// pending | delivered | dead | skipped
    pub state: String,
    pub attempts: i64,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds (meaningful while pending).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivered_at: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_status_code: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// The change's `value` (detail views only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
    /// Every attempt, oldest first (detail views only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempts_log: Option<Vec<AttemptRecord>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AttemptRecord {
    pub attempt: i64,
    /// Unix seconds (virtual clock).
    pub at: i64,
    pub url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_code: Option<u16>,
    pub latency_ms: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// delivered | retry | dead
    pub outcome: String,
}

/// Which deliveries to list: newest first, `before` an id (exclusive).
#[derive(Debug, Clone, Default)]
pub struct DeliveryFilter {
    pub state: Option<String>,
    pub field: Option<String>,
    pub before: Option<i64>,
    pub limit: usize,
}

#[async_trait]
pub trait WebhookStore: Send + Sync {
    // ---- subscriptions -----------------------------------------------------------------
    /// Authentication of an app token (`app_id|app_secret`): the app, whoever owns it.
    async fn app(&self, app_id: &str) -> StoreResult<Option<AppRecord>>;
    async fn app_subscription(
        &self,
        scope: &Scope,
        app_id: &str,
    ) -> StoreResult<Option<AppSubscription>>;
    /// Creates or replaces the app's subscription (the caller has run the handshake).
    async fn set_app_subscription(
        &self,
        scope: &Scope,
        sub: AppSubscription,
    ) -> StoreResult<AppSubscription>;
    /// Removes the subscription (callers narrow fields with `set_app_subscription`). `false`
    /// when there was none.
    async fn delete_app_subscription(&self, scope: &Scope, app_id: &str) -> StoreResult<bool>;
    /// Apps subscribed to a WABA of the tenant.
    async fn waba_subscriptions(
        &self,
        scope: &Scope,
        waba_id: &str,
    ) -> StoreResult<Vec<WabaSubscription>>;
    /// Subscribes the app to the WABA, with an optional override callback (already verified)
    /// and its verify token. Replaces an earlier override.
    async fn subscribe_waba(
        &self,
        scope: &Scope,
        waba_id: &str,
        app_id: &str,
        override_callback: Option<(String, String)>,
        now: Millis,
    ) -> StoreResult<()>;
    async fn unsubscribe_waba(
        &self,
        scope: &Scope,
        waba_id: &str,
        app_id: &str,
        now: Millis,
    ) -> StoreResult<()>;

    /// A phone number's own callback (`POST /{phone-number-id}` with `webhook_configuration`),
    /// already verified; `None` removes it. It takes precedence over the WABA's and the app's.
    async fn set_phone_override(
        &self,
        scope: &Scope,
        phone_id: &str,
        callback: Option<(String, String)>,
        now: Millis,
    ) -> StoreResult<()>;

    // ---- delivery ----------------------------------------------------------------------
    /// Leases due events whose endpoint has free capacity. Events with no subscriber (no
    /// callback, WABA unsubscribed, field not subscribed) are marked `skipped` on the way.
    async fn claim_webhooks(&self, req: ClaimRequest) -> StoreResult<Vec<ClaimedEvent>>;
    /// Is anything due or claimable? (cheap, read-only: lets idle workers avoid writes)
    async fn webhooks_due(&self, now: Millis, wall_now: Millis) -> StoreResult<bool>;
    /// Records an attempt and moves its event on (delivered, retry later, dead).
    async fn finish_webhook_attempt(&self, result: AttemptResult) -> StoreResult<()>;

    // ---- operator and tenant views -----------------------------------------------------
    async fn webhook_deliveries(
        &self,
        scope: &Scope,
        filter: DeliveryFilter,
    ) -> StoreResult<Vec<DeliveryRecord>>;
    /// One delivery with its payload and attempts.
    async fn webhook_delivery(&self, scope: &Scope, id: i64)
        -> StoreResult<Option<DeliveryRecord>>;
    /// Puts one event (any state but pending) back in the queue, due now, with a fresh retry
    /// window. `false` when there is no such event or it is already pending.
    async fn replay_webhook(&self, scope: &Scope, id: i64, now: Millis) -> StoreResult<bool>;
    /// Replays every dead event of the tenant; returns how many.
    async fn replay_dead_webhooks(&self, scope: &Scope, now: Millis) -> StoreResult<u64>;

    // ---- retention ---------------------------------------------------------------------
    /// Deletes up to `limit` delivered or skipped events (with their attempts) whose last
    /// attempt was due before `before`. Dead and pending events are never deleted.
    async fn purge_webhooks(&self, before: Millis, limit: usize) -> StoreResult<u64>;
}
