//! Memcheck on the execution kernel: test harnesses in shards (a report without its test is
//! attributed by re-running halves), configured programs each in a process of its own; and
//! what each process left behind: the XML, the text log, the verdict.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use camino::{Utf8Path, Utf8PathBuf};

use super::commands::{self, job_command};
use super::fds::{self, OpenFd};
pub use super::job::{Job, Subject};
use super::settings::Settings;
use super::xml::{self, FatalSignal, MemcheckError, MemcheckLog};
use crate::exec::pool::{self, Done};
use crate::exec::{self, Binary, Cause, KeyInputs, Reading, Tool, When};
use crate::plan::Context;
use crate::process::{Cmd, Finished, RunOptions, Termination};
use crate::report::model::TestOutcome;
use crate::report::Frame;

/// How the program itself ended, apart from what memcheck saw.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Passed,
    /// The test failed on its own terms; libtest's output, with the panic.
    Failed(String),
    Ignored,
    /// Killed by a signal before it could finish.
    Died(String),
    /// A configured program's exit status.
    Exited(i32),
    /// Ran past its time limit; the last lines it printed.
    TimedOut {
        limit: Duration,
        tail: String,
    },
}

#[derive(Debug)]
pub struct RunResult {
    pub job: usize,
    pub log: MemcheckLog,
    /// Descriptors the program opened and left open, with where it opened them.
    pub leaked_fds: Vec<(OpenFd, Vec<Frame>)>,
    pub verdict: Verdict,
}

#[derive(Debug, Default)]
pub struct Outcome {
    /// In job order.
    pub results: Vec<RunResult>,
    /// What stopped the stage from being evaluated: a timeout, an interrupt, a run that
    /// left no readable XML.
    pub errors: Vec<String>,
}

/// Runs the configured programs, each in its own memcheck process, on the kernel's queue.
pub fn execute_programs(
    ctx: &Context,
    settings: &Settings,
    jobs: &[Job],
    logs: &Utf8Path,
    deadline: Instant,
) -> Outcome {
    let mut outcome = Outcome::default();
    let total = jobs.len();
    pool::run(
        ctx.jobs,
        (0..jobs.len()).collect(),
        &|index, _| {
            let result = run_job(ctx, settings, &jobs[index], index, logs, deadline);
            let stop = result.is_err();
            Done {
                result: (index, result),
                follow_up: Vec::new(),
                stop,
            }
        },
        &mut |(index, result), left| {
            match result {
                Ok(result) => outcome.results.push(result),
                Err(error) => outcome.errors.push(crate::exit::one_line(&error)),
            }
            ctx.progress.status(&format!(
                "{} of {total} programs done ({})",
                total - left,
                jobs[index].label()
            ));
        },
    );
    outcome.results.sort_by_key(|result| result.job);
    outcome
}

/// What memcheck reported in one process.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum MemcheckReport {
    Error(MemcheckError),
    /// A descriptor the program opened and left open, with where it opened it.
    Fd(OpenFd, Vec<Frame>),
    /// The signal that ended the process.
    FatalSignal(FatalSignal),
}

/// Memcheck as a tool of the execution kernel.
pub struct Memcheck<'a> {
    pub ctx: &'a Context,
    pub settings: &'a Settings,
    /// Errors hidden by suppressions, over every process.
    pub suppressed: AtomicU64,
}

