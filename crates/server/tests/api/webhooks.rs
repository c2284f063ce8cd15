//! Webhooks end to end (docs/WEBHOOKS.md): a real greenlight (the common harness) and a test
//! receiver whose answers (status, latency, `Retry-After`, handshake behaviour) each test
//! controls. The crash test runs the real binary and kills it with SIGKILL.

use crate::common::{self, Tenant, ADMIN};
use greenlight::webhooks::config::WebhookLayer;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

// ---- the test receiver ---------------------------------------------------------------------

#[derive(Clone, Debug)]
struct Reply {
    status: u16,
    delay_ms: u64,
    retry_after: Option<String>,
}

impl Reply {
    fn status(status: u16) -> Reply {
        Reply {
            status,
            delay_ms: 0,
            retry_after: None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Handshake {
    Echo,
    WrongChallenge,
    Status(u16),
}

#[derive(Clone, Debug)]
struct Hit {
    at: Instant,
    body: Vec<u8>,
    signature: Option<String>,
    content_type: Option<String>,
}

impl Hit {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("receiver got JSON")
    }
}

struct RecvState {
    verify_token: String,
    handshake: Mutex<Handshake>,
    script: Mutex<VecDeque<Reply>>,
    default: Mutex<Reply>,
    hits: Mutex<Vec<Hit>>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

struct Receiver {
    state: Arc<RecvState>,
    port: u16,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    join: Option<tokio::task::JoinHandle<()>>,
}

async fn hook_get(
    axum::extract::State(s): axum::extract::State<Arc<RecvState>>,
    axum::extract::Query(q): axum::extract::Query<HashMap<String, String>>,
) -> (axum::http::StatusCode, String) {
    use axum::http::StatusCode;
    if q.get("hub.mode").map(String::as_str) != Some("subscribe")
        || q.get("hub.verify_token") != Some(&s.verify_token)
    {
        return (StatusCode::FORBIDDEN, "bad verify token".into());
    }
    let challenge = q.get("hub.challenge").cloned().unwrap_or_default();
    let mode = *s.handshake.lock().unwrap();
    match mode {
        Handshake::Echo => (StatusCode::OK, challenge),
        Handshake::WrongChallenge => (StatusCode::OK, "not-the-challenge".into()),
        Handshake::Status(c) => (StatusCode::from_u16(c).unwrap(), "nope".into()),
    }
}

async fn hook_post(
    axum::extract::State(s): axum::extract::State<Arc<RecvState>>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let now = s.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    s.max_in_flight.fetch_max(now, Ordering::SeqCst);
    let h = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    s.hits.lock().unwrap().push(Hit {
        at: Instant::now(),
        body: body.to_vec(),
        signature: h("x-hub-signature-256"),
        content_type: h("content-type"),
    });
    let reply = {
        let next = s.script.lock().unwrap().pop_front();
        next.unwrap_or_else(|| s.default.lock().unwrap().clone())
    };
    if reply.delay_ms > 0 {
        tokio::time::sleep(Duration::from_millis(reply.delay_ms)).await;
    }
    s.in_flight.fetch_sub(1, Ordering::SeqCst);
    let mut resp = (
        axum::http::StatusCode::from_u16(reply.status).unwrap(),
        "ok",
    )
        .into_response();
    if let Some(r) = reply.retry_after {
        resp.headers_mut().insert("retry-after", r.parse().unwrap());
    }
    resp
}

impl Receiver {
    async fn start(verify_token: &str) -> Receiver {
        let state = Arc::new(RecvState {
            verify_token: verify_token.to_string(),
            handshake: Mutex::new(Handshake::Echo),
            script: Mutex::new(VecDeque::new()),
            default: Mutex::new(Reply::status(200)),
            hits: Mutex::new(Vec::new()),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
        });
        Receiver::serve(state, 0).await
    }

    async fn serve(state: Arc<RecvState>, port: u16) -> Receiver {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("receiver port");
        let port = listener.local_addr().unwrap().port();
        let app = axum::Router::new()
            .route("/hook", axum::routing::get(hook_get).post(hook_post))
            .with_state(state.clone());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let join = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
        });
        Receiver {
            state,
            port,
            stop: Some(tx),
            join: Some(join),
        }
    }

    /// Stops listening (connections are refused) until `restart`.
    async fn stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(j) = self.join.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), j).await;
        }
    }

    async fn restart(&mut self) {
        let r = Receiver::serve(self.state.clone(), self.port).await;
        *self = r;
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hook", self.port)
    }
    fn hits(&self) -> Vec<Hit> {
        self.state.hits.lock().unwrap().clone()
    }
    fn script(&self, replies: &[Reply]) {
        self.state
            .script
            .lock()
            .unwrap()
            .extend(replies.iter().cloned());
    }
    fn set_default(&self, r: Reply) {
        *self.state.default.lock().unwrap() = r;
    }
    fn set_handshake(&self, h: Handshake) {
        *self.state.handshake.lock().unwrap() = h;
    }
}

// ---- the server under test -----------------------------------------------------------------

/// The common harness, with the webhook helpers these tests need.
struct App {
    inner: common::TestApp,
    base: String,
    http: reqwest::Client,
}

