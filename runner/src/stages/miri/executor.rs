//! Miri as a tool of the execution kernel: the command that runs a shard of a binary's tests
//! under Miri, and what its JSON diagnostics say. Miri stops a process at the first UB (the
//! kernel resumes with the tests not reached) and checks leaks only when `main` returns.

use camino::Utf8Path;

use super::diagnostics::{self, MiriError};
use super::{shard_command, Settings};
use crate::exec::{Binary, KeyInputs, Reading, Tool, When};
use crate::plan::Context;
use crate::process::{Cmd, Finished, Termination};
use crate::report::{Category, Frame};

/// libtest's exit status when a test failed.
const LIBTEST_FAILED: i32 = 101;

pub struct Miri<'a> {
    pub ctx: &'a Context,
    pub settings: &'a Settings,
}

impl Tool for Miri<'_> {
    type Report = MiriError;

    fn command(
        &self,
        binary: &Binary,
        tests: &[String],
        seed: Option<u32>,
        _log_stem: &Utf8Path,
    ) -> Cmd {
        shard_command(
            self.ctx,
            self.settings,
            &binary.target,
            &binary.unit,
            tests,
            seed,
        )
    }

    fn read(
        &self,
        _binary: &Binary,
        finished: &Finished,
        _log_stem: &Utf8Path,
    ) -> Reading<MiriError> {
        Reading::reports(diagnostics::parse(&finished.stderr))
    }

    /// Doctests run Miri in a child of rustdoc: its diagnostics are in the failure's output.
    fn reports_in_failure(&self, output: &str) -> Vec<MiriError> {
        diagnostics::parse(output)
    }

    fn when(&self, report: &MiriError) -> When {
        if report.category == Category::Leak {
            When::AtExit
        } else {
            When::During
        }
    }

    /// A Miri process takes about 3 s to start and a typical test a few tenths of a second.
    fn min_chunk(&self) -> usize {
        8
    }

    fn frames<'r>(&self, report: &'r MiriError) -> &'r [Frame] {
        &report.frames
    }

    /// A failed test makes libtest leave through `exit(101)`, and Miri checks for leaks only
    /// when `main` returns (after which it exits 1 when it found some).
    fn exit_checks_ran(&self, termination: &Termination) -> bool {
        matches!(termination, Termination::Exited(code) if *code != LIBTEST_FAILED)
    }

    /// Miri with a fixed seed is deterministic: a result holds while the harness's sources,
    /// the crates it links, the flags and Miri itself are the same.
    fn cache_inputs(&self, binary: &Binary) -> Option<KeyInputs> {
        let made = binary
            .unit
            .executable
            .as_deref()
            .map(super::artifacts::inputs)
            .unwrap_or_default();
        Some(KeyInputs {
            files: made.files,
            versions: vec![
                super::version(&self.ctx.toolchain).1,
                self.ctx.toolchain.rustc().arg("-vV"),
            ],
            values: vec![made.invocation],
        })
    }
}
