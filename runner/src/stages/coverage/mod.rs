//! Coverage stage: the workspace's unit, integration and doc tests run once under source-based
//! instrumentation (cargo-llvm-cov with branches, or tarpaulin's LLVM engine); totals judged
//! against thresholds, critical paths required to be fully covered, and LCOV, HTML and JSON
//! left in the stage folder.

#[cfg(test)]
pub(crate) mod captures;
mod critical;
mod findings;
pub mod lcov;
mod llvm_cov;
pub mod merge;
mod outcome;
mod settings;
pub mod slices;
mod table;
mod tarpaulin;

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::{Context as _, Result};
use camino::{Utf8Path, Utf8PathBuf};

pub use settings::CoverageConfig;

use crate::coverage_data::summary::Summary;
use crate::libtest::Outcome;
use crate::plan::{Context, StagePlan};
use crate::provision::Needs;
use crate::report::{gate, StageReport, Status};
use crate::stage_name::StageName;
use outcome::EngineOutput;
use settings::{Engine, Settings};

/// `summary.json`: runner's reading of one run, the same shape for either engine.
#[derive(serde::Serialize)]
struct SummaryArtifact<'a> {
    engine: &'a str,
    summary: &'a Summary,
    critical_gaps: &'a [critical::Gap],
}

/// What the stage needs installed.
pub fn needs() -> Needs {
    Needs {
        components: vec!["llvm-tools"],
        cargo_tools: vec!["cargo-llvm-cov"],
        ..Needs::default()
    }
}

/// The tool whose version the report records.
pub fn version(toolchain: &crate::environment::Toolchain) -> (&'static str, crate::process::Cmd) {
    (
        "cargo-llvm-cov",
        toolchain.cargo().args(["llvm-cov", "--version"]),
    )
}

/// Whether `--partition` splits the stage: llvm-cov's function records add up across slices
/// (`runner merge` recounts them); tarpaulin's output does not, so it runs whole in slice 1.
pub fn splits(ctx: &Context) -> bool {
    Settings::resolve(ctx).is_ok_and(|settings| settings.engine == Engine::LlvmCov)
}

/// How many files the Markdown table shows; report readers want the worst ones, and
/// `summary.json` has them all.
const FILES_SHOWN: usize = 20;

/// Where one run leaves its files, inside the stage folder.
pub struct Artifacts {
    pub dir: Utf8PathBuf,
    pub logs: Utf8PathBuf,
    /// The engine's own JSON export.
    pub json: Utf8PathBuf,
    pub lcov: Utf8PathBuf,
    /// The page to open.
    pub html: Utf8PathBuf,
    /// runner's summary, the same for both engines: totals, every file, critical gaps.
    pub summary: Utf8PathBuf,
}

impl Artifacts {
    fn new(engine: Engine, dir: &Utf8Path) -> Artifacts {
        let (json, lcov, html) = match engine {
            Engine::LlvmCov => ("coverage.json", "lcov.info", "html/index.html"),
            Engine::Tarpaulin => (
                "tarpaulin-report.json",
                "lcov.info",
                "tarpaulin-report.html",
            ),
        };
        Artifacts {
            dir: dir.to_owned(),
            logs: dir.join("logs"),
            json: dir.join(json),
            lcov: dir.join(lcov),
            html: dir.join(html),
            summary: dir.join("summary.json"),
        }
    }

    /// A path as the report names it: relative to the report folder.
    fn shown(&self, path: &Utf8Path) -> String {
        let parent = self.dir.parent().unwrap_or(&self.dir);
        path.strip_prefix(parent).unwrap_or(path).to_string()
    }

    /// Removes what an earlier run left, so that nothing stale passes for this run's.
    fn reset(&self) -> Result<()> {
        let slice = self.dir.join(slices::SLICE_FILE);
        for file in [&self.json, &self.lcov, &self.html, &self.summary, &slice] {
            let _ = std::fs::remove_file(file);
        }
        let _ = std::fs::remove_dir_all(&self.logs);
        let _ = std::fs::remove_dir_all(self.dir.join("html"));
        crate::process::ensure_writable_dir(&self.logs)
    }
}

pub fn plan(ctx: &Context) -> anyhow::Result<StagePlan> {
    let settings = Settings::resolve(ctx)?;
    let artifacts = Artifacts::new(settings.engine, &ctx.out_dir.join("coverage"));
    let steps = match settings.engine {
        Engine::LlvmCov => llvm_cov::steps(ctx, &settings, &artifacts),
        Engine::Tarpaulin => tarpaulin::steps(ctx, &settings, &artifacts),
    };
    let mut notes = vec![settings.describe()];
    if settings.engine == Engine::LlvmCov {
        notes.push(llvm_cov::plan_note(&settings));
        if let Some(partition) = ctx.partition {
            notes.push(format!(
                "under --partition {partition}: every harness is listed with `cargo llvm-cov \
                 test --no-report <target> -- --list`, and this slice's share of the tests runs \
                 harness by harness with `--exact` names; `runner merge` adds the slices up \
                 and judges thresholds and critical code"
            ));
        }
    }
    if let Err(error) = settings.validate() {
        notes.push(error.to_string());
    }
    Ok(StagePlan {
        stage: StageName::Coverage,
        target_dir: Some(settings.target_dir),
        steps,
        notes,
    })
}

