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
use crate::stage_name::StageName;

/// The count keys every target reports, so tables line up.
pub fn empty_counts() -> BTreeMap<String, u64> {
    [
        "tests_run",
        "passed",
        "failed",
        "ignored",
        "ub",
        "leaks",
        "unsupported",
    ]
    .into_iter()
    .map(|key| (key.to_owned(), 0))
    .collect()
}

/// Builds findings, one per problem per target and borrow model: when several seeds hit the
/// same problem the first seed is kept.
pub fn build(
    ctx: &Context,
    settings: &Settings,
    binaries: &[Binary],
    found: &[Attributed<MiriError>],
    notes: &mut Vec<String>,
) -> Vec<Finding> {
    let mut seen = BTreeSet::new();
    let mut findings = Vec::new();
    let mut packages = Vec::new();
    for item in found {
        let binary = &binaries[item.binary];
        let finding = to_finding(ctx, settings, binary, item);
        if seen.insert((
            finding.fingerprint.clone(),
            binary.target.clone(),
            finding.borrow_model.clone(),
        )) {
            findings.push(finding);
            packages.push(binary.unit.package_id.clone());
        }
    }
    mark_model_specific(&mut findings, &packages, settings, notes);
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
    let model = settings
        .package(&binary.unit.package_id)
        .map_or(super::BorrowModel::Stacked, |package| {
            package.model_of(binary.unit.variant.as_deref())
        });
    // The harness's own label: one bug seen under two models is one issue.
    new.test(
        item.test.clone(),
        format!("{} {}", binary.unit.harness_label(), item.test),
    )
    .target(binary.target.clone())
    .borrow_model(model.as_str())
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

/// Marks problems a package checked under several borrow models saw under some of them
/// only: what a user asks for when running both models. `packages` holds each finding's
/// package id.
fn mark_model_specific(
    findings: &mut [Finding],
    packages: &[String],
    settings: &Settings,
    notes: &mut Vec<String>,
) {
    let mut seen_under: BTreeMap<(String, Option<String>), BTreeSet<String>> = BTreeMap::new();
    for finding in findings.iter() {
        if let Some(model) = &finding.borrow_model {
            seen_under
                .entry((finding.fingerprint.clone(), finding.target.clone()))
                .or_default()
                .insert(model.clone());
        }
    }
    let mut already_noted = BTreeSet::new();
    for (finding, package) in findings.iter_mut().zip(packages) {
        let Some(package) = settings
            .package(package)
            .filter(|package| package.models.len() > 1)
        else {
            continue;
        };
        let Some(models) = seen_under.get(&(finding.fingerprint.clone(), finding.target.clone()))
        else {
            continue;
        };
        if models.len() == package.models.len() {
            continue;
        }
        let titles: Vec<&str> = package
            .models
            .iter()
            .filter(|model| models.contains(model.as_str()))
            .map(|model| model.title())
            .collect();
        let text = format!("seen only under {}", titles.join(", "));
        if already_noted.insert(finding.fingerprint.clone()) {
            notes.push(format!(
                "`{}` {text} ({}): the borrow models disagree on this code.",
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
