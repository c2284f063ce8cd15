//! Runs every case in `tests/template_corpus/*.json` through the template engine and fails
//! listing every mismatch (not just the first).
//!
//! A case is `{"description", "request": <create body>, "expect": {"parse": "ok" |
//! {"code", "subcode"?}, "lint_rules": [ids that must appear], "review"?: {"decision",
//! "reason", "category", "rejection_info"?: {"reason", "recommendation"}}}}`. Besides the stated
//! expectations, every case checks the engine's invariants: parse refuses exactly when lint has
//! a create-stage error and reports the first one; every rule id is catalogued; the review is
//! deterministic; an accepted template survives `to_create_json` → `parse_create` unchanged.

use greenlight_domain::template::{
    content_rules, format_rules, lint, parse_create, review, Finding,
};
use serde_json::Value;
use std::path::PathBuf;

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/template_corpus")
}

fn known_rule(id: &str) -> bool {
    format_rules().iter().any(|r| r.id == id) || content_rules().iter().any(|r| r.id == id)
}

fn check_case(case: &Value, problems: &mut Vec<String>) {
    let request = &case["request"];
    let expect = &case["expect"];
    let parsed = parse_create(request);
    let findings = lint(request);
    let first_create = findings.iter().find(|f| f.is_create_error());

    // parse expectation
    match (&expect["parse"], &parsed) {
        (Value::String(s), Ok(_)) if s == "ok" => {}
        (Value::String(s), Err(e)) if s == "ok" => {
            problems.push(format!("parse: expected ok, got {e}"))
        }
        (Value::Object(want), Err(e)) => {
            let code = want.get("code").and_then(Value::as_i64);
            let sub = want.get("subcode").and_then(Value::as_i64);
            if code != Some(e.code) || sub != e.subcode {
                problems.push(format!(
                    "parse: expected code {code:?} subcode {sub:?}, got code {} subcode {:?} ({})",
                    e.code, e.subcode, e.details
                ));
            }
        }
        (Value::Object(_), Ok(_)) => problems.push("parse: expected an error, got ok".to_string()),
        (other, _) => problems.push(format!("expect.parse is malformed: {other}")),
    }

    // lint expectations and invariants
    let ids: Vec<&str> = findings.iter().map(|f| f.rule).collect();
    for want in expect["lint_rules"].as_array().into_iter().flatten() {
        let want = want.as_str().unwrap_or("");
        if !ids.contains(&want) {
            problems.push(format!("lint: rule {want} missing; got {ids:?}"));
        }
    }
    for f in &findings {
        if !known_rule(f.rule) {
            problems.push(format!(
                "lint: rule {} is not in format_rules() or content_rules()",
                f.rule
            ));
        }
        if f.field.is_empty() || f.message.is_empty() || f.fix.is_empty() {
            problems.push(format!("lint: finding {f:?} lacks field, message or fix"));
        }
    }
    match (&parsed, first_create) {
        (Ok(_), Some(f)) => problems.push(format!(
            "invariant: parse ok but lint has create error {}",
            describe(f)
        )),
        (Err(_), None) => {
            problems.push("invariant: parse refused but lint has no create error".to_string())
        }
        (Err(e), Some(f)) if e.details != f.details() => problems.push(format!(
            "invariant: parse error ({}) is not lint's first create error ({})",
            e.details,
            f.details()
        )),
        _ => {}
    }

    // review expectations and invariants
    let Ok(def) = parsed else {
        if !expect["review"].is_null() {
            problems.push("expect.review given but the request does not parse".to_string());
        }
        return;
    };
    let reparsed = parse_create(&def.to_create_json());
    if reparsed.as_ref() != Ok(&def) {
        problems.push(format!(
            "invariant: to_create_json does not round-trip: {reparsed:?}"
        ));
    }
    let outcome = review(&def);
    if outcome != review(&def) {
        problems.push("invariant: review is not deterministic".to_string());
    }
    let want = &expect["review"];
    if want.is_null() {
        problems.push("expect.review is missing for a request that parses".to_string());
        return;
    }
    let got = [
        outcome.decision.as_str(),
        outcome.reason,
        outcome.final_category.as_str(),
    ];
    let wanted =
        [&want["decision"], &want["reason"], &want["category"]].map(|v| v.as_str().unwrap_or("?"));
    if got != wanted {
        let signals: Vec<String> = outcome
            .signals
            .iter()
            .map(|s| format!("{}: {}", s.rule, s.description))
            .collect();
        problems.push(format!(
            "review: expected {wanted:?}, got {got:?}; signals {signals:#?}"
        ));
    }
    if let Some(info) = want.get("rejection_info") {
        let expected = (
            info["reason"].as_str().unwrap_or("").to_string(),
            info["recommendation"].as_str().unwrap_or("").to_string(),
        );
        if outcome.rejection_info.as_ref() != Some(&expected) {
            problems.push(format!(
                "review: rejection_info expected {expected:?}, got {:?}",
                outcome.rejection_info
            ));
        }
    }
    if outcome.category_changed != (outcome.final_category != def.category) {
        problems.push("invariant: category_changed disagrees with final_category".to_string());
    }
}

fn describe(f: &Finding) -> String {
    format!("{} at {}: {}", f.rule, f.field, f.message)
}

#[test]
fn template_corpus() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus_dir())
        .expect("corpus directory")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 60,
        "the corpus has {} cases; at least 60 expected",
        files.len()
    );

    let mut failures = Vec::new();
    for path in &files {
        let name = path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        let case: Value = match std::fs::read_to_string(path)
            .map_err(|e| e.to_string())
            .and_then(|s| serde_json::from_str(&s).map_err(|e| e.to_string()))
        {
            Ok(v) => v,
            Err(e) => {
                failures.push(format!("{name}: unreadable: {e}"));
                continue;
            }
        };
        if !matches!(case["description"].as_str(), Some(d) if !d.is_empty()) {
            failures.push(format!("{name}: missing description"));
        }
        let mut problems = Vec::new();
        check_case(&case, &mut problems);
        failures.extend(problems.into_iter().map(|p| format!("{name}: {p}")));
    }
    assert!(
        failures.is_empty(),
        "{} mismatch(es) in {} cases:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}

#[test]
fn corpus_names_every_rule() {
    let mut seen = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir(corpus_dir()).expect("corpus directory") {
        let text = std::fs::read_to_string(entry.expect("dir entry").path()).expect("readable");
        let case: Value = serde_json::from_str(&text).expect("json");
        for r in case["expect"]["lint_rules"]
            .as_array()
            .into_iter()
            .flatten()
        {
            seen.insert(r.as_str().unwrap_or("").to_string());
        }
    }
    let ids = format_rules()
        .iter()
        .map(|r| r.id)
        .chain(content_rules().iter().map(|r| r.id));
    let missing: Vec<&str> = ids.filter(|id| !seen.contains(*id)).collect();
    assert!(
        missing.is_empty(),
        "rules without a corpus case naming them in lint_rules: {missing:?}"
    );
}
