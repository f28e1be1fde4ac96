//! Findings of the cross stage: tests that fail (or crash) natively on the big-endian target.

use super::{emulated, Failure, Settings};
use crate::cli::StageName;
use crate::fingerprint::fingerprint;
use crate::libtest;
use crate::locate;
use crate::plan::Context;
use crate::report::{Category, Evidence, Finding, Frame, Severity};

pub fn build(ctx: &Context, settings: &Settings, failures: &[Failure]) -> Vec<Finding> {
    failures
        .iter()
        .map(|failure| to_finding(ctx, settings, failure))
        .collect()
}

fn to_finding(ctx: &Context, settings: &Settings, failure: &Failure) -> Finding {
    let package_dir = ctx
        .workspace
        .members
        .iter()
        .find(|member| member.name == failure.unit.package)
        .and_then(|member| member.manifest_path.parent())
        .and_then(|dir| {
            ctx.workspace
                .relative(dir)
                .map(camino::Utf8Path::to_path_buf)
        })
        .unwrap_or_default();
    // The harness ran in its package's directory: its paths are relative to it.
    let in_workspace = |file: &str| package_dir.join(file.trim_start_matches("./")).to_string();
    let mut stack: Vec<Frame> = libtest::panic_backtrace(&failure.output)
        .into_iter()
        .map(|frame| Frame {
            file: frame.file.as_deref().map(in_workspace),
            ..frame
        })
        .collect();
    if stack.is_empty() {
        if let Some((file, line, column)) = libtest::panic_location(&failure.output) {
            stack.push(Frame {
                function: failure.test.clone(),
                file: Some(in_workspace(&file)),
                line: Some(line),
                column: Some(column),
            });
        }
    }
    let (location, function) = locate::user_location(&ctx.workspace, &stack);
    let (category, kind, message) = match &failure.crashed {
        Some(termination) => (
            Category::Crash,
            "crash",
            format!(
                "the test process died natively on {} ({termination})",
                settings.target
            ),
        ),
        None => (
            Category::TestFailure,
            "test-failure",
            libtest::panic_message(&failure.output).unwrap_or_else(|| "the test failed".to_owned()),
        ),
    };
    let file = location
        .as_ref()
        .map(|l| l.file.to_string())
        .unwrap_or_default();
    let test = format!("{} {}", failure.unit.label(), failure.test);
    let repro = failure.unit.executable.as_deref().map(|exe| {
        let cmd = emulated(settings, exe).args(["--exact", failure.test.as_str(), "--nocapture"]);
        format!("cd {} && {cmd}", ctx.workspace.root.join(&package_dir))
    });
    Finding {
        fingerprint: fingerprint(&[
            "cross",
            kind,
            &file,
            function.as_deref().unwrap_or(""),
            &test,
        ]),
        stage: StageName::Cross,
        category,
        kind: kind.to_owned(),
        severity: Severity::High,
        message: message.clone(),
        location,
        function,
        test: Some(failure.test.clone()),
        target: Some(settings.target.clone()),
        seed: None,
        stack: stack.into_iter().take(8).collect(),
        repro,
        evidence: vec![Evidence {
            tool: "qemu-user".to_owned(),
            message,
        }],
        note: Some(format!(
            "fails natively on big-endian {}: a byte-order bug when the host passes",
            settings.target
        )),
    }
}
