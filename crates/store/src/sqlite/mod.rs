//! The SQL store ([`SqlStore`]) and its SQLite backend, the default, embedded one.
//!
//! The jobs in this folder (`ops`, `compliance`, `consent`, `templates`, `webhooks`, `read`)
//! are written against [`crate::db::Conn`] and serve the PostgreSQL backend too
//! ([`crate::postgres`]): the writer, the readers and the batching below are the same, only the
//! connection and the transaction's first statement differ, and PostgreSQL runs several writers
//! (one for instance-wide jobs, one per business shard: see [`Route`]).
//!
//! **One writer, group commit.** Every write is a job sent to a single writer thread. The
//! thread takes the first job waiting, opens a transaction, then keeps running jobs for as long
//! as more are queued (up to [`sqlite_batch_cap`]), and commits them all at once: one `fsync` for many
//! concurrent sends. Each job runs inside its own `SAVEPOINT`, so a job that refuses rolls back
//! alone. Callers are answered only after the `COMMIT` returned: an `Ok` means durable. Because
//! jobs run one after another on one connection, a job's reads and the engine's decision cannot
//! interleave with another job's writes: decisions are serializable without locks.
//!
//! **Readers.** Plain reads (GET endpoints) use a small pool of read-only connections; WAL mode
//! lets them run beside the writer and see only committed data.
//!
//! **Settings** (see docs/ARCHITECTURE.md): `journal_mode=WAL` (readers never block the
//! writer), `synchronous=FULL` by default (a committed batch survives power loss; `NORMAL` is a
//! setting for those who accept losing the last batches on power loss but never on a crash),
//! `busy_timeout=5000`, `foreign_keys=OFF` (integrity is kept by the single writer's code),
//! a 32 MiB page cache, `temp_store=MEMORY`, the query planner's stability guarantee (cached
//! statements stay compiled), and WAL checkpoints off the writer (`checkpointer`, `WalCatchUp`).

pub(crate) mod chains;
mod compliance;
mod consent;
mod gateway;
pub(crate) mod ops;
pub(crate) mod reach_blocks;
pub(crate) mod read;
mod templates;

pub(crate) mod webhooks;

use crate::db::Conn;
use crate::keys::HashMap;
use crate::{StoreError, StoreResult};
use rusqlite::Connection;
use std::cell::Cell;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};

/// Most jobs committed in one transaction on PostgreSQL (each business shard has a writer).
pub const MAX_BATCH: usize = 512;

/// Jobs a SQLite batch may always take, whose one writer runs every job. Clients wait for
/// their batch's `COMMIT`, so a batch that takes every job waiting holds every waiting client,
/// and when it commits the writer idles until their next requests arrive: at the benchmark's 64
/// connections the writer was idle a quarter of the time with a cap of 512. A cap of 16 answers
/// a batch while the next one runs: the writer was busy 78 % of the time instead of 63 %, and
/// sends rose ~11 % (docs/BENCHMARKS.md, twelfth round). Once a message wrote fewer rows
/// (fifteenth round) 32 did better: ~9 % fewer bytes written per message (presumably a batch's
/// per-business pages, such as the outbox's, shared by more sends) and ~20 % more template
/// sends. A batch takes more only when many more are waiting ([`sqlite_batch_cap`]).
pub const SQLITE_BATCH: usize = 32;

/// Most jobs committed in one SQLite transaction: with many jobs waiting a batch may take up to
/// this many, half of those waiting ([`sqlite_batch_cap`]).
pub const SQLITE_MAX_BATCH: usize = 64;

/// How many jobs a SQLite batch may hold, `waiting` jobs being its own so far and those queued:
/// half of them, so that as many are left for the next batch, which the writer runs while this
/// one's clients wait for its `fsync` (at 64 connections a fixed cap of 64 took nearly every
/// request in flight, and templates fell ~13 %); at least [`SQLITE_BATCH`]; at most
/// [`SQLITE_MAX_BATCH`]. At 256 connections, ~200 jobs waiting, batches of 64 instead of 32
/// wrote ~15 % fewer bytes per template and the writer needed ~10 % less CPU for one: ~13 % more
/// templates (docs/BENCHMARKS.md, thirty-first round).
pub(crate) fn sqlite_batch_cap(waiting: usize) -> usize {
    (waiting / 2).clamp(SQLITE_BATCH, SQLITE_MAX_BATCH)
}

pub(crate) const SCHEMA: &str = include_str!("schema.sql");

type Finisher = Box<dyn FnOnce(Result<(), String>) + Send>;
/// A job gets the writer inside an open transaction, or the reason there is none (then it
/// must answer an error without running: nothing may be written outside a batch).
type JobFn = Box<dyn FnOnce(Result<&mut Writer, String>) -> Finisher + Send>;

/// A job, and what it does to the facts sends read of their customers (the writer reads those
/// of the sends queued together at once, on PostgreSQL: see [`ops::prefetch_facts`]).
struct Job {
    facts: Facts,
    run: JobFn,
    /// When its caller is answered (see [`Answer`]).
    answer: Answer,
    /// Put back once already, from a batch another job made fail (see `writer_loop`).
    requeued: bool,
}

/// When a job's caller is answered under `synchronous=FULL`, where answers otherwise wait for
/// the WAL's `fsync` after the `COMMIT` (elsewhere every caller is answered at the `COMMIT`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Answer {
    /// After the `fsync`: an `Ok` means durable (every job but those below).
    Durable,
    /// At the `COMMIT`: the writes are visible to every later job, and lost only with the
    /// operating system (a power cut) before the next `fsync`, which every later durable job
    /// waits for. Only for a job whose caller does nothing outside the database that depends
    /// on it, and whose loss the system repairs by itself: a webhook attempt's record (lost,
    /// the event is delivered again once its lease ends: at-least-once).
    AtCommit,
}

impl Job {
    /// Answers the job's caller with `msg` without running it.
    fn fail(self, msg: &str) {
        (self.run)(Err(msg.to_string()))(Err(msg.to_string()));
    }
}

/// What a job does to the facts a send reads of its customer: those read ahead for a round of
/// sends ([`ops::Prefetched`], PostgreSQL) and those sends left ([`ops::PairFacts`], SQLite).
pub(crate) enum Facts {
    /// PostgreSQL: it reads this customer's first, changes only theirs and puts back what it
    /// leaves (a send, a customer's message): read ahead with its round's.
    Customer(ops::CustomerKey),
    /// It changes none of them (deliveries: messages, statuses, events, tasks, and a customer's
    /// user id, which is derived: the same whoever writes it; the webhook workers' claims,
    /// attempts and purges: the outbox). A job that keeps them in part forgets them
    /// ([`Memory::forget_facts`]) before the part that may change them, as SQLite's scheduler
    /// job does before any task but a delivery, or forgets those it changes (a keyword in a
    /// customer's message changes their consents: all of them go).
    Keeps,
    /// A send on SQLite: it changes its own customer's, and takes them from and puts them back
    /// into [`ops::PairFacts`] itself; it changes no other customer's.
    OwnOnly,
    /// It may change any of them.
    May,
}

/// Opens a new connection (PostgreSQL: after a failure, the writer and readers reconnect).
pub(crate) type Connector = Arc<dyn Fn() -> StoreResult<Conn> + Send + Sync>;

/// What differs between backends around the shared jobs.
#[derive(Clone)]
pub(crate) struct Backend {
    /// Opens a batch's transaction, one per writer thread: SQLite has one writer; PostgreSQL
    /// has the instance-wide writer first, then one per business shard (see [`Route`]).
    pub begins: Vec<String>,
    /// `Some` when connections can be lost and must be re-opened (PostgreSQL).
    pub connector: Option<Connector>,
}

/// What the writer thread owns: its connection, and state kept in memory because it changes
/// on every send (on SQLite pacing token buckets need no durability: they refill within
/// seconds; on PostgreSQL memory holds a batch's own until its `COMMIT`).
pub(crate) struct Writer {
    pub conn: Conn,
    pub mem: Memory,
    /// A job without a savepoint failed after it may have written: the batch must roll back.
    pub poisoned: bool,
}

/// The writer's in-memory state. Pacing buckets: on SQLite, all of them; on PostgreSQL, where
/// several nodes share the `pacing_buckets` table, those the current batch changed, written
/// before its `COMMIT` and forgotten after it (see `ops.rs`).
#[derive(Default)]
pub(crate) struct Memory {
    /// Throughput bucket per business number.
    pub number_buckets: HashMap<String, greenlight_domain::policy::pacing::Bucket>,
    /// Pair-rate bucket per (number, customer).
    pub pair_buckets: HashMap<crate::keys::PairKey, greenlight_domain::policy::pacing::Bucket>,
    /// SQLite: how many pair buckets the next pass that drops refilled ones waits for.
    pub pair_buckets_prune_at: usize,
    /// Configuration the send path reads on every message; see [`Memory::config`].
    config: ConfigCache,
    /// `config_version` was read in the current job (reset before each job, but for a send
    /// after a send, see [`Memory::config_held`]).
    config_checked: bool,
    /// SQLite: only sends that changed no configuration ran since the counter was read, in this
    /// batch (see [`Memory::next_job`]).
    config_held: bool,
    /// PostgreSQL: the facts of the customers of sends queued together, read at once.
    pub facts: ops::Prefetched,
    /// Each customer's facts as the last send to it left them ([`ops::PairFacts`]): SQLite's
    /// writer, and a PostgreSQL shard's writer while no other batch wrote its shard since its
    /// own last (see [`Memory::begun`]).
    pub pair_facts: ops::PairFacts,
    /// PostgreSQL, a shard's writer: the numbers' pacing buckets as its committed batches left
    /// them, kept with [`Memory::pair_facts`] and forgotten with them (each kept customer's
    /// facts carry its pair's bucket).
    pub kept_number_buckets: HashMap<String, greenlight_domain::policy::pacing::Bucket>,
    /// PostgreSQL, a shard's writer: the configuration counter as this batch's `BEGIN` read it,
    /// while the customers' facts the writer kept may be used (`None` after a job forgot them).
    pub batch_config: Option<i64>,
    /// PostgreSQL, a shard's writer: its shard's counter of batches as this batch's `BEGIN` left
    /// it, and as the writer's last committed batch left it.
    epoch: Option<i64>,
    last_epoch: Option<i64>,
    /// SQLite: the customers each business reached in the moving 24 h ([`ops::ReachSet`]):
    /// `reach_log` read forward, forgotten only when a job took rows out of the log or the
    /// writer rolled back ([`Memory::forget_reach`]).
    pub reach: HashMap<String, ops::ReachSet>,
    /// SQLite: what the rows of `reach_blocks` this writer wrote cover
    /// ([`reach_blocks::note`]), forgotten with [`Memory::forget_reach`].
    pub reach_blocks: reach_blocks::Known,
    /// Batches this writer has ended (committed or rolled back): which batch a job ran in.
    pub batches: u64,
    /// SQLite: threads and numbers as chains of messages (`chains.rs`).
    pub chains: Option<chains::Chains>,
    /// SQLite: the newest block of outbox ids each business is known to have a row of
    /// `outbox_blocks` for ([`webhooks::note_block`]).
    pub outbox_blocks: webhooks::KnownBlocks,
    /// SQLite: where the purge's walk over the outbox goes on (`webhooks::purgeable`).
    pub purge_resume: i64,
}

type Buckets = (
    HashMap<String, greenlight_domain::policy::pacing::Bucket>,
    HashMap<crate::keys::PairKey, greenlight_domain::policy::pacing::Bucket>,
);

/// What the send path reads on every message but rarely changes: a tenant's settings, its
/// numbers, where its webhook events go. Valid while the `config_version` counter (bumped by
/// triggers on every table these come from, in the writing transaction) keeps the value it had
/// when the cache was filled.
#[derive(Default)]
pub(crate) struct ConfigCache {
    version: Option<i64>,
    pub settings: HashMap<String, Arc<crate::TenantSettings>>,
    /// (business, number id) → the number, `None` if it is not the business's.
    pub phones: HashMap<(String, String), Option<Arc<crate::PhoneNumber>>>,
    /// (business, WABA, number) → where its events go, or why nowhere.
    pub targets: HashMap<webhooks::TargetKey, webhooks::Target>,
    /// business → its messaging limit tier, whether it is disabled, and its restrictions
    /// (expired ones included: the reader filters by time).
    pub enforcement: HashMap<String, Arc<compliance::Enforcement>>,
    /// (WABA, name, `Some(language)`) → the live template a send with that name and language
    /// resolves to, as the engine reads it and parsed (names without one are not kept).
    pub templates: HashMap<(String, String, Option<String>), Arc<ops::CachedTemplate>>,
}

