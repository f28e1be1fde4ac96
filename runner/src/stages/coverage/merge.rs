//! Coverage in `runner merge`: the slices' llvm-cov function records and tracefiles added up
//! (every slice ran different tests of the same build), the numbers recounted the way
//! llvm-cov counts them (`coverage_data::recount`), and thresholds, critical paths and
//! critical functions judged again over the whole, so the merged report says what one run
//! of every test would have said. Each slice's recount is first checked against llvm-cov's
//! own numbers for that slice: a difference means the recount cannot be trusted, and the
//! stage is an error rather than a verdict.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{bail, Context as _, Result};
use camino::{Utf8Path, Utf8PathBuf};

use super::critical::{self, Gap, Rules};
use super::findings::{self, Measured};
use super::lcov::{self, FileTotals};
use super::slices::{self, Judging};
use super::{llvm_cov, table, FILES_SHOWN};
use crate::coverage_data::llvm_json::{self, FunctionRecord};
use crate::coverage_data::recount;
use crate::coverage_data::summary::{MetricName, Summary};
use crate::report::{gate, Severity, StageReport, Status};

/// One slice's coverage stage: its report folder's stage folder and its workspace root.
pub struct SliceStage<'a> {
    pub index: usize,
    pub stage_dir: Utf8PathBuf,
    pub root: &'a Utf8Path,
}

/// The merged coverage, to be written into the merged report's folder.
pub struct Merged {
    lcov: String,
    summary_json: String,
}

