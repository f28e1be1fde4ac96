//! Splitting a stage's work across CI machines (`--partition K/N`): every job computes the same
//! split on its own from the same inputs. Work with a recorded duration goes longest first
//! onto the least-loaded slice. Work without one (a first run) is dealt out by family: tests
//! whose names end alike (`heavy_01`, `outer_heavy_02`; `*_large`) tend to cost alike, so each
//! family is spread evenly over the slices, from a slice its hash picks, instead of leaving it
//! to chance where the long ones land; a new test moves only the later members of its own
//! family. A digest of the whole plan lets `runner merge` refuse slices that were cut from
//! different plans.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::str::FromStr;

use anyhow::{bail, Result};
use camino::Utf8Path;

use super::shards;
use super::test_id::TestId;
use super::tool::Binary;
use super::Durations;
use crate::exit::Exit;
use crate::hash;
use crate::report::model::StagePartition;
use crate::stage_name::StageName;

/// Slice `index` (1-based) of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partition {
    pub index: usize,
    pub count: usize,
}

/// The most slices a run is split into: more than this is a typo, not a CI matrix.
pub const MAX_PARTITIONS: usize = 1024;

impl FromStr for Partition {
    type Err = anyhow::Error;

    fn from_str(text: &str) -> Result<Partition> {
        let usage = "use K/N with 1 <= K <= N, like 2/3";
        let Some((index, count)) = text.trim().split_once('/') else {
            bail!("invalid --partition `{text}`: {usage}");
        };
        let (Ok(index), Ok(count)) = (index.trim().parse(), count.trim().parse()) else {
            bail!("invalid --partition `{text}`: {usage}");
        };
        if !(1..=MAX_PARTITIONS).contains(&count) || !(1..=count).contains(&index) {
            bail!("invalid --partition `{text}`: {usage} (N at most {MAX_PARTITIONS})");
        }
        Ok(Partition { index, count })
    }
}

impl fmt::Display for Partition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// One piece of work to place: its identity (stage, target, harness, test), the family it is
/// dealt with when it has no duration, and how long it took last time, when known.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub identity: String,
    pub family: String,
    pub expected: Option<f64>,
}

impl Item {
    /// An item that is a family of its own (a fuzz target, a program).
    pub fn single(identity: String, expected: Option<f64>) -> Item {
        Item {
            family: identity.clone(),
            identity,
            expected,
        }
    }
}

/// The slice (0-based) each item goes to, in the items' order.
pub fn assign(items: &[Item], count: usize) -> Vec<usize> {
    let count = count.max(1);
    let mut slice_of = vec![0; items.len()];
    let mut known: Vec<(usize, f64)> = items
        .iter()
        .enumerate()
        .filter_map(|(at, item)| item.expected.map(|seconds| (at, seconds)))
        .collect();
    // Longest first; equal ones in identity order, so every job sorts them alike.
    known.sort_by(|a, b| {
        b.1.total_cmp(&a.1)
            .then_with(|| items[a.0].identity.cmp(&items[b.0].identity))
    });
    let mut load = vec![0.0_f64; count];
    for (at, seconds) in known {
        let lightest = (0..count)
            .min_by(|x, y| load[*x].total_cmp(&load[*y]).then(x.cmp(y)))
            .unwrap_or(0);
        load[lightest] += seconds;
        slice_of[at] = lightest;
    }
    // Without durations: each family in identity order, dealt round from its own start.
    let mut families: std::collections::BTreeMap<&str, Vec<usize>> =
        std::collections::BTreeMap::new();
    for (at, item) in items.iter().enumerate() {
        if item.expected.is_none() {
            families.entry(item.family.as_str()).or_default().push(at);
        }
    }
    for (family, mut members) in families {
        members.sort_by(|a, b| items[*a].identity.cmp(&items[*b].identity));
        let start = stable_slot(family, count);
        for (rank, at) in members.into_iter().enumerate() {
            slice_of[at] = (start + rank) % count;
        }
    }
    slice_of
}

