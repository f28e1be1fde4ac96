//! Runs one sanitizer's tests on a pool of workers, each test in a process of its own, and
//! reads what each process said: sanitizer reports, a plain test failure, or a death.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Instant;

use camino::Utf8Path;

use super::commands;
use super::options::Settings;
use super::report_parser::{self, SanitizerReport};
use super::sanitizer::Sanitizer;
use crate::inventory::TestUnit;
use crate::libtest::{self, Outcome as TestOutcome};
use crate::plan::Context;
use crate::process::{Cmd, Finished, RunOptions, Termination};

/// One process to run: a test of a harness, or (without a test) a package's doctests.
pub struct Job {
    pub unit: usize,
    pub test: Option<String>,
}

/// Why a test is reported, before it becomes a finding.
#[derive(Debug, Clone)]
pub enum Cause {
    Report(SanitizerReport),
    /// The test failed on its own terms under the sanitizer; libtest's captured output.
    Failed {
        output: String,
    },
    /// The process died without a report.
    Died {
        termination: String,
        detail: String,
    },
}

#[derive(Debug, Clone)]
pub struct RawFinding {
    pub unit: TestUnit,
    pub test: String,
    pub cause: Cause,
}

#[derive(Debug, Default)]
pub struct Outcome {
    pub raw: Vec<RawFinding>,
    pub tests_run: u64,
    pub passed: u64,
    pub failed: u64,
    /// What kept the sanitizer from being evaluated (timeouts, runtime failures).
    pub errors: Vec<String>,
}

struct Pool {
    queue: VecDeque<(usize, Job)>,
    outcome: Outcome,
    stop: bool,
}

/// Where a job runs and logs.
pub struct Scope<'a> {
    pub ctx: &'a Context,
    pub settings: &'a Settings,
    pub sanitizer: Sanitizer,
    pub units: &'a [TestUnit],
    pub logs: &'a Utf8Path,
    pub deadline: Instant,
}

pub fn execute(scope: &Scope<'_>, jobs: Vec<Job>) -> Outcome {
    let total = jobs.len();
    let pool = Mutex::new(Pool {
        queue: jobs.into_iter().enumerate().collect(),
        outcome: Outcome::default(),
        stop: false,
    });
    std::thread::scope(|threads| {
        for _ in 0..scope.ctx.jobs.min(total.max(1)) {
            threads.spawn(|| worker(scope, &pool, total));
        }
    });
    match pool.into_inner() {
        Ok(pool) => pool.outcome,
        Err(poisoned) => poisoned.into_inner().outcome,
    }
}

fn worker(scope: &Scope<'_>, pool: &Mutex<Pool>, total: usize) {
    loop {
        let (sequence, job) = {
            let Ok(mut guard) = pool.lock() else { return };
            if guard.stop {
                return;
            }
            let Some(next) = guard.queue.pop_front() else {
                return;
            };
            next
        };
        let result = run_job(scope, &job, sequence);
        let Ok(mut guard) = pool.lock() else { return };
        let outcome = &mut guard.outcome;
        outcome.tests_run += result.run;
        outcome.passed += result.passed;
        outcome.failed += result.run - result.passed;
        outcome.raw.extend(result.raw);
        outcome.errors.extend(result.error);
        scope.ctx.progress.status(&format!(
            "{}: {} of {total} processes, {} tests run, {} findings so far",
            scope.sanitizer,
            sequence + 1,
            outcome.tests_run,
            outcome.raw.len()
        ));
        if result.stop {
            guard.stop = true;
        }
    }
}

#[derive(Default)]
struct JobResult {
    run: u64,
    passed: u64,
    raw: Vec<RawFinding>,
    error: Option<String>,
    /// Every later process would fail the same way (timeout, interrupt, broken runtime).
    stop: bool,
}

impl JobResult {
    fn fatal(error: String) -> JobResult {
        JobResult {
            error: Some(error),
            stop: true,
            ..JobResult::default()
        }
    }
}

