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

/// [`status_value`] as the text `serde_json` writes for it (compact, keys sorted), written
/// directly: the send path stores one per message and its delivery another, and building the
/// tree to serialize it was ~9 % of the store writer's time. A test checks it byte for byte
/// against the built value.
pub fn status_json(meta: &Metadata, s: &StatusChange) -> String {
    fn str_(out: &mut String, v: &str) {
        // a `&str` always serializes
        out.push_str(&serde_json::to_string(v).unwrap_or_default());
    }
    fn key(out: &mut String, k: &str) {
        out.push('"');
        out.push_str(k);
        out.push_str("\":");
    }
    /// `"k":"v",`
    fn kv(out: &mut String, k: &str, v: &str) {
        key(out, k);
        str_(out, v);
        out.push(',');
    }
    let mut out = String::with_capacity(512);
    out.push('{');
    if let Some(u) = s.recipient_user_id {
        key(&mut out, "contacts");
        out.push_str("[{");
        kv(&mut out, "user_id", u);
        key(&mut out, "wa_id");
        str_(&mut out, s.recipient_id);
        out.push_str("}],");
    }
    key(&mut out, "messaging_product");
    out.push_str("\"whatsapp\",");
    key(&mut out, "metadata");
    out.push('{');
    kv(&mut out, "display_phone_number", meta.display_phone_number);
    key(&mut out, "phone_number_id");
    str_(&mut out, meta.phone_number_id);
    out.push_str("},");
    key(&mut out, "statuses");
    out.push_str("[{");
    // the status object's keys, sorted
    if let Some(b) = s.biz_opaque_callback_data {
        kv(&mut out, "biz_opaque_callback_data", b);
    }
    if let Some((p, conv)) = &s.pricing {
        key(&mut out, "conversation");
        out.push('{');
        if let Some(e) = conv.expiration {
            kv(&mut out, "expiration_timestamp", &secs(e));
        }
        kv(&mut out, "id", conv.id);
        key(&mut out, "origin");
        out.push('{');
        key(&mut out, "type");
        str_(&mut out, p.category);
        out.push_str("}},");
    }
    if let Some(e) = s.error {
        key(&mut out, "errors");
        out.push_str(&serde_json::to_string(&json!([e.webhook_error()])).unwrap_or_default());
        out.push(',');
    }
    kv(&mut out, "id", s.wamid);
    if let Some((p, _)) = &s.pricing {
        key(&mut out, "pricing");
        out.push('{');
        key(&mut out, "billable");
        out.push_str(if p.billable { "true" } else { "false" });
        out.push(',');
        kv(&mut out, "category", p.category);
        kv(&mut out, "pricing_model", p.pricing_model);
        key(&mut out, "type");
        str_(&mut out, p.pricing_type);
        out.push_str("},");
    }
    kv(&mut out, "recipient_id", s.recipient_id);
    if let Some(u) = s.recipient_user_id {
        kv(&mut out, "recipient_user_id", u);
    }
    kv(&mut out, "status", s.status);
    key(&mut out, "timestamp");
    str_(&mut out, &secs(s.at));
    out.push_str("}]}");
    out
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

/// The bytes of [`envelope`] around a change `value` already serialized (the outbox stores it
/// as compact JSON text), written without parsing it into a tree and serializing it again:
/// `to_meta_bytes(&envelope(..))` byte for byte when `value_json` is what `serde_json` writes for
/// the value (compact, keys sorted), which is how greenlight stores every change. Text that is
/// not JSON becomes `null`, as it would have parsed.
pub fn envelope_bytes(waba_id: &str, field: &str, value_json: &str, at: Millis) -> Vec<u8> {
    let valid = serde_json::from_str::<serde::de::IgnoredAny>(value_json).is_ok();
    let value = if valid { value_json.trim() } else { "null" };
    let quoted = |s: &str| serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into());
    let mut out = String::with_capacity(value.len() + waba_id.len() + 128);
    // keys in the order `serde_json` writes a map's: sorted
    out.push_str("{\"entry\":[{\"changes\":[{\"field\":");
    out.push_str(&quoted(field));
    out.push_str(",\"value\":");
    out.push_str(value);
    out.push_str("}],\"id\":");
    out.push_str(&quoted(waba_id));
    if field != "messages" {
        out.push_str(",\"time\":");
        out.push_str(&at.div_euclid(1000).to_string());
    }
    out.push_str("}],\"object\":\"whatsapp_business_account\"}");
    escape_non_ascii(&out).into_bytes()
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

    /// The envelope written around stored text is the envelope built and serialized, byte for
    /// byte, for the shapes greenlight stores (non-ASCII, nesting, numbers, escapes); text that
    /// is not JSON is `null` in both.
    #[test]
    fn envelope_bytes_match_the_built_envelope() {
        let meta = Metadata {
            display_phone_number: "15550001111",
            phone_number_id: "1001",
        };
        let change = StatusChange {
            wamid: "wamid.é",
            status: "delivered",
            at: 1_700_000_000_123,
            recipient_id: "15551234567",
            recipient_user_id: Some("US.13491208655302741918"),
            biz_opaque_callback_data: Some("tab\there \"quoted\" 中😀"),
            pricing: None,
            error: None,
        };
        let values = [
            status_value(&meta, &change),
            json!({}),
            json!({"n": [1, -2, 3.5, 1e300, null, true], "s": "\u{1}\\/", "z": {"b": 1, "a": 2}}),
        ];
        for field in ["messages", "account_update"] {
            for v in &values {
                let stored = serde_json::to_string(v).unwrap();
                assert_eq!(
                    String::from_utf8(envelope_bytes(
                        "102290129340398",
                        field,
                        &stored,
                        1_700_000_000_999
                    ))
                    .unwrap(),
                    String::from_utf8(to_meta_bytes(&envelope(
                        "102290129340398",
                        field,
                        v.clone(),
                        1_700_000_000_999
                    )))
                    .unwrap(),
                );
            }
            assert_eq!(
                envelope_bytes("1", field, "{not json", 5_000),
                to_meta_bytes(&envelope("1", field, Value::Null, 5_000))
            );
        }
    }

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
    fn status_json_is_the_built_value_serialized() {
        let e = ApiError::reengagement("closed \"now\" é");
        let metas = [
            Metadata {
                display_phone_number: "15550001111",
                phone_number_id: "1001",
            },
            Metadata {
                display_phone_number: "1 \"5\"",
                phone_number_id: "é😀",
            },
        ];
        let mut n = 0;
        for meta in &metas {
            for user in [None, Some("US.13491208655302741918"), Some("\u{1}\\")] {
                for opaque in [None, Some("tab\there \"quoted\" 中😀")] {
                    for category in [None, Some("marketing"), Some("utility")] {
                        for expiration in [None, Some(1_750_116_480_999)] {
                            for error in [None, Some(&e)] {
                                let change = StatusChange {
                                    wamid: "wamid.HBgL\u{7f}é",
                                    status: "delivered",
                                    at: 1_700_000_000_123,
                                    recipient_id: "15551234567",
                                    recipient_user_id: user,
                                    biz_opaque_callback_data: opaque,
                                    pricing: category.map(|c| {
                                        (
                                            crate::pricing::price(Some(c), c == "utility", false),
                                            ConversationInfo {
                                                id: "conv\"1",
                                                expiration,
                                            },
                                        )
                                    }),
                                    error,
                                };
                                assert_eq!(
                                    status_json(meta, &change),
                                    serde_json::to_string(&status_value(meta, &change)).unwrap()
                                );
                                n += 1;
                            }
                        }
                    }
                }
            }
        }
        assert_eq!(n, 144);
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
