//! [`WebhookStore`] for [`SqliteStore`]: subscriptions, the leased outbox claim, attempts and
//! replays. Claims and finishes are writer jobs, so they group-commit with the send path; the
//! cheap "is anything due?" probe is a read, so an idle worker writes nothing.

use super::read::json_col;
use super::{Facts, Memory, Route, SqliteStore};
use crate::db::{self, Conn, OptionalExtension, Row};
use crate::params;
use crate::*;
use async_trait::async_trait;
use greenlight_domain::Millis;
use serde_json::Value;
use std::borrow::Cow;
use std::collections::HashMap;

/// Where a (business, WABA)'s events go, or why they go nowhere.
pub(crate) type Target = Result<(String, Vec<String>, String), String>;

fn first_app(conn: &Conn, business_id: &str) -> StoreResult<Option<(String, String)>> {
    Ok(conn
        .prepare_cached(
            "SELECT id, secret FROM apps WHERE business_id = ?1 ORDER BY created_at, id LIMIT 1",
        )?
        .query_row(params![business_id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?)
}

fn app_sub(conn: &Conn, business_id: &str, app_id: &str) -> StoreResult<Option<AppSubscription>> {
    Ok(conn
        .prepare_cached(
            "SELECT callback_url, verify_token, fields, created_at FROM webhook_subscriptions WHERE business_id = ?1 AND app_id = ?2",
        )?
        .query_row(params![business_id, app_id], |r| {
            let fields: String = r.get(2)?;
            Ok(AppSubscription {
                app_id: app_id.to_string(),
                callback_url: r.get(0)?,
                verify_token: r.get(1)?,
                fields: serde_json::from_str(&fields).unwrap_or_default(),
                created_at: r.get(3)?,
            })
        })
        .optional()?)
}

/// `(subscribed, override_callback_uri)`; no row means subscribed without override.
fn waba_link(conn: &Conn, waba_id: &str, app_id: &str) -> StoreResult<(bool, Option<String>)> {
    Ok(conn
        .prepare_cached(
            "SELECT subscribed, override_callback_uri FROM webhook_waba_apps WHERE waba_id = ?1 AND app_id = ?2",
        )?
        .query_row(params![waba_id, app_id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?
        .unwrap_or((true, None)))
}

fn phone_override(conn: &Conn, phone_id: &str) -> StoreResult<Option<String>> {
    Ok(conn
        .prepare_cached("SELECT callback_uri FROM webhook_phone_overrides WHERE phone_id = ?1")?
        .query_row(params![phone_id], |r| r.get(0))
        .optional()?)
}

/// Precedence as on Meta: the number's override, the WABA's override, the app's callback.
pub(crate) fn resolve(
    conn: &Conn,
    business_id: &str,
    waba_id: &str,
    phone_id: Option<&str>,
) -> StoreResult<Target> {
    let Some((app_id, secret)) = first_app(conn, business_id)? else {
        return Ok(Err("the business has no app".into()));
    };
    let (subscribed, override_uri) = waba_link(conn, waba_id, &app_id)?;
    if !subscribed {
        return Ok(Err(format!(
            "WABA {waba_id} is not subscribed to app {app_id} (POST /{waba_id}/subscribed_apps subscribes it)"
        )));
    }
    let sub = app_sub(conn, business_id, &app_id)?;
    let fields = sub.as_ref().map(|s| s.fields.clone()).unwrap_or_default();
    let phone_uri = match phone_id {
        Some(p) => phone_override(conn, p)?,
        None => None,
    };
    match phone_uri.or(override_uri).or(sub.map(|s| s.callback_url)) {
        Some(url) if !url.is_empty() => Ok(Ok((url, fields, secret))),
        _ => Ok(Err(format!(
            "no callback URL: app {app_id} has no subscription (POST /{app_id}/subscriptions, or `webhook` at tenant creation)"
        ))),
    }
}

/// Why an event of `field` cannot go to `target`, if it cannot.
/// (Borrowed from the target when it has no URL: the send path writes it with every event.)
pub(crate) fn skip_reason<'t>(target: &'t Target, field: &str) -> Option<Cow<'t, str>> {
    match target {
        Err(reason) => Some(Cow::Borrowed(reason)),
        Ok((_, fields, _)) if !fields.is_empty() && !fields.iter().any(|f| f == field) => {
            Some(format!("field `{field}` is not among the app's subscribed fields").into())
        }
        Ok(_) => None,
    }
}

/// The outbox's ids in blocks of `1 << BLOCK_BITS`. `outbox_blocks` holds a row per business
/// and block it has events in: what finds a business's `skipped` events, which no index by
/// business holds (`schema.sql` and PostgreSQL's migration 0012, `outbox_listed`).
/// PostgreSQL's statement that writes events (`ops::OUTBOX_ROW`) spells the 12 out.
pub(crate) const BLOCK_BITS: u32 = 12;

/// The newest block each business is known to have its row of `outbox_blocks` in (the writer's
/// memory, emptied with its facts when a job or batch rolls back).
pub(crate) type KnownBlocks = crate::keys::HashMap<String, i64>;

/// SQLite: records the block of the event just inserted for `business_id` in `outbox_blocks`,
/// unless `known` says it is there. Every event's block, whatever its state: a pending event
/// can be marked `skipped` later. Nothing on PostgreSQL, whose statement that inserts the
/// event writes its block (`ops::OUTBOX_ROW`).
pub(crate) fn note_block(
    conn: &Conn,
    known: Option<&mut KnownBlocks>,
    business_id: &str,
) -> StoreResult<()> {
    if conn.is_pg() {
        return Ok(());
    }
    let block = conn.last_insert_rowid() >> BLOCK_BITS;
    if let Some(k) = &known {
        if k.get(business_id) == Some(&block) {
            return Ok(());
        }
    }
    conn.execute_static(
        "INSERT OR IGNORE INTO outbox_blocks (business_id, block) VALUES (?1, ?2)",
        params![business_id, block],
    )?;
    if let Some(k) = known {
        match k.get_mut(business_id) {
            Some(b) => *b = block,
            None => {
                k.insert(business_id.to_string(), block);
            }
        }
    }
    Ok(())
}

/// SQLite: whether the blocks of the outbox's events are written (`meta.outbox_blocks`): a
/// database from before `outbox_blocks` has events without, and (from `5950659` on) the index
/// `outbox_state`, which held every event; an older one `outbox_business_state`.
pub(crate) fn blocks_written(c: &rusqlite::Connection) -> StoreResult<bool> {
    super::upgraded(c, "outbox_blocks")
}

/// SQLite: unless [`blocks_written`], writes the blocks of every event of the outbox, drops
/// `outbox_state` if the database has it (the schema has made `outbox_listed`, which leaves
/// skipped events out) and records it, in one transaction: a start cut short does it again.
/// Part of `create_schema`; on a new database it only records it.
pub(crate) fn write_blocks(c: &rusqlite::Connection) -> StoreResult<()> {
    super::upgrade_once(
        c,
        "outbox_blocks",
        rebuild_blocks,
        "DROP INDEX IF EXISTS outbox_state",
    )
}

/// `outbox_blocks` written again from every event of the outbox (an upgrade's, an import's,
/// whose events have new ids), in the caller's transaction.
pub(crate) fn rebuild_blocks(c: &rusqlite::Connection) -> StoreResult<()> {
    c.execute_batch(&rebuild_blocks_sql())?;
    Ok(())
}

/// The statements of [`rebuild_blocks`], for either backend.
pub(crate) fn rebuild_blocks_sql() -> String {
    format!(
        "DELETE FROM outbox_blocks; \
         INSERT INTO outbox_blocks (business_id, block) \
         SELECT DISTINCT business_id, id >> {BLOCK_BITS} FROM outbox"
    )
}

/// Blocks of a business [`blocks_back`] reads at a time.
const BLOCKS_READ: i64 = 64;

/// Walks the blocks of ids `business_id` has events in (`outbox_blocks`), newest first from block
/// `top` down, calling `f` with each one's range of ids (`low..high`) until it returns false.
pub(crate) fn blocks_back(
    c: &Conn,
    business_id: &str,
    mut top: i64,
    mut f: impl FnMut(i64, i64) -> StoreResult<bool>,
) -> StoreResult<()> {
    loop {
        let blocks: Vec<i64> = c
            .prepare_cached(
                "SELECT block FROM outbox_blocks WHERE business_id = ?1 AND block <= ?2 \
                 ORDER BY block DESC LIMIT ?3",
            )?
            .query_map(params![business_id, top, BLOCKS_READ], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        for &block in &blocks {
            if !f(block << BLOCK_BITS, (block + 1) << BLOCK_BITS)? {
                return Ok(());
            }
        }
        match blocks.last() {
            Some(&last) if blocks.len() as i64 == BLOCKS_READ && last > 0 => top = last - 1,
            _ => return Ok(()),
        }
    }
}

/// A business's `skipped` events, newest first, as the deliveries API lists them: its
/// blocks newest first, each one's range of ids read backwards for the business's events.
/// Only ids above `floor` when given: a listing of every state that found `limit` events of
/// other states needs no skipped event older than the oldest of them.
fn skipped_events(
    c: &Conn,
    business_id: &str,
    filter: &DeliveryFilter,
    floor: Option<i64>,
) -> StoreResult<Vec<DeliveryRecord>> {
    let mut out = Vec::new();
    if filter.limit == 0 {
        return Ok(out);
    }
    let floor = floor.unwrap_or(0);
    // ids below `before`: the newest block that can hold one
    let top = filter.before.map_or(i64::MAX, |b| b.saturating_sub(1)) >> BLOCK_BITS;
    let events_sql = format!(
        "SELECT {DELIVERY_COLS} FROM outbox o WHERE o.id >= ?1 AND o.id < ?2 AND o.business_id = ?3 \
         AND o.state = 'skipped' AND (o.field = ?4 OR ?4 IS NULL) ORDER BY o.id DESC LIMIT ?5"
    );
    blocks_back(c, business_id, top, |low, high| {
        if high <= floor + 1 {
            return Ok(false);
        }
        let low = low.max(floor + 1);
        let high = high.min(filter.before.unwrap_or(i64::MAX));
        let left = (filter.limit - out.len()) as i64;
        let rows = c
            .prepare_cached(&events_sql)?
            .query_map(params![low, high, business_id, filter.field, left], |r| {
                delivery_from_row(r, false)
            })?;
        for r in rows {
            out.push(r?);
        }
        Ok(out.len() < filter.limit)
    })?;
    Ok(out)
}

/// Marks every due, unleased event of a WABA's number (of one field, if given) `skipped` at
/// once, so that a tenant without a subscriber costs one statement per claim, not one per event.
fn skip_all(conn: &Conn, req: &ClaimRequest, key: &SkipKey, reason: &str) -> StoreResult<()> {
    conn.prepare_cached(
        "UPDATE outbox SET state = 'skipped', last_error = ?4 WHERE business_id = ?1 AND state = 'pending' \
         AND waba_id = ?2 AND phone_id IS NOT DISTINCT FROM ?7 AND (field = ?3 OR ?3 IS NULL) AND next_attempt_at <= ?5 AND lease_until <= ?6",
    )?
    .execute(params![key.0, key.1, key.3, reason, req.now, req.wall_now, key.2])?;
    Ok(())
}

/// (business, WABA, phone number, one field or every field)
type SkipKey = (String, String, Option<String>, Option<String>);
/// (business, WABA, phone number)
pub(crate) type TargetKey = (String, String, Option<String>);

struct Candidate {
    id: i64,
    waba_id: String,
    phone_id: Option<String>,
    field: String,
    payload: String,
    created_at: Millis,
    window_start: Millis,
}

/// Most businesses one claim visits (bounds the writer's time per claim).
const CLAIM_BUSINESSES: usize = 2_000;
/// Most candidate fetches per business in one claim.
const CLAIM_ROUNDS: usize = 8;

/// The next business (in id order) that has pending events: one index seek.
fn next_business(conn: &Conn, after: &str) -> StoreResult<Option<String>> {
    Ok(conn
        .prepare_cached(
            "SELECT MIN(business_id) FROM outbox WHERE state = 'pending' AND business_id > ?1",
        )?
        .query_row(params![after], |r| r.get(0))?)
}

/// The due, unleased events of one business, oldest first.
macro_rules! candidates {
    () => {
        "SELECT o.id, o.waba_id, o.field, o.payload, o.created_at, \
         COALESCE((SELECT r.replayed_at FROM webhook_replays r WHERE r.outbox_id = o.id), o.created_at), o.phone_id \
         FROM outbox o WHERE o.state = 'pending' AND o.business_id = ?1 AND o.next_attempt_at <= ?2 \
         AND o.lease_until <= ?3 ORDER BY o.next_attempt_at, o.id LIMIT ?4"
    };
}

/// Claim state shared across the businesses one claim visits.
struct Claim<'a> {
    req: &'a ClaimRequest,
    lease_until: Millis,
    budget: HashMap<String, usize>,
    skipped: std::collections::HashSet<SkipKey>,
    out: Vec<ClaimedEvent>,
}

impl Claim<'_> {
    fn full(&self) -> bool {
        self.out.len() >= self.req.limit
    }

    /// Claims the due events of one business, oldest first, while its endpoint has room.
    fn business(&mut self, conn: &Conn, mem: &mut Memory, business_id: &str) -> StoreResult<()> {
        let req = self.req;
        for _ in 0..CLAIM_ROUNDS {
            let want = (req.limit - self.out.len()).min(req.per_endpoint.max(1));
            let rows = {
                // PostgreSQL: rows another transaction holds are skipped, not waited for (the
                // lease below is what keeps two nodes from delivering one event).
                let mut stmt = conn.prepare_cached(if conn.is_pg() {
                    concat!(candidates!(), " FOR UPDATE OF o SKIP LOCKED")
                } else {
                    candidates!()
                })?;
                let rows = stmt.query_map(
                    params![business_id, req.now, req.wall_now, want as i64],
                    |r| {
                        Ok(Candidate {
                            id: r.get(0)?,
                            waba_id: r.get(1)?,
                            field: r.get(2)?,
                            payload: r.get(3)?,
                            created_at: r.get(4)?,
                            window_start: r.get(5)?,
                            phone_id: r.get(6)?,
                        })
                    },
                )?;
                rows.collect::<Result<Vec<_>, _>>()?
            };
            let fetched = rows.len();
            let mut skipped_some = false;
            for c in rows {
                let key = crate::keys::Triple(business_id, &c.waba_id, c.phone_id.as_deref());
                let target = super::ops::route_cached(conn, mem, &key)?;
                if let Some(why) = skip_reason(target, &c.field) {
                    // a target with no URL skips every field; a field filter skips one field
                    let field = target.is_ok().then(|| c.field.clone());
                    let k = (
                        business_id.to_string(),
                        c.waba_id.clone(),
                        c.phone_id.clone(),
                        field,
                    );
                    if !self.skipped.contains(&k) {
                        skip_all(conn, req, &k, &why)?;
                        self.skipped.insert(k);
                        skipped_some = true;
                    }
                    continue;
                }
                let Ok((url, _, secret)) = target.clone() else {
                    continue;
                };
                let payload = match crate::events::value_json(c.payload) {
                    Ok(p) => p,
                    Err(why) => {
                        // never a body sent: held as dead, for a build that reads it to replay
                        tracing::warn!(event = c.id, %why, "an outbox event does not read; marked dead");
                        conn.prepare_cached(
                            "UPDATE outbox SET state = 'dead', last_error = ?2 WHERE id = ?1 AND state = 'pending'",
                        )?
                        .execute(params![c.id, format!("the stored event does not read: {why}")])?;
                        continue;
                    }
                };
                let left = self.budget.entry(url.clone()).or_insert_with(|| {
                    req.per_endpoint
                        .saturating_sub(req.in_flight.get(&url).copied().unwrap_or(0))
                });
                if *left == 0 {
                    // The endpoint is saturated: leave this business for a later claim.
                    return Ok(());
                }
                let attempt: Option<i64> = conn
                    .prepare_cached(
                        "UPDATE outbox SET lease_until = ?2, attempts = attempts + 1 \
                         WHERE id = ?1 AND state = 'pending' AND lease_until <= ?3 RETURNING attempts",
                    )?
                    .query_row(params![c.id, self.lease_until, req.wall_now], |r| r.get(0))
                    .optional()?;
                let Some(attempt) = attempt else { continue };
                *left -= 1;
                self.out.push(ClaimedEvent {
                    id: c.id,
                    business_id: business_id.to_string(),
                    waba_id: c.waba_id,
                    field: c.field,
                    payload,
                    created_at: c.created_at,
                    window_start: c.window_start,
                    attempt,
                    url,
                    app_secret: secret,
                });
                if self.full() {
                    return Ok(());
                }
            }
            if fetched < want && !skipped_some {
                return Ok(());
            }
        }
        Ok(())
    }
}

/// Leases due events, business by business from a random starting point (so no tenant's
/// backlog stands in front of another's): one index seek per business with pending events,
/// then at most a few small fetches for each, however long a saturated endpoint's backlog is.
fn claim(conn: &Conn, mem: &mut Memory, req: &ClaimRequest) -> StoreResult<Vec<ClaimedEvent>> {
    if req.limit == 0 {
        return Ok(Vec::new());
    }
    let mut st = Claim {
        req,
        lease_until: req.wall_now + req.lease_ms,
        budget: HashMap::new(),
        skipped: Default::default(),
        out: Vec::new(),
    };
    let start = crate::ids::object_id();
    let mut cursor = start.clone();
    let mut wrapped = false;
    for _ in 0..CLAIM_BUSINESSES {
        let Some(b) = next_business(conn, &cursor)? else {
            if wrapped {
                break;
            }
            wrapped = true;
            cursor = String::new();
            continue;
        };
        if wrapped && b > start {
            break;
        }
        st.business(conn, mem, &b)?;
        if st.full() {
            break;
        }
        cursor = b;
    }
    Ok(st.out)
}

fn finish(conn: &Conn, r: &AttemptResult) -> StoreResult<()> {
    conn.prepare_cached(
        "INSERT INTO webhook_attempts (outbox_id, attempt, url, at, status_code, latency_ms, error, outcome) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        r.outbox_id,
        r.attempt,
        r.url,
        r.at,
        r.status_code,
        r.latency_ms,
        r.error,
        r.outcome.as_str()
    ])?;
    match &r.outcome {
        // A 2xx settles the event whoever holds the lease now.
        AttemptOutcome::Delivered => conn
            .prepare_cached(
                "UPDATE outbox SET state = 'delivered', delivered_at = ?2, lease_until = 0, last_error = NULL \
                 WHERE id = ?1 AND state = 'pending'",
            )?
            .execute(params![r.outbox_id, r.at])?,
        AttemptOutcome::Retry { next_attempt_at } => conn
            .prepare_cached(
                "UPDATE outbox SET next_attempt_at = ?3, lease_until = 0, last_error = ?4 \
                 WHERE id = ?1 AND attempts = ?2 AND state = 'pending'",
            )?
            .execute(params![r.outbox_id, r.attempt, next_attempt_at, r.error])?,
        AttemptOutcome::Dead => conn
            .prepare_cached(
                "UPDATE outbox SET state = 'dead', lease_until = 0, last_error = ?3 \
                 WHERE id = ?1 AND attempts = ?2 AND state = 'pending'",
            )?
            .execute(params![r.outbox_id, r.attempt, r.error])?,
    };
    Ok(())
}

