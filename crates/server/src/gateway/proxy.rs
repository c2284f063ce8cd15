//! Transparent forwarding of the Graph calls greenlight does not decide (media, phone numbers,
//! business profile, subscriptions, template lists…): only on ids the calling tenant owns, its
//! greenlight token swapped for its Meta token, request and response bodies streamed.
//!
//! A few answers are read on the way (small JSON only): an uploaded media id is remembered as
//! the tenant's, a media object's download `url` is rewritten to greenlight (which fetches it
//! with the Meta token, streaming), and a template list is mirrored.

use super::*;
use crate::http::{check_version, tenant};
use axum::body::Body;
use axum::extract::{Path, Request, State};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use greenlight_store::MirroredTemplate;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

/// How long a rewritten media URL works (Meta's own last 5 minutes).
const MEDIA_URL_TTL_MS: i64 = 5 * 60 * 1000;

#[derive(PartialEq)]
enum Inspect {
    None,
    MediaUpload,
    MediaObject,
    TemplateList(String),
}

pub async fn forward(State(state): State<AppState>, req: Request) -> HttpResult {
    let (parts, body) = req.into_parts();
    let (method, uri, headers) = (parts.method, parts.uri, parts.headers);
    let segs: Vec<String> = uri
        .path()
        .trim_start_matches('/')
        .split('/')
        .map(crate::http::percent_decode_pub)
        .collect();
    if segs.len() < 2 || segs[1].is_empty() {
        return Err(ApiError::unknown_path(method.as_str(), uri.path()).into());
    }
    check_version(&segs[0], &method, &uri)?;
    let p = tenant(&state, &headers, &uri).await?;
    let id = segs[1].as_str();
    let owned = p.phone(id).is_some()
        || p.owns_waba(id)
        || state.store.gateway_owns_object(&p.scope, id).await?;
    if !owned {
        return Err(ApiError::unknown_object(id).into());
    }
    if method == Method::POST && segs.len() == 2 {
        if let Some(t) = state.store.template(&p.scope, id).await? {
            let bytes = axum::body::to_bytes(body, crate::http::MAX_JSON)
                .await
                .map_err(|_| ApiError::invalid_parameter("the body could not be read"))?;
            return super::templates::edit(&state, &p, t, &uri, &headers, bytes).await;
        }
    }
    let inspect = match (segs.len(), method.as_str(), segs.get(2).map(String::as_str)) {
        (3, "POST", Some("media")) => Inspect::MediaUpload,
        (2, "GET", _) if p.phone(id).is_none() && !p.owns_waba(id) => Inspect::MediaObject,
        (3, "GET", Some("message_templates")) => Inspect::TemplateList(id.to_string()),
        _ => Inspect::None,
    };
    let g = gw(&state)?;
    let c = creds(&state, &p.scope).await?;
    let method_r = reqwest::Method::from_bytes(method.as_str().as_bytes())
        .map_err(|_| ApiError::unknown_path(method.as_str(), uri.path()))?;
    let mut rb = forward_headers(&headers, g.client.request(method_r, upstream_url(g, &uri)))
        .bearer_auth(&c.access_token);
    // The length the caller announced is kept, so a streamed body is not sent chunked (some
    // upstreams and proxies refuse chunked uploads).
    if let Some(len) = headers.get(axum::http::header::CONTENT_LENGTH) {
        rb = rb.header("content-length", len.as_bytes());
    }
    let rb = rb.body(reqwest::Body::wrap_stream(body.into_data_stream()));
    let resp = rb.send().await.map_err(|e| transient(g, &e))?;
    let status = resp.status().as_u16();
    let up_headers = resp.headers().clone();
    let is_json = up_headers
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.contains("json"));
    if inspect == Inspect::None || !is_json || !(200..300).contains(&status) {
        return Ok(answer(
            status,
            &up_headers,
            Body::from_stream(resp.bytes_stream()),
        ));
    }
    let bytes = resp.bytes().await.map_err(|e| transient(g, &e))?;
    let Ok(mut v) = serde_json::from_slice::<Value>(&bytes) else {
        return Ok(answer(status, &up_headers, Body::from(bytes)));
    };
    let now = state.now();
    match inspect {
        Inspect::MediaUpload => {
            if let Some(mid) = v["id"].as_str() {
                state
                    .store
                    .gateway_note_object(&p.scope, mid, "media", now)
                    .await?;
            }
            Ok(answer(status, &up_headers, Body::from(bytes)))
        }
        Inspect::MediaObject => {
            let Some(url) = v["url"].as_str().map(str::to_string) else {
                return Ok(answer(status, &up_headers, Body::from(bytes)));
            };
            v["url"] = json!(media_url(&state, &p.scope.business_id, &url, now));
            Ok(answer(status, &up_headers, Body::from(v.to_string())))
        }
        Inspect::TemplateList(waba) => {
            for t in v["data"].as_array().into_iter().flatten() {
                let (Some(tid), Some(name)) = (t["id"].as_str(), t["name"].as_str()) else {
                    continue;
                };
                let m = MirroredTemplate {
                    waba_id: waba.clone(),
                    id: tid.to_string(),
                    name: name.to_string(),
                    language: t["language"].as_str().unwrap_or("en_US").to_string(),
                    category: t["category"].as_str().unwrap_or("MARKETING").to_string(),
                    status: t["status"].as_str().unwrap_or("PENDING").to_string(),
                    definition: t.clone(),
                };
                state
                    .store
                    .gateway_mirror_template(&p.scope, m, now)
                    .await?;
            }
            Ok(answer(status, &up_headers, Body::from(bytes)))
        }
        Inspect::None => Ok(answer(status, &up_headers, Body::from(bytes))),
    }
}

