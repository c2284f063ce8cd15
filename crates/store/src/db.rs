//! A small synchronous database interface shared by the SQLite and PostgreSQL backends.
//!
//! The jobs of the store (`sqlite/{ops,compliance,consent,templates,webhooks,read}.rs`) are
//! written once, against [`Conn`], with the calls rusqlite made familiar: `prepare_cached(..)?
//! .execute(params![..])`, `query_row`, `query_map`, [`OptionalExtension::optional`]. A `Conn`
//! is either a rusqlite connection or a PostgreSQL client; SQL is written in the dialect both
//! accept (`?N` placeholders are rewritten to `$N` once per statement for PostgreSQL, and
//! cached), and the few statements that cannot be shared ask [`Conn::is_pg`].
//!
//! Values cross as a small [`Value`] type: integers are `BIGINT` on both sides (booleans are
//! the same 0/1 integers), text is text, JSON is text.

use crate::StoreError;
use std::cell::RefCell;
use std::collections::HashMap;

/// An error of a query: no row where one was expected, or a store error.
#[derive(Debug)]
pub enum Error {
    NoRows,
    Store(StoreError),
}

pub type Result<T> = std::result::Result<T, Error>;

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        Error::Store(e)
    }
}

impl From<Error> for StoreError {
    fn from(e: Error) -> Self {
        match e {
            Error::NoRows => StoreError::Internal("query returned no rows".into()),
            Error::Store(e) => e,
        }
    }
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        match e {
            rusqlite::Error::QueryReturnedNoRows => Error::NoRows,
            e => Error::Store(e.into()),
        }
    }
}

impl From<postgres::Error> for Error {
    fn from(e: postgres::Error) -> Self {
        Error::Store(map_pg(e))
    }
}

/// Connection-level failures (server gone, shut down, network, refused credentials) are
/// `Unavailable`: the client may retry. Serialization failures and deadlocks too. Anything else
/// is a bug.
pub(crate) fn map_pg(e: postgres::Error) -> StoreError {
    let text = match (e.as_db_error(), std::error::Error::source(&e)) {
        (Some(db), _) => format!("{} ({})", db.message(), db.code().code()),
        (None, Some(cause)) => format!("{e}: {cause}"),
        (None, None) => e.to_string(),
    };
    if e.is_closed() {
        return StoreError::Unavailable(text);
    }
    match e.code() {
        Some(code) => {
            let c = code.code();
            // connection, operator intervention (shutdown), resources, authorization (the
            // credentials changed under a running node), missing database
            if c.starts_with("08")
                || c.starts_with("57P")
                || c.starts_with("53")
                || c.starts_with("28")
                || c == "3D000"
                || c == "40001"
                || c == "40P01"
            {
                StoreError::Unavailable(text)
            } else {
                StoreError::Internal(text)
            }
        }
        // no SQLSTATE: an I/O or protocol error on the connection
        None => StoreError::Unavailable(text),
    }
}

/// `query_row(..).optional()`: no row is `None`, other errors stay errors.
pub trait OptionalExtension<T> {
    fn optional(self) -> Result<Option<T>>;
}

impl<T> OptionalExtension<T> for Result<T> {
    fn optional(self) -> Result<Option<T>> {
        match self {
            Ok(v) => Ok(Some(v)),
            Err(Error::NoRows) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// A value bound to a statement or read from a row.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

/// Something that can be bound as a parameter: as an owned [`Value`] (PostgreSQL, whose
/// deferred writes outlive the caller's borrows) or borrowed (SQLite, which binds at once: no
/// `String` cloned per parameter; a kept statement reads it in place until its bindings are
/// cleared, at the end of the call that bound it, and `rusqlite`'s cache copies it).
pub trait ToSql {
    fn to_value(&self) -> Value;
    fn to_ref(&self) -> ValueRef<'_>;
}

impl<T: ToSql + ?Sized> ToSql for &T {
    fn to_value(&self) -> Value {
        (**self).to_value()
    }
    fn to_ref(&self) -> ValueRef<'_> {
        (**self).to_ref()
    }
}
impl<T: ToSql> ToSql for Option<T> {
    fn to_value(&self) -> Value {
        match self {
            Some(v) => v.to_value(),
            None => Value::Null,
        }
    }
    fn to_ref(&self) -> ValueRef<'_> {
        match self {
            Some(v) => v.to_ref(),
            None => ValueRef::Null,
        }
    }
}
impl ToSql for str {
    fn to_value(&self) -> Value {
        Value::Text(self.to_string())
    }
    fn to_ref(&self) -> ValueRef<'_> {
        ValueRef::Text(self)
    }
}
impl ToSql for String {
    fn to_value(&self) -> Value {
        Value::Text(self.clone())
    }
    fn to_ref(&self) -> ValueRef<'_> {
        ValueRef::Text(self)
    }
}
impl ToSql for bool {
    fn to_value(&self) -> Value {
        Value::Int(*self as i64)
    }
    fn to_ref(&self) -> ValueRef<'_> {
        ValueRef::Int(*self as i64)
    }
}
impl ToSql for f64 {
    fn to_value(&self) -> Value {
        Value::Real(*self)
    }
    fn to_ref(&self) -> ValueRef<'_> {
        ValueRef::Real(*self)
    }
}
impl ToSql for Vec<u8> {
    fn to_value(&self) -> Value {
        Value::Blob(self.clone())
    }
    fn to_ref(&self) -> ValueRef<'_> {
        ValueRef::Blob(self)
    }
}
impl ToSql for [u8] {
    fn to_value(&self) -> Value {
        Value::Blob(self.to_vec())
    }
    fn to_ref(&self) -> ValueRef<'_> {
        ValueRef::Blob(self)
    }
}
impl ToSql for Value {
    fn to_value(&self) -> Value {
        self.clone()
    }
    fn to_ref(&self) -> ValueRef<'_> {
        match self {
            Value::Null => ValueRef::Null,
            Value::Int(i) => ValueRef::Int(*i),
            Value::Real(f) => ValueRef::Real(*f),
            Value::Text(s) => ValueRef::Text(s),
            Value::Blob(b) => ValueRef::Blob(b),
        }
    }
}
macro_rules! int_to_sql {
    ($($t:ty),*) => {$(
        impl ToSql for $t {
            fn to_value(&self) -> Value {
                Value::Int(*self as i64)
            }
            fn to_ref(&self) -> ValueRef<'_> {
                ValueRef::Int(*self as i64)
            }
        }
    )*};
}
int_to_sql!(i64, i32, u32, u16, u8, usize, u64);

/// A SQLite statement parameters are bound to, values that live for `'v`: one from
/// `rusqlite`'s cache (which copies text and blobs), or one the connection keeps
/// ([`greenlight_walbuf::KeptStatement`], which reads them in place while they live).
pub trait SqliteBind<'v> {
    fn parameter_count(&self) -> usize;
    fn bind(&mut self, index: usize, value: ValueRef<'v>) -> rusqlite::Result<()>;
}
impl<'v> SqliteBind<'v> for rusqlite::Statement<'_> {
    fn parameter_count(&self) -> usize {
        rusqlite::Statement::parameter_count(self)
    }
    fn bind(&mut self, index: usize, value: ValueRef<'v>) -> rusqlite::Result<()> {
        self.raw_bind_parameter(index, value)
    }
}
impl<'v> SqliteBind<'v> for greenlight_walbuf::KeptStatement<'_, '_, 'v> {
    fn parameter_count(&self) -> usize {
        greenlight_walbuf::KeptStatement::parameter_count(self)
    }
    fn bind(&mut self, index: usize, value: ValueRef<'v>) -> rusqlite::Result<()> {
        use rusqlite::types::ValueRef as R;
        greenlight_walbuf::KeptStatement::bind(
            self,
            index,
            match value {
                ValueRef::Null => R::Null,
                ValueRef::Int(i) => R::Integer(i),
                ValueRef::Real(f) => R::Real(f),
                ValueRef::Text(s) => R::Text(s.as_bytes()),
                ValueRef::Blob(b) => R::Blob(b),
            },
        )
    }
}

