//! SQLite: the messages of a thread (a business number and a customer) and the messages of a
//! number, as chains of links instead of an index.
//!
//! An index ordered by number and customer puts every new message's entry somewhere in the
//! middle of the tree: with thousands of threads, a batch of sends dirties a page per send,
//! which the WAL and then the checkpoint write whole (docs/BENCHMARKS.md, fifteenth and
//! seventeenth rounds). Instead each message carries two links in its own row, written with it:
//! the rowid of the previous message of its thread (`pair_prev`) and of its number
//! (`number_prev`), 0 for none; null marks a message no link was written for (an older build's,
//! or an import's), which the chains are built again for ([`ensure`]). Until the twenty-eighth
//! round of docs/BENCHMARKS.md the links were rows of a table of their own, `message_links`,
//! one more insert per message; a database that has it has its links moved into the messages'
//! rows when it is opened. A chain's newest message, its head, is kept
//! by the writer in memory and written to `message_heads` in bulk by a sweep: every
//! [`SWEEP_EVERY`], the heads changed since the last sweep, sorted by key, [`SWEEP_CHUNK`] with
//! each batch, so that a page of the table is written once for all the heads it holds. When a
//! sweep's last chunk commits, `meta.chains_upto` records the newest message the table covers;
//! at start, the heads of the messages after it are found again from their rows, so a crash
//! loses nothing. The heads a finished sweep wrote stay in memory too, up to [`SWEPT_MAX`], as
//! the table holds them: a thread's next message, which mostly comes after a sweep, finds its
//! head there instead of reading the table. Readers take a head from the heads the writer
//! holds (shared with them) or from the table, and walk its chain in one statement
//! (`WITH RECURSIVE`, [`chain_sql`]).
//!
//! PostgreSQL keeps the index `messages_thread`: several nodes write there, and the heads could
//! not live in one memory.

use crate::db::{self, Conn, OptionalExtension};
use crate::keys::{HashMap, PairKey};
use crate::{params, StoreResult};
use rusqlite::Connection;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A chain: `(phone_id, wa_id)` for a thread, `(phone_id, "")` for a number.
pub(crate) type Key = PairKey;

/// Heads are swept to `message_heads` this often (when some changed). A thread's head changes
/// with each of its messages and is written once a sweep: the longer the period, the more of a
/// conversation's messages share one write, and the more messages a start reads again
/// (docs/BENCHMARKS.md, twenty-second round: at 1 s, the benchmark's full rate wrote a head for
/// about every send).
const SWEEP_EVERY: Duration = Duration::from_secs(10);
/// A sweep writes this many heads with each batch.
const SWEEP_CHUNK: usize = 512;
/// Past this many unswept heads a sweep starts whatever the time (bounds the memory).
const SWEEP_AT: usize = 200_000;
/// At most this many heads of finished sweeps are kept in memory (33 bytes each in a map that
/// hashbrown sizes to a power of two: ~4.3 MB at most, until the map's next doubling): a sweep
/// that would pass it empties them first, and the heads it drops are read from the table.
const SWEPT_MAX: usize = 100_000;

/// The heads of committed messages the writer holds, shared with the readers: those
/// `message_heads` may not hold yet, then those it holds as a finished sweep wrote them. A
/// chain's head is the first of the three that has it, or else the table's.
#[derive(Default)]
pub(crate) struct Committed {
    /// Changed since the current sweep began.
    fresh: HashMap<Key, i64>,
    /// Being written by the current sweep (where `fresh` has nothing newer), sorted by key:
    /// the writer's [`Chains::sweep`] itself, so the heads of a sweep are held once.
    sweeping: Arc<Vec<(Key, i64)>>,
    /// Written by a finished sweep: what the table holds (where neither map above has anything
    /// newer). At most [`SWEPT_MAX`].
    swept: HashMap<Key, i64>,
}

impl Committed {
    fn get(&self, k: &Key) -> Option<i64> {
        self.fresh
            .get(k)
            .or_else(|| {
                let i = self.sweeping.binary_search_by(|(key, _)| key.cmp(k)).ok()?;
                Some(&self.sweeping[i].1)
            })
            .or_else(|| self.swept.get(k))
            .copied()
    }
}

pub(crate) type Shared = Arc<Mutex<Committed>>;

/// The links of a message of `(phone_id, wa_id)` about to be inserted by the writer that holds
/// `chains` (none on PostgreSQL, which keeps no links, nor in a store test on a bare
/// connection): the link to give [`linked`] once the row is in, and the row's columns
/// `pair_prev` and `number_prev` (null without chains).
pub(crate) fn link(
    chains: Option<&Chains>,
    conn: &Conn,
    phone_id: &str,
    wa_id: &str,
) -> StoreResult<(Option<Link>, [Option<i64>; 2])> {
    link_pair(chains, conn, &PairKey::of(phone_id, wa_id), phone_id, wa_id)
}

/// [`link`] with the pair's key already made (`PairKey::of(phone_id, wa_id)`).
pub(crate) fn link_pair(
    chains: Option<&Chains>,
    conn: &Conn,
    pair: &PairKey,
    phone_id: &str,
    wa_id: &str,
) -> StoreResult<(Option<Link>, [Option<i64>; 2])> {
    let Some(chains) = chains else {
        return Ok((None, [None, None]));
    };
    let link = chains.link(conn, pair.clone(), phone_id, wa_id)?;
    let columns = [Some(link.pair_prev), Some(link.number_prev)];
    Ok((Some(link), columns))
}

/// The message inserted with `link`'s columns, row `rowid`, heads its chains once the batch
/// commits ([`Chains::linked`]). (An insert that did nothing, a duplicate's, is not linked.)
pub(crate) fn linked(chains: Option<&mut Chains>, link: Option<Link>, rowid: i64) {
    if let (Some(chains), Some(link)) = (chains, link) {
        chains.linked(link, rowid);
    }
}

/// `INSERT INTO messages (<columns>) VALUES (<values>)<rest>`, as a pair: PostgreSQL's, and
/// SQLite's with the message's links (`pair_prev`, `number_prev`), whose placeholders are
/// `<links>`, the statement's last two parameters ([`link`]).
macro_rules! message_insert {
    ($columns:literal, $values:literal, $links:literal, $rest:literal) => {
        (
            concat!(
                "INSERT INTO messages (",
                $columns,
                ") VALUES (",
                $values,
                ")",
                $rest
            ),
            concat!(
                "INSERT INTO messages (",
                $columns,
                ", pair_prev, number_prev) VALUES (",
                $values,
                ", ",
                $links,
                ")",
                $rest
            ),
        )
    };
}
pub(crate) use message_insert;

