//! The HTTP layer: thin. Handlers authenticate, parse the body into domain types, call the
//! store, and render. Every error leaves through [`HttpError`], which renders Meta's envelope;
//! internal errors are logged once and answered with an opaque message.

mod admin;
mod audit;
mod block;
mod compliance;
mod consent;
pub(crate) use admin::parse_new_tenant as admin_parse_new_tenant;
pub use consent::parse_opt_in as consent_parse;
pub(crate) use graph::idempotency_key;
mod deliveries;
mod graph;
mod greenlight;
mod media;
mod ops;
mod sandbox;
mod subscriptions;
pub(crate) mod templates;

use crate::state::AppState;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use greenlight_domain::ApiError;
use greenlight_store::{ids, Principal, Scope, StoreError};
use rand::Rng;
use serde_json::{json, Value};
use std::sync::Arc;

/// Largest accepted upload (documents: 100 MB) plus multipart overhead.
pub const MAX_UPLOAD: usize = 100 * 1024 * 1024 + 64 * 1024;
/// Largest JSON body.
pub const MAX_JSON: usize = 2 * 1024 * 1024;

pub fn router(state: AppState) -> Router {
    let base = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .merge(ops::routes());
    let surfaces = if state.config.mode == crate::config::Mode::Gateway {
        // Gateway mode: greenlight's own surfaces, the gateway's routes, and every other Graph
        // call forwarded upstream (docs/GATEWAY.md).
        base.merge(admin::routes())
            .route(
                "/admin/v1/tenants/{business_id}/upstream",
                axum::routing::put(crate::gateway::admin::put_upstream),
            )
            .merge(greenlight::routes())
            .merge(audit::routes())
            .merge(compliance::routes())
            .merge(consent::routes())
            .merge(deliveries::routes())
            .merge(crate::gateway::routes())
            .fallback(crate::gateway::forward)
    } else {
        sandbox_routes(base)
    };
    surfaces
        .layer(DefaultBodyLimit::max(MAX_JSON))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            count_requests,
        ))
        .with_state(state)
}

fn sandbox_routes(base: Router<AppState>) -> Router<AppState> {
    base.merge(admin::routes())
        .merge(sandbox::routes())
        .merge(greenlight::routes())
        .merge(audit::routes())
        .merge(block::routes())
        .merge(compliance::routes())
        .merge(consent::routes())
        .merge(templates::routes())
        .merge(graph::routes())
        .merge(subscriptions::routes())
        .merge(deliveries::routes())
        .route(
            "/{version}/{id}/media",
            post(media::upload).layer(DefaultBodyLimit::max(MAX_UPLOAD)),
        )
        .fallback(fallback)
}

/// The version a request without one is routed as. Some clients call Graph paths with no
/// `/vN.M` segment (e.g. whatsapp-api-js for `/{phone}/block_users`); Graph accepts that.
pub const DEFAULT_VERSION: &str = "v23.0";

/// Routes `/{object-id}/…` (an id of digits, no version segment) as `/v23.0/{object-id}/…`.
/// Applied before routing (see `crate::run`).
pub fn rewrite_versionless(mut req: axum::extract::Request) -> axum::extract::Request {
    let path = req.uri().path();
    let first = path.trim_start_matches('/').split('/').next().unwrap_or("");
    if first.len() >= 5 && first.bytes().all(|b| b.is_ascii_digit()) {
        let pq = req
            .uri()
            .path_and_query()
            .map(|x| x.as_str())
            .unwrap_or(path)
            .to_string();
        if let Ok(uri) = format!("/{DEFAULT_VERSION}{pq}").parse() {
            *req.uri_mut() = uri;
        }
    }
    req
}

async fn metrics(axum::extract::State(state): axum::extract::State<AppState>) -> Response {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        state.metrics.render(),
    )
        .into_response()
}

async fn count_requests(
    axum::extract::State(state): axum::extract::State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let resp = as_meta_error(next.run(req).await, &method, &path).await;
    use std::sync::atomic::Ordering::Relaxed;
    state.metrics.requests.fetch_add(1, Relaxed);
    if resp.status().is_server_error() {
        state.metrics.server_errors.fetch_add(1, Relaxed);
    }
    resp
}

/// Axum's own rejections (a path segment that is not UTF-8, a body over the limit, a method the
/// route does not have…) are plain text; every error greenlight answers is Meta's envelope.
async fn as_meta_error(resp: Response, method: &Method, path: &str) -> Response {
    let status = resp.status();
    let is_json = resp
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("application/json"));
    if !status.is_client_error() || is_json {
        return resp;
    }
    let bytes = axum::body::to_bytes(resp.into_body(), 4096)
        .await
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes).trim().to_string();
    let e = match status {
        StatusCode::METHOD_NOT_ALLOWED => ApiError::new(405, 100, format!("Unsupported {method} request"), format!("{method} is not supported on {path}; check the HTTP method.")),
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(413, 100, "Request body too large", format!("The body is larger than this endpoint accepts ({} for JSON, 100 MB for media); {text}", "2 MB")),
        _ => ApiError::new(status.as_u16(), 100, "Invalid parameter", if text.is_empty() { format!("The request to {path} is not valid.") } else { format!("{text}; check the request.") }),
    };
    HttpError(e).into_response()
}

