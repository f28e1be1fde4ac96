//! The measured duration of every test, per stage, remembered between runs in the
//! workspace's `.runner/durations.json` (outside `target/`, so it survives `cargo clean` and
//! can be committed or cached in CI). Shards are balanced with it.

use std::collections::{BTreeMap, BTreeSet};

use camino::{Utf8Path, Utf8PathBuf};
use serde::{Deserialize, Serialize};

use super::test_id::TestId;

/// Stage → test (its [`TestId`], `target harness name`) → seconds; and per stage the tests
/// whose process ended in them the last time they ran.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Durations {
    #[serde(default)]
    stages: BTreeMap<String, BTreeMap<String, f64>>,
    /// A test that ended its process (a crash, Miri's UB, a timeout) runs in a process of its
    /// own next time: in a group, the tests after it would need a new process and the ones
    /// before it a re-run for the exit-time checks its end kept from running.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    ended_process: BTreeMap<String, BTreeSet<String>>,
    /// Stage → test → when it was measured (ms since the epoch): when files are joined, a
    /// test's newest measurement wins, so a slice's copy of older history never overwrites
    /// what another slice measured (entries written before stamps count as oldest).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    measured_at: BTreeMap<String, BTreeMap<String, u64>>,
}

/// Each test's runs that finished on their own, by [`TestId::anywhere`]: (stage, target,
/// seconds).
#[derive(Debug, Default)]
pub struct FinishedRuns<'a>(BTreeMap<&'a str, Vec<(&'a str, &'a str, f64)>>);

impl FinishedRuns<'_> {
    /// The quickest run of `test` other than under `stage` on its own target: (stage,
    /// target, seconds).
    pub fn quickest_elsewhere(&self, test: &TestId, stage: &str) -> Option<(&str, &str, f64)> {
        self.0
            .get(test.anywhere().as_str())?
            .iter()
            .filter(|(there, on, _)| (*there, *on) != (stage, test.target.as_str()))
            .min_by(|a, b| a.2.total_cmp(&b.2))
            .copied()
    }
}

/// Longer than any test runs: a larger figure is a damaged or hand-made file.
const MAX_SECONDS: f64 = 7.0 * 24.0 * 3600.0;

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
        })
}

/// Where a workspace keeps its durations.
pub fn path(workspace_root: &Utf8Path) -> Utf8PathBuf {
    workspace_root.join(".runner").join("durations.json")
}

impl Durations {
    pub fn get(&self, stage: &str, test: &TestId) -> Option<f64> {
        self.stages.get(stage)?.get(&test.to_string()).copied()
    }

    /// The mean measured duration of a stage's tests: what a test not measured yet is
    /// expected to take next to measured ones.
    pub fn mean(&self, stage: &str) -> Option<f64> {
        let tests = self.stages.get(stage).filter(|tests| !tests.is_empty())?;
        #[allow(clippy::cast_precision_loss, reason = "a mean of durations")]
        Some(tests.values().sum::<f64>() / tests.len() as f64)
    }

