//! Webhook delivery: the worker that drains the outbox to callback URLs exactly as Meta sends
//! (cloud-api-facts.md §10; docs/WEBHOOKS.md for the guarantees).
//!
//! - [`handshake`]: the `hub.challenge` verification run before a callback URL is accepted.
//! - [`overrides`]: a phone number's own callback (`webhook_configuration`).
//! - [`signer`]: `X-Hub-Signature-256` over the exact bytes sent.
//! - [`allow`]: which hosts and networks callbacks may reach.
//! - [`retry`]: the backoff schedule, `Retry-After`, the 7-day window.
//! - this module: the worker. It claims due events with a lease — only as many as it has free
//!   slots, overall and per callback URL — so a slow or dead receiver holds a bounded number of
//!   events in memory and never touches the send path. Each event runs as one task: build the
//!   envelope around the stored `value` text in Meta's byte format, sign, POST with a
//!   per-attempt timeout, then record the attempt and move the event on (delivered, retry at a
//!   later virtual time, dead). An event is finished only after its attempt is recorded; a crash
//!   in between leaves it leased, and it is delivered again once the lease ends (at-least-once).

pub mod allow;
pub mod config;
pub mod handshake;
pub mod overrides;
pub mod retry;
pub mod signer;

use crate::state::{wall_ms, AppState};
use allow::{AllowList, GuardedResolver};
use config::WebhookConfig;
use greenlight_domain::webhook::envelope_bytes;
use greenlight_store::{AttemptOutcome, AttemptResult, ClaimRequest, ClaimedEvent};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{watch, Notify, Semaphore};

/// Most events claimed in one go.
const CLAIM_BATCH: usize = 256;
/// How often an idle worker looks for due events (wall time).
const POLL: Duration = Duration::from_millis(50);
/// Bytes of a receiver's answer kept in the attempt log.
const BODY_SNIPPET: usize = 200;
/// How often old delivered/skipped events are purged (wall time), and how many per job.
const PURGE_EVERY: Duration = Duration::from_secs(60);
const PURGE_BATCH: usize = 5_000;

/// The HTTP client of webhooks: per-attempt timeout, no proxy (callbacks are often on
/// loopback), no redirects (Meta requires a 200 from the URL itself), the allow-list enforced
/// on resolved addresses.
pub fn client(cfg: &WebhookConfig) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(Duration::from_millis(cfg.timeout_ms))
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent("facebookexternalua")
        // Per host, not per endpoint: several callback URLs often share one host, and a pool
        // smaller than the deliveries in flight to it reopens connections (the benchmark saw it).
        .pool_max_idle_per_host(cfg.concurrency.max(cfg.concurrency_per_endpoint))
        .dns_resolver(Arc::new(GuardedResolver(Arc::new(AllowList::from_config(
            cfg,
        )))))
        .build()
}

/// The exact bytes and signature of one event (identical on every attempt: same envelope
/// `time`, same ids).
pub fn render(e: &ClaimedEvent) -> (Vec<u8>, String) {
    let body = envelope_bytes(&e.waba_id, &e.field, &e.payload, e.created_at);
    let sig = signer::signature(&e.app_secret, &body);
    (body, sig)
}

struct Worker {
    state: AppState,
    cfg: WebhookConfig,
    client: reqwest::Client,
    allow: AllowList,
    slots: Arc<Semaphore>,
    in_flight: Mutex<HashMap<String, usize>>,
    wake: Notify,
}

pub fn spawn(state: AppState, stop: watch::Receiver<bool>) {
    let cfg = state.config.webhooks.clone();
    let client = match client(&cfg) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "webhooks: cannot build the HTTP client; no webhook will be delivered");
            return;
        }
    };
    let w = Arc::new(Worker {
        allow: AllowList::from_config(&cfg),
        slots: Arc::new(Semaphore::new(cfg.concurrency)),
        in_flight: Mutex::new(HashMap::new()),
        wake: Notify::new(),
        client,
        cfg,
        state,
    });
    tokio::spawn(w.run(stop));
}

