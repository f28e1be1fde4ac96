//! The coverage stage end to end: real cargo-llvm-cov (and tarpaulin) on
//! `fixtures/coverage-known`, whose coverage is counted by hand in its `expected.toml`. The
//! totals equal that count and cargo-llvm-cov's own table; thresholds and the critical file
//! gate; the reports open offline; a second run rebuilds nothing.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use common::{analyse, fixture, fixture_copy, pinned_channel, read_json, run, runner, Analysed};
use serde_json::Value;

/// The fixture analysed in place, once, by the tests that only read its report. Every other
/// run works on a copy, so no two runs share a build directory at the same time.
fn known() -> &'static Analysed {
    static KNOWN: OnceLock<Analysed> = OnceLock::new();
    KNOWN.get_or_init(|| {
        provisioned();
        analyse("coverage", "coverage-known", "known")
    })
}

fn provisioned() {
    common::setup_once("coverage");
}

fn expected() -> toml::Table {
    let text = std::fs::read_to_string(fixture("coverage-known").join("expected.toml")).unwrap();
    toml::from_str(&text).unwrap()
}

fn stage(report: &Value) -> &Value {
    &report["stages"][0]
}

fn findings(report: &Value) -> &Vec<Value> {
    stage(report)["findings"].as_array().expect("findings")
}

fn kinds(report: &Value) -> Vec<&str> {
    findings(report)
        .iter()
        .map(|f| f["kind"].as_str().unwrap())
        .collect()
}

/// (count, covered) of a metric in an `expected.toml` table.
fn counted(table: &toml::Value, metric: &str) -> (u64, u64) {
    let entry = &table[metric];
    let number = |key: &str| u64::try_from(entry[key].as_integer().unwrap()).unwrap();
    (number("count"), number("covered"))
}

/// Copies the fixture with its coverage config replaced by `config`.
fn copy_with_config(config: &str) -> tempfile::TempDir {
    let workspace = fixture_copy("coverage-known");
    let manifest_path = workspace.path().join("Cargo.toml");
    let manifest = std::fs::read_to_string(&manifest_path).unwrap();
    let cut = manifest.find("[package.metadata.runner.coverage]").unwrap();
    let manifest = format!(
        "{}[package.metadata.runner.coverage]\n{config}\n",
        &manifest[..cut]
    );
    std::fs::write(manifest_path, manifest).unwrap();
    workspace
}

fn analyse_dir(workspace: &Path, out: &Path, filters: &[&str]) -> (common::Run, Value) {
    let result = run(runner()
        .arg("coverage")
        .arg(workspace)
        .arg("--force-out")
        .arg("--out")
        .arg(out)
        .arg("--")
        .args(filters));
    let report = read_json(&out.join("report.json"));
    (result, report)
}

#[test]
fn totals_and_every_file_equal_the_hand_count() {
    let Analysed { run, out, report } = known();
    assert_eq!(run.code, 1, "the gate fails: {}", run.stderr);
    let expected = expected();
    let llvm = &expected["llvm-cov"];
    let counts = &stage(report)["counts"];
    for metric in ["lines", "branches", "functions", "regions"] {
        let (count, covered) = counted(&llvm["totals"], metric);
        assert_eq!(counts[metric], count, "{metric}: {counts}");
        assert_eq!(counts[&format!("{metric}_covered")], covered, "{metric}");
    }
    assert!(
        counts["branches"].as_u64().unwrap() > 0,
        "branch coverage is real"
    );
    assert_eq!(
        counts["tests_run"],
        expected["tests"]["run"].as_integer().unwrap()
    );
    let summary = read_json(&out.join("coverage/summary.json"));
    let files = summary["summary"]["files"].as_array().unwrap();
    let by_file = llvm["files"].as_table().unwrap();
    assert_eq!(files.len(), by_file.len(), "{summary:#}");
    for file in files {
        let path = file["path"].as_str().unwrap();
        for metric in ["lines", "branches", "functions", "regions"] {
            let (count, covered) = counted(&by_file[path], metric);
            let measured = &file["metrics"][metric];
            assert_eq!(
                (measured["count"].as_u64(), measured["covered"].as_u64()),
                (Some(count), Some(covered)),
                "{path} {metric}"
            );
        }
    }
    assert_eq!(files[0]["path"], "src/lib.rs", "least covered first");
}

