//! `/metrics`: Prometheus text counters of this process (aggregates only: no tenant data).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

#[derive(Default)]
pub struct Metrics {
    pub requests: AtomicU64,
    pub server_errors: AtomicU64,
    pub messages_accepted: AtomicU64,
    pub inbound_messages: AtomicU64,
    refusals: Mutex<BTreeMap<i64, u64>>,
}

impl Metrics {
    pub fn refused(&self, code: i64) {
        if let Ok(mut m) = self.refusals.lock() {
            *m.entry(code).or_default() += 1;
        }
    }

    pub fn render(&self) -> String {
        let mut s = String::new();
        let mut counter = |name: &str, help: &str, v: u64| {
            s.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}\n"
            ));
        };
        counter(
            "greenlight_http_requests_total",
            "HTTP requests answered.",
            self.requests.load(Ordering::Relaxed),
        );
        counter(
            "greenlight_http_server_errors_total",
            "HTTP answers with a 5xx status.",
            self.server_errors.load(Ordering::Relaxed),
        );
        counter(
            "greenlight_messages_accepted_total",
            "Outbound messages accepted (a wamid was returned).",
            self.messages_accepted.load(Ordering::Relaxed),
        );
        counter(
            "greenlight_inbound_messages_total",
            "Simulated customer messages received.",
            self.inbound_messages.load(Ordering::Relaxed),
        );
        s.push_str("# HELP greenlight_send_refusals_total Sends refused on the API call, by error code.\n# TYPE greenlight_send_refusals_total counter\n");
        if let Ok(m) = self.refusals.lock() {
            for (code, n) in m.iter() {
                s.push_str(&format!(
                    "greenlight_send_refusals_total{{code=\"{code}\"}} {n}\n"
                ));
            }
        }
        s
    }
}