impl Memory {
    /// The configuration cache, emptied first if `config_version` moved since it was filled.
    /// The counter is read once per job (one primary-key read; a round trip on PostgreSQL), at
    /// the job's first use of the cache, or once for a run of SQLite sends
    /// ([`Memory::next_job`]): a job that changes configuration must not read the cache
    /// afterwards without [`Memory::recheck_config`].
    pub(crate) fn config(&mut self, conn: &Conn) -> StoreResult<&mut ConfigCache> {
        if !self.config_checked {
            let n: i64 = conn.query_row_static(
                "SELECT n FROM config_version WHERE id = 1",
                crate::params![],
                |r| r.get(0),
            )?;
            self.saw_config_version(n);
        }
        Ok(&mut self.config)
    }

    /// The configuration counter as this job reads it (read now if the job has not yet).
    pub(crate) fn config_version(&mut self, conn: &Conn) -> StoreResult<Option<i64>> {
        Ok(self.config(conn)?.version)
    }

    /// The counter as another statement of the job read it, with other things (which saves
    /// [`Memory::config`] its own read). Ignored if the job checked already.
    pub(crate) fn saw_config_version(&mut self, n: i64) {
        if self.config_checked {
            return;
        }
        if self.config.version != Some(n) {
            self.config = ConfigCache {
                version: Some(n),
                ..ConfigCache::default()
            };
        }
        self.config_checked = true;
    }

    /// Makes the next [`Memory::config`] read the counter again (after a write that may have
    /// changed configuration, within one job).
    pub(crate) fn recheck_config(&mut self) {
        self.config_checked = false;
    }

    /// Before a job: makes it read the configuration counter again, unless it is a SQLite send
    /// (`send`) and only such sends ran since the counter was read in this batch, none of them
    /// changing configuration. Nobody else writes during a SQLite batch (its transaction holds
    /// the write lock from `BEGIN IMMEDIATE`), and a send changes configuration only when it
    /// records a violation (restrictions), after which it forgets the customers' facts, which
    /// [`Memory::after_job`] sees. So a run of sends reads the counter once; every other job,
    /// and a send after one, reads it as before. Saves a send ~1.5 % of the writer's work
    /// (docs/BENCHMARKS.md, thirty-third round).
    pub(crate) fn next_job(&mut self, send: bool) {
        if !(send && self.config_held) {
            self.recheck_config();
        }
        self.config_held = false;
    }

    /// After a job that [`Memory::next_job`] began: whether the counter it read still holds for
    /// the next send (`send`: it was a SQLite send, which succeeded or refused before writing;
    /// `generation`: [`ops::PairFacts`]' generation when it began, which moves when the writer
    /// forgets every customer's facts, as a violation makes it).
    pub(crate) fn after_job(&mut self, send: bool, ok: bool, generation: u64) {
        self.config_held =
            send && ok && self.config_checked && self.pair_facts.generation() == generation;
    }

    /// Drops the configuration cache (after a rolled-back batch: what it read may be undone).
    fn forget_config(&mut self) {
        self.config = ConfigCache::default();
    }

    /// Drops every customer's facts the writer holds: the round's (PostgreSQL) and those sends
    /// left (SQLite). Before a job that may change them, after a send that recorded a
    /// violation, after a batch that rolled back.
    pub(crate) fn forget_facts(&mut self) {
        // whatever made the writer forget may have changed configuration, or undone its own
        // writes (a rolled-back job or batch): the next send reads the counter again
        self.config_held = false;
        self.facts.clear();
        self.forget_kept();
        // a block's row written by a job that rolled back is gone with it
        self.outbox_blocks.clear();
    }

    /// Drops the customers' facts kept from earlier sends and, on PostgreSQL, the numbers'
    /// buckets kept with them; the rest of the batch keeps none.
    fn forget_kept(&mut self) {
        self.pair_facts.clear();
        self.kept_number_buckets.clear();
        self.batch_config = None;
    }

    /// PostgreSQL, a shard's writer, after its `BEGIN` ([`crate::postgres::shard_begin`]),
    /// with the row it answered: the shard's counter of batches, which this batch just moved,
    /// and the configuration counter. A counter one past what this writer's last committed batch
    /// left means that no other batch wrote the shard in between — no other node's batch of
    /// this shard, no instance-wide batch that may change customers' facts, no import — so what
    /// the writer kept of its customers and numbers is still what the database holds, and this
    /// batch's sends may use it, as SQLite's sends do. Otherwise all of it goes. Either way, sends
    /// put back what they leave ([`ops::PairFacts`]).
    pub(crate) fn begun(&mut self, row: Option<&[Option<String>]>) {
        let counters = match row {
            Some([Some(n), Some(config)]) => n.parse::<i64>().ok().zip(config.parse::<i64>().ok()),
            _ => None,
        };
        if counters.is_none()
            || self
                .last_epoch
                .zip(counters)
                .is_none_or(|(last, (n, _))| n != last + 1)
        {
            self.forget_kept();
        }
        self.epoch = counters.map(|(n, _)| n);
        self.batch_config = counters.map(|(_, config)| config);
    }

    /// Drops every business's [`ops::ReachSet`] and what the writer knows of `reach_blocks`:
    /// writes were rolled back, `reach_log`'s among them perhaps (the sets are the log read
    /// forward; they are read from it again).
    pub(crate) fn forget_reach(&mut self) {
        self.reach.clear();
        // and the rows of `reach_blocks` a rolled-back job wrote are gone
        self.reach_blocks.clear();
    }

    /// PostgreSQL: the buckets the batch changed so far, to restore if a job's savepoint rolls
    /// back (on SQLite a rolled-back job's tokens stay taken, as they always have).
    fn batch_buckets(&self) -> Buckets {
        (self.number_buckets.clone(), self.pair_buckets.clone())
    }

    /// After a batch committed (`committed`) or rolled back. On PostgreSQL the buckets in
    /// memory are the batch's own (written before `COMMIT`, or undone with it): they go, the
    /// numbers' into [`Memory::kept_number_buckets`] if the batch committed and kept its
    /// customers' facts (a shard's writer, see [`Memory::begun`]).
    fn end_batch(&mut self, pg: bool, committed: bool) {
        self.batches += 1;
        // between batches other connections may write
        self.config_held = false;
        self.facts.clear();
        if pg {
            if committed && self.batch_config.is_some() {
                self.kept_number_buckets.extend(self.number_buckets.drain());
                if self.kept_number_buckets.len() > KEPT_NUMBERS_MAX {
                    self.forget_kept();
                }
            } else {
                self.forget_kept();
            }
            self.number_buckets.clear();
            self.pair_buckets.clear();
            self.last_epoch = if committed { self.epoch } else { None };
            self.epoch = None;
            self.batch_config = None;
        }
    }
}

#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// `FULL` (default) or `NORMAL`.
    pub synchronous: String,
    pub readers: usize,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            synchronous: "FULL".into(),
            readers: 4,
        }
    }
}

/// Which writer runs a job.
#[derive(Clone, Copy)]
pub(crate) enum Route<'a> {
    /// The instance-wide writer, whose batches exclude every other batch: any job may go here.
    Global,
    /// A job that writes only rows of this business portfolio (and reads nothing another
    /// business's job writes): on PostgreSQL it runs on its shard's writer, whose batches run
    /// beside other shards' (see [`crate::postgres`]); on SQLite on the one writer.
    Business(&'a str),
    /// The writer of this shard, whatever business (for checks that every writer works).
    Shard(usize),
}

/// The SQL store: writer threads that group-commit jobs (one on SQLite; on PostgreSQL one for
/// instance-wide jobs and one per business shard), and a pool of readers, over SQLite or
/// PostgreSQL ([`crate::postgres`]). The jobs are the same for both.
pub struct SqlStore {
    /// One sender per writer, in the order of [`Backend::begins`].
    writers: Mutex<Option<Vec<mpsc::Sender<Job>>>>,
    readers: Arc<Vec<Mutex<Option<Conn>>>>,
    next_reader: AtomicUsize,
    writer_threads: Mutex<Vec<std::thread::JoinHandle<()>>>,
    /// Ends after the writer (which holds its channel), once every batch is answered.
    syncer_thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// The syncer's fsyncs of the WAL so far (read by the tests).
    #[cfg_attr(not(test), allow(dead_code))]
    wal_syncs: Arc<AtomicU64>,
    /// Tests: held to keep the syncer from its next fsync (see [`SyncGate`]).
    #[cfg(test)]
    sync_gate: SyncGate,
    backend: Backend,
    /// Writers besides the instance-wide one (PostgreSQL's business shards; 0 on SQLite).
    shards: usize,
    /// When the scheduler last dropped refilled pacing buckets (PostgreSQL), virtual ms.
    pub(crate) pacing_purged_at: AtomicI64,
    /// SQLite: the chains' heads the writer committed, for readers.
    pub(crate) chains: Option<chains::Shared>,
}

/// The SQLite store (the default backend).
pub type SqliteStore = SqlStore;

/// `sqlite://path`, `sqlite:path` or a bare path → the file path.
pub fn path_from_url(url: &str) -> Option<String> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let rest = rest.split('?').next().unwrap_or(rest);
    if rest.is_empty() {
        None
    } else {
        Some(rest.to_string())
    }
}

/// SQLite's page cache of the writer and the checkpointer, in KiB, once the database is past
/// [`pending_byte_page`] (see [`CacheSize`]). 64 MiB filled to ~30 MB more RSS with a million
/// messages stored than this, and sent no faster past 1 GiB (docs/BENCHMARKS.md, twenty-second
/// round): what a send touches is the tables' and indexes' newest pages and its customers' rows.
const CACHE_KIB: i64 = 32_768;
/// ... and while it is smaller.
const SMALL_CACHE_KIB: i64 = 8_192;

fn configure(conn: &Connection, synchronous: &str) -> rusqlite::Result<()> {
    conn.busy_timeout(std::time::Duration::from_millis(5000))?;
    conn.execute_batch(&format!(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous={synchronous}; PRAGMA foreign_keys=OFF; \
         PRAGMA temp_store=MEMORY; PRAGMA cache_size=-{CACHE_KIB};"
    ))?;
    conn.set_prepared_statement_cache_capacity(128);
    stable_plans(conn)
}

/// Keeps cached statements compiled. Without it SQLite (3.50.2, the one built in) compiles
/// again, at its next step, a statement whose `LIMIT ?` was bound, whatever the value: the
/// limit's value may change the plan. The claim of webhook events and the scheduler's due
/// tasks are such statements, run many times a second; their plans are the same either way.
fn stable_plans(conn: &Connection) -> rusqlite::Result<()> {
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )?;
    Ok(())
}

pub(crate) fn internal(e: impl std::fmt::Display) -> StoreError {
    StoreError::Internal(e.to_string())
}

fn map_sqlite(e: rusqlite::Error) -> StoreError {
    use rusqlite::ErrorCode::*;
    match e.sqlite_error_code() {
        Some(DatabaseBusy | DatabaseLocked | CannotOpen | DiskFull | SystemIoFailure) => {
            StoreError::Unavailable(e.to_string())
        }
        _ => StoreError::Internal(e.to_string()),
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        map_sqlite(e)
    }
}

fn message(e: crate::db::Error) -> String {
    StoreError::from(e).to_string()
}

/// A database created before the messages had their `sent_at` and `delivered_at` columns
/// (`schema.sql`) gets them, null: its messages' statuses stay the rows they are; and their
/// links' columns `pair_prev` and `number_prev`, null until [`chains::ensure`] fills them.
/// Each column is looked for and added on its own, so an upgrade cut short between two
/// completes at the next start. Part of [`create_schema`].
fn add_message_columns(c: &Connection) -> StoreResult<()> {
    for column in ["sent_at", "delivered_at", "pair_prev", "number_prev"] {
        let has: bool = c.query_row(
            "SELECT COUNT(*) > 0 FROM pragma_table_info('messages') WHERE name = ?1",
            [column],
            |r| r.get(0),
        )?;
        if !has {
            c.execute_batch(&format!("ALTER TABLE messages ADD COLUMN {column} INTEGER"))?;
        }
    }
    Ok(())
}

