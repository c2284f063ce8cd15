//! The send request of `POST /{phone-number-id}/messages`, parsed once at the edge
//! (cloud-api-facts.md §1). Handlers and the engine only ever see a validated [`Request`]:
//! "parse, don't validate". Every refusal is Meta's code with details that say what to fix.

use crate::ApiError;
use serde_json::Value;

/// What the caller asked for on the messages endpoint.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    Send(SendRequest),
    /// `{"status":"read","message_id":…}`, optionally with a typing indicator.
    MarkRead { message_id: String, typing_indicator: bool },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageType {
    Text,
    Image,
    Audio,
    Video,
    Document,
    Sticker,
    Location,
    Contacts,
    Interactive,
    Reaction,
    Template,
}

impl MessageType {
    pub fn as_str(self) -> &'static str {
        match self {
            MessageType::Text => "text",
            MessageType::Image => "image",
            MessageType::Audio => "audio",
            MessageType::Video => "video",
            MessageType::Document => "document",
            MessageType::Sticker => "sticker",
            MessageType::Location => "location",
            MessageType::Contacts => "contacts",
            MessageType::Interactive => "interactive",
            MessageType::Reaction => "reaction",
            MessageType::Template => "template",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "text" => MessageType::Text,
            "image" => MessageType::Image,
            "audio" => MessageType::Audio,
            "video" => MessageType::Video,
            "document" => MessageType::Document,
            "sticker" => MessageType::Sticker,
            "location" => MessageType::Location,
            "contacts" => MessageType::Contacts,
            "interactive" => MessageType::Interactive,
            "reaction" => MessageType::Reaction,
            "template" => MessageType::Template,
            _ => return None,
        })
    }
    pub fn is_media(self) -> bool {
        matches!(
            self,
            MessageType::Image | MessageType::Audio | MessageType::Video | MessageType::Document | MessageType::Sticker
        )
    }
}

/// Who the message goes to: a WhatsApp id (digits of the phone number) or a business-scoped
/// user id (BSUID, `CC.digits`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Recipient {
    WaId(String),
    UserId(String),
}

/// A template reference as sent (`template.name`, `template.language.code`, components).
#[derive(Debug, Clone, PartialEq)]
pub struct TemplateRef {
    pub name: String,
    pub language: String,
    /// The `components` array as sent (empty array when absent).
    pub components: Value,
}

/// A validated outbound message.
#[derive(Debug, Clone, PartialEq)]
pub struct SendRequest {
    pub recipient: Recipient,
    /// `to` (or `recipient`) exactly as the caller wrote it: echoed in `contacts[].input`.
    pub input: String,
    pub msg_type: MessageType,
    /// The object under the type's key (`text`, `image`, …; for `contacts` the array), as sent.
    pub payload: Value,
    /// `context.message_id`: the message this one replies to.
    pub context_message_id: Option<String>,
    pub biz_opaque_callback_data: Option<String>,
    /// Uploaded media referenced by id (media types, and media headers of interactive messages).
    pub media_ids: Vec<String>,
    /// Set for `type: "template"`.
    pub template: Option<TemplateRef>,
}

/// Parses and validates a messages-endpoint body. `sender_cc` is the calling code of the
/// sending business number (digits), used when `to` has no leading `+` (§1.1).
pub fn parse_request(body: &Value, sender_cc: &str) -> Result<Request, ApiError> {
    let _ = (body, sender_cc);
    Err(ApiError::invalid_parameter("message validation is not implemented yet"))
}
