//! Tenants, auth, tenant isolation, Graph reads of numbers, WABAs and profiles.

use crate::common::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

#[tokio::test]
async fn health_and_readiness() {
    let app = spawn_app().await;
    let r = app.req(reqwest::Method::GET, "/healthz", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = app.req(reqwest::Method::GET, "/readyz", None, None).await;
    assert_eq!(
        (r.status, r.body["status"].as_str()),
        (StatusCode::OK, Some("ready"))
    );
    // metrics count what happened, and nothing about any tenant
    let t = app.tenant().await;
    app.inbound(&t, "15551230001", "hi").await;
    assert_eq!(
        app.send_text(&t, "15551230001", "x").await.status,
        StatusCode::OK
    );
    let r = app.send(&t, json!({"messaging_product": "whatsapp", "to": "15551230001", "type": "template", "template": {"name": "nope", "language": {"code": "en"}}})).await;
    assert_eq!(r.code(), 132001);
    let m = app
        .client
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(m.contains("greenlight_messages_accepted_total 1"), "{m}");
    assert!(m.contains("greenlight_inbound_messages_total 1"), "{m}");
    assert!(
        m.contains("greenlight_send_refusals_total{code=\"132001\"} 1"),
        "{m}"
    );
    assert!(!m.contains(&t.phone_id) && !m.contains(&t.token));
}

#[tokio::test]
async fn tenant_creation_answers_the_documented_shape() {
    let app = spawn_app().await;
    let r = app
        .post(
            "/admin/v1/tenants",
            ADMIN,
            json!({ "business_name": "Acme Ltd", "verified": false,
                    "phone_numbers": [ { "display_phone_number": "+1 555 010 0001", "verified_name": "Acme" },
                                       { "display_phone_number": "+44 7700 900123", "verified_name": "Acme UK" } ] }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    for k in [
        "business_id",
        "waba_id",
        "app_id",
        "app_secret",
        "access_token",
    ] {
        assert!(
            r.body[k].as_str().is_some_and(|s| !s.is_empty()),
            "{k} missing: {}",
            r.body
        );
    }
    for k in ["business_id", "waba_id", "app_id"] {
        assert!(
            r.body[k]
                .as_str()
                .unwrap()
                .chars()
                .all(|c| c.is_ascii_digit()),
            "{k} must be digits"
        );
    }
    let phones = r.body["phone_numbers"].as_array().unwrap();
    assert_eq!(phones.len(), 2);
    assert_eq!(phones[1]["display_phone_number"], "+44 7700 900123");
    assert_eq!(phones[1]["verified_name"], "Acme UK");
}

#[tokio::test]
async fn tenant_creation_needs_the_admin_token() {
    let app = spawn_app().await;
    let r = app
        .req(
            reqwest::Method::POST,
            "/admin/v1/tenants",
            None,
            Some(json!({"business_name": "X"})),
        )
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::UNAUTHORIZED, 190));
    let t = app.tenant().await;
    let r = app
        .post("/admin/v1/tenants", &t.token, json!({"business_name": "X"}))
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::FORBIDDEN, 10));
    let r = app
        .post("/admin/v1/tenants", ADMIN, json!({"verified": true}))
        .await;
    assert_eq!(r.code(), 131008);
    assert!(r.details().contains("business_name"));
}

#[tokio::test]
async fn missing_or_unknown_token_is_190() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let path = format!("/v23.0/{}", t.phone_id);
    let r = app.req(reqwest::Method::GET, &path, None, None).await;
    assert_eq!((r.status, r.code()), (StatusCode::UNAUTHORIZED, 190));
    let r = app.get(&path, "EAAGnotatoken").await;
    assert_eq!((r.status, r.code()), (StatusCode::UNAUTHORIZED, 190));
    assert!(r.body["error"]["fbtrace_id"].as_str().is_some());
    // the Graph `access_token` query parameter works like the header
    let r = app
        .req(
            reqwest::Method::GET,
            &format!("{path}?access_token={}", t.token),
            None,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}