fn run_job(scope: &Scope<'_>, job: &Job, sequence: usize) -> JobResult {
    let unit = &scope.units[job.unit];
    let cmd = match (&job.test, &unit.executable) {
        (Some(test), Some(executable)) => commands::test(
            scope.ctx,
            scope.settings,
            scope.sanitizer,
            executable.as_str(),
            &unit.package,
            test,
        ),
        _ => commands::doctests(scope.ctx, scope.settings, scope.sanitizer, unit),
    };
    let stem = format!("{}-{sequence:04}-{}", scope.sanitizer, unit.slug());
    let finished = match launch(scope, &cmd, &stem, unit) {
        Ok(finished) => finished,
        Err(error) => return JobResult::fatal(error),
    };
    let raw = |test: &str, cause: Cause| RawFinding {
        unit: unit.clone(),
        test: test.to_owned(),
        cause,
    };
    match &job.test {
        Some(test) => read_test(&finished, test, &raw),
        None => read_doctests(&finished, unit, &raw),
    }
}

/// Runs a process within what is left of the stage's time.
fn launch(scope: &Scope<'_>, cmd: &Cmd, stem: &str, unit: &TestUnit) -> Result<Finished, String> {
    let remaining = scope.deadline.saturating_duration_since(Instant::now());
    if remaining.is_zero() {
        return Err(format!(
            "stage timeout reached before {} ran under {}",
            unit.label(),
            scope.sanitizer
        ));
    }
    scope.ctx.progress.verbose(&cmd.to_string());
    let finished = cmd
        .run(&RunOptions {
            timeout: Some(remaining),
            log_stem: Some(scope.logs.join(stem)),
            ..RunOptions::default()
        })
        .map_err(|error| crate::exit::one_line(&error))?;
    match finished.termination {
        Termination::TimedOut(_) => Err(format!(
            "timed out (stage limit {}) while running {} under {}",
            crate::duration::human(scope.ctx.timeout),
            unit.label(),
            scope.sanitizer
        )),
        Termination::Interrupted => Err("interrupted".to_owned()),
        _ => Ok(finished),
    }
}

/// One test's process: its reports (all of them; `ThreadSanitizer` and `LeakSanitizer` report
/// after the test itself passed), else its failure or its death.
fn read_test(
    finished: &Finished,
    test: &str,
    raw: &dyn Fn(&str, Cause) -> RawFinding,
) -> JobResult {
    let reports = match reports_in(&finished.stderr) {
        Ok(reports) => reports,
        Err(stop) => return stop,
    };
    let events = libtest::parse_events(&finished.stdout);
    let result = events.results.iter().find(|r| r.name == test);
    if result.is_some_and(|r| r.outcome == TestOutcome::Ignored) {
        return JobResult::default();
    }
    let mut out = JobResult {
        run: 1,
        ..JobResult::default()
    };
    out.raw = reports
        .into_iter()
        .map(|report| raw(test, Cause::Report(report)))
        .collect();
    if !out.raw.is_empty() {
        return out;
    }
    match result.map(|r| &r.outcome) {
        Some(TestOutcome::Failed { output }) => out.raw.push(raw(
            test,
            Cause::Failed {
                output: output.clone(),
            },
        )),
        Some(_) if finished.termination.success() => out.passed = 1,
        // Nothing ran (the harness found no such test); zero tests overall is an error later.
        None if finished.termination.success() => return JobResult::default(),
        _ => out.raw.push(raw(test, died(finished))),
    }
    out
}

/// A package's doctests: rustdoc folds each doctest's stderr into the failure's output.
fn read_doctests(
    finished: &Finished,
    unit: &TestUnit,
    raw: &dyn Fn(&str, Cause) -> RawFinding,
) -> JobResult {
    let events = libtest::parse_events(&finished.stdout);
    let mut out = JobResult::default();
    for result in &events.results {
        let output = match &result.outcome {
            TestOutcome::Ignored => continue,
            TestOutcome::Passed => {
                out.run += 1;
                out.passed += 1;
                continue;
            }
            TestOutcome::Failed { output } => output,
        };
        out.run += 1;
        let reports = match reports_in(output) {
            Ok(reports) => reports,
            Err(stop) => return stop,
        };
        if reports.is_empty() {
            out.raw.push(raw(
                &result.name,
                Cause::Failed {
                    output: output.clone(),
                },
            ));
        }
        out.raw.extend(
            reports
                .into_iter()
                .map(|report| raw(&result.name, Cause::Report(report))),
        );
    }
    if events.results.is_empty() && !finished.termination.success() {
        out.error = Some(format!(
            "{} could not run ({}): {}",
            unit.label(),
            finished.termination,
            crate::cargo_output::first_error(finished)
        ));
    }
    out
}

