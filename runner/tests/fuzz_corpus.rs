//! Fuzzing across runs with real cargo-fuzz on `fixtures/fuzz-bugs`: a corpus folder that
//! grows and never touches the source tree, the crash registry (found and registered by
//! `batch`, still present or fixed on `replay`, tolerated by `pr`), and `prune`.

mod common;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use common::{fixture, fixture_copy, read_json, run, runner, Run};
use serde_json::Value;

/// The build directory the fuzz tests share, so libFuzzer compiles once per machine.
fn shared_target_dir() -> PathBuf {
    fixture("fuzz-bugs").join("target")
}

/// A fresh copy of the fixture without any corpus or artifacts left by hand runs.
fn fresh_copy() -> tempfile::TempDir {
    let copy = fixture_copy("fuzz-bugs");
    for leftover in ["fuzz/corpus", "fuzz/artifacts"] {
        let _ = std::fs::remove_dir_all(copy.path().join(leftover));
    }
    copy
}

/// `runner fuzz` with the corpus folder `corpus` in the copy; returns the run, its report and
/// how long it took.
fn runner_fuzz(workspace: &Path, out: &str, args: &[&str]) -> (Run, Value, Duration) {
    // Every copy builds into the shared directory, where cargo-fuzz puts a target's binary at
    // one path (and one test builds a fixed copy): one runner at a time.
    static LOCK: Mutex<()> = Mutex::new(());
    let _one_at_a_time = LOCK.lock().unwrap_or_else(PoisonError::into_inner);
    common::setup_once("fuzz");
    let out = workspace.join(out);
    let started = Instant::now();
    let result = run(runner()
        .arg("fuzz")
        .arg(workspace)
        .arg("--force-out")
        .arg("--out")
        .arg(&out)
        .arg("--corpus-dir")
        .arg(workspace.join("corpus"))
        .args(args)
        .env("CARGO_TARGET_DIR", shared_target_dir()));
    let elapsed = started.elapsed();
    assert!(
        out.join("report.json").is_file(),
        "no report ({}): {}",
        result.code,
        result.stderr
    );
    let report = read_json(&out.join("report.json"));
    (result, report, elapsed)
}

fn stage(report: &Value) -> &Value {
    &report["stages"][0]
}

fn counts<'a>(report: &'a Value, target: &str) -> &'a Value {
    let targets = stage(report)["targets"].as_array().expect("targets");
    &targets
        .iter()
        .find(|t| t["name"] == target)
        .unwrap_or_else(|| panic!("no row for {target} in {targets:?}"))["counts"]
}

fn fingerprints(report: &Value, list: &str) -> Vec<String> {
    report["baseline"][list]
        .as_array()
        .unwrap_or_else(|| panic!("no baseline {list}: {}", report["baseline"]))
        .iter()
        .map(|brief| brief["fingerprint"].as_str().unwrap().to_owned())
        .collect()
}

fn registry_records(workspace: &Path, target: &str) -> Vec<Value> {
    let dir = workspace.join("corpus/.crashes").join(target);
    let Ok(files) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    files
        .flatten()
        .filter(|f| f.path().extension().is_some_and(|e| e == "json"))
        .map(|f| read_json(&f.path()))
        .collect()
}

fn inputs(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir).map_or_else(
        |_| Vec::new(),
        |files| {
            files
                .flatten()
                .map(|f| f.file_name().into_string().unwrap())
                .collect()
        },
    )
}

