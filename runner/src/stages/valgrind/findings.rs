//! Turns what memcheck reported for each run into report findings: kind and severity,
//! a message without addresses, the first frame in the user's code, a fingerprint, the
//! repro command and the suppression that would hide it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use super::commands::repro_command;
use super::executor::{Job, RunResult, Subject, Verdict};
use super::fds::OpenFd;
use super::kinds;
use super::settings::Settings;
use super::suppressions;
use super::xml::MemcheckError;
use crate::exec::failure;
use crate::finding::NewFinding;
use crate::locate;
use crate::plan::Context;
use crate::report::model::{TestOutcome, TestRun};
use crate::report::{Category, Finding, Frame, Location, Severity};
use crate::stage_name::StageName;

#[derive(Debug, Default)]
pub struct Built {
    pub findings: Vec<Finding>,
    /// (what it hides, the named suppression), one per finding valgrind generated one for.
    pub suppressions: Vec<(String, String)>,
    pub notes: Vec<String>,
}

/// What one finding is before it gets its place in the report.
struct Raw {
    category: Category,
    kind: String,
    severity: Severity,
    message: String,
    stack: Vec<Frame>,
    suppression: Option<String>,
}

pub fn build(ctx: &Context, settings: &Settings, jobs: &[Job], results: &[RunResult]) -> Built {
    let mut built = Built::default();
    let mut seen = BTreeSet::new();
    for result in results {
        let job = &jobs[result.job];
        for raw in raw_findings(ctx, job, result, &mut built.notes) {
            let suppression = raw.suppression.clone();
            let finding = to_finding(ctx, settings, job, raw);
            if !seen.insert(finding.fingerprint.clone()) {
                continue;
            }
            if let Some(raw_suppression) = suppression {
                let name = suppressions::name(&finding.kind, &finding.fingerprint);
                let place = finding
                    .location
                    .as_ref()
                    .map_or_else(|| "?".to_owned(), ToString::to_string);
                built.suppressions.push((
                    format!("{} at {place} in {}", finding.kind, job.label()),
                    suppressions::named(&raw_suppression, &name),
                ));
            }
            built.findings.push(finding);
        }
    }
    built.findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| a.test.cmp(&b.test))
            .then_with(|| a.kind.cmp(&b.kind))
    });
    built
}

/// The errors of a run that count. A process killed by a signal never freed anything, so
/// its leak records describe the crash, not the code.
fn reported_errors(result: &RunResult) -> impl Iterator<Item = &MemcheckError> {
    let died = matches!(result.verdict, Verdict::Died(_));
    result
        .log
        .errors
        .iter()
        .filter(move |error| !(error.kind.starts_with("Leak_") && died))
        .filter(|error| error.kind != "Leak_StillReachable")
}

/// Every problem one run showed.
fn raw_findings(ctx: &Context, job: &Job, result: &RunResult, notes: &mut Vec<String>) -> Vec<Raw> {
    let mut raws: Vec<Raw> = reported_errors(result)
        .map(|error| from_error(ctx, error))
        .collect();
    raws.extend(
        result
            .leaked_fds
            .iter()
            .map(|(fd, stack)| fd_leak(ctx, fd, stack)),
    );
    match &result.verdict {
        Verdict::Failed(output) => raws.push(test_failure(job, output)),
        Verdict::TimedOut { limit, tail } => raws.push(described(failure::timed_out(*limit, tail))),
        Verdict::Died(signal) => {
            notes.push(format!(
                "{} was killed by {signal}; its leak records were left out, since a process \
                 that dies frees nothing",
                job.label()
            ));
            // A signal after a memory error is that error's consequence, not a finding.
            if raws.iter().all(|raw| raw.category == Category::Leak) {
                raws.push(crash(result, signal));
            }
        }
        Verdict::Exited(code) if *code != 0 => {
            notes.push(format!("{} exited with status {code}", job.label()));
        }
        _ => {}
    }
    if !result.log.complete {
        notes.push(format!(
            "memcheck's report for {} was cut off; the errors written before the cut are shown",
            job.label()
        ));
    }
    raws
}

fn crash(result: &RunResult, signal: &str) -> Raw {
    Raw {
        category: Category::Crash,
        kind: "process-died".into(),
        severity: Category::Crash.default_severity(),
        message: format!("killed by {signal} without a memcheck error before it"),
        stack: result
            .log
            .fatal_signal
            .as_ref()
            .map(|fatal| fatal.stack.clone())
            .unwrap_or_default(),
        suppression: None,
    }
}

fn from_error(ctx: &Context, error: &MemcheckError) -> Raw {
    let (category, kind, severity) = kinds::classify(error);
    // Leak records are numbered per run; the number means nothing in a report.
    let what = error
        .what
        .split(" in loss record ")
        .next()
        .unwrap_or(&error.what);
    let mut message = what.to_owned();
    for aux in &error.aux {
        message.push_str("; ");
        let text = kinds::without_address(&aux.text);
        message.push_str(&text);
        if let (Some(place), _) = user_location(ctx, &aux.stack) {
            // "Block was alloc'd at" already ends with its preposition.
            let at = if text.ends_with(" at") { "" } else { " at" };
            let _ = write!(message, "{at} {place}");
        }
    }
    Raw {
        category,
        kind,
        severity,
        message,
        stack: error.stack.clone(),
        suppression: error.suppression.clone(),
    }
}

/// Valgrind names files by the absolute paths in the debug info; a relative one comes from
/// a system library built elsewhere (glibc's `./io/../sysdeps/...`), never from the workspace.
fn is_user_frame(ctx: &Context, frame: &Frame) -> bool {
    frame
        .file
        .as_deref()
        .is_some_and(|file| file.starts_with('/'))
        && locate::is_user_frame(&ctx.workspace, frame)
}

