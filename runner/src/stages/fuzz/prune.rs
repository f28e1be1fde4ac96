//! `--mode prune`: each kept corpus minimized with `cargo fuzz cmin`, measured before and
//! after by one replay of it (`-runs=0`: libFuzzer's `INITED` line gives the coverage and
//! features the corpus reaches), so the report shows what was dropped and that nothing was
//! lost.

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::{bail, Result};
use camino::Utf8Path;

use super::commands::{self, Length};
use super::corpus;
use super::discover::slug;
use super::discover::{self, FuzzTarget};
use super::libfuzzer;
use super::settings::Settings;
use crate::exec::pool::{self, Done};
use crate::plan::Context;
use crate::process::RunOptions;
use crate::report::{StageReport, Status, TargetSummary};

/// What one corpus held before and after.
#[derive(Debug, Default)]
struct Pruned {
    inputs: (u64, u64),
    bytes: (u64, u64),
    cov: (u64, u64),
    ft: (u64, u64),
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
    let mut results: BTreeMap<usize, Result<Pruned>> = BTreeMap::new();
    pool::run(
        ctx.jobs,
        (0..targets.len()).collect(),
        &|index, _| {
            let target = &targets[index];
            ctx.progress.note(&format!("{}: pruning", target.label));
            Done::with((index, prune(ctx, settings, target, dir, logs, deadline)))
        },
        &mut |(index, result), _| {
            results.insert(index, result);
        },
    );
    let mut errors = Vec::new();
    for (index, target) in targets.iter().enumerate() {
        match results.remove(&index) {
            Some(Ok(pruned)) => report.targets.push(TargetSummary {
                name: target.label.clone(),
                counts: counts(&pruned),
            }),
            Some(Err(error)) => {
                errors.push(format!(
                    "{}: {}",
                    target.label,
                    crate::exit::one_line(&error)
                ));
            }
            None => errors.push(format!(
                "{}: interrupted before it was pruned",
                target.label
            )),
        }
    }
    let mut totals = BTreeMap::new();
    for summary in &report.targets {
        for (key, value) in &summary.counts {
            if key.starts_with("corpus_") {
                *totals.entry(key.clone()).or_insert(0) += value;
            }
        }
    }
    totals.insert("targets".to_owned(), targets.len() as u64);
    report.counts = totals;
    if !errors.is_empty() {
        report.status = Status::Error;
        report.reason = Some(errors.join("; "));
    }
    report
}

fn counts(pruned: &Pruned) -> BTreeMap<String, u64> {
    [
        ("corpus_inputs_before", pruned.inputs.0),
        ("corpus_inputs_after", pruned.inputs.1),
        ("corpus_bytes_before", pruned.bytes.0),
        ("corpus_bytes_after", pruned.bytes.1),
        ("cov_before", pruned.cov.0),
        ("cov_after", pruned.cov.1),
        ("ft_before", pruned.ft.0),
        ("ft_after", pruned.ft.1),
    ]
    .into_iter()
    .map(|(key, value)| (key.to_owned(), value))
    .collect()
}

fn prune(
    ctx: &Context,
    settings: &Settings,
    target: &FuzzTarget,
    dir: &Utf8Path,
    logs: &Utf8Path,
    deadline: Instant,
) -> Result<Pruned> {
    let store = corpus::store(settings, target);
    let mut pruned = Pruned::default();
    let size = discover::corpus_size(&store)?;
    (pruned.inputs.0, pruned.bytes.0) = size;
    if size.0 == 0 {
        return Ok(pruned);
    }
    let stem = logs.join(slug(&target.label));
    let artifacts = dir.join("artifacts").join(slug(&target.label));
    std::fs::create_dir_all(&artifacts)?;
    (pruned.cov.0, pruned.ft.0) = measure(
        ctx,
        settings,
        target,
        &store,
        &artifacts,
        &format!("{stem}-before"),
        deadline,
    )?;
    let cmd = commands::cmin(ctx, settings, target, &store);
    ctx.progress.verbose(&cmd.to_string());
    let finished = cmd.run(&RunOptions {
        timeout: Some(deadline.saturating_duration_since(Instant::now())),
        log_stem: Some(format!("{stem}-cmin").into()),
        ..RunOptions::default()
    })?;
    if !finished.termination.success() {
        bail!(
            "cargo fuzz cmin ended ({}): {}",
            finished.termination,
            crate::cargo_output::first_error(&finished)
        );
    }
    (pruned.inputs.1, pruned.bytes.1) = discover::corpus_size(&store)?;
    (pruned.cov.1, pruned.ft.1) = measure(
        ctx,
        settings,
        target,
        &store,
        &artifacts,
        &format!("{stem}-after"),
        deadline,
    )?;
    Ok(pruned)
}

/// The coverage and features a corpus reaches: one run of each input, no mutation.
fn measure(
    ctx: &Context,
    settings: &Settings,
    target: &FuzzTarget,
    store: &Utf8Path,
    artifacts: &Utf8Path,
    stem: &str,
    deadline: Instant,
) -> Result<(u64, u64)> {
    let cmd = commands::run(
        ctx,
        settings,
        target,
        &[store],
        artifacts,
        Length::ReplayOnly,
    );
    ctx.progress.verbose(&cmd.to_string());
    let finished = cmd.run(&RunOptions {
        timeout: Some(deadline.saturating_duration_since(Instant::now())),
        log_stem: Some(stem.into()),
        ..RunOptions::default()
    })?;
    let session = libfuzzer::parse(&finished.stderr);
    if session.crash.is_some() || !finished.termination.success() {
        bail!(
            "the corpus does not replay cleanly ({}); run `--mode replay` to see the crash",
            finished.termination
        );
    }
    let status = session.last_status.unwrap_or_default();
    Ok((status.cov, status.ft))
}
