//! The synchronous side of `POST /{waba-id}/message_templates` (cloud-api-facts.md §3.1–§3.5,
//! codes §2.3): walks the request once, records every [`Finding`] in request order, and builds
//! the best [`TemplateDef`] it can. `parse_create` and `lint` both call [`analyze`].

use super::finding::{rules, Finding};
use super::model::{Category, Components, ParameterFormat, TemplateDef};
use super::{auth, buttons, language, parts};
use serde_json::{Map, Value};

pub const MAX_NAME: usize = 512;

/// What the request says about the template being created.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ctx {
    /// `None` when the category is missing or unknown: category-dependent rules are skipped.
    pub category: Option<Category>,
    pub format: ParameterFormat,
}

impl Ctx {
    /// `Some(true)` for AUTHENTICATION, `Some(false)` for the others, `None` if unknown.
    pub fn in_auth(&self) -> Option<bool> {
        self.category.map(|c| c == Category::Authentication)
    }
}

pub(crate) struct Analysis {
    /// Best effort when there are errors (defaults fill what could not be read).
    pub def: TemplateDef,
    pub category_known: bool,
    pub findings: Vec<Finding>,
}

pub(crate) fn analyze(body: &Value) -> Analysis {
    let mut f = Vec::new();
    let Some(obj) = body.as_object() else {
        f.push(Finding::create(
            rules::REQUEST,
            None,
            "(body)",
            "The request body is not a JSON object.",
            "Send {\"name\": …, \"language\": …, \"category\": …, \"components\": […]}.",
        ));
        return Analysis {
            def: placeholder_def(),
            category_known: false,
            findings: f,
        };
    };
    let name = check_name(obj, &mut f);
    let language = check_language(obj, &mut f);
    let category = check_category(obj, &mut f);
    let format = check_parameter_format(obj, category, &mut f);
    let ttl = check_ttl(obj, category, &mut f);
    let ctx = Ctx { category, format };
    let components = parse_components(obj, &ctx, &mut f);
    let def = TemplateDef {
        name,
        language,
        category: category.unwrap_or(Category::Marketing),
        parameter_format: format,
        message_send_ttl_seconds: ttl,
        components,
    };
    Analysis {
        def,
        category_known: category.is_some(),
        findings: f,
    }
}

fn placeholder_def() -> TemplateDef {
    TemplateDef {
        name: String::new(),
        language: String::new(),
        category: Category::Marketing,
        parameter_format: ParameterFormat::Positional,
        message_send_ttl_seconds: None,
        components: Components::default(),
    }
}

fn check_name(obj: &Map<String, Value>, f: &mut Vec<Finding>) -> String {
    let name = obj
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let problem = if name.is_empty() {
        Some("name is missing or empty.".to_string())
    } else if name.len() > MAX_NAME {
        Some(format!(
            "name is {} characters; the limit is {MAX_NAME}.",
            name.len()
        ))
    } else if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        Some(format!("name \"{name}\" may contain only lowercase letters, digits and underscores (^[a-z0-9_]+$)."))
    } else {
        None
    };
    if let Some(message) = problem {
        let suggestion: String = name
            .to_lowercase()
            .chars()
            .map(|c| {
                if c.is_ascii_lowercase() || c.is_ascii_digit() {
                    c
                } else {
                    '_'
                }
            })
            .take(MAX_NAME)
            .collect();
        let fix = if suggestion.trim_matches('_').is_empty() {
            "Use a name such as \"order_update\".".to_string()
        } else {
            format!("Use a name such as \"{suggestion}\".")
        };
        f.push(Finding::create(rules::NAME, None, "name", message, fix));
    }
    name
}

fn check_language(obj: &Map<String, Value>, f: &mut Vec<Finding>) -> String {
    let code = obj
        .get("language")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if !language::is_supported(&code) {
        let fix = match language::suggest(&code) {
            Some(s) => format!("Did you mean \"{s}\"? Codes are case-sensitive."),
            None => "Use a supported language code such as en, en_US, es_MX, pt_BR or zh_CN."
                .to_string(),
        };
        let message = if code.is_empty() {
            "language is missing.".to_string()
        } else {
            format!("\"{code}\" is not a supported template language.")
        };
        f.push(Finding::create(
            rules::LANGUAGE,
            None,
            "language",
            message,
            fix,
        ));
    }
    code
}

fn check_category(obj: &Map<String, Value>, f: &mut Vec<Finding>) -> Option<Category> {
    let raw = obj.get("category").and_then(Value::as_str).unwrap_or("");
    let category = Category::parse(raw);
    if category.is_none() {
        let message = if raw.is_empty() {
            "category is missing.".to_string()
        } else {
            format!("\"{raw}\" is not a template category.")
        };
        f.push(Finding::create(
            rules::CATEGORY,
            None,
            "category",
            message,
            "Use MARKETING, UTILITY or AUTHENTICATION.",
        ));
    }
    if category == Some(Category::Utility)
        && obj.get("allow_category_change") == Some(&Value::Bool(false))
    {
        f.push(
            Finding::create(
                rules::CATEGORY_CHANGE_FLAG,
                None,
                "allow_category_change",
                "allow_category_change=false is ignored: since 2025-04-09 a UTILITY template Meta judges as marketing is approved as MARKETING.",
                "Remove the field; write non-promotional content if the template must stay UTILITY.",
            )
            .warning(),
        );
    }
    category
}

