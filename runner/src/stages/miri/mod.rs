//! Miri stage: every test and doctest interpreted on each target (host and big-endian s390x
//! by default), sharded across cores, every UB collected, findings typed.

mod artifacts;
mod config;
pub mod diagnostics;
mod executor;
mod findings;
mod settings;

pub use config::{BorrowModel, MiriConfig};
pub use settings::{PackageSettings, Settings, BIG_ENDIAN_TARGET};

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::Result;
use camino::Utf8PathBuf;

use crate::environment::Toolchain;
use crate::exec::{self, Binary, Limits};
use crate::inventory::{self, TestUnit, UnitKind};
use crate::plan::{Context, StagePlan};
use crate::process::{Cmd, RunOptions};
use crate::progress::Progress;
use crate::provision::Needs;
use crate::report::{StageReport, TargetSummary};
use crate::stage_name::StageName;

/// `cargo miri test` for one target, with the stage's target dir and flags.
fn cargo_miri_test(ctx: &Context, settings: &Settings, target: &str, miriflags: &str) -> Cmd {
    let mut cmd = ctx
        .toolchain
        .cargo()
        .args([
            "miri",
            "test",
            "--manifest-path",
            ctx.workspace.manifest_path.as_str(),
        ])
        .args(["--target", target])
        .args(ctx.cargo.build_args())
        .env("CARGO_TARGET_DIR", settings.target_dir.as_str())
        .cwd(ctx.workspace.root.clone());
    if !miriflags.is_empty() {
        cmd = cmd.env("MIRIFLAGS", miriflags);
    }
    if let Some(flags) = crate::cargo_config::stage_rustflags(&ctx.workspace, target, &[]) {
        cmd = cmd.env("RUSTFLAGS", flags);
    }
    cmd
}

/// The package's flags and the model a unit runs under, as MIRIFLAGS.
fn unit_miriflags(settings: &Settings, unit: &TestUnit, seed: Option<u32>, json: bool) -> String {
    match settings.package(&unit.package_id) {
        Some(package) => settings::miriflags(
            &package.flags,
            Some(package.model_of(unit.variant.as_deref())),
            seed,
            json,
        ),
        None => settings::miriflags(&settings.user_flags, None, seed, json),
    }
}

/// Lists a unit's tests (with the unit's selection and `-- --list` added by the caller).
/// Which tests exist does not depend on Miri's checks: without
/// validity checking and the leak check at exit, listing a harness of 820 tests takes 8 s
/// instead of 13 s under Miri. The borrow tracker stays on, since Tree Borrows options refuse
/// to run without one.
fn list_command(ctx: &Context, settings: &Settings, target: &str, unit: &TestUnit) -> Cmd {
    let flags = format!(
        "{} -Zmiri-disable-validation -Zmiri-ignore-leaks",
        unit_miriflags(settings, unit, None, true)
    );
    cargo_miri_test(ctx, settings, target, &flags)
}

fn setup_command(ctx: &Context, settings: &Settings, target: &str) -> Cmd {
    sysroot_command(&ctx.toolchain, target)
        .env("CARGO_TARGET_DIR", settings.target_dir.as_str())
        .cwd(ctx.workspace.root.clone())
}

/// Builds (or finds up to date) the sysroot Miri interprets the standard library from.
fn sysroot_command(toolchain: &Toolchain, target: &str) -> Cmd {
    toolchain
        .cargo()
        .args(["miri", "setup", "--target", target])
}

/// For `runner setup`: makes the Miri sysroot for `target` ready and says whether it was built.
pub fn prepare_sysroot(toolchain: &Toolchain, target: &str, progress: &Progress) -> Result<String> {
    progress.note(&format!(
        "preparing the Miri sysroot for {target} (about 30 s when new)"
    ));
    let scratch = std::env::temp_dir();
    let cmd = sysroot_command(toolchain, target).cwd(camino::Utf8PathBuf::try_from(scratch)?);
    let finished = cmd.run(&RunOptions::default())?;
    crate::cargo_output::require_success(&finished, &format!("the Miri sysroot for {target}"))?;
    let built = finished.stderr.contains("Compiling") || finished.stderr.contains("Preparing");
    Ok(format!(
        "{}: Miri sysroot for {target}",
        if built { "built" } else { "present" }
    ))
}

