//! Unit tests of [`parse_request`]: for every type a valid body, each refusal with its code and
//! field path, and the limits at their exact edges.

use serde_json::{json, Value};

use super::fields::is_http_url;
use super::*;

/// The sending business number is in the US.
const CC: &str = "1";

/// Every body of these tests goes through both entry points, which must agree.
fn parse(body: &Value) -> Result<Request, ApiError> {
    let borrowed = parse_request(body, CC);
    let owned = parse_request_owned(body.clone(), CC);
    assert_eq!(
        format!("{borrowed:?}"),
        format!("{owned:?}"),
        "parse_request and parse_request_owned disagree on {body}"
    );
    borrowed
}

fn send(body: Value) -> SendRequest {
    match parse(&body) {
        Ok(Request::Send(req)) => req,
        other => panic!("expected a send, got {other:?}\nbody: {body}"),
    }
}

/// Asserts a refusal with `code` whose details name `path` (in backticks).
fn refuse(body: Value, code: i64, path: &str) -> ApiError {
    let err = match parse(&body) {
        Err(e) => e,
        Ok(req) => panic!("expected #{code} at `{path}`, got {req:?}\nbody: {body}"),
    };
    assert_eq!(err.code, code, "wrong code for `{path}`: {err}");
    assert!(
        err.details.contains(&format!("`{path}`")),
        "details must name `{path}`: {}",
        err.details
    );
    err
}

fn assert_mentions(err: &ApiError, words: &[&str]) {
    for w in words {
        assert!(
            err.details.contains(w),
            "details should mention {w:?}: {}",
            err.details
        );
    }
}

/// A send of `ty` with `content` under the type's key.
fn msg(ty: &str, content: Value) -> Value {
    let mut body = json!({ "messaging_product": "whatsapp", "to": "+16505551234", "type": ty });
    body[ty] = content;
    body
}

fn set(mut body: Value, key: &str, value: Value) -> Value {
    body[key] = value;
    body
}

fn remove(mut body: Value, key: &str) -> Value {
    body.as_object_mut().unwrap().remove(key);
    body
}

/// `n` two-byte characters: limits count characters, not bytes.
fn chars(n: usize) -> String {
    "é".repeat(n)
}

fn text(body: &str) -> Value {
    msg("text", json!({ "body": body }))
}

fn reply_buttons(n: usize) -> Value {
    let buttons: Vec<Value> = (0..n)
        .map(|i| json!({ "type": "reply", "reply": { "id": format!("b{i}"), "title": format!("Option {i}") } }))
        .collect();
    msg(
        "interactive",
        json!({ "type": "button", "body": { "text": "Pick one" }, "action": { "buttons": buttons } }),
    )
}

/// A list message whose sections hold `rows_per_section` rows each.
fn list(rows_per_section: &[usize]) -> Value {
    let mut next = 0;
    let sections: Vec<Value> = rows_per_section
        .iter()
        .enumerate()
        .map(|(s, &n)| {
            let rows: Vec<Value> = (0..n)
                .map(|_| {
                    next += 1;
                    json!({ "id": format!("row-{next}"), "title": format!("Row {next}"), "description": "Details" })
                })
                .collect();
            json!({ "title": format!("Section {s}"), "rows": rows })
        })
        .collect();
    msg(
        "interactive",
        json!({
            "type": "list",
            "header": { "type": "text", "text": "Shipping" },
            "body": { "text": "Which shipping option do you prefer?" },
            "footer": { "text": "Prices include tax" },
            "action": { "button": "Options", "sections": sections }
        }),
    )
}

fn cta(params: Value) -> Value {
    msg(
        "interactive",
        json!({ "type": "cta_url", "body": { "text": "See dates" },
                "action": { "name": "cta_url", "parameters": params } }),
    )
}

fn flow(params: Value) -> Value {
    msg(
        "interactive",
        json!({ "type": "flow", "body": { "text": "Book now" },
                "action": { "name": "flow", "parameters": params } }),
    )
}

fn template(t: Value) -> Value {
    msg("template", t)
}

// ---- Envelope -----------------------------------------------------------------------------

#[test]
fn body_that_is_not_an_object_is_100() {
    for body in [json!([1, 2]), json!("hello"), json!(null), json!(42)] {
        let err = parse(&body).unwrap_err();
        assert_eq!(err.code, 100, "{body}");
        assert_mentions(&err, &["JSON object"]);
    }
}

#[test]
fn missing_messaging_product_is_131008() {
    refuse(
        remove(text("hi"), "messaging_product"),
        131008,
        "messaging_product",
    );
}

#[test]
fn other_messaging_product_is_100() {
    let err = refuse(
        set(text("hi"), "messaging_product", json!("sms")),
        100,
        "messaging_product",
    );
    assert_mentions(&err, &["\"sms\"", "\"whatsapp\""]);
    refuse(
        set(text("hi"), "messaging_product", json!(true)),
        100,
        "messaging_product",
    );
}

#[test]
fn minimal_text_send_defaults_type_to_text() {
    let body = remove(text("Hello"), "type");
    let req = send(body);
    assert_eq!(req.recipient, Recipient::WaId("16505551234".into()));
    assert_eq!(req.input, "+16505551234");
    assert_eq!(req.msg_type, MessageType::Text);
    assert_eq!(req.payload, json!({ "body": "Hello" }));
    assert_eq!(req.context_message_id, None);
    assert_eq!(req.biz_opaque_callback_data, None);
    assert!(req.media_ids.is_empty());
    assert_eq!(req.template, None);
}