/// Replaces what the generic join made of the coverage stage (counts and notes added up
/// over slices, each slice's partial verdicts) with the verdicts over all slices. A slice
/// without its data, or data that cannot be added up exactly, makes the stage an error.
pub fn apply(
    slices: &[SliceStage<'_>],
    stage: &mut StageReport,
    root: &Utf8Path,
    fail_on: Severity,
) -> Option<Merged> {
    if stage.status == Status::Error || stage.status == Status::Skipped {
        return None;
    }
    match recount_slices(slices, root) {
        Ok(whole) => Some(judge(whole, stage, fail_on, slices.len())),
        Err(error) => {
            stage.status = Status::Error;
            stage.reason = Some(format!(
                "the slices' coverage could not be merged: {}",
                crate::exit::one_line(&error)
            ));
            None
        }
    }
}

/// Every slice's data added up.
struct Whole {
    judging: Judging,
    summary: Summary,
    gaps: Vec<Gap>,
    unmatched: Vec<String>,
    lcov: String,
}

fn recount_slices(slices: &[SliceStage<'_>], root: &Utf8Path) -> Result<Whole> {
    let mut judging: Option<Judging> = None;
    let mut records: Vec<FunctionRecord> = Vec::new();
    let mut files: BTreeSet<Utf8PathBuf> = BTreeSet::new();
    let mut traces = Vec::new();
    for slice in slices {
        let data =
            slices::read(&slice.stage_dir).with_context(|| format!("partition {}", slice.index))?;
        match &judging {
            None => judging = Some(data.judging.clone()),
            Some(first) if !first.same_rules(&data.judging) => bail!(
                "partition {} judged coverage by other settings than partition {}: give \
                 every job the same config",
                slice.index,
                slices[0].index
            ),
            Some(_) => {}
        }
        if !data.measured {
            continue;
        }
        let json = slice.stage_dir.join("coverage.json");
        let text = std::fs::read_to_string(&json)
            .with_context(|| format!("partition {}: {json} is missing", slice.index))?;
        let export = llvm_json::parse(&text, slice.root)
            .with_context(|| format!("partition {}: {json}", slice.index))?;
        let paths: Vec<Utf8PathBuf> = export
            .summary
            .files
            .iter()
            .map(|f| f.path.clone())
            .collect();
        let mine = recount::summary(&export.records, &paths)
            .with_context(|| format!("partition {}: {json}", slice.index))?;
        if mine.totals != export.summary.totals || mine.files != export.summary.files {
            bail!(
                "partition {}: runner's recount ({}) differs from llvm-cov's ({}), so slices \
                 cannot be added up exactly",
                slice.index,
                mine.totals_line(),
                export.summary.totals_line()
            );
        }
        files.extend(paths);
        recount::add_records(&mut records, export.records)
            .with_context(|| format!("partition {}", slice.index))?;
        let lcov_path = slice.stage_dir.join("lcov.info");
        let text = std::fs::read_to_string(&lcov_path)
            .with_context(|| format!("partition {}: {lcov_path} is missing", slice.index))?;
        traces.push(
            lcov::parse(&text, slice.root)
                .with_context(|| format!("partition {}: {lcov_path}", slice.index))?,
        );
    }
    let Some(judging) = judging else {
        bail!("no slice kept coverage data");
    };
    if traces.is_empty() {
        bail!("no slice ran a coverage test, so nothing was measured");
    }
    let files: Vec<Utf8PathBuf> = files.into_iter().collect();
    let summary = recount::summary(&records, &files)?;
    let traces = lcov::add_up(traces);
    let spans = llvm_json::spans(&records);
    let rules = Rules {
        paths: &judging.critical_paths,
        functions: &judging.critical_functions,
    };
    let gaps = critical::gaps(&traces, &spans, &rules);
    let unmatched = critical::unmatched(&traces, &spans, &rules);
    let per_file: BTreeMap<&Utf8Path, FileTotals> = summary
        .files
        .iter()
        .map(|file| {
            let metric = |name| file.metrics.get(&name).copied().unwrap_or_default();
            let pair = |name| {
                let m = metric(name);
                (m.count, m.covered)
            };
            (
                file.path.as_path(),
                FileTotals {
                    functions: pair(MetricName::Functions),
                    branches: pair(MetricName::Branches),
                    lines: pair(MetricName::Lines),
                },
            )
        })
        .collect();
    let lcov = lcov::write(&traces, root, |path| per_file.get(path).copied());
    Ok(Whole {
        judging,
        summary,
        gaps,
        unmatched,
        lcov,
    })
}

fn judge(mut whole: Whole, stage: &mut StageReport, fail_on: Severity, count: usize) -> Merged {
    whole.summary.sort_least_covered_first();
    let judging = &whole.judging;
    let rules_given = !judging.critical_paths.is_empty() || !judging.critical_functions.is_empty();
    // Counts: the recounted metrics; the tests as the slices added them up.
    let mut counts = whole.summary.counts();
    for key in ["tests_run", "passed", "failed"] {
        counts.insert(key.to_owned(), stage.count(key));
    }
    if rules_given {
        let lines = whole.gaps.iter().map(|gap| gap.lines.len() as u64).sum();
        let branches = whole.gaps.iter().map(|gap| gap.branches.len() as u64).sum();
        counts.insert("critical_lines_uncovered".to_owned(), lines);
        counts.insert("critical_branches_untaken".to_owned(), branches);
    }
    stage.counts = counts;
    let merged_note = stage
        .notes
        .iter()
        .find(|note| note.starts_with("merged from "))
        .cloned();
    let mut notes = vec![
        judging.described.clone(),
        format!("totals: {}", whole.summary.totals_line()),
        table::files(&whole.summary, FILES_SHOWN, "coverage/summary.json"),
        format!(
            "the {count} slices' coverage added up: every slice ran different tests of the \
             same build; LCOV of all of them in coverage/lcov.info, each slice's own reports \
             under partitions/<K>/coverage"
        ),
    ];
    let measured = Measured {
        tool: llvm_cov::TOOL,
        repro: judging.repro.clone(),
        totals: &whole.summary.totals,
        gaps: &whole.gaps,
    };
    let mut found: Vec<_> = stage
        .findings
        .drain(..)
        .filter(|finding| !findings::is_verdict(&finding.kind))
        .collect();
    found.extend(findings::thresholds(
        &measured,
        &judging.thresholds,
        &mut notes,
    ));
    found.extend(findings::critical(&measured));
    notes.append(&mut whole.unmatched);
    notes.extend(merged_note);
    crate::report::model::sort_findings(&mut found);
    stage.findings = found;
    stage.notes = notes;
    stage.status = gate::status_from_findings(&stage.findings, fail_on);
    stage.artifacts_dir = Some(Utf8PathBuf::from("coverage"));
    let summary_json = serde_json::to_string_pretty(&super::SummaryArtifact {
        engine: llvm_cov::TOOL,
        summary: &whole.summary,
        critical_gaps: &whole.gaps,
    })
    .unwrap_or_default();
    Merged {
        lcov: whole.lcov,
        summary_json,
    }
}

/// Writes the merged tracefile and summary into the merged report's `coverage/` folder.
pub fn write(merged: &Merged, out: &Utf8Path) -> Result<()> {
    let dir = out.join("coverage");
    crate::process::ensure_writable_dir(&dir)?;
    crate::atomic::write(&dir.join("lcov.info"), merged.lcov.as_bytes())?;
    crate::atomic::write(&dir.join("summary.json"), merged.summary_json.as_bytes())
}
