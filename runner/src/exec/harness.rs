//! The one process strategy for libtest harnesses. A binary's tests run in as few processes
//! as the parallelism needs (a shard per worker, balanced by recorded durations), one test
//! after another; when a process dies (a sanitizer abort, a segfault, Miri's first UB, a test
//! past its time limit) the tests it had not reached run in a fresh one. A report the tool
//! makes at exit (a leak) or that names no test is attributed by re-running the group's tests
//! in halves until each report has its test. Every test runs; every finding names its test.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use camino::{Utf8Path, Utf8PathBuf};

use super::clock::TestClock;
use super::durations::Durations;
use super::pool::{self, Done};
use super::shards;
use crate::inventory::{TestUnit, UnitKind};
use crate::libtest::{self, Outcome as LibtestOutcome};
use crate::plan::Context;
use crate::process::{Cmd, Finished, RunOptions, Termination};
use crate::report::model::{TestOutcome, TestRun};
use crate::report::Frame;

/// The per-test limit of native runs (sanitizers, valgrind, cross) unless configured.
pub const NATIVE_TEST_TIMEOUT: Duration = Duration::from_secs(5 * 60);

/// A test harness on one stage target (a triple, a sanitizer), with the tests to run.
#[derive(Debug, Clone)]
pub struct Binary {
    pub target: String,
    pub unit: TestUnit,
    /// The listed tests (after the user's filters). Empty for a harness that runs whole.
    pub tests: Vec<String>,
}

impl Binary {
    /// rustdoc's doctest harness never matches `--exact` names and runs each doctest as a
    /// process of its own: it runs whole, narrowed only by the user's filters.
    pub fn runs_whole(&self) -> bool {
        self.unit.kind == UnitKind::Doc
    }
}

/// The kernel's unit: some tests of one binary, in one process.
#[derive(Debug, Clone)]
pub struct Unit {
    pub binary: usize,
    /// The tests to select; empty means the whole harness (doctests).
    pub tests: Vec<String>,
    pub seed: Option<u32>,
    pub mode: Mode,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Run the tests and record how each ended.
    Run,
    /// Re-run tests that already ran, only to learn which of them a report without a test
    /// belongs to (nothing is counted again).
    Attribute,
}

/// When the tool made a report, which decides how it finds its test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// While a test ran (Miri's UB, an ASan abort, a data race, an invalid read).
    During,
    /// At the process's exit (a leak check).
    AtExit,
}

/// What a tool read from one finished process.
pub struct Reading<R> {
    pub reports: Vec<R>,
    /// The tool itself failed in a way every later process would too (a sanitizer runtime
    /// that cannot start): the stage target stops with this error.
    pub fatal: Option<String>,
}

/// What a stage tells the kernel about its tool.
pub trait Tool: Sync {
    type Report: Clone + Send;

    /// The process that runs `tests` of `binary` one after another with libtest's JSON
    /// events on stdout (`-Zunstable-options --format json --report-time`); an empty list
    /// runs the whole harness. Logs go to `<log_stem>.out` / `.err`, and the tool may write
    /// its own files next to them.
    fn command(
        &self,
        binary: &Binary,
        tests: &[String],
        seed: Option<u32>,
        log_stem: &Utf8Path,
    ) -> Cmd;

    /// The tool's reports in what the process left.
    fn read(&self, binary: &Binary, finished: &Finished, log_stem: &Utf8Path) -> Reading<Self::Report>;

    /// Reports inside a failed test's captured output (a doctest runs the tool in a child).
    fn reports_in_failure(&self, _output: &str) -> Vec<Self::Report> {
        Vec::new()
    }

    fn when(&self, report: &Self::Report) -> When;

    /// The report's stack, to find the test it happened in by name.
    fn frames<'r>(&self, report: &'r Self::Report) -> &'r [Frame];

    /// Whether a test the tool reported on counts as failed even when libtest passed it (a
    /// leak found at exit, a race that did not break the test).
    fn reports_fail_the_test(&self) -> bool {
        false
    }

    /// Whether the tool's exit-time checks ran for a process that ended this way. Most
    /// run at any exit; Miri's run only when `main` returns (not after libtest's
    /// `exit(101)`), and none run after a death.
    fn exit_checks_ran(&self, termination: &Termination) -> bool {
        matches!(termination, Termination::Exited(_))
    }
}

/// Why a test is reported, before it becomes a finding.
#[derive(Debug, Clone)]
pub enum Cause<R> {
    /// The tool reported a problem.
    Report(R),
    /// The test failed on its own terms (assertion, panic); libtest's captured output.
    Failed { output: String },
    /// The process died inside the test without a report from the tool.
    Died { termination: String, detail: String },
    /// The test ran past its time limit and its process tree was killed.
    TimedOut { limit: Duration, tail: String },
}

