//! Template pausing for low quality (cloud-api-facts.md §3.9, §10.6).
//!
//! When a template's quality turns RED ("Active – Low quality"): the **first** time it is paused
//! for **3 hours** (`FIRST_PAUSE`), the **second** time for **6 hours** (`SECOND_PAUSE`), the
//! **third** time it is **disabled** for good (`DISABLED`; sends answer 132016). A pause ends by
//! time (`UNPAUSE`), after which the quality rating resets from recent feedback: the store rates
//! the template from feedback after [`TemplatePauseState::quality_since`] only, so the feedback
//! that caused the pause cannot pause it again at once. Sending a paused template answers 132015
//! (in `engine`).
//!
//! Webhooks (`message_template_status_update`): a pause is `event: "PAUSED"`, a disable
//! `event: "DISABLED"` with `disable_info.disable_date`, and an unpause `event: "APPROVED"`
//! (a paused template "changes to approved automatically"), each with `other_info.title` =
//! `FIRST_PAUSE` | `SECOND_PAUSE` | `DISABLED` | `UNPAUSE` and a description. Meta's exact
//! descriptions and whether `disable_date` is a date string or unix seconds are UNCONFIRMED
//! (greenlight writes unix seconds as a string). `RATE_LIMITING_PAUSE` (pacing holds) is not
//! modelled.
//!
//! Quality changes during a pause are ignored; the store calls [`tick`] when a pause falls due
//! (and before [`on_quality_change`]), so every pause has its `UNPAUSE`.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::quality::QualityRating;
use crate::{Millis, HOUR};

pub const FIRST_PAUSE: Millis = 3 * HOUR;
pub const SECOND_PAUSE: Millis = 6 * HOUR;

/// What the store keeps per template.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TemplatePauseState {
    /// Pauses so far (0, 1, 2; the third RED disables).
    pub pause_count: u8,
    /// End of the current pause, while paused.
    pub paused_until: Option<Millis>,
    /// When the template was disabled for quality.
    pub disabled_at: Option<Millis>,
    /// Rate quality from feedback at or after this instant (the last unpause).
    pub quality_since: Option<Millis>,
}

impl TemplatePauseState {
    pub fn is_paused(&self, now: Millis) -> bool {
        self.disabled_at.is_none() && matches!(self.paused_until, Some(u) if now < u)
    }
    pub fn is_disabled(&self) -> bool {
        self.disabled_at.is_some()
    }
    /// The template `status` this state implies (`APPROVED` when neither).
    pub fn status(&self, now: Millis) -> &'static str {
        if self.is_disabled() {
            "DISABLED"
        } else if self.is_paused(now) {
            "PAUSED"
        } else {
            "APPROVED"
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PauseEvent {
    FirstPause { until: Millis },
    SecondPause { until: Millis },
    Disabled { at: Millis },
    Unpause { at: Millis },
}

impl PauseEvent {
    /// `other_info.title`.
    pub fn title(&self) -> &'static str {
        match self {
            PauseEvent::FirstPause { .. } => "FIRST_PAUSE",
            PauseEvent::SecondPause { .. } => "SECOND_PAUSE",
            PauseEvent::Disabled { .. } => "DISABLED",
            PauseEvent::Unpause { .. } => "UNPAUSE",
        }
    }

    /// The webhook `event`.
    pub fn event(&self) -> &'static str {
        match self {
            PauseEvent::FirstPause { .. } | PauseEvent::SecondPause { .. } => "PAUSED",
            PauseEvent::Disabled { .. } => "DISABLED",
            PauseEvent::Unpause { .. } => "APPROVED",
        }
    }

    /// `other_info.description`.
    pub fn description(&self) -> String {
        match self {
            PauseEvent::FirstPause { until } => format!(
                "Your message template has been paused for 3 hours until {} because of low quality.",
                until / 1000
            ),
            PauseEvent::SecondPause { until } => format!(
                "Your message template has been paused for 6 hours until {} because of low quality. If quality stays low it will be disabled.",
                until / 1000
            ),
            PauseEvent::Disabled { .. } => "Your message template has been disabled because of repeated low quality; create a new template.".to_string(),
            PauseEvent::Unpause { .. } => "Your message template has been unpaused and can be sent again.".to_string(),
        }
    }

    /// `value` of the `message_template_status_update` webhook.
    pub fn status_update_value(
        &self,
        template_id: i64,
        name: &str,
        language: &str,
        category: &str,
    ) -> Value {
        let mut v = json!({
            "event": self.event(),
            "message_template_id": template_id,
            "message_template_name": name,
            "message_template_language": language,
            "reason": null,
            "message_template_category": category.to_ascii_uppercase(),
            "other_info": { "title": self.title(), "description": self.description() },
        });
        if let PauseEvent::Disabled { at } = self {
            v["disable_info"] = json!({ "disable_date": (at / 1000).to_string() });
        }
        v
    }
}

