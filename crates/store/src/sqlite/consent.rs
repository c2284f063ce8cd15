//! [`ConsentStore`] for SQLite.

use super::SqliteStore;
use crate::consent::*;
use crate::db::{self, Conn, Row};
use crate::params;
use crate::{ids, Scope, StoreResult};
use async_trait::async_trait;
use greenlight_domain::Millis;

const COLS: &str = "id, waba_id, wa_id, scope, source, proof, captured_at, recorded_by, revoked_at, revoked_by, revocation_proof, seq";

fn from_row(r: &Row) -> db::Result<OptIn> {
    let revoked_at: Option<i64> = r.get(8)?;
    Ok(OptIn {
        id: r.get(0)?,
        waba_id: r.get(1)?,
        wa_id: r.get(2)?,
        scope: r.get(3)?,
        source: r.get(4)?,
        proof: r.get(5)?,
        captured_at: r.get::<_, i64>(6)?.div_euclid(1000),
        recorded_by: r.get(7)?,
        status: if revoked_at.is_some() {
            "revoked".into()
        } else {
            "active".into()
        },
        revoked_at: revoked_at.map(|t| t.div_euclid(1000)),
        revoked_by: r.get(9)?,
        revocation_proof: r.get(10)?,
        seq: r.get(11)?,
    })
}

pub(crate) fn insert(
    conn: &Conn,
    business_id: &str,
    waba_id: &str,
    o: &NewOptIn,
    now: Millis,
) -> StoreResult<OptIn> {
    let id = ids::object_id();
    let seq: i64 = conn
        .prepare_cached("SELECT COALESCE(MAX(seq), 0) + 1 FROM opt_ins")?
        .query_row([], |r| r.get(0))?;
    conn.prepare_cached(
        "INSERT INTO opt_ins (id, seq, business_id, waba_id, wa_id, scope, source, proof, captured_at, recorded_by, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?
    .execute(params![id, seq, business_id, waba_id, o.wa_id, o.scope, o.source, o.proof, o.captured_at, o.recorded_by, now])?;
    Ok(OptIn {
        id,
        waba_id: waba_id.to_string(),
        wa_id: o.wa_id.clone(),
        scope: o.scope.clone(),
        source: o.source.clone(),
        proof: o.proof.clone(),
        captured_at: o.captured_at.div_euclid(1000),
        recorded_by: o.recorded_by.clone(),
        status: "active".into(),
        revoked_at: None,
        revoked_by: None,
        revocation_proof: None,
        seq,
    })
}

pub(crate) fn revoke(conn: &Conn, business_id: &str, r: &Revocation) -> StoreResult<usize> {
    Ok(match &r.scope {
        Some(s) => conn
            .prepare_cached(
                "UPDATE opt_ins SET revoked_at = ?1, revoked_by = ?2, revocation_proof = ?3 WHERE business_id = ?4 AND wa_id = ?5 AND scope = ?6 AND revoked_at IS NULL",
            )?
            .execute(params![r.now, r.by, r.proof, business_id, r.wa_id, s])?,
        None => conn
            .prepare_cached(
                "UPDATE opt_ins SET revoked_at = ?1, revoked_by = ?2, revocation_proof = ?3 WHERE business_id = ?4 AND wa_id = ?5 AND revoked_at IS NULL",
            )?
            .execute(params![r.now, r.by, r.proof, business_id, r.wa_id])?,
    })
}

#[async_trait]
impl ConsentStore for SqliteStore {
    async fn record_opt_ins(
        &self,
        scope: &Scope,
        waba_id: &str,
        items: Vec<NewOptIn>,
        now: Millis,
    ) -> StoreResult<Vec<OptIn>> {
        let (b, w) = (scope.business_id.clone(), waba_id.to_string());
        self.write(move |c| items.iter().map(|o| insert(c, &b, &w, o, now)).collect())
            .await
    }

    async fn list_opt_ins(
        &self,
        scope: &Scope,
        waba_id: &str,
        f: OptInFilter,
        limit: usize,
        after: Option<i64>,
    ) -> StoreResult<(Vec<OptIn>, bool)> {
        let (b, w) = (scope.business_id.clone(), waba_id.to_string());
        self.read(move |c| {
            let sql = format!(
                "SELECT {COLS} FROM opt_ins WHERE business_id = ?1 AND waba_id = ?2 AND seq > ?3 \
                 AND (wa_id = ?4 OR ?4 IS NULL) AND (scope = ?5 OR ?5 IS NULL) AND (?6 OR revoked_at IS NULL) ORDER BY seq LIMIT ?7"
            );
            let mut stmt = c.prepare_cached(&sql)?;
            let rows = stmt.query_map(params![b, w, after.unwrap_or(0), f.wa_id, f.scope, f.include_revoked, (limit + 1) as i64], from_row)?;
            let mut out = rows.collect::<Result<Vec<_>, _>>()?;
            let more = out.len() > limit;
            out.truncate(limit);
            Ok((out, more))
        })
        .await
    }

    async fn revoke_opt_ins(
        &self,
        scope: &Scope,
        _waba_id: &str,
        r: Revocation,
    ) -> StoreResult<usize> {
        let b = scope.business_id.clone();
        self.write(move |c| revoke(c, &b, &r)).await
    }
}
