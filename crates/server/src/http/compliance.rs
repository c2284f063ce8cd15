//! The compliance back office over HTTP: enforcement (violations, restrictions, appeals),
//! business verification and the messaging limit. Tenant routes under `/greenlight/v1`
//! (tenant token), operator routes under `/admin/v1` (admin token).

use super::*;
use axum::body::Bytes;
use axum::extract::{Path, State};
use greenlight_domain::policy::enforcement::AppealDecision;
use greenlight_store::NewViolation;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/greenlight/v1/enforcement", get(tenant_enforcement))
        .route("/greenlight/v1/violations/{id}/appeal", post(tenant_appeal))
        .route(
            "/greenlight/v1/business_verification",
            get(tenant_verification).post(submit_verification),
        )
        .route("/greenlight/v1/messaging_limit", get(tenant_limit))
        .route(
            "/admin/v1/businesses/{business_id}/violations",
            post(file_violation),
        )
        .route(
            "/admin/v1/businesses/{business_id}/enforcement",
            get(admin_enforcement),
        )
        .route(
            "/admin/v1/businesses/{business_id}/restrictions/lift",
            post(lift_restrictions),
        )
        .route("/admin/v1/violations/{id}/appeal", post(decide_appeal))
        .route(
            "/admin/v1/businesses/{business_id}/verification",
            get(admin_verification).post(decide_verification),
        )
        .route(
            "/admin/v1/businesses/{business_id}/messaging_limit",
            get(admin_limit),
        )
}

fn to_json<T: serde::Serialize>(v: &T) -> Response {
    Json(serde_json::to_value(v).unwrap_or_default()).into_response()
}

/// An optional string field of at most `max` characters.
fn opt_str(v: &Value, k: &str, max: usize) -> HttpResult<Option<String>> {
    match v.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.chars().count() <= max => {
            Ok((!s.trim().is_empty()).then(|| s.trim().to_string()))
        }
        Some(Value::String(_)) => Err(ApiError::invalid_parameter(format!(
            "`{k}` may be at most {max} characters"
        ))
        .into()),
        Some(_) => Err(ApiError::invalid_parameter(format!("`{k}` must be a string")).into()),
    }
}

fn req_str(v: &Value, k: &str, max: usize, what: &str) -> HttpResult<String> {
    opt_str(v, k, max)?
        .ok_or_else(|| ApiError::missing_parameter(format!("`{k}` is required: {what}")).into())
}

// ---- enforcement ----------------------------------------------------------------------------

async fn tenant_enforcement(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
) -> HttpResult {
    let p = tenant(&state, &headers, &uri).await?;
    let v = state
        .store
        .enforcement(&p.scope, state.now())
        .await?
        .ok_or_else(|| ApiError::unknown_object(&p.scope.business_id))?;
    Ok(to_json(&v))
}

