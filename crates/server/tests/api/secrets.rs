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

/// Gateway mode: Meta's token and app secret, the verify token and the secrets key appear
/// neither in the logs (debug level) nor in clear in the database file.
#[tokio::test]
async fn gateway_secrets_are_not_logged_nor_stored_in_clear() {
    use hmac::Mac;
    let dir = tempfile::tempdir().unwrap();
    let free = || {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let (port, upstream_port) = (free(), free());
    let db = dir.path().join("g.db");
    let mut child = Command::new(env!("CARGO_BIN_EXE_greenlight"))
        .arg("serve")
        .env("GREENLIGHT_LISTEN", format!("127.0.0.1:{port}"))
        .env(
            "GREENLIGHT_DATABASE_URL",
            format!("sqlite://{}", db.display()),
        )
        .env("GREENLIGHT_MEDIA_DIR", dir.path().join("media"))
        .env("GREENLIGHT_ADMIN_TOKEN", ADMIN)
        .env("GREENLIGHT_MODE", "gateway")
        .env(
            "GREENLIGHT_UPSTREAM_URL",
            format!("http://127.0.0.1:{upstream_port}"),
        )
        .env("GREENLIGHT_SECRETS_KEY", crate::gateway::KEY)
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
    let (meta_token, meta_secret, vt) = (
        "EAAGmetaTOKENnever-logged-123",
        "meta-app-secret-never-logged",
        "verify-token-never-logged",
    );
    let t: Value = client
        .post(format!("{base}/admin/v1/tenants"))
        .bearer_auth(ADMIN)
        .json(&json!({"business_name": "G", "upstream": {
            "access_token": meta_token, "app_secret": meta_secret, "waba_id": "4000001",
            "phone_numbers": [{"id": "4000002", "display_phone_number": "+1 555 010 0009", "verified_name": "G"}],
            "webhook_verify_token": vt }}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = t["access_token"].as_str().expect("created").to_string();
    // a handshake, a webhook with a bad then a good signature, a forwarded send (upstream
    // down), a forwarded GET, a credential rotation
    client
        .get(format!(
            "{base}/webhooks/meta?hub.mode=subscribe&hub.verify_token={vt}&hub.challenge=1"
        ))
        .send()
        .await
        .unwrap();
    let body = serde_json::to_vec(&json!({"object": "whatsapp_business_account", "entry": [{"id": "4000001", "changes": [{"field": "messages", "value": {
        "metadata": {"phone_number_id": "4000002", "display_phone_number": "15550100009"},
        "messages": [{"from": "15551230001", "id": "wamid.x", "type": "text", "text": {"body": "hi"}}]}}]}]}))
    .unwrap();
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(meta_secret.as_bytes()).unwrap();
    mac.update(&body);
    let good = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    for sig in ["sha256=00", good.as_str()] {
        client
            .post(format!("{base}/webhooks/meta"))
            .header("x-hub-signature-256", sig)
            .body(body.clone())
            .send()
            .await
            .unwrap();
    }
    let r = client
        .post(format!("{base}/v23.0/4000002/messages"))
        .bearer_auth(&token)
        .json(&json!({"messaging_product": "whatsapp", "to": "15551230001", "type": "text", "text": {"body": "x"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    client
        .get(format!("{base}/v23.0/4000002?access_token={token}"))
        .send()
        .await
        .unwrap();
    let rotated = client
        .put(format!("{base}/admin/v1/tenants/{}/upstream", t["business_id"].as_str().unwrap()))
        .bearer_auth(ADMIN)
        .json(&json!({"access_token": meta_token, "app_secret": meta_secret, "webhook_verify_token": vt}))
        .send()
        .await
        .unwrap();
    assert!(rotated.status().is_success());
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
    let mut stored = Vec::new();
    for f in ["g.db", "g.db-wal"] {
        if let Ok(b) = std::fs::read(dir.path().join(f)) {
            stored.extend(b);
        }
    }
    assert!(!stored.is_empty());
    let stored = String::from_utf8_lossy(&stored);
    for (what, s) in [
        ("Meta access token", meta_token),
        ("Meta app secret", meta_secret),
        ("verify token", vt),
        ("secrets key", crate::gateway::KEY),
        ("tenant token", token.as_str()),
    ] {
        assert!(!out.contains(s), "the {what} appears in the output:\n{out}");
        if what != "tenant token" {
            assert!(!stored.contains(s), "the {what} is stored in clear");
        }
    }
}
