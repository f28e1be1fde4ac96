//! Command-line interface: the commands, their options, and parsing into one-line errors.

use camino::Utf8PathBuf;
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::exit::Exit;

const EXIT_CODES: &str = "\
Exit codes:
  0  every requested analysis ran and the gate passed
  1  the gate failed (findings at or above the configured severity, or a threshold miss)
  2  could not evaluate (bad input, missing tool, a stage error or timeout, interrupted)";

#[derive(Debug, Parser)]
#[command(
    name = "runner",
    version,
    about = "Runs every dynamic analysis a Rust workspace needs and gates on one honest report",
    after_help = EXIT_CODES
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Print only errors and the final verdict.
    #[arg(long, short, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Also print every command run and the tools' output.
    #[arg(long, short, global = true)]
    pub verbose: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run every stage that applies to the workspace.
    All(RunArgs),
    /// One stage alone: `runner miri`, `runner valgrind`, ... (one subcommand per stage name).
    #[command(flatten)]
    Stage(StageCommand),
    /// Print what each stage would run (argv, env, target dir) without running anything.
    Plan(RunArgs),
    /// Show the environment, the toolchain against the pin, and what is missing.
    Doctor,
    /// Install the pinned toolchain, components and cargo tools the stages need.
    Setup(SetupArgs),
    /// Show or empty the result cache (`<target-dir>/runner-cache`).
    Cache(CacheArgs),
    /// Join the report folders of the jobs of a `--partition K/N` run into one report.
    Merge(MergeArgs),
    /// Print how a durations file would split across 1, 2, 4, 8 and 16 CI jobs.
    Partitions(PartitionsArgs),
}

/// `runner <stage> [options]`: the subcommands are built from the stage names, so a stage
/// added to runner needs nothing here.
#[derive(Debug, Clone)]
pub struct StageCommand {
    pub stage: StageName,
    pub args: RunArgs,
}

impl clap::FromArgMatches for StageCommand {
    fn from_arg_matches(matches: &clap::ArgMatches) -> Result<Self, clap::Error> {
        let (name, args) = matches
            .subcommand()
            .ok_or_else(|| clap::Error::new(clap::error::ErrorKind::MissingSubcommand))?;
        let stage = StageName::from_str(name, false)
            .map_err(|_| clap::Error::new(clap::error::ErrorKind::InvalidSubcommand))?;
        Ok(StageCommand {
            stage,
            args: RunArgs::from_arg_matches(args)?,
        })
    }

    fn update_from_arg_matches(&mut self, matches: &clap::ArgMatches) -> Result<(), clap::Error> {
        *self = StageCommand::from_arg_matches(matches)?;
        Ok(())
    }
}

impl Subcommand for StageCommand {
    fn augment_subcommands(command: clap::Command) -> clap::Command {
        StageName::ALL.iter().fold(command, |command, stage| {
            command.subcommand(RunArgs::augment_args(
                clap::Command::new(stage.as_str()).about(stage.about()),
            ))
        })
    }

    fn augment_subcommands_for_update(command: clap::Command) -> clap::Command {
        StageCommand::augment_subcommands(command)
    }

    fn has_subcommand(name: &str) -> bool {
        StageName::ALL.iter().any(|stage| stage.as_str() == name)
    }
}

