//! HEADER, BODY and FOOTER at create time (cloud-api-facts.md §3.2–§3.5): formats, character
//! limits, the variable rules (syntax, format, sequence, edges, ratio) and their examples.

use super::auth;
use super::create::Ctx;
use super::finding::{rules, subcode, Finding};
use super::model::{Body, Examples, Footer, Header, MediaFormat, NamedExample, ParameterFormat};
use super::placeholder::{self, Scanned, VarKey};
use super::text::{char_len, has_emoji};
use serde_json::{Map, Value};

pub const MAX_HEADER: usize = 60;
pub const MAX_BODY: usize = 1024;
pub const MAX_FOOTER: usize = 60;
pub const MAX_HEADER_VARIABLES: usize = 1;

/// A text-bearing component whose variables are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Part {
    Header,
    Body,
}

impl Part {
    fn subcode(self) -> Option<i64> {
        Some(match self {
            Part::Header => subcode::HEADER_FORMAT,
            Part::Body => subcode::BODY_FORMAT,
        })
    }
    fn name(self) -> &'static str {
        match self {
            Part::Header => "header",
            Part::Body => "body",
        }
    }
    /// `example` key for positional samples.
    fn example_key(self) -> &'static str {
        match self {
            Part::Header => "header_text",
            Part::Body => "body_text",
        }
    }
}

fn str_of<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    obj.get(key).and_then(Value::as_str)
}

