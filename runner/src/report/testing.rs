//! Small report values for the report modules' unit tests.

use super::model::{Category, Environment, Finding, Report, Severity, StageReport, Status};
use crate::stage_name::StageName;

/// A critical finding of `stage` with the given fingerprint and nothing else known.
pub fn finding(stage: StageName, fingerprint: &str) -> Finding {
    Finding {
        fingerprint: fingerprint.into(),
        stage,
        category: Category::UndefinedBehavior,
        kind: "out-of-bounds".into(),
        severity: Severity::Critical,
        message: "bad read".into(),
        location: None,
        function: None,
        test: None,
        target: None,
        seed: None,
        borrow_model: None,
        stack: Vec::new(),
        repro: None,
        evidence: Vec::new(),
        note: None,
        first_found_in: None,
    }
}

pub fn stage_with(stage: StageName, findings: Vec<Finding>) -> StageReport {
    let status = if findings.is_empty() {
        Status::Pass
    } else {
        Status::Fail
    };
    StageReport {
        findings,
        ..StageReport::new(stage, status)
    }
}

pub fn report_with(stages: Vec<StageReport>) -> Report {
    let mut report = Report::new("all", "/ws".into(), Environment::default(), Severity::High);
    report.stages = stages;
    report
}
