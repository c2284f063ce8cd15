//! Webhook subscriptions through Meta's Graph calls (cloud-api-facts.md §10.6):
//!
//! - `POST/GET/DELETE /{vN.M}/{app-id}/subscriptions` with the *app token*
//!   (`Authorization: Bearer <app_id>|<app_secret>`): callback URL, verify token and fields of
//!   the app's `whatsapp_business_account` subscription. POST runs the handshake whenever the
//!   URL or the token changes, and *adds* the given fields to those already subscribed (as
//!   Graph does); DELETE with `fields` removes those fields, without removes the subscription.
//!   A subscription made at tenant creation covers every field until a POST names fields.
//! - `POST/GET/DELETE /{vN.M}/{waba-id}/subscribed_apps` with the tenant token: links the WABA
//!   to the tenant's app, optionally with `override_callback_uri` + `verify_token` (handshake
//!   first). A tenant's WABA is subscribed from creation; DELETE stops its webhooks.
//!
//! Parameters are read from the query string, a JSON body or a form body, as Graph accepts.

use super::*;
use crate::webhooks::handshake;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use greenlight_store::{AppRecord, AppSubscription};
use std::collections::HashMap;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/{version}/{id}/subscriptions",
            get(get_subscriptions)
                .post(post_subscriptions)
                .delete(delete_subscriptions),
        )
        .route(
            "/{version}/{id}/subscribed_apps",
            get(get_subscribed_apps)
                .post(post_subscribed_apps)
                .delete(delete_subscribed_apps),
        )
}

/// The `whatsapp_business_account` fields an app can subscribe to (§10.6).
pub const FIELDS: &[&str] = &[
    "account_alerts",
    "account_review_update",
    "account_update",
    "automatic_events",
    "business_capability_update",
    "calls",
    "flows",
    "history",
    "message_echoes",
    "message_template_components_update",
    "message_template_quality_update",
    "message_template_status_update",
    "messages",
    "partner_solutions",
    "payment_configuration_update",
    "phone_number_name_update",
    "phone_number_quality_update",
    "security",
    "smb_app_state_sync",
    "smb_message_echoes",
    "template_category_update",
    "tracking_events",
    "user_preferences",
];

const OBJECT: &str = "whatsapp_business_account";

/// Query parameters, then the body's (JSON object or form), as strings or JSON values.
fn params(uri: &Uri, headers: &HeaderMap, body: &[u8]) -> HttpResult<HashMap<String, Value>> {
    let mut out = HashMap::new();
    if let Ok(Query(q)) = Query::<Vec<(String, String)>>::try_from_uri(uri) {
        for (k, v) in q {
            out.insert(k, Value::String(v));
        }
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(out);
    }
    let ctype = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let looks_json = body
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == b'{');
    if ctype.contains("json") || looks_json {
        if let Value::Object(m) = json_object(body)? {
            out.extend(m);
        }
        return Ok(out);
    }
    let text = std::str::from_utf8(body)
        .map_err(|_| ApiError::invalid_parameter("The form body is not UTF-8."))?;
    let form_uri: Uri = format!("/?{}", text.trim()).parse().map_err(|_| {
        ApiError::invalid_parameter("The body is neither JSON nor a URL-encoded form.")
    })?;
    let Query(pairs) = Query::<Vec<(String, String)>>::try_from_uri(&form_uri).map_err(|_| {
        ApiError::invalid_parameter("The body is neither JSON nor a URL-encoded form.")
    })?;
    for (k, v) in pairs {
        out.insert(k, Value::String(v));
    }
    Ok(out)
}

fn string_param(p: &HashMap<String, Value>, name: &str) -> HttpResult<Option<String>> {
    match p.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ApiError::invalid_parameter(format!("`{name}` must be a string")).into()),
    }
}

