//! The contract between a stage and the kernel: the harnesses to run (`Binary`), the
//! kernel's unit of work (`Unit`), what a stage's tool must say (`Tool`), and how a test is
//! reported (`Cause`, `Attributed`).

use std::time::Duration;

use camino::{Utf8Path, Utf8PathBuf};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::inventory::{TestUnit, UnitKind};
use crate::process::{Cmd, Finished, Termination};
use crate::report::Frame;

/// The per-test limit of native runs (`AddressSanitizer`, cross) unless configured.
pub const NATIVE_TEST_TIMEOUT: Duration = Duration::from_mins(5);

/// The per-test limit under tools that slow a test down 10 to 50 times (valgrind,
/// `ThreadSanitizer` and `MemorySanitizer` with an instrumented std) unless configured: a test
/// of seconds natively must not become a timeout there.
pub const SLOW_TOOL_TEST_TIMEOUT: Duration = Duration::from_mins(15);

/// A test harness on one stage target (a triple, a sanitizer), with the tests to run.
#[derive(Debug, Clone)]
pub struct Binary {
    pub target: String,
    pub unit: TestUnit,
    /// The listed tests (after the user's filters). Empty for a harness that runs whole.
    pub tests: Vec<String>,
}

impl Binary {
    /// A library harness `p lib` on `target` with `tests`, for unit tests.
    #[cfg(test)]
    pub fn fake(target: &str, tests: &[&str]) -> Binary {
        Binary {
            target: target.to_owned(),
            unit: TestUnit {
                package: "p".into(),
                package_id: "p".into(),
                kind: UnitKind::Lib,
                name: "p".into(),
                executable: Some("/p".into()),
                variant: None,
            },
            tests: tests.iter().map(|test| (*test).to_owned()).collect(),
        }
    }

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

#[cfg(test)]
impl Unit {
    /// A `Run` unit of binary 0 with `tests`, for the kernel's unit tests.
    pub fn running(tests: &[&str]) -> Unit {
        Unit {
            binary: 0,
            tests: tests.iter().map(|t| (*t).to_owned()).collect(),
            seed: None,
            mode: Mode::Run,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Run the tests and record how each ended.
    Run,
    /// Re-run tests that already ran, only to learn which of them a report without a test
    /// belongs to (nothing is counted again).
    Attribute,
    /// Re-run one failed test with `RUST_BACKTRACE=1`, only for the stack its finding
    /// needs: test processes run without backtraces, which cost minutes per panic under
    /// `MemorySanitizer` and Miri (nothing is counted again).
    Backtrace,
}

/// When the tool made a report, which decides how it finds its test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// While a test ran (Miri's UB, an `ASan` abort, a data race, an invalid read).
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
    /// The tool broke down in this process only (one of its own limits, an internal error):
    /// what the process did says nothing about the code, so the test it ended in is neither
    /// a finding nor a result; the stage reports this error and the tests not reached still
    /// run.
    pub broken: Option<String>,
}

impl<R> Reading<R> {
    /// What the tool reported, with nothing wrong on its side.
    pub fn reports(reports: Vec<R>) -> Reading<R> {
        Reading {
            reports,
            fatal: None,
            broken: None,
        }
    }
}

/// What a stage tells the kernel about its tool.
pub trait Tool: Sync {
    /// Stored in the result cache as it is, so it reads back as the same report.
    type Report: Clone + Send + PartialEq + Serialize + DeserializeOwned;

    /// The process that runs `tests` of `binary` one after another with libtest's JSON
    /// events on stdout (`-Zunstable-options --format json`); an empty list
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
    fn read(
        &self,
        binary: &Binary,
        finished: &Finished,
        log_stem: &Utf8Path,
    ) -> Reading<Self::Report>;

    /// Reports inside a failed test's captured output (a doctest runs the tool in a child).
    fn reports_in_failure(&self, _output: &str) -> Vec<Self::Report> {
        Vec::new()
    }

    fn when(&self, report: &Self::Report) -> When;

    /// Whether the report only describes how the process ended (memcheck's record of the
    /// fatal signal). When the kernel itself ended the process for a test past its limit,
    /// such a report is the echo of that kill, and the timeout already says it.
    fn describes_the_end(&self, _report: &Self::Report) -> bool {
        false
    }

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

    /// The fewest tests worth a process of their own when nothing is known of their
    /// durations (a first run cuts harnesses into chunks that shrink towards this): a tool
    /// slow to start (Miri, valgrind) wants more tests per start.
    fn min_chunk(&self) -> usize {
        1
    }

    /// What a binary's results depend on besides a test's name, seed and stage target, for
    /// the result cache; `None` (the default) never caches them. Only a tool whose result
    /// is a function of these inputs may answer: fuzzing, benchmarks and soaks never do.
    fn cache_inputs(&self, _binary: &Binary) -> Option<KeyInputs> {
        None
    }
}

/// The inputs of a binary's cache key that the stage knows of. The command a unit runs
/// (its argv and environment, which carry every flag and option) is always part of the key.
#[derive(Debug, Clone, Default)]
pub struct KeyInputs {
    /// Files whose bytes decide the result: the test executable, Miri's compiled crates and
    /// the sources it interprets, a suppression file.
    pub files: Vec<Utf8PathBuf>,
    /// Commands whose output names a tool's version (`rustc -vV`, `valgrind --version`).
    pub versions: Vec<Cmd>,
    /// Anything else that decides the result, as text (Miri's recorded rustc invocation).
    pub values: Vec<String>,
}

/// Why a test is reported, before it becomes a finding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq)]
pub struct Attributed<R> {
    pub binary: usize,
    pub test: String,
    pub seed: Option<u32>,
    pub cause: Cause<R>,
}
