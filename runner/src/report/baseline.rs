//! Baseline diff: this run's findings against a previous report's, matched by fingerprint,
//! so a pull-request check can tell new problems from ones the branch inherited.

use std::collections::BTreeSet;

use anyhow::{bail, Context as _, Result};
use camino::{Utf8Path, Utf8PathBuf};

use super::model::{BaselineSummary, FindingBrief, Report, StageReport, Status, SCHEMA_VERSION};

/// Where a workspace keeps the report it accepts as its baseline (DECISIONS: baselines live
/// in `.runner/`, outside `target/`, so they survive `cargo clean` and can be committed).
pub const DEFAULT_FILE: &str = ".runner/findings-baseline.json";

/// The findings the stages kept themselves from earlier runs (the fuzz crash registry), as
/// stages of a previous report, and the file of the first of them.
pub fn kept_by_stages(stages: &[StageReport]) -> (Option<Utf8PathBuf>, Vec<StageReport>) {
    let mut file = None;
    let mut kept = Vec::new();
    for stage in stages {
        if let Some(known) = &stage.known {
            file.get_or_insert_with(|| known.file.clone());
            kept.push(StageReport {
                findings: known.findings.clone(),
                ..StageReport::new(stage.stage, Status::Pass)
            });
        }
    }
    (file, kept)
}

/// The previous report to compare with: `--baseline FILE`, else the workspace's default file
/// when it exists.
pub fn locate(explicit: Option<&Utf8Path>, workspace_root: &Utf8Path) -> Option<Utf8PathBuf> {
    match explicit {
        Some(path) => Some(path.to_owned()),
        None => Some(workspace_root.join(DEFAULT_FILE)).filter(|path| path.is_file()),
    }
}

/// Reads a previous `report.json`; a report from another schema version cannot be compared,
/// nor one whose report set beside it was mixed from two runs.
pub fn load(path: &Utf8Path) -> Result<Report> {
    load_as(path, "baseline")
}

