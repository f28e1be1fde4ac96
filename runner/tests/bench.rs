//! The bench stage end to end: real criterion benchmarks and real callgrind on
//! `fixtures/bench-regress`, whose `checksum/fnv` does twice the work with `--features slow`.
//! A baseline run, then the slow run, must fail the gate; unchanged code counted under
//! callgrind must give the very same counts run after run. Under `--partition`, instruction
//! counts are split across slices and merge to the single run's comparison; wall-clock
//! benchmarks run whole in slice 1.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use common::{fixture_copy, read_json, run, runner, temp_crate, Run};
use serde_json::Value;

/// One build directory for every test here, as a user's `CARGO_TARGET_DIR` would be:
/// criterion is compiled once (a few minutes cold) and shared by the copies of the fixture.
fn shared_target_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("bench-builds")
}

/// Timings taken while another test's benchmarks or callgrind share the two cores would
/// measure the other test as much as the fixture.
static MEASURING: Mutex<()> = Mutex::new(());

/// A fresh copy of the fixture, with its own `.runner/` for baselines; `extra` is appended
/// to its `[workspace.metadata.runner.bench]` table.
fn workspace(extra: &str) -> tempfile::TempDir {
    common::provisioned();
    let dir = fixture_copy("bench-regress");
    let manifest = dir.path().join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, format!("{text}{extra}")).unwrap();
    dir
}

struct Benched {
    run: Run,
    report: Value,
    markdown: String,
}

fn bench(workspace: &Path, out: &str, args: &[&str]) -> Benched {
    let out = workspace.join("target/runner-tests").join(out);
    let run = run(runner()
        .arg("bench")
        .arg(workspace)
        .arg("--out")
        .arg(&out)
        .args(args)
        .env("CARGO_TARGET_DIR", shared_target_dir()));
    let report = read_json(&out.join("report.json"));
    let markdown = std::fs::read_to_string(out.join("report.md")).unwrap();
    Benched {
        run,
        report,
        markdown,
    }
}

fn stage(report: &Value) -> &Value {
    &report["stages"][0]
}

