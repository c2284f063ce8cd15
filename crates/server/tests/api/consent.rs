//! The consent registry: record, list, revoke with history, batch, isolation.

use crate::common::*;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn record_list_revoke_keeps_history() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let base = format!("/greenlight/v1/{}/opt_ins", t.waba_id);
    let r = app
        .post(&base, &t.token, json!({"wa_id": "+44 7700 900123", "scope": "marketing", "source": "web_form", "proof": "I agree to receive offers from Acme by WhatsApp", "captured_at": 1_700_000_000}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(
        (
            r.body["wa_id"].as_str(),
            r.body["status"].as_str(),
            r.body["captured_at"].as_i64()
        ),
        (Some("447700900123"), Some("active"), Some(1_700_000_000))
    );
    assert!(r.body["id"].is_string());
    app.post(&base, &t.token, json!({"wa_id": "447700900123", "scope": "utility", "source": "checkout", "proof": "order updates box ticked"})).await;
    app.post(&base, &t.token, json!({"wa_id": "15551230001", "scope": "all", "source": "ivr", "proof": "https://acme.test/consent/1"})).await;
    let r = app
        .get(&format!("{base}?wa_id=447700900123"), &t.token)
        .await;
    assert_eq!(r.body["data"].as_array().unwrap().len(), 2);
    let r = app.get(&format!("{base}?scope=all"), &t.token).await;
    assert_eq!(r.body["data"][0]["wa_id"], "15551230001");
    let r = app
        .req(
            reqwest::Method::DELETE,
            &format!("{base}/447700900123?scope=marketing"),
            Some(&t.token),
            None,
        )
        .await;
    assert_eq!(r.body, json!({"success": true, "revoked": 1}));
    let r = app
        .get(&format!("{base}?wa_id=447700900123"), &t.token)
        .await;
    assert_eq!(
        r.body["data"].as_array().unwrap().len(),
        1,
        "revoked records leave the active list"
    );
    let r = app
        .get(
            &format!("{base}?wa_id=447700900123&include_revoked=true"),
            &t.token,
        )
        .await;
    let statuses: Vec<&str> = r.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["revoked", "active"], "history kept");
}

#[tokio::test]
async fn opt_in_validation() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let base = format!("/greenlight/v1/{}/opt_ins", t.waba_id);
    let ok = json!({"wa_id": "15551230001", "scope": "marketing", "source": "web", "proof": "yes"});
    for (patch, code) in [
        (json!({"wa_id": null}), 131008),
        (json!({"wa_id": "12"}), 100),
        (json!({"scope": "newsletters"}), 100),
        (json!({"source": ""}), 131008),
        (json!({"proof": null}), 131008),
        (json!({"captured_at": 99_999_999_999i64}), 100),
        (json!({"captured_at": "yesterday"}), 100),
    ] {
        let mut b = ok.clone();
        for (k, v) in patch.as_object().unwrap() {
            if v.is_null() {
                b.as_object_mut().unwrap().remove(k);
            } else {
                b[k] = v.clone();
            }
        }
        let r = app.post(&base, &t.token, b.clone()).await;
        assert_eq!(r.code(), code, "{b}: {}", r.body);
    }
}

