//! The coverage stage under `--partition K/N` (llvm-cov engine): every harness's tests listed
//! under instrumentation, this slice's share taken by the kernel's own split
//! (`exec::partition::slice`, so coverage divides like every other stage), each harness run
//! on its share, and the engine's export and tracefile kept in the stage folder with the
//! settings `runner merge` judges the added-up slices by (`slice.json`).

use std::time::Instant;

use anyhow::{bail, Context as _, Result};
use camino::Utf8Path;
use serde::{Deserialize, Serialize};

use super::llvm_cov;
use super::outcome::{self, EngineOutput};
use super::settings::{Settings, Threshold};
use super::Artifacts;
use crate::exec::partition;
use crate::exec::{Binary, Durations, TestId};
use crate::inventory::{self, UnitKind};
use crate::libtest::TestResult;
use crate::plan::Context;
use crate::process::RunOptions;
use crate::report::model::StagePartition;
use crate::stage_name::StageName;

/// The file in a slice's stage folder that says what `runner merge` needs besides the
/// engine's export and tracefile.
pub const SLICE_FILE: &str = "slice.json";

/// What a slice leaves for `runner merge`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SliceData {
    /// Whether this slice ran tests, and so wrote the export and the tracefile. A slice the
    /// split gave no coverage test measured nothing, which is not missing data.
    pub measured: bool,
    pub judging: Judging,
}

/// The settings the merged coverage is judged by; every slice must carry the same.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Judging {
    /// The stage's one-line description of what is measured and judged.
    pub described: String,
    pub thresholds: Vec<Threshold>,
    pub critical_paths: Vec<String>,
    pub critical_functions: Vec<String>,
    /// The engine's command for a person, with the run's test filters (paths of the machine
    /// that ran the slice).
    pub repro: String,
}

impl Judging {
    /// The same verdict rules: everything but the command, whose paths differ by machine.
    pub fn same_rules(&self, other: &Judging) -> bool {
        (
            &self.described,
            &self.thresholds,
            &self.critical_paths,
            &self.critical_functions,
        ) == (
            &other.described,
            &other.thresholds,
            &other.critical_paths,
            &other.critical_functions,
        )
    }

    pub fn of(settings: &Settings, repro: String) -> Judging {
        Judging {
            described: settings.describe(),
            thresholds: settings.thresholds.clone(),
            critical_paths: settings.critical_paths.clone(),
            critical_functions: settings.critical_functions.clone(),
            repro,
        }
    }
}

/// What this slice ran and measured.
pub struct Share {
    /// `None` when the split gave this slice no coverage test.
    pub output: Option<EngineOutput>,
    pub partition: StagePartition,
    pub notes: Vec<String>,
}

/// Every harness of the stage's packages with its tests (after the run's filters), listed
/// through cargo-llvm-cov, which builds them as the run will; doctests are one whole piece.
fn list(
    ctx: &Context,
    settings: &Settings,
    logs: &Utf8Path,
    deadline: Instant,
    notes: &mut Vec<String>,
) -> Result<Vec<Binary>> {
    ctx.progress
        .note("building and listing the tests under instrumentation");
    let members: Vec<&str> = ctx
        .stage_members(StageName::Coverage)
        .iter()
        .map(|member| member.id.as_str())
        .collect();
    let (harnesses, needing_features) =
        inventory::declared_units(&ctx.workspace.manifest_path, &members, settings.doctests)?;
    notes.extend(harnesses.own_main_note());
    if !needing_features.is_empty() {
        notes.push(format!(
            "not measured under --partition: {} (they need features; cargo test leaves them \
             out unless the features are on)",
            needing_features.join(", ")
        ));
    }
    let lister = llvm_cov::harness_base(ctx, settings);
    let mut binaries = Vec::new();
    for unit in harnesses.libtest {
        let tests = if unit.kind == UnitKind::Doc {
            Vec::new()
        } else {
            let options = RunOptions {
                timeout: Some(deadline.saturating_duration_since(Instant::now())),
                log_stem: Some(logs.join(format!("list-{}", unit.slug()))),
                ..RunOptions::default()
            };
            let tests = inventory::list_tests(&lister, &unit, &ctx.filters, &options)?;
            if tests.is_empty() {
                continue;
            }
            tests
        };
        binaries.push(Binary {
            target: ctx.host.clone(),
            unit,
            tests,
        });
    }
    Ok(binaries)
}

