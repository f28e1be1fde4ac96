//! Helpers shared by the end-to-end tests: running the real runner binary on fixtures.

#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

pub fn fixture(name: &str) -> PathBuf {
    repo_root().join("fixtures").join(name)
}

/// The runner binary with a clean environment for its children.
pub fn runner() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_runner"));
    // Fixtures are analysed in place, again and again: results come from a run, not the
    // result cache, unless a test asks for it (`tests/cache.rs`).
    command
        .env_remove("RUNNER_HERMETIC")
        .env("CI", "true")
        .env("RUNNER_NO_CACHE", "true");
    command
}

/// Stops a test that needs a system tool with one line naming the tool and the package that
/// provides it, instead of a bare exit-code assertion further down. `./test` installs them all.
/// Any one of `binaries` will do (the Nix shell has `qemu-s390x`, Debian `qemu-s390x-static`).
#[track_caller]
pub fn require_tool(binaries: &[&str], packages: &str) {
    let on_path = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .any(|dir| binaries.iter().any(|binary| dir.join(binary).is_file()));
    assert!(
        on_path,
        "this test needs `{}` on PATH: `sudo apt-get install -y {packages}` (./test installs it)",
        binaries.join("` or `")
    );
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

pub fn run(command: &mut Command) -> Run {
    let Output {
        status,
        stdout,
        stderr,
    } = command.output().expect("runner starts");
    Run {
        code: status
            .code()
            .expect("runner exits normally, not by a signal"),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

impl Run {
    /// The contract for bad input: exit 2, one line on stderr naming the problem, no panic.
    pub fn assert_one_line_error(&self, needle: &str) {
        assert_eq!(self.code, 2, "stderr: {}", self.stderr);
        let lines: Vec<&str> = self
            .stderr
            .lines()
            .filter(|l| l.starts_with("runner: error"))
            .collect();
        assert_eq!(
            lines.len(),
            1,
            "expected one error line, got: {}",
            self.stderr
        );
        assert!(
            lines[0].contains(needle),
            "`{}` does not mention `{needle}`",
            lines[0]
        );
        assert!(!self.stderr.contains("panicked"), "{}", self.stderr);
        assert!(!self.stderr.contains("stack backtrace"), "{}", self.stderr);
    }
}

/// One stage's run of the real runner on a fixture, with the report it wrote.
pub struct Analysed {
    pub run: Run,
    pub out: PathBuf,
    pub report: serde_json::Value,
}

/// Runs `runner <stage>` on a fixture, writing into `<fixture>/target/runner-tests/<out>`.
pub fn analyse(stage: &str, fixture_name: &str, out: &str) -> Analysed {
    let out = fixture(fixture_name).join("target/runner-tests").join(out);
    let run = run(runner()
        .arg(stage)
        .arg(fixture(fixture_name))
        .arg("--out")
        .arg(&out));
    let report = read_json(&out.join("report.json"));
    Analysed { run, out, report }
}

pub fn read_json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// A throwaway crate in a temporary directory.
pub fn temp_crate(cargo_toml: &str, lib_rs: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("src")).unwrap();
    std::fs::write(dir.path().join("Cargo.toml"), cargo_toml).unwrap();
    std::fs::write(dir.path().join("src/lib.rs"), lib_rs).unwrap();
    dir
}

/// Whether any live (non-zombie) process mentions `needle` on its command line.
pub fn processes_mentioning(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let pid = entry.file_name().to_string_lossy().into_owned();
        if !pid.chars().all(|c| c.is_ascii_digit()) {
            continue;
        }
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        let zombie = stat
            .rsplit(") ")
            .next()
            .is_some_and(|rest| rest.starts_with('Z'));
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if !zombie && cmdline.contains(needle) && pid != std::process::id().to_string() {
            found.push(format!("{pid}: {cmdline}"));
        }
    }
    found
}

/// Replaces what changes between machines and runs (paths, durations, Miri's allocation ids,
/// the toolchain) so that a report can be compared with a stored snapshot.
pub fn redact(text: &str, workspace: &Path) -> String {
    let mut out = text.replace(&workspace.display().to_string(), "[workspace]");
    let pin = pinned_channel();
    out = out.replace(&pin, "[pin]");
    let home = std::env::var("HOME").unwrap_or_default();
    if !home.is_empty() {
        out = out.replace(&home, "[home]");
    }
    let mut redacted = String::new();
    for line in out.lines() {
        // The run id differs on every run and says nothing about the findings.
        if line.trim_start().starts_with("\"run_id\":") || line.starts_with("<!-- runner run id:") {
            continue;
        }
        let mut line = redact_numbers_after(line, "alloc", "N");
        line = redact_numbers_after(&line, "<", "TAG");
        // Miri numbers unnamed threads in spawn order, which depends on the shard's tests.
        line = redact_numbers_after(&line, "unnamed-", "N");
        if line.starts_with("- Duration:") {
            "- Duration: [duration]".clone_into(&mut line);
        }
        // The commit analysed changes with every commit of this repository.
        if line.trim_start().starts_with("\"revision\":") {
            "  \"revision\": \"[revision]\",".clone_into(&mut line);
        }
        if line.contains("\"duration_ms\"") || line.contains("\"overhead_ms\"") {
            line = line.split(':').next().unwrap_or_default().to_owned() + ": 0,";
        }
        if line.starts_with('|') && line.ends_with("s |") {
            if let Some(cut) = line[..line.len() - 2].rfind('|') {
                line = format!("{}| [duration] |", &line[..cut]);
            }
        }
        redacted.push_str(&line);
        redacted.push('\n');
    }
    redacted
}

fn redact_numbers_after(line: &str, marker: &str, replacement: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(index) = rest.find(marker) {
        out.push_str(&rest[..index + marker.len()]);
        rest = &rest[index + marker.len()..];
        let digits = rest.chars().take_while(char::is_ascii_digit).count();
        if digits > 0 {
            out.push_str(replacement);
            rest = &rest[digits..];
        }
    }
    out.push_str(rest);
    out
}

pub fn pinned_channel() -> String {
    let pin = std::fs::read_to_string(repo_root().join("pin/toolchain.toml")).unwrap();
    let table: toml::Table = toml::from_str(&pin).unwrap();
    table["toolchain"]["channel"].as_str().unwrap().to_owned()
}

/// Compares `actual` with the stored snapshot; `RUNNER_BLESS=1` rewrites it instead.
pub fn assert_snapshot(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots")
        .join(name);
    if std::env::var_os("RUNNER_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("no snapshot {}: run with RUNNER_BLESS=1", path.display()));
    if expected != actual {
        let actual_path = path.with_extension("actual");
        std::fs::write(&actual_path, actual).unwrap();
        panic!(
            "{} differs from its snapshot; see {} (RUNNER_BLESS=1 accepts it)",
            path.display(),
            actual_path.display()
        );
    }
}

/// Copies a fixture into a fresh temporary directory, so that its processes and builds can
/// be told apart from every other test's.
pub fn fixture_copy(name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&fixture(name), dir.path());
    dir
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let name = entry.file_name();
        if name == "target" || name == ".runner" {
            continue;
        }
        let path = entry.path();
        if path.is_dir() {
            copy_dir(&path, &to.join(&name));
        } else {
            std::fs::copy(&path, to.join(&name)).unwrap();
        }
    }
}

