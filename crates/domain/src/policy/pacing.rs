//! Pacing: throughput per number and the pair rate limit per (number, customer)
//! (cloud-api-facts.md §5.3, §5.4).
//!
//! Both are token buckets ([`Bucket`]): `burst` tokens at most, refilled at `rate` tokens per
//! second, one token per message. A bucket starts full. Over any interval of `T` seconds a
//! bucket admits at most `burst + rate × T` messages, and a sender that keeps to the rate is
//! never refused.
//!
//! - **Throughput** ([`THROUGHPUT_RULE`]): 80 messages/s per number (`STANDARD`), 1,000 after
//!   the automatic upgrade (`HIGH`: portfolio TIER_UNLIMITED, ≥ 100K unique customers outside
//!   windows in 24 h, quality YELLOW or better), 20 for numbers shared with the WhatsApp
//!   Business app. Burst = one second's worth (80), so a sender that never puts more than 80
//!   messages in any one-second interval is never paced (PRODUCT.md). Meta counts inbound and
//!   outbound; the store may take a token for inbound messages too. Over → **130429**
//!   "Rate limit hit".
//! - **Pair limit** ([`PAIR_RULE`]): one message per 6 s to the same customer with bursts up to
//!   45 (rate 1/6 per second, burst 45: a burst of 20 costs a 2-minute cooldown, as Meta
//!   describes). Over → **131056** "(Business Account, Consumer Account) pair rate limit hit".
//! - HTTP status of both: sources disagree (Meta's older table: 400; a Go client: 429).
//!   greenlight answers **400** by default (Meta's own table, and the code is a WhatsApp
//!   business error, not a Graph rate limit), tenant setting
//!   `ComplianceSettings.rate_limit_http_status` (400 or 429). `details` carry the retry delay.
//!
//! The store holds one bucket per number and one per (number, customer), calls
//! [`Bucket::check`] (non-mutating) for both, and [`Bucket::try_take`] only once the send is
//! accepted, so a refused send consumes nothing.

use serde::{Deserialize, Serialize};

use super::messaging_limit::Tier;
use super::quality::QualityRating;
use super::verdict::Verdict;
use crate::{ApiError, Millis};

pub const THROUGHPUT_RULE: &str = "throughput";
pub const PAIR_RULE: &str = "pair_rate_limit";
pub const CODE_THROUGHPUT: i64 = 130_429;
pub const CODE_PAIR: i64 = 131_056;

pub const DEFAULT_MPS: f64 = 80.0;
pub const HIGH_MPS: f64 = 1_000.0;
pub const COEXISTENCE_MPS: f64 = 20.0;
/// One message every 6 seconds.
pub const PAIR_RATE_PER_SEC: f64 = 1.0 / 6.0;
pub const PAIR_BURST: f64 = 45.0;
/// Unique customers outside windows in 24 h required for the 1,000 mps upgrade.
pub const HIGH_THROUGHPUT_MIN_REACH: u64 = 100_000;

/// `throughput.level` of a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "UPPERCASE")]
pub enum ThroughputLevel {
    #[default]
    Standard,
    High,
    /// Coexistence with the WhatsApp Business app (fixed 20 mps); shown as `STANDARD`.
    Coexistence,
}

impl ThroughputLevel {
    pub fn mps(self) -> f64 {
        match self {
            ThroughputLevel::Standard => DEFAULT_MPS,
            ThroughputLevel::High => HIGH_MPS,
            ThroughputLevel::Coexistence => COEXISTENCE_MPS,
        }
    }
    /// Burst of the number's bucket: one second's worth.
    pub fn burst(self) -> f64 {
        self.mps()
    }
    /// The throughput verdict's details of a send within the level: "under N messages per
    /// second", a fixed text (one allocation fewer per send).
    pub fn under_text(self) -> &'static str {
        match self {
            ThroughputLevel::Standard => "under 80 messages per second",
            ThroughputLevel::High => "under 1000 messages per second",
            ThroughputLevel::Coexistence => "under 20 messages per second",
        }
    }
    /// `GET /{phone-number-id}?fields=throughput` → `{"throughput":{"level": …}}`.
    pub fn as_str(self) -> &'static str {
        match self {
            ThroughputLevel::High => "HIGH",
            _ => "STANDARD",
        }
    }
}

