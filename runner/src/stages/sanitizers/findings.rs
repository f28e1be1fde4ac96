//! Turns what the executor saw into report findings: kind and category, the first frame in
//! the user's code, a short stack, the other stacks in a note, a repro command and a
//! fingerprint. Leak blocks of one allocation site in one test merge into one finding.

use std::collections::BTreeMap;

use camino::Utf8Path;

use super::commands;
use super::executor::{Cause, RawFinding};
use super::frames::{is_harness_boundary, is_runtime_frame};
use super::report_parser::{LeakSize, SanitizerReport};
use super::sanitizer::Sanitizer;
use super::settings::Settings;
use crate::exec::failure;
use crate::finding::NewFinding;
use crate::locate;
use crate::plan::Context;
use crate::report::{Category, Finding, Frame, Severity};
use crate::stage_name::StageName;
use crate::workspace::Workspace;

/// How many frames a related stack shows in a finding's note.
const RELATED_FRAMES: usize = 3;

/// One sanitizer's findings, one per problem per test.
pub fn build(
    ctx: &Context,
    settings: &Settings,
    sanitizer: Sanitizer,
    raw: &[RawFinding],
) -> Vec<Finding> {
    let mut findings: Vec<Finding> = Vec::new();
    // Fingerprint → index in `findings`, and the leak total so far.
    let mut seen: BTreeMap<String, (usize, Option<LeakSize>)> = BTreeMap::new();
    for item in raw {
        let (finding, leak) = to_finding(ctx, settings, sanitizer, item);
        match seen.get_mut(&finding.fingerprint) {
            Some((index, Some(total))) => {
                if let Some(more) = leak {
                    total.bytes += more.bytes;
                    total.allocations += more.allocations;
                    let message = leak_message(&finding.kind, *total);
                    findings[*index].evidence[0].message.clone_from(&message);
                    findings[*index].message = message;
                }
            }
            Some(_) => {}
            None => {
                seen.insert(finding.fingerprint.clone(), (findings.len(), leak));
                findings.push(finding);
            }
        }
    }
    findings
}

fn to_finding(
    ctx: &Context,
    settings: &Settings,
    sanitizer: Sanitizer,
    item: &RawFinding,
) -> (Finding, Option<LeakSize>) {
    let workspace = &ctx.workspace;
    let (category, kind, message, stack, note) = match &item.cause {
        Cause::Report(report) => {
            let report = race_in_source_order(workspace, report);
            (
                category(&report),
                report.kind.clone(),
                match report.leak {
                    Some(size) => leak_message(&report.kind, size),
                    None => report.description.clone(),
                },
                report.stack.clone(),
                related_note(workspace, &report),
            )
        }
        Cause::Failed { output } => {
            let described = failure::failed(&item.test, output, Utf8Path::new(""));
            (
                described.category,
                described.kind,
                described.message,
                described.frames,
                Some(format!(
                    "the test fails under {} without a sanitizer report",
                    sanitizer.runtime_name()
                )),
            )
        }
        Cause::Died {
            termination,
            detail,
        } => {
            let described = failure::died(termination, detail, "sanitizer");
            (
                described.category,
                described.kind,
                described.message,
                described.frames,
                described.note,
            )
        }
        Cause::TimedOut { limit, tail } => {
            let described = failure::timed_out(*limit, tail);
            (
                described.category,
                described.kind,
                described.message,
                described.frames,
                described.note,
            )
        }
    };
    let (location, function) = locate::user_location(workspace, &locatable(workspace, &stack));
    // DECISIONS: uninitialised use is high, below the memory errors ASan finds.
    let severity = if kind == "use-of-uninitialized-value" {
        Severity::High
    } else {
        category.default_severity()
    };
    let tool = match &item.cause {
        Cause::Report(report) => report.runtime.runtime_name(),
        _ => sanitizer.runtime_name(),
    };
    let leak = match &item.cause {
        Cause::Report(report) => report.leak,
        _ => None,
    };
    let repro = commands::repro(ctx, settings, sanitizer, &item.unit, &item.test);
    let finding = NewFinding::new(StageName::Sanitizers, category, kind, message)
        .frames(trimmed(&stack).cloned().collect())
        .place(location, function)
        .test(
            item.test.clone(),
            format!("{} {}", item.unit.label(), item.test),
        )
        .target(sanitizer.as_str())
        .severity(severity)
        .repro(repro.pasteable())
        .tool(tool)
        .note(note)
        .build(workspace);
    (finding, leak)
}

