//! A connection that keeps its statements of static text compiled, found by the text's address,
//! with their parameters bound without a copy.
//!
//! `rusqlite`'s statement cache is keyed by a statement's text: each time a statement is taken
//! the text is trimmed, hashed and compared, and copied into a new `Arc<str>`; each time it is
//! given back it is hashed again and its parameters cleared. Under callgrind that was ~8,500
//! instructions a text send on the store's writer, ~7 % of its work there; kept statements
//! cost ~4,000 fewer (docs/BENCHMARKS.md, twenty-seventh round). A statement whose text is
//! `&'static str` can be found by the text's address and length instead, which identify it:
//! two texts at one address with one length are the same bytes. [`KeptConnection::with_static`]
//! keeps such statements, compiled once, for the connection's life; every other statement still
//! goes through `rusqlite`'s cache.
//!
//! **Parameters bound borrowed.** `rusqlite` binds text and blobs with `SQLITE_TRANSIENT`:
//! SQLite copies each into memory of its own and frees it when the parameter is bound again
//! or cleared, ~30 copies a send (docs/BENCHMARKS.md, thirty-fourth round).
//! [`KeptStatement::bind`] binds them with `SQLITE_STATIC` instead: SQLite reads the caller's
//! bytes where they are. That is sound only while the bytes live, so a value bound this way
//! borrows for `'v`, a lifetime parameter of [`KeptConnection::with_static`] (which every
//! borrow it is given outlives, as `std::thread::scope`'s `'env`), and `with_static` resets
//! the statement and clears its bindings before it returns; a panic in its closure drops
//! (finalizes) the statement instead of keeping it. `rusqlite` does not give a statement's `sqlite3_stmt`, so it is found
//! when the statement is compiled: the one statement of the connection whose text is this
//! one's (`sqlite3_next_stmt`, `sqlite3_sql`). When another statement has the same text (one
//! in `rusqlite`'s cache, or this text compiled a second time while its kept statement is
//! lent), none is taken for it, and that statement binds through `rusqlite`, copying.
//!
//! A statement borrows its connection, so the two live in one value ([`self_cell`] ties them
//! and drops the statements first). The `unsafe` here is that value's `Send`, and the calls
//! that find a statement's `sqlite3_stmt`, bind to it and reset it: see there.

use hashbrown::HashMap;
use rusqlite::ffi;
use rusqlite::types::{ToSql, ValueRef};
use rusqlite::{Connection, PrepFlags, Rows, Statement};
use std::cell::RefCell;
use std::ffi::{c_char, c_int, CStr};
use std::marker::PhantomData;
use std::ops::Deref;
use std::ptr::NonNull;

/// A kept statement, and its `sqlite3_stmt` when it was found (see the module's documentation).
struct Kept<'c> {
    stmt: Statement<'c>,
    raw: Option<NonNull<ffi::sqlite3_stmt>>,
}

/// The kept statements by their text's address and length. hashbrown's map with its default
/// hasher (foldhash), as the store's own maps: the keys are addresses of the program's own
/// texts, never chosen from outside, and the standard library's SipHash of the two words took
/// ~200 instructions a lookup, two lookups a statement (~2,900 instructions a send on the
/// store's writer; docs/BENCHMARKS.md, thirty-fourth round).
type Slots<'c> = RefCell<HashMap<(usize, usize), Kept<'c>>>;

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
// `&Connection` (and `Connection` is not `Sync`), and a kept `sqlite3_stmt` pointer is that
// statement's. Every statement kept here belongs to this very connection and moves with it,
// and `KeptConnection` is not `Sync` (`RefCell`), so no two threads can use the connection or
// its statements at once: the same reasoning as `rusqlite`'s `unsafe impl Send for
// StatementCache`, whose raw statements move with their connection too. SQLite (as `rusqlite`
// opens it, without `SQLITE_OPEN_FULLMUTEX`) allows a connection and its statements to be
// used from any one thread at a time.
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
    /// by another connection's, which would then be kept here and moved with this one. Values
    /// bound with [`KeptStatement::bind`] borrow for `'v`, which outlives this call.
    pub fn with_static<'v, T>(
        &self,
        sql: &'static str,
        f: impl FnOnce(&mut KeptStatement<'_, '_, 'v>) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T> {
        let key = (sql.as_ptr() as usize, sql.len());
        self.0.with_dependent(|conn, slots| {
            let kept = slots.borrow_mut().remove(&key);
            let mut kept = match kept {
                Some(k) => k,
                None => {
                    let stmt =
                        conn.prepare_with_flags(sql, PrepFlags::SQLITE_PREPARE_PERSISTENT)?;
                    Kept {
                        raw: only_statement_of(conn, sql),
                        stmt,
                    }
                }
            };
            let out = f(&mut KeptStatement {
                stmt: &mut kept.stmt,
                raw: kept.raw,
                borrowed: PhantomData,
            });
            // before anything bound borrowed (`'v`) may be gone: the statement is reset (a run
            // left unfinished, its rows leaked rather than dropped, would hold copies of what was
            // bound in its registers) and its bindings cleared
            finish(&mut kept);
            slots.borrow_mut().insert(key, kept);
            out
        })
    }

    /// How many statements are kept.
    pub fn kept(&self) -> usize {
        self.0.with_dependent(|_, slots| slots.borrow().len())
    }

    /// How many kept statements bind borrowed (their `sqlite3_stmt` was found): all of them
    /// unless a text is also compiled elsewhere on the connection.
    pub fn binding_borrowed(&self) -> usize {
        self.0
            .with_dependent(|_, slots| slots.borrow().values().filter(|k| k.raw.is_some()).count())
    }
}