pub(crate) fn parse_header(
    obj: &Map<String, Value>,
    field: &str,
    ctx: &Ctx,
    f: &mut Vec<Finding>,
) -> Option<Header> {
    if ctx.in_auth() == Some(true) {
        f.push(Finding::create(
            rules::AUTH_HEADER,
            Some(subcode::HEADER_FORMAT),
            field,
            "AUTHENTICATION templates have no header: the message is Meta's preset code text.",
            "Remove the HEADER component.",
        ));
    }
    let header_error = |message: String, fix: &str| {
        Finding::create(
            rules::HEADER_FORMAT,
            Some(subcode::HEADER_FORMAT),
            format!("{field}.format"),
            message,
            fix,
        )
    };
    let format = str_of(obj, "format").unwrap_or("").to_ascii_uppercase();
    let media = match format.as_str() {
        "TEXT" => return Some(parse_text_header(obj, field, ctx, f)),
        "IMAGE" => MediaFormat::Image,
        "VIDEO" => MediaFormat::Video,
        "DOCUMENT" => MediaFormat::Document,
        "LOCATION" => return Some(Header::Location),
        "PRODUCT" => return Some(Header::Product),
        "" => {
            f.push(header_error(
                "The header has no format.".into(),
                "Add \"format\": TEXT, IMAGE, VIDEO, DOCUMENT or LOCATION.",
            ));
            return None;
        }
        other => {
            f.push(header_error(
                format!("Header format \"{other}\" is unknown."),
                "Use TEXT, IMAGE, VIDEO, DOCUMENT or LOCATION.",
            ));
            return None;
        }
    };
    if obj.contains_key("text") {
        f.push(Finding::create(
            rules::HEADER_FORMAT,
            Some(subcode::HEADER_FORMAT),
            format!("{field}.text"),
            format!("A {} header has no text.", media.as_str()),
            "Remove text, or use format TEXT.",
        ));
    }
    let handles: Vec<String> = obj
        .get("example")
        .and_then(|e| e.get("header_handle"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    if handles.is_empty() {
        f.push(Finding::create(
            rules::HEADER_EXAMPLE,
            Some(subcode::HEADER_FORMAT),
            format!("{field}.example.header_handle"),
            format!("A {} header needs a sample media asset.", media.as_str()),
            "Upload a sample with the Resumable Upload API and send \"example\": {\"header_handle\": [\"4::…\"]}.",
        ));
    }
    Some(Header::Media {
        format: media,
        example_handles: handles,
    })
}

fn parse_text_header(
    obj: &Map<String, Value>,
    field: &str,
    ctx: &Ctx,
    f: &mut Vec<Finding>,
) -> Header {
    let text = str_of(obj, "text").unwrap_or("").to_string();
    let text_field = format!("{field}.text");
    let err = |rule, sub, message: String, fix: String| {
        Finding::create(rule, Some(sub), text_field.clone(), message, fix)
    };
    if text.trim().is_empty() {
        f.push(err(
            rules::HEADER_FORMAT,
            subcode::HEADER_FORMAT,
            "A TEXT header needs text.".into(),
            "Add header text of up to 60 characters.".into(),
        ));
    } else if char_len(&text) > MAX_HEADER {
        f.push(err(
            rules::HEADER_LENGTH,
            subcode::CHARS_EXCEEDED,
            format!(
                "Header text is {} characters; the limit is {MAX_HEADER}.",
                char_len(&text)
            ),
            format!("Shorten the header to {MAX_HEADER} characters or fewer."),
        ));
    }
    if text.contains('\n') || has_emoji(&text) {
        f.push(err(
            rules::HEADER_FORMAT,
            subcode::HEADER_FORMAT,
            "Header text may not contain newlines or emoji.".into(),
            "Keep the header to one line of plain text.".into(),
        ));
    }
    let scanned = check_variables(&text, &text_field, Part::Header, ctx.format, f);
    let distinct = scanned.distinct();
    if distinct.len() > MAX_HEADER_VARIABLES {
        f.push(err(
            rules::HEADER_VARIABLES,
            subcode::HEADER_FORMAT,
            format!(
                "Header text has {} variables; the limit is {MAX_HEADER_VARIABLES}.",
                distinct.len()
            ),
            "Keep one variable in the header and move the others to the body.".into(),
        ));
    }
    let examples = check_examples(obj, field, Part::Header, &distinct, ctx.format, f);
    Header::Text { text, examples }
}

pub(crate) fn parse_body(
    obj: &Map<String, Value>,
    field: &str,
    ctx: &Ctx,
    f: &mut Vec<Finding>,
) -> Body {
    let add_security_recommendation = obj
        .get("add_security_recommendation")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if ctx.in_auth() == Some(true) {
        return parse_auth_body(obj, field, add_security_recommendation, f);
    }
    if ctx.in_auth() == Some(false)
        && obj
            .get("add_security_recommendation")
            .is_some_and(|v| *v != Value::Bool(false))
    {
        f.push(Finding::create(
            rules::AUTH_ONLY_FIELD,
            Some(subcode::BODY_FORMAT),
            format!("{field}.add_security_recommendation"),
            "add_security_recommendation exists only in AUTHENTICATION templates.",
            "Remove it, or use category AUTHENTICATION for one-time codes.",
        ));
    }
    let text = str_of(obj, "text").unwrap_or("").to_string();
    let text_field = format!("{field}.text");
    if text.trim().is_empty() {
        f.push(Finding::create(
            rules::BODY_TEXT,
            Some(subcode::BODY_FORMAT),
            &text_field,
            "The body has no text.",
            "Add body text of 1 to 1024 characters.",
        ));
    } else if char_len(&text) > MAX_BODY {
        f.push(Finding::create(
            rules::BODY_LENGTH,
            Some(subcode::CHARS_EXCEEDED),
            &text_field,
            format!(
                "Body text is {} characters; the limit is {MAX_BODY}.",
                char_len(&text)
            ),
            format!("Shorten the body to {MAX_BODY} characters or fewer."),
        ));
    }
    let scanned = check_variables(&text, &text_field, Part::Body, ctx.format, f);
    check_body_variable_layout(&scanned, &text_field, f);
    let examples = check_examples(obj, field, Part::Body, &scanned.distinct(), ctx.format, f);
    Body {
        text: Some(text),
        add_security_recommendation: false,
        examples,
    }
}

/// AUTHENTICATION bodies: the preset, or custom text that the review judges (§3.5, §3.10).
fn parse_auth_body(
    obj: &Map<String, Value>,
    field: &str,
    add_security_recommendation: bool,
    f: &mut Vec<Finding>,
) -> Body {
    let text = str_of(obj, "text")
        .filter(|t| !t.trim().is_empty() && !auth::is_preset_body(t))
        .map(str::to_string);
    if let Some(t) = &text {
        if char_len(t) > MAX_BODY {
            f.push(Finding::create(
                rules::BODY_LENGTH,
                Some(subcode::CHARS_EXCEEDED),
                format!("{field}.text"),
                format!(
                    "Body text is {} characters; the limit is {MAX_BODY}.",
                    char_len(t)
                ),
                "Omit text: authentication templates use Meta's preset.",
            ));
        }
        check_variables(
            t,
            &format!("{field}.text"),
            Part::Body,
            ParameterFormat::Positional,
            f,
        );
    }
    Body {
        text,
        add_security_recommendation,
        examples: Examples::None,
    }
}

pub(crate) fn parse_footer(
    obj: &Map<String, Value>,
    field: &str,
    ctx: &Ctx,
    f: &mut Vec<Finding>,
) -> Option<Footer> {
    let minutes = obj.get("code_expiration_minutes");
    if ctx.in_auth() == Some(true) {
        return parse_auth_footer(obj, field, minutes, f);
    }
    if ctx.in_auth() == Some(false) && minutes.is_some() {
        f.push(Finding::create(
            rules::AUTH_ONLY_FIELD,
            Some(subcode::FOOTER_FORMAT),
            format!("{field}.code_expiration_minutes"),
            "code_expiration_minutes exists only in AUTHENTICATION templates.",
            "Remove it, or use category AUTHENTICATION for one-time codes.",
        ));
    }
    let text = str_of(obj, "text").unwrap_or("").to_string();
    let text_field = format!("{field}.text");
    if text.trim().is_empty() {
        f.push(Finding::create(
            rules::FOOTER_FORMAT,
            Some(subcode::FOOTER_FORMAT),
            &text_field,
            "The footer has no text.",
            "Add footer text of up to 60 characters, or remove the FOOTER.",
        ));
    } else if char_len(&text) > MAX_FOOTER {
        f.push(Finding::create(
            rules::FOOTER_LENGTH,
            Some(subcode::CHARS_EXCEEDED),
            &text_field,
            format!(
                "Footer text is {} characters; the limit is {MAX_FOOTER}.",
                char_len(&text)
            ),
            format!("Shorten the footer to {MAX_FOOTER} characters or fewer."),
        ));
    }
    if text.contains("{{") || text.contains("}}") {
        f.push(Finding::create(
            rules::FOOTER_FORMAT,
            Some(subcode::FOOTER_FORMAT),
            &text_field,
            "Footers cannot contain variables.",
            "Move the variable into the body; keep the footer fixed text.",
        ));
    }
    Some(Footer {
        text: Some(text),
        code_expiration_minutes: None,
    })
}

fn parse_auth_footer(
    obj: &Map<String, Value>,
    field: &str,
    minutes: Option<&Value>,
    f: &mut Vec<Finding>,
) -> Option<Footer> {
    let minutes = match minutes {
        None => None,
        Some(v) => match v.as_i64().filter(|m| auth::EXPIRY_MINUTES.contains(m)) {
            Some(m) => u32::try_from(m).ok(),
            None => {
                f.push(Finding::create(
                    rules::AUTH_EXPIRY,
                    Some(subcode::FOOTER_FORMAT),
                    format!("{field}.code_expiration_minutes"),
                    format!("code_expiration_minutes is {v}; it must be a whole number from 1 to 90."),
                    "Use a value from 1 to 90, or omit it (the button then expires after 10 minutes).",
                ));
                None
            }
        },
    };
    if let Some(t) = str_of(obj, "text") {
        let is_preset = minutes.is_some_and(|m| t == auth::expiry_footer(m));
        if !is_preset {
            f.push(Finding::create(
                rules::AUTH_FOOTER_TEXT,
                Some(subcode::FOOTER_FORMAT),
                format!("{field}.text"),
                "AUTHENTICATION footers have no custom text; the footer is \"This code expires in N minutes.\"",
                "Remove text and set code_expiration_minutes (1–90).",
            ));
        }
    }
    minutes.map(|m| Footer {
        text: None,
        code_expiration_minutes: Some(m),
    })
}

/// Syntax, parameter-format agreement and positional sequence of the variables in `text`.
pub(crate) fn check_variables<'a>(
    text: &'a str,
    field: &str,
    part: Part,
    format: ParameterFormat,
    f: &mut Vec<Finding>,
) -> Scanned<'a> {
    let scanned = placeholder::scan(text);
    let sub = part.subcode();
    for problem in &scanned.malformed {
        f.push(Finding::create(
            rules::VAR_SYNTAX,
            sub,
            field,
            format!("In the {}: {problem}.", part.name()),
            "Write variables as {{1}}, {{2}}, … (positional) or {{first_name}} (named).",
        ));
    }
    let mismatch = match format {
        ParameterFormat::Positional if scanned.has_named() => Some((
            "Named variables such as {{first_name}} need \"parameter_format\": \"named\".",
            "Add \"parameter_format\": \"named\", or number the variables {{1}}, {{2}}, …",
        )),
        ParameterFormat::Named if scanned.has_positional() => Some((
            "This template declares parameter_format \"named\" but uses numbered variables.",
            "Name every variable, e.g. {{first_name}}, or remove parameter_format.",
        )),
        _ => None,
    };
    if let Some((message, fix)) = mismatch {
        f.push(Finding::create(rules::VAR_MIXED, sub, field, message, fix));
    }
    let gaps = scanned.positional_gaps();
    if !gaps.is_empty() {
        let gaps: Vec<String> = gaps.iter().map(|n| format!("{{{{{n}}}}}")).collect();
        f.push(Finding::create(
            rules::VAR_SEQUENCE,
            sub,
            field,
            format!(
                "Positional variables in the {} are not sequential: {} missing.",
                part.name(),
                gaps.join(", ")
            ),
            "Number the variables 1, 2, 3, … without gaps.",
        ));
    }
    scanned
}