/// Every state an outbox event can be in.
const OUTBOX_STATES: [&str; 4] = ["pending", "delivered", "dead", "skipped"];

const DELIVERY_COLS: &str = "o.id, o.waba_id, o.phone_id, o.field, o.state, o.attempts, o.created_at, \
     o.next_attempt_at, o.delivered_at, o.last_error, \
     (SELECT a.status_code FROM webhook_attempts a WHERE a.outbox_id = o.id ORDER BY a.id DESC LIMIT 1), o.payload";

fn delivery_from_row(r: &Row, with_payload: bool) -> db::Result<DeliveryRecord> {
    let state: String = r.get(4)?;
    let next: Millis = r.get(7)?;
    let delivered: Option<Millis> = r.get(8)?;
    let payload: String = r.get(11)?;
    let id: i64 = r.get(0)?;
    Ok(DeliveryRecord {
        id: id.to_string(),
        waba_id: r.get(1)?,
        phone_number_id: r.get(2)?,
        field: r.get(3)?,
        next_attempt_at: (state == "pending").then(|| next.div_euclid(1000)),
        state,
        attempts: r.get(5)?,
        created_at: r.get::<_, Millis>(6)?.div_euclid(1000),
        delivered_at: delivered.map(|d| d.div_euclid(1000)),
        last_error: r.get(9)?,
        last_status_code: r.get::<_, Option<i64>>(10)?.map(|c| c as u16),
        value: with_payload.then(|| value_of(id, payload)),
        attempts_log: None,
    })
}

