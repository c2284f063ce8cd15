//! [`Store`] for [`SqliteStore`]: each write is one job on the writer thread (see `mod.rs`).

use super::read::{self, json_col};
use super::Memory;
use super::{internal, Facts, Route, SqliteStore};
use crate::db::{ArrayType, Conn, OptionalExtension, Params, RowStatement};
// the element types of row statements' array parameters
use crate::ids;
use crate::keys::{get_or_load, Pair, PairKey, ToKey, Triple};
use crate::params;
use crate::verdicts::Stored;
use crate::*;
use async_trait::async_trait;
use greenlight_domain::message::{MessageType, Recipient, SendRequest, TemplateRef};
use greenlight_domain::policy::compliance::{self, ComplianceFacts};
use greenlight_domain::policy::enforcement::{Violation, ViolationKind};
use greenlight_domain::policy::keywords::{self, KeywordAction};
use greenlight_domain::policy::opt_in::{self, Consent, Scope as ConsentScope};
use greenlight_domain::policy::pacing::{Bucket, ThroughputLevel, PAIR_BURST, PAIR_RATE_PER_SEC};
use greenlight_domain::policy::quality::FeedbackKind;
use greenlight_domain::policy::window::WindowState;
use greenlight_domain::policy::{
    decide_send, Decision, Outcome, SendFacts, TemplateFacts, TemplateStatus, Verdict,
};
use greenlight_domain::webhook::{self, ConversationInfo, Metadata, StatusChange};
use greenlight_domain::{bsuid, ApiError, Millis, DAY};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use ArrayType::{Float8 as F8, Int8 as I8, Text as Tx};

/// One webhook event to queue: a change of `field`, its `value` as JSON text (as `serde_json`
/// writes it: compact, keys sorted; `webhook::envelope_bytes` relies on it), or, for a status,
/// its fields as `crate::events` stores them.
pub(crate) struct Event<'a> {
    pub business_id: &'a str,
    pub waba_id: &'a str,
    pub phone_id: Option<&'a str>,
    pub field: &'a str,
    pub payload: &'a str,
    pub now: Millis,
}

/// Queues one webhook event (a change `value` of `field`) in the outbox, in the caller's
/// transaction. An event nobody can receive (the business has no webhook subscription, its
/// WABA is unsubscribed from the app, the field is not among the subscribed ones) is written
/// `skipped` at once, with the reason a claim would give, so that it never costs a claim.
pub(crate) fn enqueue(
    conn: &Conn,
    business_id: &str,
    waba_id: &str,
    phone_id: Option<&str>,
    field: &str,
    value: &Value,
    now: Millis,
) -> StoreResult<()> {
    let payload = json_col(value)?;
    let e = Event {
        business_id,
        waba_id,
        phone_id,
        field,
        payload: &payload,
        now,
    };
    let target = super::webhooks::resolve(conn, business_id, waba_id, phone_id)?;
    insert_event(conn, &e, super::webhooks::skip_reason(&target, field))?;
    super::webhooks::note_block(conn, None, business_id)
}

/// [`enqueue`] with where the events go taken from the writer's configuration cache: the send
/// path's version.
pub(crate) fn enqueue_cached(conn: &Conn, mem: &mut Memory, e: &Event) -> StoreResult<()> {
    let key = Triple(e.business_id, e.waba_id, e.phone_id);
    let skip = super::webhooks::skip_reason(route_cached(conn, mem, &key)?, e.field);
    insert_event(conn, e, skip)?;
    super::webhooks::note_block(conn, Some(&mut mem.outbox_blocks), e.business_id)
}

/// Where the events of a (business, WABA, number) go, from the writer's configuration cache
/// (resolved on a miss): for the send path that writes events and the claim that sends them.
pub(crate) fn route_cached<'m>(
    conn: &Conn,
    mem: &'m mut Memory,
    key: &Triple<'_>,
) -> StoreResult<&'m super::webhooks::Target> {
    get_or_load(&mut mem.config(conn)?.targets, key, || {
        super::webhooks::resolve(conn, key.0, key.1, key.2)
    })
}

fn insert_event(conn: &Conn, e: &Event, skip: Option<Cow<'_, str>>) -> StoreResult<()> {
    let state = if skip.is_some() { "skipped" } else { "pending" };
    conn.defer_row(
        &OUTBOX_ROW,
        params![
            e.business_id,
            e.waba_id,
            e.phone_id,
            e.field,
            e.payload,
            e.now,
            state,
            skip.as_deref()
        ],
    )?;
    Ok(())
}

/// An event into the outbox. Grouped on PostgreSQL: the events of a job's deliveries (or of
/// any writes between two reads) go in one statement, in order. PostgreSQL's statements also
/// write the block of each event's id (`id >> 12`, [`super::webhooks::BLOCK_BITS`]) into
/// `outbox_blocks` unless it is there: one probe of its key per business and block a statement
/// writes (SQLite's writer does it in [`super::webhooks::note_block`], knowing the new rowid).
/// Every statement that reads `outbox_blocks` in a job that may have written events names
/// `outbox` too, or follows one that does, so that the queued rows go before it. A business's
/// events are written by its shard's batches or by instance-wide ones, which exclude every
/// other (on every node), so no two transactions insert the same block's row at once.
static OUTBOX_ROW: RowStatement = RowStatement {
    table: "outbox",
    one: "INSERT INTO outbox (business_id, waba_id, phone_id, field, payload, created_at, next_attempt_at, state, last_error) \
          VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?7, ?8)",
    many: "WITH e AS (INSERT INTO outbox (business_id, waba_id, phone_id, field, payload, created_at, next_attempt_at, state, last_error) \
           SELECT b, w, p, f, d, c, c, s, e FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int8[], $7::text[], $8::text[]) \
           WITH ORDINALITY AS u(b, w, p, f, d, c, s, e, n) ORDER BY n RETURNING business_id, id) \
           INSERT INTO outbox_blocks (business_id, block) SELECT DISTINCT business_id, id >> 12 FROM e \
           ON CONFLICT DO NOTHING",
    pg_one: Some(
        "WITH e AS (INSERT INTO outbox (business_id, waba_id, phone_id, field, payload, created_at, next_attempt_at, state, last_error) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?7, ?8) RETURNING business_id, id) \
         INSERT INTO outbox_blocks (business_id, block) SELECT business_id, id >> 12 FROM e \
         ON CONFLICT DO NOTHING",
    ),
    types: &[Tx, Tx, Tx, Tx, Tx, I8, Tx, Tx],
};

/// A status of a message (grouped on PostgreSQL, as [`OUTBOX_ROW`]).
static STATUS_ROW: RowStatement = RowStatement {
    table: "statuses",
    one: "INSERT INTO statuses (message_id, status, at, errors) VALUES (?1, ?2, ?3, ?4)",
    many: "INSERT INTO statuses (message_id, status, at, errors) \
           SELECT m, s, a, e FROM unnest($1::text[], $2::text[], $3::int8[], $4::text[]) \
           WITH ORDINALITY AS u(m, s, a, e, n) ORDER BY n",
    pg_one: None,
    types: &[Tx, Tx, I8, Tx],
};

/// An outbound message (grouped on PostgreSQL: the sends of a batch insert theirs in one
/// statement, since the reads between them, of other tables, let the rows wait).
static MESSAGE_OUT_ROW: RowStatement = RowStatement {
    table: "messages",
    one: "INSERT INTO messages (id, business_id, phone_id, wa_id, direction, type, content, text, category, pricing, conversation_id, biz_opaque, status, verdicts, created_at, sent_at, delivered_at) \
          VALUES (?1, ?2, ?3, ?4, 'out', ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
    many: "INSERT INTO messages (id, business_id, phone_id, wa_id, direction, type, content, text, category, pricing, conversation_id, biz_opaque, status, verdicts, created_at, sent_at, delivered_at) \
           SELECT i, b, p, w, 'out', t, c, x, g, r, v, o, s, d, a, z, e FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], \
           $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::int8[], $15::int8[], $16::int8[]) \
           WITH ORDINALITY AS u(i, b, p, w, t, c, x, g, r, v, o, s, d, a, z, e, n) ORDER BY n",
    pg_one: None,
    types: &[Tx, Tx, Tx, Tx, Tx, Tx, Tx, Tx, Tx, Tx, Tx, Tx, Tx, I8, I8, I8],
};

/// [`MESSAGE_OUT_ROW`] on SQLite, with the message's links ([`super::chains::link`]) as its
/// last two parameters.
const MESSAGE_OUT_LINKED: &str = super::chains::message_insert!(
    "id, business_id, phone_id, wa_id, direction, type, content, text, category, pricing, conversation_id, biz_opaque, status, verdicts, created_at, sent_at, delivered_at",
    "?1, ?2, ?3, ?4, 'out', ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16",
    "?17, ?18",
    ""
)
.1;

/// A task that moves sent messages to `delivered` (kind `deliver`): written by builds before
/// the delivery was decided with the send, so a database of such a build (or its import) may
/// still hold some due; the scheduler runs them. Its subject is the messages' wamids, in send
/// order, separated by [`WAMIDS_SEP`]; it is due when the last of them is.
const WAMIDS_SEP: &str = " ";

/// The wamids of a delivery task's subject: at least one, so that every
/// task is listed with its deliveries and deleted with them (an empty one names no message).
fn task_wamids(subject: &str) -> impl Iterator<Item = &str> {
    subject.split(WAMIDS_SEP)
}

/// The deliveries `(task id, wamid)` of a delivery task, as [`deliver_all`] takes them.
fn task_deliveries(id: i64, subject: &str) -> impl Iterator<Item = (i64, String)> + '_ {
    task_wamids(subject).map(move |w| (id, w.to_string()))
}

/// A message moves to `delivered` at `?2`, its `delivered` status (grouped on PostgreSQL: a
/// job's deliveries in one statement).
static DELIVERED_ROW: RowStatement = RowStatement {
    table: "messages",
    one: "UPDATE messages SET status = 'delivered', delivered_at = ?2 WHERE id = ?1",
    many: "UPDATE messages m SET status = 'delivered', delivered_at = u.a \
           FROM unnest($1::text[], $2::int8[]) AS u(i, a) WHERE m.id = u.i",
    pg_one: None,
    types: &[Tx, I8],
};

/// A due task is done (grouped on PostgreSQL, as [`DELIVERED_ROW`]).
static TASK_DONE_ROW: RowStatement = RowStatement {
    table: "tasks",
    one: "DELETE FROM tasks WHERE id = ?1",
    many: "DELETE FROM tasks WHERE id = ANY($1::int8[])",
    pg_one: None,
    types: &[I8],
};

/// The tenant's settings, from the writer's configuration cache.
pub(crate) fn settings_cached(
    conn: &Conn,
    mem: &mut Memory,
    business_id: &str,
) -> StoreResult<Arc<TenantSettings>> {
    let cache = &mut mem.config(conn)?.settings;
    get_or_load(cache, business_id, || {
        Ok(settings(conn, business_id)?.into())
    })
    .cloned()
}

/// A business's tier, disabled flag and restrictions, from the writer's configuration cache.
fn enforcement_cached(
    conn: &Conn,
    mem: &mut Memory,
    business_id: &str,
) -> StoreResult<Arc<super::compliance::Enforcement>> {
    let cache = &mut mem.config(conn)?.enforcement;
    get_or_load(cache, business_id, || {
        Ok(super::compliance::Enforcement::load(conn, business_id)?.into())
    })
    .cloned()
}

/// A business's number, from the writer's configuration cache (shared: a delivery reads a
/// number's ids, and cloning its dozen strings for each was ~2 % of the writer).
fn phone_cached(
    conn: &Conn,
    mem: &mut Memory,
    business_id: &str,
    phone_id: &str,
) -> StoreResult<Option<Arc<PhoneNumber>>> {
    get_or_load(
        &mut mem.config(conn)?.phones,
        &Pair(business_id, phone_id),
        || Ok(read::phone(conn, business_id, phone_id)?.map(Arc::new)),
    )
    .cloned()
}

/// One audit-trail row.
pub(crate) struct AuditRow<'a> {
    pub business_id: &'a str,
    pub at: Millis,
    pub kind: &'a str,
    pub phone_id: Option<&'a str>,
    pub wa_id: Option<&'a str>,
    pub message_id: Option<&'a str>,
    pub error: &'a ApiError,
    pub verdicts: Option<&'a [Verdict]>,
}

/// Records a refusal, a rule-decided failure or an enforcement action, in the caller's
/// transaction. The rule is that of the first verdict carrying the error's code. The audit
/// trail keeps verdicts as objects, the form its API gives them in (a message row keeps them
/// compactly: `verdicts.rs`).
pub(crate) fn audit(conn: &Conn, a: &AuditRow) -> StoreResult<()> {
    let rule = a
        .verdicts
        .and_then(|vs| vs.iter().find(|v| v.code == Some(a.error.code)))
        .map(|v| &*v.rule);
    let verdicts = a
        .verdicts
        .map(serde_json::to_string)
        .transpose()
        .map_err(internal)?;
    conn.prepare_cached(
        "INSERT INTO audit_events (business_id, at, kind, phone_id, wa_id, message_id, rule, code, details, verdicts) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?
    .execute(params![a.business_id, a.at, a.kind, a.phone_id, a.wa_id, a.message_id, rule, a.error.code, a.error.details, verdicts])?;
    Ok(())
}

/// An audit row that is not an error (consent changes, verification decisions…).
#[allow(clippy::too_many_arguments)]
pub(crate) fn audit_note(
    conn: &Conn,
    business_id: &str,
    at: Millis,
    kind: &str,
    phone_id: Option<&str>,
    wa_id: Option<&str>,
    message_id: Option<&str>,
    rule: &str,
    details: &str,
) -> StoreResult<()> {
    conn.prepare_cached("INSERT INTO audit_events (business_id, at, kind, phone_id, wa_id, message_id, rule, details) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)")?
        .execute(params![business_id, at, kind, phone_id, wa_id, message_id, rule, details])?;
    Ok(())
}

/// STOP- and START-style keywords in a customer's message (policy::keywords), by the tenant's
/// `settings`: STOP revokes every active consent at once, with the message as proof; START
/// restores what the last STOP revoked. Whether it was such a keyword: the customer's consents,
/// which every number of the business reads, may have changed.
#[allow(clippy::too_many_arguments)]
pub(crate) fn on_keywords(
    conn: &Conn,
    settings: &TenantSettings,
    business_id: &str,
    phone: &PhoneNumber,
    wa_id: &str,
    wamid: &str,
    message: &serde_json::Map<String, Value>,
    now: Millis,
) -> StoreResult<bool> {
    let text = match message.get("type").and_then(Value::as_str).unwrap_or("") {
        "text" => message.get("text").and_then(|t| t["body"].as_str()),
        "button" => message
            .get("button")
            .and_then(|b| b["payload"].as_str().or(b["text"].as_str())),
        "interactive" => message.get("interactive").and_then(|i| {
            i["button_reply"]["title"]
                .as_str()
                .or(i["list_reply"]["title"].as_str())
        }),
        _ => None,
    };
    let Some(text) = text else { return Ok(false) };
    let Some(action) = keywords::classify(text, &settings.compliance.keywords) else {
        return Ok(false);
    };
    let proof = format!("customer message {wamid}: {text:?}");
    match action {
        KeywordAction::Stop => {
            let n = super::consent::revoke(
                conn,
                business_id,
                &crate::consent::Revocation {
                    wa_id: wa_id.to_string(),
                    scope: None,
                    by: opt_in::keyword_revocation_reason(text),
                    proof: Some(proof.clone()),
                    now,
                },
            )?;
            audit_note(
                conn,
                business_id,
                now,
                "consent",
                Some(&phone.id),
                Some(wa_id),
                Some(wamid),
                opt_in::RULE,
                &format!("the customer replied {text:?}: {n} consent record(s) revoked"),
            )?;
        }
        KeywordAction::Start => {
            let all = consents(conn, business_id, wa_id)?;
            let effect = opt_in::after_keyword(&all, KeywordAction::Start, now, &proof);
            for g in &effect.grant {
                let rec = crate::consent::NewOptIn {
                    wa_id: wa_id.to_string(),
                    scope: g.scope.as_str().to_string(),
                    source: "keyword".into(),
                    proof: g.proof.clone(),
                    captured_at: now,
                    recorded_by: format!("keyword:{}", keywords::normalize(text)),
                };
                super::consent::insert(conn, business_id, &phone.waba_id, &rec, now)?;
            }
            audit_note(
                conn,
                business_id,
                now,
                "consent",
                Some(&phone.id),
                Some(wa_id),
                Some(wamid),
                opt_in::RULE,
                &format!(
                    "the customer replied {text:?}: {} consent record(s) restored",
                    effect.grant.len()
                ),
            )?;
        }
    }
    Ok(true)
}

/// The customer's business-scoped user id, created on first contact.
fn user_id_for(conn: &Conn, business_id: &str, wa_id: &str, now: Millis) -> StoreResult<String> {
    match conn
        .prepare_cached("SELECT user_id FROM contacts WHERE business_id = ?1 AND wa_id = ?2")?
        .query_row(params![business_id, wa_id], |r| r.get::<_, String>(0))
        .optional()?
    {
        Some(u) => Ok(u),
        None => new_user_id(conn, business_id, wa_id, now),
    }
}

/// [`user_id_for`] for a customer whose contact row was just read and found absent: derives
/// the id and writes the row (no second read).
fn new_user_id(conn: &Conn, business_id: &str, wa_id: &str, now: Millis) -> StoreResult<String> {
    let d = Sha256::digest(format!("{business_id}|{wa_id}").as_bytes());
    let n = u64::from_be_bytes(d[..8].try_into().map_err(internal)?);
    let u = bsuid::format(bsuid::region(wa_id), n);
    conn.defer("INSERT INTO contacts (business_id, wa_id, user_id, created_at) VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING", params![business_id, wa_id, u, now])?;
    Ok(u)
}

/// What a send needs to know of its customer, read in one statement (one round trip on
/// PostgreSQL): the window, whether the number is on WhatsApp and blocked the business, the
/// customer's user id if it has one yet, whether they stopped marketing, the configuration
/// counter, and on PostgreSQL the two pacing buckets.
#[derive(Clone)]
pub(crate) struct CustomerFacts {
    pub(crate) window: WindowState,
    on_whatsapp: bool,
    blocked: bool,
    user_id: Option<String>,
    /// The writer's configuration counter (see [`Memory::config`]), read here to save a read.
    config_version: i64,
    /// The customer stopped marketing messages from this number.
    marketing_stopped: bool,
    /// SQLite only: the customer's consent records with the business, if a template send
    /// read them (see [`PairFacts`]); `None`, they are read when a template needs them.
    consents: Option<Vec<Consent>>,
    /// PostgreSQL only (SQLite keeps the buckets in the writer's memory): the number's and the
    /// pair's bucket rows, if any.
    buckets: (Option<Bucket>, Option<Bucket>),
}

/// SQLite: each (number, customer)'s [`CustomerFacts`] as the last send to it left them, for
/// the next send to the same customer, which then reads none of its six rows (nor, once a
/// template was sent, the customer's consent records: a send does not change them). A send takes its
/// customer's entry (a send refused leaves none; one answered from its idempotency record
/// takes none) and, once accepted and written, puts back what it leaves: the window as it
/// decided it, the user id it used, the rest as it read them, which a send does not change.
/// The same rule as [`Prefetched`] keeps them true: the writer forgets them all before any job
/// that may change them ([`super::Facts::May`]: every job but sends, deliveries and the webhook
/// workers' claims, attempts and purges), after a send that recorded a violation, and after a
/// batch that rolled back; a send puts its entry back only if nothing was forgotten since it
/// took it. A send that finds its entry still reads the configuration counter, as every job
/// does: if it moved since (a write outside this writer's jobs, such as an import), all of them
/// go. The rest relies on the writer being the database's only writer, as its pacing buckets
/// and chains' heads do.
/// A PostgreSQL shard's writer keeps them by the same rule, and only while no other batch wrote
/// its shard since its own last one ([`super::Memory::begun`]), with the pacing buckets the send
/// left (the database's other writers are other nodes' batches and instance-wide batches, which
/// the shard's counter of batches sees).
/// Bounded in two generations of half of [`PAIR_FACTS_MAX`] (of [`PAIR_FACTS_MAX`] divided among
/// a PostgreSQL node's shards' writers, see [`PairFacts::share`]), the older dropped when the
/// newer fills.
#[derive(Default)]
pub(crate) struct PairFacts {
    /// (number, customer) → the business and the facts.
    kept: crate::keys::Generations<PairKey, KeptFacts, PAIR_FACTS_MAX>,
    /// Bumped whenever everything is forgotten.
    generation: u64,
    /// Sends that found their customer's facts here, ever (for the tests).
    pub taken: u64,
}

/// Customers whose facts the SQLite writer keeps at most (a PostgreSQL node's shards' writers
/// together): 152 bytes each in their map (two maps of up to 50,000, which hashbrown sizes to
/// 65,536 slots: ~20 MB), plus each user id's text
/// (~32 bytes), plus for those sent a template their consent records (~150 bytes for one):
/// ~23 MB at most, ~38 MB if every one was sent a template (docs/BENCHMARKS.md, twenty-third,
/// twenty-fourth and thirty-third rounds).
const PAIR_FACTS_MAX: usize = 100_000;

/// Most consent records of a customer kept with its facts; with more, they are read by each
/// template send (a customer who opted in and out many times).
const CONSENTS_KEPT_MAX: usize = 8;

/// A customer's [`CustomerFacts`] as [`PairFacts`] keeps them: without the buckets, which are
/// PostgreSQL's, and with the business they were read for.
struct KeptFacts {
    business_id: crate::keys::IdKey,
    window: WindowState,
    user_id: Option<String>,
    config_version: i64,
    on_whatsapp: bool,
    blocked: bool,
    marketing_stopped: bool,
    /// Boxed: 8 bytes fewer an entry than a `Vec`.
    consents: Option<Box<[Consent]>>,
    /// PostgreSQL: the number's and the pair's pacing buckets as the send left them (the
    /// number's is taken from [`super::Memory::kept_number_buckets`] when that holds a newer
    /// one); boxed: SQLite's entries have none.
    buckets: Option<Box<[Option<Bucket>; 2]>>,
}

impl KeptFacts {
    fn new(business_id: &str, f: CustomerFacts) -> KeptFacts {
        KeptFacts {
            business_id: crate::keys::IdKey::of(business_id),
            window: f.window,
            user_id: f.user_id,
            config_version: f.config_version,
            on_whatsapp: f.on_whatsapp,
            blocked: f.blocked,
            marketing_stopped: f.marketing_stopped,
            consents: f.consents.map(Vec::into_boxed_slice),
            buckets: match f.buckets {
                (None, None) => None,
                (number, pair) => Some(Box::new([number, pair])),
            },
        }
    }

    fn into_facts(self) -> CustomerFacts {
        CustomerFacts {
            window: self.window,
            on_whatsapp: self.on_whatsapp,
            blocked: self.blocked,
            user_id: self.user_id,
            config_version: self.config_version,
            marketing_stopped: self.marketing_stopped,
            consents: self.consents.map(Vec::from),
            buckets: self.buckets.map_or((None, None), |b| (b[0], b[1])),
        }
    }
}

impl PairFacts {
    pub(crate) fn clear(&mut self) {
        self.kept.clear();
        self.generation += 1;
    }

    /// Moves whenever everything is forgotten.
    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }

    /// Bounds this writer's entries at its share of [`PAIR_FACTS_MAX`], as one of `shards`
    /// shards' writers of a PostgreSQL node.
    pub(crate) fn share(&mut self, shards: usize) {
        self.kept.max = Some(PAIR_FACTS_MAX / shards.max(1));
    }

    /// Whether the writer has facts of customer `pair` (of whichever business).
    fn holds(&self, pair: &PairKey) -> bool {
        self.kept.contains(pair)
    }

    /// The facts a send left of customer `pair`, if the writer still has them (taken: once).
    fn take(&mut self, business_id: &str, pair: &PairKey) -> Option<CustomerFacts> {
        let kept = self.kept.remove(pair)?;
        kept.business_id.is(business_id).then(|| kept.into_facts())
    }

    /// Keeps what a send left of its customer, unless everything was forgotten since
    /// `generation` (the send's start).
    fn put(&mut self, generation: u64, business_id: &str, pair: PairKey, facts: CustomerFacts) {
        if generation != self.generation {
            return;
        }
        self.kept.insert(pair, KeptFacts::new(business_id, facts));
    }

    /// Tests: how many customers' facts are kept.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.kept.len()
    }
}

