//! `greenlight template lint`: the server's own template review, run on files before anything
//! is submitted. Same code as `POST /{waba-id}/message_templates` and the automated review.

use greenlight_domain::template::{self, Decision, Finding, Severity};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::ExitCode;

/// The verdict on one template body: every finding, and the review's decision when it parses.
pub fn check(body: &Value) -> Value {
    let findings: Vec<Value> = template::lint(body).iter().map(finding_json).collect();
    let review = template::parse_create(body).ok().map(|def| {
        let r = template::review(&def);
        json!({
            "decision": r.decision.as_str(),
            "reason": r.reason,
            "category": r.final_category.as_str(),
            "category_changed": r.category_changed,
            "rejection_info": r.rejection_info.map(|(reason, rec)| json!({"reason": reason, "recommendation": rec})),
            "signals": r.signals.iter().map(|s| json!({"rule": s.rule, "description": s.description})).collect::<Vec<_>>(),
        })
    });
    json!({ "name": body.get("name"), "findings": findings, "review": review })
}

/// Every review rule as Markdown: the structural rules, then the content rules.
pub fn rules_markdown() -> String {
    let mut s = String::from("## Format rules\n\n| id | outcome | rule |\n|---|---|---|\n");
    for r in template::format_rules() {
        s.push_str(&format!(
            "| `{}` | {} | {} |\n",
            r.id,
            r.outcome,
            r.summary.replace('|', "\\|")
        ));
    }
    s.push_str("\n## Content rules (the review, asynchronous)\n\n| id | Meta reason | rule | recommendation |\n|---|---|---|---|\n");
    for r in template::content_rules() {
        s.push_str(&format!(
            "| `{}` | `{}` | {} | {} |\n",
            r.id,
            r.reason,
            r.summary.replace('|', "\\|"),
            r.recommendation.replace('|', "\\|")
        ));
    }
    s
}

fn finding_json(f: &Finding) -> Value {
    json!({
        "rule": f.rule,
        "severity": match f.severity { Severity::Error => "error", Severity::Warning => "warning" },
        "field": f.field,
        "message": f.message,
        "fix": f.fix,
    })
}

fn has_error(report: &Value) -> bool {
    report["findings"]
        .as_array()
        .is_some_and(|fs| fs.iter().any(|f| f["severity"] == "error"))
        || report["review"]["decision"] == Decision::Rejected.as_str()
}

pub fn run(files: &[PathBuf], as_json: bool) -> ExitCode {
    let mut out = Vec::new();
    let mut errors = false;
    let mut unreadable = false;
    for path in files {
        let name = path.display().to_string();
        let parsed = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read: {e}"))
            .and_then(|t| serde_json::from_str::<Value>(&t).map_err(|e| format!("not JSON: {e}")));
        let bodies = match parsed {
            Ok(Value::Array(a)) => a,
            Ok(v) => vec![v],
            Err(e) => {
                unreadable = true;
                if as_json {
                    out.push(json!({ "file": name, "error": e }));
                } else {
                    eprintln!("{name}: {e}");
                }
                continue;
            }
        };
        for body in bodies {
            let report = check(&body);
            errors |= has_error(&report);
            if as_json {
                let mut r = report;
                r["file"] = json!(name);
                out.push(r);
            } else {
                print_text(&name, &report);
            }
        }
    }
    if as_json {
        println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
    }
    if unreadable {
        ExitCode::from(2)
    } else if errors {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn print_text(file: &str, r: &Value) {
    let name = r["name"].as_str().unwrap_or("<unnamed>");
    let findings = r["findings"].as_array().cloned().unwrap_or_default();
    for f in &findings {
        println!(
            "{file}: {name}: {} {} at {}: {}\n    fix: {}",
            f["severity"].as_str().unwrap_or(""),
            f["rule"].as_str().unwrap_or(""),
            f["field"].as_str().unwrap_or(""),
            f["message"].as_str().unwrap_or(""),
            f["fix"].as_str().unwrap_or("")
        );
    }
    match r["review"].as_object() {
        Some(rv) => {
            let changed = if rv["category_changed"] == true {
                " (re-categorised)"
            } else {
                ""
            };
            println!(
                "{file}: {name}: review: {} as {}{changed}, reason {}",
                rv["decision"].as_str().unwrap_or(""),
                rv["category"].as_str().unwrap_or(""),
                rv["reason"].as_str().unwrap_or("")
            );
        }
        None => println!(
            "{file}: {name}: refused at submission ({} finding(s))",
            findings.len()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clean_utility_template_passes() {
        let r = check(&json!({
            "name": "order_update", "language": "en_US", "category": "UTILITY",
            "components": [{"type": "BODY", "text": "Your order {{1}} has shipped and will arrive on {{2}}.",
                            "example": {"body_text": [["12345", "Friday"]]}}]
        }));
        assert!(!has_error(&r), "{r}");
        assert_eq!(r["review"]["decision"], "APPROVED");
    }

    #[test]
    fn every_problem_is_reported() {
        let r = check(&json!({
            "name": "Bad-Name", "language": "xx", "category": "UTILITY",
            "components": [{"type": "BODY", "text": "{{1}} hi"}]
        }));
        assert!(has_error(&r));
        assert!(r["findings"].as_array().unwrap().len() >= 3, "{r}");
        assert!(r["review"].is_null());
    }
}
