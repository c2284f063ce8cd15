//! The values that cross the store boundary.

use greenlight_domain::message::SendRequest;
use greenlight_domain::policy::Verdict;
use greenlight_domain::pricing::Pricing;
use greenlight_domain::{ApiError, Millis};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The tenant a request acts for. Every tenant-data method takes one.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Scope {
    pub business_id: String,
}

/// What an access token may reach: one business portfolio, its WABAs and numbers.
#[derive(Debug, Clone)]
pub struct Principal {
    pub scope: Scope,
    pub business_name: String,
    pub app_id: String,
    pub waba_ids: Vec<String>,
    pub phone_numbers: Vec<PhoneNumber>,
}

impl Principal {
    pub fn phone(&self, id: &str) -> Option<&PhoneNumber> {
        self.phone_numbers.iter().find(|p| p.id == id)
    }
    pub fn owns_waba(&self, id: &str) -> bool {
        self.waba_ids.iter().any(|w| w == id)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PhoneNumber {
    pub id: String,
    pub waba_id: String,
    pub business_id: String,
    /// As given at creation, e.g. `+1 555 010 0001`.
    pub display_phone_number: String,
    /// Digits only: the number's WhatsApp id, as webhooks' `metadata` carry it.
    pub digits: String,
    pub verified_name: String,
    pub quality_rating: String,
    pub status: String,
    pub name_status: String,
    pub code_verification_status: String,
    pub throughput_level: String,
    pub messaging_limit_tier: String,
    pub created_at: Millis,
    /// Review of a requested display name: `NONE`, `PENDING_REVIEW`, `APPROVED`, `DECLINED`.
    pub new_name_status: String,
    pub requested_name: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Waba {
    pub id: String,
    pub business_id: String,
    pub name: String,
    pub currency: String,
    pub timezone_id: String,
    pub message_template_namespace: String,
    pub business_verification_status: String,
    pub account_review_status: String,
    pub created_at: Millis,
}

#[derive(Debug, Clone, Deserialize)]
pub struct NewPhoneNumber {
    pub display_phone_number: String,
    pub verified_name: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct NewWebhook {
    pub callback_url: String,
    #[serde(default)]
    pub verify_token: String,
}

#[derive(Debug, Clone)]
pub struct NewTenant {
    pub business_name: String,
    pub verified: bool,
    pub phone_numbers: Vec<NewPhoneNumber>,
    /// Already verified by the caller (handshake) when present.
    pub webhook: Option<NewWebhook>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CreatedPhone {
    pub id: String,
    pub display_phone_number: String,
    pub verified_name: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct CreatedTenant {
    pub business_id: String,
    pub waba_id: String,
    pub app_id: String,
    pub app_secret: String,
    pub access_token: String,
    pub phone_numbers: Vec<CreatedPhone>,
}

/// Per-tenant settings where Meta's behaviour is uncertain or a business wants another mode.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct TenantSettings {
    /// Answer failures Meta reports asynchronously (131047, 131026, …) on the API call instead.
    pub sync_refusals: bool,
    /// The compliance rules' settings (opt-in policy, keywords, caps, thresholds…).
    pub compliance: greenlight_domain::policy::compliance::ComplianceSettings,
}

/// One outbound message to decide and commit.
#[derive(Debug, Clone)]
pub struct SendCommand {
    pub phone: PhoneNumber,
    pub request: SendRequest,
    /// `(key, sha256 of the canonical body)` when the caller sent `Idempotency-Key`.
    pub idempotency: Option<(String, String)>,
    pub now: Millis,
    /// Wall-clock delay before the `delivered` status (virtual time runs with wall time).
    pub delivered_after: Millis,
}

/// The answer to an accepted send: Meta's response body.
#[derive(Debug, Clone)]
pub struct SendResult {
    pub wamid: String,
    pub body: Value,
    /// True when this answer was replayed from an earlier request with the same key.
    pub replayed: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    pub allowed: bool,
    pub verdicts: Vec<Verdict>,
    pub pricing: Pricing,
    /// The portfolio's messaging-limit usage: `{tier, used, limit, already_reached}`.
    pub messaging_limit: Value,
    #[serde(skip)]
    pub refusal: Option<ApiError>,
}

#[derive(Debug, Clone)]
pub struct InboundCommand {
    pub phone_id: String,
    pub from: String,
    pub profile_name: Option<String>,
    /// The message object as Meta's webhook carries it, without `from`/`id`/`timestamp`.
    pub message: serde_json::Map<String, Value>,
    pub now: Millis,
}

#[derive(Debug, Clone)]
pub struct CustomerAction {
    pub phone_id: String,
    pub wa_id: String,
    pub action: String,
    pub message_id: Option<String>,
    pub reason: Option<String>,
    pub now: Millis,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StatusRecord {
    pub status: String,
    /// Unix seconds, as webhooks give them.
    pub timestamp: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Value>,
}

#[derive(Debug, Clone, Serialize)]
pub struct MessageRecord {
    pub id: String,
    pub phone_number_id: String,
    pub direction: String,
    /// The customer: recipient of outbound messages, sender of inbound ones.
    pub wa_id: String,
    #[serde(rename = "to", skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    #[serde(rename = "from", skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(rename = "type")]
    pub msg_type: String,
    pub category: Option<String>,
    pub pricing: Option<Value>,
    pub status: String,
    pub timestamp: i64,
    pub content: Value,
    /// What the customer sees (template text rendered with its parameters, text bodies…).
    pub text: Option<String>,
    pub statuses: Vec<StatusRecord>,
    pub verdicts: Vec<Verdict>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub biz_opaque_callback_data: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct MediaRecord {
    pub id: String,
    pub phone_number_id: String,
    pub mime_type: String,
    /// Hex SHA-256 of the bytes.
    pub sha256: String,
    pub file_size: u64,
    pub filename: Option<String>,
    /// Path of the bytes on disk, relative to the media folder.
    pub path: String,
    pub created_at: Millis,
}

/// One row of the audit trail.
#[derive(Debug, Clone, Serialize)]
pub struct AuditEvent {
    pub id: i64,
    /// Unix seconds.
    pub timestamp: i64,
    pub kind: String,
    pub phone_number_id: Option<String>,
    pub wa_id: Option<String>,
    pub message_id: Option<String>,
    pub rule: Option<String>,
    pub code: Option<i64>,
    pub details: String,
    pub verdicts: Option<Value>,
}

#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub from: Option<Millis>,
    pub to: Option<Millis>,
    pub kind: Option<String>,
    pub after: Option<i64>,
    pub limit: usize,
}
