//! Human durations for the command line and config: `90s`, `10m`, `1h30m`, or plain seconds.

use std::time::Duration;

use anyhow::{bail, Result};

/// The longest duration runner accepts anywhere: a year. Anything longer is a typo, and a
/// deadline that far out (`Instant::now() + d`) could overflow the clock and panic.
pub const MAX: Duration = Duration::from_hours(366 * 24);

/// A duration the user gave for `origin` (a flag or config key), longer than zero.
pub fn positive(text: &str, origin: &str) -> Result<Duration> {
    use anyhow::Context as _;
    let duration = parse(text).with_context(|| format!("invalid {origin}"))?;
    if duration.is_zero() {
        bail!("invalid {origin}: `{text}` is no time at all; give at least 1s");
    }
    Ok(duration)
}

/// Parses `90`, `90s`, `10m`, `2h` and combinations such as `1h30m`, up to [`MAX`].
pub fn parse(text: &str) -> Result<Duration> {
    let text = text.trim();
    if text.is_empty() {
        bail!("empty duration");
    }
    let too_large = || anyhow::anyhow!("duration `{text}` is too large: the limit is a year");
    let mut total = 0u64;
    let mut digits = String::new();
    // A trailing pseudo-unit of seconds makes plain `90` read as `90s`.
    let plain = text.chars().all(|ch| ch.is_ascii_digit());
    for ch in text.chars().chain(plain.then_some('s')) {
        if ch.is_ascii_digit() {
            digits.push(ch);
            continue;
        }
        let unit = match ch {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            _ => bail!("invalid duration `{text}`: use a number with s, m or h, like 90s or 10m"),
        };
        if digits.is_empty() {
            bail!("invalid duration `{text}`: a unit needs a number");
        }
        // Only digits are left, so a parse failure can only be an overflow.
        let value: u64 = digits.parse().map_err(|_| too_large())?;
        total = value
            .checked_mul(unit)
            .and_then(|seconds| total.checked_add(seconds))
            .ok_or_else(too_large)?;
        digits.clear();
    }
    if !digits.is_empty() {
        bail!("invalid duration `{text}`: the last number has no unit");
    }
    let duration = Duration::from_secs(total);
    if duration > MAX {
        return Err(too_large());
    }
    Ok(duration)
}

/// Formats a duration as `1h02m03s`, `2m05s` or `4.2s`, for reports and progress lines.
pub fn human(duration: Duration) -> String {
    let seconds = duration.as_secs();
    if seconds >= 3600 {
        format!(
            "{}h{:02}m{:02}s",
            seconds / 3600,
            seconds / 60 % 60,
            seconds % 60
        )
    } else if seconds >= 60 {
        format!("{}m{:02}s", seconds / 60, seconds % 60)
    } else {
        format!("{:.1}s", duration.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_plain_seconds() {
        assert_eq!(parse("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse("10m").unwrap(), Duration::from_mins(10));
        assert_eq!(parse("1h30m").unwrap(), Duration::from_mins(90));
    }

    #[test]
    fn rejects_garbage() {
        assert!(parse("").is_err());
        assert!(parse("ten").is_err());
        assert!(parse("10x").is_err());
        assert!(parse("1h30").is_err());
    }

    #[test]
    fn rejects_what_would_overflow_a_deadline() {
        for text in ["9999999999999999h", "99999999999999999999", "367d", "8785h"] {
            assert!(parse(text).is_err(), "{text}");
        }
        let error = parse("99999999999999999999").unwrap_err().to_string();
        assert!(error.contains("too large"), "{error}");
        let error = parse("9999999999999999h").unwrap_err().to_string();
        assert!(error.contains("too large"), "{error}");
        assert_eq!(parse("8784h").unwrap(), MAX);
    }

    #[test]
    fn formats_for_people() {
        assert_eq!(human(Duration::from_millis(4200)), "4.2s");
        assert_eq!(human(Duration::from_secs(125)), "2m05s");
        assert_eq!(human(Duration::from_secs(3723)), "1h02m03s");
    }
}