/// The reports in a process's output; a runtime that failed stops the sanitizer's run, as
/// every later process would fail the same way.
fn reports_in(output: &str) -> Result<Vec<SanitizerReport>, JobResult> {
    let parsed = report_parser::parse(output);
    match parsed.fatal {
        Some(fatal) => Err(JobResult::fatal(explain_fatal(&fatal))),
        None => Ok(parsed.reports),
    }
}

fn died(finished: &Finished) -> Cause {
    let detail = finished
        .stderr
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
        .to_owned();
    Cause::Died {
        termination: finished.termination.to_string(),
        detail,
    }
}

/// A runtime failure with what to do about it.
pub fn explain_fatal(fatal: &str) -> String {
    if fatal.contains("LeakSanitizer") {
        format!(
            "{fatal}. LeakSanitizer needs ptrace: in a container, run it with `--cap-add \
             SYS_PTRACE`, or turn the leak check off with `detect_leaks=0` in runner config \
             `sanitizers.options.address`"
        )
    } else if fatal.contains("ThreadSanitizer") && fatal.contains("memory mapping") {
        format!(
            "{fatal}. ThreadSanitizer cannot map its shadow memory with this kernel's address \
             randomisation: lower it with `sysctl vm.mmap_rnd_bits=28`"
        )
    } else {
        format!("the sanitizer runtime failed: {fatal}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::UnitKind;

    fn finished(termination: Termination, stdout: &str, stderr: &str) -> Finished {
        Finished {
            termination,
            stdout: stdout.to_owned(),
            stderr: stderr.to_owned(),
        }
    }

    fn read(finished: &Finished) -> JobResult {
        let unit = TestUnit {
            package: "p".into(),
            kind: UnitKind::Lib,
            name: "p".into(),
            executable: None,
        };
        let raw = |test: &str, cause: Cause| RawFinding {
            unit: unit.clone(),
            test: test.to_owned(),
            cause,
        };
        read_test(finished, "tests::t", &raw)
    }

    const STARTED: &str =
        "{ \"type\": \"test\", \"event\": \"started\", \"name\": \"tests::t\" }\n";
    const OK: &str = "{ \"type\": \"test\", \"name\": \"tests::t\", \"event\": \"ok\" }\n";

    #[test]
    fn a_passing_test_that_leaks_is_a_finding() {
        let clean = read(&finished(
            Termination::Exited(0),
            &format!("{STARTED}{OK}"),
            "",
        ));
        assert_eq!((clean.run, clean.passed, clean.raw.len()), (1, 1, 0));
        let leak = include_str!("../../../tests/data/sanitizers/address-leak.stderr");
        let leaked = read(&finished(
            Termination::Exited(23),
            &format!("{STARTED}{OK}"),
            leak,
        ));
        assert_eq!((leaked.run, leaked.passed, leaked.raw.len()), (1, 0, 1));
        assert!(matches!(&leaked.raw[0].cause, Cause::Report(r) if r.kind == "direct-leak"));
    }

    #[test]
    fn failures_and_deaths_without_a_report() {
        let failed = format!(
            "{STARTED}{{ \"type\": \"test\", \"name\": \"tests::t\", \"event\": \"failed\", \"stdout\": \"thread 'tests::t' panicked at src/lib.rs:3:5:\\nboom\\n\" }}\n"
        );
        let result = read(&finished(Termination::Exited(101), &failed, ""));
        assert!(
            matches!(&result.raw[0].cause, Cause::Failed { output } if output.contains("boom"))
        );
        let result = read(&finished(
            Termination::Signalled("SIGSEGV: invalid memory reference".into()),
            STARTED,
            "last words\n",
        ));
        assert!(matches!(
            &result.raw[0].cause,
            Cause::Died { termination, detail } if termination.contains("SIGSEGV") && detail == "last words"
        ));
    }

    #[test]
    fn a_broken_runtime_stops_the_run_with_advice() {
        let result = read(&finished(
            Termination::Exited(1),
            "",
            "==7==LeakSanitizer has encountered a fatal error.\n",
        ));
        assert!(result.stop);
        assert!(result.error.unwrap().contains("--cap-add SYS_PTRACE"));
    }
}