/// The customer of a queued send or customer's message: its business, the number, the
/// customer's `wa_id`.
pub(crate) struct CustomerKey {
    pub business_id: String,
    pub phone_id: String,
    pub wa_id: String,
}

impl CustomerKey {
    /// The key of `cmd` (none when it names its customer by user id: that is read first).
    pub(crate) fn of(scope: &Scope, cmd: &SendCommand) -> Option<CustomerKey> {
        match &cmd.request.recipient {
            Recipient::WaId(w) => Some(CustomerKey {
                business_id: scope.business_id.clone(),
                phone_id: cmd.phone.id.clone(),
                wa_id: w.clone(),
            }),
            Recipient::UserId(_) => None,
        }
    }

    /// The customer who writes `cmd`.
    fn inbound(scope: &Scope, cmd: &InboundCommand) -> CustomerKey {
        CustomerKey {
            business_id: scope.business_id.clone(),
            phone_id: cmd.phone_id.clone(),
            wa_id: cmd.from.clone(),
        }
    }
}

/// PostgreSQL: the [`CustomerFacts`] of the sends (and customers' messages) of a round of
/// queued jobs, read in one statement before the round runs ([`prefetch_facts`]), each taken
/// once, by the first job of its number and customer. They stay true while only such jobs (and
/// jobs that keep them, see [`super::Facts`]) run: a send writes its own pair's window, its
/// customer's user id (derived from the business and the customer: the same whoever writes
/// it) and the pacing buckets, which are the writer's memory until `COMMIT` (see
/// [`apply_effects`]); a customer's message its own pair's window. So the writer forgets them
/// before any other job runs, a send that records a violation (configuration) and a keyword
/// (consents) forget them too, and a second job of the same pair in the round takes what the
/// first left, or reads afresh.
#[derive(Default)]
pub(crate) struct Prefetched {
    /// (number, customer) → business, facts.
    rows: crate::keys::HashMap<(String, String), (String, CustomerFacts)>,
    /// Sends that took prefetched facts, ever (what the tests and the benchmark look at).
    pub taken: u64,
}

impl Prefetched {
    pub(crate) fn clear(&mut self) {
        self.rows.clear();
    }

    /// The prefetched facts of a send's customer, if still valid.
    fn take(&mut self, business_id: &str, phone_id: &str, wa_id: &str) -> Option<CustomerFacts> {
        if self.rows.is_empty() {
            return None;
        }
        let (b, facts) = self.rows.remove(&Pair(phone_id, wa_id))?;
        let valid = b == business_id;
        self.taken += u64::from(valid);
        valid.then_some(facts)
    }
}

/// The columns of [`CustomerFacts`] for number `$p`, customer `$w` and business `$b`, from
/// the joined `windows` row `win` and pacing buckets `nb` (the number's), `pb` (the pair's).
macro_rules! facts_columns {
    ($p:literal, $w:literal, $b:literal) => {
        concat!(
            "win.last_inbound_at, win.referral_at, win.fep_until, \
             (SELECT on_whatsapp FROM users WHERE wa_id = ",
            $w,
            "), \
             (SELECT 1 FROM blocked_users WHERE phone_id = ",
            $p,
            " AND wa_id = ",
            $w,
            "), \
             (SELECT user_id FROM contacts WHERE business_id = ",
            $b,
            " AND wa_id = ",
            $w,
            "), \
             (SELECT n FROM config_version WHERE id = 1), \
             (SELECT stopped FROM marketing_prefs WHERE phone_id = ",
            $p,
            " AND wa_id = ",
            $w,
            ")"
        )
    };
}

/// The facts of one send (`?1` number, `?2` customer, `?3` business), SQLite.
const FACTS_ONE_SQLITE: &str = concat!(
    "SELECT ",
    facts_columns!("?1", "?2", "?3"),
    " FROM (SELECT 1 AS one) AS one \
     LEFT JOIN windows win ON win.phone_id = ?1 AND win.wa_id = ?2"
);

/// The facts of one send, PostgreSQL: with the bucket rows, each looked up once, each row
/// found as [`FACTS_MANY`] finds it (`LIMIT 1`: a plain index scan, not a bitmap).
const FACTS_ONE_PG: &str = concat!(
    "SELECT ",
    facts_columns!("?1", "?2", "?3"),
    ", nb.tokens, nb.updated_at, pb.tokens, pb.updated_at \
     FROM (SELECT 1 AS one) AS one \
     LEFT JOIN LATERAL (SELECT last_inbound_at, referral_at, fep_until FROM windows \
       WHERE phone_id = ?1 AND wa_id = ?2 LIMIT 1) win ON true \
     LEFT JOIN LATERAL (SELECT tokens, updated_at FROM pacing_buckets \
       WHERE phone_id = ?1 AND wa_id = '' LIMIT 1) nb ON true \
     LEFT JOIN LATERAL (SELECT tokens, updated_at FROM pacing_buckets \
       WHERE phone_id = ?1 AND wa_id = ?2 LIMIT 1) pb ON true"
);

/// The facts of many sends (arrays of numbers, customers, businesses), PostgreSQL: a row each,
/// in order. The lateral subqueries are fenced (`LIMIT 1`) so that each stays a primary-key
/// lookup per send, whatever the planner guesses of the arrays' length. `LIMIT 1` rather than
/// `OFFSET 0`: with the benchmark's ~10⁵ rows, analysed or not, the generic plan guesses a few
/// rows per key and reads each row through a bitmap (index, bitmap, heap) instead of one index
/// scan; the buckets' cost ~10 % of the statement that way, and the window's was read so until
/// the forty-second round (docs/BENCHMARKS.md). The keys are primary keys: the limit changes no
/// result.
const FACTS_MANY: &str = concat!(
    "SELECT ",
    facts_columns!("k.p", "k.w", "k.b"),
    ", nb.tokens, nb.updated_at, pb.tokens, pb.updated_at \
     FROM unnest($1::text[], $2::text[], $3::text[]) WITH ORDINALITY AS k(p, w, b, n) \
     LEFT JOIN LATERAL (SELECT last_inbound_at, referral_at, fep_until FROM windows \
       WHERE phone_id = k.p AND wa_id = k.w LIMIT 1) win ON true \
     LEFT JOIN LATERAL (SELECT tokens, updated_at FROM pacing_buckets \
       WHERE phone_id = k.p AND wa_id = '' LIMIT 1) nb ON true \
     LEFT JOIN LATERAL (SELECT tokens, updated_at FROM pacing_buckets \
       WHERE phone_id = k.p AND wa_id = k.w LIMIT 1) pb ON true \
     ORDER BY k.n"
);

fn to_facts(r: &crate::db::Row<'_>, pg: bool) -> crate::db::Result<CustomerFacts> {
    let bucket = |t: usize| -> crate::db::Result<Option<Bucket>> {
        Ok(
            match (r.get::<_, Option<f64>>(t)?, r.get::<_, Option<i64>>(t + 1)?) {
                (Some(tokens), Some(updated_at)) => Some(Bucket { tokens, updated_at }),
                _ => None,
            },
        )
    };
    Ok(CustomerFacts {
        window: WindowState {
            last_inbound_at: r.get(0)?,
            referral_at: r.get(1)?,
            fep_until: r.get(2)?,
        },
        on_whatsapp: r.get::<_, Option<bool>>(3)?.unwrap_or(true),
        blocked: r.get::<_, Option<i64>>(4)?.is_some(),
        user_id: r.get(5)?,
        config_version: r.get(6)?,
        marketing_stopped: r.get::<_, Option<bool>>(7)?.unwrap_or(false),
        consents: None,
        buckets: if pg {
            (bucket(8)?, bucket(10)?)
        } else {
            (None, None)
        },
    })
}

/// PostgreSQL: reads the facts of the queued `sends` (and customers' messages,
/// [`Facts::Customer`]) in one statement, for [`customer_facts`] to take (see [`Prefetched`]).
/// Not worth it for a single one, whose own read is the same.
pub(crate) fn prefetch_facts<'k>(
    conn: &Conn,
    mem: &mut Memory,
    sends: impl Iterator<Item = &'k CustomerKey>,
) -> crate::db::Result<()> {
    mem.facts.clear();
    let mut seen = std::collections::HashSet::new();
    // a customer whose facts the writer kept from an earlier send is not read again
    let kept = mem.batch_config.is_some();
    let keys: Vec<&CustomerKey> = sends
        .filter(|k| seen.insert((k.phone_id.as_str(), k.wa_id.as_str())))
        .filter(|k| !(kept && mem.pair_facts.holds(&PairKey::of(&k.phone_id, &k.wa_id))))
        .collect();
    if keys.len() < 2 {
        return Ok(());
    }
    let rows: Vec<Vec<crate::db::Value>> = keys
        .iter()
        .map(|k| params![k.phone_id, k.wa_id, k.business_id].values())
        .collect();
    let facts = conn.query_arrays(FACTS_MANY, &[Tx, Tx, Tx], &rows, |r| to_facts(r, true))?;
    if facts.len() != keys.len() {
        return Err(internal(format!(
            "the facts of {} sends came back as {} rows",
            keys.len(),
            facts.len()
        ))
        .into());
    }
    mem.facts.rows = keys
        .into_iter()
        .zip(facts)
        .map(|(k, f)| {
            (
                (k.phone_id.clone(), k.wa_id.clone()),
                (k.business_id.clone(), f),
            )
        })
        .collect();
    Ok(())
}

fn customer_facts(
    conn: &Conn,
    mem: &mut Memory,
    business_id: &str,
    phone_id: &str,
    wa_id: &str,
    pair: &PairKey,
) -> StoreResult<CustomerFacts> {
    if let Some(facts) = mem.facts.take(business_id, phone_id, wa_id) {
        return Ok(facts);
    }
    let pg = conn.is_pg();
    if let Some(config) = mem.batch_config.filter(|_| pg) {
        // A shard's writer on PostgreSQL whose shard nobody else wrote since the send that left
        // them (`Memory::begun`): the counter as this batch's `BEGIN` read it, and the number's
        // bucket as the writer's last batch that changed it left it.
        if let Some(mut facts) = mem.pair_facts.take(business_id, pair) {
            facts.config_version = config;
            if let Some(b) = mem.kept_number_buckets.get(phone_id) {
                facts.buckets.0 = Some(*b);
            }
            mem.pair_facts.taken += 1;
            return Ok(facts);
        }
    }
    if !pg {
        if let Some(facts) = mem.pair_facts.take(business_id, pair) {
            if mem.config_version(conn)? == Some(facts.config_version) {
                mem.pair_facts.taken += 1;
                return Ok(facts);
            }
            // written outside this writer's jobs since: nothing it kept can be trusted
            mem.forget_facts();
        }
    }
    let sql = if pg { FACTS_ONE_PG } else { FACTS_ONE_SQLITE };
    Ok(conn
        .prepare_cached(sql)?
        .query_row(params![phone_id, wa_id, business_id], |r| to_facts(r, pg))?)
}

pub(crate) fn save_window(
    conn: &Conn,
    phone_id: &str,
    wa_id: &str,
    w: &WindowState,
) -> StoreResult<()> {
    conn.defer(
        "INSERT INTO windows (phone_id, wa_id, last_inbound_at, referral_at, fep_until) VALUES (?1, ?2, ?3, ?4, ?5) \
         ON CONFLICT (phone_id, wa_id) DO UPDATE SET last_inbound_at = excluded.last_inbound_at, \
         referral_at = excluded.referral_at, fep_until = excluded.fep_until", params![phone_id, wa_id, w.last_inbound_at, w.referral_at, w.fep_until])?;
    Ok(())
}

pub(crate) fn settings(conn: &Conn, business_id: &str) -> StoreResult<TenantSettings> {
    let s: Option<String> = conn
        .prepare_cached("SELECT settings FROM businesses WHERE id = ?1")?
        .query_row(params![business_id], |r| r.get(0))
        .optional()?;
    Ok(s.and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_default())
}

fn metadata(p: &PhoneNumber) -> Metadata<'_> {
    Metadata {
        display_phone_number: &p.digits,
        phone_number_id: &p.id,
    }
}

/// What the customer sees of a message, when it is text-like.
pub(crate) fn visible_text(req: &SendRequest) -> Option<String> {
    let p = &req.payload;
    let s = match req.msg_type {
        MessageType::Text => p["body"].as_str(),
        MessageType::Image | MessageType::Video | MessageType::Document => p["caption"].as_str(),
        MessageType::Interactive => p["body"]["text"].as_str(),
        MessageType::Location => p["name"].as_str().or(p["address"].as_str()),
        MessageType::Reaction => p["emoji"].as_str(),
        _ => None,
    };
    s.map(str::to_string)
}

/// A send's template: its facts (`None`: no such template) and its rendering (`None`: not
/// renderable, e.g. not found).
type TemplateLookup = (Option<TemplateFacts>, Option<Result<String, ApiError>>);

/// A live template as a send reads it: its facts for the engine and its definition, parsed and
/// prepared for rendering (`None` when the stored definition does not parse). Kept in the
/// writer's configuration cache: any change to `templates` moves the configuration counter.
pub(crate) struct CachedTemplate {
    facts: TemplateFacts,
    def: Option<greenlight_domain::template::Prepared>,
}

/// Templates the writer's configuration cache holds at most; past it the cache starts over.
const TEMPLATES_MAX: usize = 10_000;

/// The template a send names, its facts for the engine, and the send's parameters checked
/// against it (`Err` is the refusal: 132000, 132012, 132005…) with the text the customer reads.
/// Only templates that exist are kept: a name nobody created is read again each time, so
/// sends naming made-up templates cannot grow the cache.
fn template_facts(
    conn: &Conn,
    mem: &mut Memory,
    waba_id: &str,
    t: &TemplateRef,
    components: &Value,
) -> StoreResult<TemplateLookup> {
    let templates = &mut mem.config(conn)?.templates;
    let key = Triple(waba_id, &t.name, Some(&t.language));
    let cached = match templates.get(&key) {
        Some(tpl) => Some(tpl.clone()),
        None => match super::templates::by_name(conn, waba_id, &t.name, &t.language)? {
            None => None,
            Some(rec) => {
                let facts = TemplateFacts {
                    status: TemplateStatus::parse(&rec.status),
                    category: match rec.category.to_ascii_lowercase().as_str() {
                        "utility" => "utility",
                        "authentication" => "authentication",
                        _ => "marketing",
                    },
                    paused_until: rec.paused_until,
                    name: rec.name,
                    language: rec.language,
                };
                let def = greenlight_domain::template::parse_create(&rec.definition)
                    .ok()
                    .map(greenlight_domain::template::Prepared::new);
                let tpl = Arc::new(CachedTemplate { facts, def });
                if templates.len() >= TEMPLATES_MAX {
                    templates.clear();
                }
                templates.insert(key.to_key(), tpl.clone());
                Some(tpl)
            }
        },
    };
    let Some(tpl) = cached else {
        return Ok((None, None));
    };
    let rendered = tpl
        .def
        .as_ref()
        .map(|def| def.render(components).map(|r| r.text()));
    Ok((Some(tpl.facts.clone()), rendered))
}

/// The messaging limit as a send found it: its tier and, for a template (the only messages
/// that count), the customers reached in the last 24 h and whether this one is among them.
/// Written as JSON only by the dry run.
#[derive(Clone, Copy)]
pub(crate) struct LimitUsage {
    tier: greenlight_domain::policy::messaging_limit::Tier,
    used: Option<(u64, bool)>,
}

impl LimitUsage {
    /// `{tier, used, limit, already_reached}`, or `{tier, limit, applies: false}`.
    fn to_json(self) -> Value {
        let (tier, limit) = (self.tier.as_str(), self.tier.limit());
        match self.used {
            Some((used, already)) => {
                json!({ "tier": tier, "used": used, "limit": limit, "already_reached": already })
            }
            None => json!({ "tier": tier, "limit": limit, "applies": false }),
        }
    }
}

/// Loads the facts of one send and runs the engine. Read-only.
pub(crate) struct Evaluated {
    pub(crate) wa_id: String,
    /// The (number, customer) key of the writer's per-pair maps (kept facts, pacing bucket,
    /// chain heads), made once a send rather than by each of them (~300 instructions each).
    pub(crate) pair: PairKey,
    /// The tenant's pacing setting, read once per send.
    pub(crate) pacing: bool,
    /// The messaging limit's usage, for the dry run.
    pub(crate) limit_usage: LimitUsage,
    /// What the accepted send changes in the compliance state.
    pub(crate) effects: compliance::Effects,
    /// A refused business-initiated send to a customer who opted out with a keyword: the
    /// business is ignoring STOP.
    pub(crate) ignored_opt_out: Option<Violation>,
    /// What the customer reads of a template send.
    pub(crate) rendered: Option<String>,
    pub(crate) decision: Decision,
    /// The (number, pair) pacing buckets as read for the decision.
    pub(crate) buckets: (Bucket, Bucket),
    /// The customer was already reached by a business-initiated send in the last 24 h.
    pub(crate) reach_already: bool,
    /// The customer's facts as the send read them: among them its window before the send and
    /// its user id in this business if it has one already (and, on SQLite, what the send puts
    /// back into [`PairFacts`]).
    pub(crate) facts: CustomerFacts,
}

/// All consent records of a customer with a business, revoked ones included, as the rules read
/// them: without their proof and who recorded them, which no rule reads (and which would stay
/// in the writer's memory with the customer's facts, see [`PairFacts`]).
fn consents(conn: &Conn, business_id: &str, wa_id: &str) -> StoreResult<Vec<Consent>> {
    let mut stmt = conn.prepare_cached(
        "SELECT scope, source, captured_at, revoked_at, revoked_by FROM opt_ins WHERE business_id = ?1 AND wa_id = ?2 ORDER BY seq",
    )?;
    let rows = stmt.query_map(params![business_id, wa_id], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, i64>(2)?,
            r.get::<_, Option<i64>>(3)?,
            r.get::<_, Option<String>>(4)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (scope, source, captured_at, revoked_at, revoked_by) = row?;
        if let Some(scope) = ConsentScope::parse(&scope) {
            out.push(Consent {
                scope,
                source,
                proof: String::new(),
                captured_at,
                revoked_at,
                recorded_by: None,
                revoked_reason: revoked_by,
            });
        }
    }
    Ok(out)
}

/// SQLite: the customers a business's business-initiated sends reached in the moving 24 h, as
/// the writer keeps them: each customer's last reach (`last`, the count is its length) and the
/// reaches in time order (`order`, which the window's start walks to let customers go). It is
/// `reach_log` read forward: built from the log (the reaches after the window's start, the
/// latest of each customer) the first time a business needs it, kept by its sends, and built
/// again when the window's start goes back before a reach it let go (`removed_to`: the clock
/// was set back) or after the writer rolled back (see [`Memory::forget_reach`]). PostgreSQL's
/// writers share the count through tables (`reach_recent`, `reach_counts`) instead.
#[derive(Debug, Default)]
pub(crate) struct ReachSet {
    last: crate::keys::HashMap<Box<str>, Millis>,
    /// One entry per reach kept (a customer's earlier ones stay until the window passes them
    /// or the order is compacted), oldest first.
    order: std::collections::VecDeque<(Millis, Box<str>)>,
    /// The latest time of a reach this set let go, or the window start it was built at: a
    /// window start before it needs the log again.
    removed_to: Millis,
}

