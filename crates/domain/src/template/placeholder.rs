//! Variables in header and body text: positional `{{1}}` or named `{{first_name}}`
//! (cloud-api-facts.md §3.2, §3.4). [`scan`] splits a text into fixed pieces and variables and
//! notes every malformed placeholder, so that the rules, the review and the renderer all read
//! variables the same way.

use super::text;

/// One variable as written in the text.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum VarKey {
    /// `{{n}}`, n ≥ 1.
    Positional(u32),
    /// `{{name}}`: lowercase letters, digits and underscores, starting with a letter or `_`.
    Named(String),
}

impl std::fmt::Display for VarKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VarKey::Positional(n) => write!(f, "{{{{{n}}}}}"),
            VarKey::Named(name) => write!(f, "{{{{{name}}}}}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Piece<'a> {
    Text(&'a str),
    Var(VarKey),
}

#[derive(Debug, Clone)]
pub(crate) struct Scanned<'a> {
    pub pieces: Vec<Piece<'a>>,
    /// One sentence per malformed placeholder or stray brace.
    pub malformed: Vec<String>,
}

/// Whether `s` is a valid named-parameter name.
pub(crate) fn is_param_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// The largest positional variable number accepted (`{{1000}}`).
pub const MAX_POSITIONAL: u32 = 1000;

fn parse_key(inner: &str) -> Option<VarKey> {
    if !inner.is_empty() && inner.bytes().all(|b| b.is_ascii_digit()) {
        if inner.starts_with('0') {
            return None;
        }
        // No template text can hold more than a few hundred variables: a larger number is not
        // a variable (and must never size an allocation).
        return inner
            .parse::<u32>()
            .ok()
            .filter(|n| *n <= MAX_POSITIONAL)
            .map(VarKey::Positional);
    }
    is_param_name(inner).then(|| VarKey::Named(inner.to_string()))
}

