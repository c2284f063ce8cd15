//! greenlight's own extensions for the business (`/greenlight/v1`, tenant token).

use super::*;
use axum::body::Bytes;
use axum::extract::{Path, State};
use greenlight_domain::message::{self, Request};
use greenlight_domain::phone;
use greenlight_store::{SendCommand, TenantSettings};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/greenlight/v1/messages/{wamid}", get(message_lookup))
        .route("/greenlight/v1/{phone_id}/messages/check", post(check))
        .route(
            "/greenlight/v1/settings",
            get(get_settings).post(set_settings),
        )
        .route(
            "/greenlight/v1/media/{id}/file",
            get(super::media::download),
        )
}

async fn message_lookup(
    State(state): State<AppState>,
    Path(wamid): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> HttpResult {
    let p = tenant(&state, &headers, &uri).await?;
    let m = state
        .store
        .message(&p.scope, &wamid, state.now())
        .await?
        .ok_or_else(|| ApiError::unknown_object(&wamid))?;
    Ok(Json(serde_json::to_value(m).unwrap_or_default()).into_response())
}

async fn check(
    State(state): State<AppState>,
    Path(phone_id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> HttpResult {
    let p = tenant(&state, &headers, &uri).await?;
    let phone = p
        .phone(&phone_id)
        .ok_or_else(|| ApiError::unknown_object(&phone_id))?
        .clone();
    let value = json_object(&body)?;
    let request = match message::parse_request(&value, phone::calling_code(&phone.digits))? {
        Request::Send(r) => r,
        Request::MarkRead { .. } => {
            return Err(ApiError::invalid_parameter(
                "A mark-as-read request is not a send; nothing to check.",
            )
            .into());
        }
    };
    let cmd = SendCommand {
        phone,
        request,
        idempotency: None,
        now: state.now(),
        delivered_after: 0,
    };
    let r = state.store.check(&p.scope, cmd).await?;
    Ok(Json(serde_json::to_value(&r).unwrap_or_default()).into_response())
}

async fn get_settings(State(state): State<AppState>, uri: Uri, headers: HeaderMap) -> HttpResult {
    let p = tenant(&state, &headers, &uri).await?;
    Ok(
        Json(
            serde_json::to_value(state.store.tenant_settings(&p.scope).await?).unwrap_or_default(),
        )
        .into_response(),
    )
}

async fn set_settings(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> HttpResult {
    let p = tenant(&state, &headers, &uri).await?;
    let v = json_object(&body)?;
    let mut s = state.store.tenant_settings(&p.scope).await?;
    for (k, val) in v.as_object().into_iter().flatten() {
        match (k.as_str(), val) {
            ("sync_refusals", Value::Bool(b)) => s.sync_refusals = *b,
            ("sync_refusals", _) => {
                return Err(
                    ApiError::invalid_parameter("`sync_refusals` must be true or false").into(),
                )
            }
            ("compliance", Value::Object(patch)) => {
                // A partial update: merged into the current settings, then validated whole.
                let mut current = serde_json::to_value(&s.compliance).unwrap_or_default();
                merge_json(&mut current, &Value::Object(patch.clone()));
                s.compliance = serde_json::from_value(current).map_err(|e| {
                    ApiError::invalid_parameter(format!("`compliance` is not valid: {e}; GET /greenlight/v1/settings shows every key with its current value"))
                })?;
                s.compliance
                    .validate()
                    .map_err(|e| ApiError::invalid_parameter(format!("`compliance.{e}`")))?;
            }
            ("compliance", _) => {
                return Err(ApiError::invalid_parameter(
                    "`compliance` must be an object of compliance settings",
                )
                .into())
            }
            (other, _) => {
                return Err(ApiError::invalid_parameter(format!(
                    "`{other}` is not a tenant setting; known: sync_refusals, compliance"
                ))
                .into())
            }
        }
    }
    state.store.set_tenant_settings(&p.scope, s.clone()).await?;
    let _: &TenantSettings = &s;
    Ok(Json(serde_json::to_value(s).unwrap_or_default()).into_response())
}

/// Deep-merges `patch` into `base` (objects merge key by key; anything else replaces).
fn merge_json(base: &mut Value, patch: &Value) {
    match (base, patch) {
        (Value::Object(b), Value::Object(p)) => {
            for (k, v) in p {
                merge_json(b.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (b, p) => *b = p.clone(),
    }
}
