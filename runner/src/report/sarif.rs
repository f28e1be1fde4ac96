//! Renders the report as SARIF 2.1.0 for code scanning: one run per tool of every evaluated
//! stage, a rule per finding kind, results at repository-relative lines with the repro
//! command and the stable fingerprint. Formats only; computes nothing.

use std::fmt::Write as _;

use serde_json::{json, Map, Value};

use super::model::{BaselineState, Finding, Location, Report, Severity, StageReport, Status};
use super::{rules, text};

pub const SCHEMA_URI: &str = "https://json.schemastore.org/sarif-2.1.0.json";

/// The key of runner's fingerprint in `partialFingerprints`.
pub const FINGERPRINT_KEY: &str = "runner/v1";

pub fn render(report: &Report) -> Value {
    let runs: Vec<Value> = report
        .stages
        .iter()
        .filter(|stage| {
            matches!(stage.status, Status::Pass | Status::Fail) || !stage.findings.is_empty()
        })
        .flat_map(|stage| stage_runs(report, stage))
        .collect();
    json!({
        "$schema": SCHEMA_URI,
        "version": "2.1.0",
        "runs": runs,
    })
}

/// The tool that reported a finding: the first evidence names it.
fn tool_of<'a>(stage: &'a StageReport, finding: &'a Finding) -> &'a str {
    finding
        .evidence
        .first()
        .map_or(stage.stage.as_str(), |evidence| evidence.tool.as_str())
}

/// One run per tool of the stage (code scanning rejects two runs with the same tool in one
/// upload); a stage that found nothing still has its run, so earlier alerts get closed.
fn stage_runs(report: &Report, stage: &StageReport) -> Vec<Value> {
    let mut tools: Vec<&str> = Vec::new();
    for finding in &stage.findings {
        let tool = tool_of(stage, finding);
        if !tools.contains(&tool) {
            tools.push(tool);
        }
    }
    if tools.is_empty() {
        tools.push(stage.stage.as_str());
    }
    tools
        .into_iter()
        .map(|tool| {
            let findings: Vec<&Finding> = stage
                .findings
                .iter()
                .filter(|finding| tool_of(stage, finding) == tool)
                .collect();
            run(report, stage, tool, &findings)
        })
        .collect()
}

/// `runner-miri`, or `runner-sanitizers-addresssanitizer` where the stage's tools differ.
fn driver_name(stage: &StageReport, tool: &str) -> String {
    if tool.eq_ignore_ascii_case(stage.stage.as_str()) {
        format!("runner-{}", stage.stage)
    } else {
        let slug: String = tool
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '-'
                }
            })
            .collect();
        format!("runner-{}-{slug}", stage.stage)
    }
}

fn run(report: &Report, stage: &StageReport, tool: &str, findings: &[&Finding]) -> Value {
    let mut kinds: Vec<&Finding> = Vec::new();
    for finding in findings {
        if !kinds.iter().any(|seen| seen.kind == finding.kind) {
            kinds.push(finding);
        }
    }
    let rules: Vec<Value> = kinds.iter().map(|finding| rule(stage, finding)).collect();
    let results: Vec<Value> = findings
        .iter()
        .map(|finding| {
            let index = kinds
                .iter()
                .position(|seen| seen.kind == finding.kind)
                .unwrap_or(0);
            result(report, finding, index)
        })
        .collect();
    let name = driver_name(stage, tool);
    let mut driver = json!({
        "name": name,
        "fullName": format!("runner {} ({} stage, {tool})", report.runner_version, stage.stage),
        "semanticVersion": report.runner_version,
        "rules": rules,
    });
    let version = report
        .environment
        .tools
        .get(tool)
        .or_else(|| report.environment.tools.get(&tool.to_ascii_lowercase()));
    if let Some(version) = version {
        driver["version"] = json!(version);
    }
    let notifications: Vec<Value> = stage
        .reason
        .iter()
        .chain(&stage.notes)
        .map(|note| json!({ "level": "note", "message": { "text": note } }))
        .collect();
    json!({
        "tool": { "driver": driver },
        "automationDetails": { "id": format!("{name}/") },
        "columnKind": "unicodeCodePoints",
        "invocations": [{
            "executionSuccessful": stage.status != Status::Error,
            "toolExecutionNotifications": notifications,
        }],
        "results": results,
        "properties": { "stage": stage.stage, "status": stage.status.as_str() },
    })
}

fn rule(stage: &StageReport, finding: &Finding) -> Value {
    let summary = rules::summary(finding.category, &finding.kind);
    let help = rules::help(finding.category);
    let default_severity = finding.category.default_severity();
    let mut properties = json!({
        "tags": [finding.category.as_str(), stage.stage.as_str()],
        "precision": "very-high",
    });
    if let Some(score) = security_severity(default_severity, finding) {
        properties["security-severity"] = json!(score);
        if let Some(tags) = properties["tags"].as_array_mut() {
            tags.push(json!("security"));
        }
    }
    json!({
        "id": finding.kind,
        "shortDescription": { "text": summary },
        "fullDescription": { "text": format!("{summary}. {help}") },
        "help": {
            "text": help,
            "markdown": format!("**{summary}** ({})\n\n{help}", finding.category.as_str()),
        },
        "defaultConfiguration": { "level": level(default_severity) },
        "properties": properties,
    })
}

