//! Child processes: argv vectors with explicit env, both pipes drained into logs without a
//! thread per pipe, each child in its own process group and tagged so that its whole tree,
//! detached descendants included, is killed on timeout, Ctrl-C, or runner's own death.

mod supervise;
pub mod tree;
pub mod watchdog;

use std::fmt;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use camino::{Utf8Path, Utf8PathBuf};
use nix::sys::signal::Signal;

/// Variables that steer a cargo build and so must never leak from the user's shell, or from
/// a `cargo test` that runs runner, into a stage's builds. Stages set what they need.
const BUILD_ENVIRONMENT: &[&str] = &[
    "CARGO",
    "CARGO_BUILD_RUSTFLAGS",
    "CARGO_BUILD_TARGET",
    "CARGO_BUILD_TARGET_DIR",
    "CARGO_ENCODED_RUSTDOCFLAGS",
    "CARGO_ENCODED_RUSTFLAGS",
    "CARGO_MAKEFLAGS",
    "CARGO_TARGET_DIR",
    "MAKEFLAGS",
    "MFLAGS",
    "MIRIFLAGS",
    "RUSTC",
    "RUSTC_WORKSPACE_WRAPPER",
    "RUSTC_WRAPPER",
    "RUSTDOC",
    "RUSTDOCFLAGS",
    "RUSTFLAGS",
    "RUSTUP_TOOLCHAIN",
];

/// How long the last sweep for a finished child's descendants may take.
const CLEANUP_LIMIT: Duration = Duration::from_secs(3);

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// How long runner may take to stop in order after a signal before it ends anyway: longer
/// than a group's SIGTERM-to-SIGKILL grace and the sweeps after it, short enough that a wait
/// nothing checks the flag in (a blocked open, a lock) never keeps runner alive.
const STOP_LIMIT: Duration = Duration::from_secs(15);

/// Routes Ctrl-C (and SIGTERM) to a flag that every running child's wait loop checks.
/// Children live in their own process groups, so the terminal's signal reaches only runner,
/// which then stops them in order and still writes the report. If runner has not ended
/// `STOP_LIMIT` after the signal, or a second signal comes, it exits at once (exit 2); the
/// watchdog then ends what it started.
pub fn install_interrupt_handler() -> Result<()> {
    ctrlc::set_handler(|| {
        if INTERRUPTED.swap(true, Ordering::SeqCst) {
            stop_now();
        }
        std::thread::spawn(|| {
            std::thread::sleep(STOP_LIMIT);
            stop_now();
        });
    })
    .context("cannot install the Ctrl-C handler")
}

fn stop_now() -> ! {
    eprintln!("runner: error: interrupted; stopped without finishing the report");
    std::process::exit(2);
}

pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// A command as data: program, arguments, environment changes and working directory.
#[derive(Debug, Clone)]
pub struct Cmd {
    program: String,
    args: Vec<String>,
    /// `None` removes the variable from the child's environment.
    env: Vec<(String, Option<String>)>,
    cwd: Option<Utf8PathBuf>,
}

impl Cmd {
    pub fn new(program: impl Into<String>) -> Cmd {
        Cmd {
            program: program.into(),
            args: Vec::new(),
            env: Vec::new(),
            cwd: None,
        }
    }

    #[must_use]
    pub fn arg(mut self, arg: impl Into<String>) -> Cmd {
        self.args.push(arg.into());
        self
    }

