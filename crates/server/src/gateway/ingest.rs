//! Meta's webhooks into the gateway: `GET /webhooks/meta` (the subscription handshake) and
//! `POST /webhooks/meta` (events). An event is learned from and relayed only when its
//! `X-Hub-Signature-256` verifies with the app secret of the tenant owning every entry.

use super::*;
use crate::http::{query_param, secure_eq};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use greenlight_store::{IngestChange, Upstream};
use serde_json::Value;
use sha2::{Digest, Sha256};

pub async fn handshake(State(state): State<AppState>, uri: Uri) -> Response {
    let mode = query_param(&uri, "hub.mode");
    let token = query_param(&uri, "hub.verify_token").unwrap_or_default();
    let challenge = query_param(&uri, "hub.challenge").unwrap_or_default();
    if mode.as_deref() != Some("subscribe") || token.is_empty() {
        return (
            StatusCode::FORBIDDEN,
            "hub.mode=subscribe and hub.verify_token are required",
        )
            .into_response();
    }
    let hash = hex::encode(Sha256::digest(token.as_bytes()));
    match state.store.verify_token_known(&hash).await {
        Ok(true) => (
            StatusCode::OK,
            [(axum::http::header::CONTENT_TYPE, "text/plain")],
            challenge,
        )
            .into_response(),
        Ok(false) => {
            tracing::warn!("webhook handshake with an unknown verify token refused");
            (StatusCode::FORBIDDEN, "unknown verify token").into_response()
        }
        Err(e) => HttpError::from(e).into_response(),
    }
}

fn refuse(status: StatusCode, why: &str) -> Response {
    tracing::warn!(%status, why, "a webhook from the upstream was refused; nothing learned");
    let e = match status {
        StatusCode::UNAUTHORIZED => ApiError::invalid_token(why),
        StatusCode::FORBIDDEN => ApiError::permission_denied(why),
        _ => ApiError::invalid_parameter(why),
    };
    HttpError(e).into_response()
}

pub async fn receive(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(sig) = headers
        .get("x-hub-signature-256")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("sha256="))
        .map(str::to_ascii_lowercase)
    else {
        return refuse(StatusCode::UNAUTHORIZED, "missing X-Hub-Signature-256");
    };
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return refuse(StatusCode::BAD_REQUEST, "the body is not JSON");
    };
    // Entries grouped by the tenant owning them (a WABA id, or a number in the metadata).
    let mut groups: Vec<(Upstream, String, Vec<IngestChange>)> = Vec::new();
    let mut unknown = 0usize;
    for entry in v["entry"].as_array().into_iter().flatten() {
        let id = match &entry["id"] {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => String::new(),
        };
        let phone = entry["changes"][0]["value"]["metadata"]["phone_number_id"]
            .as_str()
            .map(str::to_string);
        let mut found = None;
        for candidate in std::iter::once(id.clone()).chain(phone) {
            if candidate.is_empty() {
                continue;
            }
            match state.store.upstream_by_object(&candidate).await {
                Ok(Some(u)) => {
                    found = Some(u);
                    break;
                }
                Ok(None) => {}
                Err(e) => return HttpError::from(e).into_response(),
            }
        }
        let Some(up) = found else {
            // A WABA of the same Meta app that is not registered here: skipped (its events
            // cannot be verified nor attributed); the others are still learned.
            unknown += 1;
            continue;
        };
        let changes: Vec<IngestChange> = entry["changes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| {
                Some(IngestChange {
                    field: c["field"].as_str()?.to_string(),
                    value: c["value"].clone(),
                })
            })
            .collect();
        let waba = if up.waba_id == id {
            id
        } else {
            up.waba_id.clone()
        };
        match groups
            .iter_mut()
            .find(|(u, w, _)| u.scope == up.scope && *w == waba)
        {
            Some(g) => g.2.extend(changes),
            None => groups.push((up, waba, changes)),
        }
    }
    if groups.is_empty() {
        // Nothing attributable: 403, so that Meta keeps retrying until the operator registers
        // the WABA (its dashboard shows the failures).
        return refuse(
            StatusCode::FORBIDDEN,
            "no entry names a WABA registered with this gateway",
        );
    }
    if unknown > 0 {
        tracing::warn!(
            unknown,
            "webhook entries of unregistered WABAs were skipped"
        );
    }
    // Every tenant involved must have signed this body: nothing is learned otherwise.
    for (up, _, _) in &groups {
        let c = match creds(&state, &up.scope).await {
            Ok(c) => c,
            Err(e) => return e.into_response(),
        };
        let expected = crate::webhooks::signer::signature(&c.app_secret, &body);
        let expected = expected.strip_prefix("sha256=").unwrap_or(&expected);
        if !secure_eq(expected, &sig) {
            return refuse(
                StatusCode::UNAUTHORIZED,
                "X-Hub-Signature-256 does not match the app secret registered for this WABA",
            );
        }
    }
    let touches_numbers = groups.iter().any(|(_, _, cs)| {
        cs.iter().any(|c| {
            matches!(
                c.field.as_str(),
                "phone_number_quality_update" | "account_update"
            )
        })
    });
    for (up, waba, changes) in groups {
        match state
            .store
            .gateway_ingest(&up.scope, &waba, changes, state.now())
            .await
        {
            Ok(n) => {
                tracing::debug!(business_id = %up.scope.business_id, learned = n, "webhook ingested");
                if touches_numbers {
                    // the cached principal carries the numbers' state
                    state.invalidate_tenant(&up.scope.business_id);
                }
            }
            Err(e) => return HttpError::from(e).into_response(),
        }
    }
    (StatusCode::OK, "EVENT_RECEIVED").into_response()
}
