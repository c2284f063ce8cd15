//! Enforcement: violations with evidence, the escalation ladder, restrictions that expire by
//! the clock, disable, appeals and the operator's decision.

use crate::common::*;
use crate::compliance_common::*;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn operator_violations_climb_the_ladder_and_restrictions_expire() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let other = app.tenant().await;
    let r = file_violation(
        &app,
        &t,
        json!({"violation_type": "adult", "evidence": "complaint #12: adult content in wamid.X"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["violation_type"], "ADULT");
    assert_eq!(r.body["severe"], false);
    let e = enforcement(&app, &t).await;
    assert_eq!(
        (e["strikes"].as_i64(), e["disabled"].as_bool()),
        (Some(1), Some(false))
    );
    assert_eq!(e["restrictions"].as_array().unwrap().len(), 0);

    // the second strike restricts business-initiated messaging (and adding numbers) for 1 day
    let now = now_secs(&app).await;
    file_violation(
        &app,
        &t,
        json!({"violation_type": "ALCOHOL", "evidence": "ad for spirits"}),
    )
    .await;
    let e = enforcement(&app, &t).await;
    let rs = e["restrictions"].as_array().unwrap();
    let types: Vec<&str> = rs
        .iter()
        .map(|r| r["restriction_type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "RESTRICTED_BIZ_INITIATED_MESSAGING",
            "RESTRICTED_ADD_PHONE_NUMBER_ACTION"
        ]
    );
    let exp = rs[0]["expiration"].as_i64().unwrap();
    assert!(
        (now + 86_400..=now + 86_402).contains(&exp),
        "{exp} vs {now}"
    );
    // the operator sees the same; the other tenant sees nothing of it
    let a = app
        .get(
            &format!("/admin/v1/businesses/{}/enforcement", t.business_id),
            ADMIN,
        )
        .await;
    assert_eq!(a.body["strikes"], 2);
    let o = enforcement(&app, &other).await;
    assert_eq!(o["violations"].as_array().unwrap().len(), 0);
    // audit: warning, then restriction with 368
    let rows = audit_rows(&app, &t, "enforcement").await;
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["code"], serde_json::Value::Null);
    assert_eq!(rows[1]["code"], 368);
    assert_eq!(rows[1]["rule"], "enforcement");

    // clock edge: still restricted just before the end, free after
    app.advance(86_400 - 10).await;
    assert_eq!(
        enforcement(&app, &t).await["restrictions"]
            .as_array()
            .unwrap()
            .len(),
        1 + 1
    );
    app.advance(11).await;
    let e = enforcement(&app, &t).await;
    assert_eq!(e["restrictions"].as_array().unwrap().len(), 0);
    assert_eq!(e["restriction_history"].as_array().unwrap().len(), 2);
    assert!(audit_rows(&app, &t, "enforcement")
        .await
        .iter()
        .any(|r| r["details"].as_str().unwrap().contains("ended")));

    // third strike: 3 days; the operator lifts it early
    file_violation(
        &app,
        &t,
        json!({"violation_type": "SPAM", "evidence": "bulk"}),
    )
    .await;
    let e = enforcement(&app, &t).await;
    let exp = e["restrictions"][0]["expiration"].as_i64().unwrap();
    assert!(exp - now_secs(&app).await >= 3 * 86_400 - 2);
    let l = app
        .post(
            &format!("/admin/v1/businesses/{}/restrictions/lift", t.business_id),
            ADMIN,
            json!({"restriction_type": "RESTRICTED_BIZ_INITIATED_MESSAGING"}),
        )
        .await;
    assert_eq!(l.body["lifted"], 1, "{}", l.body);
    let e = enforcement(&app, &t).await;
    assert_eq!(
        e["restrictions"][0]["restriction_type"],
        "RESTRICTED_ADD_PHONE_NUMBER_ACTION"
    );
    let l = app
        .post(
            &format!("/admin/v1/businesses/{}/restrictions/lift", t.business_id),
            ADMIN,
            json!({}),
        )
        .await;
    assert_eq!(l.body["lifted"], 1);

    // fourth and fifth: all messaging, 5 then 7 days; sixth: disabled
    file_violation(&app, &t, json!({"violation_type": "SPAM", "evidence": "4"})).await;
    let e = enforcement(&app, &t).await;
    assert!(e["restrictions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["restriction_type"] == "RESTRICTED_CUSTOMER_INITIATED_MESSAGING"));
    file_violation(&app, &t, json!({"violation_type": "SPAM", "evidence": "5"})).await;
    file_violation(&app, &t, json!({"violation_type": "SPAM", "evidence": "6"})).await;
    let e = enforcement(&app, &t).await;
    assert_eq!(e["disabled"], true);
    assert_eq!(e["strikes"], 6);
    assert_eq!(
        audit_rows(&app, &t, "enforcement").await.last().unwrap()["code"],
        131031
    );
}

#[tokio::test]
async fn operator_endpoints_refuse_bad_input_and_tenant_tokens() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let path = format!("/admin/v1/businesses/{}/violations", t.business_id);
    let r = app
        .post(
            &path,
            &t.token,
            json!({"violation_type": "SCAM", "evidence": "x"}),
        )
        .await;
    assert_eq!(r.code(), 10);
    let r = app.post(&path, ADMIN, json!({"evidence": "x"})).await;
    assert_eq!(r.code(), 131008);
    let r = app
        .post(&path, ADMIN, json!({"violation_type": "SCAM"}))
        .await;
    assert_eq!(r.code(), 131008);
    let r = app
        .post(
            &path,
            ADMIN,
            json!({"violation_type": "SC{AM", "evidence": "x"}),
        )
        .await;
    assert_eq!(r.code(), 100);
    let r = app
        .post(
            &path,
            ADMIN,
            json!({"violation_type": "SCAM", "evidence": "x", "severe": "yes"}),
        )
        .await;
    assert_eq!(r.code(), 100);
    let r = app
        .post(
            "/admin/v1/businesses/999999999/violations",
            ADMIN,
            json!({"violation_type": "SCAM", "evidence": "x"}),
        )
        .await;
    assert_eq!(r.code(), 100);
    let r = app
        .get("/admin/v1/businesses/999999999/enforcement", ADMIN)
        .await;
    assert_eq!(r.code(), 100);
    let r = app
        .post(
            &format!("/admin/v1/businesses/{}/restrictions/lift", t.business_id),
            ADMIN,
            json!({"restriction_type": "NOPE"}),
        )
        .await;
    assert_eq!(r.code(), 100);
    let r = app.get("/greenlight/v1/enforcement", "bad-token").await;
    assert_eq!(r.code(), 190);
    assert_eq!(
        enforcement(&app, &t).await["violations"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
}

#[tokio::test]
async fn a_severe_violation_disables_and_a_reversed_appeal_reinstates() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let other = app.tenant().await;
    let r = file_violation(
        &app,
        &t,
        json!({"violation_type": "SCAM", "evidence": "phishing links"}),
    )
    .await;
    assert_eq!(r.body["severe"], true);
    let id = r.body["id"].as_str().unwrap().to_string();
    assert_eq!(enforcement(&app, &t).await["disabled"], true);

    // the operator cannot decide before the tenant appealed
    let d = app
        .post(
            &format!("/admin/v1/violations/{id}/appeal"),
            ADMIN,
            json!({"decision": "reversed"}),
        )
        .await;
    assert_eq!(d.code(), 1900400, "{}", d.body);
    // another tenant cannot appeal it
    let a = app
        .post(
            &format!("/greenlight/v1/violations/{id}/appeal"),
            &other.token,
            json!({"reason": "x"}),
        )
        .await;
    assert_eq!(a.code(), 100);
    let a = app
        .post(
            &format!("/greenlight/v1/violations/{id}/appeal"),
            &t.token,
            json!({}),
        )
        .await;
    assert_eq!(a.code(), 131008);
    let a = app
        .post(
            &format!("/greenlight/v1/violations/{id}/appeal"),
            &t.token,
            json!({"reason": "the links were our own bank's"}),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.body["appeal_status"], "pending");
    let again = app
        .post(
            &format!("/greenlight/v1/violations/{id}/appeal"),
            &t.token,
            json!({"reason": "again"}),
        )
        .await;
    assert_eq!(again.code(), 1900400);
    let bad = app
        .post(
            &format!("/admin/v1/violations/{id}/appeal"),
            ADMIN,
            json!({"decision": "maybe"}),
        )
        .await;
    assert_eq!(bad.code(), 100);
    let d = app
        .post(
            &format!("/admin/v1/violations/{id}/appeal"),
            ADMIN,
            json!({"decision": "reversed"}),
        )
        .await;
    assert_eq!(d.status, StatusCode::OK, "{}", d.body);
    assert_eq!(d.body["appeal_status"], "reversed");
    assert!(d.body["reversed_at"].is_i64());
    let e = enforcement(&app, &t).await;
    assert_eq!(
        (e["disabled"].as_bool(), e["strikes"].as_i64()),
        (Some(false), Some(0))
    );
    assert!(audit_rows(&app, &t, "enforcement")
        .await
        .iter()
        .any(|r| r["details"].as_str().unwrap().contains("reinstated")));
}

#[tokio::test]
async fn appeals_lift_the_restriction_in_force_unless_unchanged_and_close_after_90_days() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    file_violation(
        &app,
        &t,
        json!({"violation_type": "ADULT", "evidence": "1"}),
    )
    .await;
    let r = file_violation(
        &app,
        &t,
        json!({"violation_type": "ADULT", "evidence": "2"}),
    )
    .await;
    let second = r.body["id"].as_str().unwrap().to_string();
    let e = enforcement(&app, &t).await;
    assert_eq!(e["restrictions"].as_array().unwrap().len(), 2);
    let first = e["violations"][1]["id"].as_str().unwrap().to_string();

    // unchanged: nothing moves, and it cannot be appealed again
    app.post(
        &format!("/greenlight/v1/violations/{second}/appeal"),
        &t.token,
        json!({"reason": "r"}),
    )
    .await;
    let d = app
        .post(
            &format!("/admin/v1/violations/{second}/appeal"),
            ADMIN,
            json!({"decision": "unchanged"}),
        )
        .await;
    assert_eq!(d.body["appeal_status"], "unchanged");
    assert_eq!(
        enforcement(&app, &t).await["restrictions"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let again = app
        .post(
            &format!("/greenlight/v1/violations/{second}/appeal"),
            &t.token,
            json!({"reason": "r"}),
        )
        .await;
    assert_eq!(again.code(), 1900400);

    // the first (a warning) reversed: it stops counting, the restriction of the second stays
    app.post(
        &format!("/greenlight/v1/violations/{first}/appeal"),
        &t.token,
        json!({"reason": "r"}),
    )
    .await;
    app.post(
        &format!("/admin/v1/violations/{first}/appeal"),
        ADMIN,
        json!({"decision": "reversed"}),
    )
    .await;
    let e = enforcement(&app, &t).await;
    assert_eq!(e["strikes"], 1);
    assert_eq!(e["restrictions"].as_array().unwrap().len(), 2);

    // 90 days later a new violation can no longer be appealed after the window
    let r = file_violation(
        &app,
        &t,
        json!({"violation_type": "ADULT", "evidence": "3"}),
    )
    .await;
    let third = r.body["id"].as_str().unwrap().to_string();
    app.advance(90 * 86_400 + 1).await;
    let late = app
        .post(
            &format!("/greenlight/v1/violations/{third}/appeal"),
            &t.token,
            json!({"reason": "r"}),
        )
        .await;
    assert_eq!(late.code(), 1900400);
    assert!(late.details().contains("90 days"), "{}", late.details());
}

/// Needs the send path's opt-in integration (STOP revokes consent; a send to such a customer
/// is refused with 1900100 and recorded as a violation; restrictions answer 368).
#[tokio::test]
async fn a_business_ignores_stop_and_is_escalated_to_a_restriction_which_expires() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    approved_template(&app, &t, "order_update").await;
    let stopper = "15550001111";
    let fan = "15550002222";
    for c in [stopper, fan] {
        let r = app
            .post(
                &format!("/greenlight/v1/{}/opt_ins", t.waba_id),
                &t.token,
                json!({"wa_id": c, "scope": "all", "source": "web_form", "proof": "signup form"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    }
    app.inbound(&t, stopper, "STOP").await;
    app.advance(25 * 3600).await; // the window the STOP opened has closed
    let r = app.send(&t, template_body(stopper, "order_update")).await;
    assert_eq!(r.code(), 1900100, "{}", r.body);
    let e = enforcement(&app, &t).await;
    assert_eq!(e["violations"][0]["kind"], "ignored_opt_out");
    assert_eq!(e["restrictions"].as_array().unwrap().len(), 0);
    // the next day, again: restricted for a day
    app.advance(24 * 3600 + 60).await;
    let r = app.send(&t, template_body(stopper, "order_update")).await;
    assert!([1900100, 368].contains(&r.code()), "{}", r.body);
    let e = enforcement(&app, &t).await;
    assert_eq!(e["strikes"], 2);
    assert_eq!(
        e["restrictions"][0]["restriction_type"],
        "RESTRICTED_BIZ_INITIATED_MESSAGING"
    );
    let r = app.send(&t, template_body(fan, "order_update")).await;
    assert_eq!(r.code(), 368, "{}", r.body);
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // replies inside a window still pass
    app.inbound(&t, fan, "hello?").await;
    wamid_of(&app.send_text(&t, fan, "hi!").await);
    app.advance(86_400).await;
    let other = "15550003333";
    app.post(
        &format!("/greenlight/v1/{}/opt_ins", t.waba_id),
        &t.token,
        json!({"wa_id": other, "scope": "all", "source": "web_form", "proof": "signup form"}),
    )
    .await;
    wamid_of(&app.send(&t, template_body(other, "order_update")).await);
}
