//! The execution kernel end to end, on a fixture with a test that never returns, a test that
//! leaves a detached daemon holding its output pipe, a heap out-of-bounds read and clean
//! tests: every per-test stage reports the hang as a `timeout` naming the test, still
//! reports the read (where its tool can see one), counts the clean tests as passed, and
//! leaves no process behind, also when runner itself is killed with SIGKILL.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{fixture, read_json, run, runner};
use serde_json::Value;

const CLEAN: [&str; 3] = [
    "tests::clean_sum",
    "tests::clean_empty",
    "tests::clean_large",
];

/// The folder the fixture's tests write the process ids they start into.
fn pid_dir(name: &str) -> PathBuf {
    let dir = fixture("hang").join("target/runner-tests/pids").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn recorded_pids(dir: &Path) -> Vec<(String, i32)> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            let (what, pid) = name.rsplit_once('-')?;
            Some((what.to_owned(), pid.parse().ok()?))
        })
        .collect()
}

/// Gone, or a zombie waiting for its reaper (it runs no code any more).
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        !stat
            .rsplit(") ")
            .next()
            .is_some_and(|rest| rest.starts_with('Z'))
    })
}

/// Processes that still carry a tag of runner process `runner_pid`'s trees.
fn tagged_by(runner_pid: u32) -> Vec<i32> {
    let prefix = format!("{runner_pid}.");
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|entry| {
            let pid: i32 = entry.file_name().to_str()?.parse().ok()?;
            let environ = std::fs::read(entry.path().join("environ")).ok()?;
            let tagged = environ
                .split(|b| *b == 0)
                .filter_map(|pair| pair.strip_prefix(b"RUNNER_TREE="))
                .any(|value| {
                    String::from_utf8_lossy(value)
                        .split_whitespace()
                        .any(|tag| tag.starts_with(&prefix))
                });
            (tagged && alive(pid)).then_some(pid)
        })
        .collect()
}

struct StageRun {
    stage: Value,
    elapsed: Duration,
    pids: Vec<(String, i32)>,
}

/// The system tools a stage runs, named in the failure when missing.
fn require_tools(stage: &str) {
    match stage {
        "valgrind" => common::require_tool(&["valgrind"], "valgrind"),
        "sanitizers" => common::require_tool(&["llvm-symbolizer"], "llvm"),
        "cross" => {
            common::require_tool(&["qemu-s390x-static", "qemu-s390x"], "qemu-user-static");
            common::require_tool(
                &["s390x-linux-gnu-gcc"],
                "gcc-s390x-linux-gnu libc6-dev-s390x-cross",
            );
        }
        _ => {}
    }
}

fn analyse(stage: &str) -> StageRun {
    common::provisioned();
    require_tools(stage);
    let out = fixture("hang").join(format!("target/runner-tests/{stage}"));
    let pids = pid_dir(stage);
    let started = Instant::now();
    let result = run(runner()
        .arg(stage)
        .arg(fixture("hang"))
        .args(["--test-timeout", "20s", "--timeout", "20m", "--out"])
        .arg(&out)
        .env("HANG_FIXTURE_PIDS", &pids));
    let elapsed = started.elapsed();
    assert_eq!(
        result.code, 1,
        "gate fails on the fixture's bugs: {}",
        result.stderr
    );
    let report = read_json(&out.join("report.json"));
    StageRun {
        stage: report["stages"][0].clone(),
        elapsed,
        pids: recorded_pids(&pids),
    }
}

fn findings<'a>(stage: &'a Value, kind: &str) -> Vec<&'a Value> {
    stage["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == kind)
        .collect()
}

