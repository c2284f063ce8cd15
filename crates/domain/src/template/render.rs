//! Send time (cloud-api-facts.md §1.9): checks the `template.components` of a send against
//! the approved template and renders what the customer reads.
//!
//! | check | code |
//! |---|---|
//! | `components` not an array, a component not an object, unknown component type, duplicate header/body/button index, button index with no button, parameters to a button that takes none | 131009 |
//! | `sub_type` / `index` missing on a button component; a parameter without its value (`text`, `fallback_value`, `link`/`id`, location fields, `payload`, `coupon_code`) | 131008 |
//! | number of parameters ≠ the component's variables (a missing component counts as zero), URL button with a variable but no parameter, COPY_CODE / OTP / MPM button without its component | 132000 |
//! | named template without `parameter_name`, positional template with it, unknown or repeated name, wrong parameter type (image for a TEXT header, text for an IMAGE header, …), missing media parameter for a media header, `sub_type` not the button's | 132012 |
//! | text parameter with a newline, a tab or more than 4 consecutive spaces | 132018 |
//! | header parameter > 60, quick-reply payload > 256, coupon > 15, one-time code > 15 characters | 131009 |
//! | hydrated header > 60; hydrated body > 1024 (32768 when the body is the only component) | 132005 |

use super::auth::MAX_CODE_LEN;
use super::buttons::MAX_COUPON;
use super::model::{Button, Category, Header, ParameterFormat, TemplateDef};
use super::parts::MAX_HEADER;
use super::placeholder::{self, VarKey};
use super::text::char_len;
use crate::message::fields::{Path, TEMPLATE_COMPONENTS};
use crate::ApiError;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fmt;

/// Longest quick-reply payload (§3.3).
pub const MAX_PAYLOAD: usize = 256;
/// Hydrated body limit when the template has a header, footer or buttons.
pub const MAX_BODY_WITH_OTHERS: usize = 1024;
/// Hydrated body limit when the body is the template's only component.
pub const MAX_BODY_ALONE: usize = 32_768;

/// What the customer reads. Media, location and product headers render as `[IMAGE] <link or
/// id>`, `[LOCATION] <name>, <address>`, `[PRODUCT] <retailer id>`; buttons as their label,
/// with the target in parentheses for URL, PHONE_NUMBER and COPY_CODE buttons.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub header: Option<String>,
    pub body: String,
    pub footer: Option<String>,
    pub buttons: Vec<String>,
}

impl Rendered {
    /// What the customer reads, as one text: the header, the body and the footer a line each,
    /// then each button as `[label]` on a line of its own; in one allocation of its size.
    pub fn text(&self) -> String {
        let len = self.header.as_ref().map_or(0, |h| h.len() + 1)
            + self.body.len()
            + self.footer.as_ref().map_or(0, |f| f.len() + 1)
            + self.buttons.iter().map(|b| b.len() + 3).sum::<usize>();
        let mut text = String::with_capacity(len);
        if let Some(h) = &self.header {
            text.push_str(h);
            text.push('\n');
        }
        text.push_str(&self.body);
        if let Some(f) = &self.footer {
            text.push('\n');
            text.push_str(f);
        }
        for b in &self.buttons {
            text.push_str("\n[");
            text.push_str(b);
            text.push(']');
        }
        text
    }
}

/// Where a component is in the request, for error messages: `template.components[i]`, or
/// `template.components` for one that was not sent. Written (as the request's other fields,
/// by [`Path`]) only when a message needs it: a send that passes formats no path.
#[derive(Clone, Copy)]
struct CPath(Option<usize>);

impl CPath {
    fn path(self) -> Path<'static> {
        match self.0 {
            Some(i) => TEMPLATE_COMPONENTS.index(i),
            None => TEMPLATE_COMPONENTS,
        }
    }
}

impl fmt::Display for CPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.path().fmt(f)
    }
}

/// A parameter's place: `<component>.parameters[j]`.
#[derive(Clone, Copy)]
struct PPath(CPath, usize);

impl fmt::Display for PPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.path().key("parameters").index(self.1).fmt(f)
    }
}