async fn admin_enforcement(
    State(state): State<AppState>,
    Path(business_id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> HttpResult {
    require_admin(&state, &headers, &uri)?;
    let v = state
        .store
        .enforcement(
            &Scope {
                business_id: business_id.clone(),
            },
            state.now(),
        )
        .await?
        .ok_or_else(|| ApiError::unknown_object(&business_id))?;
    Ok(to_json(&v))
}

async fn file_violation(
    State(state): State<AppState>,
    Path(business_id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> HttpResult {
    require_admin(&state, &headers, &uri)?;
    let v = json_object(&body)?;
    let violation_type = req_str(
        &v,
        "violation_type",
        100,
        "Meta's policy violation type, e.g. SCAM, ADULT, ALCOHOL",
    )?;
    if !violation_type
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ' ' || c == '-')
    {
        return Err(ApiError::invalid_parameter(
            "`violation_type` must be a type name of letters, digits and underscores, e.g. SCAM",
        )
        .into());
    }
    let evidence = req_str(
        &v,
        "evidence",
        10_000,
        "what happened, with references (message ids, complaint, URL)",
    )?;
    let severe = match v.get("severe") {
        None | Some(Value::Null) => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(_) => {
            return Err(ApiError::invalid_parameter("`severe` must be true or false").into())
        }
    };
    let rec = state
        .store
        .file_violation(
            &business_id,
            NewViolation {
                violation_type: violation_type.replace([' ', '-'], "_"),
                evidence,
                severe,
            },
            state.now(),
        )
        .await?
        .ok_or_else(|| ApiError::unknown_object(&business_id))?;
    Ok((
        StatusCode::CREATED,
        Json(serde_json::to_value(&rec).unwrap_or_default()),
    )
        .into_response())
}

async fn lift_restrictions(
    State(state): State<AppState>,
    Path(business_id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> HttpResult {
    require_admin(&state, &headers, &uri)?;
    let v = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        json_object(&body)?
    };
    let t = opt_str(&v, "restriction_type", 100)?;
    if let Some(t) = &t {
        if greenlight_domain::policy::enforcement::RestrictionType::parse(t).is_none() {
            return Err(ApiError::invalid_parameter(format!(
                "`restriction_type` {t:?} is not one of RESTRICTED_BIZ_INITIATED_MESSAGING, RESTRICTED_CUSTOMER_INITIATED_MESSAGING, RESTRICTED_ADD_PHONE_NUMBER_ACTION"
            ))
            .into());
        }
    }
    let scope = Scope {
        business_id: business_id.clone(),
    };
    if state
        .store
        .enforcement(&scope, state.now())
        .await?
        .is_none()
    {
        return Err(ApiError::unknown_object(&business_id).into());
    }
    let n = state
        .store
        .lift_restrictions(&scope, t, state.now())
        .await?;
    Ok(Json(json!({ "success": true, "lifted": n })).into_response())
}

async fn tenant_appeal(
    State(state): State<AppState>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> HttpResult {
    let p = tenant(&state, &headers, &uri).await?;
    let v = json_object(&body)?;
    let reason = req_str(&v, "reason", 5_000, "why the violation should be reversed")?;
    let rec = state
        .store
        .appeal_violation(&p.scope, &id, reason, state.now())
        .await?
        .ok_or_else(|| ApiError::unknown_object(&id))?;
    Ok(to_json(&rec))
}

async fn decide_appeal(
    State(state): State<AppState>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> HttpResult {
    require_admin(&state, &headers, &uri)?;
    let v = json_object(&body)?;
    let decision = match req_str(&v, "decision", 20, "\"reversed\" or \"unchanged\"")?.as_str() {
        "reversed" => AppealDecision::Reversed,
        "unchanged" => AppealDecision::Unchanged,
        other => {
            return Err(ApiError::invalid_parameter(format!(
                "`decision` {other:?} must be \"reversed\" or \"unchanged\""
            ))
            .into())
        }
    };
    let rec = state
        .store
        .decide_appeal(&id, decision, state.now())
        .await?
        .ok_or_else(|| ApiError::unknown_object(&id))?;
    Ok(to_json(&rec))
}

// ---- verification and the messaging limit ----------------------------------------------------

async fn tenant_verification(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
) -> HttpResult {
    let p = tenant(&state, &headers, &uri).await?;
    let v = state
        .store
        .verification(&p.scope)
        .await?
        .ok_or_else(|| ApiError::unknown_object(&p.scope.business_id))?;
    Ok(to_json(&v))
}

async fn submit_verification(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> HttpResult {
    let p = tenant(&state, &headers, &uri).await?;
    let v = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        json_object(&body)?
    };
    let note = opt_str(&v, "note", 5_000)?;
    let view = state
        .store
        .submit_verification(&p.scope, note, state.now())
        .await?;
    Ok(to_json(&view))
}

async fn admin_verification(
    State(state): State<AppState>,
    Path(business_id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> HttpResult {
    require_admin(&state, &headers, &uri)?;
    let v = state
        .store
        .verification(&Scope {
            business_id: business_id.clone(),
        })
        .await?
        .ok_or_else(|| ApiError::unknown_object(&business_id))?;
    Ok(to_json(&v))
}

async fn decide_verification(
    State(state): State<AppState>,
    Path(business_id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> HttpResult {
    require_admin(&state, &headers, &uri)?;
    let v = json_object(&body)?;
    let approve = match req_str(&v, "decision", 20, "\"verified\" or \"rejected\"")?.as_str() {
        "verified" => true,
        "rejected" => false,
        other => {
            return Err(ApiError::invalid_parameter(format!(
                "`decision` {other:?} must be \"verified\" or \"rejected\""
            ))
            .into())
        }
    };
    let reason = opt_str(&v, "reason", 5_000)?;
    let view = state
        .store
        .decide_verification(
            &Scope {
                business_id: business_id.clone(),
            },
            approve,
            reason,
            state.now(),
        )
        .await?
        .ok_or_else(|| ApiError::unknown_object(&business_id))?;
    // cached principals carry the numbers' limits
    state.invalidate_tenant(&business_id);
    Ok(to_json(&view))
}

async fn tenant_limit(State(state): State<AppState>, uri: Uri, headers: HeaderMap) -> HttpResult {
    let p = tenant(&state, &headers, &uri).await?;
    Ok(to_json(
        &state.store.messaging_limit(&p.scope, state.now()).await?,
    ))
}

async fn admin_limit(
    State(state): State<AppState>,
    Path(business_id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> HttpResult {
    require_admin(&state, &headers, &uri)?;
    let scope = Scope {
        business_id: business_id.clone(),
    };
    if state.store.verification(&scope).await?.is_none() {
        return Err(ApiError::unknown_object(&business_id).into());
    }
    Ok(to_json(
        &state.store.messaging_limit(&scope, state.now()).await?,
    ))
}
