//! Which benchmarks the workspace has, from `cargo metadata`, before anything is built: bench
//! targets of packages that use criterion (runner reads criterion's results), and the rest.

use anyhow::Result;
use camino::Utf8PathBuf;

use crate::plan::Context;
use crate::stage_name::StageName;

/// One `[[bench]]` target of a selected workspace member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BenchTarget {
    pub package: String,
    pub name: String,
    /// The package's directory: cargo runs benchmarks from there.
    pub package_dir: Utf8PathBuf,
    /// The package depends on criterion (or a drop-in such as codspeed's compat crate).
    pub criterion: bool,
}

pub fn bench_targets(ctx: &Context) -> Result<Vec<BenchTarget>> {
    let metadata = cargo_metadata::MetadataCommand::new()
        .manifest_path(&ctx.workspace.manifest_path)
        .no_deps()
        .exec()
        .map_err(|error| anyhow::anyhow!("cannot list the workspace's benchmarks: {error}"))?;
    let mut targets = Vec::new();
    let selected: Vec<&str> = ctx
        .stage_members(StageName::Bench)
        .iter()
        .map(|member| member.id.as_str())
        .collect();
    for package in metadata.workspace_packages() {
        if !selected.contains(&package.id.repr.as_str()) {
            continue;
        }
        let uses_criterion = package
            .dependencies
            .iter()
            .any(|dependency| dependency.name.contains("criterion"));
        let Some(package_dir) = package.manifest_path.parent() else {
            continue;
        };
        // A criterion benchmark has its own `main` (`harness = false`); a bench target with
        // libtest's harness (a helper module, a `#[bench]` file) rejects criterion's flags.
        let own_main: Vec<String> = crate::inventory::own_main_targets(&package.manifest_path)
            .into_iter()
            .filter(|(kind, _)| *kind == crate::inventory::UnitKind::Bench)
            .map(|(_, name)| name)
            .collect();
        for target in &package.targets {
            if target.kind.iter().any(|kind| kind.to_string() == "bench") {
                targets.push(BenchTarget {
                    package: package.name.to_string(),
                    name: target.name.clone(),
                    package_dir: package_dir.to_path_buf(),
                    criterion: uses_criterion && own_main.contains(&target.name),
                });
            }
        }
    }
    Ok(targets)
}

/// Why the stage does not apply, or `None` when there is something to measure.
pub fn not_applicable_reason(targets: &[BenchTarget]) -> Option<String> {
    if targets.is_empty() {
        return Some("the workspace has no benchmarks (no [[bench]] targets)".to_owned());
    }
    if !targets.iter().any(|target| target.criterion) {
        let verb = if targets.len() == 1 { "uses" } else { "use" };
        return Some(format!(
            "no criterion benchmarks: {} {verb} another harness, and runner reads criterion's \
             results only",
            labels(targets)
        ));
    }
    None
}

/// A note naming the benchmarks that are not run because they do not use criterion.
pub fn others_note(targets: &[BenchTarget]) -> Option<String> {
    let others: Vec<BenchTarget> = targets.iter().filter(|t| !t.criterion).cloned().collect();
    (!others.is_empty()).then(|| {
        format!(
            "not run: {} (not criterion benchmarks, so their results cannot be read)",
            labels(&others)
        )
    })
}

fn labels(targets: &[BenchTarget]) -> String {
    targets
        .iter()
        .map(|t| format!("`{} --bench {}`", t.package, t.name))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(name: &str, criterion: bool) -> BenchTarget {
        BenchTarget {
            package: "p".into(),
            name: name.into(),
            package_dir: "/w".into(),
            criterion,
        }
    }

    #[test]
    fn applies_only_with_a_criterion_benchmark() {
        assert!(not_applicable_reason(&[])
            .unwrap()
            .contains("no benchmarks"));
        let libtest = [target("old", false)];
        assert!(not_applicable_reason(&libtest)
            .unwrap()
            .contains("`p --bench old` uses another harness"));
        let mixed = [target("old", false), target("new", true)];
        assert_eq!(not_applicable_reason(&mixed), None);
        assert!(others_note(&mixed).unwrap().contains("`p --bench old`"));
    }
}
