//! Report schema v1: environment provenance, per-stage results and typed findings.

use std::collections::BTreeMap;

use camino::Utf8PathBuf;
use serde::{Deserialize, Serialize};

use crate::stage_name::StageName;

/// Bumped on any change that breaks readers of `report.json`.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    /// The run that wrote this report (time and pid), stamped in every file of the set so a
    /// reader can tell a set of one run from one mixed from two.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    pub schema_version: u32,
    pub runner_version: String,
    /// The command that produced the report (`all`, `miri`, ...).
    pub command: String,
    pub workspace_root: Utf8PathBuf,
    pub environment: Environment,
    pub stages: Vec<StageReport>,
    pub gate: GateResult,
    /// True when the run stopped early (interrupt or a fatal error): later stages are missing.
    pub partial: bool,
    /// The workspace's folder relative to its git repository's root (empty at the root; absent
    /// outside a repository), so CI annotations can name files from the repository's root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository_path: Option<Utf8PathBuf>,
    /// Distinct problems across stages: one bug seen by several tools is one issue.
    #[serde(default)]
    pub issues: Vec<Issue>,
    /// The comparison with a previous report, when one was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<BaselineSummary>,
    /// The slice of the work this report covers (`--partition K/N`); its gate is provisional
    /// until `runner merge` joins every slice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<PartitionInfo>,
    /// The source revision analysed (`git rev-parse HEAD` of the workspace), when in git.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
}

impl StagePartition {
    /// The share of a stage that runs the kernel more than once (once per sanitizer): one
    /// digest over all, the units and times added up.
    pub fn combine(a: Option<StagePartition>, b: Option<StagePartition>) -> Option<StagePartition> {
        match (a, b) {
            (Some(a), Some(b)) => Some(StagePartition {
                plan_digest: crate::hash::digest(&[&a.plan_digest, &b.plan_digest]),
                units: a.units + b.units,
                total_units: a.total_units + b.total_units,
                execution_ms: a.execution_ms + b.execution_ms,
                whole_in: None,
            }),
            (a, b) => a.or(b),
        }
    }
}

/// Which slice of how many a partitioned run covered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionInfo {
    /// 1-based.
    pub index: usize,
    pub count: usize,
}

/// A stage's share of a partitioned run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StagePartition {
    /// The digest of the stage's whole plan: every unit and the durations the split used.
    /// Slices of one run carry the same digest.
    pub plan_digest: String,
    /// The units (a test, or a harness that runs whole) in this slice, and in the plan.
    pub units: u64,
    pub total_units: u64,
    /// Wall time of running this slice's units, without builds and listing.
    pub execution_ms: u64,
    /// Set when the stage is not split and ran whole in one slice (or not in this one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub whole_in: Option<usize>,
}

/// Where and with what the analyses ran.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Environment {
    /// The host triple from `rustc -vV`.
    pub host: String,
    /// `host`, `nix` or `docker`.
    pub mode: String,
    /// The toolchain the pin asks for.
    pub pinned_channel: String,
    pub pinned_commit: String,
    /// `rustc -vV` of the toolchain actually used.
    pub rustc: Option<String>,
    /// Tool name → version string actually used.
    pub tools: BTreeMap<String, String>,
    /// Image id or flake revision when running hermetically.
    pub provenance: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    Pass,
    Fail,
    Error,
    Skipped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "PASS",
            Status::Fail => "FAIL",
            Status::Error => "ERROR",
            Status::Skipped => "SKIPPED",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StageReport {
    pub stage: StageName,
    pub status: Status,
    /// Why the stage is SKIPPED or ERROR, or a short note on a FAIL.
    pub reason: Option<String>,
    pub duration_ms: u64,
    /// CPU time runner itself spent on the stage (planning, parsing, rendering, piping logs),
    /// as opposed to the tools it ran: the overhead it adds.
    #[serde(default)]
    pub overhead_ms: u64,
    /// Stage-wide counts (`tests_run`, `ub`, `leaks`, ...).
    pub counts: BTreeMap<String, u64>,
    /// The same counts per target (or per sanitizer, per fuzz target).
    pub targets: Vec<TargetSummary>,
    pub findings: Vec<Finding>,
    /// Remarks a reader needs (a test that failed only on one target, a tool warning).
    pub notes: Vec<String>,
    /// Results that read best as a table (benchmarks against their baseline, growth rates).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tables: Vec<Table>,
    /// Raw logs and artifacts, relative to the report folder.
    pub artifacts_dir: Option<Utf8PathBuf>,
    /// Every test (or program, or fuzz target) the stage ran and how it ended, for junit.xml.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tests: Vec<TestRun>,
    /// This stage's share of a partitioned run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<StagePartition>,
    /// Findings the stage itself kept from earlier runs (the fuzz crash registry), compared
    /// with this run's like a baseline's. Only for completing the report; not written.
    #[serde(skip)]
    pub known: Option<Known>,
    /// What the result cache answered instead of a run; absent when it answered nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<CacheUse>,
}

/// A stage's own record of findings from earlier runs, and where it is kept.
#[derive(Debug, Clone)]
pub struct Known {
    pub file: Utf8PathBuf,
    pub findings: Vec<Finding>,
}

