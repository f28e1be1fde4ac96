//! Turns what the executor saw into report findings: location in the user's code, severity,
//! repro command, fingerprint, and the note when a failure happens on one target only.

use std::collections::{BTreeMap, BTreeSet};

use camino::Utf8Path;

use super::diagnostics::MiriError;
use super::{repro_command, Settings};
use crate::exec::failure;
use crate::exec::{Attributed, Binary, Cause};
use crate::finding::NewFinding;
use crate::plan::Context;
use crate::report::{Category, Finding, Severity};
use crate::stages::StageName;

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
pub fn build(
    ctx: &Context,
    settings: &Settings,
    binaries: &[Binary],
    found: &[Attributed<MiriError>],
) -> Vec<Finding> {
    let mut seen = BTreeSet::new();
    let mut findings = Vec::new();
    for item in found {
        let binary = &binaries[item.binary];
        let finding = to_finding(ctx, settings, binary, item);
        if seen.insert((finding.fingerprint.clone(), binary.target.clone())) {
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

fn to_finding(
    ctx: &Context,
    settings: &Settings,
    binary: &Binary,
    item: &Attributed<MiriError>,
) -> Finding {
    let new = match &item.cause {
        Cause::Report(error) => {
            let note = (error.category == Category::Unsupported).then(|| {
                "Miri cannot interpret this operation; this is not a bug in the code. Skip the \
                 test under Miri with `#[cfg_attr(miri, ignore)]`, or gate the call with \
                 `cfg(miri)`."
                    .to_owned()
            });
            NewFinding::new(
                StageName::Miri,
                error.category,
                error.kind.clone(),
                error.message.clone(),
            )
            .frames(error.frames.clone())
            .note(note)
        }
        Cause::Failed { output } => NewFinding::described(
            StageName::Miri,
            failure::failed(&item.test, output, Utf8Path::new("")),
        ),
        Cause::Died {
            termination,
            detail,
        } => NewFinding::described(StageName::Miri, failure::died(termination, detail, "Miri")),
        Cause::TimedOut { limit, tail } => {
            NewFinding::described(StageName::Miri, failure::timed_out(*limit, tail))
        }
    };
    let repro = repro_command(
        ctx,
        settings,
        &binary.target,
        &binary.unit,
        &item.test,
        item.seed,
    );
    new.test(
        item.test.clone(),
        format!("{} {}", binary.unit.label(), item.test),
    )
    .target(binary.target.clone())
    .seed(item.seed.map(u64::from))
    .repro(repro.pasteable())
    .tool("miri")
    .build(&ctx.workspace)
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
