//! Content rules of the automated review (cloud-api-facts.md §3.4 "policy violations", §3.9
//! rejection reasons). Each rule has a stable id and maps to one of Meta's `rejected_reason`
//! values; [`content_rules`] returns the table below so that documentation can be generated.
//! The table order is the precedence: when several rules match, the review reports the first.
//!
//! | id | reason | catches |
//! |---|---|---|
//! | `TPL-CONTENT-CREDENTIALS` | SCAM | asking for card numbers, CVV, PINs, passwords, bank logins or one-time codes ("reply with your CVV") |
//! | `TPL-CONTENT-NATIONAL-ID` | ABUSIVE_CONTENT | asking for national identifiers (SSN, passport, Aadhaar, tax id, …) |
//! | `TPL-CONTENT-SHORTENER` | SCAM | links through URL shorteners (bit.ly, tinyurl.com, goo.gl, t.co, ow.ly, is.gd, buff.ly, cutt.ly, rebrand.ly, …) |
//! | `TPL-CONTENT-SCAM-BAIT` | SCAM | prize, lottery and guaranteed-return bait ("you have won", "double your money") |
//! | `TPL-CONTENT-THREAT` | ABUSIVE_CONTENT | threats and intimidation ("we know where you live", "or else") |
//! | `TPL-CONTENT-HARASSMENT` | ABUSIVE_CONTENT | insults aimed at the reader |
//! | `TPL-CONTENT-DRUGS` | ABUSIVE_CONTENT | illegal or prescription drugs (Commerce Policy) |
//! | `TPL-CONTENT-WEAPONS` | ABUSIVE_CONTENT | firearms, ammunition, explosives |
//! | `TPL-CONTENT-TOBACCO` | ABUSIVE_CONTENT | tobacco, nicotine and vaping products |
//! | `TPL-CONTENT-ADULT` | ABUSIVE_CONTENT | adult products and services |
//! | `TPL-CONTENT-GAMBLING` | ABUSIVE_CONTENT | real-money gambling |
//! | `TPL-CONTENT-COUNTERFEIT` | ABUSIVE_CONTENT | counterfeit goods and fake documents |
//! | `TPL-VAR-ADJACENT` | INVALID_FORMAT | variables next to each other (`{{1}}{{2}}`, `{{1}} {{2}}`) |
//! | `TPL-VAR-DENSITY` | INVALID_FORMAT | fewer than two words of fixed text per variable in the body |
//! | `TPL-EXAMPLE-LINK` | TAG_CONTENT_MISMATCH | a variable's sample value is a link |
//! | `TPL-EXAMPLE-LENGTH` | TAG_CONTENT_MISMATCH | a variable's sample value is longer than 150 characters |
//! | `TPL-EXAMPLE-URL-MISMATCH` | TAG_CONTENT_MISMATCH | a URL button's sample does not start with the button's fixed URL |
//!
//! Phrase matching is on lowercase word tokens (see `text::tokens`), never inside words, so
//! "meth" does not match "method". Request rules match a sensitive term only when a request verb
//! (send, share, provide, reply, confirm, verify, give, tell, submit, text, forward) stands in
//! the six words before it and no negation ("never", "do not", …) does: "we will never ask you
//! to share your PIN" passes, "reply with your PIN" does not. The ratio and length thresholds
//! are greenlight's (Meta's are UNCONFIRMED, §15).

use super::finding::Finding;
use super::model::{Button, Header, TemplateDef};
use super::placeholder;
use super::text::{self, char_len};

/// How a content rule recognises a violation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Matcher {
    /// Any of these phrases in the template's text or sample values.
    Phrases(&'static [&'static str]),
    /// One of these terms, requested of the reader (see the module docs).
    Requests(&'static [&'static str]),
    /// A link to one of these hosts anywhere in the template, its URLs or samples.
    Domains(&'static [&'static str]),
    /// Body variables with only whitespace between them.
    AdjacentVariables,
    /// Fewer than two words of fixed text per variable occurrence in the body.
    VariableDensity,
    /// A header/body sample value containing a link.
    ExampleLink,
    /// A header/body sample value longer than this many characters.
    ExampleLength(usize),
    /// A URL button's full sample URL that does not start with the button URL's fixed part
    /// (a sample of the `{{1}}` value alone is not compared).
    UrlExampleMismatch,
}

/// One content rule of the review.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContentRule {
    pub id: &'static str,
    /// Meta's `rejected_reason` when this rule rejects a template.
    pub reason: &'static str,
    pub summary: &'static str,
    /// The `rejection_info.reason` sentence ("Your template …").
    pub explanation: &'static str,
    /// The `rejection_info.recommendation` sentence, also the finding's fix.
    pub recommendation: &'static str,
    pub matcher: Matcher,
}

