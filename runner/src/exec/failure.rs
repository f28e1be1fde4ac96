//! The one reading of how a test ended badly without a tool report, shared by every stage:
//! a failure on its own terms (libtest's panic message and stack), a death, a time limit.

use std::time::Duration;

use camino::Utf8Path;

use crate::libtest;
use crate::report::{Category, Frame};

/// A finding's substance before it gets its place in the report.
#[derive(Debug, Clone, PartialEq)]
pub struct Described {
    pub category: Category,
    pub kind: String,
    pub message: String,
    pub frames: Vec<Frame>,
    pub note: Option<String>,
}

/// A test that failed on its own terms. The stack is the panic's backtrace when the test ran
/// with `RUST_BACKTRACE=1`, else the panic location. std prints backtrace paths relative to
/// the harness's working directory (`./src/lib.rs`): `run_dir` is that directory relative to
/// the workspace root, so the paths become workspace-relative like everything else.
pub fn failed(test: &str, output: &str, run_dir: &Utf8Path) -> Described {
    let mut frames: Vec<Frame> = libtest::panic_backtrace(output)
        .into_iter()
        .map(|frame| Frame {
            file: frame
                .file
                .as_deref()
                .map(|file| match file.strip_prefix("./") {
                    Some(rest) => run_dir.join(rest).to_string(),
                    None => file.to_owned(),
                }),
            ..frame
        })
        .collect();
    if let Some((file, line, column)) = libtest::panic_location(output) {
        if frames.iter().all(|frame| frame.file.is_none()) {
            frames.insert(
                0,
                Frame {
                    function: test.to_owned(),
                    file: Some(file),
                    line: Some(line),
                    column: Some(column),
                },
            );
        }
    }
    let message = libtest::panic_message(output).unwrap_or_else(|| {
        output
            .lines()
            .find(|line| !line.trim().is_empty())
            .unwrap_or("the test failed")
            .trim()
            .to_owned()
    });
    Described {
        category: Category::TestFailure,
        kind: "test-failure".to_owned(),
        message,
        frames,
        note: None,
    }
}

/// A process that died inside a test without a report from `tool`.
pub fn died(termination: &str, detail: &str, tool: &str) -> Described {
    let detail = if detail.is_empty() {
        String::new()
    } else {
        format!(": {detail}")
    };
    Described {
        category: Category::Crash,
        kind: "process-died".to_owned(),
        message: format!("the test process ended ({termination}) without a {tool} report{detail}"),
        frames: Vec::new(),
        note: None,
    }
}

/// A test that ran past its limit; the note keeps the last lines it printed.
pub fn timed_out(limit: Duration, tail: &str) -> Described {
    let note = (!tail.trim().is_empty()).then(|| format!("last output:\n{tail}"));
    Described {
        category: Category::Timeout,
        kind: "timeout".to_owned(),
        message: format!(
            "the test ran past its time limit of {} (--test-timeout) and its process tree was killed",
            crate::duration::human(limit)
        ),
        frames: Vec::new(),
        note,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backtrace_paths_become_workspace_relative() {
        let output = "thread 't' panicked at crates/e/src/lib.rs:19:9:\nboom\nstack backtrace:\n   0: e::tests::length\n             at ./src/lib.rs:19:9\n";
        let described = failed("tests::length", output, Utf8Path::new("crates/e"));
        assert_eq!(described.message, "boom");
        assert_eq!(
            described.frames[0].file.as_deref(),
            Some("crates/e/src/lib.rs")
        );
        let plain = failed(
            "tests::t",
            "thread 't' panicked at src/lib.rs:3:5:\nno\n",
            Utf8Path::new(""),
        );
        assert_eq!(plain.frames[0].function, "tests::t");
        assert_eq!(plain.frames[0].line, Some(3));
    }

    #[test]
    fn a_timeout_names_its_limit_and_keeps_the_tail() {
        let described = timed_out(Duration::from_secs(20), "spinning");
        assert_eq!(described.kind, "timeout");
        assert!(described.message.contains("20.0s"), "{}", described.message);
        assert_eq!(described.note.as_deref(), Some("last output:\nspinning"));
    }
}
