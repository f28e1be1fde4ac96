//! The stage registry: one entry per stage with everything the rest of runner asks about it
//! (the tools it needs, the version it reports, its plan and its run). Adding a stage is a
//! folder under `stages/`, its name in `name.rs`, and one line in `STAGES`.

use anyhow::Result;

use super::StageName;
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
}

/// Every stage, in the order `all` runs them.
pub const STAGES: [&Stage; 8] = [
    &super::miri::STAGE,
    &super::cross::STAGE,
    &super::sanitizers::STAGE,
    &super::fuzz::STAGE,
    &super::coverage::STAGE,
    &super::valgrind::STAGE,
    &super::bench::STAGE,
    &super::soak::STAGE,
];

/// The registry's entry for a stage.
pub fn of(name: StageName) -> &'static Stage {
    STAGES
        .iter()
        .find(|stage| stage.name == name)
        .copied()
        // Every name has an entry (a unit test checks it), so this is never reached.
        .unwrap_or(STAGES[0])
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
