//! The soak stage's config table and the settings resolved from it, with defaults.

use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use camino::Utf8PathBuf;
use serde::Deserialize;

use crate::plan::Context;

/// `[workspace.metadata.runner.soak]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SoakConfig {
    /// The program to watch and its arguments, run from the workspace root.
    pub command: Option<Vec<String>>,
    /// Or a binary target of the workspace, which runner builds (release) and runs with `args`.
    pub bin: Option<String>,
    /// The member `bin` belongs to, when the name alone is ambiguous.
    pub package: Option<String>,
    #[serde(default)]
    pub args: Vec<String>,
    /// How long the program runs (default: 10m).
    pub duration: Option<String>,
    /// How often it is sampled, like `1s` or `250ms` (default: 1s).
    pub interval: Option<String>,
    /// Samples from the start-up left out of the fit (default: a tenth of the duration).
    pub warmup: Option<String>,
    /// Limits on the fitted growth rates.
    pub max_rss_mb_per_hour: Option<f64>,
    pub max_fds_per_hour: Option<f64>,
    pub max_threads_per_hour: Option<f64>,
}

impl crate::config::StageTable for SoakConfig {
    const STAGE: crate::stage_name::StageName = crate::stage_name::StageName::Soak;

    fn check(&self) -> anyhow::Result<()> {
        use crate::limits::{at_least_zero, duration, Zero};
        for (value, key, zero) in [
            (&self.duration, "soak.duration", Zero::Refused),
            (&self.interval, "soak.interval", Zero::Refused),
            (&self.warmup, "soak.warmup", Zero::Allowed),
        ] {
            let Some(text) = value.as_deref() else {
                continue;
            };
            // The soak stage also takes milliseconds (`250ms`) for its sampling interval.
            match text.trim().strip_suffix("ms") {
                Some(millis) => {
                    let millis: u64 = millis.trim().parse().map_err(|_| {
                        anyhow::anyhow!(
                            "invalid runner config key `{key}`: `{text}` is not a duration"
                        )
                    })?;
                    if std::time::Duration::from_millis(millis) > crate::duration::MAX {
                        anyhow::bail!(
                            "invalid runner config key `{key}`: `{text}` is too large: the \
                             limit is a year"
                        );
                    }
                }
                None => duration(Some(text), key, zero)?,
            }
        }
        for (value, key) in [
            (self.max_rss_mb_per_hour, "soak.max-rss-mb-per-hour"),
            (self.max_fds_per_hour, "soak.max-fds-per-hour"),
            (self.max_threads_per_hour, "soak.max-threads-per-hour"),
        ] {
            at_least_zero(value, key)?;
        }
        Ok(())
    }
}

/// What is watched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Program {
    Command(Vec<String>),
    Bin {
        bin: String,
        package: Option<String>,
        args: Vec<String>,
    },
}

