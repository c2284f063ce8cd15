//! [`TemplateStore`] for SQLite, and the review task run by `run_due`.

use super::ops::enqueue;
use super::read::json_col;
use super::{internal, SqliteStore};
use crate::db::{self, Conn, OptionalExtension, Row};
use crate::params;
use crate::templates::*;
use crate::{ids, Scope, StoreResult};
use async_trait::async_trait;
use greenlight_domain::template::{self, Decision};
use greenlight_domain::{ApiError, Millis, DAY, HOUR};
use serde_json::{json, Value};

pub const UNVERIFIED_TEMPLATE_LIMIT: u64 = 250;
pub const VERIFIED_TEMPLATE_LIMIT: u64 = 6000;
pub const CREATIONS_PER_HOUR: u64 = 100;

const COLS: &str = "id, waba_id, name, language, category, previous_category, status, rejected_reason, rejection_info, \
     quality_score, quality_at, definition, review, paused_until, pause_count, created_at, updated_at, seq";

fn from_row(r: &Row) -> db::Result<TemplateRecord> {
    let parse = |s: Option<String>| s.and_then(|s| serde_json::from_str::<Value>(&s).ok());
    Ok(TemplateRecord {
        id: r.get(0)?,
        waba_id: r.get(1)?,
        name: r.get(2)?,
        language: r.get(3)?,
        category: r.get(4)?,
        previous_category: r.get(5)?,
        status: r.get(6)?,
        rejected_reason: r.get(7)?,
        rejection_info: parse(r.get(8)?),
        quality_score: r.get(9)?,
        quality_at: r.get(10)?,
        definition: parse(r.get(11)?).unwrap_or(Value::Null),
        review: parse(r.get(12)?),
        paused_until: r.get(13)?,
        pause_count: r.get(14)?,
        created_at: r.get(15)?,
        updated_at: r.get(16)?,
        seq: r.get(17)?,
    })
}

pub(crate) fn load(
    conn: &Conn,
    business_id: &str,
    id: &str,
) -> StoreResult<Option<TemplateRecord>> {
    let sql = format!(
        "SELECT {COLS} FROM templates WHERE id = ?1 AND business_id = ?2 AND status != 'DELETED'"
    );
    Ok(conn
        .prepare_cached(&sql)?
        .query_row(params![id, business_id], from_row)
        .optional()?)
}

/// The live template with this name and language in a WABA (what a send resolves).
pub(crate) fn by_name(
    conn: &Conn,
    waba_id: &str,
    name: &str,
    language: &str,
) -> StoreResult<Option<TemplateRecord>> {
    let sql = format!(
        "SELECT {COLS} FROM templates WHERE waba_id = ?1 AND name = ?2 AND language = ?3 AND status NOT IN ('DELETED', 'PENDING_DELETION') ORDER BY seq DESC LIMIT 1"
    );
    Ok(conn
        .prepare_cached(&sql)?
        .query_row(params![waba_id, name, language], from_row)
        .optional()?)
}

fn template_limit(conn: &Conn, business_id: &str) -> StoreResult<u64> {
    let v: String = conn
        .prepare_cached("SELECT verification FROM businesses WHERE id = ?1")?
        .query_row(params![business_id], |r| r.get(0))?;
    Ok(if v == "verified" {
        VERIFIED_TEMPLATE_LIMIT
    } else {
        UNVERIFIED_TEMPLATE_LIMIT
    })
}

fn live_count(conn: &Conn, waba_id: &str) -> StoreResult<u64> {
    Ok(conn
        .prepare_cached(
            "SELECT COUNT(*) FROM templates WHERE waba_id = ?1 AND status NOT IN ('DELETED')",
        )?
        .query_row(params![waba_id], |r| r.get::<_, i64>(0))? as u64)
}

/// `message_template_status_update` value (cloud-api-facts.md §10.6, fixtures).
pub(crate) fn status_event(
    t: &TemplateRecord,
    event: &str,
    reason: Option<&str>,
    extra: Option<(&str, Value)>,
) -> Value {
    let mut v = json!({
        "event": event,
        "message_template_id": t.id.parse::<u64>().unwrap_or(0),
        "message_template_name": t.name,
        "message_template_language": t.language,
        "reason": reason.unwrap_or("NONE"),
        "message_template_category": t.category,
    });
    if let Some((k, val)) = extra {
        v[k] = val;
    }
    v
}

