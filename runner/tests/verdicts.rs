//! Verdicts on what popular published crates do, each a runner fault once: a dependency that
//! is a published copy of the crate under test, `--exclude` without `--workspace`, libtest's
//! 60-second warning, panicking tests under `MemorySanitizer` with `RUST_BACKTRACE=1` in the
//! environment, a test with a thousand threads under valgrind, a test target with a `main` of
//! its own, and a report for a run that could not be evaluated. The fixture `real-verdicts`
//! passes every check it is given here: any finding or error is runner's.

mod common;

use std::path::Path;

use common::{fixture, read_json, run, runner, stage_named, Run};
use serde_json::Value;

/// `runner <stage> real-verdicts <args>` with `RUST_BACKTRACE=1`, as many CI machines set it.
fn analyse(stage: &str, out: &str, args: &[&str]) -> (Run, Value, std::path::PathBuf) {
    let out = fixture("real-verdicts")
        .join("target/runner-tests")
        .join(out);
    let result = run(runner()
        .env("RUST_BACKTRACE", "1")
        .arg(stage)
        .arg(fixture("real-verdicts"))
        .arg("--out")
        .arg(&out)
        .args(args));
    let report = read_json(&out.join("report.json"));
    (result, report, out)
}

fn tests_of(stage: &Value) -> Vec<(String, String, String)> {
    stage["tests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|test| {
            (
                test["unit"].as_str().unwrap_or_default().to_owned(),
                test["name"].as_str().unwrap().to_owned(),
                test["outcome"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn assert_passed_without_findings(result: &Run, stage: &Value) {
    assert_eq!(
        stage["status"], "PASS",
        "{}\n{}",
        stage["reason"], result.stderr
    );
    assert_eq!(result.code, 0, "{}", result.stderr);
    assert_eq!(
        stage["findings"].as_array().unwrap().len(),
        0,
        "{:#}",
        stage["findings"]
    );
}

#[test]
fn miri_selects_a_package_that_has_a_published_copy_and_excludes_without_workspace() {
    common::provisioned();
    let (result, report, out) = analyse(
        "miri",
        "miri",
        &[
            "--exclude",
            "sibling",
            "--",
            "parses",
            "panics",
            "many_threads",
        ],
    );
    let miri = stage_named(&report, "miri");
    assert_passed_without_findings(&result, miri);
    let tests = tests_of(miri);
    let ran: Vec<&str> = tests
        .iter()
        .filter(|(_, _, outcome)| outcome == "passed")
        .map(|(_, name, _)| name.as_str())
        .collect();
    assert_eq!(ran.len(), 5, "{tests:?}");
    assert!(
        tests
            .iter()
            .any(|(unit, name, _)| unit == "verdicts --test test"
                && name == "parses_through_the_public_api"),
        "{tests:?}"
    );
    assert!(
        !tests.iter().any(|(unit, _, _)| unit.starts_with("sibling")),
        "{tests:?}"
    );
    // `many_threads` is `cfg_attr(miri, ignore)`: counted as ignored, in the Markdown too.
    assert_eq!(miri["counts"]["ignored"], 1, "{:#}", miri["counts"]);
    // The test with a `main` of its own is never started (it fails whatever it is given),
    // and the report says it was not run.
    let notes = miri["notes"].to_string();
    assert!(
        notes.contains("not run: `verdicts --test own_main` (`harness = false`"),
        "{notes}"
    );
    let markdown = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(markdown.to_lowercase().contains("ignored"), "{markdown}");
}

#[test]
fn valgrind_handles_many_threads_the_sixty_second_warning_and_cargos_environment() {
    common::require_tool(&["valgrind"], "valgrind");
    let (result, report, _) = analyse(
        "valgrind",
        "valgrind",
        &[
            "-p",
            "verdicts",
            "--",
            "many_threads",
            "slow_but_passes",
            "the_rustc_on_path_built_this_test",
        ],
    );
    let valgrind = stage_named(&report, "valgrind");
    assert_passed_without_findings(&result, valgrind);
    assert_eq!(
        valgrind["counts"]["tests_run"], 3,
        "{:#}",
        valgrind["counts"]
    );
    assert_eq!(valgrind["counts"]["passed"], 3, "{:#}", valgrind["counts"]);
}

#[test]
fn memory_sanitizer_panics_fast_whatever_backtrace_the_shell_asks_for() {
    common::setup_once("sanitizers");
    // Each of these tests takes a tenth of a second; with a backtrace on every panic under
    // MemorySanitizer they took from 28 s to over 300 s each.
    let (result, report, _) = analyse(
        "sanitizers",
        "sanitizers",
        &["-p", "verdicts", "--test-timeout", "60s", "--", "panics"],
    );
    let sanitizers = stage_named(&report, "sanitizers");
    assert_passed_without_findings(&result, sanitizers);
    assert_eq!(
        sanitizers["counts"]["tests_run"], 3,
        "{:#}",
        sanitizers["counts"]
    );
}

/// A test past its limit under valgrind that finished under `MemorySanitizer` is slow under
/// valgrind, not stuck: the stage says so as its error, never as a `timeout` finding.
#[test]
fn a_test_too_slow_for_one_tool_is_not_a_hang() {
    common::require_tool(&["valgrind"], "valgrind");
    common::setup_once("sanitizers");
    let durations = tempfile::tempdir().unwrap();
    let durations = durations.path().join("durations.json");
    let durations_arg = durations.to_str().unwrap();
    let (first, report, _) = analyse(
        "sanitizers",
        "slow-sanitizers",
        &[
            "-p",
            "verdicts",
            "--durations",
            durations_arg,
            "--",
            "spins_a_while",
        ],
    );
    assert_passed_without_findings(&first, stage_named(&report, "sanitizers"));
    let (result, report, _) = analyse(
        "valgrind",
        "slow-valgrind",
        &[
            "-p",
            "verdicts",
            "--durations",
            durations_arg,
            "--test-timeout",
            "2s",
            "--",
            "spins_a_while",
        ],
    );
    let valgrind = stage_named(&report, "valgrind");
    assert_eq!(result.code, 2, "{}", result.stderr);
    assert_eq!(valgrind["status"], "ERROR", "{valgrind:#}");
    assert!(
        valgrind["findings"].as_array().unwrap().is_empty(),
        "{valgrind:#}"
    );
    let reason = valgrind["reason"].as_str().unwrap();
    assert!(reason.contains("not a hang"), "{reason}");
    assert!(reason.contains("under sanitizers on memory"), "{reason}");
}

#[test]
fn a_run_that_could_not_be_evaluated_is_neither_a_pass_nor_a_fail() {
    let crate_dir = common::temp_crate(
        "[package]\nname = \"no-tests\"\nversion = \"0.1.0\"\nedition = \"2021\"\n[workspace]\n",
        "//! Nothing to test.\n",
    );
    let out_dir = tempfile::tempdir().unwrap();
    let out = out_dir.path().join("out");
    let result = run(runner()
        .arg("valgrind")
        .arg(crate_dir.path())
        .arg("--out")
        .arg(&out));
    assert_eq!(result.code, 2, "{}", result.stderr);
    let markdown = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(
        markdown.contains("**Gate: NOT EVALUATED**"),
        "{}",
        markdown.lines().take(5).collect::<Vec<_>>().join("\n")
    );
    let report = read_json(&out.join("report.json"));
    assert_eq!(report["gate"]["not_evaluated"], true);
    assert_eq!(report["gate"]["passed"], false);
}

/// A workspace member's unknown key is an error naming the member's manifest.
#[test]
fn a_member_table_with_an_unknown_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "Cargo.toml", "[workspace]\nmembers = [\"a\"]\n");
    write(
        root,
        "a/Cargo.toml",
        "[package]\nname = \"a\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\
         [package.metadata.runner]\nbogus = 1\n",
    );
    write(root, "a/src/lib.rs", "");
    let result = run(runner().args(["-q", "plan"]).arg(root));
    result.assert_one_line_error("bogus");
    assert!(
        result
            .stderr
            .contains(&format!("{}", root.join("a/Cargo.toml").display())),
        "{}",
        result.stderr
    );
}

fn write(root: &Path, file: &str, text: &str) {
    let path = root.join(file);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}
