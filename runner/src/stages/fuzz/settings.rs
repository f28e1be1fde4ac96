//! The fuzz stage's settings: the `[…metadata.runner.fuzz]` table, `--fuzz-time`, `--check`,
//! `--mode` and `--corpus-dir`, resolved once with the product defaults.

use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use camino::Utf8PathBuf;
use serde::Deserialize;

use crate::plan::Context;
use crate::stage_flags::FuzzMode;

/// Fuzzing time per target when nothing else says (DECISIONS: 60 s per target in `all`).
pub const DEFAULT_BUDGET: Duration = Duration::from_mins(1);
/// libFuzzer's own default is 1200 s, far too long for a hang to surface within a budget.
pub const DEFAULT_INPUT_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_RSS_LIMIT_MB: u64 = 2048;
/// Minimization of one crash stops after this long and keeps the smallest input so far.
pub const DEFAULT_MINIMIZE_TIME: Duration = Duration::from_mins(1);
/// A pull request's fuzzing: short, shared by every target.
pub const DEFAULT_PR_BUDGET: Duration = Duration::from_mins(5);
/// The crash registry when no corpus folder is given, relative to the workspace root
/// (beside the findings baseline, outside `target/`).
pub const DEFAULT_REGISTRY: &str = ".runner/fuzz/crashes";
/// The crash registry's folder inside a corpus folder (a dot name: no target is called so).
pub const REGISTRY_IN_CORPUS_DIR: &str = ".crashes";

/// `[workspace.metadata.runner.fuzz]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FuzzConfig {
    /// Fuzzing time per target, like `60s` or `10m` (default 60s; `--fuzz-time` wins).
    pub time: Option<String>,
    /// A total fuzzing time shared by every target instead of `time`; targets run `--jobs`
    /// at a time, so each gets `total × jobs / targets`.
    pub total_time: Option<String>,
    /// Fuzz only these targets (by name).
    #[serde(default)]
    pub include: Vec<String>,
    /// Leave these targets out (by name).
    #[serde(default)]
    pub exclude: Vec<String>,
    /// `address` (default), `leak`, `memory`, `thread` or `none`.
    pub sanitizer: Option<Sanitizer>,
    /// libFuzzer `-timeout`: one input running longer is a timeout finding (default 10s).
    pub input_timeout: Option<String>,
    /// libFuzzer `-rss_limit_mb`: more memory is an out-of-memory finding (default 2048).
    pub rss_limit_mb: Option<u64>,
    /// libFuzzer `-max_len` (default: libFuzzer's choice).
    pub max_len: Option<u64>,
    /// libFuzzer `-seed`, for repeatable runs (default: a new seed each run).
    pub seed: Option<u64>,
    /// Time to minimize each distinct crash (default 60s; `0s` turns minimization off).
    pub minimize_time: Option<String>,
    /// Extra libFuzzer flags, such as `-use_value_profile=1`.
    #[serde(default)]
    pub flags: Vec<String>,
    /// `replay`, `pr`, `batch` (default) or `prune` (`--mode` wins).
    pub mode: Option<FuzzMode>,
    /// Where the corpora live across runs, `DIR/<target>/`, relative to the workspace root
    /// (`--corpus-dir` wins); default: each project's `corpus/<target>`.
    pub corpus_dir: Option<Utf8PathBuf>,
    /// The crates that get coverage counters: `"all"` (default) or a list of crate names.
    pub instrument: Option<InstrumentConfig>,
}

/// libFuzzer's `-rss_limit_mb`: 16 TiB is more memory than any machine runner targets.
pub const MAX_RSS_LIMIT_MB: u64 = 16 * 1024 * 1024;
/// libFuzzer's `-max_len` is an `int` inside libFuzzer.
pub const MAX_INPUT_LEN: u64 = i32::MAX as u64;

impl crate::config::StageTable for FuzzConfig {
    const STAGE: crate::stage_name::StageName = crate::stage_name::StageName::Fuzz;

