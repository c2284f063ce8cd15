//! The 24-hour customer-service window, the 72-hour free entry point, statuses, the
//! simulated customers and the virtual clock.

use crate::common::*;
use reqwest::StatusCode;
use serde_json::json;

const C: &str = "15551230001";

fn error_code_of_failed(m: &serde_json::Value) -> i64 {
    let failed = m["statuses"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["status"] == "failed")
        .expect("a failed status");
    failed["errors"][0]["code"].as_i64().unwrap()
}

#[tokio::test]
async fn inside_the_window_a_text_goes_sent_then_delivered_then_read() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    app.inbound(&t, C, "hi").await;
    let id = wamid_of(&app.send_text(&t, C, "hello").await);
    let m = app.wait_status(&t, &id, "delivered").await;
    let statuses: Vec<&str> = m["statuses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["sent", "delivered"]);
    assert!(m["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .any(|v| v["rule"] == "customer_service_window" && v["outcome"] == "pass"));
    let r = app
        .post(
            &format!("/sandbox/v1/{}/users/{C}/actions", t.phone_id),
            &t.token,
            json!({"action": "read", "message_id": id}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let m = app.message(&t, &id).await;
    assert_eq!(m["status"], "read");
    // reading twice is refused; reading a message never sent to this customer too
    let r = app
        .post(
            &format!("/sandbox/v1/{}/users/{C}/actions", t.phone_id),
            &t.token,
            json!({"action": "read", "message_id": id}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = app
        .post(
            &format!("/sandbox/v1/{}/users/15559990000/actions", t.phone_id),
            &t.token,
            json!({"action": "read", "message_id": id}),
        )
        .await;
    assert_eq!(r.code(), 131009);
}

#[tokio::test]
async fn outside_the_window_free_form_is_accepted_then_fails_with_131047() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let r = app.send_text(&t, C, "cold outreach").await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "accepted with a wamid, as Meta does"
    );
    let m = app.message(&t, &wamid_of(&r)).await;
    assert_eq!(m["status"], "failed");
    assert_eq!(error_code_of_failed(&m), 131047);
    let v = m["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["rule"] == "customer_service_window")
        .unwrap()
        .clone();
    assert_eq!(v["outcome"], "refuse");
    assert!(v["details"].as_str().unwrap().contains("template"));
}

#[tokio::test]
async fn the_window_closes_exactly_24_hours_after_the_last_inbound() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    app.inbound(&t, C, "hi").await;
    app.advance(24 * 3600 - 5).await;
    let id = wamid_of(&app.send_text(&t, C, "just in time").await);
    assert_ne!(app.message(&t, &id).await["status"], "failed");
    app.advance(10).await;
    let id = wamid_of(&app.send_text(&t, C, "too late").await);
    let m = app.message(&t, &id).await;
    assert_eq!(
        (m["status"].as_str(), error_code_of_failed(&m)),
        (Some("failed"), 131047)
    );
    // a new inbound reopens it
    app.inbound(&t, C, "back").await;
    let id = wamid_of(&app.send_text(&t, C, "welcome back").await);
    assert_ne!(app.message(&t, &id).await["status"], "failed");
}

#[tokio::test]
async fn the_window_is_per_number_and_per_customer() {
    let app = spawn_app().await;
    let t = app
        .tenant_with(json!({"business_name": "A", "phone_numbers": [
            {"display_phone_number": "+1 555 010 0001", "verified_name": "A"},
            {"display_phone_number": "+1 555 010 0002", "verified_name": "A2"}]}))
        .await;
    app.inbound(&t, C, "hi").await;
    // same customer, other number: closed
    let other = Tenant {
        phone_id: t.phone_ids[1].clone(),
        ..t.clone()
    };
    let m = app
        .message(&t, &wamid_of(&app.send_text(&other, C, "x").await))
        .await;
    assert_eq!(m["status"], "failed");
    // other customer, same number: closed
    let m = app
        .message(&t, &wamid_of(&app.send_text(&t, "15551230002", "x").await))
        .await;
    assert_eq!(m["status"], "failed");
}

#[tokio::test]
async fn synchronous_refusals_are_a_tenant_setting() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let r = app
        .post(
            "/greenlight/v1/settings",
            &t.token,
            json!({"sync_refusals": true}),
        )
        .await;
    assert_eq!(r.body["sync_refusals"], true);
    let r = app.send_text(&t, C, "cold").await;
    assert_eq!((r.status, r.code()), (StatusCode::BAD_REQUEST, 131047));
    assert!(r.details().contains("template"));
    let r = app
        .post("/greenlight/v1/settings", &t.token, json!({"nonsense": 1}))
        .await;
    assert_eq!(r.code(), 100);
}

#[tokio::test]
async fn referral_reply_starts_the_72_hour_free_entry_point() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let r = app
        .post(
            &format!("/sandbox/v1/{}/inbound", t.phone_id),
            &t.token,
            json!({"from": C, "profile_name": "Ann", "type": "text", "text": {"body": "Is this still available?"},
                   "referral": {"source_url": "https://fb.me/x", "source_id": "1", "source_type": "ad", "headline": "Sale", "ctwa_clid": "abc"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    app.advance(3600).await;
    let m = app
        .message(&t, &wamid_of(&app.send_text(&t, C, "Yes it is").await))
        .await;
    assert_eq!(m["pricing"]["type"], "free_entry_point");
    assert_eq!(m["pricing"]["category"], "referral_conversion");
    // 47 h later: the window is closed (free-form fails) even though the FEP runs
    app.advance(47 * 3600).await;
    let m = app
        .message(&t, &wamid_of(&app.send_text(&t, C, "late").await))
        .await;
    assert_eq!(m["status"], "failed");
    // a plain inbound without referral gives no FEP
    app.inbound(&t, "15551230009", "hi").await;
    let m = app
        .message(
            &t,
            &wamid_of(&app.send_text(&t, "15551230009", "hello").await),
        )
        .await;
    assert_eq!(m["pricing"]["type"], "free_customer_service");
}

#[tokio::test]
async fn users_not_on_whatsapp_fail_with_131026() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    app.inbound(&t, C, "hi").await;
    let r = app
        .req(
            reqwest::Method::PUT,
            &format!("/sandbox/v1/users/{C}"),
            Some(&t.token),
            Some(json!({"on_whatsapp": false})),
        )
        .await;
    assert_eq!(r.code(), 10, "needs the admin token");
    let r = app
        .req(
            reqwest::Method::PUT,
            &format!("/sandbox/v1/users/{C}"),
            Some(ADMIN),
            Some(json!({"on_whatsapp": false})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let m = app
        .message(&t, &wamid_of(&app.send_text(&t, C, "x").await))
        .await;
    assert_eq!(
        (m["status"].as_str(), error_code_of_failed(&m)),
        (Some("failed"), 131026)
    );
}

#[tokio::test]
async fn the_clock_moves_only_forward_and_only_for_the_operator() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let before = app.get("/sandbox/v1/clock", &t.token).await.body["now"]
        .as_i64()
        .unwrap();
    let r = app
        .post(
            "/sandbox/v1/clock/advance",
            &t.token,
            json!({"seconds": 10}),
        )
        .await;
    assert_eq!(r.code(), 10);
    let r = app
        .post("/sandbox/v1/clock/advance", ADMIN, json!({"seconds": -5}))
        .await;
    assert_eq!(r.code(), 100);
    let r = app
        .post("/sandbox/v1/clock/advance", ADMIN, json!({}))
        .await;
    assert_eq!(r.code(), 131008);
    app.advance(90_000).await;
    let after = app.get("/sandbox/v1/clock", ADMIN).await.body["now"]
        .as_i64()
        .unwrap();
    assert!(
        after - before >= 90_000 && after - before < 90_010,
        "{before} → {after}"
    );
}

#[tokio::test]
async fn inbound_messages_of_every_type_and_the_thread() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let path = format!("/sandbox/v1/{}/inbound", t.phone_id);
    let bodies = vec![
        json!({"from": C, "type": "text", "text": {"body": "hi"}}),
        json!({"from": C, "type": "image", "image": {"caption": "this one", "mime_type": "image/jpeg", "sha256": "x", "id": "1"}}),
        json!({"from": C, "type": "location", "location": {"latitude": 1.0, "longitude": 2.0}}),
        json!({"from": C, "type": "button", "button": {"payload": "STOP", "text": "Stop promotions"}}),
        json!({"from": C, "type": "interactive", "interactive": {"type": "button_reply", "button_reply": {"id": "a", "title": "Yes"}}}),
        json!({"from": C, "type": "interactive", "interactive": {"type": "list_reply", "list_reply": {"id": "x", "title": "Express"}}}),
    ];
    for b in &bodies {
        let r = app.post(&path, &t.token, b.clone()).await;
        assert_eq!(r.status, StatusCode::OK, "{b}: {}", r.body);
        assert!(r.body["id"].as_str().unwrap().starts_with("wamid."));
    }
    // the operator may act as any customer
    let r = app
        .post(
            &path,
            ADMIN,
            json!({"from": C, "type": "text", "text": {"body": "admin"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    // refusals
    let r = app
        .post(
            &path,
            &t.token,
            json!({"type": "text", "text": {"body": "x"}}),
        )
        .await;
    assert_eq!(r.code(), 131008);
    let r = app
        .post(
            &path,
            &t.token,
            json!({"from": "abc", "type": "text", "text": {"body": "x"}}),
        )
        .await;
    assert_eq!(r.code(), 100);
    let r = app
        .post(&path, &t.token, json!({"from": C, "type": "telepathy"}))
        .await;
    assert_eq!(r.code(), 100);
    let r = app
        .post(&path, &t.token, json!({"from": C, "type": "image"}))
        .await;
    assert_eq!(r.code(), 131008);
    // the thread as the customer sees it
    let id = wamid_of(&app.send_text(&t, C, "thanks").await);
    let th = app
        .get(
            &format!("/sandbox/v1/{}/users/{C}/messages", t.phone_id),
            &t.token,
        )
        .await;
    let data = th.body["data"].as_array().unwrap();
    assert_eq!(data.len(), bodies.len() + 2);
    let last = data.last().unwrap();
    assert_eq!(
        (
            last["id"].as_str(),
            last["direction"].as_str(),
            last["text"].as_str()
        ),
        (Some(id.as_str()), Some("out"), Some("thanks"))
    );
    assert_eq!(data[0]["text"], "hi");
}

#[tokio::test]
async fn customer_actions_are_recorded_and_unknown_ones_refused() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let path = format!("/sandbox/v1/{}/users/{C}/actions", t.phone_id);
    for a in [
        "block",
        "report",
        "stop_marketing",
        "resume_marketing",
        "unblock",
    ] {
        let r = app
            .post(&path, &t.token, json!({"action": a, "reason": "spam"}))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{a}: {}", r.body);
    }
    let r = app.post(&path, &t.token, json!({"action": "dance"})).await;
    assert_eq!(r.code(), 100);
    let r = app.post(&path, &t.token, json!({"action": "read"})).await;
    assert_eq!(r.code(), 131008);
}