#[test]
fn to_keeps_the_input_and_normalises_the_wa_id() {
    let req = send(set(text("hi"), "to", json!("+1 (650) 555-1234")));
    assert_eq!(req.input, "+1 (650) 555-1234");
    assert_eq!(req.recipient, Recipient::WaId("16505551234".into()));
}

#[test]
fn to_without_plus_gets_the_sender_calling_code() {
    let req = send(set(text("hi"), "to", json!("(650) 555-1234")));
    assert_eq!(req.recipient, Recipient::WaId("16505551234".into()));
    let body = set(text("hi"), "to", json!("(631) 555-1234"));
    match parse_request(&body, "91").unwrap() {
        Request::Send(req) => assert_eq!(req.recipient, Recipient::WaId("916315551234".into())),
        other => panic!("{other:?}"),
    }
}

#[test]
fn to_as_a_json_number_is_accepted() {
    let req = send(set(text("hi"), "to", json!(16505551234u64)));
    assert_eq!(req.input, "16505551234");
    assert_eq!(req.recipient, Recipient::WaId("16505551234".into()));
}

#[test]
fn malformed_to_is_131009() {
    let err = refuse(
        set(text("hi"), "to", json!("+1 650 CALL-NOW")),
        131009,
        "to",
    );
    assert_mentions(&err, &["'C'"]);
    let err = refuse(set(text("hi"), "to", json!("+12345")), 131009, "to");
    assert_mentions(&err, &["7 to 15"]);
    refuse(
        set(text("hi"), "to", json!("+1234567890123456")),
        131009,
        "to",
    );
    refuse(set(text("hi"), "to", json!(true)), 131009, "to");
    refuse(set(text("hi"), "to", json!(-5)), 131009, "to");
}

#[test]
fn recipient_bsuid_addresses_a_user_id() {
    let body = set(
        remove(text("hi"), "to"),
        "recipient",
        json!("US.13491208655302741918"),
    );
    let req = send(body);
    assert_eq!(
        req.recipient,
        Recipient::UserId("US.13491208655302741918".into())
    );
    assert_eq!(req.input, "US.13491208655302741918");
}

#[test]
fn malformed_recipient_is_131009() {
    let body = set(remove(text("hi"), "to"), "recipient", json!("us-1349"));
    let err = refuse(body, 131009, "recipient");
    assert_mentions(&err, &["US.13491208655302741918"]);
    refuse(
        set(remove(text("hi"), "to"), "recipient", json!(1349)),
        131009,
        "recipient",
    );
}

#[test]
fn bsuid_in_to_points_to_recipient() {
    let err = refuse(
        set(text("hi"), "to", json!("US.13491208655302741918")),
        131009,
        "to",
    );
    assert_mentions(&err, &["`recipient`"]);
}

#[test]
fn no_recipient_at_all_is_131008() {
    let err = refuse(remove(text("hi"), "to"), 131008, "to");
    assert_mentions(&err, &["`recipient`"]);
    refuse(set(text("hi"), "to", json!("  ")), 131008, "to");
    refuse(set(text("hi"), "to", json!(null)), 131008, "to");
}

#[test]
fn to_wins_over_recipient_when_both_are_sent() {
    let req = send(set(
        text("hi"),
        "recipient",
        json!("US.13491208655302741918"),
    ));
    assert_eq!(req.recipient, Recipient::WaId("16505551234".into()));
}

#[test]
fn recipient_type_individual_only() {
    send(set(text("hi"), "recipient_type", json!("individual")));
    let err = refuse(
        set(text("hi"), "recipient_type", json!("group")),
        131009,
        "recipient_type",
    );
    assert_mentions(&err, &["Groups", "\"individual\""]);
    refuse(
        set(text("hi"), "recipient_type", json!("broadcast")),
        131009,
        "recipient_type",
    );
    refuse(
        set(text("hi"), "recipient_type", json!(1)),
        131009,
        "recipient_type",
    );
}

#[test]
fn unknown_type_is_131051_naming_supported_types() {
    let err = parse(&msg("order", json!({}))).unwrap_err();
    assert_eq!(err.code, 131051);
    assert_mentions(&err, &["`type`", "\"order\"", "text, image", "template"]);
    assert_eq!(
        parse(&msg("Text", json!({ "body": "x" })))
            .unwrap_err()
            .code,
        131051
    );
}

#[test]
fn absent_type_and_absent_text_explains_the_default() {
    let body = remove(remove(text("hi"), "type"), "text");
    let err = refuse(set(body, "image", json!({ "id": "1" })), 131008, "text");
    assert_mentions(&err, &["`type` is absent"]);
}

#[test]
fn non_string_type_is_131009() {
    refuse(set(text("hi"), "type", json!(["text"])), 131009, "type");
}

#[test]
fn type_object_must_be_present_and_an_object() {
    refuse(remove(msg("image", json!({})), "image"), 131008, "image");
    refuse(remove(text("hi"), "text"), 131008, "text");
    refuse(msg("text", json!("Hello")), 131009, "text");
    refuse(msg("image", json!(["x"])), 131009, "image");
}