struct Part<'a> {
    path: CPath,
    params: &'a [Value],
}

struct ButtonPart<'a> {
    path: CPath,
    params: &'a [Value],
}

#[derive(Default)]
struct Sent<'a> {
    header: Option<Part<'a>>,
    body: Option<Part<'a>>,
    buttons: BTreeMap<usize, ButtonPart<'a>>,
}

pub fn render(def: &TemplateDef, components: &Value) -> Result<Rendered, ApiError> {
    render_planned(def, &BodyPlan::of(def), components)
}

/// A template made ready for its sends: its definition, with its body's text split into fixed
/// pieces and variables once rather than at every send ([`Prepared::render`] renders as
/// [`render`] does; a test checks it).
#[derive(Debug, Clone)]
pub struct Prepared {
    def: TemplateDef,
    body: BodyPlan,
}

impl Prepared {
    pub fn new(def: TemplateDef) -> Prepared {
        let body = BodyPlan::of(&def);
        Prepared { def, body }
    }

    /// The definition (read-only: the plan was made from it).
    pub fn def(&self) -> &TemplateDef {
        &self.def
    }

    pub fn render(&self, components: &Value) -> Result<Rendered, ApiError> {
        render_planned(&self.def, &self.body, components)
    }
}

/// The body's text as [`placeholder::scan`] splits it, owned, and its distinct variables.
#[derive(Debug, Clone)]
struct BodyPlan {
    pieces: Vec<PlanPiece>,
    vars: Vec<VarKey>,
    /// The fixed pieces' bytes, to size the rendering once.
    fixed_len: usize,
}

#[derive(Debug, Clone)]
enum PlanPiece {
    Text(String),
    Var(VarKey),
}

impl BodyPlan {
    fn of(def: &TemplateDef) -> BodyPlan {
        let text = def.body_text();
        let scanned = placeholder::scan(&text);
        BodyPlan {
            vars: scanned.distinct(),
            fixed_len: scanned
                .pieces
                .iter()
                .map(|p| match p {
                    placeholder::Piece::Text(t) => t.len(),
                    placeholder::Piece::Var(_) => 0,
                })
                .sum(),
            pieces: scanned
                .pieces
                .into_iter()
                .map(|p| match p {
                    placeholder::Piece::Text(t) => PlanPiece::Text(t.to_string()),
                    placeholder::Piece::Var(k) => PlanPiece::Var(k),
                })
                .collect(),
        }
    }

    /// As [`placeholder::Scanned::hydrate`].
    fn hydrate<'v>(&self, mut value: impl FnMut(&VarKey) -> &'v str) -> String {
        // room for the fixed text and short values (a longer one grows it once or twice)
        let mut out = String::with_capacity(self.fixed_len + 16 * self.vars.len());
        for p in &self.pieces {
            match p {
                PlanPiece::Text(t) => out.push_str(t),
                PlanPiece::Var(k) => out.push_str(value(k)),
            }
        }
        out
    }
}

fn render_planned(
    def: &TemplateDef,
    body: &BodyPlan,
    components: &Value,
) -> Result<Rendered, ApiError> {
    let sent = group(def, components)?;
    let header = render_header(def, sent.header.as_ref())?;
    let body = render_body(def, body, sent.body.as_ref())?;
    let buttons = render_buttons(def, &sent.buttons)?;
    Ok(Rendered {
        header,
        body,
        footer: def.footer_text(),
        buttons,
    })
}

