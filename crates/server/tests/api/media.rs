//! Media: upload, metadata, download with the token, send by id, delete, Meta's limits.

use crate::common::*;
use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// A valid 1×1 PNG.
pub const PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4,
    0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0xf8, 0xcf, 0xc0, 0xf0,
    0x1f, 0x00, 0x05, 0x00, 0x01, 0xff, 0x89, 0x99, 0x3d, 0x1d, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45,
    0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
];

async fn upload(app: &TestApp, t: &Tenant, bytes: Vec<u8>, mime: &str) -> (StatusCode, Value) {
    let form = reqwest::multipart::Form::new()
        .text("messaging_product", "whatsapp")
        .text("type", mime.to_string())
        .part(
            "file",
            reqwest::multipart::Part::bytes(bytes)
                .file_name("f.bin")
                .mime_str(mime)
                .unwrap(),
        );
    let r = app
        .client
        .post(format!("{}/v23.0/{}/media", app.base, t.phone_id))
        .bearer_auth(&t.token)
        .multipart(form)
        .send()
        .await
        .unwrap();
    (r.status(), r.json().await.unwrap())
}

#[tokio::test]
async fn upload_get_download_send_delete() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let (s, b) = upload(&app, &t, PNG.to_vec(), "image/png").await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let id = b["id"].as_str().unwrap().to_string();
    assert!(id.chars().all(|c| c.is_ascii_digit()));

    let info = app.get(&format!("/v23.0/{id}"), &t.token).await;
    assert_eq!(info.status, StatusCode::OK, "{}", info.body);
    assert_eq!(info.body["mime_type"], "image/png");
    assert_eq!(
        info.body["file_size"],
        PNG.len(),
        "a JSON number (typed clients need it)"
    );
    assert_eq!(info.body["sha256"], hex::encode(Sha256::digest(PNG)));
    assert_eq!(info.body["messaging_product"], "whatsapp");
    let url = info.body["url"].as_str().unwrap().to_string();

    let r = app
        .client
        .get(&url)
        .bearer_auth(&t.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "image/png");
    assert_eq!(r.bytes().await.unwrap().as_ref(), PNG);
    // the url carries its own short-lived capability, like Meta's lookaside urls: clients
    // that fetch it without (or with an empty) token still get the bytes…
    let r = app.client.get(&url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = app
        .client
        .get(&url)
        .header("authorization", "Bearer ")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // …but not with a forged hash, nor without one
    // one hex digit of the signature changed (same length, so the comparison itself is tested)
    let at = url.find("hash=").unwrap() + 5;
    let flipped = if &url[at..at + 1] == "0" { "1" } else { "0" };
    let forged = format!("{}{}{}", &url[..at], flipped, &url[at + 1..]);
    assert_eq!(
        app.client.get(&forged).send().await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    let bare = url.split('?').next().unwrap().to_string();
    assert_eq!(
        app.client.get(&bare).send().await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    // another tenant's token does not reach it
    let other = app.tenant().await;
    let r = app
        .client
        .get(&url)
        .bearer_auth(&other.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = app.get(&format!("/v23.0/{id}"), &other.token).await;
    assert_eq!(r.code(), 100);

    // send it by id
    app.inbound(&t, "15551230001", "hi").await;
    let r = app.send(&t, json!({"messaging_product": "whatsapp", "to": "15551230001", "type": "image", "image": {"id": id, "caption": "here"}})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    // the url expires after 5 minutes; the token still works
    app.advance(301).await;
    assert_eq!(
        app.client.get(&url).send().await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.client
            .get(&url)
            .bearer_auth(&t.token)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    let r = app
        .req(
            reqwest::Method::DELETE,
            &format!("/v23.0/{id}"),
            Some(&t.token),
            None,
        )
        .await;
    assert_eq!(r.body, json!({"success": true}));
    let r = app.get(&format!("/v23.0/{id}"), &t.token).await;
    assert_eq!(
        (r.code(), r.body["error"]["error_subcode"].as_i64()),
        (100, Some(33))
    );
    let r = app
        .client
        .get(&url)
        .bearer_auth(&t.token)
        .send()
        .await
        .unwrap();
    assert_ne!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn unsupported_types_and_oversized_files_are_refused() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let (s, b) = upload(&app, &t, b"GIF89a".to_vec(), "image/gif").await;
    assert_eq!(
        (s, b["error"]["code"].as_i64()),
        (StatusCode::BAD_REQUEST, Some(100))
    );
    assert!(b["error"]["error_data"]["details"]
        .as_str()
        .unwrap()
        .contains("image/png"));
    // images: 5 MB
    let (s, b) = upload(&app, &t, vec![0u8; 5 * 1024 * 1024 + 1], "image/jpeg").await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    let (s, _) = upload(&app, &t, vec![0u8; 5 * 1024 * 1024], "image/jpeg").await;
    assert_eq!(s, StatusCode::OK);
    // stickers: 500 KB
    let (s, _) = upload(&app, &t, vec![0u8; 500 * 1024 + 1], "image/webp").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    // no file part
    let form = reqwest::multipart::Form::new()
        .text("messaging_product", "whatsapp")
        .text("type", "image/png");
    let r = app
        .client
        .post(format!("{}/v23.0/{}/media", app.base, t.phone_id))
        .bearer_auth(&t.token)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["error"]["code"], 131008);
    // not multipart
    let r = app
        .post(
            &format!("/v23.0/{}/media", t.phone_id),
            &t.token,
            json!({"file": "x"}),
        )
        .await;
    assert_eq!(r.code(), 100);
}