fn emit(
    conn: &Conn,
    business_id: &str,
    waba_id: &str,
    field: &str,
    value: &Value,
    now: Millis,
) -> StoreResult<()> {
    enqueue(conn, business_id, waba_id, None, field, value, now)
}

fn schedule_review(conn: &Conn, id: &str, updated_at: Millis, at: Millis) -> StoreResult<()> {
    conn.prepare_cached("INSERT INTO tasks (due_at, kind, subject) VALUES (?1, 'review', ?2)")?
        .execute(params![at, format!("{id}@{updated_at}")])?;
    Ok(())
}

/// The automated review of one template, run when its review falls due. Skips a template that
/// was decided, edited or deleted since the review was scheduled.
pub(crate) fn run_review(conn: &Conn, subject: &str, now: Millis) -> StoreResult<()> {
    let Some((id, version)) = subject.split_once('@') else {
        return Ok(());
    };
    let row: Option<(String, TemplateRecord)> = conn
        .prepare_cached(&format!(
            "SELECT business_id, {COLS} FROM templates WHERE id = ?1"
        ))?
        .query_row(params![id], |r| {
            let b: String = r.get(0)?;
            // shift columns by one for from_row
            Ok((b, from_row_offset(r, 1)?))
        })
        .optional()?;
    let Some((business_id, t)) = row else {
        return Ok(());
    };
    if t.status != "PENDING" || t.updated_at.to_string() != version {
        return Ok(());
    }
    let def = match template::parse_create(&t.definition) {
        Ok(d) => d,
        Err(e) => {
            // Stored definitions passed this check at creation; a failure here is a rules change.
            return decide(
                conn,
                &business_id,
                &t,
                false,
                Some((
                    "INVALID_FORMAT".into(),
                    Some((
                        e.details.clone(),
                        "Fix the format and submit it again.".into(),
                    )),
                )),
                None,
                now,
            );
        }
    };
    let outcome = template::review(&def);
    let signals: Vec<Value> = outcome
        .signals
        .iter()
        .map(|s| json!({ "rule": s.rule, "description": s.description }))
        .collect();
    conn.prepare_cached("UPDATE templates SET review = ?1 WHERE id = ?2")?
        .execute(params![
            json_col(&json!({ "signals": signals, "reason": outcome.reason }))?,
            t.id
        ])?;
    let new_category = outcome.final_category.as_str().to_string();
    match outcome.decision {
        Decision::Approved => decide(
            conn,
            &business_id,
            &t,
            true,
            None,
            (outcome.category_changed && new_category != t.category).then_some(new_category),
            now,
        ),
        Decision::Rejected => decide(
            conn,
            &business_id,
            &t,
            false,
            Some((outcome.reason.to_string(), outcome.rejection_info)),
            None,
            now,
        ),
    }
}

fn from_row_offset(r: &Row, o: usize) -> db::Result<TemplateRecord> {
    let parse = |s: Option<String>| s.and_then(|s| serde_json::from_str::<Value>(&s).ok());
    Ok(TemplateRecord {
        id: r.get(o)?,
        waba_id: r.get(o + 1)?,
        name: r.get(o + 2)?,
        language: r.get(o + 3)?,
        category: r.get(o + 4)?,
        previous_category: r.get(o + 5)?,
        status: r.get(o + 6)?,
        rejected_reason: r.get(o + 7)?,
        rejection_info: parse(r.get(o + 8)?),
        quality_score: r.get(o + 9)?,
        quality_at: r.get(o + 10)?,
        definition: parse(r.get(o + 11)?).unwrap_or(Value::Null),
        review: parse(r.get(o + 12)?),
        paused_until: r.get(o + 13)?,
        pause_count: r.get(o + 14)?,
        created_at: r.get(o + 15)?,
        updated_at: r.get(o + 16)?,
        seq: r.get(o + 17)?,
    })
}

type Rejection = (String, Option<(String, String)>);