fn group<'a>(def: &TemplateDef, components: &'a Value) -> Result<Sent<'a>, ApiError> {
    let list: &[Value] = match components {
        Value::Null => &[],
        Value::Array(a) => a,
        _ => {
            return Err(ApiError::invalid_value(
                "template.components must be an array of components.",
            ))
        }
    };
    let mut sent = Sent::default();
    for (i, c) in list.iter().enumerate() {
        let path = CPath(Some(i));
        let obj = c.as_object().ok_or_else(|| {
            ApiError::invalid_value(format!("{path} must be an object with a type."))
        })?;
        let params = params_of(obj, path)?;
        let sent_type = obj.get("type").and_then(Value::as_str).unwrap_or("");
        // compared without the lowercase copy a send's components would each allocate
        let ty = ["header", "body", "button"]
            .into_iter()
            .find(|t| sent_type.eq_ignore_ascii_case(t));
        match ty {
            Some(ty @ ("header" | "body")) => {
                let slot = if ty == "header" { &mut sent.header } else { &mut sent.body };
                if slot.is_some() {
                    return Err(ApiError::invalid_value(format!("{path}: a second {ty} component. Send at most one {ty} component.")));
                }
                *slot = Some(Part { path, params });
            }
            Some(_) => {
                let (index, part) = button_part(obj, path, params, def)?;
                if sent.buttons.insert(index, part).is_some() {
                    return Err(ApiError::invalid_value(format!("{path}: a second button component with index {index}. Send one per button.")));
                }
            }
            None => {
                return Err(ApiError::invalid_value(format!(
                    "{path}: component type \"{}\" is not part of template {}. Use header, body or button.",
                    sent_type.to_ascii_lowercase(),
                    def.name
                )))
            }
        }
    }
    Ok(sent)
}

fn params_of(obj: &Map<String, Value>, path: CPath) -> Result<&[Value], ApiError> {
    match obj.get("parameters") {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(a)) => Ok(a),
        Some(_) => Err(ApiError::invalid_value(format!(
            "{path}.parameters must be an array."
        ))),
    }
}

fn button_part<'a>(
    obj: &Map<String, Value>,
    path: CPath,
    params: &'a [Value],
    def: &TemplateDef,
) -> Result<(usize, ButtonPart<'a>), ApiError> {
    let sub_type = obj
        .get("sub_type")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::missing_parameter(format!("{path}.sub_type is required on button components (quick_reply, url, copy_code, flow, catalog, mpm).")))?
        .to_ascii_lowercase();
    let index = match obj.get("index") {
        Some(Value::String(s)) => s.parse::<usize>().ok(),
        Some(Value::Number(n)) => n.as_u64().and_then(|n| usize::try_from(n).ok()),
        None => {
            return Err(ApiError::missing_parameter(format!(
            "{path}.index is required on button components: the button's position, \"0\" to \"9\"."
        )))
        }
        _ => None,
    };
    let n = def.components.buttons.len();
    let index = index.filter(|i| *i < n).ok_or_else(|| {
        ApiError::invalid_value(format!(
            "{path}.index {} does not name a button: template {} has {n} button(s), index 0 to {}.",
            obj.get("index").unwrap_or(&Value::Null),
            def.name,
            n.saturating_sub(1)
        ))
    })?;
    let button = &def.components.buttons[index];
    match button.send_sub_type() {
        None => Err(ApiError::invalid_value(format!(
            "{path}: button {index} is a {} button, which takes no parameters. Remove this component.",
            button.type_str()
        ))),
        Some(expected) if expected != sub_type => Err(ApiError::template_param_format(format!(
            "{path}.sub_type is \"{sub_type}\" but button {index} of the template is a {} button: use sub_type \"{expected}\".",
            button.type_str()
        ))),
        Some(_) => Ok((index, ButtonPart { path, params })),
    }
}

/// The value of a `text`, `currency` or `date_time` parameter (fallback values for the latter).
fn text_value<'a>(p: &'a Value, path: PPath, slot: &str) -> Result<&'a str, ApiError> {
    let ty = p.get("type").and_then(Value::as_str).unwrap_or("");
    let need = |v: Option<&'a str>, what: &str| {
        v.ok_or_else(|| {
            ApiError::missing_parameter(format!("{path}: {what} is required for a {ty} parameter."))
        })
    };
    match ty {
        "text" => need(p.get("text").and_then(Value::as_str), "text"),
        "currency" => {
            let c = p.get("currency");
            need(
                c.and_then(|c| c.get("code")).and_then(Value::as_str),
                "currency.code",
            )?;
            if c.and_then(|c| c.get("amount_1000"))
                .and_then(Value::as_i64)
                .is_none()
            {
                return Err(ApiError::missing_parameter(format!(
                    "{path}: currency.amount_1000 (amount × 1000, an integer) is required."
                )));
            }
            need(
                c.and_then(|c| c.get("fallback_value"))
                    .and_then(Value::as_str),
                "currency.fallback_value",
            )
        }
        "date_time" => need(
            p.get("date_time")
                .and_then(|d| d.get("fallback_value"))
                .and_then(Value::as_str),
            "date_time.fallback_value",
        ),
        other => Err(ApiError::template_param_format(format!(
            "{path}: a {slot} variable takes a text, currency or date_time parameter, not {}.",
            if other.is_empty() {
                "a parameter without type".to_string()
            } else {
                format!("\"{other}\"")
            }
        ))),
    }
}