/// Binds `values` to a SQLite statement, borrowed, checking their number as rusqlite's
/// `execute` does (so every parameter is bound each time).
fn bind_sqlite<'v, I>(s: &mut dyn SqliteBind<'v>, values: I) -> rusqlite::Result<()>
where
    I: ExactSizeIterator<Item = ValueRef<'v>>,
{
    let (given, wanted) = (values.len(), s.parameter_count());
    if given != wanted {
        return Err(rusqlite::Error::InvalidParameterCount(given, wanted));
    }
    for (i, v) in values.enumerate() {
        s.bind(i + 1, v)?;
    }
    Ok(())
}

/// The parameters of a statement: `params![..]`, `[]`, `[a, b]`.
pub trait Params {
    /// Owned, for PostgreSQL.
    fn values(&self) -> Vec<Value>;
    /// Bound to a SQLite statement without copying them first (nor, on a kept statement, at
    /// all: see [`SqliteBind`]).
    fn bind_sqlite<'v>(&'v self, s: &mut dyn SqliteBind<'v>) -> rusqlite::Result<()>;
}
impl Params for &[&dyn ToSql] {
    fn values(&self) -> Vec<Value> {
        self.iter().map(|p| p.to_value()).collect()
    }
    fn bind_sqlite<'v>(&'v self, s: &mut dyn SqliteBind<'v>) -> rusqlite::Result<()> {
        bind_sqlite(s, self.iter().map(|p| p.to_ref()))
    }
}
impl Params for [&dyn ToSql; 0] {
    fn values(&self) -> Vec<Value> {
        Vec::new()
    }
    fn bind_sqlite<'v>(&'v self, s: &mut dyn SqliteBind<'v>) -> rusqlite::Result<()> {
        bind_sqlite(s, std::iter::empty())
    }
}
macro_rules! array_params {
    ($($n:literal),*) => {$(
        impl<T: ToSql> Params for [T; $n] {
            fn values(&self) -> Vec<Value> {
                self.iter().map(|p| p.to_value()).collect()
            }
            fn bind_sqlite<'v>(&'v self, s: &mut dyn SqliteBind<'v>) -> rusqlite::Result<()> {
                bind_sqlite(s, self.iter().map(|p| p.to_ref()))
            }
        }
        impl<T: ToSql> Params for &[T; $n] {
            fn values(&self) -> Vec<Value> {
                self.iter().map(|p| p.to_value()).collect()
            }
            fn bind_sqlite<'v>(&'v self, s: &mut dyn SqliteBind<'v>) -> rusqlite::Result<()> {
                bind_sqlite(s, self.iter().map(|p| p.to_ref()))
            }
        }
    )*};
}
array_params!(1, 2, 3, 4, 5, 6, 7, 8);
impl Params for Vec<Value> {
    fn values(&self) -> Vec<Value> {
        self.clone()
    }
    fn bind_sqlite<'v>(&'v self, s: &mut dyn SqliteBind<'v>) -> rusqlite::Result<()> {
        bind_sqlite(s, self.iter().map(|p| p.to_ref()))
    }
}

/// `params![a, b]` → `&[&dyn ToSql]`, as rusqlite's macro.
#[macro_export]
macro_rules! params {
    () => {
        &[] as &[&dyn $crate::db::ToSql]
    };
    ($($p:expr),+ $(,)?) => {
        &[$(&$p as &dyn $crate::db::ToSql),+] as &[&dyn $crate::db::ToSql]
    };
}
pub use params;