/// A stage's use of the result cache: its results count and gate like fresh ones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheUse {
    /// Test runs (a test on one target and seed) answered from the cache.
    pub tests: u64,
    /// The recorded times of those tests added up (under Miri: its virtual clock).
    pub saved_ms: u64,
    /// Entries that failed their checksum and ran again.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub corrupt: u64,
}

#[allow(
    clippy::trivially_copy_pass_by_ref,
    reason = "serde's skip_serializing_if passes a reference"
)]
fn is_zero(value: &u64) -> bool {
    *value == 0
}

impl Report {
    /// A report before any stage has run: partial, with the gate still to be evaluated.
    pub fn new(
        command: &str,
        workspace_root: Utf8PathBuf,
        environment: Environment,
        fail_on: Severity,
    ) -> Report {
        Report {
            run_id: None,
            schema_version: SCHEMA_VERSION,
            runner_version: env!("CARGO_PKG_VERSION").to_owned(),
            command: command.to_owned(),
            workspace_root,
            environment,
            stages: Vec::new(),
            gate: GateResult {
                passed: false,
                fail_on,
                new_only: false,
                reasons: Vec::new(),
                not_evaluated: false,
                provisional: false,
            },
            partial: true,
            repository_path: None,
            issues: Vec::new(),
            baseline: None,
            partition: None,
            revision: None,
        }
    }
}

/// The order findings are shown in: most severe first, then by target, test and kind.
pub fn sort_findings(findings: &mut [Finding]) {
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| a.target.cmp(&b.target))
            .then_with(|| a.test.cmp(&b.test))
            .then_with(|| a.kind.cmp(&b.kind))
    });
}

impl StageReport {
    pub fn new(stage: StageName, status: Status) -> Self {
        StageReport {
            stage,
            status,
            reason: None,
            duration_ms: 0,
            overhead_ms: 0,
            counts: BTreeMap::new(),
            targets: Vec::new(),
            findings: Vec::new(),
            notes: Vec::new(),
            tables: Vec::new(),
            artifacts_dir: None,
            tests: Vec::new(),
            partition: None,
            known: None,
            cache: None,
        }
    }

    /// A stage that could not be evaluated.
    pub fn error(stage: StageName, reason: impl Into<String>) -> Self {
        StageReport {
            reason: Some(reason.into()),
            ..StageReport::new(stage, Status::Error)
        }
    }

    /// A stage that does not apply, with the reason.
    pub fn skipped(stage: StageName, reason: impl Into<String>) -> Self {
        StageReport {
            reason: Some(reason.into()),
            ..StageReport::new(stage, Status::Skipped)
        }
    }

    pub fn count(&self, key: &str) -> u64 {
        self.counts.get(key).copied().unwrap_or(0)
    }
}

/// A titled table of preformatted cells; every row has one cell per column.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Table {
    pub title: String,
    pub columns: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TargetSummary {
    pub name: String,
    pub counts: BTreeMap<String, u64>,
}

/// Ordered from least to most severe, so that `>=` compares against a gate threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

impl Category {
    /// Severity by the product's rules: undefined behaviour, memory errors and data races are
    /// critical; leaks, deadlocks, crashes, timeouts and failing tests high; threshold misses
    /// medium; operations a tool cannot check are information. Stages may refine it (a
    /// possible leak is medium).
    pub fn default_severity(self) -> Severity {
        match self {
            Category::UndefinedBehavior | Category::MemoryError | Category::DataRace => {
                Severity::Critical
            }
            Category::Leak
            | Category::Deadlock
            | Category::TestFailure
            | Category::Crash
            | Category::Timeout => Severity::High,
            Category::Threshold => Severity::Medium,
            Category::Unsupported => Severity::Info,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Category::UndefinedBehavior => "undefined-behavior",
            Category::MemoryError => "memory-error",
            Category::DataRace => "data-race",
            Category::Leak => "leak",
            Category::Deadlock => "deadlock",
            Category::Unsupported => "unsupported",
            Category::TestFailure => "test-failure",
            Category::Crash => "crash",
            Category::Timeout => "timeout",
            Category::Threshold => "threshold",
        }
    }
}

/// The broad class of a finding; `kind` refines it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Category {
    UndefinedBehavior,
    MemoryError,
    DataRace,
    Leak,
    Deadlock,
    Unsupported,
    TestFailure,
    Crash,
    Timeout,
    Threshold,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Finding {
    /// Stable across runs and line moves: kind, file, enclosing function and test.
    pub fingerprint: String,
    pub stage: StageName,
    pub category: Category,
    /// The precise kind, such as `out-of-bounds` or `use-after-free`.
    pub kind: String,
    pub severity: Severity,
    /// The tool's own one-line description.
    pub message: String,
    /// The first frame in the user's workspace.
    pub location: Option<Location>,
    /// The function enclosing that frame.
    pub function: Option<String>,
    pub test: Option<String>,
    pub target: Option<String>,
    pub seed: Option<u64>,
    /// Under Miri: the aliasing model the test ran under (`stacked`, `tree`, `none`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub borrow_model: Option<String>,
    /// A short stack, innermost first.
    pub stack: Vec<Frame>,
    /// A command that re-runs just this case.
    pub repro: Option<String>,
    /// One entry per tool that saw this problem.
    pub evidence: Vec<Evidence>,
    /// Extra context, such as "fails only on s390x-unknown-linux-gnu".
    pub note: Option<String>,
    /// For a result from the cache: the run that found it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_found_in: Option<String>,
}