#[test]
fn the_gate_fails_below_the_configured_thresholds_with_both_numbers() {
    let report = &known().report;
    assert_eq!(stage(report)["status"], "FAIL");
    assert_eq!(
        kinds(report),
        ["line-threshold", "branch-threshold", "critical-uncovered"]
    );
    let messages: Vec<&str> = findings(report)
        .iter()
        .map(|f| f["message"].as_str().unwrap())
        .collect();
    assert_eq!(
        messages[0],
        "line coverage 79.17 % is below the threshold of 80 % (19 of 24 lines covered)"
    );
    assert_eq!(
        messages[1],
        "branch coverage 50.00 % is below the threshold of 70 % (1 of 2 branches covered)"
    );
    for finding in findings(report) {
        assert_eq!(finding["category"], "threshold");
        assert_eq!(finding["severity"], "medium");
    }
}

#[test]
fn the_critical_uncovered_line_is_listed_with_its_function() {
    let Analysed { out, report, .. } = known();
    let expected = expected();
    let critical = findings(report)
        .iter()
        .find(|f| f["kind"] == "critical-uncovered")
        .unwrap();
    assert_eq!(critical["location"]["file"], "src/critical.rs");
    assert_eq!(critical["location"]["line"], 8);
    assert_eq!(
        critical["function"],
        expected["critical"]["function"].as_str().unwrap()
    );
    let message = critical["message"].as_str().unwrap();
    for line in expected["critical"]["uncovered-lines"].as_array().unwrap() {
        assert!(message.contains(line.as_str().unwrap()), "{message}");
    }
    assert_eq!(stage(report)["counts"]["critical_lines_uncovered"], 1);
    let repro = critical["repro"].as_str().unwrap();
    assert!(repro.contains("llvm-cov --branch --doctests"), "{repro}");
    let markdown = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(
        markdown.contains("- Where: `src/critical.rs:8` in `coverage_known::critical::parse_flag`")
    );
}

/// What `llvm-cov` itself reports, line by line, equals the hand count too: the lines it
/// leaves uncovered and the branch side it never takes.
#[test]
fn lcov_and_html_json_artifacts_are_in_the_stage_folder_and_the_html_opens_offline() {
    let Analysed { out, .. } = known();
    let dir = out.join("coverage");
    let lcov = std::fs::read_to_string(dir.join("lcov.info")).unwrap();
    let mut uncovered = Vec::new();
    let mut untaken = Vec::new();
    let mut file = String::new();
    for line in lcov.lines() {
        if let Some(path) = line.strip_prefix("SF:") {
            file = path.rsplit_once("coverage-known/").unwrap().1.to_owned();
        } else if let Some(line) = line.strip_prefix("DA:").and_then(|r| r.strip_suffix(",0")) {
            uncovered.push(format!("{file}:{line}"));
        } else if let Some(record) = line.strip_prefix("BRDA:") {
            let fields: Vec<&str> = record.split(',').collect();
            if fields[3] == "0" || fields[3] == "-" {
                let side = if fields[2] == "0" { "true" } else { "false" };
                untaken.push(format!("{file}:{} {side}", fields[0]));
            }
        }
    }
    let expected = expected();
    let strings = |key: &str| -> Vec<String> {
        expected["llvm-cov"][key]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(uncovered, strings("uncovered-lines"));
    assert_eq!(untaken, strings("untaken-branches"));
    let export = read_json(&dir.join("coverage.json"));
    assert_eq!(export["type"], "llvm.coverage.json.export");
    assert!(dir.join("logs/test.err").is_file());
    assert_offline(&dir.join("html/index.html"));
}

/// Every page of the report loads only files that exist beside it: scripts, styles and
/// images come from the report folder (or are inlined), and web addresses are only links.
fn assert_offline(index: &Path) {
    assert!(index.is_file(), "{} is missing", index.display());
    for page in html_files(index.parent().unwrap()) {
        let html = std::fs::read_to_string(&page).unwrap();
        for tag in html.split('<').skip(1) {
            let tag = tag.split('>').next().unwrap();
            let name = tag.split_whitespace().next().unwrap_or("");
            if !["script", "link", "img", "a"].contains(&name) {
                continue;
            }
            for attribute in ["src=", "href="] {
                let Some(value) = tag.split(attribute).nth(1) else {
                    continue;
                };
                let quote = value.chars().next().unwrap();
                let target = value[1..].split(quote).next().unwrap();
                let target = target.split('#').next().unwrap();
                if target.is_empty() || target.starts_with("javascript:") {
                    continue;
                }
                if target.starts_with("http") {
                    assert_eq!(name, "a", "{} loads {target}", page.display());
                } else {
                    let resolved = page.parent().unwrap().join(target);
                    assert!(resolved.is_file(), "{}: no {target}", page.display());
                }
            }
        }
    }
}

fn html_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(html_files(&path));
        } else if path
            .extension()
            .is_some_and(|extension| extension == "html")
        {
            found.push(path);
        }
    }
    found
}

