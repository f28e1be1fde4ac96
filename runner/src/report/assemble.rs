//! Completes the report after each stage: the baseline comparison, the cross-stage issues and
//! the gate, in that order (issues carry baseline states; the gate may tolerate old findings).

use camino::Utf8PathBuf;

use super::model::{Report, Severity};
use super::{baseline, dedup, gate};
use crate::exit::Exit;

/// A previous report to compare with, and where it came from.
pub struct Baseline {
    pub path: Utf8PathBuf,
    pub report: Report,
}

/// How the gate judges the run.
pub struct GateSettings<'a> {
    pub fail_on: Severity,
    /// Config `fail-on-new-only`: with a baseline, findings it already had never fail the gate.
    pub new_only: bool,
    pub baseline: Option<&'a Baseline>,
}

pub fn complete(report: &mut Report, settings: &GateSettings, interrupted: bool) -> Exit {
    // A stage's own record (the fuzz crash registry) joins the baseline, or is the baseline
    // when none was given: one comparison, one set of words, one gate rule.
    let (kept_file, kept) = baseline::kept_by_stages(&report.stages);
    report.baseline = match (settings.baseline, kept_file) {
        (Some(previous), _) => {
            let mut stages = previous.report.stages.clone();
            stages.extend(kept);
            Some(baseline::compare(&previous.path, &report.stages, &stages))
        }
        (None, Some(file)) => Some(baseline::compare(&file, &report.stages, &kept)),
        (None, None) => None,
    };
    report.issues = dedup::issues(&report.stages, report.baseline.as_ref());
    let policy = gate::Policy {
        fail_on: settings.fail_on,
        tolerated: report.baseline.as_ref().filter(|_| settings.new_only),
    };
    let (result, exit) = gate::evaluate(&report.stages, policy, interrupted);
    report.gate = result;
    report.gate.provisional = report.partition.is_some();
    exit
}
