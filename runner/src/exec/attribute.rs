//! What one finished process means for its tests: which ended on their own and how, which
//! one the process ended in (past its limit, or killed by what it did), which test each tool
//! report belongs to, and what must run next (the tests not reached, halves of the group for
//! a report without its test, an exit-time check that never ran).

use std::time::Duration;

use super::pool::Done;
use super::tool::{Attributed, Binary, Cause, Mode, Tool, Unit, When};
use crate::libtest::{self, Outcome as LibtestOutcome, RunEvents};
use crate::process::{Finished, Termination};
use crate::report::model::TestOutcome;

/// A test that ran to an end in a process, how it ended, and its time in seconds.
pub type Ran = (String, TestOutcome, Option<f64>);

pub struct UnitResult<R> {
    pub unit: Unit,
    /// The tests that ended in this process (nothing in `Attribute` mode).
    pub ran: Vec<Ran>,
    pub found: Vec<Attributed<R>>,
    pub error: Option<String>,
    /// The test the process ended in (`Run` mode): next time it gets a process of its own.
    pub culprit: Option<String>,
}

/// Works out one process: `overdue` is the test the kernel stopped it for, with the limit.
pub fn interpret<T: Tool>(
    tool: &T,
    binary: &Binary,
    unit: Unit,
    finished: &Finished,
    reports: Vec<T::Report>,
    overdue: Option<&(String, Duration)>,
) -> Done<Unit, UnitResult<T::Report>> {
    let events = libtest::parse_events(&finished.stdout);
    let mut reading = Process {
        tool,
        unit: &unit,
        found: Vec::new(),
    };
    let mut ran = reading.ended_on_their_own(&events);
    // The test the process ended in: past its limit, or ended by what it did (a signal, a
    // sanitizer's exit after its report, Miri's UB) while it was still running.
    let culprit = match (&finished.termination, overdue) {
        (Termination::Stopped, Some((test, _))) => Some(test.clone()),
        _ => events.unfinished.first().cloned(),
    };
    let (during, at_exit): (Vec<T::Report>, Vec<T::Report>) = reports
        .into_iter()
        .partition(|report| tool.when(report) == When::During);
    let mut unplaced = Vec::new();
    let stopped_at_limit = finished.termination == Termination::Stopped && overdue.is_some();
    match &culprit {
        Some(test) => {
            let limit = overdue
                .filter(|_| stopped_at_limit)
                .map(|(_, limit)| *limit);
            unplaced.extend(reading.ended_in(test, finished, limit, during));
            if unit.mode == Mode::Run {
                ran.push((test.clone(), TestOutcome::Failed, None));
            }
        }
        None => unplaced.extend(during),
    }
    let exit_checks_ran = culprit.is_none() && tool.exit_checks_ran(&finished.termination);
    if exit_checks_ran {
        unplaced.extend(at_exit);
    }
    let others: Vec<String> = ran
        .iter()
        .filter(|(name, outcome, _)| {
            *outcome != TestOutcome::Ignored && Some(name) != culprit.as_ref()
        })
        .map(|(name, _, _)| name.clone())
        .collect();
    // A report left over from a process stopped at a limit may be the overdue test's own
    // (an invalid read before the hang), so that test is a candidate too.
    let candidates: Vec<String> = match (&culprit, stopped_at_limit) {
        (Some(overdue), true) => others.iter().chain([overdue]).cloned().collect(),
        _ => others.clone(),
    };
    let needs_halving = reading.place(binary, unplaced, &candidates);

    let mut follow_up = Vec::new();
    if needs_halving {
        follow_up.extend(halves(&unit, &candidates));
    }
    if let (Some(culprit), false) = (&culprit, binary.runs_whole()) {
        follow_up.extend(not_reached(&unit, &ran, culprit));
    }
    if unit.mode == Mode::Run && !exit_checks_ran && !binary.runs_whole() {
        follow_up.extend(exit_check_of_passed(&unit, &ran));
    }
    let error = stage_error(binary, &unit, &events, &ran, culprit.as_ref(), finished);
    if unit.mode == Mode::Attribute {
        ran.clear();
    }
    let found = reading.found;
    Done {
        result: UnitResult {
            culprit: culprit.filter(|_| unit.mode == Mode::Run),
            unit,
            ran,
            found,
            error,
        },
        follow_up,
        stop: false,
    }
}

