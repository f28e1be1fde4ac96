//! llvm-cov's numbers computed again from its function records, so that the records of several
//! runs of one build, added up, give the numbers one run of all their tests would have: the
//! same rules as llvm-cov's own report (LLVM's `CoverageSummaryInfo` and `SegmentBuilder`).
//! A function's instantiations (each generic instance, each build of the crate: its unit
//! tests, the library the integration tests link, the doctests) form one group; a group
//! counts the lines, regions and branches of its best-covered instantiation, and is covered
//! when any instantiation was entered. A file's numbers are the sum over its groups.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{bail, Result};
use camino::{Utf8Path, Utf8PathBuf};

use super::llvm_json::FunctionRecord;
use super::summary::{FileSummary, Metric, MetricName, Metrics, Summary};

/// Region kinds in the export's arrays.
const CODE: u64 = 0;
const EXPANSION: u64 = 1;
const SKIPPED: u64 = 2;
const GAP: u64 = 3;

/// Past this line number a record is not source code llvm-cov could have written: the recount
/// walks every line of a region, so an absurd one is refused rather than walked.
const MAX_LINE: u64 = 1 << 24;

/// The export's summary for `files` (the files it reports, relative to the workspace root),
/// from the function records alone. A record with regions no compiler writes (too few fields,
/// an end before its start, a line past [`MAX_LINE`]) is an error.
pub fn summary(records: &[FunctionRecord], files: &[Utf8PathBuf]) -> Result<Summary> {
    // (file, start of the function's first region in it) → its instantiations' numbers.
    let mut groups: BTreeMap<(&Utf8Path, (u64, u64)), Vec<Instantiation>> = BTreeMap::new();
    for record in records {
        check(record)?;
        let Some(main) = main_file(record) else {
            continue;
        };
        let Some(file) = record.filenames.get(main) else {
            continue;
        };
        let Some(first) = record
            .regions
            .iter()
            .find(|region| field(region, 5) == main as u64)
        else {
            continue;
        };
        groups
            .entry((file.as_path(), (field(first, 0), field(first, 1))))
            .or_default()
            .push(Instantiation::of(record, main));
    }
    let mut summary = Summary::default();
    for file in files {
        let mut metrics = Metrics::new();
        for ((path, _), instantiations) in groups.range((file.as_path(), (0, 0))..) {
            if path != file {
                break;
            }
            let best = |pick: fn(&Instantiation) -> Metric| Metric {
                count: instantiations
                    .iter()
                    .map(|i| pick(i).count)
                    .max()
                    .unwrap_or(0),
                covered: instantiations
                    .iter()
                    .map(|i| pick(i).covered)
                    .max()
                    .unwrap_or(0),
            };
            add(&mut metrics, MetricName::Lines, best(|i| i.lines));
            add(&mut metrics, MetricName::Regions, best(|i| i.regions));
            add(&mut metrics, MetricName::Branches, best(|i| i.branches));
            let entered = instantiations.iter().any(|i| i.entered);
            add(
                &mut metrics,
                MetricName::Functions,
                Metric {
                    count: 1,
                    covered: u64::from(entered),
                },
            );
        }
        for name in [
            MetricName::Lines,
            MetricName::Regions,
            MetricName::Branches,
            MetricName::Functions,
        ] {
            metrics.entry(name).or_default();
        }
        for (name, metric) in &metrics {
            add(&mut summary.totals, *name, *metric);
        }
        summary.files.push(FileSummary {
            path: file.clone(),
            metrics,
        });
    }
    Ok(summary)
}

/// A record's regions and branches have every field, start before they end, and lie within
/// [`MAX_LINE`] lines.
fn check(record: &FunctionRecord) -> Result<()> {
    let regions = record.regions.iter().map(|region| (region, 8));
    let branches = record.branches.iter().map(|branch| (branch, 9));
    for (entry, fields) in regions.chain(branches) {
        let (start, end) = (
            (field(entry, 0), field(entry, 1)),
            (field(entry, 2), field(entry, 3)),
        );
        if entry.len() < fields || end < start || end.0 > MAX_LINE {
            bail!(
                "the function record `{}` has a region llvm-cov does not write: {entry:?}",
                record.name
            );
        }
    }
    Ok(())
}

