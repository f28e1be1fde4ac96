//! The workspace's own rustflags from `.cargo/config.toml`, so that a stage which must set
//! `RUSTFLAGS` (and thereby hides cargo's config) can merge them back in.

use anyhow::{Context, Result};
use camino::Utf8Path;

use crate::workspace::Workspace;

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
