//! Turns a target's fuzzing results into the report: one finding per distinct bug (kind,
//! severity, place, input, artifacts, repro), the per-target figures, and `findings.json`
//! with the machine-readable crash details.

use std::collections::BTreeMap;

use camino::{Utf8Path, Utf8PathBuf};
use serde::Serialize;

use super::commands;
use super::discover::FuzzTarget;
use super::session::TargetRun;
use super::settings::Settings;
use super::triage::Group;
use crate::finding::NewFinding;
use crate::plan::Context;
use crate::report::{Category, Evidence, Finding, Severity};
use crate::stage_name::StageName;

/// How much of an input the report spells out.
const SHOWN_BYTES: usize = 32;

/// The product's severities: fuzz crashes and memory errors are critical; timeouts,
/// out-of-memory, leaks and uninitialised reads high.
fn classify(kind: &str, reporter: &str) -> (Category, Severity) {
    match kind {
        "timeout" => (Category::Timeout, Severity::High),
        "out-of-memory" => (Category::Crash, Severity::High),
        "memory-leak" => (Category::Leak, Severity::High),
        "use-of-uninitialized-value" => (Category::MemoryError, Severity::High),
        "data-race" => (Category::DataRace, Severity::Critical),
        "stack-overflow" => (Category::Crash, Severity::Critical),
        _ if reporter == "AddressSanitizer" || reporter == "MemorySanitizer" => {
            (Category::MemoryError, Severity::Critical)
        }
        _ => (Category::Crash, Severity::Critical),
    }
}

/// The machine-readable details of one finding, in `fuzz/findings.json`.
#[derive(Debug, Serialize)]
pub struct Record {
    pub fingerprint: String,
    pub target: String,
    pub kind: String,
    pub signature: String,
    pub count: usize,
    pub seed: Option<u64>,
    pub artifact: Option<Utf8PathBuf>,
    pub input_len: Option<usize>,
    pub input_hex: Option<String>,
    pub minimized: Option<Utf8PathBuf>,
    pub minimized_len: Option<usize>,
    pub debug: Option<String>,
    pub repro: Option<String>,
}

pub fn build(
    ctx: &Context,
    settings: &Settings,
    target: &FuzzTarget,
    groups: &[Group],
) -> Vec<(Finding, Record)> {
    groups
        .iter()
        .map(|group| to_finding(ctx, settings, target, group))
        .collect()
}

fn to_finding(
    ctx: &Context,
    settings: &Settings,
    target: &FuzzTarget,
    group: &Group,
) -> (Finding, Record) {
    let crash = &group.crash;
    let (category, severity) = classify(&crash.kind, &crash.reporter);
    let repro = group
        .artifact
        .as_ref()
        .map(|artifact| commands::repro(ctx, settings, target, artifact).pasteable());
    let message = match crash.kind.as_str() {
        "panic" => format!("panicked: {}", crash.message),
        _ => crash.message.clone(),
    };
    let mut new = NewFinding::new(StageName::Fuzz, category, crash.kind.clone(), message)
        .frames(group.frames.clone())
        .test(target.label.clone(), target.label.clone())
        .seed(group.seed)
        .severity(severity)
        .tool(crash.reporter.to_lowercase())
        .evidence_message(crash.headline.clone())
        .note(Some(note(ctx, group)));
    if let Some(minimized) = &group.minimized {
        new = new.also_seen_by(Evidence {
            tool: "cargo-fuzz tmin".to_owned(),
            message: format!("still fails with {} bytes", minimized.input.len()),
        });
    }
    if let Some(repro) = &repro {
        new = new.repro(repro.clone());
    }
    let finding = new.build(&ctx.workspace);
    let print = finding.fingerprint.clone();
    let record = Record {
        fingerprint: print,
        target: target.label.clone(),
        kind: crash.kind.clone(),
        signature: group.signature.clone(),
        count: group.count,
        seed: group.seed,
        artifact: group.artifact.clone(),
        input_len: group.input.as_ref().map(Vec::len),
        input_hex: group.input.as_deref().map(hex),
        minimized: group.minimized.as_ref().map(|m| m.path.clone()),
        minimized_len: group.minimized.as_ref().map(|m| m.input.len()),
        debug: group.debug.clone(),
        repro,
    };
    (finding, record)
}

