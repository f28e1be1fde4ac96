//! `runner merge`: joins the report folders of the N jobs of a partitioned run into one
//! report, after checking they are the N slices of one plan (same revision, pin and split,
//! each slice exactly once). Tests and findings are unioned; counts, cross-stage issues, the
//! baseline comparison and the gate are computed again over the whole; the slices' durations
//! become the file the next run splits by.

use std::collections::BTreeMap;

use anyhow::{bail, Context as _, Result};
use camino::{Utf8Path, Utf8PathBuf};

use crate::exec::Durations;
use crate::exit::Exit;
use crate::plan::DURATIONS_COPY;
use crate::progress::Progress;
use crate::report::assemble::{self, Baseline, GateSettings};
use crate::report::model::{CacheUse, Finding, PartitionInfo, StageReport, Status, TargetSummary};
use crate::report::{baseline, folder, gate, write, Report};

/// What `runner merge` was asked to do.
pub struct Request<'a> {
    pub dirs: &'a [Utf8PathBuf],
    pub out: &'a Utf8Path,
    pub baseline: Option<&'a Utf8Path>,
}

/// One partition's report and where it came from.
struct Slice {
    dir: Utf8PathBuf,
    report: Report,
    partition: PartitionInfo,
}

pub fn run(request: &Request<'_>, progress: &Progress) -> Result<Exit> {
    let mut slices = load(request.dirs)?;
    check(&slices)?;
    let _lock = claim_out(request.out, &slices, progress)?;
    slices.sort_by_key(|slice| slice.partition.index);
    let mut merged = join(&slices);
    let coverage = merge_coverage(&slices, &mut merged);
    let previous = match baseline::locate(request.baseline, &merged.workspace_root) {
        Some(path) => Some(Baseline {
            report: baseline::load(&path)?,
            path,
        }),
        None => None,
    };
    let settings = GateSettings {
        fail_on: merged.gate.fail_on,
        new_only: slices[0].report.gate.new_only,
        baseline: previous.as_ref(),
    };
    let exit = assemble::complete(&mut merged, &settings, false);
    merged.run_id = Some(write::new_run_id());
    write::write_all(&merged, request.out)?;
    merge_durations(&slices, request.out);
    copy_artifacts(&slices, request.out)?;
    if let Some(coverage) = &coverage {
        crate::stages::coverage::merge::write(coverage, request.out)?;
    }
    let verdict = if merged.gate.passed { "PASS" } else { "FAIL" };
    progress.always(&format!(
        "runner: merged {} partitions; gate {verdict}; report: {}",
        slices.len(),
        request.out.join("report.md")
    ));
    if exit == Exit::NotEvaluated {
        bail!(
            "{}; details in {}",
            merged.gate.reasons.join("; "),
            request.out.join("report.md")
        );
    }
    Ok(exit)
}

/// `--out` by the rules of every report folder (`report::folder::claim`: runner's own, empty,
/// or in the build output; never among the sources, the workspace root included), never one
/// of the slices (a re-merge would then read the merged report as a slice), and locked as a
/// job locks it, without waiting: a job still writing there would overwrite the merge.
fn claim_out(out: &Utf8Path, slices: &[Slice], progress: &Progress) -> Result<crate::lock::Lock> {
    let resolved = |dir: &Utf8Path| {
        std::path::absolute(dir)
            .ok()
            .and_then(|path| path.canonicalize().ok().or(Some(path)))
    };
    let out_path = resolved(out);
    for slice in slices {
        if out_path.is_some() && out_path == resolved(&slice.dir) {
            bail!(
                "--out {out} is one of the slices being merged ({}): give a folder of its own",
                slice.dir
            );
        }
    }
    let root = &slices[0].report.workspace_root;
    let tree = folder::Tree {
        root,
        target_dir: &root.join("target"),
    };
    folder::claim(out, tree, false)?;
    crate::lock::acquire(
        &out.join(folder::LOCK),
        &format!("the report folder {out}"),
        crate::lock::Wait::Never,
        progress,
    )
}

