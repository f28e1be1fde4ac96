//! Writes the report files atomically (report.json, report.md, report.sarif, junit.xml), so a
//! crash or Ctrl-C never leaves half a file, and hands the summary to GitHub's job page.

use std::fs;
use std::io::Write;

use anyhow::{Context, Result};
use camino::Utf8Path;

use super::model::Report;
use super::{junit, markdown, sarif};

/// Every rendering of the report, by file name.
pub const FILES: [&str; 4] = ["report.json", "report.md", "report.sarif", "junit.xml"];

/// Writes every rendering of the report into `out`.
pub fn write_all(report: &Report, out: &Utf8Path) -> Result<()> {
    let json = serde_json::to_string_pretty(report).context("serialising the report")?;
    let sarif = serde_json::to_string_pretty(&sarif::render(report))
        .context("serialising the SARIF log")?;
    let contents = [json, markdown::render(report), sarif, junit::render(report)];
    for (name, text) in FILES.iter().zip(contents) {
        write_atomically(&out.join(name), text.as_bytes())?;
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

/// Writes to a temporary file beside `path`, then renames it over `path`.
pub fn write_atomically(path: &Utf8Path, contents: &[u8]) -> Result<()> {
    let temporary = path.with_extension("tmp");
    let mut file =
        fs::File::create(&temporary).with_context(|| format!("cannot write {temporary}"))?;
    file.write_all(contents)
        .with_context(|| format!("cannot write {temporary}"))?;
    file.sync_all()
        .with_context(|| format!("cannot write {temporary}"))?;
    fs::rename(&temporary, path).with_context(|| format!("cannot replace {path}"))?;
    Ok(())
}
