//! Fault injection: absurd values, hostile paths, concurrent runs, unusable report folders and
//! interrupts. Each scenario checks the documented exit code, one line on stderr for an error,
//! no panic, and reports that are never mixed from two runs.

mod common;

use std::path::Path;

use common::{fixture, run, runner, temp_crate, Run};

const PLAIN_CRATE: &str =
    "[package]\nname = \"p\"\nversion = \"0.1.0\"\nedition = \"2021\"\n[workspace]\n";

/// The cheapest run that goes all the way to a report: `all` with only the bench stage left,
/// which a crate without benchmarks answers at once (SKIPPED, so nothing was checked: exit 2).
fn cheap_run(workspace: &Path, out: &Path) -> std::process::Command {
    let mut command = runner();
    command
        .arg("all")
        .arg(workspace)
        .args(["--skip", "miri,sanitizers,fuzz,coverage,valgrind"])
        .arg("--out")
        .arg(out);
    command
}

/// The error contract, plus: nothing else on stderr at all with `-q`.
fn assert_quiet_error(result: &Run, needle: &str) {
    result.assert_one_line_error(needle);
    assert_eq!(result.stderr.lines().count(), 1, "{}", result.stderr);
}

// --- absurd values on the command line -------------------------------------------------------

#[test]
fn a_timeout_past_the_end_of_time_is_an_error_not_a_panic() {
    let out = tempfile::tempdir().unwrap();
    for timeout in ["9999999999999999h", "99999999999999999999", "8785h"] {
        let result = run(runner()
            .args(["-q", "bench"])
            .arg(fixture("clean"))
            .args(["--timeout", timeout])
            .arg("--out")
            .arg(out.path()));
        assert_quiet_error(&result, "too large");
        assert!(result.stderr.contains("--timeout"), "{}", result.stderr);
    }
}

#[test]
fn zero_and_empty_values_are_refused() {
    let cases: [(&[&str], &str); 5] = [
        (&["--timeout", "0"], "--timeout"),
        (&["--timeout", "0s"], "--timeout"),
        (&["--fuzz-time", "0"], "--fuzz-time"),
        (&["--fuzz-time", "99999999999999999999h"], "--fuzz-time"),
        (&["--out", ""], "--out"),
    ];
    for (args, needle) in cases {
        let result = run(runner()
            .args(["-q", "fuzz"])
            .arg(fixture("clean"))
            .args(args));
        assert_quiet_error(&result, needle);
    }
}

#[test]
fn absurd_job_counts_are_refused() {
    for jobs in ["0", "1000000", "99999999999999999999999"] {
        let result = run(runner()
            .args(["-q", "bench"])
            .arg(fixture("clean"))
            .args(["--jobs", jobs]));
        assert_quiet_error(&result, "jobs");
    }
}

// --- absurd values in the config -------------------------------------------------------------

/// Every duration and count key with a value that once exhausted the machine or panicked.
const ABSURD_KEYS: [(&str, &str, &str); 17] = [
    ("", "timeout = \"9999999999999999h\"", "timeout"),
    ("", "timeout = \"0s\"", "timeout"),
    ("miri", "seeds = 4000000000", "miri.seeds"),
    ("miri", "seeds = 0", "miri.seeds"),
    ("fuzz", "time = \"9999999999999999h\"", "fuzz.time"),
    (
        "fuzz",
        "total-time = \"9999999999999999h\"",
        "fuzz.total-time",
    ),
    (
        "fuzz",
        "input-timeout = \"99999999999999999999\"",
        "fuzz.input-timeout",
    ),
    (
        "fuzz",
        "minimize-time = \"9999999999999999h\"",
        "fuzz.minimize-time",
    ),
    (
        "fuzz",
        "rss-limit-mb = 9223372036854775807",
        "fuzz.rss-limit-mb",
    ),
    ("fuzz", "max-len = 0", "fuzz.max-len"),
    (
        "coverage",
        "line-threshold = -5.0",
        "coverage.line-threshold",
    ),
    (
        "coverage",
        "branch-threshold = nan",
        "coverage.branch-threshold",
    ),
    (
        "coverage",
        "function-threshold = inf",
        "coverage.function-threshold",
    ),
    ("bench", "noise = -1.0", "bench.noise"),
    (
        "bench",
        "profile-time = \"9999999999999999h\"",
        "bench.profile-time",
    ),
    (
        "soak",
        "interval = \"99999999999999999ms\"",
        "soak.interval",
    ),
    ("docker", "pids-limit = 0", "docker.pids-limit"),
];

