//! The send request of `POST /{phone-number-id}/messages`, parsed once at the edge
//! (cloud-api-facts.md §1). Handlers and the engine only ever see a validated [`Request`]:
//! "parse, don't validate". Every refusal is Meta's code with details that say what to fix.
//!
//! Codes (§2.3): a body that is not an object or names another messaging product → 100; a
//! required field absent, `null` or blank → 131008; a value of the wrong kind, out of range or
//! too long → 131009; a message `type` greenlight does not send → 131051. Every detail names
//! the field by its path (`interactive.action.buttons[1].reply.title`) and the limit.
//!
//! This module checks the envelope (§1.1, §1.10); the content of each type lives in
//! `content` (text, media, location, contacts, reaction, §1.3–1.7), `interactive` (§1.8)
//! and `template` (§1.9, shape only: the stored template is checked elsewhere).

mod content;
pub(crate) mod fields;
mod interactive;
mod template;

#[cfg(test)]
mod tests;

use crate::{phone, ApiError};
use fields::{invalid, missing, wrong_kind, Obj, Path};
use serde_json::Value;

/// What the caller asked for on the messages endpoint.
// One `Request` exists per call and is matched at once, never stored in bulk, so the size gap
// between the variants costs nothing; boxing `SendRequest` would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    Send(SendRequest),
    /// `{"status":"read","message_id":…}`, optionally with a typing indicator.
    MarkRead {
        message_id: String,
        typing_indicator: bool,
    },
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
            MessageType::Image
                | MessageType::Audio
                | MessageType::Video
                | MessageType::Document
                | MessageType::Sticker
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