/// `fields` as `a,b`, `["a","b"]` (JSON or its text), each one Meta knows.
fn fields_param(p: &HashMap<String, Value>) -> HttpResult<Option<Vec<String>>> {
    let list: Vec<String> = match p.get("fields") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| v.as_str().map(str::to_string))
            .collect::<Option<_>>()
            .ok_or_else(|| ApiError::invalid_parameter("`fields` must be a list of field names"))?,
        Some(Value::String(s)) if s.trim_start().starts_with('[') => serde_json::from_str(s)
            .map_err(|_| ApiError::invalid_parameter("`fields` must be a list of field names"))?,
        Some(Value::String(s)) => s
            .split(',')
            .map(|f| f.trim().to_string())
            .filter(|f| !f.is_empty())
            .collect(),
        Some(_) => {
            return Err(
                ApiError::invalid_parameter("`fields` must be a list of field names").into(),
            )
        }
    };
    if list.is_empty() {
        return Err(ApiError::invalid_parameter("`fields` must name at least one field").into());
    }
    for (i, f) in list.iter().enumerate() {
        if !FIELDS.contains(&f.as_str()) {
            return Err(ApiError::invalid_parameter(format!(
                "Param fields[{i}] must be one of {{{}}} - got \"{f}\"",
                FIELDS.join(", ")
            ))
            .into());
        }
    }
    let mut out: Vec<String> = Vec::new();
    for f in list {
        if !out.contains(&f) {
            out.push(f);
        }
    }
    Ok(Some(out))
}

fn check_object(p: &HashMap<String, Value>, required: bool) -> HttpResult<()> {
    match string_param(p, "object")? {
        Some(o) if o == OBJECT => Ok(()),
        Some(o) => Err(ApiError::invalid_parameter(format!(
            "`object` {o:?} is not supported here; greenlight delivers the \"{OBJECT}\" object"
        ))
        .into()),
        None if required => Err(ApiError::invalid_parameter(format!(
            "`object` is required: use \"{OBJECT}\""
        ))
        .into()),
        None => Ok(()),
    }
}

/// The app behind an app access token (`app_id|app_secret`), which must be `app_id`'s.
async fn app_auth(
    state: &AppState,
    headers: &HeaderMap,
    uri: &Uri,
    app_id: &str,
) -> HttpResult<AppRecord> {
    let token = bearer(headers, uri).ok_or_else(|| {
        ApiError::invalid_token("No access token: this endpoint needs the app access token `<app_id>|<app_secret>` (both from tenant creation).")
    })?;
    let Some((id, secret)) = token.split_once('|') else {
        return Err(ApiError::new(
            400,
            15,
            "This method must be called with an app access_token",
            "Use the app access token `<app_id>|<app_secret>` (from tenant creation), not the business's access token.",
        )
        .into());
    };
    let app = state.store.app(id).await?;
    let Some(app) = app.filter(|a| secure_eq(secret, &a.secret)) else {
        return Err(ApiError::invalid_token(
            "The app access token is not valid: unknown app id or wrong app secret.",
        )
        .into());
    };
    if app.id != app_id {
        return Err(ApiError::unknown_object(app_id).into());
    }
    Ok(app)
}