/// A delivery's `value` for the detail view: `null`, with a log line, when it does not read.
fn value_of(id: i64, stored: String) -> Value {
    crate::events::value_json(stored)
        .and_then(|v| serde_json::from_str(&v).map_err(|e| e.to_string()))
        .unwrap_or_else(|why| {
            tracing::warn!(event = id, %why, "an outbox event does not read");
            Value::Null
        })
}

fn attempts_of(conn: &Conn, id: i64) -> StoreResult<Vec<AttemptRecord>> {
    let mut stmt = conn.prepare_cached(
        "SELECT attempt, at, url, status_code, latency_ms, error, outcome FROM webhook_attempts WHERE outbox_id = ?1 ORDER BY id",
    )?;
    let rows = stmt.query_map(params![id], |r| {
        Ok(AttemptRecord {
            attempt: r.get(0)?,
            at: r.get::<_, Millis>(1)?.div_euclid(1000),
            url: r.get(2)?,
            status_code: r.get::<_, Option<i64>>(3)?.map(|c| c as u16),
            latency_ms: r.get(4)?,
            error: r.get(5)?,
            outcome: r.get(6)?,
        })
    })?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

fn mark_replayed(conn: &Conn, id: i64, now: Millis) -> StoreResult<()> {
    conn.prepare_cached(
        "INSERT INTO webhook_replays (outbox_id, replayed_at) VALUES (?1, ?2) \
         ON CONFLICT (outbox_id) DO UPDATE SET replayed_at = excluded.replayed_at",
    )?
    .execute(params![id, now])?;
    Ok(())
}

#[async_trait]
impl WebhookStore for SqliteStore {
    async fn app(&self, app_id: &str) -> StoreResult<Option<AppRecord>> {
        let id = app_id.to_string();
        self.read(move |c| {
            Ok(
                c.prepare_cached("SELECT id, business_id, secret FROM apps WHERE id = ?1")?
                    .query_row(params![id], |r| {
                        Ok(AppRecord {
                            id: r.get(0)?,
                            business_id: r.get(1)?,
                            secret: r.get(2)?,
                        })
                    })
                    .optional()?,
            )
        })
        .await
    }

    async fn app_subscription(
        &self,
        scope: &Scope,
        app_id: &str,
    ) -> StoreResult<Option<AppSubscription>> {
        let (b, a) = (scope.business_id.clone(), app_id.to_string());
        self.read(move |c| app_sub(c, &b, &a)).await
    }

    async fn set_app_subscription(
        &self,
        scope: &Scope,
        sub: AppSubscription,
    ) -> StoreResult<AppSubscription> {
        let b = scope.business_id.clone();
        self.write(move |c| {
            c.prepare_cached(
                "INSERT INTO webhook_subscriptions (business_id, app_id, callback_url, verify_token, fields, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (business_id, app_id) DO UPDATE SET \
                 callback_url = excluded.callback_url, verify_token = excluded.verify_token, fields = excluded.fields",
            )?
            .execute(params![
                b,
                sub.app_id,
                sub.callback_url,
                sub.verify_token,
                json_col(&serde_json::json!(sub.fields))?,
                sub.created_at
            ])?;
            app_sub(c, &b, &sub.app_id)?.ok_or_else(|| super::internal("subscription vanished"))
        })
        .await
    }

    async fn delete_app_subscription(&self, scope: &Scope, app_id: &str) -> StoreResult<bool> {
        let (b, a) = (scope.business_id.clone(), app_id.to_string());
        self.write(move |c| {
            Ok(c.execute(
                "DELETE FROM webhook_subscriptions WHERE business_id = ?1 AND app_id = ?2",
                params![b, a],
            )? > 0)
        })
        .await
    }

    async fn waba_subscriptions(
        &self,
        scope: &Scope,
        waba_id: &str,
    ) -> StoreResult<Vec<WabaSubscription>> {
        let (b, w) = (scope.business_id.clone(), waba_id.to_string());
        self.read(move |c| {
            let owned = c
                .prepare_cached("SELECT 1 FROM wabas WHERE id = ?1 AND business_id = ?2")?
                .query_row(params![w, b], |_| Ok(()))
                .optional()?
                .is_some();
            if !owned {
                return Ok(Vec::new());
            }
            let mut out = Vec::new();
            if let Some((app_id, _)) = first_app(c, &b)? {
                let (subscribed, override_callback_uri) = waba_link(c, &w, &app_id)?;
                if subscribed {
                    out.push(WabaSubscription {
                        waba_id: w.clone(),
                        app_id,
                        override_callback_uri,
                    });
                }
            }
            Ok(out)
        })
        .await
    }

    async fn subscribe_waba(
        &self,
        scope: &Scope,
        waba_id: &str,
        app_id: &str,
        override_callback: Option<(String, String)>,
        now: Millis,
    ) -> StoreResult<()> {
        let (b, w, a) = (
            scope.business_id.clone(),
            waba_id.to_string(),
            app_id.to_string(),
        );
        let (uri, token) = override_callback.unzip();
        self.write(move |c| {
            c.prepare_cached(
                "INSERT INTO webhook_waba_apps (waba_id, app_id, business_id, subscribed, override_callback_uri, override_verify_token, updated_at) \
                 VALUES (?1, ?2, ?3, 1, ?4, ?5, ?6) ON CONFLICT (waba_id, app_id) DO UPDATE SET subscribed = 1, \
                 override_callback_uri = excluded.override_callback_uri, override_verify_token = excluded.override_verify_token, \
                 updated_at = excluded.updated_at",
            )?
            .execute(params![w, a, b, uri, token, now])?;
            Ok(())
        })
        .await
    }

    async fn unsubscribe_waba(
        &self,
        scope: &Scope,
        waba_id: &str,
        app_id: &str,
        now: Millis,
    ) -> StoreResult<()> {
        let (b, w, a) = (
            scope.business_id.clone(),
            waba_id.to_string(),
            app_id.to_string(),
        );
        self.write(move |c| {
            c.prepare_cached(
                "INSERT INTO webhook_waba_apps (waba_id, app_id, business_id, subscribed, updated_at) \
                 VALUES (?1, ?2, ?3, 0, ?4) ON CONFLICT (waba_id, app_id) DO UPDATE SET subscribed = 0, \
                 override_callback_uri = NULL, override_verify_token = NULL, updated_at = excluded.updated_at",
            )?
            .execute(params![w, a, b, now])?;
            Ok(())
        })
        .await
    }

    async fn set_phone_override(
        &self,
        scope: &Scope,
        phone_id: &str,
        callback: Option<(String, String)>,
        now: Millis,
    ) -> StoreResult<()> {
        let (b, p) = (scope.business_id.clone(), phone_id.to_string());
        self.write(move |c| {
            match callback {
                None => c
                    .prepare_cached("DELETE FROM webhook_phone_overrides WHERE phone_id = ?1 AND business_id = ?2")?
                    .execute(params![p, b])?,
                Some((uri, token)) => c
                    .prepare_cached(
                        "INSERT INTO webhook_phone_overrides (phone_id, business_id, callback_uri, verify_token, updated_at) \
                         VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (phone_id) DO UPDATE SET callback_uri = excluded.callback_uri, \
                         verify_token = excluded.verify_token, updated_at = excluded.updated_at",
                    )?
                    .execute(params![p, b, uri, token, now])?,
            };
            Ok(())
        })
        .await
    }

    async fn claim_webhooks(&self, req: ClaimRequest) -> StoreResult<Vec<ClaimedEvent>> {
        // No savepoint: inside one, each `skip_all` UPDATE truncated a statement journal that
        // holds everything the claim had journaled before it, which made a claim quadratic in
        // the keys it skips (docs/BENCHMARKS.md). A claim fails only on a database error, which
        // rolls back its whole batch.
        // it writes the outbox only: the facts sends read of their customers stay
        self.write_fast_on(Route::Global, Facts::Keeps, move |c, m| claim(c, m, &req))
            .await
    }

    async fn webhooks_due(&self, now: Millis, wall_now: Millis) -> StoreResult<bool> {
        self.read(move |c| {
            Ok(c.prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM outbox WHERE state = 'pending' AND next_attempt_at <= ?1 AND lease_until <= ?2)",
            )?
            .query_row(params![now, wall_now], |r| r.get(0))?)
        })
        .await
    }

    async fn finish_webhook_attempt(&self, result: AttemptResult) -> StoreResult<()> {
        // One per delivery, so no savepoint (its page copies cost more than the job); it fails
        // only on a database error, which rolls back its batch. Answered at the COMMIT, not
        // after the fsync: the worker only frees the delivery's slot on the answer, and an
        // attempt's record lost to a power cut leaves the event leased, then delivered again
        // (at-least-once), as a crash between the POST and the record does.
        self.write_fast_at_commit(Facts::Keeps, move |c, _| finish(c, &result))
            .await
    }

    async fn webhook_deliveries(
        &self,
        scope: &Scope,
        filter: DeliveryFilter,
    ) -> StoreResult<Vec<DeliveryRecord>> {
        let b = scope.business_id.clone();
        self.read(move |c| {
            // One walk of (business, state, id) per state asked, merged newest first: the
            // outbox keeps no index by business alone (each index costs every event a write).
            // Skipped events are not in `outbox_listed`, whose condition the statement states
            // so that the planner takes it; they are found by their blocks instead.
            let sql = format!(
                "SELECT {DELIVERY_COLS} FROM outbox o WHERE o.business_id = ?1 AND o.state = ?2 \
                 AND o.state <> 'skipped' AND (o.field = ?3 OR ?3 IS NULL) AND (o.id < ?4 OR ?4 IS NULL) \
                 ORDER BY o.id DESC LIMIT ?5"
            );
            let states = match &filter.state {
                Some(s) => vec![s.clone()],
                None => OUTBOX_STATES.iter().map(|s| s.to_string()).collect(),
            };
            let mut stmt = c.prepare_cached(&sql)?;
            let mut all = Vec::new();
            // skipped events last, read above the oldest of `limit` others if found
            let skipped = states.iter().any(|s| s == "skipped");
            for state in states {
                if state == "skipped" {
                    continue;
                }
                let rows = stmt.query_map(
                    params![b, state, filter.field, filter.before, filter.limit as i64],
                    |r| delivery_from_row(r, false),
                )?;
                for r in rows {
                    all.push(r?);
                }
            }
            // (ids are rendered as strings: compare them as the numbers they are)
            let id = |d: &DeliveryRecord| d.id.parse::<i64>().unwrap_or(0);
            all.sort_by_key(|d| std::cmp::Reverse(id(d)));
            all.truncate(filter.limit);
            if skipped {
                let floor = (all.len() == filter.limit).then(|| all.last().map(id)).flatten();
                all.extend(skipped_events(c, &b, &filter, floor)?);
                all.sort_by_key(|d| std::cmp::Reverse(id(d)));
                all.truncate(filter.limit);
            }
            Ok(all)
        })
        .await
    }

    async fn webhook_delivery(
        &self,
        scope: &Scope,
        id: i64,
    ) -> StoreResult<Option<DeliveryRecord>> {
        let b = scope.business_id.clone();
        self.read(move |c| {
            let sql = format!(
                "SELECT {DELIVERY_COLS} FROM outbox o WHERE o.id = ?1 AND o.business_id = ?2"
            );
            let d = c
                .prepare_cached(&sql)?
                .query_row(params![id, b], |r| delivery_from_row(r, true))
                .optional()?;
            match d {
                None => Ok(None),
                Some(mut d) => {
                    d.attempts_log = Some(attempts_of(c, id)?);
                    Ok(Some(d))
                }
            }
        })
        .await
    }

    async fn replay_webhook(&self, scope: &Scope, id: i64, now: Millis) -> StoreResult<bool> {
        let b = scope.business_id.clone();
        self.write(move |c| {
            let n = c
                .prepare_cached(
                    "UPDATE outbox SET state = 'pending', next_attempt_at = ?3, lease_until = 0, delivered_at = NULL \
                     WHERE id = ?1 AND business_id = ?2 AND state != 'pending'",
                )?
                .execute(params![id, b, now])?;
            if n > 0 {
                mark_replayed(c, id, now)?;
            }
            Ok(n > 0)
        })
        .await
    }

    async fn replay_dead_webhooks(&self, scope: &Scope, now: Millis) -> StoreResult<u64> {
        let b = scope.business_id.clone();
        self.write(move |c| {
            c.prepare_cached(
                "INSERT INTO webhook_replays (outbox_id, replayed_at) \
                 SELECT id, ?2 FROM outbox WHERE business_id = ?1 AND state = 'dead' AND state <> 'skipped' AND true \
                 ON CONFLICT (outbox_id) DO UPDATE SET replayed_at = excluded.replayed_at",
            )?
            .execute(params![b, now])?;
            let n = c
                .prepare_cached(
                    "UPDATE outbox SET state = 'pending', next_attempt_at = ?2, lease_until = 0 \
                     WHERE business_id = ?1 AND state = 'dead' AND state <> 'skipped'",
                )?
                .execute(params![b, now])?;
            Ok(n as u64)
        })
        .await
    }

    async fn purge_webhooks(&self, before: Millis, limit: usize) -> StoreResult<u64> {
        self.write_mem_on(Route::Global, Facts::Keeps, move |c, mem| {
            let ids = purgeable(c, before, limit, &mut mem.purge_resume)?;
            if ids.is_empty() {
                return Ok(0);
            }
            let list = serde_json::to_string(&ids).map_err(super::internal)?;
            // the ids go as one JSON array parameter, unpacked by each dialect's JSON functions
            let ids_in = if c.is_pg() {
                "IN (SELECT value::bigint FROM json_array_elements_text((?1::text)::json))"
            } else {
                "IN (SELECT value FROM json_each(?1))"
            };
            let statements = [
                format!("DELETE FROM webhook_attempts WHERE outbox_id {ids_in}"),
                format!("DELETE FROM webhook_replays WHERE outbox_id {ids_in}"),
                format!("DELETE FROM outbox WHERE id {ids_in}"),
            ];
            // the blocks the events were in, to drop those left without events
            let blocks: Vec<(String, i64)> = c
                .prepare_cached(&format!(
                    "SELECT DISTINCT business_id, id >> {BLOCK_BITS} FROM outbox WHERE id {ids_in}"
                ))?
                .query_map(params![list], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?;
            for sql in &statements {
                c.prepare_cached(sql)?.execute(params![list])?;
            }
            drop_emptied_blocks(c, mem, blocks)?;
            Ok(ids.len() as u64)
        })
        .await
    }
}