#[test]
fn absurd_config_values_name_their_key() {
    for (table, line, key) in ABSURD_KEYS {
        let header = if table.is_empty() {
            "[package.metadata.runner]".to_owned()
        } else {
            format!("[package.metadata.runner.{table}]")
        };
        let dir = temp_crate(&format!("{PLAIN_CRATE}{header}\n{line}\n"), "");
        // `plan` reads the config like every command, and runs nothing.
        let result = run(runner().args(["-q", "plan"]).arg(dir.path()));
        assert_quiet_error(&result, &format!("`{key}`"));
    }
}

#[test]
fn a_number_beyond_toml_names_its_key() {
    let manifest = format!(
        "{PLAIN_CRATE}[package.metadata.runner.fuzz]\nrss-limit-mb = 99999999999999999999\n"
    );
    let dir = temp_crate(&manifest, "");
    let result = run(runner().args(["-q", "fuzz"]).arg(dir.path()));
    assert_quiet_error(&result, "rss-limit-mb");
}

// --- hostile paths ---------------------------------------------------------------------------

#[test]
fn a_symlink_loop_is_not_called_missing() {
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(dir.path().join("b"), dir.path().join("a")).unwrap();
    std::os::unix::fs::symlink(dir.path().join("a"), dir.path().join("b")).unwrap();
    let result = run(runner().args(["-q", "bench"]).arg(dir.path().join("a")));
    assert_quiet_error(&result, "symbolic links");
    assert!(
        !result.stderr.contains("does not exist"),
        "{}",
        result.stderr
    );
}

#[test]
fn quiet_errors_are_one_line() {
    let out = tempfile::tempdir().unwrap();
    // The bench stage has nothing to measure in `clean`: an ERROR, so exit 2 with one line.
    let result = run(runner()
        .args(["-q", "bench"])
        .arg(fixture("clean"))
        .arg("--out")
        .arg(out.path().join("report")));
    assert_quiet_error(&result, "no benchmarks");
}

// --- panics ----------------------------------------------------------------------------------

#[test]
fn a_panic_in_a_stage_is_its_error_and_the_report_is_kept() {
    let out = tempfile::tempdir().unwrap();
    let result = run(cheap_run(&fixture("clean"), out.path()).env("RUNNER_INJECT_PANIC", "bench"));
    result.assert_one_line_error("internal error: injected fault at bench");
    assert!(
        result.stderr.contains("please report it"),
        "{}",
        result.stderr
    );
    let report = common::read_json(&out.path().join("report.json"));
    assert_eq!(report["stages"][0]["status"], "ERROR", "{report}");
}

#[test]
fn a_panic_outside_the_stages_is_one_line_and_exit_2() {
    let result = run(runner()
        .args(["plan"])
        .arg(fixture("clean"))
        .env("RUNNER_INJECT_PANIC", "start"));
    assert_eq!(result.code, 2, "{}", result.stderr);
    assert_eq!(result.stderr.lines().count(), 1, "{}", result.stderr);
    let line = result.stderr.trim();
    assert!(
        line.starts_with("runner: internal error: injected fault at start at runner/src/guard.rs:"),
        "{line}"
    );
    assert!(line.ends_with(", please report it"), "{line}");
}

// --- concurrent runs -------------------------------------------------------------------------

/// The temporary files in a folder (what a writer that died mid-way leaves).
fn temporaries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| {
            Path::new(name)
                .extension()
                .is_some_and(|ext| ext.eq_ignore_ascii_case("tmp"))
        })
        .collect()
}

/// Every file of the report set is whole and carries one run id.
fn assert_one_run(out: &Path) -> String {
    let mut ids = Vec::new();
    for name in ["report.json", "report.md", "report.sarif", "junit.xml"] {
        let text = std::fs::read_to_string(out.join(name)).unwrap();
        match name {
            "report.json" | "report.sarif" => {
                serde_json::from_str::<serde_json::Value>(&text)
                    .unwrap_or_else(|e| panic!("{name} is not whole JSON: {e}\n{text}"));
            }
            "report.md" => assert!(text.starts_with('#'), "{name}: {text}"),
            _ => assert!(text.starts_with("<?xml"), "{name}: {text}"),
        }
        ids.push(runner::report::write::run_id_of(name, &text).expect("a run id"));
    }
    assert!(ids.iter().all(|id| *id == ids[0]), "mixed set: {ids:?}");
    let leftovers = temporaries(out);
    assert!(leftovers.is_empty(), "temporaries left: {leftovers:?}");
    ids.swap_remove(0)
}

