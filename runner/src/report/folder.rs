//! The report folder (`--out`): runner writes and clears files there, so it only takes a
//! folder it made itself (a marker file says so), an empty one, or one in the build output;
//! never a folder of someone else's files, nor one among the sources unless forced.

use anyhow::{bail, Context, Result};
use camino::{Utf8Path, Utf8PathBuf};

/// The file that marks a folder as runner's own.
pub const MARKER: &str = ".runner-report";
/// The lock file that keeps two runs from writing one report set at once.
pub const LOCK: &str = ".runner-lock";

const MARKER_TEXT: &str = "This folder was created by runner for its reports; runner clears \
                           what it wrote here on the next run.\n";

/// Where the analysed workspace keeps its sources and its build output.
#[derive(Debug, Clone, Copy)]
pub struct Tree<'a> {
    pub root: &'a Utf8Path,
    pub target_dir: &'a Utf8Path,
}

/// Makes `out` runner's report folder: creates and marks it when new or empty, accepts it when
/// marked (or a report folder of an earlier version, with its report.json), refuses anything
/// else. `force` allows a folder among the workspace's sources.
pub fn claim(out: &Utf8Path, tree: Tree<'_>, force: bool) -> Result<()> {
    let absolute = absolute(out)?;
    // The build output: cargo's target dir, and the conventional `target/` even when
    // CARGO_TARGET_DIR points elsewhere (it is ignored by version control all the same).
    let inside_target =
        within(&absolute, tree.target_dir) || within(&absolute, &tree.root.join("target"));
    if !force && within(&absolute, tree.root) && !inside_target {
        bail!(
            "--out {out} is inside the workspace's sources ({}): runner writes and clears \
             files there; use a folder under {} or outside the workspace, or pass --force-out",
            tree.root,
            tree.target_dir
        );
    }
    match std::fs::symlink_metadata(&absolute) {
        Ok(meta) if meta.is_symlink() || meta.is_dir() => {
            if !absolute.is_dir() {
                bail!("--out {out} is not a folder");
            }
            let owned = absolute.join(MARKER).is_file()
                || inside_target
                || is_empty(&absolute)?
                || earlier_report_folder(&absolute);
            if !owned {
                bail!(
                    "--out {out} is a folder runner did not create and it is not empty: runner \
                     clears what it writes there, so give a new or empty folder"
                );
            }
        }
        Ok(_) => bail!("--out {out} is not a folder"),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(&absolute)
                .with_context(|| format!("cannot create the report folder {out}"))?;
        }
        Err(error) => {
            return Err(error).with_context(|| format!("cannot use the report folder {out}"))
        }
    }
    if !absolute.join(MARKER).is_file() {
        crate::atomic::write(&absolute.join(MARKER), MARKER_TEXT.as_bytes())
            .with_context(|| format!("the report folder {out} is not writable"))?;
    }
    Ok(())
}

/// Removes `dir`, a folder runner writes inside the report folder `out` (a stage's `logs`),
/// only when `out` carries runner's marker: what a stage clears before it runs is then
/// always runner's own output, never files of someone who pointed `--out` elsewhere.
pub fn clear(out: &Utf8Path, dir: &Utf8Path) -> Result<()> {
    if !dir.starts_with(out) || dir == out || !out.join(MARKER).is_file() {
        bail!("refusing to clear {dir}: it is not inside a report folder runner made");
    }
    match std::fs::remove_dir_all(dir) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
            Err(error).with_context(|| format!("cannot clear {dir}"))
        }
        _ => Ok(()),
    }
}

