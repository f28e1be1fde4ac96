//! Reports for CI systems: SARIF checked against the official schema, junit.xml read back by
//! a consumer of the format (the `junit-parser` crate), cross-stage dedup on the demo (Miri and valgrind
//! both see its out-of-bounds read), the baseline diff end to end, and the GitHub workflow.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::OnceLock;

use common::{read_json, repo_root, run, runner, Analysed};
use runner::report::model::{Environment, TestOutcome, TestRun};
use runner::report::StageName;
use runner::report::{
    junit, sarif, Evidence, Finding, Frame, Location, Report, Severity, StageReport, Status,
    TargetSummary,
};
use serde_json::Value;

fn schema_errors(sarif: &Value) -> Vec<String> {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/sarif/sarif-schema-2.1.0.json");
    let schema = read_json(&path);
    let validator = jsonschema::draft4::options()
        .should_validate_formats(true)
        .build(&schema)
        .expect("the official schema compiles");
    validator
        .iter_errors(sarif)
        .map(|error| format!("{} at {}", error, error.instance_path()))
        .collect()
}

fn read_junit(text: &str) -> junit_parser::TestSuites {
    junit_parser::from_reader(std::io::Cursor::new(text.as_bytes()))
        .unwrap_or_else(|error| panic!("junit-parser rejects our JUnit: {error}\n{text}"))
}

// ---------------------------------------------------------------------------------------
// A report with findings from every stage, as the stages still to come will write them.

/// stage, tool, kind, category, severity, place, test, target; `-` for none.
const SEEN: &[&str] = &[
    "miri miri out-of-bounds undefined-behavior critical src/lib.rs:32 tests::checksum HOST",
    "cross qemu-s390x test-failure test-failure high src/lib.rs:41 tests::decodes s390x",
    "sanitizers AddressSanitizer heap-buffer-overflow memory-error critical src/lib.rs:32 \
     tests::checksum address",
    "sanitizers ThreadSanitizer data-race data-race critical src/race.rs:7 tests::race thread",
    "fuzz libFuzzer panic crash critical src/lib.rs:20 decode -",
    "coverage cargo-llvm-cov uncovered-critical-path threshold medium src/critical.rs:10 - -",
    "valgrind valgrind invalid-read memory-error critical src/lib.rs:32 tests::checksum HOST",
    "valgrind valgrind possible-leak leak medium src/lib.rs:60 tests::leaky HOST",
    "bench criterion regression threshold medium - decode/1k -",
    "soak soak memory-growth leak high - - -",
];

const HOST: &str = "x86_64-unknown-linux-gnu";

/// Reads a value the way report.json spells it (`critical`, `memory-error`, `miri`).
fn spelled<T: serde::de::DeserializeOwned>(word: &str) -> T {
    serde_json::from_value(Value::String(word.to_owned())).unwrap()
}

fn finding(line: &str) -> Finding {
    let words: Vec<&str> = line.split_whitespace().collect();
    let some = |word: &str| (word != "-").then(|| word.replace("HOST", HOST));
    let [stage, tool, kind, category, severity, place, test, target] = words[..] else {
        panic!("eight words: {line}")
    };
    let stage: StageName = spelled(stage);
    let location = some(place).map(|place| {
        let (file, line) = place.split_once(':').unwrap();
        Location {
            file: file.into(),
            line: line.parse().unwrap(),
            column: Some(5),
        }
    });
    let message = format!("{tool} saw {kind}");
    Finding {
        fingerprint: runner::report::digest(&[stage.as_str(), kind, place, test]),
        stage,
        category: spelled(category),
        kind: kind.to_owned(),
        severity: spelled(severity),
        message: message.clone(),
        function: location.as_ref().map(|_| "demo::checksum".to_owned()),
        location,
        test: some(test),
        target: some(target),
        seed: None,
        borrow_model: None,
        stack: vec![Frame {
            function: "demo::checksum".into(),
            file: Some("src/lib.rs".into()),
            line: Some(32),
            column: None,
        }],
        repro: Some(format!("runner {stage} demo -- {test}")),
        first_found_in: None,
        evidence: vec![Evidence {
            tool: tool.to_owned(),
            message,
        }],
        note: None,
    }
}

