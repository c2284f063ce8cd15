//! Interactive messages (cloud-api-facts.md §1.8): reply buttons, lists, call-to-action URL,
//! flows and location requests. All share `header`?, `body`, `footer`? and `action`.

use super::content;
use serde_json::Value;

use super::fields::{check_http_url, invalid, missing, wrong_kind, Obj};
use super::MessageType;
use crate::ApiError;

const SUBTYPES: &[&str] = &[
    "button",
    "list",
    "cta_url",
    "flow",
    "location_request_message",
];

const HEADER_TEXT_MAX: usize = 60;
const FOOTER_TEXT_MAX: usize = 60;
/// `body.text` of every subtype but `list`.
const BODY_TEXT_MAX: usize = 1024;
const LIST_BODY_TEXT_MAX: usize = 4096;

const BUTTONS_MAX: usize = 3;
const BUTTON_ID_MAX: usize = 256;
const BUTTON_TITLE_MAX: usize = 20;

const LIST_BUTTON_MAX: usize = 20;
const SECTIONS_MAX: usize = 10;
const ROWS_MAX: usize = 10;
const ROW_ID_MAX: usize = 200;
const ROW_TITLE_MAX: usize = 24;
const ROW_DESCRIPTION_MAX: usize = 72;
const SECTION_TITLE_MAX: usize = 24;

const CTA_DISPLAY_TEXT_MAX: usize = 20;
const FLOW_CTA_MAX: usize = 20;

/// Validates `interactive`; ids of media headers are pushed to `media_ids`.
pub(super) fn interactive(msg: &Obj<'_, '_>, media_ids: &mut Vec<String>) -> Result<(), ApiError> {
    let subtype = msg.one_of("type", SUBTYPES)?;
    let (body_max, body_hint) = if subtype == "list" {
        (
            LIST_BODY_TEXT_MAX,
            "the message text, at most 4096 characters",
        )
    } else {
        (BODY_TEXT_MAX, "the message text, at most 1024 characters")
    };

    if let Some(header) = msg.opt_obj("header")? {
        check_header(&header, subtype, media_ids)?;
    }
    let body = msg.obj("body", "an object with the message `text`")?;
    body.str_max("text", body_hint, body_max)?;
    if let Some(footer) = msg.opt_obj("footer")? {
        footer.str_max(
            "text",
            "the footer text, at most 60 characters (or remove `footer`)",
            FOOTER_TEXT_MAX,
        )?;
    }

    let action = msg.obj(
        "action",
        "an object describing the buttons, list or call to action",
    )?;
    match subtype {
        "button" => reply_buttons(&action),
        "list" => list(&action),
        "cta_url" => cta_url(&action),
        "flow" => flow(&action),
        _ => {
            action.one_of("name", &["send_location"])?;
            Ok(())
        }
    }
}

/// `{"type":"text","text":…}` or `{"type":"image|video|document","<type>":{"id"|"link"}}`.
fn check_header(
    header: &Obj<'_, '_>,
    subtype: &str,
    media_ids: &mut Vec<String>,
) -> Result<(), ApiError> {
    let kind = header.one_of("type", &["text", "image", "video", "document"])?;
    let media_kind = match kind {
        "text" => {
            header.str_max(
                "text",
                "the header text, at most 60 characters",
                HEADER_TEXT_MAX,
            )?;
            return Ok(());
        }
        "image" => MessageType::Image,
        "video" => MessageType::Video,
        _ => MessageType::Document,
    };
    if subtype == "list" {
        return Err(invalid(
            &header.at("type"),
            format_args!("is \"{kind}\", but list messages only take a text header. Use {{\"type\": \"text\", \"text\": \"…\"}} or remove `header`."),
        ));
    }
    let media = header.obj(
        kind,
        "the header media as {\"id\": …} (uploaded media) or {\"link\": \"https://…\"}",
    )?;
    content::media(&media, media_kind, media_ids)
}

/// `action.buttons`: 1–3 reply buttons with unique ids and titles.
fn reply_buttons(action: &Obj<'_, '_>) -> Result<(), ApiError> {
    let buttons = action.arr(
        "buttons",
        "an array of 1 to 3 buttons like {\"type\": \"reply\", \"reply\": {\"id\": \"yes\", \"title\": \"Yes\"}}",
    )?;
    buttons.check_count(1, BUTTONS_MAX, "buttons")?;
    let mut seen: Vec<(&str, &str)> = Vec::with_capacity(buttons.len());
    for i in 0..buttons.len() {
        let button = buttons.obj(i)?;
        button.one_of("type", &["reply"])?;
        let reply = button.obj("reply", "an object with the button's `id` and `title`")?;
        let id = reply.str_max(
            "id",
            "a unique id for the button, at most 256 characters, returned in the reply webhook",
            BUTTON_ID_MAX,
        )?;
        if id.trim() != id {
            return Err(invalid(
                &reply.at("id"),
                format_args!("is \"{id}\", which starts or ends with spaces. Remove the leading and trailing spaces."),
            ));
        }
        let title = reply.str_max(
            "title",
            "the button label, at most 20 characters",
            BUTTON_TITLE_MAX,
        )?;
        if let Some(j) = seen.iter().position(|(other, _)| *other == id) {
            return Err(invalid(
                &reply.at("id"),
                format_args!("is \"{id}\", the same as `{}[{j}].reply.id`; button ids must be unique. Give each button its own id.", buttons.path),
            ));
        }
        if let Some(j) = seen.iter().position(|(_, other)| *other == title) {
            return Err(invalid(
                &reply.at("title"),
                format_args!("is \"{title}\", the same as `{}[{j}].reply.title`; button titles must be unique. Give each button its own title.", buttons.path),
            ));
        }
        seen.push((id, title));
    }
    Ok(())
}