/// Ends a use of `kept`: resets the statement if a run was left unfinished (its `Rows` dropped
/// reset it; only a leaked one does not), then clears its bindings.
fn finish(kept: &mut Kept<'_>) {
    match kept.raw {
        // SAFETY: `raw` is `kept.stmt`'s `sqlite3_stmt`, alive as long as it is.
        Some(raw) => unsafe {
            if ffi::sqlite3_stmt_busy(raw.as_ptr()) != 0 {
                ffi::sqlite3_reset(raw.as_ptr());
            }
        },
        // `Rows` reset their statement when dropped (the statement is not stepped here)
        None => drop(kept.stmt.raw_query()),
    }
    kept.stmt.clear_bindings();
}

/// The `sqlite3_stmt` of `conn` whose text is `sql`, if it has exactly one (just compiled,
/// it has at least one: that one is it).
fn only_statement_of(conn: &Connection, sql: &str) -> Option<NonNull<ffi::sqlite3_stmt>> {
    let mut found = None;
    // SAFETY: the connection is open and used by this thread only (it is borrowed here, and
    // not `Sync`); `sqlite3_next_stmt` walks its statements, none of which is finalized
    // meanwhile, and `sqlite3_sql` gives a statement's text, NUL-terminated, owned by SQLite
    // for as long as the statement lives, which is through this loop.
    unsafe {
        let db = conn.handle();
        let mut stmt = ffi::sqlite3_next_stmt(db, std::ptr::null_mut());
        while let Some(s) = NonNull::new(stmt) {
            let text = ffi::sqlite3_sql(s.as_ptr());
            if !text.is_null() && CStr::from_ptr(text).to_bytes() == sql.as_bytes() {
                if found.is_some() {
                    return None;
                }
                found = Some(s);
            }
            stmt = ffi::sqlite3_next_stmt(db, stmt);
        }
    }
    found
}

/// A kept statement, lent to [`KeptConnection::with_static`]'s closure: binding, running and
/// reading rows only (the statement itself stays with its connection). `'v` is what values
/// bound borrowed must outlive (invariant: it cannot be shortened to a borrow of the closure's
/// own).
pub struct KeptStatement<'s, 'c, 'v> {
    stmt: &'s mut Statement<'c>,
    raw: Option<NonNull<ffi::sqlite3_stmt>>,
    borrowed: PhantomData<fn(&'v ()) -> &'v ()>,
}

impl<'v> KeptStatement<'_, '_, 'v> {
    pub fn parameter_count(&self) -> usize {
        self.stmt.parameter_count()
    }

