//! `POST /{v}/{phone-number-id}/messages` in gateway mode: the full policy, then Meta.
//!
//! Order: reserve (idempotency key held as pending, decision, limits taken) → forward the
//! caller's bytes with the business's Meta token → commit (Meta's 2xx: the message under
//! Meta's wamid with its verdicts) or release (no answer, a 5xx: nothing consumed, the key
//! freed). Meta's answer goes back unchanged.

use super::*;
use crate::http::{check_version, json_object, tenant};
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::HeaderValue;
use greenlight_domain::message::{self, Request};
use greenlight_domain::phone;
use greenlight_store::{Reserved, SendCommand, StoreError, UpstreamAnswer};

pub async fn send(
    State(state): State<AppState>,
    Path((version, id)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> HttpResult {
    check_version(&version, &method, &uri)?;
    let p = tenant(&state, &headers, &uri).await?;
    let phone = p
        .phone(&id)
        .ok_or_else(|| ApiError::unknown_object(&id))?
        .clone();
    let value = json_object(&body)?;
    let g = gw(&state)?;
    let request = match message::parse_request(&value, phone::calling_code(&phone.digits))? {
        // Marking as read changes nothing greenlight decides: forwarded as is.
        Request::MarkRead { .. } => {
            let c = creds(&state, &p.scope).await?;
            return forward_bytes(g, &uri, &headers, &c, body).await;
        }
        Request::Send(r) => r,
    };
    let idempotency = crate::http::idempotency_key(&headers, &phone.id, &value)?;
    let cmd = SendCommand {
        phone,
        request,
        idempotency,
        now: state.now(),
        delivered_after: 0,
    };
    // A key still pending after the upstream timeout (and a margin) was abandoned.
    let in_flight = g.timeout.as_millis() as i64 + 5_000;
    let r = match state.store.gateway_reserve(&p.scope, cmd, in_flight).await {
        Ok(Reserved::Go(r)) => *r,
        Ok(Reserved::Replay { status, body }) => {
            let mut resp = (
                axum::http::StatusCode::from_u16(status).unwrap_or(axum::http::StatusCode::OK),
                axum::Json(body),
            )
                .into_response();
            resp.headers_mut()
                .insert("idempotent-replayed", HeaderValue::from_static("true"));
            return Ok(resp);
        }
        Err(StoreError::Api(e)) => {
            state.metrics.refused(e.code);
            return Err(e.into());
        }
        Err(e) => return Err(e.into()),
    };
    let c = match creds(&state, &p.scope).await {
        Ok(c) => c,
        Err(e) => {
            let _ = state.store.gateway_release(&p.scope, r).await;
            return Err(e);
        }
    };
    let sent = forward_headers(&headers, g.client.post(upstream_url(g, &uri)))
        .bearer_auth(&c.access_token)
        .timeout(g.timeout)
        .body(body)
        .send()
        .await;
    let resp = match sent {
        Ok(resp) => resp,
        Err(e) => {
            state.store.gateway_release(&p.scope, r).await?;
            return Err(transient(g, &e));
        }
    };
    let status = resp.status().as_u16();
    let up_headers = resp.headers().clone();
    let bytes = match resp.bytes().await {
        Ok(b) => b,
        Err(e) => {
            state.store.gateway_release(&p.scope, r).await?;
            return Err(transient(g, &e));
        }
    };
    let parsed: Option<serde_json::Value> = serde_json::from_slice(&bytes).ok();
    if status >= 500 {
        state.store.gateway_release(&p.scope, r).await?;
        tracing::warn!(status, "the upstream answered a send with a server error");
        if parsed.as_ref().is_some_and(|v| v.get("error").is_some()) {
            // Meta's own envelope (e.g. code 1 or 2, is_transient): passed on unchanged.
            return Ok(answer(status, &up_headers, Body::from(bytes)));
        }
        return Err(HttpError(ApiError::service_unavailable(format!(
            "The upstream Graph API answered HTTP {status} without Meta's error envelope; nothing was recorded as sent. Retry with the same Idempotency-Key."
        ))));
    }
    let committed = state
        .store
        .gateway_commit(
            &p.scope,
            r,
            UpstreamAnswer {
                status,
                body: parsed.unwrap_or(serde_json::Value::Null),
            },
            state.now(),
        )
        .await;
    if let Err(e) = committed {
        // Meta has the message: its answer must reach the caller even if the record failed.
        tracing::error!(error = %e, "a send accepted upstream could not be recorded");
    }
    if (200..300).contains(&status) {
        state
            .metrics
            .messages_accepted
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    Ok(answer(status, &up_headers, Body::from(bytes)))
}

/// Forwards a buffered JSON body as is and returns Meta's answer unchanged.
pub(super) async fn forward_bytes(
    g: &Gateway,
    uri: &Uri,
    headers: &HeaderMap,
    c: &Creds,
    body: Bytes,
) -> HttpResult {
    let resp = forward_headers(headers, g.client.post(upstream_url(g, uri)))
        .bearer_auth(&c.access_token)
        .timeout(g.timeout)
        .body(body)
        .send()
        .await
        .map_err(|e| transient(g, &e))?;
    let status = resp.status().as_u16();
    let h = resp.headers().clone();
    let bytes = resp.bytes().await.map_err(|e| transient(g, &e))?;
    Ok(answer(status, &h, Body::from(bytes)))
}
