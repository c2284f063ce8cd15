//! The PostgreSQL backend: several greenlight nodes on one database, the same rules, exact.
//!
//! It is the SQLite store's machinery ([`crate::sqlite::SqlStore`]) over a PostgreSQL client:
//! the same jobs (one body of SQL, see [`crate::db`]), writer threads that group-commit
//! batches — on each node one for instance-wide jobs and one per business shard
//! ([`WRITE_SHARDS`]), each with its own connection — and a small pool of reader connections
//! for GET paths.
//!
//! **Exactness across nodes.** An instance-wide batch begins with
//! `SELECT pg_advisory_xact_lock(WRITE_LOCK)`; a shard's batch takes `WRITE_LOCK` shared, then
//! its shard's lock ([`shard_begin`]). Instance-wide batches therefore never interleave with any
//! other batch of any node, and the batches of one shard never interleave with each other: jobs
//! of one business go to its shard ([`shard_of`], the same on every node) and only jobs that
//! write rows of their business alone are routed there ([`crate::sqlite::Route`]). A job's
//! reads, the engine's decision and the job's writes therefore see every effect committed before
//! and none committed concurrently that could change them, exactly as jobs never interleave on
//! SQLite's single writer: a messaging limit of 250 admits exactly 250 new customers however
//! many nodes race. The pacing buckets, kept in the writer's memory on SQLite, live in the
//! `pacing_buckets` table here and are read and written inside the same batch. The locks are
//! released by the batch's `COMMIT` (or `ROLLBACK`, or the connection's death).
//!
//! **Lost connections.** A connection error is `StoreError::Unavailable` (HTTP 503, code 2).
//! Each writer re-opens its connection on the next job (at most every 50 ms, backing off to
//! 2 s); readers re-open theirs on next use. A job is answered `Ok` only after `COMMIT`
//! returned; when `COMMIT`'s outcome is unknown the job answers unavailable and the client
//! retries with its Idempotency-Key.

use crate::db::{Conn, PgConn};
use crate::sqlite::{Backend, Connector, SqlStore};
use crate::{StoreError, StoreResult};
use std::sync::Arc;
use std::time::Duration;

pub mod testing;

/// The advisory lock every write batch holds: exclusively for instance-wide batches (one at a
/// time across all nodes, and none beside them), shared for business shards' batches.
pub const WRITE_LOCK: i64 = 0x676c_7772; // "glwr"
/// The class of the shards' advisory locks (`pg_advisory_xact_lock(SHARD_LOCK_CLASS, shard)`, a
/// key space apart from `WRITE_LOCK`'s): one batch of a shard at a time across all nodes.
pub const SHARD_LOCK_CLASS: i32 = 0x676c_7773; // "glws"
/// Business shards: each node runs one writer per shard besides its instance-wide writer. Every
/// node must count the same shards (a business's shard is [`shard_of`] its id): this is a
/// constant of the code, not a setting.
pub const WRITE_SHARDS: usize = 8;
/// The advisory lock of the migrations: nodes starting together migrate one after another.
pub const MIGRATE_LOCK: i64 = 0x676c_6d67; // "glmg"

/// The migrations, in order. A migration is applied once, recorded in `schema_migrations`.
pub const MIGRATIONS: &[(&str, &str)] = &[
    ("0001_init", include_str!("migrations/0001_init.sql")),
    ("0002_gateway", include_str!("migrations/0002_gateway.sql")),
    (
        "0003_config_version",
        include_str!("migrations/0003_config_version.sql"),
    ),
    ("0004_reach", include_str!("migrations/0004_reach.sql")),
    (
        "0005_outbox_indexes",
        include_str!("migrations/0005_outbox_indexes.sql"),
    ),
    (
        "0006_hot_updates",
        include_str!("migrations/0006_hot_updates.sql"),
    ),
    (
        "0007_message_room",
        include_str!("migrations/0007_message_room.sql"),
    ),
    (
        "0008_bytewise_text",
        include_str!("migrations/0008_bytewise_text.sql"),
    ),
    (
        "0009_status_columns",
        include_str!("migrations/0009_status_columns.sql"),
    ),
    (
        "0010_config_templates",
        include_str!("migrations/0010_config_templates.sql"),
    ),
    (
        "0011_reach_log_index",
        include_str!("migrations/0011_reach_log_index.sql"),
    ),
    (
        "0012_outbox_blocks",
        include_str!("migrations/0012_outbox_blocks.sql"),
    ),
    (
        "0013_shard_epochs",
        include_str!("migrations/0013_shard_epochs.sql"),
    ),
];

/// The shard of a business portfolio, the same on every node and every build (FNV-1a of its id).
pub fn shard_of(business_id: &str) -> usize {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in business_id.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h % WRITE_SHARDS as u64) as usize
}

/// How this build shards businesses; every node on one database must shard alike.
fn sharding() -> String {
    format!("{WRITE_SHARDS} shards, fnv1a-64")
}

/// Records this build's sharding in the database, or refuses to start beside nodes that shard
/// otherwise (they would lock one business under two different shard locks, and its limits
/// would no longer be exact). Nodes of a build before shards take only the instance-wide lock,
/// exclusively: they may run beside any.
fn check_sharding(conn: &Conn) -> StoreResult<()> {
    let mine = sharding();
    conn.execute(
        "INSERT INTO meta (key, value) VALUES ('write_shards', ?1) ON CONFLICT (key) DO NOTHING",
        [&mine],
    )?;
    let theirs: String = conn.query_row(
        "SELECT value FROM meta WHERE key = 'write_shards'",
        [],
        |r| r.get(0),
    )?;
    if theirs != mine {
        return Err(StoreError::Internal(format!(
            "this database's nodes run {theirs}, this build runs {mine}: run one build on \
             every node (after stopping them all, delete the `write_shards` row of `meta`)"
        )));
    }
    Ok(())
}

/// Opens a batch of a shard's writer: beside other shards' batches, after every instance-wide
/// batch that came first, and one at a time with the same shard's batches of other nodes. Under
/// the shard's lock it takes the next value of the shard's counter of batches (the sequence
/// `shard_epoch_<shard>`, migration 0013) and answers one row: that value and the configuration
/// counter, as the batch starts (see [`crate::sqlite::Memory::begun`]).
pub(crate) fn shard_begin(shard: usize) -> String {
    format!(
        "BEGIN ISOLATION LEVEL READ COMMITTED; SELECT pg_advisory_xact_lock_shared({WRITE_LOCK}); \
         SELECT pg_advisory_xact_lock({SHARD_LOCK_CLASS}, {shard}); \
         SELECT nextval('shard_epoch_{shard}'), (SELECT n FROM config_version WHERE id = 1)"
    )
}

/// Run by an instance-wide batch before its first job that may change what a send reads of its
/// customer ([`crate::sqlite::Facts::May`]), and by an import: moves every shard's counter, so
/// that no shard's writer keeps what it knew of its customers past it.
pub(crate) fn bump_epochs() -> String {
    let values: Vec<String> = (0..WRITE_SHARDS)
        .map(|shard| format!("nextval('shard_epoch_{shard}')"))
        .collect();
    format!("SELECT {}", values.join(", "))
}

#[derive(Debug, Clone)]
pub struct PostgresOptions {
    /// Reader connections for GET paths.
    pub readers: usize,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        PostgresOptions { readers: 4 }
    }
}

/// Is this a PostgreSQL URL?
pub fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// The PostgreSQL store: the shared SQL store over PostgreSQL connections.
pub type PostgresStore = SqlStore;

/// Runs `f` on a fresh thread: a PostgreSQL connection runs its own runtime and must not be
/// used from inside an async context.
fn off_runtime<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| s.spawn(f).join().expect("a database thread panicked"))
}

fn config(url: &str) -> StoreResult<tokio_postgres::Config> {
    let mut c: tokio_postgres::Config = url
        .parse()
        .map_err(|e| StoreError::Internal(format!("invalid PostgreSQL URL: {e}")))?;
    if c.get_connect_timeout().is_none() {
        c.connect_timeout(Duration::from_secs(5));
    }
    c.keepalives(true);
    c.keepalives_idle(Duration::from_secs(30));
    c.application_name("greenlight");
    Ok(c)
}

fn connect(c: &tokio_postgres::Config) -> StoreResult<Conn> {
    Ok(Conn::Pg(Box::new(PgConn::connect(c)?)))
}

/// Applies the migrations not applied yet (under an advisory lock, so nodes starting
/// together do not race). Returns the versions applied now.
pub fn migrate(url: &str) -> StoreResult<Vec<String>> {
    let c = config(url)?;
    off_runtime(move || {
        let conn = connect(&c)?;
        migrate_conn(&conn)
    })
}

/// One connection to `url`, migrated (for command-line tools). Call it off any async context.
pub(crate) fn connect_migrated(url: &str) -> StoreResult<Conn> {
    let conn = connect(&config(url)?)?;
    migrate_conn(&conn)?;
    Ok(conn)
}

