//! Helpers of the compliance back-office tests.

use crate::common::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

/// Creates a utility template `name` ({{1}}, {{2}}) and lets the review approve it.
pub async fn approved_template(app: &TestApp, t: &Tenant, name: &str) -> String {
    let r = app
        .post(
            &format!("/v23.0/{}/message_templates", t.waba_id),
            &t.token,
            json!({ "name": name, "language": "en_US", "category": "UTILITY",
                    "components": [{ "type": "BODY", "text": "Your order {{1}} will arrive on {{2}}.",
                                     "example": { "body_text": [["A-1", "Friday"]] } }] }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let id = r.body["id"].as_str().unwrap().to_string();
    app.advance(61).await;
    assert_eq!(template_status(app, t, &id).await, "APPROVED");
    id
}

pub fn template_body(to: &str, name: &str) -> Value {
    json!({ "messaging_product": "whatsapp", "to": to, "type": "template",
            "template": { "name": name, "language": { "code": "en_US" },
                          "components": [{ "type": "body", "parameters": [
                              { "type": "text", "text": "A-1" }, { "type": "text", "text": "Friday" } ] }] } })
}

pub async fn template_status(app: &TestApp, t: &Tenant, id: &str) -> String {
    let g = app
        .get(
            &format!("/v23.0/{id}?fields=status,quality_score"),
            &t.token,
        )
        .await;
    assert_eq!(g.status, StatusCode::OK, "{}", g.body);
    g.body["status"].as_str().unwrap().to_string()
}

pub async fn template_quality(app: &TestApp, t: &Tenant, id: &str) -> String {
    let g = app
        .get(&format!("/v23.0/{id}?fields=quality_score"), &t.token)
        .await;
    g.body["quality_score"]["score"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

pub async fn phone_field(app: &TestApp, t: &Tenant, field: &str) -> Value {
    let g = app
        .get(&format!("/v23.0/{}?fields={field}", t.phone_id), &t.token)
        .await;
    assert_eq!(g.status, StatusCode::OK, "{}", g.body);
    g.body[field].clone()
}

/// A simulated customer acts (block, report…) on the tenant's first number.
pub async fn act(app: &TestApp, t: &Tenant, wa_id: &str, body: Value) -> Resp {
    app.post(
        &format!("/sandbox/v1/{}/users/{wa_id}/actions", t.phone_id),
        &t.token,
        body,
    )
    .await
}

pub async fn audit_rows(app: &TestApp, t: &Tenant, kind: &str) -> Vec<Value> {
    let a = app
        .get(&format!("/greenlight/v1/audit?kind={kind}"), &t.token)
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    a.body["data"].as_array().cloned().unwrap_or_default()
}

pub async fn enforcement(app: &TestApp, t: &Tenant) -> Value {
    let r = app.get("/greenlight/v1/enforcement", &t.token).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body
}

pub async fn file_violation(app: &TestApp, t: &Tenant, body: Value) -> Resp {
    app.post(
        &format!("/admin/v1/businesses/{}/violations", t.business_id),
        ADMIN,
        body,
    )
    .await
}

pub async fn now_secs(app: &TestApp) -> i64 {
    app.get("/sandbox/v1/clock", ADMIN).await.body["now"]
        .as_i64()
        .unwrap()
}

/// Sends, waiting out the 80 messages/s throughput limit (130429) of the number.
pub async fn send_paced(app: &TestApp, t: &Tenant, body: Value) -> Resp {
    loop {
        let r = app.send(t, body.clone()).await;
        if r.status == StatusCode::OK || r.body["error"]["code"] != 130429 {
            return r;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
