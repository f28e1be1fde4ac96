//! The commands the stage runs, built once for both `plan` and `run`: the cargo builds of
//! the tests and the configured programs, and memcheck around one job.

use camino::{Utf8Path, Utf8PathBuf};

use super::job::Job;
use super::settings::{ProgramConfig, Settings};
use crate::plan::Context;
use crate::process::Cmd;
use crate::stage_name::StageName;

/// Runner's memcheck options; the user's come after them and may override them.
const MEMCHECK: &[&str] = &[
    "--tool=memcheck",
    "--leak-check=full",
    "--show-leak-kinds=definite,indirect,possible",
    "--track-origins=yes",
    // Rust's allocation paths are deep; 12 callers often end before the user's frame.
    "--num-callers=30",
    // A test that forks without exec would otherwise write into the same XML file.
    "--child-silent-after-fork=yes",
    "--gen-suppressions=all",
    // valgrind runs one thread at a time; without fair scheduling a thread spinning for
    // another (a lock-free queue's test) can starve it for minutes.
    "--fair-sched=yes",
    // memcheck's own default of 500 threads stops it ("the 'impossible' happened") on tests
    // that spawn a thousand threads; a slot costs it a few kilobytes.
    "--max-threads=4096",
];

/// The exit code of a repro command when memcheck reports an error.
pub const REPRO_EXIT_CODE: u8 = 99;

/// valgrind's words when it stops on a limit or an error of its own: (what it printed, what
/// the report says).
const BREAKDOWNS: &[(&str, &str)] = &[
    (
        "Max number of threads is too low",
        "its thread limit; raise it with config `valgrind.flags = [\"--max-threads=N\"]`",
    ),
    ("the 'impossible' happened", "an internal error of valgrind"),
    (
        "Valgrind's memory management: out of memory",
        "valgrind ran out of memory",
    ),
];

/// Why valgrind stopped on its own account, from its text log; `None` when it did not.
pub fn breakdown(text_log: &str) -> Option<&'static str> {
    BREAKDOWNS
        .iter()
        .find(|(printed, _)| text_log.contains(printed))
        .map(|(_, meaning)| *meaning)
}

/// valgrind with runner's options. With `capture`, memcheck writes its XML to
/// `<capture>.xml` and its text log (where valgrind 3.19 puts file descriptors) to
/// `<capture>.log`; without, it prints for a person, as in a repro command.
fn memcheck(settings: &Settings, capture: Option<&Utf8Path>) -> Cmd {
    let mut cmd = Cmd::new("valgrind").args(MEMCHECK.iter().copied());
    if settings.track_fds {
        cmd = cmd.arg("--track-fds=yes");
    }
    cmd = cmd.arg(format!("--suppressions={}", settings.std_suppressions));
    for file in &settings.suppressions {
        cmd = cmd.arg(format!("--suppressions={file}"));
    }
    match capture {
        Some(stem) => {
            cmd = cmd.args([
                "--xml=yes".to_owned(),
                format!("--xml-file={stem}.xml"),
                format!("--log-file={stem}.log"),
            ]);
        }
        // A pasted repro must say by its exit code whether the error is still there (a test
        // that passes despite an invalid read otherwise exits 0).
        None => cmd = cmd.arg(format!("--error-exitcode={REPRO_EXIT_CODE}")),
    }
    cmd.args(settings.user_flags.iter().cloned())
}

/// One job's command: the program with its arguments under memcheck, in its directory.
pub fn job_command(settings: &Settings, job: &Job, capture: Option<&Utf8Path>) -> Cmd {
    memcheck(settings, capture)
        .arg(job.executable.as_str())
        .args(job.arguments())
        .cwd(job.cwd.clone())
}

/// Some tests of a harness under memcheck, one after another in one process with libtest's
/// JSON events, capturing memcheck's XML and text log next to `stem`.
pub fn tests_command(
    settings: &Settings,
    executable: &Utf8Path,
    cwd: &Utf8Path,
    tests: &[String],
    stem: &Utf8Path,
) -> Cmd {
    memcheck(settings, Some(stem))
        .arg(executable.as_str())
        .args(crate::libtest::JSON_EVENTS)
        .args(["--test-threads=1", "--exact"])
        .args(tests.iter().cloned())
        .cwd(cwd.to_owned())
}

/// A line a person can paste to see one finding again, with valgrind's own report and the
/// suppressions it would print.
pub fn repro_command(settings: &Settings, job: &Job) -> String {
    job_command(settings, job, None).pasteable()
}

/// `cargo` of the pinned toolchain in the stage's own target dir, at the configured
/// opt-level if any.
fn stage_cargo(ctx: &Context, settings: &Settings) -> Cmd {
    let cmd = ctx.stage_cargo(&settings.target_dir);
    match settings.opt_level {
        Some(level) => level.apply(cmd),
        None => cmd,
    }
}

/// `cargo test --no-run`: the plain debug build the other stages' tests also get.
pub fn build_tests_command(ctx: &Context, settings: &Settings) -> Cmd {
    stage_cargo(ctx, settings)
        .args([
            "test",
            "--no-run",
            "--message-format=json",
            "--manifest-path",
        ])
        .arg(ctx.workspace.manifest_path.as_str())
        .args(ctx.package_selection(StageName::Valgrind))
        .args(ctx.cargo.build_args())
}

/// `cargo build` of the binaries the config names.
pub fn build_programs_command(ctx: &Context, settings: &Settings) -> Cmd {
    let mut cmd = stage_cargo(ctx, settings)
        .args(["build", "--message-format=json", "--manifest-path"])
        .arg(ctx.workspace.manifest_path.as_str())
        .args(ctx.cargo.build_args());
    for program in &settings.programs {
        if let Some(package) = &program.package {
            cmd = cmd.args(["--package", package.as_str()]);
        }
        cmd = cmd.args(["--bin", program.bin.as_str()]);
    }
    cmd
}

/// The executable cargo reported for a configured binary (of the named package, if any).
pub fn program_executable(
    ctx: &Context,
    messages: &str,
    program: &ProgramConfig,
) -> Option<Utf8PathBuf> {
    use cargo_metadata::Message;
    Message::parse_stream(messages.as_bytes())
        .flatten()
        .find_map(|message| {
            let Message::CompilerArtifact(artifact) = message else {
                return None;
            };
            let is_bin = artifact.target.name == program.bin
                && artifact.target.kind.iter().any(|k| k.to_string() == "bin");
            let in_package = program.package.as_ref().is_none_or(|package| {
                ctx.workspace.member_of(&artifact.package_id.repr).as_ref() == Some(package)
            });
            if is_bin && in_package {
                artifact.executable
            } else {
                None
            }
        })
}
