//! The result cache end to end: a warm run reports every test from the cache with the same
//! findings and counts; an edit re-runs only the harness it touches; a fixed bug, changed
//! flags, seeds, sanitizer options or declared inputs never leave a stale result; a damaged
//! entry runs again. Each test works on its own copy of a fixture.

mod common;

use std::path::Path;

use common::{fixture_copy, read_json, run, runner};
use serde_json::Value;

/// `runner <stage>` on `dir` with the cache on, writing into `<dir>/target/out-<name>`.
fn analyse(stage: &str, dir: &Path, name: &str) -> Value {
    let out = dir.join("target").join(format!("out-{name}"));
    let result = run(runner()
        .env_remove("RUNNER_NO_CACHE")
        .args([stage, "--jobs", "2", "--no-provision"])
        .arg(dir)
        .arg("--out")
        .arg(&out));
    assert!(
        result.code == 0 || result.code == 1,
        "{stage} run {name} exited {}: {}",
        result.code,
        result.stderr
    );
    let mut report = read_json(&out.join("report.json"));
    report["stage"] = report["stages"][0].clone();
    report
}

fn append(path: &Path, text: &str) {
    let mut contents = std::fs::read_to_string(path).unwrap();
    contents.push_str(text);
    std::fs::write(path, contents).unwrap();
}

fn replace(path: &Path, from: &str, to: &str) {
    let contents = std::fs::read_to_string(path).unwrap();
    assert!(contents.contains(from), "{from} in {}", path.display());
    std::fs::write(path, contents.replacen(from, to, 1)).unwrap();
}

/// How many test runs the cache answered (0 when the report has no cache section).
fn cached(report: &Value) -> u64 {
    report["stage"]["cache"]["tests"].as_u64().unwrap_or(0)
}

fn tests_run(report: &Value) -> u64 {
    report["stage"]["tests"].as_array().map_or(0, Vec::len) as u64
}

