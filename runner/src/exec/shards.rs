//! Splitting a binary's tests into shards of about equal expected duration, with the
//! longest-processing-time-first rule.

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
    fn never_more_shards_than_tests() {
        assert_eq!(split(&names(1), 4, |_| None).len(), 1);
        assert!(split(&[], 4, |_| None).is_empty());
    }
}
