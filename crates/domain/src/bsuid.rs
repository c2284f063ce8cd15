//! Business-scoped user ids (BSUID, Meta 2026): `CC.digits`, e.g. `US.13491208655302741918`.
//! The same customer has a different BSUID for each business portfolio. greenlight derives it
//! deterministically from (business, WhatsApp id) so that it is stable across restarts.

/// ISO 3166 region for an E.164 number's calling code (the common ones; `ZZ` otherwise).
pub fn region(digits: &str) -> &'static str {
    const TABLE: &[(&str, &str)] = &[
        ("1", "US"),
        ("7", "RU"),
        ("20", "EG"),
        ("27", "ZA"),
        ("30", "GR"),
        ("31", "NL"),
        ("32", "BE"),
        ("33", "FR"),
        ("34", "ES"),
        ("36", "HU"),
        ("39", "IT"),
        ("40", "RO"),
        ("41", "CH"),
        ("43", "AT"),
        ("44", "GB"),
        ("45", "DK"),
        ("46", "SE"),
        ("47", "NO"),
        ("48", "PL"),
        ("49", "DE"),
        ("51", "PE"),
        ("52", "MX"),
        ("54", "AR"),
        ("55", "BR"),
        ("56", "CL"),
        ("57", "CO"),
        ("58", "VE"),
        ("60", "MY"),
        ("61", "AU"),
        ("62", "ID"),
        ("63", "PH"),
        ("64", "NZ"),
        ("65", "SG"),
        ("66", "TH"),
        ("81", "JP"),
        ("82", "KR"),
        ("84", "VN"),
        ("86", "CN"),
        ("90", "TR"),
        ("91", "IN"),
        ("92", "PK"),
        ("93", "AF"),
        ("94", "LK"),
        ("95", "MM"),
        ("98", "IR"),
        ("212", "MA"),
        ("234", "NG"),
        ("254", "KE"),
        ("351", "PT"),
        ("353", "IE"),
        ("380", "UA"),
        ("852", "HK"),
        ("880", "BD"),
        ("966", "SA"),
        ("971", "AE"),
        ("972", "IL"),
    ];
    let mut best: Option<(&str, &'static str)> = None;
    for (cc, iso) in TABLE {
        if digits.starts_with(cc) && best.is_none_or(|(b, _)| cc.len() > b.len()) {
            best = Some((cc, iso));
        }
    }
    best.map(|(_, iso)| iso).unwrap_or("ZZ")
}

/// Formats a BSUID from a region and a 64-bit digest of (business, wa_id) computed by the caller.
pub fn format(region: &str, digest: u64) -> String {
    format!("{region}.{digest:020}")
}

/// `CC.digits`: two uppercase letters, a dot, digits.
pub fn looks_like(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() > 3
        && b[0].is_ascii_uppercase()
        && b[1].is_ascii_uppercase()
        && b[2] == b'.'
        && b[3..].iter().all(u8::is_ascii_digit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions() {
        assert_eq!(region("16505551234"), "US");
        assert_eq!(region("447700900123"), "GB");
        assert_eq!(region("351912345678"), "PT");
        assert_eq!(region("999"), "ZZ");
    }

    #[test]
    fn shape() {
        let b = format("US", 42);
        assert!(looks_like(&b));
        assert_eq!(b, "US.00000000000000000042");
        assert!(!looks_like("us.1"));
    }
}
