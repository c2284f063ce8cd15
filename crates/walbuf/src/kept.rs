//! A connection that keeps its statements of static text compiled, found by the text's address.
//!
//! `rusqlite`'s statement cache is keyed by a statement's text: each time a statement is taken
//! the text is trimmed, hashed and compared, and copied into a new `Arc<str>`; each time it is
//! given back it is hashed again and its parameters cleared. Under callgrind that was ~8,500
//! instructions a text send on the store's writer, ~7 % of its work there; kept statements
//! cost ~4,000 fewer (docs/BENCHMARKS.md, twenty-seventh round). A statement whose text is
//! `&'static str` can be
//! found by the text's address and length instead, which identify it: two texts at one address
//! with one length are the same bytes. [`KeptConnection::with_static`] keeps such statements,
//! compiled once, for the connection's life; every other statement still goes through
//! `rusqlite`'s cache.
//!
//! A statement borrows its connection, so the two live in one value ([`self_cell`] ties them
//! and drops the statements first). The only `unsafe` here is that value's `Send`: see there.

use hashbrown::HashMap;
use rusqlite::types::ToSql;
use rusqlite::{Connection, PrepFlags, Rows, Statement};
use std::cell::RefCell;
use std::ops::Deref;

/// The kept statements by their text's address and length. hashbrown's map with its default
/// hasher (foldhash), as the store's own maps: the keys are addresses of the program's own
/// texts, never chosen from outside, and the standard library's SipHash of the two words took
/// ~200 instructions a lookup, two lookups a statement (~2,900 instructions a send on the
/// store's writer; docs/BENCHMARKS.md, thirty-fourth round).
type Slots<'c> = RefCell<HashMap<(usize, usize), Statement<'c>>>;

self_cell::self_cell!(
    struct Cell {
        owner: Connection,
        #[not_covariant]
        dependent: Slots,
    }
);

/// A SQLite connection and the statements of static text it keeps compiled. It derefs to the
/// connection for everything else.
pub struct KeptConnection(Cell);

// SAFETY: `Connection` is `Send`; a kept `Statement` is not only because it holds a
// `&Connection` (and `Connection` is not `Sync`). Every statement kept here borrows this very
// connection and moves with it, and `KeptConnection` is not `Sync` (`RefCell`), so no two
// threads can use the connection or its statements at once: the same reasoning as
// `rusqlite`'s `unsafe impl Send for StatementCache`, whose raw statements move with their
// connection too. SQLite (as `rusqlite` opens it, without `SQLITE_OPEN_FULLMUTEX`) allows a
// connection and its statements to be used from any one thread at a time.
unsafe impl Send for KeptConnection {}

impl KeptConnection {
    pub fn new(conn: Connection) -> Self {
        KeptConnection(Cell::new(conn, |_| RefCell::new(HashMap::new())))
    }

    /// The connection, its kept statements finalized first.
    pub fn into_inner(self) -> Connection {
        self.0.into_owner()
    }

    /// Runs `f` on the statement of `sql`, compiled at its first use and kept. The statement
    /// is taken out while `f` runs, so `f` may use the connection again (even `sql` itself,
    /// which it then compiles a second time for that use); its bindings are cleared after.
    /// `f` gets a [`KeptStatement`], not the `Statement`: a `&mut Statement` could be replaced
    /// by another connection's, which would then be kept here and moved with this one.
    pub fn with_static<T>(
        &self,
        sql: &'static str,
        f: impl FnOnce(&mut KeptStatement<'_, '_>) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T> {
        let key = (sql.as_ptr() as usize, sql.len());
        self.0.with_dependent(|conn, slots| {
            let kept = slots.borrow_mut().remove(&key);
            let mut stmt = match kept {
                Some(s) => s,
                None => conn.prepare_with_flags(sql, PrepFlags::SQLITE_PREPARE_PERSISTENT)?,
            };
            let out = f(&mut KeptStatement(&mut stmt));
            stmt.clear_bindings();
            slots.borrow_mut().insert(key, stmt);
            out
        })
    }

    /// How many statements are kept.
    #[cfg(test)]
    fn kept(&self) -> usize {
        self.0.with_dependent(|_, slots| slots.borrow().len())
    }
}

/// A kept statement, lent to [`KeptConnection::with_static`]'s closure: binding, running and
/// reading rows only (the statement itself stays with its connection).
pub struct KeptStatement<'s, 'c>(&'s mut Statement<'c>);

impl KeptStatement<'_, '_> {
    pub fn parameter_count(&self) -> usize {
        self.0.parameter_count()
    }

    pub fn raw_bind_parameter<T: ToSql>(&mut self, index: usize, value: T) -> rusqlite::Result<()> {
        self.0.raw_bind_parameter(index, value)
    }

    pub fn raw_execute(&mut self) -> rusqlite::Result<usize> {
        self.0.raw_execute()
    }

    pub fn raw_query(&mut self) -> Rows<'_> {
        self.0.raw_query()
    }
}