fn without_trace(mut v: Value) -> Value {
    v["error"]["fbtrace_id"] = Value::Null;
    v
}

#[tokio::test]
async fn another_tenants_ids_answer_exactly_like_unknown_ids() {
    let app = spawn_app().await;
    let a = app.tenant().await;
    let b = app.tenant().await;
    let wamid = app.inbound(&b, "15551230001", "hi").await;
    for (path, unknown) in [
        (
            format!("/v23.0/{}", b.phone_id),
            "/v23.0/999999999999999".to_string(),
        ),
        (
            format!("/v23.0/{}", b.waba_id),
            "/v23.0/999999999999998".to_string(),
        ),
        (
            format!("/v23.0/{}/phone_numbers", b.waba_id),
            "/v23.0/999999999999998/phone_numbers".to_string(),
        ),
        (
            format!("/v23.0/{}/whatsapp_business_profile", b.phone_id),
            "/v23.0/999999999999999/whatsapp_business_profile".to_string(),
        ),
    ] {
        let foreign = app.get(&path, &a.token).await;
        let missing = app.get(&unknown, &a.token).await;
        assert_eq!(
            foreign.status,
            StatusCode::BAD_REQUEST,
            "{path}: {}",
            foreign.body
        );
        assert_eq!(
            (
                foreign.code(),
                foreign.body["error"]["error_subcode"].as_i64()
            ),
            (100, Some(33))
        );
        // identical but for the id in the message and the trace id
        let f = without_trace(foreign.body)
            .to_string()
            .replace(&b.phone_id, "ID")
            .replace(&b.waba_id, "ID");
        let m = without_trace(missing.body)
            .to_string()
            .replace("999999999999999", "ID")
            .replace("999999999999998", "ID");
        assert_eq!(f, m);
    }
    // sending from another tenant's number
    let r = app
        .send_text(
            &Tenant {
                phone_id: b.phone_id.clone(),
                ..a.clone()
            },
            "15551230001",
            "x",
        )
        .await;
    assert_eq!(
        (r.code(), r.body["error"]["error_subcode"].as_i64()),
        (100, Some(33))
    );
    // reading another tenant's message, or acting as its customers
    let r = app
        .get(&format!("/greenlight/v1/messages/{wamid}"), &a.token)
        .await;
    assert_eq!(r.code(), 100);
    let r = app
        .post(
            &format!("/sandbox/v1/{}/inbound", b.phone_id),
            &a.token,
            json!({"from": "15551230002", "type": "text", "text": {"body": "x"}}),
        )
        .await;
    assert_eq!(r.code(), 100);
    let r = app
        .get(
            &format!("/sandbox/v1/{}/users/15551230001/messages", b.phone_id),
            &a.token,
        )
        .await;
    assert_eq!(r.code(), 100);
}

#[tokio::test]
async fn phone_number_fields() {
    let app = spawn_app().await;
    let t = app.tenant_with(json!({"business_name": "Acme", "phone_numbers": [{"display_phone_number": "+1 555 010 0001", "verified_name": "Acme"}]})).await;
    let r = app.get(&format!("/v23.0/{}", t.phone_id), &t.token).await;
    assert_eq!(r.status, StatusCode::OK);
    let keys: Vec<&str> = r
        .body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys.len(), 4, "default fields only: {keys:?}");
    assert_eq!(r.body["verified_name"], "Acme");
    assert_eq!(r.body["quality_rating"], "GREEN");
    let r = app
        .get(&format!("/v17.0/{}?fields=status,name_status,code_verification_status,throughput,whatsapp_business_manager_messaging_limit", t.phone_id), &t.token)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["status"], "CONNECTED");
    assert_eq!(r.body["throughput"]["level"], "STANDARD");
    assert_eq!(
        r.body["whatsapp_business_manager_messaging_limit"],
        "TIER_250"
    );
    assert_eq!(r.body["code_verification_status"], "VERIFIED");
    assert_eq!(r.body["id"], t.phone_id.as_str());
    assert!(r.body.get("verified_name").is_none());
    // fields greenlight does not model are left out, not refused (clients ask for all of Meta's)
    let r = app
        .get(
            &format!(
                "/v23.0/{}?fields=verified_name,colour,throughput{{level}}",
                t.phone_id
            ),
            &t.token,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["verified_name"], "Acme");
    assert_eq!(r.body["throughput"]["level"], "STANDARD");
    assert!(r.body.get("colour").is_none());
    // no version segment: routed as the default version
    let r = app.get(&format!("/{}", t.phone_id), &t.token).await;
    assert_eq!(
        (r.status, r.body["id"].as_str()),
        (StatusCode::OK, Some(t.phone_id.as_str()))
    );
}

