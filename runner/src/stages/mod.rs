//! The analysis stages: which exist, which apply, and dispatch to each stage's module.

pub mod bench;
pub mod coverage;
pub mod cross;
pub mod fuzz;
pub mod miri;
pub mod registry;
pub mod sanitizers;
pub mod soak;
pub mod valgrind;

use std::time::{Duration, Instant};

use anyhow::Result;

use crate::stage_name::StageName;

use crate::plan::{Context, StagePlan};
use crate::report::model::StagePartition;
use crate::report::StageReport;

/// A stage that does not apply here (wrong platform, nothing to analyse): SKIPPED with the
/// reason inside `all`, an error when the user asked for the stage by name.
pub fn not_applicable(
    ctx: &Context,
    stage: StageName,
    reason: impl Into<String>,
) -> Result<StageReport> {
    let reason = reason.into();
    if ctx.explicit {
        anyhow::bail!("{reason}");
    }
    Ok(StageReport::skipped(stage, reason))
}

/// Runs one stage; an error inside it becomes an ERROR status with the reason, and the
/// duration is always recorded.
pub fn run(stage: StageName, ctx: &Context) -> StageReport {
    let started = Instant::now();
    let cpu_before = own_cpu_time();
    ctx.progress
        .stage_started(stage.as_str(), Some(ctx.timeout));
    let entry = registry::of(stage);
    let splits = (entry.splits)(ctx);
    let whole_here = ctx.partition.is_none_or(|p| splits || p.index == 1);
    let result: Result<StageReport> =
        if entry.analyses_packages && ctx.stage_members(stage).is_empty() {
            not_applicable(
                ctx,
                stage,
                format!(
                    "no package is left for {stage}: the command line's -p/--exclude, config \
                 `{stage}.packages` / `{stage}.exclude-packages` or the packages' own `skip` \
                 leave out every one"
                ),
            )
        } else if whole_here {
            (entry.run)(ctx)
        } else {
            Ok(StageReport::skipped(
                stage,
                "not split across partitions: it runs whole in partition 1",
            ))
        };
    let mut report =
        result.unwrap_or_else(|error| StageReport::error(stage, crate::exit::one_line(&error)));
    if let (Some(partition), false) = (ctx.partition, splits) {
        report.partition = Some(StagePartition {
            plan_digest: crate::hash::digest(&[stage.as_str(), "whole"]),
            units: u64::from(partition.index == 1),
            total_units: 1,
            execution_ms: millis(started.elapsed()),
            whole_in: Some(1),
        });
    }
    if entry.analyses_packages {
        report.notes.extend(left_out_packages(ctx, stage));
    }
    report.duration_ms = millis(started.elapsed());
    if let Some(share) = report.partition.as_mut().filter(|s| s.execution_ms == 0) {
        // A stage whose units are not the kernel's (fuzz targets): its whole time.
        share.execution_ms = report.duration_ms;
    }
    report.overhead_ms = millis(own_cpu_time().saturating_sub(cpu_before));
    let tally: Vec<String> = ["tests_run", "programs_run"]
        .iter()
        .filter(|key| report.counts.contains_key(**key))
        .map(|key| format!("{} {}", report.count(key), key.replace('_', " ")))
        .collect();
    ctx.progress.note(&format!(
        "{}{}{}: {} findings",
        report.status.as_str(),
        if tally.is_empty() { "" } else { ", " },
        tally.join(", "),
        report.findings.len()
    ));
    ctx.progress.stage_finished();
    report
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// CPU time of runner's own process, all threads, without its children.
fn own_cpu_time() -> Duration {
    use nix::sys::resource::{getrusage, UsageWho};
    getrusage(UsageWho::RUSAGE_SELF).map_or(Duration::ZERO, |usage| {
        let user = usage.user_time();
        let system = usage.system_time();
        let micros =
            (user.tv_sec() + system.tv_sec()) * 1_000_000 + user.tv_usec() + system.tv_usec();
        Duration::from_micros(u64::try_from(micros).unwrap_or(0))
    })
}

pub fn plan(stage: StageName, ctx: &Context) -> Result<StagePlan> {
    let entry = registry::of(stage);
    let mut plan = (entry.plan)(ctx)?;
    if entry.analyses_packages {
        let names: Vec<&str> = ctx
            .stage_members(stage)
            .iter()
            .map(|member| member.name.as_str())
            .collect();
        plan.notes
            .insert(0, format!("packages: {}", names.join(", ")));
    }
    Ok(plan)
}

/// The stage's note when it analysed only some of the workspace's members, naming the
/// others: a reader must not take a PASS for the packages left out.
fn left_out_packages(ctx: &Context, stage: StageName) -> Option<String> {
    let analysed = ctx.stage_members(stage);
    let left_out: Vec<&str> = ctx
        .workspace
        .members
        .iter()
        .filter(|member| !analysed.iter().any(|chosen| chosen.id == member.id))
        .map(|member| member.name.as_str())
        .collect();
    if left_out.is_empty() || analysed.is_empty() {
        return None;
    }
    let names: Vec<&str> = analysed.iter().map(|member| member.name.as_str()).collect();
    Some(format!(
        "analysed the packages {}; not {} (the command line's package selection, the stage's \
         `packages` / `exclude-packages`, or the packages' own `skip`)",
        names.join(", "),
        left_out.join(", ")
    ))
}
