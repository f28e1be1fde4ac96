//! Runs shards of tests under Miri on a pool of worker threads. Miri stops a process at the
//! first UB, so a shard that dies is resumed with the tests it did not reach, and the tests it
//! finished are re-checked for leaks (Miri checks leaks only at a clean exit).

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Condvar, Mutex};
use std::time::Instant;

use camino::Utf8Path;

use super::diagnostics::{self, MiriError};
use super::shards::{self, Durations};
use super::{shard_command, Settings};
use crate::inventory::{TestUnit, UnitKind};
use crate::libtest::{self, Outcome as TestOutcome};
use crate::plan::Context;
use crate::process::{Finished, RunOptions, Termination};
use crate::report::model::{TestOutcome as Recorded, TestRun};
use crate::report::Category;

/// One unit's tests on one target.
pub struct UnitWork {
    pub target: String,
    pub unit: TestUnit,
    pub tests: Vec<String>,
}

/// Why a test is reported, before it becomes a finding.
#[derive(Debug, Clone)]
pub enum Cause {
    Miri(MiriError),
    /// The test failed on its own terms (assertion, panic); libtest's captured output.
    Failed {
        output: String,
    },
    /// The process died inside the test without a Miri diagnostic.
    Died {
        termination: String,
        detail: String,
    },
}

#[derive(Debug, Clone)]
pub struct RawFinding {
    pub target: String,
    pub unit: TestUnit,
    pub test: String,
    pub seed: Option<u32>,
    pub cause: Cause,
}

#[derive(Default)]
pub struct Outcome {
    pub raw: Vec<RawFinding>,
    /// Target → `tests_run`, `passed`, `failed`.
    pub counts: BTreeMap<String, BTreeMap<String, u64>>,
    pub durations: Durations,
    /// Every test run and how it ended, for junit.xml.
    pub tests: Vec<TestRun>,
    /// Problems that stop the stage from being evaluated (timeouts, harness failures).
    pub errors: Vec<String>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Run the tests and count them.
    Run,
    /// Re-run tests that already passed only to learn which of them leaks.
    LeakCheck,
}

struct Item {
    work: usize,
    tests: Vec<String>,
    seed: Option<u32>,
    mode: Mode,
}

struct State {
    queue: VecDeque<Item>,
    active: usize,
    stop: bool,
    started_items: usize,
    done_tests: u64,
    outcome: Outcome,
}

pub fn execute(
    ctx: &Context,
    settings: &Settings,
    work: &[UnitWork],
    known: &Durations,
    logs: &Utf8Path,
    deadline: Instant,
) -> Outcome {
    let seeds: Vec<Option<u32>> = if settings.seeds > 1 {
        (0..settings.seeds).map(Some).collect()
    } else {
        vec![None]
    };
    let mut queue = VecDeque::new();
    let mut planned = 0u64;
    for (index, unit_work) in work.iter().enumerate() {
        let label = unit_work.unit.label();
        for seed in &seeds {
            let shard_count = if unit_work.unit.kind == UnitKind::Doc {
                1
            } else {
                ctx.jobs
            };
            let groups = shards::split(&unit_work.tests, shard_count, |test| {
                known
                    .get(&shards::key(&unit_work.target, &label, test))
                    .copied()
            });
            for tests in groups {
                planned += tests.len() as u64;
                queue.push_back(Item {
                    work: index,
                    tests,
                    seed: *seed,
                    mode: Mode::Run,
                });
            }
        }
    }
    let state = Mutex::new(State {
        queue,
        active: 0,
        stop: false,
        started_items: 0,
        done_tests: 0,
        outcome: Outcome::default(),
    });
    let wakeup = Condvar::new();
    std::thread::scope(|scope| {
        for _ in 0..ctx.jobs {
            scope.spawn(|| {
                worker(
                    ctx, settings, work, logs, deadline, planned, &state, &wakeup,
                );
            });
        }
    });
    match state.into_inner() {
        Ok(state) => state.outcome,
        Err(poisoned) => poisoned.into_inner().outcome,
    }
}

