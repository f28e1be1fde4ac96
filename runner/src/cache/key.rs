//! Cache keys: SHA-256 over length-prefixed parts, so ("ab", "c") never hashes like ("a",
//! "bc"), and the bytes of files, each read once per run however many keys name it.

use std::collections::HashMap;
use std::sync::Mutex;

use camino::{Utf8Path, Utf8PathBuf};
use sha2::{Digest, Sha256};

/// Builds one key from its parts.
pub struct KeyHasher(Sha256);

impl KeyHasher {
    /// A key of one kind (`binary`, `test`, `list`): keys of different kinds never meet.
    pub fn new(kind: &str) -> KeyHasher {
        let mut hasher = KeyHasher(Sha256::new());
        hasher.part(kind.as_bytes());
        hasher
    }

    pub fn part(&mut self, bytes: &[u8]) -> &mut KeyHasher {
        self.0.update((bytes.len() as u64).to_le_bytes());
        self.0.update(bytes);
        self
    }

    pub fn text(&mut self, text: &str) -> &mut KeyHasher {
        self.part(text.as_bytes())
    }

    pub fn finish(self) -> String {
        hex(&self.0.finalize())
    }
}

/// The SHA-256 of `bytes`, in hex.
pub fn digest(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut text, byte| {
        let _ = write!(text, "{byte:02x}");
        text
    })
}

/// File digests of one run: Miri's keys name the same dependency artifacts many times.
#[derive(Default)]
pub struct FileDigests(Mutex<HashMap<Utf8PathBuf, String>>);

impl FileDigests {
    /// The digest of the file's bytes; a file that cannot be read is keyed as absent, which
    /// changes the key when it appears.
    pub fn of(&self, path: &Utf8Path) -> String {
        if let Some(known) = self.lock().get(path) {
            return known.clone();
        }
        let value = std::fs::read(path).map_or_else(|_| "absent".to_owned(), |b| digest(&b));
        self.lock().insert(path.to_owned(), value.clone());
        value
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Utf8PathBuf, String>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Package folders that hold other harnesses, never the library's doctests.
const OTHER_HARNESSES: &[&str] = &["tests", "benches", "examples", "fuzz"];

/// Every file of a package the library (and so its doctests) may be built from: all of the
/// package folder but build output, hidden folders and the folders of other harnesses, so an
/// edit to an integration test leaves doctest results standing. Sorted.
pub fn library_files(package: &Utf8Path) -> Vec<Utf8PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![package.to_owned()];
    while let Some(folder) = pending.pop() {
        let Ok(entries) = folder.read_dir_utf8() else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            let other_harness = folder == package && OTHER_HARNESSES.contains(&name);
            if kind.is_dir() {
                if name != "target" && !name.starts_with('.') && !other_harness {
                    pending.push(entry.path().to_owned());
                }
            } else if kind.is_file() {
                found.push(entry.path().to_owned());
            }
        }
    }
    found.sort();
    found
}

/// At most this many declared input files, and bytes in them, are hashed: past it the
/// declaration is an error, not hours of hashing or an exhausted machine.
pub const MAX_DECLARED_FILES: usize = 100_000;
pub const MAX_DECLARED_BYTES: u64 = 4 << 30;

/// The files matching the user's `cache.inputs` globs, relative to `root`, sorted; a matched
/// folder stands for every file under it (`tests/data/**` matches folders only). The tree is
/// walked here, not by glob (whose `**` follows symlinked folders without end): a symlink to
/// a file counts as that file, and each folder is entered once, so a loop (`data/l -> .`) is
/// walked once. More than the bound in files or bytes is an error naming the key.
pub fn declared(root: &Utf8Path, globs: &[String]) -> anyhow::Result<Vec<Utf8PathBuf>> {
    let mut found = Vec::new();
    let mut bytes: u64 = 0;
    for pattern in globs {
        let invalid = |error: &dyn std::fmt::Display| {
            anyhow::anyhow!("invalid runner config key `cache.inputs`: `{pattern}`: {error}")
        };
        // glob's trailing `**` matches folders below, not the files in them.
        let text = if pattern.ends_with("**") {
            format!("{pattern}/*")
        } else {
            pattern.clone()
        };
        glob::Pattern::new(&text).map_err(|error| invalid(&error))?;
        // The workspace's own path is matched literally, whatever characters it holds.
        let full = if Utf8Path::new(&text).is_absolute() {
            text.clone()
        } else {
            format!("{}/{text}", glob::Pattern::escape(root.as_str()))
        };
        let matcher = glob::Pattern::new(&full).map_err(|error| invalid(&error))?;
        if !walk(
            &literal_prefix(root, &text),
            &matcher,
            &mut found,
            &mut bytes,
        ) {
            bail_too_much(pattern)?;
        }
    }
    found.sort();
    found.dedup();
    Ok(found)
}

/// Folders and files looked at for one pattern, at most: a bound on the walk itself.
const MAX_VISITED: usize = 1_000_000;

