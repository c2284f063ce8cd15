//! The retry schedule (cloud-api-facts.md §10.2: Meta retries failed deliveries with
//! decreasing frequency for up to 7 days).
//!
//! After failed attempt *n* the next one is due `initial · 2^(n-1)` later, capped at
//! `max_interval`, with ±20 % jitter so that many events failing together do not retry in
//! lockstep. A `Retry-After` answer (seconds or an HTTP date) replaces the computed delay.
//! No attempt is scheduled past the end of the window (event time or last replay +
//! `retry_window`): the last one runs at the window's end, and a failure then makes the event
//! dead (held for replay, never dropped). All times are virtual-clock ms.

use super::config::WebhookConfig;
use greenlight_domain::Millis;
use greenlight_store::AttemptOutcome;
use rand::Rng;

/// The delay before the attempt after failed attempt `attempt` (1-based), before jitter.
pub fn base_delay(cfg: &WebhookConfig, attempt: i64) -> Millis {
    let exp = (attempt.max(1) - 1).min(40) as u32;
    let d = (cfg.retry_initial_ms as u128) << exp;
    d.min(cfg.retry_max_interval_ms as u128) as Millis
}

/// What a failure at `now` of attempt `attempt` leads to.
pub fn after_failure(
    cfg: &WebhookConfig,
    attempt: i64,
    window_start: Millis,
    now: Millis,
    retry_after: Option<Millis>,
    rng: &mut impl Rng,
) -> AttemptOutcome {
    let window_end = window_start + cfg.retry_window_ms as Millis;
    if now >= window_end {
        return AttemptOutcome::Dead;
    }
    let delay = match retry_after {
        Some(d) => d.max(0),
        None => {
            let base = base_delay(cfg, attempt) as f64;
            (base * rng.random_range(0.8..=1.2)).round() as Millis
        }
    };
    AttemptOutcome::Retry {
        next_attempt_at: (now + delay.max(1)).min(window_end),
    }
}

/// `Retry-After: <seconds>` or `Retry-After: <HTTP date>` → a delay in ms. A date is taken
/// relative to the wall clock (the receiver's clock), so it is a delay, not a virtual time.
pub fn parse_retry_after(value: &str, wall_now: std::time::SystemTime) -> Option<Millis> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(secs.min(30 * 86_400) as Millis * 1000);
    }
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(imf_fixdate(v)?);
    Some(
        at.duration_since(wall_now)
            .map(|d| d.as_millis().min(30 * 86_400_000) as Millis)
            .unwrap_or(0),
    )
}

/// `Wed, 21 Oct 2015 07:28:10 GMT` (RFC 9110's preferred date format) → unix seconds.
fn imf_fixdate(s: &str) -> Option<u64> {
    let mut p = s.split_whitespace();
    let _weekday = p.next()?;
    let day: u64 = p.next()?.parse().ok()?;
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = MONTHS.iter().position(|m| Some(*m) == p.clone().next())? as u64 + 1;
    p.next();
    let year: i64 = p.next()?.parse().ok()?;
    let mut hms = p.next()?.split(':').map(|x| x.parse::<u64>().ok());
    let (h, m, sec) = (hms.next()??, hms.next()??, hms.next()??);
    if p.next()? != "GMT" || !(1..=31).contains(&day) || h > 23 || m > 59 || sec > 60 {
        return None;
    }
    // days from civil (Howard Hinnant)
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + (h * 3600 + m * 60 + sec) as i64).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> WebhookConfig {
        WebhookConfig::default()
    }

    #[test]
    fn default_schedule_doubles_to_six_hours_within_seven_days() {
        let c = cfg();
        assert_eq!(base_delay(&c, 1), 10_000);
        assert_eq!(base_delay(&c, 2), 20_000);
        assert_eq!(base_delay(&c, 12), 20_480_000);
        assert_eq!(base_delay(&c, 13), 6 * 3_600_000);
        assert_eq!(base_delay(&c, 1000), 6 * 3_600_000);
        // attempts over the window: finite, a few dozen
        let (mut t, mut n) = (0i64, 1i64);
        let mut rng = rand::rng();
        while let AttemptOutcome::Retry { next_attempt_at } =
            after_failure(&c, n, 0, t, None, &mut rng)
        {
            assert!(next_attempt_at > t && next_attempt_at <= 7 * 86_400_000);
            t = next_attempt_at;
            n += 1;
        }
        assert!((30..60).contains(&n), "{n} attempts");
        assert_eq!(
            t,
            7 * 86_400_000,
            "the last attempt is at the end of the window"
        );
    }

    #[test]
    fn jitter_stays_within_twenty_percent() {
        let c = cfg();
        let mut rng = rand::rng();
        for _ in 0..200 {
            let AttemptOutcome::Retry { next_attempt_at } =
                after_failure(&c, 3, 0, 1_000, None, &mut rng)
            else {
                panic!()
            };
            let d = next_attempt_at - 1_000;
            assert!((32_000..=48_000).contains(&d), "{d}");
        }
    }

    #[test]
    fn retry_after_replaces_the_delay_but_not_the_window() {
        let c = cfg();
        let mut rng = rand::rng();
        assert_eq!(
            after_failure(&c, 1, 0, 1_000, Some(120_000), &mut rng),
            AttemptOutcome::Retry {
                next_attempt_at: 121_000
            }
        );
        let end = 7 * 86_400_000;
        assert_eq!(
            after_failure(&c, 1, 0, end - 10, Some(120_000), &mut rng),
            AttemptOutcome::Retry {
                next_attempt_at: end
            }
        );
        assert_eq!(
            after_failure(&c, 9, 0, end, None, &mut rng),
            AttemptOutcome::Dead
        );
    }

    #[test]
    fn retry_after_formats() {
        let now = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_445_412_480);
        assert_eq!(parse_retry_after("7", now), Some(7_000));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now),
            Some(10_000)
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }
}
