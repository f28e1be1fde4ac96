//! Cross stage: the test suite built for big-endian s390x (`-Zbuild-std`, a cross linker) and
//! run natively under qemu-user. Much faster than Miri for large suites; it finds what byte
//! order breaks, not undefined behaviour.

mod findings;

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::{bail, Context as _, Result};
use camino::{Utf8Path, Utf8PathBuf};
use serde::Deserialize;

use crate::cli::StageName;
use crate::inventory::{self, TestUnit, UnitKind};
use crate::libtest::{self, Outcome};
use crate::plan::{Context, StagePlan};
use crate::process::{Cmd, RunOptions, Termination};
use crate::provision;
use crate::report::{gate, StageReport, Status, TargetSummary};

/// The default big-endian target.
pub const DEFAULT_TARGET: &str = "s390x-unknown-linux-gnu";

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CrossConfig {
    /// The big-endian target (default: s390x-unknown-linux-gnu).
    pub target: Option<String>,
}

/// How to build for and run on the target, resolved once.
#[derive(Debug, Clone)]
pub struct Settings {
    pub target: String,
    pub target_dir: Utf8PathBuf,
    /// The cross linker: cargo's own setting when the environment gives one (the Nix shell),
    /// else the Debian cross compiler on PATH.
    pub linker: String,
    /// qemu-user for the target, and the target's libc root for it.
    pub emulator: String,
    pub sysroot: Option<Utf8PathBuf>,
}

/// `CARGO_TARGET_S390X_UNKNOWN_LINUX_GNU_LINKER` for `s390x-unknown-linux-gnu`.
fn target_env(target: &str, key: &str) -> String {
    format!(
        "CARGO_TARGET_{}_{key}",
        target.to_uppercase().replace(['-', '.'], "_")
    )
}

impl Settings {
    pub fn resolve(ctx: &Context) -> Result<Settings> {
        let target = ctx
            .workspace
            .config
            .cross
            .target
            .clone()
            .unwrap_or_else(|| DEFAULT_TARGET.to_owned());
        let arch = target.split('-').next().unwrap_or(&target).to_owned();
        let tools = provision::needs(StageName::Cross).system;
        let missing: Vec<String> = tools
            .iter()
            .filter(|tool| tool.find().is_none())
            .map(provision::SystemTool::install_hint)
            .collect();
        let linker = std::env::var(target_env(&target, "LINKER")).ok();
        let emulator = which::which(format!("qemu-{arch}-static"))
            .or_else(|_| which::which(format!("qemu-{arch}")));
        let (Some(linker), Ok(emulator)) = (
            linker.or_else(|| {
                which::which(format!("{arch}-linux-gnu-gcc"))
                    .ok()
                    .map(|p| p.display().to_string())
            }),
            emulator,
        ) else {
            bail!(
                "missing: qemu-user and a cross linker for {target}; install with: {}",
                missing.join("; ")
            );
        };
        let sysroot = Utf8PathBuf::from(format!("/usr/{arch}-linux-gnu"));
        Ok(Settings {
            target,
            target_dir: ctx.workspace.stage_target_dir("cross"),
            linker,
            emulator: emulator.display().to_string(),
            sysroot: sysroot.is_dir().then_some(sysroot),
        })
    }
}

fn cargo_test(ctx: &Context, settings: &Settings) -> Cmd {
    let mut cmd = ctx
        .toolchain
        .cargo()
        .args(["test", "-Zbuild-std", "--target", settings.target.as_str()])
        .args(["--manifest-path", ctx.workspace.manifest_path.as_str()])
        .args(ctx.cargo.to_args())
        .env("CARGO_TARGET_DIR", settings.target_dir.as_str())
        .env(
            target_env(&settings.target, "LINKER"),
            settings.linker.as_str(),
        )
        .cwd(ctx.workspace.root.clone());
    if let Some(flags) = crate::cargo_config::stage_rustflags(&ctx.workspace, &settings.target, &[])
    {
        cmd = cmd.env("RUSTFLAGS", flags);
    }
    cmd
}

fn build_command(ctx: &Context, settings: &Settings) -> Cmd {
    cargo_test(ctx, settings).args(["--no-run", "--message-format=json"])
}

