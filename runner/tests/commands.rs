//! `plan`, `doctor` and `setup` do real work: plans name real argv, doctor inspects the
//! machine, setup installs the pinned versions once and nothing the second time.

mod common;

use common::{fixture, pinned_channel, run, runner};

#[test]
fn plan_prints_argv_env_and_target_dir_without_running_anything() {
    let out = tempfile::tempdir().unwrap();
    let result = run(runner()
        .arg("plan")
        .arg(fixture("clean"))
        .arg("--out")
        .arg(out.path()));
    assert_eq!(result.code, 0, "{}", result.stderr);
    let plan = &result.stdout;
    assert!(plan.contains("stage miri"), "{plan}");
    assert!(
        plan.contains(&format!("\"+{}\", \"miri\", \"test\"", pinned_channel())),
        "{plan}"
    );
    assert!(
        plan.contains("target dir: ") && plan.contains("runner-build/miri"),
        "{plan}"
    );
    assert!(plan.contains("env: CARGO_TARGET_DIR="), "{plan}");
    assert!(plan.contains("MIRIFLAGS=--error-format=json"), "{plan}");
    assert!(plan.contains("s390x-unknown-linux-gnu"), "{plan}");
    for stage in ["sanitizers", "fuzz", "coverage", "valgrind", "bench"] {
        assert!(
            plan.contains(&format!("stage {stage}")),
            "`all` plans {stage}: {plan}"
        );
    }
    assert!(
        std::fs::read_dir(out.path()).unwrap().next().is_none(),
        "plan wrote files"
    );
}

#[test]
fn doctor_reports_the_toolchain_against_the_pin() {
    common::provisioned();
    let result = run(runner().arg("doctor"));
    assert_eq!(result.code, 0, "{}", result.stderr);
    assert!(
        result.stdout.contains("environment: plain host"),
        "{}",
        result.stdout
    );
    assert!(result.stdout.contains("toolchain: ok"), "{}", result.stdout);
    assert!(
        result.stdout.contains("miri         ready"),
        "{}",
        result.stdout
    );
}

fn installed_lines(stdout: &str) -> Vec<&str> {
    stdout
        .lines()
        .filter(|line| line.starts_with("installed:") || line.starts_with("built:"))
        .collect()
}

/// An empty runner cache and a cargo-fuzz of the wrong version on PATH: the first setup
/// installs the pinned version into the cache, the second finds it and installs nothing.
#[test]
fn setup_installs_pinned_cargo_tools_once() {
    use std::os::unix::fs::PermissionsExt;
    let cache = tempfile::tempdir().unwrap();
    let fake_bin = tempfile::tempdir().unwrap();
    let fake = fake_bin.path().join("cargo-fuzz");
    std::fs::write(&fake, "#!/bin/sh\necho cargo-fuzz 0.11.0\n").unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        fake_bin.path().display(),
        std::env::var("PATH").unwrap()
    );
    let setup = || {
        run(runner()
            .args(["setup", "--stages", "fuzz"])
            .env("RUNNER_CACHE_DIR", cache.path())
            .env("PATH", &path))
    };
    let first = setup();
    assert_eq!(first.code, 0, "{}{}", first.stdout, first.stderr);
    let pinned = pinned_tool_version("cargo-fuzz");
    assert_eq!(
        installed_lines(&first.stdout),
        [format!(
            "installed: cargo-fuzz {pinned} into {}/tools/bin",
            cache.path().display()
        )]
    );
    assert!(
        first.stderr.contains("cargo-fuzz 0.11.0"),
        "the wrong version is named: {}",
        first.stderr
    );
    let second = setup();
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert!(
        installed_lines(&second.stdout).is_empty(),
        "{}",
        second.stdout
    );
    assert!(
        second
            .stdout
            .contains(&format!("present: cargo-fuzz {pinned}")),
        "{}",
        second.stdout
    );
}

/// An empty rustup home with only a stable toolchain: setup installs the pinned nightly with
/// its components and builds the Miri sysroots; a second setup installs nothing.
#[test]
fn setup_installs_the_pinned_toolchain_once() {
    let home = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    common::link_stable_toolchain(home.path());
    // The sanitizers stage needs the toolchain with every pinned component but no Miri
    // sysroot: a sysroot built from this second copy of the toolchain's sources would look
    // different to cargo-miri and make every other Miri run on the machine rebuild its own.
    let setup = || {
        run(runner()
            .args(["setup", "--stages", "sanitizers"])
            .env("RUSTUP_HOME", home.path())
            .env("XDG_CACHE_HOME", cache.path())
            .env_remove("RUSTUP_TOOLCHAIN"))
    };
    let first = setup();
    assert_eq!(first.code, 0, "{}{}", first.stdout, first.stderr);
    assert!(
        first
            .stdout
            .contains(&format!("installed: toolchain {}", pinned_channel())),
        "{}",
        first.stdout
    );
    let second = setup();
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert!(
        installed_lines(&second.stdout).is_empty(),
        "{}",
        second.stdout
    );
    assert!(
        second
            .stdout
            .contains(&format!("present: toolchain {}", pinned_channel())),
        "{}",
        second.stdout
    );
}

fn pinned_tool_version(tool: &str) -> String {
    let pin = std::fs::read_to_string(common::repo_root().join("pin/toolchain.toml")).unwrap();
    let table: toml::Table = toml::from_str(&pin).unwrap();
    table["tools"][tool].as_str().unwrap().to_owned()
}