/// A slot from the identity alone: the same on every machine and in every release.
fn stable_slot(identity: &str, count: usize) -> usize {
    let hash = u64::from_str_radix(&hash::digest(&[identity]), 16).unwrap_or(0);
    #[allow(
        clippy::cast_possible_truncation,
        reason = "the remainder is below `count`, a usize"
    )]
    let slot = (hash % count as u64) as usize;
    slot
}

/// The digest of a whole plan: every item with the duration it was placed by, and the
/// number of slices. Two jobs with equal digests made the same split.
pub fn digest(items: &[Item], count: usize) -> String {
    let mut lines: Vec<String> = items
        .iter()
        .map(|item| match item.expected {
            Some(seconds) => format!("{}={seconds:.6}", item.identity),
            None => format!("{}=?", item.identity),
        })
        .collect();
    lines.sort();
    let count = count.to_string();
    let mut parts: Vec<&str> = vec![&count];
    parts.extend(lines.iter().map(String::as_str));
    hash::digest(&parts)
}

/// This job's share of work that is not a list of tests (fuzz targets, valgrind's programs):
/// the kept entries, and the stage's share for the report. Each entry is expected to take
/// `expected` (a fuzz target's budget), so the slices get equal numbers; without a partition
/// everything is kept.
pub fn keep<T>(
    partition: Option<Partition>,
    stage: &str,
    all: Vec<T>,
    identity: impl Fn(&T) -> String,
    expected: Option<f64>,
) -> (Vec<T>, Option<StagePartition>) {
    keep_in_families(
        partition,
        stage,
        all,
        |entry| {
            let name = identity(entry);
            (name.clone(), name)
        },
        expected,
    )
}

/// [`keep`] for entries that come in families (a benchmark binary's benchmarks): `name`
/// gives an entry's identity and its family, and without durations each family is dealt
/// evenly over the slices, as tests of one harness are.
pub fn keep_in_families<T>(
    partition: Option<Partition>,
    stage: &str,
    all: Vec<T>,
    name: impl Fn(&T) -> (String, String),
    expected: Option<f64>,
) -> (Vec<T>, Option<StagePartition>) {
    let Some(partition) = partition else {
        return (all, None);
    };
    let items: Vec<Item> = all
        .iter()
        .map(|entry| {
            let (identity, family) = name(entry);
            Item {
                identity: format!("{stage} {identity}"),
                family: format!("{stage} {family}"),
                expected,
            }
        })
        .collect();
    let slices = assign(&items, partition.count);
    let total = all.len() as u64;
    let kept: Vec<T> = all
        .into_iter()
        .zip(slices)
        .filter(|(_, slot)| slot + 1 == partition.index)
        .map(|(entry, _)| entry)
        .collect();
    let share = StagePartition {
        plan_digest: digest(&items, partition.count),
        units: kept.len() as u64,
        total_units: total,
        execution_ms: 0,
        whole_in: None,
    };
    (kept, Some(share))
}

/// Each slice's planned seconds when `items` are split into `count` slices (items without a
/// duration count as the mean of the others).
pub fn loads(items: &[Item], count: usize) -> Vec<f64> {
    let seconds = expected_seconds(items);
    let mut load = vec![0.0_f64; count.max(1)];
    for (slice, secs) in assign(items, count).into_iter().zip(&seconds) {
        load[slice] += secs;
    }
    load
}

fn expected_seconds(items: &[Item]) -> Vec<f64> {
    let known: Vec<f64> = items.iter().filter_map(|item| item.expected).collect();
    #[allow(clippy::cast_precision_loss, reason = "a mean of durations")]
    let mean = if known.is_empty() {
        1.0
    } else {
        known.iter().sum::<f64>() / known.len() as f64
    };
    items
        .iter()
        .map(|item| item.expected.unwrap_or(mean))
        .collect()
}

