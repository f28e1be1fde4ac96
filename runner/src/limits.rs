//! Sane ranges for the numbers and durations in the runner config, checked when the config
//! is read: an absurd value (`miri.seeds = 4000000000`) is one error naming the key before any
//! work starts, never a machine exhausted or a panic deep inside a stage. This module checks
//! helpers that the config layer (the whole run's keys) and each stage (its own table) use.

use anyhow::{bail, Context as _, Result};

/// `docker.pids-limit`.
pub const MAX_PIDS: u32 = 4_194_304;

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

/// Whether a duration key may be zero (`fuzz.minimize-time = "0s"` turns minimization off).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Zero {
    Allowed,
    Refused,
}

/// A duration key's text: parsed within runner's bound, and not zero unless allowed.
pub fn duration(text: Option<&str>, key: &str, zero: Zero) -> Result<()> {
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

/// A count within `min..=max`.
pub fn range(value: u64, min: u64, max: u64, key: &str) -> Result<()> {
    if !(min..=max).contains(&value) {
        bail!("invalid runner config key `{key}`: {value} is outside {min} to {max}");
    }
    Ok(())
}

/// A finite number of zero or more.
pub fn at_least_zero(value: Option<f64>, key: &str) -> Result<()> {
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

    #[test]
    fn memory_sizes() {
        assert_eq!(memory_size("8g").unwrap(), 8 << 30);
        assert_eq!(memory_size("512m").unwrap(), 512 << 20);
        assert!(memory_size("1k").is_err());
        assert!(memory_size("lots").is_err());
        assert!(memory_size("99999999999999999999g").is_err());
    }
}