    fn check(&self) -> Result<()> {
        use crate::limits::{duration, range, Zero};
        duration(self.time.as_deref(), "fuzz.time", Zero::Refused)?;
        duration(self.total_time.as_deref(), "fuzz.total-time", Zero::Refused)?;
        duration(
            self.input_timeout.as_deref(),
            "fuzz.input-timeout",
            Zero::Refused,
        )?;
        // `0s` turns minimization off, as documented.
        duration(
            self.minimize_time.as_deref(),
            "fuzz.minimize-time",
            Zero::Allowed,
        )?;
        if let Some(mb) = self.rss_limit_mb {
            range(mb, 1, MAX_RSS_LIMIT_MB, "fuzz.rss-limit-mb")?;
        }
        if let Some(len) = self.max_len {
            range(len, 1, MAX_INPUT_LEN, "fuzz.max-len")?;
        }
        Ok(())
    }
}

/// `instrument = "all"` or `instrument = ["crate", ...]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum InstrumentConfig {
    Word(String),
    Crates(Vec<String>),
}

/// cargo-fuzz's `--sanitizer` values.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Sanitizer {
    #[default]
    Address,
    Leak,
    Memory,
    Thread,
    None,
}

impl Sanitizer {
    pub fn as_str(self) -> &'static str {
        match self {
            Sanitizer::Address => "address",
            Sanitizer::Leak => "leak",
            Sanitizer::Memory => "memory",
            Sanitizer::Thread => "thread",
            Sanitizer::None => "none",
        }
    }
}

/// Where the budget comes from, kept until the number of targets is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Budget {
    PerTarget(Duration),
    Total(Duration),
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub budget: Budget,
    pub input_timeout: Duration,
    pub rss_limit_mb: u64,
    pub sanitizer: Sanitizer,
    pub seed: Option<u64>,
    pub max_len: Option<u64>,
    pub minimize_time: Duration,
    pub flags: Vec<String>,
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    /// Substring filters from the command line (`-- NAME`).
    pub filters: Vec<String>,
    pub check_only: bool,
    /// One build directory per sanitizer: switching sanitizers never rebuilds the other.
    pub target_dir: Utf8PathBuf,
    pub mode: FuzzMode,
    /// `--corpus-dir` / config `corpus-dir`, absolute.
    pub corpus_dir: Option<Utf8PathBuf>,
    /// Where distinct crashes are kept: in the corpus folder, else under `.runner/`.
    pub registry: Utf8PathBuf,
    /// The crates that keep coverage counters, when not all of them, and the runner binary
    /// that filters the compiler's flags for the others.
    pub instrument_only: Option<(Vec<String>, Utf8PathBuf)>,
}

impl Settings {
    pub fn resolve(ctx: &Context) -> Result<Settings> {
        let config = &ctx.workspace.config.stage::<FuzzConfig>()?;
        let mode = ctx.fuzz.mode.or(config.mode).unwrap_or_default();
        let budget = match (
            crate::plan::fuzz_time(&ctx.fuzz)?,
            &config.time,
            &config.total_time,
        ) {
            (None, None, None) if mode == FuzzMode::Pr => Budget::Total(DEFAULT_PR_BUDGET),
            (Some(time), _, _) => Budget::PerTarget(time),
            (None, Some(_), Some(_)) => {
                bail!("invalid runner config: set `fuzz.time` or `fuzz.total-time`, not both")
            }
            (None, Some(time), None) => Budget::PerTarget(duration_key("fuzz.time", time)?),
            (None, None, Some(total)) => Budget::Total(duration_key("fuzz.total-time", total)?),
            (None, None, None) => Budget::PerTarget(DEFAULT_BUDGET),
        };
        let input_timeout = match &config.input_timeout {
            Some(text) => duration_key("fuzz.input-timeout", text)?,
            None => DEFAULT_INPUT_TIMEOUT,
        };
        if input_timeout < Duration::from_secs(1) {
            bail!("invalid runner config key `fuzz.input-timeout`: libFuzzer needs at least 1s");
        }
        let minimize_time = match &config.minimize_time {
            Some(text) => duration_key("fuzz.minimize-time", text)?,
            None => DEFAULT_MINIMIZE_TIME,
        };
        let sanitizer = config.sanitizer.unwrap_or_default();
        let corpus_dir = match (&ctx.fuzz.corpus_dir, &config.corpus_dir) {
            (Some(dir), _) => Some(absolute(dir, None)?),
            (None, Some(dir)) => Some(absolute(dir, Some(&ctx.workspace.root))?),
            (None, None) => None,
        };
        let instrument_only = match instrumented_crates(config.instrument.as_ref())? {
            None => None,
            Some(crates) => {
                let exe = std::env::current_exe().context("cannot find the runner binary")?;
                let exe = Utf8PathBuf::from_path_buf(exe).map_err(|path| {
                    anyhow::anyhow!("the runner binary's path {} is not UTF-8", path.display())
                })?;
                Some((crates, exe))
            }
        };
        // The wrapper's crate list is invisible to cargo's fingerprints: each list builds in a
        // folder of its own, or a build with other counters would be reused.
        let build_name = match &instrument_only {
            None => sanitizer.as_str().to_owned(),
            Some((crates, _)) => format!(
                "{}-only-{}",
                sanitizer.as_str(),
                crate::hash::digest(&crates.iter().map(String::as_str).collect::<Vec<_>>())
            ),
        };
        let registry = corpus_dir.as_ref().map_or_else(
            || ctx.workspace.root.join(DEFAULT_REGISTRY),
            |dir| dir.join(REGISTRY_IN_CORPUS_DIR),
        );
        // Before any fuzzing: folders runner will write inputs and records into.
        for dir in corpus_dir.iter().chain([&registry]) {
            crate::foreign::check_folder(dir)?;
        }
        Ok(Settings {
            budget,
            input_timeout,
            rss_limit_mb: config.rss_limit_mb.unwrap_or(DEFAULT_RSS_LIMIT_MB),
            sanitizer,
            seed: config.seed,
            max_len: config.max_len,
            minimize_time,
            flags: config.flags.clone(),
            include: config.include.clone(),
            exclude: config.exclude.clone(),
            filters: ctx.filters.clone(),
            check_only: ctx.fuzz.check,
            target_dir: ctx.workspace.stage_target_dir("fuzz").join(build_name),
            mode,
            corpus_dir,
            registry,
            instrument_only,
        })
    }