/// Compressed retry schedule: 100 ms doubling to 400 ms; attempts time out after 500 ms.
fn fast_hooks() -> WebhookLayer {
    WebhookLayer {
        timeout_ms: Some(500),
        retry_initial_ms: Some(100),
        retry_max_interval_ms: Some(400),
        lease_ms: Some(3_000),
        ..WebhookLayer::default()
    }
}

async fn spawn_app(hooks: WebhookLayer) -> App {
    App::from(common::spawn_with(|l| l.webhooks = Some(hooks)).await)
}

impl From<common::TestApp> for App {
    fn from(inner: common::TestApp) -> App {
        App {
            base: inner.base.clone(),
            http: reqwest::Client::builder().no_proxy().build().unwrap(),
            inner,
        }
    }
}

impl App {
    async fn call(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut rb = self
            .http
            .request(m, format!("{}{}", self.base, path))
            .bearer_auth(token);
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let r = rb.send().await.unwrap();
        let status = r.status().as_u16();
        let v = r.json::<Value>().await.unwrap_or(Value::Null);
        (status, v)
    }

    async fn try_tenant(&self, hook: Option<(&str, &str)>) -> (u16, Value) {
        let mut body = json!({ "business_name": "Acme Ltd" });
        if let Some((url, token)) = hook {
            body["webhook"] = json!({ "callback_url": url, "verify_token": token });
        }
        self.call("POST", "/admin/v1/tenants", ADMIN, Some(body))
            .await
    }

    async fn tenant(&self, hook: Option<(&str, &str)>) -> Tenant {
        let mut body = json!({ "business_name": "Acme Ltd" });
        if let Some((url, token)) = hook {
            body["webhook"] = json!({ "callback_url": url, "verify_token": token });
        }
        self.inner.tenant_with(body).await
    }

    async fn inbound(&self, t: &Tenant, text: &str) -> String {
        let (s, v) = self
            .call(
                "POST",
                &format!("/sandbox/v1/{}/inbound", t.phone_id),
                &t.token,
                Some(json!({"from": "15551234567", "profile_name": "Zoë 李 😀", "type": "text", "text": {"body": text}})),
            )
            .await;
        assert_eq!(s, 200, "{v}");
        v["id"].as_str().unwrap().to_string()
    }

    /// An in-window text to the customer of [`App::inbound`]: (HTTP status, answer).
    async fn send_text(&self, t: &Tenant, text: &str) -> (u16, Value) {
        self.call(
            "POST",
            &format!("/v23.0/{}/messages", t.phone_id),
            &t.token,
            Some(json!({"messaging_product": "whatsapp", "to": "15551234567", "type": "text", "text": {"body": text}})),
        )
        .await
    }

    async fn deliveries(&self, t: &Tenant, query: &str) -> Vec<Value> {
        let (s, v) = self
            .call(
                "GET",
                &format!(
                    "/admin/v1/tenants/{}/webhook_deliveries{query}",
                    t.business_id
                ),
                ADMIN,
                None,
            )
            .await;
        assert_eq!(s, 200, "{v}");
        v["data"].as_array().unwrap().clone()
    }

    async fn delivery(&self, t: &Tenant, id: &str) -> Value {
        let (s, v) = self
            .call(
                "GET",
                &format!(
                    "/admin/v1/tenants/{}/webhook_deliveries/{id}",
                    t.business_id
                ),
                ADMIN,
                None,
            )
            .await;
        assert_eq!(s, 200, "{v}");
        v
    }

    async fn advance(&self, seconds: i64) {
        self.inner.advance(seconds).await;
    }

    async fn stop(self) {
        self.inner.stop().await;
    }
}