/// Body-only placement rules: no leading/trailing variable (2388299) and not more variables
/// than words (2388293).
fn check_body_variable_layout(scanned: &Scanned, field: &str, f: &mut Vec<Finding>) {
    if let Some(k) = scanned.leading_var().or_else(|| scanned.trailing_var()) {
        let at = if scanned.leading_var().is_some() {
            "starts"
        } else {
            "ends"
        };
        f.push(Finding::create(
            rules::VAR_EDGE,
            Some(subcode::DANGLING_VARIABLE),
            field,
            format!("The body {at} with the variable {k}."),
            "Put fixed text before the first and after the last variable (a closing period is enough).",
        ));
    }
    let (vars, words) = (scanned.var_count(), scanned.static_words());
    if vars > words {
        f.push(Finding::create(
            rules::VAR_RATIO,
            Some(subcode::TOO_MANY_VARIABLES),
            field,
            format!("The body has {vars} variables for {words} words of fixed text; it may not have more variables than words."),
            "Add descriptive text around the variables or use fewer variables.",
        ));
    }
}

/// The `example` of a header or body with variables `distinct`.
fn check_examples(
    obj: &Map<String, Value>,
    field: &str,
    part: Part,
    distinct: &[VarKey],
    format: ParameterFormat,
    f: &mut Vec<Finding>,
) -> Examples {
    if distinct.is_empty() {
        return Examples::None;
    }
    let example = obj.get("example");
    match format {
        ParameterFormat::Positional => positional_examples(example, field, part, distinct.len(), f),
        ParameterFormat::Named => named_examples(example, field, part, distinct, f),
    }
}

