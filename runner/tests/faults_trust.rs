//! Fault injection, part two: nothing runner did not make is trusted. Cache entries swapped
//! or copied across tests and harnesses, suppression files under paths with spaces, files
//! runner writes outside its report folder that are devices, FIFOs or symlinks, a signal
//! while runner waits, a SIGKILL while a tool runs with another run's environment, `merge`
//! held to the report-folder rules, damaged durations and crash records, symlink loops in
//! declared inputs, planted symlinks in the report folder. Each scenario asserts on exit
//! codes, messages and findings.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{read_json, run, runner, temp_crate, Run};
use serde_json::Value;

const PLAIN_CRATE: &str =
    "[package]\nname = \"p\"\nversion = \"0.1.0\"\nedition = \"2021\"\n[workspace]\n";

/// A crate with one out-of-bounds read that only memcheck sees, two passing tests beside it
/// and an integration test; `extra` is appended to its manifest.
const TRUST_LIB: &str = r#"
pub fn read_past_end(values: &[u32]) -> u32 {
    let ptr = values.as_ptr();
    unsafe { ptr.add(values.len()).read_volatile() }
}

#[cfg(test)]
mod tests {
    #[test]
    fn ok_a() {
        assert_eq!(1 + 1, 2);
    }
    #[test]
    fn oob() {
        let values = vec![1u32, 2, 3];
        let _ = super::read_past_end(&values);
    }
    #[test]
    fn ok_b() {
        assert_ne!(std::env::var("TRUST_FLAG").as_deref(), Ok("bad"));
    }
}
"#;

const TRUST_IT: &str =
    "#[test]\nfn it_ok() {\n    assert_eq!(trust::read_past_end(&[1, 2][..1]), 2);\n}\n";

/// The crate in `<tmp>/<folder>/ws` (a folder name with a space where asked).
fn trust_crate(folder: &str, extra: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().join(folder).join("ws");
    std::fs::create_dir_all(ws.join("src")).unwrap();
    std::fs::create_dir_all(ws.join("tests")).unwrap();
    std::fs::write(
        ws.join("Cargo.toml"),
        format!(
            "[package]\nname = \"trust\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\
             [workspace]\n{extra}"
        ),
    )
    .unwrap();
    std::fs::write(ws.join("src/lib.rs"), TRUST_LIB).unwrap();
    std::fs::write(ws.join("tests/it.rs"), TRUST_IT).unwrap();
    (dir, ws)
}

/// `runner valgrind` on `ws` (cache on unless `no_cache`), report in `target/<name>`.
fn valgrind(ws: &Path, name: &str, no_cache: bool, extra: &[&str]) -> (Run, Value) {
    common::require_tool(&["valgrind"], "valgrind");
    let out = ws.join("target").join(name);
    let mut command = runner();
    command
        .env_remove("RUNNER_NO_CACHE")
        .args(["valgrind", "--jobs", "1", "--no-provision"])
        .arg(ws)
        .arg("--out")
        .arg(&out)
        .args(extra);
    if no_cache {
        command.arg("--no-cache");
    }
    let result = run(&mut command);
    assert!(
        result.code == 0 || result.code == 1,
        "valgrind run {name} exited {}: {}",
        result.code,
        result.stderr
    );
    let report = read_json(&out.join("report.json"));
    (result, report)
}

/// (tests run, findings as (kind, test)) of the report's only stage.
fn verdict(report: &Value) -> (usize, Vec<(String, String)>) {
    let stage = &report["stages"][0];
    let mut findings: Vec<(String, String)> = stage["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["kind"].as_str().unwrap_or("").to_owned(),
                f["test"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    findings.sort();
    (stage["tests"].as_array().map_or(0, Vec::len), findings)
}

/// Every file of the result cache under `ws/target`.
fn cache_files(ws: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, found: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, found);
            } else {
                found.push(path);
            }
        }
    }
    let mut found = Vec::new();
    walk(&ws.join("target/runner-cache"), &mut found);
    found
}

