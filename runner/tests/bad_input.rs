//! Bad input of every kind: one clear line on stderr, exit 2, never a panic.

mod common;

use common::{fixture, run, runner, temp_crate};

const PLAIN_CRATE: &str =
    "[package]\nname = \"p\"\nversion = \"0.1.0\"\nedition = \"2021\"\n[workspace]\n";

#[test]
fn missing_path() {
    run(runner().args(["miri", "/nonexistent/workspace"])).assert_one_line_error("does not exist");
}

#[test]
fn directory_without_cargo_toml() {
    let dir = tempfile::tempdir().unwrap();
    run(runner().arg("miri").arg(dir.path())).assert_one_line_error("no Cargo.toml");
}

#[test]
fn malformed_cargo_toml() {
    let dir = temp_crate("[package\nname = ", "");
    run(runner().arg("miri").arg(dir.path())).assert_one_line_error("cannot read the workspace");
}

#[test]
fn unknown_stage() {
    run(runner().args(["frobnicate", "."])).assert_one_line_error("frobnicate");
    run(runner().args(["all", "--stages", "frobnicate"])).assert_one_line_error("frobnicate");
}

#[test]
fn unknown_config_key() {
    let manifest = format!("{PLAIN_CRATE}[package.metadata.runner.miri]\nseedz = 2\n");
    let dir = temp_crate(&manifest, "");
    run(runner().arg("miri").arg(dir.path())).assert_one_line_error("seedz");
}

#[test]
fn config_value_of_the_wrong_type() {
    let manifest = format!("{PLAIN_CRATE}[package.metadata.runner]\nfail-on = 3\n");
    let dir = temp_crate(&manifest, "");
    run(runner().arg("miri").arg(dir.path())).assert_one_line_error("fail-on");
}

#[test]
fn unwritable_out_dir() {
    run(runner()
        .arg("miri")
        .arg(fixture("clean"))
        .args(["--out", "/proc/runner-report"]))
    .assert_one_line_error("report folder");
}

#[test]
fn invalid_timeout() {
    run(runner()
        .arg("miri")
        .arg(fixture("clean"))
        .args(["--timeout", "soon"]))
    .assert_one_line_error("timeout");
}

#[test]
fn missing_toolchain_with_no_provision() {
    // A rustup home that has only the stable toolchain: the pinned nightly is missing.
    let home = tempfile::tempdir().unwrap();
    common::link_stable_toolchain(home.path());
    let result = run(runner()
        .arg("miri")
        .arg(fixture("clean"))
        .arg("--no-provision")
        .env("RUSTUP_HOME", home.path())
        .env_remove("RUSTUP_TOOLCHAIN"));
    result.assert_one_line_error("missing: toolchain nightly-");
    assert!(
        result.stderr.contains("rustup toolchain install"),
        "{}",
        result.stderr
    );
}

#[test]
fn toolchain_that_does_not_match_the_pin_in_hermetic_mode() {
    // In the hermetic mode runner uses the rustc on PATH; here that is the stable default.
    let result = run(runner()
        .arg("miri")
        .arg(fixture("clean"))
        .env("RUNNER_HERMETIC", "nix")
        .env_remove("RUSTUP_TOOLCHAIN"));
    result.assert_one_line_error("toolchain mismatch");
}

#[test]
fn unknown_hermetic_marker() {
    run(runner().arg("doctor").env("RUNNER_HERMETIC", "vm"))
        .assert_one_line_error("RUNNER_HERMETIC");
}
