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
use super::cached;
use super::clock::{stretched_limits, TestClock};
use super::durations::{Durations, FinishedRuns};
use super::outcome::{record, Limits, Outcome};
use super::partition;
use super::pool::{self, Done};
use super::shards;
use super::test_id::TestId;
use super::tool::{Attributed, Binary, Cause, Mode, Tool, Unit};
use crate::plan::Context;
use crate::process::{RunOptions, Termination};
use crate::report::model::TestOutcome;

/// Runs every test of `binaries` with `tool` on `ctx.jobs` workers, split and balanced by
/// the recorded durations, and adds what it measured to them.
pub fn run<T: Tool>(
    ctx: &Context,
    tool: &T,
    binaries: &[Binary],
    limits: &Limits<'_>,
) -> Outcome<T::Report> {
    // Every slice splits by the same file, never by a slice's copy of it.
    let recorded = Durations::load(&ctx.durations_file);
    let known = &recorded;
    // How many tests each harness has in all, before the split and the cache narrow it.
    let listed: Vec<usize> = binaries.iter().map(|binary| binary.tests.len()).collect();
    let slice = partition::slice(ctx.partition, binaries, known, limits.stage);
    let (lookup, answered) = cached::lookup(ctx, tool, &slice.binaries, &slice.here, limits);
    let binaries = lookup.binaries.as_slice();
    // What this run and earlier ones measured under the other tools: a test known to be slow
    // there is planned, and limited, as slow here.
    // Under `--partition` the slice's copy also holds what its earlier stages measured.
    let measured_before = if ctx.partition.is_some() {
        Durations::load(&ctx.durations_written())
    } else {
        recorded.clone()
    };
    let finished_before = measured_before.finished_runs();
    let expected = Expected {
        known,
        elsewhere: &finished_before,
        limits,
    };
    let mut units = plan_units(ctx.jobs, binaries, &slice.here, &expected, tool.min_chunk());
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
    let bounds = Bounds {
        limits,
        longer: binaries
            .iter()
            .map(|binary| {
                stretched_limits(
                    limits.test_timeout,
                    limits.stretch.then_some(limits.slowdown).flatten(),
                    &finished_before,
                    limits.stage,
                    binary,
                )
            })
            .collect(),
    };
    let execute = |unit: Unit, sequence: usize| {
        let every_test = holds_every_test(&unit, listed[unit.binary], &ctx.filters);
        run_unit(ctx, tool, binaries, &bounds, unit, every_test, sequence)
    };
    let mut merge = |result: UnitResult<T::Report>, left: usize| {
        let binary = &binaries[result.unit.binary];
        if result.unit.mode == Mode::Backtrace {
            with_backtraces(&mut outcome.found, result.found);
            return;
        }
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
    // Saved at once, so the next tool of the stage (another sanitizer) already knows them.
    Durations::save_merged(&ctx.durations_written(), &outcome.durations);
    // What this run and earlier ones measured, under `--partition` the slice's copy.
    let measured = Durations::load(&ctx.durations_written());
    too_slow_here(&mut outcome, binaries, limits.stage, &measured);
    // Completion order depends on scheduling; reports list tests in a stable order.
    outcome.tests.sort_by(|a, b| {
        (&a.target, &a.unit, &a.name, a.seed).cmp(&(&b.target, &b.unit, &b.name, b.seed))
    });
    if crate::process::interrupted() && outcome.errors.is_empty() {
        outcome.errors.push("interrupted".to_owned());
    }
    // Every worker stopped by the same cause says so once.
    let mut seen = BTreeSet::new();
    outcome.errors.retain(|error| seen.insert(error.clone()));
    if !crate::process::interrupted() {
        cached::store::<T>(ctx, &lookup, &outcome, &unfinished, limits);
    }
    outcome
}

/// Gives each failure a backtrace re-run found the output with the stack; a re-run that
/// did not fail the same way leaves the first output.
fn with_backtraces<R>(found: &mut [Attributed<R>], rerun: Vec<Attributed<R>>) {
    for again in rerun {
        let Cause::Failed { output } = again.cause else {
            continue;
        };
        let first = found.iter_mut().find(|first| {
            first.binary == again.binary
                && first.test == again.test
                && first.seed == again.seed
                && matches!(first.cause, Cause::Failed { .. })
        });
        if let Some(first) = first {
            first.cause = Cause::Failed { output };
        }
    }
}

/// A `Backtrace` unit for each failure of `result` whose stack is worth a re-run.
fn backtrace_reruns<R>(
    result: &UnitResult<R>,
    workspace: &crate::workspace::Workspace,
) -> Vec<Unit> {
    result
        .found
        .iter()
        .filter(|found| {
            matches!(&found.cause, Cause::Failed { output } if needs_backtrace(output, workspace))
        })
        .map(|found| Unit {
            binary: result.unit.binary,
            tests: vec![found.test.clone()],
            seed: found.seed,
            mode: Mode::Backtrace,
        })
        .collect()
}

/// A failure whose panic happened outside the workspace (in a dependency or std) and came
/// without a stack: only a backtrace names the user's frame that led there.
fn needs_backtrace(output: &str, workspace: &crate::workspace::Workspace) -> bool {
    if output.contains("stack backtrace:") {
        return false;
    }
    match crate::libtest::panic_location(output) {
        Some((file, _, _)) => workspace.relative(camino::Utf8Path::new(&file)).is_none(),
        None => output.contains("panicked at"),
    }
}

/// A test past its limit that finished on its own elsewhere (natively, under a faster
/// tool) is slow under this tool, not stuck: no `timeout` finding, which would claim the
/// code hangs, but an error of the stage (the test was not evaluated here), naming where it
/// finished and the setting that gives it more time.
fn too_slow_here<R>(
    outcome: &mut Outcome<R>,
    binaries: &[Binary],
    stage: &str,
    measured: &Durations,
) {
    let finished = measured.finished_runs();
    let mut errors = Vec::new();
    let mut not_evaluated = Vec::new();
    outcome.found.retain(|found| {
        let Cause::TimedOut { limit, .. } = &found.cause else {
            return true;
        };
        let test = TestId::of(&binaries[found.binary], &found.test);
        let Some((where_stage, target, seconds)) = finished.quickest_elsewhere(&test, stage)
        else {
            return true;
        };
        errors.push(format!(
            "`{}` ({}) did not finish within its limit of {} on {}, though it finished in {:.1} s under {where_stage} on {target}: too slow under this tool, not a hang; give it more time with config `{stage}.test-timeout`",
            test.name,
            test.harness,
            crate::duration::human(*limit),
            test.target,
            seconds
        ));
        not_evaluated.push((test, found.seed.map(u64::from)));
        false
    });
    // Not evaluated here: neither a result nor a timeout in the counts.
    for (test, seed) in not_evaluated {
        outcome
            .tests
            .retain(|run| !(test.is_run(run) && run.seed == seed));
        if let Some(tally) = outcome.tallies.get_mut(&test.target) {
            tally.tests_run = tally.tests_run.saturating_sub(1);
            tally.timed_out = tally.timed_out.saturating_sub(1);
        }
    }
    outcome.errors.extend(errors);
}

/// Tests libtest passed but the tool reported on count as failed.
fn fail_reported_tests<R>(outcome: &mut Outcome<R>, binaries: &[Binary]) {
    for run in &mut outcome.tests {
        if run.outcome != TestOutcome::Passed {
            continue;
        }
        let reported = outcome.found.iter().any(|found| {
            matches!(found.cause, Cause::Report(_))
                && TestId::of(&binaries[found.binary], &found.test).is_run(run)
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

/// A test expected to take longer than this runs in a process of its own: under Miri a long
/// process slows down as it goes (two tests of about 74 s each alone took 99 s and 119 s one
/// after the other in one process), while a process start costs a few seconds at most.
const ALONE_AFTER_SECONDS: f64 = 20.0;

/// What a test is expected to take under this tool: its own recorded duration, else its
/// quickest run under another tool or target times the most this tool slows a test down
/// (an upper bound: a test long elsewhere surely runs alone and first on its first run here).
struct Expected<'a> {
    known: &'a Durations,
    elsewhere: &'a FinishedRuns<'a>,
    limits: &'a Limits<'a>,
}

impl Expected<'_> {
    fn seconds(&self, test: &TestId) -> Option<f64> {
        let stage = self.limits.stage;
        self.known.get(stage, test).or_else(|| {
            let slowdown = self.limits.slowdown?;
            let (_, _, seconds) = self.elsewhere.quickest_elsewhere(test, stage)?;
            Some(seconds * slowdown)
        })
    }
}

/// The units of this job's work, longest expected first so the last processes to start are
/// short ones. A test that ended its process last time, or is expected to be long, runs
/// alone; a binary with expected durations is cut into shards of equal expected time; the
/// binaries without any (a first run) are cut by guided self-scheduling into chunks that
/// shrink as the work left shrinks, never under the tool's `min_chunk` tests. Binaries with
/// nothing in this job's slice are left out.
fn plan_units(
    jobs: usize,
    binaries: &[Binary],
    here: &[bool],
    expected_of: &Expected<'_>,
    min_chunk: usize,
) -> Vec<Unit> {
    let (known, limits) = (expected_of.known, expected_of.limits);
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
                expected_of.seconds(&TestId::new(&binary.target, &label, test))
            })
        })
        .collect();
    let grand_total: f64 = expected.iter().sum();
    let measured_mean = known.mean(limits.stage).unwrap_or(1.0);
    let unit = |binary: usize, tests: Vec<String>, seed: Option<u32>| Unit {
        binary,
        tests,
        seed,
        mode: Mode::Run,
    };
    let mut weighted: Vec<(f64, Unit)> = Vec::new();
    let mut first_run: Vec<(usize, Vec<String>)> = Vec::new();
    for (index, binary) in binaries.iter().enumerate() {
        if !here[index] {
            continue;
        }
        if binary.runs_whole() {
            for seed in limits.seeds {
                weighted.push((f64::MAX, unit(index, Vec::new(), *seed)));
            }
            continue;
        }
        let label = binary.unit.label();
        let id = |test: &str| TestId::new(&binary.target, &label, test);
        let duration_of = |test: &str| expected_of.seconds(&id(test));
        // A test that ended its process last time runs alone: with others, its end would
        // cost them a new process and a re-run for the checks it kept from running.
        let (alone, grouped): (Vec<String>, Vec<String>) =
            binary.tests.iter().cloned().partition(|test| {
                known.ended_process(limits.stage, &id(test))
                    || duration_of(test).is_some_and(|seconds| seconds > ALONE_AFTER_SECONDS)
            });
        for test in alone {
            let weight = duration_of(&test).unwrap_or(measured_mean);
            for seed in limits.seeds {
                weighted.push((weight, unit(index, vec![test.clone()], *seed)));
            }
        }
        if grouped.iter().all(|test| duration_of(test).is_none()) {
            if !grouped.is_empty() {
                first_run.push((index, grouped));
            }
            continue;
        }
        let shard_count = shards::count_for(expected[index], grand_total, jobs);
        for shard in shards::split(&grouped, shard_count, duration_of) {
            for seed in limits.seeds {
                weighted.push((shard.weight, unit(index, shard.tests.clone(), *seed)));
            }
        }
    }
    #[allow(clippy::cast_precision_loss, reason = "a count of tests")]
    for (binary, chunk) in shards::guided(&first_run, jobs, min_chunk) {
        let weight = chunk.len() as f64 * measured_mean;
        for seed in limits.seeds {
            weighted.push((weight, unit(binary, chunk.clone(), *seed)));
        }
    }
    // Stable: chunks of equal weight keep the order they were cut in.
    weighted.sort_by(|a, b| b.0.total_cmp(&a.0));
    weighted.into_iter().map(|(_, unit)| unit).collect()
}

