//! [`GatewayStore`] for [`SqliteStore`] (docs/GATEWAY.md). Each method is one job on the
//! writer thread; the send path's decision reuses `ops::evaluate`, the inbound path reuses the
//! window and keyword code of the sandbox's `inbound`.

use super::chains;
use super::ops::{self, apply_effects, audit, audit_note, evaluate, on_keywords, save_window};
use super::read::{self, json_col, status_rank};
use super::{internal, Facts, Memory, Route, SqliteStore};
use crate::db::{self, Conn, OptionalExtension, Row};
use crate::gateway::*;
use crate::params;
use crate::verdicts::Stored;
use crate::{ids, CreatedTenant, Scope, SendCommand, StoreError, StoreResult};
use async_trait::async_trait;
use greenlight_domain::policy::messaging_limit::Tier;
use greenlight_domain::policy::Outcome;
use greenlight_domain::{ApiError, Millis, DAY};
use serde_json::Value;

fn upstream_row(r: &Row) -> db::Result<Upstream> {
    Ok(Upstream {
        scope: Scope {
            business_id: r.get(0)?,
        },
        waba_id: r.get(1)?,
        secrets: UpstreamSecrets {
            access_token_sealed: r.get(2)?,
            app_secret_sealed: r.get(3)?,
            verify_token_hash: r.get(4)?,
        },
    })
}

const UPSTREAM_COLS: &str =
    "business_id, waba_id, access_token_sealed, app_secret_sealed, verify_token_hash";

/// Undoes what a reservation took from the messaging limit and the marketing cap.
fn undo(conn: &Conn, mem: &mut Memory, r: &Reservation) -> StoreResult<()> {
    if let Some(at) = r.reach_at {
        super::reach_blocks::delete_at(conn, &r.business_id, &r.wa_id, at)?;
        super::ops::invalidate_reach(conn, mem, &r.business_id)?;
    }
    if let Some(at) = r.marketing_at {
        conn.prepare_cached(
            "DELETE FROM marketing_log WHERE business_id = ?1 AND wa_id = ?2 AND at = ?3",
        )?
        .execute(params![r.business_id, r.wa_id, at])?;
    }
    if let Some(key) = &r.key {
        conn.prepare_cached(
            "DELETE FROM gateway_idempotency WHERE business_id = ?1 AND key = ?2 AND state = 'pending'",
        )?
        .execute(params![r.business_id, key])?;
    }
    Ok(())
}

fn str_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Unix seconds (a string or a number, as Meta writes them) → milliseconds, never after `now`.
fn at_of(v: &Value, now: Millis) -> Millis {
    str_of(v)
        .and_then(|s| s.parse::<i64>().ok())
        .map(|s| (s * 1000).min(now))
        .unwrap_or(now)
}

/// Does a webhook change of this field write configuration (tables whose triggers bump
/// `config_version`)?
fn changes_configuration(field: &str) -> bool {
    matches!(
        field,
        "phone_number_quality_update"
            | "account_update"
            | "message_template_status_update"
            | "message_template_quality_update"
            | "template_category_update"
    )
}

