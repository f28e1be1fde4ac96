//! The resolved plan: CLI, config, workspace and toolchain settled once before any stage runs.

use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use camino::Utf8PathBuf;

use crate::cli::{CargoArgs, RunArgs};
use crate::environment::Toolchain;
use crate::exec::partition::Partition;
use crate::process::{self, Cmd};
use crate::progress::Progress;
use crate::report::Severity;
use crate::stage_name::StageName;
use crate::workspace::{Member, Workspace};

/// A partitioned run's durations, in its report folder.
pub const DURATIONS_COPY: &str = "durations.json";

/// The default per-stage limit.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_hours(1);

/// The most parallel tool processes `--jobs` accepts: each job is a thread and a process
/// tree, and more than this is a typo that would exhaust the machine, not a wish.
pub const MAX_JOBS: usize = 1024;

/// Everything a stage needs to know, resolved.
pub struct Context {
    pub workspace: Workspace,
    pub toolchain: Toolchain,
    /// The host triple from `rustc -vV`.
    pub host: String,
    pub out_dir: Utf8PathBuf,
    pub jobs: usize,
    pub timeout: Duration,
    pub cargo: CargoArgs,
    pub filters: Vec<String>,
    pub fail_on: Severity,
    pub progress: Progress,
    /// The user named the stages (a single-stage command, or `--stages`): a stage that cannot
    /// run here is then an ERROR rather than SKIPPED.
    pub explicit: bool,
    /// Stages may install a pinned tool they need only in some configurations (not
    /// `--no-provision`).
    pub provision: bool,
    /// The fuzz stage's flags, over its config.
    pub fuzz: crate::stage_flags::FuzzFlags,
    /// `--test-timeout`: the per-test limit, over config.
    pub test_timeout: Option<Duration>,
    /// The result cache, unless `--no-cache` (opened once the run has its id).
    pub cache: Option<crate::cache::Cache>,
    /// `--partition K/N`: this job runs only its slice of the work.
    pub partition: Option<Partition>,
    /// Where the measured durations are read from and added to.
    pub durations_file: Utf8PathBuf,
    /// The package ids of the members the command line selects (`-p`, `--workspace`,
    /// `--exclude`, else cargo's default members).
    pub selected: Vec<String>,
}

