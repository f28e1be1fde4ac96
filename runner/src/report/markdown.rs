//! Renders the report as Markdown: the gate, the distinct issues across tools and the baseline
//! comparison, then a section per analysis with each failure's exact message, location,
//! reproduction and severity. Formats only; computes nothing.

use std::fmt::Write;

use super::model::{
    BaselineState, BaselineSummary, Finding, FindingBrief, Issue, Location, Report, Severity,
    StageReport, Status, Table,
};
use crate::duration;
use crate::stage_name::StageName;

/// How many findings a section shows in full before summarising the rest (all are in JSON).
const FINDINGS_SHOWN: usize = 50;

/// How many tests or targets an issue names before summarising the rest.
const NAMES_SHOWN: usize = 5;

pub fn render(report: &Report) -> String {
    let mut out = summary(report);
    for stage in &report.stages {
        render_stage(&mut out, stage, report.baseline.as_ref());
    }
    render_environment(&mut out, report);
    out
}

/// The gate, the stages at a glance, the distinct issues and the baseline comparison: what a
/// CI job summary shows.
pub fn summary(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Dynamic Analysis Report\n");
    render_gate(&mut out, report);
    render_overview(&mut out, report);
    render_issues(&mut out, report);
    if let Some(baseline) = &report.baseline {
        render_baseline(&mut out, baseline);
    }
    out
}

fn render_gate(out: &mut String, report: &Report) {
    let verdict = if report.gate.not_evaluated {
        "NOT EVALUATED"
    } else if report.gate.passed {
        "PASS"
    } else {
        "FAIL"
    };
    let (new, tolerated) = if report.gate.new_only {
        ("new ", "; findings already in the baseline are tolerated")
    } else {
        ("", "")
    };
    let _ = writeln!(
        out,
        "**Gate: {verdict}** (fails on {new}findings of severity {} and above{tolerated})\n",
        report.gate.fail_on.as_str()
    );
    for reason in &report.gate.reasons {
        let _ = writeln!(out, "- {reason}");
    }
    if report.partial {
        let _ = writeln!(
            out,
            "- this report is partial: the run stopped before every stage finished"
        );
    }
    if let Some(partition) = &report.partition {
        let _ = writeln!(
            out,
            "- partition {}/{}: this gate is provisional; `runner merge` of all {} partitions \
             gives the final one",
            partition.index, partition.count, partition.count
        );
    }
    if !report.gate.reasons.is_empty() || report.partial || report.partition.is_some() {
        out.push('\n');
    }
}

fn render_overview(out: &mut String, report: &Report) {
    if report.stages.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "| Analysis | Status | Critical | High | Medium | Info | Duration |"
    );
    let _ = writeln!(out, "| --- | --- | ---: | ---: | ---: | ---: | ---: |");
    for stage in &report.stages {
        let count = |severity: Severity| {
            stage
                .findings
                .iter()
                .filter(|f| f.severity == severity)
                .count()
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} |",
            stage.stage,
            stage.status.as_str(),
            count(Severity::Critical),
            count(Severity::High),
            count(Severity::Medium),
            count(Severity::Info),
            duration::human(std::time::Duration::from_millis(stage.duration_ms)),
        );
    }
    out.push('\n');
}

fn render_issues(out: &mut String, report: &Report) {
    if report.issues.is_empty() {
        return;
    }
    let findings: usize = report.stages.iter().map(|s| s.findings.len()).sum();
    let _ = writeln!(out, "## Issues\n");
    let _ = writeln!(
        out,
        "{} distinct issue(s) from {findings} finding(s): a problem seen by several tools or \
         on several targets is listed once, with each tool's evidence. The sections below \
         have every finding.\n",
        report.issues.len()
    );
    for (index, issue) in report.issues.iter().enumerate() {
        render_issue(out, index + 1, issue);
    }
    out.push('\n');
}

fn render_issue(out: &mut String, number: usize, issue: &Issue) {
    let _ = write!(
        out,
        "{number}. **{}** {}",
        issue.severity.as_str(),
        issue.kind
    );
    place(out, issue.location.as_ref(), issue.function.as_deref());
    let tools: Vec<&str> = issue.evidence.iter().map(|e| e.tool.as_str()).collect();
    let _ = write!(out, " — seen by {}", tools.join(", "));
    if issue.baseline == Some(BaselineState::New) {
        out.push_str(" — **new**");
    }
    out.push('\n');
    if !issue.tests.is_empty() {
        let _ = write!(out, "    - Tests: {}", names(&issue.tests));
        if !issue.targets.is_empty() {
            let _ = write!(out, " on {}", names(&issue.targets));
        }
        out.push('\n');
    }
    for evidence in &issue.evidence {
        // Continuation lines stay inside the list item (an assertion's `left:`/`right:`).
        let message = evidence.message.trim_end().replace('\n', "\n      ");
        let _ = writeln!(out, "    - {}: {message}", evidence.tool);
    }
}

