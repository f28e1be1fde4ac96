//! Bench stage: the workspace's criterion benchmarks against a named baseline kept in
//! `.runner/`, gated on wall time (criterion's statistics, outside its noise band) or on
//! instruction counts under callgrind (exact, so a busy machine cannot flake the gate); an
//! optional flame graph of one benchmark.

pub mod callgrind;
mod commands;
mod compare;
mod criterion;
mod discover;
mod findings;
mod flamegraph;
mod instructions;
mod measure;
mod settings;
mod wall;

use std::time::Instant;

use anyhow::{bail, Result};
use camino::Utf8PathBuf;

pub use settings::BenchConfig;

use crate::plan::{Context, StagePlan};
use crate::process::Cmd;
use crate::provision::Needs;
use crate::provision::SystemTool;
use crate::report::{gate, StageReport, Status};
use crate::stage_name::StageName;
use commands::BenchBinary;
use compare::Verdict;
use measure::Measurement;
use settings::{Metric, Settings};

/// What the stage needs installed.
pub fn needs() -> Needs {
    Needs::default()
}

/// Whether `--partition` splits the stage: instruction counts are the same on every machine,
/// so each slice counts its share of the benchmarks; wall times measured on different
/// machines do not compare, so wall-clock mode runs whole in slice 1.
pub fn splits(ctx: &Context) -> bool {
    Settings::resolve(ctx).is_ok_and(|settings| settings.metric == Metric::Instructions)
}

const VALGRIND: SystemTool = SystemTool {
    binaries: &["valgrind"],
    debian: "valgrind",
};

pub fn plan(ctx: &Context) -> Result<StagePlan> {
    let settings = Settings::resolve(ctx)?;
    let targets = discover::bench_targets(ctx)?;
    if let Some(reason) = discover::not_applicable_reason(&targets) {
        bail!("{reason}");
    }
    let example = BenchBinary {
        package: "<package>".into(),
        name: "<bench>".into(),
        executable: "<bench binary>".into(),
        package_dir: ctx.workspace.root.clone(),
        lenient_baseline: true,
    };
    let filter = commands::filter(&ctx.filters);
    let mut steps = vec![(
        "build the criterion benchmarks".to_owned(),
        commands::build_command(ctx, &settings, &targets),
    )];
    match settings.metric {
        Metric::Wall => steps.push((
            "time each benchmark binary against the baseline".to_owned(),
            commands::wall_command(&example, &settings, filter.as_deref()),
        )),
        Metric::Instructions => {
            steps.push((
                "list each binary's benchmarks".to_owned(),
                commands::list_command(&example, &settings, filter.as_deref()),
            ));
            steps.push((
                "count each benchmark's instructions".to_owned(),
                commands::callgrind_command(
                    &example,
                    &settings,
                    "<benchmark>",
                    &settings.callgrind_dir.join("<benchmark>.out"),
                ),
            ));
        }
    }
    if let Some(id) = &settings.flamegraph {
        let data = ctx.out_dir.join("bench").join("flamegraph.perf.data");
        steps.push((
            format!("profile {id} for a flame graph"),
            commands::perf_record_command(&example, &settings, id, &data, settings.profile_time),
        ));
        steps.push((
            "read the samples".to_owned(),
            commands::perf_script_command(&data),
        ));
    }
    let mut notes = vec![mode_note(&settings)];
    notes.extend(discover::others_note(&targets));
    if settings.metric == Metric::Instructions && VALGRIND.find().is_none() {
        notes.push(format!(
            "valgrind is not installed; install it with `{}`",
            VALGRIND.install_hint()
        ));
    }
    Ok(StagePlan {
        stage: StageName::Bench,
        target_dir: Some(settings.target_dir.clone()),
        steps,
        notes,
    })
}

fn mode_note(settings: &Settings) -> String {
    let detail = match settings.metric {
        Metric::Wall => format!(
            "a regression is more than {:.0} % slower with the whole confidence interval above \
             +{:.0} % (criterion's noise band)",
            settings.threshold * 100.0,
            settings.noise * 100.0
        ),
        Metric::Instructions => format!(
            "each benchmark's routine runs once under callgrind; a regression is more than \
             {:.0} % more instructions",
            settings.threshold * 100.0
        ),
    };
    format!(
        "gated on {} against baseline `{}` in {}: {detail}",
        settings.metric.as_str(),
        settings.baseline,
        settings.baseline_display
    )
}