fn test_run(name: &str, outcome: TestOutcome) -> TestRun {
    TestRun {
        target: Some(HOST.to_owned()),
        unit: Some("demo lib".into()),
        name: name.into(),
        outcome,
        seed: None,
        duration_ms: Some(3),
    }
}

/// A report with findings of every stage, as the stages still to come will write them: by
/// target where a stage has targets (Miri's triples, sanitizers, fuzz targets).
fn every_stage_report() -> Report {
    let findings: Vec<Finding> = SEEN.iter().map(|line| finding(line)).collect();
    let stages = StageName::ALL
        .iter()
        .map(|name| {
            let mut stage = StageReport::new(*name, Status::Fail);
            stage.findings = findings
                .iter()
                .filter(|f| f.stage == *name)
                .cloned()
                .collect();
            let targets: &[&str] = match name {
                StageName::Miri => &[HOST],
                StageName::Sanitizers => &["address", "thread"],
                StageName::Fuzz => &["decode", "parse"],
                _ => &[],
            };
            stage.targets = targets
                .iter()
                .map(|target| TargetSummary {
                    name: (*target).to_owned(),
                    counts: BTreeMap::new(),
                })
                .collect();
            stage
        })
        .collect::<Vec<_>>();
    let mut report = Report::new(
        "all",
        "/src/demo".into(),
        Environment::default(),
        Severity::High,
    );
    report.stages = stages;
    report.partial = false;
    report.repository_path = Some("demo".into());
    report.stages[0].tests = vec![
        test_run("tests::checksum", TestOutcome::Failed),
        test_run("tests::slow", TestOutcome::Ignored),
        test_run("tests::fine", TestOutcome::Passed),
    ];
    report
}

#[test]
fn sarif_with_findings_of_every_stage_validates_against_the_official_schema() {
    let report = every_stage_report();
    let log = sarif::render(&report);
    let errors = schema_errors(&log);
    assert!(errors.is_empty(), "{errors:#?}");
    // The validator is not vacuous: a level SARIF does not know is caught.
    let mut broken = log.clone();
    broken["runs"][0]["results"][0]["level"] = "fatal".into();
    assert!(!schema_errors(&broken).is_empty());

    let runs = log["runs"].as_array().unwrap();
    let names: Vec<&str> = runs
        .iter()
        .map(|run| run["tool"]["driver"]["name"].as_str().unwrap())
        .collect();
    let mut distinct = names.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct.len(), names.len(), "one run per tool: {names:?}");
    for stage in StageName::ALL {
        assert!(
            runs.iter()
                .any(|run| run["properties"]["stage"] == stage.as_str()),
            "no run for {stage}: {names:?}"
        );
    }
    assert!(
        names.contains(&"runner-sanitizers-addresssanitizer"),
        "{names:?}"
    );
    assert!(
        names.contains(&"runner-sanitizers-threadsanitizer"),
        "{names:?}"
    );

    let findings: usize = report.stages.iter().map(|s| s.findings.len()).sum();
    let mut results = 0;
    for run in runs {
        let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
        for result in run["results"].as_array().unwrap() {
            results += 1;
            let rule = &rules[usize::try_from(result["ruleIndex"].as_u64().unwrap()).unwrap()];
            assert_eq!(rule["id"], result["ruleId"]);
            assert!(!rule["help"]["text"].as_str().unwrap().is_empty());
            assert!(result["partialFingerprints"][sarif::FINGERPRINT_KEY].is_string());
            let text = result["message"]["text"].as_str().unwrap();
            assert!(text.contains("Reproduce: runner "), "{text}");
            let uri = result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
                .as_str()
                .unwrap();
            assert!(uri.starts_with("demo/"), "repository-relative: {uri}");
        }
    }
    assert_eq!(results, findings);
    let level_of = |kind: &str| {
        runs.iter()
            .flat_map(|run| run["results"].as_array().unwrap())
            .find(|result| result["ruleId"] == kind)
            .map(|result| result["level"].as_str().unwrap().to_owned())
            .unwrap()
    };
    assert_eq!(level_of("heap-buffer-overflow"), "error");
    assert_eq!(level_of("possible-leak"), "warning");
}

