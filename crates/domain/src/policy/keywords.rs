//! STOP-style and START-style keywords from customers (cloud-api-facts.md §9; issue 5).
//!
//! Meta requires businesses to honour opt-out requests made on or off WhatsApp but defines no
//! keyword list (the wording is UNCONFIRMED), so greenlight uses the SMS-industry convention
//! (STOP, UNSUBSCRIBE, STOP ALL, CANCEL, END, QUIT, OPT OUT…) and equivalents in Portuguese,
//! Spanish, Dutch, German, French, Indonesian and Hindi in Latin script. Both lists are a tenant
//! setting ([`KeywordConfig`], `ComplianceSettings.keywords`); an empty list turns that side off.
//!
//! Matching ([`normalize`]): the **whole message** must be the keyword. The text is trimmed;
//! punctuation, symbols and emoji around it are dropped; runs of punctuation or spaces inside
//! become one space (`opt-out` = `OPT OUT`); letters are compared without case and without
//! accents (`arrêt` = `ARRET`, `kündigen` = `KUNDIGEN`, `ß` = `SS`). A keyword inside a sentence
//! is not a keyword: "please don't stop" changes nothing. A message matching both lists is a
//! STOP (the conservative reading).
//!
//! Ambiguous words (CANCEL, END, YES, ALTO…) are in the defaults because the SMS convention has
//! them; a tenant whose customers write "cancel" to cancel an order should drop them. Effects
//! (revocation and restoration of consent with the message as proof) are in `opt_in`.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeywordAction {
    Stop,
    Start,
}

/// The keyword lists (a tenant setting). Entries may be written with accents and any case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct KeywordConfig {
    pub stop: Vec<String>,
    pub start: Vec<String>,
}

pub const DEFAULT_STOP: &[&str] = &[
    // English
    "STOP",
    "STOP ALL",
    "STOPALL",
    "UNSUBSCRIBE",
    "UNSUB",
    "CANCEL",
    "END",
    "QUIT",
    "OPT OUT",
    "OPTOUT",
    "REVOKE",
    // Portuguese
    "PARAR",
    "PARE",
    "SAIR",
    "CANCELAR",
    "DESCADASTRAR",
    "DESCADASTRE",
    "DESINSCREVER",
    // Spanish
    "BAJA",
    "DAR DE BAJA",
    "ALTO",
    "DETENER",
    "DESUSCRIBIR",
    "DESUSCRIBIRME",
    "CANCELAR SUSCRIPCIÓN",
    // Dutch
    "STOPPEN",
    "AFMELDEN",
    "UITSCHRIJVEN",
    // German
    "STOPP",
    "ABMELDEN",
    "KÜNDIGEN",
    "KUENDIGEN",
    "AUFHÖREN",
    "AUFHOEREN",
    "ABBESTELLEN",
    // French
    "ARRÊT",
    "ARRÊTER",
    "DÉSABONNER",
    "SE DÉSABONNER",
    "DÉSABONNEMENT",
    "DÉSINSCRIRE",
    "DÉSINSCRIPTION",
    // Indonesian
    "BERHENTI",
    "HENTIKAN",
    "BERHENTI LANGGANAN",
    // Hindi (Latin script)
    "BAND",
    "BAND KARO",
    "BAND KAREN",
    "BAND KIJIYE",
    "RUKO",
    "MAT BHEJO",
];

pub const DEFAULT_START: &[&str] = &[
    // English
    "START",
    "UNSTOP",
    "SUBSCRIBE",
    "RESUME",
    "YES",
    // Portuguese
    "INICIAR",
    "COMEÇAR",
    "VOLTAR",
    "ASSINAR",
    // Spanish
    "ALTA",
    "DAR DE ALTA",
    "REANUDAR",
    "SUSCRIBIR",
    // Dutch
    "AANMELDEN",
    // German
    "ANMELDEN",
    "STARTEN",
    // French
    "COMMENCER",
    "REPRENDRE",
    "S'ABONNER",
    // Indonesian
    "MULAI",
    "LANJUTKAN",
    // Hindi (Latin script)
    "SHURU",
    "SHURU KARO",
    "CHALU KARO",
];

impl Default for KeywordConfig {
    fn default() -> Self {
        KeywordConfig {
            stop: DEFAULT_STOP.iter().map(|s| s.to_string()).collect(),
            start: DEFAULT_START.iter().map(|s| s.to_string()).collect(),
        }
    }
}

/// Folds one lowercase letter to ASCII (Latin-1 Supplement and Latin Extended-A letters that
/// the supported languages use); `None` = keep as is.
fn fold(c: char) -> Option<&'static str> {
    Some(match c {
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' | 'ă' | 'ą' => "a",
        'æ' => "ae",
        'ç' | 'ć' | 'č' => "c",
        'ď' | 'đ' => "d",
        'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ė' | 'ę' | 'ě' => "e",
        'ğ' => "g",
        'ì' | 'í' | 'î' | 'ï' | 'ī' | 'į' | 'ı' => "i",
        'ł' => "l",
        'ñ' | 'ń' | 'ň' => "n",
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' | 'ő' => "o",
        'œ' => "oe",
        'ř' => "r",
        'ś' | 'š' | 'ş' => "s",
        'ß' => "ss",
        'ť' | 'ţ' => "t",
        'ù' | 'ú' | 'û' | 'ü' | 'ū' | 'ů' | 'ű' | 'ų' => "u",
        'ý' | 'ÿ' => "y",
        'ź' | 'ż' | 'ž' => "z",
        _ => return None,
    })
}