#[allow(
    clippy::too_many_arguments,
    reason = "the worker's shared, borrowed state"
)]
fn worker(
    ctx: &Context,
    settings: &Settings,
    work: &[UnitWork],
    logs: &Utf8Path,
    deadline: Instant,
    planned: u64,
    state: &Mutex<State>,
    wakeup: &Condvar,
) {
    loop {
        let (item, sequence) = {
            let Ok(mut guard) = state.lock() else { return };
            loop {
                if guard.stop {
                    return;
                }
                if let Some(item) = guard.queue.pop_front() {
                    guard.active += 1;
                    guard.started_items += 1;
                    break (item, guard.started_items);
                }
                if guard.active == 0 {
                    return;
                }
                let Ok(next) = wakeup.wait(guard) else { return };
                guard = next;
            }
        };
        let result = run_item(
            ctx,
            settings,
            &work[item.work],
            &item,
            logs,
            deadline,
            sequence,
        );
        let Ok(mut guard) = state.lock() else { return };
        guard.active -= 1;
        merge(&mut guard, &work[item.work], &item, result);
        if item.mode == Mode::Run {
            let unit = &work[item.work];
            ctx.progress.status(&format!(
                "{} tests done of {planned} ({}: {}), {} findings so far",
                guard.done_tests,
                unit.target,
                unit.unit.label(),
                guard.outcome.raw.len()
            ));
        }
        wakeup.notify_all();
    }
}

#[derive(Default)]
struct ItemResult {
    results: Vec<libtest::TestResult>,
    /// A test the process died in: run and failed.
    died_in: Option<String>,
    raw: Vec<RawFinding>,
    follow_up: Vec<Item>,
    error: Option<String>,
    stop: bool,
}

fn merge(state: &mut State, unit: &UnitWork, item: &Item, result: ItemResult) {
    let label = unit.unit.label();
    if item.mode == Mode::Run {
        let counts = state.outcome.counts.entry(unit.target.clone()).or_default();
        for test in &result.results {
            let recorded = match test.outcome {
                TestOutcome::Passed => Recorded::Passed,
                TestOutcome::Failed { .. } => Recorded::Failed,
                TestOutcome::Ignored => Recorded::Ignored,
            };
            let run = test_run(unit, item, &test.name, recorded, test.exec_time);
            state.outcome.tests.push(run);
            let key = match recorded {
                Recorded::Passed => "passed",
                Recorded::Failed => "failed",
                Recorded::Ignored => continue,
            };
            *counts.entry("tests_run".into()).or_default() += 1;
            *counts.entry(key.into()).or_default() += 1;
            if let Some(seconds) = test.exec_time {
                state
                    .outcome
                    .durations
                    .insert(shards::key(&unit.target, &label, &test.name), seconds);
            }
        }
        if let Some(culprit) = &result.died_in {
            let run = test_run(unit, item, culprit, Recorded::Failed, None);
            state.outcome.tests.push(run);
            *counts.entry("tests_run".into()).or_default() += 1;
            *counts.entry("failed".into()).or_default() += 1;
        }
        state.done_tests += result.results.len() as u64 + u64::from(result.died_in.is_some());
    }
    state.outcome.raw.extend(result.raw);
    state.outcome.errors.extend(result.error);
    state.queue.extend(result.follow_up);
    if result.stop {
        state.stop = true;
    }
}

fn test_run(
    unit: &UnitWork,
    item: &Item,
    name: &str,
    outcome: Recorded,
    seconds: Option<f64>,
) -> TestRun {
    TestRun {
        target: Some(unit.target.clone()),
        unit: Some(unit.unit.label()),
        name: name.to_owned(),
        outcome,
        seed: item.seed.map(u64::from),
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "a test's duration in milliseconds, never negative or near u64::MAX"
        )]
        duration_ms: seconds.map(|s| (s * 1000.0).round() as u64),
    }
}

