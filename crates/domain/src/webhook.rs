//! Webhook payloads exactly as Meta sends them (cloud-api-facts.md §10, the captured fixtures).
//!
//! This module builds the `value` objects of the `messages` field and the envelope, and
//! serialises bodies the way Meta does: compact JSON with every character above U+007F written
//! as a lowercase `\uXXXX` escape (surrogate pairs beyond the BMP). The signature is computed by
//! the delivery worker over exactly these bytes.

use crate::error::ApiError;
use crate::pricing::Pricing;
use crate::Millis;
use serde_json::{json, Map, Value};

/// The business number as webhooks name it.
#[derive(Debug, Clone)]
pub struct Metadata<'a> {
    /// Digits only, as in the fixtures (`15550783881`).
    pub display_phone_number: &'a str,
    pub phone_number_id: &'a str,
}

impl Metadata<'_> {
    fn to_json(&self) -> Value {
        json!({ "display_phone_number": self.display_phone_number, "phone_number_id": self.phone_number_id })
    }
}

fn secs(t: Millis) -> String {
    (t.div_euclid(1000)).to_string()
}

/// One outbound message's status change.
#[derive(Debug, Clone)]
pub struct StatusChange<'a> {
    pub wamid: &'a str,
    pub status: &'a str,
    pub at: Millis,
    pub recipient_id: &'a str,
    pub recipient_user_id: Option<&'a str>,
    pub biz_opaque_callback_data: Option<&'a str>,
    /// `conversation` + `pricing` are carried by `sent` and `delivered` (not `read`/`failed`).
    pub pricing: Option<(Pricing, ConversationInfo<'a>)>,
    pub error: Option<&'a ApiError>,
}

#[derive(Debug, Clone)]
pub struct ConversationInfo<'a> {
    pub id: &'a str,
    /// Present on `sent` only.
    pub expiration: Option<Millis>,
}

pub fn status_value(meta: &Metadata, s: &StatusChange) -> Value {
    let mut st = Map::new();
    st.insert("id".into(), json!(s.wamid));
    st.insert("status".into(), json!(s.status));
    st.insert("timestamp".into(), json!(secs(s.at)));
    st.insert("recipient_id".into(), json!(s.recipient_id));
    if let Some(u) = s.recipient_user_id {
        st.insert("recipient_user_id".into(), json!(u));
    }
    if let Some(b) = s.biz_opaque_callback_data {
        st.insert("biz_opaque_callback_data".into(), json!(b));
    }
    if let Some((p, conv)) = &s.pricing {
        let mut c = Map::new();
        c.insert("id".into(), json!(conv.id));
        if let Some(e) = conv.expiration {
            c.insert("expiration_timestamp".into(), json!(secs(e)));
        }
        c.insert("origin".into(), json!({ "type": p.category }));
        st.insert("conversation".into(), Value::Object(c));
        st.insert(
            "pricing".into(),
            serde_json::to_value(p).unwrap_or(Value::Null),
        );
    }
    if let Some(e) = s.error {
        st.insert("errors".into(), json!([e.webhook_error()]));
    }
    let mut value = json!({
        "messaging_product": "whatsapp",
        "metadata": meta.to_json(),
    });
    // Since the 2026 business-scoped user ids, status changes name the customer in `contacts`
    // too (clients such as pywa 4.5 build the user from it).
    if let Some(u) = s.recipient_user_id {
        value["contacts"] = json!([{ "wa_id": s.recipient_id, "user_id": u }]);
    }
    value["statuses"] = json!([Value::Object(st)]);
    value
}

/// A customer's message to the business. `message` is the inbound object without
/// `from`/`id`/`timestamp` (its `type` and type payload, `context`, `referral`…).
pub struct Inbound<'a> {
    pub wamid: &'a str,
    pub at: Millis,
    pub from: &'a str,
    pub from_user_id: Option<&'a str>,
    pub profile_name: Option<&'a str>,
    pub message: &'a Map<String, Value>,
}

pub fn inbound_value(meta: &Metadata, m: &Inbound) -> Value {
    let mut contact = Map::new();
    contact.insert(
        "profile".into(),
        json!({ "name": m.profile_name.unwrap_or("") }),
    );
    contact.insert("wa_id".into(), json!(m.from));
    if let Some(u) = m.from_user_id {
        contact.insert("user_id".into(), json!(u));
    }
    let mut msg = Map::new();
    msg.insert("from".into(), json!(m.from));
    if let Some(u) = m.from_user_id {
        msg.insert("from_user_id".into(), json!(u));
    }
    msg.insert("id".into(), json!(m.wamid));
    msg.insert("timestamp".into(), json!(secs(m.at)));
    for (k, v) in m.message {
        if !matches!(k.as_str(), "from" | "id" | "timestamp" | "from_user_id") {
            msg.insert(k.clone(), v.clone());
        }
    }
    json!({
        "messaging_product": "whatsapp",
        "metadata": meta.to_json(),
        "contacts": [Value::Object(contact)],
        "messages": [Value::Object(msg)],
    })
}

