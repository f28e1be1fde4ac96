//! The stage registry: one entry per stage with everything the rest of runner asks about it
//! (the tools it needs, the version it reports, its config table, its plan and its run).
//! Adding a stage is a folder under `stages/`, its name in `stage_name.rs`, and one line in
//! `STAGES`.

use anyhow::{Context as _, Result};

use super::{bench, coverage, cross, fuzz, miri, sanitizers, soak, valgrind};
use crate::config::{Config, StageTable};
use crate::plan::{Context, StagePlan};
use crate::provision::Needs;
use crate::report::StageReport;
use crate::stage_name::StageName;
use crate::workspace::Workspace;

pub use crate::environment::VersionQuery;

/// What runner knows about one stage.
pub struct Stage {
    pub name: StageName,
    /// Toolchain components, pinned cargo tools and system packages it needs, for
    /// provisioning, `doctor` and the error that names a missing tool.
    pub needs: fn() -> Needs,
    /// The tool whose version the report records, and the command that prints it.
    pub version: Option<VersionQuery>,
    /// Reads and checks the stage's own config table (`check_table::<ItsConfig>`), so a wrong
    /// key is an error when the workspace is read, before any stage runs.
    pub config: fn(&Config) -> Result<()>,
    /// What `runner plan` prints: the commands the stage would run.
    pub plan: fn(&Context) -> Result<StagePlan>,
    pub run: fn(&Context) -> Result<StageReport>,
    /// Whether `--partition` splits its work with this run's settings; a stage that does not
    /// split runs whole in the first slice.
    pub splits: fn(&Context) -> bool,
    /// Whether it analyses the workspace's packages (and so takes `packages` and
    /// `exclude-packages`); fuzz runs its cargo-fuzz projects and soak a command.
    pub analyses_packages: bool,
}

/// Every stage, in the order `all` runs them: one line each.
#[rustfmt::skip]
pub const STAGES: [Stage; 8] = [
    Stage { name: StageName::Miri, needs: miri::needs, version: Some(miri::version), config: check_table::<miri::MiriConfig>, plan: miri::plan, run: miri::run, splits: always, analyses_packages: true },
    Stage { name: StageName::Cross, needs: cross::needs, version: None, config: check_table::<cross::CrossConfig>, plan: cross::plan, run: cross::run, splits: always, analyses_packages: true },
    Stage { name: StageName::Sanitizers, needs: sanitizers::needs, version: None, config: check_table::<sanitizers::SanitizersConfig>, plan: sanitizers::plan, run: sanitizers::run, splits: always, analyses_packages: true },
    Stage { name: StageName::Fuzz, needs: fuzz::needs, version: Some(fuzz::version), config: check_table::<fuzz::FuzzConfig>, plan: fuzz::plan, run: fuzz::run, splits: always, analyses_packages: false },
    Stage { name: StageName::Coverage, needs: coverage::needs, version: Some(coverage::version), config: check_table::<coverage::CoverageConfig>, plan: coverage::plan, run: coverage::run, splits: coverage::splits, analyses_packages: true },
    Stage { name: StageName::Valgrind, needs: valgrind::needs, version: Some(valgrind::version), config: check_table::<valgrind::ValgrindConfig>, plan: valgrind::plan, run: valgrind::run, splits: always, analyses_packages: true },
    Stage { name: StageName::Bench, needs: bench::needs, version: None, config: check_table::<bench::BenchConfig>, plan: bench::plan, run: bench::run, splits: bench::splits, analyses_packages: true },
    Stage { name: StageName::Soak, needs: soak::needs, version: None, config: check_table::<soak::SoakConfig>, plan: soak::plan, run: soak::run, splits: never, analyses_packages: false },
];

/// A stage's `config` entry: its table read by its own type.
fn check_table<T: StageTable>(config: &Config) -> Result<()> {
    config.stage::<T>().map(drop)
}

