//! Coverage split across `runner coverage --partition K/3` and added up by `runner merge`, on
//! `fixtures/coverage-split`, whose branches are each taken by a different harness (unit
//! tests, three integration test files, a doctest). Each slice runs in a copy of the fixture
//! of its own, with its own build, as three CI machines would. The merged line, branch,
//! function and region counts, the per-file numbers, the LCOV records and the threshold and
//! critical findings equal a single unpartitioned run's exactly, also when some slices got no
//! test; a slice without its coverage data makes the merged stage an error, never a PASS.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use common::{fixture, fixture_copy, read_json, run, runner};
use serde_json::Value;

struct Runs {
    dir: PathBuf,
    single: Value,
    single_code: i32,
    slices: Vec<PathBuf>,
    merged: Value,
    merged_code: i32,
    /// The slices' copies of the fixture, alive as long as the runs are read.
    _copies: Vec<tempfile::TempDir>,
}

/// The single run in place, then slices 1..3 each in a copy of the fixture, then the merge.
fn runs() -> &'static Runs {
    static RUNS: OnceLock<Runs> = OnceLock::new();
    RUNS.get_or_init(|| {
        common::setup_once("coverage");
        let workspace = fixture("coverage-split");
        let dir = workspace.join("target/runner-tests/split");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let single = run(runner()
            .arg("coverage")
            .arg(&workspace)
            .arg("--out")
            .arg(dir.join("single")));
        let mut copies = Vec::new();
        let slices: Vec<PathBuf> = (1..=3)
            .map(|k| {
                let copy = fixture_copy("coverage-split");
                let out = dir.join(format!("slice-{k}"));
                let slice = run(runner()
                    .args(["coverage", "--partition", &format!("{k}/3")])
                    .arg(copy.path())
                    .arg("--out")
                    .arg(&out));
                assert_eq!(slice.code, 0, "slice {k}: {}", slice.stderr);
                copies.push(copy);
                out
            })
            .collect();
        let merged = run(runner()
            .arg("merge")
            .args(&slices)
            .arg("--out")
            .arg(dir.join("merged")));
        Runs {
            single: read_json(&dir.join("single/report.json")),
            single_code: single.code,
            merged: read_json(&dir.join("merged/report.json")),
            merged_code: merged.code,
            dir,
            slices,
            _copies: copies,
        }
    })
}

fn coverage(report: &Value) -> &Value {
    common::stage_named(report, "coverage")
}

fn counts(report: &Value) -> BTreeMap<String, u64> {
    serde_json::from_value(coverage(report)["counts"].clone()).unwrap()
}

/// Each finding's kind, message, location and fingerprint.
fn findings(report: &Value) -> BTreeSet<String> {
    coverage(report)["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            format!(
                "{} | {} | {} | {}",
                f["kind"], f["message"], f["location"], f["fingerprint"]
            )
        })
        .collect()
}

#[test]
fn merged_counts_equal_a_single_run_exactly() {
    let runs = runs();
    let (single, merged) = (counts(&runs.single), counts(&runs.merged));
    // The single run's own numbers, so equality below is not two empty maps.
    let expected = [
        ("lines", 63),
        ("lines_covered", 54),
        ("branches", 16),
        ("branches_covered", 11),
        ("functions", 15),
        ("functions_covered", 14),
        ("regions", 76),
        ("regions_covered", 67),
        ("tests_run", 15),
        ("critical_lines_uncovered", 2),
        ("critical_branches_untaken", 1),
    ];
    for (key, value) in expected {
        assert_eq!(
            single.get(key),
            Some(&value),
            "single run's {key}: {single:?}"
        );
    }
    assert_eq!(merged, single);
    // No slice alone saw that much: each covered only what its harnesses ran.
    for slice in &runs.slices {
        let alone = counts(&read_json(&slice.join("report.json")));
        assert!(
            alone["lines_covered"] < single["lines_covered"],
            "{}: {alone:?}",
            slice.display()
        );
    }
    // Per file, as llvm-cov counts them.
    let summary = |dir: &Path| -> Value {
        let summary = read_json(&dir.join("coverage/summary.json"));
        let mut files: Vec<Value> = summary["summary"]["files"].as_array().unwrap().clone();
        files.sort_by_key(|f| f["path"].as_str().unwrap().to_owned());
        Value::Array(files)
    };
    assert_eq!(
        summary(&runs.dir.join("merged")),
        summary(&runs.dir.join("single"))
    );
}

#[test]
fn merged_findings_and_gate_equal_a_single_run() {
    let runs = runs();
    let single = findings(&runs.single);
    let kinds: Vec<&str> = coverage(&runs.single)["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds.iter().copied().collect::<BTreeSet<_>>(),
        BTreeSet::from(["line-threshold", "function-threshold", "critical-uncovered"]),
        "{single:#?}"
    );
    assert_eq!(kinds.len(), 4, "two critical gaps: {single:#?}");
    assert_eq!(findings(&runs.merged), single);
    assert_eq!(coverage(&runs.merged)["status"], "FAIL");
    assert_eq!(runs.merged_code, runs.single_code);
    assert_eq!(runs.merged["gate"]["passed"], runs.single["gate"]["passed"]);
    // A slice does not judge its part alone: no threshold finding in any slice.
    for slice in &runs.slices {
        let report = read_json(&slice.join("report.json"));
        assert!(findings(&report).is_empty(), "{}", slice.display());
    }
}

