//! Files replaced whole: written to a fresh temporary beside the target and renamed over it, so
//! a reader, a crash or a concurrent run never sees half a file.

use std::fs;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, Result};
use camino::{Utf8Path, Utf8PathBuf};

/// Tells apart the temporaries of one process; the pid tells apart processes.
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Writes `contents` to `path` atomically. The temporary is created exclusively (`O_EXCL`)
/// under a name no other writer uses, so it never follows a planted symlink and two runs
/// never write through the same temporary.
pub fn write(path: &Utf8Path, contents: &[u8]) -> Result<()> {
    let (temporary, mut file) = create_temporary(path)?;
    let written = file
        .write_all(contents)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {path}"));
    drop(file);
    let renamed = written.and_then(|()| {
        fs::rename(&temporary, path).with_context(|| format!("cannot replace {path}"))
    });
    if renamed.is_err() {
        let _ = fs::remove_file(&temporary);
    }
    renamed
}

fn create_temporary(path: &Utf8Path) -> Result<(Utf8PathBuf, fs::File)> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_str().is_empty() => dir,
        _ => Utf8Path::new("."),
    };
    let name = path.file_name().unwrap_or("file");
    let mut attempts = 0;
    loop {
        let temporary = dir.join(format!(
            ".{name}.{}.{}.tmp",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        match fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temporary)
        {
            Ok(file) => return Ok((temporary, file)),
            // Left behind by a killed run with a recycled pid, or planted: take another name.
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists && attempts < 100 => {
                attempts += 1;
            }
            Err(error) => return Err(error).with_context(|| format!("cannot write {path}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp() -> (tempfile::TempDir, Utf8PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let root = Utf8PathBuf::from_path_buf(dir.path().to_owned()).unwrap();
        (dir, root)
    }

    #[test]
    fn replaces_the_whole_file_and_leaves_no_temporary() {
        let (_dir, root) = temp();
        let path = root.join("report.json");
        write(&path, b"first, and longer").unwrap();
        write(&path, b"second").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "second");
        assert_eq!(fs::read_dir(&root).unwrap().count(), 1);
    }

    #[test]
    fn never_writes_through_a_planted_symlink() {
        let (_dir, root) = temp();
        let victim = root.join("victim");
        fs::write(&victim, "precious").unwrap();
        // Every name the old code used, and the next ones this process would pick.
        std::os::unix::fs::symlink(&victim, root.join("report.tmp")).unwrap();
        for n in 0..4 {
            let next = COUNTER.load(Ordering::Relaxed) + n;
            let name = format!(".report.md.{}.{next}.tmp", std::process::id());
            std::os::unix::fs::symlink(&victim, root.join(name)).unwrap();
        }
        write(&root.join("report.md"), b"markdown").unwrap();
        assert_eq!(fs::read_to_string(&victim).unwrap(), "precious");
        assert_eq!(
            fs::read_to_string(root.join("report.md")).unwrap(),
            "markdown"
        );
    }

    #[test]
    fn concurrent_writers_never_collide() {
        let (_dir, root) = temp();
        let path = root.join("report.md");
        std::thread::scope(|scope| {
            for n in 0..8 {
                let path = &path;
                scope.spawn(move || {
                    for _ in 0..50 {
                        write(path, format!("writer {n}").as_bytes()).unwrap();
                    }
                });
            }
        });
        assert!(fs::read_to_string(&path).unwrap().starts_with("writer "));
    }

    #[test]
    fn an_unwritable_folder_names_the_file() {
        let error = write(Utf8Path::new("/proc/no/such/report.json"), b"x").unwrap_err();
        assert!(
            error.to_string().contains("/proc/no/such/report.json"),
            "{error}"
        );
    }
}
