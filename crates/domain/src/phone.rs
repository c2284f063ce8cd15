//! Phone numbers and WhatsApp ids (cloud-api-facts.md §1.1).
//!
//! A send addresses its recipient with `to`, a phone number written the way people write them:
//! `+`, `-`, `(`, `)` and spaces are accepted. Without a leading `+`, Meta prepends the country
//! calling code of the *sending business number* (`(631) 555-1234` sent from an Indian number
//! becomes `916315551234`). [`normalize_phone`] models that, returning the E.164 digits that
//! serve as the WhatsApp id.
//!
//! One refinement over the literal rule: digits that already begin with the sender's calling
//! code followed by a national number of a plausible length are taken as already international.
//! Meta's own examples send `"to": "16505551234"` without `+` from US numbers and get back
//! `wa_id` `16505551234` (not `116505551234`), and libphonenumber, which parses the same way,
//! strips a leading country code in that case too.
//!
//! Customers may also be addressed by business-scoped user id (BSUID, 2026), e.g.
//! `US.13491208655302741918`: see [`is_bsuid`].

use crate::ApiError;

/// Fewest digits accepted in a normalised number (country code included).
pub const MIN_DIGITS: usize = 7;
/// Most digits E.164 allows (country code included).
pub const MAX_DIGITS: usize = 15;

/// Normalises `to` into E.164 digits (no `+`). `sender_cc` is the calling code (digits) of the
/// sending business number, prepended when `input` has no leading `+`; an empty `sender_cc`
/// means the digits are taken as they are. Refusals are 131009 and name `to`.
pub fn normalize_phone(input: &str, sender_cc: &str) -> Result<String, ApiError> {
    let trimmed = input.trim_matches(' ');
    if is_bsuid(trimmed) {
        return Err(ApiError::invalid_value(format!(
            "`to` is \"{trimmed}\", which is a business-scoped user id, not a phone number. \
             Send it in `recipient` instead of `to`."
        )));
    }
    let (has_plus, rest) = match trimmed.strip_prefix('+') {
        Some(rest) => (true, rest),
        None => (false, trimmed),
    };
    let mut digits = String::with_capacity(sender_cc.len() + rest.len());
    for c in rest.chars() {
        match c {
            '0'..='9' => digits.push(c),
            ' ' | '-' | '(' | ')' => {}
            '+' => {
                return Err(ApiError::invalid_value(
                    "`to` has a `+` after the start. Write the number with a single leading `+` \
                     followed by the country code, e.g. \"+16505551234\".",
                ))
            }
            other => {
                return Err(ApiError::invalid_value(format!(
                    "`to` contains {other:?}, which is not allowed in a phone number. Use digits, \
                     optionally a leading `+` and the separators `-`, `(`, `)` and spaces, e.g. \
                     \"+1 (650) 555-1234\"."
                )))
            }
        }
    }
    if digits.is_empty() {
        return Err(ApiError::invalid_value(
            "`to` contains no digits. Send the recipient's phone number with its country code, \
             e.g. \"+16505551234\".",
        ));
    }

    let prepended =
        !has_plus && !sender_cc.is_empty() && !already_international(&digits, sender_cc);
    if prepended {
        digits.insert_str(0, sender_cc);
    }
    let note = if prepended {
        format!(
            " The number has no leading `+`, so the country code {sender_cc} of the sending business \
             number was prepended; write `+` and the country code if the recipient is elsewhere."
        )
    } else {
        String::new()
    };

    if digits.starts_with('0') {
        return Err(ApiError::invalid_value(format!(
            "`to` normalises to \"{digits}\", which starts with 0; country calling codes never do. \
             Drop any international or trunk prefix (00, 0) and write `+` followed by the country \
             code, e.g. \"+442071838750\".{note}"
        )));
    }
    let n = digits.len();
    if !(MIN_DIGITS..=MAX_DIGITS).contains(&n) {
        return Err(ApiError::invalid_value(format!(
            "`to` normalises to \"{digits}\", which has {n} digits; a phone number in international \
             format has {MIN_DIGITS} to {MAX_DIGITS} digits including the country code. Send the \
             full number, e.g. \"+16505551234\".{note}"
        )));
    }
    Ok(digits)
}

/// Whether `digits` (no `+`) already carries the sender's calling code: it starts with `cc`
/// and what follows has the length of a national number of that country.
fn already_international(digits: &str, cc: &str) -> bool {
    let Some(national) = digits.strip_prefix(cc) else {
        return false;
    };
    let (min, max) = national_lengths(cc).unwrap_or((MIN_DIGITS, MAX_DIGITS - cc.len()));
    (min..=max).contains(&national.len())
}