fn load(dirs: &[Utf8PathBuf]) -> Result<Vec<Slice>> {
    let mut slices = Vec::new();
    for dir in dirs {
        let path = dir.join("report.json");
        if !path.is_file() {
            bail!("{dir} holds no report.json: give the report folders of the partition jobs");
        }
        let report = baseline::load_as(&path, "the slice's report")?;
        let Some(partition) = report.partition else {
            bail!("{path} is not a partition's report: it was not run with --partition K/N");
        };
        slices.push(Slice {
            dir: dir.clone(),
            report,
            partition,
        });
    }
    if slices.is_empty() {
        bail!("no report folders to merge");
    }
    Ok(slices)
}

/// The slices must be the N slices of one plan: otherwise a unit could be missing or run
/// twice without anyone noticing.
fn check(slices: &[Slice]) -> Result<()> {
    let first = &slices[0];
    let count = first.partition.count;
    for slice in slices {
        let other = &slice.report;
        if slice.partition.count != count {
            bail!(
                "partitions of different splits: {} is {}/{}, {} is {}/{}",
                first.dir,
                first.partition.index,
                count,
                slice.dir,
                slice.partition.index,
                slice.partition.count
            );
        }
        let differs = |what: &str, a: &dyn std::fmt::Debug, b: &dyn std::fmt::Debug| {
            anyhow::anyhow!(
                "partitions of different runs: {} has {what} {a:?}, {} has {b:?}",
                first.dir,
                slice.dir
            )
        };
        if other.revision != first.report.revision {
            return Err(differs("revision", &first.report.revision, &other.revision));
        }
        let pin = |r: &Report| {
            (
                r.environment.pinned_channel.clone(),
                r.environment.pinned_commit.clone(),
            )
        };
        if pin(other) != pin(&first.report) {
            return Err(differs("pin", &pin(&first.report), &pin(other)));
        }
        if other.runner_version != first.report.runner_version {
            return Err(differs(
                "runner version",
                &first.report.runner_version,
                &other.runner_version,
            ));
        }
        let stages = |r: &Report| r.stages.iter().map(|s| s.stage).collect::<Vec<_>>();
        if stages(other) != stages(&first.report) {
            return Err(differs("stages", &stages(&first.report), &stages(other)));
        }
        for (mine, theirs) in first.report.stages.iter().zip(&other.stages) {
            let digest = |s: &StageReport| s.partition.as_ref().map(|p| p.plan_digest.clone());
            if digest(mine).is_some() && digest(theirs).is_some() && digest(mine) != digest(theirs)
            {
                bail!(
                    "partitions split the {} work differently ({} and {}): their jobs read \
                     different durations files or listed different tests; give every job the \
                     same durations file",
                    mine.stage,
                    first.dir,
                    slice.dir
                );
            }
        }
    }
    let mut seen: BTreeMap<usize, &Utf8Path> = BTreeMap::new();
    for slice in slices {
        if let Some(earlier) = seen.insert(slice.partition.index, &slice.dir) {
            bail!(
                "partition {}/{count} is given twice: {earlier} and {}",
                slice.partition.index,
                slice.dir
            );
        }
    }
    let missing: Vec<String> = (1..=count)
        .filter(|index| !seen.contains_key(index))
        .map(|index| format!("{index}/{count}"))
        .collect();
    if !missing.is_empty() {
        bail!("partition {} is missing", missing.join(", "));
    }
    Ok(())
}

/// The slices' reports as one: every stage's parts unioned, in the first slice's order.
fn join(slices: &[Slice]) -> Report {
    let mut merged = slices[0].report.clone();
    merged.partition = None;
    merged.partial = slices.iter().any(|slice| slice.report.partial);
    merged.stages = (0..merged.stages.len())
        .map(|at| {
            let parts: Vec<&StageReport> = slices
                .iter()
                .map(|slice| &slice.report.stages[at])
                .collect();
            join_stage(&parts, merged.gate.fail_on, slices.len())
        })
        .collect();
    merged
}

