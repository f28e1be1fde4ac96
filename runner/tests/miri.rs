//! The Miri stage end to end: real Miri on the fixture crates, findings asserted by kind,
//! location, test and target; the clean control passes; reports match their snapshots.

mod common;

use std::collections::BTreeSet;
use std::sync::OnceLock;

use common::{fixture, read_json, redact, run, runner, Analysed};
use serde_json::Value;

/// The bug fixture is analysed once and shared by the tests that read its report.
fn bugs() -> &'static Analysed {
    static BUGS: OnceLock<Analysed> = OnceLock::new();
    BUGS.get_or_init(|| {
        common::provisioned();
        common::analyse("miri", "miri-bugs", "bugs")
    })
}

fn findings(report: &Value) -> &Vec<Value> {
    report["stages"][0]["findings"]
        .as_array()
        .expect("findings array")
}

fn host() -> String {
    let output = std::process::Command::new("rustc")
        .arg("-vV")
        .output()
        .unwrap();
    let text = String::from_utf8(output.stdout).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("host: "))
        .unwrap()
        .to_owned()
}

const S390X: &str = "s390x-unknown-linux-gnu";

/// (test, kind, line) of every problem the fixture has on every target.
const EXPECTED_EVERYWHERE: &[(&str, &str, u64)] = &[
    ("tests::out_of_bounds", "out-of-bounds", 11),
    ("tests::dangling", "use-after-free", 19),
    ("tests::bad_bool", "invalid-value", 24),
    ("tests::misaligned", "misaligned", 30),
    ("tests::uninit", "uninitialized-read", 36),
    ("tests::aliasing", "aliasing-violation", 46),
    ("tests::race", "data-race", 58),
    ("tests::leaks", "memory-leak", 130),
    ("tests::ffi_call", "unsupported-operation", 85),
    ("src/lib.rs - read_past_end (line 5)", "out-of-bounds", 11),
    ("integration_reads_past_end", "out-of-bounds", 11),
];

#[test]
fn every_fixture_bug_is_found_with_kind_location_and_test_on_both_targets() {
    let analysed = bugs();
    assert_eq!(
        analysed.run.code, 1,
        "gate fails with exit 1: {}",
        analysed.run.stderr
    );
    let found: BTreeSet<(String, String, String, u64)> = findings(&analysed.report)
        .iter()
        .map(|f| {
            (
                f["target"].as_str().unwrap().to_owned(),
                f["test"].as_str().unwrap().to_owned(),
                f["kind"].as_str().unwrap().to_owned(),
                f["location"]["line"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    let mut expected = BTreeSet::new();
    for target in [host(), S390X.to_owned()] {
        for (test, kind, line) in EXPECTED_EVERYWHERE {
            expected.insert((
                target.clone(),
                (*test).to_owned(),
                (*kind).to_owned(),
                *line,
            ));
        }
    }
    expected.insert((
        S390X.to_owned(),
        "tests::little_endian_prefix".into(),
        "test-failure".into(),
        135,
    ));
    assert_eq!(found, expected);
    for finding in findings(&analysed.report) {
        assert_eq!(finding["location"]["file"], "src/lib.rs", "{finding}");
        assert!(
            finding["repro"].as_str().unwrap().contains("miri test"),
            "{finding}"
        );
    }
}

#[test]
fn severities_follow_the_rules() {
    for finding in findings(&bugs().report) {
        let expected = match finding["kind"].as_str().unwrap() {
            "memory-leak" | "test-failure" => "high",
            "unsupported-operation" => "info",
            _ => "critical",
        };
        assert_eq!(finding["severity"], expected, "{finding}");
    }
}

#[test]
fn the_big_endian_bug_is_reported_as_s390x_only() {
    let report = &bugs().report;
    let endian: Vec<&Value> = findings(report)
        .iter()
        .filter(|f| f["test"] == "tests::little_endian_prefix")
        .collect();
    assert_eq!(endian.len(), 1);
    assert_eq!(endian[0]["target"], S390X);
    assert_eq!(endian[0]["note"], format!("fails only on {S390X}"));
    let notes = report["stages"][0]["notes"].as_array().unwrap();
    assert!(notes
        .iter()
        .any(|n| n.as_str().unwrap().contains("tests::little_endian_prefix")));
}

#[test]
fn counts_per_target_add_up() {
    let stage = &bugs().report["stages"][0];
    for target in stage["targets"].as_array().unwrap() {
        let counts = &target["counts"];
        let (run, passed, failed) = (
            counts["tests_run"].as_u64().unwrap(),
            counts["passed"].as_u64().unwrap(),
            counts["failed"].as_u64().unwrap(),
        );
        // 11 unit tests, 2 integration tests, 1 doctest.
        assert_eq!(run, 14, "{target}");
        assert_eq!(passed + failed, run, "{target}");
        assert_eq!(counts["ub"], 9, "{target}");
        assert_eq!(counts["unsupported"], 1, "{target}");
        assert_eq!(counts["leaks"], 1, "{target}");
    }
    assert_eq!(stage["status"], "FAIL");
}

#[test]
fn report_files_match_their_snapshots() {
    let analysed = bugs();
    let workspace = fixture("miri-bugs");
    let markdown = std::fs::read_to_string(analysed.out.join("report.md")).unwrap();
    let markdown = markdown.split("## Environment").next().unwrap();
    common::assert_snapshot("miri-bugs.report.md", &redact(markdown, &workspace));
    let mut json = analysed.report.clone();
    json["environment"] = Value::Null;
    let json = serde_json::to_string_pretty(&json).unwrap();
    common::assert_snapshot("miri-bugs.report.json", &redact(&json, &workspace));
}

#[test]
fn raw_logs_are_kept_per_stage() {
    let logs = bugs().out.join("miri/logs");
    let names: Vec<String> = std::fs::read_dir(&logs)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().any(|n| n.ends_with("-build.out")), "{names:?}");
    assert!(
        names
            .iter()
            .any(|n| n.contains("doctests") && n.contains("doctests.out")
                || n.contains("doctests-list.out")),
        "{names:?}"
    );
}

#[test]
fn clean_control_passes_and_a_second_run_rebuilds_nothing() {
    common::provisioned();
    let out = fixture("clean").join("target/runner-tests/clean");
    for attempt in 0..2 {
        let result = run(runner()
            .arg("miri")
            .arg(fixture("clean"))
            .arg("--out")
            .arg(&out));
        assert_eq!(result.code, 0, "attempt {attempt}: {}", result.stderr);
        let report = read_json(&out.join("report.json"));
        let stage = &report["stages"][0];
        assert_eq!(stage["status"], "PASS");
        assert!(findings(&report).is_empty());
        assert_eq!(
            stage["counts"]["tests_run"], 8,
            "3 unit tests and 1 doctest on 2 targets"
        );
        assert_eq!(report["gate"]["passed"], true);
    }
    for target in [host(), S390X.to_owned()] {
        let slug = target.replace(|c: char| !c.is_ascii_alphanumeric(), "-");
        for step in ["setup", "build"] {
            let log =
                std::fs::read_to_string(out.join(format!("miri/logs/{slug}-{step}.err"))).unwrap();
            assert!(
                !log.contains("Compiling"),
                "second run rebuilt in {step} for {target}:\n{log}"
            );
        }
    }
}