    /// The time each target gets: a total is shared by the targets, `jobs` of them at once.
    pub fn per_target(&self, targets: usize, jobs: usize) -> Duration {
        match self.budget {
            Budget::PerTarget(time) => time,
            Budget::Total(total) => {
                let targets = u32::try_from(targets.max(1)).unwrap_or(u32::MAX);
                let parallel = u32::try_from(jobs.max(1)).unwrap_or(u32::MAX).min(targets);
                // Checked: `total` comes from config; an overflow must not panic the run.
                let shared = total.checked_mul(parallel).map_or_else(
                    || (total / targets).saturating_mul(parallel),
                    |all| all / targets,
                );
                shared.max(Duration::from_secs(1))
            }
        }
    }

    /// Whether a target is selected by config include/exclude (its name, or its label when
    /// several projects exist) and the command-line substring filters.
    pub fn selects(&self, name: &str, label: &str) -> bool {
        let named = |list: &[String]| list.iter().any(|n| n == name || n == label);
        (self.include.is_empty() || named(&self.include))
            && !named(&self.exclude)
            && (self.filters.is_empty() || self.filters.iter().any(|f| label.contains(f.as_str())))
    }
}

/// The crates `instrument` names, or `None` for all of them.
fn instrumented_crates(config: Option<&InstrumentConfig>) -> Result<Option<Vec<String>>> {
    match config {
        None => Ok(None),
        Some(InstrumentConfig::Word(word)) if word == "all" => Ok(None),
        Some(InstrumentConfig::Word(word)) => bail!(
            "invalid runner config key `fuzz.instrument`: `{word}` (use \"all\" or a list of crate names)"
        ),
        Some(InstrumentConfig::Crates(crates)) if crates.iter().any(|c| c.trim().is_empty()) => {
            bail!("invalid runner config key `fuzz.instrument`: a crate name is empty")
        }
        Some(InstrumentConfig::Crates(crates)) if crates.is_empty() => {
            bail!("invalid runner config key `fuzz.instrument`: the list of crates is empty")
        }
        Some(InstrumentConfig::Crates(crates)) => Ok(Some(crates.clone())),
    }
}

/// A folder the user named: the command line's relative to the current folder, the config's
/// to the workspace root.
fn absolute(dir: &Utf8PathBuf, root: Option<&Utf8PathBuf>) -> Result<Utf8PathBuf> {
    if dir.as_str().trim().is_empty() {
        bail!("invalid corpus folder: the name is empty");
    }
    if dir.is_absolute() {
        return Ok(dir.clone());
    }
    match root {
        Some(root) => Ok(root.join(dir)),
        None => Ok(crate::plan::current_dir()?.join(dir)),
    }
}

