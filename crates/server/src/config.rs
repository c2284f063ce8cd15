//! Configuration: commented defaults embedded in the binary (`defaults.toml`), then an optional
//! TOML file, then `GREENLIGHT_*` environment variables, then flags. Validated once at start
//! with messages that say what to fix. Secrets are redacted from `Debug`.

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;

pub const DEFAULTS: &str = include_str!("defaults.toml");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Sandbox,
    Gateway,
}

#[derive(Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub database_url: String,
    pub mode: Mode,
    pub upstream_url: String,
    pub admin_token: String,
    /// True when the admin token was generated at start (so it is printed once).
    pub admin_token_generated: bool,
    pub media_dir: PathBuf,
    pub public_url: Option<String>,
    pub delivered_delay_ms: u64,
    pub sqlite_synchronous: String,
    pub demo_tenant: bool,
    pub log: String,
    pub template_review_delay_seconds: u64,
    pub webhooks: crate::webhooks::config::WebhookConfig,
    /// Gateway mode: the key that encrypts the tenants' upstream credentials at rest.
    pub secrets_key: Option<[u8; 32]>,
    /// Gateway mode: how long a forwarded call may take (connect + answer).
    pub upstream_timeout_ms: u64,
    /// Gateway mode: whether review findings on a template create/edit block it or only warn.
    pub template_lint: TemplateLint,
}

/// What the gateway does with template review findings before forwarding a create or edit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TemplateLint {
    /// Refuse the request with the findings; nothing reaches the upstream.
    Block,
    /// Forward it, with the findings in the `greenlight-template-lint` header.
    Warn,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("database_url", &redact_url(&self.database_url))
            .field("mode", &self.mode)
            .field("upstream_url", &redact_url(&self.upstream_url))
            .field("admin_token", &"<redacted>")
            .field("media_dir", &self.media_dir)
            .field("public_url", &self.public_url)
            .field("delivered_delay_ms", &self.delivered_delay_ms)
            .field("sqlite_synchronous", &self.sqlite_synchronous)
            .field("demo_tenant", &self.demo_tenant)
            .field(
                "template_review_delay_seconds",
                &self.template_review_delay_seconds,
            )
            .field("webhooks", &self.webhooks)
            .field(
                "secrets_key",
                &self.secrets_key.as_ref().map(|_| "<redacted>"),
            )
            .field("upstream_timeout_ms", &self.upstream_timeout_ms)
            .field("template_lint", &self.template_lint)
            .finish()
    }
}

/// Hides a password in a database URL.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &creds[..c], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// Every key, all optional: one layer of configuration.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Layer {
    pub listen: Option<String>,
    pub database_url: Option<String>,
    pub mode: Option<String>,
    pub upstream_url: Option<String>,
    pub admin_token: Option<String>,
    pub media_dir: Option<String>,
    pub public_url: Option<String>,
    pub delivered_delay_ms: Option<u64>,
    pub sqlite_synchronous: Option<String>,
    pub demo_tenant: Option<bool>,
    pub log: Option<String>,
    pub template_review_delay_seconds: Option<u64>,
    pub webhooks: Option<crate::webhooks::config::WebhookLayer>,
    pub secrets_key: Option<String>,
    pub upstream_timeout_ms: Option<u64>,
    pub template_lint: Option<String>,
}

macro_rules! overlay {
    ($base:ident, $top:ident, $($f:ident),*) => { $( if $top.$f.is_some() { $base.$f = $top.$f.clone(); } )* };
}

impl Layer {
    pub fn over(mut self, top: &Layer) -> Layer {
        overlay!(
            self,
            top,
            listen,
            database_url,
            mode,
            upstream_url,
            admin_token,
            media_dir,
            public_url,
            delivered_delay_ms,
            sqlite_synchronous,
            demo_tenant,
            log,
            template_review_delay_seconds,
            secrets_key,
            upstream_timeout_ms,
            template_lint
        );
        self.webhooks = crate::webhooks::config::WebhookLayer::merge(
            self.webhooks.take(),
            top.webhooks.as_ref(),
        );
        self
    }