fn join_stage(
    parts: &[&StageReport],
    fail_on: crate::report::Severity,
    count: usize,
) -> StageReport {
    // A stage that does not split ran in one slice and was skipped in the others.
    let ran: Vec<&StageReport> = parts
        .iter()
        .copied()
        .filter(|part| {
            part.status != Status::Skipped
                || part.partition.as_ref().is_none_or(|p| p.whole_in.is_none())
        })
        .collect();
    let ran = if ran.is_empty() { parts.to_vec() } else { ran };
    let mut stage = StageReport::new(ran[0].stage, Status::Pass);
    // A split stage's logs are under `partitions/<K>/` (see `copy_artifacts`).
    stage.artifacts_dir = if ran.len() > 1 {
        ran[0]
            .artifacts_dir
            .as_ref()
            .map(|_| Utf8PathBuf::from("partitions"))
    } else {
        ran[0].artifacts_dir.clone()
    };
    stage.duration_ms = ran.iter().map(|p| p.duration_ms).max().unwrap_or(0);
    stage.overhead_ms = ran.iter().map(|p| p.overhead_ms).sum();
    let mut targets: Vec<TargetSummary> = Vec::new();
    for part in &ran {
        for (key, value) in &part.counts {
            *stage.counts.entry(key.clone()).or_insert(0) += value;
        }
        for target in &part.targets {
            match targets.iter_mut().find(|t| t.name == target.name) {
                Some(known) => {
                    for (key, value) in &target.counts {
                        *known.counts.entry(key.clone()).or_insert(0) += value;
                    }
                }
                None => targets.push(target.clone()),
            }
        }
        for note in &part.notes {
            if !stage.notes.contains(note) {
                stage.notes.push(note.clone());
            }
        }
        for finding in &part.findings {
            if !stage
                .findings
                .iter()
                .any(|known| same_finding(known, finding))
            {
                stage.findings.push(finding.clone());
            }
        }
        stage.tests.extend(part.tests.iter().cloned());
        if let Some(used) = &part.cache {
            let total = stage.cache.get_or_insert(CacheUse {
                tests: 0,
                saved_ms: 0,
                corrupt: 0,
            });
            total.tests += used.tests;
            total.saved_ms += used.saved_ms;
            total.corrupt += used.corrupt;
        }
        join_tables(&mut stage.tables, &part.tables);
    }
    stage.targets = targets;
    crate::report::model::sort_findings(&mut stage.findings);
    stage.tests.sort_by(|a, b| {
        (&a.target, &a.unit, &a.name, a.seed).cmp(&(&b.target, &b.unit, &b.name, b.seed))
    });
    let (status, reason) = merged_status(&ran, &stage.findings, fail_on);
    stage.status = status;
    stage.reason = reason;
    let slowest = parts
        .iter()
        .filter_map(|p| p.partition.as_ref())
        .map(|p| p.execution_ms)
        .max();
    if let (Some(slowest), true) = (slowest, ran.len() > 1) {
        stage.notes.push(format!(
            "merged from {count} partitions; the slowest ran its share in {}",
            crate::duration::human(std::time::Duration::from_millis(slowest))
        ));
    }
    stage
}

/// A stage's status over its slices: ERROR if one could not be evaluated, SKIPPED if none
/// applied, else from the union of findings (FAIL also when a slice failed on something that
/// is not a finding, such as a bench regression table).
fn merged_status(
    ran: &[&StageReport],
    findings: &[Finding],
    fail_on: crate::report::Severity,
) -> (Status, Option<String>) {
    let mut errors: Vec<&str> = Vec::new();
    for reason in ran
        .iter()
        .filter(|p| p.status == Status::Error)
        .filter_map(|p| p.reason.as_deref())
    {
        if !errors.contains(&reason) {
            errors.push(reason);
        }
    }
    if !errors.is_empty() {
        return (Status::Error, Some(errors.join("; ")));
    }
    if ran.iter().all(|p| p.status == Status::Skipped) {
        return (Status::Skipped, ran[0].reason.clone());
    }
    let reason = ran
        .iter()
        .find(|p| p.status != Status::Skipped)
        .and_then(|p| p.reason.clone());
    let status = if ran.iter().any(|p| p.status == Status::Fail) {
        Status::Fail
    } else {
        gate::status_from_findings(findings, fail_on)
    };
    (status, reason)
}

/// A slice's tables into the merged stage's: rows of a table every slice has (the same title
/// and columns: bench's comparisons, each slice with its own benchmarks) are joined, each row
/// once; a stage that ran whole has only its own.
fn join_tables(
    merged: &mut Vec<crate::report::model::Table>,
    part: &[crate::report::model::Table],
) {
    for table in part {
        let same = merged
            .iter_mut()
            .find(|known| known.title == table.title && known.columns == table.columns);
        match same {
            Some(known) => {
                for row in &table.rows {
                    if !known.rows.contains(row) {
                        known.rows.push(row.clone());
                    }
                }
            }
            None => merged.push(table.clone()),
        }
    }
}

