//! Every command the stage runs, as argv and environment, shared by `plan` and `run` so that
//! what `runner plan` prints is what runs: the build, one test per process, the doctests,
//! and the repro command a finding carries.

use camino::Utf8PathBuf;

use super::sanitizer::Sanitizer;
use super::settings::{rustflags, Settings};
use crate::inventory::{TestUnit, UnitKind};
use crate::plan::Context;
use crate::process::Cmd;
use crate::stage_name::StageName;

fn target_dir(ctx: &Context, sanitizer: Sanitizer) -> Utf8PathBuf {
    ctx.workspace.stage_target_dir(&sanitizer.target_dir_name())
}

/// `cargo test` of the pinned nightly for the host, built with the sanitizer at its
/// opt-level in its own target dir. The explicit `--target` keeps build scripts and
/// proc-macros uninstrumented; RUSTDOCFLAGS mirrors RUSTFLAGS because doctests link against
/// the instrumented crates.
fn cargo_test(ctx: &Context, settings: &Settings, sanitizer: Sanitizer) -> Cmd {
    let flags = rustflags(ctx, sanitizer);
    let mut cmd = ctx
        .toolchain
        .cargo()
        .args([
            "test",
            "--manifest-path",
            ctx.workspace.manifest_path.as_str(),
        ])
        .args(["--target", ctx.host.as_str()]);
    if sanitizer.needs_build_std() {
        cmd = cmd.arg("-Zbuild-std");
    }
    if let Some(level) = settings.opt_level_for(sanitizer) {
        cmd = level.apply(cmd);
    }
    cmd.args(ctx.cargo.build_args())
        .env("CARGO_TARGET_DIR", target_dir(ctx, sanitizer).as_str())
        .env("RUSTFLAGS", flags.clone())
        .env("RUSTDOCFLAGS", flags)
        .cwd(ctx.workspace.root.clone())
}

fn with_runtime_environment(mut cmd: Cmd, settings: &Settings, sanitizer: Sanitizer) -> Cmd {
    for (key, value) in settings.runtime_environment(sanitizer) {
        cmd = match value {
            Some(value) => cmd.env(key, value),
            None => cmd.unset(key),
        };
    }
    cmd
}

/// Builds every test harness without running it; the JSON messages name the executables.
pub fn build(ctx: &Context, settings: &Settings, sanitizer: Sanitizer) -> Cmd {
    cargo_test(ctx, settings, sanitizer)
        .args(ctx.package_selection(StageName::Sanitizers))
        .args(["--no-run", "--message-format=json"])
}

/// Some tests of a harness, one after another in one process, with libtest's JSON events
/// (a sanitizer abort ends the process; the kernel resumes after it). The harness runs where
/// `cargo test` would run it: in its package's directory.
pub fn tests(
    ctx: &Context,
    settings: &Settings,
    sanitizer: Sanitizer,
    executable: &str,
    package: &str,
    tests: &[String],
) -> Cmd {
    let mut cmd = Cmd::new(executable)
        .args(crate::libtest::JSON_EVENTS)
        .arg("--exact")
        .args(tests.iter().cloned())
        .arg("--test-threads=1");
    // cargo's variables (`CARGO_MANIFEST_DIR` and the rest) come from the kernel.
    if let Some(dir) = ctx.workspace.package_dir(package) {
        cmd = cmd.cwd(dir);
    }
    with_runtime_environment(cmd, settings, sanitizer)
}

/// A package's doctests through cargo: rustdoc runs each doctest in a process of its own
/// already, so one command covers them all.
pub fn doctests(ctx: &Context, settings: &Settings, sanitizer: Sanitizer, unit: &TestUnit) -> Cmd {
    let cmd = cargo_test(ctx, settings, sanitizer)
        .args(unit.selection())
        .arg("--")
        .args(crate::libtest::JSON_EVENTS)
        .arg(format!("--test-threads={}", ctx.jobs))
        .args(ctx.filters.iter().cloned());
    with_runtime_environment(cmd, settings, sanitizer)
}

/// What a person runs to see one finding again, with the runtime's full report.
pub fn repro(
    ctx: &Context,
    settings: &Settings,
    sanitizer: Sanitizer,
    unit: &TestUnit,
    test: &str,
) -> Cmd {
    let cmd = cargo_test(ctx, settings, sanitizer)
        .args(unit.selection())
        .arg("--");
    let cmd = if unit.kind == UnitKind::Doc {
        cmd.arg(test)
    } else {
        cmd.args(["--exact", test])
    };
    with_runtime_environment(cmd, settings, sanitizer)
}
