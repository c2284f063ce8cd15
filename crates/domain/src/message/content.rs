//! The plain message types: text, media, location, contacts and reaction
//! (cloud-api-facts.md §1.3–§1.7). Unknown members are tolerated, as Meta does.

use serde_json::Value;

use super::fields::{check_http_url, invalid, missing, wrong_kind, Arr, Obj, Path};
use super::MessageType;
use crate::ApiError;

/// `text.body` (§1.3).
pub(super) const TEXT_BODY_MAX: usize = 4096;
/// Captions of images, videos and documents (§1.4).
pub(super) const CAPTION_MAX: usize = 1024;
/// Contacts per message (§1.6).
const CONTACTS_MAX: usize = 257;
/// A reaction is one emoji; sequences (flags, skin tones, families) run to a few chars.
const EMOJI_MAX: usize = 10;

/// `{"body": "…", "preview_url"?: bool}`.
pub(super) fn text(text: &Obj<'_, '_>) -> Result<(), ApiError> {
    text.str_max(
        "body",
        "the message text, at most 4096 characters",
        TEXT_BODY_MAX,
    )?;
    text.opt_bool("preview_url")?;
    Ok(())
}

/// `{"id": …}` or `{"link": "https://…"}`, plus `caption` (image, video, document) and
/// `filename` (document). Ids are pushed to `media_ids`. Also used for interactive headers.
pub(super) fn media(
    media: &Obj<'_, '_>,
    kind: MessageType,
    media_ids: &mut Vec<String>,
) -> Result<(), ApiError> {
    let name = kind.as_str();
    match (media.has("id"), media.has("link")) {
        (true, true) => {
            return Err(invalid(
                &media.path,
                format_args!("has both `id` and `link`; give exactly one. Keep `id` for media uploaded to /media, or `link` for a public URL."),
            ))
        }
        (false, false) => {
            return Err(missing(
                &media.at("id"),
                &format!("give the {name} either as `id` (the id returned by the media upload) or as `link` (a public http(s) URL)"),
            ))
        }
        (true, false) => {
            let id = media.str("id", "the id returned by the media upload")?;
            media_ids.push(id.to_string());
        }
        (false, true) => {
            let link = media.str("link", "a public http(s) URL of the file")?;
            check_http_url(&media.at("link"), link)?;
        }
    }
    if media.has("caption") {
        if matches!(
            kind,
            MessageType::Image | MessageType::Video | MessageType::Document
        ) {
            media.opt_str_max("caption", CAPTION_MAX)?;
        } else {
            return Err(invalid(
                &media.at("caption"),
                format_args!("is not supported for {name}; only images, videos and documents have captions. Remove `caption`."),
            ));
        }
    }
    if media.has("filename") {
        if kind == MessageType::Document {
            media.opt_str("filename")?;
        } else {
            return Err(invalid(
                &media.at("filename"),
                format_args!("is not supported for {name}; only documents have a file name. Remove `filename`."),
            ));
        }
    }
    Ok(())
}

/// `{"latitude", "longitude", "name"?, "address"?}`; coordinates as numbers or numeric strings.
pub(super) fn location(location: &Obj<'_, '_>) -> Result<(), ApiError> {
    coordinate(
        location,
        "latitude",
        90.0,
        "a number of degrees between -90 and 90, e.g. \"37.44\"",
    )?;
    coordinate(
        location,
        "longitude",
        180.0,
        "a number of degrees between -180 and 180, e.g. \"-122.16\"",
    )?;
    location.opt_str("name")?;
    location.opt_str("address")?;
    Ok(())
}

fn coordinate(location: &Obj<'_, '_>, key: &str, bound: f64, hint: &str) -> Result<f64, ApiError> {
    let value = match location.req(key, hint)? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) if s.trim().is_empty() => return Err(missing(&location.at(key), hint)),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        other => {
            return Err(wrong_kind(
                &location.at(key),
                "a number or a numeric string",
                other,
            ))
        }
    };
    match value {
        Some(v) if v.is_finite() && (-bound..=bound).contains(&v) => Ok(v),
        Some(v) if v.is_finite() => Err(invalid(
            &location.at(key),
            format_args!("is {v}, outside -{bound} to {bound}. Send {hint}."),
        )),
        _ => Err(invalid(
            &location.at(key),
            format_args!("is not a number. Send {hint}."),
        )),
    }
}

/// A non-empty array of at most 257 contact cards, each with `name.formatted_name`.
pub(super) fn contacts(value: &Value, path: Path<'_>) -> Result<(), ApiError> {
    let cards = Arr::new(value, path)?;
    cards.check_count(1, CONTACTS_MAX, "contacts")?;
    for i in 0..cards.len() {
        let card = cards.obj(i)?;
        let name = card.obj("name", "an object with at least `formatted_name`")?;
        name.str(
            "formatted_name",
            "the full name as it should be shown, e.g. \"Jane Doe\"",
        )?;
        for key in ["first_name", "last_name", "middle_name", "suffix", "prefix"] {
            name.opt_str(key)?;
        }
        card.opt_str("birthday")?;
        card.opt_obj("org")?;
        for (list, field) in [
            ("phones", "phone"),
            ("emails", "email"),
            ("urls", "url"),
            ("addresses", ""),
        ] {
            let Some(entries) = card.opt_arr(list)? else {
                continue;
            };
            for j in 0..entries.len() {
                let entry = entries.obj(j)?;
                if !field.is_empty() {
                    entry.opt_str(field)?;
                }
                entry.opt_str("type")?;
            }
        }
    }
    Ok(())
}

/// `{"message_id": "wamid…", "emoji": "👍"}`; an empty emoji removes the reaction.
pub(super) fn reaction(reaction: &Obj<'_, '_>) -> Result<(), ApiError> {
    reaction.str("message_id", "the id (wamid.…) of the message to react to")?;
    let hint = "a single emoji, or \"\" to remove the reaction";
    match reaction.req("emoji", hint)? {
        Value::String(emoji) => {
            let n = emoji.chars().count();
            if n > EMOJI_MAX {
                return Err(invalid(
                    &reaction.at("emoji"),
                    format_args!("is {n} characters long; a reaction is a single emoji (at most {EMOJI_MAX} characters). Send one emoji, or \"\" to remove the reaction."),
                ));
            }
            Ok(())
        }
        other => Err(wrong_kind(
            &reaction.at("emoji"),
            "a string holding one emoji",
            other,
        )),
    }
}
