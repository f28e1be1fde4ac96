//! Writes the report files atomically (report.json, report.md, report.sarif, junit.xml), so a
//! crash or Ctrl-C never leaves half a file; every file carries the run's id, so a reader can
//! tell a set written by one run from one mixed from two.

use std::fs;
use std::io::Write;

use anyhow::{bail, Context, Result};
use camino::Utf8Path;

use super::model::Report;
use super::{junit, markdown, sarif};

/// Every rendering of the report, by file name.
pub const FILES: [&str; 4] = ["report.json", "report.md", "report.sarif", "junit.xml"];

/// How the id appears in the Markdown and `JUnit` files (an XML/HTML comment: invisible when
/// rendered, ignored by every consumer).
const COMMENT_PREFIX: &str = "<!-- runner run id: ";

/// A new run id: unique across runs on one machine (time and pid) and readable.
pub fn new_run_id() -> String {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format!(
        "{}-{:09}-{}",
        since_epoch.as_secs(),
        since_epoch.subsec_nanos(),
        std::process::id()
    )
}

/// Writes every rendering of the report into `out`, each stamped with the report's run id
/// (the command sets it: a run's own id, or a new one for a merge).
pub fn write_all(report: &Report, out: &Utf8Path) -> Result<()> {
    let run_id = report
        .run_id
        .as_deref()
        .context("internal error: the report has no run id")?;
    let json = serde_json::to_string_pretty(report).context("serialising the report")?;
    let mut log = sarif::render(report);
    log["properties"] = serde_json::json!({ "runId": run_id });
    let sarif = serde_json::to_string_pretty(&log).context("serialising the SARIF log")?;
    let comment = format!("{COMMENT_PREFIX}{run_id} -->\n");
    let markdown = markdown::render(report) + "\n" + &comment;
    let junit = junit::render(report);
    let junit = match junit.split_once('\n') {
        Some((declaration, rest)) if declaration.starts_with("<?xml") => {
            format!("{declaration}\n{comment}{rest}")
        }
        _ => comment + &junit,
    };
    for (name, text) in FILES.iter().zip([json, markdown, sarif, junit]) {
        crate::atomic::write(&out.join(name), text.as_bytes())?;
    }
    Ok(())
}

/// The run id a report file carries, `None` when it has none (a report of an earlier version).
pub fn run_id_of(name: &str, text: &str) -> Option<String> {
    match name {
        "report.json" => serde_json::from_str::<serde_json::Value>(text)
            .ok()?
            .get("run_id")?
            .as_str()
            .map(str::to_owned),
        "report.sarif" => serde_json::from_str::<serde_json::Value>(text)
            .ok()?
            .pointer("/properties/runId")?
            .as_str()
            .map(str::to_owned),
        _ => {
            let start = text.find(COMMENT_PREFIX)? + COMMENT_PREFIX.len();
            let rest = &text[start..];
            Some(rest[..rest.find(" -->")?].to_owned())
        }
    }
}

/// Refuses a report set in `dir` whose files carry different run ids (written by two runs).
/// Files that are absent, or carry no id, say nothing either way.
pub fn check_set(dir: &Utf8Path) -> Result<()> {
    let mut seen: Option<(&str, String)> = None;
    for name in FILES {
        let Ok(text) = fs::read_to_string(dir.join(name)) else {
            continue;
        };
        let Some(id) = run_id_of(name, &text) else {
            continue;
        };
        match &seen {
            Some((first, first_id)) if *first_id != id => bail!(
                "the report set in {dir} is mixed from two runs: {first} has run id {first_id}, \
                 {name} has {id}"
            ),
            Some(_) => {}
            None => seen = Some((name, id)),
        }
    }
    Ok(())
}

/// Appends the Markdown summary to the file GitHub Actions shows on the job's page, when the
/// run is inside a GitHub job (`GITHUB_STEP_SUMMARY` set). Appending is GitHub's contract:
/// other steps write to the same file.
pub fn step_summary(report: &Report) -> Result<()> {
    let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|p| !p.is_empty()) else {
        return Ok(());
    };
    let mut file = fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(&path)
        .with_context(|| format!("cannot write the step summary {}", path.display()))?;
    file.write_all(markdown::summary(report).as_bytes())
        .with_context(|| format!("cannot write the step summary {}", path.display()))
}

/// Writes to a fresh temporary file beside `path`, then renames it over `path`.
pub fn write_atomically(path: &Utf8Path, contents: &[u8]) -> Result<()> {
    crate::atomic::write(path, contents)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamped(mut report: Report, run_id: &str) -> Report {
        report.run_id = Some(run_id.to_owned());
        report
    }
    use crate::report::testing::report_with;

    #[test]
    fn every_file_carries_the_run_id() {
        let dir = tempfile::tempdir().unwrap();
        let out = Utf8Path::from_path(dir.path()).unwrap();
        write_all(&stamped(report_with(Vec::new()), "42-000000001-7"), out).unwrap();
        for name in FILES {
            let text = fs::read_to_string(out.join(name)).unwrap();
            assert_eq!(
                run_id_of(name, &text).as_deref(),
                Some("42-000000001-7"),
                "{name}"
            );
        }
        let json: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
        assert_eq!(json["schema_version"], 1);
        check_set(out).unwrap();
    }

    #[test]
    fn a_set_from_two_runs_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let out = Utf8Path::from_path(dir.path()).unwrap();
        write_all(&stamped(report_with(Vec::new()), "1-000000000-1"), out).unwrap();
        let markdown = fs::read_to_string(out.join("report.md")).unwrap();
        write_all(&stamped(report_with(Vec::new()), "2-000000000-2"), out).unwrap();
        fs::write(out.join("report.md"), markdown).unwrap();
        let error = check_set(out).unwrap_err().to_string();
        assert!(error.contains("mixed from two runs"), "{error}");
    }
}
