//! The coverage stage's config table and the settings resolved from it, with defaults.

use anyhow::{bail, Result};
use camino::Utf8PathBuf;
use serde::Deserialize;

use crate::coverage_data::summary::MetricName;
use crate::plan::Context;

/// Line coverage below this percentage fails the gate unless config says otherwise.
pub const DEFAULT_LINE_THRESHOLD: f64 = 80.0;
/// Branch coverage below this percentage fails the gate unless config says otherwise.
pub const DEFAULT_BRANCH_THRESHOLD: f64 = 70.0;

/// `[workspace.metadata.runner.coverage]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CoverageConfig {
    /// `llvm-cov` (default: source-based, with branches) or `tarpaulin` (its LLVM engine,
    /// lines only).
    pub engine: Option<Engine>,
    /// Minimum line coverage in percent (default: 80).
    pub line_threshold: Option<f64>,
    /// Minimum branch coverage in percent (default: 70).
    pub branch_threshold: Option<f64>,
    /// Minimum function coverage in percent (default: none).
    pub function_threshold: Option<f64>,
    /// Minimum region coverage in percent (default: none).
    pub region_threshold: Option<f64>,
    /// Files that must be fully covered: globs relative to the workspace root, where `*`
    /// stays within a directory and `**` crosses directories.
    #[serde(default)]
    pub critical_paths: Vec<String>,
    /// Functions that must be fully covered, by path (`my_crate::parse::header`); a `*`
    /// matches any part of a name.
    #[serde(default)]
    pub critical_functions: Vec<String>,
    /// Measure doctests too (default: true; llvm-cov only).
    pub doctests: Option<bool>,
}

impl crate::config::StageTable for CoverageConfig {
    const STAGE: crate::stage_name::StageName = crate::stage_name::StageName::Coverage;