fn duration_key(key: &str, text: &str) -> Result<Duration> {
    crate::duration::parse(text).with_context(|| format!("invalid runner config key `{key}`"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(budget: Budget) -> Settings {
        Settings {
            budget,
            input_timeout: DEFAULT_INPUT_TIMEOUT,
            rss_limit_mb: DEFAULT_RSS_LIMIT_MB,
            sanitizer: Sanitizer::Address,
            seed: None,
            max_len: None,
            minimize_time: DEFAULT_MINIMIZE_TIME,
            flags: Vec::new(),
            include: Vec::new(),
            exclude: vec!["slow".into()],
            filters: Vec::new(),
            check_only: false,
            target_dir: "t".into(),
            mode: FuzzMode::Batch,
            corpus_dir: None,
            registry: "r".into(),
            instrument_only: None,
        }
    }

    #[test]
    fn a_total_budget_is_shared_by_targets_running_jobs_at_a_time() {
        let total = settings(Budget::Total(Duration::from_mins(2)));
        assert_eq!(total.per_target(4, 2), Duration::from_mins(1));
        assert_eq!(total.per_target(4, 1), Duration::from_secs(30));
        assert_eq!(total.per_target(1, 8), Duration::from_mins(2));
        let huge = settings(Budget::Total(Duration::MAX));
        assert_eq!(huge.per_target(4, 2), Duration::MAX / 4 * 2);
        let each = settings(Budget::PerTarget(Duration::from_mins(1)));
        assert_eq!(each.per_target(10, 2), Duration::from_mins(1));
    }

    #[test]
    fn include_exclude_and_filters_select_by_name() {
        let mut s = settings(Budget::PerTarget(DEFAULT_BUDGET));
        assert!(s.selects("parse", "parse"));
        assert!(!s.selects("slow", "slow"));
        assert!(
            !s.selects("slow", "fuzz/slow"),
            "exclusion by name holds with labels"
        );
        s.include = vec!["parse".into()];
        assert!(!s.selects("decode", "decode"));
        assert!(s.selects("parse", "a/fuzz/parse"));
        s.include.clear();
        s.filters = vec!["dec".into()];
        assert!(s.selects("decode", "decode"));
        assert!(!s.selects("parse", "parse"));
    }

    #[test]
    fn instrument_is_all_or_a_list_of_crates() {
        let parse = |json| {
            let config: FuzzConfig = serde_json::from_value(json).unwrap();
            instrumented_crates(config.instrument.as_ref())
        };
        assert_eq!(parse(serde_json::json!({})).unwrap(), None);
        assert_eq!(
            parse(serde_json::json!({"instrument": "all"})).unwrap(),
            None
        );
        assert_eq!(
            parse(serde_json::json!({"instrument": ["my-crate"]})).unwrap(),
            Some(vec!["my-crate".to_owned()])
        );
        for bad in [
            serde_json::json!({"instrument": "some"}),
            serde_json::json!({"instrument": []}),
            serde_json::json!({"instrument": [""]}),
        ] {
            assert!(parse(bad).is_err());
        }
    }

    #[test]
    fn modes_and_the_corpus_folder_read_from_config() {
        let config: FuzzConfig =
            serde_json::from_value(serde_json::json!({"mode": "pr", "corpus-dir": "fuzz-corpus"}))
                .unwrap();
        assert_eq!(config.mode, Some(FuzzMode::Pr));
        assert!(
            serde_json::from_value::<FuzzConfig>(serde_json::json!({"mode": "nightly"})).is_err()
        );
        let root = Utf8PathBuf::from("/ws");
        assert_eq!(
            absolute(config.corpus_dir.as_ref().unwrap(), Some(&root)).unwrap(),
            "/ws/fuzz-corpus"
        );
        assert!(absolute(&Utf8PathBuf::from(" "), Some(&root)).is_err());
    }

    #[test]
    fn config_table_is_strict_and_kebab_case() {
        let ok: FuzzConfig =
            serde_json::from_value(serde_json::json!({"input-timeout": "2s", "sanitizer": "none"}))
                .unwrap();
        assert_eq!(ok.sanitizer, Some(Sanitizer::None));
        assert!(serde_json::from_value::<FuzzConfig>(serde_json::json!({"timeoutt": 1})).is_err());
    }
}