/// The totals and the file table read exactly as cargo-llvm-cov's own table prints them, for
/// the same run; then a second run of the unchanged crate compiles nothing.
#[test]
fn numbers_match_cargo_llvm_covs_own_table_and_a_second_run_rebuilds_nothing() {
    let Analysed { out, report, .. } = known();
    let workspace = fixture("coverage-known");
    let table = cargo_llvm_cov_table(&workspace);
    assert_eq!(table.len(), 3, "two files and the total: {table:?}");
    let markdown = std::fs::read_to_string(out.join("report.md")).unwrap();
    // Regions, functions, lines and branches, in the tool's column order.
    let totals = &table["TOTAL"];
    for (metric, percent) in ["regions", "functions", "lines", "branches"]
        .iter()
        .zip(totals)
    {
        let shown = format!("{metric} {} %", percent.trim_end_matches('%'));
        assert!(
            markdown.contains(&shown),
            "report.md lacks `{shown}`:\n{markdown}"
        );
    }
    for (file, percents) in &table {
        if file == "TOTAL" {
            continue;
        }
        let row = markdown
            .lines()
            .find(|line| line.starts_with(&format!("| `src/{file}`")))
            .unwrap_or_else(|| panic!("no row for {file} in\n{markdown}"));
        // runner's columns: lines, branches, functions, regions.
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let tool = [&percents[2], &percents[3], &percents[1], &percents[0]];
        for (cell, percent) in cells[2..6].iter().zip(tool) {
            let expected = if percent == "-" {
                "-".to_owned()
            } else {
                format!("{} %", percent.trim_end_matches('%'))
            };
            assert!(
                cell.starts_with(&expected),
                "{file}: `{cell}` vs `{percent}`"
            );
        }
    }

    let again = workspace.join("target/runner-tests/again");
    let (second, second_report) = analyse_dir(&workspace, &again, &[]);
    assert_eq!(second.code, 1, "{}", second.stderr);
    let build_log = std::fs::read_to_string(again.join("coverage/logs/test.err")).unwrap();
    assert!(!build_log.contains("Compiling"), "rebuilt:\n{build_log}");
    assert_eq!(stage(&second_report)["counts"], stage(report)["counts"]);

    let none = workspace.join("target/runner-tests/none");
    let (filtered, filtered_report) = analyse_dir(&workspace, &none, &["no_such_test"]);
    assert_eq!(filtered.code, 2, "{}", filtered.stderr);
    assert_eq!(stage(&filtered_report)["status"], "ERROR");
    assert_eq!(
        stage(&filtered_report)["reason"],
        "no tests ran, so nothing was measured"
    );
}

/// cargo-llvm-cov's text table for the profiles runner's run left: file (or `TOTAL`) → the
/// four `Cover` columns (regions, functions, lines, branches).
fn cargo_llvm_cov_table(workspace: &Path) -> std::collections::BTreeMap<String, Vec<String>> {
    let mut command = Command::new("cargo");
    command
        .arg(format!("+{}", pinned_channel()))
        .args(["llvm-cov", "report", "--branch", "--doctests"])
        .current_dir(workspace)
        .env("PATH", tool_path())
        .env(
            "CARGO_TARGET_DIR",
            workspace.join("target/runner-build/coverage"),
        );
    for variable in [
        "CARGO",
        "RUSTC",
        "RUSTUP_TOOLCHAIN",
        "RUSTFLAGS",
        "RUSTC_WRAPPER",
    ] {
        command.env_remove(variable);
    }
    let output = command.output().unwrap();
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    text.lines()
        .map(|line| line.split_whitespace().collect::<Vec<&str>>())
        .filter(|words| words.len() == 13)
        .map(|words| {
            let cover = [3, 6, 9, 12].iter().map(|i| words[*i].to_owned()).collect();
            (words[0].to_owned(), cover)
        })
        .collect()
}

