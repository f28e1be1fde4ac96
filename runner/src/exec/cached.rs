//! The kernel's side of the result cache. Before planning, every test whose stored result
//! still holds (same binary key, name, seed and stage target) is taken from the store and
//! counted as if it had run; after the run, each test that finished in this run is stored.
//! Only complete, deterministic results are stored: never a timeout, never a test of a binary
//! whose process hit a stage error, never when the tool declines (`Tool::cache_inputs`).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use camino::{Utf8Path, Utf8PathBuf};
use serde::{Deserialize, Serialize};

use super::attribute::{Ran, UnitResult};
use super::harness::{self, Limits, Outcome};
use super::tool::{Attributed, Binary, Cause, Mode, Tool, Unit};
use crate::cache::key::KeyHasher;
use crate::cache::store::Found;
use crate::cache::Cache;
use crate::plan::Context;
use crate::report::model::{CacheUse, Finding, TestOutcome};

/// One stored result: the test (or, for a harness that runs whole, every test it ran), the
/// causes it was reported for, and the run that produced it.
#[derive(Serialize, Deserialize)]
struct Entry<R> {
    first_run: String,
    tests: Vec<StoredTest>,
    found: Vec<StoredCause<R>>,
}

#[derive(Serialize, Deserialize)]
struct StoredTest {
    name: String,
    outcome: TestOutcome,
    seconds: Option<f64>,
}

#[derive(Serialize, Deserialize)]
struct StoredCause<R> {
    test: String,
    cause: Cause<R>,
}

/// (test, seed): where a cached finding is looked up.
type Place = (String, Option<u64>);

/// A stored result's place in the run: (binary, seed, test; none for a whole harness).
type EntryPlace = (usize, Option<u32>, Option<String>);

/// What the cache answered in one stage.
#[derive(Debug, Default, Clone)]
pub struct Answered {
    /// Test runs (a test on one seed) taken from the cache.
    pub tests: u64,
    /// Their recorded times added up.
    pub seconds: f64,
    /// Entries that failed their checksum and ran again.
    pub corrupt: u64,
    /// (test, seed) → (stage target, the run that first found what the cache reported).
    pub first_found: BTreeMap<Place, Vec<(String, String)>>,
}

impl Answered {
    /// The report's view; nothing when the cache answered nothing.
    pub fn summary(&self) -> Option<CacheUse> {
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "a sum of test durations in milliseconds, never negative or near u64::MAX"
        )]
        let saved_ms = (self.seconds * 1000.0).round() as u64;
        (self.tests > 0 || self.corrupt > 0).then_some(CacheUse {
            tests: self.tests,
            saved_ms,
            corrupt: self.corrupt,
        })
    }

    /// Adds another run's answers (a stage that runs the kernel once per sanitizer).
    pub fn absorb(&mut self, other: Answered) {
        self.tests += other.tests;
        self.seconds += other.seconds;
        self.corrupt += other.corrupt;
        for (place, runs) in other.first_found {
            self.first_found.entry(place).or_default().extend(runs);
        }
    }

    /// Marks each finding the cache reported with the run that first found it.
    pub fn mark(&self, findings: &mut [Finding]) {
        for finding in findings {
            let Some(test) = &finding.test else {
                continue;
            };
            let Some(runs) = self.first_found.get(&(test.clone(), finding.seed)) else {
                continue;
            };
            // A stage whose findings name no target has one target per test.
            let run = runs.iter().find(|(target, _)| {
                finding.target.is_none() || finding.target.as_ref() == Some(target)
            });
            if let Some((_, run)) = run {
                finding.first_found_in = Some(run.clone());
            }
        }
    }
}

/// The plan's view of the cache: which binaries' tests are left to run.
pub struct Lookup {
    /// The binaries with only the tests the cache could not answer.
    pub binaries: Vec<Binary>,
    /// Per binary: its key, when its results may be cached.
    keys: Vec<Option<String>>,
    /// Binaries the cache answered whole (every test, or a whole-harness entry).
    answered: Vec<bool>,
    /// (binary, test) answered from the cache, not to be stored again.
    hits: BTreeSet<(usize, String)>,
}

impl Lookup {
    /// Whether a planned unit still has to run.
    pub fn runs(&self, unit: &Unit) -> bool {
        !self.answered[unit.binary]
    }
}

