//! Moving a whole installation between databases (`greenlight export` / `greenlight import`),
//! e.g. from SQLite into PostgreSQL.
//!
//! The dump is JSON lines, driven by the schema rather than by a list kept here: for every
//! table of the source, a header `{"table": …, "columns": […]}` then one JSON array per row.
//! Values keep their type (integers, reals, text, `null`; bytes as `{"base64": …}`). The
//! export reads one consistent snapshot. The import runs in one transaction (on PostgreSQL
//! under the write lock, so no node writes meanwhile): it empties each table it fills, inserts
//! the rows, then moves PostgreSQL's id sequences past the imported ids. A target that already
//! holds tenants is refused. Columns the target lacks are reported and left out; the insertion
//! order column (`rowid`) is regenerated. Rows stream through: neither side holds a table in
//! memory.

use crate::db::{Conn, Value};
use crate::{StoreError, StoreResult};
use base64::Engine;
use std::io::{BufRead, Write};

/// What moved.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TransferStats {
    pub tables: usize,
    pub rows: u64,
    /// Notes for the operator (tables or columns the target does not have).
    pub notes: Vec<String>,
}

/// Tables of one backend only or built from others, and the cache counter `config_version`:
/// never moved. (SQLite's chains of messages are built again after an import: the rowids are
/// new; so are the blocks of its reach log's rows, and on both backends those of the outbox's
/// ids. PostgreSQL's running reach count is built again from `reach_log`, as SQLite's writer
/// builds its own in memory.)
const SKIP: &[&str] = &[
    "schema_migrations",
    "pacing_buckets",
    "sqlite_sequence",
    "config_version",
    "message_heads",
    "outbox_blocks",
    "reach_blocks",
    "reach_recent",
    "reach_counts",
];

/// Columns of one backend only, never moved: SQLite's links of a message into its chains
/// (rowids, built again after an import).
const SKIP_COLUMNS: &[(&str, &str)] = &[("messages", "pair_prev"), ("messages", "number_prev")];

fn io(e: impl std::fmt::Display) -> StoreError {
    StoreError::Internal(format!("dump: {e}"))
}

/// Opens `url` (`sqlite://…` or `postgres://…`) with its schema up to date. Must not be called
/// from inside an async context (the PostgreSQL client runs its own runtime).
pub fn open(url: &str) -> StoreResult<Conn> {
    if crate::postgres::is_postgres_url(url) {
        crate::postgres::connect_migrated(url)
    } else {
        let path = crate::sqlite::path_from_url(url).ok_or_else(|| {
            StoreError::Internal(format!(
                "unknown database URL scheme; accepted: sqlite://<path>, postgres://… ({})",
                url.split("://").next().unwrap_or_default()
            ))
        })?;
        let c = rusqlite::Connection::open(&path)
            .map_err(|e| StoreError::Unavailable(format!("cannot open {path}: {e}")))?;
        c.busy_timeout(std::time::Duration::from_millis(5000))?;
        crate::sqlite::create_schema(&c)?;
        Ok(Conn::Sqlite(c.into()))
    }
}

/// The tables of the connected database, in name order.
fn tables(c: &Conn) -> StoreResult<Vec<String>> {
    let sql = if c.is_pg() {
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = current_schema() \
         AND table_type = 'BASE TABLE' ORDER BY 1"
    } else {
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY 1"
    };
    let names = c
        .prepare(sql)?
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(names
        .into_iter()
        .filter(|t| !SKIP.contains(&t.as_str()))
        .collect())
}

/// The columns of `table`, in order.
fn columns(c: &Conn, table: &str) -> StoreResult<Vec<String>> {
    let sql = format!("SELECT * FROM {} LIMIT 0", ident(table)?);
    Ok(c.prepare(&sql)?.column_names())
}

