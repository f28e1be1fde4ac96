//! What an engine hands back (numbers, critical gaps, test results, notes) and the step
//! runner both engines share: limits, logs and telling failing tests from a broken build.

use std::time::Instant;

use anyhow::{bail, Context as _, Result};
use camino::Utf8Path;

use super::critical::Gap;
use super::lcov::FileTrace;
use crate::coverage_data::summary::Summary;
use crate::libtest::{self, Outcome, TestResult};
use crate::plan::Context;
use crate::process::{Cmd, Finished, RunOptions, Termination};

/// One engine's results, in runner's terms.
#[derive(Debug)]
pub struct EngineOutput {
    /// The cargo tool that measured, as findings' evidence names it.
    pub tool: &'static str,
    pub summary: Summary,
    /// The engine's command for a person, without arguments for the test binaries.
    pub repro: Cmd,
    pub gaps: Vec<Gap>,
    pub tests: Vec<TestResult>,
    pub notes: Vec<String>,
}

impl EngineOutput {
    /// The repro command with these arguments for the test binaries.
    pub fn repro_with(&self, tests: &[String]) -> String {
        if tests.is_empty() {
            self.repro.pasteable()
        } else {
            self.repro
                .clone()
                .arg("--")
                .args(tests.iter().cloned())
                .pasteable()
        }
    }

    pub fn count(&self, outcome: fn(&Outcome) -> bool) -> u64 {
        let matching = self.tests.iter().filter(|t| outcome(&t.outcome)).count();
        u64::try_from(matching).unwrap_or(u64::MAX)
    }
}

/// The text of a file the engine wrote.
pub fn read(path: &Utf8Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("the engine wrote no readable {path}"))
}

/// The engine's LCOV tracefile, with paths relative to the workspace.
pub fn traces(ctx: &Context, lcov: &Utf8Path) -> Result<Vec<FileTrace>> {
    super::lcov::parse(&read(lcov)?, &ctx.workspace.root)
}

/// Runs one step within the stage's deadline, its output logged under `log`.
pub fn run_step(ctx: &Context, cmd: &Cmd, log: &Utf8Path, deadline: Instant) -> Result<Finished> {
    ctx.progress.verbose(&cmd.to_string());
    cmd.run(&RunOptions {
        timeout: Some(deadline.saturating_duration_since(Instant::now())),
        log_stem: Some(log.to_owned()),
        ..RunOptions::default()
    })
}

/// Runs a step that must succeed.
pub fn run_checked(
    ctx: &Context,
    cmd: &Cmd,
    log: &Utf8Path,
    deadline: Instant,
    what: &str,
) -> Result<Finished> {
    let finished = run_step(ctx, cmd, log, deadline)?;
    crate::cargo_output::require_success(&finished, what)?;
    Ok(finished)
}

/// The results of a test step whose stdout carries libtest's JSON events. Failing tests
/// still leave coverage to report; a step that failed without any failing test (a build
/// error, a crash, the time limit) leaves nothing trustworthy.
pub fn test_results(finished: &Finished, what: &str) -> Result<Vec<TestResult>> {
    if matches!(
        finished.termination,
        Termination::TimedOut(_) | Termination::Interrupted
    ) {
        bail!("{what}: {}", finished.termination);
    }
    let events = libtest::parse_events(&finished.stdout);
    let failed = events
        .results
        .iter()
        .any(|t| matches!(t.outcome, Outcome::Failed { .. }));
    if !finished.termination.success() && !failed {
        crate::cargo_output::require_success(finished, what)?;
    }
    Ok(events.results)
}

/// Coverage of a run in which no test ran measures nothing: that is not a result.
pub fn require_tests(tests: &[TestResult]) -> Result<()> {
    if tests.iter().all(|t| t.outcome == Outcome::Ignored) {
        bail!("no tests ran, so nothing was measured");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finished(termination: Termination, stdout: &str, stderr: &str) -> Finished {
        Finished {
            termination,
            stdout: stdout.to_owned(),
            stderr: stderr.to_owned(),
        }
    }

    const FAILED: &str = r#"{ "type": "test", "name": "t", "event": "failed", "stdout": "x" }"#;

    #[test]
    fn failing_tests_are_results_and_a_broken_build_is_an_error() {
        let results = test_results(&finished(Termination::Exited(101), FAILED, ""), "w").unwrap();
        assert_eq!(results.len(), 1);
        let error = test_results(
            &finished(Termination::Exited(101), "", "error[E0425]: oops\n"),
            "running the tests",
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("running the tests failed"), "{error}");
        assert!(error.contains("E0425"), "{error}");
        let timed_out = Termination::TimedOut(std::time::Duration::from_secs(1));
        assert!(test_results(&finished(timed_out, FAILED, ""), "w").is_err());
        let none = test_results(&finished(Termination::Exited(0), "", ""), "w").unwrap();
        let error = require_tests(&none).unwrap_err().to_string();
        assert_eq!(error, "no tests ran, so nothing was measured");
    }
}
