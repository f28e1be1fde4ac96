//! The cargo-fuzz command lines, shared by `plan` and `run` so what runner prints is what it
//! runs: list, build, run (with the libFuzzer options), replay, cmin, tmin, fmt and the repro
//! command.

use std::time::Duration;

use camino::{Utf8Path, Utf8PathBuf};

use super::discover::FuzzTarget;
use super::settings::Settings;
use crate::plan::Context;
use crate::process::Cmd;

/// `cargo +<pinned> fuzz <subcommand> --fuzz-dir <dir>` from the workspace root.
fn cargo_fuzz(ctx: &Context, subcommand: &str, fuzz_dir: &Utf8Path) -> Cmd {
    ctx.toolchain
        .cargo()
        .args(["fuzz", subcommand, "--fuzz-dir", fuzz_dir.as_str()])
        .cwd(ctx.workspace.root.clone())
}

/// A subcommand that builds: runner's target dir, the sanitizer, and the workspace's flags.
fn cargo_fuzz_build(
    ctx: &Context,
    settings: &Settings,
    subcommand: &str,
    fuzz_dir: &Utf8Path,
) -> Cmd {
    // cargo-fuzz builds coverage binaries into the given target dir too, where they would
    // replace the fuzzing build: they get a folder of their own.
    let target_dir = if subcommand == "coverage" {
        coverage_target_dir(settings)
    } else {
        settings.target_dir.clone()
    };
    let mut cmd = cargo_fuzz(ctx, subcommand, fuzz_dir)
        .args(["--target-dir", target_dir.as_str()])
        .args(["--sanitizer", settings.sanitizer.as_str()]);
    // cargo-fuzz appends RUSTFLAGS to its own flags, and setting them hides the workspace's
    // cargo config flags, so both go in together.
    let mut flags =
        crate::cargo_config::rustflags(&ctx.workspace.root, &ctx.host).unwrap_or_default();
    flags.extend(ctx.workspace.config.rustflags.iter().cloned());
    if subcommand == "coverage" {
        // cargo-fuzz instruments lines and regions; branches need asking for.
        flags.push("-Zcoverage-options=branch".to_owned());
    }
    if !flags.is_empty() {
        cmd = cmd.env("RUSTFLAGS", flags.join(" "));
    }
    if let Some((crates, runner)) = &settings.instrument_only {
        cmd = cmd
            .env("RUSTC_WRAPPER", runner.as_str())
            .env(super::instrument::CRATES_VAR, crates.join(","));
    }
    cmd
}

pub fn version(ctx: &Context) -> Cmd {
    ctx.toolchain.cargo().args(["fuzz", "--version"])
}

pub fn list(ctx: &Context, fuzz_dir: &Utf8Path) -> Cmd {
    cargo_fuzz(ctx, "list", fuzz_dir)
}

/// Builds one target, or every target of the project when `name` is `None`.
pub fn build(ctx: &Context, settings: &Settings, fuzz_dir: &Utf8Path, name: Option<&str>) -> Cmd {
    cargo_fuzz_build(ctx, settings, "build", fuzz_dir).args(name)
}

/// The options every libFuzzer process gets: a per-input timeout (libFuzzer's own default
/// is 20 minutes) and the memory limit, so hangs and OOMs become findings.
fn limits(settings: &Settings) -> Vec<String> {
    vec![
        format!("-timeout={}", settings.input_timeout.as_secs()),
        format!("-rss_limit_mb={}", settings.rss_limit_mb),
    ]
}

/// How long one libFuzzer process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Length {
    /// Mutates for at most this long.
    Fuzz(Duration),
    /// Runs each input of the corpus folders once, without mutation (`-runs=0`).
    ReplayOnly,
}

/// One libFuzzer process: the writable folder first (libFuzzer adds new inputs to the first
/// folder only), then the folders it only reads; artifacts into runner's stage folder.
pub fn run(
    ctx: &Context,
    settings: &Settings,
    target: &FuzzTarget,
    corpora: &[&Utf8Path],
    artifacts: &Utf8Path,
    length: Length,
) -> Cmd {
    let mut cmd = cargo_fuzz_build(ctx, settings, "run", &target.fuzz_dir)
        .arg(target.name.as_str())
        .args(corpora.iter().map(ToString::to_string))
        .arg("--")
        .args(limits(settings))
        .arg(match length {
            Length::Fuzz(time) => format!("-max_total_time={}", time.as_secs().max(1)),
            Length::ReplayOnly => "-runs=0".to_owned(),
        })
        .arg("-print_final_stats=1")
        // libFuzzer joins prefix and file name as strings: the slash matters.
        .arg(format!("-artifact_prefix={artifacts}/"));
    if let Some(dictionary) = &target.dictionary {
        cmd = cmd.arg(format!("-dict={dictionary}"));
    }
    if let Some(seed) = settings.seed {
        cmd = cmd.arg(format!("-seed={seed}"));
    }
    if let Some(max_len) = settings.max_len {
        cmd = cmd.arg(format!("-max_len={max_len}"));
    }
    cmd.args(settings.flags.iter().cloned())
}