async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

async fn readyz(axum::extract::State(state): axum::extract::State<AppState>) -> Response {
    match state.store.ping().await {
        Ok(()) => Json(json!({ "status": "ready" })).into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "status": "unavailable", "reason": "database unreachable" })),
            )
                .into_response()
        }
    }
}

async fn fallback(method: Method, uri: Uri) -> HttpError {
    HttpError(ApiError::unknown_path(method.as_str(), uri.path()))
}

/// Every error answer: Meta's envelope with a fresh `fbtrace_id`.
#[derive(Debug)]
pub struct HttpError(pub ApiError);

pub type HttpResult<T = Response> = Result<T, HttpError>;

pub fn fbtrace_id() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";
    let mut rng = rand::rng();
    (0..23)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.0.status).unwrap_or(StatusCode::BAD_REQUEST);
        let trace = fbtrace_id();
        if status.is_server_error() {
            tracing::warn!(code = self.0.code, fbtrace_id = %trace, "answered with a server error");
        }
        let mut resp = (status, Json(self.0.envelope(&trace))).into_response();
        if let Ok(v) = HeaderValue::from_str(&trace) {
            resp.headers_mut().insert("x-fb-trace-id", v);
        }
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                "www-authenticate",
                HeaderValue::from_static("OAuth \"Facebook Platform\" \"invalid_token\""),
            );
        }
        resp
    }
}

impl From<ApiError> for HttpError {
    fn from(e: ApiError) -> Self {
        HttpError(e)
    }
}

impl From<StoreError> for HttpError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Api(e) => HttpError(e),
            StoreError::Unavailable(reason) => {
                tracing::warn!(%reason, "store unavailable");
                HttpError(ApiError::service_unavailable(
                    "The database is unreachable; nothing was committed. Retry shortly.",
                ))
            }
            StoreError::Internal(reason) => {
                tracing::error!(%reason, "internal store error");
                HttpError(ApiError::internal())
            }
        }
    }
}

/// The bearer token of a request (`Authorization: Bearer …`, or Graph's `access_token` query
/// parameter).
pub fn bearer(headers: &HeaderMap, uri: &Uri) -> Option<String> {
    if let Some(v) = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        let v = v.trim();
        // `Bearer ` with nothing after it (some clients send that) is no token at all.
        if v.eq_ignore_ascii_case("bearer") {
            return None;
        }
        let token = v
            .strip_prefix("Bearer ")
            .or_else(|| v.strip_prefix("bearer "))
            .or_else(|| v.strip_prefix("OAuth "))
            .unwrap_or(v);
        let token = token.trim();
        if !token.is_empty() {
            return Some(token.to_string());
        }
    }
    uri.query().and_then(|q| {
        q.split('&')
            .find_map(|kv| kv.strip_prefix("access_token="))
            .map(percent_decode)
    })
}

/// Percent-decoding for query strings and form bodies.
pub fn percent_decode_pub(s: &str) -> String {
    percent_decode(s)
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                match u8::from_str_radix(
                    std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"),
                    16,
                ) {
                    Ok(b) => {
                        out.push(b);
                        i += 3;
                    }
                    Err(_) => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Constant-time comparison for secrets.
pub fn secure_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The tenant behind a request's token: 190 when missing or unknown.
pub async fn tenant(
    state: &AppState,
    headers: &HeaderMap,
    uri: &Uri,
) -> HttpResult<Arc<Principal>> {
    let token = bearer(headers, uri).ok_or_else(|| {
        ApiError::invalid_token("No access token: send `Authorization: Bearer <access token>` (the token from tenant creation).")
    })?;
    match state.principal(&token).await? {
        Some(p) => Ok(p),
        None => Err(ApiError::invalid_token(
            "The access token is not valid: it is unknown, revoked or malformed.",
        )
        .into()),
    }
}

pub fn is_admin(state: &AppState, headers: &HeaderMap, uri: &Uri) -> bool {
    bearer(headers, uri).is_some_and(|t| secure_eq(&t, &state.config.admin_token))
}

/// Admin-only routes: 190 without a token, 10 with a tenant's.
pub fn require_admin(state: &AppState, headers: &HeaderMap, uri: &Uri) -> HttpResult<()> {
    match bearer(headers, uri) {
        None => Err(ApiError::invalid_token("This operator endpoint needs `Authorization: Bearer <GREENLIGHT_ADMIN_TOKEN>`.").into()),
        Some(t) if secure_eq(&t, &state.config.admin_token) => Ok(()),
        Some(_) => Err(ApiError::permission_denied("This endpoint needs the operator's admin token (GREENLIGHT_ADMIN_TOKEN), not a tenant token.").into()),
    }
}

/// Who may act on a phone number in the sandbox: its tenant, or the operator.
pub async fn scope_for_phone(
    state: &AppState,
    headers: &HeaderMap,
    uri: &Uri,
    phone_id: &str,
) -> HttpResult<Scope> {
    if is_admin(state, headers, uri) {
        return state
            .store
            .scope_of_phone(phone_id)
            .await?
            .ok_or_else(|| ApiError::unknown_object(phone_id).into());
    }
    let p = tenant(state, headers, uri).await?;
    match p.phone(phone_id) {
        Some(_) => Ok(p.scope.clone()),
        None => Err(ApiError::unknown_object(phone_id).into()),
    }
}

/// Parses a JSON body; Meta's 100 with what is wrong when it is not a JSON object.
pub fn json_object(body: &[u8]) -> HttpResult<Value> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::invalid_parameter(
            "The request body is empty; send a JSON object with Content-Type: application/json.",
        )
        .into());
    }
    // The body's UTF-8 checked once, here, so that serde_json reads it as `&str` and does not
    // check every string of it again, one call each (~2,200 instructions a template send;
    // docs/BENCHMARKS.md, thirty-fourth round).
    let text = std::str::from_utf8(body).map_err(|e| {
        ApiError::invalid_parameter(format!(
            "The request body is not valid UTF-8 at byte {} (the first byte is 1); send the JSON encoded as UTF-8.",
            e.valid_up_to() + 1
        ))
    })?;
    let v: Value = serde_json::from_str(text).map_err(|e| {
        ApiError::invalid_parameter(format!(
            "The request body is not valid JSON ({e}); send a JSON object."
        ))
    })?;
    if !v.is_object() {
        return Err(ApiError::invalid_parameter("The request body must be a JSON object.").into());
    }
    Ok(v)
}