#[test]
fn junit_with_every_stage_is_read_back_by_a_junit_consumer() {
    let mut report = every_stage_report();
    report
        .stages
        .push(StageReport::skipped(StageName::Fuzz, "no fuzz targets"));
    report.stages.push(StageReport::error(
        StageName::Coverage,
        "cargo-llvm-cov is missing",
    ));
    let parsed = read_junit(&junit::render(&report));
    let names: Vec<&str> = parsed.suites.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "miri x86_64-unknown-linux-gnu",
            "cross",
            "sanitizers address",
            "sanitizers thread",
            "fuzz decode",
            "fuzz parse",
            "coverage",
            "valgrind",
            "bench",
            "soak",
            "fuzz",
            "coverage",
        ]
    );
    for suite in &parsed.suites {
        let failures = suite.cases.iter().filter(|c| c.status.is_failure()).count();
        assert_eq!(suite.tests, suite.cases.len() as u64, "{}", suite.name);
        assert_eq!(suite.failures, failures as u64, "{}", suite.name);
    }
    let suite = |name: &str| parsed.suites.iter().find(|s| s.name == name).unwrap();

    // Every recorded test is a case; the finding fails its test's case.
    let miri = suite("miri x86_64-unknown-linux-gnu");
    let cases: Vec<(&str, bool, bool)> = miri
        .cases
        .iter()
        .map(|c| {
            (
                c.original_name.as_str(),
                c.status.is_failure(),
                c.status.is_skipped(),
            )
        })
        .collect();
    assert_eq!(
        cases,
        [
            ("tests::checksum", true, false),
            ("tests::slow", false, true),
            ("tests::fine", false, false),
        ]
    );
    let failure = miri.cases[0].status.failure_as_ref();
    assert_eq!(failure.failure_type, "out-of-bounds");
    assert!(
        failure
            .message
            .starts_with("critical out-of-bounds at src/lib.rs:32:5"),
        "{}",
        failure.message
    );
    assert!(
        failure.text.contains("Reproduce: runner miri demo"),
        "{}",
        failure.text
    );

    // A fuzz target is a case of its own suite; one that found nothing passes.
    assert!(suite("fuzz decode").cases[0].status.is_failure());
    assert_eq!(suite("fuzz parse").cases[0].original_name, "parse");
    assert!(suite("fuzz parse").cases[0].status.is_success());
    // Below the gate (medium < high): output, not a failure.
    let valgrind = suite("valgrind");
    let leaky = valgrind
        .cases
        .iter()
        .find(|c| c.original_name == "tests::leaky")
        .unwrap();
    assert!(leaky.status.is_success());
    assert!(leaky
        .system_out
        .as_deref()
        .unwrap()
        .contains("possible-leak"));
    // Skipped and not evaluated stages.
    let skipped = &parsed.suites[10].cases[0];
    assert_eq!(skipped.status.skipped_as_ref().message, "no fuzz targets");
    let error = &parsed.suites[11].cases[0];
    assert_eq!(
        error.status.error_as_ref().message,
        "cargo-llvm-cov is missing"
    );
    assert_eq!(parsed.errors, 1);
}

#[test]
fn a_report_written_before_these_fields_existed_still_reads() {
    let mut json = serde_json::to_value(every_stage_report()).unwrap();
    let object = json.as_object_mut().unwrap();
    for key in ["issues", "baseline", "repository_path"] {
        object.remove(key);
    }
    json["gate"].as_object_mut().unwrap().remove("new_only");
    for stage in json["stages"].as_array_mut().unwrap() {
        stage.as_object_mut().unwrap().remove("tests");
    }
    let report: Report = serde_json::from_value(json).unwrap();
    assert!(report.issues.is_empty() && report.baseline.is_none());
}

// ---------------------------------------------------------------------------------------
// The demo: `checksum` reads one byte past its buffer; Miri and valgrind both see it.

/// The demo's run, and what it appended to the job summary.
fn demo() -> &'static (Analysed, String) {
    static DEMO: OnceLock<(Analysed, String)> = OnceLock::new();
    DEMO.get_or_init(|| {
        common::require_tool(&["valgrind"], "valgrind");
        common::provisioned();
        let workspace = repo_root().join("demo");
        let out = workspace.join("target/runner-tests/ci-reports");
        let summary = tempfile::NamedTempFile::new().unwrap();
        let run = run(runner()
            .args(["all", "--stages", "miri,valgrind", "--out"])
            .arg(&out)
            .arg(&workspace)
            .env("GITHUB_STEP_SUMMARY", summary.path()));
        let analysed = Analysed {
            report: read_json(&out.join("report.json")),
            out,
            run,
        };
        (analysed, std::fs::read_to_string(summary.path()).unwrap())
    })
}

