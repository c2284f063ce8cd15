//! Message templates: management API, review, sends, edits, deletes, appeals, limits.

use crate::common::*;
use crate::compliance_common::template_status;
use reqwest::StatusCode;
use serde_json::{json, Value};

fn utility(name: &str, body: &str) -> Value {
    json!({ "name": name, "language": "en_US", "category": "UTILITY",
            "components": [{ "type": "BODY", "text": body, "example": { "body_text": [["A-1", "Friday"]] } }] })
}

async fn create(app: &TestApp, t: &Tenant, body: Value) -> Resp {
    app.post(
        &format!("/v23.0/{}/message_templates", t.waba_id),
        &t.token,
        body,
    )
    .await
}

async fn approved(app: &TestApp, t: &Tenant, name: &str) -> String {
    let r = create(
        app,
        t,
        utility(name, "Your order {{1}} will arrive on {{2}}."),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let id = r.body["id"].as_str().unwrap().to_string();
    app.advance(61).await;
    let g = app
        .get(&format!("/v23.0/{id}?fields=status"), &t.token)
        .await;
    assert_eq!(g.body["status"], "APPROVED", "{}", g.body);
    id
}

#[tokio::test]
async fn create_review_and_read_back() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let r = create(
        &app,
        &t,
        utility("order_update", "Your order {{1}} will arrive on {{2}}."),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        (r.body["status"].as_str(), r.body["category"].as_str()),
        (Some("PENDING"), Some("UTILITY"))
    );
    let id = r.body["id"].as_str().unwrap().to_string();
    // pending until the review falls due on the virtual clock
    app.advance(30).await;
    assert_eq!(
        app.get(&format!("/v23.0/{id}"), &t.token).await.body["status"],
        "PENDING"
    );
    app.advance(31).await;
    let g = app.get(&format!("/v23.0/{id}"), &t.token).await;
    assert_eq!(g.body["status"], "APPROVED", "{}", g.body);
    assert_eq!(g.body["name"], "order_update");
    assert_eq!(g.body["language"], "en_US");
    assert_eq!(g.body["components"][0]["type"], "BODY");
    let g = app
        .get(
            &format!("/v23.0/{id}?fields=quality_score,rejected_reason"),
            &t.token,
        )
        .await;
    assert_eq!(g.body["quality_score"]["score"], "UNKNOWN");
    assert_eq!(g.body["rejected_reason"], "NONE");
    // another tenant cannot see it
    let other = app.tenant().await;
    assert_eq!(
        app.get(&format!("/v23.0/{id}"), &other.token).await.code(),
        100
    );
}

#[tokio::test]
async fn format_errors_are_refused_at_creation_with_metas_subcodes() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let r = create(&app, &t, utility("Bad Name", "Your order {{1}} on {{2}}.")).await;
    assert_eq!(r.code(), 100);
    assert!(r.details().contains("name"));
    let mut long = utility("too_long", "x");
    long["components"][0]["text"] = json!(format!("{} {{{{1}}}} and {{{{2}}}}.", "a".repeat(1030)));
    let r = create(&app, &t, long).await;
    assert_eq!(
        (r.code(), r.body["error"]["error_subcode"].as_i64()),
        (100, Some(2388040)),
        "{}",
        r.body
    );
    let r = create(
        &app,
        &t,
        utility("leading_var", "{{1}} is your order, arriving {{2}}."),
    )
    .await;
    assert_eq!(r.body["error"]["error_subcode"], 2388299, "{}", r.body);
    let r = create(
        &app,
        &t,
        json!({"name": "x", "language": "en_US", "category": "SPAM", "components": []}),
    )
    .await;
    assert_eq!(r.code(), 100);
}

#[tokio::test]
async fn duplicate_name_and_language_is_refused() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    assert_eq!(
        create(&app, &t, utility("dup", "Your order {{1}} arrives {{2}}."))
            .await
            .status,
        StatusCode::OK
    );
    let r = create(&app, &t, utility("dup", "Your parcel {{1}} comes {{2}}.")).await;
    assert_eq!(
        (r.code(), r.body["error"]["error_subcode"].as_i64()),
        (100, Some(2388024))
    );
    // same name, another language: allowed
    let mut es = utility("dup", "Su pedido {{1}} llega el {{2}}.");
    es["language"] = json!("es");
    assert_eq!(create(&app, &t, es).await.status, StatusCode::OK);
}

