//! The values that cross the store boundary.

use greenlight_domain::message::SendRequest;
use greenlight_domain::policy::Verdict;
use greenlight_domain::pricing::Pricing;
use greenlight_domain::{ApiError, Millis};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;

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
    /// Shared, not copied, by the sends that name one (a number is fourteen strings).
    pub phone_numbers: Vec<Arc<PhoneNumber>>,
}

impl Principal {
    pub fn phone(&self, id: &str) -> Option<&Arc<PhoneNumber>> {
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
    /// The sending number, as its tenant's [`Principal`] holds it.
    pub phone: Arc<PhoneNumber>,
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
    pub body: SendBody,
    /// True when this answer was replayed from an earlier request with the same key.
    pub replayed: bool,
}

/// Meta's `{messaging_product, contacts, messages}` for an accepted send: built from its parts
/// by the send (serialized once, on the way out), or already JSON text: the stored answer a
/// replay gives again, or the answer a send with an idempotency key serialized to store.
#[derive(Debug, Clone, PartialEq)]
pub enum SendBody {
    Accepted(Accepted),
    Text(String),
}

/// What an accepted send answers.
#[derive(Debug, Clone, PartialEq)]
pub struct Accepted {
    /// The `to` of the request, as given.
    pub input: String,
    /// Whom it reached: the customer's WhatsApp id, or the user id the request named.
    pub contact: Contact,
    pub wamid: String,
    /// Templates answer `message_status: accepted` too.
    pub template: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Contact {
    WaId(String),
    UserId(String),
}

impl SendBody {
    /// The body as JSON text (keys in the order `serde_json`'s maps give them, as the answer
    /// has always had them), serialized now if it is not yet.
    pub fn into_json(self) -> String {
        match self {
            SendBody::Text(text) => text,
            SendBody::Accepted(a) => a.to_json(),
        }
    }
}

impl Accepted {
    /// Written directly rather than by serde's derived structs (~2,800 instructions an answer
    /// on the HTTP threads, most of them serde's machinery around four strings;
    /// docs/BENCHMARKS.md, thirty-fourth round): the keys in the order the derived form wrote
    /// them, the strings escaped as `serde_json` escapes them.
    fn to_json(&self) -> String {
        let (key, id) = match &self.contact {
            Contact::WaId(w) => ("wa_id", w),
            Contact::UserId(u) => ("user_id", u),
        };
        let mut out = String::with_capacity(140 + self.input.len() + id.len() + self.wamid.len());
        out.push_str(r#"{"contacts":[{"input":"#);
        crate::events::push_json_str(&mut out, &self.input);
        out.push_str(",\"");
        out.push_str(key);
        out.push_str("\":");
        crate::events::push_json_str(&mut out, id);
        out.push_str(r#"}],"messages":[{"id":"#);
        crate::events::push_json_str(&mut out, &self.wamid);
        if self.template {
            out.push_str(r#","message_status":"accepted""#);
        }
        out.push_str(r#"}],"messaging_product":"whatsapp"}"#);
        out
    }
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

#[cfg(test)]
mod send_body_tests {
    use super::*;
    use serde_json::json;

    fn accepted(contact: Contact, template: bool) -> SendBody {
        SendBody::Accepted(Accepted {
            input: "+1 (555) 000-0001".into(),
            contact,
            wamid: "wamid.X\"1".into(),
            template,
        })
    }

    /// Any `to` the caller wrote (it is echoed as given) comes back escaped as `serde_json`
    /// escapes it, whatever the contact and the kind of send.
    #[test]
    fn an_accepted_body_escapes_what_the_caller_wrote() {
        for input in [
            "",
            "15550000001",
            "a\"b\\c",
            "tab\there\nnew",
            "\u{1}\u{1f}\u{7f}",
            "café ☎ 𝄞",
            "</script>",
        ] {
            for (contact, key) in [
                (Contact::WaId(input.into()), "wa_id"),
                (Contact::UserId(input.into()), "user_id"),
            ] {
                for template in [false, true] {
                    let body = SendBody::Accepted(Accepted {
                        input: input.into(),
                        contact: contact.clone(),
                        wamid: format!("wamid.{input}"),
                        template,
                    });
                    let mut message = json!({"id": format!("wamid.{input}")});
                    if template {
                        message["message_status"] = json!("accepted");
                    }
                    let want = json!({"messaging_product": "whatsapp",
                                      "contacts": [{"input": input, key: input}],
                                      "messages": [message]});
                    assert_eq!(body.into_json(), want.to_string(), "{input:?}");
                }
            }
        }
    }

    /// The same text `serde_json` gave the body when it was built as a `Value`: same keys, in
    /// the same order, escaped the same way.
    #[test]
    fn an_accepted_body_is_the_text_a_json_value_of_it_was() {
        let cases = [
            (
                accepted(Contact::WaId("15550000001".into()), false),
                json!({"messaging_product": "whatsapp",
                       "contacts": [{"input": "+1 (555) 000-0001", "wa_id": "15550000001"}],
                       "messages": [{"id": "wamid.X\"1"}]}),
            ),
            (
                accepted(Contact::UserId("US.13491208655302741918".into()), true),
                json!({"messaging_product": "whatsapp",
                       "contacts": [{"input": "+1 (555) 000-0001", "user_id": "US.13491208655302741918"}],
                       "messages": [{"id": "wamid.X\"1", "message_status": "accepted"}]}),
            ),
        ];
        for (body, value) in cases {
            assert_eq!(body.clone().into_json(), value.to_string());
            assert_eq!(body.into_json(), value.to_string());
        }
    }
}