impl Deref for KeptConnection {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        self.0.borrow_owner()
    }
}

impl From<Connection> for KeptConnection {
    fn from(c: Connection) -> Self {
        KeptConnection::new(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INSERT: &str = "INSERT INTO t (x) VALUES (?1)";

    /// How many times the kept statement of [`INSERT`] ran (SQLite's counter of that statement).
    fn runs_of_insert(c: &KeptConnection) -> i32 {
        c.with_static(INSERT, |s| {
            Ok(s.0.get_status(rusqlite::StatementStatus::Run))
        })
        .unwrap()
    }

    fn insert(c: &KeptConnection, x: i64) -> rusqlite::Result<usize> {
        c.with_static(INSERT, |s| {
            s.raw_bind_parameter(1, x)?;
            s.raw_execute()
        })
    }

    #[test]
    fn a_static_statement_is_compiled_once_and_reused() {
        let c = KeptConnection::new(Connection::open_in_memory().unwrap());
        c.execute_batch("CREATE TABLE t (x INTEGER)").unwrap();
        for x in 0..5 {
            assert_eq!(insert(&c, x).unwrap(), 1);
        }
        assert_eq!(c.kept(), 1);
        // one statement ran all five (a statement compiled again would have run once)
        let runs = runs_of_insert(&c);
        assert_eq!(runs, 5);
        let sum: i64 = c
            .query_row("SELECT sum(x) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(sum, 10);
    }

    #[test]
    fn a_text_is_told_apart_by_its_length_as_well_as_its_address() {
        let c = KeptConnection::new(Connection::open_in_memory().unwrap());
        const BOTH: &str = "SELECT 12";
        let (short, long): (&'static str, &'static str) = (&BOTH[..8], BOTH);
        assert_eq!(short.as_ptr(), long.as_ptr());
        let n = |sql| {
            c.with_static(sql, |s| {
                let mut rows = s.raw_query();
                rows.next()?.unwrap().get::<_, i64>(0)
            })
        };
        assert_eq!(n(short).unwrap(), 1);
        assert_eq!(n(long).unwrap(), 12);
        assert_eq!(n(short).unwrap(), 1);
        assert_eq!(c.kept(), 2);
    }

    #[test]
    fn an_error_leaves_the_statement_kept_and_a_bad_text_is_not_kept() {
        let c = KeptConnection::new(Connection::open_in_memory().unwrap());
        c.execute_batch("CREATE TABLE t (x INTEGER UNIQUE)")
            .unwrap();
        insert(&c, 1).unwrap();
        assert!(insert(&c, 1).is_err(), "a duplicate is refused");
        assert_eq!(insert(&c, 2).unwrap(), 1, "and the statement runs again");
        let runs = runs_of_insert(&c);
        assert_eq!(runs, 3, "the same statement, kept through the error");
        assert!(c.with_static("SELEKT 1", |s| s.raw_execute()).is_err());
        assert_eq!(c.kept(), 1);
    }

    #[test]
    fn a_closure_may_run_its_own_text_again() {
        let c = KeptConnection::new(Connection::open_in_memory().unwrap());
        c.execute_batch("CREATE TABLE t (x INTEGER)").unwrap();
        let inner = c
            .with_static(INSERT, |s| {
                s.raw_bind_parameter(1, 1)?;
                s.raw_execute()?;
                insert(&c, 2)
            })
            .unwrap();
        assert_eq!(inner, 1);
        assert_eq!(c.kept(), 1);
        let n: i64 = c
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 2);
    }

    #[test]
    fn bindings_are_cleared_after_a_use() {
        let c = KeptConnection::new(Connection::open_in_memory().unwrap());
        c.execute_batch("CREATE TABLE t (x TEXT)").unwrap();
        const INSERT_TEXT: &str = "INSERT INTO t (x) VALUES (?1)";
        c.with_static(INSERT_TEXT, |s| {
            s.raw_bind_parameter(1, "a message's content")?;
            s.raw_execute()
        })
        .unwrap();
        // not bound this time: NULL, not the last use's text
        c.with_static(INSERT_TEXT, |s| s.raw_execute()).unwrap();
        let nulls: i64 = c
            .query_row("SELECT count(*) FROM t WHERE x IS NULL", [], |r| r.get(0))
            .unwrap();
        assert_eq!(nulls, 1);
    }

    #[test]
    fn the_connection_moves_between_threads_and_comes_back() {
        let c = KeptConnection::new(Connection::open_in_memory().unwrap());
        c.execute_batch("CREATE TABLE t (x INTEGER)").unwrap();
        insert(&c, 1).unwrap();
        // moved to another thread and back, as the store's writer is
        let c = std::thread::spawn(move || {
            insert(&c, 2).unwrap();
            c
        })
        .join()
        .unwrap();
        insert(&c, 3).unwrap();
        let conn = c.into_inner();
        let n: i64 = conn
            .query_row("SELECT sum(x) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 6);
    }
}