/// `` at `src/lib.rs:3` in `f` ``, for what is known of the two.
fn place(out: &mut String, location: Option<&Location>, function: Option<&str>) {
    if let Some(location) = location {
        let _ = write!(out, " at `{location}`");
    }
    if let Some(function) = function {
        let _ = write!(out, " in `{function}`");
    }
}

/// `` `a`, `b` `` and "and N more" past the first few.
fn names(list: &[String]) -> String {
    let shown: Vec<String> = list
        .iter()
        .take(NAMES_SHOWN)
        .map(|name| format!("`{name}`"))
        .collect();
    let mut text = shown.join(", ");
    if list.len() > NAMES_SHOWN {
        let _ = write!(text, " and {} more", list.len() - NAMES_SHOWN);
    }
    text
}

fn render_baseline(out: &mut String, baseline: &BaselineSummary) {
    let _ = writeln!(out, "## Compared with the baseline\n");
    let _ = writeln!(
        out,
        "Baseline `{}`: {} new, {} still present, {} fixed.\n",
        baseline.file,
        baseline.new.len(),
        baseline.still_present.len(),
        baseline.fixed.len()
    );
    for (title, list) in [
        ("New", &baseline.new),
        ("Fixed", &baseline.fixed),
        ("Still present", &baseline.still_present),
    ] {
        if list.is_empty() {
            continue;
        }
        let _ = writeln!(out, "### {title}\n");
        for brief in list.iter().take(FINDINGS_SHOWN) {
            render_brief(out, brief);
        }
        if list.len() > FINDINGS_SHOWN {
            let _ = writeln!(out, "- … and {} more", list.len() - FINDINGS_SHOWN);
        }
        out.push('\n');
    }
}

fn render_brief(out: &mut String, brief: &FindingBrief) {
    let _ = write!(out, "- {} {}", brief.severity.as_str(), brief.kind);
    place(out, brief.location.as_ref(), brief.function.as_deref());
    if let Some(test) = &brief.test {
        let _ = write!(out, ", test `{test}`");
    }
    let _ = writeln!(out, " ({}, `{}`)", brief.stage, brief.fingerprint);
}