/// Runs a pair of [`message_insert!`] with `row`, whose last two values are the links: on
/// PostgreSQL its first statement without them, on SQLite its second. The rows it inserted.
pub(crate) fn insert_message(
    conn: &Conn,
    (pg, sqlite): (&'static str, &'static str),
    row: &[&dyn crate::db::ToSql],
) -> db::Result<usize> {
    if conn.is_pg() {
        conn.prepare_cached(pg)?.execute(&row[..row.len() - 2])
    } else {
        conn.execute_static(sqlite, row)
    }
}

/// A message's links, for its row ([`Chains::link`]).
pub(crate) struct Link {
    pair: Key,
    number: Key,
    /// The thread's previous message (0: none).
    pub(crate) pair_prev: i64,
    /// The number's previous message (0: none).
    pub(crate) number_prev: i64,
}

/// The writer's side: the current batch's links, and the sweep under way.
pub(crate) struct Chains {
    shared: Shared,
    /// This batch's messages, `(chain, rowid)` in order: heads once the batch commits.
    pending: Vec<(Key, i64)>,
    /// The sweep under way: heads sorted by key, how many are written (committed), how many
    /// will be once the current batch commits, and the newest message they cover.
    sweep: Arc<Vec<(Key, i64)>>,
    written: usize,
    writing: usize,
    sweep_upto: i64,
    /// When the last sweep began (`None`: a sweep is due).
    last_sweep: Option<Instant>,
    /// Heads written with each batch ([`SWEEP_CHUNK`]).
    chunk: usize,
    /// Heads of finished sweeps kept in memory at most ([`SWEPT_MAX`]).
    swept_max: usize,
    /// The newest committed message.
    newest: i64,
}

fn lock(shared: &Shared) -> std::sync::MutexGuard<'_, Committed> {
    // the map holds plain values: a panic elsewhere cannot leave it half-changed
    shared.lock().unwrap_or_else(|p| p.into_inner())
}

/// The head of a chain as the table has it.
fn stored_head(conn: &Conn, phone_id: &str, wa_id: &str) -> db::Result<Option<i64>> {
    conn.prepare_cached("SELECT head FROM message_heads WHERE phone_id = ?1 AND wa_id = ?2")?
        .query_row(params![phone_id, wa_id], |r| r.get(0))
        .optional()
}

/// The head of a chain for a reader: the newest committed message of the thread (`wa_id`) or
/// number (`wa_id` empty), if any.
pub(crate) fn committed_head(
    shared: Option<&Shared>,
    conn: &Conn,
    phone_id: &str,
    wa_id: &str,
) -> StoreResult<Option<i64>> {
    match shared {
        Some(s) => committed(s, conn, &PairKey::of(phone_id, wa_id), phone_id, wa_id),
        None => Ok(stored_head(conn, phone_id, wa_id)?),
    }
}

/// [`committed_head`] of chain `key`, whose ids are `phone_id` and `wa_id`.
fn committed(
    shared: &Shared,
    conn: &Conn,
    key: &Key,
    phone_id: &str,
    wa_id: &str,
) -> StoreResult<Option<i64>> {
    if let Some(h) = lock(shared).get(key) {
        return Ok(Some(h));
    }
    Ok(stored_head(conn, phone_id, wa_id)?)
}

/// The head of a chain inside a write job: the batch's own messages first. Without the writer's
/// chains (a store test on a bare connection), the table's.
pub(crate) fn head(
    chains: Option<&Chains>,
    conn: &Conn,
    phone_id: &str,
    wa_id: &str,
) -> StoreResult<Option<i64>> {
    match chains {
        Some(c) => c.head(conn, &PairKey::of(phone_id, wa_id), phone_id, wa_id),
        None => Ok(stored_head(conn, phone_id, wa_id)?),
    }
}

/// `WITH RECURSIVE chain(r)`: the rowids of the chain whose head is the parameter `head`, newest
/// first, following `prev` (`pair_prev` or `number_prev`) through the messages' rows. Each link
/// points to an older message (0: none); the comparison makes a damaged link end the walk
/// rather than loop.
macro_rules! chain_sql {
    ($prev:literal, $head:literal) => {
        concat!(
            "WITH RECURSIVE chain(r) AS (SELECT ",
            $head,
            " WHERE ",
            $head,
            " IS NOT NULL UNION ALL SELECT l.",
            $prev,
            " FROM chain JOIN messages l ON l.rowid = chain.r WHERE l.",
            $prev,
            " > 0 AND l.",
            $prev,
            " < chain.r) "
        )
    };
}
pub(crate) use chain_sql;

impl Chains {
    /// The head of chain `key`, whose ids are `phone_id` and `wa_id`.
    fn head(
        &self,
        conn: &Conn,
        key: &Key,
        phone_id: &str,
        wa_id: &str,
    ) -> StoreResult<Option<i64>> {
        if let Some((_, r)) = self.pending.iter().rev().find(|(k, _)| k == key) {
            return Ok(Some(*r));
        }
        committed(&self.shared, conn, key, phone_id, wa_id)
    }

    /// The links of a message of `(phone_id, wa_id)` about to be inserted: the columns
    /// `pair_prev` and `number_prev` of its row. Once the row is in, [`Self::linked`].
    /// `pair` is `PairKey::of(phone_id, wa_id)`.
    pub(crate) fn link(
        &self,
        conn: &Conn,
        pair: PairKey,
        phone_id: &str,
        wa_id: &str,
    ) -> StoreResult<Link> {
        debug_assert_eq!(pair, PairKey::of(phone_id, wa_id));
        let number = pair.number_key(phone_id);
        let pair_prev = self.head(conn, &pair, phone_id, wa_id)?.unwrap_or(0);
        let number_prev = self.head(conn, &number, phone_id, "")?.unwrap_or(0);
        Ok(Link {
            pair,
            number,
            pair_prev,
            number_prev,
        })
    }