async fn get_subscriptions(
    State(state): State<AppState>,
    Path((version, id)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> HttpResult {
    check_version(&version, &method, &uri)?;
    let app = app_auth(&state, &headers, &uri, &id).await?;
    let scope = Scope {
        business_id: app.business_id.clone(),
    };
    let data = match state.store.app_subscription(&scope, &app.id).await? {
        None => vec![],
        Some(s) => {
            let names: Vec<&str> = if s.fields.is_empty() {
                FIELDS.to_vec()
            } else {
                s.fields.iter().map(String::as_str).collect()
            };
            let fields: Vec<Value> = names
                .iter()
                .map(|n| json!({ "name": n, "version": version }))
                .collect();
            vec![
                json!({ "object": OBJECT, "callback_url": s.callback_url, "active": true, "fields": fields }),
            ]
        }
    };
    Ok(Json(json!({ "data": data })).into_response())
}

async fn post_subscriptions(
    State(state): State<AppState>,
    Path((version, id)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> HttpResult {
    check_version(&version, &method, &uri)?;
    let app = app_auth(&state, &headers, &uri, &id).await?;
    let scope = Scope {
        business_id: app.business_id.clone(),
    };
    let p = params(&uri, &headers, &body)?;
    check_object(&p, true)?;
    let existing = state.store.app_subscription(&scope, &app.id).await?;
    let callback = string_param(&p, "callback_url")?;
    let token = string_param(&p, "verify_token")?;
    let fields = fields_param(&p)?;
    let (url, verify_token) = match (&callback, &existing) {
        (Some(u), _) => {
            let t = token.clone().ok_or_else(|| {
                ApiError::missing_parameter("`verify_token` is required with `callback_url`: the token the handshake sends as hub.verify_token")
            })?;
            (u.trim().to_string(), t)
        }
        (None, Some(e)) => (
            e.callback_url.clone(),
            token.clone().unwrap_or_else(|| e.verify_token.clone()),
        ),
        (None, None) => {
            return Err(ApiError::missing_parameter(
                "`callback_url` is required: the URL greenlight will POST webhooks to",
            )
            .into())
        }
    };
    let changed = existing
        .as_ref()
        .is_none_or(|e| e.callback_url != url || e.verify_token != verify_token);
    if changed {
        handshake::verify(&state.config.webhooks, &url, &verify_token).await?;
    }
    // Graph adds named fields to those subscribed; an all-fields subscription (empty list)
    // becomes exactly the fields named.
    let fields = match (fields, &existing) {
        (Some(new), Some(e)) if !e.fields.is_empty() => {
            let mut all = e.fields.clone();
            all.extend(new.into_iter().filter(|f| !e.fields.contains(f)));
            all
        }
        (Some(new), _) => new,
        (None, Some(e)) => e.fields.clone(),
        (None, None) => Vec::new(),
    };
    state
        .store
        .set_app_subscription(
            &scope,
            AppSubscription {
                app_id: app.id.clone(),
                callback_url: url,
                verify_token,
                fields,
                created_at: existing
                    .map(|e| e.created_at)
                    .unwrap_or_else(|| state.now()),
            },
        )
        .await?;
    tracing::info!(app_id = %app.id, "webhook subscription set");
    Ok(Json(json!({ "success": true })).into_response())
}

async fn delete_subscriptions(
    State(state): State<AppState>,
    Path((version, id)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> HttpResult {
    check_version(&version, &method, &uri)?;
    let app = app_auth(&state, &headers, &uri, &id).await?;
    let scope = Scope {
        business_id: app.business_id.clone(),
    };
    let p = params(&uri, &headers, &body)?;
    check_object(&p, false)?;
    let Some(existing) = state.store.app_subscription(&scope, &app.id).await? else {
        return Ok(Json(json!({ "success": true })).into_response());
    };
    match fields_param(&p)? {
        None => {
            state.store.delete_app_subscription(&scope, &app.id).await?;
        }
        Some(remove) => {
            let current: Vec<String> = if existing.fields.is_empty() {
                FIELDS.iter().map(|s| s.to_string()).collect()
            } else {
                existing.fields.clone()
            };
            let left: Vec<String> = current
                .into_iter()
                .filter(|f| !remove.contains(f))
                .collect();
            if left.is_empty() {
                state.store.delete_app_subscription(&scope, &app.id).await?;
            } else {
                state
                    .store
                    .set_app_subscription(
                        &scope,
                        AppSubscription {
                            fields: left,
                            ..existing
                        },
                    )
                    .await?;
            }
        }
    }
    Ok(Json(json!({ "success": true })).into_response())
}

async fn waba_principal(
    state: &AppState,
    headers: &HeaderMap,
    uri: &Uri,
    version: &str,
    method: &Method,
    waba_id: &str,
) -> HttpResult<Arc<Principal>> {
    check_version(version, method, uri)?;
    let p = tenant(state, headers, uri).await?;
    if !p.owns_waba(waba_id) {
        return Err(ApiError::unknown_object(waba_id).into());
    }
    Ok(p)
}

async fn get_subscribed_apps(
    State(state): State<AppState>,
    Path((version, id)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> HttpResult {
    let p = waba_principal(&state, &headers, &uri, &version, &method, &id).await?;
    let subs = state.store.waba_subscriptions(&p.scope, &id).await?;
    let data: Vec<Value> = subs
        .into_iter()
        .map(|s| {
            let mut v = json!({ "whatsapp_business_api_data": {
                "id": s.app_id,
                "name": p.business_name,
                "link": format!("https://www.facebook.com/games/?app_id={}", s.app_id),
            }});
            if let Some(o) = s.override_callback_uri {
                v["override_callback_uri"] = json!(o);
            }
            v
        })
        .collect();
    Ok(Json(json!({ "data": data })).into_response())
}

async fn post_subscribed_apps(
    State(state): State<AppState>,
    Path((version, id)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> HttpResult {
    let p = waba_principal(&state, &headers, &uri, &version, &method, &id).await?;
    let params = params(&uri, &headers, &body)?;
    let override_uri =
        string_param(&params, "override_callback_uri")?.filter(|u| !u.trim().is_empty());
    let over = match override_uri {
        None => None,
        Some(u) => {
            let token = string_param(&params, "verify_token")?.ok_or_else(|| {
                ApiError::missing_parameter("`verify_token` is required with `override_callback_uri`: the token the handshake sends as hub.verify_token")
            })?;
            let u = u.trim().to_string();
            handshake::verify(&state.config.webhooks, &u, &token).await?;
            Some((u, token))
        }
    };
    state
        .store
        .subscribe_waba(&p.scope, &id, &p.app_id, over, state.now())
        .await?;
    Ok(Json(json!({ "success": true })).into_response())
}

async fn delete_subscribed_apps(
    State(state): State<AppState>,
    Path((version, id)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> HttpResult {
    let p = waba_principal(&state, &headers, &uri, &version, &method, &id).await?;
    state
        .store
        .unsubscribe_waba(&p.scope, &id, &p.app_id, state.now())
        .await?;
    Ok(Json(json!({ "success": true })).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pairs: &[(&str, Value)]) -> HashMap<String, Value> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    #[test]
    fn fields_in_every_form() {
        assert_eq!(
            fields_param(&p(&[("fields", json!("messages, account_update"))])).unwrap(),
            Some(vec!["messages".to_string(), "account_update".to_string()])
        );
        assert_eq!(
            fields_param(&p(&[("fields", json!("[\"messages\"]"))])).unwrap(),
            Some(vec!["messages".to_string()])
        );
        assert_eq!(
            fields_param(&p(&[("fields", json!(["messages", "messages"]))])).unwrap(),
            Some(vec!["messages".to_string()])
        );
        let e = fields_param(&p(&[("fields", json!("mesages"))])).unwrap_err();
        assert!(e.0.details.contains("fields[0]"));
        assert_eq!(fields_param(&p(&[])).unwrap(), None);
    }

    #[test]
    fn form_and_json_bodies() {
        let uri: Uri = "/v23.0/1/subscriptions?object=whatsapp_business_account"
            .parse()
            .unwrap();
        let got = params(
            &uri,
            &HeaderMap::new(),
            b"callback_url=http%3A%2F%2Fh%2Fx&fields=messages",
        )
        .unwrap();
        assert_eq!(got["callback_url"], "http://h/x");
        assert_eq!(got["object"], OBJECT);
        let got = params(&uri, &HeaderMap::new(), br#"{"fields":["messages"]}"#).unwrap();
        assert_eq!(got["fields"], json!(["messages"]));
    }
}