/// The makespan figures of splitting `items` into `count` slices: the ideal (total ÷ N),
/// the planned (the slowest slice) and the floor (the longest single item). Items without a
/// duration count as the mean of the others.
pub fn makespan(items: &[Item], count: usize) -> (f64, f64, f64) {
    let seconds = expected_seconds(items);
    let total: f64 = seconds.iter().sum();
    let load = loads(items, count);
    #[allow(clippy::cast_precision_loss, reason = "a few slices")]
    let ideal = total / count.max(1) as f64;
    let planned = load.iter().copied().fold(0.0, f64::max);
    let floor = seconds.iter().copied().fold(0.0, f64::max);
    (ideal, planned, floor)
}

/// This job's slice of the work under `--partition`: the binaries with only the tests the
/// split gave it, which binaries have anything here, and the stage's share for the report.
pub struct Slice {
    pub binaries: Vec<Binary>,
    pub here: Vec<bool>,
    pub elsewhere: BTreeMap<String, u64>,
    pub record: Option<StagePartition>,
}

/// Splits every test of every binary (a harness that runs whole is one piece) by the
/// durations known before the run, the same way in every job.
pub fn slice(
    partition: Option<Partition>,
    binaries: &[Binary],
    known: &Durations,
    stage: &str,
) -> Slice {
    let Some(partition) = partition else {
        return Slice {
            binaries: binaries.to_vec(),
            here: vec![true; binaries.len()],
            elsewhere: BTreeMap::new(),
            record: None,
        };
    };
    let mut items = Vec::new();
    let mut owners = Vec::new();
    for (index, binary) in binaries.iter().enumerate() {
        let label = binary.unit.label();
        let pieces: Vec<Option<&str>> = if binary.runs_whole() {
            vec![None]
        } else {
            binary
                .tests
                .iter()
                .map(|test| Some(test.as_str()))
                .collect()
        };
        for test in pieces {
            let name = test.unwrap_or(TestId::WHOLE_HARNESS);
            items.push(Item {
                identity: format!("{stage} {}", TestId::new(&binary.target, &label, name)),
                family: format!("{stage} {} {}", binary.target, shards::family(name)),
                expected: test.and_then(|test| known.get(stage, &TestId::of(binary, test))),
            });
            owners.push((index, test));
        }
    }
    let slices = assign(&items, partition.count);
    let mut narrowed: Vec<Binary> = binaries
        .iter()
        .map(|binary| Binary {
            tests: Vec::new(),
            ..binary.clone()
        })
        .collect();
    let mut here = vec![false; binaries.len()];
    let mut elsewhere: BTreeMap<String, u64> = BTreeMap::new();
    let mut units_here = 0;
    for ((index, test), slot) in owners.into_iter().zip(slices) {
        if slot + 1 == partition.index {
            here[index] = true;
            units_here += 1;
            if let Some(test) = test {
                narrowed[index].tests.push(test.to_owned());
            }
        } else {
            *elsewhere.entry(binaries[index].target.clone()).or_default() += 1;
        }
    }
    Slice {
        binaries: narrowed,
        here,
        elsewhere,
        record: Some(StagePartition {
            plan_digest: digest(&items, partition.count),
            units: units_here,
            total_units: items.len() as u64,
            execution_ms: 0,
            whole_in: None,
        }),
    }
}

/// The job counts `runner partitions` plans for.
const JOB_COUNTS: [usize; 5] = [1, 2, 4, 8, 16];

