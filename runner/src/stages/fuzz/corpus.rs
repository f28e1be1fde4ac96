//! Where a target's corpus lives across runs and how a run's new inputs reach it: libFuzzer
//! writes into a private folder of the run, and only whole, content-named files are copied
//! into the kept corpus afterwards, so jobs sharing one corpus folder never lose or corrupt
//! each other's inputs.

use anyhow::{Context as _, Result};
use camino::{Utf8Path, Utf8PathBuf};

use super::discover::slug;
use super::discover::FuzzTarget;
use super::settings::Settings;

/// The kept corpus of a target: `DIR/<target>/` with a corpus folder, else the project's own
/// `corpus/<target>` (cargo-fuzz's place, which hand runs grow too).
pub fn store(settings: &Settings, target: &FuzzTarget) -> Utf8PathBuf {
    match &settings.corpus_dir {
        Some(dir) => dir.join(slug(&target.label)),
        None => target.corpus.clone(),
    }
}

/// The folders libFuzzer only reads: the project's corpus when a corpus folder holds the kept
/// one (it seeds it, and is never written), and the seed corpus.
pub fn read_only(settings: &Settings, target: &FuzzTarget) -> Vec<Utf8PathBuf> {
    let mut dirs = Vec::new();
    if settings.corpus_dir.is_some() && target.corpus.is_dir() {
        dirs.push(target.corpus.clone());
    }
    dirs.extend(target.seeds.clone());
    dirs
}

/// Copies the inputs libFuzzer wrote into `work` into `store`. libFuzzer names each input by
/// the SHA-1 of its content, so a name already in the store holds the same bytes (another job
/// found it too) and is left alone; every copy is written to a temporary and renamed, so a
/// reader never sees half an input. Returns how many inputs were added.
pub fn merge(work: &Utf8Path, store: &Utf8Path) -> Result<u64> {
    std::fs::create_dir_all(store).with_context(|| format!("cannot create {store}"))?;
    let mut added = 0;
    let Ok(entries) = std::fs::read_dir(work) else {
        return Ok(0);
    };
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot read {work}"))?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        // libFuzzer's own temporaries and anything that is not a finished input.
        if name.starts_with('.') || !entry.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        let destination = store.join(&name);
        if destination.exists() {
            continue;
        }
        crate::foreign::copy(&work.join(&name), &destination)?;
        added += 1;
    }
    Ok(added)
}

/// Adds one input under a name derived from its content (a fixed crash's input kept as a
/// regression input), atomically.
pub fn add(store: &Utf8Path, input: &[u8]) -> Result<()> {
    std::fs::create_dir_all(store).with_context(|| format!("cannot create {store}"))?;
    let name = format!(
        "regression-{}-{}",
        crate::hash::digest(&[&String::from_utf8_lossy(input)]),
        input.len()
    );
    let destination = store.join(name);
    if destination.exists() {
        return Ok(());
    }
    crate::foreign::write(&destination, input)
}

/// A fresh private folder for one target's new inputs in this run.
pub fn fresh_work_dir(stage_dir: &Utf8Path, target: &FuzzTarget) -> Result<Utf8PathBuf> {
    let work = stage_dir.join("new-inputs").join(slug(&target.label));
    if work.exists() {
        std::fs::remove_dir_all(&work).with_context(|| format!("cannot clear {work}"))?;
    }
    std::fs::create_dir_all(&work).with_context(|| format!("cannot create {work}"))?;
    Ok(work)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merging_keeps_every_input_once_and_skips_temporaries() {
        let dir = tempfile::tempdir().unwrap();
        let root = Utf8Path::from_path(dir.path()).unwrap();
        let (first, second, store) = (root.join("a"), root.join("b"), root.join("store"));
        for work in [&first, &second] {
            std::fs::create_dir_all(work).unwrap();
        }
        std::fs::write(first.join("aaaa"), b"one").unwrap();
        std::fs::write(first.join("shared"), b"same").unwrap();
        std::fs::write(second.join("shared"), b"same").unwrap();
        std::fs::write(second.join("bbbb"), b"two").unwrap();
        std::fs::write(second.join(".partial.tmp"), b"t").unwrap();
        assert_eq!(merge(&first, &store).unwrap(), 2);
        assert_eq!(merge(&second, &store).unwrap(), 1);
        let mut names: Vec<String> = std::fs::read_dir(&store)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["aaaa", "bbbb", "shared"]);
        assert_eq!(merge(&root.join("missing"), &store).unwrap(), 0);
    }

    #[test]
    fn concurrent_merges_into_one_store_lose_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let root = Utf8Path::from_path(dir.path()).unwrap().to_path_buf();
        let store = root.join("store");
        let works: Vec<Utf8PathBuf> = (0..4)
            .map(|job| {
                let work = root.join(format!("work{job}"));
                std::fs::create_dir_all(&work).unwrap();
                for input in 0..50 {
                    // Half the inputs are found by every job, half by one.
                    let name = if input % 2 == 0 {
                        format!("common{input}")
                    } else {
                        format!("job{job}-{input}")
                    };
                    std::fs::write(work.join(&name), name.repeat(100)).unwrap();
                }
                work
            })
            .collect();
        std::thread::scope(|scope| {
            for work in &works {
                let store = store.clone();
                scope.spawn(move || merge(work, &store).unwrap());
            }
        });
        let files: Vec<_> = std::fs::read_dir(&store).unwrap().collect();
        assert_eq!(files.len(), 25 + 4 * 25);
        for file in files {
            let file = file.unwrap();
            let name = file.file_name().into_string().unwrap();
            assert_eq!(
                std::fs::read(file.path()).unwrap(),
                name.repeat(100).into_bytes()
            );
        }
    }
}