fn migrate_conn(conn: &Conn) -> StoreResult<Vec<String>> {
    conn.execute_batch(&format!(
        "BEGIN; SELECT pg_advisory_xact_lock({MIGRATE_LOCK}); \
         CREATE TABLE IF NOT EXISTS schema_migrations (version TEXT PRIMARY KEY, applied_at BIGINT NOT NULL);"
    ))?;
    let run = || -> StoreResult<Vec<String>> {
        let mut applied = Vec::new();
        for (version, sql) in MIGRATIONS {
            let done = conn
                .query_row(
                    "SELECT 1 FROM schema_migrations WHERE version = ?1",
                    [version],
                    |_| Ok(()),
                )
                .map(|_| true)
                .or_else(|e| match e {
                    crate::db::Error::NoRows => Ok(false),
                    e => Err(e),
                })?;
            if done {
                continue;
            }
            conn.execute_batch(sql)?;
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as i64)
                .unwrap_or(0);
            conn.execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)",
                crate::params![version, now],
            )?;
            applied.push(version.to_string());
        }
        conn.execute(
            "INSERT INTO meta (key, value) VALUES ('schema_version', '1') ON CONFLICT DO NOTHING",
            [],
        )?;
        Ok(applied)
    };
    match run() {
        Ok(v) => {
            conn.execute_batch("COMMIT")?;
            Ok(v)
        }
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

impl SqlStore {
    /// Opens the PostgreSQL store at `url`, applying migrations first.
    pub fn open_postgres(url: &str, opts: PostgresOptions) -> StoreResult<Self> {
        let c = config(url)?;
        let (writers, readers) = off_runtime(|| -> StoreResult<(Vec<Conn>, Vec<Conn>)> {
            let writer = connect(&c)?;
            migrate_conn(&writer)?;
            check_sharding(&writer)?;
            let mut writers = vec![writer];
            for _ in 0..WRITE_SHARDS {
                writers.push(connect(&c)?);
            }
            let mut readers = Vec::new();
            for _ in 0..opts.readers.max(1) {
                readers.push(connect(&c)?);
            }
            Ok((writers, readers))
        })?;
        let connector: Connector = Arc::new(move || connect(&c));
        let mut begins = vec![BEGIN.to_string()];
        begins.extend((0..WRITE_SHARDS).map(shard_begin));
        Self::start(
            writers,
            None,
            readers,
            Backend {
                begins,
                connector: Some(connector),
            },
            None,
            None,
        )
    }
}

/// Opens an instance-wide write batch: one at a time across every node, and none beside it
/// (see the module docs).
pub(crate) const BEGIN: &str =
    "BEGIN ISOLATION LEVEL READ COMMITTED; SELECT pg_advisory_xact_lock(1735161714)";

#[cfg(test)]
mod tests {
    use super::testing::TestDb;
    use super::*;
    use crate::params;
    use crate::sqlite::{Facts, Memory, Route};
    use crate::testkit::tenant;

    #[test]
    fn begin_takes_the_write_lock() {
        assert!(BEGIN.ends_with(&format!("pg_advisory_xact_lock({WRITE_LOCK})")));
    }

    /// Two stores (two nodes) on one database race read-modify-write jobs on one counter: the
    /// write lock serializes their batches, so no increment is lost. Without it, READ
    /// COMMITTED lets two batches read the same value (checked: about half are lost).
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn two_nodes_never_interleave_their_write_batches() {
        let Some(db) = TestDb::create("two_nodes_never_interleave_their_write_batches") else {
            return;
        };
        let a = Arc::new(SqlStore::open_postgres(&db.url, PostgresOptions::default()).unwrap());
        let b = Arc::new(SqlStore::open_postgres(&db.url, PostgresOptions::default()).unwrap());
        a.write(|c| {
            c.execute("INSERT INTO meta (key, value) VALUES ('n', '0')", [])?;
            Ok(())
        })
        .await
        .unwrap();
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..400 {
            let s = if i % 2 == 0 { a.clone() } else { b.clone() };
            tasks.spawn(async move {
                s.write(|c| {
                    let n: String =
                        c.query_row("SELECT value FROM meta WHERE key = 'n'", [], |r| r.get(0))?;
                    let n: i64 = n.parse().unwrap();
                    c.execute(
                        "UPDATE meta SET value = ?1 WHERE key = 'n'",
                        [(n + 1).to_string()],
                    )?;
                    Ok(())
                })
                .await
            });
        }
        while let Some(r) = tasks.join_next().await {
            r.unwrap().unwrap();
        }
        let n: String = b
            .read(|c| Ok(c.query_row("SELECT value FROM meta WHERE key = 'n'", [], |r| r.get(0))?))
            .await
            .unwrap();
        assert_eq!(n, "400");
        // migrations ran once, though two nodes started
        let applied: i64 = a
            .read(|c| Ok(c.query_row("SELECT COUNT(*) FROM schema_migrations", [], |r| r.get(0))?))
            .await
            .unwrap();
        assert_eq!(applied, MIGRATIONS.len() as i64);
        a.close();
        b.close();
    }

    /// Two businesses whose shards differ.
    fn businesses_in_two_shards() -> (String, String) {
        let a = "business-0".to_string();
        let b = (1..)
            .map(|i| format!("business-{i}"))
            .find(|b| shard_of(b) != shard_of(&a))
            .unwrap();
        (a, b)
    }

    /// Another node's session: takes `lock` (a session-level advisory lock) and holds it until
    /// the returned sender is dropped.
    fn hold(url: &str, lock: String) -> std::sync::mpsc::Sender<()> {
        let (held_tx, held) = std::sync::mpsc::channel::<()>();
        let (release, released) = std::sync::mpsc::channel::<()>();
        let url = url.to_string();
        std::thread::spawn(move || {
            let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
            c.batch_execute(&format!("SELECT {lock}")).unwrap();
            held_tx.send(()).unwrap();
            let _ = released.recv();
            c.batch_execute("SELECT pg_advisory_unlock_all()").unwrap();
        });
        held.recv().expect("the lock was taken");
        release
    }

    /// Waits until `n` advisory lock requests of the database wait.
    async fn until_waiting(db: &TestDb, n: i64) {
        let sql = "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted \
                   AND database = (SELECT oid FROM pg_database WHERE datname = current_database())";
        for _ in 0..1000 {
            if db.count(sql) >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("{n} advisory lock request(s) never waited");
    }

    async fn meta_keys(s: &SqlStore) -> Vec<String> {
        s.read(|c| {
            let mut st = c.prepare("SELECT key FROM meta WHERE value = 'x' ORDER BY key")?;
            let rows = st.query_map([], |r| r.get(0))?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
        .unwrap()
    }

    /// A business's jobs wait for its shard's lock alone: when another node holds one shard, the
    /// other shards' batches commit, and instance-wide batches wait for every shard's batch
    /// under way; an instance-wide batch of another node holds every shard back.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_shard_waits_for_its_own_lock_and_for_instance_wide_batches() {
        let Some(db) =
            TestDb::create("a_shard_waits_for_its_own_lock_and_for_instance_wide_batches")
        else {
            return;
        };
        let s = Arc::new(SqlStore::open_postgres(&db.url, PostgresOptions::default()).unwrap());
        let put = |s: &Arc<SqlStore>, route: Option<String>, key: &'static str| {
            let s = s.clone();
            tokio::spawn(async move {
                let job = move |c: &Conn, _: &mut Memory| -> StoreResult<()> {
                    c.execute("INSERT INTO meta (key, value) VALUES (?1, 'x')", [key])?;
                    Ok(())
                };
                match &route {
                    Some(b) => s.write_fast_on(Route::Business(b), Facts::May, job).await,
                    None => s.write_mem(job).await,
                }
            })
        };
        let within = |h| tokio::time::timeout(Duration::from_secs(10), h);
        let (a, b) = businesses_in_two_shards();

        // another node's batch holds a's shard
        let release = hold(
            &db.url,
            format!("pg_advisory_lock({SHARD_LOCK_CLASS}, {})", shard_of(&a)),
        );
        let job_a = put(&s, Some(a.clone()), "a");
        until_waiting(&db, 1).await;
        within(put(&s, Some(b.clone()), "b"))
            .await
            .expect("b's shard does not wait for a's")
            .unwrap()
            .unwrap();
        let global = put(&s, None, "global");
        until_waiting(&db, 2).await;
        assert!(!job_a.is_finished() && !global.is_finished());
        assert_eq!(meta_keys(&s).await, ["b"]);
        drop(release);
        within(job_a).await.unwrap().unwrap().unwrap();
        within(global).await.unwrap().unwrap().unwrap();
        assert_eq!(meta_keys(&s).await, ["a", "b", "global"]);

        // another node's instance-wide batch holds every shard
        let release = hold(&db.url, format!("pg_advisory_lock({WRITE_LOCK})"));
        let job_b = put(&s, Some(b.clone()), "b2");
        until_waiting(&db, 1).await;
        assert!(!job_b.is_finished());
        drop(release);
        within(job_b).await.unwrap().unwrap().unwrap();
        s.close();
    }

    /// Two nodes race read-modify-write jobs on per-business counters, each on its business's
    /// shard: no increment is lost, as the shard's lock serializes the batches of one business
    /// across nodes while different businesses run side by side.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn two_nodes_never_interleave_the_batches_of_one_business() {
        let Some(db) = TestDb::create("two_nodes_never_interleave_the_batches_of_one_business")
        else {
            return;
        };
        let a = Arc::new(SqlStore::open_postgres(&db.url, PostgresOptions::default()).unwrap());
        let b = Arc::new(SqlStore::open_postgres(&db.url, PostgresOptions::default()).unwrap());
        let businesses: Vec<String> = (0..6).map(|i| format!("business-{i}")).collect();
        let shards: std::collections::HashSet<usize> =
            businesses.iter().map(|b| shard_of(b)).collect();
        assert!(shards.len() > 1, "the businesses span several shards");
        for biz in &businesses {
            let key = format!("n:{biz}");
            a.write(move |c| {
                c.execute("INSERT INTO meta (key, value) VALUES (?1, '0')", [key])?;
                Ok(())
            })
            .await
            .unwrap();
        }
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..600 {
            // every business from both nodes
            let s = if (i / businesses.len()).is_multiple_of(2) {
                a.clone()
            } else {
                b.clone()
            };
            let biz = businesses[i % businesses.len()].clone();
            tasks.spawn(async move {
                let key = format!("n:{biz}");
                s.write_fast_on(Route::Business(&biz), Facts::May, move |c, _| {
                    let n: String =
                        c.query_row("SELECT value FROM meta WHERE key = ?1", [&key], |r| {
                            r.get(0)
                        })?;
                    let n: i64 = n.parse().unwrap();
                    c.execute(
                        "UPDATE meta SET value = ?1 WHERE key = ?2",
                        [(n + 1).to_string(), key.clone()],
                    )?;
                    Ok(())
                })
                .await
            });
        }
        while let Some(r) = tasks.join_next().await {
            r.unwrap().unwrap();
        }
        for biz in &businesses {
            let key = format!("n:{biz}");
            let n: String = b
                .read(move |c| {
                    Ok(c.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))?)
                })
                .await
                .unwrap();
            assert_eq!(n, "100", "{biz}");
        }
        a.close();
        b.close();
    }

    /// Two nodes run the same due deliveries at once, of businesses in several shards (on
    /// their shards' writers), with two tasks for some messages, and of a message that does
    /// not exist (instance-wide): each message is delivered once, with one status row and one
    /// webhook event, and every task is gone. A task due after the deliveries (instance-wide)
    /// runs after they committed.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn two_nodes_run_each_due_delivery_once() {
        use crate::Store;
        let Some(db) = TestDb::create("two_nodes_run_each_due_delivery_once") else {
            return;
        };
        let a = SqlStore::open_postgres(&db.url, PostgresOptions::default()).unwrap();
        let b = SqlStore::open_postgres(&db.url, PostgresOptions::default()).unwrap();
        let mut shards = std::collections::HashSet::new();
        for t in 0..4 {
            let tenant = tenant(&a, &format!("B{t}"), &[&format!("+1 555 010 000{t}")]).await;
            shards.insert(shard_of(&tenant.business_id));
            let (business, phone) = (tenant.business_id, tenant.phone_numbers[0].id.clone());
            a.write(move |c| {
                for i in 0..25 {
                    let wamid = format!("wamid.{business}.{i}");
                    c.execute(
                        "INSERT INTO messages (id, business_id, phone_id, wa_id, direction, type, content, status, created_at) \
                         VALUES (?1, ?2, ?3, '15550001111', 'out', 'text', '{}', 'sent', 1000)",
                        crate::params![wamid, business, phone],
                    )?;
                    // the first message twice: one task too many must not deliver it again
                    for _ in 0..if i == 0 { 2 } else { 1 } {
                        c.execute(
                            "INSERT INTO tasks (due_at, kind, subject) VALUES (2000, 'deliver', ?1)",
                            [&wamid],
                        )?;
                    }
                }
                Ok(())
            })
            .await
            .unwrap();
        }
        assert!(shards.len() > 1, "the businesses span several shards");
        a.write(|c| {
            c.execute(
                "INSERT INTO tasks (due_at, kind, subject) VALUES (2000, 'deliver', 'wamid.gone')",
                [],
            )?;
            // a task due after the deliveries (instance-wide), and what it saw when it ran
            c.execute(
                "INSERT INTO tasks (due_at, kind, subject) VALUES (2500, 'template_tick', 'none')",
                [],
            )?;
            c.execute_batch(
                "CREATE TABLE seen (delivered BIGINT NOT NULL); \
                 CREATE FUNCTION seen() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
                 INSERT INTO seen SELECT COUNT(*) FROM messages WHERE delivered_at IS NOT NULL; \
                 RETURN NULL; END $$; \
                 CREATE TRIGGER seen AFTER DELETE ON tasks FOR EACH ROW \
                 WHEN (OLD.kind = 'template_tick') EXECUTE FUNCTION seen()",
            )?;
            Ok(())
        })
        .await
        .unwrap();
        let (ran_a, ran_b) = tokio::join!(a.run_due(3_000, 1_000), b.run_due(3_000, 1_000));
        assert!(ran_a.unwrap() + ran_b.unwrap() >= 106);
        assert_eq!(
            db.count("SELECT MIN(delivered) FROM seen"),
            100,
            "the task due after the deliveries ran after them"
        );
        assert_eq!(
            db.count("SELECT COUNT(*) FROM tasks WHERE kind = 'deliver'"),
            0
        );
        assert_eq!(
            db.count("SELECT COUNT(*) FROM messages WHERE status = 'delivered'"),
            100
        );
        assert_eq!(
            db.count("SELECT COUNT(*) FROM messages WHERE delivered_at = 3000"),
            100,
            "each message delivered at the job's time"
        );
        assert_eq!(
            db.count("SELECT COUNT(*) FROM outbox WHERE payload LIKE '%\"delivered\"%'"),
            100,
            "one webhook event per delivery"
        );
        a.close();
        b.close();
    }

    /// A customer's message runs on its business's shard, as a send does, whether the sandbox
    /// simulates it or Meta's webhook brings it to the gateway: while another node holds one
    /// business's shard, a message to a business of another shard commits, and the held one
    /// waits. It writes nothing another business's job writes: with a transaction of another
    /// node holding an uncommitted `users` row of the same customer, it still commits (an
    /// insert of that row would wait for the transaction).
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_customers_message_runs_on_its_business_shard() {
        customers_message_on_its_shard("a_customers_message_runs_on_its_business_shard", false)
            .await;
    }

    /// [`a_customers_message_runs_on_its_business_shard`] through the gateway's ingest.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn an_ingested_customers_message_runs_on_its_business_shard() {
        customers_message_on_its_shard(
            "an_ingested_customers_message_runs_on_its_business_shard",
            true,
        )
        .await;
    }

    async fn customers_message_on_its_shard(name: &str, gateway: bool) {
        use crate::gateway::{GatewayStore, IngestChange};
        use crate::{InboundCommand, Scope, Store};
        let Some(db) = TestDb::create(name) else {
            return;
        };
        let s = Arc::new(SqlStore::open_postgres(&db.url, PostgresOptions::default()).unwrap());
        let a = tenant(&s, "A", &["+1 555 010 0001"]).await;
        let mut b = tenant(&s, "B", &["+1 555 010 0002"]).await;
        while shard_of(&b.business_id) == shard_of(&a.business_id) {
            b = tenant(&s, "B", &["+1 555 010 0002"]).await;
        }
        let customer = "15550009999";
        let inbound = |s: &Arc<SqlStore>, t: &crate::CreatedTenant| {
            let (s, scope) = (
                s.clone(),
                Scope {
                    business_id: t.business_id.clone(),
                },
            );
            let (phone_id, waba_id) = (t.phone_numbers[0].id.clone(), t.waba_id.clone());
            let wamid = format!("wamid.from-meta-to-{}", t.business_id);
            tokio::spawn(async move {
                if gateway {
                    let value = serde_json::json!({
                        "messaging_product": "whatsapp",
                        "metadata": {"display_phone_number": "15550100001", "phone_number_id": phone_id},
                        "contacts": [{"profile": {"name": "C"}, "wa_id": customer}],
                        "messages": [{"from": customer, "id": wamid, "timestamp": "10",
                                      "type": "text", "text": {"body": "hi"}}]
                    });
                    let change = IngestChange {
                        field: "messages".into(),
                        value,
                    };
                    let learned = s
                        .gateway_ingest(&scope, &waba_id, vec![change], 10_000)
                        .await?;
                    assert_eq!(learned, 1, "the message is learned");
                } else {
                    let cmd = InboundCommand {
                        phone_id,
                        from: customer.into(),
                        profile_name: None,
                        message: serde_json::json!({"type": "text", "text": {"body": "hi"}})
                            .as_object()
                            .unwrap()
                            .clone(),
                        now: 10_000,
                    };
                    s.inbound(&scope, cmd).await?;
                }
                crate::StoreResult::Ok(())
            })
        };
        let within = |h| tokio::time::timeout(Duration::from_secs(10), h);

        // another node: one transaction holds the customer's `users` row, uncommitted
        let (held_tx, held) = std::sync::mpsc::channel::<()>();
        let (release_row, row_released) = std::sync::mpsc::channel::<()>();
        let url = db.url.clone();
        let row_holder = std::thread::spawn(move || {
            let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
            c.batch_execute(&format!(
                "BEGIN; INSERT INTO users (wa_id, on_whatsapp, created_at) VALUES ('{customer}', 1, 1)"
            ))
            .unwrap();
            held_tx.send(()).unwrap();
            let _ = row_released.recv();
            c.batch_execute("ROLLBACK").unwrap();
        });
        held.recv().unwrap();
        // ... and one of its batches holds a's shard
        let release = hold(
            &db.url,
            format!(
                "pg_advisory_lock({SHARD_LOCK_CLASS}, {})",
                shard_of(&a.business_id)
            ),
        );
        let to_a = inbound(&s, &a);
        until_waiting(&db, 1).await;
        within(inbound(&s, &b))
            .await
            .expect("b's customer message waits neither for a's shard nor for the users row")
            .unwrap()
            .unwrap();
        assert!(!to_a.is_finished(), "a's message waits for a's shard");
        drop(release);
        within(to_a).await.unwrap().unwrap().unwrap();
        release_row.send(()).unwrap();
        row_holder.join().unwrap();
        for (what, sql, n) in [
            (
                "windows",
                "SELECT COUNT(*) FROM windows WHERE wa_id = '15550009999'",
                2,
            ),
            (
                "messages",
                "SELECT COUNT(*) FROM messages WHERE wa_id = '15550009999' AND direction = 'in'",
                2,
            ),
        ] {
            assert_eq!(count_in(&s, sql).await, n, "{what}");
        }
        s.close();
    }

    /// The gateway's ingest runs a webhook with a quality or account change instance-wide:
    /// those write the tenant's configuration, whose triggers bump the `config_version` row
    /// every shard shares. While another node holds the business's shard (and no batch of
    /// this node waits for it, which an instance-wide batch would wait for in turn), such a
    /// change commits; a customer's message to the same business waits for the shard.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn configuration_changes_from_meta_run_instance_wide() {
        use crate::gateway::{GatewayStore, IngestChange};
        use crate::Scope;
        let Some(db) = TestDb::create("configuration_changes_from_meta_run_instance_wide") else {
            return;
        };
        let s = Arc::new(SqlStore::open_postgres(&db.url, PostgresOptions::default()).unwrap());
        let t = tenant(&s, "A", &["+1 555 010 0001"]).await;
        let ingest = |field: &str, value: serde_json::Value| {
            let s = s.clone();
            let scope = Scope {
                business_id: t.business_id.clone(),
            };
            let waba_id = t.waba_id.clone();
            let change = IngestChange {
                field: field.into(),
                value,
            };
            tokio::spawn(async move {
                s.gateway_ingest(&scope, &waba_id, vec![change], 10_000)
                    .await
            })
        };
        let within = |h| tokio::time::timeout(Duration::from_secs(10), h);
        let release = hold(
            &db.url,
            format!(
                "pg_advisory_lock({SHARD_LOCK_CLASS}, {})",
                shard_of(&t.business_id)
            ),
        );
        let learned = within(ingest(
            "phone_number_quality_update",
            serde_json::json!({"display_phone_number": "15550100001", "event": "FLAGGED",
                               "current_limit": "TIER_250"}),
        ))
        .await
        .expect("a quality change does not wait for the business's shard")
        .unwrap()
        .unwrap();
        assert_eq!(learned, 2, "the rating and the limit");
        let message = ingest(
            "messages",
            serde_json::json!({
                "messaging_product": "whatsapp",
                "metadata": {"display_phone_number": "15550100001", "phone_number_id": t.phone_numbers[0].id},
                "messages": [{"from": "15550009999", "id": "wamid.from-meta", "timestamp": "10",
                              "type": "text", "text": {"body": "hi"}}]
            }),
        );
        until_waiting(&db, 1).await;
        assert!(!message.is_finished(), "the message waits for the shard");
        drop(release);
        assert_eq!(within(message).await.unwrap().unwrap().unwrap(), 1);
        assert_eq!(
            count_in(
                &s,
                "SELECT COUNT(*) FROM phone_numbers WHERE quality_rating = 'RED'"
            )
            .await,
            1
        );
        s.close();
    }

    /// Sends queued together on a shard read their customers' facts in one statement, and what
    /// they read stays true: a second send of a number to the same customer, and every send
    /// after a job that may change them (here one that opens a customer's window), reads
    /// afresh; another number's send to that customer need not. The pacing buckets count every
    /// send of the batch, each written once, with the `COMMIT`.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn sends_queued_together_read_their_facts_at_once() {
        use crate::Store;
        let Some(db) = TestDb::create("sends_queued_together_read_their_facts_at_once") else {
            return;
        };
        let s = Arc::new(SqlStore::open_postgres(&db.url, PostgresOptions::default()).unwrap());
        let t = tenant(&s, "B", &["+1 555 010 0001", "+1 555 010 0002"]).await;
        let (scope, phone) = crate::testkit::number(&s, &t, 0).await;
        let (_, other_phone) = crate::testkit::number(&s, &t, 1).await;
        let now = 10_000;
        let customer = |i: u32| format!("1555000000{i}");
        // customers 1 to 4 wrote in: their windows are open; 5 and 6 did not
        for i in 1..=4 {
            crate::testkit::customer_writes(&s, &scope, &phone, &customer(i), now).await;
        }
        let send_from = |phone: &crate::PhoneNumber, i: u32| {
            crate::testkit::text_send(phone, &customer(i), &format!("to {i}"), now)
        };
        let send = |i: u32| send_from(&phone, i);
        let taken = |s: Arc<SqlStore>, b: String| async move {
            s.write_fast_on(Route::Business(&b), Facts::May, |_, m| Ok(m.facts.taken))
                .await
                .unwrap()
        };
        assert_eq!(taken(s.clone(), scope.business_id.clone()).await, 0);

        // another node holds the shard while the jobs queue, in this order: one round
        let release = hold(
            &db.url,
            format!(
                "pg_advisory_lock({SHARD_LOCK_CLASS}, {})",
                shard_of(&scope.business_id)
            ),
        );
        let (s2, scope2) = (s.clone(), scope.clone());
        let (sends_first, sends_before, sends_after) = (
            [send(1), send(1), send_from(&other_phone, 1), send(2)],
            [send(3), send(5)],
            [send(6), send(4)],
        );
        let (phone_id, wa_6) = (phone.id.clone(), customer(6));
        // 7 writes in the round, and is answered after
        let message = serde_json::json!({"type": "text", "text": {"body": "hi"}});
        let writes_7 = crate::InboundCommand {
            phone_id: phone.id.clone(),
            from: customer(7),
            profile_name: None,
            message: message.as_object().unwrap().clone(),
            now,
        };
        let answer_7 = send(7);
        let round = tokio::spawn(async move {
            let first = sends_first.map(|c| s2.send(&scope2, c));
            // a job that changes no send's facts (as a delivery)
            let keeps = s2.write_mem_on(
                Route::Business(&scope2.business_id),
                Facts::Keeps,
                |c, _| Ok(c.query_row("SELECT 1", [], |_| Ok(()))?),
            );
            let before = sends_before.map(|c| s2.send(&scope2, c));
            let (writes_7, answer_7) = (s2.inbound(&scope2, writes_7), s2.send(&scope2, answer_7));
            let after = sends_after.map(|c| s2.send(&scope2, c));
            // another job of the shard (as a delivery is) opens 6's window
            let other = s2.write_fast_on(
                Route::Business(&scope2.business_id),
                Facts::May,
                move |c, _| {
                    c.execute(
                    "INSERT INTO windows (phone_id, wa_id, last_inbound_at) VALUES (?1, ?2, ?3)",
                    params![phone_id, wa_6, now],
                )?;
                    Ok(())
                },
            );
            // polled in order: queued in order
            let (first, keeps, before, writes_7, answer_7, other, after) = tokio::join!(
                futures_util::future::join_all(first),
                keeps,
                futures_util::future::join_all(before),
                writes_7,
                answer_7,
                other,
                futures_util::future::join_all(after)
            );
            keeps.unwrap();
            writes_7.unwrap();
            answer_7.unwrap();
            other.unwrap();
            (first, before, after)
        });
        until_waiting(&db, 1).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        drop(release);
        let (first, before, after) = tokio::time::timeout(Duration::from_secs(10), round)
            .await
            .unwrap()
            .unwrap();
        for r in first.into_iter().chain(before).chain(after) {
            r.unwrap();
        }
        let status = |i: u32| {
            db.count(&format!(
                "SELECT COUNT(*) FROM messages WHERE direction = 'out' AND status = 'sent' \
                 AND wa_id = '{}'",
                customer(i)
            ))
        };
        // 5's window is closed: failed; 6's opened by the job queued before
        assert_eq!(
            [
                status(1),
                status(2),
                status(3),
                status(4),
                status(5),
                status(6),
                status(7)
            ],
            [2, 1, 1, 1, 0, 1, 1]
        );
        // the other number never heard from 1: failed
        assert_eq!(
            db.count(&format!(
                "SELECT COUNT(*) FROM messages WHERE phone_id = '{}' AND status = 'failed'",
                other_phone.id
            )),
            1
        );
        // prefetched: the first sends to 1, 2, 3 and 5 (after a job that keeps the facts), the
        // other number's to 1, and 7's message, whose facts the send to 7 then took as the
        // message left them (its window open); the second to 1 and those after the other job
        // read afresh
        assert_eq!(taken(s.clone(), scope.business_id.clone()).await, 6);
        // every send took a token (a failed one too), from the number's bucket and its pair's
        let tokens = |wa: &str| {
            db.count(&format!(
                "SELECT tokens::int8 FROM pacing_buckets WHERE phone_id = '{}' AND wa_id = '{wa}' \
                 AND updated_at = {now}",
                phone.id
            ))
        };
        assert_eq!(tokens(""), 80 - 8, "the number's bucket");
        assert_eq!(
            db.count(&format!(
                "SELECT tokens::int8 FROM pacing_buckets WHERE phone_id = '{}' AND wa_id = ''",
                other_phone.id
            )),
            80 - 1,
            "the other number's"
        );
        assert_eq!(tokens(&customer(1)), 45 - 2, "the pair's, sent twice");
        assert_eq!(tokens(&customer(6)), 45 - 1);

        // A batch that rolls back writes no bucket: a send to 2 beside a job that fails the
        // batch is undone (unavailable, retry).
        let hold_shard = || {
            hold(
                &db.url,
                format!(
                    "pg_advisory_lock({SHARD_LOCK_CLASS}, {})",
                    shard_of(&scope.business_id)
                ),
            )
        };
        let release = hold_shard();
        let (s2, scope2, send_2) = (s.clone(), scope.clone(), send(2));
        let round = tokio::spawn(async move {
            let fails =
                s2.write_fast_on(Route::Business(&scope2.business_id), Facts::May, |_, _| {
                    Err::<(), _>(StoreError::Internal("a write failed".into()))
                });
            tokio::join!(s2.send(&scope2, send_2), fails)
        });
        until_waiting(&db, 1).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        drop(release);
        let (sent, failed) = round.await.unwrap();
        assert!(matches!(sent, Err(StoreError::Unavailable(_))), "{sent:?}");
        assert!(failed.is_err());
        assert_eq!((tokens(""), tokens(&customer(2))), (80 - 8, 45 - 1));
        s.send(&scope, send(2)).await.unwrap();
        assert_eq!((tokens(""), tokens(&customer(2))), (80 - 9, 45 - 2));

        // Memory keeps a batch's buckets until its COMMIT only: another node's send between two
        // of this node's counts.
        let other_node = SqlStore::open_postgres(&db.url, PostgresOptions::default()).unwrap();
        other_node.send(&scope, send(2)).await.unwrap();
        other_node.close();
        s.send(&scope, send(2)).await.unwrap();
        assert_eq!((tokens(""), tokens(&customer(2))), (80 - 11, 45 - 4));

        // A job whose savepoint rolls back leaves the batch's buckets as they were before it
        // (here one that empties the number's bucket in memory, then fails): the send after it
        // passes, and the number's bucket counts the two sends.
        let release = hold_shard();
        let (s2, scope2, sends) = (s.clone(), scope.clone(), [send(3), send(4)]);
        let phone_id = phone.id.clone();
        let round = tokio::spawn(async move {
            let [first, second] = sends.map(|c| s2.send(&scope2, c));
            let fails = s2.write_mem_on(
                Route::Business(&scope2.business_id),
                Facts::May,
                move |_, m| {
                    let empty = greenlight_domain::policy::pacing::Bucket {
                        tokens: 0.0,
                        updated_at: now,
                    };
                    m.number_buckets.insert(phone_id, empty);
                    Err::<(), _>(StoreError::Internal("a write failed".into()))
                },
            );
            tokio::join!(first, fails, second)
        });
        until_waiting(&db, 1).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        drop(release);
        let (first, failed, second) = round.await.unwrap();
        assert!(failed.is_err());
        first.unwrap();
        second.unwrap();
        assert_eq!(tokens(""), 80 - 13);
        s.close();
    }

    /// A fresh database (`None` when PostgreSQL is not there to test on), a store over it, and a
    /// tenant with one number: its business and number ids.
    async fn one_number(name: &str) -> Option<(TestDb, SqlStore, String, String)> {
        let db = TestDb::create(name)?;
        let s = SqlStore::open_postgres(&db.url, PostgresOptions::default()).unwrap();
        let t = tenant(&s, "B", &["+1 555 010 0001"]).await;
        let (business, phone) = (t.business_id.clone(), t.phone_numbers[0].id.clone());
        Some((db, s, business, phone))
    }

    /// A shard's deliveries move their messages in one statement and send their events in the
    /// tasks' order: a task whose message is not there, or is no longer `sent`, does nothing; a
    /// message listed twice is delivered once; each `delivered` event names its own customer.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn deliveries_move_their_messages_once_in_order() {
        let Some((db, s, business, phone)) =
            one_number("deliveries_move_their_messages_once_in_order").await
        else {
            return;
        };
        four_messages(&s, &business, &phone).await;
        let list: Vec<(i64, String)> = [
            "wamid.3",
            "wamid.gone",
            "wamid.1",
            "wamid.4",
            "wamid.2",
            "wamid.1",
        ]
        .iter()
        .enumerate()
        .map(|(i, w)| (i as i64 + 1, w.to_string()))
        .collect();
        s.write_mem_on(Route::Business(&business), Facts::Keeps, move |c, m| {
            crate::sqlite::ops::deliver_all(c, m, &list, 2_000)
        })
        .await
        .unwrap();
        // the events' values, as a delivery worker reads them
        let statuses: Vec<serde_json::Value> = s
            .write_mem_on(Route::Business(&business), Facts::Keeps, |c, _| {
                let mut stmt = c.prepare("SELECT payload FROM outbox ORDER BY id")?;
                let rows = stmt.query_map(params![], |r| r.get::<_, String>(0))?;
                let mut out = Vec::new();
                for p in rows {
                    let v = crate::events::value_json(p?).map_err(crate::sqlite::internal)?;
                    let v: serde_json::Value =
                        serde_json::from_str(&v).map_err(crate::sqlite::internal)?;
                    out.push(v["statuses"][0].clone());
                }
                Ok(out)
            })
            .await
            .unwrap();
        for i in 1..=3 {
            assert_eq!(
                db.count(&format!(
                    "SELECT COUNT(*) FROM messages WHERE id = 'wamid.{i}' AND status = 'delivered'"
                )),
                1
            );
            let events: Vec<&serde_json::Value> = statuses
                .iter()
                .filter(|st| st["status"] == "delivered" && st["id"] == format!("wamid.{i}"))
                .collect();
            assert_eq!(events.len(), 1, "{statuses:?}");
            assert_eq!(
                events[0]["recipient_id"],
                format!("1555000000{i}"),
                "wamid.{i}'s event names its customer"
            );
        }
        assert_eq!(
            db.count("SELECT COUNT(*) FROM messages WHERE id = 'wamid.4' AND status = 'failed'"),
            1,
            "a failed message stays failed"
        );
        assert_eq!(
            db.count("SELECT COUNT(*) FROM messages WHERE delivered_at = 2000"),
            3,
            "each message delivered at the job's time"
        );
        // the events in the tasks' order: 3, 1, 2
        let order = |i: i64| {
            db.count(&format!(
                "SELECT id FROM outbox WHERE payload LIKE '%\"delivered\"%' AND payload LIKE '%wamid.{i}\"%'"
            ))
        };
        assert!(
            order(3) < order(1) && order(1) < order(2),
            "events follow the tasks"
        );
        assert_eq!(
            db.count("SELECT COUNT(*) FROM outbox WHERE payload LIKE '%\"delivered\"%'"),
            3
        );
        s.close();
    }

    /// `sql`'s one integer, read through `s`'s readers (either backend).
    async fn count_in(s: &SqlStore, sql: &'static str) -> i64 {
        s.read(move |c| Ok(c.query_row(sql, [], |r| r.get(0))?))
            .await
            .unwrap()
    }

    /// Messages 1–3 `sent` and 4 `failed`, each to a customer of its own.
    async fn four_messages(s: &SqlStore, business: &str, phone: &str) {
        let (b, p) = (business.to_string(), phone.to_string());
        s.write(move |c| {
            for (i, status) in [(1, "sent"), (2, "sent"), (3, "sent"), (4, "failed")] {
                c.execute(
                    "INSERT INTO messages (id, business_id, phone_id, wa_id, direction, type, content, status, created_at) \
                     VALUES (?1, ?2, ?3, ?4, 'out', 'text', '{}', ?5, 1000)",
                    params![format!("wamid.{i}"), b, p, format!("1555000000{i}"), status],
                )?;
            }
            Ok(())
        })
        .await
        .unwrap();
    }

    /// The task `wamid.2 wamid.1 wamid.4 wamid.3`, due at 1,700, ran: the messages still `sent`
    /// are delivered, in its order, and the task is gone. `run_due` counts the task once on
    /// PostgreSQL and by its four messages on SQLite.
    async fn shared_task_ran(s: &SqlStore) {
        use crate::Store;
        assert_eq!(
            s.run_due(1_699, 64).await.unwrap(),
            0,
            "due when its last message is"
        );
        let ran = if s.sharded() { 1 } else { 4 };
        assert_eq!(s.run_due(1_700, 64).await.unwrap(), ran);
        assert_eq!(
            count_in(
                s,
                "SELECT COUNT(*) FROM messages WHERE status = 'delivered'"
            )
            .await,
            3
        );
        assert_eq!(
            count_in(
                s,
                "SELECT COUNT(*) FROM messages WHERE id = 'wamid.4' AND status = 'failed'"
            )
            .await,
            1,
            "a failed message stays failed"
        );
        assert_eq!(
            count_in(s, "SELECT COUNT(*) FROM messages WHERE delivered_at = 1700").await,
            3
        );
        let order = [
            count_in(s, "SELECT id FROM outbox WHERE payload LIKE '%\"delivered\"%' AND payload LIKE '%wamid.2\"%'").await,
            count_in(s, "SELECT id FROM outbox WHERE payload LIKE '%\"delivered\"%' AND payload LIKE '%wamid.1\"%'").await,
            count_in(s, "SELECT id FROM outbox WHERE payload LIKE '%\"delivered\"%' AND payload LIKE '%wamid.3\"%'").await,
        ];
        assert!(
            order.is_sorted(),
            "events follow the task's order: {order:?}"
        );
        assert_eq!(
            count_in(s, "SELECT COUNT(*) FROM tasks WHERE kind = 'deliver'").await,
            0
        );
    }

    /// A delivery task an older build left, shared by several messages, runs on PostgreSQL.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_shared_delivery_task_runs_on_postgres() {
        let Some((_db, s, business, phone)) =
            one_number("a_shared_delivery_task_runs_on_postgres").await
        else {
            return;
        };
        four_messages(&s, &business, &phone).await;
        insert_shared_task(&s).await;
        shared_task_ran(&s).await;
        s.close();
    }

    /// The task an older build wrote for four messages sent at 1,500 (`wamid.2`), 1,700
    /// (`wamid.1`) and 1,600 (`wamid.4`, `wamid.3`): their wamids in send order, due when the
    /// last of them is.
    async fn insert_shared_task(s: &SqlStore) {
        s.write(|c| {
            c.execute(
                "INSERT INTO tasks (due_at, kind, subject) \
                 VALUES (1700, 'deliver', 'wamid.2 wamid.1 wamid.4 wamid.3')",
                [],
            )?;
            Ok(())
        })
        .await
        .unwrap();
    }

    /// A delivery task shared by several messages (an older PostgreSQL build wrote them;
    /// `greenlight import` carries them to SQLite) is run by SQLite's scheduler too.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_shared_delivery_task_runs_on_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let s = sqlite_with_four_messages(&dir).await;
        insert_shared_task(&s).await;
        shared_task_ran(&s).await;
        // a task that names no message goes without doing anything
        s.write(|c| {
            c.execute(
                "INSERT INTO tasks (due_at, kind, subject) VALUES (1800, 'deliver', '')",
                [],
            )?;
            Ok(())
        })
        .await
        .unwrap();
        assert_eq!(crate::Store::run_due(&s, 1_800, 64).await.unwrap(), 1);
        assert_eq!(
            count_in(&s, "SELECT COUNT(*) FROM tasks WHERE kind = 'deliver'").await,
            0
        );
        s.close();
    }

    /// A fresh SQLite store with one tenant and the four messages of [`four_messages`].
    async fn sqlite_with_four_messages(dir: &tempfile::TempDir) -> SqlStore {
        let s = SqlStore::open(
            &dir.path().join("t.db").to_string_lossy(),
            crate::sqlite::SqliteOptions::default(),
        )
        .unwrap();
        let t = tenant(&s, "B", &["+1 555 010 0001"]).await;
        four_messages(&s, &t.business_id, &t.phone_numbers[0].id).await;
        s
    }

    /// On SQLite a scheduler job takes delivery tasks (an older build's, of up to 32 messages)
    /// whole until they hold `limit` messages, so that its jobs stay short on the one writer.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_delivery_jobs_count_messages() {
        use crate::Store;
        let dir = tempfile::tempdir().unwrap();
        let s = sqlite_with_four_messages(&dir).await;
        s.write(|c| {
            let wamids: Vec<String> = (0..70).map(|i| format!("wamid.none.{i}")).collect();
            for chunk in wamids.chunks(32) {
                c.execute(
                    "INSERT INTO tasks (due_at, kind, subject) VALUES (1000, 'deliver', ?1)",
                    params![chunk.join(" ")],
                )?;
            }
            Ok(())
        })
        .await
        .unwrap();
        assert_eq!(
            count_in(&s, "SELECT COUNT(*) FROM tasks WHERE kind = 'deliver'").await,
            3,
            "32 + 32 + 6"
        );
        assert_eq!(s.run_due(1_000, 40).await.unwrap(), 64, "two tasks, whole");
        assert_eq!(
            count_in(
                &s,
                "SELECT COUNT(*) FROM tasks WHERE subject LIKE 'wamid.none.64 %'"
            )
            .await,
            1,
            "the last task, not yet run"
        );
        assert_eq!(
            s.run_due(1_000, 40).await.unwrap(),
            6,
            "nothing more is due"
        );
        assert_eq!(
            count_in(&s, "SELECT COUNT(*) FROM tasks WHERE kind = 'deliver'").await,
            0
        );
        s.close();
    }

    /// The sizes of the batches that run `n` jobs queued while SQLite's writer is busy with
    /// another, in batch order (the busy job's batch, which takes the first of them, counted
    /// without it). The busy job waits until every job is queued (a job is sent to the writer
    /// on its future's first poll), so the split does not depend on timing.
    async fn sqlite_batches_of_queued(n: usize) -> Vec<usize> {
        use crate::sqlite::tests::{behind_a_busy_job, temp_store, Answer};
        let (_dir, s) = temp_store();
        let mut jobs: Vec<Answer<'_, u64>> = (0..n)
            .map(|_| -> Answer<'_, u64> { Box::pin(s.write_mem(|_, mem| Ok(mem.batches))) })
            .collect();
        behind_a_busy_job(&s, &mut jobs).await.unwrap();
        let mut per_batch = std::collections::BTreeMap::<u64, usize>::new();
        for j in jobs {
            *per_batch.entry(j.await.unwrap()).or_default() += 1;
        }
        s.close();
        per_batch.into_values().collect()
    }

    /// A SQLite batch takes at most half of the jobs waiting, but always 32 if there are
    /// (`SQLITE_BATCH`): 40 jobs queued behind a busy one go 31 with it, then 9, not all 40
    /// with it (which would leave the writer nothing to run during their `fsync`).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_batches_of_a_short_queue_hold_32_jobs() {
        assert_eq!(sqlite_batches_of_queued(40).await, [31, 9]);
    }

    /// Half of those waiting: 72 jobs queued behind a busy one go 35 with it (36 of 73), then
    /// 32 (of 37: 18 is fewer than 32), then 5.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_batches_take_half_of_a_longer_queue() {
        assert_eq!(sqlite_batches_of_queued(72).await, [35, 32, 5]);
    }

    /// At most `SQLITE_MAX_BATCH` (64): 200 jobs queued behind a busy one go 63 with it, then
    /// 64 (of 137), 36 (of 73), 32 and 5; never one batch of 100.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_batches_hold_at_most_64_jobs() {
        assert_eq!(sqlite_batches_of_queued(200).await, [63, 64, 36, 32, 5]);
    }

    /// A job's deliveries update its messages in place (heap-only tuples, no index entry
    /// written) although they are neighbours on their pages and change in one transaction:
    /// `messages` keeps half of each page free for their new versions (migration 0007). With a
    /// fifth free (0006) a page of rows this size held one or two.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn deliveries_update_their_messages_in_place() {
        const N: i64 = 24;
        let Some((_db, s, business, phone)) =
            one_number("deliveries_update_their_messages_in_place").await
        else {
            return;
        };
        let b = business.clone();
        // rows the size of a sent text message with its verdicts as objects (~1.2 KB, two thirds
        // of it verdicts; stored compactly now, a row is about half that): the harder case
        s.write(move |c| {
            for i in 1..=N {
                c.execute(
                    "INSERT INTO messages (id, business_id, phone_id, wa_id, direction, type, content, text, \
                     pricing, verdicts, status, created_at) \
                     VALUES (?1, ?2, ?3, ?4, 'out', 'text', repeat('c', 85), 'hello', repeat('p', 92), \
                     repeat('v', 808), 'sent', 1000)",
                    params![format!("wamid.{i:03}"), b, phone, format!("15550000{i:03}")],
                )?;
            }
            Ok(())
        })
        .await
        .unwrap();
        let list: Vec<(i64, String)> = (1..=N).map(|i| (i, format!("wamid.{i:03}"))).collect();
        let (delivered, in_place) = s
            .write_mem_on(Route::Business(&business), Facts::Keeps, move |c, m| {
                crate::sqlite::ops::deliver_all(c, m, &list, 2_000)?;
                let count = |sql| c.query_row(sql, [], |r| r.get::<_, i64>(0));
                Ok((
                    count("SELECT COUNT(*) FROM messages WHERE status = 'delivered'")?,
                    count("SELECT pg_stat_get_xact_tuples_hot_updated('messages'::regclass)")?,
                ))
            })
            .await
            .unwrap();
        assert_eq!(delivered, N);
        assert_eq!(in_place, N, "every update stayed on its page");
        s.close();
    }

    /// A node refuses a database whose nodes shard businesses otherwise.
    #[test]
    fn a_node_that_shards_otherwise_is_refused() {
        let Some(db) = TestDb::create("a_node_that_shards_otherwise_is_refused") else {
            return;
        };
        let first = off_runtime(|| SqlStore::open_postgres(&db.url, PostgresOptions::default()));
        first.unwrap().close();
        assert_eq!(
            db.count("SELECT COUNT(*) FROM meta WHERE key = 'write_shards'"),
            1
        );
        off_runtime(|| {
            let c = connect(&config(&db.url).unwrap()).unwrap();
            c.execute_batch(
                "UPDATE meta SET value = '4 shards, fnv1a-64' WHERE key = 'write_shards'",
            )
            .unwrap();
        });
        let refused = off_runtime(|| SqlStore::open_postgres(&db.url, PostgresOptions::default()));
        let Err(StoreError::Internal(e)) = refused else {
            panic!("a node that shards otherwise started");
        };
        assert!(e.contains("4 shards") && e.contains(&sharding()), "{e}");
    }

    /// Every text column, and every index key on one, compares byte by byte (migration 0008),
    /// whatever the database's default collation: a column added later without
    /// `COLLATE "C"` fails here.
    #[test]
    fn every_text_column_compares_bytewise() {
        let Some(db) = TestDb::create("every_text_column_compares_bytewise") else {
            return;
        };
        off_runtime(|| SqlStore::open_postgres(&db.url, PostgresOptions::default()))
            .unwrap()
            .close();
        const TEXT_COLUMNS: &str = "FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid \
             WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'i') \
             AND a.attnum > 0 AND NOT a.attisdropped AND a.atttypid = 'text'::regtype";
        assert!(
            db.count(&format!(
                "SELECT COUNT(*) {TEXT_COLUMNS} AND c.relkind = 'i'"
            )) > 10
        );
        assert_eq!(
            db.count(&format!(
                "SELECT COUNT(*) {TEXT_COLUMNS} \
                 AND a.attcollation <> 'pg_catalog.\"C\"'::regcollation"
            )),
            0,
            "a text column or index key of greenlight's tables compares under another collation"
        );
    }

    #[test]
    fn a_business_has_the_same_shard_on_every_node() {
        // FNV-1a: fixed, so that nodes of different builds agree
        assert_eq!(
            shard_of(""),
            (0xcbf2_9ce4_8422_2325u64 % WRITE_SHARDS as u64) as usize
        );
        let spread: std::collections::HashSet<usize> =
            (0..64).map(|i| shard_of(&format!("{i:015}"))).collect();
        assert_eq!(
            spread.len(),
            WRITE_SHARDS,
            "business ids spread over every shard"
        );
    }

    /// The purge's id list (one JSON parameter, unpacked by PostgreSQL's JSON functions).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn old_webhook_events_are_purged() {
        use crate::WebhookStore;
        let Some(db) = TestDb::create("old_webhook_events_are_purged") else {
            return;
        };
        let s = SqlStore::open_postgres(&db.url, PostgresOptions::default()).unwrap();
        s.write(|c| {
            for (state, at) in [("delivered", 1_000), ("skipped", 2_000), ("pending", 3_000)] {
                c.execute(
                    "INSERT INTO outbox (business_id, waba_id, field, payload, created_at, next_attempt_at, state) \
                     VALUES ('b', 'w', 'messages', '{}', ?1, ?1, ?2)",
                    crate::params![at, state],
                )?;
            }
            c.execute(
                "INSERT INTO webhook_attempts (outbox_id, attempt, url, at, latency_ms, outcome) \
                 SELECT id, 1, 'http://x', 1000, 1, 'delivered' FROM outbox",
                [],
            )?;
            Ok(())
        })
        .await
        .unwrap();
        assert_eq!(s.purge_webhooks(1_500, 100).await.unwrap(), 1);
        assert_eq!(s.purge_webhooks(i64::MAX, 100).await.unwrap(), 1);
        let left: (i64, i64) = s
            .read(|c| {
                Ok(c.query_row(
                    "SELECT (SELECT COUNT(*) FROM outbox), (SELECT COUNT(*) FROM webhook_attempts)",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )?)
            })
            .await
            .unwrap();
        assert_eq!(left, (1, 1), "the pending event and its attempt stay");
        s.close();
    }

    /// Migration 0013 made one counter of batches for each of the code's shards, and each
    /// shard's `BEGIN` takes the next value of its own.
    #[test]
    fn every_shard_has_its_counter_of_batches() {
        let Some(db) = TestDb::create("every_shard_has_its_counter") else {
            return;
        };
        let s = SqlStore::open_postgres(&db.url, PostgresOptions::default()).unwrap();
        assert_eq!(
            db.count("SELECT COUNT(*) FROM pg_sequences WHERE sequencename LIKE 'shard_epoch_%'"),
            WRITE_SHARDS as i64
        );
        for shard in 0..WRITE_SHARDS {
            assert!(shard_begin(shard).ends_with(&format!(
                "SELECT nextval('shard_epoch_{shard}'), (SELECT n FROM config_version WHERE id = 1)"
            )));
        }
        s.close();
    }

    /// A shard's writer keeps the facts its sends left between batches only while no other
    /// batch wrote its shard: two nodes on one database, a customer sent to on the first. The
    /// first's next send takes the kept facts; after the other node records that the customer
    /// is not on WhatsApp (an instance-wide batch), and after its own sends took the pair's last
    /// pacing tokens (batches of the same shard), the first node's send reads afresh and is
    /// failed, then refused, as a send of the other node would be.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn kept_facts_last_until_another_batch_writes_the_shard() {
        use crate::Store;
        let Some(db) = TestDb::create("kept_facts_last_until_another_batch") else {
            return;
        };
        let a = Arc::new(SqlStore::open_postgres(&db.url, PostgresOptions::default()).unwrap());
        let b = Arc::new(SqlStore::open_postgres(&db.url, PostgresOptions::default()).unwrap());
        let t = tenant(&a, "B", &["+1 555 010 0001"]).await;
        let (scope, phone) = crate::testkit::number(&a, &t, 0).await;
        // the clock stands still: no pacing token comes back
        let now = 10_000;
        let customer = "15550000001";
        crate::testkit::customer_writes(&a, &scope, &phone, customer, now).await;
        let send = || crate::testkit::text_send(&phone, customer, "hello", now);
        let business = scope.business_id.clone();
        let kept_taken = |s: Arc<SqlStore>| {
            let business = business.clone();
            async move {
                s.write_fast_on(Route::Business(&business), Facts::Keeps, |_, m| {
                    Ok(m.pair_facts.taken)
                })
                .await
                .unwrap()
            }
        };
        let failed = || {
            db.count(&format!(
                "SELECT COUNT(*) FROM messages WHERE wa_id = '{customer}' AND status = 'failed'"
            ))
        };

        a.send(&scope, send()).await.unwrap();
        assert_eq!(
            kept_taken(a.clone()).await,
            1,
            "the first send took what the customer's message left"
        );
        a.send(&scope, send()).await.unwrap();
        assert_eq!(
            kept_taken(a.clone()).await,
            2,
            "the second what the first left"
        );

        // the other node: the customer is not on WhatsApp (sandbox, instance-wide)
        b.set_user(customer, false, now).await.unwrap();
        a.send(&scope, send()).await.unwrap();
        assert_eq!(failed(), 1, "read afresh: not on WhatsApp, failed");
        assert_eq!(kept_taken(a.clone()).await, 2);
        b.set_user(customer, true, now).await.unwrap();
        a.send(&scope, send()).await.unwrap();
        a.send(&scope, send()).await.unwrap();
        assert_eq!(kept_taken(a.clone()).await, 3, "kept again");

        // five tokens of the pair's 45 gone (the failed send's too): the other node's sends take
        // the other 40, each in a batch of the shard
        for _ in 0..40 {
            b.send(&scope, send()).await.unwrap();
        }
        match a.send(&scope, send()).await {
            Err(crate::StoreError::Api(e)) => assert_eq!(e.code, 131056, "{e:?}"),
            other => panic!("the pair's rate is spent: {other:?}"),
        }
        assert_eq!(
            kept_taken(a.clone()).await,
            3,
            "read afresh, with the pair's bucket"
        );
        assert_eq!(
            db.count(&format!(
                "SELECT tokens::int8 FROM pacing_buckets WHERE phone_id = '{}' AND wa_id = '{customer}'",
                phone.id
            )),
            0
        );
    }

    /// A customer's message on a shard keeps its customer's facts, and the shard's other customers'.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_customers_message_keeps_the_customers_facts() {
        let Some(db) = TestDb::create("a_customers_message_keeps_facts") else {
            return;
        };
        let s = SqlStore::open_postgres(&db.url, PostgresOptions::default()).unwrap();
        crate::testkit::a_customers_message_keeps_the_customers_facts(&s).await;
        s.close();
    }

    /// A database from before migration 0012 (every event in `outbox_state` and `outbox_done`,
    /// no blocks) gets the blocks of its events and the indexes that leave skipped events out
    /// when it is opened, and its skipped events list through the blocks. Events written after
    /// write their blocks themselves, in a statement for one event and in one for many.
    #[tokio::test]
    async fn migration_0012_writes_the_blocks_of_older_events() {
        use crate::{DeliveryFilter, WebhookStore};
        let Some(db) = TestDb::create("migration_0012") else {
            return;
        };
        let s = SqlStore::open_postgres(&db.url, PostgresOptions::default()).unwrap();
        let t = crate::Store::create_tenant(
            &s,
            crate::NewTenant {
                business_name: "B".into(),
                verified: false,
                phone_numbers: vec![],
                webhook: None,
            },
            1_000,
        )
        .await
        .unwrap();
        async fn enqueue(s: &SqlStore, t: &crate::CreatedTenant, n: usize) {
            let (b, w) = (t.business_id.clone(), t.waba_id.clone());
            s.write(move |c| {
                for _ in 0..n {
                    let v = serde_json::json!({"x": 1});
                    crate::sqlite::ops::enqueue(c, &b, &w, None, "messages", &v, 1_000)?;
                }
                Ok(())
            })
            .await
            .unwrap()
        }
        async fn listed(s: &SqlStore, t: &crate::CreatedTenant) -> Vec<i64> {
            let scope = crate::Scope {
                business_id: t.business_id.clone(),
            };
            let filter = DeliveryFilter {
                state: Some("skipped".into()),
                field: None,
                before: None,
                limit: 100,
            };
            s.webhook_deliveries(&scope, filter)
                .await
                .unwrap()
                .iter()
                .map(|d| d.id.parse::<i64>().unwrap())
                .collect()
        }
        enqueue(&s, &t, 5).await;
        s.write(|c| {
            c.execute_batch(
                "DROP TABLE outbox_blocks; DROP INDEX outbox_listed; DROP INDEX outbox_delivered; \
                 CREATE INDEX outbox_state ON outbox(state, business_id, id); \
                 CREATE INDEX outbox_done ON outbox(state, next_attempt_at) WHERE state <> 'pending'; \
                 DELETE FROM schema_migrations WHERE version = '0012_outbox_blocks'",
            )?;
            Ok(())
        })
        .await
        .unwrap();
        s.close();
        drop(s);
        let s = SqlStore::open_postgres(&db.url, PostgresOptions::default()).unwrap();
        assert_eq!(listed(&s, &t).await, vec![5, 4, 3, 2, 1]);
        let indexes_and_blocks = || {
            s.read(|c| {
                let names: Vec<String> = c
                    .prepare(
                        "SELECT indexname::text FROM pg_indexes WHERE tablename = 'outbox' ORDER BY 1",
                    )?
                    .query_map([], |r| r.get(0))?
                    .collect::<Result<_, _>>()?;
                let blocks: Vec<(String, i64)> = c
                    .prepare("SELECT business_id, block FROM outbox_blocks ORDER BY 2")?
                    .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<Result<_, _>>()?;
                Ok((names, blocks))
            })
        };
        let (names, blocks) = indexes_and_blocks().await.unwrap();
        assert_eq!(
            names,
            [
                "outbox_delivered",
                "outbox_listed",
                "outbox_pending",
                "outbox_pending_due",
                "outbox_pkey"
            ]
        );
        assert_eq!(blocks, vec![(t.business_id.clone(), 0)]);
        // the next block's first event alone (the one-row statement), then two at once
        let block = 1i64 << crate::sqlite::webhooks::BLOCK_BITS;
        s.write(move |c| {
            c.execute(
                "SELECT setval(pg_get_serial_sequence('outbox', 'id'), ?1)",
                crate::params![block - 1],
            )?;
            Ok(())
        })
        .await
        .unwrap();
        enqueue(&s, &t, 1).await;
        s.write(move |c| {
            c.execute(
                "SELECT setval(pg_get_serial_sequence('outbox', 'id'), ?1)",
                crate::params![2 * block - 2],
            )?;
            Ok(())
        })
        .await
        .unwrap();
        enqueue(&s, &t, 2).await;
        let (_, blocks) = indexes_and_blocks().await.unwrap();
        let b = t.business_id.clone();
        assert_eq!(blocks, vec![(b.clone(), 0), (b.clone(), 1), (b, 2)]);
        assert_eq!(
            listed(&s, &t).await,
            vec![2 * block, 2 * block - 1, block, 5, 4, 3, 2, 1]
        );
        s.close();
    }

    #[tokio::test]
    async fn the_purge_deletes_old_done_events_and_keeps_the_rest() {
        let Some(db) = TestDb::create("purge_cases") else {
            return;
        };
        let s = SqlStore::open_postgres(&db.url, PostgresOptions::default()).unwrap();
        crate::testkit::purge_cases(&s).await;
        s.close();
    }

    /// Deferred writes (`Conn::defer`) travel with the next statement that needs an answer:
    /// a read sees them, in order; one that fails fails every later statement of the
    /// transaction and its `COMMIT` (PostgreSQL itself would answer `COMMIT` of the aborted
    /// transaction without an error, by rolling it back); a `ROLLBACK` discards and clears.
    #[test]
    fn deferred_writes_are_read_in_order_and_a_failed_one_fails_the_commit() {
        let Some(db) =
            TestDb::create("deferred_writes_are_read_in_order_and_a_failed_one_fails_the_commit")
        else {
            return;
        };
        off_runtime(|| {
            let c = connect(&config(&db.url).unwrap()).unwrap();
            let count = |c: &Conn| -> crate::db::Result<i64> {
                c.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
            };
            c.execute_batch("CREATE TABLE t (id BIGINT PRIMARY KEY)")
                .unwrap();
            c.execute_batch("BEGIN").unwrap();
            for id in [1, 2, 3] {
                c.defer("INSERT INTO t (id) VALUES (?1)", [id]).unwrap();
            }
            assert_eq!(
                count(&c).unwrap(),
                3,
                "a read sees the writes deferred before it"
            );
            c.defer("UPDATE t SET id = id + 10 WHERE id = 3", [])
                .unwrap();
            let max: i64 = c
                .query_row("SELECT MAX(id) FROM t", [], |r| r.get(0))
                .unwrap();
            assert_eq!(max, 13, "in the order they were deferred");
            // a duplicate key: the failure comes with the next statement, and stays
            c.defer("INSERT INTO t (id) VALUES (?1)", [1]).unwrap();
            assert!(count(&c).is_err());
            assert!(count(&c).is_err(), "every later statement fails");
            assert!(c.flush().is_err());
            assert!(
                c.execute_batch("COMMIT").is_err(),
                "COMMIT must not look successful"
            );
            c.execute_batch("ROLLBACK").unwrap();
            assert_eq!(
                count(&c).unwrap(),
                0,
                "nothing of the failed transaction was kept"
            );

            // a savepoint: ROLLBACK TO discards what was deferred after it, keeps the rest
            c.execute_batch("BEGIN").unwrap();
            c.defer("INSERT INTO t (id) VALUES (?1)", [5]).unwrap();
            c.execute_batch("SAVEPOINT job").unwrap();
            c.defer("INSERT INTO t (id) VALUES (?1)", [5]).unwrap();
            c.execute_batch("ROLLBACK TO job; RELEASE job").unwrap();
            c.execute_batch("COMMIT").unwrap();
            assert_eq!(count(&c).unwrap(), 1);
        });
    }

    /// Rows of a `RowStatement` deferred between two reads run as one statement per
    /// statement kind, in the order they were deferred (serial ids follow it), at the place of
    /// their first row; a single row runs the one-row statement; a failing row fails the
    /// transaction as any deferred write does.
    #[test]
    fn grouped_rows_run_as_one_statement_in_order() {
        use crate::db::{ArrayType, RowStatement};
        static LOG_ROW: RowStatement = RowStatement {
            table: "log",
            one: "INSERT INTO log (name, at) VALUES (?1, ?2)",
            many: "INSERT INTO log (name, at) SELECT n, a FROM unnest($1::text[], $2::int8[]) \
                   WITH ORDINALITY AS u(n, a, o) ORDER BY o",
            pg_one: None,
            types: &[ArrayType::Text, ArrayType::Int8],
        };
        static DONE_ROW: RowStatement = RowStatement {
            table: "log",
            one: "DELETE FROM log WHERE id = ?1",
            many: "DELETE FROM log WHERE id = ANY($1::int8[])",
            pg_one: None,
            types: &[ArrayType::Int8],
        };
        let Some(db) = TestDb::create("grouped_rows_run_as_one_statement_in_order") else {
            return;
        };
        off_runtime(|| {
            let c = connect(&config(&db.url).unwrap()).unwrap();
            // statements per table, counted by a statement-level trigger
            c.execute_batch(
                "CREATE TABLE log (id BIGSERIAL PRIMARY KEY, name TEXT, at BIGINT);
                 CREATE TABLE other (id BIGINT);
                 CREATE TABLE stmts (tbl TEXT, op TEXT);
                 CREATE FUNCTION count_stmt() RETURNS trigger AS $$
                   BEGIN INSERT INTO stmts VALUES (TG_TABLE_NAME, TG_OP); RETURN NULL; END $$ LANGUAGE plpgsql;
                 CREATE TRIGGER log_stmts AFTER INSERT OR DELETE ON log FOR EACH STATEMENT EXECUTE FUNCTION count_stmt();",
            )
            .unwrap();
            let stmts = |c: &Conn, op: &str| -> i64 {
                c.query_row(
                    "SELECT COUNT(*) FROM stmts WHERE op = ?1",
                    params![op],
                    |r| r.get(0),
                )
                .unwrap()
            };
            c.execute_batch("BEGIN").unwrap();
            for (i, name) in ["a", "b", "c", "d", "e"].iter().enumerate() {
                c.defer_row(&LOG_ROW, params![name, i as i64]).unwrap();
                c.defer("INSERT INTO other (id) VALUES (?1)", [i as i64])
                    .unwrap();
            }
            c.defer_row(&LOG_ROW, params![None::<String>, 5]).unwrap();
            let names: Vec<(i64, Option<String>, i64)> = c
                .prepare("SELECT id, name, at FROM log ORDER BY id")
                .unwrap()
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .unwrap()
                .collect::<crate::db::Result<_>>()
                .unwrap();
            let got: Vec<(Option<&str>, i64)> =
                names.iter().map(|(_, n, a)| (n.as_deref(), *a)).collect();
            assert_eq!(
                got,
                [
                    (Some("a"), 0),
                    (Some("b"), 1),
                    (Some("c"), 2),
                    (Some("d"), 3),
                    (Some("e"), 4),
                    (None, 5)
                ],
                "every row, ids in the order deferred"
            );
            assert_eq!(stmts(&c, "INSERT"), 1, "six rows, one statement");
            let others: i64 = c
                .query_row("SELECT COUNT(*) FROM other", [], |r| r.get(0))
                .unwrap();
            assert_eq!(others, 5, "the writes between them ran too");

            // one row alone: the one-row statement; deletes by key, grouped
            c.defer_row(&LOG_ROW, params!["f", 6]).unwrap();
            for (id, ..) in &names[..3] {
                c.defer_row(&DONE_ROW, params![id]).unwrap();
            }
            let left: i64 = c
                .query_row("SELECT COUNT(*) FROM log", [], |r| r.get(0))
                .unwrap();
            assert_eq!(left, 4);
            assert_eq!(stmts(&c, "INSERT"), 2);
            assert_eq!(stmts(&c, "DELETE"), 1, "three deletes, one statement");

            // rows stay queued past a read that names neither their table nor a write sent
            // with it, and later rows join them; a write naming their table keeps its place
            c.defer_row(&LOG_ROW, params!["g", 7]).unwrap();
            assert_eq!(
                stmts(&c, "INSERT"),
                2,
                "a read of another table: still queued"
            );
            c.defer_row(&LOG_ROW, params!["h", 8]).unwrap();
            c.defer("INSERT INTO other (id) VALUES (?1)", [9]).unwrap();
            assert_eq!(stmts(&c, "INSERT"), 2, "nor a write of another table");
            c.defer_row(&LOG_ROW, params!["i", 9]).unwrap();
            c.defer("UPDATE log SET at = at * 10 WHERE at >= 7", [])
                .unwrap();
            c.defer_row(&LOG_ROW, params!["j", 10]).unwrap();
            assert_eq!(
                stmts(&c, "INSERT"),
                3,
                "a write naming their table sends them with it, before it"
            );
            let ats: Vec<i64> = c
                .prepare("SELECT at FROM log WHERE at >= 7 ORDER BY id")
                .unwrap()
                .query_map([], |r| r.get(0))
                .unwrap()
                .collect::<crate::db::Result<_>>()
                .unwrap();
            assert_eq!(
                ats,
                [70, 80, 90, 10],
                "rows queued before the update are updated, the one after it not"
            );
            assert_eq!(stmts(&c, "INSERT"), 4);
            // rows of another statement of the table in between: a new group after them
            c.defer_row(&LOG_ROW, params!["x", 20]).unwrap();
            c.defer_row(&DONE_ROW, params![-1]).unwrap();
            c.defer_row(&LOG_ROW, params!["y", 21]).unwrap();
            c.flush().unwrap();
            assert_eq!(stmts(&c, "INSERT"), 6, "x, then the delete, then y");
            c.execute_batch("DELETE FROM log WHERE name IN ('x', 'y')")
                .unwrap();
            c.execute_batch("COMMIT").unwrap();

            // a failing row (a value its array cannot take) fails the transaction
            c.execute_batch("BEGIN").unwrap();
            c.defer_row(&LOG_ROW, params!["k", 11]).unwrap();
            c.defer_row(&LOG_ROW, params!["l", "12"]).unwrap();
            c.defer_row(&LOG_ROW, params!["m", "not a number"]).unwrap();
            assert!(c.flush().is_err());
            assert!(
                c.execute_batch("COMMIT").is_err(),
                "COMMIT must not look successful"
            );
            c.execute_batch("ROLLBACK").unwrap();
            let left: i64 = c
                .query_row("SELECT COUNT(*) FROM log", [], |r| r.get(0))
                .unwrap();
            assert_eq!(left, 8, "nothing of the failed transaction was kept");
        });
    }

    /// Rows of statements of different tables queued one after another reach PostgreSQL as
    /// one statement (the connection's last, as `pg_stat_activity` shows it), each table's
    /// rows in the order queued, a statement's own `WITH` included; a second statement of a
    /// table in the run runs apart, after, and sees the rows before it; a failing row fails
    /// the transaction, and nothing of it is kept.
    #[test]
    fn rows_of_several_tables_run_as_one_statement() {
        use crate::db::{ArrayType, RowStatement};
        static A_ROW: RowStatement = RowStatement {
            table: "ta",
            one: "INSERT INTO ta (name) VALUES (?1)",
            many: "INSERT INTO ta (name) SELECT n FROM unnest($1::text[]) \
                   WITH ORDINALITY AS u(n, o) ORDER BY o",
            pg_one: None,
            types: &[ArrayType::Text],
        };
        static A_DONE: RowStatement = RowStatement {
            table: "ta",
            one: "DELETE FROM ta WHERE name = ?1",
            many: "DELETE FROM ta WHERE name = ANY($1::text[])",
            pg_one: None,
            types: &[ArrayType::Text],
        };
        static B_ROW: RowStatement = RowStatement {
            table: "tb",
            one: "INSERT INTO tb (x) VALUES (?1)",
            many: "INSERT INTO tb (x) SELECT x FROM unnest($1::int8[]) \
                   WITH ORDINALITY AS u(x, o) ORDER BY o",
            pg_one: None,
            types: &[ArrayType::Int8],
        };
        static C_ROW: RowStatement = RowStatement {
            table: "tc",
            one: "INSERT INTO tc (x) VALUES (?1)",
            many: "WITH e AS (INSERT INTO tc (x) SELECT x FROM unnest($1::int8[]) \
                   WITH ORDINALITY AS u(x, o) ORDER BY o RETURNING x) \
                   INSERT INTO tc_blocks (b) SELECT DISTINCT x / 10 FROM e ON CONFLICT DO NOTHING",
            pg_one: None,
            types: &[ArrayType::Int8],
        };
        let Some(db) = TestDb::create("rows_of_several_tables_run_as_one_statement") else {
            return;
        };
        off_runtime(|| {
            let c = connect(&config(&db.url).unwrap()).unwrap();
            let watch = connect(&config(&db.url).unwrap()).unwrap();
            c.execute_batch(
                "CREATE TABLE ta (id BIGSERIAL PRIMARY KEY, name TEXT NOT NULL);
                 CREATE TABLE tb (id BIGSERIAL PRIMARY KEY, x BIGINT NOT NULL);
                 CREATE TABLE tc (id BIGSERIAL PRIMARY KEY, x BIGINT NOT NULL);
                 CREATE TABLE tc_blocks (b BIGINT PRIMARY KEY);",
            )
            .unwrap();
            let pid: i32 = c
                .query_row("SELECT pg_backend_pid()", [], |r| r.get(0))
                .unwrap();
            let last = || -> String {
                watch
                    .query_row(
                        "SELECT query FROM pg_stat_activity WHERE pid = ?1",
                        params![pid],
                        |r| r.get(0),
                    )
                    .unwrap()
            };
            let texts = |sql: &str| -> Vec<String> {
                c.prepare(sql)
                    .unwrap()
                    .query_map([], |r| r.get(0))
                    .unwrap()
                    .collect::<crate::db::Result<_>>()
                    .unwrap()
            };
            c.execute_batch("BEGIN").unwrap();
            c.defer_row(&A_ROW, params!["a1"]).unwrap();
            c.defer_row(&A_ROW, params!["a2"]).unwrap();
            c.defer_row(&B_ROW, params![1]).unwrap();
            for x in [11, 12, 25] {
                c.defer_row(&C_ROW, params![x]).unwrap();
            }
            c.defer_row(&A_ROW, params!["a3"]).unwrap();
            c.flush().unwrap();
            let sent = last();
            assert!(
                sent.starts_with("WITH g0 AS (INSERT INTO ta")
                    && sent.contains("INSERT INTO tb")
                    && sent.contains("INSERT INTO tc_blocks"),
                "one statement for the three tables: {sent}"
            );
            assert_eq!(texts("SELECT name FROM ta ORDER BY id"), ["a1", "a2", "a3"]);
            assert_eq!(texts("SELECT x::text FROM tb ORDER BY id"), ["1"]);
            assert_eq!(
                texts("SELECT x::text FROM tc ORDER BY id"),
                ["11", "12", "25"]
            );
            assert_eq!(
                texts("SELECT b::text FROM tc_blocks ORDER BY b"),
                ["1", "2"]
            );

            // a row inserted, then deleted by another statement of its table: apart, in order
            c.defer_row(&A_ROW, params!["a4"]).unwrap();
            c.defer_row(&A_DONE, params!["a4"]).unwrap();
            c.defer_row(&B_ROW, params![2]).unwrap();
            c.flush().unwrap();
            assert!(
                last().starts_with("WITH g0 AS (DELETE FROM ta"),
                "the delete went with the next table's rows"
            );
            assert_eq!(texts("SELECT name FROM ta ORDER BY id"), ["a1", "a2", "a3"]);
            assert_eq!(texts("SELECT x::text FROM tb ORDER BY id"), ["1", "2"]);
            c.execute_batch("COMMIT").unwrap();

            // a failing row (NULL) with other tables' rows: the statement fails, the
            // transaction with it
            c.execute_batch("BEGIN").unwrap();
            c.defer_row(&A_ROW, params!["a5"]).unwrap();
            c.defer_row(&B_ROW, params![None::<i64>]).unwrap();
            assert!(c.flush().is_err(), "the NULL fails the statement");
            assert!(c.execute_batch("COMMIT").is_err(), "and the transaction");
            c.execute_batch("ROLLBACK").unwrap();
            assert_eq!(texts("SELECT name FROM ta ORDER BY id"), ["a1", "a2", "a3"]);
            assert_eq!(texts("SELECT x::text FROM tb ORDER BY id"), ["1", "2"]);
        });
    }

    /// Through the store: a job in a savepoint whose deferred write fails answers the error
    /// and rolls back alone; a savepoint-free job (the send path's) whose deferred write fails
    /// is not acknowledged, nor is anything of its batch.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_deferred_write_is_never_acknowledged() {
        let Some(db) = TestDb::create("a_failed_deferred_write_is_never_acknowledged") else {
            return;
        };
        let s = SqlStore::open_postgres(&db.url, PostgresOptions::default()).unwrap();
        let put = |key: &'static str| {
            move |c: &Conn| -> StoreResult<()> {
                c.defer("INSERT INTO meta (key, value) VALUES (?1, 'x')", [key])?;
                Ok(())
            }
        };
        s.write(put("a")).await.unwrap();
        let dup = s.write(put("a")).await;
        assert!(dup.is_err(), "a savepoint job answers its deferred failure");
        s.write(put("b")).await.unwrap();
        let fast = s.write_fast(move |c, _| put("a")(c)).await;
        assert!(fast.is_err(), "the savepoint-free job is not acknowledged");
        s.write(put("c")).await.unwrap();
        let keys: Vec<String> = s
            .read(|c| {
                let mut st = c.prepare("SELECT key FROM meta WHERE value = 'x' ORDER BY key")?;
                let rows = st.query_map([], |r| r.get(0))?;
                Ok(rows.collect::<Result<Vec<_>, _>>()?)
            })
            .await
            .unwrap();
        assert_eq!(keys, ["a", "b", "c"]);
        s.close();
    }
}
