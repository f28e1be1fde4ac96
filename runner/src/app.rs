//! The commands: resolve the plan once, provision, run the stages, write the report, gate.

use anyhow::{bail, Context as _, Result};

use crate::cli::{CacheAction, Cli, Command, RunArgs, SetupArgs, StageCommand};
use crate::environment::{self, Toolchain};
use crate::exit::Exit;
use crate::pin::Pin;
use crate::plan::Context;
use crate::process;
use crate::progress::Progress;
use crate::report::assemble::{self, Baseline, GateSettings};
use crate::report::{baseline, folder, model, write, Report};
use crate::stage_name::StageName;
use crate::stages::registry;
use crate::workspace::Workspace;
use crate::{doctor, hermetic, lock, provision, stages};

pub fn run(cli: &Cli) -> Result<Exit> {
    crate::guard::injected_panic("start");
    match &cli.command {
        Command::Merge(args) => {
            let request = crate::merge::Request {
                dirs: &args.dirs,
                out: &args.out,
                baseline: args.baseline.as_deref(),
            };
            return crate::merge::run(&request, &progress_for(cli));
        }
        Command::Partitions(args) => {
            return crate::exec::partition::print_table(&args.durations, args.stage);
        }
        _ => {}
    }
    if !matches!(cli.command, Command::Doctor | Command::Plan(_)) {
        // Before anything is started, provisioning included: Ctrl-C must stop a `cargo
        // install` or `rustup` runner started as surely as it stops a stage. (`doctor` and
        // `plan` start nothing long, and without a handler Ctrl-C ends them at once.)
        process::install_interrupt_handler()?;
    }
    let progress = Progress::new(cli.quiet, cli.verbose);
    let toolchain = Toolchain::new(Pin::embedded()?)?;
    let single = |stage: StageName, args: &RunArgs| {
        analyse(
            stage.as_str(),
            args,
            &[stage],
            toolchain.clone(),
            progress_for(cli),
        )
    };
    match &cli.command {
        Command::Doctor => doctor::run(&toolchain),
        Command::Setup(args) => setup(args, &toolchain, &progress),
        Command::Cache(args) => {
            let workspace = load_workspace(&args.workspace)?;
            let line = match args.action {
                CacheAction::Stats => crate::cache::stats(&workspace),
                CacheAction::Clear => crate::cache::clear(&workspace)?,
            };
            crate::exit::print(&(line + "\n"))?;
            Ok(Exit::Passed)
        }
        Command::Plan(args) => plan(args, toolchain, progress),
        Command::All(args) => {
            let workspace = load_workspace(&args.workspace)?;
            let selected = selection(args, &workspace)?;
            analyse_loaded("all", args, &selected, workspace, toolchain, progress)
        }
        Command::Stage(StageCommand { stage, args }) => single(*stage, args),
        Command::Merge(_) | Command::Partitions(_) => unreachable!("handled above"),
    }
}

fn progress_for(cli: &Cli) -> Progress {
    Progress::new(cli.quiet, cli.verbose)
}

/// The stages `all` runs: `--stages`, else config `stages`, else every stage; less the skips.
/// A stage named explicitly that this version lacks is an error; in the default set it is
/// reported as SKIPPED.
fn selection(args: &RunArgs, workspace: &Workspace) -> Result<Vec<StageName>> {
    let config = &workspace.config;
    let explicit = if args.stages.is_empty() {
        config.stages.clone()
    } else {
        Some(args.stages.clone())
    };
    let mut chosen: Vec<StageName> = explicit.unwrap_or_else(|| StageName::DEFAULT.to_vec());
    chosen.retain(|stage| !args.skip.contains(stage) && !config.skip.contains(stage));
    chosen.sort();
    chosen.dedup();
    if chosen.is_empty() {
        bail!("no stage left to run after --stages/--skip");
    }
    Ok(chosen)
}

fn analyse(
    command: &str,
    args: &RunArgs,
    selected: &[StageName],
    toolchain: Toolchain,
    progress: Progress,
) -> Result<Exit> {
    let workspace = load_workspace(&args.workspace)?;
    analyse_loaded(command, args, selected, workspace, toolchain, progress)
}

