//! The analysis stages: which exist, which apply, and dispatch to each stage's module.

pub mod fuzz;
pub mod miri;

use std::time::Instant;

use anyhow::Result;

use crate::cli::StageName;
use crate::plan::{Context, StagePlan};
use crate::report::StageReport;

/// Stages this version of runner can run.
pub const AVAILABLE: &[StageName] = &[StageName::Miri, StageName::Fuzz];

pub fn is_available(stage: StageName) -> bool {
    AVAILABLE.contains(&stage)
}

/// A clear error for a stage that is named but not part of this version.
pub fn unavailable(stage: StageName) -> anyhow::Error {
    let available: Vec<&str> = AVAILABLE.iter().map(|s| s.as_str()).collect();
    anyhow::anyhow!(
        "stage `{stage}` is not available in runner {} (available: {})",
        env!("CARGO_PKG_VERSION"),
        available.join(", ")
    )
}

/// Runs one stage; an error inside it becomes an ERROR status with the reason, and the
/// duration is always recorded.
pub fn run(stage: StageName, ctx: &Context) -> StageReport {
    let started = Instant::now();
    let result: Result<StageReport> = match stage {
        StageName::Miri => miri::run(ctx),
        StageName::Fuzz => fuzz::run(ctx),
        other => Err(unavailable(other)),
    };
    let mut report =
        result.unwrap_or_else(|error| StageReport::error(stage, crate::exit::one_line(&error)));
    report.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    report
}

pub fn plan(stage: StageName, ctx: &Context) -> Result<StagePlan> {
    match stage {
        StageName::Miri => Ok(miri::plan(ctx)),
        StageName::Fuzz => fuzz::plan(ctx),
        other => Err(unavailable(other)),
    }
}
