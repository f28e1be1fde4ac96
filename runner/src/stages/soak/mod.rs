//! Soak stage: a configured program runs for a set duration while runner samples its
//! resident memory, open file descriptors and threads from `/proc`; the growth rates
//! fitted by least squares (MiB, fds and threads per hour) are gated against limits, and the
//! samples (CSV, JSON) and a memory plot (SVG) go to the stage folder. Opt-in in `all`.

mod fit;
mod growth;
mod outcome;
mod plot;
mod sample;
mod settings;
mod watch;

use std::time::Instant;

use anyhow::{bail, Result};
use camino::Utf8PathBuf;

pub use settings::SoakConfig;

use crate::plan::{Context, StagePlan};
use crate::process::{Cmd, RunOptions};
use crate::provision::Needs;
use crate::report::StageReport;
use crate::stage_name::StageName;
use settings::{Program, Settings};

/// What the stage needs installed.
pub fn needs() -> Needs {
    Needs::default()
}

const NOT_CONFIGURED: &str = "no soak program configured: set `command` (or `bin` and `args`) \
                              in [workspace.metadata.runner.soak]";

pub fn plan(ctx: &Context) -> Result<StagePlan> {
    let Some(settings) = Settings::resolve(ctx)? else {
        bail!("{NOT_CONFIGURED}");
    };
    let mut steps = Vec::new();
    let program = match &settings.program {
        Program::Bin { bin, .. } => {
            steps.push((format!("build {bin}"), build_command(ctx, &settings)));
            settings.target_dir.join("release").join(bin)
        }
        Program::Command(_) => Utf8PathBuf::new(),
    };
    steps.push((
        format!(
            "run it for {}, sampled every {:?}",
            crate::duration::human(settings.duration),
            settings.interval
        ),
        program_command(ctx, &settings, &program),
    ));
    Ok(StagePlan {
        stage: StageName::Soak,
        target_dir: Some(settings.target_dir.clone()),
        steps,
        notes: vec![limits_note(&settings)],
    })
}

fn limits_note(settings: &Settings) -> String {
    format!(
        "growth limits per hour: {} MiB resident memory, {} file descriptors, {} threads; the \
         first {} are warm-up, left out of the fit",
        settings.limits.rss_mib,
        settings.limits.fds,
        settings.limits.threads,
        crate::duration::human(settings.warmup)
    )
}

/// `cargo build --release` of the configured binary, in the stage's own target dir.
fn build_command(ctx: &Context, settings: &Settings) -> Cmd {
    let mut cmd = ctx
        .stage_cargo(&settings.target_dir)
        .args([
            "build",
            "--release",
            "--message-format=json",
            "--manifest-path",
        ])
        .arg(ctx.workspace.manifest_path.as_str())
        .args(ctx.cargo.build_args());
    if let Program::Bin { bin, package, .. } = &settings.program {
        if let Some(package) = package {
            cmd = cmd.args(["--package", package.as_str()]);
        }
        cmd = cmd.args(["--bin", bin.as_str()]);
    }
    cmd
}

/// The watched program, run from the workspace root; `built` is the binary's path when the
/// config names a `bin`. A relative program path is taken from the workspace root too.
fn program_command(ctx: &Context, settings: &Settings, built: &Utf8PathBuf) -> Cmd {
    let (program, args) = match &settings.program {
        Program::Command(argv) => {
            let first = Utf8PathBuf::from(&argv[0]);
            let program = if first.is_relative() && argv[0].contains('/') {
                ctx.workspace.root.join(first).into_string()
            } else {
                argv[0].clone()
            };
            (program, argv[1..].to_vec())
        }
        Program::Bin { args, .. } => (built.to_string(), args.clone()),
    };
    Cmd::new(program).args(args).cwd(ctx.workspace.root.clone())
}

pub fn run(ctx: &Context) -> Result<StageReport> {
    let started = Instant::now();
    let Some(settings) = Settings::resolve(ctx)? else {
        return super::not_applicable(ctx, StageName::Soak, NOT_CONFIGURED);
    };
    if !std::path::Path::new("/proc/self/status").exists() {
        return super::not_applicable(
            ctx,
            StageName::Soak,
            format!("soak samples /proc, which {} does not have", ctx.host),
        );
    }
    if settings.duration >= ctx.timeout {
        bail!(
            "soak.duration ({}) must be shorter than the stage timeout ({}); raise --timeout",
            crate::duration::human(settings.duration),
            crate::duration::human(ctx.timeout)
        );
    }
    let dir = ctx.stage_dir(StageName::Soak)?;
    let logs = dir.join("logs");
    crate::process::ensure_writable_dir(&logs)?;
    let built = match &settings.program {
        Program::Bin { bin, package, .. } => {
            ctx.progress.note(&format!("building {bin}"));
            build(ctx, &settings, bin, package.as_deref(), &logs, started)?
        }
        Program::Command(_) => Utf8PathBuf::new(),
    };
    let cmd = program_command(ctx, &settings, &built);
    ctx.progress.note(&format!(
        "watching {} for {}",
        settings.program.label(),
        crate::duration::human(settings.duration)
    ));
    ctx.progress.verbose(&cmd.to_string());
    let watched = watch::watch(&cmd, &settings, &logs.join("program"))?;
    let report = outcome::report(ctx, &settings, &cmd, &watched, &dir)?;
    ctx.progress.note(&format!(
        "{}: {} samples, {} findings",
        report.status.as_str(),
        watched.samples.len(),
        report.findings.len()
    ));
    Ok(report)
}

/// Builds the configured binary and returns its path, as cargo reports it.
fn build(
    ctx: &Context,
    settings: &Settings,
    bin: &str,
    package: Option<&str>,
    logs: &camino::Utf8Path,
    started: Instant,
) -> Result<Utf8PathBuf> {
    let cmd = build_command(ctx, settings);
    ctx.progress.verbose(&cmd.to_string());
    let finished = cmd.run(&RunOptions {
        timeout: Some(ctx.timeout.saturating_sub(started.elapsed())),
        log_stem: Some(logs.join("build")),
        ..RunOptions::default()
    })?;
    crate::cargo_output::require_success(&finished, &format!("building {bin}"))?;
    cargo_metadata::Message::parse_stream(finished.stdout.as_bytes())
        .flatten()
        .find_map(|message| {
            let cargo_metadata::Message::CompilerArtifact(artifact) = message else {
                return None;
            };
            let is_bin = artifact.target.name == bin
                && artifact.target.kind.iter().any(|k| k.to_string() == "bin");
            let in_package = package.is_none_or(|package| {
                ctx.workspace
                    .member_of(&artifact.package_id.repr)
                    .as_deref()
                    == Some(package)
            });
            (is_bin && in_package)
                .then_some(artifact.executable)
                .flatten()
        })
        .ok_or_else(|| anyhow::anyhow!("cargo built no binary `{bin}`"))
}