/// `runner cache stats|clear`.
#[derive(Debug, Clone, Args)]
pub struct CacheArgs {
    #[arg(value_enum)]
    pub action: CacheAction,
    #[command(flatten)]
    pub workspace: WorkspaceArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CacheAction {
    /// How many results the cache holds and its size.
    Stats,
    /// Remove every stored result.
    Clear,
}

#[derive(Debug, Clone, Args)]
pub struct MergeArgs {
    /// The report folders of the partition jobs, one per slice.
    #[arg(value_name = "DIR", required = true)]
    pub dirs: Vec<Utf8PathBuf>,
    /// Where to write the merged report.json, report.md, report.sarif, junit.xml and
    /// durations.json.
    #[arg(long, value_name = "DIR")]
    pub out: Utf8PathBuf,
    /// A previous report.json to compare with [default: the workspace's
    /// .runner/findings-baseline.json, when it exists].
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<Utf8PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct PartitionsArgs {
    /// A durations file (a workspace's .runner/durations.json, or a merged report's).
    #[arg(value_name = "FILE")]
    pub durations: Utf8PathBuf,
    /// Only this stage's durations [default: every stage, each split on its own].
    #[arg(long, value_name = "STAGE")]
    pub stage: Option<StageName>,
}

pub use crate::stage_name::StageName;

/// Where the workspace is.
#[derive(Debug, Clone, Args)]
pub struct WorkspaceArgs {
    /// The workspace to analyse (a directory with a Cargo.toml).
    #[arg(value_name = "PATH")]
    pub path: Option<Utf8PathBuf>,
    /// Path to the workspace's Cargo.toml (instead of PATH).
    #[arg(long, value_name = "FILE", conflicts_with = "path")]
    pub manifest_path: Option<Utf8PathBuf>,
}

/// Options shared by every command that runs (or plans) stages.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub workspace: WorkspaceArgs,
    /// Where to write report.json, report.md, report.sarif, junit.xml and the stage folders
    /// [default: <target-dir>/runner].
    #[arg(long, value_name = "DIR")]
    pub out: Option<Utf8PathBuf>,
    #[command(flatten)]
    pub folder: FolderArgs,
    /// A previous report.json to compare with: findings are new, still present or fixed
    /// [default: .runner/findings-baseline.json in the workspace, when it exists].
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<Utf8PathBuf>,
    /// With `all`: run only these stages.
    #[arg(long, value_delimiter = ',', value_name = "STAGE")]
    pub stages: Vec<StageName>,
    /// With `all`: leave these stages out.
    #[arg(long, value_delimiter = ',', value_name = "STAGE")]
    pub skip: Vec<StageName>,
    /// Never install anything: a missing tool is an error naming its install command.
    #[arg(long)]
    pub no_provision: bool,
    /// Run every test again instead of reporting unchanged results from the result cache
    /// (nothing is read from or written to it).
    #[arg(long, env = "RUNNER_NO_CACHE")]
    pub no_cache: bool,
    /// Time limit per stage, like 90s, 10m or 1h [default: 60m, or config `timeout`].
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<String>,
    /// Time limit per test, like 20s or 5m: a test past it has its process tree killed and
    /// is reported as a `timeout` finding [default: 5m native, 15m under Miri, or config
    /// `test-timeout`].
    #[arg(long, value_name = "DURATION")]
    pub test_timeout: Option<String>,
    /// Parallel tool processes [default: number of cores].
    #[arg(long, short, value_name = "N")]
    pub jobs: Option<usize>,
    /// Run only slice K of N of the work (1-based), for a CI matrix of N jobs: every job
    /// computes the same split; `runner merge` joins their report folders into one report.
    #[arg(long, value_name = "K/N")]
    pub partition: Option<String>,
    /// The durations file the split and the shards are balanced by, and where this run's
    /// measurements are added [default: .runner/durations.json in the workspace].
    #[arg(long, value_name = "FILE")]
    pub durations: Option<Utf8PathBuf>,
    #[command(flatten)]
    pub fuzz: crate::stage_flags::FuzzFlags,
    #[command(flatten)]
    pub cargo: CargoArgs,
    /// Where to run: here (`host`), inside the image (`docker`) or the flake's dev shell
    /// (`nix`); `auto` runs where runner already is.
    #[arg(long = "in", value_enum, default_value_t = Place::Auto, value_name = "WHERE")]
    pub place: Place,
    /// The image for `--in docker` [default: `$RUNNER_IMAGE`, else `runner`].
    #[arg(long, value_name = "IMAGE")]
    pub image: Option<String>,
    /// The flake for `--in nix` [default: `$RUNNER_FLAKE`].
    #[arg(long, value_name = "FLAKEREF")]
    pub flake: Option<String>,
    /// Test-name filters, as for `cargo test` (substring match).
    #[arg(last = true, value_name = "TESTNAME")]
    pub filters: Vec<String>,
}

/// How the report folder may be used.
#[derive(Debug, Clone, Default, Args)]
pub struct FolderArgs {
    /// Allow --out among the workspace's sources (outside its target dir), where runner's
    /// files would mix with yours.
    #[arg(long)]
    pub force_out: bool,
    /// When another runner is using the report folder, exit 2 at once instead of waiting.
    #[arg(long)]
    pub no_wait: bool,
}

/// Where the analyses run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Place {
    Auto,
    Host,
    Nix,
    Docker,
}

