//! Supervising one child: both pipes read without blocking in one loop that also watches the
//! exit, the limits and Ctrl-C, so a pipe held open by a detached descendant can never hold
//! runner past the child's end.

use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use camino::Utf8PathBuf;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

use super::{interrupted, signal_name, tree, Finished, LineSink, RunOptions, Termination, Tick};

/// How long a group gets between SIGTERM and SIGKILL.
const GRACE: Duration = Duration::from_secs(2);
/// How often limits are checked while the child is quiet.
const POLL_MS: u16 = 20;
/// How much of one stream is kept in memory for the parsers; the log file keeps everything.
/// Past it the oldest half is dropped, so a tool that prints without end cannot exhaust the
/// machine, and the end of the output (where a crash is reported) is always there.
const KEPT_BYTES: usize = 64 * 1024 * 1024;

/// After the child exited, how long its pipes may stay open before whoever holds them (a
/// descendant that left the group) is killed, and then before reading is given up.
const PIPE_GRACE: Duration = Duration::from_millis(500);

/// One of the child's output pipes, read line by line into a log, a sink and memory.
struct Stream<'a, R> {
    pipe: R,
    log: Option<(Utf8PathBuf, File)>,
    sink: LineSink<'a>,
    pending: Vec<u8>,
    collected: String,
    closed: bool,
}

impl<'a, R: Read + AsFd> Stream<'a, R> {
    fn new(pipe: R, log: Option<Utf8PathBuf>, sink: LineSink<'a>) -> Result<Self> {
        let flags = fcntl(pipe.as_fd(), FcntlArg::F_GETFL).context("cannot read pipe flags")?;
        let flags = OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK;
        fcntl(pipe.as_fd(), FcntlArg::F_SETFL(flags)).context("cannot make a pipe non-blocking")?;
        let log = match log {
            Some(path) => {
                // A fresh file, never one a planted symlink points at (O_EXCL does not
                // follow it): the log folder is inside the report folder runner owns.
                let _ = std::fs::remove_file(&path);
                let file = File::options()
                    .write(true)
                    .create_new(true)
                    .open(&path)
                    .with_context(|| format!("cannot create log {path}"))?;
                Some((path, file))
            }
            None => None,
        };
        Ok(Stream {
            pipe,
            log,
            sink,
            pending: Vec::new(),
            collected: String::new(),
            closed: false,
        })
    }

    /// Reads what is there now, without waiting.
    fn read_available(&mut self) -> Result<()> {
        let mut buffer = [0u8; 16 * 1024];
        while !self.closed {
            match self.pipe.read(&mut buffer) {
                Ok(0) => {
                    self.closed = true;
                    self.flush_partial()?;
                }
                Ok(read) => {
                    self.pending.extend_from_slice(&buffer[..read]);
                    self.take_lines()?;
                }
                Err(error) if error.kind() == ErrorKind::WouldBlock => break,
                Err(error) if error.kind() == ErrorKind::Interrupted => {}
                Err(error) => return Err(error).context("cannot read the child's output"),
            }
        }
        Ok(())
    }

    fn take_lines(&mut self) -> Result<()> {
        while let Some(end) = self.pending.iter().position(|byte| *byte == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=end).collect();
            self.emit(&line)?;
        }
        Ok(())
    }

    fn flush_partial(&mut self) -> Result<()> {
        if !self.pending.is_empty() {
            let rest = std::mem::take(&mut self.pending);
            self.emit(&rest)?;
        }
        Ok(())
    }

    fn emit(&mut self, line: &[u8]) -> Result<()> {
        if let Some((path, file)) = self.log.as_mut() {
            file.write_all(line)
                .with_context(|| format!("cannot write log {path}"))?;
        }
        let text = String::from_utf8_lossy(line);
        if let Some(sink) = self.sink {
            sink(text.trim_end_matches(['\n', '\r']));
        }
        self.collected.push_str(&text);
        if self.collected.len() > KEPT_BYTES {
            let mut cut = self.collected.len() - KEPT_BYTES / 2;
            while !self.collected.is_char_boundary(cut) {
                cut += 1;
            }
            // Whole lines only: parsers read line by line.
            let cut = self.collected[cut..]
                .find('\n')
                .map_or(cut, |at| cut + at + 1);
            self.collected.drain(..cut);
        }
        Ok(())
    }
}

