//! Template create and edit in gateway mode: greenlight's review (the code of
//! `greenlight template lint`) runs first; with `template_lint = "block"` an error-level finding
//! refuses the request (nothing reaches Meta), with `"warn"` it is forwarded and the findings
//! are listed in the `greenlight-template-lint` header. Meta's answer is mirrored locally.

use super::*;
use crate::http::{check_version, tenant};
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::HeaderValue;
use greenlight_domain::template::{self, Severity};
use greenlight_store::{MirroredTemplate, Principal, TemplateRecord};
use serde_json::{json, Value};

/// Greenlight's code for a template create or edit blocked by the review at the gateway.
pub const CODE_TEMPLATE_LINT: i64 = 1900500;

/// The findings: (blocking ones, a one-line summary of all).
fn lint(body: &Value) -> (Vec<Value>, Option<String>) {
    let findings = template::lint(body);
    let errors: Vec<Value> = findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .map(|f| json!({ "rule": f.rule, "field": f.field, "message": f.message }))
        .collect();
    let summary = (!findings.is_empty()).then(|| {
        findings
            .iter()
            .map(|f| {
                format!(
                    "{}{} ({})",
                    f.rule,
                    if f.severity == Severity::Error {
                        "!"
                    } else {
                        ""
                    },
                    f.field
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    });
    (errors, summary)
}

/// Lints, then refuses or forwards; returns Meta's answer (with the warning header).
async fn lint_and_forward(
    state: &AppState,
    p: &Principal,
    uri: &Uri,
    headers: &HeaderMap,
    body: Bytes,
    linted: &Value,
) -> HttpResult<(u16, Option<Value>, Response)> {
    let (errors, summary) = lint(linted);
    let g = gw(state)?;
    if !errors.is_empty() && state.config.template_lint == crate::config::TemplateLint::Block {
        let details = errors
            .iter()
            .map(|e| {
                format!(
                    "{} at {}: {}",
                    e["rule"].as_str().unwrap_or(""),
                    e["field"].as_str().unwrap_or(""),
                    e["message"].as_str().unwrap_or("")
                )
            })
            .collect::<Vec<_>>()
            .join("; ");
        return Err(HttpError(
            ApiError::new(
                400,
                CODE_TEMPLATE_LINT,
                "Template refused by greenlight's review",
                format!("Meta would refuse or reject this template, so it was not submitted: {details}. Fix these, or lint with `greenlight template lint`."),
            )
            .with_type(ErrorType::GreenlightPolicy),
        ));
    }
    let c = creds(state, &p.scope).await?;
    let resp = forward_headers(headers, g.client.post(upstream_url(g, uri)))
        .bearer_auth(&c.access_token)
        .timeout(g.timeout)
        .body(body)
        .send()
        .await
        .map_err(|e| transient(g, &e))?;
    let status = resp.status().as_u16();
    let h = resp.headers().clone();
    let bytes = resp.bytes().await.map_err(|e| transient(g, &e))?;
    let parsed = serde_json::from_slice::<Value>(&bytes).ok();
    let mut out = answer(status, &h, Body::from(bytes));
    if let Some(s) = summary {
        if let Ok(v) = HeaderValue::from_str(&s) {
            out.headers_mut().insert("greenlight-template-lint", v);
        }
    }
    Ok((status, parsed, out))
}

/// `POST /{v}/{waba-id}/message_templates`.
pub async fn create(
    State(state): State<AppState>,
    Path((version, waba)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> HttpResult {
    check_version(&version, &method, &uri)?;
    let p = tenant(&state, &headers, &uri).await?;
    if !p.owns_waba(&waba) {
        return Err(ApiError::unknown_object(&waba).into());
    }
    let v = crate::http::templates::body_value(&headers, &body)?;
    let (status, parsed, out) = lint_and_forward(&state, &p, &uri, &headers, body, &v).await?;
    if let (true, Some(a)) = ((200..300).contains(&status), parsed) {
        if let Some(id) = a["id"].as_str() {
            let m = MirroredTemplate {
                waba_id: waba,
                id: id.to_string(),
                name: v["name"].as_str().unwrap_or_default().to_string(),
                language: v["language"].as_str().unwrap_or_default().to_string(),
                category: a["category"]
                    .as_str()
                    .or(v["category"].as_str())
                    .unwrap_or("MARKETING")
                    .to_string(),
                status: a["status"].as_str().unwrap_or("PENDING").to_string(),
                definition: v.clone(),
            };
            state
                .store
                .gateway_mirror_template(&p.scope, m, state.now())
                .await?;
        }
    }
    Ok(out)
}

/// `POST /{v}/{template-id}` on a mirrored template: the edit, linted as the merged template.
pub async fn edit(
    state: &AppState,
    p: &Principal,
    t: TemplateRecord,
    uri: &Uri,
    headers: &HeaderMap,
    body: Bytes,
) -> HttpResult {
    let v = crate::http::templates::body_value(headers, &body)?;
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
    merged["name"] = json!(t.name);
    merged["language"] = json!(t.language);
    let (status, _, out) = lint_and_forward(state, p, uri, headers, body, &merged).await?;
    if (200..300).contains(&status) {
        let m = MirroredTemplate {
            waba_id: t.waba_id.clone(),
            id: t.id.clone(),
            name: t.name.clone(),
            language: t.language.clone(),
            category: merged["category"]
                .as_str()
                .unwrap_or(&t.category)
                .to_string(),
            // Meta reviews an edit again; its status webhook says the outcome.
            status: "PENDING".to_string(),
            definition: merged,
        };
        state
            .store
            .gateway_mirror_template(&p.scope, m, state.now())
            .await?;
    }
    Ok(out)
}
