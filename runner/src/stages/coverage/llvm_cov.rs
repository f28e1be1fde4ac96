//! The llvm-cov engine: cargo-llvm-cov runs the tests once with instrumentation (branches and
//! doctests included), then writes the JSON export, the LCOV tracefile and the HTML report
//! from the same profile data. The commands are built here for both `plan` and `run`.

use std::time::Instant;

use anyhow::Result;
use camino::Utf8Path;

use super::outcome::{self, EngineOutput};
use super::settings::Settings;
use super::{critical, Artifacts};
use crate::coverage_data::llvm_json;
use crate::plan::Context;
use crate::process::Cmd;
use crate::stage_name::StageName;

pub const TOOL: &str = "cargo-llvm-cov";

/// Where cargo-llvm-cov keeps the doctest programs it measures, inside the stage's build dir.
const DOCTEST_BINARIES: &str = "llvm-cov-target/doctestbins";

/// For `runner plan`: what `run` does besides the commands.
pub fn plan_note(settings: &Settings) -> String {
    format!(
        "before the tests run, {} is removed: doctests are rebuilt every run, and an old one \
         would still be counted",
        settings.target_dir.join(DOCTEST_BINARIES)
    )
}

/// `cargo +<pin> llvm-cov` in the stage's own target dir. cargo-llvm-cov builds in
/// `<CARGO_TARGET_DIR>/llvm-cov-target` and reads the rustflags of cargo's config itself;
/// `RUSTFLAGS` is set only when runner's config adds flags.
pub(super) fn cargo_llvm_cov(ctx: &Context, settings: &Settings) -> Cmd {
    let cmd = ctx
        .toolchain
        .cargo()
        .arg("llvm-cov")
        .env("CARGO_TARGET_DIR", settings.target_dir.as_str())
        .cwd(ctx.workspace.root.clone());
    match crate::cargo_config::stage_rustflags(&ctx.workspace, &ctx.host, &[]) {
        Some(flags) => cmd.env("RUSTFLAGS", flags),
        None => cmd,
    }
}

/// Flags every cargo-llvm-cov step shares, so the report reads what the run measured.
pub(super) fn measured(settings: &Settings) -> Vec<&'static str> {
    let mut flags = vec!["--branch"];
    if settings.doctests {
        flags.push("--doctests");
    }
    flags
}

/// Removes the previous run's raw profiles. (`test --no-report` keeps builds, so a second
/// run rebuilds nothing, but it also keeps old profiles, which would add up.)
pub fn clean_command(ctx: &Context, settings: &Settings) -> Cmd {
    cargo_llvm_cov(ctx, settings)
        .args(["clean", "--profraw-only", "--manifest-path"])
        .arg(ctx.workspace.manifest_path.as_str())
}

/// Runs the tests once under instrumentation, every failure reported as a libtest JSON event.
pub fn test_command(ctx: &Context, settings: &Settings) -> Cmd {
    crate::libtest::test_environment(cargo_llvm_cov(ctx, settings))
        .args(["test", "--no-report", "--no-fail-fast"])
        .args(measured(settings))
        .args(["--manifest-path", ctx.workspace.manifest_path.as_str()])
        .args(ctx.package_selection(StageName::Coverage))
        .args(ctx.cargo.build_args())
        .args(["--", "-Zunstable-options", "--format", "json"])
        .args(ctx.filters.iter().cloned())
}

/// `cargo llvm-cov test` for one harness (`unit.selection()` is appended by the caller or
/// by the test listing), building what the whole run builds: the same flags, so every
/// harness is built once, and its raw profiles add to the others'. `--doctests` is left out:
/// cargo-llvm-cov refuses it beside a target selection, and `--doc` implies it (it changes
/// only how rustdoc builds doctests).
pub fn harness_base(ctx: &Context, settings: &Settings) -> Cmd {
    cargo_llvm_cov(ctx, settings)
        .args(["test", "--no-report", "--no-fail-fast"])
        .args(
            measured(settings)
                .into_iter()
                .filter(|flag| *flag != "--doctests"),
        )
        .args(["--manifest-path", ctx.workspace.manifest_path.as_str()])
        .args(ctx.cargo.build_args())
}

/// Runs some tests of one harness under instrumentation: `tests` by exact name, or the
/// whole harness (with the run's filters) when `tests` is `None`.
pub fn harness_command(
    ctx: &Context,
    settings: &Settings,
    unit: &crate::inventory::TestUnit,
    tests: Option<&[String]>,
) -> Cmd {
    // With each test's time, which the slices record as the next split's durations.
    let cmd = crate::libtest::test_environment(harness_base(ctx, settings))
        .args(unit.selection())
        .args([
            "--",
            "-Zunstable-options",
            "--format",
            "json",
            "--report-time",
        ]);
    match tests {
        Some(names) => cmd.arg("--exact").args(names.iter().cloned()),
        None => cmd.args(ctx.filters.iter().cloned()),
    }
}