pub fn run(
    ctx: &Context,
    settings: &Settings,
    artifacts: &Artifacts,
    deadline: Instant,
) -> Result<Share> {
    let logs = &artifacts.logs;
    let mut notes = Vec::new();
    let binaries = list(ctx, settings, logs, deadline, &mut notes)?;
    // Listing ran every harness once, which left profiles: they must not count.
    llvm_cov::clean(ctx, settings, logs, deadline)?;
    let known = Durations::load(&ctx.durations_file);
    let slice = partition::slice(
        ctx.partition,
        &binaries,
        &known,
        StageName::Coverage.as_str(),
    );
    let Some(mut record) = slice.record else {
        bail!("the coverage stage split its tests without a partition");
    };
    if record.total_units == 0 {
        bail!("no tests ran, so nothing was measured");
    }
    let started = Instant::now();
    let mut tests: Vec<TestResult> = Vec::new();
    let mut durations = Durations::default();
    for (index, binary) in slice.binaries.iter().enumerate() {
        if !slice.here[index] {
            continue;
        }
        // A harness whose every test is here runs unnamed: libtest compares every test with
        // every name given.
        let every_test =
            binary.tests.len() == binaries[index].tests.len() && ctx.filters.is_empty();
        let names = (!binary.runs_whole() && !every_test).then_some(binary.tests.as_slice());
        let cmd = llvm_cov::harness_command(ctx, settings, &binary.unit, names);
        ctx.progress.note(&format!(
            "running {} under instrumentation",
            binary.unit.label()
        ));
        let finished = outcome::run_step(
            ctx,
            &cmd,
            &logs.join(format!("test-{}", binary.unit.slug())),
            deadline,
        )?;
        let what = format!("running {} under coverage", binary.unit.label());
        let results = outcome::test_results(&finished, &what)?;
        if !binary.runs_whole() {
            let label = binary.unit.label();
            for result in &results {
                if let Some(seconds) = result.exec_time {
                    let stage = StageName::Coverage.as_str();
                    let test = TestId::new(&binary.target, &label, &result.name);
                    durations.insert(stage, &test, seconds);
                }
            }
        }
        tests.extend(results);
    }
    // Like the kernel's stages, a slice keeps its measurements in its report folder, and
    // `runner merge` joins them into the file the next run splits by.
    Durations::save_merged(&ctx.durations_written(), &durations);
    record.execution_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let measured = slice.here.iter().any(|here| *here);
    let output = if measured {
        llvm_cov::write_reports(ctx, settings, artifacts, deadline)?;
        Some(llvm_cov::read_output(ctx, settings, artifacts, tests)?)
    } else {
        notes.push("the split gave this slice none of the coverage tests".to_owned());
        None
    };
    let repro = output.as_ref().map_or_else(
        || llvm_cov::repro(ctx, settings).pasteable(),
        |output| output.repro_with(&ctx.filters),
    );
    write(
        &artifacts.dir,
        &SliceData {
            measured,
            judging: Judging::of(settings, repro),
        },
    )?;
    Ok(Share {
        output,
        partition: record,
        notes,
    })
}

fn write(dir: &Utf8Path, data: &SliceData) -> Result<()> {
    let text = serde_json::to_string_pretty(data).context("serialising the slice's coverage")?;
    crate::atomic::write(&dir.join(SLICE_FILE), text.as_bytes())
}

/// A slice's `slice.json`, or an error naming the slice: without it the merge cannot tell
/// what the slice measured.
pub fn read(dir: &Utf8Path) -> Result<SliceData> {
    let path = dir.join(SLICE_FILE);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("{path} is missing: the slice kept no coverage data"))?;
    serde_json::from_str(&text).with_context(|| format!("{path} is not a slice's coverage data"))
}
