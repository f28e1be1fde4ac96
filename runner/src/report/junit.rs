//! Renders the report as junit.xml for CI test views: a suite per stage (and per target,
//! sanitizer or fuzz target where the stage has several), a case per analysed test, and the
//! findings that fail the gate (by the report's own gate policy) as the case's failure. Lays
//! the report out; decides nothing of its own.

use std::fmt::Write as _;

use super::gate::Policy;
use super::model::{Finding, Report, StageReport, Status, TestOutcome, TestRun};
use super::text;

pub fn render(report: &Report) -> String {
    let policy = report.gate_policy();
    let suites: Vec<Suite> = report
        .stages
        .iter()
        .flat_map(|stage| suites(stage, policy))
        .collect();
    let mut total = Tally::default();
    for suite in &suites {
        total.add(&suite.tally());
    }
    let total_ms: u64 = report.stages.iter().map(|stage| stage.duration_ms).sum();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"runner\" {} time=\"{}\">",
        total.attributes(),
        seconds(total_ms),
    );
    for suite in &suites {
        suite.write(&mut out);
    }
    out.push_str("</testsuites>\n");
    out
}

struct Suite<'a> {
    stage: &'a StageReport,
    /// The stage target this suite is for; `None` for the stage-wide suite.
    target: Option<&'a str>,
    cases: Vec<Case<'a>>,
}

struct Case<'a> {
    classname: String,
    name: String,
    /// The test's own record, when the stage kept one.
    run: Option<&'a TestRun>,
    /// Findings that fail the gate: the case's failure.
    failing: Vec<&'a Finding>,
    /// Findings below the gate (or tolerated by the baseline): shown as output.
    other: Vec<&'a Finding>,
    /// A case that stands for a whole stage that was skipped or could not run.
    stage_outcome: Option<Outcome<'a>>,
}

#[derive(Clone, Copy)]
enum Outcome<'a> {
    Passed,
    Failed,
    Skipped(Option<&'a str>),
    Error(&'a str),
}

/// The counts on every suite element.
#[derive(Default)]
struct Tally {
    tests: usize,
    failures: usize,
    errors: usize,
    skipped: usize,
}

impl Tally {
    fn add(&mut self, other: &Tally) {
        self.tests += other.tests;
        self.failures += other.failures;
        self.errors += other.errors;
        self.skipped += other.skipped;
    }

    fn attributes(&self) -> String {
        format!(
            "tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\"",
            self.tests, self.failures, self.errors, self.skipped
        )
    }
}

impl<'a> Case<'a> {
    /// A test that failed only through findings below the gate passes, as the gate does.
    fn outcome(&self) -> Outcome<'a> {
        if let Some(outcome) = self.stage_outcome {
            return outcome;
        }
        if !self.failing.is_empty() {
            return Outcome::Failed;
        }
        match self.run.map(|run| run.outcome) {
            Some(TestOutcome::Failed) if self.other.is_empty() => Outcome::Failed,
            Some(TestOutcome::Ignored) => Outcome::Skipped(None),
            _ => Outcome::Passed,
        }
    }
}

impl Suite<'_> {
    fn tally(&self) -> Tally {
        let mut tally = Tally {
            tests: self.cases.len(),
            ..Tally::default()
        };
        for case in &self.cases {
            match case.outcome() {
                Outcome::Failed => tally.failures += 1,
                Outcome::Error(_) => tally.errors += 1,
                Outcome::Skipped(_) => tally.skipped += 1,
                Outcome::Passed => {}
            }
        }
        tally
    }
}

/// The suite a test or finding belongs to: its target's when that is one of the stage's
/// targets; for stages whose targets are what is tested (fuzz targets), its test's; else the
/// stage-wide suite, which comes last.
fn suite_index(stage: &StageReport, target: Option<&str>, test: Option<&str>) -> usize {
    let position = |name: Option<&str>| {
        name.and_then(|name| stage.targets.iter().position(|t| t.name == name))
    };
    position(target)
        .or_else(|| position(test))
        .unwrap_or(stage.targets.len())
}

fn suites<'a>(stage: &'a StageReport, policy: Policy) -> Vec<Suite<'a>> {
    if stage.status == Status::Skipped {
        let reason = stage.reason.as_deref().unwrap_or("skipped");
        return vec![Suite {
            stage,
            target: None,
            cases: vec![lone_case(
                stage,
                stage.stage.as_str(),
                Some(Outcome::Skipped(Some(reason))),
            )],
        }];
    }
    let mut suites: Vec<Suite> = stage
        .targets
        .iter()
        .map(|target| Suite {
            stage,
            target: Some(target.name.as_str()),
            cases: Vec::new(),
        })
        .collect();
    suites.push(Suite {
        stage,
        target: None,
        cases: Vec::new(),
    });
    for run in &stage.tests {
        let at = suite_index(stage, run.target.as_deref(), Some(&run.name));
        suites[at].cases.push(Case {
            classname: run
                .unit
                .clone()
                .unwrap_or_else(|| stage.stage.as_str().to_owned()),
            name: match run.seed {
                Some(seed) => format!("{} (seed {seed})", run.name),
                None => run.name.clone(),
            },
            run: Some(run),
            failing: Vec::new(),
            other: Vec::new(),
            stage_outcome: None,
        });
    }
    for finding in &stage.findings {
        let at = suite_index(stage, finding.target.as_deref(), finding.test.as_deref());
        let cases = &mut suites[at].cases;
        let name = finding_case_name(finding);
        let existing = cases.iter().position(|case| match case.run {
            Some(run) => {
                Some(run.name.as_str()) == finding.test.as_deref()
                    && (run.seed.is_none() || run.seed == finding.seed)
            }
            None => case.name == name,
        });
        let index = existing.unwrap_or_else(|| {
            cases.push(lone_case(stage, &name, None));
            cases.len() - 1
        });
        let case = &mut cases[index];
        if policy.fails(finding) {
            case.failing.push(finding);
        } else {
            case.other.push(finding);
        }
    }
    for suite in &mut suites {
        if suite.cases.is_empty() {
            if let Some(target) = suite.target {
                // A target that ran clean and kept no per-test record still counts as run.
                suite.cases.push(lone_case(stage, target, None));
            }
        }
    }
    let stage_wide = suites.len() - 1;
    if let (Status::Error, Some(reason)) = (stage.status, stage.reason.as_deref()) {
        let case = lone_case(stage, stage.stage.as_str(), Some(Outcome::Error(reason)));
        suites[stage_wide].cases.push(case);
    } else if suites[stage_wide].cases.is_empty() && stage.targets.is_empty() {
        let case = lone_case(stage, stage.stage.as_str(), None);
        suites[stage_wide].cases.push(case);
    }
    suites.retain(|suite| !suite.cases.is_empty());
    suites
}