/// The one command a person runs to see the numbers and the missing lines again.
pub fn repro(ctx: &Context, settings: &Settings) -> Cmd {
    cargo_llvm_cov(ctx, settings)
        .args(measured(settings))
        .args(["--manifest-path", ctx.workspace.manifest_path.as_str()])
        .args(ctx.package_selection(StageName::Coverage))
        .args(ctx.cargo.build_args())
        .arg("--show-missing-lines")
}

#[derive(Debug, Clone, Copy)]
pub enum Format {
    Json,
    Lcov,
    Html,
}

/// Writes one report format from the profiles the test run left.
pub fn report_command(ctx: &Context, settings: &Settings, format: Format, out: &Utf8Path) -> Cmd {
    let cmd = cargo_llvm_cov(ctx, settings)
        .arg("report")
        .args(measured(settings))
        .args(["--manifest-path", ctx.workspace.manifest_path.as_str()])
        .args(ctx.package_selection(StageName::Coverage));
    match format {
        Format::Json => cmd.args(["--json", "--output-path", out.as_str()]),
        Format::Lcov => cmd.args(["--lcov", "--output-path", out.as_str()]),
        Format::Html => cmd.args(["--html", "--output-dir", out.as_str()]),
    }
}

/// The three reports, each with the step's label and log name.
fn reports(artifacts: &Artifacts) -> [(&'static str, &'static str, Format, &Utf8Path); 3] {
    [
        ("export JSON", "report-json", Format::Json, &artifacts.json),
        ("export LCOV", "report-lcov", Format::Lcov, &artifacts.lcov),
        (
            "write the HTML report",
            "report-html",
            Format::Html,
            &artifacts.dir,
        ),
    ]
}

pub fn steps(ctx: &Context, settings: &Settings, artifacts: &Artifacts) -> Vec<(String, Cmd)> {
    let mut steps = vec![
        (
            "remove the previous run's profiles".to_owned(),
            clean_command(ctx, settings),
        ),
        (
            "run the tests under instrumentation".to_owned(),
            test_command(ctx, settings),
        ),
    ];
    for (label, _, format, out) in reports(artifacts) {
        steps.push((label.to_owned(), report_command(ctx, settings, format, out)));
    }
    steps
}

pub fn run(
    ctx: &Context,
    settings: &Settings,
    artifacts: &Artifacts,
    deadline: Instant,
) -> Result<EngineOutput> {
    let logs = &artifacts.logs;
    clean(ctx, settings, logs, deadline)?;
    ctx.progress.note("running the tests under instrumentation");
    let finished = outcome::run_step(
        ctx,
        &test_command(ctx, settings),
        &logs.join("test"),
        deadline,
    )?;
    let tests = outcome::test_results(&finished, "running the tests under coverage")?;
    outcome::require_tests(&tests)?;
    write_reports(ctx, settings, artifacts, deadline)?;
    read_output(ctx, settings, artifacts, tests)
}

/// Removes what an earlier run measured: its raw profiles and its doctest programs.
pub fn clean(ctx: &Context, settings: &Settings, logs: &Utf8Path, deadline: Instant) -> Result<()> {
    outcome::run_checked(
        ctx,
        &clean_command(ctx, settings),
        &logs.join("clean"),
        deadline,
        "removing the previous run's profiles",
    )?;
    // Doctest binaries are rebuilt on every run; an old one would still count as measured.
    let _ = std::fs::remove_dir_all(settings.target_dir.join(DOCTEST_BINARIES));
    Ok(())
}

/// The JSON export, the tracefile and the HTML pages, from the profiles the tests left.
pub fn write_reports(
    ctx: &Context,
    settings: &Settings,
    artifacts: &Artifacts,
    deadline: Instant,
) -> Result<()> {
    ctx.progress.note("writing the reports");
    for (label, log, format, out) in reports(artifacts) {
        let cmd = report_command(ctx, settings, format, out);
        outcome::run_checked(
            ctx,
            &cmd,
            &artifacts.logs.join(log),
            deadline,
            &format!("{TOOL}: {label}"),
        )?;
    }
    Ok(())
}

/// The reports the engine wrote, read into runner's terms.
pub fn read_output(
    ctx: &Context,
    settings: &Settings,
    artifacts: &Artifacts,
    tests: Vec<crate::libtest::TestResult>,
) -> Result<EngineOutput> {
    let export = llvm_json::parse(&outcome::read(&artifacts.json)?, &ctx.workspace.root)?;
    let traces = outcome::traces(ctx, &artifacts.lcov)?;
    let rules = settings.critical_rules();
    Ok(EngineOutput {
        tool: TOOL,
        summary: export.summary,
        repro: repro(ctx, settings),
        gaps: critical::gaps(&traces, &export.functions, &rules),
        notes: critical::unmatched(&traces, &export.functions, &rules),
        tests,
    })
}