#[tokio::test]
async fn the_review_rejects_with_metas_reasons_and_recategorises_marketing() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let scam = create(&app, &t, utility("verify_card", "Your account {{1}} is locked. Reply with your full card number and CVV to unlock it by {{2}}.")).await;
    let short = create(
        &app,
        &t,
        utility(
            "short_link",
            "Track order {{1}} at https://bit.ly/abc before {{2}}.",
        ),
    )
    .await;
    let promo = create(
        &app,
        &t,
        utility(
            "sale_now",
            "Big sale! Get 50% off everything, shop now with code {{1}} until {{2}}.",
        ),
    )
    .await;
    for r in [&scam, &short, &promo] {
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    }
    app.advance(61).await;
    let get = |id: &Value| {
        let path = format!(
            "/v23.0/{}?fields=status,rejected_reason,category,previous_category,rejection_info",
            id.as_str().unwrap()
        );
        let (app, token) = (&app, t.token.clone());
        async move { app.get(&path, &token).await }
    };
    let s = get(&scam.body["id"]).await;
    assert_eq!(s.body["status"], "REJECTED", "{}", s.body);
    assert!(
        matches!(
            s.body["rejected_reason"].as_str(),
            Some("SCAM" | "ABUSIVE_CONTENT")
        ),
        "{}",
        s.body
    );
    let s = get(&short.body["id"]).await;
    assert_eq!(
        (
            s.body["status"].as_str(),
            s.body["rejected_reason"].as_str()
        ),
        (Some("REJECTED"), Some("SCAM")),
        "{}",
        s.body
    );
    let p = get(&promo.body["id"]).await;
    assert_eq!(
        (p.body["status"].as_str(), p.body["category"].as_str()),
        (Some("APPROVED"), Some("MARKETING")),
        "{}",
        p.body
    );
    assert_eq!(p.body["previous_category"], "UTILITY");
}

#[tokio::test]
async fn list_filters_paging_and_summary() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    for (i, w) in ["alpha", "bravo", "charlie"].iter().enumerate() {
        let r = create(
            &app,
            &t,
            utility(
                &format!("tpl_{w}"),
                &format!("Order {{{{1}}}} step {i} ready on {{{{2}}}} for {w}."),
            ),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    }
    let base = format!("/v23.0/{}/message_templates", t.waba_id);
    let r = app
        .get(
            &format!(
                "{base}?limit=2&summary=total_count,message_template_count,message_template_limit"
            ),
            &t.token,
        )
        .await;
    assert_eq!(r.body["data"].as_array().unwrap().len(), 2);
    assert_eq!(r.body["summary"]["total_count"], 3);
    assert_eq!(r.body["summary"]["message_template_limit"], 250);
    assert!(r.body["paging"]["next"].is_string(), "{}", r.body);
    assert!(
        r.body["paging"].get("previous").is_none(),
        "no previous on the first page"
    );
    let after = r.body["paging"]["cursors"]["after"].as_str().unwrap();
    let r2 = app
        .get(&format!("{base}?limit=2&after={after}"), &t.token)
        .await;
    assert_eq!(r2.body["data"].as_array().unwrap().len(), 1);
    assert!(r2.body["paging"].get("next").is_none());
    assert!(r2.body["paging"]["previous"].is_string());
    let r = app.get(&format!("{base}?name=bravo"), &t.token).await;
    assert_eq!(r.body["data"].as_array().unwrap().len(), 1);
    let r = app
        .get(&format!("{base}?name_or_content=charlie"), &t.token)
        .await;
    assert_eq!(r.body["data"][0]["name"], "tpl_charlie");
    let r = app.get(&format!("{base}?status=APPROVED"), &t.token).await;
    assert_eq!(r.body["data"].as_array().unwrap().len(), 0);
    app.advance(61).await;
    let r = app
        .get(
            &format!("{base}?status=APPROVED,REJECTED&fields=name,status"),
            &t.token,
        )
        .await;
    assert_eq!(r.body["data"].as_array().unwrap().len(), 3);
    assert!(r.body["data"][0].get("components").is_none());
    let r = app.get(&format!("{base}?after=bogus"), &t.token).await;
    assert_eq!(r.code(), 100);
}

