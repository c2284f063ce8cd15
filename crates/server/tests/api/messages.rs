//! Sending: every message type, Meta's response shape, validation errors, mark-as-read,
//! typing indicator, idempotency.

use crate::common::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

const C: &str = "15551230001";

async fn ready() -> (TestApp, Tenant, String) {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let inbound = app.inbound(&t, C, "hello").await;
    (app, t, inbound)
}

fn body(ty: &str, payload: Value) -> Value {
    let mut b = json!({ "messaging_product": "whatsapp", "recipient_type": "individual", "to": C, "type": ty });
    b[ty] = payload;
    b
}

#[tokio::test]
async fn text_answers_metas_exact_shape() {
    let (app, t, _) = ready().await;
    let r = app.send(&t, json!({"messaging_product": "whatsapp", "to": "+1 (555) 123-0001", "type": "text", "text": {"preview_url": true, "body": "See https://example.com"}})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["messaging_product"], "whatsapp");
    assert_eq!(
        r.body["contacts"],
        json!([{ "input": "+1 (555) 123-0001", "wa_id": C }])
    );
    let id = r.body["messages"][0]["id"].as_str().unwrap();
    assert!(id.starts_with("wamid."));
    assert!(
        r.body["messages"][0].get("message_status").is_none(),
        "message_status is for templates only"
    );
    assert_eq!(r.body.as_object().unwrap().len(), 3);
}

#[tokio::test]
async fn every_type_is_accepted_inside_the_window() {
    let (app, t, inbound) = ready().await;
    let cases = vec![
        body(
            "image",
            json!({"link": "https://example.com/a.jpg", "caption": "pic"}),
        ),
        body("audio", json!({"link": "https://example.com/a.ogg"})),
        body(
            "video",
            json!({"link": "https://example.com/a.mp4", "caption": "v"}),
        ),
        body(
            "document",
            json!({"link": "https://example.com/a.pdf", "filename": "invoice.pdf", "caption": "Invoice"}),
        ),
        body("sticker", json!({"link": "https://example.com/a.webp"})),
        body(
            "location",
            json!({"latitude": "37.44", "longitude": "-122.16", "name": "HQ", "address": "1 Hacker Way"}),
        ),
        body(
            "contacts",
            json!([{"name": {"formatted_name": "Ann Lee", "first_name": "Ann"}, "phones": [{"phone": "+1 555 555 5555", "type": "CELL"}]}]),
        ),
        body(
            "interactive",
            json!({"type": "button", "body": {"text": "Pick one"}, "action": {"buttons": [
            {"type": "reply", "reply": {"id": "a", "title": "Yes"}}, {"type": "reply", "reply": {"id": "b", "title": "No"}}]}}),
        ),
        body(
            "interactive",
            json!({"type": "list", "header": {"type": "text", "text": "Shipping"}, "body": {"text": "Which?"},
            "action": {"button": "Options", "sections": [{"title": "Fast", "rows": [{"id": "x", "title": "Express", "description": "1 day"}]}]}}),
        ),
        body(
            "interactive",
            json!({"type": "cta_url", "body": {"text": "See dates"}, "action": {"name": "cta_url", "parameters": {"display_text": "Dates", "url": "https://example.com"}}}),
        ),
        body(
            "reaction",
            json!({"message_id": inbound, "emoji": "\u{1F600}"}),
        ),
    ];
    for b in cases {
        let r = app.send(&t, b.clone()).await;
        assert_eq!(r.status, StatusCode::OK, "{b}: {}", r.body);
        let m = app
            .message(&t, r.body["messages"][0]["id"].as_str().unwrap())
            .await;
        assert_eq!(m["type"], b["type"]);
        assert_eq!(m["pricing"]["category"], "service");
        assert_eq!(m["pricing"]["billable"], false);
    }
}

#[tokio::test]
async fn context_reply_and_callback_data_are_kept() {
    let (app, t, inbound) = ready().await;
    let mut b = body("text", json!({"body": "Replying"}));
    b["context"] = json!({"message_id": inbound});
    b["biz_opaque_callback_data"] = json!("order-42");
    let r = app.send(&t, b).await;
    let m = app.message(&t, &wamid_of(&r)).await;
    assert_eq!(m["biz_opaque_callback_data"], "order-42");
}

