//! Fuzz stage: every cargo-fuzz target of the workspace fuzzed within a time budget, `--jobs`
//! at a time, each crash deduplicated, minimized, given a command that replays it and kept in
//! a crash registry that every later run replays first; corpora kept and grown across runs.
//!
//! Platforms: cargo-fuzz's libFuzzer and the address sanitizer work on `x86_64` and `aarch64`
//! Linux and on macOS; runner adds nothing platform-specific (cargo-fuzz picks the host triple).

mod commands;
mod corpus;
mod corpus_coverage;
mod crash_registry;
mod discover;
mod findings;
pub mod instrument;
pub mod libfuzzer;
mod prepare;
mod preview;
mod prune;
mod session;
mod settings;
mod stack;
mod triage;

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::{Context as _, Result};
use camino::{Utf8Path, Utf8PathBuf};

use crate::stage_flags::FuzzMode;
pub use preview::plan;
pub use settings::FuzzConfig;

use crash_registry::Entry;
use discover::FuzzTarget;
use session::{Places, TargetRun};
use settings::Settings;

use crate::exec::pool::{self, Done};
use crate::plan::Context;
use crate::provision::Needs;
use crate::report::model::StagePartition;
use crate::report::{gate, Finding, Known, StageReport, Status, TargetSummary};
use crate::stage_name::StageName;

/// What the stage needs installed.
pub fn needs() -> Needs {
    Needs {
        cargo_tools: vec!["cargo-fuzz"],
        ..Needs::default()
    }
}

/// The tool whose version the report records.
pub fn version(toolchain: &crate::environment::Toolchain) -> (&'static str, crate::process::Cmd) {
    ("cargo-fuzz", toolchain.cargo().args(["fuzz", "--version"]))
}

const NO_PROJECT: &str =
    "no cargo-fuzz project in the workspace (looked for fuzz/Cargo.toml at the root and in each member)";

/// Whether the run's gate lets through the findings a baseline or the crash registry already
/// had: a pull request's fuzzing (`--mode pr`) fails only on new crashes.
pub fn gates_new_only(ctx: &Context) -> bool {
    // The table was checked when the workspace was read.
    let configured = ctx.workspace.config.stage::<FuzzConfig>().ok();
    ctx.fuzz.mode.or(configured.and_then(|config| config.mode)) == Some(FuzzMode::Pr)
}

pub fn run(ctx: &Context) -> Result<StageReport> {
    // Checked: a deadline past the clock's range is no deadline, never a panic.
    let deadline = Instant::now()
        .checked_add(ctx.timeout)
        .context("the timeout is too large")?;
    let settings = Settings::resolve(ctx)?;
    let dir = ctx.stage_dir(StageName::Fuzz)?;
    let logs = dir.join("logs");
    crate::process::ensure_writable_dir(&logs)?;
    run_in(ctx, &settings, &dir, &logs, deadline)
}

/// Under `--partition` each target is a unit of the split, and a slice builds only its own;
/// every target has the same budget, so the slices get equal numbers of them.
fn this_slice(
    ctx: &Context,
    targets: Vec<discover::FuzzTarget>,
) -> (Vec<discover::FuzzTarget>, Option<StagePartition>) {
    crate::exec::partition::keep(
        ctx.partition,
        StageName::Fuzz.as_str(),
        targets,
        |target| target.label.clone(),
        Some(1.0),
    )
}

/// A slice no target fell to: it passes, and the others' reports hold the targets.
fn empty_slice(share: Option<StagePartition>) -> StageReport {
    let mut report = StageReport::new(StageName::Fuzz, Status::Pass);
    report.partition = share;
    report
        .notes
        .push("no fuzz target fell to this slice".to_owned());
    report
}