#[tokio::test]
async fn sending_a_template_checks_it_and_renders_it() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    approved(&app, &t, "order_update").await;
    // business-initiated templates need consent on record (greenlight's opt-in rule)
    let r = app.post(&format!("/greenlight/v1/{}/opt_ins", t.waba_id), &t.token, json!({"wa_id": "15551230001", "scope": "utility", "source": "checkout", "proof": "order updates box ticked"})).await;
    assert_eq!(r.status, StatusCode::CREATED);
    let send = |components: Value| {
        app.send(&t, json!({"messaging_product": "whatsapp", "to": "15551230001", "type": "template",
            "template": {"name": "order_update", "language": {"code": "en_US"}, "components": components}}))
    };
    let ok = send(json!([{"type": "body", "parameters": [{"type": "text", "text": "A-77"}, {"type": "text", "text": "Monday"}]}])).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    assert_eq!(ok.body["messages"][0]["message_status"], "accepted");
    let m = app
        .message(&t, ok.body["messages"][0]["id"].as_str().unwrap())
        .await;
    assert_eq!(m["text"], "Your order A-77 will arrive on Monday.");
    assert_eq!(
        (
            m["pricing"]["category"].as_str(),
            m["pricing"]["billable"].as_bool()
        ),
        (Some("utility"), Some(true))
    );
    assert_ne!(
        m["status"], "failed",
        "templates may be sent outside the window"
    );
    let r = send(json!([{"type": "body", "parameters": [{"type": "text", "text": "A-77"}]}])).await;
    assert_eq!(r.code(), 132000, "{}", r.body);
    let r = send(json!([])).await;
    assert_eq!(r.code(), 132000);
    let r = app
        .send(
            &t,
            json!({"messaging_product": "whatsapp", "to": "15551230001", "type": "template",
        "template": {"name": "order_update", "language": {"code": "fr"}}}),
        )
        .await;
    assert_eq!(r.code(), 132001);
    // a pending template cannot be sent
    create(
        &app,
        &t,
        utility("not_yet", "Your parcel {{1}} comes on {{2}}."),
    )
    .await;
    let r = app
        .send(
            &t,
            json!({"messaging_product": "whatsapp", "to": "15551230001", "type": "template",
        "template": {"name": "not_yet", "language": {"code": "en_US"}}}),
        )
        .await;
    assert_eq!(r.code(), 132001);
    // utility inside the window is free
    app.inbound(&t, "15551230001", "hi").await;
    let ok = send(json!([{"type": "body", "parameters": [{"type": "text", "text": "B-1"}, {"type": "text", "text": "Tue"}]}])).await;
    let m = app
        .message(&t, ok.body["messages"][0]["id"].as_str().unwrap())
        .await;
    assert_eq!(m["pricing"]["billable"], false);
}

/// The writer keeps a sent template, parsed, and the absence of one a send named: an edit, a
/// review, a creation and a deletion each reach the next send.
#[tokio::test]
async fn a_send_sees_every_change_to_the_template_it_names() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let id = approved(&app, &t, "order_update").await;
    let r = app.post(&format!("/greenlight/v1/{}/opt_ins", t.waba_id), &t.token, json!({"wa_id": "15551230001", "scope": "utility", "source": "checkout", "proof": "order updates box ticked"})).await;
    assert_eq!(r.status, StatusCode::CREATED);
    let send = |name: &'static str| {
        app.send(&t, json!({"messaging_product": "whatsapp", "to": "15551230001", "type": "template",
            "template": {"name": name, "language": {"code": "en_US"}, "components": [{"type": "body",
                "parameters": [{"type": "text", "text": "A-77"}, {"type": "text", "text": "Monday"}]}]}}))
    };
    let text = |r: Resp| {
        let app = &app;
        let t = &t;
        async move {
            assert_eq!(r.status, StatusCode::OK, "{}", r.body);
            app.message(t, r.body["messages"][0]["id"].as_str().unwrap())
                .await["text"]
                .clone()
        }
    };
    assert_eq!(
        text(send("order_update").await).await,
        "Your order A-77 will arrive on Monday."
    );
    // an edit: back to review (not sendable), then approved with its new text
    let r = app.post(&format!("/v23.0/{id}"), &t.token, json!({"components": [{"type": "BODY",
        "text": "Your order {{1}} will be delivered on {{2}}.", "example": {"body_text": [["A", "B"]]}}]})).await;
    assert_eq!(r.body, json!({"success": true}), "{}", r.body);
    assert_eq!(send("order_update").await.code(), 132001);
    app.advance(61).await;
    assert_eq!(template_status(&app, &t, &id).await, "APPROVED");
    assert_eq!(
        text(send("order_update").await).await,
        "Your order A-77 will be delivered on Monday."
    );
    // a template that did not exist when a send named it, created and approved since
    assert_eq!(send("later_one").await.code(), 132001);
    approved(&app, &t, "later_one").await;
    assert_eq!(
        text(send("later_one").await).await,
        "Your order A-77 will arrive on Monday."
    );
    // deleted
    let r = app
        .req(
            reqwest::Method::DELETE,
            &format!("/v23.0/{}/message_templates?name=order_update", t.waba_id),
            Some(&t.token),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(send("order_update").await.code(), 132001);
}