/// The hang is a high `timeout` finding naming its test; the clean tests passed; the stage
/// took nowhere near its budget; nothing the tests started is alive.
fn assert_kernel_contract(run: &StageRun, targets: usize) {
    let stage = &run.stage;
    assert_eq!(stage["status"], "FAIL", "{stage:#}");
    let timeouts = findings(stage, "timeout");
    assert_eq!(timeouts.len(), targets, "{stage:#}");
    for timeout in &timeouts {
        assert_eq!(timeout["test"], "tests::never_returns");
        assert_eq!(timeout["severity"], "high");
        assert_eq!(timeout["category"], "timeout");
        assert!(
            timeout["message"].as_str().unwrap().contains("20.0s"),
            "{timeout:#}"
        );
    }
    assert_eq!(stage["counts"]["timed_out"], targets as u64, "{stage:#}");
    let tests = stage["tests"].as_array().unwrap();
    for name in CLEAN {
        let runs: Vec<&Value> = tests.iter().filter(|t| t["name"] == name).collect();
        assert_eq!(runs.len(), targets, "{name}: {tests:#?}");
        assert!(runs.iter().all(|t| t["outcome"] == "passed"), "{runs:#?}");
    }
    // Well inside the 20-minute budget: the hang cost its 20 s limit, not the budget.
    assert!(run.elapsed < Duration::from_mins(15), "{:?}", run.elapsed);
    for (what, pid) in &run.pids {
        assert!(!alive(*pid), "{what} process {pid} outlived runner");
    }
}

#[test]
fn miri_times_out_the_hang_and_still_finds_the_read() {
    let run = analyse("miri");
    assert_kernel_contract(&run, 2);
    let reads = findings(&run.stage, "out-of-bounds");
    assert_eq!(reads.len(), 2, "{:#}", run.stage);
    assert!(reads
        .iter()
        .all(|f| f["test"] == "tests::reads_out_of_bounds"));
}

#[test]
fn sanitizers_time_out_the_hang_under_both_runtimes() {
    let run = analyse("sanitizers");
    assert_kernel_contract(&run, 2);
    let reads = findings(&run.stage, "heap-buffer-overflow");
    assert_eq!(reads.len(), 1, "{:#}", run.stage);
    assert_eq!(reads[0]["test"], "tests::reads_out_of_bounds");
    assert_eq!(reads[0]["location"]["file"], "src/lib.rs");
    assert!(run.pids.iter().any(|(what, _)| what == "daemon"));
}

#[test]
fn valgrind_times_out_the_hang_and_still_finds_the_read() {
    let run = analyse("valgrind");
    assert_kernel_contract(&run, 1);
    let reads = findings(&run.stage, "invalid-read");
    assert_eq!(reads.len(), 1, "{:#}", run.stage);
    assert_eq!(reads[0]["test"], "tests::reads_out_of_bounds");
    assert!(run.pids.iter().any(|(what, _)| what == "daemon"));
}

#[test]
fn cross_times_out_the_hang_natively() {
    let run = analyse("cross");
    assert_kernel_contract(&run, 1);
    assert!(run.pids.iter().any(|(what, _)| what == "daemon"));
}

#[test]
fn a_sigkilled_runner_leaves_nothing_running() {
    common::provisioned();
    require_tools("valgrind");
    let pids = pid_dir("sigkill");
    let out = fixture("hang").join("target/runner-tests/sigkill");
    let mut child = runner()
        .args(["valgrind"])
        .arg(fixture("hang"))
        .args(["--test-timeout", "10m", "--out"])
        .arg(&out)
        .env("HANG_FIXTURE_PIDS", &pids)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let runner_pid = child.id();
    // Wait until the hang runs (and so the stage is mid-way), then kill runner outright.
    let started = Instant::now();
    while !recorded_pids(&pids).iter().any(|(what, _)| what == "hang") {
        assert!(
            started.elapsed() < Duration::from_mins(10),
            "the hang never started"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        !tagged_by(runner_pid).is_empty(),
        "runner's tree is running"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    let killed = Instant::now();
    while killed.elapsed() < Duration::from_secs(5) {
        if tagged_by(runner_pid).is_empty()
            && recorded_pids(&pids).iter().all(|(_, pid)| !alive(*pid))
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "5 s after runner's SIGKILL, still alive: {:?}, recorded {:?}",
        tagged_by(runner_pid),
        recorded_pids(&pids)
    );
}