/// Builds every harness of the stage's packages (each named by its package id).
fn build_command(ctx: &Context, settings: &Settings, target: &str) -> Cmd {
    let flags = settings::miriflags(&settings.user_flags, None, None, true);
    let ids = settings.packages.iter().map(|package| package.id.as_str());
    cargo_miri_test(ctx, settings, target, &flags)
        .args(crate::packages::cargo_args(ids))
        .args(["--no-run", "--message-format=json"])
}

/// Runs a shard of a unit's tests one at a time, with libtest's JSON events and timings.
/// Doctests are the exception: rustdoc's harness never matches their names with `--exact`,
/// and each doctest is already its own Miri process, so the unit runs whole, in parallel,
/// narrowed only by the user's filters.
fn shard_command(
    ctx: &Context,
    settings: &Settings,
    target: &str,
    unit: &TestUnit,
    tests: &[String],
    seed: Option<u32>,
) -> Cmd {
    let flags = unit_miriflags(settings, unit, seed, true);
    let cmd = cargo_miri_test(ctx, settings, target, &flags)
        .args(unit.selection())
        .arg("--")
        .args(crate::libtest::JSON_EVENTS);
    if unit.kind == UnitKind::Doc {
        cmd.arg(format!("--test-threads={}", ctx.jobs))
            .args(ctx.filters.iter().cloned())
    } else {
        cmd.args(["--test-threads=1", "--exact"])
            .args(tests.iter().cloned())
    }
}

/// What the stage needs installed.
pub fn needs() -> Needs {
    Needs {
        components: vec!["miri", "rust-src"],
        ..Needs::default()
    }
}

/// The tool whose version the report records.
pub fn version(toolchain: &crate::environment::Toolchain) -> (&'static str, crate::process::Cmd) {
    ("miri", toolchain.cargo().args(["miri", "--version"]))
}

/// The command a person runs to see one failure again, with Miri's human output.
fn repro_command(
    ctx: &Context,
    settings: &Settings,
    target: &str,
    unit: &TestUnit,
    test: &str,
    seed: Option<u32>,
) -> Cmd {
    let flags = unit_miriflags(settings, unit, seed, false);
    let cmd = cargo_miri_test(ctx, settings, target, &flags)
        .args(unit.selection())
        .arg("--");
    if unit.kind == UnitKind::Doc {
        cmd.arg(test)
    } else {
        cmd.args(["--exact", test])
    }
}

pub fn plan(ctx: &Context) -> Result<StagePlan> {
    let settings = Settings::resolve(ctx)?;
    let mut steps = Vec::new();
    // The commands of the first package stand for every package's (their flags differ only
    // as the package settings below say).
    let example = settings
        .packages
        .first()
        .map_or_else(TestUnit::default, |package| TestUnit {
            package: package.name.clone(),
            package_id: package.id.clone(),
            kind: UnitKind::Lib,
            name: package.name.clone(),
            executable: None,
            variant: None,
        });
    for target in &settings.targets {
        steps.push((
            format!("sysroot for {target}"),
            setup_command(ctx, &settings, target),
        ));
        steps.push((
            format!("build tests for {target}"),
            build_command(ctx, &settings, target),
        ));
        steps.push((
            format!("list tests of each unit ({target})"),
            list_command(ctx, &settings, target, &example)
                .args(example.selection())
                .args(["--", "--list"]),
        ));
        steps.push((
            format!("run a shard of tests ({target})"),
            shard_command(
                ctx,
                &settings,
                target,
                &example,
                &["<test>...".to_owned()],
                (settings.seeds > 1).then_some(0),
            ),
        ));
    }
    let mut notes = vec![format!(
        "targets: {}; seeds per test: {}; parallel Miri processes: {}; time limit per test: {}",
        settings.targets.join(", "),
        settings.seeds,
        ctx.jobs,
        crate::duration::human(settings.test_timeout)
    )];
    notes.extend(settings.packages.iter().map(PackageSettings::describe));
    if settings.seeds > 1 {
        notes.push(format!(
            "each shard runs once per seed 0..{}",
            settings.seeds
        ));
    }
    Ok(StagePlan {
        stage: StageName::Miri,
        target_dir: Some(settings.target_dir),
        steps,
        notes,
    })
}

