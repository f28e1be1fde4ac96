//! Instruction-count mode: each benchmark run once under callgrind, its routine's
//! instructions compared with the saved counts in `<baseline>/instructions.json`. The same
//! code gives the same count, so the gate does not flake on a busy machine.

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::{Context as _, Result};
use camino::Utf8Path;
use serde::{Deserialize, Serialize};

use super::callgrind;
use super::commands::{self, BenchBinary};
use super::settings::Settings;
use crate::plan::Context;

/// The saved counts of one baseline.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Saved {
    /// `valgrind --version` of the run that saved them: another valgrind may count
    /// differently.
    pub valgrind: String,
    pub counts: BTreeMap<String, u64>,
}

const FILE: &str = "instructions.json";

pub fn load(baseline_dir: &Utf8Path) -> Result<Option<Saved>> {
    let path = baseline_dir.join(FILE);
    let Some(bytes) = crate::foreign::read(&path)? else {
        return Ok(None);
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .with_context(|| format!("{path} is not a saved instruction-count baseline"))
}

pub fn save(baseline_dir: &Utf8Path, saved: &Saved) -> Result<()> {
    std::fs::create_dir_all(baseline_dir)
        .with_context(|| format!("cannot create {baseline_dir}"))?;
    let path = baseline_dir.join(FILE);
    let text = serde_json::to_string_pretty(saved)?;
    crate::foreign::write(&path, (text + "\n").as_bytes())
}

/// One benchmark's count, and whether it covers the routine alone or, when criterion's
/// timing loop was not found in the profile, the whole process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counted {
    pub id: String,
    pub instructions: u64,
    pub whole_process: bool,
}

/// The ids criterion lists as `<id>: benchmark`.
pub fn parse_list(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter_map(|line| line.trim_end().strip_suffix(": benchmark"))
        .map(str::to_owned)
        .collect()
}

/// A binary's benchmarks, as criterion lists them (after the run's filters).
pub fn list(
    ctx: &Context,
    settings: &Settings,
    binary: &BenchBinary,
    logs: &Utf8Path,
    deadline: Instant,
) -> Result<Vec<String>> {
    let filter = commands::filter(&ctx.filters);
    let list = commands::list_command(binary, settings, filter.as_deref());
    let log = logs.join(format!("{}-list", binary.slug()));
    let listed = commands::run_step(ctx, &list, Some(&log), deadline)?;
    commands::require_success(
        &listed,
        &format!("listing the benchmarks of {}", binary.label()),
    )?;
    Ok(parse_list(&listed.stdout))
}

/// Counts one benchmark under callgrind, in a process of its own.
pub fn count(
    ctx: &Context,
    settings: &Settings,
    binary: &BenchBinary,
    id: &str,
    logs: &Utf8Path,
    deadline: Instant,
) -> Result<Counted> {
    let stem = format!("{}-{}", binary.slug(), commands::slug(id));
    let profile = settings.callgrind_dir.join(format!("{stem}.out"));
    let cmd = commands::callgrind_command(binary, settings, id, &profile);
    ctx.progress.note(&format!("counting instructions of {id}"));
    let finished = commands::run_step(ctx, &cmd, Some(&logs.join(&stem)), deadline)?;
    commands::require_success(&finished, &format!("{id} under callgrind"))?;
    let text = std::fs::read_to_string(&profile)
        .with_context(|| format!("callgrind wrote no profile for {id}"))?;
    let parsed = callgrind::parse(&text).with_context(|| format!("in {profile}"))?;
    Ok(Counted {
        id: id.to_owned(),
        instructions: parsed.routine.unwrap_or(parsed.total),
        whole_process: parsed.routine.is_none(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_criterions_benchmark_list() {
        let stdout = "checksum/fnv: benchmark\n\nchecksum/sum: benchmark\n\n";
        assert_eq!(parse_list(stdout), ["checksum/fnv", "checksum/sum"]);
    }

    #[test]
    fn saved_counts_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let dir = Utf8Path::from_path(dir.path()).unwrap();
        assert_eq!(load(dir).unwrap(), None);
        let saved = Saved {
            valgrind: "valgrind-3.19.0".into(),
            counts: BTreeMap::from([("g/f".to_owned(), 25_000)]),
        };
        save(dir, &saved).unwrap();
        assert_eq!(load(dir).unwrap(), Some(saved));
        std::fs::write(dir.join(FILE), "[]").unwrap();
        assert!(load(dir).unwrap_err().to_string().contains("not a saved"));
    }
}