fn label(key: &str) -> String {
    match key {
        "ub" => return "UB detected".to_owned(),
        "tests_run" => return "Tests run".to_owned(),
        _ => {}
    }
    let words = key.replace('_', " ");
    let mut chars = words.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn render_stage(out: &mut String, stage: &StageReport, baseline: Option<&BaselineSummary>) {
    let _ = writeln!(out, "## {}\n", StageName::title(stage.stage));
    let _ = writeln!(out, "- Status: {}", stage.status.as_str());
    if let Some(reason) = &stage.reason {
        let _ = writeln!(out, "- Reason: {reason}");
    }
    for (key, value) in &stage.counts {
        let _ = writeln!(out, "- {}: {value}", label(key));
    }
    if stage.status != Status::Skipped {
        let _ = writeln!(
            out,
            "- Duration: {} (runner's own share: {})",
            duration::human(std::time::Duration::from_millis(stage.duration_ms)),
            overhead_share(stage)
        );
    }
    if let Some(dir) = &stage.artifacts_dir {
        let _ = writeln!(out, "- Raw logs: `{dir}`");
    }
    if let Some(cache) = &stage.cache {
        let _ = write!(
            out,
            "- From the result cache: {} test runs, {} of test time not spent again",
            cache.tests,
            duration::human(std::time::Duration::from_millis(cache.saved_ms))
        );
        if cache.corrupt > 0 {
            let _ = write!(out, " ({} damaged entries ran again)", cache.corrupt);
        }
        out.push('\n');
    }
    if let Some(share) = &stage.partition {
        match share.whole_in {
            Some(slice) => {
                let _ = writeln!(out, "- Partition: not split; runs whole in slice {slice}");
            }
            None => {
                let _ = writeln!(
                    out,
                    "- Partition: {} of {} units, run in {} (plan `{}`)",
                    share.units,
                    share.total_units,
                    duration::human(std::time::Duration::from_millis(share.execution_ms)),
                    share.plan_digest
                );
            }
        }
    }
    out.push('\n');
    render_targets(out, stage);
    for table in &stage.tables {
        render_table(out, table);
    }
    for note in &stage.notes {
        let _ = writeln!(out, "> {note}\n");
    }
    render_findings(out, stage, baseline);
}

fn overhead_share(stage: &StageReport) -> String {
    #[allow(clippy::cast_precision_loss, reason = "a percentage for people")]
    let share = 100.0 * stage.overhead_ms as f64 / stage.duration_ms.max(1) as f64;
    format!("{share:.1} %")
}

fn render_targets(out: &mut String, stage: &StageReport) {
    let Some(first) = stage.targets.first() else {
        return;
    };
    let keys: Vec<&String> = first.counts.keys().collect();
    let _ = write!(out, "| Target |");
    for key in &keys {
        let _ = write!(out, " {} |", label(key));
    }
    let _ = write!(out, "\n| --- |");
    for _ in &keys {
        let _ = write!(out, " ---: |");
    }
    out.push('\n');
    for target in &stage.targets {
        let _ = write!(out, "| `{}` |", target.name);
        for key in &keys {
            let _ = write!(out, " {} |", target.counts.get(*key).copied().unwrap_or(0));
        }
        out.push('\n');
    }
    out.push('\n');
}

fn render_table(out: &mut String, table: &Table) {
    let _ = writeln!(out, "### {}\n", table.title);
    render_row(out, &table.columns);
    let _ = writeln!(out, "|{}", " --- |".repeat(table.columns.len()));
    for row in &table.rows {
        render_row(out, row);
    }
    out.push('\n');
}

/// One table line; a `|` inside a cell is escaped so that it cannot split the cell.
fn render_row(out: &mut String, cells: &[String]) {
    let cells: Vec<String> = cells.iter().map(|cell| cell.replace('|', "\\|")).collect();
    let _ = writeln!(out, "| {} |", cells.join(" | "));
}

fn render_findings(out: &mut String, stage: &StageReport, baseline: Option<&BaselineSummary>) {
    if stage.findings.is_empty() {
        if matches!(stage.status, Status::Pass | Status::Fail) {
            let _ = writeln!(out, "No findings.\n");
        }
        return;
    }
    let _ = writeln!(out, "### Findings\n");
    for (index, finding) in stage.findings.iter().take(FINDINGS_SHOWN).enumerate() {
        let standing = baseline.map(|baseline| baseline.state(&finding.fingerprint));
        render_finding(out, index + 1, finding, standing);
    }
    if stage.findings.len() > FINDINGS_SHOWN {
        let _ = writeln!(
            out,
            "… and {} more in report.json.\n",
            stage.findings.len() - FINDINGS_SHOWN
        );
    }
}

fn render_finding(
    out: &mut String,
    number: usize,
    finding: &Finding,
    state: Option<BaselineState>,
) {
    let state = match state {
        Some(BaselineState::New) => " (new)",
        Some(BaselineState::StillPresent) => " (in the baseline)",
        None => "",
    };
    let _ = writeln!(
        out,
        "#### {number}. {} — {}{state}\n",
        finding.severity.as_str(),
        finding.kind
    );
    if let Some(location) = &finding.location {
        match &finding.function {
            Some(function) => {
                let _ = writeln!(out, "- Where: `{location}` in `{function}`");
            }
            None => {
                let _ = writeln!(out, "- Where: `{location}`");
            }
        }
    }
    if let Some(test) = &finding.test {
        let _ = write!(out, "- Test: `{test}`");
        if let Some(target) = &finding.target {
            let _ = write!(out, " on `{target}`");
        }
        if let Some(seed) = finding.seed {
            let _ = write!(out, " (seed {seed})");
        }
        out.push('\n');
    }
    let _ = writeln!(out, "- Failure: {}", finding.message);
    if let Some(run) = &finding.first_found_in {
        let _ = writeln!(out, "- From the result cache: first found in run `{run}`");
    }
    if let Some(note) = &finding.note {
        let _ = writeln!(out, "- Note: {note}");
    }
    if !finding.stack.is_empty() {
        let _ = writeln!(out, "- Stack:\n\n  ```");
        for frame in &finding.stack {
            let _ = writeln!(out, "  {frame}");
        }
        let _ = writeln!(out, "  ```\n");
    }
    if let Some(repro) = &finding.repro {
        let _ = writeln!(out, "- Reproduce: `{repro}`");
    }
    let _ = writeln!(out, "- Fingerprint: `{}`\n", finding.fingerprint);
}

fn render_environment(out: &mut String, report: &Report) {
    let env = &report.environment;
    let _ = writeln!(out, "## Environment\n");
    let _ = writeln!(out, "- Mode: {}", env.mode);
    let _ = writeln!(out, "- Host: `{}`", env.host);
    let _ = writeln!(
        out,
        "- Pinned toolchain: `{}` (commit `{}`)",
        env.pinned_channel, env.pinned_commit
    );
    if let Some(rustc) = &env.rustc {
        let _ = writeln!(out, "- rustc used: `{rustc}`");
    }
    for (tool, version) in &env.tools {
        let _ = writeln!(out, "- {tool}: `{version}`");
    }
    if let Some(provenance) = &env.provenance {
        let _ = writeln!(out, "- Provenance: {provenance}");
    }
    let _ = writeln!(out, "- runner: {}", report.runner_version);
}