/// Every stage's table in the workspace's config and in each member's own, checked by the
/// stage that owns it: the errors name the key and the file.
pub fn check_configs(workspace: &Workspace) -> Result<()> {
    for stage in &STAGES {
        (stage.config)(&workspace.config)
            .with_context(|| format!("in {}", workspace.manifest_path))?;
        for member in &workspace.members {
            if let Some(own) = &member.config {
                (stage.config)(own).with_context(|| {
                    format!("in {} [package.metadata.runner]", member.manifest_path)
                })?;
            }
        }
    }
    Ok(())
}

/// What a stage needs (toolchain components, pinned cargo tools, system packages).
pub fn needs(stage: StageName) -> Needs {
    (of(stage).needs)()
}

/// What several stages need together, for provisioning and `doctor`.
pub fn needs_of(stages: &[StageName]) -> Needs {
    Needs::union(stages.iter().map(|stage| needs(*stage)))
}

/// The tools whose versions the report records for these stages.
pub fn version_queries(stages: &[StageName]) -> Vec<VersionQuery> {
    stages
        .iter()
        .filter_map(|stage| of(*stage).version)
        .collect()
}

/// A stage whose work always splits across partitions.
fn always(_: &Context) -> bool {
    true
}

/// A stage that always runs whole in the first slice (soak: one long run of one command).
fn never(_: &Context) -> bool {
    false
}

/// The registry's entry for a stage.
pub fn of(name: StageName) -> &'static Stage {
    STAGES
        .iter()
        .find(|stage| stage.name == name)
        // Every name has an entry (a unit test checks it), so this is never reached.
        .unwrap_or(&STAGES[0])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_stage_name_has_one_entry() {
        for name in StageName::ALL {
            assert_eq!(
                STAGES.iter().filter(|s| s.name == name).count(),
                1,
                "{name}"
            );
        }
        assert_eq!(STAGES.len(), StageName::ALL.len());
    }

    #[test]
    fn every_stage_declares_its_needs() {
        assert!(needs(StageName::Miri).components.contains(&"miri"));
        assert!(needs(StageName::Fuzz).cargo_tools.contains(&"cargo-fuzz"));
        assert_eq!(needs(StageName::Valgrind).system[0].debian, "valgrind");
    }

    /// The first error any stage's check gives for a workspace table.
    fn error_of(table: &serde_json::Value) -> String {
        let config = Config::from_metadata(&serde_json::json!({ "runner": table }), None).unwrap();
        STAGES
            .iter()
            .find_map(|stage| (stage.config)(&config).err())
            .map(|error| error.to_string())
            .unwrap_or_default()
    }

    #[test]
    fn each_stage_checks_its_own_ranges_by_key() {
        use serde_json::json;
        for (table, key) in [
            (
                json!({"miri": {"seeds": 4_000_000_000_u32}}),
                "`miri.seeds`",
            ),
            (json!({"miri": {"seeds": 0}}), "`miri.seeds`"),
            (json!({"miri": {"seedz": 2}}), "`miri.seedz`"),
            (
                json!({"fuzz": {"rss-limit-mb": u64::MAX}}),
                "`fuzz.rss-limit-mb`",
            ),
            (json!({"fuzz": {"max-len": 0}}), "`fuzz.max-len`"),
            (
                json!({"coverage": {"line-threshold": -5.0}}),
                "`coverage.line-threshold`",
            ),
            (json!({"bench": {"noise": -1.0}}), "`bench.noise`"),
            (
                json!({"bench": {"profile-time": "99999999999999999999"}}),
                "too large",
            ),
            (
                json!({"soak": {"interval": "99999999999999999ms"}}),
                "`soak.interval`",
            ),
            (json!({"valgrind": {"bogus": true}}), "`valgrind.bogus`"),
        ] {
            let error = error_of(&table);
            assert!(error.contains(key), "{table}: {error}");
        }
        for key in ["time", "total-time", "input-timeout", "minimize-time"] {
            let error = error_of(&json!({"fuzz": {key: "9999999999999999h"}}));
            assert!(error.contains(&format!("`fuzz.{key}`")), "{error}");
        }
        for fine in [
            json!({"fuzz": {"minimize-time": "0s"}}),
            json!({"soak": {"interval": "250ms"}}),
        ] {
            assert_eq!(error_of(&fine), "", "{fine}");
        }
    }
}