fn missing_example(field: &str, part: Part, key: &str, shape: &str) -> Finding {
    Finding::create(
        rules::EXAMPLE_MISSING,
        part.subcode(),
        format!("{field}.example.{key}"),
        format!("The {} has variables but no sample values.", part.name()),
        format!("Add \"example\": {{\"{key}\": {shape}}} with one realistic value per variable."),
    )
}

fn positional_examples(
    example: Option<&Value>,
    field: &str,
    part: Part,
    n: usize,
    f: &mut Vec<Finding>,
) -> Examples {
    let key = part.example_key();
    let shape = if part == Part::Body {
        "[[\"…\", …]]"
    } else {
        "[\"…\"]"
    };
    let Some(raw) = example.and_then(|e| e.get(key)) else {
        f.push(missing_example(field, part, key, shape));
        return Examples::None;
    };
    let values: Option<Vec<String>> = match part {
        Part::Body => raw
            .as_array()
            .and_then(|outer| outer.first())
            .and_then(Value::as_array)
            .map(|a| strings(a)),
        Part::Header => raw.as_array().map(|a| strings(a)),
    };
    let count_ok = values
        .as_ref()
        .is_some_and(|v| v.len() == n && v.iter().all(|s| !s.trim().is_empty()));
    if !count_ok {
        let got = match &values {
            Some(v) => format!("{} value(s)", v.len()),
            None => "a value of the wrong shape".to_string(),
        };
        f.push(Finding::create(
            rules::EXAMPLE_COUNT,
            part.subcode(),
            format!("{field}.example.{key}"),
            format!(
                "The {} has {n} variable(s) but the sample has {got} (empty values do not count).",
                part.name()
            ),
            format!("Give exactly {n} non-empty value(s) in the shape {shape}."),
        ));
    }
    Examples::Positional(values.unwrap_or_default())
}