/// Lengths of national significant numbers (E.164 digits after the calling code) for the
/// major countries, fixed lines and mobiles together (after libphonenumber's metadata).
const NATIONAL_LENGTHS: &[(&str, usize, usize)] = &[
    ("1", 10, 10),   // NANP: US, Canada, Caribbean
    ("7", 10, 10),   // Russia, Kazakhstan
    ("20", 8, 10),   // Egypt
    ("27", 9, 9),    // South Africa
    ("30", 10, 10),  // Greece
    ("31", 9, 9),    // Netherlands
    ("32", 8, 9),    // Belgium
    ("33", 9, 9),    // France
    ("34", 9, 9),    // Spain
    ("36", 8, 9),    // Hungary
    ("39", 6, 11),   // Italy
    ("40", 9, 9),    // Romania
    ("41", 9, 9),    // Switzerland
    ("43", 4, 13),   // Austria
    ("44", 9, 10),   // United Kingdom
    ("45", 8, 8),    // Denmark
    ("46", 7, 9),    // Sweden
    ("47", 8, 8),    // Norway
    ("48", 9, 9),    // Poland
    ("49", 6, 13),   // Germany
    ("51", 8, 9),    // Peru
    ("52", 10, 10),  // Mexico
    ("54", 10, 11),  // Argentina
    ("55", 10, 11),  // Brazil
    ("56", 9, 9),    // Chile
    ("57", 10, 10),  // Colombia
    ("58", 10, 10),  // Venezuela
    ("60", 8, 10),   // Malaysia
    ("61", 9, 9),    // Australia
    ("62", 8, 12),   // Indonesia
    ("63", 10, 10),  // Philippines
    ("64", 8, 10),   // New Zealand
    ("65", 8, 8),    // Singapore
    ("66", 8, 9),    // Thailand
    ("81", 9, 10),   // Japan
    ("82", 8, 10),   // South Korea
    ("84", 9, 10),   // Vietnam
    ("86", 9, 11),   // China
    ("90", 10, 10),  // Turkey
    ("91", 10, 10),  // India
    ("92", 9, 10),   // Pakistan
    ("94", 9, 9),    // Sri Lanka
    ("98", 10, 10),  // Iran
    ("212", 9, 9),   // Morocco
    ("233", 9, 9),   // Ghana
    ("234", 8, 10),  // Nigeria
    ("254", 9, 9),   // Kenya
    ("351", 9, 9),   // Portugal
    ("353", 7, 9),   // Ireland
    ("380", 9, 9),   // Ukraine
    ("420", 9, 9),   // Czechia
    ("852", 8, 8),   // Hong Kong
    ("880", 10, 10), // Bangladesh
    ("886", 8, 9),   // Taiwan
    ("966", 9, 9),   // Saudi Arabia
    ("971", 8, 9),   // United Arab Emirates
    ("972", 8, 9),   // Israel
];

fn national_lengths(cc: &str) -> Option<(usize, usize)> {
    NATIONAL_LENGTHS
        .iter()
        .find(|(c, _, _)| *c == cc)
        .map(|&(_, min, max)| (min, max))
}

/// Second digits that make a two-digit calling code, by first digit (ITU-T E.164 assignments).
/// Zones 1 and 7 are one-digit codes; any other prefix not listed is a three-digit code.
const TWO_DIGIT_CODES: [&[u8]; 10] = [
    b"",          // 0: not a calling code
    b"",          // 1: NANP, one digit
    b"07",        // 20 Egypt, 27 South Africa
    b"0123469",   // 30-34, 36, 39
    b"013456789", // 40, 41, 43-49
    b"12345678",  // 51-58
    b"0123456",   // 60-66
    b"",          // 7: one digit
    b"1246",      // 81, 82, 84, 86
    b"0123458",   // 90-95, 98
];

/// The country calling code at the start of an E.164 digit string (`"16505551234"` → `"1"`,
/// `"447911123456"` → `"44"`, `"971501234567"` → `"971"`), following the ITU prefix structure:
/// one digit for zones 1 and 7, two digits for the codes listed in `TWO_DIGIT_CODES`, three otherwise.
/// Returns `""` when `digits` does not start with a digit 1–9, and all of `digits` when it is
/// shorter than its code.
pub fn calling_code(digits: &str) -> &str {
    let bytes = digits.as_bytes();
    let first = match bytes.first() {
        Some(&b @ b'1'..=b'9') => b,
        _ => return "",
    };
    let len = match first {
        b'1' | b'7' => 1,
        _ => match bytes.get(1) {
            Some(second) if TWO_DIGIT_CODES[usize::from(first - b'0')].contains(second) => 2,
            _ => 3,
        },
    };
    let len = len.min(bytes.len());
    if bytes[..len].iter().all(u8::is_ascii_digit) {
        &digits[..len]
    } else {
        ""
    }
}