#[tokio::test]
async fn validation_errors_carry_metas_codes_and_say_what_to_fix() {
    let (app, t, _) = ready().await;
    let cases: Vec<(Value, i64, &str)> = vec![
        (
            json!({"to": C, "type": "text", "text": {"body": "x"}}),
            131008,
            "messaging_product",
        ),
        (
            json!({"messaging_product": "whatsapp", "type": "text", "text": {"body": "x"}}),
            131008,
            "to",
        ),
        (
            json!({"messaging_product": "whatsapp", "to": C, "type": "text"}),
            131008,
            "text",
        ),
        (
            json!({"messaging_product": "whatsapp", "to": C, "type": "text", "text": {"body": "x".repeat(4097)}}),
            131009,
            "4096",
        ),
        (
            json!({"messaging_product": "whatsapp", "to": C, "type": "hologram", "hologram": {}}),
            131051,
            "hologram",
        ),
        (
            json!({"messaging_product": "whatsapp", "to": "12", "type": "text", "text": {"body": "x"}}),
            131009,
            "to",
        ),
        (
            body("image", json!({"link": "https://e.com/a.jpg", "id": "123"})),
            131009,
            "image",
        ),
        (
            body(
                "audio",
                json!({"link": "https://e.com/a.ogg", "caption": "no"}),
            ),
            131009,
            "caption",
        ),
        (
            body(
                "interactive",
                json!({"type": "button", "body": {"text": "x"}, "action": {"buttons": [
            {"type": "reply", "reply": {"id": "1", "title": "a"}}, {"type": "reply", "reply": {"id": "2", "title": "b"}},
            {"type": "reply", "reply": {"id": "3", "title": "c"}}, {"type": "reply", "reply": {"id": "4", "title": "d"}}]}}),
            ),
            131009,
            "buttons",
        ),
        (
            json!({"messaging_product": "whatsapp", "to": C, "type": "text", "text": {"body": "x"}, "biz_opaque_callback_data": "x".repeat(513)}),
            131009,
            "biz_opaque_callback_data",
        ),
        (
            json!({"messaging_product": "sms", "to": C, "type": "text", "text": {"body": "x"}}),
            100,
            "messaging_product",
        ),
    ];
    for (b, code, needle) in cases {
        let r = app.send(&t, b.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{b}");
        assert_eq!(r.code(), code, "{b}: {}", r.body);
        assert!(
            r.details().contains(needle),
            "details of {b} should mention {needle}: {}",
            r.details()
        );
        assert!(r.body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with(&format!("(#{code})")));
        assert_eq!(
            r.body["error"]["error_data"]["messaging_product"],
            "whatsapp"
        );
    }
    // limits are inclusive
    let r = app.send_text(&t, C, &"x".repeat(4096)).await;
    assert_eq!(r.status, StatusCode::OK);
}

/// The message's `content` reads back as the payload the rules saw, whatever the body's
/// spacing, escapes or repeated keys (the last of a repeated key, as the parsed body keeps it).
#[tokio::test]
async fn content_reads_back_as_the_payload_the_rules_saw() {
    let (app, t, _) = ready().await;
    let url = format!("{}/v23.0/{}/messages", app.base, t.phone_id);
    let raw = format!(
        "{{\n  \"messaging_product\" : \"whatsapp\",\n  \"to\": \"{C}\", \"type\": \"text\",\n  \
         \"text\": {{\"body\": \"first\"}},\n  \"t\\u0065xt\" : {{ \"body\" : \"caf\\u00e9 \\\"quoted\\\"\" ,\n \
         \"preview_url\": false }}\n}}"
    );
    let r = app
        .client
        .post(&url)
        .bearer_auth(&t.token)
        .header("content-type", "application/json")
        .body(raw.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{raw}");
    let v: Value = r.json().await.unwrap();
    let wamid = v["messages"][0]["id"].as_str().unwrap();
    let m = app.message(&t, wamid).await;
    // the last `text` member, unescaped, is the payload
    assert_eq!(
        m["content"],
        json!({"body": "café \"quoted\"", "preview_url": false}),
        "{m}"
    );
    assert_eq!(m["text"], "café \"quoted\"", "{m}");
}

#[tokio::test]
async fn malformed_bodies_are_400_never_500() {
    let (app, t, _) = ready().await;
    let url = format!("{}/v23.0/{}/messages", app.base, t.phone_id);
    for raw in ["", "{", "[1,2]", "\"text\"", "{\"to\": }", "null"] {
        let r = app
            .client
            .post(&url)
            .bearer_auth(&t.token)
            .header("content-type", "application/json")
            .body(raw)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{raw:?}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["code"], 100, "{raw:?}: {v}");
    }
    // bytes that are not UTF-8, in a string and outside one: 100, naming the first bad byte
    for (raw, at) in [
        (&b"{\"messaging_product\": \"whats\xffapp\"}"[..], 29),
        (&b"\xfe{}"[..], 1),
        (&b"{\"to\": \"caf\xc3\"}"[..], 12),
    ] {
        let r = app
            .client
            .post(&url)
            .bearer_auth(&t.token)
            .header("content-type", "application/json")
            .body(raw.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["code"], 100, "{v}");
        let details = v["error"]["error_data"]["details"].as_str().unwrap();
        assert!(
            details.contains(&format!(
                "not valid UTF-8 at byte {at} (the first byte is 1)"
            )),
            "{details}"
        );
    }
    // axum's own rejections also answer Meta's envelope: a path that is not UTF-8, a body over
    // the limit, a method the route does not have
    let r = app
        .client
        .post(format!("{}/v23.0/%FF/messages", app.base))
        .bearer_auth(&t.token)
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], 100);
    let r = app
        .client
        .post(&url)
        .bearer_auth(&t.token)
        .header("content-type", "application/json")
        .body(vec![b' '; 3 * 1024 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], 100);
    let r = app
        .client
        .put(&url)
        .bearer_auth(&t.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert!(r.json::<Value>().await.unwrap()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("PUT"));
    // a template whose variable number would size a huge list is refused, and the server lives
    let r = app
        .post(
            &format!("/v23.0/{}/message_templates", t.waba_id),
            &t.token,
            json!({"name": "x", "language": "en_US", "category": "UTILITY",
        "components": [{"type": "BODY", "text": "Hello {{4294967295}} there, welcome."}]}),
        )
        .await;
    assert_eq!(r.code(), 100);
    assert_eq!(
        app.send_text(&t, C, "still alive").await.status,
        StatusCode::OK
    );
    // wrong content type is still parsed as JSON, or refused cleanly
    let r = app
        .client
        .post(&url)
        .bearer_auth(&t.token)
        .header("content-type", "text/plain")
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn sending_to_yourself_is_131021() {
    let app = spawn_app().await;
    let t = app.tenant_with(json!({"business_name": "A", "phone_numbers": [{"display_phone_number": "+1 555 010 0001", "verified_name": "A"}]})).await;
    let r = app.send_text(&t, "15550100001", "me").await;
    assert_eq!(r.code(), 131021);
}

#[tokio::test]
async fn mark_as_read_and_typing_indicator() {
    let (app, t, inbound) = ready().await;
    let r = app
        .send(
            &t,
            json!({"messaging_product": "whatsapp", "status": "read", "message_id": inbound}),
        )
        .await;
    assert_eq!(
        (r.status, r.body.clone()),
        (StatusCode::OK, json!({"success": true}))
    );
    let r = app.send(&t, json!({"messaging_product": "whatsapp", "status": "read", "message_id": inbound, "typing_indicator": {"type": "text"}})).await;
    assert_eq!(r.body, json!({"success": true}));
    let th = app
        .get(
            &format!("/sandbox/v1/{}/users/{C}/messages", t.phone_id),
            &t.token,
        )
        .await;
    assert_eq!(
        th.body["data"][0]["status"], "read",
        "the customer sees it read: {}",
        th.body
    );
    let r = app
        .send(
            &t,
            json!({"messaging_product": "whatsapp", "status": "read", "message_id": "wamid.nope"}),
        )
        .await;
    assert_eq!(r.code(), 131009);
    let r = app.send(&t, json!({"messaging_product": "whatsapp", "status": "read", "message_id": inbound, "typing_indicator": {"type": "audio"}})).await;
    assert_eq!(r.code(), 131009);
}

#[tokio::test]
async fn idempotency_key_replays_the_first_answer_and_refuses_another_body() {
    let (app, t, _) = ready().await;
    let url = format!("{}/v23.0/{}/messages", app.base, t.phone_id);
    let b =
        json!({"messaging_product": "whatsapp", "to": C, "type": "text", "text": {"body": "once"}});
    let send = |body: Value, key: &'static str| {
        let (client, url, token) = (app.client.clone(), url.clone(), t.token.clone());
        async move {
            let r = client
                .post(&url)
                .bearer_auth(token)
                .header("Idempotency-Key", key)
                .json(&body)
                .send()
                .await
                .unwrap();
            let ct = r.headers()["content-type"].to_str().unwrap().to_string();
            (
                (r.status(), ct),
                r.headers().get("idempotent-replayed").is_some(),
                r.json::<Value>().await.unwrap(),
            )
        }
    };
    let (s1, replay1, b1) = send(b.clone(), "k-1").await;
    let (s2, replay2, b2) = send(b.clone(), "k-1").await;
    let ok = (StatusCode::OK, "application/json".to_string());
    assert_eq!((s1, s2), (ok.clone(), ok));
    assert!(!replay1 && replay2);
    assert_eq!(b1, b2, "same answer");
    let thread = app
        .get(
            &format!("/sandbox/v1/{}/users/{C}/messages", t.phone_id),
            &t.token,
        )
        .await;
    let outbound = thread.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["direction"] == "out")
        .count();
    assert_eq!(outbound, 1, "nothing new was sent");
    let (s3, _, b3) = send(json!({"messaging_product": "whatsapp", "to": C, "type": "text", "text": {"body": "other"}}), "k-1").await;
    assert_eq!(s3.0, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(b3["error"]["code"], 1900001);
    assert_eq!(b3["error"]["type"], "GreenlightPolicyException");
    // a different key sends again
    let (s4, _, b4) = send(b.clone(), "k-2").await;
    assert_eq!(s4.0, StatusCode::OK);
    assert_ne!(b4["messages"][0]["id"], b1["messages"][0]["id"]);
    // after 24 h the key may be reused
    app.advance(86_401).await;
    app.inbound(&t, C, "again").await;
    let (s5, replay5, b5) = send(json!({"messaging_product": "whatsapp", "to": C, "type": "text", "text": {"body": "other"}}), "k-1").await;
    assert_eq!((s5.0, replay5), (StatusCode::OK, false));
    assert_ne!(b5["messages"][0]["id"], b1["messages"][0]["id"]);
}