/// `<out>/<name>`, a folder runner writes and clears inside its report folder, made a real
/// folder: anything else there (a planted symlink to `/tmp/victim`, a file) is removed
/// itself, never followed, so clearing `<out>/<name>/logs` stays inside the report folder.
pub fn own_dir(out: &Utf8Path, name: &str) -> Result<Utf8PathBuf> {
    let dir = out.join(name);
    match std::fs::symlink_metadata(&dir) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => {
            std::fs::remove_file(&dir).with_context(|| format!("cannot replace {dir}"))?;
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(error).with_context(|| format!("cannot use {dir}")),
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {dir}"))?;
    Ok(dir)
}

/// `out` made absolute against the current directory, with symlinks in the part that exists
/// resolved, so that `ws/link-to-src/x` is still seen inside the sources.
fn absolute(out: &Utf8Path) -> Result<Utf8PathBuf> {
    let path = std::path::absolute(out).with_context(|| format!("invalid --out {out}"))?;
    let path = Utf8PathBuf::from_path_buf(path)
        .map_err(|_| anyhow::anyhow!("--out {out} is not UTF-8"))?;
    let mut existing = path.as_path();
    let mut rest = Vec::new();
    while !existing.exists() {
        let (Some(parent), Some(name)) = (existing.parent(), existing.file_name()) else {
            return Ok(path.clone());
        };
        rest.push(name);
        existing = parent;
    }
    let Ok(mut resolved) = existing.canonicalize_utf8() else {
        return Ok(path.clone());
    };
    for name in rest.iter().rev() {
        resolved.push(name);
    }
    Ok(resolved)
}

fn within(path: &Utf8Path, dir: &Utf8Path) -> bool {
    let dir = dir.canonicalize_utf8().unwrap_or_else(|_| dir.to_owned());
    path.starts_with(dir)
}

fn is_empty(dir: &Utf8Path) -> Result<bool> {
    let mut entries =
        std::fs::read_dir(dir).with_context(|| format!("cannot read the report folder {dir}"))?;
    Ok(entries.next().is_none())
}

/// A report folder written before folders were marked: its report.json is a runner report.
fn earlier_report_folder(dir: &Utf8Path) -> bool {
    std::fs::read_to_string(dir.join("report.json"))
        .ok()
        .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
        .is_some_and(|json| {
            json.get("schema_version").is_some() && json.get("runner_version").is_some()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixture {
        _dir: tempfile::TempDir,
        root: Utf8PathBuf,
        ws: Utf8PathBuf,
        target: Utf8PathBuf,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let root = Utf8PathBuf::from_path_buf(dir.path().canonicalize().unwrap()).unwrap();
        let ws = root.join("ws");
        let target = ws.join("target");
        std::fs::create_dir_all(&target).unwrap();
        Fixture {
            _dir: dir,
            root,
            ws,
            target,
        }
    }

    impl Fixture {
        fn tree(&self) -> Tree<'_> {
            Tree {
                root: &self.ws,
                target_dir: &self.target,
            }
        }
    }

    #[test]
    fn a_new_folder_is_created_and_marked_and_then_accepted() {
        let f = fixture();
        let out = f.root.join("reports/new");
        claim(&out, f.tree(), false).unwrap();
        assert!(out.join(MARKER).is_file());
        std::fs::write(out.join("report.md"), "x").unwrap();
        claim(&out, f.tree(), false).unwrap();
    }

    #[test]
    fn a_foreign_folder_with_files_is_refused() {
        let f = fixture();
        let victim = f.root.join("victim");
        std::fs::create_dir_all(victim.join("valgrind/logs")).unwrap();
        std::fs::write(victim.join("valgrind/logs/precious.txt"), "keep").unwrap();
        let error = claim(&victim, f.tree(), false).unwrap_err().to_string();
        assert!(error.contains("did not create"), "{error}");
        assert!(!victim.join(MARKER).exists());
    }

    #[test]
    fn the_sources_need_force_but_the_build_output_does_not() {
        let f = fixture();
        let error = claim(&f.ws.join("reports"), f.tree(), false)
            .unwrap_err()
            .to_string();
        assert!(error.contains("--force-out"), "{error}");
        claim(&f.ws.join("reports"), f.tree(), true).unwrap();
        claim(&f.target.join("runner"), f.tree(), false).unwrap();
        // CARGO_TARGET_DIR elsewhere: the workspace's own `target/` is still build output.
        let shared = f.root.join("shared-target");
        let elsewhere = Tree {
            target_dir: &shared,
            ..f.tree()
        };
        claim(&f.ws.join("target/runner-tests/x"), elsewhere, false).unwrap();
    }

    #[test]
    fn an_earlier_report_folder_is_adopted() {
        let f = fixture();
        let out = f.root.join("old");
        std::fs::create_dir_all(out.join("miri")).unwrap();
        std::fs::write(
            out.join("report.json"),
            r#"{"schema_version": 1, "runner_version": "0.1.0"}"#,
        )
        .unwrap();
        claim(&out, f.tree(), false).unwrap();
        assert!(out.join(MARKER).is_file());
    }

    #[test]
    fn only_folders_inside_a_marked_report_folder_are_cleared() {
        let f = fixture();
        let foreign = f.root.join("foreign");
        std::fs::create_dir_all(foreign.join("valgrind/logs")).unwrap();
        assert!(clear(&foreign, &foreign.join("valgrind/logs")).is_err());
        assert!(foreign.join("valgrind/logs").is_dir());
        let out = f.root.join("out");
        claim(&out, f.tree(), false).unwrap();
        std::fs::create_dir_all(out.join("valgrind/logs")).unwrap();
        assert!(clear(&out, &out).is_err());
        clear(&out, &out.join("valgrind/logs")).unwrap();
        assert!(!out.join("valgrind/logs").exists());
        clear(&out, &out.join("valgrind/logs")).unwrap();
    }

    #[test]
    fn a_file_is_not_a_folder() {
        let f = fixture();
        std::fs::write(f.root.join("file"), "").unwrap();
        let error = claim(&f.root.join("file"), f.tree(), false)
            .unwrap_err()
            .to_string();
        assert!(error.contains("not a folder"), "{error}");
    }
}
