//! Text helpers shared by the rules: character counts, word tokens, phrase search, links and
//! emoji. Everything is byte-for-byte deterministic and locale-free.

/// The token a `{{…}}` placeholder becomes, so that phrases never match across a variable and
/// the digits of `{{1}}` never count as words.
pub(crate) const VAR_TOKEN: &str = "{{}}";

/// Length as Meta counts it: Unicode scalar values, not bytes.
pub(crate) fn char_len(s: &str) -> usize {
    s.chars().count()
}

/// Lowercase word tokens of `text`: runs of alphanumerics (an apostrophe inside a word is kept,
/// so "don't" stays one token), `%` as a token of its own, and each `{{…}}` as [`VAR_TOKEN`].
/// Hyphens split words, so "one-time" and "one time" tokenize alike.
pub(crate) fn tokens(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '{' && chars.get(i + 1) == Some(&'{') {
            flush(&mut word, &mut out);
            let close = (i + 2..chars.len().saturating_sub(1))
                .find(|&j| chars[j] == '}' && chars[j + 1] == '}');
            if let Some(j) = close {
                out.push(VAR_TOKEN.to_string());
                i = j + 2;
                continue;
            }
        }
        if c.is_alphanumeric() {
            word.extend(c.to_lowercase());
        } else if (c == '\'' || c == '\u{2019}')
            && !word.is_empty()
            && chars.get(i + 1).is_some_and(|n| n.is_alphanumeric())
        {
            word.push('\'');
        } else {
            flush(&mut word, &mut out);
            if c == '%' {
                out.push("%".to_string());
            }
        }
        i += 1;
    }
    flush(&mut word, &mut out);
    out
}

fn flush(word: &mut String, out: &mut Vec<String>) {
    if !word.is_empty() {
        out.push(std::mem::take(word));
    }
}

/// Index of the first occurrence of `phrase` (tokenized like the text) in `toks`.
pub(crate) fn find_phrase(toks: &[String], phrase: &str) -> Option<usize> {
    let p = tokens(phrase);
    if p.is_empty() || p.len() > toks.len() {
        return None;
    }
    (0..=toks.len() - p.len()).find(|&i| toks[i..i + p.len()] == p[..])
}

/// Every start index of `phrase` in `toks`.
pub(crate) fn find_all(toks: &[String], phrase: &str) -> Vec<usize> {
    let p = tokens(phrase);
    if p.is_empty() || p.len() > toks.len() {
        return Vec::new();
    }
    (0..=toks.len() - p.len())
        .filter(|&i| toks[i..i + p.len()] == p[..])
        .collect()
}

/// The first of `phrases` that occurs in `toks`.
pub(crate) fn first_phrase(toks: &[String], phrases: &[&'static str]) -> Option<&'static str> {
    phrases
        .iter()
        .copied()
        .find(|p| find_phrase(toks, p).is_some())
}

/// Number of words of fixed text: tokens that are neither placeholders nor `%`.
pub(crate) fn word_count(text: &str) -> usize {
    tokens(text)
        .iter()
        .filter(|t| t.as_str() != VAR_TOKEN && t.as_str() != "%")
        .count()
}

/// Whether `domain` appears in `text` as a host name (not as part of a longer name:
/// `t.co` does not match `at.com`).
pub(crate) fn mentions_domain(text: &str, domain: &str) -> bool {
    let hay = text.to_lowercase();
    let host_char = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    hay.match_indices(domain).any(|(at, m)| {
        let before = hay[..at].chars().next_back();
        let after = hay[at + m.len()..].chars().next();
        !before.is_some_and(|c| host_char(c) || c == '.') && !after.is_some_and(host_char)
    })
}

const TLDS: &[&str] = &[
    "com", "net", "org", "io", "co", "ly", "me", "info", "biz", "xyz", "app", "shop", "store",
    "site", "online", "link", "gd", "gl", "in", "uk", "us", "de", "br", "ru", "top",
];

/// Whether `text` contains something a reader would take for a link: a scheme, `www.`, or a
/// `name.tld` word with a common top-level domain.
pub(crate) fn has_link(text: &str) -> bool {
    let lower = text.to_lowercase();
    if lower.contains("http://") || lower.contains("https://") || lower.contains("www.") {
        return true;
    }
    lower.split_whitespace().any(|w| {
        let w = w.trim_matches(|c: char| !c.is_ascii_alphanumeric());
        let host = w.split('/').next().unwrap_or("");
        match host.rsplit_once('.') {
            Some((name, tld)) => {
                !name.is_empty()
                    && name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
                    && TLDS.contains(&tld)
            }
            None => false,
        }
    })
}

/// Whether `c` is an emoji or pictograph (the ranges WhatsApp renders as emoji).
pub(crate) fn is_emoji(c: char) -> bool {
    matches!(c as u32, 0x1F000..=0x1FAFF | 0x2600..=0x27BF | 0x2B00..=0x2BFF)
}

pub(crate) fn has_emoji(text: &str) -> bool {
    text.chars().any(is_emoji)
}

/// Collapses runs of whitespace to one space and trims.
pub(crate) fn squash_ws(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_keep_apostrophes_and_percent() {
        assert_eq!(
            tokens("Don't miss 20% OFF!"),
            ["don't", "miss", "20", "%", "off"]
        );
        assert_eq!(tokens("Hi {{1}}, one-time"), ["hi", "{{}}", "one", "time"]);
    }

    #[test]
    fn phrases_are_word_aligned() {
        let t = tokens("Your order has shipped");
        assert!(find_phrase(&t, "order has").is_some());
        assert!(find_phrase(&t, "ship").is_none());
        assert!(find_phrase(&tokens("Use the one time password"), "one-time password").is_some());
    }

    #[test]
    fn domains_need_boundaries() {
        assert!(mentions_domain("see https://t.co/abc", "t.co"));
        assert!(mentions_domain("Visit BIT.LY/x", "bit.ly"));
        assert!(!mentions_domain("go to at.com", "t.co"));
        assert!(!mentions_domain("go to t.com", "t.co"));
    }

    #[test]
    fn links_are_detected() {
        assert!(has_link("https://x.com/a"));
        assert!(has_link("visit example.com today"));
        assert!(!has_link("Order 860198-230332 is ready."));
        assert!(!has_link("Thanks. See you"));
    }
}