#[test]
fn context_message_id_is_kept() {
    let req = send(set(
        text("hi"),
        "context",
        json!({ "message_id": "wamid.ABC" }),
    ));
    assert_eq!(req.context_message_id.as_deref(), Some("wamid.ABC"));
    refuse(
        set(text("hi"), "context", json!({})),
        131008,
        "context.message_id",
    );
    refuse(
        set(text("hi"), "context", json!({ "message_id": 7 })),
        131009,
        "context.message_id",
    );
    refuse(
        set(text("hi"), "context", json!("wamid.ABC")),
        131009,
        "context",
    );
}

#[test]
fn biz_opaque_callback_data_512_ok_513_refused() {
    let req = send(set(
        text("hi"),
        "biz_opaque_callback_data",
        json!(chars(512)),
    ));
    assert_eq!(
        req.biz_opaque_callback_data
            .as_deref()
            .map(|s| s.chars().count()),
        Some(512)
    );
    let err = refuse(
        set(text("hi"), "biz_opaque_callback_data", json!(chars(513))),
        131009,
        "biz_opaque_callback_data",
    );
    assert_mentions(&err, &["513", "512"]);
    refuse(
        set(text("hi"), "biz_opaque_callback_data", json!({ "k": 1 })),
        131009,
        "biz_opaque_callback_data",
    );
}

#[test]
fn unknown_top_level_members_are_tolerated() {
    send(set(
        text("hi"),
        "recipient_identity_key_hash",
        json!("DF2lS5v2W6x="),
    ));
}

// ---- Mark as read --------------------------------------------------------------------------

fn read(extra: Value) -> Value {
    let mut body =
        json!({ "messaging_product": "whatsapp", "status": "read", "message_id": "wamid.XYZ" });
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    body
}

#[test]
fn mark_as_read() {
    assert_eq!(
        parse(&read(json!({}))).unwrap(),
        Request::MarkRead {
            message_id: "wamid.XYZ".into(),
            typing_indicator: false
        }
    );
}

#[test]
fn mark_as_read_with_typing_indicator() {
    assert_eq!(
        parse(&read(json!({ "typing_indicator": { "type": "text" } }))).unwrap(),
        Request::MarkRead {
            message_id: "wamid.XYZ".into(),
            typing_indicator: true
        }
    );
}

#[test]
fn typing_indicator_other_than_text_is_131009() {
    let err = refuse(
        read(json!({ "typing_indicator": { "type": "audio" } })),
        131009,
        "typing_indicator.type",
    );
    assert_mentions(&err, &["\"text\""]);
    refuse(
        read(json!({ "typing_indicator": {} })),
        131008,
        "typing_indicator.type",
    );
    refuse(
        read(json!({ "typing_indicator": true })),
        131009,
        "typing_indicator",
    );
}

#[test]
fn mark_as_read_refusals() {
    refuse(remove(read(json!({})), "message_id"), 131008, "message_id");
    refuse(read(json!({ "status": "delivered" })), 131009, "status");
    refuse(
        remove(read(json!({})), "messaging_product"),
        131008,
        "messaging_product",
    );
}

// ---- Text ----------------------------------------------------------------------------------

#[test]
fn text_body_4096_chars_ok_4097_refused() {
    let req = send(text(&chars(4096)));
    assert_eq!(
        req.payload["body"].as_str().unwrap().len(),
        8192,
        "bytes are not characters"
    );
    let err = refuse(text(&chars(4097)), 131009, "text.body");
    assert_mentions(&err, &["4097", "4096", "Shorten"]);
}

#[test]
fn text_body_missing_or_blank_is_131008() {
    refuse(
        msg("text", json!({ "preview_url": true })),
        131008,
        "text.body",
    );
    refuse(text(""), 131008, "text.body");
    refuse(text(" \n "), 131008, "text.body");
    refuse(msg("text", json!({ "body": 12 })), 131009, "text.body");
}

#[test]
fn text_preview_url_must_be_boolean() {
    let req = send(msg(
        "text",
        json!({ "body": "https://example.com", "preview_url": true }),
    ));
    assert_eq!(req.payload["preview_url"], json!(true));
    refuse(
        msg("text", json!({ "body": "x", "preview_url": "yes" })),
        131009,
        "text.preview_url",
    );
}

// ---- Media ---------------------------------------------------------------------------------

#[test]
fn every_media_type_by_id_collects_the_id() {
    for (ty, kind) in [
        ("image", MessageType::Image),
        ("audio", MessageType::Audio),
        ("video", MessageType::Video),
        ("document", MessageType::Document),
        ("sticker", MessageType::Sticker),
    ] {
        let req = send(msg(ty, json!({ "id": "1013859600285441" })));
        assert_eq!(req.msg_type, kind);
        assert!(kind.is_media());
        assert_eq!(req.media_ids, vec!["1013859600285441".to_string()], "{ty}");
    }
}

#[test]
fn media_by_link_collects_no_id() {
    let req = send(msg(
        "image",
        json!({ "link": "https://example.com/pic.jpg?x=1", "caption": "Look" }),
    ));
    assert!(req.media_ids.is_empty());
    send(msg(
        "document",
        json!({ "link": "HTTP://example.com/a.pdf", "filename": "invoice.pdf" }),
    ));
}

#[test]
fn media_with_both_id_and_link_is_131009() {
    let err = refuse(
        msg(
            "image",
            json!({ "id": "1", "link": "https://example.com/a.jpg" }),
        ),
        131009,
        "image",
    );
    assert_mentions(&err, &["`id`", "`link`"]);
}

#[test]
fn media_with_neither_id_nor_link_is_131008() {
    let err = refuse(msg("video", json!({ "caption": "x" })), 131008, "video.id");
    assert_mentions(&err, &["`link`"]);
    refuse(msg("image", json!({ "id": "" })), 131008, "image.id");
}

