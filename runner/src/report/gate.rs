//! The gate: turns stage statuses and findings into PASS/FAIL and the exit code.

use super::model::{Category, Finding, GateResult, Severity, StageReport, Status};
use crate::exit::Exit;

/// Whether one finding fails the gate: threshold misses always do, the rest by severity.
pub fn gates(finding: &Finding, fail_on: Severity) -> bool {
    finding.category == Category::Threshold || finding.severity >= fail_on
}

/// A finished stage's status from its findings: FAIL when any of them gates.
pub fn status_from_findings(findings: &[Finding], fail_on: Severity) -> Status {
    if findings.iter().any(|finding| gates(finding, fail_on)) {
        Status::Fail
    } else {
        Status::Pass
    }
}

/// Evaluates the gate over every stage and picks the exit code by precedence:
/// not evaluated (2) over gate failed (1) over passed (0).
pub fn evaluate(
    stages: &[StageReport],
    fail_on: Severity,
    interrupted: bool,
) -> (GateResult, Exit) {
    let mut reasons = Vec::new();
    let mut exit = Exit::Passed;
    if interrupted {
        reasons.push("interrupted before every stage finished".to_owned());
        exit = Exit::NotEvaluated;
    }
    for stage in stages {
        match stage.status {
            Status::Error => {
                let why = stage.reason.as_deref().unwrap_or("no reason given");
                reasons.push(format!("{} could not be evaluated: {why}", stage.stage));
                exit = exit.max(Exit::NotEvaluated);
            }
            Status::Fail => {
                let thresholds = stage
                    .findings
                    .iter()
                    .filter(|f| f.category == Category::Threshold)
                    .count();
                let severe = stage
                    .findings
                    .iter()
                    .filter(|f| f.category != Category::Threshold && f.severity >= fail_on)
                    .count();
                let mut parts = Vec::new();
                if severe > 0 {
                    parts.push(format!(
                        "{severe} finding(s) at or above {}",
                        fail_on.as_str()
                    ));
                }
                if thresholds > 0 {
                    parts.push(format!("{thresholds} threshold miss(es)"));
                }
                let reason = if parts.is_empty() {
                    format!(
                        "{}: {}",
                        stage.stage,
                        stage.reason.as_deref().unwrap_or("failed")
                    )
                } else {
                    format!("{}: {}", stage.stage, parts.join(" and "))
                };
                reasons.push(reason);
                exit = exit.max(Exit::GateFailed);
            }
            Status::Pass | Status::Skipped => {}
        }
    }
    if !stages.is_empty() && stages.iter().all(|stage| stage.status == Status::Skipped) {
        reasons.push("no stage applied to this workspace, so nothing was checked".to_owned());
        exit = exit.max(Exit::NotEvaluated);
    }
    let passed = exit == Exit::Passed;
    (
        GateResult {
            passed,
            fail_on,
            reasons,
        },
        exit,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::StageName;

    fn finding(severity: Severity, category: Category) -> Finding {
        Finding {
            fingerprint: String::new(),
            stage: StageName::Miri,
            category,
            kind: "k".into(),
            severity,
            message: String::new(),
            location: None,
            function: None,
            test: None,
            target: None,
            seed: None,
            stack: Vec::new(),
            repro: None,
            evidence: Vec::new(),
            note: None,
        }
    }

    fn stage(status: Status, findings: Vec<Finding>) -> StageReport {
        StageReport {
            findings,
            ..StageReport::new(StageName::Miri, status)
        }
    }

    #[test]
    fn info_findings_do_not_gate_by_default_but_thresholds_always_do() {
        assert!(!gates(
            &finding(Severity::Info, Category::Unsupported),
            Severity::High
        ));
        assert!(gates(
            &finding(Severity::Critical, Category::UndefinedBehavior),
            Severity::High
        ));
        assert!(gates(
            &finding(Severity::Medium, Category::Threshold),
            Severity::Critical
        ));
    }

    #[test]
    fn error_wins_over_failure() {
        let stages = [
            stage(
                Status::Fail,
                vec![finding(Severity::Critical, Category::UndefinedBehavior)],
            ),
            StageReport::error(StageName::Fuzz, "cargo-fuzz missing"),
        ];
        let (gate, exit) = evaluate(&stages, Severity::High, false);
        assert!(!gate.passed);
        assert_eq!(exit, Exit::NotEvaluated);
        assert_eq!(gate.reasons.len(), 2);
    }

    #[test]
    fn skipped_is_neutral_unless_nothing_ran() {
        let mixed = [
            stage(Status::Pass, vec![]),
            StageReport::skipped(StageName::Fuzz, "none"),
        ];
        assert_eq!(evaluate(&mixed, Severity::High, false).1, Exit::Passed);
        let none = [StageReport::skipped(StageName::Fuzz, "none")];
        assert_eq!(evaluate(&none, Severity::High, false).1, Exit::NotEvaluated);
    }

    #[test]
    fn interrupted_is_never_a_pass() {
        let (gate, exit) = evaluate(&[stage(Status::Pass, vec![])], Severity::High, true);
        assert!(!gate.passed);
        assert_eq!(exit, Exit::NotEvaluated);
    }
}