/// `ThreadSanitizer` names the access it saw second as the race, so which one that is changes
/// from run to run. The access that comes first in the source leads instead, which keeps the
/// location and the fingerprint of a race stable.
fn race_in_source_order(workspace: &Workspace, report: &SanitizerReport) -> SanitizerReport {
    let mut report = report.clone();
    let other = match report.related.first() {
        Some(other) if report.kind == "data-race" && other.heading.starts_with("Previous") => other,
        _ => return report,
    };
    let place = |frames: &[Frame]| {
        locate::user_location(workspace, &locatable(workspace, frames))
            .0
            .map(|l| (l.file, l.line, l.column))
    };
    let (Some(theirs), Some(ours)) = (place(&other.frames), place(&report.stack)) else {
        return report;
    };
    if theirs < ours {
        let heading = report.access.take().unwrap_or_default();
        let first = report.related.remove(0);
        report.access = Some(first.heading);
        let second = std::mem::replace(&mut report.stack, first.frames);
        report.related.insert(
            0,
            super::report_parser::RelatedStack {
                heading: format!("Other access: {heading}"),
                frames: second,
            },
        );
    }
    report
}

fn category(report: &SanitizerReport) -> Category {
    match (report.runtime, report.kind.as_str()) {
        (Sanitizer::Leak, _) | (Sanitizer::Thread, "thread-leak") => Category::Leak,
        (Sanitizer::Thread, "data-race") => Category::DataRace,
        (Sanitizer::Thread, "lock-order-inversion") => Category::Deadlock,
        (Sanitizer::Thread, "use-after-free" | "double-free") => Category::MemoryError,
        (Sanitizer::Thread, _) => Category::UndefinedBehavior,
        (_, "stack-overflow" | "out-of-memory" | "rss-limit-exceeded") => Category::Crash,
        _ => Category::MemoryError,
    }
}

fn leak_message(kind: &str, size: LeakSize) -> String {
    let which = if kind == "indirect-leak" {
        "indirect"
    } else {
        "direct"
    };
    format!(
        "{which} leak of {} byte(s) in {} allocation(s)",
        size.bytes, size.allocations
    )
}

/// Frames fit for finding the user's code: a relative path counts only when it names a file
/// in the workspace (glibc's frames carry relative paths like `nptl/pthread_create.c`).
fn locatable(workspace: &Workspace, frames: &[Frame]) -> Vec<Frame> {
    frames
        .iter()
        .filter(|frame| !is_runtime_frame(frame))
        .map(|frame| locatable_frame(workspace, frame))
        .collect()
}

fn locatable_frame(workspace: &Workspace, frame: &Frame) -> Frame {
    let mut frame = frame.clone();
    let foreign = frame.file.as_deref().is_some_and(|file| {
        let path = Utf8Path::new(file);
        path.is_relative() && !workspace.root.join(path).is_file()
    });
    if foreign {
        frame.file = None;
    }
    frame
}

/// The frames a reader needs: none of the runtime's and none of the test harness's.
fn trimmed(frames: &[Frame]) -> impl Iterator<Item = &Frame> {
    frames
        .iter()
        .filter(|frame| !is_runtime_frame(frame))
        .take_while(|frame| !is_harness_boundary(frame))
}

/// The report's other stacks, from their first user frame: where the memory was allocated
/// and freed, or the other access of a data race.
fn related_note(workspace: &Workspace, report: &SanitizerReport) -> Option<String> {
    let parts: Vec<String> = report
        .related
        .iter()
        .filter(|related| !related.heading.starts_with("Thread "))
        .map(|related| {
            let frames: Vec<&Frame> = trimmed(&related.frames).collect();
            let start = frames
                .iter()
                .position(|frame| {
                    locate::is_user_frame(workspace, &locatable_frame(workspace, frame))
                })
                .unwrap_or(0);
            let shown: Vec<String> = frames[start..]
                .iter()
                .take(RELATED_FRAMES)
                .map(|frame| describe(&locate::readable_frame(workspace, frame)))
                .collect();
            if shown.is_empty() {
                related.heading.clone()
            } else {
                format!("{}: {}", related.heading, shown.join(" ← "))
            }
        })
        .collect();
    (!parts.is_empty()).then(|| parts.join("; "))
}

