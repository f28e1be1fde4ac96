//! Splitting a binary's tests into processes. With measured durations: shards of about equal
//! expected duration, by the longest-processing-time-first rule. Without them (a first run):
//! guided self-scheduling, chunks that shrink as the work left shrinks, so the last
//! processes to start are short and no unlucky shard holds the run hostage; tests of one
//! name family (`*_large`, `heavy_*`) are spread over the chunks rather than packed together.

/// Some tests to run in one process, and how long they are expected to take.
#[derive(Debug, Clone, PartialEq)]
pub struct Shard {
    pub tests: Vec<String>,
    pub weight: f64,
}

/// Each test's expected seconds: as measured, or the mean of the measured ones (one second
/// each when none was measured), so a first run splits evenly.
fn expected(tests: &[String], duration_of: impl Fn(&str) -> Option<f64>) -> Vec<f64> {
    let measured: Vec<Option<f64>> = tests.iter().map(|t| duration_of(t)).collect();
    let known: Vec<f64> = measured.iter().flatten().copied().collect();
    #[allow(clippy::cast_precision_loss, reason = "a mean of a few durations")]
    let fallback = if known.is_empty() {
        1.0
    } else {
        known.iter().sum::<f64>() / known.len() as f64
    };
    measured
        .into_iter()
        .map(|m| m.unwrap_or(fallback))
        .collect()
}

/// The expected seconds of all of `tests`.
pub fn expected_total(tests: &[String], duration_of: impl Fn(&str) -> Option<f64>) -> f64 {
    expected(tests, duration_of).iter().sum()
}

/// How many shards a binary with `expected` seconds of `grand_total` gets on `jobs` workers:
/// its share of the workers, rounded up, at least one and at most `jobs`.
pub fn count_for(expected: f64, grand_total: f64, jobs: usize) -> usize {
    if grand_total <= 0.0 || !expected.is_finite() || !grand_total.is_finite() {
        return jobs.max(1);
    }
    #[allow(
        clippy::cast_precision_loss,
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "a small share of a few workers"
    )]
    let share = (expected / grand_total * jobs as f64).ceil() as usize;
    share.clamp(1, jobs.max(1))
}

/// Splits `tests` into at most `shards` groups: the slowest test goes to the least loaded
/// shard, each weighted as [`expected`] says.
pub fn split(
    tests: &[String],
    shards: usize,
    duration_of: impl Fn(&str) -> Option<f64>,
) -> Vec<Shard> {
    let shards = shards.clamp(1, tests.len().max(1));
    let mut weighted: Vec<(f64, &String)> = expected(tests, duration_of)
        .into_iter()
        .zip(tests)
        .collect();
    weighted.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(b.1)));
    let mut groups: Vec<Shard> = vec![
        Shard {
            tests: Vec::new(),
            weight: 0.0
        };
        shards
    ];
    for (weight, test) in weighted {
        // `shards` is at least one, so there is always a lightest group.
        let Some(lightest) = groups
            .iter_mut()
            .min_by(|a, b| a.weight.total_cmp(&b.weight))
        else {
            break;
        };
        lightest.weight += weight;
        lightest.tests.push(test.clone());
    }
    groups.retain(|shard| !shard.tests.is_empty());
    groups
}

/// The family a test's name suggests: the last word of its last path segment, without
/// digits (`test_slice_buf_mut_large` -> `large`, `heavy_03` -> `heavy`). Tests of one family
/// tend to cost alike, so a first run spreads each family instead of packing it together.
pub fn family(test: &str) -> &str {
    let name = test.rsplit("::").next().unwrap_or(test);
    let trimmed = name.trim_end_matches(|c: char| c.is_ascii_digit() || c == '_');
    let word = trimmed.rsplit('_').next().unwrap_or(trimmed);
    if word.is_empty() {
        name
    } else {
        word
    }
}

/// `tests` reordered so that members of one family are as far apart as possible: the
/// families dealt out in turn, each in name order.
pub fn dealt(tests: &[String]) -> Vec<String> {
    let mut families: std::collections::BTreeMap<&str, Vec<&String>> =
        std::collections::BTreeMap::new();
    for test in tests {
        families.entry(family(test)).or_default().push(test);
    }
    for members in families.values_mut() {
        members.sort();
        members.reverse();
    }
    let mut order = Vec::with_capacity(tests.len());
    while order.len() < tests.len() {
        for members in families.values_mut() {
            if let Some(test) = members.pop() {
                order.push(test.clone());
            }
        }
    }
    order
}