/// Whether a parameter's text has a newline, a tab or more than 4 consecutive spaces: one pass
/// over its bytes (three `contains`, one with a five-space pattern and its searcher, cost a
/// send's rendering a sixth of its time: docs/BENCHMARKS.md, thirty-third round).
fn bad_whitespace(value: &str) -> bool {
    let mut spaces = 0;
    for b in value.bytes() {
        match b {
            b'\n' | b'\t' => return true,
            b' ' => {
                spaces += 1;
                if spaces > 4 {
                    return true;
                }
            }
            _ => spaces = 0,
        }
    }
    false
}

/// Meta refuses newlines, tabs and runs of more than four spaces inside text parameters.
fn check_whitespace(value: &str, path: PPath) -> Result<(), ApiError> {
    if bad_whitespace(value) {
        return Err(ApiError::new(
            400,
            132018,
            "Template validation error",
            format!("{path}: parameter text cannot contain newlines, tabs or more than 4 consecutive spaces. Put line breaks in the template text instead."),
        ));
    }
    Ok(())
}

fn var_list(vars: &[VarKey]) -> String {
    if vars.is_empty() {
        "no variables".to_string()
    } else {
        vars.iter()
            .map(VarKey::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Binds the parameters of a header or body to its variables `vars`.
fn bind<'a>(
    def: &TemplateDef,
    vars: &[VarKey],
    part: Option<&Part<'a>>,
    slot: &str,
) -> Result<BTreeMap<VarKey, &'a str>, ApiError> {
    let (path, params) = match part {
        Some(p) => (p.path, p.params),
        None => (CPath(None), &[][..]),
    };
    let mut values: Vec<(Option<&str>, &str)> = Vec::with_capacity(params.len());
    for (j, p) in params.iter().enumerate() {
        let ppath = PPath(path, j);
        let value = text_value(p, ppath, slot)?;
        check_whitespace(value, ppath)?;
        let name = p.get("parameter_name").and_then(Value::as_str);
        match (def.parameter_format, name) {
            (ParameterFormat::Positional, Some(n)) => {
                return Err(ApiError::template_param_format(format!(
                    "{ppath}: template {} uses positional parameters ({{{{1}}}}, {{{{2}}}}, …) but this parameter is named \"{n}\". Remove parameter_name and send the parameters in order.",
                    def.name
                )))
            }
            (ParameterFormat::Named, None) => {
                return Err(ApiError::template_param_format(format!(
                    "{ppath}: template {} uses named parameters; add \"parameter_name\" (one of {}).",
                    def.name,
                    var_list(vars)
                )))
            }
            _ => {}
        }
        values.push((name, value));
    }
    if values.len() != vars.len() {
        return Err(ApiError::template_param_count(format!(
            "{path}: {} {slot} parameter(s) sent, but the template's {slot} has {} variable(s) ({}). Send exactly {}.",
            values.len(),
            vars.len(),
            var_list(vars),
            vars.len()
        )));
    }
    let mut bound = BTreeMap::new();
    for (j, (name, value)) in values.into_iter().enumerate() {
        let key = match name {
            None => VarKey::Positional(u32::try_from(j + 1).unwrap_or(u32::MAX)),
            Some(n) => VarKey::Named(n.to_string()),
        };
        if !vars.contains(&key) || bound.contains_key(&key) {
            return Err(ApiError::template_param_format(format!(
                "{}: {key} is {} of the template's {slot}, whose variables are {}.",
                PPath(path, j),
                if vars.contains(&key) {
                    "sent twice; it is one variable"
                } else {
                    "not a variable"
                },
                var_list(vars)
            )));
        }
        bound.insert(key, value);
    }
    Ok(bound)
}

fn render_header(def: &TemplateDef, part: Option<&Part>) -> Result<Option<String>, ApiError> {
    let Some(header) = &def.components.header else {
        if let Some(p) = part.filter(|p| !p.params.is_empty()) {
            return Err(ApiError::template_param_count(format!(
                "{}: template {} has no header; remove the header component.",
                p.path, def.name
            )));
        }
        return Ok(None);
    };
    let rendered = match header {
        Header::Text { text, .. } => render_text_header(def, text, part)?,
        Header::Media { format, .. } => {
            let (obj, ppath) = single_header_param(def, header, format.param_type(), part)?;
            let target = obj
                .get("link")
                .and_then(Value::as_str)
                .map(str::to_string)
                .or_else(|| match obj.get("id") {
                    Some(Value::String(id)) => Some(id.clone()),
                    Some(Value::Number(id)) => Some(id.to_string()),
                    _ => None,
                });
            let target = target.ok_or_else(|| {
                ApiError::missing_parameter(format!(
                    "{ppath}.{} needs a link or an id of uploaded media.",
                    format.param_type()
                ))
            })?;
            format!("[{}] {target}", format.as_str())
        }
        Header::Location => {
            let (obj, ppath) = single_header_param(def, header, "location", part)?;
            let missing: Vec<&str> = ["latitude", "longitude", "name", "address"]
                .into_iter()
                .filter(|k| matches!(obj.get(*k), None | Some(Value::Null)))
                .collect();
            if !missing.is_empty() {
                return Err(ApiError::missing_parameter(format!(
                    "{ppath}.location needs latitude, longitude, name and address; missing: {}.",
                    missing.join(", ")
                )));
            }
            let s = |k: &str| obj.get(k).and_then(Value::as_str).unwrap_or("");
            format!("[LOCATION] {}, {}", s("name"), s("address"))
        }
        Header::Product => {
            let (obj, ppath) = single_header_param(def, header, "product", part)?;
            match (
                obj.get("product_retailer_id").and_then(Value::as_str),
                obj.get("catalog_id"),
            ) {
                (Some(id), Some(_)) => format!("[PRODUCT] {id}"),
                _ => {
                    return Err(ApiError::missing_parameter(format!(
                        "{ppath}.product needs catalog_id and product_retailer_id."
                    )))
                }
            }
        }
    };
    Ok(Some(rendered))
}

fn render_text_header(
    def: &TemplateDef,
    text: &str,
    part: Option<&Part>,
) -> Result<String, ApiError> {
    let scanned = placeholder::scan(text);
    let vars = scanned.distinct();
    let bound = bind(def, &vars, part, "header")?;
    for (k, v) in &bound {
        if char_len(v) > MAX_HEADER {
            return Err(ApiError::invalid_value(format!(
                "template.components (header): the value for {k} is {} characters; header parameters are limited to {MAX_HEADER}. Shorten it.",
                char_len(v)
            )));
        }
    }
    let out = scanned.hydrate(|k| bound.get(k).copied().unwrap_or_default());
    if char_len(&out) > MAX_HEADER {
        return Err(ApiError::template_text_too_long(format!(
            "header: the header with its parameters is {} characters; the limit is {MAX_HEADER}. Send shorter header parameters.",
            char_len(&out)
        )));
    }
    Ok(out)
}

/// The one parameter of a media, location or product header: it must be there and have the
/// header's type (`expected`); returns its object (`{"link": …}` for `"image"`; null when
/// absent) and path.
fn single_header_param<'a>(
    def: &TemplateDef,
    header: &Header,
    expected: &str,
    part: Option<&'a Part>,
) -> Result<(&'a Value, PPath), ApiError> {
    let params = part.map(|p| p.params).unwrap_or(&[]);
    let path = part.map_or(CPath(None), |p| p.path);
    let Some(p) = params.first() else {
        return Err(ApiError::template_param_format(format!(
            "header: Format mismatch, expected {}, received UNKNOWN. Template {} has a {} header: send {{\"type\": \"header\", \"parameters\": [{{\"type\": \"{expected}\", …}}]}}.",
            expected.to_uppercase(),
            def.name,
            header.format_str()
        )));
    };
    if params.len() > 1 {
        return Err(ApiError::template_param_count(format!(
            "{path}: {} header parameters sent; a {} header takes exactly 1.",
            params.len(),
            header.format_str()
        )));
    }
    let ppath = PPath(path, 0);
    let ty = p.get("type").and_then(Value::as_str).unwrap_or("");
    if ty != expected {
        return Err(ApiError::template_param_format(format!(
            "header: Format mismatch, expected {}, received {}. Send a {expected} parameter at {ppath}.",
            expected.to_uppercase(),
            if ty.is_empty() { "UNKNOWN".to_string() } else { ty.to_uppercase() }
        )));
    }
    Ok((p.get(ty).unwrap_or(&Value::Null), ppath))
}

