//! Runs the program for the soak's duration through runner's process module (own process
//! group, logs, SIGTERM then SIGKILL at the end) while this thread samples it on a fixed
//! schedule.

use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};
use camino::Utf8Path;

use super::sample::{self, Sample};
use super::settings::Settings;
use crate::process::{Cmd, Finished, RunOptions};

pub struct Watched {
    pub samples: Vec<Sample>,
    pub finished: Finished,
}

/// How long to look for the started child before giving up on sampling it.
const FIND_CHILD: Duration = Duration::from_secs(10);

pub fn watch(cmd: &Cmd, settings: &Settings, log_stem: &Utf8Path) -> Result<Watched> {
    // Started here, before the program: the watchdog is runner's child in a group of its own
    // too, and must be known by its pid before the sampler looks for the program.
    crate::process::watchdog::ensure_started();
    std::thread::scope(|scope| {
        let runner = scope.spawn(|| {
            cmd.run(&RunOptions {
                timeout: Some(settings.duration),
                log_stem: Some(log_stem.to_owned()),
                ..RunOptions::default()
            })
        });
        let samples = sample_child(settings, || runner.is_finished());
        let finished = runner
            .join()
            .map_err(|_| anyhow!("the thread running the program panicked"))??;
        Ok(Watched { samples, finished })
    })
}

/// Samples the child from the moment it is seen until it is gone or the run has ended (a
/// process found by mistake never holds the stage). Samples are due at fixed offsets from the
/// start, so a late wake-up never shifts the ones after it.
fn sample_child(settings: &Settings, done: impl Fn() -> bool) -> Vec<Sample> {
    let looking = Instant::now();
    let pid = loop {
        if let Some(pid) = sample::own_child() {
            break pid;
        }
        if done() || looking.elapsed() > FIND_CHILD {
            return Vec::new();
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let started = Instant::now();
    let mut samples = Vec::new();
    let mut due = started;
    while !done() {
        let Some(sample) = sample::read(pid, started.elapsed().as_secs_f64()) else {
            break;
        };
        samples.push(sample);
        due += settings.interval;
        let now = Instant::now();
        // Behind schedule (a stalled machine): skip the missed slots rather than burst.
        while due <= now {
            due += settings.interval;
        }
        std::thread::sleep(due - now);
    }
    samples
}
