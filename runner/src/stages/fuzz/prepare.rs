//! Before fuzzing: the targets of every project (selected by config and filters), one build
//! of them, and the versions of the fuzzing tools for the report.

use std::time::Instant;

use anyhow::{bail, Result};
use camino::{Utf8Path, Utf8PathBuf};

use super::commands;
use super::discover::{self, FuzzTarget};
use super::settings::Settings;
use crate::plan::Context;
use crate::process::RunOptions;

/// The fuzzing tools actually used: cargo-fuzz, and the libFuzzer each project locks.
pub fn versions(ctx: &Context, projects: &[Utf8PathBuf]) -> String {
    let cargo_fuzz = commands::version(ctx)
        .output_text()
        .ok()
        .and_then(|text| crate::provision::version_in(&text))
        .unwrap_or_else(|| "unknown".to_owned());
    let locked: Vec<String> = projects
        .iter()
        .map(|dir| {
            let version =
                discover::libfuzzer_sys_version(dir).unwrap_or_else(|| "unlocked".to_owned());
            let name = ctx
                .workspace
                .relative(dir)
                .map_or_else(|| dir.to_string(), ToString::to_string);
            format!("libfuzzer-sys {version} ({name})")
        })
        .collect();
    format!("tools: cargo-fuzz {cargo_fuzz}, {}", locked.join(", "))
}

/// Lists every project's targets; returns the selected ones and how many exist.
pub fn list_targets(
    ctx: &Context,
    settings: &Settings,
    projects: &[Utf8PathBuf],
) -> Result<(Vec<FuzzTarget>, usize)> {
    let mut all = Vec::new();
    for dir in projects {
        let listing = commands::list(ctx, dir).output_text()?;
        all.extend(discover::targets_of(
            &ctx.workspace,
            dir,
            &listing,
            projects.len() > 1,
        ));
    }
    let found = all.len();
    let selected = all
        .into_iter()
        .filter(|t| settings.selects(&t.name, &t.label))
        .collect();
    Ok((selected, found))
}

/// Builds before fuzzing, one cargo at a time, so parallel sessions never wait on the
/// build lock and a compile error is one clear stage error.
pub fn build(
    ctx: &Context,
    settings: &Settings,
    projects: &[Utf8PathBuf],
    targets: &[FuzzTarget],
    found: usize,
    logs: &Utf8Path,
    deadline: Instant,
) -> Result<()> {
    for dir in projects {
        let mine: Vec<&FuzzTarget> = targets.iter().filter(|t| t.fuzz_dir == *dir).collect();
        // Everything at once when nothing is filtered out: one cargo run instead of many.
        let names: Vec<Option<&str>> = if targets.len() == found {
            vec![None]
        } else {
            mine.iter().map(|t| Some(t.name.as_str())).collect()
        };
        for name in names {
            ctx.progress
                .note(&format!("building {}", name.unwrap_or(dir.as_str())));
            let cmd = commands::build(ctx, settings, dir, name);
            ctx.progress.verbose(&cmd.to_string());
            let slug = discover::slug(name.unwrap_or("all"));
            let finished = cmd.run(&RunOptions {
                timeout: Some(deadline.saturating_duration_since(Instant::now())),
                log_stem: Some(logs.join(format!("build-{slug}"))),
                ..RunOptions::default()
            })?;
            if !finished.termination.success() {
                bail!(
                    "building the fuzz targets of {dir} failed ({}): {}",
                    finished.termination,
                    crate::cargo_output::first_error(&finished)
                );
            }
        }
    }
    Ok(())
}