/// Why the process is an error of the stage, if it is: it could not run at all, it did not
/// run tests it was asked for, or a whole-run harness ended inside a test.
fn stage_error(
    binary: &Binary,
    unit: &Unit,
    events: &RunEvents,
    ran: &[Ran],
    culprit: Option<&String>,
    finished: &Finished,
) -> Option<String> {
    if unit.mode == Mode::Run
        && events.results.is_empty()
        && culprit.is_none()
        && !finished.termination.success()
    {
        Some(format!(
            "{} on {} could not run ({}): {}",
            binary.unit.label(),
            binary.target,
            finished.termination,
            crate::cargo_output::first_error(finished)
        ))
    } else if let Some(missing) = missing_tests(binary, unit, ran, culprit.map(String::as_str)) {
        // A harness that does not have the tests it was asked for (a stale list, one of
        // another harness) runs none of them and exits 0: that is no evidence, never a PASS.
        let why = if finished.termination.success() {
            "the harness does not have them"
        } else {
            "the process ended between tests"
        };
        Some(format!(
            "{} on {} did not run {missing} of the tests it was asked for ({}): {why}",
            binary.unit.label(),
            binary.target,
            finished.termination
        ))
    } else if let (Some(culprit), true) = (culprit, binary.runs_whole()) {
        // A whole-run harness cannot resume: what it had not finished is not evaluated.
        Some(format!(
            "{} on {} ended in `{culprit}` ({}); the tests it had not finished did not run",
            binary.unit.label(),
            binary.target,
            finished.termination
        ))
    } else {
        None
    }
}

/// One process being read: the findings so far.
struct Process<'a, T: Tool> {
    tool: &'a T,
    unit: &'a Unit,
    found: Vec<Attributed<T::Report>>,
}

impl<T: Tool> Process<'_, T> {
    fn add(&mut self, test: &str, cause: Cause<T::Report>) {
        self.found.push(Attributed {
            binary: self.unit.binary,
            test: test.to_owned(),
            seed: self.unit.seed,
            cause,
        });
    }

    /// The tests libtest saw to their end; a failure carries the tool's reports inside its
    /// output (a doctest runs the tool in a child), or is a failure on its own terms.
    fn ended_on_their_own(&mut self, events: &RunEvents) -> Vec<Ran> {
        let mut ran = Vec::new();
        for result in &events.results {
            let outcome = match &result.outcome {
                LibtestOutcome::Passed => TestOutcome::Passed,
                LibtestOutcome::Ignored => TestOutcome::Ignored,
                LibtestOutcome::Failed { output } => {
                    if matches!(self.unit.mode, Mode::Run | Mode::Backtrace) {
                        let inner = self.tool.reports_in_failure(output);
                        if inner.is_empty() {
                            let output = output.clone();
                            self.add(&result.name, Cause::Failed { output });
                        }
                        for report in inner {
                            self.add(&result.name, Cause::Report(report));
                        }
                    }
                    TestOutcome::Failed
                }
            };
            ran.push((result.name.clone(), outcome, result.exec_time));
        }
        ran
    }

    /// The process ended inside `culprit`: past its limit (a timeout, whose reports still
    /// need their tests), or by what the culprit did (its reports, or a death without one).
    /// Returns the reports still to place. In `Attribute` mode the culprit's causes were
    /// recorded by the run that sent it here.
    fn ended_in(
        &mut self,
        culprit: &str,
        finished: &Finished,
        limit: Option<Duration>,
        during: Vec<T::Report>,
    ) -> Vec<T::Report> {
        let recording = self.unit.mode == Mode::Run;
        if let Some(limit) = limit {
            if recording {
                let tail = tail(finished, 20);
                self.add(culprit, Cause::TimedOut { limit, tail });
            }
            // The kill's own echo says nothing the timeout does not; what the tool saw before
            // it may be the overdue test's or an earlier one's, so it is placed among all.
            return during
                .into_iter()
                .filter(|report| !self.tool.describes_the_end(report))
                .collect();
        }
        if during.is_empty() {
            if recording {
                let termination = finished.termination.to_string();
                let detail = last_line(&finished.stderr);
                self.add(
                    culprit,
                    Cause::Died {
                        termination,
                        detail,
                    },
                );
            }
            return Vec::new();
        }
        if recording {
            // What ended the process is the culprit's; a report whose stack names another
            // test of the group (a race seen earlier) goes to that test.
            for report in during {
                let test = by_frames(self.tool, &report, &self.unit.tests)
                    .unwrap_or(culprit)
                    .to_owned();
                self.add(&test, Cause::Report(report));
            }
        }
        Vec::new()
    }

    /// Gives each report its test: the only one that ran, or the one its stack names. Returns
    /// whether some report needs the group re-run in halves to find its test.
    fn place(&mut self, binary: &Binary, reports: Vec<T::Report>, ran: &[String]) -> bool {
        let mut needs_halving = false;
        for report in reports {
            let single = match (self.unit.tests.as_slice(), ran) {
                ([only], _) | (_, [only]) => Some(only.clone()),
                _ => None,
            };
            let named = single.or_else(|| by_frames(self.tool, &report, ran).map(str::to_owned));
            match named {
                Some(test) => self.add(&test, Cause::Report(report)),
                None if !binary.runs_whole() && ran.len() > 1 => needs_halving = true,
                // A harness that cannot be narrowed keeps the report on its first test.
                None => {
                    let test = ran
                        .first()
                        .map_or("(whole harness)", String::as_str)
                        .to_owned();
                    self.add(&test, Cause::Report(report));
                }
            }
        }
        needs_halving
    }
}

