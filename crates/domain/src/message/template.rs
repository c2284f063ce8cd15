//! Template sends (cloud-api-facts.md §1.9), shape only: `name`, `language.code` and the
//! component list. Whether the template exists, is approved, and gets the right parameters is
//! decided later against the stored template (132000, 132001, 132012 …), not here.

use serde_json::Value;

use super::fields::{invalid, missing, quoted_list, wrong_kind, Arr, Obj};
use super::TemplateRef;
use crate::ApiError;

const COMPONENT_TYPES: &[&str] = &[
    "header",
    "body",
    "button",
    "carousel",
    "limited_time_offer",
    "tap_target_configuration",
];

const COMPONENT_TYPE_HINT: &str = "the component type: \"header\", \"body\", \"button\", \"carousel\", \"limited_time_offer\" or \"tap_target_configuration\"";

/// Button positions in a template run from 0 to 9.
const BUTTON_INDEX_MAX: u64 = 9;

pub(super) fn template(template: &Obj<'_, '_>) -> Result<TemplateRef, ApiError> {
    let name = template.str("name", "the name of an approved message template")?;

    let code_hint = "`language` must be an object with the template's language code, e.g. {\"code\": \"en_US\"}";
    let language = match template.get("language") {
        Some(value @ Value::Object(_)) => Obj::new(value, template.at("language"))?,
        // Meta requires the object form; a bare string is reported as the missing code.
        _ => return Err(missing(&template.at("language").key("code"), code_hint)),
    };
    let code = language.str("code", code_hint)?;
    language.opt_str("policy")?;

    if let Some(value) = template.get("components") {
        check_components(&Arr::new(value, template.at("components"))?)?;
    }

    Ok(TemplateRef {
        name: name.to_string(),
        language: code.to_string(),
    })
}

fn check_components(components: &Arr<'_, '_>) -> Result<(), ApiError> {
    for i in 0..components.len() {
        let component = components.obj(i)?;
        let kind = component.str("type", COMPONENT_TYPE_HINT)?;
        if !COMPONENT_TYPES.contains(&kind) {
            return Err(invalid(
                &component.at("type"),
                format_args!(
                    "is \"{kind}\", which is not a template component type. Use one of {} (in lower case).",
                    quoted_list(COMPONENT_TYPES)
                ),
            ));
        }
        if kind == "button" {
            component.str(
                "sub_type",
                "the button kind, e.g. \"quick_reply\", \"url\", \"copy_code\" or \"flow\"",
            )?;
            check_button_index(&component)?;
        }
        if let Some(parameters) = component.opt_arr("parameters")? {
            for j in 0..parameters.len() {
                parameters.obj(j)?;
            }
        }
    }
    Ok(())
}

/// `index`: the button's position, 0–9, as a string ("0") or a number.
fn check_button_index(component: &Obj<'_, '_>) -> Result<(), ApiError> {
    let hint = "the position of the button in the template, \"0\" to \"9\"";
    let index = match component.req("index", hint)? {
        Value::String(s) if s.trim().is_empty() => {
            return Err(missing(&component.at("index"), hint))
        }
        Value::String(s) if s.len() == 1 => s.parse::<u64>().ok(),
        Value::String(_) => None,
        Value::Number(n) => n.as_u64(),
        other => {
            return Err(wrong_kind(
                &component.at("index"),
                "a string such as \"0\"",
                other,
            ))
        }
    };
    match index {
        Some(i) if i <= BUTTON_INDEX_MAX => Ok(()),
        _ => Err(invalid(
            &component.at("index"),
            format_args!(
                "is {}, but a button index is a position from 0 to {BUTTON_INDEX_MAX}. Send {hint}.",
                component.get("index").map_or_else(String::new, Value::to_string)
            ),
        )),
    }
}