/// A value read from a row, borrowed where it can be.
pub enum ValueRef<'a> {
    Null,
    Int(i64),
    Real(f64),
    Text(&'a str),
    Blob(&'a [u8]),
}

/// Something that can be read from a column.
pub trait FromSql: Sized {
    fn from_value(v: ValueRef<'_>) -> Result<Self>;
}

fn conversion(what: &str) -> Error {
    Error::Store(StoreError::Internal(format!(
        "column conversion failed: {what}"
    )))
}

impl FromSql for i64 {
    fn from_value(v: ValueRef<'_>) -> Result<Self> {
        match v {
            ValueRef::Int(i) => Ok(i),
            ValueRef::Real(f) => Ok(f as i64),
            _ => Err(conversion("expected an integer")),
        }
    }
}
macro_rules! int_from_sql {
    ($($t:ty),*) => {$(
        impl FromSql for $t {
            fn from_value(v: ValueRef<'_>) -> Result<Self> {
                let i = i64::from_value(v)?;
                <$t>::try_from(i).map_err(|_| conversion("integer out of range"))
            }
        }
    )*};
}
int_from_sql!(i32, u32, u16, u8, usize, u64);
impl FromSql for bool {
    fn from_value(v: ValueRef<'_>) -> Result<Self> {
        Ok(i64::from_value(v)? != 0)
    }
}
impl FromSql for f64 {
    fn from_value(v: ValueRef<'_>) -> Result<Self> {
        match v {
            ValueRef::Int(i) => Ok(i as f64),
            ValueRef::Real(f) => Ok(f),
            _ => Err(conversion("expected a number")),
        }
    }
}
impl FromSql for String {
    fn from_value(v: ValueRef<'_>) -> Result<Self> {
        match v {
            ValueRef::Text(s) => Ok(s.to_string()),
            ValueRef::Blob(b) => String::from_utf8(b.to_vec()).map_err(|_| conversion("utf-8")),
            ValueRef::Int(i) => Ok(i.to_string()),
            ValueRef::Real(f) => Ok(f.to_string()),
            ValueRef::Null => Err(conversion("expected text, found NULL")),
        }
    }
}
impl FromSql for Vec<u8> {
    fn from_value(v: ValueRef<'_>) -> Result<Self> {
        match v {
            ValueRef::Blob(b) => Ok(b.to_vec()),
            ValueRef::Text(s) => Ok(s.as_bytes().to_vec()),
            _ => Err(conversion("expected bytes")),
        }
    }
}
impl FromSql for Value {
    fn from_value(v: ValueRef<'_>) -> Result<Self> {
        Ok(match v {
            ValueRef::Null => Value::Null,
            ValueRef::Int(i) => Value::Int(i),
            ValueRef::Real(f) => Value::Real(f),
            ValueRef::Text(s) => Value::Text(s.to_string()),
            ValueRef::Blob(b) => Value::Blob(b.to_vec()),
        })
    }
}
impl<T: FromSql> FromSql for Option<T> {
    fn from_value(v: ValueRef<'_>) -> Result<Self> {
        match v {
            ValueRef::Null => Ok(None),
            v => T::from_value(v).map(Some),
        }
    }
}

/// A column index: a position or a name.
pub trait RowIndex {
    fn index(&self, names: &dyn Fn(&str) -> Option<usize>) -> Result<usize>;
}
impl RowIndex for usize {
    fn index(&self, _: &dyn Fn(&str) -> Option<usize>) -> Result<usize> {
        Ok(*self)
    }
}
impl RowIndex for &str {
    fn index(&self, names: &dyn Fn(&str) -> Option<usize>) -> Result<usize> {
        names(self).ok_or_else(|| conversion(&format!("no column {self}")))
    }
}

/// One row of a result.
pub enum Row<'a> {
    Sqlite(&'a rusqlite::Row<'a>),
    Pg(&'a postgres::Row),
}

impl Row<'_> {
    pub fn get<I: RowIndex, T: FromSql>(&self, idx: I) -> Result<T> {
        match self {
            Row::Sqlite(r) => {
                let i = idx.index(&|n| r.as_ref().column_index(n).ok())?;
                use rusqlite::types::ValueRef as R;
                let v = match r.get_ref(i)? {
                    R::Null => ValueRef::Null,
                    R::Integer(i) => ValueRef::Int(i),
                    R::Real(f) => ValueRef::Real(f),
                    R::Text(t) => {
                        ValueRef::Text(std::str::from_utf8(t).map_err(|_| conversion("utf-8"))?)
                    }
                    R::Blob(b) => ValueRef::Blob(b),
                };
                T::from_value(v)
            }
            Row::Pg(r) => {
                let i = idx.index(&|n| r.columns().iter().position(|c| c.name() == n))?;
                let v = pg_value(r, i)?;
                T::from_value(match &v {
                    Value::Null => ValueRef::Null,
                    Value::Int(i) => ValueRef::Int(*i),
                    Value::Real(f) => ValueRef::Real(*f),
                    Value::Text(s) => ValueRef::Text(s),
                    Value::Blob(b) => ValueRef::Blob(b),
                })
            }
        }
    }

    pub fn column_count(&self) -> usize {
        match self {
            Row::Sqlite(r) => r.as_ref().column_count(),
            Row::Pg(r) => r.len(),
        }
    }
}

fn pg_value(r: &postgres::Row, i: usize) -> Result<Value> {
    use postgres::types::Type;
    let ty = r
        .columns()
        .get(i)
        .ok_or_else(|| conversion("column index out of range"))?
        .type_()
        .clone();
    let v = match ty {
        Type::INT8 => r.try_get::<_, Option<i64>>(i)?.map(Value::Int),
        Type::INT4 => r
            .try_get::<_, Option<i32>>(i)?
            .map(|v| Value::Int(v as i64)),
        Type::INT2 => r
            .try_get::<_, Option<i16>>(i)?
            .map(|v| Value::Int(v as i64)),
        Type::BOOL => r
            .try_get::<_, Option<bool>>(i)?
            .map(|v| Value::Int(v as i64)),
        Type::FLOAT8 => r.try_get::<_, Option<f64>>(i)?.map(Value::Real),
        Type::FLOAT4 => r
            .try_get::<_, Option<f32>>(i)?
            .map(|v| Value::Real(v as f64)),
        Type::BYTEA => r.try_get::<_, Option<Vec<u8>>>(i)?.map(Value::Blob),
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => {
            r.try_get::<_, Option<String>>(i)?.map(Value::Text)
        }
        other => {
            return Err(conversion(&format!(
                "unsupported PostgreSQL column type {other}"
            )))
        }
    };
    Ok(v.unwrap_or(Value::Null))
}

impl postgres::types::ToSql for Value {
    fn to_sql(
        &self,
        ty: &postgres::types::Type,
        out: &mut postgres::types::private::BytesMut,
    ) -> std::result::Result<postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>>
    {
        use postgres::types::Type;
        match self {
            Value::Null => Ok(postgres::types::IsNull::Yes),
            Value::Int(i) => match *ty {
                Type::INT8 => i.to_sql(ty, out),
                Type::INT4 => (i32::try_from(*i)?).to_sql(ty, out),
                Type::INT2 => (i16::try_from(*i)?).to_sql(ty, out),
                Type::BOOL => (*i != 0).to_sql(ty, out),
                Type::FLOAT8 => (*i as f64).to_sql(ty, out),
                Type::FLOAT4 => (*i as f32).to_sql(ty, out),
                _ => i.to_string().to_sql(ty, out),
            },
            Value::Real(f) => match *ty {
                Type::FLOAT4 => (*f as f32).to_sql(ty, out),
                Type::INT8 => (*f as i64).to_sql(ty, out),
                Type::FLOAT8 => f.to_sql(ty, out),
                _ => f.to_string().to_sql(ty, out),
            },
            Value::Text(s) => match *ty {
                Type::INT8 => s.parse::<i64>()?.to_sql(ty, out),
                Type::INT4 => s.parse::<i32>()?.to_sql(ty, out),
                Type::FLOAT8 => s.parse::<f64>()?.to_sql(ty, out),
                Type::BYTEA => s.as_bytes().to_sql(ty, out),
                _ => s.as_str().to_sql(ty, out),
            },
            Value::Blob(b) => match *ty {
                Type::BYTEA => b.as_slice().to_sql(ty, out),
                _ => std::str::from_utf8(b)?.to_sql(ty, out),
            },
        }
    }

    fn accepts(_: &postgres::types::Type) -> bool {
        true
    }

    postgres::types::to_sql_checked!();
}

impl rusqlite::ToSql for ValueRef<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef as R};
        Ok(ToSqlOutput::Borrowed(match *self {
            ValueRef::Null => R::Null,
            ValueRef::Int(i) => R::Integer(i),
            ValueRef::Real(f) => R::Real(f),
            ValueRef::Text(s) => R::Text(s.as_bytes()),
            ValueRef::Blob(b) => R::Blob(b),
        }))
    }
}

impl rusqlite::ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef as R};
        Ok(ToSqlOutput::Borrowed(match self {
            Value::Null => R::Null,
            Value::Int(i) => R::Integer(*i),
            Value::Real(f) => R::Real(*f),
            Value::Text(s) => R::Text(s.as_bytes()),
            Value::Blob(b) => R::Blob(b),
        }))
    }
}

/// A PostgreSQL client with its statement cache (SQL text → prepared statement) and its queue
/// of deferred writes.
///
/// It drives an asynchronous `tokio_postgres` client on a runtime of its own (one thread, the
/// caller's), so that statements can be **pipelined**: [`Conn::defer`] queues a write whose
/// result nobody reads, and the queue is sent together with the next statement that needs an
/// answer (a read, an `execute` whose count is used, `COMMIT`, `SAVEPOINT`…), in one round trip
/// instead of one per statement. Order is kept: the queued writes run before that statement, so
/// a read sees every write queued before it. A queued write that fails aborts the transaction
/// (PostgreSQL refuses every later statement of it); the failure is reported by the statement
/// it was sent with and by every later one, `COMMIT` included, until a `ROLLBACK`: nothing built
/// on a failed write can be acknowledged. Rows of a [`RowStatement`] are queued by table and
/// sent together ([`Conn::defer_row`]); consecutive rows of statements of different tables go
/// as one statement (`combined_sql`): PostgreSQL answers each statement of a pipeline on its
/// own (a send of its socket, a wake-up of ours), and starts an executor for each.
pub struct PgConn {
    /// Always `Some` but during `drop`.
    rt: Option<tokio::runtime::Runtime>,
    client: Option<tokio_postgres::Client>,
    cache: RefCell<HashMap<String, Prepared>>,
    /// The [`combined_sql`] of runs of row statements, by the statements' addresses.
    combined: RefCell<HashMap<Vec<usize>, postgres::Statement>>,
    pending: RefCell<Vec<Pending>>,
    /// The error of a deferred write, until the transaction is rolled back.
    failed: RefCell<Option<StoreError>>,
}

/// A runtime cannot be dropped inside an async context (a store dropped by an async task):
/// then the client and its runtime are dropped on a thread of their own.
impl Drop for PgConn {
    fn drop(&mut self) {
        let (rt, client) = (self.rt.take(), self.client.take());
        if tokio::runtime::Handle::try_current().is_ok() {
            let _ = std::thread::Builder::new()
                .name("pg-close".into())
                .spawn(move || drop((client, rt)));
        }
    }
}

