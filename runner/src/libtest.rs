//! libtest's machine-readable output: the `--list` inventory and the `--format json` events.

use serde::Deserialize;

use crate::process::Cmd;
use crate::report::Frame;

/// The harness arguments for the JSON events every stage reads. Without `--report-time`: the
/// kernel times each test by the wall clock between its events, and libtest's float
/// formatting of every `exec_time` costs seconds per thousand tests under Miri.
pub const JSON_EVENTS: [&str; 3] = ["-Zunstable-options", "--format", "json"];

/// Variables of the user's shell that change how libtest runs or what a panic costs, which
/// runner decides for every test process instead. A backtrace is captured only when a
/// finding needs one (the kernel re-runs that one failed test with `RUST_BACKTRACE=1`):
/// under `MemorySanitizer` or Miri, unwinding for a backtrace at every panic turns a
/// `should_panic` test of a tenth of a second into minutes. Every other variable of the
/// user's environment reaches the tests unchanged.
pub const CONTROLLED_ENVIRONMENT: [(&str, Option<&str>); 9] = [
    ("RUST_BACKTRACE", Some("0")),
    ("RUST_LIB_BACKTRACE", Some("0")),
    // The kernel passes `--test-threads`, runs tests in its own order and reads captured
    // output from the JSON events: the user's choices for these would break that.
    ("RUST_TEST_THREADS", None),
    ("RUST_TEST_NOCAPTURE", None),
    ("RUST_TEST_SHUFFLE", None),
    ("RUST_TEST_SHUFFLE_SEED", None),
    ("RUST_TEST_TIME_UNIT", None),
    ("RUST_TEST_TIME_INTEGRATION", None),
    ("RUST_TEST_TIME_DOCTEST", None),
];

/// A test command with the environment runner decides (see [`CONTROLLED_ENVIRONMENT`]).
pub fn test_environment(mut cmd: Cmd) -> Cmd {
    for (name, value) in CONTROLLED_ENVIRONMENT {
        cmd = match value {
            Some(value) => cmd.env(name, value),
            None => cmd.unset(name),
        };
    }
    cmd
}

/// What happened to one test in a run.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Passed,
    /// Failed with libtest's captured output (panic message and location).
    Failed {
        output: String,
    },
    Ignored,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TestResult {
    pub name: String,
    pub outcome: Outcome,
    /// Seconds, when the run used `--report-time`.
    pub exec_time: Option<f64>,
}

/// One run's events folded into results.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunEvents {
    pub results: Vec<TestResult>,
    /// Tests that started and never finished: the process died inside them.
    pub unfinished: Vec<String>,
    /// The suite reported its end (the harness itself was not killed).
    pub suite_finished: bool,
}

#[derive(Deserialize)]
struct RawEvent {
    #[serde(rename = "type")]
    kind: String,
    event: String,
    name: Option<String>,
    stdout: Option<String>,
    exec_time: Option<f64>,
}

/// One libtest event, as far as runner cares.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Started(String),
    Finished(TestResult),
    SuiteFinished,
}

/// Reads one line of `--format json` output. Lines that are not events (cargo's own
/// messages, a tool's diagnostics printed on the same stream) give `None`, and an event that
/// starts in the middle of a line is still found.
pub fn parse_event(line: &str) -> Option<Event> {
    let start = line.find("{ \"type\"").or_else(|| line.find("{\"type\""))?;
    let raw = serde_json::from_str::<RawEvent>(&line[start..]).ok()?;
    match (raw.kind.as_str(), raw.event.as_str(), raw.name) {
        ("test", "started", Some(name)) => Some(Event::Started(name)),
        ("test", result, Some(name)) => {
            let outcome = match result {
                "ok" => Outcome::Passed,
                "ignored" => Outcome::Ignored,
                "failed" => Outcome::Failed {
                    output: raw.stdout.unwrap_or_default(),
                },
                // "timeout" is libtest's warning that a test has run for over 60 s; the test
                // goes on and reports its own end later. The kernel's clock keeps the limit.
                _ => return None,
            };
            Some(Event::Finished(TestResult {
                name,
                outcome,
                exec_time: raw.exec_time,
            }))
        }
        ("suite", "ok" | "failed", _) => Some(Event::SuiteFinished),
        _ => None,
    }
}

/// Folds `--format json` output into results.
pub fn parse_events(stdout: &str) -> RunEvents {
    let mut events = RunEvents::default();
    for line in stdout.lines() {
        match parse_event(line) {
            Some(Event::Started(name)) => events.unfinished.push(name),
            Some(Event::Finished(result)) => {
                events.unfinished.retain(|started| *started != result.name);
                events.results.push(result);
            }
            Some(Event::SuiteFinished) => events.suite_finished = true,
            None => {}
        }
    }
    events
}

/// Test names from `-- --list` (`name: test` lines; benchmarks are left out).
pub fn parse_list(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter_map(|line| line.strip_suffix(": test"))
        .map(str::to_owned)
        .collect()
}

/// The panic location libtest captured for a failed test: `panicked at src/lib.rs:135:9:`.
pub fn panic_location(output: &str) -> Option<(String, u32, u32)> {
    let rest = output.split("panicked at ").nth(1)?;
    let place = rest.lines().next()?.trim_end_matches(':');
    let mut parts = place.rsplitn(3, ':');
    let column = parts.next()?.parse().ok()?;
    let line = parts.next()?.parse().ok()?;
    let file = parts.next()?.to_owned();
    Some((file, line, column))
}