#[tokio::test]
async fn edits_go_back_to_review_and_are_limited_once_a_day() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let id = approved(&app, &t, "order_update").await;
    let edit = |text: &str| {
        let (app, path, token) = (&app, format!("/v23.0/{id}"), t.token.clone());
        let body = json!({"components": [{"type": "BODY", "text": text, "example": {"body_text": [["A", "B"]]}}]});
        async move { app.post(&path, &token, body).await }
    };
    let r = edit("Your order {{1}} will be delivered on {{2}}.").await;
    assert_eq!(r.body, json!({"success": true}), "{}", r.body);
    assert_eq!(
        app.get(&format!("/v23.0/{id}?fields=status"), &t.token)
            .await
            .body["status"],
        "PENDING"
    );
    let r = edit("Your order {{1}} arrives at your door on {{2}}.").await;
    assert_eq!(
        r.body["error"]["error_subcode"], 2388039,
        "pending templates cannot be edited: {}",
        r.body
    );
    app.advance(61).await;
    let r = edit("Your order {{1}} arrives at your door on {{2}}.").await;
    assert_eq!(
        r.body["error"]["error_subcode"], 2388039,
        "once per 24 h: {}",
        r.body
    );
    assert!(r.details().contains("24 hours"));
    app.advance(24 * 3600).await;
    assert_eq!(
        edit("Your order {{1}} arrives at your door on {{2}}.")
            .await
            .body,
        json!({"success": true})
    );
    // the category of an approved template cannot change
    app.advance(61).await;
    assert_eq!(
        app.get(&format!("/v23.0/{id}?fields=status"), &t.token)
            .await
            .body["status"],
        "APPROVED"
    );
    let r = app
        .post(
            &format!("/v23.0/{id}"),
            &t.token,
            json!({"category": "MARKETING"}),
        )
        .await;
    assert_eq!(r.code(), 100);
}