#[tokio::test]
async fn batch_is_all_or_nothing_and_bounded() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let base = format!("/greenlight/v1/{}/opt_ins", t.waba_id);
    let items: Vec<_> = (0..1000).map(|i| json!({"wa_id": format!("1555{:07}", i), "scope": "all", "source": "import", "proof": "crm export"})).collect();
    let r = app
        .post(
            &format!("{base}/batch"),
            &t.token,
            json!({"opt_ins": items}),
        )
        .await;
    assert_eq!(
        (r.status, r.body["count"].as_u64()),
        (StatusCode::CREATED, Some(1000))
    );
    let mut too_many = items.clone();
    too_many.push(items[0].clone());
    let r = app
        .post(
            &format!("{base}/batch"),
            &t.token,
            json!({"opt_ins": too_many}),
        )
        .await;
    assert_eq!(r.code(), 100);
    let mut one_bad: Vec<_> = (0..3).map(|i| json!({"wa_id": format!("1444{:07}", i), "scope": "all", "source": "import", "proof": "x"})).collect();
    one_bad[2]["scope"] = json!("nope");
    let r = app
        .post(
            &format!("{base}/batch"),
            &t.token,
            json!({"opt_ins": one_bad}),
        )
        .await;
    assert_eq!(r.code(), 100);
    assert!(r.details().contains("opt_ins[2].scope"), "{}", r.details());
    let r = app
        .get(&format!("{base}?wa_id=14440000000"), &t.token)
        .await;
    assert_eq!(
        r.body["data"].as_array().unwrap().len(),
        0,
        "nothing half-recorded"
    );
    // paging
    let r = app.get(&format!("{base}?limit=400"), &t.token).await;
    assert_eq!(r.body["data"].as_array().unwrap().len(), 400);
    let next = r.body["paging"]["next"]
        .as_str()
        .unwrap()
        .replace(&app.base, "");
    let r2 = app.get(&next, &t.token).await;
    assert_eq!(r2.body["data"].as_array().unwrap().len(), 400);
    assert_ne!(r.body["data"][0]["id"], r2.body["data"][0]["id"]);
}

#[tokio::test]
async fn opt_ins_are_tenant_scoped() {
    let app = spawn_app().await;
    let a = app.tenant().await;
    let b = app.tenant().await;
    let r = app
        .post(
            &format!("/greenlight/v1/{}/opt_ins", b.waba_id),
            &a.token,
            json!({"wa_id": "15551230001", "scope": "all", "source": "x", "proof": "y"}),
        )
        .await;
    assert_eq!(
        (r.code(), r.body["error"]["error_subcode"].as_i64()),
        (100, Some(33))
    );
    let r = app
        .get(&format!("/greenlight/v1/{}/opt_ins", b.waba_id), &a.token)
        .await;
    assert_eq!(r.code(), 100);
}

#[tokio::test]
async fn csv_import_is_validated_and_atomic() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let csv = app.dir.path().join("optins.csv");
    std::fs::write(
        &csv,
        "wa_id,scope,source,proof,captured_at\n\
         15551230001,marketing,web_form,\"I agree, send me offers\",1700000000\n\
         +44 7700 900123,all,store,signed paper form,\n\
         15551230003,utility,checkout,box ticked,\n\
         123,marketing,web_form,x,\n\
         15551230005,newsletter,web_form,x,\n",
    )
    .unwrap();
    let bin = env!("CARGO_BIN_EXE_greenlight");
    let db = app.database_url();
    let run = |extra: &[&str]| {
        std::process::Command::new(bin)
            .args([
                "optin",
                "import",
                "--waba-id",
                &t.waba_id,
                "--database-url",
                &db,
            ])
            .args(extra)
            .arg(&csv)
            .env("GREENLIGHT_ADMIN_TOKEN", ADMIN)
            .output()
            .unwrap()
    };
    let out = run(&[]);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("rejected line 5") && stdout.contains("rejected line 6"),
        "{stdout}"
    );
    assert!(
        stdout.contains("accepted: 3  rejected: 2  imported: 0"),
        "{stdout}"
    );
    let base = format!("/greenlight/v1/{}/opt_ins", t.waba_id);
    assert_eq!(
        app.get(&base, &t.token).await.body["data"]
            .as_array()
            .unwrap()
            .len(),
        0,
        "nothing half-imported"
    );
    let out = run(&["--skip-invalid"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let r = app.get(&base, &t.token).await;
    assert_eq!(r.body["data"].as_array().unwrap().len(), 3);
    assert_eq!(r.body["data"][0]["proof"], "I agree, send me offers");
    assert_eq!(r.body["data"][0]["recorded_by"], "cli:import");
    // a missing column is an error that says which
    std::fs::write(&csv, "wa_id,scope,proof\n15551230001,all,x\n").unwrap();
    let out = run(&[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("`source` is missing"));
}