fn describe(frame: &Frame) -> String {
    match (&frame.file, frame.line, frame.column) {
        (Some(file), Some(line), Some(column)) => {
            format!("{} at {file}:{line}:{column}", frame.function)
        }
        (Some(file), Some(line), None) => format!("{} at {file}:{line}", frame.function),
        _ => frame.function.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::UnitKind;
    use crate::stages::sanitizers::report_parser::parse;

    fn context(root: &str) -> Context {
        let workspace = Workspace {
            root: root.into(),
            manifest_path: format!("{root}/Cargo.toml").into(),
            target_dir: format!("{root}/target").into(),
            members: Vec::new(),
            config: crate::config::Config::default(),
        };
        Context {
            workspace,
            toolchain: crate::environment::Toolchain {
                mode: crate::environment::Mode::Host,
                pin: crate::pin::Pin::embedded().unwrap(),
                cache_dir: "/cache".into(),
            },
            host: "x86_64-unknown-linux-gnu".into(),
            out_dir: format!("{root}/target/runner").into(),
            jobs: 2,
            timeout: std::time::Duration::from_mins(1),
            cargo: crate::cli::CargoArgs::default(),
            filters: Vec::new(),
            fail_on: Severity::High,
            progress: crate::progress::Progress::new(true, false),
            explicit: true,
            provision: false,
            fuzz: crate::stage_flags::FuzzFlags::default(),
            test_timeout: None,
            cache: None,
            partition: None,
            durations_file: format!("{root}/.runner/durations.json").into(),
            selected: Vec::new(),
        }
    }

    fn settings() -> Settings {
        Settings {
            sanitizers: Sanitizer::DEFAULT.to_vec(),
            memory_by_default: true,
            doctests: true,
            options: super::super::config::RuntimeOptions::default(),
            suppressions: BTreeMap::new(),
            symbolizer: None,
            test_timeout: std::time::Duration::from_mins(5),
            slow_test_timeout: std::time::Duration::from_mins(15),
            default_test_timeout: true,
            opt_level: None,
        }
    }

    fn findings_of(root: &str, sanitizer: Sanitizer, stderr: &str, test: &str) -> Vec<Finding> {
        let unit = TestUnit {
            package: "sanitizer-bugs".into(),
            package_id: "sanitizer-bugs".into(),
            kind: UnitKind::Lib,
            name: "sanitizer_bugs".into(),
            executable: None,
            variant: None,
        };
        let raw: Vec<RawFinding> = parse(stderr)
            .reports
            .into_iter()
            .map(|report| RawFinding {
                unit: unit.clone(),
                test: test.into(),
                cause: Cause::Report(report),
            })
            .collect();
        build(&context(root), &settings(), sanitizer, &raw)
    }

    use crate::inventory::TestUnit;

    const FIXTURE: &str = "/work/wt-sanitizers/fixtures/sanitizer-bugs";

    #[test]
    fn a_race_reads_the_same_whichever_access_the_runtime_saw_second() {
        let seen: Vec<Finding> = [
            include_str!("../../../tests/data/sanitizers/thread-data-race.stderr"),
            include_str!("../../../tests/data/sanitizers/thread-data-race-reversed.stderr"),
        ]
        .iter()
        .flat_map(|text| findings_of(FIXTURE, Sanitizer::Thread, text, "tests::race"))
        .collect();
        assert_eq!(seen.len(), 2);
        for finding in &seen {
            assert_eq!(finding.category, Category::DataRace);
            assert_eq!(finding.severity, Severity::Critical);
            assert_eq!(
                finding.location.as_ref().unwrap().to_string(),
                "src/lib.rs:38:18"
            );
            assert_eq!(
                finding.function.as_deref(),
                Some("sanitizer_bugs::data_race::{closure#0}")
            );
            let note = finding.note.as_deref().unwrap();
            assert!(
                note.contains("sanitizer_bugs::data_race at src/lib.rs:40:14"),
                "{note}"
            );
        }
        assert_eq!(seen[0].fingerprint, seen[1].fingerprint);
    }

    #[test]
    fn a_finding_has_location_short_stack_note_and_repro() {
        let text =
            include_str!("../../../tests/data/sanitizers/address-heap-buffer-overflow.stderr");
        let [finding] = findings_of(FIXTURE, Sanitizer::Address, text, "tests::overflow")
            .try_into()
            .unwrap();
        assert_eq!(finding.kind, "heap-buffer-overflow");
        assert_eq!(finding.severity, Severity::Critical);
        assert_eq!(finding.location.unwrap().to_string(), "src/lib.rs:10:14");
        assert_eq!(finding.target.as_deref(), Some("address"));
        assert_eq!(finding.evidence[0].tool, "AddressSanitizer");
        let files: Vec<&str> = finding
            .stack
            .iter()
            .filter_map(|f| f.file.as_deref())
            .collect();
        assert_eq!(
            files,
            [
                "src/lib.rs",
                "src/lib.rs",
                "src/lib.rs",
                "core/src/ops/function.rs",
                "core/src/ops/function.rs"
            ],
            "no runtime or harness frames, readable paths"
        );
        assert!(finding.note.unwrap().starts_with(
            "allocated by thread T1 here: sanitizer_bugs::heap_overflow at src/lib.rs:8:28"
        ));
        let repro = finding.repro.unwrap();
        assert!(
            repro.contains("ASAN_OPTIONS=detect_leaks=1:fast_unwind_on_malloc=0"),
            "{repro}"
        );
        assert!(
            repro.contains("CARGO_PROFILE_DEV_OPT_LEVEL=1"),
            "the repro rebuilds what ran: {repro}"
        );
        assert!(
            repro.ends_with("--lib -- --exact tests::overflow"),
            "{repro}"
        );
    }

    #[test]
    fn uninitialised_use_is_high_and_leaks_keep_their_size() {
        let text = include_str!("../../../tests/data/sanitizers/memory-uninit.stderr");
        let finding = &findings_of(FIXTURE, Sanitizer::Memory, text, "tests::uninit")[0];
        assert_eq!(finding.severity, Severity::High);
        assert_eq!(
            finding.location.as_ref().unwrap().to_string(),
            "src/lib.rs:50:8"
        );
        let text = include_str!("../../../tests/data/sanitizers/address-leak.stderr");
        let finding = &findings_of(FIXTURE, Sanitizer::Address, text, "tests::leaks")[0];
        assert_eq!(
            (finding.category, finding.severity),
            (Category::Leak, Severity::High)
        );
        assert_eq!(
            finding.message,
            "direct leak of 64 byte(s) in 1 allocation(s)"
        );
        assert_eq!(
            finding.location.as_ref().unwrap().to_string(),
            "src/lib.rs:23:28"
        );
    }

    #[test]
    fn leak_blocks_from_one_site_merge_with_their_sizes_added() {
        let text = include_str!("../../../tests/data/sanitizers/address-nested-leaks.stderr");
        let found = findings_of("/tmp/san-extra", Sanitizer::Address, text, "tests::nested");
        let summary: Vec<(&str, String, &str)> = found
            .iter()
            .map(|f| {
                let location = f.location.as_ref().unwrap().to_string();
                (f.kind.as_str(), location, f.message.as_str())
            })
            .collect();
        assert_eq!(
            summary,
            [
                (
                    "direct-leak",
                    "src/lib.rs:47:17".into(),
                    "direct leak of 24 byte(s) in 1 allocation(s)"
                ),
                (
                    "indirect-leak",
                    "src/lib.rs:46:47".into(),
                    "indirect leak of 84 byte(s) in 3 allocation(s)"
                ),
                (
                    "indirect-leak",
                    "src/lib.rs:46:77".into(),
                    "indirect leak of 72 byte(s) in 1 allocation(s)"
                ),
            ]
        );
        // LeakSanitizer splits blocks by whole stack; a finding is per allocation site, so
        // blocks that share the site in the user's code add up.
        let once = include_str!("../../../tests/data/sanitizers/address-leak.stderr");
        let twice = format!("{once}{once}");
        let found = findings_of(FIXTURE, Sanitizer::Address, &twice, "tests::leaks");
        assert_eq!(found.len(), 1);
        assert_eq!(
            found[0].message,
            "direct leak of 128 byte(s) in 2 allocation(s)"
        );
        assert_eq!(found[0].evidence[0].message, found[0].message);
    }

    #[test]
    fn relative_paths_outside_the_workspace_are_not_user_code() {
        let workspace = context(FIXTURE).workspace;
        let glibc = Frame {
            function: "start_thread".into(),
            file: Some("nptl/./nptl/pthread_create.c".into()),
            line: Some(442),
            column: Some(8),
        };
        assert_eq!(locatable_frame(&workspace, &glibc).file, None);
    }
}
