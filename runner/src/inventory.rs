//! The test inventory every stage shares: test binaries from `cargo test --no-run
//! --message-format=json`, test names from `-- --list`, and cargo's selection of each unit.

use anyhow::{bail, Result};
use camino::{Utf8Path, Utf8PathBuf};
use cargo_metadata::Message;

use crate::libtest;
use crate::process::{Cmd, RunOptions};

/// What a test unit is built from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum UnitKind {
    #[default]
    Lib,
    Bin,
    Test,
    Bench,
    Example,
    Doc,
}

/// One test harness: a package's lib, one of its integration tests, its doctests, ...
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct TestUnit {
    /// The package's name, as reports show it.
    pub package: String,
    /// cargo's id of the package, which selects it even when a dependency is a published
    /// copy of the same crate (`--package itoa` is then ambiguous).
    pub package_id: String,
    pub kind: UnitKind,
    /// The cargo target name (the package name for lib and doc units).
    pub name: String,
    /// The built harness; doctests have none (rustdoc compiles them when they run).
    pub executable: Option<Utf8PathBuf>,
    /// How a stage runs this harness when it runs it more than one way (Miri's borrow model
    /// for a package checked under several): part of the label, so each way is a unit of its
    /// own for durations, the cache, partitions and the report.
    pub variant: Option<String>,
}

impl TestUnit {
    /// The cargo arguments that select exactly this unit.
    pub fn selection(&self) -> Vec<String> {
        let mut args = vec!["--package".to_owned(), self.package_id.clone()];
        match self.kind {
            UnitKind::Lib => args.push("--lib".to_owned()),
            UnitKind::Doc => args.push("--doc".to_owned()),
            UnitKind::Bin => args.extend(["--bin".to_owned(), self.name.clone()]),
            UnitKind::Test => args.extend(["--test".to_owned(), self.name.clone()]),
            UnitKind::Bench => args.extend(["--bench".to_owned(), self.name.clone()]),
            UnitKind::Example => args.extend(["--example".to_owned(), self.name.clone()]),
        }
        args
    }

    /// A short human label: `miri-bugs lib`, `miri-bugs doctests`, and for named targets
    /// cargo's own flag, `miri-bugs --test parse` (an integration test named `test` would
    /// otherwise read `itoa test test`).
    pub fn label(&self) -> String {
        let base = match self.kind {
            UnitKind::Lib => format!("{} lib", self.package),
            UnitKind::Doc => format!("{} doctests", self.package),
            UnitKind::Bin => format!("{} --bin {}", self.package, self.name),
            UnitKind::Test => format!("{} --test {}", self.package, self.name),
            UnitKind::Bench => format!("{} --bench {}", self.package, self.name),
            UnitKind::Example => format!("{} --example {}", self.package, self.name),
        };
        match &self.variant {
            Some(variant) => format!("{base} ({variant})"),
            None => base,
        }
    }

    /// The label of the harness itself, whichever way the stage runs it: what names a test
    /// in a finding's fingerprint, so one bug seen several ways is one issue.
    pub fn harness_label(&self) -> String {
        TestUnit {
            variant: None,
            ..self.clone()
        }
        .label()
    }

    /// A file-name-safe form of the label, for log names.
    pub fn slug(&self) -> String {
        self.label()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '-'
                }
            })
            .collect()
    }
}

/// The test harnesses a build made, by who runs their tests.
#[derive(Debug, Default, PartialEq)]
pub struct Harnesses {
    /// libtest's harness: listed with `--list`, run test by test.
    pub libtest: Vec<TestUnit>,
    /// Targets with a `main` of their own (`harness = false`): `--list` would start that
    /// main, which runs whatever it does (all its tests, or nothing), and its tests cannot be
    /// named, split or told apart. The test stages leave them out and say so
    /// ([`Harnesses::own_main_note`]); the bench stage runs criterion's.
    pub own_main: Vec<TestUnit>,
}

impl Harnesses {
    /// Files a harness with the others of its kind.
    fn add(&mut self, unit: TestUnit, own_main: bool) {
        if own_main {
            self.own_main.push(unit);
        } else {
            self.libtest.push(unit);
        }
    }

    /// Each list in order, without repeats.
    fn sorted(mut self) -> Harnesses {
        for units in [&mut self.libtest, &mut self.own_main] {
            units.sort();
            units.dedup();
        }
        self
    }

