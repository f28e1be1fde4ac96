//! Fault injection: absurd values, hostile paths, concurrent runs, unusable report folders and
//! interrupts. Each scenario checks the documented exit code, one line on stderr for an error,
//! no panic, and reports that are never mixed from two runs.

mod common;

use std::path::Path;

use common::{fixture, run, runner, temp_crate, Run};

const PLAIN_CRATE: &str =
    "[package]\nname = \"p\"\nversion = \"0.1.0\"\nedition = \"2021\"\n[workspace]\n";

/// The cheapest run that goes all the way to a report: `all` with only the bench stage left,
/// which a crate without benchmarks answers at once (SKIPPED, so nothing was checked: exit 2).
fn cheap_run(workspace: &Path, out: &Path) -> std::process::Command {
    let mut command = runner();
    command
        .arg("all")
        .arg(workspace)
        .args(["--skip", "miri,sanitizers,fuzz,coverage,valgrind"])
        .arg("--out")
        .arg(out);
    command
}

/// The error contract, plus: nothing else on stderr at all with `-q`.
fn assert_quiet_error(result: &Run, needle: &str) {
    result.assert_one_line_error(needle);
    assert_eq!(result.stderr.lines().count(), 1, "{}", result.stderr);
}

// --- absurd values on the command line -------------------------------------------------------

#[test]
fn a_timeout_past_the_end_of_time_is_an_error_not_a_panic() {
    let out = tempfile::tempdir().unwrap();
    for timeout in ["9999999999999999h", "99999999999999999999", "8785h"] {
        let result = run(runner()
            .args(["-q", "bench"])
            .arg(fixture("clean"))
            .args(["--timeout", timeout])
            .arg("--out")
            .arg(out.path()));
        assert_quiet_error(&result, "too large");
        assert!(result.stderr.contains("--timeout"), "{}", result.stderr);
    }
}

#[test]
fn zero_and_empty_values_are_refused() {
    let cases: [(&[&str], &str); 5] = [
        (&["--timeout", "0"], "--timeout"),
        (&["--timeout", "0s"], "--timeout"),
        (&["--fuzz-time", "0"], "--fuzz-time"),
        (&["--fuzz-time", "99999999999999999999h"], "--fuzz-time"),
        (&["--out", ""], "--out"),
    ];
    for (args, needle) in cases {
        let result = run(runner()
            .args(["-q", "fuzz"])
            .arg(fixture("clean"))
            .args(args));
        assert_quiet_error(&result, needle);
    }
}

#[test]
fn absurd_job_counts_are_refused() {
    for jobs in ["0", "1000000", "99999999999999999999999"] {
        let result = run(runner()
            .args(["-q", "bench"])
            .arg(fixture("clean"))
            .args(["--jobs", jobs]));
        assert_quiet_error(&result, "jobs");
    }
}

// --- absurd values in the config -------------------------------------------------------------

/// Every duration and count key with a value that once exhausted the machine or panicked.
const ABSURD_KEYS: [(&str, &str, &str); 17] = [
    ("", "timeout = \"9999999999999999h\"", "timeout"),
    ("", "timeout = \"0s\"", "timeout"),
    ("miri", "seeds = 4000000000", "miri.seeds"),
    ("miri", "seeds = 0", "miri.seeds"),
    ("fuzz", "time = \"9999999999999999h\"", "fuzz.time"),
    (
        "fuzz",
        "total-time = \"9999999999999999h\"",
        "fuzz.total-time",
    ),
    (
        "fuzz",
        "input-timeout = \"99999999999999999999\"",
        "fuzz.input-timeout",
    ),
    (
        "fuzz",
        "minimize-time = \"9999999999999999h\"",
        "fuzz.minimize-time",
    ),
    (
        "fuzz",
        "rss-limit-mb = 9223372036854775807",
        "fuzz.rss-limit-mb",
    ),
    ("fuzz", "max-len = 0", "fuzz.max-len"),
    (
        "coverage",
        "line-threshold = -5.0",
        "coverage.line-threshold",
    ),
    (
        "coverage",
        "branch-threshold = nan",
        "coverage.branch-threshold",
    ),
    (
        "coverage",
        "function-threshold = inf",
        "coverage.function-threshold",
    ),
    ("bench", "noise = -1.0", "bench.noise"),
    (
        "bench",
        "profile-time = \"9999999999999999h\"",
        "bench.profile-time",
    ),
    (
        "soak",
        "interval = \"99999999999999999ms\"",
        "soak.interval",
    ),
    ("docker", "pids-limit = 0", "docker.pids-limit"),
];

