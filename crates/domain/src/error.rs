//! One way to be wrong: every refusal greenlight gives is an [`ApiError`], rendered either as
//! Meta's synchronous Graph error envelope or as the error object inside a `failed` status
//! webhook (cloud-api-facts.md §2.1, §2.2). Codes and titles are Meta's; `details` always says
//! what to change so that the request would succeed.

use serde_json::{json, Value};

/// The `type` of a Graph error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorType {
    OAuth,
    GraphMethod,
    /// greenlight's own rules (codes 1900000–1900999), which Meta does not enforce.
    GreenlightPolicy,
}

impl ErrorType {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorType::OAuth => "OAuthException",
            ErrorType::GraphMethod => "GraphMethodException",
            ErrorType::GreenlightPolicy => "GreenlightPolicyException",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status of the synchronous answer.
    pub status: u16,
    pub code: i64,
    pub subcode: Option<i64>,
    pub kind: ErrorType,
    /// Meta's title for the code (the text after `(#code)`).
    pub title: String,
    /// What went wrong and how to fix it (`error_data.details`).
    pub details: String,
    pub is_transient: bool,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "(#{}) {}: {}", self.code, self.title, self.details)
    }
}

impl std::error::Error for ApiError {}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(
        status: u16,
        code: i64,
        title: impl Into<String>,
        details: impl Into<String>,
    ) -> Self {
        ApiError {
            status,
            code,
            subcode: None,
            kind: ErrorType::OAuth,
            title: title.into(),
            details: details.into(),
            is_transient: false,
        }
    }

    pub fn with_subcode(mut self, subcode: i64) -> Self {
        self.subcode = Some(subcode);
        self
    }

    pub fn with_type(mut self, kind: ErrorType) -> Self {
        self.kind = kind;
        self
    }

    pub fn transient(mut self) -> Self {
        self.is_transient = true;
        self
    }

    /// `message` as Meta writes it: `(#code) Title`.
    pub fn message(&self) -> String {
        format!("(#{}) {}", self.code, self.title)
    }

    /// The synchronous envelope; `fbtrace_id` is supplied by the HTTP layer.
    pub fn envelope(&self, fbtrace_id: &str) -> Value {
        let mut err = json!({
            "message": self.message(),
            "type": self.kind.as_str(),
            "code": self.code,
            "error_data": { "messaging_product": "whatsapp", "details": self.details },
            "fbtrace_id": fbtrace_id,
        });
        if let Some(sub) = self.subcode {
            err["error_subcode"] = json!(sub);
        }
        if self.is_transient {
            err["is_transient"] = json!(true);
        }
        json!({ "error": err })
    }

    /// The object inside `statuses[].errors[]` of a `failed` status webhook (§2.2).
    pub fn webhook_error(&self) -> Value {
        json!({
            "code": self.code,
            "title": self.title,
            "message": self.title,
            "error_data": { "details": self.details },
            "href": "/documentation/business-messaging/whatsapp/support/error-codes",
        })
    }

    // ---- Graph-level errors -------------------------------------------------------------

    /// 190: missing, malformed or unknown access token (HTTP 401).
    pub fn invalid_token(details: impl Into<String>) -> Self {
        ApiError::new(
            401,
            190,
            "Invalid OAuth access token - Cannot parse access token",
            details,
        )
    }

    /// 100 with subcode 33: the object does not exist *or the caller may not see it*. Both cases
    /// answer identically so a token cannot learn that another tenant's id exists.
    pub fn unknown_object(id: &str) -> Self {
        ApiError::new(
            400,
            100,
            format!(
                "Unsupported get request. Object with ID '{id}' does not exist, cannot be loaded due to missing permissions, or does not support this operation"
            ),
            "Check the id in the path: it must be one of the objects your access token owns.",
        )
        .with_subcode(33)
        .with_type(ErrorType::GraphMethod)
    }

    /// 100: a parameter is invalid, unsupported or malformed.
    pub fn invalid_parameter(details: impl Into<String>) -> Self {
        ApiError::new(400, 100, "Invalid parameter", details)
    }

    /// 100 for a request path or method the Graph surface does not have.
    pub fn unknown_path(method: &str, path: &str) -> Self {
        ApiError::new(
            400,
            100,
            "Unknown path components",
            format!("{method} {path} is not an endpoint of this API; check the path and the HTTP method."),
        )
        .with_type(ErrorType::OAuth)
    }

    /// 10: authenticated, but the token may not do this (e.g. a tenant token on an admin route).
    pub fn permission_denied(details: impl Into<String>) -> Self {
        ApiError::new(
            403,
            10,
            "Application does not have permission for this action",
            details,
        )
    }

    /// 2: transient service failure (database unreachable, overload). Nothing was committed.
    pub fn service_unavailable(details: impl Into<String>) -> Self {
        ApiError::new(503, 2, "Service temporarily unavailable", details).transient()
    }

    /// 1: an unexpected internal failure. The text never carries internal details.
    pub fn internal() -> Self {
        ApiError::new(
            500,
            1,
            "An unknown error occurred",
            "An internal error occurred; it has been logged. Retry the request.",
        )
        .transient()
    }

    // ---- WhatsApp message errors (§2.3) -------------------------------------------------

    pub fn missing_parameter(details: impl Into<String>) -> Self {
        ApiError::new(400, 131008, "Required parameter is missing", details)
    }
    pub fn invalid_value(details: impl Into<String>) -> Self {
        ApiError::new(400, 131009, "Parameter value is not valid", details)
    }
    pub fn recipient_is_sender(details: impl Into<String>) -> Self {
        ApiError::new(400, 131021, "Recipient cannot be sender", details)
    }
    pub fn undeliverable(details: impl Into<String>) -> Self {
        ApiError::new(400, 131026, "Message undeliverable", details)
    }
    pub fn reengagement(details: impl Into<String>) -> Self {
        ApiError::new(400, 131047, "Re-engagement message", details)
    }
    pub fn unsupported_type(details: impl Into<String>) -> Self {
        ApiError::new(400, 131051, "Unsupported message type", details)
    }
    pub fn media_upload_error(details: impl Into<String>) -> Self {
        ApiError::new(400, 131053, "Media upload error", details)
    }
    pub fn template_param_count(details: impl Into<String>) -> Self {
        ApiError::new(
            400,
            132000,
            "Number of parameters does not match the expected number of params",
            details,
        )
    }
    pub fn template_not_found(details: impl Into<String>) -> Self {
        ApiError::new(
            404,
            132001,
            "Template name does not exist in the translation",
            details,
        )
    }
    pub fn template_text_too_long(details: impl Into<String>) -> Self {
        ApiError::new(400, 132005, "Translated text too long", details)
    }
    pub fn template_param_format(details: impl Into<String>) -> Self {
        ApiError::new(400, 132012, "Template parameter format mismatch", details)
    }
    pub fn template_paused(details: impl Into<String>) -> Self {
        ApiError::new(400, 132015, "Template is paused", details)
    }
    pub fn template_disabled(details: impl Into<String>) -> Self {
        ApiError::new(400, 132016, "Template is disabled", details)
    }

    /// greenlight's idempotency rule: the same key with a different body.
    pub fn idempotency_conflict(details: impl Into<String>) -> Self {
        ApiError::new(
            422,
            1900001,
            "Idempotency key reused with a different request",
            details,
        )
        .with_type(ErrorType::GreenlightPolicy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_has_meta_shape() {
        let e = ApiError::invalid_value("`to` must be a phone number");
        let v = e.envelope("Abc123");
        assert_eq!(
            v["error"]["message"],
            "(#131009) Parameter value is not valid"
        );
        assert_eq!(v["error"]["type"], "OAuthException");
        assert_eq!(v["error"]["code"], 131009);
        assert_eq!(v["error"]["error_data"]["messaging_product"], "whatsapp");
        assert_eq!(
            v["error"]["error_data"]["details"],
            "`to` must be a phone number"
        );
        assert_eq!(v["error"]["fbtrace_id"], "Abc123");
        assert!(v["error"].get("error_subcode").is_none());
    }

    #[test]
    fn unknown_object_has_subcode_33() {
        let v = ApiError::unknown_object("123").envelope("x");
        assert_eq!(v["error"]["code"], 100);
        assert_eq!(v["error"]["error_subcode"], 33);
        assert_eq!(v["error"]["type"], "GraphMethodException");
    }

    #[test]
    fn webhook_error_repeats_title_as_message() {
        let v = ApiError::reengagement("window closed").webhook_error();
        assert_eq!(v["title"], v["message"]);
        assert_eq!(v["code"], 131047);
    }
}
