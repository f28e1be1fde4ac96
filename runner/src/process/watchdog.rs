//! A guard that outlives runner for a moment: a copy of the runner binary, in its own process
//! group, blocked on a pipe whose other end only runner holds. When runner ends for any reason
//! (including SIGKILL, which no handler sees) the pipe closes and the watchdog kills every
//! process tree runner started, then exits.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

/// The hidden first argument that turns the runner binary into a watchdog.
pub const ARGUMENT: &str = "__runner-watchdog";

/// How long the watchdog keeps sweeping after runner is gone.
const SWEEP_LIMIT: Duration = Duration::from_secs(4);

static ENABLED: AtomicBool = AtomicBool::new(false);
/// The write end of the pipe, held (never written) until runner's process ends.
static GUARD: OnceLock<Option<(u32, ChildStdin)>> = OnceLock::new();

/// Lets the process start a watchdog before its first child. Only the runner binary does:
/// a test harness or benchmark linking the library is not a runner binary to re-execute.
pub fn enable() {
    ENABLED.store(true, Ordering::SeqCst);
}

/// Starts the watchdog once, before the first child; failing to start it costs only the
/// clean-up after a SIGKILL, so the run goes on.
pub fn ensure_started() {
    if !ENABLED.load(Ordering::SeqCst) {
        return;
    }
    GUARD.get_or_init(|| {
        let exe = std::env::current_exe().ok()?;
        let mut child = Command::new(exe)
            .arg(ARGUMENT)
            .arg(std::process::id().to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own group: a Ctrl-C on the terminal, or a kill of runner's group, leaves it
            // alive to clean up after runner.
            .process_group(0)
            .spawn()
            .ok()?;
        Some((child.id(), child.stdin.take()?))
    });
}

/// The watchdog's process id, once it runs: it is runner's child but none of the analysis.
pub fn pid() -> Option<u32> {
    GUARD
        .get()
        .and_then(|guard| guard.as_ref().map(|(pid, _)| *pid))
}

/// When the process was started as a watchdog, serves and returns the exit code.
pub fn serve_if_asked() -> Option<std::process::ExitCode> {
    let mut args = std::env::args().skip(1);
    if args.next().as_deref() != Some(ARGUMENT) {
        return None;
    }
    let runner = args.next().and_then(|pid| pid.parse::<u32>().ok())?;
    let mut sink = [0u8; 64];
    // Returns at end of file (runner is gone) or on an error; either way runner is not there
    // to hold the pipe any more.
    while let Ok(read) = std::io::stdin().read(&mut sink) {
        if read == 0 {
            break;
        }
    }
    super::tree::kill_runner_trees(runner, SWEEP_LIMIT);
    Some(std::process::ExitCode::SUCCESS)
}