pub(super) fn supervise(
    child: &mut Child,
    options: &RunOptions<'_>,
    tag: &str,
) -> Result<Finished> {
    let stdout = child.stdout.take().context("child stdout was not piped")?;
    let stderr = child.stderr.take().context("child stderr was not piped")?;
    let mut out = Stream::new(stdout, options.log_file("out"), options.on_stdout)?;
    let mut err = Stream::new(stderr, options.log_file("err"), options.on_stderr)?;
    let group = Pid::from_raw(i32::try_from(child.id()).context("child pid out of range")?);
    let started = Instant::now();
    let mut ended: Option<(Termination, Instant)> = None;
    let mut descendants_killed = false;
    let termination = loop {
        wait_for_output(&out, &err);
        out.read_available()?;
        err.read_available()?;
        let Some((termination, at)) = &ended else {
            if let Some(termination) = check(child, options, started, group)? {
                // Whatever the child left in its group (cargo's grandchildren) goes too, so
                // no orphan keeps running or holds the pipes open.
                let _ = killpg(group, Signal::SIGKILL);
                ended = Some((termination, Instant::now()));
            }
            continue;
        };
        if out.closed && err.closed {
            break termination.clone();
        }
        // Someone outside the group (a `setsid` daemon) still holds the pipes: kill the
        // tree, then stop reading if even that did not close them.
        if at.elapsed() >= PIPE_GRACE && !descendants_killed {
            tree::kill_tagged(tag, PIPE_GRACE);
            descendants_killed = true;
        } else if at.elapsed() >= PIPE_GRACE * 3 {
            break termination.clone();
        }
    };
    Ok(Finished {
        termination,
        stdout: out.collected,
        stderr: err.collected,
    })
}

/// Waits up to a poll period for either pipe to have data (or close).
fn wait_for_output<A: AsFd, B: AsFd>(out: &Stream<'_, A>, err: &Stream<'_, B>) {
    let mut fds = Vec::with_capacity(2);
    if !out.closed {
        fds.push(PollFd::new(out.pipe.as_fd(), PollFlags::POLLIN));
    }
    if !err.closed {
        fds.push(PollFd::new(err.pipe.as_fd(), PollFlags::POLLIN));
    }
    if fds.is_empty() {
        std::thread::sleep(Duration::from_millis(u64::from(POLL_MS)));
    } else {
        // An error (EINTR) only shortens the wait.
        let _ = poll(&mut fds, PollTimeout::from(POLL_MS));
    }
}

/// How the child ended, if it did, or why it must be stopped now.
fn check(
    child: &mut Child,
    options: &RunOptions<'_>,
    started: Instant,
    group: Pid,
) -> Result<Option<Termination>> {
    if let Some(status) = child.try_wait()? {
        return Ok(Some(termination_of(status)));
    }
    let reason = if interrupted() {
        Termination::Interrupted
    } else if options
        .timeout
        .is_some_and(|limit| started.elapsed() >= limit)
    {
        Termination::TimedOut(options.timeout.unwrap_or_default())
    } else if options.on_tick.is_some_and(|tick| tick() == Tick::Stop) {
        Termination::Stopped
    } else {
        return Ok(None);
    };
    stop_group(child, group)?;
    Ok(Some(reason))
}

fn termination_of(status: ExitStatus) -> Termination {
    match (status.code(), status.signal()) {
        (Some(code), _) => Termination::Exited(code),
        (None, Some(signal)) => Termination::Signalled(signal_name(signal)),
        (None, None) => Termination::Signalled("an unknown signal".to_owned()),
    }
}

/// SIGTERM to the whole group, a grace period, then SIGKILL.
fn stop_group(child: &mut Child, group: Pid) -> Result<()> {
    let _ = killpg(group, Signal::SIGTERM);
    let deadline = Instant::now() + GRACE;
    while Instant::now() < deadline {
        if child.try_wait()?.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(u64::from(POLL_MS)));
    }
    let _ = killpg(group, Signal::SIGKILL);
    child.wait()?;
    Ok(())
}