/// Takes every test the cache can answer out of `binaries` and into a first outcome.
/// `here` says which binaries have tests in this job's slice (`--partition`): the cache
/// answers only for those.
pub fn lookup<T: Tool>(
    ctx: &Context,
    tool: &T,
    binaries: &[Binary],
    here: &[bool],
    limits: &Limits<'_>,
) -> (Lookup, Outcome<T::Report>) {
    let mut outcome = Outcome::default();
    let mut lookup = Lookup {
        binaries: binaries.to_vec(),
        keys: vec![None; binaries.len()],
        answered: vec![false; binaries.len()],
        hits: BTreeSet::new(),
    };
    let Some(cache) = &ctx.cache else {
        return (lookup, outcome);
    };
    for (index, binary) in binaries.iter().enumerate() {
        if !here[index] {
            continue;
        }
        let Some(key) = binary_key(cache, tool, binary, limits.stage) else {
            continue;
        };
        if binary.runs_whole() {
            let entries: Option<Vec<_>> = limits
                .seeds
                .iter()
                .map(|seed| fetch::<T::Report>(cache, &test_key(&key, None, *seed), &mut outcome))
                .collect();
            if let Some(entries) = entries {
                for (seed, entry) in limits.seeds.iter().zip(entries) {
                    replay(&mut outcome, limits.stage, binary, index, *seed, entry);
                }
                lookup.answered[index] = true;
            }
        } else {
            let mut left = Vec::new();
            for test in &binary.tests {
                // A test counts as answered only when every seed is: its unit runs all seeds.
                let entries: Option<Vec<_>> = limits
                    .seeds
                    .iter()
                    .map(|seed| {
                        fetch::<T::Report>(cache, &test_key(&key, Some(test), *seed), &mut outcome)
                    })
                    .collect();
                match entries {
                    Some(entries) => {
                        for (seed, entry) in limits.seeds.iter().zip(entries) {
                            replay(&mut outcome, limits.stage, binary, index, *seed, entry);
                        }
                        lookup.hits.insert((index, test.clone()));
                    }
                    None => left.push(test.clone()),
                }
            }
            lookup.answered[index] = left.is_empty();
            lookup.binaries[index].tests = left;
        }
        lookup.keys[index] = Some(key);
    }
    (lookup, outcome)
}

/// Stores every test of this run that finished completely.
pub fn store<T: Tool>(
    ctx: &Context,
    lookup: &Lookup,
    outcome: &Outcome<T::Report>,
    unfinished: &BTreeSet<usize>,
    limits: &Limits<'_>,
) {
    let Some(cache) = &ctx.cache else {
        return;
    };
    let index_of: BTreeMap<(String, String), usize> = lookup
        .binaries
        .iter()
        .enumerate()
        .map(|(index, binary)| ((binary.target.clone(), binary.unit.label()), index))
        .collect();
    // (binary, seed) → the entries to write, by test (a whole harness: one entry).
    let mut entries: BTreeMap<EntryPlace, Entry<T::Report>> = BTreeMap::new();
    for run in &outcome.tests {
        let (Some(target), Some(label)) = (&run.target, &run.unit) else {
            continue;
        };
        let Some(&index) = index_of.get(&(target.clone(), label.clone())) else {
            continue;
        };
        if lookup.keys[index].is_none()
            || lookup.answered[index]
            || unfinished.contains(&index)
            || lookup.hits.contains(&(index, run.name.clone()))
        {
            continue;
        }
        #[allow(
            clippy::cast_possible_truncation,
            reason = "seeds come from u32 settings"
        )]
        let seed = run.seed.map(|seed| seed as u32);
        let whole = lookup.binaries[index].runs_whole();
        let entry = entries
            .entry((index, seed, (!whole).then(|| run.name.clone())))
            .or_insert_with(|| Entry {
                first_run: cache.run_id.clone(),
                tests: Vec::new(),
                found: Vec::new(),
            });
        entry.tests.push(StoredTest {
            name: run.name.clone(),
            outcome: run.outcome,
            seconds: run
                .duration_ms
                .map(|ms| Duration::from_millis(ms).as_secs_f64()),
        });
    }
    for found in &outcome.found {
        let whole = lookup.binaries[found.binary].runs_whole();
        let place = (
            found.binary,
            found.seed,
            (!whole).then(|| found.test.clone()),
        );
        if let Some(entry) = entries.get_mut(&place) {
            entry.found.push(StoredCause {
                test: found.test.clone(),
                cause: found.cause.clone(),
            });
        }
    }
    let mut failures = 0;
    for ((index, seed, test), entry) in entries {
        // A test past its limit might pass with more time: it is not a result.
        if entry
            .found
            .iter()
            .any(|found| matches!(found.cause, Cause::TimedOut { .. }))
        {
            continue;
        }
        let Some(binary_key) = &lookup.keys[index] else {
            continue;
        };
        let key = test_key(binary_key, test.as_deref(), seed);
        let stored = serde_json::to_vec(&entry)
            .map_err(anyhow::Error::from)
            .and_then(|payload| cache.store.put(&key, &payload));
        if stored.is_err() {
            failures += 1;
        }
    }
    if failures > 0 {
        ctx.progress.note(&format!(
            "{}: {failures} results could not be stored in the cache ({})",
            limits.stage,
            cache.store.dir()
        ));
    }
    cache.store.evict();
}

