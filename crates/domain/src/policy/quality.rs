//! Quality rating of a phone number (and, with the same function, of a template)
//! (cloud-api-facts.md §6, §3.9).
//!
//! Meta rates a number `GREEN` (high), `YELLOW` (medium) or `RED` (low) from what customers did
//! with its messages over the **past 7 days, weighted by recency**: blocks, reports and their
//! reasons. Meta publishes neither the formula nor the thresholds (UNCONFIRMED), so greenlight
//! uses this documented model, every number of which is a tenant setting
//! ([`QualityThresholds`]):
//!
//! - Every feedback event and every delivery is weighted by its age with a **linear decay**
//!   over the window: weight `1` now, `1/2` at 3.5 days, `0` at 7 days and older (half-open:
//!   an event exactly 7 days old no longer counts). Events stamped in the future weigh `1`.
//! - An event's weight is also multiplied by its kind (`block_weight` 1.0, `report_weight`
//!   2.0) and, when its reason is one of `reason_multipliers` (default `spam`,
//!   `didnt_sign_up`, `offensive`: 1.5), by that multiplier.
//! - The **weighted negative rate** = Σ weighted feedback / max(Σ weighted deliveries,
//!   `min_delivered`). Deliveries and feedback decay alike, so a steady 3 % block rate reads as
//!   3 % whatever the volume's shape. The `min_delivered` floor (default 100) is the minimum
//!   sample: a handful of blocks on a handful of messages is diluted as if 100 had been
//!   delivered, yet enough blocks still turn a small sender RED.
//! - rate ≥ `red_rate` (5 %) → `RED`; ≥ `yellow_rate` (2 %) → `YELLOW`; else `GREEN`.
//!   With no delivery and no feedback inside the window the rating is `UNKNOWN` (Meta's "not yet
//!   determined"; templates start there too).
//!
//! Template quality uses [`rating`] over the template's own feedback and deliveries; after an
//! unpause the store passes only feedback since the unpause (Meta: "the quality rating resets
//! from recent feedback"; see `template_pausing`).

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;

use crate::{Millis, DAY};

pub const RULE: &str = "quality_rating";
/// Meta: "the past 7 days".
pub const WINDOW: Millis = 7 * DAY;

/// `quality_rating` of a number / `quality_score` of a template.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum QualityRating {
    Green,
    Yellow,
    Red,
    Unknown,
}

impl QualityRating {
    pub fn as_str(self) -> &'static str {
        match self {
            QualityRating::Green => "GREEN",
            QualityRating::Yellow => "YELLOW",
            QualityRating::Red => "RED",
            QualityRating::Unknown => "UNKNOWN",
        }
    }

    /// Meta's strings; `NA` (seen on numbers) reads as `UNKNOWN`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "GREEN" => Some(QualityRating::Green),
            "YELLOW" => Some(QualityRating::Yellow),
            "RED" => Some(QualityRating::Red),
            "UNKNOWN" | "NA" => Some(QualityRating::Unknown),
            _ => None,
        }
    }
}

/// What a customer did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FeedbackKind {
    Block,
    Report,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedbackEvent {
    pub at: Millis,
    pub kind: FeedbackKind,
    /// The customer's reason, e.g. `spam`, `didnt_sign_up`, `no_longer_needed`, `offensive`.
    #[serde(default)]
    pub reason: Option<String>,
}

/// Thresholds and weights of the rating model; a tenant setting (`ComplianceSettings.quality`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct QualityThresholds {
    /// Weighted negative rate at or above which the rating is YELLOW (default 0.02).
    pub yellow_rate: f64,
    /// Weighted negative rate at or above which the rating is RED (default 0.05).
    pub red_rate: f64,
    /// Minimum sample: the denominator is never below this many (weighted) deliveries.
    pub min_delivered: f64,
    /// Window length in milliseconds (default 7 days).
    pub window_ms: Millis,
    pub block_weight: f64,
    pub report_weight: f64,
    /// Multipliers by reason (lowercase).
    pub reason_multipliers: BTreeMap<String, f64>,
}

impl Default for QualityThresholds {
    fn default() -> Self {
        QualityThresholds {
            yellow_rate: 0.02,
            red_rate: 0.05,
            min_delivered: 100.0,
            window_ms: WINDOW,
            block_weight: 1.0,
            report_weight: 2.0,
            reason_multipliers: [("spam", 1.5), ("didnt_sign_up", 1.5), ("offensive", 1.5)]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
        }
    }
}

/// Recency weight of something that happened at `at`: linear from 1 (now) to 0 (`window` ago).
pub fn recency_weight(at: Millis, now: Millis, window: Millis) -> f64 {
    if window <= 0 {
        return 0.0;
    }
    let age = now - at;
    if age <= 0 {
        1.0
    } else if age >= window {
        0.0
    } else {
        (window - age) as f64 / window as f64
    }
}