fn render_body(
    def: &TemplateDef,
    plan: &BodyPlan,
    part: Option<&Part>,
) -> Result<String, ApiError> {
    let bound = bind(def, &plan.vars, part, "body")?;
    if def.category == Category::Authentication {
        if let Some(code) = bound.values().find(|v| char_len(v) > MAX_CODE_LEN) {
            return Err(ApiError::invalid_value(format!(
                "body: the one-time code is {} characters; authentication codes are limited to {MAX_CODE_LEN}.",
                char_len(code)
            )));
        }
    }
    let out = plan.hydrate(|k| bound.get(k).copied().unwrap_or_default());
    let c = &def.components;
    let alone = c.header.is_none() && !def.has_footer_text() && c.buttons.is_empty();
    let limit = if alone {
        MAX_BODY_ALONE
    } else {
        MAX_BODY_WITH_OTHERS
    };
    if char_len(&out) > limit {
        return Err(ApiError::template_text_too_long(format!(
            "body: the body with its parameters is {} characters; the limit is {limit}{}. Send shorter parameters.",
            char_len(&out),
            if alone { "" } else { " when the template has a header, footer or buttons" }
        )));
    }
    Ok(out)
}

/// The button's single parameter, of type `kind`, if one was sent.
fn optional_param<'a>(
    bp: Option<&'a ButtonPart>,
    index: usize,
    kind: &str,
) -> Result<Option<(&'a Value, PPath)>, ApiError> {
    let params = bp.map(|b| b.params).unwrap_or(&[]);
    let path = bp.map_or(CPath(None), |b| b.path);
    match params {
        [] => Ok(None),
        [p] => {
            let ppath = PPath(path, 0);
            let ty = p.get("type").and_then(Value::as_str).unwrap_or("");
            if ty != kind {
                return Err(ApiError::template_param_format(format!(
                    "{ppath}: button {index} takes a {kind} parameter, not \"{ty}\"."
                )));
            }
            Ok(Some((p, ppath)))
        }
        many => Err(ApiError::template_param_count(format!(
            "{path}: {} parameters sent to button {index}; it takes one {kind} parameter.",
            many.len()
        ))),
    }
}