    #[must_use]
    pub fn args<I, S>(mut self, args: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    #[must_use]
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Cmd {
        let key = key.into();
        self.env.retain(|(existing, _)| *existing != key);
        self.env.push((key, Some(value.into())));
        self
    }

    #[must_use]
    pub fn unset(mut self, key: impl Into<String>) -> Cmd {
        let key = key.into();
        self.env.retain(|(existing, _)| *existing != key);
        self.env.push((key, None));
        self
    }

    /// Removes every build-steering variable; later `env` calls set the stage's own.
    #[must_use]
    pub fn unset_build_environment(mut self) -> Cmd {
        for key in BUILD_ENVIRONMENT {
            if !self.env.iter().any(|(existing, _)| existing == key) {
                self = self.unset(*key);
            }
        }
        self
    }

    #[must_use]
    pub fn cwd(mut self, dir: impl Into<Utf8PathBuf>) -> Cmd {
        self.cwd = Some(dir.into());
        self
    }

    /// The line a finding's reader pastes into a fresh shell: `cd <dir> && <command>` when
    /// the command runs somewhere in particular, every word quoted.
    pub fn pasteable(&self) -> String {
        match &self.cwd {
            Some(dir) => format!("cd {} && {self}", quote(dir.as_str())),
            None => self.to_string(),
        }
    }

    pub fn program(&self) -> &str {
        &self.program
    }

    pub fn get_args(&self) -> &[String] {
        &self.args
    }

    /// The variables this command sets (not the ones it removes).
    pub fn env_set(&self) -> impl Iterator<Item = (&str, &str)> {
        self.env
            .iter()
            .filter_map(|(key, value)| value.as_deref().map(|value| (key.as_str(), value)))
    }

    fn to_command(&self) -> Command {
        let mut command = Command::new(&self.program);
        command.args(&self.args);
        for (key, value) in &self.env {
            match value {
                Some(value) => command.env(key, value),
                None => command.env_remove(key),
            };
        }
        if let Some(dir) = &self.cwd {
            command.current_dir(dir);
        }
        command
    }

    /// Runs a short query to completion and returns its stdout; a non-zero exit is an error
    /// carrying the first line of stderr.
    pub fn output_text(&self) -> Result<String> {
        let output = self
            .to_command()
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("cannot run `{}`", self.program))?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let first = stderr
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("no output");
            bail!("`{self}` failed: {}", first.trim());
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// Runs the command with runner's own stdin, stdout and stderr and in runner's process
    /// group (so the terminal's Ctrl-C reaches it too); returns its exit code, `None` when a
    /// signal ended it.
    pub fn status_inherited(&self) -> Result<Option<i32>> {
        let status = self.to_command().status().with_context(|| {
            format!(
                "cannot run `{}` (is it installed and on PATH?)",
                self.program
            )
        })?;
        Ok(status.code())
    }

    /// Runs the command under the given limits, streaming its output into log files. The
    /// child leads its own process group and carries a tree tag, so that everything it started
    /// is gone when this returns, whether it ended, timed out or was interrupted.
    pub fn run(&self, options: &RunOptions<'_>) -> Result<Finished> {
        watchdog::ensure_started();
        let tag = tree::new_tag();
        let mut command = self.to_command();
        command
            .env(tree::TAG_VARIABLE, tree::tag_value(&tag))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let mut child = command.spawn().with_context(|| {
            format!(
                "cannot run `{}` (is it installed and on PATH?)",
                self.program
            )
        })?;
        watchdog::track(child.id());
        let supervised = supervise::supervise(&mut child, options, &tag);
        // Whatever is left of the tree goes, however the run ended (a failed log write
        // included): nothing runner started outlives the unit it belongs to.
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap_or(i32::MAX)),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = child.wait();
        tree::kill_tagged(&tag, CLEANUP_LIMIT);
        watchdog::release(child.id());
        supervised
    }
}

/// A command line that can be pasted into a fresh shell: the variables it sets, quoted; PATH
/// only where runner put its own tool folders in front (a provisioned `cargo-fuzz` is not on
/// the user's PATH), as `PATH=<folders>:"$PATH"`.
impl fmt::Display for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut words = Vec::new();
        for (key, value) in self.env_set() {
            if key == "PATH" {
                words.extend(
                    path_prefix(value).map(|prefix| format!("PATH={}:\"$PATH\"", quote(prefix))),
                );
            } else {
                words.push(format!("{key}={}", quote(value)));
            }
        }
        words.push(quote(&self.program));
        words.extend(self.args.iter().map(|arg| quote(arg)));
        f.write_str(&words.join(" "))
    }
}

/// The folders a PATH adds in front of runner's own PATH, if any.
fn path_prefix(value: &str) -> Option<&str> {
    let inherited = std::env::var("PATH").unwrap_or_default();
    let prefix = value.strip_suffix(inherited.as_str())?.strip_suffix(':')?;
    (!prefix.is_empty()).then_some(prefix)
}

/// Quotes a word for a POSIX shell when it needs it.
pub fn quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=+,@%".contains(c));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

