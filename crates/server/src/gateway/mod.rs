//! Gateway mode (docs/GATEWAY.md): greenlight in front of Meta's Graph API. Sends run the full
//! policy and are forwarded only when allowed; template creates and edits are linted first;
//! Meta's webhooks are verified, learned from and relayed; every other Graph call on the
//! tenant's own ids is forwarded transparently, bodies streamed.

pub mod admin;
mod ingest;
mod proxy;
pub mod secrets;
mod send;
mod templates;

use crate::config::Config;
use crate::http::{HttpError, HttpResult};
use crate::state::AppState;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::Router;
use greenlight_domain::error::ErrorType;
use greenlight_domain::ApiError;
use greenlight_store::Scope;
use std::sync::Arc;
use std::time::Duration;

pub use proxy::forward;

/// The gateway's upstream client and the key of its secrets.
pub struct Gateway {
    pub client: reqwest::Client,
    /// Base URL of the upstream Graph API, without a trailing slash.
    pub base: String,
    pub sealer: secrets::Sealer,
    pub timeout: Duration,
    /// Opened credentials by business id, for [`CREDS_TTL`] (several nodes may rotate them).
    cache: std::sync::RwLock<std::collections::HashMap<String, (std::time::Instant, Arc<Creds>)>>,
}

/// How long opened credentials are reused before they are read (and opened) again.
const CREDS_TTL: Duration = Duration::from_secs(60);

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway").field("base", &self.base).finish()
    }
}

impl Gateway {
    pub fn new(config: &Config) -> anyhow::Result<Option<Gateway>> {
        if config.mode != crate::config::Mode::Gateway {
            return Ok(None);
        }
        let key = config
            .secrets_key
            .ok_or_else(|| anyhow::anyhow!("gateway mode needs secrets_key"))?;
        let timeout = Duration::from_millis(config.upstream_timeout_ms);
        let client = reqwest::Client::builder()
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            // Forwarded calls stream (media): a stall, not a long transfer, is the failure.
            .read_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("greenlight-gateway/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Some(Gateway {
            client,
            base: config.upstream_url.trim_end_matches('/').to_string(),
            sealer: secrets::Sealer::new(&key),
            timeout,
            cache: Default::default(),
        }))
    }

    /// Forgets a tenant's opened credentials (they were replaced).
    pub fn forget(&self, business_id: &str) {
        if let Ok(mut m) = self.cache.write() {
            m.remove(business_id);
        }
    }
}

/// A tenant's upstream credentials, opened.
pub(crate) struct Creds {
    pub access_token: String,
    pub app_secret: String,
}

pub(crate) fn gw(state: &AppState) -> HttpResult<&Gateway> {
    state
        .gateway
        .as_deref()
        .ok_or_else(|| HttpError(ApiError::internal()))
}

/// The tenant's Meta credentials, decrypted. A tenant without them (or sealed with another
/// key) cannot use the gateway: 190 saying so, nothing forwarded.
pub(crate) async fn creds(state: &AppState, scope: &Scope) -> HttpResult<Arc<Creds>> {
    let g = gw(state)?;
    if let Some((at, c)) = g
        .cache
        .read()
        .ok()
        .and_then(|m| m.get(&scope.business_id).cloned())
    {
        if at.elapsed() < CREDS_TTL {
            return Ok(c);
        }
    }
    let up = state.store.upstream(scope).await?.ok_or_else(|| {
        ApiError::invalid_token(
            "This tenant has no upstream credentials; the operator registers them with PUT /admin/v1/tenants/{business_id}/upstream.",
        )
    })?;
    let open = |v: &str| g.sealer.open(&scope.business_id, v);
    match (
        open(&up.secrets.access_token_sealed),
        open(&up.secrets.app_secret_sealed),
    ) {
        (Some(access_token), Some(app_secret)) => {
            let c = Arc::new(Creds {
                access_token,
                app_secret,
            });
            if let Ok(mut m) = g.cache.write() {
                m.insert(
                    scope.business_id.clone(),
                    (std::time::Instant::now(), c.clone()),
                );
            }
            Ok(c)
        }
        _ => {
            tracing::error!(business_id = %scope.business_id, "the tenant's upstream credentials do not open with the configured secrets_key");
            Err(ApiError::service_unavailable(
                "The gateway cannot read this tenant's upstream credentials (secrets_key changed?); the operator must register them again.",
            )
            .into())
        }
    }
}