/// The button's single parameter, of type `kind`, which must be sent.
fn required_param<'a>(
    bp: Option<&'a ButtonPart>,
    index: usize,
    kind: &str,
) -> Result<(&'a Value, PPath), ApiError> {
    optional_param(bp, index, kind)?.ok_or_else(|| {
        ApiError::template_param_count(format!(
            "template.components: button {index} needs one {kind} parameter: send {{\"type\": \"button\", \"sub_type\": …, \"index\": \"{index}\", \"parameters\": [{{\"type\": \"{kind}\", …}}]}}."
        ))
    })
}

fn string_field<'a>(p: &'a Value, key: &str, ppath: PPath) -> Result<&'a str, ApiError> {
    p.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::missing_parameter(format!("{ppath}.{key} is required.")))
}

fn limit(value: &str, max: usize, what: &str, ppath: PPath) -> Result<(), ApiError> {
    if char_len(value) > max {
        return Err(ApiError::invalid_value(format!(
            "{ppath}: the {what} is {} characters; the limit is {max}.",
            char_len(value)
        )));
    }
    Ok(())
}

fn render_buttons(
    def: &TemplateDef,
    sent: &BTreeMap<usize, ButtonPart>,
) -> Result<Vec<String>, ApiError> {
    def.components
        .buttons
        .iter()
        .enumerate()
        .map(|(i, b)| render_button(b, i, sent.get(&i)))
        .collect()
}

