//! The customer-service window and the free entry point (cloud-api-facts.md §4).
//!
//! A window per (business number, customer) opens at each inbound message and lasts 24 hours
//! from the customer's *last* message. Inside it every message type may be sent; outside it only
//! templates. A customer who arrives from a Click-to-WhatsApp ad (an inbound with `referral`)
//! opens a normal window; if the business answers within that 24 hours, a 72-hour free entry
//! point (FEP) starts at the answer, during which every message is free. The FEP changes
//! pricing only: after the window closes only templates may still be sent.

use crate::{Millis, DAY, HOUR};

pub const RULE: &str = "customer_service_window";
pub const WINDOW: Millis = DAY;
pub const FREE_ENTRY_POINT: Millis = 72 * HOUR;

/// What the store knows about one (number, customer) pair.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WindowState {
    /// Time of the customer's last inbound message, if any.
    pub last_inbound_at: Option<Millis>,
    /// Time of the last inbound that came from an ad (referral), not yet answered.
    pub referral_at: Option<Millis>,
    /// End of the 72 h free entry point, when one was started.
    pub fep_until: Option<Millis>,
}

impl WindowState {
    /// Is the customer-service window open at `now`? The window is half-open: it is closed at
    /// exactly 24 h after the last inbound.
    pub fn is_open(&self, now: Millis) -> bool {
        matches!(self.last_inbound_at, Some(t) if now >= t && now < t + WINDOW)
    }

    /// When the window closes (if it was ever opened).
    pub fn closes_at(&self) -> Option<Millis> {
        self.last_inbound_at.map(|t| t + WINDOW)
    }

    pub fn fep_open(&self, now: Millis) -> bool {
        matches!(self.fep_until, Some(t) if now < t)
    }

    /// A business message sent at `now`: returns the state after it, starting the free entry
    /// point when this is the first answer within 24 h of an ad referral.
    pub fn after_business_message(&self, now: Millis) -> WindowState {
        let mut next = *self;
        if let Some(r) = self.referral_at {
            if now >= r && now < r + WINDOW && !self.fep_open(now) {
                next.fep_until = Some(now + FREE_ENTRY_POINT);
                next.referral_at = None;
            } else if now >= r + WINDOW {
                next.referral_at = None;
            }
        }
        next
    }

    /// An inbound message at `now` (with or without an ad referral).
    pub fn after_inbound(&self, now: Millis, referral: bool) -> WindowState {
        let mut next = *self;
        next.last_inbound_at = Some(now);
        if referral {
            next.referral_at = Some(now);
        }
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: Millis = 1_700_000_000_000;

    #[test]
    fn never_opened_is_closed() {
        assert!(!WindowState::default().is_open(T0));
    }

    #[test]
    fn open_right_after_inbound_and_until_just_before_24h() {
        let w = WindowState::default().after_inbound(T0, false);
        assert!(w.is_open(T0));
        assert!(w.is_open(T0 + WINDOW - 1));
        assert!(!w.is_open(T0 + WINDOW), "closed at exactly 24 h");
    }

    #[test]
    fn each_inbound_resets_the_window() {
        let w = WindowState::default()
            .after_inbound(T0, false)
            .after_inbound(T0 + 20 * HOUR, false);
        assert!(w.is_open(T0 + 30 * HOUR));
        assert!(!w.is_open(T0 + 44 * HOUR));
    }

    #[test]
    fn referral_answered_within_24h_starts_72h_fep() {
        let w = WindowState::default().after_inbound(T0, true);
        let w = w.after_business_message(T0 + HOUR);
        assert_eq!(w.fep_until, Some(T0 + HOUR + FREE_ENTRY_POINT));
        assert!(w.fep_open(T0 + 70 * HOUR));
        assert!(!w.fep_open(T0 + HOUR + FREE_ENTRY_POINT));
        // the window itself still closes after 24 h
        assert!(!w.is_open(T0 + 25 * HOUR));
    }

    #[test]
    fn referral_answered_late_starts_no_fep() {
        let w = WindowState::default()
            .after_inbound(T0, true)
            .after_business_message(T0 + WINDOW);
        assert_eq!(w.fep_until, None);
        assert_eq!(w.referral_at, None);
    }

    #[test]
    fn second_answer_does_not_extend_fep() {
        let w = WindowState::default()
            .after_inbound(T0, true)
            .after_business_message(T0 + HOUR);
        let w2 = w.after_business_message(T0 + 2 * HOUR);
        assert_eq!(w.fep_until, w2.fep_until);
    }
}
