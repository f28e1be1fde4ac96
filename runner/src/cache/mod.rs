//! The result cache: a deterministic test result stored under the hash of everything it
//! depends on (what ran, how, with which tools), so a run whose inputs did not change reports
//! it again without running it. The kernel's side is `exec::cached`; a stage says what its
//! binaries depend on through `Tool::cache_inputs`.

pub mod key;
pub mod store;

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use anyhow::{bail, Result};
use camino::{Utf8Path, Utf8PathBuf};

use crate::process::Cmd;
use crate::workspace::Workspace;
use key::{FileDigests, KeyHasher};
use store::Store;

/// The store's bound unless configured: entries are a few kilobytes each.
const DEFAULT_MAX_SIZE: u64 = 512 << 20;

/// The folder of the store, under the workspace's target dir.
pub fn dir(workspace: &Workspace) -> Utf8PathBuf {
    workspace.target_dir.join("runner-cache")
}

/// The cache of one run.
pub struct Cache {
    pub store: Store,
    /// This run: recorded with each entry, so a finding from the cache names the run that
    /// first found it.
    pub run_id: String,
    /// Whether `ThreadSanitizer`'s results are cached.
    pub thread: bool,
    root: Utf8PathBuf,
    /// The report folder, which differs between runs (`--out`) but never decides a result.
    out_dir: Utf8PathBuf,
    members: Vec<Utf8PathBuf>,
    inputs: Vec<String>,
    declared: OnceLock<String>,
    /// The declared variables with their values in this run, sorted by name.
    env: Vec<(String, Option<String>)>,
    files: FileDigests,
    versions: Mutex<HashMap<String, String>>,
}

impl Cache {
    pub fn open(workspace: &Workspace, out_dir: &Utf8Path, run_id: &str) -> Result<Cache> {
        let config = &workspace.config.cache;
        let max_size = match &config.max_size {
            Some(text) => parse_size(text)?,
            None => DEFAULT_MAX_SIZE,
        };
        // A bad glob, or more declared input than the bound, is an input error now, not a
        // silent miss (or an exhausted machine) later.
        key::declared(&workspace.root, &config.inputs)?;
        let mut env: Vec<(String, Option<String>)> = Vec::new();
        for name in &config.env {
            if name.is_empty() || name.contains(['=', '\0']) {
                bail!("invalid runner config key `cache.env`: `{name}` is not a variable name");
            }
            env.push((name.clone(), std::env::var(name).ok()));
        }
        env.sort();
        env.dedup();
        Ok(Cache {
            store: Store::new(dir(workspace), max_size),
            run_id: run_id.to_owned(),
            thread: config.thread,
            root: workspace.root.clone(),
            out_dir: out_dir.to_owned(),
            members: workspace
                .members
                .iter()
                .filter_map(|member| member.manifest_path.parent().map(Utf8Path::to_owned))
                .collect(),
            inputs: config.inputs.clone(),
            declared: OnceLock::new(),
            env,
            files: FileDigests::default(),
            versions: Mutex::new(HashMap::new()),
        })
    }

    /// `text` with the report folder named by a placeholder: valgrind's shipped suppressions
    /// and the logs live there, and `--out` must not change a key.
    pub fn without_report_folder(&self, text: &str) -> String {
        text.replace(self.out_dir.as_str(), "<report folder>")
    }

    pub fn file_digest(&self, path: &Utf8Path) -> String {
        self.files.of(path)
    }

    /// The output of a version command, run once per run.
    pub fn version(&self, cmd: &Cmd) -> String {
        let line = cmd.to_string();
        let mut versions = self
            .versions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        versions
            .entry(line)
            .or_insert_with(|| cmd.output_text().unwrap_or_else(|_| "unknown".to_owned()))
            .clone()
    }

    /// One digest of every file the user declared (names and bytes).
    pub fn declared_inputs(&self) -> &str {
        self.declared.get_or_init(|| {
            let mut hasher = KeyHasher::new("declared");
            for path in key::declared(&self.root, &self.inputs).unwrap_or_default() {
                hasher
                    .text(path.strip_prefix(&self.root).unwrap_or(&path).as_str())
                    .text(&self.files.of(&path));
            }
            hasher.finish()
        })
    }

    /// The variables `cache.env` declares, with their values (`None`: unset).
    pub fn declared_env(&self) -> &[(String, Option<String>)] {
        &self.env
    }

    /// Every workspace member's library files and the lock file: what a doctest harness
    /// (compiled by rustdoc when it runs) depends on.
    pub fn library_files(&self) -> Vec<Utf8PathBuf> {
        let mut files: Vec<Utf8PathBuf> = self
            .members
            .iter()
            .flat_map(|m| key::library_files(m))
            .collect();
        files.push(self.root.join("Cargo.lock"));
        files.sort();
        files.dedup();
        files
    }
}

/// `512m`, `2g`, `100k` or a number of bytes.
pub fn parse_size(text: &str) -> Result<u64> {
    let trimmed = text.trim();
    let (digits, unit) = match trimmed.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((at, _)) => trimmed.split_at(at),
        None => (trimmed, ""),
    };
    let shift = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        _ => bail!(
            "invalid runner config key `cache.max-size`: `{text}`; use a size like 512m or 2g"
        ),
    };
    let Ok(number) = digits.parse::<u64>() else {
        bail!("invalid runner config key `cache.max-size`: `{text}`; use a size like 512m or 2g");
    };
    match number.checked_mul(1 << shift) {
        Some(bytes) if bytes > 0 => Ok(bytes),
        _ => bail!(
            "invalid runner config key `cache.max-size`: `{text}`; use a size like 512m or 2g"
        ),
    }
}

/// `runner cache stats`.
pub fn stats(workspace: &Workspace) -> String {
    let store = Store::new(dir(workspace), DEFAULT_MAX_SIZE);
    let stats = store.stats();
    #[allow(clippy::cast_precision_loss, reason = "a size for people")]
    let mebibytes = stats.bytes as f64 / f64::from(1 << 20);
    format!(
        "{}: {} entries, {mebibytes:.1} MiB",
        store.dir(),
        stats.entries
    )
}

/// `runner cache clear`.
pub fn clear(workspace: &Workspace) -> Result<String> {
    let store = Store::new(dir(workspace), DEFAULT_MAX_SIZE);
    let removed = store.clear()?;
    Ok(format!("{}: removed {removed} entries", store.dir()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_with_units_and_bad_ones_say_the_key() {
        assert_eq!(parse_size("512m").unwrap(), 512 << 20);
        assert_eq!(parse_size("2G").unwrap(), 2 << 30);
        assert_eq!(parse_size("4096").unwrap(), 4096);
        for bad in ["", "0", "m", "12x", "99999999999999g"] {
            let error = parse_size(bad).unwrap_err().to_string();
            assert!(error.contains("cache.max-size"), "{bad}: {error}");
        }
    }
}