    pub fn parse_toml(text: &str, origin: &str) -> Result<Layer, String> {
        toml::from_str(text).map_err(|e| format!("{origin}: {e}"))
    }

    /// `GREENLIGHT_*` variables from an environment (injected for tests).
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<Layer, String> {
        let num = |k: &str| -> Result<Option<u64>, String> {
            get(k)
                .map(|v| {
                    v.trim()
                        .parse::<u64>()
                        .map_err(|_| format!("{k}={v:?} must be a whole number"))
                })
                .transpose()
        };
        let boolean = |k: &str| -> Result<Option<bool>, String> {
            get(k)
                .map(|v| match v.trim().to_ascii_lowercase().as_str() {
                    "1" | "true" | "yes" | "on" => Ok(true),
                    "0" | "false" | "no" | "off" => Ok(false),
                    _ => Err(format!("{k}={v:?} must be true or false")),
                })
                .transpose()
        };
        Ok(Layer {
            listen: get("GREENLIGHT_LISTEN"),
            database_url: get("GREENLIGHT_DATABASE_URL"),
            mode: get("GREENLIGHT_MODE"),
            upstream_url: get("GREENLIGHT_UPSTREAM_URL"),
            admin_token: get("GREENLIGHT_ADMIN_TOKEN"),
            media_dir: get("GREENLIGHT_MEDIA_DIR"),
            public_url: get("GREENLIGHT_PUBLIC_URL"),
            delivered_delay_ms: num("GREENLIGHT_DELIVERED_DELAY_MS")?,
            sqlite_synchronous: get("GREENLIGHT_SQLITE_SYNCHRONOUS"),
            demo_tenant: boolean("GREENLIGHT_DEMO_TENANT")?,
            log: get("GREENLIGHT_LOG"),
            template_review_delay_seconds: num("GREENLIGHT_TEMPLATE_REVIEW_DELAY_SECONDS")?,
            webhooks: crate::webhooks::config::WebhookLayer::from_env(&get)?,
            secrets_key: get("GREENLIGHT_SECRETS_KEY"),
            upstream_timeout_ms: num("GREENLIGHT_UPSTREAM_TIMEOUT_MS")?,
            template_lint: get("GREENLIGHT_TEMPLATE_LINT"),
        })
    }