#[tokio::test]
async fn verified_business_reads_2k_tier() {
    let app = spawn_app().await;
    let t = app
        .tenant_with(json!({"business_name": "V", "verified": true}))
        .await;
    let r = app
        .get(
            &format!(
                "/v23.0/{}?fields=whatsapp_business_manager_messaging_limit",
                t.phone_id
            ),
            &t.token,
        )
        .await;
    assert_eq!(
        r.body["whatsapp_business_manager_messaging_limit"],
        "TIER_2K"
    );
    let r = app
        .get(
            &format!("/v23.0/{}?fields=business_verification_status", t.waba_id),
            &t.token,
        )
        .await;
    assert_eq!(r.body["business_verification_status"], "verified");
}

#[tokio::test]
async fn waba_and_its_phone_numbers() {
    let app = spawn_app().await;
    let t = app
        .tenant_with(json!({"business_name": "Acme", "phone_numbers": [
            {"display_phone_number": "+1 555 010 0001", "verified_name": "A"},
            {"display_phone_number": "+1 555 010 0002", "verified_name": "B"}]}))
        .await;
    let r = app.get(&format!("/v24.0/{}", t.waba_id), &t.token).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["id"], t.waba_id.as_str());
    assert_eq!(r.body["name"], "Acme");
    let r = app
        .get(&format!("/v24.0/{}/phone_numbers", t.waba_id), &t.token)
        .await;
    let data = r.body["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    assert!(r.body["paging"]["cursors"]["after"].is_string());
    let ids: Vec<&str> = data.iter().map(|p| p["id"].as_str().unwrap()).collect();
    assert!(ids.contains(&t.phone_ids[0].as_str()) && ids.contains(&t.phone_ids[1].as_str()));
    let r = app
        .get(
            &format!(
                "/v24.0/{}/phone_numbers?fields=display_phone_number",
                t.waba_id
            ),
            &t.token,
        )
        .await;
    assert!(r.body["data"][0].get("verified_name").is_none());
}

#[tokio::test]
async fn business_profile_round_trip_and_limits() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let path = format!("/v23.0/{}/whatsapp_business_profile", t.phone_id);
    let r = app
        .post(&path, &t.token, json!({"messaging_product": "whatsapp", "about": "Fresh plants", "email": "hi@acme.test", "vertical": "RETAIL", "websites": ["https://acme.test"]}))
        .await;
    assert_eq!(
        (r.status, r.body["success"].as_bool()),
        (StatusCode::OK, Some(true)),
        "{}",
        r.body
    );
    let r = app
        .get(
            &format!("{path}?fields=about,email,websites,vertical"),
            &t.token,
        )
        .await;
    let p = &r.body["data"][0];
    assert_eq!(p["about"], "Fresh plants");
    assert_eq!(p["websites"][0], "https://acme.test");
    assert_eq!(p["messaging_product"], "whatsapp");
    let r = app
        .post(&path, &t.token, json!({"about": "x".repeat(140)}))
        .await;
    assert_eq!(r.code(), 100);
    assert!(r.details().contains("139"));
    let r = app
        .post(&path, &t.token, json!({"websites": ["a", "b", "c"]}))
        .await;
    assert_eq!(r.code(), 100);
}

