//! Meta's Cloud API surface under any `/vN.M` prefix: sending, phone numbers, WABAs, business
//! profiles, media objects (cloud-api-facts.md §1, §12, §13).

use super::*;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::routing::{get, post};
use greenlight_domain::message::{self, Request};
use greenlight_domain::phone;
use greenlight_store::{PhoneNumber, SendCommand, Waba};
use sha2::{Digest, Sha256};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/{version}/{id}",
            get(get_object).post(post_object).delete(delete_object),
        )
        .route("/{version}/{id}/messages", post(send))
        .route("/{version}/{id}/phone_numbers", get(phone_numbers))
        .route(
            "/{version}/{id}/whatsapp_business_profile",
            get(get_profile).post(post_profile),
        )
}

pub fn phone_json(p: &PhoneNumber) -> Value {
    json!({
        "id": p.id,
        "display_phone_number": p.display_phone_number,
        "verified_name": p.verified_name,
        "quality_rating": p.quality_rating,
        "quality_score": { "score": p.quality_rating },
        "status": p.status,
        "name_status": p.name_status,
        "new_name_status": p.new_name_status,
        "code_verification_status": p.code_verification_status,
        "platform_type": "CLOUD_API",
        "throughput": { "level": p.throughput_level },
        "whatsapp_business_manager_messaging_limit": p.messaging_limit_tier,
        "messaging_limit_tier": p.messaging_limit_tier,
        "is_official_business_account": false,
        "is_pin_enabled": false,
        "account_mode": "LIVE",
        "search_visibility": "VISIBLE",
        "country_dial_code": phone::calling_code(&p.digits),
        "last_onboarded_time": chrono_like(p.created_at),
    })
}

/// ISO-8601 in UTC (`2025-01-31T12:00:00+0000`), as Graph writes times.
fn chrono_like(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // civil-from-days (Howard Hinnant)
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}+0000",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

fn waba_json(w: &Waba) -> Value {
    json!({
        "id": w.id,
        "name": w.name,
        "currency": w.currency,
        "timezone_id": w.timezone_id,
        "message_template_namespace": w.message_template_namespace,
        "business_verification_status": w.business_verification_status,
        "account_review_status": w.account_review_status,
        "status": "ACTIVE",
        "ownership_type": "SELF",
        "country": "US",
        "creation_time": chrono_like(w.created_at),
        "health_status": { "can_send_message": "AVAILABLE" },
    })
}

const PHONE_DEFAULT: &[&str] = &[
    "id",
    "display_phone_number",
    "verified_name",
    "quality_rating",
];
const WABA_DEFAULT: &[&str] = &["id", "name", "timezone_id", "message_template_namespace"];

