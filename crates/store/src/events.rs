//! How the outbox keeps a status event's `value`: as the status's fields, rendered when read.
//!
//! Every send queues a `sent` event and every delivery a `delivered` one. As `value` objects
//! they were ~600 bytes each, three fifths of it keys and structure that do not depend on the
//! message, and the largest item a send writes, whether the event is delivered or `skipped`
//! because nobody can receive it. So the outbox stores a status change as a JSON array of its
//! fields (233 bytes for an in-window text's `sent` event; docs/BENCHMARKS.md, nineteenth
//! round):
//!
//! `[1, wamid, status, at, recipient_id, recipient_user_id, biz_opaque_callback_data,
//! display_phone_number, phone_number_id]`, and, when the status carries pricing, four more:
//! `conversation_id, expiration, category, pricing_type`
//!
//! with times in ms and absent fields `null`. [`value_json`] renders it with
//! [`webhook::status_json`], the code that wrote the `value` itself before: the same fields
//! give the same bytes, so every attempt and replay signs the same body. The pricing's
//! `billable` and model follow from its category and type ([`Pricing::from_parts`]).
//!
//! The rendering is part of the form: an event stored today must give the same bytes when it
//! is retried or replayed after an upgrade. A change to what `status_json` writes for the same
//! fields therefore needs a new tag, with this one's rendering kept for the rows that hold it
//! (a test pins the bytes v1 renders to).
//!
//! A status with errors, or whose pricing does not follow from those two, is stored as its
//! `value`, as is every other event (the sandbox's `read` statuses, inbound messages, account
//! and template updates, the relays of Meta's events in gateway mode, which must stay as Meta
//! wrote them). A `value` is an object and this form an array, so the first character tells
//! them apart. The leading `1` names the form: to a build that reads these arrays, a tag it
//! does not know (a newer build wrote it) is an error for the caller to report, never a body
//! sent. A build from before them would send the array itself (docs/ARCHITECTURE.md says how
//! to upgrade).

use greenlight_domain::pricing::Pricing;
use greenlight_domain::webhook::{self, ConversationInfo, Metadata, StatusChange};
use greenlight_domain::Millis;
use serde_json::Value;

/// The form's tag: the array's first element.
const STATUS_V1: i64 = 1;

/// What the outbox stores for this status change: its fields, or its `value` when they cannot
/// say it (see the module docs).
pub(crate) fn stored_status(meta: &Metadata, s: &StatusChange) -> String {
    let pricing_follows = s
        .pricing
        .as_ref()
        .is_none_or(|(p, _)| Pricing::from_parts(p.category, p.pricing_type) == Some(*p));
    if s.error.is_some() || !pricing_follows {
        return webhook::status_json(meta, s);
    }
    // on the send path: numbers written in place, by `itoa` (`fmt` costs ~800 instructions
    // an event more)
    let mut num = itoa::Buffer::new();
    let mut out = String::with_capacity(256);
    out.push('[');
    out.push_str(num.format(STATUS_V1));
    for field in [Some(s.wamid), Some(s.status)] {
        push(&mut out, field);
    }
    out.push(',');
    out.push_str(num.format(s.at));
    for field in [
        Some(s.recipient_id),
        s.recipient_user_id,
        s.biz_opaque_callback_data,
        Some(meta.display_phone_number),
        Some(meta.phone_number_id),
    ] {
        push(&mut out, field);
    }
    if let Some((p, conv)) = &s.pricing {
        push(&mut out, Some(conv.id));
        out.push(',');
        match conv.expiration {
            Some(e) => out.push_str(num.format(e)),
            None => out.push_str("null"),
        }
        push(&mut out, Some(p.category));
        push(&mut out, Some(p.pricing_type));
    }
    out.push(']');
    out
}

/// `,` and the field as a JSON string, or `null`.
fn push(out: &mut String, field: Option<&str>) {
    out.push(',');
    match field {
        Some(s) => push_json_str(out, s),
        None => out.push_str("null"),
    }
}

