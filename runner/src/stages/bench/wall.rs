//! Wall-time mode: the saved baseline is put where criterion looks for it, each benchmark
//! binary runs with criterion's own statistics, and the results are read from its files.

use std::time::Instant;

use anyhow::{Context as _, Result};
use camino::Utf8Path;

use super::commands::{self, BenchBinary};
use super::criterion::{self, Measured};
use super::settings::Settings;
use crate::plan::Context;

/// The folder of a baseline that holds criterion's files.
pub fn saved_dir(settings: &Settings) -> camino::Utf8PathBuf {
    settings.baseline_dir.join("wall")
}

/// Starts criterion's folder afresh with the saved baseline in it, so that nothing from an
/// earlier run passes for this one. Returns how many benchmarks have a baseline.
pub fn prepare(settings: &Settings) -> Result<usize> {
    let home = &settings.criterion_home;
    if home.exists() {
        std::fs::remove_dir_all(home).with_context(|| format!("cannot clear {home}"))?;
    }
    crate::process::ensure_writable_dir(home)?;
    criterion::restore(&saved_dir(settings), home, &settings.baseline)
}

/// Runs one binary's benchmarks; returns the results that are new since the binaries run
/// before it, so each result is attributed to its binary.
pub fn measure(
    ctx: &Context,
    settings: &Settings,
    binary: &BenchBinary,
    seen: &[String],
    logs: &Utf8Path,
    deadline: Instant,
) -> Result<Vec<Measured>> {
    let filter = commands::filter(&ctx.filters);
    let cmd = commands::wall_command(binary, settings, filter.as_deref());
    ctx.progress.note(&format!("timing {}", binary.label()));
    let stem = logs.join(binary.slug());
    let finished = commands::run_step(ctx, &cmd, Some(&stem), deadline)?;
    commands::require_success(&finished, &format!("{} (log: {stem}.err)", binary.label()))?;
    Ok(
        criterion::measured(&settings.criterion_home, &settings.baseline)?
            .into_iter()
            .filter(|result| !seen.contains(&result.id))
            .collect(),
    )
}
