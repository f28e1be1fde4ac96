//! The valgrind stage's config table and the settings resolved from it, with defaults.

use camino::Utf8PathBuf;
use serde::Deserialize;

use crate::cargo_config::OptLevel;
use crate::plan::Context;

/// `[workspace.metadata.runner.valgrind]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ValgrindConfig {
    /// The user's suppression files, relative to the workspace root.
    #[serde(default)]
    pub suppressions: Vec<Utf8PathBuf>,
    /// Extra valgrind options, after runner's own (so they can override them).
    #[serde(default)]
    pub flags: Vec<String>,
    /// Report file descriptors a program leaves open at exit (default: true).
    pub track_fds: Option<bool>,
    /// Programs of the workspace to run under memcheck besides the tests.
    #[serde(default)]
    pub programs: Vec<ProgramConfig>,
    /// Per-test time limit (default: 5m, or the top-level `test-timeout`).
    pub test_timeout: Option<String>,
    /// The opt-level of the tests and programs memcheck runs (default: the profile's own).
    /// 1 runs loops about 14 times faster but lets the optimiser delete undefined behaviour
    /// memcheck would have seen (a read whose value is unused, a branch on an uninitialised
    /// value: two of the fixture's six bugs vanish); 2 and above can give false
    /// uninitialised-value errors, says memcheck's manual.
    pub opt_level: Option<OptLevel>,
}

impl crate::config::StageTable for ValgrindConfig {
    const STAGE: crate::stage_name::StageName = crate::stage_name::StageName::Valgrind;
}

/// One binary target run with arguments, the way people check a real program.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ProgramConfig {
    /// The binary target's name.
    pub bin: String,
    /// The member it belongs to, when the name alone is ambiguous.
    pub package: Option<String>,
    #[serde(default)]
    pub args: Vec<String>,
}

impl ProgramConfig {
    /// `leaky-cli --leak`: how reports and logs name the run.
    pub fn label(&self) -> String {
        std::iter::once(self.bin.as_str())
            .chain(self.args.iter().map(String::as_str))
            .map(crate::process::quote)
            .collect::<Vec<_>>()
            .join(" ")
    }
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub target_dir: Utf8PathBuf,
    /// Where the shipped suppressions for toolchain noise are written for valgrind to read.
    pub std_suppressions: Utf8PathBuf,
    /// The user's suppression files, absolute.
    pub suppressions: Vec<Utf8PathBuf>,
    pub user_flags: Vec<String>,
    pub track_fds: bool,
    pub programs: Vec<ProgramConfig>,
    pub test_timeout: std::time::Duration,
    /// Whether the limit is runner's default, which stretches for a test known to be slow.
    pub default_test_timeout: bool,
    /// The configured opt-level; `None` builds as the user's profile says.
    pub opt_level: Option<OptLevel>,
}

/// The most memcheck slows a test down against the quickest run of it elsewhere: it runs
/// one thread at a time and every instruction through its shadow memory, in the profile's
/// unoptimised build, while the quickest run elsewhere is often the sanitizers' build at
/// opt-level 1. Measured on string-interner's `encode_var_usize_3_bytes_works`: 23.4 s under
/// memcheck, 0.29 s natively unoptimised (80x), 0.03 s natively at opt-level 1 (780x);
/// `encode_var_usize_4_bytes_03_works` and `_04_works` took 402x their `AddressSanitizer`
/// time at opt-level 1 (885 s against 2.2 s, 1,768 s against 4.4 s). With room on top; the stretch stops at four times the default limit, and a
/// first run plans a test as long alone when it took over 20 s / 600 elsewhere.
pub const MEMCHECK_SLOWDOWN: f64 = 600.0;

impl Settings {
    pub fn resolve(ctx: &Context) -> anyhow::Result<Settings> {
        let config = &ctx.workspace.config.stage::<ValgrindConfig>()?;
        Ok(Settings {
            target_dir: ctx.workspace.stage_target_dir("valgrind"),
            std_suppressions: ctx.out_dir.join("valgrind").join("runner-std.supp"),
            suppressions: config
                .suppressions
                .iter()
                .map(|file| ctx.workspace.root.join(file))
                .collect(),
            user_flags: config.flags.clone(),
            track_fds: config.track_fds.unwrap_or(true),
            programs: config.programs.clone(),
            test_timeout: ctx.test_timeout(
                config.test_timeout.as_deref(),
                crate::exec::SLOW_TOOL_TEST_TIMEOUT,
            )?,
            default_test_timeout: ctx.test_timeout_is_default(config.test_timeout.as_deref()),
            opt_level: config.opt_level,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use serde_json::json;

    #[test]
    fn reads_the_valgrind_table_strictly() {
        let workspace = json!({"runner": {"valgrind": {
            "suppressions": ["ci/valgrind.supp"],
            "track-fds": false,
            "opt-level": 0,
            "programs": [{"bin": "cli", "args": ["--leak", "a b"]}]
        }}});
        let config = Config::from_metadata(&workspace, None)
            .unwrap()
            .stage::<ValgrindConfig>()
            .unwrap();
        assert_eq!(config.suppressions, ["ci/valgrind.supp"]);
        assert_eq!(config.track_fds, Some(false));
        assert_eq!(
            config.opt_level.map(|level| level.to_string()).as_deref(),
            Some("0")
        );
        assert_eq!(config.programs[0].label(), "cli --leak 'a b'");
        let unknown = json!({"runner": {"valgrind": {"programs": [{"binary": "cli"}]}}});
        let error = Config::from_metadata(&unknown, None)
            .and_then(|config| config.stage::<ValgrindConfig>())
            .unwrap_err()
            .to_string();
        assert!(error.contains("valgrind.programs[0]"), "{error}");
    }
}
