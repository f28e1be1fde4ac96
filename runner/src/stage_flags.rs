//! Values of single stages that the command line and the config both spell, kept below the
//! CLI, the plan and the stages so each can name them without importing the others.

/// The fuzz stage's flags, as the command line spells them (`runner fuzz`, `runner all`).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct FuzzFlags {
    /// With `fuzz` or `all`: fuzzing time per fuzz target, like 60s or 10m [default: 60s, or
    /// config `fuzz.time`].
    #[arg(long = "fuzz-time", value_name = "DURATION")]
    pub fuzz_time: Option<String>,
    /// With `fuzz` or `all`: only build every fuzz target, without fuzzing (a fast CI check).
    #[arg(long)]
    pub check: bool,
    /// With `fuzz` or `all`: `replay` (crash registry and corpus once, no fuzzing), `pr` (short
    /// budget, only new crashes fail), `batch` (long budget, grows the corpus), `prune`
    /// (minimize each corpus) or `coverage` (what each corpus reaches) [default: batch, or
    /// config `fuzz.mode`].
    #[arg(long, value_enum, value_name = "MODE")]
    pub mode: Option<FuzzMode>,
    /// With `fuzz` or `all`: keep the corpora in DIR/<target>/ and the crash registry in
    /// DIR/.crashes/, across runs [default: config `fuzz.corpus-dir`, else each project's
    /// corpus/<target>].
    #[arg(long = "corpus-dir", value_name = "DIR")]
    pub corpus_dir: Option<camino::Utf8PathBuf>,
}

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
