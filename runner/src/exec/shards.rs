//! Splitting a binary's tests into shards of about equal expected duration, with the
//! longest-processing-time-first rule.

/// Some tests to run in one process, and how long they are expected to take.
#[derive(Debug, Clone, PartialEq)]
pub struct Shard {
    pub tests: Vec<String>,
    pub weight: f64,
}

/// Splits `tests` into at most `shards` groups: the slowest test goes to the least loaded
/// shard. Tests never measured count as the mean of those that were (or one second when
/// none were), so a first run splits evenly.
pub fn split(
    tests: &[String],
    shards: usize,
    duration_of: impl Fn(&str) -> Option<f64>,
) -> Vec<Shard> {
    let shards = shards.clamp(1, tests.len().max(1));
    let measured: Vec<f64> = tests.iter().filter_map(|t| duration_of(t)).collect();
    #[allow(clippy::cast_precision_loss, reason = "a mean of a few durations")]
    let fallback = if measured.is_empty() {
        1.0
    } else {
        measured.iter().sum::<f64>() / measured.len() as f64
    };
    let mut weighted: Vec<(f64, &String)> = tests
        .iter()
        .map(|t| (duration_of(t).unwrap_or(fallback), t))
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
    fn never_more_shards_than_tests() {
        assert_eq!(split(&names(1), 4, |_| None).len(), 1);
        assert!(split(&[], 4, |_| None).is_empty());
    }
}