fn run_in(
    ctx: &Context,
    settings: &Settings,
    dir: &Utf8Path,
    logs: &Utf8Path,
    deadline: Instant,
) -> Result<StageReport> {
    let projects = discover::projects(&ctx.workspace);
    if projects.is_empty() {
        return super::not_applicable(ctx, StageName::Fuzz, NO_PROJECT);
    }
    let (targets, found) = prepare::list_targets(ctx, settings, &projects)?;
    if targets.is_empty() {
        let reason = if found == 0 {
            "the cargo-fuzz projects have no fuzz targets".to_owned()
        } else {
            format!(
                "none of the {found} fuzz targets is selected (config include/exclude, filters)"
            )
        };
        return super::not_applicable(ctx, StageName::Fuzz, reason);
    }
    let (targets, share) = this_slice(ctx, targets);
    if targets.is_empty() {
        return Ok(empty_slice(share));
    }
    // Corpus coverage builds its own, coverage-instrumented binaries.
    if settings.mode != FuzzMode::Coverage || settings.check_only {
        prepare::build(ctx, settings, &projects, &targets, found, logs, deadline)?;
    }
    let mut report = StageReport::new(StageName::Fuzz, Status::Pass);
    report.partition = share;
    report.artifacts_dir = Some(Utf8PathBuf::from("fuzz"));
    report.notes.push(prepare::versions(ctx, &projects));
    if settings.check_only {
        report.targets = targets
            .iter()
            .map(|t| TargetSummary {
                name: t.label.clone(),
                counts: BTreeMap::from([("built".to_owned(), 1)]),
            })
            .collect();
        report.counts = BTreeMap::from([("targets".to_owned(), targets.len() as u64)]);
        report
            .notes
            .push("--check: every target was built; nothing was fuzzed".to_owned());
        return Ok(report);
    }
    report.notes.push(format!(
        "mode {}; corpora in {}; crash registry in {}",
        settings.mode.as_str(),
        settings.corpus_dir.as_ref().map_or_else(
            || "each project's corpus/<target>".to_owned(),
            |d| format!("{d}/<target>")
        ),
        settings.registry
    ));
    match settings.mode {
        FuzzMode::Prune => {
            return Ok(prune::run(
                ctx,
                settings,
                &targets,
                (dir, logs),
                deadline,
                report,
            ));
        }
        FuzzMode::Coverage => {
            let dirs = (dir, logs);
            return Ok(corpus_coverage::run(
                ctx, settings, &targets, dirs, deadline, report,
            ));
        }
        FuzzMode::Replay | FuzzMode::Pr | FuzzMode::Batch => {}
    }
    let budget = settings.per_target(targets.len(), ctx.jobs);
    if settings.mode == FuzzMode::Replay {
        ctx.progress.note(&format!(
            "replaying the crash registry and corpus of {} target(s)",
            targets.len()
        ));
    } else {
        ctx.progress.note(&format!(
            "fuzzing {} target(s) for {} each, {} at a time",
            targets.len(),
            crate::duration::human(budget),
            ctx.jobs.min(targets.len())
        ));
    }
    let registered = load_registry(ctx, settings, &targets, &mut report.notes);
    let results = fuzz_all(
        ctx,
        settings,
        &targets,
        &registered,
        budget,
        dir,
        logs,
        deadline,
    );
    assemble(ctx, settings, &targets, &registered, &results, dir, report)
}

/// Every target's registered crashes; a record that cannot be read is a note of the stage.
fn load_registry(
    ctx: &Context,
    settings: &Settings,
    targets: &[FuzzTarget],
    notes: &mut Vec<String>,
) -> Vec<Vec<Entry>> {
    let mut registered = Vec::new();
    for target in targets {
        let (entries, unreadable) = crash_registry::load(&settings.registry, target);
        for note in unreadable {
            ctx.progress.note(&note);
            notes.push(note);
        }
        registered.push(entries);
    }
    registered
}

type Triaged = (TargetRun, Vec<triage::Group>);

/// Fuzzes the targets on the kernel's queue (`--jobs` at a time); each target, a unit, is
/// fuzzed, then triaged.
#[allow(clippy::too_many_arguments)]
fn fuzz_all(
    ctx: &Context,
    settings: &Settings,
    targets: &[FuzzTarget],
    registered: &[Vec<Entry>],
    budget: std::time::Duration,
    dir: &Utf8Path,
    logs: &Utf8Path,
    deadline: Instant,
) -> BTreeMap<usize, Triaged> {
    let mut results: BTreeMap<usize, Triaged> = BTreeMap::new();
    let fuzz_one = |index: usize| {
        let target = &targets[index];
        let artifacts = dir.join("artifacts").join(discover::slug(&target.label));
        ctx.progress
            .note(&format!("{}: {}", target.label, settings.mode.as_str()));
        let run = match corpus::fresh_work_dir(dir, target) {
            Ok(work) => {
                let places = Places {
                    artifacts: &artifacts,
                    logs,
                    work: &work,
                };
                let entries = &registered[index];
                session::fuzz_target(ctx, settings, target, entries, budget, &places, deadline)
            }
            Err(error) => TargetRun {
                error: Some(crate::exit::one_line(&error)),
                ..TargetRun::default()
            },
        };
        let mut groups = triage::group(target, &run.crashes);
        triage::refine(ctx, settings, target, &mut groups, logs, deadline);
        ctx.progress.note(&format!(
            "{}: {} executions, {} distinct finding(s)",
            target.label,
            run.sessions
                .iter()
                .map(|s| s.stat("number_of_executed_units"))
                .sum::<u64>(),
            groups.len()
        ));
        (index, (run, groups))
    };
    pool::run(
        ctx.jobs,
        (0..targets.len()).collect(),
        &|index, _| Done::with(fuzz_one(index)),
        &mut |(index, triaged), _| {
            results.insert(index, triaged);
        },
    );
    results
}

