//! The user's runner config from `[workspace.metadata.runner]` (or `[package.metadata.runner]`),
//! checked strictly: an unknown key or a wrong type is an error that names the key. A member's
//! own `[package.metadata.runner]` in a workspace holds that package's settings, checked the
//! same way and limited to the keys that can differ between packages.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::report::Severity;
use crate::stage_name::StageName;

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
    pub docker: DockerConfig,
    #[serde(default)]
    pub cache: CacheConfig,
    /// Per stage, the packages it analyses: `packages` and `exclude-packages` of its table,
    /// read for every stage alike before the stage's own keys.
    #[serde(skip)]
    pub package_filters: BTreeMap<StageName, PackageFilter>,
    /// Each stage's own table as written: the stage that owns it reads and checks it
    /// (`Config::stage`), so this layer knows no stage's keys.
    #[serde(skip)]
    stage_tables: BTreeMap<StageName, serde_json::Value>,
    /// Where the tables came from, for errors (` in [workspace.metadata.runner]`).
    #[serde(skip)]
    origin: String,
}

/// A stage's own config table, read and range-checked by the stage that owns it. The registry
/// checks every stage's table when the workspace is read, so a wrong key is still an error
/// before any work starts.
pub trait StageTable: serde::de::DeserializeOwned + Default {
    const STAGE: StageName;

    /// Ranges and relations serde cannot check; errors name the key (`miri.seeds`).
    fn check(&self) -> anyhow::Result<()> {
        Ok(())
    }
}