/// Does a number qualify for the automatic 1,000 mps upgrade (§5.3)?
pub fn qualifies_for_high_throughput(
    tier: Tier,
    distinct_reached_in_24h: u64,
    quality: QualityRating,
) -> bool {
    tier == Tier::Unlimited
        && distinct_reached_in_24h >= HIGH_THROUGHPUT_MIN_REACH
        && matches!(quality, QualityRating::Green | QualityRating::Yellow)
}

/// A token bucket. Serializable so the store can keep it in a row.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Bucket {
    pub tokens: f64,
    pub updated_at: Millis,
}

impl Bucket {
    /// A full bucket.
    pub fn full(burst: f64, now: Millis) -> Self {
        Bucket {
            tokens: burst,
            updated_at: now,
        }
    }

    /// Tokens available at `now` (never above `burst`; time never runs backwards).
    pub fn available(&self, now: Millis, rate_per_sec: f64, burst: f64) -> f64 {
        let dt = (now - self.updated_at).max(0) as f64;
        (self.tokens + dt * rate_per_sec / 1000.0).min(burst)
    }

    /// Would a message be admitted at `now`? `Err(ms)` = retry after that many milliseconds.
    pub fn check(&self, now: Millis, rate_per_sec: f64, burst: f64) -> Result<(), Millis> {
        let have = self.available(now, rate_per_sec, burst);
        if have >= 1.0 {
            Ok(())
        } else if rate_per_sec <= 0.0 {
            Err(Millis::MAX)
        } else {
            Err((((1.0 - have) * 1000.0 / rate_per_sec).ceil() as Millis).max(1))
        }
    }

    /// Takes one token at `now`, or says how long to wait.
    pub fn try_take(&mut self, now: Millis, rate_per_sec: f64, burst: f64) -> Result<(), Millis> {
        let have = self.available(now, rate_per_sec, burst);
        self.tokens = have;
        self.updated_at = self.updated_at.max(now);
        self.check(self.updated_at, rate_per_sec, burst)?;
        self.tokens -= 1.0;
        Ok(())
    }
}

fn status_ok(http_status: u16) -> u16 {
    if http_status == 429 {
        429
    } else {
        400
    }
}

/// The throughput verdict from the number's bucket check.
pub fn throughput_verdict(
    result: Result<(), Millis>,
    level: ThroughputLevel,
    http_status: u16,
) -> (Verdict, Option<ApiError>) {
    match result {
        Ok(()) => (Verdict::pass(THROUGHPUT_RULE, level.under_text()), None),
        Err(wait) => {
            let e = ApiError::new(
                status_ok(http_status),
                CODE_THROUGHPUT,
                "Rate limit hit",
                format!(
                    "Cloud API message throughput has been reached: this number sends at most {} messages per second. Retry after {wait} ms.",
                    level.mps()
                ),
            );
            (
                Verdict::refuse(THROUGHPUT_RULE, e.code, e.details.clone()),
                Some(e),
            )
        }
    }
}

