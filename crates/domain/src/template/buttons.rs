//! The BUTTONS component at create time (cloud-api-facts.md §3.2, §3.3): button types, labels,
//! URL / phone / copy-code / flow requirements, per-type caps and quick-reply grouping.

use super::auth;
use super::finding::{rules, subcode, Finding};
use super::model::{Button, FlowRef};
use super::placeholder::{self, Piece, VarKey};
use super::text::char_len;
use serde_json::{Map, Value};

pub const MAX_BUTTONS: usize = 10;
pub const MAX_LABEL: usize = 25;
pub const MAX_URL: usize = 2000;
pub const MAX_COUPON: usize = 15;
const MAX_PHONE: usize = 20;

/// How many buttons of one type a template may have (§3.3). OTP is governed by the
/// authentication rules; quick replies only by the total.
const CAPS: &[(&str, usize)] = &[
    ("URL", 2),
    ("PHONE_NUMBER", 1),
    ("COPY_CODE", 1),
    ("VOICE_CALL", 1),
    ("FLOW", 1),
    ("CATALOG", 1),
    ("MPM", 1),
    ("SPM", 1),
];

/// Parses `obj.buttons`; `field` is the component's path. `in_auth` is `Some(true)` for
/// AUTHENTICATION, `Some(false)` for the other categories, `None` when the category is unknown.
pub(crate) fn parse(
    obj: &Map<String, Value>,
    field: &str,
    in_auth: Option<bool>,
    f: &mut Vec<Finding>,
) -> Vec<Button> {
    let list = match obj.get("buttons") {
        Some(Value::Array(list)) if !list.is_empty() => list,
        _ => {
            f.push(Finding::create(
                rules::BUTTONS_EMPTY,
                None,
                format!("{field}.buttons"),
                "A BUTTONS component needs a non-empty buttons array.",
                "Add at least one button, or remove the BUTTONS component.",
            ));
            return Vec::new();
        }
    };
    let buttons: Vec<Button> = list
        .iter()
        .enumerate()
        .filter_map(|(j, b)| parse_button(b, &format!("{field}.buttons[{j}]"), in_auth, f))
        .collect();
    check_counts(&buttons, field, f);
    check_grouping(&buttons, field, f);
    buttons
}

fn parse_button(
    v: &Value,
    field: &str,
    in_auth: Option<bool>,
    f: &mut Vec<Finding>,
) -> Option<Button> {
    let Some(obj) = v.as_object() else {
        f.push(Finding::create(
            rules::BUTTON_TYPE,
            None,
            field,
            "A button must be a JSON object.",
            "Write each button as {\"type\": …, \"text\": …}.",
        ));
        return None;
    };
    let ty = obj
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_ascii_uppercase();
    Some(match ty.as_str() {
        "QUICK_REPLY" => Button::QuickReply {
            text: label(obj, field, f),
        },
        "URL" => parse_url(obj, field, f),
        "PHONE_NUMBER" => Button::PhoneNumber {
            text: label(obj, field, f),
            phone_number: phone(obj, field, f),
        },
        "COPY_CODE" => Button::CopyCode {
            example: coupon_example(obj, field, f),
        },
        "OTP" => {
            if in_auth == Some(false) {
                f.push(Finding::create(
                    rules::BUTTON_OTP_CATEGORY,
                    None,
                    format!("{field}.type"),
                    "OTP buttons exist only in AUTHENTICATION templates.",
                    "Use category AUTHENTICATION for one-time codes, or a COPY_CODE button for coupons.",
                ));
            }
            return auth::parse_otp_button(obj, field, f);
        }
        "FLOW" => parse_flow(obj, field, f),
        "VOICE_CALL" => Button::VoiceCall {
            text: label(obj, field, f),
        },
        "CATALOG" => Button::Catalog {
            text: label(obj, field, f),
        },
        "MPM" => Button::Mpm {
            text: label(obj, field, f),
        },
        "SPM" => Button::Spm {
            text: label(obj, field, f),
        },
        _ => {
            let shown = if ty.is_empty() {
                "missing".to_string()
            } else {
                format!("\"{ty}\"")
            };
            f.push(Finding::create(
                rules::BUTTON_TYPE,
                None,
                format!("{field}.type"),
                format!("Button type is {shown}."),
                "Use QUICK_REPLY, URL, PHONE_NUMBER, COPY_CODE, OTP, FLOW, VOICE_CALL, CATALOG, MPM or SPM.",
            ));
            return None;
        }
    })
}

