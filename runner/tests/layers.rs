//! The dependency rules of ARCHITECTURE.md, checked against the code: each rule names a part of
//! `runner/src` and the modules it must never import. Only code outside `#[cfg(test)]` modules
//! counts (a test may build its data with anything), and comments do not.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Every module a stage folder may not import: the other stages and the command layer.
const STAGES: [&str; 8] = [
    "miri",
    "cross",
    "sanitizers",
    "fuzz",
    "coverage",
    "valgrind",
    "bench",
    "soak",
];

/// (the files a rule covers, relative to `runner/src`; the `crate::` paths they must not use;
/// why).
const RULES: &[(&str, &[&str], &str)] = &[
    (
        "stage_name.rs",
        &["crate::"],
        "the stage names are a leaf: everything may name a stage",
    ),
    (
        "stage_flags.rs",
        &["crate::"],
        "values the CLI and stages both spell are a leaf",
    ),
    ("hash.rs", &["crate::"], "the general hash is a leaf"),
    (
        "report/",
        &[
            "crate::stages",
            "crate::cli",
            "crate::app",
            "crate::plan",
            "crate::config",
            "crate::exec",
            "crate::process",
            "crate::repository",
        ],
        "the report model and renderers depend on nothing above them (the revision is an input)",
    ),
    (
        "finding.rs",
        &["crate::stages", "crate::cli", "crate::app", "crate::plan"],
        "findings are built the same way for every stage",
    ),
    (
        "config.rs",
        &["crate::stages", "crate::cli", "crate::app", "crate::cache"],
        "the config layer holds each stage's table raw; the stage reads and checks it",
    ),
    (
        "limits.rs",
        &["crate::config", "crate::stages"],
        "range helpers, lent to the config layer and the stages",
    ),
    (
        "environment.rs",
        &["crate::stages"],
        "versions are asked through the registry by the command",
    ),
    (
        "provision.rs",
        &["crate::stages"],
        "needs are read through the registry by the command",
    ),
    (
        "plan.rs",
        &["crate::stages", "crate::app"],
        "the context knows no stage",
    ),
    (
        "exec/",
        &["crate::stages", "crate::cli", "crate::app"],
        "the kernel knows no stage: stages supply a Tool",
    ),
    (
        "cli.rs",
        &["crate::stages", "crate::app", "crate::plan"],
        "the command line is built from the stage names, not from the stages",
    ),
    (
        "coverage_data/",
        &["crate::stages", "crate::cli", "crate::app", "crate::plan"],
        "llvm-cov's export is read the same way for the coverage and fuzz stages",
    ),
    (
        "foreign.rs",
        &["crate::stages", "crate::cli", "crate::app", "crate::plan"],
        "one rule for every file runner writes outside its report folder",
    ),
    (
        "workspace.rs",
        &["crate::stages", "crate::app"],
        "the workspace is read before any stage",
    ),
];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            found.push(path);
        }
    }
}

/// The file's code without its test module and comments.
fn code_of(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let code = text.split("#[cfg(test)]\nmod tests").next().unwrap_or("");
    code.lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn relative(path: &Path) -> String {
    path.strip_prefix(src())
        .unwrap()
        .to_string_lossy()
        .replace('\\', "/")
}

#[test]
fn dependencies_point_down() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut broken = BTreeSet::new();
    for file in &files {
        let name = relative(file);
        let code = code_of(file);
        for (part, forbidden, why) in RULES {
            let covered = if part.ends_with('/') {
                name.starts_with(part)
            } else {
                name == *part
            };
            if !covered {
                continue;
            }
            for path in *forbidden {
                if code.contains(path) {
                    broken.insert(format!("{name} uses `{path}`: {why}"));
                }
            }
        }
    }
    assert!(broken.is_empty(), "{broken:#?}");
}

#[test]
fn a_stage_never_uses_another_stage() {
    let mut broken = BTreeSet::new();
    for stage in STAGES {
        let mut files = Vec::new();
        rust_files(&src().join("stages").join(stage), &mut files);
        assert!(!files.is_empty(), "no files for the stage {stage}");
        for file in &files {
            let code = code_of(file);
            for other in STAGES.iter().filter(|other| **other != stage) {
                let path = format!("crate::stages::{other}");
                if code.contains(&path) {
                    broken.insert(format!("{} uses `{path}`", relative(file)));
                }
            }
            for above in ["crate::app", "crate::cli", "crate::stages::registry"] {
                if code.contains(above) {
                    broken.insert(format!("{} uses `{above}`", relative(file)));
                }
            }
        }
    }
    assert!(broken.is_empty(), "{broken:#?}");
}
