//! Gateway mode: a business talks to a gateway greenlight whose upstream is a second greenlight
//! in sandbox mode (standing in for Meta). The sandbox's webhooks go to the gateway's
//! `/webhooks/meta`; the business's callback is a local receiver.

use crate::common::*;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::{get, post};
use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::Sha256;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
const META_VT: &str = "meta-verify-token-1";
const CUSTOMER: &str = "15551230001";
/// A recipient the stand-in upstream refuses (as Meta refuses numbers off a test allow-list).
const REJECTED_BY_META: &str = "15550000999";

fn sign(secret: &str, body: &[u8]) -> String {
    let mut m = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    m.update(body);
    format!("sha256={}", hex::encode(m.finalize().into_bytes()))
}

/// Received POSTs: (signature header, body).
type Got = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// The business's own webhook receiver: answers the handshake, keeps every POST.
#[derive(Clone, Default)]
pub struct Receiver {
    pub got: Got,
    pub url: String,
}

impl Receiver {
    pub async fn start() -> Receiver {
        let got: Got = Arc::default();
        async fn hs(uri: axum::http::Uri) -> String {
            let q = uri.query().unwrap_or("");
            q.split('&')
                .find_map(|kv| kv.strip_prefix("hub.challenge="))
                .unwrap_or("")
                .to_string()
        }
        async fn hook(State(got): State<Got>, headers: HeaderMap, body: Bytes) -> &'static str {
            let sig = headers
                .get("x-hub-signature-256")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            got.lock().unwrap().push((sig, body.to_vec()));
            "ok"
        }
        let app = axum::Router::new()
            .route("/hook", get(hs).post(hook))
            .with_state(got.clone());
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", l.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
        Receiver { got, url }
    }

    /// The relayed events (parsed), after checking each signature with `secret`.
    pub fn events(&self, secret: &str) -> Vec<Value> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .map(|(sig, body)| {
                assert_eq!(
                    sig,
                    &sign(secret, body),
                    "relays are signed with the business's secret"
                );
                serde_json::from_slice(body).unwrap()
            })
            .collect()
    }

    /// Waits (≤ 5 s) for a relayed change satisfying `pred`.
    pub async fn wait_for(&self, secret: &str, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        for _ in 0..100 {
            for e in self.events(secret) {
                let v = &e["entry"][0]["changes"][0];
                if pred(v) {
                    return e;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "the business never received {what}: {:?}",
            self.events(secret)
        );
    }
}

pub async fn spawn_gateway(
    upstream: &str,
    tweak: impl FnOnce(&mut greenlight::config::Layer),
) -> TestApp {
    let upstream = upstream.to_string();
    spawn_with(move |l| {
        l.mode = Some("gateway".into());
        l.upstream_url = Some(upstream);
        l.secrets_key = Some(KEY.into());
        l.upstream_timeout_ms = Some(1500);
        l.webhooks = Some(greenlight::webhooks::config::WebhookLayer {
            allow_private: Some(true),
            ..Default::default()
        });
        tweak(l);
    })
    .await
}

/// Registers a gateway tenant for Meta's ids and credentials.
pub async fn gateway_tenant(
    gw: &TestApp,
    waba_id: &str,
    phone_id: &str,
    meta_token: &str,
    meta_secret: &str,
    callback: Option<&str>,
) -> Tenant {
    let mut body = json!({
        "business_name": "Acme Ltd",
        "upstream": {
            "access_token": meta_token, "app_secret": meta_secret, "waba_id": waba_id,
            "phone_numbers": [{ "id": phone_id, "display_phone_number": "+1 555 010 0001", "verified_name": "Acme" }],
            "webhook_verify_token": META_VT,
        },
    });
    if let Some(cb) = callback {
        body["webhook"] = json!({ "callback_url": cb, "verify_token": "business-vt" });
    }
    let t = gw.tenant_with(body).await;
    assert_eq!(t.waba_id, waba_id, "the WABA keeps Meta's id");
    assert_eq!(t.phone_id, phone_id, "the number keeps Meta's id");
    let text = t.raw.to_string();
    assert!(
        !text.contains(meta_token) && !text.contains(meta_secret),
        "never echoed"
    );
    t
}

struct Pair {
    meta: TestApp,
    gw: TestApp,
    /// The business as Meta knows it (the sandbox tenant).
    up: Tenant,
    /// The same business at the gateway.
    biz: Tenant,
    rx: Receiver,
}

async fn pair_with(tweak: impl FnOnce(&mut greenlight::config::Layer)) -> Pair {
    let meta = spawn_app().await;
    let up = meta.tenant().await;
    // Meta does not enforce opt-ins; greenlight does, at the gateway.
    let r = meta
        .post(
            "/greenlight/v1/settings",
            &up.token,
            json!({ "compliance": { "opt_in_policy": "off" } }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let rx = Receiver::start().await;
    let gw = spawn_gateway(&meta.base, tweak).await;
    let biz = gateway_tenant(
        &gw,
        &up.waba_id,
        &up.phone_id,
        &up.token,
        &up.app_secret,
        Some(&rx.url),
    )
    .await;
    // Meta's app subscribes the gateway (handshake with the verify token the tenant registered).
    let r = meta
        .req(
            reqwest::Method::POST,
            &format!("/v23.0/{}/subscriptions", up.app_id),
            Some(&format!("{}|{}", up.app_id, up.app_secret)),
            Some(json!({
                "object": "whatsapp_business_account",
                "callback_url": format!("{}/webhooks/meta", gw.base),
                "verify_token": META_VT,
                "fields": ["messages", "user_preferences", "message_template_status_update", "account_update", "phone_number_quality_update"],
            })),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    Pair {
        meta,
        gw,
        up,
        biz,
        rx,
    }
}

async fn pair() -> Pair {
    pair_with(|_| {}).await
}

async fn thread(p: &Pair, wa_id: &str) -> Vec<Value> {
    let r = p
        .meta
        .get(
            &format!("/sandbox/v1/{}/users/{wa_id}/messages", p.up.phone_id),
            &p.up.token,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body["data"]
        .as_array()
        .or(r.body.as_array())
        .cloned()
        .unwrap_or_default()
}

async fn wait_until<F, Fut>(what: &str, f: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..100 {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test]
async fn gateway_learns_the_window_forwards_allowed_sends_and_relays_events() {
    let p = pair().await;
    // No window: refused at the gateway, Meta never sees it.
    let r = p.gw.send_text(&p.biz, CUSTOMER, "hello?").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert_eq!(r.code(), 131047);
    assert!(
        thread(&p, CUSTOMER).await.is_empty(),
        "nothing reached the upstream"
    );

    // The customer writes (at Meta): the webhook reaches the gateway, which learns the window
    // and relays the event to the business, re-signed with the business's secret.
    let inbound = p.meta.inbound(&p.up, CUSTOMER, "hi there").await;
    let e =
        p.rx.wait_for(&p.biz.app_secret, "the inbound message", |c| {
            c["value"]["messages"][0]["id"] == inbound.as_str()
        })
        .await;
    assert_eq!(e["entry"][0]["id"], p.biz.waba_id.as_str());

    let r =
        p.gw.send_text(&p.biz, CUSTOMER, "Hello from the gateway")
            .await;
    let wamid = wamid_of(&r);
    let th = thread(&p, CUSTOMER).await;
    assert!(
        th.iter().any(|m| m["id"] == wamid.as_str()),
        "reached the upstream: {th:?}"
    );
    // recorded at the gateway with its verdicts; statuses learned from Meta's webhooks
    let m = p.gw.message(&p.biz, &wamid).await;
    assert!(!m["verdicts"].as_array().unwrap().is_empty(), "{m}");
    let m = p.gw.wait_status(&p.biz, &wamid, "delivered").await;
    let seen: Vec<&str> = m["statuses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["status"].as_str().unwrap())
        .collect();
    assert!(seen.contains(&"sent") && seen.contains(&"delivered"), "{m}");
    p.rx.wait_for(&p.biz.app_secret, "the delivered status", |c| {
        c["value"]["statuses"][0]["id"] == wamid.as_str()
            && c["value"]["statuses"][0]["status"] == "delivered"
    })
    .await;
    // an unknown template is refused at the gateway too
    let r =
        p.gw.send(
            &p.biz,
            crate::compliance_common::template_body(CUSTOMER, "no_such_template"),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    assert_eq!(
        thread(&p, CUSTOMER).await.len(),
        2,
        "inbound + the one allowed send"
    );
    // a gateway tenant needs Meta's credentials
    let r =
        p.gw.post(
            "/admin/v1/tenants",
            ADMIN,
            json!({ "business_name": "No upstream" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert!(r.details().contains("upstream"), "{}", r.body);
    // sandbox endpoints do not exist at a gateway
    let r =
        p.gw.post(
            &format!("/sandbox/v1/{}/inbound", p.biz.phone_id),
            &p.biz.token,
            json!({}),
        )
        .await;
    assert_eq!(r.code(), 1900600);
}

#[tokio::test]
async fn stop_at_meta_revokes_consent_at_the_gateway() {
    let p = pair().await;
    let r =
        p.gw.post(
            &format!("/greenlight/v1/{}/opt_ins", p.biz.waba_id),
            &p.biz.token,
            json!({ "wa_id": CUSTOMER, "scope": "all", "source": "web_form", "proof": "form 7" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    p.meta.inbound(&p.up, CUSTOMER, "STOP").await;
    let gw = &p.gw;
    let (waba, token) = (p.biz.waba_id.clone(), p.biz.token.clone());
    wait_until("consent revoked at the gateway", || {
        let (waba, token) = (waba.clone(), token.clone());
        async move {
            let r = gw
                .get(
                    &format!("/greenlight/v1/{waba}/opt_ins?wa_id={CUSTOMER}"),
                    &token,
                )
                .await;
            r.body["data"].as_array().is_some_and(|a| a.is_empty())
        }
    })
    .await;
    let a =
        p.gw.get("/greenlight/v1/audit?kind=consent", &p.biz.token)
            .await;
    assert!(a.body.to_string().contains("STOP"), "{}", a.body);
}

#[tokio::test]
async fn templates_are_linted_forwarded_and_mirrored_then_opt_in_is_enforced() {
    let p = pair().await;
    let waba = p.biz.waba_id.clone();
    // Review errors block (default): nothing reaches Meta.
    let bad = json!({ "name": "bad_one", "language": "en_US", "category": "UTILITY",
        "components": [{ "type": "BODY", "text": "{{1}} is your code {{2}}" }] });
    let r =
        p.gw.post(
            &format!("/v23.0/{waba}/message_templates"),
            &p.biz.token,
            bad,
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert_eq!(r.code(), 1900500);
    let at_meta = p
        .meta
        .get(&format!("/v23.0/{waba}/message_templates"), &p.up.token)
        .await;
    assert_eq!(
        at_meta.body["data"].as_array().unwrap().len(),
        0,
        "{}",
        at_meta.body
    );

    let good = json!({ "name": "order_update", "language": "en_US", "category": "UTILITY",
        "components": [{ "type": "BODY", "text": "Your order {{1}} will arrive on {{2}}.",
                         "example": { "body_text": [["A-1", "Friday"]] } }] });
    let r =
        p.gw.post(
            &format!("/v23.0/{waba}/message_templates"),
            &p.biz.token,
            good,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let id = r.body["id"].as_str().unwrap().to_string();
    assert_eq!(r.body["status"], "PENDING");
    // Meta decides; its status webhook updates the gateway's mirror.
    p.meta.advance(61).await;
    p.rx.wait_for(&p.biz.app_secret, "the template decision", |c| {
        c["field"] == "message_template_status_update" && c["value"]["event"] == "APPROVED"
    })
    .await;
    // Opt-in is greenlight's: without one, refused at the gateway.
    let body = crate::compliance_common::template_body(CUSTOMER, "order_update");
    let r = p.gw.send(&p.biz, body.clone()).await;
    assert_eq!(r.code(), 1900100, "{}", r.body);
    assert!(thread(&p, CUSTOMER).await.is_empty());
    let r = p
        .gw
        .post(
            &format!("/greenlight/v1/{waba}/opt_ins"),
            &p.biz.token,
            json!({ "wa_id": CUSTOMER, "scope": "utility", "source": "web_form", "proof": "form 8" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let wamid = wamid_of(&p.gw.send(&p.biz, body).await);
    assert!(thread(&p, CUSTOMER)
        .await
        .iter()
        .any(|m| m["id"] == wamid.as_str()));
    // the template as Meta shows it, through the gateway
    let g =
        p.gw.get(&format!("/v23.0/{id}?fields=status"), &p.biz.token)
            .await;
    assert_eq!(g.body["status"], "APPROVED", "{}", g.body);

    // an edit is linted as the edited template, then forwarded
    let r =
        p.gw.post(
            &format!("/v23.0/{id}"),
            &p.biz.token,
            json!({ "components": [{ "type": "BODY", "text": "{{1}} arrives {{2}}" }] }),
        )
        .await;
    assert_eq!(r.code(), 1900500, "{}", r.body);
    let r =
        p.gw.post(
            &format!("/v23.0/{id}"),
            &p.biz.token,
            json!({ "components": [{ "type": "BODY", "text": "Your order {{1}} arrives on {{2}}.",
                                 "example": { "body_text": [["A-1", "Friday"]] } }] }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["success"], true, "{}", r.body);

    // a template made at Meta directly is learned from a list call through the gateway
    let direct = json!({ "name": "made_at_meta", "language": "en_US", "category": "UTILITY",
        "components": [{ "type": "BODY", "text": "Your parcel {{1}} ships on {{2}}.",
                         "example": { "body_text": [["A-1", "Friday"]] } }] });
    let r = p
        .meta
        .post(
            &format!("/v23.0/{waba}/message_templates"),
            &p.up.token,
            direct,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let direct_id = r.body["id"].as_str().unwrap().to_string();
    p.meta.advance(61).await;
    p.rx.wait_for(&p.biz.app_secret, "the direct template's decision", |c| {
        c["value"]["message_template_id"]
            .to_string()
            .contains(&direct_id)
            && c["value"]["event"] == "APPROVED"
    })
    .await;
    let body = crate::compliance_common::template_body(CUSTOMER, "made_at_meta");
    let r = p.gw.send(&p.biz, body.clone()).await;
    assert_eq!(
        r.code(),
        132001,
        "unknown to the gateway until listed: {}",
        r.body
    );
    let l =
        p.gw.get(
            &format!(
                "/v23.0/{waba}/message_templates?fields=name,status,language,category,components"
            ),
            &p.biz.token,
        )
        .await;
    assert_eq!(l.status, StatusCode::OK, "{}", l.body);
    wamid_of(&p.gw.send(&p.biz, body).await);
}

#[tokio::test]
async fn template_lint_warn_mode_forwards_with_the_findings() {
    let p = pair_with(|l| l.template_lint = Some("warn".into())).await;
    let bad = json!({ "name": "bad_one", "language": "en_US", "category": "UTILITY",
        "components": [{ "type": "BODY", "text": "{{1}} is your code {{2}}" }] });
    let r =
        p.gw.post(
            &format!("/v23.0/{}/message_templates", p.biz.waba_id),
            &p.biz.token,
            bad,
        )
        .await;
    let h = r
        .headers
        .get("greenlight-template-lint")
        .expect("findings header");
    assert!(!h.to_str().unwrap().is_empty());
    // Meta's own answer came back (it refuses what greenlight's review flags as an error)
    assert_ne!(r.code(), 1900500, "{}", r.body);
}

#[tokio::test]
async fn bad_signatures_are_refused_and_nothing_is_learned() {
    let p = pair().await;
    let payload = json!({ "object": "whatsapp_business_account", "entry": [{ "id": p.biz.waba_id, "changes": [{ "field": "messages", "value": {
        "messaging_product": "whatsapp",
        "metadata": { "display_phone_number": "15550100001", "phone_number_id": p.biz.phone_id },
        "contacts": [{ "wa_id": CUSTOMER, "profile": { "name": "Eve" } }],
        "messages": [{ "from": CUSTOMER, "id": "wamid.forged1", "type": "text", "text": { "body": "hi" } }] } }] }] });
    let body = serde_json::to_vec(&payload).unwrap();
    let url = format!("{}/webhooks/meta", p.gw.base);
    for sig in [
        None,
        Some(sign("not-the-secret", &body)),
        Some(sign(&p.biz.app_secret, &body)),
    ] {
        let mut rb =
            p.gw.client
                .post(&url)
                .header("content-type", "application/json")
                .body(body.clone());
        if let Some(s) = &sig {
            rb = rb.header("x-hub-signature-256", s);
        }
        let r = rb.send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "signature {sig:?}");
    }
    let r = p.gw.send_text(&p.biz, CUSTOMER, "are you there?").await;
    assert_eq!(r.code(), 131047, "no window was learned: {}", r.body);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(p.rx.events(&p.biz.app_secret).is_empty(), "nothing relayed");
    // signed with Meta's app secret: learned and relayed
    let r =
        p.gw.client
            .post(&url)
            .header("x-hub-signature-256", sign(&p.up.app_secret, &body))
            .body(body.clone())
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = p.gw.send_text(&p.biz, CUSTOMER, "now in the window").await;
    wamid_of(&r);
    // a WABA nobody registered: 403 (Meta retries), nothing learned
    let stranger = serde_json::to_vec(&json!({ "object": "whatsapp_business_account", "entry": [{ "id": "999999999", "changes": [] }] })).unwrap();
    let r =
        p.gw.client
            .post(&url)
            .header("x-hub-signature-256", sign(&p.up.app_secret, &stranger))
            .body(stranger)
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // the handshake: the registered verify token only
    let ok =
        p.gw.client
            .get(format!(
                "{url}?hub.mode=subscribe&hub.verify_token={META_VT}&hub.challenge=4242"
            ))
            .send()
            .await
            .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    assert_eq!(ok.text().await.unwrap(), "4242");
    let bad =
        p.gw.client
            .get(format!(
                "{url}?hub.mode=subscribe&hub.verify_token=nope&hub.challenge=4242"
            ))
            .send()
            .await
            .unwrap();
    assert_eq!(bad.status(), StatusCode::FORBIDDEN);
}

/// A stand-in upstream that can be slow, counts sends and answers Meta's success.
#[derive(Clone, Default)]
struct Fake {
    slow: Arc<AtomicBool>,
    /// Answer after this many milliseconds (within the timeout).
    delay_ms: Arc<std::sync::atomic::AtomicU64>,
    /// Answer 502 with a plain-text body (a proxy in front of Meta failing).
    fail: Arc<AtomicBool>,
    sends: Arc<AtomicUsize>,
    completed: Arc<AtomicUsize>,
}

async fn fake_upstream(l: tokio::net::TcpListener, f: Fake) {
    async fn messages(State(f): State<Fake>, body: Bytes) -> axum::response::Response {
        use axum::response::IntoResponse;
        f.sends.fetch_add(1, Ordering::SeqCst);
        let v: Value = serde_json::from_slice(&body).unwrap_or_default();
        if v["to"] == REJECTED_BY_META {
            let e = json!({ "error": { "message": "(#131030) Recipient phone number not in allowed list", "type": "OAuthException", "code": 131030, "fbtrace_id": "Meta123" } });
            return (axum::http::StatusCode::BAD_REQUEST, axum::Json(e)).into_response();
        }
        if f.fail.load(Ordering::SeqCst) {
            return (axum::http::StatusCode::BAD_GATEWAY, "upstream proxy error").into_response();
        }
        if f.slow.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_secs(4)).await;
        }
        tokio::time::sleep(Duration::from_millis(f.delay_ms.load(Ordering::SeqCst))).await;
        let n = f.completed.fetch_add(1, Ordering::SeqCst);
        axum::Json(
            json!({ "messaging_product": "whatsapp", "contacts": [{ "input": CUSTOMER, "wa_id": CUSTOMER }],
                           "messages": [{ "id": format!("wamid.FAKE{n}") }] }),
        )
        .into_response()
    }
    async fn templates() -> axum::Json<Value> {
        axum::Json(json!({ "id": "777001", "status": "PENDING", "category": "UTILITY" }))
    }
    let app = axum::Router::new()
        .route("/{v}/{id}/messages", post(messages))
        .route("/{v}/{id}/message_templates", post(templates))
        .with_state(f);
    axum::serve(l, app).await.unwrap();
}

async fn open_window(gw: &TestApp, t: &Tenant, secret: &str) {
    let value = json!({
        "messaging_product": "whatsapp",
        "metadata": { "display_phone_number": "15550100001", "phone_number_id": t.phone_id },
        "messages": [{ "from": CUSTOMER, "id": "wamid.in1", "type": "text", "text": { "body": "hi" } }] });
    meta_event(gw, t, secret, "messages", value).await;
}

/// Posts one change to the gateway's `/webhooks/meta`, signed as Meta would.
async fn meta_event(gw: &TestApp, t: &Tenant, secret: &str, field: &str, value: Value) {
    let payload = json!({ "object": "whatsapp_business_account", "entry": [{ "id": t.waba_id, "time": 1750000000, "changes": [{ "field": field, "value": value }] }] });
    let body = serde_json::to_vec(&payload).unwrap();
    let r = gw
        .client
        .post(format!("{}/webhooks/meta", gw.base))
        .header("x-hub-signature-256", sign(secret, &body))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

async fn send_keyed(gw: &TestApp, t: &Tenant, key: &str) -> Resp {
    let r = gw
        .client
        .post(format!("{}/v23.0/{}/messages", gw.base, t.phone_id))
        .bearer_auth(&t.token)
        .header("idempotency-key", key)
        .json(&json!({ "messaging_product": "whatsapp", "to": CUSTOMER, "type": "text", "text": { "body": "once" } }))
        .send()
        .await
        .unwrap();
    let status = r.status();
    let headers = r.headers().clone();
    let body = r.json().await.unwrap_or(Value::Null);
    Resp {
        status,
        body,
        headers,
    }
}

fn assert_transient(r: &Resp) {
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.body);
    assert_eq!(r.code(), 2);
    assert_eq!(r.body["error"]["is_transient"], true, "{}", r.body);
}

#[tokio::test]
async fn upstream_down_then_back_sends_exactly_once() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    drop(l); // nothing listens there: the upstream is down
    let gw = spawn_gateway(&format!("http://{addr}"), |_| {}).await;
    let t = gateway_tenant(
        &gw,
        "1000001",
        "1000002",
        "EAAG-fake-token",
        "fake-app-secret",
        None,
    )
    .await;
    open_window(&gw, &t, "fake-app-secret").await;
    let r = send_keyed(&gw, &t, "k-1").await;
    assert_transient(&r);
    assert!(
        r.details().contains("could not be reached"),
        "{}",
        r.details()
    );
    let audit = gw.get("/greenlight/v1/audit", &t.token).await;
    assert!(
        !audit.body.to_string().contains("wamid.FAKE"),
        "nothing recorded as sent"
    );

    // the upstream comes back on the same address
    let f = Fake::default();
    let l = tokio::net::TcpListener::bind(addr).await.unwrap();
    tokio::spawn(fake_upstream(l, f.clone()));
    let r = send_keyed(&gw, &t, "k-1").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["messages"][0]["id"], "wamid.FAKE0");
    let again = send_keyed(&gw, &t, "k-1").await;
    assert_eq!(again.body, r.body);
    assert_eq!(again.headers.get("idempotent-replayed").unwrap(), "true");
    assert_eq!(
        f.sends.load(Ordering::SeqCst),
        1,
        "exactly one send reached the upstream"
    );
    gw.message(&t, "wamid.FAKE0").await;
}

#[tokio::test]
async fn slow_upstream_times_out_transiently_and_a_retry_sends_once() {
    let f = Fake::default();
    f.slow.store(true, Ordering::SeqCst);
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(fake_upstream(l, f.clone()));
    let gw = spawn_gateway(&base, |l| l.upstream_timeout_ms = Some(500)).await;
    let t = gateway_tenant(
        &gw,
        "2000001",
        "2000002",
        "EAAG-fake-token",
        "fake-app-secret",
        None,
    )
    .await;
    open_window(&gw, &t, "fake-app-secret").await;
    let started = std::time::Instant::now();
    let r = send_keyed(&gw, &t, "k-slow").await;
    assert_transient(&r);
    assert!(
        r.details().contains("did not answer within 500 ms"),
        "{}",
        r.details()
    );
    assert!(started.elapsed() < Duration::from_secs(3));
    // recovered
    f.slow.store(false, Ordering::SeqCst);
    let before = f.completed.load(Ordering::SeqCst);
    let r = send_keyed(&gw, &t, "k-slow").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let again = send_keyed(&gw, &t, "k-slow").await;
    assert_eq!(again.headers.get("idempotent-replayed").unwrap(), "true");
    assert_eq!(again.body, r.body);
    assert_eq!(
        f.completed.load(Ordering::SeqCst),
        before + 1,
        "the retry sent once"
    );
}

#[tokio::test]
async fn media_upload_and_download_pass_through() {
    let p = pair().await;
    // 3 MB: more than the 2 MB a buffered JSON body may have, so it must stream
    let bytes: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let form = reqwest::multipart::Form::new()
        .text("messaging_product", "whatsapp")
        .text("type", "application/pdf")
        .part(
            "file",
            reqwest::multipart::Part::bytes(bytes.clone())
                .file_name("doc.pdf")
                .mime_str("application/pdf")
                .unwrap(),
        );
    let r =
        p.gw.client
            .post(format!("{}/v23.0/{}/media", p.gw.base, p.biz.phone_id))
            .bearer_auth(&p.biz.token)
            .multipart(form)
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    // the upstream has it
    let at_meta = p.meta.get(&format!("/v23.0/{id}"), &p.up.token).await;
    assert_eq!(at_meta.body["file_size"], bytes.len());
    // through the gateway: Meta's object, its URL pointing at the gateway
    let info = p.gw.get(&format!("/v23.0/{id}"), &p.biz.token).await;
    assert_eq!(info.status, StatusCode::OK, "{}", info.body);
    let url = info.body["url"].as_str().unwrap().to_string();
    assert!(url.starts_with(&p.gw.base), "{url}");
    let got =
        p.gw.client
            .get(&url)
            .bearer_auth(&p.biz.token)
            .send()
            .await
            .unwrap();
    assert_eq!(got.status(), StatusCode::OK);
    assert_eq!(got.bytes().await.unwrap().to_vec(), bytes);
    // a customer's media (its id arrives in the inbound webhook) is the tenant's too
    let form = reqwest::multipart::Form::new()
        .text("messaging_product", "whatsapp")
        .part(
            "file",
            reqwest::multipart::Part::bytes(vec![1u8, 2, 3])
                .file_name("c.pdf")
                .mime_str("application/pdf")
                .unwrap(),
        );
    let r = p
        .meta
        .client
        .post(format!("{}/v23.0/{}/media", p.meta.base, p.up.phone_id))
        .bearer_auth(&p.up.token)
        .multipart(form)
        .send()
        .await
        .unwrap();
    let customer_media = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let denied =
        p.gw.get(&format!("/v23.0/{customer_media}"), &p.biz.token)
            .await;
    assert_eq!(denied.code(), 100, "not known yet: {}", denied.body);
    let r = p.meta.post(&format!("/sandbox/v1/{}/inbound", p.up.phone_id), &p.up.token,
        json!({ "from": CUSTOMER, "type": "document", "document": { "id": customer_media, "mime_type": "application/pdf", "filename": "c.pdf" } })).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    p.rx.wait_for(&p.biz.app_secret, "the customer's document", |c| {
        c["value"]["messages"][0]["type"] == "document"
    })
    .await;
    let info =
        p.gw.get(&format!("/v23.0/{customer_media}"), &p.biz.token)
            .await;
    assert_eq!(info.status, StatusCode::OK, "{}", info.body);
    // another tenant's token cannot reach it
    let other = gateway_tenant(
        &p.gw,
        "3000001",
        "3000002",
        "EAAG-other-token",
        "other-app-secret",
        None,
    )
    .await;
    let r = p.gw.get(&format!("/v23.0/{id}"), &other.token).await;
    assert_eq!(r.code(), 100);
    // other Graph calls on the tenant's ids are forwarded: the number as Meta shows it
    let n =
        p.gw.get(
            &format!("/v23.0/{}?fields=quality_rating", p.biz.phone_id),
            &p.biz.token,
        )
        .await;
    assert_eq!(n.status, StatusCode::OK, "{}", n.body);
    assert_eq!(n.body["id"], p.biz.phone_id.as_str());
}

#[tokio::test]
async fn upstream_5xx_is_transient_and_nothing_is_recorded() {
    let f = Fake::default();
    f.fail.store(true, Ordering::SeqCst);
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(fake_upstream(l, f.clone()));
    let gw = spawn_gateway(&base, |_| {}).await;
    let t = gateway_tenant(
        &gw,
        "5000001",
        "5000002",
        "EAAG-fake-token",
        "fake-app-secret",
        None,
    )
    .await;
    open_window(&gw, &t, "fake-app-secret").await;
    let r = send_keyed(&gw, &t, "k-5xx").await;
    assert_transient(&r);
    assert!(r.details().contains("HTTP 502"), "{}", r.details());
    f.fail.store(false, Ordering::SeqCst);
    let r = send_keyed(&gw, &t, "k-5xx").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(f.completed.load(Ordering::SeqCst), 1);

    // a business-initiated template whose forward fails takes nothing from the limit
    use crate::compliance_common::template_body;
    let r = gw
        .post(&format!("/v23.0/{}/message_templates", t.waba_id), &t.token,
            json!({ "name": "order_update", "language": "en_US", "category": "UTILITY",
                    "components": [{ "type": "BODY", "text": "Your order {{1}} will arrive on {{2}}.",
                                     "example": { "body_text": [["A-1", "Friday"]] } }] }))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    meta_event(
        &gw,
        &t,
        "fake-app-secret",
        "message_template_status_update",
        json!({ "event": "APPROVED", "message_template_id": 777001, "reason": "NONE" }),
    )
    .await;
    let r = gw.post(&format!("/greenlight/v1/{}/opt_ins", t.waba_id), &t.token,
        json!({ "wa_id": "15557770001", "scope": "utility", "source": "web_form", "proof": "form" })).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    f.fail.store(true, Ordering::SeqCst);
    let r = gw
        .send(&t, template_body("15557770001", "order_update"))
        .await;
    assert_transient(&r);
    assert_eq!(used_24h(&gw, &t).await, 0, "released");
    // and the writer's running count, which the next send reads, gave it back too
    let check = gw
        .post(
            &format!("/greenlight/v1/{}/messages/check", t.phone_id),
            &t.token,
            template_body("15557770001", "order_update"),
        )
        .await;
    assert_eq!(
        (
            &check.body["messaging_limit"]["used"],
            &check.body["messaging_limit"]["already_reached"]
        ),
        (&json!(0), &json!(false)),
        "{}",
        check.body
    );
    f.fail.store(false, Ordering::SeqCst);
    wamid_of(
        &gw.send(&t, template_body("15557770001", "order_update"))
            .await,
    );
    assert_eq!(used_24h(&gw, &t).await, 1);
}

#[tokio::test]
async fn restrictions_bans_limits_and_preferences_are_taken_from_meta() {
    let f = Fake::default();
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(fake_upstream(l, f.clone()));
    let gw = spawn_gateway(&base, |_| {}).await;
    let s = "fake-app-secret";
    let t = gateway_tenant(&gw, "6000001", "6000002", "EAAG-fake-token", s, None).await;
    open_window(&gw, &t, s).await;
    // the limit Meta reports
    meta_event(
        &gw,
        &t,
        s,
        "phone_number_quality_update",
        json!({
        "display_phone_number": "15550100001", "event": "FLAGGED", "current_limit": "TIER_10K" }),
    )
    .await;
    let lim = gw.get("/greenlight/v1/messaging_limit", &t.token).await;
    assert_eq!(lim.body["tier"], "TIER_10K", "{}", lim.body);
    assert_eq!(lim.body["quality_rating"], "RED", "{}", lim.body);
    // the customer stops marketing at Meta
    meta_event(&gw, &t, s, "user_preferences", json!({
        "messaging_product": "whatsapp",
        "metadata": { "display_phone_number": "15550100001", "phone_number_id": t.phone_id },
        "user_preferences": [{ "wa_id": CUSTOMER, "category": "marketing_messages", "value": "stop", "timestamp": 1750000000 }] })).await;
    let a = gw.get("/greenlight/v1/audit", &t.token).await;
    assert!(
        a.body.to_string().contains("stopped marketing"),
        "{}",
        a.body
    );
    // a restriction Meta imposed: every send refused at the gateway, nothing forwarded
    let until = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 86_400;
    meta_event(&gw, &t, s, "account_update", json!({
        "event": "ACCOUNT_RESTRICTION",
        "restriction_info": [{ "restriction_type": "RESTRICTED_CUSTOMER_INITIATED_MESSAGING", "expiration": until.to_string() }] })).await;
    let e = gw.get("/greenlight/v1/enforcement", &t.token).await;
    assert_eq!(
        e.body["restrictions"].as_array().unwrap().len(),
        1,
        "{}",
        e.body
    );
    let r = gw.send_text(&t, CUSTOMER, "restricted").await;
    assert_eq!(r.code(), 368, "{}", r.body);
    assert_eq!(
        f.sends.load(Ordering::SeqCst),
        0,
        "nothing reached the upstream"
    );
    // the ban Meta lifts and imposes
    meta_event(
        &gw,
        &t,
        s,
        "account_update",
        json!({ "event": "DISABLED_UPDATE", "ban_info": { "waba_ban_state": "DISABLE" } }),
    )
    .await;
    let e = gw.get("/greenlight/v1/enforcement", &t.token).await;
    assert_eq!(e.body["disabled"], true, "{}", e.body);
}

#[tokio::test]
async fn over_the_limit_and_paused_templates_never_reach_the_upstream() {
    use crate::compliance_common::{send_paced, template_body};
    let f = Fake::default();
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(fake_upstream(l, f.clone()));
    let gw = spawn_gateway(&base, |_| {}).await;
    let s = "fake-app-secret";
    let t = gateway_tenant(&gw, "7000001", "7000002", "EAAG-fake-token", s, None).await;
    let r = gw
        .post(&format!("/v23.0/{}/message_templates", t.waba_id), &t.token,
            json!({ "name": "order_update", "language": "en_US", "category": "UTILITY",
                    "components": [{ "type": "BODY", "text": "Your order {{1}} will arrive on {{2}}.",
                                     "example": { "body_text": [["A-1", "Friday"]] } }] }))
        .await;
    assert_eq!(r.body["id"], "777001", "{}", r.body);
    let status = |event: &str| {
        json!({ "event": event, "message_template_id": 777001,
        "message_template_name": "order_update", "message_template_language": "en_US", "reason": "NONE" })
    };
    // pending at Meta: refused at the gateway
    let r = gw.send(&t, template_body(CUSTOMER, "order_update")).await;
    assert_eq!(r.code(), 132001, "{}", r.body);
    meta_event(
        &gw,
        &t,
        s,
        "message_template_status_update",
        status("APPROVED"),
    )
    .await;
    let customers: Vec<String> = (0..251)
        .map(|i| format!("1555{:07}", i))
        .chain([REJECTED_BY_META.to_string()])
        .collect();
    let items: Vec<Value> = customers
        .iter()
        .map(|c| json!({"wa_id": c, "scope": "all", "source": "import", "proof": "crm"}))
        .collect();
    let r = gw
        .post(
            &format!("/greenlight/v1/{}/opt_ins/batch", t.waba_id),
            &t.token,
            json!({ "opt_ins": items }),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.body);
    // Meta refuses one: its answer unchanged, and the limit is not consumed
    let r = gw
        .send(&t, template_body(REJECTED_BY_META, "order_update"))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        r.body["error"]["fbtrace_id"], "Meta123",
        "Meta's answer, unchanged: {}",
        r.body
    );
    let lim = gw.get("/greenlight/v1/messaging_limit", &t.token).await;
    assert_eq!(lim.body["used_24h"], 0, "{}", lim.body);
    for c in &customers[..250] {
        wamid_of(&send_paced(&gw, &t, template_body(c, "order_update")).await);
    }
    let before = f.sends.load(Ordering::SeqCst);
    let r = gw
        .send(&t, template_body(&customers[250], "order_update"))
        .await;
    assert_eq!(r.code(), 1900200, "{}", r.body);
    // Meta pauses the template
    meta_event(
        &gw,
        &t,
        s,
        "message_template_status_update",
        status("PAUSED"),
    )
    .await;
    let r = gw
        .send(&t, template_body(&customers[0], "order_update"))
        .await;
    assert_eq!(r.code(), 132015, "{}", r.body);
    assert_eq!(
        f.sends.load(Ordering::SeqCst),
        before,
        "refusals never reach the upstream"
    );
    assert_eq!(before, 251, "250 allowed sends and the one Meta refused");
}

#[tokio::test]
async fn a_retry_while_the_first_is_in_flight_is_told_to_wait() {
    let f = Fake::default();
    f.delay_ms.store(800, Ordering::SeqCst);
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(fake_upstream(l, f.clone()));
    let gw = Arc::new(spawn_gateway(&base, |_| {}).await);
    let t = gateway_tenant(
        &gw,
        "8000001",
        "8000002",
        "EAAG-fake-token",
        "fake-app-secret",
        None,
    )
    .await;
    open_window(&gw, &t, "fake-app-secret").await;
    let first = {
        let (gw, t) = (gw.clone(), t.clone());
        tokio::spawn(async move { send_keyed(&gw, &t, "k-flight").await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let second = send_keyed(&gw, &t, "k-flight").await;
    assert_transient(&second);
    assert!(
        second.details().contains("still being forwarded"),
        "{}",
        second.details()
    );
    let first = first.await.unwrap();
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    let third = send_keyed(&gw, &t, "k-flight").await;
    assert_eq!(third.body, first.body);
    assert_eq!(f.sends.load(Ordering::SeqCst), 1);
}

async fn used_24h(gw: &TestApp, t: &Tenant) -> Value {
    gw.get("/greenlight/v1/messaging_limit", &t.token)
        .await
        .body["used_24h"]
        .clone()
}

/// A status in one tenant's webhook that names another tenant's message (Meta's wamids are
/// unique across tenants) changes nothing of it; the owner's own webhook does.
#[tokio::test]
async fn a_webhook_never_writes_a_status_to_another_tenants_message() {
    let f = Fake::default();
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(fake_upstream(l, f.clone()));
    let gw = spawn_gateway(&format!("http://{addr}"), |_| {}).await;
    let a = gateway_tenant(&gw, "1000001", "1000002", "EAAG-a", "secret-a", None).await;
    let b = gateway_tenant(&gw, "2000001", "2000002", "EAAG-b", "secret-b", None).await;
    open_window(&gw, &a, "secret-a").await;
    let r = send_keyed(&gw, &a, "k-1").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let wamid = r.body["messages"][0]["id"].as_str().unwrap().to_string();
    let read = |t: &Tenant| {
        json!({
            "messaging_product": "whatsapp",
            "metadata": { "display_phone_number": "15550100001", "phone_number_id": t.phone_id },
            "statuses": [{ "id": wamid, "status": "read", "timestamp": "1750000100", "recipient_id": CUSTOMER }] })
    };
    let statuses = |m: &Value| -> Vec<String> {
        m["statuses"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["status"].as_str().unwrap().to_string())
            .collect()
    };

    let before = gw.message(&a, &wamid).await;
    meta_event(&gw, &b, "secret-b", "messages", read(&b)).await;
    let m = gw.message(&a, &wamid).await;
    assert_eq!(m["status"], before["status"], "{m}");
    assert!(!statuses(&m).contains(&"read".to_string()), "{m}");

    meta_event(&gw, &a, "secret-a", "messages", read(&a)).await;
    let m = gw.message(&a, &wamid).await;
    assert_eq!(m["status"], "read", "{m}");
    assert_eq!(
        statuses(&m).iter().filter(|s| *s == "read").count(),
        1,
        "{m}"
    );
}
