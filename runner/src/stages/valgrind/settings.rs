//! The valgrind stage's config table and the settings resolved from it, with defaults.

use camino::Utf8PathBuf;
use serde::Deserialize;

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
}

/// The most memcheck slows a test down against the quickest run of it elsewhere: it runs
/// one thread at a time and every instruction through its shadow memory (string-interner's
/// integer-loop tests ran about 100x their native time here), with room on top.
pub const MEMCHECK_SLOWDOWN: f64 = 300.0;

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
            "programs": [{"bin": "cli", "args": ["--leak", "a b"]}]
        }}});
        let config = Config::from_metadata(&workspace, None)
            .unwrap()
            .stage::<ValgrindConfig>()
            .unwrap();
        assert_eq!(config.suppressions, ["ci/valgrind.supp"]);
        assert_eq!(config.track_fds, Some(false));
        assert_eq!(config.programs[0].label(), "cli --leak 'a b'");
        let unknown = json!({"runner": {"valgrind": {"programs": [{"binary": "cli"}]}}});
        let error = Config::from_metadata(&unknown, None)
            .and_then(|config| config.stage::<ValgrindConfig>())
            .unwrap_err()
            .to_string();
        assert!(error.contains("valgrind.programs[0]"), "{error}");
    }
}
