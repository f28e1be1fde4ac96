//! Process control end to end: a stage over its time limit and Ctrl-C both stop every
//! process the stage started, keep the report, and exit 2.

mod common;

use std::time::{Duration, Instant};

use common::{fixture_copy, processes_mentioning, read_json, run, runner};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

#[test]
fn a_stage_over_its_timeout_is_an_error_and_leaves_no_process_behind() {
    common::provisioned();
    let workspace = fixture_copy("miri-slow");
    let out = workspace.path().join("report");
    let started = Instant::now();
    let result = run(runner()
        .arg("miri")
        .arg(workspace.path())
        .args(["--timeout", "45s", "--force-out", "--out"])
        .arg(&out));
    assert!(
        started.elapsed() < Duration::from_secs(90),
        "took {:?}",
        started.elapsed()
    );
    result.assert_one_line_error("timed out");
    let report = read_json(&out.join("report.json"));
    assert_eq!(report["stages"][0]["status"], "ERROR");
    assert!(report["stages"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("timed out"));
    assert_eq!(report["gate"]["passed"], false);
    let left = processes_mentioning(&workspace.path().display().to_string());
    assert!(left.is_empty(), "processes left behind: {left:#?}");
}

#[test]
fn ctrl_c_stops_the_children_and_keeps_a_partial_report() {
    common::provisioned();
    let workspace = fixture_copy("miri-slow");
    let out = workspace.path().join("report");
    let child = runner()
        .arg("miri")
        .arg(workspace.path())
        .arg("--force-out")
        .arg("--out")
        .arg(&out)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until a test shard is running under Miri, then press Ctrl-C.
    let deadline = Instant::now() + Duration::from_mins(4);
    let shard_running = || {
        std::fs::read_dir(out.join("miri/logs")).is_ok_and(|entries| {
            entries
                .flatten()
                .any(|e| e.file_name().to_string_lossy().starts_with("0001-"))
        })
    };
    while !shard_running() {
        assert!(Instant::now() < deadline, "the shard never started");
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(2));
    kill(
        Pid::from_raw(i32::try_from(child.id()).unwrap()),
        Signal::SIGINT,
    )
    .unwrap();
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("runner: error"))
        .collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(errors[0].contains("interrupted"), "{stderr}");
    let report = read_json(&out.join("report.json"));
    assert_eq!(report["partial"], true);
    assert_eq!(report["stages"][0]["status"], "ERROR");
    let left = processes_mentioning(&workspace.path().display().to_string());
    assert!(left.is_empty(), "processes left behind: {left:#?}");
}