type LineSink<'a> = Option<&'a (dyn Fn(&str) + Sync)>;

/// Limits and sinks for one run.
#[derive(Default)]
pub struct RunOptions<'a> {
    pub timeout: Option<Duration>,
    /// Asked every few milliseconds while the child runs; `Tick::Stop` ends its process tree
    /// (a per-test limit that the caller tracks from the output).
    pub on_tick: Option<&'a dyn Fn() -> Tick>,
    /// Logs go to `<stem>.out` and `<stem>.err`.
    pub log_stem: Option<Utf8PathBuf>,
    pub on_stdout: LineSink<'a>,
    pub on_stderr: LineSink<'a>,
}

impl RunOptions<'_> {
    fn log_file(&self, stream: &str) -> Option<Utf8PathBuf> {
        self.log_stem
            .as_ref()
            .map(|stem| Utf8PathBuf::from(format!("{stem}.{stream}")))
    }
}

/// What a supervisor says about a running child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tick {
    Continue,
    Stop,
}

/// How a child ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Termination {
    Exited(i32),
    /// Killed by a signal it did not handle, such as SIGSEGV or SIGABRT.
    Signalled(String),
    TimedOut(Duration),
    /// Stopped by its supervisor (`Tick::Stop`): a test ran past its own limit.
    Stopped,
    Interrupted,
}

impl Termination {
    pub fn success(&self) -> bool {
        *self == Termination::Exited(0)
    }
}

impl fmt::Display for Termination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Termination::Exited(code) => write!(f, "exit status {code}"),
            Termination::Signalled(name) => write!(f, "killed by {name}"),
            Termination::TimedOut(limit) => {
                write!(f, "timed out after {}", crate::duration::human(*limit))
            }
            Termination::Stopped => f.write_str("stopped: a test ran past its time limit"),
            Termination::Interrupted => f.write_str("interrupted"),
        }
    }
}

#[derive(Debug)]
pub struct Finished {
    pub termination: Termination,
    pub stdout: String,
    pub stderr: String,
}

/// `SIGSEGV: invalid memory reference`, the way people know these signals.
pub fn signal_name(signal: i32) -> String {
    let Ok(parsed) = Signal::try_from(signal) else {
        return format!("signal {signal}");
    };
    let meaning = match parsed {
        Signal::SIGSEGV => ": invalid memory reference",
        Signal::SIGABRT => ": process abort",
        Signal::SIGBUS => ": access to undefined memory",
        Signal::SIGILL => ": illegal instruction",
        Signal::SIGFPE => ": floating point exception",
        Signal::SIGKILL => ": killed",
        _ => "",
    };
    format!("{}{meaning}", parsed.as_str())
}

