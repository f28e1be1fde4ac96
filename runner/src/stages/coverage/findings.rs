//! The stage's findings: totals below their thresholds, gaps in critical paths (both always
//! fail the gate), and tests that failed while coverage was measured.

use super::critical::{Gap, UntakenBranch};
use super::outcome::EngineOutput;
use super::settings::Threshold;
use crate::coverage_data::summary::{format_percent, Metrics};
use crate::exec::failure;
use crate::finding::NewFinding;
use crate::libtest;
use crate::report::{Category, Finding, Location};
use crate::stage_name::StageName;
use crate::workspace::Workspace;
use camino::Utf8Path;

/// What the totals and critical verdicts are made from: one run's numbers, or the slices'
/// added up by `runner merge`.
pub struct Measured<'a> {
    /// The cargo tool that measured, as findings' evidence names it.
    pub tool: &'a str,
    /// The engine's command for a person, with the run's test filters.
    pub repro: String,
    pub totals: &'a Metrics,
    pub gaps: &'a [Gap],
}

impl Measured<'_> {
    pub fn of<'a>(output: &'a EngineOutput, filters: &[String]) -> Measured<'a> {
        Measured {
            tool: output.tool,
            repro: output.repro_with(filters),
            totals: &output.summary.totals,
            gaps: &output.gaps,
        }
    }
}

/// A coverage finding: a total, a critical gap or a failing test, with the engine's command.
fn finding(
    tool: &str,
    repro: String,
    category: Category,
    kind: &str,
    message: String,
) -> NewFinding {
    NewFinding::new(StageName::Coverage, category, kind, message)
        .repro(repro)
        .tool(tool)
}

/// One finding per metric below its threshold, with both numbers. A metric the engine does
/// not measure, or with nothing to measure, is not judged (`notes` says so).
pub fn thresholds(
    measured: &Measured<'_>,
    thresholds: &[Threshold],
    notes: &mut Vec<String>,
) -> Vec<Finding> {
    let (tool, totals) = (measured.tool, measured.totals);
    let mut findings = Vec::new();
    for threshold in thresholds {
        let name = threshold.metric;
        let Some(percent) = totals.get(&name).and_then(|metric| metric.percent()) else {
            if threshold.configured {
                notes.push(format!(
                    "the {} threshold ({} %) was not checked: {tool} measured no {}",
                    name.singular(),
                    threshold.percent,
                    name.as_str()
                ));
            }
            continue;
        };
        if percent >= threshold.percent {
            continue;
        }
        let metric = totals[&name];
        if !threshold.configured {
            notes.push(format!(
                "{} coverage {} is below the {} % runner suggests ({} of {} {} covered); \
                 `coverage.{}-threshold` in the config makes a minimum that gates",
                name.singular(),
                format_percent(percent),
                threshold.percent,
                metric.covered,
                metric.count,
                name.as_str(),
                name.singular()
            ));
            continue;
        }
        let kind = format!("{}-threshold", name.singular());
        let message = format!(
            "{} coverage {} is below the threshold of {} % ({} of {} {} covered)",
            name.singular(),
            format_percent(percent),
            threshold.percent,
            metric.covered,
            metric.count,
            name.as_str()
        );
        let repro = measured.repro.clone();
        findings.push(finding(tool, repro, Category::Threshold, &kind, message).build_unlocated());
    }
    findings
}

