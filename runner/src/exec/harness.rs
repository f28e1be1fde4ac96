//! The one process strategy for libtest harnesses. A binary's tests run in as few processes
//! as the parallelism needs (a shard per worker, balanced by recorded durations), one test
//! after another; when a process dies (a sanitizer abort, a segfault, Miri's first UB, a test
//! past its time limit) the tests it had not reached run in a fresh one. A report the tool
//! makes at exit (a leak) or that names no test is attributed by re-running the group's tests
//! in halves until each report has its test. Every test runs; every finding names its test.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use camino::{Utf8Path, Utf8PathBuf};

use super::attribute::{self, UnitResult};
use super::cached::{self, Answered};
use super::clock::TestClock;
use super::durations::Durations;
use super::partition::{self, Partition};
use super::pool::{self, Done};
use super::shards;
use super::tool::{Attributed, Binary, Cause, Mode, Tool, Unit};
use crate::plan::Context;
use crate::process::{RunOptions, Termination};
use crate::report::model::{StagePartition, TestOutcome, TestRun};

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

    #[must_use]
    pub fn plus(self, other: Tally) -> Tally {
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
    /// Under `--partition`: the stage's share of the split.
    pub partition: Option<StagePartition>,
    /// Stage target → tests the split gave to other slices.
    pub elsewhere: BTreeMap<String, u64>,
    /// What the result cache answered instead of a run.
    pub cache: Answered,
}

impl<R> Outcome<R> {
    /// No test of `target` ran here or in another slice: the stage found none to run, which
    /// is never a PASS.
    pub fn found_no_tests(&self, target: &str) -> bool {
        self.tallies.get(target).map_or(0, |t| t.tests_run) == 0
            && self.elsewhere.get(target).copied().unwrap_or(0) == 0
    }
}

