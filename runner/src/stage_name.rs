//! The names of the stages, as the command line, the config and report.json spell them,
//! with the facts the report needs about each (its title, whether `all` runs it).

/// The stages runner knows, in the order `all` runs them.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    clap::ValueEnum,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum StageName {
    Miri,
    Cross,
    Sanitizers,
    Fuzz,
    Coverage,
    Valgrind,
    Bench,
    Soak,
}

impl StageName {
    /// What `all` runs when the user names no stages: `cross` (needs qemu-user and a cross
    /// linker) and `soak` (needs a command to watch) are opt-in.
    pub const DEFAULT: [StageName; 6] = [
        StageName::Miri,
        StageName::Sanitizers,
        StageName::Fuzz,
        StageName::Coverage,
        StageName::Valgrind,
        StageName::Bench,
    ];

    pub const ALL: [StageName; 8] = [
        StageName::Miri,
        StageName::Cross,
        StageName::Sanitizers,
        StageName::Fuzz,
        StageName::Coverage,
        StageName::Valgrind,
        StageName::Bench,
        StageName::Soak,
    ];

    /// The stage's section title in report.md.
    pub fn title(self) -> &'static str {
        match self {
            StageName::Miri => "Miri Results",
            StageName::Cross => "Cross-endian Results (s390x under qemu-user)",
            StageName::Sanitizers => "Sanitizer Results",
            StageName::Fuzz => "Fuzzing Results",
            StageName::Coverage => "Coverage Report",
            StageName::Valgrind => "Valgrind Results",
            StageName::Bench => "Performance",
            StageName::Soak => "Soak Results",
        }
    }

    /// The stage's line in `runner --help`.
    pub fn about(self) -> &'static str {
        match self {
            StageName::Miri => "Undefined behaviour under Miri, on the host and big-endian s390x.",
            StageName::Cross => {
                "The test suite built for s390x and run natively big-endian under qemu-user."
            }
            StageName::Sanitizers => "Address, thread, memory and leak sanitizers.",
            StageName::Fuzz => "Every cargo-fuzz target within a time budget.",
            StageName::Coverage => "Line and branch coverage against thresholds.",
            StageName::Valgrind => "Valgrind memcheck on every test binary.",
            StageName::Bench => "Benchmarks compared against a baseline.",
            StageName::Soak => {
                "A long run of a command with memory, file-descriptor and thread growth tracking."
            }
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            StageName::Miri => "miri",
            StageName::Cross => "cross",
            StageName::Sanitizers => "sanitizers",
            StageName::Fuzz => "fuzz",
            StageName::Coverage => "coverage",
            StageName::Valgrind => "valgrind",
            StageName::Bench => "bench",
            StageName::Soak => "soak",
        }
    }
}

impl std::fmt::Display for StageName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}