impl Context {
    pub fn resolve(
        args: &RunArgs,
        workspace: Workspace,
        toolchain: Toolchain,
        progress: Progress,
    ) -> Result<Context> {
        let config = &workspace.config;
        let timeout = match (&args.timeout, &config.timeout) {
            (Some(text), _) => crate::duration::positive(text, "--timeout")?,
            (None, Some(text)) => crate::duration::positive(text, "runner config key `timeout`")?,
            (None, None) => DEFAULT_TIMEOUT,
        };
        let jobs = match args.jobs {
            Some(jobs) => jobs,
            None => std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get),
        };
        if !(1..=MAX_JOBS).contains(&jobs) {
            bail!("invalid --jobs {jobs}: use 1 to {MAX_JOBS}");
        }
        let out_dir = match &args.out {
            Some(out) if out.as_str().trim().is_empty() => {
                bail!("invalid --out: the folder name is empty")
            }
            // Absolute: the tools run from the workspace root and get paths inside it.
            Some(out) if out.is_relative() => current_dir()?.join(out),
            Some(out) => out.clone(),
            None => workspace.target_dir.join("runner"),
        };
        let host = host_triple()?;
        // Checked here, so a bad value is an error before any stage runs.
        fuzz_time(&args.fuzz)?;
        let test_timeout = args
            .test_timeout
            .as_deref()
            .map(|text| crate::duration::positive(text, "--test-timeout"))
            .transpose()?;
        let partition = args
            .partition
            .as_deref()
            .map(str::parse::<Partition>)
            .transpose()?;
        let durations_file = args
            .durations
            .clone()
            .unwrap_or_else(|| crate::exec::durations::path(&workspace.root));
        // Refused before any work: a FIFO would block the first read, a device be replaced.
        crate::foreign::check(&durations_file).with_context(|| {
            if args.durations.is_some() {
                "invalid --durations"
            } else {
                "invalid durations file"
            }
        })?;
        let selected = crate::packages::selected(&workspace, &args.cargo)?
            .into_iter()
            .map(|member| member.id.clone())
            .collect();
        Ok(Context {
            selected,
            partition,
            durations_file,
            fail_on: config.fail_on.unwrap_or(Severity::High),
            workspace,
            toolchain,
            host,
            out_dir,
            jobs,
            timeout,
            cargo: args.cargo.clone(),
            filters: args.filters.clone(),
            progress,
            explicit: false,
            provision: !args.no_provision,
            fuzz: args.fuzz.clone(),
            test_timeout,
            cache: None,
        })
    }

    /// A per-test stage's limit for one test: `--test-timeout`, else the stage's own
    /// `test-timeout`, else the top-level one, else the stage's default.
    pub fn test_timeout(&self, stage_value: Option<&str>, default: Duration) -> Result<Duration> {
        if let Some(limit) = self.test_timeout {
            return Ok(limit);
        }
        let (text, key) = match (stage_value, self.workspace.config.test_timeout.as_deref()) {
            (Some(text), _) => (text, "the stage's `test-timeout`"),
            (None, Some(text)) => (text, "config `test-timeout`"),
            (None, None) => return Ok(default),
        };
        let limit = crate::duration::parse(text).with_context(|| format!("invalid {key}"))?;
        if limit.is_zero() {
            anyhow::bail!("invalid {key}: a time limit must be longer than zero");
        }
        Ok(limit)
    }

    /// Whether a stage's per-test limit is runner's default: neither `--test-timeout`, the
    /// stage's `test-timeout` nor the workspace's set it. Only a default stretches for a test
    /// known to be slow (`exec::clock::stretched_limits`); a limit the user set is kept.
    pub fn test_timeout_is_default(&self, stage_value: Option<&str>) -> bool {
        self.test_timeout.is_none()
            && stage_value.is_none()
            && self.workspace.config.test_timeout.is_none()
    }

    /// What `cargo +<pin> test` gives a test process, for one runner starts itself (a
    /// sanitizer's or valgrind's harness, one under qemu): the pinned toolchain for any
    /// `rustc` or `cargo` the test runs (rustup's proxy sets `RUSTUP_TOOLCHAIN` for cargo's
    /// children), and cargo's variables of the package. Without them autocfg's
    /// `test_with_sysroot`, which compiles a probe against its own build, ran the default
    /// toolchain's rustc and failed under every such stage. Through cargo (Miri) cargo sets
    /// the same values itself.
    pub fn cargo_test_environment(&self, mut cmd: Cmd, unit: &crate::inventory::TestUnit) -> Cmd {
        if !self.toolchain.mode.is_hermetic() {
            cmd = cmd.env("RUSTUP_TOOLCHAIN", self.toolchain.channel());
        }
        let Some(member) = self
            .workspace
            .members
            .iter()
            .find(|member| member.id == unit.package_id)
        else {
            return cmd;
        };
        // cargo metadata gave the version, so it parses; its parts as cargo sets them.
        if let Ok(version) = cargo_metadata::semver::Version::parse(&member.version) {
            cmd = cmd
                .env("CARGO_PKG_VERSION_MAJOR", version.major.to_string())
                .env("CARGO_PKG_VERSION_MINOR", version.minor.to_string())
                .env("CARGO_PKG_VERSION_PATCH", version.patch.to_string())
                .env("CARGO_PKG_VERSION_PRE", version.pre.as_str());
        }
        cmd.env("CARGO_PKG_VERSION", member.version.as_str())
            .env("CARGO_PKG_NAME", member.name.as_str())
            .env("CARGO_MANIFEST_DIR", member.dir().as_str())
            .env("CARGO_MANIFEST_PATH", member.manifest_path.as_str())
            .env("CARGO_CRATE_NAME", unit.name.replace('-', "_"))
            .env("CARGO_PRIMARY_PACKAGE", "1")
    }

    /// The instant the stage's budget runs out (far in the future for absurd budgets,
    /// never an overflow).
    pub fn stage_deadline(&self) -> std::time::Instant {
        let now = std::time::Instant::now();
        now.checked_add(self.timeout)
            .unwrap_or_else(|| now + Duration::from_hours(100 * 365 * 24))
    }

    /// Where this run's measured durations are added: the durations file, or under
    /// `--partition` the slice's copy in its report folder (the file itself stays what
    /// every slice split by).
    pub fn durations_written(&self) -> Utf8PathBuf {
        if self.partition.is_some() {
            self.out_dir.join(DURATIONS_COPY)
        } else {
            self.durations_file.clone()
        }
    }

    /// The pinned toolchain's cargo building into a stage's own target dir from the workspace
    /// root, with the workspace's rustflags merged as every stage does.
    pub fn stage_cargo(&self, target_dir: &camino::Utf8Path) -> Cmd {
        let cmd = self
            .toolchain
            .cargo()
            .env("CARGO_TARGET_DIR", target_dir.as_str())
            .cwd(self.workspace.root.clone());
        match crate::cargo_config::stage_rustflags(&self.workspace, &self.host, &[]) {
            Some(flags) => cmd.env("RUSTFLAGS", flags),
            None => cmd,
        }
    }

    /// The members `stage` analyses: the command line's selection, narrowed by the stage's
    /// `packages` / `exclude-packages` and by members that skip it.
    pub fn stage_members(&self, stage: StageName) -> Vec<&Member> {
        let selected: Vec<&Member> = self
            .workspace
            .members
            .iter()
            .filter(|member| self.selected.contains(&member.id))
            .collect();
        crate::packages::for_stage(&self.workspace, &selected, stage)
    }

    /// cargo's arguments that select everything `stage` analyses, each package by its id
    /// (the dispatcher never runs a stage that has no package left).
    pub fn package_selection(&self, stage: StageName) -> Vec<String> {
        crate::packages::cargo_args(
            self.stage_members(stage)
                .iter()
                .map(|member| member.id.as_str()),
        )
    }

    /// The stage's folder for raw logs and artifacts, created on demand; a symlink planted
    /// in its place is removed (never followed: runner clears what is in this folder).
    pub fn stage_dir(&self, stage: StageName) -> Result<Utf8PathBuf> {
        let dir = crate::report::folder::own_dir(&self.out_dir, stage.as_str())?;
        process::ensure_writable_dir(&dir)?;
        Ok(dir)
    }
}

