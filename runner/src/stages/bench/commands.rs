//! The commands the stage runs, built once for both `plan` and `run`: the benchmark build,
//! criterion's timed run, the instruction-count run under callgrind, and the profiler.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use camino::{Utf8Path, Utf8PathBuf};

use super::discover::BenchTarget;
use super::settings::Settings;
use crate::plan::Context;
use crate::process::{Cmd, Finished, RunOptions};
use crate::stage_name::StageName;

/// A built benchmark binary and where cargo would run it from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BenchBinary {
    pub package: String,
    pub name: String,
    pub executable: Utf8PathBuf,
    pub package_dir: Utf8PathBuf,
    /// Built with criterion 0.4 or later, which takes `--baseline-lenient` (0.3 knows only
    /// `--baseline`, and panics on a benchmark the baseline lacks).
    pub lenient_baseline: bool,
}

impl BenchBinary {
    /// `bench-regress bench checksum`.
    pub fn label(&self) -> String {
        format!("{} bench {}", self.package, self.name)
    }

    /// A file-name-safe form of the label.
    pub fn slug(&self) -> String {
        slug(&self.label())
    }
}

/// Letters, digits, `-` and `_` kept; everything else becomes `-`.
pub fn slug(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// Runs one step of the stage within the deadline, shown with `-v` and, with a `log`
/// stem, logged to `<log>.out` and `<log>.err`.
pub fn run_step(
    ctx: &Context,
    cmd: &Cmd,
    log: Option<&Utf8Path>,
    deadline: Instant,
) -> Result<Finished> {
    ctx.progress.verbose(&cmd.to_string());
    cmd.run(&RunOptions {
        timeout: Some(deadline.saturating_duration_since(Instant::now())),
        log_stem: log.map(Utf8Path::to_path_buf),
        ..RunOptions::default()
    })
}

/// Fails with `what`, how the step ended and the most telling line of its stderr: a
/// panic or an error when there is one, else the first line.
pub fn require_success(finished: &Finished, what: &str) -> Result<()> {
    if finished.termination.success() {
        return Ok(());
    }
    let mut lines = finished.stderr.lines().map(str::trim);
    let telling = lines
        .clone()
        .find(|line| line.contains("panicked") || line.to_lowercase().starts_with("error"))
        .or_else(|| lines.find(|line| !line.is_empty()))
        .unwrap_or("nothing on stderr");
    bail!("{what} failed ({}): {telling}", finished.termination)
}

/// `cargo bench --no-run` of the criterion benchmarks, in the `bench` profile (optimised,
/// as the benchmarks are meant to run).
pub fn build_command(ctx: &Context, settings: &Settings, targets: &[BenchTarget]) -> Cmd {
    let mut cmd = ctx
        .stage_cargo(&settings.target_dir)
        .args([
            "bench",
            "--no-run",
            "--message-format=json",
            "--manifest-path",
        ])
        .arg(ctx.workspace.manifest_path.as_str())
        .args(ctx.package_selection(StageName::Bench))
        .args(ctx.cargo.build_args());
    let mut names: Vec<&str> = targets
        .iter()
        .filter(|target| target.criterion)
        .map(|target| target.name.as_str())
        .collect();
    names.sort_unstable();
    names.dedup();
    for name in names {
        cmd = cmd.args(["--bench", name]);
    }
    cmd
}

/// criterion's filter from runner's test-name filters: criterion takes one regular
/// expression, so several substrings become an alternation of their escaped forms.
pub fn filter(filters: &[String]) -> Option<String> {
    if filters.is_empty() {
        return None;
    }
    let escaped: Vec<String> = filters
        .iter()
        .map(|filter| {
            filter
                .chars()
                .flat_map(|c| {
                    let special = "\\.+*?()|[]{}^$#&-~".contains(c);
                    special
                        .then_some('\\')
                        .into_iter()
                        .chain(std::iter::once(c))
                })
                .collect()
        })
        .collect();
    Some(escaped.join("|"))
}

fn criterion(binary: &BenchBinary, settings: &Settings) -> Cmd {
    Cmd::new(binary.executable.as_str())
        .arg("--bench")
        .env("CRITERION_HOME", settings.criterion_home.as_str())
        .cwd(binary.package_dir.clone())
}

/// The timed run, compared against the baseline where one exists (`--baseline-lenient`
/// leaves benchmarks without one uncompared instead of failing; with criterion 0.3, which
/// lacks it, `--baseline` only once a baseline was restored). No plots: runner reads the
/// JSON, and plotting is slow.
pub fn wall_command(binary: &BenchBinary, settings: &Settings, filter: Option<&str>) -> Cmd {
    let compare = if binary.lenient_baseline {
        Some("--baseline-lenient")
    } else if super::criterion::has_baseline(&settings.criterion_home, &settings.baseline) {
        Some("--baseline")
    } else {
        None
    };
    criterion(binary, settings)
        .arg("--noplot")
        .args(
            compare
                .into_iter()
                .flat_map(|flag| [flag, settings.baseline.as_str()]),
        )
        .args(filter)
}

/// The same run, for exactly one benchmark: what a finding's reproduction runs.
pub fn wall_repro(binary: &BenchBinary, settings: &Settings, id: &str) -> Cmd {
    wall_command(binary, settings, Some(id)).arg("--exact")
}

/// criterion's list of the binary's benchmarks (`<id>: benchmark` lines).
pub fn list_command(binary: &BenchBinary, settings: &Settings, filter: Option<&str>) -> Cmd {
    criterion(binary, settings).arg("--list").args(filter)
}

/// One benchmark run once (criterion's test mode) under callgrind: one iteration of the
/// routine, counted instruction by instruction, is the same for the same code.
pub fn callgrind_command(
    binary: &BenchBinary,
    settings: &Settings,
    id: &str,
    profile: &Utf8Path,
) -> Cmd {
    Cmd::new("valgrind")
        .args([
            "--tool=callgrind".to_owned(),
            format!("--callgrind-out-file={profile}"),
        ])
        .arg(binary.executable.as_str())
        .args(["--bench", "--test", "--exact", id])
        .env("CRITERION_HOME", settings.criterion_home.as_str())
        .cwd(binary.package_dir.clone())
}

/// `perf record` of one benchmark in criterion's profiling mode (the routine in a loop
/// for a fixed time, no analysis). DWARF unwinding, because release builds keep no frame
/// pointers.
pub fn perf_record_command(
    binary: &BenchBinary,
    settings: &Settings,
    id: &str,
    data: &Utf8Path,
    time: Duration,
) -> Cmd {
    Cmd::new("perf")
        .args([
            "record",
            "-F",
            "499",
            "--call-graph",
            "dwarf",
            "-o",
            data.as_str(),
            "--",
        ])
        .arg(binary.executable.as_str())
        .args(["--bench", "--profile-time"])
        .arg(time.as_secs().max(1).to_string())
        .args(["--exact", id])
        .env("CRITERION_HOME", settings.criterion_home.as_str())
        .cwd(binary.package_dir.clone())
}

/// The recorded stacks as text: one block of `address symbol` lines per sample.
pub fn perf_script_command(data: &Utf8Path) -> Cmd {
    Cmd::new("perf").args(["script", "-F", "ip,sym", "-i", data.as_str()])
}

/// The benchmark binaries cargo built, matched to the criterion bench targets.
pub fn binaries(messages: &str, targets: &[BenchTarget], ctx: &Context) -> Vec<BenchBinary> {
    let lenient_baseline = criterion_versions(messages)
        .iter()
        .all(|(major, minor)| (*major, *minor) >= (0, 4));
    // criterion's benchmarks have a `main` of their own.
    let harnesses =
        crate::inventory::units_from_messages(messages, |id| ctx.workspace.member_of(id));
    harnesses
        .own_main
        .into_iter()
        .chain(harnesses.libtest)
        .filter_map(|unit| {
            let target = targets.iter().find(|target| {
                target.criterion && target.package == unit.package && target.name == unit.name
            })?;
            Some(BenchBinary {
                package: unit.package,
                name: unit.name,
                executable: unit.executable?,
                package_dir: target.package_dir.clone(),
                lenient_baseline,
            })
        })
        .collect()
}

/// The (major, minor) versions of criterion the build compiled, from its package ids
/// (`registry+https://...#criterion@0.3.6`).
fn criterion_versions(messages: &str) -> Vec<(u64, u64)> {
    let mut versions = Vec::new();
    for message in cargo_metadata::Message::parse_stream(messages.as_bytes()).flatten() {
        let cargo_metadata::Message::CompilerArtifact(artifact) = message else {
            continue;
        };
        let Some((_, version)) = artifact.package_id.repr.split_once("#criterion@") else {
            continue;
        };
        let mut parts = version.split('.').map(|part| part.parse::<u64>().ok());
        if let (Some(Some(major)), Some(Some(minor))) = (parts.next(), parts.next()) {
            versions.push((major, minor));
        }
    }
    versions
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn criterion_versions_come_from_the_package_ids() {
        let messages = r#"{"reason":"compiler-artifact","package_id":"registry+https://github.com/rust-lang/crates.io-index#criterion@0.3.6","manifest_path":"/r/Cargo.toml","target":{"kind":["lib"],"crate_types":["lib"],"name":"criterion","src_path":"/r/src/lib.rs","edition":"2018","doc":true,"doctest":true,"test":true},"profile":{"opt_level":"3","debuginfo":0,"debug_assertions":false,"overflow_checks":false,"test":false},"features":[],"filenames":["/t/libcriterion.rlib"],"executable":null,"fresh":true}"#;
        assert_eq!(criterion_versions(messages), [(0, 3)]);
    }

    #[test]
    fn filters_become_one_escaped_alternation() {
        assert_eq!(filter(&[]), None);
        assert_eq!(filter(&["fnv".into()]).as_deref(), Some("fnv"));
        assert_eq!(
            filter(&["a/b".into(), "x.y".into()]).as_deref(),
            Some("a/b|x\\.y")
        );
    }
}