/// Whether `s` has the shape of a business-scoped user id: two uppercase letters (the
/// country), a dot, then digits, e.g. `US.13491208655302741918`.
pub fn is_bsuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 4
        && b.len() <= 64
        && b[0].is_ascii_uppercase()
        && b[1].is_ascii_uppercase()
        && b[2] == b'.'
        && b[3..].iter().all(u8::is_ascii_digit)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(input: &str, cc: &str) -> String {
        normalize_phone(input, cc).unwrap_or_else(|e| panic!("{input:?} from +{cc} refused: {e}"))
    }

    fn refused(input: &str, cc: &str) -> ApiError {
        let e = normalize_phone(input, cc).expect_err(input);
        assert_eq!(e.code, 131009, "{input:?}: {e}");
        assert!(
            e.details.contains("`to`"),
            "details must name `to`: {}",
            e.details
        );
        e
    }

    #[test]
    fn plus_numbers_keep_their_digits_whatever_the_sender() {
        assert_eq!(ok("+16315551234", "91"), "16315551234");
        assert_eq!(ok("+1 (631) 555-1234", "91"), "16315551234");
        assert_eq!(ok("  +44 20 7183 8750 ", "1"), "442071838750");
    }

    #[test]
    fn meta_documented_examples_without_plus_get_the_sender_code() {
        // cloud-api-facts.md §1.1: a business in India (91).
        assert_eq!(ok("(631) 555-1234", "91"), "916315551234");
        assert_eq!(ok("1 (631) 555-1234", "91"), "9116315551234");
    }

    #[test]
    fn digits_already_starting_with_the_sender_code_are_kept() {
        assert_eq!(ok("16505551234", "1"), "16505551234");
        assert_eq!(ok("5511999998888", "55"), "5511999998888");
        assert_eq!(ok("919876543210", "91"), "919876543210");
    }

    #[test]
    fn national_numbers_that_happen_to_start_with_the_code_get_it_prepended() {
        // A 10-digit Indian mobile starting with 91 is national, not international.
        assert_eq!(ok("9123456789", "91"), "919123456789");
        // Brazilian area code 55 + 9-digit mobile.
        assert_eq!(ok("55999998888", "55"), "5555999998888");
        assert_eq!(ok("6505551234", "1"), "16505551234");
    }

    #[test]
    fn empty_sender_code_takes_digits_as_they_are() {
        assert_eq!(ok("447911123456", ""), "447911123456");
    }

    #[test]
    fn digit_count_limits_are_7_to_15() {
        assert_eq!(ok("+1234567", "1"), "1234567");
        assert_eq!(ok("+123456789012345", "1"), "123456789012345");
        let e = refused("+123456", "1");
        assert!(
            e.details.contains("6 digits") && e.details.contains("7 to 15"),
            "{}",
            e.details
        );
        refused("+1234567890123456", "1");
    }

    #[test]
    fn prepending_is_explained_when_the_result_is_refused() {
        let e = refused("12345", "1");
        assert!(e.details.contains("country code 1"), "{}", e.details);
    }

    #[test]
    fn letters_inner_plus_and_leading_zero_are_refused() {
        let e = refused("+1 650 CALL NOW", "1");
        assert!(e.details.contains("'C'"), "{}", e.details);
        refused("1+6505551234", "1");
        refused("++16505551234", "1");
        refused("+0044 20 7183 8750", "1");
        refused("1.650.555.1234", "1");
        refused(" ( ) - ", "1");
    }

    #[test]
    fn a_bsuid_in_to_is_pointed_to_recipient() {
        let e = refused("US.13491208655302741918", "1");
        assert!(e.details.contains("`recipient`"), "{}", e.details);
    }

    #[test]
    fn calling_codes_of_major_countries() {
        for (digits, cc) in [
            ("16505551234", "1"),
            ("79161234567", "7"),
            ("201001234567", "20"),
            ("27821234567", "27"),
            ("447911123456", "44"),
            ("4915112345678", "49"),
            ("33612345678", "33"),
            ("393123456789", "39"),
            ("351912345678", "351"),
            ("380501234567", "380"),
            ("420601123456", "420"),
            ("5511999998888", "55"),
            ("5215512345678", "52"),
            ("50212345678", "502"),
            ("61412345678", "61"),
            ("6591234567", "65"),
            ("67012345", "670"),
            ("819012345678", "81"),
            ("8613812345678", "86"),
            ("85291234567", "852"),
            ("8801712345678", "880"),
            ("919876543210", "91"),
            ("905321234567", "90"),
            ("971501234567", "971"),
            ("966501234567", "966"),
            ("989121234567", "98"),
            ("2348031234567", "234"),
            ("254712345678", "254"),
            ("212612345678", "212"),
            ("2975601234", "297"),
        ] {
            assert_eq!(calling_code(digits), cc, "{digits}");
        }
    }

    #[test]
    fn calling_code_of_short_or_odd_input() {
        assert_eq!(calling_code(""), "");
        assert_eq!(calling_code("0123"), "");
        assert_eq!(calling_code("+1"), "");
        assert_eq!(calling_code("35"), "35");
        assert_eq!(calling_code("4"), "4");
        assert_eq!(calling_code("3é"), "");
    }

    #[test]
    fn bsuid_shape() {
        assert!(is_bsuid("US.13491208655302741918"));
        assert!(is_bsuid("BR.1"));
        assert!(!is_bsuid("us.13491208655302741918"));
        assert!(!is_bsuid("USA.1349"));
        assert!(!is_bsuid("US."));
        assert!(!is_bsuid("US-1349"));
        assert!(!is_bsuid("US.12a4"));
        assert!(!is_bsuid("16505551234"));
        assert!(!is_bsuid(&format!("US.{}", "1".repeat(62))));
    }
}