/// A table or column name from the schema, checked before it is put in SQL text.
fn ident(name: &str) -> StoreResult<&str> {
    if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        Ok(name)
    } else {
        Err(StoreError::Internal(format!("unexpected name {name:?}")))
    }
}

fn to_json(v: Value) -> serde_json::Value {
    match v {
        Value::Null => serde_json::Value::Null,
        Value::Int(i) => i.into(),
        Value::Real(f) => serde_json::Number::from_f64(f)
            .map(serde_json::Value::Number)
            .unwrap_or(serde_json::Value::Null),
        Value::Text(s) => s.into(),
        Value::Blob(b) => serde_json::json!({
            "base64": base64::engine::general_purpose::STANDARD.encode(b)
        }),
    }
}

fn from_json(v: &serde_json::Value) -> StoreResult<Value> {
    Ok(match v {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => Value::Real(n.as_f64().ok_or_else(|| io("bad number"))?),
        },
        serde_json::Value::String(s) => Value::Text(s.clone()),
        serde_json::Value::Bool(b) => Value::Int(*b as i64),
        serde_json::Value::Object(o) => match o.get("base64").and_then(|b| b.as_str()) {
            Some(b) => Value::Blob(
                base64::engine::general_purpose::STANDARD
                    .decode(b)
                    .map_err(io)?,
            ),
            None => return Err(io("unexpected object value")),
        },
        serde_json::Value::Array(_) => return Err(io("unexpected array value")),
    })
}

/// Writes every table of `url` to `out`.
pub fn export(url: &str, out: &mut dyn Write) -> StoreResult<TransferStats> {
    let c = open(url)?;
    c.execute_batch(if c.is_pg() {
        "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
    } else {
        "BEGIN"
    })?;
    let mut stats = TransferStats::default();
    for table in tables(&c)? {
        let cols: Vec<String> = columns(&c, &table)?
            .into_iter()
            .filter(|c| c != "rowid" && !SKIP_COLUMNS.contains(&(table.as_str(), c.as_str())))
            .collect();
        // insertion order, where the table keeps one
        let order = if c.is_pg() {
            columns(&c, &table)?
                .iter()
                .any(|c| c == "rowid")
                .then_some(" ORDER BY rowid")
        } else {
            c.prepare(&format!("SELECT rowid FROM {table} LIMIT 0"))
                .is_ok()
                .then_some(" ORDER BY rowid")
        };
        let list = cols
            .iter()
            .map(|c| ident(c).map(str::to_string))
            .collect::<StoreResult<Vec<_>>>()?
            .join(", ");
        let sql = format!(
            "SELECT {list} FROM {}{}",
            ident(&table)?,
            order.unwrap_or_default()
        );
        writeln!(
            out,
            "{}",
            serde_json::json!({ "table": table, "columns": cols })
        )
        .map_err(io)?;
        let n = cols.len();
        c.prepare(&sql)?.for_each([], |r| {
            let row = (0..n)
                .map(|i| r.get::<_, Value>(i).map(to_json))
                .collect::<Result<Vec<_>, _>>()?;
            writeln!(out, "{}", serde_json::Value::Array(row)).map_err(io)?;
            stats.rows += 1;
            Ok(())
        })?;
        stats.tables += 1;
    }
    c.execute_batch("COMMIT")?;
    out.flush().map_err(io)?;
    Ok(stats)
}