#[tokio::test]
async fn unknown_paths_and_bad_versions_are_meta_errors_not_404_pages() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let r = app.get("/nonsense/path/here/x", &t.token).await;
    assert_eq!(r.code(), 100);
    let r = app
        .send(
            &Tenant {
                phone_id: t.phone_id.clone(),
                ..t.clone()
            },
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = app.get(&format!("/x23.0/{}", t.phone_id), &t.token).await;
    assert_eq!(r.code(), 100);
}

#[tokio::test]
async fn unverified_businesses_register_at_most_two_numbers() {
    let app = spawn_app().await;
    let three = json!([{"display_phone_number": "+1 555 010 0001"}, {"display_phone_number": "+1 555 010 0002"}, {"display_phone_number": "+1 555 010 0003"}]);
    let r = app
        .post(
            "/admin/v1/tenants",
            ADMIN,
            json!({"business_name": "U", "phone_numbers": three}),
        )
        .await;
    assert_eq!(r.code(), 100);
    assert!(r.details().contains("at most 2"), "{}", r.details());
    let r = app
        .post(
            "/admin/v1/tenants",
            ADMIN,
            json!({"business_name": "V", "verified": true, "phone_numbers": three}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
}

#[tokio::test]
async fn display_name_review() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let r = app
        .post(
            &format!("/v23.0/{}", t.phone_id),
            &t.token,
            json!({"new_display_name": "Acme Plants"}),
        )
        .await;
    assert_eq!(r.body, json!({"success": true}));
    let r = app
        .get(
            &format!("/v23.0/{}?fields=verified_name,new_name_status", t.phone_id),
            &t.token,
        )
        .await;
    assert_eq!(
        (
            r.body["verified_name"].as_str(),
            r.body["new_name_status"].as_str()
        ),
        (Some("Acme Ltd"), Some("PENDING_REVIEW"))
    );
    let path = format!("/admin/v1/phone_numbers/{}/display_name", t.phone_id);
    assert_eq!(
        app.post(&path, &t.token, json!({"decision": "APPROVED"}))
            .await
            .code(),
        10
    );
    let r = app
        .post(&path, ADMIN, json!({"decision": "APPROVED"}))
        .await;
    assert_eq!(
        (
            r.body["verified_name"].as_str(),
            r.body["name_status"].as_str()
        ),
        (Some("Acme Plants"), Some("APPROVED")),
        "{}",
        r.body
    );
    let r = app
        .get(
            &format!("/v23.0/{}?fields=verified_name,name_status", t.phone_id),
            &t.token,
        )
        .await;
    assert_eq!(r.body["verified_name"], "Acme Plants");
    // nothing left to decide; a declined request keeps the old name
    assert_eq!(
        app.post(&path, ADMIN, json!({"decision": "APPROVED"}))
            .await
            .code(),
        100
    );
    app.post(
        &format!("/v23.0/{}", t.phone_id),
        &t.token,
        json!({"new_display_name": "x"}),
    )
    .await;
    let r = app
        .post(
            &path,
            ADMIN,
            json!({"decision": "REJECTED", "rejection_reason": "NAME_FORMAT_UNACCEPTABLE"}),
        )
        .await;
    assert_eq!(
        (
            r.body["verified_name"].as_str(),
            r.body["new_name_status"].as_str()
        ),
        (Some("Acme Plants"), Some("DECLINED"))
    );
    assert_eq!(
        app.post(
            &format!("/v23.0/{}", t.phone_id),
            &t.token,
            json!({"new_display_name": ""})
        )
        .await
        .code(),
        100
    );
}