/// Runs one item's Miri process and reads what it said.
fn run_item(
    ctx: &Context,
    settings: &Settings,
    unit: &UnitWork,
    item: &Item,
    logs: &Utf8Path,
    deadline: Instant,
    sequence: usize,
) -> ItemResult {
    let finished = match launch(ctx, settings, unit, item, logs, deadline, sequence) {
        Ok(finished) => finished,
        Err(error) => {
            return ItemResult {
                error: Some(error),
                stop: true,
                ..ItemResult::default()
            };
        }
    };
    let events = libtest::parse_events(&finished.stdout);
    let (leaks, others): (Vec<MiriError>, Vec<MiriError>) = diagnostics::parse(&finished.stderr)
        .into_iter()
        .partition(|error| error.category == Category::Leak);
    let raw = |test: &str, cause: Cause| RawFinding {
        target: unit.target.clone(),
        unit: unit.unit.clone(),
        test: test.to_owned(),
        seed: item.seed,
        cause,
    };
    let mut out = ItemResult::default();
    if item.mode == Mode::LeakCheck {
        if events.unfinished.is_empty() {
            attribute_leaks(item, leaks, &raw, &mut out);
        } else if item.tests.len() > 1 {
            // A test that passed before behaved differently now (schedules and addresses
            // vary); its death hides the exit-time leak check, so check each test alone.
            out.follow_up.extend(split_leak_checks(item));
        }
        return out;
    }
    record_failures(&events, &raw, &mut out);
    if let Some(culprit) = events.unfinished.first() {
        resume_after_death(item, &events, culprit, others, &finished, &raw, &mut out);
    } else if !leaks.is_empty() {
        attribute_leaks(item, leaks, &raw, &mut out);
    } else if !events.results.is_empty() && !finished.termination.success() {
        // A failed test makes libtest leave through `exit(101)`, and Miri checks for leaks
        // only when `main` returns: the tests that passed here still need that check.
        out.follow_up.extend(leak_check_of_passed(item, &events));
    } else if events.results.is_empty() && !finished.termination.success() {
        let reason = finished
            .stderr
            .lines()
            .find(|line| line.trim_start().starts_with("error"))
            .unwrap_or("no test started")
            .trim();
        out.error = Some(format!(
            "{} on {} could not run ({}): {reason}",
            unit.unit.label(),
            unit.target,
            finished.termination
        ));
    }
    out.results = events.results;
    out
}

/// Starts the item's process within what is left of the stage's time; a timeout or an
/// interrupt is an error that stops the stage.
fn launch(
    ctx: &Context,
    settings: &Settings,
    unit: &UnitWork,
    item: &Item,
    logs: &Utf8Path,
    deadline: Instant,
    sequence: usize,
) -> Result<Finished, String> {
    let remaining = deadline.saturating_duration_since(Instant::now());
    if remaining.is_zero() {
        return Err(format!(
            "stage timeout reached before {} finished",
            unit.unit.label()
        ));
    }
    let cmd = shard_command(
        ctx,
        settings,
        &unit.target,
        &unit.unit,
        &item.tests,
        item.seed,
    );
    ctx.progress.verbose(&cmd.to_string());
    let target_slug = unit
        .target
        .replace(|c: char| !c.is_ascii_alphanumeric(), "-");
    let stem = logs.join(format!("{sequence:04}-{target_slug}-{}", unit.unit.slug()));
    let options = RunOptions {
        timeout: Some(remaining),
        log_stem: Some(stem),
        ..RunOptions::default()
    };
    let finished = cmd
        .run(&options)
        .map_err(|error| crate::exit::one_line(&error))?;
    match finished.termination {
        Termination::TimedOut(_) => Err(format!(
            "timed out (stage limit {}) while running {} on {}",
            crate::duration::human(ctx.timeout),
            unit.unit.label(),
            unit.target
        )),
        Termination::Interrupted => Err("interrupted".to_owned()),
        _ => Ok(finished),
    }
}