/// `messages` changes: inbound messages (window, keywords, stored) and statuses.
fn ingest_messages(
    conn: &Conn,
    mem: &mut Memory,
    scope: &Scope,
    value: &Value,
    now: Millis,
) -> StoreResult<usize> {
    let b = &scope.business_id;
    let Some(phone_id) = value["metadata"]["phone_number_id"].as_str() else {
        return Ok(0);
    };
    let Some(phone) = read::phone(conn, b, phone_id)? else {
        return Ok(0);
    };
    let mut n = 0;
    // read for the first message, if there is one (most changes carry statuses only)
    let mut settings = None;
    for m in value["messages"].as_array().into_iter().flatten() {
        let (Some(from), Some(id)) = (m["from"].as_str(), m["id"].as_str()) else {
            continue;
        };
        if from.is_empty() {
            continue; // no customer to keep it for (and `''` names a number's chain)
        }
        let Some(message) = m.as_object() else {
            continue;
        };
        let at = at_of(&m["timestamp"], now);
        let ty = m["type"].as_str().unwrap_or("unknown");
        let content = m.get(ty).cloned().unwrap_or(Value::Null);
        let text = match ty {
            "text" => content["body"].as_str().map(str::to_string),
            "button" => content["text"].as_str().map(str::to_string),
            "interactive" => content["button_reply"]["title"]
                .as_str()
                .or(content["list_reply"]["title"].as_str())
                .map(str::to_string),
            _ => content["caption"].as_str().map(str::to_string),
        };
        let (link, [pair_prev, number_prev]) =
            chains::link(mem.chains.as_ref(), conn, &phone.id, from)?;
        let row = params![
            id,
            b,
            phone.id,
            from,
            ty,
            json_col(m)?,
            text,
            at,
            pair_prev,
            number_prev
        ];
        let insert = chains::message_insert!(
            "id, business_id, phone_id, wa_id, direction, type, content, text, status, created_at",
            "?1, ?2, ?3, ?4, 'in', ?5, ?6, ?7, 'received', ?8",
            "?9, ?10",
            " ON CONFLICT (id) DO NOTHING"
        );
        let inserted = chains::insert_message(conn, insert, row)?;
        if inserted == 0 {
            continue; // Meta delivers at least once: a duplicate teaches nothing new
        }
        chains::linked(mem.chains.as_mut(), link, conn.last_insert_rowid());
        let referral = m.get("referral").is_some();
        let window = read::window(conn, &phone.id, from)?.after_inbound(at, referral);
        save_window(conn, &phone.id, from, &window)?;
        // No `users` row: that table is shared by every business (another shard may hold the
        // same customer's), and an absent row already means "on WhatsApp".
        if let Some(user_id) = m["from_user_id"].as_str() {
            conn.prepare_cached(
                "INSERT INTO contacts (business_id, wa_id, user_id, created_at) VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
            )?
            .execute(params![b, from, user_id, now])?;
        }
        // A customer's media: the tenant may fetch it through the gateway.
        if let Some(mid) = content["id"].as_str().filter(|_| content.is_object()) {
            conn.prepare_cached(
                "INSERT INTO gateway_objects (business_id, id, kind, created_at) VALUES (?1, ?2, 'media', ?3) ON CONFLICT DO NOTHING",
            )?
            .execute(params![b, mid, now])?;
        }
        if settings.is_none() {
            settings = Some(ops::settings(conn, b)?);
        }
        if let Some(settings) = &settings {
            on_keywords(conn, settings, b, &phone, from, id, message, at)?;
        }
        n += 1;
    }
    for s in value["statuses"].as_array().into_iter().flatten() {
        let (Some(id), Some(status)) = (s["id"].as_str(), s["status"].as_str()) else {
            continue;
        };
        // The message by its wamid, whoever's it is (wamids are Meta's, unique across tenants).
        let message: Option<(String, String, String, String)> = conn
            .prepare_cached(
                "SELECT business_id, direction, status, wa_id FROM messages WHERE id = ?1",
            )?
            .query_row(params![id], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .optional()?;
        let recorded = match message {
            Some((owner, direction, current, wa_id)) if owner == *b && direction == "out" => {
                Some((current, wa_id))
            }
            // another tenant's message, or one this number received: one tenant's webhook
            // never writes to another's
            Some(_) => continue,
            // Not (yet) recorded: sent around the gateway, or Meta's status overtook the
            // commit of the send. Its status is kept, so that a commit that follows finds it.
            None => None,
        };
        let seen: Option<i64> = conn
            .prepare_cached("SELECT 1 FROM statuses WHERE message_id = ?1 AND status = ?2")?
            .query_row(params![id, status], |r| r.get(0))
            .optional()?;
        if seen.is_some() {
            continue;
        }
        let at = at_of(&s["timestamp"], now);
        let errors = s.get("errors").filter(|e| !e.is_null());
        conn.prepare_cached(
            "INSERT INTO statuses (message_id, status, at, errors) VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params![id, status, at, errors.map(Value::to_string)])?;
        let Some((current, wa_id)) = recorded else {
            continue;
        };
        if status_rank(status) > status_rank(&current) {
            conn.prepare_cached("UPDATE messages SET status = ?2 WHERE id = ?1")?
                .execute(params![id, status])?;
        }
        if let Some(p) = s.get("pricing").filter(|p| p.is_object()) {
            conn.prepare_cached(
                "UPDATE messages SET pricing = ?2, category = COALESCE(?3, category) WHERE id = ?1",
            )?
            .execute(params![id, p.to_string(), p["category"].as_str()])?;
        }
        if status == "failed" {
            let e = &errors
                .and_then(|e| e.get(0))
                .cloned()
                .unwrap_or(Value::Null);
            let err = ApiError::new(
                400,
                e["code"].as_i64().unwrap_or(0),
                e["title"].as_str().unwrap_or("failed"),
                e["error_data"]["details"]
                    .as_str()
                    .or(e["message"].as_str())
                    .unwrap_or("Meta reported the message as failed"),
            );
            audit(
                conn,
                &ops::AuditRow {
                    business_id: b,
                    at,
                    kind: "failure",
                    phone_id: Some(&phone.id),
                    wa_id: Some(&wa_id),
                    message_id: Some(id),
                    error: &err,
                    verdicts: None,
                },
            )?;
        }
        n += 1;
    }
    Ok(n)
}

/// `user_preferences`: the customer stopped or resumed marketing messages at Meta.
fn ingest_preferences(
    conn: &Conn,
    scope: &Scope,
    value: &Value,
    now: Millis,
) -> StoreResult<usize> {
    let Some(phone_id) = value["metadata"]["phone_number_id"].as_str() else {
        return Ok(0);
    };
    let Some(phone) = read::phone(conn, &scope.business_id, phone_id)? else {
        return Ok(0);
    };
    let mut n = 0;
    for u in value["user_preferences"].as_array().into_iter().flatten() {
        let (Some(wa_id), Some(v)) = (u["wa_id"].as_str(), u["value"].as_str()) else {
            continue;
        };
        if u["category"]
            .as_str()
            .is_some_and(|c| c != "marketing_messages")
        {
            continue;
        }
        let stop = match v {
            "stop" => true,
            "resume" => false,
            _ => continue,
        };
        let at = at_of(&u["timestamp"], now);
        conn.prepare_cached(
            "INSERT INTO marketing_prefs (phone_id, wa_id, stopped, updated_at) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (phone_id, wa_id) DO UPDATE SET stopped = excluded.stopped, updated_at = excluded.updated_at",
        )?
        .execute(params![phone.id, wa_id, stop, at])?;
        audit_note(
            conn,
            &scope.business_id,
            at,
            "consent",
            Some(&phone.id),
            Some(wa_id),
            None,
            "marketing_opt_out",
            &format!(
                "Meta reported that the customer {} marketing messages (user_preferences)",
                if stop { "stopped" } else { "resumed" }
            ),
        )?;
        n += 1;
    }
    Ok(n)
}

/// `phone_number_quality_update`: FLAGGED / UNFLAGGED move the number's rating, and the
/// portfolio's messaging limit is Meta's `current_limit`.
fn ingest_quality(conn: &Conn, scope: &Scope, value: &Value, now: Millis) -> StoreResult<usize> {
    let b = &scope.business_id;
    let mut n = 0;
    let digits: String = value["display_phone_number"]
        .as_str()
        .unwrap_or("")
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    let rating = match value["event"].as_str() {
        Some("FLAGGED") => Some("RED"),
        Some("UNFLAGGED") => Some("GREEN"),
        _ => None,
    };
    if let Some(rating) = rating {
        n += conn
            .prepare_cached(
                "UPDATE phone_numbers SET quality_rating = ?3 WHERE business_id = ?1 AND digits = ?2",
            )?
            .execute(params![b, digits, rating])?;
    }
    let limit = value["current_limit"]
        .as_str()
        .or(value["max_daily_conversations_per_business"].as_str())
        .and_then(Tier::parse);
    if let Some(t) = limit {
        conn.prepare_cached(
            "INSERT INTO business_limits (business_id, tier, next_eval_at, updated_at) VALUES (?1, ?2, 0, ?3) \
             ON CONFLICT (business_id) DO UPDATE SET tier = excluded.tier, updated_at = excluded.updated_at",
        )?
        .execute(params![b, t.as_str(), now])?;
        n += 1;
    }
    Ok(n)
}

/// `account_update`: restrictions (the list replaces the current one) and bans.
fn ingest_account(conn: &Conn, scope: &Scope, value: &Value, now: Millis) -> StoreResult<usize> {
    let b = &scope.business_id;
    match value["event"].as_str() {
        Some("ACCOUNT_RESTRICTION") => {
            conn.prepare_cached(
                "UPDATE restrictions SET expires_at = ?2 WHERE business_id = ?1 AND expires_at > ?2",
            )?
            .execute(params![b, now])?;
            for r in value["restriction_info"].as_array().into_iter().flatten() {
                let Some(t) = r["restriction_type"].as_str() else {
                    continue;
                };
                let until = str_of(&r["expiration"])
                    .and_then(|s| s.parse::<i64>().ok())
                    .map(|s| s * 1000)
                    .unwrap_or(now + 7 * DAY);
                conn.prepare_cached(
                    "INSERT INTO restrictions (business_id, restriction_type, expires_at, violation_id, created_at) VALUES (?1, ?2, ?3, NULL, ?4)",
                )?
                .execute(params![b, t, until, now])?;
            }
            audit_note(
                conn,
                b,
                now,
                "enforcement",
                None,
                None,
                None,
                "enforcement",
                &format!(
                    "Meta reported restrictions (account_update): {}",
                    value["restriction_info"]
                ),
            )?;
            Ok(1)
        }
        Some("DISABLED_UPDATE") => {
            let state = value["ban_info"]["waba_ban_state"].as_str().unwrap_or("");
            let disabled = match state {
                "DISABLE" => Some(now),
                "REINSTATE" => None,
                _ => return Ok(0),
            };
            conn.prepare_cached(
                "INSERT INTO business_limits (business_id, disabled_at, updated_at) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (business_id) DO UPDATE SET disabled_at = excluded.disabled_at, updated_at = excluded.updated_at",
            )?
            .execute(params![b, disabled, now])?;
            audit_note(
                conn,
                b,
                now,
                "enforcement",
                None,
                None,
                None,
                "enforcement",
                &format!("Meta reported the account ban state {state} (account_update)"),
            )?;
            Ok(1)
        }
        _ => Ok(0),
    }
}

/// Template events: status, quality, category.
fn ingest_template(
    conn: &Conn,
    scope: &Scope,
    field: &str,
    value: &Value,
    now: Millis,
) -> StoreResult<usize> {
    let Some(id) = str_of(&value["message_template_id"]) else {
        return Ok(0);
    };
    let b = &scope.business_id;
    let n = match field {
        "message_template_status_update" => {
            // Events that are not a status: FLAGGED (quality warning, still sendable) and
            // LOCKED (no edits) leave it; a reinstatement is APPROVED again.
            let status = match value["event"].as_str() {
                None | Some("FLAGGED") | Some("LOCKED") => return Ok(0),
                Some("REINSTATED") | Some("UNARCHIVED") | Some("UNPAUSED") => "APPROVED",
                Some(e) => e,
            };
            let reason = value["reason"].as_str().filter(|r| *r != "NONE");
            conn.prepare_cached(
                "UPDATE templates SET status = ?3, rejected_reason = ?4, updated_at = ?5 WHERE id = ?1 AND business_id = ?2",
            )?
            .execute(params![id, b, status, reason, now])?
        }
        "message_template_quality_update" => {
            let Some(q) = value["new_quality_score"].as_str() else {
                return Ok(0);
            };
            conn.prepare_cached(
                "UPDATE templates SET quality_score = ?3, quality_at = ?4 WHERE id = ?1 AND business_id = ?2",
            )?
            .execute(params![id, b, q, now])?
        }
        "template_category_update" => {
            let Some(c) = value["new_category"]
                .as_str()
                .or(value["correct_category"].as_str())
            else {
                return Ok(0);
            };
            conn.prepare_cached(
                "UPDATE templates SET previous_category = category, category = ?3, updated_at = ?4 WHERE id = ?1 AND business_id = ?2",
            )?
            .execute(params![id, b, c, now])?
        }
        _ => 0,
    };
    Ok(n)
}

#[async_trait]
impl GatewayStore for SqliteStore {
    async fn gateway_create_tenant(
        &self,
        t: NewGatewayTenant,
        now: Millis,
    ) -> StoreResult<CreatedTenant> {
        self.write(move |c| {
            if t.phone_ids.len() != t.tenant.phone_numbers.len() {
                return Err(internal("one Meta id per phone number"));
            }
            let taken = |sql: &str, id: &str| -> StoreResult<bool> {
                Ok(c.prepare_cached(sql)?.query_row(params![id], |_| Ok(())).optional()?.is_some())
            };
            if taken("SELECT 1 FROM wabas WHERE id = ?1", &t.waba_id)? {
                return Err(ApiError::invalid_parameter(format!("WABA {} is already registered with a tenant of this greenlight", t.waba_id)).into());
            }
            for id in &t.phone_ids {
                if taken("SELECT 1 FROM phone_numbers WHERE id = ?1", id)? {
                    return Err(ApiError::invalid_parameter(format!("phone number {id} is already registered with a tenant of this greenlight")).into());
                }
            }
            let nt = &t.tenant;
            let created = ops::insert_tenant(c, &t.business_id, &t.waba_id, &t.phone_ids, nt, now)?;
            let business_id = &created.business_id;
            // The limit is Meta's: no local tier evaluations are scheduled.
            let tier = t
                .messaging_limit_tier
                .as_deref()
                .and_then(Tier::parse)
                .unwrap_or(if nt.verified { Tier::Tier2K } else { Tier::Tier250 });
            c.execute(
                "INSERT INTO business_limits (business_id, tier, next_eval_at, updated_at) VALUES (?1, ?2, 0, ?3)",
                params![business_id, tier.as_str(), now],
            )?;
            c.execute(
                "INSERT INTO gateway_upstreams (business_id, waba_id, access_token_sealed, app_secret_sealed, verify_token_hash, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
                params![business_id, t.waba_id, t.secrets.access_token_sealed, t.secrets.app_secret_sealed, t.secrets.verify_token_hash, now],
            )?;
            Ok(created)
        })
        .await
    }

    async fn set_upstream(
        &self,
        scope: &Scope,
        secrets: UpstreamSecrets,
        now: Millis,
    ) -> StoreResult<()> {
        let b = scope.business_id.clone();
        self.write(move |c| {
            let n = c.execute(
                "UPDATE gateway_upstreams SET access_token_sealed = ?2, app_secret_sealed = ?3, verify_token_hash = ?4, updated_at = ?5 WHERE business_id = ?1",
                params![b, secrets.access_token_sealed, secrets.app_secret_sealed, secrets.verify_token_hash, now],
            )?;
            if n == 0 {
                return Err(ApiError::unknown_object(&b).into());
            }
            Ok(())
        })
        .await
    }

    async fn upstream(&self, scope: &Scope) -> StoreResult<Option<Upstream>> {
        let b = scope.business_id.clone();
        self.read(move |c| {
            Ok(c.prepare_cached(&format!(
                "SELECT {UPSTREAM_COLS} FROM gateway_upstreams WHERE business_id = ?1"
            ))?
            .query_row(params![b], upstream_row)
            .optional()?)
        })
        .await
    }

    async fn upstream_by_object(&self, id: &str) -> StoreResult<Option<Upstream>> {
        let id = id.to_string();
        self.read(move |c| {
            let by_waba = c
                .prepare_cached(&format!(
                    "SELECT {UPSTREAM_COLS} FROM gateway_upstreams WHERE waba_id = ?1"
                ))?
                .query_row(params![id], upstream_row)
                .optional()?;
            if by_waba.is_some() {
                return Ok(by_waba);
            }
            Ok(c.prepare_cached(&format!(
                "SELECT {UPSTREAM_COLS} FROM gateway_upstreams WHERE business_id = (SELECT business_id FROM phone_numbers WHERE id = ?1)"
            ))?
            .query_row(params![id], upstream_row)
            .optional()?)
        })
        .await
    }

    async fn verify_token_known(&self, hash: &str) -> StoreResult<bool> {
        let hash = hash.to_string();
        self.read(move |c| {
            Ok(
                c.prepare_cached("SELECT 1 FROM gateway_upstreams WHERE verify_token_hash = ?1")?
                    .query_row(params![hash], |_| Ok(()))
                    .optional()?
                    .is_some(),
            )
        })
        .await
    }

    async fn gateway_reserve(
        &self,
        scope: &Scope,
        cmd: SendCommand,
        in_flight_ms: Millis,
    ) -> StoreResult<Reserved> {
        let scope = scope.clone();
        self.write_mem(move |c, mem| -> StoreResult<Result<Reserved, ApiError>> {
            let now = cmd.now;
            let b = &scope.business_id;
            if let Some((key, hash)) = &cmd.idempotency {
                type Prev = (String, String, Option<i64>, Option<String>, i64);
                let prev: Option<Prev> = c
                    .prepare_cached("SELECT request_hash, state, status, response, created_at FROM gateway_idempotency WHERE business_id = ?1 AND key = ?2")?
                    .query_row(params![b, key], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
                    .optional()?;
                if let Some((prev_hash, state, status, response, at)) = prev {
                    let done = state == "done";
                    let live = if done { now - at < DAY } else { now - at < in_flight_ms };
                    if live {
                        if &prev_hash != hash {
                            return Ok(Err(ApiError::idempotency_conflict(format!(
                                "Idempotency-Key '{key}' was used within the last 24 hours for a different request body; use a new key for a new message."
                            ))));
                        }
                        if !done {
                            return Ok(Err(ApiError::service_unavailable(format!(
                                "A request with Idempotency-Key '{key}' is still being forwarded to the upstream; retry shortly to get its answer (nothing was sent twice)."
                            ))));
                        }
                        let body = serde_json::from_str(response.as_deref().unwrap_or("null")).map_err(internal)?;
                        return Ok(Ok(Reserved::Replay { status: status.unwrap_or(200) as u16, body }));
                    }
                    c.prepare_cached("DELETE FROM gateway_idempotency WHERE business_id = ?1 AND key = ?2")?
                        .execute(params![b, key])?;
                }
            }
            let mut ev = evaluate(c, mem, &scope, &cmd)?;
            // A violation greenlight detects (a send to someone who said STOP) is evidence in
            // the audit trail; enforcement is Meta's in gateway mode (no local escalation).
            if let Some(v) = ev.effects.violation.take().or(ev.ignored_opt_out.take()) {
                audit_note(c, b, now, "violation", Some(&cmd.phone.id), Some(&ev.wa_id), None, "enforcement", &format!("{} ({}): {}", v.violation_type, "not escalated in gateway mode", v.evidence))?;
            }
            let d = &ev.decision;
            let phone = &cmd.phone;
            let req = &cmd.request;
            if let Outcome::Refuse(e) | Outcome::FailAsync(e) = &d.outcome {
                audit(
                    c,
                    &ops::AuditRow {
                        business_id: b,
                        at: now,
                        kind: "refusal",
                        phone_id: Some(&phone.id),
                        wa_id: Some(&ev.wa_id),
                        message_id: None,
                        error: e,
                        verdicts: Some(&d.verdicts),
                    },
                )?;
                // Meta would have failed it asynchronously: the gateway answers at once, with
                // the error Meta's `failed` status would carry.
                let mut e = e.clone();
                if e.status < 400 {
                    e.status = 400;
                }
                return Ok(Err(e));
            }
            apply_effects(c, mem, &scope, phone, &ev, now)?;
            if let Some((key, hash)) = &cmd.idempotency {
                c.prepare_cached(
                    "INSERT INTO gateway_idempotency (business_id, key, request_hash, state, created_at) VALUES (?1, ?2, ?3, 'pending', ?4)",
                )?
                .execute(params![b, key, hash, now])?;
            }
            let wa_id = ev.wa_id.clone();
            Ok(Ok(Reserved::Go(Box::new(Reservation {
                business_id: b.clone(),
                key: cmd.idempotency.as_ref().map(|(k, _)| k.clone()),
                phone_id: phone.id.clone(),
                waba_id: phone.waba_id.clone(),
                wa_id,
                msg_type: req.msg_type.as_str().to_string(),
                content: req.payload.clone(),
                text: ev.rendered.clone().or_else(|| ops::visible_text(req)),
                category: Some(d.pricing.category.to_string()),
                pricing: d.pricing.to_json(),
                verdicts: d.verdicts.clone(),
                window_before: ev.facts.window,
                window_after: (d.window_after != ev.facts.window).then_some(d.window_after),
                biz_opaque: req.biz_opaque_callback_data.clone(),
                reach_at: ev.effects.record_reach.then_some(now),
                marketing_at: ev.effects.count_marketing.then_some(now),
                now,
            }))))
        })
        .await?
        .map_err(StoreError::Api)
    }

    async fn gateway_commit(
        &self,
        scope: &Scope,
        r: Reservation,
        answer: UpstreamAnswer,
        now: Millis,
    ) -> StoreResult<()> {
        let scope = scope.clone();
        self.write_mem(move |c, mem| {
            let b = &scope.business_id;
            if !(200..300).contains(&answer.status) {
                undo(c, mem, &r)?;
                let e = &answer.body["error"];
                let err = ApiError::new(
                    answer.status,
                    e["code"].as_i64().unwrap_or(0),
                    e["type"].as_str().unwrap_or("upstream"),
                    format!(
                        "The upstream refused the forwarded send (HTTP {}): {}",
                        answer.status,
                        e["message"].as_str().unwrap_or("no message")
                    ),
                );
                audit(
                    c,
                    &ops::AuditRow {
                        business_id: b,
                        at: now,
                        kind: "upstream_refusal",
                        phone_id: Some(&r.phone_id),
                        wa_id: Some(&r.wa_id),
                        message_id: None,
                        error: &err,
                        verdicts: Some(&r.verdicts),
                    },
                )?;
                return Ok(());
            }
            let wamid = answer.body["messages"][0]["id"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(ids::wamid);
            let verdicts = Stored(&r.verdicts).to_json();
            let (link, [pair_prev, number_prev]) =
                chains::link(mem.chains.as_ref(), c, &r.phone_id, &r.wa_id)?;
            let row = params![wamid, b, r.phone_id, r.wa_id, r.msg_type, json_col(&r.content)?, r.text, r.category, r.pricing, r.biz_opaque, verdicts, r.now, pair_prev, number_prev];
            let insert = chains::message_insert!(
                "id, business_id, phone_id, wa_id, direction, type, content, text, category, pricing, biz_opaque, status, verdicts, created_at",
                "?1, ?2, ?3, ?4, 'out', ?5, ?6, ?7, ?8, ?9, ?10, 'accepted', ?11, ?12",
                "?13, ?14",
                " ON CONFLICT (id) DO NOTHING"
            );
            let inserted = chains::insert_message(c, insert, row)?;
            if inserted > 0 {
                chains::linked(mem.chains.as_mut(), link, c.last_insert_rowid());
            }
            if let Some(w) = &r.window_after {
                // An inbound message learned while Meta was asked is newer than the decision.
                if read::window(c, &r.phone_id, &r.wa_id)? == r.window_before {
                    save_window(c, &r.phone_id, &r.wa_id, w)?;
                }
            }
            // Meta's `sent` can arrive before this commit: statuses already kept set the state.
            let mut stmt = c.prepare_cached("SELECT status FROM statuses WHERE message_id = ?1")?;
            let seen = stmt
                .query_map(params![wamid], |row| row.get::<_, String>(0))?
                .collect::<Result<Vec<_>, _>>()?;
            if let Some(best) = seen.iter().max_by_key(|st| status_rank(st)) {
                c.prepare_cached("UPDATE messages SET status = ?2 WHERE id = ?1")?
                    .execute(params![wamid, best])?;
            }
            if let Some(key) = &r.key {
                c.prepare_cached(
                    "UPDATE gateway_idempotency SET state = 'done', status = ?3, response = ?4, created_at = ?5 WHERE business_id = ?1 AND key = ?2",
                )?
                .execute(params![b, key, answer.status, answer.body.to_string(), now])?;
            }
            Ok(())
        })
        .await
    }

    async fn gateway_release(&self, _scope: &Scope, r: Reservation) -> StoreResult<()> {
        self.write_mem(move |c, mem| undo(c, mem, &r)).await
    }

    async fn gateway_ingest(
        &self,
        scope: &Scope,
        waba_id: &str,
        changes: Vec<IngestChange>,
        now: Millis,
    ) -> StoreResult<usize> {
        let (scope, waba_id) = (scope.clone(), waba_id.to_string());
        // Every row a change writes is the tenant's own (its messages, windows, contacts,
        // consents, templates, events): on PostgreSQL it runs on the business's shard, beside
        // other businesses' sends and webhooks. Quality, account and template changes write the
        // tenant's configuration (numbers, limits, restrictions, templates), whose triggers bump
        // the `config_version` row every business shares: those (rare) run instance-wide.
        let business = scope.business_id.clone();
        let route = if changes.iter().any(|ch| changes_configuration(&ch.field)) {
            Route::Global
        } else {
            Route::Business(&business)
        };
        self.write_mem_on(route, Facts::May, move |c, mem| {
            let mut learned = 0;
            for ch in &changes {
                let v = &ch.value;
                learned += match ch.field.as_str() {
                    "messages" => ingest_messages(c, mem, &scope, v, now)?,
                    "user_preferences" => ingest_preferences(c, &scope, v, now)?,
                    "phone_number_quality_update" => ingest_quality(c, &scope, v, now)?,
                    "account_update" => ingest_account(c, &scope, v, now)?,
                    "message_template_status_update"
                    | "message_template_quality_update"
                    | "template_category_update" => ingest_template(c, &scope, &ch.field, v, now)?,
                    _ => 0,
                };
                let phone_id = v["metadata"]["phone_number_id"]
                    .as_str()
                    .map(|p| read::phone(c, &scope.business_id, p))
                    .transpose()?
                    .flatten()
                    .map(|p| p.id);
                ops::enqueue(
                    c,
                    &scope.business_id,
                    &waba_id,
                    phone_id.as_deref(),
                    &ch.field,
                    v,
                    now,
                )?;
            }
            Ok(learned)
        })
        .await
    }

    async fn gateway_mirror_template(
        &self,
        scope: &Scope,
        t: MirroredTemplate,
        now: Millis,
    ) -> StoreResult<()> {
        let b = scope.business_id.clone();
        self.write(move |c| {
            let seq: i64 = c.query_row("SELECT COALESCE(MAX(seq), 0) + 1 FROM templates", [], |r| r.get(0))?;
            c.prepare_cached(
                "INSERT INTO templates (id, seq, business_id, waba_id, name, language, category, status, definition, created_at, updated_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10) \
                 ON CONFLICT (id) DO UPDATE SET status = excluded.status, category = excluded.category, \
                 definition = excluded.definition, updated_at = excluded.updated_at WHERE templates.business_id = excluded.business_id",
            )?
            .execute(params![t.id, seq, b, t.waba_id, t.name, t.language, t.category, t.status, json_col(&t.definition)?, now])?;
            Ok(())
        })
        .await
    }

    async fn gateway_note_object(
        &self,
        scope: &Scope,
        id: &str,
        kind: &str,
        now: Millis,
    ) -> StoreResult<()> {
        let (b, id, kind) = (scope.business_id.clone(), id.to_string(), kind.to_string());
        self.write(move |c| {
            c.prepare_cached(
                "INSERT INTO gateway_objects (business_id, id, kind, created_at) VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
            )?
            .execute(params![b, id, kind, now])?;
            Ok(())
        })
        .await
    }

    async fn gateway_owns_object(&self, scope: &Scope, id: &str) -> StoreResult<bool> {
        let (b, id) = (scope.business_id.clone(), id.to_string());
        self.read(move |c| {
            let o = c
                .prepare_cached("SELECT 1 FROM gateway_objects WHERE business_id = ?1 AND id = ?2")?
                .query_row(params![b, id], |_| Ok(()))
                .optional()?;
            if o.is_some() {
                return Ok(true);
            }
            Ok(
                c.prepare_cached("SELECT 1 FROM templates WHERE business_id = ?1 AND id = ?2")?
                    .query_row(params![b, id], |_| Ok(()))
                    .optional()?
                    .is_some(),
            )
        })
        .await
    }
}
