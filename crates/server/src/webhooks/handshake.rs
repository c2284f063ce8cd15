//! Meta's verification handshake (cloud-api-facts.md §10.1): before a callback URL is
//! accepted, greenlight calls
//! `GET <url>?hub.mode=subscribe&hub.challenge=<random>&hub.verify_token=<token>` and requires
//! a 200 whose body is the challenge. Otherwise the call that set the URL fails with a 400
//! `(#2200) Callback verification failed …` saying why: no answer, an HTTP status, or a body
//! that is not the challenge.

use super::allow::AllowList;
use super::config::WebhookConfig;
use crate::state::AppState;
use greenlight_domain::ApiError;
use greenlight_store::NewTenant;
use rand::Rng;

/// Meta's code for a failed callback verification.
pub const VERIFICATION_FAILED: i64 = 2200;

fn failed(why: impl std::fmt::Display, fix: &str) -> ApiError {
    ApiError::new(
        400,
        VERIFICATION_FAILED,
        format!("Callback verification failed with the following errors: {why}"),
        fix.to_string(),
    )
}

const FIX: &str = "The callback must answer GET ?hub.mode=subscribe&hub.challenge=<n>&hub.verify_token=<your token> with HTTP 200 and exactly <n> as the body when the verify token matches.";

/// The text of an error and its sources (`error sending request: connection refused`).
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let t = s.to_string();
        if !out.contains(&t) {
            out.push_str(": ");
            out.push_str(&t);
        }
        cur = s.source();
    }
    out
}

/// Parses and checks a callback URL against the allow-list (400 #100 when refused).
pub async fn check_callback_url(cfg: &WebhookConfig, url: &str) -> Result<reqwest::Url, ApiError> {
    let parsed = reqwest::Url::parse(url.trim()).map_err(|e| {
        ApiError::invalid_parameter(format!(
            "the callback URL {url:?} is not a valid URL ({e}); use http(s)://host[:port]/path"
        ))
    })?;
    AllowList::from_config(cfg)
        .check_url(&parsed)
        .await
        .map_err(|why| {
            ApiError::invalid_parameter(format!("the callback URL is not allowed: {why}"))
        })?;
    Ok(parsed)
}

/// Runs the handshake against `url` with `verify_token`.
pub async fn verify(cfg: &WebhookConfig, url: &str, verify_token: &str) -> Result<(), ApiError> {
    let mut target = check_callback_url(cfg, url).await?;
    let challenge = rand::rng()
        .random_range(1_000_000_000u64..10_000_000_000)
        .to_string();
    target
        .query_pairs_mut()
        .append_pair("hub.mode", "subscribe")
        .append_pair("hub.challenge", &challenge)
        .append_pair("hub.verify_token", verify_token);
    let client = super::client(cfg).map_err(|e| {
        tracing::error!(error = %e, "cannot build the webhook HTTP client");
        ApiError::internal()
    })?;
    let mut resp = match client.get(target).send().await {
        Ok(r) => r,
        Err(e) if e.is_timeout() => {
            return Err(failed(
                format!(
                    "no answer from the callback URL within {} ms",
                    cfg.timeout_ms
                ),
                FIX,
            ))
        }
        Err(e) => {
            return Err(failed(
                format!(
                    "no answer from the callback URL ({})",
                    error_chain(&e.without_url())
                ),
                FIX,
            ))
        }
    };
    let status = resp.status();
    // The challenge is a few digits: read a little, never a receiver's whole answer.
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = resp.chunk().await {
        body.extend_from_slice(&chunk);
        if body.len() > 200 {
            break;
        }
    }
    let text = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
    if status != reqwest::StatusCode::OK {
        return Err(failed(
            format!(
                "HTTP Status Code = {}; HTTP Message = {}",
                status.as_u16(),
                status.canonical_reason().unwrap_or("")
            ),
            &format!(
                "{FIX} It answered HTTP {} (a wrong verify token is usually answered 403).",
                status.as_u16()
            ),
        ));
    }
    if text.trim() != challenge {
        return Err(failed(
            // The body is not echoed: a callback URL must not become a way to read other servers.
            format!(
                "the callback answered 200 but its body ({} bytes) is not the hub.challenge value",
                text.len()
            ),
            FIX,
        ));
    }
    Ok(())
}

/// `POST /admin/v1/tenants` with a `webhook`: the handshake before the tenant is stored.
pub async fn verify_new_tenant(state: &AppState, t: &NewTenant) -> Result<(), ApiError> {
    match &t.webhook {
        Some(w) => verify(&state.config.webhooks, &w.callback_url, &w.verify_token).await,
        None => Ok(()),
    }
}