/// After the purge deleted events of `blocks` (business, block), drops the rows of
/// `outbox_blocks` whose business has no event left in the block, reading each block's
/// remaining businesses once (a range of at most 4096 ids). The writer's memory may name a
/// dropped block: it forgets it, and writes the row again with the business's next event there.
fn drop_emptied_blocks(c: &Conn, mem: &mut Memory, blocks: Vec<(String, i64)>) -> StoreResult<()> {
    let mut left: HashMap<i64, Vec<String>> = HashMap::new();
    for (business, block) in blocks {
        if let std::collections::hash_map::Entry::Vacant(e) = left.entry(block) {
            let remaining = c
                .prepare_cached(
                    "SELECT DISTINCT business_id FROM outbox WHERE id >= ?1 AND id < ?2",
                )?
                .query_map(
                    params![block << BLOCK_BITS, (block + 1) << BLOCK_BITS],
                    |r| r.get(0),
                )?
                .collect::<Result<_, _>>()?;
            e.insert(remaining);
        }
        if left[&block].contains(&business) {
            continue;
        }
        mem.outbox_blocks.remove(&business);
        c.prepare_cached("DELETE FROM outbox_blocks WHERE business_id = ?1 AND block = ?2")?
            .execute(params![business, block])?;
    }
    Ok(())
}

/// Rows of a business's events in one state that the purge reads at a time.
const PURGE_WALK: i64 = 256;

/// PostgreSQL: delivered events due before `before` and below `newest`, up to `limit` in all,
/// found on `outbox_delivered` ((state, next_attempt_at) of delivered events): there a walk per
/// business would be a round trip per business while the purge, an instance-wide job, holds
/// every shard's writes back.
fn delivered_by_age(
    c: &Conn,
    before: Millis,
    newest: i64,
    limit: usize,
    ids: &mut Vec<i64>,
) -> StoreResult<()> {
    let mut stmt = c.prepare_cached(
        "SELECT id FROM outbox WHERE state = 'delivered' AND next_attempt_at < ?1 AND id < ?2 LIMIT ?3",
    )?;
    let rows = stmt.query_map(params![before, newest, limit as i64], |r| r.get(0))?;
    for r in rows {
        ids.push(r?);
    }
    Ok(())
}

/// SQLite: delivered events due before `before` and below `newest`, up to `limit` in all: for
/// each business with some (one seek of `outbox_listed` each), the business's oldest first.
fn delivered_by_business(
    c: &Conn,
    before: Millis,
    newest: i64,
    limit: usize,
    ids: &mut Vec<i64>,
) -> StoreResult<()> {
    // (`state <> 'skipped'` is `outbox_listed`'s condition, stated so the planner takes it)
    let mut business = String::new();
    while ids.len() < limit {
        let next: Option<String> = c
            .query_row(
                "SELECT business_id FROM outbox WHERE state = 'delivered' AND state <> 'skipped' \
                 AND business_id > ?1 ORDER BY state, business_id LIMIT 1",
                params![business],
                |r| r.get(0),
            )
            .optional()?;
        let Some(next) = next else { break };
        business = next;
        let mut stmt = c.prepare_cached(
            "SELECT id, created_at, next_attempt_at, 1 FROM outbox \
             WHERE state = 'delivered' AND state <> 'skipped' AND business_id = ?1 AND id > ?2 AND id < ?3 \
             ORDER BY state, business_id, id LIMIT ?4",
        )?;
        walk(&mut stmt, Some(&business), 0, newest, before, limit, ids)?;
    }
    Ok(())
}

/// Up to `limit` delivered or skipped events whose last attempt was due before `before`.
/// Delivered ones: [`delivered_by_business`] on SQLite, without an index of their own;
/// [`delivered_by_age`] on PostgreSQL. Skipped ones, which no index by state holds: every
/// event, oldest first. Ids follow creation and an event's last attempt is due no earlier than
/// its creation, so a walk ends at the first event created at or after `before`: every later
/// one is as new. An event created before it but done since (retried, or
/// replayed), or in another state, is stepped over. An event created out of order (the clock
/// stepped back) only delays the events after it until it is old enough too. The newest event
/// of the outbox stays: SQLite's outbox (without `AUTOINCREMENT`) numbers a new event one past
/// it, so an id is never given twice (PostgreSQL's sequence would not, but both keep it).
///
/// The walk over the table steps over the old events it cannot purge (dead ones, which stay)
/// once per round of calls rather than once per call: a call that stops at `limit` leaves in
/// `resume` the id it stopped at, where the next one goes on; a call that returns fewer (the
/// round is done) sets it back to 0. An event that becomes skipped behind it meanwhile waits for
/// the next round.
fn purgeable(c: &Conn, before: Millis, limit: usize, resume: &mut i64) -> StoreResult<Vec<i64>> {
    let mut ids: Vec<i64> = Vec::new();
    let newest: Option<i64> = c.query_row("SELECT MAX(id) FROM outbox", params![], |r| r.get(0))?;
    let Some(newest) = newest else {
        return Ok(ids);
    };
    if c.is_pg() {
        delivered_by_age(c, before, newest, limit, &mut ids)?;
    } else {
        delivered_by_business(c, before, newest, limit, &mut ids)?;
    }
    if ids.len() < limit {
        let mut stmt = c.prepare_cached(
            "SELECT id, created_at, next_attempt_at, state = 'skipped' FROM outbox \
             WHERE id > ?1 AND id < ?2 ORDER BY id LIMIT ?3",
        )?;
        *resume = walk(&mut stmt, None, *resume, newest, before, limit, &mut ids)?;
    }
    if ids.len() < limit {
        *resume = 0;
    }
    Ok(ids)
}