/// The numbers behind a rating, for `details` and the dashboard.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QualityScore {
    pub weighted_negative: f64,
    pub weighted_delivered: f64,
    /// weighted_negative / max(weighted_delivered, min_delivered).
    pub rate: f64,
    pub rating: QualityRating,
}

/// The rating with the numbers behind it. `delivered` is a series of `(time, count)` buckets
/// (e.g. one row per hour from the store); only what falls inside the window counts.
pub fn score(
    events: &[FeedbackEvent],
    delivered: &[(Millis, u32)],
    now: Millis,
    t: &QualityThresholds,
) -> QualityScore {
    let mut neg = 0.0;
    let mut any_inside = false;
    for e in events {
        let w = recency_weight(e.at, now, t.window_ms);
        if w <= 0.0 {
            continue;
        }
        any_inside = true;
        let kind = match e.kind {
            FeedbackKind::Block => t.block_weight,
            FeedbackKind::Report => t.report_weight,
        };
        let reason = e
            .reason
            .as_deref()
            .and_then(|r| t.reason_multipliers.get(&r.to_ascii_lowercase()))
            .copied()
            .unwrap_or(1.0);
        neg += w * kind * reason;
    }
    let mut del = 0.0;
    for &(at, n) in delivered {
        let w = recency_weight(at, now, t.window_ms);
        if w > 0.0 && n > 0 {
            any_inside = true;
            del += w * f64::from(n);
        }
    }
    if !any_inside {
        return QualityScore {
            weighted_negative: 0.0,
            weighted_delivered: 0.0,
            rate: 0.0,
            rating: QualityRating::Unknown,
        };
    }
    let denom = del.max(t.min_delivered).max(f64::MIN_POSITIVE);
    let rate = neg / denom;
    let rating = if rate >= t.red_rate {
        QualityRating::Red
    } else if rate >= t.yellow_rate {
        QualityRating::Yellow
    } else {
        QualityRating::Green
    };
    QualityScore {
        weighted_negative: neg,
        weighted_delivered: del,
        rate,
        rating,
    }
}

/// GREEN / YELLOW / RED / UNKNOWN at `now` (see the module doc for the model).
pub fn rating(
    events: &[FeedbackEvent],
    delivered: &[(Millis, u32)],
    now: Millis,
    thresholds: &QualityThresholds,
) -> QualityRating {
    score(events, delivered, now, thresholds).rating
}

/// `event` of a `phone_number_quality_update` for a rating change, if any. Meta's current
/// events are only `ONBOARDING` and `THROUGHPUT_UPGRADE`; the legacy `FLAGGED` (into RED) and
/// `UNFLAGGED` (out of RED) are what greenlight sends for quality changes (UNCONFIRMED whether
/// Meta still sends them). GREEN ↔ YELLOW changes send nothing.
pub fn number_quality_event(old: QualityRating, new: QualityRating) -> Option<&'static str> {
    match (old == QualityRating::Red, new == QualityRating::Red) {
        (false, true) => Some("FLAGGED"),
        (true, false) => Some("UNFLAGGED"),
        _ => None,
    }
}

/// `value` of a `phone_number_quality_update` webhook (§10.6; fixture
/// `phone-number-quality.json`): `current_limit` is the tier string.
pub fn phone_number_quality_update_value(
    display_phone_number: &str,
    event: &str,
    current_limit: &str,
) -> Value {
    json!({
        "display_phone_number": display_phone_number,
        "event": event,
        "current_limit": current_limit,
    })
}