/// Applies a decision: status, category change, and the webhooks Meta sends.
fn decide(
    conn: &Conn,
    business_id: &str,
    t: &TemplateRecord,
    approve: bool,
    rejection: Option<Rejection>,
    new_category: Option<String>,
    now: Millis,
) -> StoreResult<()> {
    let mut t = t.clone();
    if let Some(cat) = &new_category {
        conn.prepare_cached(
            "UPDATE templates SET previous_category = category, category = ?1 WHERE id = ?2",
        )?
        .execute(params![cat, t.id])?;
        let value = json!({
            "message_template_id": t.id.parse::<u64>().unwrap_or(0),
            "message_template_name": t.name,
            "message_template_language": t.language,
            "previous_category": t.category,
            "new_category": cat,
        });
        emit(
            conn,
            business_id,
            &t.waba_id,
            "template_category_update",
            &value,
            now,
        )?;
        t.previous_category = Some(t.category.clone());
        t.category = cat.clone();
    }
    if approve {
        conn.prepare_cached(
            "UPDATE templates SET status = 'APPROVED', rejected_reason = 'NONE', rejection_info = NULL, updated_at = ?1 WHERE id = ?2",
        )?
        .execute(params![now, t.id])?;
        emit(
            conn,
            business_id,
            &t.waba_id,
            "message_template_status_update",
            &status_event(&t, "APPROVED", Some("NONE"), None),
            now,
        )?;
    } else {
        let (reason, info) = rejection.unwrap_or_else(|| ("INVALID_FORMAT".into(), None));
        let info_json = info
            .as_ref()
            .map(|(r, rec)| json!({ "reason": r, "recommendation": rec }));
        conn.prepare_cached("UPDATE templates SET status = 'REJECTED', rejected_reason = ?1, rejection_info = ?2, updated_at = ?3 WHERE id = ?4")?
            .execute(params![reason, info_json.as_ref().map(|v| v.to_string()), now, t.id])?;
        let extra = info_json.map(|v| ("rejection_info", v));
        emit(
            conn,
            business_id,
            &t.waba_id,
            "message_template_status_update",
            &status_event(&t, "REJECTED", Some(&reason), extra),
            now,
        )?;
    }
    Ok(())
}

/// Body text of a stored definition, for the `content` filters.
fn body_text(def: &Value) -> String {
    def["components"]
        .as_array()
        .and_then(|cs| {
            cs.iter().find(|c| {
                c["type"]
                    .as_str()
                    .is_some_and(|t| t.eq_ignore_ascii_case("BODY"))
            })
        })
        .and_then(|b| b["text"].as_str())
        .unwrap_or("")
        .to_string()
}

fn matches(t: &TemplateRecord, f: &TemplateFilter) -> bool {
    let contains = |hay: &str, needle: &str| hay.to_lowercase().contains(&needle.to_lowercase());
    let any_of = |list: &[String], v: &str| {
        list.is_empty() || list.iter().any(|x| x.eq_ignore_ascii_case(v))
    };
    f.name.as_deref().is_none_or(|n| contains(&t.name, n))
        && f.content
            .as_deref()
            .is_none_or(|c| contains(&body_text(&t.definition), c))
        && f.name_or_content
            .as_deref()
            .is_none_or(|c| contains(&t.name, c) || contains(&body_text(&t.definition), c))
        && any_of(&f.language, &t.language)
        && any_of(&f.category, &t.category)
        && any_of(&f.status, &t.status)
        && any_of(&f.quality_score, &t.quality_score)
}

