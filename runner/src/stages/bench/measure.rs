//! One run of every benchmark in the configured mode, judged against the baseline, and the
//! baseline's upkeep: benchmarks it lacks are added; with `update-baseline`, a run without
//! regressions replaces it.

use std::time::Instant;

use anyhow::Result;
use camino::Utf8Path;

use super::commands::{self, BenchBinary};
use super::compare::{self, Row, Verdict};
use super::criterion;
use super::instructions::{self, Saved};
use super::settings::Settings;
use super::wall;
use crate::exec::partition;
use crate::plan::Context;
use crate::report::model::StagePartition;

/// Every benchmark's row with the binary it came from, what could not be measured, and
/// remarks for the report.
#[derive(Debug, Default)]
pub struct Measurement {
    pub rows: Vec<(BenchBinary, Row)>,
    /// One reproduction command per row, in the same order.
    pub repros: Vec<String>,
    pub errors: Vec<String>,
    pub notes: Vec<String>,
    /// Under `--partition` (instruction counts only): this slice's share of the benchmarks,
    /// and every benchmark listed, in any slice.
    pub partition: Option<StagePartition>,
    pub listed: Vec<String>,
}

impl Measurement {
    fn regressed(&self) -> bool {
        self.rows
            .iter()
            .any(|(_, row)| row.verdict == Verdict::Regressed)
    }

    /// Whether this run's value of a row goes into the baseline.
    fn saves(&self, settings: &Settings, row: &Row) -> bool {
        row.verdict == Verdict::New
            || (settings.update_baseline && !self.regressed() && self.errors.is_empty())
    }

    fn saved_note(&self, settings: &Settings, saved: usize) -> Option<String> {
        if saved == 0 {
            return None;
        }
        let dir = &settings.baseline_display;
        let replaced = saved
            - self
                .rows
                .iter()
                .filter(|(_, r)| r.verdict == Verdict::New)
                .count();
        Some(if replaced == 0 {
            format!(
                "baseline `{}` recorded for {saved} benchmark(s) in {dir}; later runs compare \
                 against it",
                settings.baseline
            )
        } else {
            format!(
                "baseline `{}` in {dir} updated with this run's results (update-baseline)",
                settings.baseline
            )
        })
    }
}

fn repro(binary: &BenchBinary, command: &crate::process::Cmd) -> String {
    command.clone().cwd(binary.package_dir.clone()).pasteable()
}

/// Times every binary with criterion against the restored baseline.
pub fn wall(
    ctx: &Context,
    settings: &Settings,
    binaries: &[BenchBinary],
    logs: &Utf8Path,
    deadline: Instant,
) -> Result<Measurement> {
    wall::prepare(settings)?;
    let mut measurement = Measurement::default();
    let mut results = Vec::new();
    let mut seen: Vec<String> = Vec::new();
    for binary in binaries {
        match wall::measure(ctx, settings, binary, &seen, logs, deadline) {
            Ok(found) => {
                for result in found {
                    seen.push(result.id.clone());
                    let row = compare::wall_row(&result, settings);
                    let cmd = commands::wall_repro(binary, settings, &result.id);
                    measurement.repros.push(repro(binary, &cmd));
                    measurement.rows.push((binary.clone(), row));
                    results.push(result);
                }
            }
            Err(error) => measurement.errors.push(crate::exit::one_line(&error)),
        }
    }
    let mut saved = 0;
    for (result, (_, row)) in results.iter().zip(&measurement.rows) {
        if measurement.saves(settings, row) {
            criterion::save(&settings.criterion_home, result, &wall::saved_dir(settings))?;
            saved += 1;
        }
    }
    measurement
        .notes
        .extend(measurement.saved_note(settings, saved));
    Ok(measurement)
}

/// Counts every benchmark's instructions under callgrind against the saved counts.
pub fn instructions(
    ctx: &Context,
    settings: &Settings,
    binaries: &[BenchBinary],
    logs: &Utf8Path,
    deadline: Instant,
    valgrind: &str,
) -> Result<Measurement> {
    let mut baseline = instructions::load(&settings.baseline_dir)?.unwrap_or_default();
    let mut measurement = Measurement::default();
    if !baseline.valgrind.is_empty() && baseline.valgrind != valgrind {
        measurement.notes.push(format!(
            "the baseline was counted with {}, this run with {valgrind}: counts of different \
             valgrind versions may differ",
            baseline.valgrind
        ));
    }
    // Every binary's benchmarks, then this slice's share of them (all without a partition):
    // a count is the same on any machine, so slices compare like one run.
    let mut listed: Vec<(usize, String)> = Vec::new();
    for (at, binary) in binaries.iter().enumerate() {
        match instructions::list(ctx, settings, binary, logs, deadline) {
            Ok(ids) => listed.extend(ids.into_iter().map(|id| (at, id))),
            Err(error) => measurement.errors.push(crate::exit::one_line(&error)),
        }
    }
    let listed_ids: Vec<String> = listed.iter().map(|(_, id)| id.clone()).collect();
    let (kept, share) = partition::keep_in_families(
        ctx.partition,
        "bench",
        listed,
        |(at, id)| {
            let label = binaries[*at].label();
            (format!("{label} {id}"), label)
        },
        None,
    );
    measurement.partition = share;
    measurement.listed = listed_ids;
    let mut counts = Vec::new();
    for (at, id) in kept {
        let binary = &binaries[at];
        match instructions::count(ctx, settings, binary, &id, logs, deadline) {
            Ok(count) => {
                let row = compare::instructions_row(
                    &count.id,
                    baseline.counts.get(&count.id).copied(),
                    count.instructions,
                    settings,
                );
                let profile = settings.callgrind_dir.join("repro.out");
                let cmd = commands::callgrind_command(binary, settings, &count.id, &profile);
                measurement.repros.push(repro(binary, &cmd));
                if count.whole_process {
                    measurement.notes.push(format!(
                        "`{}`: criterion's timing loop (`Bencher::iter*`) is not in the \
                         profile, so the count covers the whole process",
                        count.id
                    ));
                }
                measurement.rows.push((binary.clone(), row));
                counts.push(count);
            }
            Err(error) => measurement.errors.push(crate::exit::one_line(&error)),
        }
    }
    let mut saved = 0;
    for (count, (_, row)) in counts.iter().zip(&measurement.rows) {
        if measurement.saves(settings, row) {
            baseline.counts.insert(count.id.clone(), count.instructions);
            saved += 1;
        }
    }
    if saved > 0 && ctx.partition.is_some() {
        measurement.notes.push(
            "under --partition each slice adds to the baseline only the benchmarks it counted"
                .to_owned(),
        );
    }
    if saved > 0 {
        instructions::save(
            &settings.baseline_dir,
            &Saved {
                valgrind: valgrind.to_owned(),
                counts: baseline.counts,
            },
        )?;
    }
    measurement
        .notes
        .extend(measurement.saved_note(settings, saved));
    Ok(measurement)
}