#[test]
fn the_demo_bug_seen_by_miri_and_valgrind_is_one_issue_with_both_evidences() {
    let (demo, step_summary) = demo();
    assert_eq!(demo.run.code, 1, "{}", demo.run.stderr);
    let issues = demo.report["issues"].as_array().unwrap();
    let at_checksum: Vec<&Value> = issues
        .iter()
        .filter(|issue| {
            issue["location"]["file"] == "src/lib.rs" && issue["location"]["line"] == 32
        })
        .collect();
    assert_eq!(at_checksum.len(), 1, "{issues:#?}");
    let issue = at_checksum[0];
    assert_eq!(issue["stages"], serde_json::json!(["miri", "valgrind"]));
    let tools: Vec<&str> = issue["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["tool"].as_str().unwrap())
        .collect();
    assert_eq!(tools, ["miri", "valgrind"]);
    assert_eq!(issue["severity"], "critical");
    // Three findings (Miri on two targets, valgrind) are one line of the summary ...
    let markdown = std::fs::read_to_string(demo.out.join("report.md")).unwrap();
    let summary = markdown.split("## Miri Results").next().unwrap();
    let issues_section = summary.split("## Issues").nth(1).unwrap();
    let lines: Vec<&str> = issues_section
        .lines()
        .filter(|line| line.contains("src/lib.rs:32"))
        .collect();
    assert_eq!(lines.len(), 1, "{issues_section}");
    assert!(lines[0].contains("seen by miri, valgrind"), "{}", lines[0]);
    // ... while each section keeps its own finding.
    let stages = demo.report["stages"].as_array().unwrap();
    // Miri: the out-of-bounds read and the leak on both targets, the byte-order bug on s390x.
    assert_eq!(stages[0]["findings"].as_array().unwrap().len(), 5);
    let checksum = stages[1]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["test"] == "tests::checksum_of_a_payload")
        .unwrap();
    assert_eq!(checksum["kind"], "invalid-read");
    // GitHub's job page gets the summary, without the per-stage detail.
    assert!(
        step_summary.contains(issues_section.trim()),
        "{}",
        step_summary
    );
    assert!(!step_summary.contains("## Miri Results"));
}

