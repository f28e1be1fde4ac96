//! A guard that outlives runner for a moment: a copy of the runner binary, in its own process
//! group, reading a pipe whose other end only runner holds. When runner ends for any reason
//! (including SIGKILL, which no handler sees) the pipe closes and the watchdog kills every
//! process tree runner started, then exits. A tree is found three ways, since a tool may
//! replay an older environment (cargo-miri runs the interpreter with the environment of the
//! run that built the harness, whose tag is another run's): the process groups runner tells
//! it over the pipe, runner's descendants as it last saw them in `/proc`, and the tag.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
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

/// How often the watchdog notes runner's descendants while runner lives.
const LOOK_EVERY_MS: u16 = 300;

/// Tells the watchdog that `group` (a child's process group) is runner's until `release`.
pub fn track(group: u32) {
    send(&format!("+{group}\n"));
}

/// The group is gone (its leader reaped and the group killed): its number may be reused.
pub fn release(group: u32) {
    send(&format!("-{group}\n"));
}

fn send(line: &str) {
    if let Some(Some((_, pipe))) = GUARD.get() {
        // A watchdog that is gone costs only the clean-up after a SIGKILL.
        let _ = (&*pipe).write_all(line.as_bytes());
    }
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
    let mut groups = BTreeSet::new();
    let mut descendants = BTreeMap::new();
    let mut pending = Vec::new();
    let mut buffer = [0u8; 4096];
    let mut stdin = std::io::stdin().lock();
    let mut looked = std::time::Instant::now();
    loop {
        // On a schedule, not only when the pipe is quiet: a run that starts units all the
        // time keeps it busy.
        if looked.elapsed() >= Duration::from_millis(u64::from(LOOK_EVERY_MS)) {
            super::tree::note_descendants(runner, &mut descendants);
            looked = std::time::Instant::now();
        }
        let ready = {
            use std::os::fd::AsFd;
            let mut fds = [nix::poll::PollFd::new(
                stdin.as_fd(),
                nix::poll::PollFlags::POLLIN,
            )];
            nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(LOOK_EVERY_MS))
        };
        match ready {
            Ok(0) | Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => break,
            Ok(_) => {}
        }
        // End of file (runner is gone) or an error: either way runner no longer holds it.
        let read = match stdin.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(read) => read,
        };
        pending.extend_from_slice(&buffer[..read]);
        while let Some(end) = pending.iter().position(|byte| *byte == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line);
            let line = line.trim();
            if let Some(group) = line.strip_prefix('+').and_then(|g| g.parse::<u32>().ok()) {
                groups.insert(group);
            } else if let Some(group) = line.strip_prefix('-').and_then(|g| g.parse::<u32>().ok()) {
                groups.remove(&group);
            }
        }
    }
    super::tree::kill_groups(&groups);
    super::tree::kill_noted(&descendants);
    super::tree::kill_runner_trees(runner, SWEEP_LIMIT);
    // What a group's members started after the first kill, outside the group.
    super::tree::kill_groups(&groups);
    Some(std::process::ExitCode::SUCCESS)
}
