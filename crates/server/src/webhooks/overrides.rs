//! A phone number's own callback: `POST /{phone-number-id}` with
//! `{"webhook_configuration": {"override_callback_uri": "...", "verify_token": "..."}}`
//! (cloud-api-facts.md §10.6). The handshake runs first; an empty `override_callback_uri`
//! removes the override. Precedence when delivering: the number's override, the WABA's
//! (`subscribed_apps`), the app's callback.

use crate::state::AppState;
use greenlight_domain::ApiError;
use greenlight_store::{Principal, StoreError};
use serde_json::Value;

fn store_err(e: StoreError) -> ApiError {
    match e {
        StoreError::Api(e) => e,
        StoreError::Unavailable(reason) => {
            tracing::warn!(%reason, "store unavailable");
            ApiError::service_unavailable(
                "The database is unreachable; nothing was committed. Retry shortly.",
            )
        }
        StoreError::Internal(reason) => {
            tracing::error!(%reason, "internal store error");
            ApiError::internal()
        }
    }
}

/// Applies `webhook_configuration` from a `POST /{phone-number-id}` body, if there is one.
pub async fn apply_phone_configuration(
    state: &AppState,
    p: &Principal,
    phone_id: &str,
    body: &Value,
) -> Result<(), ApiError> {
    let Some(wc) = body.get("webhook_configuration") else {
        return Ok(());
    };
    let Some(obj) = wc.as_object() else {
        return Err(ApiError::invalid_parameter(
            "`webhook_configuration` must be an object {override_callback_uri, verify_token}",
        ));
    };
    let uri = match obj.get("override_callback_uri") {
        None | Some(Value::Null) => {
            return Err(ApiError::missing_parameter(
                "`webhook_configuration.override_callback_uri` is required (an empty string removes the override)",
            ))
        }
        Some(Value::String(s)) => s.trim().to_string(),
        Some(_) => {
            return Err(ApiError::invalid_parameter(
                "`webhook_configuration.override_callback_uri` must be a string",
            ))
        }
    };
    let now = state.now();
    if uri.is_empty() {
        return state
            .store
            .set_phone_override(&p.scope, phone_id, None, now)
            .await
            .map_err(store_err);
    }
    let token = match obj.get("verify_token") {
        Some(Value::String(t)) => t.clone(),
        _ => return Err(ApiError::missing_parameter(
            "`webhook_configuration.verify_token` is required with `override_callback_uri`: the token the handshake sends as hub.verify_token",
        )),
    };
    super::handshake::verify(&state.config.webhooks, &uri, &token).await?;
    state
        .store
        .set_phone_override(&p.scope, phone_id, Some((uri, token)), now)
        .await
        .map_err(store_err)
}