/// Caches a binary's test list under its key: listing starts the harness (seconds each
/// under Miri). `list` runs only on a miss; a failed listing is not stored.
pub fn test_list<T: Tool>(
    ctx: &Context,
    tool: &T,
    binary: &Binary,
    stage: &str,
    list: impl FnOnce() -> anyhow::Result<Vec<String>>,
) -> anyhow::Result<Vec<String>> {
    let key = ctx.cache.as_ref().and_then(|cache| {
        let key = binary_key(cache, tool, binary, stage)?;
        let mut hasher = KeyHasher::new("list");
        hasher.text(&key);
        for filter in &ctx.filters {
            hasher.text(filter);
        }
        Some((cache, hasher.finish()))
    });
    if let Some((cache, key)) = &key {
        if let Found::Hit(payload) = cache.store.get(key) {
            if let Ok(tests) = serde_json::from_slice::<Vec<String>>(&payload) {
                return Ok(tests);
            }
        }
    }
    let tests = list()?;
    if let Some((cache, key)) = &key {
        if let Ok(payload) = serde_json::to_vec(&tests) {
            let _ = cache.store.put(key, &payload);
        }
    }
    Ok(tests)
}

/// Everything a binary's results depend on but the test's name and seed.
fn binary_key<T: Tool>(cache: &Cache, tool: &T, binary: &Binary, stage: &str) -> Option<String> {
    let mut inputs = tool.cache_inputs(binary)?;
    if binary.runs_whole() {
        // rustdoc compiles doctests when they run: their inputs are the sources.
        inputs.files.extend(cache.library_files());
    }
    let mut hasher = KeyHasher::new("binary");
    hasher
        .text(env!("CARGO_PKG_VERSION"))
        .text(stage)
        .text(&binary.target)
        .text(&binary.unit.label());
    // The command carries every flag and option variable; a fixed log name keeps it stable.
    let cmd = tool.command(binary, &[], None, Utf8Path::new("runner-cache-key"));
    hasher.text(cmd.program());
    for arg in cmd.get_args() {
        hasher.text(&cache.without_report_folder(arg));
    }
    let mut env: Vec<(&str, &str)> = cmd.env_set().collect();
    env.sort_unstable();
    for (name, value) in &env {
        hasher.text(name).text(&cache.without_report_folder(value));
    }
    // A suppression file named in a flag or an option decides results by its contents.
    let named = cmd.get_args().iter().map(String::as_str);
    for file in suppression_files(named.chain(env.iter().map(|(_, value)| *value))) {
        inputs.files.push(file);
    }
    for file in &inputs.files {
        hasher
            .text(&cache.without_report_folder(file.as_str()))
            .text(&cache.file_digest(file));
    }
    for version in &inputs.versions {
        hasher.text(&cache.version(version));
    }
    for value in &inputs.values {
        hasher.text(value);
    }
    hasher.text(cache.declared_inputs());
    Some(hasher.finish())
}

/// The files of `suppressions=FILE` in valgrind's flags and the sanitizers' option lists.
fn suppression_files<'a>(texts: impl Iterator<Item = &'a str>) -> Vec<Utf8PathBuf> {
    texts
        .flat_map(|text| text.split([' ', ':', ',']))
        .filter_map(|token| token.split_once("suppressions=").map(|(_, file)| file))
        .filter(|file| !file.is_empty())
        .map(|file| Utf8PathBuf::from(file.trim_matches(['"', '\''])))
        .collect()
}

fn test_key(binary_key: &str, test: Option<&str>, seed: Option<u32>) -> String {
    let mut hasher = KeyHasher::new("test");
    hasher.text(binary_key);
    match test {
        Some(test) => hasher.text("one").text(test),
        None => hasher.text("whole"),
    };
    match seed {
        Some(seed) => hasher.text(&seed.to_string()),
        None => hasher.text("no seed"),
    };
    hasher.finish()
}

fn fetch<R: serde::de::DeserializeOwned>(
    cache: &Cache,
    key: &str,
    outcome: &mut Outcome<R>,
) -> Option<Entry<R>> {
    match cache.store.get(key) {
        Found::Hit(payload) => serde_json::from_slice(&payload).ok(),
        Found::Miss => None,
        Found::Corrupt => {
            outcome.cache.corrupt += 1;
            None
        }
    }
}

/// Counts a stored result exactly as the run that made it counted it.
fn replay<R>(
    outcome: &mut Outcome<R>,
    stage: &str,
    binary: &Binary,
    index: usize,
    seed: Option<u32>,
    entry: Entry<R>,
) {
    let ran: Vec<Ran> = entry
        .tests
        .iter()
        .map(|test| (test.name.clone(), test.outcome, test.seconds))
        .collect();
    let found: Vec<Attributed<R>> = entry
        .found
        .into_iter()
        .map(|stored| Attributed {
            binary: index,
            test: stored.test,
            seed,
            cause: stored.cause,
        })
        .collect();
    for item in &found {
        outcome
            .cache
            .first_found
            .entry((item.test.clone(), seed.map(u64::from)))
            .or_default()
            .push((binary.target.clone(), entry.first_run.clone()));
    }
    outcome.cache.tests += ran.len() as u64;
    outcome.cache.seconds += ran.iter().filter_map(|test| test.2).sum::<f64>();
    let result = UnitResult {
        unit: Unit {
            binary: index,
            tests: Vec::new(),
            seed,
            mode: Mode::Run,
        },
        ran,
        found,
        error: None,
        culprit: None,
    };
    harness::record(outcome, stage, binary, &result);
    outcome.found.extend(result.found);
}