/// The cache file holding the result of `test` (its payload names it).
fn entry_of(ws: &Path, test: &str) -> PathBuf {
    let needle = format!("{{\"name\":\"{test}\"");
    cache_files(ws)
        .into_iter()
        .find(|path| {
            std::fs::read(path).is_ok_and(|bytes| String::from_utf8_lossy(&bytes).contains(&needle))
        })
        .unwrap_or_else(|| panic!("no cache entry names {test}"))
}

// --- 1. cache entries are bound to their keys -----------------------------------------------

#[test]
fn a_cache_entry_copied_over_another_test_or_harness_is_not_trusted() {
    let (_dir, ws) = trust_crate("plain", "");
    let (cold, cold_report) = valgrind(&ws, "cold", false, &[]);
    assert_eq!(cold.code, 1, "{}", cold.stderr);
    let expected = verdict(&cold_report);
    assert!(
        expected.1.iter().any(|(_, test)| test == "tests::oob"),
        "{expected:?}"
    );
    // A passing test's entry over the failing one's, and the other harness's over a third.
    std::fs::copy(entry_of(&ws, "tests::ok_a"), entry_of(&ws, "tests::oob")).unwrap();
    std::fs::copy(entry_of(&ws, "it_ok"), entry_of(&ws, "tests::ok_b")).unwrap();
    let (warm, warm_report) = valgrind(&ws, "warm", false, &[]);
    assert_eq!(warm.code, 1, "a swapped entry passed: {}", warm.stderr);
    assert_eq!(verdict(&warm_report), expected);
    let cache = &warm_report["stages"][0]["cache"];
    assert_eq!(cache["corrupt"], 2, "{cache}");
    assert_eq!(
        cache["tests"], 2,
        "only the untouched entries answer: {cache}"
    );
}

// --- 2. keys take paths as paths ---------------------------------------------------------------

#[test]
fn a_suppression_file_under_a_path_with_a_space_is_keyed_by_its_contents() {
    let (_dir, ws) = trust_crate("with space", "");
    let (first, _) = valgrind(&ws, "first", true, &[]);
    assert_eq!(first.code, 1, "{}", first.stderr);
    // The stage's ready-made suppressions hide the finding once listed in the config.
    let generated = ws.join("target/first/valgrind/suppressions.supp");
    std::fs::copy(&generated, ws.join("my.supp")).unwrap();
    let manifest = std::fs::read_to_string(ws.join("Cargo.toml")).unwrap()
        + "[package.metadata.runner.valgrind]\nsuppressions = [\"my.supp\"]\n";
    std::fs::write(ws.join("Cargo.toml"), manifest).unwrap();
    let (suppressed, _) = valgrind(&ws, "suppressed", false, &[]);
    assert_eq!(suppressed.code, 0, "{}", suppressed.stderr);
    // Emptied: the finding is back, as a `--no-cache` run says.
    std::fs::write(ws.join("my.supp"), "").unwrap();
    let (emptied, report) = valgrind(&ws, "emptied", false, &[]);
    assert_eq!(
        emptied.code, 1,
        "a stale PASS from the cache: {}",
        emptied.stderr
    );
    assert!(verdict(&report).1.iter().any(|(_, t)| t == "tests::oob"));
}

// --- cache.env ---------------------------------------------------------------------------------

