//! The valgrind stage end to end: real memcheck on the fixture crates, each finding asserted
//! by kind, location and test; the clean control reports nothing; a user's suppression file
//! hides what it names; a missing valgrind is an ERROR naming its install command; the build
//! keeps the profile's opt-level unless config names one.

mod common;

use std::collections::BTreeSet;
use std::sync::OnceLock;

use common::{analyse, fixture, fixture_copy, read_json, run, runner, Analysed};
use serde_json::Value;

/// The bug fixture is analysed once and shared by the tests that read its report.
fn bugs() -> &'static Analysed {
    static BUGS: OnceLock<Analysed> = OnceLock::new();
    BUGS.get_or_init(|| {
        common::require_tool(&["valgrind"], "valgrind");
        analyse("valgrind", "valgrind-bugs", "bugs")
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

fn finding<'a>(report: &'a Value, test: &str, kind: &str) -> &'a Value {
    findings(report)
        .iter()
        .find(|f| f["test"] == test && f["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} in {test}: {report:#}"))
}

/// `test kind file:line` of every problem in the fixture; the program has no test (`-`).
const EXPECTED: &[&str] = &[
    "tests::invalid_read invalid-read src/lib.rs:18",
    "tests::segfault invalid-read src/lib.rs:40",
    "tests::uninit_branch uninit-condition src/lib.rs:24",
    "tests::leaks definite-leak src/lib.rs:9",
    "tests::fd_leak fd-leak src/lib.rs:32",
    "- definite-leak src/bin/leaky-cli.rs:5",
];

#[test]
fn every_fixture_bug_is_found_with_kind_location_and_test() {
    let analysed = bugs();
    assert_eq!(
        analysed.run.code, 1,
        "gate fails with exit 1: {}",
        analysed.run.stderr
    );
    let found: BTreeSet<String> = findings(&analysed.report)
        .iter()
        .map(|f| {
            format!(
                "{} {} {}:{}",
                f["test"].as_str().unwrap_or("-"),
                f["kind"].as_str().unwrap(),
                f["location"]["file"].as_str().unwrap_or("?"),
                f["location"]["line"]
            )
        })
        .collect();
    let expected: BTreeSet<String> = EXPECTED.iter().map(ToString::to_string).collect();
    assert_eq!(found, expected);
    assert_eq!(stage(&analysed.report)["status"], "FAIL");
}

#[test]
fn findings_say_what_happened_how_bad_it_is_and_how_to_see_it_again() {
    let report = &bugs().report;
    let read = finding(report, "tests::invalid_read", "invalid-read");
    assert_eq!(read["severity"], "critical");
    assert_eq!(read["function"], "valgrind_bugs::read_past_end");
    assert_eq!(
        read["message"],
        "Invalid read of size 4; the address is 0 bytes after a block of size 12 alloc'd at \
         src/lib.rs:54"
    );
    let uninit = finding(report, "tests::uninit_branch", "uninit-condition");
    assert_eq!(uninit["severity"], "high");
    assert!(uninit["message"]
        .as_str()
        .unwrap()
        .ends_with("created by a heap allocation at src/lib.rs:23"));
    let leak = finding(report, "tests::leaks", "definite-leak");
    assert_eq!(leak["severity"], "high");
    assert_eq!(leak["message"], "64 bytes in 1 blocks are definitely lost");
    let fd = finding(report, "tests::fd_leak", "fd-leak");
    // The number is the lowest free descriptor, which depends on the tests that ran before
    // in the same process (shards follow the recorded durations).
    let message = fd["message"].as_str().unwrap();
    assert!(
        message.starts_with("file descriptor ")
            && message.ends_with(" (Cargo.toml) is still open at exit"),
        "{message}"
    );
    let repro = leak["repro"].as_str().unwrap();
    assert!(repro.contains("valgrind --tool=memcheck"), "{repro}");
    assert!(
        repro.ends_with("--exact tests::leaks --test-threads=1"),
        "{repro}"
    );
    let program = findings(report)
        .iter()
        .find(|f| f["test"].is_null())
        .unwrap();
    assert!(program["repro"]
        .as_str()
        .unwrap()
        .ends_with("debug/leaky-cli --leak"));
    for finding in findings(report) {
        let stack = finding["stack"].as_array().unwrap();
        assert!(
            stack
                .iter()
                .any(|frame| frame["file"] == "src/lib.rs"
                    || frame["file"] == "src/bin/leaky-cli.rs"),
            "the short stack reaches the user's frame: {finding:#}"
        );
    }
}

#[test]
fn the_segfault_is_read_from_the_xml_and_its_leak_noise_is_dropped() {
    let report = &bugs().report;
    let crash = finding(report, "tests::segfault", "invalid-read");
    assert_eq!(crash["severity"], "critical");
    assert!(crash["message"]
        .as_str()
        .unwrap()
        .contains("not stack'd, malloc'd or (recently) free'd"));
    let from_segfault = findings(report)
        .iter()
        .filter(|f| f["test"] == "tests::segfault")
        .count();
    assert_eq!(from_segfault, 1, "no leak records of a dead process");
    let notes = stage(report)["notes"].to_string();
    assert!(
        notes.contains("tests::segfault was killed by SIGSEGV"),
        "{notes}"
    );
    assert!(
        notes.contains("doctests are not run under valgrind"),
        "{notes}"
    );
}

#[test]
fn counts_add_up() {
    let counts = &stage(&bugs().report)["counts"];
    let expected = [
        ("tests_run", 6),
        ("passed", 5),
        ("failed", 1),
        ("programs_run", 1),
        ("memory_errors", 2),
        ("uninitialised", 1),
        ("leaks", 2),
        ("fd_leaks", 1),
        ("leaked_bytes", 64 + 24),
    ];
    for (key, value) in expected {
        assert_eq!(counts[key], value, "{key}: {counts}");
    }
}