#[test]
fn a_registered_crash_is_replayed_still_present_tolerated_by_pr_and_then_fixed() {
    let copy = fresh_copy();
    let ws = copy.path();

    // batch: found, minimized and registered.
    let (batch, report, _) = runner_fuzz(ws, "batch", &["--fuzz-time", "5s", "--", "chunk_tags"]);
    assert_eq!(batch.code, 1, "{}", batch.stderr);
    let crash = &stage(&report)["findings"][0];
    let fingerprint = crash["fingerprint"].as_str().unwrap().to_owned();
    let records = registry_records(ws, "chunk_tags");
    assert_eq!(
        records.len(),
        1,
        "one entry per distinct crash: {records:?}"
    );
    assert_eq!(records[0]["finding"]["fingerprint"], fingerprint.as_str());
    let registered_input = std::fs::read(
        ws.join("corpus/.crashes/chunk_tags")
            .join(records[0]["input"].as_str().unwrap()),
    )
    .unwrap();
    assert!(
        registered_input.len() <= 8,
        "kept minimized: {registered_input:?}"
    );

    // replay: reproduced without fuzzing, in seconds, and still present.
    let (replay, report, elapsed) =
        runner_fuzz(ws, "replay", &["--mode", "replay", "--", "chunk_tags"]);
    assert_eq!(replay.code, 1, "{}", replay.stderr);
    assert!(elapsed < Duration::from_secs(30), "replay took {elapsed:?}");
    assert_eq!(
        fingerprints(&report, "still_present"),
        std::slice::from_ref(&fingerprint)
    );
    assert!(fingerprints(&report, "new").is_empty());
    let log = std::fs::read_to_string(ws.join("replay/fuzz/logs/chunk_tags-0.err")).unwrap();
    assert!(
        log.contains("-runs=0"),
        "the corpus ran once, unmutated: {log}"
    );
    assert!(counts(&report, "chunk_tags")["new_inputs"] == 0);

    pr_tolerates_the_registered_crash_and_fails_on_a_new_one(ws, &fingerprint);

    // The bug fixed: replay says fixed and passes; the input stays as a regression input.
    fix_the_bug(ws);
    let (fixed, report, _) = runner_fuzz(ws, "fixed", &["--mode", "replay", "--", "chunk_tags"]);
    assert_eq!(fixed.code, 0, "{}", fixed.stderr);
    assert_eq!(
        fingerprints(&report, "fixed"),
        std::slice::from_ref(&fingerprint)
    );
    assert!(registry_records(ws, "chunk_tags").is_empty(), "retired");
    assert!(inputs(&ws.join("corpus/chunk_tags"))
        .iter()
        .any(|name| name.starts_with("regression-")));
}

/// pr against a clean baseline with `fail-on-new-only`: the registered crash is let through;
/// the hang nobody registered fails the gate.
fn pr_tolerates_the_registered_crash_and_fails_on_a_new_one(ws: &Path, fingerprint: &str) {
    let (check, _, _) = runner_fuzz(ws, "clean", &["--check"]);
    assert_eq!(check.code, 0, "{}", check.stderr);
    let manifest = ws.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(
        &manifest,
        text.replace(
            "[workspace.metadata.runner.fuzz]",
            "[workspace.metadata.runner]\nfail-on-new-only = true\n\n[workspace.metadata.runner.fuzz]",
        ),
    )
    .unwrap();
    let baseline = ws.join("clean/report.json");
    let baseline = baseline.to_str().unwrap();
    let pr_args = ["--mode", "pr", "--baseline", baseline];
    let (pr, report, _) = runner_fuzz(
        ws,
        "pr-old",
        &[&pr_args[..], &["--fuzz-time", "3s", "--", "chunk_tags"]].concat(),
    );
    assert_eq!(
        pr.code, 0,
        "a registered crash does not fail: {}",
        pr.stderr
    );
    assert_eq!(fingerprints(&report, "still_present"), [fingerprint]);
    assert!(report["gate"]["passed"].as_bool().unwrap());
    let (pr, report, _) = runner_fuzz(
        ws,
        "pr-new",
        &[
            &pr_args[..],
            &["--fuzz-time", "20s", "--", "chunk_tags", "links"],
        ]
        .concat(),
    );
    assert_eq!(pr.code, 1, "a new crash fails: {}", pr.stderr);
    let reasons = report["gate"]["reasons"].to_string();
    assert!(reasons.contains("1 new finding"), "{reasons}");
    let notes = stage(&report)["notes"].to_string();
    assert!(notes.contains("first crash not in the registry"), "{notes}");
}

/// Fixes the unsupported-tag panic in the copy.
fn fix_the_bug(ws: &Path) {
    let lib = ws.join("src/lib.rs");
    let source = std::fs::read_to_string(&lib).unwrap();
    std::fs::write(
        &lib,
        source.replace(
            "panic!(\"unsupported chunk tag at offset {offset}\");",
            "let _ = offset;\n            continue;",
        ),
    )
    .unwrap();
}