/// Code scanning ranks security alerts by this score; only memory-safety classes get one.
fn security_severity(severity: Severity, finding: &Finding) -> Option<&'static str> {
    use super::model::Category;
    let security = matches!(
        finding.category,
        Category::UndefinedBehavior | Category::MemoryError | Category::DataRace
    );
    security.then_some(match severity {
        Severity::Critical => "9.0",
        Severity::High => "7.0",
        Severity::Medium => "5.0",
        Severity::Info => "1.0",
    })
}

fn level(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Info => "note",
    }
}

fn result(report: &Report, finding: &Finding, rule_index: usize) -> Value {
    let text = format!("{}{}", finding.message, text::context(finding));
    let mut result = json!({
        "ruleId": finding.kind,
        "ruleIndex": rule_index,
        "level": level(finding.severity),
        "message": { "text": text },
        "locations": [primary_location(report, finding)],
        "partialFingerprints": { FINGERPRINT_KEY: finding.fingerprint },
        "properties": properties(finding),
    });
    if !finding.stack.is_empty() {
        result["stacks"] = json!([{
            "message": { "text": "stack, innermost frame first" },
            "frames": finding.stack.iter().map(|frame| {
                json!({ "location": {
                    "message": { "text": frame.to_string() },
                    "logicalLocations": [{ "fullyQualifiedName": frame.function, "kind": "function" }],
                }})
            }).collect::<Vec<_>>(),
        }]);
    }
    if let Some(baseline) = &report.baseline {
        result["baselineState"] = json!(match baseline.state(&finding.fingerprint) {
            BaselineState::New => "new",
            BaselineState::StillPresent => "unchanged",
        });
    }
    result
}

fn properties(finding: &Finding) -> Value {
    let mut bag = Map::new();
    bag.insert("stage".into(), json!(finding.stage));
    bag.insert("severity".into(), json!(finding.severity));
    bag.insert("category".into(), json!(finding.category));
    for (key, value) in [
        ("test", &finding.test),
        ("target", &finding.target),
        ("repro", &finding.repro),
        ("note", &finding.note),
    ] {
        if let Some(value) = value {
            bag.insert(key.into(), json!(value));
        }
    }
    if let Some(seed) = finding.seed {
        bag.insert("seed".into(), json!(seed));
    }
    bag.insert("evidence".into(), json!(finding.evidence));
    Value::Object(bag)
}

/// Code scanning shows a result only at a place in the repository; a finding with no frame
/// in the user's code is shown on the workspace's manifest.
fn primary_location(report: &Report, finding: &Finding) -> Value {
    let fallback = Location {
        file: "Cargo.toml".into(),
        line: 1,
        column: None,
    };
    let location = finding.location.as_ref().unwrap_or(&fallback);
    let mut region = json!({ "startLine": location.line });
    if let Some(column) = location.column {
        region["startColumn"] = json!(column);
    }
    let mut physical = json!({
        "artifactLocation": { "uri": repository_uri(report, location) },
        "region": region,
    });
    if finding.location.is_none() {
        physical
            .as_object_mut()
            .map(|object| object.remove("region"));
    }
    let mut location_json = json!({ "physicalLocation": physical });
    if let Some(function) = &finding.function {
        location_json["logicalLocations"] =
            json!([{ "fullyQualifiedName": function, "kind": "function" }]);
    }
    location_json
}

/// The file's path from the repository root (code scanning's base), percent-encoded as a
/// URI reference.
fn repository_uri(report: &Report, location: &Location) -> String {
    let path = match &report.repository_path {
        Some(prefix) if !prefix.as_str().is_empty() => prefix.join(&location.file),
        _ => location.file.clone(),
    };
    let mut uri = String::new();
    for byte in path.as_str().bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~/".contains(&byte) {
            uri.push(char::from(byte));
        } else {
            let _ = write!(uri, "%{byte:02X}");
        }
    }
    uri
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::model::Evidence;
    use crate::report::testing::{finding, report_with, stage_with};
    use crate::stage_name::StageName;

    #[test]
    fn one_run_per_tool_with_distinct_driver_names() {
        let mut asan = finding(StageName::Sanitizers, "a");
        asan.evidence = vec![Evidence {
            tool: "AddressSanitizer".into(),
            message: String::new(),
        }];
        let mut tsan = asan.clone();
        tsan.evidence[0].tool = "ThreadSanitizer".into();
        let report = report_with(vec![
            stage_with(StageName::Miri, vec![]),
            stage_with(StageName::Sanitizers, vec![asan, tsan]),
            crate::report::StageReport::skipped(StageName::Fuzz, "no fuzz targets"),
        ]);
        let sarif = render(&report);
        let names: Vec<&str> = sarif["runs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|run| run["tool"]["driver"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "runner-miri",
                "runner-sanitizers-addresssanitizer",
                "runner-sanitizers-threadsanitizer"
            ]
        );
    }

    #[test]
    fn uris_start_at_the_repository_root_and_are_encoded() {
        let mut report = report_with(Vec::new());
        report.repository_path = Some("crates/my crate".into());
        let location = Location {
            file: "src/lib.rs".into(),
            line: 3,
            column: None,
        };
        assert_eq!(
            repository_uri(&report, &location),
            "crates/my%20crate/src/lib.rs"
        );
    }
}