#[test]
fn ten_concurrent_runs_on_one_report_folder_never_mix() {
    let workspace = common::fixture_copy("clean");
    let out = workspace.path().join("target/runner");
    let children: Vec<_> = (0..10)
        .map(|_| {
            cheap_run(workspace.path(), &out)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        let errors = stderr
            .lines()
            .filter(|l| l.starts_with("runner: error"))
            .count();
        assert_eq!(errors, 1, "{stderr}");
        assert!(stderr.contains("no stage applied"), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    assert_one_run(&out);
    // The report set is usable as a baseline, as it is.
    let result = run(cheap_run(workspace.path(), &out)
        .arg("--baseline")
        .arg(out.join("report.json")));
    result.assert_one_line_error("no stage applied");
}

/// Holds the report folder's lock as another runner would, naming itself in it.
fn hold_lock(out: &Path) -> std::fs::File {
    use std::io::Write;
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
fn a_busy_report_folder_is_waited_for_or_refused_with_no_wait() {
    let workspace = common::fixture_copy("clean");
    let out = workspace.path().join("target/runner");
    run(&mut cheap_run(workspace.path(), &out));
    let holder = hold_lock(&out);
    let before = std::fs::read_to_string(out.join("report.json")).unwrap();

    let refused = run(cheap_run(workspace.path(), &out).arg("--no-wait"));
    refused.assert_one_line_error("in use by pid 4242 (runner all elsewhere)");
    assert_eq!(
        std::fs::read_to_string(out.join("report.json")).unwrap(),
        before
    );

    let waiting = cheap_run(workspace.path(), &out)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert_eq!(
        std::fs::read_to_string(out.join("report.json")).unwrap(),
        before
    );
    holder.unlock().unwrap();
    let output = waiting.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    let waited: Vec<_> = stderr
        .lines()
        .filter(|l| l.contains("waiting for"))
        .collect();
    assert_eq!(waited.len(), 1, "{stderr}");
    assert!(
        waited[0].contains("pid 4242 (runner all elsewhere)"),
        "{stderr}"
    );
    assert_one_run(&out);
}

// --- the report folder -----------------------------------------------------------------------

#[test]
fn a_foreign_folder_is_never_used_or_cleaned() {
    let workspace = common::fixture_copy("clean");
    let elsewhere = tempfile::tempdir().unwrap();
    let victim = elsewhere.path().join("victim");
    std::fs::create_dir_all(victim.join("valgrind/logs")).unwrap();
    std::fs::write(victim.join("valgrind/logs/precious.txt"), "keep").unwrap();
    let result = run(runner()
        .args(["valgrind"])
        .arg(workspace.path())
        .arg("--out")
        .arg(&victim));
    result.assert_one_line_error("did not create");
    assert_eq!(
        std::fs::read_to_string(victim.join("valgrind/logs/precious.txt")).unwrap(),
        "keep"
    );
    assert_eq!(std::fs::read_dir(&victim).unwrap().count(), 1);
}

#[test]
fn a_report_folder_among_the_sources_needs_force_out() {
    let workspace = common::fixture_copy("clean");
    let out = workspace.path().join("reports");
    let refused = run(&mut cheap_run(workspace.path(), &out));
    refused.assert_one_line_error("--force-out");
    assert!(!out.exists());
    let forced = run(cheap_run(workspace.path(), &out).arg("--force-out"));
    forced.assert_one_line_error("no stage applied");
    assert_one_run(&out);
}

#[test]
fn a_planted_symlink_in_the_report_folder_is_not_followed() {
    let workspace = common::fixture_copy("clean");
    let out = workspace.path().join("target/runner");
    run(&mut cheap_run(workspace.path(), &out));
    let victim = workspace.path().join("victim.txt");
    std::fs::write(&victim, "precious").unwrap();
    // The name every report file was once written through.
    std::os::unix::fs::symlink(&victim, out.join("report.tmp")).unwrap();
    let result = run(&mut cheap_run(workspace.path(), &out));
    result.assert_one_line_error("no stage applied");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    std::fs::remove_file(out.join("report.tmp")).unwrap();
    assert_one_run(&out);
}

/// A tmpfs of `size` at `dir`, or `None` where this process may not mount (not root, or no
/// mount namespace rights): the scenario is then skipped with a note.
fn tmpfs(dir: &Path, options: &str) -> Option<Mounted> {
    std::fs::create_dir_all(dir).unwrap();
    let status = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", options, "tmpfs"])
        .arg(dir)
        .stderr(std::process::Stdio::null())
        .status()
        .ok()?;
    if status.success() {
        Some(Mounted(dir.to_owned()))
    } else {
        eprintln!("skipped: cannot mount a tmpfs here");
        None
    }
}

struct Mounted(std::path::PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_read_only_report_folder_is_one_line_and_exit_2() {
    let workspace = common::fixture_copy("clean");
    let out = workspace.path().join("target/readonly");
    let Some(_mounted) = tmpfs(&out, "ro,size=1m") else {
        return;
    };
    let result = run(&mut cheap_run(workspace.path(), &out));
    result.assert_one_line_error("not writable");
}

#[test]
fn a_full_report_folder_is_one_line_and_exit_2_and_leaves_no_half_file() {
    let workspace = common::fixture_copy("clean");
    let out = workspace.path().join("target/full");
    let Some(_mounted) = tmpfs(&out, "size=64k") else {
        return;
    };
    // Fill the disk up to a little room, a page more each time, so that the run fails at
    // every step of writing the set: marker, lock, each report file.
    for free_pages in 0..8_u64 {
        for entry in std::fs::read_dir(&out).unwrap().flatten() {
            let _ = std::fs::remove_file(entry.path());
        }
        let filler = out.join("filler");
        let mut size = 64 * 1024;
        while size > 0 {
            if std::fs::write(&filler, vec![0_u8; size]).is_ok() {
                break;
            }
            size -= 4096;
        }
        let shrink = (size as u64).saturating_sub(free_pages * 4096);
        std::fs::write(&filler, vec![0_u8; usize::try_from(shrink).unwrap()]).unwrap();
        // A foreign file: the folder is marked as runner's so that it is accepted.
        let _ = std::fs::write(out.join(".runner-report"), "");
        let result = run(&mut cheap_run(workspace.path(), &out));
        assert_eq!(result.code, 2, "{}", result.stderr);
        let errors: Vec<_> = result
            .stderr
            .lines()
            .filter(|l| l.starts_with("runner: "))
            .filter(|l| !l.starts_with("runner: warning"))
            .collect();
        assert_eq!(errors.len(), 1, "{}", result.stderr);
        assert!(!result.stderr.contains("panicked"), "{}", result.stderr);
        for name in ["report.json", "report.sarif"] {
            if let Ok(text) = std::fs::read_to_string(out.join(name)) {
                serde_json::from_str::<serde_json::Value>(&text)
                    .unwrap_or_else(|e| panic!("half a {name} with {free_pages} pages: {e}"));
            }
        }
        let leftovers = temporaries(&out);
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }
}

#[test]
fn a_full_target_dir_is_one_line_and_exit_2() {
    let workspace = common::fixture_copy("clean");
    let target = workspace.path().join("full-target");
    let Some(_mounted) = tmpfs(&target, "size=4k,nr_inodes=2") else {
        return;
    };
    let out = tempfile::tempdir().unwrap();
    let result = run(cheap_run(workspace.path(), out.path()).env("CARGO_TARGET_DIR", &target));
    assert_eq!(result.code, 2, "{}", result.stderr);
    let errors = result
        .stderr
        .lines()
        .filter(|l| l.starts_with("runner: error"))
        .count();
    assert_eq!(errors, 1, "{}", result.stderr);
    assert!(!result.stderr.contains("panicked"), "{}", result.stderr);
}

// --- hostile paths ---------------------------------------------------------------------------

#[test]
fn hostile_workspace_and_report_paths_stay_data() {
    let parent = tempfile::tempdir().unwrap();
    let names = [
        "-dash",
        "a space",
        "a 'quote\" mark",
        "$(touch x)",
        "new\nline",
        "ünïcødé ✓",
        "a:colon,comma",
    ];
    for name in names {
        let workspace = parent.path().join(name);
        std::fs::create_dir_all(workspace.join("src")).unwrap();
        std::fs::copy(
            fixture("clean").join("Cargo.toml"),
            workspace.join("Cargo.toml"),
        )
        .unwrap();
        std::fs::copy(
            fixture("clean").join("src/lib.rs"),
            workspace.join("src/lib.rs"),
        )
        .unwrap();
        let out = parent.path().join(format!("out {name}"));
        let result = run(cheap_run(&workspace, &out).current_dir(parent.path()));
        assert_eq!(result.code, 2, "{name:?}: {}", result.stderr);
        assert!(!result.stderr.contains("panicked"), "{}", result.stderr);
        if result.stderr.contains("no stage applied") {
            assert_one_run(&out);
        } else {
            // Cargo itself may refuse a path (a newline in it): one line that says so.
            result.assert_one_line_error("workspace");
        }
    }
    assert!(
        !parent.path().join("x").exists(),
        "a path was run as a command"
    );
}

// --- interrupts ------------------------------------------------------------------------------

#[test]
fn ctrl_c_during_provisioning_stops_the_installer() {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    use std::os::unix::fs::PermissionsExt;

    let out = tempfile::tempdir().unwrap();
    for command in ["setup", "bench"] {
        // A rustup that knows no toolchain and installs forever: runner must stop it.
        let bin = tempfile::tempdir().unwrap();
        let marker = format!("3141{}", if command == "setup" { 5 } else { 6 });
        let rustup = bin.path().join("rustup");
        std::fs::write(
            &rustup,
            format!(
                "#!/bin/sh\ncase \"$1 $2\" in\n  \"toolchain list\") echo stable-x86_64-unknown-linux-gnu ;;\n  \"toolchain install\") exec sleep {marker} ;;\n  *) exit 1 ;;\nesac\n"
            ),
        )
        .unwrap();
        std::fs::set_permissions(&rustup, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = format!(
            "{}:{}",
            bin.path().display(),
            std::env::var("PATH").unwrap()
        );
        let mut child = runner();
        child.env("PATH", path);
        if command == "setup" {
            child.args(["setup", "--stages", "bench"]);
        } else {
            child
                .arg("bench")
                .arg(fixture("clean"))
                .arg("--out")
                .arg(out.path());
        }
        let child = child
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let needle = format!("sleep {marker}");
        let deadline = std::time::Instant::now() + std::time::Duration::from_mins(1);
        while common::processes_mentioning(&needle).is_empty() {
            assert!(
                std::time::Instant::now() < deadline,
                "the installer never started"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        kill(
            Pid::from_raw(i32::try_from(child.id()).unwrap()),
            Signal::SIGINT,
        )
        .unwrap();
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{command}: {stderr}");
        let errors: Vec<_> = stderr
            .lines()
            .filter(|l| l.starts_with("runner: error"))
            .collect();
        assert_eq!(errors.len(), 1, "{stderr}");
        assert!(errors[0].contains("interrupted"), "{stderr}");
        let left = common::processes_mentioning(&needle);
        assert!(left.is_empty(), "installer left running: {left:?}");
    }
}

// --- SIGKILL ---------------------------------------------------------------------------------

#[test]
fn sigkill_mid_stage_keeps_what_finished_and_frees_the_folder() {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;

    let manifest = format!(
        "{PLAIN_CRATE}[package.metadata.runner.soak]\ncommand = [\"sleep\", \"31417\"]\n\
         duration = \"10m\"\ninterval = \"1s\"\n"
    );
    let workspace = temp_crate(&manifest, "");
    let out = workspace.path().join("target/runner");
    // bench first (an ERROR at once: no benchmarks, so its report is written), then soak,
    // which runs until it is killed.
    let child = runner()
        .arg("all")
        .arg(workspace.path())
        .args(["--stages", "bench,soak", "--out"])
        .arg(&out)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = Pid::from_raw(i32::try_from(child.id()).unwrap());
    let deadline = std::time::Instant::now() + std::time::Duration::from_mins(2);
    while common::processes_mentioning("sleep 31417").is_empty() {
        assert!(std::time::Instant::now() < deadline, "soak never started");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    kill(pid, Signal::SIGKILL).unwrap();
    let mut child = child;
    child.wait().unwrap();
    // A tool runner started outlives a SIGKILL of runner (it sits in its own process group);
    // stopped here so that it does not outlive the test.
    for line in common::processes_mentioning("sleep 31417") {
        if let Some(pid) = line.split(':').next().and_then(|p| p.parse().ok()) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }

    let report = common::read_json(&out.join("report.json"));
    assert_eq!(report["partial"], true, "{report}");
    assert_eq!(report["stages"][0]["stage"], "bench", "{report}");
    assert_one_run(&out);
    // The kernel released the dead run's lock: the next run neither waits nor is refused.
    let next = run(runner()
        .arg("bench")
        .arg(workspace.path())
        .args(["--no-wait", "--out"])
        .arg(&out));
    next.assert_one_line_error("no benchmarks");
}

// --- docker ----------------------------------------------------------------------------------

#[test]
fn docker_accepts_the_mounts_of_hostile_paths_and_limits() {
    // Any image will do to see docker accept the command line: one without runner answers
    // "exec failed" (exit 127) once the container runs, where a refused mount, network or
    // limit option is docker's own exit 125 before it starts.
    let image = "debian:bookworm-slim";
    let present = std::process::Command::new("docker")
        .args(["image", "inspect", image])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if !present {
        eprintln!("skipped: no docker daemon with {image}");
        return;
    }
    let parent = tempfile::tempdir().unwrap();
    let workspace = parent.path().join("a:b,c");
    std::fs::create_dir_all(workspace.join("src")).unwrap();
    std::fs::write(
        workspace.join("Cargo.toml"),
        format!(
            "{PLAIN_CRATE}[package.metadata.runner.docker]\nmemory = \"512m\"\npids-limit = 256\n"
        ),
    )
    .unwrap();
    std::fs::write(workspace.join("src/lib.rs"), "").unwrap();
    let result = run(runner()
        .args([
            "bench",
            "a:b,c",
            "--in",
            "docker",
            "--image",
            image,
            "--offline",
        ])
        .args(["--out", "relative out"])
        .current_dir(parent.path()));
    result.assert_one_line_error("exit status 127");
    assert!(parent.path().join("relative out/.runner-report").is_file());
}

#[test]
fn a_stage_build_folder_is_one_run_at_a_time_across_report_folders() {
    let manifest = format!(
        "{PLAIN_CRATE}[package.metadata.runner.soak]\ncommand = [\"sleep\", \"60\"]\n\
         duration = \"4s\"\ninterval = \"500ms\"\n"
    );
    let workspace = temp_crate(&manifest, "");
    let first_out = workspace.path().join("target/first");
    let first = runner()
        .arg("soak")
        .arg(workspace.path())
        .arg("--out")
        .arg(&first_out)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let lock = workspace.path().join("target/runner-build/soak.lock");
    let deadline = std::time::Instant::now() + std::time::Duration::from_mins(1);
    while std::fs::read_to_string(&lock)
        .unwrap_or_default()
        .is_empty()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the first run never locked"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let second = run(runner()
        .arg("soak")
        .arg(workspace.path())
        .args(["--no-wait", "--out"])
        .arg(workspace.path().join("target/second")));
    second.assert_one_line_error("the soak build folder");
    assert!(
        second
            .stderr
            .contains(&format!("in use by pid {}", first.id())),
        "{}",
        second.stderr
    );
    let mut first = first;
    assert!(first.wait().unwrap().code().is_some());
}

#[test]
fn a_tool_killed_mid_test_is_reported_not_a_panic() {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;

    common::provisioned();
    let workspace = common::fixture_copy("miri-slow");
    let out = workspace.path().join("target/runner");
    let child = runner()
        .arg("miri")
        .arg(workspace.path())
        .arg("--out")
        .arg(&out)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The Miri interpreter itself (not cargo or cargo-miri) of one of the fixture's tests.
    let deadline = std::time::Instant::now() + std::time::Duration::from_mins(4);
    let interpreter = loop {
        let found = common::processes_mentioning(&workspace.path().display().to_string())
            .into_iter()
            .find(|line| {
                line.split_once(": ")
                    .and_then(|(_, cmdline)| cmdline.split(' ').next())
                    .is_some_and(|program| program.ends_with("/miri"))
            });
        if let Some(line) = found {
            break line;
        }
        assert!(std::time::Instant::now() < deadline, "Miri never started");
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let pid: i32 = interpreter.split(':').next().unwrap().parse().unwrap();
    kill(Pid::from_raw(pid), Signal::SIGKILL).unwrap();
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let code = output.status.code();
    assert!(matches!(code, Some(1 | 2)), "{code:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    if code == Some(2) {
        let errors = stderr
            .lines()
            .filter(|l| l.starts_with("runner: error"))
            .count();
        assert_eq!(errors, 1, "{stderr}");
    }
    let report = common::read_json(&out.join("report.json"));
    assert_eq!(report["stages"][0]["stage"], "miri", "{report}");
    assert_one_run(&out);
    let left = common::processes_mentioning(&workspace.path().display().to_string());
    assert!(left.is_empty(), "processes left behind: {left:#?}");
}