#[test]
fn the_corpus_folder_grows_across_runs_and_the_source_tree_is_left_alone() {
    let copy = fresh_copy();
    let ws = copy.path();
    let (first, report, _) = runner_fuzz(ws, "one", &["--fuzz-time", "3s", "--", "checksum"]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    let one = counts(&report, "checksum").clone();
    assert_eq!(one["corpus_inputs_before"], 0, "{one}");
    assert!(one["corpus_inputs_after"].as_u64().unwrap() > 0, "{one}");
    let (second, report, _) = runner_fuzz(ws, "two", &["--fuzz-time", "3s", "--", "checksum"]);
    assert_eq!(second.code, 0, "{}", second.stderr);
    let two = counts(&report, "checksum");
    assert_eq!(
        two["corpus_inputs_before"], one["corpus_inputs_after"],
        "{two}"
    );
    assert_eq!(
        two["corpus_bytes_before"], one["corpus_bytes_after"],
        "{two}"
    );
    assert!(two["corpus_inputs_after"].as_u64() >= two["corpus_inputs_before"].as_u64());
    // Content-named inputs (libFuzzer's SHA-1 of the bytes), never written in the project.
    let names = inputs(&ws.join("corpus/checksum"));
    assert!(
        names
            .iter()
            .all(|n| n.len() == 40 && n.bytes().all(|b| b.is_ascii_hexdigit())),
        "{names:?}"
    );
    assert!(
        !ws.join("fuzz/corpus").exists(),
        "the source tree is untouched"
    );
}

#[test]
fn prune_shrinks_a_padded_corpus_and_keeps_its_features() {
    let copy = fresh_copy();
    let ws = copy.path();
    let corpus = ws.join("corpus/checksum");
    std::fs::create_dir_all(&corpus).unwrap();
    for i in 0..200 {
        std::fs::write(
            corpus.join(format!("pad{i:03}")),
            format!("redundant input {i:03}"),
        )
        .unwrap();
    }
    let (prune, report, _) = runner_fuzz(ws, "prune", &["--mode", "prune", "--", "checksum"]);
    assert_eq!(prune.code, 0, "{}", prune.stderr);
    let pruned = counts(&report, "checksum");
    assert_eq!(pruned["corpus_inputs_before"], 200, "{pruned}");
    let after = pruned["corpus_inputs_after"].as_u64().unwrap();
    assert!((1..50).contains(&after), "{pruned}");
    assert!(pruned["ft_before"].as_u64().unwrap() > 0, "{pruned}");
    assert_eq!(pruned["ft_after"], pruned["ft_before"], "{pruned}");
    assert_eq!(pruned["cov_after"], pruned["cov_before"], "{pruned}");
    assert_eq!(inputs(&corpus).len() as u64, after);
}

/// The `Loaded 1 modules (N inline 8-bit counters)` figure of a libFuzzer log.
fn counters(log: &str) -> u64 {
    let (_, after) = log
        .split_once("Loaded 1 modules")
        .expect("libFuzzer's module line");
    let open = after.find('(').unwrap();
    after[open + 1..]
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn selective_instrumentation_puts_counters_only_into_the_named_crates() {
    let copy = fresh_copy();
    let ws = copy.path();
    let replay = ["--mode", "replay", "--", "chunk_tags"];
    let (full, _, _) = runner_fuzz(ws, "full", &replay);
    assert_eq!(full.code, 0, "{}", full.stderr);
    let full_log = std::fs::read_to_string(ws.join("full/fuzz/logs/chunk_tags-0.err")).unwrap();
    let manifest = ws.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(
        &manifest,
        text.replace(
            "seed = 1\n",
            "seed = 1\ninstrument = [\"fuzz-bugs\"]\nflags = [\"-print_coverage=1\"]\n",
        ),
    )
    .unwrap();
    let (only, _, _) = runner_fuzz(ws, "only", &replay);
    assert_eq!(only.code, 0, "{}", only.stderr);
    let log = std::fs::read_to_string(ws.join("only/fuzz/logs/chunk_tags-0.err")).unwrap();
    let (all, named) = (counters(&full_log), counters(&log));
    assert!(0 < named && named < all, "{named} counters of {all}");
    // Every instrumented function libFuzzer lists is the named crate's.
    let functions: Vec<&str> = log.lines().filter(|l| l.contains("_FUNC: ")).collect();
    assert!(!functions.is_empty(), "{log}");
    let library = ws.join("src/lib.rs");
    for line in functions {
        assert!(
            line.contains("fuzz_bugs::") && line.contains(library.to_str().unwrap()),
            "{line}"
        );
    }
}

/// PATH with runner's own tool installs (cargo-fuzz) first, as runner gives its children.
fn tool_path() -> String {
    let cache = std::env::var("RUNNER_CACHE_DIR").map_or_else(
        |_| match std::env::var("XDG_CACHE_HOME") {
            Ok(dir) => PathBuf::from(dir).join("runner"),
            Err(_) => PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/runner"),
        },
        PathBuf::from,
    );
    format!(
        "{}:{}",
        cache.join("tools/bin").display(),
        std::env::var("PATH").unwrap()
    )
}

/// `(lines, missed lines, branches, missed branches)` of `llvm-cov report`'s TOTAL line.
fn report_totals(text: &str) -> (u64, u64, u64, u64) {
    let words: Vec<u64> = text
        .lines()
        .find(|line| line.starts_with("TOTAL"))
        .unwrap_or_else(|| panic!("no TOTAL line: {text}"))
        .split_whitespace()
        .filter_map(|word| word.parse().ok())
        .collect();
    // regions, missed, functions, missed, lines, missed, branches, missed
    (words[4], words[5], words[6], words[7])
}

#[test]
fn corpus_coverage_equals_cargo_fuzz_coverage_and_llvm_cov_report_by_hand() {
    let copy = fresh_copy();
    let ws = copy.path();
    let corpus = ws.join("corpus/checksum");
    std::fs::create_dir_all(&corpus).unwrap();
    std::fs::write(corpus.join("a"), b"hello").unwrap();
    let (measured, report, _) =
        runner_fuzz(ws, "coverage", &["--mode", "coverage", "--", "checksum"]);
    assert_eq!(measured.code, 0, "{}", measured.stderr);
    let counts = counts(&report, "checksum").clone();
    let folder = ws.join("coverage/fuzz/coverage/checksum");
    for file in ["coverage.json", "coverage.lcov", "html/index.html"] {
        assert!(folder.join(file).is_file(), "{file}");
    }
    let table = &stage(&report)["tables"][0];
    assert_eq!(table["rows"][0][0], "checksum", "{table}");
    let never = table["rows"][0][4].as_str().unwrap();
    assert!(never.contains("fuzz_bugs::count_tags"), "{never}");
    assert!(!never.contains("fuzz_bugs::checksum"), "{never}");
    assert!(
        !never.contains("libfuzzer_sys"),
        "only the workspace's functions: {never}"
    );
    assert_eq!(
        counts["functions_never_reached"].as_u64().unwrap(),
        counts["functions"].as_u64().unwrap() - counts["functions_covered"].as_u64().unwrap(),
        "{counts}"
    );

    // By hand: the same cargo-fuzz command and build folder, then llvm-cov's own report.
    let channel = common::pinned_channel();
    let target_dir = shared_target_dir().join("runner-build/fuzz/address-coverage");
    let by_hand = run(std::process::Command::new("cargo")
        .arg(format!("+{channel}"))
        .args(["fuzz", "coverage", "--fuzz-dir"])
        .arg(ws.join("fuzz"))
        .arg("--target-dir")
        .arg(&target_dir)
        .args(["--sanitizer", "address", "checksum"])
        // What runner gives it: the kept corpus, then the project's seed corpus.
        .arg(&corpus)
        .arg(ws.join("fuzz/seeds/checksum"))
        .env("RUSTFLAGS", "-Zcoverage-options=branch")
        .env("PATH", tool_path())
        .env_remove("CARGO_TARGET_DIR"));
    assert_eq!(by_hand.code, 0, "{}", by_hand.stderr);
    let sysroot = run(std::process::Command::new("rustc")
        .arg(format!("+{channel}"))
        .args(["--print", "sysroot"]));
    let host = std::env::consts::ARCH.to_owned() + "-unknown-linux-gnu";
    let llvm_cov =
        PathBuf::from(sysroot.stdout.trim()).join(format!("lib/rustlib/{host}/bin/llvm-cov"));
    let binary = target_dir.join(format!("{host}/release/checksum"));
    let text = run(std::process::Command::new(llvm_cov)
        .arg("report")
        .arg(format!(
            "-instr-profile={}",
            ws.join("fuzz/coverage/checksum/coverage.profdata")
                .display()
        ))
        .arg(binary)
        .arg(ws));
    let (lines, missed_lines, branches, missed_branches) = report_totals(&text.stdout);
    assert_eq!(counts["lines"], lines, "{counts}\n{}", text.stdout);
    assert_eq!(counts["lines_covered"], lines - missed_lines, "{counts}");
    assert_eq!(counts["branches"], branches, "{counts}");
    assert_eq!(
        counts["branches_covered"],
        branches - missed_branches,
        "{counts}"
    );
    assert!(lines > 0 && counts["lines_covered"].as_u64().unwrap() > 0);
}
