//! Shared helpers for the Rust conformance tests: environment, greenlight's public setup
//! endpoints (admin tenant, sandbox inbound) over plain reqwest, a tiny PNG, Meta-format
//! webhook bodies. Every Cloud API call in the tests goes through `wacloudapi`.
#![allow(dead_code)]

use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::fmt::Write as _;

pub const CUSTOMER: &str = "15551230001"; // writes first: window open
pub const STRANGER: &str = "15559990000"; // never wrote: accepted, fails later (131047)
pub const CUSTOMER_BSUID: &str = "US.13491208655302741918";
pub const IMAGE_LINK: &str = "https://example.com/conformance/pixel.png";
pub const NON_ASCII_TEXT: &str = "Café é 中文 😀";

pub struct Env {
    pub base_url: String,
    pub admin_token: String,
}

/// `None` (and a note on stderr) when GREENLIGHT_URL / GREENLIGHT_ADMIN_TOKEN are unset:
/// the calling test then returns early.
pub fn env(test: &str) -> Option<Env> {
    let base = std::env::var("GREENLIGHT_URL").unwrap_or_default();
    let admin = std::env::var("GREENLIGHT_ADMIN_TOKEN").unwrap_or_default();
    if base.is_empty() || admin.is_empty() {
        eprintln!("SKIP {test}: GREENLIGHT_URL and GREENLIGHT_ADMIN_TOKEN are not set");
        return None;
    }
    Some(Env { base_url: base.trim_end_matches('/').to_string(), admin_token: admin })
}

pub fn skip_templates(test: &str) -> bool {
    let skip = std::env::var("CONFORMANCE_SKIP").unwrap_or_default();
    let yes = skip.split(',').any(|s| s.trim() == "templates");
    if yes {
        eprintln!("SKIP {test}: CONFORMANCE_SKIP contains templates");
    }
    yes
}

/// Graph version in the path: CONFORMANCE_GRAPH_VERSION, else wacloudapi's own default.
pub fn graph_version() -> String {
    std::env::var("CONFORMANCE_GRAPH_VERSION")
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| wacloudapi::types::DEFAULT_API_VERSION.to_string())
}

#[derive(Debug, Clone)]
pub struct Tenant {
    pub business_id: String,
    pub waba_id: String,
    pub app_id: String,
    pub app_secret: String,
    pub access_token: String,
    pub phone_number_id: String,
}

async fn call(env: &Env, method: reqwest::Method, path: &str, token: &str, body: Value) -> (u16, String) {
    let res = reqwest::Client::new()
        .request(method, format!("{}{}", env.base_url, path))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    let status = res.status().as_u16();
    (status, res.text().await.unwrap_or_default())
}

pub async fn create_tenant(env: &Env, lib: &str) -> Tenant {
    let (status, text) = call(
        env,
        reqwest::Method::POST,
        "/admin/v1/tenants",
        &env.admin_token,
        json!({ "business_name": format!("Conformance {lib}") }),
    )
    .await;
    assert_eq!(status, 201, "create tenant: HTTP {status}: {text}");
    let v: Value = serde_json::from_str(&text).expect("tenant JSON");
    let s = |k: &str| {
        v[k].as_str().filter(|s| !s.is_empty()).unwrap_or_else(|| panic!("tenant: missing {k}: {text}")).to_string()
    };
    Tenant {
        business_id: s("business_id"),
        waba_id: s("waba_id"),
        app_id: s("app_id"),
        app_secret: s("app_secret"),
        access_token: s("access_token"),
        phone_number_id: v["phone_numbers"][0]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("tenant: no phone_numbers[0].id: {text}"))
            .to_string(),
    }
}

/// The simulated customer writes; returns the inbound wamid.
pub async fn customer_writes(env: &Env, t: &Tenant, from: &str) -> String {
    let (status, text) = call(
        env,
        reqwest::Method::POST,
        &format!("/sandbox/v1/{}/inbound", t.phone_number_id),
        &t.access_token,
        json!({ "from": from, "profile_name": "Ann", "type": "text", "text": { "body": "hi" } }),
    )
    .await;
    assert!((200..300).contains(&status), "sandbox inbound: HTTP {status}: {text}");
    let v: Value = serde_json::from_str(&text).expect("inbound JSON");
    v["id"].as_str().unwrap_or_else(|| panic!("inbound: no id: {text}")).to_string()
}