impl Tool for Memcheck<'_> {
    type Report = MemcheckReport;

    /// Memcheck of the same binary with the same flags and suppressions reports the same
    /// errors for a single-threaded test.
    fn cache_inputs(&self, binary: &Binary) -> Option<KeyInputs> {
        Some(KeyInputs {
            files: binary.unit.executable.iter().cloned().collect(),
            values: Vec::new(),
            versions: vec![super::version(&self.ctx.toolchain).1],
        })
    }

    fn command(&self, binary: &Binary, tests: &[String], _: Option<u32>, stem: &Utf8Path) -> Cmd {
        let executable = binary.unit.executable.clone().unwrap_or_default();
        let cwd = self
            .ctx
            .workspace
            .package_dir(&binary.unit.package)
            .unwrap_or(&self.ctx.workspace.root)
            .to_owned();
        commands::tests_command(self.settings, &executable, &cwd, tests, stem)
    }

    fn read(
        &self,
        binary: &Binary,
        finished: &Finished,
        stem: &Utf8Path,
    ) -> Reading<MemcheckReport> {
        let text_log = std::fs::read_to_string(format!("{stem}.log")).unwrap_or_default();
        if let Some(breakdown) = commands::breakdown(&text_log) {
            return Reading {
                reports: Vec::new(),
                fatal: None,
                broken: Some(format!(
                    "valgrind itself stopped in {} ({breakdown}); the test it was running was not checked",
                    binary.unit.label()
                )),
            };
        }
        let xml_path = Utf8PathBuf::from(format!("{stem}.xml"));
        let Ok(log) = std::fs::read_to_string(&xml_path)
            .map_err(anyhow::Error::from)
            .and_then(|text| xml::parse(&text))
        else {
            let reason = finished
                .stderr
                .lines()
                .find(|line| line.starts_with("valgrind:"))
                .unwrap_or("see its logs");
            return Reading {
                reports: Vec::new(),
                fatal: Some(format!(
                    "valgrind wrote no readable report for {} ({}): {reason}",
                    binary.unit.label(),
                    finished.termination
                )),
                broken: None,
            };
        };
        self.suppressed.fetch_add(log.suppressed, Ordering::Relaxed);
        let mut reports = Vec::new();
        if self.settings.track_fds {
            reports.extend(
                fds::leaked(fds::parse(&text_log), log.fd_stacks.clone())
                    .into_iter()
                    .map(|(fd, stack)| MemcheckReport::Fd(fd, stack)),
            );
        }
        // Whether the signal is a finding of its own (no memory error before it) is the
        // findings' call; the kernel gives it to the test the process died in.
        if let Some(signal) = log.fatal_signal.clone() {
            reports.push(MemcheckReport::FatalSignal(signal));
        }
        reports.extend(
            log.errors
                .into_iter()
                .filter(|error| error.kind != "Leak_StillReachable")
                .map(MemcheckReport::Error),
        );
        Reading::reports(reports)
    }

    fn when(&self, report: &MemcheckReport) -> When {
        match report {
            MemcheckReport::Error(error) if error.kind.starts_with("Leak_") => When::AtExit,
            MemcheckReport::Fd(..) => When::AtExit,
            _ => When::During,
        }
    }

    fn describes_the_end(&self, report: &MemcheckReport) -> bool {
        matches!(report, MemcheckReport::FatalSignal(_))
    }

    /// memcheck takes about a second to start on a test binary.
    fn min_chunk(&self) -> usize {
        4
    }

    fn frames<'r>(&self, report: &'r MemcheckReport) -> &'r [Frame] {
        match report {
            MemcheckReport::Error(error) => &error.stack,
            MemcheckReport::Fd(_, stack) => stack,
            MemcheckReport::FatalSignal(signal) => &signal.stack,
        }
    }
}

/// The kernel's outcome as one run result per test, the shape the findings are built from.
pub fn per_test_results(
    ctx: &Context,
    binaries: &[Binary],
    outcome: exec::Outcome<MemcheckReport>,
    suppressed: u64,
) -> (Vec<Job>, Vec<RunResult>) {
    let mut jobs: Vec<Job> = Vec::new();
    let mut results: Vec<RunResult> = Vec::new();
    let index_of = |binary: &Binary,
                    name: &str,
                    jobs: &mut Vec<Job>,
                    results: &mut Vec<RunResult>| {
        let label = binary.unit.label();
        if let Some(at) = jobs.iter().position(|job| {
            matches!(&job.subject, Subject::Test { unit, name: n } if unit.label() == label && n == name)
        }) {
            return at;
        }
        jobs.push(Job {
            subject: Subject::Test {
                unit: binary.unit.clone(),
                name: name.to_owned(),
            },
            executable: binary.unit.executable.clone().unwrap_or_default(),
            cwd: ctx
                .workspace
                .package_dir(&binary.unit.package)
                .unwrap_or(&ctx.workspace.root)
                .to_owned(),
        });
        results.push(RunResult {
            job: jobs.len() - 1,
            log: MemcheckLog {
                complete: true,
                ..MemcheckLog::default()
            },
            leaked_fds: Vec::new(),
            verdict: Verdict::Passed,
        });
        jobs.len() - 1
    };
    for run in &outcome.tests {
        let Some(binary) = binaries.iter().find(|b| Some(b.unit.label()) == run.unit) else {
            continue;
        };
        let at = index_of(binary, &run.name, &mut jobs, &mut results);
        results[at].verdict = match run.outcome {
            TestOutcome::Passed => Verdict::Passed,
            TestOutcome::Ignored => Verdict::Ignored,
            // A memory error that ended the process; the causes below may say more.
            TestOutcome::Failed => Verdict::Died("a signal after a memory error".to_owned()),
        };
    }
    for found in outcome.found {
        let binary = &binaries[found.binary];
        let at = index_of(binary, &found.test, &mut jobs, &mut results);
        let result = &mut results[at];
        match found.cause {
            Cause::Report(MemcheckReport::Error(error)) => result.log.errors.push(error),
            Cause::Report(MemcheckReport::Fd(fd, stack)) => result.leaked_fds.push((fd, stack)),
            Cause::Report(MemcheckReport::FatalSignal(signal)) => {
                result.verdict = Verdict::Died(signal.name.clone());
                result.log.fatal_signal = Some(signal);
            }
            Cause::Failed { output } => result.verdict = Verdict::Failed(output),
            Cause::Died { termination, .. } => result.verdict = Verdict::Died(termination),
            Cause::TimedOut { limit, tail } => result.verdict = Verdict::TimedOut { limit, tail },
        }
    }
    if let Some(first) = results.first_mut() {
        first.log.suppressed = suppressed;
    }
    (jobs, results)
}