/// A test harness under qemu-user, with libtest's JSON events and a backtrace on panic.
fn emulated(settings: &Settings, executable: &Utf8Path) -> Cmd {
    let mut cmd = Cmd::new(settings.emulator.as_str());
    if let Some(sysroot) = &settings.sysroot {
        cmd = cmd.args(["-L", sysroot.as_str()]);
    }
    cmd.arg(executable.as_str()).env("RUST_BACKTRACE", "1")
}

fn run_command(settings: &Settings, executable: &Utf8Path, tests: &[String]) -> Cmd {
    emulated(settings, executable)
        .args([
            "-Zunstable-options",
            "--format",
            "json",
            "--report-time",
            "--test-threads=1",
            "--exact",
        ])
        .args(tests.iter().cloned())
}

pub fn plan(ctx: &Context) -> Result<StagePlan> {
    let settings = Settings::resolve(ctx)?;
    let example = Utf8PathBuf::from(format!(
        "{}/{}/debug/deps/<test-binary>",
        settings.target_dir, settings.target
    ));
    Ok(StagePlan {
        stage: StageName::Cross,
        target_dir: Some(settings.target_dir.clone()),
        steps: vec![
            (
                format!("build tests for {}", settings.target),
                build_command(ctx, &settings),
            ),
            (
                "list a binary's tests".to_owned(),
                emulated(&settings, &example).arg("--list"),
            ),
            (
                "run them under qemu-user".to_owned(),
                run_command(&settings, &example, &["<test>...".to_owned()]),
            ),
        ],
        notes: vec![
            "doctests are not run natively cross; the Miri stage interprets them on s390x"
                .to_owned(),
        ],
    })
}

pub fn run(ctx: &Context) -> Result<StageReport> {
    let deadline = Instant::now() + ctx.timeout;
    let settings = Settings::resolve(ctx)?;
    let logs = ctx.stage_dir(StageName::Cross)?.join("logs");
    crate::process::ensure_writable_dir(&logs)?;
    ctx.progress.note(&format!(
        "{}: building tests with -Zbuild-std",
        settings.target
    ));
    let build = build_command(ctx, &settings);
    ctx.progress.verbose(&build.to_string());
    let finished = build.run(&RunOptions {
        timeout: Some(deadline.saturating_duration_since(Instant::now())),
        log_stem: Some(logs.join("build")),
        ..RunOptions::default()
    })?;
    crate::cargo_output::require_success(
        &finished,
        &format!("building the tests for {}", settings.target),
    )?;
    let units: Vec<TestUnit> =
        inventory::units_from_messages(&finished.stdout, |id| ctx.workspace.member_of(id))
            .into_iter()
            .filter(|unit| unit.kind != UnitKind::Doc)
            .collect();

    let mut counts: BTreeMap<String, u64> = ["tests_run", "passed", "failed", "crashed"]
        .into_iter()
        .map(|k| (k.to_owned(), 0))
        .collect();
    let mut raw = Vec::new();
    for unit in &units {
        let outcome = run_unit(ctx, &settings, unit, &logs, deadline)?;
        for (key, value) in outcome.counts {
            *counts.entry(key).or_default() += value;
        }
        raw.extend(outcome.failures);
    }
    let mut report = StageReport::new(StageName::Cross, Status::Pass);
    report.artifacts_dir = Some(Utf8PathBuf::from("cross"));
    report.findings = findings::build(ctx, &settings, &raw);
    report.notes.push(format!(
        "built with -Zbuild-std and {}, run under {}; doctests are not run natively cross (the Miri stage interprets them on s390x)",
        settings.linker, settings.emulator
    ));
    report.status = gate::status_from_findings(&report.findings, ctx.fail_on);
    if counts["tests_run"] == 0 {
        report.status = Status::Error;
        report.reason = Some(format!("no tests found for {}", settings.target));
    }
    report.targets = vec![TargetSummary {
        name: settings.target.clone(),
        counts: counts.clone(),
    }];
    report.counts = counts;
    Ok(report)
}

/// A test that failed or crashed natively on the target.
pub struct Failure {
    pub unit: TestUnit,
    pub test: String,
    /// libtest's captured output, or what is known of the crash.
    pub output: String,
    pub crashed: Option<String>,
}