/// A cause with the test it belongs to.
#[derive(Debug, Clone)]
pub struct Attributed<R> {
    pub binary: usize,
    pub test: String,
    pub seed: Option<u32>,
    pub cause: Cause<R>,
}

/// Per stage target: how many tests ran and how they ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub tests_run: u64,
    pub passed: u64,
    pub failed: u64,
    pub timed_out: u64,
}

impl Tally {
    /// The stage's counts; `timed_out` only when a test did, so tables of runs without one
    /// keep their columns.
    pub fn counts(self) -> BTreeMap<String, u64> {
        let mut counts = BTreeMap::from([
            ("tests_run".to_owned(), self.tests_run),
            ("passed".to_owned(), self.passed),
            ("failed".to_owned(), self.failed),
        ]);
        if self.timed_out > 0 {
            counts.insert("timed_out".to_owned(), self.timed_out);
        }
        counts
    }

    pub fn add(self, other: Tally) -> Tally {
        Tally {
            tests_run: self.tests_run + other.tests_run,
            passed: self.passed + other.passed,
            failed: self.failed + other.failed,
            timed_out: self.timed_out + other.timed_out,
        }
    }
}

pub struct Outcome<R> {
    pub found: Vec<Attributed<R>>,
    /// Stage target → tally.
    pub tallies: BTreeMap<String, Tally>,
    /// Every test run and how it ended, for junit.xml.
    pub tests: Vec<TestRun>,
    /// This run's measured durations.
    pub durations: Durations,
    /// What kept a part of the stage from being evaluated.
    pub errors: Vec<String>,
}

impl<R> Default for Outcome<R> {
    fn default() -> Self {
        Outcome {
            found: Vec::new(),
            tallies: BTreeMap::new(),
            tests: Vec::new(),
            durations: Durations::default(),
            errors: Vec::new(),
        }
    }
}

/// The limits and places a run works with.
pub struct Limits<'a> {
    pub stage: &'a str,
    pub test_timeout: Duration,
    pub deadline: Instant,
    pub logs: &'a Utf8Path,
    pub seeds: &'a [Option<u32>],
}

/// Runs every test of `binaries` with `tool` on `ctx.jobs` workers.
pub fn run<T: Tool>(
    ctx: &Context,
    tool: &T,
    binaries: &[Binary],
    known: &Durations,
    limits: &Limits<'_>,
) -> Outcome<T::Report> {
    let units = plan_units(ctx.jobs, binaries, known, limits);
    let planned: u64 = units.iter().map(|u| u.tests.len().max(1) as u64).sum();
    let mut outcome = Outcome::default();
    let mut done_tests = 0u64;
    let execute = |unit: Unit, sequence: usize| run_unit(ctx, tool, binaries, limits, unit, sequence);
    let mut merge = |result: UnitResult<T::Report>, left: usize| {
        let binary = &binaries[result.unit.binary];
        if result.unit.mode == Mode::Run {
            done_tests += result.ran.len() as u64;
            record(&mut outcome, limits.stage, binary, &result);
        }
        outcome.found.extend(result.found);
        outcome.errors.extend(result.error);
        ctx.progress.status(&format!(
            "{done_tests} of about {planned} tests done, {left} processes to go ({}: {}), {} findings so far",
            binary.target,
            binary.unit.label(),
            outcome.found.len()
        ));
    };
    pool::run(ctx.jobs, units, &|unit, sequence| execute(unit, sequence), &mut merge);
    if tool.reports_fail_the_test() {
        fail_reported_tests(&mut outcome, binaries);
    }
    if crate::process::interrupted() && outcome.errors.is_empty() {
        outcome.errors.push("interrupted".to_owned());
    }
    outcome
}

/// Tests libtest passed but the tool reported on count as failed.
fn fail_reported_tests<R>(outcome: &mut Outcome<R>, binaries: &[Binary]) {
    for run in &mut outcome.tests {
        if run.outcome != TestOutcome::Passed {
            continue;
        }
        let reported = outcome.found.iter().any(|found| {
            let binary = &binaries[found.binary];
            matches!(found.cause, Cause::Report(_))
                && found.test == run.name
                && run.unit.as_deref() == Some(binary.unit.label().as_str())
                && run.target.as_deref() == Some(binary.target.as_str())
                && run.seed == found.seed.map(u64::from)
        });
        if reported {
            run.outcome = TestOutcome::Failed;
            if let Some(tally) = run.target.as_ref().and_then(|t| outcome.tallies.get_mut(t)) {
                tally.passed = tally.passed.saturating_sub(1);
                tally.failed += 1;
            }
        }
    }
}