/// The first frame in the user's code and its function; without one, no location and the
/// innermost function.
fn user_location(ctx: &Context, stack: &[Frame]) -> (Option<Location>, Option<String>) {
    match stack.iter().position(|frame| is_user_frame(ctx, frame)) {
        Some(at) => locate::user_location(&ctx.workspace, &stack[at..=at]),
        None => (None, stack.first().map(|frame| frame.function.clone())),
    }
}

fn fd_leak(ctx: &Context, fd: &OpenFd, stack: &[Frame]) -> Raw {
    let description = camino::Utf8Path::new(&fd.description);
    let what = match ctx.workspace.relative(description) {
        _ if fd.description.is_empty() => String::new(),
        Some(relative) => format!(" ({relative})"),
        None => format!(" ({description})"),
    };
    Raw {
        category: Category::Leak,
        kind: "fd-leak".into(),
        severity: Category::Leak.default_severity(),
        message: format!("file descriptor {}{what} is still open at exit", fd.fd),
        stack: stack.to_vec(),
        suppression: None,
    }
}

fn test_failure(job: &Job, output: &str) -> Raw {
    let test = match &job.subject {
        Subject::Test { name, .. } => name.clone(),
        Subject::Program(program) => program.bin.clone(),
    };
    described(failure::failed(&test, output, camino::Utf8Path::new("")))
}

/// A failure, death or timeout as the kernel describes it.
fn described(described: failure::Described) -> Raw {
    Raw {
        category: described.category,
        severity: described.category.default_severity(),
        kind: described.kind,
        message: described.message,
        stack: described.frames,
        suppression: None,
    }
}

fn to_finding(ctx: &Context, settings: &Settings, job: &Job, raw: Raw) -> Finding {
    let (location, function) = user_location(ctx, &raw.stack);
    let mut new = NewFinding::new(
        StageName::Valgrind,
        raw.category,
        raw.kind.clone(),
        raw.message,
    )
    .frames(raw.stack)
    .place(location, function)
    .subject(job.label())
    .target(ctx.host.clone())
    .severity(raw.severity)
    .repro(repro_command(settings, job))
    .tool("valgrind");
    match &job.subject {
        Subject::Test { name, .. } => new = new.test(name.clone(), job.label()),
        Subject::Program(program) => {
            new = new.note(Some(format!(
                "found running `{}` (valgrind.programs)",
                program.label()
            )));
        }
    }
    let mut finding = new.build(&ctx.workspace);
    if raw.suppression.is_some() {
        let named = format!(
            "suppression `{}` in valgrind/suppressions.supp",
            suppressions::name(&finding.kind, &finding.fingerprint)
        );
        finding.note = Some(match finding.note.take() {
            Some(note) => format!("{note}; {named}"),
            None => named,
        });
    }
    finding
}

/// Every run and how the program itself ended, for junit.xml; memcheck's errors are findings.
pub fn test_runs(jobs: &[Job], results: &[RunResult]) -> Vec<TestRun> {
    results
        .iter()
        .map(|result| {
            let job = &jobs[result.job];
            let (unit, name) = match &job.subject {
                Subject::Test { unit, name } => (Some(unit.label()), name.clone()),
                Subject::Program(_) => (None, job.label()),
            };
            let outcome = match result.verdict {
                Verdict::Passed | Verdict::Exited(0) => TestOutcome::Passed,
                Verdict::Ignored => TestOutcome::Ignored,
                Verdict::Failed(_)
                | Verdict::Died(_)
                | Verdict::Exited(_)
                | Verdict::TimedOut { .. } => TestOutcome::Failed,
            };
            TestRun {
                target: None,
                unit,
                name,
                outcome,
                seed: None,
                duration_ms: None,
            }
        })
        .collect()
}

/// The stage's counts: runs, verdicts, findings by class, bytes leaked. (Suppressed errors
/// are per process, not per test, so they are a note: a run from the result cache, or split
/// across machines, starts another number of processes.)
pub fn counts(jobs: &[Job], results: &[RunResult], findings: &[Finding]) -> BTreeMap<String, u64> {
    let mut counts: BTreeMap<String, u64> = [
        "tests_run",
        "passed",
        "failed",
        "ignored",
        "programs_run",
        "memory_errors",
        "uninitialised",
        "leaks",
        "leaked_bytes",
        "fd_leaks",
    ]
    .into_iter()
    .map(|key| (key.to_owned(), 0))
    .collect();
    let mut add = |key: &str, value: u64| *counts.entry(key.to_owned()).or_default() += value;
    for result in results {
        match (&jobs[result.job].subject, &result.verdict) {
            (Subject::Program(_), _) => add("programs_run", 1),
            (_, Verdict::Ignored) => add("ignored", 1),
            (_, Verdict::Passed) => {
                add("tests_run", 1);
                add("passed", 1);
            }
            (_, Verdict::TimedOut { .. }) => {
                add("tests_run", 1);
                add("timed_out", 1);
            }
            _ => {
                add("tests_run", 1);
                add("failed", 1);
            }
        }
        let leaked: u64 = reported_errors(result)
            .filter_map(|error| error.leaked.map(|(bytes, _)| bytes))
            .sum();
        add("leaked_bytes", leaked);
    }
    for finding in findings {
        match (finding.category, finding.kind.as_str()) {
            (Category::Leak, "fd-leak") => add("fd_leaks", 1),
            (Category::Leak, _) => add("leaks", 1),
            (Category::MemoryError, _) => add("memory_errors", 1),
            (Category::UndefinedBehavior, _) => add("uninitialised", 1),
            _ => {}
        }
    }
    counts
}
