//! The integration harness: a real greenlight on port 0 with a fresh database, driven over HTTP
//! like any client would. The database is a SQLite file, or with
//! `GREENLIGHT_TEST_BACKEND=postgres` a fresh PostgreSQL database (see `pg.rs`).
#![allow(dead_code)]

use greenlight::config::Layer;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;

pub const ADMIN: &str = "test-admin-token-0123456789";

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub dir: tempfile::TempDir,
    running: Option<greenlight::Running>,
    /// The PostgreSQL database of this test (dropped after the server).
    pub pg: Option<crate::pg::TestDb>,
}

#[derive(Debug, Clone)]
pub struct Tenant {
    pub business_id: String,
    pub waba_id: String,
    pub app_id: String,
    pub app_secret: String,
    pub token: String,
    pub phone_id: String,
    pub phone_ids: Vec<String>,
    pub raw: Value,
}

pub async fn spawn_app() -> TestApp {
    spawn_with(|_| {}).await
}

pub async fn spawn_with(tweak: impl FnOnce(&mut Layer)) -> TestApp {
    // GREENLIGHT_TEST_LOG=error shows the server's logs (e.g. the cause of a 500)
    if let Ok(filter) = std::env::var("GREENLIGHT_TEST_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_test_writer()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .try_init();
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let mut layer = Layer {
        listen: Some("127.0.0.1:0".into()),
        database_url: Some(format!("sqlite://{}", dir.path().join("test.db").display())),
        admin_token: Some(ADMIN.into()),
        media_dir: Some(dir.path().join("media").display().to_string()),
        delivered_delay_ms: Some(50),
        sqlite_synchronous: Some("NORMAL".into()),
        demo_tenant: Some(false),
        ..Layer::default()
    };
    let pg = if crate::pg::backend_is_postgres() {
        let db = crate::pg::TestDb::create("api").expect("PostgreSQL test database");
        layer.database_url = Some(db.url.clone());
        Some(db)
    } else {
        None
    };
    tweak(&mut layer);
    let config =
        greenlight::config::load(None, &Layer::default(), &layer).expect("valid test config");
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .expect("bind");
    let running = greenlight::run(config, listener)
        .await
        .expect("server starts");
    TestApp {
        base: running.base_url(),
        client: reqwest::Client::new(),
        dir,
        running: Some(running),
        pg,
    }
}

pub struct Resp {
    pub status: StatusCode,
    pub body: Value,
    pub headers: reqwest::header::HeaderMap,
}

impl Resp {
    /// The Meta error code of an error answer.
    pub fn code(&self) -> i64 {
        self.body["error"]["code"]
            .as_i64()
            .unwrap_or_else(|| panic!("not an error envelope: {} {}", self.status, self.body))
    }
    pub fn details(&self) -> String {
        self.body["error"]["error_data"]["details"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
}

impl TestApp {
    /// A client of a greenlight started elsewhere (another process) at `base`.
    pub fn remote(base: String) -> TestApp {
        TestApp {
            base,
            client: reqwest::Client::new(),
            dir: tempfile::tempdir().expect("tempdir"),
            running: None,
            pg: None,
        }
    }

    /// The URL of this app's database (for the command-line tools).
    pub fn database_url(&self) -> String {
        match &self.pg {
            Some(db) => db.url.clone(),
            None => format!("sqlite://{}", self.dir.path().join("test.db").display()),
        }
    }

    pub async fn stop(mut self) {
        if let Some(r) = self.running.take() {
            r.stop().await;
        }
    }

    pub async fn req(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Resp {
        let mut rb = self
            .client
            .request(method, format!("{}{}", self.base, path));
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let r = rb.send().await.expect("request");
        let status = r.status();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Resp {
            status,
            body,
            headers,
        }
    }

    pub async fn get(&self, path: &str, token: &str) -> Resp {
        self.req(reqwest::Method::GET, path, Some(token), None)
            .await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Resp {
        self.req(reqwest::Method::POST, path, Some(token), Some(body))
            .await
    }

    pub async fn tenant(&self) -> Tenant {
        self.tenant_with(json!({ "business_name": "Acme Ltd" }))
            .await
    }

    pub async fn tenant_with(&self, body: Value) -> Tenant {
        let r = self.post("/admin/v1/tenants", ADMIN, body).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        let b = r.body;
        let phone_ids: Vec<String> = b["phone_numbers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["id"].as_str().unwrap().to_string())
            .collect();
        Tenant {
            business_id: b["business_id"].as_str().unwrap().into(),
            waba_id: b["waba_id"].as_str().unwrap().into(),
            app_id: b["app_id"].as_str().unwrap().into(),
            app_secret: b["app_secret"].as_str().unwrap().into(),
            token: b["access_token"].as_str().unwrap().into(),
            phone_id: phone_ids[0].clone(),
            phone_ids,
            raw: b.clone(),
        }
    }

    /// A simulated customer writes (opens the window). Returns the inbound wamid.
    pub async fn inbound(&self, t: &Tenant, from: &str, text: &str) -> String {
        let r = self
            .post(
                &format!("/sandbox/v1/{}/inbound", t.phone_id),
                &t.token,
                json!({ "from": from, "profile_name": "Customer", "type": "text", "text": { "body": text } }),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        r.body["id"].as_str().unwrap().to_string()
    }

    pub async fn send(&self, t: &Tenant, body: Value) -> Resp {
        self.post(&format!("/v23.0/{}/messages", t.phone_id), &t.token, body)
            .await
    }

    pub async fn send_text(&self, t: &Tenant, to: &str, text: &str) -> Resp {
        self.send(t, json!({ "messaging_product": "whatsapp", "to": to, "type": "text", "text": { "body": text } })).await
    }

    pub async fn advance(&self, seconds: i64) -> Resp {
        let r = self
            .post(
                "/sandbox/v1/clock/advance",
                ADMIN,
                json!({ "seconds": seconds }),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        r
    }

    pub async fn message(&self, t: &Tenant, wamid: &str) -> Value {
        let r = self
            .get(&format!("/greenlight/v1/messages/{wamid}"), &t.token)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        r.body
    }

    /// Waits (≤ 3 s of wall time) until a message reaches `status`.
    pub async fn wait_status(&self, t: &Tenant, wamid: &str, status: &str) -> Value {
        for _ in 0..60 {
            let m = self.message(t, wamid).await;
            if m["status"] == status {
                return m;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "message {wamid} never reached {status}: {}",
            self.message(t, wamid).await
        );
    }
}

/// POSTs `body` to `url` with `token`: the status and the JSON body (for tests that drive
/// several servers, or many requests at once from spawned tasks).
pub async fn post_json(
    client: &reqwest::Client,
    url: String,
    token: &str,
    body: &Value,
) -> (StatusCode, Value) {
    let r = client
        .post(url)
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .expect("the server answers");
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

pub fn wamid_of(r: &Resp) -> String {
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body["messages"][0]["id"]
        .as_str()
        .expect("wamid")
        .to_string()
}