    /// Binds parameter `index` (from 1) to `value`, text and blobs without a copy when the
    /// statement's `sqlite3_stmt` is known (else through `rusqlite`, copied). `with_static`
    /// clears the bindings before `'v` can end.
    ///
    /// What is bound must outlive the `with_static` call:
    ///
    /// ```
    /// # use greenlight_walbuf::KeptConnection;
    /// # use rusqlite::{types::ValueRef, Connection};
    /// let c = KeptConnection::new(Connection::open_in_memory().unwrap());
    /// let text = String::from("the caller's");
    /// let n = c.with_static("SELECT length(?1)", |s| {
    ///     s.bind(1, ValueRef::Text(text.as_bytes()))?;
    ///     s.raw_query().next()?.unwrap().get::<_, i64>(0)
    /// });
    /// assert_eq!(n.unwrap(), 12);
    /// ```
    ///
    /// so a value the closure owns, dropped before the bindings are cleared, is refused:
    ///
    /// ```compile_fail
    /// # use greenlight_walbuf::KeptConnection;
    /// # use rusqlite::{types::ValueRef, Connection};
    /// let c = KeptConnection::new(Connection::open_in_memory().unwrap());
    /// let n = c.with_static("SELECT length(?1)", |s| {
    ///     let text = String::from("the closure's");
    ///     s.bind(1, ValueRef::Text(text.as_bytes()))?;
    ///     s.raw_query().next()?.unwrap().get::<_, i64>(0)
    /// });
    /// assert_eq!(n.unwrap(), 13);
    /// ```
    pub fn bind(&mut self, index: usize, value: ValueRef<'v>) -> rusqlite::Result<()> {
        let Some(raw) = self.raw else {
            return self
                .stmt
                .raw_bind_parameter(index, rusqlite::types::ToSqlOutput::Borrowed(value));
        };
        let Ok(col) = c_int::try_from(index) else {
            return Err(rusqlite::Error::InvalidParameterCount(
                index,
                self.parameter_count(),
            ));
        };
        let raw = raw.as_ptr();
        // SAFETY: `raw` is the `sqlite3_stmt` of `self.stmt` (found when it was compiled, and
        // kept with it), alive while `self.stmt` is borrowed here; SQLite checks the index and
        // the statement's state itself. Text and blobs are bound `SQLITE_STATIC`: SQLite reads
        // them in place until they are bound again or cleared, and they outlive `'v`, which
        // outlives the `with_static` call that clears them (see the module's documentation).
        // A slice's pointer is never null (a null text would bind SQL `NULL`), and SQLite reads
        // none of an empty one's bytes; an empty blob is bound as `rusqlite` binds it.
        let rc = unsafe {
            match value {
                ValueRef::Null => ffi::sqlite3_bind_null(raw, col),
                ValueRef::Integer(i) => ffi::sqlite3_bind_int64(raw, col, i),
                ValueRef::Real(r) => ffi::sqlite3_bind_double(raw, col, r),
                ValueRef::Text(t) => ffi::sqlite3_bind_text64(
                    raw,
                    col,
                    t.as_ptr().cast::<c_char>(),
                    t.len() as u64,
                    ffi::SQLITE_STATIC(),
                    ffi::SQLITE_UTF8 as u8,
                ),
                ValueRef::Blob([]) => ffi::sqlite3_bind_zeroblob(raw, col, 0),
                ValueRef::Blob(b) => ffi::sqlite3_bind_blob64(
                    raw,
                    col,
                    b.as_ptr().cast(),
                    b.len() as u64,
                    ffi::SQLITE_STATIC(),
                ),
            }
        };
        if rc == ffi::SQLITE_OK {
            Ok(())
        } else {
            Err(rusqlite::Error::SqliteFailure(ffi::Error::new(rc), None))
        }
    }

    /// Binds parameter `index` through `rusqlite` (copied).
    pub fn raw_bind_parameter<T: ToSql>(&mut self, index: usize, value: T) -> rusqlite::Result<()> {
        self.stmt.raw_bind_parameter(index, value)
    }

    pub fn raw_execute(&mut self) -> rusqlite::Result<usize> {
        self.stmt.raw_execute()
    }