impl Worker {
    async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let mut last_purge = Instant::now();
        loop {
            if *stop.borrow() {
                return;
            }
            if last_purge.elapsed() >= PURGE_EVERY {
                last_purge = Instant::now();
                self.purge().await;
            }
            let more = self.clone().claim_and_dispatch().await;
            if more {
                continue;
            }
            tokio::select! {
                _ = tokio::time::sleep(POLL) => {}
                _ = self.wake.notified() => {}
                _ = stop.changed() => {}
            }
        }
    }

    /// Retention: deletes old delivered and skipped events in small jobs (the writer is
    /// shared with the send path).
    async fn purge(&self) {
        if self.cfg.retention_days == 0 {
            return;
        }
        let before = self.state.now() - self.cfg.retention_days as i64 * 86_400_000;
        loop {
            match self.state.store.purge_webhooks(before, PURGE_BATCH).await {
                Ok(n) if n as usize >= PURGE_BATCH => tokio::task::yield_now().await,
                Ok(n) => {
                    if n > 0 {
                        tracing::debug!(deleted = n, "webhooks: old deliveries purged");
                    }
                    return;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "webhooks: purging old deliveries failed; will retry");
                    return;
                }
            }
        }
    }

    /// Claims what the free slots allow and starts it. True when a full batch came back and
    /// slots are left (look again at once).
    async fn claim_and_dispatch(self: Arc<Self>) -> bool {
        let free = self.slots.available_permits().min(CLAIM_BATCH);
        if free == 0 {
            return false;
        }
        let store = &self.state.store;
        let (now, wall) = (self.state.now(), wall_ms());
        match store.webhooks_due(now, wall).await {
            Ok(true) => {}
            Ok(false) => return false,
            Err(e) => {
                tracing::warn!(error = %e, "webhooks: cannot look for due events; will retry");
                return false;
            }
        }
        let in_flight = self.in_flight.lock().map(|m| m.clone()).unwrap_or_default();
        let req = ClaimRequest {
            now,
            wall_now: wall,
            lease_ms: self.cfg.lease_ms as i64,
            limit: free,
            per_endpoint: self.cfg.concurrency_per_endpoint,
            in_flight,
        };
        let events = match store.claim_webhooks(req).await {
            Ok(ev) => ev,
            Err(e) => {
                tracing::warn!(error = %e, "webhooks: claiming due events failed; will retry");
                return false;
            }
        };
        let n = events.len();
        for e in events {
            let permit = match self.slots.clone().acquire_owned().await {
                Ok(p) => p,
                Err(_) => return false,
            };
            if let Ok(mut m) = self.in_flight.lock() {
                *m.entry(e.url.clone()).or_insert(0) += 1;
            }
            let w = self.clone();
            tokio::spawn(async move {
                let url = e.url.clone();
                w.deliver(e).await;
                if let Ok(mut m) = w.in_flight.lock() {
                    if let Some(c) = m.get_mut(&url) {
                        *c -= 1;
                        if *c == 0 {
                            m.remove(&url);
                        }
                    }
                }
                drop(permit);
                w.wake.notify_one();
            });
        }
        n == free && self.slots.available_permits() > 0
    }

    /// One attempt of one event, recorded.
    async fn deliver(&self, e: ClaimedEvent) {
        let (body, sig) = render(&e);
        let at = self.state.now();
        let started = Instant::now();
        // parsed once: for the request, and for the host the log names
        let parsed =
            reqwest::Url::parse(&e.url).map_err(|err| format!("invalid callback URL: {err}"));
        let host = parsed
            .as_ref()
            .ok()
            .and_then(|u| u.host_str().map(str::to_string))
            .unwrap_or_default();
        let (status, error, retry_after) = self.post(parsed, body, &sig).await;
        let latency_ms = started.elapsed().as_millis() as i64;
        let ok = status.is_some_and(|s| (200..300).contains(&s));
        let outcome = if ok {
            AttemptOutcome::Delivered
        } else {
            retry::after_failure(
                &self.cfg,
                e.attempt,
                e.window_start,
                self.state.now(),
                retry_after,
                &mut rand::rng(),
            )
        };
        match &outcome {
            AttemptOutcome::Delivered => {
                tracing::debug!(event = e.id, attempt = e.attempt, %host, latency_ms, "webhook delivered")
            }
            AttemptOutcome::Retry { .. } => {
                tracing::debug!(event = e.id, attempt = e.attempt, %host, ?status, error = ?error, "webhook attempt failed; will retry")
            }
            AttemptOutcome::Dead => {
                tracing::warn!(event = e.id, attempt = e.attempt, %host, ?status, error = ?error, "webhook dead after its retry window; held for replay")
            }
        }
        let result = AttemptResult {
            outbox_id: e.id,
            attempt: e.attempt,
            url: e.url,
            at,
            status_code: status,
            latency_ms,
            error,
            outcome,
        };
        if let Err(err) = self.state.store.finish_webhook_attempt(result).await {
            // The lease will end and the event will be claimed again: at-least-once.
            tracing::warn!(event = e.id, error = %err, "webhooks: recording an attempt failed; the event will be retried");
        }
    }

    /// POSTs the bytes; `(status, error, Retry-After delay)`.
    async fn post(
        &self,
        url: Result<reqwest::Url, String>,
        body: Vec<u8>,
        sig: &str,
    ) -> (Option<u16>, Option<String>, Option<i64>) {
        let parsed = match url {
            Ok(u) => u,
            Err(why) => return (None, Some(why), None),
        };
        if let Err(why) = self.allow.check_literal(&parsed) {
            return (None, Some(format!("refused: {why}")), None);
        }
        let sent = self
            .client
            .post(parsed)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("X-Hub-Signature-256", sig)
            .body(body)
            .send()
            .await;
        let mut resp = match sent {
            Ok(r) => r,
            Err(e) if e.is_timeout() => {
                return (
                    None,
                    Some(format!("timed out after {} ms", self.cfg.timeout_ms)),
                    None,
                )
            }
            // without_url: callback URLs often carry secrets, and this text is stored and logged
            Err(e) => return (None, Some(handshake::error_chain(&e.without_url())), None),
        };
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| retry::parse_retry_after(v, std::time::SystemTime::now()));
        // Read a little of the answer (for the log, and so the connection can be reused).
        let mut snippet = Vec::new();
        let mut read_error = None;
        loop {
            match resp.chunk().await {
                Ok(Some(c)) if snippet.len() < BODY_SNIPPET => snippet.extend_from_slice(&c),
                Ok(Some(_)) | Ok(None) => break,
                Err(e) => {
                    read_error = Some(if e.is_timeout() {
                        format!(
                            "timed out after {} ms while reading the answer",
                            self.cfg.timeout_ms
                        )
                    } else {
                        handshake::error_chain(&e.without_url())
                    });
                    break;
                }
            }
        }
        if (200..300).contains(&status) {
            // A 2xx whose body could not be read still counts: the receiver accepted it.
            return (Some(status), None, None);
        }
        // Only the status and the body's length: the receiver's text is not echoed back (a
        // callback URL must not become a way to read another server's pages).
        let mut error = format!("HTTP {status}");
        if !snippet.is_empty() {
            error.push_str(&format!(
                " with a body of {}{} bytes",
                snippet.len().min(BODY_SNIPPET),
                if snippet.len() > BODY_SNIPPET {
                    "+"
                } else {
                    ""
                }
            ));
        }
        if let Some(r) = read_error {
            error.push_str(&format!(" ({r})"));
        }
        (Some(status), Some(error), retry_after)
    }
}
