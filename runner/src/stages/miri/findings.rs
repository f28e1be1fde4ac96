//! Turns what the executor saw into report findings: location in the user's code, severity,
//! repro command, fingerprint, and the note when a failure happens on one target only.

use std::collections::{BTreeMap, BTreeSet};

use super::executor::{Cause, RawFinding};
use super::{repro_command, Settings};
use crate::cli::StageName;
use crate::fingerprint;
use crate::libtest;
use crate::locate;
use crate::plan::Context;
use crate::report::{Category, Evidence, Finding, Frame, Severity};

/// How many frames a finding keeps.
const SHORT_STACK: usize = 8;

/// The count keys every target reports, so tables line up.
pub fn empty_counts() -> BTreeMap<String, u64> {
    [
        "tests_run",
        "passed",
        "failed",
        "ub",
        "leaks",
        "unsupported",
    ]
    .into_iter()
    .map(|key| (key.to_owned(), 0))
    .collect()
}

/// Builds findings, one per problem per target: when several seeds hit the same problem the
/// first seed is kept.
pub fn build(ctx: &Context, settings: &Settings, raw: &[RawFinding]) -> Vec<Finding> {
    let mut seen = BTreeSet::new();
    let mut findings = Vec::new();
    for item in raw {
        let finding = to_finding(ctx, settings, item);
        if seen.insert((finding.fingerprint.clone(), item.target.clone())) {
            findings.push(finding);
        }
    }
    crate::report::model::sort_findings(&mut findings);
    findings
}

/// Adds the per-target finding counts (`ub`, `leaks`, `unsupported`).
pub fn tally(findings: &[Finding], counts: &mut BTreeMap<String, BTreeMap<String, u64>>) {
    for finding in findings {
        let key = match finding.category {
            Category::UndefinedBehavior | Category::DataRace => "ub",
            Category::Leak => "leaks",
            Category::Unsupported => "unsupported",
            _ => continue,
        };
        let target = finding.target.clone().unwrap_or_default();
        *counts
            .entry(target)
            .or_insert_with(empty_counts)
            .entry(key.to_owned())
            .or_default() += 1;
    }
}

fn to_finding(ctx: &Context, settings: &Settings, item: &RawFinding) -> Finding {
    let (category, kind, message, stack) = match &item.cause {
        Cause::Miri(error) => (
            error.category,
            error.kind.to_owned(),
            error.message.clone(),
            error.frames.clone(),
        ),
        Cause::Failed { output } => {
            let message = libtest::panic_message(output).unwrap_or_else(|| first_line(output));
            let stack = libtest::panic_location(output)
                .map(|(file, line, column)| {
                    vec![Frame {
                        function: item.test.clone(),
                        file: Some(file),
                        line: Some(line),
                        column: Some(column),
                    }]
                })
                .unwrap_or_default();
            (
                Category::TestFailure,
                "test-failure".to_owned(),
                message,
                stack,
            )
        }
        Cause::Died {
            termination,
            detail,
        } => (
            Category::Crash,
            "process-died".to_owned(),
            format!("the test process ended ({termination}) without a Miri diagnostic: {detail}"),
            Vec::new(),
        ),
    };
    let (location, function) = locate::user_location(&ctx.workspace, &stack);
    let test = format!("{} {}", item.unit.label(), item.test);
    let print = fingerprint::of_finding(
        StageName::Miri,
        &kind,
        location.as_ref(),
        function.as_deref(),
        &test,
    );
    let repro = repro_command(
        ctx,
        settings,
        &item.target,
        &item.unit,
        &item.test,
        item.seed,
    )
    .to_string();
    let note = (category == Category::Unsupported).then(|| {
        "Miri cannot interpret this operation; this is not a bug in the code. Skip the test \
         under Miri with `#[cfg_attr(miri, ignore)]`, or gate the call with `cfg(miri)`."
            .to_owned()
    });
    Finding {
        fingerprint: print,
        stage: crate::cli::StageName::Miri,
        category,
        kind,
        severity: category.default_severity(),
        message: message.clone(),
        location,
        function,
        test: Some(item.test.clone()),
        target: Some(item.target.clone()),
        seed: item.seed.map(u64::from),
        stack: stack.into_iter().take(SHORT_STACK).collect(),
        repro: Some(repro),
        evidence: vec![Evidence {
            tool: "miri".to_owned(),
            message,
        }],
        note,
    }
}

fn first_line(text: &str) -> String {
    text.lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("failed")
        .trim()
        .to_owned()
}

/// Marks problems seen on some targets but not all: the cross-endian (or 32-bit) findings
/// users run several targets for. They are at least high severity.
pub fn mark_target_specific(findings: &mut [Finding], targets: &[String], notes: &mut Vec<String>) {
    if targets.len() < 2 {
        return;
    }
    let mut seen_on: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for finding in findings.iter() {
        if let Some(target) = &finding.target {
            seen_on
                .entry(finding.fingerprint.clone())
                .or_default()
                .insert(target.clone());
        }
    }
    let mut already_noted = BTreeSet::new();
    for finding in findings.iter_mut() {
        let Some(targets_seen) = seen_on.get(&finding.fingerprint) else {
            continue;
        };
        if targets_seen.len() == targets.len() {
            continue;
        }
        let list: Vec<&str> = targets_seen.iter().map(String::as_str).collect();
        let text = format!("fails only on {}", list.join(", "));
        finding.severity = finding.severity.max(Severity::High);
        if already_noted.insert(finding.fingerprint.clone()) {
            notes.push(format!(
                "`{}` {text} ({}): a target-specific failure, such as a byte-order or pointer-width bug.",
                finding.test.as_deref().unwrap_or("?"),
                finding.kind
            ));
        }
        finding.note = Some(match finding.note.take() {
            Some(existing) => format!("{text}. {existing}"),
            None => text,
        });
    }
}
