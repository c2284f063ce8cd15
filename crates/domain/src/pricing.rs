//! Per-message pricing (PMP, since 2025-07-01; cloud-api-facts.md §11.1, §10.5).
//!
//! Only delivered templates are charged, by template category. Non-template messages (possible
//! only inside a customer-service window) are free `service` messages; utility templates inside a
//! window are free; everything inside a 72 h free entry point is free.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Pricing {
    pub billable: bool,
    pub pricing_model: &'static str,
    #[serde(rename = "type")]
    pub pricing_type: &'static str,
    pub category: &'static str,
}

/// `template_category` is the lowercase category of the template (`marketing`, `utility`,
/// `authentication`) or `None` for a non-template message.
pub fn price(template_category: Option<&'static str>, in_window: bool, in_fep: bool) -> Pricing {
    let free = |pricing_type, category| Pricing {
        billable: false,
        pricing_model: "PMP",
        pricing_type,
        category,
    };
    if in_fep {
        return free("free_entry_point", "referral_conversion");
    }
    match template_category {
        None => free("free_customer_service", "service"),
        Some("utility") if in_window => free("free_customer_service", "utility"),
        Some(category) => Pricing {
            billable: true,
            pricing_model: "PMP",
            pricing_type: "regular",
            category,
        },
    }
}

impl Pricing {
    /// As `serde_json::to_string` writes it (a test checks it), without the serializer: every
    /// send stores its pricing, and its four fields are names that need no escaping (a field
    /// that would is written by serde_json).
    pub fn to_json(&self) -> String {
        let plain = |s: &str| !s.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\');
        if !(plain(self.pricing_model) && plain(self.pricing_type) && plain(self.category)) {
            return serde_json::to_string(self).unwrap_or_default();
        }
        let mut out = String::with_capacity(
            72 + self.pricing_model.len() + self.pricing_type.len() + self.category.len(),
        );
        out.push_str(if self.billable {
            "{\"billable\":true"
        } else {
            "{\"billable\":false"
        });
        for (key, value) in [
            (",\"pricing_model\":\"", self.pricing_model),
            ("\",\"type\":\"", self.pricing_type),
            ("\",\"category\":\"", self.category),
        ] {
            out.push_str(key);
            out.push_str(value);
        }
        out.push_str("\"}");
        out
    }

    /// The pricing [`price`] gives with this category and type, if it gives one: its
    /// `billable` and model follow from them. Stores that keep only the two use it.
    pub fn from_parts(category: &str, pricing_type: &str) -> Option<Pricing> {
        [
            None,
            Some("utility"),
            Some("authentication"),
            Some("marketing"),
        ]
        .into_iter()
        .flat_map(|t| [(t, false, false), (t, true, false), (t, false, true)])
        .map(|(t, in_window, in_fep)| price(t, in_window, in_fep))
        .find(|p| p.category == category && p.pricing_type == pricing_type)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `price` gives for every category, in and out of a window and a free entry point.
    fn every_price() -> Vec<Pricing> {
        [
            None,
            Some("utility"),
            Some("authentication"),
            Some("marketing"),
        ]
        .into_iter()
        .flat_map(|t| {
            [(false, false), (true, false), (false, true), (true, true)]
                .map(|(w, f)| price(t, w, f))
        })
        .collect()
    }

    #[test]
    fn to_json_writes_what_serde_json_writes() {
        for p in every_price() {
            assert_eq!(p.to_json(), serde_json::to_string(&p).unwrap());
        }
        // a field that needs escaping
        let odd = Pricing {
            billable: true,
            pricing_model: "P\"M\\P",
            pricing_type: "new\nline",
            category: "é",
        };
        assert_eq!(odd.to_json(), serde_json::to_string(&odd).unwrap());
        assert!(odd.to_json().contains(r#"P\"M\\P"#));
    }

    #[test]
    fn every_price_is_found_from_its_category_and_type() {
        let all = every_price();
        for p in &all {
            assert_eq!(Pricing::from_parts(p.category, p.pricing_type), Some(*p));
        }
        assert_eq!(all.len(), 16);
        // a pair `price` never gives
        assert_eq!(Pricing::from_parts("service", "regular"), None);
        assert_eq!(Pricing::from_parts("marketing_lite", "regular"), None);
    }

    #[test]
    fn service_messages_are_free() {
        let p = price(None, true, false);
        assert_eq!(
            (p.billable, p.category, p.pricing_type),
            (false, "service", "free_customer_service")
        );
    }

    #[test]
    fn utility_free_in_window_charged_outside() {
        assert!(!price(Some("utility"), true, false).billable);
        let p = price(Some("utility"), false, false);
        assert_eq!((p.billable, p.pricing_type), (true, "regular"));
    }

    #[test]
    fn marketing_charged_even_in_window() {
        let p = price(Some("marketing"), true, false);
        assert_eq!((p.billable, p.category), (true, "marketing"));
    }

    #[test]
    fn everything_free_in_fep() {
        let p = price(Some("marketing"), false, true);
        assert_eq!(
            (p.billable, p.pricing_type, p.category),
            (false, "free_entry_point", "referral_conversion")
        );
    }
}
