//! Category judgement of the review (cloud-api-facts.md §3.10): what the template's wording
//! says it is, with the signals that say so.
//!
//! - AUTHENTICATION: a one-time code (code wording plus the code variable, or the preset).
//! - MARKETING: promotion of any kind (discounts, offers, coupons, calls to shop, urgency,
//!   catalog buttons), mixed content, or content too thin to tell (§3.10 "unclear").
//! - UTILITY: non-promotional and about the reader's own transaction or account (orders,
//!   shipping, appointments, account and payment notices, opt-in/opt-out confirmations).
//!
//! Outcomes: a UTILITY template judged MARKETING is approved as MARKETING (since 2025-04-09);
//! MARKETING/UTILITY judged AUTHENTICATION is rejected INCORRECT_CATEGORY; an AUTHENTICATION
//! template whose custom text is not a bare one-time code is rejected INCORRECT_CATEGORY.

use super::finding::{rules, Finding};
use super::model::{Button, Category, Header, TemplateDef};
use super::placeholder;
use super::text::{self, has_emoji, has_link};

/// One reason behind the review's category judgement (or a content rule that fired).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signal {
    pub rule: &'static str,
    pub description: String,
}

struct SignalDef {
    id: &'static str,
    toward: Category,
    what: &'static str,
    phrases: &'static [&'static str],
}

const SIGNALS: &[SignalDef] = &[
    SignalDef {
        id: "CAT-MKT-DISCOUNT",
        toward: Category::Marketing,
        what: "discount or price cut",
        phrases: &[
            "discount",
            "discounts",
            "% off",
            "percent off",
            "off your next",
            "off your order",
            "off your first",
            "off your purchase",
            "off all",
            "off everything",
            "sale",
            "clearance",
            "cashback",
            "cash back",
            "half price",
            "buy one get one",
            "bogo",
        ],
    },
    SignalDef {
        id: "CAT-MKT-OFFER",
        toward: Category::Marketing,
        what: "offer or deal",
        phrases: &[
            "offer",
            "offers",
            "deal",
            "deals",
            "special price",
            "save up to",
            "save big",
            "best price",
            "lowest price",
            "free gift",
            "free trial",
            "free shipping",
            "free delivery",
            "giveaway",
            "bonus",
        ],
    },
    SignalDef {
        id: "CAT-MKT-COUPON",
        toward: Category::Marketing,
        what: "coupon or promo code",
        phrases: &[
            "coupon",
            "coupons",
            "promo code",
            "promocode",
            "voucher",
            "vouchers",
            "use code",
            "discount code",
        ],
    },
    SignalDef {
        id: "CAT-MKT-CTA",
        toward: Category::Marketing,
        what: "call to shop or browse",
        phrases: &[
            "shop now",
            "buy now",
            "order now",
            "shop our",
            "browse our",
            "check out our",
            "visit our store",
            "new arrivals",
            "new collection",
            "just launched",
            "just arrived",
            "back in stock",
            "sign up",
            "subscribe now",
            "treat yourself",
        ],
    },
    SignalDef {
        id: "CAT-MKT-URGENCY",
        toward: Category::Marketing,
        what: "urgency",
        phrases: &[
            "limited time",
            "hurry",
            "last chance",
            "don't miss",
            "ends soon",
            "ends tonight",
            "today only",
            "while stocks last",
            "while supplies last",
            "act fast",
            "act now",
            "only a few left",
            "selling fast",
            "before it's gone",
        ],
    },
    SignalDef {
        id: "CAT-UTIL-ORDER",
        toward: Category::Utility,
        what: "order or delivery update",
        phrases: &[
            "order",
            "orders",
            "shipped",
            "shipping",
            "dispatched",
            "delivery",
            "delivered",
            "tracking",
            "shipment",
            "package",
            "parcel",
            "pickup",
        ],
    },
    SignalDef {
        id: "CAT-UTIL-APPOINTMENT",
        toward: Category::Utility,
        what: "appointment or booking",
        phrases: &[
            "appointment",
            "reservation",
            "booking",
            "booked",
            "check in",
            "rescheduled",
            "cancelled",
            "canceled",
            "reminder",
            "scheduled",
        ],
    },
    SignalDef {
        id: "CAT-UTIL-ACCOUNT",
        toward: Category::Utility,
        what: "account notice",
        phrases: &[
            "account",
            "profile",
            "login",
            "sign in",
            "security alert",
            "statement",
            "balance",
            "password",
        ],
    },
    SignalDef {
        id: "CAT-UTIL-PAYMENT",
        toward: Category::Utility,
        what: "payment, bill or refund",
        phrases: &[
            "payment",
            "invoice",
            "receipt",
            "bill",
            "due",
            "overdue",
            "refund",
            "refunded",
            "charged",
            "transaction",
            "paid",
        ],
    },
    SignalDef {
        id: "CAT-UTIL-OPT-IN",
        toward: Category::Utility,
        what: "opt-in or opt-out confirmation",
        phrases: &[
            "opted in",
            "opt in",
            "subscribed",
            "unsubscribed",
            "opted out",
            "opt out",
            "preferences",
            "you will now receive",
            "consent",
        ],
    },
    SignalDef {
        id: "CAT-AUTH-CODE",
        toward: Category::Authentication,
        what: "one-time code wording",
        phrases: CODE_PHRASES,
    },
];