/// Creates what [`SCHEMA`] lists that the database lacks, and upgrades an older database
/// ([`add_message_columns`], [`webhooks::write_blocks`], [`reach_blocks::write`],
/// [`chains::ensure`]). Every opener runs it: the server and `greenlight import`.
pub(crate) fn create_schema(c: &Connection) -> StoreResult<()> {
    c.execute_batch(SCHEMA)?;
    add_message_columns(c)?;
    webhooks::write_blocks(c)?;
    reach_blocks::write(c)?;
    chains::ensure(c)
}

/// A database whose outbox's events have no blocks yet ([`webhooks::write_blocks`]), or whose
/// reach log has none ([`reach_blocks::write`]), gets its schema upgraded on a connection of its
/// own before the writer's opens it: building `outbox_listed` over a large outbox, or dropping
/// `reach_business_at` from a large log, is one transaction, which the writer's connection
/// (`greenlight_walbuf`) would hold in memory whole, where SQLite's own spills to the log.
fn upgrade_indexes(path: &str) -> StoreResult<()> {
    if !std::path::Path::new(path).exists() {
        return Ok(());
    }
    let c = Connection::open(path)
        .map_err(|e| StoreError::Unavailable(format!("cannot open {path}: {e}")))?;
    c.busy_timeout(std::time::Duration::from_millis(5000))?;
    let outbox = has_table(&c, "outbox")? && !webhooks::blocks_written(&c)?;
    let reach = has_table(&c, "reach_log")? && !reach_blocks::written(&c)?;
    if outbox || reach {
        tracing::info!(outbox, reach, "upgrading the indexes (once)");
        create_schema(&c)?;
    }
    Ok(())
}

fn has_table(c: &Connection, name: &str) -> StoreResult<bool> {
    Ok(c.query_row(
        "SELECT COUNT(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = ?1",
        [name],
        |r| r.get(0),
    )?)
}

/// Whether the one-time upgrade `table` (named for the table it fills) is recorded in `meta`:
/// a database without `meta` or without the table has not had it.
fn upgraded(c: &Connection, table: &str) -> StoreResult<bool> {
    Ok(has_table(c, "meta")?
        && has_table(c, table)?
        && c.query_row(
            "SELECT COUNT(*) > 0 FROM meta WHERE key = ?1",
            [table],
            |r| r.get(0),
        )?)
}

/// Unless [`upgraded`], fills `table` (`fill`), runs `then` and records the upgrade in `meta`,
/// in one transaction: a start cut short does it again. On a new database it only records it.
fn upgrade_once(
    c: &Connection,
    table: &str,
    fill: fn(&Connection) -> StoreResult<()>,
    then: &str,
) -> StoreResult<()> {
    if upgraded(c, table)? {
        return Ok(());
    }
    c.execute_batch("BEGIN IMMEDIATE")?;
    let done = fill(c).and_then(|()| {
        c.execute_batch(then)?;
        c.execute("INSERT INTO meta (key, value) VALUES (?1, '1')", [table])?;
        Ok(c.execute_batch("COMMIT")?)
    });
    if done.is_err() {
        let _ = c.execute_batch("ROLLBACK");
    }
    done
}

impl SqlStore {
    pub fn open(path: &str, opts: SqliteOptions) -> StoreResult<Self> {
        if let Some(parent) = std::path::Path::new(path).parent() {
            if !parent.as_os_str().is_empty() {
                std::fs::create_dir_all(parent).map_err(|e| {
                    StoreError::Unavailable(format!("cannot create {}: {e}", parent.display()))
                })?;
            }
        }
        upgrade_indexes(path)?;
        // The writer's WAL is written a commit at a time (see `greenlight_walbuf`); the other
        // connections only read it.
        let writer = greenlight_walbuf::open(path).map_err(StoreError::Unavailable)?;
        configure(&writer, &opts.synchronous)?;
        create_schema(&writer)?;
        CacheSize::default().check(&writer);
        // `FULL`: SQLite would fsync the WAL inside every COMMIT, with the writer waiting. The
        // writer commits as `NORMAL` instead (the frames reach the WAL file, not the disk) and
        // hands the batch to the syncer thread, which fsyncs the WAL and only then answers the
        // batch's callers; the writer runs the next batch meanwhile (see `syncer`). Acknowledged
        // batches are as durable as with `FULL`.
        // `NORMAL`: callers are answered at the COMMIT, and the syncer fsyncs the WAL behind
        // them. SQLite itself would leave the log to the kernel until a checkpoint, and writing
        // out a log that had grown dirty stalled commits 20–100 ms (docs/BENCHMARKS.md,
        // twenty-ninth round).
        let full = opts.synchronous.eq_ignore_ascii_case("FULL");
        let wal_file = if full || opts.synchronous.eq_ignore_ascii_case("NORMAL") {
            match std::fs::File::open(format!("{path}-wal")) {
                Ok(f) if full => {
                    writer.execute_batch("PRAGMA synchronous=NORMAL")?;
                    Some(WalSync::BeforeAnswers(f))
                }
                Ok(f) => Some(WalSync::Behind(f)),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot open the WAL file; SQLite syncs it itself");
                    None
                }
            }
        } else {
            None
        };
        // The writer never checkpoints: a checkpoint copies WAL frames into the database and
        // fsyncs it, which took the writer ~10 % of its time and made the sends queued behind
        // it wait 20 ms. A thread of its own does it instead (see `checkpointer`).
        writer.execute_batch("PRAGMA wal_autocheckpoint=0")?;
        // A WAL that restarts after a burst is cut back to this size.
        writer.execute_batch("PRAGMA journal_size_limit=67108864")?;
        writer.execute(
            "INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', '1')",
            [],
        )?;

