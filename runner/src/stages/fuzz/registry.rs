//! The crash registry: every distinct crash (by stack signature) kept with its minimized
//! input and its finding, so later runs replay it first and say whether it is still present
//! or fixed. One entry is two files per crash, the input and then the record naming it, each
//! written atomically: jobs sharing the registry never see half an entry.

use anyhow::{Context as _, Result};
use camino::{Utf8Path, Utf8PathBuf};
use serde::{Deserialize, Serialize};

use super::discover::FuzzTarget;
use super::session::slug;
use crate::report::Finding;

/// One registered crash.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The file name stem of the entry (a hash of target and signature).
    pub key: String,
    pub signature: String,
    pub finding: Finding,
    pub input: Utf8PathBuf,
    record: Utf8PathBuf,
}

/// `<key>.json`: the record of one entry.
#[derive(Debug, Serialize, Deserialize)]
struct Record {
    target: String,
    signature: String,
    /// The input file, beside the record.
    input: String,
    finding: Finding,
}

fn target_dir(registry: &Utf8Path, target: &FuzzTarget) -> Utf8PathBuf {
    registry.join(slug(&target.label))
}

fn key(target: &FuzzTarget, signature: &str) -> String {
    crate::fingerprint::fingerprint(&[&target.label, signature])
}

/// The target's entries; a record that cannot be read, or whose input is gone, is no entry
/// (a job may be half-way through writing it).
pub fn load(registry: &Utf8Path, target: &FuzzTarget) -> Vec<Entry> {
    let dir = target_dir(registry, target);
    let Ok(files) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut entries: Vec<Entry> = files
        .filter_map(Result::ok)
        .filter_map(|file| Utf8PathBuf::from_path_buf(file.path()).ok())
        .filter(|path| path.extension() == Some("json"))
        .filter_map(|record| {
            let text = std::fs::read_to_string(&record).ok()?;
            let stored: Record = serde_json::from_str(&text).ok()?;
            let input = dir.join(&stored.input);
            input.is_file().then(|| Entry {
                key: record.file_stem().unwrap_or_default().to_owned(),
                signature: stored.signature,
                finding: stored.finding,
                input,
                record,
            })
        })
        .collect();
    entries.sort_by(|a, b| a.key.cmp(&b.key));
    entries
}

/// Registers a crash unless its signature already is; returns whether it was new.
pub fn register(
    registry: &Utf8Path,
    target: &FuzzTarget,
    signature: &str,
    finding: &Finding,
    input: &[u8],
) -> Result<bool> {
    let dir = target_dir(registry, target);
    let key = key(target, signature);
    let record = dir.join(format!("{key}.json"));
    if record.is_file() {
        return Ok(false);
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {dir}"))?;
    let input_name = format!("{key}.input");
    crate::foreign::write(&dir.join(&input_name), input)?;
    let stored = Record {
        target: target.label.clone(),
        signature: signature.to_owned(),
        input: input_name,
        finding: finding.clone(),
    };
    crate::foreign::write(&record, serde_json::to_string_pretty(&stored)?.as_bytes())?;
    Ok(true)
}

/// Takes a fixed crash out of the registry; its input joins the corpus (by the caller), so
/// the crash coming back is found at once, as a new crash.
pub fn retire(entry: &Entry) -> Result<()> {
    // The record first: without it the entry is gone even if the input stays behind.
    std::fs::remove_file(&entry.record)
        .with_context(|| format!("cannot remove {}", entry.record))?;
    let _ = std::fs::remove_file(&entry.input);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::testing::finding;
    use crate::stages::StageName;

    fn target() -> FuzzTarget {
        FuzzTarget {
            name: "parse".into(),
            label: "parse".into(),
            fuzz_dir: "fuzz".into(),
            corpus: "fuzz/corpus/parse".into(),
            seeds: None,
            dictionary: None,
        }
    }

    #[test]
    fn a_crash_is_registered_once_read_back_and_retired() {
        let dir = tempfile::tempdir().unwrap();
        let registry = Utf8Path::from_path(dir.path()).unwrap();
        let crash = finding(StageName::Fuzz, "fp");
        assert!(register(registry, &target(), "panic|f", &crash, b"BUG!").unwrap());
        assert!(!register(registry, &target(), "panic|f", &crash, b"other").unwrap());
        let entries = load(registry, &target());
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].signature, "panic|f");
        assert_eq!(entries[0].finding.fingerprint, "fp");
        assert_eq!(std::fs::read(&entries[0].input).unwrap(), b"BUG!");
        retire(&entries[0]).unwrap();
        assert!(load(registry, &target()).is_empty());
    }

    #[test]
    fn a_record_without_its_input_is_no_entry() {
        let dir = tempfile::tempdir().unwrap();
        let registry = Utf8Path::from_path(dir.path()).unwrap();
        register(
            registry,
            &target(),
            "s",
            &finding(StageName::Fuzz, "fp"),
            b"x",
        )
        .unwrap();
        let entry = load(registry, &target()).remove(0);
        std::fs::remove_file(&entry.input).unwrap();
        assert!(load(registry, &target()).is_empty());
    }
}