fn assemble(
    ctx: &Context,
    settings: &Settings,
    targets: &[FuzzTarget],
    registered: &[Vec<Entry>],
    results: &BTreeMap<usize, Triaged>,
    dir: &Utf8Path,
    mut report: StageReport,
) -> Result<StageReport> {
    let mut all_findings: Vec<Finding> = Vec::new();
    let mut records = Vec::new();
    let mut errors = Vec::new();
    let mut known = Vec::new();
    for (index, target) in targets.iter().enumerate() {
        let Some((run, groups)) = results.get(&index) else {
            continue;
        };
        let built = findings::build(ctx, settings, target, groups);
        report.targets.push(TargetSummary {
            name: target.label.clone(),
            counts: findings::summary(run, built.len()),
        });
        if let Err(error) = keep_registry(settings, target, &registered[index], run, groups, &built)
        {
            errors.push(format!(
                "{}: {}",
                target.label,
                crate::exit::one_line(&error)
            ));
        }
        known.extend(
            registered[index]
                .iter()
                .filter_map(|entry| entry.finding.clone()),
        );
        for (finding, record) in built {
            all_findings.push(finding);
            records.push(record);
        }
        report.notes.extend(run.notes.iter().cloned());
        if let Some(error) = &run.error {
            errors.push(format!("{}: {error}", target.label));
        }
    }
    if results.len() < targets.len() {
        errors.push("interrupted before every target was fuzzed".to_owned());
    }
    // Compared with this run's findings like a baseline's: the same words (new, still
    // present, fixed) and, with `fail-on-new-only` or `--mode pr`, the same gate.
    // (Only once something is registered: a workspace that never crashed reads as before.)
    if !known.is_empty() {
        report.known = Some(Known {
            file: settings.registry.clone(),
            findings: known,
        });
    }
    let json = serde_json::to_string_pretty(&records)?;
    crate::atomic::write(&dir.join("findings.json"), json.as_bytes())?;
    all_findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| a.test.cmp(&b.test))
    });
    report.findings = all_findings;
    let mut totals = BTreeMap::new();
    for summary in &report.targets {
        for key in ["executions", "new_inputs", "findings"] {
            *totals.entry(key.to_owned()).or_insert(0) +=
                summary.counts.get(key).copied().unwrap_or(0);
        }
    }
    totals.insert("targets".to_owned(), targets.len() as u64);
    report.counts = totals;
    report.status = gate::status_from_findings(&report.findings, ctx.fail_on);
    if !errors.is_empty() {
        report.status = Status::Error;
        report.reason = Some(errors.join("; "));
    }
    Ok(report)
}

/// Registers this run's new crashes (minimized input and finding) and retires the registered
/// ones that no longer crash, their input kept in the corpus as a regression input.
fn keep_registry(
    settings: &Settings,
    target: &FuzzTarget,
    registered: &[Entry],
    run: &TargetRun,
    groups: &[triage::Group],
    built: &[(Finding, findings::Record)],
) -> Result<()> {
    for (group, (finding, _)) in groups.iter().zip(built) {
        let input = group
            .minimized
            .as_ref()
            .map(|m| m.input.as_slice())
            .or(group.input.as_deref());
        if let (Some(input), false) = (input, group.registered) {
            crash_registry::register(&settings.registry, target, &group.signature, finding, input)?;
        }
    }
    if run.error.is_some() {
        return Ok(());
    }
    let store = corpus::store(settings, target);
    for entry in registered {
        // An unreadable record is left for its owner to look at, never retired.
        let Some(known) = &entry.finding else {
            continue;
        };
        let seen = built
            .iter()
            .any(|(finding, _)| finding.fingerprint == known.fingerprint);
        if !seen && run.no_longer_crash.contains(&entry.key) {
            corpus::add(&store, &std::fs::read(&entry.input)?)?;
            crash_registry::retire(entry)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod captures;