/// What a run needs once it has its id: the result cache, and a slice's durations file.
fn prepare_run(ctx: &mut Context, args: &RunArgs, run_id: &str) -> Result<()> {
    if !args.no_cache {
        ctx.cache = Some(crate::cache::Cache::open(
            &ctx.workspace,
            &ctx.out_dir,
            run_id,
        )?);
    }
    if ctx.partition.is_some() {
        // Every slice must split by the same file, so a slice never writes it: it starts a
        // copy in its report folder, adds its measurements there, and `runner merge` joins
        // the copies into the file the next run splits by.
        let history = crate::foreign::read(&ctx.durations_file)?.unwrap_or_else(|| b"{}".to_vec());
        // The copy lives in the report folder, where nothing planted is followed: replaced
        // by rename.
        crate::atomic::write(&ctx.durations_written(), &history)?;
    }
    Ok(())
}

fn analyse_loaded(
    command: &str,
    args: &RunArgs,
    selected: &[StageName],
    workspace: Workspace,
    toolchain: Toolchain,
    progress: Progress,
) -> Result<Exit> {
    let mut ctx = Context::resolve(args, workspace, toolchain, progress)?;
    ctx.explicit = command != "all" || !args.stages.is_empty();
    let tree = folder::Tree {
        root: &ctx.workspace.root,
        target_dir: &ctx.workspace.target_dir,
    };
    folder::claim(&ctx.out_dir, tree, args.folder.force_out)?;
    if let Some(place) = hermetic::needs_reexec(args.place, ctx.toolchain.mode) {
        // The runner inside takes the locks: holding them here would make it wait for us.
        return hermetic::reexec(place, args, &ctx);
    }
    let wait = if args.folder.no_wait {
        lock::Wait::No
    } else {
        lock::Wait::Yes
    };
    let _folder_lock = lock::acquire(
        &ctx.out_dir.join(folder::LOCK),
        &format!("the report folder {}", ctx.out_dir),
        wait,
        &ctx.progress,
    )?;
    let run_id = write::new_run_id();
    prepare_run(&mut ctx, args, &run_id)?;
    warn_about_shell_flags(&ctx.progress);
    let previous = match baseline::locate(args.baseline.as_deref(), &ctx.workspace.root) {
        Some(path) => Some(Baseline {
            report: baseline::load(&path)?,
            path,
        }),
        None => None,
    };
    let gate = GateSettings {
        fail_on: ctx.fail_on,
        new_only: ctx.workspace.config.fail_on_new_only
            || (selected.contains(&StageName::Fuzz) && stages::fuzz::gates_new_only(&ctx)),
        baseline: previous.as_ref(),
    };
    for line in provision::ensure(
        &ctx.toolchain,
        &registry::needs_of(selected),
        !args.no_provision,
        &ctx.progress,
    )? {
        ctx.progress.verbose(&line);
    }
    let environment = environment_of(&ctx, selected);
    let mut report = Report::new(
        command,
        ctx.workspace.root.clone(),
        environment,
        ctx.fail_on,
    );
    report.repository_path = crate::repository::repository_path(&ctx.workspace.root);
    report.revision = crate::repository::revision(&ctx.workspace.root);
    report.partition = ctx.partition.map(|p| model::PartitionInfo {
        index: p.index,
        count: p.count,
    });
    for stage in selected {
        if process::interrupted() {
            break;
        }
        // A bug in one stage is that stage's ERROR: the stages before it keep their results
        // and the ones after it still run.
        let _stage_lock = stage_lock(*stage, &ctx, wait)?;
        let outcome = crate::guard::catch(|| {
            crate::guard::injected_panic(stage.as_str());
            stages::run(*stage, &ctx)
        });
        report
            .stages
            .push(outcome.unwrap_or_else(|internal| model::StageReport::error(*stage, internal)));
        finish(&mut report, &ctx, &gate, false, &run_id)?;
    }
    let interrupted = process::interrupted();
    let exit = finish(&mut report, &ctx, &gate, !interrupted, &run_id)?;
    if let Err(error) = write::step_summary(&report) {
        ctx.progress.always(&format!(
            "runner: warning: {}",
            crate::exit::one_line(&error)
        ));
    }
    if interrupted {
        bail!("interrupted; the partial report is in {}", ctx.out_dir);
    }
    if exit == Exit::NotEvaluated {
        // The one error line: what could not be evaluated, and where the details are.
        bail!(
            "{}; details in {}",
            report.gate.reasons.join("; "),
            ctx.out_dir.join("report.md")
        );
    }
    // Only now: an error above is the run's one line, and it names the report itself.
    let verdict = if report.gate.passed { "PASS" } else { "FAIL" };
    ctx.progress.always(&format!(
        "runner: gate {verdict}; report: {}",
        ctx.out_dir.join("report.md")
    ));
    Ok(exit)
}