#[tokio::test]
async fn delete_by_name_or_id_and_no_reuse_for_30_days() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let id = approved(&app, &t, "bye").await;
    let mut es = utility("bye", "Su pedido {{1}} llega el {{2}}.");
    es["language"] = json!("es");
    let es_id = create(&app, &t, es).await.body["id"]
        .as_str()
        .unwrap()
        .to_string();
    let base = format!("/v23.0/{}/message_templates", t.waba_id);
    let r = app
        .req(
            reqwest::Method::DELETE,
            &format!("{base}?name=bye&hsm_id={es_id}"),
            Some(&t.token),
            None,
        )
        .await;
    assert_eq!(r.body, json!({"success": true}));
    assert_eq!(
        app.get(&format!("/v23.0/{es_id}"), &t.token).await.code(),
        100
    );
    assert_eq!(
        app.get(&format!("/v23.0/{id}?fields=status"), &t.token)
            .await
            .body["status"],
        "APPROVED"
    );
    let r = app
        .req(
            reqwest::Method::DELETE,
            &format!("{base}?name=bye"),
            Some(&t.token),
            None,
        )
        .await;
    assert_eq!(r.body, json!({"success": true}));
    let r = app
        .req(
            reqwest::Method::DELETE,
            &format!("{base}?name=bye"),
            Some(&t.token),
            None,
        )
        .await;
    assert_eq!(r.code(), 100);
    let r = app
        .req(reqwest::Method::DELETE, &base, Some(&t.token), None)
        .await;
    assert_eq!(r.code(), 131008);
    // the name of a deleted approved template is blocked for 30 days
    let r = create(
        &app,
        &t,
        utility("bye", "Your parcel {{1}} comes on {{2}}."),
    )
    .await;
    assert_eq!(r.code(), 100, "{}", r.body);
    app.advance(30 * 86_400 + 1).await;
    assert_eq!(
        create(
            &app,
            &t,
            utility("bye", "Your parcel {{1}} comes on {{2}}.")
        )
        .await
        .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn operator_decisions_and_appeals() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let id = create(
        &app,
        &t,
        utility("hand_review", "Your booking {{1}} is confirmed for {{2}}."),
    )
    .await
    .body["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = app
        .post(
            &format!("/admin/v1/templates/{id}/decision"),
            &t.token,
            json!({"decision": "REJECTED"}),
        )
        .await;
    assert_eq!(r.code(), 10);
    let r = app
        .post(
            &format!("/admin/v1/templates/{id}/decision"),
            ADMIN,
            json!({"decision": "REJECTED", "reason": "INCORRECT_CATEGORY"}),
        )
        .await;
    assert_eq!(
        (
            r.body["status"].as_str(),
            r.body["rejected_reason"].as_str()
        ),
        (Some("REJECTED"), Some("INCORRECT_CATEGORY")),
        "{}",
        r.body
    );
    // the scheduled automated review no longer applies
    app.advance(61).await;
    assert_eq!(
        app.get(&format!("/v23.0/{id}?fields=status"), &t.token)
            .await
            .body["status"],
        "REJECTED"
    );
    let r = app
        .post(
            &format!("/greenlight/v1/templates/{id}/appeal"),
            &t.token,
            json!({"reason": "It is a booking confirmation"}),
        )
        .await;
    assert_eq!(r.body["status"], "IN_APPEAL", "{}", r.body);
    let r = app
        .post(
            &format!("/greenlight/v1/templates/{id}/appeal"),
            &t.token,
            json!({}),
        )
        .await;
    assert_eq!(r.code(), 100);
    let r = app
        .post(
            &format!("/admin/v1/templates/{id}/decision"),
            ADMIN,
            json!({"decision": "APPROVED"}),
        )
        .await;
    assert_eq!(r.body["status"], "APPROVED");
    let r = app
        .post(
            &format!("/admin/v1/templates/{id}/decision"),
            ADMIN,
            json!({"decision": "APPROVED"}),
        )
        .await;
    assert_eq!(r.code(), 100, "already decided");
}

#[tokio::test]
async fn creation_rate_and_the_250_template_limit_of_unverified_businesses() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let words = [
        "red", "blue", "green", "gold", "pink", "gray", "teal", "navy", "lime", "plum",
    ];
    let mut made = 0;
    for hour in 0..3 {
        for i in 0..100 {
            if made == 250 {
                break;
            }
            let n = hour * 100 + i;
            let body = format!(
                "Order {{{{1}}}} for {} {} {} ships {{{{2}}}}.",
                words[n % 10],
                words[(n / 10) % 10],
                words[(n / 100) % 10]
            );
            let r = create(&app, &t, utility(&format!("t_{n}"), &body)).await;
            assert_eq!(r.status, StatusCode::OK, "template {n}: {}", r.body);
            made += 1;
        }
        if hour == 0 {
            let r = create(
                &app,
                &t,
                utility("t_over_rate", "Order {{1}} for over rate ships {{2}}."),
            )
            .await;
            assert_eq!(
                (r.status.as_u16(), r.code()),
                (429, 80007),
                "101st creation in an hour"
            );
        }
        app.advance(3601).await;
    }
    let r = create(
        &app,
        &t,
        utility(
            "t_251",
            "Order {{1}} number two hundred fifty one ships {{2}}.",
        ),
    )
    .await;
    assert_eq!(
        (r.code(), r.body["error"]["error_subcode"].as_i64()),
        (100, Some(2388019)),
        "{}",
        r.body
    );
    assert!(r.details().contains("250"));
}

