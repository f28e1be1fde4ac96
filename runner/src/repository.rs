//! The git repository around the workspace: the commit and the workspace's folder in it,
//! read once by the command and handed to the report as plain values.

use camino::{Utf8Path, Utf8PathBuf};

/// The commit the workspace is at (`git rev-parse HEAD`), when it is in a git repository.
pub fn revision(workspace_root: &Utf8Path) -> Option<String> {
    crate::process::Cmd::new("git")
        .args(["-C", workspace_root.as_str(), "rev-parse", "HEAD"])
        .output_text()
        .ok()
        .map(|text| text.trim().to_owned())
        .filter(|text| !text.is_empty())
}

/// The workspace's folder relative to the root of the git repository holding it (empty at
/// the root), so CI annotations name files from where the repository starts.
pub fn repository_path(workspace_root: &Utf8Path) -> Option<Utf8PathBuf> {
    workspace_root
        .ancestors()
        .find(|dir| dir.join(".git").exists())
        .and_then(|root| workspace_root.strip_prefix(root).ok())
        .map(Utf8Path::to_path_buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_repository_path_is_relative_to_the_nearest_git_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = Utf8Path::from_path(dir.path()).unwrap();
        std::fs::create_dir_all(root.join("crates/ws")).unwrap();
        assert_eq!(repository_path(&root.join("crates/ws")), None);
        // A worktree's `.git` is a file, not a folder.
        std::fs::write(root.join(".git"), "gitdir: elsewhere").unwrap();
        assert_eq!(
            repository_path(&root.join("crates/ws")),
            Some("crates/ws".into())
        );
        assert_eq!(repository_path(root), Some(Utf8PathBuf::new()));
    }
}
