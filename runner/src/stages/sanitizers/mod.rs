//! Sanitizers stage: the workspace's tests built with `AddressSanitizer` (with its leak
//! check), `ThreadSanitizer` and `MemorySanitizer` (or `LeakSanitizer` alone), each in its own
//! target dir, the tests run on the execution kernel (shards resumed after an abort, leaks
//! attributed by re-running halves), every report a typed finding.

mod applicability;
mod commands;
pub mod config;
mod executor;
mod findings;
mod frames;
#[cfg(test)]
mod parser_tests;
pub mod report_parser;
mod sanitizer;
mod settings;

use std::time::Instant;

use anyhow::Result;
use camino::{Utf8Path, Utf8PathBuf};

pub use config::SanitizersConfig;
use executor::{RawFinding, Runtime};
use sanitizer::Sanitizer;
use settings::Settings;

/// What the stage needs installed.
pub fn needs() -> Needs {
    Needs {
        components: vec!["rust-src", "llvm-tools"],
        system: vec![system::SYMBOLIZER],
        ..Needs::default()
    }
}

use crate::exec::{self, Binary, Tally};
use crate::inventory::{self, TestUnit, UnitKind};
use crate::plan::{Context, StagePlan};
use crate::process::RunOptions;
use crate::provision::{system, Needs};
use crate::report::model::{StagePartition, TestRun};
use crate::report::{Severity, StageReport, Status, TargetSummary};
use crate::stage_name::StageName;

pub fn plan(ctx: &Context) -> Result<StagePlan> {
    let settings = Settings::resolve(ctx)?;
    let example = TestUnit {
        package: "<package>".into(),
        package_id: "<package>".into(),
        kind: UnitKind::Lib,
        name: "<package>".into(),
        executable: Some("<test-executable>".into()),
        variant: None,
    };
    let mut steps = Vec::new();
    for &sanitizer in &settings.sanitizers {
        steps.push((
            format!("{sanitizer}: build the tests"),
            commands::build(ctx, &settings, sanitizer),
        ));
        steps.push((
            format!("{sanitizer}: run a shard of a harness's tests in one process"),
            commands::tests(
                ctx,
                &settings,
                sanitizer,
                "<test-executable>",
                &example.package,
                &["<test>".to_owned()],
            ),
        ));
        if settings.doctests {
            let doc = TestUnit {
                kind: UnitKind::Doc,
                executable: None,
                variant: None,
                ..example.clone()
            };
            steps.push((
                format!("{sanitizer}: run the doctests"),
                commands::doctests(ctx, &settings, sanitizer, &doc),
            ));
        }
    }
    let names: Vec<&str> = settings.sanitizers.iter().map(|s| s.as_str()).collect();
    let mut notes = vec![format!(
        "sanitizers: {}; a harness's tests run in shards, {} processes at a time, resumed after an abort; time limit per test: {} ({} under thread and memory); target dirs {}",
        names.join(", "),
        ctx.jobs,
        crate::duration::human(settings.test_timeout),
        crate::duration::human(settings.slow_test_timeout),
        ctx.workspace.stage_target_dir("sanitizers-<sanitizer>")
    )];
    notes.push("a sanitizer the host target does not support is skipped".to_owned());
    if settings.memory_by_default {
        notes.push("memory runs only when no dependency's build script compiles C code".to_owned());
    }
    notes.extend(symbolizer_note(&settings));
    Ok(StagePlan {
        stage: StageName::Sanitizers,
        target_dir: None,
        steps,
        notes,
    })
}

