//! llvm-cov's JSON export (`llvm.coverage.json.export`, as cargo-llvm-cov writes it): the
//! totals and per-file summaries exactly as llvm-cov computed them, and where each function
//! lies, so that uncovered lines can be named after the function around them.

use anyhow::{bail, Context, Result};
use camino::{Utf8Path, Utf8PathBuf};
use serde::de::IgnoredAny;
use serde::Deserialize;

use super::summary::{FileSummary, Metric, MetricName, Metrics, Summary};

/// The export's own type tag; anything else is not llvm-cov's JSON.
const EXPORT_TYPE: &str = "llvm.coverage.json.export";

/// A region's kind in the export's arrays: ordinary code (not an expansion, skipped or gap
/// region), the only kind that says where a function's own source lies.
const CODE_REGION: u64 = 0;

// The tool's format is read strictly under test, so that a new field in a new llvm-cov shows
// up as a failing parser test on the captured exports rather than as silently missing data.
#[derive(Deserialize)]
#[cfg_attr(test, serde(deny_unknown_fields))]
struct Export {
    data: Vec<Data>,
    #[serde(rename = "type")]
    kind: String,
    #[serde(rename = "version")]
    _version: String,
    /// cargo-llvm-cov's own stamp (its version and the manifest).
    #[serde(default, rename = "cargo_llvm_cov")]
    _cargo_llvm_cov: Option<IgnoredAny>,
}

#[derive(Deserialize)]
#[cfg_attr(test, serde(deny_unknown_fields))]
struct Data {
    files: Vec<File>,
    #[serde(default)]
    functions: Vec<Function>,
    totals: RawSummary,
}

#[derive(Deserialize)]
#[cfg_attr(test, serde(deny_unknown_fields))]
struct File {
    filename: Utf8PathBuf,
    summary: RawSummary,
    #[serde(default, rename = "segments")]
    _segments: Option<IgnoredAny>,
    #[serde(default, rename = "branches")]
    _branches: Option<IgnoredAny>,
    #[serde(default, rename = "expansions")]
    _expansions: Option<IgnoredAny>,
    #[serde(default, rename = "mcdc_records")]
    _mcdc_records: Option<IgnoredAny>,
}

#[derive(Deserialize)]
#[cfg_attr(test, serde(deny_unknown_fields))]
struct RawSummary {
    lines: RawMetric,
    functions: RawMetric,
    regions: RawMetric,
    #[serde(default)]
    branches: Option<RawMetric>,
    #[serde(default, rename = "instantiations")]
    _instantiations: Option<IgnoredAny>,
    #[serde(default, rename = "mcdc")]
    _mcdc: Option<IgnoredAny>,
}

#[derive(Deserialize)]
#[cfg_attr(test, serde(deny_unknown_fields))]
struct RawMetric {
    count: u64,
    covered: u64,
    #[serde(default, rename = "notcovered")]
    _notcovered: Option<u64>,
    #[serde(rename = "percent")]
    _percent: f64,
}

#[derive(Deserialize)]
#[cfg_attr(test, serde(deny_unknown_fields))]
struct Function {
    name: String,
    count: u64,
    /// `[line_start, column_start, line_end, column_end, count, file_id, expanded_file_id,
    /// kind]`.
    regions: Vec<Vec<u64>>,
    filenames: Vec<Utf8PathBuf>,
    /// `[line_start, column_start, line_end, column_end, true_count, false_count, file_id,
    /// expanded_file_id, kind]`.
    #[serde(default)]
    branches: Vec<Vec<u64>>,
    #[serde(default, rename = "mcdc_records")]
    _mcdc_records: Option<IgnoredAny>,
}

impl RawSummary {
    fn metrics(&self) -> Metrics {
        let mut metrics = Metrics::new();
        metrics.insert(MetricName::Lines, self.lines.metric());
        metrics.insert(MetricName::Functions, self.functions.metric());
        metrics.insert(MetricName::Regions, self.regions.metric());
        if let Some(branches) = &self.branches {
            metrics.insert(MetricName::Branches, branches.metric());
        }
        metrics
    }
}

impl RawMetric {
    fn metric(&self) -> Metric {
        Metric {
            count: self.count,
            covered: self.covered,
        }
    }
}

/// The lines a function's own code spans in its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionSpan {
    /// Demangled, without the crate hash: `my_crate::parse::header`.
    pub name: String,
    /// Relative to the workspace root when the file lies inside it.
    pub file: Utf8PathBuf,
    pub first_line: u32,
    pub last_line: u32,
    /// How many times it was entered, over all its instantiations.
    pub count: u64,
}

