//! The `[webhooks]` table of the configuration (environment: `GREENLIGHT_WEBHOOK_*`).
//! Defaults are in `defaults.toml`; this module overlays and validates them.

use crate::config::Mode;
use serde::Deserialize;

/// Every key, all optional: one layer of the `[webhooks]` table.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookLayer {
    pub timeout_ms: Option<u64>,
    pub concurrency: Option<u64>,
    pub concurrency_per_endpoint: Option<u64>,
    pub retry_initial_ms: Option<u64>,
    pub retry_max_interval_ms: Option<u64>,
    pub retry_window_ms: Option<u64>,
    pub lease_ms: Option<u64>,
    pub allowed_hosts: Option<Vec<String>>,
    pub allow_private: Option<bool>,
    pub retention_days: Option<u64>,
}

/// Validated webhook settings.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookConfig {
    /// Whole attempt (connect, send, answer), also the handshake's limit.
    pub timeout_ms: u64,
    /// Deliveries in flight, in total.
    pub concurrency: usize,
    /// Deliveries in flight per callback URL.
    pub concurrency_per_endpoint: usize,
    /// First retry delay; doubles per attempt up to `retry_max_interval_ms`; ±20 % jitter.
    pub retry_initial_ms: u64,
    pub retry_max_interval_ms: u64,
    /// After this long (virtual time) from the event (or its replay), a failure makes it dead.
    pub retry_window_ms: u64,
    /// How long a claimed event stays reserved for its worker (wall time).
    pub lease_ms: u64,
    /// Hosts (`example.com`, `*.example.com`), addresses and networks (`10.0.0.0/8`)
    /// callbacks may use; empty = any host.
    pub allowed_hosts: Vec<String>,
    /// Loopback, private, link-local and unique-local addresses allowed even when not listed.
    pub allow_private: bool,
    /// Delivered and skipped events are deleted this many days (virtual time) after their
    /// last attempt; 0 keeps them. Dead and pending events are never deleted.
    pub retention_days: u64,
}

impl WebhookLayer {
    /// `top` over `base`, key by key.
    pub fn merge(base: Option<WebhookLayer>, top: Option<&WebhookLayer>) -> Option<WebhookLayer> {
        let Some(top) = top else { return base };
        let mut b = base.unwrap_or_default();
        macro_rules! over { ($($f:ident),*) => { $( if top.$f.is_some() { b.$f = top.$f.clone(); } )* }; }
        over!(
            timeout_ms,
            concurrency,
            concurrency_per_endpoint,
            retry_initial_ms,
            retry_max_interval_ms,
            retry_window_ms,
            lease_ms,
            allowed_hosts,
            allow_private,
            retention_days
        );
        Some(b)
    }

    /// `GREENLIGHT_WEBHOOK_*`; `None` when none is set.
    pub fn from_env(get: &impl Fn(&str) -> Option<String>) -> Result<Option<WebhookLayer>, String> {
        let num = |k: &str| -> Result<Option<u64>, String> {
            get(k)
                .map(|v| {
                    v.trim()
                        .parse::<u64>()
                        .map_err(|_| format!("{k}={v:?} must be a whole number"))
                })
                .transpose()
        };
        let l = WebhookLayer {
            timeout_ms: num("GREENLIGHT_WEBHOOK_TIMEOUT_MS")?,
            concurrency: num("GREENLIGHT_WEBHOOK_CONCURRENCY")?,
            concurrency_per_endpoint: num("GREENLIGHT_WEBHOOK_CONCURRENCY_PER_ENDPOINT")?,
            retry_initial_ms: num("GREENLIGHT_WEBHOOK_RETRY_INITIAL_MS")?,
            retry_max_interval_ms: num("GREENLIGHT_WEBHOOK_RETRY_MAX_INTERVAL_MS")?,
            retry_window_ms: num("GREENLIGHT_WEBHOOK_RETRY_WINDOW_MS")?,
            lease_ms: num("GREENLIGHT_WEBHOOK_LEASE_MS")?,
            retention_days: num("GREENLIGHT_WEBHOOK_RETENTION_DAYS")?,
            allowed_hosts: get("GREENLIGHT_WEBHOOK_ALLOWED_HOSTS").map(|v| {
                v.split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect()
            }),
            allow_private: get("GREENLIGHT_WEBHOOK_ALLOW_PRIVATE")
                .map(|v| match v.trim().to_ascii_lowercase().as_str() {
                    "1" | "true" | "yes" | "on" => Ok(true),
                    "0" | "false" | "no" | "off" => Ok(false),
                    _ => Err(format!(
                        "GREENLIGHT_WEBHOOK_ALLOW_PRIVATE={v:?} must be true or false"
                    )),
                })
                .transpose()?,
        };
        let any = l.timeout_ms.is_some()
            || l.concurrency.is_some()
            || l.concurrency_per_endpoint.is_some()
            || l.retry_initial_ms.is_some()
            || l.retry_max_interval_ms.is_some()
            || l.retry_window_ms.is_some()
            || l.lease_ms.is_some()
            || l.allowed_hosts.is_some()
            || l.allow_private.is_some()
            || l.retention_days.is_some();
        Ok(any.then_some(l))
    }

