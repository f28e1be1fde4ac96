//! The content-addressed store under `<target-dir>/runner-cache/`: one file per key, each a
//! header with the SHA-256 of its payload and the key it was stored under, written whole by
//! rename (concurrent runs see an entry complete or not at all), and kept within a size bound
//! by evicting the entries used least recently (a hit refreshes its file's modification
//! time). A restored cache is input runner does not control: an entry copied or renamed to
//! another key's file names the wrong key and is removed as corrupt, never answered.

use std::time::SystemTime;

use anyhow::{Context as _, Result};
use camino::{Utf8Path, Utf8PathBuf};

use super::key;

/// The first word of every entry; a format change gets a new folder instead.
const MAGIC: &str = "runner-cache-entry";
/// Entries live under a folder per format version, so an old runner never reads new entries.
/// v2: the header names the entry's key. v3: an entry's identity holds the kernel's `TestId`.
pub(crate) const FORMAT: &str = "v3";

pub struct Store {
    dir: Utf8PathBuf,
    max_size: u64,
}

/// What the store holds for a key.
#[derive(Debug, PartialEq, Eq)]
pub enum Found {
    Hit(Vec<u8>),
    Miss,
    /// The entry failed its checksum (a torn disk, an edit) or was stored under another key
    /// (a file copied over this one): it was removed, to be re-run.
    Corrupt,
}

/// What `runner cache stats` shows.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub entries: u64,
    pub bytes: u64,
}

impl Store {
    pub fn new(dir: Utf8PathBuf, max_size: u64) -> Store {
        Store { dir, max_size }
    }

    pub fn dir(&self) -> &Utf8Path {
        &self.dir
    }

    fn path(&self, key: &str) -> Utf8PathBuf {
        let (prefix, rest) = key.split_at(2.min(key.len()));
        self.dir.join(FORMAT).join(prefix).join(rest)
    }

    pub fn get(&self, key: &str) -> Found {
        let path = self.path(key);
        // Never opens anything but a regular file: a FIFO planted here must not block a run.
        let bytes = match crate::foreign::read(&path) {
            Ok(Some(bytes)) => bytes,
            Ok(None) => return Found::Miss,
            Err(_) => return Found::Corrupt,
        };
        let Some(payload) = payload(&bytes, key) else {
            let _ = std::fs::remove_file(&path);
            return Found::Corrupt;
        };
        // The last use decides eviction; a failure only makes the entry look older.
        let _ = std::fs::File::options()
            .write(true)
            .open(&path)
            .and_then(|file| file.set_modified(SystemTime::now()));
        Found::Hit(payload.to_vec())
    }

    pub fn put(&self, key: &str, payload: &[u8]) -> Result<()> {
        let path = self.path(key);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("cannot create {parent}"))?;
        }
        crate::foreign::write(&path, &encode(key, payload))
    }

    /// Removes the least recently used entries until the store is within its bound again
    /// (to 90 % of it, so the next run does not evict again at once). Another run removing
    /// the same files at the same time is harmless.
    pub fn evict(&self) -> u64 {
        let mut entries = self.entries();
        let mut total: u64 = entries.iter().map(|entry| entry.1).sum();
        if total <= self.max_size {
            return 0;
        }
        entries.sort_by_key(|entry| entry.2);
        let goal = self.max_size / 10 * 9;
        let mut removed = 0;
        for (path, size, _) in entries {
            if total <= goal {
                break;
            }
            if std::fs::remove_file(&path).is_ok() {
                removed += 1;
            }
            total = total.saturating_sub(size);
        }
        removed
    }

    pub fn stats(&self) -> Stats {
        let entries = self.entries();
        Stats {
            entries: entries.len() as u64,
            bytes: entries.iter().map(|entry| entry.1).sum(),
        }
    }

    /// Removes every entry; returns how many there were.
    pub fn clear(&self) -> Result<u64> {
        let count = self.stats().entries;
        match std::fs::remove_dir_all(&self.dir) {
            Ok(()) => Ok(count),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(0),
            Err(error) => Err(error).with_context(|| format!("cannot remove {}", self.dir)),
        }
    }

    /// Every entry with its size and last use (temporaries of writes under way left out).
    fn entries(&self) -> Vec<(Utf8PathBuf, u64, SystemTime)> {
        let mut found = Vec::new();
        let Ok(prefixes) = self.dir.join(FORMAT).read_dir_utf8() else {
            return found;
        };
        for prefix in prefixes.flatten() {
            let Ok(files) = prefix.path().read_dir_utf8() else {
                continue;
            };
            for file in files.flatten() {
                if file.file_name().starts_with('.') {
                    continue;
                }
                let Ok(meta) = file.metadata() else {
                    continue;
                };
                let used = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
                found.push((file.path().to_owned(), meta.len(), used));
            }
        }
        found
    }
}

