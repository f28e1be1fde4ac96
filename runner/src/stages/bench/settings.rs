//! The bench stage's config table and the settings resolved from it, with defaults.

use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use camino::Utf8PathBuf;
use serde::Deserialize;

use crate::plan::Context;
use crate::stage_name::StageName;

/// `[workspace.metadata.runner.bench]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct BenchConfig {
    /// What the gate compares: criterion's wall-clock estimates (default) or instruction
    /// counts measured under callgrind.
    pub mode: Option<Metric>,
    /// The baseline's name (default: `main`).
    pub baseline: Option<String>,
    /// Where baselines are kept, relative to the workspace root (default: `.runner/bench`).
    pub baseline_dir: Option<Utf8PathBuf>,
    /// A benchmark slower than its baseline by more than this many percent is a regression
    /// (default: 10 for wall time, 2 for instruction counts).
    pub threshold: Option<f64>,
    /// Changes whose confidence interval reaches into ±this many percent are noise
    /// (default: 1, criterion's own noise threshold). Wall time only.
    pub noise: Option<f64>,
    /// After a run without regressions, its results become the baseline (default: false;
    /// benchmarks the baseline lacks are always added to it).
    pub update_baseline: Option<bool>,
    /// A benchmark id (`group/function`) to profile into a flame graph with `perf`.
    pub flamegraph: Option<String>,
    /// How long the flame graph's profile runs (default: 5s).
    pub profile_time: Option<String>,
}

impl crate::config::StageTable for BenchConfig {
    const STAGE: crate::stage_name::StageName = crate::stage_name::StageName::Bench;

    fn check(&self) -> anyhow::Result<()> {
        use crate::limits::{at_least_zero, duration, Zero};
        for (value, key) in [
            (self.threshold, "bench.threshold"),
            (self.noise, "bench.noise"),
        ] {
            at_least_zero(value, key)?;
        }
        duration(
            self.profile_time.as_deref(),
            "bench.profile-time",
            Zero::Refused,
        )
    }
}

/// The quantity benchmarks are gated on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Metric {
    Wall,
    Instructions,
}

impl Metric {
    pub fn as_str(self) -> &'static str {
        match self {
            Metric::Wall => "wall time",
            Metric::Instructions => "instruction counts",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub metric: Metric,
    pub baseline: String,
    /// This baseline's folder: `<baseline-dir>/<name>`.
    pub baseline_dir: Utf8PathBuf,
    /// The same, relative to the workspace root when it lies inside, for the report.
    pub baseline_display: Utf8PathBuf,
    /// Fractions, not percent: 0.10 is 10 %.
    pub threshold: f64,
    pub noise: f64,
    pub update_baseline: bool,
    pub flamegraph: Option<String>,
    pub profile_time: Duration,
    pub target_dir: Utf8PathBuf,
    /// criterion's output folder (`CRITERION_HOME`), scratch inside the stage folder.
    pub criterion_home: Utf8PathBuf,
    /// Where the callgrind profiles of instruction-count runs go.
    pub callgrind_dir: Utf8PathBuf,
}

impl Settings {
    pub fn resolve(ctx: &Context) -> Result<Settings> {
        let config = &ctx.workspace.config.stage::<BenchConfig>()?;
        let metric = config.mode.unwrap_or(Metric::Wall);
        let default_threshold = match metric {
            Metric::Wall => 10.0,
            Metric::Instructions => 2.0,
        };
        let baseline = config.baseline.clone().unwrap_or_else(|| "main".to_owned());
        if baseline.is_empty() || baseline.contains(['/', '\\']) || baseline.starts_with('.') {
            bail!("bench.baseline `{baseline}` must be a plain name (it names a folder)");
        }
        // criterion keeps its own results in folders with these names, beside the baseline's.
        if ["new", "base", "change", "report"].contains(&baseline.as_str()) {
            bail!("bench.baseline `{baseline}` is a name criterion uses itself; choose another");
        }
        let threshold = percent(config.threshold, default_threshold, "bench.threshold")?;
        let noise = percent(config.noise, 1.0, "bench.noise")?;
        let profile_time = match &config.profile_time {
            Some(text) => crate::duration::parse(text).context("invalid bench.profile-time")?,
            None => Duration::from_secs(5),
        };
        let stage_dir = ctx.out_dir.join(StageName::Bench.as_str());
        let root_dir = config
            .baseline_dir
            .clone()
            .unwrap_or_else(|| Utf8PathBuf::from(".runner/bench"));
        let baseline_dir = ctx.workspace.root.join(root_dir).join(&baseline);
        // Before any benchmark runs: where the baselines will be written.
        crate::foreign::check_folder(&baseline_dir)?;
        Ok(Settings {
            metric,
            baseline_display: ctx
                .workspace
                .relative(&baseline_dir)
                .unwrap_or(&baseline_dir)
                .to_path_buf(),
            baseline_dir,
            baseline,
            threshold,
            noise,
            update_baseline: config.update_baseline.unwrap_or(false),
            flamegraph: config.flamegraph.clone(),
            profile_time,
            target_dir: ctx.workspace.stage_target_dir("bench"),
            criterion_home: stage_dir.join("criterion"),
            callgrind_dir: stage_dir.join("callgrind"),
        })
    }
}

fn percent(value: Option<f64>, default: f64, key: &str) -> Result<f64> {
    let value = value.unwrap_or(default);
    if !value.is_finite() || value < 0.0 {
        bail!("{key} must be a percentage of zero or more, not {value}");
    }
    Ok(value / 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use serde_json::json;

    use super::Metric;

    #[test]
    fn reads_the_bench_table_strictly() {
        let workspace = json!({"runner": {"bench": {
            "mode": "instructions", "baseline": "release", "threshold": 3.5,
            "flamegraph": "group/fn", "update-baseline": true
        }}});
        let config = Config::from_metadata(&workspace, None)
            .unwrap()
            .stage::<BenchConfig>()
            .unwrap();
        assert_eq!(config.mode, Some(Metric::Instructions));
        assert_eq!(config.threshold, Some(3.5));
        assert_eq!(config.update_baseline, Some(true));
        let unknown = json!({"runner": {"bench": {"treshold": 3}}});
        let error = Config::from_metadata(&unknown, None)
            .and_then(|config| config.stage::<BenchConfig>())
            .unwrap_err()
            .to_string();
        assert!(error.contains("bench.treshold"), "{error}");
        let wrong = json!({"runner": {"bench": {"mode": "cycles"}}});
        assert!(Config::from_metadata(&wrong, None)
            .and_then(|config| config.stage::<BenchConfig>())
            .is_err());
    }
}