/// `value` of a `message_template_quality_update` webhook (fixture `template-quality.json`).
pub fn template_quality_update_value(
    template_id: i64,
    name: &str,
    language: &str,
    previous: QualityRating,
    new: QualityRating,
) -> Value {
    json!({
        "previous_quality_score": previous.as_str(),
        "new_quality_score": new.as_str(),
        "message_template_id": template_id,
        "message_template_name": name,
        "message_template_language": language,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::HOUR;

    const T0: Millis = 1_700_000_000_000;

    fn blocks(n: usize, at: Millis) -> Vec<FeedbackEvent> {
        (0..n)
            .map(|_| FeedbackEvent {
                at,
                kind: FeedbackKind::Block,
                reason: None,
            })
            .collect()
    }

    #[test]
    fn nothing_in_window_is_unknown() {
        let t = QualityThresholds::default();
        assert_eq!(rating(&[], &[], T0, &t), QualityRating::Unknown);
        // everything exactly 7 days old no longer counts
        assert_eq!(
            rating(&blocks(50, T0 - WINDOW), &[(T0 - WINDOW, 1000)], T0, &t),
            QualityRating::Unknown
        );
    }

    #[test]
    fn clean_traffic_is_green() {
        let t = QualityThresholds::default();
        assert_eq!(
            rating(&[], &[(T0 - HOUR, 1000)], T0, &t),
            QualityRating::Green
        );
    }

    #[test]
    fn thresholds_at_2_and_5_percent() {
        let t = QualityThresholds::default();
        let d = [(T0, 1000)];
        assert_eq!(rating(&blocks(19, T0), &d, T0, &t), QualityRating::Green);
        assert_eq!(rating(&blocks(20, T0), &d, T0, &t), QualityRating::Yellow);
        assert_eq!(rating(&blocks(49, T0), &d, T0, &t), QualityRating::Yellow);
        assert_eq!(rating(&blocks(50, T0), &d, T0, &t), QualityRating::Red);
    }

    #[test]
    fn minimum_sample_dilutes_small_volumes() {
        let t = QualityThresholds::default();
        // 10 delivered, 1 block: 1/100 = 1 % (not 10 %) → GREEN
        assert_eq!(
            rating(&blocks(1, T0), &[(T0, 10)], T0, &t),
            QualityRating::Green
        );
        // 5 blocks on 10 delivered: 5/100 → RED
        assert_eq!(
            rating(&blocks(5, T0), &[(T0, 10)], T0, &t),
            QualityRating::Red
        );
    }

    #[test]
    fn reports_and_spam_reasons_weigh_more() {
        let t = QualityThresholds::default();
        let d = [(T0, 1000)];
        let reports: Vec<_> = (0..10)
            .map(|_| FeedbackEvent {
                at: T0,
                kind: FeedbackKind::Report,
                reason: None,
            })
            .collect();
        assert_eq!(rating(&reports, &d, T0, &t), QualityRating::Yellow); // 20/1000
        let spam: Vec<_> = (0..17)
            .map(|_| FeedbackEvent {
                at: T0,
                kind: FeedbackKind::Report,
                reason: Some("SPAM".into()),
            })
            .collect();
        assert_eq!(rating(&spam, &d, T0, &t), QualityRating::Red); // 51/1000
    }

    #[test]
    fn old_feedback_decays() {
        let t = QualityThresholds::default();
        // 60 blocks and 1000 deliveries 3.5 days ago, 1000 clean deliveries now:
        // 30 / (500 + 1000) = 2 % → YELLOW; three days later the bad day weighs 1/14 → GREEN
        let ev = blocks(60, T0 - 84 * HOUR);
        let d = [(T0 - 84 * HOUR, 1000), (T0, 1000)];
        assert_eq!(rating(&ev, &d, T0, &t), QualityRating::Yellow);
        let later = T0 + 72 * HOUR;
        assert_eq!(rating(&ev, &d, later, &t), QualityRating::Green);
    }

    #[test]
    fn recency_weight_edges() {
        assert_eq!(recency_weight(T0, T0, WINDOW), 1.0);
        assert_eq!(recency_weight(T0 + 5, T0, WINDOW), 1.0);
        assert_eq!(recency_weight(T0 - WINDOW / 2, T0, WINDOW), 0.5);
        assert!(recency_weight(T0 - WINDOW + 1, T0, WINDOW) > 0.0);
        assert_eq!(recency_weight(T0 - WINDOW, T0, WINDOW), 0.0);
    }

    #[test]
    fn red_transitions_flag_and_unflag() {
        use QualityRating::*;
        assert_eq!(number_quality_event(Green, Red), Some("FLAGGED"));
        assert_eq!(number_quality_event(Red, Yellow), Some("UNFLAGGED"));
        assert_eq!(number_quality_event(Green, Yellow), None);
        assert_eq!(QualityRating::parse("NA"), Some(Unknown));
        assert_eq!(serde_json::to_value(Red).unwrap(), "RED");
    }

    #[test]
    fn template_quality_value_matches_fixture_shape() {
        let v = template_quality_update_value(
            806312974732579,
            "welcome_template",
            "en-US",
            QualityRating::Green,
            QualityRating::Yellow,
        );
        assert_eq!(
            v,
            json!({
                "previous_quality_score": "GREEN",
                "new_quality_score": "YELLOW",
                "message_template_id": 806312974732579i64,
                "message_template_name": "welcome_template",
                "message_template_language": "en-US"
            })
        );
    }

    #[test]
    fn thresholds_deserialize_partially() {
        let t: QualityThresholds = serde_json::from_str(r#"{"red_rate":0.1}"#).unwrap();
        assert_eq!(t.red_rate, 0.1);
        assert_eq!(t.yellow_rate, 0.02);
    }
}