/// `{upstream}{path}?{query without access_token}`.
pub(crate) fn upstream_url(g: &Gateway, uri: &Uri) -> String {
    let mut url = format!("{}{}", g.base, uri.path());
    if let Some(q) = uri.query() {
        let kept: Vec<&str> = q
            .split('&')
            .filter(|kv| !kv.is_empty() && !kv.starts_with("access_token="))
            .collect();
        if !kept.is_empty() {
            url.push('?');
            url.push_str(&kept.join("&"));
        }
    }
    url
}

/// The upstream could not be asked or did not answer: Meta's transient envelope.
pub(crate) fn transient(g: &Gateway, e: &reqwest::Error) -> HttpError {
    let what = if e.is_timeout() {
        format!(
            "The upstream Graph API did not answer within {} ms",
            g.timeout.as_millis()
        )
    } else if e.is_connect() {
        "The upstream Graph API could not be reached".to_string()
    } else {
        "The connection to the upstream Graph API failed".to_string()
    };
    tracing::warn!(
        timeout = e.is_timeout(),
        connect = e.is_connect(),
        "upstream call failed"
    );
    HttpError(ApiError::service_unavailable(format!(
        "{what}; nothing was recorded as sent. Retry with the same Idempotency-Key: greenlight forwards it once."
    )))
}

/// Request headers that are not forwarded (hop-by-hop, greenlight's auth, set by the client).
pub(crate) fn skip_request_header(name: &str) -> bool {
    matches!(
        name,
        "host"
            | "authorization"
            | "content-length"
            | "connection"
            | "keep-alive"
            | "transfer-encoding"
            | "te"
            | "upgrade"
            | "proxy-authorization"
            | "proxy-connection"
            | "cookie"
            | "idempotency-key"
            | "accept-encoding"
    )
}

pub(crate) fn skip_response_header(name: &str) -> bool {
    matches!(
        name,
        "connection"
            | "keep-alive"
            | "transfer-encoding"
            | "te"
            | "upgrade"
            | "proxy-authenticate"
            | "set-cookie"
            | "content-length"
    )
}

/// Copies forwardable request headers.
pub(crate) fn forward_headers(
    from: &HeaderMap,
    mut rb: reqwest::RequestBuilder,
) -> reqwest::RequestBuilder {
    for (k, v) in from {
        if !skip_request_header(k.as_str()) {
            rb = rb.header(k.as_str(), v.as_bytes());
        }
    }
    rb
}

/// Builds the caller's answer from Meta's status, headers and body bytes.
pub(crate) fn answer(
    status: u16,
    headers: &reqwest::header::HeaderMap,
    body: axum::body::Body,
) -> Response {
    let mut resp = Response::new(body);
    *resp.status_mut() =
        axum::http::StatusCode::from_u16(status).unwrap_or(axum::http::StatusCode::BAD_GATEWAY);
    for (k, v) in headers {
        if !skip_response_header(k.as_str()) {
            if let (Ok(k), Ok(v)) = (
                axum::http::HeaderName::from_bytes(k.as_str().as_bytes()),
                axum::http::HeaderValue::from_bytes(v.as_bytes()),
            ) {
                resp.headers_mut().append(k, v);
            }
        }
    }
    resp
}

async fn sandbox_off(method: Method, uri: Uri) -> Response {
    HttpError(
        ApiError::new(
            404,
            1900600,
            "Not available in gateway mode",
            format!(
                "{} {} is a sandbox endpoint (simulated customers and clock); this greenlight runs in gateway mode, where customers and time are real.",
                method,
                uri.path()
            ),
        )
        .with_type(ErrorType::GreenlightPolicy),
    )
    .into_response()
}

/// The routes gateway mode adds or replaces; anything else under a version is [`forward`]ed.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/webhooks/meta",
            get(ingest::handshake).post(ingest::receive),
        )
        .route("/{version}/{id}/messages", post(send::send))
        .route(
            "/{version}/{id}/message_templates",
            post(templates::create).fallback(proxy::forward),
        )
        .route(
            "/greenlight/v1/media_download/{token}",
            get(proxy::media_download),
        )
        .route("/sandbox/v1/{*rest}", any(sandbox_off))
}
