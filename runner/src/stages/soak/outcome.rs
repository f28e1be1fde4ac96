//! From the samples to the stage report: the artifacts (samples as CSV and JSON, the memory
//! plot), a growth table, a threshold finding per resource that grows too fast, and a crash
//! finding when the program died before its time was up.

use std::fmt::Write as _;

use anyhow::Result;
use camino::{Utf8Path, Utf8PathBuf};
use serde::Serialize;

use super::growth::{self, Growth};
use super::plot;
use super::sample::Sample;
use super::settings::Settings;
use super::watch::Watched;
use crate::finding::NewFinding;
use crate::process::{Cmd, Termination};
use crate::report::{gate, Category, Finding, StageReport, Status, Table};
use crate::stage_name::StageName;

#[derive(Serialize)]
struct SamplesFile<'a> {
    interval_ms: u128,
    warmup_seconds: f64,
    samples: &'a [Sample],
    growth: Vec<GrowthEntry>,
}

#[derive(Serialize)]
struct GrowthEntry {
    resource: &'static str,
    unit: &'static str,
    per_hour: f64,
    start: f64,
    end: f64,
    limit_per_hour: f64,
    exceeded: bool,
}

pub fn report(
    ctx: &crate::plan::Context,
    settings: &Settings,
    cmd: &Cmd,
    watched: &Watched,
    dir: &Utf8Path,
) -> Result<StageReport> {
    let samples = &watched.samples;
    let warmup = settings.warmup.as_secs_f64();
    let growth = growth::analyse(samples, warmup, &settings.limits);
    write_artifacts(settings, samples, growth.as_deref(), dir)?;

    let mut report = StageReport::new(StageName::Soak, Status::Pass);
    report.artifacts_dir = Some(Utf8PathBuf::from(StageName::Soak.as_str()));
    let watched_for = samples.last().map_or(0.0, |s| s.seconds);
    report.counts.insert("samples".into(), samples.len() as u64);
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "whole seconds of a run"
    )]
    report
        .counts
        .insert("seconds_watched".into(), watched_for.round() as u64);
    report.notes.push(format!(
        "watched `{cmd}` for {watched_for:.1} s, a sample every {:?}; samples in \
         soak/samples.csv and soak/samples.json, memory plot in soak/memory.svg",
        settings.interval
    ));
    let repro = cmd.clone().cwd(ctx.workspace.root.clone()).pasteable();
    report
        .findings
        .extend(ended_early(settings, watched, watched_for, &repro));
    if watched.finished.termination == Termination::Exited(0) {
        report.notes.push(format!(
            "the program exited by itself after {watched_for:.1} s; the growth is fitted over \
             what was sampled until then"
        ));
    }
    if let Some(growth) = &growth {
        report
            .tables
            .push(table(growth, samples.len(), watched_for));
        report.findings.extend(
            growth
                .iter()
                .filter(|g| g.exceeded)
                .map(|g| growth_finding(settings, g, &repro)),
        );
    }
    report.status = gate::status_from_findings(&report.findings, ctx.fail_on);
    if growth.is_none() && report.findings.is_empty() {
        report.status = Status::Error;
        report.reason = Some(format!(
            "too few samples after the warm-up to fit a growth rate ({} in {watched_for:.1} s)",
            samples.len()
        ));
    }
    // What was sampled before a Ctrl-C is kept and shown, but an unfinished soak proves
    // nothing either way.
    if watched.finished.termination == Termination::Interrupted {
        report.status = Status::Error;
        report.reason = Some(format!(
            "interrupted after {watched_for:.1} s of {}; the samples so far are in soak/",
            crate::duration::human(settings.duration)
        ));
    }
    Ok(report)
}

/// A program that stops on its own before the duration is up: a crash or a failing exit
/// is a finding; a clean exit is only worth a note (the growth is fitted over what ran).
fn ended_early(
    settings: &Settings,
    watched: &Watched,
    seconds: f64,
    repro: &str,
) -> Option<Finding> {
    let how = match &watched.finished.termination {
        Termination::TimedOut(_) | Termination::Interrupted | Termination::Exited(0) => {
            return None;
        }
        other => other.to_string(),
    };
    let last_words = watched
        .finished
        .stderr
        .lines()
        .rev()
        .find(|line| !line.trim().is_empty())
        .unwrap_or("no output on stderr")
        .trim()
        .to_owned();
    Some(finding(
        settings,
        (Category::Crash, "ended-during-soak"),
        format!(
            "the program ended ({how}) after {seconds:.1} s of {}",
            crate::duration::human(settings.duration)
        ),
        last_words,
        repro,
    ))
}