#[test]
fn the_demo_sarif_validates_and_annotates_repository_lines() {
    let (demo, _) = demo();
    let log = read_json(&demo.out.join("report.sarif"));
    let errors = schema_errors(&log);
    assert!(errors.is_empty(), "{errors:#?}");
    let runs = log["runs"].as_array().unwrap();
    let names: Vec<&str> = runs
        .iter()
        .map(|run| run["tool"]["driver"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["runner-miri", "runner-valgrind"]);
    for run in runs {
        let read = run["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["ruleId"] == "out-of-bounds" || r["ruleId"] == "invalid-read")
            .unwrap();
        let physical = &read["locations"][0]["physicalLocation"];
        // The demo lives in `demo/` of this repository: code scanning needs that prefix.
        assert_eq!(physical["artifactLocation"]["uri"], "demo/src/lib.rs");
        assert_eq!(physical["region"]["startLine"], 32);
        assert_eq!(read["level"], "error");
        assert!(read["message"]["text"]
            .as_str()
            .unwrap()
            .contains("Reproduce: "));
    }
}

#[test]
fn the_demo_junit_is_read_by_a_junit_consumer() {
    let (demo, _) = demo();
    let text = std::fs::read_to_string(demo.out.join("junit.xml")).unwrap();
    let parsed = read_junit(&text);
    let stages = demo.report["stages"].as_array().unwrap();
    let host = stages[0]["targets"][0]["name"].as_str().unwrap();
    let names: Vec<&str> = parsed.suites.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            format!("miri {host}").as_str(),
            "miri s390x-unknown-linux-gnu",
            "valgrind"
        ]
    );
    let failing = |suite: &junit_parser::TestSuite| -> Vec<String> {
        suite
            .cases
            .iter()
            .filter(|c| c.status.is_failure())
            .map(|c| c.original_name.clone())
            .collect()
    };
    // One case per test the stage ran, failures where the tools found something.
    for (suite, target) in parsed
        .suites
        .iter()
        .zip(&stages[0]["targets"].as_array().unwrap()[..])
    {
        // Tests Miri skips (`cfg_attr(miri, ignore)`) are skipped cases, not runs.
        let run = suite
            .cases
            .iter()
            .filter(|c| !c.status.is_skipped())
            .count();
        assert_eq!(run as u64, target["counts"]["tests_run"].as_u64().unwrap());
    }
    assert_eq!(
        failing(&parsed.suites[0]),
        ["tests::checksum_of_a_payload", "tests::tags_are_interned"]
    );
    assert_eq!(
        failing(&parsed.suites[1]),
        [
            "tests::checksum_of_a_payload",
            "tests::decodes_a_frame",
            "tests::tags_are_interned"
        ]
    );
    // Valgrind also runs the slow test Miri skips, and catches the packing overflow there.
    assert_eq!(
        failing(&parsed.suites[2]),
        [
            "packing_tests::packs_a_megabyte_of_frames",
            "tests::checksum_of_a_payload",
            "tests::tags_are_interned"
        ]
    );
    let checksum = parsed.suites[2]
        .cases
        .iter()
        .find(|case| case.original_name == "tests::checksum_of_a_payload")
        .unwrap();
    let valgrind = checksum.status.failure_as_ref();
    assert_eq!(valgrind.failure_type, "invalid-read");
    assert!(
        valgrind.message.contains("at src/lib.rs:32"),
        "{}",
        valgrind.message
    );
    assert_eq!(parsed.failures, 8);
}

// ---------------------------------------------------------------------------------------
// Baseline diff: fix one bug, add another.

const MANIFEST: &str = r#"[package]
name = "baseline-demo"
version = "0.1.0"
edition = "2021"

[workspace]

[package.metadata.runner]
fail-on-new-only = true

[package.metadata.runner.miri]
targets = ["host"]
"#;

/// The crate's source: `read_past_end` and `use_after_free` read freed or foreign memory,
/// each called by a test; `extra` adds functions and `tests` more test functions.
fn source(read_past_end: &str, extra: &str, tests: &str) -> String {
    format!(
        r"
pub fn read_past_end(data: &[u8]) -> u8 {{
    {read_past_end}
}}

pub fn use_after_free() -> u32 {{
    let boxed = Box::new(7u32);
    let ptr: *const u32 = &*boxed;
    drop(boxed);
    unsafe {{ *ptr }}
}}
{extra}
#[cfg(test)]
mod tests {{
    #[test]
    fn reads() {{
        super::read_past_end(&[1, 2, 3]);
    }}

    #[test]
    fn frees() {{
        super::use_after_free();
    }}
{tests}}}
"
    )
}

fn before() -> String {
    source("unsafe { *data.as_ptr().add(data.len()) }", "", "")
}

/// `read_past_end` fixed, `invalid_bool` new.
fn after() -> String {
    source(
        "data[data.len() - 1]",
        "
pub fn invalid_bool(byte: u8) -> bool {
    unsafe { std::mem::transmute::<u8, bool>(byte) }
}
",
        "
    #[test]
    fn bools() {
        super::invalid_bool(3);
    }
",
    )
}

fn kinds(list: &Value) -> Vec<&str> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|brief| brief["kind"].as_str().unwrap())
        .collect()
}

