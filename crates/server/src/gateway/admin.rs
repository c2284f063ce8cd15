//! The operator registers a gateway tenant: `POST /admin/v1/tenants` with an `upstream` block
//! (Meta's token, app secret, WABA and number ids, the verify token Meta's handshake presents),
//! and rotates credentials with `PUT /admin/v1/tenants/{business_id}/upstream`. Meta's token and
//! app secret are sealed before they reach the store and never echoed.

use super::*;
use crate::http::{json_object, require_admin};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use greenlight_store::{NewGatewayTenant, UpstreamSecrets};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

fn text(v: &Value, key: &str, what: &str) -> Result<String, ApiError> {
    match v.get(key) {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.trim().to_string()),
        _ => Err(ApiError::missing_parameter(format!(
            "`upstream.{key}` is required: {what}"
        ))),
    }
}

fn id_of(v: &Value, key: &str) -> Result<String, ApiError> {
    let s = match v.get(key) {
        Some(Value::String(s)) => s.trim().to_string(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    };
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::invalid_parameter(format!(
            "`{key}` must be Meta's id (digits)"
        )));
    }
    Ok(s)
}

fn secrets(g: &Gateway, business_id: &str, up: &Value) -> Result<UpstreamSecrets, ApiError> {
    let token = text(
        up,
        "access_token",
        "the business's Meta access token (a system user token)",
    )?;
    let secret = text(
        up,
        "app_secret",
        "the Meta app's secret, which signs Meta's webhooks",
    )?;
    let verify = text(
        up,
        "webhook_verify_token",
        "the verify token configured for the callback in Meta's app dashboard",
    )?;
    Ok(UpstreamSecrets {
        access_token_sealed: g.sealer.seal(business_id, &token),
        app_secret_sealed: g.sealer.seal(business_id, &secret),
        verify_token_hash: hex::encode(Sha256::digest(verify.as_bytes())),
    })
}

/// `POST /admin/v1/tenants` in gateway mode.
pub async fn create_tenant(state: &AppState, v: &Value) -> HttpResult {
    let g = gw(state)?;
    let up = v.get("upstream").filter(|u| u.is_object()).ok_or_else(|| {
        ApiError::missing_parameter(
            "`upstream` is required in gateway mode: {access_token, app_secret, waba_id, phone_numbers: [{id, display_phone_number, verified_name}], webhook_verify_token}",
        )
    })?;
    let waba_id = id_of(up, "waba_id")?;
    let phones = up
        .get("phone_numbers")
        .and_then(Value::as_array)
        .filter(|a| !a.is_empty())
        .ok_or_else(|| {
            ApiError::missing_parameter(
                "`upstream.phone_numbers` is required: [{id, display_phone_number, verified_name}] as Meta knows them",
            )
        })?;
    let mut body = v.clone();
    body["phone_numbers"] = Value::Array(
        phones
            .iter()
            .map(|p| json!({ "display_phone_number": p["display_phone_number"], "verified_name": p["verified_name"] }))
            .collect(),
    );
    let tenant = crate::http::admin_parse_new_tenant(&body)?;
    let phone_ids = phones
        .iter()
        .map(|p| id_of(p, "id"))
        .collect::<Result<Vec<_>, _>>()?;
    let distinct: std::collections::HashSet<&String> = phone_ids.iter().collect();
    if distinct.len() != phone_ids.len() {
        return Err(ApiError::invalid_parameter("`upstream.phone_numbers` repeats an id").into());
    }
    let business_id = greenlight_store::ids::object_id();
    let secrets = secrets(g, &business_id, up)?;
    crate::webhooks::handshake::verify_new_tenant(state, &tenant).await?;
    let t = NewGatewayTenant {
        business_id,
        tenant,
        waba_id,
        phone_ids,
        secrets,
        messaging_limit_tier: up
            .get("messaging_limit_tier")
            .and_then(Value::as_str)
            .map(str::to_string),
    };
    let created = state.store.gateway_create_tenant(t, state.now()).await?;
    tracing::info!(business_id = %created.business_id, waba_id = %created.waba_id, "gateway tenant created");
    let mut out = serde_json::to_value(&created).unwrap_or_default();
    out["mode"] = json!("gateway");
    out["webhook_url"] = json!(format!("{}/webhooks/meta", state.public_url()));
    Ok((StatusCode::CREATED, axum::Json(out)).into_response())
}

/// `PUT /admin/v1/tenants/{business_id}/upstream` `{access_token, app_secret, webhook_verify_token}`.
pub async fn put_upstream(
    State(state): State<AppState>,
    Path(business_id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> HttpResult {
    require_admin(&state, &headers, &uri)?;
    let g = gw(&state)?;
    let v = json_object(&body)?;
    let scope = Scope { business_id };
    let s = secrets(g, &scope.business_id, &v)?;
    state.store.set_upstream(&scope, s, state.now()).await?;
    g.forget(&scope.business_id);
    Ok(axum::Json(json!({ "success": true })).into_response())
}