pub fn run(ctx: &Context) -> Result<StageReport> {
    let deadline = ctx.stage_deadline();
    let settings = Settings::resolve(ctx)?;
    let logs = ctx.stage_dir(StageName::Sanitizers)?.join("logs");
    crate::process::ensure_writable_dir(&logs)?;

    let mut report = StageReport::new(StageName::Sanitizers, Status::Pass);
    report.artifacts_dir = Some(Utf8PathBuf::from("sanitizers"));
    if let Some(note) = symbolizer_note(&settings) {
        ctx.progress.always(&format!("runner: warning: {note}"));
        report.notes.push(note);
    }
    let mut skipped = Vec::new();
    let mut errors = Vec::new();
    let mut cached = exec::Answered::default();
    for (sanitizer, applies) in applicability::select(ctx, &settings, &mut report.notes)? {
        if let Err(reason) = applies {
            ctx.progress
                .note(&format!("{sanitizer}: skipped, {reason}"));
            report.notes.push(format!("{sanitizer}: SKIPPED, {reason}"));
            skipped.push(format!("{sanitizer}: {reason}"));
            continue;
        }
        let outcome = run_sanitizer(ctx, &settings, sanitizer, &logs, deadline);
        if let Some(note) = &outcome.not_run {
            if !report.notes.contains(note) {
                report.notes.push(note.clone());
            }
        }
        let mut found = findings::build(ctx, &settings, sanitizer, &outcome.raw);
        outcome.cache.mark(&mut found);
        cached.absorb(outcome.cache);
        let mut counts = outcome.tally.counts();
        counts.insert("findings".to_owned(), found.len() as u64);
        report.tests.extend(outcome.tests);
        for (key, value) in &counts {
            *report.counts.entry(key.clone()).or_insert(0) += value;
        }
        report.targets.push(TargetSummary {
            name: sanitizer.as_str().to_owned(),
            counts,
        });
        report.findings.extend(found);
        report.partition = StagePartition::combine(report.partition.take(), outcome.partition);
        let mut problems = outcome.errors;
        if problems.is_empty() && outcome.found_no_tests {
            problems.push("no tests found".to_owned());
        }
        errors.extend(problems.into_iter().map(|e| format!("{sanitizer}: {e}")));
        if crate::process::interrupted() {
            break;
        }
    }
    crate::report::model::sort_findings(&mut report.findings);
    report.cache = cached.summary();
    conclude(&mut report, ctx.fail_on, &errors, &skipped);
    Ok(report)
}

/// The stage's status: ERROR when a sanitizer could not be evaluated, SKIPPED when none
/// applied (never PASS), else what the findings say.
fn conclude(report: &mut StageReport, fail_on: Severity, errors: &[String], skipped: &[String]) {
    exec::conclude(report, errors, fail_on);
    if errors.is_empty() && report.targets.is_empty() {
        report.status = Status::Skipped;
        report.reason = Some(skipped.join("; "));
    }
}

fn symbolizer_note(settings: &Settings) -> Option<String> {
    if settings.symbolizer.is_some() {
        return None;
    }
    let hint = needs()
        .system
        .first()
        .map(crate::provision::SystemTool::install_hint)
        .unwrap_or_default();
    Some(format!(
        "llvm-symbolizer is not on PATH, so sanitizer stacks have no function names or file:line \
         and findings no location; install it with: {hint}"
    ))
}

/// What one sanitizer's run gave.
#[derive(Default)]
struct Outcome {
    raw: Vec<RawFinding>,
    tally: Tally,
    tests: Vec<TestRun>,
    errors: Vec<String>,
    cache: exec::Answered,
    partition: Option<StagePartition>,
    /// No test ran here nor in another slice of a partitioned run.
    found_no_tests: bool,
    /// The note on the harnesses with a `main` of their own, which are not run.
    not_run: Option<String>,
}

