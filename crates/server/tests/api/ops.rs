//! Operations surface: `/openapi.json` lists routes that exist, `/ui/` serves the dashboard,
//! `GET /greenlight/v1/me` shows a token only its own business.

use crate::common::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

fn unknown_path(body: &Value) -> bool {
    body["error"]["message"]
        .as_str()
        .is_some_and(|m| m.contains("Unknown path components"))
}

/// Calls every documented operation of `mode` without credentials (ids made up) and asserts that
/// none reaches the router's unknown-path answer; returns how many were called.
async fn check_routed(app: &TestApp, doc: &Value, mode: &str) -> usize {
    let mut checked = 0;
    for (path, ops) in doc["paths"].as_object().expect("paths") {
        for (method, op) in ops.as_object().unwrap() {
            let op_mode = op["x-greenlight-mode"].as_str().unwrap_or("any");
            if !(op_mode == mode || (op_mode == "any" && mode == "sandbox")) {
                continue;
            }
            let concrete = path
                .replace("{version}", "v23.0")
                .split('/')
                .map(|seg| {
                    if seg.starts_with('{') {
                        "123456789012345"
                    } else {
                        seg
                    }
                })
                .collect::<Vec<_>>()
                .join("/");
            let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let body = (m != Method::GET).then(|| json!({}));
            let r = app.req(m.clone(), &concrete, None, body).await;
            assert_ne!(
                r.status,
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path}: {}",
                r.body
            );
            assert!(
                !unknown_path(&r.body),
                "{method} {path} is documented but not routed in {mode} mode"
            );
            checked += 1;
        }
    }
    checked
}

#[tokio::test]
async fn every_operation_in_openapi_json_is_routed() {
    let app = spawn_app().await;
    let r = app.req(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["openapi"], "3.1.0");
    let doc = r.body;
    let checked = check_routed(&app, &doc, "sandbox").await;
    assert!(checked >= 60, "only {checked} operations documented");
    // and an undocumented path is still refused the usual way (the check above can fail)
    let r = app
        .req(Method::GET, "/greenlight/v1/nothing/here", None, None)
        .await;
    assert!(unknown_path(&r.body), "{}", r.body);
    app.stop().await;

    // gateway-only operations exist in gateway mode
    let gw = crate::gateway::spawn_gateway("http://127.0.0.1:9", |_| {}).await;
    assert!(check_routed(&gw, &doc, "gateway").await >= 3);
    gw.stop().await;
}

#[tokio::test]
async fn the_dashboard_is_one_static_page_that_calls_only_this_server() {
    let app = spawn_app().await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = client.get(format!("{}/ui", app.base)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(r.headers()["location"], "/ui/");
    let r = client
        .get(format!("{}/ui/", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.contains("connect-src 'self'") && csp.contains("default-src 'none'"),
        "{csp}"
    );
    let html = r.text().await.unwrap();
    assert!(html.contains("/greenlight/v1/me") && html.contains("sessionStorage"));
    // nothing loaded from elsewhere
    assert!(!html.contains("http://") && !html.contains("https://"));
    app.stop().await;
}

#[tokio::test]
async fn me_shows_a_token_its_own_business_only() {
    let app = spawn_app().await;
    let a = app
        .tenant_with(json!({ "business_name": "Acme", "phone_numbers": [
            { "display_phone_number": "+1 555 010 0001", "verified_name": "Acme" },
            { "display_phone_number": "+1 555 010 0002", "verified_name": "Acme" } ] }))
        .await;
    let b = app.tenant().await;
    let r = app.get("/greenlight/v1/me", &a.token).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["business_id"], a.business_id.as_str());
    assert_eq!(r.body["business_name"], "Acme");
    let wabas = r.body["wabas"].as_array().unwrap();
    assert_eq!(wabas.len(), 1);
    assert_eq!(wabas[0]["id"], a.waba_id.as_str());
    let numbers: Vec<&str> = wabas[0]["phone_numbers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_str().unwrap())
        .collect();
    assert_eq!(numbers.len(), 2);
    assert!(a.phone_ids.iter().all(|p| numbers.contains(&p.as_str())));
    assert_eq!(wabas[0]["phone_numbers"][0]["quality_rating"], "GREEN");
    let text = r.body.to_string();
    assert!(!text.contains(&b.business_id) && !text.contains(&b.phone_id));
    assert!(
        !text.contains(&a.token) && !text.contains(&a.app_secret),
        "no secret in the answer"
    );

    let r = app.req(Method::GET, "/greenlight/v1/me", None, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.code(), 190);
    let r = app.get("/greenlight/v1/me", "EAAGnot-a-token").await;
    assert_eq!(r.code(), 190);
    let _: Value = r.body;
    app.stop().await;
}
