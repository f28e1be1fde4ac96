//! Findings of the cross stage: tests that fail, crash or hang natively on the big-endian
//! target.

use super::{emulated, Never, Settings};
use crate::exec::{failure, Attributed, Binary, Cause};
use crate::finding::NewFinding;
use crate::plan::Context;
use crate::report::{Finding, Severity};
use crate::stage_name::StageName;

pub fn build(
    ctx: &Context,
    settings: &Settings,
    binaries: &[Binary],
    found: &[Attributed<Never>],
) -> Vec<Finding> {
    let mut findings: Vec<Finding> = found
        .iter()
        .map(|item| to_finding(ctx, settings, &binaries[item.binary], item))
        .collect();
    crate::report::model::sort_findings(&mut findings);
    findings
}

fn to_finding(
    ctx: &Context,
    settings: &Settings,
    binary: &Binary,
    item: &Attributed<Never>,
) -> Finding {
    let run_dir = super::package_dir(ctx, &binary.unit);
    let relative_dir = ctx
        .workspace
        .relative(&run_dir)
        .map(camino::Utf8Path::to_path_buf)
        .unwrap_or_default();
    let described = match &item.cause {
        Cause::Report(never) => match *never {},
        Cause::Failed { output } => failure::failed(&item.test, output, &relative_dir),
        Cause::Died {
            termination,
            detail,
        } => failure::died(
            &format!("natively on {}: {termination}", settings.target),
            detail,
            "qemu-user",
        ),
        Cause::TimedOut { limit, tail } => failure::timed_out(*limit, tail),
    };
    let repro = binary.unit.executable.as_deref().map(|exe| {
        emulated(settings, exe)
            .env("RUST_BACKTRACE", "1")
            .args(["--exact", item.test.as_str(), "--nocapture"])
            .cwd(run_dir.clone())
            .pasteable()
    });
    let mut new = NewFinding::described(StageName::Cross, described)
        .test(
            item.test.clone(),
            format!("{} {}", binary.unit.label(), item.test),
        )
        .target(settings.target.clone())
        // A failure only natively on the big-endian target is at least high.
        .severity(Severity::High)
        .tool("qemu-user")
        .note(Some(format!(
            "fails natively on big-endian {}: a byte-order bug when the host passes",
            settings.target
        )));
    if let Some(repro) = repro {
        new = new.repro(repro);
    }
    new.build(&ctx.workspace)
}