/// A statement that runs once per row of parameters, and that PostgreSQL can also run for many
/// rows at once: rows deferred with [`Conn::defer_row`] before the next statement that needs an
/// answer travel in one statement (one execution, one index descent per index, one reply)
/// instead of one each, and rows of statements of different tables queued one after another
/// travel together (`combined_sql`). So a statement reads and writes its own `table` and no
/// table another row statement writes, and `$` appears in `many` only in its parameters.
pub struct RowStatement {
    /// The one table the statement writes (and reads).
    pub table: &'static str,
    /// The statement for one row, on either backend (`?N` parameters).
    pub one: &'static str,
    /// PostgreSQL's statement for one row where it is not `one` (one that SQLite cannot run,
    /// such as an `INSERT` in a `WITH`).
    pub pg_one: Option<&'static str>,
    /// PostgreSQL, for any number of rows: parameter `$i` is the array of every row's `i`th
    /// value, in row order, of type `types[i - 1]`. An `INSERT` keeps the rows' order with
    /// `unnest(…) WITH ORDINALITY … ORDER BY` (serial ids and `statuses.rowid` follow it).
    pub many: &'static str,
    pub types: &'static [ArrayType],
}

/// The element type of a [`RowStatement`]'s array parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArrayType {
    Text,
    Int8,
    Float8,
}

/// A prepared statement and its text (what [`names`] reads).
#[derive(Clone)]
pub struct Prepared {
    stmt: postgres::Statement,
    sql: std::sync::Arc<str>,
}

/// Does `sql` name `table` (as a whole identifier)? How rows of a [`RowStatement`] are known to
/// be independent of a statement: none of greenlight's statements touches a table it does not
/// name (no foreign keys, views or triggers reach the tables of row statements).
fn names(sql: &str, table: &str) -> bool {
    let ident = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
    sql.match_indices(table).any(|(i, _)| {
        !ident(sql[..i].chars().next_back()) && !ident(sql[i + table.len()..].chars().next())
    })
}

/// `sql` with each parameter `$i` renumbered `$(i + by)` (outside quotes).
fn shift_params(sql: &str, by: usize) -> String {
    let mut out = String::with_capacity(sql.len() + 16);
    let mut quote: Option<char> = None;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(c);
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '\'' || c == '"' => quote = Some(c),
            None if c == '$' => {
                let mut n = 0usize;
                let mut digits = false;
                while let Some(d) = chars.peek().and_then(|d| d.to_digit(10)) {
                    n = n * 10 + d as usize;
                    digits = true;
                    chars.next();
                }
                if digits {
                    out.push_str(&(n + by).to_string());
                }
            }
            None => {}
        }
    }
    out
}

/// One statement that runs the many-row forms of `members` (statements of different tables,
/// each reading and writing only its own: see [`RowStatement`]), their parameters one after
/// another: each in a `WITH` of its own, which PostgreSQL runs to completion whether or not
/// anything reads it. They see the same snapshot, none the others' rows, which changes nothing
/// for statements of different tables. A member that has a `WITH` itself (at most one) is the
/// main statement, its own `WITH` after the others'.
fn combined_sql(members: &[&RowStatement]) -> String {
    let mut ctes = Vec::with_capacity(members.len());
    let mut main = None;
    let mut offset = 0;
    for m in members {
        let sql = shift_params(&translate(m.many), offset);
        offset += m.types.len();
        match sql.strip_prefix("WITH ") {
            Some(rest) if main.is_none() => main = Some(rest.to_string()),
            _ => ctes.push(sql),
        }
    }
    let mut out = String::from("WITH ");
    for (k, sql) in ctes.iter().enumerate() {
        if k > 0 {
            out.push_str(", ");
        }
        out.push_str(&format!("g{k} AS ({sql})"));
    }
    match main {
        Some(rest) => {
            out.push_str(", ");
            out.push_str(&rest);
        }
        None => out.push_str(" SELECT 1"),
    }
    out
}

/// The queued writes as the statements that send them (`None`: a write of one statement;
/// `Some`: rows of a [`RowStatement`]): a run of rows of statements of different tables (at
/// most one with a `WITH` of its own) is one statement; any other write is its own. Ranges of
/// `queued`, in order.
fn runs(queued: &[Option<&RowStatement>]) -> Vec<std::ops::Range<usize>> {
    let with = |s: &RowStatement| s.many.starts_with("WITH ");
    let mut out = Vec::new();
    let mut i = 0;
    while i < queued.len() {
        let mut j = i + 1;
        if let Some(first) = queued[i] {
            let mut has_with = with(first);
            while let Some(Some(next)) = queued.get(j) {
                let same_table = queued[i..j]
                    .iter()
                    .any(|q| q.is_some_and(|q| q.table == next.table));
                if same_table || (has_with && with(next)) {
                    break;
                }
                has_with |= with(next);
                j += 1;
            }
        }
        out.push(i..j);
        i = j;
    }
    out
}

/// A deferred write: one statement, or rows of a [`RowStatement`].
enum Pending {
    One(Prepared, Vec<Value>),
    Rows {
        of: &'static RowStatement,
        one: postgres::Statement,
        many: postgres::Statement,
        rows: Vec<Vec<Value>>,
    },
}

/// A bound parameter of PostgreSQL.
type PgParam = Box<dyn postgres::types::ToSql + Sync>;

/// The `i`th values of `rows` as one array parameter of type `ty`, for a [`RowStatement`] run
/// for many rows.
fn array_column(rows: &[Vec<Value>], i: usize, ty: ArrayType) -> Result<PgParam> {
    let bad = |v: &Value| {
        Error::Store(StoreError::Internal(format!(
            "row parameter {} of type {ty:?} cannot take {v:?}",
            i + 1
        )))
    };
    // as one row's parameter would be bound (`Value`'s `to_sql`), so that grouping never
    // turns a row that runs alone into one that fails
    let at = |r: &Vec<Value>| {
        r.get(i).cloned().ok_or_else(|| {
            Error::Store(StoreError::Internal(format!(
                "a row of {} parameters for a statement of {}",
                r.len(),
                i + 1
            )))
        })
    };
    // every row's value, converted by `f`, as one array
    fn column<T: postgres::types::ToSql + Sync + 'static>(
        rows: &[Vec<Value>],
        at: impl Fn(&Vec<Value>) -> Result<Value>,
        f: impl Fn(Value) -> Result<Option<T>>,
    ) -> Result<PgParam> {
        let values = rows
            .iter()
            .map(|r| f(at(r)?))
            .collect::<Result<Vec<Option<T>>>>()?;
        Ok(Box::new(values))
    }
    match ty {
        ArrayType::Text => column(rows, at, |v| match v {
            Value::Null => Ok(None),
            Value::Text(s) => Ok(Some(s)),
            Value::Int(n) => Ok(Some(n.to_string())),
            Value::Real(f) => Ok(Some(f.to_string())),
            v @ Value::Blob(_) => Err(bad(&v)),
        }),
        ArrayType::Int8 => column(rows, at, |v| match v {
            Value::Null => Ok(None),
            Value::Int(n) => Ok(Some(n)),
            Value::Real(f) => Ok(Some(f as i64)),
            Value::Text(t) => t.parse().map(Some).map_err(|_| bad(&Value::Text(t))),
            v @ Value::Blob(_) => Err(bad(&v)),
        }),
        ArrayType::Float8 => column(rows, at, |v| match v {
            Value::Null => Ok(None),
            Value::Real(f) => Ok(Some(f)),
            Value::Int(n) => Ok(Some(n as f64)),
            v => Err(bad(&v)),
        }),
    }
}

/// Every column of `rows` as an array parameter, of `types` (see [`array_column`]).
fn array_columns(rows: &[Vec<Value>], types: &[ArrayType]) -> Result<Vec<PgParam>> {
    types
        .iter()
        .enumerate()
        .map(|(i, ty)| array_column(rows, i, *ty))
        .collect()
}