/// Reads a runner `report.json` by the same rules, named `what` in every error (`baseline`,
/// `the slice's report`), so a message says which input was wrong.
pub fn load_as(path: &Utf8Path, what: &str) -> Result<Report> {
    if path.file_name() == Some("report.json") {
        if let Some(dir) = path.parent().filter(|dir| !dir.as_str().is_empty()) {
            super::write::check_set(dir).with_context(|| format!("cannot use {what} {path}"))?;
        }
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {what} {path}"))?;
    let version: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{what} {path} is not JSON"))?;
    let found = version
        .get("schema_version")
        .and_then(serde_json::Value::as_u64);
    if found != Some(u64::from(SCHEMA_VERSION)) {
        bail!(
            "{what} {path} is not a runner report of schema version {SCHEMA_VERSION} \
             (found {})",
            found.map_or_else(|| "none".to_owned(), |v| v.to_string())
        );
    }
    serde_json::from_value(version)
        .with_context(|| format!("{what} {path} is not a valid runner report"))
}

/// Sorts this run's findings into new and still present, and lists the baseline's findings
/// that are gone. Only stages evaluated in this run can have fixed anything: a stage that
/// was skipped, failed to run or not asked for this time says nothing about its findings.
/// `previous` are the baseline report's stages, and the findings stages kept themselves.
pub fn compare(
    file: &Utf8Path,
    stages: &[StageReport],
    previous: &[StageReport],
) -> BaselineSummary {
    let known: BTreeSet<&str> = previous
        .iter()
        .flat_map(|stage| &stage.findings)
        .map(|finding| finding.fingerprint.as_str())
        .collect();
    let current: BTreeSet<&str> = stages
        .iter()
        .flat_map(|stage| &stage.findings)
        .map(|finding| finding.fingerprint.as_str())
        .collect();
    let evaluated: BTreeSet<_> = stages
        .iter()
        .filter(|stage| matches!(stage.status, Status::Pass | Status::Fail))
        .map(|stage| stage.stage)
        .collect();
    let (still_present, new) = distinct(stages)
        .into_iter()
        .partition(|brief| known.contains(brief.fingerprint.as_str()));
    let fixed = distinct(previous)
        .into_iter()
        .filter(|brief| evaluated.contains(&brief.stage))
        .filter(|brief| !current.contains(brief.fingerprint.as_str()))
        .collect();
    BaselineSummary {
        file: file.to_owned(),
        new,
        still_present,
        fixed,
    }
}

/// One brief per fingerprint (a problem found on several targets is one entry), in report
/// order.
fn distinct(stages: &[StageReport]) -> Vec<FindingBrief> {
    let mut seen = BTreeSet::new();
    stages
        .iter()
        .flat_map(|stage| &stage.findings)
        .filter(|finding| seen.insert(finding.fingerprint.as_str()))
        .map(FindingBrief::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::testing::{finding, report_with, stage_with};
    use crate::stage_name::StageName;

    fn fingerprints(briefs: &[FindingBrief]) -> Vec<&str> {
        briefs.iter().map(|b| b.fingerprint.as_str()).collect()
    }

    #[test]
    fn new_still_present_and_fixed_by_fingerprint() {
        let previous = report_with(vec![
            stage_with(
                StageName::Miri,
                vec![finding(StageName::Miri, "a"), finding(StageName::Miri, "b")],
            ),
            stage_with(StageName::Valgrind, vec![finding(StageName::Valgrind, "v")]),
        ]);
        // The same problem on two targets is one entry; valgrind did not run this time, so
        // its finding is not fixed.
        let now = vec![stage_with(
            StageName::Miri,
            vec![
                finding(StageName::Miri, "b"),
                finding(StageName::Miri, "c"),
                finding(StageName::Miri, "c"),
            ],
        )];
        let diff = compare("old.json".into(), &now, &previous.stages);
        assert_eq!(fingerprints(&diff.new), ["c"]);
        assert_eq!(fingerprints(&diff.still_present), ["b"]);
        assert_eq!(fingerprints(&diff.fixed), ["a"]);
    }

    #[test]
    fn the_default_file_is_used_only_when_it_exists() {
        let dir = tempfile::tempdir().unwrap();
        let root = Utf8Path::from_path(dir.path()).unwrap();
        assert_eq!(locate(None, root), None);
        std::fs::create_dir(root.join(".runner")).unwrap();
        std::fs::write(root.join(DEFAULT_FILE), "{}").unwrap();
        assert_eq!(locate(None, root), Some(root.join(DEFAULT_FILE)));
        let explicit = Utf8Path::new("elsewhere/report.json");
        assert_eq!(locate(Some(explicit), root), Some(explicit.to_owned()));
    }

    #[test]
    fn a_baseline_from_a_mixed_set_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let out = Utf8Path::from_path(dir.path()).unwrap();
        let mut report = report_with(Vec::new());
        report.run_id = Some("1-000000000-1".to_owned());
        super::super::write::write_all(&report, out).unwrap();
        load(&out.join("report.json")).unwrap();
        let sarif = std::fs::read_to_string(out.join("report.sarif")).unwrap();
        report.run_id = Some("2-000000000-2".to_owned());
        super::super::write::write_all(&report, out).unwrap();
        std::fs::write(out.join("report.sarif"), sarif).unwrap();
        let error = format!("{:#}", load(&out.join("report.json")).unwrap_err());
        assert!(error.contains("mixed from two runs"), "{error}");
    }

    #[test]
    fn a_report_of_another_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = Utf8Path::from_path(dir.path()).unwrap().join("r.json");
        std::fs::write(&path, r#"{"schema_version": 2}"#).unwrap();
        let error = load(&path).unwrap_err().to_string();
        assert!(error.contains("schema version 1 (found 2)"), "{error}");
    }
}