/// `/v23.0`-style version prefixes (any vN or vN.M).
pub fn check_version(version: &str, method: &Method, uri: &Uri) -> HttpResult<()> {
    let ok = version.strip_prefix('v').is_some_and(|rest| {
        let mut parts = rest.split('.');
        let major = parts.next().unwrap_or("");
        let minor = parts.next();
        !major.is_empty()
            && major.chars().all(|c| c.is_ascii_digit())
            && parts.next().is_none()
            && minor.is_none_or(|m| !m.is_empty() && m.chars().all(|c| c.is_ascii_digit()))
    });
    if ok {
        Ok(())
    } else {
        Err(ApiError::unknown_path(method.as_str(), uri.path()).into())
    }
}

/// `fields=a,b,c{x}` → top-level names.
pub fn requested_fields(q: Option<&str>) -> Option<Vec<String>> {
    let q = q?;
    let mut out = Vec::new();
    let mut depth = 0;
    let mut cur = String::new();
    for ch in q.chars() {
        match ch {
            '{' | '(' => {
                depth += 1;
            }
            '}' | ')' => depth -= 1,
            ',' if depth == 0 => {
                if !cur.trim().is_empty() {
                    out.push(cur.trim().to_string());
                }
                cur.clear();
            }
            c if depth == 0 => cur.push(c),
            _ => {}
        }
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim().to_string());
    }
    Some(out)
}

/// Selects `fields` from a full object; unknown fields are Meta's 100.
pub fn select_fields(
    full: &Value,
    fields: Option<Vec<String>>,
    default: &[&str],
    node_type: &str,
) -> HttpResult<Value> {
    let names: Vec<String> =
        fields.unwrap_or_else(|| default.iter().map(|s| s.to_string()).collect());
    let mut out = serde_json::Map::new();
    // Fields greenlight does not model are left out rather than refused: clients such as pywa
    // ask for every field Meta has (node type kept for the docs: {node_type}).
    let _ = node_type;
    for f in names {
        if let Some(v) = full.get(&f) {
            out.insert(f, v.clone());
        }
    }
    if let Some(id) = full.get("id") {
        out.insert("id".into(), id.clone());
    }
    Ok(Value::Object(out))
}

pub fn query_param(uri: &Uri, name: &str) -> Option<String> {
    uri.query().and_then(|q| {
        q.split('&').find_map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (percent_decode(k) == name).then(|| percent_decode(v))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_parse() {
        assert_eq!(
            requested_fields(Some("a,b{c,d},e")).unwrap(),
            vec!["a", "b", "e"]
        );
    }

    #[test]
    fn percent() {
        assert_eq!(percent_decode("a%2Cb+c"), "a,b c");
        assert_eq!(percent_decode("100%"), "100%");
    }

    #[test]
    fn versions() {
        let (m, u) = (Method::GET, Uri::from_static("/x"));
        assert!(check_version("v23.0", &m, &u).is_ok());
        assert!(check_version("v17", &m, &u).is_ok());
        assert!(check_version("x23.0", &m, &u).is_err());
        assert!(check_version("v23.", &m, &u).is_err());
    }

    #[test]
    fn eq() {
        assert!(secure_eq("abc", "abc"));
        assert!(!secure_eq("abc", "abd"));
        assert!(!secure_eq("abc", "ab"));
    }
}