/// Wording that delivers a one-time code.
const CODE_PHRASES: &[&str] = &[
    "verification code",
    "one time password",
    "one time code",
    "one time pin",
    "otp",
    "passcode",
    "login code",
    "sign in code",
    "security code",
    "authentication code",
    "auth code",
    "2fa",
    "two factor",
];

/// The review's reading of a template.
#[derive(Debug, Clone)]
pub(crate) struct Judgement {
    pub category: Category,
    pub signals: Vec<Signal>,
    pub otp: bool,
    pub promotional: bool,
}

/// The wording the category is judged on: header, body, footer and button labels (sample
/// values are not the template's wording).
fn wording(def: &TemplateDef) -> Vec<(&'static str, String)> {
    let c = &def.components;
    let mut out = Vec::new();
    if let Some(Header::Text { text, .. }) = &c.header {
        out.push(("header", text.clone()));
    }
    out.push(("body", def.body_text().into_owned()));
    if let Some(t) = def.footer_text() {
        out.push(("footer", t));
    }
    for b in &c.buttons {
        out.push(("button", b.label().to_string()));
    }
    out
}

pub(crate) fn judge(def: &TemplateDef) -> Judgement {
    let texts: Vec<(&str, Vec<String>)> = wording(def)
        .into_iter()
        .map(|(w, t)| (w, text::tokens(&t)))
        .collect();
    let mut signals = Vec::new();
    let mut toward = Vec::new();
    for s in SIGNALS {
        let hit = texts
            .iter()
            .find_map(|(w, toks)| text::first_phrase(toks, s.phrases).map(|p| (*w, p)));
        if let Some((w, p)) = hit {
            signals.push(Signal {
                rule: s.id,
                description: format!("{}: \"{p}\" in the {w}", s.what),
            });
            toward.push(s.toward);
        }
    }
    structural_signals(def, &mut signals, &mut toward);
    let body_has_var = placeholder::scan(&def.body_text()).var_count() > 0;
    let otp = toward.contains(&Category::Authentication) && body_has_var;
    let promotional = toward.contains(&Category::Marketing);
    let category = if otp {
        Category::Authentication
    } else if promotional {
        Category::Marketing
    } else if toward.contains(&Category::Utility) {
        Category::Utility
    } else {
        signals.push(Signal {
            rule: "CAT-MKT-UNCLEAR",
            description:
                "no transactional or account wording: Meta treats unclear content as marketing"
                    .into(),
        });
        Category::Marketing
    };
    Judgement {
        category,
        signals,
        otp,
        promotional,
    }
}