/// Builds, lists and runs one sanitizer's tests on the execution kernel.
fn run_sanitizer(
    ctx: &Context,
    settings: &Settings,
    sanitizer: Sanitizer,
    logs: &Utf8Path,
    deadline: Instant,
) -> Outcome {
    let failed = |error: String| Outcome {
        errors: vec![error],
        ..Outcome::default()
    };
    let started = Instant::now();
    ctx.progress.note(&format!(
        "{sanitizer}: building the tests{}",
        if sanitizer.needs_build_std() {
            " with an instrumented std (about a minute the first time)"
        } else {
            ""
        }
    ));
    let build = commands::build(ctx, settings, sanitizer);
    ctx.progress.verbose(&build.to_string());
    let finished = match build.run(&RunOptions {
        timeout: Some(deadline.saturating_duration_since(Instant::now())),
        log_stem: Some(logs.join(format!("{sanitizer}-build"))),
        ..RunOptions::default()
    }) {
        Ok(finished) => finished,
        Err(error) => return failed(crate::exit::one_line(&error)),
    };
    if let Err(error) = crate::cargo_output::require_success(&finished, "building the tests") {
        return failed(crate::exit::one_line(&error));
    }
    let harnesses =
        inventory::units_from_messages(&finished.stdout, |id| ctx.workspace.member_of(id));
    let mut units = harnesses.libtest.clone();
    if settings.doctests {
        units.extend(harnesses.doc_units());
    }
    let build_time = started.elapsed();
    let mut binaries = Vec::new();
    let mut errors = Vec::new();
    for unit in units {
        if unit.kind == UnitKind::Doc {
            binaries.push(Binary {
                target: sanitizer.as_str().to_owned(),
                unit,
                tests: Vec::new(),
            });
            continue;
        }
        match list(ctx, sanitizer, &unit, logs, deadline) {
            Ok(tests) if tests.is_empty() => {}
            Ok(tests) => binaries.push(Binary {
                target: sanitizer.as_str().to_owned(),
                unit,
                tests,
            }),
            Err(error) => errors.push(error),
        }
    }
    let tool = Runtime {
        ctx,
        settings,
        sanitizer,
    };
    let limits = settings.limits_for(sanitizer, deadline, logs);
    let kernel = exec::harness::run(ctx, &tool, &binaries, &limits);
    let found_no_tests = kernel.found_no_tests(sanitizer.as_str());
    errors.extend(kernel.errors);
    let tally = kernel
        .tallies
        .values()
        .fold(Tally::default(), |all, one| all.plus(*one));
    let raw = kernel
        .found
        .into_iter()
        .map(|found| RawFinding {
            unit: binaries[found.binary].unit.clone(),
            test: found.test,
            cause: found.cause,
        })
        .collect();
    ctx.progress.note(&format!(
        "{sanitizer}: built in {}, {} tests run in {}, {} failed, {} timed out",
        crate::duration::human(build_time),
        tally.tests_run,
        crate::duration::human(started.elapsed().saturating_sub(build_time)),
        tally.failed,
        tally.timed_out
    ));
    Outcome {
        raw,
        tally,
        tests: kernel.tests,
        errors,
        cache: kernel.cache,
        partition: kernel.partition,
        found_no_tests,
        not_run: harnesses.own_main_note(),
    }
}

/// A harness's tests, by running it with `--list`. A runtime that cannot start (no ptrace
/// for `LeakSanitizer`, an unusable memory layout for `ThreadSanitizer`) fails here first, so the
/// error says what the runtime said.
fn list(
    ctx: &Context,
    sanitizer: Sanitizer,
    unit: &TestUnit,
    logs: &Utf8Path,
    deadline: Instant,
) -> Result<Vec<String>, String> {
    let stem = logs.join(format!("{sanitizer}-{}-list", unit.slug()));
    let options = RunOptions {
        timeout: Some(deadline.saturating_duration_since(Instant::now())),
        log_stem: Some(stem.clone()),
        ..RunOptions::default()
    };
    inventory::list_executable_tests(unit, &ctx.filters, &options).map_err(|error| {
        let stderr = std::fs::read_to_string(format!("{stem}.err")).unwrap_or_default();
        match report_parser::parse(&stderr).fatal {
            Some(fatal) => executor::explain_fatal(&fatal),
            None => crate::exit::one_line(&error),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn report_with(targets: &[&str]) -> StageReport {
        let mut report = StageReport::new(StageName::Sanitizers, Status::Pass);
        report.targets = targets
            .iter()
            .map(|name| TargetSummary {
                name: (*name).to_owned(),
                counts: BTreeMap::new(),
            })
            .collect();
        report
    }

    #[test]
    fn nothing_that_ran_is_skipped_never_pass() {
        let mut report = report_with(&[]);
        let skipped =
            ["thread: the host target aarch64-apple-darwin does not support it".to_owned()];
        conclude(&mut report, Severity::High, &[], &skipped);
        assert_eq!(report.status, Status::Skipped);
        assert_eq!(report.reason.as_deref(), Some(skipped[0].as_str()));
    }

    #[test]
    fn a_sanitizer_that_could_not_run_is_an_error_even_beside_a_pass() {
        let mut report = report_with(&["address", "thread"]);
        conclude(
            &mut report,
            Severity::High,
            &["thread: no tests found".to_owned()],
            &[],
        );
        assert_eq!(report.status, Status::Error);
        let mut report = report_with(&["address"]);
        conclude(
            &mut report,
            Severity::High,
            &[],
            &["memory: skipped".to_owned()],
        );
        assert_eq!(report.status, Status::Pass);
    }
}