#[test]
fn absurd_config_values_name_their_key() {
    for (table, line, key) in ABSURD_KEYS {
        let header = if table.is_empty() {
            "[package.metadata.runner]".to_owned()
        } else {
            format!("[package.metadata.runner.{table}]")
        };
        let dir = temp_crate(&format!("{PLAIN_CRATE}{header}\n{line}\n"), "");
        // `plan` reads the config like every command, and runs nothing.
        let result = run(runner().args(["-q", "plan"]).arg(dir.path()));
        assert_quiet_error(&result, &format!("`{key}`"));
    }
}

#[test]
fn a_number_beyond_toml_names_its_key() {
    let manifest = format!(
        "{PLAIN_CRATE}[package.metadata.runner.fuzz]\nrss-limit-mb = 99999999999999999999\n"
    );
    let dir = temp_crate(&manifest, "");
    let result = run(runner().args(["-q", "fuzz"]).arg(dir.path()));
    assert_quiet_error(&result, "rss-limit-mb");
}

// --- hostile paths ---------------------------------------------------------------------------

#[test]
fn a_symlink_loop_is_not_called_missing() {
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(dir.path().join("b"), dir.path().join("a")).unwrap();
    std::os::unix::fs::symlink(dir.path().join("a"), dir.path().join("b")).unwrap();
    let result = run(runner().args(["-q", "bench"]).arg(dir.path().join("a")));
    assert_quiet_error(&result, "symbolic links");
    assert!(
        !result.stderr.contains("does not exist"),
        "{}",
        result.stderr
    );
}

#[test]
fn quiet_errors_are_one_line() {
    let out = tempfile::tempdir().unwrap();
    // The bench stage has nothing to measure in `clean`: an ERROR, so exit 2 with one line.
    let result = run(runner()
        .args(["-q", "bench"])
        .arg(fixture("clean"))
        .arg("--out")
        .arg(out.path().join("report")));
    assert_quiet_error(&result, "no benchmarks");
}

// --- panics ----------------------------------------------------------------------------------

#[test]
fn a_panic_in_a_stage_is_its_error_and_the_report_is_kept() {
    let out = tempfile::tempdir().unwrap();
    let result = run(cheap_run(&fixture("clean"), out.path()).env("RUNNER_INJECT_PANIC", "bench"));
    result.assert_one_line_error("internal error: injected fault at bench");
    assert!(
        result.stderr.contains("please report it"),
        "{}",
        result.stderr
    );
    let report = common::read_json(&out.path().join("report.json"));
    assert_eq!(report["stages"][0]["status"], "ERROR", "{report}");
}

#[test]
fn a_panic_outside_the_stages_is_one_line_and_exit_2() {
    let result = run(runner()
        .args(["plan"])
        .arg(fixture("clean"))
        .env("RUNNER_INJECT_PANIC", "start"));
    assert_eq!(result.code, 2, "{}", result.stderr);
    assert_eq!(result.stderr.lines().count(), 1, "{}", result.stderr);
    let line = result.stderr.trim();
    assert!(
        line.starts_with("runner: internal error: injected fault at start at runner/src/guard.rs:"),
        "{line}"
    );
    assert!(line.ends_with(", please report it"), "{line}");
}