/// Failed tests: Miri's diagnostics inside their output (doctests run Miri in a child) or,
/// without any, the test's own failure.
fn record_failures(
    events: &libtest::RunEvents,
    raw: &dyn Fn(&str, Cause) -> RawFinding,
    out: &mut ItemResult,
) {
    for result in &events.results {
        let TestOutcome::Failed { output } = &result.outcome else {
            continue;
        };
        let inner = diagnostics::parse(output);
        if inner.is_empty() {
            out.raw.push(raw(
                &result.name,
                Cause::Failed {
                    output: output.clone(),
                },
            ));
        } else {
            out.raw.extend(
                inner
                    .into_iter()
                    .map(|error| raw(&result.name, Cause::Miri(error))),
            );
        }
    }
}

/// The process died inside `culprit`: it owns the process's errors; the tests not reached
/// run in a new process, and the ones that finished are re-checked for leaks.
fn resume_after_death(
    item: &Item,
    events: &libtest::RunEvents,
    culprit: &str,
    errors: Vec<MiriError>,
    finished: &Finished,
    raw: &dyn Fn(&str, Cause) -> RawFinding,
    out: &mut ItemResult,
) {
    if errors.is_empty() {
        let detail = finished
            .stderr
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        out.raw.push(raw(
            culprit,
            Cause::Died {
                termination: finished.termination.to_string(),
                detail: detail.trim().to_owned(),
            },
        ));
    } else {
        out.raw.extend(
            errors
                .into_iter()
                .map(|error| raw(culprit, Cause::Miri(error))),
        );
    }
    out.died_in = Some(culprit.to_owned());
    let finished_names: Vec<String> = events.results.iter().map(|r| r.name.clone()).collect();
    let remaining: Vec<String> = item
        .tests
        .iter()
        .filter(|test| *test != culprit && !finished_names.contains(test))
        .cloned()
        .collect();
    if !remaining.is_empty() {
        out.follow_up.push(Item {
            work: item.work,
            tests: remaining,
            seed: item.seed,
            mode: Mode::Run,
        });
    }
    out.follow_up.extend(leak_check_of_passed(item, events));
}

/// The tests that passed in a process that never reached Miri's exit-time leak check, to run
/// again for that check alone (failing tests are left out: they would leave early again).
fn leak_check_of_passed(item: &Item, events: &libtest::RunEvents) -> Option<Item> {
    let passed: Vec<String> = events
        .results
        .iter()
        .filter(|result| result.outcome == TestOutcome::Passed)
        .map(|result| result.name.clone())
        .collect();
    (!passed.is_empty()).then_some(Item {
        work: item.work,
        tests: passed,
        seed: item.seed,
        mode: Mode::LeakCheck,
    })
}

/// Leaks reported at the exit of a process: attributed directly when it ran one test,
/// otherwise each of its tests is re-run alone to find the leaking ones.
fn attribute_leaks(
    item: &Item,
    leaks: Vec<MiriError>,
    raw: &dyn Fn(&str, Cause) -> RawFinding,
    out: &mut ItemResult,
) {
    if leaks.is_empty() {
        return;
    }
    if let [only] = item.tests.as_slice() {
        out.raw
            .extend(leaks.into_iter().map(|leak| raw(only, Cause::Miri(leak))));
        return;
    }
    out.follow_up.extend(split_leak_checks(item));
}

fn split_leak_checks(item: &Item) -> impl Iterator<Item = Item> + '_ {
    item.tests.iter().map(|test| Item {
        work: item.work,
        tests: vec![test.clone()],
        seed: item.seed,
        mode: Mode::LeakCheck,
    })
}