    /// Validates a complete layer (defaults underneath) into a [`Config`]. Every problem is
    /// reported, each saying what to change.
    pub fn validate(self) -> Result<Config, Vec<String>> {
        let mut errs = Vec::new();
        let listen = self.listen.unwrap_or_default();
        let listen_addr = listen.parse::<SocketAddr>().map_err(|_| {
            errs.push(format!("listen = {listen:?} is not an address; write host:port, e.g. 127.0.0.1:8080 (port 0 picks a free port)"))
        });
        let database_url = self.database_url.unwrap_or_default();
        if !greenlight_store::postgres::is_postgres_url(&database_url)
            && greenlight_store::sqlite::path_from_url(&database_url).is_none()
        {
            errs.push(format!(
                "database_url = {:?} has an unknown scheme; accepted: sqlite://<path> (e.g. sqlite://greenlight.db), postgres://<user>@<host>/<database> or postgresql://…",
                redact_url(&database_url)
            ));
        }
        let mode = match self.mode.as_deref().unwrap_or("sandbox") {
            "sandbox" => Mode::Sandbox,
            "gateway" => Mode::Gateway,
            other => {
                errs.push(format!(
                    "mode = {other:?} is not a mode; use \"sandbox\" or \"gateway\""
                ));
                Mode::Sandbox
            }
        };
        let upstream_url = self.upstream_url.unwrap_or_default();
        if !(upstream_url.starts_with("http://") || upstream_url.starts_with("https://")) {
            errs.push(format!(
                "upstream_url = {upstream_url:?} must start with http:// or https://"
            ));
        }
        let mut admin_token = self.admin_token.unwrap_or_default();
        let mut generated = false;
        if admin_token.is_empty() {
            admin_token = greenlight_store::ids::secret(24);
            generated = true;
        } else if admin_token.len() < 16 {
            errs.push("admin_token is shorter than 16 characters; use a long random value (e.g. `openssl rand -hex 24`)".to_string());
        }
        let public_url = self
            .public_url
            .filter(|s| !s.is_empty())
            .map(|s| s.trim_end_matches('/').to_string());
        if let Some(p) = &public_url {
            if !(p.starts_with("http://") || p.starts_with("https://")) {
                errs.push(format!(
                    "public_url = {p:?} must start with http:// or https://"
                ));
            }
        }
        let sqlite_synchronous = self
            .sqlite_synchronous
            .unwrap_or_default()
            .to_ascii_uppercase();
        if !matches!(sqlite_synchronous.as_str(), "FULL" | "NORMAL") {
            errs.push(format!(
                "sqlite_synchronous = {sqlite_synchronous:?} must be FULL or NORMAL"
            ));
        }
        let delivered_delay_ms = self.delivered_delay_ms.unwrap_or(200);
        if delivered_delay_ms > 60_000 {
            errs.push(format!("delivered_delay_ms = {delivered_delay_ms} is more than a minute; Meta's delivered follows within seconds"));
        }
        if self
            .template_review_delay_seconds
            .is_some_and(|s| s > 24 * 3600)
        {
            errs.push("template_review_delay_seconds is more than a day; Meta decides most templates within minutes (at most 24 hours)".to_string());
        }
        let webhooks = self.webhooks.unwrap_or_default().validate(mode, &mut errs);
        let secrets_key = match self.secrets_key.as_deref().map(str::trim) {
            None | Some("") => {
                if mode == Mode::Gateway {
                    errs.push("secrets_key is required in gateway mode (it encrypts the tenants' Meta tokens and app secrets at rest); set GREENLIGHT_SECRETS_KEY to 32 random bytes in hex, e.g. `openssl rand -hex 32`".to_string());
                }
                None
            }
            Some(k) => match parse_key(k) {
                Some(k) => Some(k),
                None => {
                    errs.push("secrets_key must be 32 bytes written as 64 hex digits or in base64 (e.g. `openssl rand -hex 32`)".to_string());
                    None
                }
            },
        };
        let upstream_timeout_ms = self.upstream_timeout_ms.unwrap_or(30_000);
        if !(100..=300_000).contains(&upstream_timeout_ms) {
            errs.push(format!("upstream_timeout_ms = {upstream_timeout_ms} must be between 100 and 300000 (5 minutes)"));
        }
        let template_lint = match self.template_lint.as_deref().unwrap_or("block") {
            "block" => TemplateLint::Block,
            "warn" => TemplateLint::Warn,
            other => {
                errs.push(format!(
                    "template_lint = {other:?} must be \"block\" or \"warn\""
                ));
                TemplateLint::Block
            }
        };
        if !errs.is_empty() {
            return Err(errs);
        }
        Ok(Config {
            listen: listen_addr.unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 8080))),
            database_url,
            mode,
            upstream_url,
            admin_token,
            admin_token_generated: generated,
            media_dir: PathBuf::from(self.media_dir.unwrap_or_else(|| "greenlight-media".into())),
            public_url,
            delivered_delay_ms,
            sqlite_synchronous,
            demo_tenant: self.demo_tenant.unwrap_or(true),
            log: self.log.unwrap_or_else(|| "info".into()),
            template_review_delay_seconds: self.template_review_delay_seconds.unwrap_or(60),
            webhooks,
            secrets_key,
            upstream_timeout_ms,
            template_lint,
        })
    }
}

/// A 32-byte key in hex (64 digits) or base64.
fn parse_key(k: &str) -> Option<[u8; 32]> {
    use base64::Engine;
    let bytes = if k.len() == 64 && k.bytes().all(|b| b.is_ascii_hexdigit()) {
        hex::decode(k).ok()?
    } else {
        base64::engine::general_purpose::STANDARD
            .decode(k)
            .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(k))
            .ok()?
    };
    bytes.try_into().ok()
}

