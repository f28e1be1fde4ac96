//! The cross stage end to end: the suite built for s390x and run under qemu-user finds the
//! byte-order bug that Miri's s390x interpretation finds, and passes the clean control.

mod common;

use common::{fixture, read_json, run, runner};
use serde_json::Value;

const S390X: &str = "s390x-unknown-linux-gnu";

fn stage<'a>(report: &'a Value, name: &str) -> &'a Value {
    common::stage_named(report, name)
}

#[test]
fn native_big_endian_run_and_miri_agree_on_the_byte_order_bug() {
    common::require_tool(&["qemu-s390x-static", "qemu-s390x"], "qemu-user-static");
    common::require_tool(
        &["s390x-linux-gnu-gcc"],
        "gcc-s390x-linux-gnu libc6-dev-s390x-cross",
    );
    common::provisioned();
    let out = fixture("endian-bugs").join("target/runner-tests/both");
    let result = run(runner()
        .args(["all", "--stages", "miri,cross"])
        .arg(fixture("endian-bugs"))
        .arg("--out")
        .arg(&out));
    assert_eq!(result.code, 1, "{}", result.stderr);
    let report = read_json(&out.join("report.json"));

    let cross = stage(&report, "cross");
    assert_eq!(cross["status"], "FAIL");
    assert_eq!(cross["counts"]["tests_run"], 3);
    assert_eq!(cross["counts"]["failed"], 1);
    let findings = cross["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 1, "{findings:#?}");
    let native = &findings[0];
    assert_eq!(native["kind"], "test-failure");
    assert_eq!(native["test"], "tests::length_is_little_endian");
    assert_eq!(native["target"], S390X);
    assert_eq!(native["location"]["file"], "src/lib.rs");
    assert_eq!(native["location"]["line"], 19);
    assert!(
        native["repro"].as_str().unwrap().contains("qemu-s390x"),
        "{native}"
    );

    let miri = stage(&report, "miri");
    let interpreted: Vec<&Value> = miri["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["test"] == "tests::length_is_little_endian")
        .collect();
    assert_eq!(
        interpreted.len(),
        1,
        "Miri finds it on s390x only: {interpreted:#?}"
    );
    assert_eq!(interpreted[0]["target"], S390X);
    assert_eq!(interpreted[0]["location"], native["location"]);
}

#[test]
fn clean_control_passes_natively_on_s390x() {
    common::require_tool(&["qemu-s390x-static", "qemu-s390x"], "qemu-user-static");
    common::require_tool(
        &["s390x-linux-gnu-gcc"],
        "gcc-s390x-linux-gnu libc6-dev-s390x-cross",
    );
    let out = fixture("clean").join("target/runner-tests/cross");
    let result = run(runner()
        .arg("cross")
        .arg(fixture("clean"))
        .arg("--out")
        .arg(&out));
    assert_eq!(result.code, 0, "{}", result.stderr);
    let report = read_json(&out.join("report.json"));
    let cross = stage(&report, "cross");
    assert_eq!(cross["status"], "PASS");
    assert_eq!(cross["counts"]["tests_run"], 3);
    assert!(cross["findings"].as_array().unwrap().is_empty());
}
