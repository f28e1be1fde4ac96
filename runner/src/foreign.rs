//! Files runner reads and writes outside its report folder (`--durations`, bench baselines,
//! the fuzz corpus and crash registry, the result cache): the one place that decides what may
//! be replaced there. A symlink is followed to the regular file it names and that file is
//! replaced; a device, FIFO, socket or folder is refused with one line, never opened (opening
//! a FIFO blocks) and never renamed over (as root, a rename over `/dev/null` destroys it).

use anyhow::{bail, Context as _, Result};
use camino::{Utf8Path, Utf8PathBuf};

/// More links than this in a chain is a loop (the kernel's own limit is 40).
const MAX_LINKS: usize = 40;

/// The file `path` stands for: itself, or the end of its chain of symlinks. Absent is fine
/// (the writer creates it); anything but a regular file is an error naming `path`.
pub fn resolve(path: &Utf8Path) -> Result<Utf8PathBuf> {
    let mut current = path.to_owned();
    for _ in 0..MAX_LINKS {
        let meta = match std::fs::symlink_metadata(&current) {
            Ok(meta) => meta,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(current),
            Err(error) => return Err(error).with_context(|| format!("cannot use {path}")),
        };
        let kind = meta.file_type();
        if kind.is_symlink() {
            let link = std::fs::read_link(&current)
                .with_context(|| format!("cannot read the symlink {current}"))?;
            let link = Utf8PathBuf::from_path_buf(link)
                .map_err(|_| anyhow::anyhow!("{path} links to a path that is not UTF-8"))?;
            current = match current.parent() {
                Some(dir) if link.is_relative() => dir.join(link),
                _ => link,
            };
            continue;
        }
        if kind.is_file() {
            return Ok(current);
        }
        bail!(
            "{path} is {}, not a regular file: runner reads and replaces only regular files \
             there (a symlink is followed to one)",
            describe(kind)
        );
    }
    bail!("{path} is a loop of symlinks, not a regular file")
}

/// Refuses `path` before any work when it is no regular file runner may replace.
pub fn check(path: &Utf8Path) -> Result<()> {
    resolve(path).map(drop)
}

/// Refuses `dir`, a folder runner writes files in (a corpus, the crash registry, bench
/// baselines), when it exists as anything but a folder (a symlink is followed to one).
pub fn check_folder(dir: &Utf8Path) -> Result<()> {
    match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(meta) => bail!(
            "{dir} is {}, not a folder: runner writes its files in it",
            describe(meta.file_type())
        ),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(error).with_context(|| format!("cannot use {dir}")),
    }
}

/// The bytes of `path`; `None` when it does not exist. Never opens anything but a regular
/// file, so a FIFO cannot block the run.
pub fn read(path: &Utf8Path) -> Result<Option<Vec<u8>>> {
    let file = resolve(path)?;
    match std::fs::read(&file) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(error).with_context(|| format!("cannot read {path}")),
    }
}

/// Replaces the file `path` stands for with `contents`, whole (temporary and rename beside
/// the real file, so a symlink keeps pointing at the new contents).
pub fn write(path: &Utf8Path, contents: &[u8]) -> Result<()> {
    let file = resolve(path)?;
    crate::atomic::write(&file, contents)
}

/// Copies `from` over `to` by the same rule.
pub fn copy(from: &Utf8Path, to: &Utf8Path) -> Result<()> {
    let contents = read(from)?.with_context(|| format!("cannot read {from}: it does not exist"))?;
    write(to, &contents)
}

fn describe(kind: std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if kind.is_dir() {
        "a folder"
    } else if kind.is_file() {
        "a file"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_char_device() || kind.is_block_device() {
        "a device"
    } else {
        "not a regular file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::FileTypeExt;

    fn temp() -> (tempfile::TempDir, Utf8PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let root = Utf8PathBuf::from_path_buf(dir.path().to_owned()).unwrap();
        (dir, root)
    }

    #[test]
    fn a_symlink_is_followed_and_its_target_replaced() {
        let (_dir, root) = temp();
        std::fs::write(root.join("real"), "old").unwrap();
        std::os::unix::fs::symlink("real", root.join("link")).unwrap();
        write(&root.join("link"), b"new").unwrap();
        assert!(std::fs::symlink_metadata(root.join("link"))
            .unwrap()
            .is_symlink());
        assert_eq!(std::fs::read_to_string(root.join("real")).unwrap(), "new");
        // A dangling link gets its target created.
        std::os::unix::fs::symlink("later", root.join("dangling")).unwrap();
        write(&root.join("dangling"), b"x").unwrap();
        assert_eq!(std::fs::read_to_string(root.join("later")).unwrap(), "x");
    }

    #[test]
    fn devices_fifos_folders_and_loops_are_refused_without_opening() {
        let (_dir, root) = temp();
        let fifo = root.join("fifo");
        nix::unistd::mkfifo(fifo.as_std_path(), nix::sys::stat::Mode::S_IRWXU).unwrap();
        std::os::unix::fs::symlink(&fifo, root.join("to-fifo")).unwrap();
        std::os::unix::fs::symlink("a", root.join("b")).unwrap();
        std::os::unix::fs::symlink("b", root.join("a")).unwrap();
        for (path, word) in [
            (Utf8PathBuf::from("/dev/null"), "a device"),
            (fifo.clone(), "a FIFO"),
            (root.join("to-fifo"), "a FIFO"),
            (root.clone(), "a folder"),
            (root.join("a"), "loop"),
        ] {
            let error = write(&path, b"x").unwrap_err().to_string();
            assert!(error.contains(word), "{path}: {error}");
            assert!(read(&path).is_err(), "{path}");
        }
        assert!(std::fs::symlink_metadata(&fifo)
            .unwrap()
            .file_type()
            .is_fifo());
        assert_eq!(read(&root.join("absent")).unwrap(), None);
        let error = check_folder(&fifo).unwrap_err().to_string();
        assert!(error.contains("a FIFO, not a folder"), "{error}");
        check_folder(&root).unwrap();
        check_folder(&root.join("absent")).unwrap();
    }
}