pub fn run(ctx: &Context) -> Result<StageReport> {
    let deadline = Instant::now() + ctx.timeout;
    let settings = Settings::resolve(ctx)?;
    settings.validate()?;
    let artifacts = Artifacts::new(settings.engine, &ctx.stage_dir(StageName::Coverage)?);
    artifacts.reset()?;
    if ctx.partition.is_some() && settings.engine == Engine::LlvmCov {
        return run_share(ctx, &settings, &artifacts, deadline);
    }
    let output = match settings.engine {
        Engine::LlvmCov => llvm_cov::run(ctx, &settings, &artifacts, deadline)?,
        Engine::Tarpaulin => tarpaulin::run(ctx, &settings, &artifacts, deadline)?,
    };
    let report = build_report(ctx, &settings, &artifacts, output, true)?;
    ctx.progress.note(&format!(
        "{}: lines {} of {} covered, {} findings",
        report.status.as_str(),
        report.count("lines_covered"),
        report.count("lines"),
        report.findings.len()
    ));
    Ok(report)
}

/// This slice's share of a partitioned run: its numbers and test failures, but no verdict on
/// thresholds and critical code, which only the slices added up can give (`runner merge`).
fn run_share(
    ctx: &Context,
    settings: &Settings,
    artifacts: &Artifacts,
    deadline: Instant,
) -> Result<StageReport> {
    let share = slices::run(ctx, settings, artifacts, deadline)?;
    let judged_later = "thresholds, critical paths and critical functions are judged by \
                        `runner merge` over every slice's coverage added up, not per slice"
        .to_owned();
    let mut report = if let Some(output) = share.output {
        let mut report = build_report(ctx, settings, artifacts, output, false)?;
        report.notes.insert(1, judged_later);
        report
    } else {
        let mut report = StageReport::new(StageName::Coverage, Status::Pass);
        report.artifacts_dir = Some(Utf8PathBuf::from("coverage"));
        report.notes = vec![settings.describe(), judged_later];
        report.counts = BTreeMap::from([("tests_run".to_owned(), 0)]);
        report
    };
    report.notes.extend(share.notes);
    report.partition = Some(share.partition);
    Ok(report)
}

/// The metrics' totals, the tests by outcome and, when config names critical code, its gaps.
fn counts(output: &EngineOutput, critical: bool) -> BTreeMap<String, u64> {
    let mut counts = output.summary.counts();
    let tests = [
        (
            "tests_run",
            output.count(|o| !matches!(o, Outcome::Ignored)),
        ),
        ("passed", output.count(|o| matches!(o, Outcome::Passed))),
        (
            "failed",
            output.count(|o| matches!(o, Outcome::Failed { .. })),
        ),
    ];
    for (key, value) in tests {
        counts.insert(key.to_owned(), value);
    }
    if critical {
        let lines = output.gaps.iter().map(|gap| gap.lines.len()).sum::<usize>();
        let branches = output
            .gaps
            .iter()
            .map(|gap| gap.branches.len())
            .sum::<usize>();
        counts.insert("critical_lines_uncovered".to_owned(), lines as u64);
        counts.insert("critical_branches_untaken".to_owned(), branches as u64);
    }
    counts
}

/// The stage's report from one engine run; `judge` applies thresholds and critical rules
/// (a slice of a partitioned run leaves them to the merge).
fn build_report(
    ctx: &Context,
    settings: &Settings,
    artifacts: &Artifacts,
    mut output: EngineOutput,
    judge: bool,
) -> Result<StageReport> {
    output.summary.sort_least_covered_first();
    let summary_json = serde_json::to_string_pretty(&SummaryArtifact {
        engine: output.tool,
        summary: &output.summary,
        critical_gaps: &output.gaps,
    })
    .context("serialising the coverage summary")?;
    crate::report::write::write_atomically(&artifacts.summary, summary_json.as_bytes())?;

    let mut report = StageReport::new(StageName::Coverage, Status::Pass);
    report.artifacts_dir = Some(Utf8PathBuf::from("coverage"));
    report.counts = counts(&output, judge && !settings.critical_rules().is_empty());
    let mut notes = vec![
        settings.describe(),
        format!("totals: {}", output.summary.totals_line()),
        table::files(
            &output.summary,
            FILES_SHOWN,
            &artifacts.shown(&artifacts.summary),
        ),
        format!(
            "open {} in a browser (it needs no network); LCOV in {}, the tool's JSON in {}",
            artifacts.shown(&artifacts.html),
            artifacts.shown(&artifacts.lcov),
            artifacts.shown(&artifacts.json)
        ),
    ];
    let mut found = Vec::new();
    if judge {
        notes.append(&mut output.notes);
        let measured = findings::Measured::of(&output, &ctx.filters);
        found.extend(findings::thresholds(
            &measured,
            &settings.thresholds,
            &mut notes,
        ));
        found.extend(findings::critical(&measured));
    }
    found.extend(findings::test_failures(&output, &ctx.workspace));
    report.findings = found;
    report.notes = notes;
    report.status = gate::status_from_findings(&report.findings, ctx.fail_on);
    Ok(report)
}
