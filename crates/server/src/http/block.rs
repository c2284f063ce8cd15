//! The Block Users API (cloud-api-facts.md §13.5): a business number blocks customers; sends to
//! a blocked customer answer 130403 until they are unblocked.

use super::*;
use axum::body::Bytes;
use axum::extract::{Path, State};
use greenlight_domain::phone;

pub fn routes() -> Router<AppState> {
    Router::new().route(
        "/{version}/{id}/block_users",
        get(list).post(block).delete(unblock),
    )
}

/// The `block_users` array: `[{"user": "+1…"}]` → (input, wa_id) pairs, or the failures.
/// (input, wa_id) of the valid entries, and the failure objects of the others.
type Users = (Vec<(String, String)>, Vec<Value>);

fn users(v: &Value, sender_cc: &str) -> HttpResult<Users> {
    if v.get("messaging_product").is_some_and(|m| m != "whatsapp") {
        return Err(ApiError::invalid_parameter("`messaging_product` must be \"whatsapp\"").into());
    }
    let arr = v
        .get("block_users")
        .and_then(Value::as_array)
        .ok_or_else(|| {
            ApiError::missing_parameter(
                "`block_users` is required: [{\"user\": \"<phone number>\"}]",
            )
        })?;
    if arr.is_empty() {
        return Err(
            ApiError::invalid_parameter("`block_users` must name at least one user").into(),
        );
    }
    let mut ok = Vec::new();
    let mut failed = Vec::new();
    for (i, u) in arr.iter().enumerate() {
        let input = u.get("user").and_then(Value::as_str).unwrap_or("");
        match phone::normalize_phone(input, sender_cc) {
            Ok(wa) if !input.is_empty() => ok.push((input.to_string(), wa)),
            _ => failed.push(json!({ "input": input, "errors": [{
                "code": 131009, "message": "Parameter value is not valid",
                "error_data": { "details": format!("block_users[{i}].user must be a phone number") } }] })),
        }
    }
    Ok((ok, failed))
}

#[allow(clippy::too_many_arguments)]
async fn change(
    state: AppState,
    version: String,
    id: String,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
    block: bool,
) -> HttpResult {
    check_version(&version, &method, &uri)?;
    let p = tenant(&state, &headers, &uri).await?;
    let phone = p.phone(&id).ok_or_else(|| ApiError::unknown_object(&id))?;
    let v = json_object(&body)?;
    let (ok, failed) = users(&v, phone::calling_code(&phone.digits))?;
    state
        .store
        .set_blocked(
            &p.scope,
            &id,
            ok.iter().map(|(_, w)| w.clone()).collect(),
            block,
            state.now(),
        )
        .await?;
    let done: Vec<Value> = ok
        .iter()
        .map(|(input, wa)| json!({ "input": input, "wa_id": wa }))
        .collect();
    let mut result = serde_json::Map::new();
    result.insert(
        if block {
            "added_users".into()
        } else {
            "removed_users".into()
        },
        Value::Array(done),
    );
    if !failed.is_empty() {
        result.insert("failed_users".into(), Value::Array(failed));
    }
    Ok(Json(json!({ "messaging_product": "whatsapp", "block_users": result })).into_response())
}

async fn block(
    State(state): State<AppState>,
    Path((version, id)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> HttpResult {
    change(state, version, id, method, uri, headers, body, true).await
}

async fn unblock(
    State(state): State<AppState>,
    Path((version, id)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> HttpResult {
    change(state, version, id, method, uri, headers, body, false).await
}

async fn list(
    State(state): State<AppState>,
    Path((version, id)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> HttpResult {
    check_version(&version, &method, &uri)?;
    let p = tenant(&state, &headers, &uri).await?;
    if p.phone(&id).is_none() {
        return Err(ApiError::unknown_object(&id).into());
    }
    let limit = query_param(&uri, "limit")
        .and_then(|l| l.parse::<usize>().ok())
        .filter(|n| (1..=1000).contains(n))
        .unwrap_or(100);
    let after = query_param(&uri, "after");
    let users = state.store.blocked(&p.scope, &id, limit, after).await?;
    let data: Vec<Value> = users
        .iter()
        .map(|w| json!({ "messaging_product": "whatsapp", "wa_id": w }))
        .collect();
    let mut out = json!({ "data": data });
    if let Some(last) = users.last() {
        out["paging"] = json!({ "cursors": { "before": users[0], "after": last } });
    }
    Ok(Json(out).into_response())
}