impl Program {
    /// How the report names it: the command line, or `bin NAME ARGS`.
    pub fn label(&self) -> String {
        let words: Vec<&str> = match self {
            Program::Command(argv) => argv.iter().map(String::as_str).collect(),
            Program::Bin { bin, args, .. } => std::iter::once(bin.as_str())
                .chain(args.iter().map(String::as_str))
                .collect(),
        };
        words
            .into_iter()
            .map(crate::process::quote)
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Growth limits per hour: MiB of resident memory, file descriptors, threads.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    pub rss_mib: f64,
    pub fds: f64,
    pub threads: f64,
}

/// The default limits: the memory one is the soak plan's "growth below 10 MB/hour"; a
/// steady program holds its descriptors and threads flat, so a few per hour is slack.
pub const DEFAULT_LIMITS: Limits = Limits {
    rss_mib: 10.0,
    fds: 10.0,
    threads: 10.0,
};

#[derive(Debug, Clone)]
pub struct Settings {
    pub program: Program,
    pub duration: Duration,
    pub interval: Duration,
    pub warmup: Duration,
    pub limits: Limits,
    pub target_dir: Utf8PathBuf,
}

impl Settings {
    /// `None` when the config names nothing to watch.
    pub fn resolve(ctx: &Context) -> Result<Option<Settings>> {
        let config = &ctx.workspace.config.stage::<SoakConfig>()?;
        let program = match (&config.command, &config.bin) {
            (Some(_), Some(_)) => bail!("soak: set either `command` or `bin`, not both"),
            (None, None) => return Ok(None),
            (Some(argv), None) => {
                if argv.first().is_none_or(String::is_empty) {
                    bail!("soak.command must name a program");
                }
                Program::Command(argv.clone())
            }
            (None, Some(bin)) => Program::Bin {
                bin: bin.clone(),
                package: config.package.clone(),
                args: config.args.clone(),
            },
        };
        let duration =
            time(config.duration.as_deref(), "soak.duration")?.unwrap_or(Duration::from_mins(10));
        let interval =
            time(config.interval.as_deref(), "soak.interval")?.unwrap_or(Duration::from_secs(1));
        let warmup = time(config.warmup.as_deref(), "soak.warmup")?.unwrap_or(duration / 10);
        if interval < Duration::from_millis(10) || interval >= duration {
            bail!("soak.interval must be at least 10ms and shorter than soak.duration");
        }
        if warmup >= duration {
            bail!("soak.warmup must be shorter than soak.duration");
        }
        let limit = |value: Option<f64>, default: f64, key: &str| -> Result<f64> {
            let value = value.unwrap_or(default);
            if !value.is_finite() || value < 0.0 {
                bail!("soak.{key} must be zero or more, not {value}");
            }
            Ok(value)
        };
        Ok(Some(Settings {
            program,
            duration,
            interval,
            warmup,
            limits: Limits {
                rss_mib: limit(
                    config.max_rss_mb_per_hour,
                    DEFAULT_LIMITS.rss_mib,
                    "max-rss-mb-per-hour",
                )?,
                fds: limit(
                    config.max_fds_per_hour,
                    DEFAULT_LIMITS.fds,
                    "max-fds-per-hour",
                )?,
                threads: limit(
                    config.max_threads_per_hour,
                    DEFAULT_LIMITS.threads,
                    "max-threads-per-hour",
                )?,
            },
            target_dir: ctx.workspace.stage_target_dir("soak"),
        }))
    }
}

/// A config duration; besides runner's usual `90s`/`10m`/`1h`, `250ms` for short intervals.
fn time(text: Option<&str>, key: &str) -> Result<Option<Duration>> {
    let Some(text) = text else {
        return Ok(None);
    };
    let parsed = match text.trim().strip_suffix("ms") {
        Some(millis) => millis
            .trim()
            .parse()
            .map(Duration::from_millis)
            .map_err(|_| anyhow::anyhow!("invalid duration `{text}`")),
        None => crate::duration::parse(text),
    };
    parsed.with_context(|| format!("invalid {key}")).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use serde_json::json;

    #[test]
    fn reads_the_soak_table_strictly() {
        let workspace = json!({"runner": {"soak": {
            "bin": "server", "args": ["--port", "0"], "duration": "2m", "interval": "250ms",
            "max-rss-mb-per-hour": 5.5
        }}});
        let config = Config::from_metadata(&workspace, None)
            .unwrap()
            .stage::<SoakConfig>()
            .unwrap();
        assert_eq!(config.bin.as_deref(), Some("server"));
        assert_eq!(config.max_rss_mb_per_hour, Some(5.5));
        let unknown = json!({"runner": {"soak": {"max-memory": 3}}});
        let error = Config::from_metadata(&unknown, None)
            .and_then(|config| config.stage::<SoakConfig>())
            .unwrap_err()
            .to_string();
        assert!(error.contains("soak.max-memory"), "{error}");
    }

    #[test]
    fn durations_take_milliseconds_too() {
        assert_eq!(
            time(Some("250ms"), "k").unwrap(),
            Some(Duration::from_millis(250))
        );
        assert_eq!(time(Some("2m"), "k").unwrap(), Some(Duration::from_mins(2)));
        assert!(time(Some("fast"), "soak.interval")
            .unwrap_err()
            .to_string()
            .contains("soak.interval"));
        assert_eq!(time(None, "k").unwrap(), None);
    }

    #[test]
    fn labels_name_the_program_as_typed() {
        let bin = Program::Bin {
            bin: "server".into(),
            package: None,
            args: vec!["--name".into(), "a b".into()],
        };
        assert_eq!(bin.label(), "server --name 'a b'");
    }
}