/// Runs one saved input once (a registered crash), its crash written to `artifacts`.
pub fn replay_input(
    ctx: &Context,
    settings: &Settings,
    target: &FuzzTarget,
    input: &Utf8Path,
    artifacts: &Utf8Path,
) -> Cmd {
    repro(ctx, settings, target, input).arg(format!("-artifact_prefix={artifacts}/"))
}

/// Minimizes a corpus in place (`cargo fuzz cmin`: libFuzzer's `-merge=1` into a fresh
/// folder that then replaces it).
pub fn cmin(ctx: &Context, settings: &Settings, target: &FuzzTarget, corpus: &Utf8Path) -> Cmd {
    cargo_fuzz_build(ctx, settings, "cmin", &target.fuzz_dir)
        .arg(target.name.as_str())
        .arg(corpus.as_str())
        .arg("--")
        .args(limits(settings))
}

/// Builds the target with coverage instrumentation and runs every input of the corpora once,
/// merging the profiles into `coverage_profile`.
pub fn coverage(
    ctx: &Context,
    settings: &Settings,
    target: &FuzzTarget,
    corpora: &[&Utf8Path],
) -> Cmd {
    cargo_fuzz_build(ctx, settings, "coverage", &target.fuzz_dir)
        .arg(target.name.as_str())
        .args(corpora.iter().map(ToString::to_string))
        .arg("--")
        .args(limits(settings))
}

/// The build folder of the coverage-instrumented binaries, beside the fuzzing build's.
fn coverage_target_dir(settings: &Settings) -> Utf8PathBuf {
    let name = settings.target_dir.file_name().unwrap_or("fuzz");
    settings
        .target_dir
        .with_file_name(format!("{name}-coverage"))
}

/// Where `cargo fuzz coverage` puts the instrumented binary.
pub fn coverage_binary(settings: &Settings, target: &FuzzTarget, host: &str) -> Utf8PathBuf {
    coverage_target_dir(settings)
        .join(host)
        .join("release")
        .join(&target.name)
}

/// Where `cargo fuzz coverage` merges the profiles (inside the cargo-fuzz project; it has no
/// option for another place).
pub fn coverage_profile(target: &FuzzTarget) -> Utf8PathBuf {
    target
        .fuzz_dir
        .join("coverage")
        .join(&target.name)
        .join("coverage.profdata")
}

/// Replays exactly one artifact: the command a finding's reader pastes.
pub fn repro(ctx: &Context, settings: &Settings, target: &FuzzTarget, artifact: &Utf8Path) -> Cmd {
    cargo_fuzz_build(ctx, settings, "run", &target.fuzz_dir)
        .arg(target.name.as_str())
        .arg(artifact.as_str())
        .arg("--")
        .args(limits(settings))
}

/// Minimizes a crashing input into `output`, beside the original. libFuzzer rewrites
/// `output` after every successful step, so stopping it early still leaves the smallest
/// input found so far.
pub fn tmin(
    ctx: &Context,
    settings: &Settings,
    target: &FuzzTarget,
    artifact: &Utf8Path,
    output: &Utf8Path,
) -> Cmd {
    // Each minimization step crashes twice, and symbolizing those stacks (the sanitizer's
    // and Rust's backtrace) is nine tenths of the time; the steps only compare crashes.
    let mut asan_options = std::env::var("ASAN_OPTIONS").unwrap_or_default();
    if !asan_options.is_empty() {
        asan_options.push(':');
    }
    asan_options.push_str("symbolize=0");
    cargo_fuzz_build(ctx, settings, "tmin", &target.fuzz_dir)
        .env("ASAN_OPTIONS", asan_options)
        .env("RUST_BACKTRACE", "0")
        .arg(target.name.as_str())
        .arg(artifact.as_str())
        .arg("--")
        .args(limits(settings))
        .arg(format!("-exact_artifact_path={output}"))
}

/// Prints the input as the target sees it (the `Debug` form of an `Arbitrary` type).
pub fn fmt(ctx: &Context, settings: &Settings, target: &FuzzTarget, input: &Utf8Path) -> Cmd {
    cargo_fuzz_build(ctx, settings, "fmt", &target.fuzz_dir)
        .arg(target.name.as_str())
        .arg(input.as_str())
}
