//! The Miri stage's table in runner config, `[workspace.metadata.runner.miri]`, which a
//! member's own `[package.metadata.runner.miri]` may refine for that package.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct MiriConfig {
    /// Targets to interpret for; `host` means the host triple (default: the host and
    /// s390x-unknown-linux-gnu).
    pub targets: Option<Vec<String>>,
    /// Each test runs under this many seeds (default: 1; at most 10000).
    pub seeds: Option<u32>,
    /// Extra MIRIFLAGS, such as `-Zmiri-strict-provenance`.
    #[serde(default)]
    pub flags: Vec<String>,
    /// The aliasing model the tests are checked against (default: stacked).
    pub borrow_model: Option<BorrowModel>,
    /// Run each test under every one of these models, and say which findings only one of
    /// them sees (instead of `borrow-model`).
    pub models: Option<Vec<BorrowModel>>,
    /// Run doctests too (default: true).
    pub doctests: Option<bool>,
    /// Per-test time limit under Miri (default: 15m, or the top-level `test-timeout`).
    pub test_timeout: Option<String>,
}

/// Seeds per test under Miri: each seed is a whole interpretation of the test, so even a
/// nightly job rarely wants more than a few hundred.
pub const MAX_SEEDS: u32 = 10_000;

impl crate::config::StageTable for MiriConfig {
    const STAGE: crate::stage_name::StageName = crate::stage_name::StageName::Miri;

    fn check(&self) -> anyhow::Result<()> {
        if let Some(seeds) = self.seeds {
            crate::limits::range(u64::from(seeds), 1, u64::from(MAX_SEEDS), "miri.seeds")?;
        }
        Ok(())
    }
}

/// Miri's aliasing models: Stacked Borrows (its default), Tree Borrows, or no borrow
/// tracking at all (`-Zmiri-disable-stacked-borrows`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BorrowModel {
    Stacked,
    Tree,
    None,
}

impl BorrowModel {
    pub fn as_str(self) -> &'static str {
        match self {
            BorrowModel::Stacked => "stacked",
            BorrowModel::Tree => "tree",
            BorrowModel::None => "none",
        }
    }

    /// How the report names it.
    pub fn title(self) -> &'static str {
        match self {
            BorrowModel::Stacked => "Stacked Borrows",
            BorrowModel::Tree => "Tree Borrows",
            BorrowModel::None => "no borrow tracking",
        }
    }

    /// The MIRIFLAGS that select the model.
    pub fn flags(self) -> &'static [&'static str] {
        match self {
            BorrowModel::Stacked => &[],
            BorrowModel::Tree => &["-Zmiri-tree-borrows"],
            BorrowModel::None => &["-Zmiri-disable-stacked-borrows"],
        }
    }

    /// The model a list of user flags already selects, if any.
    pub fn named_by(flags: &[String]) -> Option<BorrowModel> {
        flags.iter().rev().find_map(|flag| match flag.as_str() {
            "-Zmiri-tree-borrows" => Some(BorrowModel::Tree),
            "-Zmiri-disable-stacked-borrows" => Some(BorrowModel::None),
            _ => None,
        })
    }
}