#[test]
fn media_link_must_be_http_url() {
    for link in [
        "ftp://example.com/a.mp4",
        "example.com/a.mp4",
        "https://",
        "https:// example.com/a.mp4",
        "javascript:alert(1)",
    ] {
        refuse(msg("video", json!({ "link": link })), 131009, "video.link");
    }
    refuse(msg("video", json!({ "link": 5 })), 131009, "video.link");
}

#[test]
fn caption_only_for_image_video_document() {
    let err = refuse(
        msg("audio", json!({ "id": "1", "caption": "x" })),
        131009,
        "audio.caption",
    );
    assert_mentions(&err, &["Remove `caption`"]);
    refuse(
        msg("sticker", json!({ "id": "1", "caption": "x" })),
        131009,
        "sticker.caption",
    );
    send(msg("video", json!({ "id": "1", "caption": "x" })));
}

#[test]
fn caption_1024_ok_1025_refused() {
    send(msg("image", json!({ "id": "1", "caption": chars(1024) })));
    let err = refuse(
        msg("document", json!({ "id": "1", "caption": chars(1025) })),
        131009,
        "document.caption",
    );
    assert_mentions(&err, &["1024"]);
}

#[test]
fn filename_only_for_document() {
    send(msg(
        "document",
        json!({ "id": "1", "filename": "invoice.pdf" }),
    ));
    refuse(
        msg("image", json!({ "id": "1", "filename": "a.jpg" })),
        131009,
        "image.filename",
    );
    refuse(
        msg("document", json!({ "id": "1", "filename": 3 })),
        131009,
        "document.filename",
    );
}

#[test]
fn unknown_media_members_are_tolerated() {
    send(msg(
        "image",
        json!({ "id": "1", "mime_type": "image/jpeg", "provider": { "name": "x" } }),
    ));
}

// ---- Location ------------------------------------------------------------------------------

#[test]
fn location_with_strings_or_numbers() {
    send(msg(
        "location",
        json!({ "latitude": "37.44", "longitude": "-122.16", "name": "HQ", "address": "1 Hacker Way" }),
    ));
    send(msg(
        "location",
        json!({ "latitude": 37.44, "longitude": -122.16 }),
    ));
    send(msg(
        "location",
        json!({ "latitude": 90, "longitude": -180 }),
    ));
}

#[test]
fn location_coordinates_required() {
    refuse(
        msg("location", json!({ "longitude": 1 })),
        131008,
        "location.latitude",
    );
    refuse(
        msg("location", json!({ "latitude": 1, "longitude": "" })),
        131008,
        "location.longitude",
    );
}

#[test]
fn location_coordinates_in_range() {
    let err = refuse(
        msg("location", json!({ "latitude": 90.5, "longitude": 0 })),
        131009,
        "location.latitude",
    );
    assert_mentions(&err, &["-90 to 90"]);
    refuse(
        msg("location", json!({ "latitude": 0, "longitude": "-180.1" })),
        131009,
        "location.longitude",
    );
}

#[test]
fn location_coordinates_must_be_numeric() {
    refuse(
        msg("location", json!({ "latitude": "north", "longitude": 0 })),
        131009,
        "location.latitude",
    );
    refuse(
        msg("location", json!({ "latitude": "NaN", "longitude": 0 })),
        131009,
        "location.latitude",
    );
    refuse(
        msg("location", json!({ "latitude": true, "longitude": 0 })),
        131009,
        "location.latitude",
    );
    refuse(
        msg(
            "location",
            json!({ "latitude": 1, "longitude": 2, "name": 3 }),
        ),
        131009,
        "location.name",
    );
}

// ---- Contacts ------------------------------------------------------------------------------

fn card(name: &str) -> Value {
    json!({
        "name": { "formatted_name": name, "first_name": name },
        "phones": [ { "phone": "+1 555-555-5555", "type": "CELL", "wa_id": "15555555555" } ],
        "emails": [ { "email": "a@b.com", "type": "WORK" } ],
        "urls": [ { "url": "https://example.com", "type": "WORK" } ],
        "addresses": [ { "city": "Menlo Park", "country_code": "US", "type": "WORK" } ],
        "org": { "company": "Acme" },
        "birthday": "1990-01-01"
    })
}

#[test]
fn contacts_valid_payload_is_the_array() {
    let req = send(msg("contacts", json!([card("Jane Doe")])));
    assert_eq!(req.msg_type, MessageType::Contacts);
    assert!(req.payload.is_array());
}

#[test]
fn contacts_must_be_an_array() {
    refuse(msg("contacts", card("Jane")), 131009, "contacts");
}

#[test]
fn contacts_count_1_to_257() {
    refuse(msg("contacts", json!([])), 131009, "contacts");
    send(msg("contacts", Value::Array(vec![card("A"); 257])));
    let err = refuse(
        msg("contacts", Value::Array(vec![card("A"); 258])),
        131009,
        "contacts",
    );
    assert_mentions(&err, &["258", "257"]);
}

#[test]
fn contact_needs_formatted_name() {
    let mut nameless = card("B");
    nameless["name"]
        .as_object_mut()
        .unwrap()
        .remove("formatted_name");
    refuse(
        msg("contacts", json!([card("A"), nameless])),
        131008,
        "contacts[1].name.formatted_name",
    );
    let mut no_name = card("B");
    no_name.as_object_mut().unwrap().remove("name");
    refuse(
        msg("contacts", json!([no_name])),
        131008,
        "contacts[0].name",
    );
    refuse(msg("contacts", json!(["Jane"])), 131009, "contacts[0]");
}