#[test]
fn a_declared_environment_variable_is_part_of_every_key() {
    let (_dir, ws) = trust_crate(
        "env",
        "[package.metadata.runner.cache]\nenv = [\"TRUST_FLAG\"]\n",
    );
    let run_with = |value: &str, name: &str| {
        let out = ws.join("target").join(name);
        run(runner()
            .env_remove("RUNNER_NO_CACHE")
            .env("TRUST_FLAG", value)
            .args(["valgrind", "--jobs", "1", "--no-provision"])
            .arg(&ws)
            .arg("--out")
            .arg(&out))
    };
    let good = run_with("good", "good");
    assert_eq!(good.code, 1, "{}", good.stderr);
    let out = ws.join("target/bad");
    let bad = run_with("bad", "bad");
    assert_eq!(bad.code, 1, "{}", bad.stderr);
    let report = read_json(&out.join("report.json"));
    let failed: Vec<&Value> = report["stages"][0]["tests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["name"] == "tests::ok_b")
        .collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(
        failed[0]["outcome"], "failed",
        "answered from the cache: {report}"
    );
}

// --- 3. files runner does not own -------------------------------------------------------------

#[test]
fn a_durations_file_that_is_no_regular_file_is_refused_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let workspace = temp_crate(PLAIN_CRATE, "");
    let fifo = dir.path().join("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
    let link_to_fifo = dir.path().join("to-fifo");
    std::os::unix::fs::symlink(&fifo, &link_to_fifo).unwrap();
    for (file, word) in [
        (PathBuf::from("/dev/null"), "a device"),
        (fifo.clone(), "a FIFO"),
        (link_to_fifo, "a FIFO"),
        (dir.path().to_owned(), "a folder"),
    ] {
        let out = workspace.path().join("target/out");
        let started = Instant::now();
        let result = run(runner()
            .args(["-q", "all"])
            .arg(workspace.path())
            .args([
                "--skip",
                "miri,sanitizers,fuzz,coverage,valgrind",
                "--durations",
            ])
            .arg(&file)
            .arg("--out")
            .arg(&out));
        result.assert_one_line_error(word);
        assert!(result.stderr.contains("--durations"), "{}", result.stderr);
        assert!(started.elapsed() < Duration::from_secs(30));
        assert!(!out.exists(), "work began before the refusal");
    }
    let meta = std::fs::metadata("/dev/null").unwrap();
    assert!(std::os::unix::fs::FileTypeExt::is_char_device(
        &meta.file_type()
    ));
    assert!(std::os::unix::fs::FileTypeExt::is_fifo(
        &std::fs::symlink_metadata(&fifo).unwrap().file_type()
    ));
}

#[test]
fn a_durations_symlink_is_followed_and_its_target_updated() {
    let (_dir, ws) = trust_crate("durations", "");
    let real = ws.join("kept/durations.json");
    std::fs::create_dir_all(real.parent().unwrap()).unwrap();
    std::fs::write(&real, "{}").unwrap();
    let link = ws.join("durations-link.json");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let (result, _) = valgrind(&ws, "d", true, &["--durations", link.to_str().unwrap()]);
    assert_eq!(result.code, 1, "{}", result.stderr);
    assert!(std::fs::symlink_metadata(&link).unwrap().is_symlink());
    let written = read_json(&real);
    assert!(
        written["stages"]["valgrind"]
            .as_object()
            .is_some_and(|tests| tests.keys().any(|k| k.ends_with("tests::oob"))),
        "{written}"
    );
}

/// Holds the report folder's lock as a running job does.
fn hold_lock(out: &Path) -> std::fs::File {
    use std::io::Write;
    std::fs::create_dir_all(out).unwrap();
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(out.join(".runner-lock"))
        .unwrap();
    file.lock().unwrap();
    file.set_len(0).unwrap();
    writeln!(file, "pid 4242 (runner all elsewhere)").unwrap();
    file
}

#[test]
fn a_signal_ends_runner_wherever_it_waits() {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    let workspace = temp_crate(PLAIN_CRATE, "");
    let out = workspace.path().join("target/out");
    // Waiting for a report folder another job holds: a wait no child's loop watches.
    let _held = hold_lock(&out);
    std::fs::write(out.join(".runner-report"), "").unwrap();
    let mut child = runner()
        .arg("all")
        .arg(workspace.path())
        .args(["--skip", "miri,sanitizers,fuzz,coverage,valgrind", "--out"])
        .arg(&out)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(2));
    let pid = Pid::from_raw(i32::try_from(child.id()).unwrap());
    kill(pid, Signal::SIGTERM).unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(40) {
            let _ = child.kill();
            panic!("runner still waiting 40 s after SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(status.code(), Some(2));
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(stderr.contains("interrupted"), "{stderr}");
}

// --- 4. no process outlives a SIGKILL, whatever environment it carries ----------------------

#[test]
fn sigkill_of_runner_ends_a_tool_that_dropped_the_tree_tag() {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    // `env -u` stands for cargo-miri, which starts the interpreter with the environment of
    // the build it replays: the process carries no tag of this run.
    let manifest = format!(
        "{PLAIN_CRATE}[package.metadata.runner.soak]\n\
         command = [\"env\", \"-u\", \"RUNNER_TREE\", \"sleep\", \"31422\"]\n\
         duration = \"10m\"\ninterval = \"1s\"\n"
    );
    let workspace = temp_crate(&manifest, "");
    let child = runner()
        .arg("soak")
        .arg(workspace.path())
        .arg("--out")
        .arg(workspace.path().join("target/out"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_mins(2);
    while common::processes_mentioning("sleep 31422").is_empty() {
        assert!(Instant::now() < deadline, "soak never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Long enough for the watchdog to have noted the tree.
    std::thread::sleep(Duration::from_secs(1));
    kill(
        Pid::from_raw(i32::try_from(child.id()).unwrap()),
        Signal::SIGKILL,
    )
    .unwrap();
    let mut child = child;
    child.wait().unwrap();
    let gone_by = Instant::now() + Duration::from_secs(5);
    let mut left = common::processes_mentioning("sleep 31422");
    while !left.is_empty() && Instant::now() < gone_by {
        std::thread::sleep(Duration::from_millis(100));
        left = common::processes_mentioning("sleep 31422");
    }
    for line in &left {
        if let Some(pid) = line.split(':').next().and_then(|p| p.parse().ok()) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
    assert!(left.is_empty(), "outlived runner: {left:?}");
}

// --- 5, 6, 9. merge --------------------------------------------------------------------------

/// Two slices of a cheap partitioned run of `workspace`, in `<workspace>/target/s1|s2`.
fn slices(workspace: &Path) -> (PathBuf, PathBuf) {
    let dirs = (workspace.join("target/s1"), workspace.join("target/s2"));
    for (k, dir) in [(1, &dirs.0), (2, &dirs.1)] {
        let result = run(runner()
            .args(["-q", "all"])
            .arg(workspace)
            .args([
                "--skip",
                "miri,sanitizers,fuzz,coverage,valgrind",
                "--partition",
            ])
            .arg(format!("{k}/2"))
            .arg("--out")
            .arg(dir));
        assert!(dir.join("report.json").is_file(), "{}", result.stderr);
    }
    dirs
}

fn merge(dirs: &[&Path], out: &Path) -> Run {
    run(runner()
        .args(["-q", "merge"])
        .args(dirs)
        .arg("--out")
        .arg(out))
}

#[test]
fn merge_out_follows_the_report_folder_rules() {
    let workspace = temp_crate(PLAIN_CRATE, "");
    let (s1, s2) = slices(workspace.path());
    let slice_report = std::fs::read(s1.join("report.json")).unwrap();
    merge(&[&s1, &s2], &s1).assert_one_line_error("one of the slices");
    assert_eq!(std::fs::read(s1.join("report.json")).unwrap(), slice_report);
    let foreign = tempfile::tempdir().unwrap();
    std::fs::write(foreign.path().join("report.md"), "someone's notes").unwrap();
    merge(&[&s1, &s2], foreign.path()).assert_one_line_error("did not create");
    assert_eq!(
        std::fs::read_to_string(foreign.path().join("report.md")).unwrap(),
        "someone's notes"
    );
    merge(&[&s1, &s2], workspace.path()).assert_one_line_error("sources");
    assert!(!workspace.path().join("report.md").exists());
    let locked = workspace.path().join("target/locked");
    let _held = hold_lock(&locked);
    merge(&[&s1, &s2], &locked).assert_one_line_error("in use");
    assert!(!locked.join("report.json").exists());
    // And the rules leave a good folder usable.
    let good = merge(&[&s1, &s2], &workspace.path().join("target/merged"));
    assert!(
        workspace.path().join("target/merged/report.json").is_file(),
        "{}",
        good.stderr
    );
}

#[test]
fn merged_durations_keep_each_test_s_newest_measurement() {
    let workspace = temp_crate(PLAIN_CRATE, "");
    let (s1, s2) = slices(workspace.path());
    // Slice 1 measured `a` now; slice 2 copied in the older history it started from.
    std::fs::write(
        s1.join("durations.json"),
        r#"{"stages":{"miri":{"t u a":5.0,"t u b":2.0}},"measured_at":{"miri":{"t u a":1796000000000}}}"#,
    )
    .unwrap();
    std::fs::write(
        s2.join("durations.json"),
        r#"{"stages":{"miri":{"t u a":1.0,"t u b":2.0,"t u c":3.0}},"measured_at":{"miri":{"t u c":1796000000001}}}"#,
    )
    .unwrap();
    let out = workspace.path().join("target/merged");
    let _ = merge(&[&s1, &s2], &out);
    let merged = read_json(&out.join("durations.json"));
    assert_eq!(merged["stages"]["miri"]["t u a"], 5.0, "{merged}");
    assert_eq!(merged["stages"]["miri"]["t u c"], 3.0, "{merged}");
}

#[test]
fn a_corrupt_slice_report_is_named_as_the_slice_s() {
    let workspace = temp_crate(PLAIN_CRATE, "");
    let (s1, s2) = slices(workspace.path());
    std::fs::write(s2.join("report.json"), "garbage{").unwrap();
    let result = merge(&[&s1, &s2], &workspace.path().join("target/merged"));
    result.assert_one_line_error("slice's report");
    assert!(!result.stderr.contains("baseline"), "{}", result.stderr);
}

// --- 9. durations read, partitions printed ------------------------------------------------------

#[test]
fn partitions_refuse_absurd_durations_and_end_quietly_on_a_closed_stdout() {
    let dir = tempfile::tempdir().unwrap();
    for figure in ["-5.0", "1e308", "604801.0"] {
        let file = dir.path().join("bad.json");
        std::fs::write(
            &file,
            format!(r#"{{"stages":{{"miri":{{"t u a":{figure},"t u b":1.0}}}}}}"#),
        )
        .unwrap();
        let result = run(runner().arg("partitions").arg(&file));
        result.assert_one_line_error("not a usable durations file");
        assert!(!result.stdout.contains("NaN") && !result.stdout.contains("inf"));
    }
    // Enough lines that the reader is gone before runner is done printing.
    let tests: Vec<String> = (0..2000)
        .map(|i| format!("\"t u test_{i}\":{i}.5"))
        .collect();
    let file = dir.path().join("many.json");
    std::fs::write(
        &file,
        format!(
            r#"{{"stages":{{"miri":{{{}}},"valgrind":{{{}}}}}}}"#,
            tests.join(","),
            tests.join(",")
        ),
    )
    .unwrap();
    let mut child = runner()
        .arg("partitions")
        .arg(&file)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("internal error"), "{stderr}");
    assert!(!stderr.contains("Broken pipe"), "{stderr}");
    assert_eq!(output.status.code(), Some(0), "{stderr}");
}

// --- 8. declared inputs with symlink loops -------------------------------------------------

#[test]
fn declared_inputs_with_symlink_loops_are_walked_once() {
    let manifest =
        format!("{PLAIN_CRATE}[package.metadata.runner.cache]\ninputs = [\"tests/data/**\"]\n");
    let workspace = temp_crate(&manifest, "");
    let data = workspace.path().join("tests/data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("a.txt"), "a").unwrap();
    std::os::unix::fs::symlink(".", data.join("l1")).unwrap();
    std::os::unix::fs::symlink(".", data.join("l2")).unwrap();
    let mut child = runner()
        .env_remove("RUNNER_NO_CACHE")
        .args(["-q", "all"])
        .arg(workspace.path())
        .args(["--skip", "miri,sanitizers,fuzz,coverage,valgrind", "--out"])
        .arg(workspace.path().join("target/out"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_mins(1) {
            let _ = child.kill();
            panic!("declared inputs with loops still hashed after 60 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    // bench alone on a crate without benchmarks: the ordinary "nothing applied" ending.
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(!stderr.contains("memory allocation"), "{stderr}");
    assert!(!stderr.contains("cache.inputs"), "{stderr}");
}

// --- 9. the report folder: planted symlinks ------------------------------------------------

#[test]
fn a_planted_stage_folder_symlink_is_never_followed() {
    let (_dir, ws) = trust_crate("planted", "");
    let out = ws.join("target/out");
    let victim = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(victim.path().join("logs")).unwrap();
    std::fs::write(victim.path().join("logs/precious.txt"), "keep").unwrap();
    std::fs::write(victim.path().join("runner-std.supp"), "keep").unwrap();
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join(".runner-report"), "").unwrap();
    std::os::unix::fs::symlink(victim.path(), out.join("valgrind")).unwrap();
    let (result, report) = valgrind(&ws, "out", true, &[]);
    assert_eq!(result.code, 1, "{}", result.stderr);
    assert!(verdict(&report).1.iter().any(|(_, t)| t == "tests::oob"));
    assert_eq!(
        std::fs::read_to_string(victim.path().join("logs/precious.txt")).unwrap(),
        "keep"
    );
    assert_eq!(
        std::fs::read_to_string(victim.path().join("runner-std.supp")).unwrap(),
        "keep"
    );
    assert!(!std::fs::symlink_metadata(out.join("valgrind"))
        .unwrap()
        .is_symlink());
}

// --- 9. a valgrind repro says by its exit code that the error is there ------------------------

#[test]
fn a_pasted_valgrind_repro_exits_non_zero_while_the_error_reproduces() {
    let (_dir, ws) = trust_crate("repro", "");
    let (result, report) = valgrind(&ws, "out", true, &[]);
    assert_eq!(result.code, 1, "{}", result.stderr);
    let finding = report["stages"][0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["test"] == "tests::oob")
        .expect("the out-of-bounds finding");
    let repro = finding["repro"].as_str().unwrap();
    let pasted = std::process::Command::new("sh")
        .args(["-c", repro])
        .output()
        .unwrap();
    assert_eq!(
        pasted.status.code(),
        Some(99),
        "{repro}: {}",
        String::from_utf8_lossy(&pasted.stderr)
    );
}

// --- 7. a crash-registry record that cannot be read ------------------------------------------

#[test]
fn an_unreadable_crash_record_is_a_note_and_its_input_still_replays() {
    common::setup_once("fuzz");
    let copy = common::fixture_copy("fuzz-bugs");
    let ws = copy.path();
    for leftover in ["fuzz/corpus", "fuzz/artifacts"] {
        let _ = std::fs::remove_dir_all(ws.join(leftover));
    }
    // A registered crash whose record was damaged: its input still holds the trigger.
    let registered = ws.join("corpus/.crashes/chunk_tags");
    std::fs::create_dir_all(&registered).unwrap();
    std::fs::write(registered.join("0badc0de.json"), "garbage{").unwrap();
    std::fs::write(registered.join("0badc0de.input"), b"##BUG!##").unwrap();
    let out = ws.join("replay");
    let result = run(runner()
        .arg("fuzz")
        .arg(ws)
        .arg("--force-out")
        .arg("--out")
        .arg(&out)
        .arg("--corpus-dir")
        .arg(ws.join("corpus"))
        .args(["--mode", "replay", "--", "chunk_tags"])
        // The build folder the fuzz tests share: libFuzzer targets compile once.
        .env(
            "CARGO_TARGET_DIR",
            common::fixture("fuzz-bugs").join("target"),
        ));
    assert_eq!(
        result.code, 1,
        "the crash was not replayed: {}",
        result.stderr
    );
    let report = read_json(&out.join("report.json"));
    let stage = &report["stages"][0];
    let notes = stage["notes"].to_string();
    assert!(notes.contains("0badc0de.json"), "{notes}");
    assert!(
        stage["findings"]
            .as_array()
            .is_some_and(|findings| !findings.is_empty()),
        "{stage}"
    );
    assert!(
        registered.join("0badc0de.json").is_file(),
        "left for its owner"
    );
}

// --- Miri: cached test lists, and the interpreter after a SIGKILL -------------------------

/// A crate for Miri on the host alone: `lib_ub` reads out of bounds, the rest is fine;
/// `extra` goes into the library's tests.
fn miri_crate(name: &str, extra: &str) -> tempfile::TempDir {
    let manifest = format!(
        "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n[workspace]\n\
         [package.metadata.runner.miri]\ntargets = [\"host\"]\n"
    );
    let lib = format!(
        "pub fn read_past_end(values: &[u32]) -> u32 {{\n    let ptr = values.as_ptr();\n    \
         unsafe {{ ptr.add(values.len()).read() }}\n}}\n\n#[cfg(test)]\nmod tests {{\n    \
         #[test]\n    fn lib_ok() {{\n        assert_eq!(1 + 1, 2);\n    }}\n    #[test]\n    \
         fn lib_ub() {{\n        let values = vec![1u32, 2, 3];\n        \
         let _ = super::read_past_end(&values);\n    }}\n{extra}}}\n"
    );
    let dir = temp_crate(&manifest, &lib);
    std::fs::create_dir_all(dir.path().join("tests")).unwrap();
    std::fs::write(
        dir.path().join("tests/it.rs"),
        "#[test]\nfn it_ok() {\n    assert_eq!(2 + 2, 4);\n}\n",
    )
    .unwrap();
    dir
}

fn miri(ws: &Path, name: &str, extra: &[&str]) -> (Run, Value) {
    common::provisioned();
    let out = ws.join("target").join(name);
    let result = run(runner()
        .env_remove("RUNNER_NO_CACHE")
        .args(["miri", "--jobs", "2", "--no-provision"])
        .arg(ws)
        .arg("--out")
        .arg(&out)
        .args(extra));
    assert!(
        out.join("report.json").is_file(),
        "miri run {name} exited {}: {}",
        result.code,
        result.stderr
    );
    let report = read_json(&out.join("report.json"));
    (result, report)
}

#[test]
fn a_cached_miri_test_list_of_another_harness_is_not_trusted() {
    let copy = miri_crate("mtrust_list", "");
    let ws = copy.path();
    // A filter that every test matches: with a filter, a shard names its tests (without one,
    // a harness's only shard names none and would run whatever the harness has).
    let (cold, cold_report) = miri(ws, "cold", &["--", "_"]);
    assert_eq!(cold.code, 1, "{}", cold.stderr);
    let expected = verdict(&cold_report);
    assert!(
        expected.1.iter().any(|(_, t)| t == "tests::lib_ub"),
        "{expected:?}"
    );
    // The lists a cold run stores are keyed before its build settles; the second run's lists
    // are the ones later runs read.
    let (settled, _) = miri(ws, "settled", &["--", "_"]);
    assert_eq!(settled.code, 1, "{}", settled.stderr);
    // The integration test's list over every list of the library (found by the names it
    // holds), and a result of the library over the integration test's.
    let lists_of = |names: &str| -> Vec<PathBuf> {
        cache_files(ws)
            .into_iter()
            .filter(|path| {
                std::fs::read(path)
                    .is_ok_and(|bytes| String::from_utf8_lossy(&bytes).contains(names))
            })
            .collect()
    };
    let it_list = lists_of(r#"["it_ok"]"#).remove(0);
    let lib_lists = lists_of(r#"["tests::lib_ok","tests::lib_ub"]"#);
    assert!(!lib_lists.is_empty(), "no cached list of the library");
    for lib_list in lib_lists {
        std::fs::copy(&it_list, lib_list).unwrap();
    }
    std::fs::copy(entry_of(ws, "tests::lib_ok"), entry_of(ws, "it_ok")).unwrap();
    let (warm, warm_report) = miri(ws, "warm", &["--", "_"]);
    assert_eq!(warm.code, 1, "the library's UB is gone: {}", warm.stderr);
    assert_eq!(verdict(&warm_report), expected);
}

#[test]
fn sigkill_of_runner_ends_the_miri_interpreter_built_by_an_earlier_run() {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    let copy = miri_crate(
        "mtrust_kill",
        "    #[test]\n    fn spins() {\n        let mut n = 0u64;\n        \
         loop {\n            n = std::hint::black_box(n.wrapping_add(1));\n        }\n    }\n",
    );
    let ws = copy.path();
    // The first run builds the harness: cargo-miri records that run's environment (its tree
    // tag included) and the next run's interpreter starts with it.
    let (first, _) = miri(ws, "first", &["--", "lib_ok"]);
    assert!(first.code == 0 || first.code == 1, "{}", first.stderr);
    let child = runner()
        .env_remove("RUNNER_NO_CACHE")
        .args(["miri", "--jobs", "1", "--no-provision", "--no-cache"])
        .arg(ws)
        .arg("--out")
        .arg(ws.join("target/second"))
        .args(["--", "spins"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let needle = "--crate-name mtrust_kill";
    let deadline = Instant::now() + Duration::from_mins(3);
    while common::processes_mentioning(needle).is_empty() {
        assert!(Instant::now() < deadline, "the interpreter never started");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(2));
    kill(
        Pid::from_raw(i32::try_from(child.id()).unwrap()),
        Signal::SIGKILL,
    )
    .unwrap();
    let mut child = child;
    child.wait().unwrap();
    let gone_by = Instant::now() + Duration::from_secs(8);
    let mut left = common::processes_mentioning(needle);
    while !left.is_empty() && Instant::now() < gone_by {
        std::thread::sleep(Duration::from_millis(200));
        left = common::processes_mentioning(needle);
    }
    for line in &left {
        if let Some(pid) = line.split(':').next().and_then(|p| p.parse().ok()) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
    assert!(left.is_empty(), "outlived runner: {left:?}");
}

#[test]
fn a_corpus_folder_that_is_a_fifo_is_refused_before_fuzzing() {
    let copy = common::fixture_copy("fuzz-bugs");
    let fifo = copy.path().join("corpus-fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
    let started = Instant::now();
    let result = run(runner()
        .args(["-q", "fuzz"])
        .arg(copy.path())
        .args(["--no-provision", "--force-out", "--out"])
        .arg(copy.path().join("out"))
        .arg("--corpus-dir")
        .arg(&fifo)
        .args(["--mode", "replay", "--", "chunk_tags"])
        .env(
            "CARGO_TARGET_DIR",
            common::fixture("fuzz-bugs").join("target"),
        ));
    result.assert_one_line_error("a FIFO, not a folder");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "it fuzzed first"
    );
    assert!(std::os::unix::fs::FileTypeExt::is_fifo(
        &std::fs::symlink_metadata(&fifo).unwrap().file_type()
    ));
}