/// The button's `text`: required, ≤25 characters.
fn label(obj: &Map<String, Value>, field: &str, f: &mut Vec<Finding>) -> String {
    let text = obj
        .get("text")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if text.trim().is_empty() {
        f.push(Finding::create(
            rules::BUTTON_TEXT,
            None,
            format!("{field}.text"),
            "The button has no label.",
            "Add a text of 1 to 25 characters.",
        ));
    } else if char_len(&text) > MAX_LABEL {
        f.push(Finding::create(
            rules::BUTTON_TEXT_LENGTH,
            Some(subcode::CHARS_EXCEEDED),
            format!("{field}.text"),
            format!(
                "The button label is {} characters; the limit is {MAX_LABEL}.",
                char_len(&text)
            ),
            format!("Shorten the label to {MAX_LABEL} characters or fewer."),
        ));
    }
    text
}

fn url_error(field: &str, message: String, fix: &str) -> Finding {
    Finding::create(rules::BUTTON_URL, None, field, message, fix)
}

fn parse_url(obj: &Map<String, Value>, field: &str, f: &mut Vec<Finding>) -> Button {
    let text = label(obj, field, f);
    let url = obj
        .get("url")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let url_field = format!("{field}.url");
    let lower = url.to_ascii_lowercase();
    if !(lower.starts_with("https://") || lower.starts_with("http://"))
        || url.len() <= "https://".len()
    {
        f.push(url_error(
            &url_field,
            format!("\"{url}\" is not an http(s) URL."),
            "Give a full URL starting with https://.",
        ));
    } else if char_len(&url) > MAX_URL {
        f.push(url_error(
            &url_field,
            format!(
                "The URL is {} characters; the limit is {MAX_URL}.",
                char_len(&url)
            ),
            "Shorten the URL.",
        ));
    }
    let scanned = placeholder::scan(&url);
    let vars: Vec<VarKey> = scanned.vars().cloned().collect();
    if !scanned.malformed.is_empty()
        || vars.len() > 1
        || vars.iter().any(|k| *k != VarKey::Positional(1))
    {
        f.push(url_error(
            &url_field,
            "A URL button has at most one variable, written {{1}}.".into(),
            "Keep a single {{1}} at the end of the URL.",
        ));
    } else if !vars.is_empty() && !matches!(scanned.pieces.last(), Some(Piece::Var(_))) {
        f.push(url_error(
            &url_field,
            "The URL variable must be at the end of the URL.".into(),
            "Move {{1}} to the end, e.g. https://example.com/track/{{1}}.",
        ));
    }
    let example = match obj.get("example") {
        Some(Value::Array(a)) => a.first().and_then(Value::as_str).map(str::to_string),
        Some(Value::String(s)) => Some(s.clone()),
        _ => None,
    };
    if !vars.is_empty() && !matches!(example.as_deref(), Some(e) if !e.trim().is_empty()) {
        f.push(url_error(
            &format!("{field}.example"),
            "A URL with a variable needs a sample: the full URL with the variable filled in (or the sample value of {{1}}).".into(),
            "Add \"example\": [\"https://example.com/track/ABC123\"].",
        ));
    }
    Button::Url {
        text,
        url,
        example: if vars.is_empty() { None } else { example },
    }
}

fn phone(obj: &Map<String, Value>, field: &str, f: &mut Vec<Finding>) -> String {
    let p = obj
        .get("phone_number")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let digits = p.strip_prefix('+').unwrap_or(&p);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || p.len() > MAX_PHONE {
        f.push(Finding::create(
            rules::BUTTON_PHONE,
            None,
            format!("{field}.phone_number"),
            format!("\"{p}\" is not a phone number (digits with an optional leading +, at most {MAX_PHONE} characters)."),
            "Give the number with its country code, e.g. \"15550051310\".",
        ));
    }
    p
}