#[test]
fn contact_lists_must_be_arrays_of_objects() {
    let mut c = card("A");
    c["phones"] = json!("+1 555");
    refuse(msg("contacts", json!([c])), 131009, "contacts[0].phones");
    let mut c = card("A");
    c["emails"] = json!(["a@b.com"]);
    refuse(msg("contacts", json!([c])), 131009, "contacts[0].emails[0]");
}

// ---- Interactive: reply buttons -------------------------------------------------------------

#[test]
fn reply_buttons_1_to_3_ok() {
    for n in 1..=3 {
        send(reply_buttons(n));
    }
}

#[test]
fn four_reply_buttons_refused() {
    let err = refuse(reply_buttons(4), 131009, "interactive.action.buttons");
    assert_mentions(&err, &["has 4 buttons", "1 and 3"]);
    refuse(reply_buttons(0), 131009, "interactive.action.buttons");
}

#[test]
fn button_title_20_ok_21_refused() {
    let mut body = reply_buttons(2);
    body["interactive"]["action"]["buttons"][1]["reply"]["title"] = json!(chars(20));
    send(body.clone());
    body["interactive"]["action"]["buttons"][1]["reply"]["title"] = json!(chars(21));
    let err = refuse(body, 131009, "interactive.action.buttons[1].reply.title");
    assert_mentions(&err, &["21", "20"]);
}

#[test]
fn button_id_256_ok_257_refused() {
    let mut body = reply_buttons(1);
    body["interactive"]["action"]["buttons"][0]["reply"]["id"] = json!(chars(256));
    send(body.clone());
    body["interactive"]["action"]["buttons"][0]["reply"]["id"] = json!(chars(257));
    refuse(body, 131009, "interactive.action.buttons[0].reply.id");
}

#[test]
fn button_ids_and_titles_unique() {
    let mut body = reply_buttons(3);
    body["interactive"]["action"]["buttons"][2]["reply"]["id"] = json!("b0");
    let err = refuse(body, 131009, "interactive.action.buttons[2].reply.id");
    assert_mentions(
        &err,
        &["`interactive.action.buttons[0].reply.id`", "unique"],
    );
    let mut body = reply_buttons(3);
    body["interactive"]["action"]["buttons"][1]["reply"]["title"] = json!("Option 0");
    refuse(body, 131009, "interactive.action.buttons[1].reply.title");
}

#[test]
fn button_id_without_surrounding_spaces() {
    let mut body = reply_buttons(1);
    body["interactive"]["action"]["buttons"][0]["reply"]["id"] = json!(" yes");
    refuse(body, 131009, "interactive.action.buttons[0].reply.id");
}

#[test]
fn button_shape_refusals() {
    let mut body = reply_buttons(1);
    body["interactive"]["action"]["buttons"][0]["type"] = json!("url");
    refuse(body, 131009, "interactive.action.buttons[0].type");
    let mut body = reply_buttons(1);
    body["interactive"]["action"]["buttons"][0]
        .as_object_mut()
        .unwrap()
        .remove("reply");
    refuse(body, 131008, "interactive.action.buttons[0].reply");
    let mut body = reply_buttons(1);
    body["interactive"]["action"]["buttons"][0]["reply"]["title"] = json!("");
    refuse(body, 131008, "interactive.action.buttons[0].reply.title");
    let mut body = reply_buttons(1);
    body["interactive"]["action"]
        .as_object_mut()
        .unwrap()
        .remove("buttons");
    refuse(body, 131008, "interactive.action.buttons");
}

#[test]
fn interactive_body_required_and_1024_for_buttons() {
    let mut body = reply_buttons(1);
    body["interactive"]["body"]["text"] = json!(chars(1024));
    send(body.clone());
    body["interactive"]["body"]["text"] = json!(chars(1025));
    let err = refuse(body.clone(), 131009, "interactive.body.text");
    assert_mentions(&err, &["1024"]);
    body["interactive"]["body"] = json!({});
    refuse(body.clone(), 131008, "interactive.body.text");
    body["interactive"].as_object_mut().unwrap().remove("body");
    refuse(body, 131008, "interactive.body");
}

#[test]
fn header_and_footer_60_ok_61_refused() {
    let mut body = reply_buttons(1);
    body["interactive"]["header"] = json!({ "type": "text", "text": chars(60) });
    body["interactive"]["footer"] = json!({ "text": chars(60) });
    send(body.clone());
    body["interactive"]["header"]["text"] = json!(chars(61));
    refuse(body.clone(), 131009, "interactive.header.text");
    body["interactive"]["header"]["text"] = json!("ok");
    body["interactive"]["footer"]["text"] = json!(chars(61));
    refuse(body, 131009, "interactive.footer.text");
}

#[test]
fn media_header_by_id_collects_the_id() {
    let mut body = reply_buttons(2);
    body["interactive"]["header"] = json!({ "type": "image", "image": { "id": "777" } });
    assert_eq!(send(body).media_ids, vec!["777".to_string()]);
    let mut body = reply_buttons(2);
    body["interactive"]["header"] = json!({ "type": "document", "document": { "link": "https://example.com/a.pdf", "filename": "a.pdf" } });
    assert!(send(body).media_ids.is_empty());
}

