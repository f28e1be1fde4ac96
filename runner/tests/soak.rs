//! The soak stage end to end: real programs watched through `/proc`. `fixtures/soak-leak`
//! leaks at known rates, which the fitted slopes must recover within ±20 %;
//! `fixtures/soak-steady` churns without leaking and must pass.

mod common;

use std::path::{Path, PathBuf};

use common::{fixture, read_json, run, runner, temp_crate, Run};
use serde_json::Value;

fn out_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("soak-reports")
        .join(name)
}

struct Soaked {
    run: Run,
    out: PathBuf,
    report: Value,
}

fn soak(fixture_name: &str) -> Soaked {
    common::provisioned();
    let out = out_dir(fixture_name);
    // A report left by an earlier run must not pass for this one's.
    let _ = std::fs::remove_dir_all(&out);
    let run = run(runner()
        .arg("soak")
        .arg(fixture(fixture_name))
        .arg("--out")
        .arg(&out));
    let report = read_json(&out.join("report.json"));
    Soaked { run, out, report }
}

fn stage(report: &Value) -> &Value {
    &report["stages"][0]
}

/// The fitted rates per hour from `samples.json`, by resource.
fn rates(out: &Path) -> Vec<(String, f64, bool)> {
    let samples = read_json(&out.join("soak/samples.json"));
    samples["growth"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["resource"].as_str().unwrap().to_owned(),
                g["per_hour"].as_f64().unwrap(),
                g["exceeded"].as_bool().unwrap(),
            )
        })
        .collect()
}

#[test]
fn a_steady_leak_is_found_with_its_rate_within_twenty_percent() {
    let soaked = soak("soak-leak");
    assert_eq!(soaked.run.code, 1, "{}", soaked.run.stderr);
    assert_eq!(stage(&soaked.report)["status"], "FAIL");
    // The fixture's rates: 4 MiB, 2 descriptors and 1 thread a second.
    let known = [
        ("resident memory", 4.0 * 3600.0),
        ("open file descriptors", 2.0 * 3600.0),
        ("threads", 3600.0),
    ];
    let fitted = rates(&soaked.out);
    for (resource, rate) in known {
        let (_, per_hour, exceeded) = fitted
            .iter()
            .find(|(name, _, _)| name == resource)
            .unwrap_or_else(|| panic!("no {resource} in {fitted:?}"));
        let error = (per_hour - rate).abs() / rate;
        eprintln!(
            "{resource}: fitted {per_hour:.0}/hour, known {rate:.0}/hour, off by {:.1} %",
            error * 100.0
        );
        assert!(error < 0.2, "{resource}: fitted {per_hour}, known {rate}");
        assert!(exceeded, "{resource}");
    }
    let kinds: Vec<&str> = stage(&soaked.report)["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            assert_eq!(f["category"], "threshold");
            assert_eq!(f["severity"], "medium");
            f["kind"].as_str().unwrap()
        })
        .collect();
    assert_eq!(kinds, ["memory-growth", "fd-growth", "thread-growth"]);
    let csv = std::fs::read_to_string(soaked.out.join("soak/samples.csv")).unwrap();
    assert!(csv.starts_with("seconds,rss_kib,fds,threads\n"));
    assert!(csv.lines().count() > 50, "a sample every 100 ms for 8 s");
    let svg = std::fs::read_to_string(soaked.out.join("soak/memory.svg")).unwrap();
    assert!(svg.contains("<polyline") && svg.contains("MiB/hour"));
    let markdown = std::fs::read_to_string(soaked.out.join("report.md")).unwrap();
    assert!(markdown.contains("## Soak Results"));
    assert!(markdown.contains("| Resource | Start | End | Fitted growth | Limit | Verdict |"));
    assert!(markdown.contains("| GROWING |"));
}

#[test]
fn a_program_that_frees_what_it_takes_passes() {
    let soaked = soak("soak-steady");
    assert_eq!(soaked.run.code, 0, "{}", soaked.run.stderr);
    assert_eq!(stage(&soaked.report)["status"], "PASS");
    for (resource, per_hour, exceeded) in rates(&soaked.out) {
        assert!(!exceeded, "{resource} grew {per_hour}/hour");
    }
    assert!(stage(&soaked.report)["counts"]["samples"].as_u64().unwrap() > 30);
}

#[test]
fn a_program_that_dies_during_the_soak_is_a_finding() {
    let ws = temp_crate(
        "[package]\nname = \"dies\"\nversion = \"0.1.0\"\nedition = \"2021\"\n[workspace]\n\
         [workspace.metadata.runner.soak]\ncommand = [\"sh\", \"-c\", \"sleep 1; echo gone >&2; kill -SEGV $$\"]\n\
         duration = \"5s\"\ninterval = \"100ms\"\n",
        "",
    );
    let out = ws.path().join("out");
    let result = run(runner()
        .arg("soak")
        .arg(ws.path())
        .arg("--force-out")
        .arg("--out")
        .arg(&out));
    assert_eq!(result.code, 1, "{}", result.stderr);
    let report = read_json(&out.join("report.json"));
    let finding = &stage(&report)["findings"][0];
    assert_eq!(finding["kind"], "ended-during-soak");
    assert_eq!(finding["severity"], "high");
    assert!(finding["message"]
        .as_str()
        .unwrap()
        .contains("killed by SIGSEGV"));
    assert_eq!(finding["evidence"][0]["message"], "gone");
}

#[test]
fn soak_needs_a_program_and_plans_its_build() {
    let ws = temp_crate(
        "[package]\nname = \"idle\"\nversion = \"0.1.0\"\nedition = \"2021\"\n[workspace]\n",
        "",
    );
    let out = ws.path().join("out");
    let result = run(runner()
        .arg("soak")
        .arg(ws.path())
        .arg("--force-out")
        .arg("--out")
        .arg(&out));
    result.assert_one_line_error("no soak program configured");
    let plan = run(runner()
        .args(["plan", "--stages", "soak"])
        .arg(fixture("soak-leak")));
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    assert!(
        plan.stdout
            .contains("build --release --message-format=json"),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout.contains("--mib-per-second 4"),
        "{}",
        plan.stdout
    );
}