/// The Performance table's row of one benchmark, by column name.
fn row(report: &Value, id: &str) -> serde_json::Map<String, Value> {
    let table = &stage(report)["tables"][0];
    let columns = table["columns"].as_array().unwrap();
    let cells = table["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row[0] == format!("`{id}`"))
        .unwrap_or_else(|| panic!("no row for {id}: {table:#}"));
    columns
        .iter()
        .zip(cells.as_array().unwrap())
        .map(|(column, cell)| (column.as_str().unwrap().to_owned(), cell.clone()))
        .collect()
}

fn change_percent(row: &serde_json::Map<String, Value>) -> f64 {
    row["Change"]
        .as_str()
        .unwrap()
        .trim_end_matches(" %")
        .parse()
        .unwrap()
}

fn regressions(report: &Value) -> Vec<&Value> {
    stage(report)["findings"]
        .as_array()
        .unwrap()
        .iter()
        .collect()
}

#[test]
fn a_doubled_benchmark_fails_the_gate_against_the_saved_baseline() {
    let _measuring = MEASURING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let ws = workspace("flamegraph = \"checksum/fnv\"\n");
    let first = bench(ws.path(), "baseline", &[]);
    assert_eq!(first.run.code, 0, "{}", first.run.stderr);
    assert_eq!(stage(&first.report)["status"], "PASS");
    assert_eq!(stage(&first.report)["counts"]["new"], 2);
    assert_eq!(
        row(&first.report, "checksum/fnv")["Verdict"],
        "new: baseline recorded"
    );
    let saved = ws
        .path()
        .join(".runner/bench/main/wall/checksum/fnv/estimates.json");
    assert!(
        saved.is_file(),
        "the baseline lives in .runner/, outside target/"
    );
    let notes = stage(&first.report)["notes"].to_string();
    if which_perf() {
        assert!(
            notes.contains("flame graph of `checksum/fnv`: bench/flamegraph-checksum-fnv.svg"),
            "{notes}"
        );
        let svg = ws
            .path()
            .join("target/runner-tests/baseline/bench/flamegraph-checksum-fnv.svg");
        assert!(std::fs::read_to_string(svg).unwrap().contains("<svg"));
    } else {
        assert!(notes.contains("`perf` is not installed"), "{notes}");
    }

    let before = read_json(&saved);
    let slow = bench(ws.path(), "slow", &["--features", "slow"]);
    assert_eq!(slow.run.code, 1, "the gate fails: {}", slow.run.stderr);
    assert_eq!(stage(&slow.report)["status"], "FAIL");
    let fnv = row(&slow.report, "checksum/fnv");
    assert_eq!(fnv["Verdict"], "REGRESSED");
    assert!(change_percent(&fnv) > 50.0, "about 2× slower: {fnv:?}");
    assert!(fnv["Confidence"]
        .as_str()
        .unwrap()
        .starts_with("95 % CI [+"));
    let finding = regressions(&slow.report)
        .into_iter()
        .find(|f| f["test"] == "checksum/fnv")
        .expect("a finding for checksum/fnv");
    assert_eq!(finding["kind"], "wall-time-regression");
    assert_eq!(finding["category"], "threshold");
    assert_eq!(finding["severity"], "medium");
    assert!(finding["repro"]
        .as_str()
        .unwrap()
        .contains("--baseline-lenient main checksum/fnv --exact"));
    assert!(slow.markdown.contains("## Performance"));
    assert!(slow
        .markdown
        .contains("| Benchmark | Baseline | Current | Change | Confidence | Verdict |"));
    assert!(slow.markdown.contains("| REGRESSED |"));
    // A failing run does not move the baseline: the next comparison is still against it.
    assert_eq!(read_json(&saved), before);
}

fn which_perf() -> bool {
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .any(|dir| dir.join("perf").is_file())
}

#[test]
fn instruction_counts_of_unchanged_code_are_identical_ten_times_in_a_row() {
    common::require_tool(&["valgrind"], "valgrind");
    let _measuring = MEASURING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let ws = workspace("mode = \"instructions\"\n");
    let first = bench(ws.path(), "baseline", &[]);
    assert_eq!(first.run.code, 0, "{}", first.run.stderr);
    let baseline = read_json(&ws.path().join(".runner/bench/main/instructions.json"));
    let fnv_count = baseline["counts"]["checksum/fnv"].as_u64().unwrap();
    assert!(fnv_count > 4096, "one pass over 4 KiB: {baseline}");

    let started = Instant::now();
    for attempt in 1..=10 {
        let again = bench(ws.path(), &format!("again-{attempt}"), &[]);
        assert_eq!(again.run.code, 0, "run {attempt}: {}", again.run.stderr);
        assert_eq!(stage(&again.report)["status"], "PASS", "run {attempt}");
        for id in ["checksum/fnv", "checksum/sum"] {
            let row = row(&again.report, id);
            assert_eq!(row["Baseline"], row["Current"], "run {attempt}, {id}");
            assert_eq!(row["Change"], "+0.00 %", "run {attempt}, {id}");
            assert_eq!(row["Verdict"], "no significant change");
        }
    }
    eprintln!(
        "ten unchanged instruction-count runs took {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let slow = bench(ws.path(), "slow", &["--features", "slow"]);
    assert_eq!(slow.run.code, 1, "{}", slow.run.stderr);
    let fnv = row(&slow.report, "checksum/fnv");
    assert_eq!(fnv["Verdict"], "REGRESSED");
    let change = change_percent(&fnv);
    assert!((90.0..110.0).contains(&change), "twice the work: {change}");
    assert_eq!(row(&slow.report, "checksum/sum")["Change"], "+0.00 %");
    let findings = regressions(&slow.report);
    assert_eq!(findings.len(), 1, "only checksum/fnv regressed");
    assert_eq!(findings[0]["kind"], "instruction-count-regression");
    assert!(findings[0]["message"]
        .as_str()
        .unwrap()
        .contains("the limit is +2 %"));
}

#[test]
fn a_workspace_without_benchmarks_is_skipped_in_all_and_an_error_when_named() {
    let ws = temp_crate(
        "[package]\nname = \"no-benches\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\
         [workspace]\n[workspace.metadata.runner]\nstages = [\"bench\"]\n",
        "pub fn f() {}\n",
    );
    let out = ws.path().join("out");
    let all = run(runner()
        .arg("all")
        .arg(ws.path())
        .arg("--force-out")
        .arg("--out")
        .arg(&out));
    let report = read_json(&out.join("report.json"));
    assert_eq!(stage(&report)["status"], "SKIPPED", "{}", all.stderr);
    assert_eq!(
        stage(&report)["reason"],
        "the workspace has no benchmarks (no [[bench]] targets)"
    );
    let named = run(runner()
        .arg("bench")
        .arg(ws.path())
        .arg("--force-out")
        .arg("--out")
        .arg(&out));
    named.assert_one_line_error("has no benchmarks");
}

#[test]
fn instruction_mode_without_valgrind_is_an_error_naming_the_install_command() {
    let rustup_dir = std::env::split_paths(&std::env::var_os("PATH").unwrap())
        .find(|dir| dir.join("rustup").is_file())
        .expect("rustup on PATH");
    let ws = workspace("mode = \"instructions\"\n");
    let out = ws.path().join("out");
    let result = run(runner()
        .arg("bench")
        .arg(ws.path())
        .arg("--force-out")
        .arg("--out")
        .arg(&out)
        .env("PATH", &rustup_dir));
    result.assert_one_line_error("apt-get install valgrind");
    assert_eq!(
        stage(&read_json(&out.join("report.json")))["status"],
        "ERROR"
    );
}

#[test]
fn the_plan_shows_the_build_the_callgrind_run_and_the_profiler() {
    let ws = workspace("mode = \"instructions\"\nflamegraph = \"checksum/fnv\"\n");
    let result = run(runner()
        .args(["plan", "--stages", "bench"])
        .arg(ws.path())
        .env("CARGO_TARGET_DIR", shared_target_dir()));
    assert_eq!(result.code, 0, "{}", result.stderr);
    for expected in [
        "bench --no-run --message-format=json",
        "--bench checksum",
        "valgrind --tool=callgrind",
        "--bench --test --exact '<benchmark>'",
        "perf record -F 499 --call-graph dwarf",
        "gated on instruction counts against baseline `main` in .runner/bench/main",
    ] {
        assert!(
            result.stdout.contains(expected),
            "{expected}:\n{}",
            result.stdout
        );
    }
}

/// `runner bench --partition K/N` in `workspace`, then its report.
fn bench_slice(workspace: &Path, out: &str, slice: &str, args: &[&str]) -> Benched {
    let mut all = vec!["--partition", slice];
    all.extend_from_slice(args);
    bench(workspace, out, &all)
}

/// Every row of the comparison table, in a stable order.
fn rows(report: &Value) -> Vec<Value> {
    let mut rows: Vec<Value> = stage(report)["tables"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|table| table["rows"].as_array().unwrap().clone())
        .collect();
    rows.sort_by_key(ToString::to_string);
    rows
}

#[test]
fn instruction_counts_split_across_slices_merge_to_the_single_runs_comparison() {
    common::require_tool(&["valgrind"], "valgrind");
    let _measuring = MEASURING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let ws = workspace("mode = \"instructions\"\n");
    let baseline = bench(ws.path(), "baseline", &[]);
    assert_eq!(baseline.run.code, 0, "{}", baseline.run.stderr);
    let single = bench(ws.path(), "single", &["--features", "slow"]);
    assert_eq!(single.run.code, 1, "{}", single.run.stderr);
    let slices: Vec<Benched> = (1..=2)
        .map(|k| {
            let slice = bench_slice(
                ws.path(),
                &format!("slice-{k}"),
                &format!("{k}/2"),
                &["--features", "slow"],
            );
            assert!(matches!(slice.run.code, 0 | 1), "{}", slice.run.stderr);
            slice
        })
        .collect();
    // Each slice counted its own share, and together every benchmark once.
    let mut counted = 0;
    for slice in &slices {
        let share = &stage(&slice.report)["partition"];
        assert!(share["whole_in"].is_null(), "split: {share}");
        assert_eq!(share["total_units"], 2);
        let benchmarks = stage(&slice.report)["counts"]["benchmarks"]
            .as_u64()
            .unwrap();
        assert_eq!(share["units"].as_u64(), Some(benchmarks));
        counted += benchmarks;
    }
    assert_eq!(counted, 2);
    let out = ws.path().join("target/runner-tests/merged");
    let merged = run(runner()
        .arg("merge")
        .args((1..=2).map(|k| ws.path().join(format!("target/runner-tests/slice-{k}"))))
        .arg("--out")
        .arg(&out));
    assert_eq!(merged.code, single.run.code, "{}", merged.stderr);
    let merged = read_json(&out.join("report.json"));
    let (whole, joined) = (stage(&single.report), stage(&merged));
    assert_eq!(joined["status"], "FAIL");
    assert_eq!(joined["counts"], whole["counts"]);
    // Instruction counts are exact, so every cell equals the single run's.
    assert_eq!(rows(&merged), rows(&single.report));
    let fingerprints = |report: &Value| -> Vec<Value> {
        regressions(report)
            .iter()
            .map(|f| f["fingerprint"].clone())
            .collect()
    };
    assert_eq!(fingerprints(&merged), fingerprints(&single.report));
    assert_eq!(regressions(&merged).len(), 1, "checksum/fnv regressed");
}

#[test]
fn wall_clock_benchmarks_run_whole_in_slice_one_and_the_report_says_so() {
    let _measuring = MEASURING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let ws = workspace("");
    let first = bench_slice(ws.path(), "wall-1", "1/2", &[]);
    assert_eq!(first.run.code, 0, "{}", first.run.stderr);
    let stage_one = stage(&first.report);
    assert_eq!(stage_one["partition"]["whole_in"], 1);
    assert_eq!(
        stage_one["counts"]["benchmarks"], 2,
        "every benchmark in slice 1"
    );
    assert!(
        stage_one["notes"]
            .to_string()
            .contains("wall-clock benchmarks are not split across partitions"),
        "{}",
        stage_one["notes"]
    );
    assert!(first.markdown.contains("not split; runs whole in slice 1"));
    // Slice 2 has nothing of the stage; run alone, nothing was checked there (exit 2, as for
    // any stage that runs whole in slice 1); in `runner all` other stages fill the slice.
    let second = bench_slice(ws.path(), "wall-2", "2/2", &[]);
    assert_eq!(second.run.code, 2, "{}", second.run.stderr);
    let skipped = stage(&second.report);
    assert_eq!(skipped["status"], "SKIPPED");
    assert_eq!(skipped["partition"]["whole_in"], 1);
    assert!(
        skipped["reason"]
            .as_str()
            .unwrap()
            .contains("runs whole in partition 1"),
        "{skipped}"
    );
}
