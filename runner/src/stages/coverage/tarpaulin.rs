//! The tarpaulin engine, for people who prefer it: its LLVM engine (the ptrace one needs
//! privileges containers rarely grant) over tests and doctests, line coverage only, with the
//! pinned cargo-tarpaulin installed on first use.

use std::time::Instant;

use anyhow::Result;

use super::outcome::{self, EngineOutput};
use super::settings::Settings;
use super::{critical, lcov, Artifacts};
use crate::coverage_data::summary::{FileSummary, Metric, MetricName, Metrics, Summary};
use crate::libtest::{Outcome, TestResult};
use crate::plan::Context;
use crate::process::Cmd;
use crate::stage_name::StageName;

pub const TOOL: &str = "cargo-tarpaulin";

/// Tarpaulin with every option runner sets, before the arguments for the test binaries.
fn base_command(ctx: &Context, settings: &Settings, artifacts: &Artifacts) -> Cmd {
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
        // Tarpaulin's own limit per test binary is a minute; the stage's limit governs.
        .args(["--timeout", &ctx.timeout.as_secs().max(1).to_string()])
        .args(["--color", "never", "--run-types", "Tests"])
        .cwd(ctx.workspace.root.clone());
    if settings.doctests {
        cmd = cmd.args(["--run-types", "Doctests"]);
    }
    if let Some(flags) = crate::cargo_config::stage_rustflags(&ctx.workspace, &ctx.host, &[]) {
        cmd = cmd.env("RUSTFLAGS", flags);
    }
    cmd.args(ctx.package_selection(StageName::Coverage))
        .args(ctx.cargo.build_args())
}

/// The run, every test reported as a libtest JSON event.
pub fn command(ctx: &Context, settings: &Settings, artifacts: &Artifacts) -> Cmd {
    crate::libtest::test_environment(base_command(ctx, settings, artifacts))
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
    let installed =
        crate::provision::ensure_tool(&ctx.toolchain, TOOL, ctx.provision, &ctx.progress)?;
    ctx.progress.verbose(&installed);
    // The report's tool versions follow the stage, not its engine: say which tarpaulin ran.
    let version = ctx
        .toolchain
        .cargo()
        .args(["tarpaulin", "--version"])
        .output_text()
        .ok()
        .and_then(|text| crate::provision::version_in(&text))
        .unwrap_or_else(|| "of unknown version".to_owned());
    let mut notes = vec![format!("{TOOL} {version} measured this run")];
    ctx.progress.note("running the tests under tarpaulin");
    let finished = outcome::run_step(
        ctx,
        &command(ctx, settings, artifacts),
        &artifacts.logs.join("tarpaulin"),
        deadline,
    )?;
    let mut tests = outcome::test_results(&finished, "running the tests under tarpaulin")?;
    let doctests = doctests_ran(&finished.stdout);
    if finished.termination.success() {
        tests.extend(doctests);
    } else if !doctests.is_empty() {
        notes.push(format!(
            "tarpaulin failed, so whether its {} doctest programs passed is not known",
            doctests.len()
        ));
    }
    outcome::require_tests(&tests)?;
    let traces = outcome::traces(ctx, &artifacts.lcov)?;
    let rules = settings.critical_rules();
    notes.extend(critical::unmatched(&traces, &[], &rules));
    Ok(EngineOutput {
        tool: TOOL,
        summary: line_summary(&traces),
        repro: base_command(ctx, settings, artifacts),
        gaps: critical::gaps(&traces, &[], &rules),
        tests,
        notes,
    })
}

/// Tarpaulin runs each doctest as a plain program, not through libtest, so the JSON events
/// miss them; its log names each one (`running <target>/doctests/<name>/rust_out`). A failing
/// one fails tarpaulin's run, so in a successful run every one of them passed.
fn doctests_ran(log: &str) -> Vec<TestResult> {
    log.lines()
        .filter_map(|line| {
            line.split_once("process_handling: running ")?
                .1
                .strip_suffix("/rust_out")
        })
        .filter_map(|dir| {
            dir.split_once("/doctests/")
                .map(|(_, name)| name.to_owned())
        })
        .map(|name| TestResult {
            name: format!("doctest {name}"),
            outcome: Outcome::Passed,
            exec_time: None,
        })
        .collect()
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stages::coverage::captures::{self, ROOT};

    #[test]
    fn doctest_programs_are_read_from_tarpaulins_log() {
        let log = captures::read("coverage-known.tarpaulin.out");
        let doctests = doctests_ran(&log);
        let names: Vec<&str> = doctests.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["doctest src_lib_rs_27_0"]);
    }

    #[test]
    fn lines_are_tarpaulins_coverable_lines() {
        let text = captures::read("coverage-known.tarpaulin.lcov");
        let traces = lcov::parse(&text, camino::Utf8Path::new(ROOT)).unwrap();
        let summary = line_summary(&traces);
        let lines = summary.totals[&MetricName::Lines];
        assert_eq!((lines.count, lines.covered), (14, 10));
        assert_eq!(summary.files[0].path, "src/critical.rs");
        assert_eq!(summary.totals.len(), 1, "lines only");
    }
}