    /// Where each test finished on its own (in any stage, on any target), with its time,
    /// keyed by [`TestId::anywhere`]: a test that ended its process there does not count.
    /// Tells a test too slow for one tool from a test that never ends, and how slow it is at
    /// best.
    pub fn finished_runs(&self) -> FinishedRuns<'_> {
        let mut runs = FinishedRuns::default();
        for (stage, tests) in &self.stages {
            let ended = self.ended_process.get(stage);
            for (key, seconds) in tests {
                let Some((target, test)) = key.split_once(' ') else {
                    continue;
                };
                if ended.is_some_and(|ended| ended.contains(key)) {
                    continue;
                }
                runs.0
                    .entry(test)
                    .or_default()
                    .push((stage.as_str(), target, *seconds));
            }
        }
        runs
    }

    /// Whether the test ended its process the last time it ran.
    pub fn ended_process(&self, stage: &str, test: &TestId) -> bool {
        self.ended_process
            .get(stage)
            .is_some_and(|tests| tests.contains(&test.to_string()))
    }

    pub fn mark_ended(&mut self, stage: &str, test: &TestId) {
        self.ended_process
            .entry(stage.to_owned())
            .or_default()
            .insert(test.to_string());
    }

    pub fn insert(&mut self, stage: &str, test: &TestId, seconds: f64) {
        self.insert_at(stage, &test.to_string(), seconds, now_ms());
    }

    fn insert_at(&mut self, stage: &str, key: &str, seconds: f64, when: u64) {
        self.stages
            .entry(stage.to_owned())
            .or_default()
            .insert(key.to_owned(), seconds);
        if when > 0 {
            self.measured_at
                .entry(stage.to_owned())
                .or_default()
                .insert(key.to_owned(), when);
        }
    }

    fn stamp(&self, stage: &str, key: &str) -> u64 {
        self.measured_at
            .get(stage)
            .and_then(|tests| tests.get(key))
            .copied()
            .unwrap_or(0)
    }

    /// Every stage's measurements: stage → (`target harness name`, seconds).
    pub fn stages(&self) -> impl Iterator<Item = (&str, Vec<(&str, f64)>)> {
        self.stages.iter().map(|(stage, tests)| {
            (
                stage.as_str(),
                tests
                    .iter()
                    .map(|(key, secs)| (key.as_str(), *secs))
                    .collect(),
            )
        })
    }

    /// The durations in `path` (none when it does not exist); an error for a file that is
    /// not JSON of this shape or holds a figure no test takes (negative, not finite, past a
    /// week), which would make every split after it meaningless.
    pub fn read(path: &Utf8Path) -> anyhow::Result<Durations> {
        let Some(bytes) = crate::foreign::read(path)? else {
            return Ok(Durations::default());
        };
        let loaded: Durations = serde_json::from_slice(&bytes)
            .map_err(|_| anyhow::anyhow!("{path} is not a durations file"))?;
        for (stage, tests) in &loaded.stages {
            if let Some((test, seconds)) = tests
                .iter()
                .find(|(_, seconds)| !(0.0..=MAX_SECONDS).contains(*seconds))
            {
                anyhow::bail!(
                    "{path} is not a usable durations file: {stage} `{test}` took {seconds} s \
                     (a duration is between 0 and a week)"
                );
            }
        }
        Ok(loaded)
    }

    /// The stored durations; a missing, unreadable or damaged file only costs balance.
    pub fn load(path: &Utf8Path) -> Durations {
        let mut loaded = Durations::read(path).unwrap_or_default();
        // Earlier versions kept Miri's alone, in a flat map next to it.
        if !loaded.stages.contains_key("miri") {
            if let Some(old) = path
                .parent()
                .and_then(|dir| std::fs::read_to_string(dir.join("miri-durations.json")).ok())
                .and_then(|text| serde_json::from_str::<BTreeMap<String, f64>>(&text).ok())
            {
                loaded.stages.insert("miri".to_owned(), old);
            }
        }
        loaded
    }

    /// Adds `other`'s measurements: per test the newer one (by stamp; on a tie `other`'s),
    /// and with it whether that run ended its process.
    pub fn join(&mut self, other: &Durations) {
        for (stage, tests) in &other.stages {
            let ended_there = other.ended_process.get(stage);
            for (key, seconds) in tests {
                let theirs = other.stamp(stage, key);
                let known = self.stages.get(stage).is_some_and(|t| t.contains_key(key));
                if known && self.stamp(stage, key) > theirs {
                    continue;
                }
                self.insert_at(stage, key, *seconds, theirs);
                let ended = self.ended_process.entry(stage.clone()).or_default();
                if ended_there.is_some_and(|set| set.contains(key)) {
                    ended.insert(key.clone());
                } else {
                    ended.remove(key);
                }
            }
            // A test remembered as ending its process without a duration of its own.
            if let Some(marks) = ended_there {
                for key in marks.iter().filter(|key| !tests.contains_key(*key)) {
                    self.ended_process
                        .entry(stage.clone())
                        .or_default()
                        .insert(key.clone());
                }
            }
        }
        self.ended_process.retain(|_, tests| !tests.is_empty());
    }

    /// Merges this run's measurements into the stored ones and writes them back atomically.
    /// Failing to store them only costs balance next time, so errors are ignored.
    pub fn save_merged(path: &Utf8Path, measured: &Durations) {
        let known = Durations::load(path);
        let mut merged = known.clone();
        merged.join(measured);
        merged.ended_process.retain(|_, tests| !tests.is_empty());
        if merged == known {
            return;
        }
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        if let Ok(text) = serde_json::to_string_pretty(&merged) {
            let _ = crate::foreign::write(path, text.as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_measurement_wins_and_absurd_figures_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let root = Utf8Path::from_path(dir.path()).unwrap();
        let mut fresh = Durations::default();
        fresh.insert("miri", &TestId::new("t", "u", "a"), 5.0);
        // A copy of older history, as a later slice carries it.
        let old: Durations =
            serde_json::from_str(r#"{"stages":{"miri":{"t u a":1.0,"t u b":2.0}}}"#).unwrap();
        let mut joined = Durations::default();
        joined.join(&fresh);
        joined.join(&old);
        assert_eq!(joined.get("miri", &TestId::new("t", "u", "a")), Some(5.0));
        assert_eq!(joined.get("miri", &TestId::new("t", "u", "b")), Some(2.0));
        for figure in ["-1.0", "1e308", "604801"] {
            let file = root.join("d.json");
            std::fs::write(
                &file,
                format!(r#"{{"stages":{{"m":{{"t u a":{figure}}}}}}}"#),
            )
            .unwrap();
            let error = Durations::read(&file).unwrap_err().to_string();
            assert!(error.contains("not a usable durations file"), "{error}");
            assert_eq!(Durations::load(&file), Durations::default());
        }
    }

    #[test]
    fn measurements_merge_per_stage() {
        let dir = tempfile::tempdir().unwrap();
        let file = path(Utf8Path::from_path(dir.path()).unwrap());
        let mut first = Durations::default();
        first.insert("miri", &TestId::new("x86_64", "p lib", "a"), 1.5);
        Durations::save_merged(&file, &first);
        let mut second = Durations::default();
        second.insert("sanitizers", &TestId::new("address", "p lib", "a"), 0.1);
        Durations::save_merged(&file, &second);
        let loaded = Durations::load(&file);
        assert_eq!(
            loaded.get("miri", &TestId::new("x86_64", "p lib", "a")),
            Some(1.5)
        );
        assert_eq!(
            loaded.get("sanitizers", &TestId::new("address", "p lib", "a")),
            Some(0.1)
        );
        assert_eq!(
            loaded.get("miri", &TestId::new("x86_64", "p lib", "b")),
            None
        );
    }

    #[test]
    fn a_test_that_ended_its_process_is_remembered_until_it_runs_through() {
        let dir = tempfile::tempdir().unwrap();
        let file = path(Utf8Path::from_path(dir.path()).unwrap());
        let mut crashed = Durations::default();
        crashed.insert("miri", &TestId::new("x86_64", "p lib", "ub"), 0.5);
        crashed.mark_ended("miri", &TestId::new("x86_64", "p lib", "ub"));
        Durations::save_merged(&file, &crashed);
        assert!(Durations::load(&file).ended_process("miri", &TestId::new("x86_64", "p lib", "ub")));
        // A run that did not run it keeps the mark; one that ran it through clears it.
        let mut other = Durations::default();
        other.insert("miri", &TestId::new("x86_64", "p lib", "fine"), 0.1);
        Durations::save_merged(&file, &other);
        assert!(Durations::load(&file).ended_process("miri", &TestId::new("x86_64", "p lib", "ub")));
        let mut fixed = Durations::default();
        fixed.insert("miri", &TestId::new("x86_64", "p lib", "ub"), 0.2);
        Durations::save_merged(&file, &fixed);
        assert!(
            !Durations::load(&file).ended_process("miri", &TestId::new("x86_64", "p lib", "ub"))
        );
    }
}
