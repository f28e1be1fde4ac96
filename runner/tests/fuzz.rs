//! The fuzz stage end to end with real cargo-fuzz on `fixtures/fuzz-bugs`: the crash is found,
//! minimized and replayed, the clean target runs clean, the hang becomes a timeout, the corpus
//! grows across runs, `--check` only builds, and a workspace without targets is skipped.

mod common;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};

use common::{fixture, fixture_copy, read_json, run, runner, Run};
use serde_json::Value;

/// Per-target budget of the main run: the crash needs well under a second with the fixed
/// seed and the hang a few seconds; the rest is margin for a loaded machine.
const BUDGET_SECS: u64 = 20;
/// The fixture's per-input timeout (its config says 2s) plus libFuzzer's shutdown.
const OVERSHOOT_SECS: u64 = 10;

/// One build directory for every copy of the fixture, so libFuzzer itself (a C++ build of
/// minutes) compiles once per machine, not once per test.
fn shared_target_dir() -> PathBuf {
    fixture("fuzz-bugs").join("target")
}

/// Every copy builds into the shared directory, and cargo-fuzz puts each target's binary at
/// one path there: two copies building at once would swap binaries under each other. One
/// runner (or replay) at a time, then.
fn exclusive() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A fresh copy of the fixture without any corpus or artifacts left by hand runs.
fn fresh_copy() -> tempfile::TempDir {
    let copy = fixture_copy("fuzz-bugs");
    for leftover in ["fuzz/corpus", "fuzz/artifacts"] {
        let _ = std::fs::remove_dir_all(copy.path().join(leftover));
    }
    copy
}

/// Runs `runner fuzz`; the caller holds `exclusive()`.
fn runner_fuzz(workspace: &Path, out: &Path, args: &[&str]) -> (Run, Value) {
    common::setup_once("fuzz");
    let result = run(runner()
        .arg("fuzz")
        .arg(workspace)
        .arg("--force-out")
        .arg("--out")
        .arg(out)
        .args(args)
        .env("CARGO_TARGET_DIR", shared_target_dir()));
    let report = read_json(&out.join("report.json"));
    (result, report)
}

struct Analysed {
    copy: tempfile::TempDir,
    run: Run,
    report: Value,
    records: Vec<Value>,
}

/// The main run, shared by the tests that read it: every target, two at a time.
fn analysed() -> &'static Analysed {
    static MAIN: OnceLock<Analysed> = OnceLock::new();
    MAIN.get_or_init(|| {
        let _one_at_a_time = exclusive();
        let copy = fresh_copy();
        let out = copy.path().join("out");
        let budget = format!("{BUDGET_SECS}s");
        let (run, report) =
            runner_fuzz(copy.path(), &out, &["--fuzz-time", &budget, "--jobs", "2"]);
        let records = read_json(&out.join("fuzz/findings.json"))
            .as_array()
            .expect("findings.json is a list")
            .clone();
        Analysed {
            copy,
            run,
            report,
            records,
        }
    })
}

fn stage(report: &Value) -> &Value {
    &report["stages"][0]
}

fn target_counts<'a>(report: &'a Value, name: &str) -> &'a Value {
    let targets = stage(report)["targets"].as_array().expect("targets");
    &targets
        .iter()
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("no row for {name} in {targets:?}"))["counts"]
}

fn findings_of<'a>(report: &'a Value, target: &str) -> Vec<&'a Value> {
    stage(report)["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["test"] == target)
        .collect()
}

fn record_of<'a>(records: &'a [Value], target: &str) -> &'a Value {
    records
        .iter()
        .find(|r| r["target"] == target)
        .unwrap_or_else(|| panic!("no record for {target}"))
}

/// Runs a report's repro line the way a reader would: pasted into a fresh shell. The line
/// itself puts runner's own cargo-fuzz on PATH (it is not on the user's).
fn replay(repro: &str) -> Run {
    run(std::process::Command::new("sh")
        .args(["-c", repro])
        .env_remove("CARGO_TARGET_DIR"))
}