fn structural_signals(def: &TemplateDef, signals: &mut Vec<Signal>, toward: &mut Vec<Category>) {
    let c = &def.components;
    let mut add = |rule, cat, description: &str| {
        signals.push(Signal {
            rule,
            description: description.to_string(),
        });
        toward.push(cat);
    };
    if c.buttons
        .iter()
        .any(|b| matches!(b, Button::CopyCode { .. }))
    {
        add(
            "CAT-MKT-COUPON-BUTTON",
            Category::Marketing,
            "a COPY_CODE (coupon) button",
        );
    }
    if c.buttons.iter().any(|b| {
        matches!(
            b,
            Button::Catalog { .. } | Button::Mpm { .. } | Button::Spm { .. }
        )
    }) || c.header == Some(Header::Product)
    {
        add(
            "CAT-MKT-CATALOG",
            Category::Marketing,
            "a product or catalog showcase",
        );
    }
    if c.buttons.iter().any(|b| matches!(b, Button::Otp(_))) {
        add(
            "CAT-AUTH-OTP-BUTTON",
            Category::Authentication,
            "an OTP button",
        );
    }
}

/// The category rules' findings on `def` given the judgement.
pub(crate) fn findings(def: &TemplateDef, j: &Judgement) -> Vec<Finding> {
    let mut f = Vec::new();
    match def.category {
        Category::Authentication => {
            if let Some(problem) = not_a_bare_code(def, j) {
                f.push(Finding::review(
                    rules::CATEGORY_NOT_OTP,
                    "INCORRECT_CATEGORY",
                    "components[BODY].text",
                    format!("AUTHENTICATION templates deliver a one-time code only, but this text {problem}."),
                    "Use Meta's preset authentication text (omit body text), or submit the template as UTILITY or MARKETING.",
                ));
            }
        }
        submitted if j.otp => f.push(Finding::review(
            rules::CATEGORY_OTP,
            "INCORRECT_CATEGORY",
            "category",
            format!("This {} template delivers a one-time code.", submitted.as_str()),
            "Submit one-time codes as AUTHENTICATION templates (preset text with an OTP button).",
        )),
        Category::Utility if j.category == Category::Marketing => f.push(
            Finding::review(
                rules::CATEGORY_MARKETING,
                "NONE",
                "category",
                format!("This UTILITY template reads as marketing ({}); it will be approved as MARKETING.", marketing_reasons(j)),
                "Remove promotional wording if the template must stay UTILITY, or submit it as MARKETING.",
            )
            .warning(),
        ),
        _ => {}
    }
    f
}

fn marketing_reasons(j: &Judgement) -> String {
    j.signals
        .iter()
        .filter(|s| s.rule.starts_with("CAT-MKT"))
        .map(|s| s.description.as_str())
        .collect::<Vec<_>>()
        .join("; ")
}

/// Why an AUTHENTICATION template's custom text is not a bare one-time code, if it is not.
fn not_a_bare_code(def: &TemplateDef, j: &Judgement) -> Option<String> {
    let custom = def.components.body.text.as_deref()?;
    if j.promotional {
        Some(format!("is promotional ({})", marketing_reasons(j)))
    } else if has_link(custom) {
        Some("contains a link".into())
    } else if has_emoji(custom) {
        Some("contains emoji".into())
    } else if !j.otp || !mentions_code(custom) {
        Some("does not deliver a code".into())
    } else {
        None
    }
}

/// Code wording, plus a bare "code" (acceptable inside an AUTHENTICATION template, where
/// "Your code is {{1}}." can only mean the one-time code).
fn mentions_code(text: &str) -> bool {
    let toks = text::tokens(text);
    text::first_phrase(&toks, CODE_PHRASES).is_some() || toks.iter().any(|t| t == "code")
}