#[test]
fn a_baseline_diff_lists_the_fixed_and_the_new_bug_and_gates_on_new_ones_only() {
    common::provisioned();
    let workspace = common::temp_crate(MANIFEST, &before());
    let root = workspace.path();
    let miri = |out: &str, baseline: Option<&Path>| {
        let mut command = runner();
        command
            .arg("miri")
            .arg(root)
            .arg("--force-out")
            .arg("--out")
            .arg(root.join(out));
        if let Some(baseline) = baseline {
            command.arg("--baseline").arg(baseline);
        }
        let result = run(&mut command);
        (result, read_json(&root.join(out).join("report.json")))
    };

    let (first, before) = miri("first", None);
    assert_eq!(first.code, 1, "{}", first.stderr);
    assert!(before.get("baseline").is_none());

    std::fs::write(root.join("src/lib.rs"), after()).unwrap();
    let previous = root.join("first/report.json");
    let (second, after) = miri("second", Some(&previous));
    let diff = &after["baseline"];
    assert_eq!(kinds(&diff["fixed"]), ["out-of-bounds"], "{diff:#}");
    assert_eq!(kinds(&diff["new"]), ["invalid-value"], "{diff:#}");
    assert_eq!(
        kinds(&diff["still_present"]),
        ["use-after-free"],
        "{diff:#}"
    );
    assert_eq!(diff["new"][0]["test"], "tests::bools");
    // The new bug fails the gate; the old one alone would not.
    assert_eq!(second.code, 1, "{}", second.stderr);
    assert_eq!(after["gate"]["new_only"], true);
    assert_eq!(
        after["gate"]["reasons"],
        serde_json::json!(["miri: 1 new finding(s) at or above high"])
    );
    let markdown = std::fs::read_to_string(root.join("second/report.md")).unwrap();
    assert!(
        markdown.contains("1 new, 1 still present, 1 fixed."),
        "{markdown}"
    );
    let log = read_json(&root.join("second/report.sarif"));
    let states: Vec<(&str, &str)> = log["runs"][0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["ruleId"].as_str().unwrap(),
                r["baselineState"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(states.len(), 2);
    assert!(states.contains(&("invalid-value", "new")), "{states:?}");
    assert!(
        states.contains(&("use-after-free", "unchanged")),
        "{states:?}"
    );
    assert!(schema_errors(&log).is_empty());

    // Accepting this state as the workspace's baseline (the default file in `.runner/`):
    // nothing is new, so the pull-request gate passes although the findings remain.
    std::fs::create_dir_all(root.join(".runner")).unwrap();
    std::fs::copy(
        root.join("second/report.json"),
        root.join(runner::report::baseline::DEFAULT_FILE),
    )
    .unwrap();
    let (third, accepted) = miri("third", None);
    assert_eq!(third.code, 0, "{}", third.stderr);
    assert_eq!(accepted["baseline"]["new"], serde_json::json!([]));
    assert_eq!(kinds(&accepted["baseline"]["still_present"]).len(), 2);
    assert_eq!(accepted["stages"][0]["status"], "FAIL");
}

#[test]
fn a_baseline_that_cannot_be_read_is_one_line_and_exit_2() {
    let missing = run(runner()
        .arg("miri")
        .arg(common::fixture("clean"))
        .args(["--baseline", "/nonexistent/report.json"]));
    missing.assert_one_line_error("cannot read baseline /nonexistent/report.json");
    let other = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(other.path(), r#"{"schema_version": 9}"#).unwrap();
    let wrong = run(runner()
        .arg("miri")
        .arg(common::fixture("clean"))
        .arg("--baseline")
        .arg(other.path()));
    wrong.assert_one_line_error("schema version 1 (found 9)");
}

// ---------------------------------------------------------------------------------------

#[test]
fn the_workflow_builds_the_image_runs_runner_in_it_and_uploads_report_and_sarif() {
    let text = std::fs::read_to_string(repo_root().join(".github/workflows/analysis.yml")).unwrap();
    for needle in [
        "on:\n  push:",
        "docker/build-push-action@v6",
        "file: Dockerfile",
        "tags: runner",
        "docker run",
        "--cap-add SYS_PTRACE",
        "GITHUB_STEP_SUMMARY",
        "actions/upload-artifact@v4",
        "github/codeql-action/upload-sarif@v3",
        "report.sarif",
        "security-events: write",
        "--baseline=",
        // The fuzz corpus compounds across runs: cached per run, restored from the newest.
        "actions/cache/restore@v4",
        "actions/cache/save@v4",
        "key: fuzz-corpus-${{ github.run_id }}",
        "restore-keys: fuzz-corpus-",
        "--corpus-dir",
        "pull_request) mode=pr",
        "mode=batch",
        "mode=prune",
        "actions/cache@v4",
        "target/runner-cache",
        "pin/toolchain.toml",
    ] {
        assert!(text.contains(needle), "the workflow lacks `{needle}`");
    }
}
