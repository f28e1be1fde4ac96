//! Finds the workspace's cargo-fuzz projects and their targets, with each target's corpus,
//! seed corpus and dictionary, so no one keeps a hand-written list of targets.

use anyhow::Result;
use camino::{Utf8Path, Utf8PathBuf};

use crate::workspace::Workspace;

/// One fuzz target of one cargo-fuzz project.
#[derive(Debug, Clone)]
pub struct FuzzTarget {
    /// The `[[bin]]` name, as `cargo fuzz run` takes it.
    pub name: String,
    /// The name in the report: the bare name, or `dir/name` when several projects exist.
    pub label: String,
    /// The cargo-fuzz project directory (the one with the fuzz `Cargo.toml`).
    pub fuzz_dir: Utf8PathBuf,
    /// cargo-fuzz's own corpus folder, reused and grown across runs (and by hand runs).
    pub corpus: Utf8PathBuf,
    /// A read-only seed corpus (`seeds/<name>/`), when the project has one.
    pub seeds: Option<Utf8PathBuf>,
    /// A libFuzzer dictionary, when the project has one for this target.
    pub dictionary: Option<Utf8PathBuf>,
}

/// The cargo-fuzz projects: `fuzz/` at the root and in each member, and members that are
/// themselves cargo-fuzz projects. Sorted, without duplicates.
pub fn projects(workspace: &Workspace) -> Vec<Utf8PathBuf> {
    let mut candidates = vec![workspace.root.join("fuzz")];
    for member in &workspace.members {
        if let Some(dir) = member.manifest_path.parent() {
            candidates.push(dir.join("fuzz"));
            candidates.push(dir.to_path_buf());
        }
    }
    let mut found: Vec<Utf8PathBuf> = candidates
        .into_iter()
        .filter(|dir| is_fuzz_project(dir))
        .collect();
    found.sort();
    found.dedup();
    found
}

/// cargo-fuzz's own test: the manifest sets `package.metadata.cargo-fuzz = true`.
fn is_fuzz_project(dir: &Utf8Path) -> bool {
    let Ok(text) = std::fs::read_to_string(dir.join("Cargo.toml")) else {
        return false;
    };
    let Ok(manifest) = toml::from_str::<toml::Table>(&text) else {
        return false;
    };
    manifest
        .get("package")
        .and_then(|p| p.get("metadata"))
        .and_then(|m| m.get("cargo-fuzz"))
        .and_then(toml::Value::as_bool)
        == Some(true)
}

/// The targets `cargo fuzz list` printed for a project.
pub fn targets_of(
    workspace: &Workspace,
    fuzz_dir: &Utf8Path,
    listing: &str,
    several_projects: bool,
) -> Vec<FuzzTarget> {
    let prefix = workspace
        .relative(fuzz_dir)
        .map_or_else(|| fuzz_dir.to_string(), ToString::to_string);
    listing
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.contains(char::is_whitespace))
        .map(|name| FuzzTarget {
            name: name.to_owned(),
            label: if several_projects {
                format!("{prefix}/{name}")
            } else {
                name.to_owned()
            },
            fuzz_dir: fuzz_dir.to_path_buf(),
            corpus: fuzz_dir.join("corpus").join(name),
            seeds: Some(fuzz_dir.join("seeds").join(name)).filter(|d| d.is_dir()),
            dictionary: dictionary(fuzz_dir, name),
        })
        .collect()
}

/// The dictionary places cargo-fuzz projects use in practice.
fn dictionary(fuzz_dir: &Utf8Path, name: &str) -> Option<Utf8PathBuf> {
    let file = format!("{name}.dict");
    [
        fuzz_dir.join(&file),
        fuzz_dir.join("dict").join(&file),
        fuzz_dir.join("dicts").join(&file),
        fuzz_dir.join("dictionaries").join(&file),
    ]
    .into_iter()
    .find(|path| path.is_file())
}

