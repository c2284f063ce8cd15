//! `greenlight export` / `greenlight import`: a whole SQLite installation moves into
//! PostgreSQL, and greenlight on PostgreSQL answers the same. Skipped (and said so) when
//! PostgreSQL is not reachable, unless CI requires it (`pg.rs`).

use crate::common::*;
use crate::compliance_common::{approved_template, template_body};
use crate::pg::TestDb;
use reqwest::StatusCode;
use serde_json::{json, Value};

/// What a client reads back: the messages, a thread, the templates, the opt-ins, the audit.
async fn snapshot(app: &TestApp, t: &Tenant, wamids: &[String]) -> Vec<Value> {
    let mut out = Vec::new();
    for w in wamids {
        out.push(app.message(t, w).await);
    }
    for path in [
        format!("/sandbox/v1/{}/users/15551234567/messages", t.phone_id),
        format!("/v23.0/{}/message_templates", t.waba_id),
        format!("/greenlight/v1/{}/opt_ins", t.waba_id),
        "/greenlight/v1/audit".to_string(),
        format!("/v23.0/{}", t.phone_id),
    ] {
        let r = app.get(&path, &t.token).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.body);
        out.push(r.body);
    }
    out
}

#[tokio::test]
async fn a_sqlite_installation_moves_into_postgresql() {
    let Some(db) = TestDb::create("a_sqlite_installation_moves_into_postgresql") else {
        return;
    };
    // a SQLite installation, whatever backend the suite runs on
    let dir = tempfile::tempdir().unwrap();
    let sqlite_url = format!("sqlite://{}", dir.path().join("source.db").display());
    let u = sqlite_url.clone();
    let app = spawn_with(move |l| l.database_url = Some(u)).await;
    let t = app.tenant().await;
    approved_template(&app, &t, "order_update").await;
    let r = app
        .post(
            &format!("/greenlight/v1/{}/opt_ins", t.waba_id),
            &t.token,
            json!({"wa_id": "15551230001", "scope": "all", "source": "web_form", "proof": "box ticked"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    app.inbound(&t, "15551234567", "hello").await;
    let mut wamids = vec![
        wamid_of(&app.send_text(&t, "15551234567", "hi there").await),
        wamid_of(
            &app.send(&t, template_body("15551230001", "order_update"))
                .await,
        ),
    ];
    // refused (no opt-in): an audit row
    let r = app
        .send(&t, template_body("15551230002", "order_update"))
        .await;
    assert_eq!(r.code(), 1900100, "{}", r.body);
    // settled (pending deliveries would move too, and finish on the other side)
    for w in &wamids {
        app.wait_status(&t, w, "delivered").await;
    }
    wamids.push(app.inbound(&t, "15551234567", "thanks").await);
    let before = snapshot(&app, &t, &wamids).await;

    let bin = env!("CARGO_BIN_EXE_greenlight");
    let dump = dir.path().join("dump.jsonl");
    let out = std::process::Command::new(bin)
        .args(["export", "--database-url", &sqlite_url])
        .env("GREENLIGHT_ADMIN_TOKEN", ADMIN)
        .stdout(std::fs::File::create(&dump).unwrap())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    app.stop().await;

    let out = std::process::Command::new(bin)
        .args(["import", "--database-url", &db.url])
        .env("GREENLIGHT_ADMIN_TOKEN", ADMIN)
        .stdin(std::fs::File::open(&dump).unwrap())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("import: "), "{stderr}");
    // exported back from PostgreSQL, the dump is the same, line for line
    let back = std::process::Command::new(bin)
        .args(["export", "--database-url", &db.url])
        .env("GREENLIGHT_ADMIN_TOKEN", ADMIN)
        .output()
        .unwrap();
    assert!(back.status.success());
    assert_eq!(
        String::from_utf8_lossy(&back.stdout),
        std::fs::read_to_string(&dump).unwrap()
    );
    // a second import into the same database is refused, and changes nothing
    let again = std::process::Command::new(bin)
        .args(["import", "--database-url", &db.url])
        .env("GREENLIGHT_ADMIN_TOKEN", ADMIN)
        .stdin(std::fs::File::open(&dump).unwrap())
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already holds 1 tenant"));

    // greenlight on PostgreSQL: the same token works, the same answers come back
    let url = db.url.clone();
    let pg_app = spawn_with(move |l| l.database_url = Some(url)).await;
    let after = snapshot(&pg_app, &t, &wamids).await;
    assert_eq!(before, after);
    // and it carries on (two messages in, two out in this thread)
    let w = wamid_of(&pg_app.send_text(&t, "15551234567", "on postgres").await);
    // `sent`, then `delivered` 200 ms later: on a loaded machine the read may come after both
    pg_app.wait_status(&t, &w, "delivered").await;
    let thread = pg_app
        .get(
            &format!("/sandbox/v1/{}/users/15551234567/messages", t.phone_id),
            &t.token,
        )
        .await;
    assert_eq!(
        thread.body["data"].as_array().map(|a| a.len()),
        Some(4),
        "{}",
        thread.body
    );
    pg_app.stop().await;
}
