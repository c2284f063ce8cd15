//! SQLite: a business's rows of `reach_log` found by blocks of the log's rowids, not by an
//! index by business.
//!
//! Every business-initiated send appends a row to `reach_log`. An index by business and time
//! (`reach_business_at`, which PostgreSQL keeps) put each row at its business's end of the
//! index: a commit of many businesses' sends dirtied a page of that index per business, ~11
//! pages a commit and a quarter of a template batch's log, and ~7,000 of a template's writer
//! instructions (docs/BENCHMARKS.md, thirty-ninth round). As the outbox's `outbox_blocks` do,
//! `reach_blocks` holds a row per business and block of `1 << BLOCK_BITS` rowids it has rows
//! in, with bounds on their times: a business's rows in a time range are its blocks whose
//! bounds meet the range, each a range of rowids read for the business's rows. The log is
//! appended in about time order, so a range reads the few newest blocks.
//!
//! A block's `min_at` is at most, and `max_at` at least, the `at` of every row of its business
//! in the block. `max_at` is written rounded up to the next [`MAX_AT_STEP`], so that a
//! business's sends write its block's row about once a step, not once a send; the writer
//! remembers what the rows it wrote cover ([`Known`]) and writes only when a reach falls
//! outside. Rows taken out of the log (the gateway's undo) leave the bounds as they were:
//! wider than needed, never too narrow.
//!
//! The reads and the delete of a business's rows between two times on either backend are
//! here too ([`select_between!`], [`delete_at`]): PostgreSQL keeps its index by business.

use crate::db::Conn;
use crate::params;
use crate::StoreResult;
use greenlight_domain::Millis;

/// Rowids per block: `rowid >> BLOCK_BITS` is a row's block.
pub(crate) const BLOCK_BITS: u32 = 12;

/// What `max_at` is rounded up to (ten minutes).
pub(crate) const MAX_AT_STEP: Millis = 600_000;

/// What the writer knows `reach_blocks` covers, per business: its newest block and times the
/// block's row is known to cover (emptied when a job or batch rolls back, see
/// `Memory::forget_reach`).
pub(crate) type Known = crate::keys::HashMap<String, Cover>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cover {
    block: i64,
    min_at: Millis,
    max_at: Millis,
}

/// The rows of business `?1` between the times `?2` (excluded) and `?3` (included), as a
/// `FROM … WHERE …` for a statement to select from (`r` is `reach_log`): its blocks whose bounds
/// meet the range, then each block's rowids (`12`: [`BLOCK_BITS`]). A literal, for `concat!`.
macro_rules! rows_between {
    () => {
        "reach_blocks k JOIN reach_log r \
         ON r.rowid >= (k.block << 12) AND r.rowid < ((k.block + 1) << 12) \
         WHERE k.business_id = ?1 AND k.max_at > ?2 AND k.min_at <= ?3 \
         AND r.business_id = ?1 AND r.at > ?2 AND r.at <= ?3"
    };
}
pub(crate) use rows_between;

/// `SELECT $cols FROM` the rows of business `?1` between the times `?2` (excluded) and `?3`
/// (included), `r` being `reach_log`: by the blocks on SQLite ([`rows_between!`]), by the index
/// by business and time on PostgreSQL. The statement's text, for `prepare_cached`.
macro_rules! select_between {
    ($conn:expr, $cols:literal) => {
        if $conn.is_pg() {
            concat!(
                "SELECT ",
                $cols,
                " FROM reach_log r WHERE r.business_id = ?1 AND r.at > ?2 AND r.at <= ?3"
            )
        } else {
            concat!(
                "SELECT ",
                $cols,
                " FROM ",
                $crate::sqlite::reach_blocks::rows_between!()
            )
        }
    };
}
pub(crate) use select_between;