/// Completes the report over what has finished (baseline, issues, gate) and rewrites the
/// report files.
fn finish(
    report: &mut Report,
    ctx: &Context,
    gate: &GateSettings,
    complete: bool,
    run_id: &str,
) -> Result<Exit> {
    report.partial = !complete;
    let exit = assemble::complete(report, gate, process::interrupted());
    report.run_id = Some(run_id.to_owned());
    write::write_all(report, &ctx.out_dir)?;
    Ok(exit)
}

/// One run at a time in a stage's build folders: two runs with different report folders
/// still share `<target>/runner-build/<stage>*`, where stages keep more than cargo's output
/// (profiles, corpora, sysroots) and cargo's own lock does not cover those.
fn stage_lock(stage: StageName, ctx: &Context, wait: lock::Wait) -> Result<lock::Lock> {
    let dir = ctx.workspace.target_dir.join("runner-build");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {dir}"))?;
    lock::acquire(
        &dir.join(format!("{stage}.lock")),
        &format!("the {stage} build folder {dir}/{stage}"),
        wait,
        &ctx.progress,
    )
}

fn warn_about_shell_flags(progress: &Progress) {
    for variable in ["RUSTFLAGS", "RUSTDOCFLAGS", "MIRIFLAGS"] {
        if std::env::var_os(variable).is_some() {
            progress.always(&format!(
                "runner: warning: {variable} from the shell is not passed on (each stage sets its \
                 own); put extra flags in [workspace.metadata.runner]"
            ));
        }
    }
}

/// The report's record of where the run happened: host, toolchain and the tools' versions.
fn environment_of(ctx: &Context, selected: &[StageName]) -> model::Environment {
    let identity = ctx.toolchain.identity().ok();
    model::Environment {
        host: ctx.host.clone(),
        mode: ctx.toolchain.mode.as_str().to_owned(),
        pinned_channel: ctx.toolchain.channel().to_owned(),
        pinned_commit: ctx.toolchain.pin.compiler.commit_hash.clone(),
        rustc: identity.as_ref().map(|i| i.version.clone()),
        tools: environment::versions(
            &ctx.toolchain,
            identity.as_ref(),
            &registry::version_queries(selected),
        ),
        provenance: std::env::var("RUNNER_PROVENANCE").ok(),
    }
}

/// Reads the workspace and has every stage check its config table, so a wrong key stops the
/// command before any work starts.
fn load_workspace(args: &crate::cli::WorkspaceArgs) -> Result<Workspace> {
    let workspace = Workspace::load(args)?;
    registry::check_configs(&workspace)?;
    crate::packages::check_filters(&workspace, |stage| registry::of(stage).analyses_packages)?;
    Ok(workspace)
}

fn plan(args: &RunArgs, toolchain: Toolchain, progress: Progress) -> Result<Exit> {
    let workspace = load_workspace(&args.workspace)?;
    let selected = selection(args, &workspace)?;
    let ctx = Context::resolve(args, workspace, toolchain, progress)?;
    println!("workspace: {}", ctx.workspace.root);
    println!("report folder: {}", ctx.out_dir);
    println!(
        "toolchain: {} ({} mode)",
        ctx.toolchain.channel(),
        ctx.toolchain.mode.as_str()
    );
    println!("timeout per stage: {}", crate::duration::human(ctx.timeout));
    for stage in selected {
        match stages::plan(stage, &ctx) {
            Ok(plan) => print!("{plan}"),
            Err(error) => println!("stage {stage}\n  not run: {error}"),
        }
    }
    Ok(Exit::Passed)
}

fn setup(args: &SetupArgs, toolchain: &Toolchain, progress: &Progress) -> Result<Exit> {
    let selected: Vec<StageName> = if args.stages.is_empty() {
        StageName::ALL.to_vec()
    } else {
        args.stages.clone()
    };
    for line in provision::ensure(toolchain, &registry::needs_of(&selected), true, progress)? {
        println!("{line}");
    }
    if selected.contains(&StageName::Miri) {
        let host = crate::plan::host_triple()?;
        for target in [host.as_str(), stages::miri::BIG_ENDIAN_TARGET] {
            println!(
                "{}",
                stages::miri::prepare_sysroot(toolchain, target, progress)?
            );
        }
    }
    let mut exit = Exit::Passed;
    let mut reported = Vec::new();
    for stage in &selected {
        for system in registry::needs(*stage).system {
            if system.find().is_none() && !reported.contains(&system.debian) {
                reported.push(system.debian);
                println!(
                    "missing: {} for {stage}; install with: {}",
                    system.binaries[0],
                    system.install_hint()
                );
                exit = Exit::NotEvaluated;
            }
        }
    }
    Ok(exit)
}