pub fn run(ctx: &Context) -> Result<StageReport> {
    let deadline = ctx.stage_deadline();
    let settings = Settings::resolve(ctx)?;
    let dir = ctx.stage_dir(StageName::Miri)?;
    let logs = dir.join("logs");
    crate::process::ensure_writable_dir(&logs)?;

    let mut binaries = Vec::new();
    let mut unit_errors = Vec::new();
    let mut not_run = std::collections::BTreeSet::new();
    for target in &settings.targets {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let (units, own_main) = prepare_target(ctx, &settings, target, &logs, remaining)?;
        not_run.extend(own_main);
        for (unit, listed) in units {
            match listed {
                Ok(tests) if tests.is_empty() => {}
                Ok(tests) => {
                    for unit in per_model(&settings, unit) {
                        binaries.push(Binary {
                            target: target.clone(),
                            unit,
                            tests: tests.clone(),
                        });
                    }
                }
                Err(error) => {
                    unit_errors.push(format!("{target}: {}", crate::exit::one_line(&error)));
                }
            }
        }
    }

    let seeds: Vec<Option<u32>> = if settings.seeds > 1 {
        (0..settings.seeds).map(Some).collect()
    } else {
        vec![None]
    };
    let tool = executor::Miri {
        ctx,
        settings: &settings,
    };
    let limits = Limits {
        stage: StageName::Miri.as_str(),
        test_timeout: settings.test_timeout,
        // Nothing is expected from other tools under Miri, and its limit does not stretch: a
        // test that needs more than it is one projects mark `cfg_attr(miri, ignore)`, and a
        // longer wait would mostly delay telling a hang.
        slowdown: None,
        stretch: false,
        deadline,
        logs: &logs,
        seeds: &seeds,
    };
    let outcome = exec::harness::run(ctx, &tool, &binaries, &limits);

    let mut report = StageReport::new(StageName::Miri, crate::report::Status::Pass);
    report.artifacts_dir = Some(Utf8PathBuf::from("miri"));
    report.partition.clone_from(&outcome.partition);
    report.tables.extend(settings.table());
    report.notes.extend(not_run);
    let mut stage_findings =
        findings::build(ctx, &settings, &binaries, &outcome.found, &mut report.notes);
    findings::mark_target_specific(&mut stage_findings, &settings.targets, &mut report.notes);
    let mut counts: BTreeMap<String, BTreeMap<String, u64>> = outcome
        .tallies
        .iter()
        .map(|(target, tally)| (target.clone(), tally.counts()))
        .collect();
    findings::tally(&stage_findings, &mut counts);
    report.findings = stage_findings;
    report.targets = settings
        .targets
        .iter()
        .map(|target| {
            let mut summary = findings::empty_counts();
            summary.extend(counts.get(target).cloned().unwrap_or_default());
            TargetSummary {
                name: target.clone(),
                counts: summary,
            }
        })
        .collect();
    let mut totals = BTreeMap::new();
    for summary in &report.targets {
        for (key, value) in &summary.counts {
            *totals.entry(key.clone()).or_insert(0) += value;
        }
    }
    report.counts = totals;
    report.tests.clone_from(&outcome.tests);
    outcome.cache.apply(&mut report);
    let mut errors = unit_errors;
    errors.extend(outcome.errors.iter().cloned());
    outcome.add_no_tests_error(settings.targets.iter().map(String::as_str), &mut errors);
    exec::conclude(&mut report, &errors, ctx.fail_on);
    Ok(report)
}

