//! Cross-stage dedup: findings of every stage that point at the same bug become one issue
//! carrying each tool's evidence, so the summary lists problems rather than tool outputs.

use std::collections::BTreeMap;

use super::model::{BaselineState, BaselineSummary, Category, Finding, Issue, StageReport};

/// What makes two findings the same problem. Tools name a bug differently (Miri's
/// `out-of-bounds` is valgrind's `invalid-read` and the sanitizers' `heap-buffer-overflow`) and name
/// functions differently (`checksum` and `demo::checksum`), but they agree on the line of
/// the user's code where it happens: within one run, the class of problem and that line
/// identify it. A finding without a place in the user's code stands alone.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Key {
    Place {
        class: Class,
        file: String,
        line: u32,
    },
    Alone(String),
}

/// Categories that different tools use for the same bug: Miri calls a bad read undefined
/// behaviour where valgrind and the sanitizers call it a memory error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Class {
    MemorySafety,
    Other(Category),
}

fn key(finding: &Finding) -> Key {
    let class = match finding.category {
        Category::UndefinedBehavior | Category::MemoryError => Class::MemorySafety,
        other => Class::Other(other),
    };
    match &finding.location {
        Some(location) => Key::Place {
            class,
            file: location.file.to_string(),
            line: location.line,
        },
        None => Key::Alone(finding.fingerprint.clone()),
    }
}

/// The distinct issues of a run, most severe first. With a baseline, an issue is new when
/// any of its findings is.
pub fn issues(stages: &[StageReport], baseline: Option<&BaselineSummary>) -> Vec<Issue> {
    let mut groups: BTreeMap<Key, Vec<&Finding>> = BTreeMap::new();
    for finding in stages.iter().flat_map(|stage| &stage.findings) {
        groups.entry(key(finding)).or_default().push(finding);
    }
    let mut issues: Vec<Issue> = groups
        .into_values()
        .filter_map(|findings| merge(&findings, baseline))
        .collect();
    issues.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| {
                a.location
                    .as_ref()
                    .map(|l| (&l.file, l.line))
                    .cmp(&b.location.as_ref().map(|l| (&l.file, l.line)))
            })
            .then_with(|| a.kind.cmp(&b.kind))
    });
    issues
}

/// One issue from its findings; the most severe one (the first of equals, in stage order)
/// names it.
fn merge(findings: &[&Finding], baseline: Option<&BaselineSummary>) -> Option<Issue> {
    let lead = findings.iter().copied().reduce(|best, next| {
        if next.severity > best.severity {
            next
        } else {
            best
        }
    })?;
    let mut issue = Issue {
        severity: lead.severity,
        category: lead.category,
        kind: lead.kind.clone(),
        location: lead.location.clone(),
        function: lead.function.clone(),
        stages: Vec::new(),
        tests: Vec::new(),
        targets: Vec::new(),
        fingerprints: Vec::new(),
        evidence: Vec::new(),
        baseline: baseline.map(|baseline| {
            let any_new = findings
                .iter()
                .any(|f| baseline.state(&f.fingerprint) == BaselineState::New);
            if any_new {
                BaselineState::New
            } else {
                BaselineState::StillPresent
            }
        }),
    };
    for finding in findings {
        push_new(&mut issue.stages, finding.stage);
        push_new(&mut issue.fingerprints, finding.fingerprint.clone());
        if let Some(test) = &finding.test {
            push_new(&mut issue.tests, test.clone());
        }
        if let Some(target) = &finding.target {
            push_new(&mut issue.targets, target.clone());
        }
        for evidence in &finding.evidence {
            if !issue
                .evidence
                .iter()
                .any(|seen| seen.tool.eq_ignore_ascii_case(&evidence.tool))
            {
                issue.evidence.push(evidence.clone());
            }
        }
    }
    Some(issue)
}

fn push_new<T: PartialEq>(list: &mut Vec<T>, item: T) {
    if !list.contains(&item) {
        list.push(item);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::model::{Evidence, Location};
    use crate::report::testing::{finding, stage_with};
    use crate::stage_name::StageName;

    fn at(mut finding: Finding, category: Category, tool: &str, line: u32) -> Finding {
        finding.category = category;
        finding.location = Some(Location {
            file: "src/lib.rs".into(),
            line,
            column: None,
        });
        finding.evidence = vec![Evidence {
            tool: tool.into(),
            message: format!("{tool} saw it"),
        }];
        finding
    }

    #[test]
    fn one_bug_seen_by_two_tools_is_one_issue_with_both_evidences() {
        let mut miri = at(
            finding(StageName::Miri, "m"),
            Category::UndefinedBehavior,
            "miri",
            32,
        );
        miri.target = Some("x86_64-unknown-linux-gnu".into());
        let mut s390x = miri.clone();
        s390x.target = Some("s390x-unknown-linux-gnu".into());
        let valgrind = at(
            finding(StageName::Valgrind, "v"),
            Category::MemoryError,
            "valgrind",
            32,
        );
        let leak = at(
            finding(StageName::Valgrind, "l"),
            Category::Leak,
            "valgrind",
            32,
        );
        let stages = [
            stage_with(StageName::Miri, vec![miri, s390x]),
            stage_with(StageName::Valgrind, vec![valgrind, leak]),
        ];
        let issues = issues(&stages, None);
        assert_eq!(issues.len(), 2, "{issues:#?}");
        let bug = &issues[0];
        assert_eq!(bug.stages, [StageName::Miri, StageName::Valgrind]);
        let tools: Vec<&str> = bug.evidence.iter().map(|e| e.tool.as_str()).collect();
        assert_eq!(tools, ["miri", "valgrind"]);
        assert_eq!(bug.fingerprints, ["m", "v"]);
        assert_eq!(bug.targets.len(), 2);
        assert_eq!(issues[1].category, Category::Leak);
    }

    #[test]
    fn findings_without_a_place_stand_alone() {
        let stages = [stage_with(
            StageName::Fuzz,
            vec![finding(StageName::Fuzz, "x"), finding(StageName::Fuzz, "y")],
        )];
        assert_eq!(issues(&stages, None).len(), 2);
    }
}
