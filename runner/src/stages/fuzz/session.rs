//! Runs one target: the registered crashes replayed once each, then either the corpus once
//! (`replay`) or libFuzzer sessions back to back for the budget (a crash ends a session, the
//! next one starts from the grown corpus), each under a watchdog, so neither a hang nor a
//! crash loop can hold the runner. New inputs reach the kept corpus only at the end.

use std::time::{Duration, Instant};

use camino::{Utf8Path, Utf8PathBuf};

use super::commands::{self, Length};
use super::corpus;
use super::crash_registry::Entry;
use super::discover::{self, slug, FuzzTarget};
use super::libfuzzer::{self, Crash, Occurrence, Session};
use super::settings::Settings;
use crate::plan::Context;
use crate::process::{RunOptions, Termination};
use crate::stage_flags::FuzzMode;

/// A session shorter than this is not worth its start-up after a crash.
const MIN_SESSION: Duration = Duration::from_secs(2);
/// libFuzzer checks `-max_total_time` only between inputs, and the build check and corpus
/// load come first: the watchdog waits this long past the budget plus one input's timeout.
const WATCHDOG_MARGIN: Duration = Duration::from_secs(30);
/// A target that keeps crashing stops being restarted after this many sessions.
const MAX_SESSIONS: usize = 8;

/// What fuzzing one target produced, before triage.
#[derive(Debug, Default)]
pub struct TargetRun {
    pub duration: Duration,
    pub sessions: Vec<Session>,
    /// Every crash, in the order found (duplicates included: triage counts them).
    pub crashes: Vec<Occurrence>,
    pub corpus_before: (u64, u64),
    pub corpus_after: (u64, u64),
    /// Registered crashes whose input no longer crashes the target.
    pub no_longer_crash: Vec<String>,
    /// Why the target could not be fuzzed (or stopped early for a reason the user must know).
    pub error: Option<String>,
    pub notes: Vec<String>,
}

/// Where one target's run reads and writes: its artifacts, the logs, and the private folder
/// libFuzzer writes new inputs into.
pub struct Places<'a> {
    pub artifacts: &'a Utf8Path,
    pub logs: &'a Utf8Path,
    pub work: &'a Utf8Path,
}

pub fn fuzz_target(
    ctx: &Context,
    settings: &Settings,
    target: &FuzzTarget,
    registered: &[Entry],
    budget: Duration,
    places: &Places,
    deadline: Instant,
) -> TargetRun {
    let mut run = TargetRun::default();
    let store = corpus::store(settings, target);
    if let Err(error) =
        std::fs::create_dir_all(&store).and_then(|()| std::fs::create_dir_all(places.artifacts))
    {
        run.error = Some(format!("cannot create {store}: {error}"));
        return run;
    }
    run.corpus_before = discover::corpus_size(&store).unwrap_or_default();
    let started = Instant::now();
    replay_registered(
        ctx, settings, target, registered, places, deadline, &mut run,
    );
    if run.error.is_none() {
        let fuzz = Fuzz {
            target,
            registered,
            store: &store,
            budget,
        };
        fuzz_sessions(ctx, settings, &fuzz, places, deadline, &mut run);
    }
    run.duration = started.elapsed();
    // Also after an error: what was found until then is not thrown away.
    if let Err(error) = corpus::merge(places.work, &store) {
        run.error = Some(crate::exit::one_line(&error));
    }
    run.corpus_after = discover::corpus_size(&store).unwrap_or_default();
    run
}

/// Runs each registered crash's input once: a crash is an occurrence like any other (the
/// triage puts it back under its signature), no crash means the bug is gone.
fn replay_registered(
    ctx: &Context,
    settings: &Settings,
    target: &FuzzTarget,
    registered: &[Entry],
    places: &Places,
    deadline: Instant,
    run: &mut TargetRun,
) {
    for (index, entry) in registered.iter().enumerate() {
        let stage_left = deadline.saturating_duration_since(Instant::now());
        if stage_left.is_zero() {
            run.error = Some("the stage timeout ended the replay of registered crashes".to_owned());
            return;
        }
        let cmd = commands::replay_input(ctx, settings, target, &entry.input, places.artifacts);
        ctx.progress.verbose(&cmd.to_string());
        let watchdog = (settings.input_timeout + WATCHDOG_MARGIN).min(stage_left);
        let finished = match cmd.run(&RunOptions {
            timeout: Some(watchdog),
            log_stem: Some(
                places
                    .logs
                    .join(format!("{}-registered-{index}", slug(&target.label))),
            ),
            ..RunOptions::default()
        }) {
            Ok(finished) => finished,
            Err(error) => {
                run.error = Some(crate::exit::one_line(&error));
                return;
            }
        };
        let session = libfuzzer::parse(&finished.stderr);
        let seed = session.seed.or(settings.seed);
        match judge(&finished.termination, &session, &finished.stderr, watchdog) {
            Next::Done => run.no_longer_crash.push(entry.key.clone()),
            Next::Continue => {
                if let Some(crash) = &session.crash {
                    run.crashes.push(Occurrence {
                        crash: crash.clone(),
                        seed,
                        registered: true,
                    });
                }
            }
            Next::Hung(crash) => run.crashes.push(Occurrence {
                crash,
                seed,
                registered: true,
            }),
            Next::Error(reason) => {
                run.error = Some(format!("replaying a registered crash: {reason}"));
                return;
            }
        }
        run.sessions.push(session);
    }
}

/// What the sessions of one target work on.
struct Fuzz<'a> {
    target: &'a FuzzTarget,
    registered: &'a [Entry],
    store: &'a Utf8Path,
    budget: Duration,
}