        let mut readers = Vec::new();
        for _ in 0..opts.readers.max(1) {
            let r = Connection::open_with_flags(
                path,
                rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
                    | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX
                    | rusqlite::OpenFlags::SQLITE_OPEN_URI,
            )
            .map_err(|e| StoreError::Unavailable(format!("cannot open {path} for reading: {e}")))?;
            r.busy_timeout(std::time::Duration::from_millis(5000))?;
            r.set_prepared_statement_cache_capacity(64);
            stable_plans(&r)?;
            readers.push(Conn::Sqlite(r.into()));
        }
        // Counts the log's frames after each commit, for the writer's catch-up (`WalCatchUp`).
        writer.wal_hook(Some(count_wal_frames));
        // The thread stops when the writer, which holds the only `wake`, is gone.
        let ctl = {
            let conn = Connection::open(path)
                .map_err(|e| StoreError::Unavailable(format!("cannot open {path}: {e}")))?;
            configure(&conn, &opts.synchronous)?;
            conn.execute_batch("PRAGMA wal_autocheckpoint=0")?;
            let (wake, woken) = mpsc::channel::<()>();
            let copied = Arc::new(AtomicI64::new(0));
            let thread_copied = copied.clone();
            let db = std::fs::File::open(path)
                .map_err(|e| tracing::warn!(error = %e, "cannot open the database file to sync it"))
                .ok();
            std::thread::Builder::new()
                .name("sqlite-checkpoint".into())
                .spawn(move || checkpointer(conn, db, woken, &thread_copied))
                .map_err(internal)?;
            WalCtl { copied, wake }
        };
        let chains = chains::Chains::recover(&writer)?;
        Self::start(
            vec![Conn::Sqlite(writer.into())],
            Some(chains),
            readers,
            Backend {
                begins: vec!["BEGIN IMMEDIATE".into()],
                connector: None,
            },
            wal_file,
            Some(ctl),
        )
    }

    /// Starts a writer thread over each of `writers` (one per [`Backend::begins`]), with
    /// `readers`. With `wal_file` (SQLite, one writer), the syncer thread fsyncs the WAL, before
    /// acknowledgements or behind them ([`WalSync`]); with `wal`, the writer keeps SQLite's WAL
    /// bounded (see [`WalCatchUp`]).
    pub(crate) fn start(
        writers: Vec<Conn>,
        mut chains: Option<chains::Chains>,
        readers: Vec<Conn>,
        backend: Backend,
        wal_file: Option<WalSync>,
        mut wal: Option<WalCtl>,
    ) -> StoreResult<Self> {
        if writers.len() != backend.begins.len() || writers.is_empty() {
            return Err(internal(
                "one writer connection per batch opening is needed",
            ));
        }
        let wal_syncs = Arc::new(AtomicU64::new(0));
        let sync_gate = SyncGate::default();
        let (mut syncer, syncer_thread) = match wal_file {
            Some(sync) => {
                let (answers_wait, file) = match sync {
                    WalSync::BeforeAnswers(f) => (true, f),
                    WalSync::Behind(f) => (false, f),
                };
                let (tx, srx) = mpsc::channel::<Vec<Finisher>>();
                let (syncs, gate) = (wal_syncs.clone(), sync_gate.clone());
                let handle = std::thread::Builder::new()
                    .name("sqlite-syncer".into())
                    .spawn(move || syncer(file, srx, &syncs, &gate))
                    .map_err(internal)?;
                (Some(Syncer { tx, answers_wait }), Some(handle))
            }
            None => (None, None),
        };
        let shards = writers.len() - 1;
        let shared_chains = chains.as_ref().map(chains::Chains::shared);
        let mut senders = Vec::with_capacity(writers.len());
        let mut handles = Vec::with_capacity(writers.len());
        for (i, conn) in writers.into_iter().enumerate() {
            let (tx, rx) = mpsc::channel::<Job>();
            let b = backend.clone();
            // the syncer, the WAL's upkeep and the chains belong to SQLite's only writer
            let (syncer, wal, chains) = (syncer.take(), wal.take(), chains.take());
            let name = if i == 0 {
                "store-writer".to_string()
            } else {
                format!("store-writer-{i}")
            };
            let spawned = std::thread::Builder::new().name(name).spawn(move || {
                let mut mem = Memory {
                    chains,
                    ..Memory::default()
                };
                if i > 0 {
                    // a shard's writer keeps its share of the customers' facts
                    mem.pair_facts.share(shards);
                }
                writer_loop(
                    Writer {
                        conn,
                        mem,
                        poisoned: false,
                    },
                    rx,
                    i,
                    b,
                    syncer,
                    wal,
                )
            });
            match spawned {
                Ok(h) => {
                    senders.push(tx);
                    handles.push(h);
                }
                Err(e) => {
                    // stop the writers started so far
                    drop(senders);
                    for h in handles {
                        let _ = h.join();
                    }
                    return Err(internal(e));
                }
            }
        }
        Ok(SqlStore {
            writers: Mutex::new(Some(senders)),
            readers: Arc::new(readers.into_iter().map(|c| Mutex::new(Some(c))).collect()),
            next_reader: AtomicUsize::new(0),
            writer_threads: Mutex::new(handles),
            syncer_thread: Mutex::new(syncer_thread),
            wal_syncs,
            #[cfg(test)]
            sync_gate,
            backend,
            shards,
            pacing_purged_at: AtomicI64::new(i64::MIN),
            chains: shared_chains,
        })
    }

    /// Runs `f` on the writer thread inside a savepoint of the current batch; resolves after the
    /// batch committed. An `Err` from `f` rolls back `f`'s writes only.
    pub(crate) async fn write<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Conn) -> StoreResult<T> + Send + 'static,
    {
        self.write_mem(move |conn, _| f(conn)).await
    }

    /// [`Self::write`] with access to the writer's in-memory state. Change memory only after
    /// the job's writes succeeded: a rolled-back savepoint does not undo it (but for
    /// PostgreSQL's pacing buckets of the batch, which it restores).
    pub(crate) async fn write_mem<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Conn, &mut Memory) -> StoreResult<T> + Send + 'static,
    {
        self.submit(Route::Global, true, Facts::May, Answer::Durable, f)
            .await
    }

    /// Tests: [`Self::write_fast_on`] on the instance-wide writer, as a job that may change the
    /// facts sends read.
    #[cfg(test)]
    pub(crate) async fn write_fast<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Conn, &mut Memory) -> StoreResult<T> + Send + 'static,
    {
        self.submit(Route::Global, false, Facts::May, Answer::Durable, f)
            .await
    }

    /// [`Self::write_mem`] on the writer of `route` (see [`Route`]).
    pub(crate) async fn write_mem_on<T, F>(
        &self,
        route: Route<'_>,
        facts: Facts,
        f: F,
    ) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Conn, &mut Memory) -> StoreResult<T> + Send + 'static,
    {
        self.submit(route, true, facts, Answer::Durable, f).await
    }

    /// Are there business shards, each with a writer of its own (PostgreSQL)?
    pub(crate) fn sharded(&self) -> bool {
        self.shards > 0
    }

    /// The routes to every writer: the instance-wide one, then each shard's.
    pub(crate) fn every_writer(&self) -> impl Iterator<Item = Route<'static>> {
        std::iter::once(Route::Global).chain((0..self.shards).map(Route::Shard))
    }

    /// [`Self::write_mem_on`] without a savepoint, for the hot paths (sends, webhook attempts).
    /// A savepoint makes SQLite copy every page a job touches into a sub-journal; measured, that
    /// was most of a send's cost. The job must keep one rule instead: it returns
    /// `StoreError::Api` only before its first write. Any other error (or a panic) may leave
    /// partial writes, so the whole batch is rolled back: the jobs run in it before answer
    /// "unavailable, nothing committed", the failing one its error, and the jobs queued behind
    /// it wait for the next batch (once; see `writer_loop`).
    pub(crate) async fn write_fast_on<T, F>(
        &self,
        route: Route<'_>,
        facts: Facts,
        f: F,
    ) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Conn, &mut Memory) -> StoreResult<T> + Send + 'static,
    {
        self.submit(route, false, facts, Answer::Durable, f).await
    }

    /// [`Self::write_fast_on`] on the instance-wide writer, its caller answered at the `COMMIT`
    /// ([`Answer::AtCommit`]: only where losing the writes to a power cut is repaired).
    pub(crate) async fn write_fast_at_commit<T, F>(&self, facts: Facts, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Conn, &mut Memory) -> StoreResult<T> + Send + 'static,
    {
        self.submit(Route::Global, false, facts, Answer::AtCommit, f)
            .await
    }

    async fn submit<T, F>(
        &self,
        route: Route<'_>,
        savepoint: bool,
        facts: Facts,
        answer: Answer,
        f: F,
    ) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Conn, &mut Memory) -> StoreResult<T> + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel::<StoreResult<T>>();
        let send = matches!(facts, Facts::OwnOnly);
        let run: JobFn = Box::new(move |w: Result<&mut Writer, String>| -> Finisher {
            let w = match w {
                Ok(w) => w,
                Err(reason) => {
                    return Box::new(move |_| {
                        let _ = tx.send(Err(StoreError::Unavailable(reason)));
                    })
                }
            };
            let conn = &w.conn;
            let undo = (savepoint && conn.is_pg()).then(|| w.mem.batch_buckets());
            let links = w.mem.chains.as_ref().map(chains::Chains::mark);
            if savepoint {
                if let Err(e) = conn.execute_batch("SAVEPOINT job") {
                    let err = StoreError::from(e);
                    return Box::new(move |_| {
                        let _ = tx.send(Err(err));
                    });
                }
            }
            w.mem.next_job(send);
            let generation = w.mem.pair_facts.generation();
            // A bug in one job must not take the writer (and every tenant's writes) down.
            let r = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                f(&w.conn, &mut w.mem)
            })) {
                Ok(r) => r,
                Err(_) => {
                    tracing::error!("a write job panicked; its writes are rolled back");
                    Err(StoreError::Internal("a write job panicked".into()))
                }
            };
            let ok = matches!(r, Ok(_) | Err(StoreError::Api(_)));
            w.mem.after_job(send, ok, generation);
            let conn = &w.conn;
            // A job in a savepoint answers for its own deferred writes (PostgreSQL sends them
            // now, so that one that fails rolls back this job alone). A job without one leaves
            // them to ride with the next statement: if they fail, the batch fails.
            let r = match r {
                Ok(v) if savepoint => conn.flush().map(|()| v).map_err(StoreError::from),
                r => r,
            };
            if !savepoint {
                if !matches!(r, Ok(_) | Err(StoreError::Api(_))) {
                    w.poisoned = true;
                }
                return Box::new(move |commit: Result<(), String>| {
                    let out = match (r, commit) {
                        (Err(e), _) => Err(e),
                        (Ok(_), Err(e)) => Err(StoreError::Unavailable(e)),
                        (Ok(v), Ok(())) => Ok(v),
                    };
                    let _ = tx.send(out);
                });
            }
            match r {
                Ok(v) => {
                    let released = conn.execute_batch("RELEASE job");
                    if released.is_err() {
                        w.poisoned = true;
                    }
                    Box::new(move |commit: Result<(), String>| {
                        let out = match (released, commit) {
                            (Err(e), _) => Err(StoreError::from(e)),
                            (_, Err(e)) => Err(StoreError::Unavailable(e)),
                            (Ok(()), Ok(())) => Ok(v),
                        };
                        let _ = tx.send(out);
                    })
                }
                Err(e) => {
                    if conn.execute_batch("ROLLBACK TO job; RELEASE job").is_err() {
                        w.poisoned = true;
                    }
                    if let Some((number, pair)) = undo {
                        w.mem.number_buckets = number;
                        w.mem.pair_buckets = pair;
                    }
                    // the job's messages are rolled back: nothing of theirs to link
                    // nor anything it read or counted into the writer's per-customer memory (a
                    // running reach count it pruned or counted, say)
                    w.mem.forget_facts();
                    w.mem.forget_reach();
                    if let (Some(c), Some(n)) = (w.mem.chains.as_mut(), links) {
                        c.truncate(n);
                    }
                    Box::new(move |_| {
                        let _ = tx.send(Err(e));
                    })
                }
            }
        });
        {
            let guard = self.writers.lock().map_err(internal)?;
            let senders = guard
                .as_ref()
                .ok_or_else(|| StoreError::Unavailable("store is shutting down".into()))?;
            let i = match route {
                Route::Business(b) if senders.len() > 1 => 1 + crate::postgres::shard_of(b),
                Route::Shard(k) if senders.len() > 1 => 1 + k,
                _ => 0,
            };
            senders
                .get(i)
                .ok_or_else(|| internal("no writer for this shard"))?
                .send(Job {
                    facts,
                    run,
                    answer,
                    requeued: false,
                })
                .map_err(|_| StoreError::Unavailable("the writer thread stopped".into()))?;
        }
        rx.await
            .map_err(|_| StoreError::Unavailable("the writer thread stopped".into()))?
    }

    /// Runs `f` on a reader connection off the async threads. A PostgreSQL reader that lost its
    /// connection is re-opened on its next use.
    pub(crate) async fn read<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Conn) -> StoreResult<T> + Send + 'static,
    {
        let readers = self.readers.clone();
        let connector = self.backend.connector.clone();
        let start = self.next_reader.fetch_add(1, Ordering::Relaxed);
        tokio::task::spawn_blocking(move || {
            let n = readers.len();
            let run = |slot: &mut Option<Conn>| -> StoreResult<T> {
                if let Some(connect) = &connector {
                    if slot
                        .as_ref()
                        .is_none_or(|c| c.pg().is_some_and(|p| p.is_closed()))
                    {
                        *slot = None;
                        *slot = Some(connect()?);
                    }
                }
                let conn = slot
                    .as_ref()
                    .ok_or_else(|| StoreError::Unavailable("no connection".into()))?;
                let r = f(conn);
                if connector.is_some() && matches!(r, Err(StoreError::Unavailable(_))) {
                    *slot = None;
                }
                r
            };
            // take a free connection if there is one, otherwise wait for ours
            for i in 0..n {
                if let Ok(mut slot) = readers[(start + i) % n].try_lock() {
                    return run(&mut slot);
                }
            }
            let mut slot = readers[start % n].lock().map_err(internal)?;
            run(&mut slot)
        })
        .await
        .map_err(internal)?
    }

    /// Stops the writer after the jobs already queued, and returns once every committed batch
    /// was answered; used on shutdown and by tests.
    pub fn close(&self) {
        if let Ok(mut w) = self.writers.lock() {
            w.take();
        }
        if let Ok(mut hs) = self.writer_threads.lock() {
            for h in hs.drain(..) {
                let _ = h.join();
            }
        }
        if let Ok(mut h) = self.syncer_thread.lock() {
            if let Some(h) = h.take() {
                let _ = h.join();
            }
        }
    }
}

impl Drop for SqlStore {
    fn drop(&mut self) {
        if let Ok(mut w) = self.writers.lock() {
            w.take();
        }
    }
}

/// How often the checkpointer copies the WAL into the database, unless woken sooner.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(100);

/// Most passes the checkpointer runs back to back when the writer wakes it.
const WOKEN_PASSES: usize = 3;

/// Copies committed WAL frames into the database file off the writer thread, every
/// [`CHECKPOINT_EVERY`], until the writer (which holds `wake`) is gone. `PASSIVE` never waits for
/// the writer or for readers.
///
/// The writer wakes it when the log is due for a catch-up ([`WalCatchUp`]) and waits for a pass
/// that leaves little to copy: it then runs passes back to back (up to [`WOKEN_PASSES`]) while
/// each still found many frames committed during the one before, each shorter than the last.
fn checkpointer(
    conn: Connection,
    db: Option<std::fs::File>,
    wake: mpsc::Receiver<()>,
    copied: &AtomicI64,
) {
    let mut last = 0;
    loop {
        let passes = match wake.recv_timeout(CHECKPOINT_EVERY) {
            Ok(()) => WOKEN_PASSES,
            Err(mpsc::RecvTimeoutError::Timeout) => 1,
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        };
        for _ in 0..passes {
            if checkpoint_pass(&conn, db.as_ref(), &mut last, copied) <= PASS_CONVERGED_FRAMES {
                break;
            }
        }
    }
}

/// One `PASSIVE` checkpoint of the thread; returns how many frames it copied. `last` is how
/// many frames of the log had been copied after the previous pass. After a pass that found
/// every frame copied it publishes in `copied` how many there were, for the writer.
fn checkpoint_pass(
    conn: &Connection,
    db: Option<&std::fs::File>,
    last: &mut i64,
    copied: &AtomicI64,
) -> i64 {
    match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], checkpoint_row) {
        Ok((0, log, done)) => {
            let mut new = 0;
            if done > 0 && done != *last {
                // fewer than before: the log restarted since
                new = if done >= *last { done - *last } else { done };
                // SQLite syncs the database file only after a pass during which nothing was
                // committed, which under steady writes is never: every page copied would wait
                // for the writer's catch-up to sync them all, with the writer stalled (10 ms
                // and more); synced here, they are off its path.
                if let Some(Err(e)) = db.map(std::fs::File::sync_data) {
                    tracing::warn!(error = %e, "fsync of the database file failed");
                }
                *last = done;
            }
            if log == done {
                copied.store(log, Ordering::Release);
            }
            new
        }
        // busy: the writer is catching up
        Ok(_) => 0,
        Err(e) => {
            tracing::warn!(error = %e, "WAL checkpoint failed; retrying");
            0
        }
    }
}

/// `PRAGMA wal_checkpoint`'s row: (busy, frames in the log, frames copied into the database).
fn checkpoint_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(i64, i64, i64)> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
}

/// Re-opens a lost PostgreSQL connection, at most once per `backoff` (growing to 2 s): while
/// the database is away, jobs are answered "unavailable" at once instead of waiting.
struct Reconnect {
    broken: bool,
    next_try: std::time::Instant,
    backoff: std::time::Duration,
}

impl Reconnect {
    fn ensure(&mut self, w: &mut Writer, backend: &Backend) -> Result<(), String> {
        let Some(connect) = &backend.connector else {
            return Ok(());
        };
        if !self.broken && !w.conn.pg().is_some_and(|p| p.is_closed()) {
            return Ok(());
        }
        let now = std::time::Instant::now();
        if now < self.next_try {
            return Err("the database is unreachable; retry shortly".into());
        }
        match connect() {
            Ok(c) => {
                tracing::info!("database connection re-established");
                w.conn = c;
                w.mem = Memory::default();
                self.broken = false;
                self.backoff = std::time::Duration::from_millis(50);
                Ok(())
            }
            Err(e) => {
                self.backoff = (self.backoff * 2).min(std::time::Duration::from_secs(2));
                self.next_try = now + self.backoff;
                Err(format!("the database is unreachable: {e}"))
            }
        }
    }
}

