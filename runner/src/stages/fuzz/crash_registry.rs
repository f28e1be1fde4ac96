//! The crash registry: every distinct crash (by stack signature) kept with its minimized
//! input and its finding, so later runs replay it first and say whether it is still present
//! or fixed. One entry is two files per crash, the input and then the record naming it, each
//! written atomically: jobs sharing the registry never see half an entry.

use anyhow::{Context as _, Result};
use camino::{Utf8Path, Utf8PathBuf};
use serde::{Deserialize, Serialize};

use super::discover::slug;
use super::discover::FuzzTarget;
use crate::report::Finding;

/// One registered crash.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The file name stem of the entry (a hash of target and signature).
    pub key: String,
    /// The signature and finding of its record; none when the record cannot be read (its
    /// input is still replayed: a damaged record must not hide a crash).
    pub signature: Option<String>,
    pub finding: Option<Finding>,
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
    crate::hash::digest(&[&target.label, signature])
}

/// The target's entries, and a note per record that cannot be read (naming its file). Such
/// a record's input (`<key>.input` beside it), when present, is still an entry to replay,
/// with no finding; an entry whose input is gone is none (a job may be half-way through
/// writing it: the input is written first).
pub fn load(registry: &Utf8Path, target: &FuzzTarget) -> (Vec<Entry>, Vec<String>) {
    let dir = target_dir(registry, target);
    let Ok(files) = std::fs::read_dir(&dir) else {
        return (Vec::new(), Vec::new());
    };
    let mut entries = Vec::new();
    let mut notes = Vec::new();
    let records = files
        .filter_map(Result::ok)
        .filter_map(|file| Utf8PathBuf::from_path_buf(file.path()).ok())
        .filter(|path| path.extension() == Some("json"));
    for record in records {
        let key = record.file_stem().unwrap_or_default().to_owned();
        let stored = crate::foreign::read(&record)
            .ok()
            .flatten()
            .and_then(|bytes| serde_json::from_slice::<Record>(&bytes).ok());
        let (input, signature, finding) = if let Some(stored) = stored {
            (
                dir.join(&stored.input),
                Some(stored.signature),
                Some(stored.finding),
            )
        } else {
            let input = dir.join(format!("{key}.input"));
            notes.push(format!(
                "{}: the crash registry's record {record} cannot be read{}",
                target.label,
                if input.is_file() {
                    "; its input was replayed as an unknown crash"
                } else {
                    " and has no input beside it"
                }
            ));
            (input, None, None)
        };
        if input.is_file() {
            entries.push(Entry {
                key,
                signature,
                finding,
                input,
                record,
            });
        }
    }
    entries.sort_by(|a, b| a.key.cmp(&b.key));
    (entries, notes)
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
    use crate::stage_name::StageName;

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
        let (entries, notes) = load(registry, &target());
        assert_eq!(entries.len(), 1);
        assert!(notes.is_empty(), "{notes:?}");
        assert_eq!(entries[0].signature.as_deref(), Some("panic|f"));
        assert_eq!(entries[0].finding.as_ref().unwrap().fingerprint, "fp");
        assert_eq!(std::fs::read(&entries[0].input).unwrap(), b"BUG!");
        retire(&entries[0]).unwrap();
        assert!(load(registry, &target()).0.is_empty());
    }

    #[test]
    fn an_unreadable_record_is_a_note_and_its_input_still_an_entry() {
        let dir = tempfile::tempdir().unwrap();
        let registry = Utf8Path::from_path(dir.path()).unwrap();
        let crash = finding(StageName::Fuzz, "fp");
        register(registry, &target(), "panic|f", &crash, b"BUG!").unwrap();
        let record = load(registry, &target()).0.remove(0).record;
        std::fs::write(&record, "garbage{").unwrap();
        let (entries, notes) = load(registry, &target());
        assert_eq!(entries.len(), 1, "{notes:?}");
        assert!(entries[0].finding.is_none());
        assert_eq!(std::fs::read(&entries[0].input).unwrap(), b"BUG!");
        assert_eq!(notes.len(), 1);
        assert!(notes[0].contains(record.as_str()), "{notes:?}");
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
        let entry = load(registry, &target()).0.remove(0);
        std::fs::remove_file(&entry.input).unwrap();
        assert!(load(registry, &target()).0.is_empty());
    }
}