fn closed() -> Error {
    Error::Store(StoreError::Unavailable("connection closed".into()))
}

type Refs<'a> = Vec<&'a (dyn postgres::types::ToSql + Sync)>;

fn refs(values: &[Value]) -> Refs<'_> {
    values
        .iter()
        .map(|v| v as &(dyn postgres::types::ToSql + Sync))
        .collect()
}

impl PgConn {
    /// Connects with `config` (off any async context: it blocks).
    pub fn connect(config: &tokio_postgres::Config) -> crate::StoreResult<Self> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| StoreError::Unavailable(format!("cannot start a database client: {e}")))?;
        let (client, connection) = rt
            .block_on(config.connect(tokio_postgres::NoTls))
            .map_err(map_pg)?;
        // The connection runs whenever the runtime does, i.e. while a statement is awaited.
        rt.spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "PostgreSQL connection ended");
            }
        });
        Ok(PgConn {
            rt: Some(rt),
            client: Some(client),
            cache: RefCell::new(HashMap::new()),
            combined: RefCell::new(HashMap::new()),
            pending: RefCell::new(Vec::new()),
            failed: RefCell::new(None),
        })
    }

    pub fn is_closed(&self) -> bool {
        self.client.as_ref().is_none_or(|c| c.is_closed())
    }

    fn parts(&self) -> Result<(&tokio::runtime::Runtime, &tokio_postgres::Client)> {
        match (&self.rt, &self.client) {
            (Some(rt), Some(c)) => Ok((rt, c)),
            _ => Err(closed()),
        }
    }

    fn prepare(&self, sql: &str) -> Result<Prepared> {
        if let Some(s) = self.cache.borrow().get(sql) {
            return Ok(s.clone());
        }
        let translated = translate(sql);
        let (rt, client) = self.parts()?;
        let stmt = rt
            .block_on(client.prepare(&translated))
            .map_err(|e| match map_pg(e) {
                StoreError::Internal(m) => {
                    Error::Store(StoreError::Internal(format!("{m}; in: {translated}")))
                }
                other => Error::Store(other),
            })?;
        let mut cache = self.cache.borrow_mut();
        if cache.len() > 512 {
            cache.clear();
        }
        let prepared = Prepared {
            stmt,
            sql: translated.into(),
        };
        cache.insert(sql.to_string(), prepared.clone());
        Ok(prepared)
    }

    /// The statement of a run of rows of several statements ([`runs`], [`combined_sql`]).
    fn combined(&self, run: &[Pending]) -> Result<postgres::Statement> {
        let members: Vec<&RowStatement> = run
            .iter()
            .filter_map(|p| match p {
                Pending::Rows { of, .. } => Some(*of),
                Pending::One(..) => None,
            })
            .collect();
        let key: Vec<usize> = members
            .iter()
            .map(|m| *m as *const RowStatement as usize)
            .collect();
        if let Some(s) = self.combined.borrow().get(&key) {
            return Ok(s.clone());
        }
        let stmt = self.prepare(&combined_sql(&members))?.stmt;
        let mut combined = self.combined.borrow_mut();
        if combined.len() >= 64 {
            combined.clear();
        }
        combined.insert(key, stmt.clone());
        Ok(stmt)
    }

    /// Queues a write (see the type's docs).
    fn defer(&self, stmt: Prepared, values: Vec<Value>) {
        self.pending.borrow_mut().push(Pending::One(stmt, values));
    }

    /// Queues a row of `of`: with the last rows of `of` queued, unless a write queued after
    /// them names its table or is a row of another statement of it (see [`Conn::defer_row`]).
    fn defer_row(&self, of: &'static RowStatement, values: Vec<Value>) -> Result<()> {
        let mut pending = self.pending.borrow_mut();
        for p in pending.iter_mut().rev() {
            match p {
                Pending::Rows { of: o, rows, .. } if std::ptr::eq(*o, of) => {
                    rows.push(values);
                    return Ok(());
                }
                // another write of the table since: the row goes after it
                Pending::Rows { of: o, .. } if o.table == of.table => break,
                Pending::One(s, _) if names(&s.sql, of.table) => break,
                _ => {}
            }
        }
        drop(pending);
        let one = self.prepare(of.pg_one.unwrap_or(of.one))?.stmt;
        let many = self.prepare(of.many)?.stmt;
        self.pending.borrow_mut().push(Pending::Rows {
            of,
            one,
            many,
            rows: vec![values],
        });
        Ok(())
    }

    /// Runs `op` after the queued writes, all sent at once; fails with the first error.
    fn with_pending<T, F>(&self, op: F) -> Result<T>
    where
        F: std::future::Future<Output = std::result::Result<T, postgres::Error>>,
    {
        self.with_pending_past(op, None)
    }

    /// [`Self::with_pending`] for a statement `op` of text `sql`: queued rows of a
    /// [`RowStatement`] whose table neither `sql` nor a write sent with it names stay queued,
    /// to go with the rows of later jobs (running after `op` changes nothing for them).
    fn with_pending_past<T, F>(&self, op: F, sql: Option<&str>) -> Result<T>
    where
        F: std::future::Future<Output = std::result::Result<T, postgres::Error>>,
    {
        if let Some(e) = self.failed.borrow().as_ref() {
            return Err(Error::Store(e.clone()));
        }
        let (rt, client) = self.parts()?;
        let mut pending = std::mem::take(&mut *self.pending.borrow_mut());
        if let Some(sql) = sql {
            let mut stay = Vec::new();
            let mut i = 0;
            while i < pending.len() {
                let named = match &pending[i] {
                    Pending::Rows { of, .. } => {
                        names(sql, of.table)
                            || pending[i + 1..]
                                .iter()
                                .any(|q| matches!(q, Pending::One(s, _) if names(&s.sql, of.table)))
                    }
                    Pending::One(..) => true,
                };
                if named {
                    i += 1;
                } else {
                    stay.push(pending.remove(i));
                }
            }
            *self.pending.borrow_mut() = stay;
        }
        if pending.is_empty() {
            return Ok(rt.block_on(op)?);
        }
        let runs = runs(
            &pending
                .iter()
                .map(|p| match p {
                    Pending::Rows { of, .. } => Some(*of),
                    Pending::One(..) => None,
                })
                .collect::<Vec<_>>(),
        );
        // rows of a statement queued more than once, or sent with others', go as arrays (built
        // first: the futures borrow them), and runs of several statements' rows as one
        let prepared = (|| {
            let mut arrays = Vec::with_capacity(pending.len());
            // each run's statement, if it is one of several statements' rows
            let mut combined = Vec::with_capacity(runs.len());
            for run in &runs {
                let together = run.len() > 1;
                for p in &pending[run.clone()] {
                    arrays.push(match p {
                        Pending::Rows { of, rows, .. } if together || rows.len() > 1 => {
                            array_columns(rows, of.types)?
                        }
                        _ => Vec::new(),
                    });
                }
                combined.push(if together {
                    Some(self.combined(&pending[run.clone()])?)
                } else {
                    None
                });
            }
            Ok::<_, Error>((arrays, combined))
        })();
        let (arrays, combined) = match prepared {
            Ok(a) => a,
            Err(e) => {
                // the queued writes are gone: the transaction must not commit
                let e = StoreError::from(e);
                *self.failed.borrow_mut() = Some(e.clone());
                return Err(Error::Store(e));
            }
        };
        let args: Vec<(&postgres::Statement, Refs<'_>)> = runs
            .iter()
            .zip(&combined)
            .map(|(run, stmt)| {
                if let Some(stmt) = stmt {
                    let a = arrays[run.clone()]
                        .iter()
                        .flatten()
                        .map(|c| &**c as &(dyn postgres::types::ToSql + Sync))
                        .collect();
                    return (stmt, a);
                }
                let (p, a) = (&pending[run.start], &arrays[run.start]);
                match p {
                    Pending::One(s, v) => (&s.stmt, refs(v)),
                    Pending::Rows { one, rows, .. } if rows.len() == 1 => (one, refs(&rows[0])),
                    Pending::Rows { many, .. } => (many, a.iter().map(|c| &**c).collect()),
                }
            })
            .collect();
        let writes =
            futures_util::future::join_all(args.iter().map(|(stmt, a)| client.execute(*stmt, a)));
        let (written, out) = rt.block_on(futures_util::future::join(writes, op));
        if let Some(e) = written.into_iter().find_map(|r| r.err()) {
            let e = map_pg(e);
            *self.failed.borrow_mut() = Some(e.clone());
            return Err(Error::Store(e));
        }
        Ok(out?)
    }

    /// Sends the queued writes now.
    pub fn flush(&self) -> Result<()> {
        self.with_pending(async { Ok(()) })
    }

    fn query(&self, stmt: &Prepared, values: &[Value]) -> Result<Vec<postgres::Row>> {
        let (_, client) = self.parts()?;
        let args = refs(values);
        self.with_pending_past(client.query(&stmt.stmt, &args), Some(&stmt.sql))
    }

    fn execute(&self, stmt: &Prepared, values: &[Value]) -> Result<usize> {
        let (_, client) = self.parts()?;
        let args = refs(values);
        Ok(self.with_pending_past(client.execute(&stmt.stmt, &args), Some(&stmt.sql))? as usize)
    }

    /// `stmt` once, its parameter `$i` the array of every row's `i`th value (of type
    /// `types[i - 1]`), after the queued writes.
    fn query_arrays(
        &self,
        stmt: &Prepared,
        types: &[ArrayType],
        rows: &[Vec<Value>],
    ) -> Result<Vec<postgres::Row>> {
        let (_, client) = self.parts()?;
        let arrays = array_columns(rows, types)?;
        let args: Refs<'_> = arrays.iter().map(|c| &**c).collect();
        self.with_pending_past(client.query(&stmt.stmt, &args), Some(&stmt.sql))
    }

    /// [`Self::batch_execute`], answering the values of the last row the statements return
    /// (as text; `None` for a null), if any returns one.
    fn batch_row(&self, sql: &str) -> Result<Option<Vec<Option<String>>>> {
        let (_, client) = self.parts()?;
        let messages = self.with_pending(client.simple_query(sql))?;
        Ok(messages.iter().rev().find_map(|m| match m {
            postgres::SimpleQueryMessage::Row(r) => {
                Some((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect())
            }
            _ => None,
        }))
    }

    /// Statements without parameters. A `ROLLBACK` (to a savepoint or of the transaction)
    /// discards the queued writes instead of sending them, and clears a deferred failure.
    fn batch_execute(&self, sql: &str) -> Result<()> {
        let (rt, client) = self.parts()?;
        if sql.trim_start().starts_with("ROLLBACK") {
            self.pending.borrow_mut().clear();
            self.failed.borrow_mut().take();
            return Ok(rt.block_on(client.batch_execute(sql))?);
        }
        self.with_pending(client.batch_execute(sql))
    }

    /// Every row of `stmt`, each passed to `f` as it arrives.
    fn for_each(
        &self,
        stmt: &Prepared,
        values: &[Value],
        mut f: impl FnMut(&postgres::Row) -> Result<()>,
    ) -> Result<()> {
        use futures_util::StreamExt;
        self.flush()?;
        let (rt, client) = self.parts()?;
        let stream = rt.block_on(client.query_raw(&stmt.stmt, values.iter()))?;
        let mut stream = std::pin::pin!(stream);
        while let Some(row) = rt.block_on(stream.next()) {
            f(&row?)?;
        }
        Ok(())
    }
}

/// `?N` → `$N`, outside quoted strings and identifiers.
pub fn translate(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut quote: Option<char> = None;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match quote {
            Some(q) => {
                out.push(c);
                if c == q {
                    quote = None;
                }
            }
            None => {
                if c == '\'' || c == '"' {
                    quote = Some(c);
                    out.push(c);
                } else if c == '?' && chars.peek().is_some_and(|d| d.is_ascii_digit()) {
                    out.push('$');
                } else {
                    out.push(c);
                }
            }
        }
    }
    out
}