fn coupon_example(obj: &Map<String, Value>, field: &str, f: &mut Vec<Finding>) -> String {
    let ex = match obj.get("example") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(a)) => a.first().and_then(Value::as_str).unwrap_or("").to_string(),
        _ => String::new(),
    };
    let alnum = ex.chars().all(|c| c.is_ascii_alphanumeric());
    if ex.is_empty() || char_len(&ex) > MAX_COUPON || !alnum {
        f.push(Finding::create(
            rules::BUTTON_COPY_CODE,
            None,
            format!("{field}.example"),
            format!("The sample coupon \"{ex}\" must be 1 to {MAX_COUPON} letters and digits."),
            "Give a sample such as \"SAVE25\".",
        ));
    }
    ex
}

fn parse_flow(obj: &Map<String, Value>, field: &str, f: &mut Vec<Finding>) -> Button {
    let text = label(obj, field, f);
    let s = |k: &str| obj.get(k).and_then(Value::as_str).map(str::to_string);
    let refs: Vec<FlowRef> = [
        s("flow_id").map(FlowRef::Id),
        s("flow_name").map(FlowRef::Name),
        s("flow_json").map(FlowRef::Json),
    ]
    .into_iter()
    .flatten()
    .collect();
    if refs.len() != 1 {
        f.push(Finding::create(
            rules::BUTTON_FLOW,
            None,
            field,
            format!(
                "A FLOW button names exactly one of flow_id, flow_name, flow_json (found {}).",
                refs.len()
            ),
            "Keep exactly one flow reference.",
        ));
    }
    let flow_action = s("flow_action");
    if let Some(a) = &flow_action {
        if !["navigate", "data_exchange"].contains(&a.to_ascii_lowercase().as_str()) {
            f.push(Finding::create(
                rules::BUTTON_FLOW,
                None,
                format!("{field}.flow_action"),
                format!("flow_action \"{a}\" is unknown."),
                "Use navigate or data_exchange.",
            ));
        }
    }
    let icon = s("icon");
    if let Some(i) = &icon {
        if !["DOCUMENT", "PROMOTION", "REVIEW"].contains(&i.to_ascii_uppercase().as_str()) {
            f.push(Finding::create(
                rules::BUTTON_FLOW,
                None,
                format!("{field}.icon"),
                format!("icon \"{i}\" is unknown."),
                "Use DOCUMENT, PROMOTION or REVIEW.",
            ));
        }
    }
    Button::Flow {
        text,
        flow: refs
            .into_iter()
            .next()
            .unwrap_or(FlowRef::Id(String::new())),
        flow_action,
        navigate_screen: s("navigate_screen"),
        icon,
    }
}

fn check_counts(buttons: &[Button], field: &str, f: &mut Vec<Finding>) {
    if buttons.len() > MAX_BUTTONS {
        f.push(Finding::create(
            rules::BUTTON_COUNT,
            None,
            format!("{field}.buttons"),
            format!(
                "{} buttons; a template has at most {MAX_BUTTONS}.",
                buttons.len()
            ),
            format!("Remove {} button(s).", buttons.len() - MAX_BUTTONS),
        ));
    }
    for (ty, cap) in CAPS {
        let n = buttons.iter().filter(|b| b.type_str() == *ty).count();
        if n > *cap {
            f.push(Finding::create(
                rules::BUTTON_COUNT,
                None,
                format!("{field}.buttons"),
                format!("{n} {ty} buttons; a template has at most {cap}."),
                format!("Keep at most {cap} {ty} button(s)."),
            ));
        }
    }
}

/// Quick replies form one contiguous run (§3.3).
fn check_grouping(buttons: &[Button], field: &str, f: &mut Vec<Finding>) {
    let is_qr: Vec<bool> = buttons
        .iter()
        .map(|b| matches!(b, Button::QuickReply { .. }))
        .collect();
    let runs = is_qr
        .iter()
        .enumerate()
        .filter(|(i, q)| **q && (*i == 0 || !is_qr[i - 1]))
        .count();
    if runs > 1 {
        f.push(Finding::create(
            rules::BUTTON_ORDER,
            None,
            format!("{field}.buttons"),
            "Quick-reply buttons are interleaved with other buttons.",
            "Put all QUICK_REPLY buttons next to each other (before or after the call-to-action buttons).",
        ));
    }
}
