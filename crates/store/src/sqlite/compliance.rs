//! Compliance state in SQLite: enforcement (violations, restrictions, disable), quality of
//! numbers and templates, the messaging-limit tier and its evaluation, business verification.
//! The rules themselves are `greenlight_domain::policy::*`; this module loads their facts and
//! writes their effects (state, webhooks, audit rows) in the caller's transaction.
//!
//! Scheduled work (`tasks.kind`, run by `run_due` through [`run_task`]):
//! - `tier_eval` (subject: business id) every 6 h of virtual time: re-rates the business's
//!   numbers (feedback decays; persistent RED becomes a violation), then
//!   `messaging_limit::evaluate_upgrade`. A clock jump over several intervals runs **one**
//!   evaluation, at the end of the jump, and the next one 6 h later (the usage facts are windows
//!   over the reach log, so one evaluation at the end sees the same facts the skipped ones
//!   would have, except peaks that left the 7-day lookback).
//! - `template_tick` (subject: template id) at the end of a quality pause: UNPAUSE.
//! - `restriction_expiry` (subject: business id) when restrictions end: an audit row.

use super::chains::{self, chain_sql, Chains};
use super::ops::enqueue;
use super::SqliteStore;
use crate::compliance::*;
use crate::db::{self, Conn, OptionalExtension, Row};
use crate::params;
use crate::{ids, PhoneNumber, Scope, StoreResult};
use async_trait::async_trait;
use greenlight_domain::error::ErrorType;
use greenlight_domain::policy::compliance::ComplianceSettings;
use greenlight_domain::policy::enforcement::{
    self, AppealDecision, Restriction, RestrictionType, Violation, ViolationKind,
};
use greenlight_domain::policy::messaging_limit::{self, Tier};
use greenlight_domain::policy::quality::{self, FeedbackEvent, FeedbackKind, QualityRating};
use greenlight_domain::policy::template_pausing::{self, PauseEvent, TemplatePauseState};
use greenlight_domain::policy::verification::{self, CapabilityKeys, VerificationStatus};
use greenlight_domain::{ApiError, Millis, DAY};
use serde_json::{json, Value};

// ---- shared helpers -------------------------------------------------------------------------

/// The business's compliance settings: `businesses.settings.compliance`, defaults for whatever
/// is missing or unreadable.
pub(crate) fn settings(conn: &Conn, business_id: &str) -> StoreResult<ComplianceSettings> {
    let s: Option<String> = conn
        .prepare_cached("SELECT settings FROM businesses WHERE id = ?1")?
        .query_row(params![business_id], |r| r.get(0))
        .optional()?;
    Ok(s.and_then(|s| serde_json::from_str::<Value>(&s).ok())
        .and_then(|v| v.get("compliance").cloned())
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default())
}

