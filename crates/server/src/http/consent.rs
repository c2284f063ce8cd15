//! The consent registry API (`/greenlight/v1/{waba_id}/opt_ins`, PRODUCT.md "Compliance
//! extensions"): record, list (Graph-style paging), revoke with history kept, batch.

use super::*;
use axum::body::Bytes;
use axum::extract::{Path, State};
use greenlight_store::{NewOptIn, OptInFilter, Revocation};

pub const BATCH_MAX: usize = 1000;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/greenlight/v1/{waba_id}/opt_ins", post(record).get(list))
        .route("/greenlight/v1/{waba_id}/opt_ins/batch", post(batch))
        .route(
            "/greenlight/v1/{waba_id}/opt_ins/{wa_id}",
            axum::routing::delete(revoke),
        )
}

pub const SCOPES: &[&str] = &["marketing", "utility", "all"];

/// Parses one opt-in; `at` names the item in errors (`opt_ins[3].`).
pub fn parse_opt_in(
    v: &Value,
    at: &str,
    now: i64,
    recorded_by: &str,
) -> Result<NewOptIn, ApiError> {
    let s = |k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
    };
    let wa = match v.get("wa_id") {
        Some(Value::String(x)) => x.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => {
            return Err(ApiError::missing_parameter(format!(
                "`{at}wa_id` is required: the customer's WhatsApp number, e.g. \"447700900123\""
            )))
        }
    };
    let digits: String = wa.chars().filter(char::is_ascii_digit).collect();
    if wa
        .chars()
        .any(|c| !(c.is_ascii_digit() || " +-()".contains(c)))
        || !(7..=15).contains(&digits.len())
    {
        return Err(ApiError::invalid_parameter(format!(
            "`{at}wa_id` {wa:?} must be a phone number in international format (7 to 15 digits)"
        )));
    }
    let scope = s("scope").ok_or_else(|| {
        ApiError::missing_parameter(format!(
            "`{at}scope` is required: one of marketing, utility, all"
        ))
    })?;
    if !SCOPES.contains(&scope) {
        return Err(ApiError::invalid_parameter(format!(
            "`{at}scope` {scope:?} must be one of marketing, utility, all"
        )));
    }
    let source = s("source").ok_or_else(|| {
        ApiError::missing_parameter(format!(
            "`{at}source` is required: where consent was given, e.g. \"web_form\""
        ))
    })?;
    if source.chars().count() > 128 {
        return Err(ApiError::invalid_parameter(format!(
            "`{at}source` must be at most 128 characters"
        )));
    }
    let proof = s("proof").ok_or_else(|| {
        ApiError::missing_parameter(format!("`{at}proof` is required: the consent text the customer agreed to, or a URL to the record"))
    })?;
    if proof.chars().count() > 4096 {
        return Err(ApiError::invalid_parameter(format!(
            "`{at}proof` must be at most 4096 characters"
        )));
    }
    let captured_at = match v.get("captured_at") {
        None | Some(Value::Null) => now,
        Some(Value::Number(n)) => {
            let secs = n.as_i64().ok_or_else(|| {
                ApiError::invalid_parameter(format!("`{at}captured_at` must be whole unix seconds"))
            })?;
            if secs < 1_230_768_000 || secs > now / 1000 + 300 {
                return Err(ApiError::invalid_parameter(format!(
                    "`{at}captured_at` {secs} must be unix seconds between 2009 and now; consent cannot be captured in the future"
                )));
            }
            secs * 1000
        }
        Some(_) => {
            return Err(ApiError::invalid_parameter(format!(
                "`{at}captured_at` must be unix seconds (a number)"
            )))
        }
    };
    Ok(NewOptIn {
        wa_id: digits,
        scope: scope.to_string(),
        source: source.to_string(),
        proof: proof.to_string(),
        captured_at,
        recorded_by: recorded_by.to_string(),
    })
}

async fn owner(
    state: &AppState,
    headers: &HeaderMap,
    uri: &Uri,
    waba: &str,
) -> HttpResult<Arc<Principal>> {
    let p = tenant(state, headers, uri).await?;
    if !p.owns_waba(waba) {
        return Err(ApiError::unknown_object(waba).into());
    }
    Ok(p)
}

