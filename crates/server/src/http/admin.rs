//! The operator's API (`/admin/v1`, `Bearer $GREENLIGHT_ADMIN_TOKEN`).

use super::*;
use axum::body::Bytes;
use axum::extract::State;
use greenlight_store::{NewPhoneNumber, NewTenant, NewWebhook};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/v1/tenants", post(create_tenant))
        .route(
            "/admin/v1/phone_numbers/{phone_id}/display_name",
            post(decide_display_name),
        )
}

/// Parses the body of `POST /admin/v1/tenants` (PRODUCT.md).
pub fn parse_new_tenant(v: &Value) -> Result<NewTenant, ApiError> {
    let name = match v.get("business_name") {
        Some(Value::String(s)) if !s.trim().is_empty() && s.chars().count() <= 256 => {
            s.trim().to_string()
        }
        Some(Value::String(_)) => {
            return Err(ApiError::invalid_parameter(
                "`business_name` must be 1 to 256 characters",
            ))
        }
        Some(_) => {
            return Err(ApiError::invalid_parameter(
                "`business_name` must be a string",
            ))
        }
        None => {
            return Err(ApiError::missing_parameter(
                "`business_name` is required: the business portfolio's name",
            ))
        }
    };
    let verified = match v.get("verified") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            return Err(ApiError::invalid_parameter(
                "`verified` must be true or false",
            ))
        }
    };
    let mut phones = Vec::new();
    match v.get("phone_numbers") {
        None | Some(Value::Null) => phones.push(NewPhoneNumber {
            display_phone_number: "+1 555 010 0001".into(),
            verified_name: name.clone(),
        }),
        Some(Value::Array(a)) => {
            if a.is_empty() {
                return Err(ApiError::invalid_parameter("`phone_numbers` must hold at least one number (or be omitted for a default one)"));
            }
            if a.len() > 25 {
                return Err(ApiError::invalid_parameter(
                    "`phone_numbers` may hold at most 25 numbers per WABA",
                ));
            }
            let mut seen = std::collections::HashSet::new();
            for (i, p) in a.iter().enumerate() {
                let display = p
                    .get("display_phone_number")
                    .and_then(Value::as_str)
                    .ok_or_else(|| ApiError::missing_parameter(format!("`phone_numbers[{i}].display_phone_number` is required, e.g. \"+1 555 010 0001\"")))?;
                let digits: String = display.chars().filter(char::is_ascii_digit).collect();
                let bad_chars = display
                    .chars()
                    .any(|c| !(c.is_ascii_digit() || " +-()".contains(c)));
                if bad_chars || !(7..=15).contains(&digits.len()) {
                    return Err(ApiError::invalid_parameter(format!(
                        "`phone_numbers[{i}].display_phone_number` {display:?} must be a phone number with country code (7 to 15 digits)"
                    )));
                }
                if !seen.insert(digits) {
                    return Err(ApiError::invalid_parameter(format!(
                        "`phone_numbers[{i}]` repeats a number already given"
                    )));
                }
                let verified_name = match p.get("verified_name") {
                    None | Some(Value::Null) => name.clone(),
                    Some(Value::String(s)) if !s.trim().is_empty() && s.chars().count() <= 256 => {
                        s.clone()
                    }
                    _ => {
                        return Err(ApiError::invalid_parameter(format!(
                            "`phone_numbers[{i}].verified_name` must be 1 to 256 characters"
                        )))
                    }
                };
                phones.push(NewPhoneNumber {
                    display_phone_number: display.to_string(),
                    verified_name,
                });
            }
        }
        Some(_) => {
            return Err(ApiError::invalid_parameter(
                "`phone_numbers` must be an array of {display_phone_number, verified_name}",
            ))
        }
    }
    if !verified && phones.len() > 2 {
        return Err(ApiError::invalid_parameter(format!(
            "An unverified business may register at most 2 phone numbers (Meta's cap before business verification); give at most 2 or create it with \"verified\": true ({} given)",
            phones.len()
        )));
    }
    let webhook = match v.get("webhook") {
        None | Some(Value::Null) => None,
        Some(w @ Value::Object(_)) => {
            let hook: NewWebhook = serde_json::from_value(w.clone()).map_err(|e| {
                ApiError::invalid_parameter(format!(
                    "`webhook` must be {{callback_url, verify_token}}: {e}"
                ))
            })?;
            if !(hook.callback_url.starts_with("http://")
                || hook.callback_url.starts_with("https://"))
            {
                return Err(ApiError::invalid_parameter(
                    "`webhook.callback_url` must be an http:// or https:// URL",
                ));
            }
            Some(hook)
        }
        Some(_) => {
            return Err(ApiError::invalid_parameter(
                "`webhook` must be an object {callback_url, verify_token}",
            ))
        }
    };
    Ok(NewTenant {
        business_name: name,
        verified,
        phone_numbers: phones,
        webhook,
    })
}