/// Adds the records of another run of the same build: counts of the same function record
/// (same name and files) are summed region by region. A record only one run has (a doctest
/// built where doctests ran) is kept as it is.
pub fn add_records(into: &mut Vec<FunctionRecord>, more: Vec<FunctionRecord>) -> Result<()> {
    let mut index: BTreeMap<(String, Vec<Utf8PathBuf>), usize> = into
        .iter()
        .enumerate()
        .map(|(at, record)| ((record.name.clone(), record.filenames.clone()), at))
        .collect();
    for record in more {
        let key = (record.name.clone(), record.filenames.clone());
        let Some(&at) = index.get(&key) else {
            index.insert(key, into.len());
            into.push(record);
            continue;
        };
        let known = &mut into[at];
        if !same_shape(&known.regions, &record.regions, &[4])
            || !same_shape(&known.branches, &record.branches, &[4, 5])
        {
            bail!(
                "the function `{}` has different code regions in two slices: they were not \
                 built from the same source with the same toolchain",
                record.name
            );
        }
        known.count = known.count.saturating_add(record.count);
        for (region, other) in known.regions.iter_mut().zip(&record.regions) {
            region[4] = region[4].saturating_add(other[4]);
        }
        for (branch, other) in known.branches.iter_mut().zip(&record.branches) {
            branch[4] = branch[4].saturating_add(other[4]);
            branch[5] = branch[5].saturating_add(other[5]);
        }
    }
    Ok(())
}

/// Equal lengths, and equal entries except at the positions of the counts (which must exist).
fn same_shape(a: &[Vec<u64>], b: &[Vec<u64>], counts: &[usize]) -> bool {
    let without_counts = |entry: &Vec<u64>| -> Vec<u64> {
        entry
            .iter()
            .enumerate()
            .filter(|(at, _)| !counts.contains(at))
            .map(|(_, value)| *value)
            .collect()
    };
    let long_enough = |entry: &Vec<u64>| counts.iter().all(|at| *at < entry.len());
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            x.len() == y.len() && long_enough(x) && without_counts(x) == without_counts(y)
        })
}

fn add(metrics: &mut Metrics, name: MetricName, metric: Metric) {
    let total = metrics.entry(name).or_default();
    total.count += metric.count;
    total.covered += metric.covered;
}

/// A field of a region or branch array (a short array reads as zeros, never a panic).
fn field(entry: &[u64], at: usize) -> u64 {
    entry.get(at).copied().unwrap_or(0)
}

/// The function's own file: the first file id no expansion region expands into.
fn main_file(record: &FunctionRecord) -> Option<usize> {
    let expanded: BTreeSet<u64> = record
        .regions
        .iter()
        .filter(|region| field(region, 7) == EXPANSION)
        .map(|region| field(region, 6))
        .collect();
    (0..record.filenames.len()).find(|id| !expanded.contains(&(*id as u64)))
}

/// One instantiation's numbers.
struct Instantiation {
    lines: Metric,
    regions: Metric,
    branches: Metric,
    entered: bool,
}

impl Instantiation {
    fn of(record: &FunctionRecord, main: usize) -> Instantiation {
        let main = main as u64;
        let own: Vec<Region> = record
            .regions
            .iter()
            .filter(|region| field(region, 5) == main)
            .map(Region::from)
            .collect();
        let line_counts = line_counts(&segments(own));
        let lines = Metric {
            count: line_counts.len() as u64,
            covered: line_counts.values().filter(|count| **count > 0).count() as u64,
        };
        let code: Vec<&Vec<u64>> = record
            .regions
            .iter()
            .filter(|region| field(region, 7) == CODE)
            .collect();
        let regions = Metric {
            count: code.len() as u64,
            covered: code.iter().filter(|region| field(region, 4) > 0).count() as u64,
        };
        // The branches in the function's own file and in the macros it expands, at any depth.
        let mut files = BTreeSet::from([main]);
        let mut frontier = vec![main];
        while let Some(file) = frontier.pop() {
            for region in &record.regions {
                if field(region, 5) == file
                    && field(region, 7) == EXPANSION
                    && files.insert(field(region, 6))
                {
                    frontier.push(field(region, 6));
                }
            }
        }
        let mut branches = Metric::default();
        for branch in &record.branches {
            if files.contains(&field(branch, 6)) {
                branches.count += 2;
                branches.covered +=
                    u64::from(field(branch, 4) > 0) + u64::from(field(branch, 5) > 0);
            }
        }
        Instantiation {
            lines,
            regions,
            branches,
            entered: record.count > 0,
        }
    }
}

/// A region of the function's own file.
#[derive(Debug, Clone, Copy)]
struct Region {
    start: (u64, u64),
    end: (u64, u64),
    count: u64,
    kind: u64,
}

impl From<&Vec<u64>> for Region {
    fn from(region: &Vec<u64>) -> Region {
        Region {
            start: (field(region, 0), field(region, 1)),
            end: (field(region, 2), field(region, 3)),
            count: field(region, 4),
            kind: field(region, 7),
        }
    }
}