/// Combining diacritical marks (text sent in decomposed form).
fn is_combining(c: char) -> bool {
    ('\u{0300}'..='\u{036F}').contains(&c)
}

/// Letters, digits, and the signs of Devanagari (its vowel signs are marks, not letters, but
/// belong to the word), so keywords in Hindi script also work when a tenant adds them.
fn is_word_char(c: char) -> bool {
    c.is_alphanumeric()
        || (('\u{0900}'..='\u{097F}').contains(&c) && c != '\u{0964}' && c != '\u{0965}')
}

/// The comparable form of a message or keyword: words of letters and digits, accents removed,
/// uppercase, joined by single spaces; everything else is a separator.
pub fn normalize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut pending_space = false;
    for c in text.chars() {
        if is_combining(c) {
            continue;
        }
        if is_word_char(c) {
            if pending_space && !out.is_empty() {
                out.push(' ');
            }
            pending_space = false;
            for l in c.to_lowercase() {
                match fold(l) {
                    Some(s) => out.push_str(&s.to_ascii_uppercase()),
                    None => out.extend(l.to_uppercase()),
                }
            }
        } else {
            pending_space = true;
        }
    }
    out
}

fn matches(list: &[String], norm: &str) -> bool {
    list.iter().any(|k| normalize(k) == norm)
}

/// STOP, START or nothing for an inbound text.
pub fn classify(text: &str, config: &KeywordConfig) -> Option<KeywordAction> {
    let norm = normalize(text);
    if norm.is_empty() {
        return None;
    }
    if matches(&config.stop, &norm) {
        Some(KeywordAction::Stop)
    } else if matches(&config.start, &norm) {
        Some(KeywordAction::Start)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use KeywordAction::*;

    fn c(text: &str) -> Option<KeywordAction> {
        classify(text, &KeywordConfig::default())
    }

    #[test]
    fn english_stop_words() {
        for t in [
            "STOP",
            "stop",
            " Stop ",
            "STOP!",
            "stop.",
            "Stop all",
            "UNSUBSCRIBE",
            "cancel",
            "End",
            "quit",
            "opt out",
            "Opt-Out",
            "OPTOUT",
            "🛑 STOP 🛑",
            "\"stop\"",
            "stop\n",
        ] {
            assert_eq!(c(t), Some(Stop), "{t:?}");
        }
    }

    #[test]
    fn other_languages_stop_words() {
        for t in [
            "Parar",
            "sair",
            "CANCELAR",
            "descadastrar",
            "Baja",
            "dar de baja",
            "alto",
            "Detener",
            "stoppen",
            "Afmelden",
            "uitschrijven",
            "Abmelden",
            "STOPP",
            "kündigen",
            "KUNDIGEN",
            "aufhören",
            "Arrêt",
            "ARRET",
            "désabonner",
            "DESINSCRIRE",
            "berhenti",
            "Hentikan",
            "band karo",
            "Ruko",
            "BAND",
        ] {
            assert_eq!(c(t), Some(Stop), "{t:?}");
        }
    }

    #[test]
    fn decomposed_accents_match() {
        // "arrêt" with U+0302 COMBINING CIRCUMFLEX
        assert_eq!(c("arre\u{0302}t"), Some(Stop));
    }

    #[test]
    fn start_words() {
        for t in [
            "START",
            "start!",
            "unstop",
            "Subscribe",
            "yes",
            "iniciar",
            "Alta",
            "aanmelden",
            "Anmelden",
            "commencer",
            "mulai",
            "shuru",
            "começar",
            "COMECAR",
            "s'abonner",
        ] {
            assert_eq!(c(t), Some(Start), "{t:?}");
        }
    }

    #[test]
    fn keywords_inside_sentences_are_not_keywords() {
        for t in [
            "please don't stop",
            "stop sending me these",
            "I want to cancel my order",
            "stopwatch",
            "unstoppable",
            "yes please",
            "",
            "   ",
            "!!!",
            "🛑",
        ] {
            assert_eq!(c(t), None, "{t:?}");
        }
    }

    #[test]
    fn configurable_lists() {
        let cfg = KeywordConfig {
            stop: vec!["Basta".into()],
            start: vec![],
        };
        assert_eq!(classify("BASTA!", &cfg), Some(Stop));
        assert_eq!(classify("stop", &cfg), None);
        assert_eq!(classify("start", &cfg), None);
        let cfg: KeywordConfig = serde_json::from_str(r#"{"start":["GO"]}"#).unwrap();
        assert_eq!(classify("go", &cfg), Some(Start));
        assert_eq!(classify("stop", &cfg), Some(Stop), "stop keeps its default");
    }

    #[test]
    fn stop_wins_when_in_both_lists() {
        let cfg = KeywordConfig {
            stop: vec!["X".into()],
            start: vec!["x".into()],
        };
        assert_eq!(classify("x", &cfg), Some(Stop));
    }

    #[test]
    fn normalize_examples() {
        assert_eq!(normalize("  Opt--out!! "), "OPT OUT");
        assert_eq!(normalize("Straße"), "STRASSE");
        assert_eq!(normalize("¡Baja!"), "BAJA");
        assert_eq!(normalize("बंद करो।"), "बंद करो");
    }
}