    /// The message inserted with `link`'s columns, row `rowid`, heads its chains once the
    /// batch commits. (An insert that did nothing, a duplicate's, is not linked.)
    pub(crate) fn linked(&mut self, link: Link, rowid: i64) {
        self.pending.push((link.pair, rowid));
        self.pending.push((link.number, rowid));
    }

    /// How many links the batch holds: a job that rolls back truncates to what it found.
    pub(crate) fn mark(&self) -> usize {
        self.pending.len()
    }

    pub(crate) fn truncate(&mut self, mark: usize) {
        self.pending.truncate(mark);
    }

    /// Before a batch's `COMMIT`: starts a sweep when one is due, and writes its next chunk (the
    /// last one with the watermark). Nothing here is final before the `COMMIT`.
    pub(crate) fn before_commit(&mut self, conn: &Conn) -> StoreResult<()> {
        if self.sweep.is_empty() {
            let mut shared = lock(&self.shared);
            let due = self.last_sweep.is_none_or(|t| t.elapsed() >= SWEEP_EVERY)
                || shared.fresh.len() >= SWEEP_AT;
            if !due || shared.fresh.is_empty() {
                return Ok(());
            }
            // every committed message so far is either in these heads or already in the table;
            // sorted under the lock so that readers are never without them (they wait while it
            // sorts: a few ms for the benchmark's 40,000 heads, tens of ms at SWEEP_AT), and
            // held once (a sorted copy would double them)
            let mut sweep: Vec<(Key, i64)> =
                std::mem::take(&mut shared.fresh).into_iter().collect();
            sweep.sort_unstable();
            self.sweep = Arc::new(sweep);
            shared.sweeping = self.sweep.clone();
            drop(shared);
            self.written = 0;
            self.sweep_upto = self.newest;
            self.last_sweep = Some(Instant::now());
        }
        // at least as many heads as the batch made: a sweep keeps up with any rate
        let chunk = self.chunk.max(self.pending.len());
        let end = (self.written + chunk).min(self.sweep.len());
        let mut upsert = conn.prepare_cached(
            "INSERT INTO message_heads (phone_id, wa_id, head) VALUES (?1, ?2, ?3) \
             ON CONFLICT (phone_id, wa_id) DO UPDATE SET head = excluded.head",
        )?;
        for (k, r) in &self.sweep[self.written..end] {
            let (p, w) = k.ids();
            upsert.execute(params![p, w, r])?;
        }
        if end == self.sweep.len() {
            conn.prepare_cached("UPDATE meta SET value = ?1 WHERE key = 'chains_upto'")?
                .execute(params![self.sweep_upto.to_string()])?;
        }
        self.writing = end;
        Ok(())
    }

    /// After a batch: its links become heads if it committed, and its chunk of the sweep counts.
    pub(crate) fn end_batch(&mut self, committed: bool) {
        if !committed {
            self.pending.clear();
            self.writing = self.written;
            return;
        }
        let mut shared = lock(&self.shared);
        for (k, r) in self.pending.drain(..) {
            self.newest = self.newest.max(r);
            shared.fresh.insert(k, r);
        }
        if self.writing > self.written {
            self.written = self.writing;
            if self.written == self.sweep.len() {
                // the table now holds these heads: they stay in memory, bounded
                shared.sweeping = Arc::default();
                let done = std::mem::take(&mut self.sweep);
                if shared.swept.len() + done.len() > self.swept_max {
                    shared.swept.clear();
                }
                if done.len() <= self.swept_max {
                    // the writer holds the only other reference, just dropped: moved, not copied
                    match Arc::try_unwrap(done) {
                        Ok(done) => shared.swept.extend(done),
                        Err(done) => shared.swept.extend(done.iter().cloned()),
                    }
                }
                self.written = 0;
                self.writing = 0;
            }
        }
    }

    /// The writer's chains over an open database: the heads of the messages after the
    /// watermark ([`ensure`] made sure they are linked).
    pub(crate) fn recover(c: &Connection) -> StoreResult<Self> {
        let upto: i64 = c
            .query_row(
                "SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'chains_upto'",
                [],
                |r| r.get(0),
            )
            .map(Some)
            .or_else(|e| match e {
                rusqlite::Error::QueryReturnedNoRows => Ok(None),
                e => Err(e),
            })?
            .unwrap_or(0);
        let mut fresh = HashMap::new();
        let mut newest = upto;
        let mut stmt = c.prepare(
            "SELECT rowid, phone_id, wa_id FROM messages WHERE rowid > ?1 ORDER BY rowid",
        )?;
        let mut rows = stmt.query([upto])?;
        while let Some(row) = rows.next()? {
            let (r, p, w): (i64, String, String) = (row.get(0)?, row.get(1)?, row.get(2)?);
            newest = r;
            fresh.insert(PairKey::of(&p, &w), r);
            fresh.insert(PairKey::of(&p, ""), r);
        }
        let newest = newest.max(c.query_row(
            "SELECT COALESCE(MAX(rowid), 0) FROM messages",
            [],
            |r| r.get(0),
        )?);
        Ok(Chains {
            shared: Arc::new(Mutex::new(Committed {
                fresh,
                sweeping: Arc::default(),
                swept: HashMap::new(),
            })),
            pending: Vec::new(),
            sweep: Arc::default(),
            written: 0,
            writing: 0,
            sweep_upto: 0,
            last_sweep: Some(Instant::now()),
            chunk: SWEEP_CHUNK,
            swept_max: SWEPT_MAX,
            newest,
        })
    }

    pub(crate) fn shared(&self) -> Shared {
        self.shared.clone()
    }

    /// Tests: a sweep at the next batch (`due`) or not for an hour, `chunk` heads per batch.
    #[cfg(test)]
    pub(crate) fn sweep_at(&mut self, due: bool, chunk: usize) {
        self.last_sweep = (!due).then(|| Instant::now() + Duration::from_secs(3600));
        self.chunk = chunk;
    }

    /// Tests: at most `n` heads of finished sweeps in memory.
    #[cfg(test)]
    pub(crate) fn keep_swept(&mut self, n: usize) {
        self.swept_max = n;
    }
}

