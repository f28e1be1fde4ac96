//! The pin file is the single source of truth: its date appears nowhere else in the
//! repository, and runner reports exactly what it says.

mod common;

use common::{pinned_channel, repo_root, run, runner};

fn tracked_files() -> Vec<std::path::PathBuf> {
    common::require_tool(&["git"], "git");
    let output = std::process::Command::new("git")
        .args(["ls-files", "--cached", "--others", "--exclude-standard"])
        .current_dir(repo_root())
        .output()
        .expect("git runs");
    assert!(output.status.success(), "git ls-files failed");
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| repo_root().join(line))
        .filter(|path| path.is_file())
        .collect()
}

#[test]
fn the_pinned_date_is_written_only_in_the_pin_file() {
    let channel = pinned_channel();
    let date = channel.trim_start_matches("nightly-");
    assert_eq!(
        date.len(),
        "YYYY-MM-DD".len(),
        "the pin names a dated nightly: {channel}"
    );
    let pin_file = repo_root().join("pin/toolchain.toml");
    let mut elsewhere = Vec::new();
    for path in tracked_files() {
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        if path != pin_file && text.contains(date) {
            elsewhere.push(path.display().to_string());
        }
    }
    assert!(
        elsewhere.is_empty(),
        "the pinned date {date} is repeated in {elsewhere:#?}"
    );
}

#[test]
fn changing_the_date_in_the_pin_leaves_no_copy_of_the_old_one() {
    // What a maintainer does to move every environment: edit one line of one file.
    let old = pinned_channel();
    let pin_text = std::fs::read_to_string(repo_root().join("pin/toolchain.toml")).unwrap();
    let moved = pin_text.replace(&old, "nightly-2099-01-01");
    assert_ne!(moved, pin_text);
    let old_date = old.trim_start_matches("nightly-");
    let stale: Vec<String> = tracked_files()
        .into_iter()
        .filter(|path| !path.ends_with("pin/toolchain.toml"))
        .filter(|path| std::fs::read_to_string(path).is_ok_and(|text| text.contains(old_date)))
        .map(|path| path.display().to_string())
        .collect();
    assert!(
        stale.is_empty(),
        "after the edit these would still say {old_date}: {stale:#?}"
    );
}

#[test]
fn runner_embeds_the_pin_file() {
    common::provisioned();
    let result = run(runner().arg("doctor"));
    assert_eq!(result.code, 0, "{}", result.stderr);
    assert!(
        result
            .stdout
            .contains(&format!("pin: {}", pinned_channel())),
        "{}",
        result.stdout
    );
}

/// The flake, evaluated against stand-in inputs (`nix/flake-check.nix`): its toolchain is made
/// from the pin file, and every output the README promises exists on the Linux systems.
#[test]
fn the_flake_builds_its_toolchain_from_the_pin_file() {
    common::require_tool(&["nix-instantiate"], "nix-bin");
    let output = std::process::Command::new("nix-instantiate")
        .args(["--eval", "--strict", "--json", "nix/flake-check.nix"])
        .current_dir(repo_root())
        .output()
        .expect("nix-instantiate runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let pin: toml::Table =
        toml::from_str(&std::fs::read_to_string(repo_root().join("pin/toolchain.toml")).unwrap())
            .unwrap();
    let components: Vec<&str> = pin["toolchain"]["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    for system in ["x86_64-linux", "aarch64-linux", "aarch64-darwin"] {
        let outputs = &summary["perSystem"][system];
        let toolchain = &outputs["toolchain"];
        assert_eq!(toolchain["toolchainDir"], "pin", "{system}");
        assert_eq!(toolchain["toolchainFile"], "toolchain.toml", "{system}");
        assert_eq!(toolchain["channel"], pinned_channel().as_str(), "{system}");
        assert_eq!(
            toolchain["components"],
            serde_json::json!(components),
            "{system}"
        );
        assert_eq!(outputs["apps"], serde_json::json!(["default"]), "{system}");
        assert_eq!(outputs["shell"]["hermetic"], "nix", "{system}");
        assert_eq!(outputs["checkRunsTests"], true, "{system}");
        let shell: Vec<&str> = outputs["shell"]["packages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_str().unwrap())
            .collect();
        for tool in [
            "rust-toolchain",
            "runner",
            "cargo-fuzz",
            "cargo-llvm-cov",
            "cargo-tarpaulin",
            "cargo-nextest",
        ] {
            assert!(
                shell.contains(&tool),
                "{system} shell lacks {tool}: {shell:?}"
            );
        }
    }
    for system in ["x86_64-linux", "aarch64-linux"] {
        let outputs = &summary["perSystem"][system];
        assert_eq!(
            outputs["packages"],
            serde_json::json!(["default", "image"]),
            "{system}"
        );
        assert_eq!(
            outputs["image"]["entrypoint"],
            serde_json::json!(["runner"]),
            "{system}"
        );
        let shell = outputs["shell"]["packages"].to_string();
        assert!(
            shell.contains("valgrind") && shell.contains("qemu"),
            "{system}: {shell}"
        );
        let linker = outputs["shell"]["crossLinker"].as_str().unwrap_or_default();
        assert!(
            linker.ends_with("/bin/s390x-unknown-linux-gnu-cc"),
            "{system}: {linker}"
        );
        assert!(outputs["shell"]["qemuLibraries"].is_string(), "{system}");
    }
    assert_eq!(
        summary["pinnedTools"],
        serde_json::to_value(&pin["tools"]).unwrap()
    );
}

/// The Dockerfile installs the toolchain by reading the pin file, never a literal channel.
#[test]
fn the_dockerfile_reads_the_pin_file() {
    let dockerfile = std::fs::read_to_string(repo_root().join("Dockerfile")).unwrap();
    assert!(
        dockerfile.contains("COPY pin/toolchain.toml"),
        "the image copies the pin"
    );
    for key in ["channel", "profile", "components"] {
        assert!(
            dockerfile.contains(&format!("s/^{key} = ")),
            "the image reads `{key}` from the pin"
        );
    }
    assert!(
        !dockerfile.contains("nightly-2"),
        "a literal nightly in the Dockerfile"
    );
    assert!(
        dockerfile.contains("runner setup --stages"),
        "cargo tools come from runner setup"
    );
}
