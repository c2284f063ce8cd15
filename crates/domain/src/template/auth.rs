//! Authentication templates (cloud-api-facts.md §3.5): Meta's fixed preset text, the optional
//! security line and expiry footer, and exactly one OTP button (COPY_CODE, ONE_TAP or
//! ZERO_TAP) with the app requirements of the autofill types.

use super::finding::{rules, subcode, Finding};
use super::model::{Button, Components, OtpButton, OtpType, SupportedApp};
use super::text::char_len;
use serde_json::{Map, Value};

/// The code line; `{{1}}` is the one-time code.
pub const CODE_LINE: &str = "{{1}} is your verification code.";
/// Appended when `add_security_recommendation` is true.
pub const SECURITY_LINE: &str = "For your security, do not share this code.";
/// `code_expiration_minutes` range.
pub const EXPIRY_MINUTES: std::ops::RangeInclusive<i64> = 1..=90;
/// Longest one-time code Meta delivers (§3.3).
pub const MAX_CODE_LEN: usize = 15;
const MAX_APPS: usize = 5;
const MAX_PACKAGE_NAME: usize = 224;
const SIGNATURE_HASH_LEN: usize = 11;

/// The preset body text.
pub fn preset_body(add_security_recommendation: bool) -> String {
    if add_security_recommendation {
        format!("{CODE_LINE} {SECURITY_LINE}")
    } else {
        CODE_LINE.to_string()
    }
}

/// The preset footer text for `minutes`.
pub fn expiry_footer(minutes: u32) -> String {
    format!("This code expires in {minutes} minutes.")
}

/// Whether `text` is one of the presets (as `to_json` writes them back).
pub(crate) fn is_preset_body(text: &str) -> bool {
    text == preset_body(false) || text == preset_body(true)
}

/// Parses an OTP button; `field` is its path. ONE_TAP and ZERO_TAP requirements are checked here.
pub(crate) fn parse_otp_button(
    obj: &Map<String, Value>,
    field: &str,
    f: &mut Vec<Finding>,
) -> Option<Button> {
    let otp_type = match obj.get("otp_type").and_then(Value::as_str) {
        Some(s) => match OtpType::parse(s) {
            Some(t) => t,
            None => {
                f.push(Finding::create(
                    rules::AUTH_OTP_BUTTON,
                    None,
                    format!("{field}.otp_type"),
                    format!("otp_type \"{s}\" is not an OTP button type."),
                    "Use COPY_CODE, ONE_TAP or ZERO_TAP.",
                ));
                return None;
            }
        },
        None => {
            f.push(Finding::create(
                rules::AUTH_OTP_BUTTON,
                None,
                format!("{field}.otp_type"),
                "An OTP button needs otp_type.",
                "Add \"otp_type\": \"COPY_CODE\" (or ONE_TAP / ZERO_TAP with supported_apps).",
            ));
            return None;
        }
    };
    let text = optional_label(obj, "text", field, f);
    let autofill_text = optional_label(obj, "autofill_text", field, f);
    let supported_apps = parse_apps(obj, field, f);
    let zero_tap_terms_accepted = obj
        .get("zero_tap_terms_accepted")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if otp_type != OtpType::CopyCode && supported_apps.is_empty() {
        f.push(Finding::create(
            rules::AUTH_ONE_TAP,
            None,
            format!("{field}.supported_apps"),
            format!("{} buttons deliver the code to an Android app, but no app is named.", otp_type.as_str()),
            "Add supported_apps: [{\"package_name\": \"com.example.app\", \"signature_hash\": \"<11 characters>\"}] (or use otp_type COPY_CODE).",
        ));
    }
    if otp_type == OtpType::ZeroTap && !zero_tap_terms_accepted {
        f.push(Finding::create(
            rules::AUTH_ONE_TAP,
            None,
            format!("{field}.zero_tap_terms_accepted"),
            "ZERO_TAP buttons require accepting the zero-tap terms.",
            "Set \"zero_tap_terms_accepted\": true after accepting Meta's zero-tap terms, or use ONE_TAP.",
        ));
    }
    Some(Button::Otp(OtpButton {
        otp_type,
        text,
        autofill_text,
        supported_apps,
        zero_tap_terms_accepted,
    }))
}

fn optional_label(
    obj: &Map<String, Value>,
    key: &str,
    field: &str,
    f: &mut Vec<Finding>,
) -> Option<String> {
    let t = obj.get(key)?.as_str()?.to_string();
    if char_len(&t) > super::buttons::MAX_LABEL {
        f.push(Finding::create(
            rules::BUTTON_TEXT_LENGTH,
            Some(subcode::CHARS_EXCEEDED),
            format!("{field}.{key}"),
            format!(
                "{key} is {} characters; the limit is {}.",
                char_len(&t),
                super::buttons::MAX_LABEL
            ),
            format!(
                "Shorten {key} to {} characters or fewer.",
                super::buttons::MAX_LABEL
            ),
        ));
    }
    Some(t)
}