/// A template reference as sent (`template.name`, `template.language.code`); its components
/// are the request's payload's ([`SendRequest::template_components`]), not a copy.
#[derive(Debug, Clone, PartialEq)]
pub struct TemplateRef {
    pub name: String,
    pub language: String,
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

impl SendRequest {
    /// A template send's `components` array as sent (validated; an empty array when absent or
    /// null, as the parser reads a null member).
    pub fn template_components(&self) -> &Value {
        static NONE: Value = Value::Array(Vec::new());
        self.payload
            .get("components")
            .filter(|v| !v.is_null())
            .unwrap_or(&NONE)
    }
}

/// `biz_opaque_callback_data` is echoed in status webhooks; Meta caps it at 512 characters.
const BIZ_OPAQUE_MAX: usize = 512;

const SUPPORTED_TYPES: &str =
    "text, image, audio, video, document, sticker, location, contacts, interactive, reaction, template";

/// Parses and validates a messages-endpoint body. `sender_cc` is the calling code of the
/// sending business number (digits), used when `to` has no leading `+` (§1.1).
///
/// A body with a `status` member is a mark-as-read request (§1.10); anything else is a send.
pub fn parse_request(body: &Value, sender_cc: &str) -> Result<Request, ApiError> {
    let mut request = parse_borrowed(body, sender_cc)?;
    if let Request::Send(s) = &mut request {
        s.payload = body[s.msg_type.as_str()].clone();
    }
    Ok(request)
}

/// [`parse_request`] of a body the caller is done with: the payload is moved out of it, not
/// copied (for a template its components, the largest part of the body).
pub fn parse_request_owned(body: Value, sender_cc: &str) -> Result<Request, ApiError> {
    let mut request = parse_borrowed(&body, sender_cc)?;
    if let (Request::Send(s), Value::Object(mut map)) = (&mut request, body) {
        s.payload = map.remove(s.msg_type.as_str()).unwrap_or_default();
    }
    Ok(request)
}

/// The request without its payload (`Value::Null`), which the callers above take or copy.
fn parse_borrowed(body: &Value, sender_cc: &str) -> Result<Request, ApiError> {
    let root = match body {
        Value::Object(map) => Obj { map, path: Path::ROOT },
        other => {
            return Err(ApiError::invalid_parameter(format!(
                "The request body must be a JSON object such as {{\"messaging_product\": \"whatsapp\", \"to\": \"+16505551234\", \"type\": \"text\", \"text\": {{\"body\": \"Hello\"}}}}, but it is {}. Send a JSON object with Content-Type: application/json.",
                fields::kind(other)
            )))
        }
    };
    check_messaging_product(&root)?;
    if root.has("status") {
        return parse_mark_read(&root);
    }
    parse_send(&root, sender_cc).map(Request::Send)
}

/// `messaging_product` is required on every call and is always `"whatsapp"`.
fn check_messaging_product(root: &Obj<'_, '_>) -> Result<(), ApiError> {
    match root.str("messaging_product", "set it to \"whatsapp\"") {
        Ok("whatsapp") => Ok(()),
        Ok(other) => Err(ApiError::invalid_parameter(format!(
            "`messaging_product` is \"{other}\", but this endpoint only serves \"whatsapp\". Set `messaging_product` to \"whatsapp\"."
        ))),
        Err(e) if e.code == 131008 => Err(e),
        Err(_) => Err(ApiError::invalid_parameter(
            "`messaging_product` must be the string \"whatsapp\". Set `messaging_product` to \"whatsapp\".",
        )),
    }
}

/// `{"messaging_product":"whatsapp","status":"read","message_id":…,"typing_indicator"?:{"type":"text"}}`.
fn parse_mark_read(root: &Obj<'_, '_>) -> Result<Request, ApiError> {
    let status = root.str("status", "\"read\" to mark a message as read")?;
    if status != "read" {
        return Err(invalid(
            &root.at("status"),
            format_args!("is \"{status}\"; the only status a business can set is \"read\". Set it to \"read\", or remove `status` to send a message."),
        ));
    }
    let message_id = root.str(
        "message_id",
        "the id (wamid.…) of the received message to mark as read",
    )?;
    let typing_indicator = match root.opt_obj("typing_indicator")? {
        None => false,
        Some(indicator) => {
            let kind = indicator.str("type", "\"text\", the only typing indicator")?;
            if kind != "text" {
                return Err(invalid(
                    &indicator.at("type"),
                    format_args!("is \"{kind}\"; the only typing indicator is \"text\". Set it to \"text\" or remove `typing_indicator`."),
                ));
            }
            true
        }
    };
    Ok(Request::MarkRead {
        message_id: message_id.to_string(),
        typing_indicator,
    })
}

fn parse_send(root: &Obj<'_, '_>, sender_cc: &str) -> Result<SendRequest, ApiError> {
    if let Some(kind) = root.opt_str("recipient_type")? {
        match kind {
            "individual" => {}
            "group" => {
                return Err(invalid(
                    &root.at("recipient_type"),
                    "is \"group\", but greenlight does not support the Groups API. Send to one customer at a time with \"individual\" (or omit `recipient_type`).",
                ))
            }
            other => {
                return Err(invalid(
                    &root.at("recipient_type"),
                    format_args!("is \"{other}\"; it must be \"individual\". Set it to \"individual\" or omit it."),
                ))
            }
        }
    }
    let (recipient, input) = parse_recipient(root, sender_cc)?;

    let msg_type = match root.get("type") {
        None => MessageType::Text,
        Some(Value::String(s)) => MessageType::parse(s).ok_or_else(|| {
            ApiError::unsupported_type(format!(
                "`type` is \"{s}\", which is not a message type greenlight can send. Use one of: {SUPPORTED_TYPES}."
            ))
        })?,
        Some(other) => return Err(wrong_kind(&root.at("type"), "a string naming the message type", other)),
    };

    let context_message_id = match root.opt_obj("context")? {
        None => None,
        Some(context) => Some(
            context
                .str(
                    "message_id",
                    "the id (wamid.…) of the message this one replies to, or remove `context`",
                )?
                .to_string(),
        ),
    };
    let biz_opaque_callback_data = root
        .opt_str_max("biz_opaque_callback_data", BIZ_OPAQUE_MAX)?
        .map(str::to_string);

    let key = msg_type.as_str();
    let payload = root.get(key).ok_or_else(|| {
        let hint = if root.has("type") {
            format!("a message of type \"{key}\" carries its content in an object named `{key}`")
        } else {
            "`type` is absent, so this is a text message; add `text` with a `body`, or set `type`"
                .to_string()
        };
        missing(&root.at(key), &hint)
    })?;
    let mut media_ids = Vec::new();
    let mut template = None;
    match msg_type {
        MessageType::Text => content::text(&Obj::new(payload, root.at(key))?)?,
        MessageType::Image
        | MessageType::Audio
        | MessageType::Video
        | MessageType::Document
        | MessageType::Sticker => {
            content::media(&Obj::new(payload, root.at(key))?, msg_type, &mut media_ids)?
        }
        MessageType::Location => content::location(&Obj::new(payload, root.at(key))?)?,
        MessageType::Contacts => content::contacts(payload, root.at(key))?,
        MessageType::Interactive => {
            interactive::interactive(&Obj::new(payload, root.at(key))?, &mut media_ids)?
        }
        MessageType::Reaction => content::reaction(&Obj::new(payload, root.at(key))?)?,
        MessageType::Template => {
            template = Some(template::template(&Obj::new(payload, root.at(key))?)?)
        }
    }

    Ok(SendRequest {
        recipient,
        input,
        msg_type,
        // taken from the body or copied by the caller (`parse_request[_owned]`)
        payload: Value::Null,
        context_message_id,
        biz_opaque_callback_data,
        media_ids,
        template,
    })
}

/// `to` (a phone number) or `recipient` (a BSUID). When both are present `to` is used, as
/// whatsapp-api-js may send both; `recipient` must still be well formed.
fn parse_recipient(root: &Obj<'_, '_>, sender_cc: &str) -> Result<(Recipient, String), ApiError> {
    const TO_HINT: &str = "the recipient's phone number with its country code, e.g. \"+16505551234\" (or address a business-scoped user id with `recipient`)";
    let bsuid = match root.get("recipient") {
        None => None,
        Some(Value::String(s)) if s.trim().is_empty() => None,
        Some(Value::String(s)) if phone::is_bsuid(s) => Some(s.as_str()),
        Some(Value::String(s)) => {
            return Err(invalid(
                &root.at("recipient"),
                format_args!("is \"{s}\", which is not a business-scoped user id: two uppercase letters, a dot and digits, e.g. \"US.13491208655302741918\". Send phone numbers in `to` instead."),
            ))
        }
        Some(other) => return Err(wrong_kind(&root.at("recipient"), "a string", other)),
    };
    match root.get("to") {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok((
            Recipient::WaId(phone::normalize_phone(s, sender_cc)?),
            s.clone(),
        )),
        // Some clients send the number as a JSON number; Graph takes scalars either way.
        Some(Value::Number(n)) if n.is_u64() => {
            let input = n.to_string();
            Ok((
                Recipient::WaId(phone::normalize_phone(&input, sender_cc)?),
                input,
            ))
        }
        Some(Value::String(_)) | None => match bsuid {
            Some(id) => Ok((Recipient::UserId(id.to_string()), id.to_string())),
            None => Err(missing(&root.at("to"), TO_HINT)),
        },
        Some(other) => Err(wrong_kind(
            &root.at("to"),
            "a string holding a phone number",
            other,
        )),
    }
}