/// `s` as a JSON string, as `serde_json` writes it: as is between quotes when nothing in it
/// needs escaping (the common case), else by `serde_json`.
pub(crate) fn push_json_str(out: &mut String, s: &str) {
    if needs_escape(s) {
        // a `&str` always serializes
        out.push_str(&serde_json::to_string(s).unwrap_or_default());
    } else {
        out.push('"');
        out.push_str(s);
        out.push('"');
    }
}

/// Whether JSON needs any of `s`'s bytes escaped: a control character, `"` or `\`. Every byte
/// is looked at (no early exit), which lets the loop run on several bytes at a time: the
/// fields are short and mostly clean.
fn needs_escape(s: &str) -> bool {
    s.bytes().fold(false, |seen, b| {
        seen | (b < 0x20) | (b == b'"') | (b == b'\\')
    })
}

/// The event's `value` as JSON text, from what the outbox stores: a `value` as is, a status's
/// fields rendered. `Err` says why a stored form does not read (a damaged row, or a form a
/// newer build wrote).
pub(crate) fn value_json(stored: String) -> Result<String, String> {
    if !stored.starts_with('[') {
        return Ok(stored);
    }
    let fields: Vec<Value> =
        serde_json::from_str(&stored).map_err(|e| format!("not a JSON array: {e}"))?;
    match fields.first().and_then(Value::as_i64) {
        Some(STATUS_V1) => status_value_json(&fields),
        _ => Err(format!(
            "unknown stored form {}",
            fields.first().unwrap_or(&Value::Null)
        )),
    }
}

/// Whether a stored event (either form) is message `wamid`'s status `status`.
pub(crate) fn is_status_of(stored: &str, wamid: &str, status: &str) -> bool {
    let Ok(json) = value_json(stored.to_string()) else {
        return false;
    };
    let Ok(value) = serde_json::from_str::<Value>(&json) else {
        return false;
    };
    value["statuses"].as_array().is_some_and(|all| {
        all.iter()
            .any(|s| s["id"] == wamid && s["status"] == status)
    })
}

fn status_value_json(f: &[Value]) -> Result<String, String> {
    if f.len() != 9 && f.len() != 13 {
        return Err(format!("a status has 9 or 13 fields, not {}", f.len()));
    }
    let opt = |i: usize| match &f[i] {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.as_str())),
        v => Err(format!("field {i} is not a string: {v}")),
    };
    let text = |i: usize| opt(i)?.ok_or_else(|| format!("field {i} is null"));
    let time = |i: usize| match &f[i] {
        Value::Null => Ok(None),
        v => v
            .as_i64()
            .map(Some)
            .ok_or_else(|| format!("field {i} is not a time: {v}")),
    };
    let pricing = if f.len() == 13 {
        let (category, ty) = (text(11)?, text(12)?);
        let p = Pricing::from_parts(category, ty)
            .ok_or_else(|| format!("no pricing has category {category} and type {ty}"))?;
        Some((
            p,
            ConversationInfo {
                id: text(9)?,
                expiration: time(10)?,
            },
        ))
    } else {
        None
    };
    let at: Millis = time(3)?.ok_or("field 3 is null")?;
    let meta = Metadata {
        display_phone_number: text(7)?,
        phone_number_id: text(8)?,
    };
    let change = StatusChange {
        wamid: text(1)?,
        status: text(2)?,
        at,
        recipient_id: text(4)?,
        recipient_user_id: opt(5)?,
        biz_opaque_callback_data: opt(6)?,
        pricing,
        error: None,
    };
    Ok(webhook::status_json(&meta, &change))
}

#[cfg(test)]
mod tests {
    use super::*;
    use greenlight_domain::pricing::price;
    use greenlight_domain::ApiError;
    use proptest::prelude::*;