/// The `user_preferences` value: the customer stopped or resumed marketing messages (§9).
pub fn user_preferences_value(
    meta: &Metadata,
    wa_id: &str,
    user_id: &str,
    stop: bool,
    at: Millis,
) -> Value {
    let (value, detail) = if stop {
        ("stop", "User requested to stop marketing messages")
    } else {
        ("resume", "User requested to resume marketing messages")
    };
    json!({
        "messaging_product": "whatsapp",
        "metadata": meta.to_json(),
        "contacts": [{ "wa_id": wa_id, "user_id": user_id }],
        "user_preferences": [{
            "wa_id": wa_id,
            "user_id": user_id,
            "detail": detail,
            "category": "marketing_messages",
            "value": value,
            "timestamp": secs(at),
        }],
    })
}

/// The envelope of one change. `time` is carried by every field but `messages` (§10.3).
pub fn envelope(waba_id: &str, field: &str, value: Value, at: Millis) -> Value {
    let mut entry = Map::new();
    entry.insert("id".into(), json!(waba_id));
    if field != "messages" {
        entry.insert("time".into(), json!(at.div_euclid(1000)));
    }
    entry.insert(
        "changes".into(),
        json!([{ "value": value, "field": field }]),
    );
    json!({ "object": "whatsapp_business_account", "entry": [Value::Object(entry)] })
}

/// Compact JSON with every non-ASCII character escaped as lowercase `\uXXXX` (UTF-16 units).
pub fn to_meta_bytes(v: &Value) -> Vec<u8> {
    let compact = serde_json::to_string(v).unwrap_or_else(|_| "null".into());
    escape_non_ascii(&compact).into_bytes()
}

/// Escapes every character above U+007F. Valid on serialised JSON because such characters can
/// only occur inside strings, where `\uXXXX` means the same character.
pub fn escape_non_ascii(s: &str) -> String {
    if s.is_ascii() {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 16);
    let mut buf = [0u16; 2];
    for ch in s.chars() {
        if ch.is_ascii() {
            out.push(ch);
        } else {
            for unit in ch.encode_utf16(&mut buf) {
                out.push_str(&format!("\\u{:04x}", unit));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_bmp_and_astral_characters_lowercase() {
        let v = json!({"t": "é中😀"});
        let s = String::from_utf8(to_meta_bytes(&v)).unwrap();
        assert_eq!(s, r#"{"t":"\u00e9\u4e2d\ud83d\ude00"}"#);
        // and it parses back to the same value
        assert_eq!(serde_json::from_str::<Value>(&s).unwrap(), v);
    }

    #[test]
    fn ascii_is_untouched_and_compact() {
        assert_eq!(
            to_meta_bytes(&json!({"a": [1, "x"]})),
            br#"{"a":[1,"x"]}"#.to_vec()
        );
    }

    #[test]
    fn messages_envelope_has_no_time_other_fields_do() {
        let e = envelope("1", "messages", json!({}), 5_000);
        assert!(e["entry"][0].get("time").is_none());
        let e = envelope("1", "account_update", json!({}), 5_000);
        assert_eq!(e["entry"][0]["time"], 5);
        assert_eq!(e["object"], "whatsapp_business_account");
    }

    #[test]
    fn sent_status_matches_fixture_shape() {
        let meta = Metadata {
            display_phone_number: "15550783881",
            phone_number_id: "106540352242922",
        };
        let p = crate::pricing::price(Some("marketing"), false, false);
        let v = status_value(
            &meta,
            &StatusChange {
                wamid: "wamid.X",
                status: "sent",
                at: 1_750_030_073_000,
                recipient_id: "16505551234",
                recipient_user_id: None,
                biz_opaque_callback_data: None,
                pricing: Some((
                    p,
                    ConversationInfo {
                        id: "c1",
                        expiration: Some(1_750_116_480_000),
                    },
                )),
                error: None,
            },
        );
        let s = &v["statuses"][0];
        assert_eq!(s["timestamp"], "1750030073");
        assert_eq!(s["conversation"]["expiration_timestamp"], "1750116480");
        assert_eq!(s["conversation"]["origin"]["type"], "marketing");
        assert_eq!(
            s["pricing"],
            json!({"billable": true, "pricing_model": "PMP", "type": "regular", "category": "marketing"})
        );
        assert_eq!(v["metadata"]["phone_number_id"], "106540352242922");
    }

    #[test]
    fn failed_status_carries_errors() {
        let meta = Metadata {
            display_phone_number: "1",
            phone_number_id: "2",
        };
        let e = ApiError::reengagement("closed");
        let v = status_value(
            &meta,
            &StatusChange {
                wamid: "w",
                status: "failed",
                at: 0,
                recipient_id: "3",
                recipient_user_id: Some("US.1"),
                biz_opaque_callback_data: Some("cb"),
                pricing: None,
                error: Some(&e),
            },
        );
        let s = &v["statuses"][0];
        assert_eq!(s["errors"][0]["code"], 131047);
        assert_eq!(s["biz_opaque_callback_data"], "cb");
        assert!(s.get("pricing").is_none());
    }
}