#[test]
fn the_crash_is_found_once_per_bug_minimized_and_its_repro_reproduces_it() {
    let analysed = analysed();
    assert_eq!(analysed.run.code, 1, "gate fails: {}", analysed.run.stderr);
    assert_eq!(stage(&analysed.report)["status"], "FAIL");
    let crashes = findings_of(&analysed.report, "chunk_tags");
    assert_eq!(crashes.len(), 1, "one finding per bug: {crashes:#?}");
    let crash = crashes[0];
    assert_eq!(crash["kind"], "panic");
    assert_eq!(crash["severity"], "critical");
    assert_eq!(crash["location"]["file"], "src/lib.rs");
    assert_eq!(crash["location"]["line"], 13);
    assert_eq!(crash["function"], "fuzz_bugs::count_tags");
    assert!(
        crash["message"]
            .as_str()
            .unwrap()
            .contains("unsupported chunk tag"),
        "{crash}"
    );

    let record = record_of(&analysed.records, "chunk_tags");
    // Sessions restart after a crash, and the bug is found again: counted, not repeated.
    assert!(record["count"].as_u64().unwrap() >= 2, "{record}");
    let original = record["input_len"].as_u64().unwrap();
    let minimized = record["minimized_len"].as_u64().expect("minimized");
    assert!(minimized <= original, "{record}");
    let minimized_path = PathBuf::from(record["minimized"].as_str().unwrap());
    let artifact = PathBuf::from(record["artifact"].as_str().unwrap());
    assert_eq!(minimized_path.parent(), artifact.parent(), "kept beside it");
    assert!(std::fs::read(&minimized_path)
        .unwrap()
        .windows(4)
        .any(|w| w == b"BUG!"));

    let repro = crash["repro"].as_str().unwrap();
    assert!(repro.contains(artifact.to_str().unwrap()), "{repro}");
    let replayed = {
        let _one_at_a_time = exclusive();
        replay(repro)
    };
    assert_ne!(replayed.code, 0, "the repro fails again");
    assert!(
        replayed.stderr.contains("unsupported chunk tag"),
        "{}",
        replayed.stderr
    );
}

#[test]
fn the_clean_target_runs_with_no_findings_and_reports_its_figures() {
    let report = &analysed().report;
    assert!(findings_of(report, "checksum").is_empty());
    let counts = target_counts(report, "checksum");
    assert!(counts["executions"].as_u64().unwrap() > 1000, "{counts}");
    assert!(counts["exec_per_sec"].as_u64().unwrap() > 0, "{counts}");
    assert!(counts["cov"].as_u64().unwrap() > 0, "{counts}");
    assert!(counts["ft"].as_u64().unwrap() > 0, "{counts}");
    assert!(counts["peak_rss_mb"].as_u64().unwrap() > 0, "{counts}");
    assert!(counts["new_inputs"].as_u64().unwrap() > 0, "{counts}");
    assert_eq!(counts["corpus_inputs_before"], 0, "{counts}");
    assert!(
        counts["corpus_inputs_after"].as_u64().unwrap() > 0,
        "{counts}"
    );
    let duration = counts["duration_ms"].as_u64().unwrap();
    assert!(
        duration >= (BUDGET_SECS - 2) * 1000,
        "used its budget: {counts}"
    );
}

#[test]
fn the_hang_becomes_a_timeout_finding_within_the_budget() {
    let analysed = analysed();
    let hangs = findings_of(&analysed.report, "links");
    assert_eq!(hangs.len(), 1, "{hangs:#?}");
    assert_eq!(hangs[0]["kind"], "timeout");
    assert_eq!(hangs[0]["category"], "timeout");
    assert_eq!(hangs[0]["severity"], "high");
    assert_eq!(hangs[0]["function"], "fuzz_bugs::follow_links");
    let duration = target_counts(&analysed.report, "links")["duration_ms"]
        .as_u64()
        .unwrap();
    assert!(
        duration <= (BUDGET_SECS + OVERSHOOT_SECS) * 1000,
        "{duration} ms"
    );
    // The target takes an `Arbitrary` type: its input is shown the way it reads it.
    let record = record_of(&analysed.records, "links");
    assert!(
        record["debug"].as_str().unwrap().starts_with("LinkTable {"),
        "{record}"
    );
}

#[test]
fn a_second_run_starts_from_the_grown_corpus() {
    let first = analysed();
    let grown = target_counts(&first.report, "checksum")["corpus_inputs_after"].clone();
    let out = first.copy.path().join("out-second");
    let _one_at_a_time = exclusive();
    let (second, report) = runner_fuzz(
        first.copy.path(),
        &out,
        &["--fuzz-time", "3s", "--", "checksum"],
    );
    assert_eq!(second.code, 0, "{}", second.stderr);
    let counts = target_counts(&report, "checksum");
    assert_eq!(counts["corpus_inputs_before"], grown, "{counts}");
    let log = std::fs::read_to_string(out.join("fuzz/logs/checksum-0.err")).unwrap();
    assert!(
        log.contains(&format!("{grown} files found in")),
        "libFuzzer loaded the corpus: {log}"
    );
}