async fn get_object(
    State(state): State<AppState>,
    Path((version, id)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> HttpResult {
    check_version(&version, &method, &uri)?;
    let p = tenant(&state, &headers, &uri).await?;
    let fields = requested_fields(query_param(&uri, "fields").as_deref());
    if p.phone(&id).is_some() {
        let phone = state
            .store
            .phone_number(&p.scope, &id)
            .await?
            .ok_or_else(|| ApiError::unknown_object(&id))?;
        return Ok(Json(select_fields(
            &phone_json(&phone),
            fields,
            PHONE_DEFAULT,
            "WhatsAppBusinessPhoneNumber",
        )?)
        .into_response());
    }
    if p.owns_waba(&id) {
        let w = state
            .store
            .waba(&p.scope, &id)
            .await?
            .ok_or_else(|| ApiError::unknown_object(&id))?;
        return Ok(Json(select_fields(
            &waba_json(&w),
            fields,
            WABA_DEFAULT,
            "WhatsAppBusinessAccount",
        )?)
        .into_response());
    }
    if let Some(m) = state.store.media(&p.scope, &id).await? {
        return media::media_info(&state, &uri, m);
    }
    if let Some(t) = state.store.template(&p.scope, &id).await? {
        return super::templates::get_one(&t, &uri);
    }
    Err(ApiError::unknown_object(&id).into())
}

/// `POST /{phone-number-id}`: settings Meta accepts on a number (pin, webhook override, …).
/// greenlight applies the webhook override (`webhooks::overrides`); the rest it only checks.
async fn post_object(
    State(state): State<AppState>,
    Path((version, id)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> HttpResult {
    check_version(&version, &method, &uri)?;
    let p = tenant(&state, &headers, &uri).await?;
    if p.phone(&id).is_none() {
        if let Some(t) = state.store.template(&p.scope, &id).await? {
            return super::templates::edit(&state, &p, t, &headers, &body).await;
        }
        return Err(ApiError::unknown_object(&id).into());
    }
    let v = json_object(&body)?;
    if let Some(pin) = v.get("pin") {
        let ok = pin
            .as_str()
            .is_some_and(|s| s.len() == 6 && s.chars().all(|c| c.is_ascii_digit()));
        if !ok {
            return Err(ApiError::invalid_parameter("`pin` must be a 6-digit string").into());
        }
    }
    if let Some(name) = v.get("new_display_name") {
        let name = name
            .as_str()
            .map(str::trim)
            .filter(|n| !n.is_empty() && n.chars().count() <= 256)
            .ok_or_else(|| {
                ApiError::invalid_parameter(
                    "`new_display_name` must be 1 to 256 characters: the name customers will see",
                )
            })?;
        state
            .store
            .request_display_name(&p.scope, &id, name, state.now())
            .await?;
    }
    crate::webhooks::overrides::apply_phone_configuration(&state, &p, &id, &v).await?;
    Ok(Json(json!({ "success": true })).into_response())
}

async fn delete_object(
    State(state): State<AppState>,
    Path((version, id)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> HttpResult {
    check_version(&version, &method, &uri)?;
    let p = tenant(&state, &headers, &uri).await?;
    media::delete(&state, &p, &uri, &id).await
}

async fn send(
    State(state): State<AppState>,
    Path((version, id)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> HttpResult {
    check_version(&version, &method, &uri)?;
    let p = tenant(&state, &headers, &uri).await?;
    let phone = p
        .phone(&id)
        .ok_or_else(|| ApiError::unknown_object(&id))?
        .clone();
    let value = json_object(&body)?;
    // checked now (it hashes the body), reported after the body's own errors as before
    let idempotency = idempotency_key(&headers, &phone.id, &value);
    match message::parse_request_owned(value, phone::calling_code(&phone.digits))? {
        Request::MarkRead { message_id, .. } => {
            if state
                .store
                .mark_read(&p.scope, &phone.id, &message_id, state.now())
                .await?
            {
                Ok(Json(json!({ "success": true })).into_response())
            } else {
                Err(ApiError::invalid_value(format!(
                    "`message_id` {message_id} is not a message this number received; mark as read the wamid of an inbound message."
                ))
                .into())
            }
        }
        Request::Send(request) => {
            let idempotency = idempotency?;
            let cmd = SendCommand {
                phone,
                request,
                idempotency,
                now: state.now(),
                delivered_after: state.config.delivered_delay_ms as i64,
            };
            let r = match state.store.send(&p.scope, cmd).await {
                Ok(r) => r,
                Err(greenlight_store::StoreError::Api(e)) => {
                    state.metrics.refused(e.code);
                    return Err(e.into());
                }
                Err(e) => return Err(e.into()),
            };
            state
                .metrics
                .messages_accepted
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let mut resp = (
                [(
                    axum::http::header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                )],
                r.body.into_json(),
            )
                .into_response();
            if r.replayed {
                resp.headers_mut()
                    .insert("idempotent-replayed", HeaderValue::from_static("true"));
            }
            Ok(resp)
        }
    }
}

/// `Idempotency-Key` (≤ 255 characters) with the SHA-256 of the canonical body.
pub fn idempotency_key(
    headers: &HeaderMap,
    phone_id: &str,
    body: &Value,
) -> HttpResult<Option<(String, String)>> {
    let Some(k) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let k = k
        .to_str()
        .map_err(|_| ApiError::invalid_parameter("Idempotency-Key must be visible ASCII"))?
        .trim()
        .to_string();
    if k.is_empty() || k.len() > 255 {
        return Err(
            ApiError::invalid_parameter("Idempotency-Key must be 1 to 255 characters").into(),
        );
    }
    // serde_json's map is ordered by key, so this serialisation is canonical; the sending
    // number is part of the request (the same body from another number is another message).
    let canonical = serde_json::to_string(body).unwrap_or_default();
    Ok(Some((
        k,
        hex::encode(Sha256::digest(format!("{phone_id}|{canonical}").as_bytes())),
    )))
}

async fn phone_numbers(
    State(state): State<AppState>,
    Path((version, id)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> HttpResult {
    check_version(&version, &method, &uri)?;
    let p = tenant(&state, &headers, &uri).await?;
    if !p.owns_waba(&id) {
        return Err(ApiError::unknown_object(&id).into());
    }
    let fields = requested_fields(query_param(&uri, "fields").as_deref());
    let mut phones = state.store.phone_numbers_of_waba(&p.scope, &id).await?;
    if query_param(&uri, "sort").is_some_and(|s| s.contains("ascending")) {
        phones.reverse();
    }
    let data = phones
        .iter()
        .map(|ph| {
            select_fields(
                &phone_json(ph),
                fields.clone(),
                PHONE_DEFAULT,
                "WhatsAppBusinessPhoneNumber",
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    let first = phones.first().map(|p| p.id.clone()).unwrap_or_default();
    let last = phones.last().map(|p| p.id.clone()).unwrap_or_default();
    Ok(Json(json!({
        "data": data,
        "paging": { "cursors": { "before": cursor(&first), "after": cursor(&last) } },
    }))
    .into_response())
}

fn cursor(id: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id.as_bytes())
}

const PROFILE_FIELDS: &[&str] = &[
    "about",
    "address",
    "description",
    "email",
    "profile_picture_url",
    "websites",
    "vertical",
];
const VERTICALS: &[&str] = &[
    "ALCOHOL",
    "APPAREL",
    "AUTO",
    "BEAUTY",
    "EDU",
    "ENTERTAIN",
    "EVENT_PLAN",
    "FINANCE",
    "GOVT",
    "GROCERY",
    "HEALTH",
    "HOTEL",
    "NONPROFIT",
    "ONLINE_GAMBLING",
    "OTC_DRUGS",
    "OTHER",
    "PHYSICAL_GAMBLING",
    "PROF_SERVICES",
    "RESTAURANT",
    "RETAIL",
    "TRAVEL",
    "UNDEFINED",
    "",
];

async fn get_profile(
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
    let stored = state.store.business_profile(&p.scope, &id).await?;
    let fields = requested_fields(query_param(&uri, "fields").as_deref())
        .unwrap_or_else(|| PROFILE_FIELDS.iter().map(|s| s.to_string()).collect());
    let mut out = serde_json::Map::new();
    for f in fields {
        if !PROFILE_FIELDS.contains(&f.as_str()) && f != "messaging_product" {
            return Err(ApiError::invalid_parameter(format!(
                "Tried accessing nonexisting field ({f}) on node type (WhatsAppBusinessProfile); use some of {}",
                PROFILE_FIELDS.join(", ")
            ))
            .into());
        }
        if let Some(v) = stored.get(&f) {
            out.insert(f, v.clone());
        }
    }
    out.insert("messaging_product".into(), json!("whatsapp"));
    Ok(Json(json!({ "data": [Value::Object(out)] })).into_response())
}

/// Validates a profile update with Meta's limits (§13.4).
pub fn validate_profile(v: &Value) -> Result<Value, ApiError> {
    let obj = v
        .as_object()
        .ok_or_else(|| ApiError::invalid_parameter("body must be a JSON object"))?;
    let mut patch = serde_json::Map::new();
    let text = |k: &str, min: usize, max: usize| -> Result<Option<String>, ApiError> {
        match obj.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => {
                let n = s.chars().count();
                if n < min || n > max {
                    Err(ApiError::invalid_parameter(format!(
                        "`{k}` must be {min} to {max} characters (it has {n})"
                    )))
                } else {
                    Ok(Some(s.clone()))
                }
            }
            Some(_) => Err(ApiError::invalid_parameter(format!(
                "`{k}` must be a string"
            ))),
        }
    };
    if let Some(s) = text("about", 1, 139)? {
        patch.insert("about".into(), json!(s));
    }
    if let Some(s) = text("address", 0, 256)? {
        patch.insert("address".into(), json!(s));
    }
    if let Some(s) = text("description", 0, 512)? {
        patch.insert("description".into(), json!(s));
    }
    if let Some(s) = text("email", 0, 128)? {
        let valid = s.is_empty()
            || (s.contains('@')
                && !s.starts_with('@')
                && s.rsplit('@').next().is_some_and(|d| d.contains('.')));
        if !valid {
            return Err(ApiError::invalid_parameter(format!(
                "`email` {s:?} is not a valid email address"
            )));
        }
        patch.insert("email".into(), json!(s));
    }
    if let Some(s) = text("vertical", 0, 64)? {
        if !VERTICALS.contains(&s.as_str()) {
            return Err(ApiError::invalid_parameter(format!(
                "`vertical` {s:?} is not one of {}",
                VERTICALS[..21].join(", ")
            )));
        }
        patch.insert("vertical".into(), json!(s));
    }
    match obj.get("websites") {
        None | Some(Value::Null) => {}
        Some(Value::Array(a)) => {
            if a.len() > 2 {
                return Err(ApiError::invalid_parameter(
                    "`websites` takes at most 2 URLs",
                ));
            }
            for (i, w) in a.iter().enumerate() {
                let s = w.as_str().ok_or_else(|| {
                    ApiError::invalid_parameter(format!("`websites[{i}]` must be a string"))
                })?;
                if s.len() > 256 || !(s.starts_with("http://") || s.starts_with("https://")) {
                    return Err(ApiError::invalid_parameter(format!(
                        "`websites[{i}]` must be an http:// or https:// URL of at most 256 characters"
                    )));
                }
            }
            patch.insert("websites".into(), Value::Array(a.clone()));
        }
        Some(_) => {
            return Err(ApiError::invalid_parameter(
                "`websites` must be an array of URLs",
            ))
        }
    }
    if let Some(h) = obj.get("profile_picture_handle").and_then(Value::as_str) {
        patch.insert(
            "profile_picture_url".into(),
            json!(format!("https://pps.whatsapp.net/v/{h}")),
        );
    }
    Ok(Value::Object(patch))
}

async fn post_profile(
    State(state): State<AppState>,
    Path((version, id)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> HttpResult {
    check_version(&version, &method, &uri)?;
    let p = tenant(&state, &headers, &uri).await?;
    if p.phone(&id).is_none() {
        return Err(ApiError::unknown_object(&id).into());
    }
    let v = json_object(&body)?;
    if let Some(mp) = v.get("messaging_product") {
        if mp != "whatsapp" {
            return Err(
                ApiError::invalid_parameter("`messaging_product` must be \"whatsapp\"").into(),
            );
        }
    }
    let patch = validate_profile(&v)?;
    state
        .store
        .set_business_profile(&p.scope, &id, patch)
        .await?;
    Ok(Json(json!({ "success": true })).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_time() {
        assert_eq!(chrono_like(0), "1970-01-01T00:00:00+0000");
        assert_eq!(chrono_like(1_700_000_000_000), "2023-11-14T22:13:20+0000");
    }

    #[test]
    fn profile_limits() {
        assert!(validate_profile(&json!({"about": "a".repeat(139)})).is_ok());
        assert!(validate_profile(&json!({"about": "a".repeat(140)})).is_err());
        assert!(validate_profile(&json!({"about": ""})).is_err());
        assert!(validate_profile(&json!({"websites": ["https://a", "https://b"]})).is_ok());
        assert!(
            validate_profile(&json!({"websites": ["https://a", "https://b", "https://c"]}))
                .is_err()
        );
        assert!(validate_profile(&json!({"websites": ["ftp://a"]})).is_err());
        assert!(validate_profile(&json!({"email": "x@y.com"})).is_ok());
        assert!(validate_profile(&json!({"email": "nope"})).is_err());
        assert!(validate_profile(&json!({"vertical": "RETAIL"})).is_ok());
        assert!(validate_profile(&json!({"vertical": "SHOES"})).is_err());
    }
}
