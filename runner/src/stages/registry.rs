//! The stage registry: one entry per stage with everything the rest of runner asks about it
//! (the tools it needs, the version it reports, its plan and its run). Adding a stage is a
//! folder under `stages/`, its name in `name.rs`, and one line in `STAGES`.

use anyhow::Result;

use super::{bench, coverage, cross, fuzz, miri, sanitizers, soak, valgrind, StageName};
use crate::environment::Toolchain;
use crate::plan::{Context, StagePlan};
use crate::process::Cmd;
use crate::provision::Needs;
use crate::report::StageReport;

/// A tool's name and the command that prints its version.
pub type VersionQuery = fn(&Toolchain) -> (&'static str, Cmd);

/// What runner knows about one stage.
pub struct Stage {
    pub name: StageName,
    /// Toolchain components, pinned cargo tools and system packages it needs, for
    /// provisioning, `doctor` and the error that names a missing tool.
    pub needs: fn() -> Needs,
    /// The tool whose version the report records, and the command that prints it.
    pub version: Option<VersionQuery>,
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
    Stage { name: StageName::Miri, needs: miri::needs, version: Some(miri::version), plan: miri::plan, run: miri::run, splits: always, analyses_packages: true },
    Stage { name: StageName::Cross, needs: cross::needs, version: None, plan: cross::plan, run: cross::run, splits: always, analyses_packages: true },
    Stage { name: StageName::Sanitizers, needs: sanitizers::needs, version: None, plan: sanitizers::plan, run: sanitizers::run, splits: always, analyses_packages: true },
    Stage { name: StageName::Fuzz, needs: fuzz::needs, version: Some(fuzz::version), plan: fuzz::plan, run: fuzz::run, splits: always, analyses_packages: false },
    Stage { name: StageName::Coverage, needs: coverage::needs, version: Some(coverage::version), plan: coverage::plan, run: coverage::run, splits: coverage::splits, analyses_packages: true },
    Stage { name: StageName::Valgrind, needs: valgrind::needs, version: Some(valgrind::version), plan: valgrind::plan, run: valgrind::run, splits: always, analyses_packages: true },
    Stage { name: StageName::Bench, needs: bench::needs, version: None, plan: bench::plan, run: bench::run, splits: bench::splits, analyses_packages: true },
    Stage { name: StageName::Soak, needs: soak::needs, version: None, plan: soak::plan, run: soak::run, splits: never, analyses_packages: false },
];

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
}
