//! Message templates: Meta's management API (`/{waba-id}/message_templates`, `/{template-id}`),
//! the tenant's appeal and the operator's decision (cloud-api-facts.md §3).

use super::*;
use axum::body::Bytes;
use axum::extract::{Path, State};
use greenlight_domain::template;
use greenlight_store::{
    Cursor, NewTemplate, TemplateDeletion, TemplateEdit, TemplateFilter, TemplateRecord,
};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/{version}/{id}/message_templates",
            get(list).post(create).delete(delete),
        )
        .route(
            "/{version}/{id}/message_templates/{template_id}",
            get(get_under_waba),
        )
        .route("/greenlight/v1/templates/{id}/appeal", post(appeal))
        .route("/admin/v1/templates/{id}/decision", post(decide))
}

/// A template as Meta's GET shows it.
pub fn template_json(t: &TemplateRecord) -> Value {
    let d = &t.definition;
    let mut v = json!({
        "id": t.id,
        "name": t.name,
        "language": t.language,
        "status": t.status,
        "category": t.category,
        "parameter_format": d["parameter_format"].as_str().unwrap_or("positional").to_ascii_uppercase(),
        "components": d["components"].clone(),
        "rejected_reason": t.rejected_reason.clone().unwrap_or_else(|| "NONE".into()),
        "quality_score": { "score": t.quality_score, "date": t.quality_at.unwrap_or(t.updated_at) / 1000 },
        "sub_category": d.get("sub_category").cloned().unwrap_or(json!("CUSTOM")),
        "correct_category": t.category,
    });
    // Absent, not null, when there is nothing to say (typed clients parse a present value).
    if let Some(ttl) = d.get("message_send_ttl_seconds").filter(|x| !x.is_null()) {
        v["message_send_ttl_seconds"] = ttl.clone();
    }
    if let Some(prev) = &t.previous_category {
        v["previous_category"] = json!(prev);
    }
    if let Some(info) = &t.rejection_info {
        v["rejection_info"] = info.clone();
    }
    if let Some(r) = &t.review {
        v["review"] = r.clone();
    }
    v
}

const LIST_DEFAULT: &[&str] = &[
    "name",
    "parameter_format",
    "components",
    "language",
    "status",
    "category",
    "id",
];
const GET_DEFAULT: &[&str] = &[
    "name",
    "parameter_format",
    "components",
    "language",
    "status",
    "category",
    "id",
];

pub fn select(
    t: &TemplateRecord,
    fields: Option<Vec<String>>,
    default: &[&str],
) -> HttpResult<Value> {
    select_fields(&template_json(t), fields, default, "WhatsAppBusinessHsm")
}

/// `GET /{template-id}`.
pub fn get_one(t: &TemplateRecord, uri: &Uri) -> HttpResult {
    let fields = requested_fields(query_param(uri, "fields").as_deref());
    Ok(Json(select(t, fields, GET_DEFAULT)?).into_response())
}

fn owned_waba(p: &Principal, id: &str) -> HttpResult<()> {
    if p.owns_waba(id) {
        Ok(())
    } else {
        Err(ApiError::unknown_object(id).into())
    }
}

/// Parses a form- or JSON-encoded body: Graph accepts both.
pub(crate) fn body_value(headers: &HeaderMap, body: &[u8]) -> HttpResult<Value> {
    let form = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
    if !form {
        return json_object(body);
    }
    let text = std::str::from_utf8(body)
        .map_err(|_| ApiError::invalid_parameter("the form body is not UTF-8"))?;
    let mut obj = serde_json::Map::new();
    for kv in text.split('&').filter(|s| !s.is_empty()) {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        let v = super::percent_decode_pub(v);
        // JSON-valued form fields (components=[…]) are parsed as JSON.
        let parsed = if v.starts_with('[') || v.starts_with('{') {
            serde_json::from_str(&v).unwrap_or(Value::String(v))
        } else {
            Value::String(v)
        };
        obj.insert(super::percent_decode_pub(k), parsed);
    }
    Ok(Value::Object(obj))
}

