//! Webhook delivery logs and replays.
//!
//! Operator (`/admin/v1`, admin token), per tenant (`business_id`):
//! - `GET  /admin/v1/tenants/{business_id}/webhook_deliveries` — newest first; filters
//!   `state` (pending | delivered | dead | skipped), `field`; paging `limit` (≤ 500), `after`.
//! - `GET  /admin/v1/tenants/{business_id}/webhook_deliveries/{id}` — one delivery with its
//!   `value` and every attempt (status code, latency, error).
//! - `POST /admin/v1/tenants/{business_id}/webhook_deliveries/{id}/replay` — back in the queue
//!   now, with a fresh retry window (same bytes, same ids).
//! - `POST /admin/v1/tenants/{business_id}/webhook_deliveries/replay` — every dead one.
//!
//! Tenant (`/greenlight/v1`, its access token): `GET /greenlight/v1/webhook_deliveries` and
//! `GET /greenlight/v1/webhook_deliveries/{id}`, its own log only.

use super::*;
use axum::body::Bytes;
use axum::extract::{Path, State};
use greenlight_store::DeliveryFilter;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/admin/v1/tenants/{business_id}/webhook_deliveries",
            get(admin_list),
        )
        .route(
            "/admin/v1/tenants/{business_id}/webhook_deliveries/replay",
            post(admin_replay_dead),
        )
        .route(
            "/admin/v1/tenants/{business_id}/webhook_deliveries/{id}",
            get(admin_one),
        )
        .route(
            "/admin/v1/tenants/{business_id}/webhook_deliveries/{id}/replay",
            post(admin_replay_one),
        )
        .route("/greenlight/v1/webhook_deliveries", get(tenant_list))
        .route("/greenlight/v1/webhook_deliveries/{id}", get(tenant_one))
}

const STATES: &[&str] = &["pending", "delivered", "dead", "skipped"];

fn filter(uri: &Uri) -> HttpResult<DeliveryFilter> {
    let state = query_param(uri, "state").filter(|s| !s.is_empty());
    if let Some(s) = &state {
        if !STATES.contains(&s.as_str()) {
            return Err(ApiError::invalid_parameter(format!(
                "`state` {s:?} must be one of {}",
                STATES.join(", ")
            ))
            .into());
        }
    }
    let limit = match query_param(uri, "limit") {
        None => 50,
        Some(l) => l
            .parse::<usize>()
            .ok()
            .filter(|l| (1..=500).contains(l))
            .ok_or_else(|| ApiError::invalid_parameter("`limit` must be from 1 to 500"))?,
    };
    let before = match query_param(uri, "after") {
        None => None,
        Some(a) => Some(a.parse::<i64>().map_err(|_| {
            ApiError::invalid_parameter("`after` must be a cursor from `paging.cursors.after`")
        })?),
    };
    Ok(DeliveryFilter {
        state,
        field: query_param(uri, "field").filter(|s| !s.is_empty()),
        before,
        limit,
    })
}

fn delivery_id(id: &str) -> HttpResult<i64> {
    id.parse::<i64>()
        .map_err(|_| ApiError::unknown_object(id).into())
}

async fn list(state: &AppState, scope: &Scope, uri: &Uri) -> HttpResult {
    let f = filter(uri)?;
    let limit = f.limit;
    let data = state.store.webhook_deliveries(scope, f).await?;
    let mut paging = json!({});
    if let Some(last) = data.last() {
        paging = json!({ "cursors": { "after": last.id } });
        if data.len() == limit {
            let mut q: Vec<String> = uri
                .query()
                .unwrap_or("")
                .split('&')
                .filter(|kv| {
                    !kv.is_empty() && !kv.starts_with("after=") && !kv.starts_with("access_token=")
                })
                .map(str::to_string)
                .collect();
            q.push(format!("after={}", last.id));
            paging["next"] = json!(format!(
                "{}{}?{}",
                state.public_url(),
                uri.path(),
                q.join("&")
            ));
        }
    }
    Ok(Json(json!({ "data": data, "paging": paging })).into_response())
}

async fn one(state: &AppState, scope: &Scope, id: &str) -> HttpResult {
    let n = delivery_id(id)?;
    let d = state
        .store
        .webhook_delivery(scope, n)
        .await?
        .ok_or_else(|| ApiError::unknown_object(id))?;
    Ok(Json(serde_json::to_value(d).unwrap_or_default()).into_response())
}

async fn admin_list(
    State(state): State<AppState>,
    Path(business_id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> HttpResult {
    require_admin(&state, &headers, &uri)?;
    list(&state, &Scope { business_id }, &uri).await
}

async fn admin_one(
    State(state): State<AppState>,
    Path((business_id, id)): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
) -> HttpResult {
    require_admin(&state, &headers, &uri)?;
    one(&state, &Scope { business_id }, &id).await
}

async fn admin_replay_one(
    State(state): State<AppState>,
    Path((business_id, id)): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
) -> HttpResult {
    require_admin(&state, &headers, &uri)?;
    let scope = Scope { business_id };
    let n = delivery_id(&id)?;
    if state.store.replay_webhook(&scope, n, state.now()).await? {
        tracing::info!(business_id = %scope.business_id, event = n, "webhook replayed by the operator");
        return Ok(Json(json!({ "success": true, "replayed": 1 })).into_response());
    }
    match state.store.webhook_delivery(&scope, n).await? {
        None => Err(ApiError::unknown_object(&id).into()),
        Some(_) => Err(ApiError::invalid_parameter(format!(
            "delivery {id} is pending already: it is in the queue and will be attempted when due"
        ))
        .into()),
    }
}

async fn admin_replay_dead(
    State(state): State<AppState>,
    Path(business_id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> HttpResult {
    require_admin(&state, &headers, &uri)?;
    if !body.iter().all(u8::is_ascii_whitespace) {
        let v = json_object(&body)?;
        if let Some(s) = v.get("state") {
            if s != "dead" {
                return Err(ApiError::invalid_parameter(
                    "`state` may only be \"dead\": replay others one by one",
                )
                .into());
            }
        }
    }
    let scope = Scope { business_id };
    let n = state
        .store
        .replay_dead_webhooks(&scope, state.now())
        .await?;
    tracing::info!(business_id = %scope.business_id, replayed = n, "dead webhooks replayed by the operator");
    Ok(Json(json!({ "success": true, "replayed": n })).into_response())
}

async fn tenant_list(State(state): State<AppState>, uri: Uri, headers: HeaderMap) -> HttpResult {
    let p = tenant(&state, &headers, &uri).await?;
    list(&state, &p.scope, &uri).await
}

async fn tenant_one(
    State(state): State<AppState>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> HttpResult {
    let p = tenant(&state, &headers, &uri).await?;
    one(&state, &p.scope, &id).await
}