fn render_button(b: &Button, i: usize, bp: Option<&ButtonPart>) -> Result<String, ApiError> {
    let label = b.label().to_string();
    Ok(match b {
        Button::QuickReply { .. } => {
            if let Some((p, ppath)) = optional_param(bp, i, "payload")? {
                limit(
                    string_field(p, "payload", ppath)?,
                    MAX_PAYLOAD,
                    "quick-reply payload",
                    ppath,
                )?;
            }
            label
        }
        Button::Url { url, .. } => {
            let scanned = placeholder::scan(url);
            if scanned.var_count() == 0 {
                if let Some(bp) = bp.filter(|bp| !bp.params.is_empty()) {
                    return Err(ApiError::template_param_count(format!(
                        "{}: button {i} has a fixed URL and takes no parameters.",
                        bp.path
                    )));
                }
                format!("{label} ({url})")
            } else {
                let (p, ppath) = required_param(bp, i, "text")?;
                let suffix = string_field(p, "text", ppath)?;
                check_whitespace(suffix, ppath)?;
                format!("{label} ({})", scanned.hydrate(|_| suffix))
            }
        }
        Button::CopyCode { .. } => {
            let (p, ppath) = required_param(bp, i, "coupon_code")?;
            let coupon = string_field(p, "coupon_code", ppath)?;
            limit(coupon, MAX_COUPON, "coupon code", ppath)?;
            format!("{label} ({coupon})")
        }
        Button::Otp(_) => {
            let (p, ppath) = required_param(bp, i, "text")?;
            limit(
                string_field(p, "text", ppath)?,
                MAX_CODE_LEN,
                "one-time code",
                ppath,
            )?;
            label
        }
        Button::Mpm { .. } => {
            let (p, ppath) = required_param(bp, i, "action")?;
            if p.get("action")
                .and_then(|a| a.get("sections"))
                .and_then(Value::as_array)
                .is_none()
            {
                return Err(ApiError::missing_parameter(format!(
                    "{ppath}.action.sections is required for a multi-product button."
                )));
            }
            label
        }
        Button::Flow { .. } | Button::Catalog { .. } => {
            optional_param(bp, i, "action")?;
            label
        }
        Button::PhoneNumber { phone_number, .. } => format!("{label} ({phone_number})"),
        Button::VoiceCall { .. } | Button::Spm { .. } => label,
    })
}

#[cfg(test)]
mod whitespace_tests {
    use super::bad_whitespace;
    use proptest::prelude::*;

    proptest! {
        /// The one pass says what the three searches it replaced said, in any text.
        #[test]
        fn bad_whitespace_is_the_three_searches(s in "[ \t\na\u{e9}\u{a0}]{0,16}") {
            let searched = s.contains('\n') || s.contains('\t') || s.contains("     ");
            prop_assert_eq!(bad_whitespace(&s), searched);
        }
    }

    #[test]
    fn bad_whitespace_edges() {
        assert!(!bad_whitespace(""));
        assert!(!bad_whitespace("    "), "four spaces are allowed");
        assert!(bad_whitespace("     "), "five are not");
        assert!(!bad_whitespace("a    b    c"), "runs are counted apart");
        assert!(bad_whitespace("a\tb"));
        assert!(bad_whitespace("\n"));
        assert!(
            !bad_whitespace("a\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}b"),
            "only ASCII spaces count"
        );
    }
}