#[test]
fn suppressions_for_every_memcheck_finding_are_written_and_named() {
    let analysed = bugs();
    let text = std::fs::read_to_string(analysed.out.join("valgrind/suppressions.supp")).unwrap();
    for finding in findings(&analysed.report) {
        let name = format!(
            "{}-{}",
            finding["kind"].as_str().unwrap(),
            finding["fingerprint"].as_str().unwrap()
        );
        // Valgrind has no suppressions for descriptors.
        assert_eq!(
            text.contains(&name),
            finding["kind"] != "fd-leak",
            "{name} in suppressions.supp"
        );
    }
    let logs = analysed.out.join("valgrind/logs");
    // One memcheck XML per process, numbered in the order the processes started.
    let xml_logs = std::fs::read_dir(&logs)
        .unwrap()
        .flatten()
        .filter(|entry| entry.file_name().to_string_lossy().ends_with(".xml"))
        .count();
    assert!(
        xml_logs >= 2,
        "{xml_logs} memcheck logs in {}",
        logs.display()
    );
    assert!(logs.join("build.out").is_file());
}

#[test]
fn clean_control_reports_nothing() {
    common::require_tool(&["valgrind"], "valgrind");
    let Analysed { run, report, .. } = analyse("valgrind", "clean", "valgrind");
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(stage(&report)["status"], "PASS");
    assert!(findings(&report).is_empty(), "{report:#}");
    assert_eq!(stage(&report)["counts"]["tests_run"], 3);
    assert_eq!(report["gate"]["passed"], true);
}

/// The suppression runner printed for a finding, put in the user's own file, hides it.
#[test]
fn a_user_suppression_file_hides_what_it_names() {
    common::require_tool(&["valgrind"], "valgrind");
    let text = std::fs::read_to_string(bugs().out.join("valgrind/suppressions.supp")).unwrap();
    let leak = finding(&bugs().report, "tests::leaks", "definite-leak");
    let name = format!("definite-leak-{}", leak["fingerprint"].as_str().unwrap());
    let start = text
        .find(&name)
        .and_then(|at| text[..at].rfind('{'))
        .unwrap();
    let end = start + text[start..].find("\n}").unwrap() + 2;
    let workspace = fixture_copy("valgrind-bugs");
    std::fs::write(workspace.path().join("ci.supp"), &text[start..end]).unwrap();
    let manifest = std::fs::read_to_string(workspace.path().join("Cargo.toml")).unwrap();
    let config = "[package.metadata.runner.valgrind]\nsuppressions = [\"ci.supp\"]\n";
    let manifest = manifest.replace("[workspace]\n", &format!("[workspace]\n\n{config}"));
    std::fs::write(workspace.path().join("Cargo.toml"), manifest).unwrap();
    let out = workspace.path().join("report");
    let result = run(runner()
        .arg("valgrind")
        .arg(workspace.path())
        .arg("--force-out")
        .arg("--out")
        .arg(&out)
        .args(["--", "tests::leaks"]));
    assert_eq!(result.code, 0, "{}", result.stderr);
    let report = read_json(&out.join("report.json"));
    assert!(findings(&report).is_empty(), "{report:#}");
    assert_eq!(stage(&report)["counts"]["tests_run"], 1);
    let notes = stage(&report)["notes"].as_array().unwrap();
    assert!(
        notes
            .iter()
            .any(|n| n.as_str().unwrap().starts_with("memcheck suppressed ")),
        "{notes:#?}"
    );
}

#[test]
fn missing_valgrind_is_an_error_naming_the_install_command() {
    let rustup_dir = std::env::split_paths(&std::env::var_os("PATH").unwrap())
        .find(|dir| dir.join("rustup").is_file())
        .expect("rustup on PATH");
    assert!(
        !rustup_dir.join("valgrind").exists(),
        "{} must not hold valgrind",
        rustup_dir.display()
    );
    let out = tempfile::tempdir().unwrap();
    let result = run(runner()
        .arg("valgrind")
        .arg(fixture("clean"))
        .arg("--out")
        .arg(out.path())
        .env("PATH", &rustup_dir));
    result.assert_one_line_error("apt-get install valgrind");
    let report = read_json(&out.path().join("report.json"));
    assert_eq!(stage(&report)["status"], "ERROR");
    assert_eq!(report["gate"]["passed"], false);
}

/// memcheck builds as the user's profile says unless config names a level: at opt-level 1
/// the optimiser deletes two of the fixture's bugs before memcheck sees the machine code.
#[test]
fn the_build_keeps_the_profiles_opt_level_unless_configured() {
    let workspace = fixture_copy("valgrind-bugs");
    let manifest = workspace.path().join("Cargo.toml");
    let base = std::fs::read_to_string(&manifest).unwrap();
    let plan = || {
        let result = run(runner()
            .args(["plan", "--stages", "valgrind"])
            .arg(workspace.path()));
        assert_eq!(result.code, 0, "{}", result.stderr);
        result.stdout
    };
    let default = plan();
    assert!(default.contains("cargo"), "{default}");
    assert!(
        !default.contains("CARGO_PROFILE_DEV_OPT_LEVEL"),
        "{default}"
    );
    let config = "\n[package.metadata.runner.valgrind]\nopt-level = 1\n";
    std::fs::write(&manifest, format!("{base}{config}")).unwrap();
    let configured = plan();
    assert!(
        configured.contains("CARGO_PROFILE_DEV_OPT_LEVEL=1"),
        "{configured}"
    );
}