/// Records in `reach_blocks` the row just inserted into `reach_log` for `business_id` at `at`,
/// unless `known` says its block's row covers it. SQLite only.
pub(crate) fn note(
    conn: &Conn,
    known: &mut Known,
    business_id: &str,
    at: Millis,
) -> StoreResult<()> {
    let block = conn.last_insert_rowid() >> BLOCK_BITS;
    let cover = match known.get(business_id) {
        Some(c) if c.block == block && c.min_at <= at && at <= c.max_at => return Ok(()),
        Some(c) if c.block == block => Cover {
            block,
            min_at: c.min_at.min(at),
            max_at: c.max_at.max(round_up(at)),
        },
        _ => Cover {
            block,
            min_at: at,
            max_at: round_up(at),
        },
    };
    // The stored row may already cover more (written before this writer knew it): widened,
    // never narrowed.
    conn.execute_static(
        "INSERT INTO reach_blocks (business_id, block, min_at, max_at) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (business_id, block) DO UPDATE SET \
         min_at = MIN(min_at, excluded.min_at), max_at = MAX(max_at, excluded.max_at)",
        params![business_id, block, cover.min_at, cover.max_at],
    )?;
    match known.get_mut(business_id) {
        Some(c) => *c = cover,
        None => {
            known.insert(business_id.to_string(), cover);
        }
    }
    Ok(())
}

/// Takes the business's rows of `wa_id` at `at` out of the log: on SQLite found by its blocks
/// (whose bounds stay as they were), on PostgreSQL by its index.
pub(crate) fn delete_at(
    conn: &Conn,
    business_id: &str,
    wa_id: &str,
    at: Millis,
) -> StoreResult<()> {
    if conn.is_pg() {
        conn.prepare_cached(
            "DELETE FROM reach_log WHERE business_id = ?1 AND wa_id = ?2 AND at = ?3",
        )?
        .execute(params![business_id, wa_id, at])?;
        return Ok(());
    }
    conn.prepare_cached(concat!(
        "DELETE FROM reach_log WHERE rowid IN (SELECT r.rowid FROM ",
        rows_between!(),
        " AND r.wa_id = ?4)"
    ))?
    // after `at - 1`, up to `at`
    .execute(params![business_id, at - 1, at, wa_id])?;
    Ok(())
}

/// `at` rounded up to the next multiple of [`MAX_AT_STEP`] (itself when it is one).
fn round_up(at: Millis) -> Millis {
    let r = at.rem_euclid(MAX_AT_STEP);
    if r == 0 {
        at
    } else {
        at + (MAX_AT_STEP - r)
    }
}

/// Whether the log's blocks are written (`meta.reach_blocks`): a database from before
/// `reach_blocks` has rows without, and the index `reach_business_at`.
pub(crate) fn written(c: &rusqlite::Connection) -> StoreResult<bool> {
    super::upgraded(c, "reach_blocks")
}

/// Unless [`written`], writes the blocks of every row of the log, drops `reach_business_at`
/// and records it, in one transaction: a start cut short does it again. Part of
/// `create_schema`; on a new database it only records it.
pub(crate) fn write(c: &rusqlite::Connection) -> StoreResult<()> {
    super::upgrade_once(
        c,
        "reach_blocks",
        rebuild,
        "DROP INDEX IF EXISTS reach_business_at",
    )
}

/// `reach_blocks` written again from every row of the log (an upgrade's, an import's, whose
/// rows have new rowids), with exact bounds, in the caller's transaction.
pub(crate) fn rebuild(c: &rusqlite::Connection) -> StoreResult<()> {
    c.execute_batch(&format!(
        "DELETE FROM reach_blocks; \
         INSERT INTO reach_blocks (business_id, block, min_at, max_at) \
         SELECT business_id, rowid >> {BLOCK_BITS}, MIN(at), MAX(at) FROM reach_log \
         GROUP BY business_id, rowid >> {BLOCK_BITS}"
    ))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_statements_block_is_block_bits() {
        let shift = format!("<< {BLOCK_BITS})");
        assert_eq!(rows_between!().matches(shift.as_str()).count(), 2);
    }

    #[test]
    fn max_at_rounds_up_to_its_step() {
        assert_eq!(round_up(0), 0);
        assert_eq!(round_up(1), MAX_AT_STEP);
        assert_eq!(round_up(MAX_AT_STEP), MAX_AT_STEP);
        assert_eq!(round_up(MAX_AT_STEP + 1), 2 * MAX_AT_STEP);
        assert_eq!(round_up(-1), 0);
        assert_eq!(round_up(-MAX_AT_STEP - 1), -MAX_AT_STEP);
    }
}
