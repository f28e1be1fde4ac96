//! Progress on stderr: a live status line on a terminal, plain lines in CI logs, and the
//! `--quiet` / `--verbose` levels.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::duration::human;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Quiet,
    Normal,
    Verbose,
}

pub struct Progress {
    level: Level,
    /// A terminal that can redraw one status line (never in CI).
    live: bool,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    stage: Option<(String, Instant, Option<Duration>)>,
    status_shown: bool,
}

impl Progress {
    pub fn new(quiet: bool, verbose: bool) -> Progress {
        let level = if quiet {
            Level::Quiet
        } else if verbose {
            Level::Verbose
        } else {
            Level::Normal
        };
        let live = level != Level::Quiet
            && std::io::stderr().is_terminal()
            && std::env::var_os("CI").is_none();
        Progress {
            level,
            live,
            state: Mutex::new(State::default()),
        }
    }

    pub fn stage_started(&self, stage: &str, budget: Option<Duration>) {
        if let Ok(mut state) = self.state.lock() {
            state.stage = Some((stage.to_owned(), Instant::now(), budget));
        }
        self.note(&format!(
            "started{}",
            budget
                .map(|b| format!(", budget {}", human(b)))
                .unwrap_or_default()
        ));
    }

    /// A line that stays: stage milestones and results.
    pub fn note(&self, message: &str) {
        if self.level >= Level::Normal {
            self.print(message, false);
        }
    }

    /// Fine-grained progress: redrawn in place on a terminal, dropped in plain logs.
    pub fn status(&self, message: &str) {
        if self.live {
            self.print(message, true);
        }
    }

    /// Commands and tool output, with `--verbose` only.
    pub fn verbose(&self, message: &str) {
        if self.level >= Level::Verbose {
            self.print(message, false);
        }
    }

    /// Always shown, even with `--quiet`: warnings and the verdict.
    pub fn always(&self, message: &str) {
        self.print(message, false);
    }

    fn print(&self, message: &str, transient: bool) {
        let Ok(mut guard) = self.state.lock() else {
            return;
        };
        let prefix = match &guard.stage {
            Some((stage, started, budget)) => {
                let elapsed = human(started.elapsed());
                match budget {
                    Some(budget) => format!("[{stage} {elapsed}/{}] ", human(*budget)),
                    None => format!("[{stage} {elapsed}] "),
                }
            }
            None => String::new(),
        };
        let mut stderr = std::io::stderr().lock();
        if guard.status_shown {
            let _ = write!(stderr, "\r\x1b[2K");
            guard.status_shown = false;
        }
        if transient {
            let _ = write!(stderr, "{prefix}{message}");
            guard.status_shown = true;
        } else {
            let _ = writeln!(stderr, "{prefix}{message}");
        }
        let _ = stderr.flush();
    }

    pub fn stage_finished(&self) {
        if let Ok(mut state) = self.state.lock() {
            state.stage = None;
            if state.status_shown {
                let mut stderr = std::io::stderr().lock();
                let _ = write!(stderr, "\r\x1b[2K");
                state.status_shown = false;
            }
        }
    }
}