/// Entries of [`ReachSet::order`] beyond twice its customers before it is compacted.
const REACH_ORDER_SLACK: usize = 64;

impl ReachSet {
    /// From the log: the reaches after `since`, each customer's latest.
    fn read(conn: &Conn, business_id: &str, since: Millis) -> StoreResult<ReachSet> {
        let mut set = ReachSet {
            removed_to: since,
            ..ReachSet::default()
        };
        conn.prepare_cached(concat!(
            "SELECT r.wa_id, MAX(r.at) AS last FROM ",
            super::reach_blocks::rows_between!(),
            " GROUP BY r.wa_id ORDER BY last"
        ))?
        .for_each(params![business_id, since, Millis::MAX], |r| {
            let (wa_id, at): (String, Millis) = (r.get(0)?, r.get(1)?);
            let wa_id = wa_id.into_boxed_str();
            set.order.push_back((at, wa_id.clone()));
            set.last.insert(wa_id, at);
            Ok(())
        })?;
        Ok(set)
    }

    /// Lets go of the customers whose last reach is at or before `since`.
    fn prune(&mut self, since: Millis) {
        while self.order.front().is_some_and(|(at, _)| *at <= since) {
            let Some((at, wa_id)) = self.order.pop_front() else {
                break;
            };
            self.removed_to = self.removed_to.max(at);
            if self.last.get(&wa_id) == Some(&at) {
                self.last.remove(&wa_id);
            }
        }
    }

    /// A reach of `wa_id` at `now`. A customer's last reach never moves back (as the log's
    /// latest does not).
    fn add(&mut self, wa_id: &str, now: Millis) {
        match self.last.get_mut(wa_id) {
            Some(t) if *t >= now => return,
            Some(t) => *t = now,
            None => {
                self.last.insert(wa_id.into(), now);
            }
        }
        let entry = (now, Box::<str>::from(wa_id));
        if self.order.back().is_none_or(|(t, _)| *t <= now) {
            self.order.push_back(entry);
        } else {
            // the clock went back: in its place
            let i = self.order.partition_point(|(t, _)| *t <= now);
            self.order.insert(i, entry);
        }
        if self.order.len() > 2 * self.last.len() + REACH_ORDER_SLACK {
            // the customers' earlier reaches go: one entry each, in order
            let mut order: Vec<(Millis, Box<str>)> =
                self.last.iter().map(|(w, t)| (*t, w.clone())).collect();
            order.sort_unstable();
            self.order = order.into();
        }
    }
}

/// Distinct customers reached by business-initiated sends in the 24 h before `now`, and
/// whether `wa_id` is one of them. On SQLite from the writer's [`ReachSet`] (no read once it
/// is built); on PostgreSQL from the running count's tables (`reach_recent`, `reach_counts`),
/// after pruning the customers whose last reach left the window. Amortised O(1) per send.
fn reach(
    conn: &Conn,
    mem: &mut Memory,
    business_id: &str,
    wa_id: &str,
    now: Millis,
) -> StoreResult<(u64, bool)> {
    let since = now - DAY;
    if conn.is_pg() {
        return reach_read(conn, business_id, wa_id, since);
    }
    let set = match mem.reach.get_mut(business_id) {
        Some(set) if since >= set.removed_to => set,
        _ => mem
            .reach
            .entry_ref(business_id)
            .insert(ReachSet::read(conn, business_id, since)?)
            .into_mut(),
    };
    set.prune(since);
    Ok((set.last.len() as u64, set.last.contains_key(wa_id)))
}

/// PostgreSQL: [`reach`] from the tables.
fn reach_read(
    conn: &Conn,
    business_id: &str,
    wa_id: &str,
    since: Millis,
) -> StoreResult<(u64, bool)> {
    // the count, and when this customer was last reached (one read: pruning below removes
    // exactly the customers last reached at or before `since`, so `already` is decided here)
    let row: Option<(i64, i64, Option<i64>)> = conn
        .prepare_cached(
            "SELECT n, pruned_to, (SELECT last_at FROM reach_recent WHERE business_id = ?1 AND wa_id = ?2) \
             FROM reach_counts WHERE business_id = ?1",
        )?
        .query_row(params![business_id, wa_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    let (n, last_at) = match row {
        // first use, or the clock went back past a pruning: rebuild from the log
        None => (rebuild_reach(conn, business_id, since)?, None),
        Some((_, pruned_to, _)) if since < pruned_to => {
            (rebuild_reach(conn, business_id, since)?, None)
        }
        Some((n, _, last_at)) => {
            let gone = conn
                .prepare_cached(
                    "DELETE FROM reach_recent WHERE business_id = ?1 AND last_at <= ?2",
                )?
                .execute(params![business_id, since])? as i64;
            if gone > 0 {
                conn.defer(
                    "UPDATE reach_counts SET n = n - ?2, pruned_to = ?3 WHERE business_id = ?1",
                    params![business_id, gone, since],
                )?;
            }
            (n - gone, Some(last_at))
        }
    };
    let already = match last_at {
        Some(last_at) => last_at.is_some_and(|at| at > since),
        // rebuilt: read it from the fresh rows
        None => has_reach_row(conn, business_id, wa_id)?,
    };
    Ok((n.max(0) as u64, already))
}

/// Whether `wa_id` has a row of the business's running reach count (`reach_recent`).
fn has_reach_row(conn: &Conn, business_id: &str, wa_id: &str) -> StoreResult<bool> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM reach_recent WHERE business_id = ?1 AND wa_id = ?2")?
        .query_row(params![business_id, wa_id], |_| Ok(()))
        .optional()?
        .is_some())
}

/// A business-initiated send reached `wa_id` at `now` (`already`: as [`reach`] said): the log,
/// and the running count: the writer's [`ReachSet`] (SQLite) or its tables (PostgreSQL).
fn record_reach(
    conn: &Conn,
    mem: &mut Memory,
    business_id: &str,
    wa_id: &str,
    now: Millis,
    already: bool,
) -> StoreResult<()> {
    conn.defer_row(&REACH_ROW, params![business_id, wa_id, now])?;
    if !conn.is_pg() {
        super::reach_blocks::note(conn, &mut mem.reach_blocks, business_id, now)?;
        // `reach` built the set in this job; were it gone, the next one is read from the log,
        // which holds this reach
        if let Some(set) = mem.reach.get_mut(business_id) {
            set.add(wa_id, now);
        }
        return Ok(());
    }
    // the running count (`reach` read it, so the business's row exists); a row's `last_at`
    // never moves back (a clock set back does not shorten a reach already counted)
    conn.defer(
        "INSERT INTO reach_recent (business_id, wa_id, last_at) VALUES (?1, ?2, ?3) \
         ON CONFLICT (business_id, wa_id) DO UPDATE SET last_at = \
         CASE WHEN excluded.last_at > reach_recent.last_at THEN excluded.last_at ELSE reach_recent.last_at END",
        params![business_id, wa_id, now],
    )?;
    if !already {
        conn.defer(
            "UPDATE reach_counts SET n = n + 1 WHERE business_id = ?1",
            params![business_id],
        )?;
    }
    Ok(())
}

/// PostgreSQL: rebuilds a business's running reach count from `reach_log` (window start `since`).
fn rebuild_reach(conn: &Conn, business_id: &str, since: Millis) -> StoreResult<i64> {
    conn.prepare_cached("DELETE FROM reach_recent WHERE business_id = ?1")?
        .execute(params![business_id])?;
    let n = conn
        .prepare_cached(
            "INSERT INTO reach_recent (business_id, wa_id, last_at) \
             SELECT business_id, wa_id, MAX(at) FROM reach_log WHERE business_id = ?1 AND at > ?2 GROUP BY business_id, wa_id",
        )?
        .execute(params![business_id, since])? as i64;
    conn.prepare_cached(
        "INSERT INTO reach_counts (business_id, n, pruned_to) VALUES (?1, ?2, ?3) \
         ON CONFLICT (business_id) DO UPDATE SET n = excluded.n, pruned_to = excluded.pruned_to",
    )?
    .execute(params![business_id, n, since])?;
    Ok(n)
}

/// Makes the next template send of the business rebuild its running reach count from
/// `reach_log` (after rows were taken out of the log).
pub(crate) fn invalidate_reach(
    conn: &Conn,
    mem: &mut Memory,
    business_id: &str,
) -> StoreResult<()> {
    mem.reach.remove(business_id);
    if conn.is_pg() {
        conn.prepare_cached("DELETE FROM reach_counts WHERE business_id = ?1")?
            .execute(params![business_id])?;
    }
    Ok(())
}

fn marketing_count(conn: &Conn, business_id: &str, wa_id: &str, since: Millis) -> StoreResult<u32> {
    Ok(conn
        .prepare_cached(
            "SELECT COUNT(*) FROM marketing_log WHERE business_id = ?1 AND wa_id = ?2 AND at > ?3",
        )?
        .query_row(params![business_id, wa_id, since], |r| r.get::<_, i64>(0))? as u32)
}

fn throughput_level(level: &str) -> ThroughputLevel {
    match level {
        "HIGH" => ThroughputLevel::High,
        "COEXISTENCE" => ThroughputLevel::Coexistence,
        _ => ThroughputLevel::Standard,
    }
}

/// Merges the engine's outcome with the compliance rules': a synchronous refusal outranks an
/// asynchronous failure, which outranks acceptance; the first of each kind wins.
fn merge(engine: Outcome, compliance: Outcome) -> Outcome {
    match (&engine, &compliance) {
        (Outcome::Refuse(_), _) => engine,
        (_, Outcome::Refuse(_)) => compliance,
        (Outcome::FailAsync(_), _) => engine,
        (_, Outcome::FailAsync(_)) => compliance,
        _ => engine,
    }
}

pub(crate) fn evaluate(
    conn: &Conn,
    mem: &mut Memory,
    scope: &Scope,
    cmd: &SendCommand,
) -> StoreResult<Evaluated> {
    let phone = &cmd.phone;
    let now = cmd.now;
    let wa_id = match &cmd.request.recipient {
        Recipient::WaId(w) => w.clone(),
        Recipient::UserId(u) => {
            let wa: Option<String> = conn
                .prepare_cached(
                    "SELECT wa_id FROM contacts WHERE business_id = ?1 AND user_id = ?2",
                )?
                .query_row(params![scope.business_id, u], |r| r.get(0))
                .optional()?;
            match wa {
                Some(w) => w,
                None => {
                    return Err(ApiError::invalid_value(format!(
                        "`recipient` {u} is not a user id known to this business; use the `user_id` from a webhook, or send to the phone number with `to`."
                    ))
                    .into())
                }
            }
        }
    };
    for id in &cmd.request.media_ids {
        let known = conn
            .prepare_cached("SELECT 1 FROM media WHERE id = ?1 AND business_id = ?2")?
            .query_row(params![id, scope.business_id], |_| Ok(()))
            .optional()?
            .is_some();
        if !known {
            return Err(ApiError::invalid_value(format!(
                "media id {id} is not media uploaded by this business (or it was deleted); upload it with POST /{{phone-number-id}}/media or send a `link`"
            ))
            .into());
        }
    }
    let pair = PairKey::of(&phone.id, &wa_id);
    let mut customer = customer_facts(conn, mem, &scope.business_id, &phone.id, &wa_id, &pair)?;
    mem.saw_config_version(customer.config_version);
    let window = customer.window;
    let (template, rendered) = match &cmd.request.template {
        Some(t) => {
            let components = cmd.request.template_components();
            let (facts, rendered) = template_facts(conn, mem, &phone.waba_id, t, components)?;
            (Some(facts), rendered)
        }
        None => (None, None),
    };
    let (rendered, template_render_error) = match rendered {
        Some(Ok(text)) => (Some(text), None),
        Some(Err(e)) => (None, Some(e)),
        None => (None, None),
    };
    let tenant_settings = settings_cached(conn, mem, &scope.business_id)?;
    let category = template
        .as_ref()
        .and_then(|t| t.as_ref().map(|t| t.category));
    let facts = SendFacts {
        now,
        msg_type: cmd.request.msg_type,
        window,
        recipient_on_whatsapp: customer.on_whatsapp,
        recipient_is_sender: wa_id == phone.digits,
        recipient_blocked: customer.blocked,
        template,
        template_render_error,
        sync_refusals: tenant_settings.sync_refusals,
    };
    let mut decision = decide_send(&facts);

    // The compliance rules (policy::compliance): consent, marketing opt-out, messaging limit,
    // pacing, marketing cap, enforcement.
    let cs = &tenant_settings.compliance;
    // Consent, reach, the marketing opt-out and the marketing cap only concern templates: a
    // service message in a window reads none of them.
    let is_template = category.is_some();
    // kept with the customer's facts by an earlier template send, else read
    let consents = match customer.consents.take() {
        Some(kept) if is_template => kept,
        _ if is_template => consents(conn, &scope.business_id, &wa_id)?,
        kept => {
            customer.consents = kept;
            Vec::new()
        }
    };
    let (distinct, already) = if is_template {
        reach(conn, mem, &scope.business_id, &wa_id, now)?
    } else {
        (0, false)
    };
    let enforcement = enforcement_cached(conn, mem, &scope.business_id)?;
    let (restrictions, disabled) = (enforcement.in_force(now), enforcement.disabled);
    let level = throughput_level(&phone.throughput_level);
    let number_bucket = bucket(mem, customer.buckets.0, &phone.id, None, now, level.burst());
    let pair_bucket = bucket(
        mem,
        customer.buckets.1,
        &phone.id,
        Some(&pair),
        now,
        PAIR_BURST,
    );
    let cfacts = ComplianceFacts {
        now,
        category,
        in_customer_window: window.is_open(now),
        recipient: &wa_id,
        consents: &consents,
        marketing_opted_out: is_template && customer.marketing_stopped,
        tier: enforcement.tier,
        distinct_reached_in_24h: distinct,
        already_reached_this_customer: already,
        throughput_level: level,
        throughput: if cs.pacing {
            number_bucket.check(now, level.mps(), level.burst())
        } else {
            Ok(())
        },
        pair: if cs.pacing {
            pair_bucket.check(now, PAIR_RATE_PER_SEC, PAIR_BURST)
        } else {
            Ok(())
        },
        marketing_counted_in_period: if category == Some("marketing") {
            marketing_count(
                conn,
                &scope.business_id,
                &wa_id,
                now.saturating_sub(cs.marketing_cap.period_secs.saturating_mul(1000)),
            )?
        } else {
            0
        },
        restrictions: &restrictions,
        disabled,
    };
    let results = compliance::evaluate(&cfacts, cs);
    let combined = compliance::combine(&results, tenant_settings.sync_refusals);
    decision
        .verdicts
        .extend(results.into_iter().map(|r| r.verdict));
    let outcome = merge(decision.outcome.clone(), combined);
    if !matches!(outcome, Outcome::Accept) {
        decision.window_after = window;
    }
    decision.outcome = outcome;
    let effects = compliance::effects(&cfacts, &decision.outcome);
    let ignored_opt_out = match (&decision.outcome, category) {
        (Outcome::Refuse(e), Some(c)) if e.code == opt_in::CODE_NO_OPT_IN && cfacts.business_initiated() => opt_in::opted_out(&consents, c, now)
            .filter(|_| consents.iter().any(|k| k.revoked_reason.as_deref().is_some_and(|r| r.starts_with("keyword"))))
            .map(|at| {
                Violation::new(
                    ViolationKind::IgnoredOptOut,
                    now,
                    format!("a {c} template was sent to {wa_id} at {} although the customer replied STOP at {}", now / 1000, at / 1000),
                )
            }),
        _ => None,
    };
    // Usage is counted for templates only (a service message does not count toward the limit).
    let limit_usage = LimitUsage {
        tier: cfacts.tier,
        used: is_template.then_some((distinct, already)),
    };
    let pacing = cs.pacing;
    // kept unless unusually many (each record stays in memory with the facts)
    if is_template && consents.len() <= CONSENTS_KEPT_MAX {
        customer.consents = Some(consents);
    }
    Ok(Evaluated {
        wa_id,
        pair,
        facts: customer,
        pacing,
        limit_usage,
        effects,
        ignored_opt_out,
        rendered,
        decision,
        buckets: (number_bucket, pair_bucket),
        reach_already: already,
    })
}

/// Pacing buckets untouched this long are full again (and dropped on PostgreSQL).
const PACING_FORGET_MS: Millis = 300_000;

/// A pacing bucket (`pair` `None`: the number's throughput bucket; otherwise the pair's): from
/// the writer's memory (SQLite keeps them there; on PostgreSQL it holds those the batch changed,
/// until `COMMIT`), else as stored in the shared `pacing_buckets` table (PostgreSQL: `stored`,
/// read with the customer's facts), else full.
fn bucket(
    mem: &Memory,
    stored: Option<Bucket>,
    phone_id: &str,
    pair: Option<&PairKey>,
    now: Millis,
    burst: f64,
) -> Bucket {
    match pair {
        None => mem.number_buckets.get(phone_id).copied(),
        Some(pair) => mem.pair_buckets.get(pair).copied(),
    }
    .or(stored)
    .unwrap_or_else(|| Bucket::full(burst, now))
}

/// A pacing bucket row (PostgreSQL; a batch writes each of its buckets once, before `COMMIT`).
static BUCKET_ROW: RowStatement = RowStatement {
    table: "pacing_buckets",
    one: "INSERT INTO pacing_buckets (phone_id, wa_id, tokens, updated_at) VALUES (?1, ?2, ?3, ?4) \
          ON CONFLICT (phone_id, wa_id) DO UPDATE SET tokens = excluded.tokens, updated_at = excluded.updated_at",
    many: "INSERT INTO pacing_buckets (phone_id, wa_id, tokens, updated_at) \
           SELECT p, w, t, u FROM unnest($1::text[], $2::text[], $3::float8[], $4::int8[]) \
           WITH ORDINALITY AS r(p, w, t, u, n) ORDER BY n \
           ON CONFLICT (phone_id, wa_id) DO UPDATE SET tokens = excluded.tokens, updated_at = excluded.updated_at",
    pg_one: None,
    types: &[Tx, Tx, F8, I8],
};

/// Before a batch's `COMMIT` (PostgreSQL): writes the pacing buckets its sends changed, in key
/// order, one row each (a number's bucket has the customer `''`: a `wa_id` is never empty), to
/// go with the `COMMIT`. Memory keeps them until the batch ends.
pub(crate) fn before_commit(conn: &Conn, mem: &Memory) -> crate::db::Result<()> {
    if !conn.is_pg() {
        return Ok(());
    }
    let mut rows: Vec<(String, String, Bucket)> = mem
        .number_buckets
        .iter()
        .map(|(p, b)| (p.clone(), String::new(), *b))
        .chain(mem.pair_buckets.iter().map(|(k, b)| {
            let (p, w) = k.ids();
            (p, w, *b)
        }))
        .collect();
    rows.sort_unstable_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    for (phone_id, wa_id, b) in rows {
        conn.defer_row(
            &BUCKET_ROW,
            params![phone_id, wa_id, b.tokens, b.updated_at],
        )?;
    }
    Ok(())
}

/// A row of a per-customer log `(business_id, wa_id, at)` (grouped on PostgreSQL, as
/// [`MESSAGE_OUT_ROW`]).
macro_rules! customer_log_row {
    ($table:literal) => {
        RowStatement {
            table: $table,
            one: concat!("INSERT INTO ", $table, " (business_id, wa_id, at) VALUES (?1, ?2, ?3)"),
            many: concat!(
                "INSERT INTO ",
                $table,
                " (business_id, wa_id, at) SELECT b, w, a FROM unnest($1::text[], $2::text[], $3::int8[]) \
                 WITH ORDINALITY AS u(b, w, a, n) ORDER BY n"
            ),
            pg_one: None,
            types: &[Tx, Tx, I8],
        }
    };
}

/// A business-initiated send reached a customer.
static REACH_ROW: RowStatement = customer_log_row!("reach_log");

/// A marketing message reached a customer.
static MARKETING_ROW: RowStatement = customer_log_row!("marketing_log");

/// Applies the compliance effects of a decided send (memory last: it is not rolled back).
pub(crate) fn apply_effects(
    conn: &Conn,
    mem: &mut Memory,
    scope: &Scope,
    phone: &PhoneNumber,
    ev: &Evaluated,
    now: Millis,
) -> StoreResult<()> {
    let e = &ev.effects;
    if e.record_reach {
        record_reach(
            conn,
            mem,
            &scope.business_id,
            &ev.wa_id,
            now,
            ev.reach_already,
        )?;
    }
    if e.count_marketing {
        conn.defer_row(&MARKETING_ROW, params![scope.business_id, ev.wa_id, now])?;
    }
    if let Some(v) = e.violation.as_ref().or(ev.ignored_opt_out.as_ref()) {
        super::compliance::record_violation(conn, &scope.business_id, &phone.waba_id, v, now)?;
        // enforcement is configuration: the sends after this one read it afresh
        mem.forget_facts();
    }
    if e.take_tokens && ev.pacing {
        // As decided (the buckets were read for the decision, in this job). On PostgreSQL,
        // where several nodes share the buckets, they are written before the batch's `COMMIT`
        // (`before_commit`): the batch holds its business's lock, nobody else changes them
        // meanwhile.
        let level = throughput_level(&phone.throughput_level);
        let (mut number, mut pair) = ev.buckets;
        let _ = number.try_take(now, level.mps(), level.burst());
        let _ = pair.try_take(now, PAIR_RATE_PER_SEC, PAIR_BURST);
        // Buckets that refilled are equal to absent ones: dropped now and then, so memory
        // follows the active pairs, not every pair ever seen (SQLite's; PostgreSQL's go with
        // each batch).
        prune_pair_buckets(
            &mut mem.pair_buckets,
            &mut mem.pair_buckets_prune_at,
            PAIR_BUCKETS_PRUNE_MIN,
            now,
        );
        // in place when the number has its bucket (its id copied only to key a new entry)
        mem.number_buckets
            .entry_ref(phone.id.as_str())
            .insert(number);
        mem.pair_buckets.insert(ev.pair.clone(), pair);
    }
    Ok(())
}

