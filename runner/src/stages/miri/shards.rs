//! Splitting a unit's tests into shards of about equal measured duration, and the durations
//! remembered between runs in the workspace's `.runner/` folder.

use std::collections::BTreeMap;

use camino::Utf8Path;

/// Test key (`target unit test`) → seconds Miri took for it last time.
pub type Durations = BTreeMap<String, f64>;

pub fn key(target: &str, unit: &str, test: &str) -> String {
    format!("{target} {unit} {test}")
}

pub fn load_durations(path: &Utf8Path) -> Durations {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or_default()
}

/// Merges this run's measurements into the stored ones. Failing to store them only costs
/// balance next time, so errors are ignored.
pub fn save_durations(path: &Utf8Path, known: &Durations, measured: &Durations) {
    let mut merged = known.clone();
    merged.extend(measured.iter().map(|(k, v)| (k.clone(), *v)));
    if merged == *known {
        return;
    }
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    if let Ok(text) = serde_json::to_string_pretty(&merged) {
        let _ = crate::report::write::write_atomically(path, text.as_bytes());
    }
}

/// Splits `tests` into at most `shards` groups with the longest-processing-time-first rule:
/// the slowest test goes to the least loaded shard. Tests never measured count as the mean
/// of those that were (or one second when none were), so a first run splits evenly.
pub fn split(
    tests: &[String],
    shards: usize,
    duration_of: impl Fn(&str) -> Option<f64>,
) -> Vec<Vec<String>> {
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
    let mut groups: Vec<(f64, Vec<String>)> = vec![(0.0, Vec::new()); shards];
    for (weight, test) in weighted {
        // `shards` is at least one, so there is always a lightest group.
        let Some(lightest) = groups.iter_mut().min_by(|a, b| a.0.total_cmp(&b.0)) else {
            break;
        };
        lightest.0 += weight;
        lightest.1.push(test.clone());
    }
    groups
        .into_iter()
        .map(|(_, tests)| tests)
        .filter(|tests| !tests.is_empty())
        .collect()
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
        assert_eq!(shards[0].len() + shards[1].len(), 11);
        assert!(shards[0].len().abs_diff(shards[1].len()) <= 1);
    }

    #[test]
    fn one_slow_test_gets_a_shard_of_its_own() {
        let tests = names(5);
        let shards = split(&tests, 2, |t| Some(if t == "t0" { 40.0 } else { 1.0 }));
        assert!(shards.iter().any(|s| s == &["t0".to_owned()]));
    }

    #[test]
    fn never_more_shards_than_tests() {
        assert_eq!(split(&names(1), 4, |_| None).len(), 1);
        assert!(split(&[], 4, |_| None).is_empty());
    }
}
