//! The gate: turns stage statuses and findings into PASS/FAIL and the exit code.

use super::model::{
    BaselineState, BaselineSummary, Category, Finding, GateResult, Report, Severity, StageReport,
    Status,
};
use crate::exit::Exit;

/// Whether one finding fails the gate: threshold misses always do, the rest by severity.
pub fn gates(finding: &Finding, fail_on: Severity) -> bool {
    finding.category == Category::Threshold || finding.severity >= fail_on
}

/// What fails the gate: the severity, and with `fail-on-new-only` the baseline whose
/// findings are then tolerated.
#[derive(Debug, Clone, Copy)]
pub struct Policy<'a> {
    pub fail_on: Severity,
    pub tolerated: Option<&'a BaselineSummary>,
}

impl Policy<'_> {
    pub fn fails(&self, finding: &Finding) -> bool {
        gates(finding, self.fail_on)
            && self
                .tolerated
                .is_none_or(|baseline| baseline.state(&finding.fingerprint) == BaselineState::New)
    }
}

impl Report {
    /// The policy the report's gate was evaluated with, for renderers that mark what failed.
    pub fn gate_policy(&self) -> Policy<'_> {
        Policy {
            fail_on: self.gate.fail_on,
            tolerated: self.baseline.as_ref().filter(|_| self.gate.new_only),
        }
    }
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
pub fn evaluate(stages: &[StageReport], policy: Policy, interrupted: bool) -> (GateResult, Exit) {
    let fail_on = policy.fail_on;
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
                let failing: Vec<&Finding> =
                    stage.findings.iter().filter(|f| policy.fails(f)).collect();
                let tolerated = stage
                    .findings
                    .iter()
                    .filter(|f| gates(f, fail_on) && !policy.fails(f))
                    .count();
                let new = if policy.tolerated.is_some() {
                    " new"
                } else {
                    ""
                };
                let thresholds = failing
                    .iter()
                    .filter(|f| f.category == Category::Threshold)
                    .count();
                let severe = failing.len() - thresholds;
                let mut parts = Vec::new();
                if severe > 0 {
                    parts.push(format!(
                        "{severe}{new} finding(s) at or above {}",
                        fail_on.as_str()
                    ));
                }
                if thresholds > 0 {
                    parts.push(format!("{thresholds}{new} threshold miss(es)"));
                }
                let reason = if !parts.is_empty() {
                    format!("{}: {}", stage.stage, parts.join(" and "))
                } else if tolerated > 0 {
                    // Every failing finding is in the baseline: what a pull-request check
                    // with `fail-on-new-only` lets through.
                    continue;
                } else {
                    format!(
                        "{}: {}",
                        stage.stage,
                        stage.reason.as_deref().unwrap_or("failed")
                    )
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
            new_only: policy.tolerated.is_some(),
            reasons,
            not_evaluated: exit == Exit::NotEvaluated,
            provisional: false,
        },
        exit,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stage_name::StageName;

    fn finding(severity: Severity, category: Category) -> Finding {
        Finding {
            category,
            severity,
            ..crate::report::testing::finding(StageName::Miri, "")
        }
    }

    fn by_severity(fail_on: Severity) -> Policy<'static> {
        Policy {
            fail_on,
            tolerated: None,
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
        let (gate, exit) = evaluate(&stages, by_severity(Severity::High), false);
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
        assert_eq!(
            evaluate(&mixed, by_severity(Severity::High), false).1,
            Exit::Passed
        );
        let none = [StageReport::skipped(StageName::Fuzz, "none")];
        assert_eq!(
            evaluate(&none, by_severity(Severity::High), false).1,
            Exit::NotEvaluated
        );
    }

    #[test]
    fn interrupted_is_never_a_pass() {
        let (gate, exit) = evaluate(
            &[stage(Status::Pass, vec![])],
            by_severity(Severity::High),
            true,
        );
        assert!(!gate.passed);
        assert_eq!(exit, Exit::NotEvaluated);
    }

    #[test]
    fn with_new_only_the_baseline_findings_are_tolerated() {
        let mut old = finding(Severity::Critical, Category::UndefinedBehavior);
        old.fingerprint = "old".into();
        let mut new = old.clone();
        new.fingerprint = "new".into();
        let brief = |f: &Finding| crate::report::model::FindingBrief::from(f);
        let baseline = BaselineSummary {
            file: "previous/report.json".into(),
            new: vec![brief(&new)],
            still_present: vec![brief(&old)],
            fixed: Vec::new(),
        };
        let policy = Policy {
            fail_on: Severity::High,
            tolerated: Some(&baseline),
        };
        let only_old = [stage(Status::Fail, vec![old.clone()])];
        let (gate, exit) = evaluate(&only_old, policy, false);
        assert_eq!(exit, Exit::Passed, "{:?}", gate.reasons);
        assert!(gate.new_only);
        let both = [stage(Status::Fail, vec![old, new])];
        let (gate, exit) = evaluate(&both, policy, false);
        assert_eq!(exit, Exit::GateFailed);
        assert_eq!(gate.reasons, ["miri: 1 new finding(s) at or above high"]);
    }
}