/// `supported_apps`, or the legacy `package_name` + `signature_hash` pair on the button.
fn parse_apps(obj: &Map<String, Value>, field: &str, f: &mut Vec<Finding>) -> Vec<SupportedApp> {
    let listed: Vec<(String, &Map<String, Value>)> = match obj.get("supported_apps") {
        Some(Value::Array(apps)) => apps
            .iter()
            .enumerate()
            .filter_map(|(i, a)| {
                a.as_object()
                    .map(|o| (format!("{field}.supported_apps[{i}]"), o))
            })
            .collect(),
        _ if obj.contains_key("package_name") || obj.contains_key("signature_hash") => {
            vec![(field.to_string(), obj)]
        }
        _ => Vec::new(),
    };
    if listed.len() > MAX_APPS {
        f.push(Finding::create(
            rules::AUTH_APPS,
            None,
            format!("{field}.supported_apps"),
            format!("{} apps are listed; the limit is {MAX_APPS}.", listed.len()),
            format!("List at most {MAX_APPS} apps."),
        ));
    }
    listed
        .into_iter()
        .map(|(path, o)| parse_app(o, &path, f))
        .collect()
}

fn parse_app(o: &Map<String, Value>, path: &str, f: &mut Vec<Finding>) -> SupportedApp {
    let package_name = o
        .get("package_name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let signature_hash = percent_decode(
        o.get("signature_hash")
            .and_then(Value::as_str)
            .unwrap_or(""),
    );
    if package_name.is_empty() || char_len(&package_name) > MAX_PACKAGE_NAME {
        f.push(Finding::create(
            rules::AUTH_APPS,
            None,
            format!("{path}.package_name"),
            format!(
                "package_name must have 1 to {MAX_PACKAGE_NAME} characters (got {}).",
                char_len(&package_name)
            ),
            "Give the Android application id, e.g. com.example.app.",
        ));
    }
    if char_len(&signature_hash) != SIGNATURE_HASH_LEN {
        f.push(Finding::create(
            rules::AUTH_APPS,
            None,
            format!("{path}.signature_hash"),
            format!("signature_hash must be exactly {SIGNATURE_HASH_LEN} characters (got {}).", char_len(&signature_hash)),
            "Use the 11-character app signing-key hash computed for SMS Retriever / WhatsApp autofill.",
        ));
    }
    SupportedApp {
        package_name,
        signature_hash,
    }
}

/// `%2F` → `/` (Meta's own example sends the hash URL-encoded).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap_or_else(|_| s.to_string())
}

/// Structural rules of an AUTHENTICATION template once all components are parsed:
/// exactly one button, of type OTP. `buttons_field` is the BUTTONS component's path, if any.
pub(crate) fn check_buttons(c: &Components, buttons_field: Option<&str>, f: &mut Vec<Finding>) {
    let otp = c
        .buttons
        .iter()
        .filter(|b| matches!(b, Button::Otp(_)))
        .count();
    let others: Vec<&str> = c
        .buttons
        .iter()
        .filter(|b| !matches!(b, Button::Otp(_)))
        .map(Button::type_str)
        .collect();
    let field = buttons_field.unwrap_or("components").to_string();
    if otp == 0 {
        f.push(Finding::create(
            rules::AUTH_OTP_BUTTON,
            None,
            field,
            "AUTHENTICATION templates need one OTP button.",
            "Add {\"type\": \"BUTTONS\", \"buttons\": [{\"type\": \"OTP\", \"otp_type\": \"COPY_CODE\", \"text\": \"Copy code\"}]}.",
        ));
    } else if otp > 1 || !others.is_empty() {
        f.push(Finding::create(
            rules::AUTH_OTP_BUTTON,
            None,
            field,
            format!("AUTHENTICATION templates have exactly one button, of type OTP (found {otp} OTP and {} other: {}).", others.len(), others.join(", ")),
            "Keep a single OTP button and remove the others.",
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets() {
        assert_eq!(preset_body(false), "{{1}} is your verification code.");
        assert_eq!(
            preset_body(true),
            "{{1}} is your verification code. For your security, do not share this code."
        );
        assert_eq!(expiry_footer(5), "This code expires in 5 minutes.");
    }

    #[test]
    fn decodes_signature_hash() {
        assert_eq!(percent_decode("K8a%2FAINcGX7"), "K8a/AINcGX7");
        assert_eq!(percent_decode("abc%"), "abc%");
        assert_eq!(percent_decode("a%zz"), "a%zz");
    }
}
