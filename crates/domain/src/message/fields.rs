//! Walking a request body with the path of every field at hand, so that each refusal names
//! the field (`interactive.action.buttons[1].reply.title`), the rule it broke and the fix.
//!
//! Paths are chains of borrowed segments on the stack: nothing is allocated unless a field is
//! refused, which keeps validation cheap on the send path.
//!
//! Conventions shared by every message type (cloud-api-facts.md §2.3):
//! - a required field that is absent, `null` or (for strings) blank → 131008;
//! - a field of the wrong JSON kind, out of range or too long → 131009.

use std::fmt;

use serde_json::{Map, Value};

use crate::ApiError;

/// Where a field sits in the request body, e.g. `interactive.action.buttons[1].reply.title`.
#[derive(Clone, Copy)]
pub(crate) struct Path<'a> {
    parent: Option<&'a Path<'a>>,
    seg: Seg<'a>,
}

#[derive(Clone, Copy)]
enum Seg<'a> {
    Root,
    Key(&'a str),
    Index(usize),
}

impl Path<'static> {
    /// The request body itself.
    pub(crate) const ROOT: Path<'static> = Path {
        parent: None,
        seg: Seg::Root,
    };
}

/// `template.components`, where a template send's components are: the template renderer's
/// paths start here (`template::render`).
pub(crate) static TEMPLATE_COMPONENTS: Path<'static> = Path {
    parent: Some(&TEMPLATE),
    seg: Seg::Key("components"),
};
static TEMPLATE: Path<'static> = Path {
    parent: Some(&Path::ROOT),
    seg: Seg::Key("template"),
};

impl<'a> Path<'a> {
    pub(crate) fn key(&'a self, key: &'a str) -> Path<'a> {
        Path {
            parent: Some(self),
            seg: Seg::Key(key),
        }
    }

    pub(crate) fn index(&'a self, index: usize) -> Path<'a> {
        Path {
            parent: Some(self),
            seg: Seg::Index(index),
        }
    }

    fn is_root(&self) -> bool {
        matches!(self.seg, Seg::Root)
    }
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(parent) = self.parent {
            parent.fmt(f)?;
        }
        match self.seg {
            Seg::Root => Ok(()),
            Seg::Key(key) if self.parent.is_some_and(|p| !p.is_root()) => write!(f, ".{key}"),
            Seg::Key(key) => f.write_str(key),
            Seg::Index(i) => write!(f, "[{i}]"),
        }
    }
}

// ---- Refusals -----------------------------------------------------------------------------

/// 131008: `path` is required. `hint` says what to put there.
pub(crate) fn missing(path: &Path<'_>, hint: &str) -> ApiError {
    ApiError::missing_parameter(format!("`{path}` is required: {hint}."))
}

/// 131009: `path` holds a value that is not accepted. `problem` completes the sentence
/// "`path` …" and must say how to fix it.
pub(crate) fn invalid(path: &Path<'_>, problem: impl fmt::Display) -> ApiError {
    ApiError::invalid_value(format!("`{path}` {problem}"))
}

/// 131009: `path` holds the wrong JSON kind.
pub(crate) fn wrong_kind(path: &Path<'_>, expected: &str, got: &Value) -> ApiError {
    invalid(
        path,
        format_args!(
            "must be {expected}, but it is {}. Send it as {expected}.",
            kind(got)
        ),
    )
}

/// The JSON kind of a value, for messages.
pub(crate) fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

// ---- Length and format checks ---------------------------------------------------------------

/// Meta's limits count characters, not bytes: a 4096-character body of emoji is accepted.
pub(crate) fn check_max_chars(path: &Path<'_>, s: &str, max: usize) -> Result<(), ApiError> {
    if s.len() <= max {
        // A string never has more characters than bytes.
        return Ok(());
    }
    let n = s.chars().count();
    if n > max {
        return Err(invalid(
            path,
            format_args!("is {n} characters long; the limit is {max}. Shorten it to at most {max} characters."),
        ));
    }
    Ok(())
}