    fn check(&self) -> anyhow::Result<()> {
        for (value, key) in [
            (self.line_threshold, "coverage.line-threshold"),
            (self.branch_threshold, "coverage.branch-threshold"),
            (self.function_threshold, "coverage.function-threshold"),
            (self.region_threshold, "coverage.region-threshold"),
        ] {
            if let Some(percent) = value {
                if !(0.0..=100.0).contains(&percent) {
                    anyhow::bail!(
                        "invalid runner config key `{key}`: {percent} is not a percentage \
                         between 0 and 100"
                    );
                }
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Engine {
    LlvmCov,
    Tarpaulin,
}

/// One metric's minimum, in percent.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, Deserialize)]
pub struct Threshold {
    pub metric: MetricName,
    pub percent: f64,
    /// Set by the user: a miss fails the gate. runner's own suggestion (80 % of lines, 70 %
    /// of branches) is only a note: a number nobody chose is not a finding about the code.
    pub configured: bool,
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub engine: Engine,
    pub thresholds: Vec<Threshold>,
    pub critical_paths: Vec<String>,
    pub critical_functions: Vec<String>,
    pub doctests: bool,
    /// The build dir the engine works in, so coverage builds never invalidate other stages'.
    pub target_dir: Utf8PathBuf,
}

impl Settings {
    pub fn resolve(ctx: &Context) -> anyhow::Result<Settings> {
        let config = &ctx.workspace.config.stage::<CoverageConfig>()?;
        let engine = config.engine.unwrap_or(Engine::LlvmCov);
        let suggested = |configured: Option<f64>, default: f64| match configured {
            Some(percent) => Some((percent, true)),
            None => Some((default, false)),
        };
        let thresholds = [
            (
                MetricName::Lines,
                suggested(config.line_threshold, DEFAULT_LINE_THRESHOLD),
            ),
            (
                MetricName::Branches,
                suggested(config.branch_threshold, DEFAULT_BRANCH_THRESHOLD),
            ),
            (
                MetricName::Functions,
                config.function_threshold.map(|percent| (percent, true)),
            ),
            (
                MetricName::Regions,
                config.region_threshold.map(|percent| (percent, true)),
            ),
        ]
        .into_iter()
        .filter_map(|(metric, chosen)| {
            chosen.map(|(percent, configured)| Threshold {
                metric,
                percent,
                configured,
            })
        })
        .collect();
        let stage_dir = match engine {
            Engine::LlvmCov => "coverage",
            // Tarpaulin's builds differ from cargo-llvm-cov's (its own flags and cfgs).
            Engine::Tarpaulin => "coverage-tarpaulin",
        };
        Ok(Settings {
            engine,
            thresholds,
            critical_paths: config.critical_paths.clone(),
            critical_functions: config.critical_functions.clone(),
            doctests: config.doctests.unwrap_or(true),
            target_dir: ctx.workspace.stage_target_dir(stage_dir),
        })
    }

    /// A threshold outside 0..=100 is a config mistake, not a gate to evaluate.
    pub fn validate(&self) -> Result<()> {
        for threshold in &self.thresholds {
            if !(0.0..=100.0).contains(&threshold.percent) {
                bail!(
                    "invalid runner config key `coverage.{}-threshold`: {} is not a percentage \
                     between 0 and 100",
                    threshold.metric.singular(),
                    threshold.percent
                );
            }
        }
        if self.engine == Engine::Tarpaulin && !self.critical_functions.is_empty() {
            bail!(
                "coverage.critical-functions needs engine `llvm-cov`: tarpaulin reports where \
                 functions start, not where they end; list their files in \
                 coverage.critical-paths instead"
            );
        }
        Ok(())
    }

    /// What config marks critical.
    pub fn critical_rules(&self) -> super::critical::Rules<'_> {
        super::critical::Rules {
            paths: &self.critical_paths,
            functions: &self.critical_functions,
        }
    }

    /// What is measured and judged, in one line.
    pub fn describe(&self) -> String {
        let tests = if self.doctests {
            "unit, integration and doc tests"
        } else {
            "unit and integration tests"
        };
        let (tool, measures) = match self.engine {
            Engine::LlvmCov => ("cargo-llvm-cov", "with branch coverage"),
            Engine::Tarpaulin => ("cargo-tarpaulin (LLVM engine)", "line coverage only"),
        };
        let thresholds: Vec<String> = self
            .thresholds
            .iter()
            .map(|t| {
                let suggested = if t.configured { "" } else { " suggested" };
                format!("{} {} %{suggested}", t.metric.as_str(), t.percent)
            })
            .collect();
        let critical: Vec<String> = self
            .critical_paths
            .iter()
            .chain(&self.critical_functions)
            .map(|rule| format!("`{rule}`"))
            .collect();
        let critical = if critical.is_empty() {
            String::new()
        } else {
            format!("; must be fully covered: {}", critical.join(", "))
        };
        format!(
            "measured by {tool}: {tests}, {measures}; thresholds: {}{critical}",
            thresholds.join(", ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use serde_json::json;

    fn settings(engine: Engine, line: f64, functions: &[&str]) -> Settings {
        Settings {
            engine,
            thresholds: vec![Threshold {
                metric: MetricName::Lines,
                percent: line,
                configured: true,
            }],
            critical_paths: Vec::new(),
            critical_functions: functions.iter().map(|f| (*f).to_owned()).collect(),
            doctests: true,
            target_dir: "/t".into(),
        }
    }

    #[test]
    fn impossible_settings_are_config_errors() {
        assert!(settings(Engine::LlvmCov, 80.0, &["a::b"])
            .validate()
            .is_ok());
        let error = settings(Engine::LlvmCov, 120.0, &[])
            .validate()
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "invalid runner config key `coverage.line-threshold`: 120 is not a percentage \
             between 0 and 100"
        );
        let error = settings(Engine::Tarpaulin, 80.0, &["a::b"])
            .validate()
            .unwrap_err();
        assert!(
            error.to_string().contains("needs engine `llvm-cov`"),
            "{error}"
        );
        let described = settings(Engine::Tarpaulin, 80.0, &[]).describe();
        assert_eq!(
            described,
            "measured by cargo-tarpaulin (LLVM engine): unit, integration and doc tests, line \
             coverage only; thresholds: lines 80 %"
        );
    }

    #[test]
    fn reads_the_coverage_table_strictly() {
        let workspace = json!({"runner": {"coverage": {
            "engine": "tarpaulin",
            "line-threshold": 72.5,
            "critical-paths": ["src/parse/**"],
            "critical-functions": ["demo::decode"],
        }}});
        let config = Config::from_metadata(&workspace, None)
            .unwrap()
            .stage::<CoverageConfig>()
            .unwrap();
        assert_eq!(config.engine, Some(super::Engine::Tarpaulin));
        assert_eq!(config.line_threshold, Some(72.5));
        assert_eq!(config.critical_paths, ["src/parse/**"]);
        for wrong in [
            json!({"runner": {"coverage": {"engine": "gcov"}}}),
            json!({"runner": {"coverage": {"line-treshold": 1}}}),
        ] {
            let error = Config::from_metadata(&wrong, None)
                .and_then(|config| config.stage::<CoverageConfig>())
                .unwrap_err()
                .to_string();
            assert!(error.contains("coverage"), "{error}");
        }
    }
}