/// An entry's bytes: the header (checksum of the payload, the key) and the payload.
pub(crate) fn encode(key: &str, payload: &[u8]) -> Vec<u8> {
    let mut contents = format!("{MAGIC} {} {key}\n", key::digest(payload)).into_bytes();
    contents.extend_from_slice(payload);
    contents
}

/// The payload of a well-formed entry stored under `key` whose checksum holds.
fn payload<'b>(bytes: &'b [u8], key: &str) -> Option<&'b [u8]> {
    let newline = bytes.iter().position(|&b| b == b'\n')?;
    let header = std::str::from_utf8(&bytes[..newline]).ok()?;
    let (checksum, stored_under) = header
        .strip_prefix(MAGIC)?
        .strip_prefix(' ')?
        .split_once(' ')?;
    let payload = &bytes[newline + 1..];
    (stored_under == key && key::digest(payload) == checksum).then_some(payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(max_size: u64) -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let path = Utf8PathBuf::from_path_buf(dir.path().join("runner-cache")).unwrap();
        (dir, Store::new(path, max_size))
    }

    #[test]
    fn an_entry_reads_back_and_a_damaged_one_is_a_corrupt_miss() {
        let (_dir, store) = store(1 << 20);
        let key = key::digest(b"k");
        assert_eq!(store.get(&key), Found::Miss);
        store.put(&key, b"{\"a\":1}").unwrap();
        assert_eq!(store.get(&key), Found::Hit(b"{\"a\":1}".to_vec()));
        let path = store.path(&key);
        let mut bytes = std::fs::read(&path).unwrap();
        *bytes.last_mut().unwrap() = b'2';
        std::fs::write(&path, bytes).unwrap();
        assert_eq!(store.get(&key), Found::Corrupt);
        assert!(!path.exists(), "a corrupt entry is removed");
        assert_eq!(store.get(&key), Found::Miss);
    }

    #[test]
    fn an_entry_under_another_key_is_no_hit() {
        let (_dir, store) = store(1 << 20);
        let (a, b) = (key::digest(b"a"), key::digest(b"b"));
        store.put(&a, b"result of a").unwrap();
        store.put(&b, b"result of b").unwrap();
        std::fs::copy(store.path(&a), store.path(&b)).unwrap();
        assert_eq!(store.get(&b), Found::Corrupt);
        assert_eq!(store.get(&a), Found::Hit(b"result of a".to_vec()));
    }

    #[test]
    fn eviction_removes_the_least_recently_used_first() {
        let (_dir, store) = store(2700);
        let keys: Vec<String> = (0..3).map(|i| key::digest(&[i])).collect();
        for (age, key) in keys.iter().enumerate() {
            store.put(key, &[b'x'; 1000]).unwrap();
            let when = SystemTime::now() - std::time::Duration::from_secs(100 - age as u64);
            std::fs::File::options()
                .write(true)
                .open(store.path(key))
                .unwrap()
                .set_modified(when)
                .unwrap();
        }
        // Used now: the oldest by creation becomes the newest by use.
        assert!(matches!(store.get(&keys[0]), Found::Hit(_)));
        assert_eq!(store.evict(), 1);
        assert!(matches!(store.get(&keys[0]), Found::Hit(_)));
        assert_eq!(store.get(&keys[1]), Found::Miss);
        assert_eq!(store.stats().entries, 2);
        assert_eq!(store.clear().unwrap(), 2);
        assert_eq!(store.stats(), Stats::default());
    }
}