/// Guided self-scheduling over several binaries whose tests have no measured durations:
/// chunks cut from the binary with the most work left, each `remaining ÷ (2 × jobs)` long
/// (never under `min_chunk` tests), so chunk sizes fall as the run goes. Returns (binary,
/// tests) in the order they were cut, largest first.
pub fn guided(
    binaries: &[(usize, Vec<String>)],
    jobs: usize,
    min_chunk: usize,
) -> Vec<(usize, Vec<String>)> {
    let mut left: Vec<(usize, std::collections::VecDeque<String>)> = binaries
        .iter()
        .map(|(binary, tests)| (*binary, dealt(tests).into()))
        .collect();
    let mut remaining: usize = left.iter().map(|(_, tests)| tests.len()).sum();
    let mut chunks = Vec::new();
    let divisor = 2 * jobs.max(1);
    while remaining > 0 {
        let Some((binary, tests)) = left
            .iter_mut()
            .filter(|(_, tests)| !tests.is_empty())
            .max_by(|a, b| a.1.len().cmp(&b.1.len()).then(b.0.cmp(&a.0)))
        else {
            break;
        };
        let size = remaining
            .div_ceil(divisor)
            .max(min_chunk.max(1))
            .min(tests.len());
        let chunk: Vec<String> = tests.drain(..size).collect();
        remaining -= chunk.len();
        chunks.push((*binary, chunk));
    }
    chunks
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("t{i}")).collect()
    }

    #[test]
    fn unmeasured_tests_split_evenly() {
        let shards = split(&names(11), 2, |_| None);
        assert_eq!(shards.len(), 2);
        assert_eq!(shards[0].tests.len() + shards[1].tests.len(), 11);
        assert!(shards[0].tests.len().abs_diff(shards[1].tests.len()) <= 1);
    }

    #[test]
    fn one_slow_test_gets_a_shard_of_its_own() {
        let tests = names(5);
        let shards = split(&tests, 2, |t| Some(if t == "t0" { 40.0 } else { 1.0 }));
        assert!(shards.iter().any(|s| s.tests == ["t0".to_owned()]));
    }

    #[test]
    fn small_binaries_get_one_shard_and_the_long_one_all_workers() {
        assert_eq!(count_for(1.0, 100.0, 2), 1);
        assert_eq!(count_for(60.0, 100.0, 2), 2);
        assert_eq!(count_for(100.0, 100.0, 4), 4);
        assert_eq!(count_for(5.0, 0.0, 2), 2);
    }

    #[test]
    fn families_come_from_the_last_word() {
        assert_eq!(family("test_buf_mut::test_slice_buf_mut_large"), "large");
        assert_eq!(family("tests::heavy_03"), "heavy");
        assert_eq!(family("outer_heavy_01"), "heavy");
        assert_eq!(family("t1"), "t");
        assert_eq!(family("src/lib.rs - f (line 5)"), "src/lib.rs - f (line 5)");
    }

    #[test]
    fn dealing_spreads_each_family() {
        let tests: Vec<String> = ["heavy_01", "heavy_02", "cheap_01", "cheap_02", "cheap_03"]
            .map(str::to_owned)
            .to_vec();
        assert_eq!(
            dealt(&tests),
            ["cheap_01", "heavy_01", "cheap_02", "heavy_02", "cheap_03"]
        );
    }

    #[test]
    fn guided_chunks_shrink_and_cover_every_test_once() {
        let big: Vec<String> = names(100);
        let small: Vec<String> = (0..10).map(|i| format!("s{i}")).collect();
        let chunks = guided(&[(0, big.clone()), (1, small.clone())], 2, 3);
        let sizes: Vec<usize> = chunks.iter().map(|(_, tests)| tests.len()).collect();
        assert_eq!(sizes[0], 28, "{sizes:?}");
        assert!(sizes.windows(2).all(|pair| pair[0] >= pair[1]), "{sizes:?}");
        assert!(*sizes.last().unwrap() <= 3, "{sizes:?}");
        let mut all: Vec<String> = chunks.into_iter().flat_map(|(_, tests)| tests).collect();
        all.sort();
        let mut expected: Vec<String> = big.into_iter().chain(small).collect();
        expected.sort();
        assert_eq!(all, expected);
    }

    #[test]
    fn never_more_shards_than_tests() {
        assert_eq!(split(&names(1), 4, |_| None).len(), 1);
        assert!(split(&[], 4, |_| None).is_empty());
    }
}