/// Where the count changes, as llvm-cov's `CoverageSegment`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Segment {
    line: u64,
    column: u64,
    count: u64,
    has_count: bool,
    region_entry: bool,
    gap: bool,
}

/// LLVM's `SegmentBuilder::buildSegments`: regions sorted (an enclosing one first), regions
/// with the same span combined, then a segment wherever the innermost active region changes.
fn segments(mut regions: Vec<Region>) -> Vec<Segment> {
    regions.sort_by(|a, b| {
        a.start
            .cmp(&b.start)
            .then(b.end.cmp(&a.end))
            .then(a.kind.cmp(&b.kind))
    });
    let mut combined: Vec<Region> = Vec::new();
    for region in regions {
        match combined.last_mut() {
            Some(last) if last.start == region.start && last.end == region.end => {
                if last.kind == region.kind {
                    last.count += region.count;
                }
            }
            _ => combined.push(region),
        }
    }
    let mut builder = Builder::default();
    for (at, region) in combined.iter().enumerate() {
        let start = region.start;
        // Active regions that end before this one starts are completed.
        let (still, done): (Vec<Region>, Vec<Region>) =
            builder.active.iter().partition(|active| active.end > start);
        if !done.is_empty() {
            let first_completed = still.len();
            builder.active = still;
            builder.active.extend(done);
            builder.complete_until(Some(start), first_completed);
        }
        let gap = region.kind == GAP;
        let last = at + 1 == combined.len();
        if start == region.end {
            // A zero-length region is never active.
            let skipped = last || region.kind == SKIPPED;
            let from = builder.active.last().copied().unwrap_or(*region);
            builder.start(&from, start, !gap, skipped);
            if skipped {
                if let Some(active) = builder.active.last().copied() {
                    builder.start(&active, start, false, false);
                }
            }
            continue;
        }
        if last || start != combined[at + 1].start {
            builder.start(region, start, !gap, false);
        }
        builder.active.push(*region);
    }
    if !builder.active.is_empty() {
        builder.complete_until(None, 0);
    }
    builder.segments
}

#[derive(Default)]
struct Builder {
    segments: Vec<Segment>,
    active: Vec<Region>,
}

impl Builder {
    fn start(&mut self, region: &Region, at: (u64, u64), region_entry: bool, skipped: bool) {
        let has_count = !skipped && region.kind != SKIPPED;
        // A segment that would not change what is shown is left out.
        if !region_entry && !skipped {
            if let Some(last) = self.segments.last() {
                if last.has_count == has_count && last.count == region.count && !last.region_entry {
                    return;
                }
            }
        }
        self.segments.push(Segment {
            line: at.0,
            column: at.1,
            count: if has_count { region.count } else { 0 },
            has_count,
            region_entry,
            gap: has_count && region.kind == GAP,
        });
    }

    /// LLVM's `completeRegionsUntil`: segments for the active regions from
    /// `first_completed` on, which end before `until`.
    fn complete_until(&mut self, until: Option<(u64, u64)>, first_completed: usize) {
        let mut completed = self.active.split_off(first_completed);
        completed.sort_by_key(|region| region.end);
        let mut all = std::mem::take(&mut self.active);
        all.extend(completed);
        for at in first_completed + 1..all.len() {
            let mut region = all[at];
            let segment_at = all[at - 1].end;
            if until == Some(segment_at) {
                break;
            }
            if segment_at == region.end {
                continue;
            }
            // The count of the last completed region that ends here.
            for later in &all[at + 1..] {
                if later.end == region.end {
                    region = *later;
                }
            }
            self.start(&region, segment_at, false, false);
        }
        if let Some(last) = all.last().copied() {
            if first_completed > 0 && Some(last.end) != until {
                let enclosing = all[first_completed - 1];
                self.start(&enclosing, last.end, false, false);
            } else if first_completed == 0 && until != Some(last.end) {
                self.start(&last, last.end, false, true);
            }
        }
        all.truncate(first_completed);
        self.active = all;
    }
}

