//! The sanitizers stage end to end: real `AddressSanitizer`, `ThreadSanitizer` and
//! `MemorySanitizer` on the fixture crates, findings asserted by sanitizer, kind, location and
//! test; the clean control passes everywhere and its second run rebuilds nothing.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use common::{fixture, read_json, run, runner, Analysed, Run};
use serde_json::Value;

/// One build directory for every test here, as a user's `CARGO_TARGET_DIR` would be: the
/// sanitized std (a minute or two per sanitizer when cold) is built once and shared.
fn shared_target_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("sanitizer-builds")
}

fn out_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("sanitizer-reports")
        .join(name)
}

fn sanitizers(workspace: &Path, out: &Path) -> Run {
    run(sanitizers_command(workspace, out).env("CARGO_TARGET_DIR", shared_target_dir()))
}

fn sanitizers_command(workspace: &Path, out: &Path) -> Command {
    common::require_tool(&["llvm-symbolizer"], "llvm");
    let mut command = runner();
    command
        .arg("sanitizers")
        .arg(workspace)
        .arg("--force-out")
        .arg("--out")
        .arg(out);
    command
}

/// The bug fixture is analysed once and shared by the tests that read its report.
fn bugs() -> &'static Analysed {
    static BUGS: OnceLock<Analysed> = OnceLock::new();
    BUGS.get_or_init(|| {
        let out = out_dir("bugs");
        let run = sanitizers(&fixture("sanitizer-bugs"), &out);
        let report = read_json(&out.join("report.json"));
        Analysed { run, out, report }
    })
}

fn stage(report: &Value) -> &Value {
    &report["stages"][0]
}

fn findings(report: &Value) -> &Vec<Value> {
    stage(report)["findings"]
        .as_array()
        .expect("findings array")
}