/// One unit per shard of each binary and seed, longest expected first so the last
/// processes to start are short ones.
fn plan_units(
    jobs: usize,
    binaries: &[Binary],
    known: &Durations,
    limits: &Limits<'_>,
) -> Vec<Unit> {
    let mut weighted: Vec<(f64, Unit)> = Vec::new();
    for (index, binary) in binaries.iter().enumerate() {
        let label = binary.unit.label();
        let duration_of =
            |test: &str| known.get(limits.stage, &binary.target, &label, test);
        for seed in limits.seeds {
            if binary.runs_whole() {
                weighted.push((
                    f64::MAX,
                    Unit {
                        binary: index,
                        tests: Vec::new(),
                        seed: *seed,
                        mode: Mode::Run,
                    },
                ));
                continue;
            }
            for shard in shards::split(&binary.tests, jobs, duration_of) {
                weighted.push((
                    shard.weight,
                    Unit {
                        binary: index,
                        tests: shard.tests,
                        seed: *seed,
                        mode: Mode::Run,
                    },
                ));
            }
        }
    }
    weighted.sort_by(|a, b| b.0.total_cmp(&a.0));
    weighted.into_iter().map(|(_, unit)| unit).collect()
}

struct UnitResult<R> {
    unit: Unit,
    /// The tests that ran to an end in this process (Run mode), with how they ended.
    ran: Vec<(String, TestOutcome, Option<f64>)>,
    found: Vec<Attributed<R>>,
    error: Option<String>,
}

fn record<R>(outcome: &mut Outcome<R>, stage: &str, binary: &Binary, result: &UnitResult<R>) {
    let tally = outcome.tallies.entry(binary.target.clone()).or_default();
    let label = binary.unit.label();
    let timed_out: Vec<&str> = result
        .found
        .iter()
        .filter(|found| matches!(found.cause, Cause::TimedOut { .. }))
        .map(|found| found.test.as_str())
        .collect();
    for (name, test_outcome, seconds) in &result.ran {
        match test_outcome {
            TestOutcome::Ignored => {}
            TestOutcome::Passed => {
                tally.tests_run += 1;
                tally.passed += 1;
            }
            TestOutcome::Failed => {
                tally.tests_run += 1;
                if timed_out.contains(&name.as_str()) {
                    tally.timed_out += 1;
                } else {
                    tally.failed += 1;
                }
            }
        }
        if let Some(seconds) = seconds {
            outcome
                .durations
                .insert(stage, &binary.target, &label, name, *seconds);
        }
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "a test's duration in milliseconds, never negative or near u64::MAX"
        )]
        outcome.tests.push(TestRun {
            target: Some(binary.target.clone()),
            unit: Some(label.clone()),
            name: name.clone(),
            outcome: *test_outcome,
            seed: result.unit.seed.map(u64::from),
            duration_ms: seconds.map(|s| (s * 1000.0).round() as u64),
        });
    }
}

/// Runs one unit's process and works out what it means.
fn run_unit<T: Tool>(
    ctx: &Context,
    tool: &T,
    binaries: &[Binary],
    limits: &Limits<'_>,
    unit: Unit,
    sequence: usize,
) -> Done<Unit, UnitResult<T::Report>> {
    let binary = &binaries[unit.binary];
    let fail = |unit: Unit, error: String| Done {
        result: UnitResult {
            unit,
            ran: Vec::new(),
            found: Vec::new(),
            error: Some(error),
        },
        follow_up: Vec::new(),
        stop: true,
    };
    let remaining = limits.deadline.saturating_duration_since(Instant::now());
    if remaining.is_zero() {
        let error = format!(
            "stage timeout reached before {} on {} finished",
            binary.unit.label(),
            binary.target
        );
        return fail(unit, error);
    }
    let stem = log_stem(limits.logs, sequence, binary);
    let cmd = tool.command(binary, &unit.tests, unit.seed, &stem);
    ctx.progress.verbose(&cmd.to_string());
    let clock = TestClock::new(limits.test_timeout);
    let observe = |line: &str| clock.observe(line);
    let on_slow = |test: &str, running: Duration| {
        ctx.progress.note(&format!(
            "slow: {} {test} on {} has run {} (limit {})",
            binary.unit.label(),
            binary.target,
            crate::duration::human(running),
            crate::duration::human(clock.limit())
        ));
    };
    let tick = || clock.tick(&on_slow);
    let finished = match cmd.run(&RunOptions {
        timeout: Some(remaining),
        log_stem: Some(stem.clone()),
        on_stdout: Some(&observe),
        on_tick: Some(&tick),
        ..RunOptions::default()
    }) {
        Ok(finished) => finished,
        Err(error) => return fail(unit, crate::exit::one_line(&error)),
    };
    match finished.termination {
        Termination::TimedOut(_) => {
            let error = format!(
                "timed out (stage limit {}) while running {} on {}",
                crate::duration::human(ctx.timeout),
                binary.unit.label(),
                binary.target
            );
            return fail(unit, error);
        }
        Termination::Interrupted => return fail(unit, "interrupted".to_owned()),
        _ => {}
    }
    let reading = tool.read(binary, &finished, &stem);
    let overdue = clock.overdue().map(|test| (test, clock.limit()));
    let mut done = interpret(tool, binary, unit, &finished, reading.reports, overdue);
    if let Some(fatal) = reading.fatal {
        done.result.error = Some(fatal);
        done.follow_up.clear();
        done.stop = true;
    }
    done
}