/// 100 concurrent sends on two numbers to 100 distinct customers (under Meta's 80 msg/s per
/// number and one message per customer, so never paced): every one is committed.
#[tokio::test]
async fn concurrent_sends_all_commit() {
    let app = spawn_app().await;
    let t = app
        .tenant_with(json!({"business_name": "A", "phone_numbers": [
            {"display_phone_number": "+1 555 010 0001", "verified_name": "A"},
            {"display_phone_number": "+1 555 010 0002", "verified_name": "A"}]}))
        .await;
    let customer = |i: usize| format!("1555200{:04}", i);
    for i in 0..100 {
        let number = Tenant {
            phone_id: t.phone_ids[i % 2].clone(),
            ..t.clone()
        };
        app.inbound(&number, &customer(i), "hi").await;
    }
    let mut handles = Vec::new();
    for i in 0..100 {
        let (client, url, token, to) = (
            app.client.clone(),
            format!("{}/v23.0/{}/messages", app.base, t.phone_ids[i % 2]),
            t.token.clone(),
            customer(i),
        );
        handles.push(tokio::spawn(async move {
            let r = client
                .post(url)
                .bearer_auth(token)
                .json(&json!({"messaging_product": "whatsapp", "to": to, "type": "text", "text": {"body": format!("m{i}")}}))
                .send()
                .await
                .unwrap();
            let status = r.status();
            let body = r.json::<Value>().await.unwrap();
            assert_eq!(status, StatusCode::OK, "{body}");
            body["messages"][0]["id"].as_str().unwrap().to_string()
        }));
    }
    let mut ids = std::collections::HashSet::new();
    for h in handles {
        ids.insert(h.await.unwrap());
    }
    assert_eq!(ids.len(), 100);
    for i in [0, 37, 99] {
        let number = &t.phone_ids[i % 2];
        let thread = app
            .get(
                &format!("/sandbox/v1/{number}/users/{}/messages", customer(i)),
                &t.token,
            )
            .await;
        assert_eq!(
            thread.body["data"].as_array().unwrap().len(),
            2,
            "inbound + answer for customer {i}"
        );
    }
}

