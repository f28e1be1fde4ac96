//! Valgrind stage: every test of the workspace under memcheck (full leak check, origins, file
//! descriptors) on the execution kernel, plus the programs named in config; findings read from
//! memcheck's XML, never from its exit code.

#[cfg(test)]
mod captures;
mod commands;
mod executor;
pub mod fds;
mod findings;
mod job;
mod kinds;
mod settings;
mod suppressions;
pub mod xml;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use camino::{Utf8Path, Utf8PathBuf};

pub use settings::ValgrindConfig;

use crate::exec::{self, partition, Binary, Limits};
use crate::inventory::{self, TestUnit};
use crate::plan::{Context, StagePlan};
use crate::process::{Cmd, RunOptions};
use crate::provision::{system, Needs};
use crate::report::model::StagePartition;
use crate::report::{StageReport, Status};
use crate::stage_name::StageName;
use commands::{build_programs_command, build_tests_command, job_command};
use executor::{Job, Subject};
use settings::Settings;

/// What the stage needs installed.
pub fn needs() -> Needs {
    Needs {
        system: vec![system::VALGRIND],
        ..Needs::default()
    }
}

/// The tool whose version the report records.
pub fn version(_: &crate::environment::Toolchain) -> (&'static str, crate::process::Cmd) {
    (
        "valgrind",
        crate::process::Cmd::new("valgrind").arg("--version"),
    )
}

const DOCTEST_NOTE: &str = "doctests are not run under valgrind: rustdoc compiles each one when \
                            it runs, so there is no binary to hand to memcheck (Miri covers them)";

pub fn plan(ctx: &Context) -> Result<StagePlan> {
    let settings = Settings::resolve(ctx)?;
    let logs = ctx.out_dir.join("valgrind").join("logs");
    let mut steps = vec![(
        "build tests".to_owned(),
        build_tests_command(ctx, &settings),
    )];
    if !settings.programs.is_empty() {
        steps.push((
            "build programs".to_owned(),
            build_programs_command(ctx, &settings),
        ));
    }
    let example = Job {
        subject: Subject::Test {
            unit: TestUnit {
                package: "<package>".into(),
                package_id: "<package>".into(),
                kind: inventory::UnitKind::Lib,
                name: "<package>".into(),
                executable: None,
                variant: None,
            },
            name: "<test>".into(),
        },
        executable: "<test binary>".into(),
        cwd: ctx.workspace.root.clone(),
    };
    steps.push((
        "list the tests of each test binary".to_owned(),
        Cmd::new("<test binary>").arg("--list"),
    ));
    steps.push((
        "run each test alone under memcheck".to_owned(),
        job_command(&settings, &example, Some(&logs.join("<n>-<unit>-<test>"))),
    ));
    for program in &settings.programs {
        let job = Job {
            executable: settings.target_dir.join("debug").join(&program.bin),
            subject: Subject::Program(program.clone()),
            cwd: ctx.workspace.root.clone(),
        };
        steps.push((
            format!("run {}", program.label()),
            job_command(&settings, &job, Some(&logs.join("<n>-program"))),
        ));
    }
    let mut notes = vec![
        format!(
            "memcheck, one process per test, {} at a time; shipped suppressions in {}",
            ctx.jobs, settings.std_suppressions
        ),
        DOCTEST_NOTE.to_owned(),
    ];
    if let Err(error) = find_valgrind() {
        notes.push(error.to_string());
    }
    Ok(StagePlan {
        stage: StageName::Valgrind,
        target_dir: Some(settings.target_dir),
        steps,
        notes,
    })
}

/// The valgrind on PATH, or an error naming the install command.
fn find_valgrind() -> Result<Utf8PathBuf> {
    let needs = needs();
    let Some(tool) = needs.system.first() else {
        bail!("runner does not know how to provide valgrind");
    };
    match tool.find() {
        Some(path) => Ok(path),
        None => bail!(
            "valgrind is not installed; install it with `{}`",
            tool.install_hint()
        ),
    }
}

