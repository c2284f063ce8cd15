//! Business verification (submit, decide) and the messaging-limit tier with its 6-hourly
//! evaluation on the virtual clock.

use crate::common::*;
use crate::compliance_common::*;
use reqwest::StatusCode;
use serde_json::json;

async fn verification(app: &TestApp, t: &Tenant) -> serde_json::Value {
    let r = app
        .get("/greenlight/v1/business_verification", &t.token)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body
}

async fn decide(app: &TestApp, t: &Tenant, body: serde_json::Value) -> Resp {
    app.post(
        &format!("/admin/v1/businesses/{}/verification", t.business_id),
        ADMIN,
        body,
    )
    .await
}

#[tokio::test]
async fn verification_is_submitted_decided_and_raises_the_tier() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let v = verification(&app, &t).await;
    assert_eq!(v["status"], "not_verified");
    assert_eq!(v["messaging_limit_tier"], "TIER_250");
    assert_eq!(
        (v["max_templates"].as_i64(), v["max_phone_numbers"].as_i64()),
        (Some(250), Some(2))
    );
    assert_eq!(
        phone_field(&app, &t, "whatsapp_business_manager_messaging_limit").await,
        "TIER_250"
    );

    // nothing to decide yet
    let r = decide(&app, &t, json!({"decision": "verified"})).await;
    assert_eq!(r.code(), 1900300, "{}", r.body);
    // submit → pending; twice is refused
    let r = app
        .post(
            "/greenlight/v1/business_verification",
            &t.token,
            json!({"note": "docs uploaded"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["status"], "pending");
    assert!(r.body["submitted_at"].is_i64());
    let r = app
        .post("/greenlight/v1/business_verification", &t.token, json!({}))
        .await;
    assert_eq!(r.code(), 1900300);
    let w = app
        .get(
            &format!("/v23.0/{}?fields=business_verification_status", t.waba_id),
            &t.token,
        )
        .await;
    assert_eq!(w.body["business_verification_status"], "pending");

    // bad decisions, tenant tokens, unknown businesses
    assert_eq!(
        decide(&app, &t, json!({"decision": "ok"})).await.code(),
        100
    );
    assert_eq!(decide(&app, &t, json!({})).await.code(), 131008);
    let r = app
        .post(
            &format!("/admin/v1/businesses/{}/verification", t.business_id),
            &t.token,
            json!({"decision": "verified"}),
        )
        .await;
    assert_eq!(r.code(), 10);
    let r = app
        .post(
            "/admin/v1/businesses/424242424242/verification",
            ADMIN,
            json!({"decision": "verified"}),
        )
        .await;
    assert_eq!(r.code(), 100);

    // rejected, then submitted again and verified
    let r = decide(
        &app,
        &t,
        json!({"decision": "rejected", "reason": "LEGAL NAME NOT MATCHING"}),
    )
    .await;
    assert_eq!(
        (r.body["status"].as_str(), r.body["reason"].as_str()),
        (Some("rejected"), Some("LEGAL NAME NOT MATCHING"))
    );
    assert_eq!(
        verification(&app, &t).await["messaging_limit_tier"],
        "TIER_250"
    );
    app.post("/greenlight/v1/business_verification", &t.token, json!({}))
        .await;
    let r = decide(&app, &t, json!({"decision": "verified"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["status"], "verified");
    assert_eq!(r.body["messaging_limit_tier"], "TIER_2K");
    assert_eq!(
        (
            r.body["max_templates"].as_i64(),
            r.body["max_phone_numbers"].as_i64()
        ),
        (Some(6000), Some(20))
    );
    assert_eq!(
        phone_field(&app, &t, "whatsapp_business_manager_messaging_limit").await,
        "TIER_2K"
    );
    let w = app
        .get(
            &format!("/v23.0/{}?fields=business_verification_status", t.waba_id),
            &t.token,
        )
        .await;
    assert_eq!(w.body["business_verification_status"], "verified");
    let l = app
        .get(
            &format!(
                "/v23.0/{}/message_templates?summary=message_template_limit",
                t.waba_id
            ),
            &t.token,
        )
        .await;
    assert_eq!(
        l.body["summary"]["message_template_limit"], 6000,
        "{}",
        l.body
    );
    // verified cannot be submitted again
    let r = app
        .post("/greenlight/v1/business_verification", &t.token, json!({}))
        .await;
    assert_eq!(r.code(), 1900300);
    let rows = audit_rows(&app, &t, "verification").await;
    assert_eq!(rows.len(), 4, "{rows:?}");
    let lim = audit_rows(&app, &t, "enforcement").await;
    assert!(lim.iter().any(|r| r["rule"] == "messaging_limit"
        && r["details"]
            .as_str()
            .unwrap()
            .contains("TIER_250 to TIER_2K")));
}

#[tokio::test]
async fn tiers_are_evaluated_every_six_hours_of_virtual_time() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let verified = app
        .tenant_with(json!({"business_name": "Verified Co", "verified": true}))
        .await;
    assert_eq!(
        phone_field(&app, &verified, "whatsapp_business_manager_messaging_limit").await,
        "TIER_2K"
    );
    let l = app.get("/greenlight/v1/messaging_limit", &t.token).await;
    assert_eq!(l.status, StatusCode::OK, "{}", l.body);
    assert_eq!(
        (
            l.body["tier"].as_str(),
            l.body["limit"].as_i64(),
            l.body["used_24h"].as_i64()
        ),
        (Some("TIER_250"), Some(250), Some(0))
    );
    let first = l.body["next_evaluation_at"].as_i64().unwrap();
    let now = now_secs(&app).await;
    assert!(
        (now + 6 * 3600 - 2..=now + 6 * 3600).contains(&first),
        "{first} {now}"
    );
    // not yet due
    app.advance(6 * 3600 - 10).await;
    let l = app.get("/greenlight/v1/messaging_limit", &t.token).await;
    assert_eq!(l.body["next_evaluation_at"], first);
    // due: evaluated (no usage: the tier stays), the next one is 6 h later
    app.advance(10).await;
    let l = app.get("/greenlight/v1/messaging_limit", &t.token).await;
    let second = l.body["next_evaluation_at"].as_i64().unwrap();
    assert!(second >= first + 6 * 3600 - 1, "{second} {first}");
    assert_eq!(l.body["tier"], "TIER_250");
    // a 30-day jump runs one evaluation at its end
    app.advance(30 * 86_400).await;
    let now = now_secs(&app).await;
    let l = app.get("/greenlight/v1/messaging_limit", &t.token).await;
    let next = l.body["next_evaluation_at"].as_i64().unwrap();
    assert!(
        (now + 6 * 3600 - 2..=now + 6 * 3600).contains(&next),
        "{next} {now}"
    );
    let a = app
        .get(
            &format!(
                "/admin/v1/businesses/{}/messaging_limit",
                verified.business_id
            ),
            ADMIN,
        )
        .await;
    assert_eq!(a.body["tier"], "TIER_2K");
    assert_eq!(
        app.get("/admin/v1/businesses/1234567/messaging_limit", ADMIN)
            .await
            .code(),
        100
    );
}

/// Needs the send path's messaging-limit counting (reach log, 1900200) and opt-in check.
#[tokio::test]
async fn an_unverified_business_hits_250_and_is_refused_verifies_grows_tiers() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    approved_template(&app, &t, "order_update").await;
    let customers: Vec<String> = (0..1001).map(|i| format!("1555{:07}", i)).collect();
    for chunk in customers.chunks(1000) {
        let items: Vec<_> = chunk
            .iter()
            .map(|c| json!({"wa_id": c, "scope": "all", "source": "import", "proof": "crm export"}))
            .collect();
        let r = app
            .post(
                &format!("/greenlight/v1/{}/opt_ins/batch", t.waba_id),
                &t.token,
                json!({"opt_ins": items}),
            )
            .await;
        assert!(r.status.is_success(), "{}", r.body);
    }
    for c in &customers[..250] {
        wamid_of(&send_paced(&app, &t, template_body(c, "order_update")).await);
    }
    let r = app
        .send(&t, template_body(&customers[250], "order_update"))
        .await;
    assert_eq!(r.code(), 1900200, "{}", r.body);
    // a customer already reached still passes
    wamid_of(&send_paced(&app, &t, template_body(&customers[0], "order_update")).await);
    // using all of 250 does not upgrade an unverified business
    app.advance(6 * 3600).await;
    assert_eq!(
        phone_field(&app, &t, "whatsapp_business_manager_messaging_limit").await,
        "TIER_250"
    );
    app.post("/greenlight/v1/business_verification", &t.token, json!({}))
        .await;
    app.post(
        &format!("/admin/v1/businesses/{}/verification", t.business_id),
        ADMIN,
        json!({"decision": "verified"}),
    )
    .await;
    assert_eq!(
        phone_field(&app, &t, "whatsapp_business_manager_messaging_limit").await,
        "TIER_2K"
    );
    for c in &customers[250..1001] {
        wamid_of(&send_paced(&app, &t, template_body(c, "order_update")).await);
    }
    // half of 2,000 used in 24 h with good quality: 10K at the next evaluation
    app.advance(6 * 3600).await;
    assert_eq!(
        phone_field(&app, &t, "whatsapp_business_manager_messaging_limit").await,
        "TIER_10K"
    );
    // and the send path applies it (the writer's cached tier was dropped by the change)
    let r = app
        .post(
            &format!("/greenlight/v1/{}/messages/check", t.phone_id),
            &t.token,
            template_body(&customers[0], "order_update"),
        )
        .await;
    assert_eq!(r.body["messaging_limit"]["tier"], "TIER_10K", "{}", r.body);
}
