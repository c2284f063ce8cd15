//! Simulated customers and the virtual clock (`/sandbox/v1`, sandbox mode only).

use super::*;
use crate::config::Mode;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::routing::put;
use greenlight_domain::phone::normalize_phone;
use greenlight_store::{CustomerAction, InboundCommand};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/sandbox/v1/clock", get(clock))
        .route("/sandbox/v1/clock/advance", post(advance))
        .route("/sandbox/v1/users/{wa_id}", put(put_user))
        .route("/sandbox/v1/{phone_id}/inbound", post(inbound))
        .route("/sandbox/v1/{phone_id}/users/{wa_id}/actions", post(action))
        .route("/sandbox/v1/{phone_id}/users/{wa_id}/messages", get(thread))
}

fn sandbox_only(state: &AppState) -> HttpResult<()> {
    if state.config.mode == Mode::Sandbox {
        Ok(())
    } else {
        Err(ApiError::new(
            404,
            100,
            "Unsupported request",
            "The /sandbox/v1 endpoints exist only in sandbox mode.",
        )
        .into())
    }
}

fn wa_id(input: &str, field: &str) -> HttpResult<String> {
    let d: String = input.chars().filter(|c| c.is_ascii_digit()).collect();
    let bad = input
        .chars()
        .any(|c| !(c.is_ascii_digit() || " +-()".contains(c)));
    if bad || !(7..=15).contains(&d.len()) {
        return Err(ApiError::invalid_parameter(format!(
            "`{field}` {input:?} must be the customer's phone number in international format (7 to 15 digits, e.g. 15551234567)"
        ))
        .into());
    }
    Ok(d)
}

async fn clock(State(state): State<AppState>, uri: Uri, headers: HeaderMap) -> HttpResult {
    sandbox_only(&state)?;
    if !is_admin(&state, &headers, &uri) {
        tenant(&state, &headers, &uri).await?;
    }
    let now = state.now();
    Ok(Json(json!({ "now": now.div_euclid(1000), "now_ms": now, "offset_seconds": state.clock.offset().div_euclid(1000) })).into_response())
}

async fn advance(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> HttpResult {
    sandbox_only(&state)?;
    require_admin(&state, &headers, &uri)?;
    let v = json_object(&body)?;
    let seconds = match v.get("seconds") {
        Some(Value::Number(n)) => n.as_i64().filter(|s| *s > 0 && *s <= 10 * 365 * 86_400),
        None => return Err(ApiError::missing_parameter("`seconds` is required: how far to move the clock forward").into()),
        _ => None,
    }
    .ok_or_else(|| ApiError::invalid_parameter("`seconds` must be a whole number from 1 to 315360000 (ten years); time only moves forward"))?;
    let _guard = state.clock_lock.lock().await;
    // another node may have advanced the shared clock since this one last looked
    crate::workers::sync_clock(&state).await;
    let offset = state.clock.offset() + seconds * 1000;
    state.store.set_clock_offset(offset).await?;
    state.clock.set_offset(offset);
    // Whatever fell due happens before we answer.
    let now = state.now();
    while state.store.run_due(now, 1000).await? >= 1000 {}
    state.due.notify_one();
    Ok(
        Json(json!({ "now": now.div_euclid(1000), "now_ms": now, "advanced_seconds": seconds }))
            .into_response(),
    )
}

async fn put_user(
    State(state): State<AppState>,
    Path(wa): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> HttpResult {
    sandbox_only(&state)?;
    require_admin(&state, &headers, &uri)?;
    let wa = wa_id(&wa, "wa_id")?;
    let v = json_object(&body)?;
    let on = match v.get("on_whatsapp") {
        Some(Value::Bool(b)) => *b,
        None => {
            return Err(
                ApiError::missing_parameter("`on_whatsapp` is required (true or false)").into(),
            )
        }
        Some(_) => {
            return Err(ApiError::invalid_parameter("`on_whatsapp` must be true or false").into())
        }
    };
    Ok(Json(state.store.set_user(&wa, on, state.now()).await?).into_response())
}

async fn inbound(
    State(state): State<AppState>,
    Path(phone_id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> HttpResult {
    sandbox_only(&state)?;
    let scope = scope_for_phone(&state, &headers, &uri, &phone_id).await?;
    let v = json_object(&body)?;
    let mut obj = v.as_object().cloned().unwrap_or_default();
    let from = match obj.remove("from") {
        Some(Value::String(s)) => wa_id(&s, "from")?,
        Some(Value::Number(n)) => wa_id(&n.to_string(), "from")?,
        _ => {
            return Err(ApiError::missing_parameter(
                "`from` is required: the customer's phone number, e.g. \"15551234567\"",
            )
            .into())
        }
    };
    let profile_name = match obj.remove("profile_name") {
        Some(Value::String(s)) => Some(s),
        None | Some(Value::Null) => None,
        Some(_) => {
            return Err(ApiError::invalid_parameter("`profile_name` must be a string").into())
        }
    };
    obj.remove("id");
    obj.remove("timestamp");
    let id = state
        .store
        .inbound(
            &scope,
            InboundCommand {
                phone_id,
                from,
                profile_name,
                message: obj,
                now: state.now(),
            },
        )
        .await?;
    state
        .metrics
        .inbound_messages
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    Ok(Json(json!({ "id": id })).into_response())
}

async fn action(
    State(state): State<AppState>,
    Path((phone_id, wa)): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> HttpResult {
    sandbox_only(&state)?;
    let scope = scope_for_phone(&state, &headers, &uri, &phone_id).await?;
    let wa = wa_id(&wa, "wa_id")?;
    let v = json_object(&body)?;
    let action = v
        .get("action")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::missing_parameter("`action` is required: read, block, unblock, report, stop_marketing or resume_marketing"))?
        .to_string();
    let opt = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    let out = state
        .store
        .customer_action(
            &scope,
            CustomerAction {
                phone_id,
                wa_id: wa,
                action,
                message_id: opt("message_id"),
                reason: opt("reason"),
                now: state.now(),
            },
        )
        .await?;
    Ok(Json(out).into_response())
}

async fn thread(
    State(state): State<AppState>,
    Path((phone_id, wa)): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
) -> HttpResult {
    sandbox_only(&state)?;
    let scope = scope_for_phone(&state, &headers, &uri, &phone_id).await?;
    let wa = normalize_phone(&wa, "").map_err(HttpError)?;
    let msgs = state
        .store
        .thread(&scope, &phone_id, &wa, state.now())
        .await?;
    Ok(Json(json!({ "data": msgs })).into_response())
}