type Listed = Vec<(TestUnit, Result<Vec<String>>)>;

/// The harness once per borrow model its package runs under: a package checked under
/// several models gets a unit for each, named by the model.
fn per_model(settings: &Settings, unit: TestUnit) -> Vec<TestUnit> {
    match settings.package(&unit.package_id) {
        Some(package) if package.models.len() > 1 => package
            .models
            .iter()
            .map(|model| TestUnit {
                variant: Some(model.title().to_owned()),
                ..unit.clone()
            })
            .collect(),
        _ => vec![unit],
    }
}

/// Builds the target's sysroot and tests, then lists every unit's tests; with them, the note
/// on the targets with a `main` of their own, which are not run.
fn prepare_target(
    ctx: &Context,
    settings: &Settings,
    target: &str,
    logs: &camino::Utf8Path,
    limit: std::time::Duration,
) -> Result<(Listed, Option<String>)> {
    let slug = target.replace(|c: char| !c.is_ascii_alphanumeric(), "-");
    ctx.progress
        .note(&format!("{target}: preparing the Miri sysroot"));
    let setup = setup_command(ctx, settings, target);
    ctx.progress.verbose(&setup.to_string());
    let finished = setup.run(&RunOptions {
        timeout: Some(limit),
        log_stem: Some(logs.join(format!("{slug}-setup"))),
        ..RunOptions::default()
    })?;
    crate::cargo_output::require_success(&finished, &format!("the Miri sysroot for {target}"))?;

    ctx.progress.note(&format!("{target}: building tests"));
    let build = build_command(ctx, settings, target);
    ctx.progress.verbose(&build.to_string());
    let finished = build.run(&RunOptions {
        timeout: Some(limit),
        log_stem: Some(logs.join(format!("{slug}-build"))),
        ..RunOptions::default()
    })?;
    crate::cargo_output::require_success(&finished, &format!("building the tests for {target}"))?;
    let harnesses =
        inventory::units_from_messages(&finished.stdout, |id| ctx.workspace.member_of(id));
    let own_main = harnesses.own_main_note();
    let mut units = harnesses.libtest.clone();
    let doctests = harnesses.doc_units().into_iter().filter(|unit| {
        settings
            .package(&unit.package_id)
            .is_none_or(|package| package.doctests)
    });
    units.extend(doctests.collect::<Vec<_>>());
    // Listing starts each harness under Miri (seconds each): on the kernel's queue, `--jobs`
    // at a time, in the units' order.
    let tool = executor::Miri { ctx, settings };
    let mut listed: Vec<(usize, TestUnit, Result<Vec<String>>)> = Vec::new();
    exec::pool::run(
        ctx.jobs,
        units.into_iter().enumerate().collect(),
        &|(index, unit): (usize, TestUnit), _| {
            let options = RunOptions {
                timeout: Some(limit),
                log_stem: Some(logs.join(format!("{slug}-{}-list", unit.slug()))),
                ..RunOptions::default()
            };
            let probe = Binary {
                target: target.to_owned(),
                unit: unit.clone(),
                tests: Vec::new(),
            };
            let list_command = list_command(ctx, settings, target, &unit);
            let tests =
                exec::cached::test_list(ctx, &tool, &probe, StageName::Miri.as_str(), || {
                    inventory::list_tests(&list_command, &unit, &ctx.filters, &options)
                });
            exec::pool::Done::with((index, unit, tests))
        },
        &mut |item, _| listed.push(item),
    );
    listed.sort_by_key(|(index, _, _)| *index);
    let listed = listed
        .into_iter()
        .map(|(_, unit, tests)| (unit, tests))
        .collect();
    Ok((listed, own_main))
}
