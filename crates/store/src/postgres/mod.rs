//! The PostgreSQL backend: several greenlight nodes on one database, the same rules, exact.
//!
//! It is the SQLite store's machinery ([`crate::sqlite::SqlStore`]) over a PostgreSQL client:
//! the same jobs (one body of SQL, see [`crate::db`]), one writer thread per node that
//! group-commits batches, a small pool of reader connections for GET paths.
//!
//! **Exactness across nodes.** Every write batch begins with
//! `SELECT pg_advisory_xact_lock(WRITE_LOCK)`: batches from different nodes never interleave,
//! exactly as jobs never interleave on SQLite's single writer. A job's reads, the engine's
//! decision and the job's writes therefore see every effect committed before and none
//! committed concurrently: a messaging limit of 250 admits exactly 250 new customers however
//! many nodes race. The pacing buckets, kept in the writer's memory on SQLite, live in the
//! `pacing_buckets` table here and are read and written inside the same batch. The lock is
//! released by the batch's `COMMIT` (or `ROLLBACK`, or the connection's death).
//!
//! **Lost connections.** A connection error is `StoreError::Unavailable` (HTTP 503, code 2).
//! The writer re-opens its connection on the next job (at most every 50 ms, backing off to
//! 2 s); readers re-open theirs on next use. A job is answered `Ok` only after `COMMIT`
//! returned; when `COMMIT`'s outcome is unknown the job answers unavailable and the client
//! retries with its Idempotency-Key.

use crate::db::{Conn, PgConn};
use crate::sqlite::{Backend, Connector, SqlStore};
use crate::{StoreError, StoreResult};
use std::sync::Arc;
use std::time::Duration;

pub mod testing;

/// The advisory lock every write batch holds: one batch at a time across all nodes.
pub const WRITE_LOCK: i64 = 0x676c_7772; // "glwr"
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
];

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
        let (writer, readers) = off_runtime(|| -> StoreResult<(Conn, Vec<Conn>)> {
            let writer = connect(&c)?;
            migrate_conn(&writer)?;
            let mut readers = Vec::new();
            for _ in 0..opts.readers.max(1) {
                readers.push(connect(&c)?);
            }
            Ok((writer, readers))
        })?;
        let connector: Connector = Arc::new(move || connect(&c));
        Self::start(
            writer,
            readers,
            Backend {
                begin: BEGIN,
                connector: Some(connector),
            },
            None,
            None,
        )
    }
}

/// Opens a write batch: one at a time across every node (see the module docs).
pub(crate) const BEGIN: &str =
    "BEGIN ISOLATION LEVEL READ COMMITTED; SELECT pg_advisory_xact_lock(1735161714)";

#[cfg(test)]
mod tests {
    use super::testing::TestDb;
    use super::*;

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