/// Pair buckets the SQLite writer holds before it first drops the refilled ones.
const PAIR_BUCKETS_PRUNE_MIN: usize = 100_000;

/// Drops the refilled buckets of `buckets` once it holds `*next` of them or more (at least
/// `floor`), and sets `*next` to twice what it kept. A pass walks the whole map: with more than
/// `floor` pairs paced at once (a broadcast to many customers) a pass on every send cost the
/// writer ~80 µs a send and cut the send rate to a third (docs/BENCHMARKS.md, twenty-ninth
/// round); now a pass comes after as many new pairs as the last one kept. True if one ran.
fn prune_pair_buckets(
    buckets: &mut crate::keys::HashMap<PairKey, Bucket>,
    next: &mut usize,
    floor: usize,
    now: Millis,
) -> bool {
    if buckets.len() < (*next).max(floor) {
        return false;
    }
    buckets.retain(|_, b| b.available(now, PAIR_RATE_PER_SEC, PAIR_BURST) < PAIR_BURST);
    *next = 2 * buckets.len();
    true
}

/// `content`: the request's payload as its column holds it, serialized before the job (by the
/// HTTP worker, not the one writer).
fn send_tx(
    conn: &Conn,
    mem: &mut Memory,
    scope: &Scope,
    cmd: &SendCommand,
    content: &str,
) -> StoreResult<Result<SendResult, ApiError>> {
    let now = cmd.now;
    let facts_generation = mem.pair_facts.generation;
    // Idempotency: the same key answers what it answered first, or refuses another body.
    if let Some((key, hash)) = &cmd.idempotency {
        let prev: Option<(String, String, String, i64)> = conn
            .prepare_cached("SELECT request_hash, response, wamid, created_at FROM idempotency WHERE business_id = ?1 AND key = ?2")?
            .query_row(params![scope.business_id, key], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .optional()?;
        if let Some((prev_hash, response, wamid, at)) = prev {
            if now - at < DAY {
                if &prev_hash != hash {
                    return Ok(Err(ApiError::idempotency_conflict(format!(
                        "Idempotency-Key '{key}' was used within the last 24 hours for a different request body; use a new key for a new message."
                    ))));
                }
                return Ok(Ok(SendResult {
                    wamid,
                    body: SendBody::Text(response),
                    replayed: true,
                }));
            }
            conn.prepare_cached("DELETE FROM idempotency WHERE business_id = ?1 AND key = ?2")?
                .execute(params![scope.business_id, key])?;
        }
    }

    let ev = evaluate(conn, mem, scope, cmd)?;
    let d = &ev.decision;
    let phone = &cmd.phone;
    let req = &cmd.request;
    if let Outcome::Refuse(e) = &d.outcome {
        audit(
            conn,
            &AuditRow {
                business_id: &scope.business_id,
                at: now,
                kind: "refusal",
                phone_id: Some(&phone.id),
                wa_id: Some(&ev.wa_id),
                message_id: None,
                error: e,
                verdicts: Some(&d.verdicts),
            },
        )?;
        apply_effects(conn, mem, scope, phone, &ev, now)?;
        return Ok(Err(e.clone()));
    }

    let user_id = match &ev.facts.user_id {
        Some(u) => u.clone(),
        None => new_user_id(conn, &scope.business_id, &ev.wa_id, now)?,
    };
    let wamid = ids::wamid();
    let conversation_id = ids::conversation_id();
    let failed = match &d.outcome {
        Outcome::FailAsync(e) => Some(e.clone()),
        _ => None,
    };
    let pricing_json = d.pricing.to_json();
    let status = if failed.is_some() { "failed" } else { "sent" };
    // `sent` is the message's column; `failed`, with its error, a status row
    let sent_at = failed.is_none().then_some(now);
    // The delivery is decided with the send: a message that did not fail is `delivered`
    // `delivered_after` later (reactions only ever get `sent`, §1.7). Its column holds that
    // time from now on, and its event waits in the outbox until then: a reader sees `sent`
    // before it and `delivered` from it ([`read::effective_status`]).
    let delivered_at = (failed.is_none() && req.msg_type != MessageType::Reaction)
        .then_some(now + cmd.delivered_after);
    let (link, [pair_prev, number_prev]) =
        super::chains::link_pair(mem.chains.as_ref(), conn, &ev.pair, &phone.id, &ev.wa_id)?;
    let row = params![
        wamid,
        scope.business_id,
        phone.id,
        ev.wa_id,
        req.msg_type.as_str(),
        content,
        ev.rendered.clone().or_else(|| visible_text(req)),
        d.pricing.category,
        pricing_json,
        conversation_id,
        req.biz_opaque_callback_data,
        status,
        Stored(&d.verdicts).to_json(),
        now,
        sent_at,
        delivered_at,
        pair_prev,
        number_prev
    ];
    if conn.is_pg() {
        conn.defer_row(&MESSAGE_OUT_ROW, &row[..16])?;
    } else {
        conn.execute_static(MESSAGE_OUT_LINKED, row)?;
    }
    super::chains::linked(mem.chains.as_mut(), link, conn.last_insert_rowid());

    if let Some(e) = &failed {
        audit(
            conn,
            &AuditRow {
                business_id: &scope.business_id,
                at: now,
                kind: "failure",
                phone_id: Some(&phone.id),
                wa_id: Some(&ev.wa_id),
                message_id: Some(&wamid),
                error: e,
                verdicts: Some(&d.verdicts),
            },
        )?;
    }
    if let Some(e) = &failed {
        let errors_json = json!([e.webhook_error()]).to_string();
        conn.defer_row(&STATUS_ROW, params![wamid, status, now, errors_json])?;
    }
    let change = StatusChange {
        wamid: &wamid,
        status,
        at: now,
        recipient_id: &ev.wa_id,
        recipient_user_id: Some(&user_id),
        biz_opaque_callback_data: req.biz_opaque_callback_data.as_deref(),
        pricing: failed.is_none().then(|| {
            (
                d.pricing,
                ConversationInfo {
                    id: &conversation_id,
                    expiration: Some(now + DAY),
                },
            )
        }),
        error: failed.as_ref(),
    };
    enqueue_cached(
        conn,
        mem,
        &Event {
            business_id: &scope.business_id,
            waba_id: &phone.waba_id,
            phone_id: Some(&phone.id),
            field: "messages",
            payload: &crate::events::stored_status(&metadata(phone), &change),
            now,
        },
    )?;

    if failed.is_none() && d.window_after != ev.facts.window {
        save_window(conn, &phone.id, &ev.wa_id, &d.window_after)?;
    }
    if let Some(due) = delivered_at {
        delivered_event(
            conn,
            mem,
            &wamid,
            ToDeliver {
                business_id: scope.business_id.clone(),
                phone_id: phone.id.clone(),
                wa_id: ev.wa_id.clone(),
                pricing: Some(d.pricing),
                conversation_id: Some(conversation_id.clone()),
                biz_opaque: req.biz_opaque_callback_data.clone(),
                user_id: Some(user_id.clone()),
            },
            phone,
            due,
        )?;
    }

    let mut body = SendBody::Accepted(Accepted {
        input: req.input.clone(),
        contact: match &req.recipient {
            Recipient::UserId(u) => Contact::UserId(u.clone()),
            Recipient::WaId(_) => Contact::WaId(ev.wa_id.clone()),
        },
        wamid: wamid.clone(),
        template: req.msg_type == MessageType::Template,
    });
    if let Some((key, hash)) = &cmd.idempotency {
        // serialized once: stored, and answered as stored
        let text = body.into_json();
        conn.defer(
            "INSERT INTO idempotency (business_id, key, request_hash, response, wamid, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)", params![scope.business_id, key, hash, text, wamid, now])?;
        body = SendBody::Text(text);
    }
    apply_effects(conn, mem, scope, phone, &ev, now)?;
    let window_after = d.window_after;
    let Evaluated {
        pair,
        facts: mut left,
        ..
    } = ev;
    if failed.is_none() {
        left.window = window_after;
    }
    left.user_id = Some(user_id);
    put_back(
        conn,
        mem,
        facts_generation,
        &scope.business_id,
        &phone.id,
        pair,
        left,
    );
    Ok(Ok(SendResult {
        wamid,
        body,
        replayed: false,
    }))
}

/// Keeps what a job that took customer `pair`'s facts ([`customer_facts`]) leaves of them, for
/// the next send to them (`PairFacts`): on SQLite's writer, and on a PostgreSQL shard's writer
/// that may keep them (`Memory::begun`), with the pacing buckets as the batch left them so far
/// (written before its `COMMIT`).
fn put_back(
    conn: &Conn,
    mem: &mut Memory,
    generation: u64,
    business_id: &str,
    phone_id: &str,
    pair: PairKey,
    mut left: CustomerFacts,
) {
    let pg = conn.is_pg();
    if pg && mem.batch_config.is_none() {
        return;
    }
    if pg {
        left.buckets = (
            mem.number_buckets.get(phone_id).copied().or(left.buckets.0),
            mem.pair_buckets.get(&pair).copied().or(left.buckets.1),
        );
    }
    mem.pair_facts.put(generation, business_id, pair, left);
}

/// What a message's `delivered` event needs: the message and its customer's user id. Known to
/// the send; read before a task's move ([`DELIVER_READ`]) or with it ([`DELIVER_MANY`]) or for
/// a read that comes before the delivery's time: none of it changes after the send (a
/// contact's user id is written once and never changed).
pub(crate) struct ToDeliver {
    business_id: String,
    phone_id: String,
    wa_id: String,
    pricing: Option<greenlight_domain::pricing::Pricing>,
    conversation_id: Option<String>,
    biz_opaque: Option<String>,
    user_id: Option<String>,
}

/// An outbound message as [`ToDeliver`], by wamid, then its `delivered_at` (column 8).
const DELIVER_READ: &str = "SELECT m.business_id, m.phone_id, m.wa_id, m.status, m.pricing, \
     m.conversation_id, m.biz_opaque, ct.user_id, m.delivered_at FROM messages m \
     LEFT JOIN contacts ct ON ct.business_id = m.business_id AND ct.wa_id = m.wa_id \
     WHERE m.id = ?1 AND m.direction = 'out'";

/// PostgreSQL: moves those of many wamids (`$1`, an array, each once) that are outbound
/// messages still `sent`, their delivery not decided at the send, to `delivered` at `$2[1]`
/// (the job's time, once per wamid as arrays go by row), and returns each one moved with what
/// its event needs
/// (the columns of [`DELIVER_READ`], then the wamid): the read and the update of [`deliver`] in
/// one statement, one index descent per message instead of two. Rows come in no particular
/// order.
const DELIVER_MANY: &str =
    "UPDATE messages m SET status = 'delivered', delivered_at = ($2::int8[])[1] \
     WHERE m.id = ANY($1::text[]) AND m.direction = 'out' AND m.status = 'sent' \
     AND m.delivered_at IS NULL RETURNING m.business_id, m.phone_id, m.wa_id, m.status, m.pricing, m.conversation_id, \
     m.biz_opaque, (SELECT ct.user_id FROM contacts ct \
       WHERE ct.business_id = m.business_id AND ct.wa_id = m.wa_id), m.id";

/// The tasks due at `?1`, oldest first, at most `?2`.
const DUE_TASKS: &str =
    "SELECT id, kind, subject FROM tasks WHERE due_at <= ?1 ORDER BY due_at, id LIMIT ?2";

/// [`DUE_TASKS`] with, for a delivery, the business of its first message (null if there is
/// none): whose shard runs it (PostgreSQL; the task's other messages are of the same shard).
const DUE_TASKS_OWNED: &str = "SELECT t.id, t.kind, t.subject, \
     (SELECT business_id FROM messages WHERE t.kind = 'deliver' \
       AND id = split_part(t.subject, ' ', 1) AND direction = 'out') \
     FROM (SELECT id, kind, subject, due_at FROM tasks WHERE due_at <= ?1 ORDER BY due_at, id LIMIT ?2) t \
     ORDER BY t.due_at, t.id";

/// How often the scheduler drops refilled pacing buckets (PostgreSQL: see `run_due_sharded`).
const PACING_PURGE_EVERY_MS: Millis = 60_000;

/// Runs the deliveries `(task id, wamid)` and deletes their tasks (a task listed with several
/// wamids once). On PostgreSQL one
/// statement moves every message still `sent` to `delivered` and returns what the events need
/// ([`DELIVER_MANY`]); the events then follow in the list's order. On SQLite each message is
/// updated on its own, with what its send kept or read first ([`deliver`]). A message listed
/// twice is delivered once. A delivery fails only on a
/// database error, which fails the whole job (retried on the next tick).
pub(crate) fn deliver_all(
    c: &Conn,
    mem: &mut Memory,
    list: &[(i64, String)],
    now: Millis,
) -> StoreResult<()> {
    let mut done = std::collections::HashSet::new();
    if !c.is_pg() {
        for (id, wamid) in list {
            deliver(c, mem, wamid, now)?;
            if done.insert(*id) {
                c.defer_row(&TASK_DONE_ROW, params![id])?;
            }
        }
        return Ok(());
    }
    let mut seen = std::collections::HashSet::new();
    let wamids = list
        .iter()
        .filter(|(_, w)| seen.insert(w.as_str()))
        .map(|(_, w)| {
            vec![
                crate::db::Value::Text(w.clone()),
                crate::db::Value::Int(now),
            ]
        })
        .collect::<Vec<_>>();
    let mut moved: HashMap<String, ToDeliver> = c
        .query_arrays(DELIVER_MANY, &[Tx, I8], &wamids, |r| {
            Ok((r.get::<_, String>(8)?, to_deliver(r)?))
        })?
        .into_iter()
        .collect();
    for (id, wamid) in list {
        if let Some(row) = moved.remove(wamid) {
            // numbers are never deleted nor moved: one that is not there is a damaged
            // database, whose message keeps its move and goes without an event
            if let Some(phone) = phone_cached(c, mem, &row.business_id, &row.phone_id)? {
                delivered_event(c, mem, wamid, row, &phone, now)?;
            }
        }
        if done.insert(*id) {
            c.defer_row(&TASK_DONE_ROW, params![id])?;
        }
    }
    Ok(())
}

/// Runs one due task of any kind and deletes it. A delivery (the hot task: one or more
/// messages, each as [`deliver`] does) runs without a savepoint (on SQLite a savepoint costs a
/// copy of each page it touches); it fails only on a database error, which fails the whole
/// job. Every other task runs in a savepoint of its own: one that fails is retried a minute
/// later and never holds up the others.
fn run_due_task(
    c: &Conn,
    mem: &mut Memory,
    id: i64,
    kind: &str,
    subject: &str,
    now: Millis,
) -> StoreResult<()> {
    if kind == "deliver" {
        for wamid in task_wamids(subject) {
            deliver(c, mem, wamid, now)?;
        }
        c.defer_row(&TASK_DONE_ROW, params![id])?;
        return Ok(());
    }
    c.execute_batch("SAVEPOINT task")?;
    // a task may change configuration (a tier, a restriction): the deliveries after it read
    // the cache afresh
    mem.recheck_config();
    let ran = match kind {
        "review" => super::templates::run_review(c, subject, now),
        other => {
            super::compliance::run_task(c, mem.chains.as_ref(), other, subject, now).map(|_| ())
        }
    };
    match ran {
        Ok(()) => {
            c.execute_static(TASK_DONE_ROW.one, params![id])?;
            c.execute_batch("RELEASE task")?;
        }
        Err(e) => {
            c.execute_batch("ROLLBACK TO task; RELEASE task")?;
            tracing::error!(task = id, kind = %kind, error = %e, "a scheduled task failed; retrying in a minute");
            c.prepare_cached("UPDATE tasks SET due_at = ?1 WHERE id = ?2")?
                .execute(params![now + 60_000, id])?;
        }
    }
    Ok(())
}

impl SqliteStore {
    /// [`crate::Store::run_due`] on PostgreSQL. What is due, and whose message each delivery is, are
    /// read beside the writers. The deliveries at the head of the list then run on their
    /// businesses' shards, beside the sends of other businesses; only once they committed does
    /// the rest of the list run, in due order, in one instance-wide batch (which holds every shard
    /// back): a task after a delivery sees it done, as on SQLite (a quality rating counts the
    /// `delivered` statuses). So does, once a minute, the purge of refilled pacing buckets. Under
    /// the locks each task is read again: a delivery of a message no longer `sent` (or whose
    /// delivery its send decided) does nothing, and a task another node ran meanwhile is gone,
    /// so nodes racing on the same due tasks run each once.
    async fn run_due_sharded(&self, now: Millis, limit: usize) -> StoreResult<usize> {
        type Due = Vec<(i64, String, String, Option<String>)>;
        let due = self
            .read(move |c| -> StoreResult<Due> {
                Ok(c.prepare_cached(DUE_TASKS_OWNED)?
                    .query_map(params![now, limit as i64], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                    })?
                    .collect::<Result<Due, _>>()?)
            })
            .await?;
        // the deliveries before the first other task, by business; the rest, in order
        let mut deliveries: HashMap<String, Vec<(i64, String)>> = HashMap::new();
        let mut rest = Vec::new();
        for (id, kind, subject, owner) in &due {
            if !rest.is_empty() || kind != "deliver" {
                rest.push(*id);
                continue;
            }
            match owner.clone() {
                Some(b) => deliveries
                    .entry(b)
                    .or_default()
                    .extend(task_deliveries(*id, subject)),
                // its (first) message not found: the task runs with the rest, each of its
                // messages read on its own
                None => rest.push(*id),
            }
        }
        let purge = now.saturating_sub(self.pacing_purged_at.load(Ordering::Relaxed))
            >= PACING_PURGE_EVERY_MS;
        let shards = deliveries.into_iter().map(|(business, list)| async move {
            // the messages read again under the shard's lock
            self.write_mem_on(Route::Business(&business), Facts::Keeps, move |c, mem| {
                deliver_all(c, mem, &list, now)
            })
            .await
        });
        for r in futures_util::future::join_all(shards).await {
            r?;
        }
        if !rest.is_empty() || purge {
            self.write_mem(move |c, mem| {
                for id in rest {
                    let task: Option<(String, String)> = c
                        .prepare_cached(
                            "SELECT kind, subject FROM tasks WHERE id = ?1 AND due_at <= ?2",
                        )?
                        .query_row(params![id, now], |r| Ok((r.get(0)?, r.get(1)?)))
                        .optional()?;
                    // none: another node ran it (or put it off after a failure)
                    if let Some((kind, subject)) = task {
                        run_due_task(c, mem, id, &kind, &subject, now)?;
                    }
                }
                if purge {
                    // Every bucket refills within 270 s (the pair rate's 45 at one per 6 s);
                    // older rows equal absent ones, so they go (what SQLite's in-memory buckets
                    // do too).
                    c.defer(
                        "DELETE FROM pacing_buckets WHERE updated_at < ?1",
                        params![now - PACING_FORGET_MS],
                    )?;
                }
                Ok(())
            })
            .await?;
            if purge {
                self.pacing_purged_at.store(now, Ordering::Relaxed);
            }
        }
        Ok(due.len())
    }
}

fn to_deliver(r: &crate::db::Row<'_>) -> crate::db::Result<ToDeliver> {
    Ok(ToDeliver {
        business_id: r.get(0)?,
        phone_id: r.get(1)?,
        wa_id: r.get(2)?,
        // column 3 is the status: `deliver` checks it, and `DELIVER_MANY` moved only `sent` ones
        pricing: r
            .get::<_, Option<String>>(4)?
            .and_then(|p| parse_pricing(&p)),
        conversation_id: r.get(5)?,
        biz_opaque: r.get(6)?,
        user_id: r.get(7)?,
    })
}

/// Runs a delivery task's move of an outbound message to `delivered`, with its status event, if
/// the message is `sent` and its delivery was not decided at the send (an older build's
/// message, whose delivery is a task: see [`WAMIDS_SEP`]). Whether it moved.
fn deliver(conn: &Conn, mem: &mut Memory, wamid: &str, now: Millis) -> StoreResult<bool> {
    let Some((status, decided, row)) = deliver_read(conn, wamid)? else {
        return Ok(false);
    };
    if status != "sent" || decided.is_some() {
        return Ok(false);
    }
    let Some(phone) = phone_cached(conn, mem, &row.business_id, &row.phone_id)? else {
        return Ok(false);
    };
    conn.defer_row(&DELIVERED_ROW, params![wamid, now])?;
    delivered_event(conn, mem, wamid, row, &phone, now)?;
    Ok(true)
}

/// An outbound message by wamid ([`DELIVER_READ`]): its status, its `delivered_at` and what its
/// `delivered` event needs.
fn deliver_read(
    conn: &Conn,
    wamid: &str,
) -> StoreResult<Option<(String, Option<Millis>, ToDeliver)>> {
    Ok(conn
        .prepare_cached(DELIVER_READ)?
        .query_row(params![wamid], |r| {
            Ok((r.get::<_, String>(3)?, r.get(8)?, to_deliver(r)?))
        })
        .optional()?)
}