/// Count, input, artifacts and the `Debug` form, for the reader of the report.
fn note(ctx: &Context, group: &Group) -> String {
    let mut parts = Vec::new();
    parts.push(match group.count {
        1 => "found once".to_owned(),
        n => format!("found {n} times"),
    });
    let shown = group
        .minimized
        .as_ref()
        .map(|m| m.input.as_slice())
        .or(group.input.as_deref());
    if let Some(input) = shown {
        let provenance = match (&group.minimized, &group.input) {
            (Some(m), Some(original)) if m.input.len() < original.len() => {
                format!(", minimized from {}", original.len())
            }
            (Some(_), Some(_)) => ", already minimal".to_owned(),
            _ => String::new(),
        };
        parts.push(format!(
            "input ({} bytes{provenance}): {}",
            input.len(),
            describe(input)
        ));
    }
    if let Some(debug) = &group.debug {
        parts.push(format!("as the target reads it: {}", one_line(debug)));
    }
    if let Some(artifact) = &group.artifact {
        parts.push(format!("artifact `{}`", relative(ctx, artifact)));
    }
    if let Some(minimized) = &group.minimized {
        parts.push(format!("minimized `{}`", relative(ctx, &minimized.path)));
    }
    parts.extend(group.minimize_note.clone());
    if group.artifact.is_none() {
        parts.push("no input was saved, so there is no replay command".to_owned());
    }
    parts.join("; ")
}

/// The bytes in hex and as an escaped string, cut after `SHOWN_BYTES`.
pub fn describe(input: &[u8]) -> String {
    let cut = &input[..input.len().min(SHOWN_BYTES)];
    let more = if input.len() > SHOWN_BYTES {
        " …"
    } else {
        ""
    };
    format!("`{}{more}` (b\"{}\"{more})", hex(cut), cut.escape_ascii())
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Artifacts live in the report folder: name them from there, like `artifacts_dir`.
fn relative(ctx: &Context, path: &Utf8Path) -> String {
    path.strip_prefix(&ctx.out_dir)
        .map_or_else(|_| path.to_string(), ToString::to_string)
}

/// The figures of one target, with the same keys for every target so the table lines up.
pub fn summary(run: &TargetRun, findings: usize) -> BTreeMap<String, u64> {
    let executions: u64 = run
        .sessions
        .iter()
        .map(|s| s.stat("number_of_executed_units"))
        .sum();
    let millis = u64::try_from(run.duration.as_millis()).unwrap_or(u64::MAX);
    let last = run.sessions.iter().rev().find_map(|s| s.last_status);
    let peak_rss = run
        .sessions
        .iter()
        .map(|s| s.stat("peak_rss_mb"))
        .max()
        .unwrap_or(0);
    let counts = [
        ("duration_ms", millis),
        ("executions", executions),
        (
            "exec_per_sec",
            executions
                .saturating_mul(1000)
                .checked_div(millis)
                .unwrap_or(0),
        ),
        ("corpus_inputs_before", run.corpus_before.0),
        ("corpus_bytes_before", run.corpus_before.1),
        ("corpus_inputs_after", run.corpus_after.0),
        ("corpus_bytes_after", run.corpus_after.1),
        (
            "new_inputs",
            run.sessions.iter().map(|s| s.stat("new_units_added")).sum(),
        ),
        ("cov", last.map_or(0, |s| s.cov)),
        ("ft", last.map_or(0, |s| s.ft)),
        ("peak_rss_mb", peak_rss),
        ("findings", findings as u64),
    ];
    counts
        .into_iter()
        .map(|(key, value)| (key.to_owned(), value))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severities_follow_the_product_rules() {
        assert_eq!(classify("panic", "libFuzzer").1, Severity::Critical);
        assert_eq!(
            classify("heap-buffer-overflow", "AddressSanitizer"),
            (Category::MemoryError, Severity::Critical)
        );
        assert_eq!(
            classify("timeout", "libFuzzer"),
            (Category::Timeout, Severity::High)
        );
        assert_eq!(classify("out-of-memory", "libFuzzer").1, Severity::High);
        assert_eq!(classify("memory-leak", "LeakSanitizer").0, Category::Leak);
    }

    #[test]
    fn inputs_are_shown_as_hex_and_escaped_text() {
        assert_eq!(describe(b"BUG!"), "`42 55 47 21` (b\"BUG!\")");
        let long = describe(&[0u8; 40]);
        assert!(long.ends_with(" …)"), "{long}");
    }
}