async fn create(
    State(state): State<AppState>,
    Path((version, waba)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> HttpResult {
    check_version(&version, &method, &uri)?;
    let p = tenant(&state, &headers, &uri).await?;
    owned_waba(&p, &waba)?;
    let v = body_value(&headers, &body)?;
    let def = template::parse_create(&v)?;
    let now = state.now();
    let mut definition = def.to_create_json();
    if let Some(sc) = v.get("sub_category") {
        definition["sub_category"] = sc.clone();
    }
    let rec = state
        .store
        .create_template(
            &p.scope,
            NewTemplate {
                waba_id: waba,
                name: def.name.clone(),
                language: def.language.clone(),
                category: def.category.as_str().to_string(),
                definition,
                now,
                review_at: now + state.config.template_review_delay_seconds as i64 * 1000,
            },
        )
        .await?;
    state.due.notify_one();
    Ok(
        Json(json!({ "id": rec.id, "status": rec.status, "category": rec.category }))
            .into_response(),
    )
}

fn list_param(uri: &Uri, name: &str) -> Vec<String> {
    query_param(uri, name)
        .map(|v| {
            let v = v.trim();
            let inner = v
                .strip_prefix('[')
                .and_then(|x| x.strip_suffix(']'))
                .unwrap_or(v);
            inner
                .split(',')
                .map(|s| s.trim().trim_matches('"').to_string())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

fn decode_cursor(c: &str) -> HttpResult<i64> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(c.trim_end_matches('='))
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.strip_prefix("seq:").and_then(|n| n.parse().ok()))
        .ok_or_else(|| ApiError::invalid_parameter("`after`/`before` is not a cursor this API returned; use paging.cursors from a previous page").into())
}

fn encode_cursor(seq: i64) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("seq:{seq}"))
}

async fn list(
    State(state): State<AppState>,
    Path((version, waba)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> HttpResult {
    check_version(&version, &method, &uri)?;
    let p = tenant(&state, &headers, &uri).await?;
    owned_waba(&p, &waba)?;
    let filter = TemplateFilter {
        name: query_param(&uri, "name"),
        content: query_param(&uri, "content"),
        name_or_content: query_param(&uri, "name_or_content"),
        language: list_param(&uri, "language"),
        category: list_param(&uri, "category"),
        status: list_param(&uri, "status"),
        quality_score: list_param(&uri, "quality_score"),
    };
    let limit = match query_param(&uri, "limit") {
        None => 25,
        Some(l) => l
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .ok_or_else(|| {
                ApiError::invalid_parameter("`limit` must be a whole number from 1 to 1000")
            })?,
    };
    let cursor = match (query_param(&uri, "after"), query_param(&uri, "before")) {
        (Some(a), _) => Cursor::After(decode_cursor(&a)?),
        (None, Some(b)) => Cursor::Before(decode_cursor(&b)?),
        _ => Cursor::First,
    };
    let page = state
        .store
        .list_templates(&p.scope, &waba, filter, limit, cursor)
        .await?;
    let fields = requested_fields(query_param(&uri, "fields").as_deref());
    let data = page
        .items
        .iter()
        .map(|t| select(t, fields.clone(), LIST_DEFAULT))
        .collect::<Result<Vec<_>, _>>()?;
    let mut out = json!({ "data": data });
    if let (Some(first), Some(last)) = (page.items.first(), page.items.last()) {
        let (before, after) = (encode_cursor(first.seq()), encode_cursor(last.seq()));
        let mut paging = json!({ "cursors": { "before": before, "after": after } });
        let base = format!("{}{}", state.public_url(), uri.path());
        let keep: Vec<String> = uri
            .query()
            .unwrap_or("")
            .split('&')
            .filter(|kv| {
                !kv.is_empty()
                    && !kv.starts_with("after=")
                    && !kv.starts_with("before=")
                    && !kv.starts_with("access_token=")
            })
            .map(str::to_string)
            .collect();
        let link = |k: &str, c: &str| {
            let mut q = keep.clone();
            q.push(format!("{k}={c}"));
            format!("{base}?{}", q.join("&"))
        };
        if page.has_after {
            paging["next"] = json!(link("after", &after));
        }
        if page.has_before {
            paging["previous"] = json!(link("before", &before));
        }
        out["paging"] = paging;
    }
    if let Some(s) = query_param(&uri, "summary") {
        let all = s == "true" || s == "1";
        let wanted: Vec<String> = if all {
            vec![
                "total_count".into(),
                "message_template_count".into(),
                "message_template_limit".into(),
                "are_translations_complete".into(),
            ]
        } else {
            s.split(',').map(|x| x.trim().to_string()).collect()
        };
        let mut summary = serde_json::Map::new();
        for w in wanted {
            let v = match w.as_str() {
                "total_count" => json!(page.total_count),
                "message_template_count" => json!(page.template_count),
                "message_template_limit" => json!(page.template_limit),
                "are_translations_complete" => json!(true),
                _ => continue,
            };
            summary.insert(w, v);
        }
        out["summary"] = Value::Object(summary);
    }
    Ok(Json(out).into_response())
}

async fn delete(
    State(state): State<AppState>,
    Path((version, waba)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> HttpResult {
    check_version(&version, &method, &uri)?;
    let p = tenant(&state, &headers, &uri).await?;
    owned_waba(&p, &waba)?;
    let name = query_param(&uri, "name");
    let hsm_id = query_param(&uri, "hsm_id");
    let hsm_ids = list_param(&uri, "hsm_ids");
    let what = match (name, hsm_id, hsm_ids.is_empty()) {
        (Some(_), _, false) | (_, Some(_), false) => {
            return Err(ApiError::invalid_parameter(
                "`hsm_ids` cannot be combined with `name` or `hsm_id`",
            )
            .into());
        }
        (None, None, false) => {
            if hsm_ids.len() > 100 {
                return Err(ApiError::invalid_parameter(
                    "`hsm_ids` takes at most 100 template ids",
                )
                .into());
            }
            TemplateDeletion::Ids(hsm_ids)
        }
        (Some(name), Some(id), true) => TemplateDeletion::Id { id, name },
        (Some(name), None, true) => TemplateDeletion::Name(name),
        (None, Some(_), true) => {
            return Err(ApiError::missing_parameter(
                "`name` is required with `hsm_id`: the name of the template to delete",
            )
            .into());
        }
        (None, None, true) => {
            return Err(ApiError::missing_parameter(
                "`name` (all languages), `name` with `hsm_id`, or `hsm_ids` is required",
            )
            .into());
        }
    };
    state
        .store
        .delete_templates(&p.scope, &waba, what, state.now())
        .await?;
    Ok(Json(json!({ "success": true })).into_response())
}

/// `POST /{template-id}`: edit (components, category, message_send_ttl_seconds).
pub async fn edit(
    state: &AppState,
    p: &Principal,
    t: TemplateRecord,
    headers: &HeaderMap,
    body: &[u8],
) -> HttpResult {
    let v = body_value(headers, body)?;
    let mut merged = t.definition.clone();
    for key in [
        "components",
        "category",
        "message_send_ttl_seconds",
        "parameter_format",
    ] {
        if let Some(x) = v.get(key) {
            merged[key] = x.clone();
        }
    }
    if v.get("components").is_none()
        && v.get("category").is_none()
        && v.get("message_send_ttl_seconds").is_none()
    {
        return Err(ApiError::missing_parameter(
            "An edit needs `components`, `category` or `message_send_ttl_seconds`",
        )
        .into());
    }
    let def = template::parse_create(&merged)?;
    let now = state.now();
    state
        .store
        .edit_template(
            &p.scope,
            TemplateEdit {
                id: t.id.clone(),
                definition: def.to_create_json(),
                category: v
                    .get("category")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                now,
                review_at: now + state.config.template_review_delay_seconds as i64 * 1000,
            },
        )
        .await?;
    Ok(Json(json!({ "success": true })).into_response())
}

/// `GET /{waba-id}/message_templates/{template-id}`: an alias of `GET /{template-id}` that
/// some clients (kapso) use.
async fn get_under_waba(
    State(state): State<AppState>,
    Path((version, waba, id)): Path<(String, String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> HttpResult {
    check_version(&version, &method, &uri)?;
    let p = tenant(&state, &headers, &uri).await?;
    owned_waba(&p, &waba)?;
    match state.store.template(&p.scope, &id).await? {
        Some(t) if t.waba_id == waba => get_one(&t, &uri),
        _ => Err(ApiError::unknown_object(&id).into()),
    }
}

async fn appeal(
    State(state): State<AppState>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> HttpResult {
    let p = tenant(&state, &headers, &uri).await?;
    let v = if body.is_empty() {
        json!({})
    } else {
        json_object(&body)?
    };
    let reason = v
        .get("reason")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let t = state
        .store
        .appeal_template(&p.scope, &id, reason, state.now())
        .await?;
    Ok(Json(template_json(&t)).into_response())
}

async fn decide(
    State(state): State<AppState>,
    Path(id): Path<String>,
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
    let reason = v.get("reason").and_then(Value::as_str).map(str::to_string);
    if let Some(r) = &reason {
        const REASONS: &[&str] = &[
            "ABUSIVE_CONTENT",
            "INCORRECT_CATEGORY",
            "INVALID_FORMAT",
            "PROMOTIONAL",
            "SCAM",
            "TAG_CONTENT_MISMATCH",
            "NONE",
        ];
        if !REASONS.contains(&r.as_str()) {
            return Err(ApiError::invalid_parameter(format!(
                "`reason` must be one of {}",
                REASONS.join(", ")
            ))
            .into());
        }
    }
    let scope = state
        .store
        .scope_of_template(&id)
        .await?
        .ok_or_else(|| ApiError::unknown_object(&id))?;
    let t = state
        .store
        .decide_template(&scope, &id, approve, reason, state.now())
        .await?;
    Ok(Json(template_json(&t)).into_response())
}
