//! The kernel's side of the result cache. Before planning, every test whose stored result
//! still holds (same binary key, name, seed and stage target) is taken from the store and
//! counted as if it had run; after the run, each test that finished in this run is stored.
//! Only complete, deterministic results are stored: never a timeout, never a test of a binary
//! whose process hit a stage error, never when the tool declines (`Tool::cache_inputs`).
//! Each entry carries what it answers for (stage, target, harness, test, seed) besides its
//! key in the store's header; an entry that answers for anything else is a miss.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use camino::{Utf8Path, Utf8PathBuf};
use serde::{Deserialize, Serialize};

use super::attribute::{Ran, UnitResult};
use super::outcome::{self, Limits, Outcome};
use super::test_id::TestId;
use super::tool::{Attributed, Binary, Cause, Mode, Tool, Unit};
use crate::cache::key::KeyHasher;
use crate::cache::store::{Found, Store};
use crate::cache::Cache;
use crate::plan::Context;
use crate::report::model::TestOutcome;

/// What one stored result answers for: looked up under exactly this, or not at all.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Identity {
    stage: String,
    /// The test; for a harness that runs whole, [`TestId::whole`].
    test: TestId,
    seed: Option<u32>,
}

/// One stored result: the test (or, for a harness that runs whole, every test it ran), the
/// causes it was reported for, and the run that produced it.
#[derive(Serialize, Deserialize)]
struct Entry<R> {
    identity: Identity,
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

/// A stored result's place in the run: (binary, seed, test; none for a whole harness).
type EntryPlace = (usize, Option<u32>, Option<String>);

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
                .map(|seed| {
                    let identity = identity(limits.stage, binary, None, *seed);
                    let found =
                        fetch::<T::Report>(&cache.store, &test_key(&key, None, *seed), &identity);
                    found.count(&mut outcome)
                })
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
                        let identity = identity(limits.stage, binary, Some(test), *seed);
                        let found = fetch::<T::Report>(
                            &cache.store,
                            &test_key(&key, Some(test), *seed),
                            &identity,
                        );
                        found.count(&mut outcome)
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
                identity: identity(
                    limits.stage,
                    &lookup.binaries[index],
                    (!whole).then_some(run.name.as_str()),
                    seed,
                ),
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
    // The filters are part of what a list answers for: one harness listed with and without
    // a filter holds different tests.
    let identity = Identity {
        stage: stage.to_owned(),
        test: TestId::of(binary, &format!("list {}", ctx.filters.join(" "))),
        seed: None,
    };
    if let Some((cache, key)) = &key {
        if let Found::Hit(payload) = cache.store.get(key) {
            if let Ok(stored) = serde_json::from_slice::<StoredList>(&payload) {
                if stored.identity == identity {
                    return Ok(stored.tests);
                }
            }
        }
    }
    let tests = list()?;
    if let Some((cache, key)) = &key {
        let stored = StoredList { identity, tests };
        if let Ok(payload) = serde_json::to_vec(&stored) {
            let _ = cache.store.put(key, &payload);
        }
        return Ok(stored.tests);
    }
    Ok(tests)
}

/// A harness's cached test list and what it answers for.
#[derive(Serialize, Deserialize)]
struct StoredList {
    identity: Identity,
    tests: Vec<String>,
}

fn identity(stage: &str, binary: &Binary, test: Option<&str>, seed: Option<u32>) -> Identity {
    Identity {
        stage: stage.to_owned(),
        test: match test {
            Some(test) => TestId::of(binary, test),
            None => TestId::whole(binary),
        },
        seed,
    }
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
    let args = cmd.get_args().iter().map(String::as_str);
    for file in suppression_files(args, env.iter().map(|(_, value)| *value)) {
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
    for (name, value) in cache.declared_env() {
        hasher
            .text(name)
            .text(value.as_deref().unwrap_or("<unset>"));
    }
    Some(hasher.finish())
}

/// The files of `--suppressions=FILE` in a command's arguments (one argument is one path,
/// spaces and all) and of `suppressions=FILE` in the sanitizers' option lists.
fn suppression_files<'a>(
    args: impl Iterator<Item = &'a str>,
    values: impl Iterator<Item = &'a str>,
) -> Vec<Utf8PathBuf> {
    let from_args = args.filter_map(|arg| arg.strip_prefix("--suppressions=").map(str::to_owned));
    let from_options = values
        .flat_map(sanitizer_options)
        .filter_map(|option| option.strip_prefix("suppressions=").map(str::to_owned));
    from_args
        .chain(from_options)
        .filter(|file| !file.is_empty())
        .map(Utf8PathBuf::from)
        .collect()
}