#[allow(
    clippy::too_many_lines,
    reason = "one stage's sequence: build, list, run, cache, findings, report"
)]
pub fn run(ctx: &Context) -> Result<StageReport> {
    let deadline = ctx.stage_deadline();
    if !ctx.host.contains("-linux") {
        return super::not_applicable(
            ctx,
            StageName::Valgrind,
            format!(
                "valgrind does not run on {}; run this stage on Linux or in runner's image",
                ctx.host
            ),
        );
    }
    let valgrind = find_valgrind()?;
    let version = Cmd::new(valgrind.as_str())
        .arg("--version")
        .output_text()?
        .trim()
        .to_owned();
    let settings = Settings::resolve(ctx)?;
    if let Some(missing) = settings.suppressions.iter().find(|file| !file.is_file()) {
        bail!("the suppression file {missing} (config valgrind.suppressions) does not exist");
    }
    let dir = ctx.stage_dir(StageName::Valgrind)?;
    let logs = dir.join("logs");
    // Runs are numbered per stage run: an earlier run's files would pass for this one's.
    let _ = std::fs::remove_dir_all(&logs);
    let generated = dir.join("suppressions.supp");
    let _ = std::fs::remove_file(&generated);
    crate::process::ensure_writable_dir(&logs)?;
    suppressions::write_std(&settings.std_suppressions)?;

    let mut notes = vec![format!("memcheck from {version}"), DOCTEST_NOTE.to_owned()];
    let (binaries, programs, mut errors) = prepare(ctx, &settings, &logs, deadline, &mut notes)?;
    // Nothing to run is an error of the stage, with its notes (doctests, targets with a
    // `main` of their own) saying why.
    if binaries.is_empty() && programs.is_empty() && errors.is_empty() {
        errors.push("no tests found to run under valgrind (see the notes)".to_owned());
    }
    // Each configured program is a unit of the split, like a test.
    let (programs, programs_share) = partition::keep(
        ctx.partition,
        "valgrind program",
        programs,
        executor::Job::label,
        Some(1.0),
    );
    let tool = executor::Memcheck {
        ctx,
        settings: &settings,
        suppressed: AtomicU64::new(0),
    };
    let limits = Limits {
        stage: StageName::Valgrind.as_str(),
        test_timeout: settings.test_timeout,
        slowdown: Some(settings::MEMCHECK_SLOWDOWN),
        stretch: settings.default_test_timeout,
        deadline,
        logs: &logs,
        seeds: &[None],
    };
    let mut kernel = exec::harness::run(ctx, &tool, &binaries, &limits);
    let cached = std::mem::take(&mut kernel.cache);
    errors.extend(kernel.errors.iter().cloned());
    let partition = StagePartition::combine(kernel.partition.clone(), programs_share);
    // Tests and programs the split gave to other slices.
    let elsewhere = partition
        .as_ref()
        .map_or(0, |share| share.total_units - share.units);
    let (mut jobs, mut results) = executor::per_test_results(
        ctx,
        &binaries,
        kernel,
        tool.suppressed.load(Ordering::Relaxed),
    );
    let programs_outcome = executor::execute_programs(ctx, &settings, &programs, &logs, deadline);
    errors.extend(programs_outcome.errors);
    let offset = jobs.len();
    jobs.extend(programs);
    results.extend(programs_outcome.results.into_iter().map(|mut result| {
        result.job += offset;
        result
    }));

    let built = findings::build(ctx, &settings, &jobs, &results);
    let mut report = StageReport::new(StageName::Valgrind, Status::Pass);
    report.artifacts_dir = Some(Utf8PathBuf::from("valgrind"));
    report.partition = partition;
    report.counts = findings::counts(&jobs, &results, &built.findings);
    let suppressed: u64 = results.iter().map(|result| result.log.suppressed).sum();
    if suppressed > 0 {
        notes.push(format!(
            "memcheck suppressed {suppressed} errors in the processes this run started (std's \
             own, listed in valgrind/runner-std.supp, and those of `valgrind.suppressions`)"
        ));
    }
    report.tests = findings::test_runs(&jobs, &results);
    if !built.suppressions.is_empty() {
        suppressions::write_generated(&generated, &built.suppressions)?;
        notes.push(
            "suppressions for every finding are in valgrind/suppressions.supp, each named \
             after the finding's fingerprint; copy the ones you accept into a file listed in \
             `valgrind.suppressions`"
                .to_owned(),
        );
    }
    notes.extend(built.notes);
    report.notes = notes;
    report.findings = built.findings;
    cached.apply(&mut report);
    let ran = report.count("tests_run") + report.count("programs_run");
    if ran == 0 && elsewhere == 0 && errors.is_empty() {
        errors.push("every test was ignored, so nothing ran under valgrind".to_owned());
    }
    exec::conclude(&mut report, &errors, ctx.fail_on);
    Ok(report)
}