/// Tests hold its lock to keep the syncer's next fsync, and the answers behind it, from
/// happening; empty in other builds.
#[derive(Clone, Default)]
struct SyncGate(#[cfg(test)] Arc<Mutex<()>>);

impl SyncGate {
    /// Waits while a test holds the gate.
    fn pass(&self) {
        #[cfg(test)]
        drop(self.0.lock());
    }
}

/// How the SQLite writer's WAL reaches the disk, by the syncer thread ([`syncer`]).
pub(crate) enum WalSync {
    /// `FULL`: a batch's callers are answered once the WAL is fsynced after its `COMMIT`.
    BeforeAnswers(std::fs::File),
    /// `NORMAL`: callers are answered at the `COMMIT`; the WAL is fsynced behind them, once for
    /// every batch committed meanwhile, so that the kernel never holds much of it unwritten.
    Behind(std::fs::File),
}

/// The writer's side of the syncer thread.
struct Syncer {
    /// Committed batches' finishers (`NORMAL`: none, a request for an fsync).
    tx: mpsc::Sender<Vec<Finisher>>,
    /// `FULL`: the finishers run after the fsync.
    answers_wait: bool,
}

/// Answers committed batches once their WAL frames are on disk: takes every batch waiting,
/// fsyncs the WAL once for all of them, then runs their finishers in commit order. A batch
/// committed later is later in the log, so one fsync covers all those before it. If the fsync
/// fails the callers are told the outcome is unknown (the data may be visible but not durable)
/// and retry with their Idempotency-Key, as after a failed COMMIT.
fn syncer(
    wal: std::fs::File,
    rx: mpsc::Receiver<Vec<Finisher>>,
    syncs: &AtomicU64,
    gate: &SyncGate,
) {
    while let Ok(first) = rx.recv() {
        let mut batches = vec![first];
        while let Ok(more) = rx.try_recv() {
            batches.push(more);
        }
        gate.pass();
        syncs.fetch_add(1, Ordering::Relaxed);
        let synced = wal.sync_data().map_err(|e| {
            tracing::error!(error = %e, "fsync of the WAL failed");
            format!("the write may not be durable (fsync failed: {e}); retry with the same Idempotency-Key")
        });
        for f in batches.into_iter().flatten() {
            f(synced.clone());
        }
    }
}

/// The loop of writer `index` of [`Backend::begins`] (0: the instance-wide writer; after it, on
/// PostgreSQL, the shards' writers).
fn writer_loop(
    mut w: Writer,
    rx: mpsc::Receiver<Job>,
    index: usize,
    backend: Backend,
    syncer: Option<Syncer>,
    wal: Option<WalCtl>,
) {
    let begin = backend.begins[index].as_str();
    let shard_writer = index > 0;
    let mut wal = WalCatchUp::new(wal, WAL_LIMITS);
    let mut rc = Reconnect {
        broken: false,
        next_try: std::time::Instant::now(),
        backoff: std::time::Duration::from_millis(50),
    };
    // the jobs taken off the channel and not yet run, oldest first
    let mut waiting: VecDeque<Job> = VecDeque::new();
    loop {
        let first = match waiting.pop_front() {
            Some(job) => job,
            None => match rx.recv() {
                Ok(job) => job,
                Err(_) => break,
            },
        };
        // A connection found dead at BEGIN (the database restarted while this node was idle)
        // is re-opened at once, once, before the batch is given up: nothing was sent on it.
        let mut begun = Err(String::new());
        for _ in 0..2 {
            begun = rc.ensure(&mut w, &backend).and_then(|()| {
                w.conn
                    .execute_batch_row(begin)
                    .map(|row| {
                        if shard_writer {
                            w.mem.begun(row.as_deref());
                        }
                    })
                    .map_err(|e| {
                        let msg = message(e);
                        tracing::error!(error = %msg, "cannot begin a write transaction");
                        if backend.connector.is_some() {
                            rc.broken = true;
                            let _ = w.conn.execute_batch("ROLLBACK");
                        }
                        msg
                    })
            });
            if begun.is_ok() || !rc.broken {
                break;
            }
        }
        if let Err(msg) = begun {
            first.fail(&msg);
            if backend.connector.is_some() {
                // the database is away: answer every queued job now rather than one by one
                waiting.extend(rx.try_iter());
                for job in waiting.drain(..) {
                    job.fail(&msg);
                }
            }
            continue;
        }
        let pg = w.conn.is_pg();
        // the instance-wide writer on PostgreSQL moves every shard's counter before its batch's
        // first job that may change customers' facts (see `Memory::begun`)
        let instance_wide_pg = pg && index == 0;
        let mut epochs_moved = false;
        let mut finishers: Vec<Finisher> = Vec::with_capacity(SQLITE_MAX_BATCH);
        // those of the jobs answered at the COMMIT ([`Answer::AtCommit`])
        let mut at_commit: Vec<Finisher> = Vec::new();
        waiting.push_front(first);
        // In rounds: the jobs queued now, then those queued meanwhile, up to the cap.
        let mut round = Vec::new();
        // jobs taken off the channel: enough to size the batch by (past twice SQLite's most,
        // its cap is the most anyway); the rest stays on the channel
        let enough = if pg { MAX_BATCH } else { 2 * SQLITE_MAX_BATCH };
        loop {
            waiting.extend(rx.try_iter().take(enough.saturating_sub(waiting.len())));
            let cap = if pg {
                MAX_BATCH
            } else {
                sqlite_batch_cap(finishers.len() + at_commit.len() + waiting.len())
            };
            let n = cap
                .saturating_sub(finishers.len() + at_commit.len())
                .min(waiting.len());
            if n == 0 {
                break;
            }
            round.extend(waiting.drain(..n));
            if pg && !w.poisoned {
                let sends = round.iter().filter_map(|j| match &j.facts {
                    Facts::Customer(key) => Some(key),
                    _ => None,
                });
                if let Err(e) = ops::prefetch_facts(&w.conn, &mut w.mem, sends) {
                    // the transaction may be aborted: nothing of the batch may commit
                    tracing::error!(error = %message(e), "reading the facts of queued sends failed");
                    w.poisoned = true;
                }
            }
            let mut jobs = round.drain(..);
            while let Some(job) = jobs.next() {
                let was_poisoned = w.poisoned;
                if let Facts::May = job.facts {
                    // it may change what was read for the sends after it
                    w.mem.forget_facts();
                    if instance_wide_pg && !epochs_moved {
                        // and what every shard's writer, on every node, kept of its customers
                        epochs_moved = true;
                        if let Err(e) = w.conn.execute_batch(&crate::postgres::bump_epochs()) {
                            tracing::error!(error = %message(e), "moving the shards' counters failed");
                            w.poisoned = true;
                        }
                    }
                }
                let answer = job.answer;
                let finisher = (job.run)(Ok(&mut w));
                match answer {
                    Answer::Durable => finishers.push(finisher),
                    Answer::AtCommit => at_commit.push(finisher),
                }
                if w.poisoned {
                    // nothing of the batch commits: the sends after read afresh
                    w.mem.forget_facts();
                    w.mem.forget_reach();
                    if !was_poisoned {
                        // this job failed after writing: the jobs not run yet wait for the next
                        // batch rather than fail with this one, once (when every write fails, a
                        // queue still drains in two batches, not one job a batch)
                        for mut job in jobs.by_ref().rev() {
                            if job.requeued {
                                job.fail(POISONED);
                            } else {
                                job.requeued = true;
                                waiting.push_front(job);
                            }
                        }
                        break;
                    }
                }
            }
            if w.poisoned {
                // a batch that cannot commit takes no more jobs
                break;
            }
        }
        let commit = if std::mem::take(&mut w.poisoned) {
            if w.conn.execute_batch("ROLLBACK").is_err() && backend.connector.is_some() {
                rc.broken = true;
            }
            Err(POISONED.to_string())
        } else {
            // An error here (the connection died during COMMIT) leaves the outcome unknown:
            // every job answers "unavailable" and clients retry with their Idempotency-Key.
            // PostgreSQL's pacing buckets of the batch are written with the COMMIT.
            let swept = match w.mem.chains.as_mut() {
                Some(c) => c.before_commit(&w.conn).map_err(|e| e.to_string()),
                None => Ok(()),
            };
            swept.and_then(|()| {
                ops::before_commit(&w.conn, &w.mem)
                    .and_then(|()| w.conn.execute_batch("COMMIT"))
                    .map_err(message)
            })
        };
        w.mem.end_batch(pg, commit.is_ok());
        if let Some(c) = w.mem.chains.as_mut() {
            c.end_batch(commit.is_ok());
        }
        if commit.is_err() {
            // what they hold may be undone
            w.mem.forget_config();
            w.mem.forget_facts();
            w.mem.forget_reach();
        }
        if let Err(e) = &commit {
            tracing::error!(error = %e, jobs = finishers.len() + at_commit.len(), "batch commit failed; rolling back");
            let _ = w.conn.execute_batch("ROLLBACK");
            if backend.connector.is_some() {
                rc.broken = true;
            }
        }
        for f in at_commit {
            f(commit.clone());
        }
        match (&commit, &syncer) {
            (Ok(()), Some(syncer)) if syncer.answers_wait => {
                if let Err(mpsc::SendError(finishers)) = syncer.tx.send(finishers) {
                    let e = "the syncer thread stopped; the outcome is unknown".to_string();
                    for f in finishers {
                        f(Err(e.clone()));
                    }
                }
            }
            _ => {
                for f in finishers {
                    f(commit.clone());
                }
                if let (Ok(()), Some(syncer)) = (&commit, &syncer) {
                    // `NORMAL`: the log's fsync behind the answers, none waiting for it
                    let _ = syncer.tx.send(Vec::new());
                }
            }
        }
        if commit.is_ok() {
            wal.after_commit(&w.conn);
        }
    }
}

/// What the jobs of a batch that cannot commit answer.
const POISONED: &str = "a write in this batch failed; nothing in it was committed, retry";

/// Numbers whose buckets a PostgreSQL shard's writer keeps at most ([`Memory::end_batch`]):
/// past it, it forgets them with its customers' facts and starts again.
const KEPT_NUMBERS_MAX: usize = 100_000;

/// Batches between two checks of the writer's page cache size ([`CacheSize`]).
const CACHE_CHECK_EVERY: u32 = 64;

/// When the writer catches up with the checkpointer thread, in frames of the log (pages).
#[derive(Clone, Copy)]
struct WalLimits {
    /// The log is due for a catch-up past this many frames, once the thread's last pass leaves
    /// little to copy.
    catch_up: i64,
    /// Frames the catch-up may have to copy at most: committed since the thread's last pass.
    tail: i64,
    /// Past this many frames the thread is not keeping up with the commits: the catch-up then
    /// accepts [`WalLimits::long_tail`] frames to copy.
    long_log: i64,
    long_tail: i64,
    /// Frames committed before the writer tries again after a catch-up found the log busy.
    retry: i64,
    /// Past this many frames the writer catches up whatever is left to copy.
    max: i64,
}

/// 32 MiB of log with 4 KiB pages before a catch-up, 128 MiB at most. A catch-up copies at most
/// 1 MiB while the thread keeps up: the sends behind it wait for that copy and its `fsync`, and
/// at half the maximum rate a 4 MiB tail made some of them wait 37–51 ms. Once the log is twice
/// as long the thread is not keeping up, and 4 MiB will do (docs/BENCHMARKS.md, seventeenth
/// round). A catch-up every 32 MiB rather than 16 left the writer ~4 % less CPU per send and the
/// checkpointer ~10 % less, for ~0.5 ms more at the half-rate p99 (twenty-sixth round).
const WAL_LIMITS: WalLimits = WalLimits {
    catch_up: 8192,
    tail: 256,
    long_log: 16_384,
    long_tail: 1024,
    retry: 256,
    max: 32_768,
};

/// A pass of the thread that copied at most this many frames leaves the writer little to copy.
const PASS_CONVERGED_FRAMES: i64 = 256;

thread_local! {
    /// Frames in the WAL after the last commit of the writer on this thread (SQLite's WAL hook).
    static WAL_FRAMES: Cell<i64> = const { Cell::new(0) };
}

fn count_wal_frames(_: &rusqlite::hooks::Wal, frames: std::ffi::c_int) -> rusqlite::Result<()> {
    WAL_FRAMES.with(|f| f.set(frames.into()));
    Ok(())
}

/// What the writer shares with SQLite's checkpointer thread.
pub(crate) struct WalCtl {
    /// Frames of the log the thread found all copied at the end of its last pass.
    copied: Arc<AtomicI64>,
    /// Asks the thread for a pass now.
    wake: mpsc::Sender<()>,
}

/// Keeps SQLite's WAL from growing without end, without stalling the writer long.
///
/// The checkpointer thread copies frames into the database in the background, but under a
/// steady stream of commits it never finds the log fully copied, and SQLite restarts the log
/// only then (measured: a 19 GB WAL after a million sends). So once the log holds
/// [`WalLimits::catch_up`] frames, the writer runs a `PASSIVE` checkpoint itself between two
/// batches (no commit can land meanwhile), and the next batch starts the log from its
/// beginning (cut back to `journal_size_limit`). That checkpoint copies what the thread has not
/// and syncs the database file, and the batches behind it wait: it used to run every 64
/// batches whatever was left to copy, and took 11 ms at the median and up to 60 ms. Now the
/// writer wakes the thread and waits for a pass of the thread that leaves at most
/// [`WalLimits::tail`] frames to copy (those committed during that pass), or for the log to
/// reach [`WalLimits::max`]. A no-op on PostgreSQL.
struct WalCatchUp {
    ctl: Option<WalCtl>,
    limits: WalLimits,
    /// Frames after the previous commit: fewer now means the log restarted.
    frames: i64,
    /// The thread was woken for this log.
    woken: bool,
    /// No catch-up before the log holds this many frames.
    next: i64,
    batches: u32,
    cache: CacheSize,
}

impl WalCatchUp {
    fn new(ctl: Option<WalCtl>, limits: WalLimits) -> Self {
        Self {
            ctl,
            limits,
            frames: 0,
            woken: false,
            next: limits.catch_up,
            batches: 0,
            cache: CacheSize::default(),
        }
    }

    fn after_commit(&mut self, conn: &Conn) {
        let Conn::Sqlite(c) = conn else { return };
        self.batches += 1;
        if self.batches >= CACHE_CHECK_EVERY {
            self.batches = 0;
            self.cache.check(c);
        }
        let Some(ctl) = &self.ctl else { return };
        let frames = WAL_FRAMES.with(Cell::get);
        if frames < self.frames {
            // the log restarted: what the thread copied was in the previous one
            ctl.copied.store(0, Ordering::Release);
            self.woken = false;
            self.next = self.limits.catch_up;
        }
        self.frames = frames;
        if frames < self.next {
            return;
        }
        let copied = ctl.copied.load(Ordering::Acquire);
        let tail = if copied <= frames {
            frames - copied
        } else {
            frames
        };
        let allowed = if frames < self.limits.long_log {
            self.limits.tail
        } else {
            self.limits.long_tail
        };
        if tail > allowed && frames < self.limits.max {
            if !std::mem::replace(&mut self.woken, true) {
                let _ = ctl.wake.send(());
            }
            return;
        }
        match c.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], checkpoint_row) {
            // all copied: the next batch restarts the log, unless a reader still reads from it
            // (then try again a little later)
            Ok((0, log, done)) if log == done => {
                ctl.copied.store(log, Ordering::Release);
                self.next = frames + self.limits.tail;
            }
            // the thread is mid-pass (it publishes when done), or a reader's snapshot keeps
            // frames from being copied: again a little later
            Ok(_) => {
                self.woken = false;
                self.next = frames + self.limits.retry;
            }
            Err(e) => {
                tracing::warn!(error = %e, "WAL catch-up checkpoint failed");
                self.next = frames + self.limits.tail;
            }
        }
    }
}