/// The frames of a panic's backtrace in libtest's captured output (the test ran with
/// `RUST_BACKTRACE=1`): `   4: crate::tests::name` followed by `      at ./src/lib.rs:19:9`.
pub fn panic_backtrace(output: &str) -> Vec<Frame> {
    let mut frames: Vec<Frame> = Vec::new();
    for line in output.lines() {
        let trimmed = line.trim();
        if let Some(place) = trimmed.strip_prefix("at ") {
            let Some(frame) = frames.last_mut() else {
                continue;
            };
            let mut parts = place.rsplitn(3, ':');
            let column = parts.next().and_then(|c| c.parse().ok());
            let line_number = parts.next().and_then(|l| l.parse().ok());
            if let (Some(file), Some(_)) = (parts.next(), line_number) {
                frame.file = Some(file.to_owned());
                frame.line = line_number;
                frame.column = column;
            }
        } else if let Some((index, function)) = trimmed.split_once(": ") {
            if !index.is_empty() && index.chars().all(|c| c.is_ascii_digit()) {
                frames.push(Frame {
                    function: function.to_owned(),
                    file: None,
                    line: None,
                    column: None,
                });
            }
        }
    }
    // The panic machinery comes first; the test's own frames start after it.
    let start = frames
        .iter()
        .position(|f| {
            !f.function.starts_with("__rustc::")
                && !f.function.starts_with("core::panicking")
                && !f.function.starts_with("std::panicking")
        })
        .unwrap_or(0);
    frames.split_off(start)
}

/// The panic message that follows the location line.
pub fn panic_message(output: &str) -> Option<String> {
    let rest = output.split("panicked at ").nth(1)?;
    let message: Vec<&str> = rest
        .lines()
        .skip(1)
        .take_while(|line| !line.starts_with("note: ") && !line.starts_with("stack backtrace"))
        .collect();
    let message = message.join("\n").trim().to_owned();
    (!message.is_empty()).then_some(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    const RUN: &str = r#"{ "type": "suite", "event": "started", "test_count": 3 }
{ "type": "test", "event": "started", "name": "tests::a" }
{ "type": "test", "name": "tests::a", "event": "ok", "exec_time": 0.5 }
{ "type": "test", "event": "started", "name": "tests::b" }
{ "type": "test", "name": "tests::b", "event": "failed", "stdout": "\nthread 'tests::b' (1001) panicked at src/lib.rs:135:9:\nassertion `left == right` failed\n  left: 16777216\n right: 1\nnote: run with `RUST_BACKTRACE=1`\n" }
{ "type": "test", "event": "started", "name": "tests::c" }
"#;

    #[test]
    fn the_sixty_second_warning_is_not_a_result() {
        // libtest prints it for a test still running after 60 s, then the test's own end.
        let slow = r#"{ "type": "test", "event": "started", "name": "Slab<T>::key_of (line 9)" }
{ "type": "test", "event": "timeout", "name": "Slab<T>::key_of (line 9)" }
{ "type": "test", "name": "Slab<T>::key_of (line 9)", "event": "ok" }
"#;
        let events = parse_events(slow);
        assert_eq!(events.results.len(), 1);
        assert_eq!(events.results[0].outcome, Outcome::Passed);
        assert!(events.unfinished.is_empty());
    }

    #[test]
    fn folds_events_and_finds_the_test_that_died() {
        let events = parse_events(RUN);
        assert_eq!(events.results.len(), 2);
        assert_eq!(events.results[0].exec_time, Some(0.5));
        assert_eq!(events.unfinished, ["tests::c"]);
        assert!(!events.suite_finished);
    }

    #[test]
    fn event_after_a_prefix_on_the_same_line_is_found() {
        let events =
            parse_events("noise { \"type\": \"test\", \"event\": \"started\", \"name\": \"x\" }");
        assert_eq!(events.unfinished, ["x"]);
    }

    #[test]
    fn reads_panic_location_and_message() {
        let Outcome::Failed { output } = &parse_events(RUN).results[1].outcome else {
            panic!("tests::b should have failed")
        };
        assert_eq!(panic_location(output), Some(("src/lib.rs".into(), 135, 9)));
        assert_eq!(
            panic_message(output).unwrap(),
            "assertion `left == right` failed\n  left: 16777216\n right: 1"
        );
    }

    #[test]
    fn lists_tests_not_benchmarks() {
        let list = "tests::a: test\ntests::b: test\nbench_x: benchmark\n\n2 tests, 1 benchmark\n";
        assert_eq!(parse_list(list), ["tests::a", "tests::b"]);
    }

    #[test]
    fn reads_a_panic_backtrace_without_the_panic_machinery() {
        let output = "thread 't' panicked at src/lib.rs:19:9:\nboom\nstack backtrace:\n   0: __rustc::rust_begin_unwind\n             at /rustc/library/std/src/panicking.rs:689:5\n   1: core::panicking::panic_fmt\n             at /rustc/library/core/src/panicking.rs:80:14\n   2: endian_bugs::tests::length\n             at ./src/lib.rs:19:9\n   3: endian_bugs::tests::length::{closure#0}\n             at ./src/lib.rs:18:33\n";
        let frames = panic_backtrace(output);
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[0].function, "endian_bugs::tests::length");
        assert_eq!(frames[0].file.as_deref(), Some("./src/lib.rs"));
        assert_eq!((frames[0].line, frames[0].column), (Some(19), Some(9)));
    }
}