    pub fn raw_query(&mut self) -> Rows<'_> {
        self.stmt.raw_query()
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
            Ok(s.stmt.get_status(rusqlite::StatementStatus::Run))
        })
        .unwrap()
    }

    fn insert(c: &KeptConnection, x: i64) -> rusqlite::Result<usize> {
        c.with_static(INSERT, |s| {
            s.bind(1, ValueRef::Integer(x))?;
            s.raw_execute()
        })
    }

    const INSERT_ANY: &str = "INSERT INTO v (x) VALUES (?1)";

    /// Every kind of value bound borrowed reads back as it was bound, its type kept.
    #[test]
    fn values_bound_borrowed_read_back_as_bound() {
        let c = KeptConnection::new(Connection::open_in_memory().unwrap());
        c.execute_batch("CREATE TABLE v (n INTEGER PRIMARY KEY, x)")
            .unwrap();
        let long = "é".repeat(5000);
        let values: Vec<ValueRef<'_>> = vec![
            ValueRef::Null,
            ValueRef::Integer(i64::MIN),
            ValueRef::Real(-1.5),
            ValueRef::Text(b"wamid.HBgL"),
            ValueRef::Text(b""),
            ValueRef::Text(long.as_bytes()),
            ValueRef::Text("caf\u{e9} \"q\" \0 x".as_bytes()),
            ValueRef::Blob(&[0, 1, 2, 255]),
            ValueRef::Blob(&[]),
        ];
        for v in &values {
            c.with_static(INSERT_ANY, |s| {
                s.bind(1, *v)?;
                s.raw_execute()
            })
            .unwrap();
        }
        assert_eq!(c.binding_borrowed(), 1, "the statement binds borrowed");
        let mut stmt = c.prepare("SELECT x, typeof(x) FROM v ORDER BY n").unwrap();
        let mut rows = stmt.query([]).unwrap();
        for v in &values {
            let row = rows.next().unwrap().unwrap();
            let kind: String = row.get(1).unwrap();
            let want = match v {
                ValueRef::Null => "null",
                ValueRef::Integer(_) => "integer",
                ValueRef::Real(_) => "real",
                ValueRef::Text(_) => "text",
                ValueRef::Blob(_) => "blob",
            };
            assert_eq!(kind, want, "{v:?}");
            assert_eq!(row.get_ref(0).unwrap(), *v);
        }
        assert!(rows.next().unwrap().is_none());
    }

    /// A text that another statement of the connection has too (here one in `rusqlite`'s
    /// cache) is kept without its `sqlite3_stmt`, and binds through `rusqlite` instead.
    #[test]
    fn a_text_compiled_elsewhere_too_binds_through_rusqlite() {
        let c = KeptConnection::new(Connection::open_in_memory().unwrap());
        c.execute_batch("CREATE TABLE v (n INTEGER PRIMARY KEY, x)")
            .unwrap();
        c.prepare_cached(INSERT_ANY)
            .unwrap()
            .execute(["cached"])
            .unwrap();
        let text = String::from("kept");
        c.with_static(INSERT_ANY, |s| {
            s.bind(1, ValueRef::Text(text.as_bytes()))?;
            s.raw_execute()
        })
        .unwrap();
        assert_eq!((c.kept(), c.binding_borrowed()), (1, 0));
        let got: Vec<String> = c
            .prepare("SELECT x FROM v ORDER BY n")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(got, ["cached", "kept"]);
    }

    /// After a use, even one whose closure failed, the statement holds no binding: what was
    /// bound borrowed may be gone by then.
    #[test]
    fn borrowed_bindings_are_cleared_after_a_use_that_failed() {
        let c = KeptConnection::new(Connection::open_in_memory().unwrap());
        c.execute_batch("CREATE TABLE v (n INTEGER PRIMARY KEY, x)")
            .unwrap();
        {
            let gone = String::from("bound, then dropped");
            let r: rusqlite::Result<()> = c.with_static(INSERT_ANY, |s| {
                s.bind(1, ValueRef::Text(gone.as_bytes()))?;
                Err(rusqlite::Error::InvalidQuery)
            });
            assert!(r.is_err());
        }
        // not bound this time: NULL, and never the dropped text's bytes
        c.with_static(INSERT_ANY, |s| s.raw_execute()).unwrap();
        let (n, nulls): (i64, i64) = c
            .query_row(
                "SELECT count(*), count(*) FILTER (WHERE x IS NULL) FROM v",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!((n, nulls), (1, 1));
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
                s.bind(1, ValueRef::Integer(1))?;
                s.raw_execute()?;
                // compiled a second time while the kept one is lent: two statements of one
                // text, so this one binds through `rusqlite`
                insert(&c, 2)
            })
            .unwrap();
        assert_eq!(inner, 1);
        // the outer statement is the one kept, and it still binds borrowed
        assert_eq!((c.kept(), c.binding_borrowed()), (1, 1));
        insert(&c, 3).unwrap();
        let n: i64 = c
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 3);
    }

    /// A use whose rows were leaked, the run left unfinished, leaves a statement that the next
    /// use runs from its start, with nothing of the last use's bindings.
    #[test]
    fn a_run_left_unfinished_is_reset_after_its_use() {
        let c = KeptConnection::new(Connection::open_in_memory().unwrap());
        c.execute_batch("CREATE TABLE v (n INTEGER PRIMARY KEY, x); INSERT INTO v (x) VALUES ('a'), ('b'), ('c')")
            .unwrap();
        const PAST: &str = "SELECT x, ?1 FROM v ORDER BY n";
        for use_ in 0..2 {
            let first = {
                let bound = format!("use {use_}");
                c.with_static(PAST, |s| {
                    if use_ == 0 {
                        s.bind(1, ValueRef::Text(bound.as_bytes()))?;
                    }
                    let mut rows = s.raw_query();
                    let row = rows.next()?.unwrap();
                    let got: (String, Option<String>) = (row.get(0)?, row.get(1)?);
                    std::mem::forget(rows);
                    Ok(got)
                })
                .unwrap()
            };
            let want = (use_ == 0).then(|| "use 0".to_string());
            assert_eq!(first, ("a".to_string(), want), "use {use_}");
        }
        assert_eq!((c.kept(), c.binding_borrowed()), (1, 1));
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