/// A duration option that must be longer than zero (and at most a year), with an error that
/// names where it came from.
/// `--fuzz-time`, checked: a duration longer than zero.
pub fn fuzz_time(flags: &crate::stage_flags::FuzzFlags) -> Result<Option<Duration>> {
    flags
        .fuzz_time
        .as_deref()
        .map(|text| crate::duration::positive(text, "--fuzz-time"))
        .transpose()
}

/// The host triple, from whichever rustc is on PATH (the triple does not depend on the
/// toolchain, and this works before the pinned one is installed).
pub fn host_triple() -> Result<String> {
    let text = Cmd::new("rustc")
        .arg("-vV")
        .unset_build_environment()
        .output_text()?;
    text.lines()
        .find_map(|line| line.strip_prefix("host:"))
        .map(|host| host.trim().to_owned())
        .context("`rustc -vV` printed no host triple")
}

/// What a stage would run, for `runner plan`.
pub struct StagePlan {
    pub stage: StageName,
    pub target_dir: Option<Utf8PathBuf>,
    pub steps: Vec<(String, Cmd)>,
    pub notes: Vec<String>,
}

impl std::fmt::Display for StagePlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "stage {}", self.stage)?;
        if let Some(dir) = &self.target_dir {
            writeln!(f, "  target dir: {dir}")?;
        }
        for note in &self.notes {
            writeln!(f, "  note: {note}")?;
        }
        for (label, cmd) in &self.steps {
            writeln!(f, "  {label}:")?;
            writeln!(
                f,
                "    argv: {:?}",
                std::iter::once(cmd.program())
                    .chain(cmd.get_args().iter().map(String::as_str))
                    .collect::<Vec<_>>()
            )?;
            let env: Vec<String> = cmd
                .env_set()
                .filter(|(key, _)| *key != "PATH")
                .map(|(key, value)| format!("{key}={value}"))
                .collect();
            if !env.is_empty() {
                writeln!(f, "    env: {}", env.join(" "))?;
            }
            writeln!(f, "    shell: {cmd}")?;
        }
        Ok(())
    }
}

/// The current folder, for making the paths a user gave on the command line absolute.
pub fn current_dir() -> Result<Utf8PathBuf> {
    let here = std::env::current_dir().context("cannot read the current folder")?;
    Utf8PathBuf::from_path_buf(here)
        .map_err(|path| anyhow::anyhow!("the current folder {} is not UTF-8", path.display()))
}