fn wabas(conn: &Conn, business_id: &str) -> StoreResult<Vec<String>> {
    let mut stmt =
        conn.prepare_cached("SELECT id FROM wabas WHERE business_id = ?1 ORDER BY created_at, id")?;
    let rows = stmt.query_map(params![business_id], |r| r.get::<_, String>(0))?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// Queues a WABA-level webhook (`account_update`, `business_capability_update`) for every WABA
/// of the business.
fn emit(
    conn: &Conn,
    business_id: &str,
    field: &str,
    value: &Value,
    now: Millis,
) -> StoreResult<()> {
    for w in wabas(conn, business_id)? {
        enqueue(conn, business_id, &w, None, field, value, now)?;
    }
    Ok(())
}

/// An audit row for an enforcement, quality, template or verification action.
#[allow(clippy::too_many_arguments)]
fn audit_action(
    conn: &Conn,
    business_id: &str,
    kind: &str,
    rule: &str,
    code: Option<i64>,
    phone_id: Option<&str>,
    details: &str,
    now: Millis,
) -> StoreResult<()> {
    conn.prepare_cached(
        "INSERT INTO audit_events (business_id, at, kind, phone_id, rule, code, details) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![business_id, now, kind, phone_id, rule, code, details])?;
    Ok(())
}

fn schedule(conn: &Conn, due_at: Millis, kind: &str, subject: &str) -> StoreResult<()> {
    conn.prepare_cached("INSERT INTO tasks (due_at, kind, subject) VALUES (?1, ?2, ?3)")?
        .execute(params![due_at, kind, subject])?;
    Ok(())
}

fn verification_status(conn: &Conn, business_id: &str) -> StoreResult<Option<VerificationStatus>> {
    let v: Option<String> = conn
        .prepare_cached("SELECT verification FROM businesses WHERE id = ?1")?
        .query_row(params![business_id], |r| r.get(0))
        .optional()?;
    Ok(v.map(|v| VerificationStatus::parse(&v).unwrap_or_default()))
}

fn policy_error(code: i64, title: &str, details: impl Into<String>) -> ApiError {
    ApiError::new(400, code, title, details).with_type(ErrorType::GreenlightPolicy)
}

fn secs(ms: Millis) -> i64 {
    ms.div_euclid(1000)
}

// ---- the messaging-limit tier ---------------------------------------------------------------

/// The business's messaging-limit tier (portfolio-wide).
pub(crate) fn tier(conn: &Conn, business_id: &str) -> StoreResult<Tier> {
    let t: Option<String> = conn
        .prepare_cached("SELECT tier FROM business_limits WHERE business_id = ?1")?
        .query_row(params![business_id], |r| r.get(0))
        .optional()?;
    match t.and_then(|t| Tier::parse(&t)) {
        Some(t) => Ok(t),
        // no row yet (a business created before the compliance state existed): verification
        // alone decides, as the number's `whatsapp_business_manager_messaging_limit` does
        None => Ok(
            if verification_status(conn, business_id)?.is_some_and(|s| s.is_verified()) {
                Tier::Tier2K
            } else {
                Tier::Tier250
            },
        ),
    }
}

/// Creates the business's limits row if missing (TIER_2K when verified) and, with
/// `schedule_eval`, its first 6-hourly evaluation.
fn ensure_limits(
    conn: &Conn,
    business_id: &str,
    now: Millis,
    schedule_eval: bool,
) -> StoreResult<()> {
    let t = tier(conn, business_id)?;
    let next = now + messaging_limit::EVALUATION_INTERVAL;
    let n = conn
        .prepare_cached(
            "INSERT INTO business_limits (business_id, tier, next_eval_at, updated_at) VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
        )?
        .execute(params![business_id, t.as_str(), next, now])?;
    if n > 0 && schedule_eval {
        schedule(conn, next, "tier_eval", business_id)?;
    }
    Ok(())
}

/// A new tenant: its limits row and the first tier evaluation 6 h from now.
pub(crate) fn on_tenant_created(conn: &Conn, business_id: &str, now: Millis) -> StoreResult<()> {
    ensure_limits(conn, business_id, now, true)
}

fn verified_of(conn: &Conn, business_id: &str) -> StoreResult<bool> {
    Ok(verification_status(conn, business_id)?.is_some_and(|s| s.is_verified()))
}

/// `business_capability_update` value: the current key (webhooks v24.0+) and the legacy one
/// (≤ v23.0, the fixture's) together, since greenlight does not know which version a
/// subscriber parses; both carry the same number.
fn capability_value(tier: Tier, verified: bool) -> Value {
    let n = messaging_limit::max_phone_numbers(verified, tier);
    let mut v = verification::business_capability_update_value(tier, n, CapabilityKeys::Current);
    let legacy = verification::business_capability_update_value(tier, n, CapabilityKeys::Legacy);
    if let (Some(o), Some(l)) = (v.as_object_mut(), legacy.as_object()) {
        for (k, x) in l {
            o.entry(k.clone()).or_insert_with(|| x.clone());
        }
    }
    v
}

fn set_tier(conn: &Conn, business_id: &str, new: Tier, why: &str, now: Millis) -> StoreResult<()> {
    let old = tier(conn, business_id)?;
    conn.prepare_cached(
        "UPDATE business_limits SET tier = ?2, updated_at = ?3 WHERE business_id = ?1",
    )?
    .execute(params![business_id, new.as_str(), now])?;
    let verified = verified_of(conn, business_id)?;
    emit(
        conn,
        business_id,
        "business_capability_update",
        &capability_value(new, verified),
        now,
    )?;
    audit_action(
        conn,
        business_id,
        "enforcement",
        messaging_limit::RULE,
        None,
        None,
        &format!(
            "Rule {}: messaging limit raised from {} to {} ({why}).",
            messaging_limit::RULE,
            old.as_str(),
            new.as_str()
        ),
        now,
    )
}

pub(crate) fn distinct_reached(
    conn: &Conn,
    business_id: &str,
    from_excl: Millis,
    to_incl: Millis,
) -> StoreResult<u64> {
    Ok(conn
        .prepare_cached(super::reach_blocks::select_between!(
            conn,
            "COUNT(DISTINCT r.wa_id)"
        ))?
        .query_row(params![business_id, from_excl, to_incl], |r| {
            r.get::<_, i64>(0)
        })? as u64)
}

/// The 6-hourly evaluation's two counts of a business's reach log at `now`: the most distinct
/// customers reached in a 24 h window ending at one of the 6-hourly sample points of the last 7
/// days (now, now − 6 h, …, now − 7 d + 6 h), and the distinct customers reached in the last 30
/// days. One read of the log since the earliest time either needs, each customer's windows
/// kept as bits, where a count a window read the log 29 times over (58 days of rows for 30):
/// on SQLite, whose business's rows are read by blocks with other businesses' rows in them,
/// that took twice as long as the index by business had (docs/BENCHMARKS.md, thirty-ninth
/// round).
pub(crate) fn reach_counts(conn: &Conn, business_id: &str, now: Millis) -> StoreResult<(u64, u64)> {
    use messaging_limit::{DELIVERED_PATH_LOOKBACK, EVALUATION_INTERVAL, UPGRADE_LOOKBACK, WINDOW};
    let samples = UPGRADE_LOOKBACK / EVALUATION_INTERVAL;
    // bit k: sample k's window; the top bit: the 30 days
    const IN_30_DAYS: u64 = 1 << 63;
    debug_assert!(samples < 63);
    let unique_from = now - DELIVERED_PATH_LOOKBACK;
    let from = unique_from.min(now - (samples - 1) * EVALUATION_INTERVAL - WINDOW);
    let sql = super::reach_blocks::select_between!(conn, "r.wa_id, r.at");
    let mut windows: crate::keys::HashMap<String, u64> = crate::keys::HashMap::default();
    conn.prepare_cached(sql)?
        .for_each(params![business_id, from, now], |r| {
            let (wa_id, at): (String, Millis) = (r.get(0)?, r.get(1)?);
            let mut bits = if at > unique_from { IN_30_DAYS } else { 0 };
            for k in 0..samples {
                let p = now - k * EVALUATION_INTERVAL;
                if at > p - WINDOW && at <= p {
                    bits |= 1 << k;
                }
            }
            if bits != 0 {
                *windows.entry(wa_id).or_default() |= bits;
            }
            Ok(())
        })?;
    let count = |bit: u64| windows.values().filter(|b| *b & bit != 0).count() as u64;
    let peak = (0..samples).map(|k| count(1 << k)).max().unwrap_or(0);
    Ok((peak, count(IN_30_DAYS)))
}

/// [`reach_counts`]' peak a window at a time, as it was read before (the tests' reference).
#[cfg(test)]
pub(crate) fn peak_24h_last_7d(conn: &Conn, business_id: &str, now: Millis) -> StoreResult<u64> {
    let samples = messaging_limit::UPGRADE_LOOKBACK / messaging_limit::EVALUATION_INTERVAL;
    let mut best = 0;
    for k in 0..samples {
        let p = now - k * messaging_limit::EVALUATION_INTERVAL;
        best = best.max(distinct_reached(
            conn,
            business_id,
            p - messaging_limit::WINDOW,
            p,
        )?);
    }
    Ok(best)
}

fn severity(r: QualityRating) -> u8 {
    match r {
        QualityRating::Unknown => 0,
        QualityRating::Green => 1,
        QualityRating::Yellow => 2,
        QualityRating::Red => 3,
    }
}

/// One 6-hourly evaluation: re-rate the numbers, then the tier.
fn tier_eval(
    conn: &Conn,
    chains: Option<&Chains>,
    business_id: &str,
    now: Millis,
) -> StoreResult<()> {
    if verification_status(conn, business_id)?.is_none() {
        return Ok(());
    }
    ensure_limits(conn, business_id, now, false)?;
    let phones: Vec<String> = {
        let mut stmt =
            conn.prepare_cached("SELECT id FROM phone_numbers WHERE business_id = ?1")?;
        let rows = stmt.query_map(params![business_id], |r| r.get::<_, String>(0))?;
        rows.collect::<Result<Vec<_>, _>>()?
    };
    let mut worst = QualityRating::Unknown;
    for p in &phones {
        let r = rate_number(conn, chains, business_id, p, now)?;
        if severity(r) > severity(worst) {
            worst = r;
        }
    }
    let current = tier(conn, business_id)?;
    let verified = verified_of(conn, business_id)?;
    let (peak, unique_30d) = reach_counts(conn, business_id, now)?;
    if let Some(next) =
        messaging_limit::evaluate_upgrade(current, verified, peak, unique_30d, worst)
    {
        set_tier(
            conn,
            business_id,
            next,
            &format!(
                "6-hourly evaluation: peak {peak} distinct customers in 24 h over the last 7 days, {unique_30d} in 30 days, quality {}, {}",
                worst.as_str(),
                if verified { "verified" } else { "not verified" }
            ),
            now,
        )?;
    }
    let next_at = now + messaging_limit::EVALUATION_INTERVAL;
    conn.prepare_cached("UPDATE business_limits SET next_eval_at = ?2 WHERE business_id = ?1")?
        .execute(params![business_id, next_at])?;
    schedule(conn, next_at, "tier_eval", business_id)
}

// ---- enforcement ----------------------------------------------------------------------------

struct Stored {
    id: String,
    v: Violation,
    appeal_status: Option<String>,
    appeal_reason: Option<String>,
}

fn kind_str(k: ViolationKind) -> &'static str {
    match k {
        ViolationKind::IgnoredOptOut => "ignored_opt_out",
        ViolationKind::PersistentRedQuality => "persistent_red_quality",
        ViolationKind::TemplateDisabledForQuality => "template_disabled_for_quality",
        ViolationKind::PolicyViolation => "policy_violation",
    }
}

fn parse_kind(s: &str) -> ViolationKind {
    match s {
        "ignored_opt_out" => ViolationKind::IgnoredOptOut,
        "persistent_red_quality" => ViolationKind::PersistentRedQuality,
        "template_disabled_for_quality" => ViolationKind::TemplateDisabledForQuality,
        _ => ViolationKind::PolicyViolation,
    }
}

const VIOLATION_COLS: &str =
    "id, kind, violation_type, evidence, severe, at, reversed_at, appeal_status, appeal_reason";

fn stored_from_row(r: &Row) -> db::Result<Stored> {
    Ok(Stored {
        id: r.get(0)?,
        v: Violation {
            kind: parse_kind(&r.get::<_, String>(1)?),
            violation_type: r.get(2)?,
            evidence: r.get(3)?,
            severe: r.get(4)?,
            at: r.get(5)?,
            reversed_at: r.get(6)?,
        },
        appeal_status: r.get(7)?,
        appeal_reason: r.get(8)?,
    })
}

/// The business's violations, oldest first.
fn history(conn: &Conn, business_id: &str) -> StoreResult<Vec<Stored>> {
    let sql = format!(
        "SELECT {VIOLATION_COLS} FROM violations WHERE business_id = ?1 ORDER BY at, rowid"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params![business_id], stored_from_row)?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

fn record_of(s: &Stored) -> ViolationRecord {
    ViolationRecord {
        id: s.id.clone(),
        kind: kind_str(s.v.kind).to_string(),
        violation_type: s.v.violation_type.clone(),
        evidence: s.v.evidence.clone(),
        severe: s.v.severe,
        timestamp: secs(s.v.at),
        reversed_at: s.v.reversed_at.map(secs),
        appeal_status: s.appeal_status.clone(),
        appeal_reason: s.appeal_reason.clone(),
    }
}

fn disabled_at(conn: &Conn, business_id: &str) -> StoreResult<Option<Millis>> {
    Ok(conn
        .prepare_cached("SELECT disabled_at FROM business_limits WHERE business_id = ?1")?
        .query_row(params![business_id], |r| r.get::<_, Option<i64>>(0))
        .optional()?
        .flatten())
}

/// What the send path needs of a business's enforcement state, cached by the writer (see
/// `Memory::config`): every restriction row, whatever its expiry, is kept, and
/// [`Enforcement::in_force`] filters by time.
pub(crate) struct Enforcement {
    pub tier: Tier,
    pub disabled: bool,
    pub restrictions: Vec<Restriction>,
}

impl Enforcement {
    pub(crate) fn load(conn: &Conn, business_id: &str) -> StoreResult<Self> {
        let (restrictions, disabled) = enforcement_state(conn, business_id, Millis::MIN)?;
        Ok(Enforcement {
            tier: tier(conn, business_id)?,
            disabled,
            restrictions,
        })
    }

    /// The restrictions in force at `now`.
    pub(crate) fn in_force(&self, now: Millis) -> Vec<Restriction> {
        self.restrictions
            .iter()
            .filter(|r| r.expires_at > now)
            .cloned()
            .collect()
    }
}

/// Restrictions in force and whether the account is disabled.
pub(crate) fn enforcement_state(
    conn: &Conn,
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
    Ok((restrictions, disabled_at(conn, business_id)?.is_some()))
}

/// Ends the restrictions in force (of one type, or all) now; history is kept.
fn end_restrictions(
    conn: &Conn,
    business_id: &str,
    restriction_type: Option<&str>,
    now: Millis,
) -> StoreResult<usize> {
    Ok(conn
        .prepare_cached(
            "UPDATE restrictions SET expires_at = ?2 WHERE business_id = ?1 AND expires_at > ?2 AND (restriction_type = ?3 OR ?3 IS NULL)",
        )?
        .execute(params![business_id, now, restriction_type])?)
}

/// Records `v` (unless an automatic violation of its kind was recorded in the last 24 h) and
/// applies the ladder: restrictions, disable, `account_update` webhooks, audit. Returns the new
/// violation's id.
fn apply_violation(
    conn: &Conn,
    business_id: &str,
    v: &Violation,
    now: Millis,
) -> StoreResult<Option<String>> {
    let hist = history(conn, business_id)?;
    let mut vs: Vec<Violation> = hist.iter().map(|h| h.v.clone()).collect();
    if !enforcement::should_record(&vs, v.kind, now) {
        return Ok(None);
    }
    ensure_limits(conn, business_id, now, true)?;
    let id = ids::object_id();
    conn.prepare_cached(
        "INSERT INTO violations (id, business_id, kind, violation_type, evidence, severe, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![id, business_id, kind_str(v.kind), v.violation_type, v.evidence, v.severe, v.at])?;
    vs.push(v.clone());
    let action = enforcement::escalate(&vs, now);
    if !action.restrictions.is_empty() {
        end_restrictions(conn, business_id, None, now)?;
        let mut ends = Vec::new();
        for r in &action.restrictions {
            conn.prepare_cached(
                "INSERT INTO restrictions (business_id, restriction_type, expires_at, violation_id, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![business_id, r.restriction_type.as_str(), r.expires_at, id, now])?;
            if !ends.contains(&r.expires_at) {
                ends.push(r.expires_at);
            }
        }
        for e in ends {
            schedule(conn, e, "restriction_expiry", business_id)?;
        }
    }
    let was_disabled = disabled_at(conn, business_id)?.is_some();
    if action.disable && !was_disabled {
        conn.prepare_cached("UPDATE business_limits SET disabled_at = ?2 WHERE business_id = ?1")?
            .execute(params![business_id, now])?;
    }
    for w in &action.webhooks {
        if was_disabled && w["event"] == "DISABLED_UPDATE" {
            continue;
        }
        emit(conn, business_id, "account_update", w, now)?;
    }
    let (code, what) = if action.disable {
        (
            Some(enforcement::CODE_LOCKED),
            "the account is disabled".to_string(),
        )
    } else if let Some(r) = action.restrictions.first() {
        (
            Some(enforcement::CODE_RESTRICTED),
            format!(
                "restricted ({}) until {}",
                action
                    .restrictions
                    .iter()
                    .map(|r| r.restriction_type.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                secs(r.expires_at)
            ),
        )
    } else {
        (None, "warning".to_string())
    };
    audit_action(
        conn,
        business_id,
        "enforcement",
        enforcement::RULE,
        code,
        None,
        &format!(
            "Rule {}: violation {id} ({}, {}) recorded, strike {}: {what}. Evidence: {}",
            enforcement::RULE,
            v.violation_type,
            kind_str(v.kind),
            action.strike,
            v.evidence
        ),
        now,
    )?;
    Ok(Some(id))
}

/// Records a violation the send path detected (e.g. sending to a customer who said STOP) and
/// applies the escalation ladder.
#[allow(dead_code)] // called by the send path (opt-in integration)
pub(crate) fn record_violation(
    conn: &Conn,
    business_id: &str,
    waba_id: &str,
    v: &Violation,
    now: Millis,
) -> StoreResult<()> {
    // enforcement is per business portfolio: every WABA of it hears about it
    let _ = waba_id;
    apply_violation(conn, business_id, v, now).map(|_| ())
}

fn restriction_expiry(conn: &Conn, business_id: &str, now: Millis) -> StoreResult<()> {
    let (active, _) = enforcement_state(conn, business_id, now)?;
    if active.is_empty() {
        let ended: i64 = conn
            .prepare_cached("SELECT COUNT(*) FROM restrictions WHERE business_id = ?1 AND expires_at <= ?2 AND expires_at > ?2 - ?3")?
            .query_row(params![business_id, now, DAY], |r| r.get(0))?;
        if ended > 0 {
            audit_action(
                conn,
                business_id,
                "enforcement",
                enforcement::RULE,
                None,
                None,
                "Rule enforcement: the restrictions in force ended; business-initiated messaging is allowed again.",
                now,
            )?;
        }
    }
    Ok(())
}

fn restriction_records(
    conn: &Conn,
    business_id: &str,
    now: Millis,
) -> StoreResult<Vec<RestrictionRecord>> {
    let mut stmt = conn.prepare_cached(
        "SELECT restriction_type, expires_at, violation_id, created_at FROM restrictions WHERE business_id = ?1 ORDER BY created_at DESC, rowid",
    )?;
    let rows = stmt.query_map(params![business_id], |r| {
        let exp: i64 = r.get(1)?;
        Ok(RestrictionRecord {
            restriction_type: r.get(0)?,
            expiration: secs(exp),
            active: exp > now,
            violation_id: r.get(2)?,
            created_at: secs(r.get::<_, i64>(3)?),
        })
    })?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

fn enforcement_view(
    conn: &Conn,
    business_id: &str,
    now: Millis,
) -> StoreResult<Option<EnforcementView>> {
    if verification_status(conn, business_id)?.is_none() {
        return Ok(None);
    }
    let hist = history(conn, business_id)?;
    let all = restriction_records(conn, business_id, now)?;
    let disabled = disabled_at(conn, business_id)?;
    Ok(Some(EnforcementView {
        business_id: business_id.to_string(),
        disabled: disabled.is_some(),
        disabled_at: disabled.map(secs),
        restrictions: all.iter().filter(|r| r.active).cloned().collect(),
        restriction_history: all,
        strikes: hist.iter().filter(|h| h.v.counts()).count(),
        violations: hist.iter().rev().map(record_of).collect(),
    }))
}

fn appeal_error(details: impl Into<String>) -> ApiError {
    policy_error(
        enforcement::CODE_APPEAL_INVALID,
        "Appeal not allowed",
        details,
    )
}

// ---- quality --------------------------------------------------------------------------------

fn feedback_events(
    conn: &Conn,
    sql: &str,
    key: &str,
    since: Millis,
) -> StoreResult<Vec<FeedbackEvent>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map(params![key, since], |r| {
        let kind: String = r.get(1)?;
        Ok(FeedbackEvent {
            at: r.get(0)?,
            kind: if kind == "report" {
                FeedbackKind::Report
            } else {
                FeedbackKind::Block
            },
            reason: r.get(2)?,
        })
    })?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// Deliveries per hour after `$since` and until `$until` of the messages `m` (of `$from`) that
/// `$of` selects: the counts by hour of their `delivered` times, the sandbox's column or else
/// the gateway's status row, in one pass over the messages (a row is looked up only for a
/// message without the column). The sandbox's column holds a time the send decided, which may
/// not have come yet: `$until` (now) leaves those out.
macro_rules! delivered_per_hour {
    ($from:literal, $of:expr, $since:literal, $until:literal) => {
        concat!(
            "SELECT (d.at / 3600000) * 3600000 AS h, COUNT(*) FROM (\
             SELECT COALESCE(m.delivered_at, (SELECT MIN(s.at) FROM statuses s \
             WHERE s.message_id = m.id AND s.status = 'delivered')) AS at FROM ",
            $from,
            " WHERE ",
            $of,
            ") d WHERE d.at > ",
            $since,
            " AND d.at <= ",
            $until,
            " GROUP BY h"
        )
    };
}

fn buckets(conn: &Conn, sql: &str, p: &[&dyn db::ToSql]) -> StoreResult<Vec<(Millis, u32)>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map(p, |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)? as u32)))?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// [`delivered_per_hour!`] over the messages `m` of a number's chain from the head `$head`
/// (SQLite, `chains.rs`).
macro_rules! delivered_per_hour_of_chain {
    ($head:literal, $of:expr, $since:literal, $until:literal) => {
        concat!(
            chain_sql!("number_prev", $head),
            delivered_per_hour!(
                "chain JOIN messages m ON m.rowid = chain.r",
                $of,
                $since,
                $until
            )
        )
    };
}

/// A number's deliveries per hour after `since`, until `now`: on SQLite over its chain of
/// messages, on PostgreSQL by the index `messages_thread`.
fn delivered_by_number(
    conn: &Conn,
    chains: Option<&Chains>,
    phone_id: &str,
    since: Millis,
    now: Millis,
) -> StoreResult<Vec<(Millis, u32)>> {
    if conn.is_pg() {
        return buckets(
            conn,
            delivered_per_hour!(
                "messages m",
                "m.phone_id = ?1 AND m.direction = 'out'",
                "?2",
                "?3"
            ),
            &[&phone_id, &since, &now],
        );
    }
    let head = chains::head(chains, conn, phone_id, "")?;
    buckets(
        conn,
        delivered_per_hour_of_chain!("?3", "m.phone_id = ?1 AND m.direction = 'out'", "?2", "?4"),
        &[&phone_id, &since, &head, &now],
    )
}

/// Re-rates a number from the feedback and deliveries of the window; on change updates
/// `quality_rating`, queues `phone_number_quality_update` (into and out of RED) and audits;
/// RED for 7 days is a violation. A number with nothing in the window reads GREEN.
fn rate_number(
    conn: &Conn,
    chains: Option<&Chains>,
    business_id: &str,
    phone_id: &str,
    now: Millis,
) -> StoreResult<QualityRating> {
    let row: Option<(String, String, String)> = conn
        .prepare_cached("SELECT quality_rating, digits, waba_id FROM phone_numbers WHERE id = ?1 AND business_id = ?2")?
        .query_row(params![phone_id, business_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    let Some((old, digits, waba_id)) = row else {
        return Ok(QualityRating::Unknown);
    };
    let t = settings(conn, business_id)?.quality;
    let since = now - t.window_ms;
    let events = feedback_events(
        conn,
        "SELECT at, kind, reason FROM feedback WHERE phone_id = ?1 AND at > ?2",
        phone_id,
        since,
    )?;
    let delivered = delivered_by_number(conn, chains, phone_id, since, now)?;
    let score = quality::score(&events, &delivered, now, &t);
    let new = match score.rating {
        QualityRating::Unknown => QualityRating::Green,
        r => r,
    };
    let old = QualityRating::parse(&old).unwrap_or(QualityRating::Green);
    let red_since: Option<Millis> = conn
        .prepare_cached("SELECT red_since FROM number_quality WHERE phone_id = ?1")?
        .query_row(params![phone_id], |r| r.get::<_, Option<i64>>(0))
        .optional()?
        .flatten();
    let mut red_since = match (new == QualityRating::Red, red_since) {
        (true, Some(s)) => Some(s),
        (true, None) => Some(now),
        (false, _) => None,
    };
    if new != old {
        conn.prepare_cached("UPDATE phone_numbers SET quality_rating = ?2 WHERE id = ?1")?
            .execute(params![phone_id, new.as_str()])?;
        if let Some(event) = quality::number_quality_event(old, new) {
            let limit = tier(conn, business_id)?;
            enqueue(
                conn,
                business_id,
                &waba_id,
                Some(phone_id),
                "phone_number_quality_update",
                &quality::phone_number_quality_update_value(&digits, event, limit.as_str()),
                now,
            )?;
        }
        audit_action(
            conn,
            business_id,
            "enforcement",
            quality::RULE,
            None,
            Some(phone_id),
            &format!(
                "Rule {}: the quality rating of number {digits} changed from {} to {} (weighted negative feedback {:.2} over {:.1} weighted deliveries: rate {:.2} %; YELLOW from {:.2} %, RED from {:.2} %).",
                quality::RULE,
                old.as_str(),
                new.as_str(),
                score.weighted_negative,
                score.weighted_delivered,
                score.rate * 100.0,
                t.yellow_rate * 100.0,
                t.red_rate * 100.0
            ),
            now,
        )?;
    }
    if enforcement::is_persistent_red(red_since, now) {
        let v = Violation::new(
            ViolationKind::PersistentRedQuality,
            now,
            format!(
                "number {digits} ({phone_id}) has been rated RED since {}",
                secs(red_since.unwrap_or(now))
            ),
        );
        if apply_violation(conn, business_id, &v, now)?.is_some() {
            // the next one only after another 7 days of RED
            red_since = Some(now);
        }
    }
    conn.prepare_cached(
        "INSERT INTO number_quality (phone_id, red_since, updated_at) VALUES (?1, ?2, ?3) \
         ON CONFLICT (phone_id) DO UPDATE SET red_since = excluded.red_since, updated_at = excluded.updated_at",
    )?
    .execute(params![phone_id, red_since, now])?;
    Ok(new)
}

/// The template a message was sent with (`message_id` given), or of the latest template
/// message to the customer from the number in the quality window.
fn template_of_feedback(
    conn: &Conn,
    chains: Option<&Chains>,
    phone: &PhoneNumber,
    wa_id: &str,
    message_id: Option<&str>,
    since: Millis,
) -> StoreResult<Option<String>> {
    let content: Option<String> = match message_id {
        Some(m) => conn
            .prepare_cached("SELECT content FROM messages WHERE id = ?1 AND phone_id = ?2 AND wa_id = ?3 AND direction = 'out' AND type = 'template'")?
            .query_row(params![m, phone.id, wa_id], |r| r.get(0))
            .optional()?,
        None if conn.is_pg() => conn
            .prepare_cached("SELECT content FROM messages WHERE phone_id = ?1 AND wa_id = ?2 AND direction = 'out' AND type = 'template' AND created_at > ?3 ORDER BY created_at DESC, rowid DESC LIMIT 1")?
            .query_row(params![phone.id, wa_id, since], |r| r.get(0))
            .optional()?,
        // SQLite: over the thread's chain (`chains.rs`)
        None => conn
            .prepare_cached(concat!(
                chain_sql!("pair_prev", "?4"),
                "SELECT m.content FROM chain JOIN messages m ON m.rowid = chain.r \
                 WHERE m.phone_id = ?1 AND m.wa_id = ?2 AND m.direction = 'out' AND m.type = 'template' \
                 AND m.created_at > ?3 ORDER BY m.created_at DESC, m.rowid DESC LIMIT 1"
            ))?
            .query_row(
                params![phone.id, wa_id, since, chains::head(chains, conn, &phone.id, wa_id)?],
                |r| r.get(0),
            )
            .optional()?,
    };
    let Some(content) = content.and_then(|c| serde_json::from_str::<Value>(&c).ok()) else {
        return Ok(None);
    };
    let name = content["name"].as_str().unwrap_or_default();
    let language = content["language"]["code"]
        .as_str()
        .or(content["language"].as_str())
        .unwrap_or_default();
    Ok(super::templates::by_name(conn, &phone.waba_id, name, language)?.map(|t| t.id))
}

fn pause_state(conn: &Conn, template_id: &str) -> StoreResult<TemplatePauseState> {
    let s: Option<String> = conn
        .prepare_cached("SELECT pause_state FROM template_quality WHERE template_id = ?1")?
        .query_row(params![template_id], |r| r.get(0))
        .optional()?;
    Ok(s.and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_default())
}

fn save_pause_state(conn: &Conn, template_id: &str, s: &TemplatePauseState) -> StoreResult<()> {
    conn.prepare_cached(
        "INSERT INTO template_quality (template_id, pause_state) VALUES (?1, ?2) \
         ON CONFLICT (template_id) DO UPDATE SET pause_state = excluded.pause_state",
    )?
    .execute(params![
        template_id,
        serde_json::to_string(s).unwrap_or_else(|_| "{}".into())
    ])?;
    Ok(())
}

struct Tpl {
    id: String,
    business_id: String,
    waba_id: String,
    name: String,
    language: String,
    category: String,
    status: String,
    quality_score: String,
}

fn template_row(conn: &Conn, id: &str) -> StoreResult<Option<Tpl>> {
    Ok(conn
        .prepare_cached("SELECT id, business_id, waba_id, name, language, category, status, quality_score FROM templates WHERE id = ?1 AND status NOT IN ('DELETED', 'PENDING_DELETION')")?
        .query_row(params![id], |r| {
            Ok(Tpl {
                id: r.get(0)?,
                business_id: r.get(1)?,
                waba_id: r.get(2)?,
                name: r.get(3)?,
                language: r.get(4)?,
                category: r.get(5)?,
                status: r.get(6)?,
                quality_score: r.get(7)?,
            })
        })
        .optional()?)
}

/// Applies a pause event to the template's row: status, webhook, the unpause task, the
/// violation of a disable.
fn apply_pause_event(
    conn: &Conn,
    t: &Tpl,
    state: &TemplatePauseState,
    ev: PauseEvent,
    now: Millis,
) -> StoreResult<()> {
    let (status, paused_until) = match ev {
        PauseEvent::FirstPause { until } | PauseEvent::SecondPause { until } => {
            ("PAUSED", Some(until))
        }
        PauseEvent::Disabled { .. } => ("DISABLED", None),
        PauseEvent::Unpause { .. } => ("APPROVED", None),
    };
    conn.prepare_cached("UPDATE templates SET status = ?2, paused_until = ?3, pause_count = ?4, updated_at = ?5 WHERE id = ?1")?
        .execute(params![t.id, status, paused_until, state.pause_count, now])?;
    let tid: i64 = t.id.parse().unwrap_or(0);
    enqueue(
        conn,
        &t.business_id,
        &t.waba_id,
        None,
        "message_template_status_update",
        &ev.status_update_value(tid, &t.name, &t.language, &t.category),
        now,
    )?;
    if let Some(until) = paused_until {
        schedule(conn, until, "template_tick", &t.id)?;
    }
    audit_action(
        conn,
        &t.business_id,
        "template",
        "template_pausing",
        match ev {
            PauseEvent::Disabled { .. } => Some(132_016),
            PauseEvent::Unpause { .. } => None,
            _ => Some(132_015),
        },
        None,
        &format!(
            "Rule template_pausing: template '{}' ({}, id {}) {}: {}",
            t.name,
            t.language,
            t.id,
            ev.title(),
            ev.description()
        ),
        now,
    )?;
    if let PauseEvent::Disabled { .. } = ev {
        let v = Violation::new(
            ViolationKind::TemplateDisabledForQuality,
            now,
            format!(
                "template '{}' ({}, id {}) was disabled after its third low-quality (RED) rating",
                t.name, t.language, t.id
            ),
        );
        apply_violation(conn, &t.business_id, &v, now)?;
    }
    Ok(())
}

/// A template's deliveries per hour after `since`, until `now`: its messages from the numbers
/// of its WABA (on SQLite over each number's chain).
fn delivered_by_template(
    conn: &Conn,
    chains: Option<&Chains>,
    t: &Tpl,
    since: Millis,
    now: Millis,
) -> StoreResult<Vec<(Millis, u32)>> {
    // deliveries of this template, per hour; the template's name and language are read from the
    // message's JSON content, which is the one thing the two dialects spell differently
    if conn.is_pg() {
        return buckets(
            conn,
            delivered_per_hour!(
                "messages m",
                concat!(
                    "m.business_id = ?1 AND m.direction = 'out' AND m.type = 'template' \
                     AND m.phone_id IN (SELECT id FROM phone_numbers WHERE waba_id = ?2) \
                     AND m.content::jsonb ->> 'name' = ?3 AND COALESCE(m.content::jsonb #>> '{language,code}', \
                     m.content::jsonb ->> 'language') = ?4"
                ),
                "?5",
                "?6"
            ),
            &[&t.business_id, &t.waba_id, &t.name, &t.language, &since, &now],
        );
    }
    let phones: Vec<String> = conn
        .prepare_cached("SELECT id FROM phone_numbers WHERE waba_id = ?1 ORDER BY id")?
        .query_map(params![t.waba_id], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut by_hour = std::collections::BTreeMap::<Millis, u32>::new();
    for phone_id in phones {
        let head = chains::head(chains, conn, &phone_id, "")?;
        let hours = buckets(
            conn,
            delivered_per_hour_of_chain!(
                "?6",
                "m.business_id = ?1 AND m.direction = 'out' AND m.type = 'template' \
                 AND m.phone_id = ?2 AND json_extract(m.content, '$.name') = ?3 \
                 AND COALESCE(json_extract(m.content, '$.language.code'), json_extract(m.content, '$.language')) = ?4",
                "?5",
                "?7"
            ),
            &[&t.business_id, &phone_id, &t.name, &t.language, &since, &head, &now],
        )?;
        for (h, n) in hours {
            *by_hour.entry(h).or_default() += n;
        }
    }
    Ok(by_hour.into_iter().collect())
}

/// Re-rates a template from its feedback and deliveries since its last unpause (inside the
/// window); on change updates `quality_score` and queues `message_template_quality_update`;
/// RED pauses (3 h, 6 h) or disables it.
fn rate_template(
    conn: &Conn,
    chains: Option<&Chains>,
    template_id: &str,
    now: Millis,
) -> StoreResult<()> {
    let Some(t) = template_row(conn, template_id)? else {
        return Ok(());
    };
    if !matches!(t.status.as_str(), "APPROVED" | "PAUSED") {
        return Ok(());
    }
    let th = settings(conn, &t.business_id)?.quality;
    let state = pause_state(conn, &t.id)?;
    let since = (now - th.window_ms).max(state.quality_since.map(|s| s - 1).unwrap_or(i64::MIN));
    let events = feedback_events(
        conn,
        "SELECT at, kind, reason FROM feedback WHERE template_id = ?1 AND at > ?2",
        &t.id,
        since,
    )?;
    let delivered = delivered_by_template(conn, chains, &t, since, now)?;
    let new = quality::rating(&events, &delivered, now, &th);
    let old = QualityRating::parse(&t.quality_score).unwrap_or(QualityRating::Unknown);
    if new != old {
        conn.prepare_cached(
            "UPDATE templates SET quality_score = ?2, quality_at = ?3 WHERE id = ?1",
        )?
        .execute(params![t.id, new.as_str(), now])?;
        enqueue(
            conn,
            &t.business_id,
            &t.waba_id,
            None,
            "message_template_quality_update",
            &quality::template_quality_update_value(
                t.id.parse().unwrap_or(0),
                &t.name,
                &t.language,
                old,
                new,
            ),
            now,
        )?;
    }
    let (next, ev) = template_pausing::on_quality_change(state, new, now);
    if let Some(ev) = ev {
        save_pause_state(conn, &t.id, &next)?;
        apply_pause_event(conn, &t, &next, ev, now)?;
    }
    Ok(())
}

/// A pause fell due: UNPAUSE (back to APPROVED), then the quality resets from feedback after it.
fn template_tick(
    conn: &Conn,
    chains: Option<&Chains>,
    template_id: &str,
    now: Millis,
) -> StoreResult<()> {
    let Some(t) = template_row(conn, template_id)? else {
        return Ok(());
    };
    let state = pause_state(conn, &t.id)?;
    let (next, ev) = template_pausing::tick(state, now);
    let Some(ev) = ev else {
        return Ok(());
    };
    save_pause_state(conn, &t.id, &next)?;
    // an edit during the pause sent the template back to review: no unpause to announce
    if t.status == "PAUSED" {
        apply_pause_event(conn, &t, &next, ev, now)?;
        rate_template(conn, chains, &t.id, now)?;
    }
    Ok(())
}

/// A customer blocked or reported a business number (optionally about one message).
#[allow(clippy::too_many_arguments)]
pub(crate) fn on_feedback(
    conn: &Conn,
    chains: Option<&Chains>,
    business_id: &str,
    phone: &PhoneNumber,
    wa_id: &str,
    kind: FeedbackKind,
    reason: Option<&str>,
    message_id: Option<&str>,
    now: Millis,
) -> StoreResult<()> {
    let window = settings(conn, business_id)?.quality.window_ms;
    let template_id = template_of_feedback(conn, chains, phone, wa_id, message_id, now - window)?;
    conn.prepare_cached(
        "INSERT INTO feedback (business_id, phone_id, wa_id, kind, reason, message_id, template_id, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        business_id,
        phone.id,
        wa_id,
        match kind {
            FeedbackKind::Block => "block",
            FeedbackKind::Report => "report",
        },
        reason.map(|r| r.trim().to_ascii_lowercase()),
        message_id,
        template_id,
        now
    ])?;
    rate_number(conn, chains, business_id, &phone.id, now)?;
    if let Some(t) = template_id {
        rate_template(conn, chains, &t, now)?;
    }
    Ok(())
}

/// Scheduled compliance work (`tasks.kind`); `Ok(false)` when the kind is not compliance's.
pub(crate) fn run_task(
    conn: &Conn,
    chains: Option<&Chains>,
    kind: &str,
    subject: &str,
    now: Millis,
) -> StoreResult<bool> {
    match kind {
        "tier_eval" => tier_eval(conn, chains, subject, now)?,
        "template_tick" => template_tick(conn, chains, subject, now)?,
        "restriction_expiry" => restriction_expiry(conn, subject, now)?,
        _ => return Ok(false),
    }
    Ok(true)
}

// ---- verification ---------------------------------------------------------------------------

fn verification_view(conn: &Conn, business_id: &str) -> StoreResult<Option<VerificationView>> {
    let Some(status) = verification_status(conn, business_id)? else {
        return Ok(None);
    };
    let row: Option<(Option<i64>, Option<i64>, Option<String>)> = conn
        .prepare_cached("SELECT submitted_at, decided_at, reason FROM business_verification WHERE business_id = ?1")?
        .query_row(params![business_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    let (submitted, decided, reason) = row.unwrap_or((None, None, None));
    let t = tier(conn, business_id)?;
    Ok(Some(VerificationView {
        business_id: business_id.to_string(),
        status: status.as_str().to_string(),
        submitted_at: submitted.map(secs),
        decided_at: decided.map(secs),
        reason,
        messaging_limit_tier: t.as_str().to_string(),
        max_templates: messaging_limit::max_templates(status.is_verified()),
        max_phone_numbers: messaging_limit::max_phone_numbers(status.is_verified(), t),
    }))
}

fn decide_verification_tx(
    conn: &Conn,
    business_id: &str,
    approve: bool,
    reason: Option<String>,
    now: Millis,
) -> StoreResult<Option<VerificationView>> {
    let Some(status) = verification_status(conn, business_id)? else {
        return Ok(None);
    };
    let next = verification::decide(status, approve)?;
    conn.prepare_cached("UPDATE businesses SET verification = ?2 WHERE id = ?1")?
        .execute(params![business_id, next.as_str()])?;
    conn.prepare_cached(
        "INSERT INTO business_verification (business_id, decided_at, reason) VALUES (?1, ?2, ?3) \
         ON CONFLICT (business_id) DO UPDATE SET decided_at = excluded.decided_at, reason = excluded.reason",
    )?
    .execute(params![business_id, now, reason])?;
    audit_action(
        conn,
        business_id,
        "verification",
        verification::RULE,
        None,
        None,
        &format!(
            "Rule {}: the operator decided the verification request: {}{}.",
            verification::RULE,
            next.as_str(),
            reason
                .as_deref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default()
        ),
        now,
    )?;
    if next.is_verified() {
        ensure_limits(conn, business_id, now, true)?;
        let digits: Option<String> = conn
            .prepare_cached("SELECT digits FROM phone_numbers WHERE business_id = ?1 ORDER BY created_at, id LIMIT 1")?
            .query_row(params![business_id], |r| r.get(0))
            .optional()?;
        let mut v = json!({ "event": "VERIFIED_ACCOUNT" });
        if let Some(d) = digits {
            v["phone_number"] = json!(d);
        }
        emit(conn, business_id, "account_update", &v, now)?;
        let current = tier(conn, business_id)?;
        let effects = verification::on_verified(current, CapabilityKeys::Current);
        match effects.new_tier {
            Some(t) => set_tier(conn, business_id, t, "business verification", now)?,
            // the tier is unchanged but the number cap rose: say so
            None => emit(
                conn,
                business_id,
                "business_capability_update",
                &capability_value(current, true),
                now,
            )?,
        }
    }
    verification_view(conn, business_id)
}

// ---- the store ------------------------------------------------------------------------------

#[async_trait]
impl ComplianceStore for SqliteStore {
    async fn file_violation(
        &self,
        business_id: &str,
        v: NewViolation,
        now: Millis,
    ) -> StoreResult<Option<ViolationRecord>> {
        let b = business_id.to_string();
        self.write(move |c| {
            if verification_status(c, &b)?.is_none() {
                return Ok(None);
            }
            let mut viol = Violation::policy(&v.violation_type, now, v.evidence);
            if let Some(s) = v.severe {
                viol.severe = s;
            }
            let id = apply_violation(c, &b, &viol, now)?;
            let Some(id) = id else { return Ok(None) };
            Ok(history(c, &b)?.iter().find(|h| h.id == id).map(record_of))
        })
        .await
    }

    async fn enforcement(
        &self,
        scope: &Scope,
        now: Millis,
    ) -> StoreResult<Option<EnforcementView>> {
        let b = scope.business_id.clone();
        self.read(move |c| enforcement_view(c, &b, now)).await
    }

    async fn lift_restrictions(
        &self,
        scope: &Scope,
        restriction_type: Option<String>,
        now: Millis,
    ) -> StoreResult<usize> {
        let b = scope.business_id.clone();
        self.write(move |c| {
            let n = end_restrictions(c, &b, restriction_type.as_deref(), now)?;
            if n > 0 {
                audit_action(
                    c,
                    &b,
                    "enforcement",
                    enforcement::RULE,
                    None,
                    None,
                    &format!(
                        "Rule enforcement: the operator lifted {n} restriction(s){}.",
                        restriction_type
                            .as_deref()
                            .map(|t| format!(" of type {t}"))
                            .unwrap_or_default()
                    ),
                    now,
                )?;
            }
            Ok(n)
        })
        .await
    }

    async fn appeal_violation(
        &self,
        scope: &Scope,
        violation_id: &str,
        reason: String,
        now: Millis,
    ) -> StoreResult<Option<ViolationRecord>> {
        let (b, id) = (scope.business_id.clone(), violation_id.to_string());
        self.write(move |c| {
            let hist = history(c, &b)?;
            let Some(s) = hist.iter().find(|h| h.id == id) else {
                return Ok(None);
            };
            enforcement::can_appeal(&s.v, now)?;
            match s.appeal_status.as_deref() {
                Some("pending") => {
                    return Err(appeal_error(
                        "Rule enforcement: an appeal of this violation is already pending; wait for the operator's decision.",
                    )
                    .into())
                }
                Some(d) => {
                    return Err(appeal_error(format!(
                        "Rule enforcement: this violation was already appealed and the decision was '{d}'; a violation can be appealed once."
                    ))
                    .into())
                }
                None => {}
            }
            c.prepare_cached("UPDATE violations SET appeal_status = 'pending', appeal_reason = ?2 WHERE id = ?1")?
                .execute(params![id, reason])?;
            audit_action(
                c,
                &b,
                "enforcement",
                "appeal",
                None,
                None,
                &format!("Rule appeal: the business appealed violation {id} ({}): {reason}", s.v.violation_type),
                now,
            )?;
            Ok(history(c, &b)?.iter().find(|h| h.id == id).map(record_of))
        })
        .await
    }

    async fn decide_appeal(
        &self,
        violation_id: &str,
        decision: AppealDecision,
        now: Millis,
    ) -> StoreResult<Option<ViolationRecord>> {
        let id = violation_id.to_string();
        self.write(move |c| {
            let b: Option<String> = c
                .prepare_cached("SELECT business_id FROM violations WHERE id = ?1")?
                .query_row(params![id], |r| r.get(0))
                .optional()?;
            let Some(b) = b else { return Ok(None) };
            let hist = history(c, &b)?;
            let Some(idx) = hist.iter().position(|h| h.id == id) else {
                return Ok(None);
            };
            if hist[idx].appeal_status.as_deref() != Some("pending") {
                return Err(appeal_error(
                    "Rule appeal: there is no pending appeal of this violation to decide; the business appeals first (POST /greenlight/v1/violations/{id}/appeal).",
                )
                .into());
            }
            let vs: Vec<Violation> = hist.iter().map(|h| h.v.clone()).collect();
            let (restrictions, disabled) = enforcement_state(c, &b, now)?;
            let out = enforcement::appeal_outcome(&vs, idx, decision, &restrictions, disabled, now)?;
            let d = match decision {
                AppealDecision::Reversed => "reversed",
                AppealDecision::Unchanged => "unchanged",
            };
            c.prepare_cached("UPDATE violations SET appeal_status = ?2, reversed_at = ?3 WHERE id = ?1")?
                .execute(params![id, d, out.violation.reversed_at])?;
            if out.restrictions.is_empty() && !restrictions.is_empty() {
                end_restrictions(c, &b, None, now)?;
            }
            if disabled && !out.disabled {
                c.prepare_cached("UPDATE business_limits SET disabled_at = NULL WHERE business_id = ?1")?
                    .execute(params![b])?;
            }
            for w in &out.webhooks {
                emit(c, &b, "account_update", w, now)?;
            }
            audit_action(
                c,
                &b,
                "enforcement",
                "appeal",
                None,
                None,
                &format!(
                    "Rule appeal: the operator decided the appeal of violation {id}: {d}{}{}.",
                    if out.restrictions.is_empty() && !restrictions.is_empty() {
                        "; restrictions lifted"
                    } else {
                        ""
                    },
                    if disabled && !out.disabled { "; account reinstated" } else { "" }
                ),
                now,
            )?;
            Ok(history(c, &b)?.iter().find(|h| h.id == id).map(record_of))
        })
        .await
    }

    async fn verification(&self, scope: &Scope) -> StoreResult<Option<VerificationView>> {
        let b = scope.business_id.clone();
        self.read(move |c| verification_view(c, &b)).await
    }

    async fn submit_verification(
        &self,
        scope: &Scope,
        note: Option<String>,
        now: Millis,
    ) -> StoreResult<VerificationView> {
        let b = scope.business_id.clone();
        self.write(move |c| {
            let status = verification_status(c, &b)?.unwrap_or_default();
            let next = verification::submit(status)?;
            c.prepare_cached("UPDATE businesses SET verification = ?2 WHERE id = ?1")?
                .execute(params![b, next.as_str()])?;
            c.prepare_cached(
                "INSERT INTO business_verification (business_id, submitted_at, decided_at, reason, note) VALUES (?1, ?2, NULL, NULL, ?3) \
                 ON CONFLICT (business_id) DO UPDATE SET submitted_at = excluded.submitted_at, decided_at = NULL, reason = NULL, note = excluded.note",
            )?
            .execute(params![b, now, note])?;
            audit_action(
                c,
                &b,
                "verification",
                verification::RULE,
                None,
                None,
                "Rule business_verification: the business submitted a verification request (pending the operator's decision).",
                now,
            )?;
            verification_view(c, &b)?
                .ok_or_else(|| ApiError::unknown_object(&b).into())
        })
        .await
    }

    async fn decide_verification(
        &self,
        scope: &Scope,
        approve: bool,
        reason: Option<String>,
        now: Millis,
    ) -> StoreResult<Option<VerificationView>> {
        let b = scope.business_id.clone();
        self.write(move |c| decide_verification_tx(c, &b, approve, reason, now))
            .await
    }

    async fn messaging_limit(&self, scope: &Scope, now: Millis) -> StoreResult<LimitView> {
        let b = scope.business_id.clone();
        self.read(move |c| {
            let t = tier(c, &b)?;
            let next: Option<i64> = c
                .prepare_cached("SELECT next_eval_at FROM business_limits WHERE business_id = ?1")?
                .query_row(params![b], |r| r.get(0))
                .optional()?;
            let mut worst = QualityRating::Unknown;
            let mut stmt = c.prepare_cached(
                "SELECT quality_rating FROM phone_numbers WHERE business_id = ?1",
            )?;
            for r in stmt.query_map(params![b], |r| r.get::<_, String>(0))? {
                let r = QualityRating::parse(&r?).unwrap_or(QualityRating::Unknown);
                if severity(r) > severity(worst) {
                    worst = r;
                }
            }
            Ok(LimitView {
                business_id: b.clone(),
                tier: t.as_str().to_string(),
                limit: t.limit(),
                used_24h: distinct_reached(c, &b, now - messaging_limit::WINDOW, now)?,
                next_evaluation_at: secs(
                    next.unwrap_or(now + messaging_limit::EVALUATION_INTERVAL),
                ),
                quality_rating: worst.as_str().to_string(),
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: Millis = 1_700_000_000_000;
    const H: Millis = 3_600_000;

    fn db() -> Conn {
        let c = Conn::Sqlite(rusqlite::Connection::open_in_memory().unwrap().into());
        c.execute_batch(super::super::SCHEMA).unwrap();
        c.execute(
            "INSERT INTO businesses (id, name, verification, created_at) VALUES ('b1', 'Acme', 'not_verified', 0)",
            [],
        )
        .unwrap();
        c.execute(
            "INSERT INTO wabas (id, business_id, name, created_at) VALUES ('w1', 'b1', 'Acme', 0)",
            [],
        )
        .unwrap();
        c
    }

    fn reach(c: &Conn, n: usize, prefix: &str, at: Millis) {
        for i in 0..n {
            c.execute(
                "INSERT INTO reach_log (business_id, wa_id, at) VALUES ('b1', ?1, ?2)",
                params![format!("{prefix}{i}"), at],
            )
            .unwrap();
        }
        // written around the writer: the blocks its rows are found by, from the log
        if let Some(c) = c.sqlite() {
            crate::sqlite::reach_blocks::rebuild(c).unwrap();
        }
    }

    fn outbox(c: &Conn, field: &str) -> Vec<Value> {
        let mut s = c
            .prepare("SELECT payload FROM outbox WHERE field = ?1 ORDER BY id")
            .unwrap();
        s.query_map(params![field], |r| r.get::<_, String>(0))
            .unwrap()
            .map(|p| serde_json::from_str(&p.unwrap()).unwrap())
            .collect()
    }

    /// The evaluation's one read of the log counts what a read a window does: the peak of the
    /// 28 windows and the 30 days' distinct customers, for reaches of two businesses over 40
    /// days (on the windows' edges too: times on the hour), read at any time.
    #[test]
    fn the_counts_of_one_read_are_those_of_a_read_a_window() {
        use proptest::prelude::*;
        let config = ProptestConfig {
            cases: 64,
            ..ProptestConfig::default()
        };
        proptest!(config, |(
            reaches in prop::collection::vec((any::<bool>(), 0u32..40, 0i64..960), 0..200),
            at in 0i64..960,
        )| {
            let c = db();
            for (other, customer, hours) in reaches {
                c.execute(
                    "INSERT INTO reach_log (business_id, wa_id, at) VALUES (?1, ?2, ?3)",
                    params![if other { "b2" } else { "b1" }, format!("1555{customer}"), T0 + hours * H],
                )
                .unwrap();
            }
            crate::sqlite::reach_blocks::rebuild(c.sqlite().unwrap()).unwrap();
            let now = T0 + at * H;
            let one_read = reach_counts(&c, "b1", now).unwrap();
            let by_window = (
                peak_24h_last_7d(&c, "b1", now).unwrap(),
                distinct_reached(&c, "b1", now - messaging_limit::DELIVERED_PATH_LOOKBACK, now).unwrap(),
            );
            prop_assert_eq!(one_read, by_window, "at {}", now);
        });
    }

    #[test]
    fn peak_is_taken_at_six_hour_samples_over_seven_days() {
        let c = db();
        // 300 customers 3 days ago, 10 now
        reach(&c, 300, "a", T0 - 72 * H);
        reach(&c, 10, "b", T0);
        assert_eq!(peak_24h_last_7d(&c, "b1", T0).unwrap(), 300);
        // 8 days later the burst left the lookback
        assert_eq!(peak_24h_last_7d(&c, "b1", T0 + 8 * DAY).unwrap(), 0);
        // the window edge: a reach at t counts for (t, t + 24 h]
        assert_eq!(distinct_reached(&c, "b1", T0 - DAY, T0).unwrap(), 10);
        assert_eq!(distinct_reached(&c, "b1", T0, T0 + DAY).unwrap(), 0);
    }

    #[test]
    fn tier_grows_one_step_per_evaluation_when_half_the_limit_is_used() {
        let c = db();
        on_tenant_created(&c, "b1", T0).unwrap();
        assert_eq!(tier(&c, "b1").unwrap(), Tier::Tier250);
        // unverified with 250 used: no upgrade (250 → 2K needs verification or 2,000 in 30 d)
        reach(&c, 250, "a", T0);
        tier_eval(&c, None, "b1", T0 + H).unwrap();
        assert_eq!(tier(&c, "b1").unwrap(), Tier::Tier250);
        c.execute(
            "UPDATE businesses SET verification = 'verified' WHERE id = 'b1'",
            [],
        )
        .unwrap();
        tier_eval(&c, None, "b1", T0 + 2 * H).unwrap();
        assert_eq!(tier(&c, "b1").unwrap(), Tier::Tier2K);
        // 2K: 999 in a day is not half
        reach(&c, 749, "b", T0 + 3 * H);
        tier_eval(&c, None, "b1", T0 + 4 * H).unwrap();
        assert_eq!(tier(&c, "b1").unwrap(), Tier::Tier2K);
        reach(&c, 1, "c", T0 + 5 * H);
        tier_eval(&c, None, "b1", T0 + 6 * H).unwrap();
        assert_eq!(tier(&c, "b1").unwrap(), Tier::Tier10K);
        // the same usage does not reach half of 10K
        tier_eval(&c, None, "b1", T0 + 12 * H).unwrap();
        assert_eq!(tier(&c, "b1").unwrap(), Tier::Tier10K);
        let caps = outbox(&c, "business_capability_update");
        assert_eq!(caps.len(), 2);
        assert_eq!(caps[1]["max_daily_conversations_per_business"], 10_000);
        assert_eq!(caps[1]["max_daily_conversation_per_phone"], 10_000);
        assert_eq!(caps[1]["max_phone_numbers_per_business"], 20);
        // each evaluation scheduled the next one
        let n: i64 = c
            .query_row(
                "SELECT COUNT(*) FROM tasks WHERE kind = 'tier_eval'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(n, 6);
    }

    #[test]
    fn red_quality_blocks_the_upgrade() {
        let c = db();
        c.execute(
            "UPDATE businesses SET verification = 'verified' WHERE id = 'b1'",
            [],
        )
        .unwrap();
        on_tenant_created(&c, "b1", T0).unwrap();
        c.execute(
            "INSERT INTO phone_numbers (id, waba_id, business_id, display_phone_number, digits, verified_name, created_at) VALUES ('p1', 'w1', 'b1', '+1 555', '1555', 'Acme', 0)",
            [],
        )
        .unwrap();
        for i in 0..10 {
            c.execute(
                "INSERT INTO feedback (business_id, phone_id, wa_id, kind, at) VALUES ('b1', 'p1', ?1, 'block', ?2)",
                params![format!("x{i}"), T0],
            )
            .unwrap();
        }
        reach(&c, 1500, "a", T0);
        tier_eval(&c, None, "b1", T0 + H).unwrap();
        assert_eq!(tier(&c, "b1").unwrap(), Tier::Tier2K);
        let q: String = c
            .query_row(
                "SELECT quality_rating FROM phone_numbers WHERE id = 'p1'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(q, "RED");
        assert_eq!(
            outbox(&c, "phone_number_quality_update")[0]["event"],
            "FLAGGED"
        );
        // RED for 7 days is a violation (a warning: the first strike)
        tier_eval(&c, None, "b1", T0 + H + 7 * DAY).unwrap();
        let n: i64 = c
            .query_row(
                "SELECT COUNT(*) FROM violations WHERE kind = 'persistent_red_quality'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        // the feedback decayed away by then: the number is GREEN again and no violation
        assert_eq!(n, 0);
    }

    #[test]
    fn escalation_and_appeal_reversal() {
        let c = db();
        on_tenant_created(&c, "b1", T0).unwrap();
        let v = |at| Violation::new(ViolationKind::IgnoredOptOut, at, "sent to opted-out");
        assert!(apply_violation(&c, "b1", &v(T0), T0).unwrap().is_some());
        // deduplicated within 24 h
        assert!(apply_violation(&c, "b1", &v(T0 + H), T0 + H)
            .unwrap()
            .is_none());
        assert!(enforcement_state(&c, "b1", T0 + H).unwrap().0.is_empty());
        let t1 = T0 + DAY + H;
        let id = apply_violation(&c, "b1", &v(t1), t1).unwrap().unwrap();
        let (r, disabled) = enforcement_state(&c, "b1", t1).unwrap();
        assert_eq!(r.len(), 2);
        assert!(!disabled);
        assert!(enforcement_state(&c, "b1", t1 + DAY).unwrap().0.is_empty());
        let updates = outbox(&c, "account_update");
        assert_eq!(updates.len(), 3);
        assert_eq!(updates[2]["event"], "ACCOUNT_RESTRICTION");
        // a severe violation disables; the appeal reverses it and reinstates
        let sev = Violation::policy("SCAM", t1 + H, "operator: scam links");
        let sid = apply_violation(&c, "b1", &sev, t1 + H).unwrap().unwrap();
        assert!(enforcement_state(&c, "b1", t1 + H).unwrap().1);
        c.execute(
            "UPDATE violations SET appeal_status = 'pending' WHERE id = ?1",
            params![sid],
        )
        .unwrap();
        let hist = history(&c, "b1").unwrap();
        let vs: Vec<Violation> = hist.iter().map(|h| h.v.clone()).collect();
        let idx = hist.iter().position(|h| h.id == sid).unwrap();
        let out =
            enforcement::appeal_outcome(&vs, idx, AppealDecision::Reversed, &[], true, t1 + 2 * H)
                .unwrap();
        assert!(!out.disabled);
        let _ = id;
    }

    /// A number's deliveries are counted from both places a `delivered` status lives: the
    /// sandbox's `delivered_at` column and the gateway's status rows (Meta's webhooks), each in
    /// its hour, and only those of the number inside the window.
    #[test]
    fn deliveries_count_the_column_and_the_rows() {
        let c = db();
        let hour = (T0 / H) * H;
        let message = |id: &str, phone: &str, sent: Option<Millis>, delivered: Option<Millis>| {
            c.execute(
                "INSERT INTO messages (id, business_id, phone_id, wa_id, direction, type, content, status, created_at, sent_at, delivered_at) \
                 VALUES (?1, 'b1', ?2, '15550001111', 'out', 'text', '{}', 'sent', ?3, ?4, ?5)",
                params![id, phone, hour - 5 * H, sent, delivered],
            )
            .unwrap();
        };
        let status = |id: &str, status: &str, at: Millis| {
            c.execute(
                "INSERT INTO statuses (message_id, status, at) VALUES (?1, ?2, ?3)",
                params![id, status, at],
            )
            .unwrap();
        };
        // the sandbox's: two in one hour, one sent and never delivered, one before the window
        message("a", "p1", Some(hour - 5 * H), Some(hour - 2 * H));
        message(
            "b",
            "p1",
            Some(hour - 5 * H),
            Some(hour - 2 * H + 59 * 60_000),
        );
        message("c", "p1", Some(hour - 5 * H), None);
        message("d", "p1", Some(hour - 5 * H), Some(hour - 4 * H));
        // the gateway's: statuses as rows, one delivered, one only sent
        message("e", "p1", None, None);
        status("e", "sent", hour - H + 1);
        status("e", "delivered", hour - H + 5);
        message("f", "p1", None, None);
        status("f", "sent", hour - H + 7);
        // another number's
        message("g", "p2", Some(hour - 5 * H), Some(hour - 2 * H));
        // a delivery its send decided for 200 ms after now
        message("h", "p1", Some(hour - 100), Some(hour + 200));
        // rows inserted here, not by the writer: their chains are built from them
        chains::rebuild(c.sqlite().unwrap()).unwrap();
        let now = hour;
        let mut got = delivered_by_number(&c, None, "p1", hour - 3 * H, now).unwrap();
        got.sort();
        assert_eq!(got, vec![(hour - 2 * H, 2), (hour - H, 1)]);
        // the window's edge: a delivery at `since` itself is outside, one after it inside
        let mut got = delivered_by_number(&c, None, "p1", hour - 4 * H, now).unwrap();
        got.sort();
        assert_eq!(got, vec![(hour - 2 * H, 2), (hour - H, 1)]);
        // the decided delivery counts from its time on, not a millisecond before
        let mut got = delivered_by_number(&c, None, "p1", hour - 3 * H, hour + 199).unwrap();
        got.sort();
        assert_eq!(got, vec![(hour - 2 * H, 2), (hour - H, 1)]);
        let mut got = delivered_by_number(&c, None, "p1", hour - 3 * H, hour + 200).unwrap();
        got.sort();
        assert_eq!(got, vec![(hour - 2 * H, 2), (hour - H, 1), (hour, 1)]);
        let mut got = delivered_by_number(&c, None, "p1", hour - 4 * H - 1, now).unwrap();
        got.sort();
        assert_eq!(
            got,
            vec![(hour - 4 * H, 1), (hour - 2 * H, 2), (hour - H, 1)]
        );
    }

    /// A template's deliveries, from the column and from the rows alike, are those of messages
    /// with its name and language (both spellings of the language) from its WABA's numbers.
    #[test]
    fn template_deliveries_count_the_column_and_the_rows() {
        let c = db();
        let hour = (T0 / H) * H;
        for (phone, waba) in [("p1", "w1"), ("p2", "w1"), ("p3", "w2")] {
            c.execute(
                "INSERT INTO phone_numbers (id, waba_id, business_id, display_phone_number, digits, verified_name, created_at) \
                 VALUES (?1, ?2, 'b1', '+1 555 0100', '15550100', 'Acme', 0)",
                params![phone, waba],
            )
            .unwrap();
        }
        let message = |id: &str, phone: &str, content: &str, delivered: Option<Millis>| {
            c.execute(
                "INSERT INTO messages (id, business_id, phone_id, wa_id, direction, type, content, status, created_at, sent_at, delivered_at) \
                 VALUES (?1, 'b1', ?2, '15550001111', 'out', 'template', ?3, 'sent', ?4, ?5, ?6)",
                params![id, phone, content, hour - 5 * H, delivered.map(|_| hour - 5 * H), delivered],
            )
            .unwrap();
        };
        let ours = r#"{"name":"order_update","language":{"code":"en_US"}}"#;
        message("a", "p1", ours, Some(hour - 2 * H));
        message(
            "b",
            "p2",
            r#"{"name":"order_update","language":"en_US"}"#,
            Some(hour - 2 * H + 1),
        );
        // the gateway's: its delivery a row
        message("c", "p1", ours, None);
        c.execute(
            "INSERT INTO statuses (message_id, status, at) VALUES ('c', 'delivered', ?1)",
            params![hour - H],
        )
        .unwrap();
        // another template, another language, another WABA's number
        message(
            "d",
            "p1",
            r#"{"name":"other","language":{"code":"en_US"}}"#,
            Some(hour - H),
        );
        message(
            "e",
            "p1",
            r#"{"name":"order_update","language":{"code":"es"}}"#,
            Some(hour - H),
        );
        message("f", "p3", ours, Some(hour - H));
        // decided at its send, for a time still to come
        message("g", "p1", ours, Some(hour + 200));
        let t = Tpl {
            id: "t1".into(),
            business_id: "b1".into(),
            waba_id: "w1".into(),
            name: "order_update".into(),
            language: "en_US".into(),
            category: "UTILITY".into(),
            status: "APPROVED".into(),
            quality_score: "UNKNOWN".into(),
        };
        chains::rebuild(c.sqlite().unwrap()).unwrap();
        let mut got = delivered_by_template(&c, None, &t, hour - 3 * H, hour + 199).unwrap();
        got.sort();
        assert_eq!(got, vec![(hour - 2 * H, 2), (hour - H, 1)]);
        let mut got = delivered_by_template(&c, None, &t, hour - 3 * H, hour + 200).unwrap();
        got.sort();
        assert_eq!(got, vec![(hour - 2 * H, 2), (hour - H, 1), (hour, 1)]);
    }
}