/// Builds every chain from the messages (a database from before the chains, or one just
/// imported, whose rowids are new): their links into a table of their own, `message_links`
/// (which [`move_links`] then moves into the messages' rows), their heads and the watermark;
/// and drops the index they replace. To run inside a transaction.
const BUILD: &str = "DROP TABLE IF EXISTS message_links; \
     CREATE TABLE message_links (message INTEGER PRIMARY KEY, pair_prev INTEGER, number_prev INTEGER); \
     INSERT INTO message_links (message, pair_prev, number_prev) \
       SELECT rowid, LAG(rowid) OVER (PARTITION BY phone_id, wa_id ORDER BY rowid), \
              LAG(rowid) OVER (PARTITION BY phone_id ORDER BY rowid) FROM messages; \
     DELETE FROM message_heads; \
     INSERT INTO message_heads (phone_id, wa_id, head) \
       SELECT phone_id, wa_id, MAX(rowid) FROM messages GROUP BY phone_id, wa_id; \
     INSERT INTO message_heads (phone_id, wa_id, head) \
       SELECT phone_id, '', MAX(rowid) FROM messages WHERE true GROUP BY phone_id \
       ON CONFLICT (phone_id, wa_id) DO UPDATE SET head = MAX(head, excluded.head); \
     INSERT INTO meta (key, value) VALUES ('chains_upto', \
       CAST((SELECT COALESCE(MAX(rowid), 0) FROM messages) AS TEXT)) \
       ON CONFLICT (key) DO UPDATE SET value = excluded.value; \
     DROP INDEX IF EXISTS messages_thread;";

/// Messages whose links one statement of [`move_links`] moves (by rowid).
const MOVE_CHUNK: i64 = 20_000;

