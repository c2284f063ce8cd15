//! Template languages (`language` of the create request, cloud-api-facts.md §3.1).
//! [`SUPPORTED`] is Meta's "Supported Languages" table for message templates
//! (<https://developers.facebook.com/docs/whatsapp/api/messages/message-templates>, 71 codes;
//! the facts file names the rule but not the list). [`REGIONAL`] holds regional locales Meta
//! added later; that list is UNCONFIRMED in the stored sources, and greenlight accepts them
//! rather than refuse a template Meta would take.

/// (code, language) as Meta lists them.
pub const SUPPORTED: &[(&str, &str)] = &[
    ("af", "Afrikaans"),
    ("sq", "Albanian"),
    ("ar", "Arabic"),
    ("az", "Azerbaijani"),
    ("bn", "Bengali"),
    ("bg", "Bulgarian"),
    ("ca", "Catalan"),
    ("zh_CN", "Chinese (CHN)"),
    ("zh_HK", "Chinese (HKG)"),
    ("zh_TW", "Chinese (TAI)"),
    ("hr", "Croatian"),
    ("cs", "Czech"),
    ("da", "Danish"),
    ("nl", "Dutch"),
    ("en", "English"),
    ("en_GB", "English (UK)"),
    ("en_US", "English (US)"),
    ("et", "Estonian"),
    ("fil", "Filipino"),
    ("fi", "Finnish"),
    ("fr", "French"),
    ("ka", "Georgian"),
    ("de", "German"),
    ("el", "Greek"),
    ("gu", "Gujarati"),
    ("ha", "Hausa"),
    ("he", "Hebrew"),
    ("hi", "Hindi"),
    ("hu", "Hungarian"),
    ("id", "Indonesian"),
    ("ga", "Irish"),
    ("it", "Italian"),
    ("ja", "Japanese"),
    ("kn", "Kannada"),
    ("kk", "Kazakh"),
    ("rw_RW", "Kinyarwanda"),
    ("ko", "Korean"),
    ("ky_KG", "Kyrgyz (Kyrgyzstan)"),
    ("lo", "Lao"),
    ("lv", "Latvian"),
    ("lt", "Lithuanian"),
    ("mk", "Macedonian"),
    ("ms", "Malay"),
    ("ml", "Malayalam"),
    ("mr", "Marathi"),
    ("nb", "Norwegian"),
    ("fa", "Persian"),
    ("pl", "Polish"),
    ("pt_BR", "Portuguese (BR)"),
    ("pt_PT", "Portuguese (POR)"),
    ("pa", "Punjabi"),
    ("ro", "Romanian"),
    ("ru", "Russian"),
    ("sr", "Serbian"),
    ("sk", "Slovak"),
    ("sl", "Slovenian"),
    ("es", "Spanish"),
    ("es_AR", "Spanish (ARG)"),
    ("es_ES", "Spanish (SPA)"),
    ("es_MX", "Spanish (MEX)"),
    ("sw", "Swahili"),
    ("sv", "Swedish"),
    ("ta", "Tamil"),
    ("te", "Telugu"),
    ("th", "Thai"),
    ("tr", "Turkish"),
    ("uk", "Ukrainian"),
    ("ur", "Urdu"),
    ("uz", "Uzbek"),
    ("vi", "Vietnamese"),
    ("zu", "Zulu"),
];

/// Regional locales accepted in addition to [`SUPPORTED`] (UNCONFIRMED list).
pub const REGIONAL: &[&str] = &[
    "ar_AE", "ar_EG", "ar_LB", "ar_MA", "ar_QA", "be_BY", "bn_IN", "de_AT", "de_CH", "en_AE",
    "en_AU", "en_CA", "en_GH", "en_IE", "en_IN", "en_JM", "en_MY", "en_NZ", "en_QA", "en_SG",
    "en_UG", "en_ZA", "es_CL", "es_CO", "es_CR", "es_DO", "es_EC", "es_HN", "es_PA", "es_PE",
    "es_UY", "fr_BE", "fr_CA", "fr_CH", "fr_CI", "fr_MA", "nl_BE", "prs_AF", "ps_AF", "si_LK",
];

/// Whether `code` is a template language Meta accepts (exact spelling: `en_US`, not `en-us`).
pub fn is_supported(code: &str) -> bool {
    SUPPORTED.iter().any(|(c, _)| *c == code) || REGIONAL.contains(&code)
}

/// The supported code `code` was probably meant to be (`en-us` → `en_US`), for the fix text.
pub fn suggest(code: &str) -> Option<&'static str> {
    let norm = code.replace('-', "_");
    SUPPORTED
        .iter()
        .map(|(c, _)| *c)
        .chain(REGIONAL.iter().copied())
        .find(|c| c.eq_ignore_ascii_case(&norm))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_has_the_classic_list() {
        assert_eq!(SUPPORTED.len(), 71);
        for c in [
            "af", "zh_TW", "en_US", "fil", "rw_RW", "ky_KG", "pt_PT", "es_MX", "zu",
        ] {
            assert!(is_supported(c), "{c}");
        }
        assert!(!is_supported("en_us"));
        assert!(!is_supported("xx"));
        assert_eq!(suggest("en-us"), Some("en_US"));
    }
}
