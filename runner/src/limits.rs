//! Sane ranges for every number and duration in the runner config, checked when the config
//! is read: an absurd value (`miri.seeds = 4000000000`) is one error naming the key before any
//! work starts, never a machine exhausted or a panic deep inside a stage.

use std::time::Duration;

use anyhow::{bail, Context as _, Result};

use crate::config::Config;

/// Seeds per test under Miri: each seed is a whole interpretation of the test, so even a
/// nightly job rarely wants more than a few hundred.
pub const MAX_SEEDS: u32 = 10_000;
/// libFuzzer's `-rss_limit_mb`: 16 TiB is more memory than any machine runner targets.
pub const MAX_RSS_LIMIT_MB: u64 = 16 * 1024 * 1024;
/// libFuzzer's `-max_len` is an `int` inside libFuzzer.
pub const MAX_INPUT_LEN: u64 = i32::MAX as u64;
/// `docker.pids-limit`.
pub const MAX_PIDS: u32 = 4_194_304;

/// Checks every number and duration of a deserialised config against its range.
pub fn check(config: &Config) -> Result<()> {
    duration(config.timeout.as_deref(), "timeout", Zero::Refused)?;
    if let Some(seeds) = config.miri.seeds {
        range(u64::from(seeds), 1, u64::from(MAX_SEEDS), "miri.seeds")?;
    }
    let fuzz = &config.fuzz;
    duration(fuzz.time.as_deref(), "fuzz.time", Zero::Refused)?;
    duration(fuzz.total_time.as_deref(), "fuzz.total-time", Zero::Refused)?;
    duration(
        fuzz.input_timeout.as_deref(),
        "fuzz.input-timeout",
        Zero::Refused,
    )?;
    // `0s` turns minimization off, as documented.
    duration(
        fuzz.minimize_time.as_deref(),
        "fuzz.minimize-time",
        Zero::Allowed,
    )?;
    if let Some(mb) = fuzz.rss_limit_mb {
        range(mb, 1, MAX_RSS_LIMIT_MB, "fuzz.rss-limit-mb")?;
    }
    if let Some(len) = fuzz.max_len {
        range(len, 1, MAX_INPUT_LEN, "fuzz.max-len")?;
    }
    let coverage = &config.coverage;
    for (value, key) in [
        (coverage.line_threshold, "coverage.line-threshold"),
        (coverage.branch_threshold, "coverage.branch-threshold"),
        (coverage.function_threshold, "coverage.function-threshold"),
        (coverage.region_threshold, "coverage.region-threshold"),
    ] {
        if let Some(percent) = value {
            if !(0.0..=100.0).contains(&percent) {
                bail!(
                    "invalid runner config key `{key}`: {percent} is not a percentage between 0 \
                     and 100"
                );
            }
        }
    }
    let bench = &config.bench;
    for (value, key) in [
        (bench.threshold, "bench.threshold"),
        (bench.noise, "bench.noise"),
    ] {
        at_least_zero(value, key)?;
    }
    duration(
        bench.profile_time.as_deref(),
        "bench.profile-time",
        Zero::Refused,
    )?;
    let soak = &config.soak;
    for (value, key, zero) in [
        (&soak.duration, "soak.duration", Zero::Refused),
        (&soak.interval, "soak.interval", Zero::Refused),
        (&soak.warmup, "soak.warmup", Zero::Allowed),
    ] {
        let Some(text) = value.as_deref() else {
            continue;
        };
        // The soak stage also takes milliseconds (`250ms`) for its sampling interval.
        match text.trim().strip_suffix("ms") {
            Some(millis) => {
                let millis: u64 = millis.trim().parse().map_err(|_| {
                    anyhow::anyhow!("invalid runner config key `{key}`: `{text}` is not a duration")
                })?;
                if Duration::from_millis(millis) > crate::duration::MAX {
                    bail!("invalid runner config key `{key}`: `{text}` is too large: the limit is a year");
                }
            }
            None => duration(Some(text), key, zero)?,
        }
    }
    for (value, key) in [
        (soak.max_rss_mb_per_hour, "soak.max-rss-mb-per-hour"),
        (soak.max_fds_per_hour, "soak.max-fds-per-hour"),
        (soak.max_threads_per_hour, "soak.max-threads-per-hour"),
    ] {
        at_least_zero(value, key)?;
    }
    if let Some(pids) = config.docker.pids_limit {
        range(u64::from(pids), 1, u64::from(MAX_PIDS), "docker.pids-limit")?;
    }
    if let Some(memory) = &config.docker.memory {
        memory_size(memory).with_context(|| "invalid runner config key `docker.memory`")?;
    }
    Ok(())
}

/// TOML's `nan` and `inf` reach runner through `cargo metadata` as JSON `null`, which serde
/// would read as "not set" and silently replace with the default: refuse them by name.
pub fn no_nulls(value: &serde_json::Value, path: &str) -> Result<()> {
    match value {
        serde_json::Value::Null => bail!(
            "invalid runner config key `{path}`: not a finite number (nan and inf are refused)"
        ),
        serde_json::Value::Object(map) => map.iter().try_for_each(|(key, value)| {
            let path = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            no_nulls(value, &path)
        }),
        serde_json::Value::Array(items) => items
            .iter()
            .enumerate()
            .try_for_each(|(index, value)| no_nulls(value, &format!("{path}[{index}]"))),
        _ => Ok(()),
    }
}