fn mac(state: &AppState, payload: &str) -> String {
    let mut m = Hmac::<Sha256>::new_from_slice(state.url_secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    m.update(b"gateway-media|");
    m.update(payload.as_bytes());
    URL_SAFE_NO_PAD.encode(m.finalize().into_bytes())
}

/// A capability URL on greenlight for Meta's media URL: the tenant, the URL and an expiry,
/// signed with the instance's URL key.
fn media_url(state: &AppState, business_id: &str, url: &str, now: i64) -> String {
    let payload = URL_SAFE_NO_PAD
        .encode(json!({ "b": business_id, "u": url, "e": now + MEDIA_URL_TTL_MS }).to_string());
    format!(
        "{}/greenlight/v1/media_download/{payload}.{}",
        state.public_url(),
        mac(state, &payload)
    )
}

/// `GET /greenlight/v1/media_download/{capability}`: fetches Meta's media URL with the
/// tenant's Meta token and streams the bytes. Works with or without a bearer token (client
/// libraries fetch media URLs both ways), like Meta's own URLs; expires after 5 minutes.
pub async fn media_download(
    State(state): State<AppState>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> HttpResult {
    let bad = || ApiError::unknown_object("media_download");
    let (payload, sig) = token.split_once('.').ok_or_else(bad)?;
    if !crate::http::secure_eq(&mac(&state, payload), sig) {
        return Err(bad().into());
    }
    let v: Value = URL_SAFE_NO_PAD
        .decode(payload)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(bad)?;
    if v["e"].as_i64().unwrap_or(0) < state.now() {
        return Err(ApiError::invalid_parameter(
            "This media URL expired (they last 5 minutes); GET the media id again for a fresh one.",
        )
        .into());
    }
    let (Some(b), Some(url)) = (v["b"].as_str(), v["u"].as_str()) else {
        return Err(bad().into());
    };
    let scope = greenlight_store::Scope {
        business_id: b.to_string(),
    };
    let g = gw(&state)?;
    let c = creds(&state, &scope).await?;
    let mut rb = g.client.get(url).bearer_auth(&c.access_token);
    if let Some(r) = headers.get(axum::http::header::RANGE) {
        rb = rb.header("range", r.as_bytes());
    }
    let resp = rb.send().await.map_err(|e| transient(g, &e))?;
    let status = resp.status().as_u16();
    let h = resp.headers().clone();
    Ok(answer(status, &h, Body::from_stream(resp.bytes_stream())))
}
