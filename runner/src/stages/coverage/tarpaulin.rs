//! The tarpaulin engine, for people who prefer it: its LLVM engine (the ptrace one needs
//! privileges containers rarely grant) over tests and doctests, line coverage only, with the
//! pinned cargo-tarpaulin installed on first use.

use std::time::Instant;

use anyhow::Result;

use super::outcome::{self, EngineOutput};
use super::settings::Settings;
use super::summary::{FileSummary, Metric, MetricName, Metrics, Summary};
use super::{critical, lcov, Artifacts};
use crate::plan::Context;
use crate::process::Cmd;

pub const TOOL: &str = "cargo-tarpaulin";

pub fn command(ctx: &Context, settings: &Settings, artifacts: &Artifacts) -> Cmd {
    let mut cmd = ctx
        .toolchain
        .cargo()
        .args([
            "tarpaulin",
            "--engine",
            "llvm",
            "--skip-clean",
            "--no-fail-fast",
        ])
        .args(["--out", "Lcov", "--out", "Html", "--out", "Json"])
        .args(["--output-dir", artifacts.dir.as_str()])
        .args(["--target-dir", settings.target_dir.as_str()])
        .args(["--manifest-path", ctx.workspace.manifest_path.as_str()])
        .args(["--color", "never", "--run-types", "Tests"])
        // Tarpaulin's own limit per test binary is a minute; the stage's limit governs.
        .args(["--timeout", &ctx.timeout.as_secs().max(1).to_string()])
        .cwd(ctx.workspace.root.clone());
    if settings.doctests {
        cmd = cmd.args(["--run-types", "Doctests"]);
    }
    if let Some(flags) = crate::cargo_config::stage_rustflags(&ctx.workspace, &ctx.host, &[]) {
        cmd = cmd.env("RUSTFLAGS", flags);
    }
    cmd.args(ctx.cargo.to_args())
        .args(["--", "-Zunstable-options", "--format", "json"])
        .args(ctx.filters.iter().cloned())
}

pub fn steps(ctx: &Context, settings: &Settings, artifacts: &Artifacts) -> Vec<(String, Cmd)> {
    vec![(
        "run the tests under tarpaulin's LLVM engine".to_owned(),
        command(ctx, settings, artifacts),
    )]
}

pub fn run(
    ctx: &Context,
    settings: &Settings,
    artifacts: &Artifacts,
    deadline: Instant,
) -> Result<EngineOutput> {
    let installed = crate::provision::ensure_tool(&ctx.toolchain, TOOL, true, &ctx.progress)?;
    ctx.progress.verbose(&installed);
    ctx.progress.note("running the tests under tarpaulin");
    let finished = outcome::run_step(
        ctx,
        &command(ctx, settings, artifacts),
        &artifacts.logs.join("tarpaulin"),
        deadline,
    )?;
    let tests = outcome::test_results(&finished, "running the tests under tarpaulin")?;
    let traces = outcome::traces(ctx, &artifacts.lcov)?;
    Ok(EngineOutput {
        tool: TOOL,
        summary: line_summary(&traces),
        gaps: critical::gaps(&traces, &[], &settings.critical_rules()),
        traces,
        tests,
        notes: Vec::new(),
    })
}

/// Tarpaulin's numbers are its coverable lines and the ones that ran, per file and in total.
fn line_summary(traces: &[lcov::FileTrace]) -> Summary {
    let mut total = Metric::default();
    let files = traces
        .iter()
        .map(|trace| {
            let count = trace.lines.len() as u64;
            let covered = trace.lines.values().filter(|hits| **hits > 0).count() as u64;
            total.count += count;
            total.covered += covered;
            FileSummary {
                path: trace.path.clone(),
                metrics: Metrics::from([(MetricName::Lines, Metric { count, covered })]),
            }
        })
        .collect();
    Summary {
        totals: Metrics::from([(MetricName::Lines, total)]),
        files,
    }
}