/// Makes sure a directory exists and can be written, with a one-line error when not.
pub fn ensure_writable_dir(dir: &Utf8Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create directory {dir}"))?;
    let probe = dir.join(".runner-write-probe");
    std::fs::write(&probe, b"").with_context(|| format!("directory {dir} is not writable"))?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_a_pasteable_shell_line() {
        let cmd = Cmd::new("cargo")
            .args(["test", "--", "--exact", "a b"])
            .env("MIRIFLAGS", "-Zmiri-seed=3 -Zx")
            .env("PATH", "/bin")
            .unset("RUSTFLAGS");
        assert_eq!(
            cmd.to_string(),
            "MIRIFLAGS='-Zmiri-seed=3 -Zx' cargo test -- --exact 'a b'"
        );
    }

    #[test]
    fn a_provisioned_tool_folder_stays_in_the_pasteable_line() {
        let inherited = std::env::var("PATH").unwrap_or_default();
        let cmd = Cmd::new("cargo")
            .arg("fuzz")
            .env("PATH", format!("/cache/runner tools/bin:{inherited}"));
        assert_eq!(
            cmd.to_string(),
            "PATH='/cache/runner tools/bin':\"$PATH\" cargo fuzz"
        );
    }

    #[test]
    fn a_flood_of_output_keeps_its_end_in_memory_and_everything_in_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let stem = Utf8PathBuf::from_path_buf(dir.path().join("flood")).unwrap();
        // About 80 MiB of lines, then the line a parser needs.
        let body = "yes 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde \
                    | head -c 83886080; echo; echo the end";
        let finished = Cmd::new(script(&dir, body))
            .run(&RunOptions {
                log_stem: Some(stem.clone()),
                ..RunOptions::default()
            })
            .unwrap();
        assert!(
            finished.stdout.len() <= 64 * 1024 * 1024,
            "{}",
            finished.stdout.len()
        );
        assert!(finished.stdout.ends_with("the end\n"));
        assert!(finished.stdout.starts_with("0123"), "kept whole lines");
        let logged = std::fs::metadata(format!("{stem}.out")).unwrap().len();
        assert!(
            logged > 80 * 1024 * 1024,
            "the log has everything: {logged}"
        );
    }

    /// Writes an executable script, so tests exercise real process trees without shell strings.
    fn script(dir: &tempfile::TempDir, body: &str) -> String {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.path().join("script");
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path.to_str().unwrap().to_owned()
    }

    /// Gone, or a zombie waiting for a reaper (it runs no code any more).
    fn process_gone(pid: i32) -> bool {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => true,
            Ok(stat) => stat
                .rsplit(") ")
                .next()
                .is_some_and(|rest| rest.starts_with('Z')),
        }
    }

    #[test]
    fn captures_both_streams_and_exit_code() {
        let dir = tempfile::tempdir().unwrap();
        let stem = Utf8PathBuf::from_path_buf(dir.path().join("log")).unwrap();
        let finished = Cmd::new(script(&dir, "echo out; echo err >&2; exit 3"))
            .run(&RunOptions {
                log_stem: Some(stem.clone()),
                ..RunOptions::default()
            })
            .unwrap();
        assert_eq!(finished.termination, Termination::Exited(3));
        assert_eq!(finished.stdout, "out\n");
        assert_eq!(finished.stderr, "err\n");
        assert_eq!(
            std::fs::read_to_string(format!("{stem}.err")).unwrap(),
            "err\n"
        );
    }

    #[test]
    fn timeout_kills_the_whole_group() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("grandchild.pid");
        let body = format!("sleep 300 & echo $! > {}; wait", pidfile.display());
        let finished = Cmd::new(script(&dir, &body))
            .run(&RunOptions {
                timeout: Some(Duration::from_millis(500)),
                ..RunOptions::default()
            })
            .unwrap();
        assert!(matches!(finished.termination, Termination::TimedOut(_)));
        let pid: i32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        std::thread::sleep(Duration::from_millis(100));
        assert!(process_gone(pid), "grandchild {pid} survived the timeout");
    }

    #[test]
    fn a_detached_daemon_holding_the_pipe_neither_holds_runner_nor_survives() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("daemon.pid");
        // The daemon leaves the group and the session, and keeps stdout open.
        let body = format!(
            "setsid sh -c 'echo $$ > {}; exec sleep 25' & sleep 0.3; echo done",
            pidfile.display()
        );
        let started = std::time::Instant::now();
        let finished = Cmd::new(script(&dir, &body))
            .run(&RunOptions {
                timeout: Some(Duration::from_secs(6)),
                ..RunOptions::default()
            })
            .unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "held for {:?}",
            started.elapsed()
        );
        assert_eq!(finished.termination, Termination::Exited(0));
        assert_eq!(finished.stdout, "done\n");
        let pid: i32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert!(process_gone(pid), "daemon {pid} survived");
    }

    #[test]
    fn a_supervisor_stops_the_child() {
        let dir = tempfile::tempdir().unwrap();
        let finished = Cmd::new(script(&dir, "echo started; sleep 30"))
            .run(&RunOptions {
                on_tick: Some(&|| Tick::Stop),
                ..RunOptions::default()
            })
            .unwrap();
        assert_eq!(finished.termination, Termination::Stopped);
    }

    #[test]
    fn signals_are_named() {
        assert_eq!(signal_name(11), "SIGSEGV: invalid memory reference");
        let dir = tempfile::tempdir().unwrap();
        let finished = Cmd::new(script(&dir, "kill -SEGV $$"))
            .run(&RunOptions::default())
            .unwrap();
        assert_eq!(
            finished.termination,
            Termination::Signalled("SIGSEGV: invalid memory reference".into())
        );
    }
}
