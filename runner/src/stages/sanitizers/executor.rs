//! A sanitizer as a tool of the execution kernel: the command that runs some tests of an
//! instrumented harness, and the runtime's reports in what the process left. `AddressSanitizer`
//! and `MemorySanitizer` end the process at the first error (the kernel resumes with the tests
//! not reached); `ThreadSanitizer` reports and goes on; `LeakSanitizer` reports at exit.

use camino::Utf8Path;

use super::commands;
use super::report_parser::{self, SanitizerReport};
use super::sanitizer::Sanitizer;
use super::settings::Settings;
use crate::exec::{self, Binary, KeyInputs, Reading, Tool, When};
use crate::plan::Context;
use crate::process::{Cmd, Finished};
use crate::report::Frame;

/// Why a test is reported, before it becomes a finding.
pub type Cause = exec::Cause<SanitizerReport>;

#[derive(Debug, Clone)]
pub struct RawFinding {
    pub unit: crate::inventory::TestUnit,
    pub test: String,
    pub cause: Cause,
}

pub struct Runtime<'a> {
    pub ctx: &'a Context,
    pub settings: &'a Settings,
    pub sanitizer: Sanitizer,
}

impl Tool for Runtime<'_> {
    type Report = SanitizerReport;

    fn command(
        &self,
        binary: &Binary,
        tests: &[String],
        _seed: Option<u32>,
        _log_stem: &Utf8Path,
    ) -> Cmd {
        match &binary.unit.executable {
            Some(executable) if !binary.runs_whole() => commands::tests(
                self.ctx,
                self.settings,
                self.sanitizer,
                executable.as_str(),
                &binary.unit.package,
                tests,
            ),
            _ => commands::doctests(self.ctx, self.settings, self.sanitizer, &binary.unit),
        }
    }

    fn read(
        &self,
        _binary: &Binary,
        finished: &Finished,
        _log_stem: &Utf8Path,
    ) -> Reading<SanitizerReport> {
        let parsed = report_parser::parse(&finished.stderr);
        Reading {
            reports: parsed.reports,
            fatal: parsed.fatal.map(|fatal| explain_fatal(&fatal)),
            broken: None,
        }
    }

    /// rustdoc folds each doctest's stderr into the failure's output.
    fn reports_in_failure(&self, output: &str) -> Vec<SanitizerReport> {
        report_parser::parse(output).reports
    }

    fn when(&self, report: &SanitizerReport) -> When {
        if report.leak.is_some() {
            When::AtExit
        } else {
            When::During
        }
    }

    fn frames<'r>(&self, report: &'r SanitizerReport) -> &'r [Frame] {
        &report.stack
    }

    /// A sanitizer's verdict on a test is its report, whatever libtest said.
    fn reports_fail_the_test(&self) -> bool {
        true
    }

    /// Address, memory and leak checks of a test give the same reports for the same binary
    /// and options; `ThreadSanitizer`'s schedules vary, so it is cached only when asked.
    fn cache_inputs(&self, binary: &Binary) -> Option<KeyInputs> {
        let thread_allowed = self.ctx.cache.as_ref().is_some_and(|cache| cache.thread);
        if self.sanitizer == Sanitizer::Thread && !thread_allowed {
            return None;
        }
        Some(KeyInputs {
            files: binary.unit.executable.iter().cloned().collect(),
            values: Vec::new(),
            versions: vec![self.ctx.toolchain.rustc().arg("-vV")],
        })
    }
}

/// A runtime failure with what to do about it.
pub fn explain_fatal(fatal: &str) -> String {
    if fatal.contains("LeakSanitizer") {
        format!(
            "{fatal}. LeakSanitizer needs ptrace: in a container, run it with `--cap-add \
             SYS_PTRACE`, or turn the leak check off with `detect_leaks=0` in runner config \
             `sanitizers.options.address`"
        )
    } else if fatal.contains("ThreadSanitizer") && fatal.contains("memory mapping") {
        format!(
            "{fatal}. ThreadSanitizer cannot map its shadow memory with this kernel's address \
             randomisation: lower it with `sysctl vm.mmap_rnd_bits=28`"
        )
    } else {
        format!("the sanitizer runtime failed: {fatal}")
    }
}
