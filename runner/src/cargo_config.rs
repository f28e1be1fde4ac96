//! What a stage's build takes from and adds to cargo's config: the workspace's own rustflags
//! from `.cargo/config.toml` (a stage which must set `RUSTFLAGS` hides them, so it merges them
//! back in) and the opt-level of builds a tool instruments.

use anyhow::{Context, Result};
use camino::Utf8Path;
use serde::Deserialize;

use crate::process::Cmd;
use crate::workspace::Workspace;

/// The opt-level of the code under test in a build a tool instruments load by load and
/// store by store. The sanitizers' manuals ask for `-O1` "to get reasonable performance":
/// unoptimised Rust keeps every iterator step a call and every local in memory, and each of
/// those accesses is instrumented. Measured on string-interner's
/// `encode_var_usize_3_bytes_works`: `MemorySanitizer` 12.6 s at opt-level 0, 0.24 s at 1;
/// memcheck 23.4 s and 1.6 s. But the optimiser deletes uninitialised reads before the tool
/// sees them, so the tools about uninitialised memory (memory, memcheck) keep the profile's
/// level unless configured (`Sanitizer::default_opt_level`). Debug assertions and overflow
/// checks stay as the profile has them; the user's `[profile.test]` and per-package
/// opt-levels still win.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptLevel(u8);

impl OptLevel {
    pub const INSTRUMENTED: OptLevel = OptLevel(1);

    /// `cmd` (a cargo build) with the level as the dev profile's, which the test profile
    /// inherits; config's profile overrides the manifest's.
    pub fn apply(self, cmd: Cmd) -> Cmd {
        cmd.env("CARGO_PROFILE_DEV_OPT_LEVEL", self.to_string())
    }
}

impl std::fmt::Display for OptLevel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl<'de> Deserialize<'de> for OptLevel {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let level = i64::deserialize(deserializer)?;
        match u8::try_from(level) {
            Ok(level @ 0..=3) => Ok(OptLevel(level)),
            _ => Err(serde::de::Error::custom(format!(
                "opt-level must be 0, 1, 2 or 3, not {level}"
            ))),
        }
    }
}

/// The `RUSTFLAGS` a stage's build needs: the workspace's cargo config flags, runner config's
/// `rustflags`, then the stage's own. `None` when neither runner's config nor the stage adds
/// any, so cargo keeps reading its config itself (setting `RUSTFLAGS` hides it).
pub fn stage_rustflags(
    workspace: &Workspace,
    target: &str,
    stage_flags: &[String],
) -> Option<String> {
    if workspace.config.rustflags.is_empty() && stage_flags.is_empty() {
        return None;
    }
    let mut flags = rustflags(&workspace.root, target).unwrap_or_default();
    flags.extend(workspace.config.rustflags.iter().cloned());
    flags.extend(stage_flags.iter().cloned());
    Some(flags.join(" "))
}

/// Collects `build.rustflags` and `target.<triple>.rustflags` from the config files cargo
/// would read for `root` (the workspace and its ancestors), nearest file first.
pub fn rustflags(root: &Utf8Path, triple: &str) -> Result<Vec<String>> {
    let mut flags = Vec::new();
    for dir in root.ancestors() {
        for name in ["config.toml", "config"] {
            let path = dir.join(".cargo").join(name);
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            let table: toml::Table =
                toml::from_str(&text).with_context(|| format!("invalid cargo config {path}"))?;
            let target_flags = table
                .get("target")
                .and_then(|targets| targets.get(triple))
                .and_then(|target| target.get("rustflags"));
            let build_flags = table.get("build").and_then(|build| build.get("rustflags"));
            // Cargo uses target-specific flags instead of build.rustflags when both exist.
            if let Some(value) = target_flags.or(build_flags) {
                flags.extend(flag_list(value));
            }
            break;
        }
    }
    Ok(flags)
}

fn flag_list(value: &toml::Value) -> Vec<String> {
    match value {
        toml::Value::String(text) => text.split_whitespace().map(str::to_owned).collect(),
        toml::Value::Array(items) => items
            .iter()
            .filter_map(|item| item.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_opt_level_is_0_to_3_and_becomes_the_dev_profiles() {
        let level: OptLevel = toml::from_str::<toml::Table>("o = 2").unwrap()["o"]
            .clone()
            .try_into()
            .unwrap();
        let cmd = level.apply(Cmd::new("cargo"));
        assert_eq!(
            cmd.env_set().collect::<Vec<_>>(),
            [("CARGO_PROFILE_DEV_OPT_LEVEL", "2")]
        );
        for wrong in ["o = 4", "o = -1", "o = \"s\""] {
            let value = toml::from_str::<toml::Table>(wrong).unwrap()["o"].clone();
            assert!(value.try_into::<OptLevel>().is_err(), "{wrong}");
        }
    }

    #[test]
    fn reads_build_and_target_flags() {
        let dir = tempfile::tempdir().unwrap();
        let root = Utf8Path::from_path(dir.path()).unwrap();
        std::fs::create_dir(root.join(".cargo")).unwrap();
        std::fs::write(
            root.join(".cargo/config.toml"),
            "[build]\nrustflags = \"-C debug-assertions\"\n[target.s390x-unknown-linux-gnu]\nrustflags = [\"-C\", \"opt-level=1\"]\n",
        )
        .unwrap();
        assert_eq!(
            rustflags(root, "x86_64-unknown-linux-gnu").unwrap(),
            ["-C", "debug-assertions"]
        );
        assert_eq!(
            rustflags(root, "s390x-unknown-linux-gnu").unwrap(),
            ["-C", "opt-level=1"]
        );
    }
}
