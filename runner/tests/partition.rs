//! `--partition K/N` and `runner merge` end to end on a fixture of 39 tests of very uneven
//! cost with one real bug: three slices run one after another and merged give the single
//! run's tests, finding fingerprints, counts and gate; every test ran in exactly one slice;
//! coverage (split like the other stages, its slices added up) is merged to the single run's
//! totals; merge refuses slices that are not the N slices of one plan.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use common::{fixture, read_json, run, runner};
use serde_json::Value;

const STAGES: &str = "miri,coverage";

struct Runs {
    dir: PathBuf,
    single: Value,
    single_code: i32,
    slices: Vec<PathBuf>,
}

/// The single run, then slices 1..3 split by the durations it measured, once for all tests.
fn runs() -> &'static Runs {
    static RUNS: OnceLock<Runs> = OnceLock::new();
    RUNS.get_or_init(|| {
        common::provisioned();
        let workspace = fixture("partition-mix");
        let dir = workspace.join("target/runner-tests/partition");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let durations = dir.join("durations.json");
        let single = run(runner()
            .args(["all", "--stages", STAGES])
            .arg(&workspace)
            .arg("--durations")
            .arg(&durations)
            .arg("--out")
            .arg(dir.join("single")));
        assert!(durations.is_file(), "{}", single.stderr);
        let slices: Vec<PathBuf> = (1..=3)
            .map(|k| {
                let out = dir.join(format!("slice-{k}"));
                let slice = run(runner()
                    .args(["all", "--stages", STAGES, "--partition", &format!("{k}/3")])
                    .arg(&workspace)
                    .arg("--durations")
                    .arg(&durations)
                    .arg("--out")
                    .arg(&out));
                assert!(slice.code == 0 || slice.code == 1, "{}", slice.stderr);
                out
            })
            .collect();
        Runs {
            single: read_json(&dir.join("single/report.json")),
            single_code: single.code,
            dir,
            slices,
        }
    })
}

fn stage<'a>(report: &'a Value, name: &str) -> &'a Value {
    common::stage_named(report, name)
}

fn test_names(stage: &Value) -> Vec<String> {
    stage["tests"].as_array().map_or_else(Vec::new, |tests| {
        tests
            .iter()
            .map(|t| format!("{} {} {}", t["unit"], t["name"], t["outcome"]))
            .collect()
    })
}

fn fingerprints(report: &Value) -> BTreeSet<String> {
    report["stages"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["findings"].as_array().unwrap().iter())
        .map(|f| format!("{} {}", f["fingerprint"], f["target"]))
        .collect()
}

fn merge(dirs: &[&Path], out: &Path) -> common::Run {
    run(runner().arg("merge").args(dirs).arg("--out").arg(out))
}

#[test]
fn three_slices_merged_equal_the_single_run() {
    let runs = runs();
    let single_miri = stage(&runs.single, "miri");
    assert_eq!(single_miri["counts"]["tests_run"], 39, "{single_miri:#}");
    assert_eq!(single_miri["counts"]["ub"], 1);

    // Every test ran in exactly one slice, and each slice's gate is provisional.
    let mut seen: Vec<String> = Vec::new();
    for slice in &runs.slices {
        let report = read_json(&slice.join("report.json"));
        assert_eq!(report["gate"]["provisional"], true);
        let miri = stage(&report, "miri");
        assert_eq!(miri["partition"]["total_units"], 39, "{miri:#}");
        seen.extend(test_names(miri));
    }
    seen.sort();
    let mut expected = test_names(single_miri);
    expected.sort();
    assert_eq!(seen, expected);

    let out = runs.dir.join("merged");
    let slices: Vec<&Path> = runs.slices.iter().map(PathBuf::as_path).collect();
    let merged_run = merge(&slices, &out);
    assert_eq!(merged_run.code, runs.single_code, "{}", merged_run.stderr);
    let merged = read_json(&out.join("report.json"));
    assert!(merged.get("partition").is_none());
    assert!(merged["gate"].get("provisional").is_none());
    assert_eq!(merged["gate"]["passed"], runs.single["gate"]["passed"]);
    assert_eq!(merged["gate"]["reasons"], runs.single["gate"]["reasons"]);
    assert_eq!(fingerprints(&merged), fingerprints(&runs.single));
    for name in ["miri", "coverage"] {
        let (merged, single) = (stage(&merged, name), stage(&runs.single, name));
        assert_eq!(merged["status"], single["status"], "{name}");
        assert_eq!(merged["counts"], single["counts"], "{name}");
        assert_eq!(merged["targets"], single["targets"], "{name}");
        assert_eq!(test_names(merged), test_names(single), "{name}");
    }
    // Coverage's line and branch totals, added up from the slices that measured them.
    let coverage = stage(&merged, "coverage");
    for key in ["lines", "lines_covered", "branches", "branches_covered"] {
        assert_eq!(
            coverage["counts"][key],
            stage(&runs.single, "coverage")["counts"][key],
            "{key}"
        );
    }
    assert!(out.join("coverage/lcov.info").is_file());
    // The slices' measurements are the next run's history.
    let durations = std::fs::read_to_string(out.join("durations.json")).unwrap();
    assert!(durations.contains("tests::heavy_04"), "{durations}");
    for report in ["report.md", "report.sarif", "junit.xml"] {
        assert!(out.join(report).is_file(), "{report}");
    }
}