fn log_stem(logs: &Utf8Path, sequence: usize, binary: &Binary) -> Utf8PathBuf {
    let target = binary
        .target
        .replace(|c: char| !c.is_ascii_alphanumeric(), "-");
    logs.join(format!("{sequence:04}-{target}-{}", binary.unit.slug()))
}

/// What one process's events, termination and reports mean for its tests.
fn interpret<T: Tool>(
    tool: &T,
    binary: &Binary,
    unit: Unit,
    finished: &Finished,
    reports: Vec<T::Report>,
    overdue: Option<(String, Duration)>,
) -> Done<Unit, UnitResult<T::Report>> {
    let events = libtest::parse_events(&finished.stdout);
    let attributed = |test: &str, cause: Cause<T::Report>| Attributed {
        binary: unit.binary,
        test: test.to_owned(),
        seed: unit.seed,
        cause,
    };
    let mut found = Vec::new();
    let mut ran = Vec::new();
    let mut follow_up = Vec::new();
    let mut error = None;

    // Tests that ended on their own.
    for result in &events.results {
        let outcome = match &result.outcome {
            LibtestOutcome::Passed => TestOutcome::Passed,
            LibtestOutcome::Ignored => TestOutcome::Ignored,
            LibtestOutcome::Failed { output } => {
                if unit.mode == Mode::Run {
                    let inner = tool.reports_in_failure(output);
                    if inner.is_empty() {
                        found.push(attributed(
                            &result.name,
                            Cause::Failed {
                                output: output.clone(),
                            },
                        ));
                    } else {
                        found.extend(
                            inner
                                .into_iter()
                                .map(|report| attributed(&result.name, Cause::Report(report))),
                        );
                    }
                }
                TestOutcome::Failed
            }
        };
        ran.push((result.name.clone(), outcome, result.exec_time));
    }

    // The test the process ended in: past its limit, or ended by what it did (a signal, a
    // sanitizer's exit after its report, Miri's UB) while the test was still running.
    let culprit = match (&finished.termination, &overdue) {
        (Termination::Stopped, Some((test, _))) => Some(test.clone()),
        _ => events.unfinished.first().cloned(),
    };
    let (during, at_exit): (Vec<T::Report>, Vec<T::Report>) = reports
        .into_iter()
        .partition(|report| tool.when(report) == When::During);
    let mut unplaced = Vec::new();
    if let Some(culprit) = &culprit {
        if matches!(finished.termination, Termination::Stopped) {
            if unit.mode == Mode::Run {
                found.push(attributed(
                    culprit,
                    Cause::TimedOut {
                        limit: overdue.as_ref().map_or(Duration::ZERO, |(_, limit)| *limit),
                        tail: tail(finished, 20),
                    },
                ));
            }
            unplaced.extend(during);
        } else if during.is_empty() {
            if unit.mode == Mode::Run {
                found.push(attributed(
                    culprit,
                    Cause::Died {
                        termination: finished.termination.to_string(),
                        detail: last_line(&finished.stderr),
                    },
                ));
            }
        } else if unit.mode == Mode::Run {
            // What made the process die is the culprit's; a report naming another test
            // of the group (a race seen earlier) goes to that test.
            for report in during {
                let test = by_frames(tool, &report, &unit.tests).unwrap_or(culprit.as_str());
                found.push(attributed(test, Cause::Report(report)));
            }
        }
        if unit.mode == Mode::Run {
            ran.push((culprit.clone(), TestOutcome::Failed, None));
        }
    } else {
        unplaced.extend(during);
    }
    let exit_checks_ran = culprit.is_none() && tool.exit_checks_ran(&finished.termination);
    if exit_checks_ran {
        unplaced.extend(at_exit);
    }

    // Reports that need their test: the only one that ran, the one their stack names, or
    // a re-run of the group in halves.
    let ran_names: Vec<String> = ran
        .iter()
        .filter(|(_, outcome, _)| *outcome != TestOutcome::Ignored)
        .map(|(name, _, _)| name.clone())
        .filter(|name| Some(name) != culprit.as_ref())
        .collect();
    let mut needs_halving = false;
    for report in unplaced {
        let single = match (unit.tests.as_slice(), ran_names.as_slice()) {
            ([only], _) | (_, [only]) => Some(only.as_str()),
            _ => None,
        };
        match single.or_else(|| by_frames(tool, &report, &ran_names)) {
            Some(test) => found.push(attributed(test, Cause::Report(report))),
            None if !binary.runs_whole() && ran_names.len() > 1 => needs_halving = true,
            None => {
                // A whole-run harness cannot be narrowed: the report stays with the harness.
                let test = ran_names.first().map_or("(whole harness)", String::as_str);
                found.push(attributed(test, Cause::Report(report)));
            }
        }
    }
    if needs_halving {
        let middle = ran_names.len() / 2;
        for half in [&ran_names[..middle], &ran_names[middle..]] {
            follow_up.push(Unit {
                binary: unit.binary,
                tests: half.to_vec(),
                seed: unit.seed,
                mode: Mode::Attribute,
            });
        }
    }

    // The tests the process never reached run in a fresh one.
    if culprit.is_some() && !binary.runs_whole() {
        let reached: Vec<&String> = ran.iter().map(|(name, _, _)| name).collect();
        let rest: Vec<String> = unit
            .tests
            .iter()
            .filter(|test| !reached.contains(test) && Some(*test) != culprit.as_ref())
            .cloned()
            .collect();
        if !rest.is_empty() {
            follow_up.push(Unit {
                binary: unit.binary,
                tests: rest,
                seed: unit.seed,
                mode: unit.mode,
            });
        }
    }
    // Exit-time checks that never ran (a death, or Miri after a failed test) still owe the
    // tests that passed here their check.
    if unit.mode == Mode::Run && !exit_checks_ran {
        let passed: Vec<String> = ran
            .iter()
            .filter(|(_, outcome, _)| *outcome == TestOutcome::Passed)
            .map(|(name, _, _)| name.clone())
            .collect();
        if !passed.is_empty() && !binary.runs_whole() {
            follow_up.push(Unit {
                binary: unit.binary,
                tests: passed,
                seed: unit.seed,
                mode: Mode::Attribute,
            });
        }
    }

    if unit.mode == Mode::Run
        && events.results.is_empty()
        && culprit.is_none()
        && !finished.termination.success()
    {
        error = Some(format!(
            "{} on {} could not run ({}): {}",
            binary.unit.label(),
            binary.target,
            finished.termination,
            crate::cargo_output::first_error(finished)
        ));
    }
    if unit.mode == Mode::Attribute {
        ran.clear();
    }
    Done {
        result: UnitResult {
            unit,
            ran,
            found,
            error,
        },
        follow_up,
        stop: false,
    }
}

/// The only test among `tests` whose name the report's stack shows (`crate::tests::name`, or
/// a closure inside it).
fn by_frames<'t, T: Tool>(tool: &T, report: &T::Report, tests: &'t [String]) -> Option<&'t str> {
    let frames = tool.frames(report);
    let mut matching = tests.iter().filter(|test| {
        frames.iter().any(|frame| {
            let function = frame.function.as_str();
            function.ends_with(&format!("::{test}"))
                || function == test.as_str()
                || function.contains(&format!("::{test}::"))
        })
    });
    let first = matching.next()?;
    matching.next().is_none().then_some(first.as_str())
}

fn last_line(text: &str) -> String {
    text.lines()
        .rev()
        .find(|line| !line.trim().is_empty())
        .unwrap_or("")
        .trim()
        .to_owned()
}

/// The last `lines` lines of a process's output, stdout then stderr.
fn tail(finished: &Finished, lines: usize) -> String {
    let all: Vec<&str> = finished
        .stdout
        .lines()
        .filter(|line| !line.trim_start().starts_with("{ \"type\": "))
        .chain(finished.stderr.lines())
        .collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