/// The lock-byte page: the page holding byte 2^30 of the file, never used for data.
fn pending_byte_page(c: &Connection) -> rusqlite::Result<i64> {
    let page_size: i64 = c.query_row("PRAGMA page_size", [], |r| r.get(0))?;
    Ok((1 << 30) / page_size.max(512) + 1)
}

/// The writer's page cache for a database of `pages` pages, in KiB.
fn cache_kib(pages: i64, pending_byte_page: i64) -> i64 {
    if pages > pending_byte_page {
        CACHE_KIB
    } else {
        SMALL_CACHE_KIB
    }
}

/// The writer's page cache is small while the database is under 1 GiB, and [`CACHE_KIB`] after.
///
/// Why: when SQLite rebalances a B-tree it swaps pages through a temporary page number, the
/// lock-byte page (`balance_nonroot`, [`pending_byte_page`]: 262,145 with 4 KiB pages); the page
/// cache remembers it as its highest key, and at the end of the transaction it drops every page
/// past the end of the database. When that highest key is further past the end than the cache
/// has hash buckets, which is the case in every database under ~1 GiB, it walks all the buckets
/// (`pcache1TruncateUnsafe`) — 16,384 of them with a 64 MiB cache, on every commit that split
/// a page: 11 % of the writer's time in a send run. The buckets grow with the pages cached, so
/// a small cache makes that walk short; past the lock-byte page the walk is a few buckets
/// whatever the size, and the larger cache keeps more of a large database's index pages.
#[derive(Default)]
struct CacheSize {
    /// `None` until first checked; then whether the large cache is set.
    large: Option<bool>,
    /// [`pending_byte_page`], read once (the page size does not change in WAL mode).
    pending: Option<i64>,
}

impl CacheSize {
    fn check(&mut self, c: &Connection) {
        if self.large == Some(true) {
            return;
        }
        let (pages, pending) = match (
            c.query_row("PRAGMA page_count", [], |r| r.get::<_, i64>(0)),
            self.pending.map_or_else(|| pending_byte_page(c), Ok),
        ) {
            (Ok(pages), Ok(pending)) => (pages, pending),
            (Err(e), _) | (_, Err(e)) => {
                tracing::warn!(error = %e, "cannot read the database size");
                return;
            }
        };
        self.pending = Some(pending);
        let big = pages > pending;
        if self.large == Some(big) {
            return;
        }
        let kib = cache_kib(pages, pending);
        match c.execute_batch(&format!("PRAGMA cache_size=-{kib}")) {
            Ok(()) => self.large = Some(big),
            Err(e) => tracing::warn!(error = %e, "cannot set the page cache size"),
        }
    }