/// A new quality rating for the template at `now`.
pub fn on_quality_change(
    state: TemplatePauseState,
    new_rating: QualityRating,
    now: Millis,
) -> (TemplatePauseState, Option<PauseEvent>) {
    if new_rating != QualityRating::Red || state.is_disabled() || state.is_paused(now) {
        return (state, None);
    }
    let mut next = state;
    next.pause_count = state.pause_count.saturating_add(1);
    match next.pause_count {
        1 => {
            let until = now + FIRST_PAUSE;
            next.paused_until = Some(until);
            (next, Some(PauseEvent::FirstPause { until }))
        }
        2 => {
            let until = now + SECOND_PAUSE;
            next.paused_until = Some(until);
            (next, Some(PauseEvent::SecondPause { until }))
        }
        _ => {
            next.paused_until = None;
            next.disabled_at = Some(now);
            (next, Some(PauseEvent::Disabled { at: now }))
        }
    }
}

/// Ends a pause that fell due by `now`.
pub fn tick(state: TemplatePauseState, now: Millis) -> (TemplatePauseState, Option<PauseEvent>) {
    match state.paused_until {
        Some(until) if state.disabled_at.is_none() && now >= until => {
            let mut next = state;
            next.paused_until = None;
            next.quality_since = Some(until);
            (next, Some(PauseEvent::Unpause { at: until }))
        }
        _ => (state, None),
    }
}

/// When the next [`tick`] is due, for the scheduler.
pub fn next_due(state: &TemplatePauseState) -> Option<Millis> {
    if state.disabled_at.is_some() {
        None
    } else {
        state.paused_until
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use QualityRating::*;

    const T0: Millis = 1_700_000_000_000;

    #[test]
    fn ladder_3h_6h_disabled() {
        let s = TemplatePauseState::default();
        assert_eq!(s.status(T0), "APPROVED");
        let (s, e) = on_quality_change(s, Red, T0);
        assert_eq!(
            e,
            Some(PauseEvent::FirstPause {
                until: T0 + 3 * HOUR
            })
        );
        assert_eq!(s.status(T0), "PAUSED");
        assert_eq!(next_due(&s), Some(T0 + 3 * HOUR));

        // still paused a millisecond before the end; RED during a pause changes nothing
        assert_eq!(tick(s, T0 + 3 * HOUR - 1).1, None);
        assert_eq!(on_quality_change(s, Red, T0 + HOUR), (s, None));

        let (s, e) = tick(s, T0 + 3 * HOUR);
        assert_eq!(e, Some(PauseEvent::Unpause { at: T0 + 3 * HOUR }));
        assert_eq!(s.status(T0 + 3 * HOUR), "APPROVED");
        assert_eq!(s.quality_since, Some(T0 + 3 * HOUR));

        let t1 = T0 + 10 * HOUR;
        let (s, e) = on_quality_change(s, Red, t1);
        assert_eq!(
            e,
            Some(PauseEvent::SecondPause {
                until: t1 + 6 * HOUR
            })
        );
        let (s, e) = tick(s, t1 + 6 * HOUR);
        assert_eq!(e.unwrap().title(), "UNPAUSE");

        let t2 = t1 + 20 * HOUR;
        let (s, e) = on_quality_change(s, Red, t2);
        assert_eq!(e, Some(PauseEvent::Disabled { at: t2 }));
        assert_eq!(s.status(t2 + 1000 * HOUR), "DISABLED");
        assert_eq!(next_due(&s), None);
        // nothing moves a disabled template
        assert_eq!(on_quality_change(s, Red, t2 + HOUR), (s, None));
        assert_eq!(tick(s, t2 + HOUR), (s, None));
    }

    #[test]
    fn non_red_changes_do_nothing() {
        let s = TemplatePauseState::default();
        for r in [Green, Yellow, Unknown] {
            assert_eq!(on_quality_change(s, r, T0), (s, None));
        }
    }

    #[test]
    fn webhook_values() {
        let e = PauseEvent::FirstPause {
            until: T0 + 3 * HOUR,
        };
        let v = e.status_update_value(806312974732579, "promo", "en_US", "marketing");
        assert_eq!(v["event"], "PAUSED");
        assert_eq!(v["other_info"]["title"], "FIRST_PAUSE");
        assert_eq!(v["message_template_category"], "MARKETING");
        assert!(v.get("disable_info").is_none());
        let v = PauseEvent::Disabled { at: T0 }.status_update_value(1, "p", "en", "MARKETING");
        assert_eq!(v["event"], "DISABLED");
        assert_eq!(v["other_info"]["title"], "DISABLED");
        assert_eq!(v["disable_info"]["disable_date"], (T0 / 1000).to_string());
        let v = PauseEvent::Unpause { at: T0 }.status_update_value(1, "p", "en", "utility");
        assert_eq!(v["event"], "APPROVED");
        assert_eq!(v["other_info"]["title"], "UNPAUSE");
        assert_eq!(PauseEvent::SecondPause { until: 0 }.title(), "SECOND_PAUSE");
    }
}
