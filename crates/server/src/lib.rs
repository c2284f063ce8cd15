//! greenlight's server: configuration, the HTTP surfaces (thin: they parse, authenticate and
//! call the store), and the background workers. `run(config, listener)` starts everything; the
//! binary and the integration tests both use it.
#![forbid(unsafe_code)]

pub mod config;
pub mod gateway;
pub mod http;
pub mod import;
pub mod lint;
pub mod metrics;
pub mod state;
pub mod webhooks;
pub mod workers;

use anyhow::Context;
use config::Config;
use greenlight_domain::clock::Clock;
use greenlight_store::postgres::PostgresOptions;
use greenlight_store::sqlite::{SqlStore, SqliteOptions};
use greenlight_store::{NewPhoneNumber, NewTenant, Store};
use state::AppState;
use std::sync::Arc;
use tokio::net::TcpListener;

/// A running server: its address and a way to stop it.
pub struct Running {
    pub addr: std::net::SocketAddr,
    pub state: AppState,
    shutdown: tokio::sync::watch::Sender<bool>,
    pub join: tokio::task::JoinHandle<()>,
}

impl Running {
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }
    /// Stops accepting, finishes in-flight requests, stops the workers.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        let _ = self.join.await;
        if let Some(close) = self.state.store_closer.as_ref() {
            close();
        }
    }
}

/// Closes a store's background resources (the SQLite writer thread) on shutdown.
pub type StoreCloser = Arc<dyn Fn() + Send + Sync>;

pub fn open_store(config: &Config) -> anyhow::Result<(Arc<dyn Store>, Option<StoreCloser>)> {
    let url = &config.database_url;
    let store = if greenlight_store::postgres::is_postgres_url(url) {
        Arc::new(
            SqlStore::open_postgres(url, PostgresOptions::default()).map_err(|e| {
                anyhow::anyhow!("cannot open the database {}: {e}", config::redact_url(url))
            })?,
        )
    } else {
        let path = greenlight_store::sqlite::path_from_url(url)
            .context("database_url must be sqlite://<path> or postgres://…")?;
        Arc::new(
            SqlStore::open(
                &path,
                SqliteOptions {
                    synchronous: config.sqlite_synchronous.clone(),
                    ..Default::default()
                },
            )
            .map_err(|e| anyhow::anyhow!("cannot open the database {path}: {e}"))?,
        )
    };
    let closer_store = store.clone();
    let closer: StoreCloser = Arc::new(move || closer_store.close());
    Ok((store, Some(closer)))
}

/// Starts greenlight on `listener`.
pub async fn run(config: Config, listener: TcpListener) -> anyhow::Result<Running> {
    let addr = listener.local_addr()?;
    let (store, closer) = open_store(&config)?;
    let state = AppState::new(config, store, addr, closer).await?;
    let (tx, rx) = tokio::sync::watch::channel(false);
    workers::spawn(state.clone(), rx.clone());
    // Paths without a version segment are routed as the default version (before routing).
    let app = tower::Layer::layer(
        &tower::util::MapRequestLayer::new(http::rewrite_versionless),
        http::router(state.clone()),
    );
    let mut rx2 = rx.clone();
    let join = tokio::spawn(async move {
        let make = axum::ServiceExt::<axum::extract::Request>::into_make_service(app);
        let serve = axum::serve(listener, make).with_graceful_shutdown(async move {
            let _ = rx2.wait_for(|v| *v).await;
        });
        if let Err(e) = serve.await {
            tracing::error!(error = %e, "server stopped with an error");
        }
    });
    Ok(Running {
        addr,
        state,
        shutdown: tx,
        join,
    })
}

/// On an empty database in sandbox mode: a demo tenant, printed with a ready curl line.
pub async fn ensure_demo_tenant(state: &AppState) -> anyhow::Result<Option<String>> {
    if state.config.mode != config::Mode::Sandbox || !state.config.demo_tenant {
        return Ok(None);
    }
    if state
        .store
        .tenant_count()
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?
        > 0
    {
        return Ok(None);
    }
    let t = state
        .store
        .create_tenant(
            NewTenant {
                business_name: "Demo Business".into(),
                verified: false,
                phone_numbers: vec![NewPhoneNumber {
                    display_phone_number: "+1 555 010 0001".into(),
                    verified_name: "Demo Business".into(),
                }],
                webhook: None,
            },
            state.clock.now(),
        )
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let base = state.public_url();
    let phone = &t.phone_numbers[0].id;
    Ok(Some(format!(
        "Demo tenant created (sandbox):\n  business_id   {}\n  waba_id       {}\n  phone_number  {} (+1 555 010 0001)\n  app_id        {}\n  app_secret    {}\n  access_token  {}\n\n\
         A customer writes first (this opens the 24-hour window):\n  curl -s -X POST {base}/sandbox/v1/{phone}/inbound -H 'Authorization: Bearer {tok}' -H 'Content-Type: application/json' \\\n    -d '{{\"from\":\"15551234567\",\"profile_name\":\"Alice\",\"type\":\"text\",\"text\":{{\"body\":\"hi\"}}}}'\n\n\
         Then answer within the window:\n  curl -s -X POST {base}/v23.0/{phone}/messages -H 'Authorization: Bearer {tok}' -H 'Content-Type: application/json' \\\n    -d '{{\"messaging_product\":\"whatsapp\",\"to\":\"15551234567\",\"type\":\"text\",\"text\":{{\"body\":\"Hello from greenlight\"}}}}'\n",
        t.business_id,
        t.waba_id,
        phone,
        t.app_id,
        t.app_secret,
        t.access_token,
        tok = t.access_token,
    )))
}
