//! The user's runner config from `[workspace.metadata.runner]` (or `[package.metadata.runner]`),
//! checked strictly: an unknown key or a wrong type is an error that names the key.

use serde::Deserialize;

use crate::report::Severity;
use crate::stages::StageName;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Config {
    /// Findings at or above this severity fail the gate (default: high).
    pub fail_on: Option<Severity>,
    /// With a baseline, only findings it did not have fail the gate (a pull-request check).
    #[serde(default)]
    pub fail_on_new_only: bool,
    /// Per-stage time limit, like `30m` (default: 60m).
    pub timeout: Option<String>,
    /// Per-test time limit, like `5m` (default: 5m for native runs, 15m under Miri); each
    /// per-test stage's table may override it.
    pub test_timeout: Option<String>,
    /// Extra rustc flags for every stage's builds, merged with the workspace's own.
    #[serde(default)]
    pub rustflags: Vec<String>,
    /// The stages `all` runs (default: every stage that applies).
    pub stages: Option<Vec<StageName>>,
    /// Stages `all` leaves out.
    #[serde(default)]
    pub skip: Vec<StageName>,
    #[serde(default)]
    pub miri: crate::stages::miri::MiriConfig,
    #[serde(default)]
    pub cross: crate::stages::cross::CrossConfig,
    #[serde(default)]
    pub valgrind: crate::stages::valgrind::ValgrindConfig,
    #[serde(default)]
    pub sanitizers: crate::stages::sanitizers::SanitizersConfig,
    #[serde(default)]
    pub fuzz: crate::stages::fuzz::FuzzConfig,
    #[serde(default)]
    pub coverage: crate::stages::coverage::CoverageConfig,
    #[serde(default)]
    pub bench: crate::stages::bench::BenchConfig,
    #[serde(default)]
    pub soak: crate::stages::soak::SoakConfig,
    #[serde(default)]
    pub docker: DockerConfig,
    #[serde(default)]
    pub cache: crate::cache::CacheConfig,
}

/// `[workspace.metadata.runner.docker]`: limits for the container of `--in docker`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct DockerConfig {
    /// The container's memory limit, like `8g` (docker `--memory`; default: none).
    pub memory: Option<String>,
    /// The most processes and threads the container may hold (docker `--pids-limit`;
    /// default: none).
    pub pids_limit: Option<u32>,
}

impl Config {
    /// Reads the config from the workspace metadata, falling back to the root package's.
    /// `None` values mean the table is absent, which is an empty config.
    pub fn from_metadata(
        workspace: &serde_json::Value,
        root_package: Option<&serde_json::Value>,
    ) -> anyhow::Result<Config> {
        let (table, origin) = match workspace.get("runner") {
            Some(table) => (table, "[workspace.metadata.runner]"),
            None => match root_package.and_then(|metadata| metadata.get("runner")) {
                Some(table) => (table, "[package.metadata.runner]"),
                None => return Ok(Config::default()),
            },
        };
        crate::limits::no_nulls(table, "")
            .map_err(|error| anyhow::anyhow!("{error} in {origin}"))?;
        let deserializer = table.clone();
        let config: Config = serde_path_to_error::deserialize(deserializer).map_err(|error| {
            let path = error.path().to_string();
            let inner = error.into_inner();
            if path == "." {
                anyhow::anyhow!("invalid runner config {origin}: {inner}")
            } else {
                anyhow::anyhow!("invalid runner config {origin} key `{path}`: {inner}")
            }
        })?;
        crate::limits::check(&config).map_err(|error| anyhow::anyhow!("{error:#} in {origin}"))?;
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn absent_table_is_the_default_config() {
        let config = Config::from_metadata(&json!(null), None).unwrap();
        assert!(config.fail_on.is_none());
    }

    #[test]
    fn reads_workspace_then_package_metadata() {
        let workspace = json!({"runner": {"fail-on": "critical", "miri": {"seeds": 4}}});
        let config = Config::from_metadata(&workspace, None).unwrap();
        assert_eq!(config.fail_on, Some(Severity::Critical));
        assert_eq!(config.miri.seeds, Some(4));
        let package = json!({"runner": {"miri": {"flags": ["-Zmiri-strict-provenance"]}}});
        let config = Config::from_metadata(&json!(null), Some(&package)).unwrap();
        assert_eq!(config.miri.flags, ["-Zmiri-strict-provenance"]);
    }

    #[test]
    fn unknown_keys_and_wrong_types_name_the_key() {
        let unknown = json!({"runner": {"miri": {"seedz": 2}}});
        let error = Config::from_metadata(&unknown, None)
            .unwrap_err()
            .to_string();
        assert!(error.contains("`miri.seedz`"), "{error}");
        let wrong = json!({"runner": {"miri": {"seeds": "many"}}});
        let error = Config::from_metadata(&wrong, None).unwrap_err().to_string();
        assert!(error.contains("miri.seeds"), "{error}");
    }
}