async fn eventually(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < timeout, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn eventually_async<F, Fut>(what: &str, timeout: Duration, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !f().await {
        assert!(start.elapsed() < timeout, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
}

fn sign(secret: &str, body: &[u8]) -> String {
    let mut m = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    m.update(body);
    format!("sha256={}", hex::encode(m.finalize().into_bytes()))
}

fn wamid_of(hit: &Hit) -> Option<String> {
    hit.json()["entry"][0]["changes"][0]["value"]["messages"][0]["id"]
        .as_str()
        .map(str::to_string)
}

const SECS: Duration = Duration::from_secs(10);

// ---- tests ---------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_must_echo_the_challenge_or_the_call_fails_saying_why() {
    let app = spawn_app(fast_hooks()).await;
    let rx = Receiver::start("vt-123").await;
    let url = rx.url();

    // passes: the tenant exists
    app.tenant(Some((&url, "vt-123"))).await;

    // a wrong verify token: the receiver answers 403
    let (s, v) = app.try_tenant(Some((&url, "wrong"))).await;
    assert_eq!(s, 400, "{v}");
    assert_eq!(v["error"]["code"], 2200);
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("Callback verification failed") && msg.contains("403"),
        "{msg}"
    );

    // 200 without the challenge
    rx.set_handshake(Handshake::WrongChallenge);
    let (s, v) = app.try_tenant(Some((&url, "vt-123"))).await;
    assert_eq!(s, 400);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("is not the hub.challenge value"),
        "{v}"
    );

    // an error status
    rx.set_handshake(Handshake::Status(500));
    let (s, v) = app.try_tenant(Some((&url, "vt-123"))).await;
    assert_eq!(s, 400);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("HTTP Status Code = 500"),
        "{v}"
    );

    // no answer at all (nothing listens there)
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let (s, v) = app
        .try_tenant(Some((&format!("http://127.0.0.1:{closed}/hook"), "vt-123")))
        .await;
    assert_eq!(s, 400);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no answer"),
        "{v}"
    );

    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_is_metas_bytes_signed_with_the_app_secret() {
    let app = spawn_app(fast_hooks()).await;
    let rx = Receiver::start("vt").await;
    let t = app.tenant(Some((&rx.url(), "vt"))).await;
    let text = "é 中文 😀 \"quoted\" </script>";
    let wamid = app.inbound(&t, text).await;
    eventually("the messages webhook", SECS, || !rx.hits().is_empty()).await;
    let hit = &rx.hits()[0];

    assert_eq!(hit.content_type.as_deref(), Some("application/json"));
    // signature over exactly the bytes received
    assert_eq!(
        hit.signature.as_deref(),
        Some(sign(&t.app_secret, &hit.body).as_str())
    );
    // Meta's byte format: ASCII only, lowercase \u escapes, surrogate pairs, compact
    let raw = std::str::from_utf8(&hit.body).unwrap();
    assert!(raw.is_ascii());
    assert!(raw.contains(r"\u00e9 \u4e2d\u6587 \ud83d\ude00"), "{raw}");
    assert!(!raw.contains(": ") && !raw.contains('\n'));
    // a receiver that parses and re-escapes gets the same bytes, so the same signature
    let v: Value = serde_json::from_slice(&hit.body).unwrap();
    assert_eq!(greenlight_domain::webhook::to_meta_bytes(&v), hit.body);
    // the envelope and value as in the fixtures
    assert_eq!(v["object"], "whatsapp_business_account");
    assert_eq!(v["entry"][0]["id"], t.waba_id);
    let change = &v["entry"][0]["changes"][0];
    assert_eq!(change["field"], "messages");
    let m = &change["value"]["messages"][0];
    assert_eq!(m["id"], wamid);
    assert_eq!(m["text"]["body"], text);
    assert!(m["timestamp"].is_string());
    assert_eq!(
        change["value"]["contacts"][0]["profile"]["name"],
        "Zoë 李 😀"
    );
    assert_eq!(change["value"]["metadata"]["phone_number_id"], t.phone_id);

    // the delivery log (operator and tenant) shows it delivered with its attempt
    eventually_async("delivered in the log", SECS, || async {
        app.deliveries(&t, "?state=delivered").await.len() == 1
    })
    .await;
    let (s, mine) = app
        .call("GET", "/greenlight/v1/webhook_deliveries", &t.token, None)
        .await;
    assert_eq!(s, 200);
    let id = mine["data"][0]["id"].as_str().unwrap().to_string();
    let (s, one) = app
        .call(
            "GET",
            &format!("/greenlight/v1/webhook_deliveries/{id}"),
            &t.token,
            None,
        )
        .await;
    assert_eq!(s, 200, "{one}");
    assert_eq!(one["attempts_log"][0]["status_code"], 200);
    assert!(one["attempts_log"][0]["latency_ms"].is_i64());
    assert_eq!(one["value"]["messages"][0]["id"], wamid);

    // another tenant cannot see it
    let other = app.tenant(None).await;
    let (s, _) = app
        .call(
            "GET",
            &format!("/greenlight/v1/webhook_deliveries/{id}"),
            &other.token,
            None,
        )
        .await;
    assert_eq!(s, 400);
    app.stop().await;
}

/// A customer's business-scoped user id is one value in every webhook: the status of a first
/// message to a customer greenlight had never seen (its id derived then), their reply, and the
/// status of the next message (its id read back).
/// The statuses a receiver got, `(status, wamid, timestamp)` in arrival order.
fn statuses_received(rx: &Receiver) -> Vec<(String, String, i64)> {
    rx.hits()
        .iter()
        .filter_map(|h| {
            let st = h.json()["entry"][0]["changes"][0]["value"]["statuses"][0].clone();
            Some((
                st["status"].as_str()?.into(),
                st["id"].as_str()?.into(),
                st["timestamp"].as_str()?.parse().ok()?,
            ))
        })
        .collect()
}