/// `runner partitions FILE`: for 1, 2, 4, 8 and 16 jobs, each stage's ideal makespan
/// (total ÷ N), the planned one (the slowest slice) and the floor (the longest single test);
/// then the planned wall time of the slowest job over every stage, since a job runs its
/// slice of each stage one after another.
pub fn print_table(file: &Utf8Path, only: Option<StageName>) -> Result<Exit> {
    let durations = Durations::read(file)?;
    let mut out = String::new();
    let mut printed = false;
    // Per job count, each slice's seconds over all stages.
    let mut jobs_total: Vec<Vec<f64>> = JOB_COUNTS.iter().map(|n| vec![0.0; *n]).collect();
    let mut floor_total = 0.0_f64;
    for (stage, tests) in durations.stages() {
        if only.is_some_and(|wanted| wanted.as_str() != stage) {
            continue;
        }
        let items: Vec<Item> = tests
            .iter()
            .map(|(key, secs)| Item::single(format!("{stage} {key}"), Some(*secs)))
            .collect();
        let total: f64 = tests.iter().map(|(_, secs)| secs).sum();
        writeln!(
            out,
            "stage {stage}: {} tests, {total:.1} s in all",
            items.len()
        )?;
        writeln!(
            out,
            "  jobs  ideal (s)  planned (s)  planned/ideal  longest test (s)"
        )?;
        for (at, jobs) in JOB_COUNTS.into_iter().enumerate() {
            let (ideal, planned, floor) = makespan(&items, jobs);
            let ratio = if ideal > 0.0 { planned / ideal } else { 1.0 };
            writeln!(
                out,
                "  {jobs:>4}  {ideal:>9.1}  {planned:>11.1}  {ratio:>13.2}  {floor:>16.1}"
            )?;
            for (slice, seconds) in loads(&items, jobs).into_iter().enumerate() {
                jobs_total[at][slice] += seconds;
            }
            floor_total = floor_total.max(floor);
        }
        printed = true;
    }
    if printed && only.is_none() {
        writeln!(out, "every stage, one after another in each job (tests only; builds and listing add to it):")?;
        writeln!(
            out,
            "  jobs  ideal (s)  slowest job (s)  slowest/ideal  longest test (s)"
        )?;
        for (at, jobs) in JOB_COUNTS.into_iter().enumerate() {
            let slowest = jobs_total[at].iter().copied().fold(0.0, f64::max);
            #[allow(clippy::cast_precision_loss, reason = "a few jobs")]
            let ideal = jobs_total[at].iter().sum::<f64>() / jobs as f64;
            let ratio = if ideal > 0.0 { slowest / ideal } else { 1.0 };
            writeln!(
                out,
                "  {jobs:>4}  {ideal:>9.1}  {slowest:>15.1}  {ratio:>13.2}  {floor_total:>16.1}"
            )?;
        }
    }
    if !printed {
        bail!(
            "{file} has no durations{}",
            only.map_or(String::new(), |s| format!(" for {s}"))
        );
    }
    crate::exit::print(&out)?;
    Ok(Exit::Passed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(name: &str, expected: Option<f64>) -> Item {
        Item {
            identity: name.to_owned(),
            family: super::super::shards::family(name).to_owned(),
            expected,
        }
    }

    #[test]
    fn reads_k_of_n_and_rejects_the_rest() {
        assert_eq!(
            "2/3".parse::<Partition>().unwrap(),
            Partition { index: 2, count: 3 }
        );
        for bad in ["0/3", "4/3", "3", "a/b", "1/0", "", "1/2000"] {
            let error = bad.parse::<Partition>().unwrap_err().to_string();
            assert!(error.starts_with("invalid --partition"), "{bad}: {error}");
        }
    }

    #[test]
    fn known_durations_are_balanced_longest_first() {
        let items: Vec<Item> = [8.0, 7.0, 6.0, 5.0, 4.0, 3.0, 2.0, 1.0]
            .iter()
            .enumerate()
            .map(|(n, s)| item(&format!("t{n}"), Some(*s)))
            .collect();
        let slices = assign(&items, 3);
        let mut load = [0.0; 3];
        for (slice, item) in slices.iter().zip(&items) {
            load[*slice] += item.expected.unwrap();
        }
        // 36 s over 3: the ideal is 12; longest-first gives 13 at worst here (its bound is
        // 4/3 of the optimum).
        let expected = [13.0, 12.0, 11.0];
        assert!(
            load.iter()
                .zip(expected)
                .all(|(l, e): (&f64, f64)| (l - e).abs() < 1e-9),
            "{load:?}"
        );
    }

    #[test]
    fn without_history_each_family_is_spread_over_the_slices() {
        let mut items: Vec<Item> = (0..20)
            .map(|n| item(&format!("tests::cheap_{n:02}"), None))
            .collect();
        items.extend((0..6).map(|n| item(&format!("tests::heavy_{n:02}"), None)));
        items.extend((0..3).map(|n| item(&format!("more::outer_heavy_{n:02}"), None)));
        let slices = assign(&items, 3);
        let per_slice = |family: &str| -> Vec<usize> {
            (0..3)
                .map(|slice| {
                    items
                        .iter()
                        .zip(&slices)
                        .filter(|(item, at)| **at == slice && item.family == family)
                        .count()
                })
                .collect()
        };
        assert_eq!(per_slice("heavy"), [3, 3, 3]);
        let cheap = per_slice("cheap");
        assert!(cheap.iter().all(|n| (6..=7).contains(n)), "{cheap:?}");
        // A new test moves only later members of its own family.
        let before = assign(&items, 3);
        items.insert(20, item("tests::brand_new", None));
        let mut after = assign(&items, 3);
        after.remove(20);
        assert_eq!(before, after);
    }

    #[test]
    fn every_item_is_in_exactly_one_slice_and_the_split_is_the_same_everywhere() {
        let items: Vec<Item> = (0..50)
            .map(|n| item(&format!("t{n}"), (n % 3 != 0).then_some(f64::from(n))))
            .collect();
        let first = assign(&items, 5);
        assert_eq!(first, assign(&items, 5));
        assert!(first.iter().all(|slice| *slice < 5));
        assert_eq!(digest(&items, 5), digest(&items, 5));
        assert_ne!(digest(&items, 5), digest(&items, 4));
        let mut reordered = items.clone();
        reordered.reverse();
        assert_eq!(digest(&items, 5), digest(&reordered, 5));
    }

    #[test]
    fn kept_families_are_dealt_evenly_and_every_entry_is_kept_once() {
        let entries: Vec<(&str, String)> = ["a", "b"]
            .iter()
            .flat_map(|binary| (0..4).map(move |n| (*binary, format!("group/{n}"))))
            .collect();
        let name = |(binary, id): &(&str, String)| (format!("{binary} {id}"), (*binary).to_owned());
        let mut seen = Vec::new();
        for index in 1..=2 {
            let partition = Some(Partition { index, count: 2 });
            let (kept, share) = keep_in_families(partition, "bench", entries.clone(), name, None);
            let share = share.unwrap();
            assert_eq!((share.units, share.total_units), (4, 8));
            for binary in ["a", "b"] {
                let of_binary = kept.iter().filter(|(b, _)| *b == binary).count();
                assert_eq!(of_binary, 2, "{binary} in slice {index}: {kept:?}");
            }
            seen.extend(kept);
        }
        seen.sort();
        let mut all = entries.clone();
        all.sort();
        assert_eq!(seen, all);
        let (everything, none) = keep_in_families(None, "bench", entries.clone(), name, None);
        assert_eq!((everything.len(), none), (8, None));
    }

    #[test]
    fn makespan_reports_ideal_planned_and_floor() {
        let items = vec![
            item("a", Some(10.0)),
            item("b", Some(2.0)),
            item("c", Some(3.0)),
        ];
        let (ideal, planned, floor) = makespan(&items, 2);
        assert!((ideal - 7.5).abs() < 1e-9);
        assert!((planned - 10.0).abs() < 1e-9);
        assert!((floor - 10.0).abs() < 1e-9);
    }
}