/// Reads a dump from `input` into `url`, in one transaction.
pub fn import(url: &str, input: &mut dyn BufRead) -> StoreResult<TransferStats> {
    let c = open(url)?;
    c.execute_batch(if c.is_pg() {
        crate::postgres::BEGIN
    } else {
        "BEGIN IMMEDIATE"
    })?;
    // on PostgreSQL, running nodes' shard writers forget what they kept of customers
    let imported = import_tx(&c, input).and_then(|stats| {
        if c.is_pg() {
            c.execute_batch(&crate::postgres::bump_epochs())?;
        }
        Ok(stats)
    });
    match imported {
        Ok(stats) => {
            c.execute_batch("COMMIT")?;
            Ok(stats)
        }
        Err(e) => {
            let _ = c.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

fn import_tx(c: &Conn, input: &mut dyn BufRead) -> StoreResult<TransferStats> {
    let tenants: i64 = c.query_row("SELECT COUNT(*) FROM businesses", [], |r| r.get(0))?;
    if tenants > 0 {
        return Err(StoreError::Internal(format!(
            "the target database already holds {tenants} tenant(s); import into a new, empty database"
        )));
    }
    let target_tables = tables(c)?;
    let mut stats = TransferStats::default();
    // the current table: its INSERT and, per column of the dump, whether the target has it
    let mut current: Option<(String, Vec<bool>)> = None;
    let mut line = String::new();
    let mut n = 0usize;
    loop {
        line.clear();
        if input.read_line(&mut line).map_err(io)? == 0 {
            break;
        }
        n += 1;
        if line.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value =
            serde_json::from_str(&line).map_err(|e| io(format!("line {n}: {e}")))?;
        if let Some(table) = v.get("table").and_then(|t| t.as_str()) {
            let cols: Vec<String> = v["columns"]
                .as_array()
                .ok_or_else(|| io(format!("line {n}: a header without columns")))?
                .iter()
                .filter_map(|c| c.as_str().map(str::to_string))
                .collect();
            if !target_tables.iter().any(|t| t == table) {
                stats
                    .notes
                    .push(format!("table {table} is not in the target; left out"));
                current = Some((String::new(), vec![false; cols.len()]));
                continue;
            }
            let have = columns(c, table)?;
            let keep: Vec<bool> = cols.iter().map(|col| have.contains(col)).collect();
            for (col, k) in cols.iter().zip(&keep) {
                if !k {
                    stats.notes.push(format!(
                        "column {table}.{col} is not in the target; left out"
                    ));
                }
            }
            let kept: Vec<&str> = cols
                .iter()
                .zip(&keep)
                .filter(|(_, k)| **k)
                .map(|(c, _)| ident(c))
                .collect::<StoreResult<_>>()?;
            let placeholders: Vec<String> = (1..=kept.len()).map(|i| format!("?{i}")).collect();
            c.execute(&format!("DELETE FROM {}", ident(table)?), [])?;
            let insert = format!(
                "INSERT INTO {table} ({}) VALUES ({})",
                kept.join(", "),
                placeholders.join(", ")
            );
            current = Some((insert, keep));
            stats.tables += 1;
            continue;
        }
        let Some((insert, keep)) = &current else {
            return Err(io(format!("line {n}: a row before any table header")));
        };
        if insert.is_empty() {
            continue;
        }
        let row = v
            .as_array()
            .ok_or_else(|| io(format!("line {n}: expected a row (an array)")))?;
        if row.len() != keep.len() {
            return Err(io(format!(
                "line {n}: {} values for {} columns",
                row.len(),
                keep.len()
            )));
        }
        let values = row
            .iter()
            .zip(keep)
            .filter(|(_, k)| **k)
            .map(|(v, _)| from_json(v))
            .collect::<StoreResult<Vec<Value>>>()?;
        c.prepare_cached(insert)?.execute(values)?;
        stats.rows += 1;
    }
    if !c.is_pg() {
        // the messages have new rowids: their chains are built from them
        crate::sqlite::chains::rebuild(c.sqlite().expect("SQLite"))?;
        // and so are the blocks of ids the outbox's skipped events are found by
        crate::sqlite::webhooks::rebuild_blocks(c.sqlite().expect("SQLite"))?;
        // and those a business's rows of the reach log are found by
        crate::sqlite::reach_blocks::rebuild(c.sqlite().expect("SQLite"))?;
    }
    if c.is_pg() {
        // the blocks of ids the outbox's skipped events are found by (its ids are kept, but
        // the table is one of a backend's own)
        c.execute_batch(&crate::sqlite::webhooks::rebuild_blocks_sql())?;
        // move every id sequence past the imported ids
        let serials = c
            .prepare(
                "SELECT table_name::text, column_name::text FROM information_schema.columns \
                 WHERE table_schema = current_schema() AND column_default LIKE 'nextval(%'",
            )?
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
            .collect::<Result<Vec<_>, _>>()?;
        for (table, col) in serials {
            let (t, col) = (ident(&table)?, ident(&col)?);
            c.query_row(
                &format!(
                    "SELECT setval(pg_get_serial_sequence('{t}', '{col}'), COALESCE((SELECT MAX({col}) FROM {t}), 0) + 1, false)"
                ),
                [],
                |_| Ok(()),
            )?;
        }
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An import into SQLite gives the reach log's rows their new rowids' blocks: a business's
    /// reaches are found by them (`sqlite/reach_blocks.rs`), as in the database exported.
    #[test]
    fn an_import_into_sqlite_finds_the_reach_log_by_its_blocks() {
        let dir = tempfile::tempdir().unwrap();
        let url = |name: &str| format!("sqlite://{}", dir.path().join(name).display());
        let source = open(&url("source.db")).unwrap();
        source
            .execute_batch(
                "INSERT INTO reach_log (business_id, wa_id, at) VALUES \
                 ('b1', '15550001', 10), ('b2', '15550001', 20), ('b1', '15550002', 30), \
                 ('b1', '15550001', 40)",
            )
            .unwrap();
        crate::sqlite::reach_blocks::rebuild(source.sqlite().unwrap()).unwrap();
        drop(source);
        let mut dump = Vec::new();
        export(&url("source.db"), &mut dump).unwrap();
        import(&url("target.db"), &mut &dump[..]).unwrap();
        let target = open(&url("target.db")).unwrap();
        let count = |b: &str, from: i64, to: i64| -> i64 {
            target
                .query_row(
                    concat!(
                        "SELECT COUNT(DISTINCT r.wa_id) FROM ",
                        crate::sqlite::reach_blocks::rows_between!()
                    ),
                    crate::params![b, from, to],
                    |r| r.get(0),
                )
                .unwrap()
        };
        assert_eq!(count("b1", 0, 100), 2);
        assert_eq!(count("b1", 30, 100), 1);
        assert_eq!(count("b2", 0, 100), 1);
        assert_eq!(count("b2", 20, 100), 0);
    }

    /// An import into PostgreSQL writes the blocks of the outbox's ids, by which a business's
    /// skipped events are found (the table is not moved: it is built from the events).
    #[test]
    fn an_import_into_postgresql_writes_the_outbox_blocks() {
        let Some(db) = crate::postgres::testing::TestDb::create("import_outbox_blocks") else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let source_url = format!("sqlite://{}", dir.path().join("source.db").display());
        let source = open(&source_url).unwrap();
        source
            .execute_batch(
                "INSERT INTO outbox (id, business_id, waba_id, field, payload, created_at, next_attempt_at, state) VALUES \
                 (1, 'b1', 'w1', 'messages', '{}', 10, 10, 'skipped'), \
                 (2, 'b2', 'w2', 'messages', '{}', 10, 10, 'skipped'), \
                 (5000, 'b2', 'w2', 'messages', '{}', 20, 20, 'delivered')",
            )
            .unwrap();
        drop(source);
        let mut dump = Vec::new();
        export(&source_url, &mut dump).unwrap();
        import(&db.url, &mut &dump[..]).unwrap();
        let target = open(&db.url).unwrap();
        let blocks: Vec<(String, i64)> = target
            .prepare("SELECT business_id, block FROM outbox_blocks ORDER BY 1, 2")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            blocks,
            [("b1".into(), 0), ("b2".into(), 0), ("b2".into(), 1)]
        );
    }
}