/// Where `s` first has two `b` bytes in a row, `b` an ASCII byte (so the index is a character
/// boundary): `str::find` with a two-character pattern, without the searcher it builds on every
/// call (a send's rendering scans its template's texts).
fn find_double(s: &str, b: u8) -> Option<usize> {
    debug_assert!(b.is_ascii());
    let bytes = s.as_bytes();
    let mut from = 0;
    while let Some(i) = bytes[from..].iter().position(|&c| c == b) {
        let at = from + i;
        if bytes.get(at + 1) == Some(&b) {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

pub(crate) fn scan(text: &str) -> Scanned<'_> {
    let mut pieces = Vec::new();
    let mut malformed = Vec::new();
    let mut rest = text;
    loop {
        let Some(open) = find_double(rest, b'{') else {
            push_text(rest, &mut pieces, &mut malformed);
            break;
        };
        push_text(&rest[..open], &mut pieces, &mut malformed);
        let after = &rest[open + 2..];
        let Some(close) = find_double(after, b'}') else {
            malformed.push(format!(
                "`{{{{` before \"{}\" is never closed with `}}}}`",
                preview(after)
            ));
            break;
        };
        let inner = &after[..close];
        match parse_key(inner) {
            Some(key) => pieces.push(Piece::Var(key)),
            None => malformed.push(format!(
                "`{{{{{inner}}}}}` is not a valid variable (only {{{{1}}}}, {{{{2}}}}, … or {{{{lower_case_name}}}}; no spaces or characters such as #, $, %)"
            )),
        }
        rest = &after[close + 2..];
    }
    Scanned { pieces, malformed }
}

fn push_text<'a>(t: &'a str, pieces: &mut Vec<Piece<'a>>, malformed: &mut Vec<String>) {
    // one pass (two `contains` set up two searches for a few bytes)
    if t.bytes().any(|b| b == b'{' || b == b'}') {
        malformed.push(format!(
            "unbalanced brace in \"{}\": variables are written with two braces, like {{{{1}}}}",
            preview(t)
        ));
    }
    if !t.is_empty() {
        pieces.push(Piece::Text(t));
    }
}

fn preview(s: &str) -> String {
    let p: String = s.chars().take(20).collect();
    if p.len() < s.len() {
        format!("{p}…")
    } else {
        p
    }
}

fn is_blank(p: &Piece) -> bool {
    matches!(p, Piece::Text(t) if t.trim().is_empty())
}

fn var_of(p: Option<&Piece>) -> Option<VarKey> {
    match p {
        Some(Piece::Var(k)) => Some(k.clone()),
        _ => None,
    }
}

impl Scanned<'_> {
    pub fn vars(&self) -> impl Iterator<Item = &VarKey> {
        self.pieces.iter().filter_map(|p| match p {
            Piece::Var(k) => Some(k),
            Piece::Text(_) => None,
        })
    }

    /// Occurrences of variables (a variable used twice counts twice).
    pub fn var_count(&self) -> usize {
        self.vars().count()
    }

    /// Distinct variables in order of first appearance.
    pub fn distinct(&self) -> Vec<VarKey> {
        let mut out: Vec<VarKey> = Vec::new();
        for k in self.vars() {
            if !out.contains(k) {
                out.push(k.clone());
            }
        }
        out
    }

    pub fn has_positional(&self) -> bool {
        self.vars().any(|k| matches!(k, VarKey::Positional(_)))
    }

    pub fn has_named(&self) -> bool {
        self.vars().any(|k| matches!(k, VarKey::Named(_)))
    }

    /// For positional variables: the numbers missing from 1..=max (empty when sequential).
    pub fn positional_gaps(&self) -> Vec<u32> {
        let nums: Vec<u32> = self
            .vars()
            .filter_map(|k| match k {
                VarKey::Positional(n) => Some(*n),
                VarKey::Named(_) => None,
            })
            .collect();
        let max = nums.iter().copied().max().unwrap_or(0);
        (1..=max).filter(|n| !nums.contains(n)).take(20).collect()
    }

    /// Words of fixed text (placeholders excluded).
    pub fn static_words(&self) -> usize {
        self.pieces
            .iter()
            .map(|p| match p {
                Piece::Text(t) => text::word_count(t),
                Piece::Var(_) => 0,
            })
            .sum()
    }

    /// The first pair of variables with nothing but whitespace between them.
    pub fn adjacent_pair(&self) -> Option<(VarKey, VarKey)> {
        let mut last_var: Option<&VarKey> = None;
        for p in &self.pieces {
            match p {
                Piece::Var(k) => {
                    if let Some(prev) = last_var {
                        return Some((prev.clone(), k.clone()));
                    }
                    last_var = Some(k);
                }
                p if is_blank(p) => {}
                Piece::Text(_) => last_var = None,
            }
        }
        None
    }

    /// The variable the text starts with, if any (leading whitespace ignored).
    pub fn leading_var(&self) -> Option<VarKey> {
        var_of(self.pieces.iter().find(|p| !is_blank(p)))
    }

    /// The variable the text ends with, if any (trailing whitespace ignored).
    pub fn trailing_var(&self) -> Option<VarKey> {
        var_of(self.pieces.iter().rev().find(|p| !is_blank(p)))
    }

    /// The text with every variable replaced by `value(key)`.
    pub fn hydrate<S: AsRef<str>>(&self, mut value: impl FnMut(&VarKey) -> S) -> String {
        let mut out = String::new();
        for p in &self.pieces {
            match p {
                Piece::Text(t) => out.push_str(t),
                Piece::Var(k) => out.push_str(value(k).as_ref()),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scans_positional_and_named() {
        let s = scan("Hi {{1}}, order {{order_id}} and {{1}} again");
        assert!(s.malformed.is_empty());
        assert_eq!(s.var_count(), 3);
        assert_eq!(
            s.distinct(),
            vec![VarKey::Positional(1), VarKey::Named("order_id".into())]
        );
        assert_eq!(s.static_words(), 4);
    }

    #[test]
    fn malformed_placeholders_are_reported() {
        for bad in [
            "Hi {{ 1 }}",
            "Hi {{#1}}",
            "Hi {{1}",
            "Hi {1}}",
            "Hi {{01}}",
            "Hi {{First}}",
            "{{{1}}}",
            "Hi {{}} x",
        ] {
            assert!(!scan(bad).malformed.is_empty(), "{bad}");
        }
    }

    #[test]
    fn gaps_adjacency_and_edges() {
        let s = scan("a {{1}} b {{2}} c {{5}} d {{4}} e");
        assert_eq!(s.positional_gaps(), vec![3]);
        assert_eq!(
            scan("x {{1}} {{2}} y").adjacent_pair(),
            Some((VarKey::Positional(1), VarKey::Positional(2)))
        );
        assert_eq!(scan("x {{1}}, {{2}} y").adjacent_pair(), None);
        assert_eq!(
            scan("  {{1}} is here").leading_var(),
            Some(VarKey::Positional(1))
        );
        assert_eq!(
            scan("code {{1}} ").trailing_var(),
            Some(VarKey::Positional(1))
        );
        assert_eq!(scan("code {{1}}.").trailing_var(), None);
    }

    #[test]
    fn hydrates() {
        let s = scan("Hi {{1}}, {{name}}!");
        let out = s.hydrate(|k| match k {
            VarKey::Positional(_) => "A".into(),
            VarKey::Named(n) => n.to_uppercase(),
        });
        assert_eq!(out, "Hi A, NAME!");
    }
}

#[cfg(test)]
mod find_tests {
    use super::find_double;
    use proptest::prelude::*;

    proptest! {
        /// The byte search finds what `str::find` finds, in any text (braces, multi-byte
        /// characters, runs of braces).
        #[test]
        fn find_double_is_str_find(s in "[{}a é€]{0,24}") {
            prop_assert_eq!(find_double(&s, b'{'), s.find("{{"));
            prop_assert_eq!(find_double(&s, b'}'), s.find("}}"));
        }
    }

    #[test]
    fn find_double_edges() {
        assert_eq!(find_double("", b'{'), None);
        assert_eq!(find_double("{", b'{'), None);
        assert_eq!(find_double("{ {", b'{'), None);
        assert_eq!(find_double("a{{{", b'{'), Some(1));
        assert_eq!(find_double("é{{", b'{'), Some(2));
    }
}

#[cfg(test)]
mod bound_tests {
    use super::*;

    #[test]
    fn huge_variable_numbers_are_not_variables() {
        let s = scan("Hi {{4294967295}} and {{1}}");
        assert!(!s.malformed.is_empty() || s.vars().count() == 1);
        assert!(s.positional_gaps().len() <= 20);
        let s = scan("Hi {{1000}} there");
        assert_eq!(s.positional_gaps().len(), 20, "gaps are listed, boundedly");
    }
}
