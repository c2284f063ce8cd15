//! Webhook receiver for greenlight's benchmark (bench/run.sh, webhooks row).
//!
//! `greenlight-bench-receiver <listen addr> <secrets file> <verify token>` prints
//! `listening on <addr>` and serves:
//! - `GET /hook/<key>?hub.mode=subscribe&hub.challenge=C&hub.verify_token=T`: echoes C when T is
//!   the verify token (Meta's handshake), 403 otherwise;
//! - `POST /hook/<key>`: checks `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret, body)>`
//!   with the secret of `<key>` (the secrets file holds `key secret` lines; it is read again when
//!   a key is unknown) and counts the event as `ok` or `bad_signature`; answers 200. In `hold`
//!   mode, the answer waits until the mode becomes `accept` (greenlight then has its deliveries
//!   in flight and claims nothing more, so its outbox fills up);
//! - `POST /mode/accept`, `POST /mode/hold`: switch modes (`hold` at start);
//! - `GET /stats`: `ok=N bad_signature=N held=N connections=N last_ok_ns=N now_ns=N` (connections
//!   accepted so far; times in nanoseconds since start).

use hmac::{Hmac, Mac};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use sha2::Sha256;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Instant;
use tokio::net::TcpListener;
use tokio::sync::Notify;

struct State {
    secrets_path: String,
    verify_token: String,
    secrets: RwLock<HashMap<String, Vec<u8>>>,
    accept: AtomicBool,
    accepted: Notify,
    ok: AtomicU64,
    bad: AtomicU64,
    held: AtomicU64,
    connections: AtomicU64,
    last_ok_ns: AtomicU64,
    start: Instant,
}

impl State {
    fn secret(&self, key: &str) -> Option<Vec<u8>> {
        if let Some(s) = self.secrets.read().unwrap().get(key) {
            return Some(s.clone());
        }
        let text = std::fs::read_to_string(&self.secrets_path).ok()?;
        let mut map = self.secrets.write().unwrap();
        for line in text.lines() {
            let mut it = line.split_whitespace();
            if let (Some(k), Some(s)) = (it.next(), it.next()) {
                map.insert(k.to_string(), s.as_bytes().to_vec());
            }
        }
        map.get(key).cloned()
    }
}

fn answer(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r
}

fn query_param<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query
        .split('&')
        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
}

async fn handle(
    st: Arc<State>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    match (req.method().clone(), path.as_str()) {
        (Method::GET, "/stats") => Ok(answer(
            StatusCode::OK,
            format!(
                "ok={} bad_signature={} held={} connections={} last_ok_ns={} now_ns={}\n",
                st.ok.load(Ordering::SeqCst),
                st.bad.load(Ordering::SeqCst),
                st.held.load(Ordering::SeqCst),
                st.connections.load(Ordering::SeqCst),
                st.last_ok_ns.load(Ordering::SeqCst),
                st.start.elapsed().as_nanos()
            ),
        )),
        (Method::POST, "/mode/accept") => {
            st.accept.store(true, Ordering::SeqCst);
            st.accepted.notify_waiters();
            Ok(answer(StatusCode::OK, "accept\n"))
        }
        (Method::POST, "/mode/hold") => {
            st.accept.store(false, Ordering::SeqCst);
            Ok(answer(StatusCode::OK, "hold\n"))
        }
        (Method::GET, p) if p.starts_with("/hook/") => {
            let challenge = query_param(&query, "hub.challenge").unwrap_or("");
            if query_param(&query, "hub.mode") == Some("subscribe")
                && query_param(&query, "hub.verify_token") == Some(st.verify_token.as_str())
            {
                Ok(answer(StatusCode::OK, challenge.to_string()))
            } else {
                Ok(answer(StatusCode::FORBIDDEN, "wrong verify token\n"))
            }
        }
        (Method::POST, p) if p.starts_with("/hook/") => {
            let key = p["/hook/".len()..].to_string();
            let sig = req
                .headers()
                .get("x-hub-signature-256")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("sha256="))
                .and_then(|h| hex::decode(h).ok());
            let body = req.into_body().collect().await?.to_bytes();
            if !st.accept.load(Ordering::SeqCst) {
                st.held.fetch_add(1, Ordering::SeqCst);
                let notified = st.accepted.notified();
                if !st.accept.load(Ordering::SeqCst) {
                    notified.await;
                }
                st.held.fetch_sub(1, Ordering::SeqCst);
            }
            // checked after the hold: by then the tenant's secret is in the file
            let valid = match (sig, st.secret(&key)) {
                (Some(sig), Some(secret)) => {
                    let mut mac = Hmac::<Sha256>::new_from_slice(&secret).expect("any key length");
                    mac.update(&body);
                    mac.verify_slice(&sig).is_ok()
                }
                _ => false,
            };
            if valid {
                st.ok.fetch_add(1, Ordering::SeqCst);
                st.last_ok_ns
                    .store(st.start.elapsed().as_nanos() as u64, Ordering::SeqCst);
            } else {
                st.bad.fetch_add(1, Ordering::SeqCst);
            }
            Ok(answer(StatusCode::OK, ""))
        }
        _ => Ok(answer(StatusCode::NOT_FOUND, "not found\n")),
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 1)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 4 {
        eprintln!("usage: {} <listen addr> <secrets file> <verify token>", args[0]);
        std::process::exit(2);
    }
    let listener = TcpListener::bind(&args[1]).await.expect("bind");
    println!("listening on {}", listener.local_addr().expect("addr"));
    let st = Arc::new(State {
        secrets_path: args[2].clone(),
        verify_token: args[3].clone(),
        secrets: RwLock::new(HashMap::new()),
        accept: AtomicBool::new(false),
        accepted: Notify::new(),
        ok: AtomicU64::new(0),
        bad: AtomicU64::new(0),
        held: AtomicU64::new(0),
        connections: AtomicU64::new(0),
        last_ok_ns: AtomicU64::new(0),
        start: Instant::now(),
    });
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(s) => s,
            Err(_) => continue,
        };
        let _ = stream.set_nodelay(true);
        st.connections.fetch_add(1, Ordering::SeqCst);
        let st = st.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| handle(st.clone(), req));
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}
