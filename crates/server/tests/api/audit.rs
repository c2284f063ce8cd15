//! The audit trail records refusals and rule-decided failures, per tenant, exportable.

use crate::common::*;
use serde_json::json;

#[tokio::test]
async fn refusals_and_failures_are_audited_and_exported() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let other = app.tenant().await;
    // a failure (131047, asynchronous) and a refusal (132001)
    let failed = wamid_of(&app.send_text(&t, "15551230001", "cold").await);
    let r = app.send(&t, json!({"messaging_product": "whatsapp", "to": "15551230001", "type": "template", "template": {"name": "nope", "language": {"code": "en"}}})).await;
    assert_eq!(r.code(), 132001);
    let a = app.get("/greenlight/v1/audit", &t.token).await;
    let rows = a.body["data"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{}", a.body);
    assert_eq!(
        (
            rows[0]["kind"].as_str(),
            rows[0]["code"].as_i64(),
            rows[0]["rule"].as_str()
        ),
        (
            Some("failure"),
            Some(131047),
            Some("customer_service_window")
        )
    );
    assert_eq!(rows[0]["message_id"], failed.as_str());
    assert_eq!(
        (
            rows[1]["kind"].as_str(),
            rows[1]["code"].as_i64(),
            rows[1]["rule"].as_str()
        ),
        (Some("refusal"), Some(132001), Some("template_status"))
    );
    // the audit trail keeps verdicts as objects (a message row keeps them compactly)
    let template_status = rows[1]["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["rule"] == "template_status")
        .unwrap_or_else(|| panic!("{}", rows[1]["verdicts"]));
    assert_eq!(
        (
            template_status["outcome"].as_str(),
            template_status["code"].as_i64()
        ),
        (Some("refuse"), Some(132001))
    );
    // filters
    let a = app.get("/greenlight/v1/audit?kind=refusal", &t.token).await;
    assert_eq!(a.body["data"].as_array().unwrap().len(), 1);
    let now = app.get("/sandbox/v1/clock", ADMIN).await.body["now"]
        .as_i64()
        .unwrap();
    let a = app
        .get(
            &format!("/greenlight/v1/audit?since={}", now + 10),
            &t.token,
        )
        .await;
    assert_eq!(a.body["data"].as_array().unwrap().len(), 0);
    // isolation
    assert_eq!(
        app.get("/greenlight/v1/audit", &other.token).await.body["data"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    // exports
    let r = app
        .client
        .get(format!("{}/greenlight/v1/audit?format=jsonl", app.base))
        .bearer_auth(&t.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-type"], "application/x-ndjson");
    let text = r.text().await.unwrap();
    assert_eq!(text.lines().count(), 2);
    assert!(text
        .lines()
        .all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok()));
    let r = app
        .client
        .get(format!(
            "{}/admin/v1/businesses/{}/audit?format=csv",
            app.base, t.business_id
        ))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    let text = r.text().await.unwrap();
    assert!(text.starts_with("id,timestamp,kind,"), "{text}");
    assert_eq!(text.lines().count(), 3);
    assert_eq!(
        app.get("/greenlight/v1/audit?format=xml", &t.token)
            .await
            .code(),
        100
    );
}