/// `f` of a SQLite query's first row, or [`Error::NoRows`]. SQLite's errors are the outer
/// ones, `f`'s the inner (so that `query_row_static` can carry them out of `with_static`).
fn first_row<T, F: FnOnce(&Row<'_>) -> Result<T>>(
    mut rows: rusqlite::Rows<'_>,
    f: F,
) -> rusqlite::Result<Result<T>> {
    Ok(match rows.next()? {
        Some(r) => f(&Row::Sqlite(r)),
        None => Err(Error::NoRows),
    })
}

/// A connection of either backend.
pub enum Conn {
    /// Its statements of static text kept compiled ([`Conn::defer_row`], [`Conn::defer`]).
    Sqlite(greenlight_walbuf::KeptConnection),
    Pg(Box<PgConn>),
}

/// A prepared statement of either backend.
pub enum Stmt<'c> {
    Sqlite(rusqlite::CachedStatement<'c>),
    Pg(&'c PgConn, Prepared),
}

impl Conn {
    /// Tests: how many statements the SQLite connection keeps, and how many of them bind
    /// their values in place (`None` on PostgreSQL).
    #[cfg(test)]
    pub(crate) fn kept_statements(&self) -> Option<(usize, usize)> {
        match self {
            Conn::Sqlite(c) => Some((c.kept(), c.binding_borrowed())),
            Conn::Pg(_) => None,
        }
    }

    pub fn is_pg(&self) -> bool {
        matches!(self, Conn::Pg(_))
    }

    /// SQLite: the rowid of the last row this connection inserted (0 on PostgreSQL).
    pub fn last_insert_rowid(&self) -> i64 {
        match self {
            Conn::Sqlite(c) => c.last_insert_rowid(),
            Conn::Pg(_) => 0,
        }
    }

    pub fn prepare_cached(&self, sql: &str) -> Result<Stmt<'_>> {
        match self {
            Conn::Sqlite(c) => Ok(Stmt::Sqlite(c.prepare_cached(sql)?)),
            Conn::Pg(p) => Ok(Stmt::Pg(p, p.prepare(sql)?)),
        }
    }

    pub fn prepare(&self, sql: &str) -> Result<Stmt<'_>> {
        self.prepare_cached(sql)
    }

    pub fn execute<P: Params>(&self, sql: &str, p: P) -> Result<usize> {
        self.prepare_cached(sql)?.execute(p)
    }

    /// [`Self::execute`] of static text: on SQLite through the statement the connection keeps
    /// for it (`greenlight_walbuf::KeptConnection`: found by the text's address, not hashed and
    /// compared as in `rusqlite`'s cache; ~400 instructions less a statement, ~4,000 a text),
    /// for the statements every send runs. [`Self::defer`] and [`Self::defer_row`] run this way.
    pub fn execute_static<P: Params>(&self, sql: &'static str, p: P) -> Result<usize> {
        match self {
            Conn::Sqlite(c) => Ok(c.with_static(sql, |s| {
                p.bind_sqlite(s)?;
                s.raw_execute()
            })?),
            Conn::Pg(_) => self.execute(sql, p),
        }
    }

    /// [`Self::query_row`] of static text, kept on SQLite as [`Self::execute_static`].
    pub fn query_row_static<P: Params, T, F: FnOnce(&Row<'_>) -> Result<T>>(
        &self,
        sql: &'static str,
        p: P,
        f: F,
    ) -> Result<T> {
        match self {
            // SQLite's errors end `with_static`; `f`'s (the store's) come out inside its `Ok`
            Conn::Sqlite(c) => c.with_static(sql, |s| {
                p.bind_sqlite(s)?;
                first_row(s.raw_query(), f)
            })?,
            Conn::Pg(_) => self.query_row(sql, p, f),
        }
    }

    /// A write whose result is not needed now. SQLite runs it at once; PostgreSQL queues it and
    /// sends it with the next statement that needs an answer (pipelined: see [`PgConn`]). A
    /// failure surfaces then, and fails every later statement of the transaction and its
    /// `COMMIT`: use it in jobs whose errors roll back the whole batch, or [`Self::flush`]
    /// before a savepoint is released.
    pub fn defer<P: Params>(&self, sql: &'static str, p: P) -> Result<()> {
        match self {
            Conn::Sqlite(_) => self.execute_static(sql, p).map(drop),
            Conn::Pg(c) => {
                let stmt = c.prepare(sql)?;
                c.defer(stmt, p.values());
                Ok(())
            }
        }
    }

    /// A row of `of`, deferred as by [`Self::defer`]. On PostgreSQL, queued rows of `of` run as
    /// one statement ([`RowStatement`]). They are not bound to the next statement as other
    /// deferred writes are: they wait in the queue past every statement that names neither
    /// their table nor, for writes sent with it, theirs, and are sent with the first that
    /// does (a read of their table, a write to it, `COMMIT`, a savepoint, [`Self::flush`]). A
    /// row joins the last queued rows of `of` unless a write queued after them names the
    /// table: rows and writes of one table keep their order. So the sends of a batch, whose
    /// reads and other writes are of other tables, insert their messages, statuses, events and
    /// tasks in four statements. This relies on every statement naming each table it touches
    /// (no foreign keys, views or triggers reach the tables of row statements). A failing row
    /// fails the transaction as any deferred write does.
    pub fn defer_row<P: Params>(&self, of: &'static RowStatement, p: P) -> Result<()> {
        match self {
            Conn::Sqlite(_) => self.execute_static(of.one, p).map(drop),
            Conn::Pg(c) => c.defer_row(of, p.values()),
        }
    }

    /// PostgreSQL only: every row of `sql` run once for many rows of parameters, its parameter
    /// `$i` the array of every row's `i`th value, of type `types[i - 1]` (as
    /// [`RowStatement::many`]). One statement for reads that SQLite makes one by one.
    pub fn query_arrays<T, F: FnMut(&Row<'_>) -> Result<T>>(
        &self,
        sql: &str,
        types: &[ArrayType],
        rows: &[Vec<Value>],
        mut f: F,
    ) -> Result<Vec<T>> {
        match self {
            Conn::Sqlite(_) => Err(Error::Store(StoreError::Internal(
                "array parameters are PostgreSQL's".into(),
            ))),
            Conn::Pg(c) => {
                let stmt = c.prepare(sql)?;
                c.query_arrays(&stmt, types, rows)?
                    .iter()
                    .map(|r| f(&Row::Pg(r)))
                    .collect()
            }
        }
    }

    /// Sends the deferred writes now (PostgreSQL) and reports their first failure.
    pub fn flush(&self) -> Result<()> {
        match self {
            Conn::Sqlite(_) => Ok(()),
            Conn::Pg(c) => c.flush(),
        }
    }

    pub fn query_row<P: Params, T, F: FnOnce(&Row<'_>) -> Result<T>>(
        &self,
        sql: &str,
        p: P,
        f: F,
    ) -> Result<T> {
        self.prepare_cached(sql)?.query_row(p, f)
    }

    /// Several statements without parameters (transaction control, DDL).
    pub fn execute_batch(&self, sql: &str) -> Result<()> {
        match self {
            Conn::Sqlite(c) => Ok(c.execute_batch(sql)?),
            Conn::Pg(p) => p.batch_execute(sql),
        }
    }

    /// [`Self::execute_batch`] on PostgreSQL, answering the values of the last row its
    /// statements return (as text; `None` for a null), if any does; SQLite answers none.
    pub fn execute_batch_row(&self, sql: &str) -> Result<Option<Vec<Option<String>>>> {
        match self {
            Conn::Sqlite(c) => {
                c.execute_batch(sql)?;
                Ok(None)
            }
            Conn::Pg(p) => p.batch_row(sql),
        }
    }

    /// The rusqlite connection, for SQLite-only code (pragmas, tests).
    pub fn sqlite(&self) -> Option<&rusqlite::Connection> {
        match self {
            Conn::Sqlite(c) => Some(c),
            Conn::Pg(_) => None,
        }
    }

    pub fn pg(&self) -> Option<&PgConn> {
        match self {
            Conn::Sqlite(_) => None,
            Conn::Pg(p) => Some(p),
        }
    }
}

