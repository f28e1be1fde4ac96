//! What a kernel run gives back: per target how many tests ran and how they ended, the
//! findings, every test's run and duration, what the cache answered, and the limits the run
//! worked with; `record` adds one finished unit to it, for a run and for a cache answer alike.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use camino::Utf8Path;

use super::attribute::UnitResult;
use super::durations::Durations;
use super::test_id::TestId;
use super::tool::{Attributed, Binary, Cause};
use crate::report::gate;
use crate::report::model::{
    CacheUse, Finding, Severity, StagePartition, StageReport, Status, TestOutcome, TestRun,
};

/// (test, seed): where a cached finding is looked up.
pub type Place = (String, Option<u64>);

/// Per stage target: how many tests ran and how they ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub tests_run: u64,
    pub passed: u64,
    pub failed: u64,
    pub timed_out: u64,
    /// Tests the harness skipped (`#[ignore]`, `#[cfg_attr(miri, ignore)]`): not run.
    pub ignored: u64,
}

impl Tally {
    /// The stage's counts; `timed_out` only when a test did, so tables of runs without one
    /// keep their columns.
    pub fn counts(self) -> BTreeMap<String, u64> {
        let mut counts = BTreeMap::from([
            ("tests_run".to_owned(), self.tests_run),
            ("passed".to_owned(), self.passed),
            ("failed".to_owned(), self.failed),
            ("ignored".to_owned(), self.ignored),
        ]);
        if self.timed_out > 0 {
            counts.insert("timed_out".to_owned(), self.timed_out);
        }
        counts
    }

    #[must_use]
    pub fn plus(self, other: Tally) -> Tally {
        Tally {
            tests_run: self.tests_run + other.tests_run,
            passed: self.passed + other.passed,
            failed: self.failed + other.failed,
            timed_out: self.timed_out + other.timed_out,
            ignored: self.ignored + other.ignored,
        }
    }
}

pub struct Outcome<R> {
    pub found: Vec<Attributed<R>>,
    /// Stage target → tally.
    pub tallies: BTreeMap<String, Tally>,
    /// Every test run and how it ended, for junit.xml.
    pub tests: Vec<TestRun>,
    /// This run's measured durations.
    pub durations: Durations,
    /// What kept a part of the stage from being evaluated.
    pub errors: Vec<String>,
    /// Under `--partition`: the stage's share of the split.
    pub partition: Option<StagePartition>,
    /// Stage target → tests the split gave to other slices.
    pub elsewhere: BTreeMap<String, u64>,
    /// What the result cache answered instead of a run.
    pub cache: Answered,
}

impl<R> Outcome<R> {
    /// No test of `target` ran here or in another slice: the stage found none to run, which
    /// is never a PASS.
    pub fn found_no_tests(&self, target: &str) -> bool {
        self.tallies.get(target).map_or(0, |t| t.tests_run) == 0
            && self.elsewhere.get(target).copied().unwrap_or(0) == 0
    }

    /// Adds to `errors`, while nothing else kept the stage from being evaluated, that no
    /// test of a target ran here or in another slice.
    pub fn add_no_tests_error<'t>(
        &self,
        targets: impl IntoIterator<Item = &'t str>,
        errors: &mut Vec<String>,
    ) {
        for target in targets {
            if errors.is_empty() && self.found_no_tests(target) {
                errors.push(format!("no tests found for {target}"));
            }
        }
    }
}

/// How every kernel stage ends its report, once its findings are in it: the status the
/// findings give, and ERROR with the reasons when something kept a part of the stage from
/// being evaluated.
pub fn conclude(report: &mut StageReport, errors: &[String], fail_on: Severity) {
    report.status = gate::status_from_findings(&report.findings, fail_on);
    if !errors.is_empty() {
        report.status = Status::Error;
        report.reason = Some(errors.join("; "));
    }
}

impl<R> Default for Outcome<R> {
    fn default() -> Self {
        Outcome {
            found: Vec::new(),
            tallies: BTreeMap::new(),
            tests: Vec::new(),
            durations: Durations::default(),
            errors: Vec::new(),
            partition: None,
            elsewhere: BTreeMap::new(),
            cache: Answered::default(),
        }
    }
}