/// Coverage is added up over the slices and judged again (`stages/coverage/merge.rs`); the
/// merged files are written once the report folder is ready.
fn merge_coverage(
    slices: &[Slice],
    merged: &mut Report,
) -> Option<crate::stages::coverage::merge::Merged> {
    use crate::stages::coverage::merge::{apply, SliceStage};
    let at = merged
        .stages
        .iter()
        .position(|stage| stage.stage == crate::stage_name::StageName::Coverage)?;
    // A coverage stage that ran whole in slice 1 (tarpaulin) is that slice's as it is.
    let split = slices.iter().all(|slice| {
        slice.report.stages[at]
            .partition
            .as_ref()
            .is_some_and(|p| p.whole_in.is_none())
    });
    if !split {
        return None;
    }
    let parts: Vec<SliceStage<'_>> = slices
        .iter()
        .map(|slice| SliceStage {
            index: slice.partition.index,
            stage_dir: slice.dir.join("coverage"),
            root: &slice.report.workspace_root,
        })
        .collect();
    let fail_on = merged.gate.fail_on;
    let root = merged.workspace_root.clone();
    apply(&parts, &mut merged.stages[at], &root, fail_on)
}

/// Units are disjoint, so a finding in two slices is one seen before the split (a build
/// failure every job hit), kept once.
fn same_finding(a: &Finding, b: &Finding) -> bool {
    a.fingerprint == b.fingerprint
        && a.target == b.target
        && a.test == b.test
        && a.seed == b.seed
        && a.message == b.message
}

/// Every slice's durations (the history it started from and what it measured) into the file
/// the next run splits by.
fn merge_durations(slices: &[Slice], out: &Utf8Path) {
    let path = out.join(DURATIONS_COPY);
    let _ = std::fs::remove_file(&path);
    for slice in slices {
        let measured = Durations::load(&slice.dir.join(DURATIONS_COPY));
        Durations::save_merged(&path, &measured);
    }
}

/// The slices' raw logs and artifacts: a stage that ran whole keeps its folder (the report
/// names files in it); a split stage's folders go under `partitions/<K>/`.
fn copy_artifacts(slices: &[Slice], out: &Utf8Path) -> Result<()> {
    for slice in slices {
        for stage in &slice.report.stages {
            let Some(dir) = &stage.artifacts_dir else {
                continue;
            };
            // A folder of the slice's own report folder, nothing outside it.
            if !dir
                .components()
                .all(|part| matches!(part, camino::Utf8Component::Normal(_)))
            {
                continue;
            }
            let source = slice.dir.join(dir);
            if !source.is_dir() || stage.status == Status::Skipped {
                continue;
            }
            let whole = stage
                .partition
                .as_ref()
                .is_some_and(|p| p.whole_in.is_some());
            let target = if whole {
                dir.clone()
            } else {
                Utf8PathBuf::from("partitions")
                    .join(slice.partition.index.to_string())
                    .join(dir)
            };
            copy_tree(&source, out, &target)
                .with_context(|| format!("copying {source} into the merged report folder"))?;
        }
    }
    Ok(())
}