/// A place in the workspace; `file` is relative to the workspace root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Location {
    pub file: Utf8PathBuf,
    pub line: u32,
    pub column: Option<u32>,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.column {
            Some(column) => write!(f, "{}:{}:{}", self.file, self.line, column),
            None => write!(f, "{}:{}", self.file, self.line),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Frame {
    pub function: String,
    pub file: Option<String>,
    pub line: Option<u32>,
    pub column: Option<u32>,
}

/// `function at file:line`, or the function alone when the tool gave no place.
impl std::fmt::Display for Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.file, self.line) {
            (Some(file), Some(line)) => write!(f, "{} at {file}:{line}", self.function),
            _ => f.write_str(&self.function),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Evidence {
    pub tool: String,
    pub message: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[allow(
    clippy::struct_excessive_bools,
    reason = "report.json's gate fields, each a yes-or-no a reader asks"
)]
pub struct GateResult {
    pub passed: bool,
    /// Findings at or above this severity fail the gate.
    pub fail_on: Severity,
    /// Only findings the baseline did not have fail the gate (config `fail-on-new-only`).
    #[serde(default)]
    pub new_only: bool,
    pub reasons: Vec<String>,
    /// Something could not be evaluated (a stage error, an interrupt, nothing applied): the
    /// run exits 2 and the verdict is neither a pass nor a fail.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub not_evaluated: bool,
    /// The report covers one slice of a partitioned run: only the merged report's gate is
    /// final.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub provisional: bool,
}

/// One test (or program, or fuzz target) a stage ran.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestRun {
    /// The stage target it ran for (a triple, a sanitizer, a fuzz target), when the stage has
    /// several.
    pub target: Option<String>,
    /// The harness it belongs to, such as `demo lib`.
    pub unit: Option<String>,
    pub name: String,
    pub outcome: TestOutcome,
    pub seed: Option<u64>,
    pub duration_ms: Option<u64>,
}

/// How a test ended on its own terms; what the tools saw in it are the findings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TestOutcome {
    Passed,
    Failed,
    Ignored,
}

/// Whether a finding was already in the baseline report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BaselineState {
    New,
    StillPresent,
}

/// A distinct problem: the findings of every stage that point at the same bug.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Issue {
    /// The highest severity among its findings.
    pub severity: Severity,
    pub category: Category,
    pub kind: String,
    pub location: Option<Location>,
    pub function: Option<String>,
    pub stages: Vec<StageName>,
    pub tests: Vec<String>,
    pub targets: Vec<String>,
    /// The fingerprints of its findings, to find them in the stage sections.
    pub fingerprints: Vec<String>,
    /// One entry per tool that saw it.
    pub evidence: Vec<Evidence>,
    /// `new` when any of its findings is new against the baseline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<BaselineState>,
}

/// The comparison with a previous report, finding by fingerprint; one entry per fingerprint.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BaselineSummary {
    /// The previous report, as given.
    pub file: Utf8PathBuf,
    pub new: Vec<FindingBrief>,
    pub still_present: Vec<FindingBrief>,
    /// In the baseline, from a stage that ran again, and gone now.
    pub fixed: Vec<FindingBrief>,
}

/// Enough of a finding to name it in a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FindingBrief {
    pub fingerprint: String,
    pub stage: StageName,
    pub kind: String,
    pub severity: Severity,
    pub location: Option<Location>,
    pub function: Option<String>,
    pub test: Option<String>,
}

impl BaselineSummary {
    /// Where a finding of this run stands against the baseline.
    pub fn state(&self, fingerprint: &str) -> BaselineState {
        if self
            .still_present
            .iter()
            .any(|known| known.fingerprint == fingerprint)
        {
            BaselineState::StillPresent
        } else {
            BaselineState::New
        }
    }
}

impl From<&Finding> for FindingBrief {
    fn from(finding: &Finding) -> Self {
        FindingBrief {
            fingerprint: finding.fingerprint.clone(),
            stage: finding.stage,
            kind: finding.kind.clone(),
            severity: finding.severity,
            location: finding.location.clone(),
            function: finding.function.clone(),
            test: finding.test.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn category_names_are_the_ones_in_report_json() {
        for category in [
            Category::UndefinedBehavior,
            Category::MemoryError,
            Category::DataRace,
            Category::Leak,
            Category::Deadlock,
            Category::Unsupported,
            Category::TestFailure,
            Category::Crash,
            Category::Timeout,
            Category::Threshold,
        ] {
            assert_eq!(
                serde_json::to_value(category).unwrap(),
                category.as_str(),
                "{category:?}"
            );
        }
    }
}