/// The unit holds all `listed` tests of its harness, and no filter narrowed that list.
fn holds_every_test(unit: &Unit, listed: usize, filters: &[String]) -> bool {
    filters.is_empty() && !unit.tests.is_empty() && unit.tests.len() == listed
}

/// The limits a process runs under: the stage's, and per binary the tests with a longer
/// limit of their own.
struct Bounds<'a> {
    limits: &'a Limits<'a>,
    longer: Vec<BTreeMap<String, Duration>>,
}

/// Runs one unit's process and works out what it means. With `every_test` (see
/// [`holds_every_test`]) the process runs the harness without naming its tests: libtest
/// compares each of its tests with each name given, 19 s for a harness of 820 under Miri.
fn run_unit<T: Tool>(
    ctx: &Context,
    tool: &T,
    binaries: &[Binary],
    bounds: &Bounds<'_>,
    unit: Unit,
    every_test: bool,
    sequence: usize,
) -> Done<Unit, UnitResult<T::Report>> {
    let binary = &binaries[unit.binary];
    let limits = bounds.limits;
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
    let cmd =
        ctx.cargo_test_environment(tool.command(binary, names, unit.seed, &stem), &binary.unit);
    let mut cmd = crate::libtest::test_environment(cmd);
    if unit.mode == Mode::Backtrace {
        cmd = cmd.env("RUST_BACKTRACE", "1");
    }
    ctx.progress.verbose(&cmd.to_string());
    let clock = TestClock::new(limits.test_timeout, &bounds.longer[unit.binary]);
    let observe = |line: &str| clock.observe(line);
    let on_slow = |test: &str, running: Duration| {
        ctx.progress.note(&format!(
            "slow: {} {test} on {} has run {} (limit {})",
            binary.unit.label(),
            binary.target,
            crate::duration::human(running),
            crate::duration::human(clock.limit_of(test))
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
    let overdue = clock.overdue();
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
    conclude(done, binary, reading.fatal, reading.broken, &ctx.workspace)
}

/// What a unit's process means beyond its tests: a failure to re-run for its stack, only the
/// output of a `Backtrace` re-run, or the tool's own failure (for every process after, or
/// for this one only).
fn conclude<R>(
    mut done: Done<Unit, UnitResult<R>>,
    binary: &Binary,
    fatal: Option<String>,
    broken: Option<String>,
    workspace: &crate::workspace::Workspace,
) -> Done<Unit, UnitResult<R>> {
    match done.result.unit.mode {
        Mode::Run if !binary.runs_whole() => {
            let reruns = backtrace_reruns(&done.result, workspace);
            done.follow_up.extend(reruns);
        }
        Mode::Backtrace => {
            // Only the failure's output is wanted from this process.
            done.follow_up.clear();
            done.result.ran.clear();
            done.result.culprit = None;
            done.result.error = None;
            return done;
        }
        _ => {}
    }
    if let Some(fatal) = fatal {
        done.result.error = Some(fatal);
        done.follow_up.clear();
        done.stop = true;
    } else if let Some(broken) = broken {
        // The tool's end of the process is not the test's: no death, no result for it.
        if let Some(culprit) = done.result.culprit.take() {
            done.result.ran.retain(|(name, _, _)| *name != culprit);
            done.result.found.retain(|found| {
                found.test != culprit || !matches!(found.cause, Cause::Died { .. })
            });
        }
        done.result.error = Some(broken);
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
    fn only_a_panic_outside_the_workspace_without_a_stack_asks_for_a_backtrace() {
        let workspace = crate::workspace::Workspace {
            root: "/w".into(),
            manifest_path: "/w/Cargo.toml".into(),
            target_dir: "/w/target".into(),
            members: Vec::new(),
            config: crate::config::Config::default(),
        };
        let in_dependency = "thread 't' panicked at /home/u/.cargo/registry/src/x/dep-1.0.0/src/lib.rs:9:5:\nboom\n";
        assert!(needs_backtrace(in_dependency, &workspace));
        let in_workspace = "thread 't' panicked at src/lib.rs:9:5:\nboom\n";
        assert!(!needs_backtrace(in_workspace, &workspace));
        let with_stack = format!("{in_dependency}stack backtrace:\n   0: t\n");
        assert!(!needs_backtrace(&with_stack, &workspace));
        assert!(!needs_backtrace(
            "assertion failed without a panic line",
            &workspace
        ));
    }

    #[test]
    fn a_backtrace_rerun_replaces_only_the_same_failure() {
        let failed = |test: &str, output: &str| Attributed::<()> {
            binary: 0,
            test: test.to_owned(),
            seed: None,
            cause: Cause::Failed {
                output: output.to_owned(),
            },
        };
        let mut found = vec![failed("a", "first"), failed("b", "first")];
        with_backtraces(&mut found, vec![failed("a", "with a stack")]);
        assert_eq!(found[0], failed("a", "with a stack"));
        assert_eq!(found[1], failed("b", "first"));
    }

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

    #[test]
    fn a_first_run_under_a_tool_places_tests_slow_under_another_alone_and_first() {
        let tests: Vec<String> = (0..12).map(|i| format!("t{i:02}")).collect();
        let names: Vec<&str> = tests.iter().map(String::as_str).collect();
        let binary = Binary::fake("memory", &names);
        let mut measured = Durations::default();
        for test in &tests {
            measured.insert("sanitizers", &TestId::new("address", "p lib", test), 0.01);
        }
        // Slow natively: far past the alone threshold once slowed down here.
        measured.insert("sanitizers", &TestId::new("address", "p lib", "t07"), 2.0);
        let elsewhere = measured.finished_runs();
        let known = Durations::default();
        let mut limits = Limits {
            stage: "sanitizers",
            test_timeout: Duration::from_mins(15),
            slowdown: Some(100.0),
            stretch: true,
            deadline: Instant::now(),
            logs: Utf8Path::new("/l"),
            seeds: &[None],
        };
        let expected = Expected {
            known: &known,
            elsewhere: &elsewhere,
            limits: &limits,
        };
        let units = plan_units(2, std::slice::from_ref(&binary), &[true], &expected, 1);
        assert_eq!(units[0].tests, ["t07"]);
        assert!(units[1..]
            .iter()
            .all(|unit| !unit.tests.contains(&"t07".to_owned())));
        // A tool that expects nothing from others (Miri) plans its first run by count.
        limits.slowdown = None;
        let expected = Expected {
            known: &known,
            elsewhere: &elsewhere,
            limits: &limits,
        };
        let units = plan_units(2, std::slice::from_ref(&binary), &[true], &expected, 1);
        assert!(units.iter().all(|unit| unit.tests != ["t07"]));
    }
}