/// One finding per function with uncovered code in a critical path, listing every line and
/// branch with `file:line`.
pub fn critical(measured: &Measured<'_>) -> Vec<Finding> {
    measured
        .gaps
        .iter()
        .map(|gap| {
            let file = gap.file.as_str();
            let mut parts = Vec::new();
            if !gap.lines.is_empty() {
                parts.push(format!(
                    "{} ({})",
                    plural(gap.lines.len(), "uncovered line", "uncovered lines"),
                    line_ranges(file, &gap.lines)
                ));
            }
            if !gap.branches.is_empty() {
                let branches: Vec<String> = gap
                    .branches
                    .iter()
                    .map(|branch| describe_branch(file, branch))
                    .collect();
                parts.push(format!(
                    "{} ({})",
                    plural(gap.branches.len(), "untaken branch", "untaken branches"),
                    branches.join(", ")
                ));
            }
            let message = format!("critical code not fully covered: {}", parts.join(" and "));
            let kind = CRITICAL_KIND;
            finding(
                measured.tool,
                measured.repro.clone(),
                Category::Threshold,
                kind,
                message,
            )
            .place(
                Some(Location {
                    file: gap.file.clone(),
                    line: gap.first_line(),
                    column: None,
                }),
                gap.function.clone(),
            )
            .note(Some(format!(
                "critical by the coverage config entry `{}`",
                gap.rule
            )))
            .build_unlocated()
        })
        .collect()
}

/// Whether a finding kind is a verdict on the numbers (a threshold or critical code), which a
/// merge makes again over the slices added up, rather than a failing test.
pub fn is_verdict(kind: &str) -> bool {
    kind.ends_with("-threshold") || kind == CRITICAL_KIND
}

const CRITICAL_KIND: &str = "critical-uncovered";

/// A failing test: coverage still counts what ran, but the suite is broken.
pub fn test_failures(output: &EngineOutput, workspace: &Workspace) -> Vec<Finding> {
    output
        .tests
        .iter()
        .filter_map(|result| {
            let libtest::Outcome::Failed { output: log } = &result.outcome else {
                return None;
            };
            let described = failure::failed(&result.name, log, Utf8Path::new(""));
            Some(
                NewFinding::described(StageName::Coverage, described)
                    .repro(output.repro_with(&one_test(&result.name)))
                    .tool(output.tool)
                    .test(result.name.clone(), result.name.clone())
                    .build(workspace),
            )
        })
        .collect()
}

/// Test-binary arguments that select one test. rustdoc's harness never matches a doctest's
/// name with `--exact`, so a doctest is selected by its name alone.
fn one_test(name: &str) -> Vec<String> {
    if name.contains(" (line ") {
        vec![name.to_owned()]
    } else {
        vec!["--exact".to_owned(), name.to_owned()]
    }
}

pub fn plural(count: usize, one: &str, many: &str) -> String {
    if count == 1 {
        format!("1 {one}")
    } else {
        format!("{count} {many}")
    }
}

