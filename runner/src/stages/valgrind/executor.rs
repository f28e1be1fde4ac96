//! Runs every job (one test, or one configured program) in its own memcheck process on a
//! pool of workers, and reads what each left behind: the XML, the text log, the test verdict.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use anyhow::{bail, Context as _, Result};
use camino::{Utf8Path, Utf8PathBuf};

use super::commands::job_command;
use super::fds::{self, OpenFd};
use super::settings::{ProgramConfig, Settings};
use super::xml::{self, MemcheckLog};
use crate::inventory::TestUnit;
use crate::plan::Context;
use crate::process::{Finished, RunOptions, Termination};
use crate::report::Frame;

/// What runs under memcheck.
#[derive(Debug, Clone)]
pub enum Subject {
    Test { unit: TestUnit, name: String },
    Program(ProgramConfig),
}

#[derive(Debug, Clone)]
pub struct Job {
    pub subject: Subject,
    pub executable: Utf8PathBuf,
    pub cwd: Utf8PathBuf,
}

impl Job {
    /// The program's own arguments: one test alone, or the configured ones.
    pub fn arguments(&self) -> Vec<String> {
        match &self.subject {
            Subject::Test { name, .. } => {
                vec!["--exact".into(), name.clone(), "--test-threads=1".into()]
            }
            Subject::Program(program) => program.args.clone(),
        }
    }

    /// `valgrind-bugs lib tests::leaks`, or `program leaky-cli --leak`.
    pub fn label(&self) -> String {
        match &self.subject {
            Subject::Test { unit, name } => format!("{} {name}", unit.label()),
            Subject::Program(program) => format!("program {}", program.label()),
        }
    }

    fn log_name(&self, sequence: usize) -> String {
        let slug: String = self
            .label()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '-'
                }
            })
            .take(100)
            .collect();
        format!("{sequence:04}-{slug}")
    }
}

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

pub fn execute(
    ctx: &Context,
    settings: &Settings,
    jobs: &[Job],
    logs: &Utf8Path,
    deadline: Instant,
) -> Outcome {
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let outcome = Mutex::new(Outcome::default());
    std::thread::scope(|scope| {
        for _ in 0..ctx.jobs.min(jobs.len()) {
            scope.spawn(|| loop {
                let index = next.fetch_add(1, Ordering::SeqCst);
                if stop.load(Ordering::SeqCst) || index >= jobs.len() {
                    return;
                }
                let result = run_job(ctx, settings, &jobs[index], index, logs, deadline);
                let finished = done.fetch_add(1, Ordering::SeqCst) + 1;
                let Ok(mut outcome) = outcome.lock() else {
                    return;
                };
                match result {
                    Ok(result) => outcome.results.push(result),
                    Err(error) => {
                        outcome.errors.push(crate::exit::one_line(&error));
                        stop.store(true, Ordering::SeqCst);
                    }
                }
                ctx.progress.status(&format!(
                    "{finished} of {} runs done ({})",
                    jobs.len(),
                    jobs[index].label()
                ));
            });
        }
    });
    let mut outcome = match outcome.into_inner() {
        Ok(outcome) => outcome,
        Err(poisoned) => poisoned.into_inner(),
    };
    outcome.results.sort_by_key(|result| result.job);
    outcome
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
        verdict: verdict(job, &finished),
        log,
        leaked_fds,
    })
}

/// The test's result from libtest's `test NAME ... ok` line; a signal death or a program's
/// exit status otherwise. Valgrind exits as its program did, so the status is the program's.
fn verdict(job: &Job, finished: &Finished) -> Verdict {
    if let Termination::Signalled(signal) = &finished.termination {
        return Verdict::Died(signal.clone());
    }
    let code = match finished.termination {
        Termination::Exited(code) => code,
        _ => -1,
    };
    let Subject::Test { name, .. } = &job.subject else {
        return Verdict::Exited(code);
    };
    let prefix = format!("test {name} ... ");
    let result = finished
        .stdout
        .lines()
        .find_map(|line| line.strip_prefix(prefix.as_str()));
    match result {
        Some("ok") => Verdict::Passed,
        Some(ignored) if ignored.starts_with("ignored") => Verdict::Ignored,
        _ if code == 0 => Verdict::Passed,
        _ => Verdict::Failed(finished.stdout.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test_job(name: &str) -> Job {
        Job {
            subject: Subject::Test {
                unit: TestUnit {
                    package: "p".into(),
                    kind: crate::inventory::UnitKind::Lib,
                    name: "p".into(),
                    executable: None,
                },
                name: name.into(),
            },
            executable: "/t/p".into(),
            cwd: "/w".into(),
        }
    }

    fn finished(termination: Termination, stdout: &str) -> Finished {
        Finished {
            termination,
            stdout: stdout.into(),
            stderr: String::new(),
        }
    }

    #[test]
    fn reads_the_verdict_from_libtest_not_from_valgrind() {
        let job = test_job("tests::a");
        let ok = "running 1 test\ntest tests::a ... ok\n\ntest result: ok. 1 passed;";
        assert_eq!(
            verdict(&job, &finished(Termination::Exited(0), ok)),
            Verdict::Passed
        );
        let ignored = "test tests::a ... ignored, slow\n";
        assert_eq!(
            verdict(&job, &finished(Termination::Exited(0), ignored)),
            Verdict::Ignored
        );
        let failed = "test tests::a ... FAILED\n";
        assert!(matches!(
            verdict(&job, &finished(Termination::Exited(101), failed)),
            Verdict::Failed(_)
        ));
        let died = finished(Termination::Signalled("SIGSEGV".into()), "");
        assert_eq!(verdict(&job, &died), Verdict::Died("SIGSEGV".into()));
        assert_eq!(job.arguments(), ["--exact", "tests::a", "--test-threads=1"]);
        assert_eq!(job.log_name(3), "0003-p-lib-tests--a");
    }
}