    /// The cache size SQLite reports (KiB, negative), for tests.
    #[cfg(test)]
    fn current(c: &Connection) -> i64 {
        c.query_row("PRAGMA cache_size", [], |r| r.get(0)).unwrap()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A PostgreSQL shard's writer keeps the numbers' buckets (and the customers' facts with
    /// them) from one committed batch to the next only when its shard's counter moved by its own
    /// batch alone; a batch that rolled back, a job that forgot the facts, or a `BEGIN` without
    /// the counters leaves it nothing kept.
    #[test]
    fn a_shards_writer_keeps_across_its_own_consecutive_batches_only() {
        let row = |n: &str, config: &str| vec![Some(n.to_string()), Some(config.to_string())];
        let bucket = greenlight_domain::policy::pacing::Bucket {
            tokens: 1.0,
            updated_at: 5,
        };
        let mut m = Memory::default();
        let batch = |m: &mut Memory, begin: Option<Vec<Option<String>>>, committed: bool| {
            m.begun(begin.as_deref());
            let config = m.batch_config;
            m.number_buckets.insert("p".into(), bucket);
            m.end_batch(true, committed);
            config
        };
        assert_eq!(batch(&mut m, Some(row("7", "3")), true), Some(3));
        assert_eq!(m.kept_number_buckets.len(), 1, "committed: kept");
        assert!(m.number_buckets.is_empty(), "the batch's own go");
        m.begun(Some(&row("8", "4")));
        assert_eq!(
            (m.kept_number_buckets.len(), m.batch_config),
            (1, Some(4)),
            "the next batch of the shard is this writer's: kept"
        );
        m.end_batch(true, true);
        m.begun(Some(&row("10", "4")));
        assert!(
            m.kept_number_buckets.is_empty(),
            "another batch came between: forgotten"
        );
        assert_eq!(m.batch_config, Some(4), "and kept again from now");
        m.end_batch(true, true);
        batch(&mut m, Some(row("11", "4")), true);
        assert_eq!(m.kept_number_buckets.len(), 1);
        batch(&mut m, Some(row("12", "4")), false);
        assert!(m.kept_number_buckets.is_empty(), "rolled back: forgotten");
        // the counter as the rolled-back batch found it comes again: no last batch to follow
        batch(&mut m, Some(row("12", "4")), true);
        assert_eq!(m.kept_number_buckets.len(), 1);
        m.begun(Some(&row("13", "4")));
        m.forget_facts();
        assert_eq!(
            m.batch_config, None,
            "a job that may change them: none kept"
        );
        m.number_buckets.insert("q".into(), bucket);
        m.end_batch(true, true);
        assert!(m.kept_number_buckets.is_empty());
        for begin in [
            None,
            Some(vec![Some("14".to_string())]),
            Some(row("x", "4")),
            Some(vec![Some("14".to_string()), None]),
        ] {
            batch(&mut m, Some(row("14", "4")), true);
            assert_eq!(
                batch(&mut m, begin, true),
                None,
                "no counters, nothing kept"
            );
            assert!(m.kept_number_buckets.is_empty());
        }
    }

    /// A send reads the configuration counter unless only sends that changed no configuration
    /// ran since it was read in the batch: another job, a send that made the writer forget the
    /// customers' facts (a violation), a failed send and a new batch all make the next send read
    /// it again. The counter is moved behind the writer's back here to see whether it is read.
    #[test]
    fn a_run_of_sends_reads_the_configuration_counter_once() {
        let c = rusqlite::Connection::open_in_memory().unwrap();
        create_schema(&c).unwrap();
        let conn = crate::db::Conn::Sqlite(c.into());
        let bump = || {
            conn.execute_batch("UPDATE config_version SET n = n + 1 WHERE id = 1")
                .unwrap()
        };
        let mut mem = Memory::default();
        /// A job as the writer runs it, and the counter it must see.
        struct Step {
            /// the counter is moved behind the writer's back first
            moved: bool,
            /// a new batch starts first
            new_batch: bool,
            send: bool,
            ok: bool,
            /// the job makes the writer forget the customers' facts (a violation)
            forget: bool,
            expected: i64,
            why: &'static str,
        }
        let job = |send, ok, forget| Step {
            moved: false,
            new_batch: false,
            send,
            ok,
            forget,
            expected: 0,
            why: "",
        };
        let steps = [
            Step {
                expected: 0,
                why: "the batch's first send reads it",
                ..job(true, true, false)
            },
            Step {
                moved: true,
                expected: 0,
                why: "a send after a send does not",
                ..job(true, true, false)
            },
            Step {
                expected: 1,
                why: "another job does",
                ..job(false, true, false)
            },
            Step {
                moved: true,
                expected: 2,
                why: "and so does the send after it",
                ..job(true, true, false)
            },
            Step {
                expected: 2,
                why: "this send records a violation",
                ..job(true, true, true)
            },
            Step {
                moved: true,
                expected: 3,
                why: "the next send reads it",
                ..job(true, true, false)
            },
            Step {
                expected: 3,
                why: "this send fails",
                ..job(true, false, false)
            },
            Step {
                moved: true,
                expected: 4,
                why: "the next send reads it",
                ..job(true, true, false)
            },
            Step {
                moved: true,
                new_batch: true,
                expected: 5,
                why: "a new batch's first send reads it",
                ..job(true, true, false)
            },
        ];
        for Step {
            moved,
            new_batch,
            send,
            ok,
            forget,
            expected,
            why,
        } in steps
        {
            if moved {
                bump();
            }
            if new_batch {
                mem.end_batch(false, true);
            }
            // a job as the writer runs it
            mem.next_job(send);
            let generation = mem.pair_facts.generation();
            let seen = mem.config_version(&conn).unwrap().unwrap();
            if forget {
                mem.forget_facts();
            }
            mem.after_job(send, ok, generation);
            assert_eq!(seen, expected, "{why}");
        }
    }

    /// With `synchronous=NORMAL` the syncer thread fsyncs the WAL after commits (answers do not
    /// wait for it): a store that only committed still gets its log synced, as with `FULL`.
    #[tokio::test]
    async fn the_wal_is_synced_behind_the_commits_with_normal_too() {
        for synchronous in ["NORMAL", "FULL"] {
            let dir = tempfile::tempdir().unwrap();
            let s = SqlStore::open(
                &dir.path().join("t.db").to_string_lossy(),
                SqliteOptions {
                    synchronous: synchronous.into(),
                    ..SqliteOptions::default()
                },
            )
            .unwrap();
            for i in 0..3 {
                s.write(move |c| {
                    c.execute_batch(&format!(
                        "CREATE TABLE IF NOT EXISTS t (x); INSERT INTO t VALUES ({i})"
                    ))?;
                    Ok(())
                })
                .await
                .unwrap();
            }
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            while s.wal_syncs.load(Ordering::Relaxed) == 0 && std::time::Instant::now() < deadline {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
            assert!(
                s.wal_syncs.load(Ordering::Relaxed) >= 1,
                "{synchronous}: no fsync of the WAL after three commits"
            );
        }
    }

    /// Under `FULL`, a job answered at the COMMIT (a webhook attempt's record) is answered
    /// while the WAL's fsync is held back, its write visible to readers; a durable job is not
    /// answered until the fsync ends.
    // the guard holds back the syncer thread, which takes no part in this test's tasks
    #[allow(clippy::await_holding_lock)]
    #[tokio::test]
    async fn a_job_answered_at_the_commit_does_not_wait_for_the_fsync() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqlStore::open(
            &dir.path().join("t.db").to_string_lossy(),
            SqliteOptions {
                synchronous: "FULL".into(),
                ..SqliteOptions::default()
            },
        )
        .unwrap();
        s.write(|c| Ok(c.execute_batch("CREATE TABLE t (x)")?))
            .await
            .unwrap();
        let count =
            || s.read(|c| Ok(c.query_row("SELECT count(*) FROM t", [], |r| r.get::<_, i64>(0))?));
        let insert = |c: &Conn, _: &mut Memory| Ok(c.execute_batch("INSERT INTO t VALUES (1)")?);
        let wait = std::time::Duration::from_millis(300);
        let held = s.sync_gate.0.lock().unwrap();
        let syncs = s.wal_syncs.load(Ordering::Relaxed);
        tokio::time::timeout(wait * 10, s.write_fast_at_commit(Facts::Keeps, insert))
            .await
            .expect("a job answered at the COMMIT waited for the fsync")
            .unwrap();
        assert_eq!(count().await.unwrap(), 1, "its write is visible at once");
        let durable = s.write_fast_on(Route::Global, Facts::Keeps, insert);
        tokio::pin!(durable);
        assert!(
            tokio::time::timeout(wait, &mut durable).await.is_err(),
            "a durable job was answered before the fsync"
        );
        assert_eq!(count().await.unwrap(), 2, "committed, not yet answered");
        drop(held);
        durable.await.unwrap();
        assert!(s.wal_syncs.load(Ordering::Relaxed) > syncs);
    }

    /// The bundled SQLite is compiled with the workspace's flags (`.cargo/config.toml`): one
    /// page cache per connection without a shared mutex, no memory statistics, a rebalance's
    /// scratch space on the stack.
    #[test]
    fn the_bundled_sqlite_is_built_for_the_writer() {
        let c = Connection::open_in_memory().unwrap();
        let options: Vec<String> = c
            .prepare("PRAGMA compile_options")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        for want in ["DEFAULT_MEMSTATUS=0", "USE_ALLOCA", "OMIT_SHARED_CACHE"] {
            assert!(options.iter().any(|o| o == want), "{want} in {options:?}");
        }
        assert!(
            !options.iter().any(|o| o == "ENABLE_MEMORY_MANAGEMENT"),
            "ENABLE_MEMORY_MANAGEMENT in {options:?}"
        );
    }

    /// A database written before the messages had their `sent_at` and `delivered_at` columns
    /// opens with them added, and a message's history reads the same from its rows; a message
    /// written since reads its statuses from the columns and its rows, in time order (a `read`
    /// row of the same millisecond as the `delivered` column after it).
    #[tokio::test]
    async fn a_database_from_before_the_status_columns_keeps_its_history() {
        use crate::params;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        {
            let old = Connection::open(&path).unwrap();
            old.execute_batch(SCHEMA).unwrap();
            old.execute_batch(
                "ALTER TABLE messages DROP COLUMN sent_at; \
                 ALTER TABLE messages DROP COLUMN delivered_at; \
                 INSERT INTO messages (id, business_id, phone_id, wa_id, direction, type, content, status, created_at) \
                 VALUES ('old', 'b1', 'p1', '15550001111', 'out', 'text', '{}', 'read', 1000); \
                 INSERT INTO statuses (message_id, status, at) VALUES ('old', 'sent', 1000), \
                 ('old', 'delivered', 3000), ('old', 'read', 3000); \
                 INSERT INTO messages (id, business_id, phone_id, wa_id, direction, type, content, status, created_at) \
                 VALUES ('inflight', 'b1', 'p1', '15550001111', 'out', 'text', '{}', 'sent', 4000); \
                 INSERT INTO statuses (message_id, status, at) VALUES ('inflight', 'sent', 4000);",
            )
            .unwrap();
        }
        let s = SqlStore::open(&path.to_string_lossy(), SqliteOptions::default()).unwrap();
        s.write(|c| {
            c.execute(
                "INSERT INTO messages (id, business_id, phone_id, wa_id, direction, type, content, status, created_at, sent_at, delivered_at) \
                 VALUES ('new', 'b1', 'p1', '15550001111', 'out', 'text', '{}', 'read', 5000, 5000, 7000)",
                [],
            )?;
            c.execute(
                "INSERT INTO statuses (message_id, status, at) VALUES ('new', 'read', ?1)",
                params![7000],
            )?;
            // sent before the upgrade, delivered after it in the same millisecond
            c.execute(
                "UPDATE messages SET status = 'delivered', delivered_at = 4000 WHERE id = 'inflight'",
                [],
            )?;
            Ok(())
        })
        .await
        .unwrap();
        let history = |id: &'static str| {
            let s = &s;
            async move {
                let m = s
                    .read(move |c| read::message(c, "b1", id, i64::MAX))
                    .await
                    .unwrap()
                    .unwrap();
                m.statuses
                    .iter()
                    .map(|st| format!("{}@{}", st.status, st.timestamp))
                    .collect::<Vec<_>>()
            }
        };
        assert_eq!(history("old").await, ["sent@1", "delivered@3", "read@3"]);
        assert_eq!(history("new").await, ["sent@5", "delivered@7", "read@7"]);
        assert_eq!(history("inflight").await, ["sent@4", "delivered@4"]);
    }

    /// Whoever opens a database completes its status columns: the server, also after an
    /// upgrade cut short between the two columns and when it opens again, and
    /// `greenlight import` (which otherwise leaves out the columns its target lacks).
    #[test]
    fn every_opener_completes_the_status_columns() {
        let columns = |path: &std::path::Path| -> Vec<String> {
            Connection::open(path)
                .unwrap()
                .prepare(
                    "SELECT name FROM pragma_table_info('messages') \
                     WHERE name IN ('sent_at', 'delivered_at') ORDER BY name",
                )
                .unwrap()
                .query_map([], |r| r.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap()
        };
        let old = |path: &std::path::Path, drop: &str| {
            let c = Connection::open(path).unwrap();
            c.execute_batch(SCHEMA).unwrap();
            c.execute_batch(drop).unwrap();
        };
        let dir = tempfile::tempdir().unwrap();
        let cut = dir.path().join("cut.db");
        old(&cut, "ALTER TABLE messages DROP COLUMN delivered_at");
        assert_eq!(columns(&cut), ["sent_at"]);
        for _ in 0..2 {
            drop(SqlStore::open(&cut.to_string_lossy(), SqliteOptions::default()).unwrap());
            assert_eq!(columns(&cut), ["delivered_at", "sent_at"]);
        }
        let target = dir.path().join("target.db");
        old(
            &target,
            "ALTER TABLE messages DROP COLUMN sent_at; ALTER TABLE messages DROP COLUMN delivered_at",
        );
        assert!(columns(&target).is_empty());
        drop(crate::transfer::open(&format!("sqlite://{}", target.display())).unwrap());
        assert_eq!(columns(&target), ["delivered_at", "sent_at"]);
    }

    #[test]
    fn the_writer_cache_is_small_under_the_lock_byte_page_and_large_past_it() {
        assert_eq!(cache_kib(1, 262_145), SMALL_CACHE_KIB);
        assert_eq!(cache_kib(262_145, 262_145), SMALL_CACHE_KIB);
        assert_eq!(cache_kib(262_146, 262_145), CACHE_KIB);
        let dir = tempfile::tempdir().unwrap();
        let c = Connection::open(dir.path().join("t.db")).unwrap();
        assert_eq!(pending_byte_page(&c).unwrap(), 262_145);
        // a fresh database: the page size can still change (not once it is in WAL mode)
        c.execute_batch("PRAGMA page_size=65536").unwrap();
        configure(&c, "NORMAL").unwrap();
        assert_eq!(CacheSize::current(&c), -CACHE_KIB);
        assert_eq!(pending_byte_page(&c).unwrap(), 16_385);
        let mut cache = CacheSize::default();
        cache.check(&c);
        assert_eq!(CacheSize::current(&c), -SMALL_CACHE_KIB);
        assert_eq!(cache.large, Some(false));
        // once large, it is not read again
        cache.large = Some(true);
        cache.check(&c);
        assert_eq!(CacheSize::current(&c), -SMALL_CACHE_KIB);
    }

    #[test]
    fn urls() {
        assert_eq!(
            path_from_url("sqlite://greenlight.db").as_deref(),
            Some("greenlight.db")
        );
        assert_eq!(
            path_from_url("sqlite:///tmp/x.db").as_deref(),
            Some("/tmp/x.db")
        );
        assert_eq!(
            path_from_url("sqlite:a.db?mode=rwc").as_deref(),
            Some("a.db")
        );
        assert_eq!(path_from_url("postgres://x"), None);
    }

    /// A cached statement with a bound `LIMIT` runs again without being compiled again, on the
    /// writer's and the readers' connections.
    #[test]
    fn a_bound_limit_does_not_recompile_the_statement() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let s = SqlStore::open(&path.to_string_lossy(), SqliteOptions::default()).unwrap();
        let sql =
            "SELECT id, kind, subject FROM tasks WHERE due_at <= ?1 ORDER BY due_at, id LIMIT ?2";
        let check = |c: &Connection| {
            for limit in 1..4_i64 {
                let mut stmt = c.prepare_cached(sql).unwrap();
                stmt.query_map(rusqlite::params![0_i64, limit], |_| Ok(()))
                    .unwrap()
                    .for_each(drop);
                let recompiled = stmt.get_status(rusqlite::StatementStatus::RePrepare);
                assert_eq!(recompiled, 0, "compiled again with LIMIT {limit}");
            }
        };
        let writer = Connection::open(&path).unwrap();
        configure(&writer, "NORMAL").unwrap();
        check(&writer);
        let Some(Conn::Sqlite(reader)) = s.readers[0].lock().unwrap().take() else {
            panic!("a SQLite reader")
        };
        check(&reader);
    }

    /// A writer over a new log whose frames it counts, with the catch-up under `limits`, and
    /// the checkpointer thread's side played by the test: its connection, its wake-ups, what it
    /// says it copied.
    struct CatchUp {
        _dir: tempfile::TempDir,
        conn: Conn,
        thread: Connection,
        woken: mpsc::Receiver<()>,
        copied: Arc<AtomicI64>,
        w: WalCatchUp,
    }

    impl CatchUp {
        fn new(limits: WalLimits) -> Self {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("t.db");
            let c = Connection::open(&path).unwrap();
            configure(&c, "NORMAL").unwrap();
            c.execute_batch("PRAGMA wal_autocheckpoint=0; CREATE TABLE t (x BLOB)")
                .unwrap();
            c.wal_hook(Some(count_wal_frames));
            let thread = Connection::open(&path).unwrap();
            let (wake, woken) = mpsc::channel();
            let copied = Arc::new(AtomicI64::new(0));
            let w = WalCatchUp::new(
                Some(WalCtl {
                    copied: copied.clone(),
                    wake,
                }),
                limits,
            );
            CatchUp {
                _dir: dir,
                conn: Conn::Sqlite(c.into()),
                thread,
                woken,
                copied,
                w,
            }
        }

        /// One commit of one row (a page or two), then the writer's check; frames in the log
        /// after.
        fn commit(&mut self) -> i64 {
            self.conn
                .execute_batch("INSERT INTO t VALUES (randomblob(3000))")
                .unwrap();
            self.w.after_commit(&self.conn);
            WAL_FRAMES.with(Cell::get)
        }

        /// Commits from `frames` until the log restarts; the most frames it held, each commit
        /// checked to stay under `bound` (`what` names the failure).
        fn until_restart(&mut self, mut frames: i64, bound: i64, what: &str) -> i64 {
            let mut peak = frames;
            loop {
                let before = frames;
                frames = self.commit();
                if frames < before {
                    return peak;
                }
                peak = frames;
                assert!(peak < bound, "{what} at {peak} frames");
            }
        }
    }

    /// The writer's catch-up policy, with small limits and the checkpointer thread played by
    /// the test: it waits (waking the thread once) while the thread has left much to copy,
    /// catches up once the thread's pass leaves at most `tail` frames, and the log then restarts;
    /// with no pass from the thread it catches up at `max` frames all the same.
    #[test]
    fn the_writer_catches_up_when_the_thread_leaves_little_to_copy() {
        let mut f = CatchUp::new(WalLimits {
            catch_up: 64,
            tail: 16,
            long_log: 1024,
            long_tail: 16,
            retry: 8,
            max: 256,
        });
        let mut frames = f.commit();
        while frames < 64 {
            assert!(f.woken.try_recv().is_err(), "woken at {frames} frames");
            frames = f.commit();
        }
        // due: the thread is woken once, and the writer does not copy while the tail is long
        f.woken
            .try_recv()
            .expect("the thread is woken past 64 frames");
        for _ in 0..20 {
            let before = frames;
            frames = f.commit();
            assert!(
                frames > before,
                "the log restarted with {before} frames uncopied"
            );
        }
        assert!(f.woken.try_recv().is_err(), "woken twice for one log");
        // the thread's pass copies everything so far; what the next commits add is the tail
        let (busy, log, done) = f
            .thread
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], checkpoint_row)
            .unwrap();
        assert_eq!((busy, log), (0, done));
        f.copied.store(log, Ordering::Release);
        let mut restarted = false;
        for _ in 0..8 {
            let before = frames;
            frames = f.commit();
            if frames < before {
                restarted = true;
                break;
            }
        }
        assert!(
            restarted,
            "no restart after the thread copied all but the tail"
        );
        // no pass from the thread this time: the writer waits until `max`, then catches up
        let peak = f.until_restart(frames, 256 + 16, "the log grew on");
        assert!(
            peak >= 256 - 8,
            "caught up at {peak} frames, before the maximum"
        );
        assert!(
            f.woken.try_recv().is_ok(),
            "the thread was woken for the new log"
        );
    }

    /// While the log is short the catch-up waits for a pass of the thread that leaves at most
    /// `tail` frames to copy; once the log reaches `long_log`, `long_tail` frames will do.
    #[test]
    fn a_long_log_accepts_a_longer_tail() {
        let mut f = CatchUp::new(WalLimits {
            catch_up: 64,
            tail: 4,
            long_log: 160,
            long_tail: 96,
            retry: 8,
            max: 1024,
        });
        let mut frames = f.commit();
        while frames < 100 {
            frames = f.commit();
        }
        // the thread's last pass left 10 frames to copy: too many while the log is short
        f.copied.store(frames - 10, Ordering::Release);
        let peak = f.until_restart(frames, 160 + 8, "no catch-up");
        // the catch-up ran at the first commit past `long_log`, and the next one restarted the log
        assert!(
            peak >= 160,
            "caught up at {peak} frames, before the log was long"
        );
    }

    async fn meta_value(s: &SqlStore, key: &'static str) -> Option<String> {
        s.read(move |c| {
            Ok(
                c.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
                    .ok(),
            )
        })
        .await
        .ok()
        .flatten()
    }

    /// Under a steady stream of commits the WAL still restarts: it stays far smaller than what
    /// was written through it (without the writer's catch-up it held every frame ever written).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_wal_stays_bounded_under_steady_writes() {
        use crate::params;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let s = std::sync::Arc::new(
            SqlStore::open(&path.to_string_lossy(), SqliteOptions::default()).unwrap(),
        );
        let value = "x".repeat(8 * 1024);
        let mut tasks = Vec::new();
        for t in 0..4 {
            let (s, value) = (s.clone(), value.clone());
            tasks.push(tokio::spawn(async move {
                for i in 0..6_000 {
                    let (key, value) = (format!("k{t}-{i}"), value.clone());
                    s.write_fast(move |c, _| {
                        c.execute(
                            "INSERT INTO meta (key, value) VALUES (?1, ?2)",
                            params![key, value],
                        )?;
                        Ok(())
                    })
                    .await
                    .unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        // 24,000 rows of 8 KiB: about 300 MB went through the log, past twice the catch-up's
        // maximum (128 MiB); past 32 MiB the writer caught up whenever the thread's passes
        // left it little to copy (past 64 MiB, a longer tail), and each restart cut the file
        // back to `journal_size_limit` (64 MiB)
        let wal = std::fs::metadata(dir.path().join("t.db-wal"))
            .unwrap()
            .len();
        assert!(wal < 96 * 1024 * 1024, "the WAL grew to {wal} bytes");
        assert_eq!(
            meta_value(&s, "k3-5999").await.as_deref(),
            Some(value.as_str())
        );
    }

    /// A savepoint-less job that fails after writing rolls back its whole batch, and nothing in
    /// it is acknowledged; an `Api` refusal (before any write) rolls back nothing.
    #[tokio::test]
    async fn a_failed_fast_job_rolls_back_its_batch() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqlStore::open(
            &dir.path().join("t.db").to_string_lossy(),
            SqliteOptions::default(),
        )
        .unwrap();
        let r = s
            .write_fast(|c, _| {
                c.execute(
                    "INSERT INTO meta (key, value) VALUES ('half', 'written')",
                    [],
                )?;
                Err::<(), _>(StoreError::Internal("boom".into()))
            })
            .await;
        assert!(matches!(r, Err(StoreError::Internal(_))));
        assert_eq!(
            meta_value(&s, "half").await,
            None,
            "the partial write was rolled back"
        );
        let r = s
            .write_fast(|_, _| {
                Err::<(), _>(StoreError::Api(greenlight_domain::ApiError::invalid_value(
                    "no",
                )))
            })
            .await;
        assert!(matches!(r, Err(StoreError::Api(_))));
        s.write_fast(|c, _| {
            c.execute("INSERT INTO meta (key, value) VALUES ('ok', 'yes')", [])?;
            Ok(())
        })
        .await
        .unwrap();
        assert_eq!(meta_value(&s, "ok").await.as_deref(), Some("yes"));
        // and a panicking job is contained: the writer keeps serving
        let r = s.write(|_| -> StoreResult<()> { panic!("bug") }).await;
        assert!(matches!(r, Err(StoreError::Internal(_))));
        assert!(s
            .write(|c| Ok(c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))?))
            .await
            .is_ok());
    }

    /// A job's answer, boxed so that different jobs can wait in one list.
    pub(crate) type Answer<'a, T = ()> =
        std::pin::Pin<Box<dyn std::future::Future<Output = StoreResult<T>> + Send + 'a>>;

    fn insert_meta(key: &'static str) -> impl FnOnce(&Conn, &mut Memory) -> StoreResult<()> {
        move |c, _| {
            c.execute(
                "INSERT INTO meta (key, value) VALUES (?1, 'v')",
                crate::params![key],
            )?;
            Ok(())
        }
    }

    /// A job that writes `key` and then fails as a broken write would (not a refusal).
    fn failing<'a>(s: &'a SqlStore, key: &'static str) -> Answer<'a> {
        Box::pin(s.write_fast(move |c, m| {
            insert_meta(key)(c, m)?;
            Err::<(), _>(StoreError::Internal("boom".into()))
        }))
    }

    /// Queues `jobs`, in order, behind a job (writing `busy`) that holds the writer until they
    /// are all queued (a job is sent to the writer on its future's first poll), so that they
    /// meet in its batch's rounds whatever the timing; returns that job's answer.
    pub(crate) async fn behind_a_busy_job<T>(
        s: &std::sync::Arc<SqlStore>,
        jobs: &mut [Answer<'_, T>],
    ) -> StoreResult<()> {
        use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
        let (started, queued) = (
            std::sync::Arc::new(AtomicBool::new(false)),
            std::sync::Arc::new(AtomicBool::new(false)),
        );
        let busy = {
            let (s, started, queued) = (s.clone(), started.clone(), queued.clone());
            tokio::spawn(async move {
                s.write_fast(move |c, m| {
                    started.store(true, SeqCst);
                    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
                    while !queued.load(SeqCst) && std::time::Instant::now() < deadline {
                        std::thread::sleep(std::time::Duration::from_millis(1));
                    }
                    insert_meta("busy")(c, m)
                })
                .await
            })
        };
        tokio::time::timeout(std::time::Duration::from_secs(30), async {
            while !started.load(SeqCst) {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
        })
        .await
        .expect("the writer ran the first job");
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        for j in jobs.iter_mut() {
            assert!(
                std::future::Future::poll(j.as_mut(), &mut cx).is_pending(),
                "queued, not answered"
            );
        }
        queued.store(true, SeqCst);
        busy.await.unwrap()
    }

    /// A store on a fresh database in a temporary folder (kept while the folder is).
    pub(crate) fn temp_store() -> (tempfile::TempDir, std::sync::Arc<SqlStore>) {
        let dir = tempfile::tempdir().unwrap();
        let s = SqlStore::open(
            &dir.path().join("t.db").to_string_lossy(),
            SqliteOptions::default(),
        )
        .unwrap();
        (dir, std::sync::Arc::new(s))
    }

    /// The jobs queued behind a job that fails after writing are not run in its batch, which
    /// cannot commit: they go to the next one, in their order, and commit there. The job run
    /// before it in the batch answers "unavailable" (its write went with the rollback).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn jobs_behind_a_failed_fast_job_commit_in_the_next_batch() {
        let (_dir, s) = temp_store();
        let keys = ["k0", "k1", "k2", "k3", "k4"];
        let mut jobs = vec![failing(&s, "half")];
        jobs.extend(keys.map(|k| -> Answer<'_> { Box::pin(s.write_fast(insert_meta(k))) }));
        let busy = behind_a_busy_job(&s, &mut jobs).await;
        assert!(
            matches!(busy, Err(StoreError::Unavailable(_))),
            "a job run before the failure is rolled back with it"
        );
        let mut answers = jobs.into_iter();
        assert!(matches!(
            answers.next().unwrap().await,
            Err(StoreError::Internal(_))
        ));
        for j in answers {
            j.await.expect("a job queued behind the failure commits");
        }
        for key in ["busy", "half"] {
            assert_eq!(meta_value(&s, key).await, None, "{key} was rolled back");
        }
        let committed = s
            .read(|c| {
                let mut stmt =
                    c.prepare("SELECT key FROM meta WHERE key LIKE 'k%' ORDER BY rowid")?;
                let keys = stmt
                    .query_map([], |r| r.get::<_, String>(0))?
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(keys)
            })
            .await
            .unwrap();
        assert_eq!(committed, keys, "in the order they were queued");
    }

    /// A job waits for a next batch once: put back by one failure, it answers "unavailable" at
    /// the next without running, so that when every write fails a queue drains in two batches
    /// rather than one job a batch.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_job_is_put_back_once() {
        let (_dir, s) = temp_store();
        let mut jobs = vec![failing(&s, "first"), failing(&s, "second")];
        jobs.extend(["k0", "k1"].map(|k| -> Answer<'_> { Box::pin(s.write_fast(insert_meta(k))) }));
        let busy = behind_a_busy_job(&s, &mut jobs).await;
        assert!(matches!(busy, Err(StoreError::Unavailable(_))));
        let mut answers = jobs.into_iter();
        // the first fails its batch (the others wait), the second the next one
        for _ in 0..2 {
            assert!(matches!(
                answers.next().unwrap().await,
                Err(StoreError::Internal(_))
            ));
        }
        for j in answers {
            match j.await {
                Err(StoreError::Unavailable(e)) => {
                    assert!(e.contains("nothing in it was committed"), "{e}")
                }
                other => panic!("a job put back once answers unavailable, not {other:?}"),
            }
        }
        for key in ["busy", "first", "second", "k0", "k1"] {
            assert_eq!(meta_value(&s, key).await, None, "{key}");
        }
    }
}