#[test]
fn header_refusals() {
    let mut body = reply_buttons(1);
    body["interactive"]["header"] = json!({ "type": "image" });
    refuse(body.clone(), 131008, "interactive.header.image");
    body["interactive"]["header"] =
        json!({ "type": "image", "image": { "id": "1", "link": "https://x.y/z" } });
    refuse(body.clone(), 131009, "interactive.header.image");
    body["interactive"]["header"] = json!({ "type": "location" });
    let err = refuse(body.clone(), 131009, "interactive.header.type");
    assert_mentions(&err, &["\"text\"", "\"document\""]);
    body["interactive"]["header"] = json!({ "type": "text" });
    refuse(body, 131008, "interactive.header.text");
}

// ---- Interactive: list --------------------------------------------------------------------

#[test]
fn list_with_10_rows_across_sections_ok() {
    send(list(&[4, 6]));
    send(list(&[10]));
}

#[test]
fn list_with_11_rows_refused() {
    let err = refuse(list(&[5, 6]), 131009, "interactive.action.sections");
    assert_mentions(&err, &["11 rows", "at most 10"]);
    refuse(list(&[11]), 131009, "interactive.action.sections[0].rows");
}

#[test]
fn list_sections_1_to_10() {
    send(list(&[1; 10]));
    refuse(list(&[1; 11]), 131009, "interactive.action.sections");
    refuse(list(&[]), 131009, "interactive.action.sections");
    refuse(list(&[2, 0]), 131009, "interactive.action.sections[1].rows");
}

#[test]
fn list_body_4096_ok_4097_refused() {
    let mut body = list(&[1]);
    body["interactive"]["body"]["text"] = json!(chars(4096));
    send(body.clone());
    body["interactive"]["body"]["text"] = json!(chars(4097));
    refuse(body, 131009, "interactive.body.text");
}

#[test]
fn list_section_title_required_with_several_sections() {
    let mut body = list(&[1, 1]);
    body["interactive"]["action"]["sections"][1]
        .as_object_mut()
        .unwrap()
        .remove("title");
    refuse(body, 131008, "interactive.action.sections[1].title");
    let mut body = list(&[2]);
    body["interactive"]["action"]["sections"][0]
        .as_object_mut()
        .unwrap()
        .remove("title");
    send(body);
    let mut body = list(&[1, 1]);
    body["interactive"]["action"]["sections"][0]["title"] = json!(chars(25));
    refuse(body, 131009, "interactive.action.sections[0].title");
}

#[test]
fn list_row_limits() {
    let row = |field: &str, value: Value| {
        let mut body = list(&[2, 1]);
        body["interactive"]["action"]["sections"][1]["rows"][0][field] = value;
        body
    };
    send(row("title", json!(chars(24))));
    refuse(
        row("title", json!(chars(25))),
        131009,
        "interactive.action.sections[1].rows[0].title",
    );
    send(row("description", json!(chars(72))));
    refuse(
        row("description", json!(chars(73))),
        131009,
        "interactive.action.sections[1].rows[0].description",
    );
    send(row("id", json!(chars(200))));
    refuse(
        row("id", json!(chars(201))),
        131009,
        "interactive.action.sections[1].rows[0].id",
    );
    refuse(
        row("id", json!("")),
        131008,
        "interactive.action.sections[1].rows[0].id",
    );
}

#[test]
fn list_row_ids_unique_across_sections() {
    let mut body = list(&[2, 1]);
    body["interactive"]["action"]["sections"][1]["rows"][0]["id"] = json!("row-1");
    let err = refuse(body, 131009, "interactive.action.sections[1].rows[0].id");
    assert_mentions(&err, &["unique"]);
}

#[test]
fn list_button_required_and_20_chars() {
    let mut body = list(&[1]);
    body["interactive"]["action"]["button"] = json!(chars(20));
    send(body.clone());
    body["interactive"]["action"]["button"] = json!(chars(21));
    refuse(body.clone(), 131009, "interactive.action.button");
    body["interactive"]["action"]
        .as_object_mut()
        .unwrap()
        .remove("button");
    refuse(body, 131008, "interactive.action.button");
}

#[test]
fn list_header_is_text_only() {
    let mut body = list(&[1]);
    body["interactive"]["header"] = json!({ "type": "image", "image": { "id": "1" } });
    let err = refuse(body, 131009, "interactive.header.type");
    assert_mentions(&err, &["text header"]);
}

// ---- Interactive: cta_url, flow, location request, subtypes ----------------------------------

#[test]
fn cta_url_valid() {
    send(cta(
        json!({ "display_text": "See Dates", "url": "https://example.com/dates" }),
    ));
}

#[test]
fn cta_url_refusals() {
    let mut body = cta(json!({ "display_text": "See", "url": "https://example.com" }));
    body["interactive"]["action"]["name"] = json!("flow");
    refuse(body, 131009, "interactive.action.name");
    refuse(
        cta(json!({ "display_text": chars(21), "url": "https://example.com" })),
        131009,
        "interactive.action.parameters.display_text",
    );
    send(cta(
        json!({ "display_text": chars(20), "url": "https://example.com" }),
    ));
    refuse(
        cta(json!({ "display_text": "See", "url": "www.example.com" })),
        131009,
        "interactive.action.parameters.url",
    );
    refuse(
        cta(json!({ "display_text": "See" })),
        131008,
        "interactive.action.parameters.url",
    );
}