/// The operator decides a display-name review: `{"decision": "APPROVED" | "REJECTED",
/// "rejection_reason"?: Meta's reason, e.g. NAME_FORMAT_UNACCEPTABLE}`.
async fn decide_display_name(
    State(state): State<AppState>,
    axum::extract::Path(phone_id): axum::extract::Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> HttpResult {
    require_admin(&state, &headers, &uri)?;
    let v = json_object(&body)?;
    let approve = match v.get("decision").and_then(Value::as_str) {
        Some("APPROVED") => true,
        Some("REJECTED") => false,
        _ => {
            return Err(ApiError::missing_parameter(
                "`decision` must be \"APPROVED\" or \"REJECTED\"",
            )
            .into())
        }
    };
    const REASONS: &[&str] = &[
        "NAME_EMPLOYEE_ISSUE",
        "NAME_ENDCLIENT_NOTRELATED",
        "NAME_FORMAT_UNACCEPTABLE",
        "NAME_INDIVIDUAL_ISSUE",
        "NAME_NOT_CONSISTENT",
        "UNKNOWN",
    ];
    let reason = v
        .get("rejection_reason")
        .and_then(Value::as_str)
        .map(str::to_string);
    if let Some(r) = &reason {
        if !REASONS.contains(&r.as_str()) {
            return Err(ApiError::invalid_parameter(format!(
                "`rejection_reason` must be one of {}",
                REASONS.join(", ")
            ))
            .into());
        }
    }
    let scope = state
        .store
        .scope_of_phone(&phone_id)
        .await?
        .ok_or_else(|| ApiError::unknown_object(&phone_id))?;
    let phone = state
        .store
        .decide_display_name(&scope, &phone_id, approve, reason, state.now())
        .await?;
    state.invalidate_tenant(&scope.business_id);
    Ok(Json(json!({ "id": phone.id, "verified_name": phone.verified_name, "name_status": phone.name_status, "new_name_status": phone.new_name_status })).into_response())
}

async fn create_tenant(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> HttpResult {
    require_admin(&state, &headers, &uri)?;
    let v = json_object(&body)?;
    if state.config.mode == crate::config::Mode::Gateway {
        return crate::gateway::admin::create_tenant(&state, &v).await;
    }
    let t = parse_new_tenant(&v)?;
    crate::webhooks::handshake::verify_new_tenant(&state, &t).await?;
    let created = state.store.create_tenant(t, state.now()).await?;
    tracing::info!(business_id = %created.business_id, "tenant created");
    Ok((
        StatusCode::CREATED,
        Json(serde_json::to_value(&created).unwrap_or_default()),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimal_tenant_gets_one_number() {
        let t = parse_new_tenant(&json!({"business_name": "Acme"})).unwrap();
        assert_eq!(t.phone_numbers.len(), 1);
        assert!(!t.verified);
    }

    #[test]
    fn refusals() {
        assert_eq!(parse_new_tenant(&json!({})).unwrap_err().code, 131008);
        assert_eq!(
            parse_new_tenant(&json!({"business_name": " "}))
                .unwrap_err()
                .code,
            100
        );
        assert!(parse_new_tenant(
            &json!({"business_name": "A", "phone_numbers": [{"display_phone_number": "12"}]})
        )
        .is_err());
        assert!(parse_new_tenant(&json!({"business_name": "A", "phone_numbers": [{"display_phone_number": "+1 555 0100 001"}, {"display_phone_number": "15550100001"}]})).is_err());
        assert!(parse_new_tenant(
            &json!({"business_name": "A", "webhook": {"callback_url": "ftp://x"}})
        )
        .is_err());
        assert!(parse_new_tenant(&json!({"business_name": "A", "verified": "yes"})).is_err());
    }
}