/// A slice's report.json with one field changed, in a folder of its own.
fn tampered(runs: &Runs, k: usize, change: impl Fn(&mut Value)) -> PathBuf {
    let mut report = read_json(&runs.slices[k - 1].join("report.json"));
    change(&mut report);
    let dir = runs.dir.join(format!("tampered-{k}-{}", rand_suffix()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("report.json"),
        serde_json::to_string_pretty(&report).unwrap(),
    )
    .unwrap();
    dir
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

fn assert_refused(result: &common::Run, words: &str) {
    assert_eq!(result.code, 2, "{}", result.stderr);
    let lines: Vec<&str> = result.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{}", result.stderr);
    assert!(lines[0].contains(words), "{}", lines[0]);
}

#[test]
fn merge_refuses_what_is_not_one_whole_plan() {
    let runs = runs();
    let [one, two, three] = [0, 1, 2].map(|k| runs.slices[k].as_path());
    let out = runs.dir.join("refused");
    assert_refused(&merge(&[one, two], &out), "partition 3/3 is missing");
    assert_refused(&merge(&[one, two, two, three], &out), "2/3 is given twice");

    let other_n = tampered(runs, 3, |r| r["partition"]["count"] = 4.into());
    assert_refused(&merge(&[one, two, &other_n], &out), "different splits");
    let other_revision = tampered(runs, 3, |r| r["revision"] = "0123abcd".into());
    assert_refused(&merge(&[one, two, &other_revision], &out), "revision");
    let other_pin = tampered(runs, 3, |r| {
        r["environment"]["pinned_channel"] = "nightly-2020-01-01".into();
    });
    assert_refused(&merge(&[one, two, &other_pin], &out), "pin");
    let other_plan = tampered(runs, 3, |r| {
        r["stages"][0]["partition"]["plan_digest"] = "0000000000000000".into();
    });
    assert_refused(
        &merge(&[one, two, &other_plan], &out),
        "split the miri work",
    );
    let not_a_slice = runs.dir.join("single");
    assert_refused(&merge(&[&not_a_slice], &out), "not a partition's report");
    assert!(!out.join("report.json").exists());
}

#[test]
fn a_bad_partition_is_one_line_and_exit_2() {
    for bad in ["0/3", "4/3", "two/3"] {
        let result = run(runner()
            .args(["miri", "--partition", bad])
            .arg(fixture("partition-mix")));
        assert_refused(&result, "invalid --partition");
    }
}

#[test]
fn the_partitioned_workflow_runs_a_matrix_of_slices_and_merges_them() {
    let path = common::repo_root().join(".github/workflows/partitioned.yml");
    let text = std::fs::read_to_string(path).unwrap();
    for needle in [
        "matrix:",
        "--partition \"${{ matrix.partition }}/$PARTITIONS\"",
        "actions/cache/restore@v4",
        "actions/cache/save@v4",
        ".runner/durations.json",
        "runner merge slices/runner-slice-*",
        "upload-sarif@v3",
        "needs: slice",
    ] {
        assert!(text.contains(needle), "the workflow lacks `{needle}`");
    }
}

#[test]
fn fuzz_targets_are_split_between_the_slices() {
    common::provisioned();
    let workspace = fixture("fuzz-bugs");
    let dir = workspace.join("target/runner-tests/partition-fuzz");
    let _ = std::fs::remove_dir_all(&dir);
    let built = |args: &[&str], out: &str| {
        let result = run(runner()
            .args(["fuzz", "--check"])
            .args(args)
            .arg(&workspace)
            .arg("--out")
            .arg(dir.join(out)));
        assert_eq!(result.code, 0, "{}", result.stderr);
        let report = read_json(&dir.join(out).join("report.json"));
        let mut names: Vec<String> = stage(&report, "fuzz")["targets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_owned())
            .collect();
        names.sort();
        names
    };
    let all = built(&[], "whole");
    assert!(all.len() >= 2, "{all:?}");
    let first = built(&["--partition", "1/2"], "slice-1");
    let second = built(&["--partition", "2/2"], "slice-2");
    assert!(
        !first.is_empty() && !second.is_empty(),
        "{first:?} {second:?}"
    );
    let mut union: Vec<String> = first.iter().chain(&second).cloned().collect();
    union.sort();
    assert_eq!(union, all, "each target in exactly one slice");
}