/// The records of an LCOV file that do not name the machine: every line, branch and summary.
fn lcov_records(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .map(|line| match line.strip_prefix("SF:") {
            Some(file) => format!("SF:{}", file.rsplit_once("/src/").map_or(file, |(_, f)| f)),
            None => line.to_owned(),
        })
        .filter(|line| !line.starts_with("FN:") && !line.starts_with("FNDA:"))
        .collect()
}

#[test]
fn merged_lcov_equals_a_single_runs() {
    let runs = runs();
    let merged = lcov_records(&runs.dir.join("merged/coverage/lcov.info"));
    let single = lcov_records(&runs.dir.join("single/coverage/lcov.info"));
    assert!(single.iter().any(|l| l.starts_with("BRDA:")), "{single:?}");
    assert_eq!(merged, single);
}

#[test]
fn every_test_ran_in_exactly_one_slice() {
    let runs = runs();
    // What each harness run of a slice reported, from libtest's events in its logs.
    let names = |slice: &Path| -> Vec<String> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(slice.join("coverage/logs"))
            .unwrap()
            .flatten()
        {
            let file = entry.file_name().to_string_lossy().into_owned();
            let Some(harness) = file
                .strip_prefix("test-")
                .and_then(|f| f.strip_suffix(".out"))
            else {
                continue;
            };
            let text = std::fs::read_to_string(entry.path()).unwrap();
            for event in text
                .lines()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            {
                if event["type"] == "test" && event["event"] == "ok" {
                    names.push(format!("{harness} {}", event["name"]));
                }
            }
        }
        names
    };
    let mut all: Vec<String> = Vec::new();
    for slice in &runs.slices {
        let report = read_json(&slice.join("report.json"));
        let share = &coverage(&report)["partition"];
        assert!(share["whole_in"].is_null(), "coverage is split: {share}");
        assert_eq!(share["total_units"], 15);
        let ran = names(slice);
        assert_eq!(
            ran.len() as u64,
            counts(&report)["tests_run"],
            "{}",
            slice.display()
        );
        all.extend(ran);
    }
    let unique: BTreeSet<&String> = all.iter().collect();
    assert_eq!(unique.len(), all.len(), "a test ran twice: {all:?}");
    assert_eq!(all.len(), 15);
    // Only the slice that ran the doctests built them: its export has functions the others
    // lack, and the merge still counts them once.
    let functions = |slice: &PathBuf| {
        read_json(&slice.join("coverage/coverage.json"))["data"][0]["functions"]
            .as_array()
            .unwrap()
            .len()
    };
    let per_slice: BTreeSet<usize> = runs.slices.iter().map(functions).collect();
    assert!(per_slice.len() > 1, "{per_slice:?}");
}

#[test]
fn a_slice_without_its_coverage_data_is_an_error_not_a_pass() {
    let runs = runs();
    for missing in ["coverage/slice.json", "coverage/coverage.json"] {
        let damaged = runs
            .dir
            .join(format!("damaged-{}", missing.replace('/', "-")));
        let _ = std::fs::remove_dir_all(&damaged);
        copy_tree(&runs.slices[1], &damaged);
        std::fs::remove_file(damaged.join(missing)).unwrap();
        let out = runs
            .dir
            .join(format!("merged-without-{}", missing.replace('/', "-")));
        let merged = run(runner()
            .arg("merge")
            .arg(&runs.slices[0])
            .arg(&damaged)
            .arg(&runs.slices[2])
            .arg("--out")
            .arg(&out));
        assert_eq!(merged.code, 2, "{missing}: {}", merged.stderr);
        let report = read_json(&out.join("report.json"));
        let stage = coverage(&report);
        assert_eq!(stage["status"], "ERROR", "{missing}");
        let reason = stage["reason"].as_str().unwrap();
        assert!(reason.contains("partition 2"), "{missing}: {reason}");
        assert_eq!(report["gate"]["passed"], false);
    }
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

#[test]
fn the_slices_test_times_are_the_next_splits_durations() {
    let runs = runs();
    let durations = read_json(&runs.dir.join("merged/durations.json"));
    let coverage = durations["stages"]["coverage"].as_object().unwrap();
    // Every test but the doctests (a harness that runs whole is one piece, never timed).
    assert_eq!(coverage.len(), 14, "{coverage:#?}");
    assert!(coverage
        .keys()
        .any(|key| key.ends_with("coverage-split --test low off_flag")));
}

#[test]
fn slices_the_split_gave_no_test_add_nothing_and_the_merge_is_still_exact() {
    let runs = runs();
    // More slices than the fixture has pieces of work: some get no coverage test at all.
    let copy = fixture_copy("coverage-split");
    let count = 16;
    let slices: Vec<PathBuf> = (1..=count)
        .map(|k| {
            let out = runs.dir.join(format!("of-16/slice-{k}"));
            let slice = run(runner()
                .args(["coverage", "--partition", &format!("{k}/{count}")])
                .arg(copy.path())
                .arg("--out")
                .arg(&out));
            assert_eq!(slice.code, 0, "slice {k}: {}", slice.stderr);
            out
        })
        .collect();
    let empty = slices
        .iter()
        .filter(|slice| {
            let report = read_json(&slice.join("report.json"));
            coverage(&report)["partition"]["units"] == 0
        })
        .count();
    assert!(empty > 0, "no slice was left without a test");
    let out = runs.dir.join("of-16/merged");
    let merged = run(runner().arg("merge").args(&slices).arg("--out").arg(&out));
    assert_eq!(merged.code, runs.single_code, "{}", merged.stderr);
    assert_eq!(
        counts(&read_json(&out.join("report.json"))),
        counts(&runs.single)
    );
}