/// The corpus once (`replay`), or fuzzing sessions until the budget is spent.
fn fuzz_sessions(
    ctx: &Context,
    settings: &Settings,
    fuzz: &Fuzz,
    places: &Places,
    deadline: Instant,
    run: &mut TargetRun,
) {
    let Fuzz {
        target,
        registered,
        store,
        budget,
    } = *fuzz;
    let read_only = corpus::read_only(settings, target);
    let mut corpora: Vec<&Utf8Path> = vec![places.work, store];
    corpora.extend(read_only.iter().map(Utf8PathBuf::as_path));
    let started = Instant::now();
    for sequence in 0..MAX_SESSIONS {
        let left = budget.saturating_sub(started.elapsed());
        if sequence > 0 && left < MIN_SESSION {
            break;
        }
        let stage_left = deadline.saturating_duration_since(Instant::now());
        if stage_left.is_zero() {
            run.error = Some("the stage timeout ended fuzzing early".to_owned());
            break;
        }
        let (length, watchdog) = if settings.mode == FuzzMode::Replay {
            // Every input may take the per-input limit; the corpus size bounds the rest.
            (Length::ReplayOnly, stage_left)
        } else {
            let watchdog = (left + settings.input_timeout + WATCHDOG_MARGIN).min(stage_left);
            (Length::Fuzz(left), watchdog)
        };
        let cmd = commands::run(ctx, settings, target, &corpora, places.artifacts, length);
        ctx.progress.verbose(&cmd.to_string());
        let finished = match cmd.run(&RunOptions {
            timeout: Some(watchdog),
            log_stem: Some(
                places
                    .logs
                    .join(format!("{}-{sequence}", slug(&target.label))),
            ),
            ..RunOptions::default()
        }) {
            Ok(finished) => finished,
            Err(error) => {
                run.error = Some(crate::exit::one_line(&error));
                break;
            }
        };
        let session = libfuzzer::parse(&finished.stderr);
        let next = judge(&finished.termination, &session, &finished.stderr, watchdog);
        let seed = session.seed.or(settings.seed);
        let mut unregistered_crash = false;
        if let Some(crash) = &session.crash {
            let signature = super::triage::signature_of(target, crash);
            unregistered_crash = !registered
                .iter()
                .any(|e| e.signature.as_deref() == Some(signature.as_str()));
            run.crashes.push(Occurrence {
                crash: crash.clone(),
                seed,
                registered: false,
            });
        }
        let replay_crash = session.crash.is_some() && !session.inited;
        run.sessions.push(session);
        match next {
            Next::Hung(crash) => {
                run.crashes.push(Occurrence {
                    crash,
                    seed,
                    registered: false,
                });
                break;
            }
            Next::Error(reason) => {
                run.error = Some(reason);
                break;
            }
            Next::Continue if replay_crash => {
                run.notes.push(format!(
                    "`{}`: an input already in {store} crashes the target, so fuzzing cannot go \
                     past it until the bug is fixed (or the input moves out of the corpus)",
                    target.label
                ));
                break;
            }
            Next::Continue if settings.mode == FuzzMode::Pr && unregistered_crash => {
                run.notes.push(format!(
                    "`{}`: stopped at its first crash not in the registry (mode pr)",
                    target.label
                ));
                break;
            }
            Next::Continue if settings.mode != FuzzMode::Replay => {}
            Next::Continue | Next::Done => break,
        }
    }
}

enum Next {
    Continue,
    Done,
    /// libFuzzer itself stopped answering; the watchdog's kill is the finding.
    Hung(Crash),
    Error(String),
}

fn judge(termination: &Termination, session: &Session, stderr: &str, watchdog: Duration) -> Next {
    match termination {
        Termination::Exited(0) => Next::Done,
        Termination::Interrupted => Next::Error("interrupted".to_owned()),
        Termination::TimedOut(_) => Next::Hung(Crash {
            kind: "timeout".to_owned(),
            reporter: "runner".to_owned(),
            message: format!(
                "libFuzzer did not stop within {} (budget, per-input timeout and margin); \
                 the watchdog killed it",
                crate::duration::human(watchdog)
            ),
            headline: "watchdog: fuzzing process killed".to_owned(),
            frames: Vec::new(),
            panic_location: None,
            artifact: None,
        }),
        _ if session.crash.is_some() => Next::Continue,
        other => {
            let reason = stderr
                .lines()
                .find(|line| line.trim_start().starts_with("error"))
                .or_else(|| stderr.lines().rev().find(|l| !l.trim().is_empty()))
                .unwrap_or("no output")
                .trim();
            Next::Error(format!("cargo fuzz run ended ({other}): {reason}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_watchdog_kill_is_a_timeout_finding_and_a_silent_failure_an_error() {
        let limit = Duration::from_secs(45);
        let Next::Hung(crash) = judge(
            &Termination::TimedOut(limit),
            &Session::default(),
            "",
            limit,
        ) else {
            panic!("a killed fuzzer is a hang")
        };
        assert_eq!(crash.kind, "timeout");
        assert!(crash.artifact.is_none());
        assert!(matches!(
            judge(&Termination::Exited(0), &Session::default(), "", limit),
            Next::Done
        ));
        let Next::Error(reason) = judge(
            &Termination::Exited(101),
            &Session::default(),
            "   Compiling x\nerror[E0061]: this function takes 1 argument\n",
            limit,
        ) else {
            panic!("no crash report and a failure is an error")
        };
        assert!(reason.contains("E0061"), "{reason}");
    }

    #[test]
    fn labels_become_file_names() {
        assert_eq!(slug("crates/a/fuzz/parse"), "crates-a-fuzz-parse");
        assert_eq!(slug("parse_v2"), "parse_v2");
    }
}