pub const SCAM: &str = "SCAM";
pub const ABUSIVE_CONTENT: &str = "ABUSIVE_CONTENT";
pub const INVALID_FORMAT: &str = "INVALID_FORMAT";
pub const TAG_CONTENT_MISMATCH: &str = "TAG_CONTENT_MISMATCH";

/// Longest sample value that still reads like a variable's value.
pub const MAX_SAMPLE: usize = 150;

const REQUEST_VERBS: &[&str] = &[
    "send", "share", "provide", "reply", "confirm", "verify", "give", "tell", "submit", "text",
    "forward",
];
const NEGATIONS: &[&str] = &[
    "never", "not", "don't", "dont", "won't", "cannot", "can't", "no",
];
const REQUEST_WINDOW: usize = 6;

static RULES: &[ContentRule] = &[
    ContentRule {
        id: "TPL-CONTENT-CREDENTIALS",
        reason: SCAM,
        summary: "Asks for card numbers, CVV, PINs, passwords, bank logins or one-time codes.",
        explanation: "Your template asks people to share payment card details, PINs, passwords or one-time codes.",
        recommendation: "Never ask for full card numbers, security codes, PINs or passwords in a message; send people to your secure website or app instead.",
        matcher: Matcher::Requests(&[
            "card number", "credit card number", "debit card number", "full card number", "card details", "cvv", "cvv2", "cvc",
            "card security code", "pin", "pin number", "atm pin", "password", "passcode", "online banking password", "login details",
            "login credentials", "bank account number", "account number", "routing number", "otp", "one time password",
            "verification code",
        ]),
    },
    ContentRule {
        id: "TPL-CONTENT-NATIONAL-ID",
        reason: ABUSIVE_CONTENT,
        summary: "Asks for national identifiers (SSN, passport, Aadhaar, tax id, …).",
        explanation: "Your template asks people to share a national identification number.",
        recommendation: "Do not request government identifiers over WhatsApp; collect them through a secure channel.",
        matcher: Matcher::Requests(&[
            "ssn", "social security number", "social security", "national id", "national id number", "national identity number",
            "national insurance number", "passport number", "aadhaar", "aadhaar number", "pan number", "tax id", "tax identification number",
            "driver's license number", "drivers license number", "id card number",
        ]),
    },
    ContentRule {
        id: "TPL-CONTENT-SHORTENER",
        reason: SCAM,
        summary: "Links through a URL shortener, which hides the destination.",
        explanation: "Your template contains a shortened link that hides where it leads.",
        recommendation: "Use the full link on your own domain.",
        matcher: Matcher::Domains(&[
            "bit.ly", "tinyurl.com", "goo.gl", "t.co", "ow.ly", "is.gd", "buff.ly", "cutt.ly", "rebrand.ly", "rb.gy", "shorturl.at", "tiny.cc",
        ]),
    },
    ContentRule {
        id: "TPL-CONTENT-SCAM-BAIT",
        reason: SCAM,
        summary: "Prize, lottery or guaranteed-return bait.",
        explanation: "Your template reads like a prize, lottery or investment scam.",
        recommendation: "Remove claims of winnings or guaranteed returns; describe the actual product or service.",
        matcher: Matcher::Phrases(&[
            "you have won", "you've won", "you won", "claim your prize", "claim your reward", "lottery winner", "won the lottery",
            "guaranteed returns", "guaranteed profit", "double your money", "risk free investment", "processing fee to release",
            "send bitcoin", "crypto giveaway", "inheritance funds",
        ]),
    },
    ContentRule {
        id: "TPL-CONTENT-THREAT",
        reason: ABUSIVE_CONTENT,
        summary: "Threatens or intimidates the reader.",
        explanation: "Your template contains threatening or intimidating language.",
        recommendation: "State facts and next steps neutrally; do not threaten the reader.",
        matcher: Matcher::Phrases(&[
            "or else", "we will find you", "we know where you live", "you will regret", "you'll regret", "kill you", "hurt you",
            "harm your family", "we will come to your house", "watch your back", "we will destroy you", "last warning",
        ]),
    },
    ContentRule {
        id: "TPL-CONTENT-HARASSMENT",
        reason: ABUSIVE_CONTENT,
        summary: "Insults the reader.",
        explanation: "Your template contains insulting or harassing language.",
        recommendation: "Remove insults; address the reader respectfully.",
        matcher: Matcher::Phrases(&["idiot", "stupid", "loser", "moron", "worthless", "shut up", "scum"]),
    },
    ContentRule {
        id: "TPL-CONTENT-DRUGS",
        reason: ABUSIVE_CONTENT,
        summary: "Offers illegal, recreational or prescription drugs.",
        explanation: "Your template promotes drugs that WhatsApp's Commerce Policy prohibits.",
        recommendation: "WhatsApp cannot be used to sell or promote these products.",
        matcher: Matcher::Phrases(&[
            "cocaine", "heroin", "methamphetamine", "crystal meth", "meth", "mdma", "ecstasy pills", "lsd", "marijuana", "cannabis",
            "buy weed", "weed delivery", "thc", "fentanyl", "oxycodone", "xanax", "ketamine", "magic mushrooms", "psilocybin",
            "no prescription needed", "without a prescription",
        ]),
    },
    ContentRule {
        id: "TPL-CONTENT-WEAPONS",
        reason: ABUSIVE_CONTENT,
        summary: "Offers firearms, ammunition or explosives.",
        explanation: "Your template promotes weapons, ammunition or explosives.",
        recommendation: "WhatsApp cannot be used to sell or promote weapons.",
        matcher: Matcher::Phrases(&[
            "firearm", "firearms", "handgun", "handguns", "rifle", "rifles", "pistol", "pistols", "ammunition", "ammo",
            "assault weapon", "explosives", "silencer", "silencers", "grenade", "grenades",
        ]),
    },
    ContentRule {
        id: "TPL-CONTENT-TOBACCO",
        reason: ABUSIVE_CONTENT,
        summary: "Offers tobacco, nicotine or vaping products.",
        explanation: "Your template promotes tobacco or vaping products.",
        recommendation: "WhatsApp cannot be used to sell or promote tobacco or nicotine products.",
        matcher: Matcher::Phrases(&[
            "cigarette", "cigarettes", "cigar", "cigars", "tobacco", "vape", "vapes", "vaping", "e cigarette", "e cigarettes",
            "e liquid", "nicotine", "hookah", "shisha",
        ]),
    },
    ContentRule {
        id: "TPL-CONTENT-ADULT",
        reason: ABUSIVE_CONTENT,
        summary: "Offers adult products or services.",
        explanation: "Your template promotes adult content, products or services.",
        recommendation: "WhatsApp cannot be used to sell or promote adult products or services.",
        matcher: Matcher::Phrases(&[
            "porn", "porno", "pornography", "xxx", "adult content", "adult videos", "escort", "escorts", "escort service", "sex toys",
            "nude", "nudes", "sexual services", "erotic",
        ]),
    },
    ContentRule {
        id: "TPL-CONTENT-GAMBLING",
        reason: ABUSIVE_CONTENT,
        summary: "Promotes real-money gambling.",
        explanation: "Your template promotes real-money gambling.",
        recommendation: "WhatsApp cannot be used to promote real-money gambling.",
        matcher: Matcher::Phrases(&[
            "casino", "casinos", "online casino", "sports betting", "betting", "bet now", "place your bets", "place a bet", "poker",
            "roulette", "slot machines", "online slots", "blackjack", "bookmaker", "free spins",
        ]),
    },
    ContentRule {
        id: "TPL-CONTENT-COUNTERFEIT",
        reason: ABUSIVE_CONTENT,
        summary: "Offers counterfeit goods or fake documents.",
        explanation: "Your template promotes counterfeit goods or fake documents.",
        recommendation: "WhatsApp cannot be used to sell counterfeit goods or forged documents.",
        matcher: Matcher::Phrases(&[
            "counterfeit", "replica", "replicas", "fake designer", "knockoff", "knockoffs", "knock off", "first copy", "aaa quality",
            "fake id", "fake ids", "fake passport", "fake documents", "fake diploma",
        ]),
    },
    ContentRule {
        id: "TPL-VAR-ADJACENT",
        reason: INVALID_FORMAT,
        summary: "Variables next to each other, with only whitespace between them.",
        explanation: "Your template has parameters placed next to each other (like {{1}}{{2}}) without text or punctuation between them.",
        recommendation: "Separate parameters with descriptive text and ensure each parameter is clearly contextualized.",
        matcher: Matcher::AdjacentVariables,
    },
    ContentRule {
        id: "TPL-VAR-DENSITY",
        reason: INVALID_FORMAT,
        summary: "Fewer than two words of fixed text per variable in the body.",
        explanation: "Your template has too many parameters relative to the length of its message.",
        recommendation: "Add descriptive text around each parameter, or use fewer parameters.",
        matcher: Matcher::VariableDensity,
    },
    ContentRule {
        id: "TPL-EXAMPLE-LINK",
        reason: TAG_CONTENT_MISMATCH,
        summary: "A variable's sample value is a link.",
        explanation: "A sample value for one of your template's parameters is a link, which does not match the parameter's text.",
        recommendation: "Give realistic sample values (a name, a date, an order number); put links in a URL button.",
        matcher: Matcher::ExampleLink,
    },
    ContentRule {
        id: "TPL-EXAMPLE-LENGTH",
        reason: TAG_CONTENT_MISMATCH,
        summary: "A variable's sample value is longer than 150 characters.",
        explanation: "A sample value for one of your template's parameters is much longer than a parameter value should be.",
        recommendation: "Keep the message text in the template and use parameters for short values only.",
        matcher: Matcher::ExampleLength(MAX_SAMPLE),
    },
    ContentRule {
        id: "TPL-EXAMPLE-URL-MISMATCH",
        reason: TAG_CONTENT_MISMATCH,
        summary: "A URL button's sample does not start with the button's fixed URL.",
        explanation: "The sample URL of a button does not match the button's URL.",
        recommendation: "Make the sample the button URL with {{1}} replaced by a realistic value.",
        matcher: Matcher::UrlExampleMismatch,
    },
];