#[test]
fn flow_valid() {
    send(flow(json!({
        "flow_message_version": "3", "flow_token": "AQAAAAACS5FpgQ_cAAAAAD0QI3s.", "flow_id": "123456",
        "flow_cta": "Book!", "mode": "published", "flow_action": "navigate",
        "flow_action_payload": { "screen": "FIRST_SCREEN", "data": { "k": "v" } }
    })));
    send(flow(
        json!({ "flow_message_version": "3", "flow_name": "booking", "flow_cta": "Book" }),
    ));
}

#[test]
fn flow_refusals() {
    let base = json!({ "flow_message_version": "3", "flow_cta": "Book" });
    let with = |k: &str, v: Value| {
        let mut p = base.clone();
        p[k] = v;
        p
    };
    refuse(
        flow(base.clone()),
        131008,
        "interactive.action.parameters.flow_id",
    );
    let mut both = with("flow_id", json!("1"));
    both["flow_name"] = json!("x");
    refuse(flow(both), 131009, "interactive.action.parameters");
    let mut p = with("flow_id", json!("1"));
    p["mode"] = json!("live");
    refuse(flow(p), 131009, "interactive.action.parameters.mode");
    let mut p = with("flow_id", json!("1"));
    p["flow_cta"] = json!(chars(21));
    refuse(flow(p), 131009, "interactive.action.parameters.flow_cta");
    let mut p = with("flow_id", json!("1"));
    p.as_object_mut().unwrap().remove("flow_message_version");
    refuse(
        flow(p),
        131008,
        "interactive.action.parameters.flow_message_version",
    );
}

#[test]
fn location_request_message() {
    let body = msg(
        "interactive",
        json!({ "type": "location_request_message", "body": { "text": "Where are you?" },
                "action": { "name": "send_location" } }),
    );
    send(body.clone());
    let mut wrong = body;
    wrong["interactive"]["action"]["name"] = json!("get_location");
    refuse(wrong, 131009, "interactive.action.name");
}

#[test]
fn unknown_interactive_type_lists_supported_ones() {
    let mut body = reply_buttons(1);
    body["interactive"]["type"] = json!("product_list");
    let err = refuse(body, 131009, "interactive.type");
    assert_mentions(
        &err,
        &[
            "\"product_list\"",
            "\"button\"",
            "\"cta_url\"",
            "\"location_request_message\"",
        ],
    );
}

#[test]
fn interactive_type_and_action_required() {
    let mut body = reply_buttons(1);
    body["interactive"].as_object_mut().unwrap().remove("type");
    refuse(body, 131008, "interactive.type");
    let mut body = reply_buttons(1);
    body["interactive"]
        .as_object_mut()
        .unwrap()
        .remove("action");
    refuse(body, 131008, "interactive.action");
}

// ---- Reaction ------------------------------------------------------------------------------

#[test]
fn reaction_valid_and_removal() {
    send(msg(
        "reaction",
        json!({ "message_id": "wamid.A", "emoji": "\u{1F600}" }),
    ));
    send(msg(
        "reaction",
        json!({ "message_id": "wamid.A", "emoji": "" }),
    ));
    // A family: seven chars joined by zero-width joiners.
    send(msg(
        "reaction",
        json!({ "message_id": "wamid.A", "emoji": "👨‍👩‍👧‍👦" }),
    ));
}

#[test]
fn reaction_refusals() {
    refuse(
        msg("reaction", json!({ "emoji": "👍" })),
        131008,
        "reaction.message_id",
    );
    refuse(
        msg("reaction", json!({ "message_id": "wamid.A" })),
        131008,
        "reaction.emoji",
    );
    refuse(
        msg("reaction", json!({ "message_id": "wamid.A", "emoji": 1 })),
        131009,
        "reaction.emoji",
    );
    let err = refuse(
        msg(
            "reaction",
            json!({ "message_id": "wamid.A", "emoji": "thumbs up!!" }),
        ),
        131009,
        "reaction.emoji",
    );
    assert_mentions(&err, &["single emoji"]);
}

// ---- Template ------------------------------------------------------------------------------

#[test]
fn template_valid_components_kept_as_sent() {
    let components = json!([
        { "type": "header", "parameters": [ { "type": "image", "image": { "link": "https://example.com/a.jpg" } } ] },
        { "type": "body", "parameters": [ { "type": "text", "text": "Jessica" } ] },
        { "type": "button", "sub_type": "quick_reply", "index": "0", "parameters": [ { "type": "payload", "payload": "STOP" } ] },
        { "type": "button", "sub_type": "url", "index": 1, "parameters": [ { "type": "text", "text": "x" } ] }
    ]);
    let req = send(template(json!({
        "name": "order_confirmation",
        "language": { "code": "en_US", "policy": "deterministic" },
        "components": components.clone()
    })));
    assert_eq!(req.msg_type, MessageType::Template);
    assert_eq!(req.template_components(), &components);
    let t = req.template.expect("template ref");
    assert_eq!(t.name, "order_confirmation");
    assert_eq!(t.language, "en_US");
}

#[test]
fn the_payload_is_the_object_under_the_type_s_key_whichever_entry_point() {
    let components = json!([{ "type": "body", "parameters": [{ "type": "text", "text": "A-1" }] }]);
    let t = json!({ "name": "order", "language": { "code": "en_US" }, "components": components });
    for req in [
        send(template(t.clone())),
        match parse_request_owned(template(t.clone()), CC) {
            Ok(Request::Send(req)) => req,
            other => panic!("expected a send, got {other:?}"),
        },
    ] {
        assert_eq!(req.payload, t);
        assert_eq!(req.template_components(), &components);
    }
    let text = send(
        json!({ "messaging_product": "whatsapp", "to": "+16505551234", "text": { "body": "hi" } }),
    );
    assert_eq!(text.payload, json!({ "body": "hi" }));
}