/// One function record as llvm-cov exports it: one instantiation of one function in one
/// build of its crate, with the count of every region and branch. Summing the records of
/// several runs of the same build gives the records of all those runs together.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, Deserialize)]
pub struct FunctionRecord {
    /// Mangled, as the export names it.
    pub name: String,
    /// How many times it was entered.
    pub count: u64,
    /// `[line_start, column_start, line_end, column_end, count, file_id, expanded_file_id,
    /// kind]`.
    pub regions: Vec<Vec<u64>>,
    /// `[line_start, column_start, line_end, column_end, true_count, false_count, file_id,
    /// expanded_file_id, kind]`.
    pub branches: Vec<Vec<u64>>,
    /// Relative to the workspace root when they lie inside it; a region's `file_id` indexes
    /// this list.
    pub filenames: Vec<Utf8PathBuf>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LlvmExport {
    pub summary: Summary,
    /// One span per function (instantiations of one generic function share it).
    pub functions: Vec<FunctionSpan>,
    /// Every function record, for recounting merged runs (`super::recount`).
    pub records: Vec<FunctionRecord>,
}

/// Reads the export; paths inside `root` become relative to it.
pub fn parse(text: &str, root: &Utf8Path) -> Result<LlvmExport> {
    let export: Export = serde_json::from_str(text).context("invalid llvm-cov JSON export")?;
    if export.kind != EXPORT_TYPE {
        bail!("not an llvm-cov JSON export (type `{}`)", export.kind);
    }
    let Some(data) = export.data.into_iter().next() else {
        bail!("the llvm-cov JSON export holds no data");
    };
    let relative = |path: &Utf8Path| path.strip_prefix(root).unwrap_or(path).to_path_buf();
    let files = data
        .files
        .iter()
        .map(|file| FileSummary {
            path: relative(&file.filename),
            metrics: file.summary.metrics(),
        })
        .collect();
    let records: Vec<FunctionRecord> = data
        .functions
        .into_iter()
        .map(|function| FunctionRecord {
            filenames: function.filenames.iter().map(|f| relative(f)).collect(),
            name: function.name,
            count: function.count,
            regions: function.regions,
            branches: function.branches,
        })
        .collect();
    Ok(LlvmExport {
        summary: Summary {
            totals: data.totals.metrics(),
            files,
        },
        functions: spans(&records),
        records,
    })
}

/// Where each function lies and how often it was entered: one span per function, its
/// instantiations' counts added up.
pub fn spans(records: &[FunctionRecord]) -> Vec<FunctionSpan> {
    let mut functions: Vec<FunctionSpan> = records
        .iter()
        .filter_map(|function| {
            let (first_line, last_line) = own_lines(&function.regions)?;
            Some(FunctionSpan {
                name: demangle(&function.name),
                file: function.filenames.first()?.clone(),
                first_line,
                last_line,
                count: function.count,
            })
        })
        .collect();
    // Shortest name first, so a span keeps the plainest of its instantiations' names.
    functions.sort_by(|a, b| {
        (&a.file, a.first_line, a.last_line, a.name.len(), &a.name).cmp(&(
            &b.file,
            b.first_line,
            b.last_line,
            b.name.len(),
            &b.name,
        ))
    });
    functions.dedup_by(|later, kept| {
        let same = (&later.file, later.first_line, later.last_line)
            == (&kept.file, kept.first_line, kept.last_line);
        if same {
            kept.count += later.count;
        }
        same
    });
    functions
}

/// The first and last line of the code regions in the function's own file (file id 0).
fn own_lines(regions: &[Vec<u64>]) -> Option<(u32, u32)> {
    let own = regions.iter().filter(|region| {
        region.len() >= 8 && region[5] == 0 && region[6] == 0 && region[7] == CODE_REGION
    });
    let mut span: Option<(u64, u64)> = None;
    for region in own {
        let (start, end) = (region[0], region[2]);
        span = Some(span.map_or((start, end), |(first, last)| {
            (first.min(start), last.max(end))
        }));
    }
    let (first, last) = span?;
    Some((u32::try_from(first).ok()?, u32::try_from(last).ok()?))
}

/// `_RNvCs..._8my_crate5parse` → `my_crate::parse`: the readable path, without hashes.
fn demangle(symbol: &str) -> String {
    format!("{:#}", rustc_demangle::demangle(symbol))
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::stages::coverage::captures::{self, ROOT};

    fn export() -> LlvmExport {
        let text = captures::read("coverage-known.json");
        parse(&text, Utf8Path::new(ROOT)).unwrap()
    }

    #[test]
    fn totals_are_llvm_covs_own() {
        let export = export();
        let totals = &export.summary.totals;
        let metric = |count, covered| Metric { count, covered };
        assert_eq!(totals[&MetricName::Lines], metric(24, 19));
        assert_eq!(totals[&MetricName::Branches], metric(2, 1));
        assert_eq!(totals[&MetricName::Functions], metric(6, 5));
        assert_eq!(totals[&MetricName::Regions], metric(30, 24));
    }

    #[test]
    fn files_are_relative_to_the_workspace() {
        let export = export();
        let paths: Vec<&str> = export
            .summary
            .files
            .iter()
            .map(|f| f.path.as_str())
            .collect();
        assert_eq!(paths, ["src/critical.rs", "src/lib.rs"]);
        assert_eq!(
            export.summary.files[0].metrics[&MetricName::Lines],
            Metric {
                count: 6,
                covered: 5
            }
        );
    }

    #[test]
    fn functions_are_demangled_with_their_lines_and_instantiations_merged() {
        let export = export();
        let parse_flag = export
            .functions
            .iter()
            .filter(|f| f.name == "coverage_known::critical::parse_flag")
            .collect::<Vec<_>>();
        assert_eq!(parse_flag.len(), 1, "{:#?}", export.functions);
        assert_eq!(parse_flag[0].file, "src/critical.rs");
        assert_eq!((parse_flag[0].first_line, parse_flag[0].last_line), (4, 10));
        let cap = export
            .functions
            .iter()
            .find(|f| f.name == "coverage_known::cap");
        assert_eq!(cap.map(|f| (f.first_line, f.last_line)), Some((12, 18)));
    }

    #[test]
    fn other_json_is_refused() {
        let error = parse(
            r#"{"type": "x", "version": "1", "data": []}"#,
            Utf8Path::new("/"),
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("not an llvm-cov JSON export"), "{error}");
        assert!(parse("{", Utf8Path::new("/")).is_err());
    }
}