#[tokio::test]
async fn unknown_template_is_132001() {
    let (app, t, _) = ready().await;
    let r = app
        .send(
            &t,
            body(
                "template",
                json!({"name": "nope", "language": {"code": "en_US"}}),
            ),
        )
        .await;
    assert_eq!((r.status.as_u16(), r.code()), (404, 132001));
}

#[tokio::test]
async fn dry_run_explains_and_sends_nothing() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let path = format!("/greenlight/v1/{}/messages/check", t.phone_id);
    let r = app.post(&path, &t.token, json!({"messaging_product": "whatsapp", "to": C, "type": "text", "text": {"body": "x"}})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["allowed"], false);
    let v = r.body["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["rule"] == "customer_service_window")
        .unwrap()
        .clone();
    assert_eq!(
        (v["outcome"].as_str(), v["code"].as_i64()),
        (Some("refuse"), Some(131047))
    );
    app.inbound(&t, C, "hi").await;
    let r = app.post(&path, &t.token, json!({"messaging_product": "whatsapp", "to": C, "type": "text", "text": {"body": "x"}})).await;
    assert_eq!(r.body["allowed"], true);
    assert_eq!(r.body["pricing"]["category"], "service");
    let thread = app
        .get(
            &format!("/sandbox/v1/{}/users/{C}/messages", t.phone_id),
            &t.token,
        )
        .await;
    assert_eq!(
        thread.body["data"].as_array().unwrap().len(),
        1,
        "only the inbound message"
    );
}