#[test]
fn template_without_components_gets_an_empty_array() {
    let req = send(template(
        json!({ "name": "hello_world", "language": { "code": "en_US" } }),
    ));
    assert_eq!(req.template_components(), &json!([]));
    let req = send(template(
        json!({ "name": "hello_world", "language": { "code": "en_US" }, "components": null }),
    ));
    assert_eq!(req.template_components(), &json!([]));
}

#[test]
fn template_name_required() {
    refuse(
        template(json!({ "language": { "code": "en_US" } })),
        131008,
        "template.name",
    );
    refuse(
        template(json!({ "name": 3, "language": { "code": "en_US" } })),
        131009,
        "template.name",
    );
}

#[test]
fn template_language_must_be_an_object_with_code() {
    let err = refuse(
        template(json!({ "name": "t", "language": "en_US" })),
        131008,
        "template.language.code",
    );
    assert_mentions(&err, &["{\"code\": \"en_US\"}"]);
    refuse(
        template(json!({ "name": "t" })),
        131008,
        "template.language.code",
    );
    refuse(
        template(json!({ "name": "t", "language": {} })),
        131008,
        "template.language.code",
    );
}

#[test]
fn template_components_must_be_an_array_of_typed_objects() {
    let t =
        |c: Value| template(json!({ "name": "t", "language": { "code": "en" }, "components": c }));
    refuse(t(json!({ "type": "body" })), 131009, "template.components");
    refuse(t(json!(["body"])), 131009, "template.components[0]");
    refuse(
        t(json!([{ "parameters": [] }])),
        131008,
        "template.components[0].type",
    );
    let err = refuse(
        t(json!([{ "type": "body" }, { "type": "footer" }])),
        131009,
        "template.components[1].type",
    );
    assert_mentions(
        &err,
        &["\"limited_time_offer\"", "\"tap_target_configuration\""],
    );
    refuse(
        t(json!([{ "type": "body", "parameters": "Jessica" }])),
        131009,
        "template.components[0].parameters",
    );
    for kind in ["carousel", "limited_time_offer", "tap_target_configuration"] {
        send(t(json!([{ "type": kind }])));
    }
}

#[test]
fn template_button_components_need_sub_type_and_index() {
    let t = |c: Value| {
        template(
            json!({ "name": "t", "language": { "code": "en" }, "components": [ { "type": "body" }, c ] }),
        )
    };
    refuse(
        t(json!({ "type": "button", "index": "0" })),
        131008,
        "template.components[1].sub_type",
    );
    refuse(
        t(json!({ "type": "button", "sub_type": "url" })),
        131008,
        "template.components[1].index",
    );
    send(t(
        json!({ "type": "button", "sub_type": "url", "index": "9" }),
    ));
    send(t(
        json!({ "type": "button", "sub_type": "url", "index": 0 }),
    ));
    let err = refuse(
        t(json!({ "type": "button", "sub_type": "url", "index": "10" })),
        131009,
        "template.components[1].index",
    );
    assert_mentions(&err, &["0 to 9"]);
    refuse(
        t(json!({ "type": "button", "sub_type": "url", "index": -1 })),
        131009,
        "template.components[1].index",
    );
    refuse(
        t(json!({ "type": "button", "sub_type": "url", "index": "a" })),
        131009,
        "template.components[1].index",
    );
    refuse(
        t(json!({ "type": "button", "sub_type": "url", "index": [0] })),
        131009,
        "template.components[1].index",
    );
}

#[test]
fn template_parameters_are_not_checked_here() {
    // Parameter counts and formats are checked against the stored template elsewhere.
    send(template(json!({
        "name": "t", "language": { "code": "en" },
        "components": [ { "type": "body", "parameters": [ { "type": "mystery", "whatever": 1 } ] } ]
    })));
}

// ---- Helpers -------------------------------------------------------------------------------

#[test]
fn http_url_shapes() {
    assert!(is_http_url("https://example.com"));
    assert!(is_http_url("http://localhost:8080/a?b=c#d"));
    assert!(is_http_url("HTTPS://EXAMPLE.COM/X"));
    assert!(!is_http_url("https://"));
    assert!(!is_http_url("https:///path"));
    assert!(!is_http_url("https://exa mple.com"));
    assert!(!is_http_url("ftp://example.com"));
    assert!(!is_http_url("é"));
}

#[test]
fn every_refusal_says_how_to_fix_it() {
    // A sample across types: each detail names a field and gives an instruction or a limit.
    let bodies = [
        text(&chars(4097)),
        reply_buttons(4),
        list(&[6, 5]),
        msg("image", json!({})),
        msg(
            "reaction",
            json!({ "message_id": "w", "emoji": "way too long" }),
        ),
        template(json!({ "name": "t", "language": "en" })),
    ];
    for body in bodies {
        let err = parse(&body).unwrap_err();
        assert!(err.details.contains('`'), "no field named: {}", err.details);
        assert!(err.details.len() > 40, "too terse: {}", err.details);
        assert!(
            err.details.ends_with('.'),
            "not a sentence: {}",
            err.details
        );
    }
}