fn strings(a: &[Value]) -> Vec<String> {
    a.iter()
        .map(|v| v.as_str().map(str::to_string).unwrap_or_default())
        .collect()
}

fn named_examples(
    example: Option<&Value>,
    field: &str,
    part: Part,
    distinct: &[VarKey],
    f: &mut Vec<Finding>,
) -> Examples {
    let key = format!("{}_named_params", part.example_key());
    let shape = "[{\"param_name\": \"first_name\", \"example\": \"Pablo\"}]";
    let Some(raw) = example.and_then(|e| e.get(&key)).and_then(Value::as_array) else {
        f.push(missing_example(field, part, &key, shape));
        return Examples::None;
    };
    let given: Vec<NamedExample> = raw
        .iter()
        .map(|e| NamedExample {
            param_name: e
                .get("param_name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            example: e
                .get("example")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
        })
        .collect();
    let wanted: Vec<&str> = distinct
        .iter()
        .filter_map(|k| match k {
            VarKey::Named(n) => Some(n.as_str()),
            VarKey::Positional(_) => None,
        })
        .collect();
    let mut names: Vec<&str> = given.iter().map(|e| e.param_name.as_str()).collect();
    names.sort_unstable();
    let mut expected = wanted.clone();
    expected.sort_unstable();
    let empty = given.iter().any(|e| e.example.trim().is_empty());
    if names != expected || empty {
        f.push(Finding::create(
            rules::EXAMPLE_COUNT,
            part.subcode(),
            format!("{field}.example.{key}"),
            format!(
                "The {} uses {{{{{}}}}} but the samples name [{}]{}.",
                part.name(),
                wanted.join("}}, {{"),
                names.join(", "),
                if empty { " and some are empty" } else { "" }
            ),
            "Give one non-empty sample per variable name, each name once.",
        ));
    }
    Examples::Named(given)
}
