//! `greenlight optin import`: bulk consent import from CSV, straight into the database.
//!
//! Every row is validated first (same rules as `POST /greenlight/v1/{waba_id}/opt_ins`); the
//! summary lists accepted and rejected rows with reasons. Then the accepted rows are written in
//! one transaction: all or nothing. With rejected rows nothing is written unless
//! `--skip-invalid` is given.

use crate::config::Config;
use crate::http::consent_parse;
use greenlight_store::NewOptIn;
use serde_json::{json, Value};
use std::io::Write;
use std::path::Path;

pub struct Outcome {
    pub accepted: usize,
    pub rejected: Vec<(usize, String)>,
    pub imported: bool,
}

/// Accepted opt-ins, and rejected rows as (line, reason).
pub type Parsed = (Vec<NewOptIn>, Vec<(usize, String)>);

/// Parses the CSV (header: `wa_id,scope,source,proof[,captured_at]`).
pub fn parse_csv(
    path: &Path,
    now: i64,
    mut progress: impl FnMut(usize, usize),
) -> Result<Parsed, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let total = text.lines().count().saturating_sub(1).max(1);
    let mut rdr = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(true)
        .from_reader(text.as_bytes());
    let headers: Vec<String> = rdr
        .headers()
        .map_err(|e| format!("{}: bad header row: {e}", path.display()))?
        .iter()
        .map(str::to_lowercase)
        .collect();
    for required in ["wa_id", "scope", "source", "proof"] {
        if !headers.iter().any(|h| h == required) {
            return Err(format!("{}: the header row must name the columns wa_id, scope, source, proof (and optionally captured_at); `{required}` is missing", path.display()));
        }
    }
    let mut ok = Vec::new();
    let mut bad = Vec::new();
    for (i, rec) in rdr.records().enumerate() {
        let line = i + 2;
        progress(i + 1, total);
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                bad.push((line, format!("unreadable row: {e}")));
                continue;
            }
        };
        let mut obj = serde_json::Map::new();
        for (h, v) in headers.iter().zip(rec.iter()) {
            if v.is_empty() {
                continue;
            }
            let val = if h == "captured_at" {
                v.parse::<i64>()
                    .map(Value::from)
                    .unwrap_or_else(|_| json!(v))
            } else {
                json!(v)
            };
            obj.insert(h.clone(), val);
        }
        match consent_parse(&Value::Object(obj), "", now, "cli:import") {
            Ok(o) => ok.push(o),
            Err(e) => bad.push((line, e.details)),
        }
    }
    Ok((ok, bad))
}

fn bar(done: usize, total: usize) {
    let pct = done * 100 / total.max(1);
    let filled = pct / 5;
    eprint!(
        "\r[{}{}] {pct:>3}% ({done}/{total})",
        "#".repeat(filled),
        ".".repeat(20 - filled)
    );
    let _ = std::io::stderr().flush();
}

pub async fn run(
    config: &Config,
    waba_id: &str,
    file: &Path,
    skip_invalid: bool,
) -> Result<Outcome, String> {
    let (store, closer) = crate::open_store(config).map_err(|e| format!("{e:#}"))?;
    let scope = store
        .scope_of_waba(waba_id)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| {
            format!(
                "no WhatsApp Business Account {waba_id} in {}",
                crate::config::redact_url(&config.database_url)
            )
        })?;
    let offset = store.clock_offset().await.map_err(|e| e.to_string())?;
    let now = crate::state::wall_ms() + offset;
    let mut last = 0;
    let (ok, bad) = parse_csv(file, now, |d, t| {
        if d * 100 / t.max(1) != last || d == t {
            last = d * 100 / t.max(1);
            bar(d, t);
        }
    })?;
    eprintln!();
    let accepted = ok.len();
    let imported = if bad.is_empty() || skip_invalid {
        if !ok.is_empty() {
            store
                .record_opt_ins(&scope, waba_id, ok, now)
                .await
                .map_err(|e| format!("nothing was imported: {e}"))?;
        }
        true
    } else {
        false
    };
    if let Some(close) = closer {
        close();
    }
    Ok(Outcome {
        accepted,
        rejected: bad,
        imported,
    })
}