fn lone_case<'a>(stage: &StageReport, name: &str, stage_outcome: Option<Outcome<'a>>) -> Case<'a> {
    Case {
        classname: stage.stage.as_str().to_owned(),
        name: name.to_owned(),
        run: None,
        failing: Vec::new(),
        other: Vec::new(),
        stage_outcome,
    }
}

/// A finding outside any recorded test (a configured program, a threshold) is its own case.
fn finding_case_name(finding: &Finding) -> String {
    match (&finding.test, &finding.location) {
        (Some(test), _) => test.clone(),
        (None, Some(location)) => format!("{} at {location}", finding.kind),
        (None, None) => finding.kind.clone(),
    }
}

impl Suite<'_> {
    fn write(&self, out: &mut String) {
        let name = match self.target {
            Some(target) => format!("{} {target}", self.stage.stage),
            None => self.stage.stage.as_str().to_owned(),
        };
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" {}>",
            escape(&name),
            self.tally().attributes()
        );
        let _ = writeln!(out, "    <properties>");
        let _ = writeln!(
            out,
            "      <property name=\"stage\" value=\"{}\"/>",
            self.stage.stage
        );
        if let Some(target) = self.target {
            let _ = writeln!(
                out,
                "      <property name=\"target\" value=\"{}\"/>",
                escape(target)
            );
        }
        let _ = writeln!(out, "    </properties>");
        for case in &self.cases {
            case.write(out);
        }
        let _ = writeln!(out, "  </testsuite>");
    }
}

impl Case<'_> {
    fn write(&self, out: &mut String) {
        let _ = write!(
            out,
            "    <testcase classname=\"{}\" name=\"{}\"",
            escape(&self.classname),
            escape(&self.name)
        );
        if let Some(ms) = self.run.and_then(|run| run.duration_ms) {
            let _ = write!(out, " time=\"{}\"", seconds(ms));
        }
        let mut body = String::new();
        match (self.outcome(), self.failing.first()) {
            (Outcome::Skipped(reason), _) => {
                let _ = writeln!(
                    body,
                    "      <skipped message=\"{}\"/>",
                    escape(reason.unwrap_or("ignored"))
                );
            }
            (Outcome::Error(reason), _) => {
                let _ = writeln!(
                    body,
                    "      <error message=\"{}\" type=\"not-evaluated\"/>",
                    escape(reason)
                );
            }
            (Outcome::Failed, Some(first)) => {
                let text: Vec<String> = self.failing.iter().map(|f| details(f)).collect();
                let _ = writeln!(
                    body,
                    "      <failure message=\"{}\" type=\"{}\">{}</failure>",
                    escape(&headline(first)),
                    escape(&first.kind),
                    escape(&text.join("\n"))
                );
            }
            (Outcome::Failed, None) => {
                let _ = writeln!(
                    body,
                    "      <failure message=\"the test failed\" type=\"test-failure\"/>"
                );
            }
            (Outcome::Passed, _) => {}
        }
        if !self.other.is_empty() {
            let text: Vec<String> = self.other.iter().map(|f| details(f)).collect();
            let _ = writeln!(
                body,
                "      <system-out>findings that do not fail the gate:\n{}</system-out>",
                escape(&text.join("\n"))
            );
        }
        if body.is_empty() {
            out.push_str("/>\n");
        } else {
            let _ = write!(out, ">\n{body}    </testcase>\n");
        }
    }
}

/// `critical out-of-bounds at src/lib.rs:32:14: <the tool's message>`
fn headline(finding: &Finding) -> String {
    match &finding.location {
        Some(location) => format!(
            "{} {} at {location}: {}",
            finding.severity.as_str(),
            finding.kind,
            finding.message
        ),
        None => format!(
            "{} {}: {}",
            finding.severity.as_str(),
            finding.kind,
            finding.message
        ),
    }
}

fn details(finding: &Finding) -> String {
    let mut text = headline(finding);
    if let Some(function) = &finding.function {
        let _ = write!(text, "\nIn: {function}");
    }
    for frame in &finding.stack {
        let _ = write!(text, "\n  {frame}");
    }
    text.push_str(&text::context(finding));
    let _ = write!(text, "\nFingerprint: {}\n", finding.fingerprint);
    text
}

fn seconds(ms: u64) -> String {
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

/// Escapes XML's special characters and drops the control characters XML 1.0 cannot carry
/// at all (tool output may hold terminal colour codes). The SVG writers use it too.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if c < ' ' => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_drops_control_characters() {
        assert_eq!(
            escape("a<b & \"c\" \u{1b}[31mred"),
            "a&lt;b &amp; &quot;c&quot; [31mred"
        );
    }
}
