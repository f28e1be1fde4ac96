//! Every per-test stage's repro command runs as printed: pasted into `sh` from a fresh shell,
//! with the workspace at a path holding a space, a quote and `$(touch x)`, it reproduces the
//! finding, and nothing in the path is run as a command.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{read_json, run, runner};
use serde_json::Value;

/// A copy of a fixture under a folder whose name a shell would misread unquoted.
fn hostile_copy(fixture: &str, config: &str) -> (tempfile::TempDir, PathBuf) {
    let root = tempfile::tempdir().unwrap();
    let workspace = root.path().join("it's a $(touch x) dir").join(fixture);
    let copy = common::fixture_copy(fixture);
    copy_tree(copy.path(), &workspace);
    let manifest = workspace.join("Cargo.toml");
    let mut text = std::fs::read_to_string(&manifest).unwrap();
    text.push_str(config);
    std::fs::write(&manifest, text).unwrap();
    (root, workspace)
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            copy_tree(&path, &to.join(entry.file_name()));
        } else {
            std::fs::copy(&path, to.join(entry.file_name())).unwrap();
        }
    }
}

/// Runs the stage, then pastes the repro of its first finding of `kind` into `sh` from the
/// workspace, and returns what the shell printed. (Whether the pasted command fails is the
/// tool's business: memcheck passes the test's own status through.)
fn reproduce(stage: &str, fixture: &str, config: &str, kind: &str) -> String {
    common::provisioned();
    let (root, workspace) = hostile_copy(fixture, config);
    let out = workspace.join("target/runner");
    let result = run(runner().arg(stage).arg(&workspace).arg("--out").arg(&out));
    assert_eq!(result.code, 1, "{}", result.stderr);
    let report = read_json(&out.join("report.json"));
    let findings = report["stages"][0]["findings"].as_array().unwrap();
    let finding: &Value = findings
        .iter()
        .find(|f| f["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} finding: {findings:#?}"));
    let repro = finding["repro"].as_str().unwrap();
    let pasted = Command::new("sh")
        .args(["-c", repro])
        .current_dir(&workspace)
        .env_remove("RUSTFLAGS")
        .output()
        .unwrap();
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&pasted.stdout),
        String::from_utf8_lossy(&pasted.stderr)
    );
    // `$(touch x)` in the path must never have run, wherever the shell stood.
    for dir in [root.path(), &workspace, workspace.parent().unwrap()] {
        assert!(
            !dir.join("x").exists(),
            "`{repro}` ran `touch x` in {}",
            dir.display()
        );
    }
    printed
}

#[test]
fn miri_repro_runs_as_printed() {
    let printed = reproduce(
        "miri",
        "miri-bugs",
        "\n[package.metadata.runner.miri]\ntargets = [\"host\"]\n",
        "use-after-free",
    );
    assert!(printed.contains("Undefined Behavior"), "{printed}");
}

#[test]
fn sanitizers_repro_runs_as_printed() {
    let printed = reproduce(
        "sanitizers",
        "sanitizer-bugs",
        "\n[package.metadata.runner.sanitizers]\nenabled = [\"address\"]\n",
        "heap-buffer-overflow",
    );
    assert!(
        printed.contains("AddressSanitizer: heap-buffer-overflow"),
        "{printed}"
    );
}

#[test]
fn valgrind_repro_runs_as_printed() {
    common::require_tool(&["valgrind"], "valgrind");
    let printed = reproduce("valgrind", "valgrind-bugs", "", "invalid-read");
    assert!(printed.contains("Invalid read"), "{printed}");
}

#[test]
fn cross_repro_runs_as_printed() {
    common::require_tool(&["qemu-s390x-static", "qemu-s390x"], "qemu-user-static");
    common::require_tool(
        &["s390x-linux-gnu-gcc"],
        "gcc-s390x-linux-gnu libc6-dev-s390x-cross",
    );
    let printed = reproduce("cross", "endian-bugs", "", "test-failure");
    assert!(printed.contains("panicked"), "{printed}");
}
