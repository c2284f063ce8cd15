//! Shared state of one running server.

use crate::config::Config;
use greenlight_domain::clock::{Clock, OffsetClock};
use greenlight_domain::Millis;
use greenlight_store::{Principal, Store, StoreError};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use tokio::sync::Notify;

pub fn wall_ms() -> Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as Millis)
        .unwrap_or(0)
}

pub type SandboxClock = OffsetClock<fn() -> Millis>;

/// What every request handler shares: one `Arc`, so that the clone each handler and middleware
/// takes is one atomic increment, not one per field (each a cache line the two cores pass back
/// and forth at the full rate).
#[derive(Clone)]
pub struct AppState(Arc<AppInner>);

impl std::ops::Deref for AppState {
    type Target = AppInner;
    fn deref(&self) -> &AppInner {
        &self.0
    }
}

/// The fields of [`AppState`].
pub struct AppInner {
    pub config: Arc<Config>,
    pub store: Arc<dyn Store>,
    pub clock: Arc<SandboxClock>,
    /// Access-token hash → principal. Tokens are never kept in clear.
    principals: Arc<RwLock<HashMap<[u8; 32], Arc<Principal>>>>,
    pub addr: SocketAddr,
    /// Wakes the scheduler (clock advanced, new work).
    pub due: Arc<Notify>,
    /// Serialises clock advances.
    pub clock_lock: Arc<tokio::sync::Mutex<()>>,
    pub store_closer: Option<Arc<dyn Fn() + Send + Sync>>,
    /// Key of media URL signatures (persisted in the database).
    pub url_secret: Arc<String>,
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Gateway mode: the upstream client and the key of the tenants' upstream secrets.
    pub gateway: Option<Arc<crate::gateway::Gateway>>,
}

impl AppState {
    pub async fn new(
        config: Config,
        store: Arc<dyn Store>,
        addr: SocketAddr,
        store_closer: Option<Arc<dyn Fn() + Send + Sync>>,
    ) -> anyhow::Result<Self> {
        let offset = store
            .clock_offset()
            .await
            .map_err(|e| anyhow::anyhow!("reading the clock offset: {e}"))?;
        let clock = Arc::new(OffsetClock::new(wall_ms as fn() -> Millis, offset));
        let url_secret = Arc::new(
            store
                .instance_secret("media_url")
                .await
                .map_err(|e| anyhow::anyhow!("reading the instance secret: {e}"))?,
        );
        let config_ref = config.clone();
        Ok(AppState(Arc::new(AppInner {
            config: Arc::new(config),
            store,
            clock,
            principals: Arc::new(RwLock::new(HashMap::new())),
            addr,
            due: Arc::new(Notify::new()),
            clock_lock: Arc::new(tokio::sync::Mutex::new(())),
            store_closer,
            url_secret,
            metrics: Arc::new(crate::metrics::Metrics::default()),
            gateway: crate::gateway::Gateway::new(&config_ref)?.map(Arc::new),
        })))
    }

    pub fn now(&self) -> Millis {
        self.clock.now()
    }

    /// Base URL for links greenlight hands out.
    pub fn public_url(&self) -> String {
        self.config
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.addr))
    }

    /// The principal of a token, from the cache (keyed by the token's SHA-256, never the token)
    /// or the store (by the digest in hex, as tokens are stored).
    pub async fn principal(&self, token: &str) -> Result<Option<Arc<Principal>>, StoreError> {
        let digest = greenlight_store::ids::token_digest(token);
        if let Some(p) = self
            .principals
            .read()
            .ok()
            .and_then(|m| m.get(&digest).cloned())
        {
            return Ok(Some(p));
        }
        let p = self
            .store
            .principal_by_token_hash(&hex::encode(digest))
            .await?;
        Ok(p.map(|p| {
            let p = Arc::new(p);
            if let Ok(mut m) = self.principals.write() {
                m.insert(digest, p.clone());
            }
            p
        }))
    }

    /// Forget cached principals of a tenant (its numbers or WABAs changed).
    pub fn invalidate_tenant(&self, business_id: &str) {
        if let Ok(mut m) = self.principals.write() {
            m.retain(|_, p| p.scope.business_id != business_id);
        }
    }
}