/// The libFuzzer a project links: its locked `libfuzzer-sys` version.
pub fn libfuzzer_sys_version(fuzz_dir: &Utf8Path) -> Option<String> {
    let lock: toml::Table =
        toml::from_str(&std::fs::read_to_string(fuzz_dir.join("Cargo.lock")).ok()?).ok()?;
    lock.get("package")?
        .as_array()?
        .iter()
        .find(|p| p.get("name").and_then(toml::Value::as_str) == Some("libfuzzer-sys"))?
        .get("version")?
        .as_str()
        .map(str::to_owned)
}

/// Inputs and bytes in a corpus folder (libFuzzer reads it recursively).
pub fn corpus_size(dir: &Utf8Path) -> Result<(u64, u64)> {
    let mut inputs = 0;
    let mut bytes = 0;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok((0, 0));
    };
    for entry in entries {
        let entry = entry?;
        let kind = entry.file_type()?;
        if kind.is_dir() {
            let Ok(path) = Utf8PathBuf::from_path_buf(entry.path()) else {
                continue;
            };
            let (more_inputs, more_bytes) = corpus_size(&path)?;
            inputs += more_inputs;
            bytes += more_bytes;
        } else if kind.is_file() {
            inputs += 1;
            bytes += entry.metadata()?.len();
        }
    }
    Ok((inputs, bytes))
}

/// A target label as a file name.
pub fn slug(label: &str) -> String {
    label.replace(
        |c: char| !c.is_ascii_alphanumeric() && c != '_' && c != '-',
        "-",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::workspace::Member;

    #[test]
    fn finds_projects_targets_seeds_and_dictionaries() {
        let dir = tempfile::tempdir().unwrap();
        let root = Utf8Path::from_path(dir.path()).unwrap().to_path_buf();
        let fuzz = root.join("fuzz");
        std::fs::create_dir_all(fuzz.join("seeds/parse")).unwrap();
        std::fs::write(
            fuzz.join("Cargo.toml"),
            "[package]\nname = \"f\"\n[package.metadata]\ncargo-fuzz = true\n",
        )
        .unwrap();
        std::fs::write(fuzz.join("parse.dict"), "\"kw\"\n").unwrap();
        std::fs::write(
            fuzz.join("Cargo.lock"),
            "[[package]]\nname = \"libfuzzer-sys\"\nversion = \"0.4.13\"\n",
        )
        .unwrap();
        std::fs::create_dir_all(root.join("member")).unwrap();
        std::fs::write(root.join("member/Cargo.toml"), "[package]\nname = \"m\"\n").unwrap();
        let workspace = Workspace {
            root: root.clone(),
            manifest_path: root.join("Cargo.toml"),
            target_dir: root.join("target"),
            members: vec![Member {
                name: "m".into(),
                manifest_path: root.join("member/Cargo.toml"),
                ..Member::default()
            }],
            config: Config::default(),
        };
        assert_eq!(projects(&workspace), std::slice::from_ref(&fuzz));
        assert_eq!(libfuzzer_sys_version(&fuzz).as_deref(), Some("0.4.13"));
        let targets = targets_of(&workspace, &fuzz, "decode\nparse\n", true);
        assert_eq!(targets[1].label, "fuzz/parse");
        assert_eq!(targets[1].corpus, fuzz.join("corpus/parse"));
        assert_eq!(
            targets[1].seeds.as_deref(),
            Some(&*fuzz.join("seeds/parse"))
        );
        assert_eq!(
            targets[1].dictionary.as_deref(),
            Some(&*fuzz.join("parse.dict"))
        );
        assert!(targets[0].seeds.is_none() && targets[0].dictionary.is_none());
    }

    #[test]
    fn measures_corpus_folders_recursively() {
        let dir = tempfile::tempdir().unwrap();
        let root = Utf8Path::from_path(dir.path()).unwrap();
        std::fs::create_dir(root.join("sub")).unwrap();
        std::fs::write(root.join("a"), b"abc").unwrap();
        std::fs::write(root.join("sub/b"), b"de").unwrap();
        assert_eq!(corpus_size(root).unwrap(), (2, 5));
        assert_eq!(corpus_size(&root.join("missing")).unwrap(), (0, 0));
    }
}