/// PATH with runner's own tool installs first, as runner gives its children.
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

/// Lowered thresholds pass, unless the critical file still has a gap: that alone fails.
#[test]
fn lowered_thresholds_pass_and_a_critical_gap_alone_fails() {
    provisioned();
    let workspace = copy_with_config(
        "line-threshold = 79\nbranch-threshold = 50\ncritical-paths = [\"src/critical*.rs\"]",
    );
    let out = workspace.path().join("report");
    let (result, report) = analyse_dir(workspace.path(), &out, &[]);
    assert_eq!(result.code, 1, "{}", result.stderr);
    assert_eq!(kinds(&report), ["critical-uncovered"]);

    let manifest_path = workspace.path().join("Cargo.toml");
    let manifest = std::fs::read_to_string(&manifest_path).unwrap();
    std::fs::write(
        &manifest_path,
        manifest.replace("critical-paths = [\"src/critical*.rs\"]", ""),
    )
    .unwrap();
    let (result, report) = analyse_dir(workspace.path(), &out, &[]);
    assert_eq!(result.code, 0, "{}", result.stderr);
    assert_eq!(stage(&report)["status"], "PASS");
    assert!(findings(&report).is_empty(), "{report:#}");
    assert_eq!(report["gate"]["passed"], true);
}

/// The tarpaulin engine on the same crate: line coverage only, equal to the hand count and to
/// tarpaulin's own summary, the critical line listed, the branch threshold not judged.
#[test]
fn the_tarpaulin_engine_measures_the_same_crate() {
    provisioned();
    let workspace =
        copy_with_config("engine = \"tarpaulin\"\nline-threshold = 80\nbranch-threshold = 70\ncritical-paths = [\"src/critical*.rs\"]");
    let out = workspace.path().join("report");
    let (result, report) = analyse_dir(workspace.path(), &out, &[]);
    assert_eq!(result.code, 1, "{}", result.stderr);
    let expected = expected();
    let tarpaulin = &expected["tarpaulin"];
    let (count, covered) = counted(&tarpaulin["totals"], "lines");
    let counts = &stage(&report)["counts"];
    assert_eq!(counts["lines"], count);
    assert_eq!(counts["lines_covered"], covered);
    assert!(counts.get("branches").is_none(), "{counts}");
    let run = expected["tests"]["run"].as_integer().unwrap();
    assert_eq!(counts["tests_run"], run, "doctests included");

    // Tarpaulin's own summary: `|| src/lib.rs: 6/9` per file, then the total.
    let log = std::fs::read_to_string(out.join("coverage/logs/tarpaulin.out")).unwrap();
    let own = format!("71.43% coverage, {covered}/{count} lines covered");
    assert!(log.contains(&own), "tarpaulin printed no `{own}`:\n{log}");
    for (file, table) in tarpaulin["files"].as_table().unwrap() {
        let (count, covered) = counted(table, "lines");
        let line = format!("|| {file}: {covered}/{count}");
        assert!(log.contains(&line), "tarpaulin printed no `{line}`");
    }

    let notes = stage(&report)["notes"].to_string();
    assert!(
        notes.contains("the branch threshold (70 %) was not checked"),
        "{notes}"
    );
    assert_eq!(kinds(&report), ["line-threshold", "critical-uncovered"]);
    let critical = &findings(&report)[1];
    assert_eq!(critical["location"]["file"], "src/critical.rs");
    assert_eq!(critical["location"]["line"], 8);
    assert_offline(&out.join("coverage/tarpaulin-report.html"));
}