#[tokio::test]
async fn blocked_users_cannot_be_messaged_until_unblocked() {
    let (app, t, _) = ready().await;
    let path = format!("/{}/block_users", t.phone_id); // whatsapp-api-js calls it without a version
    let r = app.post(&path, &t.token, json!({"messaging_product": "whatsapp", "block_users": [{"user": "+15551230001"}, {"user": "nope"}]})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        r.body["block_users"]["added_users"],
        json!([{"input": "+15551230001", "wa_id": C}])
    );
    assert_eq!(r.body["block_users"]["failed_users"][0]["input"], "nope");
    let r = app.send_text(&t, C, "hello").await;
    assert_eq!((r.status, r.code()), (StatusCode::BAD_REQUEST, 130403));
    let r = app
        .get(&format!("/v23.0/{}/block_users", t.phone_id), &t.token)
        .await;
    assert_eq!(r.body["data"][0]["wa_id"], C);
    let r = app
        .req(
            reqwest::Method::DELETE,
            &path,
            Some(&t.token),
            Some(
                json!({"messaging_product": "whatsapp", "block_users": [{"user": "+15551230001"}]}),
            ),
        )
        .await;
    assert_eq!(r.body["block_users"]["removed_users"][0]["wa_id"], C);
    assert_eq!(
        app.send_text(&t, C, "hello again").await.status,
        StatusCode::OK
    );
    let r = app
        .post(&path, &t.token, json!({"messaging_product": "whatsapp"}))
        .await;
    assert_eq!(r.code(), 131008);
}