    /// One doctest unit per package with a library among the harnesses (rustdoc runs
    /// doctests with its own harness, whatever the library's).
    pub fn doc_units(&self) -> Vec<TestUnit> {
        let mut units = doc_units(&self.libtest);
        units.extend(doc_units(&self.own_main));
        units
    }

    /// The note of a test stage that left out the targets with their own `main`.
    pub fn own_main_note(&self) -> Option<String> {
        let tests: Vec<String> = self
            .own_main
            .iter()
            .filter(|unit| unit.kind != UnitKind::Bench)
            .map(|unit| format!("`{}`", unit.label()))
            .collect();
        (!tests.is_empty()).then(|| {
            format!(
                "not run: {} (`harness = false`: a `main` of its own, whose tests runner cannot \
                 list, run one by one or tell apart; run it with cargo)",
                tests.join(", ")
            )
        })
    }
}

/// The targets of a package manifest with `harness = false`, by kind and name: libtest's
/// harness is the default, and neither `cargo metadata` nor cargo's build messages say which
/// a target uses.
pub fn own_main_targets(manifest: &Utf8Path) -> Vec<(UnitKind, String)> {
    let Ok(text) = std::fs::read_to_string(manifest) else {
        return Vec::new();
    };
    let Ok(table) = text.parse::<toml::Table>() else {
        return Vec::new();
    };
    let own_main =
        |target: &toml::Value| target.get("harness").and_then(toml::Value::as_bool) == Some(false);
    let name_of = |target: &toml::Value| {
        target
            .get("name")
            .and_then(toml::Value::as_str)
            .map(str::to_owned)
    };
    let mut targets = Vec::new();
    if let Some(lib) = table.get("lib").filter(|lib| own_main(lib)) {
        // cargo names the library after the package, `-` as `_`, unless it is renamed.
        let package = table
            .get("package")
            .and_then(|package| package.get("name"))
            .and_then(toml::Value::as_str)
            .map(|name| name.replace('-', "_"));
        if let Some(name) = name_of(lib).or(package) {
            targets.push((UnitKind::Lib, name));
        }
    }
    for (key, kind) in [
        ("bin", UnitKind::Bin),
        ("test", UnitKind::Test),
        ("bench", UnitKind::Bench),
        ("example", UnitKind::Example),
    ] {
        let declared = table.get(key).and_then(toml::Value::as_array);
        for target in declared.into_iter().flatten().filter(|t| own_main(t)) {
            targets.extend(name_of(target).map(|name| (kind, name)));
        }
    }
    targets
}

/// Reads the test harnesses cargo built from its JSON messages. `package_name` maps a
/// package id to its name (only workspace members are analysed); the id itself selects it.
pub fn units_from_messages(
    messages: &str,
    package_name: impl Fn(&str) -> Option<String>,
) -> Harnesses {
    let mut harnesses = Harnesses::default();
    let mut manifests: std::collections::BTreeMap<Utf8PathBuf, Vec<(UnitKind, String)>> =
        std::collections::BTreeMap::new();
    for message in Message::parse_stream(messages.as_bytes()).flatten() {
        let Message::CompilerArtifact(artifact) = message else {
            continue;
        };
        if !artifact.profile.test {
            continue;
        }
        let Some(package) = package_name(&artifact.package_id.repr) else {
            continue;
        };
        let kinds: Vec<String> = artifact
            .target
            .kind
            .iter()
            .map(ToString::to_string)
            .collect();
        let kind = if kinds
            .iter()
            .any(|k| k == "lib" || k == "rlib" || k == "proc-macro")
        {
            UnitKind::Lib
        } else if kinds.iter().any(|k| k == "bin") {
            UnitKind::Bin
        } else if kinds.iter().any(|k| k == "test") {
            UnitKind::Test
        } else if kinds.iter().any(|k| k == "bench") {
            UnitKind::Bench
        } else if kinds.iter().any(|k| k == "example") {
            UnitKind::Example
        } else {
            continue;
        };
        let unit = TestUnit {
            package,
            package_id: artifact.package_id.repr.clone(),
            kind,
            name: artifact.target.name.clone(),
            executable: artifact.executable.clone(),
            variant: None,
        };
        let own_main = manifests
            .entry(artifact.manifest_path.clone())
            .or_insert_with(|| own_main_targets(&artifact.manifest_path))
            .contains(&(kind, unit.name.clone()));
        harnesses.add(unit, own_main);
    }
    harnesses.sorted()
}