/// A rustup home whose only toolchain is the machine's stable one, as on a fresh machine.
pub fn link_stable_toolchain(home: &Path) {
    let real_home = std::env::var("RUSTUP_HOME")
        .unwrap_or_else(|_| format!("{}/.rustup", std::env::var("HOME").unwrap()));
    let stable = std::fs::read_dir(format!("{real_home}/toolchains"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|name| name.starts_with("stable-"))
        .expect("a stable toolchain is installed");
    std::fs::create_dir(home.join("toolchains")).unwrap();
    std::os::unix::fs::symlink(
        format!("{real_home}/toolchains/{stable}"),
        home.join("toolchains").join(&stable),
    )
    .unwrap();
    std::fs::write(
        home.join("settings.toml"),
        format!("version = \"12\"\ndefault_toolchain = \"{stable}\"\nprofile = \"minimal\"\n"),
    )
    .unwrap();
}

/// Makes sure the pinned toolchain, its components and the Miri sysroots are installed before
/// a test runs a stage, the way a user would: `runner setup`. A file lock serialises the test
/// binaries, so on a fresh machine one of them installs and the others then find everything
/// present.
pub fn provisioned() {
    setup_once("miri");
}

/// `runner setup --stages <stages>`, once per test binary; a file lock serialises the test
/// binaries, so concurrent installs of one tool never race.
pub fn setup_once(stages: &'static str) {
    static DONE: std::sync::Mutex<Vec<&'static str>> = std::sync::Mutex::new(Vec::new());
    let mut done = DONE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if done.contains(&stages) {
        return;
    }
    let lock_path = repo_root().join("target").join("runner-tests-setup.lock");
    std::fs::create_dir_all(lock_path.parent().unwrap()).unwrap();
    let lock = std::fs::File::create(&lock_path).unwrap();
    lock.lock().unwrap();
    let result = run(runner().args(["setup", "--stages", stages]));
    lock.unlock().unwrap();
    assert_eq!(
        result.code, 0,
        "runner setup failed:\n{}{}",
        result.stdout, result.stderr
    );
    done.push(stages);
}

/// The stage called `name` in a report.json.
pub fn stage_named<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    report["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["stage"] == name)
        .unwrap_or_else(|| panic!("the report has no {name} stage"))
}