#[test]
fn a_long_crashing_input_minimizes_to_the_trigger() {
    // DECISIONS' acceptance: 200 bytes that contain the 4-byte trigger → at most 8 bytes.
    let copy = fresh_copy();
    let corpus = copy.path().join("fuzz/corpus/chunk_tags");
    std::fs::create_dir_all(&corpus).unwrap();
    let mut input: Vec<u8> = (0..200u32).map(|i| b'a' + (i % 26) as u8).collect();
    input[97..101].copy_from_slice(b"BUG!");
    std::fs::write(corpus.join("long-input"), &input).unwrap();
    let out = copy.path().join("out");
    let (result, report) = {
        let _one_at_a_time = exclusive();
        runner_fuzz(
            copy.path(),
            &out,
            &["--fuzz-time", "5s", "--", "chunk_tags"],
        )
    };
    assert_eq!(result.code, 1, "{}", result.stderr);
    let records = read_json(&out.join("fuzz/findings.json"));
    let record = record_of(records.as_array().unwrap(), "chunk_tags");
    assert_eq!(record["input_len"], 200, "{record}");
    let minimized = record["minimized_len"].as_u64().expect("minimized");
    assert!(minimized <= 8, "{record}");
    let notes = stage(&report)["notes"].to_string();
    assert!(
        notes.contains("already in"),
        "the corpus crash is explained: {notes}"
    );
}

#[test]
fn check_only_builds_every_target() {
    let copy = fresh_copy();
    let out = copy.path().join("out");
    let (result, report) = {
        let _one_at_a_time = exclusive();
        runner_fuzz(copy.path(), &out, &["--check"])
    };
    assert_eq!(result.code, 0, "{}", result.stderr);
    let stage = stage(&report);
    assert_eq!(stage["status"], "PASS");
    let names: Vec<&str> = stage["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["checksum", "chunk_tags", "links"]);
    assert!(
        !copy.path().join("fuzz/corpus").exists(),
        "nothing was fuzzed"
    );
}

#[test]
fn a_workspace_without_fuzz_targets_is_skipped_in_all_and_an_error_when_named() {
    // Named explicitly with nothing to fuzz: an error, never a pass.
    let copy = fixture_copy("clean");
    let out = copy.path().join("out");
    let (result, report) = {
        let _one_at_a_time = exclusive();
        runner_fuzz(copy.path(), &out, &[])
    };
    let named = stage(&report);
    assert_eq!(named["status"], "ERROR");
    assert!(
        named["reason"]
            .as_str()
            .unwrap()
            .contains("no cargo-fuzz project"),
        "{named}"
    );
    assert_eq!(result.code, 2, "{}", result.stderr);

    // Inside `all` the stage does not apply: SKIPPED with the reason. As it is the only stage
    // configured, nothing was checked and the run still cannot pass.
    let manifest = "[package]\nname = \"nofuzz\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\
                    [workspace]\n[package.metadata.runner]\nstages = [\"fuzz\"]\n";
    let workspace = common::temp_crate(manifest, "pub fn f() {}\n");
    let out = workspace.path().join("out");
    let result = run(runner()
        .arg("all")
        .arg(workspace.path())
        .arg("--force-out")
        .arg("--out")
        .arg(&out));
    let report = read_json(&out.join("report.json"));
    let skipped = stage(&report);
    assert_eq!(skipped["status"], "SKIPPED");
    assert!(
        skipped["reason"]
            .as_str()
            .unwrap()
            .contains("no cargo-fuzz project"),
        "{skipped}"
    );
    assert_eq!(result.code, 2, "{}", result.stderr);
}

#[test]
fn a_target_that_does_not_build_is_an_error_never_a_pass() {
    let copy = fresh_copy();
    let broken = copy.path().join("fuzz/fuzz_targets/checksum.rs");
    let source = std::fs::read_to_string(&broken).unwrap();
    std::fs::write(
        &broken,
        source.replace("checksum(data)", "checksum(data, 1)"),
    )
    .unwrap();
    let out = copy.path().join("out");
    let (result, report) = {
        let _one_at_a_time = exclusive();
        runner_fuzz(copy.path(), &out, &["--check"])
    };
    assert_eq!(result.code, 2, "{}", result.stderr);
    let stage = stage(&report);
    assert_eq!(stage["status"], "ERROR");
    let reason = stage["reason"].as_str().unwrap();
    assert!(reason.contains("building the fuzz targets"), "{reason}");
    assert!(
        reason.contains("argument"),
        "names the compiler error: {reason}"
    );
}