async fn record(
    State(state): State<AppState>,
    Path(waba): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> HttpResult {
    let p = owner(&state, &headers, &uri, &waba).await?;
    let v = json_object(&body)?;
    let item = parse_opt_in(&v, "", state.now(), "api")?;
    let mut rec = state
        .store
        .record_opt_ins(&p.scope, &waba, vec![item], state.now())
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(serde_json::to_value(rec.remove(0)).unwrap_or_default()),
    )
        .into_response())
}

async fn batch(
    State(state): State<AppState>,
    Path(waba): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> HttpResult {
    let p = owner(&state, &headers, &uri, &waba).await?;
    let v = json_object(&body)?;
    let items = v.get("opt_ins").and_then(Value::as_array).ok_or_else(|| {
        ApiError::missing_parameter("`opt_ins` is required: an array of up to 1,000 opt-in records")
    })?;
    if items.is_empty() || items.len() > BATCH_MAX {
        return Err(ApiError::invalid_parameter(format!(
            "`opt_ins` must hold 1 to {BATCH_MAX} records (it has {})",
            items.len()
        ))
        .into());
    }
    let now = state.now();
    let parsed = items
        .iter()
        .enumerate()
        .map(|(i, it)| parse_opt_in(it, &format!("opt_ins[{i}]."), now, "api:batch"))
        .collect::<Result<Vec<_>, _>>()?;
    let recs = state
        .store
        .record_opt_ins(&p.scope, &waba, parsed, now)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "data": recs, "count": recs.len() })),
    )
        .into_response())
}

async fn list(
    State(state): State<AppState>,
    Path(waba): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> HttpResult {
    let p = owner(&state, &headers, &uri, &waba).await?;
    let scope = query_param(&uri, "scope");
    if let Some(s) = &scope {
        if !SCOPES.contains(&s.as_str()) {
            return Err(ApiError::invalid_parameter(
                "`scope` must be one of marketing, utility, all",
            )
            .into());
        }
    }
    let limit = match query_param(&uri, "limit") {
        None => 100,
        Some(l) => l
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .ok_or_else(|| ApiError::invalid_parameter("`limit` must be 1 to 1000"))?,
    };
    let after = match query_param(&uri, "after") {
        None => None,
        Some(a) => Some(a.parse::<i64>().map_err(|_| {
            ApiError::invalid_parameter("`after` must be a cursor from paging.cursors.after")
        })?),
    };
    let filter = OptInFilter {
        wa_id: query_param(&uri, "wa_id").map(|w| w.chars().filter(char::is_ascii_digit).collect()),
        scope,
        include_revoked: query_param(&uri, "include_revoked")
            .is_some_and(|v| v == "true" || v == "1"),
    };
    let (items, more) = state
        .store
        .list_opt_ins(&p.scope, &waba, filter, limit, after)
        .await?;
    let mut out = json!({ "data": items });
    if let (Some(first), Some(last)) = (items.first(), items.last()) {
        out["paging"] = json!({ "cursors": { "before": first.seq.to_string(), "after": last.seq.to_string() } });
        if more {
            let mut q: Vec<String> = uri
                .query()
                .unwrap_or("")
                .split('&')
                .filter(|kv| {
                    !kv.is_empty() && !kv.starts_with("after=") && !kv.starts_with("access_token=")
                })
                .map(str::to_string)
                .collect();
            q.push(format!("after={}", last.seq));
            out["paging"]["next"] = json!(format!(
                "{}{}?{}",
                state.public_url(),
                uri.path(),
                q.join("&")
            ));
        }
    }
    Ok(Json(out).into_response())
}

async fn revoke(
    State(state): State<AppState>,
    Path((waba, wa)): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
) -> HttpResult {
    let p = owner(&state, &headers, &uri, &waba).await?;
    let wa: String = wa.chars().filter(char::is_ascii_digit).collect();
    let scope = query_param(&uri, "scope");
    if let Some(s) = &scope {
        if !SCOPES.contains(&s.as_str()) {
            return Err(ApiError::invalid_parameter(
                "`scope` must be one of marketing, utility, all",
            )
            .into());
        }
    }
    let n = state
        .store
        .revoke_opt_ins(
            &p.scope,
            &waba,
            Revocation {
                wa_id: wa,
                scope,
                by: "api".into(),
                proof: query_param(&uri, "proof"),
                now: state.now(),
            },
        )
        .await?;
    Ok(Json(json!({ "success": true, "revoked": n })).into_response())
}