/// One walk of [`purgeable`] from after the id `after`: `stmt` reads `PURGE_WALK` events at a
/// time after an id and below `newest` (its last three parameters, after the business if it
/// walks one), each as (id, created_at, due, whether its state is the walk's), oldest first.
/// Returns the last id read.
fn walk(
    stmt: &mut db::Stmt<'_>,
    business: Option<&str>,
    mut after: i64,
    newest: i64,
    before: Millis,
    limit: usize,
    ids: &mut Vec<i64>,
) -> StoreResult<i64> {
    loop {
        let rows = match business {
            None => stmt.query_map(params![after, newest, PURGE_WALK], event_age)?,
            Some(b) => stmt.query_map(params![b, after, newest, PURGE_WALK], event_age)?,
        };
        let mut read = 0;
        for row in rows {
            let (id, created_at, due, in_state) = row?;
            read += 1;
            after = id;
            if created_at >= before {
                return Ok(after);
            }
            if in_state && due < before {
                ids.push(id);
                if ids.len() >= limit {
                    return Ok(after);
                }
            }
        }
        if read < PURGE_WALK {
            return Ok(after);
        }
    }
}

fn event_age(r: &Row) -> db::Result<(i64, i64, i64, bool)> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sqlite::{SqliteOptions, SqliteStore};
    use serde_json::json;

    async fn store_with_tenant(hook: bool) -> (tempfile_free::Dir, SqliteStore, CreatedTenant) {
        let dir = tempfile_free::Dir::new();
        let s = SqliteStore::open(&dir.path("t.db"), SqliteOptions::default()).unwrap();
        let t = tenant_a(&s, hook).await;
        (dir, s, t)
    }

    /// The tenant "A" of [`store_with_tenant`], on the store `s`.
    async fn tenant_a(s: &SqliteStore, hook: bool) -> CreatedTenant {
        crate::Store::create_tenant(
            s,
            NewTenant {
                business_name: "A".into(),
                verified: false,
                phone_numbers: vec![NewPhoneNumber {
                    display_phone_number: "+1 555 010 0001".into(),
                    verified_name: "A".into(),
                }],
                webhook: hook.then(|| NewWebhook {
                    callback_url: "http://127.0.0.1:9/hook".into(),
                    verify_token: "vt".into(),
                }),
            },
            1_000,
        )
        .await
        .unwrap()
    }

    /// What keeps a test's database: SQLite's folder, or PostgreSQL's database.
    #[allow(dead_code)]
    enum Kept {
        Dir(tempfile_free::Dir),
        Pg(crate::postgres::testing::TestDb),
    }

    /// [`store_with_tenant`] without a webhook on each backend: SQLite, and PostgreSQL when its
    /// test cluster answers (or is required: see `postgres::testing`).
    async fn on_each_backend(test: &str) -> Vec<(Kept, SqliteStore, CreatedTenant)> {
        let (d, s, t) = store_with_tenant(false).await;
        let mut out = vec![(Kept::Dir(d), s, t)];
        if let Some(db) = crate::postgres::testing::TestDb::create(test) {
            let s = SqliteStore::open_postgres(&db.url, Default::default()).unwrap();
            let t = tenant_a(&s, false).await;
            out.push((Kept::Pg(db), s, t));
        }
        out
    }

    /// A temp folder without a dev-dependency (the store crate has none).
    mod tempfile_free {
        pub struct Dir(std::path::PathBuf);
        impl Dir {
            pub fn new() -> Self {
                let p = std::env::temp_dir().join(format!(
                    "greenlight-store-test-{}-{}",
                    std::process::id(),
                    crate::ids::secret(6)
                ));
                std::fs::create_dir_all(&p).unwrap();
                Dir(p)
            }
            pub fn path(&self, f: &str) -> String {
                self.0.join(f).to_string_lossy().into_owned()
            }
        }
        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }

    async fn enqueue(s: &SqliteStore, t: &CreatedTenant, field: &'static str, now: Millis) {
        enqueue_n(s, t, field, now, 1).await
    }

    async fn enqueue_n(
        s: &SqliteStore,
        t: &CreatedTenant,
        field: &'static str,
        now: Millis,
        n: usize,
    ) {
        let (b, w) = (t.business_id.clone(), t.waba_id.clone());
        s.write(move |c| {
            for _ in 0..n {
                super::super::ops::enqueue(
                    c,
                    &b,
                    &w,
                    None,
                    field,
                    &serde_json::json!({"x": 1}),
                    now,
                )?;
            }
            Ok(())
        })
        .await
        .unwrap();
    }

    #[tokio::test]
    async fn the_purge_walks_each_business_oldest_first_and_steps_over_events_done_late() {
        let dir = tempfile_free::Dir::new();
        let s = SqliteStore::open(&dir.path("t.db"), SqliteOptions::default()).unwrap();
        crate::testkit::purge_cases(&s).await;
    }

    /// More events done late than one read of the walk holds: the walk reads on past them.
    #[tokio::test]
    async fn the_purge_reads_past_a_walks_worth_of_events_done_late() {
        let dir = tempfile_free::Dir::new();
        let s = SqliteStore::open(&dir.path("t.db"), SqliteOptions::default()).unwrap();
        let late = super::PURGE_WALK + 44;
        s.write(move |c| {
            let insert = "INSERT INTO outbox (business_id, waba_id, field, payload, created_at, next_attempt_at, state) \
                          VALUES ('a', 'w', 'messages', '{}', ?1, ?2, 'delivered')";
            for _ in 0..late {
                c.execute(insert, params![1_000, 9_000])?;
            }
            for _ in 0..5 {
                c.execute(insert, params![2_000, 2_000])?;
            }
            c.execute(insert, params![8_000, 8_000])?;
            Ok(())
        })
        .await
        .unwrap();
        assert_eq!(s.purge_webhooks(5_000, 100).await.unwrap(), 5);
        assert_eq!(s.purge_webhooks(5_000, 100).await.unwrap(), 0);
        let left: i64 = s
            .read(|c| Ok(c.query_row("SELECT COUNT(*) FROM outbox", params![], |r| r.get(0))?))
            .await
            .unwrap();
        assert_eq!(left, late + 1);
    }

    /// The outbox has no `AUTOINCREMENT`: the purge keeps the newest event, so an event's id
    /// is never given to another, even when every event is old enough to go.
    #[tokio::test]
    async fn the_purge_keeps_the_newest_event_so_ids_are_never_given_twice() {
        let (_d, s, t) = store_with_tenant(false).await;
        enqueue_n(&s, &t, "messages", 1_000, 3).await;
        async fn ids(s: &SqliteStore) -> Vec<(i64, String)> {
            s.read(|c| {
                let mut stmt = c.prepare("SELECT id, state FROM outbox ORDER BY id")?;
                let rows = stmt.query_map(params![], |r| Ok((r.get(0)?, r.get(1)?)))?;
                Ok(rows.collect::<Result<Vec<(i64, String)>, _>>()?)
            })
            .await
            .unwrap()
        }
        let before = ids(&s).await;
        assert_eq!(before.len(), 3);
        assert!(
            before.iter().all(|(_, state)| state == "skipped"),
            "{before:?}"
        );
        assert_eq!(s.purge_webhooks(i64::MAX, 100).await.unwrap(), 2);
        assert_eq!(ids(&s).await, before[2..], "the newest stays");
        assert_eq!(s.purge_webhooks(i64::MAX, 100).await.unwrap(), 0);
        enqueue(&s, &t, "messages", 2_000).await;
        let after = ids(&s).await;
        assert_eq!(after.len(), 2);
        assert_eq!(
            after[1].0,
            before[2].0 + 1,
            "one past the newest ever given"
        );
        // (this database was created without `AUTOINCREMENT`; older ones keep it)
        let schema: String = s
            .read(|c| {
                Ok(c.query_row(
                    "SELECT sql FROM sqlite_master WHERE name = 'outbox'",
                    [],
                    |r| r.get(0),
                )?)
            })
            .await
            .unwrap();
        assert!(!schema.contains("AUTOINCREMENT"), "{schema}");
    }

    fn req(now: Millis, wall: Millis, limit: usize) -> ClaimRequest {
        ClaimRequest {
            now,
            wall_now: wall,
            lease_ms: 1_000,
            limit,
            per_endpoint: 2,
            in_flight: HashMap::new(),
        }
    }

    #[tokio::test]
    async fn deliveries_of_every_state_are_listed_newest_first_and_page_by_id() {
        let (_d, s, t) = store_with_tenant(true).await;
        enqueue_n(&s, &t, "messages", 1_000, 12).await;
        // ids 1..=12, their states interleaved: 3k+1 delivered, 3k+2 dead, 3k pending (and one
        // skipped), so that no state's walk alone gives the newest ones
        s.write(|c| {
            c.execute_batch(
                "UPDATE outbox SET state = 'delivered' WHERE id % 3 = 1; \
                 UPDATE outbox SET state = 'dead' WHERE id % 3 = 2; \
                 UPDATE outbox SET state = 'skipped' WHERE id = 9",
            )?;
            Ok(())
        })
        .await
        .unwrap();
        let scope = Scope {
            business_id: t.business_id.clone(),
        };
        let list = |state: Option<&str>, before: Option<i64>, limit: usize| {
            let (s, scope) = (&s, scope.clone());
            let filter = DeliveryFilter {
                state: state.map(str::to_string),
                field: None,
                before,
                limit,
            };
            async move {
                s.webhook_deliveries(&scope, filter)
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|d| d.id.parse::<i64>().unwrap())
                    .collect::<Vec<_>>()
            }
        };
        assert_eq!(list(None, None, 5).await, vec![12, 11, 10, 9, 8]);
        assert_eq!(list(None, Some(8), 5).await, vec![7, 6, 5, 4, 3]);
        assert_eq!(list(None, Some(3), 5).await, vec![2, 1]);
        assert_eq!(
            list(None, None, 100).await,
            (1..=12).rev().collect::<Vec<_>>()
        );
        assert_eq!(list(Some("dead"), None, 3).await, vec![11, 8, 5]);
        assert_eq!(list(Some("pending"), None, 10).await, vec![12, 6, 3]);
        assert_eq!(list(Some("skipped"), None, 10).await, vec![9]);
        // another business sees none of them
        let other = Scope {
            business_id: "nobody".into(),
        };
        let none = s
            .webhook_deliveries(
                &other,
                DeliveryFilter {
                    state: None,
                    field: None,
                    before: None,
                    limit: 10,
                },
            )
            .await
            .unwrap();
        assert!(none.is_empty());
    }

    #[tokio::test]
    async fn claim_leases_fences_and_respects_endpoint_capacity() {
        let (_d, s, t) = store_with_tenant(true).await;
        for _ in 0..3 {
            enqueue(&s, &t, "messages", 1_000).await;
        }
        // per-endpoint capacity 2: only two are leased
        let got = s.claim_webhooks(req(1_000, 50, 10)).await.unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].attempt, 1);
        assert_eq!(got[0].url, "http://127.0.0.1:9/hook");
        // leased rows are not claimed again before the lease ends; the third one is
        let mut r = req(1_000, 60, 10);
        r.in_flight.insert(got[0].url.clone(), 1);
        let more = s.claim_webhooks(r).await.unwrap();
        assert_eq!(more.len(), 1);
        assert_ne!(more[0].id, got[0].id);
        // after the lease (wall time) the first rows come back, with a new attempt number
        let again = s.claim_webhooks(req(1_000, 2_000, 10)).await.unwrap();
        assert_eq!(again.len(), 2);
        assert!(again.iter().all(|e| e.attempt == 2));
        // the stale worker's failure is fenced off; the fresh one's retry lands
        let stale = AttemptResult {
            outbox_id: again[0].id,
            attempt: 1,
            url: "u".into(),
            at: 1_000,
            status_code: Some(500),
            latency_ms: 1,
            error: Some("HTTP 500".into()),
            outcome: AttemptOutcome::Dead,
        };
        s.finish_webhook_attempt(stale).await.unwrap();
        let d = s
            .webhook_delivery(
                &Scope {
                    business_id: t.business_id.clone(),
                },
                again[0].id,
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(d.state, "pending");
        assert_eq!(d.attempts_log.unwrap().len(), 1);
    }

    /// A claim waits for the WAL's fsync (no event leaves before it is on disk); an attempt's
    /// record does not (`synchronous=FULL`, the default): it is answered, and the event is
    /// delivered for every reader, while the fsync is held back.
    // the guard holds back the syncer thread, which takes no part in this test's tasks
    #[allow(clippy::await_holding_lock)]
    #[tokio::test]
    async fn an_attempts_record_is_answered_at_the_commit_and_a_claim_after_the_fsync() {
        let (_d, s, t) = store_with_tenant(true).await;
        enqueue_n(&s, &t, "messages", 1_000, 2).await;
        let got = s.claim_webhooks(req(1_000, 50, 1)).await.unwrap();
        let wait = std::time::Duration::from_millis(300);
        let held = s.sync_gate.0.lock().unwrap();
        let claim = s.claim_webhooks(req(1_000, 50, 1));
        tokio::pin!(claim);
        assert!(
            tokio::time::timeout(wait, &mut claim).await.is_err(),
            "a claim was answered before the fsync"
        );
        let done = AttemptResult {
            outbox_id: got[0].id,
            attempt: got[0].attempt,
            url: got[0].url.clone(),
            at: 1_001,
            status_code: Some(200),
            latency_ms: 1,
            error: None,
            outcome: AttemptOutcome::Delivered,
        };
        tokio::time::timeout(wait * 10, s.finish_webhook_attempt(done))
            .await
            .expect("an attempt's record waited for the fsync")
            .unwrap();
        let states: Vec<String> = deliveries(&s, &t)
            .await
            .into_iter()
            .map(|d| d.state)
            .collect();
        assert!(states.contains(&"delivered".to_string()), "{states:?}");
        drop(held);
        assert_eq!(claim.await.unwrap().len(), 1);
    }

    async fn deliveries(s: &SqliteStore, t: &CreatedTenant) -> Vec<DeliveryRecord> {
        let scope = Scope {
            business_id: t.business_id.clone(),
        };
        let filter = DeliveryFilter {
            limit: 10,
            ..Default::default()
        };
        s.webhook_deliveries(&scope, filter).await.unwrap()
    }

    /// A send's `sent` event is stored as its fields (`crate::events`): the claim hands the
    /// worker its `value`, the bytes the status renders to, and the detail view shows it.
    #[tokio::test]
    async fn a_sends_status_event_is_stored_as_its_fields_and_delivered_as_its_value() {
        let dir = tempfile_free::Dir::new();
        let s = SqliteStore::open(&dir.path("t.db"), SqliteOptions::default()).unwrap();
        let t = crate::testkit::tenant(&s, "B", &["+1 555 010 0001"]).await;
        let sent = crate::testkit::in_window_text(&s, &t, 1_700_000_000_000).await;
        let stored: Vec<(i64, String)> = s
            .read(|c| {
                let mut stmt = c.prepare("SELECT id, payload FROM outbox ORDER BY id")?;
                let rows = stmt.query_map(params![], |r| Ok((r.get(0)?, r.get(1)?)))?;
                Ok(rows.collect::<Result<Vec<_>, _>>()?)
            })
            .await
            .unwrap();
        // the inbound message's event, then the send's, then its `delivered`, which waits for
        // its time (the claim below, a second after the send, leaves it)
        assert_eq!(stored.len(), 3, "{stored:?}");
        assert!(
            crate::events::is_status_of(&stored[2].1, &sent.wamid, "delivered"),
            "{stored:?}"
        );
        let (id, raw) = &stored[1];
        assert!(
            raw.starts_with(&format!(
                r#"[1,"{}","sent",1700000001000,"15550000001","#,
                sent.wamid
            )),
            "{raw}"
        );
        assert!(raw.len() <= 240, "{} bytes: {raw}", raw.len());

        let got = s
            .claim_webhooks(req(1_700_000_001_000, 0, 10))
            .await
            .unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!((got[1].id, &got[0].payload), (*id, &stored[0].1));
        let value: Value = serde_json::from_str(&got[1].payload).unwrap();
        let st = &value["statuses"][0];
        assert_eq!(
            (&st["id"], &st["status"]),
            (&json!(sent.wamid), &json!("sent"))
        );
        assert_eq!(st["timestamp"], "1700000001");
        assert_eq!(st["conversation"]["expiration_timestamp"], "1700086401");
        assert_eq!(
            st["pricing"],
            json!({"billable": false, "category": "service",
                "pricing_model": "PMP", "type": "free_customer_service"})
        );
        assert_eq!(value["metadata"]["display_phone_number"], "15550100001");
        assert_eq!(value["contacts"][0]["user_id"], st["recipient_user_id"]);
        assert_eq!(
            got[1].payload,
            serde_json::to_string(&value).unwrap(),
            "the value as serde_json writes it (keys sorted), which the signature covers"
        );
        let scope = Scope {
            business_id: t.business_id.clone(),
        };
        let detail = s.webhook_delivery(&scope, *id).await.unwrap().unwrap();
        assert_eq!(detail.value, Some(value));
    }

    /// A stored event that does not read (a damaged row, or a form a newer build wrote) is
    /// never sent: the claim holds it dead with the reason, and goes on with the others, even
    /// when a whole fetch (two rows, at two per endpoint) was of such events.
    #[tokio::test]
    async fn a_stored_event_that_does_not_read_is_held_dead_not_sent() {
        let (_d, s, t) = store_with_tenant(true).await;
        enqueue_stored(&s, &t, r#"[1,"cut short"]"#.into()).await;
        enqueue_stored(&s, &t, r#"[2,"a newer form"]"#.into()).await;
        enqueue_stored(&s, &t, r#"{"x":1}"#.into()).await;
        let got = s.claim_webhooks(req(1_000, 0, 10)).await.unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].payload, r#"{"x":1}"#);
        let list = deliveries(&s, &t).await;
        let held: Vec<(&str, i64, &str)> = list[1..]
            .iter()
            .map(|d| {
                (
                    d.state.as_str(),
                    d.attempts,
                    d.last_error.as_deref().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            held,
            [
                (
                    "dead",
                    0,
                    "the stored event does not read: unknown stored form 2"
                ),
                (
                    "dead",
                    0,
                    "the stored event does not read: a status has 9 or 13 fields, not 2"
                ),
            ]
        );
        let scope = Scope {
            business_id: t.business_id.clone(),
        };
        let id: i64 = list[1].id.parse().unwrap();
        let detail = s.webhook_delivery(&scope, id).await.unwrap().unwrap();
        assert_eq!(detail.value, Some(Value::Null));
        // nothing left to claim
        assert!(!s.webhooks_due(1_000, 0).await.unwrap());
    }

    #[tokio::test]
    async fn events_nobody_can_receive_are_written_skipped() {
        let (_d, s, t) = store_with_tenant(false).await;
        enqueue(&s, &t, "messages", 1_000).await;
        // nothing for a claim to do: the event was skipped when it was written
        assert!(!s.webhooks_due(1_000, 0).await.unwrap());
        let list = deliveries(&s, &t).await;
        assert_eq!(list[0].state, "skipped");
        assert!(list[0]
            .last_error
            .as_deref()
            .unwrap()
            .contains("no callback URL"));
    }

    async fn enqueue_cached(s: &SqliteStore, t: &CreatedTenant) {
        enqueue_stored(s, t, r#"{"x":1}"#.into()).await
    }

    /// A `messages` event with this stored payload, through the send path's queueing.
    async fn enqueue_stored(s: &SqliteStore, t: &CreatedTenant, payload: String) {
        let (b, w) = (t.business_id.clone(), t.waba_id.clone());
        s.write_mem(move |c, mem| {
            let e = super::super::ops::Event {
                business_id: &b,
                waba_id: &w,
                phone_id: None,
                field: "messages",
                payload: &payload,
                now: 1_000,
            };
            super::super::ops::enqueue_cached(c, mem, &e)
        })
        .await
        .unwrap()
    }

    /// The send path's cached routing follows subscription changes (the `config_version`
    /// triggers): no subscription → skipped; subscribed → pending; removed → skipped again.
    #[tokio::test]
    async fn cached_routing_follows_subscription_changes() {
        let (_d, s, t) = store_with_tenant(false).await;
        let scope = Scope {
            business_id: t.business_id.clone(),
        };
        enqueue_cached(&s, &t).await;
        assert_eq!(deliveries(&s, &t).await[0].state, "skipped");
        s.set_app_subscription(
            &scope,
            AppSubscription {
                app_id: t.app_id.clone(),
                callback_url: "http://127.0.0.1:9/hook".into(),
                verify_token: "vt".into(),
                fields: Vec::new(),
                created_at: 1_000,
            },
        )
        .await
        .unwrap();
        enqueue_cached(&s, &t).await;
        assert_eq!(deliveries(&s, &t).await[0].state, "pending");
        assert!(s.delete_app_subscription(&scope, &t.app_id).await.unwrap());
        enqueue_cached(&s, &t).await;
        let list = deliveries(&s, &t).await;
        assert_eq!(list[0].state, "skipped", "{:?}", list[0].last_error);
    }

    /// Events whose subscription went away after they were queued are skipped by the claim,
    /// thousands in one claim, without clogging the queue.
    #[tokio::test]
    async fn events_orphaned_after_they_were_queued_are_skipped_not_stuck() {
        let (_d, s, t) = store_with_tenant(true).await;
        let scope = Scope {
            business_id: t.business_id.clone(),
        };
        enqueue(&s, &t, "messages", 1_000).await;
        enqueue_n(&s, &t, "messages", 1_000, 5_000).await;
        assert!(s.webhooks_due(1_000, 0).await.unwrap());
        // a claim before the change: the writer's cache now holds the event's route
        let leased = s.claim_webhooks(req(1_000, 0, 1)).await.unwrap();
        assert_eq!(leased.len(), 1);
        assert!(s.delete_app_subscription(&scope, &t.app_id).await.unwrap());
        assert!(s
            .claim_webhooks(req(1_000, 0, 10))
            .await
            .unwrap()
            .is_empty());
        assert!(!s.webhooks_due(1_000, 0).await.unwrap());
        let list = deliveries(&s, &t).await;
        let others: Vec<_> = list
            .iter()
            .filter(|d| d.id != leased[0].id.to_string())
            .collect();
        assert!(!others.is_empty());
        for d in others {
            assert_eq!(d.state, "skipped", "all but the one leased before");
            assert!(d.last_error.as_deref().unwrap().contains("no callback URL"));
        }
    }

    #[tokio::test]
    async fn field_filter_and_waba_unsubscribe() {
        let (_d, s, t) = store_with_tenant(true).await;
        let scope = Scope {
            business_id: t.business_id.clone(),
        };
        let mut sub = s
            .app_subscription(&scope, &t.app_id)
            .await
            .unwrap()
            .unwrap();
        sub.fields = vec!["account_update".into()];
        s.set_app_subscription(&scope, sub).await.unwrap();
        enqueue(&s, &t, "messages", 1_000).await;
        enqueue(&s, &t, "account_update", 1_000).await;
        let got = s.claim_webhooks(req(1_000, 0, 10)).await.unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].field, "account_update");
        s.unsubscribe_waba(&scope, &t.waba_id, &t.app_id, 1_000)
            .await
            .unwrap();
        assert!(s
            .waba_subscriptions(&scope, &t.waba_id)
            .await
            .unwrap()
            .is_empty());
        enqueue(&s, &t, "account_update", 1_000).await;
        assert!(s
            .claim_webhooks(req(1_000, 0, 10))
            .await
            .unwrap()
            .is_empty());
    }

    /// A saturated endpoint with a large backlog must not starve other tenants. (How long such a
    /// claim takes is a benchmark figure, not asserted here.)
    #[tokio::test]
    async fn claims_stay_cheap_behind_a_saturated_backlog() {
        let (_d, s, t) = store_with_tenant(true).await;
        enqueue_n(&s, &t, "messages", 1_000, 100_000).await;
        let (b2, w2) = {
            let t2 = second_tenant(
                &s,
                Some(NewWebhook {
                    callback_url: "http://127.0.0.1:10/other".into(),
                    verify_token: "vt".into(),
                }),
            )
            .await;
            (t2.business_id, t2.waba_id)
        };
        s.write(move |c| {
            super::super::ops::enqueue(c, &b2, &w2, None, "messages", &serde_json::json!({}), 1_000)
        })
        .await
        .unwrap();
        let mut r = req(1_000, 0, 64);
        r.per_endpoint = 8;
        r.in_flight.insert("http://127.0.0.1:9/hook".into(), 8);
        let got = s.claim_webhooks(r).await.unwrap();
        assert_eq!(got.len(), 1, "the other tenant's event is claimed");
        assert_eq!(got[0].url, "http://127.0.0.1:10/other");
    }

    #[tokio::test]
    async fn dead_events_replay_with_a_fresh_window() {
        let (_d, s, t) = store_with_tenant(true).await;
        let scope = Scope {
            business_id: t.business_id.clone(),
        };
        enqueue(&s, &t, "messages", 1_000).await;
        let e = s.claim_webhooks(req(1_000, 0, 10)).await.unwrap().remove(0);
        s.finish_webhook_attempt(AttemptResult {
            outbox_id: e.id,
            attempt: e.attempt,
            url: e.url.clone(),
            at: 1_000,
            status_code: None,
            latency_ms: 3,
            error: Some("connection refused".into()),
            outcome: AttemptOutcome::Dead,
        })
        .await
        .unwrap();
        assert_eq!(s.replay_dead_webhooks(&scope, 9_000).await.unwrap(), 1);
        let e2 = s.claim_webhooks(req(9_000, 0, 10)).await.unwrap().remove(0);
        assert_eq!(
            (e2.id, e2.attempt, e2.window_start, e2.created_at),
            (e.id, 2, 9_000, 1_000)
        );
        assert!(
            !s.replay_webhook(&scope, e.id, 9_500).await.unwrap(),
            "pending: no replay"
        );
        // retention: delivered rows go, dead ones stay
        s.finish_webhook_attempt(crate::testkit::delivered(&e2, 9_000))
            .await
            .unwrap();
        enqueue(&s, &t, "messages", 9_000).await;
        let e3 = s.claim_webhooks(req(9_000, 0, 10)).await.unwrap().remove(0);
        s.finish_webhook_attempt(AttemptResult {
            outbox_id: e3.id,
            attempt: e3.attempt,
            url: e3.url.clone(),
            at: 9_000,
            status_code: None,
            latency_ms: 1,
            error: Some("x".into()),
            outcome: AttemptOutcome::Dead,
        })
        .await
        .unwrap();
        assert_eq!(
            s.purge_webhooks(9_000, 100).await.unwrap(),
            0,
            "not old enough"
        );
        assert_eq!(s.purge_webhooks(i64::MAX, 100).await.unwrap(), 1);
        assert!(s.webhook_delivery(&scope, e.id).await.unwrap().is_none());
        assert!(s.webhook_delivery(&scope, e3.id).await.unwrap().is_some());
    }

    /// A second tenant in `s`; without a webhook its events are written `skipped`.
    async fn second_tenant(s: &SqliteStore, webhook: Option<NewWebhook>) -> CreatedTenant {
        crate::Store::create_tenant(
            s,
            NewTenant {
                business_name: "B".into(),
                verified: false,
                phone_numbers: vec![NewPhoneNumber {
                    display_phone_number: "+1 555 010 0002".into(),
                    verified_name: "B".into(),
                }],
                webhook,
            },
            1_000,
        )
        .await
        .unwrap()
    }

    /// An event of `business_id` written as the send path writes its events: through the
    /// writer's memory of the blocks (`note_block`).
    fn event_through_memory(
        c: &Conn,
        mem: &mut Memory,
        business_id: &str,
        waba_id: &str,
        now: Millis,
    ) -> StoreResult<()> {
        super::super::ops::enqueue_cached(
            c,
            mem,
            &super::super::ops::Event {
                business_id,
                waba_id,
                phone_id: None,
                field: "messages",
                payload: "{}",
                now,
            },
        )
    }

    /// Every id of `scope`'s deliveries in `state` (and `field`), page after page of `limit`.
    async fn every_page(
        s: &SqliteStore,
        scope: &Scope,
        state: Option<&str>,
        field: Option<&str>,
        limit: usize,
    ) -> Vec<i64> {
        let mut ids = Vec::new();
        let mut before = None;
        loop {
            let filter = DeliveryFilter {
                state: state.map(str::to_string),
                field: field.map(str::to_string),
                before,
                limit,
            };
            let page: Vec<i64> = s
                .webhook_deliveries(scope, filter)
                .await
                .unwrap()
                .iter()
                .map(|d| d.id.parse().unwrap())
                .collect();
            ids.extend(&page);
            if page.len() < limit {
                return ids;
            }
            before = page.last().copied();
        }
    }

    /// Skipped events are in no index by business (`outbox_listed` leaves them out): they are
    /// listed through the blocks of ids their business has events in. Two businesses' events
    /// interleaved over four blocks, one business's sparse in the last: each lists exactly its
    /// own, newest first, page after page, whatever the page's size, with the field filter, and
    /// merged with the other states.
    #[tokio::test]
    async fn skipped_events_are_listed_through_their_blocks() {
        for (_kept, s, a) in on_each_backend("skipped_listed_through_blocks").await {
            skipped_listing(s, a).await;
        }
    }

    async fn skipped_listing(s: SqliteStore, a: CreatedTenant) {
        let b = second_tenant(&s, None).await;
        let block = 1i64 << BLOCK_BITS;
        // ids 1..=3 blocks: a, a, b, a, a, b, …; then a's alone for most of a block, then one b
        let (ba, wa, bb, wb) = (
            a.business_id.clone(),
            a.waba_id.clone(),
            b.business_id.clone(),
            b.waba_id.clone(),
        );
        s.write(move |c| {
            let value = serde_json::json!({"x": 1});
            for i in 0..3 * block {
                let (bus, waba) = if i % 3 == 2 { (&bb, &wb) } else { (&ba, &wa) };
                let field = if i % 5 == 0 {
                    "account_update"
                } else {
                    "messages"
                };
                super::super::ops::enqueue(c, bus, waba, None, field, &value, 1_000)?;
            }
            for _ in 0..block - 10 {
                super::super::ops::enqueue(c, &ba, &wa, None, "messages", &value, 1_000)?;
            }
            super::super::ops::enqueue(c, &bb, &wb, None, "messages", &value, 1_000)?;
            Ok(())
        })
        .await
        .unwrap();
        let total = 4 * block - 9;
        let a_ids: Vec<i64> = (1..=total)
            .rev()
            .filter(|id| *id > 3 * block || (id - 1) % 3 != 2)
            .filter(|id| *id != total)
            .collect();
        let b_ids: Vec<i64> = (1..=total).rev().filter(|id| !a_ids.contains(id)).collect();
        let (sa, sb) = (
            Scope {
                business_id: a.business_id.clone(),
            },
            Scope {
                business_id: b.business_id.clone(),
            },
        );
        for limit in [1, 7, 500] {
            if limit > 1 {
                assert_eq!(
                    every_page(&s, &sa, Some("skipped"), None, limit).await,
                    a_ids
                );
            }
            assert_eq!(
                every_page(&s, &sb, Some("skipped"), None, limit).await,
                b_ids
            );
        }
        let b_accounts: Vec<i64> = b_ids
            .iter()
            .copied()
            .filter(|id| id <= &(3 * block) && (id - 1) % 5 == 0)
            .collect();
        assert!(!b_accounts.is_empty());
        assert_eq!(
            every_page(&s, &sb, Some("skipped"), Some("account_update"), 50).await,
            b_accounts
        );
        // with the other states: two of b's events delivered, one dead
        let (d1, d2, dead) = (b_ids[0], b_ids[100], b_ids[1000]);
        s.write(move |c| {
            c.execute(
                "UPDATE outbox SET state = 'delivered' WHERE id IN (?1, ?2)",
                params![d1, d2],
            )?;
            c.execute(
                "UPDATE outbox SET state = 'dead' WHERE id = ?1",
                params![dead],
            )?;
            Ok(())
        })
        .await
        .unwrap();
        assert_eq!(every_page(&s, &sb, None, None, 64).await, b_ids);
        assert_eq!(
            every_page(&s, &sb, Some("delivered"), None, 64).await,
            vec![d1, d2]
        );
        assert_eq!(
            every_page(&s, &sb, Some("skipped"), None, 64).await.len(),
            b_ids.len() - 3
        );
    }

    /// A database whose events have no blocks gets them written when it is opened, and the
    /// index `outbox_state` dropped if it has it (a database from before that index has
    /// `outbox_business_state`); its skipped events list.
    #[tokio::test]
    async fn a_database_without_blocks_gets_them_when_opened() {
        for old_index in [
            "CREATE INDEX outbox_state ON outbox(state, business_id, id)",
            "CREATE INDEX outbox_business_state ON outbox(business_id, state)",
        ] {
            let (d, s, a) = store_with_tenant(false).await;
            enqueue_n(&s, &a, "messages", 1_000, 5).await;
            s.close();
            drop(s);
            let path = d.path("t.db");
            let c = rusqlite::Connection::open(&path).unwrap();
            c.execute_batch(&format!(
                "DELETE FROM outbox_blocks; DELETE FROM meta WHERE key = 'outbox_blocks'; \
                 DROP INDEX outbox_listed; {old_index};"
            ))
            .unwrap();
            drop(c);
            let s = SqliteStore::open(&path, SqliteOptions::default()).unwrap();
            let scope = Scope {
                business_id: a.business_id.clone(),
            };
            assert_eq!(
                every_page(&s, &scope, Some("skipped"), None, 2).await,
                vec![5, 4, 3, 2, 1],
                "{old_index}"
            );
            let (indexes, blocks): (Vec<String>, i64) = s
                .read(|c| {
                    let mut st = c.prepare(
                        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'outbox' \
                         AND name NOT LIKE 'sqlite_%' ORDER BY 1",
                    )?;
                    let names = st
                        .query_map(params![], |r| r.get(0))?
                        .collect::<Result<_, _>>()?;
                    let n = c.query_row("SELECT COUNT(*) FROM outbox_blocks", params![], |r| {
                        r.get(0)
                    })?;
                    Ok((names, n))
                })
                .await
                .unwrap();
            assert_eq!(
                indexes,
                ["outbox_listed", "outbox_pending", "outbox_pending_due"],
                "{old_index}"
            );
            assert_eq!(blocks, 1);
        }
    }

    /// A job that wrote a business's first event of a block, and its row of `outbox_blocks`,
    /// and then failed takes the row with it: the writer forgets it remembered the row, and the
    /// business's next event in that block writes it again.
    #[tokio::test]
    async fn a_rolled_back_blocks_row_is_written_again_by_the_next_event() {
        let (_d, s, a) = store_with_tenant(false).await;
        let insert = |fail: bool| {
            let (bus, waba) = (a.business_id.clone(), a.waba_id.clone());
            s.write_mem_on(Route::Global, Facts::Keeps, move |c, mem| {
                event_through_memory(c, mem, &bus, &waba, 1_000)?;
                if fail {
                    return Err(StoreError::Internal("the job fails after its event".into()));
                }
                Ok(())
            })
        };
        assert!(insert(true).await.is_err());
        insert(false).await.unwrap();
        let scope = Scope {
            business_id: a.business_id.clone(),
        };
        assert_eq!(
            every_page(&s, &scope, Some("skipped"), None, 10).await,
            vec![1]
        );
    }

    /// The purge's walk over the table goes on where its last call stopped: old dead events
    /// (which stay) before the skipped ones are stepped over once a round, and every old
    /// skipped event goes, call after call, with the blocks left without events.
    #[tokio::test]
    async fn the_purge_walks_the_skipped_events_call_after_call() {
        for (_kept, s, a) in on_each_backend("purge_walks_skipped").await {
            purge_walk_of_skipped(s, a).await;
        }
    }

    async fn purge_walk_of_skipped(s: SqliteStore, a: CreatedTenant) {
        let b = second_tenant(&s, None).await;
        enqueue_n(&s, &a, "messages", 1_000, 10).await;
        s.write(|c| {
            c.execute_batch("UPDATE outbox SET state = 'dead'")?;
            Ok(())
        })
        .await
        .unwrap();
        enqueue_n(&s, &b, "messages", 1_000, 20).await;
        enqueue_n(&s, &a, "messages", 9_000, 1).await;
        let mut purged = Vec::new();
        loop {
            let n = s.purge_webhooks(5_000, 6).await.unwrap();
            purged.push(n);
            if n < 6 {
                break;
            }
        }
        assert_eq!(purged, vec![6, 6, 6, 2]);
        let (left, blocks): (Vec<(i64, String)>, Vec<String>) = s
            .read(|c| {
                let mut st = c.prepare("SELECT id, state FROM outbox ORDER BY id")?;
                let left = st
                    .query_map(params![], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<Result<_, _>>()?;
                let mut st = c.prepare("SELECT business_id FROM outbox_blocks")?;
                let blocks = st
                    .query_map(params![], |r| r.get(0))?
                    .collect::<Result<_, _>>()?;
                Ok((left, blocks))
            })
            .await
            .unwrap();
        let mut expect: Vec<(i64, String)> = (1..=10).map(|i| (i, "dead".to_string())).collect();
        expect.push((31, "skipped".into()));
        assert_eq!(left, expect);
        assert_eq!(blocks, vec![a.business_id.clone()], "b has no event left");
    }

    /// The purge drops a block's row with its business's last event in the block, and the
    /// business's next event writes it again: SQLite's writer, which remembered the row,
    /// forgets it; PostgreSQL's statement finds it gone.
    #[tokio::test]
    async fn a_purged_blocks_row_is_written_again_by_the_next_event() {
        for (_kept, s, a) in on_each_backend("purged_blocks_row_written_again").await {
            purged_blocks_row(s, a).await;
        }
    }

    async fn purged_blocks_row(s: SqliteStore, a: CreatedTenant) {
        let b = second_tenant(&s, None).await;
        // a's events through the writer's memory (the send path's `note_block`), then b's
        let insert = |t: &CreatedTenant, at: Millis| {
            let (bus, waba) = (t.business_id.clone(), t.waba_id.clone());
            s.write_mem_on(Route::Global, Facts::Keeps, move |c, mem| {
                event_through_memory(c, mem, &bus, &waba, at)
            })
        };
        insert(&a, 1_000).await.unwrap();
        insert(&a, 1_000).await.unwrap();
        insert(&b, 5_000).await.unwrap();
        let blocks = || {
            s.read(|c| {
                let mut st = c.prepare("SELECT business_id FROM outbox_blocks ORDER BY 1")?;
                let rows = st.query_map(params![], |r| r.get::<_, String>(0))?;
                Ok(rows.collect::<Result<Vec<_>, _>>()?)
            })
        };
        let mut both = vec![a.business_id.clone(), b.business_id.clone()];
        both.sort();
        assert_eq!(blocks().await.unwrap(), both);
        assert_eq!(s.purge_webhooks(2_000, 100).await.unwrap(), 2);
        assert_eq!(blocks().await.unwrap(), vec![b.business_id.clone()]);
        insert(&a, 6_000).await.unwrap();
        let scope = Scope {
            business_id: a.business_id.clone(),
        };
        assert_eq!(
            every_page(&s, &scope, Some("skipped"), None, 10).await,
            vec![4]
        );
    }
}