impl Stmt<'_> {
    pub fn execute<P: Params>(&mut self, p: P) -> Result<usize> {
        match self {
            Stmt::Sqlite(s) => {
                p.bind_sqlite(&mut **s)?;
                Ok(s.raw_execute()?)
            }
            Stmt::Pg(c, s) => c.execute(s, &p.values()),
        }
    }

    pub fn query_row<P: Params, T, F: FnOnce(&Row<'_>) -> Result<T>>(
        &mut self,
        p: P,
        f: F,
    ) -> Result<T> {
        match self {
            Stmt::Sqlite(s) => {
                p.bind_sqlite(&mut **s)?;
                first_row(s.raw_query(), f)?
            }
            Stmt::Pg(c, s) => {
                let rows = c.query(s, &p.values())?;
                match rows.first() {
                    Some(r) => f(&Row::Pg(r)),
                    None => Err(Error::NoRows),
                }
            }
        }
    }

    /// Every row mapped by `f` (read eagerly).
    pub fn query_map<P: Params, T, F: FnMut(&Row<'_>) -> Result<T>>(
        &mut self,
        p: P,
        mut f: F,
    ) -> Result<std::vec::IntoIter<Result<T>>> {
        let mut out = Vec::new();
        match self {
            Stmt::Sqlite(s) => {
                p.bind_sqlite(&mut **s)?;
                let mut rows = s.raw_query();
                while let Some(r) = rows.next()? {
                    out.push(f(&Row::Sqlite(r)));
                }
            }
            Stmt::Pg(c, s) => {
                for r in c.query(s, &p.values())? {
                    out.push(f(&Row::Pg(&r)));
                }
            }
        }
        Ok(out.into_iter())
    }

    /// Calls `f` on every row as it arrives (not collected: for tables of any size).
    pub fn for_each<P: Params, F: FnMut(&Row<'_>) -> Result<()>>(
        &mut self,
        p: P,
        mut f: F,
    ) -> Result<()> {
        match self {
            Stmt::Sqlite(s) => {
                p.bind_sqlite(&mut **s)?;
                let mut rows = s.raw_query();
                while let Some(r) = rows.next()? {
                    f(&Row::Sqlite(r))?;
                }
            }
            Stmt::Pg(c, s) => c.for_each(s, &p.values(), |r| f(&Row::Pg(r)))?,
        }
        Ok(())
    }

    pub fn column_names(&self) -> Vec<String> {
        match self {
            Stmt::Sqlite(s) => s.column_names().iter().map(|s| s.to_string()).collect(),
            Stmt::Pg(_, s) => s
                .stmt
                .columns()
                .iter()
                .map(|c| c.name().to_string())
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static A_ROW: RowStatement = RowStatement {
        table: "a",
        one: "INSERT INTO a (x) VALUES (?1)",
        many: "INSERT INTO a (x) SELECT x FROM unnest($1::text[]) AS u(x)",
        pg_one: None,
        types: &[ArrayType::Text],
    };
    static A_DONE: RowStatement = RowStatement {
        table: "a",
        one: "DELETE FROM a WHERE x = ?1",
        many: "DELETE FROM a WHERE x = ANY($1::text[])",
        pg_one: None,
        types: &[ArrayType::Text],
    };
    static B_ROW: RowStatement = RowStatement {
        table: "b",
        one: "INSERT INTO b (x, y) VALUES (?1, ?2)",
        many: "INSERT INTO b (x, y) SELECT x, y FROM unnest($1::text[], $2::int8[]) AS u(x, y)",
        pg_one: None,
        types: &[ArrayType::Text, ArrayType::Int8],
    };
    static C_ROW: RowStatement = RowStatement {
        table: "c",
        one: "INSERT INTO c (x) VALUES (?1)",
        many: "WITH e AS (INSERT INTO c (x) SELECT x FROM unnest($1::int8[]) AS u(x) RETURNING x) \
               INSERT INTO c_seen (x) SELECT x FROM e WHERE x <> 0",
        pg_one: None,
        types: &[ArrayType::Int8],
    };
    static D_ROW: RowStatement = RowStatement {
        table: "d",
        one: "INSERT INTO d (x) VALUES (?1)",
        many:
            "WITH e AS (SELECT x FROM unnest($1::int8[]) AS u(x)) INSERT INTO d (x) SELECT x FROM e",
        pg_one: None,
        types: &[ArrayType::Int8],
    };

    #[test]
    fn parameters_are_renumbered_outside_quotes() {
        assert_eq!(
            shift_params("SELECT $1, $2::text[], '$1', \"$2\", $10 FROM t", 3),
            "SELECT $4, $5::text[], '$1', \"$2\", $13 FROM t"
        );
        assert_eq!(shift_params("SELECT $ 1, $x", 3), "SELECT $ 1, $x");
        assert_eq!(shift_params("SELECT $1", 0), "SELECT $1");
    }

    /// Rows of statements of different tables go together, each in a `WITH` of its own, their
    /// parameters one after another; a statement with a `WITH` of its own is the main one.
    #[test]
    fn rows_of_several_tables_make_one_statement() {
        assert_eq!(
            combined_sql(&[&A_ROW, &B_ROW]),
            "WITH g0 AS (INSERT INTO a (x) SELECT x FROM unnest($1::text[]) AS u(x)), \
             g1 AS (INSERT INTO b (x, y) SELECT x, y FROM unnest($2::text[], $3::int8[]) AS u(x, y)) \
             SELECT 1"
        );
        assert_eq!(
            combined_sql(&[&B_ROW, &C_ROW, &A_ROW]),
            "WITH g0 AS (INSERT INTO b (x, y) SELECT x, y FROM unnest($1::text[], $2::int8[]) AS u(x, y)), \
             g1 AS (INSERT INTO a (x) SELECT x FROM unnest($4::text[]) AS u(x)), \
             e AS (INSERT INTO c (x) SELECT x FROM unnest($3::int8[]) AS u(x) RETURNING x) \
             INSERT INTO c_seen (x) SELECT x FROM e WHERE x <> 0"
        );
    }

    /// What runs together: consecutive rows of statements of different tables, at most one of
    /// them with a `WITH`; a write of one statement, or a second statement of a table in the
    /// run, or a second `WITH`, starts a new one.
    #[test]
    fn runs_break_at_a_write_a_table_seen_or_a_second_with() {
        let spans = |q: &[Option<&RowStatement>]| -> Vec<(usize, usize)> {
            runs(q).into_iter().map(|r| (r.start, r.end)).collect()
        };
        let (a, a_done, b, c, d) = (
            Some(&A_ROW),
            Some(&A_DONE),
            Some(&B_ROW),
            Some(&C_ROW),
            Some(&D_ROW),
        );
        assert_eq!(spans(&[]), []);
        assert_eq!(spans(&[a]), [(0, 1)]);
        assert_eq!(spans(&[a, b, c]), [(0, 3)]);
        assert_eq!(spans(&[a, None, b, c]), [(0, 1), (1, 2), (2, 4)]);
        assert_eq!(
            spans(&[a, b, a_done, c]),
            [(0, 2), (2, 4)],
            "a's delete after a's insert"
        );
        assert_eq!(
            spans(&[c, a, d, b]),
            [(0, 2), (2, 4)],
            "one WITH a statement"
        );
        assert_eq!(spans(&[None, None]), [(0, 1), (1, 2)]);
    }

    #[test]
    fn placeholders() {
        assert_eq!(
            translate("SELECT a FROM t WHERE b = ?1 AND c = '?2' AND d = ?12"),
            "SELECT a FROM t WHERE b = $1 AND c = '?2' AND d = $12"
        );
    }

    #[test]
    fn sqlite_roundtrip() {
        let c = Conn::Sqlite(rusqlite::Connection::open_in_memory().unwrap().into());
        c.execute_batch("CREATE TABLE t (a INTEGER, b TEXT)")
            .unwrap();
        c.execute("INSERT INTO t VALUES (?1, ?2)", params![3, "x"])
            .unwrap();
        let (a, b): (i64, Option<String>) = c
            .query_row("SELECT a, b FROM t", [], |r| Ok((r.get(0)?, r.get("b")?)))
            .unwrap();
        assert_eq!((a, b.as_deref()), (3, Some("x")));
        let none = c
            .query_row("SELECT a FROM t WHERE a = ?1", [4], |r| r.get::<_, i64>(0))
            .optional()
            .unwrap();
        assert_eq!(none, None);
    }

    #[test]
    fn sqlite_binds_borrowed_values_and_checks_their_number() {
        let c = Conn::Sqlite(rusqlite::Connection::open_in_memory().unwrap().into());
        c.execute_batch("CREATE TABLE t (a, b, c, d, e)").unwrap();
        let (text, blob) = (String::from("héllo"), vec![0u8, 1, 2]);
        let none: Option<&str> = None;
        c.execute(
            "INSERT INTO t VALUES (?1, ?2, ?3, ?4, ?5)",
            params![text, Some(&text[..1]), true, blob, none],
        )
        .unwrap();
        c.execute(
            "INSERT INTO t VALUES (?1, ?2, ?3, ?4, ?5)",
            params![Value::Int(7), 1.5, u64::MAX, "x", Value::Null],
        )
        .unwrap();
        let rows: Vec<(Value, Value, Value, Value, Value)> = c
            .prepare("SELECT a, b, c, d, e FROM t ORDER BY rowid")
            .unwrap()
            .query_map([], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })
            .unwrap()
            .collect::<Result<_>>()
            .unwrap();
        assert_eq!(
            rows,
            vec![
                (
                    Value::Text("héllo".into()),
                    Value::Text("h".into()),
                    Value::Int(1),
                    Value::Blob(vec![0, 1, 2]),
                    Value::Null
                ),
                (
                    Value::Int(7),
                    Value::Real(1.5),
                    Value::Int(-1),
                    Value::Text("x".into()),
                    Value::Null
                ),
            ]
        );
        // Too few and too many parameters are refused, by execute and by a query.
        for bad in [params![1, 2, 3, 4], params![1, 2, 3, 4, 5, 6]] {
            let err = c
                .execute("INSERT INTO t VALUES (?1, ?2, ?3, ?4, ?5)", bad)
                .unwrap_err();
            assert!(
                format!("{err:?}").contains("Wrong number of parameters"),
                "{err:?}"
            );
        }
        let n: i64 = c
            .query_row("SELECT COUNT(*) FROM t WHERE a = ?1", params![7], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(n, 1);
        let err = c.query_row("SELECT COUNT(*) FROM t WHERE a = ?1", params![], |r| {
            r.get::<_, i64>(0)
        });
        assert!(format!("{:?}", err.unwrap_err()).contains("Wrong number of parameters"));
    }
}
