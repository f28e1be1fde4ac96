//! Per-package settings in a real workspace, end to end under Miri (`fixtures/per-package`,
//! laid out like crossbeam's): each member's own `[package.metadata.runner.miri]` applies to
//! it in one `runner miri`, a package checked under two borrow models says which findings
//! only one model sees, and the workspace's `exclude-packages` leaves a package out.

mod common;

use std::sync::OnceLock;

use common::{fixture, run, runner, stage_named, Analysed};
use serde_json::Value;

fn analysed() -> &'static Analysed {
    static ANALYSED: OnceLock<Analysed> = OnceLock::new();
    ANALYSED.get_or_init(|| {
        common::provisioned();
        common::analyse("miri", "per-package", "miri")
    })
}

fn findings_of<'a>(stage: &'a Value, package: &str) -> Vec<&'a Value> {
    stage["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|finding| {
            finding["repro"]
                .as_str()
                .is_some_and(|repro| repro.contains(&format!("/{package}#")))
        })
        .collect()
}

#[test]
fn each_package_runs_under_its_own_flags_in_one_run() {
    let analysed = analysed();
    let miri = stage_named(&analysed.report, "miri");
    // gamma's aliasing violation under Stacked Borrows is a real finding: the gate fails.
    assert_eq!(analysed.run.code, 1, "{}", analysed.run.stderr);
    assert_eq!(miri["status"], "FAIL", "{}", miri["reason"]);

    // alpha under strict provenance: its address-to-pointer cast is reported.
    let alpha = findings_of(miri, "alpha");
    assert_eq!(alpha.len(), 1, "{alpha:#?}");
    assert_eq!(alpha[0]["kind"], "unsupported-operation");
    assert_eq!(alpha[0]["test"], "tests::reads_back_through_an_address");
    assert!(alpha[0]["repro"]
        .as_str()
        .unwrap()
        .contains("-Zmiri-strict-provenance"));

    // beta without borrow tracking and leak checks: its violation and its leak are not
    // findings, and its tests ran.
    assert!(findings_of(miri, "beta").is_empty());
    let tests = miri["tests"].as_array().unwrap();
    let beta_passed = tests
        .iter()
        .filter(|test| test["unit"] == "beta lib" && test["outcome"] == "passed")
        .count();
    assert_eq!(beta_passed, 2, "{tests:#?}");

    // delta is excluded from the stage: never built, never run.
    assert!(findings_of(miri, "delta").is_empty());
    assert!(!tests
        .iter()
        .any(|test| test["unit"].as_str().unwrap().starts_with("delta")));
}

#[test]
fn a_package_under_two_models_says_what_only_one_sees() {
    let miri = stage_named(&analysed().report, "miri");
    let gamma = findings_of(miri, "gamma");
    assert_eq!(gamma.len(), 1, "{gamma:#?}");
    assert_eq!(gamma[0]["kind"], "aliasing-violation");
    assert_eq!(gamma[0]["borrow_model"], "stacked");
    assert_eq!(gamma[0]["test"], "tests::write_after_unused_reborrow");
    assert!(
        gamma[0]["note"]
            .as_str()
            .unwrap()
            .contains("seen only under Stacked Borrows"),
        "{}",
        gamma[0]["note"]
    );
    // Both models ran both of gamma's tests.
    let tests = miri["tests"].as_array().unwrap();
    for model in ["Stacked Borrows", "Tree Borrows"] {
        let unit = format!("gamma lib ({model})");
        assert_eq!(
            tests.iter().filter(|test| test["unit"] == unit).count(),
            2,
            "{unit}: {tests:#?}"
        );
    }
    // Every Miri finding names its model.
    for finding in miri["findings"].as_array().unwrap() {
        assert!(finding["borrow_model"].is_string(), "{finding:#}");
    }
}

#[test]
fn the_report_and_the_plan_show_each_package_settings() {
    let miri = stage_named(&analysed().report, "miri");
    let table = miri["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|table| table["title"] == "Package settings")
        .expect("a package settings table");
    let rows: Vec<(String, String, String)> = table["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            (
                row[0].as_str().unwrap().to_owned(),
                row[1].as_str().unwrap().to_owned(),
                row[2].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            (
                "alpha".to_owned(),
                "Stacked Borrows".to_owned(),
                "-Zmiri-strict-provenance".to_owned()
            ),
            (
                "beta".to_owned(),
                "no borrow tracking".to_owned(),
                "-Zmiri-disable-stacked-borrows -Zmiri-ignore-leaks".to_owned()
            ),
            (
                "gamma".to_owned(),
                "Stacked Borrows, Tree Borrows".to_owned(),
                "-".to_owned()
            ),
        ]
    );
    let plan = run(runner()
        .arg("plan")
        .arg(fixture("per-package"))
        .args(["--stages", "miri"]));
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    assert!(
        plan.stdout
            .contains("beta: borrow model no borrow tracking; flags -Zmiri-disable-stacked-borrows -Zmiri-ignore-leaks"),
        "{}",
        plan.stdout
    );
    assert!(!plan.stdout.contains("delta:"), "{}", plan.stdout);
}