/// LLVM's `LineCoverageIterator`: every mapped line with its count.
fn line_counts(segments: &[Segment]) -> BTreeMap<u64, u64> {
    let mut counts = BTreeMap::new();
    let Some(first) = segments.first() else {
        return counts;
    };
    let mut line = first.line;
    let mut next = 0;
    let mut wrapped: Option<Segment> = None;
    let mut on_line: Vec<Segment> = Vec::new();
    while next < segments.len() {
        if let Some(last) = on_line.last() {
            wrapped = Some(*last);
        }
        on_line.clear();
        while next < segments.len() && segments[next].line <= line {
            on_line.push(segments[next]);
            next += 1;
        }
        let starts = |s: &&Segment| !s.gap && s.has_count && s.region_entry;
        let region_starts = on_line.iter().filter(starts).count();
        let skipped_start = on_line
            .first()
            .is_some_and(|s| !s.has_count && s.region_entry);
        let mapped = (!skipped_start
            && (wrapped.is_some_and(|w| w.has_count) || region_starts > 0))
            || on_line.iter().any(|s| s.region_entry && s.has_count);
        if mapped {
            let mut count = wrapped.map_or(0, |w| w.count);
            if region_starts > 0 {
                for segment in on_line.iter().filter(starts) {
                    count = count.max(segment.count);
                }
            }
            counts.insert(line, count);
        }
        line += 1;
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coverage_data::llvm_json;
    use crate::stages::coverage::captures;

    fn recounted(capture: &str, root: &str) -> (Summary, Summary) {
        let export = llvm_json::parse(&captures::read(capture), Utf8Path::new(root)).unwrap();
        let files: Vec<Utf8PathBuf> = export
            .summary
            .files
            .iter()
            .map(|f| f.path.clone())
            .collect();
        (summary(&export.records, &files).unwrap(), export.summary)
    }

    #[test]
    fn recounting_gives_llvm_covs_own_numbers() {
        for (capture, root) in [
            ("coverage-known.json", captures::ROOT),
            ("coverage-split.json", "/workspace/coverage-split"),
        ] {
            let (mine, llvm) = recounted(capture, root);
            assert_eq!(mine.totals, llvm.totals, "{capture}");
            assert_eq!(mine.files, llvm.files, "{capture}");
        }
    }

    #[test]
    fn records_of_two_runs_add_up() {
        let export = llvm_json::parse(
            &captures::read("coverage-split.json"),
            Utf8Path::new("/workspace/coverage-split"),
        )
        .unwrap();
        let files: Vec<Utf8PathBuf> = export
            .summary
            .files
            .iter()
            .map(|f| f.path.clone())
            .collect();
        // The same run twice covers exactly what it covered once, with every count doubled.
        let mut twice = export.records.clone();
        add_records(&mut twice, export.records.clone()).unwrap();
        assert_eq!(twice.len(), export.records.len());
        assert_eq!(
            summary(&twice, &files).unwrap(),
            summary(&export.records, &files).unwrap()
        );
        assert_eq!(twice[0].count, 2 * export.records[0].count);
        // A run that entered nothing adds nothing.
        let mut zeroed = export.records.clone();
        for record in &mut zeroed {
            record.count = 0;
            record.regions.iter_mut().for_each(|r| r[4] = 0);
            record.branches.iter_mut().for_each(|b| {
                b[4] = 0;
                b[5] = 0;
            });
        }
        let before = summary(&zeroed, &files).unwrap();
        assert_eq!(before.totals[&MetricName::Lines].covered, 0);
        add_records(&mut zeroed, export.records.clone()).unwrap();
        assert_eq!(summary(&zeroed, &files).unwrap(), export.summary);
        // Another build's record with the same name is refused, not added.
        let mut other = export.records.clone();
        other[0].regions.pop();
        let error = add_records(&mut zeroed, other).unwrap_err().to_string();
        assert!(error.contains("different code regions"), "{error}");
        // A region no compiler writes is refused, not walked.
        let mut absurd = export.records.clone();
        absurd[0].regions[0][2] = u64::MAX;
        let error = summary(&absurd, &files).unwrap_err().to_string();
        assert!(
            error.contains("a region llvm-cov does not write"),
            "{error}"
        );
        absurd[0].regions[0].truncate(3);
        assert!(summary(&absurd, &files).is_err());
    }

    #[test]
    fn nested_and_zero_length_regions_follow_llvm() {
        // A function on lines 1-5 with a block on lines 2-3 that never ran and an empty
        // region last: line 3 takes the block's count (the segment that wraps into it), the
        // last region starts a skipped segment, and line 5 is the function's again.
        let regions = vec![
            Region {
                start: (1, 1),
                end: (5, 2),
                count: 4,
                kind: CODE,
            },
            Region {
                start: (2, 5),
                end: (3, 6),
                count: 0,
                kind: CODE,
            },
            Region {
                start: (4, 1),
                end: (4, 1),
                count: 9,
                kind: CODE,
            },
        ];
        let counts = line_counts(&segments(regions));
        assert_eq!(counts, BTreeMap::from([(1, 4), (2, 4), (3, 0), (5, 4)]));
        let skipped = vec![Region {
            start: (7, 1),
            end: (9, 1),
            count: 0,
            kind: SKIPPED,
        }];
        assert!(line_counts(&segments(skipped)).is_empty());
    }
}
