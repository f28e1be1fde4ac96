//! `runner plan` for the fuzz stage: the cargo-fuzz commands a run would start, target by
//! target, with the budget and limits they get.

use anyhow::Result;
use camino::{Utf8Path, Utf8PathBuf};

use super::commands::Length;
use super::discover::{self, FuzzTarget};
use super::settings::Settings;
use super::{commands, corpus, prepare, NO_PROJECT};
use crate::plan::{Context, StagePlan};
use crate::stage_flags::FuzzMode;
use crate::stage_name::StageName;

pub fn plan(ctx: &Context) -> Result<StagePlan> {
    let settings = Settings::resolve(ctx)?;
    let projects = discover::projects(&ctx.workspace);
    let mut steps = Vec::new();
    let mut notes = Vec::new();
    if projects.is_empty() {
        notes.push(format!("{NO_PROJECT}: the stage is SKIPPED"));
        return Ok(StagePlan {
            stage: StageName::Fuzz,
            target_dir: None,
            steps,
            notes,
        });
    }
    let targets = match prepare::list_targets(ctx, &settings, &projects) {
        Ok((targets, _)) => targets,
        Err(error) => {
            notes.push(format!(
                "targets are listed when the stage runs ({})",
                crate::exit::one_line(&error)
            ));
            Vec::new()
        }
    };
    for dir in &projects {
        steps.push((format!("list targets of {dir}"), commands::list(ctx, dir)));
        steps.push((
            format!("build {dir}"),
            commands::build(ctx, &settings, dir, None),
        ));
    }
    let budget = settings.per_target(targets.len(), ctx.jobs);
    if settings.check_only {
        notes.push("--check: every target is built, none is fuzzed".to_owned());
    } else {
        steps.extend(fuzz_steps(ctx, &settings, &targets, budget));
        notes.push(describe(&settings, budget, ctx.jobs));
    }
    Ok(StagePlan {
        stage: StageName::Fuzz,
        target_dir: Some(settings.target_dir),
        steps,
        notes,
    })
}

/// The per-target sessions, and the triage commands shown on the first target.
fn fuzz_steps(
    ctx: &Context,
    settings: &Settings,
    targets: &[FuzzTarget],
    budget: std::time::Duration,
) -> Vec<(String, crate::process::Cmd)> {
    let artifacts = ctx.out_dir.join("fuzz").join("artifacts");
    let mut steps = Vec::new();
    let work = ctx.out_dir.join("fuzz").join("new-inputs");
    for target in targets {
        let dir = artifacts.join(discover::slug(&target.label));
        let store = corpus::store(settings, target);
        if settings.mode == FuzzMode::Coverage {
            let read_only = corpus::read_only(settings, target);
            let mut corpora: Vec<&Utf8Path> = vec![&store];
            corpora.extend(read_only.iter().map(Utf8PathBuf::as_path));
            steps.push((
                format!("corpus coverage of {}", target.label),
                commands::coverage(ctx, settings, target, &corpora),
            ));
            continue;
        }
        if settings.mode == FuzzMode::Prune {
            steps.push((
                format!("prune the corpus of {}", target.label),
                commands::cmin(ctx, settings, target, &store),
            ));
            continue;
        }
        let new_inputs = work.join(discover::slug(&target.label));
        let read_only = corpus::read_only(settings, target);
        let mut corpora: Vec<&Utf8Path> = vec![&new_inputs, &store];
        corpora.extend(read_only.iter().map(Utf8PathBuf::as_path));
        let (what, length) = if settings.mode == FuzzMode::Replay {
            ("replay the corpus of", Length::ReplayOnly)
        } else {
            ("fuzz (sessions repeat after a crash)", Length::Fuzz(budget))
        };
        steps.push((
            format!("{what} {} after its registered crashes", target.label),
            commands::run(ctx, settings, target, &corpora, &dir, length),
        ));
    }
    if let Some(target) = targets.first() {
        let artifact = Utf8PathBuf::from("<artifact>");
        let minimized = Utf8PathBuf::from("<artifact>.minimized");
        steps.push((
            "minimize a crash".to_owned(),
            commands::tmin(ctx, settings, target, &artifact, &minimized),
        ));
        steps.push((
            "show an input as the target reads it".to_owned(),
            commands::fmt(ctx, settings, target, &minimized),
        ));
    }
    steps
}

fn describe(settings: &Settings, budget: std::time::Duration, jobs: usize) -> String {
    format!(
        "{} per target, {jobs} at a time; sanitizer {}; per-input timeout {}; RSS limit {} MB; \
         mode {}; corpus in {}, reused and grown (new inputs copied in after each run); \
         crashes minimized for up to {} and kept in {}",
        crate::duration::human(budget),
        settings.sanitizer.as_str(),
        crate::duration::human(settings.input_timeout),
        settings.rss_limit_mb,
        settings.mode.as_str(),
        settings.corpus_dir.as_ref().map_or_else(
            || "<fuzz dir>/corpus/<target>".to_owned(),
            |dir| format!("{dir}/<target>")
        ),
        crate::duration::human(settings.minimize_time),
        settings.registry,
    )
}
