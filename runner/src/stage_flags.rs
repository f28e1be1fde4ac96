//! Values of single stages that the command line and the config both spell, kept below the
//! CLI, the plan and the stages so each can name them without importing the others.

/// What a fuzz run is for (`--mode`, config `mode`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum FuzzMode {
    /// The crash registry and the corpus run once each, without mutation: seconds.
    Replay,
    /// A short total budget; a target stops at its first crash not in the registry, and only
    /// new crashes fail the gate.
    Pr,
    /// The long budget; grows the corpus.
    #[default]
    Batch,
    /// Minimizes each corpus (`cargo fuzz cmin`), reporting size and features before and after.
    Prune,
    /// What each corpus reaches: line, branch and function coverage of the workspace's crates
    /// (`cargo fuzz coverage`, llvm-cov).
    Coverage,
}

impl FuzzMode {
    pub fn as_str(self) -> &'static str {
        match self {
            FuzzMode::Replay => "replay",
            FuzzMode::Pr => "pr",
            FuzzMode::Batch => "batch",
            FuzzMode::Prune => "prune",
            FuzzMode::Coverage => "coverage",
        }
    }
}
