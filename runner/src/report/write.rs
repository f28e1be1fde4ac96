//! Writes report.json and report.md atomically, so a crash or Ctrl-C never leaves half a file.

use std::fs;
use std::io::Write;

use anyhow::{Context, Result};
use camino::Utf8Path;

use super::markdown;
use super::model::Report;

/// Writes both renderings of the report into `out`.
pub fn write_all(report: &Report, out: &Utf8Path) -> Result<()> {
    let json = serde_json::to_string_pretty(report).context("serialising the report")?;
    write_atomically(&out.join("report.json"), json.as_bytes())?;
    write_atomically(&out.join("report.md"), markdown::render(report).as_bytes())?;
    Ok(())
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