/// One doctest unit per package that has a library among `units`.
pub fn doc_units(units: &[TestUnit]) -> Vec<TestUnit> {
    units
        .iter()
        .filter(|unit| unit.kind == UnitKind::Lib)
        .map(|unit| TestUnit {
            package: unit.package.clone(),
            package_id: unit.package_id.clone(),
            kind: UnitKind::Doc,
            name: unit.package.clone(),
            executable: None,
            variant: None,
        })
        .collect()
}

/// The test harnesses the manifests declare for `members` (package ids), without building
/// anything: what `cargo test` runs (every target with `test` set: the library, binaries,
/// integration tests, and benches or examples that ask for it), and each library's doctests
/// when `doctests` is set. For a stage whose engine builds the harnesses itself
/// (cargo-llvm-cov), so no cargo JSON names their executables. Targets that need features
/// are left out (`cargo test` skips them unless the features are on), with their labels;
/// so are targets with a `main` of their own (in `Harnesses::own_main`).
pub fn declared_units(
    manifest_path: &camino::Utf8Path,
    members: &[&str],
    doctests: bool,
) -> Result<(Harnesses, Vec<String>)> {
    let metadata = cargo_metadata::MetadataCommand::new()
        .manifest_path(manifest_path)
        .no_deps()
        .exec()
        .map_err(|error| anyhow::anyhow!("cannot read the workspace's targets: {error}"))?;
    let mut harnesses = Harnesses::default();
    let mut needing_features = Vec::new();
    for package in metadata.workspace_packages() {
        if !members.contains(&package.id.repr.as_str()) {
            continue;
        }
        let own_main = own_main_targets(&package.manifest_path);
        for target in &package.targets {
            let kinds: Vec<String> = target.kind.iter().map(ToString::to_string).collect();
            let has = |wanted: &[&str]| kinds.iter().any(|k| wanted.contains(&k.as_str()));
            let kind = if has(&["lib", "rlib", "dylib", "proc-macro"]) {
                UnitKind::Lib
            } else if has(&["bin"]) {
                UnitKind::Bin
            } else if has(&["test"]) {
                UnitKind::Test
            } else if has(&["bench"]) {
                UnitKind::Bench
            } else if has(&["example"]) {
                UnitKind::Example
            } else {
                continue;
            };
            let unit = TestUnit {
                package: package.name.to_string(),
                package_id: package.id.repr.clone(),
                kind,
                name: target.name.clone(),
                executable: None,
                variant: None,
            };
            if !target.required_features.is_empty() {
                needing_features.push(unit.label());
                continue;
            }
            if kind == UnitKind::Lib && doctests && target.doctest {
                harnesses
                    .libtest
                    .extend(doc_units(std::slice::from_ref(&unit)));
            }
            if target.test {
                let own = own_main.contains(&(kind, unit.name.clone()));
                harnesses.add(unit, own);
            }
        }
    }
    Ok((harnesses.sorted(), needing_features))
}

/// Lists a unit's tests by running its harness with `--list` through `cargo_test` (a
/// `cargo test` or `cargo miri test` command with the build options already set), then
/// keeps the names that match any of `filters` (all when there are none).
pub fn list_tests(
    cargo_test: &Cmd,
    unit: &TestUnit,
    filters: &[String],
    options: &RunOptions<'_>,
) -> Result<Vec<String>> {
    let cmd = cargo_test
        .clone()
        .args(unit.selection())
        .args(["--", "--list"]);
    run_listing(&cmd, unit, filters, options)
}

/// Lists the tests of a natively built harness by running the executable itself with
/// `--list` (no cargo in between, so it is fast), filtered like [`list_tests`].
pub fn list_executable_tests(
    unit: &TestUnit,
    filters: &[String],
    options: &RunOptions<'_>,
) -> Result<Vec<String>> {
    let Some(executable) = &unit.executable else {
        bail!("{} has no test executable to list", unit.label());
    };
    let cmd = Cmd::new(executable.as_str()).arg("--list");
    run_listing(&cmd, unit, filters, options)
}