/// Builds the tests and programs and lists every test: the harnesses to run, the programs,
/// and the test binaries that could not be listed.
fn prepare(
    ctx: &Context,
    settings: &Settings,
    logs: &Utf8Path,
    deadline: Instant,
    notes: &mut Vec<String>,
) -> Result<(Vec<Binary>, Vec<Job>, Vec<String>)> {
    let (binaries, errors) = test_binaries(ctx, settings, logs, deadline, notes)?;
    let mut programs = Vec::new();
    if !settings.programs.is_empty() {
        if ctx.filters.is_empty() {
            programs = program_jobs(ctx, settings, logs, deadline)?;
        } else {
            notes.push("test-name filters were given, so valgrind.programs were not run".into());
        }
    }
    Ok((binaries, programs, errors))
}

/// Every test binary with its listed tests (a note for those with a `main` of their own,
/// which are not run).
fn test_binaries(
    ctx: &Context,
    settings: &Settings,
    logs: &Utf8Path,
    deadline: Instant,
    notes: &mut Vec<String>,
) -> Result<(Vec<Binary>, Vec<String>)> {
    let remaining = || deadline.saturating_duration_since(Instant::now());
    ctx.progress.note("building tests");
    let build = build_tests_command(ctx, settings);
    let messages = cargo_build(
        ctx,
        &build,
        &logs.join("build"),
        remaining(),
        "building the tests",
    )?;
    let mut binaries = Vec::new();
    let mut errors = Vec::new();
    let harnesses = inventory::units_from_messages(&messages, |id| ctx.workspace.member_of(id));
    notes.extend(harnesses.own_main_note());
    for unit in harnesses.libtest {
        if unit.executable.is_none() || ctx.workspace.package_dir(&unit.package).is_none() {
            continue;
        }
        let options = RunOptions {
            timeout: Some(remaining()),
            log_stem: Some(logs.join(format!("{}-list", unit.slug()))),
            ..RunOptions::default()
        };
        match inventory::list_executable_tests(&unit, &ctx.filters, &options) {
            Ok(tests) if tests.is_empty() => {}
            Ok(tests) => binaries.push(Binary {
                target: ctx.host.clone(),
                unit,
                tests,
            }),
            Err(error) => errors.push(crate::exit::one_line(&error)),
        }
    }
    Ok((binaries, errors))
}

/// One job per configured program, run from the workspace root like `cargo run`.
fn program_jobs(
    ctx: &Context,
    settings: &Settings,
    logs: &Utf8Path,
    deadline: Instant,
) -> Result<Vec<Job>> {
    ctx.progress.note("building programs");
    let messages = cargo_build(
        ctx,
        &build_programs_command(ctx, settings),
        &logs.join("build-programs"),
        deadline.saturating_duration_since(Instant::now()),
        "building the programs in valgrind.programs",
    )?;
    settings
        .programs
        .iter()
        .map(|program| {
            let Some(executable) = commands::program_executable(ctx, &messages, program) else {
                bail!("cargo built no binary `{}`", program.bin);
            };
            Ok(Job {
                subject: Subject::Program(program.clone()),
                executable,
                cwd: ctx.workspace.root.clone(),
            })
        })
        .collect()
}

/// Runs a cargo build and returns its JSON messages.
fn cargo_build(
    ctx: &Context,
    cmd: &Cmd,
    log: &Utf8Path,
    limit: Duration,
    what: &str,
) -> Result<String> {
    ctx.progress.verbose(&cmd.to_string());
    let finished = cmd.run(&RunOptions {
        timeout: Some(limit),
        log_stem: Some(log.to_owned()),
        ..RunOptions::default()
    })?;
    crate::cargo_output::require_success(&finished, what)?;
    Ok(finished.stdout)
}