/// `http://` or `https://` (any case), a non-empty host, and no whitespace.
pub(crate) fn is_http_url(s: &str) -> bool {
    let rest = ["https://", "http://"].iter().find_map(|scheme| {
        s.get(..scheme.len())
            .filter(|head| head.eq_ignore_ascii_case(scheme))
            .map(|_| &s[scheme.len()..])
    });
    let Some(rest) = rest else { return false };
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    !host.is_empty() && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

pub(crate) fn check_http_url(path: &Path<'_>, s: &str) -> Result<(), ApiError> {
    if is_http_url(s) {
        Ok(())
    } else {
        Err(invalid(
            path,
            "must be a public URL starting with `http://` or `https://` and without spaces, e.g. \"https://example.com/file.jpg\".",
        ))
    }
}

// ---- Typed views --------------------------------------------------------------------------

/// A JSON object found at `path`. `null` members count as absent.
pub(crate) struct Obj<'v, 'p> {
    pub(crate) map: &'v Map<String, Value>,
    pub(crate) path: Path<'p>,
}

impl<'v, 'p> Obj<'v, 'p> {
    /// `value`, found at `path`, must be an object (131009 otherwise).
    pub(crate) fn new(value: &'v Value, path: Path<'p>) -> Result<Self, ApiError> {
        match value {
            Value::Object(map) => Ok(Obj { map, path }),
            other => Err(wrong_kind(&path, "a JSON object", other)),
        }
    }

    /// The path of member `key`.
    pub(crate) fn at<'s>(&'s self, key: &'s str) -> Path<'s> {
        self.path.key(key)
    }

    pub(crate) fn get(&self, key: &str) -> Option<&'v Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    pub(crate) fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    pub(crate) fn req(&self, key: &str, hint: &str) -> Result<&'v Value, ApiError> {
        self.get(key).ok_or_else(|| missing(&self.at(key), hint))
    }

    pub(crate) fn obj<'s>(&'s self, key: &'s str, hint: &str) -> Result<Obj<'v, 's>, ApiError> {
        let value = self.req(key, hint)?;
        Obj::new(value, self.at(key))
    }

    pub(crate) fn opt_obj<'s>(&'s self, key: &'s str) -> Result<Option<Obj<'v, 's>>, ApiError> {
        self.get(key).map(|v| Obj::new(v, self.at(key))).transpose()
    }

    pub(crate) fn arr<'s>(&'s self, key: &'s str, hint: &str) -> Result<Arr<'v, 's>, ApiError> {
        let value = self.req(key, hint)?;
        Arr::new(value, self.at(key))
    }

    pub(crate) fn opt_arr<'s>(&'s self, key: &'s str) -> Result<Option<Arr<'v, 's>>, ApiError> {
        self.get(key).map(|v| Arr::new(v, self.at(key))).transpose()
    }

    /// A required string: absent, `null` or blank → 131008; not a string → 131009.
    pub(crate) fn str(&self, key: &str, hint: &str) -> Result<&'v str, ApiError> {
        match self.req(key, hint)? {
            Value::String(s) if s.trim().is_empty() => Err(missing(&self.at(key), hint)),
            Value::String(s) => Ok(s),
            other => Err(wrong_kind(&self.at(key), "a string", other)),
        }
    }

    /// A required string of at most `max` characters.
    pub(crate) fn str_max(&self, key: &str, hint: &str, max: usize) -> Result<&'v str, ApiError> {
        let s = self.str(key, hint)?;
        check_max_chars(&self.at(key), s, max)?;
        Ok(s)
    }

    /// An optional string (may be empty); not a string → 131009.
    pub(crate) fn opt_str(&self, key: &str) -> Result<Option<&'v str>, ApiError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(wrong_kind(&self.at(key), "a string", other)),
        }
    }

    /// An optional string of at most `max` characters.
    pub(crate) fn opt_str_max(&self, key: &str, max: usize) -> Result<Option<&'v str>, ApiError> {
        let s = self.opt_str(key)?;
        if let Some(s) = s {
            check_max_chars(&self.at(key), s, max)?;
        }
        Ok(s)
    }

    pub(crate) fn opt_bool(&self, key: &str) -> Result<Option<bool>, ApiError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(wrong_kind(
                &self.at(key),
                "a boolean (true or false)",
                other,
            )),
        }
    }

    /// A required string that must be one of `allowed`.
    pub(crate) fn one_of(&self, key: &str, allowed: &[&str]) -> Result<&'v str, ApiError> {
        match self.get(key) {
            Some(Value::String(s)) if allowed.contains(&s.as_str()) => Ok(s),
            Some(Value::String(s)) if !s.trim().is_empty() => Err(invalid(
                &self.at(key),
                format_args!(
                    "is \"{s}\", which is not accepted here. Use one of {}.",
                    quoted_list(allowed)
                ),
            )),
            Some(Value::String(_)) | None => Err(missing(
                &self.at(key),
                &format!("one of {}", quoted_list(allowed)),
            )),
            Some(other) => Err(wrong_kind(&self.at(key), "a string", other)),
        }
    }

    /// An optional string that, when present, must be one of `allowed`.
    pub(crate) fn opt_one_of(
        &self,
        key: &str,
        allowed: &[&str],
    ) -> Result<Option<&'v str>, ApiError> {
        if self.has(key) {
            self.one_of(key, allowed).map(Some)
        } else {
            Ok(None)
        }
    }
}

/// A JSON array found at `path`.
pub(crate) struct Arr<'v, 'p> {
    pub(crate) items: &'v [Value],
    pub(crate) path: Path<'p>,
}

impl<'v, 'p> Arr<'v, 'p> {
    /// `value`, found at `path`, must be an array (131009 otherwise).
    pub(crate) fn new(value: &'v Value, path: Path<'p>) -> Result<Self, ApiError> {
        match value {
            Value::Array(items) => Ok(Arr { items, path }),
            other => Err(wrong_kind(&path, "a JSON array", other)),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }

    /// The path of item `i`.
    pub(crate) fn at(&self, i: usize) -> Path<'_> {
        self.path.index(i)
    }

    /// Item `i`, which must be an object.
    pub(crate) fn obj(&self, i: usize) -> Result<Obj<'v, '_>, ApiError> {
        Obj::new(&self.items[i], self.at(i))
    }

    /// 131009 unless the array holds `min..=max` items; `what` names the items ("buttons").
    pub(crate) fn check_count(&self, min: usize, max: usize, what: &str) -> Result<(), ApiError> {
        let n = self.len();
        if n < min || n > max {
            let fix = if n < min { "Add" } else { "Remove" };
            return Err(invalid(
                &self.path,
                format_args!(
                    "has {n} {what}; it must have between {min} and {max}. {fix} {what} so that there are {min} to {max}."
                ),
            ));
        }
        Ok(())
    }
}

/// `"a", "b" or "c"`.
pub(crate) fn quoted_list(items: &[&str]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| format!("\"{s}\"")).collect();
    match quoted.split_last() {
        None => String::new(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
    }
}
