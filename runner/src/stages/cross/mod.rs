//! Cross stage: the test suite built for big-endian s390x (`-Zbuild-std`, a cross linker) and
//! run natively under qemu-user. Much faster than Miri for large suites; it finds what byte
//! order breaks, not undefined behaviour.

mod findings;
mod settings;

use std::time::Instant;

use anyhow::{bail, Result};
use camino::{Utf8Path, Utf8PathBuf};

use crate::exec::{self, Binary, Cause, KeyInputs, Limits, Reading, Tally, Tool, When};
use crate::inventory::{self, TestUnit, UnitKind};
use crate::libtest;
use crate::plan::{Context, StagePlan};
use crate::process::{Cmd, Finished, RunOptions};
use crate::provision::{system, Needs};
use crate::report::{Frame, StageReport, Status, TargetSummary};
use crate::stage_name::StageName;
pub use settings::CrossConfig;
use settings::{target_env, Settings};

fn cargo_test(ctx: &Context, settings: &Settings) -> Cmd {
    let mut cmd = ctx
        .toolchain
        .cargo()
        .args(["test", "-Zbuild-std", "--target", settings.target.as_str()])
        .args(["--manifest-path", ctx.workspace.manifest_path.as_str()])
        .args(ctx.package_selection(StageName::Cross))
        .args(ctx.cargo.build_args())
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

/// A test harness under qemu-user.
fn emulated(settings: &Settings, executable: &Utf8Path) -> Cmd {
    let mut cmd = Cmd::new(settings.emulator.as_str());
    if let Some(sysroot) = &settings.sysroot {
        cmd = cmd.args(["-L", sysroot.as_str()]);
    }
    cmd.arg(executable.as_str())
}

/// What the stage needs installed.
pub fn needs() -> Needs {
    Needs {
        components: vec!["rust-src"],
        system: vec![system::QEMU, system::CROSS_GCC],
        ..Needs::default()
    }
}

fn run_command(settings: &Settings, executable: &Utf8Path, tests: &[String]) -> Cmd {
    emulated(settings, executable)
        .args(crate::libtest::JSON_EVENTS)
        .args(["--test-threads=1", "--exact"])
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
    let deadline = ctx.stage_deadline();
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
    let tool = Emulated {
        ctx,
        settings: &settings,
    };
    let mut binaries = Vec::new();
    let mut errors = Vec::new();
    let harnesses =
        inventory::units_from_messages(&finished.stdout, |id| ctx.workspace.member_of(id));
    for unit in harnesses.libtest.iter().cloned() {
        if unit.kind == UnitKind::Doc {
            continue;
        }
        // Listing starts the harness under qemu: cached by the binary's key like its results.
        let probe = Binary {
            target: settings.target.clone(),
            unit: unit.clone(),
            tests: Vec::new(),
        };
        let listed = exec::cached::test_list(ctx, &tool, &probe, StageName::Cross.as_str(), || {
            list(ctx, &settings, &unit, &logs, deadline)
        });
        match listed {
            Ok(tests) if tests.is_empty() => {}
            Ok(tests) => binaries.push(Binary {
                target: settings.target.clone(),
                unit,
                tests,
            }),
            Err(error) => errors.push(crate::exit::one_line(&error)),
        }
    }

    let limits = Limits {
        stage: StageName::Cross.as_str(),
        test_timeout: settings.test_timeout,
        slowdown: Some(settings::EMULATED_SLOWDOWN),
        stretch: settings.default_test_timeout,
        deadline,
        logs: &logs,
        seeds: &[None],
    };
    let outcome = exec::harness::run(ctx, &tool, &binaries, &limits);
    errors.extend(outcome.errors.iter().cloned());
    let tally = outcome
        .tallies
        .values()
        .fold(Tally::default(), |all, one| all.plus(*one));

    let mut report = StageReport::new(StageName::Cross, Status::Pass);
    report.artifacts_dir = Some(Utf8PathBuf::from("cross"));
    report.partition.clone_from(&outcome.partition);
    report.findings = findings::build(ctx, &settings, &binaries, &outcome.found);
    outcome.cache.apply(&mut report);
    report.notes.push(format!(
        "built with -Zbuild-std and {}, run under {}; doctests are not run natively cross (the Miri stage interprets them on s390x)",
        settings.linker, settings.emulator
    ));
    report.notes.extend(harnesses.own_main_note());
    let mut counts = tally.counts();
    counts.insert(
        "crashed".to_owned(),
        outcome
            .found
            .iter()
            .filter(|found| matches!(found.cause, Cause::Died { .. }))
            .count() as u64,
    );
    outcome.add_no_tests_error([settings.target.as_str()], &mut errors);
    exec::conclude(&mut report, &errors, ctx.fail_on);
    report.tests = outcome.tests;
    report.targets = vec![TargetSummary {
        name: settings.target.clone(),
        counts: counts.clone(),
    }];
    report.counts = counts;
    Ok(report)
}

/// A harness's tests, listed under qemu.
fn list(
    ctx: &Context,
    settings: &Settings,
    unit: &TestUnit,
    logs: &Utf8Path,
    deadline: Instant,
) -> Result<Vec<String>> {
    let Some(executable) = &unit.executable else {
        bail!("{} has no test executable", unit.label());
    };
    let listing = emulated(settings, executable)
        .arg("--list")
        .cwd(package_dir(ctx, unit))
        .run(&RunOptions {
            timeout: Some(deadline.saturating_duration_since(Instant::now())),
            log_stem: Some(logs.join(format!("{}-list", unit.slug()))),
            ..RunOptions::default()
        })?;
    if !listing.termination.success() {
        bail!(
            "listing the tests of {} under qemu failed ({})",
            unit.label(),
            listing.termination
        );
    }
    Ok(libtest::parse_list(&listing.stdout)
        .into_iter()
        .filter(|name| {
            ctx.filters.is_empty() || ctx.filters.iter().any(|f| name.contains(f.as_str()))
        })
        .collect())
}

/// Harnesses run in their package's directory, as under `cargo test`.
fn package_dir(ctx: &Context, unit: &TestUnit) -> Utf8PathBuf {
    ctx.workspace
        .package_dir(&unit.package)
        .map_or_else(|| ctx.workspace.root.clone(), Utf8Path::to_path_buf)
}

/// The target's harnesses under qemu-user as a tool of the execution kernel: a native crash
/// ends the process (the kernel resumes after it), and there are no reports of its own.
struct Emulated<'a> {
    ctx: &'a Context,
    settings: &'a Settings,
}

impl Tool for Emulated<'_> {
    type Report = Never;

    fn command(&self, binary: &Binary, tests: &[String], _seed: Option<u32>, _: &Utf8Path) -> Cmd {
        let executable = binary.unit.executable.clone().unwrap_or_default();
        run_command(self.settings, &executable, tests).cwd(package_dir(self.ctx, &binary.unit))
    }

    /// A big-endian binary under the same emulator gives the same results.
    fn cache_inputs(&self, binary: &Binary) -> Option<KeyInputs> {
        Some(KeyInputs {
            files: binary.unit.executable.iter().cloned().collect(),
            values: Vec::new(),
            versions: vec![Cmd::new(self.settings.emulator.as_str()).arg("--version")],
        })
    }

    fn read(&self, _: &Binary, _: &Finished, _: &Utf8Path) -> Reading<Never> {
        Reading::reports(Vec::new())
    }

    fn when(&self, report: &Never) -> When {
        match *report {}
    }

    fn frames<'r>(&self, report: &'r Never) -> &'r [Frame] {
        match *report {}
    }
}

/// The cross stage's tool makes no reports of its own: failures and crashes are the tests'.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Never {}