/// (fingerprint, kind, test, target) of every finding, in report order.
fn findings(report: &Value) -> Vec<(String, String, String, String)> {
    report["stage"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["fingerprint"].as_str().unwrap().to_owned(),
                f["kind"].as_str().unwrap().to_owned(),
                f["test"].as_str().unwrap_or("").to_owned(),
                f["target"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

/// Every test with how it ended (durations left out: they are measured anew).
fn outcomes(report: &Value) -> Vec<(String, String, String)> {
    report["stage"]["tests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["unit"].as_str().unwrap_or("").to_owned(),
                t["name"].as_str().unwrap().to_owned(),
                t["outcome"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn miri_warm_run_is_cached_and_an_edit_reruns_only_what_it_touches() {
    common::provisioned();
    let copy = fixture_copy("miri-bugs");
    let dir = copy.path();
    append(
        &dir.join("Cargo.toml"),
        "\n[package.metadata.runner.miri]\ntargets = [\"host\"]\n",
    );

    let cold = analyse("miri", dir, "cold");
    assert_eq!(cached(&cold), 0, "a cold run has nothing cached");
    assert!(!findings(&cold).is_empty());

    let warm = analyse("miri", dir, "warm");
    assert_eq!(cached(&warm), tests_run(&cold), "{}", warm["stage"]);
    assert_eq!(findings(&warm), findings(&cold));
    assert_eq!(outcomes(&warm), outcomes(&cold));
    assert_eq!(warm["stage"]["counts"], cold["stage"]["counts"]);
    assert_eq!(warm["gate"]["passed"], cold["gate"]["passed"]);
    for finding in warm["stage"]["findings"].as_array().unwrap() {
        assert_eq!(finding["first_found_in"], cold["run_id"], "{finding}");
    }

    // One line in one integration test file: only that harness's two tests run again.
    append(&dir.join("tests/api.rs"), "// one more line\n");
    let edited = analyse("miri", dir, "edited");
    assert_eq!(cached(&edited), tests_run(&cold) - 2, "{}", edited["stage"]);
    assert_eq!(findings(&edited), findings(&cold));

    // The fixture's out-of-bounds read fixed: its findings go, nothing stale stays.
    replace(
        &dir.join("src/lib.rs"),
        "unsafe { *ptr.add(data.len()) }",
        "{ let _ = ptr; 0 }",
    );
    let fixed = analyse("miri", dir, "fixed");
    let fixed_findings = findings(&fixed);
    assert!(
        fixed_findings
            .iter()
            .all(|(_, _, test, _)| test != "tests::out_of_bounds"
                && test != "integration_reads_past_end"),
        "{fixed_findings:?}"
    );
    assert_eq!(fixed_findings.len(), findings(&cold).len() - 3);
}

#[test]
fn valgrind_warm_run_is_cached_whatever_the_report_folder() {
    common::require_tool(&["valgrind"], "valgrind");
    let copy = fixture_copy("valgrind-bugs");
    let dir = copy.path();
    let cold = analyse("valgrind", dir, "cold");
    let warm = analyse("valgrind", dir, "warm");
    let tests = cold["stage"]["tests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["unit"].is_string())
        .count() as u64;
    assert!(tests > 0);
    assert_eq!(cached(&warm), tests, "{}", warm["stage"]);
    assert_eq!(findings(&warm), findings(&cold));
}

#[test]
fn changed_miri_flags_and_seeds_rerun() {
    common::provisioned();
    let copy = common::temp_crate(
        "[package]\nname = \"tiny\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[workspace]\n\n\
         [package.metadata.runner.miri]\ntargets = [\"host\"]\ndoctests = false\n",
        "#[cfg(test)]\nmod tests {\n    #[test]\n    fn adds() {\n        assert_eq!(1 + 1, 2);\n    }\n}\n",
    );
    let dir = copy.path();
    let cargo_toml = dir.join("Cargo.toml");
    analyse("miri", dir, "cold");
    assert_eq!(cached(&analyse("miri", dir, "warm")), 1);

    append(&cargo_toml, "flags = [\"-Zmiri-strict-provenance\"]\n");
    assert_eq!(cached(&analyse("miri", dir, "flags")), 0);
    assert_eq!(cached(&analyse("miri", dir, "flags-warm")), 1);

    append(&cargo_toml, "seeds = 2\n");
    let seeds = analyse("miri", dir, "seeds");
    assert_eq!(cached(&seeds), 0);
    assert_eq!(tests_run(&seeds), 2, "one run per seed");
    assert_eq!(cached(&analyse("miri", dir, "seeds-warm")), 2);
}

#[test]
fn sanitizer_options_declared_inputs_and_damaged_entries_rerun() {
    common::provisioned();
    let copy = fixture_copy("sanitizer-bugs");
    let dir = copy.path();
    std::fs::create_dir_all(dir.join("tests/data")).unwrap();
    std::fs::write(dir.join("tests/data/input.txt"), "one").unwrap();
    let cargo_toml = dir.join("Cargo.toml");
    append(
        &cargo_toml,
        "\n[package.metadata.runner.cache]\ninputs = [\"tests/data/**\"]\n\n\
         [package.metadata.runner.sanitizers]\nenabled = [\"address\"]\ndoctests = false\n",
    );
    let cold = analyse("sanitizers", dir, "cold");
    let total = tests_run(&cold);
    assert!(total > 0 && !findings(&cold).is_empty());
    let warm = analyse("sanitizers", dir, "warm");
    assert_eq!(cached(&warm), total, "{}", warm["stage"]);
    assert_eq!(findings(&warm), findings(&cold));
    assert_eq!(warm["stage"]["counts"], cold["stage"]["counts"]);

    // A declared input changes: every cached result of the stage is stale.
    std::fs::write(dir.join("tests/data/input.txt"), "two").unwrap();
    assert_eq!(cached(&analyse("sanitizers", dir, "input")), 0);

    // A sanitizer option changes.
    append(
        &cargo_toml,
        "options.address = [\"malloc_context_size=20\"]\n",
    );
    assert_eq!(cached(&analyse("sanitizers", dir, "option")), 0);

    // Every stored entry damaged: detected, removed and run again with the same result.
    let mut damaged = 0;
    let store = dir.join("target/runner-cache/v3");
    for prefix in std::fs::read_dir(&store).unwrap().flatten() {
        for entry in std::fs::read_dir(prefix.path()).unwrap().flatten() {
            let mut bytes = std::fs::read(entry.path()).unwrap();
            let last = bytes.len() - 2;
            bytes[last] ^= 0x20;
            std::fs::write(entry.path(), bytes).unwrap();
            damaged += 1;
        }
    }
    assert!(damaged > 0);
    let rerun = analyse("sanitizers", dir, "damaged");
    assert_eq!(cached(&rerun), 0);
    assert_eq!(rerun["stage"]["cache"]["corrupt"].as_u64(), Some(total));
    assert_eq!(findings(&rerun), findings(&cold));
    assert_eq!(cached(&analyse("sanitizers", dir, "repaired")), total);

    // `--no-cache` neither reads nor writes; `runner cache clear` empties the store.
    let out = dir.join("target/out-no-cache");
    let result = run(runner()
        .env_remove("RUNNER_NO_CACHE")
        .args(["sanitizers", "--no-cache", "--no-provision"])
        .arg(dir)
        .arg("--out")
        .arg(&out));
    assert_eq!(result.code, 1, "{}", result.stderr);
    assert!(read_json(&out.join("report.json"))["stages"][0]["cache"].is_null());
    let stats = run(runner().args(["cache", "stats"]).arg(dir));
    assert_eq!(stats.code, 0, "{}", stats.stderr);
    assert!(stats.stdout.contains(" entries"), "{}", stats.stdout);
    let cleared = run(runner().args(["cache", "clear"]).arg(dir));
    assert_eq!(cleared.code, 0, "{}", cleared.stderr);
    assert!(!store.exists());
}