/// A send decides its delivery: the message reads `sent` until `delivered_delay_ms` has
/// passed (on the clock, which `clock/advance` moves) and `delivered` from then on, and the
/// `delivered` webhook follows then. A customer's `read` before that time delivers it at once,
/// at the read's time, and nothing is delivered twice. (Webhooks go concurrently, as Meta's
/// do: the order of arrival is not the order of the statuses; their timestamps are.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decided_delivery_follows_the_clock_and_a_read_before_it_delivers_first() {
    let app = App::from(
        common::spawn_with(|l| {
            l.webhooks = Some(fast_hooks());
            l.delivered_delay_ms = Some(60_000);
        })
        .await,
    );
    let rx = Receiver::start("vt").await;
    let t = app.tenant(Some((&rx.url(), "vt"))).await;
    app.inbound(&t, "hi").await;
    let send = |text: &'static str| {
        let (app, t) = (&app, &t);
        async move {
            let (s, v) = app.send_text(t, text).await;
            assert_eq!(s, 200, "{v}");
            v["messages"][0]["id"].as_str().unwrap().to_string()
        }
    };
    let status = |wamid: String| {
        let (app, t) = (&app, &t);
        async move { app.inner.message(t, &wamid).await["status"].clone() }
    };
    let read_now = send("read at once").await;
    let waits = send("waits for the clock").await;
    assert_eq!(status(read_now.clone()).await, "sent");
    let (s, v) = app
        .call(
            "POST",
            &format!("/sandbox/v1/{}/users/15551234567/actions", t.phone_id),
            &t.token,
            Some(json!({"action": "read", "message_id": read_now})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(status(read_now.clone()).await, "read");
    eventually("sent, sent, delivered, read", SECS, || {
        statuses_received(&rx).len() >= 4
    })
    .await;
    // a message's statuses by their time, then their order in a message's life
    let of = |wamid: &str| {
        let rank = |s: &str| ["sent", "delivered", "read"].iter().position(|r| *r == s);
        let mut got: Vec<(i64, Option<usize>, String)> = statuses_received(&rx)
            .into_iter()
            .filter(|(_, w, _)| w == wamid)
            .map(|(s, _, at)| (at, rank(&s), s))
            .collect();
        got.sort();
        got.into_iter().map(|(_, _, s)| s).collect::<Vec<_>>()
    };
    assert_eq!(of(&read_now), ["sent", "delivered", "read"]);
    assert_eq!(of(&waits), ["sent"]);
    assert_eq!(status(waits.clone()).await, "sent");

    // a minute on the clock: delivered as the answer to the advance comes back
    app.advance(60).await;
    assert_eq!(status(waits.clone()).await, "delivered");
    eventually("the waiting delivery", SECS, || of(&waits).len() == 2).await;
    assert_eq!(of(&waits), ["sent", "delivered"]);
    assert_eq!(of(&read_now), ["sent", "delivered", "read"], "once");

    // a tenant nobody receives events of: its waiting `delivered` (written `skipped`) is
    // replaced too, so its log holds one of each
    let quiet = app.tenant(None).await;
    app.inbound(&quiet, "hi").await;
    let (s, v) = app.send_text(&quiet, "x").await;
    assert_eq!(s, 200, "{v}");
    let wamid = v["messages"][0]["id"].as_str().unwrap().to_string();
    let (s, v) = app
        .call(
            "POST",
            &format!("/sandbox/v1/{}/users/15551234567/actions", quiet.phone_id),
            &quiet.token,
            Some(json!({"action": "read", "message_id": wamid})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let log = app.deliveries(&quiet, "?state=skipped").await;
    let mut got = Vec::new();
    for e in &log {
        let d = app.delivery(&quiet, e["id"].as_str().unwrap()).await;
        if let Some(st) = d["value"]["statuses"].get(0) {
            got.push(st["status"].as_str().unwrap().to_string());
        }
    }
    got.sort();
    assert_eq!(got, ["delivered", "read", "sent"], "{log:?}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customers_user_id_is_the_same_in_every_webhook() {
    let app = spawn_app(fast_hooks()).await;
    let rx = Receiver::start("vt").await;
    let t = app.tenant(Some((&rx.url(), "vt"))).await;
    let send = |text: &'static str| {
        let (app, t) = (&app, &t);
        async move {
            let (s, v) = app.send_text(t, text).await;
            assert_eq!(s, 200, "{v}");
        }
    };
    // no window yet: accepted, then failed (131047), with the customer's first user id
    send("first").await;
    app.inbound(&t, "hi").await;
    send("second").await;
    eventually("three webhooks", SECS, || rx.hits().len() >= 3).await;
    let mut ids = Vec::new();
    for h in rx.hits() {
        let v = h.json()["entry"][0]["changes"][0]["value"].clone();
        if let Some(st) = v["statuses"].get(0) {
            ids.push((
                st["status"].as_str().unwrap().to_string(),
                st["recipient_user_id"].clone(),
            ));
        }
        if let Some(m) = v["messages"].get(0) {
            ids.push(("inbound".into(), m["from_user_id"].clone()));
            ids.push(("contact".into(), v["contacts"][0]["user_id"].clone()));
        }
    }
    for kind in ["failed", "inbound", "sent"] {
        assert!(ids.iter().any(|(k, _)| k == kind), "{kind}: {ids:?}");
    }
    let first = ids[0].1.as_str().expect("a user id").to_string();
    assert!(!first.is_empty());
    for (kind, id) in &ids {
        assert_eq!(id.as_str(), Some(first.as_str()), "{kind}: {ids:?}");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receivers_get_only_the_fields_they_subscribed_to() {
    let app = spawn_app(fast_hooks()).await;
    let rx = Receiver::start("vt").await;
    let t = app.tenant(Some((&rx.url(), "vt"))).await;
    let app_token = format!("{}|{}", t.app_id, t.app_secret);
    let subs = format!("/v23.0/{}/subscriptions", t.app_id);

    // the tenant's token is not an app token (Meta's #15)
    let (s, v) = app.call("GET", &subs, &t.token, None).await;
    assert_eq!((s, v["error"]["code"].as_i64()), (400, Some(15)), "{v}");
    // a subscription made at tenant creation covers every field
    let (s, v) = app.call("GET", &subs, &app_token, None).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["data"][0]["callback_url"], rx.url());
    assert!(v["data"][0]["fields"].as_array().unwrap().len() > 10);

    // narrow it to account_update (as a form body, like Graph clients send)
    let r = app
        .http
        .post(format!("{}{subs}", app.base))
        .bearer_auth(&app_token)
        .form(&[
            ("object", "whatsapp_business_account"),
            ("callback_url", &rx.url()),
            ("verify_token", "vt"),
            ("fields", "account_update"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let (_, v) = app.call("GET", &subs, &app_token, None).await;
    assert_eq!(
        v["data"][0]["fields"],
        json!([{"name": "account_update", "version": "v23.0"}])
    );

    app.inbound(&t, "not for you").await;
    eventually_async("skipped", SECS, || async {
        app.deliveries(&t, "?state=skipped").await.len() == 1
    })
    .await;
    let d = &app.deliveries(&t, "?state=skipped").await[0];
    assert!(d["last_error"]
        .as_str()
        .unwrap()
        .contains("not among the app's subscribed fields"));
    assert!(rx.hits().is_empty());

    // add messages: fields accumulate, as on Graph
    let (s, v) = app
        .call(
            "POST",
            &subs,
            &app_token,
            Some(json!({"object": "whatsapp_business_account", "fields": ["messages"]})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let (_, v) = app.call("GET", &subs, &app_token, None).await;
    assert_eq!(v["data"][0]["fields"].as_array().unwrap().len(), 2);
    app.inbound(&t, "for you").await;
    eventually("delivered", SECS, || rx.hits().len() == 1).await;

    // WABA unsubscribed from the app: nothing more
    let apps = format!("/v23.0/{}/subscribed_apps", t.waba_id);
    let (_, v) = app.call("GET", &apps, &t.token, None).await;
    assert_eq!(v["data"][0]["whatsapp_business_api_data"]["id"], t.app_id);
    let (s, _) = app.call("DELETE", &apps, &t.token, None).await;
    assert_eq!(s, 200);
    let (_, v) = app.call("GET", &apps, &t.token, None).await;
    assert_eq!(v["data"], json!([]));
    app.inbound(&t, "unsubscribed").await;
    eventually_async("skipped again", SECS, || async {
        app.deliveries(&t, "?state=skipped").await.len() == 2
    })
    .await;

    // subscribed again with an override callback: it gets the events (after its handshake)
    let rx2 = Receiver::start("vt2").await;
    let (s, v) = app
        .call(
            "POST",
            &apps,
            &t.token,
            Some(json!({"override_callback_uri": rx2.url(), "verify_token": "wrong"})),
        )
        .await;
    assert_eq!((s, v["error"]["code"].as_i64()), (400, Some(2200)), "{v}");
    let (s, v) = app
        .call(
            "POST",
            &apps,
            &t.token,
            Some(json!({"override_callback_uri": rx2.url(), "verify_token": "vt2"})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let (_, v) = app.call("GET", &apps, &t.token, None).await;
    assert_eq!(v["data"][0]["override_callback_uri"], rx2.url());
    app.inbound(&t, "to the override").await;
    eventually("override delivered", SECS, || rx2.hits().len() == 1).await;
    assert_eq!(rx.hits().len(), 1);

    // a phone number's own override comes first (Graph: POST /{phone-number-id})
    let rx3 = Receiver::start("vt3").await;
    let phone = format!("/v23.0/{}", t.phone_id);
    let (s, v) = app
        .call("POST", &phone, &t.token, Some(json!({"webhook_configuration": {"override_callback_uri": rx3.url(), "verify_token": "nope"}})))
        .await;
    assert_eq!((s, v["error"]["code"].as_i64()), (400, Some(2200)), "{v}");
    let (s, v) = app
        .call("POST", &phone, &t.token, Some(json!({"webhook_configuration": {"override_callback_uri": rx3.url(), "verify_token": "vt3"}})))
        .await;
    assert_eq!(s, 200, "{v}");
    app.inbound(&t, "to the number's override").await;
    eventually("number override delivered", SECS, || rx3.hits().len() == 1).await;
    // an empty override removes it: back to the WABA's
    let (s, _) = app
        .call(
            "POST",
            &phone,
            &t.token,
            Some(json!({"webhook_configuration": {"override_callback_uri": ""}})),
        )
        .await;
    assert_eq!(s, 200);
    app.inbound(&t, "to the WABA override again").await;
    eventually("WABA override delivered", SECS, || rx2.hits().len() == 2).await;
    assert_eq!(rx3.hits().len(), 1);

    // DELETE the app subscription's messages field: skipped again
    let (s, _) = app
        .call(
            "DELETE",
            &format!("{subs}?fields=messages"),
            &app_token,
            None,
        )
        .await;
    assert_eq!(s, 200);
    let (_, v) = app.call("GET", &subs, &app_token, None).await;
    assert_eq!(
        v["data"][0]["fields"],
        json!([{"name": "account_update", "version": "v23.0"}])
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_on_500_and_timeout_with_the_same_bytes() {
    let app = spawn_app(fast_hooks()).await;
    let rx = Receiver::start("vt").await;
    let t = app.tenant(Some((&rx.url(), "vt"))).await;
    rx.script(&[
        Reply::status(500),
        Reply::status(500),
        Reply {
            status: 200,
            delay_ms: 1_500,
            retry_after: None,
        }, // beyond the 500 ms timeout
    ]);
    app.inbound(&t, "retry me").await;
    eventually("four attempts", SECS, || rx.hits().len() >= 4).await;
    let hits = rx.hits();
    // identical bytes and signature on every attempt: same ids for de-duplication
    assert!(hits
        .iter()
        .all(|h| h.body == hits[0].body && h.signature == hits[0].signature));
    // backoff: each gap at least the scheduled delay (100 ms, 200 ms, then after the timeout)
    assert!(hits[1].at - hits[0].at >= Duration::from_millis(70));
    assert!(hits[2].at - hits[1].at >= Duration::from_millis(150));

    eventually_async("delivered", SECS, || async {
        app.deliveries(&t, "?state=delivered").await.len() == 1
    })
    .await;
    let id = app.deliveries(&t, "").await[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let d = app.delivery(&t, &id).await;
    let log = d["attempts_log"].as_array().unwrap();
    assert_eq!(log.len(), 4, "{d}");
    assert_eq!(log[0]["status_code"], 500);
    assert_eq!(log[0]["outcome"], "retry");
    assert!(log[0]["error"].as_str().unwrap().starts_with("HTTP 500"));
    assert!(log[2].get("status_code").is_none());
    assert!(
        log[2]["error"].as_str().unwrap().contains("timed out"),
        "{}",
        log[2]
    );
    assert!(log[2]["latency_ms"].as_i64().unwrap() >= 450);
    assert_eq!(log[3]["status_code"], 200);
    assert_eq!(log[3]["outcome"], "delivered");
    assert_eq!(d["attempts"], 4);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_when_the_connection_is_refused() {
    let app = spawn_app(fast_hooks()).await;
    let mut rx = Receiver::start("vt").await;
    let t = app.tenant(Some((&rx.url(), "vt"))).await;
    rx.stop().await;
    app.inbound(&t, "anyone there?").await;
    eventually_async("refused attempts", SECS, || async {
        let d = app.deliveries(&t, "").await;
        d.first()
            .is_some_and(|d| d["attempts"].as_i64().unwrap_or(0) >= 2)
    })
    .await;
    rx.restart().await;
    eventually("delivered after restart", SECS, || rx.hits().len() == 1).await;
    eventually_async("delivered in the log", SECS, || async {
        app.deliveries(&t, "?state=delivered").await.len() == 1
    })
    .await;
    let id = app.deliveries(&t, "").await[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let d = app.delivery(&t, &id).await;
    let first = &d["attempts_log"][0];
    assert!(first.get("status_code").is_none());
    let err = first["error"].as_str().unwrap().to_ascii_lowercase();
    assert!(err.contains("connect") || err.contains("refused"), "{err}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_sets_the_next_attempt() {
    let app = spawn_app(fast_hooks()).await;
    let rx = Receiver::start("vt").await;
    let t = app.tenant(Some((&rx.url(), "vt"))).await;
    rx.script(&[Reply {
        status: 503,
        delay_ms: 0,
        retry_after: Some("2".into()),
    }]);
    app.inbound(&t, "later please").await;
    eventually("second attempt", SECS, || rx.hits().len() >= 2).await;
    let hits = rx.hits();
    let gap = hits[1].at - hits[0].at;
    // without Retry-After the schedule would retry after ~100 ms
    assert!(
        gap >= Duration::from_millis(1_900) && gap < Duration::from_secs(4),
        "{gap:?}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_after_seven_days_then_replayed_with_the_same_ids() {
    // Meta's 7-day window (the default); the virtual clock moves past it.
    let app = spawn_app(fast_hooks()).await;
    let rx = Receiver::start("vt").await;
    let t = app.tenant(Some((&rx.url(), "vt"))).await;
    rx.set_default(Reply::status(500));
    let wamid = app.inbound(&t, "will die").await;
    eventually("a few failures", SECS, || rx.hits().len() >= 2).await;
    assert!(app.deliveries(&t, "?state=dead").await.is_empty());

    app.advance(6 * 86_400).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(
        app.deliveries(&t, "?state=dead").await.is_empty(),
        "not dead within 7 days"
    );
    app.advance(86_400 + 60).await;
    eventually_async("dead", SECS, || async {
        app.deliveries(&t, "?state=dead").await.len() == 1
    })
    .await;
    let dead = &app.deliveries(&t, "?state=dead").await[0];
    assert_eq!(dead["last_status_code"], 500);
    let id = dead["id"].as_str().unwrap().to_string();
    let d = app.delivery(&t, &id).await;
    assert_eq!(
        d["attempts_log"].as_array().unwrap().last().unwrap()["outcome"],
        "dead"
    );
    // the tenant sees it dead too
    let (_, mine) = app
        .call(
            "GET",
            "/greenlight/v1/webhook_deliveries?state=dead",
            &t.token,
            None,
        )
        .await;
    assert_eq!(mine["data"][0]["id"], id.as_str());

    // nothing more is attempted while dead
    let n = rx.hits().len();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(rx.hits().len(), n);

    // the receiver is fixed; the operator replays every dead event
    rx.set_default(Reply::status(200));
    let (s, v) = app
        .call(
            "POST",
            &format!(
                "/admin/v1/tenants/{}/webhook_deliveries/replay",
                t.business_id
            ),
            ADMIN,
            Some(json!({"state": "dead"})),
        )
        .await;
    assert_eq!((s, v["replayed"].as_i64()), (200, Some(1)), "{v}");
    eventually_async("delivered after replay", SECS, || async {
        app.deliveries(&t, "?state=delivered").await.len() == 1
    })
    .await;
    let hits = rx.hits();
    let last = hits.last().unwrap();
    assert_eq!(wamid_of(last).as_deref(), Some(wamid.as_str()));
    assert_eq!(
        last.body, hits[0].body,
        "a replay sends the very same bytes"
    );

    // replay one (a delivered one): a duplicate with the same ids
    let (s, _) = app
        .call(
            "POST",
            &format!(
                "/admin/v1/tenants/{}/webhook_deliveries/{id}/replay",
                t.business_id
            ),
            ADMIN,
            None,
        )
        .await;
    assert_eq!(s, 200);
    eventually("replayed duplicate", SECS, || {
        rx.hits().len() == hits.len() + 1
    })
    .await;
    assert_eq!(rx.hits().last().unwrap().body, hits[0].body);
    // tenants may not replay
    let (s, _) = app
        .call(
            "POST",
            &format!(
                "/admin/v1/tenants/{}/webhook_deliveries/{id}/replay",
                t.business_id
            ),
            &t.token,
            None,
        )
        .await;
    assert_eq!(s, 403);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_receiver_is_bounded_and_does_not_slow_sends() {
    let app = spawn_app(WebhookLayer {
        concurrency_per_endpoint: Some(2),
        timeout_ms: Some(5_000),
        lease_ms: Some(10_000),
        ..fast_hooks()
    })
    .await;
    let rx = Receiver::start("vt").await;
    let t = app.tenant(Some((&rx.url(), "vt"))).await;
    rx.set_default(Reply {
        status: 200,
        delay_ms: 300,
        retry_after: None,
    });
    let start = Instant::now();
    let mut ids = HashSet::new();
    for i in 0..20 {
        ids.insert(app.inbound(&t, &format!("m{i}")).await);
    }
    let send_time = start.elapsed();
    // 20 sends while deliveries take 300 ms each, two at a time (3 s in all)
    assert!(
        send_time < Duration::from_millis(2_000),
        "sends took {send_time:?}"
    );
    eventually("all delivered", Duration::from_secs(20), || {
        rx.hits()
            .iter()
            .filter_map(wamid_of)
            .collect::<HashSet<_>>()
            == ids
    })
    .await;
    assert!(rx.state.max_in_flight.load(Ordering::SeqCst) <= 2);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callback_urls_are_checked_against_the_allow_list() {
    let rx = Receiver::start("vt").await;
    // gateway-style: private ranges refused unless listed
    let app = spawn_app(WebhookLayer {
        allow_private: Some(false),
        ..fast_hooks()
    })
    .await;
    let (s, v) = app.try_tenant(Some((&rx.url(), "vt"))).await;
    assert_eq!(s, 400, "{v}");
    let details = v["error"]["error_data"]["details"].as_str().unwrap();
    assert!(
        details.contains("not allowed") && details.contains("127.0.0.1"),
        "{details}"
    );
    app.stop().await;
    // listed: allowed
    let app = spawn_app(WebhookLayer {
        allow_private: Some(false),
        allowed_hosts: Some(vec!["127.0.0.0/8".into()]),
        ..fast_hooks()
    })
    .await;
    app.tenant(Some((&rx.url(), "vt"))).await;
    app.stop().await;
    // a strict list without this host
    let app = spawn_app(WebhookLayer {
        allowed_hosts: Some(vec!["hooks.example.com".into()]),
        ..fast_hooks()
    })
    .await;
    let (s, v) = app.try_tenant(Some((&rx.url(), "vt"))).await;
    assert_eq!(s, 400, "{v}");
    assert!(v["error"]["error_data"]["details"]
        .as_str()
        .unwrap()
        .contains("allowed_hosts"));
    app.stop().await;
}

// ---- crash test: the real binary, SIGKILL, restart on the same database ------------------------

struct Server {
    child: std::process::Child,
    base: String,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn start_binary(db: &std::path::Path, dir: &std::path::Path) -> Server {
    let port = free_port();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_greenlight"))
        .arg("serve")
        .env("GREENLIGHT_LISTEN", format!("127.0.0.1:{port}"))
        .env(
            "GREENLIGHT_DATABASE_URL",
            format!("sqlite://{}", db.display()),
        )
        .env("GREENLIGHT_ADMIN_TOKEN", ADMIN)
        .env("GREENLIGHT_MEDIA_DIR", dir.join("media"))
        .env("GREENLIGHT_DEMO_TENANT", "false")
        .env("GREENLIGHT_LOG", "warn")
        .env("GREENLIGHT_WEBHOOK_TIMEOUT_MS", "1000")
        .env("GREENLIGHT_WEBHOOK_LEASE_MS", "2000")
        .env("GREENLIGHT_WEBHOOK_RETRY_INITIAL_MS", "100")
        .env("GREENLIGHT_WEBHOOK_RETRY_MAX_INTERVAL_MS", "500")
        .env("GREENLIGHT_WEBHOOK_CONCURRENCY_PER_ENDPOINT", "4")
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("start the greenlight binary");
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let start = Instant::now();
    loop {
        if let Ok(r) = http.get(format!("{base}/healthz")).send().await {
            if r.status() == 200 {
                break;
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the binary did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Server { child, base }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_while_deliveries_are_pending_loses_nothing() {
    const EVENTS: usize = 300;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("crash.db");
    let rx = Receiver::start("vt").await;
    rx.set_default(Reply {
        status: 200,
        delay_ms: 40,
        retry_after: None,
    });
    let mut server = start_binary(&db, dir.path()).await;
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let created: Value = http
        .post(format!("{}/admin/v1/tenants", server.base))
        .bearer_auth(ADMIN)
        .json(&json!({"business_name": "Crash Ltd", "webhook": {"callback_url": rx.url(), "verify_token": "vt"}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = created["access_token"].as_str().unwrap().to_string();
    let secret = created["app_secret"].as_str().unwrap().to_string();
    let phone = created["phone_numbers"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();

    // hundreds of events, eight requests at a time
    let mut set = tokio::task::JoinSet::new();
    let wamids = Arc::new(Mutex::new(HashSet::new()));
    for w in 0..8 {
        let (http, base, token, phone, wamids) = (
            http.clone(),
            server.base.clone(),
            token.clone(),
            phone.clone(),
            wamids.clone(),
        );
        set.spawn(async move {
            for i in (w..EVENTS).step_by(8) {
                let v: Value = http
                    .post(format!("{base}/sandbox/v1/{phone}/inbound"))
                    .bearer_auth(&token)
                    .json(&json!({"from": format!("1555{:07}", i), "type": "text", "text": {"body": format!("n°{i}")}}))
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                wamids.lock().unwrap().insert(v["id"].as_str().unwrap().to_string());
            }
        });
    }
    while set.join_next().await.is_some() {}
    let wamids = wamids.lock().unwrap().clone();
    assert_eq!(wamids.len(), EVENTS);

    // kill -9 while some are delivered, some in flight, most pending
    eventually("some deliveries", SECS, || rx.hits().len() >= 40).await;
    server.child.kill().unwrap(); // SIGKILL
    server.child.wait().unwrap();
    let seen_before: HashSet<String> = rx.hits().iter().filter_map(wamid_of).collect();
    assert!(
        seen_before.len() < EVENTS,
        "the kill came too late to test anything"
    );

    // restart on the same database: every event arrives at least once, correctly signed
    let mut server = start_binary(&db, dir.path()).await;
    eventually("every event delivered", Duration::from_secs(60), || {
        rx.hits()
            .iter()
            .filter_map(wamid_of)
            .collect::<HashSet<_>>()
            == wamids
    })
    .await;
    let hits = rx.hits();
    assert!(hits
        .iter()
        .all(|h| h.signature.as_deref() == Some(sign(&secret, &h.body).as_str())));
    eprintln!(
        "crash test: {} events, {} before the kill, {} POSTs in all ({} duplicates)",
        EVENTS,
        seen_before.len(),
        hits.len(),
        hits.len() - EVENTS
    );
    server.child.kill().unwrap();
    server.child.wait().unwrap();
}

/// Delivery throughput to a local receiver (a figure, not a check): run with
/// `cargo test --release -p greenlight --test webhooks throughput -- --ignored --nocapture`.
/// Events are created while the receiver is down (first attempts fail, retries wait an hour),
/// then the receiver comes back and the clock moves: the drain is delivery alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement; run explicitly"]
async fn throughput_to_a_local_receiver() {
    const EVENTS: usize = 5_000;
    let app = spawn_app(WebhookLayer {
        concurrency: Some(64),
        concurrency_per_endpoint: Some(32),
        retry_initial_ms: Some(3_600_000),
        retry_max_interval_ms: Some(3_600_000),
        ..fast_hooks()
    })
    .await;
    let mut rx = Receiver::start("vt").await;
    let t = app.tenant(Some((&rx.url(), "vt"))).await;
    rx.stop().await;
    let start = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for w in 0..16 {
        let (http, base, t) = (app.http.clone(), app.base.clone(), t.clone());
        set.spawn(async move {
            for i in (w..EVENTS).step_by(16) {
                let r = http
                    .post(format!("{base}/sandbox/v1/{}/inbound", t.phone_id))
                    .bearer_auth(&t.token)
                    .json(&json!({"from": format!("1555{:07}", i), "type": "text", "text": {"body": "x"}}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
            }
        });
    }
    while set.join_next().await.is_some() {}
    let created = start.elapsed();
    eventually_async("first attempts made", Duration::from_secs(120), || async {
        app.deliveries(&t, "?limit=1").await[0]["attempts"] == 1
            && app
                .deliveries(&t, "?limit=500")
                .await
                .iter()
                .all(|d| d["attempts"] == 1)
    })
    .await;
    rx.restart().await;
    let start = Instant::now();
    app.advance(3 * 3600).await;
    eventually("all delivered", Duration::from_secs(300), || {
        rx.hits().len() >= EVENTS
    })
    .await;
    let drained = start.elapsed();
    eprintln!(
        "throughput: {EVENTS} events created in {created:?} ({:.0}/s while deliveries failed); drained to a local receiver in {drained:?} ({:.0} deliveries/s)",
        EVENTS as f64 / created.as_secs_f64(),
        EVENTS as f64 / drained.as_secs_f64()
    );
    app.stop().await;
}