/// `src/a.rs:3, src/a.rs:7-9`: every line, consecutive ones as a range.
fn line_ranges(file: &str, lines: &[u32]) -> String {
    let mut ranges: Vec<(u32, u32)> = Vec::new();
    for &line in lines {
        match ranges.last_mut() {
            Some((_, end)) if *end + 1 == line => *end = line,
            _ => ranges.push((line, line)),
        }
    }
    ranges
        .iter()
        .map(|&(start, end)| {
            if start == end {
                format!("{file}:{start}")
            } else {
                format!("{file}:{start}-{end}")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn describe_branch(file: &str, branch: &UntakenBranch) -> String {
    match branch.side {
        Some(side) => format!("{file}:{} {side} never taken", branch.line),
        None => format!("{file}:{} condition never evaluated", branch.line),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coverage_data::summary::{Metric, MetricName, Metrics, Summary};
    use crate::hash::digest;
    use crate::libtest::{Outcome, TestResult};
    use crate::process::Cmd;
    use crate::report::Severity;
    use crate::stages::coverage::critical::Gap;

    fn output(totals: Metrics, gaps: Vec<Gap>, tests: Vec<TestResult>) -> EngineOutput {
        EngineOutput {
            tool: "cargo-llvm-cov",
            summary: Summary {
                totals,
                files: Vec::new(),
            },
            repro: Cmd::new("cargo").args(["llvm-cov", "--show-missing-lines"]),
            gaps,
            tests,
            notes: Vec::new(),
        }
    }

    #[test]
    fn a_miss_names_both_numbers_and_always_gates() {
        let totals: Metrics = [
            (
                MetricName::Lines,
                Metric {
                    count: 24,
                    covered: 19,
                },
            ),
            (
                MetricName::Branches,
                Metric {
                    count: 2,
                    covered: 1,
                },
            ),
        ]
        .into();
        let wanted = [
            Threshold {
                metric: MetricName::Lines,
                percent: 80.0,
                configured: true,
            },
            Threshold {
                metric: MetricName::Branches,
                percent: 50.0,
                configured: true,
            },
            Threshold {
                metric: MetricName::Regions,
                percent: 10.0,
                configured: true,
            },
        ];
        let mut notes = Vec::new();
        let output = output(totals, Vec::new(), Vec::new());
        let measured = Measured::of(&output, &["parse".to_owned()]);
        let found = thresholds(&measured, &wanted, &mut notes);
        assert_eq!(found.len(), 1, "50 % meets a 50 % threshold");
        assert_eq!(found[0].kind, "line-threshold");
        assert_eq!(
            found[0].message,
            "line coverage 79.17 % is below the threshold of 80 % (19 of 24 lines covered)"
        );
        assert_eq!(found[0].severity, Severity::Medium);
        assert!(crate::report::gate::gates(&found[0], Severity::Critical));
        assert_eq!(
            found[0].repro.as_deref(),
            Some("cargo llvm-cov --show-missing-lines -- parse")
        );
        assert_eq!(
            notes,
            ["the region threshold (10 %) was not checked: cargo-llvm-cov measured no regions"]
        );
    }

    #[test]
    fn a_gap_lists_every_line_and_branch() {
        let gap = Gap {
            file: "src/a.rs".into(),
            function: Some("a::f".into()),
            lines: vec![3, 7, 8, 9],
            branches: vec![
                UntakenBranch {
                    line: 2,
                    side: Some("true"),
                },
                UntakenBranch {
                    line: 7,
                    side: None,
                },
            ],
            rule: "src/*.rs".into(),
        };
        let output = output(Metrics::new(), vec![gap], Vec::new());
        let found = critical(&Measured::of(&output, &[]));
        assert_eq!(
            found[0].message,
            "critical code not fully covered: 4 uncovered lines (src/a.rs:3, src/a.rs:7-9) \
             and 2 untaken branches (src/a.rs:2 true never taken, src/a.rs:7 condition never \
             evaluated)"
        );
        assert_eq!(
            found[0].location.as_ref().unwrap().to_string(),
            "src/a.rs:2"
        );
        assert_eq!(found[0].category, Category::Threshold);
        assert_eq!(
            found[0].fingerprint,
            digest(&["coverage", "critical-uncovered", "src/a.rs", "a::f", ""])
        );
    }

    #[test]
    fn a_failing_test_points_at_its_panic_and_reruns_alone() {
        let failed = |name: &str| TestResult {
            name: name.to_owned(),
            outcome: Outcome::Failed {
                output: "thread 't' panicked at src/lib.rs:16:9:\nassertion failed\n".into(),
            },
            exec_time: None,
        };
        let tests = vec![failed("tests::fails"), failed("src/lib.rs - f (line 3)")];
        let workspace = Workspace {
            root: "/w".into(),
            manifest_path: "/w/Cargo.toml".into(),
            target_dir: "/w/target".into(),
            members: Vec::new(),
            config: crate::config::Config::default(),
        };
        let found = test_failures(&output(Metrics::new(), Vec::new(), tests), &workspace);
        assert_eq!(found[0].message, "assertion failed");
        assert_eq!(
            found[0].location.as_ref().unwrap().to_string(),
            "src/lib.rs:16:9"
        );
        assert_eq!(
            found[0].repro.as_deref(),
            Some("cargo llvm-cov --show-missing-lines -- --exact tests::fails")
        );
        assert_eq!(
            found[1].repro.as_deref(),
            Some("cargo llvm-cov --show-missing-lines -- 'src/lib.rs - f (line 3)'")
        );
    }
}