    /// Validates the table; problems are pushed on `errs`, each saying what to change.
    pub fn validate(self, mode: Mode, errs: &mut Vec<String>) -> WebhookConfig {
        let mut check = |ok: bool, msg: String| {
            if !ok {
                errs.push(msg)
            }
        };
        let timeout_ms = self.timeout_ms.unwrap_or(10_000);
        check(
            (100..=120_000).contains(&timeout_ms),
            format!("webhooks.timeout_ms = {timeout_ms} must be from 100 to 120000"),
        );
        let concurrency = self.concurrency.unwrap_or(256);
        check(
            (1..=10_000).contains(&concurrency),
            format!("webhooks.concurrency = {concurrency} must be from 1 to 10000"),
        );
        let per = self.concurrency_per_endpoint.unwrap_or(8);
        check(
            (1..=concurrency.max(1)).contains(&per),
            format!("webhooks.concurrency_per_endpoint = {per} must be from 1 to webhooks.concurrency ({concurrency})"),
        );
        let initial = self.retry_initial_ms.unwrap_or(10_000);
        let max_interval = self.retry_max_interval_ms.unwrap_or(6 * 3_600_000);
        let window = self.retry_window_ms.unwrap_or(7 * 86_400_000);
        check(
            initial >= 1,
            "webhooks.retry_initial_ms must be at least 1".into(),
        );
        check(
            max_interval >= initial,
            format!("webhooks.retry_max_interval_ms = {max_interval} must be at least webhooks.retry_initial_ms ({initial})"),
        );
        check(
            window >= initial,
            format!("webhooks.retry_window_ms = {window} must be at least webhooks.retry_initial_ms ({initial}); Meta retries for 7 days (604800000)"),
        );
        let lease_ms = self.lease_ms.unwrap_or(60_000);
        check(
            lease_ms > timeout_ms,
            format!("webhooks.lease_ms = {lease_ms} must be longer than webhooks.timeout_ms ({timeout_ms}), or an event could be claimed twice while in flight"),
        );
        let allowed_hosts = self.allowed_hosts.unwrap_or_default();
        if let Err(e) = super::allow::AllowList::parse(&allowed_hosts, true) {
            errs.push(format!("webhooks.allowed_hosts: {e}"));
        }
        WebhookConfig {
            timeout_ms,
            concurrency: concurrency as usize,
            concurrency_per_endpoint: per as usize,
            retry_initial_ms: initial,
            retry_max_interval_ms: max_interval,
            retry_window_ms: window,
            lease_ms,
            allowed_hosts,
            allow_private: self.allow_private.unwrap_or(mode == Mode::Sandbox),
            retention_days: self.retention_days.unwrap_or(30),
        }
    }
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookLayer::default().validate(Mode::Sandbox, &mut Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_meta_and_mode() {
        let c = WebhookLayer::default().validate(Mode::Sandbox, &mut Vec::new());
        assert_eq!(c.retry_window_ms, 604_800_000);
        assert!(c.allow_private);
        let g = WebhookLayer::default().validate(Mode::Gateway, &mut Vec::new());
        assert!(!g.allow_private);
    }

    #[test]
    fn env_and_errors() {
        let env = |k: &str| match k {
            "GREENLIGHT_WEBHOOK_TIMEOUT_MS" => Some("500".to_string()),
            "GREENLIGHT_WEBHOOK_LEASE_MS" => Some("400".to_string()),
            "GREENLIGHT_WEBHOOK_ALLOWED_HOSTS" => Some("example.com, 10.0.0.0/33".to_string()),
            _ => None,
        };
        let l = WebhookLayer::from_env(&env).unwrap().unwrap();
        let mut errs = Vec::new();
        l.validate(Mode::Sandbox, &mut errs);
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(errs[0].contains("lease_ms"));
        assert!(errs[1].contains("10.0.0.0/33"));
        assert!(WebhookLayer::from_env(&|_: &str| None).unwrap().is_none());
    }
}