fn growth_finding(settings: &Settings, growth: &Growth, repro: &str) -> Finding {
    let resource = growth.resource;
    let message = format!(
        "{} grew {:.1} {unit}/hour (fitted; {} → {} {unit} over the run); the limit is {} \
         {unit}/hour",
        resource.name(),
        growth.line.per_hour(),
        round(growth.start),
        round(growth.end),
        growth.limit_per_hour,
        unit = resource.unit()
    );
    finding(
        settings,
        (Category::Threshold, resource.kind()),
        message.clone(),
        message,
        repro,
    )
}

/// A soak finding: it names no source location or test, only the program and how to run
/// it again.
fn finding(
    settings: &Settings,
    (category, kind): (Category, &str),
    message: String,
    evidence: String,
    repro: &str,
) -> Finding {
    NewFinding::new(StageName::Soak, category, kind, message)
        .subject(settings.program.label())
        .repro(repro)
        .tool("soak")
        .evidence_message(evidence)
        .build_unlocated()
}

fn round(value: f64) -> String {
    if value.fract().abs() < f64::EPSILON {
        format!("{value:.0}")
    } else {
        format!("{value:.1}")
    }
}

fn table(growth: &[Growth], samples: usize, seconds: f64) -> Table {
    Table {
        title: format!("Growth over {seconds:.1} s ({samples} samples)"),
        columns: [
            "Resource",
            "Start",
            "End",
            "Fitted growth",
            "Limit",
            "Verdict",
        ]
        .map(str::to_owned)
        .to_vec(),
        rows: growth
            .iter()
            .map(|g| {
                let unit = g.resource.unit();
                vec![
                    g.resource.name().to_owned(),
                    format!("{} {unit}", round(g.start)),
                    format!("{} {unit}", round(g.end)),
                    format!("{:+.1} {unit}/hour", g.line.per_hour()),
                    format!("{} {unit}/hour", g.limit_per_hour),
                    if g.exceeded { "GROWING" } else { "steady" }.to_owned(),
                ]
            })
            .collect(),
    }
}

fn write_artifacts(
    settings: &Settings,
    samples: &[Sample],
    growth: Option<&[Growth]>,
    dir: &Utf8Path,
) -> Result<()> {
    let mut csv = String::from("seconds,rss_kib,fds,threads\n");
    for s in samples {
        let _ = writeln!(
            csv,
            "{:.3},{},{},{}",
            s.seconds, s.rss_kib, s.fds, s.threads
        );
    }
    write(&dir.join("samples.csv"), &csv)?;
    let file = SamplesFile {
        interval_ms: settings.interval.as_millis(),
        warmup_seconds: settings.warmup.as_secs_f64(),
        samples,
        growth: growth
            .unwrap_or_default()
            .iter()
            .map(|g| GrowthEntry {
                resource: g.resource.name(),
                unit: g.resource.unit(),
                per_hour: g.line.per_hour(),
                start: g.start,
                end: g.end,
                limit_per_hour: g.limit_per_hour,
                exceeded: g.exceeded,
            })
            .collect(),
    };
    write(
        &dir.join("samples.json"),
        &serde_json::to_string_pretty(&file)?,
    )?;
    let memory = growth.and_then(|all| all.first());
    let title = match memory {
        Some(g) => format!(
            "{}: resident memory, fitted {:+.1} MiB/hour",
            settings.program.label(),
            g.line.per_hour()
        ),
        None => format!("{}: resident memory", settings.program.label()),
    };
    let svg = plot::memory_svg(
        samples,
        settings.warmup.as_secs_f64(),
        memory.map(|g| &g.line),
        &title,
    );
    write(&dir.join("memory.svg"), &svg)
}

fn write(path: &Utf8Path, text: &str) -> Result<()> {
    crate::atomic::write(path, text.as_bytes())
}