/// A message read before the time its send gave its delivery ([`read::effective_status`]) is
/// delivered at once: its `delivered_at` becomes `now`, and its `delivered` event, waiting in
/// the outbox for that time ([`waiting_delivered_event`]), goes and is queued again at `now`,
/// so that it comes before the `read` that follows it.
fn deliver_early(conn: &Conn, mem: &mut Memory, wamid: &str, now: Millis) -> StoreResult<()> {
    let Some((_, Some(due), row)) = deliver_read(conn, wamid)? else {
        return Ok(());
    };
    if let Some(id) = waiting_delivered_event(conn, &row.business_id, wamid, due)? {
        conn.prepare_cached("DELETE FROM outbox WHERE id = ?1")?
            .execute(params![id])?;
    }
    conn.prepare_cached("UPDATE messages SET delivered_at = ?2 WHERE id = ?1")?
        .execute(params![wamid, now])?;
    let Some(phone) = phone_cached(conn, mem, &row.business_id, &row.phone_id)? else {
        return Ok(());
    };
    delivered_event(conn, mem, wamid, row, &phone, now)
}

/// The outbox event of message `wamid`'s `delivered` status, written by its send to wait for
/// `due`: `pending` (found by `outbox_pending`, due at that very millisecond) or `skipped`
/// (nobody receives the business's events: on SQLite found by walking the outbox back from its
/// newest event, which meets only the events written since the send, at most
/// `delivered_delay_ms` ago; on PostgreSQL by walking the business's blocks of ids back from its
/// newest, each a range of ids). None if it is neither (an operator replayed it,
/// or a node whose clock runs ahead claimed it): the message then gets a second `delivered`
/// event, at `now` (webhooks are at least once).
fn waiting_delivered_event(
    conn: &Conn,
    business_id: &str,
    wamid: &str,
    due: Millis,
) -> StoreResult<Option<i64>> {
    let ours = |(id, payload): &(i64, String)| {
        crate::events::is_status_of(payload, wamid, "delivered").then_some(*id)
    };
    let indexed = |sql: &str| -> StoreResult<Option<i64>> {
        let rows: Vec<(i64, String)> = conn
            .prepare_cached(sql)?
            .query_map(params![business_id, due], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        Ok(rows.iter().find_map(ours))
    };
    // never claimed (`attempts`, the claim's fencing token, still 0): a node whose clock runs
    // ahead of this one's may have claimed it as due; that delivery stands
    let pending = indexed(
        "SELECT id, payload FROM outbox WHERE state = 'pending' AND business_id = ?1 \
         AND next_attempt_at = ?2 AND field = 'messages' AND attempts = 0",
    )?;
    if pending.is_some() {
        return Ok(pending);
    }
    let Some(sqlite) = conn.sqlite() else {
        // (the read of pending events above sent this job's queued events, and so their
        // blocks, before the blocks are read)
        let mut found = None;
        super::webhooks::blocks_back(conn, business_id, i64::MAX, |low, high| {
            let rows: Vec<(i64, String)> = conn
                .prepare_cached(
                    "SELECT id, payload FROM outbox WHERE id >= ?3 AND id < ?4 AND business_id = ?1 \
                     AND state = 'skipped' AND created_at = ?2 AND field = 'messages' ORDER BY id DESC",
                )?
                .query_map(params![business_id, due, low, high], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?
                .collect::<Result<_, _>>()?;
            found = rows.iter().find_map(ours);
            Ok(found.is_none())
        })?;
        return Ok(found);
    };
    let mut stmt = sqlite.prepare_cached(
        "SELECT id, payload FROM outbox WHERE business_id = ?1 AND state = 'skipped' \
         AND created_at = ?2 AND field = 'messages' ORDER BY id DESC",
    )?;
    let mut rows = stmt.query(rusqlite::params![business_id, due])?;
    while let Some(r) = rows.next()? {
        if let Some(id) = ours(&(r.get(0)?, r.get(1)?)) {
            return Ok(Some(id));
        }
    }
    Ok(None)
}

/// What follows a message's delivery (whose time, `now`, is the message's `delivered_at`,
/// decided by its send or written with a task's move): its webhook event, from its number
/// (`phone`, the caller's lookup), created and due at that time.
fn delivered_event(
    conn: &Conn,
    mem: &mut Memory,
    wamid: &str,
    row: ToDeliver,
    phone: &PhoneNumber,
    now: Millis,
) -> StoreResult<()> {
    let ToDeliver {
        business_id,
        phone_id: _,
        wa_id,
        pricing,
        conversation_id: conv,
        biz_opaque: opaque,
        user_id,
    } = row;
    // absent when read: derived (the same id every time, so an earlier delivery of this job
    // to the same customer wrote the same row)
    let user_id = match user_id {
        Some(u) => u,
        None => new_user_id(conn, &business_id, &wa_id, now)?,
    };
    let conv = conv.unwrap_or_default();
    let change = StatusChange {
        wamid,
        status: "delivered",
        at: now,
        recipient_id: &wa_id,
        recipient_user_id: Some(&user_id),
        biz_opaque_callback_data: opaque.as_deref(),
        pricing: pricing.map(|p| {
            (
                p,
                ConversationInfo {
                    id: &conv,
                    expiration: None,
                },
            )
        }),
        error: None,
    };
    enqueue_cached(
        conn,
        mem,
        &Event {
            business_id: &business_id,
            waba_id: &phone.waba_id,
            phone_id: Some(&phone.id),
            field: "messages",
            payload: &crate::events::stored_status(&metadata(phone), &change),
            now,
        },
    )?;
    Ok(())
}

/// Writes a new tenant: its business, app (with a fresh secret), access token, WABA, numbers
/// (one id each in `phone_ids`) and webhook subscription. Sandbox tenants get random ids; a
/// gateway tenant brings Meta's.
pub(crate) fn insert_tenant(
    c: &Conn,
    business_id: &str,
    waba_id: &str,
    phone_ids: &[String],
    t: &NewTenant,
    now: Millis,
) -> StoreResult<CreatedTenant> {
    let app_id = ids::object_id();
    let app_secret = ids::secret(16);
    let token = ids::access_token();
    let verification = if t.verified {
        "verified"
    } else {
        "not_verified"
    };
    c.execute(
        "INSERT INTO businesses (id, name, verification, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![business_id, t.business_name, verification, now],
    )?;
    c.execute(
        "INSERT INTO apps (id, business_id, secret, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![app_id, business_id, app_secret, now],
    )?;
    c.execute(
        "INSERT INTO access_tokens (hash, business_id, created_at) VALUES (?1, ?2, ?3)",
        params![ids::token_hash(&token), business_id, now],
    )?;
    c.execute(
        "INSERT INTO wabas (id, business_id, name, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![waba_id, business_id, t.business_name, now],
    )?;
    let mut phones = Vec::new();
    for (i, (p, id)) in t.phone_numbers.iter().zip(phone_ids).enumerate() {
        let digits: String = p
            .display_phone_number
            .chars()
            .filter(char::is_ascii_digit)
            .collect();
        c.execute(
            "INSERT INTO phone_numbers (id, waba_id, business_id, display_phone_number, digits, verified_name, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![id, waba_id, business_id, p.display_phone_number, digits, p.verified_name, now + i as i64],
        )?;
        phones.push(CreatedPhone {
            id: id.clone(),
            display_phone_number: p.display_phone_number.clone(),
            verified_name: p.verified_name.clone(),
        });
    }
    if let Some(w) = &t.webhook {
        c.execute(
            "INSERT INTO webhook_subscriptions (business_id, app_id, callback_url, verify_token, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![business_id, app_id, w.callback_url, w.verify_token, now],
        )?;
    }
    Ok(CreatedTenant {
        business_id: business_id.to_string(),
        waba_id: waba_id.to_string(),
        app_id,
        app_secret,
        access_token: token,
        phone_numbers: phones,
    })
}

impl SqliteStore {
    /// Operator lookups: the tenant owning an object, by a query selecting its business_id.
    async fn scope_by(&self, sql: &'static str, id: &str) -> StoreResult<Option<Scope>> {
        let id = id.to_string();
        self.read(move |c| {
            Ok(c.prepare_cached(sql)?
                .query_row(params![id], |r| {
                    Ok(Scope {
                        business_id: r.get(0)?,
                    })
                })
                .optional()?)
        })
        .await
    }
}

/// Pricing is stored as JSON of `Pricing`; its strings are `'static` in the domain, so map back.
fn parse_pricing(s: &str) -> Option<greenlight_domain::pricing::Pricing> {
    /// The two fields the price follows from (read without building a `Value`: once per
    /// delivery).
    #[derive(serde::Deserialize)]
    struct Stored<'a> {
        #[serde(borrow)]
        category: std::borrow::Cow<'a, str>,
        #[serde(borrow, rename = "type")]
        ty: std::borrow::Cow<'a, str>,
    }
    let v: Stored<'_> = serde_json::from_str(s).ok()?;
    greenlight_domain::pricing::Pricing::from_parts(&v.category, &v.ty)
}

const INBOUND_TYPES: &[&str] = &[
    "text",
    "image",
    "audio",
    "video",
    "document",
    "sticker",
    "location",
    "contacts",
    "button",
    "interactive",
    "reaction",
    "order",
    "system",
    "unsupported",
];

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> StoreResult<()> {
        // Through every writer: ready means writes can commit (each writer has a connection of
        // its own on PostgreSQL), not only that the database is readable.
        let pings = self.every_writer().map(|route| {
            self.write_mem_on(route, Facts::May, |c, _| {
                c.query_row("SELECT 1", [], |_| Ok(()))?;
                Ok(())
            })
        });
        futures_util::future::join_all(pings)
            .await
            .into_iter()
            .collect()
    }

    async fn clock_offset(&self) -> StoreResult<Millis> {
        self.read(|c| {
            let v: Option<String> = c
                .prepare_cached("SELECT value FROM meta WHERE key = 'clock_offset'")?
                .query_row([], |r| r.get(0))
                .optional()?;
            Ok(v.and_then(|v| v.parse().ok()).unwrap_or(0))
        })
        .await
    }

    async fn set_clock_offset(&self, offset: Millis) -> StoreResult<()> {
        self.write(move |c| {
            c.execute(
                "INSERT INTO meta (key, value) VALUES ('clock_offset', ?1) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                params![offset.to_string()],
            )?;
            Ok(())
        })
        .await
    }

    async fn tenant_count(&self) -> StoreResult<u64> {
        self.read(|c| {
            Ok(c.query_row("SELECT COUNT(*) FROM businesses", [], |r| {
                r.get::<_, i64>(0)
            })? as u64)
        })
        .await
    }

    async fn scope_of_phone(&self, phone_id: &str) -> StoreResult<Option<Scope>> {
        self.scope_by(
            "SELECT business_id FROM phone_numbers WHERE id = ?1",
            phone_id,
        )
        .await
    }

    async fn scope_of_media(&self, media_id: &str) -> StoreResult<Option<Scope>> {
        self.scope_by("SELECT business_id FROM media WHERE id = ?1", media_id)
            .await
    }

    async fn instance_secret(&self, name: &str) -> StoreResult<String> {
        let key = format!("secret:{name}");
        self.write(move |c| {
            c.execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
                params![key, ids::secret(32)],
            )?;
            Ok(
                c.query_row("SELECT value FROM meta WHERE key = ?1", params![key], |r| {
                    r.get(0)
                })?,
            )
        })
        .await
    }

    async fn scope_of_waba(&self, waba_id: &str) -> StoreResult<Option<Scope>> {
        self.scope_by("SELECT business_id FROM wabas WHERE id = ?1", waba_id)
            .await
    }

    async fn create_tenant(&self, t: NewTenant, now: Millis) -> StoreResult<CreatedTenant> {
        self.write(move |c| {
            let business_id = ids::object_id();
            let phone_ids: Vec<String> = t.phone_numbers.iter().map(|_| ids::object_id()).collect();
            let created = insert_tenant(c, &business_id, &ids::object_id(), &phone_ids, &t, now)?;
            super::compliance::on_tenant_created(c, &business_id, now)?;
            Ok(created)
        })
        .await
    }

    async fn principal_by_token_hash(&self, hash: &str) -> StoreResult<Option<Principal>> {
        let hash = hash.to_string();
        self.read(move |c| {
            let row: Option<(String, String)> = c
                .prepare_cached("SELECT b.id, b.name FROM access_tokens t JOIN businesses b ON b.id = t.business_id WHERE t.hash = ?1")?
                .query_row(params![hash], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            let Some((business_id, business_name)) = row else { return Ok(None) };
            let app_id: String = c
                .prepare_cached("SELECT id FROM apps WHERE business_id = ?1 ORDER BY created_at LIMIT 1")?
                .query_row(params![business_id], |r| r.get(0))?;
            let mut stmt = c.prepare_cached("SELECT id FROM wabas WHERE business_id = ?1 ORDER BY created_at")?;
            let waba_ids = stmt.query_map(params![business_id], |r| r.get(0))?.collect::<Result<Vec<String>, _>>()?;
            let phone_numbers = read::phones_of_business(c, &business_id)?.into_iter().map(Arc::new).collect();
            Ok(Some(Principal { scope: Scope { business_id }, business_name, app_id, waba_ids, phone_numbers }))
        })
        .await
    }

    async fn phone_number(&self, scope: &Scope, id: &str) -> StoreResult<Option<PhoneNumber>> {
        let (b, id) = (scope.business_id.clone(), id.to_string());
        self.read(move |c| read::phone(c, &b, &id)).await
    }

    async fn waba(&self, scope: &Scope, id: &str) -> StoreResult<Option<Waba>> {
        let (b, id) = (scope.business_id.clone(), id.to_string());
        self.read(move |c| read::waba(c, &b, &id)).await
    }

    async fn phone_numbers_of_waba(
        &self,
        scope: &Scope,
        waba_id: &str,
    ) -> StoreResult<Vec<PhoneNumber>> {
        let (b, w) = (scope.business_id.clone(), waba_id.to_string());
        self.read(move |c| {
            Ok(read::phones_of_business(c, &b)?
                .into_iter()
                .filter(|p| p.waba_id == w)
                .collect())
        })
        .await
    }

    async fn business_profile(&self, scope: &Scope, phone_id: &str) -> StoreResult<Value> {
        let (b, id) = (scope.business_id.clone(), phone_id.to_string());
        self.read(move |c| {
            let s: Option<String> = c
                .prepare_cached(
                    "SELECT profile FROM phone_numbers WHERE id = ?1 AND business_id = ?2",
                )?
                .query_row(params![id, b], |r| r.get(0))
                .optional()?;
            Ok(s.and_then(|s| serde_json::from_str(&s).ok())
                .unwrap_or_else(|| json!({})))
        })
        .await
    }

    async fn set_business_profile(
        &self,
        scope: &Scope,
        phone_id: &str,
        patch: Value,
    ) -> StoreResult<()> {
        let (b, id) = (scope.business_id.clone(), phone_id.to_string());
        self.write(move |c| {
            let s: Option<String> = c
                .prepare_cached(
                    "SELECT profile FROM phone_numbers WHERE id = ?1 AND business_id = ?2",
                )?
                .query_row(params![id, b], |r| r.get(0))
                .optional()?;
            let mut profile: Value = s
                .and_then(|s| serde_json::from_str(&s).ok())
                .unwrap_or_else(|| json!({}));
            if let (Some(obj), Some(p)) = (profile.as_object_mut(), patch.as_object()) {
                for (k, v) in p {
                    obj.insert(k.clone(), v.clone());
                }
            }
            c.execute(
                "UPDATE phone_numbers SET profile = ?1 WHERE id = ?2 AND business_id = ?3",
                params![json_col(&profile)?, id, b],
            )?;
            Ok(())
        })
        .await
    }

    async fn tenant_settings(&self, scope: &Scope) -> StoreResult<TenantSettings> {
        let b = scope.business_id.clone();
        self.read(move |c| settings(c, &b)).await
    }

    async fn set_tenant_settings(&self, scope: &Scope, s: TenantSettings) -> StoreResult<()> {
        let b = scope.business_id.clone();
        self.write(move |c| {
            c.execute(
                "UPDATE businesses SET settings = ?1 WHERE id = ?2",
                params![serde_json::to_string(&s).map_err(internal)?, b],
            )?;
            Ok(())
        })
        .await
    }

    async fn send(&self, scope: &Scope, cmd: SendCommand) -> StoreResult<SendResult> {
        let job_scope = scope.clone();
        // The refusal is returned as a value so that its audit row commits with the batch. No
        // savepoint (see `write_fast_on`): send_tx returns `Api` errors only before its first write.
        // A send reads and writes its business's rows only: on PostgreSQL, sends of different
        // businesses run on their shards' writers side by side.
        // only PostgreSQL's shard writers read sends' facts ahead; SQLite's keeps those its
        // sends left (`PairFacts`)
        let facts = match CustomerKey::of(scope, &cmd) {
            _ if !self.sharded() => Facts::OwnOnly,
            Some(key) => Facts::Customer(key),
            None => Facts::May,
        };
        // The payload's column text is made here, and the command comes back to be dropped
        // here, off the one writer: a template's components are a tree of JSON values (~7,800
        // instructions to free, ~1 µs to serialize).
        let content = json_col(&cmd.request.payload)?;
        let (result, cmd, content) = self
            .write_fast_on(Route::Business(&scope.business_id), facts, move |c, m| {
                Ok((send_tx(c, m, &job_scope, &cmd, &content)?, cmd, content))
            })
            .await?;
        drop((cmd, content));
        result.map_err(StoreError::Api)
    }

    async fn check(&self, scope: &Scope, cmd: SendCommand) -> StoreResult<CheckResult> {
        let scope = scope.clone();
        // On the writer, which owns the pacing buckets. It records nothing of the send; at most
        // it prunes the messaging limit's running count (customers whose reach left the window).
        self.write_mem(move |c, m| {
            let ev = evaluate(c, m, &scope, &cmd)?;
            let d = ev.decision;
            let refusal = match &d.outcome {
                Outcome::Refuse(e) | Outcome::FailAsync(e) => Some(e.clone()),
                Outcome::Accept => None,
            };
            Ok(CheckResult {
                allowed: refusal.is_none(),
                verdicts: d.verdicts,
                pricing: d.pricing,
                messaging_limit: ev.limit_usage.to_json(),
                refusal,
            })
        })
        .await
    }

    async fn mark_read(
        &self,
        scope: &Scope,
        phone_id: &str,
        message_id: &str,
        now: Millis,
    ) -> StoreResult<bool> {
        let (b, p, m) = (
            scope.business_id.clone(),
            phone_id.to_string(),
            message_id.to_string(),
        );
        // The business read the customer's message: recorded on the inbound message (its thread
        // shows it), as the customer's phone shows blue ticks.
        self.write(move |c| {
            let n = c
                .prepare_cached("UPDATE messages SET status = 'read' WHERE id = ?1 AND business_id = ?2 AND phone_id = ?3 AND direction = 'in'")?
                .execute(params![m, b, p])?;
            if n > 0 {
                c.prepare_cached("INSERT INTO statuses (message_id, status, at) VALUES (?1, 'read', ?2)")?.execute(params![m, now])?;
            }
            Ok(n > 0)
        })
        .await
    }

    async fn inbound(&self, scope: &Scope, cmd: InboundCommand) -> StoreResult<String> {
        let scope = scope.clone();
        let business = scope.business_id.clone();
        // On its business's writer (PostgreSQL: its shard's, beside other businesses'), as
        // sends are: everything it writes is the business's. It writes no `users` row: a
        // customer without one is on WhatsApp to every reader, and an insert of the shared
        // row from several shards at once made them wait on each other, even deadlock.
        // Of the facts sends read it changes its own customer's window, and with a keyword
        // their consents: it takes the customer's facts as a send does (kept, read ahead with
        // the round on PostgreSQL, or read) and puts them back with the window it opened, or
        // forgets every customer's after a keyword; the writer keeps the other customers'.
        // Without a savepoint (`write_fast_on`): its refusals all come before its first write.
        let facts = if self.sharded() {
            Facts::Customer(CustomerKey::inbound(&scope, &cmd))
        } else {
            Facts::Keeps
        };
        self.write_fast_on(Route::Business(&business), facts, move |c, mem| {
            let ty = cmd.message.get("type").and_then(Value::as_str).unwrap_or("text").to_string();
            if !INBOUND_TYPES.contains(&ty.as_str()) {
                return Err(ApiError::invalid_parameter(format!(
                    "inbound `type` '{ty}' is not a type WhatsApp delivers; use one of {}",
                    INBOUND_TYPES.join(", ")
                ))
                .into());
            }
            let mut message = cmd.message.clone();
            message.insert("type".into(), json!(ty));
            if !message.contains_key(&ty) && ty != "unsupported" {
                return Err(ApiError::missing_parameter(format!("inbound message of type '{ty}' needs a `{ty}` object")).into());
            }
            let now = cmd.now;
            let wamid = ids::wamid();
            let referral = message.contains_key("referral");
            let generation = mem.pair_facts.generation;
            let pair = PairKey::of(&cmd.phone_id, &cmd.from);
            let b = &scope.business_id;
            // the facts first: they carry the configuration counter, which the number's
            // lookup in the configuration cache then need not read
            let mut facts = customer_facts(c, mem, b, &cmd.phone_id, &cmd.from, &pair)?;
            mem.saw_config_version(facts.config_version);
            let Some(phone) = phone_cached(c, mem, b, &cmd.phone_id)? else {
                return Err(ApiError::unknown_object(&cmd.phone_id).into());
            };
            facts.window = facts.window.after_inbound(now, referral);
            save_window(c, &phone.id, &cmd.from, &facts.window)?;
            let user_id = match &facts.user_id {
                Some(u) => u.clone(),
                None => new_user_id(c, b, &cmd.from, now)?,
            };
            let content = message.get(&ty).cloned().unwrap_or(Value::Null);
            let text = match ty.as_str() {
                "text" => content["body"].as_str().map(str::to_string),
                "button" => content["text"].as_str().map(str::to_string),
                "interactive" => content["button_reply"]["title"].as_str().or(content["list_reply"]["title"].as_str()).map(str::to_string),
                _ => content["caption"].as_str().map(str::to_string),
            };
            let (link, [pair_prev, number_prev]) =
                super::chains::link(mem.chains.as_ref(), c, &phone.id, &cmd.from)?;
            let row = params![wamid, scope.business_id, phone.id, cmd.from, ty, json_col(&Value::Object(message.clone()))?, text, now, pair_prev, number_prev];
            let (pg, sqlite) = super::chains::message_insert!(
                "id, business_id, phone_id, wa_id, direction, type, content, text, status, created_at",
                "?1, ?2, ?3, ?4, 'in', ?5, ?6, ?7, 'received', ?8",
                "?9, ?10",
                ""
            );
            if c.is_pg() {
                c.defer(pg, &row[..8])?;
            } else {
                c.execute_static(sqlite, row)?;
            }
            super::chains::linked(mem.chains.as_mut(), link, c.last_insert_rowid());
            let value = webhook::inbound_value(
                &metadata(&phone),
                &webhook::Inbound {
                    wamid: &wamid,
                    at: now,
                    from: &cmd.from,
                    from_user_id: Some(&user_id),
                    profile_name: cmd.profile_name.as_deref(),
                    message: &message,
                },
            );
            let payload = json_col(&value)?;
            let event = Event {
                business_id: &scope.business_id,
                waba_id: &phone.waba_id,
                phone_id: Some(&phone.id),
                field: "messages",
                payload: &payload,
                now,
            };
            enqueue_cached(c, mem, &event)?;
            let settings = settings_cached(c, mem, &scope.business_id)?;
            if on_keywords(c, &settings, &scope.business_id, &phone, &cmd.from, &wamid, &message, now)? {
                // the consents every number of the business reads for this customer
                mem.forget_facts();
            } else {
                facts.user_id = Some(user_id);
                put_back(c, mem, generation, b, &phone.id, pair, facts);
            }
            Ok(wamid)
        })
        .await
    }

    async fn customer_action(&self, scope: &Scope, cmd: CustomerAction) -> StoreResult<Value> {
        let scope = scope.clone();
        self.write_mem(move |c, mem| {
            let Some(phone) = read::phone(c, &scope.business_id, &cmd.phone_id)? else {
                return Err(ApiError::unknown_object(&cmd.phone_id).into());
            };
            let now = cmd.now;
            match cmd.action.as_str() {
                "read" => {
                    let Some(mid) = &cmd.message_id else {
                        return Err(ApiError::missing_parameter("`message_id` is required for the `read` action: the business message the customer reads").into());
                    };
                    let row: Option<(String, Option<String>, Option<Millis>)> = c
                        .prepare_cached(
                            "SELECT status, biz_opaque, delivered_at FROM messages WHERE id = ?1 AND business_id = ?2 AND phone_id = ?3 AND wa_id = ?4 AND direction = 'out'",
                        )?
                        .query_row(params![mid, scope.business_id, phone.id, cmd.wa_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                        .optional()?;
                    let Some((status, opaque, delivered_at)) = row else {
                        return Err(ApiError::invalid_value(format!(
                            "`message_id` {mid} is not a message this number sent to {}; read only what the customer received",
                            cmd.wa_id
                        ))
                        .into());
                    };
                    match (status.as_str(), delivered_at) {
                        // delivered by now, as decided at the send
                        ("sent", Some(at)) if at <= now => {}
                        // read before the time its send gave the delivery: delivered now
                        ("sent", Some(_)) => deliver_early(c, mem, mid, now)?,
                        // an older build's message, whose delivery is a task
                        ("sent", None) => {
                            deliver(c, mem, mid, now)?;
                        }
                        ("delivered", _) => {}
                        other => {
                            return Err(ApiError::invalid_value(format!("message {mid} is '{}' and cannot be read", other.0)).into());
                        }
                    }
                    // its own delivery task goes; a task it shares with other messages stays,
                    // and does nothing for it (it is no longer `sent`)
                    c.prepare_cached("DELETE FROM tasks WHERE kind = 'deliver' AND subject = ?1")?.execute(params![mid])?;
                    c.prepare_cached("UPDATE messages SET status = 'read' WHERE id = ?1")?.execute(params![mid])?;
                    c.prepare_cached("INSERT INTO statuses (message_id, status, at) VALUES (?1, 'read', ?2)")?.execute(params![mid, now])?;
                    let user_id = user_id_for(c, &scope.business_id, &cmd.wa_id, now)?;
                    let change = StatusChange {
                        wamid: mid,
                        status: "read",
                        at: now,
                        recipient_id: &cmd.wa_id,
                        recipient_user_id: Some(&user_id),
                        biz_opaque_callback_data: opaque.as_deref(),
                        pricing: None,
                        error: None,
                    };
                    enqueue(c, &scope.business_id, &phone.waba_id, Some(&phone.id), "messages", &webhook::status_value(&metadata(&phone), &change), now)?;
                }
                "stop_marketing" | "resume_marketing" => {
                    let stop = cmd.action == "stop_marketing";
                    c.prepare_cached(
                        "INSERT INTO marketing_prefs (phone_id, wa_id, stopped, updated_at) VALUES (?1, ?2, ?3, ?4) \
                         ON CONFLICT (phone_id, wa_id) DO UPDATE SET stopped = excluded.stopped, updated_at = excluded.updated_at",
                    )?
                    .execute(params![phone.id, cmd.wa_id, stop, now])?;
                    let user_id = user_id_for(c, &scope.business_id, &cmd.wa_id, now)?;
                    let value = webhook::user_preferences_value(&metadata(&phone), &cmd.wa_id, &user_id, stop, now);
                    enqueue(c, &scope.business_id, &phone.waba_id, Some(&phone.id), "user_preferences", &value, now)?;
                }
                "block" | "report" => {
                    let kind = if cmd.action == "block" { FeedbackKind::Block } else { FeedbackKind::Report };
                    super::compliance::on_feedback(c, mem.chains.as_ref(), &scope.business_id, &phone, &cmd.wa_id, kind, cmd.reason.as_deref(), cmd.message_id.as_deref(), now)?;
                }
                "unblock" => {}
                other => {
                    return Err(ApiError::invalid_parameter(format!(
                        "`action` '{other}' is not one of read, block, unblock, report, stop_marketing, resume_marketing"
                    ))
                    .into())
                }
            }
            c.prepare_cached("INSERT INTO customer_actions (phone_id, wa_id, action, message_id, reason, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")?
                .execute(params![phone.id, cmd.wa_id, cmd.action, cmd.message_id, cmd.reason, now])?;
            Ok(json!({ "success": true, "action": cmd.action, "wa_id": cmd.wa_id, "timestamp": now / 1000 }))
        })
        .await
    }

    async fn set_user(&self, wa_id: &str, on_whatsapp: bool, now: Millis) -> StoreResult<Value> {
        let wa_id = wa_id.to_string();
        self.write(move |c| {
            c.execute(
                "INSERT INTO users (wa_id, on_whatsapp, created_at) VALUES (?1, ?2, ?3) ON CONFLICT (wa_id) DO UPDATE SET on_whatsapp = excluded.on_whatsapp",
                params![wa_id, on_whatsapp, now],
            )?;
            Ok(json!({ "wa_id": wa_id, "on_whatsapp": on_whatsapp }))
        })
        .await
    }

    async fn message(
        &self,
        scope: &Scope,
        wamid: &str,
        now: Millis,
    ) -> StoreResult<Option<MessageRecord>> {
        let (b, w) = (scope.business_id.clone(), wamid.to_string());
        self.read(move |c| read::message(c, &b, &w, now)).await
    }

    async fn thread(
        &self,
        scope: &Scope,
        phone_id: &str,
        wa_id: &str,
        now: Millis,
    ) -> StoreResult<Vec<MessageRecord>> {
        let (b, p, w) = (
            scope.business_id.clone(),
            phone_id.to_string(),
            wa_id.to_string(),
        );
        let chains = self.chains.clone();
        self.read(move |c| read::thread(c, chains.as_ref(), &b, &p, &w, now))
            .await
    }

    async fn run_due(&self, now: Millis, limit: usize) -> StoreResult<usize> {
        if self.sharded() {
            return self.run_due_sharded(now, limit).await;
        }
        // Deliveries keep the facts sends read of their customers; the job forgets them before
        // any other task, which may change them.
        self.write_mem_on(Route::Global, Facts::Keeps, move |c, mem| {
            let mut stmt = c.prepare_cached(DUE_TASKS)?;
            let due = stmt
                .query_map(params![now, limit as i64], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                    ))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            drop(stmt);
            // tasks are taken whole, in order, until they hold `limit` messages
            let (mut ran, mut taken) = (0, 0);
            for (_, kind, subject) in &due {
                if ran >= limit {
                    break;
                }
                ran += if kind == "deliver" {
                    task_wamids(subject).count()
                } else {
                    1
                };
                taken += 1;
            }
            let due = &due[..taken];
            let heads = due
                .iter()
                .take_while(|(_, kind, _)| kind == "deliver")
                .count();
            let head: Vec<(i64, String)> = due[..heads]
                .iter()
                .flat_map(|(id, _, subject)| task_deliveries(*id, subject))
                .collect();
            deliver_all(c, mem, &head, now)?;
            for (id, kind, subject) in &due[heads..] {
                mem.forget_facts();
                run_due_task(c, mem, *id, kind, subject, now)?;
            }
            Ok(ran)
        })
        .await
    }

    async fn audit(&self, scope: &Scope, q: AuditQuery) -> StoreResult<Vec<AuditEvent>> {
        let b = scope.business_id.clone();
        self.read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT id, at, kind, phone_id, wa_id, message_id, rule, code, details, verdicts FROM audit_events \
                 WHERE business_id = ?1 AND at >= ?2 AND at < ?3 AND id > ?4 AND (kind = ?5 OR ?5 IS NULL) ORDER BY id LIMIT ?6",
            )?;
            let rows = stmt.query_map(
                params![b, q.from.unwrap_or(i64::MIN), q.to.unwrap_or(i64::MAX), q.after.unwrap_or(0), q.kind, q.limit as i64],
                |r| {
                    let verdicts: Option<String> = r.get(9)?;
                    Ok(AuditEvent {
                        id: r.get(0)?,
                        timestamp: r.get::<_, i64>(1)?.div_euclid(1000),
                        kind: r.get(2)?,
                        phone_number_id: r.get(3)?,
                        wa_id: r.get(4)?,
                        message_id: r.get(5)?,
                        rule: r.get(6)?,
                        code: r.get(7)?,
                        details: r.get(8)?,
                        verdicts: verdicts.and_then(|v| serde_json::from_str(&v).ok()),
                    })
                },
            )?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    async fn set_blocked(
        &self,
        scope: &Scope,
        phone_id: &str,
        wa_ids: Vec<String>,
        block: bool,
        now: Millis,
    ) -> StoreResult<Vec<String>> {
        let (b, p) = (scope.business_id.clone(), phone_id.to_string());
        self.write(move |c| {
            if read::phone(c, &b, &p)?.is_none() {
                return Err(ApiError::unknown_object(&p).into());
            }
            if block {
                let n: i64 = c.prepare_cached("SELECT COUNT(*) FROM blocked_users WHERE phone_id = ?1")?.query_row(params![p], |r| r.get(0))?;
                if n as usize + wa_ids.len() > 64_000 {
                    return Err(ApiError::new(400, 139101, "Blocklist limit reached", "A number can block at most 64,000 users; unblock some first.").into());
                }
            }
            let mut changed = Vec::new();
            for w in wa_ids {
                let n = if block {
                    c.prepare_cached("INSERT INTO blocked_users (phone_id, wa_id, at) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING")?.execute(params![p, w, now])?
                } else {
                    c.prepare_cached("DELETE FROM blocked_users WHERE phone_id = ?1 AND wa_id = ?2")?.execute(params![p, w])?
                };
                if n > 0 {
                    changed.push(w);
                }
            }
            Ok(changed)
        })
        .await
    }

    async fn blocked(
        &self,
        scope: &Scope,
        phone_id: &str,
        limit: usize,
        after: Option<String>,
    ) -> StoreResult<Vec<String>> {
        let (b, p) = (scope.business_id.clone(), phone_id.to_string());
        self.read(move |c| {
            if read::phone(c, &b, &p)?.is_none() {
                return Err(ApiError::unknown_object(&p).into());
            }
            let mut stmt = c.prepare_cached("SELECT wa_id FROM blocked_users WHERE phone_id = ?1 AND wa_id > ?2 ORDER BY wa_id LIMIT ?3")?;
            let rows = stmt.query_map(params![p, after.unwrap_or_default(), limit as i64], |r| r.get::<_, String>(0))?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    async fn request_display_name(
        &self,
        scope: &Scope,
        phone_id: &str,
        name: &str,
        now: Millis,
    ) -> StoreResult<()> {
        let (b, p, name) = (
            scope.business_id.clone(),
            phone_id.to_string(),
            name.to_string(),
        );
        self.write(move |c| {
            let n = c
                .prepare_cached("UPDATE phone_numbers SET requested_name = ?1, new_name_status = 'PENDING_REVIEW' WHERE id = ?2 AND business_id = ?3")?
                .execute(params![name, p, b])?;
            if n == 0 {
                return Err(ApiError::unknown_object(&p).into());
            }
            audit_note(c, &b, now, "verification", Some(&p), None, None, "display_name", &format!("display name {name:?} requested; pending review"))?;
            Ok(())
        })
        .await
    }

    async fn decide_display_name(
        &self,
        scope: &Scope,
        phone_id: &str,
        approve: bool,
        reason: Option<String>,
        now: Millis,
    ) -> StoreResult<PhoneNumber> {
        let (b, p) = (scope.business_id.clone(), phone_id.to_string());
        self.write(move |c| {
            let Some(phone) = read::phone(c, &b, &p)? else { return Err(ApiError::unknown_object(&p).into()) };
            let Some(requested) = phone.requested_name.clone().filter(|_| phone.new_name_status == "PENDING_REVIEW") else {
                return Err(ApiError::invalid_parameter("This number has no display name awaiting review; the tenant requests one with POST /{phone-number-id} {\"new_display_name\": …}").into());
            };
            use greenlight_domain::policy::verification::{phone_number_name_update_value, NameDecision};
            let decision = if approve { NameDecision::Approved } else { NameDecision::Rejected };
            if approve {
                c.prepare_cached("UPDATE phone_numbers SET verified_name = ?1, name_status = 'APPROVED', new_name_status = 'APPROVED', requested_name = NULL WHERE id = ?2")?
                    .execute(params![requested, p])?;
            } else {
                c.prepare_cached("UPDATE phone_numbers SET new_name_status = 'DECLINED' WHERE id = ?1")?.execute(params![p])?;
            }
            let value = phone_number_name_update_value(&phone.digits, decision, &requested, reason.as_deref().or((!approve).then_some("NAME_FORMAT_UNACCEPTABLE")));
            enqueue(c, &b, &phone.waba_id, Some(&p), "phone_number_name_update", &value, now)?;
            audit_note(c, &b, now, "verification", Some(&p), None, None, "display_name", &format!("display name {requested:?} {}", if approve { "approved" } else { "declined" }))?;
            read::phone(c, &b, &p)?.ok_or_else(|| internal("phone vanished"))
        })
        .await
    }

    async fn insert_media(&self, scope: &Scope, m: MediaRecord) -> StoreResult<()> {
        let b = scope.business_id.clone();
        self.write(move |c| {
            c.execute(
                "INSERT INTO media (id, business_id, phone_id, mime_type, sha256, file_size, filename, path, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![m.id, b, m.phone_number_id, m.mime_type, m.sha256, m.file_size as i64, m.filename, m.path, m.created_at],
            )?;
            Ok(())
        })
        .await
    }

    async fn media(&self, scope: &Scope, id: &str) -> StoreResult<Option<MediaRecord>> {
        let (b, id) = (scope.business_id.clone(), id.to_string());
        self.read(move |c| {
            Ok(c.prepare_cached(
                "SELECT id, phone_id, mime_type, sha256, file_size, filename, path, created_at FROM media WHERE id = ?1 AND business_id = ?2",
            )?
            .query_row(params![id, b], |r| {
                Ok(MediaRecord {
                    id: r.get(0)?,
                    phone_number_id: r.get(1)?,
                    mime_type: r.get(2)?,
                    sha256: r.get(3)?,
                    file_size: r.get::<_, i64>(4)? as u64,
                    filename: r.get(5)?,
                    path: r.get(6)?,
                    created_at: r.get(7)?,
                })
            })
            .optional()?)
        })
        .await
    }

    async fn delete_media(&self, scope: &Scope, id: &str) -> StoreResult<bool> {
        let (b, id) = (scope.business_id.clone(), id.to_string());
        self.write(move |c| {
            Ok(c.execute(
                "DELETE FROM media WHERE id = ?1 AND business_id = ?2",
                params![id, b],
            )? > 0)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sqlite::{SqlStore, SqliteOptions};
    use greenlight_domain::pricing::price;

    /// A store on a fresh database with one tenant whose customer `15550000001` wrote, and
    /// got two texts with callback data, sent at 1,700,000,001,000 and 1,700,000,002,000
    /// (their deliveries due 600 s later).
    async fn two_sends(dir: &tempfile::TempDir) -> (SqlStore, crate::CreatedTenant, [String; 2]) {
        let s = SqlStore::open(
            &dir.path().join("t.db").to_string_lossy(),
            SqliteOptions::default(),
        )
        .unwrap();
        two_sends_on(s).await
    }

    /// [`two_sends`] on the store `s`.
    async fn two_sends_on(s: SqlStore) -> (SqlStore, crate::CreatedTenant, [String; 2]) {
        use crate::{SendCommand, Store};
        use greenlight_domain::message::{parse_request, Request};
        let t = crate::testkit::tenant(&s, "B", &["+1 555 010 0001"]).await;
        let first = crate::testkit::in_window_text(&s, &t, 1_700_000_000_000).await;
        let (scope, phone) = crate::testkit::number(&s, &t, 0).await;
        let body = json!({"messaging_product": "whatsapp", "to": "15550000001", "type": "text",
            "text": {"body": "again"}, "biz_opaque_callback_data": "order-7"});
        let Ok(Request::Send(request)) = parse_request(&body, "1") else {
            panic!("a text send");
        };
        let cmd = SendCommand {
            phone: phone.into(),
            request,
            idempotency: None,
            now: 1_700_000_002_000,
            delivered_after: 600_000,
        };
        let second = s.send(&scope, cmd).await.unwrap();
        (s, t, [first.wamid, second.wamid])
    }

    /// The `delivered` events, by wamid, as values with the message's own ids (wamid,
    /// conversation) blanked.
    async fn delivered_events(s: &SqlStore) -> Vec<(String, serde_json::Value)> {
        let raw: Vec<String> = s
            .read(|c| {
                let mut stmt = c.prepare("SELECT payload FROM outbox ORDER BY id")?;
                let rows = stmt.query_map(params![], |r| r.get(0))?;
                Ok(rows.collect::<Result<Vec<_>, _>>()?)
            })
            .await
            .unwrap();
        raw.into_iter()
            .map(|p| serde_json::from_str::<Value>(&crate::events::value_json(p).unwrap()).unwrap())
            .filter(|v| v["statuses"][0]["status"] == "delivered")
            .map(|mut v| {
                let st = &mut v["statuses"][0];
                let wamid = st["id"].as_str().unwrap().to_string();
                st["id"] = json!("-");
                st["conversation"]["id"] = json!("-");
                (wamid, v)
            })
            .collect()
    }

    /// What the outbox holds, in id order: `(status, wamid, created_at, next_attempt_at)` of
    /// each status event.
    async fn status_events(s: &SqlStore) -> Vec<(String, String, Millis, Millis)> {
        let rows: Vec<(String, Millis, Millis)> = s
            .read(|c| {
                let mut stmt = c.prepare(
                    "SELECT payload, created_at, next_attempt_at FROM outbox ORDER BY id",
                )?;
                let rows = stmt.query_map(params![], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
                Ok(rows.collect::<Result<Vec<_>, _>>()?)
            })
            .await
            .unwrap();
        rows.into_iter()
            .filter_map(|(p, created, next)| {
                let v: Value =
                    serde_json::from_str(&crate::events::value_json(p).unwrap()).unwrap();
                let st = &v["statuses"][0];
                Some((
                    st["status"].as_str()?.to_string(),
                    st["id"].as_str()?.to_string(),
                    created,
                    next,
                ))
            })
            .collect()
    }

    /// The status events of one message: `(status, created_at)` in outbox order.
    async fn events_of(s: &SqlStore, wamid: &str) -> Vec<(String, Millis)> {
        status_events(s)
            .await
            .into_iter()
            .filter(|e| e.1 == wamid)
            .map(|e| (e.0, e.2))
            .collect()
    }

    /// A message's `delivered_at` column.
    async fn delivered_at(s: &SqlStore, wamid: &str) -> Option<Millis> {
        let w = wamid.to_string();
        s.read(move |c| {
            Ok(c.query_row(
                "SELECT delivered_at FROM messages WHERE id = ?1",
                params![w],
                |r| r.get(0),
            )?)
        })
        .await
        .unwrap()
    }

    /// Runs `sql` (`?1` the event's id) on the outbox event of `wamid`'s `delivered` status.
    async fn on_delivered_event(s: &SqlStore, wamid: &str, sql: &'static str) {
        let w = wamid.to_string();
        s.write(move |c| {
            let rows: Vec<(i64, String)> = c
                .prepare("SELECT id, payload FROM outbox")?
                .query_map(params![], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?;
            for (id, payload) in rows {
                if crate::events::is_status_of(&payload, &w, "delivered") {
                    c.execute(sql, params![id])?;
                }
            }
            Ok(())
        })
        .await
        .unwrap();
    }

    /// An older build's delivery of `wamid`: its decided time and event undone, a task due at
    /// `due` in their place.
    async fn as_an_older_build_left_it(s: &SqlStore, wamid: &str, due: Millis) {
        on_delivered_event(s, wamid, "DELETE FROM outbox WHERE id = ?1").await;
        on_message(
            s,
            wamid,
            "UPDATE messages SET delivered_at = NULL WHERE id = ?1",
        )
        .await;
        let w = wamid.to_string();
        s.write(move |c| {
            c.execute(
                "INSERT INTO tasks (due_at, kind, subject) VALUES (?1, 'deliver', ?2)",
                params![due, w],
            )?;
            Ok(())
        })
        .await
        .unwrap();
    }

    /// Runs `sql` with `?1` the message id `wamid`.
    async fn on_message(s: &SqlStore, wamid: &str, sql: &'static str) {
        let w = wamid.to_string();
        s.write(move |c| Ok(c.execute(sql, params![w])?))
            .await
            .unwrap();
    }

    /// A send decides its delivery: the message keeps `sent` with its `delivered_at` at the
    /// send's time plus `delivered_after`, no task is written, and its `delivered` event waits
    /// in the outbox for that time. The event is the one an older build's delivery task makes
    /// for the same message at the same time: of two texts to one customer with the same
    /// callback data (the first gets it below, the second was sent with it), the first
    /// delivered by a task, the two `delivered` events differ only in the message's ids.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_send_decides_its_delivery_as_a_task_would_run_it() {
        let dir = tempfile::tempdir().unwrap();
        let (s, _, [a, b]) = two_sends(&dir).await;
        const SENT_B: Millis = 1_700_000_002_000;
        assert_eq!(delivered_at(&s, &b).await, Some(SENT_B + 600_000));
        assert_eq!(
            delivered_at(&s, &a).await,
            Some(1_700_000_001_000 + 600_000)
        );
        assert_eq!(status_of(&s, b.clone()).await, "sent");
        let tasks = s
            .read(|c| {
                Ok(c.query_row(
                    "SELECT COUNT(*) FROM tasks WHERE kind = 'deliver'",
                    [],
                    |r| r.get::<_, i64>(0),
                )?)
            })
            .await
            .unwrap();
        assert_eq!(tasks, 0, "no delivery task");
        let waiting: Vec<_> = status_events(&s)
            .await
            .into_iter()
            .filter(|e| e.0 == "delivered" && e.1 == b)
            .collect();
        assert_eq!(
            waiting,
            [(
                "delivered".into(),
                b.clone(),
                SENT_B + 600_000,
                SENT_B + 600_000
            )]
        );

        as_an_older_build_left_it(&s, &a, SENT_B + 600_000).await;
        on_message(
            &s,
            &a,
            "UPDATE messages SET biz_opaque = 'order-7' WHERE id = ?1",
        )
        .await;
        crate::Store::run_due(&s, SENT_B + 600_000, 64)
            .await
            .unwrap();
        assert_eq!(
            status_of(&s, a.clone()).await,
            "delivered",
            "the task moved it"
        );
        let events = delivered_events(&s).await;
        assert_eq!(events.len(), 2, "{events:?}");
        assert_eq!((&events[0].0, &events[1].0), (&b, &a));
        assert_eq!(events[0].1, events[1].1);
        let st = &events[0].1["statuses"][0];
        assert_eq!(st["timestamp"], "1700000602");
        assert_eq!(st["biz_opaque_callback_data"], "order-7");
        assert_eq!(st["pricing"]["type"], "free_customer_service");
        assert_eq!(
            events[0].1["contacts"][0]["user_id"],
            st["recipient_user_id"]
        );
        assert!(st["recipient_user_id"]
            .as_str()
            .is_some_and(|u| !u.is_empty()));
        // a task finds nothing to do for a message whose delivery its send decided
        on_message(
            &s,
            &b,
            "INSERT INTO tasks (due_at, kind, subject) VALUES (1, 'deliver', ?1)",
        )
        .await;
        crate::Store::run_due(&s, SENT_B + 700_000, 64)
            .await
            .unwrap();
        assert_eq!(delivered_events(&s).await.len(), 2);
        assert_eq!(status_of(&s, b).await, "sent", "its column says when");
    }

    /// A message reads `sent` until its decided delivery time and `delivered` from that very
    /// millisecond on, in its status and in its history; so does its thread.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_decided_delivery_shows_from_its_time_on() {
        use crate::Store;
        let dir = tempfile::tempdir().unwrap();
        let (s, t, [_, b]) = two_sends(&dir).await;
        let (scope, phone) = crate::testkit::number(&s, &t, 0).await;
        const DUE: Millis = 1_700_000_602_000;
        let history = |m: &MessageRecord| {
            m.statuses
                .iter()
                .map(|st| format!("{}@{}", st.status, st.timestamp))
                .collect::<Vec<_>>()
        };
        let before = s.message(&scope, &b, DUE - 1).await.unwrap().unwrap();
        assert_eq!(before.status, "sent");
        assert_eq!(history(&before), ["sent@1700000002"]);
        let at = s.message(&scope, &b, DUE).await.unwrap().unwrap();
        assert_eq!(at.status, "delivered");
        assert_eq!(history(&at), ["sent@1700000002", "delivered@1700000602"]);
        let statuses = |thread: Vec<MessageRecord>| {
            thread
                .into_iter()
                .filter(|m| m.direction == "out")
                .map(|m| m.status)
                .collect::<Vec<_>>()
        };
        let thread = s
            .thread(&scope, &phone.id, "15550000001", DUE - 1)
            .await
            .unwrap();
        assert_eq!(
            statuses(thread),
            ["delivered", "sent"],
            "the first was due a second earlier"
        );
        let thread = s
            .thread(&scope, &phone.id, "15550000001", DUE)
            .await
            .unwrap();
        assert_eq!(statuses(thread), ["delivered", "delivered"]);
    }

    /// A customer's `read` before the time its send gave the delivery delivers the message at
    /// once: its waiting `delivered` event goes, and one at the read's time comes before the
    /// `read`. A read after that time adds only the `read`; a read of an older build's message
    /// (its delivery a task) delivers it as the task would, once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_read_before_the_delivery_time_delivers_at_once() {
        let dir = tempfile::tempdir().unwrap();
        reads_before_the_delivery_time(two_sends(&dir).await).await;
    }

    /// On PostgreSQL each facts read ([`FACTS_ONE_PG`], [`FACTS_MANY`]) finds every row with an
    /// index scan of its primary key, never through a bitmap (index, bitmap, heap: several
    /// times the work for one row), in the generic plans the store's prepared statements come
    /// to. The tables hold about as many rows as the benchmark's, vacuumed, first not analysed,
    /// then analysed: at that size the planner guesses a few rows per key, and a lookup fenced
    /// with `OFFSET 0` instead of `LIMIT 1` reads the window through a bitmap.
    #[test]
    fn the_facts_reads_find_each_row_by_an_index_scan_on_postgres() {
        let Some(db) = crate::postgres::testing::TestDb::create("facts_plans") else {
            return;
        };
        SqlStore::open_postgres(&db.url, Default::default())
            .unwrap()
            .close();
        let mut c = ::postgres::Client::connect(&db.url, ::postgres::NoTls).unwrap();
        c.batch_execute(&format!(
            "INSERT INTO windows (phone_id, wa_id, last_inbound_at) \
               SELECT 'p' || (i % 100), 'w' || i, i FROM generate_series(1, 150000) i; \
             INSERT INTO pacing_buckets (phone_id, wa_id, tokens, updated_at) \
               SELECT 'p' || (i % 100), 'w' || i, 1, i FROM generate_series(1, 150000) i; \
             PREPARE one AS {}; PREPARE many AS {FACTS_MANY}; \
             SET plan_cache_mode = force_generic_plan",
            crate::db::translate(FACTS_ONE_PG)
        ))
        .unwrap();
        // on its own: VACUUM runs outside any transaction
        c.batch_execute("VACUUM windows, pacing_buckets").unwrap();
        for analysed in [false, true] {
            if analysed {
                c.batch_execute("ANALYZE").unwrap();
            }
            for call in [
                "one('p1', 'w1', 'b')",
                "many('{p1,p2}', '{w1,w2}', '{b,b}')",
            ] {
                let plan: String = c
                    .query(&format!("EXPLAIN EXECUTE {call}"), &[])
                    .unwrap()
                    .iter()
                    .map(|r| r.get::<_, String>(0) + "\n")
                    .collect();
                assert!(
                    !plan.contains("Bitmap"),
                    "{call}, analysed: {analysed}, reads a row through a bitmap:\n{plan}"
                );
                for index in ["windows_pkey", "pacing_buckets_pkey"] {
                    assert!(
                        plan.contains(&format!("Index Scan using {index}")),
                        "{call}, analysed: {analysed}, without an index scan of {index}:\n{plan}"
                    );
                }
            }
        }
    }

    /// [`a_read_before_the_delivery_time_delivers_at_once`] on PostgreSQL, where a waiting event
    /// nobody receives is found through its business's blocks of ids.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_read_before_the_delivery_time_delivers_at_once_on_postgres() {
        let Some(db) = crate::postgres::testing::TestDb::create("read_before_delivery") else {
            return;
        };
        let s = SqlStore::open_postgres(&db.url, Default::default()).unwrap();
        reads_before_the_delivery_time(two_sends_on(s).await).await;
    }

    async fn reads_before_the_delivery_time(
        (s, t, [a, b]): (SqlStore, crate::CreatedTenant, [String; 2]),
    ) {
        use crate::Store;
        let (scope, phone) = crate::testkit::number(&s, &t, 0).await;
        let read = |wamid: &str, now: Millis| crate::CustomerAction {
            phone_id: phone.id.clone(),
            wa_id: "15550000001".into(),
            action: "read".into(),
            message_id: Some(wamid.to_string()),
            reason: None,
            now,
        };
        const EARLY: Millis = 1_700_000_100_000;
        s.customer_action(&scope, read(&b, EARLY)).await.unwrap();
        assert_eq!(delivered_at(&s, &b).await, Some(EARLY));
        let of_b: Vec<_> = status_events(&s)
            .await
            .into_iter()
            .filter(|e| e.1 == b)
            .map(|e| (e.0, e.2, e.3))
            .collect();
        assert_eq!(
            of_b,
            [
                ("sent".into(), 1_700_000_002_000, 1_700_000_002_000),
                ("delivered".into(), EARLY, EARLY),
                ("read".into(), EARLY, EARLY),
            ]
        );
        let m = s.message(&scope, &b, EARLY).await.unwrap().unwrap();
        assert_eq!(m.status, "read");
        // a's delivery is untouched, still waiting for its time
        assert_eq!(delivered_at(&s, &a).await, Some(1_700_000_601_000));

        // after its time: only the read
        s.customer_action(&scope, read(&a, 1_700_000_601_000))
            .await
            .unwrap();
        let of_a = events_of(&s, &a).await;
        assert_eq!(
            of_a,
            [
                ("sent".into(), 1_700_000_001_000),
                ("delivered".into(), 1_700_000_601_000),
                ("read".into(), 1_700_000_601_000),
            ]
        );
        assert_eq!(status_of(&s, a).await, "read");

        // an older build's message: delivered by the read, its task then does nothing
        let c = text_at(&s, &t, 1_700_000_200_000).await.unwrap().wamid;
        as_an_older_build_left_it(&s, &c, 1_700_000_800_000).await;
        s.customer_action(&scope, read(&c, 1_700_000_300_000))
            .await
            .unwrap();
        s.run_due(1_700_000_900_000, 64).await.unwrap();
        let of_c = events_of(&s, &c).await;
        assert_eq!(
            of_c,
            [
                ("sent".into(), 1_700_000_200_000),
                ("delivered".into(), 1_700_000_300_000),
                ("read".into(), 1_700_000_300_000),
            ]
        );
        assert_eq!(delivered_at(&s, &c).await, Some(1_700_000_300_000));

        // a waiting event nobody receives (written `skipped`) is replaced as well
        let d = text_at(&s, &t, 1_700_000_400_000).await.unwrap().wamid;
        on_delivered_event(&s, &d, "UPDATE outbox SET state = 'skipped' WHERE id = ?1").await;
        // and a later event of another message stands between it and the outbox's end
        text_at(&s, &t, 1_700_000_450_000).await.unwrap();
        s.customer_action(&scope, read(&d, 1_700_000_500_000))
            .await
            .unwrap();
        let of_d = events_of(&s, &d).await;
        assert_eq!(
            of_d,
            [
                ("sent".into(), 1_700_000_400_000),
                ("delivered".into(), 1_700_000_500_000),
                ("read".into(), 1_700_000_500_000),
            ]
        );

        // a waiting event already claimed (a node whose clock runs ahead took it as due) stays:
        // the early delivery comes as a second event
        let e = text_at(&s, &t, 1_700_000_550_000).await.unwrap().wamid;
        on_delivered_event(&s, &e, "UPDATE outbox SET attempts = 1 WHERE id = ?1").await;
        s.customer_action(&scope, read(&e, 1_700_000_560_000))
            .await
            .unwrap();
        assert_eq!(
            events_of(&s, &e).await,
            [
                ("sent".into(), 1_700_000_550_000),
                ("delivered".into(), 1_700_001_150_000),
                ("delivered".into(), 1_700_000_560_000),
                ("read".into(), 1_700_000_560_000),
            ]
        );
    }

    /// A text from the tenant's first number to 15550000001 at `now`.
    async fn text_at(
        s: &SqlStore,
        t: &crate::CreatedTenant,
        now: Millis,
    ) -> StoreResult<SendResult> {
        use crate::{SendCommand, Store};
        use greenlight_domain::message::{parse_request, Request};
        let (scope, phone) = crate::testkit::number(s, t, 0).await;
        let body = json!({"messaging_product": "whatsapp", "to": "15550000001", "type": "text",
            "text": {"body": "x"}});
        let Ok(Request::Send(request)) = parse_request(&body, "1") else {
            panic!("a text send");
        };
        let cmd = SendCommand {
            phone: phone.into(),
            request,
            idempotency: None,
            now,
            delivered_after: 600_000,
        };
        s.send(&scope, cmd).await
    }

    /// The statements that a customer's message, the business's sends and their deliveries run
    /// on the writer bind their values in place: none of their texts is also compiled elsewhere
    /// on its connection, which would silently bring back a copy of every text parameter.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_send_paths_statements_bind_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let (s, _, _) = two_sends(&dir).await;
        s.run_due(1_700_001_000_000, 64).await.unwrap();
        let (kept, in_place) = s
            .write_mem_on(Route::Global, Facts::Keeps, |c, _| {
                Ok(c.kept_statements().unwrap())
            })
            .await
            .unwrap();
        assert!(kept >= 8, "{kept} statements kept");
        assert_eq!(in_place, kept);
    }

    /// Sends that took the facts a send left, and the customers whose facts are kept: read by
    /// a job that keeps them (any other would forget them first).
    async fn pair_facts(s: &SqlStore) -> (u64, usize) {
        s.write_mem_on(Route::Global, Facts::Keeps, |_, m| {
            Ok((m.pair_facts.taken, m.pair_facts.len()))
        })
        .await
        .unwrap()
    }

    async fn status_of(s: &SqlStore, wamid: String) -> String {
        s.read(move |c| {
            Ok(c.query_row(
                "SELECT status FROM messages WHERE id = ?1",
                params![wamid],
                |r| r.get::<_, String>(0),
            )?)
        })
        .await
        .unwrap()
    }

    /// SQLite keeps each customer's facts as its last send left them: the next send to the
    /// customer reads none of its rows and decides as a read would (the window closes with the
    /// clock); a job that may change them forgets them, so that the send after it sees what
    /// that job changed.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_send_takes_the_facts_its_customers_last_send_left_until_another_job_runs() {
        use crate::Store;
        let dir = tempfile::tempdir().unwrap();
        // the customer writes at T, the business answers at T + 1 s and T + 2 s
        let (s, t, [_, second]) = two_sends(&dir).await;
        const T: Millis = 1_700_000_000_000;
        assert_eq!(
            pair_facts(&s).await,
            (2, 1),
            "the first send took what the customer's message left, the second the first's"
        );
        assert_eq!(status_of(&s, second).await, "sent");

        // 25 hours on, the kept window is closed: the send fails (131047, asynchronously by
        // default) as with the facts read
        let late = text_at(&s, &t, T + 25 * 3_600_000).await.unwrap();
        assert_eq!(status_of(&s, late.wamid).await, "failed");
        assert_eq!(pair_facts(&s).await, (3, 1));

        // the window opened again by the customer: their message takes the facts and puts them
        // back with the window it opened, which the sends after it take
        crate::testkit::in_window_text(&s, &t, T + 26 * 3_600_000).await;
        assert_eq!(pair_facts(&s).await, (5, 1), "the message's and the send's");
        let ok = text_at(&s, &t, T + 26 * 3_600_000 + 2_000).await.unwrap();
        assert_eq!(status_of(&s, ok.wamid).await, "sent");
        assert_eq!(pair_facts(&s).await, (6, 1));

        // the customer leaves WhatsApp: the next send sees it although its facts were kept
        s.set_user("15550000001", false, T + 26 * 3_600_000 + 3_000)
            .await
            .unwrap();
        assert_eq!(pair_facts(&s).await, (6, 0), "forgotten by the other job");
        let gone = text_at(&s, &t, T + 26 * 3_600_000 + 4_000).await.unwrap();
        assert_eq!(status_of(&s, gone.wamid).await, "failed");
        assert_eq!(pair_facts(&s).await, (6, 1), "read afresh, and kept");

        // the business blocks the customer: the same
        s.set_user("15550000001", true, T + 26 * 3_600_000 + 5_000)
            .await
            .unwrap();
        let (scope, phone) = crate::testkit::number(&s, &t, 0).await;
        let back = text_at(&s, &t, T + 26 * 3_600_000 + 6_000).await.unwrap();
        assert_eq!(status_of(&s, back.wamid).await, "sent");
        s.set_blocked(
            &scope,
            &phone.id,
            vec!["15550000001".into()],
            true,
            T + 26 * 3_600_000 + 7_000,
        )
        .await
        .unwrap();
        let blocked = text_at(&s, &t, T + 26 * 3_600_000 + 8_000).await;
        let sent_anyway =
            matches!(&blocked, Ok(r) if status_of(&s, r.wamid.clone()).await == "sent");
        assert!(
            !sent_anyway,
            "a blocked customer is not sent to: {blocked:?}"
        );
    }

    /// A customer's message keeps its customer's facts, and every other customer's.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_customers_message_keeps_the_customers_facts() {
        let (_dir, s) = crate::sqlite::tests::temp_store();
        crate::testkit::a_customers_message_keeps_the_customers_facts(&s).await;
    }

    /// A send that finds its customer's facts still reads the configuration counter: moved by a
    /// write outside the writer's jobs (an import, another process), every kept fact goes and
    /// the send reads afresh.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn kept_facts_go_when_the_configuration_counter_moved_outside_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        let (s, t, _) = two_sends(&dir).await;
        assert_eq!(pair_facts(&s).await, (2, 1));
        let outside = rusqlite::Connection::open(dir.path().join("t.db")).unwrap();
        outside
            .busy_timeout(std::time::Duration::from_secs(5))
            .unwrap();
        outside
            .execute_batch(
                "BEGIN IMMEDIATE; DELETE FROM windows; \
                 UPDATE config_version SET n = n + 1 WHERE id = 1; COMMIT",
            )
            .unwrap();
        let after = text_at(&s, &t, 1_700_000_003_000).await.unwrap();
        assert_eq!(
            status_of(&s, after.wamid).await,
            "failed",
            "the window is gone: read afresh, the send fails"
        );
        assert_eq!(
            pair_facts(&s).await,
            (2, 0),
            "all forgotten, that send's own entry too"
        );
    }

    /// Consent records are kept with a customer's facts: one written by another process (an
    /// opt-in import) moves the configuration counter, which makes the writer forget them.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn consent_records_written_outside_the_writer_move_the_configuration_counter() {
        let dir = tempfile::tempdir().unwrap();
        let (_s, _t, _) = two_sends(&dir).await;
        let outside = rusqlite::Connection::open(dir.path().join("t.db")).unwrap();
        outside
            .busy_timeout(std::time::Duration::from_secs(5))
            .unwrap();
        let counter = |c: &rusqlite::Connection| -> i64 {
            c.query_row("SELECT n FROM config_version WHERE id = 1", [], |r| {
                r.get(0)
            })
            .unwrap()
        };
        let n = counter(&outside);
        outside
            .execute(
                "INSERT INTO opt_ins (id, seq, business_id, waba_id, wa_id, scope, source, proof, captured_at, recorded_by, created_at) \
                 VALUES ('o1', 1, 'b', 'w', '15550000001', 'all', 'import', 'p', 1, 'import:x', 1)",
                [],
            )
            .unwrap();
        assert_eq!(counter(&outside), n + 1, "an insert moves it");
        outside
            .execute("UPDATE opt_ins SET revoked_at = 2 WHERE id = 'o1'", [])
            .unwrap();
        assert_eq!(counter(&outside), n + 2, "a revocation too");
        outside
            .execute("DELETE FROM opt_ins WHERE id = 'o1'", [])
            .unwrap();
        assert_eq!(counter(&outside), n + 3, "and a deletion");
    }

    /// The jobs that run beside sends all the time keep the facts: the webhook workers'
    /// claims, attempts and purges, and a scheduler's pass with nothing due (deliveries are
    /// decided at the send: no task runs them). A due task forgets them.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn webhook_jobs_keep_the_facts_due_tasks_forget_them() {
        use crate::{ClaimRequest, WebhookStore};
        const T: Millis = 1_700_000_000_000;
        let dir = tempfile::tempdir().unwrap();
        let s = SqlStore::open(
            &dir.path().join("t.db").to_string_lossy(),
            SqliteOptions::default(),
        )
        .unwrap();
        // a task of another kind, due after the deliveries (written before any send)
        s.write(|c| {
            c.execute(
                "INSERT INTO tasks (due_at, kind, subject) VALUES (?1, 'review', 'none@1')",
                params![T + 3_600_000],
            )?;
            Ok(())
        })
        .await
        .unwrap();
        let t = crate::testkit::tenant(&s, "B", &["+1 555 010 0001"]).await;
        // the tenant's first tier evaluation, long due (it comes back in six hours)
        assert_eq!(s.run_due(T - 1, 64).await.unwrap(), 1);
        crate::testkit::in_window_text(&s, &t, T).await;
        text_at(&s, &t, T + 2_000).await.unwrap();
        assert_eq!(pair_facts(&s).await, (2, 1));

        assert_eq!(
            s.run_due(T + 700_000, 64).await.unwrap(),
            0,
            "the deliveries are no tasks"
        );
        let claim = ClaimRequest {
            now: T + 700_000,
            wall_now: T + 700_000,
            lease_ms: 1_000,
            limit: 10,
            per_endpoint: 10,
            in_flight: Default::default(),
        };
        let claimed = s.claim_webhooks(claim).await.unwrap();
        assert!(!claimed.is_empty(), "the tenant's events are pending");
        let e = &claimed[0];
        s.finish_webhook_attempt(crate::testkit::delivered(e, T + 700_000))
            .await
            .unwrap();
        s.purge_webhooks(T, 100).await.unwrap();
        assert_eq!(pair_facts(&s).await, (2, 1), "kept through all of them");
        text_at(&s, &t, T + 800_000).await.unwrap();
        assert_eq!(pair_facts(&s).await, (3, 1), "and taken by the next send");

        assert_eq!(
            s.run_due(T + 3_600_000, 64).await.unwrap(),
            1,
            "the other task"
        );
        assert_eq!(pair_facts(&s).await, (3, 0), "forgotten");
    }

    /// What a send puts back is dropped if everything was forgotten since it began (a violation
    /// it recorded, say); the kept facts are bounded in two generations, oldest dropped first.
    #[test]
    fn pair_facts_are_put_back_only_in_their_generation_and_bounded() {
        let facts = || CustomerFacts {
            window: WindowState::default(),
            on_whatsapp: true,
            blocked: false,
            user_id: None,
            config_version: 1,
            marketing_stopped: false,
            consents: None,
            buckets: (None, None),
        };
        let mut p = PairFacts::default();
        p.kept.max = Some(4);
        let g = p.generation;
        p.clear();
        p.put(g, "b", PairKey::of("p", "w0"), facts());
        assert_eq!(p.len(), 0, "forgotten since the send began: not put back");
        let g = p.generation;
        for w in ["w1", "w2", "w3", "w4", "w5"] {
            p.put(g, "b", PairKey::of("p", w), facts());
        }
        assert!(
            p.take("other", &PairKey::of("p", "w5")).is_none(),
            "another business's send takes nothing"
        );
        assert!(
            p.take("b", &PairKey::of("p", "w5")).is_none(),
            "and the entry is gone with it"
        );
        let left: Vec<&str> = ["w1", "w2", "w3", "w4"]
            .into_iter()
            .filter(|w| p.take("b", &PairKey::of("p", w)).is_some())
            .collect();
        assert_eq!(left, ["w3", "w4"], "w1 and w2 went with their generation");

        // ids that are numbers, as real ones are: kept as numbers, given back whole
        let (b, phone, wa) = ("106540352242920", "106540352242922", "16505551234");
        let f = CustomerFacts {
            window: WindowState {
                last_inbound_at: Some(5),
                referral_at: Some(6),
                fep_until: Some(7),
            },
            on_whatsapp: false,
            blocked: true,
            user_id: Some("US.13491208655302741918".into()),
            config_version: 8,
            marketing_stopped: false,
            consents: Some(vec![Consent {
                scope: ConsentScope::Utility,
                source: "web_form".into(),
                proof: String::new(),
                captured_at: 9,
                revoked_at: Some(10),
                recorded_by: None,
                revoked_reason: Some("keyword:STOP".into()),
            }]),
            buckets: (None, None),
        };
        p.put(g, b, PairKey::of(phone, wa), f.clone());
        assert!(p.take(b, &PairKey::of(phone, "165055512340")).is_none());
        let back = p.take(b, &PairKey::of(phone, wa)).unwrap();
        assert_eq!(back.window, f.window);
        assert_eq!(back.user_id, f.user_id);
        assert_eq!(back.consents, f.consents);
        assert_eq!(
            (
                back.config_version,
                back.on_whatsapp,
                back.blocked,
                back.marketing_stopped
            ),
            (8, false, true, false)
        );
        assert!(p.take(b, &PairKey::of(phone, wa)).is_none(), "taken once");
        p.put(g, b, PairKey::of(phone, wa), f.clone());
        assert!(
            p.take("1065403522429200", &PairKey::of(phone, wa))
                .is_none(),
            "another business (a number too) takes nothing"
        );
        assert!(
            p.take(b, &PairKey::of(phone, wa)).is_none(),
            "and the entry is gone with it"
        );
        assert_eq!(
            std::mem::size_of::<(PairKey, KeptFacts)>(),
            152,
            "as PAIR_FACTS_MAX's memory says"
        );
    }

    /// The writer's running reach count answers as the log read afresh does, for any sequence
    /// of reaches and clocks (forward through the window's edge, and back): one database is
    /// driven with the count kept across steps (now and then forgotten, as after a rollback),
    /// the other read from its log at each step; and, while the clock only went forward, as
    /// counting the log's distinct customers does. The kept order stays bounded by its
    /// customers however often they are reached.
    #[test]
    fn the_kept_reach_count_answers_as_the_log_does() {
        use proptest::prelude::*;
        let open = || {
            let c = rusqlite::Connection::open_in_memory().unwrap();
            crate::sqlite::create_schema(&c).unwrap();
            Conn::Sqlite(c.into())
        };
        let config = ProptestConfig {
            cases: 128,
            ..ProptestConfig::default()
        };
        proptest!(config, |(steps in prop::collection::vec((0usize..6, 0i64..9, any::<bool>(), any::<bool>()), 1..80))| {
            let (kept_db, fresh_db) = (open(), open());
            let mut kept = Memory::default();
            let mut now: Millis = 1_700_000_000_000;
            let mut went_back = false;
            for (customer, hours, back, record) in steps {
                // mostly forward, by up to 8 h (the 24 h window's edge is crossed often), now
                // and then back by 30 h or by minutes; now and then the writer forgets
                match (back, hours) {
                    (true, 0) => {
                        now -= 30 * 3_600_000;
                        went_back = true;
                    }
                    (true, 1) => {
                        now -= 60_000 * customer as i64;
                        went_back |= customer > 0;
                    }
                    (true, 2) => kept.forget_reach(),
                    // the same instant again (the customer's second reach of it)
                    (true, 3) => {}
                    _ => now += hours * 3_600_000 + customer as i64,
                }
                let wa = format!("1555000000{customer}");
                let a = reach(&kept_db, &mut kept, "b", &wa, now).unwrap();
                let mut fresh = Memory::default();
                let b = reach(&fresh_db, &mut fresh, "b", &wa, now).unwrap();
                prop_assert_eq!(a, b, "at {} for {}", now, wa);
                // and as the log says: the customers with a reach since the window's start
                // (a clock that went back leaves reaches "in the future", which the count and
                // this reading of the log take differently: compared while it never did)
                if !went_back {
                    let truth = match &fresh_db {
                        Conn::Sqlite(c) => c
                            .query_row(
                                "SELECT COUNT(DISTINCT wa_id), COUNT(*) FILTER (WHERE wa_id = ?2) > 0 \
                                 FROM reach_log WHERE business_id = 'b' AND at > ?1",
                                rusqlite::params![now - DAY, wa],
                                |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, bool>(1)?)),
                            )
                            .unwrap(),
                        _ => unreachable!(),
                    };
                    prop_assert_eq!(a, truth, "at {} for {}: the log", now, wa);
                }
                if record {
                    record_reach(&kept_db, &mut kept, "b", &wa, now, a.1).unwrap();
                    record_reach(&fresh_db, &mut fresh, "b", &wa, now, b.1).unwrap();
                }
                if let Some(set) = kept.reach.get("b") {
                    prop_assert!(set.order.len() <= 2 * set.last.len() + REACH_ORDER_SLACK + 1);
                    prop_assert!(set.order.iter().zip(set.order.iter().skip(1)).all(|(x, y)| x.0 <= y.0), "in time order");
                }
            }
        });
    }

    /// A business's rows of the reach log found by its blocks (`reach_blocks.rs`) are those a
    /// scan of the whole log finds, for any sequence of reaches of several businesses (times
    /// forward, back and repeated; rows that start a new block; rows taken out by the gateway's
    /// undo; the writer forgetting what it wrote): the running count's build, the messaging
    /// limit's distinct count over any range, and every row within its block's bounds.
    #[test]
    fn a_business_s_reaches_found_by_its_blocks_are_the_log_s() {
        use proptest::prelude::*;
        let config = ProptestConfig {
            cases: 96,
            ..ProptestConfig::default()
        };
        proptest!(config, |(steps in prop::collection::vec(
            (0usize..3, 0usize..8, -4i64..8, 0u8..8, 0i64..40, 0i64..40),
            1..120,
        ))| {
            let c = rusqlite::Connection::open_in_memory().unwrap();
            crate::sqlite::create_schema(&c).unwrap();
            let db = Conn::Sqlite(c.into());
            let mut mem = Memory::default();
            let mut now: Millis = 1_700_000_000_000;
            let mut reached: Vec<(String, String, Millis)> = Vec::new();
            for (business, customer, hours, action, lo, hi) in steps {
                let b = format!("b{business}");
                let wa = format!("1555000000{customer}");
                // by up to 8 h forward or 4 h back (a minute forward when 0)
                now += if hours == 0 { 60_000 } else { hours * 3_600_000 + customer as i64 };
                match action {
                    // the next row starts a block (another business's row ends this one)
                    0 => {
                        let sqlite = db.sqlite().unwrap();
                        let top: i64 = sqlite
                            .query_row("SELECT COALESCE(MAX(rowid), 0) FROM reach_log", [], |r| r.get(0))
                            .unwrap();
                        sqlite
                            .execute(
                                "INSERT INTO reach_log (rowid, business_id, wa_id, at) VALUES (?1, 'other', '1', ?2)",
                                rusqlite::params![top | 4095, now],
                            )
                            .unwrap();
                    }
                    // the gateway's undo of an earlier reach
                    1 if !reached.is_empty() => {
                        let (ub, uw, at) = reached.remove(customer % reached.len());
                        crate::sqlite::reach_blocks::delete_at(&db, &ub, &uw, at).unwrap();
                    }
                    2 => mem.forget_reach(),
                    _ => {}
                }
                record_reach(&db, &mut mem, &b, &wa, now, false).unwrap();
                reached.push((b.clone(), wa.clone(), now));
                let sqlite = db.sqlite().unwrap();
                let uncovered: i64 = sqlite
                    .query_row(
                        "SELECT COUNT(*) FROM reach_log r LEFT JOIN reach_blocks k \
                         ON k.business_id = r.business_id AND k.block = r.rowid >> 12 \
                         WHERE r.business_id <> 'other' \
                         AND (k.block IS NULL OR r.at < k.min_at OR r.at > k.max_at)",
                        [],
                        |r| r.get(0),
                    )
                    .unwrap();
                prop_assert_eq!(uncovered, 0, "every row within its block's bounds");
                // a range around now, in hours, and the window the running count reads
                let (from, to) = (now - lo * 3_600_000, now - lo * 3_600_000 + hi * 3_600_000);
                for q in 0..3 {
                    let q = format!("b{q}");
                    let scan: i64 = sqlite
                        .query_row(
                            "SELECT COUNT(DISTINCT wa_id) FROM reach_log WHERE business_id = ?1 AND at > ?2 AND at <= ?3",
                            rusqlite::params![q, from, to],
                            |r| r.get(0),
                        )
                        .unwrap();
                    let found = super::super::compliance::distinct_reached(&db, &q, from, to).unwrap();
                    prop_assert_eq!(found, scan as u64, "{} in ({}, {}]", q, from, to);
                    let mut log: Vec<(String, Millis)> = sqlite
                        .prepare("SELECT wa_id, MAX(at) FROM reach_log WHERE business_id = ?1 AND at > ?2 GROUP BY wa_id")
                        .unwrap()
                        .query_map(rusqlite::params![q, from], |r| Ok((r.get(0)?, r.get(1)?)))
                        .unwrap()
                        .collect::<Result<_, _>>()
                        .unwrap();
                    log.sort();
                    let set = ReachSet::read(&db, &q, from).unwrap();
                    let mut built: Vec<(String, Millis)> =
                        set.last.iter().map(|(w, t)| (w.to_string(), *t)).collect();
                    built.sort();
                    prop_assert_eq!(built, log, "{} since {}", q, from);
                }
            }
        });
    }

    /// A database from before `reach_blocks` (its log indexed by `reach_business_at`, no blocks)
    /// gets its blocks written, with the bounds of their rows, and the index dropped when it is
    /// opened; its reaches count as before.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_reach_log_without_blocks_gets_them_when_opened() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db").to_string_lossy().into_owned();
        const T: Millis = 1_700_000_000_000;
        let s = SqlStore::open(&path, SqliteOptions::default()).unwrap();
        s.write_fast(|c, m| {
            for i in 0..5_000i64 {
                let b = if i % 3 == 0 { "b1" } else { "b2" };
                record_reach(c, m, b, &format!("1555{}", i % 700), T + i * 1_000, false)?;
            }
            Ok(())
        })
        .await
        .unwrap();
        s.close();
        drop(s);
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch(
            "DELETE FROM reach_blocks; DELETE FROM meta WHERE key = 'reach_blocks'; \
             CREATE INDEX reach_business_at ON reach_log(business_id, at);",
        )
        .unwrap();
        drop(c);
        let s = SqlStore::open(&path, SqliteOptions::default()).unwrap();
        let (index, blocks, counts) = s
            .write_fast(|c, _| {
                let index: i64 = c.query_row(
                    "SELECT COUNT(*) FROM sqlite_master WHERE name = 'reach_business_at'",
                    params![],
                    |r| r.get(0),
                )?;
                let mut st = c.prepare(
                    "SELECT business_id, block, min_at, max_at FROM reach_blocks ORDER BY 1, 2",
                )?;
                let blocks: Vec<(String, i64, Millis, Millis)> = st
                    .query_map(params![], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                    })?
                    .collect::<Result<_, _>>()?;
                let counts = (
                    super::super::compliance::distinct_reached(c, "b1", T - 1, T + 5_000_000)?,
                    super::super::compliance::distinct_reached(
                        c,
                        "b2",
                        T + 4_500_000,
                        T + 5_000_000,
                    )?,
                );
                Ok((index, blocks, counts))
            })
            .await
            .unwrap();
        assert_eq!(index, 0, "the index is dropped");
        // rows 1..=4095 in block 0, 4096..=5000 in block 1; row n is reach n - 1
        assert_eq!(
            blocks,
            [
                ("b1".to_string(), 0, T, T + 4_092_000),
                ("b1".to_string(), 1, T + 4_095_000, T + 4_998_000),
                ("b2".to_string(), 0, T + 1_000, T + 4_094_000),
                ("b2".to_string(), 1, T + 4_096_000, T + 4_999_000),
            ]
        );
        // b1: every third reach, of customers i % 700 with i a multiple of 3: all 700;
        // b2: reaches 4,501..=4,999 not multiples of 3 (333), of as many customers
        assert_eq!(counts, (700, 333));
    }

    /// The writer's running count holds only reaches that committed: a batch that failed after
    /// a send counted its customer leaves the count as the log is (the writer reads it again),
    /// and a committed reach counts from then on, with no read of the log.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_reach_of_a_rolled_back_batch_is_not_counted() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqlStore::open(
            &dir.path().join("t.db").to_string_lossy(),
            SqliteOptions::default(),
        )
        .unwrap();
        const T: Millis = 1_700_000_000_000;
        let r = s
            .write_fast(|c, m| {
                assert_eq!(reach(c, m, "b", "15550001", T)?, (0, false));
                record_reach(c, m, "b", "15550001", T, false)?;
                assert_eq!(
                    reach(c, m, "b", "15550001", T)?,
                    (1, true),
                    "counted in the job"
                );
                Err::<(), _>(StoreError::Internal("boom".into()))
            })
            .await;
        assert!(matches!(r, Err(StoreError::Internal(_))));
        let after = s
            .write_fast(|c, m| reach(c, m, "b", "15550001", T + 1))
            .await;
        assert_eq!(after.unwrap(), (0, false), "rolled back with its batch");
        s.write_fast(|c, m| {
            reach(c, m, "b", "15550002", T + 2)?;
            record_reach(c, m, "b", "15550002", T + 2, false)
        })
        .await
        .unwrap();
        // the row of `reach_blocks` the failed job wrote went with it, and the writer forgot it:
        // the committed reach's block has its row again, and the log's reach is found
        let found = s
            .write_fast(|c, _| super::super::compliance::distinct_reached(c, "b", T, T + 2))
            .await;
        assert_eq!(found.unwrap(), 1, "found by its block");
        let kept = s
            .write_fast(|c, m| {
                // the log alone would still say so; emptied, only the kept count answers
                c.execute("DELETE FROM reach_log", [])?;
                reach(c, m, "b", "15550002", T + 3)
            })
            .await;
        assert_eq!(kept.unwrap(), (1, true), "kept, not read again");
    }

    /// A customer reached again and again keeps one entry of the order, not one a reach: the
    /// order is compacted when it holds twice its customers (and the slack) and answers as
    /// before.
    #[test]
    fn a_reach_set_compacts_its_order() {
        let mut set = ReachSet::default();
        for i in 0..1_000 {
            set.add(&format!("1555{}", i % 3), 1_000 + i);
        }
        assert_eq!(set.last.len(), 3);
        assert!(
            set.order.len() <= 2 * 3 + REACH_ORDER_SLACK + 1,
            "{}",
            set.order.len()
        );
        set.prune(1_000 + 997);
        assert_eq!(
            set.last.len(),
            2,
            "the customer last reached at 997 left the window"
        );
        set.prune(1_000 + 999);
        assert!(set.last.is_empty());
        assert_eq!(set.removed_to, 1_999);
    }

    /// A message's stored pricing (as the send writes it) reads back as the pricing it was
    /// written from, for every price; text with escapes reads too, and anything else is none.
    #[test]
    fn a_stored_pricing_reads_back() {
        for t in [
            None,
            Some("utility"),
            Some("authentication"),
            Some("marketing"),
        ] {
            for (in_window, in_fep) in [(false, false), (true, false), (false, true)] {
                let p = price(t, in_window, in_fep);
                let stored = serde_json::to_string(&p).unwrap();
                assert_eq!(parse_pricing(&stored), Some(p), "{stored}");
            }
        }
        assert_eq!(
            parse_pricing(r#"{"category":"utilit\u0079","type":"regular","billable":true}"#),
            Some(price(Some("utility"), false, false))
        );
        assert_eq!(parse_pricing(r#"{"category":"utility"}"#), None);
        assert_eq!(parse_pricing("not json"), None);
    }

    /// A bucket one send took a token from at `at`.
    fn taken_at(at: Millis) -> Bucket {
        let mut b = Bucket::full(PAIR_BURST, at);
        b.try_take(at, PAIR_RATE_PER_SEC, PAIR_BURST).unwrap();
        b
    }

    #[test]
    fn pair_buckets_are_walked_once_the_map_doubled_not_on_every_send() {
        let (mut map, mut next, now) = (crate::keys::HashMap::new(), 0, 1_700_000_000_000);
        let mut passes = 0;
        for i in 0..1_000 {
            // as `apply_effects` does: the pass, then the send's own bucket
            passes += usize::from(prune_pair_buckets(&mut map, &mut next, 4, now));
            map.insert(PairKey::of("p", &format!("{i}")), taken_at(now));
        }
        // every bucket is in use: none goes, and the passes come at 4, 8, 16, … 512 buckets
        assert_eq!(map.len(), 1_000);
        assert_eq!(
            passes, 8,
            "a pass walks the map: after the floor, one per doubling"
        );
    }

    #[test]
    fn a_pass_drops_the_refilled_pair_buckets_and_keeps_the_others() {
        let (mut map, mut next, t0) = (crate::keys::HashMap::new(), 0, 1_700_000_000_000);
        for i in 0..3 {
            map.insert(PairKey::of("p", &format!("old{i}")), taken_at(t0));
        }
        // one token back takes 1 / PAIR_RATE_PER_SEC seconds
        let later = t0 + (1_000.0 / PAIR_RATE_PER_SEC) as Millis + 1;
        map.insert(PairKey::of("p", "new"), taken_at(later));
        assert!(
            !prune_pair_buckets(&mut map, &mut next, 5, later),
            "under the floor"
        );
        assert_eq!(map.len(), 4);
        assert!(prune_pair_buckets(&mut map, &mut next, 4, later));
        assert_eq!(map.len(), 1, "the three refilled buckets went");
        assert!(map.contains_key(&PairKey::of("p", "new")));
        assert_eq!(next, 2);
        // the floor still holds off the next pass
        assert!(!prune_pair_buckets(&mut map, &mut next, 4, later));
    }
}
