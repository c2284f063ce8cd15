//! Several greenlight processes on one PostgreSQL database: the rules stay exact.
//! Skipped (and said so) when PostgreSQL is not reachable, unless CI requires it (`pg.rs`).

use crate::common::*;
use crate::compliance_common::{approved_template, template_body};
use crate::pg::TestDb;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;

/// A `greenlight serve` process (the built binary) on `database_url`, killed when dropped.
pub struct Node {
    child: std::process::Child,
    pub base: String,
    _dir: tempfile::TempDir,
}

impl Node {
    pub async fn start(database_url: &str) -> Node {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = tempfile::tempdir().unwrap();
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_greenlight"))
            .arg("serve")
            .env("GREENLIGHT_LISTEN", format!("127.0.0.1:{port}"))
            .env("GREENLIGHT_DATABASE_URL", database_url)
            .env("GREENLIGHT_ADMIN_TOKEN", ADMIN)
            .env("GREENLIGHT_MEDIA_DIR", dir.path().join("media"))
            .env("GREENLIGHT_DEMO_TENANT", "false")
            .env("GREENLIGHT_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("start greenlight");
        // from here on, dropping the node (also on a panic) kills and reaps the process
        let node = Node {
            child,
            base: format!("http://127.0.0.1:{port}"),
            _dir: dir,
        };
        let client = reqwest::Client::new();
        for _ in 0..200 {
            if client
                .get(format!("{}/healthz", node.base))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return node;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("greenlight at {} did not start", node.base);
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends `body` until it is decided: retried while the number's throughput limit (130429,
/// shared by the nodes) says "later". Returns the final status and body.
async fn send_decided(
    client: &reqwest::Client,
    base: &str,
    t: &Tenant,
    body: &Value,
) -> (StatusCode, Value) {
    loop {
        let url = format!("{base}/v23.0/{}/messages", t.phone_id);
        let (status, v) = post_json(client, url, &t.token, body).await;
        if status == StatusCode::OK || v["error"]["code"] != 130429 {
            return (status, v);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Two processes on one database send concurrently to 300 new customers of an unverified
/// business (limit: 250 new customers in 24 h): exactly 250 pass, by the answers and by the
/// rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_processes_on_one_database_admit_exactly_250_new_customers() {
    let Some(db) = TestDb::create("two_processes_on_one_database_admit_exactly_250_new_customers")
    else {
        return;
    };
    let a = Node::start(&db.url).await;
    let b = Node::start(&db.url).await;
    let app_a = TestApp::remote(a.base.clone());
    let t = app_a.tenant().await;
    approved_template(&app_a, &t, "order_update").await;
    let customers: Vec<String> = (0..300).map(|i| format!("1555700{:04}", i)).collect();
    // consent for the 300, and for one more customer to try at the end
    let items: Vec<Value> = customers
        .iter()
        .chain(std::iter::once(&"15557009999".to_string()))
        .map(|c| json!({"wa_id": c, "scope": "all", "source": "import", "proof": "crm export"}))
        .collect();
    let r = app_a
        .post(
            &format!("/greenlight/v1/{}/opt_ins/batch", t.waba_id),
            &t.token,
            json!({ "opt_ins": items }),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.body);
    // node B follows A's clock advance (the template review) within CLOCK_SYNC (500 ms)
    tokio::time::sleep(Duration::from_millis(700)).await;

    // 300 sends, alternating between the nodes, 48 in flight at a time
    let client = reqwest::Client::new();
    let permits = std::sync::Arc::new(tokio::sync::Semaphore::new(48));
    let mut tasks = tokio::task::JoinSet::new();
    for (i, c) in customers.iter().enumerate() {
        let base = if i % 2 == 0 {
            a.base.clone()
        } else {
            b.base.clone()
        };
        let (client, t, permits) = (client.clone(), t.clone(), permits.clone());
        let body = template_body(c, "order_update");
        tasks.spawn(async move {
            let _p = permits.acquire_owned().await.unwrap();
            send_decided(&client, &base, &t, &body).await
        });
    }
    let (mut accepted, mut over_limit, mut other) = (0, 0, Vec::new());
    while let Some(r) = tasks.join_next().await {
        let (status, body) = r.unwrap();
        match (status, body["error"]["code"].as_i64()) {
            (StatusCode::OK, _) => accepted += 1,
            (_, Some(1900200)) => over_limit += 1,
            _ => other.push(format!("{status} {body}")),
        }
    }
    assert!(
        other.is_empty(),
        "{} unexpected answers, e.g. {:?}",
        other.len(),
        other.first()
    );
    assert_eq!((accepted, over_limit), (250, 50));
    assert_eq!(
        db.count("SELECT COUNT(*) FROM messages WHERE direction = 'out' AND type = 'template'"),
        250
    );
    assert_eq!(db.count("SELECT COUNT(DISTINCT wa_id) FROM reach_log"), 250);
    // and both nodes answer the limit the same way now
    for node in [&a, &b] {
        let (status, body) = send_decided(
            &client,
            &node.base,
            &t,
            &template_body("15557009999", "order_update"),
        )
        .await;
        assert_eq!(
            (status, body["error"]["code"].as_i64()),
            (StatusCode::BAD_REQUEST, Some(1900200)),
            "{body}"
        );
    }
}

/// The pacing buckets are shared: two processes sending 60 messages at once to one customer
/// admit the pair's burst of 45 between them (each alone would admit 45).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_processes_share_the_pair_rate_limit() {
    let Some(db) = TestDb::create("two_processes_share_the_pair_rate_limit") else {
        return;
    };
    let a = Node::start(&db.url).await;
    let b = Node::start(&db.url).await;
    let app_a = TestApp::remote(a.base.clone());
    let t = app_a.tenant().await;
    app_a.inbound(&t, "15551234567", "hi").await;
    let client = reqwest::Client::new();
    let started = std::time::Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..60 {
        let base = if i % 2 == 0 {
            a.base.clone()
        } else {
            b.base.clone()
        };
        let (client, t) = (client.clone(), t.clone());
        tasks.spawn(async move {
            let url = format!("{base}/v23.0/{}/messages", t.phone_id);
            let body = json!({ "messaging_product": "whatsapp", "to": "15551234567", "type": "text", "text": { "body": "hello" } });
            let (status, v) = post_json(&client, url, &t.token, &body).await;
            (status, v["error"]["code"].as_i64())
        });
    }
    let (mut accepted, mut paced) = (0u64, 0u64);
    while let Some(r) = tasks.join_next().await {
        match r.unwrap() {
            (StatusCode::OK, _) => accepted += 1,
            (_, Some(131056)) => paced += 1,
            other => panic!("unexpected answer {other:?}"),
        }
    }
    // one token comes back every 6 s
    let refilled = started.elapsed().as_secs() / 6;
    assert!(
        (45..=45 + refilled).contains(&accepted),
        "{accepted} accepted, {paced} paced"
    );
    assert_eq!(accepted + paced, 60);
}
