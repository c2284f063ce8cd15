//! Quality rating of numbers and templates from customers' blocks and reports; template
//! pausing (3 h, 6 h) and disabling, by the virtual clock.

use crate::common::*;
use crate::compliance_common::*;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn customers_block_and_report_until_quality_turns_red_and_the_webhooks_arrive() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let tpl = approved_template(&app, &t, "order_update").await;
    let customers: Vec<String> = (1..=6).map(|i| format!("1555123400{i}")).collect();
    let mut sent = Vec::new();
    for c in &customers {
        app.inbound(&t, c, "hi").await;
        sent.push(wamid_of(
            &app.send(&t, template_body(c, "order_update")).await,
        ));
    }
    for w in &sent {
        app.wait_status(&t, w, "delivered").await;
    }
    assert_eq!(phone_field(&app, &t, "quality_rating").await, "GREEN");
    assert_eq!(template_quality(&app, &t, &tpl).await, "UNKNOWN");

    // 1 block on a small volume is diluted by the minimum sample of 100: still GREEN
    let r = act(&app, &t, &customers[0], json!({"action": "block"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(phone_field(&app, &t, "quality_rating").await, "GREEN");
    // a spam report (2 × 1.5) about the message: 4 % → YELLOW
    act(
        &app,
        &t,
        &customers[1],
        json!({"action": "report", "reason": "spam", "message_id": sent[1]}),
    )
    .await;
    assert_eq!(phone_field(&app, &t, "quality_rating").await, "YELLOW");
    assert_eq!(template_quality(&app, &t, &tpl).await, "YELLOW");
    // another report: 6 % → RED; the template is paused for 3 hours
    act(&app, &t, &customers[2], json!({"action": "report"})).await;
    assert_eq!(phone_field(&app, &t, "quality_rating").await, "RED");
    assert_eq!(phone_field(&app, &t, "quality_score").await["score"], "RED");
    assert_eq!(template_quality(&app, &t, &tpl).await, "RED");
    assert_eq!(template_status(&app, &t, &tpl).await, "PAUSED");
    let r = app
        .send(&t, template_body(&customers[3], "order_update"))
        .await;
    assert_eq!(r.code(), 132015, "{}", r.body);

    // the audit trail tells the story: the number's rating changes and the pause
    let q: Vec<_> = audit_rows(&app, &t, "enforcement")
        .await
        .into_iter()
        .filter(|r| r["rule"] == "quality_rating")
        .collect();
    assert_eq!(q.len(), 2, "{q:?}");
    assert!(q[1]["details"]
        .as_str()
        .unwrap()
        .contains("from YELLOW to RED"));
    let p = audit_rows(&app, &t, "template").await;
    assert!(p
        .iter()
        .any(|r| r["details"].as_str().unwrap().contains("FIRST_PAUSE")));

    // the pause ends by the clock, not a second earlier
    app.advance(3 * 3600 - 5).await;
    assert_eq!(template_status(&app, &t, &tpl).await, "PAUSED");
    app.advance(5).await;
    assert_eq!(template_status(&app, &t, &tpl).await, "APPROVED");
    // quality restarts from feedback after the unpause
    assert_eq!(template_quality(&app, &t, &tpl).await, "UNKNOWN");
    wamid_of(
        &app.send(&t, template_body(&customers[3], "order_update"))
            .await,
    );

    // RED again: 6 hours
    for c in &customers[3..5] {
        act(&app, &t, c, json!({"action": "report", "reason": "spam"})).await;
    }
    assert_eq!(template_status(&app, &t, &tpl).await, "PAUSED");
    app.advance(6 * 3600 - 5).await;
    assert_eq!(template_status(&app, &t, &tpl).await, "PAUSED");
    app.advance(5).await;
    assert_eq!(template_status(&app, &t, &tpl).await, "APPROVED");

    // a third time: disabled for good, and a violation on record
    for c in &customers[..2] {
        act(&app, &t, c, json!({"action": "report", "reason": "spam"})).await;
    }
    assert_eq!(template_status(&app, &t, &tpl).await, "DISABLED");
    let r = app
        .send(&t, template_body(&customers[5], "order_update"))
        .await;
    assert_eq!(r.code(), 132016, "{}", r.body);
    app.advance(24 * 3600).await;
    assert_eq!(template_status(&app, &t, &tpl).await, "DISABLED");
    let e = enforcement(&app, &t).await;
    assert_eq!(e["violations"][0]["kind"], "template_disabled_for_quality");
    assert_eq!(
        e["violations"][0]["violation_type"],
        "TEMPLATE_DISABLED_FOR_QUALITY"
    );
    assert_eq!(e["strikes"], 1);
    assert_eq!(e["restrictions"].as_array().unwrap().len(), 0);
    let titles: Vec<String> = audit_rows(&app, &t, "template")
        .await
        .iter()
        .map(|r| r["details"].as_str().unwrap().to_string())
        .collect();
    for title in ["FIRST_PAUSE", "SECOND_PAUSE", "DISABLED", "UNPAUSE"] {
        assert!(
            titles.iter().any(|d| d.contains(title)),
            "{title}: {titles:?}"
        );
    }
}

#[tokio::test]
async fn feedback_decays_over_seven_days_and_the_number_turns_green_again() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let other = app.tenant().await;
    // 6 blocks on 6 deliveries: 6 / 100 (the minimum sample) = 6 % → RED
    for i in 0..6 {
        let c = format!("1555987000{i}");
        app.inbound(&t, &c, "hi").await;
        wamid_of(&app.send_text(&t, &c, "hello").await);
        act(&app, &t, &c, json!({"action": "block"})).await;
    }
    assert_eq!(phone_field(&app, &t, "quality_rating").await, "RED");
    // another tenant's number is untouched
    let g = app
        .get(
            &format!("/v23.0/{}?fields=quality_rating", other.phone_id),
            &other.token,
        )
        .await;
    assert_eq!(g.body["quality_rating"], "GREEN");
    // after 3.5 days the blocks weigh half: 3 % → YELLOW at the next 6-hourly evaluation
    app.advance(84 * 3600).await;
    assert_eq!(phone_field(&app, &t, "quality_rating").await, "YELLOW");
    // after 7 days nothing is left in the window
    app.advance(84 * 3600).await;
    assert_eq!(phone_field(&app, &t, "quality_rating").await, "GREEN");
    // free-form feedback without a template message counts for no template
    let v = enforcement(&app, &t).await;
    assert_eq!(v["violations"].as_array().unwrap().len(), 0);
}