/// The content rule table, in precedence order.
pub fn content_rules() -> &'static [ContentRule] {
    RULES
}

pub(crate) fn rule(id: &str) -> Option<&'static ContentRule> {
    RULES.iter().find(|r| r.id == id)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Wording of the template itself.
    Wording,
    /// A sample value of a header/body variable (or the coupon sample).
    Sample,
    /// A button URL or its sample.
    Link,
}

struct Text {
    field: String,
    text: String,
    kind: Kind,
}

/// Every piece of text the review reads, with its field path.
fn texts(def: &TemplateDef) -> Vec<Text> {
    let c = &def.components;
    let mut out = Vec::new();
    let mut push = |field: String, text: &str, kind| {
        out.push(Text {
            field,
            text: text.to_string(),
            kind,
        })
    };
    if let Some(Header::Text { text, examples }) = &c.header {
        push("components[HEADER].text".into(), text, Kind::Wording);
        for (i, v) in examples.values().into_iter().enumerate() {
            push(format!("components[HEADER].example[{i}]"), v, Kind::Sample);
        }
    }
    push(
        "components[BODY].text".into(),
        &def.body_text(),
        Kind::Wording,
    );
    for (i, v) in c.body.examples.values().into_iter().enumerate() {
        push(format!("components[BODY].example[{i}]"), v, Kind::Sample);
    }
    if let Some(t) = def.footer_text() {
        push("components[FOOTER].text".into(), &t, Kind::Wording);
    }
    for (i, b) in c.buttons.iter().enumerate() {
        let field = format!("components[BUTTONS].buttons[{i}]");
        push(format!("{field}.text"), b.label(), Kind::Wording);
        match b {
            Button::Url { url, example, .. } => {
                push(format!("{field}.url"), url, Kind::Link);
                if let Some(e) = example {
                    push(format!("{field}.example"), e, Kind::Link);
                }
            }
            Button::CopyCode { example } => push(format!("{field}.example"), example, Kind::Sample),
            _ => {}
        }
    }
    out
}