fn run_listing(
    cmd: &Cmd,
    unit: &TestUnit,
    filters: &[String],
    options: &RunOptions<'_>,
) -> Result<Vec<String>> {
    let finished = cmd.run(options)?;
    if !finished.termination.success() {
        let reason = crate::cargo_output::first_error(&finished);
        bail!(
            "listing the tests of {} failed ({}): {reason}",
            unit.label(),
            finished.termination
        );
    }
    let names = libtest::parse_list(&finished.stdout);
    Ok(names
        .into_iter()
        .filter(|name| filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str())))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selection_names_exactly_one_unit() {
        let unit = TestUnit {
            package: "itoa".into(),
            package_id: "path+file:///w#itoa@1.0.19".into(),
            kind: UnitKind::Test,
            name: "test".into(),
            executable: None,
            variant: None,
        };
        assert_eq!(
            unit.selection(),
            ["--package", "path+file:///w#itoa@1.0.19", "--test", "test"]
        );
        assert_eq!(unit.label(), "itoa --test test");
        assert_eq!(unit.slug(), "itoa---test-test");
    }

    #[test]
    fn targets_with_a_main_of_their_own_are_read_from_the_manifest() {
        let dir = tempfile::tempdir().unwrap();
        let manifest = Utf8Path::from_path(dir.path()).unwrap().join("Cargo.toml");
        std::fs::write(
            &manifest,
            "[package]\nname = \"my-crate\"\n[lib]\nharness = false\n\
             [[bench]]\nname = \"bench\"\nharness = false\n[[bench]]\nname = \"setup\"\n\
             [[test]]\nname = \"wrappers\"\nharness = false\n[[test]]\nname = \"plain\"\n",
        )
        .unwrap();
        assert_eq!(
            own_main_targets(&manifest),
            [
                (UnitKind::Lib, "my_crate".to_owned()),
                (UnitKind::Test, "wrappers".to_owned()),
                (UnitKind::Bench, "bench".to_owned()),
            ]
        );
        let unit = |kind, name: &str| TestUnit {
            package: "my-crate".into(),
            package_id: "id".into(),
            kind,
            name: name.into(),
            executable: None,
            variant: None,
        };
        let harnesses = Harnesses {
            libtest: Vec::new(),
            own_main: vec![
                unit(UnitKind::Test, "wrappers"),
                unit(UnitKind::Bench, "bench"),
            ],
        };
        let note = harnesses.own_main_note().unwrap();
        assert!(
            note.starts_with("not run: `my-crate --test wrappers` (`harness = false`"),
            "{note}"
        );
        assert!(!note.contains("--bench"), "{note}");
    }

    #[test]
    fn reads_test_artifacts_from_cargo_messages() {
        let messages = concat!(
            r#"{"reason":"compiler-artifact","package_id":"path+file:///w#p@0.1.0","manifest_path":"/w/Cargo.toml","target":{"kind":["lib"],"crate_types":["lib"],"name":"p","src_path":"/w/src/lib.rs","edition":"2021","doc":true,"doctest":true,"test":true},"profile":{"opt_level":"0","debuginfo":2,"debug_assertions":true,"overflow_checks":true,"test":true},"features":[],"filenames":["/t/p-1"],"executable":"/t/p-1","fresh":true}"#,
            "\n",
            r#"{"reason":"compiler-artifact","package_id":"path+file:///w#p@0.1.0","manifest_path":"/w/Cargo.toml","target":{"kind":["lib"],"crate_types":["lib"],"name":"p","src_path":"/w/src/lib.rs","edition":"2021","doc":true,"doctest":true,"test":true},"profile":{"opt_level":"0","debuginfo":2,"debug_assertions":true,"overflow_checks":true,"test":false},"features":[],"filenames":["/t/libp.rlib"],"executable":null,"fresh":true}"#,
            "\n",
            r#"{"reason":"build-finished","success":true}"#,
            "\n"
        );
        let units = units_from_messages(messages, |_| Some("p".to_owned())).libtest;
        assert_eq!(units.len(), 1);
        assert_eq!(units[0].kind, UnitKind::Lib);
        assert_eq!(
            units[0].executable.as_deref(),
            Some(camino::Utf8Path::new("/t/p-1"))
        );
        assert_eq!(doc_units(&units)[0].kind, UnitKind::Doc);
    }
}