/// `[workspace.metadata.runner.cache]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CacheConfig {
    /// The store's bound, like `512m` or `2g` (default 512m); least recently used entries go.
    pub max_size: Option<String>,
    /// Files the tests read, as globs relative to the workspace root (`tests/data/**`): a
    /// change to any of them re-runs every cached stage.
    #[serde(default)]
    pub inputs: Vec<String>,
    /// Environment variables the tests read (`["MY_FLAG"]`): their values are part of every
    /// key, so a change re-runs every cached stage.
    #[serde(default)]
    pub env: Vec<String>,
    /// Cache `ThreadSanitizer`'s results too (off by default: its schedules vary run to run).
    #[serde(default)]
    pub thread: bool,
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
        let stage_tables = take_stage_tables(&mut table);
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
        config.stage_tables = stage_tables;
        config
            .check_ranges()
            .map_err(|error| anyhow::anyhow!("{error:#}{}", in_origin(&origin)))?;
        config.origin = origin;
        Ok(config)
    }

    /// The numbers and durations of the whole run's keys; each stage checks its own table.
    fn check_ranges(&self) -> anyhow::Result<()> {
        use crate::limits::{duration, memory_size, range, Zero, MAX_PIDS};
        use anyhow::Context as _;
        duration(self.timeout.as_deref(), "timeout", Zero::Refused)?;
        if let Some(pids) = self.docker.pids_limit {
            range(u64::from(pids), 1, u64::from(MAX_PIDS), "docker.pids-limit")?;
        }
        if let Some(memory) = &self.docker.memory {
            memory_size(memory).with_context(|| "invalid runner config key `docker.memory`")?;
        }
        Ok(())
    }

    /// A stage's table, read by the stage's own type: its defaults when the table is absent;
    /// an unknown key, a wrong type or a value out of range is an error naming the key.
    pub fn stage<T: StageTable>(&self) -> anyhow::Result<T> {
        let Some(table) = self.stage_tables.get(&T::STAGE) else {
            return Ok(T::default());
        };
        let stage = T::STAGE;
        let origin = &self.origin;
        let parsed: T = serde_path_to_error::deserialize(table.clone()).map_err(|error| {
            let path = error.path().to_string();
            let inner = error.into_inner();
            if path == "." {
                anyhow::anyhow!("invalid runner config{origin} key `{stage}`: {inner}")
            } else {
                anyhow::anyhow!("invalid runner config{origin} key `{stage}.{path}`: {inner}")
            }
        })?;
        parsed
            .check()
            .map_err(|error| anyhow::anyhow!("{error:#}{}", in_origin(origin)))?;
        Ok(parsed)
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

/// Moves every stage's table out of the config table, leaving the keys of the whole run for
/// this layer to check.
fn take_stage_tables(table: &mut serde_json::Value) -> BTreeMap<StageName, serde_json::Value> {
    let Some(object) = table.as_object_mut() else {
        return BTreeMap::new();
    };
    StageName::ALL
        .into_iter()
        .filter_map(|stage| Some((stage, object.remove(stage.as_str())?)))
        .collect()
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

    /// A stand-in for a stage's table, so these tests need no stage.
    #[derive(Debug, Default, Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "kebab-case")]
    struct Miri {
        seeds: Option<u32>,
        #[serde(default)]
        flags: Vec<String>,
        #[allow(dead_code, reason = "read to check that the key is known")]
        borrow_model: Option<String>,
    }

    impl StageTable for Miri {
        const STAGE: StageName = StageName::Miri;

        fn check(&self) -> anyhow::Result<()> {
            crate::limits::range(u64::from(self.seeds.unwrap_or(1)), 1, 10, "miri.seeds")
        }
    }

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
        assert_eq!(config.stage::<Miri>().unwrap().seeds, Some(4));
        let package = json!({"runner": {"miri": {"flags": ["-Zmiri-strict-provenance"]}}});
        let config = Config::from_metadata(&json!(null), Some(&package)).unwrap();
        assert_eq!(
            config.stage::<Miri>().unwrap().flags,
            ["-Zmiri-strict-provenance"]
        );
    }

    #[test]
    fn stage_tables_choose_packages_alike() {
        let workspace = json!({"runner": {
            "miri": {"exclude-packages": ["crossbeam-epoch"], "seeds": 2},
            "valgrind": {"packages": ["a", "b@0.1.0"]}
        }});
        let config = Config::from_metadata(&workspace, None).unwrap();
        assert_eq!(config.stage::<Miri>().unwrap().seeds, Some(2));
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
        assert_eq!(
            config.stage::<Miri>().unwrap().flags,
            ["-Zmiri-ignore-leaks"]
        );
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
    fn absurd_values_of_the_whole_run_name_their_key() {
        let error_of = |table: serde_json::Value| {
            Config::from_metadata(&json!({ "runner": table }), None)
                .unwrap_err()
                .to_string()
        };
        let error = error_of(json!({"docker": {"pids-limit": 0}}));
        assert!(error.contains("`docker.pids-limit`"), "{error}");
        let error = error_of(json!({"docker": {"memory": "lots"}}));
        assert!(error.contains("`docker.memory`"), "{error}");
        let error = error_of(json!({"timeout": "0s"}));
        assert!(error.contains("`timeout`"), "{error}");
        // What TOML's `nan` becomes on its way through `cargo metadata`, in any table.
        let error = error_of(json!({"coverage": {"line-threshold": null}}));
        assert!(error.contains("`coverage.line-threshold`"), "{error}");
    }

    #[test]
    fn unknown_keys_and_wrong_types_name_the_key() {
        let stage_error = |table: serde_json::Value| {
            Config::from_metadata(&table, None)
                .and_then(|config| config.stage::<Miri>())
                .unwrap_err()
                .to_string()
        };
        let error = stage_error(json!({"runner": {"miri": {"seedz": 2}}}));
        assert!(error.contains("`miri.seedz`"), "{error}");
        assert!(error.contains("[workspace.metadata.runner]"), "{error}");
        let error = stage_error(json!({"runner": {"miri": {"seeds": "many"}}}));
        assert!(error.contains("miri.seeds"), "{error}");
        let error = stage_error(json!({"runner": {"miri": {"seeds": 11}}}));
        assert!(error.contains("`miri.seeds`"), "{error}");
        let error = Config::from_metadata(&json!({"runner": {"bogus": 1}}), None)
            .unwrap_err()
            .to_string();
        assert!(error.contains("`bogus`"), "{error}");
    }
}