fn check_parameter_format(
    obj: &Map<String, Value>,
    category: Option<Category>,
    f: &mut Vec<Finding>,
) -> ParameterFormat {
    let format = match obj.get("parameter_format") {
        None | Some(Value::Null) => ParameterFormat::Positional,
        Some(v) => match v.as_str().and_then(ParameterFormat::parse) {
            Some(p) => p,
            None => {
                f.push(Finding::create(
                    rules::PARAMETER_FORMAT,
                    None,
                    "parameter_format",
                    format!("parameter_format {v} is unknown."),
                    "Use \"positional\" ({{1}}, {{2}}, …) or \"named\" ({{first_name}}).",
                ));
                ParameterFormat::Positional
            }
        },
    };
    if category == Some(Category::Authentication) && format == ParameterFormat::Named {
        f.push(Finding::create(
            rules::AUTH_PARAMETER_FORMAT,
            None,
            "parameter_format",
            "AUTHENTICATION templates use Meta's preset text with the positional code variable.",
            "Remove parameter_format (or set it to \"positional\").",
        ));
    }
    format
}

fn check_ttl(
    obj: &Map<String, Value>,
    category: Option<Category>,
    f: &mut Vec<Finding>,
) -> Option<i64> {
    let v = obj.get("message_send_ttl_seconds")?;
    let Some(ttl) = v.as_i64() else {
        f.push(Finding::create(
            rules::TTL,
            None,
            "message_send_ttl_seconds",
            format!("{v} is not a whole number of seconds."),
            "Give an integer number of seconds.",
        ));
        return None;
    };
    let (range, minus_one_ok) = match category? {
        Category::Authentication => (30..=900, true),
        Category::Utility => (30..=43_200, true),
        Category::Marketing => (43_200..=2_592_000, false),
    };
    if !(range.contains(&ttl) || (minus_one_ok && ttl == -1)) {
        let category = category?.as_str();
        f.push(Finding::create(
            rules::TTL,
            None,
            "message_send_ttl_seconds",
            format!(
                "{ttl} s is outside the {category} range {}–{} s.",
                range.start(),
                range.end()
            ),
            format!(
                "Use a value from {} to {}{}, or omit it for the default.",
                range.start(),
                range.end(),
                if minus_one_ok {
                    " (or -1 for 30 days)"
                } else {
                    ""
                }
            ),
        ));
    }
    Some(ttl)
}

/// Walks `components`, dispatching on `type` (case-insensitive: Meta's own examples use
/// `"body"` as well as `"BODY"`).
fn parse_components(obj: &Map<String, Value>, ctx: &Ctx, f: &mut Vec<Finding>) -> Components {
    let mut c = Components::default();
    let list = match obj.get("components") {
        Some(Value::Array(list)) if !list.is_empty() => list,
        _ => {
            f.push(Finding::create(
                rules::COMPONENTS,
                None,
                "components",
                "components is missing or empty.",
                "Send components: [{\"type\": \"BODY\", \"text\": …}] plus optional HEADER, FOOTER, BUTTONS.",
            ));
            if ctx.in_auth() == Some(true) {
                auth::check_buttons(&c, None, f);
            }
            return c;
        }
    };
    let mut seen: Vec<String> = Vec::new();
    let mut body_seen = false;
    let mut buttons_field = None;
    for (i, v) in list.iter().enumerate() {
        let field = format!("components[{i}]");
        let Some(comp) = v.as_object() else {
            f.push(Finding::create(
                rules::COMPONENTS,
                None,
                &field,
                "A component must be a JSON object.",
                "Write it as {\"type\": \"BODY\", …}.",
            ));
            continue;
        };
        let ty = comp
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_ascii_uppercase();
        if seen.contains(&ty) {
            f.push(Finding::create(
                rules::COMPONENT_DUPLICATE,
                None,
                format!("{field}.type"),
                format!("A second {ty} component; a template has at most one."),
                format!("Merge the {ty} components into one."),
            ));
            continue;
        }
        match ty.as_str() {
            "HEADER" => c.header = parts::parse_header(comp, &field, ctx, f),
            "BODY" => {
                body_seen = true;
                c.body = parts::parse_body(comp, &field, ctx, f);
            }
            "FOOTER" => c.footer = parts::parse_footer(comp, &field, ctx, f),
            "BUTTONS" => {
                c.buttons = buttons::parse(comp, &field, ctx.in_auth(), f);
                buttons_field = Some(field.clone());
            }
            _ => {
                let shown = if ty.is_empty() {
                    "missing".to_string()
                } else {
                    format!("\"{ty}\"")
                };
                f.push(Finding::create(
                    rules::COMPONENTS,
                    None,
                    format!("{field}.type"),
                    format!("Component type is {shown}; greenlight supports HEADER, BODY, FOOTER and BUTTONS (LIMITED_TIME_OFFER and CAROUSEL are not supported)."),
                    "Use HEADER, BODY, FOOTER or BUTTONS.",
                ));
                continue;
            }
        }
        seen.push(ty);
    }
    if !body_seen {
        f.push(Finding::create(
            rules::BODY_MISSING,
            Some(super::finding::subcode::BODY_FORMAT),
            "components",
            "The template has no BODY component.",
            "Add {\"type\": \"BODY\", \"text\": \"…\"}.",
        ));
    }
    if ctx.in_auth() == Some(true) {
        auth::check_buttons(&c, buttons_field.as_deref(), f);
    }
    c
}