#[tokio::test]
async fn lint_command_reports_findings_and_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.json");
    let bad = dir.path().join("bad.json");
    std::fs::write(
        &good,
        utility("order_update", "Your order {{1}} will arrive on {{2}}.").to_string(),
    )
    .unwrap();
    std::fs::write(&bad, json!({"name": "Bad", "language": "en_US", "category": "UTILITY", "components": [{"type": "BODY", "text": "{{1}}{{2}}"}]}).to_string()).unwrap();
    let bin = env!("CARGO_BIN_EXE_greenlight");
    let out = std::process::Command::new(bin)
        .args(["template", "lint"])
        .arg(&good)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("APPROVED"));
    let out = std::process::Command::new(bin)
        .args(["template", "lint", "--format", "json"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let rules: Vec<&str> = v[0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule"].as_str().unwrap())
        .collect();
    assert!(rules.len() >= 2, "{rules:?}");
    assert!(v[0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .all(|f| f["fix"].as_str().is_some_and(|s| !s.is_empty())));
    let out = std::process::Command::new(bin)
        .args(["template", "lint"])
        .arg(dir.path().join("missing.json"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[tokio::test]
async fn parameter_format_and_length_errors_at_send() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let named = json!({ "name": "welcome_named", "language": "en_US", "category": "UTILITY", "parameter_format": "named",
        "components": [{ "type": "BODY", "text": "Hello {{first_name}}, your order {{order_id}} is confirmed and on its way.",
            "example": { "body_text_named_params": [{"param_name": "first_name", "example": "Ann"}, {"param_name": "order_id", "example": "A-1"}] } }] });
    let r = create(&app, &t, named).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    // with a footer the whole body is limited to 1,024 characters once filled in
    let footed = json!({ "name": "order_footer", "language": "en_US", "category": "UTILITY",
        "components": [{ "type": "BODY", "text": "Your order {{1}} will arrive on {{2}} at your address.", "example": { "body_text": [["A-1", "Friday"]] } },
                       { "type": "FOOTER", "text": "Acme Ltd" }] });
    assert_eq!(create(&app, &t, footed).await.status, StatusCode::OK);
    approved(&app, &t, "order_update").await;
    app.inbound(&t, "15551230001", "hi").await;
    let send = |name: &str, params: Value| {
        let body = json!({"messaging_product": "whatsapp", "to": "15551230001", "type": "template",
            "template": {"name": name, "language": {"code": "en_US"}, "components": [{"type": "body", "parameters": params}]}});
        let (app, t) = (&app, t.clone());
        async move { app.send(&t, body).await }
    };
    // named parameters in any order
    let ok = send("welcome_named", json!([{"type": "text", "parameter_name": "order_id", "text": "Z-9"}, {"type": "text", "parameter_name": "first_name", "text": "Bo"}])).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    assert_eq!(
        app.message(&t, &wamid_of(&ok)).await["text"],
        "Hello Bo, your order Z-9 is confirmed and on its way."
    );
    // positional values for a named template: format mismatch
    let r = send(
        "welcome_named",
        json!([{"type": "text", "text": "Bo"}, {"type": "text", "text": "Z-9"}]),
    )
    .await;
    assert_eq!(r.code(), 132012, "{}", r.body);
    // a hydrated body over 1,024 characters
    let r = send("order_footer", json!([{"type": "text", "text": "x".repeat(1000)}, {"type": "text", "text": "y".repeat(100)}])).await;
    assert_eq!(r.code(), 132005, "{}", r.body);
}

/// docs/TEMPLATES.md is generated from the rules; CI fails when it drifts.
#[tokio::test]
async fn the_rules_document_matches_the_code() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_greenlight"))
        .args(["template", "rules"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let generated = String::from_utf8(out.stdout).unwrap();
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/TEMPLATES.md"
    ))
    .unwrap();
    assert!(
        doc.ends_with(&generated),
        "docs/TEMPLATES.md is stale: regenerate it with `greenlight template rules`"
    );
}