fn run_job(
    ctx: &Context,
    settings: &Settings,
    job: &Job,
    index: usize,
    logs: &Utf8Path,
    deadline: Instant,
) -> Result<RunResult> {
    let remaining = deadline.saturating_duration_since(Instant::now());
    if remaining.is_zero() {
        bail!("stage timeout reached before {} ran", job.label());
    }
    let stem = logs.join(job.log_name(index + 1));
    let xml_path = Utf8PathBuf::from(format!("{stem}.xml"));
    let text_path = Utf8PathBuf::from(format!("{stem}.log"));
    let cmd = job_command(settings, job, Some(&stem));
    ctx.progress.verbose(&cmd.to_string());
    let finished = cmd.run(&RunOptions {
        timeout: Some(remaining),
        log_stem: Some(stem.clone()),
        ..RunOptions::default()
    })?;
    match &finished.termination {
        Termination::TimedOut(_) => bail!(
            "timed out (stage limit {}) while running {} under valgrind",
            crate::duration::human(ctx.timeout),
            job.label()
        ),
        Termination::Interrupted => bail!("interrupted"),
        _ => {}
    }
    let Ok(text) = std::fs::read_to_string(&xml_path) else {
        let reason = finished
            .stderr
            .lines()
            .find(|line| line.starts_with("valgrind:"))
            .unwrap_or("see its logs");
        bail!(
            "valgrind wrote no report for {} ({}): {reason}",
            job.label(),
            finished.termination
        );
    };
    let log = xml::parse(&text).with_context(|| format!("in {xml_path}"))?;
    let leaked_fds = if settings.track_fds {
        let open = fds::parse(&std::fs::read_to_string(&text_path).unwrap_or_default());
        fds::leaked(open, log.fd_stacks.clone())
    } else {
        Vec::new()
    };
    Ok(RunResult {
        job: index,
        verdict: verdict(&finished),
        log,
        leaked_fds,
    })
}

/// How a configured program ended: a signal death, or its exit status (valgrind exits as
/// its program did). Tests run on the kernel, which reads their results from libtest.
fn verdict(finished: &Finished) -> Verdict {
    match &finished.termination {
        Termination::Signalled(signal) => Verdict::Died(signal.clone()),
        Termination::Exited(code) => Verdict::Exited(*code),
        _ => Verdict::Exited(-1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::TestUnit;

    fn finished(termination: Termination) -> Finished {
        Finished {
            termination,
            stdout: String::new(),
            stderr: String::new(),
        }
    }

    #[test]
    fn a_program_ends_by_its_exit_status_or_a_signal() {
        assert_eq!(
            verdict(&finished(Termination::Exited(3))),
            Verdict::Exited(3)
        );
        assert_eq!(
            verdict(&finished(Termination::Signalled("SIGSEGV".into()))),
            Verdict::Died("SIGSEGV".into())
        );
    }

    #[test]
    fn a_test_alone_is_named_exactly_and_its_log_after_it() {
        let job = Job {
            subject: Subject::Test {
                unit: TestUnit {
                    package: "p".into(),
                    package_id: "p".into(),
                    kind: crate::inventory::UnitKind::Lib,
                    name: "p".into(),
                    executable: None,
                    variant: None,
                },
                name: "tests::a".into(),
            },
            executable: "/t/p".into(),
            cwd: "/w".into(),
        };
        assert_eq!(job.arguments(), ["--exact", "tests::a", "--test-threads=1"]);
        assert_eq!(job.log_name(3), "0003-p-lib-tests--a");
    }
}
