//! The audit trail: every refusal, rule-decided failure and enforcement action, per tenant and
//! period, as paged JSON or as a JSON-lines / CSV export.

use super::*;
use axum::extract::{Path, State};
use greenlight_store::{AuditEvent, AuditQuery};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/greenlight/v1/audit", get(tenant_audit))
        .route("/admin/v1/businesses/{business_id}/audit", get(admin_audit))
}

/// Most rows one export carries.
const EXPORT_MAX: usize = 100_000;

fn secs_param(uri: &Uri, k: &str) -> HttpResult<Option<i64>> {
    query_param(uri, k)
        .map(|v| {
            v.parse::<i64>()
                .ok()
                .and_then(|s| s.checked_mul(1000))
                .ok_or(())
                .map_err(|_| {
                    ApiError::invalid_parameter(format!("`{k}` must be unix seconds")).into()
                })
        })
        .transpose()
}

async fn tenant_audit(State(state): State<AppState>, uri: Uri, headers: HeaderMap) -> HttpResult {
    let p = tenant(&state, &headers, &uri).await?;
    answer(&state, &p.scope, &uri).await
}

async fn admin_audit(
    State(state): State<AppState>,
    Path(business_id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> HttpResult {
    require_admin(&state, &headers, &uri)?;
    answer(&state, &Scope { business_id }, &uri).await
}

async fn answer(state: &AppState, scope: &Scope, uri: &Uri) -> HttpResult {
    let kind = query_param(uri, "kind");
    if let Some(k) = &kind {
        const KINDS: &[&str] = &[
            "refusal",
            "failure",
            "enforcement",
            "consent",
            "verification",
            "template",
        ];
        if !KINDS.contains(&k.as_str()) {
            return Err(ApiError::invalid_parameter(format!(
                "`kind` must be one of {}",
                KINDS.join(", ")
            ))
            .into());
        }
    }
    let mut q = AuditQuery {
        from: secs_param(uri, "since")?,
        to: secs_param(uri, "until")?,
        kind,
        after: None,
        limit: 100,
    };
    let format = query_param(uri, "format").unwrap_or_else(|| "json".into());
    match format.as_str() {
        "json" => {
            q.limit = match query_param(uri, "limit") {
                None => 100,
                Some(l) => l
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=1000).contains(n))
                    .ok_or_else(|| ApiError::invalid_parameter("`limit` must be 1 to 1000"))?,
            };
            q.after = query_param(uri, "after")
                .map(|a| {
                    a.parse::<i64>().map_err(|_| {
                        ApiError::invalid_parameter(
                            "`after` must be a cursor from paging.cursors.after",
                        )
                    })
                })
                .transpose()?;
            let rows = state.store.audit(scope, q.clone()).await?;
            let mut out = json!({ "data": rows });
            if let Some(last) = rows.last() {
                out["paging"] = json!({ "cursors": { "after": last.id.to_string() } });
                if rows.len() == q.limit {
                    let mut qs: Vec<String> = uri
                        .query()
                        .unwrap_or("")
                        .split('&')
                        .filter(|kv| {
                            !kv.is_empty()
                                && !kv.starts_with("after=")
                                && !kv.starts_with("access_token=")
                        })
                        .map(str::to_string)
                        .collect();
                    qs.push(format!("after={}", last.id));
                    out["paging"]["next"] = json!(format!(
                        "{}{}?{}",
                        state.public_url(),
                        uri.path(),
                        qs.join("&")
                    ));
                }
            }
            Ok(Json(out).into_response())
        }
        "jsonl" | "csv" => {
            let mut all: Vec<AuditEvent> = Vec::new();
            q.limit = 1000;
            loop {
                let page = state.store.audit(scope, q.clone()).await?;
                let n = page.len();
                q.after = page.last().map(|e| e.id);
                all.extend(page);
                if n < 1000 || all.len() >= EXPORT_MAX {
                    break;
                }
            }
            let (ctype, body) = if format == "jsonl" {
                let mut s = String::new();
                for e in &all {
                    s.push_str(&serde_json::to_string(e).unwrap_or_default());
                    s.push('\n');
                }
                ("application/x-ndjson", s)
            } else {
                let mut w = csv::Writer::from_writer(Vec::new());
                let _ = w.write_record([
                    "id",
                    "timestamp",
                    "kind",
                    "phone_number_id",
                    "wa_id",
                    "message_id",
                    "rule",
                    "code",
                    "details",
                ]);
                for e in &all {
                    let _ = w.write_record([
                        e.id.to_string(),
                        e.timestamp.to_string(),
                        e.kind.clone(),
                        e.phone_number_id.clone().unwrap_or_default(),
                        e.wa_id.clone().unwrap_or_default(),
                        e.message_id.clone().unwrap_or_default(),
                        e.rule.clone().unwrap_or_default(),
                        e.code.map(|c| c.to_string()).unwrap_or_default(),
                        e.details.clone(),
                    ]);
                }
                (
                    "text/csv",
                    String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default(),
                )
            };
            Ok(([(axum::http::header::CONTENT_TYPE, ctype)], body).into_response())
        }
        other => Err(ApiError::invalid_parameter(format!(
            "`format` {other:?} must be json, jsonl or csv"
        ))
        .into()),
    }
}