/// Adds the files under `start` that `matcher` declares (a matched folder declares every
/// file under it) to `found`, entering each folder once (by device and inode). False past a
/// bound.
fn walk(
    start: &Utf8Path,
    matcher: &glob::Pattern,
    found: &mut Vec<Utf8PathBuf>,
    bytes: &mut u64,
) -> bool {
    use std::os::unix::fs::MetadataExt;
    let options = glob::MatchOptions {
        case_sensitive: true,
        require_literal_separator: true,
        require_literal_leading_dot: false,
    };
    let mut entered = std::collections::HashSet::new();
    let mut visited = 0_usize;
    let mut pending = vec![(start.to_owned(), false)];
    while let Some((path, under_match)) = pending.pop() {
        visited += 1;
        if visited > MAX_VISITED || found.len() > MAX_DECLARED_FILES || *bytes > MAX_DECLARED_BYTES
        {
            return false;
        }
        // Followed: a symlink counts as what it names.
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        let declared = under_match || matcher.matches_path_with(path.as_std_path(), options);
        if meta.is_file() && declared {
            *bytes = bytes.saturating_add(meta.len());
            found.push(path);
        } else if meta.is_dir() && entered.insert((meta.dev(), meta.ino())) {
            let Ok(entries) = path.read_dir_utf8() else {
                continue;
            };
            pending.extend(
                entries
                    .flatten()
                    .map(|entry| (entry.path().to_owned(), declared)),
            );
        }
    }
    found.len() <= MAX_DECLARED_FILES && *bytes <= MAX_DECLARED_BYTES
}

/// The folders of `pattern` (relative to `root`) before its first wildcard: where its walk
/// starts.
fn literal_prefix(root: &Utf8Path, pattern: &str) -> Utf8PathBuf {
    let mut prefix = if pattern.starts_with('/') {
        Utf8PathBuf::from("/")
    } else {
        root.to_owned()
    };
    for part in pattern.split('/').filter(|part| !part.is_empty()) {
        if part.contains(['*', '?', '[', ']']) {
            break;
        }
        prefix.push(part);
    }
    prefix
}

fn bail_too_much(pattern: &str) -> anyhow::Result<()> {
    anyhow::bail!(
        "runner config key `cache.inputs`: `{pattern}` matches more than {MAX_DECLARED_FILES} \
         files or {} GiB (a symlink loop?); declare the files the tests read",
        MAX_DECLARED_BYTES >> 30
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_keep_their_boundaries() {
        let mut a = KeyHasher::new("k");
        a.text("ab").text("c");
        let mut b = KeyHasher::new("k");
        b.text("a").text("bc");
        assert_ne!(a.finish(), b.finish());
        assert_eq!(digest(b"").len(), 64);
    }

    #[test]
    fn library_files_leave_out_other_harnesses_and_build_output() {
        let dir = tempfile::tempdir().unwrap();
        let root = Utf8Path::from_path(dir.path()).unwrap();
        for file in [
            "src/lib.rs",
            "README.md",
            "tests/api.rs",
            "target/x",
            ".git/y",
            "src/tests/z.rs",
        ] {
            std::fs::create_dir_all(root.join(file).parent().unwrap()).unwrap();
            std::fs::write(root.join(file), "").unwrap();
        }
        let names: Vec<String> = library_files(root)
            .iter()
            .map(|path| path.strip_prefix(root).unwrap().to_string())
            .collect();
        assert_eq!(names, ["README.md", "src/lib.rs", "src/tests/z.rs"]);
    }

    #[test]
    fn declared_inputs_follow_globs() {
        let dir = tempfile::tempdir().unwrap();
        let root = Utf8Path::from_path(dir.path()).unwrap();
        std::fs::create_dir_all(root.join("tests/data/deep")).unwrap();
        std::fs::write(root.join("tests/data/a.txt"), "a").unwrap();
        std::fs::write(root.join("tests/data/deep/b.txt"), "b").unwrap();
        std::fs::write(root.join("other.txt"), "c").unwrap();
        let found = declared(root, &["tests/data/**/*".to_owned()]).unwrap();
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!(
            declared(root, &["tests/data/**".to_owned()]).unwrap(),
            found
        );
        assert!(declared(root, &["[".to_owned()]).is_err());
    }

    #[test]
    fn declared_inputs_walk_symlink_loops_once() {
        let dir = tempfile::tempdir().unwrap();
        let root = Utf8Path::from_path(dir.path()).unwrap();
        std::fs::create_dir_all(root.join("tests/data/deep")).unwrap();
        std::fs::write(root.join("tests/data/a.txt"), "a").unwrap();
        std::fs::write(root.join("tests/data/deep/b.txt"), "b").unwrap();
        std::os::unix::fs::symlink(".", root.join("tests/data/l1")).unwrap();
        std::os::unix::fs::symlink("..", root.join("tests/data/deep/up")).unwrap();
        let found = declared(root, &["tests/data/**".to_owned()]).unwrap();
        let names: Vec<&str> = found.iter().filter_map(|p| p.file_name()).collect();
        assert_eq!(
            names.iter().filter(|n| **n == "a.txt").count(),
            1,
            "{found:?}"
        );
        assert_eq!(
            names.iter().filter(|n| **n == "b.txt").count(),
            1,
            "{found:?}"
        );
        // A workspace path with glob characters is matched literally.
        let odd = root.join("odd [x]");
        std::fs::create_dir_all(odd.join("data")).unwrap();
        std::fs::write(odd.join("data/c.txt"), "c").unwrap();
        assert_eq!(declared(&odd, &["data/*.txt".to_owned()]).unwrap().len(), 1);
    }
}