/// The limits and places a run works with.
pub struct Limits<'a> {
    pub stage: &'a str,
    pub test_timeout: Duration,
    /// The most this tool slows a test down against its quickest run under another tool or
    /// target: a test measured only elsewhere is expected to take that much longer here.
    /// `None` (Miri) expects nothing from other tools.
    pub slowdown: Option<f64>,
    /// Whether `test_timeout` is runner's default, which stretches by `slowdown` for a test
    /// measured elsewhere (`clock::stretched_limits`); a limit the user set never does.
    pub stretch: bool,
    pub deadline: Instant,
    pub logs: &'a Utf8Path,
    pub seeds: &'a [Option<u32>],
}

/// What the cache answered in one stage.
#[derive(Debug, Default, Clone)]
pub struct Answered {
    /// Test runs (a test on one seed) taken from the cache.
    pub tests: u64,
    /// Their recorded times added up.
    pub seconds: f64,
    /// Entries that failed their checksum and ran again.
    pub corrupt: u64,
    /// (test, seed) → (stage target, the run that first found what the cache reported).
    pub first_found: BTreeMap<Place, Vec<(String, String)>>,
}

impl Answered {
    /// Marks the findings the cache answered with the run that first found them, and gives
    /// the report the cache's summary.
    pub fn apply(&self, report: &mut StageReport) {
        self.mark(&mut report.findings);
        report.cache = self.summary();
    }

    /// The report's view; nothing when the cache answered nothing.
    pub fn summary(&self) -> Option<CacheUse> {
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "a sum of test durations in milliseconds, never negative or near u64::MAX"
        )]
        let saved_ms = (self.seconds * 1000.0).round() as u64;
        (self.tests > 0 || self.corrupt > 0).then_some(CacheUse {
            tests: self.tests,
            saved_ms,
            corrupt: self.corrupt,
        })
    }

    /// Adds another run's answers (a stage that runs the kernel once per sanitizer).
    pub fn absorb(&mut self, other: Answered) {
        self.tests += other.tests;
        self.seconds += other.seconds;
        self.corrupt += other.corrupt;
        for (place, runs) in other.first_found {
            self.first_found.entry(place).or_default().extend(runs);
        }
    }

    /// Marks each finding the cache reported with the run that first found it.
    pub fn mark(&self, findings: &mut [Finding]) {
        for finding in findings {
            let Some(test) = &finding.test else {
                continue;
            };
            let Some(runs) = self.first_found.get(&(test.clone(), finding.seed)) else {
                continue;
            };
            // A stage whose findings name no target has one target per test.
            let run = runs.iter().find(|(target, _)| {
                finding.target.is_none() || finding.target.as_ref() == Some(target)
            });
            if let Some((_, run)) = run {
                finding.first_found_in = Some(run.clone());
            }
        }
    }
}

/// Adds a finished unit (or a cache answer) to the outcome: the tally, the durations, the
/// tests' runs.
pub(super) fn record<R>(
    outcome: &mut Outcome<R>,
    stage: &str,
    binary: &Binary,
    result: &UnitResult<R>,
) {
    let tally = outcome.tallies.entry(binary.target.clone()).or_default();
    let label = binary.unit.label();
    let timed_out: Vec<&str> = result
        .found
        .iter()
        .filter(|found| matches!(found.cause, Cause::TimedOut { .. }))
        .map(|found| found.test.as_str())
        .collect();
    if let Some(culprit) = &result.culprit {
        outcome
            .durations
            .mark_ended(stage, &TestId::of(binary, culprit));
    }
    for (name, test_outcome, seconds) in &result.ran {
        match test_outcome {
            TestOutcome::Ignored => tally.ignored += 1,
            TestOutcome::Passed => {
                tally.tests_run += 1;
                tally.passed += 1;
            }
            TestOutcome::Failed => {
                tally.tests_run += 1;
                if timed_out.contains(&name.as_str()) {
                    tally.timed_out += 1;
                } else {
                    tally.failed += 1;
                }
            }
        }
        // An ignored test's moment between `started` and `ignored` says nothing of what it
        // costs to run: recording it would balance shards by it, and call a test that is too
        // slow for a tool one that "finished in 0 s" elsewhere.
        if let (Some(seconds), false) = (seconds, *test_outcome == TestOutcome::Ignored) {
            outcome
                .durations
                .insert(stage, &TestId::new(&binary.target, &label, name), *seconds);
        }
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "a test's duration in milliseconds, never negative or near u64::MAX"
        )]
        outcome.tests.push(TestRun {
            target: Some(binary.target.clone()),
            unit: Some(label.clone()),
            name: name.clone(),
            outcome: *test_outcome,
            seed: result.unit.seed.map(u64::from),
            duration_ms: seconds.map(|s| (s * 1000.0).round() as u64),
        });
    }
}