/// Every content rule's findings on `def`, in table order (one per rule and field).
pub(crate) fn findings(def: &TemplateDef) -> Vec<Finding> {
    let texts = texts(def);
    RULES
        .iter()
        .flat_map(|r| rule_findings(r, def, &texts))
        .collect()
}

fn finding(r: &ContentRule, field: &str, what: String) -> Finding {
    Finding::review(
        r.id,
        r.reason,
        field,
        format!("{} ({what})", r.explanation),
        r.recommendation,
    )
}

fn rule_findings(r: &ContentRule, def: &TemplateDef, texts: &[Text]) -> Vec<Finding> {
    let readable = || texts.iter().filter(|t| t.kind != Kind::Link);
    let samples = || {
        texts
            .iter()
            .filter(|t| t.kind == Kind::Sample && t.field.contains(".example["))
    };
    match r.matcher {
        Matcher::Phrases(phrases) => readable()
            .filter_map(|t| {
                text::first_phrase(&text::tokens(&t.text), phrases)
                    .map(|p| finding(r, &t.field, format!("\"{p}\"")))
            })
            .collect(),
        Matcher::Requests(terms) => readable()
            .filter_map(|t| {
                requested_term(&t.text, terms)
                    .map(|p| finding(r, &t.field, format!("asks for \"{p}\"")))
            })
            .collect(),
        Matcher::Domains(domains) => texts
            .iter()
            .filter_map(|t| {
                domains
                    .iter()
                    .find(|d| text::mentions_domain(&t.text, d))
                    .map(|d| finding(r, &t.field, format!("link via {d}")))
            })
            .collect(),
        Matcher::AdjacentVariables => {
            let body = def.body_text();
            placeholder::scan(&body)
                .adjacent_pair()
                .map(|(a, b)| finding(r, "components[BODY].text", format!("{a} and {b}")))
                .into_iter()
                .collect()
        }
        Matcher::VariableDensity => {
            let body = def.body_text();
            let s = placeholder::scan(&body);
            let (vars, words) = (s.var_count(), s.static_words());
            (vars > 0 && words < 2 * vars)
                .then(|| {
                    finding(
                        r,
                        "components[BODY].text",
                        format!(
                            "{vars} variables, {words} words of fixed text; at least {} needed",
                            2 * vars
                        ),
                    )
                })
                .into_iter()
                .collect()
        }
        Matcher::ExampleLink => samples()
            .filter(|t| text::has_link(&t.text))
            .map(|t| finding(r, &t.field, format!("\"{}\"", t.text)))
            .collect(),
        Matcher::ExampleLength(max) => samples()
            .filter(|t| char_len(&t.text) > max)
            .map(|t| {
                finding(
                    r,
                    &t.field,
                    format!("{} characters; at most {max}", char_len(&t.text)),
                )
            })
            .collect(),
        Matcher::UrlExampleMismatch => def
            .components
            .buttons
            .iter()
            .enumerate()
            .filter_map(|(i, b)| match b {
                Button::Url {
                    url,
                    example: Some(e),
                    ..
                } if e.starts_with("http://") || e.starts_with("https://") => {
                    let fixed = url.split("{{").next().unwrap_or("");
                    (!e.starts_with(fixed)).then(|| {
                        finding(
                            r,
                            &format!("components[BUTTONS].buttons[{i}].example"),
                            format!("\"{e}\" does not start with \"{fixed}\""),
                        )
                    })
                }
                _ => None,
            })
            .collect(),
    }
}

