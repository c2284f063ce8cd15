//! Operations: the OpenAPI description of greenlight's own surface (`/openapi.json`), the
//! compliance dashboard (`/ui/`), and `GET /greenlight/v1/me` (what a token owns), which the
//! dashboard starts from.
//!
//! The dashboard is one static page with no data in it: it asks for a tenant access token, keeps
//! it in the tab's `sessionStorage` only, and reads the same JSON endpoints a program would, so
//! it shows nothing the token could not read anyway.

use super::{tenant, HttpResult};
use crate::state::AppState;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

const OPENAPI: &str = include_str!("openapi.json");
const UI: &str = include_str!("ui.html");

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/openapi.json", get(openapi))
        .route("/ui", get(|| async { Redirect::permanent("/ui/") }))
        .route("/ui/", get(ui))
        .route("/greenlight/v1/me", get(me))
}

async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        OPENAPI.to_string(),
    )
        .into_response()
}

async fn ui() -> Response {
    let mut resp = ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], UI).into_response();
    // The page loads nothing from elsewhere and may only call this server.
    resp.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'",
        ),
    );
    resp.headers_mut().insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    resp
}

/// The business a token belongs to, its WABAs and their numbers (with quality and tier).
async fn me(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
) -> HttpResult<Json<Value>> {
    let p = tenant(&state, &headers, &uri).await?;
    let wabas: Vec<Value> = p
        .waba_ids
        .iter()
        .map(|w| {
            let numbers: Vec<Value> = p
                .phone_numbers
                .iter()
                .filter(|n| &n.waba_id == w)
                .map(|n| {
                    json!({
                        "id": n.id,
                        "display_phone_number": n.display_phone_number,
                        "verified_name": n.verified_name,
                        "quality_rating": n.quality_rating,
                        "status": n.status,
                        "messaging_limit_tier": n.messaging_limit_tier,
                    })
                })
                .collect();
            json!({ "id": w, "phone_numbers": numbers })
        })
        .collect();
    Ok(Json(json!({
        "business_id": p.scope.business_id,
        "business_name": p.business_name,
        "app_id": p.app_id,
        "wabas": wabas,
    })))
}