/// The pair-limit verdict from the (number, customer) bucket check.
pub fn pair_verdict(result: Result<(), Millis>, http_status: u16) -> (Verdict, Option<ApiError>) {
    match result {
        Ok(()) => (
            Verdict::pass(
                PAIR_RULE,
                "under the pair rate limit (1 message per 6 s, bursts up to 45)",
            ),
            None,
        ),
        Err(wait) => {
            let e = ApiError::new(
                status_ok(http_status),
                CODE_PAIR,
                "(Business Account, Consumer Account) pair rate limit hit",
                format!(
                    "Too many messages to this customer too fast: at most one every 6 seconds on average, bursts up to 45. Retry after {wait} ms."
                ),
            );
            (
                Verdict::refuse(PAIR_RULE, e.code, e.details.clone()),
                Some(e),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::verdict::RuleOutcome;
    use crate::{MINUTE, SECOND};

    const T0: Millis = 1_700_000_000_000;

    #[test]
    fn the_fixed_throughput_texts_say_each_levels_rate() {
        for level in [
            ThroughputLevel::Standard,
            ThroughputLevel::High,
            ThroughputLevel::Coexistence,
        ] {
            let (v, e) = throughput_verdict(Ok(()), level, 429);
            assert!(e.is_none());
            assert_eq!(
                v.details,
                format!("under {} messages per second", level.mps()),
                "{level:?}"
            );
        }
    }

    #[test]
    fn burst_then_refused_then_refilled() {
        let mut b = Bucket::full(80.0, T0);
        for _ in 0..80 {
            assert!(b.try_take(T0, 80.0, 80.0).is_ok());
        }
        let wait = b.try_take(T0, 80.0, 80.0).unwrap_err();
        assert_eq!(wait, 13); // 1/80 s = 12.5 ms
        assert!(b.try_take(T0 + 12, 80.0, 80.0).is_err());
        assert!(b.try_take(T0 + 13, 80.0, 80.0).is_ok());
    }

    #[test]
    fn check_does_not_consume() {
        let b = Bucket::full(1.0, T0);
        assert!(b.check(T0, 1.0, 1.0).is_ok());
        assert!(b.check(T0, 1.0, 1.0).is_ok());
        assert_eq!(b.tokens, 1.0);
    }

    #[test]
    fn never_above_burst_and_clock_never_runs_backwards() {
        let mut b = Bucket::full(45.0, T0);
        assert_eq!(
            b.available(T0 + 3_600 * SECOND, PAIR_RATE_PER_SEC, 45.0),
            45.0
        );
        b.try_take(T0, PAIR_RATE_PER_SEC, 45.0).unwrap();
        // an earlier `now` neither refills nor moves updated_at back
        b.try_take(T0 - SECOND, PAIR_RATE_PER_SEC, 45.0).unwrap();
        assert_eq!(b.updated_at, T0);
        assert_eq!(b.tokens, 43.0);
    }

    #[test]
    fn pair_burst_of_20_costs_two_minutes() {
        let mut b = Bucket::full(PAIR_BURST, T0);
        for _ in 0..20 {
            b.try_take(T0, PAIR_RATE_PER_SEC, PAIR_BURST).unwrap();
        }
        // 25 left; after 2 minutes the 20 are back
        assert!((b.available(T0 + 2 * MINUTE, PAIR_RATE_PER_SEC, PAIR_BURST) - 45.0).abs() < 1e-9);
        for _ in 0..25 {
            b.try_take(T0, PAIR_RATE_PER_SEC, PAIR_BURST).unwrap();
        }
        let wait = b.try_take(T0, PAIR_RATE_PER_SEC, PAIR_BURST).unwrap_err();
        assert_eq!(wait, 6_000);
    }

    #[test]
    fn verdicts_carry_meta_codes() {
        let (v, e) = throughput_verdict(Err(13), ThroughputLevel::Standard, 400);
        assert_eq!(v.outcome, RuleOutcome::Refuse);
        let e = e.unwrap();
        assert_eq!((e.code, e.status), (130429, 400));
        assert_eq!(e.message(), "(#130429) Rate limit hit");
        assert!(e.details.contains("13 ms"));
        let (_, e) = pair_verdict(Err(6000), 429);
        let e = e.unwrap();
        assert_eq!((e.code, e.status), (131056, 429));
        assert!(pair_verdict(Ok(()), 400).1.is_none());
        assert!(throughput_verdict(Ok(()), ThroughputLevel::High, 400)
            .1
            .is_none());
    }

    #[test]
    fn high_throughput_qualification() {
        use QualityRating::*;
        assert!(qualifies_for_high_throughput(
            Tier::Unlimited,
            100_000,
            Yellow
        ));
        assert!(!qualifies_for_high_throughput(
            Tier::Unlimited,
            100_000,
            Red
        ));
        assert!(!qualifies_for_high_throughput(
            Tier::Unlimited,
            99_999,
            Green
        ));
        assert!(!qualifies_for_high_throughput(
            Tier::Tier100K,
            100_000,
            Green
        ));
        assert_eq!(ThroughputLevel::High.mps(), 1000.0);
        assert_eq!(ThroughputLevel::Coexistence.as_str(), "STANDARD");
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    const T0: Millis = 1_700_000_000_000;

    fn params() -> impl Strategy<Value = (f64, f64)> {
        prop_oneof![
            Just((DEFAULT_MPS, DEFAULT_MPS)),
            Just((PAIR_RATE_PER_SEC, PAIR_BURST)),
            (0.1f64..200.0, 1.0f64..100.0),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Over any interval [s, e] the bucket admits at most burst + rate × (e − s).
        #[test]
        fn never_admits_more_than_burst_plus_rate_times_t(
            (rate, burst) in params(),
            gaps in prop::collection::vec(0i64..400, 1..600),
        ) {
            let mut b = Bucket::full(burst, T0);
            let mut now = T0;
            let mut admitted: Vec<Millis> = Vec::new();
            for g in gaps {
                now += g;
                if b.try_take(now, rate, burst).is_ok() {
                    admitted.push(now);
                }
            }
            for i in 0..admitted.len() {
                for j in i..admitted.len() {
                    let t = (admitted[j] - admitted[i]) as f64 / 1000.0;
                    let n = (j - i + 1) as f64;
                    prop_assert!(n <= burst + rate * t + 1e-6,
                        "{n} admitted in {t}s (rate {rate}, burst {burst})");
                }
            }
        }

        /// A sender that tries every `step` ms for `T` seconds gets (almost) everything the rate
        /// allows: at least burst + rate × T − 1 when it asks often enough. The clock counts
        /// whole milliseconds, so when the bucket holds less than one token more than a message
        /// needs (burst − 1 < rate × step), a token may reach the cap between two asks and the
        /// excess is lost: up to rate × step per admission.
        #[test]
        fn admits_steadily_at_the_rate(
            (rate, burst) in params(),
            secs in 1i64..300,
        ) {
            let mut b = Bucket::full(burst, T0);
            let end = T0 + secs * 1000;
            let step = 1; // ask every millisecond
            let mut n = 0u64;
            let mut now = T0;
            while now <= end {
                while b.try_take(now, rate, burst).is_ok() {
                    n += 1;
                }
                now += step;
            }
            let allowed = burst.floor() + rate * secs as f64;
            let per_step = rate * step as f64 / 1000.0;
            let clipped = if burst - 1.0 < per_step { n as f64 * per_step } else { 0.0 };
            prop_assert!(n as f64 >= allowed - 1.0 - clipped, "{n} < {allowed} - 1 - {clipped}");
            prop_assert!(n as f64 <= burst + rate * secs as f64 + 1e-6);
        }

        /// Retry-after is honest: waiting exactly that long admits the message.
        #[test]
        fn retry_after_is_sufficient(
            (rate, burst) in params(),
            taken in 0usize..120,
        ) {
            let mut b = Bucket::full(burst, T0);
            for _ in 0..taken {
                let _ = b.try_take(T0, rate, burst);
            }
            if let Err(wait) = b.try_take(T0, rate, burst) {
                prop_assert!(b.try_take(T0 + wait, rate, burst).is_ok());
            }
        }
    }
}