/// A sanitizer option list as its runtime reads it: options split at spaces, commas, colons
/// and line breaks outside quotes, a quoted value taken whole without its quotes.
fn sanitizer_options(text: &str) -> Vec<String> {
    let mut options = Vec::new();
    let mut current = String::new();
    let mut quote = None;
    for c in text.chars() {
        match (quote, c) {
            (Some(open), c) if c == open => quote = None,
            (None, '"' | '\'') => quote = Some(c),
            (None, ' ' | ',' | ':' | '\n' | '\t' | '\r') => {
                if !current.is_empty() {
                    options.push(std::mem::take(&mut current));
                }
            }
            (_, c) => current.push(c),
        }
    }
    if !current.is_empty() {
        options.push(current);
    }
    options
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

/// What the store held for one place in the run.
enum Fetched<R> {
    Hit(Entry<R>),
    Miss,
    /// Damaged, or an entry of another key, test, harness, target, stage or seed.
    Refused,
}

impl<R> Fetched<R> {
    /// The entry, counting a refused one into the outcome.
    fn count(self, outcome: &mut Outcome<R>) -> Option<Entry<R>> {
        match self {
            Fetched::Hit(entry) => Some(entry),
            Fetched::Miss => None,
            Fetched::Refused => {
                outcome.cache.corrupt += 1;
                None
            }
        }
    }
}

/// The entry stored under `key`, only when it answers for `identity`: its tests are that
/// test (or, for a whole harness, tests of it) and its causes name only them.
fn fetch<R: serde::de::DeserializeOwned>(
    store: &Store,
    key: &str,
    identity: &Identity,
) -> Fetched<R> {
    let payload = match store.get(key) {
        Found::Hit(payload) => payload,
        Found::Miss => return Fetched::Miss,
        Found::Corrupt => return Fetched::Refused,
    };
    let Ok(entry) = serde_json::from_slice::<Entry<R>>(&payload) else {
        return Fetched::Refused;
    };
    let tests_fit = if identity.test.is_whole() {
        !entry.tests.is_empty()
    } else {
        entry.tests.len() == 1 && entry.tests[0].name == identity.test.name
    };
    let causes_fit = entry
        .found
        .iter()
        .all(|found| entry.tests.iter().any(|test| test.name == found.test));
    if entry.identity == *identity && tests_fit && causes_fit {
        Fetched::Hit(entry)
    } else {
        Fetched::Refused
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
    outcome::record(outcome, stage, binary, &result);
    outcome.found.extend(result.found);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small seeded generator (xorshift64*): the same cases on every run.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }

        fn below(&mut self, n: usize) -> usize {
            usize::try_from(self.next() % n as u64).unwrap()
        }
    }

    /// One place of a run the cache may answer for, with the key the kernel files it under
    /// (the binary key differs per stage, target and harness, as `binary_key` makes it).
    fn places() -> Vec<(Identity, String)> {
        let mut places = Vec::new();
        for stage in ["miri", "valgrind", "sanitizers"] {
            for target in ["x86_64-unknown-linux-gnu", "s390x-unknown-linux-gnu"] {
                for harness in ["p lib", "p --test it", "p doc"] {
                    let mut hasher = KeyHasher::new("binary");
                    hasher.text(stage).text(target).text(harness);
                    let binary = hasher.finish();
                    let tests: &[Option<&str>] = if harness == "p doc" {
                        &[None]
                    } else {
                        &[Some("tests::ok_a"), Some("tests::oob"), Some("tests::ok_b")]
                    };
                    for test in tests {
                        for seed in [None, Some(1), Some(2)] {
                            let identity = Identity {
                                stage: stage.to_owned(),
                                test: TestId::new(
                                    target,
                                    harness,
                                    test.unwrap_or(TestId::WHOLE_HARNESS),
                                ),
                                seed,
                            };
                            places.push((identity, test_key(&binary, *test, seed)));
                        }
                    }
                }
            }
        }
        places
    }

    /// What a `--no-cache` run finds at a place: `oob` fails with a report, the rest pass; a
    /// whole harness runs two doctests.
    fn truth(identity: &Identity) -> Entry<String> {
        let names: Vec<String> = if identity.test.is_whole() {
            vec![
                "src/lib.rs - f (line 3)".into(),
                "src/lib.rs - g (line 9)".into(),
            ]
        } else {
            vec![identity.test.name.clone()]
        };
        let tests = names
            .iter()
            .map(|name| StoredTest {
                name: name.clone(),
                outcome: if name.contains("oob") {
                    TestOutcome::Failed
                } else {
                    TestOutcome::Passed
                },
                seconds: Some(0.25),
            })
            .collect();
        let found = names
            .iter()
            .filter(|name| name.contains("oob"))
            .map(|name| StoredCause {
                test: name.clone(),
                cause: Cause::Report(format!("invalid read in {}", identity.stage)),
            })
            .collect();
        Entry {
            identity: identity.clone(),
            first_run: "run-1".into(),
            tests,
            found,
        }
    }

    /// (tests with outcomes, findings) as a run reports them.
    fn counted(entry: &Entry<String>) -> serde_json::Value {
        serde_json::json!({
            "tests": entry.tests.iter().map(|t| (t.name.clone(), t.outcome)).collect::<Vec<_>>(),
            "found": entry.found.iter().map(|f| (f.test.clone(), format!("{:?}", f.cause))).collect::<Vec<_>>(),
        })
    }

    /// Random swaps, copies, renames, truncations, bit flips and well-formed entries of one
    /// place filed under another's key (as a store that mixed them up would write them), across keys, tests, binaries and stages: whatever
    /// the store answers, the run's findings and counts are those of a `--no-cache` run.
    #[test]
    fn damaged_or_misfiled_entries_never_change_a_run() {
        const CASES: usize = 400;
        let places = places();
        let mut rng = Rng(0x5eed_2222_0000_0001);
        let (mut hits, mut refused) = (0_u64, 0_u64);
        // Written once (each put syncs to disk); every case starts from these bytes again.
        let dir = tempfile::tempdir().unwrap();
        let root = camino::Utf8PathBuf::from_path_buf(dir.path().join("c")).unwrap();
        let store = Store::new(root.clone(), 1 << 30);
        let file = |key: &str| {
            root.join(crate::cache::store::FORMAT)
                .join(&key[..2])
                .join(&key[2..])
        };
        let mut pristine = Vec::new();
        for (identity, key) in &places {
            store
                .put(key, &serde_json::to_vec(&truth(identity)).unwrap())
                .unwrap();
            pristine.push((file(key), std::fs::read(file(key)).unwrap()));
        }
        for case in 0..CASES {
            for (path, bytes) in &pristine {
                if std::fs::read(path).ok().as_ref() != Some(bytes) {
                    std::fs::write(path, bytes).unwrap();
                }
            }
            for _ in 0..=rng.below(6) {
                let a = &places[rng.below(places.len())];
                let b = &places[rng.below(places.len())];
                match rng.below(6) {
                    // Swap two entries' files.
                    0 => {
                        let (x, y) = (std::fs::read(file(&a.1)), std::fs::read(file(&b.1)));
                        if let (Ok(x), Ok(y)) = (x, y) {
                            std::fs::write(file(&a.1), y).unwrap();
                            std::fs::write(file(&b.1), x).unwrap();
                        }
                    }
                    // Copy one over another.
                    1 => {
                        let _ = std::fs::copy(file(&a.1), file(&b.1));
                    }
                    // Truncate.
                    2 => {
                        if let Ok(bytes) = std::fs::read(file(&a.1)) {
                            let keep = rng.below(bytes.len() + 1);
                            std::fs::write(file(&a.1), &bytes[..keep]).unwrap();
                        }
                    }
                    // Flip one bit anywhere (header included).
                    3 => {
                        if let Ok(mut bytes) = std::fs::read(file(&a.1)) {
                            if !bytes.is_empty() {
                                let at = rng.below(bytes.len());
                                bytes[at] ^= 1 << rng.below(8);
                                std::fs::write(file(&a.1), bytes).unwrap();
                            }
                        }
                    }
                    // Another place's result, well formed, filed under this key.
                    4 => {
                        let other = serde_json::to_vec(&truth(&b.0)).unwrap();
                        let bytes = crate::cache::store::encode(&a.1, &other);
                        std::fs::write(file(&a.1), bytes).unwrap();
                    }
                    // Rename one entry's file to another key's.
                    _ => {
                        let _ = std::fs::rename(file(&a.1), file(&b.1));
                    }
                }
            }
            for (identity, key) in &places {
                let expected = truth(identity);
                // A miss or a refusal runs the test again: the no-cache result.
                let reported = match fetch::<String>(&store, key, identity) {
                    Fetched::Hit(entry) => {
                        hits += 1;
                        entry
                    }
                    Fetched::Refused => {
                        refused += 1;
                        truth(identity)
                    }
                    Fetched::Miss => truth(identity),
                };
                assert_eq!(
                    counted(&reported),
                    counted(&expected),
                    "case {case}: {identity:?}"
                );
            }
        }
        // Both sides were exercised: damage was refused and untouched entries still answered.
        assert!(refused > u64::try_from(CASES).unwrap(), "{refused}");
        assert!(hits > refused, "{hits} hits, {refused} refused");
    }

    #[test]
    fn suppression_files_are_paths_whatever_they_hold() {
        let args = [
            "--error-exitcode=99",
            "--suppressions=/w/my dir/std.supp",
            "--suppressions=/w/a:b,c.supp",
        ];
        let values = ["suppressions='/w/my dir/lsan.supp':max_leaks=3 detect_leaks=1"];
        let files = suppression_files(args.into_iter(), values.into_iter());
        let names: Vec<&str> = files.iter().map(|f| f.as_str()).collect();
        assert_eq!(
            names,
            ["/w/my dir/std.supp", "/w/a:b,c.supp", "/w/my dir/lsan.supp"]
        );
    }
}
