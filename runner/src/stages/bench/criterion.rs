//! criterion's files, read directly because criterion exits 0 even when it prints
//! "Performance has regressed.": per benchmark `new/estimates.json` (this run),
//! `<baseline>/estimates.json` and `change/estimates.json` (the comparison with its
//! confidence interval); and the copy of a baseline between `.runner/` and criterion's folder.

use anyhow::{Context as _, Result};
use camino::{Utf8Path, Utf8PathBuf};
use serde::Deserialize;

/// One statistic with its confidence interval, in criterion's units (nanoseconds for
/// times, a fraction for changes: 0.1 is +10 %).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
pub struct Estimate {
    pub point_estimate: f64,
    pub confidence_interval: Interval,
}

#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
pub struct Interval {
    pub confidence_level: f64,
    pub lower_bound: f64,
    pub upper_bound: f64,
}

/// The part of an `estimates.json` runner uses: the mean, as criterion's own verdict does.
#[derive(Debug, Clone, Deserialize)]
struct Estimates {
    mean: Estimate,
}

/// `benchmark.json`: the id a benchmark is known by and the folder it lives in.
#[derive(Debug, Clone, Deserialize)]
struct BenchmarkInfo {
    full_id: String,
    directory_name: String,
}

/// One benchmark's results as criterion left them after a run.
#[derive(Debug, Clone, PartialEq)]
pub struct Measured {
    pub id: String,
    /// Relative to criterion's folder, like `checksum/fnv`.
    pub directory: Utf8PathBuf,
    pub current: Estimate,
    pub baseline: Option<Estimate>,
    pub change: Option<Estimate>,
}

/// The files that make up a saved baseline, all of which criterion reads to compare.
const BASELINE_FILES: &[&str] = &[
    "benchmark.json",
    "estimates.json",
    "sample.json",
    "tukey.json",
];

/// Every benchmark criterion measured into `home` in this run, sorted by id.
pub fn measured(home: &Utf8Path, baseline: &str) -> Result<Vec<Measured>> {
    let mut results = Vec::new();
    for info_file in find_files(home, "benchmark.json")? {
        let Some(dir) = info_file.parent() else {
            continue;
        };
        if dir.file_name() != Some("new") {
            continue;
        }
        let info: BenchmarkInfo = read_json(&info_file)?;
        let bench_dir = home.join(&info.directory_name);
        let current: Estimates = read_json(&dir.join("estimates.json"))?;
        let baseline_file = bench_dir.join(baseline).join("estimates.json");
        let change_file = bench_dir.join("change").join("estimates.json");
        results.push(Measured {
            id: info.full_id,
            directory: info.directory_name.into(),
            current: current.mean,
            baseline: optional::<Estimates>(&baseline_file)?.map(|e| e.mean),
            change: optional::<Estimates>(&change_file)?.map(|e| e.mean),
        });
    }
    results.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(results)
}

/// Puts a saved baseline where criterion looks for it: `<home>/<bench>/<name>/`.
pub fn restore(saved: &Utf8Path, home: &Utf8Path, name: &str) -> Result<usize> {
    if !saved.is_dir() {
        return Ok(0);
    }
    let mut restored = 0;
    for info_file in find_files(saved, "benchmark.json")? {
        let Some(dir) = info_file.parent() else {
            continue;
        };
        let relative = dir.strip_prefix(saved).unwrap_or(dir);
        copy_files(dir, &home.join(relative).join(name))?;
        restored += 1;
    }
    Ok(restored)
}

/// Whether criterion's folder holds a baseline named `name` for any benchmark.
pub fn has_baseline(home: &Utf8Path, name: &str) -> bool {
    find_files(home, "benchmark.json").is_ok_and(|files| {
        files
            .iter()
            .any(|file| file.parent().and_then(Utf8Path::file_name) == Some(name))
    })
}

