//! The user's runner config from `[workspace.metadata.runner]` (or `[package.metadata.runner]`),
//! checked strictly: an unknown key or a wrong type is an error that names the key. A member's
//! own `[package.metadata.runner]` in a workspace holds that package's settings, checked the
//! same way and limited to the keys that can differ between packages.

use std::collections::BTreeMap;

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
    /// Per stage, the packages it analyses: `packages` and `exclude-packages` of its table,
    /// read for every stage alike before the stage's own keys.
    #[serde(skip)]
    pub package_filters: BTreeMap<StageName, PackageFilter>,
}

/// A stage's `packages = [...]` and `exclude-packages = [...]`: package specs as cargo's
/// `-p` takes them (`name`, `name@version`, a glob such as `crossbeam-*`, a package id).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PackageFilter {
    /// Only these packages (of those the command line selects).
    pub packages: Option<Vec<String>>,
    /// Never these packages.
    #[serde(default)]
    pub exclude_packages: Vec<String>,
}

/// The keys a member's own table may set, as dotted paths: they apply to that package's
/// harnesses. Everything else applies to the whole run and belongs to the workspace's table.
const PER_PACKAGE_KEYS: &[&str] = &[
    "skip",
    "miri.flags",
    "miri.borrow-model",
    "miri.models",
    "miri.doctests",
];

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
        Config::from_table(table, origin)
    }

    /// A workspace member's own table: the same schema, limited to the per-package keys.
    pub fn for_member(table: &serde_json::Value) -> anyhow::Result<Config> {
        let config = Config::from_table(table, "")?;
        if let Some((stage, _)) = config.package_filters.iter().next() {
            anyhow::bail!(
                "`{stage}.packages` and `{stage}.exclude-packages` choose among the workspace's \
                 packages: set them in [workspace.metadata.runner]"
            );
        }
        for key in dotted_keys(table) {
            let allowed = PER_PACKAGE_KEYS
                .iter()
                .any(|allowed| key == *allowed || key.starts_with(&format!("{allowed}.")));
            if !allowed {
                anyhow::bail!(
                    "`{key}` applies to the whole run, not to one package: set it in \
                     [workspace.metadata.runner] (a package's own table takes {})",
                    PER_PACKAGE_KEYS.join(", ")
                );
            }
        }
        Ok(config)
    }

    fn from_table(table: &serde_json::Value, origin: &str) -> anyhow::Result<Config> {
        let origin = if origin.is_empty() {
            String::new()
        } else {
            format!(" {origin}")
        };
        crate::limits::no_nulls(table, "")
            .map_err(|error| anyhow::anyhow!("{error}{}", in_origin(&origin)))?;
        let mut table = table.clone();
        let package_filters = take_package_filters(&mut table)
            .map_err(|error| anyhow::anyhow!("{error}{}", in_origin(&origin)))?;
        let mut config: Config = serde_path_to_error::deserialize(table).map_err(|error| {
            let path = error.path().to_string();
            let inner = error.into_inner();
            if path == "." {
                anyhow::anyhow!("invalid runner config{origin}: {inner}")
            } else {
                anyhow::anyhow!("invalid runner config{origin} key `{path}`: {inner}")
            }
        })?;
        config.package_filters = package_filters;
        crate::limits::check(&config)
            .map_err(|error| anyhow::anyhow!("{error:#}{}", in_origin(&origin)))?;
        Ok(config)
    }
}

fn in_origin(origin: &str) -> String {
    if origin.is_empty() {
        String::new()
    } else {
        format!(" in{origin}")
    }
}

/// Removes `packages` and `exclude-packages` from every stage's table and reads them, so that
/// each stage's own keys are checked as before and the package choice is read one way.
fn take_package_filters(
    table: &mut serde_json::Value,
) -> anyhow::Result<BTreeMap<StageName, PackageFilter>> {
    let mut filters = BTreeMap::new();
    for stage in StageName::ALL {
        let Some(stage_table) = table
            .get_mut(stage.as_str())
            .and_then(serde_json::Value::as_object_mut)
        else {
            continue;
        };
        let mut filter_table = serde_json::Map::new();
        for key in ["packages", "exclude-packages"] {
            if let Some(value) = stage_table.remove(key) {
                filter_table.insert(key.to_owned(), value);
            }
        }
        if filter_table.is_empty() {
            continue;
        }
        let filter: PackageFilter = serde_path_to_error::deserialize(serde_json::Value::Object(
            filter_table,
        ))
        .map_err(|error| {
            anyhow::anyhow!(
                "invalid runner config key `{stage}.{}`: {}",
                error.path(),
                error.inner()
            )
        })?;
        filters.insert(stage, filter);
    }
    Ok(filters)
}

/// The dotted paths of a table's leaf keys (`miri.flags`); arrays are leaves.
fn dotted_keys(table: &serde_json::Value) -> Vec<String> {
    let mut keys = Vec::new();
    let mut pending: Vec<(String, &serde_json::Value)> = vec![(String::new(), table)];
    while let Some((prefix, value)) = pending.pop() {
        match value.as_object() {
            Some(object) if !object.is_empty() => {
                for (key, inner) in object {
                    let path = if prefix.is_empty() {
                        key.clone()
                    } else {
                        format!("{prefix}.{key}")
                    };
                    pending.push((path, inner));
                }
            }
            _ if !prefix.is_empty() => keys.push(prefix),
            _ => {}
        }
    }
    keys.sort();
    keys
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
    fn stage_tables_choose_packages_alike() {
        let workspace = json!({"runner": {
            "miri": {"exclude-packages": ["crossbeam-epoch"], "seeds": 2},
            "valgrind": {"packages": ["a", "b@0.1.0"]}
        }});
        let config = Config::from_metadata(&workspace, None).unwrap();
        assert_eq!(config.miri.seeds, Some(2));
        assert_eq!(
            config.package_filters[&StageName::Miri].exclude_packages,
            ["crossbeam-epoch"]
        );
        assert_eq!(
            config.package_filters[&StageName::Valgrind].packages,
            Some(vec!["a".to_owned(), "b@0.1.0".to_owned()])
        );
        let wrong = json!({"runner": {"miri": {"packages": "a"}}});
        let error = Config::from_metadata(&wrong, None).unwrap_err().to_string();
        assert!(error.contains("`miri.packages`"), "{error}");
    }

    #[test]
    fn a_member_table_takes_only_per_package_keys() {
        let table = json!({"miri": {"flags": ["-Zmiri-ignore-leaks"], "borrow-model": "none"}, "skip": ["valgrind"]});
        let config = Config::for_member(&table).unwrap();
        assert_eq!(config.miri.flags, ["-Zmiri-ignore-leaks"]);
        let bogus = Config::for_member(&json!({"bogus": 1}))
            .unwrap_err()
            .to_string();
        assert!(bogus.contains("`bogus`"), "{bogus}");
        let whole_run = Config::for_member(&json!({"timeout": "1h"}))
            .unwrap_err()
            .to_string();
        assert!(whole_run.contains("whole run"), "{whole_run}");
        let filter = Config::for_member(&json!({"miri": {"exclude-packages": ["x"]}}))
            .unwrap_err()
            .to_string();
        assert!(filter.contains("workspace.metadata.runner"), "{filter}");
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