#[async_trait]
impl TemplateStore for SqliteStore {
    async fn create_template(&self, scope: &Scope, t: NewTemplate) -> StoreResult<TemplateRecord> {
        let scope = scope.clone();
        self.write(move |c| {
            let now = t.now;
            let limit = template_limit(c, &scope.business_id)?;
            if live_count(c, &t.waba_id)? >= limit {
                return Err(ApiError::invalid_parameter(format!(
                    "This WhatsApp Business Account already has {limit} message templates, its limit; delete unused templates{}.",
                    if limit == UNVERIFIED_TEMPLATE_LIMIT { " or verify the business to raise the limit to 6,000" } else { "" }
                ))
                .with_subcode(2_388_019)
                .into());
            }
            let created_last_hour: i64 = c
                .prepare_cached("SELECT COUNT(*) FROM templates WHERE waba_id = ?1 AND created_at > ?2")?
                .query_row(params![t.waba_id, now - HOUR], |r| r.get(0))?;
            if created_last_hour as u64 >= CREATIONS_PER_HOUR {
                return Err(ApiError::new(
                    429,
                    80007,
                    "Rate limit issues",
                    "At most 100 message templates can be created per WhatsApp Business Account per hour; retry later.",
                )
                .transient()
                .into());
            }
            if by_name(c, &t.waba_id, &t.name, &t.language)?.is_some() {
                return Err(ApiError::invalid_parameter(format!(
                    "Content in This Language Already Exists: a template named '{}' already exists in {}; choose another name or edit that template.",
                    t.name, t.language
                ))
                .with_subcode(2_388_024)
                .into());
            }
            let recently_deleted: Option<i64> = c
                .prepare_cached(
                    "SELECT deleted_at FROM templates WHERE waba_id = ?1 AND name = ?2 AND status = 'DELETED' AND rejected_reason = 'WAS_APPROVED' AND deleted_at > ?3 LIMIT 1",
                )?
                .query_row(params![t.waba_id, t.name, now - 30 * DAY], |r| r.get(0))
                .optional()?;
            if let Some(at) = recently_deleted {
                return Err(ApiError::invalid_parameter(format!(
                    "The name '{}' belonged to an approved template deleted less than 30 days ago (at {}); choose another name or wait until {}.",
                    t.name,
                    at / 1000,
                    (at + 30 * DAY) / 1000
                ))
                .with_subcode(2_388_024)
                .into());
            }
            // Duplicate wording of another live template (not for AUTHENTICATION).
            if let Ok(new_def) = template::parse_create(&t.definition) {
                let mut stmt = c.prepare_cached(
                    "SELECT name, language, definition FROM templates WHERE waba_id = ?1 AND status NOT IN ('DELETED', 'REJECTED')",
                )?;
                let others = stmt
                    .query_map(params![t.waba_id], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?)))?
                    .collect::<Result<Vec<_>, _>>()?;
                for (name, lang, d) in others {
                    let Ok(v) = serde_json::from_str::<Value>(&d) else { continue };
                    if let Ok(other) = template::parse_create(&v) {
                        if template::is_duplicate_content(&new_def, &other) {
                            return Err(ApiError::invalid_parameter(format!(
                                "The body and footer repeat the wording of template '{name}' ({lang}); change the wording or reuse that template."
                            ))
                            .with_subcode(2_388_023)
                            .into());
                        }
                    }
                }
            }
            let id = ids::object_id();
            let seq: i64 = c.query_row("SELECT COALESCE(MAX(seq), 0) + 1 FROM templates", [], |r| r.get(0))?;
            c.prepare_cached(
                "INSERT INTO templates (id, seq, business_id, waba_id, name, language, category, status, definition, created_at, updated_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'PENDING', ?8, ?9, ?9)",
            )?
            .execute(params![id, seq, scope.business_id, t.waba_id, t.name, t.language, t.category, json_col(&t.definition)?, now])?;
            schedule_review(c, &id, now, t.review_at)?;
            load(c, &scope.business_id, &id)?.ok_or_else(|| internal("template vanished after insert"))
        })
        .await
    }

    async fn template(&self, scope: &Scope, id: &str) -> StoreResult<Option<TemplateRecord>> {
        let (b, id) = (scope.business_id.clone(), id.to_string());
        self.read(move |c| load(c, &b, &id)).await
    }

    async fn list_templates(
        &self,
        scope: &Scope,
        waba_id: &str,
        filter: TemplateFilter,
        limit: usize,
        cursor: Cursor,
    ) -> StoreResult<TemplatePage> {
        let (b, w) = (scope.business_id.clone(), waba_id.to_string());
        self.read(move |c| {
            let sql = format!("SELECT {COLS} FROM templates WHERE waba_id = ?1 AND business_id = ?2 AND status != 'DELETED' ORDER BY seq");
            let mut stmt = c.prepare_cached(&sql)?;
            let all = stmt.query_map(params![w, b], from_row)?.collect::<Result<Vec<_>, _>>()?;
            let template_count = all.len() as u64;
            let matching: Vec<TemplateRecord> = all.into_iter().filter(|t| matches(t, &filter)).collect();
            let total_count = matching.len() as u64;
            let limit = limit.max(1);
            let (start, end) = match cursor {
                Cursor::First => (0, limit.min(matching.len())),
                Cursor::After(seq) => {
                    let s = matching.iter().position(|t| t.seq > seq).unwrap_or(matching.len());
                    (s, (s + limit).min(matching.len()))
                }
                Cursor::Before(seq) => {
                    let e = matching.iter().position(|t| t.seq >= seq).unwrap_or(matching.len());
                    (e.saturating_sub(limit), e)
                }
            };
            let items = matching[start..end].to_vec();
            Ok(TemplatePage {
                has_before: start > 0,
                has_after: end < matching.len(),
                items,
                total_count,
                template_count,
                template_limit: template_limit(c, &b)?,
            })
        })
        .await
    }

    async fn edit_template(&self, scope: &Scope, e: TemplateEdit) -> StoreResult<()> {
        let scope = scope.clone();
        self.write(move |c| {
            let Some(t) = load(c, &scope.business_id, &e.id)? else { return Err(ApiError::unknown_object(&e.id).into()) };
            let now = e.now;
            if !matches!(t.status.as_str(), "APPROVED" | "REJECTED" | "PAUSED") {
                return Err(ApiError::invalid_parameter(format!(
                    "Template '{}' is {}; only APPROVED, REJECTED or PAUSED templates can be edited.",
                    t.name, t.status
                ))
                .with_subcode(2_388_039)
                .into());
            }
            let mut edits: Vec<Millis> = c
                .prepare_cached("SELECT edits FROM templates WHERE id = ?1")?
                .query_row(params![t.id], |r| r.get::<_, String>(0))
                .ok()
                .and_then(|s| serde_json::from_str(&s).ok())
                .unwrap_or_default();
            let category = match e.category.as_deref() {
                Some(cat) if !cat.eq_ignore_ascii_case(&t.category) => {
                    if t.status == "APPROVED" {
                        return Err(ApiError::invalid_parameter("The category of an APPROVED template cannot be edited; create a new template in the other category.")
                            .with_subcode(2_388_039)
                            .into());
                    }
                    cat.to_ascii_uppercase()
                }
                _ => t.category.clone(),
            };
            if t.status == "APPROVED" {
                if let Some(last) = edits.iter().filter(|&&x| x > now - DAY).max() {
                    return Err(ApiError::invalid_parameter(format!(
                        "An APPROVED template can be edited once per 24 hours; it was edited at {}. Retry after {}.",
                        last / 1000,
                        (last + DAY) / 1000
                    ))
                    .with_subcode(2_388_039)
                    .into());
                }
                if edits.iter().filter(|&&x| x > now - 30 * DAY).count() >= 10 {
                    return Err(ApiError::invalid_parameter("An APPROVED template can be edited at most 10 times per 30 days; create a new template instead.")
                        .with_subcode(2_388_039)
                        .into());
                }
                edits.push(now);
            }
            edits.retain(|&x| x > now - 30 * DAY);
            c.prepare_cached(
                "UPDATE templates SET definition = ?1, category = ?2, status = 'PENDING', rejected_reason = NULL, rejection_info = NULL, \
                 paused_until = NULL, edits = ?3, updated_at = ?4 WHERE id = ?5",
            )?
            .execute(params![json_col(&e.definition)?, category, serde_json::to_string(&edits).map_err(internal)?, now, t.id])?;
            schedule_review(c, &t.id, now, e.review_at)?;
            Ok(())
        })
        .await
    }

    async fn delete_templates(
        &self,
        scope: &Scope,
        waba_id: &str,
        what: TemplateDeletion,
        now: Millis,
    ) -> StoreResult<usize> {
        let (scope, waba) = (scope.clone(), waba_id.to_string());
        self.write(move |c| {
            let sql = format!("SELECT {COLS} FROM templates WHERE waba_id = ?1 AND business_id = ?2 AND status != 'DELETED' ORDER BY seq");
            let mut stmt = c.prepare_cached(&sql)?;
            let all = stmt.query_map(params![waba, scope.business_id], from_row)?.collect::<Result<Vec<_>, _>>()?;
            drop(stmt);
            let targets: Vec<TemplateRecord> = match &what {
                TemplateDeletion::Name(n) => all.into_iter().filter(|t| &t.name == n).collect(),
                TemplateDeletion::Id { id, name } => all.into_iter().filter(|t| &t.id == id && &t.name == name).collect(),
                TemplateDeletion::Ids(ids) => {
                    let found: Vec<TemplateRecord> = all.into_iter().filter(|t| ids.contains(&t.id)).collect();
                    if let Some(missing) = ids.iter().find(|i| !found.iter().any(|t| &t.id == *i)) {
                        return Err(ApiError::invalid_parameter(format!("hsm_ids: {missing} is not a template of this WhatsApp Business Account; nothing was deleted.")).into());
                    }
                    found
                }
            };
            if targets.is_empty() {
                let what = match &what {
                    TemplateDeletion::Name(n) => format!("named '{n}'"),
                    TemplateDeletion::Id { id, name } => format!("'{name}' with hsm_id {id}"),
                    TemplateDeletion::Ids(_) => "with those ids".into(),
                };
                return Err(ApiError::invalid_parameter(format!("There is no message template {what} in this WhatsApp Business Account.")).into());
            }
            if let Some(d) = targets.iter().find(|t| t.status == "DISABLED") {
                return Err(ApiError::invalid_parameter(format!("Template '{}' ({}) is DISABLED; disabled templates cannot be deleted.", d.name, d.language)).into());
            }
            for t in &targets {
                let was_approved = if t.status == "APPROVED" || t.status == "PAUSED" { "WAS_APPROVED" } else { "NONE" };
                c.prepare_cached("UPDATE templates SET status = 'DELETED', rejected_reason = ?1, deleted_at = ?2, updated_at = ?2 WHERE id = ?3")?
                    .execute(params![was_approved, now, t.id])?;
                emit(c, &scope.business_id, &t.waba_id, "message_template_status_update", &status_event(t, "DELETED", None, None), now)?;
            }
            Ok(targets.len())
        })
        .await
    }

    async fn appeal_template(
        &self,
        scope: &Scope,
        id: &str,
        reason: String,
        now: Millis,
    ) -> StoreResult<TemplateRecord> {
        let (scope, id) = (scope.clone(), id.to_string());
        self.write(move |c| {
            let Some(t) = load(c, &scope.business_id, &id)? else {
                return Err(ApiError::unknown_object(&id).into());
            };
            if t.status != "REJECTED" {
                return Err(ApiError::invalid_parameter(format!(
                    "Only a REJECTED template can be appealed; '{}' is {}.",
                    t.name, t.status
                ))
                .into());
            }
            c.prepare_cached(
                "UPDATE templates SET status = 'IN_APPEAL', updated_at = ?1 WHERE id = ?2",
            )?
            .execute(params![now, t.id])?;
            let mut v = status_event(&t, "IN_APPEAL", t.rejected_reason.as_deref(), None);
            v["other_info"] = json!({ "title": "APPEAL_REQUESTED", "description": reason });
            emit(
                c,
                &scope.business_id,
                &t.waba_id,
                "message_template_status_update",
                &v,
                now,
            )?;
            load(c, &scope.business_id, &id)?.ok_or_else(|| internal("template vanished"))
        })
        .await
    }

    async fn scope_of_template(&self, id: &str) -> StoreResult<Option<Scope>> {
        let id = id.to_string();
        self.read(move |c| {
            Ok(c.prepare_cached(
                "SELECT business_id FROM templates WHERE id = ?1 AND status != 'DELETED'",
            )?
            .query_row(params![id], |r| {
                Ok(Scope {
                    business_id: r.get(0)?,
                })
            })
            .optional()?)
        })
        .await
    }

    async fn decide_template(
        &self,
        scope: &Scope,
        id: &str,
        approve: bool,
        reason: Option<String>,
        now: Millis,
    ) -> StoreResult<TemplateRecord> {
        let (scope, id) = (scope.clone(), id.to_string());
        self.write(move |c| {
            let Some(t) = load(c, &scope.business_id, &id)? else {
                return Err(ApiError::unknown_object(&id).into());
            };
            if !matches!(t.status.as_str(), "PENDING" | "IN_APPEAL") {
                return Err(ApiError::invalid_parameter(format!(
                    "Template '{}' is {}; only PENDING or IN_APPEAL templates await a decision.",
                    t.name, t.status
                ))
                .into());
            }
            let rejection = (!approve).then(|| {
                let r = reason.clone().unwrap_or_else(|| "INVALID_FORMAT".into());
                (
                    r.clone(),
                    Some((
                        format!("Rejected by the operator: {r}"),
                        "Change the template and submit it again, or appeal.".to_string(),
                    )),
                )
            });
            decide(c, &scope.business_id, &t, approve, rejection, None, now)?;
            load(c, &scope.business_id, &id)?.ok_or_else(|| internal("template vanished"))
        })
        .await
    }
}