impl<R> Default for Outcome<R> {
    fn default() -> Self {
        Outcome {
            found: Vec::new(),
            tallies: BTreeMap::new(),
            tests: Vec::new(),
            durations: Durations::default(),
            errors: Vec::new(),
            partition: None,
            elsewhere: BTreeMap::new(),
            cache: Answered::default(),
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
    // How many tests each harness has in all, before the split and the cache narrow it.
    let listed: Vec<usize> = binaries.iter().map(|binary| binary.tests.len()).collect();
    let slice = slice(ctx.partition, binaries, known, limits.stage);
    let (lookup, answered) = cached::lookup(ctx, tool, &slice.binaries, &slice.here, limits);
    let binaries = lookup.binaries.as_slice();
    let mut units = plan_units(ctx.jobs, binaries, &slice.here, known, limits);
    units.retain(|unit| lookup.runs(unit));
    let planned: u64 = units.iter().map(|u| u.tests.len().max(1) as u64).sum();
    let mut outcome = Outcome {
        elsewhere: slice.elsewhere,
        ..answered
    };
    let started = Instant::now();
    let mut done_tests = 0u64;
    // Binaries a process of which hit a stage error: none of their results are stored.
    let mut unfinished = BTreeSet::new();
    let execute = |unit: Unit, sequence: usize| {
        let every_test = holds_every_test(&unit, listed[unit.binary], &ctx.filters);
        run_unit(ctx, tool, binaries, limits, unit, every_test, sequence)
    };
    let mut merge = |result: UnitResult<T::Report>, left: usize| {
        let binary = &binaries[result.unit.binary];
        if result.unit.mode == Mode::Run {
            done_tests += result.ran.len() as u64;
            record(&mut outcome, limits.stage, binary, &result);
        }
        // An attribution re-run finds again what its group already placed by stack.
        for found in result.found {
            if result.unit.mode == Mode::Run || !outcome.found.contains(&found) {
                outcome.found.push(found);
            }
        }
        if result.error.is_some() {
            unfinished.insert(result.unit.binary);
        }
        outcome.errors.extend(result.error);
        ctx.progress.status(&format!(
            "{done_tests} of about {planned} tests done, {left} processes to go ({}: {}), {} findings so far",
            binary.target,
            binary.unit.label(),
            outcome.found.len()
        ));
    };
    pool::run(
        ctx.jobs,
        units,
        &|unit, sequence| execute(unit, sequence),
        &mut merge,
    );
    outcome.partition = slice.record.map(|mut record| {
        record.execution_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        record
    });
    if tool.reports_fail_the_test() {
        fail_reported_tests(&mut outcome, binaries);
    }
    // Completion order depends on scheduling; reports list tests in a stable order.
    outcome.tests.sort_by(|a, b| {
        (&a.target, &a.unit, &a.name, a.seed).cmp(&(&b.target, &b.unit, &b.name, b.seed))
    });
    if crate::process::interrupted() && outcome.errors.is_empty() {
        outcome.errors.push("interrupted".to_owned());
    }
    if !crate::process::interrupted() {
        cached::store::<T>(ctx, &lookup, &outcome, &unfinished, limits);
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

/// This job's slice of the work under `--partition`: the binaries with only the tests the
/// split gave it, which binaries have anything here, and the stage's share for the report.
struct Slice {
    binaries: Vec<Binary>,
    here: Vec<bool>,
    elsewhere: BTreeMap<String, u64>,
    record: Option<StagePartition>,
}

/// Splits every test of every binary (a harness that runs whole is one piece) by the
/// durations known before the run, the same way in every job.
fn slice(
    partition: Option<Partition>,
    binaries: &[Binary],
    known: &Durations,
    stage: &str,
) -> Slice {
    let Some(partition) = partition else {
        return Slice {
            binaries: binaries.to_vec(),
            here: vec![true; binaries.len()],
            elsewhere: BTreeMap::new(),
            record: None,
        };
    };
    let mut items = Vec::new();
    let mut owners = Vec::new();
    for (index, binary) in binaries.iter().enumerate() {
        let label = binary.unit.label();
        let pieces: Vec<Option<&str>> = if binary.runs_whole() {
            vec![None]
        } else {
            binary
                .tests
                .iter()
                .map(|test| Some(test.as_str()))
                .collect()
        };
        for test in pieces {
            let name = test.unwrap_or("(whole harness)");
            items.push(partition::Item {
                identity: format!("{stage} {} {label} {name}", binary.target),
                expected: test.and_then(|test| known.get(stage, &binary.target, &label, test)),
            });
            owners.push((index, test));
        }
    }
    let slices = partition::assign(&items, partition.count);
    let mut narrowed: Vec<Binary> = binaries
        .iter()
        .map(|binary| Binary {
            tests: Vec::new(),
            ..binary.clone()
        })
        .collect();
    let mut here = vec![false; binaries.len()];
    let mut elsewhere: BTreeMap<String, u64> = BTreeMap::new();
    let mut units_here = 0;
    for ((index, test), slot) in owners.into_iter().zip(slices) {
        if slot + 1 == partition.index {
            here[index] = true;
            units_here += 1;
            if let Some(test) = test {
                narrowed[index].tests.push(test.to_owned());
            }
        } else {
            *elsewhere.entry(binaries[index].target.clone()).or_default() += 1;
        }
    }
    Slice {
        binaries: narrowed,
        here,
        elsewhere,
        record: Some(StagePartition {
            plan_digest: partition::digest(&items, partition.count),
            units: units_here,
            total_units: items.len() as u64,
            execution_ms: 0,
            whole_in: None,
        }),
    }
}

/// One unit per shard of each binary and seed, longest expected first so the last
/// processes to start are short ones. Binaries with nothing in this job's slice are left out.
fn plan_units(
    jobs: usize,
    binaries: &[Binary],
    here: &[bool],
    known: &Durations,
    limits: &Limits<'_>,
) -> Vec<Unit> {
    // A binary gets shards in proportion to its share of the expected work, so the many small
    // harnesses of a crate run in one process each and only the long ones are split.
    let expected: Vec<f64> = binaries
        .iter()
        .zip(here)
        .map(|(binary, here)| {
            if !here {
                return 0.0;
            }
            let label = binary.unit.label();
            shards::expected_total(&binary.tests, |test| {
                known.get(limits.stage, &binary.target, &label, test)
            })
        })
        .collect();
    let grand_total: f64 = expected.iter().sum();
    let mut weighted: Vec<(f64, Unit)> = Vec::new();
    for (index, binary) in binaries.iter().enumerate() {
        if !here[index] {
            continue;
        }
        let label = binary.unit.label();
        let duration_of = |test: &str| known.get(limits.stage, &binary.target, &label, test);
        let shard_count = shards::count_for(expected[index], grand_total, jobs);
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
            // A test that ended its process last time runs alone: with others, its end
            // would cost them a new process and a re-run for the checks it kept from running.
            let (alone, grouped): (Vec<String>, Vec<String>) =
                binary.tests.iter().cloned().partition(|test| {
                    known.ended_process(limits.stage, &binary.target, &label, test)
                });
            for test in alone {
                weighted.push((
                    duration_of(&test).unwrap_or(0.0),
                    Unit {
                        binary: index,
                        tests: vec![test],
                        seed: *seed,
                        mode: Mode::Run,
                    },
                ));
            }
            for shard in shards::split(&grouped, shard_count, duration_of) {
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

pub(super) fn record<R>(
    outcome: &mut Outcome<R>,
    stage: &str,
    binary: &Binary,
    result: &UnitResult<R>,
) {
    let tally = outcome.tallies.entry(binary.target.clone()).or_default();
    let label = binary.unit.label();
    let timed_out: Vec<&str> = result
        .found
        .iter()
        .filter(|found| matches!(found.cause, Cause::TimedOut { .. }))
        .map(|found| found.test.as_str())
        .collect();
    if let Some(culprit) = &result.culprit {
        outcome
            .durations
            .mark_ended(stage, &binary.target, &label, culprit);
    }
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

/// The unit holds all `listed` tests of its harness, and no filter narrowed that list.
fn holds_every_test(unit: &Unit, listed: usize, filters: &[String]) -> bool {
    filters.is_empty() && !unit.tests.is_empty() && unit.tests.len() == listed
}

/// Runs one unit's process and works out what it means. With `every_test` (see
/// [`holds_every_test`]) the process runs the harness without naming its tests: libtest
/// compares each of its tests with each name given, 19 s for a harness of 820 under Miri.
fn run_unit<T: Tool>(
    ctx: &Context,
    tool: &T,
    binaries: &[Binary],
    limits: &Limits<'_>,
    unit: Unit,
    every_test: bool,
    sequence: usize,
) -> Done<Unit, UnitResult<T::Report>> {
    let binary = &binaries[unit.binary];
    let fail = |unit: Unit, error: String| Done {
        result: UnitResult {
            unit,
            ran: Vec::new(),
            found: Vec::new(),
            error: Some(error),
            culprit: None,
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
    let names: &[String] = if every_test { &[] } else { &unit.tests };
    let cmd = tool.command(binary, names, unit.seed, &stem);
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
    let wall_times = clock.wall_times();
    let reading = tool.read(binary, &finished, &stem);
    let overdue = clock.overdue().map(|test| (test, clock.limit()));
    let mut done = attribute::interpret(
        tool,
        binary,
        unit,
        &finished,
        reading.reports,
        overdue.as_ref(),
    );
    // Durations are wall time, measured here the same way for every tool.
    for (name, _, seconds) in &mut done.result.ran {
        if let Some(wall) = wall_times.get(name.as_str()) {
            *seconds = Some(*wall);
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_unit_with_every_listed_test_and_no_filter_runs_unnamed() {
        assert!(holds_every_test(&Unit::running(&["a", "b"]), 2, &[]));
        // A shard, a resume after a death, or a list a filter narrowed names its tests.
        assert!(!holds_every_test(&Unit::running(&["a"]), 2, &[]));
        assert!(!holds_every_test(
            &Unit::running(&["a", "b"]),
            2,
            &["a".to_owned()]
        ));
        // A whole-run harness (doctests) has no names to leave out.
        assert!(!holds_every_test(&Unit::running(&[]), 0, &[]));
    }
}
