//! The database goes away and comes back: 503s (Meta's envelope, code 2) while it is away,
//! `/readyz` fails, service resumes by itself, and nothing acknowledged is lost.
//! Runs on PostgreSQL through a TCP proxy the test cuts and restores; skipped (and said so)
//! when PostgreSQL is not reachable, unless CI requires it (`pg.rs`).

use crate::common::*;
use crate::pg::TestDb;
use reqwest::StatusCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};

/// A TCP proxy to `upstream` that can be cut (every connection closed, new ones refused)
/// and restored.
struct Proxy {
    addr: String,
    down: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
    accept: tokio::task::JoinHandle<()>,
}

impl Proxy {
    async fn start(upstream: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let down = Arc::new(AtomicBool::new(false));
        let conns: Arc<Mutex<Vec<tokio::task::AbortHandle>>> = Arc::default();
        let (d, c) = (down.clone(), conns.clone());
        let accept = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if d.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let upstream = upstream.clone();
                let task = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                c.lock().unwrap().push(task.abort_handle());
            }
        });
        Proxy {
            addr,
            down,
            conns,
            accept,
        }
    }

    fn cut(&self) {
        self.down.store(true, Ordering::SeqCst);
        for c in self.conns.lock().unwrap().drain(..) {
            c.abort();
        }
    }

    fn restore(&self) {
        self.down.store(false, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

async fn ready(app: &TestApp) -> StatusCode {
    app.client
        .get(format!("{}/readyz", app.base))
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_database_outage_answers_503_and_service_resumes_without_losing_acknowledged_messages() {
    let Some(db) = TestDb::create(
        "a_database_outage_answers_503_and_service_resumes_without_losing_acknowledged_messages",
    ) else {
        return;
    };
    let proxy = Proxy::start(db.server_addr()).await;
    let url = db.url_via(&proxy.addr);
    let app = spawn_with(|l| l.database_url = Some(url)).await;
    let t = app.tenant().await;
    app.inbound(&t, "15551234567", "hi").await;
    // this test is about availability: pacing off, so that every send is decided by the database
    let r = app
        .post(
            "/greenlight/v1/settings",
            &t.token,
            serde_json::json!({ "compliance": { "pacing": false } }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(ready(&app).await, StatusCode::OK);

    // senders run through the whole outage: every answer is a 200 or a 503 with code 2
    let stop = Arc::new(AtomicBool::new(false));
    let mut senders = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let (client, base, t, stop) = (
            app.client.clone(),
            app.base.clone(),
            t.clone(),
            stop.clone(),
        );
        senders.spawn(async move {
            let (mut ok, mut unavailable, mut other) = (Vec::new(), 0, Vec::new());
            let url = format!("{base}/v23.0/{}/messages", t.phone_id);
            let text = serde_json::json!({ "messaging_product": "whatsapp", "to": "15551234567", "type": "text", "text": { "body": "during" } });
            while !stop.load(Ordering::SeqCst) {
                // the server answers even without its database
                let (status, body) = post_json(&client, url.clone(), &t.token, &text).await;
                match (status, body["error"]["code"].as_i64()) {
                    (StatusCode::OK, _) => {
                        ok.push(body["messages"][0]["id"].as_str().unwrap().to_string())
                    }
                    (StatusCode::SERVICE_UNAVAILABLE, Some(2)) => {
                        assert_eq!(body["error"]["is_transient"], true, "{body}");
                        unavailable += 1;
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                    _ => other.push(format!("{status} {body}")),
                }
            }
            (ok, unavailable, other)
        });
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    proxy.cut();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(ready(&app).await, StatusCode::SERVICE_UNAVAILABLE);
    let r = app.send_text(&t, "15551234567", "cut").await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::SERVICE_UNAVAILABLE, 2),
        "{}",
        r.body
    );
    tokio::time::sleep(Duration::from_millis(500)).await;

    proxy.restore();
    let mut back = false;
    for _ in 0..100 {
        if ready(&app).await == StatusCode::OK {
            back = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        back,
        "/readyz did not recover within 5 s of the database's return"
    );
    let r = app.send_text(&t, "15551234567", "after").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::SeqCst);

    let (mut acknowledged, mut unavailable, mut other) = (Vec::new(), 0, Vec::new());
    while let Some(r) = senders.join_next().await {
        let (ok, u, o) = r.unwrap();
        acknowledged.extend(ok);
        unavailable += u;
        other.extend(o);
    }
    assert!(
        other.is_empty(),
        "answers other than 200 and 503/2: {other:?}"
    );
    assert!(unavailable > 0, "the senders saw the outage");
    assert!(!acknowledged.is_empty());
    let list = acknowledged
        .iter()
        .map(|w| format!("'{w}'"))
        .collect::<Vec<_>>()
        .join(",");
    assert_eq!(
        db.count(&format!(
            "SELECT COUNT(*) FROM messages WHERE id IN ({list})"
        )),
        acknowledged.len() as i64,
        "every acknowledged message is in the database"
    );
    app.stop().await;
}
