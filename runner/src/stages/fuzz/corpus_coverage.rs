//! `--mode coverage`: what each kept corpus reaches in the user's crates. `cargo fuzz coverage`
//! builds the target with coverage instrumentation and runs the corpus; llvm-cov then writes
//! the JSON export (read by the coverage stage's reader), an lcov tracefile and HTML, limited
//! to the workspace members' sources. The report gets one table row per target: line, branch
//! and function coverage, and the functions the corpus never reaches.

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::{bail, Context as _, Result};
use camino::{Utf8Path, Utf8PathBuf};

use super::commands;
use super::corpus;
use super::discover::slug;
use super::discover::FuzzTarget;
use super::settings::Settings;
use crate::coverage_data::llvm_json;
use crate::coverage_data::summary::{format_percent, Metric, MetricName};
use crate::plan::Context;
use crate::process::{Cmd, RunOptions};
use crate::report::{StageReport, Status, Table, TargetSummary};

/// How many never-reached functions the table names per target (`coverage.json` has all).
const SHOWN_FUNCTIONS: usize = 8;

/// One target's corpus coverage.
struct Reached {
    lines: Metric,
    branches: Option<Metric>,
    functions: Metric,
    unreached: Vec<String>,
}

pub fn run(
    ctx: &Context,
    settings: &Settings,
    targets: &[FuzzTarget],
    dirs: (&Utf8Path, &Utf8Path),
    deadline: Instant,
    mut report: StageReport,
) -> StageReport {
    let (dir, logs) = dirs;
    let mut table = Table {
        title: "Corpus coverage of the workspace's crates".to_owned(),
        columns: ["target", "lines", "branches", "functions", "never reached"]
            .map(str::to_owned)
            .to_vec(),
        rows: Vec::new(),
    };
    let mut errors = Vec::new();
    // One at a time: the coverage builds share one build folder.
    for target in targets {
        ctx.progress
            .note(&format!("{}: corpus coverage", target.label));
        let out = dir.join("coverage").join(slug(&target.label));
        match measure(ctx, settings, target, &out, logs, deadline) {
            Ok(reached) => {
                table.rows.push(row(target, &reached));
                report.targets.push(TargetSummary {
                    name: target.label.clone(),
                    counts: counts(&reached),
                });
            }
            Err(error) => errors.push(format!(
                "{}: {}",
                target.label,
                crate::exit::one_line(&error)
            )),
        }
    }
    report.tables.push(table);
    report.notes.push(
        "per target: coverage.json (llvm-cov export), coverage.lcov and html/ in fuzz/coverage/<target>/"
            .to_owned(),
    );
    if !errors.is_empty() {
        report.status = Status::Error;
        report.reason = Some(errors.join("; "));
    }
    report
}

fn cell(metric: Option<Metric>) -> String {
    match metric.and_then(|m| m.percent().map(|p| (m, p))) {
        Some((m, percent)) => format!("{} ({}/{})", format_percent(percent), m.covered, m.count),
        None => "-".to_owned(),
    }
}

fn row(target: &FuzzTarget, reached: &Reached) -> Vec<String> {
    let mut never: Vec<String> = reached
        .unreached
        .iter()
        .take(SHOWN_FUNCTIONS)
        .map(|name| format!("`{name}`"))
        .collect();
    if reached.unreached.len() > SHOWN_FUNCTIONS {
        never.push(format!(
            "and {} more",
            reached.unreached.len() - SHOWN_FUNCTIONS
        ));
    }
    vec![
        target.label.clone(),
        cell(Some(reached.lines)),
        cell(reached.branches),
        cell(Some(reached.functions)),
        if never.is_empty() {
            "none".to_owned()
        } else {
            never.join(", ")
        },
    ]
}

fn counts(reached: &Reached) -> BTreeMap<String, u64> {
    let branches = reached.branches.unwrap_or_default();
    [
        ("lines", reached.lines.count),
        ("lines_covered", reached.lines.covered),
        ("branches", branches.count),
        ("branches_covered", branches.covered),
        ("functions", reached.functions.count),
        ("functions_covered", reached.functions.covered),
        ("functions_never_reached", reached.unreached.len() as u64),
    ]
    .into_iter()
    .map(|(key, value)| (key.to_owned(), value))
    .collect()
}