/// `action.button` and `action.sections`: up to 10 sections and 10 rows in all.
fn list(action: &Obj<'_, '_>) -> Result<(), ApiError> {
    action.str_max(
        "button",
        "the label of the button that opens the list, at most 20 characters",
        LIST_BUTTON_MAX,
    )?;
    let sections = action.arr(
        "sections",
        "an array of 1 to 10 sections like {\"title\": \"…\", \"rows\": [{\"id\": \"…\", \"title\": \"…\"}]}",
    )?;
    sections.check_count(1, SECTIONS_MAX, "sections")?;
    let several = sections.len() > 1;
    let mut row_ids: Vec<&str> = Vec::new();
    for i in 0..sections.len() {
        let section = sections.obj(i)?;
        if several {
            section.str_max(
                "title",
                "a section title (at most 24 characters) when a list has more than one section",
                SECTION_TITLE_MAX,
            )?;
        } else {
            section.opt_str_max("title", SECTION_TITLE_MAX)?;
        }
        let rows = section.arr(
            "rows",
            "an array of rows like {\"id\": \"…\", \"title\": \"…\"}",
        )?;
        rows.check_count(1, ROWS_MAX, "rows")?;
        for j in 0..rows.len() {
            let row = rows.obj(j)?;
            let id = row.str_max(
                "id",
                "a unique id for the row, at most 200 characters, returned in the reply webhook",
                ROW_ID_MAX,
            )?;
            if row_ids.contains(&id) {
                return Err(invalid(
                    &row.at("id"),
                    format_args!("is \"{id}\", already used by another row; row ids must be unique across all sections. Give each row its own id."),
                ));
            }
            row_ids.push(id);
            row.str_max(
                "title",
                "the row label, at most 24 characters",
                ROW_TITLE_MAX,
            )?;
            row.opt_str_max("description", ROW_DESCRIPTION_MAX)?;
        }
        if row_ids.len() > ROWS_MAX {
            return Err(invalid(
                &sections.path,
                format_args!(
                    "has {} rows in its first {} sections; a list may have at most {ROWS_MAX} rows across all sections. Remove rows until there are at most {ROWS_MAX}.",
                    row_ids.len(),
                    i + 1
                ),
            ));
        }
    }
    Ok(())
}

/// `{"name": "cta_url", "parameters": {"display_text", "url"}}`.
fn cta_url(action: &Obj<'_, '_>) -> Result<(), ApiError> {
    action.one_of("name", &["cta_url"])?;
    let params = action.obj("parameters", "an object with `display_text` and `url`")?;
    params.str_max(
        "display_text",
        "the button label, at most 20 characters",
        CTA_DISPLAY_TEXT_MAX,
    )?;
    let url = params.str("url", "the http(s) URL the button opens")?;
    check_http_url(&params.at("url"), url)
}

/// `{"name": "flow", "parameters": {…}}`: the basic shape; the flow itself is not checked.
fn flow(action: &Obj<'_, '_>) -> Result<(), ApiError> {
    action.one_of("name", &["flow"])?;
    let params = action.obj(
        "parameters",
        "an object with `flow_message_version`, `flow_cta` and `flow_id` or `flow_name`",
    )?;
    let version_hint = "the flow message version, \"3\"";
    match params.req("flow_message_version", version_hint)? {
        Value::String(s) if s.trim().is_empty() => {
            return Err(missing(&params.at("flow_message_version"), version_hint))
        }
        Value::String(_) | Value::Number(_) => {}
        other => {
            return Err(wrong_kind(
                &params.at("flow_message_version"),
                "a string such as \"3\"",
                other,
            ))
        }
    }
    params.str_max(
        "flow_cta",
        "the button label, 1 to 20 characters",
        FLOW_CTA_MAX,
    )?;
    match (params.has("flow_id"), params.has("flow_name")) {
        (true, true) => return Err(invalid(
            &params.path,
            "has both `flow_id` and `flow_name`; they are mutually exclusive. Keep one of them.",
        )),
        (false, false) => {
            return Err(missing(
                &params.at("flow_id"),
                "the id of the flow to open (or give its `flow_name`)",
            ))
        }
        (true, false) => {
            if !matches!(params.get("flow_id"), Some(Value::Number(_))) {
                params.str("flow_id", "the id of the flow to open")?;
            }
        }
        (false, true) => {
            params.str("flow_name", "the name of the flow to open")?;
        }
    }
    params.opt_str("flow_token")?;
    params.opt_one_of("mode", &["published", "draft"])?;
    params.opt_one_of("flow_action", &["navigate", "data_exchange"])?;
    if let Some(payload) = params.opt_obj("flow_action_payload")? {
        payload.opt_str("screen")?;
        payload.opt_obj("data")?;
    }
    Ok(())
}