/// Copies the folder `from` to `to` inside the merged report folder: every folder on the way
/// made a real one (a planted symlink is removed, not followed) and every file replaced by
/// rename, never written through.
fn copy_tree(from: &Utf8Path, out: &Utf8Path, to: &Utf8Path) -> Result<()> {
    let mut made = out.to_owned();
    for part in to.components() {
        made = folder::own_dir(&made, part.as_str())?;
    }
    for entry in from.read_dir_utf8()? {
        let entry = entry?;
        let target = made.join(entry.file_name());
        let kind = entry.file_type()?;
        if kind.is_dir() {
            copy_tree(entry.path(), out, &to.join(entry.file_name()))?;
        } else if kind.is_file() {
            crate::atomic::write(&target, &std::fs::read(entry.path())?)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::model::{Severity, StagePartition, Table};
    use crate::report::testing::{finding, report_with, stage_with};
    use crate::stage_name::StageName;

    /// Slice `index` of `count`, with one Miri stage whose plan digest is `digest`.
    fn slice(index: usize, count: usize, digest: &str, findings: Vec<Finding>) -> Slice {
        let mut stage = stage_with(StageName::Miri, findings);
        stage.partition = Some(StagePartition {
            plan_digest: digest.to_owned(),
            units: 1,
            total_units: u64::try_from(count).unwrap(),
            execution_ms: 1000 * u64::try_from(index).unwrap(),
            whole_in: None,
        });
        stage.counts = BTreeMap::from([("tests_run".to_owned(), 2), ("passed".to_owned(), 2)]);
        let mut report = report_with(vec![stage]);
        report.revision = Some("abc".to_owned());
        Slice {
            dir: format!("/out/{index}").into(),
            report,
            partition: PartitionInfo { index, count },
        }
    }

    fn error_of(slices: &[Slice]) -> String {
        check(slices).unwrap_err().to_string()
    }

    #[test]
    fn the_slices_of_one_plan_pass_the_checks() {
        let slices = [slice(2, 2, "d", Vec::new()), slice(1, 2, "d", Vec::new())];
        check(&slices).unwrap();
    }

    #[test]
    fn slices_of_other_runs_or_splits_are_refused_by_name() {
        let error = error_of(&[slice(1, 2, "d", Vec::new()), slice(2, 3, "d", Vec::new())]);
        assert!(error.contains("different splits"), "{error}");
        let mut other = slice(2, 2, "d", Vec::new());
        other.report.revision = Some("def".to_owned());
        let error = error_of(&[slice(1, 2, "d", Vec::new()), other]);
        assert!(error.contains("revision"), "{error}");
        let mut other = slice(2, 2, "d", Vec::new());
        other.report.runner_version = "0.0.0".to_owned();
        let error = error_of(&[slice(1, 2, "d", Vec::new()), other]);
        assert!(error.contains("runner version"), "{error}");
        let error = error_of(&[slice(1, 2, "d", Vec::new()), slice(2, 2, "e", Vec::new())]);
        assert!(error.contains("split the miri work differently"), "{error}");
    }

    #[test]
    fn a_missing_or_doubled_slice_is_refused() {
        let error = error_of(&[slice(1, 3, "d", Vec::new()), slice(3, 3, "d", Vec::new())]);
        assert!(error.contains("partition 2/3 is missing"), "{error}");
        let error = error_of(&[slice(1, 2, "d", Vec::new()), slice(1, 2, "d", Vec::new())]);
        assert!(error.contains("given twice"), "{error}");
    }

    #[test]
    fn joined_counts_add_up_and_findings_are_the_union_once() {
        let shared = finding(StageName::Miri, "f1");
        let slices = [
            slice(1, 2, "d", vec![shared.clone()]),
            slice(2, 2, "d", vec![shared, finding(StageName::Miri, "f2")]),
        ];
        let merged = join(&slices);
        let stage = &merged.stages[0];
        assert_eq!(stage.counts["tests_run"], 4);
        assert_eq!(stage.counts["passed"], 4);
        let fingerprints: Vec<&str> = stage
            .findings
            .iter()
            .map(|f| f.fingerprint.as_str())
            .collect();
        assert_eq!(fingerprints, ["f1", "f2"]);
        assert_eq!(stage.status, Status::Fail);
        assert!(merged.partition.is_none());
        assert!(stage.notes.iter().any(|n| n.contains("merged from 2")));
    }

    #[test]
    fn a_slice_that_could_not_run_makes_the_stage_an_error() {
        let mut broken = stage_with(StageName::Miri, Vec::new());
        broken.status = Status::Error;
        broken.reason = Some("no tests found".to_owned());
        let fine = stage_with(StageName::Miri, Vec::new());
        let (status, reason) = merged_status(&[&fine, &broken], &[], Severity::High);
        assert_eq!(status, Status::Error);
        assert_eq!(reason.as_deref(), Some("no tests found"));
        let (status, _) = merged_status(&[&fine, &fine], &[], Severity::High);
        assert_eq!(status, Status::Pass);
    }

    #[test]
    fn tables_of_the_same_shape_join_row_by_row() {
        let table = |rows: &[&str]| Table {
            title: "Benchmarks".to_owned(),
            columns: vec!["name".to_owned()],
            rows: rows.iter().map(|row| vec![(*row).to_owned()]).collect(),
        };
        let mut merged = vec![table(&["a"])];
        join_tables(&mut merged, &[table(&["a", "b"])]);
        assert_eq!(merged.len(), 1);
        assert_eq!(merged[0].rows, [vec!["a".to_owned()], vec!["b".to_owned()]]);
    }
}