/// Moves the links of the table `message_links` into the messages' rows (null ones as 0),
/// [`MOVE_CHUNK`] messages a statement, and drops the table. Its links are [`BUILD`]'s, or
/// those of a database whose builds kept them there (before the twenty-eighth round of
/// docs/BENCHMARKS.md), or of an older build that opened the database again (it makes the
/// table again, finds its chains incomplete and builds them there). With `own`, each statement
/// is a transaction of its own: the writer's connection does not spill (`greenlight_walbuf`),
/// so one transaction would hold every page of a million messages' rows in memory until its
/// `COMMIT`; moving the same links again is harmless, so a start cut short moves them again.
/// Without, it runs inside the caller's transaction.
fn move_links(c: &Connection, own: bool) -> StoreResult<()> {
    let in_one = |sql: &str, p: &[&dyn rusqlite::ToSql]| -> StoreResult<()> {
        let run = |c: &Connection| Ok(c.execute(sql, p).map(drop)?);
        if own {
            transaction(c, run)
        } else {
            run(c)
        }
    };
    let (first, last): (i64, i64) = c.query_row(
        "SELECT COALESCE(MIN(message), 1), COALESCE(MAX(message), 0) FROM message_links",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let mut after = first - 1;
    while after < last {
        let upto = after.saturating_add(MOVE_CHUNK);
        in_one(
            "UPDATE messages SET pair_prev = COALESCE(l.pair_prev, 0), \
               number_prev = COALESCE(l.number_prev, 0) \
             FROM message_links AS l \
             WHERE l.message > ?1 AND l.message <= ?2 AND messages.rowid = l.message",
            rusqlite::params![after, upto],
        )?;
        after = upto;
    }
    in_one("DROP TABLE message_links", &[])
}

/// Runs `f` on `c` in a transaction of its own: committed if it succeeds, rolled back if not.
fn transaction(c: &Connection, f: impl FnOnce(&Connection) -> StoreResult<()>) -> StoreResult<()> {
    c.execute_batch("BEGIN IMMEDIATE")?;
    match f(c) {
        Ok(()) => Ok(c.execute_batch("COMMIT")?),
        Err(e) => {
            let _ = c.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

/// Builds every chain from the messages ([`BUILD`], then [`move_links`]), inside the caller's
/// transaction: after `greenlight import` into SQLite, and in tests that write messages
/// without the writer.
pub(crate) fn rebuild(c: &Connection) -> StoreResult<()> {
    c.execute_batch(BUILD)?;
    move_links(c, false)
}

/// At every start: [`move_links`] for a database that has the links' table, then the chains
/// built again ([`BUILD`], then [`move_links`]) for one whose chains are missing or incomplete:
/// one with no watermark (older, or new), one with the index (an older build wrote to it
/// since), or one with a message after the watermark whose links are null (an older build,
/// which knows nothing of links, wrote it; every message before the watermark was linked when
/// the watermark passed it).
pub(crate) fn ensure(c: &Connection) -> StoreResult<()> {
    let in_table: bool = c.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'message_links')",
        [],
        |r| r.get(0),
    )?;
    if in_table {
        move_links(c, true)?;
    }
    let complete: bool = c.query_row(
        "SELECT EXISTS (SELECT 1 FROM meta WHERE key = 'chains_upto') \
           AND NOT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = 'messages_thread') \
           AND NOT EXISTS (SELECT 1 FROM messages WHERE number_prev IS NULL AND rowid > \
               (SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'chains_upto'))",
        [],
        |r| r.get(0),
    )?;
    if complete {
        return Ok(());
    }
    transaction(c, |c| Ok(c.execute_batch(BUILD)?))?;
    move_links(c, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sqlite::{SqlStore, SqliteOptions, SCHEMA};
    use crate::StoreError;

    /// Inserts an outbound message of `(phone, wa)` and links it, as the send path does; with
    /// `fail` the job then fails, and its savepoint rolls back.
    async fn message(s: &SqlStore, id: &str, phone: &str, wa: &str, fail: bool) -> StoreResult<()> {
        let (id, phone, wa) = (id.to_string(), phone.to_string(), wa.to_string());
        s.write_mem(move |c, mem| {
            insert(c, mem, &id, &phone, &wa)?;
            if fail {
                return Err(StoreError::Internal("the job fails".into()));
            }
            Ok(())
        })
        .await
    }

    /// A database path in a new temporary directory (kept while the directory lives).
    fn temp_db() -> (tempfile::TempDir, String) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db").to_string_lossy().to_string();
        (dir, path)
    }

    /// A database whose store wrote one linked message (`a1`, number `p1`, customer `w1`) and
    /// closed: the starting point of the tests that write behind its back.
    async fn one_message_written_and_closed() -> (tempfile::TempDir, String) {
        let (dir, path) = temp_db();
        let s = SqlStore::open(&path, SqliteOptions::default()).unwrap();
        message(&s, "a1", "p1", "w1", false).await.unwrap();
        s.close();
        drop(s);
        (dir, path)
    }

    /// Runs `sql` on the database at `path` through a connection of its own, as another build
    /// (or a hand) would.
    fn raw(path: &str, sql: &str) {
        Connection::open(path).unwrap().execute_batch(sql).unwrap();
    }

    /// Inserts an outbound message with its links, as the send path does.
    fn insert(
        c: &Conn,
        mem: &mut crate::sqlite::Memory,
        id: &str,
        phone: &str,
        wa: &str,
    ) -> StoreResult<()> {
        let chains = mem.chains.as_mut().expect("SQLite's chains");
        let link = chains.link(c, PairKey::of(phone, wa), phone, wa)?;
        c.execute(
            "INSERT INTO messages (id, business_id, phone_id, wa_id, direction, type, content, status, created_at, pair_prev, number_prev) \
             VALUES (?1, 'b1', ?2, ?3, 'out', 'text', '{}', 'sent', 1000, ?4, ?5)",
            params![id, phone, wa, link.pair_prev, link.number_prev],
        )?;
        chains.linked(link, c.last_insert_rowid());
        Ok(())
    }

    /// A thread's message ids, oldest first, as the sandbox lists them.
    async fn thread(s: &SqlStore, phone: &str, wa: &str) -> Vec<String> {
        let (shared, phone, wa) = (s.chains.clone(), phone.to_string(), wa.to_string());
        s.read(move |c| crate::sqlite::read::thread(c, shared.as_ref(), "b1", &phone, &wa, 0))
            .await
            .unwrap()
            .into_iter()
            .map(|m| m.id)
            .collect()
    }

    /// A number's message ids, newest first, by its chain.
    async fn number(s: &SqlStore, phone: &str) -> Vec<String> {
        let (shared, phone) = (s.chains.clone(), phone.to_string());
        s.read(move |c| {
            let head = committed_head(shared.as_ref(), c, &phone, "")?;
            let ids = c
                .prepare_cached(concat!(
                    chain_sql!("number_prev", "?1"),
                    "SELECT m.id FROM chain JOIN messages m ON m.rowid = chain.r"
                ))?
                .query_map(params![head], |r| r.get(0))?
                .collect::<Result<Vec<String>, _>>()?;
            Ok(ids)
        })
        .await
        .unwrap()
    }

    /// The watermark and the table's heads, `(phone, wa, message id)`.
    async fn stored(s: &SqlStore) -> (Option<i64>, Vec<(String, String, String)>) {
        s.read(|c| {
            let upto = c
                .query_row(
                    "SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'chains_upto'",
                    [],
                    |r| r.get(0),
                )
                .optional()?;
            let heads = c
                .prepare(
                    "SELECT h.phone_id, h.wa_id, m.id FROM message_heads h \
                     JOIN messages m ON m.rowid = h.head ORDER BY 1, 2",
                )?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<Result<Vec<_>, _>>()?;
            Ok((upto, heads))
        })
        .await
        .unwrap()
    }

    /// The writer's next sweep: at the next batch (`due`) or not for an hour, `chunk` heads per
    /// batch.
    async fn sweep_at(s: &SqlStore, due: bool, chunk: usize) {
        s.write_mem(move |_, mem| {
            mem.chains.as_mut().unwrap().sweep_at(due, chunk);
            Ok(())
        })
        .await
        .unwrap();
    }

    /// How many indexes named `messages_thread` the database has.
    async fn thread_indexes(s: &SqlStore) -> i64 {
        s.read(|c| {
            Ok(c.query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE name = 'messages_thread'",
                [],
                |r| r.get(0),
            )?)
        })
        .await
        .unwrap()
    }

    fn owned(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    /// Threads and numbers read back through their chains: across a rolled-back job, a sweep
    /// written over several batches (read in the middle of it), and a restart that forgets the
    /// heads the table does not hold yet.
    /// `ids`: two numbers, a third never written to, and two customers.
    async fn chains_hold_every_message(ids: [&str; 5]) {
        let [p1, p2, p3, w1, w2] = ids;
        let (_dir, path) = temp_db();
        let s = SqlStore::open(&path, SqliteOptions::default()).unwrap();
        sweep_at(&s, false, 1).await;
        // a new database: chains from the start, nothing swept
        assert_eq!(stored(&s).await, (Some(0), vec![]));
        message(&s, "a1", p1, w1, false).await.unwrap();
        message(&s, "b1", p1, w2, false).await.unwrap();
        // a job that rolls back leaves no head behind
        assert!(message(&s, "x", p1, w1, true).await.is_err());
        message(&s, "c1", p2, w1, false).await.unwrap();
        assert_eq!(thread(&s, p1, w1).await, owned(&["a1"]));
        assert_eq!(number(&s, p1).await, owned(&["b1", "a1"]));
        assert_eq!(stored(&s).await, (Some(0), vec![]));

        // a sweep of one head per batch (two with a2's, which linked two): 5 heads (3 threads,
        // 2 numbers), 4 batches
        sweep_at(&s, true, 1).await;
        let (upto, heads) = stored(&s).await;
        assert_eq!((upto, heads.len()), (Some(0), 1), "the first chunk");
        // a message during the sweep, and reads from both places
        message(&s, "a2", p1, w1, false).await.unwrap();
        assert_eq!(thread(&s, p1, w1).await, owned(&["a1", "a2"]));
        assert_eq!(number(&s, p1).await, owned(&["a2", "b1", "a1"]));
        // heads the sweep under way holds, none newer (p2's not yet written to the table)
        assert_eq!(thread(&s, p1, w2).await, owned(&["b1"]));
        assert_eq!(thread(&s, p2, w1).await, owned(&["c1"]));
        assert_eq!(number(&s, p2).await, owned(&["c1"]));
        for _ in 0..3 {
            s.write(|_| Ok(())).await.unwrap();
        }
        // the sweep covers the messages before it began (c1 is the 3rd row: x's was given back)
        let (upto, heads) = stored(&s).await;
        assert_eq!(upto, Some(3));
        // in the table's order (text), whatever order the sweep wrote them in
        let mut want = [
            (p1, "", "b1"),
            (p1, w1, "a1"),
            (p1, w2, "b1"),
            (p2, "", "c1"),
            (p2, w1, "c1"),
        ]
        .map(|(p, w, m)| (p.to_string(), w.to_string(), m.to_string()));
        want.sort();
        assert_eq!(heads, want);
        s.close();
        drop(s);

        // a restart: a2's heads were only in memory, and are found again from its row
        let s = SqlStore::open(&path, SqliteOptions::default()).unwrap();
        assert_eq!(thread(&s, p1, w1).await, owned(&["a1", "a2"]));
        assert_eq!(number(&s, p1).await, owned(&["a2", "b1", "a1"]));
        message(&s, "a3", p1, w1, false).await.unwrap();
        message(&s, "b2", p1, w2, false).await.unwrap();
        assert_eq!(thread(&s, p1, w1).await, owned(&["a1", "a2", "a3"]));
        assert_eq!(thread(&s, p1, w2).await, owned(&["b1", "b2"]));
        assert_eq!(thread(&s, p2, w1).await, owned(&["c1"]));
        assert_eq!(number(&s, p1).await, owned(&["b2", "a3", "a2", "b1", "a1"]));
        assert_eq!(number(&s, p2).await, owned(&["c1"]));
        assert!(thread(&s, p3, w1).await.is_empty());
        assert!(number(&s, p3).await.is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn chains_hold_every_message_across_sweeps_and_restarts() {
        chains_hold_every_message(["p1", "p2", "p3", "w1", "w2"]).await;
    }

    /// The same with ids that are numbers, as real ones are (held as integers by the writer),
    /// of different lengths, so that their text order is not their numeric order.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn chains_of_numeric_ids_hold_every_message_across_sweeps_and_restarts() {
        chains_hold_every_message(["106540352242922", "99", "0", "4915112345678", "16505551234"])
            .await;
    }

    /// The heads a finished sweep wrote stay in memory as the table holds them: a chain is found
    /// with the table's heads gone, a newer message wins over its kept head, and a sweep past the
    /// bound drops the kept heads, which are then the table's again.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn heads_of_a_finished_sweep_stay_in_memory_within_the_bound() {
        let (_dir, path) = temp_db();
        let s = SqlStore::open(&path, SqliteOptions::default()).unwrap();
        let forget_table = || async {
            s.write(|c| Ok(c.execute("DELETE FROM message_heads", params![])?))
                .await
                .unwrap()
        };
        sweep_at(&s, false, 512).await;
        message(&s, "a1", "p1", "w1", false).await.unwrap();
        message(&s, "b1", "p1", "w2", false).await.unwrap();
        // one sweep, in one batch: 3 heads (2 threads, 1 number), and nothing more for an hour
        sweep_at(&s, true, 512).await;
        sweep_at(&s, false, 512).await;
        assert_eq!(stored(&s).await.1.len(), 3);
        assert_eq!(forget_table().await, 3);
        assert_eq!(thread(&s, "p1", "w1").await, owned(&["a1"]));
        assert_eq!(thread(&s, "p1", "w2").await, owned(&["b1"]));
        assert_eq!(number(&s, "p1").await, owned(&["b1", "a1"]));
        // a newer message: its head is fresh, ahead of the kept one
        message(&s, "a2", "p1", "w1", false).await.unwrap();
        assert_eq!(thread(&s, "p1", "w1").await, owned(&["a1", "a2"]));
        assert_eq!(number(&s, "p1").await, owned(&["a2", "b1", "a1"]));
        // and once swept, it replaces the kept one
        sweep_at(&s, true, 512).await;
        sweep_at(&s, false, 512).await;
        assert_eq!(forget_table().await, 2);
        assert_eq!(thread(&s, "p1", "w1").await, owned(&["a1", "a2"]));
        assert_eq!(number(&s, "p1").await, owned(&["a2", "b1", "a1"]));
        message(&s, "a3", "p1", "w1", false).await.unwrap();

        // at most one kept head: the next sweep (a3's two heads) drops them all
        s.write_mem(|_, mem| {
            mem.chains.as_mut().unwrap().keep_swept(1);
            Ok(())
        })
        .await
        .unwrap();
        sweep_at(&s, true, 512).await;
        sweep_at(&s, false, 512).await;
        assert_eq!(forget_table().await, 2);
        assert!(
            thread(&s, "p1", "w2").await.is_empty(),
            "b1's head was the table's alone"
        );
        assert!(thread(&s, "p1", "w1").await.is_empty());
    }

    /// A database from before the chains gets them when it is opened, once, and loses the index
    /// they replace.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_older_database_gets_its_chains_and_loses_the_thread_index() {
        let (_dir, path) = temp_db();
        {
            let old = Connection::open(&path).unwrap();
            old.execute_batch(SCHEMA).unwrap();
            old.execute_batch(
                "DROP TABLE message_heads; \
                 CREATE INDEX messages_thread ON messages(phone_id, wa_id, created_at);",
            )
            .unwrap();
            for (id, p, w) in [
                ("m1", "p1", "w1"),
                ("m2", "p1", "w2"),
                ("m3", "p1", "w1"),
                ("m4", "p2", "w1"),
            ] {
                old.execute(
                    "INSERT INTO messages (id, business_id, phone_id, wa_id, direction, type, content, status, created_at) \
                     VALUES (?1, 'b1', ?2, ?3, 'out', 'text', '{}', 'sent', 1000)",
                    [id, p, w],
                )
                .unwrap();
            }
        }
        let s = SqlStore::open(&path, SqliteOptions::default()).unwrap();
        assert_eq!(stored(&s).await.0, Some(4));
        assert_eq!(thread(&s, "p1", "w1").await, owned(&["m1", "m3"]));
        assert_eq!(thread(&s, "p2", "w1").await, owned(&["m4"]));
        assert_eq!(number(&s, "p1").await, owned(&["m3", "m2", "m1"]));
        message(&s, "m5", "p1", "w1", false).await.unwrap();
        s.close();
        drop(s);
        // built once: the second start finds m5 from its row, as any start does
        let s = SqlStore::open(&path, SqliteOptions::default()).unwrap();
        assert_eq!(thread(&s, "p1", "w1").await, owned(&["m1", "m3", "m5"]));
        assert_eq!(number(&s, "p1").await, owned(&["m5", "m3", "m2", "m1"]));
        assert_eq!(thread_indexes(&s).await, 0);
    }

    /// A database whose links are rows of their own table (`message_links`, before the
    /// twenty-eighth round) opens with them in its messages' rows and without the table; so
    /// does the table an older build makes again and writes a message's links to.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn links_kept_in_their_own_table_move_into_the_messages() {
        let (_dir, path) = temp_db();
        let s = SqlStore::open(&path, SqliteOptions::default()).unwrap();
        for (id, p, w) in [("a1", "p1", "w1"), ("b1", "p1", "w2"), ("c1", "p2", "w1")] {
            message(&s, id, p, w, false).await.unwrap();
        }
        sweep_at(&s, true, 512).await;
        s.close();
        drop(s);
        // the earlier format: the links in their table, the messages without the columns;
        // a1 (rowid 1) is a thread's and a number's first, b1 (2) follows it on p1
        raw(
            &path,
            "CREATE TABLE message_links (message INTEGER PRIMARY KEY, pair_prev INTEGER, number_prev INTEGER); \
             INSERT INTO message_links SELECT rowid, NULLIF(pair_prev, 0), NULLIF(number_prev, 0) FROM messages; \
             ALTER TABLE messages DROP COLUMN pair_prev; ALTER TABLE messages DROP COLUMN number_prev;",
        );
        let links = || {
            let c = Connection::open(&path).unwrap();
            let table: i64 = c
                .query_row(
                    "SELECT COUNT(*) FROM sqlite_master WHERE name = 'message_links'",
                    [],
                    |r| r.get(0),
                )
                .unwrap();
            let rows = c
                .prepare("SELECT id, pair_prev, number_prev FROM messages ORDER BY rowid")
                .unwrap()
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .unwrap()
                .collect::<Result<Vec<(String, Option<i64>, Option<i64>)>, _>>()
                .unwrap();
            (table, rows)
        };
        let s = SqlStore::open(&path, SqliteOptions::default()).unwrap();
        let row = |id: &str, p: i64, n: i64| (id.to_string(), Some(p), Some(n));
        assert_eq!(
            links(),
            (0, vec![row("a1", 0, 0), row("b1", 0, 1), row("c1", 0, 0)])
        );
        assert_eq!(thread(&s, "p1", "w1").await, owned(&["a1"]));
        assert_eq!(number(&s, "p1").await, owned(&["b1", "a1"]));
        message(&s, "a2", "p1", "w1", false).await.unwrap();
        s.close();
        drop(s);
        // an older build again: its table back, a message with its links there only
        raw(
            &path,
            "CREATE TABLE message_links (message INTEGER PRIMARY KEY, pair_prev INTEGER, number_prev INTEGER); \
             INSERT INTO messages (id, business_id, phone_id, wa_id, direction, type, content, status, created_at) \
             VALUES ('a3', 'b1', 'p1', 'w1', 'out', 'text', '{}', 'sent', 1000); \
             INSERT INTO message_links VALUES (5, 4, 4);",
        );
        let s = SqlStore::open(&path, SqliteOptions::default()).unwrap();
        assert_eq!(links().0, 0);
        assert_eq!(links().1[4], row("a3", 4, 4));
        assert_eq!(thread(&s, "p1", "w1").await, owned(&["a1", "a2", "a3"]));
        assert_eq!(number(&s, "p1").await, owned(&["a3", "a2", "b1", "a1"]));
        assert_eq!(thread(&s, "p2", "w1").await, owned(&["c1"]));
    }

    /// Links moved in several transactions (more messages than one moves): every message's
    /// columns are set, and a chain that crosses them reads whole.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn many_messages_links_move_in_chunks() {
        let (_dir, path) = temp_db();
        let n = 2 * MOVE_CHUNK + 5;
        {
            // the earlier format: every message of number p1, alternately of w1 and w2
            let old = Connection::open(&path).unwrap();
            old.execute_batch(SCHEMA).unwrap();
            old.execute_batch(
                "ALTER TABLE messages DROP COLUMN pair_prev; ALTER TABLE messages DROP COLUMN number_prev; \
                 CREATE TABLE message_links (message INTEGER PRIMARY KEY, pair_prev INTEGER, number_prev INTEGER);",
            )
            .unwrap();
            old.execute(
                "WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < ?1) \
                 INSERT INTO messages (rowid, id, business_id, phone_id, wa_id, direction, type, content, status, created_at) \
                 SELECT i, 'm' || i, 'b1', 'p1', 'w' || (1 + i % 2), 'out', 'text', '{}', 'sent', 1000 FROM k",
                [n],
            )
            .unwrap();
            old.execute_batch(
                "INSERT INTO message_links SELECT rowid, \
                   LAG(rowid) OVER (PARTITION BY phone_id, wa_id ORDER BY rowid), \
                   LAG(rowid) OVER (PARTITION BY phone_id ORDER BY rowid) FROM messages; \
                 INSERT INTO meta (key, value) VALUES ('chains_upto', '0') \
                   ON CONFLICT (key) DO UPDATE SET value = excluded.value;",
            )
            .unwrap();
        }
        let s = SqlStore::open(&path, SqliteOptions::default()).unwrap();
        let unlinked: i64 = Connection::open(&path)
            .unwrap()
            .query_row(
                "SELECT COUNT(*) FROM messages WHERE pair_prev IS NULL OR number_prev IS NULL",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(unlinked, 0);
        let all = number(&s, "p1").await;
        assert_eq!(all.len() as i64, n);
        assert_eq!(
            (all[0].as_str(), all[all.len() - 1].as_str()),
            (format!("m{n}").as_str(), "m1")
        );
        let w2 = thread(&s, "p1", "w2").await;
        assert_eq!(w2.len() as i64, (n + 1) / 2);
    }

    /// A message without links after the watermark, followed by a linked one (which skips it),
    /// does not cut its chains: the start builds them again.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_unlinked_message_before_linked_ones_gets_its_chains_built() {
        let (_dir, path) = one_message_written_and_closed().await;
        // a2 without links, then a3 linked to a1 (rowid 1), the head a writer knew
        raw(
            &path,
            "INSERT INTO messages (id, business_id, phone_id, wa_id, direction, type, content, status, created_at) \
             VALUES ('a2', 'b1', 'p1', 'w1', 'out', 'text', '{}', 'sent', 1000); \
             INSERT INTO messages (id, business_id, phone_id, wa_id, direction, type, content, status, created_at, pair_prev, number_prev) \
             VALUES ('a3', 'b1', 'p1', 'w1', 'out', 'text', '{}', 'sent', 1000, 1, 1)",
        );
        let s = SqlStore::open(&path, SqliteOptions::default()).unwrap();
        assert_eq!(thread(&s, "p1", "w1").await, owned(&["a1", "a2", "a3"]));
        assert_eq!(number(&s, "p1").await, owned(&["a3", "a2", "a1"]));
    }

    /// `greenlight import` into SQLite builds the chains of the messages it wrote (the dump
    /// leaves out the links, whose rowids would not hold).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_import_into_sqlite_builds_the_chains() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("source.db").to_string_lossy().to_string();
        let s = SqlStore::open(&source, SqliteOptions::default()).unwrap();
        for (id, p, w) in [("a1", "p1", "w1"), ("b1", "p1", "w2"), ("a2", "p1", "w1")] {
            message(&s, id, p, w, false).await.unwrap();
        }
        s.close();
        drop(s);
        let mut dump = Vec::new();
        crate::transfer::export(&format!("sqlite://{source}"), &mut dump).unwrap();
        let target = dir.path().join("target.db").to_string_lossy().to_string();
        crate::transfer::import(&format!("sqlite://{target}"), &mut dump.as_slice()).unwrap();
        let s = SqlStore::open(&target, SqliteOptions::default()).unwrap();
        assert_eq!(thread(&s, "p1", "w1").await, owned(&["a1", "a2"]));
        assert_eq!(number(&s, "p1").await, owned(&["a2", "b1", "a1"]));
        message(&s, "a3", "p1", "w1", false).await.unwrap();
        assert_eq!(thread(&s, "p1", "w1").await, owned(&["a1", "a2", "a3"]));
    }

    /// Inside one batch a message links to the batch's earlier ones; a job without a savepoint
    /// that fails after linking rolls its whole batch back, links included.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_batch_links_its_own_messages_and_a_failed_batch_none() {
        let (_dir, path) = temp_db();
        let s = SqlStore::open(&path, SqliteOptions::default()).unwrap();
        let several = |ids: &'static [(&'static str, &'static str)], fail: bool| {
            move |c: &Conn, mem: &mut crate::sqlite::Memory| -> StoreResult<()> {
                for (id, wa) in ids {
                    insert(c, mem, id, "p1", wa)?;
                }
                if fail {
                    return Err(StoreError::Internal("the batch fails".into()));
                }
                Ok(())
            }
        };
        s.write_fast(several(&[("a1", "w1"), ("b1", "w2"), ("a2", "w1")], false))
            .await
            .unwrap();
        assert_eq!(thread(&s, "p1", "w1").await, owned(&["a1", "a2"]));
        assert_eq!(number(&s, "p1").await, owned(&["a2", "b1", "a1"]));
        let failed = s
            .write_fast(several(&[("x1", "w1"), ("x2", "w2")], true))
            .await;
        assert!(failed.is_err());
        message(&s, "a3", "p1", "w1", false).await.unwrap();
        assert_eq!(thread(&s, "p1", "w1").await, owned(&["a1", "a2", "a3"]));
        assert_eq!(thread(&s, "p1", "w2").await, owned(&["b1"]));
        assert_eq!(number(&s, "p1").await, owned(&["a3", "a2", "b1", "a1"]));
    }

    /// A restart in the middle of a sweep (some heads written, the watermark not): the start
    /// reads every link after the old watermark, and the chains are whole.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_restart_in_the_middle_of_a_sweep_loses_no_head() {
        let (_dir, path) = temp_db();
        let s = SqlStore::open(&path, SqliteOptions::default()).unwrap();
        sweep_at(&s, false, 1).await;
        for (id, p, w) in [("a1", "p1", "w1"), ("b1", "p1", "w2"), ("c1", "p2", "w1")] {
            message(&s, id, p, w, false).await.unwrap();
        }
        sweep_at(&s, true, 1).await;
        message(&s, "a2", "p1", "w1", false).await.unwrap();
        let (upto, heads) = stored(&s).await;
        assert_eq!(
            (upto, heads.len()),
            (Some(0), 3),
            "two chunks (1 head, then a2's batch's 2: a chunk is at least the batch's links), no watermark"
        );
        s.close();
        drop(s);
        let s = SqlStore::open(&path, SqliteOptions::default()).unwrap();
        assert_eq!(thread(&s, "p1", "w1").await, owned(&["a1", "a2"]));
        assert_eq!(thread(&s, "p1", "w2").await, owned(&["b1"]));
        assert_eq!(thread(&s, "p2", "w1").await, owned(&["c1"]));
        assert_eq!(number(&s, "p1").await, owned(&["a2", "b1", "a1"]));
        message(&s, "b2", "p1", "w2", false).await.unwrap();
        assert_eq!(number(&s, "p1").await, owned(&["b2", "a2", "b1", "a1"]));
    }

    /// Messages an older build wrote after the chains existed (it knows nothing of links, and
    /// brings its index back) are found: the chains are built again at the next start.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn messages_written_without_links_get_them_at_the_next_start() {
        let (_dir, path) = one_message_written_and_closed().await;
        // an unlinked message after the links
        raw(
            &path,
            "INSERT INTO messages (id, business_id, phone_id, wa_id, direction, type, content, status, created_at) \
             VALUES ('a2', 'b1', 'p1', 'w1', 'out', 'text', '{}', 'sent', 1000)",
        );
        let s = SqlStore::open(&path, SqliteOptions::default()).unwrap();
        assert_eq!(thread(&s, "p1", "w1").await, owned(&["a1", "a2"]));
        s.close();
        drop(s);
        // the index, back: the older build wrote through it
        raw(
            &path,
            "CREATE INDEX messages_thread ON messages(phone_id, wa_id, created_at)",
        );
        let s = SqlStore::open(&path, SqliteOptions::default()).unwrap();
        assert_eq!(thread(&s, "p1", "w1").await, owned(&["a1", "a2"]));
        assert_eq!(thread_indexes(&s).await, 0);
    }
}
