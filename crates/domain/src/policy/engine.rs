//! The send decision: every rule in order over facts the store loaded, at `now`.
//!
//! The store calls [`decide_send`] inside the same serialized unit of work that then writes the
//! message, so a decision and its effects can never interleave with another send's.

use super::verdict::{reason, Part::*, Verdict};
use super::window::{self, WindowState};
use crate::message::MessageType;
use crate::pricing::{price, Pricing};
use crate::{ApiError, Millis};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TemplateStatus {
    Approved,
    Pending,
    Rejected,
    Paused,
    Disabled,
    Other,
}

impl TemplateStatus {
    pub fn parse(s: &str) -> Self {
        match s {
            "APPROVED" => TemplateStatus::Approved,
            "PENDING" | "IN_APPEAL" => TemplateStatus::Pending,
            "REJECTED" => TemplateStatus::Rejected,
            "PAUSED" => TemplateStatus::Paused,
            "DISABLED" => TemplateStatus::Disabled,
            _ => TemplateStatus::Other,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateFacts {
    pub name: String,
    pub language: String,
    pub status: TemplateStatus,
    /// lowercase: `marketing`, `utility`, `authentication`.
    pub category: &'static str,
    /// For a paused template, when the pause ends.
    pub paused_until: Option<Millis>,
}

/// What the engine needs to know to decide one send.
#[derive(Debug, Clone)]
pub struct SendFacts {
    pub now: Millis,
    pub msg_type: MessageType,
    pub window: WindowState,
    pub recipient_on_whatsapp: bool,
    pub recipient_is_sender: bool,
    /// The business number blocked this customer (Block Users API).
    pub recipient_blocked: bool,
    /// `Some` when the message is a template: the stored template with that name and language,
    /// or `None` inside when none exists.
    pub template: Option<Option<TemplateFacts>>,
    /// The send's template parameters checked against the template (132000, 132012, 132005…).
    pub template_render_error: Option<ApiError>,
    /// Tenant setting: answer refusals that Meta reports asynchronously on the API call instead.
    pub sync_refusals: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Accepted; statuses `sent` then `delivered` follow.
    Accept,
    /// Accepted with a wamid, then a `failed` status with this error (Meta's channel).
    FailAsync(ApiError),
    /// Refused on the API call.
    Refuse(ApiError),
}

#[derive(Debug, Clone)]
pub struct Decision {
    pub outcome: Outcome,
    pub verdicts: Vec<Verdict>,
    pub pricing: Pricing,
    /// The window state after this message (a reply may start the free entry point).
    pub window_after: WindowState,
}

impl Decision {
    pub fn accepted(&self) -> bool {
        !matches!(self.outcome, Outcome::Refuse(_))
    }
}

/// An asynchronous failure, or a synchronous one when the tenant asked for that.
fn fail(sync: bool, e: ApiError) -> Outcome {
    if sync {
        Outcome::Refuse(e)
    } else {
        Outcome::FailAsync(e)
    }
}

/// The engine's rules, as verdicts name them (the compliance rules' names are in their modules).
pub const RECIPIENT_RULE: &str = "recipient";
pub const BLOCKED_USER_RULE: &str = "blocked_user";
pub const TEMPLATE_STATUS_RULE: &str = "template_status";
pub const TEMPLATE_PARAMETERS_RULE: &str = "template_parameters";
pub const RECIPIENT_ON_WHATSAPP_RULE: &str = "recipient_on_whatsapp";

pub fn decide_send(f: &SendFacts) -> Decision {
    let now = f.now;
    let mut verdicts = Vec::new();
    let mut outcome = Outcome::Accept;
    let in_window = f.window.is_open(now);
    let in_fep = f.window.fep_open(now);
    let is_template = f.msg_type == MessageType::Template;

    // 1. A number cannot message itself.
    if f.recipient_is_sender {
        let e = ApiError::recipient_is_sender(
            "`to` is the sending business number; send to a customer's number.",
        );
        verdicts.push(Verdict::refuse(RECIPIENT_RULE, e.code, e.details.clone()));
        outcome = Outcome::Refuse(e);
    }

    // 1b. A customer the business blocked cannot be messaged until unblocked (§13.5).
    if f.recipient_blocked {
        let e = ApiError::new(400, 130403, "Business has blocked this user", "This number blocked the recipient; unblock them with DELETE /{phone-number-id}/block_users to message them again.");
        verdicts.push(Verdict::refuse(
            BLOCKED_USER_RULE,
            e.code,
            e.details.clone(),
        ));
        set(&mut outcome, Outcome::Refuse(e));
    }

    // 2. Templates: only APPROVED ones may be sent.
    let mut template_category: Option<&'static str> = None;
    if let Some(t) = &f.template {
        let rule = TEMPLATE_STATUS_RULE;
        match t {
            None => {
                let e = ApiError::template_not_found(
                    "No template with this name exists in this language for the WhatsApp Business Account; check `template.name` and `template.language.code`.",
                );
                verdicts.push(Verdict::refuse(rule, e.code, e.details.clone()));
                set(&mut outcome, Outcome::Refuse(e));
            }
            Some(t) => {
                template_category = Some(t.category);
                let refusal = match t.status {
                    TemplateStatus::Approved => None,
                    TemplateStatus::Paused => Some(ApiError::template_paused(format!(
                        "Template '{}' ({}) is paused for low quality{}; improve it or wait for the pause to end.",
                        t.name,
                        t.language,
                        t.paused_until.map(|u| format!(" until {}", u / 1000)).unwrap_or_default()
                    ))),
                    TemplateStatus::Disabled => Some(ApiError::template_disabled(format!(
                        "Template '{}' ({}) was disabled after repeated low-quality pauses; create a new template.",
                        t.name, t.language
                    ))),
                    _ => Some(ApiError::template_not_found(format!(
                        "Template '{}' ({}) is not approved; only APPROVED templates can be sent.",
                        t.name, t.language
                    ))),
                };
                match refusal {
                    None => {
                        verdicts.push(Verdict::pass(
                            rule,
                            reason(&[Text("template '"), Text(&t.name), Text("' is APPROVED")]),
                        ));
                        match &f.template_render_error {
                            None => verdicts.push(Verdict::pass(
                                TEMPLATE_PARAMETERS_RULE,
                                "the parameters match the template",
                            )),
                            Some(e) => {
                                verdicts.push(Verdict::refuse(
                                    TEMPLATE_PARAMETERS_RULE,
                                    e.code,
                                    e.details.clone(),
                                ));
                                set(&mut outcome, Outcome::Refuse(e.clone()));
                            }
                        }
                    }
                    Some(e) => {
                        verdicts.push(Verdict::refuse(rule, e.code, e.details.clone()));
                        set(&mut outcome, Outcome::Refuse(e));
                    }
                }
            }
        }
    }

    // 3. The customer-service window: outside it, only templates.
    if is_template {
        verdicts.push(Verdict::pass(
            window::RULE,
            if in_window {
                "window open; templates are always allowed"
            } else {
                "window closed; templates are allowed outside it"
            },
        ));
    } else if in_window {
        let closes = f.window.closes_at().unwrap_or(now);
        verdicts.push(Verdict::pass(
            window::RULE,
            reason(&[Text("window open until "), Int(closes / 1000)]),
        ));
    } else {
        let details = match f.window.closes_at() {
            Some(c) => format!(
                "The customer's last message is more than 24 hours old (the window closed at {}); only an approved template can be sent now.",
                c / 1000
            ),
            None => "The customer has never messaged this number, so no customer-service window is open; only an approved template can be sent.".to_string(),
        };
        let e = ApiError::reengagement(details);
        verdicts.push(Verdict::refuse(window::RULE, e.code, e.details.clone()));
        set(&mut outcome, fail(f.sync_refusals, e));
    }

    // 4. The recipient must be a WhatsApp user.
    if f.recipient_on_whatsapp {
        verdicts.push(Verdict::pass(
            RECIPIENT_ON_WHATSAPP_RULE,
            "the recipient is a WhatsApp user",
        ));
    } else {
        let e = ApiError::undeliverable("The recipient is not a WhatsApp user (or has not accepted the terms); check the number.");
        verdicts.push(Verdict::refuse(
            RECIPIENT_ON_WHATSAPP_RULE,
            e.code,
            e.details.clone(),
        ));
        set(&mut outcome, fail(f.sync_refusals, e));
    }

    let window_after = if matches!(outcome, Outcome::Accept) {
        f.window.after_business_message(now)
    } else {
        f.window
    };
    // The answer that starts a free entry point is itself free.
    let pricing = price(
        template_category,
        in_window,
        in_fep || window_after.fep_open(now),
    );
    Decision {
        outcome,
        verdicts,
        pricing,
        window_after,
    }
}

/// Keep the first refusal: a synchronous refusal outranks an asynchronous failure.
fn set(current: &mut Outcome, new: Outcome) {
    match (&*current, &new) {
        (Outcome::Accept, _) => *current = new,
        (Outcome::FailAsync(_), Outcome::Refuse(_)) => *current = new,
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DAY, HOUR};

    const T0: Millis = 1_700_000_000_000;

    fn facts(msg_type: MessageType) -> SendFacts {
        SendFacts {
            now: T0,
            msg_type,
            window: WindowState::default(),
            recipient_on_whatsapp: true,
            recipient_is_sender: false,
            recipient_blocked: false,
            template: None,
            template_render_error: None,
            sync_refusals: false,
        }
    }

    fn approved(category: &'static str) -> Option<Option<TemplateFacts>> {
        Some(Some(TemplateFacts {
            name: "t".into(),
            language: "en_US".into(),
            status: TemplateStatus::Approved,
            category,
            paused_until: None,
        }))
    }

    #[test]
    fn text_inside_window_is_accepted_and_free() {
        let mut f = facts(MessageType::Text);
        f.window = WindowState::default().after_inbound(T0 - HOUR, false);
        let d = decide_send(&f);
        assert_eq!(d.outcome, Outcome::Accept);
        assert!(!d.pricing.billable);
        // the window's pass says until when (seconds)
        let window = d.verdicts.iter().find(|v| v.rule == window::RULE).unwrap();
        assert_eq!(window.details, "window open until 1700082800");
    }

    #[test]
    fn text_outside_window_fails_async_with_131047() {
        let d = decide_send(&facts(MessageType::Text));
        match d.outcome {
            Outcome::FailAsync(e) => assert_eq!(e.code, 131047),
            o => panic!("{o:?}"),
        }
    }

    #[test]
    fn text_outside_window_refused_when_sync() {
        let mut f = facts(MessageType::Image);
        f.sync_refusals = true;
        f.window = WindowState::default().after_inbound(T0 - DAY, false);
        match decide_send(&f).outcome {
            Outcome::Refuse(e) => assert_eq!(e.code, 131047),
            o => panic!("{o:?}"),
        }
    }

    #[test]
    fn approved_template_outside_window_is_accepted_and_billed() {
        let mut f = facts(MessageType::Template);
        f.template = approved("marketing");
        let d = decide_send(&f);
        assert_eq!(d.outcome, Outcome::Accept);
        assert!(d.pricing.billable);
        assert_eq!(d.pricing.category, "marketing");
        assert!(d
            .verdicts
            .iter()
            .any(|v| v.details == "template 't' is APPROVED"));
    }

    #[test]
    fn missing_template_refused_132001() {
        let mut f = facts(MessageType::Template);
        f.template = Some(None);
        match decide_send(&f).outcome {
            Outcome::Refuse(e) => assert_eq!(e.code, 132001),
            o => panic!("{o:?}"),
        }
    }

    #[test]
    fn paused_and_disabled_templates_refused() {
        for (status, code) in [
            (TemplateStatus::Paused, 132015),
            (TemplateStatus::Disabled, 132016),
            (TemplateStatus::Pending, 132001),
        ] {
            let mut f = facts(MessageType::Template);
            f.template = Some(Some(TemplateFacts {
                name: "t".into(),
                language: "en".into(),
                status,
                category: "utility",
                paused_until: None,
            }));
            match decide_send(&f).outcome {
                Outcome::Refuse(e) => assert_eq!(e.code, code),
                o => panic!("{o:?}"),
            }
        }
    }

    #[test]
    fn not_on_whatsapp_fails_async_131026() {
        let mut f = facts(MessageType::Template);
        f.template = approved("utility");
        f.recipient_on_whatsapp = false;
        match decide_send(&f).outcome {
            Outcome::FailAsync(e) => assert_eq!(e.code, 131026),
            o => panic!("{o:?}"),
        }
    }

    #[test]
    fn sync_refusal_outranks_async_failure() {
        let mut f = facts(MessageType::Text);
        f.recipient_is_sender = true;
        match decide_send(&f).outcome {
            Outcome::Refuse(e) => assert_eq!(e.code, 131021),
            o => panic!("{o:?}"),
        }
        // both verdicts are reported
        assert_eq!(
            decide_send(&f)
                .verdicts
                .iter()
                .filter(|v| v.code.is_some())
                .count(),
            2
        );
    }

    #[test]
    fn reply_to_referral_starts_fep_and_is_free() {
        let mut f = facts(MessageType::Text);
        f.window = WindowState::default().after_inbound(T0 - HOUR, true);
        let d = decide_send(&f);
        assert_eq!(d.outcome, Outcome::Accept);
        assert_eq!(d.window_after.fep_until, Some(T0 + 72 * HOUR));
        assert_eq!(d.pricing.pricing_type, "free_entry_point");
        // a template two days later: window closed, FEP open → free entry point pricing
        let mut f2 = facts(MessageType::Template);
        f2.now = T0 + 48 * HOUR;
        f2.window = d.window_after;
        f2.template = approved("marketing");
        let d2 = decide_send(&f2);
        assert_eq!(d2.pricing.pricing_type, "free_entry_point");
        // …but free-form is refused: the FEP does not reopen the window
        let mut f3 = f2.clone();
        f3.msg_type = MessageType::Text;
        f3.template = None;
        assert!(matches!(decide_send(&f3).outcome, Outcome::FailAsync(_)));
    }
}
