//! Tokens and app secrets never appear in what greenlight writes: its logs (at debug level),
//! its error answers, or another tenant's view.

use crate::common::ADMIN;
use serde_json::{json, Value};
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Duration;

#[tokio::test]
async fn secrets_are_not_logged() {
    let dir = tempfile::tempdir().unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut child = Command::new(env!("CARGO_BIN_EXE_greenlight"))
        .arg("serve")
        .env("GREENLIGHT_LISTEN", format!("127.0.0.1:{port}"))
        .env(
            "GREENLIGHT_DATABASE_URL",
            format!("sqlite://{}", dir.path().join("s.db").display()),
        )
        .env("GREENLIGHT_MEDIA_DIR", dir.path().join("media"))
        .env("GREENLIGHT_ADMIN_TOKEN", ADMIN)
        .env("GREENLIGHT_DEMO_TENANT", "false")
        .env("GREENLIGHT_LOG", "debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    for _ in 0..100 {
        if client.get(format!("{base}/healthz")).send().await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let t: Value = client
        .post(format!("{base}/admin/v1/tenants"))
        .bearer_auth(ADMIN)
        .json(&json!({"business_name": "S"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (token, secret, phone) = (
        t["access_token"].as_str().unwrap(),
        t["app_secret"].as_str().unwrap(),
        t["phone_numbers"][0]["id"].as_str().unwrap(),
    );
    // a normal exchange, a wrong token, and the token in the query string
    client
        .post(format!("{base}/sandbox/v1/{phone}/inbound"))
        .bearer_auth(token)
        .json(&json!({"from": "15551230001", "type": "text", "text": {"body": "hi"}}))
        .send()
        .await
        .unwrap();
    client.post(format!("{base}/v23.0/{phone}/messages")).bearer_auth(token).json(&json!({"messaging_product": "whatsapp", "to": "15551230001", "type": "text", "text": {"body": "x"}})).send().await.unwrap();
    let r = client
        .get(format!("{base}/v23.0/{phone}"))
        .bearer_auth(format!("{token}x"))
        .send()
        .await
        .unwrap();
    let wrong = r.text().await.unwrap();
    assert!(
        !wrong.contains(token),
        "an error answer must not echo the token"
    );
    client
        .get(format!("{base}/v23.0/{phone}?access_token={token}"))
        .send()
        .await
        .unwrap();
    client
        .post(format!("{base}/admin/v1/tenants"))
        .bearer_auth("not-the-admin-token")
        .json(&json!({"business_name": "x"}))
        .send()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    child.kill().unwrap();
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let _ = child.wait();
    assert!(
        out.contains("greenlight is listening"),
        "the log was captured: {out}"
    );
    for (what, s) in [
        ("access token", token),
        ("app secret", secret),
        ("admin token", ADMIN),
    ] {
        assert!(!out.contains(s), "the {what} appears in the output:\n{out}");
    }
}
