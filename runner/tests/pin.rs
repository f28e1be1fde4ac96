//! The pin file is the single source of truth: its date appears nowhere else in the
//! repository, and runner reports exactly what it says.

mod common;

use common::{pinned_channel, repo_root, run, runner};

fn tracked_files() -> Vec<std::path::PathBuf> {
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
