//! The per-send compliance rules over HTTP: opt-in (enforce/warn/off), STOP/START keywords,
//! the customer's marketing opt-out, messaging limits, pacing, the marketing cap.

use crate::common::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

fn template(name: &str, category: &str, body: &str) -> Value {
    json!({ "name": name, "language": "en_US", "category": category,
            "components": [{ "type": "BODY", "text": body, "example": { "body_text": [["A-1"]] } }] })
}

/// A tenant with an approved utility template `order_update` and an approved marketing
/// template `spring_sale`.
async fn with_templates(app: &TestApp) -> Tenant {
    let t = app.tenant().await;
    add_templates(app, &t).await;
    t
}

/// Creates and approves `order_update` and `spring_sale` for tenant `t`.
async fn add_templates(app: &TestApp, t: &Tenant) {
    for b in [
        template(
            "order_update",
            "UTILITY",
            "Your order {{1}} has shipped and will arrive soon.",
        ),
        template(
            "spring_sale",
            "MARKETING",
            "Our spring sale starts today: use code {{1}} for 20% off everything.",
        ),
    ] {
        let r = app
            .post(
                &format!("/v23.0/{}/message_templates", t.waba_id),
                &t.token,
                b,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    }
    app.advance(61).await;
}

fn tpl(to: &str, name: &str) -> Value {
    json!({"messaging_product": "whatsapp", "to": to, "type": "template", "template": {"name": name, "language": {"code": "en_US"},
        "components": [{"type": "body", "parameters": [{"type": "text", "text": "X-9"}]}]}})
}

async fn opt_in(app: &TestApp, t: &Tenant, wa: &str, scope: &str) {
    let r = app
        .post(
            &format!("/greenlight/v1/{}/opt_ins", t.waba_id),
            &t.token,
            json!({"wa_id": wa, "scope": scope, "source": "web_form", "proof": "ticked the box"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
}

async fn settings(app: &TestApp, t: &Tenant, compliance: Value) {
    let r = app
        .post(
            "/greenlight/v1/settings",
            &t.token,
            json!({ "compliance": compliance }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}

fn failed_code(m: &Value) -> Option<i64> {
    m["statuses"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["status"] == "failed")
        .map(|s| s["errors"][0]["code"].as_i64().unwrap())
}

#[tokio::test]
async fn business_initiated_templates_need_consent_for_their_category() {
    let app = spawn_app().await;
    let t = with_templates(&app).await;
    let c = "15551230001";
    let r = app.send(&t, tpl(c, "order_update")).await;
    assert_eq!((r.status, r.code()), (StatusCode::BAD_REQUEST, 1900100));
    assert_eq!(r.body["error"]["type"], "GreenlightPolicyException");
    assert!(
        r.details().contains("opt_ins"),
        "the fix is named: {}",
        r.details()
    );
    // a marketing consent does not cover utility; a utility one does
    opt_in(&app, &t, c, "marketing").await;
    assert_eq!(app.send(&t, tpl(c, "order_update")).await.code(), 1900100);
    opt_in(&app, &t, c, "utility").await;
    assert_eq!(
        app.send(&t, tpl(c, "order_update")).await.status,
        StatusCode::OK
    );
    assert_eq!(
        app.send(&t, tpl(c, "spring_sale")).await.status,
        StatusCode::OK
    );
    // inside a customer-opened window no consent is needed
    app.inbound(&t, "15551230002", "hi").await;
    assert_eq!(
        app.send(&t, tpl("15551230002", "order_update"))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        app.send_text(&t, "15551230002", "free-form reply")
            .await
            .status,
        StatusCode::OK
    );
    // warn: accepted, with a warning verdict; off: no verdict refusal
    settings(&app, &t, json!({"opt_in_policy": "warn"})).await;
    let r = app.send(&t, tpl("15551230003", "order_update")).await;
    assert_eq!(r.status, StatusCode::OK);
    let m = app.message(&t, &wamid_of(&r)).await;
    assert!(
        m["verdicts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["rule"] == "opt_in" && v["outcome"] == "warn"),
        "{m}"
    );
    settings(&app, &t, json!({"opt_in_policy": "off"})).await;
    assert_eq!(
        app.send(&t, tpl("15551230004", "order_update"))
            .await
            .status,
        StatusCode::OK
    );
    let r = app
        .post(
            "/greenlight/v1/settings",
            &t.token,
            json!({"compliance": {"opt_in_policy": "sometimes"}}),
        )
        .await;
    assert_eq!(r.code(), 100);
}

/// A template send keeps the customer's consent records with their facts (SQLite's writer):
/// the next template reads none, and a revocation through the API, the very next job, is seen
/// by the send after it; so is the opt-in recorded again.
#[tokio::test]
async fn kept_consents_follow_a_revocation_and_a_new_opt_in_at_once() {
    let app = spawn_app().await;
    let t = with_templates(&app).await;
    let c = "15551239001";
    opt_in(&app, &t, c, "utility").await;
    for _ in 0..3 {
        let r = app.send(&t, tpl(c, "order_update")).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    }
    let r = app
        .req(
            reqwest::Method::DELETE,
            &format!("/greenlight/v1/{}/opt_ins/{c}?scope=utility", t.waba_id),
            Some(&t.token),
            None,
        )
        .await;
    assert_eq!(r.body, json!({"success": true, "revoked": 1}));
    let r = app.send(&t, tpl(c, "order_update")).await;
    assert_eq!(r.code(), 1900100, "{}", r.body);
    opt_in(&app, &t, c, "all").await;
    for _ in 0..2 {
        let r = app.send(&t, tpl(c, "order_update")).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    }
    // a marketing template reads the same kept records: "all" covers it
    let r = app.send(&t, tpl(c, "spring_sale")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}

#[tokio::test]
async fn stop_revokes_consent_at_once_and_start_restores_it() {
    let app = spawn_app().await;
    let t = with_templates(&app).await;
    // with a leading + (without it, Meta reads the number in the sender's country)
    let c = "5511987654321";
    let to = "+5511987654321";
    opt_in(&app, &t, c, "all").await;
    assert_eq!(
        app.send(&t, tpl(to, "order_update")).await.status,
        StatusCode::OK
    );
    // a sentence that merely contains the word is not a STOP
    app.inbound(&t, c, "please don't stop sending updates")
        .await;
    app.advance(25 * 3600).await;
    assert_eq!(
        app.send(&t, tpl(to, "order_update")).await.status,
        StatusCode::OK
    );
    // Portuguese STOP
    let stop = app.inbound(&t, c, "  PARAR! ").await;
    let list = app
        .get(
            &format!(
                "/greenlight/v1/{}/opt_ins?wa_id={c}&include_revoked=true",
                t.waba_id
            ),
            &t.token,
        )
        .await;
    let rec = &list.body["data"][0];
    assert_eq!(rec["status"], "revoked", "{}", list.body);
    assert!(rec["revoked_by"].as_str().unwrap().starts_with("keyword:"));
    assert!(
        rec["revocation_proof"].as_str().unwrap().contains(&stop),
        "the message is the proof"
    );
    app.advance(25 * 3600).await;
    let r = app.send(&t, tpl(to, "order_update")).await;
    assert_eq!(r.code(), 1900100);
    // START restores
    app.inbound(&t, c, "start").await;
    app.advance(25 * 3600).await;
    assert_eq!(
        app.send(&t, tpl(to, "order_update")).await.status,
        StatusCode::OK
    );
    let audit = app.get("/greenlight/v1/audit?kind=consent", &t.token).await;
    assert_eq!(
        audit.body["data"].as_array().unwrap().len(),
        2,
        "{}",
        audit.body
    );
}

/// A STOP written to one of the business's numbers revokes the consent that every number's
/// sends read: the next template from another number, whose customer's facts its last sends
/// left with the writer, is refused.
#[tokio::test]
async fn stop_to_one_number_refuses_the_templates_of_another() {
    let app = spawn_app().await;
    let number = |n: &str| json!({"display_phone_number": n, "verified_name": "Acme Ltd"});
    let t = app
        .tenant_with(json!({"business_name": "Acme Ltd",
            "phone_numbers": [number("+1 555 010 0001"), number("+1 555 010 0002")]}))
        .await;
    add_templates(&app, &t).await;
    let c = "15551239002";
    opt_in(&app, &t, c, "all").await;
    let second = format!("/v23.0/{}/messages", t.phone_ids[1]);
    let from_second = || app.post(&second, &t.token, tpl(c, "order_update"));
    for _ in 0..2 {
        let r = from_second().await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    }
    // to the first number
    app.inbound(&t, c, "STOP").await;
    let r = from_second().await;
    assert_ne!(r.status, StatusCode::OK, "refused: {}", r.body);
    assert_eq!(r.code(), 1900100, "{}", r.body);
    // and START, to the first number too, restores it for the second
    app.inbound(&t, c, "START").await;
    let r = from_second().await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}

#[tokio::test]
async fn marketing_opt_out_blocks_marketing_but_not_utility() {
    let app = spawn_app().await;
    let t = with_templates(&app).await;
    let c = "447700900123";
    let to = "+447700900123";
    opt_in(&app, &t, c, "all").await;
    let r = app
        .post(
            &format!("/sandbox/v1/{}/users/{c}/actions", t.phone_id),
            &t.token,
            json!({"action": "stop_marketing"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = app.send(&t, tpl(to, "spring_sale")).await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "accepted, then failed as Meta does"
    );
    let m = app.message(&t, &wamid_of(&r)).await;
    assert_eq!(
        (m["status"].as_str(), failed_code(&m)),
        (Some("failed"), Some(131050))
    );
    let r = app.send(&t, tpl(to, "order_update")).await;
    assert_ne!(
        app.message(&t, &wamid_of(&r)).await["status"],
        "failed",
        "utility still passes"
    );
    app.post(
        &format!("/sandbox/v1/{}/users/{c}/actions", t.phone_id),
        &t.token,
        json!({"action": "resume_marketing"}),
    )
    .await;
    let r = app.send(&t, tpl(to, "spring_sale")).await;
    assert_ne!(app.message(&t, &wamid_of(&r)).await["status"], "failed");
}

#[tokio::test]
async fn an_unverified_business_reaches_250_new_customers_per_24_hours() {
    let app = spawn_app().await;
    let t = with_templates(&app).await;
    // this test isolates the limit: pacing off, consent on record for everyone
    settings(&app, &t, json!({"pacing": false})).await;
    let customer = |i: usize| format!("1555300{:04}", i);
    let items: Vec<Value> = (0..260)
        .map(|i| json!({"wa_id": customer(i), "scope": "all", "source": "import", "proof": "crm"}))
        .collect();
    let r = app
        .post(
            &format!("/greenlight/v1/{}/opt_ins/batch", t.waba_id),
            &t.token,
            json!({"opt_ins": items}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    for i in 0..250 {
        let r = app.send(&t, tpl(&customer(i), "order_update")).await;
        assert_eq!(r.status, StatusCode::OK, "customer {i}: {}", r.body);
    }
    let r = app.send(&t, tpl(&customer(250), "order_update")).await;
    assert_eq!(
        (r.code(), r.body["error"]["type"].as_str()),
        (1900200, Some("GreenlightPolicyException")),
        "{}",
        r.body
    );
    assert!(r.details().contains("250"), "{}", r.details());
    // customers already reached in the window still pass; replies in a window do not count
    assert_eq!(
        app.send(&t, tpl(&customer(7), "order_update")).await.status,
        StatusCode::OK
    );
    app.inbound(&t, &customer(251), "hi").await;
    assert_eq!(
        app.send_text(&t, &customer(251), "hello").await.status,
        StatusCode::OK
    );
    // the dry run says the same, with the rule's verdict
    let r = app
        .post(
            &format!("/greenlight/v1/{}/messages/check", t.phone_id),
            &t.token,
            tpl(&customer(252), "order_update"),
        )
        .await;
    let v = r.body["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["rule"] == "messaging_limit")
        .unwrap()
        .clone();
    assert_eq!(
        (r.body["allowed"].as_bool(), v["outcome"].as_str()),
        (Some(false), Some("refuse"))
    );
    assert_eq!(
        r.body["messaging_limit"],
        json!({"tier": "TIER_250", "used": 250, "limit": 250, "already_reached": false})
    );
    // 24 hours later the window has moved: the 250 left it, the count starts again; a
    // customer reached a day ago is no longer "already reached" (asked first, before anything
    // pruned the count, and again after a send did)
    app.advance(24 * 3600).await;
    let limit_of = |c: String| {
        let app = &app;
        let t = &t;
        async move {
            app.post(
                &format!("/greenlight/v1/{}/messages/check", t.phone_id),
                &t.token,
                tpl(&c, "order_update"),
            )
            .await
            .body["messaging_limit"]
                .clone()
        }
    };
    assert_eq!(
        limit_of(customer(7)).await,
        json!({"tier": "TIER_250", "used": 0, "limit": 250, "already_reached": false})
    );
    assert_eq!(
        app.send(&t, tpl(&customer(252), "order_update"))
            .await
            .status,
        StatusCode::OK
    );
    let r = app
        .post(
            &format!("/greenlight/v1/{}/messages/check", t.phone_id),
            &t.token,
            tpl(&customer(253), "order_update"),
        )
        .await;
    assert_eq!(
        r.body["messaging_limit"],
        json!({"tier": "TIER_250", "used": 1, "limit": 250, "already_reached": false})
    );
    assert_eq!(
        limit_of(customer(252)).await,
        json!({"tier": "TIER_250", "used": 1, "limit": 250, "already_reached": true})
    );
    assert_eq!(
        limit_of(customer(7)).await,
        json!({"tier": "TIER_250", "used": 1, "limit": 250, "already_reached": false})
    );
    // a message that is not a template does not count: the dry run says the limit does not apply
    let r = app
        .post(
            &format!("/greenlight/v1/{}/messages/check", t.phone_id),
            &t.token,
            json!({"messaging_product": "whatsapp", "to": customer(7), "type": "text", "text": {"body": "x"}}),
        )
        .await;
    assert_eq!(
        r.body["messaging_limit"],
        json!({"tier": "TIER_250", "limit": 250, "applies": false})
    );
}

/// The count of customers reached is the reach log's: a restarted SQLite server (whose writer
/// kept the count in memory) counts the customers the earlier one reached, and goes on.
#[tokio::test]
async fn the_messaging_limit_counts_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("limit.db").display());
    let u = url.clone();
    let app = spawn_with(move |l| l.database_url = Some(u)).await;
    let t = with_templates(&app).await;
    settings(&app, &t, json!({"pacing": false})).await;
    let customer = |i: usize| format!("1555310{:04}", i);
    for i in 0..3 {
        opt_in(&app, &t, &customer(i), "all").await;
    }
    for i in 0..2 {
        wamid_of(&app.send(&t, tpl(&customer(i), "order_update")).await);
    }
    app.stop().await;

    let app = spawn_with(move |l| l.database_url = Some(url)).await;
    let limit_of = |c: String| {
        let (app, t) = (&app, &t);
        async move {
            let r = app
                .post(
                    &format!("/greenlight/v1/{}/messages/check", t.phone_id),
                    &t.token,
                    tpl(&c, "order_update"),
                )
                .await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.body);
            (
                r.body["messaging_limit"]["used"].clone(),
                r.body["messaging_limit"]["already_reached"].clone(),
            )
        }
    };
    assert_eq!(limit_of(customer(1)).await, (json!(2), json!(true)));
    assert_eq!(limit_of(customer(2)).await, (json!(2), json!(false)));
    wamid_of(&app.send(&t, tpl(&customer(2), "order_update")).await);
    assert_eq!(limit_of(customer(2)).await, (json!(3), json!(true)));
    // a day later they have all left the window
    app.advance(24 * 3600).await;
    assert_eq!(limit_of(customer(0)).await, (json!(0), json!(false)));
}

#[tokio::test]
async fn pair_rate_limit_paces_one_customer() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let c = "15551230001";
    app.inbound(&t, c, "hi").await;
    let mut codes = Vec::new();
    for i in 0..46 {
        let r = app.send_text(&t, c, &format!("m{i}")).await;
        codes.push(if r.status == StatusCode::OK {
            200
        } else {
            r.code()
        });
    }
    assert_eq!(
        codes.iter().filter(|&&c| c == 200).count(),
        45,
        "a burst of 45 passes: {codes:?}"
    );
    assert_eq!(codes[45], 131056);
    // another customer is not affected
    app.inbound(&t, "15551230002", "hi").await;
    assert_eq!(
        app.send_text(&t, "15551230002", "x").await.status,
        StatusCode::OK
    );
    // the bucket refills: one message per 6 s
    app.advance(7).await;
    assert_eq!(app.send_text(&t, c, "later").await.status, StatusCode::OK);
}

#[tokio::test]
async fn throughput_over_80_per_second_is_refused_with_130429() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let customer = |i: usize| format!("1555400{:04}", i);
    for i in 0..120 {
        app.inbound(&t, &customer(i), "hi").await;
    }
    let mut handles = Vec::new();
    for i in 0..120 {
        let (client, url, token, to) = (
            app.client.clone(),
            format!("{}/v23.0/{}/messages", app.base, t.phone_id),
            t.token.clone(),
            customer(i),
        );
        handles.push(tokio::spawn(async move {
            let r = client.post(url).bearer_auth(token).json(&json!({"messaging_product": "whatsapp", "to": to, "type": "text", "text": {"body": "x"}})).send().await.unwrap();
            let status = r.status();
            let v: Value = r.json().await.unwrap();
            (status, v["error"]["code"].as_i64())
        }));
    }
    let mut ok = 0;
    let mut paced = 0;
    for h in handles {
        match h.await.unwrap() {
            (StatusCode::OK, _) => ok += 1,
            (StatusCode::BAD_REQUEST, Some(130429)) => paced += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(ok >= 80, "at least a second's worth passes: {ok}");
    assert!(
        paced >= 1,
        "a burst of 120 in well under a second is paced: ok {ok}, paced {paced}"
    );
}

#[tokio::test]
async fn marketing_cap_per_customer_fails_asynchronously_with_131049() {
    let app = spawn_app().await;
    let t = with_templates(&app).await;
    let c = "447700900999";
    let to = "+447700900999";
    opt_in(&app, &t, c, "all").await;
    for _ in 0..2 {
        let r = app.send(&t, tpl(to, "spring_sale")).await;
        assert_ne!(app.message(&t, &wamid_of(&r)).await["status"], "failed");
    }
    let r = app.send(&t, tpl(to, "spring_sale")).await;
    let m = app.message(&t, &wamid_of(&r)).await;
    assert_eq!(failed_code(&m), Some(131049), "{m}");
    // utility is not capped; the cap period moves
    let r = app.send(&t, tpl(to, "order_update")).await;
    assert_ne!(app.message(&t, &wamid_of(&r)).await["status"], "failed");
    app.advance(24 * 3600 + 1).await;
    let r = app.send(&t, tpl(to, "spring_sale")).await;
    assert_ne!(app.message(&t, &wamid_of(&r)).await["status"], "failed");
}