/// A docker memory size: digits with an optional `b`, `k`, `m` or `g` unit, at least 6 MB
/// (docker's own minimum).
pub fn memory_size(text: &str) -> Result<u64> {
    let lower = text.trim().to_ascii_lowercase();
    let (digits, unit) = match lower.char_indices().find(|(_, ch)| !ch.is_ascii_digit()) {
        Some((index, _)) => lower.split_at(index),
        None => (lower.as_str(), "b"),
    };
    let factor: u64 = match unit {
        "b" => 1,
        "k" | "kb" => 1 << 10,
        "m" | "mb" => 1 << 20,
        "g" | "gb" => 1 << 30,
        _ => bail!("`{text}` is not a size like 512m or 8g"),
    };
    let bytes = digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(factor))
        .with_context(|| format!("`{text}` is not a size like 512m or 8g"))?;
    if bytes < 6 << 20 {
        bail!("`{text}` is below docker's minimum of 6m");
    }
    Ok(bytes)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Zero {
    Allowed,
    Refused,
}

fn duration(text: Option<&str>, key: &str, zero: Zero) -> Result<()> {
    let Some(text) = text else {
        return Ok(());
    };
    let parsed = crate::duration::parse(text)
        .with_context(|| format!("invalid runner config key `{key}`"))?;
    if zero == Zero::Refused && parsed.is_zero() {
        bail!("invalid runner config key `{key}`: `{text}` is no time at all");
    }
    Ok(())
}

fn range(value: u64, min: u64, max: u64, key: &str) -> Result<()> {
    if !(min..=max).contains(&value) {
        bail!("invalid runner config key `{key}`: {value} is outside {min} to {max}");
    }
    Ok(())
}

fn at_least_zero(value: Option<f64>, key: &str) -> Result<()> {
    match value {
        Some(value) if !value.is_finite() || value < 0.0 => {
            bail!("invalid runner config key `{key}`: {value} is not a number of zero or more")
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn error_of(table: &serde_json::Value) -> String {
        Config::from_metadata(&json!({ "runner": table }), None)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn absurd_counts_name_their_key() {
        let error = error_of(&json!({"miri": {"seeds": 4_000_000_000_u32}}));
        assert!(error.contains("`miri.seeds`"), "{error}");
        let error = error_of(&json!({"miri": {"seeds": 0}}));
        assert!(error.contains("`miri.seeds`"), "{error}");
        let error = error_of(&json!({"fuzz": {"rss-limit-mb": u64::MAX}}));
        assert!(error.contains("`fuzz.rss-limit-mb`"), "{error}");
        let error = error_of(&json!({"fuzz": {"max-len": 0}}));
        assert!(error.contains("`fuzz.max-len`"), "{error}");
        let error = error_of(&json!({"docker": {"pids-limit": 0}}));
        assert!(error.contains("`docker.pids-limit`"), "{error}");
    }

    #[test]
    fn absurd_durations_name_their_key() {
        for key in ["time", "total-time", "input-timeout", "minimize-time"] {
            let error = error_of(&json!({"fuzz": {key: "9999999999999999h"}}));
            assert!(error.contains(&format!("`fuzz.{key}`")), "{error}");
        }
        let error = error_of(&json!({"timeout": "0s"}));
        assert!(error.contains("`timeout`"), "{error}");
        let error = error_of(&json!({"soak": {"interval": "99999999999999999ms"}}));
        assert!(error.contains("`soak.interval`"), "{error}");
        let error = error_of(&json!({"bench": {"profile-time": "99999999999999999999"}}));
        assert!(error.contains("too large"), "{error}");
        assert!(
            Config::from_metadata(&json!({"runner": {"fuzz": {"minimize-time": "0s"}}}), None)
                .is_ok()
        );
        assert!(
            Config::from_metadata(&json!({"runner": {"soak": {"interval": "250ms"}}}), None)
                .is_ok()
        );
    }

    #[test]
    fn thresholds_must_be_real_percentages() {
        let error = error_of(&json!({"coverage": {"line-threshold": -5.0}}));
        assert!(error.contains("`coverage.line-threshold`"), "{error}");
        // What TOML's `nan` becomes on its way through `cargo metadata`.
        let error = error_of(&json!({"coverage": {"line-threshold": null}}));
        assert!(error.contains("`coverage.line-threshold`"), "{error}");
        let error = error_of(&json!({"bench": {"noise": -1.0}}));
        assert!(error.contains("`bench.noise`"), "{error}");
    }

    #[test]
    fn docker_memory_sizes() {
        assert_eq!(memory_size("8g").unwrap(), 8 << 30);
        assert_eq!(memory_size("512m").unwrap(), 512 << 20);
        assert!(memory_size("1k").is_err());
        assert!(memory_size("lots").is_err());
        assert!(memory_size("99999999999999999999g").is_err());
        let error = error_of(&json!({"docker": {"memory": "lots"}}));
        assert!(error.contains("`docker.memory`"), "{error}");
    }
}