/// The group's tests in two halves, re-run only to attribute.
fn halves(unit: &Unit, tests: &[String]) -> Vec<Unit> {
    let middle = tests.len() / 2;
    [&tests[..middle], &tests[middle..]]
        .into_iter()
        .map(|half| Unit {
            binary: unit.binary,
            tests: half.to_vec(),
            seed: unit.seed,
            mode: Mode::Attribute,
        })
        .collect()
}

/// How many of the tests a process of `Run` mode was asked for it never ran, when it ended
/// on its own (no culprit) having run fewer than asked: named ones it did not report, or,
/// for a process that names none, every test when it reported none.
fn missing_tests(
    binary: &Binary,
    unit: &Unit,
    ran: &[Ran],
    culprit: Option<&str>,
) -> Option<usize> {
    if unit.mode != Mode::Run || culprit.is_some() {
        return None;
    }
    let missing = if unit.tests.is_empty() {
        if ran.is_empty() && !binary.tests.is_empty() && !binary.runs_whole() {
            binary.tests.len()
        } else {
            0
        }
    } else {
        unit.tests
            .iter()
            .filter(|test| !ran.iter().any(|(name, _, _)| name == *test))
            .count()
    };
    (missing > 0).then_some(missing)
}

/// The tests the process never reached, in a fresh one.
fn not_reached(unit: &Unit, ran: &[Ran], culprit: &str) -> Option<Unit> {
    let rest: Vec<String> = unit
        .tests
        .iter()
        .filter(|test| *test != culprit && !ran.iter().any(|(name, _, _)| name == *test))
        .cloned()
        .collect();
    (!rest.is_empty()).then_some(Unit {
        binary: unit.binary,
        tests: rest,
        seed: unit.seed,
        mode: unit.mode,
    })
}

/// Exit-time checks that never ran (a death, or Miri after a failed test) still owe the
/// tests that passed their check.
fn exit_check_of_passed(unit: &Unit, ran: &[Ran]) -> Option<Unit> {
    let passed: Vec<String> = ran
        .iter()
        .filter(|(_, outcome, _)| *outcome == TestOutcome::Passed)
        .map(|(name, _, _)| name.clone())
        .collect();
    (!passed.is_empty()).then_some(Unit {
        binary: unit.binary,
        tests: passed,
        seed: unit.seed,
        mode: Mode::Attribute,
    })
}