/// The sanitizers that ran, in the order of the report's rows.
fn sanitizer_rows(stage: &Value) -> Vec<&str> {
    stage["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["name"].as_str().unwrap())
        .collect()
}

/// (sanitizer, test, kind, line in src/lib.rs) of every problem each sanitizer must find.
const EXPECTED: &[(&str, &str, &str, u64)] = &[
    ("address", "tests::overflow", "heap-buffer-overflow", 10),
    ("address", "tests::dangling", "use-after-free", 18),
    ("address", "tests::leaks", "direct-leak", 23),
    // The doctest's own leak: its stack shows no user frame (rustdoc builds it without debug
    // info), so it is placed at the doctest.
    (
        "address",
        "src/lib.rs - documented (line 64)",
        "direct-leak",
        64,
    ),
    ("address", "first_overflow", "heap-buffer-overflow", 10),
    ("address", "second_overflow", "heap-buffer-overflow", 10),
    ("thread", "tests::race", "data-race", 38),
    ("thread", "tests::dangling", "use-after-free", 18),
    ("memory", "tests::uninit", "use-of-uninitialized-value", 50),
    (
        "memory",
        "tests::dangling",
        "use-of-uninitialized-value",
        18,
    ),
    // Reading past a 3-byte allocation reads bytes MemorySanitizer knows were never written.
    (
        "memory",
        "tests::overflow",
        "use-of-uninitialized-value",
        11,
    ),
    ("memory", "first_overflow", "use-of-uninitialized-value", 11),
    (
        "memory",
        "second_overflow",
        "use-of-uninitialized-value",
        11,
    ),
];

#[test]
fn every_fixture_bug_is_found_with_sanitizer_kind_location_and_test() {
    let analysed = bugs();
    assert_eq!(analysed.run.code, 1, "gate fails: {}", analysed.run.stderr);
    let found: BTreeSet<(String, String, String, u64)> = findings(&analysed.report)
        .iter()
        .map(|f| {
            assert_eq!(f["location"]["file"], "src/lib.rs", "{f}");
            (
                f["target"].as_str().unwrap().to_owned(),
                f["test"].as_str().unwrap().to_owned(),
                f["kind"].as_str().unwrap().to_owned(),
                f["location"]["line"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    let expected: BTreeSet<(String, String, String, u64)> = EXPECTED
        .iter()
        .map(|(s, t, k, l)| ((*s).into(), (*t).into(), (*k).into(), *l))
        .collect();
    assert_eq!(found, expected);
    assert_eq!(
        findings(&analysed.report).len(),
        EXPECTED.len(),
        "no duplicates"
    );
}

#[test]
fn two_tests_that_each_fail_in_one_binary_give_two_findings() {
    let overflows: Vec<&Value> = findings(&bugs().report)
        .iter()
        .filter(|f| f["target"] == "address" && f["kind"] == "heap-buffer-overflow")
        .filter(|f| f["test"].as_str().unwrap().ends_with("_overflow"))
        .collect();
    assert_eq!(overflows.len(), 2, "{overflows:#?}");
    assert_ne!(overflows[0]["fingerprint"], overflows[1]["fingerprint"]);
    for finding in overflows {
        let repro = finding["repro"].as_str().unwrap();
        assert!(repro.contains("--test two_errors -- --exact"), "{repro}");
    }
}

#[test]
fn counts_per_sanitizer_add_up_and_the_passing_test_passes() {
    let stage = stage(&bugs().report);
    assert_eq!(stage["status"], "FAIL");
    let rows: Vec<(String, u64, u64, u64, u64)> = stage["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            let count = |key: &str| row["counts"][key].as_u64().unwrap();
            (
                row["name"].as_str().unwrap().to_owned(),
                count("tests_run"),
                count("passed"),
                count("failed"),
                count("findings"),
            )
        })
        .collect();
    // 6 unit tests, 2 integration tests and a doctest; a test with findings counts as failed.
    assert_eq!(
        rows,
        [
            ("address".to_owned(), 9, 3, 6, 6),
            ("thread".to_owned(), 9, 7, 2, 2),
            ("memory".to_owned(), 9, 4, 5, 5),
        ]
    );
    let logs = bugs().out.join("sanitizers/logs");
    for sanitizer in ["address", "thread", "memory"] {
        assert!(logs.join(format!("{sanitizer}-build.err")).is_file());
    }
}

#[test]
fn severities_follow_the_rules() {
    for finding in findings(&bugs().report) {
        let expected = match finding["kind"].as_str().unwrap() {
            "direct-leak" | "use-of-uninitialized-value" => "high",
            _ => "critical",
        };
        assert_eq!(finding["severity"], expected, "{finding}");
    }
}

#[test]
fn a_data_race_carries_both_accesses_and_memory_errors_their_allocation() {
    let report = &bugs().report;
    let find = |sanitizer: &str, kind: &str| {
        findings(report)
            .iter()
            .find(|f| f["target"] == sanitizer && f["kind"] == kind)
            .unwrap_or_else(|| panic!("no {kind} under {sanitizer}"))
    };
    let race = find("thread", "data-race");
    assert_eq!(race["evidence"][0]["tool"], "ThreadSanitizer");
    let note = race["note"].as_str().unwrap();
    assert!(
        note.contains("sanitizer_bugs::data_race at src/lib.rs:40:14"),
        "{note}"
    );
    let stack = race["stack"].as_array().unwrap();
    assert_eq!(stack[0]["file"], "src/lib.rs");
    let freed = find("address", "use-after-free");
    let note = freed["note"].as_str().unwrap();
    assert!(
        note.starts_with(
            "freed by thread T1 here: sanitizer_bugs::use_after_free at src/lib.rs:17:5"
        ),
        "{note}"
    );
    let leak = findings(report)
        .iter()
        .find(|f| f["kind"] == "direct-leak" && f["test"] == "tests::leaks")
        .unwrap();
    assert_eq!(
        leak["message"],
        "direct leak of 64 byte(s) in 1 allocation(s)"
    );
}

#[test]
fn the_repro_command_shows_the_report_again_without_rebuilding() {
    let finding = findings(&bugs().report)
        .iter()
        .find(|f| f["target"] == "address" && f["test"] == "tests::overflow")
        .unwrap();
    let repro = finding["repro"].as_str().unwrap();
    let output = Command::new("sh")
        .arg("-c")
        .arg(repro)
        .env_remove("RUSTUP_TOOLCHAIN")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("ERROR: AddressSanitizer: heap-buffer-overflow"),
        "{stderr}"
    );
    assert!(!stderr.contains("Compiling"), "{stderr}");
}

#[test]
fn clean_control_passes_every_sanitizer_and_a_second_run_rebuilds_nothing() {
    let out = out_dir("clean");
    for attempt in 0..2 {
        let result = sanitizers(&fixture("clean"), &out);
        assert_eq!(result.code, 0, "attempt {attempt}: {}", result.stderr);
        let report = read_json(&out.join("report.json"));
        let stage = stage(&report);
        assert_eq!(stage["status"], "PASS");
        assert!(findings(&report).is_empty(), "{:#?}", findings(&report));
        let rows: Vec<(&str, u64)> = stage["targets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|row| {
                (
                    row["name"].as_str().unwrap(),
                    row["counts"]["tests_run"].as_u64().unwrap(),
                )
            })
            .collect();
        // 3 unit tests and 1 doctest under each sanitizer.
        assert_eq!(rows, [("address", 4), ("thread", 4), ("memory", 4)]);
    }
    for entry in std::fs::read_dir(out.join("sanitizers/logs"))
        .unwrap()
        .flatten()
    {
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.path().extension().is_some_and(|e| e == "err") {
            let log = std::fs::read_to_string(entry.path()).unwrap();
            assert!(
                !log.contains("Compiling"),
                "the second run rebuilt in {name}:\n{log}"
            );
        }
    }
}

#[test]
fn memory_is_skipped_with_the_reason_when_a_dependency_builds_c() {
    let out = out_dir("c-deps");
    let result = sanitizers(&fixture("sanitizer-c-deps"), &out);
    assert_eq!(result.code, 0, "{}", result.stderr);
    let report = read_json(&out.join("report.json"));
    let stage = stage(&report);
    assert_eq!(stage["status"], "PASS");
    assert_eq!(sanitizer_rows(stage), ["address", "thread"]);
    let notes = stage["notes"].as_array().unwrap();
    assert!(
        notes.iter().any(|n| {
            let n = n.as_str().unwrap();
            n.starts_with("memory: SKIPPED, native builds C code")
        }),
        "{notes:#?}"
    );
}

#[test]
fn the_plan_shows_the_recipe_of_each_sanitizer() {
    let result = run(runner()
        .args(["plan", "--stages", "sanitizers"])
        .arg(fixture("sanitizer-bugs")));
    assert_eq!(result.code, 0, "{}", result.stderr);
    let plan = &result.stdout;
    for needle in [
        "address: build the tests",
        "RUSTFLAGS=-Zsanitizer=address RUSTDOCFLAGS=-Zsanitizer=address",
        "thread: build the tests",
        "-Zbuild-std",
        "RUSTFLAGS='-Zsanitizer=memory -Zsanitizer-memory-track-origins'",
        "--exact '<test>' --test-threads=1",
        "memory runs only when no dependency's build script compiles C code",
        // Address and thread optimised as their manuals advise.
        "CARGO_PROFILE_DEV_OPT_LEVEL=1",
    ] {
        assert!(plan.contains(needle), "`{needle}` missing from:\n{plan}");
    }
}

#[test]
fn the_opt_level_is_the_users_to_set_and_checked() {
    let workspace = common::fixture_copy("sanitizer-bugs");
    let manifest = workspace.path().join("Cargo.toml");
    let base = std::fs::read_to_string(&manifest).unwrap();
    let plan_with = |level: &str| {
        let config = format!("\n[package.metadata.runner.sanitizers]\nopt-level = {level}\n");
        std::fs::write(&manifest, format!("{base}{config}")).unwrap();
        run(runner()
            .args(["plan", "--stages", "sanitizers"])
            .arg(workspace.path()))
    };
    let unoptimised = plan_with("0");
    assert_eq!(unoptimised.code, 0, "{}", unoptimised.stderr);
    assert!(
        unoptimised.stdout.contains("CARGO_PROFILE_DEV_OPT_LEVEL=0"),
        "{}",
        unoptimised.stdout
    );
    let wrong = plan_with("4");
    assert_eq!(wrong.code, 2, "{}", wrong.stderr);
    assert!(
        wrong.stderr.contains("sanitizers.opt-level") && wrong.stderr.contains("0, 1, 2 or 3"),
        "{}",
        wrong.stderr
    );
    assert_eq!(wrong.stderr.trim().lines().count(), 1, "{}", wrong.stderr);
}

#[test]
fn config_chooses_sanitizers_and_user_options_and_suppressions_win() {
    let workspace = common::fixture_copy("sanitizer-bugs");
    let manifest = workspace.path().join("Cargo.toml");
    let base = std::fs::read_to_string(&manifest).unwrap();
    let config = "\n[package.metadata.runner.sanitizers]\nenabled = [\"address\", \"leak\"]\n\
                  options = { address = [\"detect_leaks=0\"] }\n";
    std::fs::write(&manifest, format!("{base}{config}")).unwrap();
    let leaks = |out: &Path| -> Vec<(String, String)> {
        let report = read_json(&out.join("report.json"));
        assert_eq!(sanitizer_rows(stage(&report)), ["address", "leak"]);
        findings(&report)
            .iter()
            .filter(|f| f["category"] == "leak")
            .map(|f| {
                (
                    f["target"].as_str().unwrap().into(),
                    f["test"].as_str().unwrap().into(),
                )
            })
            .collect()
    };
    // A copy of a package shares its artifact names with the original, so it builds in a
    // target dir of its own (address and leak need no instrumented std: a few seconds).
    let out = workspace.path().join("report");
    let analyse = || run(&mut sanitizers_command(workspace.path(), &out));
    let result = analyse();
    assert_eq!(result.code, 1, "{}", result.stderr);
    // `detect_leaks=0` after runner's `detect_leaks=1` turns address's leak check off.
    let doctest = (
        "leak".to_owned(),
        "src/lib.rs - documented (line 64)".to_owned(),
    );
    let mut found = leaks(&out);
    found.sort();
    assert_eq!(
        found,
        [
            doctest.clone(),
            ("leak".to_owned(), "tests::leaks".to_owned())
        ]
    );

    std::fs::write(
        workspace.path().join("lsan.supp"),
        "leak:sanitizer_bugs::leak\n",
    )
    .unwrap();
    let config = format!("{config}suppressions = {{ leak = \"lsan.supp\" }}\n");
    std::fs::write(&manifest, format!("{base}{config}")).unwrap();
    let result = analyse();
    assert_eq!(result.code, 1, "{}", result.stderr);
    // The suppression file is used: it names the library's leak, not the doctest's own.
    assert_eq!(leaks(&out), [doctest]);
}