/// The first of `terms` that `text` asks the reader for (see the module docs).
fn requested_term(text: &str, terms: &[&'static str]) -> Option<&'static str> {
    let toks = text::tokens(text);
    terms.iter().copied().find(|term| {
        text::find_all(&toks, term).into_iter().any(|at| {
            let postal = *term == "pin" && toks.get(at + 1).is_some_and(|t| t == "code");
            let window = &toks[at.saturating_sub(REQUEST_WINDOW)..at];
            let asked = window.iter().any(|w| REQUEST_VERBS.contains(&w.as_str()));
            let negated = window.iter().any(|w| NEGATIONS.contains(&w.as_str()));
            !postal && asked && !negated
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_need_a_verb_and_no_negation() {
        let terms = &["pin", "password", "cvv"];
        assert_eq!(
            requested_term("Please reply with your PIN.", terms),
            Some("pin")
        );
        assert_eq!(
            requested_term("We will never ask you to share your password.", terms),
            None
        );
        assert_eq!(
            requested_term("Your card ending 1234 was charged.", terms),
            None
        );
        assert_eq!(
            requested_term("Send us your pin code for delivery.", terms),
            None
        );
        assert_eq!(
            requested_term("Confirm the CVV on the back of your card", terms),
            Some("cvv")
        );
    }

    #[test]
    fn module_doc_table_matches_content_rules() {
        let doc: Vec<&str> = include_str!("content.rs")
            .lines()
            .take_while(|l| l.starts_with("//!"))
            .filter(|l| l.starts_with("//! | `"))
            .collect();
        assert_eq!(doc.len(), RULES.len(), "one doc row per rule");
        for (row, r) in doc.iter().zip(RULES) {
            assert!(
                row.starts_with(&format!("//! | `{}` | {} |", r.id, r.reason)),
                "doc row {row:?} does not match {} / {}",
                r.id,
                r.reason
            );
        }
    }

    #[test]
    fn table_ids_are_unique_and_reasons_known() {
        let mut ids: Vec<&str> = RULES.iter().map(|r| r.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), RULES.len());
        for r in RULES {
            assert!(
                [SCAM, ABUSIVE_CONTENT, INVALID_FORMAT, TAG_CONTENT_MISMATCH].contains(&r.reason),
                "{}",
                r.id
            );
            assert!(
                r.explanation.starts_with("Your template")
                    || r.explanation.starts_with("A sample")
                    || r.explanation.starts_with("The sample")
            );
        }
    }
}