/// Defaults, then the file, then the environment, then flags.
pub fn load(file: Option<&str>, env: &Layer, flags: &Layer) -> Result<Config, Vec<String>> {
    let defaults = Layer::parse_toml(DEFAULTS, "built-in defaults").map_err(|e| vec![e])?;
    let mut layer = defaults;
    if let Some(path) = file {
        let text =
            std::fs::read_to_string(path).map_err(|e| vec![format!("config file {path}: {e}")])?;
        layer = layer.over(&Layer::parse_toml(&text, path).map_err(|e| vec![e])?);
    }
    layer.over(env).over(flags).validate()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Layer {
        let map: std::collections::HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Layer::from_env(|k| map.get(k).cloned()).unwrap()
    }

    #[test]
    fn defaults_are_valid() {
        let c = load(None, &Layer::default(), &Layer::default()).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.database_url, "sqlite://greenlight.db");
        assert_eq!(c.mode, Mode::Sandbox);
        assert!(c.admin_token_generated);
    }

    #[test]
    fn env_overrides_defaults_and_flags_override_env() {
        let e = env(&[
            ("GREENLIGHT_LISTEN", "127.0.0.1:9000"),
            ("GREENLIGHT_ADMIN_TOKEN", "0123456789abcdef0"),
        ]);
        let f = Layer {
            listen: Some("127.0.0.1:9001".into()),
            ..Layer::default()
        };
        let c = load(None, &e, &f).unwrap();
        assert_eq!(c.listen.port(), 9001);
        assert_eq!(c.admin_token, "0123456789abcdef0");
        assert!(!c.admin_token_generated);
    }

    #[test]
    fn every_error_is_reported_with_a_fix() {
        let e = env(&[
            ("GREENLIGHT_LISTEN", "nope"),
            ("GREENLIGHT_DATABASE_URL", "mysql://x"),
            ("GREENLIGHT_MODE", "prod"),
        ]);
        let errs = load(None, &e, &Layer::default()).unwrap_err();
        assert_eq!(errs.len(), 3, "{errs:?}");
        assert!(errs[0].contains("host:port"));
        assert!(errs[1].contains("accepted: sqlite://"));
        assert!(errs[2].contains("\"sandbox\""));
    }

    #[test]
    fn bad_env_number_is_refused() {
        let map = [(
            "GREENLIGHT_DELIVERED_DELAY_MS".to_string(),
            "soon".to_string(),
        )];
        let r = Layer::from_env(|k| map.iter().find(|(a, _)| a == k).map(|(_, v)| v.clone()));
        assert!(r.unwrap_err().contains("whole number"));
    }

    #[test]
    fn unknown_file_key_is_refused() {
        assert!(Layer::parse_toml("lsiten = \"x\"", "f.toml")
            .unwrap_err()
            .contains("unknown field"));
    }

    #[test]
    fn gateway_needs_a_secrets_key() {
        let errs = load(
            None,
            &env(&[("GREENLIGHT_MODE", "gateway")]),
            &Layer::default(),
        )
        .unwrap_err();
        assert!(errs[0].contains("GREENLIGHT_SECRETS_KEY"), "{errs:?}");
        let key = "ab".repeat(32);
        let c = load(
            None,
            &env(&[
                ("GREENLIGHT_MODE", "gateway"),
                ("GREENLIGHT_SECRETS_KEY", &key),
                ("GREENLIGHT_TEMPLATE_LINT", "warn"),
            ]),
            &Layer::default(),
        )
        .unwrap();
        assert_eq!(c.mode, Mode::Gateway);
        assert_eq!(c.template_lint, TemplateLint::Warn);
        assert_eq!(c.upstream_url, "https://graph.facebook.com");
        assert!(!format!("{c:?}").contains(&key));
    }

    #[test]
    fn secrets_are_redacted() {
        let c = load(
            None,
            &env(&[("GREENLIGHT_ADMIN_TOKEN", "supersecretadmintoken")]),
            &Layer::default(),
        )
        .unwrap();
        assert!(!format!("{c:?}").contains("supersecret"));
        assert_eq!(redact_url("postgres://u:pw@h/db"), "postgres://u:***@h/db");
    }
}