pub fn run(ctx: &Context) -> Result<StageReport> {
    let deadline = Instant::now() + ctx.timeout;
    let settings = Settings::resolve(ctx)?;
    let targets = discover::bench_targets(ctx)?;
    if let Some(reason) = discover::not_applicable_reason(&targets) {
        return super::not_applicable(ctx, StageName::Bench, reason);
    }
    let valgrind = match settings.metric {
        Metric::Wall => None,
        Metric::Instructions => Some(valgrind_version()?),
    };
    let dir = ctx.stage_dir(StageName::Bench)?;
    let logs = dir.join("logs");
    // Logs are named per binary and benchmark: an earlier run's would pass for this one's.
    let _ = std::fs::remove_dir_all(&logs);
    let _ = std::fs::remove_dir_all(&settings.callgrind_dir);
    crate::process::ensure_writable_dir(&logs)?;
    if valgrind.is_some() {
        crate::process::ensure_writable_dir(&settings.callgrind_dir)?;
    }

    ctx.progress.note("building the benchmarks");
    let build_cmd = commands::build_command(ctx, &settings, &targets);
    let built = commands::run_step(ctx, &build_cmd, Some(&logs.join("build")), deadline)?;
    crate::cargo_output::require_success(&built, "building the benchmarks")?;
    let binaries = commands::binaries(&built.stdout, &targets, ctx);
    if binaries.is_empty() {
        bail!("cargo built no criterion benchmark binaries");
    }

    let mut notes = vec![mode_note(&settings)];
    notes.extend(
        valgrind
            .iter()
            .map(|version| format!("callgrind from {version}")),
    );
    notes.extend(discover::others_note(&targets));
    let measurement = match &valgrind {
        None => measure::wall(ctx, &settings, &binaries, &logs, deadline)?,
        Some(version) => {
            measure::instructions(ctx, &settings, &binaries, &logs, deadline, version)?
        }
    };
    notes.extend(measurement.notes.iter().cloned());
    if ctx.partition.is_some() && settings.metric == Metric::Wall {
        notes.push(
            "wall-clock benchmarks are not split across partitions: times measured on \
             different machines do not compare, so every benchmark runs in slice 1 \
             (`mode = \"instructions\"` splits them)"
                .to_owned(),
        );
    }
    // Under --partition the slice that counted the benchmark draws its flame graph.
    let elsewhere = |id: &str| {
        measurement.partition.is_some()
            && measurement.listed.iter().any(|listed| listed == id)
            && !measurement.rows.iter().any(|(_, row)| row.id == id)
    };
    if let Some(id) = settings.flamegraph.as_ref().filter(|id| !elsewhere(id)) {
        notes.push(flame_graph_note(
            ctx,
            &settings,
            &measurement,
            id,
            &dir,
            deadline,
        ));
    }
    let report = report(ctx, &settings, &measurement, notes);
    ctx.progress.note(&format!(
        "{}: {} benchmarks, {} regressed",
        report.status.as_str(),
        report.count("benchmarks"),
        report.count("regressed")
    ));
    Ok(report)
}

fn report(
    ctx: &Context,
    settings: &Settings,
    measurement: &Measurement,
    notes: Vec<String>,
) -> StageReport {
    let mut report = StageReport::new(StageName::Bench, Status::Pass);
    report.artifacts_dir = Some(Utf8PathBuf::from(StageName::Bench.as_str()));
    let verdicts = |verdict: Verdict| {
        measurement
            .rows
            .iter()
            .filter(|(_, row)| row.verdict == verdict)
            .count() as u64
    };
    report
        .counts
        .insert("benchmarks".into(), measurement.rows.len() as u64);
    report
        .counts
        .insert("regressed".into(), verdicts(Verdict::Regressed));
    report
        .counts
        .insert("faster".into(), verdicts(Verdict::Improved));
    report.counts.insert("new".into(), verdicts(Verdict::New));
    report.tables.push(findings::table(settings, measurement));
    report.findings = findings::findings(settings, measurement);
    report.notes = notes;
    report.status = gate::status_from_findings(&report.findings, ctx.fail_on);
    report.partition.clone_from(&measurement.partition);
    let others_have_some = measurement
        .partition
        .as_ref()
        .is_some_and(|share| share.total_units > 0);
    if measurement.rows.is_empty() && others_have_some {
        report
            .notes
            .push("the split gave this slice none of the benchmarks".to_owned());
    } else if measurement.rows.is_empty() && measurement.errors.is_empty() {
        report.status = Status::Error;
        report.reason = Some(if ctx.filters.is_empty() {
            "the benchmark binaries ran but measured no benchmark".to_owned()
        } else {
            "no benchmark matches the test-name filters".to_owned()
        });
    }
    if !measurement.errors.is_empty() {
        report.status = Status::Error;
        report.reason = Some(measurement.errors.join("; "));
    }
    report
}

fn flame_graph_note(
    ctx: &Context,
    settings: &Settings,
    measurement: &Measurement,
    id: &str,
    dir: &camino::Utf8Path,
    deadline: Instant,
) -> String {
    let Some((binary, _)) = measurement.rows.iter().find(|(_, row)| row.id == id) else {
        return format!("no flame graph: no benchmark `{id}` was measured in this run");
    };
    match flamegraph::make(ctx, settings, binary, id, dir, deadline) {
        Ok(svg) => format!(
            "flame graph of `{id}`: {}",
            svg.strip_prefix(&ctx.out_dir).unwrap_or(&svg)
        ),
        Err(error) => format!(
            "no flame graph of `{id}`: {}",
            crate::exit::one_line(&error)
        ),
    }
}

/// The valgrind on PATH, as `valgrind-3.19.0`; an error naming the install command when
/// there is none.
fn valgrind_version() -> Result<String> {
    let Some(path) = VALGRIND.find() else {
        bail!(
            "instruction-count mode needs valgrind, which is not installed; install it with `{}`",
            VALGRIND.install_hint()
        );
    };
    Ok(Cmd::new(path.as_str())
        .arg("--version")
        .output_text()?
        .trim()
        .to_owned())
}