    #[test]
    fn exactly_controls_quotes_and_backslashes_need_escaping() {
        for s in ["", "wamid.HBgL", " ", "~\u{7f}é中😀", "a/b"] {
            assert!(!needs_escape(s), "{s:?}");
        }
        for s in ["\u{1f}", "\n", "a\"b", "end\\", "\u{0}x"] {
            assert!(needs_escape(s), "{s:?}");
        }
    }

    fn meta() -> Metadata<'static> {
        Metadata {
            display_phone_number: "15550783881",
            phone_number_id: "106540352242922",
        }
    }

    /// An in-window text's `sent` event, as the send path writes it.
    fn sent() -> StatusChange<'static> {
        StatusChange {
            wamid: "wamid.HBgLABokMPRJcACc0XMHs6E2kBy_PJasgegTbisl",
            status: "sent",
            at: 1_750_030_073_123,
            recipient_id: "15551234567",
            recipient_user_id: Some("US.13491208655302741918"),
            biz_opaque_callback_data: None,
            pricing: Some((
                price(None, true, false),
                ConversationInfo {
                    id: "0a1b2c3d4e5f60718293a4b5c6d7e8f9",
                    expiration: Some(1_750_116_473_123),
                },
            )),
            error: None,
        }
    }

    #[test]
    fn the_stored_form() {
        let stored = stored_status(&meta(), &sent());
        assert_eq!(
            stored,
            r#"[1,"wamid.HBgLABokMPRJcACc0XMHs6E2kBy_PJasgegTbisl","sent",1750030073123,"15551234567","US.13491208655302741918",null,"15550783881","106540352242922","0a1b2c3d4e5f60718293a4b5c6d7e8f9",1750116473123,"service","free_customer_service"]"#
        );
        let value = webhook::status_json(&meta(), &sent());
        assert_eq!(value_json(stored.clone()).unwrap(), value);
        // the figures the module docs and BENCHMARKS quote (a wamid as `ids::wamid` makes it)
        assert_eq!((stored.len(), value.len()), (233, 600));
    }

    /// A stored status names its message and status in either form; anything else, or a row
    /// that does not read, is no one's.
    #[test]
    fn a_stored_status_says_whose_it_is() {
        let wamid = sent().wamid;
        let compact = stored_status(&meta(), &sent());
        let full = webhook::status_json(&meta(), &sent());
        for stored in [&compact, &full] {
            assert!(is_status_of(stored, wamid, "sent"));
            assert!(!is_status_of(stored, wamid, "delivered"));
            assert!(!is_status_of(stored, "wamid.other", "sent"));
        }
        assert!(!is_status_of("[2,\"x\"]", wamid, "sent"));
        assert!(!is_status_of("{\"messages\":[]}", wamid, "sent"));
    }

    /// What a v1 row renders to, byte for byte: if this changes, rows already stored would be
    /// sent differently on their next attempt (see the module docs).
    #[test]
    fn v1_renders_to_these_bytes() {
        let stored = r#"[1,"wamid.A","delivered",1750030073999,"15551234567","US.1","ref \"7\"","15550783881","1065","c1",null,"marketing","regular"]"#;
        assert_eq!(
            value_json(stored.into()).unwrap(),
            concat!(
                r#"{"contacts":[{"user_id":"US.1","wa_id":"15551234567"}],"messaging_product":"whatsapp","#,
                r#""metadata":{"display_phone_number":"15550783881","phone_number_id":"1065"},"#,
                r#""statuses":[{"biz_opaque_callback_data":"ref \"7\"","conversation":{"id":"c1","origin":{"type":"marketing"}},"#,
                r#""id":"wamid.A","pricing":{"billable":true,"category":"marketing","pricing_model":"PMP","type":"regular"},"#,
                r#""recipient_id":"15551234567","recipient_user_id":"US.1","status":"delivered","timestamp":"1750030073"}]}"#
            )
        );
        let bare = r#"[1,"wamid.B","sent",1000,"1555",null,null,"1555","1066"]"#;
        assert_eq!(
            value_json(bare.into()).unwrap(),
            concat!(
                r#"{"messaging_product":"whatsapp","metadata":{"display_phone_number":"1555","phone_number_id":"1066"},"#,
                r#""statuses":[{"id":"wamid.B","recipient_id":"1555","status":"sent","timestamp":"1"}]}"#
            )
        );
    }

    #[test]
    fn a_status_with_errors_is_stored_as_its_value() {
        let e = ApiError::reengagement("the window is closed");
        let change = StatusChange {
            status: "failed",
            pricing: None,
            error: Some(&e),
            ..sent()
        };
        let stored = stored_status(&meta(), &change);
        assert!(stored.starts_with('{'), "{stored}");
        assert_eq!(stored, webhook::status_json(&meta(), &change));
        assert_eq!(value_json(stored.clone()).unwrap(), stored);
    }

    #[test]
    fn a_pricing_that_does_not_follow_is_stored_as_its_value() {
        let odd = Pricing {
            billable: false,
            ..price(Some("marketing"), false, false)
        };
        let mut change = sent();
        change.pricing.as_mut().unwrap().0 = odd;
        let stored = stored_status(&meta(), &change);
        assert!(stored.starts_with('{'), "{stored}");
        assert!(stored.contains(r#""billable":false,"category":"marketing""#));
    }

    #[test]
    fn other_values_read_as_they_are() {
        let v = r#"{"messaging_product":"whatsapp","statuses":[]}"#.to_string();
        assert_eq!(value_json(v.clone()).unwrap(), v);
    }

    #[test]
    fn forms_that_do_not_read_are_errors() {
        let full = stored_status(&meta(), &sent());
        for (stored, why) in [
            ("[2,\"x\"]".to_string(), "unknown stored form 2"),
            ("[]".to_string(), "unknown stored form null"),
            ("[1,\"x\"".to_string(), "not a JSON array"),
            (full.replacen("[1,", "[1,\"x\",", 1), "not 14"),
            (full.replace("\"sent\"", "7"), "field 2 is not a string"),
            (full.replace("1750030073123", "null"), "field 3 is null"),
            (full.replace("\"service\"", "\"lunch\""), "no pricing has"),
        ] {
            let e = value_json(stored.clone()).unwrap_err();
            assert!(e.contains(why), "{stored}: {e}");
        }
    }

    fn text() -> impl Strategy<Value = String> {
        // quotes, backslashes, controls, non-ASCII and astral characters included
        proptest::string::string_regex("[a-z0-9 .\"\\\\\u{1}\u{7f}é中😀]{0,12}").unwrap()
    }

    proptest! {
        /// Every status without errors is stored as its fields and reads back as the bytes
        /// `status_json` gives, whatever its text holds.
        #[test]
        fn statuses_read_back_as_their_value(
            strings in proptest::collection::vec(text(), 7),
            user in proptest::option::of(text()),
            opaque in proptest::option::of(text()),
            at in any::<i64>(),
            priced in proptest::option::of((0usize..4, any::<bool>(), any::<bool>(),
                proptest::option::of(any::<i64>()))),
        ) {
            let meta = Metadata { display_phone_number: &strings[0], phone_number_id: &strings[1] };
            let category = |i: usize| [None, Some("utility"), Some("authentication"), Some("marketing")][i];
            let change = StatusChange {
                wamid: &strings[2],
                status: &strings[3],
                at,
                recipient_id: &strings[4],
                recipient_user_id: user.as_deref(),
                biz_opaque_callback_data: opaque.as_deref(),
                pricing: priced.map(|(c, w, f, expiration)| {
                    (price(category(c), w, f), ConversationInfo { id: &strings[5], expiration })
                }),
                error: None,
            };
            let stored = stored_status(&meta, &change);
            prop_assert!(stored.starts_with('['), "{}", stored);
            prop_assert_eq!(value_json(stored).unwrap(), webhook::status_json(&meta, &change));
        }
    }
}