struct UnitOutcome {
    counts: BTreeMap<String, u64>,
    failures: Vec<Failure>,
}

impl UnitOutcome {
    /// Counts the finished tests and keeps the failed ones.
    fn record(&mut self, unit: &TestUnit, events: &libtest::RunEvents) {
        for result in &events.results {
            let key = match &result.outcome {
                Outcome::Passed => "passed",
                Outcome::Failed { output } => {
                    self.failures.push(Failure {
                        unit: unit.clone(),
                        test: result.name.clone(),
                        output: output.clone(),
                        crashed: None,
                    });
                    "failed"
                }
                Outcome::Ignored => continue,
            };
            *self.counts.entry("tests_run".into()).or_default() += 1;
            *self.counts.entry(key.into()).or_default() += 1;
        }
    }
}

/// Runs a unit's tests one after another in a process; when a test kills the process
/// (an abort, a signal), the rest run in a new one, so one crash hides nothing.
fn run_unit(
    ctx: &Context,
    settings: &Settings,
    unit: &TestUnit,
    logs: &Utf8Path,
    deadline: Instant,
) -> Result<UnitOutcome> {
    let Some(executable) = &unit.executable else {
        bail!("{} has no test executable", unit.label());
    };
    let cwd = ctx
        .workspace
        .members
        .iter()
        .find(|m| m.name == unit.package)
        .and_then(|m| m.manifest_path.parent().map(Utf8Path::to_path_buf))
        .unwrap_or_else(|| ctx.workspace.root.clone());
    let list = emulated(settings, executable)
        .arg("--list")
        .cwd(cwd.clone());
    let listing = list.run(&RunOptions {
        timeout: Some(deadline.saturating_duration_since(Instant::now())),
        ..RunOptions::default()
    })?;
    if !listing.termination.success() {
        bail!(
            "listing the tests of {} under qemu failed ({})",
            unit.label(),
            listing.termination
        );
    }
    let mut pending: Vec<String> = libtest::parse_list(&listing.stdout)
        .into_iter()
        .filter(|name| {
            ctx.filters.is_empty() || ctx.filters.iter().any(|f| name.contains(f.as_str()))
        })
        .collect();
    let mut outcome = UnitOutcome {
        counts: BTreeMap::new(),
        failures: Vec::new(),
    };
    let mut round = 0;
    while !pending.is_empty() {
        round += 1;
        ctx.progress
            .status(&format!("{}: {} tests to go", unit.label(), pending.len()));
        let cmd = run_command(settings, executable, &pending).cwd(cwd.clone());
        ctx.progress.verbose(&cmd.to_string());
        let finished = cmd
            .run(&RunOptions {
                timeout: Some(deadline.saturating_duration_since(Instant::now())),
                log_stem: Some(logs.join(format!("{}-{round}", unit.slug()))),
                ..RunOptions::default()
            })
            .with_context(|| format!("running {}", unit.label()))?;
        match &finished.termination {
            Termination::TimedOut(limit) => bail!(
                "timed out after {} running {} under qemu",
                crate::duration::human(*limit),
                unit.label()
            ),
            Termination::Interrupted => bail!("interrupted"),
            _ => {}
        }
        let events = libtest::parse_events(&finished.stdout);
        outcome.record(unit, &events);
        let done: Vec<&String> = events.results.iter().map(|r| &r.name).collect();
        let crashed = events.unfinished.first().cloned();
        if crashed.is_none() && events.results.is_empty() {
            bail!(
                "{} did not start under qemu ({}): {}",
                unit.label(),
                finished.termination,
                finished.stderr.lines().next().unwrap_or("")
            );
        }
        if let Some(test) = &crashed {
            *outcome.counts.entry("tests_run".into()).or_default() += 1;
            *outcome.counts.entry("crashed".into()).or_default() += 1;
            outcome.failures.push(Failure {
                unit: unit.clone(),
                test: test.clone(),
                output: finished.stderr.clone(),
                crashed: Some(finished.termination.to_string()),
            });
        }
        pending.retain(|name| !done.contains(&name) && Some(name) != crashed.as_ref());
        if crashed.is_none() {
            break;
        }
    }
    Ok(outcome)
}