/// Saves this run's results of one benchmark as its baseline in `saved`.
pub fn save(home: &Utf8Path, measured: &Measured, saved: &Utf8Path) -> Result<()> {
    let from = home.join(&measured.directory).join("new");
    copy_files(&from, &saved.join(&measured.directory))
}

fn copy_files(from: &Utf8Path, to: &Utf8Path) -> Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("cannot create {to}"))?;
    for file in BASELINE_FILES {
        let source = from.join(file);
        if source.is_file() {
            // Atomic, so a baseline is never half-written by a run that was killed.
            crate::foreign::copy(&source, &to.join(file))?;
        }
    }
    Ok(())
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Utf8Path) -> Result<T> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {path}"))?;
    serde_json::from_str(&text).with_context(|| format!("unexpected criterion data in {path}"))
}

fn optional<T: serde::de::DeserializeOwned>(path: &Utf8Path) -> Result<Option<T>> {
    if path.is_file() {
        read_json(path).map(Some)
    } else {
        Ok(None)
    }
}

/// Every file called `name` below `dir`, in a stable order.
pub fn find_files(dir: &Utf8Path, name: &str) -> Result<Vec<Utf8PathBuf>> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = dir.read_dir_utf8() else {
            continue;
        };
        for entry in entries {
            let entry = entry.with_context(|| format!("cannot list {dir}"))?;
            let path = entry.path().to_path_buf();
            if path.is_dir() {
                pending.push(path);
            } else if entry.file_name() == name {
                found.push(path);
            }
        }
    }
    found.sort();
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// criterion 0.5.1's files for one benchmark measured twice, the second time 2× slower
    /// against the saved baseline `main` (captured on this machine, see tests/data/bench).
    fn captured_home() -> tempfile::TempDir {
        let data = Utf8Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/bench/criterion");
        let dir = tempfile::tempdir().unwrap();
        let home = Utf8Path::from_path(dir.path()).unwrap();
        for file in find_files(&data, "estimates.json")
            .unwrap()
            .into_iter()
            .chain(find_files(&data, "benchmark.json").unwrap())
        {
            let relative = file.strip_prefix(&data).unwrap();
            std::fs::create_dir_all(home.join(relative).parent().unwrap()).unwrap();
            std::fs::copy(&file, home.join(relative)).unwrap();
        }
        dir
    }

    #[test]
    fn reads_the_current_run_its_baseline_and_the_change() {
        let dir = captured_home();
        let home = Utf8Path::from_path(dir.path()).unwrap();
        let results = measured(home, "main").unwrap();
        assert_eq!(results.len(), 1);
        let fnv = &results[0];
        assert_eq!(fnv.id, "checksum/fnv");
        assert_eq!(fnv.directory, "checksum/fnv");
        let baseline = fnv.baseline.unwrap();
        let change = fnv.change.unwrap();
        assert!(fnv.current.point_estimate > baseline.point_estimate);
        assert!(change.confidence_interval.lower_bound > 0.5, "{change:?}");
        assert!((change.confidence_interval.confidence_level - 0.95).abs() < 1e-9);
        assert!(measured(home, "other").unwrap()[0].baseline.is_none());
    }

    #[test]
    fn a_saved_baseline_round_trips_into_criterions_layout() {
        let dir = captured_home();
        let home = Utf8Path::from_path(dir.path()).unwrap();
        let saved_dir = tempfile::tempdir().unwrap();
        let saved = Utf8Path::from_path(saved_dir.path()).unwrap();
        for result in measured(home, "main").unwrap() {
            save(home, &result, saved).unwrap();
        }
        assert!(saved.join("checksum/fnv/estimates.json").is_file());
        let fresh_dir = tempfile::tempdir().unwrap();
        let fresh = Utf8Path::from_path(fresh_dir.path()).unwrap();
        assert_eq!(restore(saved, fresh, "release").unwrap(), 1);
        assert!(fresh.join("checksum/fnv/release/benchmark.json").is_file());
        assert_eq!(restore(&saved.join("absent"), fresh, "x").unwrap(), 0);
    }
}