/// The only test among `tests` whose name the report's stack shows (`crate::tests::name`, or
/// a closure inside it).
fn by_frames<'t, T: Tool>(tool: &T, report: &T::Report, tests: &'t [String]) -> Option<&'t str> {
    let frames = tool.frames(report);
    let mut matching = tests.iter().filter(|test| {
        frames.iter().any(|frame| {
            let function = frame.function.as_str();
            function == test.as_str()
                || function.ends_with(&format!("::{test}"))
                || function.contains(&format!("::{test}::"))
                || function.starts_with(&format!("{test}::"))
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

/// The last `lines` lines a process printed, stdout then stderr, without libtest's events.
fn tail(finished: &Finished, lines: usize) -> String {
    let all: Vec<&str> = finished
        .stdout
        .lines()
        .filter(|line| !line.trim_start().starts_with("{ \"type\": "))
        .chain(finished.stderr.lines())
        .collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::tool::Reading;
    use crate::process::Cmd;
    use crate::report::Frame;

    /// A tool whose reports are a name, a timing and a stack naming a function.
    struct Fake;

    #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Report {
        at_exit: bool,
        /// Only the record of the signal the process ended by.
        end: bool,
        frames: Vec<Frame>,
    }

    impl Tool for Fake {
        type Report = Report;
        fn command(&self, _: &Binary, _: &[String], _: Option<u32>, _: &camino::Utf8Path) -> Cmd {
            Cmd::new("true")
        }
        fn read(&self, _: &Binary, _: &Finished, _: &camino::Utf8Path) -> Reading<Report> {
            Reading::reports(Vec::new())
        }
        fn when(&self, report: &Report) -> When {
            if report.at_exit {
                When::AtExit
            } else {
                When::During
            }
        }
        fn describes_the_end(&self, report: &Report) -> bool {
            report.end
        }
        fn frames<'r>(&self, report: &'r Report) -> &'r [Frame] {
            &report.frames
        }
    }

    fn binary() -> Binary {
        Binary::fake("t", &[])
    }

    fn events(lines: &[(&str, &str)]) -> String {
        use std::fmt::Write as _;
        lines.iter().fold(String::new(), |mut text, (name, event)| {
            let _ = writeln!(
                text,
                "{{ \"type\": \"test\", \"event\": \"{event}\", \"name\": \"{name}\" }}"
            );
            text
        })
    }

    fn finished(termination: Termination, stdout: String) -> Finished {
        Finished {
            termination,
            stdout,
            stderr: "last words\n".into(),
        }
    }

    fn leak(function: &str) -> Report {
        Report {
            at_exit: true,
            end: false,
            frames: vec![Frame {
                function: function.into(),
                file: None,
                line: None,
                column: None,
            }],
        }
    }

    #[test]
    fn a_harness_that_runs_none_of_the_tests_it_was_asked_for_is_an_error() {
        // A cached list of another harness: the names do not exist, libtest runs nothing
        // and exits 0.
        let done = interpret(
            &Fake,
            &binary(),
            Unit::running(&["it_ok", "it_other"]),
            &finished(Termination::Exited(0), String::new()),
            Vec::new(),
            None,
        );
        let error = done.result.error.expect("an error of the stage");
        assert!(error.contains("did not run 2 of the tests"), "{error}");
        // One of two missing is an error too; all there is none.
        let stdout = events(&[("a", "started"), ("a", "ok")]);
        let done = interpret(
            &Fake,
            &binary(),
            Unit::running(&["a", "b"]),
            &finished(Termination::Exited(0), stdout.clone()),
            Vec::new(),
            None,
        );
        assert!(done
            .result
            .error
            .is_some_and(|e| e.contains("1 of the tests")));
        let done = interpret(
            &Fake,
            &binary(),
            Unit::running(&["a"]),
            &finished(Termination::Exited(0), stdout),
            Vec::new(),
            None,
        );
        assert_eq!(done.result.error, None);
    }

    #[test]
    fn a_death_names_its_test_and_the_rest_run_in_a_new_process() {
        let stdout = events(&[("a", "started"), ("a", "ok"), ("b", "started")]);
        let done = interpret(
            &Fake,
            &binary(),
            Unit::running(&["a", "b", "c"]),
            &finished(Termination::Signalled("SIGSEGV".into()), stdout),
            Vec::new(),
            None,
        );
        assert!(matches!(
            &done.result.found[..],
            [Attributed { test, cause: Cause::Died { detail, .. }, .. }] if test == "b" && detail == "last words"
        ));
        let next: Vec<(&[String], Mode)> = done
            .follow_up
            .iter()
            .map(|u| (u.tests.as_slice(), u.mode))
            .collect();
        // "c" was not reached; "a" passed but the exit-time checks never ran.
        assert_eq!(next.len(), 2);
        assert_eq!(next[0], (&["c".to_owned()][..], Mode::Run));
        assert_eq!(next[1], (&["a".to_owned()][..], Mode::Attribute));
    }

    #[test]
    fn a_timeout_is_its_own_finding() {
        let stdout = events(&[("a", "started")]);
        let overdue = ("a".to_owned(), Duration::from_secs(20));
        let done = interpret(
            &Fake,
            &binary(),
            Unit::running(&["a", "b"]),
            &finished(Termination::Stopped, stdout),
            Vec::new(),
            Some(&overdue),
        );
        assert!(matches!(
            &done.result.found[..],
            [Attributed { test, cause: Cause::TimedOut { limit, .. }, .. }] if test == "a" && limit.as_secs() == 20
        ));
        assert_eq!(done.follow_up[0].tests, ["b"]);
    }

    #[test]
    fn the_echo_of_the_kill_at_a_limit_is_nobody_s_finding() {
        let stdout = events(&[("a", "started"), ("a", "ok"), ("b", "started")]);
        let overdue = ("b".to_owned(), Duration::from_secs(20));
        let echo = Report {
            at_exit: false,
            end: true,
            frames: Vec::new(),
        };
        let done = interpret(
            &Fake,
            &binary(),
            Unit::running(&["a", "b"]),
            &finished(Termination::Stopped, stdout),
            vec![echo],
            Some(&overdue),
        );
        // Only the timeout: "a" ended on its own before the kill and is not blamed for it.
        assert!(matches!(
            &done.result.found[..],
            [Attributed { test, cause: Cause::TimedOut { .. }, .. }] if test == "b"
        ));
        assert!(done
            .result
            .ran
            .iter()
            .any(|(name, outcome, _)| name == "a" && *outcome == TestOutcome::Passed));
    }

    #[test]
    fn a_report_before_a_timeout_may_be_the_overdue_test_s() {
        let stdout = events(&[("a", "started"), ("a", "ok"), ("b", "started")]);
        let overdue = ("b".to_owned(), Duration::from_secs(20));
        let read = Report {
            at_exit: false,
            end: false,
            frames: Vec::new(),
        };
        let done = interpret(
            &Fake,
            &binary(),
            Unit::running(&["a", "b"]),
            &finished(Termination::Stopped, stdout),
            vec![read],
            Some(&overdue),
        );
        let halves: Vec<&[String]> = done
            .follow_up
            .iter()
            .filter(|u| u.mode == Mode::Attribute)
            .map(|u| u.tests.as_slice())
            .collect();
        // The two halves, then the exit-time check that the kill kept from "a".
        assert_eq!(halves[..2], [["a".to_owned()], ["b".to_owned()]]);
    }

    #[test]
    fn an_exit_report_goes_by_its_stack_else_the_group_is_halved() {
        let stdout = events(&[
            ("tests::a", "started"),
            ("tests::a", "ok"),
            ("tests::b", "started"),
            ("tests::b", "ok"),
        ]);
        let named = interpret(
            &Fake,
            &binary(),
            Unit::running(&["tests::a", "tests::b"]),
            &finished(Termination::Exited(0), stdout.clone()),
            vec![leak("p::tests::b::{closure#0}")],
            None,
        );
        assert_eq!(named.result.found[0].test, "tests::b");
        assert!(named.follow_up.is_empty());
        let anonymous = interpret(
            &Fake,
            &binary(),
            Unit::running(&["tests::a", "tests::b"]),
            &finished(Termination::Exited(0), stdout),
            vec![leak("alloc::alloc")],
            None,
        );
        assert!(anonymous.result.found.is_empty());
        let halves: Vec<&[String]> = anonymous
            .follow_up
            .iter()
            .map(|u| u.tests.as_slice())
            .collect();
        assert_eq!(halves, [["tests::a".to_owned()], ["tests::b".to_owned()]]);
        assert!(anonymous
            .follow_up
            .iter()
            .all(|u| u.mode == Mode::Attribute));
    }
}