fn measure(
    ctx: &Context,
    settings: &Settings,
    target: &FuzzTarget,
    out: &Utf8Path,
    logs: &Utf8Path,
    deadline: Instant,
) -> Result<Reached> {
    if out.exists() {
        std::fs::remove_dir_all(out).with_context(|| format!("cannot clear {out}"))?;
    }
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {out}"))?;
    let store = corpus::store(settings, target);
    std::fs::create_dir_all(&store).with_context(|| format!("cannot create {store}"))?;
    let read_only = corpus::read_only(settings, target);
    let mut corpora: Vec<&Utf8Path> = vec![&store];
    corpora.extend(read_only.iter().map(Utf8PathBuf::as_path));
    let stem = logs.join(format!("{}-coverage", slug(&target.label)));
    let cmd = commands::coverage(ctx, settings, target, &corpora);
    run_checked(ctx, &cmd, &format!("{stem}-run"), deadline)?;
    let places = Places::of(ctx, settings, target)?;
    let sources = sources(ctx);
    let json = run_checked(
        ctx,
        &places.export(&sources, "text"),
        &format!("{stem}-json"),
        deadline,
    )?;
    crate::atomic::write(&out.join("coverage.json"), json.as_bytes())?;
    let lcov = run_checked(
        ctx,
        &places.export(&sources, "lcov"),
        &format!("{stem}-lcov"),
        deadline,
    )?;
    crate::atomic::write(&out.join("coverage.lcov"), lcov.as_bytes())?;
    run_checked(
        ctx,
        &places.html(&sources, &out.join("html")),
        &format!("{stem}-html"),
        deadline,
    )?;
    let export = llvm_json::parse(&json, &ctx.workspace.root)?;
    let totals = &export.summary.totals;
    let metric = |name| totals.get(&name).copied();
    Ok(Reached {
        lines: metric(MetricName::Lines).unwrap_or_default(),
        branches: metric(MetricName::Branches),
        functions: metric(MetricName::Functions).unwrap_or_default(),
        unreached: export
            .functions
            .iter()
            // The export lists every function of the binary; only the workspace's count
            // (the reader made their paths relative).
            .filter(|function| function.count == 0 && function.file.is_relative())
            .map(|function| function.name.clone())
            .collect(),
    })
}

/// The sources that count: every workspace member's folder (the cargo-fuzz project, std and
/// the dependencies are left out).
fn sources(ctx: &Context) -> Vec<String> {
    let mut dirs: Vec<String> = ctx
        .workspace
        .members
        .iter()
        .filter_map(|member| member.manifest_path.parent())
        .map(ToString::to_string)
        .collect();
    dirs.sort();
    dirs.dedup();
    dirs
}

fn run_checked(ctx: &Context, cmd: &Cmd, stem: &str, deadline: Instant) -> Result<String> {
    ctx.progress.verbose(&cmd.to_string());
    let finished = cmd.run(&RunOptions {
        timeout: Some(deadline.saturating_duration_since(Instant::now())),
        log_stem: Some(stem.into()),
        ..RunOptions::default()
    })?;
    if !finished.termination.success() {
        bail!(
            "`{}` ended ({}): {}",
            cmd.to_string().chars().take(120).collect::<String>(),
            finished.termination,
            crate::cargo_output::first_error(&finished)
        );
    }
    Ok(finished.stdout)
}

/// Where `cargo fuzz coverage` left the instrumented binary and the merged profile, and the
/// llvm-cov of the pinned toolchain.
struct Places {
    llvm_cov: Utf8PathBuf,
    binary: Utf8PathBuf,
    profile: Utf8PathBuf,
}

impl Places {
    fn of(ctx: &Context, settings: &Settings, target: &FuzzTarget) -> Result<Places> {
        let sysroot = ctx
            .toolchain
            .rustc()
            .args(["--print", "sysroot"])
            .output_text()?;
        let llvm_cov = Utf8PathBuf::from(sysroot.trim())
            .join("lib/rustlib")
            .join(&ctx.host)
            .join("bin/llvm-cov");
        if !llvm_cov.is_file() {
            bail!("{llvm_cov} is missing: install the toolchain's `llvm-tools` component");
        }
        Ok(Places {
            llvm_cov,
            binary: commands::coverage_binary(settings, target, &ctx.host),
            profile: commands::coverage_profile(target),
        })
    }

    fn export(&self, sources: &[String], format: &str) -> Cmd {
        Cmd::new(self.llvm_cov.as_str())
            .arg("export")
            .arg(format!("-format={format}"))
            .arg(format!("-instr-profile={}", self.profile))
            .arg(self.binary.as_str())
            .args(sources.iter().cloned())
    }

    fn html(&self, sources: &[String], dir: &Utf8Path) -> Cmd {
        Cmd::new(self.llvm_cov.as_str())
            .arg("show")
            .arg("-format=html")
            .arg("-show-branches=count")
            .arg(format!("-output-dir={dir}"))
            .arg(format!("-instr-profile={}", self.profile))
            .arg(self.binary.as_str())
            .args(sources.iter().cloned())
    }
}