/// Without thresholds in the config, coverage below runner's suggestion is a note, not a
/// finding: a number nobody chose says nothing about the code (either 1.19.0 failed the
/// gate at 70 % of its lines).
#[test]
fn below_the_suggested_coverage_without_thresholds_passes_with_a_note() {
    provisioned();
    let workspace = copy_with_config("doctests = true");
    let out = workspace.path().join("report");
    let (result, report) = analyse_dir(workspace.path(), &out, &[]);
    assert_eq!(result.code, 0, "{}", result.stderr);
    assert_eq!(stage(&report)["status"], "PASS");
    assert!(findings(&report).is_empty(), "{report:#}");
    let notes = stage(&report)["notes"].to_string();
    assert!(
        notes.contains(
            "line coverage 79.17 % is below the 80 % runner suggests (19 of 24 lines covered)"
        ),
        "{notes}"
    );
    assert!(
        notes.contains("branch coverage 50.00 % is below the 70 % runner suggests"),
        "{notes}"
    );
}

const FAILING_LIB: &str = r"//! One test passes, one fails.

pub fn double(x: u32) -> u32 {
    x * 2
}

#[cfg(test)]
mod tests {
    #[test]
    fn passes() {
        assert_eq!(super::double(2), 4);
    }

    #[test]
    fn fails() {
        assert_eq!(super::double(2), 5);
    }
}
";

/// A failing test is a finding of its own; what ran is still measured.
#[test]
fn a_failing_test_is_a_finding_and_coverage_is_still_measured() {
    provisioned();
    let manifest = "[package]\nname = \"fails\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n\
                    [workspace]\n\n[package.metadata.runner.coverage]\nline-threshold = 0\n";
    let workspace = common::temp_crate(manifest, FAILING_LIB);
    let out = workspace.path().join("report");
    let (result, report) = analyse_dir(workspace.path(), &out, &[]);
    assert_eq!(result.code, 1, "{}", result.stderr);
    assert_eq!(kinds(&report), ["test-failure"]);
    let failure = &findings(&report)[0];
    assert_eq!(failure["test"], "tests::fails");
    assert_eq!(failure["severity"], "high");
    assert_eq!(failure["location"]["line"], 16);
    let counts = &stage(&report)["counts"];
    assert_eq!(
        (&counts["tests_run"], &counts["failed"]),
        (&2.into(), &1.into())
    );
    assert!(counts["lines_covered"].as_u64().unwrap() > 0, "{counts}");

    // The repro is a shell line: pasted (with runner's tools on PATH), it fails the same way.
    let repro = failure["repro"].as_str().unwrap();
    assert!(
        repro.ends_with("--show-missing-lines -- --exact tests::fails"),
        "{repro}"
    );
    let again = Command::new("sh")
        .args(["-c", repro])
        .env("PATH", tool_path())
        .env_remove("CARGO")
        .env_remove("RUSTUP_TOOLCHAIN")
        .output()
        .unwrap();
    // cargo-llvm-cov prints the tests' output on stderr, keeping stdout for its report.
    let output = String::from_utf8_lossy(&again.stderr);
    assert!(!again.status.success());
    assert!(output.contains("test tests::fails ... FAILED"), "{output}");
    assert!(
        !output.contains("tests::passes"),
        "only the failing test ran: {output}"
    );
}

#[test]
fn clean_control_passes_fully_covered() {
    provisioned();
    let Analysed { run, report, .. } = analyse("coverage", "clean", "coverage");
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(stage(&report)["status"], "PASS");
    assert!(findings(&report).is_empty(), "{report:#}");
    let counts = &stage(&report)["counts"];
    assert_eq!(counts["lines"], counts["lines_covered"], "{counts}");
    assert_eq!(counts["tests_run"], 4, "three unit tests and a doctest");
}

#[test]
fn plan_shows_the_engine_commands_and_the_stage_build_dir() {
    let result = run(runner()
        .args(["plan", "--stages", "coverage"])
        .arg(fixture("coverage-known")));
    assert_eq!(result.code, 0, "{}", result.stderr);
    let plan = result.stdout;
    assert!(plan.contains("runner-build/coverage"), "{plan}");
    assert!(plan.contains("llvm-cov clean --profraw-only"), "{plan}");
    assert!(
        plan.contains("llvm-cov test --no-report --no-fail-fast --branch --doctests"),
        "{plan}"
    );
    assert!(plan.contains("--lcov --output-path"), "{plan}");
    assert!(
        plan.contains("must be fully covered: `src/critical*.rs`"),
        "{plan}"
    );
}
