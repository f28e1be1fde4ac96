//! Advisory locks that let one runner at a time use a report folder or a stage's build
//! folder: a second run waits, saying which process holds it, or gives up with `--no-wait`.
//! The kernel drops the lock when its holder exits, even by SIGKILL, so no stale lock remains.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;

use anyhow::{bail, Context, Result};
use camino::Utf8Path;
use nix::fcntl::OFlag;

use crate::progress::Progress;

/// Whether to wait for a lock another process holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    Yes,
    /// `--no-wait`: give up at once, naming the flag.
    No,
    /// Never wait, whatever the flags (`runner merge --out`: a folder a job is still writing
    /// is not one to merge into).
    Never,
}

/// A held lock; dropping it releases it.
#[derive(Debug)]
pub struct Lock {
    _file: File,
}

/// Takes the lock file at `path` for `what` (`the report folder /x`), waiting when another
/// process holds it (one line naming that process) unless `wait` is [`Wait::No`].
pub fn acquire(path: &Utf8Path, what: &str, wait: Wait, progress: &Progress) -> Result<Lock> {
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        // A symlink planted in the lock's place must not redirect the holder's line.
        .custom_flags(OFlag::O_NOFOLLOW.bits())
        .open(path)
        .with_context(|| format!("cannot lock {what}: cannot open {path}"))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let holder = holder(&mut file);
            match wait {
                Wait::No => bail!("{what} is in use by {holder} (--no-wait)"),
                Wait::Never => bail!("{what} is in use by {holder}; try again once it is done"),
                Wait::Yes => {}
            }
            progress.always(&format!(
                "runner: waiting for {holder}, which is using {what}"
            ));
            file.lock()
                .with_context(|| format!("cannot lock {what} ({path})"))?;
        }
        Err(TryLockError::Error(error)) => {
            return Err(error).with_context(|| format!("cannot lock {what} ({path})"));
        }
    }
    // Who holds it, for the next run's message. Losing this line only makes that message
    // vaguer, so a failure here is not an error.
    let _ = file
        .set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| writeln!(file, "{}", describe_self()));
    Ok(Lock { _file: file })
}

/// `pid 123 (runner all .)`, from the lock file; the holder may not have written it yet.
fn holder(file: &mut File) -> String {
    let mut text = String::new();
    let _ = file.rewind().and_then(|()| file.read_to_string(&mut text));
    let text = text.trim();
    if text.is_empty() {
        "another runner".to_owned()
    } else {
        text.to_owned()
    }
}

fn describe_self() -> String {
    let command: Vec<String> = std::env::args().collect();
    format!("pid {} ({})", std::process::id(), command.join(" ")).replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_with_the_first_ones_pid() {
        let dir = tempfile::tempdir().unwrap();
        let path = Utf8Path::from_path(dir.path()).unwrap().join("lock");
        let progress = Progress::new(true, false);
        let first = acquire(&path, "the folder", Wait::No, &progress).unwrap();
        let error = acquire(&path, "the folder", Wait::No, &progress)
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with(&format!(
                "the folder is in use by pid {}",
                std::process::id()
            )),
            "{error}"
        );
        drop(first);
        acquire(&path, "the folder", Wait::No, &progress).unwrap();
    }

    #[test]
    fn a_planted_symlink_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let root = Utf8Path::from_path(dir.path()).unwrap();
        std::fs::write(root.join("victim"), "precious").unwrap();
        std::os::unix::fs::symlink(root.join("victim"), root.join("lock")).unwrap();
        let progress = Progress::new(true, false);
        assert!(acquire(&root.join("lock"), "the folder", Wait::No, &progress).is_err());
        assert_eq!(
            std::fs::read_to_string(root.join("victim")).unwrap(),
            "precious"
        );
    }
}