/// Cargo's own selection options, passed through to every cargo command a stage runs.
#[derive(Debug, Clone, Default, Args)]
#[allow(
    clippy::struct_excessive_bools,
    reason = "mirrors cargo's own flags one to one"
)]
pub struct CargoArgs {
    /// Package(s) to analyse.
    #[arg(long, short, value_name = "SPEC")]
    pub package: Vec<String>,
    /// Every member of the workspace.
    #[arg(long)]
    pub workspace: bool,
    /// Leave these packages out (with --workspace).
    #[arg(long, value_name = "SPEC")]
    pub exclude: Vec<String>,
    /// Features to activate.
    #[arg(long, short = 'F', value_name = "FEATURES")]
    pub features: Vec<String>,
    /// Activate all features.
    #[arg(long)]
    pub all_features: bool,
    /// Do not activate the default feature.
    #[arg(long)]
    pub no_default_features: bool,
    /// Require Cargo.lock to be up to date.
    #[arg(long)]
    pub locked: bool,
    /// Run without accessing the network.
    #[arg(long)]
    pub offline: bool,
}

impl CargoArgs {
    /// The options as cargo arguments, in a stable order.
    pub fn to_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        for package in &self.package {
            args.extend(["--package".to_owned(), package.clone()]);
        }
        if self.workspace {
            args.push("--workspace".to_owned());
        }
        for excluded in &self.exclude {
            args.extend(["--exclude".to_owned(), excluded.clone()]);
        }
        if !self.features.is_empty() {
            args.extend(["--features".to_owned(), self.features.join(",")]);
        }
        let flags = [
            (self.all_features, "--all-features"),
            (self.no_default_features, "--no-default-features"),
            (self.locked, "--locked"),
            (self.offline, "--offline"),
        ];
        args.extend(
            flags
                .iter()
                .filter(|(on, _)| *on)
                .map(|(_, flag)| (*flag).to_owned()),
        );
        args
    }

    /// The subset that selects features and lockfile behaviour, without package selection
    /// (for commands that already name one package).
    pub fn build_args(&self) -> Vec<String> {
        CargoArgs {
            package: Vec::new(),
            workspace: false,
            exclude: Vec::new(),
            ..self.clone()
        }
        .to_args()
    }
}

#[derive(Debug, Clone, Args)]
pub struct SetupArgs {
    /// Provision only what these stages need [default: every stage].
    #[arg(long, value_delimiter = ',', value_name = "STAGE")]
    pub stages: Vec<StageName>,
}

/// Parses the process arguments. Help and version go to stdout with exit 0; any other
/// problem is one line on stderr with exit 2.
pub fn parse() -> Result<Cli, Exit> {
    Cli::try_parse().map_err(|error| {
        use clap::error::ErrorKind;
        match error.kind() {
            ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
                // Printing help can only fail on a closed stdout; nothing useful is left to do.
                let _ = error.print();
                if error.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                    Exit::NotEvaluated
                } else {
                    Exit::Passed
                }
            }
            _ => {
                let rendered = error.render().to_string();
                let first = rendered.lines().next().unwrap_or("invalid arguments");
                let first = first.trim_start_matches("error: ");
                eprintln!("runner: error: {first} (see `runner --help`)");
                Exit::NotEvaluated
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cargo_args_pass_through_in_order() {
        let cli = Cli::try_parse_from([
            "runner",
            "miri",
            "ws",
            "-p",
            "a",
            "--features",
            "x",
            "--locked",
            "--",
            "some_test",
        ])
        .unwrap();
        let Command::Stage(StageCommand {
            stage: StageName::Miri,
            args,
        }) = cli.command
        else {
            panic!("parsed the wrong command")
        };
        assert_eq!(
            args.cargo.to_args(),
            ["--package", "a", "--features", "x", "--locked"]
        );
        assert_eq!(args.cargo.build_args(), ["--features", "x", "--locked"]);
        assert_eq!(args.filters, ["some_test"]);
        assert_eq!(
            args.workspace.path.as_deref(),
            Some(camino::Utf8Path::new("ws"))
        );
    }

    #[test]
    fn unknown_stage_is_rejected() {
        assert!(Cli::try_parse_from(["runner", "all", "--stages", "nope"]).is_err());
        assert!(Cli::try_parse_from(["runner", "nope"]).is_err());
    }
}