pub fn client(env: &Env, t: &Tenant) -> wacloudapi::Client {
    wacloudapi::Client::with_config(t.access_token.clone(), t.phone_number_id.clone(), graph_version(), env.base_url.clone())
}

pub fn assert_wamid(id: &str, what: &str) {
    let ok = id.starts_with("wamid.")
        && id.len() > 6
        && id[6..].chars().all(|c| c.is_ascii_alphanumeric() || "+/=_-".contains(c));
    assert!(ok, "{what}: not a wamid: {id}");
}

pub fn sha256_matches(got: &str, data: &[u8]) -> bool {
    let d = Sha256::digest(data);
    got == hex::encode(d) || got == base64_std(&d)
}

fn base64_std(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in data.chunks(3) {
        let b = [c[0], *c.get(1).unwrap_or(&0), *c.get(2).unwrap_or(&0)];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

// -- a valid 2x2 RGB PNG, built here (zlib stream with one stored block) -----------------
fn crc32(data: &[u8]) -> u32 {
    let mut c = 0xffff_ffffu32;
    for &b in data {
        c ^= b as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 { 0xedb8_8320 ^ (c >> 1) } else { c >> 1 };
        }
    }
    !c
}

fn png_chunk(out: &mut Vec<u8>, typ: &[u8], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let mut td = typ.to_vec();
    td.extend_from_slice(data);
    out.extend_from_slice(&td);
    out.extend_from_slice(&crc32(&td).to_be_bytes());
}

pub fn make_png() -> Vec<u8> {
    let rows: [u8; 14] = [0, 255, 0, 0, 0, 255, 0, 0, 0, 0, 255, 255, 255, 255];
    let (mut a, mut b) = (1u32, 0u32);
    for &x in &rows {
        a = (a + x as u32) % 65521;
        b = (b + a) % 65521;
    }
    let mut z = vec![0x78, 0x01, 0x01];
    z.extend_from_slice(&(rows.len() as u16).to_le_bytes());
    z.extend_from_slice(&(!(rows.len() as u16)).to_le_bytes());
    z.extend_from_slice(&rows);
    z.extend_from_slice(&((b << 16) | a).to_be_bytes());
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&2u32.to_be_bytes());
    ihdr.extend_from_slice(&2u32.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png_chunk(&mut png, b"IHDR", &ihdr);
    png_chunk(&mut png, b"IDAT", &z);
    png_chunk(&mut png, b"IEND", &[]);
    png
}

// -- Meta's webhook byte format ---------------------------------------------------------
/// Compact JSON, every non-ASCII UTF-16 unit as a lowercase \uXXXX escape (surrogate
/// pairs beyond the BMP); optionally "/" as "\/".
pub fn meta_json(v: &Value, escape_slashes: bool) -> Vec<u8> {
    let s = serde_json::to_string(v).unwrap();
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        if (ch as u32) < 0x7f {
            if escape_slashes && ch == '/' {
                out.push_str("\\/");
            } else {
                out.push(ch);
            }
        } else {
            let mut buf = [0u16; 2];
            for u in ch.encode_utf16(&mut buf) {
                write!(out, "\\u{:04x}", u).unwrap();
            }
        }
    }
    out.into_bytes()
}

pub fn signature(raw: &[u8], app_secret: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(app_secret.as_bytes()).unwrap();
    mac.update(raw);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Runs wacloudapi's own verifier (`wacloudapi::webhooks::verify_signature`).
pub fn verify_with_wacloudapi(raw: &[u8], app_secret: &str, header: &str) -> bool {
    wacloudapi::webhooks::verify_signature(raw, header, app_secret)
}

pub fn sample_inbound_webhook() -> Value {
    json!({
      "object": "whatsapp_business_account",
      "entry": [{
        "id": "102290129340398",
        "changes": [{
          "value": {
            "messaging_product": "whatsapp",
            "metadata": { "display_phone_number": "15550783881", "phone_number_id": "106540352242922" },
            "contacts": [{ "profile": { "name": "Zoë 李 😀" }, "wa_id": CUSTOMER, "user_id": CUSTOMER_BSUID }],
            "messages": [{
              "from": CUSTOMER,
              "from_user_id": CUSTOMER_BSUID,
              "id": "wamid.HBgLMTU1NTEyMzAwMDEVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=",
              "timestamp": "1749416383",
              "type": "text",
              "text": { "body": format!("{NON_ASCII_TEXT} https://example.com/a/b") }
            }]
          },
          "field": "messages"
        }]
      }]
    })
}
